//! The wire protocol, sans IO: one JSON object per `\n`-terminated line each way
//! (docs/mgmt.md). Owns the request and reply types, their encoding and decoding, the line
//! length caps and [`LineReader`], the capped line splitter both server and client feed.

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::types::{CallRow, Status, UmsgRow};

/// The protocol version this crate speaks (`"v"` in every line).
pub const VERSION: u32 = 1;

/// The longest request line a server accepts, without the `\n`.
pub const MAX_REQUEST_LINE: usize = 4096;

/// The longest reply line a client accepts, without the `\n`.
pub const MAX_REPLY_LINE: usize = 16 * 1024 * 1024;

/// The longest `echo` text (so that the echoed reply stays within a request's size).
pub const MAX_ECHO: usize = 1024;

/// A request from the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// `show call`.
    Calls,
    /// `show umsg`.
    Umsg,
    /// `status`.
    Status,
    /// `echo TEXT`: the server sends the text back.
    Echo {
        /// The text (at most [`MAX_ECHO`] bytes).
        text: String,
    },
}

/// A reply from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "lowercase")]
pub enum Reply {
    /// The `show call` rows.
    Calls {
        /// Rows in print order.
        calls: Vec<CallRow>,
    },
    /// The `show umsg` rows.
    Umsg {
        /// Rows in print order.
        umsg: Vec<UmsgRow>,
    },
    /// The `status` overview.
    Status {
        /// The overview.
        status: Status,
    },
    /// The echoed text.
    Echo {
        /// The request's text.
        text: String,
    },
    /// The request could not be served.
    Error {
        /// Why, for a person.
        message: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Line<T> {
    v: u32,
    #[serde(flatten)]
    body: T,
}

fn encode<T: Serialize>(body: &T) -> Vec<u8> {
    // Serialising these plain structs to JSON cannot fail (string keys, no maps with
    // non-string keys, no custom serialisers).
    let mut out = serde_json::to_vec(&Line { v: VERSION, body }).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The peer's protocol version, checked before the body is interpreted, so that a newer
/// peer gets "unsupported version" rather than "unknown op".
fn decode<T: for<'de> Deserialize<'de>>(line: &[u8]) -> Result<T, Error> {
    #[derive(Deserialize)]
    struct V {
        v: u32,
    }
    let v: V = serde_json::from_slice(line).map_err(|e| Error::Protocol(e.to_string()))?;
    if v.v != VERSION {
        return Err(Error::Version(v.v));
    }
    let l: Line<T> = serde_json::from_slice(line).map_err(|e| Error::Protocol(e.to_string()))?;
    Ok(l.body)
}

impl Request {
    /// The request as one line, `\n` included.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Parses one request line (without the `\n`).
    pub fn decode(line: &[u8]) -> Result<Request, Error> {
        let r: Request = decode(line)?;
        if let Request::Echo { text } = &r
            && text.len() > MAX_ECHO
        {
            return Err(Error::Protocol(format!(
                "echo text of {} bytes (at most {MAX_ECHO})",
                text.len()
            )));
        }
        Ok(r)
    }
}

impl Reply {
    /// The reply as one line, `\n` included.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Parses one reply line (without the `\n`).
    pub fn decode(line: &[u8]) -> Result<Reply, Error> {
        decode(line)
    }
}

/// Splits a byte stream into lines of at most `max` bytes. Feed it what the socket has
/// buffered; it says how much it consumed and returns a line when one is complete.
#[derive(Debug)]
pub struct LineReader {
    buf: Vec<u8>,
    max: usize,
}

impl LineReader {
    /// A reader accepting lines of at most `max` bytes (the `\n` not counted).
    pub fn new(max: usize) -> LineReader {
        LineReader {
            buf: Vec::new(),
            max,
        }
    }

    /// Takes bytes from `data` up to and including the first `\n`. Returns how many bytes
    /// were consumed and, when a `\n` was among them, the line before it (a trailing `\r`
    /// removed). Fails with [`Error::LineTooLong`] once the line exceeds the cap; the reader
    /// must not be used after that (the stream has lost its framing).
    pub fn feed(&mut self, data: &[u8]) -> Result<(usize, Option<Vec<u8>>), Error> {
        let (taken, done) = match data.iter().position(|&b| b == b'\n') {
            Some(i) => (&data[..i], true),
            None => (data, false),
        };
        if self.buf.len() + taken.len() > self.max {
            return Err(Error::LineTooLong { max: self.max });
        }
        self.buf.extend_from_slice(taken);
        if !done {
            return Ok((data.len(), None));
        }
        let mut line = std::mem::take(&mut self.buf);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok((taken.len() + 1, Some(line)))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{Just, any};

    use super::*;
    use crate::types::CallState;

    #[test]
    fn request_wire_form_is_the_documented_one() {
        assert_eq!(Request::Calls.encode(), b"{\"v\":1,\"op\":\"calls\"}\n");
        assert_eq!(
            Request::Echo { text: "hi".into() }.encode(),
            b"{\"v\":1,\"op\":\"echo\",\"text\":\"hi\"}\n"
        );
        for r in [
            Request::Calls,
            Request::Umsg,
            Request::Status,
            Request::Echo { text: "a b".into() },
        ] {
            let line = r.encode();
            assert_eq!(Request::decode(&line[..line.len() - 1]).unwrap(), r);
        }
    }

    #[test]
    fn reply_wire_form_is_the_documented_one() {
        let r = Reply::Calls {
            calls: vec![CallRow {
                in_from: "a".into(),
                in_to: "b".into(),
                out_from: "c".into(),
                out_to: "d".into(),
                state: CallState::Answer,
            }],
        };
        let line = r.encode();
        assert_eq!(
            line,
            b"{\"v\":1,\"reply\":\"calls\",\"calls\":[{\"in_from\":\"a\",\"in_to\":\"b\",\"out_from\":\"c\",\"out_to\":\"d\",\"state\":\"ANSWER\"}]}\n"
        );
        assert_eq!(Reply::decode(&line[..line.len() - 1]).unwrap(), r);
        let e = Reply::Error {
            message: "x".into(),
        };
        assert_eq!(
            e.encode(),
            b"{\"v\":1,\"reply\":\"error\",\"message\":\"x\"}\n"
        );
    }

    #[test]
    fn bad_requests_are_errors_not_panics() {
        assert!(matches!(
            Request::decode(b"{\"v\":2,\"op\":\"calls\"}"),
            Err(Error::Version(2))
        ));
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            b"{\"op\":\"calls\"}",
            b"{\"v\":1}",
            b"{\"v\":1,\"op\":\"reboot\"}",
            b"{\"v\":1,\"op\":\"echo\"}",
            b"{\"v\":-1,\"op\":\"calls\"}",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(Request::decode(bad), Err(Error::Protocol(_))),
                "{bad:?}"
            );
        }
        let long = Request::Echo {
            text: "x".repeat(MAX_ECHO + 1),
        }
        .encode();
        assert!(matches!(
            Request::decode(&long[..long.len() - 1]),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn line_reader_splits_joins_and_caps() {
        let mut r = LineReader::new(8);
        assert_eq!(r.feed(b"abc").unwrap(), (3, None));
        assert_eq!(r.feed(b"de\r\nfg\n").unwrap(), (4, Some(b"abcde".to_vec())));
        assert_eq!(r.feed(b"fg\n").unwrap(), (3, Some(b"fg".to_vec())));
        assert_eq!(
            r.feed(b"12345678\n").unwrap(),
            (9, Some(b"12345678".to_vec()))
        );
        assert!(matches!(
            r.feed(b"123456789"),
            Err(Error::LineTooLong { max: 8 })
        ));
        let mut r = LineReader::new(8);
        r.feed(b"12345").unwrap();
        assert!(matches!(r.feed(b"6789\n"), Err(Error::LineTooLong { .. })));
    }

    proptest::proptest! {
        /// Fed in any chunking, the reader yields exactly the lines a plain split gives
        /// (up to the last `\n`), and fails only when one of them is over the cap.
        #[test]
        fn line_reader_matches_a_plain_split(
            data in proptest::collection::vec(
                proptest::prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..200),
            cuts in proptest::collection::vec(1usize..20, 1..20),
            max in 0usize..16,
        ) {
            let complete = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let want: Vec<Vec<u8>> = data[..complete]
                .split(|&b| b == b'\n')
                .take(data[..complete].iter().filter(|&&b| b == b'\n').count())
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
                .collect();
            // The reader checks the cap before stripping `\r`.
            let too_long = data[..complete]
                .split(|&b| b == b'\n')
                .any(|l| l.len() > max)
                || data[complete..].len() > max;
            let mut r = LineReader::new(max);
            let mut got = Vec::new();
            let mut failed = false;
            let mut rest = data.as_slice();
            let mut i = 0;
            'outer: while !rest.is_empty() {
                let n = cuts[i % cuts.len()].min(rest.len());
                i += 1;
                let mut part = &rest[..n];
                rest = &rest[n..];
                while !part.is_empty() {
                    match r.feed(part) {
                        Ok((used, line)) => {
                            part = &part[used..];
                            got.extend(line);
                        }
                        Err(Error::LineTooLong { .. }) => {
                            failed = true;
                            break 'outer;
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            proptest::prop_assert_eq!(failed, too_long);
            if !failed {
                proptest::prop_assert_eq!(got, want);
            }
        }
    }
}
