//! The cig-relay control protocol, version 1: the messages a controller (cig-server) and the
//! relay exchange over the relay's Unix stream socket, and their framing.
//!
//! A frame is a 4-byte big-endian length `N` (1 ≤ `N` ≤ [`MAX_FRAME`]) followed by `N` bytes of
//! UTF-8 JSON holding one object. The controller sends [`Request`]s; the relay answers each with
//! one [`Reply`] carrying the request's `id`, and sends unsolicited [`Reply`] events (no `id`)
//! such as [`Reply::MediaTimeout`]. The first request on a connection must be
//! [`Command::Hello`] with [`PROTOCOL_VERSION`]. `docs/relay-control.md` is the prose version.
//!
//! ```
//! use cig_media::control::{Command, FrameDecoder, Request, encode_frame};
//!
//! let hello = Request { id: 1, command: Command::Hello { protocol: 1, client: "cig-server".into() } };
//! let frame = encode_frame(&hello).unwrap();
//! let mut dec = FrameDecoder::new();
//! dec.push(&frame);
//! let back: Request = dec.next_message().unwrap().unwrap();
//! assert_eq!(back, hello);
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub use crate::bridge::Direction;

/// The protocol version this module speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The largest frame body either side accepts, in bytes.
pub const MAX_FRAME: usize = 64 * 1024;
/// The longest session identifier accepted, in bytes.
pub const MAX_SESSION_ID: usize = 128;
/// The most `rtp_remote_addr_override` rules one leg may carry.
pub const MAX_OVERRIDES: usize = 64;

/// Errors of the control protocol: framing, message validity, and the [`Client`]'s socket.
///
/// Kept apart from [`crate::Error`], which is the `Copy` per-packet error of the media path;
/// these carry I/O and JSON sources.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// A frame announces a length of zero or above [`MAX_FRAME`].
    #[error("frame length {0} outside 1..={MAX_FRAME}")]
    FrameLength(usize),
    /// The frame body is not the JSON of a known message.
    #[error("bad message: {0}")]
    Json(#[from] serde_json::Error),
    /// A message is well-formed JSON but a value is not acceptable.
    #[error("invalid message: {0}")]
    Invalid(&'static str),
    /// The control socket failed or closed ([`Client`]).
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    /// The relay refused a request ([`Client`]).
    #[error("relay refused ({code:?}): {message}")]
    Refused {
        /// The relay's code.
        code: ErrorCode,
        /// The relay's text.
        message: String,
    },
}

/// A controller → relay request. `id` is chosen by the controller and echoed in the reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Correlates the reply with this request.
    pub id: u64,
    /// What to do.
    #[serde(flatten)]
    pub command: Command,
}

/// The operations a controller can ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Must be the first request: agree the protocol version.
    Hello {
        /// The controller's protocol version; the relay refuses any but [`PROTOCOL_VERSION`].
        protocol: u32,
        /// Free text naming the controller, for the log.
        client: String,
    },
    /// Create a bridge session; the reply is [`Reply::SessionCreated`] with the local ports.
    CreateSession {
        /// The controller's name for the session (e.g. the call id), unique per relay.
        session: String,
        /// Leg A: the secure side (SRTP).
        a: LegConfig,
        /// Leg B: the PBX side (RTP).
        b: LegConfig,
        /// Report [`Reply::MediaTimeout`] when a leg receives nothing for this long; 0 = never.
        #[serde(default = "default_media_timeout_ms")]
        media_timeout_ms: u32,
    },
    /// Change a session's remote addresses, keys or codecs (e.g. when the SDP answer arrives).
    UpdateSession {
        /// The session to change.
        session: String,
        /// New settings for leg A, if any.
        #[serde(default)]
        a: Option<LegUpdate>,
        /// New settings for leg B, if any.
        #[serde(default)]
        b: Option<LegUpdate>,
    },
    /// End a session, free its ports; the reply carries its final counters.
    DeleteSession {
        /// The session to end.
        session: String,
    },
    /// Counters of one session, or of all when `session` is absent.
    Stats {
        /// The session, or `None` for every session.
        #[serde(default)]
        session: Option<String>,
    },
    /// Engine status ("Crypto engines available N/N") and session count.
    Status,
}

fn default_media_timeout_ms() -> u32 {
    30_000
}

/// The G.711 codec a leg carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// G.711 μ-law (static payload type 0).
    Pcmu,
    /// G.711 A-law (static payload type 8).
    Pcma,
}

impl Codec {
    /// The static RTP payload type of the codec.
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
}

/// A port range `low..=high` for RTP; RTP ports are even, RTCP is the RTP port + 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    /// Lowest port (inclusive).
    pub low: u16,
    /// Highest port (inclusive).
    pub high: u16,
}

impl PortRange {
    /// A range if `low <= high` and it holds at least one even/odd pair.
    pub fn new(low: u16, high: u16) -> Result<PortRange, ControlError> {
        let r = PortRange { low, high };
        r.validate()?;
        Ok(r)
    }

    /// Checks the range holds an RTP/RTCP pair and does not include port 0.
    pub fn validate(&self) -> Result<(), ControlError> {
        let first_even = self.low.wrapping_add(self.low & 1);
        if self.low == 0 || first_even < self.low || first_even >= self.high {
            return Err(ControlError::Invalid(
                "port range must hold an even RTP port and the odd RTCP port after it",
            ));
        }
        Ok(())
    }
}

/// One `rtp_remote_addr_override <IP old> <IP new>` rule: an announced remote address `from` is
/// replaced by `to` before the relay sends to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrOverride {
    /// The address as announced (e.g. the CRS's public IP).
    pub from: IpAddr,
    /// The address to use instead.
    pub to: IpAddr,
}

/// Applies the first matching override rule to `addr`, keeping the port.
pub fn apply_overrides(rules: &[AddrOverride], addr: SocketAddr) -> SocketAddr {
    match rules.iter().find(|r| r.from == addr.ip()) {
        Some(r) => SocketAddr::new(r.to, addr.port()),
        None => addr,
    }
}

/// A leg's configuration at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegConfig {
    /// Local address to bind; the relay's `--bind` when absent.
    #[serde(default)]
    pub bind: Option<IpAddr>,
    /// Ports to allocate from (the interface's `rtp_port_range`); the relay's when absent.
    #[serde(default)]
    pub port_range: Option<PortRange>,
    /// The codec the leg's peer sends and expects.
    pub codec: Codec,
    /// The payload type of the codec on this leg; the codec's static type when absent.
    #[serde(default)]
    pub payload_type: Option<u8>,
    /// The payload type of RFC 4733 telephone-events on this leg, if negotiated.
    #[serde(default)]
    pub telephone_event_pt: Option<u8>,
    /// The announced remote RTP address (from SDP), if known yet.
    #[serde(default)]
    pub remote: Option<SocketAddr>,
    /// `rtp_remote_addr_override` rules applied to announced remote addresses of this leg.
    #[serde(default)]
    pub remote_addr_overrides: Vec<AddrOverride>,
    /// SRTP keys: present on the secure leg, absent on a plain RTP leg.
    #[serde(default)]
    pub srtp: Option<SrtpConfig>,
}

impl LegConfig {
    /// A plain RTP leg with `codec` and everything else defaulted.
    pub fn rtp(codec: Codec) -> LegConfig {
        LegConfig {
            bind: None,
            port_range: None,
            codec,
            payload_type: None,
            telephone_event_pt: None,
            remote: None,
            remote_addr_overrides: Vec::new(),
            srtp: None,
        }
    }

    /// The payload type of the codec on this leg.
    pub fn codec_pt(&self) -> u8 {
        self.payload_type
            .unwrap_or_else(|| self.codec.static_payload_type())
    }

    /// Checks every value is in range.
    pub fn validate(&self) -> Result<(), ControlError> {
        if let Some(r) = &self.port_range {
            r.validate()?;
        }
        if self.codec_pt() > 127 || self.telephone_event_pt.is_some_and(|pt| pt > 127) {
            return Err(ControlError::Invalid("payload types are 0..=127"));
        }
        if self.remote_addr_overrides.len() > MAX_OVERRIDES {
            return Err(ControlError::Invalid(
                "too many rtp_remote_addr_override rules",
            ));
        }
        Ok(())
    }
}

/// Changes to a leg after creation; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegUpdate {
    /// A new announced remote RTP address.
    #[serde(default)]
    pub remote: Option<SocketAddr>,
    /// New SRTP keys (re-key) for the secure leg.
    #[serde(default)]
    pub srtp: Option<SrtpConfig>,
    /// A new codec (and payload type) for the leg.
    #[serde(default)]
    pub codec: Option<Codec>,
    /// The payload type of the new codec; its static type when absent.
    #[serde(default)]
    pub payload_type: Option<u8>,
    /// A new telephone-event payload type.
    #[serde(default)]
    pub telephone_event_pt: Option<u8>,
    /// The direction the relay plays on the leg from now on (the direction of the SDP the
    /// controller sent to the leg's peer: `recvonly` while a PBX holds with `sendonly`);
    /// unchanged when absent. Sessions start `sendrecv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
}

/// The SRTP protection profile names of RFC 4568 / RFC 7714.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SrtpProfileName {
    /// AES-CM-128 with a 80-bit HMAC-SHA1 tag.
    #[serde(rename = "AES_CM_128_HMAC_SHA1_80")]
    AesCm128HmacSha1_80,
    /// AES-CM-128 with a 32-bit HMAC-SHA1 tag.
    #[serde(rename = "AES_CM_128_HMAC_SHA1_32")]
    AesCm128HmacSha1_32,
    /// AES-128-GCM (RFC 7714).
    #[serde(rename = "AEAD_AES_128_GCM")]
    AeadAes128Gcm,
}

/// SRTP settings of a secure leg: one master key/salt per direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrtpConfig {
    /// The protection profile.
    pub profile: SrtpProfileName,
    /// Keys protecting what the peer sends to the relay.
    pub inbound: KeyMaterial,
    /// Keys the relay protects with what it sends to the peer.
    pub outbound: KeyMaterial,
}

/// One SRTP master key and salt, base64 in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMaterial {
    /// The master key (16 bytes for the AES-128 profiles).
    pub key: SecretBytes,
    /// The master salt (14 bytes for AES-CM, 12 for GCM).
    pub salt: SecretBytes,
}

/// Key bytes: zeroized on drop, compared in constant time, redacted in `Debug`, base64 in JSON.
#[derive(Clone)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Wraps a copy of `bytes`.
    pub fn new(bytes: &[u8]) -> SecretBytes {
        SecretBytes(Zeroizing::new(bytes.to_vec()))
    }

    /// The secret bytes; callers must not log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &SecretBytes) -> bool {
        self.0.as_slice().ct_eq(other.0.as_slice()).into()
    }
}

impl Eq for SecretBytes {}

impl Serialize for SecretBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*self.0));
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for SecretBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SecretBytes, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        if text.len() > 128 {
            return Err(serde::de::Error::custom("key material too long"));
        }
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(|v| SecretBytes(Zeroizing::new(v)))
            .map_err(|_| serde::de::Error::custom("key material is not base64"))
    }
}

/// Which leg of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LegId {
    /// The secure (SRTP) leg.
    A,
    /// The PBX (RTP) leg.
    B,
}

/// The local transport addresses the relay allocated for one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalPorts {
    /// The bound address.
    pub ip: IpAddr,
    /// The even RTP port (put it in the SDP).
    pub rtp_port: u16,
    /// The RTCP port, `rtp_port + 1`.
    pub rtcp_port: u16,
}

/// Counters of one leg, as seen by the relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegStats {
    /// Packets received on the leg's sockets.
    pub packets_in: u64,
    /// Packets sent out of the leg's sockets.
    pub packets_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Packets dropped (authentication, replay, malformed, no destination yet...).
    pub dropped: u64,
    /// Valid packets received on this leg and not forwarded because of the legs' directions
    /// (hold); not in `dropped`.
    #[serde(default)]
    pub withheld: u64,
    /// The peer address learnt or configured, if any.
    pub peer: Option<SocketAddr>,
}

/// Counters of one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStats {
    /// The session's name.
    pub session: String,
    /// The crypto engine (worker) that runs it.
    pub engine: usize,
    /// Leg A counters.
    pub a: LegStats,
    /// Leg B counters.
    pub b: LegStats,
}

/// Stable error codes of [`Reply::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The first request was not `hello`, or the version is not supported.
    Version,
    /// The frame or JSON is malformed or a value is out of range.
    BadRequest,
    /// A session with that name exists already.
    SessionExists,
    /// No session has that name.
    NoSuchSession,
    /// No free RTP/RTCP port pair in the range.
    NoPorts,
    /// Keys, codecs or profile the engine cannot use.
    Unsupported,
    /// No crypto engine is running.
    NoEngine,
}

/// A relay → controller message: a reply (with the request's `id`) or an event (no `id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reply {
    /// Answer to [`Command::Hello`].
    Hello {
        /// The request id.
        id: u64,
        /// [`PROTOCOL_VERSION`].
        protocol: u32,
        /// The relay's software version.
        relay_version: String,
        /// Engines running.
        engines_available: usize,
        /// Engines configured.
        engines_total: usize,
    },
    /// Answer to [`Command::CreateSession`].
    SessionCreated {
        /// The request id.
        id: u64,
        /// The session's name.
        session: String,
        /// The engine that runs it.
        engine: usize,
        /// Leg A's local ports.
        a: LocalPorts,
        /// Leg B's local ports.
        b: LocalPorts,
    },
    /// Answer to [`Command::UpdateSession`].
    SessionUpdated {
        /// The request id.
        id: u64,
        /// The session's name.
        session: String,
    },
    /// Answer to [`Command::DeleteSession`]: the final counters; the ports are free again.
    SessionDeleted {
        /// The request id.
        id: u64,
        /// The final counters.
        stats: SessionStats,
    },
    /// Answer to [`Command::Stats`].
    Stats {
        /// The request id.
        id: u64,
        /// One entry per session asked for.
        sessions: Vec<SessionStats>,
    },
    /// Answer to [`Command::Status`].
    Status {
        /// The request id.
        id: u64,
        /// Engines running ("Crypto engines available N/M": N).
        engines_available: usize,
        /// Engines configured (M).
        engines_total: usize,
        /// Sessions in the relay.
        sessions: usize,
    },
    /// A request failed; nothing changed.
    Error {
        /// The request id, absent when the frame could not be read.
        id: Option<u64>,
        /// What went wrong, machine-readable.
        code: ErrorCode,
        /// What went wrong, for the log.
        message: String,
    },
    /// Event: a leg received no packet for `media_timeout_ms`. Sent once per silence; the
    /// session stays until deleted.
    MediaTimeout {
        /// The session.
        session: String,
        /// The silent leg.
        leg: LegId,
    },
    /// Event: the relay ended a session on its own (its engine stopped, or the relay is
    /// shutting down). The controller should end the call.
    SessionEnded {
        /// The session.
        session: String,
        /// Why.
        reason: String,
    },
}

/// Serializes `msg` as one frame (length prefix + JSON).
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, ControlError> {
    let mut out = vec![0u8; 4];
    serde_json::to_writer(&mut out, msg)?;
    let len = out.len() - 4;
    if len > MAX_FRAME {
        return Err(ControlError::FrameLength(len));
    }
    let prefix = u32::try_from(len).map_err(|_| ControlError::FrameLength(len))?;
    out[..4].copy_from_slice(&prefix.to_be_bytes());
    Ok(out)
}

/// Incremental frame reader for non-blocking sockets: push what arrived, pop whole messages.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that do not yet form a whole frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame's body, if one is complete. A bad length is an error after which
    /// the connection must be closed (the stream cannot be resynchronised).
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, ControlError> {
        let Some(prefix) = self.buf.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        if len == 0 || len > MAX_FRAME {
            return Err(ControlError::FrameLength(len));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let body = self.buf[4..4 + len].to_vec();
        self.buf.drain(..4 + len);
        Ok(Some(body))
    }

    /// The next whole frame parsed as `T`. A JSON error consumes the frame, so the caller may
    /// answer with an error and carry on.
    pub fn next_message<T: for<'de> Deserialize<'de>>(
        &mut self,
    ) -> Result<Option<T>, ControlError> {
        match self.next_frame()? {
            Some(body) => Ok(Some(serde_json::from_slice(&body)?)),
            None => Ok(None),
        }
    }
}

/// A blocking controller connection (for tools and tests; cig-server may drive the same
/// frames from its own event loop).
#[derive(Debug)]
pub struct Client {
    stream: std::os::unix::net::UnixStream,
    decoder: FrameDecoder,
    next_id: u64,
    events: std::collections::VecDeque<Reply>,
}

impl Client {
    /// Connects to the relay at `path` and says hello; returns the relay's hello reply too.
    pub fn connect(path: &std::path::Path, client: &str) -> Result<(Client, Reply), ControlError> {
        let stream = std::os::unix::net::UnixStream::connect(path)?;
        let mut c = Client {
            stream,
            decoder: FrameDecoder::new(),
            next_id: 1,
            events: std::collections::VecDeque::new(),
        };
        let hello = c.call(Command::Hello {
            protocol: PROTOCOL_VERSION,
            client: client.to_string(),
        })?;
        Ok((c, hello))
    }

    fn read_message(&mut self) -> Result<Reply, ControlError> {
        use std::io::Read;
        loop {
            if let Some(m) = self.decoder.next_message()? {
                return Ok(m);
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(ControlError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            self.decoder.push(&chunk[..n]);
        }
    }

    /// Sends `command` and waits for its reply; events arriving meanwhile are queued for
    /// [`Client::next_event`]. A [`Reply::Error`] becomes [`ControlError::Refused`].
    pub fn call(&mut self, command: Command) -> Result<Reply, ControlError> {
        use std::io::Write;
        let id = self.next_id;
        self.next_id += 1;
        self.stream
            .write_all(&encode_frame(&Request { id, command })?)?;
        loop {
            let m = self.read_message()?;
            match m.id() {
                Some(got) if got == id => {
                    return match m {
                        Reply::Error { code, message, .. } => {
                            Err(ControlError::Refused { code, message })
                        }
                        m => Ok(m),
                    };
                }
                // A reply to nothing we are waiting for (an unreadable earlier frame).
                Some(_) => {}
                None => self.events.push_back(m),
            }
        }
    }

    /// The next event (a message without a request id), waiting up to `timeout`.
    pub fn next_event(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<Option<Reply>, ControlError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        self.stream.set_read_timeout(Some(timeout))?;
        let got = self.read_message();
        self.stream.set_read_timeout(None)?;
        match got {
            Ok(m) => Ok(Some(m)),
            Err(ControlError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

impl Reply {
    /// The request id this message answers; `None` for events.
    pub fn id(&self) -> Option<u64> {
        match self {
            Reply::Hello { id, .. }
            | Reply::SessionCreated { id, .. }
            | Reply::SessionUpdated { id, .. }
            | Reply::SessionDeleted { id, .. }
            | Reply::Stats { id, .. }
            | Reply::Status { id, .. } => Some(*id),
            Reply::Error { id, .. } => *id,
            Reply::MediaTimeout { .. } | Reply::SessionEnded { .. } => None,
        }
    }
}

/// Checks a session name: 1..=[`MAX_SESSION_ID`] bytes of printable ASCII.
pub fn validate_session_id(s: &str) -> Result<(), ControlError> {
    if s.is_empty() || s.len() > MAX_SESSION_ID || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ControlError::Invalid(
            "session names are 1..=128 printable ASCII characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srtp() -> SrtpConfig {
        SrtpConfig {
            profile: SrtpProfileName::AesCm128HmacSha1_80,
            inbound: KeyMaterial {
                key: SecretBytes::new(&[1; 16]),
                salt: SecretBytes::new(&[2; 14]),
            },
            outbound: KeyMaterial {
                key: SecretBytes::new(&[3; 16]),
                salt: SecretBytes::new(&[4; 14]),
            },
        }
    }

    #[test]
    fn create_session_wire_form_is_the_documented_one() {
        let json = r#"{"id":7,"op":"create_session","session":"call-1",
            "a":{"codec":"pcmu","remote":"10.0.0.1:4000","telephone_event_pt":101,
                 "remote_addr_overrides":[{"from":"192.0.2.1","to":"10.0.0.9"}],
                 "srtp":{"profile":"AES_CM_128_HMAC_SHA1_80",
                         "inbound":{"key":"AQEBAQEBAQEBAQEBAQEBAQ==","salt":"AgICAgICAgICAgICAgI="},
                         "outbound":{"key":"AwMDAwMDAwMDAwMDAwMDAw==","salt":"BAQEBAQEBAQEBAQEBAQ="}}},
            "b":{"codec":"pcma","port_range":{"low":20000,"high":20100}}}"#;
        let req: Request = serde_json::from_str(json).unwrap();
        let Command::CreateSession {
            session,
            a,
            b,
            media_timeout_ms,
        } = &req.command
        else {
            panic!("wrong command {req:?}");
        };
        assert_eq!(session, "call-1");
        assert_eq!(*media_timeout_ms, 30_000);
        assert_eq!(a.srtp.as_ref(), Some(&srtp()));
        assert_eq!(a.codec_pt(), 0);
        assert_eq!(b.codec_pt(), 8);
        assert_eq!(
            b.port_range,
            Some(PortRange {
                low: 20000,
                high: 20100
            })
        );
        let over = apply_overrides(&a.remote_addr_overrides, "192.0.2.1:5000".parse().unwrap());
        assert_eq!(over, "10.0.0.9:5000".parse().unwrap());
        // Round trip through a frame.
        let frame = encode_frame(&req).unwrap();
        let mut dec = FrameDecoder::new();
        dec.push(&frame[..3]);
        assert!(dec.next_frame().unwrap().is_none());
        dec.push(&frame[3..]);
        assert_eq!(dec.next_message::<Request>().unwrap(), Some(req));
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn leg_direction_is_optional_and_lowercase_on_the_wire() {
        let old: LegUpdate = serde_json::from_str(r#"{"remote":"10.0.0.1:4000"}"#).unwrap();
        assert_eq!(old.direction, None);
        let held: LegUpdate = serde_json::from_str(r#"{"direction":"recvonly"}"#).unwrap();
        assert_eq!(held.direction, Some(Direction::RecvOnly));
        assert!(!Direction::RecvOnly.sends() && Direction::RecvOnly.receives());
        let back = LegUpdate {
            direction: Some(Direction::SendRecv),
            ..LegUpdate::default()
        };
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            r#"{"remote":null,"srtp":null,"codec":null,"payload_type":null,"telephone_event_pt":null,"direction":"sendrecv"}"#
        );
        assert!(serde_json::from_str::<LegUpdate>(r#"{"direction":"hold"}"#).is_err());
        // An old relay's stats (no `withheld`) still parse.
        let st: LegStats = serde_json::from_str(
            r#"{"packets_in":1,"packets_out":1,"bytes_in":172,"dropped":0,"peer":null}"#,
        )
        .unwrap();
        assert_eq!(st.withheld, 0);
    }

    #[test]
    fn keys_are_redacted_in_debug() {
        let text = format!("{:?}", srtp());
        assert!(text.contains("<redacted>"));
        assert!(!text.contains("[1, 1"));
    }

    #[test]
    fn bad_frames_are_refused() {
        let mut dec = FrameDecoder::new();
        dec.push(&[0, 0, 0, 0]);
        assert!(matches!(
            dec.next_frame(),
            Err(ControlError::FrameLength(0))
        ));
        let mut dec = FrameDecoder::new();
        dec.push(&u32::MAX.to_be_bytes());
        assert!(matches!(
            dec.next_frame(),
            Err(ControlError::FrameLength(_))
        ));
        let mut dec = FrameDecoder::new();
        dec.push(&[0, 0, 0, 2, b'{', b'x']);
        assert!(matches!(
            dec.next_message::<Request>(),
            Err(ControlError::Json(_))
        ));
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn ranges_and_names_are_checked() {
        assert!(PortRange::new(1024, 2048).is_ok());
        assert!(PortRange::new(1025, 1026).is_err());
        assert!(PortRange::new(1025, 1027).is_ok());
        assert!(PortRange::new(0, 100).is_err());
        assert!(PortRange::new(65535, 65535).is_err());
        assert!(validate_session_id("call-1@host").is_ok());
        assert!(validate_session_id("").is_err());
        assert!(validate_session_id("a b").is_err());
        assert!(validate_session_id(&"x".repeat(129)).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever bytes a controller sends, in whatever pieces, the decoder returns frames,
        /// errors or "need more" — never a panic.
        #[test]
        fn decoder_survives_arbitrary_streams(
            chunks in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 0..8),
            prefix_len in 0u32..400,
        ) {
            let mut dec = FrameDecoder::new();
            dec.push(&prefix_len.to_be_bytes());
            'outer: for c in &chunks {
                dec.push(c);
                loop {
                    match dec.next_message::<Request>() {
                        Ok(Some(_)) | Err(ControlError::Json(_)) => {}
                        Ok(None) => break,
                        Err(_) => break 'outer,
                    }
                }
            }
        }

        /// Any session name and id survive a frame round trip.
        #[test]
        fn requests_round_trip(id in proptest::prelude::any::<u64>(), name in "[!-~]{1,128}") {
            let req = Request { id, command: Command::DeleteSession { session: name } };
            let mut dec = FrameDecoder::new();
            dec.push(&encode_frame(&req).unwrap());
            proptest::prop_assert_eq!(dec.next_message::<Request>().unwrap(), Some(req));
        }
    }

    #[test]
    fn replies_serialize_with_a_type_tag() {
        let r = Reply::MediaTimeout {
            session: "s".into(),
            leg: LegId::B,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"type":"media_timeout","session":"s","leg":"b"}"#
        );
        let r = Reply::Status {
            id: 3,
            engines_available: 2,
            engines_total: 2,
            sessions: 0,
        };
        let back: Reply = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
