//! A crypto engine: one worker thread that owns the sockets of its sessions and runs their
//! packet path synchronously on its own epoll (mio) loop.
//!
//! The control thread hands sessions over through a channel and wakes the engine with a mio
//! [`Waker`]; replies and events go back the same way. Per packet the engine does one
//! `recv_from`, the session's [`PacketPath`], one `send_to`, and updates plain counters: no
//! allocation, no lock, no clock read beyond one `Instant::now()` per wake-up.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::log::Log;
use crate::path::{PacketPath, Verdict, leg_index};
use cig_media::control::{ErrorCode, LegId, LegStats, LegUpdate, Reply, SessionStats};

/// A control connection, as the control thread numbers them.
pub type ConnId = usize;

/// The token of an engine's waker.
pub const WAKER: Token = Token(usize::MAX);

/// How often an engine checks media timeouts.
const TICK: Duration = Duration::from_millis(100);

/// The engine's packet buffer.
const MAX_DATAGRAM: usize = 2048;
/// Room kept after a received datagram for what the path adds (SRTP tag, SRTCP index).
const SPARE: usize = 64;
/// Datagrams read from one socket before the engine turns to the others: a flood on one port
/// cannot starve the other calls. A socket left with data is revisited after the next poll.
const BUDGET: usize = 64;

/// A session handed to an engine: its four bound sockets (A RTP, A RTCP, B RTP, B RTCP) and its
/// packet path.
#[derive(Debug)]
pub struct NewSession<P> {
    /// The controller's name for it.
    pub name: Arc<str>,
    /// The connection that created it (events go there).
    pub owner: ConnId,
    /// A RTP, A RTCP, B RTP, B RTCP.
    pub sockets: [std::net::UdpSocket; 4],
    /// The RTP ports of legs A and B (returned to the allocator when the session ends).
    pub rtp_ports: [u16; 2],
    /// The packet path.
    pub path: P,
}

/// Control thread → engine.
#[derive(Debug)]
pub enum ToEngine<P> {
    /// Take over a session.
    Add(Box<NewSession<P>>),
    /// Change a session; reply to `(conn, id)`.
    Update {
        /// The session.
        name: Arc<str>,
        /// Reply to this connection...
        conn: ConnId,
        /// ...with this request id.
        id: u64,
        /// Leg A and leg B changes.
        legs: Box<[Option<LegUpdate>; 2]>,
    },
    /// End a session; reply to `reply` if given.
    Remove {
        /// The session.
        name: Arc<str>,
        /// Who asked (none when the relay ends it on its own).
        reply: Option<(ConnId, u64)>,
    },
    /// Counters of one session or of all of them.
    Stats {
        /// The session, or all.
        name: Option<Arc<str>>,
        /// Reply to this connection...
        conn: ConnId,
        /// ...with this request id.
        id: u64,
    },
    /// Close every socket and stop.
    Shutdown,
}

/// Engine → control thread.
#[derive(Debug)]
pub enum FromEngine {
    /// Send `reply` on `conn`.
    Reply {
        /// The connection.
        conn: ConnId,
        /// The message.
        reply: Reply,
    },
    /// A session is gone and its sockets closed.
    Removed {
        /// The session.
        name: Arc<str>,
        /// Ports to release.
        rtp_ports: [u16; 2],
        /// Final counters.
        stats: SessionStats,
        /// Who asked for the removal.
        reply: Option<(ConnId, u64)>,
    },
    /// Part of an all-sessions stats answer (one per engine).
    StatsPart {
        /// The connection.
        conn: ConnId,
        /// The request id.
        id: u64,
        /// This engine's sessions.
        sessions: Vec<SessionStats>,
    },
}

struct Slot<P> {
    name: Arc<str>,
    owner: ConnId,
    sockets: [UdpSocket; 4],
    rtp_ports: [u16; 2],
    path: P,
    stats: [LegStats; 2],
}

/// One engine's state; [`Engine::run`] is its thread's body.
pub struct Engine<P> {
    index: usize,
    poll: Poll,
    commands: Receiver<ToEngine<P>>,
    to_control: Sender<FromEngine>,
    control_waker: Arc<Waker>,
    log: Log,
    slots: Vec<Option<Slot<P>>>,
    free: Vec<usize>,
    by_name: HashMap<Arc<str>, usize>,
    /// Sockets (tokens) that used up their budget with data left.
    again: Vec<usize>,
    /// Scratch for `again` while it is being worked through.
    again_now: Vec<usize>,
}

impl<P> std::fmt::Debug for Engine<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("index", &self.index)
            .field("sessions", &self.by_name.len())
            .finish()
    }
}

/// Marks an engine as gone when its thread ends, also by a panic.
#[derive(Debug)]
pub struct AliveGuard(pub Arc<AtomicBool>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl<P: PacketPath> Engine<P> {
    /// An engine around `poll` (whose registry already holds the [`WAKER`]).
    pub fn new(
        index: usize,
        poll: Poll,
        commands: Receiver<ToEngine<P>>,
        to_control: Sender<FromEngine>,
        control_waker: Arc<Waker>,
        log: Log,
    ) -> Engine<P> {
        Engine {
            index,
            poll,
            commands,
            to_control,
            control_waker,
            log,
            slots: Vec::new(),
            free: Vec::new(),
            by_name: HashMap::new(),
            again: Vec::with_capacity(1024),
            again_now: Vec::with_capacity(1024),
        }
    }

    fn send(&self, msg: FromEngine) {
        // The control thread outlives the engines; if it is gone there is nobody to tell.
        if self.to_control.send(msg).is_ok() {
            let _ = self.control_waker.wake();
        }
    }

    /// Runs until [`ToEngine::Shutdown`] or until the control thread disappears.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut next_tick = Instant::now() + TICK;
        self.log.info(
            "Engine",
            format_args!("crypto engine {} started", self.index),
        );
        loop {
            let wait = if self.again.is_empty() {
                next_tick.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                self.log.warn(
                    "Engine",
                    format_args!("crypto engine {} poll failed: {e}", self.index),
                );
                break;
            }
            let now = Instant::now();
            std::mem::swap(&mut self.again, &mut self.again_now);
            let mut again_now = std::mem::take(&mut self.again_now);
            for token in again_now.drain(..) {
                if !self.on_readable(token, &mut buf, now) {
                    self.again.push(token);
                }
            }
            self.again_now = again_now;
            for ev in events.iter() {
                if ev.token() != WAKER && !self.on_readable(ev.token().0, &mut buf, now) {
                    self.again.push(ev.token().0);
                }
            }
            if !self.drain_commands() {
                break;
            }
            if now >= next_tick {
                self.check_timeouts(now);
                next_tick = now + TICK;
            }
        }
        self.log.info(
            "Engine",
            format_args!(
                "crypto engine {} stopped with {} sessions",
                self.index,
                self.by_name.len()
            ),
        );
    }

    /// The per-packet path: read one socket until it is empty (it is edge-triggered) or its
    /// budget is used, forwarding what the path says. `false` when data may be left.
    fn on_readable(&mut self, token: usize, buf: &mut [u8], now: Instant) -> bool {
        let (slot_index, k) = (token / 4, token % 4);
        let Some(Some(slot)) = self.slots.get_mut(slot_index) else {
            return true;
        };
        let leg = if k < 2 { LegId::A } else { LegId::B };
        let rtcp = k % 2 == 1;
        let li = leg_index(leg);
        for _ in 0..BUDGET {
            let (len, src) = match slot.sockets[k].recv_from(&mut buf[..MAX_DATAGRAM - SPARE]) {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                // EINTR, or a pending ICMP error reported once: the socket stays usable and
                // may hold more datagrams.
                Err(_) => continue,
            };
            let st = &mut slot.stats[li];
            st.packets_in += 1;
            st.bytes_in += len as u64;
            match slot.path.on_packet(leg, rtcp, src, buf, len, now) {
                Verdict::Forward {
                    leg: out,
                    rtcp: out_rtcp,
                    dst,
                    len,
                } => {
                    let oi = leg_index(out);
                    let sock = &slot.sockets[oi * 2 + usize::from(out_rtcp)];
                    match sock.send_to(&buf[..len], dst) {
                        Ok(_) => slot.stats[oi].packets_out += 1,
                        Err(_) => slot.stats[oi].dropped += 1,
                    }
                }
                Verdict::Drop => slot.stats[li].dropped += 1,
            }
        }
        false
    }

    fn check_timeouts(&mut self, now: Instant) {
        let mut fired = Vec::new();
        for slot in self.slots.iter_mut().flatten() {
            while let Some(leg) = slot.path.poll_timeout(now) {
                fired.push((slot.owner, slot.name.clone(), leg));
            }
        }
        for (owner, name, leg) in fired {
            self.log.info(
                "Engine",
                format_args!("session {name}: media timeout on leg {leg:?}"),
            );
            self.send(FromEngine::Reply {
                conn: owner,
                reply: Reply::MediaTimeout {
                    session: name.to_string(),
                    leg,
                },
            });
        }
    }

    /// Handles every queued command; `false` when the engine must stop.
    fn drain_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(ToEngine::Add(s)) => self.add(*s),
                Ok(ToEngine::Update {
                    name,
                    conn,
                    id,
                    legs,
                }) => self.update(&name, conn, id, *legs),
                Ok(ToEngine::Remove { name, reply }) => self.remove(&name, reply),
                Ok(ToEngine::Stats { name, conn, id }) => self.stats(name, conn, id),
                Ok(ToEngine::Shutdown) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    fn add(&mut self, s: NewSession<P>) {
        let index = self.free.pop().unwrap_or(self.slots.len());
        let mut sockets = s.sockets.map(UdpSocket::from_std);
        let mut registered = Ok(());
        for (k, sock) in sockets.iter_mut().enumerate() {
            registered = registered.and_then(|()| {
                self.poll
                    .registry()
                    .register(sock, Token(index * 4 + k), Interest::READABLE)
            });
        }
        let mut slot = Slot {
            name: s.name.clone(),
            owner: s.owner,
            sockets,
            rtp_ports: s.rtp_ports,
            path: s.path,
            stats: [LegStats::default(); 2],
        };
        if let Err(e) = registered {
            self.log.warn(
                "Engine",
                format_args!("session {}: cannot register sockets: {e}", s.name),
            );
            for sock in &mut slot.sockets {
                let _ = self.poll.registry().deregister(sock);
            }
            self.free.push(index);
            self.finish(slot, None);
            return;
        }
        if index == self.slots.len() {
            self.slots.push(Some(slot));
        } else {
            self.slots[index] = Some(slot);
        }
        self.by_name.insert(s.name, index);
    }

    fn slot_stats(&self, slot: &Slot<P>) -> SessionStats {
        let mut legs = slot.stats;
        legs[0].peer = slot.path.peer(LegId::A);
        legs[1].peer = slot.path.peer(LegId::B);
        SessionStats {
            session: slot.name.to_string(),
            engine: self.index,
            a: legs[0],
            b: legs[1],
        }
    }

    fn update(&mut self, name: &str, conn: ConnId, id: u64, [a, b]: [Option<LegUpdate>; 2]) {
        let slot = self
            .by_name
            .get(name)
            .and_then(|&i| self.slots.get_mut(i))
            .and_then(Option::as_mut);
        let reply = match slot {
            None => Reply::Error {
                id: Some(id),
                code: ErrorCode::NoSuchSession,
                message: format!("no session {name}"),
            },
            Some(slot) => {
                let mut result = Ok(());
                for (leg, upd) in [(LegId::A, a), (LegId::B, b)] {
                    if let Some(upd) = upd {
                        result = result.and_then(|()| slot.path.update(leg, &upd));
                    }
                }
                match result {
                    Ok(()) => Reply::SessionUpdated {
                        id,
                        session: name.to_string(),
                    },
                    Err((code, message)) => Reply::Error {
                        id: Some(id),
                        code,
                        message,
                    },
                }
            }
        };
        self.send(FromEngine::Reply { conn, reply });
    }

    fn remove(&mut self, name: &str, reply: Option<(ConnId, u64)>) {
        let Some(index) = self.by_name.remove(name) else {
            if let Some((conn, id)) = reply {
                self.send(FromEngine::Reply {
                    conn,
                    reply: Reply::Error {
                        id: Some(id),
                        code: ErrorCode::NoSuchSession,
                        message: format!("no session {name}"),
                    },
                });
            }
            return;
        };
        let Some(mut slot) = self.slots.get_mut(index).and_then(Option::take) else {
            return;
        };
        for sock in &mut slot.sockets {
            let _ = self.poll.registry().deregister(sock);
        }
        self.free.push(index);
        self.finish(slot, reply);
    }

    fn finish(&self, slot: Slot<P>, reply: Option<(ConnId, u64)>) {
        let stats = self.slot_stats(&slot);
        let (name, rtp_ports) = (slot.name.clone(), slot.rtp_ports);
        // Close the sockets before the control thread can hand the ports out again.
        drop(slot);
        self.send(FromEngine::Removed {
            name,
            rtp_ports,
            stats,
            reply,
        });
    }

    fn stats(&self, name: Option<Arc<str>>, conn: ConnId, id: u64) {
        match name {
            Some(name) => {
                let slot = self
                    .by_name
                    .get(&name)
                    .and_then(|&i| self.slots.get(i))
                    .and_then(Option::as_ref);
                let reply = match slot {
                    Some(slot) => Reply::Stats {
                        id,
                        sessions: vec![self.slot_stats(slot)],
                    },
                    None => Reply::Error {
                        id: Some(id),
                        code: ErrorCode::NoSuchSession,
                        message: format!("no session {name}"),
                    },
                };
                self.send(FromEngine::Reply { conn, reply });
            }
            None => {
                let sessions = self
                    .slots
                    .iter()
                    .flatten()
                    .map(|s| self.slot_stats(s))
                    .collect();
                self.send(FromEngine::StatsPart { conn, id, sessions });
            }
        }
    }
}
