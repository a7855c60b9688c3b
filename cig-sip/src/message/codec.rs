//! Stream framing (TCP/TLS) as a `tokio_util::codec` decoder/encoder.
//!
//! Every message must carry Content-Length. The header section and the body are capped; a
//! message that breaks a rule is consumed and reported as [`StreamItem::Invalid`] so the
//! connection neither stalls nor buffers without bound. A body over the cap is skipped as it
//! arrives, never stored.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::{Message, parse, parse_head_of};
use crate::Error;

/// Default cap on the header section (start line through the blank line).
pub const DEFAULT_MAX_HEADER: usize = 16 * 1024;
/// Default cap on the body.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// What the stream decoder yields.
#[derive(Debug)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // Moved once per message; boxing would cost an allocation.
pub enum StreamItem {
    /// A complete, valid message.
    Message(Message),
    /// A CRLF CRLF keep-alive ping (RFC 5626 §3.5.1); answer with a single CRLF.
    KeepAlive,
    /// Octets that were consumed without yielding a valid message.
    Invalid {
        /// Why.
        error: Error,
        /// How many octets were (or, for an oversized body, will be) discarded.
        discarded: usize,
        /// The message when it was framed and parsed but failed validation: a UAS answers it
        /// with `error.status_code()`.
        message: Option<Box<Message>>,
    },
}

/// SIP stream decoder and encoder.
#[derive(Debug, Clone)]
pub struct StreamCodec {
    max_header: usize,
    max_body: usize,
    /// Body octets still to drop after an oversized message was reported.
    skip: usize,
    /// Dropping input up to the next CRLF CRLF after an oversized header section.
    resync: bool,
    /// A parsed header section waiting for its body: (message, header length, body length).
    pending: Option<(Message, usize, usize)>,
}

impl Default for StreamCodec {
    fn default() -> Self {
        StreamCodec::new(DEFAULT_MAX_HEADER, DEFAULT_MAX_BODY)
    }
}

impl StreamCodec {
    /// A codec with the given caps (in octets).
    pub fn new(max_header: usize, max_body: usize) -> StreamCodec {
        StreamCodec {
            max_header: max_header.max(64),
            max_body,
            skip: 0,
            resync: false,
            pending: None,
        }
    }

    fn invalid(error: Error, discarded: usize) -> StreamItem {
        StreamItem::Invalid {
            error,
            discarded,
            message: None,
        }
    }
}

impl Decoder for StreamCodec {
    type Item = StreamItem;
    type Error = Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<StreamItem>, Error> {
        if self.skip > 0 {
            let n = self.skip.min(buf.len());
            buf.advance(n);
            self.skip -= n;
            if self.skip > 0 {
                return Ok(None);
            }
        }
        if self.resync {
            match parse::head_end(buf) {
                Some(end) => {
                    buf.advance(end);
                    self.resync = false;
                }
                None => {
                    // Keep the last 3 octets: they may begin the CRLF CRLF.
                    buf.advance(buf.len().saturating_sub(3));
                    return Ok(None);
                }
            }
        }
        if self.pending.is_none() {
            match parse::leading_crlf(buf) {
                0 => {}
                2 if buf.len() == 2 || &buf[..] == b"\r\n\r" => return Ok(None),
                2 => buf.advance(2),
                _ => {
                    buf.advance(4);
                    return Ok(Some(StreamItem::KeepAlive));
                }
            }
            if buf.is_empty() {
                return Ok(None);
            }
            let window = &buf[..buf.len().min(self.max_header + 1)];
            let Some(head_len) = parse::head_end(window) else {
                if buf.len() > self.max_header {
                    let n = buf.len() - 3;
                    buf.advance(n);
                    self.resync = true;
                    return Ok(Some(StreamCodec::invalid(
                        Error::HeadersTooLarge(self.max_header),
                        n,
                    )));
                }
                return Ok(None);
            };
            let head = buf.split_to(head_len).freeze();
            let msg = match parse_head_of(&head, false) {
                Ok((msg, _)) => msg,
                Err(e) => return Ok(Some(StreamCodec::invalid(e, head_len))),
            };
            let len = match msg.headers().content_length() {
                Ok(Some(n)) => n as usize,
                Ok(None) => {
                    return Ok(Some(StreamCodec::invalid(
                        Error::MissingContentLength,
                        head_len,
                    )));
                }
                Err(e) => return Ok(Some(StreamCodec::invalid(e, head_len))),
            };
            if len > self.max_body {
                let n = len.min(buf.len());
                buf.advance(n);
                self.skip = len - n;
                let error = Error::BodyTooLarge(self.max_body);
                return Ok(Some(StreamCodec::invalid(error, head_len + len)));
            }
            self.pending = Some((msg, head_len, len));
        }
        let Some((_, _, len)) = &self.pending else {
            return Ok(None);
        };
        if buf.len() < *len {
            buf.reserve(*len - buf.len());
            return Ok(None);
        }
        let Some((mut msg, head_len, len)) = self.pending.take() else {
            return Ok(None);
        };
        *msg.body_mut() = buf.split_to(len).freeze();
        match msg.validate() {
            Ok(()) => Ok(Some(StreamItem::Message(msg))),
            Err(error) => Ok(Some(StreamItem::Invalid {
                error,
                discarded: head_len + len,
                message: Some(Box::new(msg)),
            })),
        }
    }
}

impl Encoder<&Message> for StreamCodec {
    type Error = Error;

    fn encode(&mut self, msg: &Message, dst: &mut BytesMut) -> Result<(), Error> {
        msg.encode(dst);
        Ok(())
    }
}

impl Encoder<Message> for StreamCodec {
    type Error = Error;

    fn encode(&mut self, msg: Message, dst: &mut BytesMut) -> Result<(), Error> {
        msg.encode(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] =
        b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
From: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n\
Max-Forwards: 70\r\nContent-Length: 3\r\n\r\nabc";

    fn drain(codec: &mut StreamCodec, buf: &mut BytesMut) -> Vec<StreamItem> {
        let mut out = Vec::new();
        while let Some(item) = codec.decode(buf).unwrap() {
            out.push(item);
        }
        out
    }

    #[test]
    fn byte_by_byte_and_pipelined() {
        let mut codec = StreamCodec::default();
        let mut buf = BytesMut::new();
        let mut items = Vec::new();
        let mut input = OPTIONS.to_vec();
        input.extend_from_slice(b"\r\n\r\n");
        input.extend_from_slice(OPTIONS);
        for b in input {
            buf.extend_from_slice(&[b]);
            items.extend(drain(&mut codec, &mut buf));
        }
        assert_eq!(items.len(), 3);
        assert!(matches!(&items[0], StreamItem::Message(m) if &m.body()[..] == b"abc"));
        assert!(matches!(items[1], StreamItem::KeepAlive));
        assert!(matches!(&items[2], StreamItem::Message(_)));
        assert!(buf.is_empty());
    }

    #[test]
    fn garbage_and_missing_length_are_consumed() {
        let mut codec = StreamCodec::default();
        let mut buf = BytesMut::from(&b"garbage garbage\r\n\r\n"[..]);
        let no_cl = String::from_utf8_lossy(OPTIONS).replace("Content-Length: 3\r\n", "");
        buf.extend_from_slice(no_cl.trim_end_matches("abc").as_bytes());
        buf.extend_from_slice(b"\n\r\r\n\r\n");
        buf.extend_from_slice(OPTIONS);
        let items = drain(&mut codec, &mut buf);
        assert_eq!(items.len(), 4, "{items:?}");
        assert!(matches!(
            &items[0],
            StreamItem::Invalid {
                error: Error::StartLine(_),
                discarded: 19,
                ..
            }
        ));
        assert!(matches!(
            &items[1],
            StreamItem::Invalid {
                error: Error::MissingContentLength,
                ..
            }
        ));
        assert!(matches!(
            &items[2],
            StreamItem::Invalid { discarded: 6, .. }
        ));
        assert!(matches!(&items[3], StreamItem::Message(_)));
        assert!(buf.is_empty());
    }

    #[test]
    fn caps_bound_the_buffer() {
        let mut codec = StreamCodec::new(256, 16);
        let mut buf = BytesMut::new();
        let mut reported = 0;
        for _ in 0..100 {
            buf.extend_from_slice(&[b'x'; 100]);
            for item in drain(&mut codec, &mut buf) {
                assert!(matches!(
                    item,
                    StreamItem::Invalid {
                        error: Error::HeadersTooLarge(256),
                        ..
                    }
                ));
                reported += 1;
            }
            assert!(buf.len() <= 260);
        }
        assert!(reported >= 1);
        buf.extend_from_slice(b"\r\n\r\n");
        assert!(drain(&mut codec, &mut buf).is_empty());
        let big =
            String::from_utf8_lossy(OPTIONS).replace("Content-Length: 3", "Content-Length: 1000");
        buf.extend_from_slice(big.as_bytes());
        let items = drain(&mut codec, &mut buf);
        assert!(matches!(
            &items[..],
            [StreamItem::Invalid {
                error: Error::BodyTooLarge(16),
                ..
            }]
        ));
        buf.extend_from_slice(&[b'y'; 997]);
        assert!(drain(&mut codec, &mut buf).is_empty());
        buf.extend_from_slice(OPTIONS);
        assert!(matches!(
            &drain(&mut codec, &mut buf)[..],
            [StreamItem::Message(_)]
        ));
    }
}
