//! The ESME transceiver session as a sans-IO state machine: bytes and `now` in; bytes to
//! send, [`Event`]s and the next timer out. No sockets, clocks or files: the driver in
//! [`super`] owns those (and the spool).
//!
//! It binds as a transceiver at interface version 3.4, keeps at most `window` submit_sm
//! outstanding, pauses on ESME_RTHROTTLED / ESME_RMSGQFUL (50 ms doubling to 2 s, reset by a
//! success) and sends the part again, sends enquire_link after `enquire_every` and fails
//! the session when its answer does not come within another `enquire_every`, answers the
//! centre's enquire_link and unbind, reassembles concatenated deliver_sm (parts missing
//! after `reassembly_timeout` are marked), answers delivery receipts at once and reports
//! them, and answers texts only when told to ([`Session::answer`]).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use cig_core::Secret;

use super::pdu::{self, Address, Frame, Pdu, Sm, status};
use super::text::{self, Part};
use crate::{Error, Result};

/// First pause after a throttling answer.
pub const THROTTLE_MIN: Duration = Duration::from_millis(50);
/// Longest pause after repeated throttling answers.
pub const THROTTLE_MAX: Duration = Duration::from_secs(2);
/// How long the bind response is awaited.
pub const BIND_TIMEOUT: Duration = Duration::from_secs(10);

/// Session settings.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// system_id.
    pub system_id: String,
    /// password.
    pub password: Secret,
    /// Most submit_sm awaiting their response (at least 1).
    pub window: usize,
    /// Idle time before enquire_link, and how long its answer is awaited.
    pub enquire_every: Duration,
    /// How long the parts of a concatenated message are awaited.
    pub reassembly_timeout: Duration,
}

/// What the session reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// bind_transceiver accepted.
    Bound,
    /// Every part of message `id` was accepted by the centre.
    Sent {
        /// The id given to [`Session::queue`].
        id: u64,
    },
    /// The centre refused a part of message `id` with a permanent error.
    Refused {
        /// The id given to [`Session::queue`].
        id: u64,
        /// The command_status.
        status: u32,
    },
    /// A text from the centre (one deliver_sm or all parts of a concatenated one); answer
    /// `seqs` with [`Session::answer`].
    Text {
        /// Source address (`+` restored for international numbers).
        source: String,
        /// Destination address.
        dest: String,
        /// Concatenation reference (0 for a single message).
        reference: u16,
        /// The decoded text.
        text: String,
        /// Whether every part arrived.
        complete: bool,
        /// The deliver_sm sequence numbers to answer.
        seqs: Vec<u32>,
    },
    /// A delivery receipt (already answered; not a text).
    Receipt {
        /// Who sent it.
        source: String,
        /// Its text (`id:… stat:…`).
        text: String,
    },
}

struct Queued {
    id: u64,
    sm: Sm,
}

/// One ESME transceiver session over one connection.
pub struct Session {
    config: SessionConfig,
    started: Instant,
    bound: bool,
    seq: u32,
    out: Vec<u8>,
    events: VecDeque<Event>,
    queue: VecDeque<Queued>,
    outstanding: HashMap<u32, Queued>,
    /// Parts not yet accepted, per message id.
    remaining: HashMap<u64, usize>,
    throttle: Duration,
    throttled_until: Option<Instant>,
    last_rx: Instant,
    enquire_sent: Option<Instant>,
    buf: Vec<u8>,
    reassembly: text::Reassembly<u32>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("system_id", &self.config.system_id)
            .field("bound", &self.bound)
            .field("queued", &self.queue.len())
            .field("outstanding", &self.outstanding.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session on a fresh connection; bind_transceiver is the first transmit.
    pub fn new(config: SessionConfig, now: Instant) -> Result<Session> {
        let mut s = Session {
            config,
            started: now,
            bound: false,
            seq: 0,
            out: Vec::new(),
            events: VecDeque::new(),
            queue: VecDeque::new(),
            outstanding: HashMap::new(),
            remaining: HashMap::new(),
            throttle: THROTTLE_MIN,
            throttled_until: None,
            last_rx: now,
            enquire_sent: None,
            buf: Vec::new(),
            reassembly: text::Reassembly::default(),
        };
        let seq = s.next_seq();
        let bind = Pdu::BindTransceiver {
            system_id: s.config.system_id.clone(),
            password: s.config.password.expose().to_owned(),
            system_type: String::new(),
        };
        s.push(status::OK, seq, bind)?;
        Ok(s)
    }

    /// Whether the bind was accepted.
    pub fn is_bound(&self) -> bool {
        self.bound
    }

    /// Parts queued or outstanding.
    pub fn pending_parts(&self) -> usize {
        self.queue.len() + self.outstanding.len()
    }

    /// Queues message `id` (its SMS parts) from `source` to `dest`.
    pub fn queue(&mut self, id: u64, source: &Address, dest: &Address, parts: Vec<Part>) {
        self.remaining.insert(id, parts.len());
        for p in parts {
            self.queue.push_back(Queued {
                id,
                sm: Sm {
                    source: source.clone(),
                    dest: dest.clone(),
                    esm_class: p.esm_class,
                    data_coding: p.data_coding,
                    short_message: p.short_message,
                    ..Sm::default()
                },
            });
        }
    }

    /// Answers received deliver_sm `seqs` with `status`.
    pub fn answer(&mut self, seqs: &[u32], status: u32) -> Result<()> {
        for &seq in seqs {
            self.push(status, seq, Pdu::DeliverSmResp)?;
        }
        Ok(())
    }

    /// Bytes from the connection. An error means the connection must be closed.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) -> Result<()> {
        self.last_rx = now;
        self.buf.extend_from_slice(bytes);
        let mut used = 0;
        let mut result = Ok(());
        while let Some((frame, len)) = match pdu::decode(&self.buf[used..]) {
            Ok(x) => x,
            Err(e) => {
                result = Err(e);
                None
            }
        } {
            used += len;
            if let Err(e) = self.handle_frame(frame, now) {
                result = Err(e);
                break;
            }
        }
        self.buf.drain(..used);
        result
    }

    /// Runs the timers due at `now`. An error means the connection must be closed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<()> {
        if !self.bound {
            if now >= self.started + BIND_TIMEOUT {
                return Err(Error::Smpp("no bind_transceiver_resp".into()));
            }
            return Ok(());
        }
        if self.throttled_until.is_some_and(|t| now >= t) {
            self.throttled_until = None;
        }
        match self.enquire_sent {
            Some(t) if now >= t + self.config.enquire_every => {
                return Err(Error::Smpp("no enquire_link_resp".into()));
            }
            Some(_) => {}
            None if now >= self.last_rx + self.config.enquire_every => {
                self.enquire_sent = Some(now);
                let seq = self.next_seq();
                self.push(status::OK, seq, Pdu::EnquireLink)?;
            }
            None => {}
        }
        let timeout = self.config.reassembly_timeout.as_millis() as u64;
        // Parts first seen at or before now - timeout (poll_timeout's instant included).
        let deadline = (self.ms(now) + 1).saturating_sub(timeout);
        for a in self.reassembly.expire(deadline) {
            self.events.push_back(Event::Text {
                source: a.source,
                dest: a.dest,
                reference: a.reference,
                text: a.text,
                complete: false,
                seqs: a.tags,
            });
        }
        Ok(())
    }

    /// When [`Session::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.bound {
            return Some(self.started + BIND_TIMEOUT);
        }
        let enquire = match self.enquire_sent {
            Some(t) => t + self.config.enquire_every,
            None => self.last_rx + self.config.enquire_every,
        };
        let reassembly = self.reassembly.oldest().map(|first| {
            self.started + Duration::from_millis(first) + self.config.reassembly_timeout
        });
        [Some(enquire), self.throttled_until, reassembly]
            .into_iter()
            .flatten()
            .min()
    }

    /// Bytes to send (filling the submit window first), or `None`.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if let Err(e) = self.fill_window() {
            tracing::error!("smpp: cannot encode submit_sm: {e}");
        }
        (!self.out.is_empty()).then(|| std::mem::take(&mut self.out))
    }

    /// The next event, or `None`.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_millis() as u64
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = if self.seq >= 0x7FFF_FFFF {
            1
        } else {
            self.seq + 1
        };
        self.seq
    }

    fn push(&mut self, status: u32, seq: u32, pdu: Pdu) -> Result<()> {
        pdu::encode(&Frame { status, seq, pdu }, &mut self.out)
    }

    fn fill_window(&mut self) -> Result<()> {
        if !self.bound || self.throttled_until.is_some() {
            return Ok(());
        }
        while self.outstanding.len() < self.config.window.max(1) {
            let Some(q) = self.queue.pop_front() else {
                break;
            };
            if !self.remaining.contains_key(&q.id) {
                continue; // refused meanwhile
            }
            let seq = self.next_seq();
            // The PDU is only encoded, so the part is not lost if that fails.
            pdu::encode(
                &Frame {
                    status: 0,
                    seq,
                    pdu: Pdu::SubmitSm(Box::new(q.sm.clone())),
                },
                &mut self.out,
            )?;
            self.outstanding.insert(seq, q);
        }
        Ok(())
    }

    fn handle_frame(&mut self, frame: Frame, now: Instant) -> Result<()> {
        match frame.pdu {
            Pdu::BindTransceiverResp { .. } if !self.bound => {
                if frame.status != status::OK {
                    return Err(Error::Smpp(format!(
                        "bind refused, status {:#x}",
                        frame.status
                    )));
                }
                self.bound = true;
                self.events.push_back(Event::Bound);
            }
            Pdu::SubmitSmResp { .. } | Pdu::GenericNack => {
                self.submit_resp(frame.seq, frame.status, now)
            }
            Pdu::DeliverSm(sm) => self.deliver_sm(frame.seq, *sm, now)?,
            Pdu::EnquireLink => self.push(status::OK, frame.seq, Pdu::EnquireLinkResp)?,
            Pdu::EnquireLinkResp => self.enquire_sent = None,
            Pdu::Unbind => {
                self.push(status::OK, frame.seq, Pdu::UnbindResp)?;
                return Err(Error::Smpp("unbound by the centre".into()));
            }
            Pdu::UnbindResp | Pdu::DeliverSmResp | Pdu::BindTransceiverResp { .. } => {}
            Pdu::BindTransceiver { .. } | Pdu::SubmitSm(_) | Pdu::Other { .. } => {
                self.push(status::INVALID_CMD, frame.seq, Pdu::GenericNack)?;
            }
        }
        Ok(())
    }

    fn submit_resp(&mut self, seq: u32, st: u32, now: Instant) {
        let Some(q) = self.outstanding.remove(&seq) else {
            return;
        };
        match st {
            status::OK => {
                self.throttle = THROTTLE_MIN;
                if let Some(n) = self.remaining.get_mut(&q.id) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.remaining.remove(&q.id);
                        self.events.push_back(Event::Sent { id: q.id });
                    }
                }
            }
            status::THROTTLED | status::MSGQFUL => {
                self.queue.push_front(q);
                self.throttled_until = Some(now + self.throttle);
                self.throttle = (self.throttle * 2).min(THROTTLE_MAX);
            }
            other => {
                if self.remaining.remove(&q.id).is_some() {
                    self.events.push_back(Event::Refused {
                        id: q.id,
                        status: other,
                    });
                }
            }
        }
    }

    fn deliver_sm(&mut self, seq: u32, sm: Sm, now: Instant) -> Result<()> {
        let payload: &[u8] = if sm.short_message.is_empty() {
            sm.tlvs
                .iter()
                .find(|(t, _)| *t == pdu::TLV_MESSAGE_PAYLOAD)
                .map_or(&[], |(_, v)| v.as_slice())
        } else {
            &sm.short_message
        };
        let (source, dest) = (sm.source.to_text(), sm.dest.to_text());
        if sm.esm_class & 0x3C != 0 {
            // A delivery receipt or other centre notification: answer, report, never forward.
            let text = String::from_utf8_lossy(payload).into_owned();
            self.events.push_back(Event::Receipt { source, text });
            return self.push(status::OK, seq, Pdu::DeliverSmResp);
        }
        let (concat, body) = if sm.esm_class & pdu::ESM_UDHI != 0 {
            match text::parse_udh(payload) {
                Some(x) => x,
                None => return self.push(status::SYSERR, seq, Pdu::DeliverSmResp),
            }
        } else {
            (None, payload)
        };
        let body = text::decode(sm.data_coding, body);
        match concat {
            Some((reference, total, part)) if total > 1 => {
                let now = self.ms(now);
                let done = self
                    .reassembly
                    .add(&source, &dest, reference, total, part, body, seq, now);
                if let Some(a) = done {
                    self.events.push_back(Event::Text {
                        source: a.source,
                        dest: a.dest,
                        reference: a.reference,
                        text: a.text,
                        complete: true,
                        seqs: a.tags,
                    });
                }
            }
            _ => self.events.push_back(Event::Text {
                source,
                dest,
                reference: 0,
                text: body,
                complete: true,
                seqs: vec![seq],
            }),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(window: usize) -> SessionConfig {
        SessionConfig {
            system_id: "cig".into(),
            password: Secret::new("pw"),
            window,
            enquire_every: Duration::from_secs(30),
            reassembly_timeout: Duration::from_secs(60),
        }
    }

    fn frames(mut bytes: &[u8]) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some((f, n)) = pdu::decode(bytes).unwrap() {
            out.push(f);
            bytes = &bytes[n..];
        }
        assert!(bytes.is_empty());
        out
    }

    fn wire(status: u32, seq: u32, pdu: Pdu) -> Vec<u8> {
        let mut out = Vec::new();
        pdu::encode(&Frame { status, seq, pdu }, &mut out).unwrap();
        out
    }

    fn bound(window: usize, t0: Instant) -> Session {
        let mut s = Session::new(config(window), t0).unwrap();
        let bind = frames(&s.poll_transmit().unwrap());
        assert!(matches!(bind[0].pdu, Pdu::BindTransceiver { .. }));
        let resp = wire(
            0,
            bind[0].seq,
            Pdu::BindTransceiverResp {
                system_id: "smsc".into(),
            },
        );
        s.handle_input(&resp, t0).unwrap();
        assert_eq!(s.poll_event(), Some(Event::Bound));
        s
    }

    fn single(text: &str) -> Vec<Part> {
        text::split(text, 0).unwrap()
    }

    #[test]
    fn window_limits_outstanding_submits() {
        let t0 = Instant::now();
        let mut s = bound(10, t0);
        let a = Address::from_uri_text("+4670");
        for id in 0..25 {
            s.queue(id, &a, &a, single("hi"));
        }
        let sent = frames(&s.poll_transmit().unwrap());
        assert_eq!(sent.len(), 10);
        assert!(s.poll_transmit().is_none());
        let resp = wire(
            0,
            sent[0].seq,
            Pdu::SubmitSmResp {
                message_id: "1".into(),
            },
        );
        s.handle_input(&resp, t0).unwrap();
        assert_eq!(s.poll_event(), Some(Event::Sent { id: 0 }));
        assert_eq!(frames(&s.poll_transmit().unwrap()).len(), 1);
        assert_eq!(s.pending_parts(), 24);
    }

    #[test]
    fn throttled_part_waits_then_goes_again() {
        let t0 = Instant::now();
        let mut s = bound(1, t0);
        let a = Address::from_uri_text("+4670");
        s.queue(7, &a, &a, single("x"));
        let sent = frames(&s.poll_transmit().unwrap());
        s.handle_input(
            &wire(
                status::THROTTLED,
                sent[0].seq,
                Pdu::SubmitSmResp {
                    message_id: String::new(),
                },
            ),
            t0,
        )
        .unwrap();
        assert!(s.poll_transmit().is_none());
        assert_eq!(s.poll_timeout(), Some(t0 + THROTTLE_MIN));
        s.handle_timeout(t0 + THROTTLE_MIN).unwrap();
        let again = frames(&s.poll_transmit().unwrap());
        assert_eq!(again[0].pdu, sent[0].pdu);
        s.handle_input(
            &wire(
                0x45,
                again[0].seq,
                Pdu::SubmitSmResp {
                    message_id: String::new(),
                },
            ),
            t0,
        )
        .unwrap();
        assert_eq!(
            s.poll_event(),
            Some(Event::Refused {
                id: 7,
                status: 0x45
            })
        );
    }

    #[test]
    fn enquire_link_after_idle_and_failure_without_answer() {
        let t0 = Instant::now();
        let mut s = bound(1, t0);
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(s.poll_timeout(), Some(t1));
        s.handle_timeout(t1).unwrap();
        let f = frames(&s.poll_transmit().unwrap());
        assert_eq!(f[0].pdu, Pdu::EnquireLink);
        s.handle_input(&wire(0, f[0].seq, Pdu::EnquireLinkResp), t1)
            .unwrap();
        let t2 = t1 + Duration::from_secs(30);
        s.handle_timeout(t2).unwrap();
        assert!(s.poll_transmit().is_some());
        assert!(s.handle_timeout(t2 + Duration::from_secs(30)).is_err());
    }

    #[test]
    fn receipts_are_answered_texts_wait_and_parts_time_out() {
        let t0 = Instant::now();
        let mut s = bound(1, t0);
        let receipt = Sm {
            source: Address::from_uri_text("+4670"),
            esm_class: pdu::ESM_RECEIPT,
            short_message: b"id:1 stat:DELIVRD".to_vec(),
            ..Sm::default()
        };
        s.handle_input(&wire(0, 100, Pdu::DeliverSm(Box::new(receipt))), t0)
            .unwrap();
        assert!(
            matches!(s.poll_event(), Some(Event::Receipt { text, .. }) if text == "id:1 stat:DELIVRD")
        );
        assert_eq!(frames(&s.poll_transmit().unwrap())[0].seq, 100);
        let mut part = Sm {
            source: Address::from_uri_text("+4670"),
            dest: Address::from_uri_text("+8888"),
            esm_class: pdu::ESM_UDHI,
            short_message: [&[5, 0, 3, 9, 2, 1][..], &text::gsm_encode("one").unwrap()].concat(),
            ..Sm::default()
        };
        s.handle_input(&wire(0, 101, Pdu::DeliverSm(Box::new(part.clone()))), t0)
            .unwrap();
        part.short_message[5] = 3; // a part that does not exist: ignored, still answered later
        s.handle_input(&wire(0, 102, Pdu::DeliverSm(Box::new(part))), t0)
            .unwrap();
        assert!(s.poll_event().is_none());
        assert!(s.poll_transmit().is_none());
        let due = t0 + Duration::from_secs(60);
        assert!(s.poll_timeout().unwrap() <= due);
        s.handle_timeout(due + Duration::from_millis(1)).unwrap();
        match s.poll_event() {
            Some(Event::Text {
                text,
                complete,
                seqs,
                source,
                ..
            }) => {
                assert_eq!(text, "one[part 2 missing]");
                assert!(!complete);
                assert_eq!(seqs, [101, 102]);
                assert_eq!(source, "+4670");
            }
            other => panic!("{other:?}"),
        }
        s.answer(&[101, 102], status::OK).unwrap();
        // (60 s idle also sent an enquire_link.)
        let resps: Vec<u32> = frames(&s.poll_transmit().unwrap())
            .iter()
            .filter(|f| f.pdu == Pdu::DeliverSmResp)
            .map(|f| f.seq)
            .collect();
        assert_eq!(resps, [101, 102]);
    }

    #[test]
    fn refused_bind_and_garbage_end_the_session() {
        let t0 = Instant::now();
        let mut s = Session::new(config(1), t0).unwrap();
        let bind = frames(&s.poll_transmit().unwrap());
        let resp = wire(
            0x0D,
            bind[0].seq,
            Pdu::BindTransceiverResp {
                system_id: String::new(),
            },
        );
        assert!(s.handle_input(&resp, t0).is_err());
        let mut s = Session::new(config(1), t0).unwrap();
        assert!(
            s.handle_input(&[0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], t0)
                .is_err()
        );
        let s = Session::new(config(1), t0).unwrap();
        assert_eq!(s.poll_timeout(), Some(t0 + BIND_TIMEOUT));
    }
}
