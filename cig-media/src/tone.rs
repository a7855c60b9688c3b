//! Test tones at 8 kHz: a sine generator ([`ToneGenerator`]) and a Goertzel tone detector
//! ([`analyze`] for one block, [`ToneDetector`] for a stream), used by the secure phone, the
//! demo and gateway tests to prove that audio crossed a call end to end.
//!
//! The detector measures, for each candidate frequency `f`, the share of the block's energy
//! that lies at `f`: `2·|X(f)|² / (N·Σx²)`, where `|X(f)|²` is the Goertzel power. A pure sine
//! at `f` gives about 1, any other candidate at least one bin away about 0. G.711 quantisation
//! noise (≈ −38 dB below the signal, more after a μ-law ↔ A-law conversion) leaves the share
//! of a clean tone above 0.95, so the thresholds below hold after transcoding.
//!
//! ```
//! use cig_media::tone::{Analysis, ToneGenerator, analyze};
//!
//! let mut block = [0i16; 800];
//! ToneGenerator::new(1000.0, 8000).fill(&mut block);
//! match analyze(&block, &[400.0, 1000.0, 1400.0]) {
//!     Analysis::Tone { freq, share } => assert!(freq == 1000.0 && share > 0.95),
//!     other => panic!("{other:?}"),
//! }
//! assert_eq!(analyze(&[0; 800], &[1000.0]), Analysis::Silence);
//! ```

use std::f64::consts::TAU;

/// The sample rate of every G.711 stream, in Hz.
pub const SAMPLE_RATE: u32 = 8000;

/// Samples per block of [`ToneDetector`]: 100 ms, i.e. a 10 Hz frequency resolution.
pub const BLOCK_LEN: usize = 800;

/// A block whose RMS is below this (≈ −54 dBFS) is silence.
pub const SILENCE_RMS: f64 = 64.0;

/// The least share of a block's energy at one candidate for the block to be that tone.
pub const MIN_TONE_SHARE: f64 = 0.6;

/// Generates a sine at a fixed frequency and amplitude, sample by sample, continuous across
/// calls to [`fill`](Self::fill).
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    freq: f64,
    amplitude: f64,
    /// Phase in cycles, kept in `[0, 1)` so that precision does not degrade over time.
    phase: f64,
    step: f64,
}

impl ToneGenerator {
    /// A sine of `freq_hz` (clamped to 0–4000 Hz) with peak `amplitude` (0–32767) at 8 kHz.
    pub fn new(freq_hz: f32, amplitude: i16) -> ToneGenerator {
        let freq = f64::from(freq_hz).clamp(0.0, f64::from(SAMPLE_RATE) / 2.0);
        ToneGenerator {
            freq,
            amplitude: f64::from(amplitude.max(0)),
            phase: 0.0,
            step: freq / f64::from(SAMPLE_RATE),
        }
    }

    /// The frequency in Hz.
    pub fn freq(&self) -> f64 {
        self.freq
    }

    /// Writes the next `out.len()` samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            // |amplitude · sin| ≤ 32767: the cast cannot saturate unexpectedly.
            *s = (self.amplitude * (TAU * self.phase).sin()).round() as i16;
            self.phase = (self.phase + self.step).fract();
        }
    }
}

/// The Goertzel power `|X(f)|²` of `samples` at `freq_hz` (8 kHz sampling); for a sine of
/// amplitude `A` over `N` samples at exactly `f` it is about `(A·N/2)²`.
pub fn goertzel_power(samples: &[i16], freq_hz: f64) -> f64 {
    let coeff = 2.0 * (TAU * freq_hz / f64::from(SAMPLE_RATE)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// Candidates evaluated together by [`goertzel_lanes`].
const LANES: usize = 8;

/// [`goertzel_power`] of up to [`LANES`] frequencies in one pass over the samples: the eight
/// recurrences are independent, so they run side by side (SIMD) instead of waiting on one
/// another's latency. `powers[i]` receives the power at `freqs[i]`.
fn goertzel_lanes(samples: &[i16], freqs: &[f32], powers: &mut [f64; LANES]) {
    let mut coeff = [0.0f64; LANES];
    for (c, &f) in coeff.iter_mut().zip(freqs) {
        *c = 2.0 * (TAU * f64::from(f) / f64::from(SAMPLE_RATE)).cos();
    }
    let (mut s1, mut s2) = ([0.0f64; LANES], [0.0f64; LANES]);
    for &x in samples {
        let x = f64::from(x);
        for i in 0..LANES {
            let s = x + coeff[i] * s1[i] - s2[i];
            s2[i] = s1[i];
            s1[i] = s;
        }
    }
    for i in 0..LANES {
        powers[i] = s1[i] * s1[i] + s2[i] * s2[i] - coeff[i] * s1[i] * s2[i];
    }
}

/// Energy `Σx²` of a block.
fn energy(samples: &[i16]) -> f64 {
    samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum()
}

/// The share of the energy of `samples` that lies at `freq_hz` (about 1 for a pure sine at
/// that frequency, 0 for silence).
pub fn tone_share(samples: &[i16], freq_hz: f64) -> f64 {
    let e = energy(samples);
    if e == 0.0 || samples.is_empty() {
        return 0.0;
    }
    2.0 * goertzel_power(samples, freq_hz) / (samples.len() as f64 * e)
}

/// What one block holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Analysis {
    /// RMS below [`SILENCE_RMS`].
    Silence,
    /// One candidate holds at least [`MIN_TONE_SHARE`] of the energy.
    Tone {
        /// The candidate frequency, in Hz.
        freq: f32,
        /// Its share of the block's energy.
        share: f64,
    },
    /// Audible, but no candidate dominates (speech, noise, several tones).
    Other,
}

/// Classifies one block of samples against `candidates` (Hz). Blocks of a few hundred samples
/// or more give a clear answer; a candidate grid should be spaced at least `8000 / N` Hz apart
/// for an `N`-sample block.
pub fn analyze(samples: &[i16], candidates: &[f32]) -> Analysis {
    let e = energy(samples);
    if samples.is_empty() || (e / samples.len() as f64).sqrt() < SILENCE_RMS {
        return Analysis::Silence;
    }
    let norm = 2.0 / (samples.len() as f64 * e);
    let mut best: Option<(f32, f64)> = None;
    for chunk in candidates.chunks(LANES) {
        let mut powers = [0.0; LANES];
        goertzel_lanes(samples, chunk, &mut powers);
        for (&f, &p) in chunk.iter().zip(&powers) {
            if best.is_none_or(|(_, b)| norm * p > b) {
                best = Some((f, norm * p));
            }
        }
    }
    match best {
        Some((freq, share)) if share >= MIN_TONE_SHARE => Analysis::Tone { freq, share },
        _ => Analysis::Other,
    }
}

/// Candidates from `lo` to `hi` Hz (inclusive) every `step` Hz (a step below 1 Hz is taken as
/// 1 Hz; at most 4000 candidates).
pub fn candidate_grid(lo: f32, hi: f32, step: f32) -> Vec<f32> {
    let step = step.max(1.0);
    (0..4000u16)
        .map(|i| lo + f32::from(i) * step)
        .take_while(|&f| f <= hi)
        .collect()
}

/// Classifies a stream block by block ([`BLOCK_LEN`] samples) and counts the results; the
/// answer is the candidate found in most blocks.
#[derive(Debug, Clone)]
pub struct ToneDetector {
    candidates: Vec<f32>,
    block: Vec<i16>,
    tone_blocks: Vec<u32>,
    silent_blocks: u32,
    other_blocks: u32,
}

/// A summary of everything a [`ToneDetector`] heard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneSummary {
    /// The candidate found in most blocks, if any block held a tone.
    pub dominant: Option<f32>,
    /// Blocks in which `dominant` was found.
    pub dominant_blocks: u32,
    /// Blocks that held a tone (any candidate).
    pub tone_blocks: u32,
    /// Silent blocks.
    pub silent_blocks: u32,
    /// Audible blocks without a dominant candidate.
    pub other_blocks: u32,
}

impl ToneDetector {
    /// A detector for `candidates` (Hz).
    pub fn new(candidates: &[f32]) -> ToneDetector {
        ToneDetector {
            candidates: candidates.to_vec(),
            block: Vec::with_capacity(BLOCK_LEN),
            tone_blocks: vec![0; candidates.len()],
            silent_blocks: 0,
            other_blocks: 0,
        }
    }

    /// A detector for any frequency from 100 to 3900 Hz, at the block's 10 Hz resolution.
    pub fn any_tone() -> ToneDetector {
        ToneDetector::new(&candidate_grid(100.0, 3900.0, 10.0))
    }

    /// Feeds samples; every full block is classified. Returns the result of the last block
    /// completed by these samples, if any.
    pub fn push(&mut self, mut samples: &[i16]) -> Option<Analysis> {
        let mut last = None;
        while !samples.is_empty() {
            let take = (BLOCK_LEN - self.block.len()).min(samples.len());
            self.block.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.block.len() == BLOCK_LEN {
                let a = analyze(&self.block, &self.candidates);
                match a {
                    Analysis::Silence => self.silent_blocks += 1,
                    Analysis::Other => self.other_blocks += 1,
                    Analysis::Tone { freq, .. } => {
                        if let Some(i) = self.candidates.iter().position(|&c| c == freq) {
                            self.tone_blocks[i] += 1;
                        }
                    }
                }
                self.block.clear();
                last = Some(a);
            }
        }
        last
    }

    /// What was heard so far (complete blocks only).
    pub fn summary(&self) -> ToneSummary {
        let best = self
            .tone_blocks
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .max_by_key(|&(_, &n)| n);
        ToneSummary {
            dominant: best.map(|(i, _)| self.candidates[i]),
            dominant_blocks: best.map_or(0, |(_, &n)| n),
            tone_blocks: self.tone_blocks.iter().sum(),
            silent_blocks: self.silent_blocks,
            other_blocks: self.other_blocks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g711::{self, Law};
    use proptest::prelude::*;

    /// Encodes with `first`, converts the codes to `second` law, decodes: the path of a call
    /// leg through a transcoding relay.
    fn through(pcm: &[i16], first: Law, second: Law) -> Vec<i16> {
        let mut codes = vec![0u8; pcm.len()];
        match first {
            Law::Ulaw => g711::encode_ulaw(pcm, &mut codes),
            Law::Alaw => g711::encode_alaw(pcm, &mut codes),
        };
        g711::transcode(first, second, &mut codes);
        let mut out = vec![0i16; pcm.len()];
        match second {
            Law::Ulaw => g711::decode_ulaw(&codes, &mut out),
            Law::Alaw => g711::decode_alaw(&codes, &mut out),
        };
        out
    }

    const PATHS: [(Law, Law); 4] = [
        (Law::Ulaw, Law::Ulaw),
        (Law::Alaw, Law::Alaw),
        (Law::Ulaw, Law::Alaw),
        (Law::Alaw, Law::Ulaw),
    ];

    #[test]
    fn generator_amplitude_and_continuity() {
        let mut g = ToneGenerator::new(1000.0, 10_000);
        let mut a = [0i16; 8];
        g.fill(&mut a);
        // 1 kHz at 8 kHz: eight samples per cycle, peak at sample 2.
        assert_eq!(a, [0, 7071, 10000, 7071, 0, -7071, -10000, -7071]);
        let mut b = [0i16; 4];
        g.fill(&mut b);
        assert_eq!(b, [0, 7071, 10000, 7071], "phase continues across calls");
        assert_eq!(ToneGenerator::new(9000.0, 1).freq(), 4000.0);
    }

    #[test]
    fn goertzel_power_of_a_bin_centred_sine() {
        let mut s = [0i16; 800];
        ToneGenerator::new(400.0, 16_000).fill(&mut s);
        let expect = (16_000.0 * 800.0 / 2.0f64).powi(2);
        let p = goertzel_power(&s, 400.0);
        assert!((p / expect - 1.0).abs() < 1e-3, "{p} vs {expect}");
        assert!(goertzel_power(&s, 1400.0) < expect * 1e-6);
        assert!((tone_share(&s, 400.0) - 1.0).abs() < 1e-3);
        assert_eq!(tone_share(&[0; 10], 400.0), 0.0);
        assert_eq!(tone_share(&[], 400.0), 0.0);
    }

    #[test]
    fn test_tones_survive_every_g711_path() {
        let candidates = [400.0, 1000.0, 1400.0];
        for &f in &candidates {
            for (first, second) in PATHS {
                for amplitude in [500, 8_000, 30_000] {
                    let mut pcm = [0i16; BLOCK_LEN];
                    ToneGenerator::new(f, amplitude).fill(&mut pcm);
                    let heard = through(&pcm, first, second);
                    match analyze(&heard, &candidates) {
                        Analysis::Tone { freq, share } => {
                            assert_eq!(freq, f, "{first:?}->{second:?} at {amplitude}");
                            assert!(share > 0.95, "{f} Hz share {share}");
                        }
                        other => panic!("{f} Hz {first:?}->{second:?}: {other:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn silence_after_g711_is_silence() {
        for (first, second) in PATHS {
            // Digital silence and a little noise: A-law decodes 0 as ±8, μ-law as 0.
            let quiet: Vec<i16> = (0..BLOCK_LEN).map(|i| (i % 7) as i16 - 3).collect();
            for pcm in [vec![0i16; BLOCK_LEN], quiet] {
                let heard = through(&pcm, first, second);
                assert_eq!(analyze(&heard, &[400.0, 1000.0, 1400.0]), Analysis::Silence);
            }
        }
    }

    #[test]
    fn two_tones_are_not_one() {
        // A DTMF-like pair: each holds about half of the energy.
        let (mut a, mut b) = ([0i16; BLOCK_LEN], [0i16; BLOCK_LEN]);
        ToneGenerator::new(770.0, 8000).fill(&mut a);
        ToneGenerator::new(1330.0, 8000).fill(&mut b);
        let mix: Vec<i16> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        assert_eq!(analyze(&mix, &[770.0, 1330.0]), Analysis::Other);
    }

    #[test]
    fn detector_counts_blocks_and_names_the_dominant_tone() {
        let mut d = ToneDetector::any_tone();
        let mut g = ToneGenerator::new(1000.0, 8000);
        let mut frame = [0i16; 160];
        // 0.3 s of silence, then 1 s of tone in 20 ms frames.
        for _ in 0..15 {
            d.push(&[0; 160]);
        }
        for _ in 0..50 {
            g.fill(&mut frame);
            d.push(&frame);
        }
        let s = d.summary();
        assert_eq!(s.dominant, Some(1000.0));
        assert_eq!(s.silent_blocks, 3);
        // The block that straddles the start may count as a tone or not; the rest do.
        assert!(s.dominant_blocks >= 9 && s.tone_blocks == s.dominant_blocks);
        assert_eq!(ToneDetector::new(&[400.0]).summary().dominant, None);
    }

    #[test]
    fn candidate_grid_is_bounded() {
        assert_eq!(
            candidate_grid(100.0, 130.0, 10.0),
            [100.0, 110.0, 120.0, 130.0]
        );
        assert_eq!(candidate_grid(0.0, 1e9, 0.0).len(), 4000);
        assert!(candidate_grid(10.0, 5.0, 1.0).is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The eight-lane Goertzel equals the one-frequency reference path.
        #[test]
        fn lanes_match_reference(
            samples in proptest::collection::vec(any::<i16>(), 0..900),
            freqs in proptest::collection::vec(50.0f32..3950.0, 1..=LANES),
        ) {
            let mut powers = [0.0; LANES];
            goertzel_lanes(&samples, &freqs, &mut powers);
            for (&f, &p) in freqs.iter().zip(&powers) {
                let r = goertzel_power(&samples, f64::from(f));
                prop_assert!((p - r).abs() <= 1e-9 * r.abs().max(1.0), "{} vs {}", p, r);
            }
        }

        /// Any tone on the 10 Hz grid from 200 to 3400 Hz, at any level from −36 dBFS up, is
        /// found by the grid detector at its own frequency after any G.711 path.
        #[test]
        fn grid_tone_found_after_g711(
            step in 20u16..=340,
            amplitude in 500i16..=32_000,
            path in 0usize..4,
        ) {
            let f = f32::from(step) * 10.0;
            let mut pcm = [0i16; BLOCK_LEN];
            ToneGenerator::new(f, amplitude).fill(&mut pcm);
            let (first, second) = PATHS[path];
            let heard = through(&pcm, first, second);
            let grid = candidate_grid(100.0, 3900.0, 10.0);
            match analyze(&heard, &grid) {
                Analysis::Tone { freq, .. } => prop_assert_eq!(freq, f),
                other => prop_assert!(false, "{} Hz: {:?}", f, other),
            }
        }
    }
}
