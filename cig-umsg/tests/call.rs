//! Two clients and the switch core in memory: registration, call set-up A→B through the switch
//! (BANG/ROUTED/GROWL/TALK/HANGUP), both ends derive the same SRTP keys; a BANG with a bad
//! signature and a replayed I_MESSAGE are refused before SAKKE.

use std::time::SystemTime;

use cig_mikey_sakke::keystore::KeyMaterial;
use cig_mikey_sakke::kms::Community;
use cig_mikey_sakke::mikey::KeyPeriod;
use cig_umsg::Error;
use cig_umsg::call::{CallRelay, CallState, Calls, HangupReason, Media};
use cig_umsg::frame::{FrameType, tag};
use cig_umsg::register::{Registrar, Transmit, register_frame};
use rand_core::OsRng;

fn material(c: &Community, id: &str, now: SystemTime) -> KeyMaterial {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let keys = c
        .issue(id, KeyPeriod::from_unix(secs).unwrap(), &mut OsRng)
        .unwrap();
    c.key_material(id, vec![keys], vec![], None)
}

fn only(out: Vec<Transmit>, conn: u64) -> cig_umsg::frame::Frame {
    let t: Vec<_> = out.into_iter().filter(|t| t.conn == conn).collect();
    assert_eq!(t.len(), 1);
    t.into_iter().next().unwrap().frame
}

#[test]
fn call_through_switch_and_refusals() {
    let now = SystemTime::now();
    let unix = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let c = Community::generate("example.org", &mut OsRng).unwrap();
    let (ka, kb) = (
        material(&c, "tel:+1111", now),
        material(&c, "tel:+8888", now),
    );
    let mut reg = Registrar::new(c.kpak);
    for (conn, k) in [(1, &ka), (2, &kb)] {
        let ch = reg.hello(conn, unix, &mut OsRng);
        let out = reg.register(conn, &register_frame(k, &ch, &mut OsRng).unwrap(), unix);
        assert_eq!(only(out, conn).kind, FrameType::Registered);
    }
    let mut relay = CallRelay::new("203.0.113.7:40000".into());
    let (mut a, mut b) = (Calls::new(ka, now), Calls::new(kb.clone(), now));
    let offer = Media {
        codecs: vec![8, 0],
        dtmf_pt: 101,
        ssrc: 0x1111,
    };
    let (id, bang) = a.dial("tel:+8888;101", &offer, now, &mut OsRng).unwrap();
    assert_eq!(a.get(&id).unwrap().state, CallState::Create);
    let out = relay.on_frame(1, &bang, &reg);
    let to_b = out.iter().find(|t| t.conn == 2).unwrap().frame.clone();
    a.on_frame(&only(out, 1), now).unwrap();
    assert_eq!(a.get(&id).unwrap().state, CallState::Bang);
    assert_eq!(to_b.get(tag::TO), Some(&b"tel:+8888;101"[..]));

    // A tampered signature: refused (the ECCSI check runs before decapsulation).
    let mut forged = to_b.clone();
    let im = forged
        .fields
        .iter_mut()
        .find(|f| f.tag == tag::IMESSAGE)
        .unwrap();
    let n = im.value.len();
    im.value[n - 40] ^= 1;
    let mut fresh = Calls::new(kb, now);
    let (e, reply) = fresh.on_frame(&forged, now).unwrap_err();
    assert_eq!(e, Error::Crypto(cig_mikey_sakke::Error::BadSignature));
    assert_eq!(reply.unwrap().kind, FrameType::Hangup);

    b.on_frame(&to_b, now).unwrap();
    assert_eq!(b.get(&id).unwrap().state, CallState::Bang);
    assert_eq!(
        b.get(&id).unwrap().media_addr.as_deref(),
        Some("203.0.113.7:40000")
    );
    assert_eq!(a.get(&id).unwrap().keys, b.get(&id).unwrap().keys);

    // The same I_MESSAGE again (under a new session id): a replay.
    let mut replay = to_b.clone();
    replay
        .fields
        .iter_mut()
        .find(|f| f.tag == tag::SESSION_ID)
        .unwrap()
        .value = vec![9; 12];
    let (e, _) = b.on_frame(&replay, now).unwrap_err();
    assert_eq!(e, Error::Crypto(cig_mikey_sakke::Error::Replay));

    let growl = b.growl(&id).unwrap();
    a.on_frame(&only(relay.on_frame(2, &growl, &reg), 1), now)
        .unwrap();
    assert_eq!(a.get(&id).unwrap().state, CallState::Growl);
    let answer = Media {
        codecs: vec![8],
        dtmf_pt: 101,
        ssrc: 0x2222,
    };
    let talk = b.answer(&id, &answer).unwrap();
    a.on_frame(&only(relay.on_frame(2, &talk, &reg), 1), now)
        .unwrap();
    assert_eq!(a.get(&id).unwrap().state, CallState::Talk);
    assert_eq!(a.get(&id).unwrap().remote_media, Some(answer));
    let rows = a.table(now);
    assert_eq!(rows[0].state, "MSG");
    assert_eq!((rows[1].state, rows[1].id.len()), ("TALK", 16));

    let bye = a.hangup(&id, HangupReason::Normal).unwrap();
    b.on_frame(&only(relay.on_frame(1, &bye, &reg), 2), now)
        .unwrap();
    assert_eq!(b.get(&id).unwrap().state, CallState::Hangup);
    assert_eq!(b.get(&id).unwrap().reason, Some(HangupReason::Normal));

    // No registration for the routing identity: HANGUP(no route).
    let (_, bang) = a.dial("tel:+9999w1", &offer, now, &mut OsRng).unwrap();
    let hang = only(relay.on_frame(1, &bang, &reg), 1);
    assert_eq!(
        hang.get(tag::REASON),
        Some(&[HangupReason::NoRoute as u8][..])
    );
}
