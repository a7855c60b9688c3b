//! MIKEY key derivation (RFC 3830 §4.1.2–4.1.4, RFC 6043 §6.1): the MIKEY PRF with HMAC-SHA-1
//! (PRF 0) or HMAC-SHA-256 (PRF 1), and the derivation of SRTP master keys and salts from a
//! TEK generation key (for MIKEY-SAKKE the TGK is the SSV, RFC 6509 §2.1).
//!
//! Everything here works on fixed-size stack buffers: no allocation.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;

/// Label constant for a TEK (the SRTP master key), RFC 3830 §4.1.3.
pub const CONST_TEK: u32 = 0x2AD0_1C64;
/// Label constant for a salting key (the SRTP master salt), RFC 3830 §4.1.3.
pub const CONST_SALT: u32 = 0x39A2_C14B;
/// Label constant for an encryption key of MIKEY message protection, RFC 3830 §4.1.4.
pub const CONST_ENCR: u32 = 0x1505_33E1;
/// Label constant for an authentication key of MIKEY message protection, RFC 3830 §4.1.4.
pub const CONST_AUTH: u32 = 0x2D22_AC75;
/// The `cs_id` used in labels for keys that protect MIKEY messages (RFC 3830 §4.1.4).
pub const CS_ID_MESSAGE: u8 = 0xFF;

/// SRTP master key length for AES-128 (RFC 3711), in bytes.
pub const SRTP_MASTER_KEY_LEN: usize = 16;
/// SRTP master salt length (RFC 3711 §8.2: 112 bits), in bytes.
pub const SRTP_MASTER_SALT_LEN: usize = 14;

/// Longest RAND a label may carry (the RAND payload's length field is 8 bits).
const MAX_RAND: usize = 255;
/// Longest output one derivation produces.
const MAX_OUT: usize = 64;
/// The PRF splits its input key into chunks of 256 bits (RFC 3830 §4.1.2).
const INKEY_CHUNK: usize = 32;

/// The MIKEY pseudo-random function, the `PRF func` field of the common header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Prf {
    /// PRF 0: MIKEY-1, HMAC-SHA-1 (RFC 3830 §4.1.2).
    HmacSha1,
    /// PRF 1: PRF-HMAC-SHA-256 (RFC 6043 §6.1).
    HmacSha256,
}

impl Prf {
    /// The header code point.
    pub fn code(self) -> u8 {
        match self {
            Self::HmacSha1 => 0,
            Self::HmacSha256 => 1,
        }
    }

    /// The PRF for a header code point.
    pub fn from_code(code: u8) -> Result<Self, Error> {
        match code {
            0 => Ok(Self::HmacSha1),
            1 => Ok(Self::HmacSha256),
            _ => Err(Error::Unsupported("PRF function")),
        }
    }

    fn out_len(self) -> usize {
        match self {
            Self::HmacSha1 => 20,
            Self::HmacSha256 => 32,
        }
    }
}

/// One HMAC over `parts`, written into `out[..hash len]`.
fn hmac_into(prf: Prf, key: &[u8], parts: &[&[u8]], out: &mut [u8; 32]) {
    match prf {
        Prf::HmacSha1 => {
            let mut m = <Hmac<Sha1> as KeyInit>::new_from_slice(key)
                .expect("HMAC accepts keys of any length");
            for p in parts {
                m.update(p);
            }
            out[..20].copy_from_slice(&m.finalize().into_bytes());
        }
        Prf::HmacSha256 => {
            let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
                .expect("HMAC accepts keys of any length");
            for p in parts {
                m.update(p);
            }
            out.copy_from_slice(&m.finalize().into_bytes());
        }
    }
}

/// `P(s, label, m)` of RFC 3830 §4.1.2, XORed into `out` (whose length fixes `m`).
fn p_xor(prf: Prf, s: &[u8], label: &[u8], out: &mut [u8]) {
    let h = prf.out_len();
    let mut a = [0u8; 32];
    let mut block = [0u8; 32];
    // A_1 = HMAC(s, A_0) with A_0 = label.
    hmac_into(prf, s, &[label], &mut a);
    for chunk in out.chunks_mut(h) {
        // HMAC(s, A_i || label)
        hmac_into(prf, s, &[&a[..h], label], &mut block);
        for (o, b) in chunk.iter_mut().zip(block.iter()) {
            *o ^= b;
        }
        // A_{i+1} = HMAC(s, A_i)
        let prev = a;
        hmac_into(prf, s, &[&prev[..h]], &mut a);
    }
    a.zeroize();
    block.zeroize();
}

/// The MIKEY PRF: `PRF(inkey, label)` truncated to `out.len()` bytes (RFC 3830 §4.1.2; for
/// PRF 1 the same construction with HMAC-SHA-256 and 256-bit output blocks, RFC 6043 §6.1).
pub fn prf(prf: Prf, inkey: &[u8], label: &[u8], out: &mut [u8]) -> Result<(), Error> {
    if inkey.is_empty() {
        return Err(Error::Encoding("PRF input key"));
    }
    if out.len() > MAX_OUT {
        return Err(Error::Encoding("PRF output length"));
    }
    out.fill(0);
    for s in inkey.chunks(INKEY_CHUNK) {
        p_xor(prf, s, label, out);
    }
    Ok(())
}

/// Derives a key from a TGK (RFC 3830 §4.1.3) or an envelope key (§4.1.4 with
/// [`CS_ID_MESSAGE`]): `PRF(inkey, constant || cs_id || csb_id || RAND)`.
pub fn derive(
    prf_fn: Prf,
    inkey: &[u8],
    constant: u32,
    cs_id: u8,
    csb_id: u32,
    rand: &[u8],
    out: &mut [u8],
) -> Result<(), Error> {
    if rand.len() > MAX_RAND {
        return Err(Error::Encoding("RAND length"));
    }
    let mut label = [0u8; 9 + MAX_RAND];
    label[..4].copy_from_slice(&constant.to_be_bytes());
    label[4] = cs_id;
    label[5..9].copy_from_slice(&csb_id.to_be_bytes());
    label[9..9 + rand.len()].copy_from_slice(rand);
    prf(prf_fn, inkey, &label[..9 + rand.len()], out)
}

/// An SRTP master key and master salt for one crypto session (zeroized on drop).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SrtpKeys {
    /// The 128-bit SRTP master key.
    pub master_key: [u8; SRTP_MASTER_KEY_LEN],
    /// The 112-bit SRTP master salt.
    pub master_salt: [u8; SRTP_MASTER_SALT_LEN],
}

impl core::fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SrtpKeys(<redacted>)")
    }
}

impl PartialEq for SrtpKeys {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        (self.master_key.ct_eq(&other.master_key) & self.master_salt.ct_eq(&other.master_salt))
            .into()
    }
}

impl Eq for SrtpKeys {}

/// The SRTP master key (constant 0x2AD01C64) and salt (0x39A2C14B) of crypto session `cs_id`
/// derived from the TGK (RFC 3830 §4.1.3).
pub fn srtp_keys(
    prf_fn: Prf,
    tgk: &[u8],
    cs_id: u8,
    csb_id: u32,
    rand: &[u8],
) -> Result<SrtpKeys, Error> {
    let mut keys = SrtpKeys {
        master_key: [0; SRTP_MASTER_KEY_LEN],
        master_salt: [0; SRTP_MASTER_SALT_LEN],
    };
    derive(
        prf_fn,
        tgk,
        CONST_TEK,
        cs_id,
        csb_id,
        rand,
        &mut keys.master_key,
    )?;
    derive(
        prf_fn,
        tgk,
        CONST_SALT,
        cs_id,
        csb_id,
        rand,
        &mut keys.master_salt,
    )?;
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed independently with Python's `hmac` module from the RFC 3830
    // §4.1.2 definition (the script is in docs/keys.md, "Key derivation cross-check").
    const TGK: [u8; 16] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ];
    const RAND: [u8; 16] = [
        0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
        0xef,
    ];

    const EXP_PRF0_KEY: &str = "309accbebd82741735fa6ba4091cabde";
    const EXP_PRF0_SALT: &str = "8035a22b7cf6eec157dabd84f2e0";
    const EXP_PRF0_LONG: &str = "9200435044753241777b5f16405800e0e40a0e9bf18c28a845721bc9d2e5873ed576930782090c476a4840b04fecf737";
    const EXP_PRF1_KEY: &str = "f114b55aa4422b2a471652a7ef024e3d";
    const EXP_PRF1_SALT: &str = "378bcb8cd5aee5c2186304306fe2";
    const EXP_PRF1_LONG: &str = "0b95259e668ddaf19ce9ebbd7f81f9d8cab3694bafb7321a5ac247e78747b13af387495e6dbc2a25117c254a1d0e6df6";

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn srtp_keys_prf0_and_prf1_match_independent_computation() {
        let k0 = srtp_keys(Prf::HmacSha1, &TGK, 0, 0x0102_0304, &RAND).unwrap();
        let k1 = srtp_keys(Prf::HmacSha256, &TGK, 0, 0x0102_0304, &RAND).unwrap();
        assert_eq!(k0.master_key.to_vec(), h(EXP_PRF0_KEY));
        assert_eq!(k0.master_salt.to_vec(), h(EXP_PRF0_SALT));
        assert_eq!(k1.master_key.to_vec(), h(EXP_PRF1_KEY));
        assert_eq!(k1.master_salt.to_vec(), h(EXP_PRF1_SALT));
        assert_ne!(k0, k1);
    }

    #[test]
    fn long_inkey_is_split_into_256_bit_chunks_and_xored() {
        // A 40-byte input key: two chunks (32 + 8 bytes), 48 bytes of output (several blocks).
        let inkey: Vec<u8> = (0u8..40).collect();
        let mut out0 = [0u8; 48];
        let mut out1 = [0u8; 48];
        prf(Prf::HmacSha1, &inkey, b"label", &mut out0).unwrap();
        prf(Prf::HmacSha256, &inkey, b"label", &mut out1).unwrap();
        assert_eq!(out0.to_vec(), h(EXP_PRF0_LONG));
        assert_eq!(out1.to_vec(), h(EXP_PRF1_LONG));
    }

    #[test]
    fn caps_are_enforced() {
        let mut out = [0u8; 65];
        assert!(prf(Prf::HmacSha1, &TGK, b"x", &mut out).is_err());
        assert!(prf(Prf::HmacSha1, &[], b"x", &mut out[..16]).is_err());
        assert!(
            derive(
                Prf::HmacSha1,
                &TGK,
                CONST_TEK,
                0,
                0,
                &[0; 256],
                &mut out[..16]
            )
            .is_err()
        );
        assert!(Prf::from_code(2).is_err());
        assert_eq!(Prf::from_code(1).unwrap().code(), 1);
    }
}
