//! Criterion bench `mikey/imessage_receive`: parse + ECCSI verify + SAKKE decapsulate + SRTP
//! key derivation of one RFC 6509 I_MESSAGE, as the gateway does for each incoming call.

use std::time::{Duration, UNIX_EPOCH};

use cig_mikey_sakke::mikey::{self, IMessage, KeyPeriod, Profile, Request};
use cig_mikey_sakke::{eccsi, sakke};
use criterion::{Criterion, criterion_group, criterion_main};
use rand_core::OsRng;

fn imessage_receive(c: &mut Criterion) {
    let now = UNIX_EPOCH + Duration::from_secs(1_795_694_400);
    let period = KeyPeriod::from_unix(1_795_694_400).expect("period");
    let (sender, receiver) = (
        period.identifier("tel:+8888"),
        period.identifier("tel:+447700900123"),
    );
    let (ksak, kpak) = eccsi::generate_community(&mut OsRng);
    let (z, zpub) = sakke::generate_master(&mut OsRng);
    let (ssk, pvt) = eccsi::issue_user_key(&ksak, &kpak, &sender, &mut OsRng);
    let signer = eccsi::SigningKey::new(&kpak, &sender, ssk, pvt).expect("key validates");
    let rsk = sakke::issue_rsk(&z, &receiver).expect("issue");
    // Per-KMS and per-RSK tables are built once when the keystore loads, not per message.
    zpub.prepare();
    rsk.prepare();
    let req = Request {
        profile: Profile::Rfc6509,
        sender_id: &sender,
        receiver_id: &receiver,
        now,
    };
    let created = mikey::create(&req, &signer, &zpub, &mut OsRng).expect("create");
    let bytes = created.message.as_bytes().to_vec();
    c.bench_function("mikey/imessage_receive", |b| {
        b.iter(|| {
            let msg = IMessage::parse(&bytes).expect("parses");
            let sender_id = mikey::sender_identity(&msg).expect("identity");
            let verified = mikey::verify(msg, &kpak, &sender_id).expect("verifies");
            let ssv = verified
                .decapsulate(&zpub, &receiver, &rsk)
                .expect("decapsulates");
            verified
                .message()
                .header
                .cs_map
                .cs_ids()
                .iter()
                .map(|cs| verified.srtp_keys(&ssv, *cs).expect("derives"))
                .collect::<Vec<_>>()
        })
    });
}

criterion_group!(benches, imessage_receive);
criterion_main!(benches);
