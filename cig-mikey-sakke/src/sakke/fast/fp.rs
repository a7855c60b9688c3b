//! Fixed-width Montgomery arithmetic on 16 × 64-bit limbs (little-endian limb order), for the
//! SAKKE prime p and the group order q. Every operation runs the same instruction sequence for
//! every value (no value-dependent branches or indices).

use std::sync::OnceLock;

use num_bigint::BigUint;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::DefaultIsZeroes;

use super::super::{FP_LEN, P_HEX, Q_HEX};

pub(crate) const LIMBS: usize = 16;
pub(crate) type Limbs = [u64; LIMBS];

#[inline(always)]
fn mac(acc: u64, a: u64, b: u64, carry: u64) -> (u64, u64) {
    let t = u128::from(acc) + u128::from(a) * u128::from(b) + u128::from(carry);
    (t as u64, (t >> 64) as u64)
}

#[inline(always)]
fn adc(a: u64, b: u64, carry: u64) -> (u64, u64) {
    let t = u128::from(a) + u128::from(b) + u128::from(carry);
    (t as u64, (t >> 64) as u64)
}

#[inline(always)]
fn sbb(a: u64, b: u64, borrow: u64) -> (u64, u64) {
    let (d1, b1) = a.overflowing_sub(b);
    let (d2, b2) = d1.overflowing_sub(borrow);
    (d2, u64::from(b1 | b2))
}

/// `a - b` and the final borrow (0 or 1).
#[inline(always)]
fn sub_limbs(a: &Limbs, b: &Limbs) -> (Limbs, u64) {
    let mut out = [0u64; LIMBS];
    let mut borrow = 0;
    for i in 0..LIMBS {
        (out[i], borrow) = sbb(a[i], b[i], borrow);
    }
    (out, borrow)
}

/// `a + b` and the final carry (0 or 1).
#[inline(always)]
fn add_limbs(a: &Limbs, b: &Limbs) -> (Limbs, u64) {
    let mut out = [0u64; LIMBS];
    let mut carry = 0;
    for i in 0..LIMBS {
        (out[i], carry) = adc(a[i], b[i], carry);
    }
    (out, carry)
}

/// Runs `$body` sixteen times with `$i` bound to 0, 1, .., 15: the row loops of the 16-limb
/// products written out (LLVM unrolls the inner 16-step loops but not the outer ones; written
/// out, the wide product takes ~2,130 instead of ~2,390 instructions).
macro_rules! unroll16 {
    ($i:ident => $body:block) => {
        unroll16!(@ $i $body; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
    };
    (@ $i:ident $body:block; $($n:literal)*) => {
        $( { let $i: usize = $n; $body } )*
    };
}

/// `mask` all-ones selects `b`, all-zeros selects `a`.
#[inline(always)]
fn select_mask(a: &Limbs, b: &Limbs, mask: u64) -> Limbs {
    let mut out = [0u64; LIMBS];
    for i in 0..LIMBS {
        out[i] = a[i] ^ ((a[i] ^ b[i]) & mask);
    }
    out
}

const fn limbs_from_hex(s: &str) -> Limbs {
    let b = s.as_bytes();
    let mut out = [0u64; LIMBS];
    let mut i = 0;
    while i < b.len() {
        let c = b[b.len() - 1 - i];
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("bad hex constant"),
        } as u64;
        out[i / 16] |= d << (4 * (i % 16));
        i += 1;
    }
    out
}

/// An odd modulus below 2^1024 with its Montgomery constant.
#[derive(Debug)]
pub(crate) struct Modulus {
    pub(crate) m: Limbs,
    /// `-m^-1 mod 2^64`
    pub(crate) inv: u64,
}

impl Modulus {
    const fn new(m: Limbs) -> Self {
        // Newton iteration for m^-1 mod 2^64 (m odd): each step doubles the correct bits.
        let mut x: u64 = 1;
        let mut i = 0;
        while i < 7 {
            x = x.wrapping_mul(2u64.wrapping_sub(m[0].wrapping_mul(x)));
            i += 1;
        }
        Self {
            m,
            inv: x.wrapping_neg(),
        }
    }

    /// Montgomery product `a * b / 2^1024 mod m` for `a, b < m`: the written-out wide product,
    /// then the reduction (SOS; 4,410 instructions against 4,600 for the interleaved CIOS loop,
    /// whose 16 rows LLVM does not keep in registers when written out). `a b < m^2 < m R` is
    /// within the reduction's bound.
    #[inline]
    pub(crate) fn mul(&self, a: &Limbs, b: &Limbs) -> Limbs {
        self.reduce_wide(&mul_wide(a, b))
    }

    /// Montgomery square `a^2 / 2^1024 mod m`: the off-diagonal products once, doubled, plus
    /// the diagonal, then the reduction.
    #[inline]
    pub(crate) fn square(&self, a: &Limbs) -> Limbs {
        let mut t = [0u64; 2 * LIMBS];
        unroll16!(i => {
            let mut c = 0;
            for j in i + 1..LIMBS {
                (t[i + j], c) = mac(t[i + j], a[i], a[j], c);
            }
            t[i + LIMBS] = c;
        });
        let mut top = 0;
        for x in t.iter_mut() {
            let hi = *x >> 63;
            *x = (*x << 1) | top;
            top = hi;
        }
        let mut c = 0;
        for i in 0..LIMBS {
            let (lo, hi) = mac(0, a[i], a[i], 0);
            (t[2 * i], c) = adc(t[2 * i], lo, c);
            (t[2 * i + 1], c) = adc(t[2 * i + 1], hi, c);
        }
        self.reduce_wide(&t)
    }

    /// Montgomery reduction of a double-width value below `m * 2^1024`: the result
    /// `(t + k m) / 2^1024` is below `(m 2^1024 + 2^1024 m) / 2^1024 = 2m`, so one conditional
    /// subtraction finishes it. The low half is reduced in a 16-limb window that shifts by one
    /// limb per step and takes in the next limb of the high half (the reduction steps of CIOS,
    /// which LLVM keeps in registers better than a 32-limb array indexed by the step).
    #[inline(never)]
    fn reduce_wide(&self, t: &Wide) -> Limbs {
        let m = &self.m;
        let mut acc = [0u64; LIMBS];
        acc.copy_from_slice(&t[..LIMBS]);
        let mut top = 0;
        unroll16!(i => {
            let k = acc[0].wrapping_mul(self.inv);
            let (_, mut c) = mac(acc[0], k, m[0], 0);
            for j in 1..LIMBS {
                (acc[j - 1], c) = mac(acc[j], k, m[j], c);
            }
            (acc[LIMBS - 1], top) = adc(t[LIMBS + i], c, top);
        });
        self.reduce_once(&acc, top)
    }

    /// `x + hi * 2^1024` reduced once: for values below `2m`.
    #[inline(always)]
    fn reduce_once(&self, x: &Limbs, hi: u64) -> Limbs {
        let (d, borrow) = sub_limbs(x, &self.m);
        // keep d when there was a carry-out or no borrow
        let use_d = hi | (borrow ^ 1);
        select_mask(x, &d, use_d.wrapping_neg())
    }

    #[inline]
    pub(crate) fn add(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let (s, carry) = add_limbs(a, b);
        self.reduce_once(&s, carry)
    }

    #[inline]
    pub(crate) fn sub(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let (d, borrow) = sub_limbs(a, b);
        let (e, _) = add_limbs(&d, &self.m);
        select_mask(&d, &e, borrow.wrapping_neg())
    }

    fn to_biguint(&self) -> BigUint {
        limbs_to_biguint(&self.m)
    }
}

/// A double-width value (32 limbs).
pub(crate) type Wide = [u64; 2 * LIMBS];

/// The 2048-bit product `a * b` (schoolbook, operand scanning).
#[inline(never)]
fn mul_wide(a: &Limbs, b: &Limbs) -> Wide {
    let mut t = [0u64; 2 * LIMBS];
    unroll16!(i => {
        let mut c = 0;
        for j in 0..LIMBS {
            (t[i + j], c) = mac(t[i + j], a[j], b[i], c);
        }
        t[i + LIMBS] = c;
    });
    t
}

fn limbs_to_biguint(x: &Limbs) -> BigUint {
    BigUint::from_slice(
        &x.iter()
            .flat_map(|l| [*l as u32, (*l >> 32) as u32])
            .collect::<Vec<u32>>(),
    )
}

fn biguint_to_limbs(x: &BigUint) -> Limbs {
    let mut out = [0u64; LIMBS];
    for (o, d) in out.iter_mut().zip(x.iter_u64_digits()) {
        *o = d;
    }
    out
}

/// Big-endian bytes (up to 128) to limbs.
pub(crate) fn limbs_from_be(bytes: &[u8]) -> Limbs {
    let mut out = [0u64; LIMBS];
    for (i, b) in bytes.iter().rev().take(FP_LEN).enumerate() {
        out[i / 8] |= u64::from(*b) << (8 * (i % 8));
    }
    out
}

pub(crate) fn limbs_to_be(x: &Limbs) -> [u8; FP_LEN] {
    let mut out = [0u8; FP_LEN];
    for (i, o) in out.iter_mut().rev().enumerate() {
        *o = (x[i / 8] >> (8 * (i % 8))) as u8;
    }
    out
}

/// Is `a < m`? (constant time)
pub(crate) fn lt(a: &Limbs, m: &Limbs) -> Choice {
    let (_, borrow) = sub_limbs(a, m);
    Choice::from(borrow as u8)
}

pub(crate) const P: Modulus = Modulus::new(limbs_from_hex(P_HEX));
pub(crate) const Q: Modulus = Modulus::new(limbs_from_hex(Q_HEX));

/// Per-modulus conversion constants: `R mod m`, `R^2 mod m`, `R^3 mod m`.
#[derive(Debug)]
pub(crate) struct MontConsts {
    pub(crate) one: Limbs,
    pub(crate) r2: Limbs,
    r3: Limbs,
}

fn mont_consts(md: &Modulus) -> MontConsts {
    let m = md.to_biguint();
    let r = BigUint::from(1u8) << 1024;
    MontConsts {
        one: biguint_to_limbs(&(&r % &m)),
        r2: biguint_to_limbs(&((&r * &r) % &m)),
        r3: biguint_to_limbs(&((&r * &r * &r) % &m)),
    }
}

pub(crate) fn p_consts() -> &'static MontConsts {
    static C: OnceLock<MontConsts> = OnceLock::new();
    C.get_or_init(|| mont_consts(&P))
}

pub(crate) fn q_consts() -> &'static MontConsts {
    static C: OnceLock<MontConsts> = OnceLock::new();
    C.get_or_init(|| mont_consts(&Q))
}

/// An element of F_p in Montgomery form.
#[derive(Clone, Copy, Default)]
pub(crate) struct Fp(pub(crate) Limbs);

impl DefaultIsZeroes for Fp {}

impl core::fmt::Debug for Fp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Fp(..)")
    }
}

impl ConditionallySelectable for Fp {
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        Fp(select_mask(
            &a.0,
            &b.0,
            u64::from(choice.unwrap_u8()).wrapping_neg(),
        ))
    }
}

impl ConstantTimeEq for Fp {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl Fp {
    pub(crate) const ZERO: Fp = Fp([0; LIMBS]);

    pub(crate) fn one() -> Fp {
        Fp(p_consts().one)
    }

    /// From 128 big-endian octets; `None` unless the value is below p.
    pub(crate) fn from_be_bytes(bytes: &[u8]) -> Option<Fp> {
        if bytes.len() != FP_LEN {
            return None;
        }
        let x = limbs_from_be(bytes);
        if !bool::from(lt(&x, &P.m)) {
            return None;
        }
        Some(Fp(P.mul(&x, &p_consts().r2)))
    }

    pub(crate) fn to_be_bytes(self) -> [u8; FP_LEN] {
        let mut one = [0u64; LIMBS];
        one[0] = 1;
        limbs_to_be(&P.mul(&self.0, &one))
    }

    #[inline]
    pub(crate) fn mul(&self, b: &Fp) -> Fp {
        Fp(P.mul(&self.0, &b.0))
    }
    #[inline]
    pub(crate) fn square(&self) -> Fp {
        Fp(P.square(&self.0))
    }
    #[inline]
    pub(crate) fn add(&self, b: &Fp) -> Fp {
        Fp(P.add(&self.0, &b.0))
    }
    #[inline]
    pub(crate) fn sub(&self, b: &Fp) -> Fp {
        Fp(P.sub(&self.0, &b.0))
    }
    #[inline]
    pub(crate) fn double(&self) -> Fp {
        self.add(self)
    }
    #[inline]
    pub(crate) fn neg(&self) -> Fp {
        Fp::ZERO.sub(self)
    }
    pub(crate) fn is_zero(&self) -> Choice {
        self.0.ct_eq(&[0u64; LIMBS])
    }

    /// `1/a` (zero maps to zero), constant time: the divstep inversion of the Montgomery
    /// representative `aR` gives `a^-1 R^-1`, and a Montgomery product with `R^3` restores
    /// `a^-1 R`.
    pub(crate) fn invert(&self) -> Fp {
        Fp(P.mul(&P.invert_plain(&self.0), &p_consts().r3))
    }
}

/// An unreduced product of two Montgomery-form elements (`a R * b R`, reduced later to
/// `ab R mod p`), for lazy reduction: sums and differences of products with one Montgomery
/// reduction at the end. Invariant: the value is below `p R` (`R = 2^1024`), the bound under
/// which [`Modulus::reduce_wide`] returns a reduced element; every operation keeps it and stays
/// congruent mod p.
#[derive(Clone, Copy)]
pub(crate) struct FpWide(Wide);

impl FpWide {
    /// `(t_hi + (p & mask)) R + t_lo`: adds `p R` when `mask` is all ones.
    #[inline(always)]
    fn add_p_high(mut t: Wide, mask: u64) -> Wide {
        let mut carry = 0;
        for i in 0..LIMBS {
            (t[LIMBS + i], carry) = adc(t[LIMBS + i], P.m[i] & mask, carry);
        }
        t
    }

    /// `self - o`, plus `p R` when that is negative: for inputs in `[0, p R)` the difference is
    /// in `(-p R, p R)`, so the result is in `[0, p R)` (the carry out of the correction is the
    /// wrap-around of the negative difference and is dropped).
    #[inline]
    pub(crate) fn sub(&self, o: &FpWide) -> FpWide {
        let mut t = [0u64; 2 * LIMBS];
        let mut borrow = 0;
        for (ti, (x, y)) in t.iter_mut().zip(self.0.iter().zip(&o.0)) {
            (*ti, borrow) = sbb(*x, *y, borrow);
        }
        FpWide(Self::add_p_high(t, borrow.wrapping_neg()))
    }

    /// `self + o`, minus `p R` when that is at least `p R`: the sum is below `2 p R` (it may
    /// carry out of 2048 bits since `2p > R`), so the result is in `[0, p R)`. As `p R` has a
    /// zero low half, `sum >= p R` exactly when the carry is set or the high half is `>= p`.
    #[inline]
    pub(crate) fn add(&self, o: &FpWide) -> FpWide {
        let mut t = [0u64; 2 * LIMBS];
        let mut carry = 0;
        for (ti, (x, y)) in t.iter_mut().zip(self.0.iter().zip(&o.0)) {
            (*ti, carry) = adc(*x, *y, carry);
        }
        let mut hi = [0u64; LIMBS];
        hi.copy_from_slice(&t[LIMBS..]);
        let hi = P.reduce_once(&hi, carry);
        t[LIMBS..].copy_from_slice(&hi);
        FpWide(t)
    }

    /// The Montgomery reduction: `self / R mod p`, fully reduced.
    #[inline]
    pub(crate) fn reduce(&self) -> Fp {
        Fp(P.reduce_wide(&self.0))
    }
}

impl From<Fp> for FpWide {
    /// `x` as a wide value that reduces to `x`: `x R`, the limbs shifted up by 16 (below
    /// `p R`).
    fn from(x: Fp) -> FpWide {
        let mut t = [0u64; 2 * LIMBS];
        t[LIMBS..].copy_from_slice(&x.0);
        FpWide(t)
    }
}

impl Fp {
    /// The unreduced product (below `p^2 < p R`).
    #[inline]
    pub(crate) fn mul_wide(&self, b: &Fp) -> FpWide {
        FpWide(mul_wide(&self.0, &b.0))
    }
}

/// Inverts every element with one field inversion (Montgomery's trick); zeros stay zero.
pub(crate) fn batch_invert(xs: &mut [Fp]) {
    let mut prefix = Vec::with_capacity(xs.len());
    let mut acc = Fp::one();
    for x in xs.iter() {
        prefix.push(acc);
        // skip zeros without branching: multiply by 1 instead
        let f = Fp::conditional_select(x, &Fp::one(), x.is_zero());
        acc = acc.mul(&f);
    }
    let mut inv = acc.invert();
    for (x, pre) in xs.iter_mut().zip(prefix).rev() {
        let zero = x.is_zero();
        let f = Fp::conditional_select(x, &Fp::one(), zero);
        let xi = inv.mul(&pre);
        inv = inv.mul(&f);
        *x = Fp::conditional_select(&xi, &Fp::ZERO, zero);
    }
}

/// Arithmetic mod q on plain (non-Montgomery) limbs.
pub(crate) mod scalar {
    use super::*;

    /// `a * b mod q` for `a, b < q`.
    pub(crate) fn mul_mod_q(a: &Limbs, b: &Limbs) -> Limbs {
        // (a * b / R) * R^2 / R = a * b
        Q.mul(&Q.mul(a, b), &q_consts().r2)
    }

    /// `(a + b) mod q` for `a, b < q`.
    pub(crate) fn add_mod_q(a: &Limbs, b: &Limbs) -> Limbs {
        Q.add(a, b)
    }

    /// `a^-1 mod q` (zero maps to zero), constant time.
    pub(crate) fn invert_mod_q(a: &Limbs) -> Limbs {
        Q.invert_plain(a)
    }

    /// `x mod q` for any `x < 2^1024`, constant time: q > 2^1021, so `x < 8q` and three
    /// conditional subtractions of 4q, 2q and q finish the job.
    pub(crate) fn reduce_mod_q(x: &Limbs) -> Limbs {
        let q2 = add_limbs(&Q.m, &Q.m).0;
        let q4 = add_limbs(&q2, &q2).0;
        let mut x = *x;
        for m in [q4, q2, Q.m] {
            let (d, borrow) = sub_limbs(&x, &m);
            x = select_mask(&x, &d, (borrow ^ 1).wrapping_neg());
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_the_parameters() {
        let prm = super::super::super::reference::params();
        assert_eq!(P.to_biguint(), prm.p);
        assert_eq!(Q.to_biguint(), prm.q);
        assert_eq!(P.m[0].wrapping_mul(P.inv.wrapping_neg()), 1);
        assert_eq!(Q.m[0].wrapping_mul(Q.inv.wrapping_neg()), 1);
        // 4q < 2^1024 (so 8q does not fit and x < 8q for every 1024-bit x)
        assert!(&prm.q * 8u8 > BigUint::from(1u8) << 1024);
    }

    fn any_fp(bytes: &[u8], edge: u8) -> Fp {
        match edge {
            // limbs p - 1 and 0 reach the ends of the bounds of the wide operations
            0 => {
                let mut one = [0u64; LIMBS];
                one[0] = 1;
                Fp::ZERO.sub(&Fp(one))
            }
            1 => Fp::ZERO,
            _ => {
                let mut x = limbs_from_be(bytes);
                x[LIMBS - 1] &= u64::MAX >> 1; // below 2^1023 < p
                Fp(x)
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Sums and differences of unreduced products, reduced once, equal the same expression
        /// with every product reduced (the lazy routines of the F_p^2 product and the mixed
        /// addition).
        #[test]
        fn lazy_reduction_matches_plain(
            x in proptest::collection::vec(proptest::prelude::any::<u8>(), 4 * FP_LEN),
            edges in proptest::prelude::any::<[u8; 4]>(),
        ) {
            let e: Vec<Fp> = x
                .chunks(FP_LEN)
                .zip(edges)
                .map(|(c, edge)| any_fp(c, edge % 6))
                .collect();
            let (ab, cd) = (e[0].mul_wide(&e[1]), e[2].mul_wide(&e[3]));
            let (ab_plain, cd_plain) = (e[0].mul(&e[1]), e[2].mul(&e[3]));
            proptest::prop_assert_eq!(ab.reduce().0, ab_plain.0);
            proptest::prop_assert_eq!(ab.sub(&cd).reduce().0, ab_plain.sub(&cd_plain).0);
            proptest::prop_assert_eq!(ab.add(&cd).reduce().0, ab_plain.add(&cd_plain).0);
            proptest::prop_assert_eq!(
                ab.add(&cd).sub(&ab.sub(&cd)).reduce().0,
                cd_plain.double().0
            );
        }
    }

    #[test]
    fn field_ops_match_biguint() {
        let p = P.to_biguint();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            let mut b = [0u8; FP_LEN];
            for x in b.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *x = seed as u8;
            }
            BigUint::from_bytes_be(&b) % &p
        };
        let to_fp = |x: &BigUint| Fp::from_be_bytes(&limbs_to_be(&biguint_to_limbs(x))).unwrap();
        let from_fp = |x: Fp| BigUint::from_bytes_be(&x.to_be_bytes());
        for _ in 0..50 {
            let (a, b) = (next(), next());
            let (fa, fb) = (to_fp(&a), to_fp(&b));
            assert_eq!(from_fp(fa.mul(&fb)), &a * &b % &p);
            assert_eq!(from_fp(fa.square()), &a * &a % &p);
            assert_eq!(from_fp(fa.add(&fb)), (&a + &b) % &p);
            assert_eq!(from_fp(fa.sub(&fb)), (&a + &p - &b) % &p);
            assert_eq!(from_fp(fa.invert()), a.modinv(&p).unwrap());
            let x = biguint_to_limbs(&a);
            assert_eq!(
                limbs_to_biguint(&scalar::reduce_mod_q(&x)),
                limbs_to_biguint(&x) % Q.to_biguint()
            );
        }
        // p - 1 + p - 1 exercises the carry-out path
        let pm1 = &p - 1u8;
        assert_eq!(from_fp(to_fp(&pm1).add(&to_fp(&pm1))), (&pm1 + &pm1) % &p);
        let mut xs: Vec<Fp> = (0..5).map(|_| to_fp(&next())).collect();
        xs[2] = Fp::ZERO;
        let expect: Vec<BigUint> = xs
            .iter()
            .map(|x| from_fp(*x).modinv(&p).unwrap_or_default())
            .collect();
        batch_invert(&mut xs);
        assert_eq!(xs.iter().map(|x| from_fp(*x)).collect::<Vec<_>>(), expect);
    }
}
