//! The relays cig-server drives (docs/relay-control.md, docs/operations.md "Several relays").
//!
//! One connection task per relay — a local Unix socket or TCP with mutual TLS, the same frames
//! on both — connects with back-off, says hello, writes the frames it is given and reports
//! replies, events and losses; it asks the relay for its `status` every two seconds (its
//! crypto engines; a relay that stops answering is given up like a closed one). The [`Pool`]
//! places each new call's session on the connected relay with the lowest load (sessions per
//! available crypto engine), sends the call's later requests to that relay, and names the
//! calls a lost relay takes with it: those calls end, their sessions are not re-created
//! elsewhere (the peers were told that relay's ports and keys), and the relay is used again
//! once it answers hello.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cig_core::conf::{Relay as RelayConf, RelayEndpoint};
use cig_gateway::engine::CallId;
use cig_media::control::{
    Command, ErrorCode, FrameDecoder, PROTOCOL_VERSION, Reply, Request, encode_frame,
};
use cig_mgmt::{LinkState, RelayRow, RelayStatus};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::mpsc;

/// First wait before reconnecting to a relay that is away; doubled per failed attempt.
const RETRY_MIN: Duration = Duration::from_millis(250);
/// Longest wait between connection attempts.
const RETRY_MAX: Duration = Duration::from_secs(5);
/// Longest wait for the connection, the TLS handshake and the hello reply together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest PEM file read.
const MAX_PEM: u64 = 1 << 20;
/// How often a connected relay is asked for its `status` (its crypto engines, and whether it
/// still answers at all: a relay that did not answer the previous probe is given up).
const PROBE: Duration = Duration::from_secs(2);
/// Request ids of the probes count down from here (the pool's count up from 1).
const FIRST_PROBE_ID: u64 = u64::MAX;

/// How to reach one relay's control port.
#[derive(Clone)]
pub enum Endpoint {
    /// A local relay's Unix socket.
    Unix(PathBuf),
    /// A remote relay: TCP with mutual TLS; its certificate must carry `addr`'s IP.
    Tls {
        /// The relay's control address.
        addr: SocketAddr,
        /// Trust anchors and cig-server's client certificate.
        config: Arc<rustls::ClientConfig>,
    },
}

impl Endpoint {
    /// How `status` and cig.log name it.
    fn describe(&self) -> String {
        match self {
            Endpoint::Unix(p) => p.display().to_string(),
            Endpoint::Tls { addr, .. } => format!("tls:{addr}"),
        }
    }
}

/// One relay: its name and how to reach it.
pub struct Spec {
    /// The name of `relay NAME { … }` (`local` for the `--relay-socket` relay).
    pub name: String,
    /// Its control port.
    pub endpoint: Endpoint,
}

/// The relays of cig.conf, or the one local relay at `socket` when cig.conf names none.
pub fn specs(relays: &[RelayConf], socket: &Path) -> Result<Vec<Spec>, String> {
    if relays.is_empty() {
        return Ok(vec![Spec {
            name: "local".to_owned(),
            endpoint: Endpoint::Unix(socket.to_owned()),
        }]);
    }
    relays
        .iter()
        .map(|r| {
            let endpoint = match &r.endpoint {
                RelayEndpoint::Unix(p) => Endpoint::Unix(p.clone()),
                RelayEndpoint::Tls {
                    address,
                    ca,
                    cert,
                    key,
                } => Endpoint::Tls {
                    addr: *address,
                    config: client_config(ca, cert, key)
                        .map_err(|e| format!("relay {}: {e}", r.name))?,
                },
            };
            Ok(Spec {
                name: r.name.clone(),
                endpoint,
            })
        })
        .collect()
}

fn pem(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    file.take(MAX_PEM)
        .read_to_end(&mut out)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(out)
}

/// TLS 1.3 towards remote relays: only certificates chaining to `ca` are trusted, and
/// cig-server shows its client certificate `cert` with `key`.
fn client_config(ca: &Path, cert: &Path, key: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&pem(ca)?) {
        let c = c.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no CA certificate", ca.display()));
    }
    let chain = CertificateDer::pem_slice_iter(&pem(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate", cert.display()));
    }
    let key =
        PrivateKeyDer::from_pem_slice(&pem(key)?).map_err(|e| format!("{}: {e}", key.display()))?;
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map(Arc::new)
        .map_err(|e| format!("client certificate and key: {e}"))
}

/// What a relay's connection task reports.
#[derive(Debug)]
pub enum RelayIn {
    /// Connected and hello answered.
    Up {
        /// Engines running.
        engines_available: usize,
        /// Engines configured.
        engines_total: usize,
    },
    /// A reply or an event.
    Msg(Reply),
    /// The answer to a probe: the relay's crypto engines now.
    Load {
        /// Engines running.
        engines_available: usize,
        /// Engines configured.
        engines_total: usize,
    },
    /// The connection is gone, or an attempt failed (reported when the reason changes).
    Down(String),
}

/// A byte stream to a relay: a Unix socket or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Runs relay `index`'s connection forever: `out` carries encoded request frames, `events`
/// gets the reports. Frames queued while disconnected are dropped (their calls end on `Down`).
async fn run(
    index: usize,
    endpoint: Endpoint,
    mut out: mpsc::UnboundedReceiver<Vec<u8>>,
    events: mpsc::UnboundedSender<(usize, RelayIn)>,
) {
    let report = |ev: RelayIn| events.send((index, ev)).is_ok();
    let mut last_failure: Option<String> = None;
    let mut retry = RETRY_MIN;
    loop {
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, connect(&endpoint))
            .await
            .unwrap_or_else(|_| Err("no answer to hello in time".to_owned()));
        let (mut stream, up) = match connected {
            Ok(c) => c,
            Err(why) => {
                // Each new reason once, not every attempt.
                if last_failure.as_deref() != Some(why.as_str())
                    && !report(RelayIn::Down(why.clone()))
                {
                    return;
                }
                last_failure = Some(why);
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
                continue;
            }
        };
        // Anything queued for the previous connection is stale.
        while out.try_recv().is_ok() {}
        if !report(up) {
            return;
        }
        retry = RETRY_MIN;
        let mut dec = FrameDecoder::new();
        let mut buf = vec![0u8; 16 * 1024];
        let mut probes = tokio::time::interval_at(tokio::time::Instant::now() + PROBE, PROBE);
        let (mut next_probe, mut unanswered) = (FIRST_PROBE_ID, None::<u64>);
        let why = 'conn: loop {
            tokio::select! {
                r = stream.read(&mut buf) => match r {
                    Ok(0) => break "the relay closed the control connection".to_owned(),
                    Err(e) => break format!("control connection: {e}"),
                    Ok(n) => {
                        dec.push(&buf[..n]);
                        loop {
                            match dec.next_message::<Reply>() {
                                Ok(Some(m)) if m.id().is_some() && m.id() == unanswered => {
                                    unanswered = None;
                                    if let Reply::Status { engines_available, engines_total, .. } = m
                                        && !report(RelayIn::Load { engines_available, engines_total })
                                    {
                                        return;
                                    }
                                }
                                Ok(Some(m)) => {
                                    if !report(RelayIn::Msg(m)) {
                                        return;
                                    }
                                }
                                Ok(None) => break,
                                // One unreadable reply: skip it (its request stays unanswered).
                                Err(cig_media::control::ControlError::Json(_)) => continue,
                                Err(e) => break 'conn format!("control framing: {e}"),
                            }
                        }
                    }
                },
                _ = probes.tick() => {
                    if unanswered.is_some() {
                        break format!("no answer to status within {} s", PROBE.as_secs());
                    }
                    let probe = encode_frame(&Request { id: next_probe, command: Command::Status });
                    if let Ok(f) = probe {
                        if let Err(e) = stream.write_all(&f).await {
                            break format!("control connection: {e}");
                        }
                        unanswered = Some(next_probe);
                        next_probe -= 1;
                    }
                },
                f = out.recv() => match f {
                    Some(f) => {
                        if let Err(e) = stream.write_all(&f).await {
                            break format!("control connection: {e}");
                        }
                    }
                    None => return,
                },
            }
        };
        if !report(RelayIn::Down(why.clone())) {
            return;
        }
        last_failure = Some(why);
        tokio::time::sleep(retry).await;
    }
}

/// Connects (TLS included) and says hello.
async fn connect(endpoint: &Endpoint) -> Result<(Box<dyn Io>, RelayIn), String> {
    let mut s: Box<dyn Io> = match endpoint {
        Endpoint::Unix(path) => Box::new(
            UnixStream::connect(path)
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", path.display()))?,
        ),
        Endpoint::Tls { addr, config } => {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
            let _ = tcp.set_nodelay(true);
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(ServerName::IpAddress(addr.ip().into()), tcp)
                .await
                .map_err(|e| format!("TLS with {addr}: {e}"))?;
            Box::new(tls)
        }
    };
    let hello = encode_frame(&Request {
        id: 0,
        command: Command::Hello {
            protocol: PROTOCOL_VERSION,
            client: format!("cig-server {}", env!("CARGO_PKG_VERSION")),
        },
    })
    .map_err(|e| format!("cannot encode hello: {e}"))?;
    s.write_all(&hello).await.map_err(|e| e.to_string())?;
    let mut dec = FrameDecoder::new();
    let mut buf = vec![0u8; 4096];
    let reply = loop {
        if let Some(m) = dec.next_message::<Reply>().map_err(|e| e.to_string())? {
            break m;
        }
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the relay closed the connection during hello".to_owned());
        }
        dec.push(&buf[..n]);
    };
    match reply {
        Reply::Hello {
            engines_available,
            engines_total,
            ..
        } => Ok((
            s,
            RelayIn::Up {
                engines_available,
                engines_total,
            },
        )),
        Reply::Error { message, .. } => Err(format!("relay refused hello: {message}")),
        other => Err(format!("unexpected reply to hello: {other:?}")),
    }
}

#[derive(Debug)]
struct Member {
    name: String,
    address: String,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    up: bool,
    engines_available: usize,
    engines_total: usize,
    /// Sessions placed here and not deleted.
    sessions: usize,
    /// When a session was last placed here (a counter): ties go to the least recently used.
    last_used: u64,
}

#[derive(Debug)]
struct Pending {
    call: CallId,
    relay: usize,
    create: bool,
}

/// What [`Pool::on_event`] makes of a relay task's report.
#[derive(Debug)]
pub enum PoolEvent {
    /// Relay `name` connected; `first`: no relay was connected before it.
    Up {
        /// The relay's name.
        name: String,
        /// Its control address.
        address: String,
        /// Crypto engines running.
        engines_available: usize,
        /// Crypto engines configured.
        engines_total: usize,
        /// No relay was connected before.
        first: bool,
    },
    /// Relay `name` was lost: `calls` had their media there.
    Lost {
        /// The relay's name.
        name: String,
        /// Why.
        why: String,
        /// The calls whose sessions were there.
        calls: Vec<CallId>,
        /// No relay is connected now.
        none_left: bool,
    },
    /// An attempt to connect to relay `name`, which is away, failed.
    Failed {
        /// The relay's name.
        name: String,
        /// Why.
        why: String,
    },
    /// The reply to a request made for `call`.
    Reply(CallId, Reply),
    /// An event (media timeout, session ended by the relay).
    Event(Reply),
    /// Nothing for the engine (a reply nobody waits for).
    Nothing,
}

/// The relays and where each call's session lives.
#[derive(Debug)]
pub struct Pool {
    members: Vec<Member>,
    /// The relay holding each call's session, and the session's name.
    calls: HashMap<CallId, (usize, String)>,
    /// Session name → call, for the relay's events.
    sessions: HashMap<String, CallId>,
    pending: HashMap<u64, Pending>,
    next_id: u64,
    placed: u64,
}

impl Pool {
    /// Starts one connection task per relay; their reports arrive on the returned receiver
    /// (feed them to [`Pool::on_event`]).
    pub fn start(specs: Vec<Spec>) -> (Pool, mpsc::UnboundedReceiver<(usize, RelayIn)>) {
        let (events, reports) = mpsc::unbounded_channel();
        let members = specs
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let (tx, rx) = mpsc::unbounded_channel();
                let address = s.endpoint.describe();
                tokio::spawn(run(i, s.endpoint, rx, events.clone()));
                Member {
                    name: s.name,
                    address,
                    tx,
                    up: false,
                    engines_available: 0,
                    engines_total: 0,
                    sessions: 0,
                    last_used: 0,
                }
            })
            .collect();
        let pool = Pool {
            members,
            calls: HashMap::new(),
            sessions: HashMap::new(),
            pending: HashMap::new(),
            next_id: 1,
            placed: 0,
        };
        (pool, reports)
    }

    /// The connected relay with the lowest load: sessions per available crypto engine, ties
    /// to the one used least recently.
    fn pick(&self) -> Option<usize> {
        self.members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.up && m.engines_available > 0)
            .min_by(|(_, a), (_, b)| {
                (a.sessions * b.engines_available)
                    .cmp(&(b.sessions * a.engines_available))
                    .then(a.last_used.cmp(&b.last_used))
            })
            .map(|(i, _)| i)
    }

    /// Sends `command` for `call`: a new session to the least-loaded connected relay, anything
    /// else to the relay holding the call's session (dropped when that relay is gone: so is
    /// the session). `Err(reply)`: no relay can take the new session; feed the error to the
    /// engine as the reply.
    pub fn send(&mut self, call: CallId, command: Command) -> Result<(), Box<Reply>> {
        let refused = |message: &str| {
            Box::new(Reply::Error {
                id: None,
                code: ErrorCode::NoEngine,
                message: message.to_owned(),
            })
        };
        let created = match &command {
            Command::CreateSession { session, .. } => Some(session.clone()),
            _ => None,
        };
        let create = created.is_some();
        let deleted = matches!(command, Command::DeleteSession { .. });
        let relay = if create {
            self.pick().ok_or_else(|| refused("no relay connected"))?
        } else {
            match self.calls.get(&call) {
                Some((r, _)) => *r,
                None => return Ok(()),
            }
        };
        let id = self.next_id;
        self.next_id += 1;
        let frame = encode_frame(&Request { id, command }).map_err(|e| {
            Box::new(Reply::Error {
                id: None,
                code: ErrorCode::BadRequest,
                message: e.to_string(),
            })
        })?;
        let Some(m) = self.members.get_mut(relay) else {
            return Err(refused("no relay connected"));
        };
        if m.tx.send(frame).is_err() {
            return Err(refused("the relay's connection task stopped"));
        }
        if let Some(session) = created {
            self.placed += 1;
            m.sessions += 1;
            m.last_used = self.placed;
            self.calls.insert(call, (relay, session.clone()));
            self.sessions.insert(session, call);
        }
        if deleted {
            self.forget(call);
        }
        self.pending.insert(
            id,
            Pending {
                call,
                relay,
                create,
            },
        );
        Ok(())
    }

    /// The call's session is gone: it no longer counts on its relay.
    fn forget(&mut self, call: CallId) {
        if let Some((r, session)) = self.calls.remove(&call) {
            if let Some(m) = self.members.get_mut(r) {
                m.sessions = m.sessions.saturating_sub(1);
            }
            self.sessions.remove(&session);
        }
    }

    /// Takes relay `relay`'s report.
    pub fn on_event(&mut self, relay: usize, ev: RelayIn) -> PoolEvent {
        let first = !self.members.iter().any(|m| m.up);
        let Some(m) = self.members.get_mut(relay) else {
            return PoolEvent::Nothing;
        };
        match ev {
            RelayIn::Up {
                engines_available,
                engines_total,
            } => {
                m.up = true;
                m.engines_available = engines_available;
                m.engines_total = engines_total;
                PoolEvent::Up {
                    name: m.name.clone(),
                    address: m.address.clone(),
                    engines_available,
                    engines_total,
                    first,
                }
            }
            RelayIn::Load {
                engines_available,
                engines_total,
            } => {
                if m.up {
                    m.engines_available = engines_available;
                    m.engines_total = engines_total;
                }
                PoolEvent::Nothing
            }
            RelayIn::Down(why) if !m.up => PoolEvent::Failed {
                name: m.name.clone(),
                why,
            },
            RelayIn::Down(why) => {
                m.up = false;
                m.engines_available = 0;
                let name = m.name.clone();
                let mut calls: Vec<CallId> = self
                    .calls
                    .iter()
                    .filter(|(_, (r, _))| *r == relay)
                    .map(|(c, _)| *c)
                    .collect();
                calls.sort_unstable();
                for c in &calls {
                    self.forget(*c);
                }
                self.pending.retain(|_, p| p.relay != relay);
                PoolEvent::Lost {
                    name,
                    why,
                    calls,
                    none_left: !self.members.iter().any(|m| m.up),
                }
            }
            RelayIn::Msg(reply) => match reply.id() {
                Some(id) => match self.pending.remove(&id) {
                    Some(p) if p.relay == relay => {
                        if p.create && matches!(reply, Reply::Error { .. }) {
                            self.forget(p.call);
                        }
                        PoolEvent::Reply(p.call, reply)
                    }
                    _ => PoolEvent::Nothing,
                },
                None => {
                    if let Reply::SessionEnded { session, .. } = &reply
                        && let Some(call) = self.sessions.get(session).copied()
                    {
                        self.forget(call);
                    }
                    PoolEvent::Event(reply)
                }
            },
        }
    }

    /// What `cig-cli status` shows: connected when any relay is, the engines of the connected
    /// relays, and one row per relay.
    pub fn status(&self) -> RelayStatus {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        RelayStatus {
            connected: self.members.iter().any(|m| m.up),
            engines_available: count(self.members.iter().map(|m| m.engines_available).sum()),
            engines_total: count(self.members.iter().map(|m| m.engines_total).sum()),
            relays: self
                .members
                .iter()
                .map(|m| RelayRow {
                    name: m.name.clone(),
                    address: m.address.clone(),
                    connection: if m.up {
                        LinkState::Connected
                    } else {
                        LinkState::Disconnected
                    },
                    engines_available: count(m.engines_available),
                    engines_total: count(m.engines_total),
                    sessions: count(m.sessions),
                })
                .collect(),
        }
    }
}
