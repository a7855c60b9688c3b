//! The pairing of RFC 6508 §3.2 with the RSK as the Miller point: its line functions are
//! computed once per RSK (affine slopes via one batched inversion) and each decapsulation only
//! evaluates them at the received point, with no inversion inside the loop. Also `g^r` from a
//! fixed-base table in PF_p.

use subtle::ConditionallySelectable;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::curve::{Affine, ENTRIES, WINDOWS, signed_digits, split_digit};
use super::fp::{Fp, FpWide, Limbs, batch_invert};
use crate::sakke::G_HEX;

/// An element a + i*b of F_p^2 = F_p[i], i^2 = -1.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fp2 {
    pub(crate) a: Fp,
    pub(crate) b: Fp,
}

impl Fp2 {
    fn one() -> Fp2 {
        Fp2 {
            a: Fp::one(),
            b: Fp::ZERO,
        }
    }

    /// Karatsuba with lazy reduction: three double-width products and two Montgomery
    /// reductions, `(t0 - t1) + i (t2 - (t0 + t1))` (see [`FpWide`] for the bounds).
    fn mul(&self, o: &Fp2) -> Fp2 {
        let t0 = self.a.mul_wide(&o.a);
        let t1 = self.b.mul_wide(&o.b);
        let t2 = self.a.add(&self.b).mul_wide(&o.a.add(&o.b));
        Fp2 {
            a: t0.sub(&t1).reduce(),
            b: t2.sub(&t0.add(&t1)).reduce(),
        }
    }

    /// (a + bi)^2 = (a + b)(a - b) + 2ab i: 2 multiplications.
    fn square(&self) -> Fp2 {
        Fp2 {
            a: self.a.add(&self.b).mul(&self.a.sub(&self.b)),
            b: self.a.mul(&self.b).double(),
        }
    }

    /// The representative b/a in F_p of this element of PF_p (§3.2).
    fn representative(&self) -> Fp {
        self.b.mul(&self.a.invert())
    }
}

/// The non-adjacent form of q - 1 from the second most significant digit down to the least
/// significant. The Miller loop runs on these signed digits instead of the RFC's bits: both
/// compute f_{q-1,K} up to factors in F_p, which the final exponentiation removes, with about
/// 340 instead of 510 addition steps.
fn loop_digits() -> &'static [i8] {
    static D: std::sync::OnceLock<Vec<i8>> = std::sync::OnceLock::new();
    D.get_or_init(|| {
        let mut n = super::super::reference::params().q.clone() - 1u8;
        let mut naf = Vec::new();
        let zero = num_bigint::BigUint::default();
        while n > zero {
            if n.bit(0) {
                // digit 1 when n = 1 mod 4, -1 when n = 3 mod 4
                if n.bit(1) {
                    naf.push(-1);
                    n += 1u8;
                } else {
                    naf.push(1);
                    n -= 1u8;
                }
            } else {
                naf.push(0);
            }
            n >>= 1;
        }
        naf.pop();
        naf.reverse();
        naf
    })
}

/// One line of the Miller loop, as `l` and `m` with the line at [i]Q equal to
/// `l * Q_x + m + i * Q_y` (the RFC's `l*(Q_x + C_x) + (i*Q_y - C_y)` with `m = l*C_x - C_y`).
#[derive(Clone, Copy, Debug, Default)]
struct Line {
    l: Fp,
    m: Fp,
}

impl Zeroize for Line {
    fn zeroize(&mut self) {
        self.l.zeroize();
        self.m.zeroize();
    }
}

/// The product of the doubling line `c1 + i y` and the addition line `c2 + i y` of a non-zero
/// digit (`c_k = l_k x + m_k` at `Q = (x, y)`) as coefficients of monomials in Q:
/// `(c1 + i y)(c2 + i y) = (alpha x^2 + beta x + gamma - y^2) + i (delta xy + eps y)` with
/// `alpha = l1 l2`, `beta = l1 m2 + l2 m1`, `gamma = m1 m2`, `delta = l1 + l2`, `eps = m1 + m2`.
/// With `x^2`, `y^2` and `xy` computed once per pairing, a digit costs four products and two
/// reductions instead of two line evaluations and two products.
#[derive(Clone, Copy, Debug, Default)]
struct LinePair {
    alpha: Fp,
    beta: Fp,
    gamma: Fp,
    delta: Fp,
    eps: Fp,
}

impl Zeroize for LinePair {
    fn zeroize(&mut self) {
        for c in [
            &mut self.alpha,
            &mut self.beta,
            &mut self.gamma,
            &mut self.delta,
            &mut self.eps,
        ] {
            c.zeroize();
        }
    }
}

/// The received point with the monomials the line products need.
struct MillerPoint {
    x: Fp,
    y: Fp,
    x2: Fp,
    y2: Fp,
    xy: Fp,
}

impl MillerPoint {
    fn new(q: &Affine) -> MillerPoint {
        MillerPoint {
            x: q.x,
            y: q.y,
            x2: q.x.square(),
            y2: q.y.square(),
            xy: q.x.mul(&q.y),
        }
    }
}

impl Line {
    /// `c + i y` at Q.
    fn eval(&self, q: &MillerPoint) -> Fp2 {
        Fp2 {
            a: self.l.mul(&q.x).add(&self.m),
            b: q.y,
        }
    }
}

impl LinePair {
    fn new(dbl: &Line, add: &Line) -> LinePair {
        LinePair {
            alpha: dbl.l.mul(&add.l),
            beta: dbl.l.mul(&add.m).add(&add.l.mul(&dbl.m)),
            gamma: dbl.m.mul(&add.m),
            delta: dbl.l.add(&add.l),
            eps: dbl.m.add(&add.m),
        }
    }

    /// The line product at Q, each part as a lazily reduced sum (see [`FpWide`]).
    fn eval(&self, q: &MillerPoint) -> Fp2 {
        Fp2 {
            a: self
                .alpha
                .mul_wide(&q.x2)
                .add(&self.beta.mul_wide(&q.x))
                .add(&FpWide::from(self.gamma.sub(&q.y2)))
                .reduce(),
            b: self
                .delta
                .mul_wide(&q.xy)
                .add(&self.eps.mul_wide(&q.y))
                .reduce(),
        }
    }
}

/// An RSK with its Miller-loop lines precomputed (about 680 single lines and 340 line products,
/// 380 KiB). Secret.
pub(crate) struct PreparedRsk {
    /// The doubling lines of the zero digits, in loop order.
    lines: Vec<Line>,
    /// The doubling-times-addition line products of the non-zero digits, in loop order.
    pairs: Vec<LinePair>,
}

impl Drop for PreparedRsk {
    fn drop(&mut self) {
        self.lines.zeroize();
        self.pairs.zeroize();
    }
}

impl core::fmt::Debug for PreparedRsk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PreparedRsk(<redacted>)")
    }
}

impl PreparedRsk {
    /// Runs the point part of the Miller loop for `k` in Jacobian coordinates, keeping each
    /// slope as a fraction, then normalises all of them with one inversion. Constant time in
    /// `k` (the loop shape depends only on q).
    pub(crate) fn new(k: &Affine) -> PreparedRsk {
        let mut nums: Vec<(Fp, Fp)> = Vec::with_capacity(1600);
        let mut dens: Vec<Fp> = Vec::with_capacity(1600);
        let mut c = k.to_jacobian();
        let k_neg = Affine {
            x: k.x,
            y: k.y.neg(),
        };
        for &digit in loop_digits() {
            // tangent at C: l = 3(x^2 - 1)/(2y) = N Z^2 / D, m = l x - y = (N X - 2 Y^2) / D
            // with N = 3(X^2 - Z^4), D = 2 Y Z^3
            let z2 = c.z.square();
            let t = c.x.square().sub(&z2.square());
            let n = t.double().add(&t);
            let d = c.y.mul(&z2).mul(&c.z).double();
            nums.push((n.mul(&z2), n.mul(&c.x).sub(&c.y.square().double())));
            dens.push(d);
            c = c.double();
            if digit != 0 {
                // chord through C and K (or -K): l = (y_C - y_K)/(x_C - x_K)
                //   = (Y - y_K Z^3) / (Z (X - x_K Z^2)), m = l x_K - y_K
                let k = if digit > 0 { k } else { &k_neg };
                let z2 = c.z.square();
                let num = c.y.sub(&k.y.mul(&z2).mul(&c.z));
                let d = c.z.mul(&c.x.sub(&k.x.mul(&z2)));
                nums.push((num, num.mul(&k.x).sub(&k.y.mul(&d))));
                dens.push(d);
                c = c.add_affine_unchecked(k);
            }
        }
        batch_invert(&mut dens);
        let mut all: Vec<Line> = nums
            .iter()
            .zip(&dens)
            .map(|((l, m), d)| Line {
                l: l.mul(d),
                m: m.mul(d),
            })
            .collect();
        dens.zeroize();
        let mut lines = Vec::with_capacity(all.len());
        let mut pairs = Vec::with_capacity(all.len() / 4);
        let mut it = all.iter();
        for &digit in loop_digits() {
            let Some(dbl) = it.next() else { break };
            match (digit != 0).then(|| it.next()).flatten() {
                Some(add) => pairs.push(LinePair::new(dbl, add)),
                None => lines.push(*dbl),
            }
        }
        all.zeroize();
        PreparedRsk { lines, pairs }
    }

    /// `<K, Q>` (= `<Q, K>` on E(F_p)[q]) as its F_p representative.
    ///
    /// Each line at Q is `c + i Q_y` with `c = l Q_x + m`; for a non-zero digit the doubling and
    /// addition lines come multiplied ([`LinePair`]), so `v` takes one F_p^2 product per digit.
    pub(crate) fn pairing(&self, q: &Affine) -> Fp {
        let q = MillerPoint::new(q);
        let mut v = Fp2::one();
        let (mut lines, mut pairs) = (self.lines.iter(), self.pairs.iter());
        for &digit in loop_digits() {
            let factor = if digit == 0 {
                let Some(line) = lines.next() else { break };
                line.eval(&q)
            } else {
                let Some(pair) = pairs.next() else { break };
                pair.eval(&q)
            };
            v = v.square().mul(&factor);
        }
        // t = v^c with c = (p+1)/q = 4
        v.square().square().representative()
    }
}

/// `g^(d * 2^(WIDTH i))` as F_p representatives `t` of `1 + t i`, for every window position.
pub(crate) struct GtTable {
    rows: Vec<[Fp; ENTRIES]>,
}

impl core::fmt::Debug for GtTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("GtTable(..)")
    }
}

impl GtTable {
    pub(crate) fn new() -> GtTable {
        let g = super::fp_from_hex(G_HEX);
        let mut base = Fp2 { a: Fp::one(), b: g };
        let mut elems = Vec::with_capacity(WINDOWS * ENTRIES);
        for _ in 0..WINDOWS {
            let start = elems.len();
            elems.push(Fp2::one());
            for d in 1..ENTRIES {
                let prev: Fp2 = elems[start + d - 1];
                elems.push(prev.mul(&base));
            }
            base = elems[start + ENTRIES - 1].square();
        }
        let mut inv: Vec<Fp> = elems.iter().map(|e| e.a).collect();
        batch_invert(&mut inv);
        let reps: Vec<Fp> = elems.iter().zip(&inv).map(|(e, i)| e.b.mul(i)).collect();
        let rows = reps
            .chunks(ENTRIES)
            .map(|c| {
                let mut row = [Fp::ZERO; ENTRIES];
                row.copy_from_slice(c);
                row
            })
            .collect();
        GtTable { rows }
    }

    /// The element `(1 + 0i) * prod (1 + t_i i)` for the digits of `r` (constant time), left
    /// unnormalised so the caller can batch its inversion.
    pub(crate) fn pow(&self, r: &Limbs) -> (Fp, Fp) {
        let mut a = Fp::one();
        let mut b = Fp::ZERO;
        let mut digits = signed_digits(r);
        for (row, &digit) in self.rows.iter().zip(&digits) {
            let (abs, neg) = split_digit(digit);
            let mut t = Fp::ZERO;
            for (d, entry) in row.iter().enumerate() {
                t.conditional_assign(entry, (d as u8).ct_eq(&abs));
            }
            // g^-x is the conjugate of g^x: 1 - t i
            t.conditional_assign(&t.neg(), neg);
            // (a + b i)(1 + t i) = (a - b t) + (b + a t) i
            let na = a.sub(&b.mul(&t));
            b = b.add(&a.mul(&t));
            a = na;
        }
        digits.zeroize();
        (a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fp(bytes: &[u8]) -> Fp {
        // below 2^1023 < p
        let mut x = super::super::fp::limbs_from_be(bytes);
        x[super::super::fp::LIMBS - 1] &= u64::MAX >> 1;
        Fp(x)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// The lazily reduced F_p^2 product equals the one with a reduction per F_p product.
        #[test]
        fn lazy_fp2_mul_matches_plain(
            x in proptest::collection::vec(any::<u8>(), 512),
            edge in 0u8..4,
        ) {
            let mut e = [fp(&x[..128]), fp(&x[128..256]), fp(&x[256..384]), fp(&x[384..])];
            // limbs p - 1 and 0 in some coordinates reach the ends of the bounds
            let mut one = [0u64; super::super::fp::LIMBS];
            one[0] = 1;
            let pm1 = Fp::ZERO.sub(&Fp(one));
            if edge & 1 == 1 { e[0] = pm1; e[1] = pm1; e[2] = pm1; e[3] = pm1; }
            if edge == 2 { e[0] = Fp::ZERO; e[3] = Fp::ZERO; }
            let (u, v) = (Fp2 { a: e[0], b: e[1] }, Fp2 { a: e[2], b: e[3] });
            let t0 = u.a.mul(&v.a);
            let t1 = u.b.mul(&v.b);
            let t2 = u.a.add(&u.b).mul(&v.a.add(&v.b));
            let plain = Fp2 { a: t0.sub(&t1), b: t2.sub(&t0).sub(&t1) };
            let lazy = u.mul(&v);
            prop_assert_eq!(lazy.a.0, plain.a.0);
            prop_assert_eq!(lazy.b.0, plain.b.0);
        }

        /// A line product's monomial form equals the product of the two evaluated lines.
        #[test]
        fn line_pair_matches_plain(
            x in proptest::collection::vec(any::<u8>(), 768),
            edge in 0u8..3,
        ) {
            let mut e: Vec<Fp> = x.chunks(128).map(fp).collect();
            let mut one = [0u64; super::super::fp::LIMBS];
            one[0] = 1;
            let pm1 = Fp::ZERO.sub(&Fp(one));
            if edge == 1 { e.iter_mut().for_each(|c| *c = pm1); }
            if edge == 2 { e[1] = Fp::ZERO; e[4] = Fp::ZERO; }
            let dbl = Line { l: e[0], m: e[1] };
            let add = Line { l: e[2], m: e[3] };
            // any x, y: the identity does not use the curve equation
            let q = MillerPoint::new(&Affine { x: e[4], y: e[5] });
            let (c1, c2) = (dbl.eval(&q).a, add.eval(&q).a);
            let plain = Fp2 { a: c1.mul(&c2).sub(&q.y2), b: q.y.mul(&c1.add(&c2)) };
            let pair = LinePair::new(&dbl, &add).eval(&q);
            prop_assert_eq!(pair.a.0, plain.a.0);
            prop_assert_eq!(pair.b.0, plain.b.0);
        }
    }
}
