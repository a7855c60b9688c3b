//! The start-up checks of the manual's Pre-requisites, run before the gateway opens a file or
//! a port: a supported CPU (64-bit x86 or arm64; anything else is refused), RdRand on x86
//! (warned about when missing: the random source is the operating system's CSPRNG either way),
//! a valid cig.conf, and a keystore (or a dropped `cig.raw`) in userdata.

use std::path::Path;

use cig_core::conf::{self, Config};
use cig_mikey_sakke::keystore;

/// What passed the checks: the configuration and the warnings for cig.log.
#[derive(Debug)]
pub struct Checked {
    /// The loaded cig.conf.
    pub config: Config,
    /// Platform warnings (already printed on stderr), for cig.log.
    pub warnings: Vec<String>,
}

/// Runs every check. Warnings (the platform's and cig.conf's) are printed on stderr; the error
/// is the message to print before exiting.
pub fn check(config: &Path, userdata: &Path, identity: Option<&str>) -> Result<Checked, String> {
    let warnings = platform(std::env::consts::ARCH, rdrand())?;
    for w in &warnings {
        eprintln!("cig-server: warning: {w}");
    }
    let loaded = conf::load(config).map_err(|diags| diags.to_string())?;
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    keys_present(userdata, identity)?;
    Ok(Checked {
        config: loaded.config,
        warnings,
    })
}

/// Whether the CPU has RdRand: `None` where the question does not apply (not x86).
fn rdrand() -> Option<bool> {
    #[cfg(target_arch = "x86_64")]
    {
        Some(std::is_x86_feature_detected!("rdrand"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// The platform rule: `arch` as in [`std::env::consts::ARCH`], `rdrand` as [`rdrand`] gives.
/// Refuses anything but x86_64 and aarch64; warns on x86_64 without RdRand.
fn platform(arch: &str, rdrand: Option<bool>) -> Result<Vec<String>, String> {
    match arch {
        "x86_64" | "aarch64" => {}
        other => {
            return Err(format!(
                "cig-server: unsupported architecture {other}: CIG runs on 64-bit x86 (x86_64) \
                 or arm64 (aarch64) only"
            ));
        }
    }
    let mut warnings = Vec::new();
    if rdrand == Some(false) {
        warnings.push(
            "this CPU has no RdRand instruction, which the manual's Pre-requisites ask for; \
             CIG takes its random numbers from the operating system's CSPRNG (getrandom) \
             either way"
                .to_owned(),
        );
    }
    Ok(warnings)
}

/// A keystore for `identity` (or any keystore), or a `cig.raw` to import, is in `userdata`.
fn keys_present(userdata: &Path, identity: Option<&str>) -> Result<(), String> {
    let set_key = |what: String| {
        format!(
            "cig-server: {what}: run `cig-cli set-key` to install the gateway's keys (or drop \
             cig.raw and cig.raw.code into {})",
            userdata.display()
        )
    };
    if userdata.join("cig.raw").exists() {
        return Ok(());
    }
    let all = keystore::list(userdata).map_err(|e| set_key(format!("no keystore: {e}")))?;
    let path = match identity {
        Some(id) => Some(keystore::keystore_path(userdata, id).map_err(|e| e.to_string())?),
        None => all.first().cloned(),
    };
    let Some(path) = path.filter(|p| all.contains(p)) else {
        let whose = identity.map_or_else(String::new, |id| format!(" for {id}"));
        return Err(set_key(format!(
            "no keystore{whose} in {}",
            userdata.display()
        )));
    };
    // A keystore written by root (`cig-cli set-key` run as root) is unreadable for ciguser.
    match std::fs::File::open(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(format!(
            "cig-server: cannot read the keystore {}: {e}; it must belong to the user \
             cig-server runs as (chown ciguser:ciguser {})",
            path.display(),
            path.display()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_64_bit_x86_and_arm64_are_accepted() {
        assert_eq!(platform("x86_64", Some(true)), Ok(vec![]));
        assert_eq!(platform("aarch64", None), Ok(vec![]));
        for arch in ["x86", "arm", "riscv64", "powerpc64", "s390x"] {
            let e = platform(arch, None).unwrap_err();
            assert!(
                e.contains(&format!("unsupported architecture {arch}")),
                "{e}"
            );
            assert!(e.contains("x86_64") && e.contains("aarch64"), "{e}");
        }
    }

    #[test]
    fn missing_rdrand_is_a_warning_not_a_refusal() {
        let w = platform("x86_64", Some(false)).unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("no RdRand"), "{}", w[0]);
        assert!(w[0].contains("CSPRNG"), "{}", w[0]);
    }

    #[test]
    fn rdrand_detection_agrees_with_proc_cpuinfo() {
        let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") else {
            return;
        };
        let listed = cpuinfo
            .lines()
            .filter(|l| l.starts_with("flags"))
            .any(|l| l.split_whitespace().any(|f| f == "rdrand"));
        match rdrand() {
            Some(detected) => assert_eq!(detected, listed),
            None => assert!(!listed, "rdrand listed but not an x86 build"),
        }
    }

    #[test]
    fn keystore_or_cig_raw_is_required() {
        let dir = tempfile::tempdir().unwrap();
        let ud = dir.path();
        let e = keys_present(ud, None).unwrap_err();
        assert!(e.contains("no keystore in"), "{e}");
        assert!(e.contains("run `cig-cli set-key`"), "{e}");
        let e = keys_present(&ud.join("absent"), None).unwrap_err();
        assert!(e.contains("run `cig-cli set-key`"), "{e}");

        std::fs::write(ud.join(".ks.tel:+8888"), "{}").unwrap();
        assert_eq!(keys_present(ud, None), Ok(()));
        assert_eq!(keys_present(ud, Some("tel:+8888")), Ok(()));
        let e = keys_present(ud, Some("tel:+9999")).unwrap_err();
        assert!(e.contains("no keystore for tel:+9999"), "{e}");

        std::fs::remove_file(ud.join(".ks.tel:+8888")).unwrap();
        std::fs::write(ud.join("cig.raw"), "sealed").unwrap();
        assert_eq!(keys_present(ud, None), Ok(()));
    }
}
