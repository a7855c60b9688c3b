//! The switch core with two clients: a message to an offline identity is stored, delivered when
//! it registers, and its MSG_ACK reaches the sender; an unacknowledged message is re-sent with
//! back-off and on reconnection until the recipient acknowledges it (shown once); frames before
//! registration are refused; a lost connection hangs up the other leg of its calls.

use std::time::SystemTime;

use cig_mikey_sakke::keystore::KeyMaterial;
use cig_mikey_sakke::kms::Community;
use cig_mikey_sakke::mikey::KeyPeriod;
use cig_umsg::call::{Calls, HangupReason, Media};
use cig_umsg::frame::{Frame, FrameType, tag};
use cig_umsg::message::{AckStatus, Body, Messenger, ack_status};
use cig_umsg::register::{Transmit, register_frame};
use cig_umsg::switch::{RESEND_FIRST, StoreLimits, SwitchCore};
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

fn setup() -> (SwitchCore, KeyMaterial, KeyMaterial, SystemTime, u64) {
    let now = SystemTime::now();
    let unix = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let p = KeyPeriod::from_unix(unix).unwrap();
    let c = Community::generate("example.org", &mut OsRng).unwrap();
    let mk = |id: &str| c.key_material(id, vec![c.issue(id, p, &mut OsRng).unwrap()], vec![], None);
    let sw = SwitchCore::new(c.kpak, "198.51.100.1:5000".into(), StoreLimits::default());
    (sw, mk("tel:+1111"), mk("tel:+8888"), now, unix)
}

fn body(text: &str) -> Body {
    Body {
        text: text.into(),
        attachments: vec![],
    }
}

#[test]
fn unacknowledged_message_is_resent_with_backoff_until_acknowledged() {
    let (mut sw, ka, kb, now, t0) = setup();
    register(&mut sw, 1, &ka, t0);
    register(&mut sw, 2, &kb, t0);
    let (id, msg) = Messenger::new(ka)
        .send("tel:+8888", &body("hi"), now, &mut OsRng)
        .unwrap();
    // B is online: forwarded at once, and held until B acknowledges.
    let out = sw.handle(1, &msg, t0, &mut OsRng);
    assert_eq!(
        (out.len(), out[0].conn, out[0].frame.kind),
        (1, 2, FrameType::Msg)
    );
    assert_eq!(sw.stored(), 1);
    // B's acknowledgement is lost: re-sent after 5 s, then 10 s, 20 s later.
    let mut b = Messenger::new(kb);
    let (_, got) = b.receive(&out[0].frame, now).unwrap();
    assert!(got.is_some());
    let mut at = t0;
    for wait in [RESEND_FIRST, 2 * RESEND_FIRST, 4 * RESEND_FIRST] {
        assert_eq!(sw.poll_timeout(), Some(at + wait));
        assert!(sw.handle_timeout(at + wait - 1).is_empty());
        at += wait;
        let again = sw.handle_timeout(at);
        assert_eq!((again.len(), again[0].conn), (1, 2));
        // The re-sent copy is acknowledged but not shown again.
        let (ack, shown) = b.receive(&again[0].frame, now).unwrap();
        assert!(shown.is_none());
        assert_eq!(ack_status(&ack), Some((id, AckStatus::Delivered)));
        if wait == 4 * RESEND_FIRST {
            // This acknowledgement arrives: the sender gets it once, the store is empty.
            let out = sw.handle(2, &ack, at, &mut OsRng);
            assert_eq!(
                (out.len(), out[0].conn, ack_status(&out[0].frame)),
                (1, 1, Some((id, AckStatus::Delivered)))
            );
            assert!(
                sw.handle(2, &ack, at, &mut OsRng).is_empty(),
                "a repeat is dropped"
            );
        }
    }
    assert_eq!(sw.stored(), 0);
    // Timers that come up for an acknowledged message do nothing.
    while let Some(t) = sw.poll_timeout() {
        assert!(sw.handle_timeout(t).is_empty());
    }
}

#[test]
fn recipient_dropping_before_its_ack_gets_the_message_again_and_shows_it_once() {
    let (mut sw, ka, kb, now, t0) = setup();
    register(&mut sw, 1, &ka, t0);
    let (id, msg) = Messenger::new(ka)
        .send("tel:+8888", &body("while away"), now, &mut OsRng)
        .unwrap();
    let out = sw.handle(1, &msg, t0, &mut OsRng);
    assert_eq!(ack_status(&out[0].frame), Some((id, AckStatus::Stored)));
    // B registers, receives and shows the message, and loses its connection before its
    // MSG_ACK is sent.
    let out = register(&mut sw, 2, &kb, t0);
    let first = out.iter().find(|t| t.frame.kind == FrameType::Msg).unwrap();
    let mut b = Messenger::new(kb.clone());
    let (_lost_ack, shown) = b.receive(&first.frame, now).unwrap();
    assert_eq!(shown.unwrap().body.text, "while away");
    assert!(sw.disconnect(2).is_empty());
    assert_eq!(sw.stored(), 1, "still held");
    // No re-send to nobody.
    while let Some(t) = sw.poll_timeout() {
        assert!(sw.handle_timeout(t).is_empty());
    }
    // B reconnects (a new messenger carrying the ids it has seen, as the driver does).
    let out = register(&mut sw, 3, &kb, t0 + 60);
    let again: Vec<_> = out
        .iter()
        .filter(|t| t.frame.kind == FrameType::Msg)
        .collect();
    assert_eq!((again.len(), again[0].conn), (1, 3));
    let mut b2 = Messenger::new(kb);
    b2.set_seen(b.take_seen());
    let (ack, shown) = b2.receive(&again[0].frame, now).unwrap();
    assert!(shown.is_none(), "shown once");
    let out = sw.handle(3, &ack, t0 + 60, &mut OsRng);
    assert_eq!(
        (out[0].conn, ack_status(&out[0].frame)),
        (1, Some((id, AckStatus::Delivered)))
    );
    assert_eq!(sw.stored(), 0);
}

#[test]
fn only_the_recipient_acknowledges_and_the_store_is_bounded() {
    let (_, ka, kb, now, t0) = setup();
    let mut sw = SwitchCore::new(
        ka.kpak,
        "198.51.100.1:5000".into(),
        StoreLimits {
            per_identity: 1,
            total: 8,
        },
    );
    register(&mut sw, 1, &ka, t0);
    let a = Messenger::new(ka);
    let (id, msg) = a.send("tel:+8888", &body("1"), now, &mut OsRng).unwrap();
    sw.handle(1, &msg, t0, &mut OsRng);
    let (id2, msg2) = a.send("tel:+8888", &body("2"), now, &mut OsRng).unwrap();
    let out = sw.handle(1, &msg2, t0, &mut OsRng);
    assert_eq!(ack_status(&out[0].frame), Some((id2, AckStatus::Refused)));
    // The sender cannot clear the message by acknowledging it itself.
    let fake = Frame::new(FrameType::MsgAck)
        .with(tag::MESSAGE_ID, id)
        .with(tag::ACK_STATUS, [AckStatus::Delivered as u8]);
    assert!(sw.handle(1, &fake, t0, &mut OsRng).is_empty());
    assert_eq!(sw.stored(), 1);
    let out = register(&mut sw, 2, &kb, t0);
    assert_eq!(
        out.iter()
            .filter(|t| t.frame.kind == FrameType::Msg)
            .count(),
        1
    );
}
