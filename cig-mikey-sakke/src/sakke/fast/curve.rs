//! Points of E: y^2 = x^3 - 3x over F_p in Jacobian coordinates, and fixed-base tables.
//!
//! Secret scalars only meet [`FixedBaseTable`] multiplication: signed 7-bit windows with a table row
//! per window position (no doublings), every row scanned completely with constant-time
//! selects, and the identity cases of the mixed addition resolved by selects too.

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

use super::fp::{Fp, LIMBS, Limbs, batch_invert};

/// An affine point (never the identity).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Affine {
    pub(crate) x: Fp,
    pub(crate) y: Fp,
}

impl ConditionallySelectable for Affine {
    fn conditional_select(a: &Self, b: &Self, c: Choice) -> Self {
        Affine {
            x: Fp::conditional_select(&a.x, &b.x, c),
            y: Fp::conditional_select(&a.y, &b.y, c),
        }
    }
}

impl Affine {
    /// Parses the coordinates of `04 || x || y`; `None` if not on the curve.
    pub(crate) fn from_coordinates(x: &[u8], y: &[u8]) -> Option<Affine> {
        let p = Affine {
            x: Fp::from_be_bytes(x)?,
            y: Fp::from_be_bytes(y)?,
        };
        p.is_on_curve().then_some(p)
    }

    pub(crate) fn is_on_curve(&self) -> bool {
        let x2 = self.x.square();
        let three_x = self.x.double().add(&self.x);
        let rhs = x2.mul(&self.x).sub(&three_x);
        bool::from(self.y.square().ct_eq(&rhs))
    }

    pub(crate) fn to_jacobian(self) -> Jacobian {
        Jacobian {
            x: self.x,
            y: self.y,
            z: Fp::one(),
        }
    }
}

/// A point in Jacobian coordinates (x = X/Z^2, y = Y/Z^3); Z = 0 is the identity.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Jacobian {
    pub(crate) x: Fp,
    pub(crate) y: Fp,
    pub(crate) z: Fp,
}

impl ConditionallySelectable for Jacobian {
    fn conditional_select(a: &Self, b: &Self, c: Choice) -> Self {
        Jacobian {
            x: Fp::conditional_select(&a.x, &b.x, c),
            y: Fp::conditional_select(&a.y, &b.y, c),
            z: Fp::conditional_select(&a.z, &b.z, c),
        }
    }
}

impl Jacobian {
    pub(crate) fn identity() -> Jacobian {
        Jacobian {
            x: Fp::one(),
            y: Fp::one(),
            z: Fp::ZERO,
        }
    }

    /// Doubling for a = -3 (dbl-2001-b). Points of odd order never have y = 0.
    pub(crate) fn double(&self) -> Jacobian {
        let delta = self.z.square();
        let gamma = self.y.square();
        let beta = self.x.mul(&gamma);
        let t = self.x.sub(&delta).mul(&self.x.add(&delta));
        let alpha = t.double().add(&t);
        let beta4 = beta.double().double();
        let x3 = alpha.square().sub(&beta4.double());
        let z3 = self.y.add(&self.z).square().sub(&gamma).sub(&delta);
        let gamma2_8 = gamma.square().double().double().double();
        let y3 = alpha.mul(&beta4.sub(&x3)).sub(&gamma2_8);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// `self + b` (madd-2007-bl). Wrong results when `self` is the identity or `±b`; callers
    /// resolve those cases (see [`Jacobian::add_affine_ct`]).
    pub(crate) fn add_affine_unchecked(&self, b: &Affine) -> Jacobian {
        let z1z1 = self.z.square();
        let u2 = b.x.mul(&z1z1);
        let s2 = b.y.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&self.x);
        let hh = h.square();
        let i = hh.double().double();
        let j = h.mul(&i);
        let r = s2.sub(&self.y).double();
        let v = self.x.mul(&i);
        let x3 = r.square().sub(&j).sub(&v.double());
        // Y3 = r (V - X3) - 2 Y1 J with one Montgomery reduction for both products
        let y3 = r
            .mul_wide(&v.sub(&x3))
            .sub(&self.y.double().mul_wide(&j))
            .reduce();
        let z3 = self.z.add(&h).square().sub(&z1z1).sub(&hh);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// `self + b` where `b_is_identity` marks an absent `b`; constant time. `self == ±b` is not
    /// handled (it cannot occur in the fixed-base sums below except with negligible
    /// probability, see [`FixedBaseTable::mul`]).
    pub(crate) fn add_affine_ct(&self, b: &Affine, b_is_identity: Choice) -> Jacobian {
        let sum = self.add_affine_unchecked(b);
        let sum = Jacobian::conditional_select(&sum, &b.to_jacobian(), self.z.is_zero());
        Jacobian::conditional_select(&sum, self, b_is_identity)
    }

    /// Full Jacobian addition (add-2007-bl), variable time, for public points only.
    pub(crate) fn add_vartime(&self, b: &Jacobian) -> Jacobian {
        if bool::from(self.z.is_zero()) {
            return *b;
        }
        if bool::from(b.z.is_zero()) {
            return *self;
        }
        let z1z1 = self.z.square();
        let z2z2 = b.z.square();
        let u1 = self.x.mul(&z2z2);
        let u2 = b.x.mul(&z1z1);
        let s1 = self.y.mul(&b.z).mul(&z2z2);
        let s2 = b.y.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&u1);
        let r = s2.sub(&s1).double();
        if bool::from(h.is_zero()) {
            return if bool::from(r.is_zero()) {
                self.double()
            } else {
                Jacobian::identity()
            };
        }
        let i = h.double().square();
        let j = h.mul(&i);
        let v = u1.mul(&i);
        let x3 = r.square().sub(&j).sub(&v.double());
        let y3 = r.mul(&v.sub(&x3)).sub(&s1.mul(&j).double());
        let z3 = self.z.add(&b.z).square().sub(&z1z1).sub(&z2z2).mul(&h);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// Affine coordinates (constant time); `None` for the identity.
    pub(crate) fn to_affine(self) -> Option<Affine> {
        let zi = self.z.invert();
        self.to_affine_with_inverse(&zi)
    }

    /// Affine coordinates given `1/Z` (computed elsewhere, e.g. batched).
    pub(crate) fn to_affine_with_inverse(self, zi: &Fp) -> Option<Affine> {
        if bool::from(self.z.is_zero()) {
            return None;
        }
        let zi2 = zi.square();
        Some(Affine {
            x: self.x.mul(&zi2),
            y: self.y.mul(&zi2).mul(zi),
        })
    }

    /// Does this point equal the affine `b`? (constant time, no inversion)
    pub(crate) fn ct_eq_affine(&self, b: &Affine) -> Choice {
        let z2 = self.z.square();
        let z3 = z2.mul(&self.z);
        !self.z.is_zero() & self.x.ct_eq(&b.x.mul(&z2)) & self.y.ct_eq(&b.y.mul(&z3))
    }
}

/// Window width of the fixed-base tables, in bits.
pub(crate) const WIDTH: usize = 7;
/// Largest digit magnitude: digits are signed, in `-64..=64`.
const HALF: usize = 1 << (WIDTH - 1);
/// Entries per table row (digits `0..=64`).
pub(crate) const ENTRIES: usize = HALF + 1;
/// Windows covering a 1024-bit scalar (plus the carry of the signed recoding).
pub(crate) const WINDOWS: usize = (LIMBS * 64).div_ceil(WIDTH);

/// A 1024-bit little-endian scalar as signed `WIDTH`-bit digits `d_i` in `-64..=64` with
/// `k = sum d_i 2^(WIDTH i)`, least significant first. Constant time: the limb indices depend
/// only on the public window position.
pub(crate) fn signed_digits(k: &Limbs) -> [i8; WINDOWS] {
    let mut out = [0i8; WINDOWS];
    let mut carry = 0u64;
    for (window, o) in out.iter_mut().enumerate() {
        let bit = WIDTH * window;
        let (limb, shift) = (bit / 64, bit % 64);
        let mut w = k[limb] >> shift;
        if shift + WIDTH > 64 && limb + 1 < LIMBS {
            w |= k[limb + 1] << (64 - shift);
        }
        let d = (w & ((1 << WIDTH) - 1)) + carry;
        // digits above 64 become d - 128 with a carry into the next window
        carry = (d + HALF as u64 - 1) >> WIDTH;
        *o = (d as i64 - ((carry as i64) << WIDTH)) as i8;
    }
    out
}

/// `|d|` and whether `d < 0`, constant time.
pub(crate) fn split_digit(d: i8) -> (u8, Choice) {
    let neg = (d as u8) >> 7;
    (
        (d as u8 ^ neg.wrapping_neg()).wrapping_add(neg),
        Choice::from(neg),
    )
}

/// `[d * 2^(WIDTH i)]B` for every window position `i` and digit `d` in `1..=64` (entry 0
/// unused): 147 rows of 65 points, 2.3 MiB.
pub(crate) struct FixedBaseTable {
    rows: Vec<[Affine; ENTRIES]>,
}

impl core::fmt::Debug for FixedBaseTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("FixedBaseTable(..)")
    }
}

impl FixedBaseTable {
    /// Builds the table for a public point of odd order (about 10,800 additions and one
    /// batched inversion).
    pub(crate) fn new(base: &Affine) -> FixedBaseTable {
        let mut jac = Vec::with_capacity(WINDOWS * ENTRIES);
        let mut b = base.to_jacobian();
        for _ in 0..WINDOWS {
            let row_start = jac.len();
            jac.push(Jacobian::identity());
            jac.push(b);
            jac.push(b.double());
            for d in 3..ENTRIES {
                let next = jac[row_start + d - 1].add_vartime(&b);
                jac.push(next);
            }
            b = jac[row_start + HALF].double();
        }
        let mut zs: Vec<Fp> = jac.iter().map(|p| p.z).collect();
        batch_invert(&mut zs);
        let mut rows = Vec::with_capacity(WINDOWS);
        for (chunk, zi) in jac.chunks(ENTRIES).zip(zs.chunks(ENTRIES)) {
            let mut row = [Affine::default(); ENTRIES];
            for (d, (p, z)) in chunk.iter().zip(zi).enumerate() {
                row[d] = p.to_affine_with_inverse(z).unwrap_or_default();
            }
            rows.push(row);
        }
        FixedBaseTable { rows }
    }

    /// Constant-time lookup of `[digit * 2^(WIDTH window)]B`; the flag is set for digit 0.
    fn lookup(&self, window: usize, digit: i8) -> (Affine, Choice) {
        let (abs, neg) = split_digit(digit);
        let mut out = Affine::default();
        for (d, entry) in self.rows[window].iter().enumerate() {
            out.conditional_assign(entry, (d as u8).ct_eq(&abs));
        }
        out.y.conditional_assign(&out.y.neg(), neg);
        (out, abs.ct_eq(&0))
    }

    /// `sum [k_j] B_j` over (table, scalar) pairs, each scalar below q, constant time in the
    /// scalars.
    ///
    /// The partial sum before adding the entry of window `i` is a combination of the bases with
    /// coefficients of magnitude below `2^(WIDTH i - 1)`, while the entry's is at least
    /// `2^(WIDTH i)` and, below the top window, at most `2^1021 < q`: so the two are equal or
    /// opposite only through an unknown linear relation between independent bases
    /// (negligible). For a single base the top window (digit 1, coefficient `2^1022 > q`) meets
    /// the partial sum `k - 2^1022` only for the one scalar `k = 2^1023 mod q`
    /// (probability 2^-1021 for the hash-derived `r`; the result is then wrong, not leaked).
    pub(crate) fn mul(terms: &[(&FixedBaseTable, &Limbs)]) -> Jacobian {
        let mut digits: Vec<[i8; WINDOWS]> = terms.iter().map(|(_, k)| signed_digits(k)).collect();
        let mut acc = Jacobian::identity();
        for window in 0..WINDOWS {
            for ((table, _), ds) in terms.iter().zip(&digits) {
                let (entry, none) = table.lookup(window, ds[window]);
                acc = acc.add_affine_ct(&entry, none);
            }
        }
        digits.iter_mut().for_each(|d| d.zeroize());
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::{BigInt, BigUint};

    fn recompose(ds: &[i8; WINDOWS]) -> BigInt {
        ds.iter()
            .rev()
            .fold(BigInt::default(), |acc, &d| (acc << WIDTH) + d)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// The signed recoding sums back to the scalar, every digit in -64..=64.
        #[test]
        fn signed_digits_recompose(k in proptest::prelude::any::<[u64; LIMBS]>()) {
            let ds = signed_digits(&k);
            proptest::prop_assert!(ds.iter().all(|d| (-64..=64).contains(d)));
            let big = BigUint::from_slice(&k.iter().flat_map(|l| [*l as u32, (*l >> 32) as u32]).collect::<Vec<_>>());
            proptest::prop_assert_eq!(recompose(&ds), BigInt::from(big));
            for d in ds {
                let (abs, neg) = split_digit(d);
                proptest::prop_assert_eq!(i16::from(abs) * if bool::from(neg) { -1 } else { 1 }, i16::from(d));
            }
        }
    }
}
