//! RFC 3261 §25 lexical rules shared by the header and URI parsers (nom, zero-copy over `&str`).
//!
//! Header values reach these parsers unfolded (line folding already replaced by a space), so
//! linear white space is only SP and HTAB here.

use std::borrow::Cow;
use std::fmt;

use bytestring::ByteString;
use nom::IResult;

/// nom result with the unit error: the callers map failures onto [`crate::Error`] themselves.
pub(crate) type PResult<'a, T> = IResult<&'a str, T, ()>;

pub(crate) fn fail<T>() -> Result<T, nom::Err<()>> {
    Err(nom::Err::Error(()))
}

/// A set of ASCII octets, looked up by octet value (the scanners run on bytes, not `char`s).
pub(crate) type Class = [bool; 256];

/// The class holding ASCII letters and digits (when `alnum`) and the octets of `extra`.
pub(crate) const fn class(alnum: bool, extra: &[u8]) -> Class {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 128 {
        t[b] = alnum && (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut k = 0;
    while k < extra.len() {
        t[extra[k] as usize] = true;
        k += 1;
    }
    t
}

/// `token` characters (RFC 3261 §25.1).
pub(crate) const TOKEN: Class = class(true, b"-.!%*_+`'~");
/// ASCII digits.
pub(crate) const DIGIT: Class = class(false, b"0123456789");
/// SP and HTAB.
pub(crate) const WSP: Class = class(false, b" \t");

/// Whether `c` is a `token` character.
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii() && TOKEN[c as usize]
}

/// Length of the run of octets of `class` at the start of `i`.
#[inline]
pub(crate) fn span(i: &str, class: &Class) -> usize {
    span_bytes(i.as_bytes(), class)
}

/// [`span`] over octets.
#[inline]
pub(crate) fn span_bytes(b: &[u8], class: &Class) -> usize {
    run(b, 0, class)
}

/// The end of the run of octets of `class` that starts at octet `k` of `b`, four octets at a
/// time while four are left.
#[inline(always)]
pub(crate) fn run(b: &[u8], mut k: usize, class: &Class) -> usize {
    while let Some(&[c0, c1, c2, c3]) = b.get(k..k.wrapping_add(4)) {
        if !class[usize::from(c0)] {
            return k;
        }
        if !class[usize::from(c1)] {
            return k + 1;
        }
        if !class[usize::from(c2)] {
            return k + 2;
        }
        if !class[usize::from(c3)] {
            return k + 3;
        }
        k += 4;
    }
    while let Some(&c) = b.get(k) {
        if !class[usize::from(c)] {
            break;
        }
        k += 1;
    }
    k
}

/// The first octet at or after `k` that is not SP or HTAB.
#[inline(always)]
pub(crate) fn ws(b: &[u8], mut k: usize) -> usize {
    while let Some(b' ' | b'\t') = b.get(k) {
        k += 1;
    }
    k
}

/// The text of `i` between two octet offsets found by the scanners (which stop only next to
/// ASCII octets, so both are char boundaries; empty if they were not).
#[inline(always)]
pub(crate) fn at(i: &str, a: usize, z: usize) -> &str {
    i.get(a..z).unwrap_or_default()
}

/// `i` from octet `k` on (empty if `k` is past the end or not a char boundary).
#[inline(always)]
pub(crate) fn from(i: &str, k: usize) -> &str {
    i.get(k..).unwrap_or_default()
}

/// One or more octets of `class` (which holds only ASCII, so the split is a char boundary).
#[inline]
pub(crate) fn take1<'a>(i: &'a str, class: &Class) -> PResult<'a, &'a str> {
    match span(i, class) {
        0 => fail(),
        n => {
            let (run, rest) = i.split_at(n);
            Ok((rest, run))
        }
    }
}

#[inline]
pub(crate) fn token(i: &str) -> PResult<'_, &str> {
    take1(i, &TOKEN)
}

pub(crate) fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Optional white space (`SWS` after unfolding).
#[inline]
pub(crate) fn sws(i: &str) -> &str {
    // Most separators have no white space around them: look at one octet first.
    match i.as_bytes().first() {
        Some(b' ' | b'\t') => &i[span(i, &WSP)..],
        _ => i,
    }
}

/// `$s` (a slice of `$src`) as a `ByteString`: one of the listed common words becomes a static
/// string (cloning and dropping it touch no reference count), anything else a slice of `$src`.
/// The words are compared case-sensitively, so the text stays exactly as written.
macro_rules! word {
    ($src:expr, $s:expr, [$($w:literal),* $(,)?]) => {
        match $s {
            $( $w => ::bytestring::ByteString::from_static($w), )*
            other => $src.slice_ref(other),
        }
    };
}
pub(crate) use word;

/// A header parameter name.
pub(crate) fn param_name(src: &ByteString, s: &str) -> ByteString {
    word!(
        src,
        s,
        [
            "tag",
            "branch",
            "lr",
            "rport",
            "received",
            "expires",
            "q",
            "maddr",
            "ttl",
            "transport"
        ]
    )
}

/// Mandatory white space (`LWS` after unfolding).
pub(crate) fn lws(i: &str) -> PResult<'_, &str> {
    take1(i, &WSP)
}

/// `SWS c SWS`: consumes the separator `c` (ASCII) with white space around it.
#[inline]
pub(crate) fn sep(i: &str, c: char) -> Option<&str> {
    let i = sws(i);
    // Compared as an octet: `c` is ASCII, so the octet after it starts a char.
    match i.as_bytes().first() {
        Some(&b) if c.is_ascii() && b == c as u8 => Some(sws(&i[1..])),
        _ => None,
    }
}

/// The end (just past the closing quote) of the `quoted-string` that starts at octet `k`.
#[inline]
pub(crate) fn quoted_end(b: &[u8], k: usize) -> Option<usize> {
    if b.get(k) != Some(&b'"') {
        return None;
    }
    let mut k = k + 1;
    loop {
        // qdtext runs up to a quote, a backslash or an octet that is not allowed (all ASCII,
        // so `k` stays on a char boundary).
        k = run(b, k, &QDTEXT);
        match b.get(k) {
            Some(b'"') => return Some(k + 1),
            Some(b'\\') => {
                // quoted-pair: any octet 0x00-0x7F except CR and LF.
                match b.get(k + 1) {
                    Some(&c) if c < 0x80 && c != b'\r' && c != b'\n' => k += 2,
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
}

/// `qdtext` octets: white space, visible ASCII but `"` and `\`, and every non-ASCII octet
/// (UTF8-NONASCII; the text is valid UTF-8 already).
const QDTEXT: Class = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = (b >= 0x20 && b != 0x7f && b != b'"' as usize && b != b'\\' as usize)
            || b == b'\t' as usize;
        b += 1;
    }
    t
};

/// Removes the quotes and the backslash escapes from a `quoted-string`; other text is returned
/// unchanged.
pub fn unquote(s: &str) -> Cow<'_, str> {
    let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return Cow::Borrowed(s);
    };
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Quotes `s` as a `quoted-string`, escaping `"` and `\`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Parses a run of ASCII digits into a number no larger than `max`.
#[inline]
pub(crate) fn number(s: &str, max: u64) -> Option<u64> {
    number_bytes(s.as_bytes(), max)
}

/// [`number`] over octets.
#[inline(always)]
pub(crate) fn number_bytes(s: &[u8], max: u64) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    // One pass: each octet checked as a digit and added in. Up to 19 digits cannot overflow
    // (10**19 - 1 < 2**64), so only a 20-digit number needs checked arithmetic.
    let v = if s.len() < 20 {
        s.iter().try_fold(0u64, |acc, &b| {
            let d = b.wrapping_sub(b'0');
            (d <= 9).then(|| acc * 10 + u64::from(d))
        })?
    } else {
        s.iter().try_fold(0u64, |acc, &b| {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            acc.checked_mul(10)?.checked_add(u64::from(d))
        })?
    };
    (v <= max).then_some(v)
}

/// One `;name[=value]` parameter. The value is kept as written (a quoted string keeps its
/// quotes).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Param {
    /// Parameter name as written.
    pub name: ByteString,
    /// Parameter value as written, `None` for a flag parameter such as `lr`.
    pub value: Option<ByteString>,
}

/// An ordered list of parameters (URI parameters or header parameters).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Params(pub Vec<Param>);

impl Params {
    /// An empty list.
    pub fn new() -> Params {
        Params(Vec::new())
    }

    /// The parameter called `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Param> {
        self.0.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The value of `name` with quotes removed; `None` if absent or a flag.
    pub fn value(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).and_then(|p| p.value.as_deref()).map(unquote)
    }

    /// Whether `name` is present (with or without a value).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` to `value` (replacing an existing one), keeping order otherwise.
    pub fn set(&mut self, name: impl Into<ByteString>, value: Option<ByteString>) {
        let name = name.into();
        if let Some(p) = self
            .0
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(&name))
        {
            p.value = value;
        } else {
            self.0.push(Param { name, value });
        }
    }

    /// Removes every parameter called `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|p| !p.name.eq_ignore_ascii_case(name));
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Param> {
        self.0.iter()
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            f.write_str(";")?;
            f.write_str(&p.name)?;
            if let Some(v) = &p.value {
                f.write_str("=")?;
                f.write_str(v)?;
            }
        }
        Ok(())
    }
}

/// `gen-value` characters other than a quoted string: token, host (with IPv6 brackets).
pub(crate) const GEN_VALUE: Class = class(true, b"-.!%*_+`'~:[]");

/// The octet offsets of one parameter found by a scanner: its name, and its value (`None` for
/// a flag).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ParamAt {
    pub(crate) name: (usize, usize),
    pub(crate) value: Option<(usize, usize)>,
}

impl ParamAt {
    /// A flag parameter (`;name`) found by a scanner.
    #[inline(always)]
    pub(crate) fn flag(n0: usize, n1: usize) -> Result<Option<ParamAt>, ()> {
        Ok(Some(ParamAt {
            name: (n0, n1),
            value: None,
        }))
    }

    /// A `;name=value` parameter found by a scanner; an empty value is an error.
    #[inline(always)]
    pub(crate) fn valued(
        n0: usize,
        n1: usize,
        v0: usize,
        v1: usize,
    ) -> Result<Option<ParamAt>, ()> {
        if v1 == v0 {
            return Err(());
        }
        Ok(Some(ParamAt {
            name: (n0, n1),
            value: Some((v0, v1)),
        }))
    }

    /// Where the parameter ends.
    #[inline(always)]
    pub(crate) fn end(&self) -> usize {
        self.value.map_or(self.name.1, |v| v.1)
    }

    /// The parameter as text of `i` (the text the offsets are in).
    #[inline(always)]
    pub(crate) fn of<'a>(&self, i: &'a str) -> ParamRef<'a> {
        ParamRef {
            name: at(i, self.name.0, self.name.1),
            value: self.value.map(|(a, z)| at(i, a, z)),
        }
    }
}

/// One header parameter `SWS ";" SWS token [SWS "=" SWS gen-value]` at octet `k`; `Ok(None)`
/// when no `;` follows.
#[inline(always)]
fn header_param_at(b: &[u8], k: usize) -> Result<Option<ParamAt>, ()> {
    // Nearly every parameter has no white space in it: `;name`, `;name=value` or
    // `;name="value"` read with each octet looked at once (what the general path below reads
    // for them); at any white space, the general path from `k`.
    match b.get(k) {
        Some(b';') => {}
        Some(b' ' | b'\t') => return header_param_general(b, k),
        _ => return Ok(None),
    }
    {
        let n0 = k + 1;
        let n1 = run(b, n0, &TOKEN);
        match b.get(n1) {
            _ if n1 == n0 => {}
            Some(b' ' | b'\t') => {}
            Some(b'=') => {
                let v0 = n1 + 1;
                let v1 = match b.get(v0) {
                    Some(b' ' | b'\t') => None,
                    Some(b'"') => Some(quoted_end(b, v0).ok_or(())?),
                    _ => Some(run(b, v0, &GEN_VALUE)),
                };
                if let Some(v1) = v1 {
                    return ParamAt::valued(n0, n1, v0, v1);
                }
            }
            _ => {
                return ParamAt::flag(n0, n1);
            }
        }
    }
    header_param_general(b, k)
}

/// [`header_param_at`] with white space anywhere.
fn header_param_general(b: &[u8], k: usize) -> Result<Option<ParamAt>, ()> {
    let j = ws(b, k);
    if b.get(j) != Some(&b';') {
        return Ok(None);
    }
    let n0 = ws(b, j + 1);
    let n1 = run(b, n0, &TOKEN);
    if n1 == n0 {
        return Err(());
    }
    let e = ws(b, n1);
    if b.get(e) != Some(&b'=') {
        return ParamAt::flag(n0, n1);
    }
    let v0 = ws(b, e + 1);
    let v1 = if b.get(v0) == Some(&b'"') {
        quoted_end(b, v0).ok_or(())?
    } else {
        run(b, v0, &GEN_VALUE)
    };
    ParamAt::valued(n0, n1, v0, v1)
}

/// One parameter at octet `k`: a header parameter, or a URI parameter when `uri`.
#[inline(always)]
fn param_at(b: &[u8], k: usize, uri: bool) -> Result<Option<ParamAt>, ()> {
    if uri {
        super::uri::uri_param_at(b, k)
    } else {
        header_param_at(b, k)
    }
}

/// Scans the parameters from octet `k` of `i` (header parameters, or URI parameters when
/// `uri`), checking each with `check`; returns where the last one ends (`None` on a syntax
/// error or a failed check).
#[inline(always)]
pub(crate) fn params_end(
    i: &str,
    mut k: usize,
    uri: bool,
    mut check: impl FnMut(&ParamRef<'_>) -> bool,
) -> Option<usize> {
    let b = i.as_bytes();
    while let Some(p) = param_at(b, k, uri).ok()? {
        if !check(&p.of(i)) {
            return None;
        }
        k = p.end();
    }
    Some(k)
}

/// Scans the parameters at the start of `i` (header parameters, or URI parameters when `uri`),
/// checking each with `check`; returns them as one validated, borrowed list.
#[inline]
pub(crate) fn params_ref(
    i: &str,
    uri: bool,
    check: impl FnMut(&ParamRef<'_>) -> bool,
) -> PResult<'_, ParamsRef<'_>> {
    let Some(end) = params_end(i, 0, uri, check) else {
        return fail();
    };
    Ok((from(i, end), ParamsOf::of(at(i, 0, end), uri)))
}

/// Header parameters: `*( SEMI generic-param )`. `src` is the header value that `i` lies in.
pub(crate) fn header_params<'a>(src: &ByteString, i: &'a str) -> PResult<'a, Params> {
    let (rest, p) = params_ref(i, false, |_| true)?;
    Ok((rest, p.own(src)))
}

/// A slice of a header value kept as offsets, so a parsed record borrows nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Sp {
    start: u32,
    end: u32,
}

impl Sp {
    /// The offsets of `s`, a slice of `base` (which is at most `u32::MAX` octets long).
    #[inline(always)]
    pub(crate) fn of(base: &str, s: &str) -> Sp {
        let start = (s.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
        Sp {
            start: start as u32,
            end: start.wrapping_add(s.len()) as u32,
        }
    }

    /// The text at these offsets of `base` (empty if they do not fit, which a record built
    /// from `base` never does).
    #[inline(always)]
    pub(crate) fn get(self, base: &str) -> &str {
        base.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// A parameter list as written (`;name[=value]...`), its grammar checked when it was parsed,
/// read by iterating over it (no allocation). `S` is `&str` for the borrowed view
/// [`ParamsRef`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParamsOf<S> {
    text: S,
    uri: bool,
}

/// A borrowed, validated parameter list: URI parameters or header parameters.
pub type ParamsRef<'a> = ParamsOf<&'a str>;

/// One parameter of a [`ParamsRef`], as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParamRef<'a> {
    /// Name as written.
    pub name: &'a str,
    /// Value as written (a quoted string keeps its quotes); `None` for a flag such as `lr`.
    pub value: Option<&'a str>,
}

impl<S> ParamsOf<S> {
    /// The list `text` (validated by the caller).
    #[inline(always)]
    pub(crate) fn of(text: S, uri: bool) -> ParamsOf<S> {
        ParamsOf { text, uri }
    }

    #[inline(always)]
    pub(crate) fn map<T>(self, f: &impl Fn(S) -> T) -> ParamsOf<T> {
        ParamsOf {
            text: f(self.text),
            uri: self.uri,
        }
    }
}

impl<'a> ParamsOf<&'a str> {
    /// No parameters (of the given grammar).
    pub(crate) fn empty(uri: bool) -> ParamsRef<'a> {
        ParamsOf { text: "", uri }
    }

    /// The parameters as written, e.g. `;tag=1928301774;lr`.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// Iterates in order.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter {
            text: self.text,
            at: 0,
            uri: self.uri,
        }
    }

    /// The parameter called `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<ParamRef<'a>> {
        self.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The value of `name` with quotes removed; `None` if absent or a flag.
    pub fn value(&self, name: &str) -> Option<Cow<'a, str>> {
        self.get(name).and_then(|p| p.value).map(unquote)
    }

    /// Whether `name` is present (with or without a value).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The owned list, its text shared with `src` (the value the list lies in).
    pub(crate) fn own(&self, src: &ByteString) -> Params {
        if self.is_empty() {
            return Params::new();
        }
        let mut out = Vec::with_capacity(4);
        for p in self.iter() {
            let name = if self.uri {
                word!(
                    src,
                    p.name,
                    ["lr", "transport", "user", "maddr", "ttl", "method"]
                )
            } else {
                param_name(src, p.name)
            };
            out.push(Param {
                name,
                value: p.value.map(|v| src.slice_ref(v)),
            });
        }
        Params(out)
    }
}

impl<'a> IntoIterator for ParamsRef<'a> {
    type Item = ParamRef<'a>;
    type IntoIter = ParamIter<'a>;
    fn into_iter(self) -> ParamIter<'a> {
        self.iter()
    }
}

/// Iterator over a [`ParamsRef`].
#[derive(Clone, Debug)]
pub struct ParamIter<'a> {
    text: &'a str,
    /// Where the next parameter starts (the end once one did not parse).
    at: usize,
    uri: bool,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = ParamRef<'a>;
    #[inline]
    fn next(&mut self) -> Option<ParamRef<'a>> {
        match param_at(self.text.as_bytes(), self.at, self.uri) {
            Ok(Some(p)) => {
                self.at = p.end();
                Some(p.of(self.text))
            }
            _ => {
                self.at = self.text.len();
                None
            }
        }
    }
}

/// `COMMA` between list elements: `Some(rest)` after a comma, `None` at the end of the value,
/// an error on anything else.
#[inline]
pub(crate) fn list_next(i: &str) -> Result<Option<&str>, nom::Err<()>> {
    let b = i.as_bytes();
    let k = ws(b, 0);
    match b.get(k) {
        None => Ok(None),
        Some(b',') => Ok(Some(from(i, ws(b, k + 1)))),
        Some(_) => fail(),
    }
}

/// Parses a comma-separated list of `item`s filling the whole of `value`.
pub(crate) fn list<'a, T>(
    value: &'a str,
    mut item: impl FnMut(&'a str) -> PResult<'a, T>,
    out: &mut Vec<T>,
) -> Result<(), nom::Err<()>> {
    let mut i = sws(value);
    loop {
        let (rest, v) = item(i)?;
        out.push(v);
        match list_next(rest)? {
            Some(r) => i = r,
            None => return Ok(()),
        }
    }
}

/// A token of Allow, Supported, Require or Proxy-Require (a slice of `src`) as an owned
/// string: the common methods and option tags static, others sliced from `src`.
pub(crate) fn option_word(src: &ByteString, t: &str) -> ByteString {
    word!(
        src,
        t,
        [
            "INVITE",
            "ACK",
            "CANCEL",
            "BYE",
            "OPTIONS",
            "UPDATE",
            "PRACK",
            "INFO",
            "REFER",
            "NOTIFY",
            "SUBSCRIBE",
            "MESSAGE",
            "REGISTER",
            "PUBLISH",
            "timer",
            "replaces",
            "100rel",
            "path",
            "norefersub",
            "outbound",
            "gruu",
        ]
    )
}

#[cfg(test)]
mod tests {
    use super::super::typed::reference;
    use super::*;

    proptest::proptest! {
        #[test]
        fn span_agrees_with_a_plain_search(s in "[a-z0-9 .;:é\t-]{0,40}", k in 0usize..44) {
            let plain = s.bytes().position(|b| !TOKEN[usize::from(b)]).unwrap_or(s.len());
            proptest::prop_assert_eq!(span(&s, &TOKEN), plain);
            // From any octet, past the end too.
            let b = s.as_bytes();
            let plain = k + b.get(k..).map_or(0, |r| {
                r.iter().position(|c| !TOKEN[usize::from(*c)]).unwrap_or(r.len())
            });
            proptest::prop_assert_eq!(run(b, k, &TOKEN), plain);
        }

        #[test]
        fn number_agrees_with_std(
            s in "[0-9]{0,22}|[0-9+/:a -]{0,22}",
            max in proptest::prop_oneof![0u64..100_000, proptest::num::u64::ANY],
        ) {
            let plain = (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
                .filter(|v| *v <= max);
            proptest::prop_assert_eq!(number(&s, max), plain);
        }

        #[test]
        fn quoted_string_agrees_with_the_octet_loop(
            s in "\"?[ -~\t\\\\\"\r\n\x01\x7féü]{0,24}"
        ) {
            let scanned = quoted_end(s.as_bytes(), 0).map(|e| (&s[e..], &s[..e])).ok_or(nom::Err::Error(()));
            proptest::prop_assert_eq!(scanned, reference::quoted_string(&s));
        }
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(quoted_end(br#""a \"b\" c" rest"#, 0), Some(11));
        assert_eq!(quoted_end(br#"x "a" "#, 2), Some(5));
        assert!(quoted_end(br#""unterminated"#, 0).is_none());
        assert_eq!(unquote(r#""J Rosenberg \\\"""#), r#"J Rosenberg \""#);
        assert_eq!(quote(r#"a"b\"#), r#""a\"b\\""#);
    }

    #[test]
    fn numbers_are_capped() {
        assert_eq!(number("0068", 255), Some(68));
        assert_eq!(number("300", 255), None);
        assert_eq!(number("36893488147419103232", u64::MAX), None);
        assert_eq!(number("-1", 10), None);
        assert_eq!(number("", 10), None);
    }

    #[test]
    fn params_parse_with_white_space() {
        let src = ByteString::from(" ; tag = 1918181833n;lr;x=\"q\"");
        let (rest, p) = header_params(&src, &src).unwrap();
        assert_eq!(rest, "");
        assert_eq!(p.value("tag").as_deref(), Some("1918181833n"));
        assert!(p.contains("LR"));
        assert_eq!(p.value("x").as_deref(), Some("q"));
        assert_eq!(p.to_string(), ";tag=1918181833n;lr;x=\"q\"");
        let bad = ByteString::from(";;");
        assert!(header_params(&bad, &bad).is_err());
    }
}
