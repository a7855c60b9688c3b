//! `cig-cli backup` and `restore` as processes: backup → wipe → restore gives back the same
//! files, modes (and owners when the test runs as root); damaged or foreign archives are
//! refused without touching the installation.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cig-cli"))
        .args(args)
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Path, mode, uid, gid, content.
type Snap = (String, u32, u32, u32, Option<Vec<u8>>);

/// Every entry under `root` (but not the root itself): relative path, mode, uid, gid and
/// content (files), sorted. Restore's `.cig-pre-restore-*` directories are left out.
fn snapshot(root: &Path) -> Vec<Snap> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<Snap>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_owned();
            if rel.starts_with(".cig-pre-restore-") {
                continue;
            }
            let m = fs::symlink_metadata(&p).unwrap();
            let data = m.is_file().then(|| fs::read(&p).unwrap());
            out.push((rel, m.mode() & 0o7777, m.uid(), m.gid(), data));
            if m.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// An installation: cig.conf, userdata/ with a keystore, a subdirectory, an empty file.
fn install(root: &Path) {
    let set =
        |p: &Path, mode: u32| fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    fs::write(root.join("cig.conf"), "interface sip { bind 127.0.0.1; }\n").unwrap();
    set(&root.join("cig.conf"), 0o640);
    let ud = root.join("userdata");
    fs::create_dir(&ud).unwrap();
    fs::write(ud.join(".ks.tel:+8888"), [0u8, 1, 2, 255].repeat(300)).unwrap();
    set(&ud.join(".ks.tel:+8888"), 0o600);
    fs::create_dir(ud.join("sub")).unwrap();
    fs::write(ud.join("sub/empty"), "").unwrap();
    set(&ud.join("sub/empty"), 0o444);
    set(&ud.join("sub"), 0o550);
    set(&ud, 0o700);
    if is_root() {
        // An owner this machine has no name for: restored by number.
        std::os::unix::fs::chown(ud.join(".ks.tel:+8888"), Some(4242), Some(4343)).unwrap();
    }
}

fn backup(root: &Path, out: &Path) {
    let o = cli(&["backup", "--root", s(root), "--out", s(out)]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        format!(
            "backup={}\nentries=5\nStore the archive on separate hardware or external media.\n",
            out.display()
        )
    );
    assert_eq!(
        fs::metadata(out).unwrap().mode() & 0o777,
        0o600,
        "archive is private"
    );
}

fn wipe(root: &Path) {
    // Make the read-only directory removable first.
    fs::set_permissions(root.join("userdata/sub"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::remove_dir_all(root.join("userdata")).unwrap();
    fs::remove_file(root.join("cig.conf")).unwrap();
}

/// A temporary directory with an installation and its backup. Dropping it first makes every
/// directory writable again, so that an unprivileged run can remove the read-only ones.
struct Fixture {
    dir: tempfile::TempDir,
    root: PathBuf,
    archive: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        fn unlock(dir: &Path) {
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
            for e in fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    unlock(&e.path());
                }
            }
        }
        unlock(self.dir.path());
    }
}

fn setup() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("opt-cig");
    fs::create_dir(&root).unwrap();
    install(&root);
    let archive = dir.path().join("backup.tar");
    backup(&root, &archive);
    Fixture { dir, root, archive }
}

#[test]
fn backup_wipe_restore_gives_back_files_modes_and_owners() {
    let f = setup();
    let (root, archive) = (&f.root, &f.archive);
    let before = snapshot(root);
    if is_root() {
        assert!(
            before
                .iter()
                .any(|e| e.0 == "userdata/.ks.tel:+8888" && e.2 == 4242 && e.3 == 4343)
        );
    }
    wipe(root);
    assert!(snapshot(root).is_empty());
    let o = cli(&["restore", s(archive), "--root", s(root)]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        format!(
            "restored=5\nroot={}\nRestart the services to use the restored configuration and keys:\n  systemctl restart cig-relay\n  systemctl restart cig-server\n",
            root.display()
        )
    );
    assert_eq!(snapshot(root), before);
}

#[test]
fn restore_over_an_installation_keeps_the_old_one_aside() {
    let f = setup();
    let (root, archive) = (&f.root, &f.archive);
    let before = snapshot(root);
    fs::write(root.join("cig.conf"), "changed\n").unwrap();
    let o = cli(&["restore", s(archive), "--root", s(root)]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8(o.stdout).unwrap();
    let previous = out
        .lines()
        .find_map(|l| l.strip_prefix("previous="))
        .expect("previous= line");
    assert_eq!(
        fs::read_to_string(Path::new(previous).join("cig.conf")).unwrap(),
        "changed\n"
    );
    assert_eq!(snapshot(root), before);
}

/// Restore must refuse `archive`, say why, and leave `root` exactly as it was.
fn refused(root: &Path, archive: &Path, why: &str) {
    let before = snapshot(root);
    let names_before: Vec<_> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let o = cli(&["restore", s(archive), "--root", s(root)]);
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.starts_with("cig-cli restore: "), "{err}");
    assert!(err.contains(why), "{why:?} in {err}");
    assert!(err.ends_with("; nothing restored\n"), "{err}");
    assert!(o.stdout.is_empty());
    assert_eq!(snapshot(root), before);
    let names_after: Vec<_> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names_before, names_after, "nothing created in the root");
}

#[test]
fn a_damaged_archive_is_refused_and_nothing_touched() {
    let f = setup();
    let (dir, root, archive) = (&f.dir, &f.root, &f.archive);
    let good = fs::read(archive).unwrap();
    let bad = dir.path().join("bad.tar");

    // One flipped bit in the keystore's content.
    let mut flipped = good.clone();
    let at = flipped
        .windows(4)
        .position(|w| w == [0, 1, 2, 255])
        .unwrap();
    flipped[at + 1] ^= 1;
    fs::write(&bad, &flipped).unwrap();
    refused(root, &bad, "userdata/.ks.tel:+8888: checksum mismatch");

    // Cut short.
    fs::write(&bad, &good[..good.len() / 2]).unwrap();
    refused(
        root,
        &bad,
        "damaged or not a cig backup: archive: failed to read entire block",
    );

    // A damaged tar header (its checksum no longer matches): cig.conf's mode field.
    let mut header = good.clone();
    let at = (0..header.len())
        .step_by(512)
        .find(|&i| header[i..].starts_with(b"cig.conf\0"))
        .unwrap();
    header[at + 100] ^= 0x01;
    fs::write(&bad, &header).unwrap();
    refused(root, &bad, "archive header checksum mismatch");

    // Not a tar at all.
    fs::write(&bad, b"hello").unwrap();
    refused(root, &bad, "damaged or not a cig backup: first entry");

    // Missing file.
    refused(
        root,
        &dir.path().join("absent.tar"),
        "absent.tar: No such file or directory",
    );
}

/// Rebuilds the archive with `edit` applied to the manifest text and `extra` entries added.
fn forged(archive: &Path, out: &Path, edit: impl Fn(String) -> String, extra: &[(&str, &[u8])]) {
    let mut a = tar::Archive::new(fs::File::open(archive).unwrap());
    let mut b = tar::Builder::new(fs::File::create(out).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let mut h = e.header().clone();
        let path = e.path().unwrap().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if path == Path::new("MANIFEST.json") {
            data = edit(String::from_utf8(data).unwrap()).into_bytes();
        }
        h.set_size(data.len() as u64);
        b.append_data(&mut h, &path, data.as_slice()).unwrap();
    }
    for (name, data) in extra {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.finish().unwrap();
}

#[test]
fn archives_that_disagree_with_their_manifest_are_refused() {
    let f = setup();
    let (dir, root, archive) = (&f.dir, &f.root, &f.archive);
    let bad = dir.path().join("forged.tar");

    forged(archive, &bad, |m| m, &[("userdata/planted", b"x")]);
    refused(
        root,
        &bad,
        "userdata/planted: in the archive but not in the manifest",
    );

    // Listed in the manifest, with a path outside the two items.
    forged(
        archive,
        &bad,
        |m| {
            m.replace(
                "\"path\": \"userdata/sub/empty\"",
                "\"path\": \"../../etc/cron.d/x\"",
            )
        },
        &[],
    );
    refused(root, &bad, "outside cig.conf and userdata/");

    forged(archive, &bad, |m| m.replace("\"0600\"", "\"9999\""), &[]);
    refused(root, &bad, "bad mode");

    forged(
        archive,
        &bad,
        |m| m.replace("\"cig-backup\"", "\"other\""),
        &[],
    );
    refused(root, &bad, "not cig-backup version 1");

    // A manifest entry with no archive entry.
    forged(
        archive,
        &bad,
        |m| {
            m.replace(
                "\"entries\": [",
                r#""entries": [{"path":"userdata/ghost","kind":"dir","mode":"0700","uid":0,"gid":0,"mtime":0},"#,
            )
        },
        &[],
    );
    refused(
        root,
        &bad,
        "userdata/ghost: in the manifest but not in the archive",
    );
}

#[test]
fn backup_needs_both_items() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("cig.conf"), "").unwrap();
    let out = dir.path().join("b.tar");
    let o = cli(&["backup", "--root", s(dir.path()), "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("userdata does not exist; nothing backed up"),
        "{err}"
    );
    assert!(!out.exists());
}
