//! The `cig-kms imessage` interop tool through the binary: inspect and verify the public MCX
//! vectors, refuse a damaged message, and create → verify in both profiles.

use std::process::{Command, Output};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cig_mikey_sakke::mikey::{IMessage, KeyPeriod, McxPeriods};
use cig_mikey_sakke::{eccsi, kdf, sakke};
use rand_core::OsRng;

const VECTORS: &str =
    include_str!("../../../cig-mikey-sakke/tests/vectors/mcx/StreamwideTestVectors.md");

fn kms(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cig-kms"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Value of the first `* key : value` line after `after`.
fn field(after: &str, key: &str) -> String {
    let start = VECTORS.find(after).unwrap();
    VECTORS[start..]
        .lines()
        .map(|l| l.trim().trim_start_matches("* "))
        .find_map(|l| {
            Some(
                l.strip_prefix(key)?
                    .trim_start()
                    .strip_prefix(':')?
                    .trim()
                    .to_owned(),
            )
        })
        .unwrap()
}

fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{name} missing in {out}"))
}

#[test]
fn inspect_and_verify_the_mcx_gmk_vector() {
    let msg = field("### Test 1: GMK", "I-MESSAGE");
    let out = kms(&["imessage", "inspect", &msg]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "HDR version=1 data_type=26 v=0 prf=1 csb_id=06a12aea cs_map=generic-id\n"
        )
    );
    assert!(text.contains("IDR role=6(IDRkmsi) type=1 len=24"));
    assert!(text.contains("SAKKE params=1 id_scheme=2 len=273"));
    assert!(text.contains("\nsigned_len=572\n"));

    let args = |m: &str| {
        vec![
            "imessage".to_owned(),
            "verify".into(),
            "--kpak".into(),
            field("* KMS Init", "PubAuthKey"),
            "--z".into(),
            field("* KMS Init", "PubEncKey"),
            "--rsk".into(),
            field("KMS KeyProv for Alice", "UserDecryptKey"),
            "--sender-id".into(),
            field("KMS KeyProv for GMS", "UserID"),
            "--receiver-id".into(),
            field("KMS KeyProv for Alice", "UserID"),
            m.to_owned(),
        ]
    };
    let a = args(&msg);
    let out = kms(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(line(&text, "verified"), "yes");
    assert_eq!(line(&text, "ssv"), field("### Test 1: GMK", "GMK"));
    assert_eq!(line(&text, "cs_id"), "4");
    assert_eq!(line(&text, "srtp_master_key").len(), 32);
    assert_eq!(line(&text, "srtp_master_salt").len(), 28);

    // One flipped bit in the SAKKE payload: refused as an authentication failure.
    let mut bytes = B64.decode(msg.trim_start_matches("mikey ")).unwrap();
    bytes[300] ^= 1;
    let a = args(&B64.encode(bytes));
    let out = kms(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(line(&text, "verified"), "no");
    assert_eq!(line(&text, "reason"), "ECCSI signature does not verify");
    assert_eq!(line(&text, "mikey_error"), "0");
}

#[test]
fn create_then_verify_in_both_profiles() {
    let (ksak, kpak) = eccsi::generate_community(&mut OsRng);
    let (z, zpub) = sakke::generate_master(&mut OsRng);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let period = KeyPeriod::from_unix(now).unwrap();
    let mcx = McxPeriods {
        kms_uri: "kms.example.org".into(),
        period_len: 2_592_000,
        offset: 0,
    };
    let no = mcx.period_no(now + 2_208_988_800).unwrap();
    for (profile, sender, receiver) in [
        (
            "rfc6509",
            period.identifier("tel:+8888"),
            period.identifier("tel:+1234"),
        ),
        (
            "mcx",
            mcx.uid("sip:a@example.org", no).to_vec(),
            mcx.uid("sip:b@example.org", no).to_vec(),
        ),
    ] {
        let (ssk, pvt) = eccsi::issue_user_key(&ksak, &kpak, &sender, &mut OsRng);
        let rsk = sakke::issue_rsk(&z, &receiver).unwrap();
        let (kpak_h, z_h) = (hex::encode(kpak.to_bytes()), hex::encode(zpub.as_bytes()));
        let (s_h, r_h) = (hex::encode(&sender), hex::encode(&receiver));
        let out = kms(&[
            "imessage",
            "create",
            "--ssk",
            &hex::encode(ssk.to_bytes()),
            "--pvt",
            &hex::encode(pvt.to_bytes()),
            "--kpak",
            &kpak_h,
            "--z",
            &z_h,
            "--sender-id",
            &s_h,
            "--receiver-id",
            &r_h,
            "--profile",
            profile,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let b64 = stdout(&out).trim().to_owned();
        let out = kms(&[
            "imessage",
            "verify",
            "--kpak",
            &kpak_h,
            "--z",
            &z_h,
            "--rsk",
            &hex::encode(rsk.as_bytes()),
            "--sender-id",
            &s_h,
            "--receiver-id",
            &r_h,
            &b64,
        ]);
        let text = stdout(&out);
        assert!(out.status.success(), "{profile}: {text}");
        // The printed keys are those the library derives from the printed SSV.
        let msg = IMessage::parse(&B64.decode(&b64).unwrap()).unwrap();
        let ssv = hex::decode(line(&text, "ssv")).unwrap();
        let cs: u8 = line(&text, "cs_id").parse().unwrap();
        let keys = kdf::srtp_keys(msg.header.prf, &ssv, cs, msg.header.csb_id, &msg.rand).unwrap();
        assert_eq!(line(&text, "srtp_master_key"), hex::encode(keys.master_key));
        assert_eq!(
            line(&text, "srtp_master_salt"),
            hex::encode(keys.master_salt)
        );
        // The sender's identity swapped for the receiver's: refused.
        let out = kms(&[
            "imessage",
            "verify",
            "--kpak",
            &kpak_h,
            "--z",
            &z_h,
            "--rsk",
            &hex::encode(rsk.as_bytes()),
            "--sender-id",
            &r_h,
            "--receiver-id",
            &r_h,
            &b64,
        ]);
        assert_eq!(out.status.code(), Some(1));
    }
}
