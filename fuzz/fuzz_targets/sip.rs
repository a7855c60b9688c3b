//! SIP codec: parsing never panics on any datagram; every typed view of a parsed message is
//! safe to call; the parse-once cache of a validated message agrees with a fresh parse; a valid
//! message serializes to bytes that parse back to the same message; the stream decoder fed the
//! same bytes in pieces never panics and never holds more than its caps.
#![no_main]

use bytes::{Bytes, BytesMut};
use cig_sip::message::{
    HeaderName, Headers, Message, NameAddr, NameAddrRef, Params, ParamsRef, StreamCodec,
    StreamItem, Uri, UriOf,
};
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

/// A parameter view lists the same parameters as the owned list.
fn same_params(v: ParamsRef<'_>, o: &Params) -> bool {
    v.len() == o.len()
        && v.iter()
            .zip(o.iter())
            .all(|(a, b)| a.name == &*b.name && a.value == b.value.as_deref())
}

/// A name-addr view holds what the owned value does.
fn same_name_addr(v: NameAddrRef<'_>, o: &NameAddr) {
    assert_eq!(v.display, o.display.as_deref());
    assert_eq!(v.tag(), o.tag());
    assert!(same_params(v.params, &o.params));
    match (v.uri, &o.uri) {
        (UriOf::Sip(a), Uri::Sip(b)) => {
            assert_eq!(a.secure, b.secure);
            assert_eq!(a.user, b.user.as_deref());
            assert_eq!(a.password, b.password.as_deref());
            assert_eq!(a.host.to_string(), b.host.to_string());
            assert_eq!(a.port, b.port);
            assert!(same_params(a.params, &b.params));
            assert_eq!(a.headers, b.headers.as_deref());
        }
        (UriOf::Tel(a), Uri::Tel(b)) => {
            assert_eq!(a.number, &*b.number);
            assert!(same_params(a.params, &b.params));
        }
        (UriOf::Other(a), Uri::Other(b)) => {
            assert_eq!((a.scheme, a.rest), (&*b.scheme, &*b.rest));
        }
        (a, b) => panic!("URI kinds differ: {a:?} {b:?}"),
    }
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
            fresh.push(line.name.clone(), line.value.to_owned());
        }
        assert_eq!(h.via().ok(), fresh.via().ok());
        let via = fresh.via().unwrap_or_default();
        for (v, o) in h.via_ref().unwrap().zip(&via) {
            assert_eq!(v.transport, &*o.transport);
            assert_eq!(v.host.to_string(), o.host.to_string());
            assert_eq!(v.port, o.port);
            assert_eq!(v.branch(), o.branch());
            assert!(same_params(v.params, &o.params));
        }
        assert_eq!(h.via_ref().unwrap().count(), via.len());
        assert_eq!(h.top_via().ok(), fresh.top_via().ok());
        same_name_addr(h.from_ref().unwrap(), &fresh.from().unwrap());
        same_name_addr(h.to_ref().unwrap(), &fresh.to().unwrap());
        assert_eq!(h.call_id().ok(), fresh.call_id().ok());
        assert_eq!(h.cseq_ref().ok(), fresh.cseq().ok().as_ref());
        let contacts = fresh.contacts().unwrap();
        assert_eq!(h.contacts_ref().unwrap().count(), contacts.len());
        for (c, o) in h.contacts_ref().unwrap().zip(&contacts) {
            same_name_addr(c, o);
        }
        assert_eq!(h.contact().ok(), fresh.contact().ok());
        assert_eq!(h.max_forwards().ok(), fresh.max_forwards().ok());
        assert_eq!(h.content_length().ok(), fresh.content_length().ok());
        assert_eq!(h.route().ok(), fresh.route().ok());
        assert_eq!(h.record_route().ok(), fresh.record_route().ok());
        if let Ok(route) = h.route() {
            let views: Vec<_> = h.route_ref().collect::<Result<_, _>>().unwrap();
            assert_eq!(views.len(), route.len());
            for (v, o) in views.into_iter().zip(&route) {
                same_name_addr(v, o);
            }
        } else {
            assert!(h.route_ref().any(|r| r.is_err()));
        }
        assert_eq!(h.content_type().ok(), fresh.content_type().ok());
        assert_eq!(h.allow().ok(), fresh.allow().ok());
        assert_eq!(h.require().ok(), fresh.require().ok());
        assert_eq!(h.expires().ok(), fresh.expires().ok());
        assert_eq!(h.proxy_authorization().ok(), fresh.proxy_authorization().ok());
        match h.proxy_authorization() {
            Ok(owned) => {
                let views: Vec<_> = h.proxy_authorization_ref().collect::<Result<_, _>>().unwrap();
                assert_eq!(views.len(), owned.len());
                for (v, o) in views.iter().zip(&owned) {
                    assert_eq!(v.scheme, &*o.scheme);
                    assert!(v.params().eq(o.params.iter().map(|(n, v)| (&**n, &**v))));
                }
            }
            Err(_) => assert!(h.proxy_authorization_ref().any(|r| r.is_err())),
        }
        match h.allow() {
            Ok(owned) => assert!(h.allow_ref().map(Result::unwrap).eq(owned.iter().map(|t| &**t))),
            Err(_) => assert!(h.allow_ref().any(|r| r.is_err())),
        }
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
