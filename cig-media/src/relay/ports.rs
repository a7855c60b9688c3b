//! RTP/RTCP port-pair allocation from an `rtp_port_range`: even RTP port, RTCP on the next.
//!
//! Sans-IO: the caller passes a closure that tries to bind a candidate pair, so ports another
//! process holds are skipped. Allocation rotates through the range (a freed pair is not handed
//! out again until the rest of the range has been offered), so late packets of an ended call do
//! not reach the next one.
//!
//! ```
//! use cig_media::relay::ports::PortAllocator;
//! use cig_media::control::PortRange;
//!
//! let mut ports = PortAllocator::new();
//! let range = PortRange::new(20000, 20003).unwrap();
//! assert_eq!(ports.allocate(range, |_| true), Some(20000));
//! assert_eq!(ports.allocate(range, |_| true), Some(20002));
//! assert_eq!(ports.allocate(range, |_| true), None);
//! ports.release(20000);
//! assert_eq!(ports.allocate(range, |_| true), Some(20000));
//! ```

use crate::control::PortRange;

/// The set of RTP ports in use (one bit per even port) and a rotating cursor.
#[derive(Debug, Clone)]
pub struct PortAllocator {
    used: Vec<u64>,
    cursor: u16,
    in_use: usize,
}

impl Default for PortAllocator {
    fn default() -> PortAllocator {
        PortAllocator::new()
    }
}

impl PortAllocator {
    /// Nothing allocated.
    pub fn new() -> PortAllocator {
        PortAllocator {
            used: vec![0; 32_768 / 64],
            cursor: 0,
            in_use: 0,
        }
    }

    fn bit(port: u16) -> (usize, u64) {
        let pair = usize::from(port / 2);
        (pair / 64, 1u64 << (pair % 64))
    }

    /// Whether `rtp_port` is allocated.
    pub fn is_used(&self, rtp_port: u16) -> bool {
        let (w, b) = Self::bit(rtp_port);
        self.used[w] & b != 0
    }

    /// Pairs currently allocated.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// The next free even port `p` in `range` (with `p + 1` also in range) for which
    /// `try_bind(p)` succeeds, starting after the last allocation; `None` when every free pair
    /// was tried.
    pub fn allocate(
        &mut self,
        range: PortRange,
        mut try_bind: impl FnMut(u16) -> bool,
    ) -> Option<u16> {
        let first = range.low.checked_add(range.low & 1)?;
        // The last even port whose RTCP partner is still in range.
        let last = range.high.checked_sub(1).map(|h| h & !1)?;
        if first > last || first == 0 {
            return None;
        }
        let pairs = usize::from((last - first) / 2) + 1;
        let start = if (first..=last).contains(&self.cursor) {
            self.cursor & !1
        } else {
            first
        };
        let offset = usize::from((start - first) / 2);
        for i in 0..pairs {
            let idx = (offset + i) % pairs;
            // idx < pairs <= 32768, so this fits u16 and stays <= last.
            let port = first + 2 * idx as u16;
            if self.is_used(port) {
                continue;
            }
            if try_bind(port) {
                let (w, b) = Self::bit(port);
                self.used[w] |= b;
                self.in_use += 1;
                self.cursor = port.saturating_add(2);
                return Some(port);
            }
        }
        None
    }

    /// Frees the pair of `rtp_port` (no effect if it was free).
    pub fn release(&mut self, rtp_port: u16) {
        let (w, b) = Self::bit(rtp_port);
        if self.used[w] & b != 0 {
            self.used[w] &= !b;
            self.in_use -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_in_range_and_rotate() {
        let mut a = PortAllocator::new();
        let r = PortRange::new(1025, 1032).unwrap(); // pairs 1026, 1028, 1030 (1032 has no 1033)
        let got: Vec<_> = (0..4).map(|_| a.allocate(r, |_| true)).collect();
        assert_eq!(got, [Some(1026), Some(1028), Some(1030), None]);
        assert_eq!(a.in_use(), 3);
        a.release(1026);
        a.release(1028);
        a.release(1028);
        assert_eq!(a.in_use(), 1);
        // Rotation: the cursor wrapped, the lowest free pair comes next.
        assert_eq!(a.allocate(r, |_| true), Some(1026));
        assert_eq!(a.allocate(r, |_| true), Some(1028));
    }

    #[test]
    fn busy_ports_are_skipped() {
        let mut a = PortAllocator::new();
        let r = PortRange::new(40000, 40009).unwrap();
        assert_eq!(a.allocate(r, |p| p != 40000 && p != 40002), Some(40004));
        assert!(!a.is_used(40000));
        assert_eq!(a.allocate(r, |_| false), None);
    }

    #[test]
    fn top_of_the_port_space_is_handled() {
        let mut a = PortAllocator::new();
        let r = PortRange::new(65532, 65535).unwrap();
        assert_eq!(a.allocate(r, |_| true), Some(65532));
        assert_eq!(a.allocate(r, |_| true), Some(65534));
        assert_eq!(a.allocate(r, |_| true), None);
    }
}
