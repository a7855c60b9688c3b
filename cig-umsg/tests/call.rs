//! Two clients and the switch core in memory: registration, call set-up A→B through the switch
//! (BANG/ROUTED/GROWL/TALK/HANGUP), both ends derive the same SRTP keys; a BANG with a bad
//! signature and a replayed I_MESSAGE are refused before SAKKE; the caller's answer timer on a
//! virtual clock; ended sessions leave the client and switch tables; deferred verification of
//! incoming BANGs: frames for a session being verified applied in order after it, a forged BANG
//! changing no state, a replay refused after verification while in flight and before it after.

use std::time::{Duration, SystemTime};

use cig_mikey_sakke::keystore::KeyMaterial;
use cig_mikey_sakke::kms::Community;
use cig_mikey_sakke::mikey::KeyPeriod;
use cig_umsg::Error;
use cig_umsg::call::{CallRelay, CallState, Calls, HangupReason, Media, SessionId};
use cig_umsg::client::{ClientSession, Event};
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

/// Keys of tel:+1111 (A) and tel:+8888 (B) in a fresh community, and the registrar that
/// accepted both.
fn registered_pair(now: SystemTime) -> (KeyMaterial, KeyMaterial, Registrar) {
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
    (ka, kb, reg)
}

#[test]
fn call_through_switch_and_refusals() {
    let now = SystemTime::now();
    let (ka, kb, reg) = registered_pair(now);
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

/// Client sessions on a switch core in memory, with a virtual clock.
struct Net {
    sw: cig_umsg::switch::SwitchCore,
    clients: Vec<ClientSession>,
    now: SystemTime,
}

impl Net {
    fn new(ids: &[&str], now: SystemTime) -> Net {
        let c = Community::generate("example.org", &mut OsRng).unwrap();
        let sw = cig_umsg::switch::SwitchCore::new(
            c.kpak,
            "192.0.2.1:4000".into(),
            cig_umsg::switch::StoreLimits::default(),
        );
        let clients = ids
            .iter()
            .map(|id| ClientSession::new(material(&c, id, now), now))
            .collect();
        let mut net = Net { sw, clients, now };
        net.pump();
        net
    }

    fn unix(&self) -> u64 {
        self.now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    /// Moves frames until no client has anything to send; the frames the switch got.
    fn pump(&mut self) -> Vec<cig_umsg::frame::Frame> {
        let (unix, now) = (self.unix(), self.now);
        let mut seen = Vec::new();
        loop {
            let mut moved = false;
            for i in 0..self.clients.len() {
                while let Some(f) = self.clients[i].poll_transmit() {
                    moved = true;
                    for t in self.sw.handle(i as u64, &f, unix, &mut OsRng) {
                        let c = &mut self.clients[t.conn as usize];
                        c.handle_frame(&t.frame, now, &mut OsRng).unwrap();
                    }
                    seen.push(f);
                }
            }
            if !moved {
                return seen;
            }
        }
    }

    /// Advances the virtual clock to `t`, running every client's due timers.
    fn advance_to(&mut self, t: SystemTime) -> Vec<cig_umsg::frame::Frame> {
        self.now = t;
        for c in &mut self.clients {
            if c.poll_timeout() <= t {
                c.handle_timeout(t);
            }
        }
        self.pump()
    }

    fn call_events(&mut self, i: usize) -> Vec<SessionId> {
        std::iter::from_fn(|| self.clients[i].poll_event())
            .filter_map(|e| match e {
                Event::Call(id) => Some(id),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn unanswered_call_ends_with_no_answer_at_the_answer_timeout() {
    let start = SystemTime::now();
    let mut net = Net::new(&["tel:+1111", "tel:+8888"], start);
    let offer = Media {
        codecs: vec![8],
        dtmf_pt: 101,
        ssrc: 1,
    };
    // A configured answer timeout of 45 s (the default is 60 s).
    assert_eq!(cig_umsg::call::ANSWER_TIMEOUT, Duration::from_secs(60));
    net.clients[0]
        .calls
        .set_answer_timeout(Duration::from_secs(45));
    let (id, bang) = net.clients[0]
        .calls
        .dial("tel:+8888", &offer, start, &mut OsRng)
        .unwrap();
    net.clients[0].send(bang);
    net.pump();
    let g = net.clients[1].calls.growl(&id).unwrap();
    net.clients[1].send(g);
    net.pump();
    assert_eq!(
        net.clients[0].calls.get(&id).unwrap().state,
        CallState::Growl
    );
    net.call_events(0);
    // The keepalive timers (PING at 30 s) come first, then the answer deadline.
    let deadline = start + Duration::from_secs(45);
    let mut t = net.clients[0].poll_timeout();
    while t < deadline {
        net.advance_to(t);
        assert_eq!(
            net.clients[0].calls.get(&id).unwrap().state,
            CallState::Growl
        );
        t = net.clients[0].poll_timeout();
    }
    assert_eq!(
        t, deadline,
        "the caller's next timer is the answer deadline"
    );
    let sent = net.advance_to(deadline);
    // Towards the switch: HANGUP(timeout); towards the application: the call ended, no answer.
    let hangup = sent.iter().find(|f| f.kind == FrameType::Hangup).unwrap();
    assert_eq!(
        hangup.get(tag::REASON),
        Some(&[HangupReason::Timeout as u8][..])
    );
    assert_eq!(net.call_events(0), [id]);
    let c = net.clients[0].calls.get(&id).unwrap();
    assert_eq!(
        (c.state, c.reason),
        (CallState::Hangup, Some(HangupReason::Timeout))
    );
    // The callee got the HANGUP through the switch; both tables are empty.
    assert_eq!(
        net.clients[1].calls.get(&id).unwrap().reason,
        Some(HangupReason::Timeout)
    );
    assert!(net.clients[0].calls.is_empty() && net.clients[1].calls.is_empty());
    assert!(net.sw.relay().is_empty());
    // No answer timer is left.
    assert!(net.clients[0].poll_timeout() > deadline);
    assert!(net.clients[0].calls.poll_timeout().is_none());
}

#[test]
fn answered_call_is_not_timed_out_and_ended_calls_leave_every_table() {
    let start = SystemTime::now();
    let mut net = Net::new(&["tel:+1111", "tel:+8888"], start);
    let offer = Media {
        codecs: vec![8],
        dtmf_pt: 101,
        ssrc: 1,
    };
    const N: usize = 4;
    for n in 0..N {
        let now = net.now;
        let (id, bang) = net.clients[0]
            .calls
            .dial("tel:+8888", &offer, now, &mut OsRng)
            .unwrap();
        net.clients[0].send(bang);
        net.pump();
        let talk = net.clients[1].calls.answer(&id, &offer).unwrap();
        net.clients[1].send(talk);
        net.pump();
        assert_eq!(
            net.clients[0].calls.get(&id).unwrap().state,
            CallState::Talk
        );
        assert_eq!(
            net.clients[0].calls.table(now).len(),
            2,
            "MSG row + the live call"
        );
        assert_eq!(net.sw.relay().len(), 1);
        // Answered: no answer timer any more.
        assert!(net.clients[0].calls.poll_timeout().is_none());
        // Either end hangs up.
        let (by, other) = if n % 2 == 0 { (0, 1) } else { (1, 0) };
        let bye = net.clients[by]
            .calls
            .hangup(&id, HangupReason::Normal)
            .unwrap();
        net.clients[by].send(bye);
        net.pump();
        let c = net.clients[other].calls.get(&id).unwrap();
        assert_eq!(
            (c.state, c.reason),
            (CallState::Hangup, Some(HangupReason::Normal))
        );
        net.advance_to(now + Duration::from_secs(61));
        assert_eq!(
            net.clients[0].calls.get(&id).unwrap().reason,
            Some(HangupReason::Normal),
            "not timed out after it ended"
        );
    }
    for c in &net.clients {
        assert_eq!(c.calls.len(), 0);
        assert_eq!(c.calls.table(net.now).len(), 1, "only the messaging row");
    }
    assert_eq!(net.sw.relay().len(), 0);
}

/// A BANG from tel:+1111 as the switch forwards it to tel:+8888 (MEDIA_ADDR set), and B's keys.
fn bang_to_b() -> (KeyMaterial, cig_umsg::frame::Frame, SessionId) {
    let now = SystemTime::now();
    let (ka, kb, reg) = registered_pair(now);
    let offer = Media {
        codecs: vec![8],
        dtmf_pt: 101,
        ssrc: 7,
    };
    let (id, bang) = Calls::new(ka, now)
        .dial("tel:+8888", &offer, now, &mut OsRng)
        .unwrap();
    let out = CallRelay::new("203.0.113.7:40000".into()).on_frame(1, &bang, &reg);
    (kb, only(out, 2), id)
}

fn with_session_id(f: &cig_umsg::frame::Frame, id: SessionId) -> cig_umsg::frame::Frame {
    let mut f = f.clone();
    f.fields
        .iter_mut()
        .find(|x| x.tag == tag::SESSION_ID)
        .unwrap()
        .value = id.to_vec();
    f
}

fn deferred(kb: KeyMaterial) -> ClientSession {
    let mut s = ClientSession::new(kb, SystemTime::now());
    s.set_deferred_verification(true);
    assert_eq!(s.poll_transmit().map(|f| f.kind), Some(FrameType::Hello));
    s
}

fn events(s: &mut ClientSession) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

#[test]
fn deferred_bang_then_hangup_are_applied_in_order() {
    let (kb, bang, id) = bang_to_b();
    let now = SystemTime::now();
    let mut b = deferred(kb);
    b.handle_frame(&bang, now, &mut OsRng).unwrap();
    // Checked, not verified: no session, no event, one job.
    assert!(b.calls.get(&id).is_none());
    assert!(events(&mut b).is_empty());
    let job = b.poll_verification().unwrap();
    assert_eq!(job.id(), &id);
    assert!(b.poll_verification().is_none());
    // The caller cancels while the BANG is being verified: the HANGUP is held.
    let hangup = cig_umsg::frame::Frame::new(FrameType::Hangup)
        .with(tag::SESSION_ID, id)
        .with(tag::REASON, [HangupReason::Normal as u8]);
    b.handle_frame(&hangup, now, &mut OsRng).unwrap();
    assert!(b.calls.get(&id).is_none() && events(&mut b).is_empty());
    assert_eq!(b.verifying(), 1);
    // Verified (as a worker would) and adopted: the BANG, then the HANGUP, in that order.
    let v = job.verify();
    assert!(v.is_ok());
    b.verified(v, now);
    let got = events(&mut b);
    assert!(
        matches!(got[..], [Event::Call(x), Event::Call(y)] if x == id && y == id),
        "{got:?}"
    );
    let c = b.calls.get(&id).unwrap();
    assert_eq!(
        (c.state, c.reason),
        (CallState::Hangup, Some(HangupReason::Normal))
    );
    assert_eq!((b.calls.len(), b.verifying()), (0, 0));
    assert!(b.poll_transmit().is_none(), "nothing to answer");
}

#[test]
fn deferred_bad_signature_changes_no_state() {
    let (kb, bang, id) = bang_to_b();
    let now = SystemTime::now();
    let mut forged = bang.clone();
    let im = forged
        .fields
        .iter_mut()
        .find(|f| f.tag == tag::IMESSAGE)
        .unwrap();
    let n = im.value.len();
    im.value[n - 40] ^= 1;
    let mut b = deferred(kb);
    b.handle_frame(&forged, now, &mut OsRng).unwrap();
    let v = b.poll_verification().unwrap().verify();
    assert!(!v.is_ok());
    b.verified(v, now);
    let got = events(&mut b);
    assert!(
        matches!(
            &got[..],
            [Event::CallRefused(Error::Crypto(
                cig_mikey_sakke::Error::BadSignature
            ))]
        ),
        "{got:?}"
    );
    let reply = b.poll_transmit().unwrap();
    assert_eq!(reply.kind, FrameType::Hangup);
    assert_eq!(
        reply.get(tag::REASON),
        Some(&[HangupReason::Error as u8][..])
    );
    assert!(b.calls.get(&id).is_none());
    assert_eq!((b.calls.len(), b.verifying()), (0, 0));
    // Nothing was recorded against replay: the genuine BANG with the same T, RAND and CSB ID
    // and the same session id is accepted.
    b.handle_frame(&bang, now, &mut OsRng).unwrap();
    let v = b.poll_verification().unwrap().verify();
    b.verified(v, now);
    assert!(matches!(events(&mut b)[..], [Event::Call(x)] if x == id));
    assert_eq!(b.calls.get(&id).unwrap().state, CallState::Bang);
}

#[test]
fn replay_is_refused_after_verification_and_then_before_it() {
    let (kb, bang, id) = bang_to_b();
    let now = SystemTime::now();
    let mut b = deferred(kb);
    // Two copies of one I_MESSAGE under two session ids, both checked before either is
    // verified: both pass the cheap checks (the replay cache is only updated after a
    // signature verifies)...
    let copy = with_session_id(&bang, [9; 12]);
    b.handle_frame(&bang, now, &mut OsRng).unwrap();
    b.handle_frame(&copy, now, &mut OsRng).unwrap();
    let (first, second) = (
        b.poll_verification().unwrap(),
        b.poll_verification().unwrap(),
    );
    // ...verified in parallel, the second to finish is refused as a replay when adopted.
    let (v2, v1) = std::thread::scope(|s| {
        let h = s.spawn(|| second.verify());
        (h.join().unwrap(), first.verify())
    });
    b.verified(v1, now);
    b.verified(v2, now);
    let got = events(&mut b);
    assert!(
        matches!(&got[..], [Event::Call(x), Event::CallRefused(Error::Crypto(cig_mikey_sakke::Error::Replay))] if *x == id),
        "{got:?}"
    );
    assert_eq!(b.calls.len(), 1);
    assert!(b.calls.get(&[9; 12]).is_none());
    // A third copy is refused by the cheap check, before any public-key work: no job.
    b.handle_frame(&with_session_id(&bang, [8; 12]), now, &mut OsRng)
        .unwrap();
    assert!(b.poll_verification().is_none());
    let got = events(&mut b);
    assert!(
        matches!(
            &got[..],
            [Event::CallRefused(Error::Crypto(
                cig_mikey_sakke::Error::Replay
            ))]
        ),
        "{got:?}"
    );
}
