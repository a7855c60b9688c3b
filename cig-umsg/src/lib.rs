//! UMSG/1, the open signalling protocol of the CIG secure domain (docs/umsg.md): the frame
//! codec and sans-IO cores for the client (phone, gateway) and the switch.
//!
//! Cores take frames and the current time in and hand frames, events and the next timer out;
//! they never read a clock or touch a socket. A TLS driver carries the frames.
//!
//! Modules: [`frame`] (codec), [`register`] (registration, routing identity), [`call`] (call
//! sessions, switch relay, `show umsg` rows), [`message`] (encrypted text messages),
//! [`client`] (client core), [`switch`] (switch core), and with the default feature `driver`
//! [`driver`] (tokio + rustls: client with reconnect and failover, switch with a UDP media
//! relay). The feature `test-support` adds `testing` (a KMS domain and switch for the
//! workspace's integration tests).
//!
//! ```
//! use cig_umsg::frame::{Frame, FrameDecoder, FrameType, tag};
//!
//! let frame = Frame::new(FrameType::Ping).with(tag::INFO, b"hi".to_vec());
//! let bytes = frame.to_bytes().unwrap();
//! let mut input = bytes.as_slice();
//! let got = FrameDecoder::new().feed(&mut input).unwrap();
//! assert_eq!(got, Some(frame));
//! // A length over the cap closes the stream before anything is buffered.
//! let mut huge: &[u8] = &[0xff, 0xff, 0xff, 0xff];
//! assert!(FrameDecoder::new().feed(&mut huge).is_err());
//! ```
#![forbid(unsafe_code)]

pub mod call;
pub mod client;
#[cfg(feature = "driver")]
pub mod driver;
pub mod frame;
pub mod message;
pub mod register;
pub mod switch;
#[cfg(feature = "test-support")]
pub mod testing;

/// Errors of the UMSG crate. Any of them on a connection closes it (the reason is logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A frame is malformed or over a cap.
    #[error("malformed frame: {0}")]
    Frame(&'static str),
    /// A MIKEY-SAKKE step failed (signature, key, encapsulation).
    #[error("MIKEY-SAKKE: {0}")]
    Crypto(cig_mikey_sakke::Error),
    /// The TLS/TCP transport failed (driver): I/O, TLS, certificates, timeouts.
    #[error("transport: {0}")]
    Transport(String),
}
