//! Maildir mailboxes: creating them (the manual's `create_cig_maildir`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::{Result, io_err};

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
}
