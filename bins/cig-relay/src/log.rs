//! relay.log in the manual's format: `[Time] Module[Type]: Information`, Time in UTC.
//!
//! Each line is written with one `write` on a file opened for appending, so threads log without a
//! lock and lines never interleave. Nothing on the per-packet path logs.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The manual's log types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Start-up: the loaded configuration.
    Init,
    /// Normal events.
    Info,
    /// Something went wrong but the relay carries on.
    Warn,
    /// Detail for troubleshooting.
    Debug,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Init => "INIT",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Debug => "DEBUG",
        }
    }
}

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
        let line = format!(
            "[{}] {module}[{}]: {args}\n",
            utc_timestamp(SystemTime::now()),
            level.as_str()
        );
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

/// `YYYY-MM-DD HH:MM:SS.mmm` in UTC.
pub fn utc_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let at = |s: u64, ms: u64| {
            utc_timestamp(UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms))
        };
        assert_eq!(at(0, 0), "1970-01-01 00:00:00.000");
        // `date -u -d @951782400` = Tue Feb 29 00:00:00 UTC 2000 (leap day of a /400 year).
        assert_eq!(at(951_782_400, 5), "2000-02-29 00:00:00.005");
        // `date -u -d @1795710713` = Thu Nov 26 16:31:53 UTC 2026.
        assert_eq!(at(1_795_710_713, 999), "2026-11-26 16:31:53.999");
        assert_eq!(at(4_107_542_399, 0), "2100-02-28 23:59:59.000");
    }

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
