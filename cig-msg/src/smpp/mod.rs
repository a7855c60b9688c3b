//! SMPP 3.4 message centres (the manual's `message_centers { smpp { … } }`): an ESME
//! transceiver per centre with a durable outbound spool.
//!
//! [`pdu`], [`text`] and [`session`] are sans-IO: the PDU codec; GSM 03.38 / UCS-2,
//! splitting and reassembly; the ESME session state machine (bind_transceiver at interface
//! version 3.4, the submit window, ESME_RTHROTTLED / ESME_RMSGQFUL back-off, enquire_link,
//! deliver_sm reassembly with a timeout, receipts). This module is the tokio driver around
//! them: the TCP connection, reconnect with back-off (1 s doubling to 30 s), the spool files
//! and the inbound sink. Delivery receipts are logged and answered, never forwarded.
//!
//! **Spool**: [`Centre::deliver`] translates with the centre's `write` maps and writes the
//! message (the manual's format, `From`/`To` = SMPP addresses) into the centre's spool, a
//! Maildir (`<spool>/new/`), with fsync before returning. A spool file is deleted only when
//! every part got a successful submit_sm_resp, so messages survive centre outages and
//! restarts; delivery is at-least-once (after a crash or reconnect mid-message all its parts
//! are sent again). Attachments cannot travel by SMS: they are dropped and a note naming
//! them is appended to the text. A message the centre rejects permanently moves to
//! `<spool>/failed/` with its reason.
//!
//! **Inbound**: a deliver_sm (or all parts of a concatenated one) is translated with the
//! `read` maps (sender → a TEL URI of the gateway, receiver → a TEL URI) and handed on as a
//! [`crate::service::Inbound`]; its deliver_sm_resp (for every part) is sent only when the
//! handle is acknowledged (ESME_RX_T_APPN, "retry later", when dropped unacknowledged or when
//! the sink is full), so the centre keeps it until the switch has it; a message the secure
//! side refuses for good is answered ESME_RX_R_APPN (the centre gives it up). The message id
//! is a hash of centre, addresses, reference and text, stable across redeliveries.

pub mod pdu;
pub mod session;
pub mod text;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use cig_core::Secret;
use cig_core::conf::{SmppCenter, TranslatePair};
use cig_route::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};

use crate::format::{self, Message};
use crate::maildir;
use crate::service::{AckHandle, AckOutcome, Inbound};
use crate::{Error, Result};
use pdu::{Address, status};
use session::{Event, Session, SessionConfig};

/// One centre's settings.
#[derive(Clone, Debug)]
pub struct CentreConfig {
    /// A name for logs (`host:port` by default).
    pub name: String,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// SMPP system_id.
    pub system_id: String,
    /// SMPP password.
    pub password: Secret,
    /// Maps for messages from the centre.
    pub read: Option<TranslatePair>,
    /// Maps for messages to the centre.
    pub write: Option<TranslatePair>,
    /// The gateway's TEL URI (`tel:+8888`).
    pub gateway: String,
    /// The spool directory (a Maildir, created if missing).
    pub spool: PathBuf,
    /// Most submit_sm awaiting their response.
    pub window: usize,
    /// enquire_link interval (and its response timeout).
    pub enquire_every: Duration,
    /// How long parts of a concatenated message are awaited.
    pub reassembly_timeout: Duration,
}

impl CentreConfig {
    /// From a `smpp { … }` block; the spool is `<spool_root>/<host>_<port>`.
    pub fn from_conf(c: &SmppCenter, gateway: &str, spool_root: &std::path::Path) -> CentreConfig {
        CentreConfig {
            name: format!("{}:{}", c.hostname, c.port),
            host: c.hostname.clone(),
            port: c.port,
            system_id: c.user.clone(),
            password: c.password.clone(),
            read: c.read.clone(),
            write: c.write.clone(),
            gateway: gateway.to_owned(),
            spool: spool_root.join(format!("{}_{}", c.hostname, c.port)),
            window: 10,
            enquire_every: Duration::from_secs(30),
            reassembly_timeout: Duration::from_secs(60),
        }
    }
}

/// A running centre client; stops when dropped.
#[derive(Debug)]
pub struct Centre {
    config: Arc<CentreConfig>,
    router: Arc<Router>,
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Centre {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Centre {
    /// Creates the spool and starts the client on the current tokio runtime; inbound texts
    /// go to `sink`.
    pub fn spawn(
        config: CentreConfig,
        router: Arc<Router>,
        sink: mpsc::Sender<Inbound>,
    ) -> Result<Centre> {
        maildir::create_maildir(&config.spool)?;
        let config = Arc::new(config);
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(run(
            Arc::clone(&config),
            Arc::clone(&router),
            sink,
            Arc::clone(&wake),
        ));
        Ok(Centre {
            config,
            router,
            wake,
            task,
        })
    }

    /// Spools `msg` (from/to: secure source and target URIs) for this centre if its `write`
    /// maps translate both; returns the spool file, or `None` when the maps do not match.
    /// Returns after the spool file is durable.
    pub fn deliver(&self, msg: &Message) -> Result<Option<PathBuf>> {
        let Some(maps) = &self.config.write else {
            return Ok(None);
        };
        let (Ok(from), Ok(to)) = (
            self.router.translate(&maps.map_from, &msg.from),
            self.router.translate(&maps.map_to, &msg.to),
        ) else {
            return Ok(None);
        };
        let mut copy = Message {
            from: from.uri,
            to: to.uri,
            date: msg.date,
            text: msg.text.clone(),
            attachments: Vec::new(),
            id: msg.id.clone(),
            headers: Vec::new(),
        };
        if !msg.attachments.is_empty() {
            let names: Vec<&str> = msg
                .attachments
                .iter()
                .map(|a| a.filename.as_str())
                .collect();
            copy.text.push_str(&format!(
                "\n[attachments not sent by SMS: {}]",
                names.join(", ")
            ));
        }
        let path = maildir::deliver(&self.config.spool, &format::write(&copy)?)?;
        self.wake.notify_one();
        Ok(Some(path))
    }

    /// The spool directory.
    pub fn spool(&self) -> &std::path::Path {
        &self.config.spool
    }
}

/// Reconnects forever with back-off (1 s doubling to 30 s; reset after a successful bind).
async fn run(
    config: Arc<CentreConfig>,
    router: Arc<Router>,
    sink: mpsc::Sender<Inbound>,
    wake: Arc<Notify>,
) {
    let mut backoff = Duration::from_secs(1);
    // Spool files are deleted off the session loop, by a blocking task.
    let (delete_tx, delete_rx) = std::sync::mpsc::channel::<PathBuf>();
    let (deleted_tx, mut deleted_rx) = mpsc::unbounded_channel::<PathBuf>();
    let name = config.name.clone();
    tokio::task::spawn_blocking(move || {
        while let Ok(path) = delete_rx.recv() {
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::error!(
                        "smpp {name}: cannot delete spool file {}: {e}",
                        path.display()
                    );
                }
            }
            if deleted_tx.send(path).is_err() {
                return;
            }
        }
    });
    let mut driver = Driver {
        config: &config,
        router: &router,
        sink: &sink,
        generation: 0,
        files: HashMap::new(),
        known: HashSet::new(),
        next_id: 0,
        delete_tx,
    };
    loop {
        driver.generation += 1;
        let mut bound = false;
        if let Err(e) = driver.session(&wake, &mut deleted_rx, &mut bound).await {
            tracing::warn!("smpp {}: {e}; reconnecting in {backoff:?}", config.name);
        }
        if bound {
            backoff = Duration::from_secs(1);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Acknowledgements from inbound handles: (generation, seqs, status).
type AckMsg = (u64, Vec<u32>, u32);

/// The I/O around a [`Session`]: socket, spool files, sink.
struct Driver<'a> {
    config: &'a CentreConfig,
    router: &'a Router,
    sink: &'a mpsc::Sender<Inbound>,
    /// Counts connections, so acknowledgements for an old one are ignored.
    generation: u64,
    /// Spool files queued in the current session, by session message id.
    files: HashMap<u64, PathBuf>,
    /// Spool files queued (or being deleted), so scans do not queue them twice.
    known: HashSet<PathBuf>,
    next_id: u64,
    delete_tx: std::sync::mpsc::Sender<PathBuf>,
}

static REFERENCE: AtomicU8 = AtomicU8::new(0);

impl Driver<'_> {
    async fn session(
        &mut self,
        wake: &Notify,
        deleted: &mut mpsc::UnboundedReceiver<PathBuf>,
        bound: &mut bool,
    ) -> Result<()> {
        let c = self.config;
        let stream = tokio::time::timeout(
            Duration::from_secs(10),
            TcpStream::connect((c.host.as_str(), c.port)),
        )
        .await
        .map_err(|_| Error::Smpp("connect timed out".into()))?
        .map_err(|e| Error::Smpp(format!("connect: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (mut rd, mut wr) = stream.into_split();
        let mut session = Session::new(
            SessionConfig {
                system_id: c.system_id.clone(),
                password: c.password.clone(),
                window: c.window,
                enquire_every: c.enquire_every,
                reassembly_timeout: c.reassembly_timeout,
            },
            Instant::now(),
        )?;
        // Files queued in an earlier session go again (at-least-once).
        self.files.clear();
        self.known.clear();
        let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<AckMsg>();
        let mut spool_scan = tokio::time::interval(Duration::from_secs(5));
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            while let Some(event) = session.poll_event() {
                self.event(event, &mut session, &ack_tx)?;
            }
            *bound = session.is_bound();
            while let Some(bytes) = session.poll_transmit() {
                wr.write_all(&bytes)
                    .await
                    .map_err(|e| Error::Smpp(format!("write: {e}")))?;
            }
            let timer = session.poll_timeout();
            let sleep = async {
                match timer {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                n = rd.read(&mut chunk) => {
                    let n = n.map_err(|e| Error::Smpp(format!("read: {e}")))?;
                    if n == 0 {
                        return Err(Error::Smpp("connection closed by the centre".into()));
                    }
                    session.handle_input(&chunk[..n], Instant::now())?;
                }
                () = sleep => session.handle_timeout(Instant::now())?,
                () = wake.notified(), if *bound => self.load_spool(&mut session),
                _ = spool_scan.tick(), if *bound => self.load_spool(&mut session),
                Some(path) = deleted.recv() => { self.known.remove(&path); }
                Some((generation, seqs, st)) = ack_rx.recv() => {
                    if generation == self.generation {
                        session.answer(&seqs, st)?;
                    }
                }
            }
        }
    }

    fn event(
        &mut self,
        event: Event,
        session: &mut Session,
        ack_tx: &mpsc::UnboundedSender<AckMsg>,
    ) -> Result<()> {
        let c = self.config;
        match event {
            Event::Bound => {
                tracing::info!("smpp {}: bound as transceiver", c.name);
                self.load_spool(session);
            }
            Event::Sent { id } => {
                if let Some(path) = self.files.remove(&id) {
                    // Stays in `known` until deleted, so a scan cannot queue it again.
                    let _ = self.delete_tx.send(path);
                }
            }
            Event::Refused { id, status } => {
                if let Some(path) = self.files.remove(&id) {
                    self.known.remove(&path);
                    let reason = format!("submit_sm refused with status {status:#x}");
                    maildir::fail(&c.spool, &path, &reason);
                }
            }
            Event::Receipt { source, text } => {
                tracing::info!("smpp {}: delivery receipt from {source}: {text}", c.name);
            }
            Event::Text {
                source,
                dest,
                reference,
                text,
                complete,
                seqs,
            } => {
                if !complete {
                    tracing::warn!(
                        "smpp {}: concatenated message {reference} from {source} incomplete after {:?}",
                        c.name,
                        c.reassembly_timeout
                    );
                }
                self.forward(session, source, dest, reference, text, seqs, ack_tx)?;
            }
        }
        Ok(())
    }

    /// Queues spool files not yet queued in this session.
    fn load_spool(&mut self, session: &mut Session) {
        let c = self.config;
        for path in maildir::list_new(&c.spool.join("new")) {
            if self.known.contains(&path) {
                continue;
            }
            let parsed = match maildir::read_capped(&path) {
                Ok(Some(bytes)) => format::parse(&bytes).map_err(|e| e.to_string()),
                Ok(None) => continue,
                Err(e) => Err(e),
            };
            let split = parsed.and_then(|m| {
                let reference = REFERENCE.fetch_add(1, Ordering::Relaxed);
                let parts = text::split(&m.text, reference).ok_or("text too long for SMS")?;
                Ok((m, parts))
            });
            match split {
                Ok((m, parts)) => {
                    self.next_id += 1;
                    self.known.insert(path.clone());
                    self.files.insert(self.next_id, path);
                    let (from, to) = (
                        Address::from_uri_text(&m.from),
                        Address::from_uri_text(&m.to),
                    );
                    session.queue(self.next_id, &from, &to, parts);
                }
                Err(reason) => maildir::fail(&c.spool, &path, &reason),
            }
        }
    }

    /// Translates a text from the centre and hands it to the sink; its deliver_sm are
    /// answered when the handle is acknowledged (or dropped: "retry later").
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &mut self,
        session: &mut Session,
        source: String,
        dest: String,
        reference: u16,
        body: String,
        seqs: Vec<u32>,
        ack_tx: &mpsc::UnboundedSender<AckMsg>,
    ) -> Result<()> {
        let c = self.config;
        let routed = match &c.read {
            Some(m) => maildir::translate_inbound(
                self.router,
                &m.map_from,
                &m.map_to,
                &c.gateway,
                &source,
                &dest,
            ),
            None => Err("the centre has no read maps".into()),
        };
        let (from, to) = match routed {
            Ok(x) => x,
            Err(reason) => {
                tracing::warn!(
                    "smpp {}: message from {source} to {dest} refused: {reason}",
                    c.name
                );
                return session.answer(&seqs, status::INVDSTADR);
            }
        };
        let id = format!(
            "smpp-{:016x}",
            fnv(&[
                c.name.as_bytes(),
                source.as_bytes(),
                dest.as_bytes(),
                &reference.to_be_bytes(),
                body.as_bytes(),
            ])
        );
        let message = Message {
            from,
            to,
            text: body,
            id: Some(id),
            ..Message::default()
        };
        let (tx, generation) = (ack_tx.clone(), self.generation);
        let ack = AckHandle::callback(move |outcome| {
            let st = match outcome {
                AckOutcome::Delivered => status::OK,
                AckOutcome::Later => status::X_T_APPN,
                AckOutcome::Refused => status::X_R_APPN,
            };
            tx.send((generation, seqs, st))
                .map_err(|_| Error::Smpp("session gone".into()))
        });
        // Full or closed: the handle is dropped with the error, which answers "retry later".
        let _ = self.sink.try_send(Inbound { message, ack });
        Ok(())
    }
}

/// FNV-1a over the fields (with separators): a stable id across restarts.
fn fnv(fields: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in fields {
        for &b in f.iter().chain(std::iter::once(&0xFFu8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    h
}
