//! The first-match index: which rule of an ordered list is the first to match a URI.
//!
//! Rules are known by ids that ascend in rule order (the routing table uses the offsets of
//! their records).
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
//!
//! A probe for a prefix length at which the URI has no key costs a cache miss in a large
//! table, so a small bit filter (eight bits per key, a few hundred KiB for 100 000 keys, which
//! stays in the core's cache) answers most of those probes without touching the slots.

use crate::pattern::Subject;

/// No key / no rule.
const NONE: u32 = u32::MAX;

/// One distinct key, stored in its hash slot so that a probe reads one cache line. The key's
/// text is not stored: it is the prefix of its first rule's pattern, which a lookup reads
/// anyway to try that rule.
#[derive(Clone, Copy, Debug)]
struct Key {
    /// FNV-1a of the key's bytes.
    hash: u32,
    /// Length of the key in bytes.
    len: u32,
    /// Its lowest rule id (kept here so a lookup that stops at it reads no rule list).
    first_rule: u32,
    /// All its rules: `rules[rules.0..rules.1]`, ascending; the first is `first_rule`.
    rules: (u32, u32),
    /// Slot of the longest other key that is a proper prefix of this one, or [`NONE`].
    parent: u32,
    /// Lowest rule id of the keys on the parent chain (excluding this one), or [`NONE`].
    ancestors_min: u32,
}

/// A prefix index over an ordered list of patterns.
#[derive(Clone, Debug)]
pub(crate) struct PrefixIndex {
    /// Open addressing, linear probing; `None` is an empty slot. The length is a power of two
    /// at least twice the number of keys.
    slots: Vec<Option<Key>>,
    /// Rule ids, grouped per key.
    rules: Vec<u32>,
    /// Distinct key lengths, longest first.
    lengths: Vec<u32>,
    /// One bit per [`filter_bit`] of each key's hash; a clear bit means "no such key".
    filter: Box<[u64]>,
}

/// The filter bit of a key hash in a filter of `words` 64-bit words (a power of two). It uses
/// the hash's high bits; slots use its low bits.
fn filter_bit(hash: u32, words: usize) -> (usize, u64) {
    let bits = words * 64;
    let b = (hash.wrapping_mul(0x9e37_79b9) >> 8) as usize & (bits - 1);
    (b / 64, 1 << (b % 64))
}

/// FNV-1a offset basis.
const FNV_BASIS: u32 = 0x811c_9dc5;

/// One FNV-1a step.
fn fnv(h: u32, b: u8) -> u32 {
    (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
}

/// Prefix lengths whose hashes a lookup computes in one pass (longer ones are hashed per probe).
const PREFIX_HASHES: usize = 64;

/// FNV-1a of the first `len` bytes of `subject` as TEL templates read them (the wait mark as
/// `;`, see [`Subject::tel_byte`]): from `prefix_hashes` (where `prefix_hashes[l]` is the hash
/// of the first `l` bytes) when it reaches that far.
fn hash_subject(subject: &Subject<'_>, prefix_hashes: &[u32], len: usize) -> u32 {
    match prefix_hashes.get(len) {
        Some(&h) => h,
        None => (0..len).fold(FNV_BASIS, |h, i| fnv(h, subject.tel_byte(i).unwrap_or(0))),
    }
}

/// [`hash_subject`] of a key's own bytes.
fn hash_bytes(bytes: &[u8]) -> u32 {
    bytes.iter().fold(FNV_BASIS, |h, &b| fnv(h, b))
}

impl PrefixIndex {
    /// Indexes rules given as `(id, key)` with ids ascending in rule order.
    pub(crate) fn new<'p>(rules: impl IntoIterator<Item = (u32, &'p [u8])>) -> PrefixIndex {
        // Rules grouped by key, keys in lexicographic order (a key's prefixes come before it).
        let mut by_key: Vec<(&[u8], u32)> = rules.into_iter().map(|(id, k)| (k, id)).collect();
        by_key.sort_unstable();
        let mut keys: Vec<(Key, &[u8])> = vec![];
        let mut rules = vec![];
        // Keys on the path from the root to the current key, for parent links.
        let mut stack: Vec<u32> = vec![];
        let mut i = 0;
        while let Some(&(key, first_rule)) = by_key.get(i) {
            let rules_start = rules.len() as u32;
            while let Some(&(_, rule)) = by_key.get(i).filter(|(k, _)| *k == key) {
                rules.push(rule);
                i += 1;
            }
            while let Some(&top) = stack.last() {
                if key.starts_with(keys[top as usize].1) {
                    break;
                }
                stack.pop();
            }
            let parent = stack.last().copied().unwrap_or(NONE);
            let ancestors_min = keys
                .get(parent as usize)
                .map_or(NONE, |(p, _)| p.first_rule.min(p.ancestors_min));
            stack.push(keys.len() as u32);
            keys.push((
                Key {
                    hash: hash_bytes(key),
                    len: key.len() as u32,
                    first_rule,
                    rules: (rules_start, rules.len() as u32),
                    parent,
                    ancestors_min,
                },
                key,
            ));
        }
        let mut lengths: Vec<u32> = keys.iter().map(|(k, _)| k.len).collect();
        lengths.sort_unstable_by(|a, b| b.cmp(a));
        lengths.dedup();
        // Place the keys, then turn parent key numbers into parent slots.
        let mut slots = vec![None; (keys.len() * 2).next_power_of_two().max(2)];
        let mask = slots.len() - 1;
        let mut slot_of = vec![0u32; keys.len()];
        for (id, (key, _)) in keys.iter().enumerate() {
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
        let mut filter = vec![0u64; (keys.len() * 8).div_ceil(64).next_power_of_two()];
        for (key, _) in &keys {
            let (word, bit) = filter_bit(key.hash, filter.len());
            filter[word] |= bit;
        }
        PrefixIndex {
            slots,
            rules,
            lengths,
            filter: filter.into(),
        }
    }

    /// The key equal to the first `len` bytes of `subject`, if any; `prefix_of(id)` is the
    /// key of a rule.
    fn probe<'a>(
        &self,
        subject: &Subject<'_>,
        prefix_hashes: &[u32],
        len: usize,
        prefix_of: impl Fn(u32) -> &'a [u8],
    ) -> Option<&Key> {
        let h = hash_subject(subject, prefix_hashes, len);
        let (word, bit) = filter_bit(h, self.filter.len());
        if self.filter.get(word).is_none_or(|w| w & bit == 0) {
            return None;
        }
        let mask = self.slots.len().checked_sub(1)?;
        let mut s = h as usize & mask;
        loop {
            let key = self.slots.get(s)?.as_ref()?;
            if key.hash == h
                && key.len as usize == len
                && prefix_of(key.first_rule)
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| subject.tel_byte(i) == Some(b))
            {
                return Some(key);
            }
            s = (s + 1) & mask;
        }
    }

    /// Hashes the prefixes of `subject` that the key lengths ask for (one pass).
    pub(crate) fn prefixes(&self, subject: &Subject<'_>) -> Prefixes {
        let longest = self
            .lengths
            .first()
            .map_or(0, |&l| l as usize)
            .min(subject.uri.len());
        let mut hashes = [0u32; PREFIX_HASHES];
        let mut h = FNV_BASIS;
        let mut filled = 0;
        for (i, slot) in hashes.iter_mut().enumerate().take(longest + 1) {
            *slot = h;
            h = fnv(h, subject.tel_byte(i).unwrap_or(0));
            filled = i + 1;
        }
        Prefixes { hashes, filled }
    }

    /// The first rule id of the slot a lookup will most likely stop at: the longest key length
    /// whose hash passes the filter and whose home slot holds that hash (not verified). A
    /// caller reads it ahead to start the cache misses of two lookups at once.
    pub(crate) fn likely_rule(&self, subject: &Subject<'_>, prefixes: &Prefixes) -> Option<u32> {
        let mask = self.slots.len().checked_sub(1)?;
        self.lengths
            .iter()
            .map(|&len| len as usize)
            .filter(|&len| len <= subject.uri.len())
            .find_map(|len| {
                let h = hash_subject(subject, prefixes.get(), len);
                let (word, bit) = filter_bit(h, self.filter.len());
                if self.filter.get(word).is_none_or(|w| w & bit == 0) {
                    return None;
                }
                let key = self.slots.get(h as usize & mask)?.as_ref()?;
                (key.hash == h).then_some(key.first_rule)
            })
    }

    /// The lowest rule id `i` for which `is_match(i)` holds among the rules whose key
    /// `subject` starts with. `prefixes` are [`Self::prefixes`] of `subject`; `prefix_of(i)` is
    /// rule `i`'s key (its pattern's prefix).
    pub(crate) fn first_match<'a>(
        &self,
        subject: Subject<'_>,
        prefixes: &Prefixes,
        prefix_of: impl Fn(u32) -> &'a [u8],
        mut is_match: impl FnMut(u32) -> bool,
    ) -> Option<u32> {
        let uri_len = subject.uri.len();
        let mut key = self
            .lengths
            .iter()
            .map(|&len| len as usize)
            .filter(|&len| len <= uri_len)
            .find_map(|len| self.probe(&subject, prefixes.get(), len, &prefix_of));
        let mut best = NONE;
        while let Some(k) = key {
            // The first rule from the slot; the rest of the list only if that one fails.
            let rest = (k.rules.0 + 1..k.rules.1)
                .map(|i| self.rules.get(i as usize).copied().unwrap_or(NONE));
            for rule in std::iter::once(k.first_rule).chain(rest) {
                if rule >= best {
                    break;
                }
                if is_match(rule) {
                    best = rule;
                    break;
                }
            }
            if k.ancestors_min >= best {
                break;
            }
            key = self.slots.get(k.parent as usize).and_then(Option::as_ref);
        }
        (best != NONE).then_some(best)
    }
}

/// Hashes of a subject's prefixes: `hashes[l]` is the hash of its first `l` bytes.
#[derive(Clone, Debug)]
pub(crate) struct Prefixes {
    hashes: [u32; PREFIX_HASHES],
    filled: usize,
}

impl Prefixes {
    fn get(&self) -> &[u32] {
        self.hashes.get(..self.filled).unwrap_or_default()
    }
}
