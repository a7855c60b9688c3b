//! WAV files of telephone audio: 8 kHz, 16-bit, mono linear PCM (RIFF `WAVE`, format 1, or
//! `WAVE_FORMAT_EXTENSIBLE` with the PCM sub-format), read and written whole in memory.
//!
//! [`decode`] walks the RIFF chunks with bounds checks on every length, skips chunks it does
//! not need (`LIST`, `fact`, …), and refuses anything but 8 kHz/16-bit/mono with
//! [`Error::Unsupported`](crate::Error::Unsupported); a truncated or inconsistent file gives
//! [`Error::Truncated`](crate::Error::Truncated) or [`Error::Malformed`](crate::Error::Malformed).
//! Files over [`MAX_WAV_BYTES`] are refused before they are read.
//!
//! ```
//! use cig_media::wav;
//!
//! let bytes = wav::encode(&[0, 1000, -1000, i16::MAX, i16::MIN]);
//! assert_eq!(bytes.len(), 44 + 10);
//! assert_eq!(wav::decode(&bytes).unwrap(), [0, 1000, -1000, i16::MAX, i16::MIN]);
//! ```

use crate::tone::SAMPLE_RATE;
use crate::{Error, Result};

/// Largest WAV file accepted: 64 MiB, about 70 minutes of 8 kHz 16-bit audio.
pub const MAX_WAV_BYTES: usize = 64 << 20;

/// Length of the header [`encode`] writes.
pub const HEADER_LEN: usize = 44;

const FORMAT_PCM: u16 = 1;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// The canonical 44-byte header of a 16-bit mono 8 kHz file with `samples` samples.
fn header(samples: usize) -> Result<[u8; HEADER_LEN]> {
    let data_len = samples
        .checked_mul(2)
        .filter(|&n| n <= MAX_WAV_BYTES - HEADER_LEN)
        .ok_or(Error::Unsupported("WAV data over the size cap"))? as u32;
    let mut h = [0u8; HEADER_LEN];
    let mut put = |at: usize, b: &[u8]| h[at..at + b.len()].copy_from_slice(b);
    put(0, b"RIFF");
    put(4, &(36 + data_len).to_le_bytes());
    put(8, b"WAVEfmt ");
    put(16, &16u32.to_le_bytes());
    put(20, &FORMAT_PCM.to_le_bytes());
    put(22, &1u16.to_le_bytes()); // channels
    put(24, &SAMPLE_RATE.to_le_bytes());
    put(28, &(SAMPLE_RATE * 2).to_le_bytes()); // byte rate
    put(32, &2u16.to_le_bytes()); // block align
    put(34, &16u16.to_le_bytes()); // bits per sample
    put(36, b"data");
    put(40, &data_len.to_le_bytes());
    Ok(h)
}

/// A complete WAV file holding `samples` (truncated to the first samples that fit under
/// [`MAX_WAV_BYTES`]).
pub fn encode(samples: &[i16]) -> Vec<u8> {
    let samples = &samples[..samples.len().min((MAX_WAV_BYTES - HEADER_LEN) / 2)];
    let mut out = Vec::with_capacity(HEADER_LEN + 2 * samples.len());
    // The length was capped above, so the header cannot fail.
    out.extend_from_slice(&header(samples.len()).unwrap_or([0; HEADER_LEN]));
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    b.get(at..at + 2)
        .map(|x| u16::from_le_bytes([x[0], x[1]]))
        .ok_or(Error::Truncated)
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    b.get(at..at + 4)
        .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
        .ok_or(Error::Truncated)
}

/// Checks a `fmt ` chunk body: PCM (or extensible PCM), 1 channel, 8000 Hz, 16 bits.
fn check_format(fmt: &[u8]) -> Result<()> {
    let tag = u16_at(fmt, 0)?;
    let pcm = match tag {
        FORMAT_PCM => true,
        // WAVEFORMATEXTENSIBLE: the sub-format GUID starts with the format code.
        FORMAT_EXTENSIBLE => u16_at(fmt, 24)? == FORMAT_PCM,
        _ => false,
    };
    if !pcm {
        return Err(Error::Unsupported("WAV is not linear PCM"));
    }
    if u16_at(fmt, 2)? != 1 {
        return Err(Error::Unsupported("WAV is not mono"));
    }
    if u32_at(fmt, 4)? != SAMPLE_RATE {
        return Err(Error::Unsupported("WAV sample rate is not 8000 Hz"));
    }
    if u16_at(fmt, 14)? != 16 {
        return Err(Error::Unsupported("WAV is not 16-bit"));
    }
    Ok(())
}

/// The samples of a WAV file.
pub fn decode(bytes: &[u8]) -> Result<Vec<i16>> {
    if bytes.len() > MAX_WAV_BYTES {
        return Err(Error::Unsupported("WAV file over the size cap"));
    }
    if bytes.get(..4) != Some(&b"RIFF"[..]) || bytes.get(8..12) != Some(&b"WAVE"[..]) {
        return Err(Error::Malformed("not a RIFF WAVE file"));
    }
    let mut at = 12;
    let mut format_ok = false;
    loop {
        let id = bytes.get(at..at + 4).ok_or(Error::Truncated)?;
        let len = u32_at(bytes, at + 4)? as usize;
        let body_start = at + 8;
        match id {
            b"fmt " => {
                check_format(
                    bytes
                        .get(body_start..body_start + len)
                        .ok_or(Error::Truncated)?,
                )?;
                format_ok = true;
            }
            b"data" => {
                if !format_ok {
                    return Err(Error::Malformed("WAV data before its format"));
                }
                // Writers that stream sometimes leave the length at 0 or 0xFFFFFFFF: take
                // what is there, as far as the chunk says.
                let end = body_start.saturating_add(len).min(bytes.len());
                let data = bytes.get(body_start..end).ok_or(Error::Truncated)?;
                return Ok(data
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect());
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        at = body_start
            .checked_add(len)
            .and_then(|n| n.checked_add(len & 1))
            .ok_or(Error::Truncated)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_header() {
        let w = encode(&[1, -2]);
        assert_eq!(&w[..4], b"RIFF");
        assert_eq!(u32_at(&w, 4).unwrap(), 36 + 4);
        assert_eq!(&w[8..16], b"WAVEfmt ");
        assert_eq!(u32_at(&w, 24).unwrap(), 8000);
        assert_eq!(u32_at(&w, 28).unwrap(), 16000);
        assert_eq!(u32_at(&w, 40).unwrap(), 4);
        assert_eq!(&w[44..], &[1, 0, 0xfe, 0xff]);
    }

    /// A file as other writers make it: an odd-length LIST chunk (padded) before `fmt `, an
    /// extensible format chunk, a `fact` chunk.
    #[test]
    fn skips_other_chunks_and_reads_extensible_pcm() {
        let mut w = b"RIFF\0\0\0\0WAVE".to_vec();
        w.extend_from_slice(b"LIST\x03\0\0\0abc\0");
        let mut fmt = vec![0u8; 40];
        fmt[..2].copy_from_slice(&FORMAT_EXTENSIBLE.to_le_bytes());
        fmt[2] = 1;
        fmt[4..8].copy_from_slice(&8000u32.to_le_bytes());
        fmt[14] = 16;
        fmt[24] = 1; // sub-format: PCM
        w.extend_from_slice(b"fmt \x28\0\0\0");
        w.extend_from_slice(&fmt);
        w.extend_from_slice(b"fact\x04\0\0\0\x02\0\0\0data\x04\0\0\0\x05\0\xfb\xff");
        assert_eq!(decode(&w).unwrap(), [5, -5]);
    }

    #[test]
    fn refuses_other_formats() {
        let good = encode(&[0; 4]);
        let patched = |at: usize, b: &[u8]| {
            let mut w = good.clone();
            w[at..at + b.len()].copy_from_slice(b);
            decode(&w)
        };
        assert_eq!(
            patched(22, &2u16.to_le_bytes()),
            Err(Error::Unsupported("WAV is not mono"))
        );
        assert_eq!(
            patched(24, &16000u32.to_le_bytes()),
            Err(Error::Unsupported("WAV sample rate is not 8000 Hz"))
        );
        assert_eq!(
            patched(34, &8u16.to_le_bytes()),
            Err(Error::Unsupported("WAV is not 16-bit"))
        );
        assert_eq!(
            patched(20, &3u16.to_le_bytes()),
            Err(Error::Unsupported("WAV is not linear PCM"))
        );
        assert!(patched(0, b"RIFX").is_err());
        assert_eq!(decode(&good[..30]), Err(Error::Truncated));
        // data before fmt
        let mut w = b"RIFF\0\0\0\0WAVEdata\0\0\0\0".to_vec();
        w.extend_from_slice(&good[12..36]);
        assert!(decode(&w).is_err());
    }

    #[test]
    fn streaming_writer_lengths_are_tolerated() {
        let mut w = encode(&[7, 8, 9]);
        w[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&w).unwrap(), [7, 8, 9]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trip(samples in proptest::collection::vec(any::<i16>(), 0..2000)) {
            prop_assert_eq!(decode(&encode(&samples)).unwrap(), samples);
        }

        /// Arbitrary bytes (and mutated valid files) never panic.
        #[test]
        fn never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..200),
                        flips in proptest::collection::vec((0usize..80, any::<u8>()), 0..6)) {
            let _ = decode(&bytes);
            let mut w = encode(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]);
            for (at, b) in flips {
                w[at] = b;
            }
            let _ = decode(&w);
            bytes.splice(0..0, w);
            let _ = decode(&bytes);
        }
    }
}
