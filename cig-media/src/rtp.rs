//! RTP (RFC 3550) fixed-header parsing and in-place header rewriting.
//!
//! [`RtpHeader::parse`] reads only the header (fixed part, CSRCs, extension), so it also works
//! on SRTP packets whose payload and padding are still encrypted. [`RtpHeader::payload_end`]
//! applies the padding rule once the payload is plaintext. The `set_*` functions rewrite header
//! fields of a packet that [`RtpHeader::parse`] accepted.

use crate::{Error, Result};

/// Length of the fixed RTP header.
pub const FIXED_HEADER_LEN: usize = 12;

/// The parsed RTP header of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// The P bit: the payload ends with padding whose last octet is its length.
    pub padding: bool,
    /// The M bit.
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Number of CSRCs after the fixed header.
    pub csrc_count: u8,
    /// Header length including CSRCs and the extension: the payload starts here.
    pub header_len: usize,
}

impl RtpHeader {
    /// Parses the header of `pkt` (the whole packet, or at least its header).
    ///
    /// Checks version 2, that the CSRC list and the header extension fit, and that the payload
    /// type is not in the RTCP range 72–76 (RFC 5761 demultiplexing).
    pub fn parse(pkt: &[u8]) -> Result<RtpHeader> {
        let fixed: &[u8; FIXED_HEADER_LEN] = pkt
            .get(..FIXED_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(Error::Truncated)?;
        if fixed[0] >> 6 != 2 {
            return Err(Error::Malformed("RTP version is not 2"));
        }
        let csrc_count = fixed[0] & 0x0f;
        let extension = fixed[0] & 0x10 != 0;
        let payload_type = fixed[1] & 0x7f;
        if (72..=76).contains(&payload_type) {
            return Err(Error::Malformed("RTCP packet type in RTP payload type"));
        }
        let mut header_len = FIXED_HEADER_LEN + 4 * usize::from(csrc_count);
        if extension {
            let ext = pkt
                .get(header_len..header_len + 4)
                .ok_or(Error::Truncated)?;
            header_len += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        }
        if pkt.len() < header_len {
            return Err(Error::Truncated);
        }
        Ok(RtpHeader {
            padding: fixed[0] & 0x20 != 0,
            marker: fixed[1] & 0x80 != 0,
            payload_type,
            sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
            timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
            ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
            csrc_count,
            header_len,
        })
    }

    /// End of the payload in the plaintext packet `pkt` (excluding padding): the payload is
    /// `pkt[self.header_len..end]`.
    pub fn payload_end(&self, pkt: &[u8]) -> Result<usize> {
        if !self.padding {
            return Ok(pkt.len());
        }
        let pad = usize::from(*pkt.last().ok_or(Error::Truncated)?);
        if pad == 0 || pkt.len() < self.header_len + pad {
            return Err(Error::Malformed("bad RTP padding length"));
        }
        Ok(pkt.len() - pad)
    }
}

/// Whether `pkt` looks like RTCP rather than RTP when both share a port (RFC 5761 §4: the second
/// octet is an RTCP packet type 192–223).
pub fn is_rtcp(pkt: &[u8]) -> bool {
    pkt.len() >= 8 && pkt[0] >> 6 == 2 && (192..=223).contains(&pkt[1])
}

/// Sets the marker bit of a parsed packet. Packets shorter than the fixed header are left alone.
pub fn set_marker(pkt: &mut [u8], marker: bool) {
    if let Some(b) = pkt.get_mut(1) {
        *b = (*b & 0x7f) | (u8::from(marker) << 7);
    }
}

/// Sets the payload type (low 7 bits) of a parsed packet, keeping the marker bit.
pub fn set_payload_type(pkt: &mut [u8], payload_type: u8) {
    if let Some(b) = pkt.get_mut(1) {
        *b = (*b & 0x80) | (payload_type & 0x7f);
    }
}

/// Sets the sequence number of a parsed packet.
pub fn set_sequence(pkt: &mut [u8], sequence: u16) {
    write_be(pkt, 2, &sequence.to_be_bytes());
}

/// Sets the timestamp of a parsed packet.
pub fn set_timestamp(pkt: &mut [u8], timestamp: u32) {
    write_be(pkt, 4, &timestamp.to_be_bytes());
}

/// Sets the SSRC of a parsed packet.
pub fn set_ssrc(pkt: &mut [u8], ssrc: u32) {
    write_be(pkt, 8, &ssrc.to_be_bytes());
}

fn write_be(pkt: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = pkt.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

/// Writes a fixed 12-byte RTP header (no CSRC, no extension, no padding) at the start of `buf`.
pub fn write_header(
    buf: &mut [u8],
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) -> Result<usize> {
    let h = buf
        .get_mut(..FIXED_HEADER_LEN)
        .ok_or(Error::BufferTooSmall {
            needed: FIXED_HEADER_LEN,
        })?;
    h[0] = 0x80;
    h[1] = (u8::from(marker) << 7) | (payload_type & 0x7f);
    h[2..4].copy_from_slice(&sequence.to_be_bytes());
    h[4..8].copy_from_slice(&timestamp.to_be_bytes());
    h[8..12].copy_from_slice(&ssrc.to_be_bytes());
    Ok(FIXED_HEADER_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fixed_csrc_and_extension() {
        // V=2 X=1 CC=1, M=1 PT=0, seq 0x1234, ts 0xdeadbeef, ssrc 0x01020304, one CSRC,
        // extension profile 0xbede with one word, 2 payload bytes.
        let pkt = [
            0x91, 0x80, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 9, 9, 9, 9, 0xbe, 0xde, 0,
            1, 0x10, 0xaa, 0, 0, 0x55, 0x66,
        ];
        let h = RtpHeader::parse(&pkt).unwrap();
        assert_eq!(
            h,
            RtpHeader {
                padding: false,
                marker: true,
                payload_type: 0,
                sequence: 0x1234,
                timestamp: 0xdeadbeef,
                ssrc: 0x01020304,
                csrc_count: 1,
                header_len: 24,
            }
        );
        assert_eq!(
            &pkt[h.header_len..h.payload_end(&pkt).unwrap()],
            &[0x55, 0x66]
        );
        assert_eq!(RtpHeader::parse(&pkt[..23]), Err(Error::Truncated));
    }

    #[test]
    fn padding_rules() {
        let mut pkt = [0xa0, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 7, 7, 0, 2];
        let h = RtpHeader::parse(&pkt).unwrap();
        assert_eq!(h.payload_end(&pkt), Ok(14));
        pkt[15] = 0;
        assert!(h.payload_end(&pkt).is_err());
        pkt[15] = 5;
        assert!(h.payload_end(&pkt).is_err());
    }

    #[test]
    fn rejects_non_rtp() {
        assert!(RtpHeader::parse(&[0x40; 12]).is_err());
        let rtcp_rr = [0x80, 201, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
        assert!(RtpHeader::parse(&rtcp_rr).is_err());
        assert!(is_rtcp(&rtcp_rr));
        assert!(!is_rtcp(&[0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]));
    }

    #[test]
    fn rewrites_in_place() {
        let mut pkt = [0u8; 20];
        write_header(&mut pkt, false, 0, 1, 2, 3).unwrap();
        set_marker(&mut pkt, true);
        set_payload_type(&mut pkt, 101);
        set_sequence(&mut pkt, 0xfffe);
        set_timestamp(&mut pkt, 0x8000_0001);
        set_ssrc(&mut pkt, 0xcafe_babe);
        let h = RtpHeader::parse(&pkt).unwrap();
        assert!(h.marker);
        assert_eq!(
            (h.payload_type, h.sequence, h.timestamp, h.ssrc),
            (101, 0xfffe, 0x8000_0001, 0xcafe_babe)
        );
        set_payload_type(&mut pkt, 8);
        assert!(RtpHeader::parse(&pkt).unwrap().marker);
    }
}
