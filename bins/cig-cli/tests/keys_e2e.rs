//! End to end through the binaries: `cig-kms init → issue → export`, then `cig-cli set-key`
//! and `cig-cli keys`, including refusals (wrong code, damaged bundle, bad keystore) and
//! keeping other valid periods.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// 2026-11-26T12:00:00Z and a day in the next month.
const NOV: u64 = 1_795_694_400;
const DEC: u64 = NOV + 30 * 86_400;

fn cig_cli() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cig-cli"))
}

/// The `cig-kms` binary next to `cig-cli` in the same target directory, built if missing.
fn cig_kms() -> PathBuf {
    let dir = cig_cli().parent().unwrap().to_path_buf();
    let kms = dir.join("cig-kms");
    if !kms.exists() {
        let mut c = Command::new(env!("CARGO"));
        c.args(["build", "-p", "cig-kms"]);
        if dir.ends_with("release") {
            c.arg("--release");
        }
        assert!(c.status().unwrap().success(), "building cig-kms");
    }
    kms
}

fn run(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin).args(args).output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn export(kms: &Path, dir: &Path, bundle: &Path, code: &Path) -> String {
    ok(run(
        kms,
        &[
            "export",
            "--dir",
            s(dir),
            "--identity",
            "tel:+8888",
            "--out",
            s(bundle),
            "--switch",
            "192.0.2.10:5061",
            "--code-file",
            s(code),
        ],
    ))
}

#[test]
fn kms_to_keystore_end_to_end() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let (dir, userdata) = (t.path().join("kms"), t.path().join("userdata"));
    std::fs::create_dir(&userdata).unwrap();
    let kms = cig_kms();
    let cli = cig_cli();

    let out = ok(run(
        &kms,
        &["init", "--dir", s(&dir), "--domain", "example.org"],
    ));
    assert!(out.contains("domain=example.org"));
    let mode = std::fs::metadata(dir.join("master.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // A second init does not replace the community.
    assert!(
        !run(&kms, &["init", "--dir", s(&dir), "--domain", "x"])
            .status
            .success()
    );

    let nov = NOV.to_string();
    let out = ok(run(
        &kms,
        &[
            "issue",
            "--dir",
            s(&dir),
            "--identity",
            "tel:+8888",
            "--at-unix",
            &nov,
        ],
    ));
    assert!(out.contains("period=2026-11\nperiod=2026-12\n"), "{out}");
    let (bundle, code) = (t.path().join("b.json"), t.path().join("code"));
    let out = export(&kms, &dir, &bundle, &code);
    assert!(
        !out.contains("transfer-code="),
        "code goes to the file only"
    );

    // Wrong transfer code: refused, nothing installed.
    let wrong = t.path().join("wrong");
    std::fs::write(&wrong, "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA\n").unwrap();
    let out = run(
        &cli,
        &[
            "set-key",
            "--bundle",
            s(&bundle),
            "--code-file",
            s(&wrong),
            "--userdata",
            s(&userdata),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not decrypt"));
    assert!(std::fs::read_dir(&userdata).unwrap().next().is_none());

    // A damaged bundle: refused.
    let mut damaged = std::fs::read_to_string(&bundle).unwrap();
    let at = damaged.find("\"ciphertext\": \"").unwrap() + 20;
    let c = if &damaged[at..=at] == "A" { "B" } else { "A" };
    damaged.replace_range(at..=at, c);
    let bad = t.path().join("bad.json");
    std::fs::write(&bad, damaged).unwrap();
    let out = run(
        &cli,
        &[
            "set-key",
            "--bundle",
            s(&bad),
            "--code-file",
            s(&code),
            "--userdata",
            s(&userdata),
        ],
    );
    assert!(!out.status.success());

    // The bundle path asked on stdin, the code from a file.
    let mut child = Command::new(&cli)
        .args([
            "set-key",
            "--code-file",
            s(&code),
            "--userdata",
            s(&userdata),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{}", s(&bundle)).unwrap();
    let out = ok(child.wait_with_output().unwrap());
    assert!(
        out.contains("identity=tel:+8888\ndomain=example.org\nperiod=2026-11\nperiod=2026-12\n"),
        "{out}"
    );
    assert!(out.contains("switch=192.0.2.10:5061"));
    let ks = userdata.join(".ks.tel:+8888");
    assert_eq!(
        std::fs::metadata(&ks).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // keys: both months present in November; in December the next month is missing.
    let out = ok(run(
        &cli,
        &["keys", "--userdata", s(&userdata), "--at-unix", &nov],
    ));
    assert!(
        out.contains("period=2026-11 (current)") && out.contains("period=2026-12 (next)"),
        "{out}"
    );
    assert!(!out.contains("warning"));
    let dec = DEC.to_string();
    let out = ok(run(
        &cli,
        &["keys", "--userdata", s(&userdata), "--at-unix", &dec],
    ));
    assert!(
        out.contains("warning: tel:+8888 has no keys for next month 2027-01"),
        "{out}"
    );

    // December keys (2026-12, 2027-01) installed over it keep 2026-11.
    ok(run(
        &kms,
        &[
            "issue",
            "--dir",
            s(&dir),
            "--identity",
            "tel:+8888",
            "--at-unix",
            &dec,
        ],
    ));
    export(&kms, &dir, &bundle, &code);
    let out = ok(run(
        &cli,
        &[
            "set-key",
            "--bundle",
            s(&bundle),
            "--code-file",
            s(&code),
            "--userdata",
            s(&userdata),
        ],
    ));
    assert!(
        out.contains("period=2026-11\nperiod=2026-12\nperiod=2027-01\n"),
        "{out}"
    );

    // A keystore with a damaged key is refused clearly.
    let text = std::fs::read_to_string(&ks).unwrap();
    let at = text.find("\"ssk\": \"").unwrap() + 8;
    let c = if &text[at..=at] == "1" { "2" } else { "1" };
    let mut broken = text.clone();
    broken.replace_range(at..=at, c);
    std::fs::write(&ks, broken).unwrap();
    let out = run(
        &cli,
        &["keys", "--userdata", s(&userdata), "--at-unix", &nov],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not validate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
