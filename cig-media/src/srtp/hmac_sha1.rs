//! HMAC-SHA1 (RFC 2104) for the SRTP/SRTCP tag, on the `sha1` crate's compression function.
//!
//! The key is absorbed once: the inner (`K ^ ipad`) and outer (`K ^ opad`) chaining values are
//! kept (40 bytes), and a tag costs exactly the compressions the message needs plus one for the
//! outer hash, with no streaming buffer: full blocks are compressed straight from the packet,
//! only the last partial block (with the ROC and the padding) is assembled on the stack.

use sha1::Sha1Core;
use sha1::digest::core_api::Block;
use zeroize::Zeroize;

const BLOCK: usize = 64;
/// SHA-1's initial chaining value (FIPS 180-4 §5.3.1).
const IV: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];

/// A keyed HMAC-SHA1 for keys of at most one block (SRTP's are 20 bytes). Secret: zeroized on
/// drop, redacted in `Debug`.
#[derive(Clone)]
pub(super) struct HmacSha1 {
    inner: [u32; 5],
    outer: [u32; 5],
}

impl Drop for HmacSha1 {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

impl core::fmt::Debug for HmacSha1 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HmacSha1(<redacted>)")
    }
}

/// Compresses the whole 64-byte blocks of `data` (a multiple of 64 bytes) straight from
/// the caller's bytes.
fn compress(state: &mut [u32; 5], data: &[u8]) {
    for chunk in data.chunks_exact(BLOCK) {
        if let Ok(block) = <&[u8; BLOCK]>::try_from(chunk) {
            let block: &Block<Sha1Core> = block.into();
            sha1::compress(state, core::slice::from_ref(block));
        }
    }
}

/// The chaining value after one block of `key ^ pad` (key zero-padded to a block); the
/// key-dependent block is wiped afterwards.
fn keyed_state(key: &[u8], pad: u8) -> [u32; 5] {
    let mut bytes = [pad; BLOCK];
    for (b, k) in bytes.iter_mut().zip(key) {
        *b ^= k;
    }
    let mut block: Block<Sha1Core> = bytes.into();
    let mut state = IV;
    sha1::compress(&mut state, core::slice::from_ref(&block));
    bytes.zeroize();
    block[..].zeroize();
    state
}

impl HmacSha1 {
    /// Keys longer than a block are not needed by SRTP (RFC 3711 n_a = 160 bits) and are
    /// refused at compile time of the caller by the array type.
    pub(super) fn new(key: &[u8; 20]) -> HmacSha1 {
        HmacSha1 {
            inner: keyed_state(key, 0x36),
            outer: keyed_state(key, 0x5c),
        }
    }

    /// HMAC-SHA1 over `head ‖ tail`; `tail` is at most one block (the 4-byte ROC, or empty).
    pub(super) fn tag(&self, head: &[u8], tail: &[u8]) -> [u8; 20] {
        debug_assert!(tail.len() <= BLOCK);
        let mut state = self.inner;
        let full = head.len() / BLOCK * BLOCK;
        compress(&mut state, &head[..full]);
        // The rest of head, the tail, 0x80, zeros and the bit length (of ipad block + message)
        // fill one to three final blocks.
        let rest = &head[full..];
        let mut last = [0u8; 3 * BLOCK];
        let tail = &tail[..tail.len().min(BLOCK)];
        last[..rest.len()].copy_from_slice(rest);
        last[rest.len()..rest.len() + tail.len()].copy_from_slice(tail);
        let used = rest.len() + tail.len();
        last[used] = 0x80;
        let blocks = (used + 9).div_ceil(BLOCK);
        let bits = ((BLOCK + head.len() + tail.len()) as u64) * 8;
        last[blocks * BLOCK - 8..blocks * BLOCK].copy_from_slice(&bits.to_be_bytes());
        compress(&mut state, &last[..blocks * BLOCK]);
        // outer: H(K ^ opad ‖ inner digest)
        let mut block = [0u8; BLOCK];
        for (d, w) in block.chunks_exact_mut(4).zip(state) {
            d.copy_from_slice(&w.to_be_bytes());
        }
        block[20] = 0x80;
        block[BLOCK - 8..].copy_from_slice(&(((BLOCK + 20) as u64) * 8).to_be_bytes());
        let mut out_state = self.outer;
        compress(&mut out_state, &block);
        let mut tag = [0u8; 20];
        for (d, w) in tag.chunks_exact_mut(4).zip(out_state) {
            d.copy_from_slice(&w.to_be_bytes());
        }
        state.zeroize();
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::HmacSha1;
    use hmac::{Hmac, Mac};
    use proptest::prelude::*;

    /// The `hmac` crate as the reference path.
    fn reference(key: &[u8; 20], head: &[u8], tail: &[u8]) -> [u8; 20] {
        let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).expect("any key length");
        mac.update(head);
        mac.update(tail);
        mac.finalize().into_bytes().into()
    }

    #[test]
    fn rfc2202_case_1_and_padding_boundaries() {
        // RFC 2202 test case 1: key 0x0b × 20, "Hi There".
        let key = [0x0b; 20];
        assert_eq!(
            hex::encode(HmacSha1::new(&key).tag(b"Hi There", &[])),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
        // every length around the one- and two-block padding boundaries
        for len in 0..200 {
            let head: Vec<u8> = (0..len).map(|i| i as u8).collect();
            for tail in [&[][..], &[1, 2, 3, 4][..]] {
                assert_eq!(
                    HmacSha1::new(&key).tag(&head, tail),
                    reference(&key, &head, tail),
                    "len {len} tail {}",
                    tail.len()
                );
            }
        }
    }

    proptest! {
        #[test]
        fn matches_the_hmac_crate(
            key in any::<[u8; 20]>(),
            head in proptest::collection::vec(any::<u8>(), 0..1500),
            tail in proptest::collection::vec(any::<u8>(), 0..=64),
        ) {
            prop_assert_eq!(HmacSha1::new(&key).tag(&head, &tail), reference(&key, &head, &tail));
        }
    }
}
