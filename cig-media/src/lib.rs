//! The media core of CIG, the interconnect gateway between a MIKEY-SAKKE secure domain and SIP
//! PBXs: everything the relay does to a packet, without sockets or clocks.
//!
//! - [`rtp`] / [`rtcp`]: RTP header parsing and in-place rewriting; RTCP SR/RR/BYE parse and emit.
//! - [`srtp`]: SRTP and SRTCP (RFC 3711 AES_CM_128_HMAC_SHA1_80/_32, RFC 7714 AEAD_AES_128_GCM),
//!   in place on the caller's buffer, keys expanded once per context.
//! - [`g711`]: μ-law and A-law encode/decode and direct μ↔A conversion, per sample and per frame.
//! - [`dtmf`]: RFC 4733 telephone-events: payload codec and an event sender.
//! - [`bridge`]: the relay engine's per-call state (leg A SRTP ⇄ leg B RTP): header continuity,
//!   transcoding, DTMF payload-type mapping, symmetric RTP and media timeouts.
//! - [`control`]: the cig-relay control protocol (versioned, length-prefixed JSON over a Unix
//!   socket) that cig-server speaks, with a frame decoder and a small blocking client.
//! - [`relay`]: relay building blocks: the RTP/RTCP port-pair allocator.
//!
//! Everything is sans-IO: bytes and `now` go in; what to send, events and the next deadline come
//! out. Per-packet paths do not allocate.
//!
//! ```
//! use cig_media::srtp::{MasterKey, SrtpContext, SrtpProfile};
//!
//! let key = MasterKey::new(SrtpProfile::Aes128CmHmacSha1_80, &[7; 16], &[9; 14]).unwrap();
//! let mut tx = SrtpContext::new(&key);
//! let mut rx = SrtpContext::new(&key);
//!
//! // A 12-byte RTP header and 4 bytes of payload, in a buffer with room for the tag.
//! let mut buf = [0u8; 64];
//! buf[..16].copy_from_slice(&[0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 42, 1, 2, 3, 4]);
//! let protected = tx.protect_rtp(&mut buf, 16).unwrap();
//! assert_eq!(protected, 26);
//! let plain = rx.unprotect_rtp(&mut buf, protected).unwrap();
//! assert_eq!(&buf[12..plain], &[1, 2, 3, 4]);
//! ```
#![forbid(unsafe_code)]

pub mod bridge;
pub mod control;
pub mod dtmf;
pub mod endpoint;
pub mod g711;
pub mod relay;
pub mod rtcp;
pub mod rtp;
pub mod srtp;
pub mod tone;
pub mod wav;

/// The errors of this crate. Every one is about a single packet or a configuration value; none
/// leaves a context in a changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The packet is shorter than its headers say or than the minimum for its kind.
    #[error("packet truncated")]
    Truncated,
    /// The packet is not RTP/RTCP version 2 or a header field is inconsistent.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The caller's buffer has no room for the bytes to be added (SRTP tag, SRTCP trailer).
    #[error("buffer too small: {needed} bytes needed")]
    BufferTooSmall {
        /// Bytes the operation needs in total.
        needed: usize,
    },
    /// The SRTP/SRTCP authentication tag does not verify.
    #[error("authentication failed")]
    AuthFailed,
    /// The packet index was already received (replay).
    #[error("replayed packet")]
    Replayed,
    /// The packet index lies behind the replay window.
    #[error("packet too old for the replay window")]
    TooOld,
    /// A master key or salt has the wrong length for the profile.
    #[error("bad key length: expected {expected} bytes, got {got}")]
    KeyLength {
        /// The length the profile needs.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The SRTCP index space (2^31 packets) is used up; the context must be re-keyed.
    #[error("SRTCP index exhausted, re-key required")]
    IndexExhausted,
    /// A feature the packet asks for is not supported (e.g. unencrypted SRTCP under AEAD).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
