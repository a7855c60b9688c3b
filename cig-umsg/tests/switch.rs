//! The switch core with two clients: a message to an offline identity is stored, delivered when
//! it registers, and its MSG_ACK reaches the sender; frames before registration are refused;
//! a lost connection hangs up the other leg of its calls.

use std::time::SystemTime;

use cig_mikey_sakke::keystore::KeyMaterial;
use cig_mikey_sakke::kms::Community;
use cig_mikey_sakke::mikey::KeyPeriod;
use cig_umsg::call::{Calls, HangupReason, Media};
use cig_umsg::frame::{Frame, FrameType, tag};
use cig_umsg::message::{AckStatus, Body, Messenger, ack_status};
use cig_umsg::register::{Transmit, register_frame};
use cig_umsg::switch::{StoreLimits, SwitchCore};
use rand_core::OsRng;

fn register(sw: &mut SwitchCore, conn: u64, k: &KeyMaterial, unix: u64) -> Vec<Transmit> {
    let ch = sw.handle(conn, &Frame::new(FrameType::Hello), unix, &mut OsRng);
    let r = register_frame(k, &ch[0].frame, &mut OsRng).unwrap();
    sw.handle(conn, &r, unix, &mut OsRng)
}

#[test]
fn store_and_forward_acks_and_disconnect() {
    let now = SystemTime::now();
    let unix = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let p = KeyPeriod::from_unix(unix).unwrap();
    let c = Community::generate("example.org", &mut OsRng).unwrap();
    let mk = |id: &str| c.key_material(id, vec![c.issue(id, p, &mut OsRng).unwrap()], vec![], None);
    let (ka, kb) = (mk("tel:+1111"), mk("tel:+8888"));
    let mut sw = SwitchCore::new(c.kpak, "198.51.100.1:5000".into(), StoreLimits::default());

    // Not registered yet: refused and closed.
    let out = sw.handle(
        1,
        &Frame::new(FrameType::Growl).with(tag::SESSION_ID, [0; 12]),
        unix,
        &mut OsRng,
    );
    assert!(out[0].close && out[0].frame.kind == FrameType::Refused);

    assert_eq!(
        register(&mut sw, 1, &ka, unix)[0].frame.kind,
        FrameType::Registered
    );
    let a = Messenger::new(ka.clone());
    let (id, msg) = a
        .send(
            "tel:+8888",
            &Body {
                text: "later".into(),
                attachments: vec![],
            },
            now,
            &mut OsRng,
        )
        .unwrap();
    let out = sw.handle(1, &msg, unix, &mut OsRng);
    assert_eq!(ack_status(&out[0].frame), Some((id, AckStatus::Stored)));
    assert_eq!(sw.stored(), 1);

    let out = register(&mut sw, 2, &kb, unix);
    let delivered = out
        .iter()
        .find(|t| t.conn == 2 && t.frame.kind == FrameType::Msg)
        .unwrap();
    let mut b = Messenger::new(kb.clone());
    let (ack, got) = b.receive(&delivered.frame, now).unwrap();
    assert_eq!(got.unwrap().body.text, "later");
    let out = sw.handle(2, &ack, unix, &mut OsRng);
    assert_eq!(
        (out[0].conn, ack_status(&out[0].frame)),
        (1, Some((id, AckStatus::Delivered)))
    );
    assert_eq!(sw.stored(), 0);

    // A call A→B, then B's connection drops: A gets HANGUP(unavailable).
    let mut calls = Calls::new(ka, now);
    let offer = Media {
        codecs: vec![0],
        dtmf_pt: 101,
        ssrc: 1,
    };
    let (sid, bang) = calls.dial("tel:+8888", &offer, now, &mut OsRng).unwrap();
    assert_eq!(sw.handle(1, &bang, unix, &mut OsRng).len(), 2);
    let out = sw.disconnect(2);
    assert_eq!(out[0].conn, 1);
    calls.on_frame(&out[0].frame, now).unwrap();
    assert_eq!(
        calls.get(&sid).unwrap().reason,
        Some(HangupReason::Unavailable)
    );
    assert_eq!(sw.registrar().route("tel:+8888"), None);
}
