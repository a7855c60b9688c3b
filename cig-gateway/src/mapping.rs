//! Outcome mapping between the two domains (docs/calls.md): SIP final statuses ↔ UMSG HANGUP
//! reasons.

use cig_umsg::call::HangupReason;

/// The UMSG HANGUP reason for a SIP final status of our INVITE towards the PBX.
///
/// 486/600 busy, 603/403 declined, 480/410/404/484 unavailable, 408 (and our own timeout)
/// no answer; 487 (the request was cancelled) normal clearing; anything else error.
pub fn reason_for_status(status: u16) -> HangupReason {
    match status {
        486 | 600 => HangupReason::Busy,
        603 | 403 => HangupReason::Declined,
        480 | 410 | 404 | 484 => HangupReason::Unavailable,
        408 => HangupReason::Timeout,
        487 => HangupReason::Normal,
        _ => HangupReason::Error,
    }
}

/// The SIP final status to answer an unanswered incoming INVITE with when the secure side ends
/// the call with `reason`.
///
/// busy 486, declined 603, unavailable 480, no route 404, timeout 408, error 500; a normal
/// clearing before answer (the secure callee hung up while ringing) is 603 Decline.
pub fn status_for_reason(reason: HangupReason) -> u16 {
    match reason {
        HangupReason::Busy => 486,
        HangupReason::Declined | HangupReason::Normal => 603,
        HangupReason::Unavailable => 480,
        HangupReason::NoRoute => 404,
        HangupReason::Timeout => 408,
        HangupReason::Error => 500,
    }
}

/// The manual's name of a reason, for logs.
pub fn reason_name(reason: HangupReason) -> &'static str {
    match reason {
        HangupReason::Normal => "normal",
        HangupReason::Busy => "busy",
        HangupReason::Declined => "declined",
        HangupReason::NoRoute => "no route",
        HangupReason::Unavailable => "unavailable",
        HangupReason::Timeout => "timeout",
        HangupReason::Error => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_pairs_map_both_ways() {
        for (status, reason) in [
            (486, HangupReason::Busy),
            (603, HangupReason::Declined),
            (480, HangupReason::Unavailable),
            (408, HangupReason::Timeout),
            (500, HangupReason::Error),
        ] {
            assert_eq!(reason_for_status(status), reason, "{status}");
            assert_eq!(status_for_reason(reason), status, "{reason:?}");
        }
        assert_eq!(status_for_reason(HangupReason::NoRoute), 404);
        assert_eq!(reason_for_status(503), HangupReason::Error);
        assert_eq!(reason_for_status(487), HangupReason::Normal);
    }
}
