//! URI templates compiled for matching and expansion.
//!
//! This module owns the template semantics of cig.conf routing:
//!
//! - `{name}` matches zero or more characters and the whole URI must match;
//! - with several parameters the earlier ones take as few characters as possible, so
//!   `sip:{series}@{discard}` splits `sip:1@a@b` at the first `@`;
//! - a parameter that the output names but the match side never captured expands to empty;
//! - when a name is captured twice the first capture is the one used;
//! - TEL templates (those whose text starts with `tel:`) treat the "wait for connect" marks `w`
//!   and `;` as the same character (see [`wait_mark`]).
//!
//! Matching is exact byte comparison otherwise (no case folding, no URI unescaping); captured
//! text and output literals are copied verbatim, so a caller who dialled `tel:+8888w101` keeps
//! its `w` in captured text.

use cig_core::template::{Segment, Template};

use crate::RouteError;

/// Most parameters one template may hold. Matching keeps capture positions on the stack, so
/// the count is capped; real dial plans use one to three.
pub const MAX_PARAMS: usize = 16;

/// Most literal and parameter pieces one output template may hold.
pub const MAX_PIECES: usize = 255;

/// Capture positions of one match: `(start, end)` byte offsets into the matched URI, one per
/// parameter.
pub(crate) type CaptureBuf = [(usize, usize); MAX_PARAMS];

/// An empty capture buffer.
pub(crate) fn capture_buf() -> CaptureBuf {
    [(0, 0); MAX_PARAMS]
}

/// Position of the "wait for connect" mark `w`/`W` in a TEL URI, if the URI has one.
///
/// A TEL URI's dial string runs from after `tel:` (any case) to the first `;`. The characters
/// allowed there (digits, `+`, `*`, `#`, visual separators, hex digits) never include `w`, so the
/// first `w` or `W` before any `;` is the wait mark and is treated as `;` when matching. Anything
/// after the first `;` is left alone (parameters such as `phone-context=www…`).
///
/// ```
/// assert_eq!(cig_route::pattern::wait_mark("tel:+8888w101"), Some(9));
/// assert_eq!(cig_route::pattern::wait_mark("tel:+8888;101"), None);
/// assert_eq!(cig_route::pattern::wait_mark("sip:w@pbx.com"), None);
/// ```
pub fn wait_mark(uri: &str) -> Option<usize> {
    let bytes = uri.as_bytes();
    if !is_tel(bytes) {
        return None;
    }
    let i = bytes[4..]
        .iter()
        .position(|&b| matches!(b, b'w' | b'W' | b';'))?
        + 4;
    (bytes[i] != b';').then_some(i)
}

/// `true` when `bytes` starts with `tel:` in any case.
fn is_tel(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && bytes[..4].eq_ignore_ascii_case(b"tel:")
}

/// A URI to be matched, with its wait mark located once for all patterns.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Subject<'a> {
    pub(crate) uri: &'a str,
    wait: Option<usize>,
}

impl<'a> Subject<'a> {
    pub(crate) fn new(uri: &'a str) -> Self {
        Subject {
            uri,
            wait: wait_mark(uri),
        }
    }

    /// Position of the wait mark (see [`wait_mark`]).
    pub(crate) fn wait(&self) -> Option<usize> {
        self.wait
    }

    /// Does the URI, read as TEL templates read it (the wait mark as `;`), start with `key`?
    pub(crate) fn starts_with(&self, key: &[u8]) -> bool {
        View {
            bytes: self.uri.as_bytes(),
            wait: self.wait,
        }
        .eq_at(0, key)
    }
}

/// `a == b` for slices of equal length, without a library call for the short literals of
/// URIs (two overlapping word compares).
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    fn word(s: &[u8], at: usize) -> u64 {
        s.get(at..at + 8)
            .and_then(|c| <[u8; 8]>::try_from(c).ok())
            .map_or(0, u64::from_le_bytes)
    }
    fn half(s: &[u8], at: usize) -> u32 {
        s.get(at..at + 4)
            .and_then(|c| <[u8; 4]>::try_from(c).ok())
            .map_or(0, u32::from_le_bytes)
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        _ => a == b,
    }
}

/// The subject as one pattern sees it: TEL patterns see the wait mark as `;`, others see the
/// raw bytes.
#[derive(Clone, Copy)]
struct View<'a> {
    bytes: &'a [u8],
    wait: Option<usize>,
}

impl View<'_> {
    /// Does `lit` occur at `pos`? The caller guarantees `pos + lit.len() <= bytes.len()`.
    fn eq_at(&self, pos: usize, lit: &[u8]) -> bool {
        let Some(window) = self.bytes.get(pos..pos + lit.len()) else {
            return false;
        };
        match self.wait {
            Some(w) if w >= pos && w < pos + lit.len() => window
                .iter()
                .zip(lit)
                .enumerate()
                .all(|(i, (&b, &l))| if pos + i == w { l == b';' } else { b == l }),
            _ => bytes_eq(window, lit),
        }
    }

    /// Earliest position `q` in `from..=to - lit.len()` where `lit` occurs.
    fn find(&self, from: usize, to: usize, lit: &[u8]) -> Option<usize> {
        let last = to.checked_sub(lit.len())?;
        let Some((&first, _)) = lit.split_first() else {
            return (from <= last).then_some(from);
        };
        // Candidates start with `first` (or are the wait mark when `first` is `;`).
        let starts = self.bytes.get(from..=last)?;
        starts
            .iter()
            .enumerate()
            .filter(|&(i, &b)| b == first || (first == b';' && self.wait == Some(from + i)))
            .map(|(i, _)| from + i)
            .find(|&q| self.eq_at(q, lit))
    }
}

/// One side of a map entry (or a translate rule's `match`) compiled for matching.
///
/// The template is `L0 {p1} L1 {p2} … {pk} Lk` with possibly empty literals `Li`. A URI
/// matches when it starts with `L0`, ends with `Lk` and holds `L1 … Lk-1` in order in
/// between; taking each middle literal at its earliest possible position is both a complete
/// search (an earlier position leaves more room for the rest) and exactly the rule "earlier
/// parameters take as few characters as possible".
#[derive(Clone, Debug)]
pub struct Pattern {
    /// Literals `L0..=Lk`, concatenated, wait mark normalised to `;` in TEL templates (an
    /// ASCII-for-ASCII substitution, so still UTF-8). A [`Rule`] appends its output literals
    /// here, so that a lookup reads one allocation.
    lits: Box<str>,
    /// `k + 2` offsets into `lits` as little-endian u16s (the routing table's record format):
    /// literal `i` is `lits[bounds[i]..bounds[i + 1]]`. Kept inline (templates are at most
    /// 4096 bytes) so a match touches one allocation.
    bounds: [u8; 2 * (MAX_PARAMS + 2)],
    /// Parameter names `p1..=pk`, joined by NUL (names are `[A-Za-z_][A-Za-z0-9_]*`).
    names: Box<str>,
    /// `k`, the number of parameters.
    k: u8,
    /// A TEL template: the subject's wait mark reads as `;`.
    tel: bool,
}

impl Pattern {
    /// Compiles a template. Fails only when it has more than [`MAX_PARAMS`] parameters (or
    /// over 65535 bytes of literal text).
    pub fn new(template: &Template) -> Result<Pattern, RouteError> {
        let mut lits = String::new();
        let mut ends = Vec::new();
        let mut names = Vec::new();
        for segment in template.segments() {
            match segment {
                Segment::Literal(text) => lits.push_str(text),
                Segment::Param(name) => {
                    ends.push(lits.len());
                    names.push(name.as_str());
                }
            }
        }
        ends.push(lits.len());
        let too_long = u16::try_from(lits.len()).is_err();
        if names.len() > MAX_PARAMS || too_long {
            return Err(RouteError::TemplateTooLarge {
                template: template.as_str().to_owned(),
                max_params: MAX_PARAMS,
            });
        }
        let mut bounds = [0; 2 * (MAX_PARAMS + 2)];
        for (b, end) in bounds[2..].chunks_exact_mut(2).zip(&ends) {
            b.copy_from_slice(&(*end as u16).to_le_bytes());
        }
        let tel = is_tel(&lits.as_bytes()[..ends[0]]);
        if tel {
            lits = normalise_template_wait_mark(&lits);
        }
        Ok(Pattern {
            lits: lits.into(),
            bounds,
            k: names.len() as u8,
            names: names.join("\0").into(),
            tel,
        })
    }

    /// The compiled form that matching reads.
    pub(crate) fn view(&self) -> PatternView<'_> {
        PatternView {
            lits: self.lits.as_bytes(),
            bounds: &self.bounds[..2 * (usize::from(self.k) + 2)],
            tel: self.tel,
        }
    }

    /// Parameter names in template order.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.names.split('\0').take(usize::from(self.k))
    }

    /// Index of the first parameter called `name`.
    fn param_index(&self, name: &str) -> Option<usize> {
        self.params().position(|n| n == name)
    }

    /// Matches `subject`, writing capture `i` to `caps[i]`.
    pub(crate) fn match_into(&self, subject: Subject<'_>, caps: &mut CaptureBuf) -> bool {
        self.view().match_into(subject, caps)
    }

    /// Does `uri` match?
    pub fn is_match(&self, uri: &str) -> bool {
        self.match_into(Subject::new(uri), &mut capture_buf())
    }

    /// Matches `uri` and returns what each parameter captured.
    pub fn captures<'u>(&self, uri: &'u str) -> Option<Captures<'_, 'u>> {
        let mut caps = capture_buf();
        let matched = self.match_into(Subject::new(uri), &mut caps);
        matched.then_some(Captures {
            pattern: self,
            uri,
            caps,
        })
    }
}

/// A compiled template as matching reads it, borrowed from a [`Pattern`] or from a routing
/// table's packed rule record: literals `L0..=Lk` concatenated, their `k + 2` bounds (as
/// little-endian u16s, the record's format, so that a record needs no decoding), and whether
/// it is a TEL template.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PatternView<'a> {
    pub(crate) lits: &'a [u8],
    pub(crate) bounds: &'a [u8],
    pub(crate) tel: bool,
}

impl<'a> PatternView<'a> {
    /// The number of parameters, `k`.
    pub(crate) fn k(&self) -> usize {
        (self.bounds.len() / 2).saturating_sub(2)
    }

    /// Bound `i`.
    fn bound(&self, i: usize) -> usize {
        self.bounds
            .get(2 * i..2 * i + 2)
            .map_or(0, |b| usize::from(u16::from_le_bytes([b[0], b[1]])))
    }

    /// Literal `i` (normalised).
    pub(crate) fn lit(&self, i: usize) -> &'a [u8] {
        self.lits
            .get(self.bound(i)..self.bound(i + 1))
            .unwrap_or_default()
    }

    /// Matches `subject`, writing capture `i` to `caps[i]`.
    pub(crate) fn match_into(&self, subject: Subject<'_>, caps: &mut CaptureBuf) -> bool {
        self.match_with(subject, caps, false)
    }

    /// [`Self::match_into`] of a subject already known to start with `L0` as this pattern reads
    /// it. The prefix index knows that of every rule it tries: it verified the longest key
    /// with [`Subject::starts_with`], and every other key it tries is a prefix of that one.
    /// (`starts_with` reads the wait mark as `;` whatever the pattern, but a key reaching the
    /// mark at offset 4 or later equals the subject's `tel:` scheme in its first four bytes, so
    /// it is a TEL template, which reads it so too.)
    pub(crate) fn match_after_head(&self, subject: Subject<'_>, caps: &mut CaptureBuf) -> bool {
        self.match_with(subject, caps, true)
    }

    fn match_with(&self, subject: Subject<'_>, caps: &mut CaptureBuf, head_known: bool) -> bool {
        let view = View {
            bytes: subject.uri.as_bytes(),
            wait: if self.tel { subject.wait } else { None },
        };
        let n = view.bytes.len();
        let k = self.k().min(MAX_PARAMS);
        let head = self.lit(0);
        let head_ok = |view: &View<'_>| head_known || view.eq_at(0, head);
        if k == 0 {
            return n == head.len() && head_ok(&view);
        }
        let tail = self.lit(k);
        let Some(end) = n.checked_sub(tail.len()) else {
            return false;
        };
        if end < head.len() || !head_ok(&view) || !view.eq_at(end, tail) {
            return false;
        }
        let mut pos = head.len();
        for (i, cap) in caps.iter_mut().enumerate().take(k - 1) {
            let lit = self.lit(i + 1);
            let Some(q) = view.find(pos, end, lit) else {
                return false;
            };
            *cap = (pos, q);
            pos = q + lit.len();
        }
        caps[k - 1] = (pos, end);
        true
    }
}

/// `lits` with the first `w`/`W` of a TEL template's dial string (after `tel:`, before any
/// `;`) replaced by `;`, mirroring [`wait_mark`] on subjects.
fn normalise_template_wait_mark(lits: &str) -> String {
    match lits
        .bytes()
        .skip(4)
        .position(|b| matches!(b, b'w' | b'W' | b';'))
    {
        Some(i) => format!("{};{}", &lits[..4 + i], &lits[4 + i + 1..]),
        None => lits.to_owned(),
    }
}

/// What the parameters of a [`Pattern`] captured from one URI.
#[derive(Clone, Debug)]
pub struct Captures<'p, 'u> {
    pattern: &'p Pattern,
    uri: &'u str,
    caps: CaptureBuf,
}

impl<'u> Captures<'_, 'u> {
    /// The text captured by the first parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&'u str> {
        let i = self.pattern.param_index(name)?;
        let (start, end) = *self.caps.get(i)?;
        self.uri.get(start..end)
    }

    /// `(name, captured text)` in template order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &'u str)> {
        let uri = self.uri;
        self.pattern
            .params()
            .zip(&self.caps)
            .map(move |(name, &(start, end))| (name, uri.get(start..end).unwrap_or_default()))
    }
}

/// A piece of an output template, resolved against the match side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutPiece {
    /// Literal text, as written in the configuration: `lits[start..end]` of the rule's
    /// pattern (after the pattern's own literals).
    Literal(u16, u16),
    /// The capture of the match side's parameter with this index.
    Capture(u8),
}

/// Writes output `pieces` (literals from `lits`, captures of `uri` in `caps`) to `out`,
/// replacing what it held and reusing its allocation (it grows only when the URI plus all
/// literal bytes outgrow its capacity). `None` only if `lits` is not the UTF-8 a rule was
/// compiled from (`out` is then empty).
pub(crate) fn expand_into(
    pieces: impl Iterator<Item = OutPiece>,
    lits: &[u8],
    uri: &str,
    caps: &CaptureBuf,
    out: &mut String,
) -> Option<()> {
    // The buffer as bytes (a move, no copy), so the output is validated once as a whole —
    // cheaper than one check per literal piece.
    let mut bytes = std::mem::take(out).into_bytes();
    bytes.clear();
    bytes.reserve(uri.len() + lits.len());
    for piece in pieces {
        bytes.extend_from_slice(match piece {
            OutPiece::Literal(start, end) => lits.get(usize::from(start)..usize::from(end))?,
            OutPiece::Capture(i) => caps
                .get(usize::from(i))
                .and_then(|&(start, end)| uri.get(start..end))
                .map(str::as_bytes)
                .unwrap_or_default(),
        });
    }
    *out = String::from_utf8(bytes).ok()?;
    Some(())
}

/// A match template paired with an output template: one direction of a map entry, or a
/// translate rule.
///
/// ```
/// use cig_core::template::Template;
/// use cig_route::pattern::Rule;
///
/// let rule = Rule::new(
///     &Template::parse("sip:9{SIPEXT}@secure.com").unwrap(),
///     &Template::parse("tel:+{SIPEXT}").unwrap(),
/// )
/// .unwrap();
/// assert_eq!(rule.apply("sip:94670123456@secure.com").as_deref(), Some("tel:+4670123456"));
/// assert_eq!(rule.apply("sip:101@pbx.com"), None);
/// ```
#[derive(Clone, Debug)]
pub struct Rule {
    /// The match side; its `lits` also hold the output literals.
    pattern: Pattern,
    /// The output template, resolved against the match side.
    pieces: Box<[OutPiece]>,
}

impl Rule {
    /// Compiles `matching` and resolves `output` against it. Output parameters that
    /// `matching` never captures are dropped: they expand to empty.
    pub fn new(matching: &Template, output: &Template) -> Result<Rule, RouteError> {
        let mut pattern = Pattern::new(matching)?;
        let mut lits = String::from(std::mem::take(&mut pattern.lits));
        let mut pieces = Vec::new();
        for segment in output.segments() {
            match segment {
                Segment::Literal(lit) => {
                    let start = lits.len();
                    lits.push_str(lit);
                    let (Ok(start), Ok(end)) = (u16::try_from(start), u16::try_from(lits.len()))
                    else {
                        return Err(RouteError::TemplateTooLarge {
                            template: output.as_str().to_owned(),
                            max_params: MAX_PARAMS,
                        });
                    };
                    pieces.push(OutPiece::Literal(start, end));
                }
                // Indexes are below MAX_PARAMS, so they fit a u8.
                Segment::Param(name) => pieces.extend(
                    pattern
                        .param_index(name)
                        .map(|i| OutPiece::Capture(i as u8)),
                ),
            }
        }
        // A routing table counts the pieces of a rule in one byte.
        if pieces.len() > MAX_PIECES {
            return Err(RouteError::TemplateTooLarge {
                template: output.as_str().to_owned(),
                max_params: MAX_PARAMS,
            });
        }
        pattern.lits = lits.into();
        Ok(Rule {
            pattern,
            pieces: pieces.into(),
        })
    }

    /// The match side.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// The output template's pieces.
    pub(crate) fn pieces(&self) -> &[OutPiece] {
        &self.pieces
    }

    /// Matches `uri` and, on success, returns the expanded output template.
    pub fn apply(&self, uri: &str) -> Option<String> {
        let mut caps = capture_buf();
        if !self.pattern.match_into(Subject::new(uri), &mut caps) {
            return None;
        }
        let lits = self.pattern.lits.as_bytes();
        let mut out = String::new();
        expand_into(self.pieces.iter().copied(), lits, uri, &caps, &mut out)?;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The word-compare equality is slice equality, at every length and every position
        /// of a differing byte.
        #[test]
        fn bytes_eq_is_slice_eq(a in prop::collection::vec(any::<u8>(), 0..40), flip in any::<prop::sample::Index>(), xor in 1u8..) {
            prop_assert!(bytes_eq(&a, &a));
            let mut b = a.clone();
            if !b.is_empty() {
                let i = flip.index(b.len());
                b[i] ^= xor;
                prop_assert!(!bytes_eq(&a, &b));
            }
            b.push(0);
            prop_assert!(!bytes_eq(&a, &b));
        }
    }

    fn t(s: &str) -> Template {
        Template::parse(s).unwrap()
    }

    fn caps(template: &str, uri: &str) -> Option<Vec<(String, String)>> {
        let p = Pattern::new(&t(template)).unwrap();
        p.captures(uri).map(|c| {
            c.iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect()
        })
    }

    fn apply(from: &str, to: &str, uri: &str) -> Option<String> {
        Rule::new(&t(from), &t(to)).unwrap().apply(uri)
    }

    #[test]
    fn manual_extension_examples() {
        // "+8888;1234 would be mapped to 1234@pbx.com"
        assert_eq!(
            apply(
                "tel:+8888;{extension}",
                "sip:{extension}@pbx.com",
                "tel:+8888;1234"
            )
            .as_deref(),
            Some("sip:1234@pbx.com")
        );
        // "also an empty extension would be matched to sip:@pbx.com"
        assert_eq!(
            apply(
                "tel:+8888;{extension}",
                "sip:{extension}@pbx.com",
                "tel:+8888;"
            )
            .as_deref(),
            Some("sip:@pbx.com")
        );
        // Reverse direction of mapsip2tel: `discard` is uncaptured and expands empty.
        assert_eq!(
            apply(
                "tel:+8888;{foobar}",
                "sip:{foobar}@pbx.com{discard}",
                "tel:+8888;77"
            )
            .as_deref(),
            Some("sip:77@pbx.com")
        );
        assert_eq!(
            apply(
                "sip:{foobar}@pbx.com{discard}",
                "tel:+8888;{foobar}",
                "sip:77@pbx.com;user=phone"
            )
            .as_deref(),
            Some("tel:+8888;77")
        );
    }

    #[test]
    fn earlier_parameters_are_lazy() {
        assert_eq!(
            caps("sip:{series}@{discard}", "sip:1@a@b"),
            Some(vec![
                ("series".into(), "1".into()),
                ("discard".into(), "a@b".into())
            ])
        );
        // Adjacent parameters: the first takes nothing.
        assert_eq!(
            caps("x{a}{b}y", "x123y"),
            Some(vec![("a".into(), "".into()), ("b".into(), "123".into())])
        );
        // The last parameter takes what the trailing literal leaves.
        assert_eq!(
            caps("{a}.{b}.", "1.2.3."),
            Some(vec![("a".into(), "1".into()), ("b".into(), "2.3".into())])
        );
    }

    #[test]
    fn whole_uri_must_match() {
        assert_eq!(caps("sip:{x}@pbx.com", "sip:1@pbx.com.evil"), None);
        assert_eq!(caps("sip:{x}@pbx.com", "xsip:1@pbx.com"), None);
        assert_eq!(caps("sip:101@pbx.com", "sip:101@pbx.com"), Some(vec![]));
        assert_eq!(caps("sip:101@pbx.com", "sip:1010@pbx.com"), None);
        // Prefix and suffix literals may not overlap.
        assert_eq!(caps("ab{x}ba", "aba"), None);
        assert_eq!(caps("ab{x}ba", "abba"), Some(vec![("x".into(), "".into())]));
        // An empty template matches only the empty URI; a lone parameter matches anything.
        assert_eq!(caps("", ""), Some(vec![]));
        assert_eq!(caps("", "x"), None);
        assert_eq!(
            caps("{all}", "tel:+1"),
            Some(vec![("all".into(), "tel:+1".into())])
        );
    }

    #[test]
    fn repeated_name_uses_first_capture() {
        assert_eq!(
            apply("{a}-{a}", "<{a}>", "x-y").as_deref(),
            Some("<x>"),
            "first capture wins"
        );
        assert_eq!(apply("{a}-{b}", "{b}{a}{b}", "x-y").as_deref(), Some("yxy"));
    }

    #[test]
    fn non_ascii_text_is_captured_on_char_boundaries() {
        assert_eq!(
            apply("sip:{u}@{h}", "{h}/{u}", "sip:åsa@bü.se").as_deref(),
            Some("bü.se/åsa")
        );
    }

    #[test]
    fn wait_marks_are_equivalent_in_tel_uris() {
        let rule = |from: &str| Rule::new(&t(from), &t("sip:{ext}@pbx.com")).unwrap();
        // Marks are equivalent; the scheme is compared exactly like every other literal.
        for template in ["tel:+8888;{ext}", "tel:+8888w{ext}", "TEL:+8888W{ext}"] {
            for uri in [
                "tel:+8888;101",
                "tel:+8888w101",
                "tel:+8888W101",
                "Tel:+8888;101",
            ] {
                let got = rule(template).apply(uri);
                let expect = (template[..4] == uri[..4]).then_some("sip:101@pbx.com");
                assert_eq!(got.as_deref(), expect, "{template} vs {uri}");
            }
        }
        // The wait mark split across a parameter.
        assert_eq!(
            apply("tel:+{cig}w{ext}", "{cig}/{ext}", "tel:+8888;101").as_deref(),
            Some("8888/101")
        );
        // Captured text keeps the caller's spelling.
        assert_eq!(
            apply("tel:+{all}", "{all}", "tel:+8888w101").as_deref(),
            Some("8888w101")
        );
        // Only the dial string's first mark counts; parameters after `;` are untouched.
        assert_eq!(
            apply(
                "tel:+1;phone-context=www.x{p}",
                "{p}",
                "tel:+1;phone-context=www.x"
            )
            .as_deref(),
            Some("")
        );
        assert_eq!(apply("tel:+1;{a}w{b}", "{a}.{b}", "tel:+1w2;3"), None);
        assert_eq!(
            apply("tel:+1;{a}w{b}", "{a}.{b}", "tel:+1;2w3").as_deref(),
            Some("2.3")
        );
        // Not a TEL template: `w` is an ordinary letter.
        assert_eq!(apply("sip:{a}w{b}", "{a}.{b}", "sip:1;2"), None);
        assert_eq!(wait_mark("tel:+1;2w3"), None);
        assert_eq!(wait_mark("tel:"), None);
        assert_eq!(wait_mark("te"), None);
        assert_eq!(wait_mark("tel:w"), Some(4));
    }

    #[test]
    fn too_many_output_pieces_is_an_error() {
        let output = |n: usize| t(&"{a}-".repeat(n / 2));
        assert!(Rule::new(&t("x{a}"), &output(MAX_PIECES)).is_ok());
        assert!(matches!(
            Rule::new(&t("x{a}"), &output(MAX_PIECES + 1)),
            Err(RouteError::TemplateTooLarge { .. })
        ));
    }

    #[test]
    fn too_many_parameters_is_an_error() {
        let many: String = (0..=MAX_PARAMS).map(|i| format!("{{p{i}}}-")).collect();
        assert!(matches!(
            Pattern::new(&t(&many)),
            Err(RouteError::TemplateTooLarge {
                max_params: MAX_PARAMS,
                ..
            })
        ));
        let most: String = (0..MAX_PARAMS).map(|i| format!("{{p{i}}}-")).collect();
        let p = Pattern::new(&t(&most)).unwrap();
        let uri = "a-".repeat(MAX_PARAMS);
        assert!(p.captures(&uri).unwrap().iter().all(|(_, v)| v == "a"));
    }
}
