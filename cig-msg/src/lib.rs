//! Messaging for CIG, the interconnect gateway between a MIKEY-SAKKE secure domain and SIP,
//! Maildir and SMS: the manual's "Text message interface" (Maildir mailboxes in its message
//! format) and "SMPP interface" (SMS centres over SMPP 3.4), with the translate maps of
//! cig.conf deciding which mailbox or centre gets which message.
//!
//! A text from a secure user, written durably into every matching write mailbox:
//!
//! ```
//! use std::sync::Arc;
//! use cig_msg::format::{self, Message};
//! use cig_msg::service::Outbound;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let outbox = dir.path().join("outbox");
//! cig_msg::maildir::create_maildir(&outbox).unwrap(); // new/ cur/ tmp/, mode 2770
//! let conf = format!(
//!     r#"translate_map f {{ rule match "tel:+{{n}}" translation "sip:{{n}}@secure.com"; }}
//!        translate_map t {{ rule match "tel:+8888;{{e}}" translation "sip:{{e}}@pbx.com"; }}
//!        mailboxes {{ write {{ path "{}"; map_from translate_map f; map_to translate_map t; }} }}"#,
//!     outbox.display()
//! );
//! let config = cig_core::conf::parse(&conf, "cig.conf").unwrap().config;
//! let router = Arc::new(cig_route::Router::from_config(&config).unwrap());
//! let outbound = Outbound::new(&config, router);
//!
//! let msg = Message {
//!     from: "tel:+4670123".into(),
//!     to: "tel:+8888;101".into(),
//!     text: "Hello".into(),
//!     ..Message::default()
//! };
//! let delivered = outbound.deliver(&msg).unwrap(); // returns after fsync
//! let written = format::parse(&std::fs::read(&delivered.files[0]).unwrap()).unwrap();
//! assert_eq!(written.from, "sip:4670123@secure.com");
//! assert_eq!(written.to, "sip:101@pbx.com");
//! assert_eq!(written.header("X-Sender-URI"), Some("tel:+4670123"));
//! ```
//!
//! Modules: [`format`](mod@format) owns the manual's message format (parse and write); [`maildir`] owns
//! mailbox directories (create, durable delivery, the watching reader, `failed/`);
//! [`smpp`] owns the SMS centre client (sans-IO [`smpp::pdu`] codec and [`smpp::text`]
//! encoding/splitting/reassembly, the tokio driver and its durable spool); [`service`] owns
//! the boundary towards the secure side ([`service::Inbound`] with its
//! [`service::AckHandle`], [`service::Outbound::deliver`], [`service::Messaging::start`]).
#![forbid(unsafe_code)]

pub mod format;
pub mod maildir;
pub mod service;
pub mod smpp;

use std::path::PathBuf;

/// Everything that can go wrong in messaging.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A message is not in the manual's format, or over a size cap.
    #[error("message format: {0}")]
    Format(String),
    /// The mailbox watcher could not be set up.
    #[error("watching a mailbox: {0}")]
    Watch(String),
    /// SMPP: a malformed PDU, a refused bind or a connection problem.
    #[error("smpp: {0}")]
    Smpp(String),
    /// A file-system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(
    op: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { op, path, source }
}
