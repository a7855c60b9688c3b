//! RFC 3261 §17 transactions, sans-IO: client and server, INVITE and non-INVITE, with the RFC 6026
//! "Accepted" states. Timers A–K (and L/M) run on the caller's clock: every input carries `now`,
//! every transaction reports its next deadline, and datagrams to send are pushed to an outbox.
//!
//! Over UDP requests and final responses are retransmitted (timers A, E, G); over TCP only the
//! timeouts run and the wait states (D, I, J, K) end at once.

mod client;
mod server;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

pub(crate) use client::ClientTx;
pub(crate) use server::ServerTx;

/// The transaction timer base values (RFC 3261 §17.1.1.1 and Table 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate, 500 ms by default.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Maximum duration a message stays in the network, 5 s.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Timers {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64·T1: timers B, F, H, J, L, M.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: at least 32 s over UDP, 0 over TCP.
    fn d(&self, transport: Transport) -> Duration {
        if transport.is_reliable() {
            Duration::ZERO
        } else {
            self.timeout().max(Duration::from_secs(32))
        }
    }

    /// Timers I and K: T4 over UDP, 0 over TCP.
    fn t4_or_zero(&self, transport: Transport) -> Duration {
        if transport.is_reliable() {
            Duration::ZERO
        } else {
            self.t4
        }
    }
}

/// The transport protocol of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: unreliable, one message per datagram, retransmissions on.
    Udp,
    /// TCP: reliable stream.
    Tcp,
}

impl Transport {
    /// Whether the transport is reliable (no retransmissions).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }

    /// The Via transport token.
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// Something to send: the payload of one datagram (UDP) or one message on the connection to
/// `destination` (TCP, opened when there is none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Transport.
    pub transport: Transport,
    /// Where to.
    pub destination: SocketAddr,
    /// The serialized message.
    pub payload: Bytes,
}

/// Where transactions put what they send.
pub(crate) type Outbox = VecDeque<Transmit>;

/// A retransmission timer: when it fires next and its current interval.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retransmit {
    pub(crate) at: std::time::Instant,
    pub(crate) interval: Duration,
}

#[cfg(test)]
mod tests;
