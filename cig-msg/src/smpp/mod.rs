//! SMPP 3.4 message centres (the manual's `message_centers { smpp { … } }`): an ESME
//! transceiver per centre with a durable outbound spool.
//!
//! [`pdu`] and [`text`] are sans-IO (PDU codec; GSM 03.38 / UCS-2, splitting, reassembly);
//! this module is the tokio driver: bind_transceiver (interface version 3.4), enquire_link
//! keepalive, reconnect with back-off (1 s doubling to 30 s), a window of outstanding
//! submit_sm, ESME_RTHROTTLED / ESME_RMSGQFUL answered by pausing (50 ms doubling to 2 s) and
//! resending, deliver_sm reassembly (parts missing after the timeout are marked
//! `[part N missing]`), delivery receipts logged and answered but not forwarded.
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
//! the sink is full), so the centre keeps it until the switch has it. The message id is a
//! hash of centre, addresses, reference and text, stable across redeliveries.

pub mod pdu;
pub mod text;

use std::collections::{HashMap, HashSet, VecDeque};
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
use crate::service::{AckHandle, Inbound};
use crate::{Error, Result};
use pdu::{Address, Frame, Pdu, Sm, status};

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

/// Reconnects forever with back-off.
async fn run(
    config: Arc<CentreConfig>,
    router: Arc<Router>,
    sink: mpsc::Sender<Inbound>,
    wake: Arc<Notify>,
) {
    let mut backoff = Duration::from_secs(1);
    let mut generation = 0u64;
    loop {
        generation += 1;
        let mut session = Session::new(&config, &router, &sink, generation);
        match session.run(&wake).await {
            Ok(()) => return,
            Err(e) => {
                if session.bound {
                    backoff = Duration::from_secs(1);
                }
                tracing::warn!("smpp {}: {e}; reconnecting in {backoff:?}", config.name);
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// One submit_sm waiting to go out.
struct Pending {
    file: PathBuf,
    sm: Sm,
}

/// Acknowledgements from inbound handles: (generation, seqs, status).
type AckMsg = (u64, Vec<u32>, u32);

struct Session<'a> {
    config: &'a CentreConfig,
    router: &'a Router,
    sink: &'a mpsc::Sender<Inbound>,
    generation: u64,
    bound: bool,
    seq: u32,
    queue: VecDeque<Pending>,
    outstanding: HashMap<u32, Pending>,
    remaining: HashMap<PathBuf, usize>,
    known: HashSet<PathBuf>,
    throttle: Duration,
    throttled_until: Option<Instant>,
    reassembly: text::Reassembly<u32>,
    started: Instant,
    out: Vec<u8>,
}

static REFERENCE: AtomicU8 = AtomicU8::new(0);

impl<'a> Session<'a> {
    fn new(
        config: &'a CentreConfig,
        router: &'a Router,
        sink: &'a mpsc::Sender<Inbound>,
        generation: u64,
    ) -> Self {
        Session {
            config,
            router,
            sink,
            generation,
            bound: false,
            seq: 0,
            queue: VecDeque::new(),
            outstanding: HashMap::new(),
            remaining: HashMap::new(),
            known: HashSet::new(),
            throttle: Duration::from_millis(50),
            throttled_until: None,
            reassembly: text::Reassembly::default(),
            started: Instant::now(),
            out: Vec::new(),
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = if self.seq >= 0x7FFF_FFFF {
            1
        } else {
            self.seq + 1
        };
        self.seq
    }

    fn push(&mut self, status: u32, seq: u32, pdu: Pdu) -> Result<()> {
        pdu::encode(&Frame { status, seq, pdu }, &mut self.out)
    }

    async fn run(&mut self, wake: &Notify) -> Result<()> {
        let c = self.config;
        let addr = (c.host.as_str(), c.port);
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
            .await
            .map_err(|_| Error::Smpp("connect timed out".into()))?
            .map_err(|e| Error::Smpp(format!("connect: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (mut rd, mut wr) = stream.into_split();
        let seq = self.next_seq();
        self.push(
            0,
            seq,
            Pdu::BindTransceiver {
                system_id: c.system_id.clone(),
                password: c.password.expose().to_owned(),
                system_type: String::new(),
            },
        )?;
        let mut buf = Vec::with_capacity(8192);
        let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<AckMsg>();
        let mut enquire = tokio::time::interval(c.enquire_every);
        enquire.tick().await;
        let mut awaiting_enquire: Option<Instant> = None;
        let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
        let mut spool_scan = tokio::time::interval(Duration::from_secs(5));
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            if self.bound {
                self.fill_window()?;
            }
            if !self.out.is_empty() {
                wr.write_all(&self.out)
                    .await
                    .map_err(|e| Error::Smpp(format!("write: {e}")))?;
                self.out.clear();
            }
            let throttle_sleep = async {
                match self.throttled_until {
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
                    buf.extend_from_slice(&chunk[..n]);
                    let mut used = 0;
                    while let Some((frame, len)) = pdu::decode(&buf[used..])? {
                        used += len;
                        if matches!(frame.pdu, Pdu::EnquireLinkResp) {
                            awaiting_enquire = None;
                        }
                        self.handle(frame, &ack_tx)?;
                    }
                    buf.drain(..used);
                }
                () = throttle_sleep => self.throttled_until = None,
                () = wake.notified(), if self.bound => self.load_spool(),
                _ = spool_scan.tick(), if self.bound => self.load_spool(),
                Some((generation, seqs, st)) = ack_rx.recv() => {
                    if generation == self.generation {
                        for seq in seqs {
                            self.push(st, seq, Pdu::DeliverSmResp)?;
                        }
                    }
                }
                _ = enquire.tick(), if self.bound => {
                    if awaiting_enquire.is_some_and(|t| t.elapsed() >= c.enquire_every) {
                        return Err(Error::Smpp("no enquire_link_resp".into()));
                    }
                    awaiting_enquire.get_or_insert_with(Instant::now);
                    let seq = self.next_seq();
                    self.push(0, seq, Pdu::EnquireLink)?;
                }
                _ = housekeeping.tick() => {
                    if !self.bound && self.started.elapsed() > Duration::from_secs(10) {
                        return Err(Error::Smpp("no bind_transceiver_resp".into()));
                    }
                    let now = self.started.elapsed().as_secs();
                    let deadline = now.saturating_sub(c.reassembly_timeout.as_secs());
                    for a in self.reassembly.expire(deadline) {
                        tracing::warn!("smpp {}: concatenated message {} from {} incomplete after {:?}", c.name, a.reference, a.source, c.reassembly_timeout);
                        self.forward(a.source, a.dest, a.reference, a.text, a.tags, &ack_tx)?;
                    }
                }
            }
        }
    }

    /// Queues spool files not yet queued in this session.
    fn load_spool(&mut self) {
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
            let parts = parsed.and_then(|m| {
                let reference = REFERENCE.fetch_add(1, Ordering::Relaxed);
                let parts = text::split(&m.text, reference).ok_or("text too long for SMS")?;
                Ok((m, parts))
            });
            let (m, parts) = match parts {
                Ok(x) => x,
                Err(reason) => {
                    maildir::fail(&c.spool, &path, &reason);
                    continue;
                }
            };
            self.known.insert(path.clone());
            self.remaining.insert(path.clone(), parts.len());
            for p in parts {
                self.queue.push_back(Pending {
                    file: path.clone(),
                    sm: Sm {
                        source: Address::from_uri_text(&m.from),
                        dest: Address::from_uri_text(&m.to),
                        esm_class: p.esm_class,
                        data_coding: p.data_coding,
                        short_message: p.short_message,
                        ..Sm::default()
                    },
                });
            }
        }
    }

    fn fill_window(&mut self) -> Result<()> {
        if self.throttled_until.is_some() {
            return Ok(());
        }
        while self.outstanding.len() < self.config.window.max(1) {
            let Some(p) = self.queue.pop_front() else {
                break;
            };
            if !self.remaining.contains_key(&p.file) {
                continue; // the message failed meanwhile
            }
            let seq = self.next_seq();
            self.push(0, seq, Pdu::SubmitSm(Box::new(p.sm.clone())))?;
            self.outstanding.insert(seq, p);
        }
        Ok(())
    }

    fn handle(&mut self, frame: Frame, ack_tx: &mpsc::UnboundedSender<AckMsg>) -> Result<()> {
        let c = self.config;
        match frame.pdu {
            Pdu::BindTransceiverResp { .. } if !self.bound => {
                if frame.status != status::OK {
                    return Err(Error::Smpp(format!(
                        "bind refused, status {:#x}",
                        frame.status
                    )));
                }
                self.bound = true;
                tracing::info!("smpp {}: bound as transceiver", c.name);
                self.load_spool();
            }
            Pdu::SubmitSmResp { .. } | Pdu::GenericNack => {
                let Some(p) = self.outstanding.remove(&frame.seq) else {
                    return Ok(());
                };
                match frame.status {
                    status::OK => {
                        self.throttle = Duration::from_millis(50);
                        if let Some(n) = self.remaining.get_mut(&p.file) {
                            *n -= 1;
                            if *n == 0 {
                                self.remaining.remove(&p.file);
                                self.known.remove(&p.file);
                                if let Err(e) = std::fs::remove_file(&p.file) {
                                    tracing::error!(
                                        "smpp {}: cannot delete spool file {}: {e}",
                                        c.name,
                                        p.file.display()
                                    );
                                }
                            }
                        }
                    }
                    status::THROTTLED | status::MSGQFUL => {
                        tracing::debug!("smpp {}: throttled, pausing {:?}", c.name, self.throttle);
                        self.queue.push_front(p);
                        self.throttled_until = Some(Instant::now() + self.throttle);
                        self.throttle = (self.throttle * 2).min(Duration::from_secs(2));
                    }
                    other => {
                        if self.remaining.remove(&p.file).is_some() {
                            self.known.remove(&p.file);
                            maildir::fail(
                                &c.spool,
                                &p.file,
                                &format!("submit_sm refused with status {other:#x}"),
                            );
                        }
                    }
                }
            }
            Pdu::DeliverSm(sm) => self.deliver_sm(frame.seq, *sm, ack_tx)?,
            Pdu::EnquireLink => self.push(0, frame.seq, Pdu::EnquireLinkResp)?,
            Pdu::Unbind => {
                self.push(0, frame.seq, Pdu::UnbindResp)?;
                return Err(Error::Smpp("unbound by the centre".into()));
            }
            Pdu::EnquireLinkResp
            | Pdu::UnbindResp
            | Pdu::DeliverSmResp
            | Pdu::BindTransceiverResp { .. } => {}
            Pdu::BindTransceiver { .. } | Pdu::SubmitSm(_) | Pdu::Other { .. } => {
                self.push(status::INVALID_CMD, frame.seq, Pdu::GenericNack)?;
            }
        }
        Ok(())
    }

    fn deliver_sm(
        &mut self,
        seq: u32,
        sm: Sm,
        ack_tx: &mpsc::UnboundedSender<AckMsg>,
    ) -> Result<()> {
        let c = self.config;
        let payload: &[u8] = if sm.short_message.is_empty() {
            sm.tlvs
                .iter()
                .find(|(t, _)| *t == pdu::TLV_MESSAGE_PAYLOAD)
                .map_or(&[], |(_, v)| v.as_slice())
        } else {
            &sm.short_message
        };
        if sm.esm_class & 0x3C != 0 {
            // A delivery receipt or other MC notification: log, answer, never forward.
            let receipt = String::from_utf8_lossy(payload);
            tracing::info!(
                "smpp {}: delivery receipt from {}: {receipt}",
                c.name,
                sm.source.to_text()
            );
            return self.push(status::OK, seq, Pdu::DeliverSmResp);
        }
        let (concat, body) = if sm.esm_class & pdu::ESM_UDHI != 0 {
            match text::parse_udh(payload) {
                Some(x) => x,
                None => return self.push(status::SYSERR, seq, Pdu::DeliverSmResp),
            }
        } else {
            (None, payload)
        };
        let body = text::decode(sm.data_coding, body);
        let (source, dest) = (sm.source.to_text(), sm.dest.to_text());
        match concat {
            Some((reference, total, part)) if total > 1 => {
                let now = self.started.elapsed().as_secs();
                if let Some(a) = self
                    .reassembly
                    .add(&source, &dest, reference, total, part, body, seq, now)
                {
                    self.forward(a.source, a.dest, a.reference, a.text, a.tags, ack_tx)?;
                }
                Ok(())
            }
            _ => self.forward(source, dest, 0, body, vec![seq], ack_tx),
        }
    }

    /// Translates and hands a complete text to the sink; answers its parts when acknowledged.
    fn forward(
        &mut self,
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
                for seq in seqs {
                    self.push(0x0B, seq, Pdu::DeliverSmResp)?; // ESME_RINVDSTADR
                }
                return Ok(());
            }
        };
        let id = format!(
            "smpp-{:016x}",
            fnv(&[
                c.name.as_bytes(),
                source.as_bytes(),
                dest.as_bytes(),
                &reference.to_be_bytes(),
                body.as_bytes()
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
        let held = seqs.clone();
        let ack = AckHandle::callback(move |ok| {
            let st = if ok { status::OK } else { status::X_T_APPN };
            tx.send((generation, held, st))
                .map_err(|_| Error::Smpp("session gone".into()))
        });
        if let Err(e) = self.sink.try_send(Inbound { message, ack }) {
            // Full or closed: dropping the handle answers "retry later".
            drop(e);
        }
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
