//! Text messages in cig-server: `cig_msg::service` (read and write mailboxes, SMPP centres)
//! joined to the secure side over the UMSG driver, with `cig_gateway::messaging` for the
//! conversions and the MSG_ACK table.
//!
//! - **Secure → mailboxes / SMS / SIP**: the UMSG driver runs with deferred acknowledgements.
//!   A message for the gateway goes to a writer thread that delivers what queued up as one
//!   batch (`Outbound::deliver_batch`: per mailbox one group commit; SMPP copies into the
//!   centre's durable spool) to every write mailbox and centre whose maps translate both URIs,
//!   and, with SIP messaging on, as a SIP MESSAGE when the call maps route it. Its MSG_ACK goes
//!   to the switch only when every destination has answered: delivered once one copy is
//!   durable (fsynced) or a SIP 2xx arrived; released (no MSG_ACK: the switch keeps it and
//!   re-sends it, the copy is made again) when a destination failed for a reason that may pass
//!   (I/O error, SIP 408/480/5xx, no answer); refused when nothing routes it or SIP refused it
//!   for good. A gateway killed before the copy was durable gets the message again from the
//!   switch after it registers.
//! - **Mailboxes / SMS → secure**: each [`Inbound`] is sent as a UMSG message whose FROM is the
//!   translated From (the gateway's identity, with an extension when the maps give one:
//!   `tel:+8888;101`) and whose id comes from the source message (`Message::stable_id`: the
//!   same for every retry and after a restart, so the switch and the recipient drop
//!   duplicates). Its source is confirmed (the file deleted, the deliver_sm answered) only
//!   when the switch's MSG_ACK says stored or delivered. A timeout or a switch that is not
//!   connected leaves the message at its source, which offers it again at its next scan
//!   (every [`SCAN_EVERY`]). A refusal is retried the same way until the message was refused
//!   [`Options::max_refusals`] times; then, as a message that cannot be encrypted to its
//!   recipient, it is given up (`AckHandle::refused`: the mailbox's `failed/`, or a permanent
//!   error for the deliver_sm) with a warning in cig.log.
//! - **SIP MESSAGE → secure** (the sip interface's `messaging true`): routed with the sip
//!   interface's maps and answered 202 only once the switch accepted it (480 when it did not;
//!   404 without a route or when it cannot be encrypted, 415 for a body other than
//!   text/plain).
//!
//! cig.log lines come back to the main loop on a channel (it owns the log files).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cig_core::conf::Config;
use cig_gateway::logfmt::Level;
use cig_gateway::messaging::{self as gw, ACK_TIMEOUT, Outcome, Pending};
use cig_msg::format::Message;
use cig_msg::service::{self, AckHandle, AckOutcome, Inbound, Outbound, Settings};
use cig_route::Router;
use cig_sip::digest::Credentials;
use cig_sip::driver::{self as sipdrv, SipHandle};
use cig_sip::message::{NameAddr, Uri};
use cig_sip::ua::{Event as SipEvent, MessageHandle, OutgoingMessage, literal_target};
use cig_umsg::driver::client::ClientHandle;
use cig_umsg::message::{AckStatus, MessageId, Received};
use tokio::sync::mpsc;

/// Full scans of the read mailboxes besides inotify (and the retry interval of messages the
/// switch did not take).
pub const SCAN_EVERY: Duration = Duration::from_secs(10);

/// Most messages written in one group commit.
pub const BATCH: usize = 64;

/// A cig.log line: level and text (module `Message`).
pub type LogLine = (Level, String);

/// Refusals of one message counted at the most (beyond, the counts start afresh).
const REFUSAL_COUNTS: usize = 65_536;

/// Settings from cig-server's command line.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// A message from a mailbox or centre refused this often by the switch or its recipient
    /// (MSG_ACK refused) is given up: `failed/`, or a permanent error to the centre.
    pub max_refusals: u32,
}

/// How the writer thread's copy of a message from a secure user went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Written {
    /// At least one copy is durable.
    Kept,
    /// No write mailbox or centre translates both URIs.
    NoRoute,
    /// A copy could not be written (the message is offered again).
    Failed,
}

/// A message from a secure user whose destinations have not all answered.
#[derive(Debug)]
struct Fanout {
    what: String,
    /// Destinations still to answer (the writer, and SIP when routed).
    waiting: u8,
    /// One destination has it.
    kept: bool,
    /// One destination failed for a reason that may pass.
    retry: bool,
}

/// What the main loop hands over.
#[derive(Debug)]
enum In {
    FromSecure(Box<Received>),
    Acked(MessageId, AckStatus),
    Sip(Box<SipEvent>),
}

/// The main loop's handle on the messaging task.
#[derive(Debug, Clone)]
pub struct Messaging {
    tx: mpsc::UnboundedSender<In>,
}

impl Messaging {
    /// A text message from a secure user (UMSG `Event::Message`).
    pub fn received(&self, m: Received) {
        let _ = self.tx.send(In::FromSecure(Box::new(m)));
    }

    /// A MSG_ACK for a message the gateway sent (UMSG `Event::Acked`).
    pub fn acked(&self, id: MessageId, status: AckStatus) {
        let _ = self.tx.send(In::Acked(id, status));
    }

    /// A SIP MESSAGE event (`IncomingMessage`, `MessageResult`).
    pub fn sip_event(&self, ev: SipEvent) {
        let _ = self.tx.send(In::Sip(Box::new(ev)));
    }
}

/// Starts the mailbox readers, the centre clients, the writer thread and the task joining
/// them to `umsg`. `gateway` is the gateway's identity (`tel:+8888`); SMPP spools live under
/// `spool_root`. With `sip` (the sip interface has `messaging true`) messages also go to and
/// come from SIP. The task stops when every [`Messaging`] handle is dropped.
pub fn start(
    config: &Config,
    gateway: &str,
    spool_root: &Path,
    umsg: ClientHandle,
    sip: Option<SipHandle>,
    options: Options,
) -> Result<(Messaging, mpsc::UnboundedReceiver<LogLine>), String> {
    let router = Arc::new(Router::from_config(config).map_err(|e| e.to_string())?);
    let (sink_tx, sink_rx) = mpsc::channel(64);
    let settings = Settings {
        gateway: gateway.to_owned(),
        spool_root: spool_root.to_path_buf(),
        scan_every: SCAN_EVERY,
    };
    let service = service::Messaging::start(config, Arc::clone(&router), &settings, sink_tx)
        .map_err(|e| format!("messaging: {e}"))?;
    let (log_tx, log_rx) = mpsc::unbounded_channel();
    let (written_tx, written_rx) = mpsc::unbounded_channel();
    let writer = spawn_writer(service.outbound().clone(), log_tx.clone(), written_tx)
        .map_err(|e| format!("messaging writer thread: {e}"))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let worker = Worker {
        _service: service,
        umsg,
        pending: Pending::new(ACK_TIMEOUT),
        refusals: HashMap::new(),
        options,
        fanout: HashMap::new(),
        router,
        config: config.clone(),
        sip,
        sip_sent: HashMap::new(),
        writer,
        log: log_tx,
    };
    tokio::spawn(worker.run(rx, sink_rx, written_rx));
    Ok((Messaging { tx }, log_rx))
}

/// The thread that makes messages from secure users durable: it takes whatever queued up
/// (at most [`BATCH`]), delivers it as one batch and reports each message's outcome on `done`
/// once its copies are durable.
fn spawn_writer(
    outbound: Outbound,
    log: mpsc::UnboundedSender<LogLine>,
    done: mpsc::UnboundedSender<(MessageId, Written)>,
) -> std::io::Result<std::sync::mpsc::Sender<(MessageId, Message)>> {
    let (tx, rx) = std::sync::mpsc::channel::<(MessageId, Message)>();
    std::thread::Builder::new()
        .name("cig-msg-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(m) => batch.push(m),
                        Err(_) => break,
                    }
                }
                let msgs: Vec<Message> = batch.iter().map(|(_, m)| m.clone()).collect();
                for ((id, m), r) in batch.iter().zip(outbound.deliver_batch(&msgs)) {
                    let hex = gw::id_hex(id);
                    let (written, line) = match r {
                        Ok(d) if d.is_empty() => (
                            Written::NoRoute,
                            (
                                Level::Info,
                                format!(
                                    "message {hex} {} -> {}: no write mailbox or message centre translates both",
                                    m.from, m.to
                                ),
                            ),
                        ),
                        Ok(d) => (
                            Written::Kept,
                            (
                                Level::Info,
                                format!(
                                    "message {hex} {} -> {}: written to {} mailbox(es), spooled for {} centre(s)",
                                    m.from,
                                    m.to,
                                    d.files.len(),
                                    d.spooled.len()
                                ),
                            ),
                        ),
                        Err(e) => (
                            Written::Failed,
                            (
                                Level::Warn,
                                format!(
                                    "message {hex} {} -> {}: not written, left to the switch to send again: {e}",
                                    m.from, m.to
                                ),
                            ),
                        ),
                    };
                    let _ = log.send(line);
                    let _ = done.send((*id, written));
                }
            }
        })?;
    Ok(tx)
}

/// A message sent to a secure user, waiting for its MSG_ACK.
struct Sent {
    ack: AckHandle,
    what: String,
}

struct Worker {
    /// Keeps the readers and centre clients running.
    _service: service::Messaging,
    umsg: ClientHandle,
    pending: Pending<Sent>,
    /// Refusals so far of messages from the sources, by UMSG id.
    refusals: HashMap<MessageId, u32>,
    options: Options,
    /// Messages from secure users awaiting their destinations.
    fanout: HashMap<MessageId, Fanout>,
    router: Arc<Router>,
    /// For the `auth` credentials of SIP MESSAGE routes.
    config: Config,
    sip: Option<SipHandle>,
    /// MESSAGEs sent to SIP awaiting their final status: the UMSG id and what to log.
    sip_sent: HashMap<MessageHandle, (MessageId, String)>,
    writer: std::sync::mpsc::Sender<(MessageId, Message)>,
    log: mpsc::UnboundedSender<LogLine>,
}

impl Worker {
    fn log(&self, level: Level, text: String) {
        let _ = self.log.send((level, text));
    }

    async fn run(
        mut self,
        mut main: mpsc::UnboundedReceiver<In>,
        mut sources: mpsc::Receiver<Inbound>,
        mut written: mpsc::UnboundedReceiver<(MessageId, Written)>,
    ) {
        loop {
            let deadline = self.pending.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(t) => {
                        let d = t.duration_since(SystemTime::now()).unwrap_or_default();
                        tokio::time::sleep(d).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = main.recv() => match ev {
                    Some(In::FromSecure(m)) => self.secure_message(&m).await,
                    Some(In::Sip(ev)) => self.on_sip(*ev).await,
                    Some(In::Acked(id, status)) => self.acked(&id, status),
                    None => return,
                },
                Some(inbound) = sources.recv(), if !self.pending.is_full() => {
                    self.send_to_secure(inbound);
                }
                Some((id, w)) = written.recv() => self.answered(&id, w),
                () = sleep => {
                    for sent in self.pending.handle_timeout(SystemTime::now()) {
                        self.log(Level::Warn, format!(
                            "{}: no MSG_ACK within {} s, kept for a later try",
                            sent.what, ACK_TIMEOUT.as_secs()));
                    }
                }
            }
        }
    }

    /// A message from a secure user: to the writer thread, and to SIP when routed there. Its
    /// MSG_ACK waits for their answers ([`Self::answered`]).
    async fn secure_message(&mut self, r: &Received) {
        let what = format!("message {} {} -> {}", gw::id_hex(&r.id), r.from, r.to);
        self.fanout.insert(
            r.id,
            Fanout {
                what,
                waiting: 1,
                kept: false,
                retry: false,
            },
        );
        if self.send_to_sip(r).await
            && let Some(f) = self.fanout.get_mut(&r.id)
        {
            f.waiting += 1;
        }
        let m = gw::from_secure(r, SystemTime::now());
        if self.writer.send((r.id, m)).is_err() {
            self.log(
                Level::Warn,
                format!(
                    "message {} from {}: the writer thread is gone",
                    gw::id_hex(&r.id),
                    r.from
                ),
            );
            self.answered(&r.id, Written::Failed);
        }
    }

    /// One destination of a message from a secure user answered; once all have, the MSG_ACK
    /// (or none: the switch sends it again) goes to the switch.
    fn answered(&mut self, id: &MessageId, w: Written) {
        let Some(f) = self.fanout.get_mut(id) else {
            return;
        };
        f.waiting = f.waiting.saturating_sub(1);
        f.kept |= w == Written::Kept;
        f.retry |= w == Written::Failed;
        if f.waiting > 0 {
            return;
        }
        let Some(f) = self.fanout.remove(id) else {
            return;
        };
        if f.kept {
            self.umsg.ack_message(*id, AckStatus::Delivered);
            self.log(Level::Debug, format!("{}: acknowledged", f.what));
        } else if f.retry {
            self.umsg.release_message(*id);
            self.log(
                Level::Info,
                format!("{}: not acknowledged, the switch sends it again", f.what),
            );
        } else {
            self.umsg.ack_message(*id, AckStatus::Refused);
            self.log(
                Level::Info,
                format!("{}: refused: no destination took it", f.what),
            );
        }
    }

    /// A message from a secure user as a SIP MESSAGE, when SIP messaging is on and the call
    /// maps route it; whether its final status will come ([`Self::on_sip`]).
    async fn send_to_sip(&mut self, r: &Received) -> bool {
        let Some(sip) = self.sip.clone() else {
            return false;
        };
        let what = format!("message {} {} -> {}", gw::id_hex(&r.id), r.from, r.to);
        let routed = match gw::route_to_sip(&self.router, &r.from, &r.to) {
            Ok(routed) => routed,
            Err(e) => {
                self.log(Level::Debug, format!("{what}: not for SIP: {e}"));
                return false;
            }
        };
        let credentials = routed
            .auth
            .as_deref()
            .and_then(|a| self.config.auth(a))
            .map(|a| Credentials::new(a.user.clone(), a.password.expose().to_owned()));
        let (Ok(from), Ok(to)) = (
            Uri::parse(routed.from.as_str()),
            Uri::parse(routed.to.as_str()),
        ) else {
            let text = format!(
                "{what}: routed to {} -> {}: not SIP URIs",
                routed.from, routed.to
            );
            self.log(Level::Warn, text);
            return false;
        };
        let target = match literal_target(&to) {
            Some(t) => Ok(t),
            None => sipdrv::resolve(&to).await,
        };
        let sent = match target {
            Ok(target) => {
                sip.send_message(OutgoingMessage {
                    target,
                    from: NameAddr::new(from),
                    to: NameAddr::new(to),
                    content_type: "text/plain;charset=UTF-8".to_owned(),
                    body: r.body.text.clone().into(),
                    credentials,
                })
                .await
            }
            Err(e) => Err(e),
        };
        let what = format!("{what}: SIP MESSAGE {} -> {}", routed.from, routed.to);
        match sent {
            Ok(h) => {
                self.sip_sent.insert(h, (r.id, what));
                true
            }
            Err(e) => {
                // Not sent (no address, transport): the switch sends the message again.
                self.log(Level::Warn, format!("{what}: not sent: {e}"));
                if let Some(f) = self.fanout.get_mut(&r.id) {
                    f.retry = true;
                }
                false
            }
        }
    }

    /// A SIP MESSAGE arrived, or one we sent got its final status.
    async fn on_sip(&mut self, ev: SipEvent) {
        match ev {
            SipEvent::MessageResult { message, status } => {
                let Some((id, what)) = self.sip_sent.remove(&message) else {
                    return;
                };
                let (level, written) = match status {
                    200..=299 => (Level::Info, Written::Kept),
                    // May pass: timeout, unavailable, busy, server errors.
                    408 | 480 | 486 | 500..=599 => (Level::Warn, Written::Failed),
                    _ => (Level::Warn, Written::NoRoute),
                };
                self.log(level, format!("{what}: answered {status}"));
                self.answered(&id, written);
            }
            SipEvent::IncomingMessage {
                message,
                from,
                to,
                content_type,
                body,
                ..
            } => {
                let Some(sip) = self.sip.clone() else { return };
                let (from, to) = (from.uri.to_string(), to.uri.to_string());
                let what = format!("SIP MESSAGE {from} -> {to}");
                let refuse = |status: u16, why: String| {
                    let sip = sip.clone();
                    (status, why, sip)
                };
                let outcome = if !content_type
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("text/plain")
                {
                    Err(refuse(415, format!("content type {content_type}")))
                } else {
                    match (
                        String::from_utf8(body.to_vec()),
                        gw::route_from_sip(&self.router, &from, &to),
                    ) {
                        (Err(_), _) => Err(refuse(400, "body not UTF-8".to_owned())),
                        (_, Err(e)) => Err(refuse(404, e.to_string())),
                        (Ok(text), Ok(r)) => Ok((text, r)),
                    }
                };
                match outcome {
                    Err((status, why, sip)) => {
                        self.log(Level::Info, format!("{what}: refused {status}: {why}"));
                        let _ = sip.respond_message(message, status).await;
                    }
                    Ok((text, r)) => {
                        let msg = Message {
                            from: r.from,
                            to: r.to,
                            text,
                            ..Message::default()
                        };
                        let ack = AckHandle::callback(move |outcome| {
                            let status = match outcome {
                                AckOutcome::Delivered => 202,
                                AckOutcome::Later => 480,
                                AckOutcome::Refused => 404,
                            };
                            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                                rt.spawn(async move {
                                    let _ = sip.respond_message(message, status).await;
                                });
                            }
                            Ok(())
                        });
                        self.send_to_secure(Inbound { message: msg, ack });
                    }
                }
            }
            _ => {}
        }
    }

    fn send_to_secure(&mut self, inbound: Inbound) {
        let Inbound { message, ack } = inbound;
        let body = gw::to_secure_body(&message);
        let (from, to) = (message.from.clone(), message.to.clone());
        // The same id for every offer of the same source message (retries, restarts).
        let id = message.stable_id().unwrap_or_else(|| {
            let mut id = [0u8; 16];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
            id
        });
        let what = format!(
            "message {} {from} -> {to}",
            message.id.as_deref().unwrap_or("-"),
        );
        let sent = self.umsg.with(|s, now| {
            s.messenger
                .send_as(&from, &to, id, &body, now, &mut rand_core::OsRng)
                .map(|frame| s.send(frame))
        });
        match sent {
            None => {
                self.log(
                    Level::Debug,
                    format!("{what}: the switch is not connected, kept for a later try"),
                );
                drop(ack);
            }
            Some(Err(e)) => {
                let reason = format!("cannot be sent to {to}: {e}");
                self.log(Level::Warn, format!("{what}: {reason}"));
                if let Err(e) = ack.refused(&reason) {
                    self.log(Level::Warn, format!("{what}: {e}"));
                }
            }
            Some(Ok(())) => {
                self.log(Level::Debug, format!("{what}: sent as {}", gw::id_hex(&id)));
                self.pending
                    .insert(id, Sent { ack, what }, SystemTime::now());
            }
        }
    }

    fn acked(&mut self, id: &MessageId, status: AckStatus) {
        let Some((sent, outcome)) = self.pending.on_ack(id, status) else {
            return;
        };
        match outcome {
            Outcome::Accepted => {
                self.refusals.remove(id);
                let text = match sent.ack.delivered() {
                    Ok(()) => format!("{}: accepted by the switch ({status:?})", sent.what),
                    Err(e) => format!("{}: accepted, but the source kept it: {e}", sent.what),
                };
                self.log(Level::Info, text);
            }
            Outcome::Refused => {
                if self.refusals.len() >= REFUSAL_COUNTS {
                    self.refusals.clear();
                }
                let n = self.refusals.entry(*id).or_default();
                *n += 1;
                if *n < self.options.max_refusals {
                    let text = format!(
                        "{}: refused by the switch ({n} of {}), kept for a later try",
                        sent.what, self.options.max_refusals
                    );
                    self.log(Level::Warn, text);
                    return;
                }
                self.refusals.remove(id);
                let reason = format!(
                    "refused by the switch or its recipient {} times",
                    self.options.max_refusals
                );
                self.log(Level::Warn, format!("{}: {reason}: given up", sent.what));
                if let Err(e) = sent.ack.refused(&reason) {
                    self.log(Level::Warn, format!("{}: {e}", sent.what));
                }
            }
        }
    }
}
