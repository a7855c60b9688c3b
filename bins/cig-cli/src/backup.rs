//! `cig-cli backup` and `cig-cli restore`: the manual's two items, `cig.conf` and
//! `userdata/`, in a tar archive with a manifest (`MANIFEST.json`, first entry) giving each
//! entry's kind, mode, owner, size and SHA-256.
//!
//! Restore verifies the whole archive before touching anything (manifest, every checksum,
//! sizes, kinds, no entry outside the two items, nothing missing or extra), extracts into a
//! staging directory inside the root, then swaps it in; what was there before is moved to
//! `<root>/.cig-pre-restore-<unix time>/`. Modes are restored, and owners when run as root
//! (by user/group name when this machine knows the name, else by number).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::unistd::{Gid, Group, Uid, User};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest's name inside the archive.
const MANIFEST: &str = "MANIFEST.json";
/// The manifest's `format`.
const FORMAT: &str = "cig-backup";
/// The manifest format version.
const VERSION: u32 = 1;
/// The configuration file, relative to the root.
const CONF: &str = "cig.conf";
/// The user data directory, relative to the root.
const USERDATA: &str = "userdata";
/// The largest manifest read.
const MAX_MANIFEST: u64 = 4 << 20;
/// The most bytes of file content backed up or restored (userdata holds keystores: small).
const MAX_TOTAL: u64 = 256 << 20;
/// The most entries backed up or restored.
const MAX_ENTRIES: usize = 100_000;

/// Arguments of `backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The archive to write (default `cig-backup-<host>-<UTC date and time>.tar` here).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The installation root holding cig.conf and userdata/.
    #[arg(long, default_value = "/opt/cig")]
    root: PathBuf,
}

/// Arguments of `restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The archive written by `cig-cli backup`.
    file: PathBuf,
    /// The installation root to restore cig.conf and userdata/ into.
    #[arg(long, default_value = "/opt/cig")]
    root: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    File,
    Dir,
}

/// One archived file or directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// Relative to the root, `/`-separated: `cig.conf`, `userdata`, `userdata/...`.
    path: String,
    kind: Kind,
    /// Permission bits in octal, e.g. `"0600"`.
    mode: String,
    uid: u32,
    gid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    mtime: u64,
    /// Files only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    /// Files only: lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    created_unix: u64,
    host: String,
    root: String,
    entries: Vec<Entry>,
}

type Result<T> = std::result::Result<T, String>;

fn ctx<E: std::fmt::Display>(what: impl std::fmt::Display) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e}")
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn host() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "cig".into())
}

/// `(year, month, day, hour, minute, second)` of a Unix time, UTC (proleptic Gregorian,
/// days-to-civil after H. Hinnant).
fn utc(unix: u64) -> (i64, u32, u32, u64, u64, u64) {
    let secs = unix % 86_400;
    let z = (unix / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, secs / 3600, secs / 60 % 60, secs % 60)
}

fn default_name(host: &str, unix: u64) -> PathBuf {
    let (y, mo, d, h, mi, s) = utc(unix);
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from(format!(
        "cig-backup-{host}-{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z.tar"
    ))
}

fn user_name(uid: u32) -> Option<String> {
    User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

fn group_name(gid: u32) -> Option<String> {
    Group::from_gid(Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn mode_text(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

fn parse_mode(text: &str) -> Result<u32> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("bad mode {text:?}"))
}

/// What `backup` collects: the manifest entries and, for files, their content.
struct Collected {
    entries: Vec<Entry>,
    data: BTreeMap<String, Vec<u8>>,
    total: u64,
}

impl Collected {
    fn add(&mut self, root: &Path, rel: &str) -> Result<()> {
        let path = root.join(rel);
        let meta = fs::symlink_metadata(&path).map_err(ctx(path.display()))?;
        if self.entries.len() >= MAX_ENTRIES {
            return Err(format!(
                "more than {MAX_ENTRIES} entries under {}",
                root.display()
            ));
        }
        let (kind, size, sha256) = if meta.is_file() {
            let too_big = || format!("more than {MAX_TOTAL} bytes to back up");
            if self.total + meta.len() > MAX_TOTAL {
                return Err(too_big());
            }
            let mut data = Vec::new();
            File::open(&path)
                .and_then(|f| f.take(MAX_TOTAL - self.total + 1).read_to_end(&mut data))
                .map_err(ctx(path.display()))?;
            self.total += data.len() as u64;
            if self.total > MAX_TOTAL {
                return Err(too_big());
            }
            let sum = sha256_hex(&data);
            let size = data.len() as u64;
            self.data.insert(rel.to_owned(), data);
            (Kind::File, Some(size), Some(sum))
        } else if meta.is_dir() {
            (Kind::Dir, None, None)
        } else {
            return Err(format!(
                "{}: not a regular file or directory; not backed up",
                path.display()
            ));
        };
        self.entries.push(Entry {
            path: rel.to_owned(),
            kind,
            mode: mode_text(meta.mode()),
            uid: meta.uid(),
            gid: meta.gid(),
            user: user_name(meta.uid()),
            group: group_name(meta.gid()),
            mtime: u64::try_from(meta.mtime()).unwrap_or(0),
            size,
            sha256,
        });
        if kind == Kind::Dir {
            let mut names = Vec::new();
            for e in fs::read_dir(&path).map_err(ctx(path.display()))? {
                let e = e.map_err(ctx(path.display()))?;
                let name = e.file_name().into_string().map_err(|n| {
                    format!("{}: name {n:?} is not UTF-8; not backed up", path.display())
                })?;
                names.push(name);
            }
            names.sort();
            for name in names {
                self.add(root, &format!("{rel}/{name}"))?;
            }
        }
        Ok(())
    }
}

fn tar_header(e: &Entry) -> Result<tar::Header> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(match e.kind {
        Kind::File => tar::EntryType::Regular,
        Kind::Dir => tar::EntryType::Directory,
    });
    h.set_mode(parse_mode(&e.mode)?);
    h.set_uid(u64::from(e.uid));
    h.set_gid(u64::from(e.gid));
    h.set_mtime(e.mtime);
    h.set_size(e.size.unwrap_or(0));
    if let Some(u) = &e.user {
        h.set_username(u).map_err(ctx(&e.path))?;
    }
    if let Some(g) = &e.group {
        h.set_groupname(g).map_err(ctx(&e.path))?;
    }
    Ok(h)
}

fn write_archive(out: &Path, manifest: &Manifest, data: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    let json = serde_json::to_vec_pretty(manifest).map_err(ctx("manifest"))?;
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Written next to the target and renamed into place; mode 0600 (the keystore is in it).
    let mut tmp = tempfile::Builder::new()
        .prefix(".cig-backup-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(ctx(dir.display()))?;
    {
        let mut b = tar::Builder::new(tmp.as_file_mut());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o600);
        h.set_size(json.len() as u64);
        h.set_mtime(manifest.created_unix);
        b.append_data(&mut h, MANIFEST, json.as_slice())
            .map_err(ctx(out.display()))?;
        for e in &manifest.entries {
            let mut h = tar_header(e)?;
            let content: &[u8] = data.get(&e.path).map_or(&[], Vec::as_slice);
            b.append_data(&mut h, &e.path, content)
                .map_err(ctx(out.display()))?;
        }
        b.finish().map_err(ctx(out.display()))?;
    }
    tmp.as_file().sync_all().map_err(ctx(out.display()))?;
    tmp.persist(out).map_err(ctx(out.display()))?;
    Ok(())
}

fn run_backup(args: &BackupArgs) -> Result<(PathBuf, usize)> {
    for item in [CONF, USERDATA] {
        let p = args.root.join(item);
        if fs::symlink_metadata(&p).is_err() {
            return Err(format!("{} does not exist; nothing backed up", p.display()));
        }
    }
    let mut c = Collected {
        entries: Vec::new(),
        data: BTreeMap::new(),
        total: 0,
    };
    c.add(&args.root, CONF)?;
    c.add(&args.root, USERDATA)?;
    let created_unix = now_unix();
    let host = host();
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        created_unix,
        host: host.clone(),
        root: args.root.display().to_string(),
        entries: c.entries,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_name(&host, created_unix));
    write_archive(&out, &manifest, &c.data)?;
    Ok((out, manifest.entries.len()))
}

/// Runs `backup`: exit 0 with the archive's path, 1 when nothing could be written.
pub fn backup(args: &BackupArgs) -> ExitCode {
    match run_backup(args) {
        Ok((out, n)) => {
            println!("backup={}", out.display());
            println!("entries={n}");
            println!("Store the archive on separate hardware or external media.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cig-cli backup: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `rel` checked to be `cig.conf`, `userdata` or below `userdata`, with plain components.
fn checked_path(rel: &str) -> Result<PathBuf> {
    let p = Path::new(rel);
    let parts: Vec<_> = p.components().collect();
    let plain = parts.iter().all(|c| matches!(c, Component::Normal(_)));
    let top_ok = match parts.first() {
        Some(Component::Normal(first)) => {
            (*first == CONF && parts.len() == 1) || *first == USERDATA
        }
        _ => false,
    };
    if !plain || !top_ok {
        return Err(format!("entry {rel:?} is outside cig.conf and userdata/"));
    }
    Ok(p.to_path_buf())
}

/// The archive's path names normalised to the manifest's form (`userdata/x`, no trailing
/// `/`).
fn entry_name(e: &tar::Entry<'_, File>) -> Result<String> {
    let p = e.path().map_err(ctx("entry name"))?;
    let s = p
        .to_str()
        .ok_or_else(|| format!("entry name {p:?} is not UTF-8"))?;
    Ok(s.trim_end_matches('/').to_owned())
}

/// Checks the manifest's own rules: format, version, paths, kinds, sizes, no duplicates.
fn check_manifest(m: &Manifest) -> Result<()> {
    if m.format != FORMAT || m.version != VERSION {
        return Err(format!(
            "manifest is {:?} version {}, not {FORMAT} version {VERSION}",
            m.format, m.version
        ));
    }
    if m.entries.len() > MAX_ENTRIES {
        return Err(format!("more than {MAX_ENTRIES} entries"));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut total = 0u64;
    for e in &m.entries {
        checked_path(&e.path)?;
        parse_mode(&e.mode).map_err(ctx(&e.path))?;
        if !seen.insert(e.path.as_str()) {
            return Err(format!("{} listed twice", e.path));
        }
        match (e.kind, e.size, &e.sha256) {
            (Kind::File, Some(size), Some(sum)) if sum.len() == 64 => total += size,
            (Kind::Dir, None, None) => {}
            _ => return Err(format!("{}: bad manifest entry", e.path)),
        }
        if e.path == CONF && e.kind != Kind::File || e.path == USERDATA && e.kind != Kind::Dir {
            return Err(format!("{}: wrong kind", e.path));
        }
    }
    if total > MAX_TOTAL {
        return Err(format!("more than {MAX_TOTAL} bytes"));
    }
    for item in [CONF, USERDATA] {
        if !seen.contains(item) {
            return Err(format!("{item} missing from the manifest"));
        }
    }
    // Every entry's parent directory is itself an entry (so it is created with its mode).
    for e in &m.entries {
        if let Some((parent, _)) = e.path.rsplit_once('/')
            && !m
                .entries
                .iter()
                .any(|d| d.path == parent && d.kind == Kind::Dir)
        {
            return Err(format!("{}: parent directory not in the archive", e.path));
        }
    }
    Ok(())
}

/// Reads the archive; checks every entry against the manifest; hands each verified entry's
/// content to `sink` (`None` for directories). Any mismatch is an error.
fn walk(
    file: &Path,
    mut sink: impl FnMut(&Entry, Option<&[u8]>) -> Result<()>,
) -> Result<Manifest> {
    let f = File::open(file).map_err(ctx(file.display()))?;
    let mut archive = tar::Archive::new(f);
    let mut entries = archive.entries().map_err(ctx("not a tar archive"))?;
    let mut first = entries
        .next()
        .ok_or("empty archive")?
        .map_err(ctx("first entry"))?;
    if entry_name(&first)? != MANIFEST || first.size() > MAX_MANIFEST {
        return Err(format!("the first entry is not {MANIFEST}"));
    }
    let mut json = Vec::new();
    first.read_to_end(&mut json).map_err(ctx(MANIFEST))?;
    let manifest: Manifest = serde_json::from_slice(&json).map_err(ctx(MANIFEST))?;
    check_manifest(&manifest)?;
    let by_path: BTreeMap<&str, &Entry> = manifest
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e))
        .collect();
    let mut done = std::collections::BTreeSet::new();
    for item in entries {
        let mut item = item.map_err(ctx("archive"))?;
        let name = entry_name(&item)?;
        let e = by_path
            .get(name.as_str())
            .ok_or_else(|| format!("{name}: in the archive but not in the manifest"))?;
        if !done.insert(name.clone()) {
            return Err(format!("{name}: twice in the archive"));
        }
        let kind = item.header().entry_type();
        match e.kind {
            Kind::Dir if kind.is_dir() => sink(e, None)?,
            Kind::File if kind.is_file() => {
                let size = e.size.unwrap_or(0);
                if item.size() != size {
                    return Err(format!("{name}: size differs from the manifest"));
                }
                let mut data = Vec::new();
                (&mut item)
                    .take(size)
                    .read_to_end(&mut data)
                    .map_err(ctx(&name))?;
                if data.len() as u64 != size || Some(sha256_hex(&data)) != e.sha256 {
                    return Err(format!("{name}: checksum mismatch"));
                }
                sink(e, Some(&data))?;
            }
            _ => return Err(format!("{name}: kind differs from the manifest")),
        }
    }
    if let Some(missing) = manifest.entries.iter().find(|e| !done.contains(&e.path)) {
        return Err(format!(
            "{}: in the manifest but not in the archive",
            missing.path
        ));
    }
    Ok(manifest)
}

/// The uid/gid to give a restored entry: this machine's id for the recorded name when it
/// knows the name, else the recorded number.
fn owner(e: &Entry) -> (u32, u32) {
    let uid = e
        .user
        .as_deref()
        .and_then(|n| User::from_name(n).ok().flatten())
        .map_or(e.uid, |u| u.uid.as_raw());
    let gid = e
        .group
        .as_deref()
        .and_then(|n| Group::from_name(n).ok().flatten())
        .map_or(e.gid, |g| g.gid.as_raw());
    (uid, gid)
}

fn set_mtime(path: &Path, mtime: u64) -> Result<()> {
    let t = UNIX_EPOCH + Duration::from_secs(mtime);
    File::open(path)
        .and_then(|f| f.set_modified(t))
        .map_err(ctx(path.display()))
}

/// Writes the verified entries under `stage`; directories get their modes after their
/// contents (a read-only directory could not be filled otherwise).
fn extract(file: &Path, stage: &Path, as_root: bool) -> Result<usize> {
    let mut dirs = Vec::new();
    let mut n = 0;
    walk(file, |e, data| {
        let path = stage.join(checked_path(&e.path)?);
        match data {
            None => {
                fs::create_dir(&path).map_err(ctx(path.display()))?;
                dirs.push(e.clone());
            }
            Some(bytes) => {
                let mode = parse_mode(&e.mode)?;
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(ctx(path.display()))?;
                f.write_all(bytes)
                    .and_then(|()| f.sync_all())
                    .map_err(ctx(path.display()))?;
                drop(f);
                finish(&path, e, mode, as_root)?;
            }
        }
        n += 1;
        Ok(())
    })?;
    // Deepest first.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.path.len()));
    for e in &dirs {
        let path = stage.join(&e.path);
        finish(&path, e, parse_mode(&e.mode)?, as_root)?;
    }
    Ok(n)
}

/// Owner (when root), mode, modification time.
fn finish(path: &Path, e: &Entry, mode: u32, as_root: bool) -> Result<()> {
    if as_root {
        let (uid, gid) = owner(e);
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(ctx(path.display()))?;
    }
    // chmod after chown: chown clears set-id bits.
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(ctx(path.display()))?;
    set_mtime(path, e.mtime)
}

/// Moves the current `cig.conf` and `userdata` aside and the staged ones in; on a failure,
/// puts back what was moved. Returns where the old ones went, if there were any.
fn swap(root: &Path, stage: &Path) -> Result<Option<PathBuf>> {
    let present: Vec<&str> = [CONF, USERDATA]
        .into_iter()
        .filter(|i| fs::symlink_metadata(root.join(i)).is_ok())
        .collect();
    let aside = if present.is_empty() {
        None
    } else {
        // A fresh directory (mode 0700) whose name starts with the time.
        let dir = tempfile::Builder::new()
            .prefix(&format!(".cig-pre-restore-{}-", now_unix()))
            .tempdir_in(root)
            .map_err(ctx(root.display()))?
            .keep();
        Some(dir)
    };
    // Renames done so far, as (from, to), undone in reverse on failure.
    let mut done: Vec<(PathBuf, PathBuf)> = Vec::new();
    let moves = present
        .iter()
        .filter_map(|i| Some((root.join(i), aside.as_ref()?.join(i))))
        .chain([CONF, USERDATA].map(|i| (stage.join(i), root.join(i))));
    for (from, to) in moves {
        if let Err(e) = fs::rename(&from, &to) {
            for (f, t) in done.iter().rev() {
                let _ = fs::rename(t, f);
            }
            return Err(format!(
                "moving {} to {}: {e}",
                from.display(),
                to.display()
            ));
        }
        done.push((from, to));
    }
    Ok(aside)
}

fn run_restore(args: &RestoreArgs) -> Result<(usize, Option<PathBuf>)> {
    // Verify everything before anything is created.
    File::open(&args.file).map_err(ctx(args.file.display()))?;
    walk(&args.file, |_, _| Ok(()))
        .map_err(|e| format!("{}: damaged or not a cig backup: {e}", args.file.display()))?;
    fs::create_dir_all(&args.root).map_err(ctx(args.root.display()))?;
    let stage = tempfile::Builder::new()
        .prefix(".cig-restore-")
        .tempdir_in(&args.root)
        .map_err(ctx(args.root.display()))?;
    let as_root = Uid::effective().is_root();
    // The file is read again: a change since the check fails here, before the swap.
    let n = extract(&args.file, stage.path(), as_root)
        .map_err(|e| format!("{}: {e}", args.file.display()))?;
    let aside = swap(&args.root, stage.path())?;
    Ok((n, aside))
}

/// Runs `restore`: exit 0 when restored, 1 when refused (nothing changed) or failed.
pub fn restore(args: &RestoreArgs) -> ExitCode {
    match run_restore(args) {
        Ok((n, aside)) => {
            println!("restored={n}");
            println!("root={}", args.root.display());
            if let Some(dir) = aside {
                println!("previous={}", dir.display());
            }
            println!("Restart the services to use the restored configuration and keys:");
            println!("  systemctl restart cig-relay");
            println!("  systemctl restart cig-server");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cig-cli restore: {e}; nothing restored");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_match_known_instants() {
        assert_eq!(utc(0), (1970, 1, 1, 0, 0, 0));
        // 2000-02-29T12:34:56Z (leap day).
        assert_eq!(utc(951_827_696), (2000, 2, 29, 12, 34, 56));
        // 2026-11-26T19:18:12Z.
        assert_eq!(utc(1_795_720_692), (2026, 11, 26, 19, 18, 12));
        assert_eq!(
            default_name("gw 1", 1_795_720_692),
            PathBuf::from("cig-backup-gw_1-20261126T191812Z.tar")
        );
    }

    #[test]
    fn only_the_two_items_are_accepted_as_paths() {
        for ok in [
            "cig.conf",
            "userdata",
            "userdata/.ks.tel:+8888",
            "userdata/a/b",
        ] {
            assert!(checked_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../cig.conf",
            "userdata/../../etc/passwd",
            "cig.conf/x",
            "other",
            "./cig.conf",
        ] {
            assert!(checked_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes_round_trip_as_octal_text() {
        assert_eq!(mode_text(0o100_600), "0600");
        assert_eq!(parse_mode("0700").unwrap(), 0o700);
        assert!(parse_mode("0800").is_err());
        assert!(parse_mode("17777").is_err());
    }
}
