//! Maildir mailboxes: creating them (the manual's `create_cig_maildir`), delivering a file
//! durably (`tmp/` → fsync → rename into `new/` → fsync of `new/`) and reading one
//! (`new/` watched with inotify for create and moved-to events, a full scan at start and
//! periodically; a file is deleted only after the sink acknowledged it).
//!
//! **Failed messages**: a file in `new/` that cannot be read, parsed or routed is moved to
//! `failed/`, a sibling of `new/` (created on demand, mode 2770), together with
//! `<name>.reason`, one line saying why; the reason is also logged. It is never retried by the
//! reader; an operator fixes it and moves it back into `new/`.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cig_route::Router;
use tokio::sync::mpsc;

use crate::format::{self, MAX_FILE_BYTES};
use crate::service::{AckHandle, Inbound};
use crate::{Error, Result, io_err};

/// The folder (beside `new/`) that takes messages the reader cannot parse or route.
pub const FAILED_DIR: &str = "failed";

/// The group that readers and writers of CIG mailboxes belong to (manual, "Message format").
pub const MAIL_GROUP: &str = "cigmail";

/// Mode of every mailbox directory: setgid, rwx for owner and group, nothing for others.
pub const DIR_MODE: u32 = 0o2770;

/// The sub-directories of a Maildir.
pub const SUBDIRS: [&str; 3] = ["new", "cur", "tmp"];

/// Creates the mailbox `path` with `new/`, `cur/` and `tmp/` (parents as needed), each with
/// mode [`DIR_MODE`] (2770, setgid so files inherit the group) and group [`MAIL_GROUP`] when
/// that group exists on the system. Existing directories are kept and get the same mode and
/// group, so running it twice is harmless.
pub fn create_maildir(path: &Path) -> Result<()> {
    let gid = nix::unistd::Group::from_name(MAIL_GROUP)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw());
    let dirs = std::iter::once(path.to_path_buf()).chain(SUBDIRS.iter().map(|s| path.join(s)));
    for dir in dirs {
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        if let Some(gid) = gid {
            std::os::unix::fs::chown(&dir, None, Some(gid)).map_err(io_err("chown", &dir))?;
        }
        // chmod after chown: chown may clear the setgid bit.
        fs::set_permissions(&dir, fs::Permissions::from_mode(DIR_MODE))
            .map_err(io_err("chmod", &dir))?;
    }
    Ok(())
}

/// A unique Maildir file name: `<secs>.M<usecs>P<pid>Q<n>.<host>` (the Maildir convention;
/// `/` and `:` in the host name escaped as `\057` and `\072`).
pub fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let host = HOST.get_or_init(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into())
            .replace('/', "\\057")
            .replace(':', "\\072")
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}.M{}P{}Q{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        host
    )
}

fn fsync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Group commit of a directory fsync: concurrent deliveries into the same `new/` share one
/// fsync that started after their renames, instead of one each.
#[derive(Debug, Default)]
struct GroupSync {
    state: Mutex<SyncState>,
    done: std::sync::Condvar,
}

#[derive(Debug, Default)]
struct SyncState {
    /// Tickets handed out; a ticket is taken after the caller's rename.
    next_ticket: u64,
    /// Every ticket below this is covered by a finished fsync.
    synced_upto: u64,
    running: bool,
}

/// Makes the renames into `dir` done before this call durable.
fn group_fsync_dir(dir: &Path) -> Result<()> {
    static GROUPS: std::sync::OnceLock<Mutex<std::collections::HashMap<PathBuf, Arc<GroupSync>>>> =
        std::sync::OnceLock::new();
    let group = {
        let mut groups = GROUPS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Arc::clone(groups.entry(dir.to_path_buf()).or_default())
    };
    let mut st = group.state.lock().unwrap_or_else(|e| e.into_inner());
    let ticket = st.next_ticket;
    st.next_ticket += 1;
    loop {
        if st.synced_upto > ticket {
            return Ok(());
        }
        if st.running {
            st = group.done.wait(st).unwrap_or_else(|e| e.into_inner());
            continue;
        }
        st.running = true;
        let upto = st.next_ticket;
        drop(st);
        let result = fsync_dir(dir);
        st = group.state.lock().unwrap_or_else(|e| e.into_inner());
        st.running = false;
        if result.is_ok() {
            st.synced_upto = st.synced_upto.max(upto);
        }
        group.done.notify_all();
        result?;
    }
}

/// Delivers `bytes` into mailbox `mailbox`: written to `tmp/<unique>`, fsynced, renamed to
/// `new/<unique>`, then `new/` fsynced (one fsync shared by concurrent deliveries into the
/// same mailbox). Returns the path in `new/`. When this returns `Ok`
/// the file survives a crash.
pub fn deliver(mailbox: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let mut paths = deliver_batch(mailbox, &[bytes])?;
    paths.pop().ok_or_else(|| Error::Io {
        op: "deliver",
        path: mailbox.to_path_buf(),
        source: std::io::Error::other("no file delivered"),
    })
}

/// Threads that fsync the files of one batch side by side.
const FSYNC_THREADS: usize = 8;

/// Delivers several messages into `mailbox` as one group commit: every file is written into
/// `tmp/` first, then they are fsynced side by side (up to [`FSYNC_THREADS`] at once), all are renamed into `new/`, and `new/` is fsynced
/// once for the whole batch (instead of once per file). Returns the paths in `new/`, in order, only when every one of
/// them is durable; on an error the files already in `tmp/` are removed and none of the batch
/// counts as delivered (some may have reached `new/`: delivery is at-least-once).
pub fn deliver_batch(mailbox: &Path, items: &[&[u8]]) -> Result<Vec<PathBuf>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut written: Vec<(PathBuf, PathBuf, fs::File)> = Vec::with_capacity(items.len());
    let cleanup = |written: &[(PathBuf, PathBuf, fs::File)]| {
        for (tmp, _, _) in written {
            let _ = fs::remove_file(tmp);
        }
    };
    for bytes in items {
        let name = unique_name();
        let tmp = mailbox.join("tmp").join(&name);
        let new = mailbox.join("new").join(&name);
        let f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err("create", &tmp));
        let mut f = match f {
            Ok(f) => f,
            Err(e) => {
                cleanup(&written);
                return Err(e);
            }
        };
        if let Err(e) = f.write_all(bytes) {
            cleanup(&written);
            let _ = fs::remove_file(&tmp);
            return Err(io_err("write", &tmp)(e));
        }
        written.push((tmp, new, f));
    }
    // The file fsyncs run side by side: the file system's journal commits concurrent fsyncs
    // together (one after another, each would wait for a commit of its own).
    let synced: std::result::Result<(), Error> = std::thread::scope(|s| {
        let per = written.len().div_ceil(FSYNC_THREADS).max(1);
        let workers: Vec<_> = written
            .chunks(per)
            .map(|chunk| {
                s.spawn(move || {
                    for (tmp, _, f) in chunk {
                        f.sync_all().map_err(io_err("fsync", tmp))?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join().unwrap_or_else(|_| {
                Err(Error::Io {
                    op: "fsync",
                    path: mailbox.to_path_buf(),
                    source: std::io::Error::other("fsync thread panicked"),
                })
            })
        })
    });
    if let Err(e) = synced {
        cleanup(&written);
        return Err(e);
    }
    let mut out = Vec::with_capacity(written.len());
    for (i, (tmp, new, _)) in written.iter().enumerate() {
        if let Err(e) = fs::rename(tmp, new) {
            cleanup(&written[i..]);
            return Err(io_err("rename", tmp)(e));
        }
        out.push(new.clone());
    }
    drop(written);
    group_fsync_dir(&mailbox.join("new"))?;
    Ok(out)
}

/// The identity part of a TEL URI (`tel:+8888` of `tel:+8888;101` or `tel:+8888w101`), or
/// `None` if `uri` is not a TEL URI.
pub fn tel_identity(uri: &str) -> Option<&str> {
    let scheme = uri.get(..4)?;
    if !scheme.eq_ignore_ascii_case("tel:") || uri.len() == 4 {
        return None;
    }
    let end = uri[4..].find([';', 'w', 'W']).map_or(uri.len(), |i| i + 4);
    Some(&uri[..end])
}

/// The inbound translation of the manual: `From` through `map_from` must become a TEL URI of
/// the gateway `gateway` (e.g. `tel:+8888` or `tel:+8888;1234` for `tel:+8888`), `To` through
/// `map_to` must become a TEL URI. Returns (from, to) or why not.
pub fn translate_inbound(
    router: &Router,
    map_from: &str,
    map_to: &str,
    gateway: &str,
    from: &str,
    to: &str,
) -> Result<(String, String), String> {
    let new_from = router
        .translate(map_from, from)
        .map_err(|e| format!("From <{from}> through `{map_from}`: {e}"))?
        .uri;
    if tel_identity(&new_from) != Some(gateway) {
        return Err(format!(
            "From <{from}> became <{new_from}>, not a TEL URI of the gateway {gateway}"
        ));
    }
    let new_to = router
        .translate(map_to, to)
        .map_err(|e| format!("To <{to}> through `{map_to}`: {e}"))?
        .uri;
    if tel_identity(&new_to).is_none() {
        return Err(format!("To <{to}> became <{new_to}>, not a TEL URI"));
    }
    Ok((new_from, new_to))
}

/// What a mailbox reader needs: the mailbox, its translate maps and the gateway identity.
#[derive(Clone, Debug)]
pub struct ReaderConfig {
    /// The mailbox directory (with `new/`).
    pub path: PathBuf,
    /// Translate map for `From`.
    pub map_from: String,
    /// Translate map for `To`.
    pub map_to: String,
    /// The gateway's TEL URI, e.g. `tel:+8888`.
    pub gateway: String,
    /// Full scans of `new/` besides inotify (also when unacknowledged messages are retried).
    pub scan_every: Duration,
}

/// A running mailbox reader; stops when dropped.
#[derive(Debug)]
pub struct Reader {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Reader {
    /// Starts reading `config.path` on the current tokio runtime: every message of `new/`
    /// is parsed, translated ([`translate_inbound`]) and sent to `sink` as an [`Inbound`]
    /// whose [`AckHandle`] deletes the file. A message whose handle is dropped unacknowledged
    /// is offered again at the next periodic scan. The message's id is its `Message-ID`, or
    /// the Maildir file name when it has none (stable across restarts, for duplicate
    /// suppression downstream).
    pub fn spawn(
        config: ReaderConfig,
        router: Arc<Router>,
        sink: mpsc::Sender<Inbound>,
    ) -> Result<Reader> {
        use notify::Watcher;
        let new_dir = config.path.join("new");
        let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<PathBuf>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(ev) = res else { return };
            let wanted = matches!(
                ev.kind,
                notify::EventKind::Create(_)
                    | notify::EventKind::Modify(notify::event::ModifyKind::Name(
                        notify::event::RenameMode::To
                            | notify::event::RenameMode::Both
                            | notify::event::RenameMode::Any
                    ))
            );
            if let (true, Some(p)) = (wanted, ev.paths.last()) {
                let _ = ev_tx.send(p.clone());
            }
        })
        .map_err(|e| Error::Watch(e.to_string()))?;
        watcher
            .watch(&new_dir, notify::RecursiveMode::NonRecursive)
            .map_err(|e| Error::Watch(format!("{}: {e}", new_dir.display())))?;
        let in_flight = Arc::new(Mutex::new(HashSet::new()));
        let task = tokio::spawn(async move {
            let _watcher = watcher;
            let mut scan = tokio::time::interval(config.scan_every);
            loop {
                let paths = tokio::select! {
                    _ = scan.tick() => list_new(&new_dir),
                    Some(p) = ev_rx.recv() => vec![p],
                    () = sink.closed() => return,
                };
                for path in paths {
                    let Some(inbound) = take(&config, &router, &in_flight, path) else {
                        continue;
                    };
                    if sink.send(inbound).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Reader { task })
    }
}

/// The regular files of `new/` (names starting with `.` skipped), oldest name first.
pub(crate) fn list_new(new_dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match fs::read_dir(new_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .collect(),
        Err(e) => {
            tracing::warn!("mailbox {}: cannot list: {e}", new_dir.display());
            Vec::new()
        }
    };
    out.sort();
    out
}

/// Reads, parses and translates `path`; moves it to `failed/` when that fails. `None` when
/// there is nothing to hand on (in flight already, gone, or failed).
fn take(
    config: &ReaderConfig,
    router: &Router,
    in_flight: &Arc<Mutex<HashSet<PathBuf>>>,
    path: PathBuf,
) -> Option<Inbound> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    if name.starts_with('.') {
        return None;
    }
    {
        let mut set = in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if !set.insert(path.clone()) {
            return None;
        }
    }
    let release = || {
        in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&path);
    };
    let bytes = match read_capped(&path) {
        Ok(Some(b)) => b,
        Ok(None) => {
            release();
            return None;
        }
        Err(reason) => {
            release();
            fail(&config.path, &path, &reason);
            return None;
        }
    };
    let parsed = format::parse(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|mut m| {
            let (from, to) = translate_inbound(
                router,
                &config.map_from,
                &config.map_to,
                &config.gateway,
                &m.from,
                &m.to,
            )?;
            m.from = from;
            m.to = to;
            if m.id.is_none() {
                m.id = Some(name.clone());
            }
            Ok(m)
        });
    match parsed {
        Ok(message) => Some(Inbound {
            message,
            ack: AckHandle::file(path.clone(), Arc::clone(in_flight)),
        }),
        Err(reason) => {
            release();
            fail(&config.path, &path, &reason);
            None
        }
    }
}

/// The file's bytes; `Ok(None)` if it vanished; `Err` if unreadable or over the cap.
pub(crate) fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, String> {
    match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot stat: {e}")),
        Ok(md) if !md.is_file() => return Err("not a regular file".into()),
        Ok(md) if md.len() > MAX_FILE_BYTES as u64 => {
            return Err(format!("{} bytes, over {MAX_FILE_BYTES}", md.len()));
        }
        Ok(_) => {}
    }
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read: {e}")),
    }
}

/// Moves `path` into `<mailbox>/failed/` with a `.reason` file, and logs why.
pub(crate) fn fail(mailbox: &Path, path: &Path, reason: &str) {
    tracing::warn!(
        "mailbox {}: {} moved to {FAILED_DIR}/: {reason}",
        mailbox.display(),
        path.display()
    );
    let dir = mailbox.join(FAILED_DIR);
    let Some(name) = path.file_name() else { return };
    let moved = fs::create_dir_all(&dir)
        .and_then(|()| fs::set_permissions(&dir, fs::Permissions::from_mode(DIR_MODE)))
        .and_then(|()| {
            fs::write(
                dir.join(format!("{}.reason", name.to_string_lossy())),
                format!("{reason}\n"),
            )
        })
        .and_then(|()| fs::rename(path, dir.join(name)));
    if let Err(e) = moved {
        tracing::error!(
            "mailbox {}: cannot move {} to {FAILED_DIR}/: {e}",
            mailbox.display(),
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn creates_subdirs_setgid_2770_and_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let mb = tmp.path().join("a/b/box");
        create_maildir(&mb).unwrap();
        create_maildir(&mb).unwrap();
        let want_gid = nix::unistd::Group::from_name(MAIL_GROUP).ok().flatten();
        for d in [mb.clone(), mb.join("new"), mb.join("cur"), mb.join("tmp")] {
            let md = fs::metadata(&d).unwrap();
            assert!(md.is_dir());
            assert_eq!(md.mode() & 0o7777, 0o2770, "{}", d.display());
            if let Some(g) = &want_gid {
                assert_eq!(md.gid(), g.gid.as_raw());
            }
        }
    }

    #[test]
    fn concurrent_deliveries_share_directory_fsyncs_and_all_land() {
        let tmp = tempfile::tempdir().unwrap();
        let mb = tmp.path().join("box");
        create_maildir(&mb).unwrap();
        let paths: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|t| {
                    let mb = &mb;
                    s.spawn(move || {
                        (0..30)
                            .map(|i| deliver(mb, format!("{t}-{i}").as_bytes()).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(paths.len(), 180);
        assert_eq!(fs::read_dir(mb.join("new")).unwrap().count(), 180);
        assert_eq!(fs::read_dir(mb.join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn a_batch_lands_in_order_with_tmp_empty_and_a_missing_mailbox_fails_cleanly() {
        let tmp = tempfile::tempdir().unwrap();
        let mb = tmp.path().join("box");
        create_maildir(&mb).unwrap();
        let items: Vec<Vec<u8>> = (0..20).map(|i| format!("m{i}").into_bytes()).collect();
        let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
        let paths = deliver_batch(&mb, &refs).unwrap();
        assert_eq!(paths.len(), 20);
        for (p, want) in paths.iter().zip(&items) {
            assert_eq!(p.parent().unwrap(), mb.join("new"));
            assert_eq!(&fs::read(p).unwrap(), want);
        }
        assert_eq!(fs::read_dir(mb.join("tmp")).unwrap().count(), 0);
        assert!(deliver_batch(&mb, &[]).unwrap().is_empty());
        let missing = tmp.path().join("none");
        assert!(matches!(
            deliver_batch(&missing, &refs),
            Err(Error::Io { op: "create", .. })
        ));
    }

    #[test]
    fn tel_identity_cuts_at_the_wait_mark() {
        assert_eq!(tel_identity("tel:+8888;101"), Some("tel:+8888"));
        assert_eq!(tel_identity("tel:+8888w101"), Some("tel:+8888"));
        assert_eq!(tel_identity("TEL:+8888"), Some("TEL:+8888"));
        assert_eq!(tel_identity("sip:8888@x"), None);
        assert_eq!(tel_identity("tel:"), None);
        assert_eq!(tel_identity("té"), None);
    }

    #[tokio::test]
    async fn renamed_in_files_are_seen_and_unacked_ones_come_back_at_the_next_scan() {
        let tmp = tempfile::tempdir().unwrap();
        let mb = tmp.path().join("box");
        create_maildir(&mb).unwrap();
        let conf = format!(
            r#"translate_map f {{ rule match "sip:{{u}}@pbx" translation "tel:+8888;{{u}}"; }}
translate_map t {{ rule match "sip:{{n}}@sec" translation "tel:+{{n}}"; }}
mailboxes {{ read {{ path "{}"; map_from translate_map f; map_to translate_map t; }} }}"#,
            mb.display()
        );
        let config = cig_core::conf::parse(&conf, "t.conf").unwrap().config;
        let router = Arc::new(Router::from_config(&config).unwrap());
        let (tx, mut rx) = mpsc::channel(4);
        let _reader = Reader::spawn(
            ReaderConfig {
                path: mb.clone(),
                map_from: "f".into(),
                map_to: "t".into(),
                gateway: "tel:+8888".into(),
                scan_every: Duration::from_millis(300),
            },
            router,
            tx,
        )
        .unwrap();
        // A writer that renames into new/ (a moved-to event).
        let msg = crate::format::Message {
            from: "sip:7@pbx".into(),
            to: "sip:46@sec".into(),
            text: "hi".into(),
            ..Default::default()
        };
        let path = deliver(&mb, &crate::format::write(&msg).unwrap()).unwrap();
        let first = rx.recv().await.unwrap();
        assert_eq!(first.message.from, "tel:+8888;7");
        assert_eq!(first.message.to, "tel:+46");
        let id = first.message.id.clone();
        drop(first); // not delivered: stays, offered again by a later scan
        let again = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.message.id, id);
        assert!(path.exists());
        again.ack.delivered().unwrap();
        assert!(!path.exists());

        // A message the secure side can never take is moved to failed/ with its reason.
        let path = deliver(&mb, &crate::format::write(&msg).unwrap()).unwrap();
        let third = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        third.ack.refused("no key for tel:+46").unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!path.exists());
        assert!(mb.join(FAILED_DIR).join(&name).exists());
        assert_eq!(
            fs::read_to_string(mb.join(FAILED_DIR).join(format!("{name}.reason"))).unwrap(),
            "no key for tel:+46\n"
        );
    }
}
