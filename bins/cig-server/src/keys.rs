//! The gateway's keys: the manual's older key path (`userdata/cig.raw` + `cig.raw.code`
//! imported at start) and loading the keystore.

use std::path::Path;

use cig_mikey_sakke::bundle::{self, TransferCode};
use cig_mikey_sakke::keystore::{self, KeyMaterial};
use zeroize::Zeroizing;

/// What happened to a dropped key bundle.
#[derive(Debug)]
pub enum Import {
    /// No `cig.raw` in userdata.
    Nothing,
    /// Imported into this keystore file; both files removed.
    Imported(String),
    /// Refused: why; the files are left in place.
    Refused(String),
}

/// Imports `userdata/cig.raw` with the transfer code in `userdata/cig.raw.code`: validated,
/// written as the identity's keystore (keeping still-valid periods of an existing one), then
/// both files removed. A bad bundle is refused and left in place.
pub fn import_raw(userdata: &Path) -> Import {
    let raw = userdata.join("cig.raw");
    let code_path = userdata.join("cig.raw.code");
    if !raw.exists() {
        return Import::Nothing;
    }
    let result = (|| -> Result<String, String> {
        let sealed = keystore::read_capped(&raw).map_err(|e| e.to_string())?;
        let code_bytes = keystore::read_capped(&code_path)
            .map_err(|e| format!("transfer code {}: {e}", code_path.display()))?;
        let text = Zeroizing::new(
            String::from_utf8(code_bytes.to_vec())
                .map_err(|_| format!("{}: not text", code_path.display()))?,
        );
        let code = TransferCode::parse(&text).map_err(|e| e.to_string())?;
        let mut material = bundle::open(&sealed, &code).map_err(|e| e.to_string())?;
        let path =
            keystore::keystore_path(userdata, &material.identity).map_err(|e| e.to_string())?;
        if let Ok(old) = keystore::load(&path) {
            material.keep_valid_periods(&old);
        }
        let written = keystore::save(userdata, &material).map_err(|e| e.to_string())?;
        Ok(format!("{} ({})", written.display(), material.identity))
    })();
    match result {
        Ok(written) => {
            let _ = std::fs::remove_file(&raw);
            let _ = std::fs::remove_file(&code_path);
            Import::Imported(written)
        }
        Err(e) => Import::Refused(e),
    }
}

/// Loads the keystore of `identity` from `userdata`, or the only keystore there.
pub fn load(userdata: &Path, identity: Option<&str>) -> Result<KeyMaterial, String> {
    let path = match identity {
        Some(id) => keystore::keystore_path(userdata, id).map_err(|e| e.to_string())?,
        None => {
            let all = keystore::list(userdata).map_err(|e| e.to_string())?;
            match all.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(format!(
                        "no keystore in {} (install one with `cig-cli set-key`, or drop cig.raw and cig.raw.code there)",
                        userdata.display()
                    ));
                }
                _ => {
                    return Err(format!(
                        "several keystores in {}: choose one with --identity",
                        userdata.display()
                    ));
                }
            }
        }
    };
    keystore::load(&path).map_err(|e| format!("{}: {e}", path.display()))
}
