//! The management port of the CIG gateway ("MGMT" in the manual): how `cig-cli` asks the
//! running `cig-server` for `show call`, `show umsg`, `status` and `echo`.
//!
//! The server listens on `127.0.0.1:8083` only (the port can change, the address is always
//! loopback). The protocol is one JSON object per line each way, versioned and capped
//! (docs/mgmt.md). The server fills the replies from a [`Provider`] it is given; the
//! [`render`] module prints them in the manual's layouts.
//!
//! Modules: [`types`] (the rows, the status and the [`Provider`] trait), [`proto`] (the wire
//! format, sans IO), [`server`] (the tokio server), [`client`] (the blocking client),
//! [`render`] (the text layouts).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use cig_mgmt::*;
//!
//! struct Gateway;
//! impl Provider for Gateway {
//!     fn calls(&self) -> Vec<CallRow> {
//!         vec![CallRow {
//!             in_from: "tel:+46701234567".into(),
//!             in_to: "tel:+8888;101".into(),
//!             out_from: "sip:+46701234567@pbx.com".into(),
//!             out_to: "sip:101@pbx.com".into(),
//!             state: CallState::Answer,
//!         }]
//!     }
//!     fn umsg(&self) -> Vec<UmsgRow> { Vec::new() }
//!     fn status(&self) -> Status {
//!         Status {
//!             version: "0.1.0".into(),
//!             relay: RelayStatus {
//!                 connected: true,
//!                 engines_available: 2,
//!                 engines_total: 2,
//!                 relays: Vec::new(),
//!             },
//!             umsg: UmsgStatus {
//!                 identity: "tel:+8888".into(),
//!                 domain: "secure.example".into(),
//!                 switch_address: "127.0.0.1:5223".into(),
//!                 connection: LinkState::Connected,
//!                 crypto_state: "OK".into(),
//!                 period: "2026-11".into(),
//!             },
//!             sip: SipStatus { bind: "192.168.1.1".into() },
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let server = serve(0, Arc::new(Gateway)).await.unwrap(); // 0: any free port
//! assert!(server.local_addr().ip().is_loopback());
//! let port = server.local_addr().port();
//! let rows = tokio::task::spawn_blocking(move || {
//!     Client::connect(port, Duration::from_secs(5))?.calls()
//! }).await.unwrap().unwrap();
//! assert!(render::calls(&rows).ends_with("sip:101@pbx.com  ANSWER\n"));
//! server.shutdown().await;
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod client;
pub mod proto;
pub mod render;
pub mod server;
pub mod types;

pub use client::Client;
pub use server::{DEFAULT_PORT, MgmtServer, serve, serve_at};
pub use types::{
    CallRow, CallState, LinkState, Provider, RelayRow, RelayStatus, SipStatus, Status, UmsgRow,
    UmsgStatus,
};

use std::net::{IpAddr, SocketAddr};

/// What can go wrong on the management port.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Nothing listens on the management port.
    #[error("cig-server is not running (no answer on {addr})")]
    NotRunning {
        /// The address tried.
        addr: SocketAddr,
    },
    /// A server address that is not loopback was asked for.
    #[error("the management port is loopback only; {0} is not a loopback address")]
    NotLoopback(IpAddr),
    /// A line longer than the cap.
    #[error("line longer than {max} bytes")]
    LineTooLong {
        /// The cap.
        max: usize,
    },
    /// A line in another protocol version.
    #[error("unsupported protocol version {0} (this side speaks {v})", v = proto::VERSION)]
    Version(u32),
    /// A line that is not a valid request or reply.
    #[error("malformed message: {0}")]
    Protocol(String),
    /// The server answered with an error.
    #[error("cig-server: {0}")]
    Server(String),
    /// A socket error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
