//! Start line and header section parsing, and the datagram framing rule (body by
//! Content-Length, extra octets ignored).

use std::sync::LazyLock;

use bytestring::ByteString;

use super::grammar::{self, is_wsp, sws};
use super::headers::{HeaderName, Headers};
use super::typed::Method;
use super::uri::{self, Uri, UriCtx};
use super::{Message, message};
use crate::{Error, Result};

/// The parsed first line.
pub(crate) enum StartLine {
    Request { method: Method, uri: Uri },
    Response { status: u16, reason: ByteString },
}

/// Index just past the `CRLF CRLF` that ends the header section.
pub(crate) fn head_end(buf: &[u8]) -> Option<usize> {
    // The searcher is built once: `memmem::find` would set one up on every call.
    static FINDER: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(b"\r\n\r\n"));
    FINDER.find(buf).map(|k| k + 4)
}

/// Number of leading CRLF octets (RFC 3261 §7.5: ignored before a start line).
pub(crate) fn leading_crlf(buf: &[u8]) -> usize {
    let mut k = 0;
    while buf.get(k..k + 2) == Some(b"\r\n") {
        k += 2;
    }
    k
}

/// Checks `SIP/2.0` (case-insensitive name); other well-formed versions are [`Error::Version`].
fn version(v: &str) -> Result<()> {
    if v.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match v
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("SIP/"))
        .and_then(|_| v[4..].split_once('.'))
    {
        Some((a, b)) if digits(a) && digits(b) => Err(Error::Version),
        _ => Err(Error::StartLine("bad SIP version")),
    }
}

fn start_line(src: &ByteString, line: &str) -> Result<StartLine> {
    if line
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        let (v, rest) = line
            .split_once(' ')
            .ok_or(Error::StartLine("no status code"))?;
        version(v)?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 {
            return Err(Error::StartLine("status code is not three digits"));
        }
        let status = grammar::number(code, 699)
            .filter(|c| *c >= 100)
            .ok_or(Error::StartLine("bad status code"))?;
        if reason.chars().any(|c| c.is_control() && c != '\t') {
            return Err(Error::StartLine("control character in reason phrase"));
        }
        return Ok(StartLine::Response {
            status: status as u16,
            reason: src.slice_ref(reason),
        });
    }
    // `METHOD SP Request-URI SP version`, split at the first two spaces.
    let space = |t: &str| memchr::memchr(b' ', t.as_bytes());
    let Some((m, rest)) = space(line).map(|k| (&line[..k], &line[k + 1..])) else {
        return Err(Error::StartLine(
            "request line needs method, Request-URI and version",
        ));
    };
    let Some((u, v)) = space(rest).map(|k| (&rest[..k], &rest[k + 1..])) else {
        return Err(Error::StartLine(
            "request line needs method, Request-URI and version",
        ));
    };
    if m.is_empty() || grammar::span(m, &grammar::TOKEN) != m.len() {
        return Err(Error::StartLine("method is not a token"));
    }
    if u.is_empty() {
        return Err(Error::StartLine("extra white space in request line"));
    }
    version(v)?;
    let uri = match uri::uri(src, u, UriCtx::Whole) {
        Ok(("", uri)) => uri,
        _ => return Err(Error::RequestUri("syntax")),
    };
    if matches!(&uri, Uri::Sip(s) if s.headers.is_some()) {
        return Err(Error::RequestUri(
            "headers are not allowed in a Request-URI",
        ));
    }
    Ok(StartLine::Request {
        method: Method::from_token(src, m),
        uri,
    })
}

/// The CR-or-LF search of the header sections: on x86-64 with AVX2, memchr's AVX2 searcher
/// built once per process (`memchr2` picks the CPU's routine again on every call, a noticeable
/// part of a 40-octet line, and building the searcher per message copies its vectors);
/// elsewhere `memchr2`.
struct CrLf {
    #[cfg(target_arch = "x86_64")]
    avx2: Option<memchr::arch::x86_64::avx2::memchr::Two>,
}

impl CrLf {
    fn new() -> CrLf {
        CrLf {
            #[cfg(target_arch = "x86_64")]
            avx2: memchr::arch::x86_64::avx2::memchr::Two::new(b'\r', b'\n'),
        }
    }

    #[inline]
    fn find(&self, b: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some(two) = &self.avx2 {
            return two.find(b);
        }
        memchr::memchr2(b'\r', b'\n', b)
    }
}

/// Finds the next CRLF; a lone CR or LF is an error.
fn line_end(crlf: &CrLf, b: &[u8]) -> Result<usize> {
    let k = crlf.find(b).ok_or(Error::Incomplete)?;
    if b[k] == b'\r' && b.get(k + 1) == Some(&b'\n') {
        Ok(k)
    } else {
        Err(Error::HeaderLine("bare CR or LF"))
    }
}

/// Joins folded lines: each `CRLF 1*WSP` becomes one space.
fn unfold(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (k, part) in v.split("\r\n").enumerate() {
        if k == 0 {
            out.push_str(part.trim_end_matches(is_wsp));
        } else {
            let part = part.trim_matches(is_wsp);
            if !part.is_empty() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(part);
            }
        }
    }
    out
}

/// Parses the header section at the start of `src`: the start line and the header lines up
/// to the blank line or the end of `src`. Returns them with the offset just past the blank
/// line (`None` when `src` ended first, after a complete line).
pub(crate) fn parse_head(src: &ByteString) -> Result<(Message, Option<usize>)> {
    // Line values are kept as 32-bit ranges (a datagram is under 64 KiB, a stream's head is
    // capped far lower).
    if u32::try_from(src.len()).is_err() {
        return Err(Error::HeadersTooLarge(u32::MAX as usize));
    }
    let s: &str = src;
    static CRLF: LazyLock<CrLf> = LazyLock::new(CrLf::new);
    let crlf: &CrLf = &CRLF;
    let e = line_end(crlf, s.as_bytes())?;
    let start = start_line(src, &s[..e])?;
    let b = s.as_bytes();
    let mut pos = e + 2;
    // Room for every header of a typical message without counting its lines first (a header
    // line is rarely under 24 octets; a message of shorter ones regrows once or twice).
    let mut headers = Headers::parsing(src.clone(), (b.len() - pos) / 24 + 1);
    // Octet offsets (all at ASCII octets, so every slice below is on a char boundary).
    while let Some(&first) = b.get(pos)
        && first != b'\r'
    {
        let name_end = pos + grammar::span_bytes(b.get(pos..).unwrap_or_default(), &grammar::TOKEN);
        if name_end == pos {
            return Err(Error::HeaderLine(if is_wsp_octet(first) {
                "continuation line without a header"
            } else {
                "empty header name"
            }));
        }
        let name = HeaderName::from_wire(src, s.get(pos..name_end).unwrap_or_default());
        // The common shape `Name: value` (one space, no white space at the end) needs no
        // trimming loops; anything else takes the general path below.
        if let [b':', b' ', c, ..] = b.get(name_end..).unwrap_or_default()
            && !is_wsp_octet(*c)
            && *c != b'\r'
            && *c != b'\n'
        {
            let v = name_end + 2;
            let end = v + line_end(crlf, b.get(v..).unwrap_or_default())?;
            if !b.get(end + 2).copied().is_some_and(is_wsp_octet)
                && !b.get(end - 1).copied().is_some_and(is_wsp_octet)
            {
                headers.push_parsed(name, v, end);
                pos = end + 2;
                continue;
            }
        }
        let mut end = name_end + line_end(crlf, &b[name_end..])?;
        let mut folded = false;
        while b.get(end + 2).copied().is_some_and(is_wsp_octet) {
            folded = true;
            end = end + 2 + line_end(crlf, &b[end + 2..])?;
        }
        let mut v = name_end;
        while v < end && is_wsp_octet(b[v]) {
            v += 1;
        }
        if b.get(v) != Some(&b':') || v >= end {
            return Err(Error::HeaderLine("missing colon"));
        }
        v += 1;
        if folded {
            headers.push_parsed_own(name, ByteString::from(unfold(sws(&s[v..end]))));
        } else {
            while v < end && is_wsp_octet(b[v]) {
                v += 1;
            }
            let mut ve = end;
            while ve > v && is_wsp_octet(b[ve - 1]) {
                ve -= 1;
            }
            headers.push_parsed(name, v, ve);
        }
        pos = end + 2;
    }
    // The loop stops at the end or at a CR starting a line: the blank line, or a bare CR.
    let end = if pos < b.len() {
        if b.get(pos + 1) != Some(&b'\n') {
            return Err(Error::HeaderLine("bare CR or LF"));
        }
        Some(pos + 2)
    } else {
        None
    };
    headers.end_parse();
    // The message is put together here, where its parts are, not moved out in a tuple first.
    Ok((message(start, headers), end))
}

/// Whether `c` is SP or HTAB.
fn is_wsp_octet(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// Checks an RFC 3261 `SIP-date` (`rfc1123-date` in GMT).
pub(crate) fn valid_date(d: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let Some((day, rest)) = d.split_once(", ") else {
        return false;
    };
    let f: Vec<&str> = rest.split(' ').collect();
    let [dd, mon, yyyy, time, zone] = f.as_slice() else {
        return false;
    };
    let t: Vec<&str> = time.split(':').collect();
    DAYS.contains(&day)
        && digits(dd, 2)
        && MONTHS.contains(mon)
        && digits(yyyy, 4)
        && t.len() == 3
        && t.iter().all(|x| digits(x, 2))
        && *zone == "GMT"
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The header lines of `head` split the plain way: continuation lines joined to the line
    /// before, the name up to the colon, every piece of the value trimmed and joined with one
    /// space. `None` for a line without a colon.
    fn reference_split(head: &str) -> Option<Vec<(String, String)>> {
        let mut logical: Vec<String> = Vec::new();
        for line in head.split("\r\n").skip(1) {
            if line.starts_with([' ', '\t']) {
                let last = logical.last_mut()?;
                last.push_str("\r\n");
                last.push_str(line);
            } else if !line.is_empty() {
                logical.push(line.to_owned());
            }
        }
        logical
            .iter()
            .map(|l| {
                let (name, value) = l.split_once(':')?;
                let parts: Vec<&str> = value
                    .split("\r\n")
                    .map(|p| p.trim_matches([' ', '\t']))
                    .filter(|p| !p.is_empty())
                    .collect();
                Some((
                    name.trim_end_matches([' ', '\t']).to_owned(),
                    parts.join(" "),
                ))
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// The header split (with its fast path for `Name: value`) gives what the plain split
        /// gives, for names followed by any spacing around the colon, values with white space
        /// at either end, empty values and continuation lines.
        #[test]
        fn header_split_matches_the_plain_split(
            lines in proptest::collection::vec((
                proptest::sample::select(vec!["Via", "v", "X-Custom", "Subject", "to", "CSeq"]),
                proptest::sample::select(vec![":", ": ", ":  ", " : ", "\t:\t", ":\t"]),
                proptest::sample::select(vec!["", "a", "x y", "val ", "v\t", " lead", "1"]),
                proptest::sample::select(vec!["", "\r\n cont", "\r\n\tc2 ", "\r\n  "]),
            ), 0..6),
        ) {
            let mut head = String::from("OPTIONS sip:a@b SIP/2.0\r\n");
            for (name, sep, value, fold) in &lines {
                head.push_str(&format!("{name}{sep}{value}{fold}\r\n"));
            }
            head.push_str("\r\n");
            let expected = reference_split(&head).expect("generated lines have colons");
            let (msg, end) = parse_head(&ByteString::from(head.clone())).unwrap();
            let headers = msg.headers();
            prop_assert_eq!(end, Some(head.len()));
            let got: Vec<(String, String)> = headers
                .iter()
                .map(|h| (h.name.as_str().to_owned(), h.value.to_owned()))
                .collect();
            let canonical: Vec<(String, String)> = expected
                .into_iter()
                .map(|(n, v)| (HeaderName::new(&n).as_str().to_owned(), v))
                .collect();
            prop_assert_eq!(got, canonical);
        }
    }

    #[test]
    fn dates() {
        assert!(valid_date("Sat, 13 Nov 2010 23:29:00 GMT"));
        assert!(!valid_date("Fri, 01 Jan 2010 16:00:00 EST"));
        assert!(!valid_date("Fri, 1 Jan 2010 16:00:00 GMT"));
    }

    #[test]
    fn folding() {
        assert_eq!(unfold("a\r\n  b \r\n\tc"), "a b c");
        assert_eq!(unfold("\r\n <sip:x>"), "<sip:x>");
    }

    #[test]
    fn versions() {
        assert!(version("SIP/2.0").is_ok());
        assert!(matches!(version("SIP/7.0"), Err(Error::Version)));
        assert!(matches!(version("SIP/2.0  "), Err(Error::StartLine(_))));
    }
}
