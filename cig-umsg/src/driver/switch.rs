//! The switch driver: a TLS listener, one task per connection (TLS handshake with a timeout,
//! frames in through [`FrameReader`], frames out through a queue bounded in bytes
//! ([`SwitchConfig::out_queue_bytes`]) and written in batches, idle close after
//! 90 s), and one task owning the [`SwitchCore`] that all connections feed. For each routed
//! call the driver allocates a media relay ([`super::media`]) and writes its per-leg addresses
//! into the MEDIA_ADDR of ROUTED and of the BANG to the callee. Every registration, call state
//! change and message is reported as a log line. The core's message re-send timer runs in the
//! core task.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use cig_mikey_sakke::eccsi::Kpak;
use rand_core::OsRng;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_rustls::TlsAcceptor;

use super::media::{Latch, MediaConfig, RelayPool, RelayTask};
use super::{ALPN, FrameReader, HANDSHAKE_TIMEOUT, SWITCH_IDLE, deadline, transport, unix};
use crate::Error;
use crate::call::{SessionId, session_id_text};
use crate::frame::{Frame, FrameType, tag};
use crate::register::{ConnId, Transmit};
use crate::switch::{StoreLimits, SwitchCore};

/// Default of [`SwitchConfig::out_queue_bytes`]: 16 MiB — 64 frames of the largest size (a
/// recipient's stored messages all go out when it registers) or about 24,000 BANGs (two minutes
/// of a gateway's incoming calls at 200/s).
pub const OUT_QUEUE_BYTES: usize = 16 << 20;
/// Most bytes of queued frames written to a connection at once (one TLS write and flush).
const WRITE_BATCH: usize = 64 * 1024;
/// Longest wait for one write to a connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the switch needs.
#[derive(Debug)]
pub struct SwitchConfig {
    /// TCP address to listen on (port 0: any free port, see [`SwitchHandle::local_addr`]).
    pub listen: SocketAddr,
    /// TLS server configuration (see [`super::server_tls`]).
    pub tls: Arc<rustls::ServerConfig>,
    /// The community KPAK that registrations are verified with.
    pub kpak: Kpak,
    /// Media relay sockets and announced address.
    pub media: MediaConfig,
    /// Offline message store bounds.
    pub store: StoreLimits,
    /// Bytes of frames queued towards one connection that has not read them yet; a connection
    /// that falls further behind is closed ("too slow reading"). Default [`OUT_QUEUE_BYTES`].
    pub out_queue_bytes: usize,
}

/// What a running switch holds (see [`SwitchHandle::counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwitchCounts {
    /// Open connections (TLS established).
    pub connections: usize,
    /// Registered identities.
    pub registered: usize,
    /// Live call sessions in the core's call relay.
    pub calls: usize,
    /// Running media relays (one per live call).
    pub relays: usize,
    /// Messages held until their recipients acknowledge them.
    pub stored: usize,
}

/// A running switch.
#[derive(Debug)]
pub struct SwitchHandle {
    local: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    counts: Arc<Mutex<SwitchCounts>>,
}

impl SwitchHandle {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The switch's tables now (as of the last frame or timer the core handled).
    pub fn counts(&self) -> SwitchCounts {
        *self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops accepting, closes every connection (TLS close_notify), stops the media relays;
    /// returns when all tasks have ended.
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for t in tasks {
            // A task that panicked has ended too.
            let _ = t.await;
        }
    }
}

/// Binds the listener and starts the switch on the current tokio runtime. Log lines (one per
/// registration, call state change, message, connection) arrive on the returned channel.
pub async fn start(
    cfg: SwitchConfig,
) -> Result<(SwitchHandle, mpsc::UnboundedReceiver<String>), Error> {
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| transport("listen", e))?;
    let local = listener.local_addr().map_err(|e| transport("listen", e))?;
    let (log, log_rx) = mpsc::unbounded_channel();
    let (stop, stop_rx) = watch::channel(false);
    let (to_core, core_rx) = mpsc::channel(1024);
    let counts = Arc::new(Mutex::new(SwitchCounts::default()));
    let core = CoreTask {
        out_limit: cfg.out_queue_bytes,
        core: SwitchCore::new(cfg.kpak, String::new(), cfg.store),
        pool: RelayPool::new(cfg.media),
        conns: HashMap::new(),
        relays: HashMap::new(),
        log: log.clone(),
        counts: counts.clone(),
    };
    let core = tokio::spawn(core.run(core_rx));
    let acceptor = TlsAcceptor::from(cfg.tls);
    let listen = tokio::spawn(accept_loop(listener, acceptor, to_core, stop_rx, log));
    Ok((
        SwitchHandle {
            local,
            stop,
            tasks: Mutex::new(vec![listen, core]),
            counts,
        },
        log_rx,
    ))
}

enum ToCore {
    Open {
        conn: ConnId,
        peer: SocketAddr,
        out: OutQueue,
    },
    Frame {
        conn: ConnId,
        frame: Frame,
    },
    Closed {
        conn: ConnId,
        reason: String,
    },
}

/// Encoded frame bytes for a connection, and whether to close after writing them.
struct Out {
    bytes: Vec<u8>,
    close: bool,
}

/// The core's end of a connection's output queue: frames and the bytes not yet written.
struct OutQueue {
    tx: mpsc::UnboundedSender<Out>,
    queued: Arc<AtomicUsize>,
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    to_core: mpsc::Sender<ToCore>,
    mut stop: watch::Receiver<bool>,
    log: mpsc::UnboundedSender<String>,
) {
    let mut conns = JoinSet::new();
    let mut next: ConnId = 1;
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, peer)) => {
                    let conn = next;
                    next += 1;
                    let task = connection(conn, tcp, peer, acceptor.clone(), to_core.clone(),
                        stop.clone(), log.clone());
                    conns.spawn(task);
                }
                Err(e) => {
                    let _ = log.send(format!("accept failed: {e}"));
                    // Out of descriptors or similar: give the system a moment.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = super::stopped(&mut stop) => break,
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

async fn connection(
    conn: ConnId,
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    to_core: mpsc::Sender<ToCore>,
    mut stop: watch::Receiver<bool>,
    log: mpsc::UnboundedSender<String>,
) {
    let _ = tcp.set_nodelay(true);
    let tls = tokio::select! {
        r = timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let _ = log.send(format!("conn {conn} from {peer}: TLS handshake failed: {e}"));
                return;
            }
            Err(_) => {
                let _ = log.send(format!("conn {conn} from {peer}: TLS handshake timed out"));
                return;
            }
        },
        _ = super::stopped(&mut stop) => return,
    };
    if tls.get_ref().1.alpn_protocol() != Some(ALPN) {
        let _ = log.send(format!("conn {conn} from {peer}: no ALPN umsg/1"));
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let queued = Arc::new(AtomicUsize::new(0));
    if to_core
        .send(ToCore::Open {
            conn,
            peer,
            out: OutQueue {
                tx,
                queued: queued.clone(),
            },
        })
        .await
        .is_err()
    {
        return;
    }
    let (r, mut w) = tokio::io::split(tls);
    let mut reader = FrameReader::new(r);
    let mut idle = Instant::now() + SWITCH_IDLE;
    let reason = loop {
        tokio::select! {
            got = reader.next() => match got {
                Ok(Some(frame)) => {
                    idle = Instant::now() + SWITCH_IDLE;
                    if to_core.send(ToCore::Frame { conn, frame }).await.is_err() {
                        break "switch stopping".to_owned();
                    }
                }
                Ok(None) => break "peer closed".to_owned(),
                Err(e) => break e.to_string(),
            },
            out = rx.recv() => match out {
                Some(Out { mut bytes, mut close }) => {
                    // What else is queued goes out in the same write (up to WRITE_BATCH).
                    while !close && bytes.len() < WRITE_BATCH {
                        let Ok(more) = rx.try_recv() else { break };
                        bytes.extend_from_slice(&more.bytes);
                        close = more.close;
                    }
                    let wrote = timeout(WRITE_TIMEOUT, async {
                        w.write_all(&bytes).await?;
                        w.flush().await
                    }).await;
                    queued.fetch_sub(bytes.len(), Ordering::Relaxed);
                    match wrote {
                        Ok(Ok(())) if close => break "closed by the switch".to_owned(),
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => break format!("write: {e}"),
                        Err(_) => break "write timed out".to_owned(),
                    }
                }
                None => break "too slow reading (queue full)".to_owned(),
            },
            _ = sleep_until(idle) => break "idle for 90 s".to_owned(),
            _ = super::stopped(&mut stop) => {
                // Frames the core queued before the stop still go out.
                let _ = timeout(WRITE_TIMEOUT, async {
                    while let Ok(Out { bytes, .. }) = rx.try_recv() {
                        w.write_all(&bytes).await?;
                    }
                    w.flush().await
                })
                .await;
                break "switch shut down".to_owned();
            }
        }
    };
    let _ = timeout(Duration::from_secs(2), w.shutdown()).await;
    let _ = to_core.send(ToCore::Closed { conn, reason }).await;
}

struct CoreTask {
    core: SwitchCore,
    pool: RelayPool,
    /// Open connections: their output queue and the IP address they come from.
    conns: HashMap<ConnId, (OutQueue, IpAddr)>,
    /// [`SwitchConfig::out_queue_bytes`].
    out_limit: usize,
    relays: HashMap<SessionId, RelayTask>,
    log: mpsc::UnboundedSender<String>,
    counts: Arc<Mutex<SwitchCounts>>,
}

fn session_of(f: &Frame) -> Option<SessionId> {
    f.get(tag::SESSION_ID).and_then(|v| v.try_into().ok())
}

fn text(f: &Frame, t: u16) -> String {
    String::from_utf8_lossy(f.get(t).unwrap_or_default()).into_owned()
}

fn code(f: &Frame, t: u16) -> u8 {
    f.get(t).and_then(|v| v.first().copied()).unwrap_or(0)
}

fn set_media_addr(f: &mut Frame, addr: &str) {
    f.fields.retain(|x| x.tag != tag::MEDIA_ADDR);
    f.fields.push(crate::frame::Field {
        tag: tag::MEDIA_ADDR,
        value: addr.as_bytes().to_vec(),
    });
}

impl CoreTask {
    async fn run(mut self, mut rx: mpsc::Receiver<ToCore>) {
        loop {
            let timer = self.core.poll_timeout();
            let at = timer.map(|t| deadline(SystemTime::UNIX_EPOCH + Duration::from_secs(t)));
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => self.message(m),
                    None => break,
                },
                _ = sleep_until(at.unwrap_or_else(Instant::now)), if at.is_some() => {
                    let tx = self.core.handle_timeout(unix(SystemTime::now()));
                    for t in &tx {
                        self.log(format!(
                            "message {} re-sent to conn {} (not acknowledged)",
                            hex_id(&t.frame),
                            t.conn
                        ));
                    }
                    self.dispatch(tx);
                }
            }
            self.update_counts();
        }
        // Every connection is gone: the relays stop with `self`.
    }

    fn message(&mut self, m: ToCore) {
        match m {
            ToCore::Open { conn, peer, out } => {
                self.conns.insert(conn, (out, peer.ip().to_canonical()));
                self.log(format!("conn {conn} open from {peer}"));
            }
            ToCore::Frame { conn, frame } => self.frame(conn, &frame),
            ToCore::Closed { conn, reason } => {
                self.conns.remove(&conn);
                let who = self.who(conn);
                self.log(format!("conn {conn}{who} closed: {reason}"));
                let tx = self.core.disconnect(conn);
                self.dispatch(tx);
            }
        }
    }

    fn update_counts(&self) {
        let c = SwitchCounts {
            connections: self.conns.len(),
            registered: self.core.registrar().len(),
            calls: self.core.relay().len(),
            relays: self.relays.len(),
            stored: self.core.stored(),
        };
        *self.counts.lock().unwrap_or_else(PoisonError::into_inner) = c;
    }

    /// The IP address a call leg's media may latch from (docs/umsg.md §5.1).
    fn latch_ip(&self, conn: ConnId) -> Option<IpAddr> {
        match self.pool.latch() {
            Latch::ConnectionIp => self.conns.get(&conn).map(|(_, ip)| *ip),
            Latch::Any => None,
        }
    }

    fn log(&self, line: String) {
        let _ = self.log.send(line);
    }

    fn who(&self, conn: ConnId) -> String {
        match self.core.registrar().identity(conn) {
            Some(id) => format!(" ({id})"),
            None => String::new(),
        }
    }

    fn frame(&mut self, conn: ConnId, f: &Frame) {
        let mut relay = None;
        if f.kind == FrameType::Bang && self.core.registrar().identity(conn).is_some() {
            match self.pool.allocate() {
                Ok(r) => relay = Some(r),
                Err(e) => {
                    self.log(format!("conn {conn}: no media relay for a call: {e}"));
                    if let Some(id) = session_of(f) {
                        let hangup = Frame::new(FrameType::Hangup)
                            .with(tag::SESSION_ID, id)
                            .with(tag::REASON, [crate::call::HangupReason::Unavailable as u8]);
                        self.dispatch(vec![Transmit {
                            conn,
                            frame: hangup,
                            close: false,
                        }]);
                    }
                    return;
                }
            }
        }
        let mut tx = self
            .core
            .handle(conn, f, unix(SystemTime::now()), &mut OsRng);
        if let (Some(relay), Some(id)) = (relay, session_of(f)) {
            if let Some((caller, callee)) = self.core.relay().legs(&id) {
                let routed = tx.iter().any(|t| {
                    t.conn == caller
                        && t.frame.kind == FrameType::Routed
                        && session_of(&t.frame) == Some(id)
                });
                if caller == conn && routed {
                    let (a, b) = relay.announced();
                    for t in &mut tx {
                        if session_of(&t.frame) != Some(id) {
                            continue;
                        }
                        match t.frame.kind {
                            FrameType::Routed if t.conn == caller => {
                                set_media_addr(&mut t.frame, a)
                            }
                            FrameType::Bang if t.conn == callee => set_media_addr(&mut t.frame, b),
                            _ => {}
                        }
                    }
                    self.log(format!(
                        "call {} media relay {a} (caller) / {b} (callee)",
                        session_id_text(&id)
                    ));
                    let sources = (self.latch_ip(caller), self.latch_ip(callee));
                    self.relays.insert(id, relay.spawn(sources));
                }
            }
        }
        self.describe(conn, f, &tx);
        self.dispatch(tx);
    }

    /// Log lines for a frame from `conn` and what the core made of it.
    fn describe(&self, conn: ConnId, f: &Frame, tx: &[Transmit]) {
        let to_self = |k: FrameType| tx.iter().find(|t| t.conn == conn && t.frame.kind == k);
        match f.kind {
            FrameType::Register => {
                if to_self(FrameType::Registered).is_some() {
                    self.log(format!("conn {conn} registered {}", text(f, tag::IDENTITY)));
                } else if let Some(t) = to_self(FrameType::Refused) {
                    self.log(format!(
                        "conn {conn} registration of {} refused (reason {})",
                        text(f, tag::IDENTITY),
                        code(&t.frame, tag::REASON)
                    ));
                }
                for t in tx.iter().filter(|t| t.conn != conn && t.close) {
                    self.log(format!("conn {} replaced by conn {conn}", t.conn));
                }
                for t in tx.iter().filter(|t| t.frame.kind == FrameType::Msg) {
                    self.log(format!(
                        "message {} from store delivered to {}",
                        hex_id(&t.frame),
                        text(f, tag::IDENTITY)
                    ));
                }
            }
            FrameType::Bang => {
                let id = session_of(f)
                    .map(|i| session_id_text(&i))
                    .unwrap_or_default();
                let (from, to) = (text(f, tag::FROM), text(f, tag::TO));
                match tx
                    .iter()
                    .find(|t| t.conn != conn && t.frame.kind == FrameType::Bang)
                {
                    Some(t) => {
                        self.log(format!("call {id} {from} -> {to} BANG to conn {}", t.conn))
                    }
                    None => {
                        let r =
                            to_self(FrameType::Hangup).map_or(0, |t| code(&t.frame, tag::REASON));
                        self.log(format!("call {id} {from} -> {to} HANGUP reason {r}"));
                    }
                }
            }
            FrameType::Growl | FrameType::Talk | FrameType::Hangup => {
                if let (Some(t), Some(id)) = (tx.first(), session_of(f)) {
                    let reason = match f.kind {
                        FrameType::Hangup => format!(" reason {}", code(f, tag::REASON)),
                        _ => String::new(),
                    };
                    self.log(format!(
                        "call {} {:?}{reason} from conn {conn} to conn {}",
                        session_id_text(&id),
                        f.kind,
                        t.conn
                    ));
                }
            }
            FrameType::Msg => {
                let (id, from, to) = (hex_id(f), text(f, tag::FROM), text(f, tag::TO));
                let what = match tx.first() {
                    Some(t) if t.frame.kind == FrameType::Msg => {
                        format!("forwarded to conn {}", t.conn)
                    }
                    Some(t) if code(&t.frame, tag::ACK_STATUS) == 1 => {
                        format!("stored ({} held)", self.core.stored())
                    }
                    _ => "refused".to_owned(),
                };
                self.log(format!("message {id} {from} -> {to} {what}"));
            }
            FrameType::MsgAck => {
                if let Some(t) = tx.first() {
                    self.log(format!(
                        "message {} ack status {} to conn {}",
                        hex_id(f),
                        code(f, tag::ACK_STATUS),
                        t.conn
                    ));
                }
            }
            _ => {}
        }
    }

    /// Sends transmits to their connections; a connection whose queue is full is dropped.
    fn dispatch(&mut self, tx: Vec<Transmit>) {
        for t in tx {
            if t.frame.kind == FrameType::Hangup {
                if let Some(id) = session_of(&t.frame) {
                    if self.core.relay().legs(&id).is_none() && self.relays.remove(&id).is_some() {
                        self.log(format!("call {} media relay closed", session_id_text(&id)));
                    }
                }
            }
            let mut bytes = Vec::new();
            if let Err(e) = t.frame.encode(&mut bytes) {
                self.log(format!("conn {}: frame not sent: {e}", t.conn));
                continue;
            }
            let Some((queue, _)) = self.conns.get(&t.conn) else {
                continue;
            };
            let len = bytes.len();
            let queued = queue.queued.load(Ordering::Relaxed);
            let out = Out {
                bytes,
                close: t.close,
            };
            if queued + len > self.out_limit {
                self.log(format!(
                    "conn {}: output queue full ({queued} bytes unread), closing",
                    t.conn
                ));
                self.conns.remove(&t.conn);
            } else {
                queue.queued.fetch_add(len, Ordering::Relaxed);
                if queue.tx.send(out).is_err() {
                    self.conns.remove(&t.conn);
                }
            }
        }
    }
}

fn hex_id(f: &Frame) -> String {
    f.get(tag::MESSAGE_ID)
        .unwrap_or_default()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
