//! Routing tables: an ordered list of rules packed into one byte arena, with the prefix index
//! over it.
//!
//! A lookup touches a hash slot and then one rule record, so each rule's record holds
//! everything the lookup reads after the slot, contiguously: the literal bounds, the output
//! pieces, the literal bytes (match side, then output side) and, for map entries, where its
//! map and entry names sit in the table's names string and which `auth` it carries. Records
//! are laid out in rule order, so a record's offset orders rules like their numbers do and
//! serves as the rule's id in the index.
//!
//! In a large table the slot and the record are two cache misses, the second waiting for the
//! first. So each key's first rule is also copied into a 64-byte line of its own, numbered
//! like the key's hash slot (when the record fits): a lookup reads the home slot and the line
//! of the same number together, and a key that sits in its home slot (most do: the index is at
//! most half full) costs one round of misses.

use std::sync::Arc;

use crate::index::{PrefixIndex, Prefixes};
use crate::pages::Pages;
use crate::pattern::{self, MAX_PARAMS, OutPiece, PatternView, Rule, Subject};
use crate::{EntryRef, RouteError};

/// Record header bytes: names start (u32), map name length (u16), entry name length (u16),
/// auth index + 1 (u16, 0 = none), literal bytes (u16), flags (u8: parameter count in bits
/// 0–4, [`TEL`], [`IN_LINE`]), piece count (u8). Then the `k + 2` literal bounds (u16 each),
/// the output pieces (two u16 each) and the literal bytes: under 64 bytes for a typical
/// dial-plan entry.
const HEADER: usize = 14;
/// Flags bit: a TEL template.
const TEL: u8 = 0x20;
/// Flags bit of a record copied into its key's line (clear in the arena); a line without it
/// holds none.
const IN_LINE: u8 = 0x40;
/// Flags bits of the parameter count.
const K_MASK: u8 = 0x1f;
/// Records start at multiples of this, so a short record sits in one cache line.
const ALIGN: usize = 64;
/// A piece whose first half is this is a capture; the second half is its index.
const CAPTURE: u16 = u16::MAX;

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

/// A matched rule.
#[derive(Debug)]
pub(crate) struct Hit<'t> {
    /// The rule's id (its record offset).
    id: u32,
    /// The expanded output template.
    pub(crate) uri: String,
    table: &'t Table,
    names: (usize, usize, usize),
    auth: u16,
}

impl Hit<'_> {
    /// The rule's number in the table (a binary search: translate results only).
    pub(crate) fn rule(&self) -> usize {
        // Records are in rule order.
        self.table.ids.partition_point(|&other| other < self.id)
    }

    /// The map entry the rule came from.
    pub(crate) fn entry(&self) -> EntryRef {
        let (start, split, end) = self.names;
        EntryRef::in_table(Arc::clone(&self.table.names), start, split, end)
    }

    /// The entry's `auth`.
    pub(crate) fn auth(&self) -> Option<Arc<str>> {
        let i = usize::from(self.auth).checked_sub(1)?;
        self.table.auths.get(i).cloned()
    }
}

/// A packed rule record, its parts located once (one bounds check per part).
#[derive(Clone, Copy)]
struct Record<'a> {
    header: &'a [u8; HEADER],
    /// `k + 2` little-endian u16 literal bounds.
    bounds: &'a [u8],
    /// Output pieces, two little-endian u16s each.
    pieces: &'a [u8],
    /// Literal bytes: match side, then output side.
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
        let (pieces, rest) = rest.split_at_checked(4 * usize::from(header[13]))?;
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

    fn pieces(&self) -> impl Iterator<Item = OutPiece> + Clone + 'a {
        self.pieces.chunks_exact(4).map(|p| {
            let (a, b) = (
                u16::from_le_bytes([p[0], p[1]]),
                u16::from_le_bytes([p[2], p[3]]),
            );
            if a == CAPTURE {
                OutPiece::Capture(b as u8)
            } else {
                OutPiece::Literal(a, b)
            }
        })
    }
}

/// An ordered list of rules with its first-match index.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    /// The records, each at a multiple of [`ALIGN`].
    arena: Box<[u8]>,
    /// [`ALIGN`] bytes per index slot: the record of the slot's key's first rule (when it fits;
    /// its flags then have [`IN_LINE`]), else zeros.
    lines: Pages,
    /// Record offset of each rule, in rule order.
    ids: Box<[u32]>,
    index: PrefixIndex,
    /// Map and entry names of all rules, concatenated.
    names: Arc<str>,
    /// The distinct `auth` names.
    auths: Vec<Arc<str>>,
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
            let lits = view.lits;
            let header = [
                &names_start.to_le_bytes()[..],
                &u16::try_from(map.len())
                    .map_err(|_| too_many())?
                    .to_le_bytes(),
                &u16::try_from(entry.len())
                    .map_err(|_| too_many())?
                    .to_le_bytes(),
                &auth.to_le_bytes(),
                &(lits.len() as u16).to_le_bytes(),
                &[
                    view.k() as u8 | if view.tel { TEL } else { 0 },
                    // At most MAX_PIECES.
                    spec.rule.pieces().len() as u8,
                ],
            ];
            for part in header {
                arena.extend_from_slice(part);
            }
            arena.extend_from_slice(view.bounds);
            for piece in spec.rule.pieces() {
                let (a, b) = match *piece {
                    OutPiece::Literal(a, b) => (a, b),
                    OutPiece::Capture(i) => (CAPTURE, u16::from(i)),
                };
                arena.extend_from_slice(&a.to_le_bytes());
                arena.extend_from_slice(&b.to_le_bytes());
            }
            arena.extend_from_slice(lits);
        }
        let arena: Box<[u8]> = arena.into();
        let index = PrefixIndex::new(
            ids.iter()
                .map(|&id| (id, Record::at(&arena, id).map_or(&[][..], |r| r.prefix()))),
        );
        let mut lines = Pages::zeroed(index.slot_count() * ALIGN);
        for (slot, id) in index.first_rules() {
            let len = Record::at(&arena, id).map_or(usize::MAX, |r| r.len());
            let (Some(record), Some(line)) = (
                arena.get(id as usize..).and_then(|a| a.get(..len)),
                lines.get_mut(slot * ALIGN..(slot + 1) * ALIGN),
            ) else {
                continue;
            };
            if let Some(copy) = line.get_mut(..len) {
                copy.copy_from_slice(record);
                copy[12] |= IN_LINE;
            }
        }
        Ok(Table {
            arena,
            lines,
            ids: ids.into(),
            index,
            names: names.into(),
            auths,
        })
    }

    /// Starts a lookup of `uri`: hashes its candidate prefixes and reads their filter bits and
    /// home slots. Starting both lookups of a call before [`Self::touch`] and finishing either
    /// lets their cache misses overlap.
    pub(crate) fn prepare<'u>(&self, uri: &'u str) -> Prepared<'u> {
        let subject = Subject::new(uri);
        let mut touched = 0;
        let prefixes = self.index.prefixes(&subject, |slot| {
            // The slot's line, read together with the slot.
            touched ^= self.line_flag(slot);
        });
        std::hint::black_box(touched);
        Prepared { subject, prefixes }
    }

    /// [`IN_LINE`] when line `slot` holds a record, else 0.
    fn line_flag(&self, slot: usize) -> u8 {
        self.lines
            .get(slot * ALIGN + 12)
            .map_or(0, |flags| flags & IN_LINE)
    }

    /// Reads the rule record that a prepared lookup will most likely try first, if it is not in
    /// a line read already (a load whose value nothing waits for, so that the record is in
    /// cache when needed).
    pub(crate) fn touch(&self, prepared: &Prepared<'_>) {
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

    /// The first rule that matches `uri`, with its expanded output.
    pub(crate) fn apply(&self, uri: &str) -> Option<Hit<'_>> {
        let prepared = self.prepare(uri);
        self.touch(&prepared);
        self.apply_prepared(&prepared)
    }

    /// [`Self::apply`] of a prepared lookup.
    pub(crate) fn apply_prepared(&self, prepared: &Prepared<'_>) -> Option<Hit<'_>> {
        let Prepared { subject, prefixes } = prepared;
        let subject = *subject;
        let uri = subject.uri;
        // Captures of the current attempt; those of the best match so far unless a later
        // attempt failed after writing some (`clobbered`: the best one is matched again).
        let mut caps = pattern::capture_buf();
        let mut clobbered = false;
        // The record of the last rule that matched: the one `first_match` returns.
        let mut best = None;
        let prefix_of = |slot, id| self.record(id, Some(slot)).map_or(&[][..], |r| r.prefix());
        let id = self
            .index
            .first_match(subject, prefixes, prefix_of, |id, slot| {
                let Some(rec) = self.record(id, slot) else {
                    return false;
                };
                let hit = rec.pattern().match_after_head(subject, &mut caps);
                if hit {
                    best = Some(rec);
                }
                clobbered = !hit && best.is_some();
                hit
            })?;
        let rec = best?;
        if clobbered && !rec.pattern().match_after_head(subject, &mut caps) {
            return None;
        }
        let uri = pattern::expand(rec.pieces(), rec.lits, uri, &caps)?;
        let start = u32::from_le_bytes([rec.header[0], rec.header[1], rec.header[2], rec.header[3]])
            as usize;
        let split = start + usize::from(rec.u16_at(4));
        Some(Hit {
            id,
            uri,
            table: self,
            names: (start, split, split + usize::from(rec.u16_at(6))),
            auth: rec.u16_at(8),
        })
    }
}
