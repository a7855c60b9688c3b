//! SIP interface of the CIG gateway: the RFC 3261 message codec (this module set), and the
//! transaction, dialog, SDP and digest layers built on it.
//!
//! Parse a datagram, inspect typed headers, answer it:
//!
//! ```
//! use bytes::Bytes;
//! use cig_sip::message::{Message, Response, reason_phrase};
//!
//! let wire = Bytes::from_static(b"OPTIONS sip:gw@example.com SIP/2.0\r\n\
//! Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK776asdhds\r\n\
//! Max-Forwards: 70\r\n\
//! From: <sip:lb@example.com>;tag=1928301774\r\n\
//! To: <sip:gw@example.com>\r\n\
//! Call-ID: a84b4c76e66710\r\n\
//! CSeq: 63104 OPTIONS\r\n\
//! Content-Length: 0\r\n\r\n");
//! let Message::Request(req) = Message::parse(wire)? else { unreachable!() };
//! assert_eq!(req.headers.top_via()?.branch(), Some("z9hG4bK776asdhds"));
//! let mut ok = Response::from_request(&req, 200, reason_phrase(200));
//! ok.headers.set_to_tag("a6c85cf")?;
//! assert!(ok.to_bytes().starts_with(b"SIP/2.0 200 OK\r\n"));
//! # Ok::<(), cig_sip::Error>(())
//! ```
#![forbid(unsafe_code)]

mod dialog;
pub mod digest;
#[cfg(feature = "tokio")]
pub mod driver;
pub mod error;
pub mod message;
pub mod sdp;
pub mod sim;
pub mod transaction;
pub mod ua;

pub use error::{Error, Result};
