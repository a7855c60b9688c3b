//! `KeyMaterial::signing_key` validates a period's signing key once and keeps it, and never
//! hands out a kept key that no longer matches the material's (public, mutable) fields.

use cig_mikey_sakke::Error;
use cig_mikey_sakke::eccsi;
use cig_mikey_sakke::kms::Community;
use cig_mikey_sakke::mikey::KeyPeriod;
use rand_core::OsRng;

#[test]
fn a_kept_signing_key_follows_the_keys_it_was_made_of() {
    let c = Community::generate("example.org", &mut OsRng).unwrap();
    let period = KeyPeriod::from_unix(1_795_694_400).unwrap();
    let issued = c.issue("tel:+8888", period, &mut OsRng).unwrap();
    let reissued = c.issue("tel:+8888", period, &mut OsRng).unwrap();
    assert_ne!(issued.pvt, reissued.pvt);
    let mut m = c.key_material("tel:+8888", vec![issued.clone()], vec![], None);
    let id = m.identifier(period);

    // Kept: the second key is the first one, and it signs what the KPAK verifies.
    let first = m.signing_key(period).unwrap();
    let kept = m.signing_key(period).unwrap();
    assert_eq!(kept.pvt(), first.pvt());
    let sig = kept.sign(b"BANG", &mut OsRng);
    eccsi::verify(&m.kpak, &id, b"BANG", &sig).unwrap();

    // Another SSK under the kept PVT does not match it: validated again, and refused.
    m.periods[0].ssk = reissued.ssk.clone();
    assert!(matches!(m.signing_key(period), Err(Error::InvalidSsk)));
    // With its own PVT it is valid, and signatures carry the new PVT.
    m.periods[0].pvt = reissued.pvt;
    let new = m.signing_key(period).unwrap();
    assert_eq!(*new.pvt(), reissued.pvt);
    let sig = new.sign(b"BANG", &mut OsRng);
    eccsi::verify(&m.kpak, &id, b"BANG", &sig).unwrap();

    // Back to the first keys: the kept key serves again.
    m.periods[0].ssk = issued.ssk.clone();
    m.periods[0].pvt = issued.pvt;
    assert_eq!(*m.signing_key(period).unwrap().pvt(), issued.pvt);
    // Under another community's KPAK the keys are invalid, kept or not.
    let other = Community::generate("example.org", &mut OsRng).unwrap();
    m.kpak = other.kpak;
    assert!(matches!(m.signing_key(period), Err(Error::InvalidSsk)));
}
