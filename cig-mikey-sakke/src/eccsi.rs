//! ECCSI (RFC 6507): identity-based signatures on NIST P-256.
//!
//! This module owns the KMS side (KSAK/KPAK, issuing SSK/PVT for an identifier), SSK validation
//! (§5.1.2), signing (§5.2.1) and verification (§5.2.2). Signing uses a fresh ephemeral from the
//! caller's CSPRNG and a constant-time fixed-base table for `[j]G`; verification works on public
//! data only and uses a variable-time joint multiplication.

use std::sync::{Arc, Mutex, OnceLock};

use p256::elliptic_curve::Field;
use p256::elliptic_curve::group::Curve;
use p256::elliptic_curve::ops::{Invert, Reduce};
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use p256::elliptic_curve::subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use p256::elliptic_curve::{Group, PrimeField};
use p256::{AffinePoint, EncodedPoint, FieldBytes, ProjectivePoint, Scalar, U256};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;

/// Length of an uncompressed P-256 point, `04 || x || y`.
pub const POINT_LEN: usize = 65;
/// Length of a scalar or coordinate (N in RFC 6507).
pub const SCALAR_LEN: usize = 32;
/// Length of an ECCSI signature `r || s || PVT`.
pub const SIGNATURE_LEN: usize = 2 * SCALAR_LEN + POINT_LEN;

// ---------------------------------------------------------------------------------------------
// Point and scalar helpers

fn point_from_bytes(bytes: &[u8], what: &'static str) -> Result<AffinePoint, Error> {
    if bytes.len() != POINT_LEN || bytes[0] != 0x04 {
        return Err(Error::Encoding(what));
    }
    let ep = EncodedPoint::from_bytes(bytes).map_err(|_| Error::Encoding(what))?;
    let p: Option<AffinePoint> = AffinePoint::from_encoded_point(&ep).into();
    match p {
        Some(p) if !bool::from(ProjectivePoint::from(p).is_identity()) => Ok(p),
        _ => Err(Error::InvalidPoint(what)),
    }
}

fn point_to_bytes(p: &AffinePoint) -> [u8; POINT_LEN] {
    let ep = p.to_encoded_point(false);
    let mut out = [0u8; POINT_LEN];
    out.copy_from_slice(ep.as_bytes());
    out
}

/// A secret scalar in `1..q` from 32 big-endian bytes.
fn secret_scalar_from_bytes(bytes: &[u8], what: &'static str) -> Result<Scalar, Error> {
    let arr: [u8; SCALAR_LEN] = bytes.try_into().map_err(|_| Error::Encoding(what))?;
    let s: Option<Scalar> = Scalar::from_repr(FieldBytes::from(arr)).into();
    match s {
        Some(s) if !bool::from(s.is_zero()) => Ok(s),
        _ => Err(Error::ScalarRange(what)),
    }
}

fn random_nonzero_scalar(rng: &mut impl CryptoRngCore) -> Scalar {
    loop {
        let s = Scalar::random(&mut *rng);
        if !bool::from(s.is_zero()) {
            return s;
        }
    }
}

/// Window width of the fixed-base tables, in bits.
const WIDTH: usize = 6;
/// Largest digit magnitude: digits are signed, in `-32..=32`.
const HALF: usize = 1 << (WIDTH - 1);
/// Windows covering a 256-bit scalar (plus the carry of the signed recoding).
const ROWS: usize = (8 * SCALAR_LEN).div_ceil(WIDTH);

/// The scalar as signed `WIDTH`-bit digits `d_i` in `-32..=32` with `k = sum d_i 2^(WIDTH i)`,
/// least significant first; constant time (no value-dependent branches or indices).
fn signed_digits(k: &Scalar) -> [i8; ROWS] {
    let bytes: [u8; SCALAR_LEN] = k.to_bytes().into();
    let mut out = [0i8; ROWS];
    let mut carry = 0u32;
    for (i, o) in out.iter_mut().enumerate() {
        let mut w = 0u32;
        for b in 0..WIDTH {
            let bit = WIDTH * i + b;
            if bit < 8 * SCALAR_LEN {
                let byte = bytes[SCALAR_LEN - 1 - bit / 8];
                w |= u32::from((byte >> (bit % 8)) & 1) << b;
            }
        }
        let d = w + carry;
        // digits above 32 become d - 64 with a carry into the next window
        carry = (d + HALF as u32 - 1) >> WIDTH;
        *o = (d as i32 - ((carry as i32) << WIDTH)) as i8;
    }
    out
}

/// `[k]G` for the P-256 generator, constant time in `k`.
///
/// Uses a table of `[d * 64^i]G` for every window position `i` and digit `d` in `0..=32`, so
/// the product is 43 mixed additions of signed digits; each table row is scanned completely
/// with constant-time selects and the entry negated by a select for negative digits.
fn mul_g(k: &Scalar) -> ProjectivePoint {
    let table = generator_table();
    let mut digits = signed_digits(k);
    let mut acc = ProjectivePoint::IDENTITY;
    for (row, &d) in table.iter().zip(&digits) {
        let neg = (d >> 7) as u8 & 1;
        let abs = (d as u8 ^ neg.wrapping_neg()).wrapping_add(neg);
        let mut entry = AffinePoint::IDENTITY;
        for (i, p) in row.iter().enumerate() {
            entry.conditional_assign(p, (i as u8).ct_eq(&abs));
        }
        entry.conditional_assign(&-entry, Choice::from(neg));
        acc += entry;
    }
    digits.zeroize();
    acc
}

/// `[k]B` from a table of `B`'s multiples, for a public `k` (skips zero digits).
fn mul_table_vartime(table: &PointTable, k: &Scalar) -> ProjectivePoint {
    let mut acc = ProjectivePoint::IDENTITY;
    for (row, d) in table.iter().zip(signed_digits(k)) {
        match d {
            0 => {}
            1.. => acc += row[d.unsigned_abs() as usize],
            _ => acc -= row[d.unsigned_abs() as usize],
        }
    }
    acc
}

/// `[k]G` for a public `k`.
fn mul_g_vartime(k: &Scalar) -> ProjectivePoint {
    mul_table_vartime(generator_table(), k)
}

/// `[d * 64^i]B` for every window position `i` and digit `d` in `0..=32` (95 KiB).
type PointTable = [[AffinePoint; HALF + 1]; ROWS];

fn build_table(base: ProjectivePoint) -> Box<PointTable> {
    let mut proj = vec![ProjectivePoint::IDENTITY; ROWS * (HALF + 1)];
    let mut base = base;
    for row in proj.chunks_mut(HALF + 1) {
        for d in 1..=HALF {
            row[d] = row[d - 1] + base;
        }
        // next base = 64 * base
        base = row[HALF].double();
    }
    let mut affine = vec![AffinePoint::IDENTITY; ROWS * (HALF + 1)];
    ProjectivePoint::batch_normalize(&proj, &mut affine);
    let mut table = Box::new([[AffinePoint::IDENTITY; HALF + 1]; ROWS]);
    for (dst, src) in table.iter_mut().zip(affine.chunks(HALF + 1)) {
        dst.copy_from_slice(src);
    }
    table
}

fn generator_table() -> &'static PointTable {
    static TABLE: OnceLock<Box<PointTable>> = OnceLock::new();
    TABLE.get_or_init(|| build_table(ProjectivePoint::GENERATOR))
}

/// Builds the signing table now rather than in the first [`SigningKey::sign`].
pub(crate) fn prepare_signing() {
    generator_table();
}

/// Public points seen by [`verify`] (KPAKs and signers' PVTs), most recent last. A point gets a
/// table the second time it is seen, so a peer that signs every I_MESSAGE of a month with the
/// same PVT is verified without doublings, while one-off signers cost no table build. One
/// verification builds it; verifications running meanwhile go without it.
const TABLE_CACHE_LEN: usize = 32;

enum Slot {
    Seen,
    Building,
    Built(Arc<PointTable>),
}

type TableCache = Vec<(AffinePoint, Slot)>;

fn table_cache() -> &'static Mutex<TableCache> {
    static CACHE: Mutex<TableCache> = Mutex::new(Vec::new());
    &CACHE
}

fn cached_table(p: &AffinePoint) -> Option<Arc<PointTable>> {
    {
        let mut cache = table_cache().lock().unwrap_or_else(|e| e.into_inner());
        match cache.iter().position(|(q, _)| q == p) {
            Some(i) => {
                let mut entry = cache.remove(i);
                // Some(answer) unless this caller claims the build.
                let answer = match &entry.1 {
                    Slot::Built(t) => Some(Some(t.clone())),
                    Slot::Building => Some(None),
                    Slot::Seen => None,
                };
                if answer.is_none() {
                    entry.1 = Slot::Building;
                }
                cache.push(entry);
                if let Some(answer) = answer {
                    return answer;
                }
            }
            None => {
                if cache.len() == TABLE_CACHE_LEN {
                    cache.remove(0);
                }
                cache.push((*p, Slot::Seen));
                return None;
            }
        }
    }
    let table: Arc<PointTable> = Arc::from(build_table(ProjectivePoint::from(*p)));
    let mut cache = table_cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(entry) = cache.iter_mut().find(|(q, _)| q == p) {
        entry.1 = Slot::Built(table.clone());
    }
    Some(table)
}

/// `sum [k_i] P_i` for public scalars and points (Straus, 4-bit windows, variable time).
fn lincomb_vartime(terms: &[(ProjectivePoint, Scalar)]) -> ProjectivePoint {
    let tables: Vec<[ProjectivePoint; 16]> = terms
        .iter()
        .map(|(p, _)| {
            let mut t = [ProjectivePoint::IDENTITY; 16];
            for d in 1..16 {
                t[d] = t[d - 1] + p;
            }
            t
        })
        .collect();
    let digits: Vec<[u8; SCALAR_LEN]> = terms.iter().map(|(_, k)| k.to_bytes().into()).collect();
    let mut acc = ProjectivePoint::IDENTITY;
    for i in (0..64).rev() {
        for _ in 0..4 {
            acc = acc.double();
        }
        for (t, k) in tables.iter().zip(&digits) {
            let nibble = (k[SCALAR_LEN - 1 - i / 2] >> (4 * (i % 2))) & 0x0f;
            if nibble != 0 {
                acc += t[usize::from(nibble)];
            }
        }
    }
    acc
}

// ---------------------------------------------------------------------------------------------
// Keys

/// KMS Secret Authentication Key (KSAK), a scalar in `1..q`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Ksak(Scalar);

impl Ksak {
    /// Parses 32 big-endian bytes; the value must be in `1..q`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        secret_scalar_from_bytes(bytes, "KSAK").map(Self)
    }
    /// The 32-byte big-endian encoding (secret: handle with care).
    pub fn to_bytes(&self) -> [u8; SCALAR_LEN] {
        self.0.to_bytes().into()
    }
    /// The matching public key, `KPAK = [KSAK]G`.
    pub fn public_key(&self) -> Kpak {
        Kpak(mul_g(&self.0).to_affine())
    }
}

crate::secret_traits!(Ksak, 0);

/// KMS Public Authentication Key (KPAK), a P-256 point.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Kpak(AffinePoint);

impl Kpak {
    /// Parses an uncompressed point `04 || x || y` (65 bytes); it must lie on P-256.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        point_from_bytes(bytes, "KPAK").map(Self)
    }
    /// The uncompressed encoding `04 || x || y`.
    pub fn to_bytes(&self) -> [u8; POINT_LEN] {
        point_to_bytes(&self.0)
    }
}

impl core::fmt::Debug for Kpak {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Kpak(")?;
        for b in self.to_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// Secret Signing Key (SSK) of one identifier, a scalar in `1..q`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Ssk(Scalar);

impl Ssk {
    /// Parses 32 big-endian bytes; the value must be in `1..q`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        secret_scalar_from_bytes(bytes, "SSK").map(Self)
    }
    /// The 32-byte big-endian encoding (secret: handle with care).
    pub fn to_bytes(&self) -> [u8; SCALAR_LEN] {
        self.0.to_bytes().into()
    }
}

crate::secret_traits!(Ssk, 0);

/// Public Validation Token (PVT) of one identifier, a P-256 point.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Pvt(AffinePoint);

impl Pvt {
    /// Parses an uncompressed point `04 || x || y` (65 bytes); it must lie on P-256.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        point_from_bytes(bytes, "PVT").map(Self)
    }
    /// The uncompressed encoding `04 || x || y`.
    pub fn to_bytes(&self) -> [u8; POINT_LEN] {
        point_to_bytes(&self.0)
    }
}

impl core::fmt::Debug for Pvt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Pvt(")?;
        for b in self.to_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// Generates a KMS community key pair (KSAK, KPAK = [KSAK]G).
pub fn generate_community(rng: &mut impl CryptoRngCore) -> (Ksak, Kpak) {
    let ksak = Ksak(random_nonzero_scalar(rng));
    let kpak = ksak.public_key();
    (ksak, kpak)
}

/// `HS = hash(G || KPAK || ID || PVT)` (RFC 6507 §5.1.1 step 3), as the 32-byte digest.
fn hs_digest(kpak: &Kpak, id: &[u8], pvt: &Pvt) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(point_to_bytes(&AffinePoint::GENERATOR));
    h.update(kpak.to_bytes());
    h.update(id);
    h.update(pvt.to_bytes());
    h.finalize().into()
}

fn hs_scalar(kpak: &Kpak, id: &[u8], pvt: &Pvt) -> Scalar {
    <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(hs_digest(kpak, id, pvt)))
}

/// Issues the SSK and PVT of `id` (RFC 6507 §5.1.1): `v` random, `PVT = [v]G`,
/// `SSK = KSAK + HS * v mod q`.
pub fn issue_user_key(
    ksak: &Ksak,
    kpak: &Kpak,
    id: &[u8],
    rng: &mut impl CryptoRngCore,
) -> (Ssk, Pvt) {
    loop {
        let mut v = random_nonzero_scalar(rng);
        let pvt = Pvt(mul_g(&v).to_affine());
        let hs = hs_scalar(kpak, id, &pvt);
        let ssk = ksak.0 + hs * v;
        v.zeroize();
        // SSK = 0 is not a usable key; the RFC says to pick another v.
        if !bool::from(ssk.is_zero()) {
            return (Ssk(ssk), pvt);
        }
    }
}

/// Validates a received SSK (RFC 6507 §5.1.2): PVT on the curve (checked when parsed), then
/// `KPAK == [SSK]G - [HS]PVT`.
pub fn validate_ssk(kpak: &Kpak, id: &[u8], ssk: &Ssk, pvt: &Pvt) -> Result<(), Error> {
    let hs = hs_scalar(kpak, id, pvt);
    check_ssk(kpak, &hs, ssk, pvt)
}

fn check_ssk(kpak: &Kpak, hs: &Scalar, ssk: &Ssk, pvt: &Pvt) -> Result<(), Error> {
    let lhs = mul_g(&ssk.0) - ProjectivePoint::from(pvt.0) * hs;
    if bool::from(lhs.to_affine().ct_eq(&kpak.0)) {
        Ok(())
    } else {
        Err(Error::InvalidSsk)
    }
}

// ---------------------------------------------------------------------------------------------
// Signatures

/// An ECCSI signature `r || s || PVT` (129 bytes, RFC 6507 §3.3).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; SIGNATURE_LEN]);

impl Signature {
    /// Takes exactly 129 bytes; the contents are checked by [`verify`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let arr: [u8; SIGNATURE_LEN] = bytes
            .try_into()
            .map_err(|_| Error::Encoding("ECCSI signature length"))?;
        Ok(Self(arr))
    }
    /// The 129 bytes `r || s || PVT`.
    pub fn as_bytes(&self) -> &[u8; SIGNATURE_LEN] {
        &self.0
    }
}

impl core::fmt::Debug for Signature {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Signature(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// A validated signing key: identifier, SSK, PVT and KPAK with `HS` precomputed.
#[derive(Clone)]
pub struct SigningKey {
    id: Vec<u8>,
    ssk: Ssk,
    pvt: Pvt,
    hs: [u8; 32],
}

impl core::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &String::from_utf8_lossy(&self.id))
            .field("ssk", &self.ssk)
            .field("pvt", &self.pvt)
            .finish()
    }
}

impl SigningKey {
    /// Validates the SSK (RFC 6507 §5.1.2) and keeps `HS` for signing.
    pub fn new(kpak: &Kpak, id: &[u8], ssk: Ssk, pvt: Pvt) -> Result<Self, Error> {
        let hs = hs_digest(kpak, id, &pvt);
        let hs_s = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(hs));
        check_ssk(kpak, &hs_s, &ssk, &pvt)?;
        Ok(Self {
            id: id.to_vec(),
            ssk,
            pvt,
            hs,
        })
    }

    /// Whether this key is the one [`Self::new`] makes of these inputs (one SHA-256 and
    /// comparisons — the SSK in constant time — instead of `new`'s two scalar multiplications):
    /// for a cache of validated keys.
    pub fn is_for(&self, kpak: &Kpak, id: &[u8], ssk: &Ssk, pvt: &Pvt) -> bool {
        self.id == id
            && self.pvt == *pvt
            && bool::from(self.ssk.ct_eq(ssk))
            && hs_digest(kpak, id, pvt) == self.hs
    }

    /// The identifier this key signs for.
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// The PVT carried in every signature.
    pub fn pvt(&self) -> &Pvt {
        &self.pvt
    }

    /// Signs `msg` (RFC 6507 §5.2.1) with a fresh ephemeral `j` from `rng`.
    pub fn sign(&self, msg: &[u8], rng: &mut impl CryptoRngCore) -> Signature {
        loop {
            let mut j = random_nonzero_scalar(rng);
            let blind = random_nonzero_scalar(rng);
            let sig = self.sign_with_ephemeral(msg, &j, &blind);
            j.zeroize();
            if let Some(sig) = sig {
                return sig;
            }
        }
    }

    /// Steps 2–8 of §5.2.1 for a given ephemeral `j`; `None` when the RFC says to pick another.
    /// `blind` is a random non-zero scalar that hides the secret from the variable-time
    /// inversion: `t^-1 = blind * (t * blind)^-1`.
    fn sign_with_ephemeral(&self, msg: &[u8], j: &Scalar, blind: &Scalar) -> Option<Signature> {
        // 2) J = [j]G, r = Jx
        let big_j = mul_g(j).to_affine();
        let jx = big_j.to_encoded_point(false);
        let r_bytes: [u8; SCALAR_LEN] = (*jx.x()?).into();
        let r = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(r_bytes));
        if bool::from(r.is_zero()) {
            return None;
        }
        // 3) HE = hash(HS || r || M)
        let he = Sha256::new()
            .chain_update(self.hs)
            .chain_update(r_bytes)
            .chain_update(msg)
            .finalize();
        let he = <Scalar as Reduce<U256>>::reduce_bytes(&he);
        // 4) HE + r * SSK must be non-zero
        let mut t = he + r * self.ssk.0;
        let inv: Option<Scalar> = Invert::invert_vartime(&(t * blind))
            .map(|i| i * blind)
            .into();
        t.zeroize();
        // 5) s' = (HE + r * SSK)^-1 * j mod q; 6) s' < q always fits N octets, so s = s'
        let s = inv? * j;
        if bool::from(s.is_zero()) {
            return None;
        }
        let mut out = [0u8; SIGNATURE_LEN];
        out[..SCALAR_LEN].copy_from_slice(&r_bytes);
        out[SCALAR_LEN..2 * SCALAR_LEN].copy_from_slice(&s.to_bytes());
        out[2 * SCALAR_LEN..].copy_from_slice(&self.pvt.to_bytes());
        Some(Signature(out))
    }

    /// Deterministic signing with a caller-chosen ephemeral, only for reproducing the RFC 6507
    /// Appendix A vector. Reusing an ephemeral reveals the SSK.
    #[cfg(test)]
    pub(crate) fn sign_with_fixed_ephemeral_for_test_vectors(
        &self,
        msg: &[u8],
        j: &[u8],
    ) -> Option<Signature> {
        let j = secret_scalar_from_bytes(j, "j").ok()?;
        self.sign_with_ephemeral(msg, &j, &Scalar::from(0x5eed_u64))
    }
}

/// Verifies `sig` over `msg` by `id` (RFC 6507 §5.2.2).
pub fn verify(kpak: &Kpak, id: &[u8], msg: &[u8], sig: &Signature) -> Result<(), Error> {
    let (r_bytes, rest) = sig.0.split_at(SCALAR_LEN);
    let (s_bytes, pvt_bytes) = rest.split_at(SCALAR_LEN);
    // 1) PVT must be a valid point
    let pvt = Pvt::from_bytes(pvt_bytes).map_err(|_| Error::BadSignature)?;
    let s = secret_scalar_from_bytes(s_bytes, "s").map_err(|_| Error::BadSignature)?;
    let r_arr: [u8; SCALAR_LEN] = r_bytes.try_into().map_err(|_| Error::BadSignature)?;
    let r = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(r_arr));
    // 2) HS = hash(G || KPAK || ID || PVT)
    let hs_d = hs_digest(kpak, id, &pvt);
    let hs = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(hs_d));
    // 3) HE = hash(HS || r || M)
    let he = Sha256::new()
        .chain_update(hs_d)
        .chain_update(r_bytes)
        .chain_update(msg)
        .finalize();
    let he = <Scalar as Reduce<U256>>::reduce_bytes(&he);
    // 4) Y = [HS]PVT + KPAK; 5) J = [s]([HE]G + [r]Y)
    //    = [s*HE]G + [s*r*HS]PVT + [s*r]KPAK, one fixed-base and one joint multiplication.
    //    Points with a cached table cost no doublings; the rest share one Straus loop.
    let sr = s * r;
    let mut j = mul_g_vartime(&(s * he));
    let mut rest = Vec::with_capacity(2);
    for (point, k) in [(pvt.0, sr * hs), (kpak.0, sr)] {
        match cached_table(&point) {
            Some(t) => j += mul_table_vartime(&t, &k),
            None => rest.push((ProjectivePoint::from(point), k)),
        }
    }
    if !rest.is_empty() {
        j += lincomb_vartime(&rest);
    }
    // 6) Jx == r (mod p), J not the identity
    let j = j.to_affine();
    if bool::from(ProjectivePoint::from(j).is_identity()) {
        return Err(Error::BadSignature);
    }
    let enc = j.to_encoded_point(false);
    match enc.x() {
        Some(x) if x[..] == *r_bytes => Ok(()),
        _ => Err(Error::BadSignature),
    }
}

#[cfg(test)]
mod tests;
