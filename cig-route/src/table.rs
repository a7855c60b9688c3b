//! Routing tables: an ordered list of rules packed into one byte arena, with the prefix index
//! over it.
//!
//! A lookup touches a hash slot and then one rule record, so each rule's record holds
//! everything the lookup reads after the slot, contiguously: the literal bounds, the output
//! pieces, the match side's literal bytes and, for map entries, where its map and entry names
//! sit in the table's names string and which `auth` it carries. Records are laid out in rule
//! order, so a record's offset orders rules like their numbers do and serves as the rule's id
//! in the index.
//!
//! The output is built from pieces that are `str` already, so a lookup validates no UTF-8: a
//! capture, or a run of an output literal that repeats a match literal (copied from the URI,
//! where the match found it), or the rest of an output literal, kept once per distinct run in
//! the table's small `text` (`tel:+` and the like in a typical dial plan, so it stays cached).
//!
//! In a large table the slot and the record are two cache misses, the second waiting for the
//! first. So each key's first rule is also copied into a 64-byte line of its own, numbered
//! like the key's hash slot (when the record fits), with the slot's tag and whether nothing
//! shorter can win: a lookup reads the line of its hash's home slot and the one after it
//! (where a key sits whose home slot an earlier key took) together, tries up to two more, and
//! when one of them holds the key with a matching first rule it answers from that line without
//! reading the slots: one round of misses for the 94 % of keys of a 100k table that sit in
//! their home slot or the next.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

use crate::index::{PrefixIndex, Prefixes};
use crate::pages::Pages;
use crate::pattern::{
    self, CaptureBuf, MAX_PARAMS, MAX_PIECES, OutPiece, PatternView, Rule, Subject,
};
use crate::{Entry, RouteError};

/// Record header bytes: names start (u32), map name length (u16), entry name length (u16),
/// auth index + 1 (u16, 0 = none), literal bytes (u16), flags (u8: parameter count in bits
/// 0–4, [`TEL`], and in lines [`IN_LINE`], [`ALONE`]), piece count (u8). Then the `k + 2` literal bounds (u16 each),
/// the output pieces ([`PIECE`] bytes each) and the match side's literal bytes: under 64 bytes
/// for a typical dial-plan entry.
const HEADER: usize = 14;
/// Flags bit: a TEL template.
const TEL: u8 = 0x20;
/// Flags bit of a record copied into its key's line (clear in the arena); a line without it
/// holds none.
const IN_LINE: u8 = 0x40;
/// Flags bit of a line's record: its key's first rule is the lowest-numbered rule of every key
/// that the line's key starts with (nothing shorter can win when that rule matches).
const ALONE: u8 = 0x80;
/// Where a line keeps its key's slot tag (little-endian u32, see [`PrefixIndex::passed`]);
/// records up to this long are copied into lines.
const LINE_TAG: usize = ALIGN - 4;
/// Lines a lookup tries, from its hash's home slot on (at 100k keys 99 % of the keys sit in
/// one of these slots). [`Table::prepare`] reads the first two ahead.
const LINE_PROBES: usize = 4;
/// Flags bits of the parameter count.
const K_MASK: u8 = 0x1f;
/// Records start at multiples of this, so a short record sits in one cache line.
const ALIGN: usize = 64;
/// Bytes per output piece: a kind byte, a byte and two little-endian u16s.
const PIECE: usize = 6;
/// Piece kind: capture `[_, index, _, _]`.
const CAPTURE: u8 = 0;
/// Piece kind: the subject's bytes under match literal `[_, literal, offset, length]` (what the
/// match compared equal to that part of the literal, so validated text of the subject).
const SUBJECT: u8 = 1;
/// Piece kind: the table's text `[_, start bits 16–23, start bits 0–15, length]`.
const TEXT: u8 = 2;
/// Piece kind: the subject from match literal `j` at `offset` through the end of capture `j`
/// `[_, j, offset, _]` — a [`SUBJECT`] piece that reaches the end of literal `j` merged with
/// the [`CAPTURE`] of parameter `j` that follows it in the output (a dial plan's common
/// `tel:+{digits of the match prefix}{ext}`), one copy instead of two.
const SPAN: u8 = 3;
/// Output text runs of at least this many bytes that repeat a match literal are copied from
/// the subject (shorter ones would only split a text piece).
const MIN_COPY: usize = 4;
/// Output text the table stores: its start must fit 24 bits.
const MAX_TEXT: usize = 1 << 24;

/// One rule as the router sees it: the compiled rule, its map entry and its `auth`.
#[derive(Debug)]
pub(crate) struct RuleSpec<'a> {
    pub(crate) rule: Rule,
    /// Map and entry names (empty for translate rules).
    pub(crate) entry: (&'a str, &'a str),
    pub(crate) auth: Option<&'a str>,
}

/// A lookup started by [`Table::prepare`].
#[derive(Debug)]
pub(crate) struct Prepared<'u> {
    subject: Subject<'u>,
    prefixes: Prefixes,
}

/// Which rule a [`Hit`] is.
#[derive(Clone, Copy, Debug)]
enum Which {
    /// The rule with this id (its record offset).
    Rule(u32),
    /// The first rule of the key in this index slot (a hit from its line).
    FirstOf(usize),
}

/// A matched rule; its expanded output went to the caller's buffer.
#[derive(Debug)]
pub(crate) struct Hit<'t> {
    which: Which,
    table: &'t Table,
    /// Where the map name starts, where the entry name starts and where it ends.
    names: (u32, u32, u32),
    auth: u16,
}

impl<'t> Hit<'t> {
    /// The rule's number in the table (a binary search: translate results only).
    pub(crate) fn rule(&self) -> usize {
        let id = match self.which {
            Which::Rule(id) => id,
            Which::FirstOf(slot) => self.table.index.first_rule_of(slot).unwrap_or(u32::MAX),
        };
        // Records are in rule order.
        self.table.ids.partition_point(|&other| other < id)
    }

    /// The map entry the rule came from.
    pub(crate) fn entry(&self) -> Entry<'t> {
        let (start, split, end) = self.names;
        Entry::in_table(&self.table.names, start, split, end)
    }

    /// The entry's `auth`.
    pub(crate) fn auth(&self) -> Option<&'t str> {
        let i = usize::from(self.auth).checked_sub(1)?;
        self.table.auths.get(i).map(|a| &**a)
    }
}

/// A packed rule record, its parts located once (one bounds check per part).
#[derive(Clone, Copy)]
struct Record<'a> {
    header: &'a [u8; HEADER],
    /// `k + 2` little-endian u16 literal bounds.
    bounds: &'a [u8],
    /// Output pieces, [`PIECE`] bytes each.
    pieces: &'a [u8],
    /// The match side's literal bytes.
    lits: &'a [u8],
}

impl<'a> Record<'a> {
    /// The record at `offset` of `arena` (`None` only if the arena is not what [`Table::new`]
    /// packed).
    fn at(arena: &'a [u8], offset: u32) -> Option<Record<'a>> {
        let (header, rest) = arena
            .get(offset as usize..)?
            .split_first_chunk::<HEADER>()?;
        let k = usize::from(header[12] & K_MASK).min(MAX_PARAMS);
        let (bounds, rest) = rest.split_at_checked(2 * (k + 2))?;
        let (pieces, rest) = rest.split_at_checked(PIECE * usize::from(header[13]))?;
        let lits = rest.get(..usize::from(u16::from_le_bytes([header[10], header[11]])))?;
        Some(Record {
            header,
            bounds,
            pieces,
            lits,
        })
    }

    /// The record's length in bytes.
    fn len(&self) -> usize {
        HEADER + self.bounds.len() + self.pieces.len() + self.lits.len()
    }

    fn u16_at(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.header[at], self.header[at + 1]])
    }

    fn pattern(&self) -> PatternView<'a> {
        PatternView {
            lits: self.lits,
            bounds: self.bounds,
            tel: self.header[12] & TEL != 0,
        }
    }

    /// The leading literal `L0`.
    fn prefix(&self) -> &'a [u8] {
        self.pattern().lit(0)
    }

    /// Writes the output of a match of `uri` (captures in `caps`) to `out`, replacing what it
    /// held. Every piece is a `str` already: a capture or a repeated literal is a slice of the
    /// URI, other text a slice of the table's `text`, so nothing is validated again. `None`
    /// only if the record is not what [`Table::new`] packed.
    fn expand(&self, uri: &str, caps: &CaptureBuf, text: &str, out: &mut String) -> Option<()> {
        out.clear();
        for piece in self.pieces.chunks_exact(PIECE) {
            let (a, b) = (
                usize::from(u16::from_le_bytes([piece[2], piece[3]])),
                usize::from(u16::from_le_bytes([piece[4], piece[5]])),
            );
            let part = match piece[0] {
                CAPTURE => caps
                    .get(usize::from(piece[1]))
                    .and_then(|&(start, end)| uri.get(start..end))
                    .unwrap_or_default(),
                SUBJECT | SPAN => {
                    // Literal `j` starts where capture `j - 1` ends (see `match_with`), and
                    // capture `j` starts where it ends.
                    let j = usize::from(piece[1]);
                    let lit_start = match j.checked_sub(1) {
                        None => 0,
                        Some(i) => caps.get(i)?.1,
                    };
                    let end = if piece[0] == SPAN {
                        caps.get(j)?.1
                    } else {
                        lit_start + a + b
                    };
                    uri.get(lit_start + a..end)?
                }
                _ => {
                    let start = usize::from(piece[1]) << 16 | a;
                    text.get(start..start + b)?
                }
            };
            out.push_str(part);
        }
        Some(())
    }
}

/// A piece of an output template as a table stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// The subject's bytes under match literal `lit` at `offset`, `len` of them.
    Subject { lit: u8, offset: u16, len: u16 },
    /// Bytes `start..end` of the output literal being split.
    Text(usize, usize),
}

/// Splits output literal `out` into runs that repeat an ASCII run of at least [`MIN_COPY`]
/// bytes of one of the match literals `lits` (copied from the subject at lookup: the match
/// compared them equal) and the text between them. TEL templates' `;` bytes are not copied: the
/// subject may have its wait mark `w` there. Longest run first, left to right; a search over
/// very long literals is skipped (all text), and so is every search without `search`.
fn split_output(out: &[u8], lits: &[&[u8]], tel: bool, search: bool, parts: &mut Vec<Part>) {
    let copyable = |b: u8| b.is_ascii() && !(tel && b == b';');
    let total: usize = lits.iter().map(|l| l.len()).sum();
    let search = search && out.len().saturating_mul(total) <= 1 << 14;
    let (mut p, mut text_from) = (0, 0);
    while p < out.len() {
        let mut best = (0, 0, 0);
        for (j, lit) in lits
            .iter()
            .enumerate()
            .take(usize::from(u8::MAX))
            .filter(|_| search)
        {
            for offset in 0..lit.len().min(usize::from(u16::MAX)) {
                let run = out[p..]
                    .iter()
                    .zip(&lit[offset..])
                    .take_while(|&(&o, &l)| o == l && copyable(o))
                    .count()
                    .min(usize::from(u16::MAX));
                if run > best.0 {
                    best = (run, j, offset);
                }
            }
        }
        let (run, j, offset) = best;
        if run < MIN_COPY {
            p += 1;
            continue;
        }
        if text_from < p {
            parts.push(Part::Text(text_from, p));
        }
        // Bounded by the `take` and `min`s above.
        parts.push(Part::Subject {
            lit: j as u8,
            offset: offset as u16,
            len: run as u16,
        });
        p += run;
        text_from = p;
    }
    if text_from < out.len() {
        parts.push(Part::Text(text_from, out.len()));
    }
}

/// A table's output text being built: each distinct run once.
#[derive(Default)]
struct TextStore {
    text: String,
    interned: HashMap<Box<[u8]>, usize>,
}

impl TextStore {
    /// The start of `run` in the text, appended the first time it is seen.
    fn intern(&mut self, run: &[u8]) -> Result<usize, RouteError> {
        if let Some(&at) = self.interned.get(run) {
            return Ok(at);
        }
        let too_much = || RouteError::TooMuchText { max: MAX_TEXT };
        // Runs end at ASCII bytes or the literal's ends, so they are whole characters.
        let run_text = std::str::from_utf8(run).map_err(|_| too_much())?;
        let at = self.text.len();
        if at + run.len() > MAX_TEXT {
            return Err(too_much());
        }
        self.text.push_str(run_text);
        self.interned.insert(run.into(), at);
        Ok(at)
    }
}

/// Appends the output pieces of `rule` to `pieces`: captures, and its output literals split
/// by [`split_output`] (match literals `literals`) into subject copies and interned text; a
/// subject copy that ends where the capture after it starts is merged with it ([`SPAN`]).
fn pack_output(
    rule: &Rule,
    literals: &[&[u8]],
    search: bool,
    text: &mut TextStore,
    parts: &mut Vec<Part>,
    pieces: &mut Vec<[u8; PIECE]>,
) -> Result<(), RouteError> {
    let view = rule.pattern().view();
    for piece in rule.pieces() {
        let (start, end) = match *piece {
            OutPiece::Capture(i) => {
                // A copy of the subject up to the end of literal `i` right before it: one span.
                match pieces.last_mut() {
                    Some(last)
                        if last[0] == SUBJECT
                            && last[1] == i
                            && usize::from(u16::from_le_bytes([last[2], last[3]]))
                                + usize::from(u16::from_le_bytes([last[4], last[5]]))
                                == literals.get(usize::from(i)).map_or(0, |l| l.len()) =>
                    {
                        *last = [SPAN, i, last[2], last[3], 0, 0];
                    }
                    _ => pieces.push([CAPTURE, i, 0, 0, 0, 0]),
                }
                continue;
            }
            OutPiece::Literal(start, end) => (usize::from(start), usize::from(end)),
        };
        let out = view.lits.get(start..end).unwrap_or_default();
        parts.clear();
        split_output(out, literals, view.tel, search, parts);
        for part in parts.iter() {
            pieces.push(match *part {
                Part::Subject { lit, offset, len } => {
                    let [o0, o1] = offset.to_le_bytes();
                    let [l0, l1] = len.to_le_bytes();
                    [SUBJECT, lit, o0, o1, l0, l1]
                }
                Part::Text(from, to) => {
                    let run = out.get(from..to).unwrap_or_default();
                    // Below MAX_TEXT (24 bits); a literal is at most 65535 bytes.
                    let [a0, a1, a2, _] = (text.intern(run)? as u32).to_le_bytes();
                    let [l0, l1] = (run.len() as u16).to_le_bytes();
                    [TEXT, a2, a0, a1, l0, l1]
                }
            });
        }
    }
    Ok(())
}

/// An ordered list of rules with its first-match index.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    /// The records, each at a multiple of [`ALIGN`].
    arena: Box<[u8]>,
    /// [`ALIGN`] bytes per index slot: the record of the slot's key's first rule and the slot's
    /// tag at [`LINE_TAG`] (when it fits; its flags then have [`IN_LINE`], and [`ALONE`] when
    /// nothing shorter can win), else zeros.
    lines: Pages,
    /// Record offset of each rule, in rule order.
    ids: Box<[u32]>,
    index: PrefixIndex,
    /// Map and entry names of all rules, concatenated.
    names: Arc<str>,
    /// The distinct `auth` names.
    auths: Vec<Arc<str>>,
    /// Output literal text that is not copied from the subject, each distinct run once (a
    /// few short strings such as `tel:+` in a typical plan, so it stays in cache).
    text: Box<str>,
}

impl Table {
    /// Packs `rules` in order. `shared` interns `auth` names across tables.
    pub(crate) fn new<'a>(
        rules: impl IntoIterator<Item = RuleSpec<'a>>,
        shared: &mut Vec<Arc<str>>,
    ) -> Result<Table, RouteError> {
        let mut arena: Vec<u8> = Vec::new();
        let mut names = String::new();
        let mut auths: Vec<Arc<str>> = Vec::new();
        let mut ids: Vec<u32> = Vec::new();
        // Output text that is not a copy of the subject, each distinct run stored once.
        let mut text = TextStore::default();
        let mut parts = Vec::new();
        for spec in rules {
            let too_many = || RouteError::TooManyRules {
                max: u32::MAX as usize,
            };
            arena.resize(arena.len().next_multiple_of(ALIGN), 0);
            ids.push(u32::try_from(arena.len()).map_err(|_| too_many())?);
            let names_start = u32::try_from(names.len()).map_err(|_| too_many())?;
            let (map, entry) = spec.entry;
            names.push_str(map);
            names.push_str(entry);
            let auth = match spec.auth {
                None => 0,
                Some(a) => {
                    let i = match auths.iter().position(|x| &**x == a) {
                        Some(i) => i,
                        None => {
                            let interned = match shared.iter().find(|x| &***x == a) {
                                Some(x) => Arc::clone(x),
                                None => {
                                    let x: Arc<str> = Arc::from(a);
                                    shared.push(Arc::clone(&x));
                                    x
                                }
                            };
                            auths.push(interned);
                            auths.len() - 1
                        }
                    };
                    u16::try_from(i + 1).map_err(|_| too_many())?
                }
            };
            let view = spec.rule.pattern().view();
            // The match side's literals; the output literals follow them in the rule.
            let match_lits = match view.bounds.last_chunk::<2>() {
                Some(&end) => view.lits.get(..usize::from(u16::from_le_bytes(end))),
                None => None,
            }
            .unwrap_or_default();
            let literals: Vec<&[u8]> = (0..=view.k()).map(|i| view.lit(i)).collect();
            let mut pieces: Vec<[u8; PIECE]> = Vec::new();
            // Split output literals into copies and text unless that makes too many pieces.
            for search in [true, false] {
                pieces.clear();
                pack_output(
                    &spec.rule,
                    &literals,
                    search,
                    &mut text,
                    &mut parts,
                    &mut pieces,
                )?;
                if pieces.len() <= MAX_PIECES {
                    break;
                }
            }
            let piece_count =
                u8::try_from(pieces.len()).map_err(|_| RouteError::TemplateTooLarge {
                    template: format!("{}{}", spec.entry.0, spec.entry.1),
                    max_params: MAX_PARAMS,
                })?;
            let header = [
                &names_start.to_le_bytes()[..],
                &u16::try_from(map.len())
                    .map_err(|_| too_many())?
                    .to_le_bytes(),
                &u16::try_from(entry.len())
                    .map_err(|_| too_many())?
                    .to_le_bytes(),
                &auth.to_le_bytes(),
                // At most the rule's literals, which fit a u16.
                &(match_lits.len() as u16).to_le_bytes(),
                &[view.k() as u8 | if view.tel { TEL } else { 0 }, piece_count],
            ];
            for part in header {
                arena.extend_from_slice(part);
            }
            arena.extend_from_slice(view.bounds);
            for piece in &pieces {
                arena.extend_from_slice(piece);
            }
            arena.extend_from_slice(match_lits);
        }
        let arena: Box<[u8]> = arena.into();
        let index = PrefixIndex::new(
            ids.iter()
                .map(|&id| (id, Record::at(&arena, id).map_or(&[][..], |r| r.prefix()))),
        );
        let mut lines = Pages::zeroed(index.slot_count() * ALIGN);
        for (slot, id, alone, tag) in index.first_rules() {
            let len = Record::at(&arena, id).map_or(usize::MAX, |r| r.len());
            let (Some(record), Some(line)) = (
                arena.get(id as usize..).and_then(|a| a.get(..len)),
                lines.get_mut(slot * ALIGN..(slot + 1) * ALIGN),
            ) else {
                continue;
            };
            if len <= LINE_TAG {
                line[..len].copy_from_slice(record);
                line[12] |= IN_LINE | if alone { ALONE } else { 0 };
                line[LINE_TAG..].copy_from_slice(&tag.to_le_bytes());
            }
        }
        Ok(Table {
            arena,
            lines,
            ids: ids.into(),
            index,
            names: names.into(),
            auths,
            text: text.text.into(),
        })
    }

    /// Starts a lookup of `uri`: hashes its candidate prefixes and reads the filter bits, and
    /// the home line and the next of the first that passes. Starting both lookups of a call
    /// before [`Self::touch`] and finishing either lets their cache misses overlap.
    pub(crate) fn prepare<'u>(&self, uri: &'u str) -> Prepared<'u> {
        let subject = Subject::new(uri);
        let prefixes = self.index.prefixes(&subject);
        if let Some((home, ..)) = self.index.passed(&prefixes) {
            // The home line, and the next one: a key whose home slot an earlier key took sits
            // there most often (at 100k keys one key in five is off its home slot, two thirds
            // of those in the next).
            let next = (home + 1) & (self.index.slot_count() - 1);
            std::hint::black_box((self.line_flag(home), self.line_flag(next)));
        }
        Prepared { subject, prefixes }
    }

    /// [`IN_LINE`] when line `slot` holds a record, else 0.
    fn line_flag(&self, slot: usize) -> u8 {
        self.lines
            .get(slot * ALIGN + 12)
            .map_or(0, |flags| flags & IN_LINE)
    }

    /// Reads ahead what the lookup will need beyond the lines [`Self::prepare`] read: when the
    /// home line holds no record (its key's first rule is too long for a line, or there is no
    /// key), the slot a lookup will most likely stop at and that slot's first rule, if it is
    /// not in a line either (loads whose values nothing waits for, so that they are in cache
    /// when needed).
    pub(crate) fn touch(&self, prepared: &Prepared<'_>) {
        let Some((home, ..)) = self.index.passed(&prepared.prefixes) else {
            return;
        };
        if self.line_flag(home) == IN_LINE {
            return;
        }
        if let Some((slot, id)) = self.index.likely_rule(&prepared.prefixes) {
            if self.line_flag(slot) != IN_LINE {
                std::hint::black_box(self.arena.get(id as usize).copied());
            }
        }
    }

    /// Rule `id`'s record: from line `slot` when `id` is that slot's first rule and the line
    /// holds it, else from the arena.
    fn record(&self, id: u32, slot: Option<u32>) -> Option<Record<'_>> {
        match slot {
            Some(s) if self.line_flag(s as usize) == IN_LINE => {
                let at = s as usize * ALIGN;
                Record::at(self.lines.get(at..at + ALIGN)?, 0)
            }
            _ => Record::at(&self.arena, id),
        }
    }

    /// The first rule that matches `uri`; its expanded output replaces what `out` held.
    pub(crate) fn apply(&self, uri: &str, out: &mut String) -> Option<Hit<'_>> {
        let prepared = self.prepare(uri);
        self.touch(&prepared);
        self.apply_prepared(&prepared, &mut pattern::capture_buf(), out)
    }

    /// [`Self::apply`] of a prepared lookup (`out` is left alone when no rule matches). `caps`
    /// is scratch space: what it holds on entry is never read (a match writes every capture
    /// its rule's output reads), so one buffer serves any number of lookups.
    pub(crate) fn apply_prepared(
        &self,
        prepared: &Prepared<'_>,
        caps: &mut CaptureBuf,
        out: &mut String,
    ) -> Option<Hit<'_>> {
        let (which, rec) = match self.line_match(prepared, caps) {
            Some((slot, rec)) => (Which::FirstOf(slot), rec),
            None => {
                let (id, rec) = self.walk(prepared, caps)?;
                (Which::Rule(id), rec)
            }
        };
        rec.expand(prepared.subject.uri, caps, &self.text, out)?;
        let start =
            u32::from_le_bytes([rec.header[0], rec.header[1], rec.header[2], rec.header[3]]);
        let split = start.saturating_add(u32::from(rec.u16_at(4)));
        Some(Hit {
            which,
            table: self,
            names: (start, split, split.saturating_add(u32::from(rec.u16_at(6)))),
            auth: rec.u16_at(8),
        })
    }

    /// The common case of a lookup, without the index's slots, as `(slot, record)`: one of the
    /// [`LINE_PROBES`] lines from the home slot of the candidate that passed the filter (where
    /// linear probing put most keys of that hash) holds a record with the candidate's slot tag
    /// whose key has the candidate's length and is [`ALONE`], and that record's rule matches
    /// (captures in `caps`). Its match compares the key (the pattern's `L0`) with the subject
    /// as the index's key check would (see `PatternView::match_after_head` on why the two read
    /// a wait mark alike), and the subject has one prefix of that length, so a key that
    /// matches is the longest key the subject starts with: what [`PrefixIndex::first_match`]
    /// would start at and, being alone with a matching first rule, answer. `None` when no line
    /// serves: [`Self::walk`] answers then.
    fn line_match(
        &self,
        prepared: &Prepared<'_>,
        caps: &mut CaptureBuf,
    ) -> Option<(usize, Record<'_>)> {
        let (home, len, tag) = self.index.passed(&prepared.prefixes)?;
        let mask = self.index.slot_count() - 1;
        let served = IN_LINE | ALONE;
        (0..LINE_PROBES).find_map(|d| {
            let n = (home + d) & mask;
            let line: &[u8; ALIGN] = self
                .lines
                .get(n * ALIGN..(n + 1) * ALIGN)?
                .try_into()
                .ok()?;
            let [t0, t1, t2, t3] = *line.last_chunk::<4>()?;
            if line[12] & served != served || u32::from_le_bytes([t0, t1, t2, t3]) != tag {
                return None;
            }
            let rec = Record::at(line, 0)?;
            (rec.prefix().len() == len && rec.pattern().match_into(prepared.subject, caps))
                .then_some((n, rec))
        })
    }

    /// The first rule that matches a prepared lookup, by the index's general walk (captures in
    /// `caps`).
    fn walk(&self, prepared: &Prepared<'_>, caps: &mut CaptureBuf) -> Option<(u32, Record<'_>)> {
        let Prepared { subject, prefixes } = prepared;
        let subject = *subject;
        // Captures of the current attempt; those of the best match so far unless a later
        // attempt failed after writing some (`clobbered`: the best one is matched again).
        let mut clobbered = false;
        // The record of the last rule that matched: the one `first_match` returns.
        let mut best = None;
        // The record the key check read last: usually the one tried first next.
        let verified = Cell::new(None);
        let prefix_of = |slot, id| {
            let rec = self.record(id, Some(slot));
            verified.set(rec.map(|rec| (slot, rec)));
            rec.map_or(&[][..], |r| r.prefix())
        };
        let id = self
            .index
            .first_match(subject, prefixes, prefix_of, |id, slot| {
                let rec = match (slot, verified.get()) {
                    (Some(s), Some((verified_slot, rec))) if s == verified_slot => rec,
                    _ => match self.record(id, slot) {
                        Some(rec) => rec,
                        None => return false,
                    },
                };
                let hit = rec.pattern().match_after_head(subject, caps);
                if hit {
                    best = Some(rec);
                }
                clobbered = !hit && best.is_some();
                hit
            })?;
        let rec = best?;
        if clobbered && !rec.pattern().match_after_head(subject, caps) {
            return None;
        }
        Some((id, rec))
    }
}
