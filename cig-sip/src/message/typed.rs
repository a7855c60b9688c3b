//! Typed header values: Via, name-addr (From/To/Contact/Route), CSeq, methods, media types and
//! authentication challenges/credentials. Each parses from a header value and prints back with
//! `Display` in the canonical form.

use std::borrow::Cow;
use std::fmt;

use bytestring::ByteString;

use super::grammar::{
    self, Class, DIGIT, PResult, Params, ParamsOf, TOKEN, WSP, at, class, fail, from,
    header_params, lws, params_end, params_ref, quoted_end, run, sep, sws, take1, token, word, ws,
};
use super::uri::{self, Host, HostOf, Uri, UriCtx, UriOf};

#[cfg(test)]
pub(crate) mod reference;

/// Unquoted auth-param values: token characters and `/:=@`.
const AUTH_PARAM_VALUE: Class = class(true, b"-.!%*_+`'~/:=@");

/// A SIP method. Methods are case-sensitive.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// OPTIONS
    Options,
    /// REGISTER
    Register,
    /// PRACK (RFC 3262)
    Prack,
    /// SUBSCRIBE (RFC 6665)
    Subscribe,
    /// NOTIFY (RFC 6665)
    Notify,
    /// PUBLISH (RFC 3903)
    Publish,
    /// INFO (RFC 6086)
    Info,
    /// REFER (RFC 3515)
    Refer,
    /// MESSAGE (RFC 3428)
    Message,
    /// UPDATE (RFC 3311)
    Update,
    /// Any other token.
    Other(ByteString),
}

impl Method {
    /// The method for a token (`src` owns `t`, so unknown methods are kept zero-copy).
    pub(crate) fn from_token(src: &ByteString, t: &str) -> Method {
        match t {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "PUBLISH" => Method::Publish,
            "INFO" => Method::Info,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "UPDATE" => Method::Update,
            _ => Method::Other(src.slice_ref(t)),
        }
    }

    /// Parses a method name (must be a token).
    pub fn parse(s: &str) -> Option<Method> {
        if s.is_empty() || !s.chars().all(grammar::is_token_char) {
            return None;
        }
        let src = ByteString::from(s);
        Some(Method::from_token(&src, &src))
    }

    /// The method name.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Update => "UPDATE",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Via value (RFC 3261 §20.42).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Via {
    /// Protocol name, normally `SIP`.
    pub protocol: ByteString,
    /// Protocol version, normally `2.0`.
    pub version: ByteString,
    /// Transport as written (`UDP`, `TCP`, `TLS`, ...).
    pub transport: ByteString,
    /// sent-by host.
    pub host: Host,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters (branch, received, rport, maddr, ttl, ...).
    pub params: Params,
}

/// The RFC 3261 branch prefix.
pub const BRANCH_MAGIC: &str = "z9hG4bK";

impl Via {
    /// `SIP/2.0/<transport> host[:port];branch=<branch>`.
    pub fn new(transport: &str, host: Host, port: Option<u16>, branch: &str) -> Via {
        let mut params = Params::new();
        params.set("branch", Some(ByteString::from(branch)));
        Via {
            protocol: ByteString::from_static("SIP"),
            version: ByteString::from_static("2.0"),
            transport: ByteString::from(transport.to_ascii_uppercase()),
            host,
            port,
            params,
        }
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").and_then(|p| p.value.as_deref())
    }

    /// Whether the branch carries the RFC 3261 magic cookie (otherwise the transaction is
    /// matched the RFC 2543 way).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > BRANCH_MAGIC.len() && b.starts_with(BRANCH_MAGIC))
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&str> {
        self.params.get("received").and_then(|p| p.value.as_deref())
    }

    /// The `rport` parameter: `None` if absent, `Some(None)` if present without a value.
    pub fn rport(&self) -> Option<Option<u16>> {
        let p = self.params.get("rport")?;
        Some(
            p.value
                .as_deref()
                .and_then(|v| grammar::number(v, 65535))
                .map(|v| v as u16),
        )
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&str> {
        self.params.get("maddr").and_then(|p| p.value.as_deref())
    }

    /// Transport in upper case compared case-insensitively.
    pub fn transport_is(&self, t: &str) -> bool {
        self.transport.eq_ignore_ascii_case(t)
    }

    #[cfg(test)]
    pub(crate) fn parse<'a>(src: &ByteString, i: &'a str) -> PResult<'a, Via> {
        let (i, v) = ViaRef::parse(i)?;
        Ok((i, v.own(src)))
    }
}

/// A Via value as a view (`S` = `&str`, [`ViaRef`]) or a record of offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ViaOf<S> {
    /// Protocol name, normally `SIP`.
    pub protocol: S,
    /// Protocol version, normally `2.0`.
    pub version: S,
    /// Transport as written.
    pub transport: S,
    /// sent-by host.
    pub host: HostOf<S>,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters (branch, received, rport, maddr, ttl, ...).
    pub params: ParamsOf<S>,
}

/// A borrowed Via value: its parts are slices of the header value.
pub type ViaRef<'a> = ViaOf<&'a str>;

impl<S> ViaOf<S> {
    #[inline(always)]
    pub(crate) fn map<T>(self, f: &impl Fn(S) -> T) -> ViaOf<T> {
        ViaOf {
            protocol: f(self.protocol),
            version: f(self.version),
            transport: f(self.transport),
            host: self.host.map(f),
            port: self.port,
            params: self.params.map(f),
        }
    }
}

impl<'a> ViaRef<'a> {
    /// The branch parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.params.get("branch").and_then(|p| p.value)
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&'a str> {
        self.params.get("received").and_then(|p| p.value)
    }

    /// The `rport` parameter: `None` if absent, `Some(None)` if present without a value.
    pub fn rport(&self) -> Option<Option<u16>> {
        let p = self.params.get("rport")?;
        Some(
            p.value
                .and_then(|v| grammar::number(v, 65535))
                .map(|v| v as u16),
        )
    }

    /// Transport compared case-insensitively.
    pub fn transport_is(&self, t: &str) -> bool {
        self.transport.eq_ignore_ascii_case(t)
    }

    /// One Via value (`sent-protocol LWS sent-by *( SEMI via-params )`), scanned once by octet
    /// offsets.
    pub(crate) fn parse(i: &'a str) -> PResult<'a, ViaRef<'a>> {
        let b = i.as_bytes();
        // Nearly every Via starts `SIP/2.0/`: read it as one literal (what the general path
        // below would return for it).
        let (protocol, version, k0) = if b.starts_with(b"SIP/2.0/") {
            (at(i, 0, 3), at(i, 4, 7), ws(b, 8))
        } else {
            // token SWS "/" SWS token SWS "/" SWS
            let p = run(b, 0, &TOKEN);
            let s = ws(b, p);
            let v0 = ws(b, s + 1);
            let v1 = run(b, v0, &TOKEN);
            let s2 = ws(b, v1);
            if p == 0 || b.get(s) != Some(&b'/') || v1 == v0 || b.get(s2) != Some(&b'/') {
                return fail();
            }
            (at(i, 0, p), at(i, v0, v1), ws(b, s2 + 1))
        };
        let t = run(b, k0, &TOKEN);
        let h = run(b, t, &WSP);
        if t == k0 || h == t {
            return fail();
        }
        let (host, k) = uri::host_at(i, h)?;
        let (port, k) = uri::port_at(b, k, true)?;
        let end = params_end(i, k, false, |p| {
            p.value.is_some() || !p.name.eq_ignore_ascii_case("branch")
        })
        .ok_or(nom::Err::Error(()))?;
        Ok((
            from(i, end),
            ViaOf {
                protocol,
                version,
                transport: at(i, k0, t),
                host,
                port,
                params: ParamsOf::of(at(i, k, end), false),
            },
        ))
    }

    /// The owned value, its text shared with `src` (the header value the view lies in).
    pub(crate) fn own(&self, src: &ByteString) -> Via {
        let s = |x: &str| {
            word!(
                src,
                x,
                ["SIP", "2.0", "UDP", "TCP", "TLS", "SCTP", "WS", "WSS"]
            )
        };
        Via {
            protocol: s(self.protocol),
            version: s(self.version),
            transport: s(self.transport),
            host: self.host.own(src),
            port: self.port,
            params: self.params.own(src),
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{} {}",
            self.protocol, self.version, self.transport, self.host
        )?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// A name-addr or addr-spec with header parameters: From, To, Contact, Route, Record-Route.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NameAddr {
    /// Display name as written: a quoted string (with quotes) or tokens.
    pub display: Option<ByteString>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters after the URI (`tag`, `expires`, `q`, `lr`, ...).
    pub params: Params,
}

impl NameAddr {
    /// `<uri>` without display name or parameters.
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            params: Params::new(),
        }
    }

    /// Sets the display name (quoted as needed).
    pub fn with_display(mut self, name: &str) -> NameAddr {
        self.display = Some(ByteString::from(grammar::quote(name)));
        self
    }

    /// The display name with quotes and escapes removed.
    pub fn display_name(&self) -> Option<Cow<'_, str>> {
        self.display.as_deref().map(grammar::unquote)
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").and_then(|p| p.value.as_deref())
    }

    /// Sets the `tag` parameter.
    pub fn set_tag(&mut self, tag: &str) {
        self.params.set("tag", Some(ByteString::from(tag)));
    }

    /// Parses one name-addr (or, when `addr_spec` is allowed, a bare URI) with its parameters.
    #[cfg(test)]
    pub(crate) fn parse<'a>(
        src: &ByteString,
        i: &'a str,
        addr_spec: bool,
    ) -> PResult<'a, NameAddr> {
        let (i, n) = NameAddrRef::parse(i, addr_spec)?;
        Ok((i, n.own(src)))
    }
}

/// A name-addr as a view (`S` = `&str`, [`NameAddrRef`]) or a record of offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NameAddrOf<S> {
    /// Display name as written: a quoted string (with quotes) or tokens.
    pub display: Option<S>,
    /// The URI.
    pub uri: UriOf<S>,
    /// Header parameters after the URI (`tag`, `expires`, `q`, `lr`, ...).
    pub params: ParamsOf<S>,
}

/// A borrowed name-addr (From, To, Contact, Route, Record-Route): its parts are slices of the
/// header value.
pub type NameAddrRef<'a> = NameAddrOf<&'a str>;

impl<S> NameAddrOf<S> {
    #[inline(always)]
    pub(crate) fn map<T>(self, f: &impl Fn(S) -> T) -> NameAddrOf<T> {
        NameAddrOf {
            display: self.display.map(f),
            uri: self.uri.map(f),
            params: self.params.map(f),
        }
    }
}

impl<'a> NameAddrRef<'a> {
    /// The display name with quotes and escapes removed.
    pub fn display_name(&self) -> Option<Cow<'a, str>> {
        self.display.map(grammar::unquote)
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag").and_then(|p| p.value)
    }

    /// Parses one name-addr (or, when `addr_spec` is allowed, a bare URI) with its parameters.
    pub(crate) fn parse(i: &'a str, addr_spec: bool) -> PResult<'a, NameAddrRef<'a>> {
        Self::parse_with(i, addr_spec, |_| true)
    }

    /// [`NameAddrRef::parse`] that also checks each header parameter with `check` while the
    /// parameters are scanned (a `false` fails the value).
    pub(crate) fn parse_with(
        i: &'a str,
        addr_spec: bool,
        mut check: impl FnMut(&grammar::ParamRef<'_>) -> bool,
    ) -> PResult<'a, NameAddrRef<'a>> {
        let i = sws(i);
        let b = i.as_bytes();
        let (display, k) = match b.first() {
            Some(b'<') => (None, 0),
            Some(b'"') => {
                let e = quoted_end(b, 0).ok_or(nom::Err::Error(()))?;
                (Some(at(i, 0, e)), ws(b, e))
            }
            _ => {
                // `*(token LWS)` followed by `<`, else an addr-spec.
                let (mut r, mut end) = (0, 0);
                loop {
                    let t = run(b, r, &TOKEN);
                    if t == r {
                        break;
                    }
                    end = t;
                    r = ws(b, t);
                }
                if b.get(r) == Some(&b'<') && end > 0 {
                    (Some(at(i, 0, end)), r)
                } else if addr_spec {
                    let (r, uri) = uri::uri_ref(i, UriCtx::AddrSpec)?;
                    let (r, params) = params_ref(r, false, &mut check)?;
                    return Ok((
                        r,
                        NameAddrOf {
                            display: None,
                            uri,
                            params,
                        },
                    ));
                } else {
                    return fail();
                }
            }
        };
        if b.get(k) != Some(&b'<') {
            return fail();
        }
        let (r, uri) = uri::uri_ref(from(i, k + 1), UriCtx::Bracketed)?;
        let Some(r) = r.strip_prefix('>') else {
            return fail();
        };
        let end = params_end(r, 0, false, check).ok_or(nom::Err::Error(()))?;
        Ok((
            from(r, end),
            NameAddrOf {
                display,
                uri,
                params: ParamsOf::of(at(r, 0, end), false),
            },
        ))
    }

    /// The owned value, its text shared with `src` (the header value the view lies in).
    pub(crate) fn own(&self, src: &ByteString) -> NameAddr {
        NameAddr {
            display: self.display.map(|d| src.slice_ref(d)),
            uri: self.uri.own(src),
            params: self.params.own(src),
        }
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{d} ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// The CSeq header (RFC 3261 §20.16).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CSeq {
    /// Sequence number, below 2**31.
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    pub(crate) fn parse<'a>(src: &ByteString, i: &'a str) -> PResult<'a, CSeq> {
        let (i, digits) = take1(i, &DIGIT)?;
        let seq = grammar::number(digits, (1 << 31) - 1).ok_or(nom::Err::Error(()))? as u32;
        let (i, _) = lws(i)?;
        let (i, m) = token(i)?;
        Ok((
            i,
            CSeq {
                seq,
                method: Method::from_token(src, m),
            },
        ))
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// A media type with parameters (Content-Type, Accept entries).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MediaType {
    /// Type, e.g. `application`.
    pub mtype: ByteString,
    /// Subtype, e.g. `sdp`.
    pub subtype: ByteString,
    /// Parameters.
    pub params: Params,
}

impl MediaType {
    /// Case-insensitive type/subtype check.
    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(mtype) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    pub(crate) fn parse<'a>(src: &ByteString, i: &'a str) -> PResult<'a, MediaType> {
        let (i, t) = token(i)?;
        let i = sep(i, '/').ok_or(nom::Err::Error(()))?;
        let (i, s) = token(i)?;
        let (i, params) = header_params(src, i)?;
        Ok((
            i,
            MediaType {
                mtype: word!(src, t, ["application", "text", "multipart", "message"]),
                subtype: word!(src, s, ["sdp", "plain", "mixed", "sipfrag", "dtmf-relay"]),
                params,
            },
        ))
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.mtype, self.subtype, self.params)
    }
}

/// An authentication challenge (WWW-/Proxy-Authenticate) or credentials (Authorization,
/// Proxy-Authorization): a scheme and `name=value` parameters, values kept as written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AuthValue {
    /// Scheme, e.g. `Digest`.
    pub scheme: ByteString,
    /// Parameters in order; values as written (quoted strings keep their quotes).
    pub params: Vec<(ByteString, ByteString)>,
}

/// A challenge from WWW-Authenticate or Proxy-Authenticate.
pub type Challenge = AuthValue;
/// Credentials for Authorization or Proxy-Authorization.
pub type Credentials = AuthValue;

impl AuthValue {
    /// A value with no parameters yet.
    pub fn new(scheme: &str) -> AuthValue {
        AuthValue {
            scheme: ByteString::from(scheme),
            params: Vec::new(),
        }
    }

    /// Whether the scheme is `scheme` (case-insensitive).
    pub fn scheme_is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The value of `name` (case-insensitive), unquoted.
    pub fn param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| grammar::unquote(v))
    }

    /// Appends `name="value"`.
    pub fn push_quoted(&mut self, name: &str, value: &str) {
        self.params.push((
            ByteString::from(name),
            ByteString::from(grammar::quote(value)),
        ));
    }

    /// Appends `name=value` (value must be a token).
    pub fn push_token(&mut self, name: &str, value: &str) {
        self.params
            .push((ByteString::from(name), ByteString::from(value)));
    }

    /// The owned value of a view, its text shared with `src` (the header value it lies in).
    pub(crate) fn own(a: &AuthRef<'_>, src: &ByteString) -> AuthValue {
        let mut params = Vec::with_capacity(8);
        for (name, v) in a.params() {
            let name = word!(
                src,
                name,
                [
                    "username",
                    "realm",
                    "nonce",
                    "uri",
                    "response",
                    "algorithm",
                    "qop",
                    "nc",
                    "cnonce",
                    "opaque",
                    "stale",
                    "domain",
                ]
            );
            params.push((name, src.slice_ref(v)));
        }
        AuthValue {
            scheme: word!(src, a.scheme, ["Digest"]),
            params,
        }
    }

    /// Parses one or more comma-separated challenges/credentials filling `value`.
    #[cfg(test)]
    fn parse_all(
        src: &ByteString,
        value: &str,
        out: &mut Vec<AuthValue>,
    ) -> Result<(), nom::Err<()>> {
        let mut refs = Vec::new();
        grammar::list(value, AuthRef::parse, &mut refs)?;
        out.extend(refs.iter().map(|a| AuthValue::own(a, src)));
        Ok(())
    }
}

/// A borrowed challenge or credentials value: the scheme and its `name=value` parameters as
/// written, checked when parsed and read by iterating (no allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AuthRef<'a> {
    /// Scheme, e.g. `Digest`.
    pub scheme: &'a str,
    /// The parameters as written (`name=value, name="value"`).
    params: &'a str,
}

/// `SWS "=" SWS ( token / quoted-string )`, the part of an `auth-param` after its name, at
/// octet `k`: the value's offsets.
#[inline(always)]
fn auth_value_at(b: &[u8], k: usize) -> Option<(usize, usize)> {
    let e = ws(b, k);
    if b.get(e) != Some(&b'=') {
        return None;
    }
    let v0 = ws(b, e + 1);
    let v1 = if b.get(v0) == Some(&b'"') {
        quoted_end(b, v0)?
    } else {
        run(b, v0, &AUTH_PARAM_VALUE)
    };
    (v1 > v0).then_some((v0, v1))
}

/// `SWS "," SWS` at octet `k`: where the next list element starts.
#[inline(always)]
fn comma_at(b: &[u8], k: usize) -> Option<usize> {
    let c = ws(b, k);
    (b.get(c) == Some(&b',')).then(|| ws(b, c + 1))
}

impl<'a> AuthRef<'a> {
    /// Whether the scheme is `scheme` (case-insensitive).
    pub fn scheme_is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The parameters in order, values as written (quoted strings keep their quotes).
    pub fn params(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let i = self.params;
        let b = i.as_bytes();
        let mut k = Some(0);
        std::iter::from_fn(move || {
            let n0 = k?;
            let n1 = run(b, n0, &TOKEN);
            let (v0, v1) = auth_value_at(b, n1).filter(|_| n1 > n0)?;
            // The list goes on after a comma (a value that ends otherwise is the last).
            k = comma_at(b, v1);
            Some((at(i, n0, n1), at(i, v0, v1)))
        })
    }

    /// The value of `name` (case-insensitive), unquoted.
    pub fn param(&self, name: &str) -> Option<Cow<'a, str>> {
        self.params()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| grammar::unquote(v))
    }

    /// One challenge or credentials value: a scheme and its parameters, up to the end of the
    /// value or the comma before the next scheme (a token, white space and a token).
    pub(crate) fn parse(i: &'a str) -> PResult<'a, AuthRef<'a>> {
        let b = i.as_bytes();
        let s = run(b, 0, &TOKEN);
        let start = run(b, s, &WSP);
        if s == 0 || start == s {
            return fail();
        }
        // Each parameter's name is read once: after a comma, `token LWS token` starts the
        // next challenge, `token SWS "="` the next parameter of this one.
        let done = |after: usize| {
            Ok((
                from(i, after),
                AuthRef {
                    scheme: at(i, 0, s),
                    params: at(i, start, after),
                },
            ))
        };
        let (mut n0, mut n1) = (start, run(b, start, &TOKEN));
        loop {
            if n1 == n0 {
                return fail();
            }
            let (_, after) = auth_value_at(b, n1).ok_or(nom::Err::Error(()))?;
            let Some(next) = comma_at(b, after) else {
                return done(after);
            };
            let t = run(b, next, &TOKEN);
            let w = run(b, t, &WSP);
            if t > next && w > t && run(b, w, &TOKEN) > w {
                return done(after);
            }
            (n0, n1) = (next, t);
        }
    }
}

impl fmt::Display for AuthValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        for (k, (n, v)) in self.params.iter().enumerate() {
            f.write_str(if k == 0 { " " } else { ", " })?;
            write!(f, "{n}={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bs(s: &str) -> ByteString {
        ByteString::from(s)
    }

    #[test]
    fn via_sent_protocol_with_or_without_white_space() {
        // The `SIP/2.0/` literal fast path and the general token path give the same parts.
        for v in [
            "SIP/2.0/UDP h;branch=z9hG4bK1",
            "SIP/2.0/ UDP h;branch=z9hG4bK1",
            "SIP/2.0/\tUDP h;branch=z9hG4bK1",
            "SIP / 2.0 / UDP h;branch=z9hG4bK1",
            "SIP/2.0 /UDP h;branch=z9hG4bK1",
        ] {
            let (rest, via) = ViaRef::parse(v).unwrap();
            assert_eq!(rest, "", "{v}");
            assert_eq!(
                (via.protocol, via.version, via.transport),
                ("SIP", "2.0", "UDP"),
                "{v}"
            );
            assert_eq!(via.branch(), Some("z9hG4bK1"), "{v}");
        }
        let (_, lower) = ViaRef::parse("sip/2.0/udp h").unwrap();
        assert_eq!((lower.protocol, lower.transport), ("sip", "udp"));
    }

    #[test]
    fn via_with_folded_white_space() {
        let s = bs("SIP  /   2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8");
        let (rest, v) = Via::parse(&s, &s).unwrap();
        assert_eq!(rest, "");
        assert_eq!(&*v.transport, "TCP");
        assert_eq!(v.host, Host::Domain(bs("spindle.example.com")));
        assert_eq!(v.branch(), Some("z9hG4bK9ikj8"));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8"
        );
        let s = bs("SIP/2.0/UDP [2001:db8::9]:5070;rport;received=192.0.2.1");
        let (_, v) = Via::parse(&s, &s).unwrap();
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some("192.0.2.1"));
    }

    #[test]
    fn name_addr_forms() {
        let s = bs(r#""J Rosenberg \\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8"#);
        let (rest, n) = NameAddr::parse(&s, &s, true).unwrap();
        assert_eq!(rest, "");
        assert_eq!(n.display_name().as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(n.tag(), Some("98asjd8"));
        let s = bs("sip:+19725552222@gw1.example.net;unknownparam");
        let (_, n) = NameAddr::parse(&s, &s, true).unwrap();
        assert!(n.params.contains("unknownparam"));
        assert!(n.uri.as_sip().unwrap().params.is_empty());
        let s = bs("caller<sip:caller@example.com>;tag=323");
        let (_, n) = NameAddr::parse(&s, &s, true).unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));
        assert!(NameAddr::parse(&bs("sip:a@b"), "sip:a@b", false).is_err());
    }

    #[test]
    fn auth_values() {
        let s = bs(
            r#"Digest realm="atlanta.com", nonce="84a4cc6f", algorithm=MD5, qop="auth,auth-int""#,
        );
        let mut v = Vec::new();
        AuthValue::parse_all(&s, &s, &mut v).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].param("qop").as_deref(), Some("auth,auth-int"));
        assert_eq!(v[0].param("ALGORITHM").as_deref(), Some("MD5"));
        assert_eq!(v[0].to_string(), &*s);
        let s =
            bs(r#"Digest realm="a", nonce="1", Digest realm="a", nonce="2", algorithm=SHA-256"#);
        let mut v = Vec::new();
        AuthValue::parse_all(&s, &s, &mut v).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].param("algorithm").as_deref(), Some("SHA-256"));
    }
}
