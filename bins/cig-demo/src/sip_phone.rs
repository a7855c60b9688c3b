//! The demo's SIP phone: desk phone 101 of the "PBX", an in-process user agent from cig-sip
//! with a cig-media audio endpoint (plain RTP). It answers every call, plays its tone, and
//! can place a call with DTMF; for each call it reports what it heard.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cig_media::endpoint::udp::{MediaTask, Options};
use cig_media::endpoint::{Endpoint, EndpointConfig};
use cig_media::g711::Law;
use cig_media::tone::ToneGenerator;
use cig_sip::driver::{self, Events, SipHandle};
use cig_sip::message::{NameAddr, Uri};
use cig_sip::sdp::{self, AudioCapabilities, Codec, NegotiatedAudio, SessionDescription};
use cig_sip::transaction::Transport;
use cig_sip::ua::{CallHandle, Event, OutgoingCall, Target, UaConfig};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// What the phone heard on one call.
#[derive(Debug, Clone)]
pub struct CallReport {
    /// `in` (the phone answered) or `out` (it dialled).
    pub direction: &'static str,
    /// INVITE sent (or received) to 200 OK.
    pub setup: Duration,
    /// The dominant tone heard, Hz.
    pub tone_hz: Option<f32>,
    /// DTMF digits received.
    pub digits: String,
    /// Audio packets received.
    pub audio_rx: u64,
    /// The codec used.
    pub codec: &'static str,
    /// How the call ended, or why it failed.
    pub outcome: String,
}

impl CallReport {
    fn failed(direction: &'static str, outcome: String) -> CallReport {
        CallReport {
            direction,
            setup: Duration::ZERO,
            tone_hz: None,
            digits: String::new(),
            audio_rx: 0,
            codec: "-",
            outcome,
        }
    }
}

/// A call to place.
#[derive(Debug, Clone)]
pub struct Dial {
    /// The gateway's SIP address.
    pub gateway: SocketAddr,
    /// To and Request-URI.
    pub to: String,
    /// DTMF to send 0.5 s after the answer.
    pub dtmf: String,
    /// Hang up this long after the answer.
    pub talk: Duration,
}

/// The running phone: commands in, reports out.
#[derive(Debug)]
pub struct SipPhone {
    dial: mpsc::UnboundedSender<Dial>,
    /// One report per ended call.
    pub reports: mpsc::UnboundedReceiver<CallReport>,
}

impl SipPhone {
    /// Starts the phone on `addr` as `sip:101@addr`, playing `tone_hz`. Call inside a runtime.
    pub async fn start(addr: SocketAddr, tone_hz: f32) -> std::io::Result<SipPhone> {
        let (handle, events) = driver::start(UaConfig::new(addr), seed()).await?;
        let (dial, dial_rx) = mpsc::unbounded_channel();
        let (report_tx, reports) = mpsc::unbounded_channel();
        tokio::spawn(run(handle, events, dial_rx, report_tx, tone_hz));
        Ok(SipPhone { dial, reports })
    }

    /// Places a call.
    pub fn dial(&self, dial: Dial) {
        // The task ends only when the runtime does.
        let _ = self.dial.send(dial);
    }
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

/// One call in progress.
struct Live {
    call: CallHandle,
    direction: &'static str,
    started: Instant,
    setup: Duration,
    media: Option<(MediaTask, &'static str)>,
    dial: Option<Dial>,
    caps: AudioCapabilities,
    socket: Option<UdpSocket>,
}

async fn media_socket(ip: IpAddr) -> std::io::Result<(UdpSocket, AudioCapabilities)> {
    let socket = UdpSocket::bind((ip, 0)).await?;
    let mut caps = AudioCapabilities::new(ip, socket.local_addr()?.port());
    caps.codecs = vec![Codec::Pcmu, Codec::Pcma];
    Ok((socket, caps))
}

fn start_media(
    socket: UdpSocket,
    negotiated: &NegotiatedAudio,
    tone_hz: f32,
) -> (MediaTask, &'static str) {
    let (law, codec) = match negotiated.codec {
        Codec::Pcma => (Law::Alaw, "PCMA"),
        _ => (Law::Ulaw, "PCMU"),
    };
    let mut config = EndpointConfig::new(law, 0x5151_0101);
    config.payload_type = negotiated.payload_type;
    config.dtmf_payload_type = negotiated.telephone_event;
    let endpoint = Endpoint::new(
        config,
        Box::new(ToneGenerator::new(tone_hz, 8000)),
        Instant::now(),
    );
    let remote = SocketAddr::new(negotiated.remote_address, negotiated.remote_port);
    (
        MediaTask::spawn(socket, remote, endpoint, Options::default(), None),
        codec,
    )
}

async fn finish(live: Live, outcome: String, reports: &mpsc::UnboundedSender<CallReport>) {
    let (tone_hz, digits, audio_rx, codec) = match live.media {
        Some((task, codec)) => {
            let report = task.stop().await;
            (
                report.tone.dominant,
                report.digits,
                report.stats.audio_received,
                codec,
            )
        }
        None => (None, String::new(), 0, "-"),
    };
    let _ = reports.send(CallReport {
        direction: live.direction,
        setup: live.setup,
        tone_hz,
        digits,
        audio_rx,
        codec,
        outcome,
    });
}

/// Something to do to a call later.
#[derive(Debug)]
enum Later {
    Dtmf(String),
    Hangup,
}

fn later_after(
    tx: &mpsc::UnboundedSender<(CallHandle, Later)>,
    delay: Duration,
    call: CallHandle,
    what: Later,
) {
    let tx = tx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = tx.send((call, what));
    });
}

async fn run(
    handle: SipHandle,
    mut events: Events,
    mut dials: mpsc::UnboundedReceiver<Dial>,
    reports: mpsc::UnboundedSender<CallReport>,
    tone_hz: f32,
) {
    let me = handle.local_addr();
    let mut live: Option<Live> = None;
    let (later_tx, mut later_rx) = mpsc::unbounded_channel::<(CallHandle, Later)>();
    loop {
        tokio::select! {
            Some(dial) = dials.recv() => {
                let Ok((socket, caps)) = media_socket(me.ip()).await else { continue };
                let offer = sdp::offer(&caps, seed(), 1).to_bytes();
                let (Ok(to), Ok(from)) = (Uri::parse(dial.to.clone()), Uri::parse(format!("sip:101@{me}"))) else {
                    let _ = reports.send(CallReport::failed("out", format!("bad URI {}", dial.to)));
                    continue;
                };
                let call = OutgoingCall {
                    target: Target {
                        uri: to.clone(),
                        destination: dial.gateway,
                        transport: Transport::Udp,
                    },
                    from: NameAddr::new(from),
                    to: NameAddr::new(to),
                    sdp: Bytes::from(offer),
                    credentials: None,
                };
                let started = Instant::now();
                match handle.place_call(call).await {
                    Ok(call) => live = Some(Live { call, direction: "out", started, setup: Duration::ZERO, media: None, dial: Some(dial), caps, socket: Some(socket) }),
                    Err(e) => { let _ = reports.send(CallReport::failed("out", format!("INVITE not sent: {e}"))); }
                }
            }
            Some((call, what)) = later_rx.recv() => {
                let Some(l) = live.as_ref().filter(|l| l.call == call) else { continue };
                match what {
                    Later::Dtmf(digits) => {
                        if let Some((task, _)) = &l.media {
                            let _ = task.send_dtmf(&digits);
                        }
                    }
                    Later::Hangup => { let _ = handle.hangup(call).await; }
                }
            }
            event = events.recv() => {
                let Some(event) = event else { return };
                match event {
                    Event::IncomingCall { call, sdp: offer, .. } => {
                        let started = Instant::now();
                        if live.is_some() {
                            let _ = handle.reject(call, 486).await;
                            continue;
                        }
                        let Ok((socket, caps)) = media_socket(me.ip()).await else {
                            let _ = handle.reject(call, 500).await;
                            continue;
                        };
                        let _ = handle.ringing(call).await;
                        let answered = SessionDescription::parse(&offer)
                            .and_then(|o| sdp::answer(&o, &caps, seed(), 1));
                        match answered {
                            Ok((answer, negotiated)) => {
                                if handle.answer(call, Bytes::from(answer.to_bytes())).await.is_ok() {
                                    live = Some(Live { call, direction: "in", started, setup: started.elapsed(), media: Some(start_media(socket, &negotiated, tone_hz)), dial: None, caps, socket: None });
                                }
                            }
                            Err(_) => { let _ = handle.reject(call, 488).await; }
                        }
                    }
                    Event::Answered { call, sdp: answer } => {
                        let Some(l) = live.as_mut().filter(|l| l.call == call) else { continue };
                        l.setup = l.started.elapsed();
                        let negotiated = SessionDescription::parse(&answer).and_then(|a| sdp::accept_answer(&l.caps, &a));
                        match (negotiated, l.socket.take()) {
                            (Ok(n), Some(socket)) => {
                                l.media = Some(start_media(socket, &n, tone_hz));
                                if let Some(dial) = &l.dial {
                                    later_after(&later_tx, Duration::from_millis(500), call, Later::Dtmf(dial.dtmf.clone()));
                                    later_after(&later_tx, dial.talk, call, Later::Hangup);
                                }
                            }
                            _ => { let _ = handle.hangup(call).await; }
                        }
                    }
                    Event::Rejected { call, status, reason } => {
                        if let Some(l) = live.take_if(|l| l.call == call) {
                            finish(l, format!("rejected {status} {reason}"), &reports).await;
                        }
                    }
                    Event::Ended { call, reason } => {
                        if let Some(l) = live.take_if(|l| l.call == call) {
                            finish(l, format!("{reason:?}"), &reports).await;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}
