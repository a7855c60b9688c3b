//! The service boundary towards the secure side (cig-server wires it to UMSG).
//!
//! **Inbound** (mailbox / SMS → secure user): a source sends [`Inbound`] values on a
//! `tokio::sync::mpsc` channel. The message's `from` is already a TEL URI of the gateway and
//! `to` the secure recipient's TEL URI. The source keeps its copy (the Maildir file, the SMPP
//! acknowledgement) until [`AckHandle::delivered`] is called, i.e. after the switch accepted the
//! message; dropping the handle instead means "not delivered", and the source offers the
//! message again later (never in a hot loop). Delivery is therefore at-least-once: the
//! message's `id` is stable across retries and restarts so the receiver can drop duplicates.
//!
//! **Outbound** (secure user → mailboxes / SMS): [`Outbound::deliver`] takes a message whose
//! `from`/`to` are the secure source and target URIs, translates them for every write
//! mailbox (its `map_from`/`map_to`) and writes a copy durably into each one whose maps both
//! translate, and likewise spools a copy for every message centre whose `write` maps both
//! translate; it returns only after every copy is on disk (fsynced). [`Delivered`] says where
//! copies went; an empty result means nothing matched (the caller reports "no route").
//!
//! [`Messaging::start`] sets all of this up from a configuration.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use std::collections::HashSet;

use std::time::Duration;

use cig_core::Config;
use cig_route::Router;
use tokio::sync::mpsc;

use crate::format::{self, Message, X_SENDER_URI};
use crate::maildir::{self, Reader, ReaderConfig};
use crate::smpp::{Centre, CentreConfig};
use crate::{Error, Result};

/// One message from a mailbox or message centre for a secure user, with its acknowledgement.
#[derive(Debug)]
pub struct Inbound {
    /// The translated message (`from`: gateway TEL URI, `to`: recipient TEL URI).
    pub message: Message,
    /// Call [`AckHandle::delivered`] once the switch accepted the message.
    pub ack: AckHandle,
}

/// What became of an [`Inbound`] message, as an [`AckHandle::callback`] learns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    /// The secure side has it ([`AckHandle::delivered`]).
    Delivered,
    /// Not delivered this time (the handle was dropped): the source offers it again later.
    Later,
    /// Never deliverable ([`AckHandle::refused`]): the source gives it up.
    Refused,
}

/// Confirms delivery of an [`Inbound`] message to its source. Dropping it unconfirmed leaves
/// the message at the source for a later retry.
#[must_use = "the source keeps the message until delivered() is called"]
pub struct AckHandle {
    kind: AckKind,
}

enum AckKind {
    /// A Maildir file: deleted on delivery; released from the in-flight set either way.
    File {
        path: PathBuf,
        in_flight: Arc<Mutex<HashSet<PathBuf>>>,
    },
    /// Any other source: called once with what became of the message.
    Callback(Option<Box<dyn FnOnce(AckOutcome) -> Result<()> + Send>>),
    Done,
}

impl std::fmt::Debug for AckHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            AckKind::File { path, .. } => write!(f, "AckHandle(file {})", path.display()),
            AckKind::Callback(_) => f.write_str("AckHandle(callback)"),
            AckKind::Done => f.write_str("AckHandle(done)"),
        }
    }
}

impl AckHandle {
    pub(crate) fn file(path: PathBuf, in_flight: Arc<Mutex<HashSet<PathBuf>>>) -> AckHandle {
        AckHandle {
            kind: AckKind::File { path, in_flight },
        }
    }

    /// A handle that runs `f` once: [`AckOutcome::Delivered`] on delivery,
    /// [`AckOutcome::Refused`] on refusal, [`AckOutcome::Later`] when dropped unconfirmed.
    pub fn callback(f: impl FnOnce(AckOutcome) -> Result<()> + Send + 'static) -> AckHandle {
        AckHandle {
            kind: AckKind::Callback(Some(Box::new(f))),
        }
    }

    /// The switch accepted the message: the source forgets it (deletes the file, …).
    pub fn delivered(mut self) -> Result<()> {
        match std::mem::replace(&mut self.kind, AckKind::Done) {
            AckKind::File { path, in_flight } => {
                let removed = match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
                        op: "delete",
                        path: path.clone(),
                        source: e,
                    }),
                    _ => Ok(()),
                };
                in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&path);
                removed
            }
            AckKind::Callback(Some(f)) => f(AckOutcome::Delivered),
            AckKind::Callback(None) | AckKind::Done => Ok(()),
        }
    }
}

impl AckHandle {
    /// The message can never be delivered (it cannot be encrypted to its recipient, or the
    /// secure side refused it too often): a Maildir file moves to the mailbox's `failed/` with
    /// `reason` (see [`maildir`]); a callback source learns [`AckOutcome::Refused`] (SMPP
    /// answers the deliver_sm with a permanent error).
    pub fn refused(mut self, reason: &str) -> Result<()> {
        match std::mem::replace(&mut self.kind, AckKind::Done) {
            AckKind::File { path, in_flight } => {
                let mailbox = path.parent().and_then(std::path::Path::parent);
                let moved = match mailbox {
                    Some(mailbox) => {
                        maildir::fail(mailbox, &path, reason);
                        Ok(())
                    }
                    None => Err(Error::Io {
                        op: "move to failed/",
                        path: path.clone(),
                        source: std::io::Error::other("not inside a mailbox"),
                    }),
                };
                in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&path);
                moved
            }
            AckKind::Callback(Some(f)) => f(AckOutcome::Refused),
            AckKind::Callback(None) | AckKind::Done => Ok(()),
        }
    }
}

impl Drop for AckHandle {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.kind, AckKind::Done) {
            AckKind::File { path, in_flight } => {
                in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&path);
            }
            AckKind::Callback(Some(f)) => {
                if let Err(e) = f(AckOutcome::Later) {
                    tracing::warn!("releasing an unacknowledged message: {e}");
                }
            }
            AckKind::Callback(None) | AckKind::Done => {}
        }
    }
}

/// Where [`Outbound::deliver`] put a message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivered {
    /// The files written, one per matching write mailbox.
    pub files: Vec<PathBuf>,
    /// The spool files written, one per matching message centre.
    pub spooled: Vec<PathBuf>,
}

impl Delivered {
    /// No destination matched.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.spooled.is_empty()
    }
}

/// One write mailbox with its translate maps.
#[derive(Clone, Debug)]
struct WriteBox {
    path: PathBuf,
    map_from: String,
    map_to: String,
}

/// Outbound delivery: secure user → every matching write mailbox and message centre.
#[derive(Clone, Debug)]
pub struct Outbound {
    router: Arc<Router>,
    boxes: Vec<WriteBox>,
    centres: Vec<Arc<Centre>>,
}

impl Outbound {
    /// The write mailboxes of `config`, translated with `router` (built from the same config).
    pub fn new(config: &Config, router: Arc<Router>) -> Outbound {
        let boxes = config
            .mailboxes
            .write
            .iter()
            .map(|m| WriteBox {
                path: m.path.clone(),
                map_from: m.maps.map_from.clone(),
                map_to: m.maps.map_to.clone(),
            })
            .collect();
        Outbound {
            router,
            boxes,
            centres: Vec::new(),
        }
    }

    /// Also delivers to these message centres (their `write` maps decide).
    pub fn with_centres(mut self, centres: Vec<Arc<Centre>>) -> Outbound {
        self.centres = centres;
        self
    }

    /// Writes `msg` (from/to: secure source and target URIs) to every write mailbox whose
    /// `map_from` translates `from` and whose `map_to` translates `to`; `X-Sender-URI` is set to
    /// the untranslated source when absent. Returns after every copy is durable.
    pub fn deliver(&self, msg: &Message) -> Result<Delivered> {
        let mut out = self.deliver_batch(std::slice::from_ref(msg));
        out.pop().unwrap_or_else(|| Ok(Delivered::default()))
    }

    /// [`Outbound::deliver`] for several messages with one group commit per write mailbox
    /// ([`maildir::deliver_batch`]: the files of the batch share one fsync of `new/`). Returns
    /// one result per message, in order, each only once its copies are durable. When a
    /// mailbox's batch fails, its messages are retried there one by one so that each gets its
    /// own result.
    pub fn deliver_batch(&self, msgs: &[Message]) -> Vec<Result<Delivered>> {
        let mut out: Vec<Result<Delivered>> =
            msgs.iter().map(|_| Ok(Delivered::default())).collect();
        for b in &self.boxes {
            let mut idx = Vec::new();
            let mut files = Vec::new();
            for (i, msg) in msgs.iter().enumerate() {
                match self.copy_for(b, msg).map(|c| format::write(&c)) {
                    Some(Ok(bytes)) => {
                        idx.push(i);
                        files.push(bytes);
                    }
                    Some(Err(e)) => out[i] = Err(e),
                    None => {}
                }
            }
            let refs: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
            let written = match maildir::deliver_batch(&b.path, &refs) {
                Ok(paths) => paths.into_iter().map(Ok).collect(),
                Err(e) if refs.len() == 1 => vec![Err(e)],
                Err(e) => {
                    tracing::warn!(
                        "mailbox {}: batch failed ({e}), one by one",
                        b.path.display()
                    );
                    refs.iter().map(|r| maildir::deliver(&b.path, r)).collect()
                }
            };
            for (i, w) in idx.into_iter().zip(written) {
                match (&mut out[i], w) {
                    (Ok(d), Ok(path)) => d.files.push(path),
                    (slot @ Ok(_), Err(e)) => *slot = Err(e),
                    (Err(_), _) => {}
                }
            }
        }
        for (i, msg) in msgs.iter().enumerate() {
            for c in &self.centres {
                let Ok(d) = &mut out[i] else { break };
                match c.deliver(msg) {
                    Ok(spooled) => d.spooled.extend(spooled),
                    Err(e) => out[i] = Err(e),
                }
            }
        }
        out
    }

    /// The copy of `msg` for write mailbox `b`, or `None` when its maps do not translate both
    /// URIs.
    fn copy_for(&self, b: &WriteBox, msg: &Message) -> Option<Message> {
        let (Ok(from), Ok(to)) = (
            self.router.translate(&b.map_from, &msg.from),
            self.router.translate(&b.map_to, &msg.to),
        ) else {
            return None;
        };
        let mut copy = msg.clone();
        copy.from = from.uri;
        copy.to = to.uri;
        if copy.header(X_SENDER_URI).is_none() {
            copy.set_header(X_SENDER_URI, msg.from.clone());
        }
        Some(copy)
    }
}

/// Settings of [`Messaging::start`] that cig.conf does not carry.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The gateway's TEL URI (`tel:+8888`): inbound senders must translate to it.
    pub gateway: String,
    /// Where the per-centre SMPP spools live (`<spool_root>/<host>_<port>/`).
    pub spool_root: PathBuf,
    /// Full scans of read mailboxes besides inotify.
    pub scan_every: Duration,
}

/// All messaging of one configuration, running: a reader per read mailbox, a client per
/// message centre (both feeding one inbound sink) and [`Outbound`] delivery to write
/// mailboxes and centres. Dropping it stops the readers and clients.
#[derive(Debug)]
pub struct Messaging {
    outbound: Outbound,
    readers: Vec<Reader>,
}

impl Messaging {
    /// Starts readers and centre clients on the current tokio runtime.
    pub fn start(
        config: &Config,
        router: Arc<Router>,
        settings: &Settings,
        sink: mpsc::Sender<Inbound>,
    ) -> Result<Messaging> {
        let readers = config
            .mailboxes
            .read
            .iter()
            .map(|m| {
                Reader::spawn(
                    ReaderConfig {
                        path: m.path.clone(),
                        map_from: m.maps.map_from.clone(),
                        map_to: m.maps.map_to.clone(),
                        gateway: settings.gateway.clone(),
                        scan_every: settings.scan_every,
                    },
                    Arc::clone(&router),
                    sink.clone(),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let centres = config
            .message_centers
            .iter()
            .map(|c| {
                let cc = CentreConfig::from_conf(c, &settings.gateway, &settings.spool_root);
                Centre::spawn(cc, Arc::clone(&router), sink.clone()).map(Arc::new)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Messaging {
            outbound: Outbound::new(config, router).with_centres(centres),
            readers,
        })
    }

    /// [`Outbound::deliver`]: durable copies in every matching write mailbox and centre spool.
    pub fn deliver(&self, msg: &Message) -> Result<Delivered> {
        self.outbound.deliver(msg)
    }

    /// [`Outbound::deliver_batch`]: the same for several messages, one group commit per
    /// mailbox.
    pub fn deliver_batch(&self, msgs: &[Message]) -> Vec<Result<Delivered>> {
        self.outbound.deliver_batch(msgs)
    }

    /// The outbound side alone (cheap to clone), e.g. for a blocking writer task.
    pub fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    /// Number of running mailbox readers.
    pub fn readers(&self) -> usize {
        self.readers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A callback handle and where its outcome lands.
    fn handle() -> (AckHandle, Arc<Mutex<Vec<AckOutcome>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&got);
        let h = AckHandle::callback(move |o| {
            sink.lock().unwrap().push(o);
            Ok(())
        });
        (h, got)
    }

    #[test]
    fn a_callback_source_learns_delivered_later_or_refused_once() {
        let (h, got) = handle();
        h.delivered().unwrap();
        let (h2, got2) = handle();
        drop(h2);
        let (h3, got3) = handle();
        h3.refused("refused 5 times").unwrap();
        assert_eq!(*got.lock().unwrap(), [AckOutcome::Delivered]);
        assert_eq!(*got2.lock().unwrap(), [AckOutcome::Later]);
        assert_eq!(*got3.lock().unwrap(), [AckOutcome::Refused]);
    }

    #[test]
    fn a_refused_file_moves_to_failed_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let mailbox = dir.path().join("mb");
        maildir::create_maildir(&mailbox).unwrap();
        let file = mailbox.join("new/1.M1P1Q1.host");
        std::fs::write(&file, b"x").unwrap();
        let in_flight = Arc::new(Mutex::new(HashSet::from([file.clone()])));
        AckHandle::file(file.clone(), Arc::clone(&in_flight))
            .refused("refused by the switch or its recipient 5 times")
            .unwrap();
        assert!(!file.exists());
        let failed = mailbox.join("failed/1.M1P1Q1.host");
        assert_eq!(std::fs::read(&failed).unwrap(), b"x");
        let reason = std::fs::read_to_string(mailbox.join("failed/1.M1P1Q1.host.reason")).unwrap();
        assert_eq!(reason, "refused by the switch or its recipient 5 times\n");
        assert!(in_flight.lock().unwrap().is_empty());
    }
}
