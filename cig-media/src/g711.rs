//! ITU-T G.711 μ-law and A-law: per-sample and per-frame encode/decode between 16-bit linear PCM
//! and the 8-bit codes, and direct μ↔A conversion (G.711 Tables 3 and 4).
//!
//! Encoding follows the ITU-T G.191 reference (`ulaw_compress`/`alaw_compress`): the 16-bit
//! sample is reduced to the 14-bit (μ) or 13-bit (A) uniform PCM of G.711 by dropping low bits,
//! negative values in one's complement, so `x` and `-x - 1` give mirrored codes. Encoders are
//! branch-free arithmetic that the compiler vectorizes over a frame; decoders and the μ↔A
//! conversions are 256-entry tables computed at compile time from the G.711 segment rules.

/// One of the two G.711 laws, i.e. the codec of a leg (PCMU, static payload type 0; PCMA, 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// μ-law (PCMU).
    Ulaw,
    /// A-law (PCMA).
    Alaw,
}

impl Law {
    /// The static RTP payload type (RFC 3551).
    pub fn static_payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    /// The SDP encoding name.
    pub fn name(self) -> &'static str {
        match self {
            Law::Ulaw => "PCMU",
            Law::Alaw => "PCMA",
        }
    }
}

static ULAW_DECODE: [i16; 256] = ulaw_decode_table();
static ALAW_DECODE: [i16; 256] = alaw_decode_table();
static ULAW_TO_ALAW: [u8; 256] = ulaw_to_alaw_table();
static ALAW_TO_ULAW: [u8; 256] = alaw_to_ulaw_table();

const fn ulaw_decode_table() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut c = 0;
    while c < 256 {
        let u = !(c as u8);
        let seg = (u >> 4) & 7;
        let magnitude = ((((u & 0x0f) as i32) << 3) + 0x84) << seg;
        t[c] = if u & 0x80 != 0 {
            (0x84 - magnitude) as i16
        } else {
            (magnitude - 0x84) as i16
        };
        c += 1;
    }
    t
}

const fn alaw_decode_table() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut c = 0;
    while c < 256 {
        let a = (c as u8) ^ 0x55;
        let seg = (a >> 4) & 7;
        let mut magnitude = ((a & 0x0f) as i32) << 4;
        magnitude += if seg == 0 { 8 } else { 0x108 };
        if seg > 1 {
            magnitude <<= seg - 1;
        }
        t[c] = if a & 0x80 != 0 {
            magnitude as i16
        } else {
            -magnitude as i16
        };
        c += 1;
    }
    t
}

/// G.711 Table 3 (μ-law → A-law), indexed by the μ-law magnitude number (0 = smallest,
/// i.e. code 0x7F/0xFF): the A-law magnitude number plus one.
const U2A: [u8; 128] = [
    1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
    21, 22, 23, 24, 25, 27, 29, 31, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 48, 49, 50,
    51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75,
    76, 77, 78, 79, 80, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99,
    100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118,
    119, 120, 121, 122, 123, 124, 125, 126, 127, 128,
];

/// G.711 Table 4 (A-law → μ-law), indexed by the A-law magnitude number: the μ-law magnitude
/// number.
const A2U: [u8; 128] = [
    1, 3, 5, 7, 9, 11, 13, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
    32, 33, 33, 34, 34, 35, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 48, 49, 49, 50,
    51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73,
    74, 75, 76, 77, 78, 79, 80, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96,
    97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115,
    116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127,
];

const fn ulaw_to_alaw_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut u = 0;
    while u < 256 {
        t[u] = if u & 0x80 != 0 {
            0xd5 ^ (U2A[0xff ^ u] - 1)
        } else {
            0x55 ^ (U2A[0x7f ^ u] - 1)
        };
        u += 1;
    }
    t
}

const fn alaw_to_ulaw_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut a = 0;
    while a < 256 {
        t[a] = if a & 0x80 != 0 {
            0xff ^ A2U[a ^ 0xd5]
        } else {
            0x7f ^ A2U[a ^ 0x55]
        };
        a += 1;
    }
    t
}

/// `u16::from(value >= threshold)`, spelled so that it vectorizes as a compare.
#[inline(always)]
fn ge(value: u16, threshold: u16) -> u16 {
    u16::from(value >= threshold)
}

/// Encodes one 16-bit linear sample as μ-law.
///
/// Branch-free and table-free so that frame loops vectorize: the segment is a sum of
/// comparisons, and the per-segment right shift `>> (seg + 1)` is a multiplication by
/// `2^(7 - seg)` (built from the same comparisons) followed by `>> 8`, which cannot overflow
/// because a biased magnitude in segment `seg` is below `2^(seg + 6)`.
#[inline(always)]
pub fn linear_to_ulaw(x: i16) -> u8 {
    let sign = x >> 15; // 0 or -1
    // One's complement magnitude on the 14-bit scale, biased by 33, clipped to 13 bits.
    let biased = ((((x ^ sign) as u16) >> 2) + 33).min(0x1fff);
    let (c1, c2, c3) = (ge(biased, 0x40), ge(biased, 0x80), ge(biased, 0x100));
    let (c4, c5, c6) = (ge(biased, 0x200), ge(biased, 0x400), ge(biased, 0x800));
    let c7 = ge(biased, 0x1000);
    let seg = c1 + c2 + c3 + c4 + c5 + c6 + c7;
    let scale = 128 - 64 * c1 - 32 * c2 - 16 * c3 - 8 * c4 - 4 * c5 - 2 * c6 - c7;
    let mantissa = ((biased * scale) >> 8) & 0x0f;
    let code = 0x7f ^ ((seg << 4) | mantissa);
    (code | (!sign as u16 & 0x80)) as u8
}

/// Encodes one 16-bit linear sample as A-law (same technique as [`linear_to_ulaw`]: segment
/// `seg ≥ 1` shifts by `seg - 1`, done as a multiplication by `2^(8 - seg)` then `>> 7`).
#[inline(always)]
pub fn linear_to_alaw(x: i16) -> u8 {
    let sign = x >> 15;
    // One's complement magnitude on the 12-bit scale.
    let m = ((x ^ sign) as u16) >> 4;
    let (c1, c2, c3) = (ge(m, 16), ge(m, 32), ge(m, 64));
    let (c4, c5, c6) = (ge(m, 128), ge(m, 256), ge(m, 512));
    let c7 = ge(m, 1024);
    let seg = c1 + c2 + c3 + c4 + c5 + c6 + c7;
    let scale = 128 - 64 * c2 - 32 * c3 - 16 * c4 - 8 * c5 - 4 * c6 - 2 * c7;
    let mantissa = ((m * scale) >> 7) & 0x0f;
    (((seg << 4) | mantissa | (!sign as u16 & 0x80)) ^ 0x55) as u8
}

/// Decodes one μ-law code to 16-bit linear.
#[inline(always)]
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_DECODE[usize::from(code)]
}

/// Decodes one A-law code to 16-bit linear.
#[inline(always)]
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_DECODE[usize::from(code)]
}

/// Converts one μ-law code to A-law (G.711 Table 3).
#[inline(always)]
pub fn ulaw_to_alaw_code(code: u8) -> u8 {
    ULAW_TO_ALAW[usize::from(code)]
}

/// Converts one A-law code to μ-law (G.711 Table 4).
#[inline(always)]
pub fn alaw_to_ulaw_code(code: u8) -> u8 {
    ALAW_TO_ULAW[usize::from(code)]
}

/// Encodes a frame of linear samples as μ-law: `out[i] = linear_to_ulaw(pcm[i])` for the common
/// length of both slices; returns that length.
pub fn encode_ulaw(pcm: &[i16], out: &mut [u8]) -> usize {
    let n = pcm.len().min(out.len());
    for (o, &x) in out[..n].iter_mut().zip(&pcm[..n]) {
        *o = linear_to_ulaw(x);
    }
    n
}

/// Encodes a frame of linear samples as A-law; returns the number of samples written.
pub fn encode_alaw(pcm: &[i16], out: &mut [u8]) -> usize {
    let n = pcm.len().min(out.len());
    for (o, &x) in out[..n].iter_mut().zip(&pcm[..n]) {
        *o = linear_to_alaw(x);
    }
    n
}

/// Decodes a frame of μ-law codes; returns the number of samples written.
pub fn decode_ulaw(codes: &[u8], out: &mut [i16]) -> usize {
    let n = codes.len().min(out.len());
    for (o, &c) in out[..n].iter_mut().zip(&codes[..n]) {
        *o = ulaw_to_linear(c);
    }
    n
}

/// Decodes a frame of A-law codes; returns the number of samples written.
pub fn decode_alaw(codes: &[u8], out: &mut [i16]) -> usize {
    let n = codes.len().min(out.len());
    for (o, &c) in out[..n].iter_mut().zip(&codes[..n]) {
        *o = alaw_to_linear(c);
    }
    n
}

/// Converts a frame of μ-law codes to A-law in place (G.711 Table 3).
pub fn ulaw_to_alaw(frame: &mut [u8]) {
    for c in frame {
        *c = ULAW_TO_ALAW[usize::from(*c)];
    }
}

/// Converts a frame of A-law codes to μ-law in place (G.711 Table 4).
pub fn alaw_to_ulaw(frame: &mut [u8]) {
    for c in frame {
        *c = ALAW_TO_ULAW[usize::from(*c)];
    }
}

/// Converts a frame in place from law `from` to law `to` (nothing to do when they are equal).
pub fn transcode(from: Law, to: Law, frame: &mut [u8]) {
    match (from, to) {
        (Law::Ulaw, Law::Alaw) => ulaw_to_alaw(frame),
        (Law::Alaw, Law::Ulaw) => alaw_to_ulaw(frame),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// μ-law encoder written straight from the G.191 `ulaw_compress` algorithm (segment found by
    /// counting shifts), independent of the tables.
    fn ref_ulaw(x: i16) -> u8 {
        let x = i32::from(x);
        let absno = if x < 0 {
            ((!x) >> 2) + 33
        } else {
            (x >> 2) + 33
        }
        .min(0x1fff);
        let mut i = absno >> 6;
        let mut segno = 1;
        while i != 0 {
            segno += 1;
            i >>= 1;
        }
        let high = 8 - segno;
        let low = 0x0f - ((absno >> segno) & 0x0f);
        let y = (high << 4) | low;
        (if x >= 0 { y | 0x80 } else { y }) as u8
    }

    /// A-law encoder from the G.191 `alaw_compress` algorithm.
    fn ref_alaw(x: i16) -> u8 {
        let x = i32::from(x);
        let mut ix = if x < 0 { (!x) >> 4 } else { x >> 4 };
        if ix > 15 {
            let mut iexp = 1;
            while ix > 16 + 15 {
                ix >>= 1;
                iexp += 1;
            }
            ix -= 16;
            ix += iexp << 4;
        }
        if x >= 0 {
            ix |= 0x80;
        }
        (ix ^ 0x55) as u8
    }

    /// μ-law decoder from the G.191 `ulaw_expand` formula.
    fn ref_ulaw_expand(code: u8) -> i16 {
        let sign = if code < 0x80 { -1 } else { 1 };
        let mantissa = !i32::from(code);
        let exponent = (mantissa >> 4) & 7;
        let segment = exponent + 1;
        let mantissa = mantissa & 0x0f;
        let step = 4 << segment;
        (sign * ((0x80 << exponent) + step * mantissa + step / 2 - 4 * 33)) as i16
    }

    /// A-law decoder from the G.191 `alaw_expand` formula.
    fn ref_alaw_expand(code: u8) -> i16 {
        let ix = i32::from(code ^ 0x55) & 0x7f;
        let iexp = ix >> 4;
        let mut mant = ix & 0x0f;
        if iexp > 0 {
            mant += 16;
        }
        mant = (mant << 4) + 8;
        if iexp > 1 {
            mant <<= iexp - 1;
        }
        (if code > 127 { mant } else { -mant }) as i16
    }

    #[test]
    fn encoders_match_reference_for_all_65536_inputs() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(linear_to_ulaw(x), ref_ulaw(x), "μ-law {x}");
            assert_eq!(linear_to_alaw(x), ref_alaw(x), "A-law {x}");
        }
    }

    #[test]
    fn decoders_match_reference_for_all_256_codes() {
        for c in 0..=255u8 {
            assert_eq!(ulaw_to_linear(c), ref_ulaw_expand(c), "μ-law {c:#x}");
            assert_eq!(alaw_to_linear(c), ref_alaw_expand(c), "A-law {c:#x}");
        }
    }

    #[test]
    fn known_fixed_points() {
        // Zero, the smallest negative, full scale, and G.711's top decision values.
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_ulaw(-1), 0x7f);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xaa);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2a);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x7f), 0);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        // G.711 is symmetric in one's complement: x and -x-1 differ only in the sign bit.
        for x in [0i16, 5, 100, 1000, 8000, 30000] {
            assert_eq!(linear_to_ulaw(x) ^ 0x80, linear_to_ulaw(-x - 1));
            assert_eq!(linear_to_alaw(x) ^ 0x80, linear_to_alaw(-x - 1));
        }
    }

    #[test]
    fn decode_then_encode_is_identity() {
        for c in 0..=255u8 {
            // μ-law's negative zero (0x7f) decodes to 0, which encodes as positive zero.
            let expected = if c == 0x7f { 0xff } else { c };
            assert_eq!(linear_to_ulaw(ulaw_to_linear(c)), expected);
            assert_eq!(linear_to_alaw(alaw_to_linear(c)), c);
        }
    }

    /// The values of the two codes of a law that bracket `v` (the extreme value when `v` lies
    /// outside the law's range).
    fn bracketing(v: i16, decode: fn(u8) -> i16) -> (i16, i16) {
        let values = || (0..=255u8).map(decode);
        let below = values().filter(|&d| d <= v).max();
        let above = values().filter(|&d| d >= v).min();
        (
            below.unwrap_or_else(|| values().min().unwrap()),
            above.unwrap_or_else(|| values().max().unwrap()),
        )
    }

    #[test]
    fn direct_conversion_tables_follow_g711() {
        for c in 0..=255u8 {
            let u = ulaw_to_linear(c);
            let a = alaw_to_linear(ulaw_to_alaw_code(c));
            let (lo, hi) = bracketing(u, alaw_to_linear);
            assert!(a == lo || a == hi || u == 0, "μ {c:#x} ({u}) → A {a}");
            assert_eq!(c & 0x80, ulaw_to_alaw_code(c) & 0x80, "sign kept");
            let a_val = alaw_to_linear(c);
            let back = ulaw_to_linear(alaw_to_ulaw_code(c));
            let (lo, hi) = bracketing(a_val, ulaw_to_linear);
            assert!(back == lo || back == hi, "A {c:#x} ({a_val}) → μ {back}");
        }
        // Monotone: sorting codes by value sorts their conversions by value.
        let mut by_value: Vec<u8> = (0..=255).collect();
        by_value.sort_by_key(|&c| ulaw_to_linear(c));
        let converted: Vec<i16> = by_value
            .iter()
            .map(|&c| alaw_to_linear(ulaw_to_alaw_code(c)))
            .collect();
        assert!(converted.windows(2).all(|w| w[0] <= w[1]));
        // Fixed points of Tables 3/4: the loudest codes map onto each other.
        assert_eq!(ulaw_to_alaw_code(0x80), 0xaa);
        assert_eq!(alaw_to_ulaw_code(0xaa), 0x80);
        assert_eq!(ulaw_to_alaw_code(0xff), 0xd5);
    }

    #[test]
    fn frame_functions_agree_with_sample_functions() {
        let pcm: Vec<i16> = (0..160)
            .map(|i| (f64::from(i) * 0.3).sin() as f32)
            .map(|s| (s * 20000.0) as i16)
            .collect();
        let mut u = [0u8; 160];
        let mut a = [0u8; 160];
        assert_eq!(encode_ulaw(&pcm, &mut u), 160);
        assert_eq!(encode_alaw(&pcm, &mut a), 160);
        let mut back = [0i16; 160];
        decode_ulaw(&u, &mut back);
        assert!(back.iter().zip(&pcm).all(|(b, p)| (b - p).abs() <= 1024));
        decode_alaw(&a, &mut back);
        assert_eq!(back[7], alaw_to_linear(a[7]));
        let mut conv = u;
        transcode(Law::Ulaw, Law::Alaw, &mut conv);
        assert_eq!(conv[9], ulaw_to_alaw_code(u[9]));
        transcode(Law::Alaw, Law::Ulaw, &mut conv);
        assert_eq!(conv[9], alaw_to_ulaw_code(ulaw_to_alaw_code(u[9])));
        // Short output: only the common length is written.
        assert_eq!(encode_ulaw(&pcm, &mut u[..10]), 10);
    }
}
