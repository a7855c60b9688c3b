//! The TLS driver end to end on loopback: client and switch drivers over real TLS 1.3 with a
//! CA made by `cig-kms switch-cert`, registration, refusal of a forged key, a huge frame
//! length, a peer that stalls or closes mid-handshake, failover and reconnect, a call with
//! SRTP-like datagrams through the switch's media relay (a stray source does not take a leg
//! over), ended calls leaving every table, a stored message, a message re-sent to a recipient
//! that dropped before acknowledging it, frames queued just before a shutdown, incoming BANGs
//! verified off the frame reader (a PING answered while they are verified, a cancel right behind
//! a BANG applied after it), and the switch's output queue bounded in bytes.

#![cfg(feature = "driver")]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use cig_umsg::call::{CallState, Calls, HangupReason, Media, SessionId};
use cig_umsg::client::{ClientSession, Event};
use cig_umsg::driver::client::{self, ClientEvent, ClientHandle, LinkState};
use cig_umsg::driver::{FrameReader, client_tls, server_tls, write_frames};
use cig_umsg::frame::{Frame, FrameType, tag};
use cig_umsg::message::{AckStatus, Body};
use cig_umsg::register::Registrar;
use cig_umsg::testing::{TestDomain as Domain, WAIT, client_config, next_where, registered};
use rand_core::OsRng;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

#[tokio::test]
async fn registers_over_tls_and_shuts_down_cleanly() {
    let d = Domain::new();
    let (sw, mut log) = d.switch().await;
    let (h, mut rx) = client::start(client_config(d.keys("tel:+100", &[]), &[sw.local_addr()]));
    assert_eq!(registered(&mut rx).await, sw.local_addr().to_string());
    assert!(matches!(h.state(), LinkState::Registered { .. }));
    assert!(h.with(|s, _| s.is_registered()).unwrap());
    h.shutdown().await;
    assert!(matches!(h.state(), LinkState::Disconnected { .. }));
    assert!(h.with(|_, _| ()).is_none());
    sw.shutdown().await;
    let mut lines = Vec::new();
    while let Ok(l) = log.try_recv() {
        lines.push(l);
    }
    assert!(
        lines.iter().any(|l| l.ends_with("registered tel:+100")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn forged_registration_is_refused() {
    let d = Domain::new();
    let other = Domain::new();
    let (sw, _log) = d.switch().await;
    // Keys of another community, with this domain's CA so TLS succeeds.
    let mut forged = other.keys("tel:+100", &[]);
    forged.switch_ca_cert = Some(d.ca_pem.clone());
    let (h, mut rx) = client::start(client_config(forged, &[sw.local_addr()]));
    let reason = next_where(&mut rx, |e| match e {
        ClientEvent::Registered { .. } => panic!("forged key registered"),
        ClientEvent::Core(Event::Refused(r)) => Some(*r),
        _ => None,
    })
    .await;
    assert_eq!(reason, 1, "bad signature");
    let why = next_where(&mut rx, |e| match e {
        ClientEvent::Disconnected { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(why.contains("refused"), "{why}");
    h.shutdown().await;
    sw.shutdown().await;
}

#[tokio::test]
async fn wrong_ca_fails_the_handshake() {
    let d = Domain::new();
    let other = Domain::new();
    let (sw, _log) = d.switch().await;
    let mut k = d.keys("tel:+100", &[]);
    k.switch_ca_cert = Some(other.ca_pem.clone());
    let (h, mut rx) = client::start(client_config(k, &[sw.local_addr()]));
    let why = next_where(&mut rx, |e| match e {
        ClientEvent::Registered { .. } => panic!("registered past an unknown CA"),
        ClientEvent::Disconnected { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(why.contains("TLS"), "{why}");
    h.shutdown().await;
    sw.shutdown().await;
}

async fn raw_tls(d: &Domain, addr: SocketAddr) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(client_tls(&d.ca_pem).unwrap())
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn huge_frame_length_closes_the_connection() {
    let d = Domain::new();
    let (sw, mut log) = d.switch().await;
    let mut tls = raw_tls(&d, sw.local_addr()).await;
    // A length prefix of 4 GiB - 1: refused before any buffer for it exists.
    tls.write_all(&[0xff, 0xff, 0xff, 0xff]).await.unwrap();
    tls.flush().await.unwrap();
    let mut buf = [0u8; 64];
    let n = timeout(WAIT, tls.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    let line = timeout(WAIT, async {
        loop {
            let l = log.recv().await.unwrap();
            if l.contains("closed") {
                return l;
            }
        }
    })
    .await
    .unwrap();
    assert!(line.contains("frame length over the cap"), "{line}");
    sw.shutdown().await;
}

#[tokio::test]
async fn peer_closing_mid_handshake_does_not_hang_either_side() {
    let d = Domain::new();
    // A "switch" that reads the ClientHello and hangs up.
    let fake = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_addr = fake.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = fake.accept().await {
            let mut b = [0u8; 64];
            let _ = s.read(&mut b).await;
        }
    });
    let (sw, _log) = d.switch().await;
    // The switch side: a client that sends half a ClientHello and closes.
    let mut half = TcpStream::connect(sw.local_addr()).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    drop(half);
    let (h, mut rx) = client::start(client_config(
        d.keys("tel:+100", &[]),
        &[fake_addr, sw.local_addr()],
    ));
    let why = next_where(&mut rx, |e| match e {
        ClientEvent::Disconnected { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(why.starts_with(&fake_addr.to_string()), "{why}");
    assert_eq!(registered(&mut rx).await, sw.local_addr().to_string());
    h.shutdown().await;
    sw.shutdown().await;
}

#[tokio::test]
async fn fails_over_and_reconnects_after_restart() {
    let d = Domain::new();
    let (sw1, _l1) = d.switch().await;
    let (sw2, _l2) = d.switch().await;
    let (a1, a2) = (sw1.local_addr(), sw2.local_addr());
    let (h, mut rx) = client::start(client_config(d.keys("tel:+100", &[]), &[a1, a2]));
    assert_eq!(registered(&mut rx).await, a1.to_string());
    sw1.shutdown().await;
    assert_eq!(registered(&mut rx).await, a2.to_string());
    // Both gone: the client backs off and retries; the first switch comes back on its port.
    sw2.shutdown().await;
    let (sw1, _l1) = d.switch_on(a1).await;
    assert_eq!(registered(&mut rx).await, a1.to_string());
    h.shutdown().await;
    sw1.shutdown().await;
}

async fn call_event(rx: &mut UnboundedReceiver<ClientEvent>) -> SessionId {
    next_where(rx, |e| match e {
        ClientEvent::Core(Event::Call(id)) => Some(*id),
        _ => None,
    })
    .await
}

async fn until_state(h: &ClientHandle, rx: &mut UnboundedReceiver<ClientEvent>, want: CallState) {
    loop {
        let id = call_event(rx).await;
        if h.with(|s, _| s.calls.get(&id).map(|c| c.state)).flatten() == Some(want) {
            return;
        }
    }
}

fn media_addr(h: &ClientHandle, id: &SessionId) -> SocketAddr {
    h.with(|s, _| s.calls.get(id).and_then(|c| c.media_addr.clone()))
        .flatten()
        .expect("media address")
        .parse()
        .unwrap()
}

/// Both ends send a datagram (byte 12 = 1 from `a`, 2 from `b`) to their relay address
/// every 20 ms until each has received one from the other, as it was sent.
async fn exchange(a: (&UdpSocket, SocketAddr), b: (&UdpSocket, SocketAddr)) {
    let packet = |mark: u8| {
        let mut p = [0u8; 172];
        p[0] = 0x80;
        p[12] = mark;
        p
    };
    let mut got = [false; 2];
    let mut buf = [0u8; 2048];
    timeout(WAIT, async {
        while got != [true, true] {
            for (i, (sock, to)) in [a, b].into_iter().enumerate() {
                sock.send_to(&packet(i as u8 + 1), to).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            for (i, (sock, _)) in [a, b].into_iter().enumerate() {
                while let Ok((n, _)) = sock.try_recv_from(&mut buf) {
                    got[i] |= buf[..n] == packet(2 - i as u8);
                }
            }
        }
    })
    .await
    .expect("media relayed both ways");
}

#[tokio::test]
async fn call_with_media_relayed_both_ways() {
    let d = Domain::new();
    let (sw, _log) = d.switch().await;
    let addrs = [sw.local_addr()];
    let (a, mut arx) = client::start(client_config(d.keys("tel:+100", &[]), &addrs));
    let (b, mut brx) = client::start(client_config(d.keys("tel:+200", &[]), &addrs));
    registered(&mut arx).await;
    registered(&mut brx).await;
    let offer = Media {
        codecs: vec![8, 0],
        dtmf_pt: 101,
        ssrc: 0x1111,
    };
    let id = a
        .with(|s, now| {
            let (id, f) = s.calls.dial("tel:+200;7", &offer, now, &mut OsRng).unwrap();
            s.send(f);
            id
        })
        .unwrap();
    assert_eq!(call_event(&mut brx).await, id);
    let answer = Media {
        codecs: vec![8],
        dtmf_pt: 101,
        ssrc: 0x2222,
    };
    b.with(|s, _| {
        let f = s.calls.answer(&id, &answer).unwrap();
        s.send(f);
    })
    .unwrap();
    until_state(&a, &mut arx, CallState::Talk).await;
    let (ma, mb) = (media_addr(&a, &id), media_addr(&b, &id));
    assert_ne!(ma, mb, "one relay port per leg");
    // Same SRTP keys at both ends (from the one SSV).
    let key = |h: &ClientHandle| {
        h.with(|s, _| {
            s.calls
                .get(&id)
                .map(|c| (c.keys.master_key, c.keys.master_salt))
        })
        .flatten()
    };
    let (ka, kb) = (key(&a), key(&b));
    assert!(ka.is_some() && ka == kb);
    let ua = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ub = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    exchange((&ua, ma), (&ub, mb)).await;
    // HANGUP from the caller reaches the callee; the relay stops.
    a.with(|s, _| {
        let f = s
            .calls
            .hangup(&id, cig_umsg::call::HangupReason::Normal)
            .unwrap();
        s.send(f);
    })
    .unwrap();
    until_state(&b, &mut brx, CallState::Hangup).await;
    a.shutdown().await;
    b.shutdown().await;
    sw.shutdown().await;
}

#[tokio::test]
async fn message_to_offline_client_delivered_on_registration() {
    let d = Domain::new();
    let (sw, _log) = d.switch().await;
    let addrs = [sw.local_addr()];
    let (a, mut arx) = client::start(client_config(d.keys("tel:+100", &[]), &addrs));
    registered(&mut arx).await;
    let body = Body {
        text: "hello while away".into(),
        attachments: vec![],
    };
    let mid = a
        .with(|s, now| {
            let (id, f) = s
                .messenger
                .send("tel:+200", &body, now, &mut OsRng)
                .unwrap();
            s.send(f);
            id
        })
        .unwrap();
    let stored = next_where(&mut arx, |e| match e {
        ClientEvent::Core(Event::Acked(id, st)) if *id == mid => Some(*st),
        _ => None,
    })
    .await;
    assert_eq!(stored, AckStatus::Stored);
    let (b, mut brx) = client::start(client_config(d.keys("tel:+200", &[]), &addrs));
    let got = next_where(&mut brx, |e| match e {
        ClientEvent::Core(Event::Message(m)) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        (got.id, got.from.as_str(), got.body),
        (mid, "tel:+100", body)
    );
    let delivered = next_where(&mut arx, |e| match e {
        ClientEvent::Core(Event::Acked(id, st)) if *id == mid => Some(*st),
        _ => None,
    })
    .await;
    assert_eq!(delivered, AckStatus::Delivered);
    a.shutdown().await;
    b.shutdown().await;
    sw.shutdown().await;
}

#[tokio::test]
async fn stalled_peers_time_out_on_both_sides() {
    let d = Domain::new();
    // A "switch" that accepts and never says anything.
    let mute = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mute_addr = mute.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = mute.accept().await {
            conns.push(s);
        }
    });
    let (sw, mut log) = d.switch().await;
    // A client that connects to the switch and never starts TLS.
    let _silent = TcpStream::connect(sw.local_addr()).await.unwrap();
    let (h, mut rx) = client::start(client_config(
        d.keys("tel:+100", &[]),
        &[mute_addr, sw.local_addr()],
    ));
    let limit = cig_umsg::driver::HANDSHAKE_TIMEOUT + WAIT;
    let why = timeout(limit, async {
        loop {
            if let Some(ClientEvent::Disconnected { reason }) = rx.recv().await {
                return reason;
            }
        }
    })
    .await
    .expect("stalled switch given up in time");
    assert!(why.contains("timed out"), "{why}");
    assert_eq!(registered(&mut rx).await, sw.local_addr().to_string());
    let line = timeout(limit, async {
        loop {
            let l = log.recv().await.unwrap();
            if l.contains("timed out") {
                return l;
            }
        }
    })
    .await
    .expect("switch gave up the silent peer in time");
    assert!(line.contains("TLS handshake timed out"), "{line}");
    held.abort();
    h.shutdown().await;
    sw.shutdown().await;
}

/// Waits (polling every 10 ms, within `WAIT`) until `cond` holds: for the switch's counts,
/// which have no event of their own.
async fn eventually(cond: impl Fn() -> bool) {
    timeout(WAIT, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("condition reached in time");
}

/// Dials from `a` to `to` and waits until `b` has the BANG and `a` is in TALK after `b`
/// answers; the session id.
async fn talk(
    a: (&ClientHandle, &mut UnboundedReceiver<ClientEvent>),
    b: (&ClientHandle, &mut UnboundedReceiver<ClientEvent>),
    to: &str,
) -> SessionId {
    let offer = Media {
        codecs: vec![8, 0],
        dtmf_pt: 101,
        ssrc: 0x1111,
    };
    let id =
        a.0.with(|s, now| {
            let (id, f) = s.calls.dial(to, &offer, now, &mut OsRng).unwrap();
            s.send(f);
            id
        })
        .unwrap();
    assert_eq!(call_event(b.1).await, id);
    let answer = Media {
        codecs: vec![8],
        dtmf_pt: 101,
        ssrc: 0x2222,
    };
    b.0.with(|s, _| {
        let f = s.calls.answer(&id, &answer).unwrap();
        s.send(f);
    })
    .unwrap();
    until_state(a.0, a.1, CallState::Talk).await;
    id
}

#[tokio::test]
async fn ended_calls_leave_the_client_and_switch_tables() {
    let d = Domain::new();
    let (sw, _log) = d.switch().await;
    let addrs = [sw.local_addr()];
    let (a, mut arx) = client::start(client_config(d.keys("tel:+100", &[]), &addrs));
    let (b, mut brx) = client::start(client_config(d.keys("tel:+200", &[]), &addrs));
    registered(&mut arx).await;
    registered(&mut brx).await;
    const N: usize = 5;
    for n in 0..N {
        let id = talk((&a, &mut arx), (&b, &mut brx), "tel:+200").await;
        assert_eq!(sw.counts().relays, 1);
        let (by, other, orx) = if n % 2 == 0 {
            (&a, &b, &mut brx)
        } else {
            (&b, &a, &mut arx)
        };
        by.with(|s, _| {
            let f = s.calls.hangup(&id, HangupReason::Normal).unwrap();
            s.send(f);
        })
        .unwrap();
        until_state(other, orx, CallState::Hangup).await;
    }
    let live = |h: &ClientHandle| h.with(|s, now| (s.calls.len(), s.calls.table(now).len()));
    assert_eq!(live(&a), Some((0, 1)), "only the messaging row is left");
    assert_eq!(live(&b), Some((0, 1)));
    eventually(|| {
        let c = sw.counts();
        (c.calls, c.relays, c.registered) == (0, 0, 2)
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
    sw.shutdown().await;
}

#[tokio::test]
async fn shutdown_right_after_queueing_still_sends_the_frame() {
    let d = Domain::new();
    let (sw, _log) = d.switch().await;
    let addrs = [sw.local_addr()];
    let (b, mut brx) = client::start(client_config(d.keys("tel:+200", &[]), &addrs));
    registered(&mut brx).await;
    for n in 0..3 {
        let (a, mut arx) = client::start(client_config(d.keys("tel:+100", &[]), &addrs));
        registered(&mut arx).await;
        let text = format!("last words {n}");
        let mid = a
            .with(|s, now| {
                let (id, f) = s
                    .messenger
                    .send(
                        "tel:+200",
                        &Body {
                            text: text.clone(),
                            attachments: vec![],
                        },
                        now,
                        &mut OsRng,
                    )
                    .unwrap();
                s.send(f);
                id
            })
            .unwrap();
        // No pause: the stop request races the driver's wake-up for the queued frame.
        a.shutdown().await;
        let got = next_where(&mut brx, |e| match e {
            ClientEvent::Core(Event::Message(m)) => Some(m.clone()),
            _ => None,
        })
        .await;
        assert_eq!((got.id, got.body.text), (mid, text));
    }
    b.shutdown().await;
    sw.shutdown().await;
}

#[tokio::test]
async fn a_stray_media_source_does_not_steal_the_latch() {
    let d = Domain::new();
    let (sw, _log) = d.switch().await;
    let addrs = [sw.local_addr()];
    let (a, mut arx) = client::start(client_config(d.keys("tel:+100", &[]), &addrs));
    let (b, mut brx) = client::start(client_config(d.keys("tel:+200", &[]), &addrs));
    registered(&mut arx).await;
    registered(&mut brx).await;
    let id = talk((&a, &mut arx), (&b, &mut brx), "tel:+200").await;
    let (ma, mb) = (media_addr(&a, &id), media_addr(&b, &id));
    // Both phones signal from 127.0.0.1; the stray sender is elsewhere (127.0.0.2) and is
    // first on both relay ports.
    let stray = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let mut junk = [0u8; 172];
    junk[0] = 0x80;
    junk[12] = 9;
    for _ in 0..3 {
        stray.send_to(&junk, ma).await.unwrap();
        stray.send_to(&junk, mb).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ua = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ub = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // The phones still latch their legs and media flows both ways.
    exchange((&ua, ma), (&ub, mb)).await;
    // The stray sender got nothing back and nothing of it was relayed.
    stray.send_to(&junk, ma).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut buf = [0u8; 2048];
    assert!(stray.try_recv_from(&mut buf).is_err());
    while let Ok((n, _)) = ub.try_recv_from(&mut buf) {
        assert_ne!(buf[..n], junk[..], "stray datagram relayed");
    }
    a.shutdown().await;
    b.shutdown().await;
    sw.shutdown().await;
}

/// A recipient that registers over a raw TLS connection with a client core, takes the first
/// message and closes without sending the MSG_ACK the core queued.
async fn take_message_without_ack(d: &Domain, addr: SocketAddr, identity: &str) -> [u8; 16] {
    let tls = raw_tls(d, addr).await;
    let (r, mut w) = tokio::io::split(tls);
    let mut reader = FrameReader::new(r);
    let mut s = ClientSession::new(d.keys(identity, &[]), SystemTime::now());
    loop {
        let frames: Vec<_> = std::iter::from_fn(|| s.poll_transmit()).collect();
        write_frames(&mut w, frames).await.unwrap();
        let f = timeout(WAIT, reader.next())
            .await
            .expect("frame in time")
            .unwrap()
            .expect("switch still connected");
        s.handle_frame(&f, SystemTime::now(), &mut OsRng).unwrap();
        while let Some(e) = s.poll_event() {
            if let Event::Message(m) = e {
                return m.id;
            }
        }
    }
}

#[tokio::test]
async fn recipient_dropping_before_its_ack_gets_the_message_again_once() {
    let d = Domain::new();
    let (sw, _log) = d.switch().await;
    let addrs = [sw.local_addr()];
    let (a, mut arx) = client::start(client_config(d.keys("tel:+100", &[]), &addrs));
    registered(&mut arx).await;
    let body = Body {
        text: "are you there".into(),
        attachments: vec![],
    };
    let mid = a
        .with(|s, now| {
            let (id, f) = s
                .messenger
                .send("tel:+200", &body, now, &mut OsRng)
                .unwrap();
            s.send(f);
            id
        })
        .unwrap();
    let stored = next_where(&mut arx, |e| match e {
        ClientEvent::Core(Event::Acked(id, st)) if *id == mid => Some(*st),
        _ => None,
    })
    .await;
    assert_eq!(stored, AckStatus::Stored);
    // The recipient comes online, gets the message and drops before acknowledging it.
    assert_eq!(
        take_message_without_ack(&d, addrs[0], "tel:+200").await,
        mid
    );
    eventually(|| sw.counts().registered == 1).await;
    assert_eq!(sw.counts().stored, 1, "still held: not acknowledged");
    // It reconnects: the message comes again, is shown once and acknowledged end to end.
    let (b, mut brx) = client::start(client_config(d.keys("tel:+200", &[]), &addrs));
    let got = next_where(&mut brx, |e| match e {
        ClientEvent::Core(Event::Message(m)) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!((got.id, got.body), (mid, body));
    let delivered = next_where(&mut arx, |e| match e {
        ClientEvent::Core(Event::Acked(id, st)) if *id == mid => Some(*st),
        _ => None,
    })
    .await;
    assert_eq!(delivered, AckStatus::Delivered);
    eventually(|| sw.counts().stored == 0).await;
    // Nothing more arrives for it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(e) = brx.try_recv() {
        assert!(!matches!(e, ClientEvent::Core(Event::Message(_))), "{e:?}");
    }
    a.shutdown().await;
    b.shutdown().await;
    sw.shutdown().await;
}

/// A hand-driven switch for one client: TLS with the domain's switch certificate, HELLO →
/// CHALLENGE → REGISTER → REGISTERED through a [`Registrar`]; then the test writes and reads
/// raw frames.
struct FakeSwitch {
    reader: FrameReader<tokio::io::ReadHalf<tokio_rustls::server::TlsStream<TcpStream>>>,
    writer: tokio::io::WriteHalf<tokio_rustls::server::TlsStream<TcpStream>>,
}

impl FakeSwitch {
    async fn accept(d: &Domain, listener: &TcpListener) -> FakeSwitch {
        let cert = std::fs::read(d.path("switch/127.0.0.1.pem")).unwrap();
        let key = std::fs::read(d.path("switch/127.0.0.1.key")).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(server_tls(&cert, &key).unwrap());
        let (tcp, _) = listener.accept().await.unwrap();
        let (r, w) = tokio::io::split(acceptor.accept(tcp).await.unwrap());
        let mut sw = FakeSwitch {
            reader: FrameReader::new(r),
            writer: w,
        };
        let unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut reg = Registrar::new(d.community.kpak);
        assert_eq!(sw.next().await.kind, FrameType::Hello);
        sw.send(vec![reg.hello(1, unix, &mut OsRng)]).await;
        let register = sw.next().await;
        let out = reg.register(1, &register, unix);
        sw.send(out.into_iter().map(|t| t.frame).collect()).await;
        sw
    }

    async fn next(&mut self) -> Frame {
        timeout(WAIT, self.reader.next())
            .await
            .expect("frame in time")
            .unwrap()
            .expect("client still connected")
    }

    async fn send(&mut self, frames: Vec<Frame>) {
        write_frames(&mut self.writer, frames).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_bangs_are_verified_off_the_reader() {
    let d = Domain::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (h, mut rx) = client::start(client_config(d.keys("tel:+200", &[]), &[addr]));
    let mut sw = FakeSwitch::accept(&d, &listener).await;
    registered(&mut rx).await;

    // BANGs from tel:+100 as the switch forwards them (the caller's crypto done up front).
    let mut caller = Calls::new(d.keys("tel:+100", &[]), SystemTime::now());
    let offer = Media {
        codecs: vec![8],
        dtmf_pt: 101,
        ssrc: 1,
    };
    let mut bang = || {
        let (id, f) = caller
            .dial("tel:+200", &offer, SystemTime::now(), &mut OsRng)
            .unwrap();
        (id, f.with(tag::MEDIA_ADDR, b"127.0.0.1:40000".to_vec()))
    };
    const N: usize = 6;
    let bangs: Vec<(SessionId, Frame)> = (0..N).map(|_| bang()).collect();
    let (cancelled, cancelled_bang) = bang();
    // N BANGs, one more cancelled right behind it, then a PING, in one write.
    let mut burst: Vec<Frame> = bangs.iter().map(|(_, f)| f.clone()).collect();
    burst.push(cancelled_bang);
    burst.push(
        Frame::new(FrameType::Hangup)
            .with(tag::SESSION_ID, cancelled)
            .with(tag::REASON, [HangupReason::Normal as u8]),
    );
    burst.push(Frame::new(FrameType::Ping));
    sw.send(burst).await;
    // The PONG comes back while the BANGs are still being verified (N + 1 verifications of
    // ~4 ms, at most one per core at a time): the reader was not held up by them.
    loop {
        if sw.next().await.kind == FrameType::Pong {
            break;
        }
    }
    let mut seen = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let ClientEvent::Core(Event::Call(id)) = e {
            seen.push(id);
        }
    }
    assert!(
        seen.len() < N,
        "PONG only after {} of {N} BANGs were verified",
        seen.len()
    );
    // Every BANG is adopted in the end; the cancelled one shows BANG then HANGUP.
    while seen.len() < N + 2 {
        seen.push(call_event(&mut rx).await);
    }
    for (id, _) in &bangs {
        let state = h.with(|s, _| s.calls.get(id).map(|c| c.state)).flatten();
        assert_eq!(state, Some(CallState::Bang));
    }
    assert_eq!(seen.iter().filter(|id| **id == cancelled).count(), 2);
    let ended = h
        .with(|s, _| s.calls.get(&cancelled).map(|c| (c.state, c.reason)))
        .flatten();
    assert_eq!(ended, Some((CallState::Hangup, Some(HangupReason::Normal))));
    assert_eq!(h.with(|s, _| (s.calls.len(), s.verifying())), Some((N, 0)));
    h.shutdown().await;
}

#[tokio::test]
async fn output_queue_is_bounded_in_bytes() {
    let d = Domain::new();
    // 400 bytes: registration frames and ROUTED fit, a forwarded BANG (an I_MESSAGE of
    // ~0.5 KiB) does not.
    let mut cfg = d.switch_config(SocketAddr::from(([127, 0, 0, 1], 0)));
    cfg.out_queue_bytes = 400;
    let (sw, mut log) = cig_umsg::driver::switch::start(cfg).await.unwrap();
    let addrs = [sw.local_addr()];
    let (a, mut arx) = client::start(client_config(d.keys("tel:+100", &[]), &addrs));
    let (_b, mut brx) = client::start(client_config(d.keys("tel:+200", &[]), &addrs));
    registered(&mut arx).await;
    registered(&mut brx).await;
    let offer = Media {
        codecs: vec![8],
        dtmf_pt: 101,
        ssrc: 1,
    };
    let id = a
        .with(|s, now| {
            let (id, f) = s.calls.dial("tel:+200", &offer, now, &mut OsRng)?;
            s.send(f);
            Ok::<_, cig_umsg::Error>(id)
        })
        .unwrap()
        .unwrap();
    let why = next_where(&mut brx, |e| match e {
        ClientEvent::Disconnected { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(why.contains("closed"), "{why}");
    let line = timeout(WAIT, async {
        loop {
            let l = log.recv().await.unwrap();
            if l.contains("output queue full") {
                return l;
            }
        }
    })
    .await
    .unwrap();
    assert!(line.contains("bytes unread"), "{line}");
    // The caller's call ends: its callee's connection is gone.
    until_state(&a, &mut arx, CallState::Hangup).await;
    assert_eq!(
        a.with(|s, _| s.calls.get(&id).and_then(|c| c.reason))
            .flatten(),
        Some(HangupReason::Unavailable)
    );
    sw.shutdown().await;
}
