//! RTCP (RFC 3550 §6): parsing of compound packets into SR, RR, BYE (and any other type as raw
//! bytes), emitting SR/RR/BYE, and in-place SSRC rewriting for relaying reports between legs.
//!
//! Parsing borrows the packet; report blocks and SSRC lists are iterated without allocation.

use crate::{Error, Result};

/// Packet type of a sender report.
pub const SR: u8 = 200;
/// Packet type of a receiver report.
pub const RR: u8 = 201;
/// Packet type of source description items.
pub const SDES: u8 = 202;
/// Packet type of a goodbye.
pub const BYE: u8 = 203;

const REPORT_BLOCK_LEN: usize = 24;
const SENDER_INFO_LEN: usize = 20;
/// At most 31 report blocks or sources fit the 5-bit count field.
const MAX_COUNT: usize = 31;

/// The sender-info section of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// NTP timestamp (64-bit fixed point).
    pub ntp_timestamp: u64,
    /// RTP timestamp corresponding to the NTP timestamp.
    pub rtp_timestamp: u32,
    /// Packets sent.
    pub packet_count: u32,
    /// Payload octets sent.
    pub octet_count: u32,
}

/// One reception report block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the last report (fixed point /256).
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_sequence: u32,
    /// Interarrival jitter.
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP timestamp.
    pub last_sr: u32,
    /// Delay since the last SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn parse(b: &[u8]) -> ReportBlock {
        let lost = u32_at(b, 4) & 0x00ff_ffff;
        // Sign-extend the 24-bit count.
        let cumulative_lost = ((lost << 8) as i32) >> 8;
        ReportBlock {
            ssrc: u32_at(b, 0),
            fraction_lost: b.get(4).copied().unwrap_or(0),
            cumulative_lost,
            highest_sequence: u32_at(b, 8),
            jitter: u32_at(b, 12),
            last_sr: u32_at(b, 16),
            delay_since_last_sr: u32_at(b, 20),
        }
    }

    fn write(&self, b: &mut [u8]) {
        let lost =
            (self.cumulative_lost as u32) & 0x00ff_ffff | u32::from(self.fraction_lost) << 24;
        for (i, v) in [
            self.ssrc,
            lost,
            self.highest_sequence,
            self.jitter,
            self.last_sr,
            self.delay_since_last_sr,
        ]
        .into_iter()
        .enumerate()
        {
            b[4 * i..4 * i + 4].copy_from_slice(&v.to_be_bytes());
        }
    }
}

/// The report blocks of an SR or RR.
#[derive(Debug, Clone)]
pub struct ReportBlocks<'a>(std::slice::ChunksExact<'a, u8>);

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        self.0.next().map(ReportBlock::parse)
    }
}

/// The SSRC/CSRC list of a BYE.
#[derive(Debug, Clone)]
pub struct Sources<'a>(std::slice::ChunksExact<'a, u8>);

impl Iterator for Sources<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        self.0.next().map(|b| u32_at(b, 0))
    }
}

/// One packet of a compound RTCP packet.
#[derive(Debug, Clone)]
pub enum RtcpPacket<'a> {
    /// SR: sender info and report blocks.
    SenderReport {
        /// The sender.
        ssrc: u32,
        /// What it sent.
        info: SenderInfo,
        /// What it received.
        reports: ReportBlocks<'a>,
    },
    /// RR: report blocks.
    ReceiverReport {
        /// The reporter.
        ssrc: u32,
        /// What it received.
        reports: ReportBlocks<'a>,
    },
    /// BYE: the sources leaving and an optional reason.
    Bye {
        /// The sources.
        sources: Sources<'a>,
        /// The reason text, if any.
        reason: Option<&'a [u8]>,
    },
    /// Any other packet type (SDES, APP, feedback…), unparsed.
    Other {
        /// Packet type.
        packet_type: u8,
        /// The 5-bit count/format field.
        count: u8,
        /// Everything after the 4-byte header.
        body: &'a [u8],
    },
}

/// Iterator over the packets of a compound RTCP packet; yields an error (then stops) at the first
/// malformed packet.
#[derive(Debug, Clone)]
pub struct Packets<'a> {
    rest: &'a [u8],
}

/// Parses the compound RTCP packet `compound`.
pub fn packets(compound: &[u8]) -> Packets<'_> {
    Packets { rest: compound }
}

/// Splits off the first packet: (type, count, whole packet incl. header, rest).
fn split(rest: &[u8]) -> Result<(u8, u8, &[u8], &[u8])> {
    if rest.len() < 4 {
        return Err(Error::Truncated);
    }
    if rest[0] >> 6 != 2 {
        return Err(Error::Malformed("RTCP version is not 2"));
    }
    let len = 4 * (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1);
    if rest.len() < len {
        return Err(Error::Truncated);
    }
    let (pkt, rest) = rest.split_at(len);
    Ok((pkt[1], pkt[0] & 0x1f, pkt, rest))
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<RtcpPacket<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = split(self.rest).and_then(|(pt, count, pkt, rest)| {
            self.rest = rest;
            parse_one(pt, count, pkt)
        });
        if parsed.is_err() {
            self.rest = &[];
        }
        Some(parsed)
    }
}

fn parse_one(pt: u8, count: u8, pkt: &[u8]) -> Result<RtcpPacket<'_>> {
    let n = usize::from(count);
    let blocks = |at: usize| -> Result<ReportBlocks<'_>> {
        let end = at + n * REPORT_BLOCK_LEN;
        let b = pkt.get(at..end).ok_or(Error::Truncated)?;
        Ok(ReportBlocks(b.chunks_exact(REPORT_BLOCK_LEN)))
    };
    match pt {
        SR => {
            let info = pkt.get(8..8 + SENDER_INFO_LEN).ok_or(Error::Truncated)?;
            Ok(RtcpPacket::SenderReport {
                ssrc: u32_at(pkt, 4),
                info: SenderInfo {
                    ntp_timestamp: u64::from(u32_at(info, 0)) << 32 | u64::from(u32_at(info, 4)),
                    rtp_timestamp: u32_at(info, 8),
                    packet_count: u32_at(info, 12),
                    octet_count: u32_at(info, 16),
                },
                reports: blocks(8 + SENDER_INFO_LEN)?,
            })
        }
        RR => {
            if pkt.len() < 8 {
                return Err(Error::Truncated);
            }
            Ok(RtcpPacket::ReceiverReport {
                ssrc: u32_at(pkt, 4),
                reports: blocks(8)?,
            })
        }
        BYE => {
            let end = 4 + 4 * n;
            let list = pkt.get(4..end).ok_or(Error::Truncated)?;
            let reason = match pkt.get(end) {
                Some(&len) => {
                    let text = pkt
                        .get(end + 1..end + 1 + usize::from(len))
                        .ok_or(Error::Truncated)?;
                    Some(text)
                }
                None => None,
            };
            Ok(RtcpPacket::Bye {
                sources: Sources(list.chunks_exact(4)),
                reason,
            })
        }
        _ => Ok(RtcpPacket::Other {
            packet_type: pt,
            count,
            body: &pkt[4..],
        }),
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(w) => u32::from_be_bytes([w[0], w[1], w[2], w[3]]),
        None => 0,
    }
}

fn header(buf: &mut [u8], count: usize, pt: u8, len: usize) {
    buf[0] = 0x80 | count as u8;
    buf[1] = pt;
    buf[2..4].copy_from_slice(&((len / 4 - 1) as u16).to_be_bytes());
}

fn room(buf: &mut [u8], needed: usize) -> Result<&mut [u8]> {
    buf.get_mut(..needed)
        .ok_or(Error::BufferTooSmall { needed })
}

/// Writes an SR at the start of `buf`; returns its length. At most 31 report blocks.
pub fn write_sender_report(
    buf: &mut [u8],
    ssrc: u32,
    info: &SenderInfo,
    reports: &[ReportBlock],
) -> Result<usize> {
    if reports.len() > MAX_COUNT {
        return Err(Error::Malformed("more than 31 report blocks"));
    }
    let len = 8 + SENDER_INFO_LEN + REPORT_BLOCK_LEN * reports.len();
    let b = room(buf, len)?;
    header(b, reports.len(), SR, len);
    b[4..8].copy_from_slice(&ssrc.to_be_bytes());
    b[8..16].copy_from_slice(&info.ntp_timestamp.to_be_bytes());
    b[16..20].copy_from_slice(&info.rtp_timestamp.to_be_bytes());
    b[20..24].copy_from_slice(&info.packet_count.to_be_bytes());
    b[24..28].copy_from_slice(&info.octet_count.to_be_bytes());
    for (r, out) in reports
        .iter()
        .zip(b[28..].chunks_exact_mut(REPORT_BLOCK_LEN))
    {
        r.write(out);
    }
    Ok(len)
}

/// Writes an RR at the start of `buf`; returns its length. At most 31 report blocks.
pub fn write_receiver_report(buf: &mut [u8], ssrc: u32, reports: &[ReportBlock]) -> Result<usize> {
    if reports.len() > MAX_COUNT {
        return Err(Error::Malformed("more than 31 report blocks"));
    }
    let len = 8 + REPORT_BLOCK_LEN * reports.len();
    let b = room(buf, len)?;
    header(b, reports.len(), RR, len);
    b[4..8].copy_from_slice(&ssrc.to_be_bytes());
    for (r, out) in reports
        .iter()
        .zip(b[8..].chunks_exact_mut(REPORT_BLOCK_LEN))
    {
        r.write(out);
    }
    Ok(len)
}

/// Writes a BYE for `sources` (at most 31) with an optional reason (at most 255 bytes).
pub fn write_bye(buf: &mut [u8], sources: &[u32], reason: Option<&[u8]>) -> Result<usize> {
    if sources.len() > MAX_COUNT {
        return Err(Error::Malformed("more than 31 sources"));
    }
    let reason_len = match reason {
        Some(r) if r.len() > 255 => return Err(Error::Malformed("BYE reason over 255 bytes")),
        Some(r) => 1 + r.len(),
        None => 0,
    };
    let body = 4 * sources.len() + reason_len;
    let len = 4 + body.div_ceil(4) * 4;
    let b = room(buf, len)?;
    b.fill(0);
    header(b, sources.len(), BYE, len);
    for (s, out) in sources.iter().zip(b[4..].chunks_exact_mut(4)) {
        out.copy_from_slice(&s.to_be_bytes());
    }
    if let Some(r) = reason {
        let at = 4 + 4 * sources.len();
        b[at] = r.len() as u8;
        b[at + 1..at + 1 + r.len()].copy_from_slice(r);
    }
    Ok(len)
}

/// Rewrites, in place, every SSRC of a compound packet through `map`: the sender of SR/RR,
/// the source of each report block, the sources of a BYE and the chunk SSRCs of an SDES.
/// Other packet types are left alone. Nothing is changed if the packet is malformed.
pub fn rewrite_ssrcs(compound: &mut [u8], mut map: impl FnMut(u32) -> u32) -> Result<()> {
    // Validate the whole compound first so a malformed packet is not half rewritten.
    for p in packets(compound) {
        p?;
    }
    let mut at = 0;
    while at < compound.len() {
        let (pt, count, pkt, _) = split(&compound[at..])?;
        let (len, n) = (pkt.len(), usize::from(count));
        let offsets: &mut dyn Iterator<Item = usize> = match pt {
            SR => &mut std::iter::once(4).chain((0..n).map(|i| 28 + REPORT_BLOCK_LEN * i)),
            RR => &mut std::iter::once(4).chain((0..n).map(|i| 8 + REPORT_BLOCK_LEN * i)),
            BYE => &mut (0..n).map(|i| 4 + 4 * i),
            _ => &mut std::iter::empty(),
        };
        let pkt = &mut compound[at..at + len];
        for off in offsets {
            map_word(pkt, off, &mut map);
        }
        if pt == SDES {
            rewrite_sdes_chunks(pkt, n, &mut map);
        }
        at += len;
    }
    Ok(())
}

fn map_word(pkt: &mut [u8], off: usize, map: &mut impl FnMut(u32) -> u32) {
    if let Some(w) = pkt.get_mut(off..off + 4) {
        let v = map(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
        w.copy_from_slice(&v.to_be_bytes());
    }
}

/// SDES chunks: SSRC, then items (type, length, text) up to a zero type, padded to 32 bits.
fn rewrite_sdes_chunks(pkt: &mut [u8], chunks: usize, map: &mut impl FnMut(u32) -> u32) {
    let mut at = 4;
    for _ in 0..chunks {
        if at + 4 > pkt.len() {
            return;
        }
        map_word(pkt, at, map);
        at += 4;
        while let Some(&item) = pkt.get(at) {
            if item == 0 {
                break;
            }
            at += 2 + usize::from(pkt.get(at + 1).copied().unwrap_or(0));
        }
        // The terminating zero octet, then up to the next 32-bit boundary.
        at = (at + 1).div_ceil(4) * 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(ssrc: u32) -> ReportBlock {
        ReportBlock {
            ssrc,
            fraction_lost: 12,
            cumulative_lost: -3,
            highest_sequence: 0x0001_0010,
            jitter: 44,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 65536,
        }
    }

    #[test]
    fn sr_rr_bye_round_trip() {
        let mut buf = [0u8; 256];
        let info = SenderInfo {
            ntp_timestamp: 0xe000_0000_8000_0000,
            rtp_timestamp: 160,
            packet_count: 50,
            octet_count: 8000,
        };
        let mut n = write_sender_report(&mut buf, 0xaaaa, &info, &[block(1), block(2)]).unwrap();
        n += write_receiver_report(&mut buf[n..], 0xbbbb, &[block(3)]).unwrap();
        n += write_bye(&mut buf[n..], &[0xaaaa, 0xbbbb], Some(b"hangup")).unwrap();
        assert_eq!(n % 4, 0);
        let parsed: Vec<_> = packets(&buf[..n]).collect::<Result<_>>().unwrap();
        assert_eq!(parsed.len(), 3);
        match &parsed[0] {
            RtcpPacket::SenderReport {
                ssrc,
                info: i,
                reports,
            } => {
                assert_eq!((*ssrc, *i), (0xaaaa, info));
                assert_eq!(reports.clone().collect::<Vec<_>>(), [block(1), block(2)]);
            }
            other => panic!("{other:?}"),
        }
        match &parsed[1] {
            RtcpPacket::ReceiverReport { ssrc, reports } => {
                assert_eq!(*ssrc, 0xbbbb);
                assert_eq!(reports.clone().collect::<Vec<_>>(), [block(3)]);
            }
            other => panic!("{other:?}"),
        }
        match &parsed[2] {
            RtcpPacket::Bye { sources, reason } => {
                assert_eq!(sources.clone().collect::<Vec<_>>(), [0xaaaa, 0xbbbb]);
                assert_eq!(*reason, Some(&b"hangup"[..]));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rewrites_every_ssrc_including_sdes() {
        let mut buf = [0u8; 256];
        let mut n = write_receiver_report(&mut buf, 1, &[block(2)]).unwrap();
        // SDES, one chunk: SSRC 1, CNAME "ab", end, padding.
        let sdes = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 2, b'a', b'b', 0, 0, 0, 0];
        let sdes = &sdes[..12];
        buf[n..n + sdes.len()].copy_from_slice(sdes);
        buf[n + 3] = 2;
        n += sdes.len();
        n += write_bye(&mut buf[n..], &[1], None).unwrap();
        rewrite_ssrcs(&mut buf[..n], |s| s + 100).unwrap();
        let parsed: Vec<_> = packets(&buf[..n]).collect::<Result<_>>().unwrap();
        let RtcpPacket::ReceiverReport { ssrc, mut reports } = parsed[0].clone() else {
            panic!()
        };
        assert_eq!((ssrc, reports.next().unwrap().ssrc), (101, 102));
        assert_eq!(u32_at(&buf, 32 + 4), 101, "SDES chunk SSRC");
        let RtcpPacket::Bye { mut sources, .. } = parsed[2].clone() else {
            panic!()
        };
        assert_eq!(sources.next(), Some(101));
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        assert!(matches!(
            packets(&[0x80, 200, 0]).next(),
            Some(Err(Error::Truncated))
        ));
        // Length field larger than the data.
        assert!(
            packets(&[0x80, 201, 0, 9, 0, 0, 0, 1])
                .next()
                .unwrap()
                .is_err()
        );
        // RR claiming one block without the block.
        assert!(
            packets(&[0x81, 201, 0, 1, 0, 0, 0, 1])
                .next()
                .unwrap()
                .is_err()
        );
        let mut bad = [0x81, 201, 0, 1, 0, 0, 0, 1];
        assert!(rewrite_ssrcs(&mut bad, |s| s + 1).is_err());
        assert_eq!(bad, [0x81, 201, 0, 1, 0, 0, 0, 1]);
        assert!(write_bye(&mut [0u8; 4], &[1], None).is_err());
    }
}
