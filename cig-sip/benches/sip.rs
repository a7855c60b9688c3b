//! `sip/parse_invite_typed`: a ~900-byte INVITE with SDP parsed (`Message::parse`, which
//! validates Via, From, To, Call-ID, CSeq, Max-Forwards, Content-Length and Contact and keeps
//! them as records) and every typed header the issue names read through the borrowing getters:
//! the number of Via values, the From tag, the number of To parameters, Call-ID, CSeq,
//! the number of Contact values, Max-Forwards, Route and Record-Route (every value parsed),
//! Content-Type, Content-Length, Allow/Supported/Require (every token), Expires and the four
//! auth headers (every challenge/credentials value parsed with all its parameters).
//! `sip/parse_invite_typed_owned`: the same with the getters that return owned values;
//! ezk-sip-types parses and types the same message in the same run as an anchor.
//! `sip/serialize_200ok`: a 200 OK built from that INVITE written into a reused buffer.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use cig_sip::message::{Headers, Message, Request, Response};
use criterion::{Criterion, criterion_group, criterion_main};

#[path = "../tests/support/ezk.rs"]
mod ezk;

const HEAD: &str = "INVITE sip:+442079460123@pbx.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1-a8f3c5;rport\r\n\
Via: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK77ef4c2312983.1\r\n\
Max-Forwards: 69\r\n\
Record-Route: <sip:198.51.100.7;lr>\r\n\
Route: <sip:pbx.example.com;lr>\r\n\
From: \"Alice\" <sip:alice@gw.example.net>;tag=1928301774\r\n\
To: <sip:+442079460123@pbx.example.com>\r\n\
Call-ID: a84b4c76e66710@gw.example.net\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060>;expires=3600\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE\r\n\
Supported: timer, replaces\r\n\
Require: timer\r\n\
Expires: 180\r\n\
Proxy-Authorization: Digest username=\"alice\", realm=\"pbx\", nonce=\"dcd98b71\", \
uri=\"sip:pbx.example.com\", response=\"6629fae49393a05397450978507c4ef1\"\r\n\
Content-Type: application/sdp\r\n";

const SDP: &str = "v=0\r\n\
o=cig 2890 2890 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
";

fn invite() -> Bytes {
    Bytes::from(format!("{HEAD}Content-Length: {}\r\n\r\n{SDP}", SDP.len()))
}

/// Parses and reads every typed header through the borrowing getters (the same reads as the
/// owned variant below); returns something that depends on all of them.
#[inline(never)]
fn parse_typed(wire: Bytes) -> usize {
    let Ok(Message::Request(r)) = Message::parse(wire) else {
        panic!("bench message invalid")
    };
    let h = &r.headers;
    let count = |it: &mut dyn Iterator<Item = bool>| it.filter(|ok| *ok).count();
    let mut n = r.body.len();
    n += h.via_ref().map_or(0, |v| v.count());
    n += h.from_ref().map_or(0, |f| f.tag().map_or(0, str::len));
    n += h.to_ref().map_or(0, |t| t.params.len());
    n += h.call_id().map_or(0, |c| c.len());
    n += h.cseq_ref().map_or(0, |c| c.seq as usize);
    n += h.contacts_ref().map_or(0, |c| c.count());
    n += h.max_forwards().ok().flatten().map_or(0, usize::from);
    n += count(&mut h.route_ref().map(|r| r.is_ok()));
    n += count(&mut h.record_route_ref().map(|r| r.is_ok()));
    n += h
        .content_type()
        .ok()
        .flatten()
        .map_or(0, |c| c.subtype.len());
    n += h.content_length().ok().flatten().map_or(0, |c| c as usize);
    n += count(&mut h.allow_ref().map(|t| t.is_ok()));
    n += count(&mut h.supported_ref().map(|t| t.is_ok()));
    n += count(&mut h.require_ref().map(|t| t.is_ok()));
    n += h.expires().ok().flatten().map_or(0, |e| e as usize);
    n += count(&mut h.www_authenticate_ref().map(|a| a.is_ok()));
    n += count(&mut h.proxy_authenticate_ref().map(|a| a.is_ok()));
    n += count(&mut h.authorization_ref().map(|a| a.is_ok()));
    n += count(&mut h.proxy_authorization_ref().map(|a| a.is_ok()));
    n
}

/// Parses and reads every typed header with the getters that return owned values.
#[inline(never)]
fn parse_typed_owned(wire: Bytes) -> usize {
    let Ok(Message::Request(r)) = Message::parse(wire) else {
        panic!("bench message invalid")
    };
    let h = &r.headers;
    let mut n = r.body.len();
    n += h.via().map(|v| v.len()).unwrap_or(0);
    n += h.from().map(|f| f.tag().map_or(0, str::len)).unwrap_or(0);
    n += h.to().map(|t| t.params.len()).unwrap_or(0);
    n += h.call_id().map(|c| c.len()).unwrap_or(0);
    n += h.cseq().map(|c| c.seq as usize).unwrap_or(0);
    n += h.contacts().map(|c| c.len()).unwrap_or(0);
    n + other_typed(h)
}

/// The owned typed values of the headers `validate` does not check (parsed on each call).
fn other_typed(h: &Headers) -> usize {
    let mut n = h.max_forwards().ok().flatten().map_or(0, usize::from);
    n += h.route().map(|v| v.len()).unwrap_or(0);
    n += h.record_route().map(|v| v.len()).unwrap_or(0);
    n += h
        .content_type()
        .ok()
        .flatten()
        .map_or(0, |c| c.subtype.len());
    n += h.content_length().ok().flatten().map_or(0, |c| c as usize);
    n += h.allow().map(|v| v.len()).unwrap_or(0);
    n += h.supported().map(|v| v.len()).unwrap_or(0);
    n += h.require().map(|v| v.len()).unwrap_or(0);
    n += h.expires().ok().flatten().map_or(0, |e| e as usize);
    n += h.www_authenticate().map(|v| v.len()).unwrap_or(0);
    n += h.proxy_authenticate().map(|v| v.len()).unwrap_or(0);
    n += h.authorization().map(|v| v.len()).unwrap_or(0);
    n += h.proxy_authorization().map(|v| v.len()).unwrap_or(0);
    n
}

#[inline(never)]
fn ezk_parse_typed(wire: Bytes) -> usize {
    use ezk_sip_types::Name;
    use ezk_sip_types::header::typed::{
        Allow, AuthResponse, CSeq, CallID, Contact, ContentLength, ContentType, Expires, FromTo,
        MaxForwards, Require, Routing, Supported, Via,
    };
    let m = ezk::parse(&wire).expect("ezk parses the bench message");
    let h = &m.headers;
    let mut n = m.body.len();
    n += h.get_named::<Vec<Via>>().map(|v| v.len()).unwrap_or(0);
    n += h
        .get::<FromTo>(Name::FROM)
        .map(|f| f.tag.map_or(0, |t| t.len()))
        .unwrap_or(0);
    n += h
        .get::<FromTo>(Name::TO)
        .map(|t| usize::from(t.tag.is_some()))
        .unwrap_or(0);
    n += h.get_named::<CallID>().map(|c| c.0.len()).unwrap_or(0);
    n += h.get_named::<CSeq>().map(|c| c.cseq as usize).unwrap_or(0);
    n += h.get_named::<Vec<Contact>>().map(|c| c.len()).unwrap_or(0);
    n += h
        .get_named::<MaxForwards>()
        .map(|m| m.0 as usize)
        .unwrap_or(0);
    n += h
        .get::<Vec<Routing>>(Name::ROUTE)
        .map(|v| v.len())
        .unwrap_or(0);
    n += h
        .get::<Vec<Routing>>(Name::RECORD_ROUTE)
        .map(|v| v.len())
        .unwrap_or(0);
    n += h.get_named::<ContentType>().map(|c| c.0.len()).unwrap_or(0);
    n += h.get_named::<ContentLength>().map(|c| c.0).unwrap_or(0);
    n += h.get_named::<Vec<Allow>>().map(|v| v.len()).unwrap_or(0);
    n += h
        .get_named::<Vec<Supported>>()
        .map(|v| v.len())
        .unwrap_or(0);
    n += h.get_named::<Vec<Require>>().map(|v| v.len()).unwrap_or(0);
    n += h.get_named::<Expires>().map(|e| e.0 as usize).unwrap_or(0);
    n += h
        .get::<AuthResponse>(Name::PROXY_AUTHORIZATION)
        .map(|_| 1)
        .unwrap_or(0);
    n
}

fn benches(c: &mut Criterion) {
    let wire = invite();
    assert!(
        (850..=950).contains(&wire.len()),
        "INVITE is {} bytes",
        wire.len()
    );
    let mut g = c.benchmark_group("sip");
    g.bench_function("parse_invite_typed", |b| {
        b.iter(|| parse_typed(black_box(wire.clone())))
    });
    g.bench_function("parse_invite_typed_owned", |b| {
        b.iter(|| parse_typed_owned(black_box(wire.clone())))
    });
    g.bench_function("parse_invite_typed_ezk", |b| {
        b.iter(|| ezk_parse_typed(black_box(wire.clone())))
    });
    let req = Request::parse(wire.clone()).unwrap();
    let mut ok = Response::from_request(&req, 200, "OK");
    ok.headers.set_to_tag("a6c85cf").unwrap();
    ok.headers.push(
        cig_sip::message::HeaderName::Contact,
        "<sip:gw@192.0.2.1:5060>",
    );
    ok.set_body("application/sdp", req.body.clone());
    let mut buf = BytesMut::with_capacity(2048);
    g.bench_function("serialize_200ok", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&ok).encode(&mut buf);
            black_box(buf.len())
        })
    });
    g.finish();
}

criterion_group!(sip, benches);
criterion_main!(sip);
