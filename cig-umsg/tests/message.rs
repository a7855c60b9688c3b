//! A text message with an attachment: encrypted to the recipient, delivered, acknowledged; a
//! duplicate id is acknowledged again but not shown; tampered ciphertext is refused.

use std::time::SystemTime;

use cig_mikey_sakke::kms::Community;
use cig_mikey_sakke::mikey::KeyPeriod;
use cig_umsg::frame::tag;
use cig_umsg::message::{AckStatus, Attachment, Body, Messenger, ack_status};
use rand_core::OsRng;

#[test]
fn message_delivered_acked_and_duplicate_dropped() {
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let p = KeyPeriod::from_unix(secs).unwrap();
    let c = Community::generate("example.org", &mut OsRng).unwrap();
    let mk = |id: &str| {
        let k = c.issue(id, p, &mut OsRng).unwrap();
        Messenger::new(c.key_material(id, vec![k], vec![], None))
    };
    let (a, mut b) = (mk("tel:+1111"), mk("tel:+8888"));
    let body = Body {
        text: "hello".into(),
        attachments: vec![Attachment {
            name: "a.txt".into(),
            content_type: "text/plain".into(),
            data: b"attached".to_vec(),
        }],
    };
    let (id, msg) = a.send("tel:+8888;5", &body, now, &mut OsRng).unwrap();
    assert!(
        !msg.get(tag::CIPHERTEXT)
            .unwrap()
            .windows(5)
            .any(|w| w == b"hello")
    );
    let (ack, got) = b.receive(&msg, now).unwrap();
    let got = got.unwrap();
    assert_eq!(
        (got.id, got.from.as_str(), &got.body),
        (id, "tel:+1111", &body)
    );
    assert_eq!(ack_status(&ack), Some((id, AckStatus::Delivered)));
    // At-least-once redelivery: acknowledged, not shown again.
    let (ack, again) = b.receive(&msg, now).unwrap();
    assert_eq!(
        (ack_status(&ack), again),
        (Some((id, AckStatus::Delivered)), None)
    );
    // Tampered ciphertext (new message): refused.
    let (id2, mut msg2) = a.send("tel:+8888", &body, now, &mut OsRng).unwrap();
    let ct = msg2
        .fields
        .iter_mut()
        .find(|f| f.tag == tag::CIPHERTEXT)
        .unwrap();
    ct.value[0] ^= 1;
    let (ack, none) = b.receive(&msg2, now).unwrap();
    assert_eq!(
        (ack_status(&ack), none),
        (Some((id2, AckStatus::Refused)), None)
    );
}

#[test]
fn body_round_trip_and_malformed() {
    let body = Body {
        text: "x".into(),
        attachments: vec![],
    };
    assert_eq!(Body::decode(&body.encode()).unwrap(), body);
    assert!(Body::decode(&[]).is_err());
}
