//! Timer schedules of RFC 3261 §17 checked instant by instant on a virtual clock.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::message::{HeaderName, Request, Response};

const INVITE: &str = "INVITE sip:bob@192.0.2.2 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtx1;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@192.0.2.1>;tag=a1\r\n\
To: <sip:bob@192.0.2.2>\r\n\
Call-ID: tx@192.0.2.1\r\n\
CSeq: 1 INVITE\r\n\
Route: <sip:proxy.example;lr>\r\n\
Content-Length: 0\r\n\r\n";

fn request(text: &str) -> Request {
    Request::parse(Bytes::copy_from_slice(text.as_bytes())).unwrap()
}

fn response(req: &Request, status: u16) -> Response {
    let mut r = Response::from_request(req, status, "x");
    r.headers.set_to_tag("b1").unwrap();
    r
}

fn dest() -> std::net::SocketAddr {
    "192.0.2.2:5060".parse().unwrap()
}

/// Drives a transaction's timers until it reports no deadline or `limit` passed; returns the
/// instants (offset from `t0`) at which something was sent.
fn run_client(
    tx: &mut ClientTx,
    t0: Instant,
    timers: &Timers,
    out: &mut Outbox,
) -> (Vec<Duration>, bool) {
    let mut sent = Vec::new();
    let mut timed_out = false;
    while let Some(at) = tx.next_timeout() {
        let before = out.len();
        if tx.on_timeout(timers, at, out) {
            timed_out = true;
        }
        if out.len() > before {
            sent.push(at - t0);
        }
        out.clear();
    }
    (sent, timed_out)
}

fn ms(v: &[u64]) -> Vec<Duration> {
    v.iter().map(|&m| Duration::from_millis(m)).collect()
}

#[test]
fn invite_client_timer_a_doubles_and_b_times_out() {
    let timers = Timers::default();
    let t0 = Instant::now();
    let mut out = Outbox::new();
    let mut tx = ClientTx::start(
        request(INVITE),
        dest(),
        Transport::Udp,
        &timers,
        t0,
        &mut out,
    );
    assert_eq!(out.len(), 1);
    out.clear();
    let (sent, timed_out) = run_client(&mut tx, t0, &timers, &mut out);
    // Timer A: T1, 2T1, 4T1, ... (no cap); timer B at 64·T1 = 32 s.
    assert_eq!(sent, ms(&[500, 1500, 3500, 7500, 15500, 31500]));
    assert!(timed_out);
    assert!(tx.is_terminated());
}

#[test]
fn non_invite_client_timer_e_caps_at_t2() {
    let timers = Timers::default();
    let t0 = Instant::now();
    let mut out = Outbox::new();
    let opts = INVITE.replace("INVITE", "OPTIONS");
    let mut tx = ClientTx::start(
        request(&opts),
        dest(),
        Transport::Udp,
        &timers,
        t0,
        &mut out,
    );
    out.clear();
    let (sent, timed_out) = run_client(&mut tx, t0, &timers, &mut out);
    assert_eq!(
        sent,
        ms(&[
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ])
    );
    assert!(timed_out);
}

#[test]
fn invite_client_acks_non_2xx_and_absorbs_retransmissions() {
    let timers = Timers::default();
    let t0 = Instant::now();
    let mut out = Outbox::new();
    let req = request(INVITE);
    let mut tx = ClientTx::start(req.clone(), dest(), Transport::Udp, &timers, t0, &mut out);
    out.clear();
    assert!(
        tx.on_response(response(&req, 180), &timers, t0, &mut out)
            .is_some()
    );
    assert!(tx.is_proceeding());
    // No retransmission and no timeout once proceeding.
    assert_eq!(tx.next_timeout(), None);
    let busy = response(&req, 486);
    assert_eq!(
        tx.on_response(busy.clone(), &timers, t0, &mut out)
            .map(|r| r.status),
        Some(486)
    );
    let ack = Request::parse(out.pop_front().unwrap().payload).unwrap();
    assert_eq!(ack.method, crate::message::Method::Ack);
    assert_eq!(ack.uri, req.uri);
    assert_eq!(ack.headers.to().unwrap().tag(), Some("b1"));
    assert_eq!(ack.headers.cseq().unwrap().seq, 1);
    assert_eq!(ack.headers.top_via().unwrap().branch(), Some("z9hG4bKtx1"));
    assert_eq!(
        ack.headers.get(&HeaderName::Route),
        Some("<sip:proxy.example;lr>")
    );
    // The retransmitted 486 is absorbed and ACKed again.
    assert!(tx.on_response(busy, &timers, t0, &mut out).is_none());
    assert_eq!(out.len(), 1);
    out.clear();
    // Timer D: 32 s over UDP.
    assert_eq!(tx.next_timeout(), Some(t0 + Duration::from_secs(32)));
    assert!(!tx.on_timeout(&timers, t0 + Duration::from_secs(32), &mut out));
    assert!(tx.is_terminated());
}

#[test]
fn invite_client_passes_2xx_retransmissions_up_while_accepted() {
    let timers = Timers::default();
    let t0 = Instant::now();
    let mut out = Outbox::new();
    let req = request(INVITE);
    let mut tx = ClientTx::start(req.clone(), dest(), Transport::Tcp, &timers, t0, &mut out);
    assert_eq!(
        tx.next_timeout(),
        Some(t0 + timers.timeout()),
        "no timer A over TCP"
    );
    let ok = response(&req, 200);
    assert!(tx.on_response(ok.clone(), &timers, t0, &mut out).is_some());
    assert!(tx.on_response(ok, &timers, t0, &mut out).is_some());
    assert_eq!(out.len(), 1, "the transaction never ACKs a 2xx");
}

#[test]
fn invite_server_retransmits_final_until_ack() {
    let timers = Timers::default();
    let t0 = Instant::now();
    let mut out = Outbox::new();
    let src = dest();
    let mut tx = ServerTx::new(true, src, Transport::Udp);
    tx.respond(100, Bytes::from_static(b"100"), &timers, t0, &mut out);
    tx.on_retransmission(&mut out);
    assert_eq!(out.len(), 2, "a retransmitted INVITE gets the 100 again");
    out.clear();
    tx.respond(486, Bytes::from_static(b"486"), &timers, t0, &mut out);
    out.clear();
    let mut sent = Vec::new();
    // Timer G: T1 doubling up to T2, for 64·T1 (timer H) without ACK.
    let mut timed_out = false;
    while let Some(at) = tx.next_timeout() {
        if tx.on_timeout(&timers, at, &mut out) {
            timed_out = true;
        }
        if !out.is_empty() {
            sent.push(at - t0);
            out.clear();
        }
    }
    assert_eq!(
        sent,
        ms(&[
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ])
    );
    assert!(timed_out);

    // With an ACK: confirmed, then timer I (T4) ends it.
    let mut tx = ServerTx::new(true, src, Transport::Udp);
    tx.respond(486, Bytes::from_static(b"486"), &timers, t0, &mut out);
    assert!(tx.on_ack(&timers, t0 + Duration::from_millis(10)));
    assert_eq!(
        tx.next_timeout(),
        Some(t0 + Duration::from_millis(10) + timers.t4)
    );
}

#[test]
fn non_invite_server_answers_retransmissions_from_cache() {
    let timers = Timers::default();
    let t0 = Instant::now();
    let mut out = Outbox::new();
    let mut tx = ServerTx::new(false, dest(), Transport::Udp);
    tx.on_retransmission(&mut out);
    assert!(out.is_empty(), "nothing to resend before a response");
    tx.respond(200, Bytes::from_static(b"200"), &timers, t0, &mut out);
    tx.respond(500, Bytes::from_static(b"500"), &timers, t0, &mut out);
    tx.on_retransmission(&mut out);
    let payloads: Vec<_> = out.iter().map(|t| t.payload.clone()).collect();
    assert_eq!(
        payloads,
        [Bytes::from_static(b"200"), Bytes::from_static(b"200")]
    );
    // Timer J: 64·T1 over UDP.
    assert_eq!(tx.next_timeout(), Some(t0 + timers.timeout()));
    let mut tcp = ServerTx::new(false, dest(), Transport::Tcp);
    tcp.respond(200, Bytes::from_static(b"200"), &timers, t0, &mut out);
    assert_eq!(tcp.next_timeout(), Some(t0));
}
