//! SIP codec: parsing never panics on any datagram; every typed view of a parsed message is
//! safe to call; a valid message serializes to bytes that parse back to the same message; the
//! stream decoder fed the same bytes in pieces never panics and never holds more than its caps.
#![no_main]

use bytes::{Bytes, BytesMut};
use cig_sip::message::{HeaderName, Message, StreamCodec, StreamItem};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fn touch(m: &Message) {
    let h = m.headers();
    let _ = (
        h.via(),
        h.top_via(),
        h.from(),
        h.to(),
        h.call_id(),
        h.cseq(),
        h.contacts(),
    );
    let _ = (
        h.max_forwards(),
        h.expires(),
        h.content_length(),
        h.content_type(),
        h.accept(),
    );
    let _ = (
        h.route(),
        h.record_route(),
        h.allow(),
        h.supported(),
        h.require(),
    );
    let _ = (
        h.www_authenticate(),
        h.proxy_authenticate(),
        h.authorization(),
    );
    let _ = h.proxy_authorization();
}

fuzz_target!(|data: &[u8]| {
    let wire = Bytes::copy_from_slice(data);
    if let Ok(m) = Message::parse_unvalidated(wire.clone()) {
        touch(&m);
    }
    if let Ok(m) = Message::parse(wire) {
        let again = Message::parse(m.to_bytes())
            .unwrap_or_else(|e| panic!("serialized message does not parse: {e}\n{m:?}"));
        let strip = |m: &Message| {
            let mut h = m.headers().clone();
            h.remove(&HeaderName::ContentLength);
            h
        };
        assert_eq!(strip(&m), strip(&again));
        assert_eq!(m.body(), again.body());
    }
    let (max_header, max_body) = (512, 512);
    let mut codec = StreamCodec::new(max_header, max_body);
    let mut buf = BytesMut::new();
    for chunk in data.chunks(7) {
        buf.extend_from_slice(chunk);
        while let Ok(Some(item)) = codec.decode(&mut buf) {
            if let StreamItem::Message(m) = item {
                touch(&m);
            }
        }
        assert!(
            buf.len() <= max_header + max_body + 8,
            "buffer grew to {}",
            buf.len()
        );
    }
});
