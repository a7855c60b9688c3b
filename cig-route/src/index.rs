//! The first-match index: which rule of an ordered list is the first to match a URI.
//!
//! Every rule's pattern starts with a literal `L0` (possibly empty), its *key*; a URI can only
//! match rules whose key is a prefix of it. The index keeps the distinct keys in a hash table,
//! each with its rules in ascending order and a link to its *parent*: the longest other key
//! that is a proper prefix of it. A lookup hashes the URI's prefixes of the key lengths that
//! occur, longest first, until one is a key: that is the longest key the URI starts with, and
//! its parent chain holds exactly the other keys the URI starts with. Scanning those rule lists
//! for the lowest-numbered rule that matches gives the same answer as walking all rules in
//! order. Each key also records the lowest rule number along its parent chain, so the walk
//! stops as soon as nothing shorter can win: in a dial plan whose specific entries precede
//! its catch-alls, a lookup is one or two hash probes and one match attempt, whatever the
//! plan's size. Cost grows with the number of distinct key lengths (a handful in real plans),
//! not with the number of rules. Lookup allocates nothing.

use crate::pattern::{Pattern, Subject};

/// No key / no rule.
const NONE: u32 = u32::MAX;

/// One distinct key, stored in its hash slot so that a probe reads one cache line.
#[derive(Clone, Copy, Debug)]
struct Key {
    /// FNV-1a of the key's bytes.
    hash: u32,
    /// `bytes[start..start + len]`.
    start: u32,
    len: u32,
    /// Its rules: `rules[rules.0..rules.1]`, ascending.
    rules: (u32, u32),
    /// Slot of the longest other key that is a proper prefix of this one, or [`NONE`].
    parent: u32,
    /// Lowest rule number of the keys on the parent chain (excluding this one), or [`NONE`].
    ancestors_min: u32,
}

/// A prefix index over an ordered list of patterns.
#[derive(Clone, Debug)]
pub(crate) struct PrefixIndex {
    /// Open addressing, linear probing; `None` is an empty slot. The length is a power of two
    /// at least twice the number of keys.
    slots: Vec<Option<Key>>,
    /// Key text, concatenated.
    bytes: Vec<u8>,
    /// Rule numbers, grouped per key.
    rules: Vec<u32>,
    /// Distinct key lengths, longest first.
    lengths: Vec<u32>,
}

/// FNV-1a over the first `len` bytes of `subject` as TEL templates read them (the wait mark
/// as `;`, see [`Subject::tel_byte`]).
fn hash_subject(subject: &Subject<'_>, len: usize) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for i in 0..len {
        h ^= u32::from(subject.tel_byte(i).unwrap_or(0));
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// [`hash_subject`] of a key's own bytes.
fn hash_bytes(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

impl PrefixIndex {
    /// Indexes `patterns` (rule `i` is the `i`-th pattern). The caller keeps the count within
    /// `u32`.
    pub(crate) fn new<'p>(patterns: impl IntoIterator<Item = &'p Pattern>) -> PrefixIndex {
        // Rules grouped by key, keys in lexicographic order (a key's prefixes come before it).
        let mut by_key: Vec<(&[u8], u32)> = patterns
            .into_iter()
            .enumerate()
            .map(|(i, p)| (p.prefix(), i as u32))
            .collect();
        by_key.sort_unstable();
        let mut keys: Vec<Key> = vec![];
        let mut bytes = vec![];
        let mut rules = vec![];
        // Keys on the path from the root to the current key, for parent links.
        let mut stack: Vec<u32> = vec![];
        let mut i = 0;
        while let Some(&(key, _)) = by_key.get(i) {
            let rules_start = rules.len() as u32;
            while let Some(&(_, rule)) = by_key.get(i).filter(|(k, _)| *k == key) {
                rules.push(rule);
                i += 1;
            }
            while let Some(&top) = stack.last() {
                let k = keys[top as usize];
                if key.starts_with(&bytes[k.start as usize..(k.start + k.len) as usize]) {
                    break;
                }
                stack.pop();
            }
            let parent = stack.last().copied().unwrap_or(NONE);
            let ancestors_min = keys.get(parent as usize).map_or(NONE, |p: &Key| {
                let own: u32 = rules[p.rules.0 as usize];
                own.min(p.ancestors_min)
            });
            stack.push(keys.len() as u32);
            keys.push(Key {
                hash: hash_bytes(key),
                start: bytes.len() as u32,
                len: key.len() as u32,
                rules: (rules_start, rules.len() as u32),
                parent,
                ancestors_min,
            });
            bytes.extend_from_slice(key);
        }
        let mut lengths: Vec<u32> = keys.iter().map(|k| k.len).collect();
        lengths.sort_unstable_by(|a, b| b.cmp(a));
        lengths.dedup();
        // Place the keys, then turn parent key numbers into parent slots.
        let mut slots = vec![None; (keys.len() * 2).next_power_of_two().max(2)];
        let mask = slots.len() - 1;
        let mut slot_of = vec![0u32; keys.len()];
        for (id, key) in keys.iter().enumerate() {
            let mut s = key.hash as usize & mask;
            while slots[s].is_some() {
                s = (s + 1) & mask;
            }
            slots[s] = Some(*key);
            slot_of[id] = s as u32;
        }
        for key in slots.iter_mut().flatten() {
            key.parent = slot_of.get(key.parent as usize).copied().unwrap_or(NONE);
        }
        PrefixIndex {
            slots,
            bytes,
            rules,
            lengths,
        }
    }

    /// The key equal to the first `len` bytes of `subject`, if any.
    fn probe(&self, subject: &Subject<'_>, len: usize) -> Option<&Key> {
        let h = hash_subject(subject, len);
        let mask = self.slots.len().checked_sub(1)?;
        let mut s = h as usize & mask;
        loop {
            let key = self.slots.get(s)?.as_ref()?;
            if key.hash == h
                && key.len as usize == len
                && self
                    .bytes
                    .get(key.start as usize..key.start as usize + len)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| subject.tel_byte(i) == Some(b))
            {
                return Some(key);
            }
            s = (s + 1) & mask;
        }
    }

    /// The lowest rule number `i` for which `is_match(i)` holds among the rules whose key
    /// `subject` starts with.
    pub(crate) fn first_match(
        &self,
        subject: Subject<'_>,
        mut is_match: impl FnMut(usize) -> bool,
    ) -> Option<usize> {
        let uri_len = subject.uri.len();
        let mut key = self
            .lengths
            .iter()
            .map(|&len| len as usize)
            .filter(|&len| len <= uri_len)
            .find_map(|len| self.probe(&subject, len));
        let mut best = NONE;
        while let Some(k) = key {
            let rules = self
                .rules
                .get(k.rules.0 as usize..k.rules.1 as usize)
                .unwrap_or_default();
            for &rule in rules.iter().take_while(|&&r| r < best) {
                if is_match(rule as usize) {
                    best = rule;
                    break;
                }
            }
            if k.ancestors_min >= best {
                break;
            }
            key = self.slots.get(k.parent as usize).and_then(Option::as_ref);
        }
        (best != NONE).then_some(best as usize)
    }
}
