//! Routing tables: an ordered list of rules packed into one byte arena, with the prefix index
//! over it.
//!
//! A lookup touches a hash slot and then one rule record, so each rule's record holds
//! everything the lookup reads after the slot, contiguously: the literal bounds, the output
//! pieces, the literal bytes (match side, then output side) and, for map entries, where its
//! map and entry names sit in the table's names string and which `auth` it carries. Records
//! are laid out in rule order, so a record's offset orders rules like their numbers do and
//! serves as the rule's id in the index.

use std::sync::Arc;

use crate::index::{PrefixIndex, Prefixes};
use crate::pattern::{self, CaptureBuf, MAX_PARAMS, OutPiece, PatternView, Rule, Subject};
use crate::{EntryRef, RouteError};

/// Record header bytes: names start (u32), map name length (u16), entry name length (u16),
/// auth index + 1 (u16, 0 = none), literal bytes (u16), parameter count (u8), TEL flag (u8),
/// piece count (u8), padding (u8). Then the `k + 2` literal bounds (u16 each), the output
/// pieces (two u16 each) and the literal bytes: 64 bytes for a typical dial-plan entry.
const HEADER: usize = 16;
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

/// A packed rule record, read from the arena.
#[derive(Clone, Copy)]
struct Record<'a> {
    bytes: &'a [u8],
}

impl<'a> Record<'a> {
    fn u16_at(&self, at: usize) -> u16 {
        self.bytes
            .get(at..at + 2)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32_at(&self, at: usize) -> u32 {
        self.bytes
            .get(at..at + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn byte(&self, at: usize) -> u8 {
        self.bytes.get(at).copied().unwrap_or(0)
    }

    fn k(&self) -> usize {
        usize::from(self.byte(12)).min(MAX_PARAMS)
    }

    fn piece_count(&self) -> usize {
        usize::from(self.byte(14))
    }

    fn bounds_at(&self) -> usize {
        HEADER
    }

    fn pieces_at(&self) -> usize {
        self.bounds_at() + 2 * (self.k() + 2)
    }

    fn lits_at(&self) -> usize {
        self.pieces_at() + 4 * self.piece_count()
    }

    fn lits(&self) -> &'a [u8] {
        let at = self.lits_at();
        let len = usize::from(self.u16_at(10));
        self.bytes.get(at..at + len).unwrap_or_default()
    }

    /// The bounds as stored: `k + 2` little-endian u16s, decoded into `buf`.
    fn pattern<'b>(&self, buf: &'b mut [u16; MAX_PARAMS + 2]) -> PatternView<'b>
    where
        'a: 'b,
    {
        let n = self.k() + 2;
        for (i, b) in buf.iter_mut().enumerate().take(n) {
            *b = self.u16_at(self.bounds_at() + 2 * i);
        }
        PatternView {
            lits: self.lits(),
            bounds: &buf[..n],
            tel: self.byte(13) != 0,
        }
    }

    /// The leading literal `L0`.
    fn prefix(&self) -> &'a [u8] {
        let end = usize::from(self.u16_at(self.bounds_at() + 2));
        self.lits().get(..end).unwrap_or_default()
    }

    fn pieces(&self) -> impl Iterator<Item = OutPiece> + Clone + '_ {
        let at = self.pieces_at();
        (0..self.piece_count()).map(move |i| {
            let (a, b) = (self.u16_at(at + 4 * i), self.u16_at(at + 4 * i + 2));
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
                    (view.bounds.len() - 2) as u8,
                    u8::from(view.tel),
                    spec.rule.pieces().len() as u8,
                    0,
                ],
            ];
            for part in header {
                arena.extend_from_slice(part);
            }
            for b in view.bounds {
                arena.extend_from_slice(&b.to_le_bytes());
            }
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
                .map(|&id| (id, record(&arena, id as usize).prefix())),
        );
        Ok(Table {
            arena,
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
        let prefixes = self.index.prefixes(&subject);
        Prepared { subject, prefixes }
    }

    /// Reads the rule record that a prepared lookup will most likely try first (a load whose
    /// value nothing waits for, so that the record is in cache when needed).
    pub(crate) fn touch(&self, prepared: &Prepared<'_>) {
        if let Some(id) = self.index.likely_rule(&prepared.prefixes) {
            std::hint::black_box(self.arena.get(id as usize).copied());
        }
    }

    /// The first rule that matches `uri`, with its expanded output.
    pub(crate) fn apply(&self, uri: &str) -> Option<Hit<'_>> {
        let prepared = self.prepare(uri);
        self.touch(&prepared);
        self.apply_prepared(prepared)
    }

    /// [`Self::apply`] of a prepared lookup.
    pub(crate) fn apply_prepared(&self, prepared: Prepared<'_>) -> Option<Hit<'_>> {
        let Prepared { subject, prefixes } = prepared;
        let uri = subject.uri;
        // Captures of the best match so far and of the current attempt.
        let mut caps: [CaptureBuf; 2] = [pattern::capture_buf(); 2];
        let mut best_slot = 0;
        let mut bounds = [0u16; MAX_PARAMS + 2];
        let prefix_of = |id: u32| record(&self.arena, id as usize).prefix();
        let id = self
            .index
            .first_match(subject, &prefixes, prefix_of, |id| {
                let attempt = 1 - best_slot;
                let rec = record(&self.arena, id as usize);
                let hit = rec
                    .pattern(&mut bounds)
                    .match_into(subject, &mut caps[attempt]);
                if hit {
                    best_slot = attempt;
                }
                hit
            })?;
        let rec = record(&self.arena, id as usize);
        let uri = pattern::expand(rec.pieces(), rec.lits(), uri, &caps[best_slot])?;
        let start = rec.u32_at(0) as usize;
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

/// The record at `offset` (to the end of the arena; a record knows its own length).
fn record(arena: &[u8], offset: usize) -> Record<'_> {
    Record {
        bytes: arena.get(offset..).unwrap_or_default(),
    }
}
