//! The switch core (docs/umsg.md §3–§6): one sans-IO state for all connections — challenge and
//! registration, keepalive answers, call routing and relaying, message forwarding with a
//! bounded store for offline recipients, and acknowledgements back to the sender.

use std::collections::{HashMap, VecDeque};

use cig_mikey_sakke::eccsi::Kpak;
use rand_core::CryptoRngCore;

use crate::call::CallRelay;
use crate::frame::{Frame, FrameType, tag};
use crate::message::AckStatus;
use crate::register::{ConnId, RefuseReason, Registrar, Transmit, routing_identity};

/// Bounds of the offline message store.
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

/// The switch core.
#[derive(Debug)]
pub struct SwitchCore {
    registrar: Registrar,
    relay: CallRelay,
    store: HashMap<String, VecDeque<Frame>>,
    stored: usize,
    limits: StoreLimits,
    /// Message id → sender identity, for routing MSG_ACKs (bounded by `limits.total`).
    senders: HashMap<[u8; 16], String>,
    sender_order: VecDeque<[u8; 16]>,
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
            senders: HashMap::new(),
            sender_order: VecDeque::new(),
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

    /// Messages held for offline recipients.
    pub fn stored(&self) -> usize {
        self.stored
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
                    for m in self.store.remove(&id).unwrap_or_default() {
                        self.stored -= 1;
                        out.push(send(conn, m));
                    }
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
            FrameType::Msg => self.message(conn, f),
            FrameType::MsgAck => self.ack(f),
            // Switch-to-client frames sent by a client: ignored.
            _ => Vec::new(),
        }
    }

    fn message(&mut self, conn: ConnId, f: &Frame) -> Vec<Transmit> {
        let (Some(id), Some(to)) = (
            f.get(tag::MESSAGE_ID)
                .and_then(|v| <[u8; 16]>::try_from(v).ok()),
            f.get(tag::TO).and_then(|v| core::str::from_utf8(v).ok()),
        ) else {
            return Vec::new();
        };
        let me = self.registrar.identity(conn).map(str::to_owned);
        if f.get(tag::FROM).map(<[u8]>::to_vec) != me.clone().map(String::into_bytes) {
            return vec![send(conn, ack_frame(&id, AckStatus::Refused))];
        }
        if let Some(me) = me {
            if self.sender_order.len() >= self.limits.total {
                if let Some(old) = self.sender_order.pop_front() {
                    self.senders.remove(&old);
                }
            }
            self.senders.insert(id, me);
            self.sender_order.push_back(id);
        }
        if let Some(dest) = self.registrar.route(to) {
            return vec![send(dest, f.clone())];
        }
        let queue = self
            .store
            .entry(routing_identity(to).to_owned())
            .or_default();
        if queue.len() >= self.limits.per_identity || self.stored >= self.limits.total {
            return vec![send(conn, ack_frame(&id, AckStatus::Refused))];
        }
        queue.push_back(f.clone());
        self.stored += 1;
        vec![send(conn, ack_frame(&id, AckStatus::Stored))]
    }

    fn ack(&mut self, f: &Frame) -> Vec<Transmit> {
        let Some(id) = f
            .get(tag::MESSAGE_ID)
            .and_then(|v| <[u8; 16]>::try_from(v).ok())
        else {
            return Vec::new();
        };
        let Some(sender) = self.senders.get(&id) else {
            return Vec::new();
        };
        match self.registrar.route(sender) {
            Some(dest) => vec![send(dest, f.clone())],
            None => Vec::new(),
        }
    }

    /// `conn` closed: registration dropped, its calls hung up towards their other legs.
    pub fn disconnect(&mut self, conn: ConnId) -> Vec<Transmit> {
        self.registrar.disconnect(conn);
        self.relay.disconnect(conn)
    }
}

fn ack_frame(id: &[u8; 16], s: AckStatus) -> Frame {
    Frame::new(FrameType::MsgAck)
        .with(tag::MESSAGE_ID, *id)
        .with(tag::ACK_STATUS, [s as u8])
}
