//! A crypto engine: one worker thread that owns the sockets of its sessions and runs their
//! packet path synchronously on its own epoll (mio) loop.
//!
//! The control thread hands sessions over through a channel and wakes the engine with a mio
//! [`Waker`]; replies and events go back the same way. A readable socket is read with
//! `recvmmsg` (up to [`BATCH`] datagrams per system call, and a short count means the socket is
//! empty, so no extra `EAGAIN` read is needed to re-arm the edge-triggered epoll); every datagram
//! goes through the session's [`PacketPath`] in place, and what is forwarded leaves with one
//! `sendmmsg` per run of datagrams for the same socket. Counters are plain fields: no
//! allocation (the batch buffers are allocated once per engine), no lock, no clock read beyond
//! one `Instant::now()` per wake-up.

use std::collections::HashMap;
use std::io::{ErrorKind, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny, sendmmsg};

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
/// Datagrams moved per `recvmmsg` / `sendmmsg`.
pub const BATCH: usize = 32;
/// Datagrams read from one socket before the engine turns to the others: a flood on one port
/// cannot starve the other calls. A socket left with data is revisited after the next poll.
const BUDGET: usize = 2 * BATCH;

/// Datagrams asked of each `recvmmsg` (1..=[`BATCH`]); set once at start by `--recv-batch`.
static RECV_BATCH: AtomicUsize = AtomicUsize::new(BATCH);

/// Sets how many datagrams the engines ask of each `recvmmsg` (clamped to 1..=[`BATCH`]),
/// before they start. With 1, a readable socket costs one read per datagram plus the `EAGAIN`
/// read that re-arms the edge-triggered epoll: the unbatched path, kept for measurements.
pub fn set_recv_batch(n: usize) {
    RECV_BATCH.store(n.clamp(1, BATCH), Ordering::Relaxed);
}

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

/// One forwarded datagram of a batch: which buffer, how long, where to.
#[derive(Clone, Copy)]
struct Out {
    buf: usize,
    len: usize,
    dst: SocketAddr,
}

/// An engine's pre-allocated batch state (made on the engine thread: the system call headers
/// hold raw pointers and are not `Send`).
struct Batch {
    /// Datagrams asked of each `recvmmsg`.
    limit: usize,
    /// [`BATCH`] packet buffers of [`MAX_DATAGRAM`] bytes each.
    bufs: Vec<u8>,
    rx: MultiHeaders<SockaddrStorage>,
    /// Length and source of each received datagram.
    got: [(usize, Option<SocketAddr>); BATCH],
    /// What goes out, in order, with the socket (0..4) it leaves from.
    out: [(usize, Out); BATCH],
}

impl Batch {
    fn new() -> Batch {
        let none = Out {
            buf: 0,
            len: 0,
            dst: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        Batch {
            limit: RECV_BATCH.load(Ordering::Relaxed).clamp(1, BATCH),
            bufs: vec![0; BATCH * MAX_DATAGRAM],
            rx: MultiHeaders::preallocate(BATCH, None),
            got: [(0, None); BATCH],
            out: [(0, none); BATCH],
        }
    }

    /// Buffer `i`.
    fn buf(&mut self, i: usize) -> &mut [u8] {
        &mut self.bufs[i * MAX_DATAGRAM..(i + 1) * MAX_DATAGRAM]
    }

    /// One `recvmmsg` of up to `limit` datagrams on `sock` into the buffers (each leaving
    /// [`SPARE`] bytes for what the path adds); the count, and the lengths and sources in `got`.
    fn recv(&mut self, sock: &UdpSocket) -> Result<usize, Errno> {
        let mut chunks = self.bufs.chunks_exact_mut(MAX_DATAGRAM);
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] = std::array::from_fn(|_| {
            [IoSliceMut::new(
                chunks
                    .next()
                    .map_or(Default::default(), |c| &mut c[..MAX_DATAGRAM - SPARE]),
            )]
        });
        let res = recvmmsg(
            sock.as_raw_fd(),
            &mut self.rx,
            iovs[..self.limit].iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )?;
        let mut n = 0;
        for (got, m) in self.got.iter_mut().zip(res) {
            *got = (m.bytes, m.address.as_ref().and_then(std_addr));
            n += 1;
        }
        Ok(n)
    }

    /// Sends `out[from..to]` (all for `sock`) with as few system calls as the kernel allows:
    /// one `send_to` for a single datagram, else `sendmmsg` until all went or failed;
    /// (sent, dropped).
    fn send(&self, sock: &UdpSocket, from: usize, to: usize) -> (u64, u64) {
        let (mut sent, mut dropped) = (0, 0);
        let mut done = from;
        while done < to {
            let run = &self.out[done..to];
            let k = match run {
                [] => break,
                [(_, one)] => usize::from(sock.send_to(self.payload(one), one.dst).is_ok()),
                [(_, first), ..] => {
                    // Fixed-size arrays (no allocation); only the first `run.len()` are sent.
                    let iovs: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|j| {
                        [IoSlice::new(
                            run.get(j).map_or(&[][..], |(_, o)| self.payload(o)),
                        )]
                    });
                    let addrs: [SocketAddrAny; BATCH] = std::array::from_fn(|j| {
                        SocketAddrAny::from(run.get(j).map_or(first.dst, |(_, o)| o.dst))
                    });
                    let mut control: [SendAncillaryBuffer<'_, '_, '_>; BATCH] =
                        std::array::from_fn(|_| SendAncillaryBuffer::default());
                    let mut j = 0;
                    let mut msgs = control.each_mut().map(|c| {
                        let m = MMsgHdr::new_with_addr(&addrs[j], &iovs[j], c);
                        j += 1;
                        m
                    });
                    let n = run.len().min(BATCH);
                    sendmmsg(sock, &mut msgs[..n], SendFlags::DONTWAIT).unwrap_or(0)
                }
            };
            if k == 0 {
                // The first datagram failed; the rest are tried again.
                dropped += 1;
                done += 1;
            } else {
                sent += k as u64;
                done += k;
            }
        }
        (sent, dropped)
    }

    /// The bytes of a forwarded datagram.
    fn payload(&self, o: &Out) -> &[u8] {
        let start = o.buf * MAX_DATAGRAM;
        self.bufs
            .get(start..start + o.len.min(MAX_DATAGRAM))
            .unwrap_or_default()
    }
}

fn std_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        Some(SocketAddr::V4((*v4).into()))
    } else {
        a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
    }
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
        let mut batch = Batch::new();
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
                if !self.on_readable(token, &mut batch, now) {
                    self.again.push(token);
                }
            }
            self.again_now = again_now;
            for ev in events.iter() {
                if ev.token() != WAKER && !self.on_readable(ev.token().0, &mut batch, now) {
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
    fn on_readable(&mut self, token: usize, batch: &mut Batch, now: Instant) -> bool {
        let (slot_index, k) = (token / 4, token % 4);
        let Some(Some(slot)) = self.slots.get_mut(slot_index) else {
            return true;
        };
        let leg = if k < 2 { LegId::A } else { LegId::B };
        let rtcp = k % 2 == 1;
        let li = leg_index(leg);
        for _ in 0..BUDGET / batch.limit {
            let n = match batch.recv(&slot.sockets[k]) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => return true,
                // EINTR, or a pending ICMP error reported once: the socket stays usable and
                // may hold more datagrams.
                Err(_) => continue,
            };
            let mut outs = 0;
            for i in 0..n {
                let (len, src) = batch.got[i];
                let st = &mut slot.stats[li];
                st.packets_in += 1;
                st.bytes_in += len as u64;
                let verdict = match src {
                    Some(src) => slot.path.on_packet(leg, rtcp, src, batch.buf(i), len, now),
                    None => Verdict::Drop,
                };
                match verdict {
                    Verdict::Forward {
                        leg: out,
                        rtcp: out_rtcp,
                        dst,
                        len,
                    } => {
                        let sock = leg_index(out) * 2 + usize::from(out_rtcp);
                        batch.out[outs] = (sock, Out { buf: i, len, dst });
                        outs += 1;
                    }
                    Verdict::Drop => slot.stats[li].dropped += 1,
                    Verdict::Withheld => slot.stats[li].withheld += 1,
                }
            }
            // One sendmmsg per run of datagrams leaving from the same socket.
            let mut from = 0;
            while from < outs {
                let sock = batch.out[from].0;
                let to = (from..outs)
                    .find(|&m| batch.out[m].0 != sock)
                    .unwrap_or(outs);
                let (sent, dropped) = batch.send(&slot.sockets[sock], from, to);
                let st = &mut slot.stats[sock / 2];
                st.packets_out += sent;
                st.dropped += dropped;
                from = to;
            }
            if n < batch.limit {
                // recvmmsg stopped short: the socket was empty (it ran into EAGAIN).
                return true;
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
                let now = Instant::now();
                let mut result = Ok(());
                for (leg, upd) in [(LegId::A, a), (LegId::B, b)] {
                    if let Some(upd) = upd {
                        result = result.and_then(|()| slot.path.update(leg, &upd, now));
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
