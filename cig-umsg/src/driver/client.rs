//! The client driver: one tokio task that connects to the switches of the key bundle in order
//! (TLS 1.3, CA from the bundle, host name checked), runs a [`ClientSession`] on the
//! connection, flushes the frames it queues, fires its keepalive and answer timers, and
//! reconnects with exponential back-off and failover (docs/umsg.md §1). The ids of received
//! messages carry over from one connection to the next (duplicate suppression of messages the
//! switch re-sends), and a shutdown writes what the session queued before closing.
//!
//! An incoming BANG's ECCSI verification and SAKKE decapsulation (~4 ms) run on tokio's
//! blocking pool, at most as many at once in the process as there are cores, outside the
//! session lock: the frame reader goes on reading (a PING, another session's frames) meanwhile,
//! and the session is adopted when its verification is done (the session core holds frames
//! that arrive for it until then).
//!
//! The application works on the live session through [`ClientHandle::with`] and reads
//! [`ClientEvent`]s from the channel returned by [`start`].

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use cig_mikey_sakke::keystore::KeyMaterial;
use rand_core::{OsRng, RngCore};
use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout};
use tokio_rustls::TlsConnector;

use super::{ALPN, FrameReader, HANDSHAKE_TIMEOUT, REGISTER_TIMEOUT, client_tls, deadline};
use super::{transport, write_frames};
use crate::Error;
use crate::call::{ANSWER_TIMEOUT, IncomingBang, SessionId, VerifiedBang};
use crate::client::{ClientSession, Event};
use crate::frame::Frame;
use crate::message::{AckStatus, MessageId, SeenIds};

/// A registered connection must last this long before the back-off starts again from
/// `backoff_min` (so two devices fighting over one identity do not reconnect in a tight loop).
const STABLE_AFTER: Duration = Duration::from_secs(10);

/// What the driver needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The device's key material (identity, keys, `switch_ca_cert`).
    pub keys: KeyMaterial,
    /// Switch addresses `host:port`, tried in order.
    pub switches: Vec<String>,
    /// First back-off after a failed pass over all switches (1 s).
    pub backoff_min: Duration,
    /// Longest back-off (60 s).
    pub backoff_max: Duration,
    /// A dialled call not in TALK this long after its BANG is hung up with reason timeout
    /// (60 s, [`ANSWER_TIMEOUT`]).
    pub answer_timeout: Duration,
    /// Text messages wait for the application's [`ClientHandle::ack_message`] (or
    /// [`ClientHandle::release_message`]) instead of being acknowledged on receipt (false).
    pub defer_message_acks: bool,
}

impl ClientConfig {
    /// The switches of the key bundle and the default back-off (1 s doubling to 60 s).
    pub fn new(keys: KeyMaterial) -> Self {
        Self {
            switches: keys.switch_addresses.clone(),
            keys,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            answer_timeout: ANSWER_TIMEOUT,
            defer_message_acks: false,
        }
    }
}

/// The state of the link to the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Connecting or registering.
    Connecting,
    /// Registered on `switch` (the address as configured).
    Registered {
        /// The switch address.
        switch: String,
    },
    /// Not connected (also while waiting out the back-off); why the last connection ended
    /// or failed.
    Disconnected {
        /// The reason.
        reason: String,
    },
}

/// What the driver reports.
#[derive(Debug)]
pub enum ClientEvent {
    /// Registered on `switch`.
    Registered {
        /// The switch address.
        switch: String,
    },
    /// A connection attempt failed or a registered connection ended (the driver retries).
    Disconnected {
        /// The reason.
        reason: String,
    },
    /// An event of the client core (all but `Event::Registered`, which is `Registered`).
    Core(Event),
}

#[derive(Debug)]
struct Shared {
    session: Mutex<Option<ClientSession>>,
    state: Mutex<LinkState>,
    wake: Notify,
    stop: watch::Sender<bool>,
    done: watch::Sender<bool>,
    /// Ids of the messages received, kept here between connections (the live session holds
    /// them while registered).
    seen: Mutex<SeenIds>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Incoming BANGs being verified by one connection's driver: each a task that waits for one of
/// the process's [`verifiers`] permits, then runs [`IncomingBang::verify`] on the blocking pool.
/// Dropped with the connection (waiting tasks are aborted; their sessions went with it).
type Verifications = JoinSet<(SessionId, Option<VerifiedBang>)>;

/// Permits for BANG verifications running at once in this process: one per core, so a burst
/// of incoming calls queues here instead of oversubscribing the CPU.
fn verifiers() -> Arc<Semaphore> {
    static SEM: std::sync::OnceLock<Arc<Semaphore>> = std::sync::OnceLock::new();
    SEM.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Arc::new(Semaphore::new(cores))
    })
    .clone()
}

fn spawn_verification(set: &mut Verifications, bang: IncomingBang) {
    let id = *bang.id();
    set.spawn(async move {
        let Ok(permit) = verifiers().acquire_owned().await else {
            return (id, None);
        };
        let verified = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            bang.verify()
        })
        .await;
        (id, verified.ok())
    });
}

/// A handle on the running driver; cheap to clone.
#[derive(Debug, Clone)]
pub struct ClientHandle {
    shared: Arc<Shared>,
}

impl ClientHandle {
    /// Runs `f` on the live, registered session (dial, answer, hang up, send messages with
    /// `session.calls` / `session.messenger`, queue frames with `session.send`); the driver
    /// flushes the queued frames. `None` when not registered.
    pub fn with<R>(&self, f: impl FnOnce(&mut ClientSession, SystemTime) -> R) -> Option<R> {
        let r = {
            let mut guard = lock(&self.shared.session);
            let session = guard.as_mut().filter(|s| s.is_registered())?;
            f(session, SystemTime::now())
        };
        self.shared.wake.notify_one();
        Some(r)
    }

    /// Acknowledges text message `id` (deferred acknowledgements,
    /// [`ClientConfig::defer_message_acks`]): the MSG_ACK goes out on the live connection; when
    /// there is none, the answer is remembered and the switch's re-send after the next
    /// registration is answered with it (delivered) or shown again (refused).
    pub fn ack_message(&self, id: MessageId, status: AckStatus) {
        {
            let mut guard = lock(&self.shared.session);
            match guard.as_mut() {
                Some(s) => {
                    let f = s.messenger.ack(&id, status);
                    if s.is_registered() {
                        s.send(f);
                    }
                }
                None => lock(&self.shared.seen).settle(&id, status),
            }
        }
        self.shared.wake.notify_one();
    }

    /// Gives text message `id` back (deferred acknowledgements): no MSG_ACK; the switch's
    /// next re-send of it is shown again.
    pub fn release_message(&self, id: MessageId) {
        let mut guard = lock(&self.shared.session);
        match guard.as_mut() {
            Some(s) => s.messenger.release(&id),
            None => lock(&self.shared.seen).release(&id),
        }
    }

    /// The link state now.
    pub fn state(&self) -> LinkState {
        lock(&self.shared.state).clone()
    }

    /// Writes the frames the session has queued (e.g. a HANGUP or MSG made just before), closes
    /// the connection cleanly (TLS close_notify) and stops the driver; returns when it has
    /// stopped.
    pub async fn shutdown(&self) {
        self.shared.stop.send_replace(true);
        let mut done = self.shared.done.subscribe();
        // An error means the driver task is gone: stopped too.
        let _ = done.wait_for(|d| *d).await;
    }
}

/// Starts the driver on the current tokio runtime.
pub fn start(cfg: ClientConfig) -> (ClientHandle, mpsc::UnboundedReceiver<ClientEvent>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        session: Mutex::new(None),
        state: Mutex::new(LinkState::Connecting),
        wake: Notify::new(),
        stop: watch::channel(false).0,
        done: watch::channel(false).0,
        seen: Mutex::new(SeenIds::default()),
    });
    let driver = Driver {
        cfg,
        shared: shared.clone(),
        events: tx,
    };
    tokio::spawn(async move {
        driver.run().await;
        driver.shared.done.send_replace(true);
    });
    (ClientHandle { shared }, rx)
}

struct Driver {
    cfg: ClientConfig,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<ClientEvent>,
}

/// How a connection ended.
enum End {
    /// Never registered: the reason.
    Failed(String),
    /// Registered, then lost: the reason and how long it was registered.
    Lost(String, Duration),
    /// Shutdown asked.
    Stopped,
}

/// `d` scaled by a random factor in [0.8, 1.2].
fn jitter(d: Duration) -> Duration {
    let r = f64::from(OsRng.next_u32()) / f64::from(u32::MAX);
    d.mul_f64(0.8 + 0.4 * r)
}

impl Driver {
    fn set_state(&self, s: LinkState) {
        *lock(&self.shared.state) = s;
    }

    fn emit(&self, e: ClientEvent) {
        // A dropped receiver only means nobody listens.
        let _ = self.events.send(e);
    }

    async fn run(&self) {
        let mut stop = self.shared.stop.subscribe();
        let mut backoff = self.cfg.backoff_min;
        loop {
            let mut stable = false;
            for addr in &self.cfg.switches {
                if *stop.borrow() {
                    return self.stopped();
                }
                self.set_state(LinkState::Connecting);
                let reason = match self.connection(addr, &mut stop).await {
                    End::Stopped => return self.stopped(),
                    End::Failed(r) => format!("{addr}: {r}"),
                    End::Lost(r, lived) => {
                        stable |= lived >= STABLE_AFTER;
                        format!("{addr}: {r}")
                    }
                };
                self.set_state(LinkState::Disconnected {
                    reason: reason.clone(),
                });
                self.emit(ClientEvent::Disconnected { reason });
            }
            if self.cfg.switches.is_empty() {
                let reason = "no switch address configured".to_owned();
                self.set_state(LinkState::Disconnected {
                    reason: reason.clone(),
                });
                self.emit(ClientEvent::Disconnected { reason });
            }
            if stable {
                // A good connection was lost: retry the list at once, back-off from the start.
                backoff = self.cfg.backoff_min;
                continue;
            }
            tokio::select! {
                _ = sleep(jitter(backoff)) => {}
                _ = super::stopped(&mut stop) => return self.stopped(),
            }
            backoff = (backoff * 2).min(self.cfg.backoff_max);
        }
    }

    fn stopped(&self) {
        lock(&self.shared.session).take();
        self.set_state(LinkState::Disconnected {
            reason: "shut down".into(),
        });
    }

    /// Connects, registers and runs one connection until it ends.
    async fn connection(&self, addr: &str, stop: &mut watch::Receiver<bool>) -> End {
        let setup = async {
            let tls = match timeout(HANDSHAKE_TIMEOUT, self.handshake(addr)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err("TLS handshake timed out".to_owned()),
            };
            let (r, mut w) = tokio::io::split(tls);
            let mut reader = FrameReader::new(r);
            let mut session = ClientSession::new(self.cfg.keys.clone(), SystemTime::now());
            session.calls.set_answer_timeout(self.cfg.answer_timeout);
            session
                .messenger
                .set_deferred_acks(self.cfg.defer_message_acks);
            let reg = self.register(&mut session, &mut reader, &mut w);
            match timeout(REGISTER_TIMEOUT, reg).await {
                Ok(Ok(())) => Ok((reader, w, session)),
                Ok(Err(e)) => Err(e),
                Err(_) => Err("registration timed out".to_owned()),
            }
        };
        let (mut reader, mut w, mut session) = tokio::select! {
            r = setup => match r {
                Ok(c) => c,
                Err(e) => return End::Failed(e),
            },
            _ = super::stopped(stop) => return End::Stopped,
        };
        let since = tokio::time::Instant::now();
        {
            // Under the session lock: an acknowledgement made meanwhile lands in one of them.
            let mut live = lock(&self.shared.session);
            session
                .messenger
                .set_seen(std::mem::take(&mut *lock(&self.shared.seen)));
            session.set_deferred_verification(true);
            *live = Some(session);
        }
        self.set_state(LinkState::Registered {
            switch: addr.to_owned(),
        });
        self.emit(ClientEvent::Registered {
            switch: addr.to_owned(),
        });
        let reason = self.registered(&mut reader, &mut w, stop).await;
        if reason.is_none() {
            // Shutdown: what the application queued last still goes out (bounded).
            let _ = timeout(Duration::from_secs(2), self.flush(None, &mut w, None)).await;
        }
        {
            let mut live = lock(&self.shared.session);
            if let Some(mut s) = live.take() {
                *lock(&self.shared.seen) = s.messenger.take_seen();
            }
        }
        match reason {
            None => {
                // Clean close: TLS close_notify, then TCP FIN; bounded.
                let _ = timeout(Duration::from_secs(2), w.shutdown()).await;
                End::Stopped
            }
            Some(r) => End::Lost(r, since.elapsed()),
        }
    }

    async fn handshake(
        &self,
        addr: &str,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
        let ca =
            self.cfg.keys.switch_ca_cert.as_deref().ok_or_else(|| {
                Error::Transport("no switch CA certificate in the key bundle".into())
            })?;
        let host = addr
            .rsplit_once(':')
            .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
            .ok_or_else(|| Error::Transport(format!("{addr:?} is not host:port")))?;
        let name =
            ServerName::try_from(host.to_owned()).map_err(|e| transport("switch host name", e))?;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| transport("connect", e))?;
        tcp.set_nodelay(true)
            .map_err(|e| transport("TCP_NODELAY", e))?;
        let tls = TlsConnector::from(client_tls(ca)?)
            .connect(name, tcp)
            .await
            .map_err(|e| transport("TLS", e))?;
        if tls.get_ref().1.alpn_protocol() != Some(ALPN) {
            return Err(Error::Transport("switch did not select ALPN umsg/1".into()));
        }
        Ok(tls)
    }

    /// Sends what the session queued and forwards its events; a REFUSED or a lost keepalive
    /// is returned as the reason to close.
    async fn flush<W: tokio::io::AsyncWrite + Unpin>(
        &self,
        session: Option<&mut ClientSession>,
        w: &mut W,
        verifications: Option<&mut Verifications>,
    ) -> Result<(), String> {
        let (frames, events, jobs) = match session {
            Some(s) => drain(s),
            None => match lock(&self.shared.session).as_mut() {
                Some(s) => drain(s),
                None => return Err("session gone".into()),
            },
        };
        if let Some(set) = verifications {
            for bang in jobs {
                spawn_verification(set, bang);
            }
        }
        let mut close = None;
        for e in events {
            match e {
                Event::Registered => continue,
                Event::Refused(r) => close = Some(format!("refused by the switch (reason {r})")),
                Event::ConnectionLost => close = Some("keepalive: no answer to PING".into()),
                _ => {}
            }
            self.emit(ClientEvent::Core(e));
        }
        write_frames(w, frames).await.map_err(|e| e.to_string())?;
        close.map_or(Ok(()), Err)
    }

    async fn register<R, W>(
        &self,
        session: &mut ClientSession,
        reader: &mut FrameReader<R>,
        w: &mut W,
    ) -> Result<(), String>
    where
        R: tokio::io::AsyncRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin,
    {
        self.flush(Some(&mut *session), w, None).await?;
        while !session.is_registered() {
            let f = reader
                .next()
                .await
                .map_err(|e| e.to_string())?
                .ok_or("switch closed the connection")?;
            session
                .handle_frame(&f, SystemTime::now(), &mut OsRng)
                .map_err(|e| e.to_string())?;
            self.flush(Some(&mut *session), w, None).await?;
        }
        Ok(())
    }

    /// Runs a registered connection until it ends: `None` for shutdown, else the reason.
    async fn registered<R, W>(
        &self,
        reader: &mut FrameReader<R>,
        w: &mut W,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<String>
    where
        R: tokio::io::AsyncRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin,
    {
        let mut verifications = Verifications::new();
        loop {
            let timer = match lock(&self.shared.session).as_ref() {
                Some(s) => deadline(s.poll_timeout()),
                None => return Some("session gone".into()),
            };
            let step: Result<(), String> = tokio::select! {
                got = reader.next() => match got {
                    Ok(Some(f)) => self.on_frame(&f),
                    Ok(None) => Err("switch closed the connection".into()),
                    Err(e) => Err(e.to_string()),
                },
                Some(done) = verifications.join_next(), if !verifications.is_empty() => {
                    match (lock(&self.shared.session).as_mut(), done) {
                        (Some(s), Ok((_, Some(v)))) => s.verified(v, SystemTime::now()),
                        (Some(s), Ok((id, None))) => s.verification_lost(&id),
                        // Only an aborted task has no id; tasks are aborted with the connection.
                        (Some(_), Err(_)) => {}
                        (None, _) => return Some("session gone".into()),
                    }
                    Ok(())
                }
                _ = sleep_until(timer) => {
                    if let Some(s) = lock(&self.shared.session).as_mut() {
                        s.handle_timeout(SystemTime::now());
                    }
                    Ok(())
                }
                _ = self.shared.wake.notified() => Ok(()),
                _ = super::stopped(stop) => return None,
            };
            if let Err(e) = step {
                return Some(e);
            }
            if let Err(e) = self.flush(None, w, Some(&mut verifications)).await {
                return Some(e);
            }
        }
    }

    fn on_frame(&self, f: &Frame) -> Result<(), String> {
        match lock(&self.shared.session).as_mut() {
            Some(s) => s
                .handle_frame(f, SystemTime::now(), &mut OsRng)
                .map_err(|e| e.to_string()),
            None => Err("session gone".into()),
        }
    }
}

fn drain(s: &mut ClientSession) -> (Vec<Frame>, Vec<Event>, Vec<IncomingBang>) {
    let frames = std::iter::from_fn(|| s.poll_transmit()).collect();
    let events = std::iter::from_fn(|| s.poll_event()).collect();
    let jobs = std::iter::from_fn(|| s.poll_verification()).collect();
    (frames, events, jobs)
}
