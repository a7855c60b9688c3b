//! `cig-kms switch-cert`: the CA is made once and reused, keys are 0600, the certificate names
//! the switch (DNS and IP SANs), refuses a name that is not a host name, and `export` puts the
//! CA PEM and the switch addresses into the key bundle by default.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use cig_mikey_sakke::bundle::{TransferCode, open};

fn kms(dir: &std::path::Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_cig-kms"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success() || args[0] == "switch-cert", "{out:?}");
    out
}

#[test]
fn ca_made_once_certs_issued_and_exported_into_the_bundle() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    kms(dir, &["init", "--domain", "example.org"]);
    let first = kms(
        dir,
        &["switch-cert", "--name", "crs.example", "--ip", "127.0.0.1"],
    );
    assert!(first.status.success(), "{first:?}");
    let sw = dir.join("switch");
    let ca = std::fs::read(sw.join("ca.pem")).unwrap();
    let second = kms(dir, &["switch-cert", "--name", "127.0.0.1"]);
    assert!(second.status.success(), "{second:?}");
    assert_eq!(
        std::fs::read(sw.join("ca.pem")).unwrap(),
        ca,
        "CA made once"
    );
    for key in ["ca.key", "crs.example.key", "127.0.0.1.key"] {
        let mode = std::fs::metadata(sw.join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains("cert=") && stdout.contains("crs.example.pem"),
        "{stdout}"
    );
    // Bad names never become file names.
    let bad = kms(dir, &["switch-cert", "--name", "../evil"]);
    assert!(!bad.status.success());
    assert!(!dir.join("evil.pem").exists());

    kms(dir, &["issue", "--identity", "tel:+100"]);
    let bundle = dir.join("b.bundle");
    let code_file = dir.join("code");
    kms(
        dir,
        &[
            "export",
            "--identity",
            "tel:+100",
            "--switch",
            "127.0.0.1:5223",
            "--switch",
            "127.0.0.1:5224",
            "--out",
            bundle.to_str().unwrap(),
            "--code-file",
            code_file.to_str().unwrap(),
        ],
    );
    let code = TransferCode::parse(std::fs::read_to_string(&code_file).unwrap().trim()).unwrap();
    let m = open(&std::fs::read(&bundle).unwrap(), &code).unwrap();
    assert_eq!(
        m.switch_ca_cert.as_deref().map(str::as_bytes),
        Some(&ca[..])
    );
    assert_eq!(m.switch_addresses, ["127.0.0.1:5223", "127.0.0.1:5224"]);
}
