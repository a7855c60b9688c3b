//! Server transactions (RFC 3261 §17.2, RFC 6026 §7.1).

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::{Outbox, Retransmit, Timers, Transmit, Transport};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Request received, no response sent yet (non-INVITE "Trying"; INVITE goes straight to
    /// Proceeding with its 100).
    Trying,
    Proceeding,
    /// INVITE answered with a 2xx: retransmitted INVITEs are absorbed (timer L).
    Accepted,
    Completed,
    /// INVITE: the ACK for a non-2xx arrived (timer I).
    Confirmed,
    Terminated,
}

/// One server transaction.
#[derive(Debug)]
pub(crate) struct ServerTx {
    invite: bool,
    pub(crate) source: SocketAddr,
    pub(crate) transport: Transport,
    state: State,
    last: Option<Bytes>,
    retransmit: Option<Retransmit>,
    deadline: Option<Instant>,
}

impl ServerTx {
    /// A transaction for a request just received from `source` (the address responses go to).
    pub(crate) fn new(invite: bool, source: SocketAddr, transport: Transport) -> ServerTx {
        ServerTx {
            invite,
            source,
            transport,
            state: State::Trying,
            last: None,
            retransmit: None,
            deadline: None,
        }
    }

    fn send(&self, payload: Bytes, out: &mut Outbox) {
        out.push_back(Transmit {
            transport: self.transport,
            destination: self.source,
            payload,
        });
    }

    /// The request arrived again: resend the last response, if any.
    pub(crate) fn on_retransmission(&self, out: &mut Outbox) {
        if matches!(self.state, State::Proceeding | State::Completed)
            && let Some(last) = &self.last
        {
            self.send(last.clone(), out);
        }
    }

    /// Sends a response with status `status` (serialized as `wire`). Responses after a final
    /// one are dropped (a 2xx retransmission of the TU goes straight to the transport).
    pub(crate) fn respond(
        &mut self,
        status: u16,
        wire: Bytes,
        timers: &Timers,
        now: Instant,
        out: &mut Outbox,
    ) {
        if !matches!(self.state, State::Trying | State::Proceeding) {
            return;
        }
        self.send(wire.clone(), out);
        self.last = Some(wire);
        if status < 200 {
            self.state = State::Proceeding;
        } else if self.invite && status < 300 {
            self.state = State::Accepted;
            self.deadline = Some(now + timers.timeout());
        } else if self.invite {
            self.state = State::Completed;
            self.deadline = Some(now + timers.timeout());
            if !self.transport.is_reliable() {
                self.retransmit = Some(Retransmit {
                    at: now + timers.t1,
                    interval: timers.t1,
                });
            }
        } else {
            self.state = State::Completed;
            let j = if self.transport.is_reliable() {
                std::time::Duration::ZERO
            } else {
                timers.timeout()
            };
            self.deadline = Some(now + j);
        }
    }

    /// An ACK matched this INVITE transaction. Returns true when it acknowledged a non-2xx
    /// response (absorbed here); false when it belongs to the TU (ACK for a 2xx).
    pub(crate) fn on_ack(&mut self, timers: &Timers, now: Instant) -> bool {
        match self.state {
            State::Completed => {
                self.state = State::Confirmed;
                self.retransmit = None;
                self.deadline = Some(now + timers.t4_or_zero(self.transport));
                true
            }
            State::Confirmed => true,
            _ => false,
        }
    }

    /// Runs the timers that are due; true when timer H fired (no ACK for a non-2xx final).
    pub(crate) fn on_timeout(&mut self, timers: &Timers, now: Instant, out: &mut Outbox) -> bool {
        if let Some(r) = self.retransmit
            && r.at <= now
        {
            if let Some(last) = &self.last {
                self.send(last.clone(), out);
            }
            let interval = (r.interval * 2).min(timers.t2);
            self.retransmit = Some(Retransmit {
                at: now + interval,
                interval,
            });
        }
        match self.deadline {
            Some(d) if d <= now => {
                let no_ack = self.invite && self.state == State::Completed;
                self.state = State::Terminated;
                self.retransmit = None;
                self.deadline = None;
                no_ack
            }
            _ => false,
        }
    }

    /// The next instant a timer fires.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        match (self.retransmit.map(|r| r.at), self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the transaction is over and can be dropped.
    pub(crate) fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    /// Whether no final response has been sent yet.
    pub(crate) fn is_pending(&self) -> bool {
        matches!(self.state, State::Trying | State::Proceeding)
    }
}
