//! SIP messages: parse from and serialize to bytes, typed header access, builders.
//!
//! A parsed message keeps its bytes: the header list keeps the received text once and each
//! line as a range of it (no reference count per line), and URI parts and bodies of owned
//! values are slices of the received buffer ([`bytes::Bytes`] / [`bytestring::ByteString`]), so
//! parsing copies nothing but folded header lines. The headers [`Message::validate`] checks
//! (Via, From, To, Call-ID, CSeq, Max-Forwards, Content-Length, Contact) are parsed once and
//! kept as records of offsets into their lines: `headers.via_ref()`, `from_ref()`, ... return
//! borrowed views built from them ([`ViaRef`], [`NameAddrRef`]: `&str` parts, parameter lists
//! as validated [`ParamsRef`]s read by iterating), with no allocation and no reference
//! counting; `via()`, `from()`, ... return owned values ([`Via`], [`NameAddr`]) copied from the
//! views. Other list headers parse on demand, borrowed (`route_ref()`, `allow_ref()`, ...:
//! iterators that parse each value as it is read) or owned (`route()`, `allow()`, ...).

mod codec;
mod grammar;
mod headers;
mod parse;
mod typed;
mod uri;

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

pub use codec::{DEFAULT_MAX_BODY, DEFAULT_MAX_HEADER, StreamCodec, StreamItem};
pub use grammar::{Param, ParamIter, ParamRef, Params, ParamsOf, ParamsRef, quote, unquote};
pub use headers::{Header, HeaderName, Headers};
pub use typed::{
    AuthRef, AuthValue, BRANCH_MAGIC, CSeq, Challenge, Credentials, MediaType, Method, NameAddr,
    NameAddrOf, NameAddrRef, Via, ViaOf, ViaRef,
};
pub use uri::{
    Host, HostOf, HostRef, OtherUri, OtherUriOf, SipUri, SipUriOf, SipUriRef, TelUri, TelUriOf,
    TelUriRef, Uri, UriOf, UriRef, percent_decode,
};

use crate::{Error, Result};
use parse::StartLine;

/// A SIP request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Request-URI.
    pub uri: Uri,
    /// Headers in order.
    pub headers: Headers,
    /// Body (exactly Content-Length octets when parsed).
    pub body: Bytes,
}

/// A SIP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code (100..=699).
    pub status: u16,
    /// Reason phrase (may be empty).
    pub reason: ByteString,
    /// Headers in order.
    pub headers: Headers,
    /// Body.
    pub body: Bytes,
}

/// A request or a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// Splits a header section from `data` and parses it; returns the message with the body left
/// empty and the offset where the body starts.
///
/// A datagram whose header section ends at the end of the datagram without the blank line is
/// accepted (there is nothing else it could mean); a stream needs the blank line.
#[inline]
pub(crate) fn parse_head_of(data: &Bytes, datagram: bool) -> Result<(Message, usize)> {
    let skip = parse::leading_crlf(data);
    // One pass: when everything after the leading CRLFs is UTF-8 (a text body, or a stream's
    // head alone), the line parser finds the blank line itself, so the head is scanned once
    // instead of being searched for `CRLF CRLF` first. A message that fails here (or has a
    // binary body) takes the two-step path below, which also decides the exact error.
    if let Ok(src) = ByteString::try_from(data.slice(skip..))
        && let Ok((msg, end)) = parse::parse_head(&src)
    {
        let end = match end {
            Some(e) => Some(skip + e),
            None if datagram => Some(data.len()),
            None => None,
        };
        if let Some(end) = end {
            return Ok((msg, end));
        }
    }
    two_step_head(data, skip, datagram)
}

/// The message of a parsed start line and headers, with an empty body.
#[inline]
pub(crate) fn message(start: StartLine, headers: Headers) -> Message {
    let body = Bytes::new();
    match start {
        StartLine::Request { method, uri } => Message::Request(Request {
            method,
            uri,
            headers,
            body,
        }),
        StartLine::Response { status, reason } => Message::Response(Response {
            status,
            reason,
            headers,
            body,
        }),
    }
}

/// The header section found first (`CRLF CRLF`, or the end of a datagram ending in CRLF),
/// checked as UTF-8, then parsed: the path of [`parse_head_of`] for the messages its one pass
/// does not take, and the order in which errors are reported.
fn two_step_head(data: &Bytes, skip: usize, datagram: bool) -> Result<(Message, usize)> {
    let end = match parse::head_end(&data[skip..]) {
        Some(e) => e + skip,
        None if datagram && data.ends_with(b"\r\n") => data.len(),
        None => return Err(Error::Incomplete),
    };
    let head = ByteString::try_from(data.slice(skip..end)).map_err(|_| Error::Utf8)?;
    let (msg, _) = parse::parse_head(&head)?;
    Ok((msg, end))
}

impl Message {
    /// Parses one datagram (UDP) and validates it ([`Message::validate`]).
    ///
    /// The body is Content-Length octets (octets after it are ignored, RFC 3261 §18.3); without
    /// Content-Length it is the rest of the datagram.
    #[inline]
    pub fn parse(data: Bytes) -> Result<Message> {
        let msg = Message::parse_unvalidated(data)?;
        msg.validate()?;
        Ok(msg)
    }

    /// Parses one datagram without the semantic checks of [`Message::validate`], so a UAS can
    /// still build its 400 from the headers that are there.
    #[inline]
    pub fn parse_unvalidated(data: Bytes) -> Result<Message> {
        let (mut msg, start) = parse_head_of(&data, true)?;
        let avail = data.len() - start;
        let len = match msg.headers().content_length()? {
            Some(n) if n as usize > avail => return Err(Error::BodyTruncated),
            Some(n) => n as usize,
            None => avail,
        };
        *msg.body_mut() = data.slice(start..start + len);
        Ok(msg)
    }

    /// RFC 3261 checks that make a request answerable and a response matchable: Via, From, To,
    /// Call-ID, CSeq present once and well-formed, CSeq method equal to the request method,
    /// Max-Forwards, Content-Length, Contact and Date well-formed. The typed values of those
    /// headers are kept (parsed once): the getters return them without parsing again.
    pub fn validate(&self) -> Result<()> {
        let h = self.headers();
        h.check(&HeaderName::Via)?;
        h.check(&HeaderName::From)?;
        h.check(&HeaderName::To)?;
        h.call_id()?;
        let cseq = h.cseq_ref()?;
        if let Message::Request(r) = self
            && cseq.method != r.method
        {
            return Err(Error::CSeqMismatch);
        }
        h.max_forwards()?;
        h.content_length()?;
        h.check(&HeaderName::Contact)?;
        if let Some(d) = h.get(&HeaderName::Date)
            && !parse::valid_date(d)
        {
            return Err(Error::header("Date", "not an RFC 1123 date in GMT"));
        }
        Ok(())
    }

    /// Headers.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    /// Headers, mutable.
    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }

    /// Body.
    pub fn body(&self) -> &Bytes {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }

    /// Body, mutable.
    pub fn body_mut(&mut self) -> &mut Bytes {
        match self {
            Message::Request(r) => &mut r.body,
            Message::Response(r) => &mut r.body,
        }
    }

    /// Serializes into `buf` (see [`Request::encode`]).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            Message::Request(r) => r.encode(buf),
            Message::Response(r) => r.encode(buf),
        }
    }

    /// Serializes into a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(1024);
        self.encode(&mut buf);
        buf.freeze()
    }
}

impl From<Request> for Message {
    fn from(r: Request) -> Message {
        Message::Request(r)
    }
}

impl From<Response> for Message {
    fn from(r: Response) -> Message {
        Message::Response(r)
    }
}

/// Writes headers, a Content-Length when none is present, the blank line and the body.
fn encode_tail(headers: &Headers, body: &Bytes, buf: &mut BytesMut) {
    let len: usize = headers
        .iter()
        .map(|h| h.name.as_str().len() + h.value.len() + 4)
        .sum();
    buf.reserve(len + body.len() + 24);
    for h in headers.iter() {
        buf.put_slice(h.name.as_str().as_bytes());
        buf.put_slice(b": ");
        buf.put_slice(h.value.as_bytes());
        buf.put_slice(b"\r\n");
    }
    if !headers.contains(&HeaderName::ContentLength) {
        let _ = write!(buf, "Content-Length: {}\r\n", body.len());
    }
    buf.put_slice(b"\r\n");
    buf.put_slice(body);
}

fn set_body(headers: &mut Headers, slot: &mut Bytes, content_type: &str, body: Bytes) {
    if body.is_empty() {
        headers.remove(&HeaderName::ContentType);
    } else {
        headers.set(HeaderName::ContentType, content_type);
    }
    headers.set(HeaderName::ContentLength, body.len().to_string());
    *slot = body;
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// Parses and validates one datagram that must hold a request.
    pub fn parse(data: Bytes) -> Result<Request> {
        match Message::parse(data)? {
            Message::Request(r) => Ok(r),
            Message::Response(_) => Err(Error::StartLine("expected a request")),
        }
    }

    /// Sets the body with its Content-Type and Content-Length (an empty body removes
    /// Content-Type).
    pub fn set_body(&mut self, content_type: &str, body: Bytes) {
        set_body(&mut self.headers, &mut self.body, content_type, body);
    }

    /// Serializes into `buf`: `METHOD uri SIP/2.0`, headers in order with canonical names,
    /// Content-Length added when absent, body.
    pub fn encode(&self, buf: &mut BytesMut) {
        let _ = write!(buf, "{} {} SIP/2.0\r\n", self.method, self.uri);
        encode_tail(&self.headers, &self.body, buf);
    }

    /// Serializes into a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(1024);
        self.encode(&mut buf);
        buf.freeze()
    }
}

impl Response {
    /// A response with no headers and no body.
    pub fn new(status: u16, reason: &str) -> Response {
        Response {
            status,
            reason: ByteString::from(reason),
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// A response to `req` per RFC 3261 §8.2.6: Via values (all, in order), From, To, Call-ID
    /// and CSeq copied as written; Timestamp copied into a 100. The To tag is the caller's
    /// business ([`Headers::set_to_tag`]).
    pub fn from_request(req: &Request, status: u16, reason: &str) -> Response {
        let mut headers = Headers::with_capacity(8);
        for name in [
            HeaderName::Via,
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ] {
            headers.copy_from(&req.headers, &name);
        }
        if status == 100 {
            headers.copy_from(&req.headers, &HeaderName::Timestamp);
        }
        Response {
            status,
            reason: ByteString::from(reason),
            headers,
            body: Bytes::new(),
        }
    }

    /// Parses and validates one datagram that must hold a response.
    pub fn parse(data: Bytes) -> Result<Response> {
        match Message::parse(data)? {
            Message::Response(r) => Ok(r),
            Message::Request(_) => Err(Error::StartLine("expected a response")),
        }
    }

    /// Sets the body with its Content-Type and Content-Length.
    pub fn set_body(&mut self, content_type: &str, body: Bytes) {
        set_body(&mut self.headers, &mut self.body, content_type, body);
    }

    /// Serializes into `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_slice(b"SIP/2.0 ");
        let _ = write!(buf, "{} ", self.status);
        buf.put_slice(self.reason.as_bytes());
        buf.put_slice(b"\r\n");
        encode_tail(&self.headers, &self.body, buf);
    }

    /// Serializes into a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(512);
        self.encode(&mut buf);
        buf.freeze()
    }
}

/// The RFC 3261 §21 reason phrase for a status code ("" for unknown codes).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n\
Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bK1;received=192.0.2.1\r\n\
Max-Forwards: 70\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 1 INVITE\r\n\
Timestamp: 54\r\n\
X-Custom:  kept  as written \r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\r";

    #[test]
    fn parse_and_response_from_request() {
        let req = Request::parse(Bytes::from_static(INVITE.as_bytes())).unwrap();
        assert_eq!(req.method, Method::Invite);
        assert_eq!(&req.body[..], b"v=0\r");
        assert_eq!(
            req.headers.get(&HeaderName::new("x-custom")),
            Some("kept  as written")
        );
        let mut resp = Response::from_request(&req, 180, reason_phrase(180));
        resp.headers.set_to_tag("8321234356").unwrap();
        let names: Vec<_> = resp.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["Via", "Via", "From", "To", "Call-ID", "CSeq"]);
        let wire = resp.to_bytes();
        let back = Response::parse(wire).unwrap();
        assert_eq!(back.status, 180);
        assert_eq!(back.headers.via().unwrap().len(), 2);
        assert_eq!(back.headers.to().unwrap().tag(), Some("8321234356"));
        assert_eq!(back.headers.content_length().unwrap(), Some(0));
        let trying = Response::from_request(&req, 100, "Trying");
        assert_eq!(trying.headers.get(&HeaderName::Timestamp), Some("54"));
    }

    #[test]
    fn request_round_trip() {
        let req = Request::parse(Bytes::from_static(INVITE.as_bytes())).unwrap();
        let again = Request::parse(req.to_bytes()).unwrap();
        assert_eq!(req, again);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// The one-pass head parser answers exactly as the two-step path (find `CRLF CRLF`,
        /// check UTF-8, parse) on edits of a message: the same message and body offset, or
        /// the same error.
        #[test]
        fn one_pass_head_matches_two_step(
            edits in proptest::collection::vec(
                (0usize..400, proptest::sample::select(
                    vec![b'\r', b'\n', b' ', b'\t', b':', b'a', 0xff, 0xc3, b'\0'])),
                0..4),
            cut in 0usize..420,
            datagram: bool,
        ) {
            let mut wire = INVITE.as_bytes().to_vec();
            for (at, b) in edits {
                let at = at.min(wire.len());
                wire.insert(at, b);
            }
            if cut < wire.len() && cut % 3 == 0 {
                wire.truncate(cut);
            }
            let data = Bytes::from(wire);
            let skip = parse::leading_crlf(&data);
            let two_step = two_step_head(&data, skip, datagram);
            let one_pass = parse_head_of(&data, datagram);
            match (one_pass, two_step) {
                (Ok(a), Ok(b)) => proptest::prop_assert_eq!(a, b),
                (Err(a), Err(b)) => proptest::prop_assert_eq!(a.to_string(), b.to_string()),
                (a, b) => proptest::prop_assert!(false, "{:?} vs {:?}", a, b),
            }
        }
    }

    #[test]
    fn builder_sets_body() {
        let mut req = Request::new(Method::Message, Uri::parse("sip:bob@example.com").unwrap());
        req.headers.push(
            HeaderName::Via,
            Via::new(
                "udp",
                Host::Ipv4([192, 0, 2, 1].into()),
                Some(5060),
                "z9hG4bKx",
            )
            .to_string(),
        );
        req.headers
            .push(HeaderName::From, "<sip:alice@example.com>;tag=1");
        req.headers.push(HeaderName::To, "<sip:bob@example.com>");
        req.headers.push(HeaderName::CallId, "abc@192.0.2.1");
        req.headers.push(
            HeaderName::CSeq,
            CSeq {
                seq: 1,
                method: Method::Message,
            }
            .to_string(),
        );
        req.headers.push(HeaderName::MaxForwards, "70");
        req.set_body("text/plain", Bytes::from_static(b"hello"));
        let back = Request::parse(req.to_bytes()).unwrap();
        assert_eq!(&back.body[..], b"hello");
        assert!(
            back.headers
                .content_type()
                .unwrap()
                .unwrap()
                .is("text", "plain")
        );
        assert_eq!(back.headers.top_via().unwrap().branch(), Some("z9hG4bKx"));
    }
}
