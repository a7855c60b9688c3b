//! cig-crs as a process: the ready line, the session log, SIGTERM exit 0, two instances side by
//! side with the same port range, failover when the first is killed, reconnect after a restart
//! on the same port, and a call whose media address is the configured public host.

use std::path::Path;
use std::time::Duration;

use cig_testkit::{free_tcp_port, wait_until};
use cig_umsg::call::{CallState, Media};
use cig_umsg::client::Event;
use cig_umsg::driver::client::{self, ClientEvent};
use cig_umsg::testing::{TestDomain, WAIT, client_config, next_where, registered};
use rand_core::OsRng;

fn log_has(log: &Path, what: &str) -> bool {
    wait_until(WAIT, || {
        std::fs::read_to_string(log).is_ok_and(|s| s.contains(what))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_the_second_instance_when_the_first_is_killed() {
    let kms = TestDomain::new();
    let logs = tempfile::tempdir().unwrap();
    // Both instances share one RTP range: each skips the ports the other holds.
    let range = ["--rtp-port-range", "41000", "41100"];
    let (p1, a1) = kms.crs(0, &logs.path().join("1.log"), &range);
    let (mut p2, a2) = kms.crs(0, &logs.path().join("2.log"), &range);
    let (h, mut rx) = client::start(client_config(kms.keys("tel:+100", &[]), &[a1, a2]));
    assert_eq!(registered(&mut rx).await, a1.to_string());
    assert!(log_has(&logs.path().join("1.log"), "registered tel:+100"));
    drop(p1); // SIGKILL
    assert_eq!(registered(&mut rx).await, a2.to_string());
    assert!(log_has(&logs.path().join("2.log"), "registered tel:+100"));
    h.shutdown().await;
    assert!(p2.terminate(WAIT).is_some_and(|s| s.success()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_with_backoff_after_a_restart_and_exits_0_on_sigterm() {
    let kms = TestDomain::new();
    let logs = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let (mut p, addr) = kms.crs(port, &logs.path().join("a.log"), &[]);
    let (h, mut rx) = client::start(client_config(kms.keys("tel:+100", &[]), &[addr]));
    registered(&mut rx).await;
    let status = p.terminate(WAIT).expect("exits on SIGTERM");
    assert!(status.success(), "{status:?}");
    let log_a = std::fs::read_to_string(logs.path().join("a.log")).unwrap();
    assert!(log_a.contains("closed: switch shut down") && log_a.ends_with("stopped\n"));
    let why = next_where(&mut rx, |e| match e {
        ClientEvent::Disconnected { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(why.starts_with(&addr.to_string()), "{why}");
    // A failed attempt or two while the switch is down, then back on the same port.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut p, _) = kms.crs(port, &logs.path().join("b.log"), &[]);
    assert_eq!(registered(&mut rx).await, addr.to_string());
    h.shutdown().await;
    assert!(p.terminate(WAIT).is_some_and(|s| s.success()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_announces_the_public_media_host_and_is_logged() {
    let kms = TestDomain::new();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("crs.log");
    let extra = [
        "--media-bind",
        "127.0.0.1",
        "--media-public",
        "media.example",
    ];
    let (mut p, addr) = kms.crs(0, &log, &extra);
    let (a, mut arx) = client::start(client_config(kms.keys("tel:+100", &[]), &[addr]));
    let (b, mut brx) = client::start(client_config(kms.keys("tel:+8888", &[]), &[addr]));
    registered(&mut arx).await;
    registered(&mut brx).await;
    let offer = Media {
        codecs: vec![8, 0],
        dtmf_pt: 101,
        ssrc: 7,
    };
    let id = a
        .with(|s, now| {
            let (id, f) = s
                .calls
                .dial("tel:+8888w101", &offer, now, &mut OsRng)
                .unwrap();
            s.send(f);
            id
        })
        .unwrap();
    next_where(&mut brx, |e| match e {
        ClientEvent::Core(Event::Call(got)) if *got == id => Some(()),
        _ => None,
    })
    .await;
    let (to, media) = b
        .with(|s, _| {
            let c = s.calls.get(&id).unwrap();
            let seen = (c.to.clone(), c.media_addr.clone().unwrap());
            let growl = s.calls.growl(&id).unwrap();
            s.send(growl);
            seen
        })
        .unwrap();
    assert_eq!(to, "tel:+8888w101", "the whole dialled URI is passed on");
    assert!(media.starts_with("media.example:"), "{media}");
    next_where(&mut arx, |e| match e {
        ClientEvent::Core(Event::Call(got)) if *got == id => a
            .with(|s, _| s.calls.get(&id).map(|c| c.state))
            .flatten()
            .filter(|s| *s == CallState::Growl),
        _ => None,
    })
    .await;
    b.with(|s, _| {
        let f = s
            .calls
            .hangup(&id, cig_umsg::call::HangupReason::Declined)
            .unwrap();
        s.send(f);
    })
    .unwrap();
    next_where(&mut arx, |e| match e {
        ClientEvent::Core(Event::Call(got)) if *got == id => a
            .with(|s, _| s.calls.get(&id).and_then(|c| c.reason))
            .flatten(),
        _ => None,
    })
    .await;
    for what in [
        "media relay media.example:",
        "tel:+100 -> tel:+8888w101 BANG",
        "Growl from conn",
        "Hangup reason 2",
        "media relay closed",
    ] {
        assert!(log_has(&log, what), "{what} not in the log");
    }
    a.shutdown().await;
    b.shutdown().await;
    assert!(p.terminate(WAIT).is_some_and(|s| s.success()));
}
