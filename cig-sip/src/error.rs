//! The crate's error type.

/// Everything that can go wrong in cig-sip.
///
/// Errors caused by a peer map back onto the wire with [`Error::status_code`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request line or status line is malformed.
    #[error("malformed start line: {0}")]
    StartLine(&'static str),
    /// The message uses a SIP version other than 2.0.
    #[error("unsupported SIP version")]
    Version,
    /// The Request-URI is malformed or not allowed in a request line.
    #[error("malformed Request-URI: {0}")]
    RequestUri(&'static str),
    /// A header line is not `name: value`.
    #[error("malformed header line: {0}")]
    HeaderLine(&'static str),
    /// A header value does not match its grammar.
    #[error("malformed {name} header: {reason}")]
    Header {
        /// Canonical header name.
        name: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A mandatory header is missing.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A header that may occur once occurs more than once.
    #[error("more than one {0} value")]
    MultipleValues(&'static str),
    /// The CSeq method differs from the request method.
    #[error("CSeq method does not match the request method")]
    CSeqMismatch,
    /// Content-Length announces more bytes than the datagram holds.
    #[error("Content-Length larger than the message")]
    BodyTruncated,
    /// A stream message has no Content-Length.
    #[error("Content-Length is required on stream transports")]
    MissingContentLength,
    /// The header section exceeds the configured cap.
    #[error("header section larger than {0} bytes")]
    HeadersTooLarge(usize),
    /// The body exceeds the configured cap.
    #[error("body larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The header section is not valid UTF-8.
    #[error("header section is not valid UTF-8")]
    Utf8,
    /// The input ended before the end of the header section.
    #[error("incomplete message")]
    Incomplete,
    /// An SDP body is malformed.
    #[error("malformed SDP: {0}")]
    Sdp(&'static str),
    /// The offer shares no codec with this side (a UAS answers 488).
    #[error("no codec shared with the offer")]
    NoSharedCodec,
    /// A digest challenge cannot be answered.
    #[error("digest authentication: {0}")]
    Digest(&'static str),
    /// A user agent command does not fit the call's state (or names no call).
    #[error("call: {0}")]
    CallState(&'static str),
    /// An I/O error from the stream under a codec.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The SIP status a UAS answers a request with when it fails this way.
    pub fn status_code(&self) -> u16 {
        match self {
            Error::Version => 505,
            Error::HeadersTooLarge(_) | Error::BodyTooLarge(_) => 513,
            Error::Io(_) => 500,
            Error::NoSharedCodec => 488,
            _ => 400,
        }
    }

    pub(crate) fn header(name: &'static str, reason: &'static str) -> Error {
        Error::Header { name, reason }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
