//! The manual's log line formats: cig.log `[Time] Module[Type]: Information` and session.log
//! `Header, Time, Caller, Callee, Routed-Caller, Routed-Callee, State, Caller-if-ID,
//! Callee-if-ID`, times in UTC.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// The manual's cig.log types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Detail for troubleshooting.
    Debug,
    /// Normal events.
    Info,
    /// Something went wrong; the gateway carries on.
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

/// One cig.log line (with the trailing newline).
pub fn log_line(now: SystemTime, module: &str, level: Level, info: fmt::Arguments<'_>) -> String {
    format!(
        "[{}] {module}[{}]: {info}\n",
        utc_timestamp(now),
        level.as_str()
    )
}

/// session.log states (the manual's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Trying to match using the rules in cig.conf.
    Routing,
    /// Found a match.
    Routed,
    /// No matching rule.
    Failed,
    /// "Trying" received from the callee domain.
    Trying,
    /// "Ringing" received from the callee domain.
    Ringing,
    /// The parties are talking.
    Talk,
    /// One party ended the call.
    Hangup,
}

impl SessionState {
    /// The manual's lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Routing => "routing",
            SessionState::Routed => "routed",
            SessionState::Failed => "failed",
            SessionState::Trying => "trying",
            SessionState::Ringing => "ringing",
            SessionState::Talk => "talk",
            SessionState::Hangup => "hangup",
        }
    }
}

/// The fields of one session.log event; empty strings for what is not known yet.
#[derive(Debug, Clone, Copy)]
pub struct SessionEvent<'a> {
    /// Caller in the caller's domain.
    pub caller: &'a str,
    /// Callee in the caller's domain.
    pub callee: &'a str,
    /// Caller in the callee's domain.
    pub routed_caller: &'a str,
    /// Callee in the callee's domain.
    pub routed_callee: &'a str,
    /// State.
    pub state: SessionState,
    /// Session id on the caller's interface.
    pub caller_if_id: &'a str,
    /// Session id on the callee's interface.
    pub callee_if_id: &'a str,
}

/// The Header field of every session.log line.
pub const SESSION_HEADER: &str = "event";

/// One session.log line (with the trailing newline):
/// `event, 2026-11-26 19:40:01.123, sip:101@pbx.com, …, routed, sip/1, `.
pub fn session_line(now: SystemTime, e: &SessionEvent<'_>) -> String {
    format!(
        "{SESSION_HEADER}, {}, {}, {}, {}, {}, {}, {}, {}\n",
        utc_timestamp(now),
        e.caller,
        e.callee,
        e.routed_caller,
        e.routed_callee,
        e.state.as_str(),
        e.caller_if_id,
        e.callee_if_id
    )
}

/// `YYYY-MM-DD HH:MM:SS.mmm` in UTC (the same form relay.log uses).
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
    fn lines_have_the_manual_layout() {
        // 2026-11-26 19:40:01.123 UTC
        let t = UNIX_EPOCH + Duration::from_millis(1_795_722_001_123);
        assert_eq!(
            log_line(t, "Call", Level::Info, format_args!("x")),
            "[2026-11-26 19:40:01.123] Call[INFO]: x\n"
        );
        let e = SessionEvent {
            caller: "sip:101@pbx.com",
            callee: "sip:94670123456@secure.com",
            routed_caller: "tel:+8888;101",
            routed_callee: "tel:+4670123456",
            state: SessionState::Routed,
            caller_if_id: "sip/1",
            callee_if_id: "",
        };
        assert_eq!(
            session_line(t, &e),
            "event, 2026-11-26 19:40:01.123, sip:101@pbx.com, sip:94670123456@secure.com, \
             tel:+8888;101, tel:+4670123456, routed, sip/1, \n"
        );
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01 00:00:00.000");
        // 2000-02-29 (leap day) 23:59:59
        let leap = UNIX_EPOCH + Duration::from_secs(951_868_799);
        assert_eq!(utc_timestamp(leap), "2000-02-29 23:59:59.000");
    }
}
