//! The general parsers of the typed values as they were before the one-scan rewrite (nom-style,
//! one combinator per grammar rule, no fast paths), kept as the reference the rewritten parsers
//! are compared with on generated input. Test-only.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::super::grammar::class;
use super::super::grammar::{
    DIGIT, GEN_VALUE, PResult, ParamRef, ParamsOf, ParamsRef, TOKEN, WSP, fail, span,
};
use super::super::uri::{
    HOST, HostOf, HostRef, OtherUriOf, SCHEME, SipUriOf, SipUriRef, TEL, TelUriOf, TelUriRef, URIC,
    URIC_ADDR_SPEC, USERINFO, UriCtx, UriOf, UriRef,
};
use super::{AUTH_PARAM_VALUE, AuthRef, NameAddrOf, NameAddrRef, ViaOf, ViaRef};
use crate::message::grammar::Class;

const PARAM: Class = class(true, b"-_.!~*'()%[]/:&+$");
const HEADER: Class = class(true, b"-_.!~*'()%[]/?:+$&=");

fn take1<'a>(i: &'a str, class: &Class) -> PResult<'a, &'a str> {
    match i
        .bytes()
        .position(|c| !class[usize::from(c)])
        .unwrap_or(i.len())
    {
        0 => fail(),
        n => Ok((&i[n..], &i[..n])),
    }
}

fn token(i: &str) -> PResult<'_, &str> {
    take1(i, &TOKEN)
}

fn sws(i: &str) -> &str {
    &i[span(i, &WSP)..]
}

fn lws(i: &str) -> PResult<'_, &str> {
    take1(i, &WSP)
}

fn sep(i: &str, c: char) -> Option<&str> {
    sws(i).strip_prefix(c).map(sws)
}

/// The octet-by-octet `quoted-string` loop.
pub(crate) fn quoted_string(i: &str) -> PResult<'_, &str> {
    let b = i.as_bytes();
    if b.first() != Some(&b'"') {
        return fail();
    }
    let mut k = 1;
    while k < b.len() {
        match b[k] {
            b'"' => return Ok((&i[k + 1..], &i[..k + 1])),
            b'\\' => match b.get(k + 1) {
                Some(&c) if c < 0x80 && c != b'\r' && c != b'\n' => k += 2,
                _ => return fail(),
            },
            b' ' | b'\t' => k += 1,
            c if c < 0x21 || c == 0x7f => return fail(),
            _ => k += 1,
        }
    }
    fail()
}

pub(crate) fn list_next(i: &str) -> Result<Option<&str>, nom::Err<()>> {
    let i = sws(i);
    if i.is_empty() {
        Ok(None)
    } else if let Some(r) = i.strip_prefix(',') {
        Ok(Some(sws(r)))
    } else {
        fail()
    }
}

fn escapes_ok(s: &str) -> bool {
    let b = s.as_bytes();
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

fn number(s: &str, max: u64) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|v| *v <= max)
}

pub(crate) fn host_ref(i: &str) -> PResult<'_, HostRef<'_>> {
    if let Some(r) = i.strip_prefix('[') {
        let end = r.find(']').ok_or(nom::Err::Error(()))?;
        let a: Ipv6Addr = r[..end].parse().map_err(|_| nom::Err::Error(()))?;
        return Ok((&r[end + 1..], HostOf::Ipv6(a)));
    }
    let (rest, h) = take1(i, &HOST)?;
    if h.starts_with(['-', '.']) {
        return fail();
    }
    if h.starts_with(|c: char| c.is_ascii_digit()) {
        if let Ok(a) = h.parse::<Ipv4Addr>() {
            return Ok((rest, HostOf::Ipv4(a)));
        }
        if h.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return fail();
        }
    }
    Ok((rest, HostOf::Domain(h)))
}

pub(crate) fn port(i: &str, lws: bool) -> PResult<'_, Option<u16>> {
    let after = if lws {
        sep(i, ':')
    } else {
        i.strip_prefix(':')
    };
    let Some(r) = after else { return Ok((i, None)) };
    let (rest, digits) = take1(r, &DIGIT)?;
    let p = number(digits, u64::from(u16::MAX)).ok_or(nom::Err::Error(()))?;
    Ok((rest, Some(p as u16)))
}

fn uri_param(i: &str) -> Result<Option<(&str, ParamRef<'_>)>, nom::Err<()>> {
    let Some(r) = i.strip_prefix(';') else {
        return Ok(None);
    };
    let (r, name) = take1(r, &PARAM)?;
    let (r, value) = match r.strip_prefix('=') {
        Some(r) => {
            let (r, v) = take1(r, &PARAM)?;
            (r, Some(v))
        }
        None => (r, None),
    };
    if !escapes_ok(name) || !value.is_none_or(escapes_ok) {
        return fail();
    }
    Ok(Some((r, ParamRef { name, value })))
}

fn header_param(i: &str) -> Result<Option<(&str, ParamRef<'_>)>, nom::Err<()>> {
    let Some(rest) = sep(i, ';') else {
        return Ok(None);
    };
    let (rest, name) = token(rest)?;
    let (rest, value) = match sep(rest, '=') {
        Some(r) => {
            let (r, v) = if r.starts_with('"') {
                quoted_string(r)?
            } else {
                take1(r, &GEN_VALUE)?
            };
            (r, Some(v))
        }
        None => (rest, None),
    };
    Ok(Some((rest, ParamRef { name, value })))
}

/// Every parameter in order (the reference reading of a parameter list).
pub(crate) fn param_list(i: &str, uri: bool) -> Vec<ParamRef<'_>> {
    let mut out = Vec::new();
    let mut r = i;
    while let Ok(Some((rest, p))) = if uri { uri_param(r) } else { header_param(r) } {
        out.push(p);
        r = rest;
    }
    out
}

pub(crate) fn params_ref(
    i: &str,
    uri: bool,
    mut check: impl FnMut(&ParamRef<'_>) -> bool,
) -> PResult<'_, ParamsRef<'_>> {
    let mut r = i;
    while let Some((rest, p)) = if uri { uri_param(r)? } else { header_param(r)? } {
        if !check(&p) {
            return fail();
        }
        r = rest;
    }
    let text = &i[..i.len() - r.len()];
    Ok((r, ParamsOf::of(text, uri)))
}

type UserInfo<'a> = (Option<&'a str>, Option<&'a str>, &'a str);

fn userinfo(i: &str) -> Result<UserInfo<'_>, nom::Err<()>> {
    let n = span(i, &USERINFO);
    if i.as_bytes().get(n) == Some(&b'@') {
        let info = &i[..n];
        let (u, p) = match info.bytes().position(|c| c == b':') {
            Some(k) => (&info[..k], Some(&info[k + 1..])),
            None => (info, None),
        };
        if u.is_empty() || !escapes_ok(info) || p.is_some_and(|p| p.contains([';', '?', '/', ':']))
        {
            return fail();
        }
        Ok((Some(u), p, &i[n + 1..]))
    } else {
        Ok((None, None, i))
    }
}

fn sip_uri(i: &str, secure: bool, ctx: UriCtx) -> PResult<'_, SipUriRef<'_>> {
    let (user, password, i) = userinfo(i)?;
    let (i, host) = host_ref(i)?;
    let (i, port) = port(i, false)?;
    let (i, params) = if ctx == UriCtx::AddrSpec {
        (i, ParamsOf::empty(true))
    } else {
        params_ref(i, true, |_| true)?
    };
    let (i, headers) = match i.strip_prefix('?') {
        Some(_) if ctx == UriCtx::AddrSpec => return fail(),
        Some(r) => {
            let (r, h) = take1(r, &HEADER)?;
            if !escapes_ok(h) {
                return fail();
            }
            (r, Some(h))
        }
        None => (i, None),
    };
    Ok((
        i,
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

pub(crate) fn uri_ref(i: &str, ctx: UriCtx) -> PResult<'_, UriRef<'_>> {
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
        if !escapes_ok(body) {
            return fail();
        }
        Ok((r, UriOf::Other(OtherUriOf { scheme, rest: body })))
    }
}

pub(crate) fn via<'a>(i: &'a str) -> PResult<'a, ViaRef<'a>> {
    let (i, protocol) = token(i)?;
    let i = sep(i, '/').ok_or(nom::Err::Error(()))?;
    let (i, version) = token(i)?;
    let i = sep(i, '/').ok_or(nom::Err::Error(()))?;
    let (i, transport) = token(i)?;
    let (i, _) = lws(i)?;
    let (i, host) = host_ref(i)?;
    let (i, port) = port(i, true)?;
    let (i, params) = params_ref(i, false, |p| {
        p.value.is_some() || !p.name.eq_ignore_ascii_case("branch")
    })?;
    Ok((
        i,
        ViaOf {
            protocol,
            version,
            transport,
            host,
            port,
            params,
        },
    ))
}

pub(crate) fn name_addr<'a>(
    i: &'a str,
    addr_spec: bool,
    mut check: impl FnMut(&ParamRef<'_>) -> bool,
) -> PResult<'a, NameAddrRef<'a>> {
    let i = sws(i);
    let (i, display) = if i.starts_with('"') {
        let (r, q) = quoted_string(i)?;
        (sws(r), Some(q))
    } else if i.starts_with('<') {
        (i, None)
    } else {
        let mut r = i;
        let mut end = i;
        while let Ok((after, _)) = token(r) {
            end = after;
            r = sws(after);
        }
        if r.starts_with('<') && end.len() < i.len() {
            (r, Some(&i[..i.len() - end.len()]))
        } else if addr_spec {
            let (r, uri) = uri_ref(i, UriCtx::AddrSpec)?;
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
    };
    let Some(i) = i.strip_prefix('<') else {
        return fail();
    };
    let (i, uri) = uri_ref(i, UriCtx::Bracketed)?;
    let Some(i) = i.strip_prefix('>') else {
        return fail();
    };
    let (i, params) = params_ref(i, false, check)?;
    Ok((
        i,
        NameAddrOf {
            display,
            uri,
            params,
        },
    ))
}

fn auth_param_value(i: &str) -> PResult<'_, &str> {
    let after = sep(i, '=').ok_or(nom::Err::Error(()))?;
    if after.starts_with('"') {
        quoted_string(after)
    } else {
        take1(after, &AUTH_PARAM_VALUE)
    }
}

/// Every parameter of a challenge or credentials value in order.
pub(crate) fn auth_params(params: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = Some(params);
    while let Some(r) = rest {
        let Ok((after, name)) = token(r) else { break };
        let Ok((after, v)) = auth_param_value(after) else {
            break;
        };
        out.push((name, v));
        rest = list_next(after).ok().flatten();
    }
    out
}

pub(crate) fn auth<'a>(i: &'a str) -> PResult<'a, AuthRef<'a>> {
    let (r, scheme) = token(i)?;
    let (start, _) = lws(r)?;
    let done = |after: &'a str| {
        Ok((
            after,
            AuthRef {
                scheme,
                params: &start[..start.len() - after.len()],
            },
        ))
    };
    let (mut after_name, _) = token(start)?;
    loop {
        let (after, _) = auth_param_value(after_name)?;
        let Ok(Some(next)) = list_next(after) else {
            return done(after);
        };
        let (a, _) = token(next)?;
        if lws(a).and_then(|(b, _)| token(b)).is_ok() {
            return done(after);
        }
        after_name = a;
    }
}

/// The one-scan parsers agree with the reference on generated text: SIP fragments (schemes,
/// brackets, quotes, escapes, addresses, ports, parameters, white space, commas, non-ASCII)
/// joined at random, so that most inputs are near-valid and every branch is reached.
mod agree {
    use proptest::prelude::*;

    use super::super::super::grammar::{self, ParamsOf};
    use super::super::super::uri::{self, UriCtx};
    use super::super::{AuthRef, NameAddrRef, ViaRef};

    const PIECES: &[&str] = &[
        "sip:",
        "sips:",
        "SIP:",
        "tel:",
        "mailto:",
        "x-y.z+1:",
        "<",
        ">",
        "\"",
        "\\",
        "\\\"",
        "alice",
        "Bob",
        "+1-201-555",
        "@",
        ":",
        "pw",
        "192.0.2.1",
        "1.2.3.4",
        "01.2.3.4",
        "256.1.1.1",
        "1.2.3",
        "10.0.0.255.9",
        "0",
        "9",
        "5060",
        "99999",
        "[2001:db8::1]",
        "[",
        "]",
        "::1",
        "example.com",
        "a-b.c",
        "-x",
        ".y",
        ";",
        ";;",
        "tag",
        "=",
        "lr",
        "branch",
        "rport",
        "expires",
        "3600",
        "z9hG4bK",
        "%41",
        "%4",
        "%",
        "%zz",
        "?",
        "&",
        "h=v",
        " ",
        "  ",
        "\t",
        ",",
        "/",
        "SIP/2.0/",
        "SIP",
        "2.0",
        "UDP",
        "tcp",
        "Digest",
        "realm",
        "nonce",
        "\"q r\"",
        "\"\"",
        "é",
        "~*'()",
        "$",
        "!",
        "#",
        "\x01",
        "\x7f",
    ];

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => proptest::collection::vec(proptest::sample::select(PIECES), 0..14)
                .prop_map(|v| v.concat()),
            1 => "[ -~\té]{0,40}",
        ]
    }

    /// Every parameter a `check` closure is shown, in order, and whether it accepted it.
    type Seen = Vec<(String, Option<String>)>;

    fn checker(seen: &mut Seen) -> impl FnMut(&grammar::ParamRef<'_>) -> bool + '_ {
        move |p| {
            seen.push((p.name.to_owned(), p.value.map(str::to_owned)));
            // Refuse a parameter now and then, so that refusals are compared too.
            !p.name.eq_ignore_ascii_case("expires") || p.value.is_some()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn via(s in text()) {
            prop_assert_eq!(ViaRef::parse(&s), super::via(&s));
            let v = format!("SIP/2.0/UDP {s}");
            prop_assert_eq!(ViaRef::parse(&v), super::via(&v));
        }

        #[test]
        fn name_addr(s in text(), addr_spec in any::<bool>()) {
            for s in [s.clone(), format!("<sip:{s}"), format!("\"A\" <sip:a@{s}")] {
                let ours = NameAddrRef::parse(&s, addr_spec);
                prop_assert_eq!(ours, super::name_addr(&s, addr_spec, |_| true));
                let (mut a, mut b) = (Seen::new(), Seen::new());
                let ours = NameAddrRef::parse_with(&s, addr_spec, checker(&mut a));
                let theirs = super::name_addr(&s, addr_spec, checker(&mut b));
                prop_assert_eq!(ours, theirs);
                prop_assert_eq!(a, b);
            }
        }

        #[test]
        fn uri(s in text()) {
            for s in [s.clone(), format!("sip:{s}"), format!("sip:a@{s}")] {
                for ctx in [UriCtx::Whole, UriCtx::Bracketed, UriCtx::AddrSpec] {
                    prop_assert_eq!(uri::uri_ref(&s, ctx), super::uri_ref(&s, ctx));
                }
            }
        }

        #[test]
        fn host_and_port(s in text(), lws in any::<bool>()) {
            let ours = uri::host_at(&s, 0).map(|(h, e)| (&s[e..], h));
            prop_assert_eq!(ours, super::host_ref(&s));
            let ours = uri::port_at(s.as_bytes(), 0, lws).map(|(p, e)| (&s[e..], p));
            prop_assert_eq!(ours, super::port(&s, lws));
        }

        #[test]
        fn dotted_hosts(s in "[0-9.]{0,17}[a-z0-9;>:. -]?") {
            // Dotted digits (the IPv4 fast path) followed by anything that may continue a host
            // or end it.
            let ours = uri::host_at(&s, 0).map(|(h, e)| (&s[e..], h));
            prop_assert_eq!(ours, super::host_ref(&s));
        }

        #[test]
        fn params(s in text(), is_uri in any::<bool>()) {
            for s in [s.clone(), format!(";{s}"), format!(" ; {s}")] {
                let (mut a, mut b) = (Seen::new(), Seen::new());
                let ours = grammar::params_ref(&s, is_uri, checker(&mut a));
                let theirs = super::params_ref(&s, is_uri, checker(&mut b));
                prop_assert_eq!(ours, theirs);
                prop_assert_eq!(a, b);
                // Reading a list back (any text: a list is read up to its first bad parameter).
                let ours: Vec<_> = ParamsOf::of(s.as_str(), is_uri).iter().collect();
                prop_assert_eq!(ours, super::param_list(&s, is_uri));
            }
        }

        #[test]
        fn auth(s in text()) {
            let ours = AuthRef::parse(&s);
            prop_assert_eq!(ours, super::auth(&s));
            let v = format!("Digest {s}");
            let ours = AuthRef::parse(&v);
            prop_assert_eq!(ours.clone(), super::auth(&v));
            if let Ok((_, a)) = ours {
                prop_assert_eq!(a.params().collect::<Vec<_>>(), super::auth_params(a.params));
            }
            let any = AuthRef { scheme: "Digest", params: &s };
            prop_assert_eq!(any.params().collect::<Vec<_>>(), super::auth_params(&s));
        }

        #[test]
        fn list_next(s in text()) {
            prop_assert_eq!(grammar::list_next(&s), super::list_next(&s));
        }
    }
}
