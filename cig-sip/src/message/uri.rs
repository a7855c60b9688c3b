//! SIP, SIPS and TEL URIs (RFC 3261 §19.1, §25; RFC 3966), plus any other absolute URI kept as
//! scheme and opaque text.
//!
//! Components are kept as written (escapes included) so a parsed URI serializes back unchanged;
//! [`percent_decode`] and [`SipUri::equivalent`] give the RFC 3261 §19.1.4 meaning.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytestring::ByteString;

use super::grammar::{
    Class, DIGIT, PResult, ParamAt, Params, ParamsOf, at, class, fail, from, number_bytes,
    params_end, params_ref, run, span_bytes, take1, ws,
};
use crate::Error;

/// A URI as found in a Request-URI or a name-addr.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip(SipUri),
    /// `tel:` (RFC 3966).
    Tel(TelUri),
    /// Any other scheme: kept opaque (a UAS answers 416 to such a Request-URI).
    Other(OtherUri),
}

/// A `sip:` / `sips:` URI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// User part, escapes kept.
    pub user: Option<ByteString>,
    /// Password, escapes kept.
    pub password: Option<ByteString>,
    /// Host.
    pub host: Host,
    /// Port, if written.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Params,
    /// Headers part after `?`, as written (`Route=%3Csip:x%3E&...`).
    pub headers: Option<ByteString>,
}

/// A `tel:` URI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TelUri {
    /// The number with visual separators as written, e.g. `+1-201-555-0123`.
    pub number: ByteString,
    /// Parameters (`;phone-context=...`).
    pub params: Params,
}

/// A URI of a scheme this crate does not interpret.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OtherUri {
    /// Scheme as written.
    pub scheme: ByteString,
    /// Everything after the `:`.
    pub rest: ByteString,
}

/// Host part of a SIP URI or Via.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A host name as written.
    Domain(ByteString),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (written in brackets).
    Ipv6(Ipv6Addr),
}

impl Host {
    /// Case-insensitive host comparison (names) or address equality.
    pub fn matches(&self, other: &Host) -> bool {
        match (self, other) {
            (Host::Domain(a), Host::Domain(b)) => a.eq_ignore_ascii_case(b),
            _ => self == other,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

impl From<std::net::IpAddr> for Host {
    fn from(ip: std::net::IpAddr) -> Host {
        match ip {
            std::net::IpAddr::V4(a) => Host::Ipv4(a),
            std::net::IpAddr::V6(a) => Host::Ipv6(a),
        }
    }
}

/// Where a URI is written; decides which characters end it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UriCtx {
    /// The whole input is the URI (Request-URI).
    Whole,
    /// Inside `<` `>`.
    Bracketed,
    /// A bare addr-spec in a header: `;` starts header parameters, `?` and `,` are not allowed.
    AddrSpec,
}

/// `unreserved` octets are letters, digits and `-_.!~*'()`; each class below adds its own.
pub(crate) const USERINFO: Class = class(true, b"-_.!~*'()%&=+$,;?/:");
/// `USERINFO` without `:` and `%`: a user part with no password and no escapes.
const USER_PLAIN: Class = class(true, b"-_.!~*'()&=+$,;?/");
/// URI parameter octets (`unreserved`, `param-unreserved`) other than the `%` of an escape,
/// which [`escaped_run`] checks as it meets it.
const PARAM_PLAIN: Class = class(true, b"-_.!~*'()[]/:&+$");
/// URI header octets (`unreserved`, `hnv-unreserved`, `=`) other than the `%` of an escape.
const HEADER_PLAIN: Class = class(true, b"-_.!~*'()[]/?:+$&=");
pub(crate) const HOST: Class = class(true, b"-._");
pub(crate) const TEL: Class = class(false, b"0123456789abcdefABCDEF+-.()*#");
pub(crate) const SCHEME: Class = class(true, b"+-.");
/// `uric` octets of an opaque absolute URI, minus what ends it in context.
pub(crate) const URIC: Class = class(true, b"-_.!~*'()%/:@&=+$[]#;,?");
pub(crate) const URIC_ADDR_SPEC: Class = class(true, b"-_.!~*'()%/:@&=+$[]#");

/// The end of the run from octet `k` of octets of `plain` (which holds no `%`) and `%HH`
/// escapes; `None` at a `%` that does not start an escape. Equals a run of `plain` plus `%`
/// checked afterwards with [`escapes_ok`], since `plain` holds every hex digit.
#[inline(always)]
fn escaped_run(b: &[u8], mut k: usize, plain: &Class) -> Option<usize> {
    loop {
        k = run(b, k, plain);
        if b.get(k) != Some(&b'%') {
            return Some(k);
        }
        if !(b.get(k + 1).is_some_and(u8::is_ascii_hexdigit)
            && b.get(k + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return None;
        }
        k += 3;
    }
}

/// Checks that every `%` starts a `%HH` escape.
fn escapes_ok(b: &[u8]) -> bool {
    let mut k = 0;
    while k < b.len() {
        if b[k] == b'%' {
            if !(b.get(k + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(k + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            k += 3;
        } else {
            k += 1;
        }
    }
    true
}

/// Decodes `%HH` escapes; invalid escapes are kept literally.
pub fn percent_decode(s: &str) -> Cow<'_, [u8]> {
    if !s.contains('%') {
        return Cow::Borrowed(s.as_bytes());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut k = 0;
    while k < b.len() {
        let hex = |x: Option<&u8>| x.and_then(|c| (*c as char).to_digit(16));
        if let (b'%', Some(h), Some(l)) = (b[k], hex(b.get(k + 1)), hex(b.get(k + 2))) {
            out.push((h * 16 + l) as u8);
            k += 3;
            continue;
        }
        out.push(b[k]);
        k += 1;
    }
    Cow::Owned(out)
}

/// A dotted-quad IPv4 address exactly as `Ipv4Addr::from_str` reads it (four groups of one to
/// three digits, each at most 255, no leading zero), without its general-purpose parser.
fn ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut k = 0;
    for (n, o) in octets.iter_mut().enumerate() {
        if n > 0 {
            if b.get(k) != Some(&b'.') {
                return None;
            }
            k += 1;
        }
        let start = k;
        let mut v = 0u32;
        while k < b.len() && k - start < 3 && b[k].is_ascii_digit() {
            v = v * 10 + u32::from(b[k] - b'0');
            k += 1;
        }
        let digits = k - start;
        if digits == 0 || v > 255 || (digits > 1 && b[start] == b'0') {
            return None;
        }
        *o = v as u8;
    }
    (k == b.len()).then(|| Ipv4Addr::from(octets))
}

/// A dotted quad read from octet `k` as [`ipv4`] reads a host made of it, when the octet after
/// it cannot continue a host (so the host is exactly the quad): the address and its end.
/// `None` sends the caller to the general path (which also decides every malformed case).
#[inline(always)]
fn ipv4_at(b: &[u8], mut k: usize) -> Option<(Ipv4Addr, usize)> {
    let digit = |k: usize| b.get(k).map(|c| c.wrapping_sub(b'0')).filter(|d| *d <= 9);
    let mut octets = [0u8; 4];
    for (n, o) in octets.iter_mut().enumerate() {
        if n > 0 {
            if b.get(k) != Some(&b'.') {
                return None;
            }
            k += 1;
        }
        let mut v = u32::from(digit(k)?);
        k += 1;
        // No leading zero: a group starting `0` is that digit alone.
        if v != 0 {
            for _ in 0..2 {
                let Some(d) = digit(k) else { break };
                v = v * 10 + u32::from(d);
                k += 1;
            }
        }
        *o = u8::try_from(v).ok()?;
    }
    match b.get(k) {
        Some(&c) if HOST[usize::from(c)] => None,
        _ => Some((Ipv4Addr::from(octets), k)),
    }
}

/// Parses a host (`hostname`, IPv4 or `[IPv6]`) at octet `k` of `i`: the host and its end.
#[inline(always)]
pub(crate) fn host_at(i: &str, k: usize) -> Result<(HostRef<'_>, usize), nom::Err<()>> {
    let b = i.as_bytes();
    match b.get(k) {
        Some(c) if c.is_ascii_digit() => {
            if let Some((a, end)) = ipv4_at(b, k) {
                return Ok((HostOf::Ipv4(a), end));
            }
            let end = run(b, k, &HOST);
            let h = &b[k..end];
            if let Some(a) = ipv4(h) {
                return Ok((HostOf::Ipv4(a), end));
            }
            // Digits and dots only, yet not a dotted quad: neither an address nor a name.
            if h.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
                return fail();
            }
            Ok((HostOf::Domain(at(i, k, end)), end))
        }
        Some(b'[') => {
            let r = from(i, k + 1);
            let end = r.find(']').ok_or(nom::Err::Error(()))?;
            let a: Ipv6Addr = at(r, 0, end).parse().map_err(|_| nom::Err::Error(()))?;
            Ok((HostOf::Ipv6(a), k + 1 + end + 1))
        }
        Some(b'-' | b'.') | None => fail(),
        Some(_) => {
            let end = run(b, k, &HOST);
            if end == k {
                return fail();
            }
            Ok((HostOf::Domain(at(i, k, end)), end))
        }
    }
}

/// `[":" port]` at octet `k`, with white space allowed around the colon when `lws` (Via
/// sent-by): the port and where it ends (`k` when there is none).
#[inline(always)]
pub(crate) fn port_at(b: &[u8], k: usize, lws: bool) -> Result<(Option<u16>, usize), nom::Err<()>> {
    let c = if lws { ws(b, k) } else { k };
    if b.get(c) != Some(&b':') {
        return Ok((None, k));
    }
    let d = if lws { ws(b, c + 1) } else { c + 1 };
    let end = run(b, d, &DIGIT);
    let p = number_bytes(b.get(d..end).unwrap_or_default(), u64::from(u16::MAX))
        .ok_or(nom::Err::Error(()))?;
    Ok((Some(p as u16), end))
}

/// One URI parameter `";" pname [ "=" pvalue ]` (no white space) at octet `k`; `Ok(None)`
/// when no `;` is there.
#[inline(always)]
pub(crate) fn uri_param_at(b: &[u8], k: usize) -> Result<Option<ParamAt>, ()> {
    if b.get(k) != Some(&b';') {
        return Ok(None);
    }
    let n0 = k + 1;
    let n1 = escaped_run(b, n0, &PARAM_PLAIN).ok_or(())?;
    if n1 == n0 {
        return Err(());
    }
    if b.get(n1) != Some(&b'=') {
        return ParamAt::flag(n0, n1);
    }
    let v0 = n1 + 1;
    let v1 = escaped_run(b, v0, &PARAM_PLAIN).ok_or(())?;
    ParamAt::valued(n0, n1, v0, v1)
}

#[inline(always)]
fn sip_uri(i: &str, secure: bool, ctx: UriCtx) -> PResult<'_, SipUriRef<'_>> {
    let b = i.as_bytes();
    let (user, password, k) = user_part(b)?;
    let (user, password) = (
        user.map(|(a, z)| at(i, a, z)),
        password.map(|(a, z)| at(i, a, z)),
    );
    let (host, k) = host_at(i, k)?;
    let (port, k) = port_at(b, k, false)?;
    let (params, k) = if ctx == UriCtx::AddrSpec {
        (ParamsOf::empty(true), k)
    } else {
        let end = params_end(i, k, true, |_| true).ok_or(nom::Err::Error(()))?;
        (ParamsOf::of(at(i, k, end), true), end)
    };
    let (headers, k) = match b.get(k) {
        Some(b'?') if ctx == UriCtx::AddrSpec => return fail(),
        Some(b'?') => {
            let end = escaped_run(b, k + 1, &HEADER_PLAIN).ok_or(nom::Err::Error(()))?;
            if end == k + 1 {
                return fail();
            }
            (Some(at(i, k + 1, end)), end)
        }
        _ => (None, k),
    };
    Ok((
        from(i, k),
        SipUriOf {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        },
    ))
}

/// [`userinfo`], with one scan for the common case: userinfo without `:` or `%` (no password,
/// no escapes) followed by `@` is the user; followed by any other octet but `:` or `%`, there
/// is no user part; otherwise the general scan.
#[inline(always)]
fn user_part(b: &[u8]) -> Result<UserInfo, nom::Err<()>> {
    let plain = span_bytes(b, &USER_PLAIN);
    match b.get(plain) {
        Some(b'@') if plain > 0 => Ok((Some((0, plain)), None, plain + 1)),
        Some(b'@' | b':' | b'%') => userinfo(b),
        _ => Ok((None, None, 0)),
    }
}

/// The octet offsets of the user and the password, and where the host starts (after the `@`;
/// 0 when there is no user part).
type UserInfo = (Option<(usize, usize)>, Option<(usize, usize)>, usize);

/// `userinfo "@"` at the start of `b` when there is one: user, password and where the rest
/// after the `@` starts; `(None, None, 0)` when there is none.
fn userinfo(b: &[u8]) -> Result<UserInfo, nom::Err<()>> {
    let n = span_bytes(b, &USERINFO);
    if b.get(n) != Some(&b'@') {
        return Ok((None, None, 0));
    }
    let info = b.get(..n).unwrap_or_default();
    let (u, p) = match info.iter().position(|&c| c == b':') {
        Some(k) => ((0, k), Some((k + 1, n))),
        None => ((0, n), None),
    };
    let bad_password = p.is_some_and(|(a, z)| {
        info.get(a..z)
            .unwrap_or_default()
            .iter()
            .any(|c| matches!(c, b';' | b'?' | b'/' | b':'))
    });
    if u.1 == 0 || !escapes_ok(info) || bad_password {
        return fail();
    }
    Ok((Some(u), p, n + 1))
}

fn tel_uri(i: &str, ctx: UriCtx) -> PResult<'_, TelUriRef<'_>> {
    let (i, number) = take1(i, &TEL)?;
    if number[1..].contains('+')
        || (number.starts_with('+') && !number.bytes().any(|b| b.is_ascii_digit()))
    {
        return fail();
    }
    let (i, params) = if ctx == UriCtx::AddrSpec {
        (i, ParamsOf::empty(true))
    } else {
        params_ref(i, true, |_| true)?
    };
    Ok((i, TelUriOf { number, params }))
}

/// Parses a URI at the start of `i` into a borrowed view.
pub(crate) fn uri_ref(i: &str, ctx: UriCtx) -> PResult<'_, UriRef<'_>> {
    // Most URIs start `sip:` (any case): straight to the SIP URI parser, as the scheme
    // dispatch below would go.
    if let (Some(scheme), Some(rest)) = (i.get(..4), i.get(4..))
        && scheme.eq_ignore_ascii_case("sip:")
    {
        let (r, u) = sip_uri(rest, false, ctx)?;
        return Ok((r, UriOf::Sip(u)));
    }
    let (rest, scheme) = take1(i, &SCHEME)?;
    let Some(rest) = rest.strip_prefix(':') else {
        return fail();
    };
    if !scheme.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return fail();
    }
    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        let (r, u) = sip_uri(rest, scheme.len() == 4, ctx)?;
        Ok((r, UriOf::Sip(u)))
    } else if scheme.eq_ignore_ascii_case("tel") {
        let (r, u) = tel_uri(rest, ctx)?;
        Ok((r, UriOf::Tel(u)))
    } else {
        let (r, body) = take1(
            rest,
            if ctx == UriCtx::AddrSpec {
                &URIC_ADDR_SPEC
            } else {
                &URIC
            },
        )?;
        if !escapes_ok(body.as_bytes()) {
            return fail();
        }
        Ok((r, UriOf::Other(OtherUriOf { scheme, rest: body })))
    }
}

/// Parses a URI at the start of `i` (a slice of `src`).
pub(crate) fn uri<'a>(src: &ByteString, i: &'a str, ctx: UriCtx) -> PResult<'a, Uri> {
    let (r, u) = uri_ref(i, ctx)?;
    Ok((r, u.own(src)))
}

/// A host as a view (`S` = `&str`, [`HostRef`]) or a record of offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostOf<S> {
    /// A host name as written.
    Domain(S),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (written in brackets).
    Ipv6(Ipv6Addr),
}

/// A borrowed host.
pub type HostRef<'a> = HostOf<&'a str>;

impl<S> HostOf<S> {
    #[inline(always)]
    pub(crate) fn map<T>(self, f: &impl Fn(S) -> T) -> HostOf<T> {
        match self {
            HostOf::Domain(d) => HostOf::Domain(f(d)),
            HostOf::Ipv4(a) => HostOf::Ipv4(a),
            HostOf::Ipv6(a) => HostOf::Ipv6(a),
        }
    }
}

impl HostRef<'_> {
    /// Case-insensitive host comparison (names) or address equality with an owned host.
    pub fn matches(&self, other: &Host) -> bool {
        match (self, other) {
            (HostOf::Domain(a), Host::Domain(b)) => a.eq_ignore_ascii_case(b),
            (HostOf::Ipv4(a), Host::Ipv4(b)) => a == b,
            (HostOf::Ipv6(a), Host::Ipv6(b)) => a == b,
            _ => false,
        }
    }

    pub(crate) fn own(&self, src: &ByteString) -> Host {
        match *self {
            HostOf::Domain(d) => Host::Domain(src.slice_ref(d)),
            HostOf::Ipv4(a) => Host::Ipv4(a),
            HostOf::Ipv6(a) => Host::Ipv6(a),
        }
    }
}

impl fmt::Display for HostRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostOf::Domain(d) => f.write_str(d),
            HostOf::Ipv4(a) => write!(f, "{a}"),
            HostOf::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A URI as a view (`S` = `&str`, [`UriRef`]) or a record of offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UriOf<S> {
    /// `sip:` or `sips:`.
    Sip(SipUriOf<S>),
    /// `tel:` (RFC 3966).
    Tel(TelUriOf<S>),
    /// Any other scheme, kept opaque.
    Other(OtherUriOf<S>),
}

/// A borrowed URI: its parts are slices of the header value (or start line) it was read from.
pub type UriRef<'a> = UriOf<&'a str>;

/// A `sip:` / `sips:` URI as a view or a record of offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SipUriOf<S> {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// User part, escapes kept.
    pub user: Option<S>,
    /// Password, escapes kept.
    pub password: Option<S>,
    /// Host.
    pub host: HostOf<S>,
    /// Port, if written.
    pub port: Option<u16>,
    /// URI parameters.
    pub params: ParamsOf<S>,
    /// Headers part after `?`, as written.
    pub headers: Option<S>,
}

/// A borrowed `sip:` / `sips:` URI.
pub type SipUriRef<'a> = SipUriOf<&'a str>;

/// A `tel:` URI as a view or a record of offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TelUriOf<S> {
    /// The number with visual separators as written.
    pub number: S,
    /// Parameters.
    pub params: ParamsOf<S>,
}

/// A borrowed `tel:` URI.
pub type TelUriRef<'a> = TelUriOf<&'a str>;

/// A URI of another scheme as a view or a record of offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OtherUriOf<S> {
    /// Scheme as written.
    pub scheme: S,
    /// Everything after the `:`.
    pub rest: S,
}

impl<S> UriOf<S> {
    #[inline(always)]
    pub(crate) fn map<T>(self, f: &impl Fn(S) -> T) -> UriOf<T> {
        match self {
            UriOf::Sip(u) => UriOf::Sip(SipUriOf {
                secure: u.secure,
                user: u.user.map(f),
                password: u.password.map(f),
                host: u.host.map(f),
                port: u.port,
                params: u.params.map(f),
                headers: u.headers.map(f),
            }),
            UriOf::Tel(t) => UriOf::Tel(TelUriOf {
                number: f(t.number),
                params: t.params.map(f),
            }),
            UriOf::Other(o) => UriOf::Other(OtherUriOf {
                scheme: f(o.scheme),
                rest: f(o.rest),
            }),
        }
    }
}

impl<'a> UriRef<'a> {
    /// The SIP URI inside, if this is one.
    pub fn as_sip(&self) -> Option<&SipUriRef<'a>> {
        match self {
            UriOf::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// The owned URI, its text shared with `src` (the value the view lies in).
    pub(crate) fn own(&self, src: &ByteString) -> Uri {
        let s = |x: &str| src.slice_ref(x);
        match self {
            UriOf::Sip(u) => Uri::Sip(SipUri {
                secure: u.secure,
                user: u.user.map(s),
                password: u.password.map(s),
                host: u.host.own(src),
                port: u.port,
                params: u.params.own(src),
                headers: u.headers.map(s),
            }),
            UriOf::Tel(t) => Uri::Tel(TelUri {
                number: s(t.number),
                params: t.params.own(src),
            }),
            UriOf::Other(o) => Uri::Other(OtherUri {
                scheme: s(o.scheme),
                rest: s(o.rest),
            }),
        }
    }
}

impl Uri {
    /// Parses a complete URI from text.
    pub fn parse(text: impl Into<ByteString>) -> Result<Uri, Error> {
        let src: ByteString = text.into();
        match uri(&src, &src, UriCtx::Whole) {
            Ok(("", u)) => Ok(u),
            _ => Err(Error::RequestUri("not a URI")),
        }
    }

    /// The SIP URI inside, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// The scheme as written in lower case (`sip`, `sips`, `tel` or the other scheme).
    pub fn scheme(&self) -> Cow<'_, str> {
        match self {
            Uri::Sip(u) if u.secure => Cow::Borrowed("sips"),
            Uri::Sip(_) => Cow::Borrowed("sip"),
            Uri::Tel(_) => Cow::Borrowed("tel"),
            Uri::Other(o) => Cow::Owned(o.scheme.to_ascii_lowercase()),
        }
    }
}

impl SipUri {
    /// `sip:host` with nothing else.
    pub fn new(host: Host) -> SipUri {
        SipUri {
            secure: false,
            user: None,
            password: None,
            host,
            port: None,
            params: Params::new(),
            headers: None,
        }
    }

    /// The user part with escapes decoded.
    pub fn user_decoded(&self) -> Option<Cow<'_, [u8]>> {
        self.user.as_deref().map(percent_decode)
    }

    /// The `transport` parameter in lower case, if any.
    pub fn transport(&self) -> Option<String> {
        self.params
            .value("transport")
            .map(|t| t.to_ascii_lowercase())
    }

    /// URI comparison per RFC 3261 §19.1.4.
    pub fn equivalent(&self, other: &SipUri) -> bool {
        fn dec_eq(a: Option<&ByteString>, b: Option<&ByteString>) -> bool {
            a.map(|a| percent_decode(a)) == b.map(|b| percent_decode(b))
        }
        if self.secure != other.secure
            || !dec_eq(self.user.as_ref(), other.user.as_ref())
            || !dec_eq(self.password.as_ref(), other.password.as_ref())
            || !self.host.matches(&other.host)
            || self.port != other.port
        {
            return false;
        }
        let params = |u: &SipUri| -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
            u.params
                .iter()
                .map(|p| {
                    let value = p
                        .value
                        .as_deref()
                        .map(|v| percent_decode(v).to_ascii_lowercase());
                    (percent_decode(&p.name).to_ascii_lowercase(), value)
                })
                .collect()
        };
        let (a, b) = (params(self), params(other));
        let special: [&[u8]; 5] = [b"user", b"ttl", b"method", b"maddr", b"transport"];
        for (name, _) in a.iter().chain(b.iter()) {
            let find = |l: &[(Vec<u8>, Option<Vec<u8>>)]| {
                l.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
            };
            match (find(&a), find(&b)) {
                (Some(x), Some(y)) if x != y => return false,
                (None, _) | (_, None) if special.contains(&name.as_slice()) => return false,
                _ => {}
            }
        }
        let headers = |u: &SipUri| -> Vec<(Vec<u8>, Vec<u8>)> {
            let mut v: Vec<_> = u
                .headers
                .as_deref()
                .unwrap_or("")
                .split('&')
                .filter(|h| !h.is_empty())
                .map(|h| {
                    let (n, val) = h.split_once('=').unwrap_or((h, ""));
                    (
                        percent_decode(n).to_ascii_lowercase(),
                        percent_decode(val).into_owned(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        headers(self) == headers(other)
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                f.write_str(":")?;
                f.write_str(p)?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            f.write_str("?")?;
            f.write_str(h)?;
        }
        Ok(())
    }
}

impl fmt::Display for TelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tel:{}{}", self.number, self.params)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Tel(u) => u.fmt(f),
            Uri::Other(o) => write!(f, "{}:{}", o.scheme, o.rest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri {
        match Uri::parse(s.to_owned()).unwrap() {
            Uri::Sip(u) => u,
            other => panic!("not sip: {other:?}"),
        }
    }

    proptest::proptest! {
        #[test]
        fn user_part_agrees_with_the_general_scan(s in "[a-z0-9@:%;?/&=.+-]{0,16}") {
            proptest::prop_assert_eq!(user_part(s.as_bytes()), userinfo(s.as_bytes()));
        }

        #[test]
        fn ipv4_reads_as_std_does(s in "[0-9.]{0,17}") {
            proptest::prop_assert_eq!(ipv4(s.as_bytes()), s.parse::<Ipv4Addr>().ok());
        }
    }

    #[test]
    fn ipv4_edge_cases() {
        for s in [
            "0.0.0.0",
            "255.255.255.255",
            "192.0.2.1",
            "01.2.3.4",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.",
            "1..2.3",
            "1234.1.1.1",
            "1.2.3.4.5",
            "",
        ] {
            assert_eq!(ipv4(s.as_bytes()), s.parse::<Ipv4Addr>().ok(), "{s}");
        }
    }

    #[test]
    fn full_sip_uri_round_trips() {
        let s = "sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?Subject=hi&Priority=urgent";
        let u = sip(s);
        assert!(u.secure);
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("secret"));
        assert_eq!(u.host, Host::Ipv6("2001:db8::1".parse().unwrap()));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport().as_deref(), Some("tcp"));
        assert!(u.params.contains("lr"));
        assert_eq!(u.to_string(), s);
    }

    #[test]
    fn tel_and_other_schemes() {
        let t = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").unwrap();
        assert!(matches!(&t, Uri::Tel(t) if &*t.number == "+1-201-555-0123"));
        assert_eq!(
            t.to_string(),
            "tel:+1-201-555-0123;phone-context=example.com"
        );
        let o = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(o.scheme(), "soap.beep");
        assert!(Uri::parse("sip:user@example.com x").is_err());
        assert!(Uri::parse("sip:user@host:99999").is_err());
        assert!(Uri::parse("sip:user@host;%zz").is_err());
    }

    #[test]
    fn equivalence_follows_rfc3261() {
        assert!(
            sip("sip:%61lice@AtLanTa.com;transport=TCP")
                .equivalent(&sip("sip:alice@atlanta.com;transport=tcp"))
        );
        assert!(!sip("sip:alice@atlanta.com").equivalent(&sip("sip:ALICE@atlanta.com")));
        assert!(!sip("sip:bob@biloxi.com").equivalent(&sip("sip:bob@biloxi.com:5060")));
        assert!(
            !sip("sip:carol@chicago.com").equivalent(&sip("sip:carol@chicago.com;transport=udp"))
        );
        assert!(
            sip("sip:carol@chicago.com;security=on")
                .equivalent(&sip("sip:carol@chicago.com;newparam=5"))
        );
        assert!(
            sip("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com").equivalent(
                &sip("sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com")
            )
        );
        assert_eq!(&*percent_decode("null-%00-x%4"), b"null-\0-x%4");
    }
}
