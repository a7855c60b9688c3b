//! MIKEY-SAKKE cryptography for CIG: ECCSI signatures (RFC 6507) on P-256 and SAKKE key
//! encapsulation (RFC 6508) with the RFC 6509 parameter set 1.
//!
//! The secure domain authenticates every I_MESSAGE with ECCSI and carries the shared secret
//! value (SSV) encapsulated with SAKKE to the responder's identifier.
//!
//! ```
//! use cig_mikey_sakke::{eccsi, sakke};
//! use rand_core::OsRng;
//!
//! let id = b"2011-02\0tel:+447700900123\0";
//! // KMS side: community keys and the user's keys.
//! let (ksak, kpak) = eccsi::generate_community(&mut OsRng);
//! let (ssk, pvt) = eccsi::issue_user_key(&ksak, &kpak, id, &mut OsRng);
//! let (z, zpub) = sakke::generate_master(&mut OsRng);
//! let rsk = sakke::issue_rsk(&z, id).unwrap();
//!
//! // Sender: encapsulate a fresh SSV to the identifier and sign.
//! let signer = eccsi::SigningKey::new(&kpak, id, ssk, pvt).unwrap();
//! let ssv = sakke::Ssv::random(&mut OsRng);
//! let sed = sakke::encapsulate(&zpub, id, &ssv).unwrap();
//! let sig = signer.sign(sed.as_bytes(), &mut OsRng);
//!
//! // Receiver: verify, then decapsulate.
//! eccsi::verify(&kpak, id, sed.as_bytes(), &sig).unwrap();
//! let got = sakke::decapsulate(&zpub, id, &rsk, &sed).unwrap();
//! assert_eq!(got, ssv);
//! ```
#![forbid(unsafe_code)]

/// Redacted `Debug` ("Name(<redacted>)") and constant-time equality (`ConstantTimeEq`, and
/// `PartialEq`/`Eq` through it) for a secret type, comparing its field `$field`.
#[macro_export]
#[doc(hidden)]
macro_rules! secret_traits {
    ($ty:ident, $field:tt) => {
        impl core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(concat!(stringify!($ty), "(<redacted>)"))
            }
        }

        impl subtle::ConstantTimeEq for $ty {
            fn ct_eq(&self, other: &Self) -> subtle::Choice {
                // for the field's method (call sites may already have it in scope)
                #[allow(unused_imports)]
                use subtle::ConstantTimeEq as _;
                self.$field.ct_eq(&other.$field)
            }
        }

        impl PartialEq for $ty {
            fn eq(&self, other: &Self) -> bool {
                subtle::ConstantTimeEq::ct_eq(self, other).into()
            }
        }

        impl Eq for $ty {}
    };
}

pub mod bundle;
pub mod eccsi;
pub mod kdf;
pub mod keystore;
pub mod kms;
pub mod mikey;
pub mod sakke;

#[cfg(test)]
mod vectors;

/// Errors of the MIKEY-SAKKE crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value has the wrong length or encoding.
    #[error("invalid encoding of {0}")]
    Encoding(&'static str),
    /// A point is not on the curve (or is the point at infinity).
    #[error("{0} is not a valid curve point")]
    InvalidPoint(&'static str),
    /// A scalar is zero or not below the group order.
    #[error("{0} is out of range")]
    ScalarRange(&'static str),
    /// The SSK does not validate against KPAK, identifier and PVT (RFC 6507 §5.1.2).
    #[error("ECCSI SSK does not validate for this identifier")]
    InvalidSsk,
    /// An ECCSI signature does not verify (RFC 6507 §5.2.2).
    #[error("ECCSI signature does not verify")]
    BadSignature,
    /// The RSK does not validate against Z and the identifier (RFC 6508 §6.1.2).
    #[error("SAKKE RSK does not validate for this identifier")]
    InvalidRsk,
    /// The encapsulated data failed the R check of RFC 6508 §6.2.2.
    #[error("SAKKE encapsulated data does not decapsulate for this identifier")]
    Decapsulation,
    /// A MIKEY message uses a code point or feature that is not supported.
    #[error("unsupported {0}")]
    Unsupported(&'static str),
    /// The I_MESSAGE timestamp lies outside the accepted clock-skew window.
    #[error("I_MESSAGE timestamp outside the clock-skew window")]
    Timestamp,
    /// The I_MESSAGE (T, RAND, CSB ID) was already accepted (or the replay cache is full).
    #[error("I_MESSAGE replayed (or replay cache full)")]
    Replay,
    /// No key is held for this identity or period.
    #[error("no key for {0}")]
    NoKey(String),
    /// A keystore or key bundle is unreadable, malformed or holds a key that does not validate.
    #[error("{0}")]
    Keystore(String),
    /// A key bundle does not decrypt: wrong transfer code, or the bundle was altered.
    #[error("key bundle does not decrypt (wrong transfer code or damaged bundle)")]
    BundleDecrypt,
}
