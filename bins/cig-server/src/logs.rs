//! cig.log and session.log in the log directory: appended line by line, reopened on SIGUSR1
//! (so logrotate can move them away without copytruncate). Lines are buffered and written by
//! [`Logs::flush`], which the server's loop calls after each event it handled: one write per
//! file per event instead of one per line, and nothing left unwritten while the loop waits.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cig_gateway::logfmt::{self, Level};

/// The server's two log files.
#[derive(Debug)]
pub struct Logs {
    dir: PathBuf,
    cig: BufWriter<File>,
    session: BufWriter<File>,
    debug: bool,
}

fn open(path: &Path) -> io::Result<BufWriter<File>> {
    Ok(BufWriter::new(
        OpenOptions::new().create(true).append(true).open(path)?,
    ))
}

impl Logs {
    /// Opens (creating) `dir/cig.log` and `dir/session.log`.
    pub fn open(dir: &Path, debug: bool) -> io::Result<Logs> {
        std::fs::create_dir_all(dir)?;
        Ok(Logs {
            dir: dir.to_owned(),
            cig: open(&dir.join("cig.log"))?,
            session: open(&dir.join("session.log"))?,
            debug,
        })
    }

    /// Reopens both files by name (SIGUSR1 after a rotation), after writing what is buffered
    /// to the old ones.
    pub fn reopen(&mut self) -> io::Result<()> {
        self.flush();
        self.cig = open(&self.dir.join("cig.log"))?;
        self.session = open(&self.dir.join("session.log"))?;
        Ok(())
    }

    /// Writes a formatted cig.log line (DEBUG lines only with `--debug`).
    pub fn raw(&mut self, level: Level, line: &str) {
        if level == Level::Debug && !self.debug {
            return;
        }
        if let Err(e) = self.cig.write_all(line.as_bytes()) {
            eprintln!("cig-server: cannot write cig.log: {e}");
        }
    }

    /// Formats and writes a cig.log line.
    pub fn log(&mut self, module: &str, level: Level, text: &str) {
        let line = logfmt::log_line(SystemTime::now(), module, level, format_args!("{text}"));
        self.raw(level, &line);
    }

    /// Writes a session.log line.
    pub fn session(&mut self, line: &str) {
        if let Err(e) = self.session.write_all(line.as_bytes()) {
            eprintln!("cig-server: cannot write session.log: {e}");
        }
    }

    /// Writes the buffered lines to the files.
    pub fn flush(&mut self) {
        if let Err(e) = self.cig.flush() {
            eprintln!("cig-server: cannot write cig.log: {e}");
        }
        if let Err(e) = self.session.flush() {
            eprintln!("cig-server: cannot write session.log: {e}");
        }
    }
}
