//! Management port (cig-mgmt): arbitrary bytes in arbitrary chunks through the capped line
//! splitter never panic and never yield a line over the cap; every line that decodes as a
//! request or reply re-encodes to a line that decodes to the same value; the server's answer
//! to any line is a reply that round-trips.
#![no_main]

use cig_mgmt::proto::{LineReader, MAX_REQUEST_LINE, Reply, Request};
use cig_mgmt::{CallRow, Provider, Status, UmsgRow};
use libfuzzer_sys::fuzz_target;

/// A server with no calls, no sessions and an all-empty status.
struct Empty;

impl Provider for Empty {
    fn calls(&self) -> Vec<CallRow> {
        Vec::new()
    }
    fn umsg(&self) -> Vec<UmsgRow> {
        Vec::new()
    }
    fn status(&self) -> Status {
        serde_json::from_str(
            r#"{"version":"0","relay":{"connected":false,"engines_available":0,"engines_total":0},
            "umsg":{"identity":"","domain":"","switch_address":"","connection":"DISCONNECTED",
            "crypto_state":"","period":""},"sip":{"bind":""}}"#,
        )
        .expect("a valid status")
    }
}

fn strip(line: &[u8]) -> &[u8] {
    &line[..line.len() - 1]
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut lines = LineReader::new(MAX_REQUEST_LINE);
    for part in rest.chunks(chunk) {
        let mut part = part;
        while !part.is_empty() {
            let Ok((used, line)) = lines.feed(part) else {
                return;
            };
            assert!(used > 0 && used <= part.len());
            part = &part[used..];
            let Some(line) = line else { continue };
            assert!(line.len() <= MAX_REQUEST_LINE);
            if let Ok(req) = Request::decode(&line) {
                assert_eq!(Request::decode(strip(&req.encode())).ok(), Some(req));
            }
            if let Ok(reply) = Reply::decode(&line) {
                assert_eq!(Reply::decode(strip(&reply.encode())).ok(), Some(reply));
            }
            let answer = cig_mgmt::server::answer(&Empty, &line);
            assert_eq!(Reply::decode(strip(&answer.encode())).ok(), Some(answer));
        }
    }
});
