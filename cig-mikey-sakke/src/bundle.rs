//! Encrypted key bundles: a user's [`KeyMaterial`] sealed under a one-time transfer code with
//! Argon2id (memory-hard) and XChaCha20-Poly1305 (format in docs/keys.md).

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::Error;
use crate::keystore::KeyMaterial;

/// Argon2id memory cost of new bundles (KiB).
pub const M_COST_KIB: u32 = 64 * 1024;
/// Argon2id passes of new bundles.
pub const T_COST: u32 = 3;
/// Largest memory cost a bundle may ask for when opened (KiB), so a hostile file cannot
/// exhaust memory.
pub const MAX_M_COST_KIB: u32 = 1024 * 1024;
/// Largest pass count a bundle may ask for when opened.
pub const MAX_T_COST: u32 = 16;
/// Characters of a transfer code (base32, 5 bits each: 120 bits).
pub const CODE_CHARS: usize = 24;

const FORMAT: &str = "cig-key-bundle";
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A one-time transfer code, shown as groups of four characters (`ABCD-EFGH-…`).
#[derive(Clone)]
pub struct TransferCode(Zeroizing<String>);

impl core::fmt::Debug for TransferCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TransferCode(<redacted>)")
    }
}

impl TransferCode {
    /// A fresh random code.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut s = Zeroizing::new(String::with_capacity(CODE_CHARS + CODE_CHARS / 4));
        let mut buf = Zeroizing::new([0u8; CODE_CHARS]);
        rng.fill_bytes(&mut *buf);
        for (i, b) in buf.iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                s.push('-');
            }
            s.push(char::from(ALPHABET[usize::from(b & 31)]));
        }
        Self(s)
    }

    /// Parses a typed code: case, spaces and dashes do not matter; the characters must be
    /// from the code alphabet and complete.
    pub fn parse(typed: &str) -> Result<Self, Error> {
        let mut s = Zeroizing::new(String::with_capacity(CODE_CHARS + CODE_CHARS / 4));
        let mut n = 0;
        for c in typed.chars().filter(|c| !c.is_whitespace() && *c != '-') {
            let c = c.to_ascii_uppercase();
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || n == CODE_CHARS {
                return Err(Error::Keystore("transfer code is malformed".into()));
            }
            if n > 0 && n % 4 == 0 {
                s.push('-');
            }
            s.push(c);
            n += 1;
        }
        if n != CODE_CHARS {
            return Err(Error::Keystore("transfer code is incomplete".into()));
        }
        Ok(Self(s))
    }

    /// The code as shown to the operator (secret).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The canonical bytes fed to the KDF: the 24 characters without dashes.
    fn kdf_input(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.bytes().filter(|b| *b != b'-').collect())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    format: String,
    version: u32,
    kdf: String,
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
    aead: String,
    nonce: String,
    ciphertext: String,
}

/// Associated data binding the KDF parameters and salt to the ciphertext.
fn aad(m: u32, t: u32, p: u32, salt: &[u8]) -> Vec<u8> {
    let mut v = format!("{FORMAT} v1 argon2id m={m} t={t} p={p} xchacha20poly1305 ").into_bytes();
    v.extend_from_slice(salt);
    v
}

fn derive_key(
    code: &TransferCode,
    salt: &[u8],
    m: u32,
    t: u32,
    p: u32,
) -> Result<Zeroizing<[u8; 32]>, Error> {
    let params = Params::new(m, t, p, Some(32))
        .map_err(|_| Error::Keystore("bundle KDF parameters".into()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(&code.kdf_input(), salt, &mut *key)
        .map_err(|_| Error::Keystore("bundle KDF".into()))?;
    Ok(key)
}

/// Seals `material` under `code` with the default KDF cost.
pub fn seal(
    material: &KeyMaterial,
    code: &TransferCode,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, Error> {
    seal_with_cost(material, code, M_COST_KIB, T_COST, rng)
}

/// Seals `material` under `code` with a given Argon2id memory (KiB) and pass count.
pub fn seal_with_cost(
    material: &KeyMaterial,
    code: &TransferCode,
    m_cost: u32,
    t_cost: u32,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, Error> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut salt);
    rng.fill_bytes(&mut nonce);
    let key = derive_key(code, &salt, m_cost, t_cost, 1)?;
    let cipher = XChaCha20Poly1305::new((&*key).into());
    let plain = material.to_json();
    let ct = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &plain,
                aad: &aad(m_cost, t_cost, 1, &salt),
            },
        )
        .map_err(|_| Error::Keystore("bundle encryption".into()))?;
    let env = Envelope {
        format: FORMAT.into(),
        version: 1,
        kdf: "argon2id".into(),
        m_cost,
        t_cost,
        p_cost: 1,
        salt: B64.encode(salt),
        aead: "xchacha20poly1305".into(),
        nonce: B64.encode(nonce),
        ciphertext: B64.encode(ct),
    };
    let mut out = serde_json::to_vec_pretty(&env).expect("serialising a bundle envelope");
    out.push(b'\n');
    Ok(out)
}

/// Opens a bundle with `code` and validates every key in it.
pub fn open(bundle: &[u8], code: &TransferCode) -> Result<KeyMaterial, Error> {
    let env: Envelope = serde_json::from_slice(bundle)
        .map_err(|e| Error::Keystore(format!("not a CIG key bundle: {e}")))?;
    if env.format != FORMAT
        || env.version != 1
        || env.kdf != "argon2id"
        || env.aead != "xchacha20poly1305"
    {
        return Err(Error::Keystore("unsupported key bundle format".into()));
    }
    if env.m_cost > MAX_M_COST_KIB || env.t_cost > MAX_T_COST || env.p_cost != 1 {
        return Err(Error::Keystore(
            "key bundle KDF parameters out of range".into(),
        ));
    }
    let field = |s: &str, what: &str| {
        B64.decode(s)
            .map_err(|_| Error::Keystore(format!("key bundle {what} is not base64")))
    };
    let salt = field(&env.salt, "salt")?;
    let nonce = field(&env.nonce, "nonce")?;
    let ct = field(&env.ciphertext, "ciphertext")?;
    let nonce: [u8; 24] = nonce
        .try_into()
        .map_err(|_| Error::Keystore("key bundle nonce length".into()))?;
    if salt.len() < 16 || salt.len() > 64 {
        return Err(Error::Keystore("key bundle salt length".into()));
    }
    let key = derive_key(code, &salt, env.m_cost, env.t_cost, env.p_cost)?;
    let cipher = XChaCha20Poly1305::new((&*key).into());
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &ct,
                    aad: &aad(env.m_cost, env.t_cost, env.p_cost, &salt),
                },
            )
            .map_err(|_| Error::BundleDecrypt)?,
    );
    let m = KeyMaterial::from_json(&plain)?;
    m.validate()?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn transfer_codes_parse_loosely_and_refuse_junk() {
        let c = TransferCode::generate(&mut OsRng);
        assert_eq!(c.as_str().len(), CODE_CHARS + CODE_CHARS / 4 - 1);
        let typed = c.as_str().to_ascii_lowercase().replace('-', " ");
        assert_eq!(TransferCode::parse(&typed).unwrap().as_str(), c.as_str());
        assert!(TransferCode::parse("ABCD").is_err());
        assert!(TransferCode::parse(&format!("{}A", c.as_str())).is_err());
        assert!(TransferCode::parse("0000-0000-0000-0000-0000-0000").is_err());
        assert!(format!("{c:?}").contains("redacted"));
    }
}
