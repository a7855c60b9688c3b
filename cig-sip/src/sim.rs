//! A deterministic two-peer network for tests: two [`UserAgent`]s joined by a simulated link
//! with a virtual clock, seeded packet loss, delay and jitter (which reorders datagrams). No
//! sockets, no sleeping: [`Network::step`] jumps the clock to the next delivery or timer.
//! [`Probe`] is one user agent on a virtual clock that a test (or a fuzz target) drives by
//! hand: it plays the peer with hand-written messages (a forking proxy, a challenging PBX).
//!
//! ```
//! use cig_sip::sim::Network;
//! use cig_sip::ua::{UaConfig, UserAgent};
//!
//! let a = UserAgent::new(UaConfig::new("192.0.2.1:5060".parse().unwrap()), 1);
//! let b = UserAgent::new(UaConfig::new("192.0.2.2:5060".parse().unwrap()), 2);
//! let mut net = Network::new(a, b, 7);
//! net.set_loss(0.2);
//! assert!(!net.step()); // nothing to do yet
//! ```

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use std::net::SocketAddr;

use bytes::Bytes;

use crate::transaction::{Transmit, Transport};
use crate::ua::{Event, UserAgent};

/// Two user agents on a lossy link. Peer 0 and peer 1 are addressed by their configured local
/// addresses; datagrams to any other address are dropped.
#[derive(Debug)]
pub struct Network {
    /// The two peers.
    pub peers: [UserAgent; 2],
    /// Events each peer reported, in order.
    pub events: [Vec<Event>; 2],
    start: Instant,
    now: Instant,
    rng: StdRng,
    loss: f64,
    delay: Duration,
    jitter: Duration,
    /// (delivery time, sequence, receiving peer, transmit)
    in_flight: Vec<(Instant, u64, usize, Transmit)>,
    seq: u64,
    /// Datagrams dropped by the simulated loss.
    pub dropped: usize,
    /// Datagrams delivered.
    pub delivered: usize,
}

impl Network {
    /// Joins `a` and `b`; `seed` drives loss and jitter.
    pub fn new(a: UserAgent, b: UserAgent, seed: u64) -> Network {
        let start = Instant::now();
        Network {
            peers: [a, b],
            events: [Vec::new(), Vec::new()],
            start,
            now: start,
            rng: StdRng::seed_from_u64(seed),
            loss: 0.0,
            delay: Duration::from_millis(10),
            jitter: Duration::ZERO,
            in_flight: Vec::new(),
            seq: 0,
            dropped: 0,
            delivered: 0,
        }
    }

    /// Probability in `0.0..1.0` that a datagram is lost.
    pub fn set_loss(&mut self, p: f64) {
        self.loss = p;
    }

    /// One-way delay and a uniformly random extra delay up to `jitter` (jitter larger than the
    /// gap between two datagrams reorders them).
    pub fn set_delay(&mut self, delay: Duration, jitter: Duration) {
        self.delay = delay;
        self.jitter = jitter;
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Moves what the peers want to send onto the link and collects their events.
    fn flush(&mut self) {
        for from in 0..2 {
            while let Some(t) = self.peers[from].poll_transmit() {
                let to = 1 - from;
                if t.destination != self.peers[to].config().local_addr {
                    self.dropped += 1;
                    continue;
                }
                if self.rng.gen_bool(self.loss) {
                    self.dropped += 1;
                    continue;
                }
                let jitter = if self.jitter.is_zero() {
                    Duration::ZERO
                } else {
                    self.jitter.mul_f64(self.rng.r#gen::<f64>())
                };
                self.seq += 1;
                self.in_flight
                    .push((self.now + self.delay + jitter, self.seq, to, t));
            }
            while let Some(e) = self.peers[from].poll_event() {
                self.events[from].push(e);
            }
        }
    }

    /// Advances to the next delivery or timer and processes it. Returns false when nothing is
    /// in flight and no timer is pending.
    pub fn step(&mut self) -> bool {
        self.flush();
        let next_delivery = self.in_flight.iter().map(|(at, seq, ..)| (*at, *seq)).min();
        let next_timer = self.peers.iter().filter_map(UserAgent::poll_timeout).min();
        match (next_delivery, next_timer) {
            (Some((at, seq)), None) | (Some((at, seq)), Some(_))
                if next_timer.is_none_or(|t| at <= t) =>
            {
                self.now = self.now.max(at);
                let Some(k) = self
                    .in_flight
                    .iter()
                    .position(|(a, s, ..)| (*a, *s) == (at, seq))
                else {
                    return false;
                };
                let (_, _, to, t) = self.in_flight.swap_remove(k);
                let from = self.peers[1 - to].config().local_addr;
                self.delivered += 1;
                self.peers[to].handle_datagram(t.payload, from, t.transport, self.now);
            }
            (_, Some(t)) => {
                self.now = self.now.max(t);
                for p in &mut self.peers {
                    p.handle_timeout(self.now);
                }
            }
            _ => return false,
        }
        self.flush();
        true
    }

    /// Steps until `done` holds for the events seen so far, or `limit` of virtual time passed.
    /// Returns whether `done` held.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&[Vec<Event>; 2]) -> bool,
    ) -> bool {
        let end = self.now + limit;
        loop {
            self.flush();
            if done(&self.events) {
                return true;
            }
            if self.now > end || !self.step() {
                return done(&self.events);
            }
        }
    }

    /// Lets `f` issue commands to peer `k` at the current virtual time, then flushes.
    pub fn with_peer<R>(&mut self, k: usize, f: impl FnOnce(&mut UserAgent, Instant) -> R) -> R {
        let now = self.now;
        let r = f(&mut self.peers[k], now);
        self.flush();
        r
    }
}

/// One user agent on a virtual clock, driven by hand: deliver messages as any peer, take what
/// it sends, move the clock (timers run in order). Events are collected in [`Probe::events`].
///
/// ```
/// use std::time::Duration;
/// use cig_sip::sim::Probe;
/// use cig_sip::transaction::Transport;
/// use cig_sip::ua::{UaConfig, UserAgent};
///
/// let mut p = Probe::new(UserAgent::new(UaConfig::new("192.0.2.1:5060".parse().unwrap()), 1));
/// p.receive(
///     "OPTIONS sip:gw@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKx\r\n\
/// From: <sip:lb@192.0.2.9>;tag=1\r\nTo: <sip:gw@192.0.2.1>\r\nCall-ID: c\r\n\
/// CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
///     "192.0.2.9:5060".parse().unwrap(),
///     Transport::Udp,
/// );
/// assert!(p.sent()[0].payload.starts_with(b"SIP/2.0 200 OK"));
/// p.advance(Duration::from_secs(60));
/// assert!(p.ua.poll_timeout().is_none());
/// ```
#[derive(Debug)]
pub struct Probe {
    /// The user agent under test.
    pub ua: UserAgent,
    /// Events it reported, in order.
    pub events: Vec<Event>,
    start: Instant,
    now: Instant,
}

impl Probe {
    /// Starts the virtual clock for `ua`.
    pub fn new(ua: UserAgent) -> Probe {
        let start = Instant::now();
        Probe {
            ua,
            events: Vec::new(),
            start,
            now: start,
        }
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn collect(&mut self) {
        while let Some(e) = self.ua.poll_event() {
            self.events.push(e);
        }
    }

    /// Delivers one datagram / framed message from `source` at the current time.
    pub fn receive(&mut self, data: impl Into<Bytes>, source: SocketAddr, transport: Transport) {
        self.ua
            .handle_datagram(data.into(), source, transport, self.now);
        self.collect();
    }

    /// Everything the user agent sent since the last call.
    pub fn sent(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.ua.poll_transmit()).collect()
    }

    /// Moves the clock forward by `d`, running every timer due on the way at its own time.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(at) = self.ua.poll_timeout().filter(|t| *t <= end) {
            self.now = self.now.max(at);
            self.ua.handle_timeout(self.now);
        }
        self.now = end;
        self.collect();
    }

    /// Lets `f` issue commands at the current virtual time.
    pub fn with<R>(&mut self, f: impl FnOnce(&mut UserAgent, Instant) -> R) -> R {
        let r = f(&mut self.ua, self.now);
        self.collect();
        r
    }
}
