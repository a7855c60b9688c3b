//! relay.log in the manual's format: `[Time] Module[Type]: Information`, Time in UTC (the line
//! itself is [`cig_core::logline`], shared with cig.log).
//!
//! Each line is written with one `write` on a file opened for appending, so threads log without a
//! lock and lines never interleave. Nothing on the per-packet path logs.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use cig_core::logline::Level;

/// A shared handle on relay.log (cheap to clone).
#[derive(Debug, Clone)]
pub struct Log {
    file: Arc<File>,
    debug: bool,
}

impl Log {
    /// Opens (creating) `dir/relay.log` for appending.
    pub fn open(dir: &Path, debug: bool) -> io::Result<Log> {
        std::fs::create_dir_all(dir)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("relay.log"))?;
        Ok(Log {
            file: Arc::new(file),
            debug,
        })
    }

    /// Writes one line; a failing disk is not a reason to stop relaying media, so errors are
    /// ignored after being reported on stderr.
    pub fn write(&self, module: &str, level: Level, args: fmt::Arguments<'_>) {
        if level == Level::Debug && !self.debug {
            return;
        }
        let line = cig_core::logline::line(SystemTime::now(), module, level, args);
        if let Err(e) = (&*self.file).write_all(line.as_bytes()) {
            eprintln!("cig-relay: cannot write relay.log: {e}");
        }
    }

    /// An `INIT` line.
    pub fn init(&self, module: &str, args: fmt::Arguments<'_>) {
        self.write(module, Level::Init, args);
    }

    /// An `INFO` line.
    pub fn info(&self, module: &str, args: fmt::Arguments<'_>) {
        self.write(module, Level::Info, args);
    }

    /// A `WARN` line.
    pub fn warn(&self, module: &str, args: fmt::Arguments<'_>) {
        self.write(module, Level::Warn, args);
    }

    /// A `DEBUG` line (written only with `--debug`).
    pub fn debug(&self, module: &str, args: fmt::Arguments<'_>) {
        self.write(module, Level::Debug, args);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_manual_format() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), false).unwrap();
        log.init("Config", format_args!("workers 2"));
        log.debug("Engine", format_args!("hidden"));
        let text = std::fs::read_to_string(dir.path().join("relay.log")).unwrap();
        let line = text.lines().next().unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(line.starts_with('['));
        assert_eq!(&line[24..], "] Config[INIT]: workers 2");
    }
}
