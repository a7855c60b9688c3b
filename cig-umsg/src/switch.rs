//! The switch core (docs/umsg.md §3–§6): one sans-IO state for all connections — challenge and
//! registration, keepalive answers, call routing and relaying, message forwarding with a
//! bounded store, and acknowledgements back to the sender.
//!
//! Every message is held until its recipient acknowledges it end to end (MSG_ACK delivered or
//! refused from the recipient's connection): sent at once when the recipient is registered,
//! re-sent on each new registration of the recipient, and re-sent while it stays registered
//! without acknowledging, after [`RESEND_FIRST`] doubling up to [`RESEND_MAX`]
//! ([`SwitchCore::poll_timeout`], [`SwitchCore::handle_timeout`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use cig_mikey_sakke::eccsi::Kpak;
use rand_core::CryptoRngCore;

use crate::call::CallRelay;
use crate::frame::{Frame, FrameType, tag};
use crate::message::AckStatus;
use crate::register::{ConnId, RefuseReason, Registrar, Transmit, from_is_of, routing_identity};

/// First re-send of an unacknowledged message to a registered recipient, in seconds after
/// the delivery; each further one waits twice as long.
pub const RESEND_FIRST: u64 = 5;
/// Longest wait between re-sends, in seconds.
pub const RESEND_MAX: u64 = 300;

/// Bounds of the message store (messages not yet acknowledged by their recipient).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Messages kept per identity.
    pub per_identity: usize,
    /// Messages kept in total.
    pub total: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            per_identity: 256,
            total: 65_536,
        }
    }
}

/// A message held until its recipient acknowledges it.
#[derive(Debug)]
struct Pending {
    id: [u8; 16],
    frame: Frame,
    /// The sender's identity, where the acknowledgement goes.
    sender: String,
    /// Deliveries so far.
    sent: u32,
    /// Next re-send (Unix seconds) while the recipient is registered.
    resend_at: Option<u64>,
}

fn resend_delay(sent: u32) -> u64 {
    RESEND_FIRST
        .saturating_mul(1 << sent.saturating_sub(1).min(16))
        .min(RESEND_MAX)
}

/// The switch core.
#[derive(Debug)]
pub struct SwitchCore {
    registrar: Registrar,
    relay: CallRelay,
    /// Recipient routing identity → its unacknowledged messages, oldest first.
    store: HashMap<String, VecDeque<Pending>>,
    stored: usize,
    limits: StoreLimits,
    /// Re-send times (Unix seconds, recipient, message id); entries whose message was
    /// acknowledged or re-timed meanwhile are skipped when they come up.
    timers: BinaryHeap<Reverse<(u64, String, [u8; 16])>>,
}

fn send(conn: ConnId, frame: Frame) -> Transmit {
    Transmit {
        conn,
        frame,
        close: false,
    }
}

impl SwitchCore {
    /// A switch verifying registrations with `kpak` and announcing `media_addr`.
    pub fn new(kpak: Kpak, media_addr: String, limits: StoreLimits) -> Self {
        Self {
            registrar: Registrar::new(kpak),
            relay: CallRelay::new(media_addr),
            store: HashMap::new(),
            stored: 0,
            limits,
            timers: BinaryHeap::new(),
        }
    }

    /// The registrar (routing look-ups, identities of connections).
    pub fn registrar(&self) -> &Registrar {
        &self.registrar
    }

    /// The call relay (live call sessions and their legs).
    pub fn relay(&self) -> &CallRelay {
        &self.relay
    }

    /// Messages held until their recipients acknowledge them.
    pub fn stored(&self) -> usize {
        self.stored
    }

    /// When [`Self::handle_timeout`] wants to run next (Unix seconds; it may find nothing to
    /// do).
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Re-sends the messages whose recipients are registered and have not acknowledged them
    /// in time.
    pub fn handle_timeout(&mut self, now_unix: u64) -> Vec<Transmit> {
        let mut out = Vec::new();
        while let Some(Reverse((at, _, _))) = self.timers.peek() {
            if *at > now_unix {
                break;
            }
            let Some(Reverse((at, who, id))) = self.timers.pop() else {
                break;
            };
            let conn = self.registrar.route(&who);
            let Some(p) = self
                .store
                .get_mut(&who)
                .and_then(|q| q.iter_mut().find(|p| p.id == id))
                .filter(|p| p.resend_at == Some(at))
            else {
                continue;
            };
            match conn {
                Some(conn) => {
                    out.push(send(conn, p.frame.clone()));
                    p.sent += 1;
                    let next = now_unix + resend_delay(p.sent);
                    p.resend_at = Some(next);
                    self.timers.push(Reverse((next, who, id)));
                }
                None => p.resend_at = None,
            }
        }
        out
    }

    /// Sends every held message of `who` to `conn` (a new registration), timing re-sends.
    fn deliver_held(&mut self, who: &str, conn: ConnId, now_unix: u64) -> Vec<Transmit> {
        let Some(q) = self.store.get_mut(who) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(q.len());
        for p in q.iter_mut() {
            out.push(send(conn, p.frame.clone()));
            p.sent += 1;
            let next = now_unix + resend_delay(p.sent);
            p.resend_at = Some(next);
            self.timers.push(Reverse((next, who.to_owned(), p.id)));
        }
        out
    }

    /// A frame from `conn` at Unix time `now_unix`; returns what to send (and close).
    pub fn handle(
        &mut self,
        conn: ConnId,
        f: &Frame,
        now_unix: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Vec<Transmit> {
        match f.kind {
            FrameType::Hello => vec![send(conn, self.registrar.hello(conn, now_unix, rng))],
            FrameType::Register => {
                let mut out = self.registrar.register(conn, f, now_unix);
                for t in out.clone().iter().filter(|t| t.close && t.conn != conn) {
                    out.extend(self.relay.disconnect(t.conn));
                }
                if let Some(id) = self.registrar.identity(conn).map(str::to_owned) {
                    out.extend(self.deliver_held(&id, conn, now_unix));
                }
                out
            }
            FrameType::Ping => vec![send(conn, Frame::new(FrameType::Pong))],
            FrameType::Pong => Vec::new(),
            _ if self.registrar.identity(conn).is_none() => vec![Transmit {
                conn,
                frame: Frame::new(FrameType::Refused)
                    .with(tag::REASON, [RefuseReason::NotRegistered as u8]),
                close: true,
            }],
            FrameType::Bang | FrameType::Growl | FrameType::Talk | FrameType::Hangup => {
                self.relay.on_frame(conn, f, &self.registrar)
            }
            FrameType::Msg => self.message(conn, f, now_unix),
            FrameType::MsgAck => self.ack(conn, f),
            // Switch-to-client frames sent by a client: ignored.
            _ => Vec::new(),
        }
    }

    fn message(&mut self, conn: ConnId, f: &Frame, now_unix: u64) -> Vec<Transmit> {
        let (Some(id), Some(to)) = (
            f.get(tag::MESSAGE_ID)
                .and_then(|v| <[u8; 16]>::try_from(v).ok()),
            f.get(tag::TO).and_then(|v| core::str::from_utf8(v).ok()),
        ) else {
            return Vec::new();
        };
        let Some(me) = self.registrar.identity(conn).map(str::to_owned) else {
            return Vec::new();
        };
        let from_ok = f
            .get(tag::FROM)
            .and_then(|v| core::str::from_utf8(v).ok())
            .is_some_and(|from| from_is_of(from, &me));
        if !from_ok {
            return vec![send(conn, ack_frame(&id, AckStatus::Refused))];
        }
        let who = routing_identity(to).to_owned();
        let dest = self.registrar.route(&who);
        let queue = self.store.entry(who.clone()).or_default();
        if queue.iter().any(|p| p.id == id) {
            // The sender re-sent a message still held (its acknowledgement was lost): it is
            // delivered as before, and the sender learns that the switch has it.
            return vec![send(conn, ack_frame(&id, AckStatus::Stored))];
        }
        if queue.len() >= self.limits.per_identity || self.stored >= self.limits.total {
            if queue.is_empty() {
                self.store.remove(&who);
            }
            return vec![send(conn, ack_frame(&id, AckStatus::Refused))];
        }
        let mut p = Pending {
            id,
            frame: f.clone(),
            sender: me,
            sent: 0,
            resend_at: None,
        };
        let out = match dest {
            Some(dest) => {
                p.sent = 1;
                let next = now_unix + resend_delay(1);
                p.resend_at = Some(next);
                self.timers.push(Reverse((next, who, id)));
                send(dest, f.clone())
            }
            None => send(conn, ack_frame(&id, AckStatus::Stored)),
        };
        queue.push_back(p);
        self.stored += 1;
        vec![out]
    }

    /// A MSG_ACK from `conn`: when it is the recipient's acknowledgement of a held message,
    /// the message is dropped from the store and the acknowledgement goes to the sender.
    fn ack(&mut self, conn: ConnId, f: &Frame) -> Vec<Transmit> {
        let (Some(id), Some(me)) = (
            f.get(tag::MESSAGE_ID)
                .and_then(|v| <[u8; 16]>::try_from(v).ok()),
            self.registrar.identity(conn),
        ) else {
            return Vec::new();
        };
        let Some(q) = self.store.get_mut(me) else {
            return Vec::new();
        };
        let Some(i) = q.iter().position(|p| p.id == id) else {
            return Vec::new();
        };
        let sender = q.remove(i).map(|p| p.sender);
        if q.is_empty() {
            let me = me.to_owned();
            self.store.remove(&me);
        }
        self.stored -= 1;
        match sender.and_then(|s| self.registrar.route(&s)) {
            Some(dest) => vec![send(dest, f.clone())],
            None => Vec::new(),
        }
    }

    /// `conn` closed: registration dropped (its held messages wait for the next one), its
    /// calls hung up towards their other legs.
    pub fn disconnect(&mut self, conn: ConnId) -> Vec<Transmit> {
        if let Some(q) = self
            .registrar
            .identity(conn)
            .and_then(|who| self.store.get_mut(who))
        {
            for p in q {
                p.resend_at = None;
            }
        }
        self.registrar.disconnect(conn);
        self.relay.disconnect(conn)
    }
}

fn ack_frame(id: &[u8; 16], s: AckStatus) -> Frame {
    Frame::new(FrameType::MsgAck)
        .with(tag::MESSAGE_ID, *id)
        .with(tag::ACK_STATUS, [s as u8])
}
