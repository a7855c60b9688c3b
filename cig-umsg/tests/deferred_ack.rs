//! Deferred acknowledgements and stable ids through the switch core: a gateway sends with its
//! own id and FROM with an extension; the recipient's application acknowledges only when the
//! message is safe, so the switch keeps re-sending until then; re-sends while the application
//! still holds it are not shown twice, a released message is shown again, an acknowledged
//! one never again; the sender's retry of a held message is answered "stored".

use std::time::{Duration, SystemTime};

use cig_umsg::frame::{Frame, FrameType, tag};
use cig_umsg::message::{AckStatus, Body, Messenger, ack_status};
use cig_umsg::register::register_frame;
use cig_umsg::switch::{RESEND_FIRST, StoreLimits, SwitchCore};
use cig_umsg::testing::TestDomain;
use rand_core::OsRng;

fn body(text: &str) -> Body {
    Body {
        text: text.into(),
        attachments: vec![],
    }
}

#[test]
fn the_application_acknowledges_after_keeping_the_message() {
    let d = TestDomain::new();
    let (kg, ku) = (d.keys("tel:+8888", &[]), d.keys("tel:+4670", &[]));
    let now = SystemTime::now();
    let t0 = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut sw = SwitchCore::new(
        d.community.kpak,
        "198.51.100.1:5000".into(),
        StoreLimits::default(),
    );
    for (conn, k) in [(1, &kg), (2, &ku)] {
        let ch = sw.handle(conn, &Frame::new(FrameType::Hello), t0, &mut OsRng);
        let r = register_frame(k, &ch[0].frame, &mut OsRng).unwrap();
        sw.handle(conn, &r, t0, &mut OsRng);
    }
    let gateway = Messenger::new(kg);
    let mut user = Messenger::new(ku);
    user.set_deferred_acks(true);
    let body = body("from the PBX");

    // The gateway's FROM keeps the extension; only its own identity may stand there.
    let id = [7u8; 16];
    let msg = gateway
        .send_as("tel:+8888;101", "tel:+4670", id, &body, now, &mut OsRng)
        .unwrap();
    assert!(
        gateway
            .send_as("tel:+9999;1", "tel:+4670", id, &body, now, &mut OsRng)
            .is_err()
    );
    let out = sw.handle(1, &msg, t0, &mut OsRng);
    assert_eq!((out.len(), out[0].conn), (1, 2));
    let (ack, got) = user.handle_msg(&out[0].frame, now).unwrap();
    assert!(ack.is_none(), "no MSG_ACK before the application's");
    let got = got.unwrap();
    assert_eq!(
        (got.id, got.from.as_str(), got.body.text.as_str()),
        (id, "tel:+8888;101", "from the PBX")
    );

    // The switch re-sends: not shown again while the application holds it.
    let t1 = t0 + RESEND_FIRST;
    let again = sw.handle_timeout(t1);
    assert_eq!(user.handle_msg(&again[0].frame, now).unwrap(), (None, None));
    // The gateway retries the same message (same id, new encryption): the switch has it.
    let retry = gateway
        .send_as("tel:+8888;101", "tel:+4670", id, &body, now, &mut OsRng)
        .unwrap();
    let out = sw.handle(1, &retry, t1, &mut OsRng);
    assert_eq!(
        (out[0].conn, ack_status(&out[0].frame)),
        (1, Some((id, AckStatus::Stored)))
    );
    assert_eq!(sw.stored(), 1);

    // The application could not keep it: the next re-send is shown again.
    user.release(&id);
    let t2 = t1 + 2 * RESEND_FIRST;
    let again = sw.handle_timeout(t2);
    let (ack, shown) = user.handle_msg(&again[0].frame, now).unwrap();
    assert!(ack.is_none());
    assert_eq!(shown.map(|r| r.id), Some(id));

    // Kept: the acknowledgement reaches the gateway and the switch forgets the message.
    let ack = user.ack(&id, AckStatus::Delivered);
    let out = sw.handle(2, &ack, t2, &mut OsRng);
    assert_eq!(
        (out[0].conn, ack_status(&out[0].frame)),
        (1, Some((id, AckStatus::Delivered)))
    );
    assert_eq!(sw.stored(), 0);
    // A late duplicate is answered delivered and not shown.
    let (ack, shown) = user.handle_msg(&retry, now).unwrap();
    assert_eq!(
        ack.as_ref().and_then(ack_status),
        Some((id, AckStatus::Delivered))
    );
    assert!(shown.is_none());

    // A message the application refuses is shown again when re-sent.
    let id2 = [8u8; 16];
    let m2 = gateway
        .send_as("tel:+8888", "tel:+4670", id2, &body, now, &mut OsRng)
        .unwrap();
    assert!(user.handle_msg(&m2, now).unwrap().1.is_some());
    let refused = user.ack(&id2, AckStatus::Refused);
    assert_eq!(ack_status(&refused), Some((id2, AckStatus::Refused)));
    assert!(user.handle_msg(&m2, now).unwrap().1.is_some());
    assert_eq!(user.take_seen().awaiting(), 1);
    // The MSG_ACK frame carries only id and status.
    assert_eq!(refused.get(tag::FROM), None);
}

#[test]
fn a_message_stored_for_an_hour_still_opens_but_not_one_from_the_future() {
    let d = TestDomain::new();
    let a = Messenger::new(d.keys("tel:+1111", &[]));
    let mut b = Messenger::new(d.keys("tel:+8888", &[]));
    let (now, hour) = (SystemTime::now(), Duration::from_secs(3600));
    let kept = body("kept by the switch");
    // Sent an hour ago (the switch stored it): opened, and its re-send is a duplicate.
    let (id, old) = a.send("tel:+8888", &kept, now - hour, &mut OsRng).unwrap();
    let (ack, got) = b.receive(&old, now).unwrap();
    assert_eq!(ack_status(&ack), Some((id, AckStatus::Delivered)));
    assert_eq!(got.unwrap().body, kept);
    let (ack, again) = b.receive(&old, now).unwrap();
    assert_eq!(ack_status(&ack), Some((id, AckStatus::Delivered)));
    assert!(again.is_none());
    // T ten minutes ahead of the receiver's clock: refused.
    let ahead = now + Duration::from_secs(600);
    let (id, future) = a.send("tel:+8888", &kept, ahead, &mut OsRng).unwrap();
    let (ack, got) = b.receive(&future, now).unwrap();
    assert_eq!(ack_status(&ack), Some((id, AckStatus::Refused)));
    assert!(got.is_none());
}
