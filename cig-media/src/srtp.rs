//! SRTP and SRTCP (RFC 3711) with AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32 and
//! AEAD_AES_128_GCM (RFC 7714).
//!
//! An [`SrtpContext`] holds the session keys of one direction (derived once from a
//! [`MasterKey`] with key derivation rate 0; the AES key schedules, the keyed HMAC-SHA1 state and
//! the GCM key are kept expanded) and per-SSRC stream state: the highest index seen (which gives
//! the ROC and `s_l` of RFC 3711 §3.3.1), a 128-packet replay window and the SRTCP index.
//!
//! All operations work in place on a caller buffer: `buf[..len]` holds the packet and the
//! function returns the new length. Protect needs `buf.len() >= len + overhead`. Unprotect
//! verifies the tag (in constant time) before it decrypts or touches any stream state, so a
//! forged or replayed packet leaves the context unchanged.

use std::fmt;

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Tag};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::rtp::RtpHeader;
use crate::{Error, Result};

mod hmac_sha1;
use hmac_sha1::HmacSha1;

/// Length of an SRTP master key (all supported profiles use AES-128).
pub const MASTER_KEY_LEN: usize = 16;
/// Largest overhead any profile adds to an RTP packet (the GCM tag).
pub const MAX_RTP_OVERHEAD: usize = 16;
/// Largest overhead any profile adds to an RTCP packet (GCM tag + E/index word).
pub const MAX_RTCP_OVERHEAD: usize = 20;
/// Size of the replay window, in packets.
pub const REPLAY_WINDOW: u64 = 128;
/// SRTP streams (SSRCs) tracked per context; the least recently used is replaced.
const STREAMS: usize = 2;

/// An SRTP protection profile (RFC 4568 / RFC 5764 / RFC 7714 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SrtpProfile {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag.
    Aes128CmHmacSha1_80,
    /// AES-128 counter mode, HMAC-SHA1 with a 32-bit tag on SRTP (80-bit on SRTCP).
    Aes128CmHmacSha1_32,
    /// AES-128 in GCM mode with a 128-bit tag (RFC 7714).
    AeadAes128Gcm,
}

impl SrtpProfile {
    /// Length of the master salt (14 bytes for AES-CM, 12 for GCM).
    pub fn master_salt_len(self) -> usize {
        match self {
            SrtpProfile::AeadAes128Gcm => 12,
            _ => 14,
        }
    }

    /// Bytes protect adds to an RTP packet.
    pub fn rtp_overhead(self) -> usize {
        match self {
            SrtpProfile::Aes128CmHmacSha1_80 => 10,
            SrtpProfile::Aes128CmHmacSha1_32 => 4,
            SrtpProfile::AeadAes128Gcm => 16,
        }
    }

    /// Bytes protect adds to an RTCP packet (tag plus the E/index word).
    pub fn rtcp_overhead(self) -> usize {
        match self {
            SrtpProfile::AeadAes128Gcm => 20,
            _ => 14,
        }
    }

    /// The SDES crypto-suite / DTLS-SRTP profile name.
    pub fn name(self) -> &'static str {
        match self {
            SrtpProfile::Aes128CmHmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpProfile::Aes128CmHmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            SrtpProfile::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    /// Looks a profile up by [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<SrtpProfile> {
        [
            SrtpProfile::Aes128CmHmacSha1_80,
            SrtpProfile::Aes128CmHmacSha1_32,
            SrtpProfile::AeadAes128Gcm,
        ]
        .into_iter()
        .find(|p| p.name() == name)
    }
}

/// An SRTP master key and master salt for one profile. Zeroized on drop, redacted in `Debug`.
#[derive(Clone)]
pub struct MasterKey {
    profile: SrtpProfile,
    key: Zeroizing<[u8; MASTER_KEY_LEN]>,
    /// Left-aligned, zero-padded to the 112-bit KDF salt (a 96-bit GCM salt gets two zero bytes,
    /// as libsrtp does).
    salt: Zeroizing<[u8; 14]>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("profile", &self.profile)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl MasterKey {
    /// A master key for `profile`; `key` must be 16 bytes, `salt` 14 (AES-CM) or 12 (GCM).
    pub fn new(profile: SrtpProfile, key: &[u8], salt: &[u8]) -> Result<MasterKey> {
        let key: [u8; MASTER_KEY_LEN] = key.try_into().map_err(|_| Error::KeyLength {
            expected: MASTER_KEY_LEN,
            got: key.len(),
        })?;
        if salt.len() != profile.master_salt_len() {
            return Err(Error::KeyLength {
                expected: profile.master_salt_len(),
                got: salt.len(),
            });
        }
        let mut padded = Zeroizing::new([0u8; 14]);
        padded[..salt.len()].copy_from_slice(salt);
        Ok(MasterKey {
            profile,
            key: Zeroizing::new(key),
            salt: padded,
        })
    }

    /// A master key from the concatenation key ‖ salt (the SDES inline / libsrtp layout).
    pub fn from_concatenated(profile: SrtpProfile, key_and_salt: &[u8]) -> Result<MasterKey> {
        let expected = MASTER_KEY_LEN + profile.master_salt_len();
        if key_and_salt.len() != expected {
            return Err(Error::KeyLength {
                expected,
                got: key_and_salt.len(),
            });
        }
        let (key, salt) = key_and_salt.split_at(MASTER_KEY_LEN);
        MasterKey::new(profile, key, salt)
    }

    /// The profile this key is for.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }
}

/// RFC 3711 key derivation labels.
#[derive(Clone, Copy)]
enum Label {
    RtpEncryption = 0,
    RtpAuth = 1,
    RtpSalt = 2,
    RtcpEncryption = 3,
    RtcpAuth = 4,
    RtcpSalt = 5,
}

/// The AES-CM key derivation function of RFC 3711 §4.3 with kdr = 0 (so r = 0): fills `out`
/// with the keystream for IV = (master_salt XOR label·2^48)·2^16.
fn derive(master: &Aes128, master_salt: &[u8; 14], label: Label, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(master_salt);
    iv[7] ^= label as u8;
    out.fill(0);
    aes_cm_xor(master, &iv, out);
    iv.zeroize();
}

/// XORs `data` with the AES counter-mode keystream of RFC 3711 §4.1.1 starting at the 128-bit
/// `iv` (whose low 16 bits are zero; the block counter is added there). At most 2^16 blocks.
fn aes_cm_xor(cipher: &Aes128, iv: &[u8; 16], data: &mut [u8]) {
    // 10 blocks (160 bytes) per call: a G.711 frame's keystream goes through AES-NI's
    // pipeline in one batch.
    const PAR: usize = 10;
    let iv_block = aes::Block::from(*iv);
    let mut blocks = [iv_block; PAR];
    let base = u16::from_be_bytes([iv[14], iv[15]]);
    for (chunk_no, chunk) in data.chunks_mut(16 * PAR).enumerate() {
        let n = chunk.len().div_ceil(16);
        for (j, block) in blocks[..n].iter_mut().enumerate() {
            *block = iv_block;
            // Truncation is the counter's wrap at 2^16 blocks; callers stay below it.
            let ctr = base.wrapping_add((chunk_no * PAR + j) as u16);
            block[14..].copy_from_slice(&ctr.to_be_bytes());
        }
        cipher.encrypt_blocks(&mut blocks[..n]);
        for (bytes, key) in chunk.chunks_mut(16).zip(&blocks) {
            if let Ok(full) = <&mut [u8; 16]>::try_from(&mut *bytes) {
                // one 128-bit XOR per full block
                let k = u128::from_ne_bytes((*key).into());
                *full = (u128::from_ne_bytes(*full) ^ k).to_ne_bytes();
            } else {
                for (b, k) in bytes.iter_mut().zip(key.iter()) {
                    *b ^= k;
                }
            }
        }
    }
}

/// Session keys of one (RTP or RTCP) half of an AES-CM context.
#[derive(Clone)]
struct CmKeys {
    cipher: Aes128,
    salt: Zeroizing<[u8; 14]>,
    /// The keyed HMAC-SHA1 (inner and outer chaining values, 40 bytes).
    auth: HmacSha1,
}

impl CmKeys {
    fn derive(master: &Aes128, master_salt: &[u8; 14], labels: [Label; 3]) -> CmKeys {
        let mut enc = Zeroizing::new([0u8; 16]);
        let mut auth = Zeroizing::new([0u8; 20]);
        let mut salt = Zeroizing::new([0u8; 14]);
        derive(master, master_salt, labels[0], &mut enc[..]);
        derive(master, master_salt, labels[1], &mut auth[..]);
        derive(master, master_salt, labels[2], &mut salt[..]);
        CmKeys {
            cipher: Aes128::new(&(*enc).into()),
            salt,
            auth: HmacSha1::new(&auth),
        }
    }

    /// The counter-mode IV of RFC 3711 §4.1.1: (k_s·2^16) XOR (SSRC·2^64) XOR (index·2^16).
    fn iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt[..]);
        for (d, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *d ^= s;
        }
        for (d, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *d ^= s;
        }
        iv
    }

    /// HMAC-SHA1 over `parts` (keyed once, never re-keyed).
    fn tag(&self, parts: [&[u8]; 2]) -> [u8; 20] {
        self.auth.tag(parts[0], parts[1])
    }
}

/// Session keys of one half of a GCM context.
#[derive(Clone)]
struct GcmKeys {
    aead: Aes128Gcm,
    salt: Zeroizing<[u8; 12]>,
}

impl GcmKeys {
    fn derive(master: &Aes128, master_salt: &[u8; 14], enc: Label, salt: Label) -> GcmKeys {
        let mut key = Zeroizing::new([0u8; 16]);
        let mut s = Zeroizing::new([0u8; 12]);
        derive(master, master_salt, enc, &mut key[..]);
        derive(master, master_salt, salt, &mut s[..]);
        GcmKeys::from_session(&key, &s)
    }

    fn from_session(key: &[u8; 16], salt: &[u8; 12]) -> GcmKeys {
        GcmKeys {
            aead: Aes128Gcm::new(key.into()),
            salt: Zeroizing::new(*salt),
        }
    }

    /// RFC 7714 §8.1 / §9.1 IV: salt XOR (0x0000 ‖ SSRC ‖ 32-bit high ‖ 16-bit low).
    fn nonce(&self, ssrc: u32, high: u32, low: u16) -> [u8; 12] {
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
        iv[6..10].copy_from_slice(&high.to_be_bytes());
        iv[10..12].copy_from_slice(&low.to_be_bytes());
        for (d, s) in iv.iter_mut().zip(self.salt.iter()) {
            *d ^= s;
        }
        iv
    }
}

/// SRTCP session keys, derived on the first RTCP packet of the context: RTCP is rare (one
/// compound packet every ~5 s), so a session that has not sent or received any yet keeps only
/// the zeroizing master key (32 bytes) instead of a second expanded key set (~900 bytes).
/// Once derived they live on the heap for the rest of the context's life, expanded once.
/// The RTP path never looks at this.
#[derive(Clone)]
enum LazyRtcp<K> {
    Pending(MasterKey),
    Ready(Box<K>),
}

impl<K> LazyRtcp<K> {
    /// The SRTCP keys, deriving them (once) from the master key on first use; the master key
    /// is zeroized (dropped) right after.
    fn get(&mut self, derive: fn(&MasterKey) -> K) -> &K {
        if let LazyRtcp::Pending(master) = self {
            *self = LazyRtcp::Ready(Box::new(derive(master)));
        }
        match self {
            LazyRtcp::Ready(keys) => keys,
            LazyRtcp::Pending(_) => unreachable!("SRTCP keys derived just above"),
        }
    }

    /// Heap bytes held (the derived keys, once they exist).
    fn heap_size(&self) -> usize {
        match self {
            LazyRtcp::Pending(_) => 0,
            LazyRtcp::Ready(_) => std::mem::size_of::<K>(),
        }
    }
}

impl CmKeys {
    fn derive_rtcp(master: &MasterKey) -> CmKeys {
        let cipher = Aes128::new(&(*master.key).into());
        CmKeys::derive(
            &cipher,
            &master.salt,
            [Label::RtcpEncryption, Label::RtcpAuth, Label::RtcpSalt],
        )
    }
}

impl GcmKeys {
    fn derive_rtcp(master: &MasterKey) -> GcmKeys {
        let cipher = Aes128::new(&(*master.key).into());
        GcmKeys::derive(
            &cipher,
            &master.salt,
            Label::RtcpEncryption,
            Label::RtcpSalt,
        )
    }
}

// Boxing the larger variant would only add an allocation and a pointer chase per packet; a
// context holds exactly one `Keys`.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Keys {
    Cm {
        rtp: CmKeys,
        rtcp: LazyRtcp<CmKeys>,
        rtp_tag: usize,
    },
    Gcm {
        rtp: GcmKeys,
        rtcp: LazyRtcp<GcmKeys>,
    },
}

/// Highest index seen and a 128-entry sliding window behind it.
#[derive(Debug, Clone, Copy, Default)]
struct ReplayWindow {
    /// Highest accepted index (48-bit SRTP index or 31-bit SRTCP index).
    highest: u64,
    /// Bit i set: index `highest - i` was accepted. A u128 kept as two u64 halves (low
    /// first), so the window is 8-byte aligned and every stream of every call 16 bytes smaller.
    seen_halves: [u64; 2],
}

impl ReplayWindow {
    fn seen(&self) -> u128 {
        u128::from(self.seen_halves[0]) | u128::from(self.seen_halves[1]) << 64
    }

    fn set_seen(&mut self, seen: u128) {
        self.seen_halves = [seen as u64, (seen >> 64) as u64];
    }

    fn check(&self, index: u64) -> Result<()> {
        if index > self.highest {
            return Ok(());
        }
        let behind = self.highest - index;
        if behind >= REPLAY_WINDOW {
            Err(Error::TooOld)
        } else if self.seen() >> behind & 1 == 1 {
            Err(Error::Replayed)
        } else {
            Ok(())
        }
    }

    fn accept(&mut self, index: u64) {
        if index > self.highest {
            let ahead = index - self.highest;
            let moved = if ahead >= REPLAY_WINDOW {
                0
            } else {
                self.seen() << ahead
            };
            self.set_seen(moved | 1);
            self.highest = index;
        } else if self.highest - index < REPLAY_WINDOW {
            self.set_seen(self.seen() | 1 << (self.highest - index));
        }
    }
}

/// Per-SSRC state of one direction.
#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    rtp: ReplayWindow,
    rtp_seen: bool,
    rtcp: ReplayWindow,
    rtcp_seen: bool,
    /// Next SRTCP index to send.
    rtcp_next: u32,
    last_use: u64,
}

impl Stream {
    fn new(ssrc: u32) -> Stream {
        Stream {
            ssrc,
            rtp: ReplayWindow::default(),
            rtp_seen: false,
            rtcp: ReplayWindow::default(),
            rtcp_seen: false,
            rtcp_next: 0,
            last_use: 0,
        }
    }

    /// The 48-bit packet index of sequence number `seq` per RFC 3711 §3.3.1 / Appendix A.
    fn estimate_index(&self, seq: u16) -> u64 {
        if !self.rtp_seen {
            return u64::from(seq);
        }
        let roc = self.rtp.highest >> 16;
        let s_l = self.rtp.highest & 0xffff;
        let seq = u64::from(seq);
        let v = if s_l < 32768 {
            if seq > s_l + 32768 {
                // From the previous ROC; there is none before ROC 0.
                roc.checked_sub(1).unwrap_or(roc)
            } else {
                roc
            }
        } else if seq + 32768 < s_l {
            roc + 1
        } else {
            roc
        };
        (v << 16 | seq) & 0xffff_ffff_ffff
    }

    fn accept_rtp(&mut self, index: u64) {
        if self.rtp_seen {
            self.rtp.accept(index);
        } else {
            self.rtp = ReplayWindow {
                highest: index,
                seen_halves: [1, 0],
            };
            self.rtp_seen = true;
        }
    }

    fn check_rtcp(&self, index: u64) -> Result<()> {
        if self.rtcp_seen {
            self.rtcp.check(index)
        } else {
            Ok(())
        }
    }

    fn accept_rtcp(&mut self, index: u64) {
        if self.rtcp_seen {
            self.rtcp.accept(index);
        } else {
            self.rtcp = ReplayWindow {
                highest: index,
                seen_halves: [1, 0],
            };
            self.rtcp_seen = true;
        }
    }
}

/// The SRTP/SRTCP state of one direction of one call: session keys and per-SSRC streams.
///
/// Use one context to protect (sending) and another to unprotect (receiving); each keeps its own
/// ROC/index state. `Debug` shows no key material.
#[derive(Clone)]
pub struct SrtpContext {
    profile: SrtpProfile,
    keys: Keys,
    streams: [Option<Stream>; STREAMS],
    uses: u64,
}

impl fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .field("streams", &self.streams)
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    /// Derives the SRTP session keys (kdr 0) and expands them once. The SRTCP session keys
    /// are derived (and expanded once) on the first RTCP packet; until then the context keeps
    /// a zeroizing copy of the master key.
    pub fn new(master: &MasterKey) -> SrtpContext {
        let cipher = Aes128::new(&(*master.key).into());
        let salt = &master.salt;
        let keys = match master.profile {
            SrtpProfile::AeadAes128Gcm => Keys::Gcm {
                rtp: GcmKeys::derive(&cipher, salt, Label::RtpEncryption, Label::RtpSalt),
                rtcp: LazyRtcp::Pending(master.clone()),
            },
            profile => Keys::Cm {
                rtp: CmKeys::derive(
                    &cipher,
                    salt,
                    [Label::RtpEncryption, Label::RtpAuth, Label::RtpSalt],
                ),
                rtcp: LazyRtcp::Pending(master.clone()),
                rtp_tag: profile.rtp_overhead(),
            },
        };
        SrtpContext {
            profile: master.profile,
            keys,
            streams: [None; STREAMS],
            uses: 0,
        }
    }

    /// Bytes this context occupies: itself plus the SRTCP session keys once the first RTCP
    /// packet has derived them (they live on the heap).
    pub fn memory_size(&self) -> usize {
        std::mem::size_of::<SrtpContext>()
            + match &self.keys {
                Keys::Cm { rtcp, .. } => rtcp.heap_size(),
                Keys::Gcm { rtcp, .. } => rtcp.heap_size(),
            }
    }

    /// The profile of this context.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// The rollover counter of `ssrc` (the ROC of the highest index sent or received), if the
    /// stream is known.
    pub fn roc(&self, ssrc: u32) -> Option<u32> {
        self.find(ssrc)
            .and_then(|i| self.streams[i])
            .filter(|s| s.rtp_seen)
            .map(|s| (s.rtp.highest >> 16) as u32)
    }

    fn find(&self, ssrc: u32) -> Option<usize> {
        self.streams
            .iter()
            .position(|s| s.is_some_and(|s| s.ssrc == ssrc))
    }

    /// The stream state for `ssrc`, or a fresh one (not yet stored).
    fn stream(&self, ssrc: u32) -> Stream {
        self.find(ssrc)
            .and_then(|i| self.streams[i])
            .unwrap_or_else(|| Stream::new(ssrc))
    }

    /// Stores `stream` in its slot, or in a free or least recently used one.
    fn store(&mut self, mut stream: Stream) {
        self.uses += 1;
        stream.last_use = self.uses;
        let slot = self.find(stream.ssrc).unwrap_or_else(|| {
            self.streams
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.map_or(0, |s| s.last_use))
                .map_or(0, |(i, _)| i)
        });
        self.streams[slot] = Some(stream);
    }

    /// Protects the RTP packet `buf[..len]` in place and returns the SRTP length
    /// (`len + profile.rtp_overhead()`, which must fit in `buf`).
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize> {
        let pkt = buf.get(..len).ok_or(Error::Truncated)?;
        let hdr = RtpHeader::parse(pkt)?;
        let out_len = len + self.profile.rtp_overhead();
        if buf.len() < out_len {
            return Err(Error::BufferTooSmall { needed: out_len });
        }
        let mut stream = self.stream(hdr.ssrc);
        let index = stream.estimate_index(hdr.sequence);
        let roc = (index >> 16) as u32;
        match &self.keys {
            Keys::Cm { rtp, rtp_tag, .. } => {
                let iv = rtp.iv(hdr.ssrc, index);
                aes_cm_xor(&rtp.cipher, &iv, &mut buf[hdr.header_len..len]);
                let tag = rtp.tag([&buf[..len], &roc.to_be_bytes()]);
                buf[len..out_len].copy_from_slice(&tag[..*rtp_tag]);
            }
            Keys::Gcm { rtp, .. } => {
                let nonce = rtp.nonce(hdr.ssrc, roc, hdr.sequence);
                let (aad, rest) = buf.split_at_mut(hdr.header_len);
                let tag = rtp
                    .aead
                    .encrypt_in_place_detached(
                        &nonce.into(),
                        aad,
                        &mut rest[..len - hdr.header_len],
                    )
                    .map_err(|_| Error::Malformed("packet too long for GCM"))?;
                buf[len..out_len].copy_from_slice(&tag);
            }
        }
        stream.accept_rtp(index);
        self.store(stream);
        Ok(out_len)
    }

    /// Verifies and decrypts the SRTP packet `buf[..len]` in place and returns the RTP length.
    /// The stream's ROC and replay window move only if the tag verifies.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize> {
        let overhead = self.profile.rtp_overhead();
        let pkt = buf.get(..len).ok_or(Error::Truncated)?;
        let plain_len = len.checked_sub(overhead).ok_or(Error::Truncated)?;
        let hdr = RtpHeader::parse(&pkt[..plain_len])?;
        let mut stream = self.stream(hdr.ssrc);
        let index = stream.estimate_index(hdr.sequence);
        if stream.rtp_seen {
            stream.rtp.check(index)?;
        }
        let roc = (index >> 16) as u32;
        match &self.keys {
            Keys::Cm { rtp, rtp_tag, .. } => {
                let (body, tag) = buf[..len].split_at(plain_len);
                let expected = rtp.tag([body, &roc.to_be_bytes()]);
                if !bool::from(expected[..*rtp_tag].ct_eq(tag)) {
                    return Err(Error::AuthFailed);
                }
                let iv = rtp.iv(hdr.ssrc, index);
                aes_cm_xor(&rtp.cipher, &iv, &mut buf[hdr.header_len..plain_len]);
            }
            Keys::Gcm { rtp, .. } => {
                let nonce = rtp.nonce(hdr.ssrc, roc, hdr.sequence);
                let (aad, rest) = buf[..len].split_at_mut(hdr.header_len);
                let (body, tag) = rest.split_at_mut(plain_len - hdr.header_len);
                rtp.aead
                    .decrypt_in_place_detached(
                        &nonce.into(),
                        aad,
                        body,
                        <&Tag>::from(<&[u8; 16]>::try_from(&*tag).map_err(|_| Error::Truncated)?),
                    )
                    .map_err(|_| Error::AuthFailed)?;
            }
        }
        stream.accept_rtp(index);
        self.store(stream);
        Ok(plain_len)
    }

    /// Protects (encrypts, E flag set) the RTCP compound packet `buf[..len]` in place and returns
    /// the SRTCP length (`len + profile.rtcp_overhead()`).
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize> {
        let ssrc = rtcp_ssrc(buf.get(..len).ok_or(Error::Truncated)?)?;
        let out_len = len + self.profile.rtcp_overhead();
        if buf.len() < out_len {
            return Err(Error::BufferTooSmall { needed: out_len });
        }
        let mut stream = self.stream(ssrc);
        let index = stream.rtcp_next;
        if index > 0x7fff_ffff {
            return Err(Error::IndexExhausted);
        }
        let e_index = (0x8000_0000 | index).to_be_bytes();
        match &mut self.keys {
            Keys::Cm { rtcp, .. } => {
                let rtcp = rtcp.get(CmKeys::derive_rtcp);
                let iv = rtcp.iv(ssrc, u64::from(index));
                aes_cm_xor(&rtcp.cipher, &iv, &mut buf[8..len]);
                buf[len..len + 4].copy_from_slice(&e_index);
                let tag = rtcp.tag([&buf[..len + 4], &[]]);
                buf[len + 4..out_len].copy_from_slice(&tag[..10]);
            }
            Keys::Gcm { rtcp, .. } => {
                let rtcp = rtcp.get(GcmKeys::derive_rtcp);
                let nonce = rtcp.nonce(ssrc, index >> 16, index as u16);
                let mut aad = [0u8; 12];
                aad[..8].copy_from_slice(&buf[..8]);
                aad[8..].copy_from_slice(&e_index);
                let tag = rtcp
                    .aead
                    .encrypt_in_place_detached(&nonce.into(), &aad, &mut buf[8..len])
                    .map_err(|_| Error::Malformed("packet too long for GCM"))?;
                buf[len..len + 16].copy_from_slice(&tag);
                buf[len + 16..out_len].copy_from_slice(&e_index);
            }
        }
        stream.rtcp_next = index + 1;
        self.store(stream);
        Ok(out_len)
    }

    /// Verifies and (if the E flag is set) decrypts the SRTCP packet `buf[..len]` in place and
    /// returns the RTCP length. The replay window moves only if the tag verifies.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize> {
        let overhead = self.profile.rtcp_overhead();
        let pkt = buf.get(..len).ok_or(Error::Truncated)?;
        let plain_len = len.checked_sub(overhead).ok_or(Error::Truncated)?;
        let ssrc = rtcp_ssrc(&pkt[..plain_len])?;
        let mut stream = self.stream(ssrc);
        match &mut self.keys {
            Keys::Cm { rtcp, .. } => {
                let rtcp = rtcp.get(CmKeys::derive_rtcp);
                let auth_end = len - 10;
                let e_index = read_u32(&pkt[plain_len..auth_end]);
                let index = u64::from(e_index & 0x7fff_ffff);
                stream.check_rtcp(index)?;
                let expected = rtcp.tag([&pkt[..auth_end], &[]]);
                if !bool::from(expected[..10].ct_eq(&pkt[auth_end..len])) {
                    return Err(Error::AuthFailed);
                }
                if e_index & 0x8000_0000 != 0 {
                    let iv = rtcp.iv(ssrc, index);
                    aes_cm_xor(&rtcp.cipher, &iv, &mut buf[8..plain_len]);
                }
                stream.accept_rtcp(index);
            }
            Keys::Gcm { rtcp, .. } => {
                let rtcp = rtcp.get(GcmKeys::derive_rtcp);
                let e_index = read_u32(&pkt[len - 4..len]);
                if e_index & 0x8000_0000 == 0 {
                    return Err(Error::Unsupported("unencrypted SRTCP with AEAD"));
                }
                let index = e_index & 0x7fff_ffff;
                stream.check_rtcp(u64::from(index))?;
                let nonce = rtcp.nonce(ssrc, index >> 16, index as u16);
                let mut aad = [0u8; 12];
                aad[..8].copy_from_slice(&pkt[..8]);
                aad[8..].copy_from_slice(&e_index.to_be_bytes());
                let (body, tag) = buf[8..len - 4].split_at_mut(plain_len - 8);
                rtcp.aead
                    .decrypt_in_place_detached(
                        &nonce.into(),
                        &aad,
                        body,
                        <&Tag>::from(<&[u8; 16]>::try_from(&*tag).map_err(|_| Error::Truncated)?),
                    )
                    .map_err(|_| Error::AuthFailed)?;
                stream.accept_rtcp(u64::from(index));
            }
        }
        self.store(stream);
        Ok(plain_len)
    }
}

/// The sender SSRC of an RTCP compound packet (first packet's second word).
fn rtcp_ssrc(pkt: &[u8]) -> Result<u32> {
    if pkt.len() < 8 {
        return Err(Error::Truncated);
    }
    if pkt[0] >> 6 != 2 {
        return Err(Error::Malformed("RTCP version is not 2"));
    }
    Ok(read_u32(&pkt[4..8]))
}

fn read_u32(b: &[u8]) -> u32 {
    b.iter().take(4).fold(0, |acc, &x| acc << 8 | u32::from(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    /// RFC 3711 Appendix B.2: AES-CM keystream for the given session key and IV.
    #[test]
    fn rfc3711_b2_keystream() {
        let key = unhex("2B7E151628AED2A6ABF7158809CF4F3C");
        let cipher = Aes128::new(&<[u8; 16]>::try_from(key).unwrap().into());
        // Session salt F0F1F2F3F4F5F6F7F8F9FAFBFCFD, SSRC 0, index 0: IV = salt·2^16.
        let iv: [u8; 16] = unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000")
            .try_into()
            .unwrap();
        let mut ks = [0u8; 48];
        aes_cm_xor(&cipher, &iv, &mut ks);
        assert_eq!(
            ks.to_vec(),
            unhex(
                "E03EAD0935C95E80E166B16DD92B4EB4
                 D23513162B02D0F72A43A2FE4A5F97AB
                 41E95B3BB0A2E8DD477901E4FCA894C0"
            )
        );
        // The last blocks of the 2^16-block run: counter FEFF, FF00 (low 16 bits of the IV).
        let mut tail = [0u8; 32];
        let mut iv2 = iv;
        iv2[14..].copy_from_slice(&[0xfe, 0xff]);
        aes_cm_xor(&cipher, &iv2, &mut tail);
        assert_eq!(
            tail.to_vec(),
            unhex("EC8CDF7398607CB0F2D21675EA9EA1E4 362B7C3C6773516318A077D7FC5073AE")
        );
    }

    /// RFC 3711 Appendix B.3: session keys derived from the master key and salt.
    #[test]
    fn rfc3711_b3_key_derivation() {
        let master = unhex("E1F97A0D3E018BE0D64FA32C06DE4139");
        let salt: [u8; 14] = unhex("0EC675AD498AFEEBB6960B3AABE6").try_into().unwrap();
        let cipher = Aes128::new(&<[u8; 16]>::try_from(master).unwrap().into());
        let mut enc = [0u8; 16];
        derive(&cipher, &salt, Label::RtpEncryption, &mut enc);
        assert_eq!(enc.to_vec(), unhex("C61E7A93744F39EE10734AFE3FF7A087"));
        let mut s = [0u8; 14];
        derive(&cipher, &salt, Label::RtpSalt, &mut s);
        assert_eq!(s.to_vec(), unhex("30CBBC08863D8C85D49DB34A9AE1"));
        let mut auth = [0u8; 94];
        derive(&cipher, &salt, Label::RtpAuth, &mut auth);
        assert_eq!(
            auth.to_vec(),
            unhex(
                "CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
                 E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
                 6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2"
            )
        );
    }

    /// RFC 7714 §16.1: AEAD_AES_128_GCM encryption of an RTP packet with the given session key
    /// and salt (SSRC 0x5501a0b2, ROC 0, SEQ 0xf17b).
    #[test]
    fn rfc7714_16_rtp_gcm() {
        let keys = GcmKeys::from_session(
            &unhex("000102030405060708090a0b0c0d0e0f")
                .try_into()
                .unwrap(),
            &unhex("517569642070726f2071756f").try_into().unwrap(),
        );
        let plain = unhex(
            "8040f17b8041f8d35501a0b2 47616c6c696120657374206f
             6d6e697320646976697361 20696e20706172746573207472 6573",
        );
        let nonce = keys.nonce(0x5501a0b2, 0, 0xf17b);
        assert_eq!(nonce.to_vec(), unhex("51753c6580c2726f20718414"));
        let mut buf = plain.clone();
        let tag = keys
            .aead
            .encrypt_in_place_detached(&nonce.into(), &plain[..12], &mut buf[12..])
            .unwrap();
        buf.extend_from_slice(&tag);
        assert_eq!(
            buf,
            unhex(
                "8040f17b8041f8d35501a0b2f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42
                 a5f47a51c7d19b36de3adf8833899d7f27beb16a9152cf765ee4390cce"
            )
        );
        // §16.1.2: decryption restores the packet; a flipped tag bit is refused.
        let (body, tag) = buf[12..].split_at_mut(plain.len() - 12);
        let tag = <[u8; 16]>::try_from(&*tag).unwrap();
        let mut bad_tag = tag;
        bad_tag[0] ^= 1;
        let mut copy = body.to_vec();
        assert!(
            keys.aead
                .decrypt_in_place_detached(&nonce.into(), &plain[..12], &mut copy, &bad_tag.into())
                .is_err()
        );
        keys.aead
            .decrypt_in_place_detached(&nonce.into(), &plain[..12], body, &tag.into())
            .unwrap();
        assert_eq!(&buf[..plain.len()], &plain[..]);
    }

    fn rtp_packet(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    fn profiles() -> [SrtpProfile; 3] {
        [
            SrtpProfile::Aes128CmHmacSha1_80,
            SrtpProfile::Aes128CmHmacSha1_32,
            SrtpProfile::AeadAes128Gcm,
        ]
    }

    fn key(profile: SrtpProfile) -> MasterKey {
        let salt = vec![0x5a; profile.master_salt_len()];
        MasterKey::new(profile, &[0x11; 16], &salt).unwrap()
    }

    fn protect(tx: &mut SrtpContext, pkt: &[u8]) -> Vec<u8> {
        let mut buf = pkt.to_vec();
        buf.resize(pkt.len() + MAX_RTP_OVERHEAD, 0);
        let n = tx.protect_rtp(&mut buf, pkt.len()).unwrap();
        buf.truncate(n);
        buf
    }

    fn unprotect(rx: &mut SrtpContext, pkt: &[u8]) -> Result<Vec<u8>> {
        let mut buf = pkt.to_vec();
        let n = rx.unprotect_rtp(&mut buf, pkt.len())?;
        buf.truncate(n);
        Ok(buf)
    }

    #[test]
    fn round_trip_roc_rollover_replay_and_tamper() {
        for profile in profiles() {
            let mut tx = SrtpContext::new(&key(profile));
            let mut rx = SrtpContext::new(&key(profile));
            let mut saved = Vec::new();
            for i in 0..20u16 {
                let seq = 65530u16.wrapping_add(i);
                let pkt = rtp_packet(seq, 0xabcd, &[i as u8; 33]);
                let s = protect(&mut tx, &pkt);
                assert_ne!(s[12..45], pkt[12..], "{profile:?} encrypts");
                assert_eq!(
                    unprotect(&mut rx, &s).unwrap(),
                    pkt,
                    "{profile:?} seq {seq}"
                );
                saved.push(s);
            }
            assert_eq!(tx.roc(0xabcd), Some(1));
            assert_eq!(rx.roc(0xabcd), Some(1));
            // Replays, before and after the wrap.
            assert_eq!(unprotect(&mut rx, &saved[19]), Err(Error::Replayed));
            assert_eq!(unprotect(&mut rx, &saved[2]), Err(Error::Replayed));
            // Tampering with header, payload or tag.
            for at in [3, 20, saved[0].len() - 1] {
                let mut bad = protect(&mut tx, &rtp_packet(30, 0xabcd, &[1; 33]));
                bad[at] ^= 1;
                assert_eq!(unprotect(&mut rx, &bad), Err(Error::AuthFailed));
            }
            // A forged packet did not move the window: the genuine one still goes through.
            let good = protect(&mut tx, &rtp_packet(31, 0xabcd, &[1; 33]));
            assert!(unprotect(&mut rx, &good).is_ok());
        }
    }

    #[test]
    fn forged_packet_does_not_move_roc() {
        let mut tx = SrtpContext::new(&key(SrtpProfile::Aes128CmHmacSha1_80));
        let mut rx = SrtpContext::new(&key(SrtpProfile::Aes128CmHmacSha1_80));
        let first = protect(&mut tx, &rtp_packet(40000, 7, &[0; 20]));
        unprotect(&mut rx, &first).unwrap();
        // A packet whose sequence suggests a rollover but whose tag is wrong.
        let mut forged = protect(&mut tx, &rtp_packet(100, 7, &[0; 20]));
        let n = forged.len();
        forged[n - 1] ^= 0x80;
        assert_eq!(unprotect(&mut rx, &forged), Err(Error::AuthFailed));
        assert_eq!(rx.roc(7), Some(0));
        forged[n - 1] ^= 0x80;
        unprotect(&mut rx, &forged).unwrap();
        assert_eq!(rx.roc(7), Some(1));
    }

    #[test]
    fn replay_window_edges() {
        let mut w = ReplayWindow {
            highest: 1000,
            seen_halves: [1, 0],
        };
        assert_eq!(w.check(1000), Err(Error::Replayed));
        assert_eq!(w.check(1000 - 127), Ok(()));
        assert_eq!(w.check(1000 - 128), Err(Error::TooOld));
        w.accept(1000 - 127);
        assert_eq!(w.check(1000 - 127), Err(Error::Replayed));
        w.accept(1001);
        assert_eq!(w.check(1000 - 127), Err(Error::TooOld));
        assert_eq!(w.check(1000), Err(Error::Replayed));
        w.accept(5000);
        assert_eq!(w.check(1001), Err(Error::TooOld));
        assert_eq!(w.check(4999), Ok(()));
    }

    #[test]
    fn index_estimation_follows_rfc3711_appendix_a() {
        let mut s = Stream::new(1);
        s.accept_rtp(0x0001_fff0);
        assert_eq!(s.estimate_index(0xfff5), 0x0001_fff5);
        assert_eq!(s.estimate_index(3), 0x0002_0003);
        s.accept_rtp(0x0002_0003);
        assert_eq!(s.estimate_index(0xfff8), 0x0001_fff8);
        // More than half the sequence space behind s_l = 3: still in the previous ROC.
        assert_eq!(s.estimate_index(40000), 0x0001_0000 + 40000);
        assert_eq!(s.estimate_index(30000), 0x0002_0000 + 30000);
        // Before the first rollover there is no ROC - 1.
        let mut s = Stream::new(1);
        s.accept_rtp(10);
        assert_eq!(s.estimate_index(60000), 60000);
    }

    /// The replay window against a plain model: a set of every accepted index.
    fn model_check(seen: &std::collections::BTreeSet<u64>, index: u64) -> Result<()> {
        match seen.last() {
            Some(&highest) if index <= highest => {
                if highest - index >= REPLAY_WINDOW {
                    Err(Error::TooOld)
                } else if seen.contains(&index) {
                    Err(Error::Replayed)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    proptest::proptest! {
        #[test]
        fn replay_window_matches_model(
            start in 0u64..1 << 40,
            steps in proptest::collection::vec(-200i64..300, 1..300),
        ) {
            let mut window = ReplayWindow { highest: start, seen_halves: [1, 0] };
            let mut model = std::collections::BTreeSet::from([start]);
            let mut index = start;
            for step in steps {
                index = index.saturating_add_signed(step);
                let got = window.check(index);
                proptest::prop_assert_eq!(got, model_check(&model, index));
                if got.is_ok() {
                    window.accept(index);
                    model.insert(index);
                }
            }
        }

        /// A receiver recovers the true 48-bit index from 16-bit sequence numbers whenever the
        /// packet is within 2^15 of the highest one seen (RFC 3711 §3.3.1), across rollovers.
        #[test]
        fn index_estimation_recovers_true_index(
            start in 0u64..1 << 20,
            steps in proptest::collection::vec(-3000i64..20000, 1..200),
        ) {
            let mut s = Stream::new(1);
            s.accept_rtp(start);
            let mut index = start;
            for step in steps {
                index = index.saturating_add_signed(step);
                let behind = s.rtp.highest.saturating_sub(index);
                let ahead = index.saturating_sub(s.rtp.highest);
                proptest::prop_assume!(behind < 1 << 15 && ahead < 1 << 15);
                proptest::prop_assert_eq!(s.estimate_index(index as u16), index);
                s.accept_rtp(index);
            }
        }
    }

    #[test]
    fn srtcp_round_trip_index_e_flag_replay() {
        for profile in profiles() {
            let mut tx = SrtpContext::new(&key(profile));
            let mut rx = SrtpContext::new(&key(profile));
            // RR with no blocks + BYE.
            let rtcp = [0x80, 201, 0, 1, 0, 0, 0, 9, 0x81, 203, 0, 1, 0, 0, 0, 9];
            let mut saved = Vec::new();
            for i in 0..3u32 {
                let mut buf = rtcp.to_vec();
                buf.resize(rtcp.len() + MAX_RTCP_OVERHEAD, 0);
                let n = tx.protect_rtcp(&mut buf, rtcp.len()).unwrap();
                buf.truncate(n);
                assert_ne!(buf[8..16], rtcp[8..]);
                let trailer = match profile {
                    SrtpProfile::AeadAes128Gcm => &buf[n - 4..],
                    _ => &buf[16..20],
                };
                assert_eq!(read_u32(trailer), 0x8000_0000 | i, "E flag and index");
                saved.push(buf);
            }
            for s in &saved {
                let mut b = s.clone();
                let n = rx.unprotect_rtcp(&mut b, s.len()).unwrap();
                assert_eq!(&b[..n], &rtcp);
            }
            let mut b = saved[1].clone();
            assert_eq!(
                rx.unprotect_rtcp(&mut b, saved[1].len()),
                Err(Error::Replayed)
            );
            let mut b = saved[2].clone();
            b[9] ^= 1;
            assert_eq!(
                rx.unprotect_rtcp(&mut b, saved[2].len()),
                Err(Error::Replayed)
            );
        }
    }

    #[test]
    fn short_and_hostile_inputs_are_errors() {
        let mut rx = SrtpContext::new(&key(SrtpProfile::Aes128CmHmacSha1_80));
        for len in 0..30 {
            let mut buf = [0x80u8; 30];
            assert!(rx.unprotect_rtp(&mut buf, len).is_err());
            assert!(rx.unprotect_rtcp(&mut buf, len).is_err());
        }
        assert_eq!(rx.unprotect_rtp(&mut [0; 4], 10), Err(Error::Truncated));
        let mut tx = SrtpContext::new(&key(SrtpProfile::Aes128CmHmacSha1_80));
        let mut buf = rtp_packet(1, 1, &[0; 4]);
        let n = buf.len();
        assert_eq!(
            tx.protect_rtp(&mut buf, n),
            Err(Error::BufferTooSmall { needed: n + 10 })
        );
    }

    #[test]
    fn key_lengths_and_debug_redaction() {
        assert!(MasterKey::new(SrtpProfile::AeadAes128Gcm, &[0; 16], &[0; 14]).is_err());
        assert!(MasterKey::new(SrtpProfile::Aes128CmHmacSha1_80, &[0; 15], &[0; 14]).is_err());
        let k = MasterKey::from_concatenated(SrtpProfile::AeadAes128Gcm, &[0xab; 28]).unwrap();
        assert!(!format!("{k:?}").contains("171"));
        assert!(!format!("{k:?}").to_lowercase().contains("ab"));
        assert_eq!(
            SrtpProfile::from_name("AES_CM_128_HMAC_SHA1_32"),
            Some(SrtpProfile::Aes128CmHmacSha1_32)
        );
    }
}
