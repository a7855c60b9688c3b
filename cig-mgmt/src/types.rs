//! The data the management port carries: `show call` rows, `show umsg` rows, the `status`
//! overview, and the [`Provider`] trait through which the running server supplies them.
//!
//! These types are also the JSON that `cig-cli --json` prints (docs/mgmt.md §4).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The state of a gateway call as `show call` prints it: the last completed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CallState {
    /// The call was routed (new to-URI and from-URI found).
    Routed,
    /// The gateway has initiated the call towards the receiver.
    Try,
    /// It is ringing at the receiver.
    Ring,
    /// The call was rejected or declined.
    Reject,
    /// The receiver accepted the call and the media session is up.
    Answer,
    /// The call has ended.
    Hangup,
}

impl CallState {
    /// Every state, in the order the manual lists them.
    pub const ALL: [CallState; 6] = [
        Self::Routed,
        Self::Try,
        Self::Ring,
        Self::Reject,
        Self::Answer,
        Self::Hangup,
    ];

    /// The name `show call` prints: `ROUTED`, `TRY`, `RING`, `REJECT`, `ANSWER`, `HANGUP`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Routed => "ROUTED",
            Self::Try => "TRY",
            Self::Ring => "RING",
            Self::Reject => "REJECT",
            Self::Answer => "ANSWER",
            Self::Hangup => "HANGUP",
        }
    }
}

impl fmt::Display for CallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One row of `show call`: the URIs as the call came in and as the gateway sent it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRow {
    /// IN-FROM: the caller as received.
    pub in_from: String,
    /// IN-TO: the number that was dialled.
    pub in_to: String,
    /// OUT-FROM: the caller the gateway presents on the outgoing leg.
    pub out_from: String,
    /// OUT-TO: the mapped destination.
    pub out_to: String,
    /// STATE: the last completed event.
    pub state: CallState,
}

/// One row of `show umsg`: a UMSG session (or the messaging descriptor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UmsgRow {
    /// FROM: a TEL URI of the secure domain.
    pub from: String,
    /// TO: a TEL URI of the secure domain.
    pub to: String,
    /// STATE: `CREATE`, `BANG`, `GROWL`, `TALK`, `HANGUP`, or the messaging descriptor's.
    pub state: String,
    /// TIME: whole seconds since the session was created.
    pub time_secs: u64,
    /// ID: the session id shared by gateway, switch and phones (16 base64 characters).
    pub id: String,
}

/// The state of a connection as `status` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LinkState {
    /// Up and registered.
    Connected,
    /// Being set up (or re-established after a loss).
    Connecting,
    /// Down.
    Disconnected,
}

impl LinkState {
    /// The name `status` prints: `CONNECTED`, `CONNECTING`, `DISCONNECTED`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connected => "CONNECTED",
            Self::Connecting => "CONNECTING",
            Self::Disconnected => "DISCONNECTED",
        }
    }
}

impl fmt::Display for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The media relay as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayStatus {
    /// Whether the server's control connection to cig-relay is up.
    pub connected: bool,
    /// Crypto engines (relay worker threads) available now.
    pub engines_available: u32,
    /// Crypto engines the relay runs.
    pub engines_total: u32,
    /// Each relay when cig-server drives several (cig.conf `relay NAME { … }`): `status`
    /// prints them as a table. Absent (empty) from servers that predate it, and left out of
    /// the JSON when empty so one-relay servers keep the documented `status --json` object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relays: Vec<RelayRow>,
}

/// One relay of several, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayRow {
    /// The relay's name in cig.conf.
    pub name: String,
    /// Its control address: a socket path or `tls:IP:PORT`.
    pub address: String,
    /// Whether the control connection is up.
    pub connection: LinkState,
    /// Crypto engines available on it.
    pub engines_available: u32,
    /// Crypto engines it runs.
    pub engines_total: u32,
    /// Sessions cig-server placed on it.
    pub sessions: u32,
}

/// The UMSG interface (towards the switch) as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UmsgStatus {
    /// Public ID: the gateway's identity, e.g. `tel:+8888`.
    pub identity: String,
    /// Security Domain: the community's name.
    pub domain: String,
    /// CRS Address: the switch address in use (or being tried).
    pub switch_address: String,
    /// Connection state towards the switch.
    pub connection: LinkState,
    /// Crypto state: `OK`, or why the keys cannot be used.
    pub crypto_state: String,
    /// Crypto period: the key period in use, e.g. `2026-11`.
    pub period: String,
}

/// The SIP interface as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipStatus {
    /// SIP Bind address: the `bind` of the sip interface.
    pub bind: String,
}

/// The `status` overview, following the manual's layout (see [`crate::render::status`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The server's version, e.g. `0.1.0` (printed as `v0.1.0`).
    pub version: String,
    /// The media relay.
    pub relay: RelayStatus,
    /// The UMSG interface.
    pub umsg: UmsgStatus,
    /// The SIP interface.
    pub sip: SipStatus,
}

/// What the running server exposes to the management port. Each method is called on a tokio
/// worker thread for one request and should return quickly (take a snapshot under a lock; do
/// not wait on the network).
pub trait Provider: Send + Sync + 'static {
    /// The `show call` rows, in the order they should be printed.
    fn calls(&self) -> Vec<CallRow>;
    /// The `show umsg` rows, in the order they should be printed.
    fn umsg(&self) -> Vec<UmsgRow>;
    /// The `status` overview.
    fn status(&self) -> Status;
}
