//! Two cig-sip user agents on the simulated network (virtual clock, loss, reordering): calls,
//! CANCEL, rejection, hold by re-INVITE, OPTIONS, MESSAGE and access control.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cig_sip::message::{Message, NameAddr, Uri};
use cig_sip::sdp::{self, AudioCapabilities, Direction, SessionDescription};
use cig_sip::sim::Network;
use cig_sip::transaction::Transport;
use cig_sip::ua::{
    CallHandle, EndReason, Event, OutgoingCall, OutgoingMessage, Target, UaConfig, UserAgent,
};

const A: &str = "192.0.2.1:5060";
const B: &str = "192.0.2.2:5062";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn caps(port: u16) -> AudioCapabilities {
    AudioCapabilities::new("192.0.2.99".parse().unwrap(), port)
}

fn net(seed: u64, configure_b: impl FnOnce(&mut UaConfig)) -> Network {
    let mut cb = UaConfig::new(addr(B));
    configure_b(&mut cb);
    Network::new(
        UserAgent::new(UaConfig::new(addr(A)), seed),
        UserAgent::new(cb, seed + 1),
        seed,
    )
}

fn call_to_b(n: &mut Network, transport: Transport) -> CallHandle {
    let offer = sdp::offer(&caps(4000), 1, 1).to_bytes();
    n.with_peer(0, |ua, now| {
        ua.place_call(
            OutgoingCall {
                target: Target {
                    uri: Uri::parse(format!("sip:bob@{B}")).unwrap(),
                    destination: addr(B),
                    transport,
                },
                from: NameAddr::new(Uri::parse(format!("sip:alice@{A}")).unwrap()),
                to: NameAddr::new(Uri::parse(format!("sip:bob@{B}")).unwrap()),
                sdp: Bytes::from(offer),
                credentials: None,
            },
            now,
        )
    })
}

fn incoming(events: &[Event]) -> Option<(CallHandle, Bytes)> {
    events.iter().find_map(|e| match e {
        Event::IncomingCall { call, sdp, .. } => Some((*call, sdp.clone())),
        _ => None,
    })
}

fn ended(events: &[Event]) -> Option<EndReason> {
    events.iter().find_map(|e| match e {
        Event::Ended { reason, .. } => Some(*reason),
        _ => None,
    })
}

/// B answers an incoming call with an SDP answer built by [`sdp::answer`].
fn answer_at_b(n: &mut Network) -> CallHandle {
    assert!(
        n.run_until(Duration::from_secs(60), |e| incoming(&e[1]).is_some()),
        "INVITE never arrived"
    );
    let (call, offer) = incoming(&n.events[1]).unwrap();
    let offer = SessionDescription::parse(&offer).unwrap();
    let (answer, neg) = sdp::answer(&offer, &caps(5000), 2, 1).unwrap();
    assert_eq!(neg.remote_port, 4000);
    n.with_peer(1, |ua, now| {
        ua.ringing(call, now).unwrap();
        ua.answer(call, Bytes::from(answer.to_bytes()), now)
            .unwrap();
    });
    call
}

fn complete_call(seed: u64, loss: f64, jitter: Duration, transport: Transport) -> Network {
    let mut n = net(seed, |_| {});
    n.set_loss(loss);
    n.set_delay(Duration::from_millis(20), jitter);
    let a_call = call_to_b(&mut n, transport);
    answer_at_b(&mut n);
    assert!(
        n.run_until(Duration::from_secs(60), |e| e[0]
            .iter()
            .any(|e| matches!(e, Event::Answered { .. }))),
        "seed {seed}: no answer: {:?}",
        n.events
    );
    // Give the ACK time to get through (the UAS retransmits its 2xx until it does).
    n.run_until(Duration::from_secs(2), |_| false);
    n.with_peer(0, |ua, now| ua.hangup(a_call, now)).unwrap();
    assert!(
        n.run_until(Duration::from_secs(60), |e| ended(&e[0]).is_some()
            && ended(&e[1]).is_some()),
        "seed {seed}: not ended: {:?}",
        n.events
    );
    assert_eq!(ended(&n.events[0]), Some(EndReason::LocalHangup));
    assert_eq!(ended(&n.events[1]), Some(EndReason::RemoteHangup));
    n
}

#[test]
fn call_answer_and_hang_up() {
    let n = complete_call(1, 0.0, Duration::ZERO, Transport::Udp);
    let answered = n.events[0].iter().find_map(|e| match e {
        Event::Answered { sdp, .. } => Some(sdp.clone()),
        _ => None,
    });
    let answer = SessionDescription::parse(&answered.unwrap()).unwrap();
    let neg = sdp::accept_answer(&caps(4000), &answer).unwrap();
    assert_eq!((neg.codec, neg.remote_port), (sdp::Codec::Pcmu, 5000));
    assert!(
        n.events[0]
            .iter()
            .any(|e| matches!(e, Event::Trying { .. }))
    );
    assert!(
        n.events[0]
            .iter()
            .any(|e| matches!(e, Event::Ringing { status: 180, .. }))
    );
    assert_eq!(n.dropped, 0);
    assert_eq!(n.peers[0].call_count() + n.peers[1].call_count(), 0);
}

#[test]
fn calls_complete_under_20_percent_loss_with_reordering() {
    let mut dropped = 0;
    for seed in 0..20 {
        let n = complete_call(100 + seed, 0.2, Duration::from_millis(30), Transport::Udp);
        dropped += n.dropped;
    }
    assert!(
        dropped > 20,
        "the link must actually have lost datagrams ({dropped})"
    );
}

#[test]
fn cancel_before_answer() {
    let mut n = net(3, |_| {});
    let a_call = call_to_b(&mut n, Transport::Udp);
    assert!(n.run_until(Duration::from_secs(5), |e| incoming(&e[1]).is_some()));
    let (b_call, _) = incoming(&n.events[1]).unwrap();
    n.with_peer(1, |ua, now| ua.ringing(b_call, now)).unwrap();
    n.run_until(Duration::from_millis(100), |e| {
        e[0].iter().any(|e| matches!(e, Event::Ringing { .. }))
    });
    n.with_peer(0, |ua, now| ua.hangup(a_call, now)).unwrap();
    assert!(
        n.run_until(Duration::from_secs(5), |e| ended(&e[0]).is_some()
            && ended(&e[1]).is_some())
    );
    assert_eq!(ended(&n.events[1]), Some(EndReason::Cancelled));
    assert_eq!(ended(&n.events[0]), Some(EndReason::LocalHangup));
    assert!(
        !n.events[0]
            .iter()
            .any(|e| matches!(e, Event::Answered { .. } | Event::Rejected { .. }))
    );
}

#[test]
fn cancel_waits_for_a_provisional_response() {
    let mut n = net(4, |_| {});
    let a_call = call_to_b(&mut n, Transport::Udp);
    // Hang up at once: the CANCEL goes out after the 100 Trying arrives.
    n.with_peer(0, |ua, now| ua.hangup(a_call, now)).unwrap();
    assert!(
        n.run_until(Duration::from_secs(5), |e| ended(&e[0]).is_some()
            && ended(&e[1]).is_some())
    );
    assert_eq!(ended(&n.events[1]), Some(EndReason::Cancelled));
}

#[test]
fn rejection_passes_the_status_through() {
    let mut n = net(5, |_| {});
    call_to_b(&mut n, Transport::Udp);
    assert!(n.run_until(Duration::from_secs(5), |e| incoming(&e[1]).is_some()));
    let (b_call, _) = incoming(&n.events[1]).unwrap();
    n.with_peer(1, |ua, now| ua.reject(b_call, 486, now))
        .unwrap();
    assert!(n.run_until(Duration::from_secs(5), |e| {
        e[0].iter().any(|e| matches!(e, Event::Rejected { .. }))
    }));
    assert!(
        n.events[0]
            .iter()
            .any(|e| matches!(e, Event::Rejected { status: 486, .. }))
    );
    // The 486 was ACKed: B stops retransmitting it well before timer H.
    n.run_until(Duration::from_secs(1), |_| false);
    let before = n.delivered;
    n.run_until(Duration::from_secs(40), |_| false);
    assert_eq!(n.delivered, before);
}

#[test]
fn unanswered_invite_times_out_with_408() {
    let mut n = net(6, |_| {});
    n.set_loss(1.0);
    call_to_b(&mut n, Transport::Udp);
    assert!(n.run_until(Duration::from_secs(40), |e| !e[0].is_empty()));
    assert!(matches!(
        n.events[0][0],
        Event::Rejected { status: 408, .. }
    ));
    // Timer B is 64·T1 = 32 s.
    assert!(n.elapsed() >= Duration::from_secs(32) && n.elapsed() < Duration::from_secs(33));
}

/// Sends a raw request to B from A's address and returns B's responses.
fn raw_to_b(n: &mut Network, text: &str) -> Vec<Message> {
    let now = n.now();
    n.peers[1].handle_datagram(
        Bytes::copy_from_slice(text.as_bytes()),
        addr(A),
        Transport::Udp,
        now,
    );
    let mut out = Vec::new();
    while let Some(t) = n.peers[1].poll_transmit() {
        assert_eq!(t.destination, addr(A));
        out.push(Message::parse(t.payload).unwrap());
    }
    out
}

fn request(method: &str, extra: &str) -> String {
    format!(
        "{method} sip:bob@{B} SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bK{method}1\r\nMax-Forwards: 70\r\n\
From: <sip:alice@{A}>;tag=x\r\nTo: <sip:bob@{B}>\r\nCall-ID: raw-{method}\r\nCSeq: 1 {method}\r\n{extra}\
Content-Length: 0\r\n\r\n"
    )
}

fn status(m: &Message) -> u16 {
    match m {
        Message::Response(r) => r.status,
        Message::Request(_) => 0,
    }
}

#[test]
fn options_answered_with_allow_and_accept() {
    let mut n = net(7, |_| {});
    let out = raw_to_b(&mut n, &request("OPTIONS", ""));
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0]), 200);
    let h = out[0].headers();
    let allow: Vec<String> = h.allow().unwrap().iter().map(|m| m.to_string()).collect();
    assert!(
        allow.iter().any(|m| m == "INVITE") && !allow.iter().any(|m| m == "MESSAGE"),
        "{allow:?}"
    );
    assert!(
        h.accept()
            .unwrap()
            .iter()
            .any(|t| t.is("application", "sdp"))
    );
    // A retransmission is answered from the transaction.
    assert_eq!(raw_to_b(&mut n, &request("OPTIONS", "")).len(), 1);
}

#[test]
fn message_refused_with_405_when_messaging_is_off() {
    let mut n = net(8, |_| {});
    let out = raw_to_b(&mut n, &request("MESSAGE", "Content-Type: text/plain\r\n"));
    assert_eq!(status(&out[0]), 405);
    let allow = out[0].headers().allow().unwrap();
    assert!(allow.iter().any(|m| &**m == "INVITE"), "{allow:?}");
    assert!(!allow.iter().any(|m| &**m == "MESSAGE"), "{allow:?}");
    assert!(n.peers[1].poll_event().is_none());
}

/// A sends B a MESSAGE over a lossy, reordering link; B's application takes 6 s (virtual) to
/// answer 202: B keeps the transaction (absorbing retransmissions, 100 Trying after T2) and
/// A's result is the application's status.
#[test]
fn message_answered_later_by_the_application_under_loss() {
    for seed in 0..10 {
        let mut n = net(200 + seed, |c| c.messaging = true);
        n.set_loss(0.2);
        n.set_delay(Duration::from_millis(20), Duration::from_millis(30));
        let sent = n.with_peer(0, |ua, now| {
            ua.send_message(
                OutgoingMessage {
                    target: Target {
                        uri: Uri::parse(format!("sip:bob@{B}")).unwrap(),
                        destination: addr(B),
                        transport: Transport::Udp,
                    },
                    from: NameAddr::new(Uri::parse(format!("sip:alice@{A}")).unwrap()),
                    to: NameAddr::new(Uri::parse(format!("sip:bob@{B}")).unwrap()),
                    content_type: "text/plain;charset=UTF-8".into(),
                    body: Bytes::from_static(b"hello"),
                    credentials: None,
                },
                now,
            )
        });
        assert!(
            n.run_until(Duration::from_secs(30), |e| !e[1].is_empty()),
            "seed {seed}: MESSAGE never arrived"
        );
        let Event::IncomingMessage {
            message,
            body,
            content_type,
            from,
            ..
        } = n.events[1][0].clone()
        else {
            panic!("{:?}", n.events[1])
        };
        assert_eq!(&body[..], b"hello");
        assert_eq!(content_type, "text/plain;charset=UTF-8");
        assert_eq!(from.uri.to_string(), format!("sip:alice@{A}"));
        n.run_until(Duration::from_secs(6), |_| false);
        assert!(
            n.events[0].is_empty(),
            "answered before the application did"
        );
        n.with_peer(1, |ua, now| ua.respond_message(message, 202, now))
            .unwrap();
        assert!(
            n.run_until(Duration::from_secs(40), |e| !e[0].is_empty()),
            "seed {seed}: no result"
        );
        assert_eq!(
            n.events[0],
            [Event::MessageResult {
                message: sent,
                status: 202
            }],
            "seed {seed}"
        );
        assert_eq!(n.events[1].len(), 1, "one event for all retransmissions");
    }
}

#[test]
fn access_control_answers_403() {
    let mut n = net(10, |c| c.allow = vec!["198.51.100.0/24".parse().unwrap()]);
    let out = raw_to_b(&mut n, &request("INVITE", ""));
    assert_eq!(status(&out[0]), 403);
    assert!(n.peers[1].poll_event().is_none());
}

#[test]
fn rport_and_received_are_filled_in() {
    let mut n = net(11, |_| {});
    let text =
        request("OPTIONS", "").replace(&format!("UDP {A};"), "UDP client.invalid:5999;rport;");
    let out = raw_to_b(&mut n, &text);
    let via = out[0].headers().top_via().unwrap();
    assert_eq!(via.received(), Some("192.0.2.1"));
    assert_eq!(via.rport(), Some(Some(5060)));
}

#[test]
fn hold_and_resume_by_reinvite() {
    let mut n = net(12, |_| {});
    let a_call = call_to_b(&mut n, Transport::Udp);
    answer_at_b(&mut n);
    assert!(n.run_until(Duration::from_secs(5), |e| {
        e[0].iter().any(|e| matches!(e, Event::Answered { .. }))
    }));
    n.run_until(Duration::from_secs(1), |_| false);
    let (b_call, _) = incoming(&n.events[1]).unwrap();
    for (dir, expect) in [
        ("sendonly", Direction::RecvOnly),
        ("sendrecv", Direction::SendRecv),
    ] {
        let direction = if dir == "sendonly" {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        let offer = sdp::offer(
            &AudioCapabilities {
                direction,
                ..caps(4000)
            },
            1,
            2,
        );
        n.with_peer(0, |ua, now| {
            ua.reinvite(a_call, Bytes::from(offer.to_bytes()), now)
        })
        .unwrap();
        let want = if expect == Direction::RecvOnly { 1 } else { 2 };
        let updates = |e: &[Event]| {
            e.iter()
                .filter(|e| matches!(e, Event::SessionUpdated { .. }))
                .count()
        };
        assert!(
            n.run_until(Duration::from_secs(5), |e| updates(&e[0]) == want
                && updates(&e[1]) == want)
        );
        let Some(Event::SessionUpdated {
            local_sdp, call, ..
        }) = n.events[1]
            .iter()
            .rev()
            .find(|e| matches!(e, Event::SessionUpdated { .. }))
        else {
            unreachable!()
        };
        assert_eq!(*call, b_call);
        let answer = SessionDescription::parse(local_sdp).unwrap();
        assert_eq!(answer.media[0].direction, Some(expect));
    }
    assert_eq!(ended(&n.events[0]), None);
}

#[test]
fn transport_error_fails_the_call_with_503() {
    let mut n = net(13, |_| {});
    n.set_loss(1.0);
    let call = call_to_b(&mut n, Transport::Tcp);
    n.with_peer(0, |ua, _| {
        ua.handle_transport_error(addr(B), Transport::Tcp)
    });
    assert!(matches!(n.events[0][..], [Event::Rejected { call: c, status: 503, .. }] if c == call));
    assert_eq!(n.peers[0].call_count(), 0);
}

#[test]
fn requests_outside_a_dialog_and_unknown_extensions_are_refused() {
    let mut n = net(14, |_| {});
    let bye = request("BYE", "").replace(
        "To: <sip:bob@192.0.2.2:5062>",
        "To: <sip:bob@192.0.2.2:5062>;tag=gone",
    );
    assert_eq!(status(&raw_to_b(&mut n, &bye)[0]), 481);
    let out = raw_to_b(&mut n, &request("INVITE", "Require: 100rel, timer\r\n"));
    assert_eq!(status(&out[0]), 420);
    let unsupported = out[0]
        .headers()
        .get(&cig_sip::message::HeaderName::Unsupported)
        .map(|v| v.to_string());
    assert_eq!(unsupported.as_deref(), Some("100rel"));
    assert_eq!(status(&raw_to_b(&mut n, &request("SUBSCRIBE", ""))[0]), 405);
    assert!(n.peers[1].poll_event().is_none());
}
