//! Round trips in both profiles (create → parse → verify → decapsulate → same SSV and SRTP
//! keys) and the receiving rules: clock-skew window, replay cache, missing keys, error codes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cig_mikey_sakke::eccsi::{self, Kpak, SigningKey};
use cig_mikey_sakke::mikey::payload::{DATA_TYPE_ERROR, kind};
use cig_mikey_sakke::mikey::{
    self, ErrorCode, IMessage, KeyLookup, KeyPeriod, McxPeriods, Profile, Receiver, ReceiverConfig,
    Request, encode_error_message,
};
use cig_mikey_sakke::sakke::{self, KmsPublicKey, Rsk};
use cig_mikey_sakke::{Error, kdf};
use rand_core::OsRng;

struct Community {
    kpak: Kpak,
    zpub: KmsPublicKey,
    ksak: eccsi::Ksak,
    z: sakke::MasterSecret,
}

fn community() -> Community {
    let (ksak, kpak) = eccsi::generate_community(&mut OsRng);
    let (z, zpub) = sakke::generate_master(&mut OsRng);
    Community {
        kpak,
        zpub,
        ksak,
        z,
    }
}

struct Own<'a> {
    c: &'a Community,
    ids: Vec<(Vec<u8>, Rsk)>,
}

impl KeyLookup for Own<'_> {
    fn kpak(&self) -> &Kpak {
        &self.c.kpak
    }
    fn zpub(&self) -> &KmsPublicKey {
        &self.c.zpub
    }
    fn rsk(&self, receiver_id: &[u8]) -> Option<&Rsk> {
        self.ids
            .iter()
            .find(|(id, _)| id == receiver_id)
            .map(|(_, r)| r)
    }
}

fn signer(c: &Community, id: &[u8]) -> SigningKey {
    let (ssk, pvt) = eccsi::issue_user_key(&c.ksak, &c.kpak, id, &mut OsRng);
    SigningKey::new(&c.kpak, id, ssk, pvt).unwrap()
}

fn at(unix: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix)
}

/// 2026-11-26T12:00:00Z
const NOW: u64 = 1_795_694_400;

fn ids(profile: Profile) -> (Vec<u8>, Vec<u8>) {
    match profile {
        Profile::Rfc6509 => {
            let p = KeyPeriod::from_unix(NOW).unwrap();
            (p.identifier("tel:+8888"), p.identifier("tel:+447700900123"))
        }
        Profile::Mcx => {
            let periods = McxPeriods {
                kms_uri: "kms.example.org".into(),
                period_len: 2_592_000,
                offset: 0,
            };
            let no = periods
                .period_no(NOW + mikey::profile::NTP_UNIX_OFFSET)
                .unwrap();
            (
                periods.uid("sip:alice@example.org", no).to_vec(),
                periods.uid("sip:bob@example.org", no).to_vec(),
            )
        }
    }
}

/// An RFC 6509 I_MESSAGE created at `NOW` between fresh identities: its octets, the
/// receiver's own key, the sender and the receiver identifiers.
fn rfc6509_message(c: &Community) -> (Vec<u8>, Own<'_>, Vec<u8>, Vec<u8>) {
    let (sender, receiver) = ids(Profile::Rfc6509);
    let req = Request {
        profile: Profile::Rfc6509,
        sender_id: &sender,
        receiver_id: &receiver,
        now: at(NOW),
    };
    let bytes = mikey::create(&req, &signer(c, &sender), &c.zpub, &mut OsRng)
        .unwrap()
        .message
        .as_bytes()
        .to_vec();
    let own = Own {
        c,
        ids: vec![(receiver.clone(), sakke::issue_rsk(&c.z, &receiver).unwrap())],
    };
    (bytes, own, sender, receiver)
}

#[test]
fn round_trip_in_both_profiles() {
    let c = community();
    for profile in [Profile::Rfc6509, Profile::Mcx] {
        let (sender, receiver) = ids(profile);
        let req = Request {
            profile,
            sender_id: &sender,
            receiver_id: &receiver,
            now: at(NOW),
        };
        let created = mikey::create(&req, &signer(&c, &sender), &c.zpub, &mut OsRng).unwrap();
        let bytes = created.message.as_bytes().to_vec();

        // Low-level path.
        let msg = IMessage::parse(&bytes).unwrap();
        assert_eq!(msg.header.prf, profile.prf());
        assert_eq!(mikey::sender_identity(&msg).unwrap(), sender);
        assert_eq!(mikey::receiver_identity(&msg).unwrap(), receiver);
        let verified = mikey::verify(msg, &c.kpak, &sender).unwrap();
        let rsk = sakke::issue_rsk(&c.z, &receiver).unwrap();
        let ssv = verified.decapsulate(&c.zpub, &receiver, &rsk).unwrap();
        assert_eq!(ssv, created.ssv);

        // Receiver path: same SSV and the SRTP keys of every crypto session.
        let own = Own {
            c: &c,
            ids: vec![(receiver.clone(), rsk)],
        };
        let mut rx = Receiver::new(ReceiverConfig::default());
        let acc = rx.receive(&bytes, at(NOW + 2), &own).unwrap();
        assert_eq!(acc.ssv, created.ssv);
        assert_eq!(acc.receiver_id, receiver);
        let h = &created.message.header;
        let cs_ids = h.cs_map.cs_ids();
        assert_eq!(acc.srtp.len(), cs_ids.len());
        for (cs, keys) in &acc.srtp {
            let expected = kdf::srtp_keys(
                profile.prf(),
                created.ssv.as_bytes(),
                *cs,
                h.csb_id,
                &created.message.rand,
            )
            .unwrap();
            assert_eq!(keys, &expected);
        }
        // The same message again is a replay.
        let err = rx.receive(&bytes, at(NOW + 3), &own).unwrap_err();
        assert_eq!(err, Error::Replay);
        assert_eq!(ErrorCode::for_error(&err), ErrorCode::InvalidTs);
    }
}

#[test]
fn clock_skew_window_and_replay_expiry() {
    let c = community();
    let (bytes, own, _, _) = rfc6509_message(&c);
    let config = ReceiverConfig {
        max_skew: Duration::from_secs(60),
        replay_capacity: 16,
    };
    let mut rx = Receiver::new(config);
    for t in [NOW - 61, NOW + 61] {
        let err = rx.receive(&bytes, at(t), &own).unwrap_err();
        assert_eq!(err, Error::Timestamp);
        assert_eq!(ErrorCode::for_error(&err).code(), 1);
    }
    assert!(rx.receive(&bytes, at(NOW + 60), &own).is_ok());
    assert_eq!(rx.replay_entries(), 1);
}

#[test]
fn refusals_map_to_mikey_error_codes() {
    let c = community();
    let (sender, receiver) = ids(Profile::Rfc6509);
    let req = Request {
        profile: Profile::Rfc6509,
        sender_id: &sender,
        receiver_id: &receiver,
        now: at(NOW),
    };
    let created = mikey::create(&req, &signer(&c, &sender), &c.zpub, &mut OsRng).unwrap();
    let bytes = created.message.as_bytes().to_vec();
    let mut rx = Receiver::new(ReceiverConfig::default());

    // No RSK for the receiver: Invalid ID, before any crypto.
    let none = Own { c: &c, ids: vec![] };
    let err = rx.receive(&bytes, at(NOW), &none).unwrap_err();
    assert_eq!(ErrorCode::for_error(&err), ErrorCode::InvalidId);

    // Another community's KPAK: authentication failure, nothing recorded against replay.
    let other = community();
    let wrong = Own {
        c: &other,
        ids: vec![(
            receiver.clone(),
            sakke::issue_rsk(&other.z, &receiver).unwrap(),
        )],
    };
    let err = rx.receive(&bytes, at(NOW), &wrong).unwrap_err();
    assert_eq!(err, Error::BadSignature);
    assert_eq!(ErrorCode::for_error(&err), ErrorCode::AuthFailure);
    assert_eq!(rx.replay_entries(), 0);

    // A signed message whose SED was made for someone else fails decapsulation.
    let rsk_other = sakke::issue_rsk(&c.z, b"2026-11\0tel:+1\0").unwrap();
    let verified = mikey::verify(IMessage::parse(&bytes).unwrap(), &c.kpak, &sender).unwrap();
    let err = verified
        .decapsulate(&c.zpub, b"2026-11\0tel:+1\0", &rsk_other)
        .unwrap_err();
    assert_eq!(ErrorCode::for_error(&err), ErrorCode::AuthFailure);

    // Unsupported PRF in the header: Invalid PRF.
    let mut m = bytes.clone();
    m[3] = 5;
    let err = IMessage::parse(&m).unwrap_err();
    assert_eq!(ErrorCode::for_error(&err), ErrorCode::InvalidPrf);

    // The error message answering it.
    let e = encode_error_message(
        0x0102_0304,
        created.message.timestamp,
        ErrorCode::InvalidPrf,
    );
    assert_eq!(e[..4], [1, DATA_TYPE_ERROR, kind::T, 0]);
    assert_eq!(e[4..8], [1, 2, 3, 4]);
    assert_eq!(e[e.len() - 4..], [kind::LAST, 2, 0, 0]);
}

#[test]
fn create_refuses_a_signer_for_another_identity() {
    let c = community();
    let (sender, receiver) = ids(Profile::Rfc6509);
    let req = Request {
        profile: Profile::Rfc6509,
        sender_id: &sender,
        receiver_id: &receiver,
        now: at(NOW),
    };
    assert!(mikey::create(&req, &signer(&c, &receiver), &c.zpub, &mut OsRng).is_err());
}

#[test]
fn rfc6509_message_outside_the_senders_month_carries_that_months_time() {
    let c = community();
    let p = KeyPeriod::parse("2026-12").unwrap();
    let (sender, receiver) = (p.identifier("tel:+8888"), p.identifier("tel:+1"));
    let req = Request {
        profile: Profile::Rfc6509,
        sender_id: &sender,
        receiver_id: &receiver,
        now: at(NOW),
    };
    let m = mikey::create(&req, &signer(&c, &sender), &c.zpub, &mut OsRng).unwrap();
    assert_eq!(mikey::sender_identity(&m.message).unwrap(), sender);
}

#[test]
fn split_receive_records_only_verified_messages() {
    let c = community();
    let (bytes, own, sender, receiver) = rfc6509_message(&c);
    let mut rx = Receiver::new(ReceiverConfig::default());
    // A forged signature passes the cheap checks, fails verification, and records nothing.
    let mut forged = bytes.clone();
    let n = forged.len();
    forged[n - 40] ^= 1;
    let checked = rx.check(&forged, at(NOW), &own).unwrap();
    assert_eq!(checked.sender_id(), &sender[..]);
    assert_eq!(checked.accept(&own).unwrap_err(), Error::BadSignature);
    assert_eq!(rx.replay_entries(), 0);
    // Two copies checked before either is recorded both verify and decapsulate (outside the
    // receiver); recording the second is refused as a replay.
    let first = rx.check(&bytes, at(NOW), &own).unwrap();
    let second = rx.check(&bytes, at(NOW + 1), &own).unwrap();
    let (first, second) = (first.accept(&own).unwrap(), second.accept(&own).unwrap());
    assert_eq!(first.ssv, second.ssv);
    assert_eq!(first.receiver_id, receiver);
    rx.record(&first.message, at(NOW + 1)).unwrap();
    assert_eq!(rx.record(&second.message, at(NOW + 1)), Err(Error::Replay));
    assert_eq!(rx.replay_entries(), 1);
    // From then on the cheap check refuses it, as the one-step path does.
    assert_eq!(
        rx.check(&bytes, at(NOW + 2), &own).unwrap_err(),
        Error::Replay
    );
    assert_eq!(
        rx.receive(&bytes, at(NOW + 2), &own).unwrap_err(),
        Error::Replay
    );
}
