//! The manual's service log line, shared by cig.log (cig-server) and relay.log (cig-relay):
//! `[Time] Module[Type]: Information`, Time in UTC as `YYYY-MM-DD HH:MM:SS.mmm`.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use cig_core::logline::{self, Level};
//!
//! let t = UNIX_EPOCH + Duration::from_millis(1_795_722_001_123);
//! assert_eq!(
//!     logline::line(t, "Call", Level::Info, format_args!("call {} routed", 7)),
//!     "[2026-11-26 19:40:01.123] Call[INFO]: call 7 routed\n"
//! );
//! ```

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// The manual's log types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Detail for troubleshooting (written only when asked for).
    Debug,
    /// Normal events.
    Info,
    /// Something went wrong; the service carries on.
    Warn,
    /// Start-up: the loaded configuration.
    Init,
}

impl Level {
    /// `DEBUG`, `INFO`, `WARN` or `INIT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Init => "INIT",
        }
    }
}

/// One log line at `now` (with the trailing newline).
pub fn line(now: SystemTime, module: &str, level: Level, info: fmt::Arguments<'_>) -> String {
    format!(
        "[{}] {module}[{}]: {info}\n",
        utc_timestamp(now),
        level.as_str()
    )
}

/// `YYYY-MM-DD HH:MM:SS.mmm` in UTC (times before 1970 print as the epoch).
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
        // 2000-02-29 23:59:59, the last second of that leap day.
        assert_eq!(at(951_868_799, 0), "2000-02-29 23:59:59.000");
        // `date -u -d @1795710713` = Thu Nov 26 16:31:53 UTC 2026.
        assert_eq!(at(1_795_710_713, 999), "2026-11-26 16:31:53.999");
        // 2100 is not a leap year.
        assert_eq!(at(4_107_542_399, 0), "2100-02-28 23:59:59.000");
        assert_eq!(
            utc_timestamp(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01 00:00:00.000"
        );
    }

    #[test]
    fn lines_have_the_manual_layout() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_722_001_123);
        for (level, name) in [
            (Level::Debug, "DEBUG"),
            (Level::Info, "INFO"),
            (Level::Warn, "WARN"),
            (Level::Init, "INIT"),
        ] {
            assert_eq!(
                line(t, "Config", level, format_args!("workers {}", 2)),
                format!("[2026-11-26 19:40:01.123] Config[{name}]: workers 2\n")
            );
        }
    }
}
