//! The control thread: the control ports (the Unix socket and, when configured, TCP with
//! mutual TLS), the session table, port allocation and the crypto engines' lifecycle.
//!
//! Everything here runs on one mio loop. Requests never wait for an engine: commands go to the
//! engine's channel followed by a wake-up, and the engine's answer comes back through this
//! thread's own channel and [`Waker`].

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::engine::{self, AliveGuard, ConnId, Engine, FromEngine, NewSession, ToEngine};
use crate::log::Log;
use crate::path::PacketPath;
use crate::tls::TlsStream;
use cig_media::control::{
    Command, ErrorCode, FrameDecoder, LegConfig, LocalPorts, PROTOCOL_VERSION, PortRange, Reply,
    Request, SessionStats, encode_frame, validate_session_id,
};
use cig_media::relay::ports::PortAllocator;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const SIGNAL: Token = Token(2);
const TCP_LISTENER: Token = Token(3);
const FIRST_CONN: usize = 16;
/// A controller that stops reading is dropped once this much output is queued for it.
const MAX_OUTPUT: usize = 16 << 20;

/// The relay's settings (from the command line).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The control socket path.
    pub control: PathBuf,
    /// The directory of relay.log.
    pub log_dir: PathBuf,
    /// The default RTP port range.
    pub rtp_port_range: PortRange,
    /// The default local address for media sockets.
    pub bind: IpAddr,
    /// Number of crypto engines.
    pub workers: usize,
    /// The control port over TCP with mutual TLS, beside the Unix socket.
    pub control_tcp: Option<TcpControl>,
}

/// The control port over TCP: where it listens and its TLS settings (client certificates
/// required).
#[derive(Debug, Clone)]
pub struct TcpControl {
    /// The listening address.
    pub addr: SocketAddr,
    /// The rustls server configuration ([`crate::tls::server_config`]).
    pub tls: Arc<rustls::ServerConfig>,
}

/// A controller's connection: the local Unix socket, or TLS over TCP. Both carry the same
/// frames.
enum Stream {
    Unix(UnixStream),
    Tls(Box<TlsStream>),
}

impl Stream {
    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Unix(s) => s,
            Stream::Tls(t) => &mut t.tcp,
        }
    }

    /// TLS records are waiting for the socket.
    fn pending(&self) -> bool {
        matches!(self, Stream::Tls(t) if t.pending())
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

struct Conn {
    stream: Stream,
    decoder: FrameDecoder,
    out: Vec<u8>,
    hello: bool,
    wants_write: bool,
}

struct EngineHandle<P> {
    tx: Sender<ToEngine<P>>,
    waker: Arc<Waker>,
    alive: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
    sessions: usize,
}

struct Entry {
    engine: usize,
    owner: ConnId,
    rtp_ports: [u16; 2],
    deleting: bool,
}

struct PendingStats {
    remaining: usize,
    sessions: Vec<SessionStats>,
}

/// The control thread's state.
pub struct Relay<P> {
    settings: Settings,
    log: Log,
    poll: Poll,
    listener: UnixListener,
    tcp_listener: Option<(TcpListener, Arc<rustls::ServerConfig>)>,
    /// The self-pipe the signal handlers write to (registered; kept open).
    _signals: UnixStream,
    from_engines: Receiver<FromEngine>,
    engines: Vec<EngineHandle<P>>,
    conns: HashMap<ConnId, Conn>,
    next_conn: ConnId,
    table: HashMap<Arc<str>, Entry>,
    ports: PortAllocator,
    pending_stats: HashMap<(ConnId, u64), PendingStats>,
}

impl<P> std::fmt::Debug for Relay<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("settings", &self.settings)
            .field("sessions", &self.table.len())
            .finish()
    }
}

/// Binds the control socket, refusing to steal one a live relay is listening on.
fn bind_control(path: &Path) -> io::Result<UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                ErrorKind::AddrInUse,
                format!("{} is in use by a running relay", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

fn bind_pair(ip: IpAddr, port: u16) -> Option<[std::net::UdpSocket; 2]> {
    let rtp = std::net::UdpSocket::bind((ip, port)).ok()?;
    let rtcp = std::net::UdpSocket::bind((ip, port.checked_add(1)?)).ok()?;
    rtp.set_nonblocking(true).ok()?;
    rtcp.set_nonblocking(true).ok()?;
    Some([rtp, rtcp])
}

impl<P: PacketPath> Relay<P> {
    /// Binds the control socket, installs the signal handlers and starts the engines.
    pub fn start(settings: Settings, log: Log) -> io::Result<Relay<P>> {
        let poll = Poll::new()?;
        let mut listener = bind_control(&settings.control)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let tcp_listener = match &settings.control_tcp {
            Some(t) => {
                let mut l = TcpListener::bind(t.addr)?;
                poll.registry()
                    .register(&mut l, TCP_LISTENER, Interest::READABLE)?;
                Some((l, t.tls.clone()))
            }
            None => None,
        };
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (sig_read, sig_write) = std::os::unix::net::UnixStream::pair()?;
        sig_read.set_nonblocking(true)?;
        sig_write.set_nonblocking(true)?;
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::low_level::pipe::register(sig, sig_write.try_clone()?)?;
        }
        let mut signals = UnixStream::from_std(sig_read);
        poll.registry()
            .register(&mut signals, SIGNAL, Interest::READABLE)?;
        let (to_control, from_engines) = mpsc::channel();
        let mut engines = Vec::with_capacity(settings.workers);
        for index in 0..settings.workers {
            let engine_poll = Poll::new()?;
            let engine_waker = Arc::new(Waker::new(engine_poll.registry(), engine::WAKER)?);
            let (tx, rx) = mpsc::channel();
            let alive = Arc::new(AtomicBool::new(true));
            let guard = AliveGuard(alive.clone());
            let engine = Engine::new(
                index,
                engine_poll,
                rx,
                to_control.clone(),
                waker.clone(),
                log.clone(),
            );
            let join = std::thread::Builder::new()
                .name(format!("crypto-engine-{index}"))
                .spawn(move || {
                    let _guard = guard;
                    engine.run();
                })?;
            engines.push(EngineHandle {
                tx,
                waker: engine_waker,
                alive,
                join: Some(join),
                sessions: 0,
            });
        }
        log.info(
            "Control",
            format_args!("listening on {}", settings.control.display()),
        );
        if let Some(t) = &settings.control_tcp {
            log.info(
                "Control",
                format_args!(
                    "listening on tcp {} (TLS, client certificate required)",
                    t.addr
                ),
            );
        }
        Ok(Relay {
            settings,
            log,
            poll,
            listener,
            tcp_listener,
            _signals: signals,
            from_engines,
            engines,
            conns: HashMap::new(),
            next_conn: FIRST_CONN,
            table: HashMap::new(),
            ports: PortAllocator::new(),
            pending_stats: HashMap::new(),
        })
    }

    fn engines_available(&self) -> usize {
        self.engines
            .iter()
            .filter(|e| e.alive.load(Ordering::Acquire))
            .count()
    }

    /// Runs until SIGTERM or SIGINT, then ends every session and stops the engines.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        loop {
            match self.poll.poll(&mut events, Some(Duration::from_secs(1))) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let mut stop = false;
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    TCP_LISTENER => self.accept_tcp(),
                    WAKER => {}
                    SIGNAL => stop = true,
                    Token(c) => {
                        if ev.is_readable() || ev.is_read_closed() {
                            self.read_conn(c);
                        }
                        if ev.is_writable() {
                            self.flush(c);
                        }
                    }
                }
            }
            self.drain_engines();
            self.reap_dead_engines();
            if stop {
                break;
            }
        }
        self.shutdown();
        Ok(())
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => self.add_conn(Stream::Unix(stream), "the control socket"),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.log.warn("Control", format_args!("accept failed: {e}"));
                    return;
                }
            }
        }
    }

    fn accept_tcp(&mut self) {
        loop {
            let Some((listener, config)) = &self.tcp_listener else {
                return;
            };
            match listener.accept() {
                Ok((tcp, from)) => {
                    let _ = tcp.set_nodelay(true);
                    match TlsStream::new(tcp, config.clone()) {
                        Ok(t) => self.add_conn(Stream::Tls(Box::new(t)), &format!("tcp {from}")),
                        Err(e) => self
                            .log
                            .warn("Control", format_args!("TLS from {from}: {e}")),
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.log
                        .warn("Control", format_args!("tcp accept failed: {e}"));
                    return;
                }
            }
        }
    }

    fn add_conn(&mut self, mut stream: Stream, from: &str) {
        let id = self.next_conn;
        self.next_conn += 1;
        if let Err(e) =
            self.poll
                .registry()
                .register(stream.source(), Token(id), Interest::READABLE)
        {
            self.log
                .warn("Control", format_args!("cannot register controller: {e}"));
            return;
        }
        self.log.info(
            "Control",
            format_args!("controller {id} connected on {from}"),
        );
        self.conns.insert(
            id,
            Conn {
                stream,
                decoder: FrameDecoder::new(),
                out: Vec::new(),
                hello: false,
                wants_write: false,
            },
        );
    }

    fn read_conn(&mut self, id: ConnId) {
        let mut closed = false;
        let mut requests = Vec::new();
        let mut bad_frame = None;
        {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            let mut chunk = [0u8; 8192];
            loop {
                match conn.stream.read(&mut chunk) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => conn.decoder.push(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => {
                        if e.kind() == ErrorKind::InvalidData {
                            // TLS refused (untrusted or missing client certificate, bad record).
                            self.log
                                .warn("Control", format_args!("controller {id}: TLS: {e}"));
                        }
                        closed = true;
                        break;
                    }
                }
            }
            loop {
                match conn.decoder.next_message::<Request>() {
                    Ok(Some(r)) => requests.push(Ok(r)),
                    Ok(None) => break,
                    Err(cig_media::control::ControlError::Json(e)) => {
                        requests.push(Err(e.to_string()))
                    }
                    Err(e) => {
                        bad_frame = Some(e.to_string());
                        break;
                    }
                }
            }
        }
        for r in requests {
            match r {
                Ok(req) => self.handle(id, req),
                Err(message) => self.send(
                    id,
                    &Reply::Error {
                        id: None,
                        code: ErrorCode::BadRequest,
                        message,
                    },
                ),
            }
        }
        if let Some(message) = bad_frame {
            self.send(
                id,
                &Reply::Error {
                    id: None,
                    code: ErrorCode::BadRequest,
                    message,
                },
            );
            self.flush(id);
            closed = true;
        }
        if closed {
            self.disconnect(id);
        } else {
            // A TLS handshake may have queued records of its own.
            self.flush(id);
        }
    }

    fn send(&mut self, conn: ConnId, reply: &Reply) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        match encode_frame(reply) {
            Ok(frame) => c.out.extend_from_slice(&frame),
            Err(e) => {
                self.log
                    .warn("Control", format_args!("cannot encode reply: {e}"));
                return;
            }
        }
        self.flush(conn);
    }

    fn flush(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let mut written = 0;
        let mut broken = false;
        if let Stream::Tls(t) = &mut c.stream {
            broken = t.flush_tls().is_err();
        }
        while !broken && written < c.out.len() {
            match c.stream.write(&c.out[written..]) {
                Ok(0) => {
                    broken = true;
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    broken = true;
                    break;
                }
            }
        }
        c.out.drain(..written);
        let want = !c.out.is_empty() || c.stream.pending();
        if want != c.wants_write {
            c.wants_write = want;
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ = self
                .poll
                .registry()
                .reregister(c.stream.source(), Token(conn), interest);
        }
        if broken || c.out.len() > MAX_OUTPUT {
            self.disconnect(conn);
        }
    }

    /// The controller went away: its sessions end (documented in docs/relay-control.md).
    fn disconnect(&mut self, conn: ConnId) {
        let Some(mut c) = self.conns.remove(&conn) else {
            return;
        };
        let _ = self.poll.registry().deregister(c.stream.source());
        let mut ended = 0;
        for (name, entry) in self.table.iter_mut() {
            if entry.owner == conn && !entry.deleting {
                entry.deleting = true;
                ended += 1;
                if let Some(e) = self.engines.get(entry.engine) {
                    let _ = e.tx.send(ToEngine::Remove {
                        name: name.clone(),
                        reply: None,
                    });
                    let _ = e.waker.wake();
                }
            }
        }
        self.pending_stats.retain(|(c, _), _| *c != conn);
        self.log.info(
            "Control",
            format_args!("controller {conn} disconnected; ending its {ended} sessions"),
        );
    }

    fn error(&mut self, conn: ConnId, id: u64, code: ErrorCode, message: impl Into<String>) {
        let message = message.into();
        self.log.debug(
            "Control",
            format_args!("request {id} from controller {conn} refused: {message}"),
        );
        self.send(
            conn,
            &Reply::Error {
                id: Some(id),
                code,
                message,
            },
        );
    }

    fn to_engine(&self, engine: usize, cmd: ToEngine<P>) {
        if let Some(e) = self.engines.get(engine) {
            // A dead engine's receiver is gone; reap_dead_engines ends its sessions.
            if e.tx.send(cmd).is_ok() {
                let _ = e.waker.wake();
            }
        }
    }

    fn handle(&mut self, conn: ConnId, req: Request) {
        let id = req.id;
        let hello = self.conns.get(&conn).is_some_and(|c| c.hello);
        match req.command {
            Command::Hello { protocol, client } => {
                if protocol != PROTOCOL_VERSION {
                    return self.error(
                        conn,
                        id,
                        ErrorCode::Version,
                        format!("protocol {protocol} not supported; this relay speaks {PROTOCOL_VERSION}"),
                    );
                }
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.hello = true;
                }
                self.log.info(
                    "Control",
                    format_args!("controller {conn} is {client:?}, protocol {protocol}"),
                );
                let reply = Reply::Hello {
                    id,
                    protocol: PROTOCOL_VERSION,
                    relay_version: env!("CARGO_PKG_VERSION").to_string(),
                    engines_available: self.engines_available(),
                    engines_total: self.engines.len(),
                };
                self.send(conn, &reply);
            }
            _ if !hello => self.error(conn, id, ErrorCode::Version, "send hello first"),
            Command::CreateSession {
                session,
                a,
                b,
                media_timeout_ms,
            } => self.create(conn, id, session, a, b, media_timeout_ms),
            Command::UpdateSession { session, a, b } => {
                let Some((name, entry)) = self.owned(conn, &session) else {
                    return self.error(
                        conn,
                        id,
                        ErrorCode::NoSuchSession,
                        format!("no session {session}"),
                    );
                };
                for upd in [&a, &b].into_iter().flatten() {
                    if upd.payload_type.is_some_and(|pt| pt > 127)
                        || upd.telephone_event_pt.is_some_and(|pt| pt > 127)
                    {
                        return self.error(
                            conn,
                            id,
                            ErrorCode::BadRequest,
                            "payload types are 0..=127",
                        );
                    }
                }
                let engine = entry;
                self.to_engine(
                    engine,
                    ToEngine::Update {
                        name,
                        conn,
                        id,
                        legs: Box::new([a, b]),
                    },
                );
            }
            Command::DeleteSession { session } => {
                let Some((name, engine)) = self.owned(conn, &session) else {
                    return self.error(
                        conn,
                        id,
                        ErrorCode::NoSuchSession,
                        format!("no session {session}"),
                    );
                };
                if let Some(e) = self.table.get_mut(&name) {
                    e.deleting = true;
                }
                self.to_engine(
                    engine,
                    ToEngine::Remove {
                        name,
                        reply: Some((conn, id)),
                    },
                );
            }
            Command::Stats {
                session: Some(session),
            } => {
                let Some((name, engine)) = self.owned(conn, &session) else {
                    return self.error(
                        conn,
                        id,
                        ErrorCode::NoSuchSession,
                        format!("no session {session}"),
                    );
                };
                self.to_engine(
                    engine,
                    ToEngine::Stats {
                        name: Some(name),
                        conn,
                        id,
                    },
                );
            }
            Command::Stats { session: None } => {
                let live: Vec<usize> = (0..self.engines.len())
                    .filter(|&i| self.engines[i].alive.load(Ordering::Acquire))
                    .collect();
                self.pending_stats.insert(
                    (conn, id),
                    PendingStats {
                        remaining: live.len(),
                        sessions: Vec::new(),
                    },
                );
                if live.is_empty() {
                    self.complete_stats(conn, id);
                }
                for i in live {
                    self.to_engine(
                        i,
                        ToEngine::Stats {
                            name: None,
                            conn,
                            id,
                        },
                    );
                }
            }
            Command::Status => {
                let reply = Reply::Status {
                    id,
                    engines_available: self.engines_available(),
                    engines_total: self.engines.len(),
                    sessions: self.table.len(),
                };
                self.send(conn, &reply);
            }
        }
    }

    /// The table key and engine of `session` if `conn` owns it and it is not being deleted.
    fn owned(&self, conn: ConnId, session: &str) -> Option<(Arc<str>, usize)> {
        let (name, e) = self.table.get_key_value(session)?;
        (e.owner == conn && !e.deleting).then(|| (name.clone(), e.engine))
    }

    fn allocate_leg(&mut self, leg: &LegConfig) -> Option<([std::net::UdpSocket; 2], LocalPorts)> {
        let ip = leg.bind.unwrap_or(self.settings.bind);
        let range = leg.port_range.unwrap_or(self.settings.rtp_port_range);
        let mut bound = None;
        let port = self.ports.allocate(range, |p| {
            bound = bind_pair(ip, p);
            bound.is_some()
        })?;
        let sockets = bound?;
        Some((
            sockets,
            LocalPorts {
                ip,
                rtp_port: port,
                rtcp_port: port + 1,
            },
        ))
    }

    fn create(
        &mut self,
        conn: ConnId,
        id: u64,
        session: String,
        a: LegConfig,
        b: LegConfig,
        media_timeout_ms: u32,
    ) {
        if let Err(e) = validate_session_id(&session)
            .and_then(|()| a.validate())
            .and_then(|()| b.validate())
        {
            return self.error(conn, id, ErrorCode::BadRequest, e.to_string());
        }
        if self.table.contains_key(session.as_str()) {
            return self.error(
                conn,
                id,
                ErrorCode::SessionExists,
                format!("session {session} exists"),
            );
        }
        let Some(engine) = (0..self.engines.len())
            .filter(|&i| self.engines[i].alive.load(Ordering::Acquire))
            .min_by_key(|&i| self.engines[i].sessions)
        else {
            return self.error(conn, id, ErrorCode::NoEngine, "no crypto engine is running");
        };
        // 0 = never: a silence of 100 years.
        let media_timeout = match media_timeout_ms {
            0 => Duration::from_secs(100 * 365 * 86_400),
            ms => Duration::from_millis(u64::from(ms)),
        };
        let path = match P::build(&a, &b, media_timeout, Instant::now()) {
            Ok(p) => p,
            Err((code, message)) => return self.error(conn, id, code, message),
        };
        let Some((sa, pa)) = self.allocate_leg(&a) else {
            return self.error(
                conn,
                id,
                ErrorCode::NoPorts,
                "no free RTP port pair for leg a",
            );
        };
        let Some((sb, pb)) = self.allocate_leg(&b) else {
            self.ports.release(pa.rtp_port);
            return self.error(
                conn,
                id,
                ErrorCode::NoPorts,
                "no free RTP port pair for leg b",
            );
        };
        let [a_rtp, a_rtcp] = sa;
        let [b_rtp, b_rtcp] = sb;
        let name: Arc<str> = session.as_str().into();
        self.to_engine(
            engine,
            ToEngine::Add(Box::new(NewSession {
                name: name.clone(),
                owner: conn,
                sockets: [a_rtp, a_rtcp, b_rtp, b_rtcp],
                rtp_ports: [pa.rtp_port, pb.rtp_port],
                path,
            })),
        );
        self.engines[engine].sessions += 1;
        self.table.insert(
            name,
            Entry {
                engine,
                owner: conn,
                rtp_ports: [pa.rtp_port, pb.rtp_port],
                deleting: false,
            },
        );
        self.log.info(
            "Session",
            format_args!(
                "{session} created on engine {engine}: a {}:{} ({:?}{}) b {}:{} ({:?}{})",
                pa.ip,
                pa.rtp_port,
                a.codec,
                if a.srtp.is_some() { ", SRTP" } else { "" },
                pb.ip,
                pb.rtp_port,
                b.codec,
                if b.srtp.is_some() { ", SRTP" } else { "" },
            ),
        );
        self.send(
            conn,
            &Reply::SessionCreated {
                id,
                session,
                engine,
                a: pa,
                b: pb,
            },
        );
    }

    fn complete_stats(&mut self, conn: ConnId, id: u64) {
        if let Some(p) = self.pending_stats.remove(&(conn, id)) {
            let mut sessions = p.sessions;
            sessions.sort_by(|x, y| x.session.cmp(&y.session));
            self.send(conn, &Reply::Stats { id, sessions });
        }
    }

    fn drain_engines(&mut self) {
        while let Ok(msg) = self.from_engines.try_recv() {
            match msg {
                FromEngine::Reply { conn, reply } => self.send(conn, &reply),
                FromEngine::Removed {
                    name,
                    rtp_ports,
                    stats,
                    reply,
                } => {
                    for p in rtp_ports {
                        self.ports.release(p);
                    }
                    let entry = self.table.remove(&name);
                    if let Some(h) = entry.as_ref().and_then(|e| self.engines.get_mut(e.engine)) {
                        h.sessions = h.sessions.saturating_sub(1);
                    }
                    self.log.info(
                        "Session",
                        format_args!(
                            "{name} deleted: a in {} out {} dropped {}, b in {} out {} dropped {}",
                            stats.a.packets_in,
                            stats.a.packets_out,
                            stats.a.dropped,
                            stats.b.packets_in,
                            stats.b.packets_out,
                            stats.b.dropped
                        ),
                    );
                    match (reply, entry) {
                        (Some((conn, id)), _) => {
                            self.send(conn, &Reply::SessionDeleted { id, stats })
                        }
                        // Ended by the engine (it could not register the sockets) while the
                        // owner still believes in it: tell the owner.
                        (None, Some(e)) if !e.deleting => self.send(
                            e.owner,
                            &Reply::SessionEnded {
                                session: name.to_string(),
                                reason: "the engine could not take the session".into(),
                            },
                        ),
                        (None, _) => {}
                    }
                }
                FromEngine::StatsPart { conn, id, sessions } => {
                    let done = match self.pending_stats.get_mut(&(conn, id)) {
                        Some(p) => {
                            p.sessions.extend(sessions);
                            p.remaining = p.remaining.saturating_sub(1);
                            p.remaining == 0
                        }
                        None => false,
                    };
                    if done {
                        self.complete_stats(conn, id);
                    }
                }
            }
        }
    }

    /// An engine thread that died (a bug) takes its sessions with it: tell their owners.
    fn reap_dead_engines(&mut self) {
        for i in 0..self.engines.len() {
            if self.engines[i].alive.load(Ordering::Acquire) || self.engines[i].join.is_none() {
                continue;
            }
            if let Some(j) = self.engines[i].join.take() {
                let _ = j.join();
            }
            let lost: Vec<(Arc<str>, ConnId, [u16; 2])> = self
                .table
                .iter()
                .filter(|(_, e)| e.engine == i)
                .map(|(n, e)| (n.clone(), e.owner, e.rtp_ports))
                .collect();
            self.log.warn(
                "Engine",
                format_args!(
                    "crypto engine {i} stopped unexpectedly; ending its {} sessions",
                    lost.len()
                ),
            );
            for (name, owner, ports) in lost {
                self.table.remove(&name);
                for p in ports {
                    self.ports.release(p);
                }
                self.send(
                    owner,
                    &Reply::SessionEnded {
                        session: name.to_string(),
                        reason: "crypto engine stopped".into(),
                    },
                );
            }
            self.engines[i].sessions = 0;
        }
    }

    fn shutdown(mut self) {
        self.log.info(
            "Control",
            format_args!("shutting down: ending {} sessions", self.table.len()),
        );
        let ended: Vec<(Arc<str>, ConnId)> = self
            .table
            .iter()
            .map(|(n, e)| (n.clone(), e.owner))
            .collect();
        for (name, owner) in ended {
            self.send(
                owner,
                &Reply::SessionEnded {
                    session: name.to_string(),
                    reason: "relay shutting down".into(),
                },
            );
        }
        for e in &self.engines {
            let _ = e.tx.send(ToEngine::Shutdown);
            let _ = e.waker.wake();
        }
        for e in &mut self.engines {
            if let Some(j) = e.join.take() {
                let _ = j.join();
            }
        }
        // Best effort: give each controller its last messages, then close.
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for c in conns {
            if let Some(conn) = self.conns.get_mut(&c) {
                let _ = conn.stream.write_all(&conn.out);
                if let Stream::Tls(t) = &mut conn.stream {
                    t.close();
                    let _ = t.flush_tls();
                }
            }
        }
        let _ = std::fs::remove_file(&self.settings.control);
        self.log.info("Control", format_args!("relay stopped"));
    }
}
