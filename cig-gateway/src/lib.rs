//! The CIG gateway's call engine: one object per call joining a SIP leg (towards the PBX) and
//! a UMSG leg (towards the secure switch) through the route module and a cig-relay media
//! session, exactly as `docs/calls.md` describes. It is sans-IO: SIP user-agent events, UMSG
//! call changes, relay replies and `now` go in; SIP commands, relay requests, session.log and
//! cig.log lines come out ([`engine::Action`]). `cig-server` is the thin binary that wires it to
//! sockets.
//!
//! A SIP call for a number no map routes is refused with 404 and logged as `failed`:
//!
//! ```
//! use std::time::SystemTime;
//! use bytes::Bytes;
//! use cig_gateway::engine::{Action, Engine, EngineConfig, SipCommand};
//! use cig_sip::message::{NameAddr, Uri};
//! use cig_sip::ua::{CallHandle, Event};
//! use cig_sip::transaction::Transport;
//!
//! let conf = cig_core::conf::parse(
//!     r#"map m { entry e tel "tel:+8888;{x}" sip "sip:{x}@pbx.com"; }
//!        interfaces { tel { extension map m; } sip { extension map m; } }"#, "cig.conf",
//! ).unwrap().config;
//! let mut engine = Engine::new(&conf, EngineConfig::default()).unwrap();
//! engine.set_links(true, true);
//! let invite = Event::IncomingCall {
//!     call: CallHandle(1),
//!     request_uri: Uri::parse("sip:555@gw").unwrap(),
//!     from: NameAddr::new(Uri::parse("sip:101@pbx.com").unwrap()),
//!     to: NameAddr::new(Uri::parse("sip:555@gw").unwrap()),
//!     sdp: Bytes::new(),
//!     source: "192.0.2.1:5060".parse().unwrap(),
//!     transport: Transport::Udp,
//!     call_id: "a84b4c76e66710@192.0.2.1".to_owned(),
//! };
//! let mut no_secure_side = cig_gateway::engine::NoSecure;
//! engine.on_sip(invite, SystemTime::now(), &mut no_secure_side);
//! let actions: Vec<Action> = std::iter::from_fn(|| engine.poll_action()).collect();
//! assert!(actions.iter().any(|a| matches!(a, Action::Sip(SipCommand::Reject(CallHandle(1), 404)))));
//! assert!(actions.iter().any(|a| matches!(a, Action::SessionLog(l) if l.contains(", failed, "))));
//! ```
#![forbid(unsafe_code)]

pub mod engine;
pub mod logfmt;
pub mod mapping;
pub mod messaging;
pub mod secure;

/// Errors of the gateway library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration's maps could not be compiled into a router.
    #[error("routing tables: {0}")]
    Route(#[from] cig_route::RouteError),
    /// The switch is not connected (or we are not registered).
    #[error("the switch is not connected")]
    SwitchUnavailable,
    /// A UMSG call operation failed.
    #[error("UMSG: {0}")]
    Umsg(#[from] cig_umsg::Error),
    /// A SIP URI or SDP body could not be used.
    #[error("SIP: {0}")]
    Sip(#[from] cig_sip::Error),
}
