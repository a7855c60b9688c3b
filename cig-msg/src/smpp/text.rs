//! SMS text (sans-IO): GSM 03.38 7-bit default alphabet with its extension table (one septet
//! per octet, SMPP data_coding 0) or UCS-2 (data_coding 8, UTF-16BE); splitting long texts
//! into UDH-concatenated parts (153 septets / 67 UCS-2 units per part, never splitting an
//! escape pair or a surrogate pair) and reassembling received parts.

use std::collections::HashMap;

/// data_coding of the SMSC default alphabet (GSM 03.38 here).
pub const DC_GSM: u8 = 0x00;
/// data_coding of UCS-2.
pub const DC_UCS2: u8 = 0x08;
/// Septets of a single GSM message.
pub const GSM_SINGLE: usize = 160;
/// Septets per GSM part with a concatenation UDH.
pub const GSM_PART: usize = 153;
/// UTF-16 units of a single UCS-2 message.
pub const UCS2_SINGLE: usize = 70;
/// UTF-16 units per UCS-2 part with a concatenation UDH.
pub const UCS2_PART: usize = 67;
/// Most parts a text is split into (the 8-bit UDH counter allows 255).
pub const MAX_PARTS: usize = 255;

/// GSM 03.38 basic table, index = septet.
const BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// GSM 03.38 extension table (after the escape septet 0x1B).
const EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{0c}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// The septets of `c`: one from the basic table, or escape + one from the extension table.
fn gsm_char(c: char) -> Option<(u8, Option<u8>)> {
    if c != '\u{1b}' {
        if let Some(i) = BASIC.iter().position(|&b| b == c) {
            return Some((i as u8, None));
        }
    }
    EXTENSION
        .iter()
        .find(|&&(_, e)| e == c)
        .map(|&(s, _)| (0x1B, Some(s)))
}

/// `text` in GSM 03.38 septets (one per byte), or `None` if a character is not in the
/// alphabet.
pub fn gsm_encode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        let (a, b) = gsm_char(c)?;
        out.push(a);
        out.extend(b);
    }
    Some(out)
}

/// Septets (one per byte) → text. Unknown escapes give a space, as 03.38 recommends.
pub fn gsm_decode(septets: &[u8]) -> String {
    let mut out = String::with_capacity(septets.len());
    let mut it = septets.iter();
    while let Some(&s) = it.next() {
        if s == 0x1B {
            let Some(&e) = it.next() else { break };
            out.push(
                EXTENSION
                    .iter()
                    .find(|&&(x, _)| x == e)
                    .map_or(' ', |&(_, c)| c),
            );
        } else {
            out.push(BASIC[(s & 0x7F) as usize]);
        }
    }
    out
}

/// UTF-16BE bytes of `text`.
pub fn ucs2_encode(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// UTF-16BE → text (lossy; an odd trailing byte is dropped).
pub fn ucs2_decode(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// One short_message ready for submit_sm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// data_coding.
    pub data_coding: u8,
    /// esm_class (UDHI set when concatenated).
    pub esm_class: u8,
    /// UDH (if any) followed by the payload.
    pub short_message: Vec<u8>,
}

/// Splits `text` into SMS parts: GSM when every character is in the alphabet, UCS-2
/// otherwise; concatenated with reference `reference` when it does not fit one SMS. `None`
/// if it would need more than [`MAX_PARTS`] parts.
pub fn split(text: &str, reference: u8) -> Option<Vec<Part>> {
    let (dc, payload, unit, single, per_part) = match gsm_encode(text) {
        Some(s) => (DC_GSM, s, 1, GSM_SINGLE, GSM_PART),
        None => (
            DC_UCS2,
            ucs2_encode(text),
            2,
            UCS2_SINGLE * 2,
            UCS2_PART * 2,
        ),
    };
    if payload.len() <= single {
        return Some(vec![Part {
            data_coding: dc,
            esm_class: 0,
            short_message: payload,
        }]);
    }
    let mut chunks = Vec::new();
    let mut rest = payload.as_slice();
    while !rest.is_empty() {
        let mut n = per_part.min(rest.len());
        if n < rest.len() {
            let last_is_lead = if dc == DC_GSM {
                // Do not end a part on an escape septet.
                rest[..n].iter().rev().take_while(|&&s| s == 0x1B).count() % 2 == 1
            } else {
                // Do not end a part on a high surrogate.
                (0xD8..=0xDB).contains(&rest[n - 2])
            };
            if last_is_lead {
                n -= unit;
            }
        }
        let (a, b) = rest.split_at(n);
        chunks.push(a);
        rest = b;
    }
    if chunks.len() > MAX_PARTS {
        return None;
    }
    let total = chunks.len() as u8;
    Some(
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let mut sm = vec![0x05, 0x00, 0x03, reference, total, i as u8 + 1];
                sm.extend_from_slice(c);
                Part {
                    data_coding: dc,
                    esm_class: crate::smpp::pdu::ESM_UDHI,
                    short_message: sm,
                }
            })
            .collect(),
    )
}

/// Concatenation info from a UDH: (reference, total parts, this part's number from 1).
pub type Concat = (u16, u8, u8);

/// The concatenation info of a UDH (8-bit IE 0x00 or 16-bit IE 0x08) and the payload after
/// the UDH. `None` if the UDH is malformed.
pub fn parse_udh(sm: &[u8]) -> Option<(Option<Concat>, &[u8])> {
    let (&udhl, rest) = sm.split_first()?;
    let udh = rest.get(..udhl as usize)?;
    let payload = rest.get(udhl as usize..)?;
    let mut ies = udh;
    let mut concat = None;
    while let [iei, len, tail @ ..] = ies {
        let data = tail.get(..*len as usize)?;
        match (iei, data) {
            (0x00, [r, total, seq]) => concat = Some((u16::from(*r), *total, *seq)),
            (0x08, [r1, r2, total, seq]) => {
                concat = Some((u16::from_be_bytes([*r1, *r2]), *total, *seq));
            }
            _ => {}
        }
        ies = &tail[*len as usize..];
    }
    Some((concat, payload))
}

/// Decodes a payload by its data_coding (GSM for 0, UCS-2 for 8, Latin-1 for 3, else UTF-8
/// lossy).
pub fn decode(data_coding: u8, payload: &[u8]) -> String {
    match data_coding {
        DC_GSM => gsm_decode(payload),
        DC_UCS2 => ucs2_decode(payload),
        0x03 => payload.iter().map(|&b| char::from(b)).collect(),
        _ => String::from_utf8_lossy(payload).into_owned(),
    }
}

/// Collects the parts of concatenated messages, keyed by (source, destination, reference).
#[derive(Debug, Default)]
pub struct Reassembly<T> {
    pending: HashMap<(String, String, u16), Pending<T>>,
}

#[derive(Debug)]
struct Pending<T> {
    total: u8,
    parts: Vec<Option<String>>,
    tags: Vec<T>,
    first_seen: u64,
}

/// At most this many concatenated messages are pending at once (oldest evicted first).
pub const MAX_PENDING: usize = 1024;

/// A complete (or timed-out) concatenated message.
#[derive(Debug, PartialEq, Eq)]
pub struct Assembled<T> {
    /// Source address.
    pub source: String,
    /// Destination address.
    pub dest: String,
    /// Concatenation reference.
    pub reference: u16,
    /// The text; missing parts appear as `[part N missing]`.
    pub text: String,
    /// Whether every part arrived.
    pub complete: bool,
    /// The tags given with each part received (e.g. PDU sequence numbers to answer).
    pub tags: Vec<T>,
}

impl<T> Reassembly<T> {
    /// Adds part `seq` of `total`; returns the message when all parts are in. `now` is in
    /// any monotonic unit (seconds in the driver).
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        source: &str,
        dest: &str,
        reference: u16,
        total: u8,
        seq: u8,
        text: String,
        tag: T,
        now: u64,
    ) -> Option<Assembled<T>> {
        let key = (source.to_owned(), dest.to_owned(), reference);
        if !self.pending.contains_key(&key) && self.pending.len() >= MAX_PENDING {
            let oldest = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.first_seen)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.pending.remove(&k);
            }
        }
        let p = self.pending.entry(key.clone()).or_insert_with(|| Pending {
            total,
            parts: vec![None; usize::from(total.max(1))],
            tags: Vec::new(),
            first_seen: now,
        });
        p.tags.push(tag);
        if let Some(slot) = usize::from(seq)
            .checked_sub(1)
            .and_then(|i| p.parts.get_mut(i))
        {
            *slot = Some(text);
        }
        if p.parts.iter().all(Option::is_some) {
            let p = self.pending.remove(&key)?;
            return Some(finish(key, p, true));
        }
        let _ = total;
        None
    }

    /// Removes and returns the messages first seen before `deadline`, missing parts marked.
    pub fn expire(&mut self, deadline: u64) -> Vec<Assembled<T>> {
        let keys: Vec<_> = self
            .pending
            .iter()
            .filter(|(_, p)| p.first_seen < deadline)
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| self.pending.remove(&k).map(|p| finish(k, p, false)))
            .collect()
    }

    /// When the oldest incomplete message was first seen.
    pub fn oldest(&self) -> Option<u64> {
        self.pending.values().map(|p| p.first_seen).min()
    }

    /// Number of incomplete messages.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// No incomplete messages.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

fn finish<T>(key: (String, String, u16), p: Pending<T>, complete: bool) -> Assembled<T> {
    let _ = p.total;
    let text = p
        .parts
        .into_iter()
        .enumerate()
        .map(|(i, t)| t.unwrap_or_else(|| format!("[part {} missing]", i + 1)))
        .collect();
    Assembled {
        source: key.0,
        dest: key.1,
        reference: key.2,
        text,
        complete,
        tags: p.tags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn gsm_with_extension_and_ucs2_choice() {
        assert_eq!(gsm_encode("@£$¥").unwrap(), [0, 1, 2, 3]);
        assert_eq!(gsm_encode("€[").unwrap(), [0x1B, 0x65, 0x1B, 0x3C]);
        assert_eq!(gsm_encode("Привет"), None);
        assert_eq!(split("hi", 1).unwrap()[0].data_coding, DC_GSM);
        assert_eq!(split("Привет", 1).unwrap()[0].data_coding, DC_UCS2);
        assert_eq!(split(&"a".repeat(160), 1).unwrap().len(), 1);
        let parts = split(&"a".repeat(161), 9).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].short_message[..6], [5, 0, 3, 9, 2, 1]);
        assert_eq!(parts[0].short_message.len(), 6 + 153);
        assert_eq!(split(&"ж".repeat(70), 1).unwrap().len(), 1);
        assert_eq!(split(&"ж".repeat(71), 1).unwrap().len(), 2);
        assert_eq!(split(&"ж".repeat(134), 1).unwrap().len(), 2);
        assert_eq!(split(&"ж".repeat(135), 1).unwrap().len(), 3);
    }

    #[test]
    fn escape_pairs_are_not_split() {
        let text = format!("{}€", "a".repeat(152)) + &"b".repeat(10);
        let parts = split(&text, 1).unwrap();
        assert_eq!(parts[0].short_message.len(), 6 + 152);
        assert_eq!(
            gsm_decode(&parts[1].short_message[6..]),
            format!("€{}", "b".repeat(10))
        );
    }

    #[test]
    fn timed_out_parts_are_marked() {
        let mut r = Reassembly::default();
        assert!(r.add("a", "b", 1, 3, 1, "x".into(), 10u32, 0).is_none());
        assert!(r.add("a", "b", 1, 3, 3, "z".into(), 12, 0).is_none());
        assert!(r.expire(0).is_empty());
        let out = r.expire(5);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text, "x[part 2 missing]z");
        assert!(!out[0].complete);
        assert_eq!(out[0].tags, [10, 12]);
    }

    proptest! {
        #[test]
        fn split_then_reassemble_gives_the_text(text in "[a-z€\\[\\]{}ж😀 ]{0,700}", reference: u8) {
            let parts = split(&text, reference).unwrap();
            if parts.len() == 1 {
                prop_assert_eq!(decode(parts[0].data_coding, &parts[0].short_message), text);
                return Ok(());
            }
            let mut r = Reassembly::default();
            let mut done = None;
            for (i, p) in parts.iter().enumerate().rev() {
                prop_assert!(p.short_message.len() <= 140 + 19); // 153 septets as octets + UDH
                let (concat, payload) = parse_udh(&p.short_message).unwrap();
                let (rf, total, seq) = concat.unwrap();
                prop_assert_eq!((rf, total as usize, seq as usize), (u16::from(reference), parts.len(), i + 1));
                done = r.add("s", "d", rf, total, seq, decode(p.data_coding, payload), i, 0);
            }
            prop_assert_eq!(done.unwrap().text, text);
        }
    }
}
