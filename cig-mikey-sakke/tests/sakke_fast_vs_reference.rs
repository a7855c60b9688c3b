//! Property test: the fast SAKKE path agrees with the big-integer reference path on random
//! KMS keys, identifiers and SSVs (few cases: the reference takes about a second each).

use cig_mikey_sakke::sakke::{self, Ssv, reference};
use proptest::prelude::*;
use rand_core::OsRng;

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]

    #[test]
    fn fast_equals_reference(
        id in proptest::collection::vec(any::<u8>(), 1..64),
        ssv in any::<[u8; 16]>(),
    ) {
        let (z, zpub) = sakke::generate_master(&mut OsRng);
        prop_assert_eq!(&reference::kms_public_key(&z).unwrap(), &zpub);
        let rsk = sakke::issue_rsk(&z, &id).unwrap();
        prop_assert_eq!(&reference::issue_rsk(&z, &id).unwrap(), &rsk);
        let ssv = Ssv::from_bytes(ssv);
        let sed = sakke::encapsulate(&zpub, &id, &ssv).unwrap();
        prop_assert_eq!(reference::encapsulate(&zpub, &id, &ssv).unwrap(), sed);
        prop_assert_eq!(&reference::decapsulate(&zpub, &id, &rsk, &sed).unwrap(), &ssv);
        prop_assert_eq!(&sakke::decapsulate(&zpub, &id, &rsk, &sed).unwrap(), &ssv);
        sakke::validate_rsk(&zpub, &id, &rsk).unwrap();
        reference::validate_rsk(&zpub, &id, &rsk).unwrap();
    }
}
