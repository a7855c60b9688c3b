//! Tokens of `cig.conf`: words, quoted strings, `{`, `}`, `;`; comments and whitespace are
//! skipped. A *word* is any run of characters other than whitespace, `{`, `}`, `;`, `"` and
//! the comment openers, so names, numbers and IP addresses are all words and the parser decides.

use std::borrow::Cow;

use super::parser::Sink;

/// Longest quoted string accepted, in bytes.
pub(crate) const MAX_STRING_LEN: usize = 8192;

/// A byte range in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    Word(&'a str),
    /// A quoted string: its decoded value, and whether the raw text equals the value (no
    /// escapes), which lets template errors point at the exact column.
    Str {
        value: Cow<'a, str>,
        verbatim: bool,
    },
    LBrace,
    RBrace,
    Semi,
    Eof,
}

impl Tok<'_> {
    /// How the token reads in a message ("found …").
    pub fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{}`", truncate(w)),
            Tok::Str { value, .. } => format!("string \"{}\"", truncate(value)),
            Tok::LBrace => "`{`".into(),
            Tok::RBrace => "`}`".into(),
            Tok::Semi => "`;`".into(),
            Tok::Eof => "end of file".into(),
        }
    }
}

/// At most 40 characters of `s`, with `…` when cut.
pub(crate) fn truncate(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[derive(Clone, Debug)]
pub(crate) struct Token<'a> {
    pub tok: Tok<'a>,
    pub span: Span,
}

fn is_word_char(c: char) -> bool {
    !(c.is_whitespace() || matches!(c, '{' | '}' | ';' | '"'))
}

/// Splits `src` into tokens, reporting lexical errors to `sink`. Always ends with `Eof`.
pub(crate) fn lex<'a>(src: &'a str, sink: &mut Sink) -> Vec<Token<'a>> {
    let bytes = src.as_bytes();
    let mut out = Vec::with_capacity(src.len() / 6 + 1);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = src[i..].find('\n').map_or(src.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => match src[i + 2..].find("*/") {
                Some(n) => i = i + 2 + n + 2,
                None => {
                    sink.error(
                        Span {
                            start,
                            end: start + 2,
                        },
                        "unterminated block comment",
                        Some("expected `*/` to close this `/*` before the end of the file".into()),
                    );
                    i = src.len();
                }
            },
            b'{' | b'}' | b';' => {
                let tok = match b {
                    b'{' => Tok::LBrace,
                    b'}' => Tok::RBrace,
                    _ => Tok::Semi,
                };
                i += 1;
                out.push(Token {
                    tok,
                    span: Span { start, end: i },
                });
            }
            b'"' => {
                let (tok, end) = lex_string(src, start, sink);
                i = end;
                out.push(Token {
                    tok,
                    span: Span { start, end },
                });
            }
            _ => {
                let c = src[i..].chars().next().unwrap_or(' ');
                if c.is_whitespace() {
                    i += c.len_utf8();
                    continue;
                }
                // A word runs until a delimiter or a comment opener.
                let mut end = i;
                for (off, c) in src[i..].char_indices() {
                    let at = i + off;
                    if !is_word_char(c)
                        || (c == '/' && matches!(bytes.get(at + 1), Some(b'/' | b'*')))
                    {
                        break;
                    }
                    end = at + c.len_utf8();
                }
                i = end;
                out.push(Token {
                    tok: Tok::Word(&src[start..end]),
                    span: Span { start, end },
                });
            }
        }
    }
    let end = src.len();
    out.push(Token {
        tok: Tok::Eof,
        span: Span { start: end, end },
    });
    out
}

/// Lexes the string starting at `start` (a `"`); returns the token and the offset after it.
/// A string may not span lines. After an error (reported) the token is still returned, with
/// what could be read, so that the parser does not report follow-on errors.
fn lex_string<'a>(src: &'a str, start: usize, sink: &mut Sink) -> (Tok<'a>, usize) {
    // Fast path: no escape before the closing quote, so the value borrows from the source.
    let body = &src.as_bytes()[start + 1..];
    if let Some(n) = body.iter().position(|&b| matches!(b, b'"' | b'\\' | b'\n')) {
        if body[n] == b'"' && n <= MAX_STRING_LEN {
            let value = Cow::Borrowed(&src[start + 1..start + 1 + n]);
            return (
                Tok::Str {
                    value,
                    verbatim: true,
                },
                start + n + 2,
            );
        }
    }
    let mut value = String::new();
    let mut verbatim = true;
    let mut chars = src[start + 1..]
        .char_indices()
        .map(|(o, c)| (start + 1 + o, c));
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => {
                if value.len() > MAX_STRING_LEN {
                    sink.error(
                        Span {
                            start,
                            end: start + 1,
                        },
                        &format!("string longer than {MAX_STRING_LEN} bytes"),
                        None,
                    );
                    truncate_to_boundary(&mut value, MAX_STRING_LEN);
                }
                return (
                    Tok::Str {
                        value: Cow::Owned(value),
                        verbatim,
                    },
                    at + 1,
                );
            }
            '\n' => break,
            '\\' => {
                verbatim = false;
                let Some((_, e)) = chars.next() else { break };
                let decoded = match e {
                    '\\' => Some('\\'),
                    '"' => Some('"'),
                    'n' => Some('\n'),
                    't' => Some('\t'),
                    'r' => Some('\r'),
                    'u' => {
                        let mut look = chars.clone();
                        let c = unicode_escape(&mut look);
                        if c.is_some() {
                            chars = look;
                        }
                        c
                    }
                    _ => None,
                };
                match decoded {
                    Some(d) => value.push(d),
                    None => {
                        value.push(e);
                        let end = chars.clone().next().map_or(src.len(), |(o, _)| o);
                        sink.error(
                            Span {
                                start: at,
                                end: end.max(at + 1),
                            },
                            "invalid escape in string",
                            Some(
                                "expected one of `\\\\`, `\\\"`, `\\n`, `\\t`, `\\r`, `\\u{HEX}`"
                                    .into(),
                            ),
                        );
                    }
                }
            }
            c => value.push(c),
        }
        if value.len() > MAX_STRING_LEN + 4 {
            // Keep scanning for the closing quote but stop growing the buffer.
            truncate_to_boundary(&mut value, MAX_STRING_LEN + 1);
        }
    }
    let line_end = src[start..].find('\n').map_or(src.len(), |n| start + n);
    sink.error(
        Span {
            start,
            end: start + 1,
        },
        "unterminated string",
        Some("expected a closing `\"` on the same line".into()),
    );
    (
        Tok::Str {
            value: Cow::Owned(value),
            verbatim,
        },
        line_end,
    )
}

/// Cuts `s` to at most `max` bytes, at a character boundary.
fn truncate_to_boundary(s: &mut String, max: usize) {
    let mut n = max.min(s.len());
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    s.truncate(n);
}

/// Decodes the rest of a `\u{HEX}` escape (after the `u`); None if malformed.
fn unicode_escape(chars: &mut impl Iterator<Item = (usize, char)>) -> Option<char> {
    if chars.next()?.1 != '{' {
        return None;
    }
    let mut v: u32 = 0;
    let mut digits = 0;
    for (_, c) in chars.by_ref() {
        if c == '}' {
            return if digits == 0 { None } else { char::from_u32(v) };
        }
        let d = c.to_digit(16)?;
        digits += 1;
        if digits > 6 {
            return None;
        }
        v = v * 16 + d;
    }
    None
}
