//! The TLS driver end to end on loopback: client and switch drivers over real TLS 1.3 with a
//! CA made by `cig-kms switch-cert`, registration, refusal of a forged key, a huge frame
//! length, a peer that stalls or closes mid-handshake, failover and reconnect, a call with
//! SRTP-like datagrams through the switch's media relay, and a stored message.

#![cfg(feature = "driver")]

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, SystemTime};

use cig_mikey_sakke::keystore::KeyMaterial;
use cig_mikey_sakke::kms::Community;
use cig_mikey_sakke::mikey::KeyPeriod;
use cig_testkit::bin;
use cig_umsg::call::{CallState, Media, SessionId};
use cig_umsg::client::Event;
use cig_umsg::driver::client::{self, ClientConfig, ClientEvent, ClientHandle, LinkState};
use cig_umsg::driver::media::MediaConfig;
use cig_umsg::driver::switch::{self, SwitchConfig, SwitchHandle};
use cig_umsg::driver::{client_tls, server_tls};
use cig_umsg::message::{AckStatus, Body};
use cig_umsg::switch::StoreLimits;
use rand_core::OsRng;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(15);

/// A community in a temporary KMS directory with a switch certificate for 127.0.0.1.
struct Domain {
    _dir: tempfile::TempDir,
    community: Community,
    ca_pem: String,
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl Domain {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let community = Community::generate("example.org", &mut OsRng).unwrap();
        community.save(dir.path()).unwrap();
        let out = Command::new(bin("cig-kms"))
            .args(["switch-cert", "--name", "127.0.0.1", "--dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let sw = dir.path().join("switch");
        Self {
            ca_pem: std::fs::read_to_string(sw.join("ca.pem")).unwrap(),
            cert: std::fs::read(sw.join("127.0.0.1.pem")).unwrap(),
            key: std::fs::read(sw.join("127.0.0.1.key")).unwrap(),
            community,
            _dir: dir,
        }
    }

    fn keys(&self, identity: &str) -> KeyMaterial {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let p = KeyPeriod::from_unix(now).unwrap();
        let k = self.community.issue(identity, p, &mut OsRng).unwrap();
        self.community
            .key_material(identity, vec![k], vec![], Some(self.ca_pem.clone()))
    }

    async fn switch_on(&self, listen: SocketAddr) -> (SwitchHandle, UnboundedReceiver<String>) {
        switch::start(SwitchConfig {
            listen,
            tls: server_tls(&self.cert, &self.key).unwrap(),
            kpak: self.community.kpak,
            media: MediaConfig::default(),
            store: StoreLimits::default(),
        })
        .await
        .unwrap()
    }

    async fn switch(&self) -> (SwitchHandle, UnboundedReceiver<String>) {
        self.switch_on("127.0.0.1:0".parse().unwrap()).await
    }
}

fn config(keys: KeyMaterial, switches: &[SocketAddr]) -> ClientConfig {
    let mut cfg = ClientConfig::new(keys);
    cfg.switches = switches.iter().map(ToString::to_string).collect();
    cfg.backoff_min = Duration::from_millis(100);
    cfg.backoff_max = Duration::from_millis(400);
    cfg
}

/// The next event that `pick` accepts (others are skipped), within `WAIT`.
async fn next_where<T>(
    rx: &mut UnboundedReceiver<ClientEvent>,
    mut pick: impl FnMut(&ClientEvent) -> Option<T>,
) -> T {
    timeout(WAIT, async {
        loop {
            let e = rx.recv().await.expect("driver running");
            if let Some(t) = pick(&e) {
                return t;
            }
        }
    })
    .await
    .expect("event in time")
}

async fn registered(rx: &mut UnboundedReceiver<ClientEvent>) -> String {
    next_where(rx, |e| match e {
        ClientEvent::Registered { switch } => Some(switch.clone()),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn registers_over_tls_and_shuts_down_cleanly() {
    let d = Domain::new();
    let (sw, mut log) = d.switch().await;
    let (h, mut rx) = client::start(config(d.keys("tel:+100"), &[sw.local_addr()]));
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
    let mut forged = other.keys("tel:+100");
    forged.switch_ca_cert = Some(d.ca_pem.clone());
    let (h, mut rx) = client::start(config(forged, &[sw.local_addr()]));
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
    let mut k = d.keys("tel:+100");
    k.switch_ca_cert = Some(other.ca_pem.clone());
    let (h, mut rx) = client::start(config(k, &[sw.local_addr()]));
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
    let (h, mut rx) = client::start(config(d.keys("tel:+100"), &[fake_addr, sw.local_addr()]));
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
    let (h, mut rx) = client::start(config(d.keys("tel:+100"), &[a1, a2]));
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
    let (a, mut arx) = client::start(config(d.keys("tel:+100"), &addrs));
    let (b, mut brx) = client::start(config(d.keys("tel:+200"), &addrs));
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
    let (a, mut arx) = client::start(config(d.keys("tel:+100"), &addrs));
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
    let (b, mut brx) = client::start(config(d.keys("tel:+200"), &addrs));
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
    let (h, mut rx) = client::start(config(d.keys("tel:+100"), &[mute_addr, sw.local_addr()]));
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
