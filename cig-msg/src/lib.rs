//! Messaging for CIG, the interconnect gateway between a MIKEY-SAKKE secure domain and SIP,
//! Maildir and SMS: Maildir mailboxes as the manual's "Text message interface" describes them.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("inbox");
//! cig_msg::maildir::create_maildir(&path).unwrap();
//! assert!(path.join("new").is_dir() && path.join("cur").is_dir() && path.join("tmp").is_dir());
//! ```
//!
//! Modules: [`format`] owns the manual's message format (parse and write); [`maildir`] owns
//! mailbox directories (create, durable delivery, the watching reader, `failed/`);
//! [`service`] owns the boundary towards the secure side ([`service::Inbound`] with its
//! [`service::AckHandle`], [`service::Outbound::deliver`]).
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
