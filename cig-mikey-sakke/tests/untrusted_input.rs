//! Arbitrary bytes from the wire never panic the ECCSI verifier or the SAKKE decapsulator and
//! are refused.

use cig_mikey_sakke::{eccsi, sakke};
use proptest::prelude::*;
use rand_core::OsRng;
use std::sync::OnceLock;

const ID: &[u8] = b"2026-11\0tel:+8888\0";

struct Keys {
    kpak: eccsi::Kpak,
    zpub: sakke::KmsPublicKey,
    rsk: sakke::Rsk,
    sig: eccsi::Signature,
    sed: sakke::EncapsulatedData,
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let (ksak, kpak) = eccsi::generate_community(&mut OsRng);
        let (ssk, pvt) = eccsi::issue_user_key(&ksak, &kpak, ID, &mut OsRng);
        let signer = eccsi::SigningKey::new(&kpak, ID, ssk, pvt).unwrap();
        let (z, zpub) = sakke::generate_master(&mut OsRng);
        let rsk = sakke::issue_rsk(&z, ID).unwrap();
        let sed = sakke::encapsulate(&zpub, ID, &sakke::Ssv::random(&mut OsRng)).unwrap();
        let sig = signer.sign(sed.as_bytes(), &mut OsRng);
        Keys {
            kpak,
            zpub,
            rsk,
            sig,
            sed,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_signature_is_refused(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let k = keys();
        match eccsi::Signature::from_bytes(&bytes) {
            Ok(sig) => prop_assert!(eccsi::verify(&k.kpak, ID, k.sed.as_bytes(), &sig).is_err()),
            Err(_) => prop_assert_ne!(bytes.len(), eccsi::SIGNATURE_LEN),
        }
    }

    #[test]
    fn mutated_signature_is_refused(pos in 0..eccsi::SIGNATURE_LEN, flip in 1u8..=255) {
        let k = keys();
        let mut bytes = *k.sig.as_bytes();
        bytes[pos] ^= flip;
        let sig = eccsi::Signature::from_bytes(&bytes).unwrap();
        prop_assert!(eccsi::verify(&k.kpak, ID, k.sed.as_bytes(), &sig).is_err());
    }

    #[test]
    fn random_encapsulated_data_is_refused(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let k = keys();
        if let Ok(sed) = sakke::EncapsulatedData::from_bytes(&bytes) {
            prop_assert!(sakke::decapsulate(&k.zpub, ID, &k.rsk, &sed).is_err());
        }
    }

    #[test]
    fn mutated_encapsulated_data_is_refused(pos in 1..sakke::SED_LEN, flip in 1u8..=255) {
        let k = keys();
        let mut bytes = *k.sed.as_bytes();
        bytes[pos] ^= flip;
        let sed = sakke::EncapsulatedData::from_bytes(&bytes).unwrap();
        prop_assert!(sakke::decapsulate(&k.zpub, ID, &k.rsk, &sed).is_err());
    }
}
