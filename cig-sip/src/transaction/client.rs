//! Client transactions (RFC 3261 §17.1, RFC 6026 §7.2).

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::{Outbox, Retransmit, Timers, Transmit, Transport};
use crate::message::{CSeq, HeaderName, Method, Request, Response};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// INVITE sent, nothing heard (non-INVITE: "Trying").
    Calling,
    Proceeding,
    /// INVITE got a 2xx; later 2xx are passed up for the TU to ACK (timer M).
    Accepted,
    Completed,
    Terminated,
}

/// One client transaction.
#[derive(Debug)]
pub(crate) struct ClientTx {
    pub(crate) request: Request,
    wire: Bytes,
    pub(crate) destination: SocketAddr,
    pub(crate) transport: Transport,
    state: State,
    retransmit: Option<Retransmit>,
    deadline: Option<Instant>,
    ack: Option<Bytes>,
    /// INVITE: the ACKs the TU sent for 2xx responses, by To tag (one per dialog; several when
    /// the request forked), resent when that 2xx is retransmitted while timer M runs.
    pub(crate) acks: Vec<(String, Transmit)>,
}

/// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same Request-URI, top Via,
/// From, Call-ID and Route as the INVITE, the response's To, CSeq method ACK.
fn ack_for(req: &Request, resp: &Response) -> Request {
    let mut ack = Request::new(Method::Ack, req.uri.clone());
    if let Some(v) = req.headers.get(&HeaderName::Via) {
        // The first Via line; a line with several values keeps only the first one.
        let top = req
            .headers
            .top_via()
            .map(|v| v.to_string())
            .unwrap_or_else(|_| v.to_string());
        ack.headers.push(HeaderName::Via, top);
    }
    ack.headers.push(HeaderName::MaxForwards, "70");
    ack.headers.copy_from(&req.headers, &HeaderName::From);
    ack.headers.copy_from(&resp.headers, &HeaderName::To);
    ack.headers.copy_from(&req.headers, &HeaderName::CallId);
    let seq = req.headers.cseq().map(|c| c.seq).unwrap_or(1);
    ack.headers.push(
        HeaderName::CSeq,
        CSeq {
            seq,
            method: Method::Ack,
        }
        .to_string(),
    );
    ack.headers.copy_from(&req.headers, &HeaderName::Route);
    ack
}

impl ClientTx {
    /// Sends `request` and starts the transaction.
    pub(crate) fn start(
        request: Request,
        destination: SocketAddr,
        transport: Transport,
        timers: &Timers,
        now: Instant,
        out: &mut Outbox,
    ) -> ClientTx {
        let wire = request.to_bytes();
        out.push_back(Transmit {
            transport,
            destination,
            payload: wire.clone(),
        });
        let retransmit = (!transport.is_reliable()).then_some(Retransmit {
            at: now + timers.t1,
            interval: timers.t1,
        });
        ClientTx {
            request,
            wire,
            destination,
            transport,
            state: State::Calling,
            retransmit,
            deadline: Some(now + timers.timeout()),
            ack: None,
            acks: Vec::new(),
        }
    }

    fn is_invite(&self) -> bool {
        self.request.method == Method::Invite
    }

    fn send(&self, payload: Bytes, out: &mut Outbox) {
        out.push_back(Transmit {
            transport: self.transport,
            destination: self.destination,
            payload,
        });
    }

    /// A response matched to this transaction; returns it when the user must see it.
    pub(crate) fn on_response(
        &mut self,
        resp: Response,
        timers: &Timers,
        now: Instant,
        out: &mut Outbox,
    ) -> Option<Response> {
        let active = matches!(self.state, State::Calling | State::Proceeding);
        match resp.status {
            100..=199 if active => {
                self.state = State::Proceeding;
                if self.is_invite() {
                    self.retransmit = None;
                    self.deadline = None;
                }
                Some(resp)
            }
            200..=299 if self.is_invite() && matches!(self.state, State::Accepted) => Some(resp),
            200..=299 if self.is_invite() && active => {
                self.state = State::Accepted;
                self.retransmit = None;
                self.deadline = Some(now + timers.timeout());
                Some(resp)
            }
            200..=699 if self.is_invite() && active => {
                let ack = ack_for(&self.request, &resp).to_bytes();
                self.send(ack.clone(), out);
                self.ack = Some(ack);
                self.state = State::Completed;
                self.retransmit = None;
                self.deadline = Some(now + timers.d(self.transport));
                Some(resp)
            }
            300..=699 if self.is_invite() && self.state == State::Completed => {
                if let Some(ack) = &self.ack {
                    self.send(ack.clone(), out);
                }
                None
            }
            200..=699 if !self.is_invite() && active => {
                self.state = State::Completed;
                self.retransmit = None;
                self.deadline = Some(now + timers.t4_or_zero(self.transport));
                Some(resp)
            }
            _ => None,
        }
    }

    /// Runs the timers that are due; true when timer B or F fired (no final response).
    pub(crate) fn on_timeout(&mut self, timers: &Timers, now: Instant, out: &mut Outbox) -> bool {
        if let Some(r) = self.retransmit
            && r.at <= now
        {
            self.send(self.wire.clone(), out);
            let interval = if self.is_invite() {
                r.interval * 2
            } else if self.state == State::Proceeding {
                timers.t2
            } else {
                (r.interval * 2).min(timers.t2)
            };
            self.retransmit = Some(Retransmit {
                at: now + interval,
                interval,
            });
        }
        match self.deadline {
            Some(d) if d <= now => {
                let timed_out = matches!(self.state, State::Calling | State::Proceeding);
                self.state = State::Terminated;
                self.retransmit = None;
                self.deadline = None;
                timed_out
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

    /// Whether a provisional response has been received (a CANCEL may be sent, RFC 3261 §9.1).
    pub(crate) fn is_proceeding(&self) -> bool {
        self.state == State::Proceeding
    }
}
