//! RFC 3261 §25 lexical rules shared by the header and URI parsers (nom, zero-copy over `&str`).
//!
//! Header values reach these parsers unfolded (line folding already replaced by a space), so
//! linear white space is only SP and HTAB here.

use std::borrow::Cow;
use std::fmt;

use bytestring::ByteString;
use nom::IResult;
use nom::bytes::complete::take_while1;

/// nom result with the unit error: the callers map failures onto [`crate::Error`] themselves.
pub(crate) type PResult<'a, T> = IResult<&'a str, T, ()>;

pub(crate) fn fail<T>() -> Result<T, nom::Err<()>> {
    Err(nom::Err::Error(()))
}

/// `token` characters (RFC 3261 §25.1).
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.' | '!' | '%' | '*' | '_' | '+' | '`' | '\'' | '~'
        )
}

pub(crate) fn token(i: &str) -> PResult<'_, &str> {
    take_while1(is_token_char)(i)
}

pub(crate) fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Optional white space (`SWS` after unfolding).
pub(crate) fn sws(i: &str) -> &str {
    i.trim_start_matches(is_wsp)
}

/// Mandatory white space (`LWS` after unfolding).
pub(crate) fn lws(i: &str) -> PResult<'_, &str> {
    take_while1(is_wsp)(i)
}

/// `SWS c SWS`: consumes the separator `c` with white space around it.
pub(crate) fn sep(i: &str, c: char) -> Option<&str> {
    sws(i).strip_prefix(c).map(sws)
}

/// A `quoted-string`, returned with its quotes.
pub(crate) fn quoted_string(i: &str) -> PResult<'_, &str> {
    let b = i.as_bytes();
    if b.first() != Some(&b'"') {
        return fail();
    }
    let mut k = 1;
    while k < b.len() {
        match b[k] {
            b'"' => return Ok((&i[k + 1..], &i[..k + 1])),
            b'\\' => {
                // quoted-pair: any octet 0x00-0x7F except CR and LF.
                match b.get(k + 1) {
                    Some(&c) if c < 0x80 && c != b'\r' && c != b'\n' => k += 2,
                    _ => return fail(),
                }
            }
            b' ' | b'\t' => k += 1,
            c if c < 0x21 || c == 0x7f => return fail(),
            _ => k += 1,
        }
    }
    fail()
}

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
pub(crate) fn number(s: &str, max: u64) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v = s.bytes().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })?;
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
fn is_gen_value_char(c: char) -> bool {
    is_token_char(c) || matches!(c, ':' | '[' | ']')
}

/// Header parameters: `*( SEMI generic-param )`. `src` is the header value that `i` lies in.
pub(crate) fn header_params<'a>(src: &ByteString, mut i: &'a str) -> PResult<'a, Params> {
    let mut params = Vec::new();
    while let Some(rest) = sep(i, ';') {
        let (rest, name) = token(rest)?;
        let (rest, value) = match sep(rest, '=') {
            Some(r) => {
                let (r, v) = if r.starts_with('"') {
                    quoted_string(r)?
                } else {
                    take_while1(is_gen_value_char)(r)?
                };
                (r, Some(src.slice_ref(v)))
            }
            None => (rest, None),
        };
        params.push(Param {
            name: src.slice_ref(name),
            value,
        });
        i = rest;
    }
    Ok((i, Params(params)))
}

/// `COMMA` between list elements: `Some(rest)` after a comma, `None` at the end of the value,
/// an error on anything else.
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

/// Token list such as Allow, Supported, Require (may be empty).
pub(crate) fn token_list(
    src: &ByteString,
    value: &str,
    out: &mut Vec<ByteString>,
) -> Result<(), nom::Err<()>> {
    if value.trim_matches(is_wsp).is_empty() {
        return Ok(());
    }
    list(value, |i| token(i).map(|(r, t)| (r, src.slice_ref(t))), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings() {
        assert_eq!(
            quoted_string(r#""a \"b\" c" rest"#),
            Ok((" rest", r#""a \"b\" c""#))
        );
        assert!(quoted_string(r#""unterminated"#).is_err());
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
