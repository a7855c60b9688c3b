//! The manual's `/opt/cig/bin/create_cig_maildir PATH` (scripts/create_cig_maildir): run as a
//! shell script against the built `cig-cli`, it makes a mailbox the way `cig-cli
//! create-maildir` does (new/ cur/ tmp/, mode 2770, group cigmail when it exists), twice
//! without harm, and refuses a relative path or a missing argument.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/create_cig_maildir")
}

fn run(args: &[&str]) -> Output {
    Command::new("sh")
        .arg(script())
        .args(args)
        .env("CIG_CLI", cig_testkit::bin("cig-cli"))
        .output()
        .expect("sh")
}

#[test]
fn creates_the_mailbox_like_cig_cli_and_refuses_bad_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    let mb = tmp.path().join("mail/outbox");
    let mb_s = mb.to_str().unwrap();
    for _ in 0..2 {
        let out = run(&[mb_s]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("maildir={mb_s}")
        );
    }
    let group = nix::unistd::Group::from_name(cig_msg::maildir::MAIL_GROUP)
        .ok()
        .flatten();
    for d in [mb.clone(), mb.join("new"), mb.join("cur"), mb.join("tmp")] {
        let md = std::fs::metadata(&d).unwrap();
        assert!(md.is_dir(), "{}", d.display());
        assert_eq!(md.mode() & 0o7777, 0o2770, "{}", d.display());
        if let Some(g) = &group {
            assert_eq!(md.gid(), g.gid.as_raw(), "{}", d.display());
        }
    }
    // The manual asks for an absolute path; no argument or two are usage errors.
    for bad in [&["relative/box"][..], &[], &[mb_s, mb_s]] {
        let out = run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
    }
    assert!(!Path::new("relative/box").exists());
}
