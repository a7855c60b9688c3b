//! RFC 6507 Appendix A reproduced value by value, plus negative tests.

use super::*;
use crate::vectors::{RFC6507, hex_value};
use rand_core::OsRng;

fn v(name: &str) -> Vec<u8> {
    hex_value(RFC6507, name)
}

fn scalar(name: &str) -> Scalar {
    let bytes = v(name);
    let mut padded = [0u8; 32];
    padded[32 - bytes.len()..].copy_from_slice(&bytes);
    Scalar::from_repr(FieldBytes::from(padded)).unwrap()
}

fn appendix_keys() -> (Kpak, Vec<u8>, Ssk, Pvt) {
    let ksak = Ksak(scalar("KSAK"));
    let kpak = ksak.public_key();
    assert_eq!(kpak.to_bytes().to_vec(), v("KPAK"), "KPAK = [KSAK]G");
    let id = v("ID");
    assert_eq!(id, b"2011-02\0tel:+447700900123\0");
    let vv = scalar("v");
    let pvt = Pvt(mul_g(&vv).to_affine());
    assert_eq!(pvt.to_bytes().to_vec(), v("PVT"), "PVT = [v]G");
    let hs = hs_scalar(&kpak, &id, &pvt);
    let ssk = Ssk(ksak.0 + hs * vv);
    assert_eq!(ssk.to_bytes().to_vec(), v("SSK"), "SSK = KSAK + HS*v");
    (kpak, id, ssk, pvt)
}

#[test]
fn rfc6507_hs_and_ssk() {
    let (kpak, id, ssk, pvt) = appendix_keys();
    let mut input = point_to_bytes(&AffinePoint::GENERATOR).to_vec();
    input.extend_from_slice(&kpak.to_bytes());
    input.extend_from_slice(&id);
    input.extend_from_slice(&pvt.to_bytes());
    assert_eq!(input, v("HS_input"));
    assert_eq!(hs_digest(&kpak, &id, &pvt).to_vec(), v("HS"));
    assert_eq!(validate_ssk(&kpak, &id, &ssk, &pvt), Ok(()));
}

#[test]
fn rfc6507_signature_values() {
    let (kpak, id, ssk, pvt) = appendix_keys();
    let key = SigningKey::new(&kpak, &id, ssk.clone(), pvt).unwrap();
    let j = scalar("j");
    let big_j = mul_g(&j).to_affine();
    assert_eq!(point_to_bytes(&big_j).to_vec(), v("J"), "J = [j]G");
    let r = v("r");
    assert_eq!(&point_to_bytes(&big_j)[1..33], r.as_slice(), "r = Jx");
    let he = Sha256::new()
        .chain_update(v("HS"))
        .chain_update(&r)
        .chain_update(v("M"))
        .finalize();
    assert_eq!(he.to_vec(), v("HE"));
    let he_s = <Scalar as Reduce<U256>>::reduce_bytes(&he);
    let s_prime = (he_s + scalar("r") * ssk.0).invert().unwrap() * j;
    assert_eq!(s_prime.to_bytes().to_vec(), v("s'"));
    assert_eq!(v("s'"), v("s"), "s' fits N octets, so s = s'");

    let sig = key
        .sign_with_fixed_ephemeral_for_test_vectors(&v("M"), &j.to_bytes())
        .unwrap();
    assert_eq!(sig.as_bytes().to_vec(), v("Sig"));
    assert_eq!(verify(&kpak, &id, &v("M"), &sig), Ok(()));
}

#[test]
fn rfc6507_verification_values() {
    let (kpak, id, _ssk, pvt) = appendix_keys();
    let hs = hs_scalar(&kpak, &id, &pvt);
    // 4) Y = [HS]PVT + KPAK, computed the RFC's way
    let y = (ProjectivePoint::from(pvt.0) * hs + ProjectivePoint::from(kpak.0)).to_affine();
    assert_eq!(point_to_bytes(&y).to_vec(), v("Y"));
    // 5) J = [s]([HE]G + [r]Y)
    let he = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(
        <[u8; 32]>::try_from(v("HE")).unwrap(),
    ));
    let j = ((ProjectivePoint::GENERATOR * he + ProjectivePoint::from(y) * scalar("r"))
        * scalar("s"))
    .to_affine();
    assert_eq!(point_to_bytes(&j)[1..33].to_vec(), v("Jx"));
    assert_eq!(v("Jx"), v("r"));
}

#[test]
fn fixed_base_table_matches_generic_multiplication() {
    for _ in 0..8 {
        let k = Scalar::random(&mut OsRng);
        let expect = (ProjectivePoint::GENERATOR * k).to_affine();
        assert_eq!(mul_g(&k).to_affine(), expect);
        assert_eq!(mul_g_vartime(&k).to_affine(), expect);
    }
    assert_eq!(mul_g(&Scalar::ZERO), ProjectivePoint::IDENTITY);
    assert_eq!(
        mul_g(&-Scalar::ONE).to_affine(),
        (-ProjectivePoint::GENERATOR).to_affine()
    );
}

#[test]
fn round_trip_and_rejections() {
    let (ksak, kpak) = generate_community(&mut OsRng);
    let id = b"2026-11\0tel:+8888\0";
    let (ssk, pvt) = issue_user_key(&ksak, &kpak, id, &mut OsRng);
    validate_ssk(&kpak, id, &ssk, &pvt).unwrap();
    assert_eq!(
        validate_ssk(&kpak, b"2026-11\0tel:+8889\0", &ssk, &pvt),
        Err(Error::InvalidSsk)
    );
    let key = SigningKey::new(&kpak, id, ssk.clone(), pvt).unwrap();
    let sig = key.sign(b"hello", &mut OsRng);
    verify(&kpak, id, b"hello", &sig).unwrap();
    assert_eq!(verify(&kpak, id, b"hellp", &sig), Err(Error::BadSignature));
    assert_eq!(
        verify(&kpak, b"2026-11\0tel:+8889\0", b"hello", &sig),
        Err(Error::BadSignature)
    );
    for i in 0..SIGNATURE_LEN {
        let mut bad = *sig.as_bytes();
        bad[i] ^= 0x01;
        let bad = Signature::from_bytes(&bad).unwrap();
        assert!(
            verify(&kpak, id, b"hello", &bad).is_err(),
            "flipped byte {i}"
        );
    }
    let (_, other_kpak) = generate_community(&mut OsRng);
    assert!(SigningKey::new(&other_kpak, id, ssk, pvt).is_err());
    assert!(Signature::from_bytes(&[0u8; 128]).is_err());
    assert!(Kpak::from_bytes(&[4u8; 65]).is_err());
    assert!(Ssk::from_bytes(&[0u8; 32]).is_err());
    assert!(Ssk::from_bytes(&[0xffu8; 32]).is_err());
    assert_eq!(format!("{:?}", key.ssk), "Ssk(<redacted>)");
    assert_eq!(Kpak::from_bytes(&kpak.to_bytes()), Ok(kpak));
}

fn scalar_from_seed(bytes: &[u8; 32]) -> Scalar {
    <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(*bytes))
}

#[test]
fn signed_windows_at_the_edges() {
    // -1 = q - 1 has every window at its largest digit before recoding
    for k in [
        Scalar::ZERO,
        Scalar::ONE,
        -Scalar::ONE,
        Scalar::from(32u64),
        Scalar::from(33u64),
    ] {
        assert_eq!(mul_g(&k), ProjectivePoint::GENERATOR * k);
        assert_eq!(mul_g_vartime(&k), ProjectivePoint::GENERATOR * k);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
    /// The signed-window table products agree with p256's own scalar multiplication.
    #[test]
    fn table_products_match_p256(k in proptest::prelude::any::<[u8; 32]>(), b in proptest::prelude::any::<[u8; 32]>()) {
        let k = scalar_from_seed(&k);
        proptest::prop_assert_eq!(mul_g(&k), ProjectivePoint::GENERATOR * k);
        let base = ProjectivePoint::GENERATOR * scalar_from_seed(&b);
        let table = build_table(base);
        proptest::prop_assert_eq!(mul_table_vartime(&table, &k), base * k);
    }
}
