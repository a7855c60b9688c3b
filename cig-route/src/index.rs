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
//! In a large table every probe is a cache (and TLB) miss, so a lookup is split in steps whose
//! loads do not wait for each other ([`PrefixIndex::prefixes`] hashes candidate prefixes,
//! longest first, up to the first that passes the filter, whose home slot the routing table
//! uses to read its copy of the key's first rule — in the common case the answer, without
//! reading the slots at all —; [`PrefixIndex::likely_rule`] names the record to read ahead
//! when the table keeps no such copy), and a router starts both lookups of a call before it
//! finishes either. A slot is 16 bytes: a 32-bit tag of the key's hash (so a probe that
//! misses never reads a rule record), the key's first rule, its parent and the parent chain's
//! lowest rule; the rule lists of keys with several rules sit apart. A bit filter (eight bits
//! per key, two set per key in one 64-bit word: about 5 % false passes; 128 KiB for 100 000
//! keys) answers most probes for absent prefix lengths before they touch a slot.
//!
//! Hashing: a multiply–xorshift over 8-byte chunks, keyed with a per-table random seed.
//! The keys come from the configuration, but the URI comes from the wire; the seed keeps a
//! caller from computing ahead of time which URIs share a probe sequence. (It is not a
//! cryptographic PRF; what a caller can choose is only which of the table's own probe
//! sequences a lookup walks, and the number of probes is capped by the number of distinct key
//! lengths.)

use std::hash::{BuildHasher, Hasher};

use crate::pages::Pages;
use crate::pattern::Subject;

/// No key / no rule / no slot.
const NONE: u32 = u32::MAX;

/// One distinct key in its hash slot. The key's text is not stored: it is the prefix of its
/// first rule's pattern, which a lookup reads anyway to try that rule.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// High half of the key's hash, never 0; 0 marks an empty slot.
    tag: u32,
    /// Its lowest rule id (kept here so a lookup that stops at it reads no rule list).
    first_rule: u32,
    /// Slot of the longest other key that is a proper prefix of this one, or [`NONE`].
    parent: u32,
    /// Lowest rule id of the keys on the parent chain (excluding this one), or [`NONE`].
    ancestors_min: u32,
}

/// The slots, [`SLOT`] bytes each (tag, first rule, parent, ancestors' minimum; little-endian
/// u32s), in memory that may sit on huge pages.
#[derive(Clone, Debug)]
struct Slots(Pages);

/// Bytes per slot.
const SLOT: usize = 16;

impl Slots {
    fn new(slots: &[Slot]) -> Slots {
        let mut pages = Pages::zeroed(slots.len() * SLOT);
        for (bytes, slot) in pages.chunks_exact_mut(SLOT).zip(slots) {
            let fields = [slot.tag, slot.first_rule, slot.parent, slot.ancestors_min];
            for (field, value) in bytes.chunks_exact_mut(4).zip(fields) {
                field.copy_from_slice(&value.to_le_bytes());
            }
        }
        Slots(pages)
    }

    fn len(&self) -> usize {
        self.0.len() / SLOT
    }

    fn get(&self, s: usize) -> Option<Slot> {
        let at = s.checked_mul(SLOT)?;
        let b: &[u8; SLOT] = self.0.get(at..at + SLOT)?.try_into().ok()?;
        let field = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some(Slot {
            tag: field(0),
            first_rule: field(4),
            parent: field(8),
            ancestors_min: field(12),
        })
    }
}

/// A prefix index over an ordered list of patterns.
#[derive(Clone, Debug)]
pub(crate) struct PrefixIndex {
    /// Hash key (see the module docs).
    seed: u64,
    /// Open addressing, linear probing. The length is a power of two at least twice the
    /// number of keys, so a probe sequence ends at an empty slot.
    slots: Slots,
    /// Per slot: all the key's rules, `rules[start..end]`, ascending (read only when the
    /// first one fails).
    lists: Box<[(u32, u32)]>,
    /// Rule ids, grouped per key.
    rules: Box<[u32]>,
    /// Distinct key lengths, longest first.
    lengths: Box<[u32]>,
    /// Per subject length `n` up to the longest key's: how many key lengths exceed `n` (where
    /// a subject's candidates start in `lengths`; 0 for longer subjects).
    starts: Box<[u32]>,
    /// Two bits per key in one word (see [`PrefixIndex::filter_has`]); a clear one means "no
    /// such key".
    filter: Box<[u64]>,
    /// `64 - log2(filter words)`.
    filter_shift: u32,
}

/// Mixes one 8-byte chunk into a hash state.
fn mix(h: u64, word: u64) -> u64 {
    let h = (h ^ word).wrapping_mul(0xa076_1d64_78bd_642f);
    h ^ (h >> 32)
}

/// The hash of a `len`-byte text from its state after all its chunks.
fn finish(h: u64, len: usize) -> u64 {
    let h =
        (h ^ (len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 29)
}

/// `word` keeping only its first `n` bytes (`n < 8`).
fn low_bytes(word: u64, n: usize) -> u64 {
    word & ((1u64 << (8 * n)) - 1)
}

/// The hash of the first `len` bytes of `bytes`, with the byte at `wait` (if any) read as `;`:
/// a multiply–xorshift over little-endian 8-byte chunks (the last one zero-padded), seeded.
/// Keys are hashed so; [`Words::prefix_hash`] computes the same for prefixes of a subject.
fn hash(seed: u64, bytes: &[u8], wait: Option<usize>, len: usize) -> u64 {
    let mut h = seed;
    let mut at = 0;
    while at < len {
        let n = (len - at).min(8);
        let mut chunk = [0u8; 8];
        let part = bytes.get(at..at + n).unwrap_or_default();
        chunk[..part.len()].copy_from_slice(part);
        if let Some(i) = wait.and_then(|w| w.checked_sub(at)).filter(|&i| i < n) {
            chunk[i] = b';';
        }
        h = mix(h, u64::from_le_bytes(chunk));
        at += n;
    }
    finish(h, len)
}

/// The little-endian 8-byte word of `bytes` at `at`, zero-padded past the end.
#[inline(always)]
fn word_at(bytes: &[u8], at: usize) -> u64 {
    match bytes.get(at..at + 8) {
        Some(chunk) => <[u8; 8]>::try_from(chunk).map_or(0, u64::from_le_bytes),
        None => {
            let mut chunk = [0u8; 8];
            let rest = bytes.get(at..).unwrap_or_default();
            chunk[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(chunk)
        }
    }
}

/// A subject read as 8-byte words, the wait mark as `;`: the lookup side of [`hash`], loading
/// each word straight from the URI (no copy of the URI, no per-prefix state arrays; a lookup
/// hashes one to three prefixes). The first two words, which cover the keys of a typical dial
/// plan, are read once for all of them.
struct Words<'a> {
    bytes: &'a [u8],
    wait: Option<usize>,
    /// Words 0 and 1.
    first: [u64; 2],
}

impl<'a> Words<'a> {
    fn new(subject: &Subject<'a>) -> Words<'a> {
        let mut words = Words {
            bytes: subject.uri.as_bytes(),
            wait: subject.wait(),
            first: [0; 2],
        };
        words.first = [words.word(0), words.word(1)];
        words
    }

    /// Word `k` (bytes `8k..8k + 8`).
    #[inline(always)]
    fn word(&self, k: usize) -> u64 {
        let word = word_at(self.bytes, 8 * k);
        match self.wait {
            Some(w) if w / 8 == k => {
                let shift = 8 * (w % 8);
                (word & !(0xff << shift)) | (u64::from(b';') << shift)
            }
            _ => word,
        }
    }

    /// The hash of the first `len` bytes (at most the subject's length), as [`hash`] computes
    /// it.
    #[inline(always)]
    fn prefix_hash(&self, seed: u64, len: usize) -> u64 {
        let mut h = seed;
        if len <= 16 {
            // At most two chunks, from the words read once.
            let [w0, w1] = self.first;
            if len > 0 {
                let chunk = if len >= 8 { w0 } else { low_bytes(w0, len) };
                h = mix(h, chunk);
            }
            if len > 8 {
                let chunk = if len == 16 {
                    w1
                } else {
                    low_bytes(w1, len - 8)
                };
                h = mix(h, chunk);
            }
            return finish(h, len);
        }
        for k in 0..len / 8 {
            h = mix(h, self.word(k));
        }
        if len % 8 > 0 {
            h = mix(h, low_bytes(self.word(len / 8), len % 8));
        }
        finish(h, len)
    }
}

/// The slot tag of a hash (never 0).
fn tag(h: u64) -> u32 {
    (h >> 32) as u32 | 1
}

impl PrefixIndex {
    /// Indexes rules given as `(id, key)` with ids ascending in rule order.
    pub(crate) fn new<'p>(rules: impl IntoIterator<Item = (u32, &'p [u8])>) -> PrefixIndex {
        // A fresh random key per table (std's per-process random keys, advanced per call).
        let seed = {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u8(0);
            h.finish()
        };
        // Rules grouped by key, keys in lexicographic order (a key's prefixes come before it).
        let mut by_key: Vec<(&[u8], u32)> = rules.into_iter().map(|(id, k)| (k, id)).collect();
        by_key.sort_unstable();
        // Per key: its text, first rule, rule list, parent key number, ancestors' minimum.
        struct Key<'k> {
            text: &'k [u8],
            hash: u64,
            first_rule: u32,
            list: (u32, u32),
            parent: u32,
            ancestors_min: u32,
        }
        let mut keys: Vec<Key<'_>> = vec![];
        let mut rules = vec![];
        // Keys on the path from the root to the current key, for parent links.
        let mut stack: Vec<u32> = vec![];
        let mut i = 0;
        while let Some(&(text, first_rule)) = by_key.get(i) {
            let rules_start = rules.len() as u32;
            while let Some(&(_, rule)) = by_key.get(i).filter(|(k, _)| *k == text) {
                rules.push(rule);
                i += 1;
            }
            while let Some(&top) = stack.last() {
                if text.starts_with(keys[top as usize].text) {
                    break;
                }
                stack.pop();
            }
            let parent = stack.last().copied().unwrap_or(NONE);
            let ancestors_min = keys
                .get(parent as usize)
                .map_or(NONE, |p| p.first_rule.min(p.ancestors_min));
            stack.push(keys.len() as u32);
            keys.push(Key {
                text,
                hash: hash(seed, text, None, text.len()),
                first_rule,
                list: (rules_start, rules.len() as u32),
                parent,
                ancestors_min,
            });
        }
        let mut lengths: Vec<u32> = keys.iter().map(|k| k.text.len() as u32).collect();
        lengths.sort_unstable_by(|a, b| b.cmp(a));
        lengths.dedup();
        // Place the keys, then turn parent key numbers into parent slots.
        let size = (keys.len() * 2).next_power_of_two().max(2);
        let mut slots = vec![Slot::default(); size];
        let mut lists = vec![(0, 0); size];
        let mask = size - 1;
        let mut slot_of = vec![0u32; keys.len()];
        for (n, key) in keys.iter().enumerate() {
            let mut s = key.hash as usize & mask;
            while slots[s].tag != 0 {
                s = (s + 1) & mask;
            }
            slots[s] = Slot {
                tag: tag(key.hash),
                first_rule: key.first_rule,
                parent: key.parent,
                ancestors_min: key.ancestors_min,
            };
            lists[s] = key.list;
            slot_of[n] = s as u32;
        }
        for slot in slots.iter_mut().filter(|s| s.tag != 0) {
            slot.parent = slot_of.get(slot.parent as usize).copied().unwrap_or(NONE);
        }
        let words = (keys.len() * 8).div_ceil(64).next_power_of_two();
        let mut index = PrefixIndex {
            seed,
            slots: Slots::new(&slots),
            lists: lists.into(),
            rules: rules.into(),
            starts: (0..=lengths.first().copied().unwrap_or(0))
                .map(|n| lengths.partition_point(|&l| l > n) as u32)
                .collect(),
            lengths: lengths.into(),
            filter: vec![0u64; words].into(),
            filter_shift: 64 - words.trailing_zeros(),
        };
        for key in &keys {
            let (word, bits) = index.filter_bits(key.hash);
            if let Some(w) = index.filter.get_mut(word) {
                *w |= bits;
            }
        }
        index
    }

    /// The filter word and two bits of a hash, from one more multiply so that they are
    /// independent of the slot (low bits) and tag (high half): the word from the product's top
    /// bits (at most 29 of them), the bits from bits 20–31.
    fn filter_bits(&self, h: u64) -> (usize, u64) {
        let x = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let word = x.checked_shr(self.filter_shift).unwrap_or(0) as usize;
        (word, 1 << ((x >> 20) & 63) | 1 << ((x >> 26) & 63))
    }

    fn filter_has(&self, h: u64) -> bool {
        let (word, bits) = self.filter_bits(h);
        self.filter.get(word).is_some_and(|w| w & bits == bits)
    }

    /// The hash of the first `len` bytes of `subject` as TEL templates read them.
    fn hash_subject(&self, subject: &Subject<'_>, len: usize) -> u64 {
        Words::new(subject).prefix_hash(self.seed, len)
    }

    fn home(&self, h: u64) -> usize {
        h as usize & (self.slots.len() - 1)
    }

    /// The number of slots (a caller may keep data per slot, see [`Self::first_rules`]).
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// `(slot, first rule, alone, tag)` of every key; `alone` when no key that this key starts
    /// with has a rule before its first rule.
    pub(crate) fn first_rules(&self) -> impl Iterator<Item = (usize, u32, bool, u32)> + '_ {
        (0..self.slots.len())
            .filter_map(|s| Some((s, self.slots.get(s)?)))
            .filter(|(_, slot)| slot.tag != 0)
            .map(|(s, slot)| {
                let alone = slot.ancestors_min >= slot.first_rule;
                (s, slot.first_rule, alone, slot.tag)
            })
    }

    /// The first rule of the key in slot `slot`.
    pub(crate) fn first_rule_of(&self, slot: usize) -> Option<u32> {
        self.slots.get(slot).map(|s| s.first_rule)
    }

    /// The slot of the key equal to the first `len` bytes of `subject`, if any, with its
    /// contents; `prefix_of(slot, id)` is the key of rule `id`, the first rule of `slot`.
    fn probe<'a>(
        &self,
        subject: &Subject<'_>,
        h: u64,
        len: usize,
        prefix_of: impl Fn(u32, u32) -> &'a [u8],
    ) -> Option<(u32, Slot)> {
        let mask = self.slots.len() - 1;
        let tag = tag(h);
        let mut s = self.home(h);
        loop {
            let slot = self.slots.get(s)?;
            if slot.tag == 0 {
                return None;
            }
            if slot.tag == tag && {
                let key = prefix_of(s as u32, slot.first_rule);
                key.len() == len && subject.starts_with(key)
            } {
                return Some((s as u32, slot));
            }
            s = (s + 1) & mask;
        }
    }

    /// Starts a lookup: hashes the prefixes of `subject` of the key lengths it is long enough
    /// for, longest first, up to the first that passes the filter ([`Self::passed`] names its
    /// home slot, so that a caller can read its per-slot data ahead). The shorter lengths are
    /// not hashed: the key found has links to the shorter keys, and [`Self::first_match`]
    /// hashes them only if the pass was a false one (about 5 %).
    pub(crate) fn prefixes(&self, subject: &Subject<'_>) -> Prefixes {
        let uri_len = subject.uri.len();
        let start = self.starts.get(uri_len).map_or(0, |&s| s as usize);
        let words = Words::new(subject);
        let mut out = Prefixes {
            start,
            computed: 0,
            passed: None,
        };
        for &len in self.lengths.get(start..).unwrap_or_default() {
            let h = words.prefix_hash(self.seed, len as usize);
            out.computed += 1;
            if self.filter_has(h) {
                out.passed = Some((h, len));
                break;
            }
        }
        out
    }

    /// The home slot, the length and the slot tag of the candidate that passed the filter, if
    /// one did (its key, if it is one, sits in the first slot with that tag from the home slot
    /// on).
    pub(crate) fn passed(&self, prefixes: &Prefixes) -> Option<(usize, usize, u32)> {
        prefixes
            .passed
            .map(|(h, len)| (self.home(h), len as usize, tag(h)))
    }

    /// The slot a lookup will most likely stop at, with its first rule id: the first slot with
    /// the tag of the candidate that passed the filter on that candidate's probe sequence (the
    /// key is not verified). A caller reads that rule ahead.
    pub(crate) fn likely_rule(&self, prefixes: &Prefixes) -> Option<(usize, u32)> {
        let mask = self.slots.len() - 1;
        let (h, _) = prefixes.passed?;
        let tag = tag(h);
        let mut s = self.home(h);
        while let Some(slot) = self.slots.get(s).filter(|slot| slot.tag != 0) {
            if slot.tag == tag {
                return Some((s, slot.first_rule));
            }
            s = (s + 1) & mask;
        }
        None
    }

    /// The lowest rule id `i` for which `is_match(i, slot)` holds among the rules whose key
    /// `subject` starts with (`slot` is `Some` when `i` is the first rule of that slot's key).
    /// `prefixes` are [`Self::prefixes`] of `subject`; `prefix_of(slot, i)` is the key of rule
    /// `i`, the first rule of `slot` (its pattern's prefix).
    pub(crate) fn first_match<'a>(
        &self,
        subject: Subject<'_>,
        prefixes: &Prefixes,
        prefix_of: impl Fn(u32, u32) -> &'a [u8],
        mut is_match: impl FnMut(u32, Option<u32>) -> bool,
    ) -> Option<u32> {
        let mut key = self
            .lengths
            .iter()
            .skip(prefixes.start)
            .enumerate()
            .find_map(|(j, &len)| {
                let h = if j + 1 < prefixes.computed {
                    // Failed the filter in `prefixes`.
                    return None;
                } else if j + 1 == prefixes.computed {
                    prefixes.passed?.0
                } else {
                    let h = self.hash_subject(&subject, len as usize);
                    if !self.filter_has(h) {
                        return None;
                    }
                    h
                };
                self.probe(&subject, h, len as usize, &prefix_of)
            });
        let mut best = NONE;
        while let Some((s, slot)) = key {
            // The first rule from the slot; the rest of the list only if that one fails.
            if slot.first_rule < best {
                if is_match(slot.first_rule, Some(s)) {
                    best = slot.first_rule;
                } else {
                    let (start, end) = self.lists.get(s as usize).copied().unwrap_or((0, 0));
                    let rest = self.rules.get(start as usize + 1..end as usize);
                    for &rule in rest.unwrap_or_default() {
                        if rule >= best {
                            break;
                        }
                        if is_match(rule, None) {
                            best = rule;
                            break;
                        }
                    }
                }
            }
            if slot.ancestors_min >= best {
                break;
            }
            key = self
                .slots
                .get(slot.parent as usize)
                .map(|parent| (slot.parent, parent));
        }
        (best != NONE).then_some(best)
    }
}

/// A started lookup: how many candidate prefixes (the key lengths the subject is long enough
/// for, longest first, from `lengths[start]`) were hashed, and the hash and length of the last
/// of them if it passed the filter (all before it failed).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Prefixes {
    start: usize,
    computed: usize,
    passed: Option<(u64, u32)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The word-at-a-time prefix hashes of a subject are exactly the chunk hashes that
        /// keys get, wait marks included.
        #[test]
        fn prefix_hashes_match_key_hashes(
            uri in "(tel:\\+|sip:|TEL:)?[0-9wW;@a-z.]{0,80}",
            seed in any::<u64>(),
        ) {
            let subject = Subject::new(&uri);
            let words = Words::new(&subject);
            for len in 0..=uri.len() {
                prop_assert_eq!(
                    words.prefix_hash(seed, len),
                    hash(seed, uri.as_bytes(), subject.wait(), len)
                );
            }
        }
    }
}
