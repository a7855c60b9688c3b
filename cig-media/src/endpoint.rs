//! A sans-IO audio endpoint for one call: what a phone (the secure phone, the demo's SIP
//! phone, a test) does with media.
//!
//! An [`Endpoint`] takes 16-bit PCM from a [`PcmSource`] (a [`ToneGenerator`], the samples of
//! a WAV file, [`Silence`]) and turns it into one RTP packet every 20 ms (160 samples of PCMU
//! or PCMA), SRTP-protected when keys are given, plain RTP otherwise. DTMF digits queued with
//! [`Endpoint::send_dtmf`] go out as RFC 4733 telephone-events (100 ms each by default, the
//! end packet three times, a pause between digits) in place of audio. Received packets are
//! unprotected, and give back decoded PCM (for recording and tone detection) or a DTMF digit,
//! reported once per event when its end arrives however many times the end is repeated.
//!
//! The driver owns the socket and the clock: it sleeps until [`Endpoint::poll_timeout`], calls
//! [`Endpoint::poll_transmit`] until it returns `None` and sends each packet, and passes every
//! datagram it receives to [`Endpoint::handle_packet`]. Nothing is allocated per packet.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use cig_media::endpoint::{Endpoint, EndpointConfig, MAX_PACKET_LEN, Received, Silence};
//! use cig_media::g711::Law;
//! use cig_media::srtp::{MasterKey, SrtpProfile};
//! use cig_media::tone::{ToneDetector, ToneGenerator};
//! use cig_media::bridge::LegSrtp;
//!
//! let key = MasterKey::new(SrtpProfile::Aes128CmHmacSha1_80, &[1; 16], &[2; 14]).unwrap();
//! let keys = LegSrtp { inbound: key.clone(), outbound: key };
//! let t0 = Instant::now();
//! let mut alice = Endpoint::new(
//!     EndpointConfig::new(Law::Alaw, 0x1111).with_srtp(keys.clone()),
//!     Box::new(ToneGenerator::new(1000.0, 8000)),
//!     t0,
//! );
//! let mut bob = Endpoint::new(
//!     EndpointConfig::new(Law::Alaw, 0x2222).with_srtp(keys),
//!     Box::new(Silence),
//!     t0,
//! );
//! alice.send_dtmf("5").unwrap();
//!
//! let (mut detector, mut digits) = (ToneDetector::new(&[400.0, 1000.0]), String::new());
//! let mut buf = [0u8; MAX_PACKET_LEN];
//! for tick in 0..50 {
//!     let now = t0 + Duration::from_millis(20 * tick);
//!     while let Some(len) = alice.poll_transmit(now, &mut buf).unwrap() {
//!         match bob.handle_packet(&mut buf, len).unwrap() {
//!             Received::Audio { samples, .. } => { detector.push(samples); }
//!             Received::Dtmf(d) => digits.push(d),
//!             Received::Skipped => {}
//!         }
//!     }
//! }
//! assert_eq!(digits, "5");
//! assert_eq!(detector.summary().dominant, Some(1000.0));
//! ```

#[cfg(feature = "tokio")]
pub mod udp;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::bridge::LegSrtp;
use crate::dtmf::{self, DtmfSender, TelephoneEvent};
use crate::g711::{self, Law};
use crate::rtp::{self, FIXED_HEADER_LEN, RtpHeader};
use crate::srtp::{MAX_RTP_OVERHEAD, SrtpContext};
use crate::tone::{SAMPLE_RATE, ToneGenerator};
use crate::{Error, Result};

/// Packet interval.
pub const PTIME: Duration = Duration::from_millis(20);
/// Samples per packet (20 ms at 8 kHz), also the timestamp step.
pub const FRAME_SAMPLES: usize = 160;
/// Buffer size [`Endpoint::poll_transmit`] needs: header, one frame, the largest SRTP tag.
pub const MAX_PACKET_LEN: usize = FIXED_HEADER_LEN + FRAME_SAMPLES + MAX_RTP_OVERHEAD;
/// Most samples decoded from one received packet (a full UDP datagram over Ethernet); the
/// rest of a longer payload is ignored.
pub const MAX_RECEIVE_SAMPLES: usize = 1472;
/// Most DTMF digits waiting to be sent.
pub const MAX_QUEUED_DIGITS: usize = 64;
/// When the driver falls further behind than this, missed frames are skipped instead of
/// being sent in a burst.
const MAX_CATCH_UP: u32 = 5;
/// Volume of sent telephone-events, in −dBm0.
const DTMF_VOLUME: u8 = 10;

/// Where the audio to send comes from.
pub trait PcmSource: Send {
    /// Writes the next `out.len()` samples (8 kHz, 16-bit linear).
    fn fill(&mut self, out: &mut [i16]);
}

/// Sends digital silence.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silence;

impl PcmSource for Silence {
    fn fill(&mut self, out: &mut [i16]) {
        out.fill(0);
    }
}

impl PcmSource for ToneGenerator {
    fn fill(&mut self, out: &mut [i16]) {
        ToneGenerator::fill(self, out);
    }
}

/// Plays a buffer of samples (e.g. from [`wav::decode`](crate::wav::decode)) once, then
/// silence; or over and over.
#[derive(Debug, Clone)]
pub struct Samples {
    data: Vec<i16>,
    pos: usize,
    looped: bool,
}

impl Samples {
    /// A source playing `data`, repeated when `looped`.
    pub fn new(data: Vec<i16>, looped: bool) -> Samples {
        Samples {
            data,
            pos: 0,
            looped,
        }
    }

    /// Whether a non-looped buffer has been played to its end.
    pub fn finished(&self) -> bool {
        !self.looped && self.pos >= self.data.len()
    }
}

impl PcmSource for Samples {
    fn fill(&mut self, mut out: &mut [i16]) {
        while !out.is_empty() {
            if self.pos >= self.data.len() {
                if !self.looped || self.data.is_empty() {
                    out.fill(0);
                    return;
                }
                self.pos = 0;
            }
            let n = out.len().min(self.data.len() - self.pos);
            out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            out = &mut out[n..];
        }
    }
}

/// How an endpoint sends and what it accepts.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// The G.711 law to send (received audio is decoded by its payload type: 0 μ-law,
    /// 8 A-law, or this law for [`Self::payload_type`]).
    pub law: Law,
    /// Payload type of the audio we send (normally `law.static_payload_type()`).
    pub payload_type: u8,
    /// Payload type of RFC 4733 telephone-events, both directions; `None`: no DTMF.
    pub dtmf_payload_type: Option<u8>,
    /// Our SSRC.
    pub ssrc: u32,
    /// Sequence number of the first packet (RFC 3550: random).
    pub first_sequence: u16,
    /// Timestamp of the first packet (RFC 3550: random).
    pub first_timestamp: u32,
    /// SRTP keys (`inbound` unprotects what we receive, `outbound` protects what we send);
    /// `None`: plain RTP.
    pub srtp: Option<LegSrtp>,
    /// How long each DTMF digit lasts.
    pub dtmf_duration: Duration,
    /// Pause between two DTMF digits.
    pub dtmf_gap: Duration,
}

impl EndpointConfig {
    /// Plain RTP in `law` with its static payload type, telephone-events on 101, sequence
    /// and timestamp starting at 0, 100 ms digits with 60 ms pauses.
    pub fn new(law: Law, ssrc: u32) -> EndpointConfig {
        EndpointConfig {
            law,
            payload_type: law.static_payload_type(),
            dtmf_payload_type: Some(101),
            ssrc,
            first_sequence: 0,
            first_timestamp: 0,
            srtp: None,
            dtmf_duration: Duration::from_millis(100),
            dtmf_gap: Duration::from_millis(60),
        }
    }

    /// The same with SRTP keys.
    pub fn with_srtp(mut self, keys: LegSrtp) -> EndpointConfig {
        self.srtp = Some(keys);
        self
    }
}

/// What a received packet held.
#[derive(Debug, PartialEq, Eq)]
pub enum Received<'a> {
    /// Audio, decoded to linear PCM.
    Audio {
        /// The samples (valid until the next call on the endpoint).
        samples: &'a [i16],
        /// RTP sequence number.
        sequence: u16,
        /// RTP timestamp.
        timestamp: u32,
    },
    /// The end of a DTMF event not reported before.
    Dtmf(char),
    /// Nothing to hand on: an event still in progress, a repeated end, an RTCP packet.
    Skipped,
}

/// Counters of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndpointStats {
    /// Audio packets sent.
    pub audio_sent: u64,
    /// Telephone-event packets sent.
    pub dtmf_sent: u64,
    /// Frames not sent because the driver fell behind.
    pub frames_skipped: u64,
    /// Audio packets received.
    pub audio_received: u64,
    /// DTMF digits received (once per event).
    pub digits_received: u64,
    /// Packets refused (authentication, replay, malformed, unknown payload type).
    pub rejected: u64,
}

/// One call's audio endpoint. See the [module documentation](self).
pub struct Endpoint {
    law: Law,
    payload_type: u8,
    dtmf_payload_type: Option<u8>,
    ssrc: u32,
    tx: Option<SrtpContext>,
    rx: Option<SrtpContext>,
    source: Box<dyn PcmSource>,
    next_tick: Instant,
    sequence: u16,
    timestamp: u32,
    marker: bool,
    dtmf: DtmfSender,
    dtmf_units: u32,
    gap_ticks: u32,
    gap_left: u32,
    digits: VecDeque<u8>,
    frame: [i16; FRAME_SAMPLES],
    received: Box<[i16; MAX_RECEIVE_SAMPLES]>,
    /// (SSRC, timestamp) of the last DTMF event reported.
    last_event: Option<(u32, u32)>,
    stats: EndpointStats,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("law", &self.law)
            .field("payload_type", &self.payload_type)
            .field("dtmf_payload_type", &self.dtmf_payload_type)
            .field("ssrc", &self.ssrc)
            .field("srtp", &self.tx.is_some())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn ticks(d: Duration) -> u32 {
    u32::try_from(d.as_millis() / PTIME.as_millis()).unwrap_or(u32::MAX)
}

impl Endpoint {
    /// An endpoint whose first packet is due at `now`.
    pub fn new(config: EndpointConfig, source: Box<dyn PcmSource>, now: Instant) -> Endpoint {
        let units = config.dtmf_duration.as_millis() * u128::from(SAMPLE_RATE) / 1000;
        Endpoint {
            law: config.law,
            payload_type: config.payload_type & 0x7f,
            dtmf_payload_type: config.dtmf_payload_type.map(|pt| pt & 0x7f),
            ssrc: config.ssrc,
            tx: config.srtp.as_ref().map(|k| SrtpContext::new(&k.outbound)),
            rx: config.srtp.as_ref().map(|k| SrtpContext::new(&k.inbound)),
            source,
            next_tick: now,
            sequence: config.first_sequence,
            timestamp: config.first_timestamp,
            marker: true,
            dtmf: DtmfSender::new(PTIME, FRAME_SAMPLES as u16),
            dtmf_units: u32::try_from(units).unwrap_or(u32::MAX),
            gap_ticks: ticks(config.dtmf_gap),
            gap_left: 0,
            digits: VecDeque::new(),
            frame: [0; FRAME_SAMPLES],
            received: Box::new([0; MAX_RECEIVE_SAMPLES]),
            last_event: None,
            stats: EndpointStats::default(),
        }
    }

    /// Replaces the audio source (e.g. start playing a file once the call is answered).
    pub fn set_source(&mut self, source: Box<dyn PcmSource>) {
        self.source = source;
    }

    /// Queues DTMF digits (`0`–`9`, `*`, `#`, `A`–`D`) to be sent after the ones already
    /// waiting. Refused as a whole when a digit is invalid, when no telephone-event payload
    /// type was negotiated or when the queue would exceed [`MAX_QUEUED_DIGITS`].
    pub fn send_dtmf(&mut self, digits: &str) -> Result<()> {
        if self.dtmf_payload_type.is_none() {
            return Err(Error::Unsupported("no telephone-event payload type"));
        }
        let events: Option<Vec<u8>> = digits.chars().map(dtmf::digit_to_event).collect();
        let events = events.ok_or(Error::Unsupported("not a DTMF digit"))?;
        if self.digits.len() + events.len() > MAX_QUEUED_DIGITS {
            return Err(Error::Unsupported("too many DTMF digits queued"));
        }
        self.digits.extend(events);
        Ok(())
    }

    /// Whether DTMF digits are waiting or being sent.
    pub fn dtmf_pending(&self) -> bool {
        !self.digits.is_empty() || self.dtmf.is_active()
    }

    /// When the next packet is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_tick
    }

    /// Counters.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// The next packet due at `now`, written to `buf` (at least [`MAX_PACKET_LEN`] bytes);
    /// returns its length, or `None` when nothing is due. Call until `None`.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Result<Option<usize>> {
        if now < self.next_tick {
            return Ok(None);
        }
        if buf.len() < MAX_PACKET_LEN {
            return Err(Error::BufferTooSmall {
                needed: MAX_PACKET_LEN,
            });
        }
        let behind = ticks(now.duration_since(self.next_tick));
        if behind > MAX_CATCH_UP {
            // Keep the timestamp in step with the clock, without a burst.
            let skip = behind - 1;
            self.next_tick += PTIME * skip;
            self.timestamp = self
                .timestamp
                .wrapping_add(skip.wrapping_mul(FRAME_SAMPLES as u32));
            self.stats.frames_skipped += u64::from(skip);
            self.marker = true;
        }
        let at = self.next_tick;
        self.next_tick += PTIME;
        self.tick(at, buf).map(Some)
    }

    fn tick(&mut self, at: Instant, buf: &mut [u8]) -> Result<usize> {
        // The source advances in real time whether its frame is sent or not.
        self.source.fill(&mut self.frame);
        let (sequence, timestamp) = (self.sequence, self.timestamp);
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(FRAME_SAMPLES as u32);
        if !self.dtmf.is_active() && self.gap_left == 0 {
            if let Some(event) = self.digits.pop_front() {
                self.dtmf
                    .start(event, DTMF_VOLUME, self.dtmf_units, timestamp, at);
            }
        }
        let event = match self.dtmf_payload_type {
            Some(pt) => self.dtmf.poll(at).map(|p| (pt, p)),
            None => None,
        };
        let len = if let Some((pt, p)) = event {
            let h = rtp::write_header(buf, p.marker, pt, sequence, p.timestamp, self.ssrc)?;
            let n = p.event.write(&mut buf[h..])?;
            if !self.dtmf.is_active() {
                self.gap_left = self.gap_ticks;
                self.marker = true;
            }
            self.stats.dtmf_sent += 1;
            h + n
        } else {
            self.gap_left = self.gap_left.saturating_sub(1);
            let h = rtp::write_header(
                buf,
                self.marker,
                self.payload_type,
                sequence,
                timestamp,
                self.ssrc,
            )?;
            self.marker = false;
            let out = &mut buf[h..h + FRAME_SAMPLES];
            match self.law {
                Law::Ulaw => g711::encode_ulaw(&self.frame, out),
                Law::Alaw => g711::encode_alaw(&self.frame, out),
            };
            self.stats.audio_sent += 1;
            h + FRAME_SAMPLES
        };
        match self.tx.as_mut() {
            Some(tx) => tx.protect_rtp(buf, len),
            None => Ok(len),
        }
    }

    /// A received datagram `buf[..len]` (unprotected in place when SRTP is on). An error means
    /// the packet was refused and nothing changed (it is counted in
    /// [`EndpointStats::rejected`]).
    pub fn handle_packet(&mut self, buf: &mut [u8], len: usize) -> Result<Received<'_>> {
        let len = len.min(buf.len());
        if rtp::is_rtcp(&buf[..len]) {
            return Ok(Received::Skipped);
        }
        match self.receive(buf, len) {
            Ok(r) => Ok(match r {
                Some(Got::Audio(n, sequence, timestamp)) => Received::Audio {
                    samples: &self.received[..n],
                    sequence,
                    timestamp,
                },
                Some(Got::Dtmf(d)) => Received::Dtmf(d),
                None => Received::Skipped,
            }),
            Err(e) => {
                self.stats.rejected += 1;
                Err(e)
            }
        }
    }

    fn receive(&mut self, buf: &mut [u8], len: usize) -> Result<Option<Got>> {
        let len = match self.rx.as_mut() {
            Some(rx) => rx.unprotect_rtp(buf, len)?,
            None => len,
        };
        let pkt = &buf[..len];
        let hdr = RtpHeader::parse(pkt)?;
        let payload = &pkt[hdr.header_len..hdr.payload_end(pkt)?];
        if Some(hdr.payload_type) == self.dtmf_payload_type {
            let ev = TelephoneEvent::parse(payload)?;
            let key = (hdr.ssrc, hdr.timestamp);
            if !ev.end || self.last_event == Some(key) {
                return Ok(None);
            }
            self.last_event = Some(key);
            let digit = dtmf::event_to_digit(ev.event);
            self.stats.digits_received += u64::from(digit.is_some());
            return Ok(digit.map(Got::Dtmf));
        }
        let law = match hdr.payload_type {
            0 => Law::Ulaw,
            8 => Law::Alaw,
            pt if pt == self.payload_type => self.law,
            _ => return Err(Error::Malformed("payload type not negotiated")),
        };
        let n = payload.len().min(MAX_RECEIVE_SAMPLES);
        let out = &mut self.received[..n];
        match law {
            Law::Ulaw => g711::decode_ulaw(&payload[..n], out),
            Law::Alaw => g711::decode_alaw(&payload[..n], out),
        };
        self.stats.audio_received += 1;
        Ok(Some(Got::Audio(n, hdr.sequence, hdr.timestamp)))
    }
}

enum Got {
    Audio(usize, u16, u32),
    Dtmf(char),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::{Action, Leg, LegConfig, Session, SessionConfig};
    use crate::srtp::{MasterKey, SrtpProfile};
    use crate::tone::ToneDetector;
    use std::net::SocketAddr;

    fn keys(b: u8) -> LegSrtp {
        let k =
            MasterKey::new(SrtpProfile::Aes128CmHmacSha1_80, &[b; 16], &[b ^ 0x55; 14]).unwrap();
        LegSrtp {
            inbound: k.clone(),
            outbound: k,
        }
    }

    struct Heard {
        tone: ToneDetector,
        digits: String,
        audio_timestamps: Vec<u32>,
    }

    impl Heard {
        fn new() -> Heard {
            Heard {
                tone: ToneDetector::new(&[400.0, 1000.0, 1400.0]),
                digits: String::new(),
                audio_timestamps: Vec::new(),
            }
        }

        fn take(&mut self, r: Received<'_>) {
            match r {
                Received::Audio {
                    samples, timestamp, ..
                } => {
                    self.tone.push(samples);
                    self.audio_timestamps.push(timestamp);
                }
                Received::Dtmf(d) => self.digits.push(d),
                Received::Skipped => {}
            }
        }
    }

    /// Runs `ms` milliseconds of `from` sending to `to`, each packet passed through `path`.
    fn run(
        from: &mut Endpoint,
        to: &mut Endpoint,
        t0: Instant,
        ms: u64,
        mut path: impl FnMut(&mut [u8], usize) -> Option<usize>,
    ) -> Heard {
        let mut heard = Heard::new();
        let mut buf = [0u8; MAX_PACKET_LEN + 32];
        let mut now = t0;
        while now <= t0 + Duration::from_millis(ms) {
            while let Some(len) = from.poll_transmit(now, &mut buf).unwrap() {
                if let Some(len) = path(&mut buf, len) {
                    heard.take(to.handle_packet(&mut buf, len).unwrap());
                }
            }
            now = from.poll_timeout();
        }
        heard
    }

    #[test]
    fn packets_every_20_ms_with_continuous_header() {
        let t0 = Instant::now();
        let mut cfg = EndpointConfig::new(Law::Ulaw, 0xabcd);
        cfg.first_sequence = 0xfffe;
        cfg.first_timestamp = 0xffff_ff00;
        let mut e = Endpoint::new(cfg, Box::new(Silence), t0);
        let mut buf = [0u8; MAX_PACKET_LEN];
        let mut headers = Vec::new();
        for tick in 0..4u32 {
            let now = t0 + PTIME * tick;
            let len = e.poll_transmit(now, &mut buf).unwrap().unwrap();
            assert_eq!(len, 12 + 160);
            headers.push(RtpHeader::parse(&buf[..len]).unwrap());
            assert_eq!(e.poll_transmit(now, &mut buf).unwrap(), None);
            assert_eq!(e.poll_timeout(), now + PTIME);
        }
        let seqs: Vec<u16> = headers.iter().map(|h| h.sequence).collect();
        let tss: Vec<u32> = headers.iter().map(|h| h.timestamp).collect();
        assert_eq!(seqs, [0xfffe, 0xffff, 0, 1]);
        assert_eq!(tss, [0xffff_ff00, 0xffff_ffa0, 0x40, 0xe0]);
        assert!(headers[0].marker && headers[1..].iter().all(|h| !h.marker));
        assert!(
            headers
                .iter()
                .all(|h| h.ssrc == 0xabcd && h.payload_type == 0)
        );
        // μ-law silence is 0xFF.
        assert!(buf[12..172].iter().all(|&c| c == 0xff));
        assert_eq!(
            e.poll_transmit(t0 + PTIME * 4, &mut [0u8; 100]),
            Err(Error::BufferTooSmall {
                needed: MAX_PACKET_LEN
            })
        );
    }

    #[test]
    fn falling_behind_skips_instead_of_bursting() {
        let t0 = Instant::now();
        let mut e = Endpoint::new(EndpointConfig::new(Law::Alaw, 1), Box::new(Silence), t0);
        let mut buf = [0u8; MAX_PACKET_LEN];
        e.poll_transmit(t0, &mut buf).unwrap().unwrap();
        // Two seconds later: at most a couple of packets, timestamp in step with the clock.
        let late = t0 + Duration::from_secs(2);
        let mut sent = Vec::new();
        while let Some(len) = e.poll_transmit(late, &mut buf).unwrap() {
            sent.push(RtpHeader::parse(&buf[..len]).unwrap());
        }
        assert!(sent.len() <= 2, "{}", sent.len());
        assert_eq!(sent.last().unwrap().timestamp, 2 * 8000);
        assert!(sent[0].marker);
        assert_eq!(e.stats().frames_skipped, 98);
    }

    #[test]
    fn tone_and_dtmf_over_srtp() {
        let t0 = Instant::now();
        let mut a = Endpoint::new(
            EndpointConfig::new(Law::Ulaw, 10).with_srtp(keys(3)),
            Box::new(ToneGenerator::new(400.0, 6000)),
            t0,
        );
        let mut b = Endpoint::new(
            EndpointConfig::new(Law::Ulaw, 20).with_srtp(keys(3)),
            Box::new(Silence),
            t0,
        );
        a.send_dtmf("12#").unwrap();
        assert!(a.dtmf_pending());
        let heard = run(&mut a, &mut b, t0, 1500, |_, len| Some(len));
        assert_eq!(heard.digits, "12#");
        assert!(!a.dtmf_pending());
        assert_eq!(heard.tone.summary().dominant, Some(400.0));
        // 3 digits × (5 updates + 3 ends), audio in between.
        assert_eq!(a.stats().dtmf_sent, 3 * 7);
        assert_eq!(b.stats().digits_received, 3);
        assert_eq!(a.stats().audio_sent + a.stats().dtmf_sent, 76);
        // A tampered packet is refused and counted.
        let mut buf = [0u8; MAX_PACKET_LEN];
        let len = a
            .poll_transmit(t0 + Duration::from_secs(2), &mut buf)
            .unwrap()
            .unwrap();
        buf[20] ^= 1;
        assert_eq!(b.handle_packet(&mut buf, len), Err(Error::AuthFailed));
        assert_eq!(b.stats().rejected, 1);
        // Wrong key: refused.
        let mut c = Endpoint::new(
            EndpointConfig::new(Law::Ulaw, 30).with_srtp(keys(4)),
            Box::new(Silence),
            t0,
        );
        let len = a
            .poll_transmit(t0 + Duration::from_secs(3), &mut buf)
            .unwrap()
            .unwrap();
        assert_eq!(c.handle_packet(&mut buf, len), Err(Error::AuthFailed));
    }

    #[test]
    fn dtmf_reported_once_even_when_end_packets_are_lost() {
        let t0 = Instant::now();
        let mut a = Endpoint::new(EndpointConfig::new(Law::Alaw, 1), Box::new(Silence), t0);
        let mut b = Endpoint::new(EndpointConfig::new(Law::Alaw, 2), Box::new(Silence), t0);
        a.send_dtmf("9*9D").unwrap();
        // Drop the first end packet of every event and the second of some: every digit is
        // still reported exactly once, including two equal digits in a row.
        let mut ends = 0;
        let heard = run(&mut a, &mut b, t0, 1500, |buf, len| {
            let h = RtpHeader::parse(&buf[..len]).unwrap();
            if h.payload_type == 101 && buf[13] & 0x80 != 0 {
                ends += 1;
                if ends % 3 == 1 || ends % 6 == 2 {
                    return None;
                }
            }
            Some(len)
        });
        assert_eq!(heard.digits, "9*9D");
    }

    #[test]
    fn dtmf_refused_without_payload_type_or_bad_digit() {
        let t0 = Instant::now();
        let mut cfg = EndpointConfig::new(Law::Alaw, 1);
        let mut e = Endpoint::new(cfg.clone(), Box::new(Silence), t0);
        assert!(e.send_dtmf("12x").is_err());
        assert!(!e.dtmf_pending());
        assert!(e.send_dtmf(&"1".repeat(MAX_QUEUED_DIGITS + 1)).is_err());
        cfg.dtmf_payload_type = None;
        let mut e = Endpoint::new(cfg, Box::new(Silence), t0);
        assert!(e.send_dtmf("1").is_err());
    }

    #[test]
    fn receive_refuses_garbage_and_unknown_payload_types() {
        let t0 = Instant::now();
        let mut e = Endpoint::new(EndpointConfig::new(Law::Alaw, 1), Box::new(Silence), t0);
        let mut pkt = [0u8; 20];
        rtp::write_header(&mut pkt, false, 18, 1, 1, 1).unwrap();
        assert!(e.handle_packet(&mut pkt, 20).is_err());
        assert!(e.handle_packet(&mut [0x80, 0], 2).is_err());
        // Longer `len` than buffer: clamped, no panic.
        assert!(e.handle_packet(&mut [0u8; 4], 400).is_err());
        // RTCP on the RTP port is skipped.
        let mut rr = [0x80, 201, 0, 1, 0, 0, 0, 1];
        assert_eq!(e.handle_packet(&mut rr, 8), Ok(Received::Skipped));
        // Telephone-event with a short payload.
        rtp::write_header(&mut pkt, false, 101, 1, 1, 1).unwrap();
        assert!(e.handle_packet(&mut pkt, 14).is_err());
        assert_eq!(e.stats().rejected, 4);
        // PCMU arriving at a PCMA endpoint is still decoded by its payload type.
        rtp::write_header(&mut pkt, false, 0, 1, 1, 1).unwrap();
        pkt[12..].fill(0x80); // μ-law +32124
        match e.handle_packet(&mut pkt, 20).unwrap() {
            Received::Audio { samples, .. } => assert!(samples.iter().all(|&s| s == 32124)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn samples_source_plays_once_or_loops() {
        let mut once = Samples::new(vec![1, 2, 3], false);
        let mut out = [9i16; 5];
        once.fill(&mut out);
        assert_eq!(out, [1, 2, 3, 0, 0]);
        assert!(once.finished());
        let mut looped = Samples::new(vec![1, 2, 3], true);
        looped.fill(&mut out);
        assert_eq!(out, [1, 2, 3, 1, 2]);
        assert!(!looped.finished());
        let mut empty = Samples::new(vec![], true);
        empty.fill(&mut out);
        assert_eq!(out, [0; 5]);
    }

    /// The gateway's path: a secure endpoint (SRTP, A-law) through the relay's bridge session
    /// to a SIP endpoint (plain RTP, μ-law) and back; tones and digits cross both ways.
    #[test]
    fn through_the_relay_bridge_both_ways() {
        let t0 = Instant::now();
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let (secure_addr, sip_addr) = (addr(4000), addr(5000));
        let mut leg_a = LegConfig::new(Law::Alaw, 0xa);
        leg_a.srtp = Some(keys(7));
        leg_a.remote = Some(secure_addr);
        let mut leg_b = LegConfig::new(Law::Ulaw, 0xb);
        leg_b.remote = Some(sip_addr);
        let mut bridge = Session::new(
            &SessionConfig {
                a: leg_a,
                b: leg_b,
                media_timeout: Duration::from_secs(30),
            },
            &[],
            t0,
        );
        let mut secure = Endpoint::new(
            EndpointConfig::new(Law::Alaw, 1).with_srtp(keys(7)),
            Box::new(ToneGenerator::new(1400.0, 8000)),
            t0,
        );
        let mut sip = Endpoint::new(
            EndpointConfig::new(Law::Ulaw, 2),
            Box::new(ToneGenerator::new(400.0, 8000)),
            t0,
        );
        secure.send_dtmf("47").unwrap();
        sip.send_dtmf("0#").unwrap();
        let mut relay = |leg: Leg, src: SocketAddr, buf: &mut [u8], len: usize| match bridge
            .on_rtp(leg, src, buf, len, t0)
        {
            Action::Forward { len, .. } => Some(len),
            Action::Drop(r) => panic!("{r:?}"),
        };
        let to_sip = run(&mut secure, &mut sip, t0, 1200, |b, l| {
            relay(Leg::A, secure_addr, b, l)
        });
        let to_secure = run(&mut sip, &mut secure, t0, 1200, |b, l| {
            relay(Leg::B, sip_addr, b, l)
        });
        assert_eq!(to_sip.digits, "47");
        assert_eq!(to_secure.digits, "0#");
        assert_eq!(to_sip.tone.summary().dominant, Some(1400.0));
        assert_eq!(to_secure.tone.summary().dominant, Some(400.0));
        assert!(to_sip.audio_timestamps.windows(2).all(|w| w[1] > w[0]));
    }
}
