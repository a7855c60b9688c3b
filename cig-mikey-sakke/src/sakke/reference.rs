//! SAKKE reference path on `num-bigint`, following the RFC 6508 pseudocode line by line.
//!
//! Affine points, a Miller loop exactly as in RFC 6508 §3.2, `g^r` by square-and-multiply with
//! the PF_p product of §2.1. Slow (hundreds of milliseconds per operation) and not constant
//! time: it exists so the fast path can be checked against something easy to read, and it is
//! what the Appendix A values are traced through.

use std::sync::OnceLock;

use num_bigint::BigUint;
use num_traits::{One, Zero};

use super::{
    EncapsulatedData, KmsPublicKey, MasterSecret, Rsk, SSV_LEN, Ssv, encode_point, xor_mask,
};
use crate::Error;

/// An affine point of E(F_p); `None` is the point at infinity.
pub type Point = Option<(BigUint, BigUint)>;

/// Parameter set 1 (RFC 6509 Appendix A) as big integers.
#[derive(Debug)]
pub struct Params {
    /// Field prime p.
    pub p: BigUint,
    /// Subgroup order q = (p + 1) / 4.
    pub q: BigUint,
    /// Generator P of E(F_p)[q].
    pub point_p: (BigUint, BigUint),
    /// g = <P, P> as its F_p representative.
    pub g: BigUint,
}

/// The parameters, parsed once.
pub fn params() -> &'static Params {
    static PARAMS: OnceLock<Params> = OnceLock::new();
    PARAMS.get_or_init(|| {
        let h = |s: &str| BigUint::parse_bytes(s.as_bytes(), 16).expect("constant hex");
        Params {
            p: h(super::P_HEX),
            q: h(super::Q_HEX),
            point_p: (h(super::PX_HEX), h(super::PY_HEX)),
            g: h(super::G_HEX),
        }
    })
}

fn fp_sub(a: &BigUint, b: &BigUint) -> BigUint {
    let p = &params().p;
    ((a % p) + p - (b % p)) % p
}

fn fp_inv(a: &BigUint) -> Option<BigUint> {
    (a % &params().p).modinv(&params().p)
}

/// Is (x, y) on E: y^2 = x^3 - 3x?
pub fn on_curve(x: &BigUint, y: &BigUint) -> bool {
    let p = &params().p;
    x < p && y < p && (y * y) % p == fp_sub(&(x * x * x), &(BigUint::from(3u8) * x))
}

/// Affine point addition on E (chord and tangent).
pub fn add(a: &Point, b: &Point) -> Point {
    let p = &params().p;
    let (ax, ay) = match a {
        None => return b.clone(),
        Some(v) => v,
    };
    let (bx, by) = match b {
        None => return a.clone(),
        Some(v) => v,
    };
    let l = if ax == bx {
        if (ay + by) % p == BigUint::zero() {
            return None;
        }
        // tangent: l = (3x^2 - 3) / (2y)
        fp_sub(&(BigUint::from(3u8) * ax * ax), &BigUint::from(3u8)) * fp_inv(&(ay * 2u8))?
    } else {
        fp_sub(by, ay) * fp_inv(&fp_sub(bx, ax))?
    } % p;
    let x = fp_sub(&(&l * &l), &(ax + bx));
    let y = fp_sub(&(&l * fp_sub(ax, &x)), ay);
    Some((x, y))
}

/// `[k]A` by left-to-right double-and-add.
pub fn mul(k: &BigUint, a: &Point) -> Point {
    let mut acc: Point = None;
    for i in (0..k.bits()).rev() {
        acc = add(&acc, &acc);
        if k.bit(i) {
            acc = add(&acc, a);
        }
    }
    acc
}

/// An element a + i*b of F_p^2.
type Fp2 = (BigUint, BigUint);

fn fp2_mul(x: &Fp2, y: &Fp2) -> Fp2 {
    let p = &params().p;
    let re = fp_sub(&(&x.0 * &y.0), &(&x.1 * &y.1));
    let im = (&x.0 * &y.1 + &x.1 * &y.0) % p;
    (re, im)
}

/// The pairing `<R, Q>` of RFC 6508 §3.2 returned as its representative in F_p.
/// `None` if a denominator vanishes (only for points outside E(F_p)[q]).
pub fn pairing(r: &(BigUint, BigUint), q_pt: &(BigUint, BigUint)) -> Option<BigUint> {
    let prm = params();
    let p = &prm.p;
    let (rx, ry) = r;
    let (qx, qy) = q_pt;
    // v = (F_p)*; C = R; c = (p+1)/q
    let mut v: Fp2 = (BigUint::one(), BigUint::zero());
    let mut c_pt = r.clone();
    let c = (p + 1u8) / &prm.q;
    // for bits of q-1, starting with the second most significant bit, ending with the least
    // significant bit
    let q1 = &prm.q - 1u8;
    for i in (0..q1.bits() - 1).rev() {
        let (cx, cy) = &c_pt;
        // gradient of line through C, C, [-2]C: l = 3*(C_x^2 - 1) / (2*C_y)
        let l =
            BigUint::from(3u8) * fp_sub(&(cx * cx), &BigUint::one()) % p * fp_inv(&(cy * 2u8))? % p;
        // v = v^2 * ( l*(Q_x + C_x) + (i*Q_y - C_y) )
        let line = ((&l * (qx + cx) + p - cy) % p, qy.clone());
        v = fp2_mul(&fp2_mul(&v, &v), &line);
        // C = [2]C
        c_pt = add(&Some(c_pt.clone()), &Some(c_pt))?;
        if q1.bit(i) {
            let (cx, cy) = &c_pt;
            // gradient of line through C, R, -C-R: l = (C_y - R_y) / (C_x - R_x)
            let l = fp_sub(cy, ry) * fp_inv(&fp_sub(cx, rx))? % p;
            // v = v * ( l*(Q_x + C_x) + (i*Q_y - C_y) )
            let line = ((&l * (qx + cx) + p - cy) % p, qy.clone());
            v = fp2_mul(&v, &line);
            // C = C + R
            c_pt = add(&Some(c_pt), &Some(r.clone()))?;
        }
    }
    // t = v^c
    let mut t: Fp2 = (BigUint::one(), BigUint::zero());
    for i in (0..c.bits()).rev() {
        t = fp2_mul(&t, &t);
        if c.bit(i) {
            t = fp2_mul(&t, &v);
        }
    }
    // representative in F_p of t: t = a + i*b -> b/a
    Some(t.1 * fp_inv(&t.0)? % p)
}

/// The PF_p product of §2.1 on representatives: (1 + a i)(1 + b i) -> (a + b) / (1 - a b).
pub fn pf_mul(a: &BigUint, b: &BigUint) -> Option<BigUint> {
    let p = &params().p;
    Some((a + b) % p * fp_inv(&fp_sub(&BigUint::one(), &(a * b)))? % p)
}

/// `g^r` in PF_p[q] by square-and-multiply with [`pf_mul`] (§6.2.1 step 4a).
pub fn pf_pow(g: &BigUint, r: &BigUint) -> Option<BigUint> {
    // 0 represents 1 + 0i, the identity of PF_p.
    let mut acc = BigUint::zero();
    for i in (0..r.bits()).rev() {
        acc = pf_mul(&acc, &acc)?;
        if r.bit(i) {
            acc = pf_mul(&acc, g)?;
        }
    }
    Some(acc)
}

/// HashToIntegerRange( s, n, SHA-256 ) of RFC 6508 §5.1.
pub fn hash_to_integer_range(s: &[u8], n: &BigUint) -> BigUint {
    // 3) l = Ceiling(lg(n)/hashlen): lg(n) is exact for a power of two, else it lies strictly
    //    between bits-1 and bits and rounds up like bits does
    let lg = if n.count_ones() == 1 {
        n.bits() - 1
    } else {
        n.bits()
    };
    let l = usize::try_from(lg.div_ceil(256)).unwrap_or(usize::MAX);
    // 1), 2), 4), 5): v' = v_1 || ... || v_l
    let v_prime = super::hash_expand(s, l);
    // 6) v = v' mod n
    BigUint::from_bytes_be(&v_prime) % n
}

fn fp_bytes(x: &BigUint) -> [u8; super::FP_LEN] {
    let b = x.to_bytes_be();
    let mut out = [0u8; super::FP_LEN];
    out[super::FP_LEN - b.len()..].copy_from_slice(&b);
    out
}

fn decode_point(bytes: &[u8; super::POINT_LEN], what: &'static str) -> Result<Point, Error> {
    let x = BigUint::from_bytes_be(&bytes[1..=super::FP_LEN]);
    let y = BigUint::from_bytes_be(&bytes[1 + super::FP_LEN..]);
    if bytes[0] != 0x04 || !on_curve(&x, &y) {
        return Err(Error::InvalidPoint(what));
    }
    Ok(Some((x, y)))
}

/// `[b]P + Z` for identifier `b` read as a big-endian integer.
fn id_point(zpub: &KmsPublicKey, id: &[u8]) -> Result<Point, Error> {
    let prm = params();
    let b = BigUint::from_bytes_be(id) % &prm.q;
    let z = decode_point(zpub.as_bytes(), "Z")?;
    Ok(add(&mul(&b, &Some(prm.point_p.clone())), &z))
}

/// The intermediate values of §6.2.1 for one SSV, for tracing the appendix.
#[derive(Debug)]
pub struct EncapsulationTrace {
    /// r = HashToIntegerRange( SSV || b, q, Hash )
    pub r: BigUint,
    /// R_(b,S) = [r]([b]P + Z_S)
    pub big_r: (BigUint, BigUint),
    /// g^r, as its F_p representative
    pub g_r: BigUint,
    /// HashToIntegerRange( g^r, 2^n, Hash )
    pub mask: BigUint,
    /// The encapsulated data R || H
    pub sed: EncapsulatedData,
}

/// §6.2.1 with every intermediate value.
pub fn encapsulate_trace(
    zpub: &KmsPublicKey,
    id: &[u8],
    ssv: &Ssv,
) -> Result<EncapsulationTrace, Error> {
    let prm = params();
    // 2) r = HashToIntegerRange( SSV || b, q, Hash )
    let r = hash_to_integer_range(&[ssv.as_bytes().as_slice(), id].concat(), &prm.q);
    // 3) R_(b,S) = [r]([b]P + Z_S)
    let big_r = mul(&r, &id_point(zpub, id)?).ok_or(Error::InvalidPoint("R"))?;
    // 4a) g^r
    let g_r = pf_pow(&prm.g, &r).ok_or(Error::InvalidPoint("g^r"))?;
    // 4b) H = SSV XOR HashToIntegerRange( g^r, 2^n, Hash )
    let mask = hash_to_integer_range(&fp_bytes(&g_r), &(BigUint::one() << (8 * SSV_LEN)));
    let h = xor_mask(ssv, &mask_bytes(&mask));
    // 5) Encapsulated Data ( R_(b,S), H )
    let sed =
        EncapsulatedData::from_parts(&encode_point(&fp_bytes(&big_r.0), &fp_bytes(&big_r.1)), &h);
    Ok(EncapsulationTrace {
        r,
        big_r,
        g_r,
        mask,
        sed,
    })
}

fn mask_bytes(mask: &BigUint) -> [u8; SSV_LEN] {
    let b = mask.to_bytes_be();
    let mut out = [0u8; SSV_LEN];
    out[SSV_LEN - b.len()..].copy_from_slice(&b);
    out
}

/// §6.2.1: encapsulates `ssv` to identifier `id` under KMS public key `zpub`.
pub fn encapsulate(zpub: &KmsPublicKey, id: &[u8], ssv: &Ssv) -> Result<EncapsulatedData, Error> {
    encapsulate_trace(zpub, id, ssv).map(|t| t.sed)
}

/// §6.2.2: recovers the SSV, including the R check.
pub fn decapsulate(
    zpub: &KmsPublicKey,
    id: &[u8],
    rsk: &Rsk,
    sed: &EncapsulatedData,
) -> Result<Ssv, Error> {
    let prm = params();
    // 1) parse ( R_(b,S), H )
    let (r_bytes, h) = sed.parts();
    let big_r = decode_point(r_bytes, "R")?.ok_or(Error::Decapsulation)?;
    let k = decode_point(rsk.as_bytes(), "RSK")?.ok_or(Error::InvalidRsk)?;
    // 2) w = < R_(b,S), K_(b,S) >
    let w = pairing(&big_r, &k).ok_or(Error::Decapsulation)?;
    // 3) SSV = H XOR HashToIntegerRange( w, 2^n, Hash )
    let mask = hash_to_integer_range(&fp_bytes(&w), &(BigUint::one() << (8 * SSV_LEN)));
    let ssv = Ssv(xor_mask(&Ssv(*h), &mask_bytes(&mask)));
    // 4) r = HashToIntegerRange( SSV || b, q, Hash )
    let r = hash_to_integer_range(&[ssv.as_bytes().as_slice(), id].concat(), &prm.q);
    // 5) TEST = [r]([b]P + Z_S); TEST must equal R_(b,S)
    let test = mul(&r, &id_point(zpub, id)?);
    if test != Some(big_r) {
        return Err(Error::Decapsulation);
    }
    // 6) output SSV
    Ok(ssv)
}

/// §6.1.1: RSK = [(b + z)^-1]P.
pub fn issue_rsk(z: &MasterSecret, id: &[u8]) -> Result<Rsk, Error> {
    let prm = params();
    let zz = BigUint::from_bytes_be(z.as_bytes());
    let b = BigUint::from_bytes_be(id);
    let inv = ((b + zz) % &prm.q)
        .modinv(&prm.q)
        .ok_or(Error::ScalarRange("b + z"))?;
    let (x, y) = mul(&inv, &Some(prm.point_p.clone())).ok_or(Error::ScalarRange("b + z"))?;
    Rsk::from_bytes(&encode_point(&fp_bytes(&x), &fp_bytes(&y)))
}

/// §6.1.2: `< [b]P + Z, K_b > == g`.
pub fn validate_rsk(zpub: &KmsPublicKey, id: &[u8], rsk: &Rsk) -> Result<(), Error> {
    let k = decode_point(rsk.as_bytes(), "RSK")?.ok_or(Error::InvalidRsk)?;
    let a = id_point(zpub, id)?.ok_or(Error::InvalidRsk)?;
    match pairing(&a, &k) {
        Some(w) if w == params().g => Ok(()),
        _ => Err(Error::InvalidRsk),
    }
}

/// `Z = [z]P`.
pub fn kms_public_key(z: &MasterSecret) -> Result<KmsPublicKey, Error> {
    let zz = BigUint::from_bytes_be(z.as_bytes());
    let (x, y) = mul(&zz, &Some(params().point_p.clone())).ok_or(Error::ScalarRange("z"))?;
    KmsPublicKey::from_bytes(&encode_point(&fp_bytes(&x), &fp_bytes(&y)))
}
