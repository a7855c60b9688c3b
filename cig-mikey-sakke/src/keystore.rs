//! A user's key material (identity, domain, community public keys, monthly key periods with
//! SSK/PVT/RSK, switch addresses and CA certificate) and its keystore file
//! `userdata/.ks.<identity>`: written atomically (temporary file, fsync, rename) with mode
//! 0600, and validated key by key (RFC 6507 §5.1.2, RFC 6508 §6.1.2) whenever it is loaded.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::Error;
use crate::eccsi::{self, Kpak, Pvt, SigningKey, Ssk};
use crate::mikey::profile::{KeyPeriod, split_rfc6509_identifier};
use crate::mikey::receive::KeyLookup;
use crate::sakke::{self, KmsPublicKey, Rsk};

/// Longest keystore or bundle file read (bytes).
pub const MAX_FILE_LEN: u64 = 1 << 20;
/// Most key periods one keystore holds.
pub const MAX_PERIODS: usize = 64;
/// File name prefix of a keystore in the userdata directory.
pub const KEYSTORE_PREFIX: &str = ".ks.";

/// The keys of one monthly period.
#[derive(Clone)]
pub struct PeriodKeys {
    /// The period.
    pub period: KeyPeriod,
    /// ECCSI secret signing key.
    pub ssk: Ssk,
    /// ECCSI public validation token.
    pub pvt: Pvt,
    /// SAKKE receiver secret key.
    pub rsk: Rsk,
    /// The signing key validated from these keys by [`KeyMaterial::signing_key`], kept: the
    /// validation (two P-256 scalar multiplications, ~0.6 ms) would otherwise run for every
    /// signature.
    signer: OnceLock<SigningKey>,
}

impl PeriodKeys {
    /// The keys of `period`.
    pub fn new(period: KeyPeriod, ssk: Ssk, pvt: Pvt, rsk: Rsk) -> Self {
        Self {
            period,
            ssk,
            pvt,
            rsk,
            signer: OnceLock::new(),
        }
    }
}

impl core::fmt::Debug for PeriodKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PeriodKeys")
            .field("period", &self.period.to_string())
            .field("ssk", &self.ssk)
            .field("pvt", &self.pvt)
            .field("rsk", &self.rsk)
            .finish()
    }
}

/// Everything a device needs for one identity.
#[derive(Debug, Clone)]
pub struct KeyMaterial {
    /// The identity, a tel URI such as `tel:+8888`.
    pub identity: String,
    /// Security domain name.
    pub domain: String,
    /// ECCSI KMS public authentication key.
    pub kpak: Kpak,
    /// SAKKE KMS public key Z.
    pub zpub: KmsPublicKey,
    /// Key periods, oldest first.
    pub periods: Vec<PeriodKeys>,
    /// Addresses of the switch (host:port).
    pub switch_addresses: Vec<String>,
    /// PEM of the switch's CA certificate, if given.
    pub switch_ca_cert: Option<String>,
}

/// Checks that `identity` is a tel URI `tel:+<1–15 digits>` (it names a file, so nothing else).
pub fn check_identity(identity: &str) -> Result<(), Error> {
    let digits = identity
        .strip_prefix("tel:+")
        .ok_or_else(|| Error::Keystore(format!("identity {identity:?} is not tel:+<digits>")))?;
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Keystore(format!(
            "identity {identity:?} is not tel:+<digits>"
        )));
    }
    Ok(())
}

/// The JSON form (hex for keys); secret strings are zeroized when dropped.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MaterialJson {
    format: String,
    version: u32,
    identity: String,
    domain: String,
    kpak: String,
    z: String,
    periods: Vec<PeriodJson>,
    #[serde(default)]
    switch_addresses: Vec<String>,
    #[serde(default)]
    switch_ca_cert: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodJson {
    period: String,
    ssk: Zeroizing<String>,
    pvt: String,
    rsk: Zeroizing<String>,
}

const FORMAT: &str = "cig-key-material";

fn unhex(s: &str, what: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    hex::decode(s)
        .map(Zeroizing::new)
        .map_err(|_| Error::Keystore(format!("{what} is not hex")))
}

impl KeyMaterial {
    /// The RFC 6509 identifier of this identity for `period`.
    pub fn identifier(&self, period: KeyPeriod) -> Vec<u8> {
        period.identifier(&self.identity)
    }

    /// Validates every key: SSK against KPAK and PVT (RFC 6507 §5.1.2) and RSK against Z
    /// (RFC 6508 §6.1.2) for each period's identifier; also the identity and period list.
    pub fn validate(&self) -> Result<(), Error> {
        check_identity(&self.identity)?;
        if self.periods.is_empty() || self.periods.len() > MAX_PERIODS {
            return Err(Error::Keystore("no key periods (or too many)".into()));
        }
        for (i, p) in self.periods.iter().enumerate() {
            if self.periods[..i].iter().any(|q| q.period == p.period) {
                return Err(Error::Keystore(format!("period {} twice", p.period)));
            }
            self.validate_period(p)?;
        }
        Ok(())
    }

    fn validate_period(&self, p: &PeriodKeys) -> Result<(), Error> {
        let id = self.identifier(p.period);
        // The validated signing key is kept for `signing_key`, which would validate it again.
        let signer = SigningKey::new(&self.kpak, &id, p.ssk.clone(), p.pvt).map_err(|_| {
            Error::Keystore(format!(
                "SSK of {} for {} does not validate (RFC 6507 §5.1.2)",
                p.period, self.identity
            ))
        })?;
        let _ = p.signer.set(signer);
        sakke::validate_rsk(&self.zpub, &id, &p.rsk).map_err(|_| {
            Error::Keystore(format!(
                "RSK of {} for {} does not validate (RFC 6508 §6.1.2)",
                p.period, self.identity
            ))
        })
    }

    /// Adds the periods of `old` that this material lacks and that validate under this
    /// material's community keys; returns the periods kept.
    pub fn keep_valid_periods(&mut self, old: &KeyMaterial) -> Vec<KeyPeriod> {
        if old.identity != self.identity {
            return Vec::new();
        }
        let mut kept = Vec::new();
        for p in &old.periods {
            if self.periods.len() >= MAX_PERIODS
                || self.periods.iter().any(|q| q.period == p.period)
            {
                continue;
            }
            if self.validate_period(p).is_ok() {
                kept.push(p.period);
                self.periods.push(p.clone());
            }
        }
        self.periods.sort_by_key(|p| p.period);
        kept
    }

    /// Builds the tables this material uses on first use — the encapsulation tables of
    /// [`KmsPublicKey::prepare`](crate::sakke::KmsPublicKey::prepare), each period's RSK
    /// pairing lines and its identifier's `[b]P + Z` table (about 0.1 s of CPU and a few MiB
    /// each), and ECCSI's signing table — now, e.g. at start-up rather than in the first calls.
    /// Clones made before or after share them.
    pub fn prepare(&self) {
        eccsi::prepare_signing();
        self.zpub.prepare();
        for p in &self.periods {
            p.rsk.prepare_for(&self.zpub, &self.identifier(p.period));
        }
    }

    /// The keys of `period`.
    pub fn period(&self, period: KeyPeriod) -> Option<&PeriodKeys> {
        self.periods.iter().find(|p| p.period == period)
    }

    /// A signing key for `period`, validated (RFC 6507 §5.1.2) the first time and kept with
    /// the period's keys; a kept key is used only while it still matches the KPAK, identifier,
    /// SSK and PVT (the fields are public and may have been changed since).
    pub fn signing_key(&self, period: KeyPeriod) -> Result<SigningKey, Error> {
        let p = self
            .period(period)
            .ok_or_else(|| Error::NoKey(format!("{} {period}", self.identity)))?;
        let id = self.identifier(period);
        if let Some(kept) = p.signer.get()
            && kept.is_for(&self.kpak, &id, &p.ssk, &p.pvt)
        {
            return Ok(kept.clone());
        }
        let signer = SigningKey::new(&self.kpak, &id, p.ssk.clone(), p.pvt)?;
        // A key that no longer matches stays; the fresh one is simply not kept.
        let _ = p.signer.set(signer.clone());
        Ok(signer)
    }

    /// The JSON encoding (secret: zeroized when dropped).
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        let j = MaterialJson {
            format: FORMAT.into(),
            version: 1,
            identity: self.identity.clone(),
            domain: self.domain.clone(),
            kpak: hex::encode(self.kpak.to_bytes()),
            z: hex::encode(self.zpub.as_bytes()),
            periods: self
                .periods
                .iter()
                .map(|p| PeriodJson {
                    period: p.period.to_string(),
                    ssk: Zeroizing::new(hex::encode(Zeroizing::new(p.ssk.to_bytes()))),
                    pvt: hex::encode(p.pvt.to_bytes()),
                    rsk: Zeroizing::new(hex::encode(p.rsk.as_bytes())),
                })
                .collect(),
            switch_addresses: self.switch_addresses.clone(),
            switch_ca_cert: self.switch_ca_cert.clone(),
        };
        // Sized up front so serialising never reallocates (a reallocation would leave an
        // unzeroized copy of the secrets behind): ~1.3 KiB per period plus the rest.
        let cap = 4096
            + 1536 * self.periods.len()
            + self.switch_ca_cert.as_ref().map_or(0, |c| 2 * c.len())
            + self
                .switch_addresses
                .iter()
                .map(|a| 2 * a.len() + 8)
                .sum::<usize>();
        let mut out = Zeroizing::new(Vec::with_capacity(cap));
        // Writing plain structs of strings into a Vec cannot fail.
        serde_json::to_writer_pretty(&mut *out, &j).expect("serialising key material");
        out.push(b'\n');
        out
    }

    /// Decodes the JSON encoding. Does not validate the keys: call [`KeyMaterial::validate`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let j: MaterialJson = serde_json::from_slice(bytes)
            .map_err(|e| Error::Keystore(format!("malformed key material: {e}")))?;
        if j.format != FORMAT || j.version != 1 {
            return Err(Error::Keystore("not CIG key material version 1".into()));
        }
        if j.periods.len() > MAX_PERIODS {
            return Err(Error::Keystore("too many key periods".into()));
        }
        let bad = |what: &str, e: Error| Error::Keystore(format!("{what}: {e}"));
        let mut periods = Vec::with_capacity(j.periods.len());
        for p in &j.periods {
            let period = KeyPeriod::parse(&p.period).map_err(|e| bad("period", e))?;
            periods.push(PeriodKeys::new(
                period,
                Ssk::from_bytes(&unhex(&p.ssk, "SSK")?).map_err(|e| bad("SSK", e))?,
                Pvt::from_bytes(&unhex(&p.pvt, "PVT")?).map_err(|e| bad("PVT", e))?,
                Rsk::from_bytes(&unhex(&p.rsk, "RSK")?).map_err(|e| bad("RSK", e))?,
            ));
        }
        periods.sort_by_key(|p| p.period);
        Ok(Self {
            identity: j.identity,
            domain: j.domain,
            kpak: Kpak::from_bytes(&unhex(&j.kpak, "KPAK")?).map_err(|e| bad("KPAK", e))?,
            zpub: KmsPublicKey::from_bytes(&unhex(&j.z, "Z")?).map_err(|e| bad("Z", e))?,
            periods,
            switch_addresses: j.switch_addresses,
            switch_ca_cert: j.switch_ca_cert,
        })
    }
}

impl KeyLookup for KeyMaterial {
    fn kpak(&self) -> &Kpak {
        &self.kpak
    }
    fn zpub(&self) -> &KmsPublicKey {
        &self.zpub
    }
    fn rsk(&self, receiver_id: &[u8]) -> Option<&Rsk> {
        let (period, uri) = split_rfc6509_identifier(receiver_id).ok()?;
        if uri != self.identity {
            return None;
        }
        self.period(period).map(|p| &p.rsk)
    }
}

/// Reads a whole file of at most [`MAX_FILE_LEN`] bytes.
pub fn read_capped(path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    let io = |e: std::io::Error| Error::Keystore(format!("{}: {e}", path.display()));
    let f = fs::File::open(path).map_err(io)?;
    let mut buf = Zeroizing::new(Vec::new());
    std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_FILE_LEN + 1), &mut buf)
        .map_err(io)?;
    if buf.len() as u64 > MAX_FILE_LEN {
        return Err(Error::Keystore(format!(
            "{}: file too large",
            path.display()
        )));
    }
    Ok(buf)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory created with
/// `mode`, written and fsynced, renamed over `path`, then the directory fsynced.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e: std::io::Error| Error::Keystore(format!("{}: {e}", path.display()));
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::Keystore(format!("{}: not a file path", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".tmp.");
    tmp_name.push(name);
    tmp_name.push(format!(".{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// The keystore path of `identity` in `userdata`: `userdata/.ks.<identity>`.
pub fn keystore_path(userdata: &Path, identity: &str) -> Result<PathBuf, Error> {
    check_identity(identity)?;
    Ok(userdata.join(format!("{KEYSTORE_PREFIX}{identity}")))
}

/// Loads and validates the keystore at `path`; refuses a file readable by others, malformed
/// content, or any key that does not validate.
pub fn load(path: &Path) -> Result<KeyMaterial, Error> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        fs::metadata(path).map_err(|e| Error::Keystore(format!("{}: {e}", path.display())))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::Keystore(format!(
            "{}: mode {:o} lets others read keys; expected 0600",
            path.display(),
            meta.permissions().mode() & 0o777
        )));
    }
    let bytes = read_capped(path)?;
    let m = KeyMaterial::from_json(&bytes)
        .map_err(|e| Error::Keystore(format!("{}: {e}", path.display())))?;
    m.validate()
        .map_err(|e| Error::Keystore(format!("{}: {e}", path.display())))?;
    Ok(m)
}

/// Validates `material` and writes it to `userdata/.ks.<identity>` (mode 0600, atomically).
pub fn save(userdata: &Path, material: &KeyMaterial) -> Result<PathBuf, Error> {
    material.validate()?;
    let path = keystore_path(userdata, &material.identity)?;
    write_atomic(&path, &material.to_json(), 0o600)?;
    Ok(path)
}

/// The keystore files in `userdata`, sorted.
pub fn list(userdata: &Path) -> Result<Vec<PathBuf>, Error> {
    let rd = fs::read_dir(userdata)
        .map_err(|e| Error::Keystore(format!("{}: {e}", userdata.display())))?;
    let mut out: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(KEYSTORE_PREFIX))
        .map(|e| e.path())
        .collect();
    out.sort();
    Ok(out)
}
