//! SIP codec: parsing never panics on any datagram; every typed view of a parsed message is
//! safe to call; the parse-once cache of a validated message agrees with a fresh parse; a valid
//! message serializes to bytes that parse back to the same message; the stream decoder fed the
//! same bytes in pieces never panics and never holds more than its caps.
#![no_main]

use bytes::{Bytes, BytesMut};
use cig_sip::message::{HeaderName, Headers, Message, StreamCodec, StreamItem};
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
        // The parse-once cache and the index of known names answer exactly what a fresh
        // parse of the same lines pushed one by one (no cache, no index) does.
        let h = m.headers();
        let mut fresh = Headers::new();
        for line in h.iter() {
            fresh.push(line.name.clone(), line.value.clone());
        }
        assert_eq!(h.via().ok(), fresh.via().ok());
        assert_eq!(h.via_ref().ok(), fresh.via().ok().as_deref());
        assert_eq!(h.top_via().ok(), fresh.top_via().ok());
        assert_eq!(h.from_ref().ok(), fresh.from().ok().as_ref());
        assert_eq!(h.to_ref().ok(), fresh.to().ok().as_ref());
        assert_eq!(h.call_id().ok(), fresh.call_id().ok());
        assert_eq!(h.cseq_ref().ok(), fresh.cseq().ok().as_ref());
        assert_eq!(h.contacts_ref().ok(), fresh.contacts().ok().as_deref());
        assert_eq!(h.contact().ok(), fresh.contact().ok());
        assert_eq!(h.max_forwards().ok(), fresh.max_forwards().ok());
        assert_eq!(h.content_length().ok(), fresh.content_length().ok());
        assert_eq!(h.route().ok(), fresh.route().ok());
        assert_eq!(h.record_route().ok(), fresh.record_route().ok());
        assert_eq!(h.content_type().ok(), fresh.content_type().ok());
        assert_eq!(h.allow().ok(), fresh.allow().ok());
        assert_eq!(h.require().ok(), fresh.require().ok());
        assert_eq!(h.expires().ok(), fresh.expires().ok());
        assert_eq!(h.proxy_authorization().ok(), fresh.proxy_authorization().ok());
        for line in h.iter() {
            assert!(h.get_all(&line.name).eq(fresh.get_all(&line.name)));
        }
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
