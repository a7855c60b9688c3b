//! Constant-time modular inversion by Bernstein–Yang divsteps ("Fast constant-time gcd
//! computation and modular inversion", 2019), in the layout of libsecp256k1's `modinv64`:
//! values as 17 signed 62-bit limbs, 62 divsteps at a time on the low limb only, the 2×2
//! transition matrix then applied to the full-width `f, g` and to the Bézout-side `d, e`
//! (kept in `(-2m, m)` by adding the multiple of `m` that clears their low 62 bits).
//!
//! The iteration count is fixed by Theorem 11.2 of the paper (for `f² + 4g² ≤ 5·2^(2·1024)`,
//! 2,954 divsteps bring `g` to 0), so the instruction sequence does not depend on the input.

use super::fp::{LIMBS, Limbs, Modulus};

/// Signed 62-bit limbs: 17 × 62 = 1,054 bits, room for the signed intermediates of 1024-bit
/// moduli.
const S: usize = 17;
type Signed62 = [i64; S];
const M62: u64 = u64::MAX >> 2;
/// ⌈2,954 / 62⌉ batches of 62 divsteps.
const BATCHES: usize = 48;

/// The transition matrix of 62 divsteps, scaled by 2^62: `[f', g'] · 2^62 = [[u, v], [q, r]] ·
/// [f, g]`.
struct Trans {
    u: i64,
    v: i64,
    q: i64,
    r: i64,
}

fn to_signed62(x: &Limbs) -> Signed62 {
    let mut out = [0i64; S];
    for (i, o) in out.iter_mut().enumerate() {
        let bit = 62 * i;
        let (limb, shift) = (bit / 64, bit % 64);
        let mut w = x[limb] >> shift;
        if shift > 2 && limb + 1 < LIMBS {
            w |= x[limb + 1] << (64 - shift);
        }
        *o = (w & M62) as i64;
    }
    out
}

/// For `x` normalised to `[0, 2^1024)` (every limb in `[0, 2^62)`).
fn from_signed62(x: &Signed62) -> Limbs {
    let mut out = [0u64; LIMBS];
    for (i, &l) in x.iter().enumerate() {
        let bit = 62 * i;
        let (limb, shift) = (bit / 64, bit % 64);
        let l = l as u64;
        out[limb] |= l << shift;
        if shift > 2 && limb + 1 < LIMBS {
            out[limb + 1] |= l >> (64 - shift);
        }
    }
    out
}

/// 62 divsteps on the low 62 bits of `f` (odd) and `g`; returns the new `delta`.
fn divsteps_62(mut delta: i64, f0: u64, g0: u64) -> (i64, Trans) {
    let (mut u, mut v, mut q, mut r) = (1u64, 0u64, 0u64, 1u64);
    let (mut f, mut g) = (f0, g0);
    for _ in 0..62 {
        // swap: delta > 0 and g odd, then (delta, f, g) -> (-delta, g, -f)
        let c1 = (delta.wrapping_neg() >> 63) as u64;
        let c2 = (g & 1).wrapping_neg();
        let swap = c1 & c2;
        let t = (f ^ g) & swap;
        f ^= t;
        g ^= t;
        g = (g ^ swap).wrapping_sub(swap);
        let t = (u ^ q) & swap;
        u ^= t;
        q ^= t;
        q = (q ^ swap).wrapping_sub(swap);
        let t = (v ^ r) & swap;
        v ^= t;
        r ^= t;
        r = (r ^ swap).wrapping_sub(swap);
        let s = swap as i64;
        delta = (delta ^ s).wrapping_sub(s);
        // g odd: g += f; then (delta, f, g) -> (1 + delta, f, g / 2), the halving of g kept as a
        // doubling of the f row
        g = g.wrapping_add(f & c2);
        q = q.wrapping_add(u & c2);
        r = r.wrapping_add(v & c2);
        delta = delta.wrapping_add(1);
        g >>= 1;
        u <<= 1;
        v <<= 1;
    }
    (
        delta,
        Trans {
            u: u as i64,
            v: v as i64,
            q: q as i64,
            r: r as i64,
        },
    )
}

/// `[f, g] <- t · [f, g] / 2^62` (exact).
fn update_fg(f: &mut Signed62, g: &mut Signed62, t: &Trans) {
    let (u, v, q, r) = (
        i128::from(t.u),
        i128::from(t.v),
        i128::from(t.q),
        i128::from(t.r),
    );
    let mut cf = u * i128::from(f[0]) + v * i128::from(g[0]);
    let mut cg = q * i128::from(f[0]) + r * i128::from(g[0]);
    cf >>= 62;
    cg >>= 62;
    for i in 1..S {
        cf += u * i128::from(f[i]) + v * i128::from(g[i]);
        cg += q * i128::from(f[i]) + r * i128::from(g[i]);
        f[i - 1] = (cf as u64 & M62) as i64;
        g[i - 1] = (cg as u64 & M62) as i64;
        cf >>= 62;
        cg >>= 62;
    }
    f[S - 1] = cf as i64;
    g[S - 1] = cg as i64;
}

/// `[d, e] <- t · [d, e] / 2^62 mod m`, inputs and outputs in `(-2m, m)`.
fn update_de(d: &mut Signed62, e: &mut Signed62, t: &Trans, m: &Signed62, m_inv62: u64) {
    let (u, v, q, r) = (t.u, t.v, t.q, t.r);
    // md, me: u, q if d < 0; plus v, r if e < 0; then corrected to clear the low 62 bits
    let sd = d[S - 1] >> 63;
    let se = e[S - 1] >> 63;
    let mut md = (u & sd) + (v & se);
    let mut me = (q & sd) + (r & se);
    let (u, v, q, r) = (i128::from(u), i128::from(v), i128::from(q), i128::from(r));
    let mut cd = u * i128::from(d[0]) + v * i128::from(e[0]);
    let mut ce = q * i128::from(d[0]) + r * i128::from(e[0]);
    md -= (m_inv62.wrapping_mul(cd as u64).wrapping_add(md as u64) & M62) as i64;
    me -= (m_inv62.wrapping_mul(ce as u64).wrapping_add(me as u64) & M62) as i64;
    let (md, me) = (i128::from(md), i128::from(me));
    cd += i128::from(m[0]) * md;
    ce += i128::from(m[0]) * me;
    cd >>= 62;
    ce >>= 62;
    for i in 1..S {
        cd += u * i128::from(d[i]) + v * i128::from(e[i]) + i128::from(m[i]) * md;
        ce += q * i128::from(d[i]) + r * i128::from(e[i]) + i128::from(m[i]) * me;
        d[i - 1] = (cd as u64 & M62) as i64;
        e[i - 1] = (ce as u64 & M62) as i64;
        cd >>= 62;
        ce >>= 62;
    }
    d[S - 1] = cd as i64;
    e[S - 1] = ce as i64;
}

/// Carries every limb into `[0, 2^62)` except the signed top one.
fn propagate(x: &mut Signed62) {
    for i in 0..S - 1 {
        x[i + 1] += x[i] >> 62;
        x[i] &= M62 as i64;
    }
}

/// Adds `m` when `x` is negative (top limb sign).
fn add_if_negative(x: &mut Signed62, m: &Signed62) {
    let mask = x[S - 1] >> 63;
    for (xi, mi) in x.iter_mut().zip(m) {
        *xi += mi & mask;
    }
}

/// `x` in `(-2m, m)` times the sign of `sign` (±1), brought to `[0, m)`.
fn normalize(x: &mut Signed62, sign: i64, m: &Signed62) {
    add_if_negative(x, m);
    let neg = sign >> 63;
    for xi in x.iter_mut() {
        *xi = (*xi ^ neg) - neg;
    }
    propagate(x);
    add_if_negative(x, m);
    propagate(x);
}

impl Modulus {
    /// `a^-1 mod m` for `a < m` on plain (non-Montgomery) limbs; zero maps to zero. Constant
    /// time. `m` must be odd and below 2^1024.
    pub(crate) fn invert_plain(&self, a: &Limbs) -> Limbs {
        let m = to_signed62(&self.m);
        // m^-1 mod 2^62 from -m^-1 mod 2^64
        let m_inv62 = self.inv.wrapping_neg() & M62;
        let mut f = m;
        let mut g = to_signed62(a);
        let mut d = [0i64; S];
        let mut e = [0i64; S];
        e[0] = 1;
        let mut delta = 1i64;
        for _ in 0..BATCHES {
            let t;
            (delta, t) = divsteps_62(delta, f[0] as u64, g[0] as u64);
            update_de(&mut d, &mut e, &t, &m, m_inv62);
            update_fg(&mut f, &mut g, &t);
        }
        // g = 0 and f = ±gcd = ±1 (or ±m for a = 0, where d = 0): a^-1 = ±d
        debug_assert!(g.iter().all(|&x| x == 0));
        normalize(&mut d, f[S - 1], &m);
        from_signed62(&d)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fp::{P, Q};
    use super::*;
    use num_bigint::BigUint;

    fn big(x: &Limbs) -> BigUint {
        BigUint::from_slice(
            &x.iter()
                .flat_map(|l| [*l as u32, (*l >> 32) as u32])
                .collect::<Vec<u32>>(),
        )
    }

    fn limbs(x: &BigUint) -> Limbs {
        let mut out = [0u64; LIMBS];
        for (o, d) in out.iter_mut().zip(x.iter_u64_digits()) {
            *o = d;
        }
        out
    }

    #[test]
    fn signed62_round_trip() {
        let x: Limbs = core::array::from_fn(|i| 0x0123_4567_89ab_cdefu64.rotate_left(i as u32 * 7));
        assert_eq!(from_signed62(&to_signed62(&x)), x);
    }

    #[test]
    fn inverts_edge_values_mod_p_and_q() {
        for md in [&P, &Q] {
            let m = big(&md.m);
            let one = BigUint::from(1u8);
            let two = BigUint::from(2u8);
            let edges = [
                one.clone(),
                two.clone(),
                &m - &one,
                &m - &two,
                &m >> 1,
                (&one << 1000) % &m,
                ((&one << 1023) - &one) % &m,
            ];
            for a in edges {
                let inv = big(&md.invert_plain(&limbs(&a)));
                assert_eq!(inv, a.modinv(&m).unwrap(), "{a:x}");
            }
            assert_eq!(md.invert_plain(&[0; LIMBS]), [0; LIMBS]);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// The divstep inversion agrees with num-bigint's extended Euclid, mod p and mod q.
        #[test]
        fn matches_biguint_modinv(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 128)) {
            for md in [&P, &Q] {
                let m = big(&md.m);
                let a = BigUint::from_bytes_be(&bytes) % &m;
                let expect = a.modinv(&m).unwrap_or_default();
                proptest::prop_assert_eq!(big(&md.invert_plain(&limbs(&a))), expect);
            }
        }
    }
}
