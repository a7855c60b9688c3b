//! The KMS side: a community (domain name, ECCSI KSAK/KPAK, SAKKE z/Z) and issuing a user's
//! keys for monthly periods. Files: `community.json` (public) and `master.json` (secrets,
//! 0600), formats in docs/keys.md.

use std::path::Path;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::Error;
use crate::eccsi::{self, Kpak, Ksak};
use crate::keystore::{self, KeyMaterial, PeriodKeys};
use crate::mikey::profile::KeyPeriod;
use crate::sakke::{self, KmsPublicKey, MasterSecret};

/// File name of the public community parameters in a KMS directory.
pub const COMMUNITY_FILE: &str = "community.json";
/// File name of the master secrets in a KMS directory.
pub const MASTER_FILE: &str = "master.json";

/// A MIKEY-SAKKE community: its domain and master keys.
#[derive(Debug)]
pub struct Community {
    /// Security domain name.
    pub domain: String,
    /// ECCSI KMS secret authentication key.
    pub ksak: Ksak,
    /// ECCSI KMS public authentication key.
    pub kpak: Kpak,
    /// SAKKE master secret z.
    pub z: MasterSecret,
    /// SAKKE KMS public key Z.
    pub zpub: KmsPublicKey,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicJson {
    format: String,
    domain: String,
    kpak: String,
    z: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MasterJson {
    format: String,
    ksak: Zeroizing<String>,
    z_secret: Zeroizing<String>,
}

fn bad(what: &str) -> impl Fn(Error) -> Error + '_ {
    move |e| Error::Keystore(format!("{what}: {e}"))
}

fn unhex(s: &str, what: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    hex::decode(s)
        .map(Zeroizing::new)
        .map_err(|_| Error::Keystore(format!("{what} is not hex")))
}

impl Community {
    /// Generates fresh master keys for `domain`.
    pub fn generate(domain: &str, rng: &mut impl CryptoRngCore) -> Result<Self, Error> {
        if domain.is_empty() || domain.len() > 253 || domain.contains(char::is_whitespace) {
            return Err(Error::Keystore(format!(
                "domain name {domain:?} is not valid"
            )));
        }
        let (ksak, kpak) = eccsi::generate_community(rng);
        let (z, zpub) = sakke::generate_master(rng);
        Ok(Self {
            domain: domain.to_owned(),
            ksak,
            kpak,
            z,
            zpub,
        })
    }

    /// Issues SSK/PVT and RSK for `identity` (a tel URI) for `period`.
    pub fn issue(
        &self,
        identity: &str,
        period: KeyPeriod,
        rng: &mut impl CryptoRngCore,
    ) -> Result<PeriodKeys, Error> {
        keystore::check_identity(identity)?;
        let id = period.identifier(identity);
        let (ssk, pvt) = eccsi::issue_user_key(&self.ksak, &self.kpak, &id, rng);
        let rsk = sakke::issue_rsk(&self.z, &id)?;
        Ok(PeriodKeys::new(period, ssk, pvt, rsk))
    }

    /// Key material for `identity` with keys for `periods`, switch addresses and CA.
    pub fn key_material(
        &self,
        identity: &str,
        periods: Vec<PeriodKeys>,
        switch_addresses: Vec<String>,
        switch_ca_cert: Option<String>,
    ) -> KeyMaterial {
        KeyMaterial {
            identity: identity.to_owned(),
            domain: self.domain.clone(),
            kpak: self.kpak,
            zpub: self.zpub.clone(),
            periods,
            switch_addresses,
            switch_ca_cert,
        }
    }

    /// Writes `community.json` (0644) and `master.json` (0600) into `dir`; refuses to
    /// overwrite an existing community.
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        let master_path = dir.join(MASTER_FILE);
        if master_path.exists() {
            return Err(Error::Keystore(format!(
                "{} exists: refusing to replace a community",
                master_path.display()
            )));
        }
        let public = PublicJson {
            format: "cig-kms-community".into(),
            domain: self.domain.clone(),
            kpak: hex::encode(self.kpak.to_bytes()),
            z: hex::encode(self.zpub.as_bytes()),
        };
        let master = MasterJson {
            format: "cig-kms-master".into(),
            ksak: Zeroizing::new(hex::encode(Zeroizing::new(self.ksak.to_bytes()))),
            z_secret: Zeroizing::new(hex::encode(self.z.as_bytes())),
        };
        let m = Zeroizing::new(serde_json::to_vec_pretty(&master).expect("serialising"));
        keystore::write_atomic(&master_path, &m, 0o600)?;
        let p = serde_json::to_vec_pretty(&public).expect("serialising");
        keystore::write_atomic(&dir.join(COMMUNITY_FILE), &p, 0o644)
    }

    /// Loads a community from `dir` and checks that the secrets match the public keys.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let public: PublicJson =
            serde_json::from_slice(&keystore::read_capped(&dir.join(COMMUNITY_FILE))?)
                .map_err(|e| Error::Keystore(format!("{COMMUNITY_FILE}: {e}")))?;
        let master: MasterJson =
            serde_json::from_slice(&keystore::read_capped(&dir.join(MASTER_FILE))?)
                .map_err(|e| Error::Keystore(format!("{MASTER_FILE}: {e}")))?;
        let ksak = Ksak::from_bytes(&unhex(&master.ksak, "KSAK")?).map_err(bad("KSAK"))?;
        let z = MasterSecret::from_bytes(&unhex(&master.z_secret, "z")?).map_err(bad("z"))?;
        let kpak = Kpak::from_bytes(&unhex(&public.kpak, "KPAK")?).map_err(bad("KPAK"))?;
        let zpub = KmsPublicKey::from_bytes(&unhex(&public.z, "Z")?).map_err(bad("Z"))?;
        if ksak.public_key() != kpak {
            return Err(Error::Keystore("KSAK does not match KPAK".into()));
        }
        if sakke::kms_public_key(&z)? != zpub {
            return Err(Error::Keystore(
                "SAKKE master secret z does not match Z".into(),
            ));
        }
        Ok(Self {
            domain: public.domain,
            ksak,
            kpak,
            z,
            zpub,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn save_load_and_refuse_mismatched_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let c = Community::generate("example.org", &mut OsRng).unwrap();
        c.save(dir.path()).unwrap();
        assert!(c.save(dir.path()).is_err(), "never replaces a community");
        let back = Community::load(dir.path()).unwrap();
        assert_eq!((back.kpak, &back.zpub), (c.kpak, &c.zpub));
        assert!(Community::generate("bad domain", &mut OsRng).is_err());

        // Another community's public file next to these secrets: refused.
        let other = tempfile::tempdir().unwrap();
        Community::generate("example.org", &mut OsRng)
            .unwrap()
            .save(other.path())
            .unwrap();
        std::fs::copy(
            other.path().join(COMMUNITY_FILE),
            dir.path().join(COMMUNITY_FILE),
        )
        .unwrap();
        assert!(Community::load(dir.path()).is_err());
    }
}
