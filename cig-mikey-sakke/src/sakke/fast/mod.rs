//! SAKKE fast path: 16 × 64-bit Montgomery arithmetic, Jacobian coordinates, fixed-base tables
//! for P (global), Z (per KMS key) and g (global), and per-RSK Miller-loop lines. Constant
//! time in the SSV, r, z and the RSK.

use std::sync::OnceLock;

use num_bigint::BigUint;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::{FP_LEN, PX_HEX, PY_HEX, SSV_LEN};

pub(crate) mod curve;
pub(crate) mod fp;
pub(crate) mod pairing;
mod safegcd;

use curve::{Affine, FixedBaseTable, Jacobian};
use fp::{Fp, LIMBS, Limbs, scalar};
pub(crate) use pairing::PreparedRsk;

fn fp_from_hex(h: &str) -> Fp {
    let x = BigUint::parse_bytes(h.as_bytes(), 16).unwrap_or_default();
    let mut bytes = [0u8; FP_LEN];
    let b = x.to_bytes_be();
    bytes[FP_LEN - b.len()..].copy_from_slice(&b);
    Fp::from_be_bytes(&bytes).unwrap_or(Fp::ZERO)
}

/// The generator P of parameter set 1.
pub(crate) fn generator() -> Affine {
    Affine {
        x: fp_from_hex(PX_HEX),
        y: fp_from_hex(PY_HEX),
    }
}

/// `[d * 128^i]P` for `d` in `0..=64`, built on first use (2.3 MiB).
pub(crate) fn p_table() -> &'static FixedBaseTable {
    static T: OnceLock<FixedBaseTable> = OnceLock::new();
    T.get_or_init(|| FixedBaseTable::new(&generator()))
}

/// `g^(d * 128^i)` for `d` in `0..=64`, built on first use (1.2 MiB).
pub(crate) fn gt_table() -> &'static pairing::GtTable {
    static T: OnceLock<pairing::GtTable> = OnceLock::new();
    T.get_or_init(pairing::GtTable::new)
}

/// The identifier read as an integer, reduced mod q (public).
pub(crate) fn id_scalar(id: &[u8]) -> Limbs {
    let b = BigUint::from_bytes_be(id) % &super::reference::params().q;
    let mut out = [0u64; LIMBS];
    for (o, d) in out.iter_mut().zip(b.iter_u64_digits()) {
        *o = d;
    }
    out
}

/// HashToIntegerRange( s, q, SHA-256 ): l = 4 blocks, then a constant-time reduction.
fn hash_to_q(s: &[u8]) -> Limbs {
    let mut v = super::hash_expand(s, 4);
    let x = fp::limbs_from_be(&v);
    v.zeroize();
    scalar::reduce_mod_q(&x)
}

/// HashToIntegerRange( w, 2^128, SHA-256 ): one block, keep the low 128 bits.
fn mask(w: &[u8; FP_LEN]) -> [u8; SSV_LEN] {
    let v = super::hash_expand(w, 1);
    let mut out = [0u8; SSV_LEN];
    out.copy_from_slice(&v[v.len() - SSV_LEN..]);
    out
}

/// r = HashToIntegerRange( SSV || b, q )
fn derive_r(ssv: &[u8; SSV_LEN], id: &[u8]) -> Limbs {
    let mut input = Vec::with_capacity(SSV_LEN + id.len());
    input.extend_from_slice(ssv);
    input.extend_from_slice(id);
    let r = hash_to_q(&input);
    input.zeroize();
    r
}

/// How to compute `[r]([b]P + Z)` for one identifier `b` and KMS key `Z`.
#[derive(Debug)]
pub(crate) enum IdPoint<'a> {
    /// `[r b]P + [r]Z` from the global P table and the per-KMS Z table.
    Split {
        z_table: &'a FixedBaseTable,
        b: Limbs,
    },
    /// A table for `[b]P + Z` itself (per identifier: half the additions).
    Table(&'a FixedBaseTable),
}

impl IdPoint<'_> {
    pub(crate) fn split<'a>(z_table: &'a FixedBaseTable, id: &[u8]) -> IdPoint<'a> {
        IdPoint::Split {
            z_table,
            b: id_scalar(id),
        }
    }

    /// `[r]([b]P + Z)`, constant time in `r`.
    fn mul(&self, r: &Limbs) -> Jacobian {
        match self {
            IdPoint::Split { z_table, b } => {
                let mut rb = scalar::mul_mod_q(r, b);
                let out = FixedBaseTable::mul(&[(p_table(), &rb), (z_table, r)]);
                rb.zeroize();
                out
            }
            IdPoint::Table(t) => FixedBaseTable::mul(&[(t, r)]),
        }
    }
}

/// `[b]P + Z` in affine coordinates; `None` for the identity (b = -z mod q).
pub(crate) fn id_point(z: &Affine, id: &[u8]) -> Option<Affine> {
    let bp = FixedBaseTable::mul(&[(p_table(), &id_scalar(id))]);
    bp.add_vartime(&z.to_jacobian()).to_affine()
}

fn encode(p: &Affine) -> [u8; super::POINT_LEN] {
    super::encode_point(&p.x.to_be_bytes(), &p.y.to_be_bytes())
}

/// §6.2.1; `None` only if [r]([b]P + Z) is the identity (b = -z mod q, or r = 0).
pub(crate) fn encapsulate(
    id_point: &IdPoint<'_>,
    id: &[u8],
    ssv: &[u8; SSV_LEN],
) -> Option<[u8; super::SED_LEN]> {
    let mut r = derive_r(ssv, id);
    let big_r = id_point.mul(&r);
    let (a, b) = gt_table().pow(&r);
    r.zeroize();
    // one inversion for both Z of R and the real part of g^r
    let mut inv = [big_r.z, a];
    fp::batch_invert(&mut inv);
    let big_r = big_r.to_affine_with_inverse(&inv[0])?;
    let g_r = b.mul(&inv[1]).to_be_bytes();
    let m = mask(&g_r);
    let mut out = [0u8; super::SED_LEN];
    out[..super::POINT_LEN].copy_from_slice(&encode(&big_r));
    for (o, (s, m)) in out[super::POINT_LEN..].iter_mut().zip(ssv.iter().zip(m)) {
        *o = s ^ m;
    }
    Some(out)
}

/// §6.2.2 steps 2–5; `None` when the R check fails.
pub(crate) fn decapsulate(
    id_point: &IdPoint<'_>,
    rsk: &PreparedRsk,
    id: &[u8],
    big_r: &Affine,
    h: &[u8; SSV_LEN],
) -> Option<[u8; SSV_LEN]> {
    // 2) w = <R, K_b>
    let w = rsk.pairing(big_r).to_be_bytes();
    // 3) SSV = H XOR HashToIntegerRange( w, 2^n )
    let m = mask(&w);
    let mut ssv = [0u8; SSV_LEN];
    for (o, (h, m)) in ssv.iter_mut().zip(h.iter().zip(m)) {
        *o = h ^ m;
    }
    // 4) r = HashToIntegerRange( SSV || b, q ); 5) TEST = [r]([b]P + Z) must equal R
    let mut r = derive_r(&ssv, id);
    let test = id_point.mul(&r);
    r.zeroize();
    if bool::from(test.ct_eq_affine(big_r)) {
        Some(ssv)
    } else {
        ssv.zeroize();
        None
    }
}

/// `[k]P` for a secret `k < q`.
pub(crate) fn mul_generator(k: &Limbs) -> Option<Affine> {
    FixedBaseTable::mul(&[(p_table(), k)]).to_affine()
}

/// §6.1.1: `[(b + z)^-1]P`; `None` when `b + z = 0 mod q`.
pub(crate) fn issue_rsk(z: &[u8; FP_LEN], id: &[u8]) -> Option<Affine> {
    let mut zl = fp::limbs_from_be(z);
    let mut s = scalar::add_mod_q(&id_scalar(id), &zl);
    let mut inv = scalar::invert_mod_q(&s);
    let k = mul_generator(&inv);
    zl.zeroize();
    s.zeroize();
    inv.zeroize();
    k
}

/// §6.1.2: `<[b]P + Z, K_b> == g` for `a = [b]P + Z`.
pub(crate) fn validate_rsk(a: &Affine, rsk: &PreparedRsk) -> bool {
    let w = rsk.pairing(a);
    bool::from(w.ct_eq(&fp_from_hex(super::G_HEX)))
}
