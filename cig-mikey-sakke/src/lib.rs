//! MIKEY-SAKKE cryptography for CIG: ECCSI signatures (RFC 6507) on P-256 and SAKKE key
//! encapsulation (RFC 6508) with the RFC 6509 parameter set 1.
//!
//! The secure domain authenticates every I_MESSAGE with ECCSI and carries the shared secret
//! value (SSV) encapsulated with SAKKE to the responder's identifier.
//!
//! ```
//! use cig_mikey_sakke::eccsi;
//! use rand_core::OsRng;
//!
//! let id = b"2011-02\0tel:+447700900123\0";
//! // KMS side: community keys and the user's keys.
//! let (ksak, kpak) = eccsi::generate_community(&mut OsRng);
//! let (ssk, pvt) = eccsi::issue_user_key(&ksak, &kpak, id, &mut OsRng);
//!
//! // Sender signs, receiver verifies.
//! let signer = eccsi::SigningKey::new(&kpak, id, ssk, pvt).unwrap();
//! let sig = signer.sign(b"I_MESSAGE bytes", &mut OsRng);
//! eccsi::verify(&kpak, id, b"I_MESSAGE bytes", &sig).unwrap();
//! ```
#![forbid(unsafe_code)]

pub mod eccsi;

#[cfg(test)]
#[allow(dead_code)] // SAKKE vectors land with the SAKKE module
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
}
