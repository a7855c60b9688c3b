//! `cig-cli create-maildir` as a process: the mailbox layout and modes, and a clear failure.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn creates_new_cur_tmp_with_setgid_group_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("a/b/inbox");
    let out = Command::new(env!("CARGO_BIN_EXE_cig-cli"))
        .arg("create-maildir")
        .arg(&mbox)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("maildir={}\n", mbox.display())
    );
    for d in ["", "new", "cur", "tmp"] {
        let mode = fs::metadata(mbox.join(d)).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o2770, "{d}");
    }
}

#[test]
fn a_path_below_a_file_fails_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cig-cli"))
        .arg("create-maildir")
        .arg(file.join("inbox"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("cig-cli create-maildir: "), "{err}");
    assert!(out.stdout.is_empty());
}
