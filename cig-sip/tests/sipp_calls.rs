//! cig-sip against a real, independent SIP peer: sipp (Debian `sip-tester`, installed by
//! scripts/install-test-deps.sh). Every test picks free loopback ports, waits for sipp to exit
//! (its exit status says whether every call of its scenario succeeded) and kills it on drop.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use bytes::Bytes;
use cig_sip::digest::Credentials;
use cig_sip::driver::{self, AnswerStats, Events, SipHandle};
use cig_sip::message::{NameAddr, Uri};
use cig_sip::sdp::{self, AudioCapabilities};
use cig_sip::transaction::Transport;
use cig_sip::ua::{EndReason, Event, OutgoingCall, OutgoingMessage, UaConfig};
use tokio::process::{Child, Command};

const SIPP: &str = "/usr/bin/sipp";

/// A loopback port free for both UDP and TCP right now.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn scenario(name: &str) -> String {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "sipp", name]
        .iter()
        .collect();
    p.to_string_lossy().into_owned()
}

fn sipp(args: &[&str]) -> Child {
    Command::new(SIPP)
        .args(args)
        .args(["-nostdin", "-timeout", "90s", "-timeout_error"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp missing: run scripts/install-test-deps.sh")
}

async fn wait(mut child: Child) -> ExitStatus {
    match tokio::time::timeout(Duration::from_secs(120), child.wait()).await {
        Ok(s) => s.unwrap(),
        Err(_) => {
            let _ = child.kill().await;
            panic!("sipp did not finish");
        }
    }
}

fn caps() -> AudioCapabilities {
    AudioCapabilities::new("127.0.0.1".parse().unwrap(), 40000)
}

async fn ua() -> (SipHandle, Events) {
    driver::start(UaConfig::new("127.0.0.1:0".parse().unwrap()), rand_seed())
        .await
        .unwrap()
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
}

/// sipp's built-in UAC places 100 calls (INVITE, 180/200 from us, ACK, BYE) at our UAS.
async fn sipp_uac_to_cig_uas(transport: &str) {
    let (h, mut ev) = ua().await;
    let target = h.local_addr().to_string();
    let port = free_port().to_string();
    let child = sipp(&[
        "-sn",
        "uac",
        &target,
        "-i",
        "127.0.0.1",
        "-p",
        &port,
        "-m",
        "100",
        "-r",
        "50",
        "-t",
        transport,
    ]);
    let uas = tokio::spawn(async move {
        driver::answer_all(&h, &mut ev, &caps(), true, |s: &AnswerStats| {
            s.remote_hangups == 100
        })
        .await
    });
    let status = wait(child).await;
    assert!(status.success(), "sipp reported failed calls: {status}");
    let stats = tokio::time::timeout(Duration::from_secs(10), uas)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stats.incoming, stats.answered, stats.remote_hangups),
        (100, 100, 100)
    );
}

#[tokio::test]
async fn sipp_uac_100_calls_udp() {
    sipp_uac_to_cig_uas("u1").await;
}

#[tokio::test]
async fn sipp_uac_100_calls_tcp() {
    sipp_uac_to_cig_uas("t1").await;
}

#[tokio::test]
async fn sipp_cancels_before_answer() {
    let (h, mut ev) = ua().await;
    let target = h.local_addr().to_string();
    let port = free_port().to_string();
    let child = sipp(&[
        "-sf",
        &scenario("uac_cancel.xml"),
        &target,
        "-i",
        "127.0.0.1",
        "-p",
        &port,
        "-m",
        "1",
        "-s",
        "bob",
    ]);
    let stats = driver::answer_all(&h, &mut ev, &caps(), false, |s| s.cancelled == 1).await;
    assert_eq!(stats.incoming, 1);
    assert!(wait(child).await.success());
}

#[tokio::test]
async fn sipp_options_keepalive_answered() {
    let (h, _ev) = ua().await;
    let target = h.local_addr().to_string();
    let port = free_port().to_string();
    let child = sipp(&[
        "-sf",
        &scenario("uac_options.xml"),
        &target,
        "-i",
        "127.0.0.1",
        "-p",
        &port,
        "-m",
        "3",
        "-s",
        "cig",
    ]);
    assert!(wait(child).await.success());
}

fn our_offer() -> Bytes {
    Bytes::from(sdp::offer(&caps(), 1, 1).to_bytes())
}

/// Starts sipp as the PBX on a free port and places one call to it from cig-sip with `offer`
/// (our offer; empty for a delayed offer).
async fn call_sipp_uas(
    scenario_args: &[&str],
    credentials: Option<Credentials>,
    offer: Bytes,
) -> (SipHandle, Events, Child, cig_sip::ua::CallHandle) {
    let port = free_port();
    let port_s = port.to_string();
    let mut args = scenario_args.to_vec();
    args.extend(["-i", "127.0.0.1", "-p", &port_s, "-m", "1"]);
    let child = sipp(&args);
    let (h, ev) = ua().await;
    let pbx: SocketAddr = ([127, 0, 0, 1], port).into();
    let uri = Uri::parse(format!("sip:101@{pbx}")).unwrap();
    let target = driver::resolve(&uri).await.unwrap();
    assert_eq!(target.destination, pbx);
    let (call, call_id) = h
        .place_call_with_id(OutgoingCall {
            target,
            from: NameAddr::new(Uri::parse(format!("sip:gateway@{}", h.local_addr())).unwrap()),
            to: NameAddr::new(uri),
            sdp: offer,
            credentials,
        })
        .await
        .unwrap();
    assert!(call_id.ends_with("@127.0.0.1"), "{call_id}");
    (h, ev, child, call)
}

async fn next_final(ev: &mut Events) -> Event {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(60), ev.recv())
            .await
            .unwrap()
            .unwrap();
        if matches!(
            e,
            Event::Answered { .. } | Event::Rejected { .. } | Event::Ended { .. }
        ) {
            return e;
        }
    }
}

#[tokio::test]
async fn cig_uac_to_sipp_uas_call_and_bye() {
    let (h, mut ev, child, call) = call_sipp_uas(&["-sn", "uas"], None, our_offer()).await;
    let Event::Answered { sdp, .. } = next_final(&mut ev).await else {
        panic!("not answered")
    };
    let answer = sdp::SessionDescription::parse(&sdp).unwrap();
    assert!(sdp::accept_answer(&caps(), &answer).is_ok());
    h.hangup(call).await.unwrap();
    assert_eq!(
        next_final(&mut ev).await,
        Event::Ended {
            call,
            reason: EndReason::LocalHangup
        }
    );
    assert!(wait(child).await.success());
}

/// A delayed offer to sipp: our INVITE has no body, sipp's 200 offers, our ACK answers (sipp
/// checks both), then our BYE.
#[tokio::test]
async fn cig_uac_delayed_offer_answered_in_the_ack_to_sipp() {
    let (h, mut ev, child, call) = call_sipp_uas(
        &["-sf", &scenario("uas_delayed_offer.xml")],
        None,
        Bytes::new(),
    )
    .await;
    let Event::Answered {
        call: c,
        sdp: offer,
    } = next_final(&mut ev).await
    else {
        panic!("not answered")
    };
    assert_eq!(c, call);
    let offer = sdp::SessionDescription::parse(&offer).unwrap();
    let (answer, audio) = sdp::answer(&offer, &caps(), 1, 1).unwrap();
    assert_eq!(
        audio.codec,
        sdp::Codec::Pcma,
        "the offerer's first shared codec"
    );
    h.ack(call, Bytes::from(answer.to_bytes())).await.unwrap();
    h.hangup(call).await.unwrap();
    assert_eq!(
        next_final(&mut ev).await,
        Event::Ended {
            call,
            reason: EndReason::LocalHangup
        }
    );
    assert!(wait(child).await.success());
}

/// `;transport=tcp` in the target selects TCP; sipp answers on the connection we opened and
/// our BYE reuses it.
#[tokio::test]
async fn cig_uac_to_sipp_uas_over_tcp() {
    let port = free_port();
    let child = sipp(&[
        "-sn",
        "uas",
        "-t",
        "t1",
        "-i",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-m",
        "1",
    ]);
    let (h, mut ev) = ua().await;
    let uri = Uri::parse(format!("sip:101@127.0.0.1:{port};transport=tcp")).unwrap();
    let target = driver::resolve(&uri).await.unwrap();
    assert_eq!(target.transport, Transport::Tcp);
    let offer = our_offer();
    // sipp may not listen yet: a refused connection fails the call at once with 503; retry.
    let call = loop {
        let call = h
            .place_call(OutgoingCall {
                target: target.clone(),
                from: NameAddr::new(Uri::parse("sip:gateway@127.0.0.1").unwrap()),
                to: NameAddr::new(uri.clone()),
                sdp: offer.clone(),
                credentials: None,
            })
            .await
            .unwrap();
        match next_final(&mut ev).await {
            Event::Answered { .. } => break call,
            Event::Rejected { status: 503, .. } => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            e => panic!("{e:?}"),
        }
    };
    h.hangup(call).await.unwrap();
    assert_eq!(
        next_final(&mut ev).await,
        Event::Ended {
            call,
            reason: EndReason::LocalHangup
        }
    );
    assert!(wait(child).await.success());
}

/// Host names go through the system resolver; port and transport come from the URI.
#[tokio::test]
async fn resolve_takes_port_and_transport_from_the_uri() {
    let t = driver::resolve(&Uri::parse("sip:pbx@localhost").unwrap())
        .await
        .unwrap();
    assert!(t.destination.ip().is_loopback());
    assert_eq!((t.destination.port(), t.transport), (5060, Transport::Udp));
    let t = driver::resolve(&Uri::parse("sip:pbx@localhost:5070;transport=TCP").unwrap())
        .await
        .unwrap();
    assert_eq!((t.destination.port(), t.transport), (5070, Transport::Tcp));
    assert!(
        driver::resolve(&Uri::parse("sip:pbx@localhost;transport=sctp").unwrap())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn cig_uac_gets_486_from_sipp() {
    let (_h, mut ev, child, call) =
        call_sipp_uas(&["-sf", &scenario("uas_busy.xml")], None, our_offer()).await;
    let e = next_final(&mut ev).await;
    assert!(
        matches!(e, Event::Rejected { call: c, status: 486, .. } if c == call),
        "{e:?}"
    );
    assert!(wait(child).await.success());
}

#[tokio::test]
async fn cig_uac_answers_401_with_digest_verified_by_sipp() {
    let cred = Credentials::new("gateway", "s3cret");
    let (h, mut ev, child, call) =
        call_sipp_uas(&["-sf", &scenario("uas_auth.xml")], Some(cred), our_offer()).await;
    assert!(matches!(next_final(&mut ev).await, Event::Answered { .. }));
    h.hangup(call).await.unwrap();
    assert_eq!(
        next_final(&mut ev).await,
        Event::Ended {
            call,
            reason: EndReason::LocalHangup
        }
    );
    assert!(wait(child).await.success());
}

#[tokio::test]
async fn cig_uac_wrong_password_ends_with_the_pbx_status() {
    let cred = Credentials::new("gateway", "wrong");
    let (_h, mut ev, child, call) =
        call_sipp_uas(&["-sf", &scenario("uas_auth.xml")], Some(cred), our_offer()).await;
    let e = next_final(&mut ev).await;
    assert!(
        matches!(e, Event::Rejected { call: c, status: 401, .. } if c == call),
        "{e:?}"
    );
    // sipp's scenario ends after the ACK of the second 401: no third INVITE was needed.
    assert!(wait(child).await.success());
}

async fn next_event(ev: &mut Events, want: impl Fn(&Event) -> bool) -> Event {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(60), ev.recv())
            .await
            .unwrap()
            .unwrap();
        if want(&e) {
            return e;
        }
    }
}

/// sipp plays a forking proxy: two 200s with different To tags. We ACK both, BYE the second
/// dialog at once and stay on the first; sipp checks every tag and the second BYE's target.
#[tokio::test]
async fn cig_uac_acks_and_byes_a_second_fork_from_sipp() {
    let (h, mut ev, child, call) =
        call_sipp_uas(&["-sf", &scenario("uas_fork.xml")], None, our_offer()).await;
    assert!(matches!(next_final(&mut ev).await, Event::Answered { call: c, .. } if c == call));
    // The second 200 follows the first at once; give our ACK and BYE for it time to reach sipp
    // before the call's own BYE (sipp expects them in that order; no event marks them).
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.hangup(call).await.unwrap();
    assert_eq!(
        next_final(&mut ev).await,
        Event::Ended {
            call,
            reason: EndReason::LocalHangup
        }
    );
    assert!(wait(child).await.success());
}

/// sipp answers the call, then challenges our re-INVITE (hold) and verifies the digest.
#[tokio::test]
async fn cig_uac_answers_a_challenged_reinvite_verified_by_sipp() {
    let cred = Credentials::new("gateway", "s3cret");
    let (h, mut ev, child, call) = call_sipp_uas(
        &["-sf", &scenario("uas_reinvite_auth.xml")],
        Some(cred),
        our_offer(),
    )
    .await;
    assert!(matches!(next_final(&mut ev).await, Event::Answered { .. }));
    let hold = sdp::offer(
        &AudioCapabilities {
            direction: sdp::Direction::SendOnly,
            ..caps()
        },
        1,
        2,
    );
    h.reinvite(call, Bytes::from(hold.to_bytes()))
        .await
        .unwrap();
    let e = next_event(&mut ev, |e| {
        matches!(e, Event::SessionUpdated { .. } | Event::UpdateFailed { .. })
    })
    .await;
    let Event::SessionUpdated { remote_sdp, .. } = e else {
        panic!("{e:?}")
    };
    let answer = sdp::SessionDescription::parse(&remote_sdp).unwrap();
    assert_eq!(answer.media[0].direction, Some(sdp::Direction::RecvOnly));
    h.hangup(call).await.unwrap();
    assert_eq!(
        next_final(&mut ev).await,
        Event::Ended {
            call,
            reason: EndReason::LocalHangup
        }
    );
    assert!(wait(child).await.success());
}

/// sipp sends a MESSAGE; the application answers 202 after the event (sipp retransmits
/// meanwhile over UDP and expects exactly the 202).
#[tokio::test]
async fn sipp_message_answered_202_by_the_application() {
    let mut config = UaConfig::new("127.0.0.1:0".parse().unwrap());
    config.messaging = true;
    let (h, mut ev) = driver::start(config, rand_seed()).await.unwrap();
    let target = h.local_addr().to_string();
    let port = free_port().to_string();
    let child = sipp(&[
        "-sf",
        &scenario("uac_message.xml"),
        &target,
        "-i",
        "127.0.0.1",
        "-p",
        &port,
        "-m",
        "1",
        "-s",
        "300",
    ]);
    let e = next_event(&mut ev, |e| matches!(e, Event::IncomingMessage { .. })).await;
    let Event::IncomingMessage {
        message,
        body,
        content_type,
        to,
        ..
    } = e
    else {
        unreachable!()
    };
    assert!(body.starts_with(b"hello from sipp"), "{body:?}");
    assert_eq!(content_type, "text/plain;charset=UTF-8");
    assert!(to.uri.to_string().starts_with("sip:300@"), "{to}");
    // The switch takes its time: sipp's retransmissions are absorbed meanwhile.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    h.respond_message(message, 202).await.unwrap();
    assert!(wait(child).await.success());
}

/// Our MESSAGE to sipp is challenged with 401; sipp verifies the digest and answers 202.
#[tokio::test]
async fn cig_message_answers_401_verified_by_sipp() {
    let port = free_port();
    let child = sipp(&[
        "-sf",
        &scenario("uas_message_auth.xml"),
        "-i",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-m",
        "1",
    ]);
    let (h, mut ev) = ua().await;
    let uri = Uri::parse(format!("sip:300@127.0.0.1:{port}")).unwrap();
    let msg = OutgoingMessage {
        target: driver::resolve(&uri).await.unwrap(),
        from: NameAddr::new(Uri::parse(format!("sip:gateway@{}", h.local_addr())).unwrap()),
        to: NameAddr::new(uri),
        content_type: "text/plain".into(),
        body: Bytes::from_static(b"hello pbx"),
        credentials: Some(Credentials::new("gateway", "s3cret")),
    };
    let m = h.send_message(msg).await.unwrap();
    let e = next_event(&mut ev, |e| matches!(e, Event::MessageResult { .. })).await;
    assert_eq!(
        e,
        Event::MessageResult {
            message: m,
            status: 202
        }
    );
    assert!(wait(child).await.success());
}
