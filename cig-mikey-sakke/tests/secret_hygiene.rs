//! Secrets never show in `Debug` output: key material, KMS community, transfer codes, SRTP
//! keys and accepted messages print redacted placeholders instead of key bytes.

use std::time::{Duration, UNIX_EPOCH};

use cig_mikey_sakke::bundle::TransferCode;
use cig_mikey_sakke::kms::Community;
use cig_mikey_sakke::mikey::{self, KeyPeriod, Profile, Receiver, ReceiverConfig, Request};
use rand_core::OsRng;

#[test]
fn debug_output_hides_every_secret() {
    let now = 1_795_694_400;
    let c = Community::generate("example.org", &mut OsRng).unwrap();
    let period = KeyPeriod::from_unix(now).unwrap();
    let keys = c.issue("tel:+8888", period, &mut OsRng).unwrap();
    let secrets = [
        hex::encode(keys.ssk.to_bytes()),
        hex::encode(keys.rsk.as_bytes()),
        hex::encode(c.ksak.to_bytes()),
        hex::encode(c.z.as_bytes()),
    ];
    let m = c.key_material("tel:+8888", vec![keys], vec![], None);
    let code = TransferCode::generate(&mut OsRng);

    // A message to ourselves, accepted, so the SSV and SRTP keys exist.
    let id = m.identifier(period);
    let signer = m.signing_key(period).unwrap();
    let req = Request {
        profile: Profile::Rfc6509,
        sender_id: &id,
        receiver_id: &id,
        now: UNIX_EPOCH + Duration::from_secs(now),
    };
    let created = mikey::create(&req, &signer, &m.zpub, &mut OsRng).unwrap();
    let accepted = Receiver::new(ReceiverConfig::default())
        .receive(created.message.as_bytes(), req.now, &m)
        .unwrap();
    let srtp = &accepted.srtp[0].1;
    let more = [
        hex::encode(accepted.ssv.as_bytes()),
        hex::encode(srtp.master_key),
        hex::encode(srtp.master_salt),
    ];

    let printed = format!("{m:?} {c:?} {code:?} {accepted:?} {signer:?} {created:?}");
    for s in secrets.iter().chain(more.iter()) {
        // Compare on a 16-hex-digit window so a secret cannot hide behind formatting.
        assert!(!printed.contains(&s[..16]), "secret {s} printed");
    }
    assert!(!printed.contains(code.as_str()));
    assert!(printed.contains("redacted"));
}
