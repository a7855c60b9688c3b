//! The public 3GPP TS 33.180 (MCX) MIKEY-SAKKE vectors (tests/vectors/mcx/, see SOURCE.txt):
//! UIDs reproduce, the four I_MESSAGEs parse and re-encode byte for byte, their ECCSI
//! signatures verify against the initiator's UID, each decapsulates with the responder's key to
//! the listed GMK/CSK/PCK, and a flipped byte anywhere is refused.

use base64::Engine;
use cig_mikey_sakke::eccsi::Kpak;
use cig_mikey_sakke::kdf::Prf;
use cig_mikey_sakke::mikey::payload::role;
use cig_mikey_sakke::mikey::{
    self, CsIdMap, IMessage, McxPeriods, Profile, mcx_uid, receiver_identity, sender_identity,
};
use cig_mikey_sakke::sakke::{KmsPublicKey, Rsk};

const VECTORS: &str = include_str!("vectors/mcx/StreamwideTestVectors.md");

/// The value after `key:` on the first line at or after `from` that starts with `key`.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .map(str::trim)
        .map(|l| l.trim_start_matches("* "))
        .find_map(|l| {
            let rest = l.strip_prefix(key)?.trim_start();
            Some(rest.strip_prefix(':')?.trim())
        })
        .unwrap_or_else(|| panic!("{key} not in vectors"))
}

fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text.find(heading).expect(heading);
    let rest = &text[start + heading.len()..];
    let end = rest.find("\n#").unwrap_or(rest.len());
    &rest[..end]
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

struct User {
    uid: Vec<u8>,
    rsk: Rsk,
}

fn user(name: &str) -> User {
    let s = section(VECTORS, &format!("* KMS KeyProv for {name}"));
    User {
        uid: unhex(field(s, "UserID")),
        rsk: Rsk::from_bytes(&unhex(field(s, "UserDecryptKey"))).unwrap(),
    }
}

fn community() -> (Kpak, KmsPublicKey) {
    let s = section(VECTORS, "* KMS Init");
    (
        Kpak::from_bytes(&unhex(field(s, "PubAuthKey"))).unwrap(),
        KmsPublicKey::from_bytes(&unhex(field(s, "PubEncKey"))).unwrap(),
    )
}

struct Case {
    message: Vec<u8>,
    key: Vec<u8>,
    initiator: User,
    responder: User,
}

fn case(heading: &str, key_name: &str, initiator: &str, responder: &str) -> Case {
    let s = section(VECTORS, heading);
    let b64 = field(s, "I-MESSAGE").trim_start_matches("mikey ").trim();
    Case {
        message: base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
        key: unhex(field(s, key_name)),
        initiator: user(initiator),
        responder: user(responder),
    }
}

fn cases() -> Vec<Case> {
    vec![
        case("### Test 1: GMK", "GMK", "GMS", "Alice"),
        case("### Test 2: CSK", "CSK", "Alice", "GMS"),
        case("### Test 3: PCK", "PCK", "Alice", "Bob"),
        case("### Test 4: GMK (legacy", "GMK", "GMS", "IWF"),
    ]
}

#[test]
fn the_five_uids_reproduce() {
    let start = VECTORS.find("## MIKEYSAKKE-UID").unwrap();
    let end = VECTORS.find("## MIKEYSAKKE-PAYLOAD").unwrap();
    let s = &VECTORS[start..end];
    let mut n = 0;
    for test in s.split("### Test").skip(1) {
        let uid = mcx_uid(
            field(test, "uri"),
            field(test, "kms_uri"),
            field(test, "key_period").parse().unwrap(),
            field(test, "key_period_offset").parse().unwrap(),
            field(test, "current_key_period_no").parse().unwrap(),
        );
        let expected = test.split("generated uid").nth(1).unwrap().trim();
        assert_eq!(hex::encode(uid), expected);
        n += 1;
    }
    assert_eq!(n, 5);
}

#[test]
fn user_uids_reproduce_from_uri_and_message_time() {
    let kms = section(VECTORS, "* KMS Init");
    let periods = McxPeriods {
        kms_uri: field(kms, "KmsUri").into(),
        period_len: field(kms, "UserKeyPeriod").parse().unwrap(),
        offset: field(kms, "UserKeyOffset").parse().unwrap(),
    };
    let msg = IMessage::parse(&cases()[0].message).unwrap();
    let no = periods.period_no(msg.ntp_seconds()).unwrap();
    for name in ["GMS", "Alice", "IWF", "Bob"] {
        let s = section(VECTORS, &format!("* KMS KeyProv for {name}"));
        assert_eq!(no.to_string(), field(s, "KeyPeriodNo"));
        assert_eq!(
            hex::encode(periods.uid(field(s, "UserUri"), no)),
            field(s, "UserID")
        );
    }
}

#[test]
fn all_four_parse_and_reencode_identically() {
    for c in cases() {
        let msg = IMessage::parse(&c.message).unwrap();
        assert_eq!(msg.header.prf, Prf::HmacSha256);
        assert_eq!(
            Profile::from_id_scheme(msg.sakke.id_scheme).unwrap(),
            Profile::Mcx
        );
        assert_eq!(msg.idr(role::UID_INITIATOR).unwrap().data, c.initiator.uid);
        assert_eq!(msg.idr(role::UID_RESPONDER).unwrap().data, c.responder.uid);
        assert_eq!(sender_identity(&msg).unwrap(), c.initiator.uid);
        assert_eq!(receiver_identity(&msg).unwrap(), c.responder.uid);
        let signed = IMessage::encode_signed_part(
            &msg.header,
            msg.timestamp,
            &msg.rand,
            &msg.idrs,
            &msg.policies,
            &msg.sakke,
            &msg.extensions,
        )
        .unwrap();
        assert_eq!(signed, msg.signed_bytes());
        let again = IMessage::from_signed_part(signed, &msg.signature).unwrap();
        assert_eq!(again.as_bytes(), &c.message[..]);
    }
    // The maps seen: GENERIC-ID (GMK, CSK), empty (PCK), SRTP-ID (legacy GMK).
    let maps: Vec<_> = cases()
        .iter()
        .map(|c| IMessage::parse(&c.message).unwrap().header.cs_map)
        .collect();
    assert!(matches!(maps[0], CsIdMap::Generic(_)));
    assert!(matches!(maps[2], CsIdMap::Empty(0)));
    assert!(matches!(&maps[3], CsIdMap::Srtp(v) if v.len() == 2));
}

#[test]
fn all_four_verify_and_decapsulate_to_the_listed_key() {
    let (kpak, zpub) = community();
    for c in cases() {
        let msg = IMessage::parse(&c.message).unwrap();
        let verified = mikey::verify(msg, &kpak, &c.initiator.uid).unwrap();
        let ssv = verified
            .decapsulate(&zpub, &c.responder.uid, &c.responder.rsk)
            .unwrap();
        assert_eq!(ssv.as_bytes().to_vec(), c.key);
        // The wrong identities are refused.
        let msg = IMessage::parse(&c.message).unwrap();
        assert!(mikey::verify(msg, &kpak, &c.responder.uid).is_err());
        assert!(
            verified
                .decapsulate(&zpub, &c.initiator.uid, &c.responder.rsk)
                .is_err()
        );
    }
}

#[test]
fn a_flipped_byte_anywhere_is_refused() {
    let (kpak, _) = community();
    for c in cases() {
        for i in 0..c.message.len() {
            for bit in [0x01u8, 0x80] {
                let mut m = c.message.clone();
                m[i] ^= bit;
                let refused = match IMessage::parse(&m) {
                    Err(_) => true,
                    Ok(msg) => mikey::verify(msg, &kpak, &c.initiator.uid).is_err(),
                };
                assert!(refused, "flip {bit:#x} at byte {i} accepted");
            }
        }
    }
}
