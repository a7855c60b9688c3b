//! Text messages in cig-server: `cig_msg::service` (read and write mailboxes, SMPP centres)
//! joined to the secure side over the UMSG driver, with `cig_gateway::messaging` for the
//! conversions and the MSG_ACK table.
//!
//! - **Secure → mailboxes / SMS**: a UMSG message for the gateway goes to a writer thread that
//!   delivers what queued up as one batch (`Outbound::deliver_batch`: per mailbox one group
//!   commit) to every write mailbox and centre whose maps translate both URIs.
//! - **Mailboxes / SMS → secure**: each [`Inbound`] is sent as a UMSG message from the
//!   gateway's identity; its source is confirmed (the file deleted, the deliver_sm answered)
//!   only when the switch's MSG_ACK says stored or delivered. A refusal, a timeout or a switch
//!   that is not connected leaves the message at its source, which offers it again at its next
//!   scan (every [`SCAN_EVERY`]). A message that cannot be encrypted to its recipient goes to
//!   the mailbox's `failed/`.
//!
//! - **SIP MESSAGE** (the sip interface's `messaging true`): a message from a secure user is
//!   also sent as a MESSAGE (RFC 3428) when the call maps route it (tel interface's extension
//!   maps for To, the sip interface's source maps for From; digest credentials from the
//!   entry's `auth`); a MESSAGE from the SIP side is routed with the sip interface's maps and
//!   answered 202 only once the switch accepted it (480 when it did not; 404 without a route,
//!   415 for a body other than text/plain).
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
use cig_msg::service::{self, AckHandle, Inbound, Outbound, Settings};
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
    let writer = spawn_writer(service.outbound().clone(), log_tx.clone())
        .map_err(|e| format!("messaging writer thread: {e}"))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let worker = Worker {
        _service: service,
        umsg,
        pending: Pending::new(ACK_TIMEOUT),
        router,
        config: config.clone(),
        sip,
        sip_sent: HashMap::new(),
        writer,
        log: log_tx,
    };
    tokio::spawn(worker.run(rx, sink_rx));
    Ok((Messaging { tx }, log_rx))
}

/// The thread that makes messages from secure users durable: it takes whatever queued up
/// (at most [`BATCH`]) and delivers it as one batch.
fn spawn_writer(
    outbound: Outbound,
    log: mpsc::UnboundedSender<LogLine>,
) -> std::io::Result<std::sync::mpsc::Sender<Message>> {
    let (tx, rx) = std::sync::mpsc::channel::<Message>();
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
                for (m, r) in batch.iter().zip(outbound.deliver_batch(&batch)) {
                    let id = m.id.as_deref().unwrap_or("-");
                    let line = match r {
                        Ok(d) if d.is_empty() => (
                            Level::Info,
                            format!(
                                "message {id} {} -> {}: no write mailbox or message centre translates both",
                                m.from, m.to
                            ),
                        ),
                        Ok(d) => (
                            Level::Info,
                            format!(
                                "message {id} {} -> {}: written to {} mailbox(es), spooled for {} centre(s)",
                                m.from,
                                m.to,
                                d.files.len(),
                                d.spooled.len()
                            ),
                        ),
                        Err(e) => (
                            Level::Warn,
                            format!("message {id} {} -> {}: not written: {e}", m.from, m.to),
                        ),
                    };
                    let _ = log.send(line);
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
    router: Arc<Router>,
    /// For the `auth` credentials of SIP MESSAGE routes.
    config: Config,
    sip: Option<SipHandle>,
    /// MESSAGEs sent to SIP awaiting their final status.
    sip_sent: HashMap<MessageHandle, String>,
    writer: std::sync::mpsc::Sender<Message>,
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
                    Some(In::FromSecure(m)) => {
                        self.write_out(&m);
                        self.send_to_sip(&m).await;
                    }
                    Some(In::Sip(ev)) => self.on_sip(*ev).await,
                    Some(In::Acked(id, status)) => self.acked(&id, status),
                    None => return,
                },
                Some(inbound) = sources.recv(), if !self.pending.is_full() => {
                    self.send_to_secure(inbound);
                }
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

    fn write_out(&self, r: &Received) {
        let m = gw::from_secure(r, SystemTime::now());
        if self.writer.send(m).is_err() {
            self.log(
                Level::Warn,
                format!(
                    "message {} from {}: the writer thread is gone",
                    gw::id_hex(&r.id),
                    r.from
                ),
            );
        }
    }

    /// A message from a secure user as a SIP MESSAGE, when SIP messaging is on and the call
    /// maps route it.
    async fn send_to_sip(&mut self, r: &Received) {
        let Some(sip) = self.sip.clone() else { return };
        let what = format!("message {} {} -> {}", gw::id_hex(&r.id), r.from, r.to);
        let routed = match gw::route_to_sip(&self.router, &r.from, &r.to) {
            Ok(routed) => routed,
            Err(e) => {
                self.log(Level::Debug, format!("{what}: not for SIP: {e}"));
                return;
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
            return;
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
                self.sip_sent.insert(h, what);
            }
            Err(e) => self.log(Level::Warn, format!("{what}: not sent: {e}")),
        }
    }

    /// A SIP MESSAGE arrived, or one we sent got its final status.
    async fn on_sip(&mut self, ev: SipEvent) {
        match ev {
            SipEvent::MessageResult { message, status } => {
                let what = self.sip_sent.remove(&message).unwrap_or_default();
                let level = if (200..300).contains(&status) {
                    Level::Info
                } else {
                    Level::Warn
                };
                self.log(level, format!("{what}: answered {status}"));
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
                        let ack = AckHandle::callback(move |ok| {
                            let status = if ok { 202 } else { 480 };
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
        let to = message.to.clone();
        let what = format!(
            "message {} {} -> {}",
            message.id.as_deref().unwrap_or("-"),
            message.from,
            to
        );
        let sent = self.umsg.with(|s, now| {
            s.messenger
                .send(&to, &body, now, &mut rand_core::OsRng)
                .map(|(id, frame)| {
                    s.send(frame);
                    id
                })
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
            Some(Ok(id)) => {
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
                let text = match sent.ack.delivered() {
                    Ok(()) => format!("{}: accepted by the switch ({status:?})", sent.what),
                    Err(e) => format!("{}: accepted, but the source kept it: {e}", sent.what),
                };
                self.log(Level::Info, text);
            }
            Outcome::Refused => self.log(
                Level::Warn,
                format!("{}: refused by the switch, kept for a later try", sent.what),
            ),
        }
    }
}
