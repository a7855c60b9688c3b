//! RFC 4733 telephone-events (DTMF): the 4-byte event payload, digit ↔ event code mapping, and
//! [`DtmfSender`], a sans-IO generator that emits an event as RTP payloads: the first packet with
//! the marker bit, duration updates every packet interval, and the end of the event sent three
//! times with the same final duration (RFC 4733 §2.5.1).

use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Length of one event block.
pub const EVENT_LEN: usize = 4;
/// How often the end-of-event packet is sent (RFC 4733 §2.5.1.4 recommends three).
pub const END_REPEATS: u8 = 3;

/// One telephone-event block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0–9 digits, 10 `*`, 11 `#`, 12–15 `A`–`D`.
    pub event: u8,
    /// The E bit: this is the end of the event.
    pub end: bool,
    /// Power level in −dBm0 (0–63).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first event block of a telephone-event payload.
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent> {
        let b: &[u8; EVENT_LEN] = payload
            .get(..EVENT_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(Error::Truncated)?;
        Ok(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// Writes the block at the start of `out`; returns [`EVENT_LEN`].
    pub fn write(&self, out: &mut [u8]) -> Result<usize> {
        let b = out
            .get_mut(..EVENT_LEN)
            .ok_or(Error::BufferTooSmall { needed: EVENT_LEN })?;
        b[0] = self.event;
        b[1] = (u8::from(self.end) << 7) | (self.volume & 0x3f);
        b[2..].copy_from_slice(&self.duration.to_be_bytes());
        Ok(EVENT_LEN)
    }
}

/// The event code of a DTMF digit (`0`–`9`, `*`, `#`, `A`–`D`, case-insensitive).
pub fn digit_to_event(digit: char) -> Option<u8> {
    match digit.to_ascii_uppercase() {
        d @ '0'..='9' => Some(d as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        d @ 'A'..='D' => Some(d as u8 - b'A' + 12),
        _ => None,
    }
}

/// The DTMF digit of an event code 0–15.
pub fn event_to_digit(event: u8) -> Option<char> {
    b"0123456789*#ABCD"
        .get(usize::from(event))
        .map(|&c| char::from(c))
}

/// One packet to send, produced by [`DtmfSender::poll`]. The caller adds sequence number, SSRC
/// and payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// Marker bit: set on the first packet of an event.
    pub marker: bool,
    /// RTP timestamp: the event's start, the same for all its packets.
    pub timestamp: u32,
    /// The payload.
    pub event: TelephoneEvent,
}

#[derive(Debug, Clone, Copy)]
struct Active {
    event: u8,
    volume: u8,
    timestamp: u32,
    /// Duration of the whole event, in timestamp units.
    total: u16,
    /// Duration reported so far.
    sent: u16,
    first: bool,
    ends_sent: u8,
    next_at: Instant,
}

/// Generates the packets of one telephone event at a time.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    interval: Duration,
    units_per_interval: u16,
    active: Option<Active>,
}

impl DtmfSender {
    /// A sender that emits a packet every `interval`, each covering `units_per_interval`
    /// timestamp units (e.g. 20 ms and 160 at 8 kHz).
    pub fn new(interval: Duration, units_per_interval: u16) -> DtmfSender {
        DtmfSender {
            interval,
            units_per_interval: units_per_interval.max(1),
            active: None,
        }
    }

    /// Starts event `event` lasting `units` timestamp units (capped at 65535), stamped
    /// `timestamp`; the first packet is due at `now`. Replaces an event still in progress.
    pub fn start(&mut self, event: u8, volume: u8, units: u32, timestamp: u32, now: Instant) {
        self.active = Some(Active {
            event,
            volume: volume & 0x3f,
            timestamp,
            total: u16::try_from(units).unwrap_or(u16::MAX).max(1),
            sent: 0,
            first: true,
            ends_sent: 0,
            next_at: now,
        });
    }

    /// Whether an event is being sent.
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// When the next packet is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.active.map(|a| a.next_at)
    }

    /// The packet due at `now`, if any.
    pub fn poll(&mut self, now: Instant) -> Option<DtmfPacket> {
        let a = self.active.as_mut()?;
        if now < a.next_at {
            return None;
        }
        a.sent = a.sent.saturating_add(self.units_per_interval).min(a.total);
        let end = a.sent == a.total;
        let packet = DtmfPacket {
            marker: a.first,
            timestamp: a.timestamp,
            event: TelephoneEvent {
                event: a.event,
                end,
                volume: a.volume,
                duration: a.sent,
            },
        };
        a.first = false;
        a.next_at = now + self.interval;
        if end {
            a.ends_sent += 1;
            if a.ends_sent >= END_REPEATS {
                self.active = None;
            }
        }
        Some(packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip_and_rfc_example() {
        // RFC 4733 §2.3: digit 5, E bit, volume 10, duration 800.
        let ev = TelephoneEvent::parse(&[5, 0x8a, 0x03, 0x20]).unwrap();
        assert_eq!(
            ev,
            TelephoneEvent {
                event: 5,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        let mut out = [0u8; 4];
        ev.write(&mut out).unwrap();
        assert_eq!(out, [5, 0x8a, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), Err(Error::Truncated));
    }

    #[test]
    fn digit_mapping() {
        for (i, d) in "0123456789*#ABCD".chars().enumerate() {
            assert_eq!(digit_to_event(d), Some(i as u8));
            assert_eq!(event_to_digit(i as u8), Some(d));
        }
        assert_eq!(digit_to_event('b'), Some(13));
        assert_eq!(digit_to_event('x'), None);
        assert_eq!(event_to_digit(16), None);
    }

    #[test]
    fn sender_marks_updates_and_repeats_end_three_times() {
        let t0 = Instant::now();
        let ms20 = Duration::from_millis(20);
        let mut s = DtmfSender::new(ms20, 160);
        s.start(1, 10, 800, 4242, t0);
        let mut now = t0;
        let mut got = Vec::new();
        while let Some(due) = s.poll_timeout() {
            now = now.max(due);
            assert_eq!(s.poll(now - Duration::from_millis(1)), None, "not due yet");
            got.extend(s.poll(now));
        }
        let durations: Vec<u16> = got.iter().map(|p| p.event.duration).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        assert!(got[0].marker && got[1..].iter().all(|p| !p.marker));
        assert!(
            got.iter()
                .all(|p| p.timestamp == 4242 && p.event.event == 1)
        );
        assert_eq!(got.iter().filter(|p| p.event.end).count(), 3);
        assert!(!s.is_active());
        assert_eq!(now, t0 + 6 * ms20);
    }
}
