//! A thin tokio driver that runs one [`Endpoint`] on a UDP socket (feature `tokio`): packets
//! go to the remote address every 20 ms, what arrives is decoded, fed to a tone detector,
//! optionally recorded, and each DTMF digit received is passed on as it arrives.
//!
//! With SRTP any source is accepted (packets authenticate themselves; a relay may send from
//! another port); with plain RTP only packets from the remote address are.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Instant;
//! use cig_media::endpoint::udp::{MediaTask, Options};
//! use cig_media::endpoint::{Endpoint, EndpointConfig};
//! use cig_media::g711::Law;
//! use cig_media::tone::ToneGenerator;
//!
//! let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
//! let endpoint = Endpoint::new(
//!     EndpointConfig::new(Law::Ulaw, 0x1234),
//!     Box::new(ToneGenerator::new(1000.0, 8000)),
//!     Instant::now(),
//! );
//! let (digits_tx, mut digits) = tokio::sync::mpsc::unbounded_channel();
//! let media = MediaTask::spawn(socket, "127.0.0.1:40000".parse().unwrap(), endpoint,
//!                              Options::default(), Some(digits_tx));
//! media.send_dtmf("123#").unwrap();
//! while let Some(d) = digits.recv().await {
//!     if d == '#' { break }
//! }
//! let report = media.stop().await;
//! println!("heard {:?} Hz", report.tone.dominant);
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

use super::{Endpoint, EndpointStats, MAX_PACKET_LEN, PcmSource, Received};
use crate::dtmf;
use crate::tone::{ToneDetector, ToneSummary};
use crate::wav::{HEADER_LEN, MAX_WAV_BYTES};
use crate::{Error, Result};

/// Most samples recorded (what fits in a [`MAX_WAV_BYTES`] WAV file).
pub const MAX_RECORDED: usize = (MAX_WAV_BYTES - HEADER_LEN) / 2;

/// What to do with received audio.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Keep the decoded audio (up to [`MAX_RECORDED`] samples).
    pub record: bool,
    /// Candidate frequencies of the tone detector (default: any tone 100–3900 Hz, 10 Hz grid).
    pub tone_candidates: Option<Vec<f32>>,
}

/// What the task heard and did, returned by [`MediaTask::stop`].
#[derive(Debug, Clone)]
pub struct Report {
    /// Tone detection over everything received.
    pub tone: ToneSummary,
    /// The endpoint's counters.
    pub stats: EndpointStats,
    /// Every DTMF digit received, in order.
    pub digits: String,
    /// The received audio, when recording.
    pub recorded: Vec<i16>,
}

enum Command {
    Dtmf(String),
    Source(Box<dyn PcmSource>),
    Stop,
}

/// A running media task. Dropping it without [`stop`](Self::stop) ends the task too.
#[derive(Debug)]
pub struct MediaTask {
    commands: UnboundedSender<Command>,
    join: JoinHandle<Report>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Dtmf(_) => "Dtmf",
            Command::Source(_) => "Source",
            Command::Stop => "Stop",
        })
    }
}

impl MediaTask {
    /// Starts sending to `remote` from `socket` at once; digits received are also sent to
    /// `digits` when given. Must be called inside a tokio runtime.
    pub fn spawn(
        socket: UdpSocket,
        remote: SocketAddr,
        endpoint: Endpoint,
        options: Options,
        digits: Option<UnboundedSender<char>>,
    ) -> MediaTask {
        let (commands, rx) = unbounded_channel();
        let secure = endpoint.tx.is_some();
        let join = tokio::spawn(run(socket, remote, secure, endpoint, options, digits, rx));
        MediaTask { commands, join }
    }

    /// Queues DTMF digits; refused when a character is not a DTMF digit.
    pub fn send_dtmf(&self, digits: &str) -> Result<()> {
        if digits.chars().any(|c| dtmf::digit_to_event(c).is_none()) {
            return Err(Error::Unsupported("not a DTMF digit"));
        }
        // A task that has ended has nothing left to send the digits with.
        let _ = self.commands.send(Command::Dtmf(digits.to_owned()));
        Ok(())
    }

    /// Replaces the audio source.
    pub fn set_source(&self, source: Box<dyn PcmSource>) {
        let _ = self.commands.send(Command::Source(source));
    }

    /// Stops sending and returns what was heard.
    pub async fn stop(self) -> Report {
        let _ = self.commands.send(Command::Stop);
        match self.join.await {
            Ok(report) => report,
            // The task cannot panic on packet input; if it was cancelled, nothing was heard.
            Err(_) => Report {
                tone: ToneDetector::new(&[]).summary(),
                stats: EndpointStats::default(),
                digits: String::new(),
                recorded: Vec::new(),
            },
        }
    }
}

async fn run(
    socket: UdpSocket,
    remote: SocketAddr,
    secure: bool,
    mut ep: Endpoint,
    options: Options,
    digits_tx: Option<UnboundedSender<char>>,
    mut commands: UnboundedReceiver<Command>,
) -> Report {
    let mut detector = match &options.tone_candidates {
        Some(c) => ToneDetector::new(c),
        None => ToneDetector::any_tone(),
    };
    let mut recorded = Vec::new();
    let mut digits = String::new();
    let mut out = [0u8; MAX_PACKET_LEN];
    let mut buf = [0u8; 2048];
    loop {
        let due = tokio::time::Instant::from_std(ep.poll_timeout());
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {
                let now = Instant::now();
                while let Ok(Some(n)) = ep.poll_transmit(now, &mut out) {
                    // A lost datagram is lost audio, not a reason to stop.
                    let _ = socket.send_to(&out[..n], remote).await;
                }
            }
            r = socket.recv_from(&mut buf) => {
                let Ok((n, src)) = r else { continue };
                if !secure && src != remote {
                    continue;
                }
                match ep.handle_packet(&mut buf, n) {
                    Ok(Received::Audio { samples, .. }) => {
                        detector.push(samples);
                        if options.record {
                            let room = MAX_RECORDED.saturating_sub(recorded.len());
                            recorded.extend_from_slice(&samples[..samples.len().min(room)]);
                        }
                    }
                    Ok(Received::Dtmf(d)) => {
                        digits.push(d);
                        if let Some(tx) = &digits_tx {
                            let _ = tx.send(d);
                        }
                    }
                    // Refused packets are counted in the endpoint's stats.
                    Ok(Received::Skipped) | Err(_) => {}
                }
            }
            c = commands.recv() => match c {
                Some(Command::Dtmf(d)) => {
                    let _ = ep.send_dtmf(&d);
                }
                Some(Command::Source(s)) => ep.set_source(s),
                Some(Command::Stop) | None => break,
            },
        }
    }
    Report {
        tone: detector.summary(),
        stats: ep.stats(),
        digits,
        recorded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::LegSrtp;
    use crate::endpoint::{EndpointConfig, Silence};
    use crate::g711::Law;
    use crate::srtp::{MasterKey, SrtpProfile};
    use crate::tone::ToneGenerator;

    /// Two tasks on loopback sockets: SRTP both ways, a tone each way, digits one way.
    #[tokio::test]
    async fn two_endpoints_over_loopback() {
        let key = MasterKey::new(SrtpProfile::Aes128CmHmacSha1_80, &[5; 16], &[6; 14]).unwrap();
        let keys = LegSrtp {
            inbound: key.clone(),
            outbound: key,
        };
        let a_sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b_sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (a_addr, b_addr) = (a_sock.local_addr().unwrap(), b_sock.local_addr().unwrap());
        let now = Instant::now();
        let a = Endpoint::new(
            EndpointConfig::new(Law::Alaw, 1).with_srtp(keys.clone()),
            Box::new(ToneGenerator::new(1000.0, 8000)),
            now,
        );
        let b = Endpoint::new(
            EndpointConfig::new(Law::Alaw, 2).with_srtp(keys),
            Box::new(Silence),
            now,
        );
        let (tx, mut rx) = unbounded_channel();
        let opts = Options {
            record: true,
            tone_candidates: Some(vec![400.0, 1000.0, 1400.0]),
        };
        let a = MediaTask::spawn(a_sock, b_addr, a, Options::default(), None);
        let b = MediaTask::spawn(b_sock, a_addr, b, opts, Some(tx));
        b.set_source(Box::new(ToneGenerator::new(400.0, 8000)));
        assert!(a.send_dtmf("1x").is_err());
        a.send_dtmf("4#").unwrap();
        let mut got = String::new();
        while let Some(d) = rx.recv().await {
            got.push(d);
            if d == '#' {
                break;
            }
        }
        assert_eq!(got, "4#");
        // Audio resumes after the digits: let 0.3 s of it (three detector blocks) flow.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let (ra, rb) = (a.stop().await, b.stop().await);
        assert_eq!(rb.digits, "4#");
        assert_eq!(rb.tone.dominant, Some(1000.0));
        assert!(!rb.recorded.is_empty());
        assert!(ra.recorded.is_empty());
        assert_eq!(ra.tone.dominant, Some(400.0));
        assert_eq!(rb.stats.rejected, 0);
    }
}
