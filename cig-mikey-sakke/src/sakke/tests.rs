//! RFC 6508 Appendix A reproduced value by value (reference and fast paths), plus negative tests.

use super::*;
use crate::vectors::{RFC6508, hex_value};
use num_bigint::BigUint;

fn v(name: &str) -> Vec<u8> {
    hex_value(RFC6508, name)
}

fn big(name: &str) -> BigUint {
    BigUint::from_bytes_be(&v(name))
}

fn point(x: &str, y: &str) -> Vec<u8> {
    [vec![4u8], v(x), v(y)].concat()
}

fn appendix() -> (MasterSecret, KmsPublicKey, Vec<u8>, Ssv, Rsk) {
    let z = MasterSecret::from_bytes(&v("z")).unwrap();
    let zpub = KmsPublicKey::from_bytes(&point("Zx", "Zy")).unwrap();
    let id = v("b");
    let ssv = Ssv::from_bytes(v("SSV").try_into().unwrap());
    let rsk = Rsk::from_bytes(&point("Kbx", "Kby")).unwrap();
    (z, zpub, id, ssv, rsk)
}

#[test]
fn rfc6509_parameter_set_1() {
    let prm = reference::params();
    assert_eq!(prm.p, big("p"));
    assert_eq!(prm.q, big("q"));
    assert_eq!(&prm.q * 4u8, &prm.p + 1u8, "q = (p+1)/4");
    assert!(reference::on_curve(&big("Px"), &big("Py")));
    assert_eq!(
        reference::mul(&prm.q, &Some(prm.point_p.clone())),
        None,
        "[q]P = 0"
    );
    assert_eq!(prm.g, big("g"));
}

#[test]
fn hash_to_integer_range_appendix() {
    let m = v("M");
    assert_eq!(m, v("r_input"));
    assert_eq!(sha2::Sha256::digest(&m).to_vec(), v("A"));
    let expanded = hash_expand(&m, 4);
    let vs = [v("v1"), v("v2"), v("v3"), v("v4")].concat();
    assert_eq!(expanded, vs);
    let r = reference::hash_to_integer_range(&m, &reference::params().q);
    assert_eq!(r, big("v_mod_q"));
    assert_eq!(r, big("r"));
}

#[test]
fn reference_kms_and_rsk() {
    let (z, zpub, id, _, rsk) = appendix();
    assert_eq!(reference::kms_public_key(&z).unwrap(), zpub, "Z = [z]P");
    assert_eq!(
        reference::issue_rsk(&z, &id).unwrap(),
        rsk,
        "K_b = [(b+z)^-1]P"
    );
    reference::validate_rsk(&zpub, &id, &rsk).unwrap();
    let mut other = id.clone();
    other[5] ^= 1;
    assert_eq!(
        reference::validate_rsk(&zpub, &other, &rsk),
        Err(Error::InvalidRsk)
    );
}

#[test]
fn reference_pairing_g() {
    let prm = reference::params();
    let p = prm.point_p.clone();
    assert_eq!(reference::pairing(&p, &p), Some(big("g")), "g = <P,P>");
}

#[test]
fn reference_encapsulation_appendix() {
    let (_, zpub, id, ssv, _) = appendix();
    let t = reference::encapsulate_trace(&zpub, &id, &ssv).unwrap();
    assert_eq!(t.r, big("r"));
    assert_eq!(t.big_r, (big("Rbx"), big("Rby")));
    assert_eq!(t.g_r, big("g^r"));
    assert_eq!(t.mask, big("mask"));
    assert_eq!(t.sed.as_bytes()[POINT_LEN..].to_vec(), v("H"));
    assert_eq!(t.sed.as_bytes().to_vec(), v("SED"));
}

#[test]
fn reference_decapsulation_appendix() {
    let (_, zpub, id, ssv, rsk) = appendix();
    let sed = EncapsulatedData::from_bytes(&v("SED")).unwrap();
    let (r_bytes, _) = sed.parts();
    let big_r = (
        BigUint::from_bytes_be(&r_bytes[1..=FP_LEN]),
        BigUint::from_bytes_be(&r_bytes[1 + FP_LEN..]),
    );
    let k = (big("Kbx"), big("Kby"));
    assert_eq!(
        reference::pairing(&big_r, &k),
        Some(big("w")),
        "w = <R, K_b>"
    );
    assert_eq!(big("w"), big("g^r"));
    assert_eq!(reference::decapsulate(&zpub, &id, &rsk, &sed), Ok(ssv));
    // TEST = [r]([b]P + Z) equals R: a flipped H changes the SSV, so the R check fails
    let mut bad = *sed.as_bytes();
    bad[SED_LEN - 1] ^= 1;
    let bad = EncapsulatedData::from_bytes(&bad).unwrap();
    assert_eq!(
        reference::decapsulate(&zpub, &id, &rsk, &bad),
        Err(Error::Decapsulation)
    );
}

#[test]
fn fast_path_appendix() {
    let (z, zpub, id, ssv, rsk) = appendix();
    assert_eq!(kms_public_key(&z).unwrap(), zpub, "Z = [z]P");
    assert_eq!(issue_rsk(&z, &id).unwrap(), rsk, "K_b = [(b+z)^-1]P");
    validate_rsk(&zpub, &id, &rsk).unwrap();
    // first: the Z table; second and third: the recipient's own table
    for _ in 0..3 {
        let sed = encapsulate(&zpub, &id, &ssv).unwrap();
        assert_eq!(sed.as_bytes().to_vec(), v("SED"));
        assert_eq!(decapsulate(&zpub, &id, &rsk, &sed), Ok(ssv.clone()));
    }
    assert!(zpub.recipient_table(&id).is_some());
}

#[test]
fn fast_pairing_matches_appendix() {
    let (_, _, _, _, rsk) = appendix();
    let sed = EncapsulatedData::from_bytes(&v("SED")).unwrap();
    let (r_bytes, _) = sed.parts();
    let big_r = fast::curve::Affine::from_coordinates(&r_bytes[1..=FP_LEN], &r_bytes[1 + FP_LEN..])
        .unwrap();
    let w = rsk.prepared().pairing(&big_r);
    assert_eq!(w.to_be_bytes().to_vec(), v("w"), "w = <R, K_b> = <K_b, R>");
    let g = fast::PreparedRsk::new(&fast::generator()).pairing(&fast::generator());
    assert_eq!(g.to_be_bytes().to_vec(), v("g"), "g = <P, P>");
}

#[test]
fn fast_path_rejections() {
    let (_, zpub, id, ssv, rsk) = appendix();
    let sed = encapsulate(&zpub, &id, &ssv).unwrap();
    // a flipped bit in H changes the recovered SSV, so the R check fails
    let mut bad = *sed.as_bytes();
    bad[SED_LEN - 1] ^= 1;
    let bad = EncapsulatedData::from_bytes(&bad).unwrap();
    assert_eq!(
        decapsulate(&zpub, &id, &rsk, &bad),
        Err(Error::Decapsulation)
    );
    // R off the curve
    let mut bad = *sed.as_bytes();
    bad[10] ^= 1;
    let bad = EncapsulatedData::from_bytes(&bad).unwrap();
    assert_eq!(
        decapsulate(&zpub, &id, &rsk, &bad),
        Err(Error::Decapsulation)
    );
    // wrong identifier
    let mut other = id.clone();
    other[6] ^= 1;
    assert_eq!(
        decapsulate(&zpub, &other, &rsk, &sed),
        Err(Error::Decapsulation)
    );
    assert_eq!(validate_rsk(&zpub, &other, &rsk), Err(Error::InvalidRsk));
    assert!(EncapsulatedData::from_bytes(&sed.as_bytes()[1..]).is_err());
    assert!(Rsk::from_bytes(&[4u8; POINT_LEN]).is_err());
    assert!(MasterSecret::from_bytes(&[1u8]).is_err());
    assert_eq!(format!("{rsk:?}"), "Rsk(<redacted>)");
    assert_eq!(format!("{ssv:?}"), "Ssv(<redacted>)");
}

#[test]
fn recipient_table_is_built_once_under_concurrent_encapsulations() {
    let (_, zpub, id, ssv, rsk) = appendix();
    // First sighting: no table.
    assert!(zpub.recipient_table(&id).is_none());
    // Second sighting by eight encapsulations at once, each on its own clone of the key (as a
    // gateway's dialling threads hold them): one of them builds the table, the others go
    // without it, and every table handed out is that one table.
    let start = std::sync::Barrier::new(8);
    let tables: Vec<Option<Arc<fast::curve::FixedBaseTable>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (zpub, id, ssv, rsk, start) = (zpub.clone(), &id, &ssv, &rsk, &start);
                s.spawn(move || {
                    start.wait();
                    let t = zpub.recipient_table(id);
                    let sed = encapsulate(&zpub, id, ssv).unwrap();
                    assert_eq!(sed.as_bytes().to_vec(), v("SED"));
                    assert_eq!(decapsulate(&zpub, id, rsk, &sed), Ok(ssv.clone()));
                    t
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let built: Vec<_> = tables.into_iter().flatten().collect();
    assert!(!built.is_empty(), "one encapsulation built the table");
    let kept = zpub.recipient_table(&id).unwrap();
    assert!(
        built.iter().all(|t| Arc::ptr_eq(t, &kept)),
        "a single table was built and shared"
    );
    assert!(zpub.has_recipient_table(&id));
    // Built already: preparing again builds nothing.
    assert!(!zpub.prepare_recipient(&id));
}

#[test]
fn tables_are_shared_by_clones_made_before_they_were_built() {
    let (_, zpub, id, ssv, rsk) = appendix();
    let (zpub2, rsk2) = (zpub.clone(), rsk.clone());
    rsk.prepare_for(&zpub, &id);
    assert!(
        std::ptr::eq(zpub.table(), zpub2.table()),
        "the Z table is one for both clones"
    );
    assert!(std::ptr::eq(rsk.prepared(), rsk2.prepared()));
    assert!(std::ptr::eq(
        rsk.own_table(&zpub, &id).unwrap(),
        rsk2.own_table(&zpub2, &id).unwrap()
    ));
    // The recipient cache too: prepared through one clone, used through the other.
    assert!(zpub.prepare_recipient(&id));
    assert!(zpub2.has_recipient_table(&id));
    let sed = encapsulate(&zpub2, &id, &ssv).unwrap();
    assert_eq!(sed.as_bytes().to_vec(), v("SED"));
}

#[test]
fn at_most_recipient_tables_are_kept() {
    let (_, zpub, id, _, _) = appendix();
    let ids: Vec<Vec<u8>> = (0..=RECIPIENT_TABLES as u8)
        .map(|i| [&id[..], &[i]].concat())
        .collect();
    for i in &ids {
        assert!(zpub.prepare_recipient(i));
    }
    let kept = ids.iter().filter(|i| zpub.has_recipient_table(i)).count();
    assert_eq!(kept, RECIPIENT_TABLES);
    assert!(
        !zpub.has_recipient_table(&ids[0]),
        "the oldest table went first"
    );
}

#[test]
fn deferred_recipient_tables_are_left_to_the_application() {
    let (_, zpub, id, ssv, rsk) = appendix();
    let clone = zpub.clone();
    zpub.defer_recipient_tables();
    assert_eq!(zpub.take_wanted_recipient(), None, "nothing wanted yet");
    // First and second sighting (through a clone made before deferring): no table built on
    // the call's path, and the result is the same SED.
    for _ in 0..2 {
        let sed = encapsulate(&clone, &id, &ssv).unwrap();
        assert_eq!(sed.as_bytes().to_vec(), v("SED"));
    }
    assert!(
        !zpub.has_recipient_table(&id),
        "the encapsulations built nothing"
    );
    // The second sighting left it wanted, once; the application builds it.
    let wanted = zpub
        .take_wanted_recipient()
        .expect("wanted after the second sighting");
    assert_eq!(wanted, id);
    assert_eq!(zpub.take_wanted_recipient(), None, "handed out once");
    assert!(zpub.prepare_recipient(&wanted));
    assert!(clone.has_recipient_table(&id));
    let sed = encapsulate(&clone, &id, &ssv).unwrap();
    assert_eq!(decapsulate(&zpub, &id, &rsk, &sed), Ok(ssv));
    // A recipient seen once is not wanted.
    let other = [&id[..], b"x"].concat();
    assert!(zpub.recipient_table(&other).is_none());
    assert_eq!(zpub.take_wanted_recipient(), None);
}
