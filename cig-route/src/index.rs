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

/// One distinct key.
#[derive(Clone, Copy, Debug)]
struct Key {
    /// `bytes[start..start + len]`.
    start: u32,
    len: u32,
    /// Its rules: `rules[rules.0..rules.1]`, ascending.
    rules: (u32, u32),
    /// The longest other key that is a proper prefix of this one, or [`NONE`].
    parent: u32,
    /// Lowest rule number of the keys on the parent chain (excluding this one), or [`NONE`].
    ancestors_min: u32,
}

/// A prefix index over an ordered list of patterns.
#[derive(Clone, Debug)]
pub(crate) struct PrefixIndex {
    keys: Vec<Key>,
    /// Key text, concatenated.
    bytes: Vec<u8>,
    /// Rule numbers, grouped per key.
    rules: Vec<u32>,
    /// Distinct key lengths, longest first.
    lengths: Vec<u32>,
    /// Open addressing, linear probing: `(hash, key number)`, key [`NONE`] when empty. The
    /// length is a power of two at least twice the number of keys.
    slots: Vec<(u32, u32)>,
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
        let mut index = PrefixIndex {
            keys: vec![],
            bytes: vec![],
            rules: vec![],
            lengths: vec![],
            slots: vec![],
        };
        // Keys on the path from the root to the current key, for parent links.
        let mut stack: Vec<u32> = vec![];
        let mut i = 0;
        while let Some(&(key, _)) = by_key.get(i) {
            let rules_start = index.rules.len() as u32;
            while let Some(&(k, rule)) = by_key.get(i).filter(|(k, _)| *k == key) {
                debug_assert_eq!(k, key);
                index.rules.push(rule);
                i += 1;
            }
            while let Some(&top) = stack.last() {
                if key.starts_with(index.key_bytes(top)) {
                    break;
                }
                stack.pop();
            }
            let parent = stack.last().copied().unwrap_or(NONE);
            let ancestors_min = index.keys.get(parent as usize).map_or(NONE, |p| {
                let own = index.rules[p.rules.0 as usize];
                own.min(p.ancestors_min)
            });
            let id = index.keys.len() as u32;
            index.keys.push(Key {
                start: index.bytes.len() as u32,
                len: key.len() as u32,
                rules: (rules_start, index.rules.len() as u32),
                parent,
                ancestors_min,
            });
            index.bytes.extend_from_slice(key);
            stack.push(id);
        }
        index.lengths = index.keys.iter().map(|k| k.len).collect();
        index.lengths.sort_unstable_by(|a, b| b.cmp(a));
        index.lengths.dedup();
        index.slots = vec![(0, NONE); (index.keys.len() * 2).next_power_of_two().max(2)];
        let mask = index.slots.len() - 1;
        for (id, key) in index.keys.iter().enumerate() {
            let h = hash_bytes(index.key_bytes_of(key));
            let mut s = h as usize & mask;
            while index.slots[s].1 != NONE {
                s = (s + 1) & mask;
            }
            index.slots[s] = (h, id as u32);
        }
        index
    }

    fn key_bytes_of(&self, key: &Key) -> &[u8] {
        self.bytes
            .get(key.start as usize..(key.start + key.len) as usize)
            .unwrap_or_default()
    }

    fn key_bytes(&self, id: u32) -> &[u8] {
        self.keys
            .get(id as usize)
            .map_or(&[], |k| self.key_bytes_of(k))
    }

    /// The key equal to the first `len` bytes of `subject`, if any.
    fn probe(&self, subject: &Subject<'_>, len: usize) -> Option<&Key> {
        let h = hash_subject(subject, len);
        let mask = self.slots.len().checked_sub(1)?;
        let mut s = h as usize & mask;
        loop {
            let &(slot_hash, id) = self.slots.get(s)?;
            let key = self.keys.get(id as usize)?;
            if slot_hash == h
                && key.len as usize == len
                && self
                    .key_bytes_of(key)
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
            key = self.keys.get(k.parent as usize);
        }
        (best != NONE).then_some(best as usize)
    }
}
