//! The manual's log line formats: session.log `Header, Time, Caller, Callee, Routed-Caller,
//! Routed-Callee, State, Caller-if-ID, Callee-if-ID`, times in UTC; cig.log's
//! `[Time] Module[Type]: Information` is [`cig_core::logline`], re-exported here.

use std::time::SystemTime;

/// The cig.log line and its parts live in cig-core (relay.log uses the same format).
pub use cig_core::logline::{Level, line as log_line, utc_timestamp};

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

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
    }
}
