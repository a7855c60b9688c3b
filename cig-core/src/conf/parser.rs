//! Recursive-descent parser from tokens to the [`Config`] model, with error recovery at
//! statement level, the manual's tolerated misspellings (as warnings), and the semantic checks
//! that need source positions (undefined names, duplicates, map sides).

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use zeroize::Zeroize;

use super::diag::{Diagnostic, Diagnostics, Severity};
use super::lexer::{Span, Tok, Token, lex, truncate};
use super::model::*;
use crate::{IpNet, Secret, Template};

/// Largest configuration accepted, in bytes.
pub const MAX_SOURCE_LEN: usize = 64 << 20;
/// Parsing stops after this many errors.
pub const MAX_ERRORS: usize = 100;
/// Longest name (map, entry, auth, translate map) accepted, in bytes.
const MAX_NAME_LEN: usize = 256;

const TOP_KEYWORDS: &[&str] = &[
    "map",
    "auth",
    "interfaces",
    "translate_map",
    "mailboxes",
    "message_centers",
    "log_dir",
    "relay",
];
const RELAY_KEYWORDS: &[&str] = &["socket", "address", "port", "ca", "cert", "key"];
const IFACE_KEYWORDS: &[&str] = &[
    "extension map",
    "source map",
    "bind",
    "port",
    "transport",
    "messaging",
    "rtp_port_range",
    "rtp_remote_addr_override",
    "allow",
];

/// Diagnostics collected with byte spans; turned into [`Diagnostic`]s at the end.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    items: Vec<(Severity, Span, String, Option<String>)>,
    errors: usize,
}

impl Sink {
    pub fn error(&mut self, span: Span, message: &str, help: Option<String>) {
        self.errors += 1;
        self.items
            .push((Severity::Error, span, message.to_owned(), help));
    }

    pub fn warning(&mut self, span: Span, message: &str, help: Option<String>) {
        self.items
            .push((Severity::Warning, span, message.to_owned(), help));
    }
}

/// A parsed configuration and the warnings it produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The validated model.
    pub config: Config,
    /// Tolerated problems (misspellings the manual contains, expansions that come out empty).
    pub warnings: Vec<Diagnostic>,
}

/// Marker: the error has been reported; the caller recovers.
struct Fail;
type R<T> = Result<T, Fail>;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    Map,
    Auth,
    TranslateMap,
    Relay,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Map => "map",
            Kind::Auth => "auth",
            Kind::TranslateMap => "translate_map",
            Kind::Relay => "relay",
        }
    }
}

/// A use of a name, checked once every definition is known.
struct Ref {
    kind: Kind,
    name: String,
    span: Span,
    /// For maps used on an interface: which interface and `extension`/`source`.
    on: Option<(InterfaceKind, &'static str)>,
}

/// Builder for a `map_from` / `map_to` pair.
#[derive(Default)]
struct PairBuilder {
    map_from: Option<String>,
    map_to: Option<String>,
}

struct Parser<'a> {
    src: &'a str,
    line_starts: Vec<usize>,
    toks: Vec<Token<'a>>,
    pos: usize,
    sink: Sink,
    cfg: Config,
    defs: HashMap<(Kind, String), Span>,
    refs: Vec<Ref>,
    sections: HashMap<&'static str, Span>,
}

/// Parses and validates `source`; `file_name` is used in diagnostics only.
pub fn parse(source: &str, file_name: &str) -> Result<Loaded, Diagnostics> {
    if source.len() > MAX_SOURCE_LEN {
        return Err(Diagnostics {
            items: vec![no_position(
                file_name,
                &format!("file larger than {MAX_SOURCE_LEN} bytes"),
            )],
        });
    }
    let mut sink = Sink::default();
    let toks = lex(source, &mut sink);
    let mut p = Parser {
        src: source,
        line_starts: std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect(),
        toks,
        pos: 0,
        sink,
        cfg: Config::default(),
        defs: HashMap::new(),
        refs: Vec::new(),
        sections: HashMap::new(),
    };
    p.top();
    if p.sink.errors < MAX_ERRORS {
        p.check_refs();
    }
    for t in &mut p.toks {
        if let Tok::Str {
            value: Cow::Owned(value),
            ..
        } = &mut t.tok
        {
            value.zeroize();
        }
    }
    let stopped = p.sink.errors >= MAX_ERRORS;
    let mut items: Vec<_> = std::mem::take(&mut p.sink.items);
    items.sort_by_key(|(_, span, _, _)| span.start);
    let mut diags: Vec<Diagnostic> = items
        .into_iter()
        .map(|(sev, span, msg, help)| p.diagnostic(file_name, sev, span, msg, help))
        .collect();
    if stopped {
        diags.push(no_position(
            file_name,
            &format!("too many errors; stopped after {MAX_ERRORS}"),
        ));
    }
    if diags.iter().any(Diagnostic::is_error) {
        Err(Diagnostics { items: diags })
    } else {
        Ok(Loaded {
            config: p.cfg,
            warnings: diags,
        })
    }
}

/// An error about the whole file (no line).
pub(crate) fn no_position(file: &str, message: &str) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        file: file.to_owned(),
        line: 0,
        column: 0,
        width: 0,
        message: message.to_owned(),
        source_line: String::new(),
        help: None,
    }
}

/// Is `s` a valid name: `[A-Za-z_][A-Za-z0-9_-]*`?
fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && s.len() <= MAX_NAME_LEN
}

/// Edit distance, capped at 64 characters per side so it stays cheap.
fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `word`: a small edit distance, or the same letters rearranged
/// (the manual's `srcsip2tel` for `srctel2sip`).
fn closest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let sorted = |s: &str| {
        let mut v: Vec<char> = s.chars().collect();
        v.sort_unstable();
        v
    };
    let word_sorted = sorted(word);
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .filter_map(|c| {
            let d = levenshtein(word, c);
            let anagram = sorted(c) == word_sorted;
            (d <= limit || anagram).then_some(((!anagram, d), c))
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, c)| c)
}

fn did_you_mean<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

fn one_of(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
    format!("expected one of {}", quoted.join(", "))
}

impl<'a> Parser<'a> {
    // ----- token helpers -------------------------------------------------------------------

    fn tok(&self) -> &Tok<'a> {
        self.tok_at(0)
    }

    fn tok_at(&self, n: usize) -> &Tok<'a> {
        let last = self.toks.len() - 1;
        &self.toks[(self.pos + n).min(last)].tok
    }

    fn span(&self) -> Span {
        let last = self.toks.len() - 1;
        self.toks[self.pos.min(last)].span
    }

    fn bump(&mut self) -> Span {
        let span = self.span();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        span
    }

    fn prev_span(&self) -> Span {
        self.toks[self.pos.saturating_sub(1)].span
    }

    fn word(&self) -> Option<&'a str> {
        match self.tok() {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }

    fn word_at(&self, n: usize) -> Option<&'a str> {
        match self.tok_at(n) {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset)
    }

    /// Is there a line break between the end of `a` and the start of `b`?
    fn newline_between(&self, a: Span, b: Span) -> bool {
        self.src
            .get(a.end..b.start)
            .is_some_and(|s| s.contains('\n'))
    }

    fn too_many(&self) -> bool {
        self.sink.errors >= MAX_ERRORS
    }

    fn error(&mut self, span: Span, message: &str, help: Option<String>) -> Fail {
        self.sink.error(span, message, help);
        Fail
    }

    /// "expected WHAT, found TOKEN" at the current token.
    fn expected(&mut self, what: &str) -> Fail {
        let msg = format!("expected {what}, found {}", self.tok().describe());
        let span = self.span();
        self.error(span, &msg, None)
    }

    /// Skips the rest of a broken statement: up to and including the next `;` or `{…}` block
    /// at this depth, or up to (not including) the `}` that closes the enclosing block.
    fn recover(&mut self) {
        let mut depth = 0usize;
        loop {
            match self.tok() {
                Tok::Eof => return,
                Tok::LBrace => depth += 1,
                Tok::RBrace => {
                    if depth == 0 {
                        return;
                    }
                    depth -= 1;
                    if depth == 0 {
                        self.bump();
                        return;
                    }
                }
                Tok::Semi if depth == 0 => {
                    self.bump();
                    return;
                }
                _ => {}
            }
            self.bump();
        }
    }

    fn expect_word(&mut self, w: &str, what: &str) -> R<Span> {
        if self.word() == Some(w) {
            Ok(self.bump())
        } else {
            Err(self.expected(what))
        }
    }

    fn expect_name(&mut self, what: &str) -> R<(String, Span)> {
        self.expect_name_ref(what).map(|(n, s)| (n.to_owned(), s))
    }

    /// Like [`Self::expect_name`], borrowing the name from the source.
    fn expect_name_ref(&mut self, what: &str) -> R<(&'a str, Span)> {
        match self.word() {
            Some(w) if is_name(w) => Ok((w, self.bump())),
            Some(w) => {
                let span = self.span();
                Err(self.error(
                    span,
                    &format!("invalid {what} `{}`", truncate(w)),
                    Some(
                        "a name is a letter or `_` followed by letters, digits, `_` or `-`".into(),
                    ),
                ))
            }
            None => Err(self.expected(what)),
        }
    }

    fn expect_string(&mut self, what: &str) -> R<(Cow<'a, str>, bool, Span)> {
        match self.tok() {
            Tok::Str { value, verbatim } => {
                let r = (value.clone(), *verbatim);
                Ok((r.0, r.1, self.bump()))
            }
            _ => Err(self.expected(what)),
        }
    }

    fn expect_lbrace(&mut self, after: &str) -> R<Span> {
        if *self.tok() == Tok::LBrace {
            Ok(self.bump())
        } else {
            Err(self.expected(&format!("`{{` after {after}")))
        }
    }

    /// Expects the `;` ending a statement. A missing `;` at the end of a line is reported
    /// (pointing just after the statement) and parsing goes on as if it were there.
    fn expect_semi(&mut self, after: &str) -> R<()> {
        if *self.tok() == Tok::Semi {
            self.bump();
            return Ok(());
        }
        let prev = self.prev_span();
        let next = self.span();
        let msg = format!(
            "expected `;` after {after}, found {}",
            self.tok().describe()
        );
        if self.newline_between(prev, next) || *self.tok() == Tok::RBrace || *self.tok() == Tok::Eof
        {
            self.error(
                Span {
                    start: prev.end,
                    end: prev.end,
                },
                &msg,
                Some("every statement ends with `;`".into()),
            );
            Ok(())
        } else {
            Err(self.error(next, &msg, None))
        }
    }

    /// Does the current token start a top-level section (used to detect a missing `}`)?
    fn at_top_level_keyword(&self) -> bool {
        match self.word() {
            Some("map") => !matches!(self.word_at(1), Some("from" | "to")),
            Some("translate") => self.word_at(1) == Some("map"),
            Some(w) => w != "auth" && TOP_KEYWORDS.contains(&w),
            None => false,
        }
    }

    /// Parses statements with `stmt` until the `}` closing a block opened at `open`.
    fn block(&mut self, what: &str, open: Span, mut stmt: impl FnMut(&mut Self) -> R<()>) {
        loop {
            if self.too_many() {
                return;
            }
            match self.tok() {
                Tok::RBrace => {
                    self.bump();
                    return;
                }
                Tok::Eof => {
                    let span = self.span();
                    let line = self.line_of(open.start);
                    self.error(
                        span,
                        &format!("expected `}}` to close {what}, found end of file"),
                        Some(format!("{what} opened at line {line}")),
                    );
                    return;
                }
                _ if self.at_top_level_keyword() => {
                    let span = self.span();
                    let line = self.line_of(open.start);
                    let msg = format!(
                        "expected `}}` to close {what} before {}",
                        self.tok().describe()
                    );
                    self.error(span, &msg, Some(format!("{what} opened at line {line}")));
                    return;
                }
                _ => {
                    if stmt(self).is_err() {
                        self.recover();
                    }
                }
            }
        }
    }

    fn unknown(&mut self, what: &str, known: &[&str]) -> Fail {
        let span = self.span();
        let found = self.tok().describe();
        let help = match self.word() {
            Some(w) => did_you_mean(w, known.iter().copied()),
            None => None,
        }
        .map_or_else(|| one_of(known), |d| format!("{d} {}", one_of(known)));
        let (noun, ctx) = match what.split_once(" in ") {
            Some((noun, ctx)) => (noun, format!(" in {ctx}")),
            None => (what, String::new()),
        };
        let msg = match self.tok() {
            Tok::Word(_) => format!("unknown {noun} {found}{ctx}"),
            _ => format!("expected {noun}{ctx}, found {found}"),
        };
        self.error(span, &msg, Some(help))
    }

    /// Records a definition; reports a duplicate (and returns false).
    fn define(&mut self, kind: Kind, name: &str, span: Span) -> bool {
        if let Some(first) = self.defs.get(&(kind, name.to_owned())) {
            let line = self.line_of(first.start);
            self.sink.error(
                span,
                &format!("duplicate {} `{name}`", kind.word()),
                Some(format!("the first `{name}` is at line {line}")),
            );
            false
        } else {
            self.defs.insert((kind, name.to_owned()), span);
            true
        }
    }

    /// A section that may appear only once; reports a repeat.
    fn once(&mut self, key: &'static str, span: Span, what: &str) {
        if let Some(first) = self.sections.get(key) {
            let line = self.line_of(first.start);
            self.sink.error(
                span,
                &format!("duplicate {what}"),
                Some(format!("the first one is at line {line}")),
            );
        } else {
            self.sections.insert(key, span);
        }
    }

    /// Accepts the word-spaced spelling `words` (e.g. `rtp port range`) with a warning.
    fn spaced(&mut self, words: &[&str], canonical: &str) -> bool {
        if !words
            .iter()
            .enumerate()
            .all(|(i, w)| self.word_at(i) == Some(w))
        {
            return false;
        }
        let start = self.span().start;
        for _ in words {
            self.bump();
        }
        let end = self.prev_span().end;
        self.sink.warning(
            Span { start, end },
            &format!("`{}` read as `{canonical}`", words.join(" ")),
            Some(format!("write `{canonical}`")),
        );
        true
    }

    // ----- values --------------------------------------------------------------------------

    /// A quoted URI template; whitespace inside is removed with a warning. `Ok(None)` when
    /// the template is malformed (reported; the statement goes on).
    fn template(&mut self, what: &str) -> R<Option<(Template, Span)>> {
        let (value, verbatim, span) = self.expect_string(what)?;
        let clean = !value.contains(char::is_whitespace);
        let stripped: Cow<'_, str> = if clean {
            value
        } else {
            Cow::Owned(value.chars().filter(|c| !c.is_whitespace()).collect())
        };
        if !clean {
            self.sink.warning(
                span,
                "whitespace inside URI template removed",
                Some(format!("read as \"{}\"", truncate(&stripped))),
            );
        }
        match Template::parse(&stripped) {
            Ok(t) => Ok(Some((t, span))),
            Err(e) => {
                let at = if verbatim && clean {
                    let start = span.start + 1 + e.offset;
                    let width = self.src[start..].chars().next().map_or(1, char::len_utf8);
                    Span {
                        start,
                        end: start + width,
                    }
                } else {
                    span
                };
                self.sink.error(
                    at,
                    &format!("bad URI template: {}", e.message),
                    Some("parameters are `{name}`, name = letter or `_`, then letters, digits or `_`".into()),
                );
                Ok(None)
            }
        }
    }

    fn number(&mut self, what: &str, min: u16) -> R<(u16, Span)> {
        let range = format!("{what} ({min}–65535)");
        match self.word() {
            Some(w) if !w.is_empty() && w.len() <= 6 && w.bytes().all(|b| b.is_ascii_digit()) => {
                let span = self.span();
                match w.parse::<u32>() {
                    Ok(n) if n >= u32::from(min) && n <= 65535 => {
                        self.bump();
                        Ok((n as u16, span))
                    }
                    _ => Err(self.error(
                        span,
                        &format!("port `{w}` out of range"),
                        Some(format!("expected {range}")),
                    )),
                }
            }
            _ => Err(self.expected(&range)),
        }
    }

    fn ip(&mut self, what: &str) -> R<IpAddr> {
        match self.word() {
            Some(w) => match w.parse() {
                Ok(ip) => {
                    self.bump();
                    Ok(ip)
                }
                Err(_) => {
                    let span = self.span();
                    Err(self.error(
                        span,
                        &format!("invalid IP address `{}`", truncate(w)),
                        Some(format!(
                            "expected {what}: an IPv4 or IPv6 address such as 192.168.1.1"
                        )),
                    ))
                }
            },
            None => Err(self.expected(what)),
        }
    }

    // ----- top level -----------------------------------------------------------------------

    fn top(&mut self) {
        loop {
            if self.too_many() {
                return;
            }
            let r = match self.tok() {
                Tok::Eof => return,
                Tok::Word(w) => match *w {
                    "map" => self.map(),
                    "auth" => self.auth(),
                    "interfaces" => self.interfaces(),
                    "translate_map" => self.translate_map(),
                    "translate" if self.word_at(1) == Some("map") => self.translate_map(),
                    "mailboxes" => self.mailboxes(),
                    "message_centers" => self.message_centers(),
                    "log_dir" => self.log_dir(),
                    "relay" => self.relay(),
                    _ => Err(self.unknown("section", TOP_KEYWORDS)),
                },
                Tok::RBrace => {
                    let span = self.bump();
                    self.sink
                        .error(span, "unexpected `}` without a matching `{`", None);
                    continue;
                }
                _ => Err(self.unknown("section", TOP_KEYWORDS)),
            };
            if r.is_err() {
                self.recover();
            }
        }
    }

    fn map(&mut self) -> R<()> {
        self.bump();
        let (name, nspan) = self.expect_name("map name")?;
        let fresh = self.define(Kind::Map, &name, nspan);
        let open = self.expect_lbrace(&format!("`map {name}`"))?;
        let mut map = Map {
            name,
            entries: Vec::new(),
        };
        let mut seen: HashMap<&'a str, Span> = HashMap::new();
        let what = format!("map `{}`", map.name);
        self.block(&what, open, |p| p.entry(&mut map, &mut seen));
        if fresh {
            self.cfg.maps.push(map);
        }
        Ok(())
    }

    fn entry(&mut self, map: &mut Map, seen: &mut HashMap<&'a str, Span>) -> R<()> {
        if self.word() != Some("entry") {
            return Err(self.unknown("statement in a map", &["entry"]));
        }
        self.bump();
        let (name_ref, nspan) = self.expect_name_ref("entry name")?;
        let name = name_ref.to_owned();
        let mut ok = true;
        let (mut sip, mut tel, mut auth) = (None, None, None);
        loop {
            match self.word() {
                Some(side @ ("sip" | "tel")) => {
                    let kw = self.bump();
                    let t = self.template(if side == "sip" {
                        "a quoted URI template after `sip`"
                    } else {
                        "a quoted URI template after `tel`"
                    })?;
                    let slot = if side == "sip" { &mut sip } else { &mut tel };
                    if slot.is_some() {
                        self.sink.error(
                            kw,
                            &format!("`{side}` given twice in entry `{name}`"),
                            None,
                        );
                        ok = false;
                    }
                    match t {
                        Some((t, _)) => *slot = Some(t),
                        None => ok = false,
                    }
                }
                Some("auth") => {
                    let kw = self.bump();
                    let (a, aspan) = self.expect_name("auth name")?;
                    if auth.is_some() {
                        self.sink
                            .error(kw, &format!("`auth` given twice in entry `{name}`"), None);
                        ok = false;
                    }
                    self.refs.push(Ref {
                        kind: Kind::Auth,
                        name: a.clone(),
                        span: aspan,
                        on: None,
                    });
                    auth = Some(a);
                }
                _ => {
                    if *self.tok() == Tok::Semi {
                        self.bump();
                        break;
                    }
                    // A word on the same line is a bad attribute; anything else (or a word on
                    // a new line) means the `;` is missing.
                    let prev = self.prev_span();
                    let next = self.span();
                    if matches!(self.tok(), Tok::Word(_)) && !self.newline_between(prev, next) {
                        return Err(self.unknown("entry attribute", &["sip", "tel", "auth", ";"]));
                    }
                    self.expect_semi(&format!("entry `{name}`"))?;
                    break;
                }
            }
        }
        if sip.is_none() && tel.is_none() && ok {
            self.sink.error(
                nspan,
                &format!("entry `{name}` has neither a `sip` nor a `tel` template"),
                Some("expected `sip \"…\"` and `tel \"…\"`".into()),
            );
            ok = false;
        }
        if let Some(first) = seen.get(name_ref) {
            let line = self.line_of(first.start);
            self.sink.error(
                nspan,
                &format!("duplicate entry `{name}` in map `{}`", map.name),
                Some(format!("the first `{name}` is at line {line}")),
            );
            ok = false;
        } else {
            seen.insert(name_ref, nspan);
        }
        if ok {
            map.entries.push(MapEntry {
                name,
                sip,
                tel,
                auth,
            });
        }
        Ok(())
    }

    fn auth(&mut self) -> R<()> {
        self.bump();
        let (name, nspan) = self.expect_name("auth name")?;
        let fresh = self.define(Kind::Auth, &name, nspan);
        let open = self.expect_lbrace(&format!("`auth {name}`"))?;
        let mut user: Option<String> = None;
        let mut password: Option<Secret> = None;
        let what = format!("auth `{name}`");
        let before = self.sink.errors;
        self.block(&what, open, |p| match p.word() {
            Some(kw @ ("user" | "password")) => {
                let kspan = p.bump();
                let (v, _, _) = p.expect_string(&format!("a quoted {kw} after `{kw}`"))?;
                p.expect_semi(&format!("`{kw}`"))?;
                let dup = if kw == "user" {
                    user.replace(v.into_owned()).is_some()
                } else {
                    password.replace(Secret::new(v.into_owned())).is_some()
                };
                if dup {
                    p.sink.error(kspan, &format!("`{kw}` given twice"), None);
                }
                Ok(())
            }
            _ => Err(p.unknown("statement in an auth block", &["user", "password"])),
        });
        // A broken statement may have been the one setting the field: do not pile on.
        let clean = self.sink.errors == before;
        for (missing, kw) in [(user.is_none(), "user"), (password.is_none(), "password")] {
            if missing && clean {
                self.sink.error(
                    nspan,
                    &format!("auth `{name}` has no `{kw}`"),
                    Some(format!("expected `{kw} \"…\";` inside the block")),
                );
            }
        }
        if let (true, Some(user), Some(password)) = (fresh, user, password) {
            self.cfg.auths.push(Auth {
                name,
                user,
                password,
            });
        }
        Ok(())
    }

    fn interfaces(&mut self) -> R<()> {
        let kw = self.bump();
        self.once("interfaces", kw, "`interfaces` section");
        let open = self.expect_lbrace("`interfaces`")?;
        self.block("`interfaces`", open, |p| match p.word() {
            Some("tel") => p.interface(InterfaceKind::Tel),
            Some("sip") => p.interface(InterfaceKind::Sip),
            _ => Err(p.unknown("interface", &["tel", "sip"])),
        });
        Ok(())
    }

    fn interface(&mut self, kind: InterfaceKind) -> R<()> {
        let kw = self.bump();
        let key = match kind {
            InterfaceKind::Tel => "interface tel",
            InterfaceKind::Sip => "interface sip",
        };
        let dup = self.sections.contains_key(key);
        self.once(key, kw, &format!("`{kind}` interface"));
        let open = self.expect_lbrace(&format!("`{kind}`"))?;
        let mut iface = Interface::default();
        let mut seen: HashMap<&'static str, Span> = HashMap::new();
        self.block(&format!("the `{kind}` interface"), open, |p| {
            p.iface_stmt(kind, &mut iface, &mut seen)
        });
        if !dup {
            match kind {
                InterfaceKind::Tel => self.cfg.interfaces.tel = Some(iface),
                InterfaceKind::Sip => self.cfg.interfaces.sip = Some(iface),
            }
        }
        Ok(())
    }

    fn iface_stmt(
        &mut self,
        kind: InterfaceKind,
        iface: &mut Interface,
        seen: &mut HashMap<&'static str, Span>,
    ) -> R<()> {
        let start = self.span();
        let directive: &'static str = match self.word() {
            Some("extension") => "extension",
            Some("source") => "source",
            Some("bind") => "bind",
            Some("port") => "port",
            Some("transport") => "transport",
            Some("messaging") => "messaging",
            Some("rtp_port_range") => "rtp_port_range",
            Some("rtp") if self.word_at(1) == Some("port") => "rtp_port_range",
            Some("rtp_remote_addr_override") => "rtp_remote_addr_override",
            Some("allow") => "allow",
            _ => {
                return Err(self.unknown(
                    &format!("directive in the `{kind}` interface"),
                    IFACE_KEYWORDS,
                ));
            }
        };
        if matches!(directive, "port" | "transport" | "allow") && kind == InterfaceKind::Tel {
            return Err(self.error(
                start,
                &format!("`{directive}` is only valid in the `sip` interface"),
                None,
            ));
        }
        // Directives that may appear once per interface.
        if !matches!(
            directive,
            "extension" | "source" | "rtp_remote_addr_override" | "allow"
        ) {
            if let Some(first) = seen.get(directive) {
                let line = self.line_of(first.start);
                self.sink.error(
                    start,
                    &format!("`{directive}` given twice in the `{kind}` interface"),
                    Some(format!("the first one is at line {line}")),
                );
            } else {
                seen.insert(directive, start);
            }
        }
        match directive {
            "extension" | "source" => {
                self.bump();
                self.expect_word("map", &format!("`map` after `{directive}`"))?;
                let (name, span) = self.expect_name("map name")?;
                self.expect_semi(&format!("`{directive} map {name}`"))?;
                let list = if directive == "extension" {
                    &mut iface.extension_maps
                } else {
                    &mut iface.source_maps
                };
                list.push(name.clone());
                self.refs.push(Ref {
                    kind: Kind::Map,
                    name,
                    span,
                    on: Some((kind, directive)),
                });
            }
            "bind" => {
                self.bump();
                iface.bind = Some(self.ip("an IP address after `bind`")?);
                self.expect_semi("`bind`")?;
            }
            "port" => {
                self.bump();
                iface.port = Some(self.number("a port number", 1)?.0);
                self.expect_semi("`port`")?;
            }
            "transport" => {
                self.bump();
                iface.transports.clear();
                loop {
                    let t = match self.word() {
                        Some("udp") => Transport::Udp,
                        Some("tcp") => Transport::Tcp,
                        Some(_) => return Err(self.unknown("transport", &["udp", "tcp"])),
                        None if iface.transports.is_empty() => {
                            return Err(self.expected("`udp` or `tcp`"));
                        }
                        None => break,
                    };
                    let span = self.bump();
                    if iface.transports.contains(&t) {
                        self.sink.error(
                            span,
                            &format!("transport `{}` listed twice", t.as_str()),
                            None,
                        );
                    } else {
                        iface.transports.push(t);
                    }
                }
                self.expect_semi("`transport`")?;
            }
            "messaging" => {
                self.bump();
                iface.messaging = match self.word() {
                    Some("true") => true,
                    Some("false") => false,
                    _ => return Err(self.expected("`true` or `false` after `messaging`")),
                };
                self.bump();
                self.expect_semi("`messaging`")?;
            }
            "rtp_port_range" => {
                if !self.spaced(&["rtp", "port", "range"], "rtp_port_range") {
                    if self.word() == Some("rtp") {
                        return Err(self.unknown(
                            &format!("directive in the `{kind}` interface"),
                            IFACE_KEYWORDS,
                        ));
                    }
                    self.bump();
                }
                let (low, lspan) = self.number("a port number", 1024)?;
                let (high, _) = self.number("a port number", 1024)?;
                if low >= high {
                    self.sink.error(
                        lspan,
                        &format!("empty RTP port range {low}–{high}"),
                        Some("expected `rtp_port_range LOW HIGH;` with LOW < HIGH".into()),
                    );
                }
                iface.rtp_port_range = Some((low, high));
                self.expect_semi("`rtp_port_range`")?;
            }
            "rtp_remote_addr_override" => {
                self.bump();
                let old = self.ip("the remote address to replace")?;
                let new = self.ip("the address to use instead")?;
                iface.rtp_remote_addr_override.push((old, new));
                self.expect_semi("`rtp_remote_addr_override`")?;
            }
            _ => {
                // "allow"
                self.bump();
                let mut any = false;
                while let Some(w) = self.word() {
                    let span = self.span();
                    match w.parse::<IpNet>() {
                        Ok(net) => iface.allow.push(net),
                        Err(e) => {
                            self.sink.error(span, &e.to_string(), None);
                        }
                    }
                    self.bump();
                    any = true;
                }
                if !any {
                    return Err(self.expected("a network such as 192.168.1.0/24 after `allow`"));
                }
                self.expect_semi("`allow`")?;
            }
        }
        Ok(())
    }

    fn translate_map(&mut self) -> R<()> {
        if !self.spaced(&["translate", "map"], "translate_map") {
            self.bump();
        }
        let (name, nspan) = self.expect_name("translate map name")?;
        let fresh = self.define(Kind::TranslateMap, &name, nspan);
        let open = self.expect_lbrace(&format!("`translate_map {name}`"))?;
        let mut tmap = TranslateMap {
            name,
            rules: Vec::new(),
        };
        let what = format!("translate map `{}`", tmap.name);
        self.block(&what, open, |p| p.rule(&mut tmap));
        if fresh {
            self.cfg.translate_maps.push(tmap);
        }
        Ok(())
    }

    fn rule(&mut self, tmap: &mut TranslateMap) -> R<()> {
        if self.word() != Some("rule") {
            return Err(self.unknown("statement in a translate map", &["rule"]));
        }
        self.bump();
        self.expect_word("match", "`match` after `rule`")?;
        let m = self.template("a quoted URI template after `match`")?;
        self.expect_word("translation", "`translation` after the match template")?;
        let t = self.template("a quoted URI template after `translation`")?;
        self.expect_semi("the rule")?;
        if let (Some((match_, _)), Some((translation, tspan))) = (m, t) {
            let mut warned: Vec<&str> = Vec::new();
            for p in translation.params() {
                if !match_.has_param(p) && !warned.contains(&p) {
                    warned.push(p);
                    self.sink.warning(
                        tspan,
                        &format!(
                            "translation uses `{{{p}}}`, which the match side never captures; it expands empty"
                        ),
                        None,
                    );
                }
            }
            tmap.rules.push(TranslateRule {
                match_,
                translation,
            });
        }
        Ok(())
    }

    /// `map_from translate_map X;` / `map_to translate_map Y;` (also `map from`, `translate
    /// map`). `Ok(false)` if the statement is something else.
    fn pair_stmt(&mut self, pair: &mut PairBuilder) -> R<bool> {
        let start = self.span();
        let dir = match self.word() {
            Some("map_from") => "map_from",
            Some("map_to") => "map_to",
            Some("map") if self.word_at(1) == Some("from") => "map_from",
            Some("map") if self.word_at(1) == Some("to") => "map_to",
            _ => return Ok(false),
        };
        if !self.spaced(&["map", &dir[4..]], dir) {
            self.bump();
        }
        if !self.spaced(&["translate", "map"], "translate_map") {
            self.expect_word("translate_map", &format!("`translate_map` after `{dir}`"))?;
        }
        let (name, span) = self.expect_name("translate map name")?;
        self.expect_semi(&format!("`{dir}`"))?;
        self.refs.push(Ref {
            kind: Kind::TranslateMap,
            name: name.clone(),
            span,
            on: None,
        });
        let slot = if dir == "map_from" {
            &mut pair.map_from
        } else {
            &mut pair.map_to
        };
        if slot.replace(name).is_some() {
            self.sink
                .error(start, &format!("`{dir}` given twice"), None);
        }
        Ok(true)
    }

    /// Reports a missing `map_from`/`map_to` at `at` and builds the pair when complete.
    fn finish_pair(
        &mut self,
        pair: PairBuilder,
        at: Span,
        what: &str,
        clean: bool,
    ) -> Option<TranslatePair> {
        for (missing, kw) in [
            (pair.map_from.is_none(), "map_from"),
            (pair.map_to.is_none(), "map_to"),
        ] {
            if missing && clean {
                self.sink.error(
                    at,
                    &format!("{what} has no `{kw}`"),
                    Some(format!(
                        "expected `{kw} translate_map NAME;` inside the block"
                    )),
                );
            }
        }
        Some(TranslatePair {
            map_from: pair.map_from?,
            map_to: pair.map_to?,
        })
    }

    fn mailboxes(&mut self) -> R<()> {
        let kw = self.bump();
        self.once("mailboxes", kw, "`mailboxes` section");
        let open = self.expect_lbrace("`mailboxes`")?;
        self.block("`mailboxes`", open, |p| match p.word() {
            Some(dir @ ("read" | "write")) => p.mailbox(dir == "read"),
            _ => Err(p.unknown("mailbox kind", &["read", "write"])),
        });
        Ok(())
    }

    fn mailbox(&mut self, read: bool) -> R<()> {
        let kw = self.bump();
        let what = if read {
            "`read` mailbox"
        } else {
            "`write` mailbox"
        };
        let open = self.expect_lbrace(what)?;
        let mut path: Option<PathBuf> = None;
        let mut pair = PairBuilder::default();
        let before = self.sink.errors;
        self.block(what, open, |p| {
            if p.pair_stmt(&mut pair)? {
                return Ok(());
            }
            if p.word() != Some("path") {
                return Err(p.unknown("statement in a mailbox", &["path", "map_from", "map_to"]));
            }
            let kspan = p.bump();
            let (v, _, _) = p.expect_string("a quoted path after `path`")?;
            p.expect_semi("`path`")?;
            if path.replace(PathBuf::from(v.as_ref())).is_some() {
                p.sink.error(kspan, "`path` given twice", None);
            }
            Ok(())
        });
        let clean = self.sink.errors == before;
        if path.is_none() && clean {
            self.sink.error(
                kw,
                &format!("{what} has no `path`"),
                Some("expected `path \"/path/to/maildir\";` inside the block".into()),
            );
        }
        let pair = self.finish_pair(pair, kw, what, clean);
        if let (Some(path), Some(maps)) = (path, pair) {
            let list = if read {
                &mut self.cfg.mailboxes.read
            } else {
                &mut self.cfg.mailboxes.write
            };
            list.push(Mailbox { path, maps });
        }
        Ok(())
    }

    fn message_centers(&mut self) -> R<()> {
        let kw = self.bump();
        self.once("message_centers", kw, "`message_centers` section");
        let open = self.expect_lbrace("`message_centers`")?;
        self.block("`message_centers`", open, |p| match p.word() {
            Some("smpp") => p.smpp(),
            _ => Err(p.unknown("message center kind", &["smpp"])),
        });
        Ok(())
    }

    fn smpp(&mut self) -> R<()> {
        let kw = self.bump();
        let open = self.expect_lbrace("`smpp`")?;
        let mut hostname: Option<String> = None;
        let mut port: Option<u16> = None;
        let mut user: Option<String> = None;
        let mut password: Option<Secret> = None;
        let mut read: Option<TranslatePair> = None;
        let mut write: Option<TranslatePair> = None;
        let before = self.sink.errors;
        self.block("`smpp`", open, |p| {
            let Some(w) = p.word() else {
                return Err(p.unknown("statement in `smpp`", SMPP_KEYWORDS));
            };
            let kspan = p.span();
            let dup = match w {
                "hostname" | "user" | "password" => {
                    p.bump();
                    let (v, _, vspan) = p.expect_string(&format!("a quoted {w} after `{w}`"))?;
                    p.expect_semi(&format!("`{w}`"))?;
                    if w == "hostname" && (v.is_empty() || v.contains(char::is_whitespace)) {
                        p.sink.error(
                            vspan,
                            "invalid hostname",
                            Some("expected a DNS name or IP address".into()),
                        );
                    }
                    match w {
                        "hostname" => hostname.replace(v.into_owned()).is_some(),
                        "user" => user.replace(v.into_owned()).is_some(),
                        _ => password.replace(Secret::new(v.into_owned())).is_some(),
                    }
                }
                "port" => {
                    p.bump();
                    let (n, _) = p.number("a port number", 1)?;
                    p.expect_semi("`port`")?;
                    port.replace(n).is_some()
                }
                "read" | "write" => {
                    p.bump();
                    let what = format!("the `{w}` block of `smpp`");
                    let open = p.expect_lbrace(&format!("`{w}`"))?;
                    let mut pair = PairBuilder::default();
                    let before = p.sink.errors;
                    p.block(&what, open, |q| {
                        if q.pair_stmt(&mut pair)? {
                            Ok(())
                        } else {
                            Err(q.unknown("statement", &["map_from", "map_to"]))
                        }
                    });
                    let clean = p.sink.errors == before;
                    let built = p.finish_pair(pair, kspan, &what, clean);
                    let slot = if w == "read" { &mut read } else { &mut write };
                    let dup = slot.is_some();
                    if built.is_some() {
                        *slot = built;
                    }
                    dup
                }
                _ => return Err(p.unknown("statement in `smpp`", SMPP_KEYWORDS)),
            };
            if dup {
                p.sink
                    .error(kspan, &format!("`{w}` given twice in `smpp`"), None);
            }
            Ok(())
        });
        let clean = self.sink.errors == before;
        for (missing, k) in [
            (hostname.is_none(), "hostname"),
            (user.is_none(), "user"),
            (password.is_none(), "password"),
        ] {
            if missing && clean {
                self.sink.error(
                    kw,
                    &format!("`smpp` message center has no `{k}`"),
                    Some(format!("expected `{k} \"…\";` inside the block")),
                );
            }
        }
        if let (Some(hostname), Some(user), Some(password)) = (hostname, user, password) {
            self.cfg.message_centers.push(SmppCenter {
                hostname,
                port: port.unwrap_or(DEFAULT_SMPP_PORT),
                user,
                password,
                read,
                write,
            });
        }
        Ok(())
    }

    fn log_dir(&mut self) -> R<()> {
        let kw = self.bump();
        self.once("log_dir", kw, "`log_dir`");
        let (v, _, _) = self.expect_string("a quoted directory after `log_dir`")?;
        self.expect_semi("`log_dir`")?;
        self.cfg.log_dir.get_or_insert(PathBuf::from(v.as_ref()));
        Ok(())
    }

    /// `relay NAME { socket "…"; }` or `relay NAME { address IP; port N; ca "…"; cert "…";
    /// key "…"; }` (addition).
    fn relay(&mut self) -> R<()> {
        self.bump();
        let (name, nspan) = self.expect_name("relay name")?;
        let fresh = self.define(Kind::Relay, &name, nspan);
        let open = self.expect_lbrace(&format!("`relay {name}`"))?;
        let what = format!("relay `{name}`");
        let mut socket: Option<(PathBuf, Span)> = None;
        let mut address: Option<(IpAddr, Span)> = None;
        let mut port: Option<(u16, Span)> = None;
        // ca, cert, key
        let mut files: [Option<(PathBuf, Span)>; 3] = [None, None, None];
        let before = self.sink.errors;
        self.block(&what, open, |p| {
            let Some(w) = p.word() else {
                return Err(p.unknown("statement in a relay block", RELAY_KEYWORDS));
            };
            let kspan = p.span();
            let dup = match w {
                "socket" | "ca" | "cert" | "key" => {
                    p.bump();
                    let (v, _, _) = p.expect_string(&format!("a quoted path after `{w}`"))?;
                    p.expect_semi(&format!("`{w}`"))?;
                    let slot = match w {
                        "socket" => &mut socket,
                        "ca" => &mut files[0],
                        "cert" => &mut files[1],
                        _ => &mut files[2],
                    };
                    slot.replace((PathBuf::from(v.as_ref()), kspan)).is_some()
                }
                "address" => {
                    p.bump();
                    let ip = p.ip("the relay's IP address after `address`")?;
                    p.expect_semi("`address`")?;
                    address.replace((ip, kspan)).is_some()
                }
                "port" => {
                    p.bump();
                    let (n, _) = p.number("a port number", 1)?;
                    p.expect_semi("`port`")?;
                    port.replace((n, kspan)).is_some()
                }
                _ => return Err(p.unknown("statement in a relay block", RELAY_KEYWORDS)),
            };
            if dup {
                p.sink
                    .error(kspan, &format!("`{w}` given twice in {what}"), None);
            }
            Ok(())
        });
        // A broken statement may have been the one setting a field: do not pile on.
        if self.sink.errors != before {
            return Ok(());
        }
        let help = || {
            Some(
                "a relay is local (`socket \"…\";`) or remote (`address`, `port`, `ca`, `cert`, `key`)"
                    .to_owned(),
            )
        };
        let [ca, cert, key] = files;
        let endpoint = match (socket, address) {
            (Some((_, s1)), Some((_, s2))) => {
                let span = if s1.start > s2.start { s1 } else { s2 };
                self.sink.error(
                    span,
                    &format!("relay `{name}` has both `socket` and `address`"),
                    help(),
                );
                None
            }
            (None, None) => {
                self.sink.error(
                    nspan,
                    &format!("relay `{name}` has neither `socket` nor `address`"),
                    help(),
                );
                None
            }
            (Some((path, _)), None) => {
                let remote_only = [
                    ("port", port.map(|p| p.1)),
                    ("ca", ca.as_ref().map(|f| f.1)),
                    ("cert", cert.as_ref().map(|f| f.1)),
                    ("key", key.as_ref().map(|f| f.1)),
                ];
                match remote_only
                    .into_iter()
                    .find_map(|(kw, s)| s.map(|s| (kw, s)))
                {
                    Some((kw, span)) => {
                        self.sink.error(
                            span,
                            &format!("`{kw}` is for a remote relay (`address`), not a `socket`"),
                            help(),
                        );
                        None
                    }
                    None => Some(RelayEndpoint::Unix(path)),
                }
            }
            (None, Some((ip, _))) => {
                for (missing, kw) in [
                    (port.is_none(), "port"),
                    (ca.is_none(), "ca"),
                    (cert.is_none(), "cert"),
                    (key.is_none(), "key"),
                ] {
                    if missing {
                        self.sink.error(
                            nspan,
                            &format!("relay `{name}` has `address` but no `{kw}`"),
                            Some(format!("a remote relay needs `{kw} …;` inside the block")),
                        );
                    }
                }
                match (port, ca, cert, key) {
                    (Some((port, _)), Some((ca, _)), Some((cert, _)), Some((key, _))) => {
                        Some(RelayEndpoint::Tls {
                            address: std::net::SocketAddr::new(ip, port),
                            ca,
                            cert,
                            key,
                        })
                    }
                    _ => None,
                }
            }
        };
        if let (true, Some(endpoint)) = (fresh, endpoint) {
            self.cfg.relays.push(Relay { name, endpoint });
        }
        Ok(())
    }

    // ----- semantic checks -----------------------------------------------------------------

    fn check_refs(&mut self) {
        let map_index: HashMap<&str, &Map> =
            self.cfg.maps.iter().map(|m| (m.name.as_str(), m)).collect();
        let mut out = Vec::new();
        for r in &self.refs {
            if !self.defs.contains_key(&(r.kind, r.name.clone())) {
                let names = self
                    .defs
                    .keys()
                    .filter(|(k, _)| *k == r.kind)
                    .map(|(_, n)| n.as_str());
                let help = did_you_mean(&r.name, names)
                    .or_else(|| Some(format!("no {} with that name is defined", r.kind.word())));
                out.push((
                    r.span,
                    format!("undefined {} `{}`", r.kind.word(), r.name),
                    help,
                ));
                continue;
            }
            let (Some((iface, role)), Some(map)) = (r.on, map_index.get(r.name.as_str())) else {
                continue;
            };
            let lacking = map.entries.iter().find_map(|e| {
                InterfaceKind::ALL
                    .into_iter()
                    .find(|&k| e.side(k).is_none())
                    .map(|k| (e, k))
            });
            if let Some((e, side)) = lacking {
                out.push((
                    r.span,
                    format!(
                        "map `{}` is used as {role} map on the `{iface}` interface, but its entry `{}` has no `{side}` template",
                        map.name, e.name
                    ),
                    Some("routing matches one side of an entry and expands the other, so every entry needs both `sip` and `tel`".into()),
                ));
            }
        }
        for (span, msg, help) in out {
            self.sink.error(span, &msg, help);
        }
    }

    fn diagnostic(
        &self,
        file: &str,
        severity: Severity,
        span: Span,
        message: String,
        help: Option<String>,
    ) -> Diagnostic {
        let start = span.start.min(self.src.len());
        let line = self.line_of(start);
        let line_start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let line_end = self.src[line_start..]
            .find('\n')
            .map_or(self.src.len(), |n| line_start + n);
        let source_line = self.src[line_start..line_end].trim_end_matches('\r');
        let column = self
            .src
            .get(line_start..start)
            .map_or(1, |s| s.chars().count() + 1);
        let end = span.end.clamp(start, line_end);
        let width = self
            .src
            .get(start..end)
            .map_or(1, |s| s.chars().count())
            .max(1);
        Diagnostic {
            severity,
            file: file.to_owned(),
            line,
            column,
            width,
            message,
            source_line: source_line.to_owned(),
            help,
        }
    }
}

const SMPP_KEYWORDS: &[&str] = &["hostname", "port", "user", "password", "read", "write"];
