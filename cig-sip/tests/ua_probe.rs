//! One cig-sip user agent on a virtual clock ([`Probe`]) against a hand-written peer: a
//! forking proxy, a PBX that challenges in-dialog requests and MESSAGEs (its digest check is an
//! independent implementation here, straight from RFC 7616 §3.4.1), a caller with a delayed
//! offer, and the MESSAGE server transaction's timers.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cig_sip::digest::Credentials;
use cig_sip::message::{HeaderName, Message, NameAddr, Request, Response, Uri, reason_phrase};
use cig_sip::sdp::{self, AudioCapabilities};
use cig_sip::sim::Probe;
use cig_sip::transaction::{Transmit, Transport};
use cig_sip::ua::{
    CallHandle, EndReason, Event, MessageHandle, OutgoingCall, OutgoingMessage, Target, UaConfig,
    UserAgent,
};
use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

const GW: &str = "192.0.2.1:5060";
const PBX: &str = "192.0.2.2:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn probe(messaging: bool) -> Probe {
    let mut c = UaConfig::new(addr(GW));
    c.messaging = messaging;
    Probe::new(UserAgent::new(c, 11))
}

fn offer_sdp(port: u16) -> Bytes {
    let caps = AudioCapabilities::new("192.0.2.99".parse().unwrap(), port);
    Bytes::from(sdp::offer(&caps, 1, 1).to_bytes())
}

fn requests(sent: &[Transmit]) -> Vec<(SocketAddr, Request)> {
    sent.iter()
        .filter_map(|t| match Message::parse(t.payload.clone()).unwrap() {
            Message::Request(r) => Some((t.destination, r)),
            Message::Response(_) => None,
        })
        .collect()
}

fn responses(sent: &[Transmit]) -> Vec<Response> {
    sent.iter()
        .filter_map(|t| match Message::parse(t.payload.clone()).unwrap() {
            Message::Response(r) => Some(r),
            Message::Request(_) => None,
        })
        .collect()
}

fn only_request(p: &mut Probe, method: &str) -> Request {
    let sent = p.sent();
    let reqs = requests(&sent);
    assert_eq!(reqs.len(), 1, "{sent:?}");
    let r = reqs[0].1.clone();
    assert_eq!(r.method.as_str(), method);
    r
}

/// The peer's response to `req` with To tag `tag`, extra header lines and an optional body.
fn reply(
    req: &Request,
    status: u16,
    tag: &str,
    extra: &[(HeaderName, String)],
    sdp: &[u8],
) -> Bytes {
    let mut r = Response::from_request(req, status, reason_phrase(status));
    if !tag.is_empty() {
        r.headers.set_to_tag(tag).unwrap();
    }
    for (n, v) in extra {
        r.headers.push(n.clone(), v.clone());
    }
    if !sdp.is_empty() {
        r.set_body("application/sdp", Bytes::copy_from_slice(sdp));
    }
    r.to_bytes()
}

fn contact(uri: &str) -> (HeaderName, String) {
    (HeaderName::Contact, format!("<{uri}>"))
}

fn to_tag(r: &Request) -> String {
    r.headers.to().unwrap().tag().unwrap_or_default().to_owned()
}

fn cseq(r: &Request) -> u32 {
    r.headers.cseq().unwrap().seq
}

/// The gateway calls `sip:101@PBX` with `sdp` as the offer (credentials `gateway` /
/// `s3cret`). Returns the call and the INVITE sent.
fn place(p: &mut Probe, sdp: Bytes) -> (CallHandle, Request) {
    let uri = Uri::parse(format!("sip:101@{PBX}")).unwrap();
    let call = p.with(|ua, now| {
        ua.place_call(
            OutgoingCall {
                target: Target {
                    uri: uri.clone(),
                    destination: addr(PBX),
                    transport: Transport::Udp,
                },
                from: NameAddr::new(Uri::parse(format!("sip:gw@{GW}")).unwrap()),
                to: NameAddr::new(uri),
                sdp,
                credentials: Some(Credentials::new("gateway", "s3cret")),
            },
            now,
        )
    });
    (call, only_request(p, "INVITE"))
}

/// The gateway calls the PBX; the PBX answers 200 with tag `pbx` at once. Returns the call and
/// the INVITE.
fn established_call(p: &mut Probe) -> (CallHandle, Request) {
    let (call, invite) = place(p, offer_sdp(4000));
    p.receive(
        reply(
            &invite,
            200,
            "pbx",
            &[contact(&format!("sip:pbx@{PBX}"))],
            &offer_sdp(6000),
        ),
        addr(PBX),
        Transport::Udp,
    );
    let ack = only_request(p, "ACK");
    assert_eq!(to_tag(&ack), "pbx");
    assert!(p.events.iter().any(|e| matches!(e, Event::Answered { .. })));
    (call, invite)
}

// ----- Call-ID ---------------------------------------------------------------------------------

#[test]
fn call_id_of_placed_and_incoming_calls_is_exposed_while_they_live() {
    let mut p = probe(false);
    let (placed, invite) = established_call(&mut p);
    let sent_id = invite.headers.call_id().unwrap().to_string();
    assert!(sent_id.ends_with("@192.0.2.1"), "{sent_id}");
    assert_eq!(p.ua.call_id(placed), Some(sent_id.as_str()));
    let incoming = incoming_call(&mut p, &offer_sdp(6000));
    assert_ne!(p.ua.call_id(incoming), p.ua.call_id(placed));
    p.with(|ua, now| ua.hangup(incoming, now)).unwrap();
    assert_eq!(p.ua.call_id(incoming), None);
    assert_eq!(p.ua.call_id(placed), Some(sent_id.as_str()));
}

// ----- forking ---------------------------------------------------------------------------------

#[test]
fn forked_2xx_are_acked_and_sent_bye_the_call_stays_on_the_first_dialog() {
    let mut p = probe(false);
    let uri = Uri::parse(format!("sip:101@{PBX}")).unwrap();
    let call = p.with(|ua, now| {
        ua.place_call(
            OutgoingCall {
                target: Target {
                    uri: uri.clone(),
                    destination: addr(PBX),
                    transport: Transport::Udp,
                },
                from: NameAddr::new(Uri::parse(format!("sip:gw@{GW}")).unwrap()),
                to: NameAddr::new(uri),
                sdp: offer_sdp(4000),
                credentials: None,
            },
            now,
        )
    });
    let invite = only_request(&mut p, "INVITE");
    // Two phones ring through the proxy, both answer.
    let ok1 = reply(
        &invite,
        200,
        "fork1",
        &[contact("sip:phone1@192.0.2.31:5071")],
        &offer_sdp(6001),
    );
    let ok2 = reply(
        &invite,
        200,
        "fork2",
        &[contact("sip:phone2@192.0.2.32:5072")],
        &offer_sdp(6002),
    );
    p.receive(ok1.clone(), addr(PBX), Transport::Udp);
    let sent1 = p.sent();
    let ack1 = requests(&sent1);
    assert_eq!(ack1.len(), 1);
    assert_eq!(ack1[0].0, addr("192.0.2.31:5071"));
    assert_eq!(ack1[0].1.method.as_str(), "ACK");
    assert_eq!(to_tag(&ack1[0].1), "fork1");

    p.receive(ok2.clone(), addr(PBX), Transport::Udp);
    let sent2 = p.sent();
    let reqs = requests(&sent2);
    assert_eq!(reqs.len(), 2, "{sent2:?}");
    let (ack2, bye2) = (&reqs[0], &reqs[1]);
    assert_eq!(ack2.1.method.as_str(), "ACK");
    assert_eq!(bye2.1.method.as_str(), "BYE");
    for (dest, r) in [ack2, bye2] {
        assert_eq!(*dest, addr("192.0.2.32:5072"));
        assert_eq!(to_tag(r), "fork2");
        assert_eq!(r.uri.to_string(), "sip:phone2@192.0.2.32:5072");
        assert_eq!(
            r.headers.call_id().unwrap(),
            invite.headers.call_id().unwrap()
        );
        assert_eq!(r.headers.from().unwrap(), invite.headers.from().unwrap());
    }
    assert_eq!(cseq(&ack2.1), cseq(&invite));
    assert_eq!(cseq(&bye2.1), cseq(&invite) + 1);

    // Retransmitted 2xx of either fork: the same ACK again, no second BYE.
    p.receive(ok2, addr(PBX), Transport::Udp);
    assert_eq!(p.sent(), sent2[..1]);
    p.receive(ok1, addr(PBX), Transport::Udp);
    assert_eq!(p.sent(), sent1);
    // The fork's BYE is a transaction of its own: retransmitted until answered.
    p.advance(Duration::from_millis(600));
    let again = requests(&p.sent());
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1.method.as_str(), "BYE");
    p.receive(reply(&bye2.1, 200, "", &[], b""), addr(PBX), Transport::Udp);

    let answered = p
        .events
        .iter()
        .filter(|e| matches!(e, Event::Answered { .. }))
        .count();
    assert_eq!(answered, 1, "{:?}", p.events);
    assert_eq!(p.ua.call_count(), 1);
    // Hanging up ends the first dialog.
    p.with(|ua, now| ua.hangup(call, now)).unwrap();
    let bye = only_request(&mut p, "BYE");
    assert_eq!(to_tag(&bye), "fork1");
    assert_eq!(bye.uri.to_string(), "sip:phone1@192.0.2.31:5071");
}

#[test]
fn forks_are_capped() {
    let mut p = probe(false);
    let (_, invite) = established_call(&mut p);
    let mut sent = 0;
    for k in 0..40 {
        let ok = reply(
            &invite,
            200,
            &format!("f{k}"),
            &[contact(&format!("sip:x@{PBX}"))],
            b"",
        );
        p.receive(ok, addr(PBX), Transport::Udp);
        sent += requests(&p.sent()).len();
    }
    // The first dialog's ACK is one of the 16 remembered; each other fork: ACK + BYE.
    assert_eq!(sent, 15 * 2);
}

// ----- digest on in-dialog requests ----------------------------------------------------------

/// The auth-params of a `Digest …` credentials value.
fn params(value: &str) -> Vec<(String, String)> {
    let rest = value.strip_prefix("Digest ").expect(value);
    let mut out = Vec::new();
    let mut s = rest;
    while !s.is_empty() {
        let eq = s.find('=').unwrap();
        let name = s[..eq].trim().to_owned();
        s = &s[eq + 1..];
        let v;
        if let Some(q) = s.strip_prefix('"') {
            let end = q.find('"').unwrap();
            v = q[..end].to_owned();
            s = &q[end + 1..];
        } else {
            let end = s.find(',').unwrap_or(s.len());
            v = s[..end].trim().to_owned();
            s = &s[end..];
        }
        s = s.trim_start_matches([',', ' ']);
        out.push((name, v));
    }
    out
}

/// RFC 7616 §3.4.1 with qop=auth, written out independently of cig-sip's digest module.
fn digest_ok(value: &str, method: &str, password: &str) -> bool {
    let p = params(value);
    let get = |n: &str| {
        p.iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {n} in {value}"))
    };
    fn h<D: Digest>(s: String) -> String {
        hex::encode(D::digest(s.as_bytes()))
    }
    let hash: fn(String) -> String = match get("algorithm").as_str() {
        "MD5" => h::<Md5>,
        "SHA-256" => h::<Sha256>,
        "SHA-512-256" => h::<Sha512_256>,
        a => panic!("algorithm {a}"),
    };
    assert_eq!(get("qop"), "auth");
    let ha1 = hash(format!("{}:{}:{password}", get("username"), get("realm")));
    let ha2 = hash(format!("{method}:{}", get("uri")));
    let want = hash(format!(
        "{ha1}:{}:{}:{}:auth:{ha2}",
        get("nonce"),
        get("nc"),
        get("cnonce")
    ));
    get("response") == want
}

fn nc(value: &str) -> String {
    params(value)
        .into_iter()
        .find(|(k, _)| k == "nc")
        .map(|(_, v)| v)
        .unwrap()
}

fn challenge(proxy: bool, algorithm: &str, nonce: &str) -> (HeaderName, String) {
    let name = if proxy {
        HeaderName::ProxyAuthenticate
    } else {
        HeaderName::WwwAuthenticate
    };
    (
        name,
        format!(
            "Digest realm=\"pbx.test\", nonce=\"{nonce}\", algorithm={algorithm}, qop=\"auth\""
        ),
    )
}

fn credentials_of(r: &Request, proxy: bool) -> String {
    let name = if proxy {
        HeaderName::ProxyAuthorization
    } else {
        HeaderName::Authorization
    };
    r.headers
        .get(&name)
        .unwrap_or_else(|| panic!("no credentials in {r:?}"))
        .to_string()
}

#[test]
fn challenged_reinvite_is_answered_once_with_each_algorithm() {
    for (algorithm, proxy) in [("MD5", false), ("SHA-256", true), ("SHA-512-256", false)] {
        let mut p = probe(false);
        let (call, _) = established_call(&mut p);
        p.with(|ua, now| ua.reinvite(call, offer_sdp(4002), now))
            .unwrap();
        let reinvite = only_request(&mut p, "INVITE");
        assert_eq!(to_tag(&reinvite), "pbx");
        let status = if proxy { 407 } else { 401 };
        p.receive(
            reply(
                &reinvite,
                status,
                "pbx",
                &[challenge(proxy, algorithm, "n1")],
                b"",
            ),
            addr(PBX),
            Transport::Udp,
        );
        let reqs = requests(&p.sent());
        assert_eq!(
            reqs.len(),
            2,
            "{algorithm}: ACK of the {status}, INVITE again"
        );
        assert_eq!(reqs[0].1.method.as_str(), "ACK");
        let again = &reqs[1].1;
        assert_eq!(again.method.as_str(), "INVITE");
        assert_eq!(cseq(again), cseq(&reinvite) + 1);
        assert_eq!(again.body, reinvite.body);
        assert_ne!(
            again.headers.top_via().unwrap().branch(),
            reinvite.headers.top_via().unwrap().branch()
        );
        let auth = credentials_of(again, proxy);
        assert!(digest_ok(&auth, "INVITE", "s3cret"), "{algorithm}: {auth}");
        assert!(auth.contains(&format!("algorithm={algorithm}")), "{auth}");
        assert_eq!(nc(&auth), "00000001");
        p.receive(
            reply(again, 200, "pbx", &[], &offer_sdp(6002)),
            addr(PBX),
            Transport::Udp,
        );
        let ack = only_request(&mut p, "ACK");
        assert_eq!(cseq(&ack), cseq(again));
        assert_eq!(
            credentials_of(&ack, proxy),
            auth,
            "the ACK carries the INVITE's credentials"
        );
        assert!(matches!(
            p.events.last(),
            Some(Event::SessionUpdated { call: c, .. }) if *c == call
        ));
    }
}

#[test]
fn second_challenge_to_a_reinvite_fails_it_without_a_loop() {
    let mut p = probe(false);
    let (call, _) = established_call(&mut p);
    p.with(|ua, now| ua.reinvite(call, offer_sdp(4002), now))
        .unwrap();
    let reinvite = only_request(&mut p, "INVITE");
    p.receive(
        reply(&reinvite, 401, "pbx", &[challenge(false, "MD5", "n1")], b""),
        addr(PBX),
        Transport::Udp,
    );
    let again = requests(&p.sent())[1].1.clone();
    p.receive(
        reply(&again, 401, "pbx", &[challenge(false, "MD5", "n2")], b""),
        addr(PBX),
        Transport::Udp,
    );
    let reqs = requests(&p.sent());
    assert_eq!(reqs.len(), 1, "only the ACK of the second 401");
    assert_eq!(reqs[0].1.method.as_str(), "ACK");
    assert_eq!(
        p.events.last(),
        Some(&Event::UpdateFailed { call, status: 401 })
    );
    p.advance(Duration::from_secs(40));
    assert!(
        requests(&p.sent())
            .iter()
            .all(|(_, r)| r.method.as_str() != "INVITE")
    );
    // The call goes on: a later re-INVITE is possible.
    p.with(|ua, now| ua.reinvite(call, offer_sdp(4004), now))
        .unwrap();
}

/// A PBX that challenges the INVITE and then the re-INVITE with the same nonce: the nonce count
/// continues (RFC 7616 §3.4: nc counts the requests sent with that nonce).
#[test]
fn same_nonce_across_requests_continues_the_nonce_count() {
    let mut p = probe(false);
    let uri = Uri::parse(format!("sip:101@{PBX}")).unwrap();
    let call = p.with(|ua, now| {
        ua.place_call(
            OutgoingCall {
                target: Target {
                    uri: uri.clone(),
                    destination: addr(PBX),
                    transport: Transport::Udp,
                },
                from: NameAddr::new(Uri::parse(format!("sip:gw@{GW}")).unwrap()),
                to: NameAddr::new(uri),
                sdp: offer_sdp(4000),
                credentials: Some(Credentials::new("gateway", "s3cret")),
            },
            now,
        )
    });
    let invite = only_request(&mut p, "INVITE");
    p.receive(
        reply(
            &invite,
            407,
            "pbx0",
            &[challenge(true, "SHA-256", "same")],
            b"",
        ),
        addr(PBX),
        Transport::Udp,
    );
    let invite2 = requests(&p.sent())[1].1.clone();
    assert_eq!(nc(&credentials_of(&invite2, true)), "00000001");
    p.receive(
        reply(
            &invite2,
            200,
            "pbx",
            &[contact(&format!("sip:pbx@{PBX}"))],
            &offer_sdp(6000),
        ),
        addr(PBX),
        Transport::Udp,
    );
    only_request(&mut p, "ACK");
    p.with(|ua, now| ua.reinvite(call, offer_sdp(4002), now))
        .unwrap();
    let reinvite = only_request(&mut p, "INVITE");
    p.receive(
        reply(
            &reinvite,
            407,
            "pbx",
            &[challenge(true, "SHA-256", "same")],
            b"",
        ),
        addr(PBX),
        Transport::Udp,
    );
    let again = requests(&p.sent())[1].1.clone();
    let auth = credentials_of(&again, true);
    assert!(digest_ok(&auth, "INVITE", "s3cret"));
    assert_eq!(nc(&auth), "00000002");
}

#[test]
fn challenged_bye_is_answered_once() {
    for second_challenge in [false, true] {
        let mut p = probe(false);
        let (call, _) = established_call(&mut p);
        p.with(|ua, now| ua.hangup(call, now)).unwrap();
        let bye = only_request(&mut p, "BYE");
        p.receive(
            reply(&bye, 407, "", &[challenge(true, "SHA-512-256", "b1")], b""),
            addr(PBX),
            Transport::Udp,
        );
        let bye2 = only_request(&mut p, "BYE");
        assert_eq!(cseq(&bye2), cseq(&bye) + 1);
        assert!(digest_ok(&credentials_of(&bye2, true), "BYE", "s3cret"));
        assert!(p.events.iter().all(|e| !matches!(e, Event::Ended { .. })));
        let last = if second_challenge {
            reply(&bye2, 407, "", &[challenge(true, "SHA-512-256", "b2")], b"")
        } else {
            reply(&bye2, 200, "", &[], b"")
        };
        p.receive(last, addr(PBX), Transport::Udp);
        assert!(requests(&p.sent()).is_empty(), "no third BYE");
        assert_eq!(
            p.events.last(),
            Some(&Event::Ended {
                call,
                reason: EndReason::LocalHangup
            })
        );
        assert_eq!(p.ua.call_count(), 0);
    }
}

/// An incoming call's in-dialog requests use the credentials set with `set_credentials`.
#[test]
fn incoming_call_gets_credentials_for_its_bye() {
    let mut p = probe(false);
    let call = incoming_call(&mut p, &offer_sdp(6000));
    p.with(|ua, now| ua.answer(call, offer_sdp(4000), now))
        .unwrap();
    let oks = responses(&p.sent());
    deliver_ack(&mut p, &oks[oks.len() - 1], "");
    p.with(|ua, _| ua.set_credentials(call, Some(Credentials::new("gateway", "s3cret"))))
        .unwrap();
    p.with(|ua, now| ua.hangup(call, now)).unwrap();
    let bye = only_request(&mut p, "BYE");
    p.receive(
        reply(&bye, 401, "", &[challenge(false, "MD5", "in")], b""),
        addr(PBX),
        Transport::Udp,
    );
    let bye2 = only_request(&mut p, "BYE");
    assert!(digest_ok(&credentials_of(&bye2, false), "BYE", "s3cret"));
}

// ----- delayed offer -------------------------------------------------------------------------

fn invite_text(sdp: &[u8]) -> String {
    let ct = if sdp.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".to_owned()
    };
    format!(
        "INVITE sip:gw@{GW} SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKinv1\r\n\
Max-Forwards: 70\r\nFrom: <sip:200@{PBX}>;tag=caller\r\nTo: <sip:gw@{GW}>\r\n\
Call-ID: delayed-1\r\nCSeq: 1 INVITE\r\nContact: <sip:200@{PBX}>\r\n{ct}\
Content-Length: {}\r\n\r\n{}",
        sdp.len(),
        String::from_utf8_lossy(sdp)
    )
}

/// The caller's ACK for our 200 (our To tag filled in by [`Probe`]-side parsing of the 200).
fn ack_text(sdp: &str) -> String {
    let ct = if sdp.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".to_owned()
    };
    format!(
        "ACK sip:gw@{GW} SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKack1\r\n\
Max-Forwards: 70\r\nFrom: <sip:200@{PBX}>;tag=caller\r\nTo: <sip:gw@{GW}>;tag=TAG\r\n\
Call-ID: delayed-1\r\nCSeq: 1 ACK\r\n{ct}Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// Delivers the INVITE; returns the incoming call (its To tag becomes the ACK's `TAG`).
fn incoming_call(p: &mut Probe, sdp: &[u8]) -> CallHandle {
    p.receive(invite_text(sdp), addr(PBX), Transport::Udp);
    let Some(Event::IncomingCall {
        call,
        sdp: got,
        call_id,
        ..
    }) = p.events.last().cloned()
    else {
        panic!("{:?}", p.events)
    };
    assert_eq!(&got[..], sdp);
    assert_eq!(call_id, "delayed-1");
    assert_eq!(p.ua.call_id(call), Some("delayed-1"));
    call
}

/// Delivers an ACK after finding our To tag in the last 200 sent.
fn deliver_ack(p: &mut Probe, ok: &Response, sdp: &str) {
    let tag = ok.headers.to().unwrap().tag().unwrap().to_owned();
    p.receive(
        ack_text(sdp).replace("TAG", &tag),
        addr(PBX),
        Transport::Udp,
    );
}

fn answer_sdp() -> String {
    String::from_utf8(offer_sdp(7000).to_vec()).unwrap()
}

#[test]
fn delayed_offer_our_200_carries_the_offer_and_the_ack_the_answer() {
    let mut p = probe(false);
    let call = incoming_call(&mut p, b"");
    // An answer without SDP is refused: the 200 must carry our offer.
    assert!(
        p.with(|ua, now| ua.answer(call, Bytes::new(), now))
            .is_err()
    );
    let offer = offer_sdp(4000);
    p.with(|ua, now| ua.answer(call, offer.clone(), now))
        .unwrap();
    let oks = responses(&p.sent());
    let ok = oks.iter().find(|r| r.status == 200).unwrap();
    assert_eq!(ok.body, offer);
    assert!(
        ok.headers
            .content_type()
            .unwrap()
            .unwrap()
            .is("application", "sdp")
    );
    deliver_ack(&mut p, ok, &answer_sdp());
    assert_eq!(
        p.events.last(),
        Some(&Event::MediaAnswer {
            call,
            sdp: Bytes::from(answer_sdp())
        })
    );
    // The ACK stopped the 200's retransmissions.
    p.advance(Duration::from_secs(5));
    assert!(p.sent().is_empty());
}

#[test]
fn delayed_offer_without_an_answer_in_the_ack_ends_the_call() {
    let mut p = probe(false);
    let call = incoming_call(&mut p, b"");
    p.with(|ua, now| ua.answer(call, offer_sdp(4000), now))
        .unwrap();
    let oks = responses(&p.sent());
    deliver_ack(&mut p, &oks[oks.len() - 1], "");
    assert_eq!(
        p.events.last(),
        Some(&Event::Ended {
            call,
            reason: EndReason::MediaFailed
        })
    );
    let bye = only_request(&mut p, "BYE");
    assert_eq!(bye.headers.call_id().unwrap(), "delayed-1");
    assert_eq!(p.ua.call_count(), 0);
}

#[test]
fn an_offer_in_the_invite_needs_no_answer_in_the_ack() {
    let mut p = probe(false);
    let call = incoming_call(&mut p, &offer_sdp(6000));
    p.with(|ua, now| ua.answer(call, offer_sdp(4000), now))
        .unwrap();
    let oks = responses(&p.sent());
    deliver_ack(&mut p, &oks[oks.len() - 1], "");
    assert!(matches!(p.events.last(), Some(Event::IncomingCall { .. })));
    assert_eq!(p.ua.call_count(), 1);
}

#[test]
fn reinvite_without_sdp_gets_our_offer_and_its_ack_answer_is_reported() {
    let mut p = probe(false);
    let call = incoming_call(&mut p, &offer_sdp(6000));
    let ours = offer_sdp(4000);
    p.with(|ua, now| ua.answer(call, ours.clone(), now))
        .unwrap();
    let oks = responses(&p.sent());
    let ok = oks[oks.len() - 1].clone();
    deliver_ack(&mut p, &ok, "");
    let tag = ok.headers.to().unwrap().tag().unwrap().to_owned();
    let reinvite = invite_text(b"")
        .replace(
            "To: <sip:gw@192.0.2.1:5060>",
            &format!("To: <sip:gw@{GW}>;tag={tag}"),
        )
        .replace("z9hG4bKinv1", "z9hG4bKinv2")
        .replace("CSeq: 1 INVITE", "CSeq: 2 INVITE");
    p.receive(reinvite, addr(PBX), Transport::Udp);
    let oks = responses(&p.sent());
    let ok2 = oks.iter().find(|r| r.status == 200).unwrap();
    assert_eq!(ok2.body, ours, "the 200 offers the call's current SDP");
    let ack2 = ack_text(&answer_sdp())
        .replace("TAG", &tag)
        .replace("CSeq: 1 ACK", "CSeq: 2 ACK");
    p.receive(ack2, addr(PBX), Transport::Udp);
    assert_eq!(
        p.events.last(),
        Some(&Event::MediaAnswer {
            call,
            sdp: Bytes::from(answer_sdp())
        })
    );
}

// ----- delayed offer, outgoing -----------------------------------------------------------------

/// The PBX's 200 to a delayed-offer INVITE: tag `pbx`, its offer `sdp`.
fn pbx_ok(invite: &Request, sdp: &[u8]) -> Bytes {
    reply(
        invite,
        200,
        "pbx",
        &[contact(&format!("sip:pbx@{PBX}"))],
        sdp,
    )
}

#[test]
fn placed_without_sdp_the_200_brings_the_offer_and_our_ack_the_answer() {
    let mut p = probe(false);
    let (call, invite) = place(&mut p, Bytes::new());
    assert!(invite.body.is_empty());
    assert!(invite.headers.get(&HeaderName::ContentType).is_none());
    assert_eq!(invite.headers.content_length().unwrap(), Some(0));
    // Nothing can be acknowledged before the 2xx.
    assert!(p.ua.ack(call, Bytes::from(answer_sdp())).is_err());
    let ok = pbx_ok(&invite, &offer_sdp(6000));
    p.receive(ok.clone(), addr(PBX), Transport::Udp);
    assert!(p.sent().is_empty(), "the ACK waits for our answer");
    assert_eq!(
        p.events.last(),
        Some(&Event::Answered {
            call,
            sdp: offer_sdp(6000)
        })
    );
    // A retransmitted 200 meanwhile is absorbed (not taken for another fork).
    p.receive(ok.clone(), addr(PBX), Transport::Udp);
    assert!(p.sent().is_empty());
    // An in-dialog re-INVITE of ours has to wait for the ACK.
    assert!(
        p.with(|ua, now| ua.reinvite(call, offer_sdp(4002), now))
            .is_err()
    );
    assert!(
        p.ua.ack(call, Bytes::new()).is_err(),
        "the ACK needs an answer"
    );
    let answer = Bytes::from(answer_sdp());
    p.with(|ua, _| ua.ack(call, answer.clone())).unwrap();
    let sent = p.sent();
    let reqs = requests(&sent);
    assert_eq!(reqs.len(), 1, "{sent:?}");
    let (dest, ack) = &reqs[0];
    assert_eq!(*dest, addr(PBX));
    assert_eq!(ack.method.as_str(), "ACK");
    assert_eq!(ack.uri.to_string(), format!("sip:pbx@{PBX}"));
    assert_eq!(ack.body, answer);
    assert!(
        ack.headers
            .content_type()
            .unwrap()
            .unwrap()
            .is("application", "sdp")
    );
    assert_eq!(cseq(ack), cseq(&invite));
    assert_eq!(to_tag(ack), "pbx");
    assert!(p.ua.ack(call, answer.clone()).is_err(), "acknowledged once");
    // The 200 again: the same ACK again.
    p.receive(ok, addr(PBX), Transport::Udp);
    assert_eq!(p.sent(), sent);
    // The call is established on our answer: the PBX's re-offer is answered from it.
    p.with(|ua, now| ua.reinvite(call, offer_sdp(4002), now))
        .unwrap();
    let reinvite = only_request(&mut p, "INVITE");
    assert_eq!(reinvite.body, offer_sdp(4002));
    p.receive(
        reply(&reinvite, 200, "pbx", &[], &offer_sdp(6000)),
        addr(PBX),
        Transport::Udp,
    );
    assert_eq!(only_request(&mut p, "ACK").body, Bytes::new());
    p.with(|ua, now| ua.hangup(call, now)).unwrap();
    let bye = only_request(&mut p, "BYE");
    p.receive(reply(&bye, 200, "pbx", &[], b""), addr(PBX), Transport::Udp);
    assert_eq!(
        p.events.last(),
        Some(&Event::Ended {
            call,
            reason: EndReason::LocalHangup
        })
    );
    assert_eq!(p.ua.call_count(), 0);
}

#[test]
fn placed_without_sdp_a_200_without_an_offer_is_acked_and_ended() {
    let mut p = probe(false);
    let (call, invite) = place(&mut p, Bytes::new());
    p.receive(pbx_ok(&invite, b""), addr(PBX), Transport::Udp);
    let sent = requests(&p.sent());
    let methods: Vec<&str> = sent.iter().map(|(_, r)| r.method.as_str()).collect();
    assert_eq!(methods, ["ACK", "BYE"]);
    assert!(sent[0].1.body.is_empty());
    assert_eq!(
        p.events.last(),
        Some(&Event::Ended {
            call,
            reason: EndReason::MediaFailed
        })
    );
    assert!(!p.events.iter().any(|e| matches!(e, Event::Answered { .. })));
    assert_eq!(p.ua.call_count(), 0);
}

#[test]
fn placed_without_sdp_an_offer_never_answered_is_given_up_after_64_t1() {
    let mut p = probe(false);
    let (call, invite) = place(&mut p, Bytes::new());
    p.receive(pbx_ok(&invite, &offer_sdp(6000)), addr(PBX), Transport::Udp);
    p.advance(Duration::from_secs(31));
    assert!(p.sent().is_empty());
    assert_eq!(p.ua.call_count(), 1);
    p.advance(Duration::from_secs(1));
    let sent = requests(&p.sent());
    let methods: Vec<&str> = sent.iter().map(|(_, r)| r.method.as_str()).collect();
    assert_eq!(methods, ["ACK", "BYE"]);
    assert_eq!(
        p.events.last(),
        Some(&Event::Ended {
            call,
            reason: EndReason::Timeout
        })
    );
    assert_eq!(p.ua.call_count(), 0);
}

#[test]
fn placed_without_sdp_hangup_before_answering_the_offer_acks_then_byes() {
    let mut p = probe(false);
    let (call, invite) = place(&mut p, Bytes::new());
    p.receive(pbx_ok(&invite, &offer_sdp(6000)), addr(PBX), Transport::Udp);
    p.with(|ua, now| ua.hangup(call, now)).unwrap();
    let sent = requests(&p.sent());
    let methods: Vec<&str> = sent.iter().map(|(_, r)| r.method.as_str()).collect();
    assert_eq!(methods, ["ACK", "BYE"]);
    assert_eq!(cseq(&sent[1].1), cseq(&invite) + 1);
    p.receive(
        reply(&sent[1].1, 200, "pbx", &[], b""),
        addr(PBX),
        Transport::Udp,
    );
    assert_eq!(
        p.events.last(),
        Some(&Event::Ended {
            call,
            reason: EndReason::LocalHangup
        })
    );
}

#[test]
fn placed_without_sdp_a_challenge_is_answered_and_the_retry_has_no_body_either() {
    let mut p = probe(false);
    let (call, invite) = place(&mut p, Bytes::new());
    p.receive(
        reply(&invite, 401, "pbx", &[challenge(false, "MD5", "n1")], b""),
        addr(PBX),
        Transport::Udp,
    );
    let sent = requests(&p.sent());
    let retry = sent
        .iter()
        .map(|(_, r)| r)
        .find(|r| r.method.as_str() == "INVITE")
        .unwrap();
    assert!(retry.body.is_empty());
    assert_eq!(cseq(retry), cseq(&invite) + 1);
    assert!(digest_ok(&credentials_of(retry, false), "INVITE", "s3cret"));
    p.receive(pbx_ok(retry, &offer_sdp(6000)), addr(PBX), Transport::Udp);
    p.with(|ua, _| ua.ack(call, Bytes::from(answer_sdp())))
        .unwrap();
    let ack = only_request(&mut p, "ACK");
    assert_eq!(cseq(&ack), cseq(retry));
    assert_eq!(
        credentials_of(&ack, false),
        credentials_of(retry, false),
        "the ACK carries the INVITE's credentials"
    );
    assert_eq!(ack.body, Bytes::from(answer_sdp()));
}

// ----- MESSAGE ---------------------------------------------------------------------------------

fn message_text(branch: &str) -> String {
    format!(
        "MESSAGE sip:gw@{GW} SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bK{branch}\r\n\
Max-Forwards: 70\r\nFrom: <sip:200@{PBX}>;tag=m1\r\nTo: <sip:300@{GW}>\r\n\
Call-ID: msg-{branch}\r\nCSeq: 7 MESSAGE\r\nContent-Type: text/plain;charset=UTF-8\r\n\
Content-Length: 5\r\n\r\nhello"
    )
}

fn incoming_message(p: &mut Probe, branch: &str) -> MessageHandle {
    p.receive(message_text(branch), addr(PBX), Transport::Udp);
    let Some(Event::IncomingMessage {
        message,
        from,
        to,
        request_uri,
        content_type,
        body,
        source,
    }) = p.events.last().cloned()
    else {
        panic!("{:?}", p.events)
    };
    assert_eq!(from.uri.to_string(), format!("sip:200@{PBX}"));
    assert_eq!(from.tag(), Some("m1"));
    assert_eq!(to.uri.to_string(), format!("sip:300@{GW}"));
    assert_eq!(request_uri.to_string(), format!("sip:gw@{GW}"));
    assert_eq!(content_type, "text/plain;charset=UTF-8");
    assert_eq!(&body[..], b"hello");
    assert_eq!(source, addr(PBX));
    message
}

fn statuses(p: &mut Probe) -> Vec<u16> {
    responses(&p.sent()).iter().map(|r| r.status).collect()
}

#[test]
fn incoming_message_is_answered_by_the_application_with_rfc4320_timing() {
    let mut p = probe(true);
    let m = incoming_message(&mut p, "a");
    assert!(
        p.sent().is_empty(),
        "nothing is answered before the application"
    );
    // Retransmissions (timer E) are absorbed while nothing was sent.
    for t in [500, 1000, 2000] {
        p.advance(Duration::from_millis(t));
        p.receive(message_text("a"), addr(PBX), Transport::Udp);
        assert!(p.sent().is_empty());
    }
    assert_eq!(p.events.len(), 1, "a retransmission is not a new message");
    // 100 Trying once timer E reached T2 (4 s after the request), never earlier.
    p.advance(Duration::from_millis(499));
    assert!(p.sent().is_empty());
    p.advance(Duration::from_millis(1));
    assert_eq!(statuses(&mut p), [100]);
    p.advance(Duration::from_secs(3));
    assert!(
        p.sent().is_empty(),
        "the 100 is sent once, then only for retransmissions"
    );
    p.receive(message_text("a"), addr(PBX), Transport::Udp);
    assert_eq!(statuses(&mut p), [100]);
    // The application accepts: 202 with a To tag; retransmissions get the 202 again.
    p.with(|ua, now| ua.respond_message(m, 202, now)).unwrap();
    let r = responses(&p.sent());
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, 202);
    assert!(r[0].headers.to().unwrap().tag().is_some());
    assert_eq!(r[0].headers.cseq().unwrap().seq, 7);
    p.receive(message_text("a"), addr(PBX), Transport::Udp);
    assert_eq!(statuses(&mut p), [202]);
    assert!(p.with(|ua, now| ua.respond_message(m, 200, now)).is_err());
    // Timer J ends the transaction; then nothing is left.
    p.advance(Duration::from_secs(40));
    assert!(p.ua.poll_timeout().is_none());
}

#[test]
fn incoming_message_refused_and_bad_statuses() {
    let mut p = probe(true);
    let m = incoming_message(&mut p, "b");
    assert!(p.with(|ua, now| ua.respond_message(m, 100, now)).is_err());
    assert!(p.with(|ua, now| ua.respond_message(m, 700, now)).is_err());
    p.with(|ua, now| ua.respond_message(m, 488, now)).unwrap();
    assert_eq!(statuses(&mut p), [488]);
    assert!(
        p.with(|ua, now| ua.respond_message(MessageHandle(9999), 200, now))
            .is_err()
    );
}

#[test]
fn unanswered_incoming_message_gets_408() {
    let mut p = probe(true);
    let m = incoming_message(&mut p, "c");
    p.advance(Duration::from_secs(4));
    assert_eq!(statuses(&mut p), [100]);
    p.advance(Duration::from_millis(11_999));
    assert!(p.sent().is_empty());
    p.advance(Duration::from_millis(1));
    assert_eq!(statuses(&mut p), [408]);
    assert_eq!(p.elapsed(), Duration::from_secs(16));
    assert!(p.with(|ua, now| ua.respond_message(m, 202, now)).is_err());
}

#[test]
fn incoming_message_over_tcp_is_answered_once() {
    let mut p = probe(true);
    let text = message_text("d").replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    p.receive(text, addr(PBX), Transport::Tcp);
    let Some(Event::IncomingMessage { message, .. }) = p.events.last().cloned() else {
        panic!()
    };
    p.with(|ua, now| ua.respond_message(message, 200, now))
        .unwrap();
    let sent = p.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].transport, Transport::Tcp);
    assert_eq!(sent[0].destination, addr(PBX));
    p.advance(Duration::from_secs(20));
    assert!(
        p.sent().is_empty(),
        "no retransmission over TCP, no 408 after the answer"
    );
    assert!(p.ua.poll_timeout().is_none());
}

fn send_message(p: &mut Probe, credentials: Option<Credentials>) -> MessageHandle {
    p.with(|ua, now| {
        ua.send_message(
            OutgoingMessage {
                target: Target {
                    uri: Uri::parse(format!("sip:300@{PBX}")).unwrap(),
                    destination: addr(PBX),
                    transport: Transport::Udp,
                },
                from: NameAddr::new(Uri::parse(format!("sip:gw@{GW}")).unwrap()),
                to: NameAddr::new(Uri::parse(format!("sip:300@{PBX}")).unwrap()),
                content_type: "text/plain".into(),
                body: Bytes::from_static(b"hi"),
                credentials,
            },
            now,
        )
    })
}

#[test]
fn outgoing_message_answers_a_challenge_once() {
    // Right credentials: the MESSAGE again, authorized, and the PBX's 202 is the result.
    for (algorithm, proxy) in [("MD5", true), ("SHA-256", false), ("SHA-512-256", true)] {
        let mut p = probe(false);
        let m = send_message(&mut p, Some(Credentials::new("gateway", "s3cret")));
        let msg = only_request(&mut p, "MESSAGE");
        let status = if proxy { 407 } else { 401 };
        p.receive(
            reply(&msg, status, "x", &[challenge(proxy, algorithm, "m1")], b""),
            addr(PBX),
            Transport::Udp,
        );
        let again = only_request(&mut p, "MESSAGE");
        assert_eq!(cseq(&again), cseq(&msg) + 1);
        assert_eq!(
            again.headers.call_id().unwrap(),
            msg.headers.call_id().unwrap()
        );
        assert_eq!(&again.body[..], b"hi");
        assert!(digest_ok(
            &credentials_of(&again, proxy),
            "MESSAGE",
            "s3cret"
        ));
        p.receive(reply(&again, 202, "x", &[], b""), addr(PBX), Transport::Udp);
        assert_eq!(
            p.events,
            [Event::MessageResult {
                message: m,
                status: 202
            }]
        );
    }
    // A second challenge, or none to answer with: the challenge's status is the result.
    for creds in [Some(Credentials::new("gateway", "wrong")), None] {
        let mut p = probe(false);
        let have = creds.is_some();
        let m = send_message(&mut p, creds);
        let mut msg = only_request(&mut p, "MESSAGE");
        if have {
            p.receive(
                reply(&msg, 407, "x", &[challenge(true, "MD5", "m1")], b""),
                addr(PBX),
                Transport::Udp,
            );
            msg = only_request(&mut p, "MESSAGE");
        }
        p.receive(
            reply(&msg, 407, "x", &[challenge(true, "MD5", "m2")], b""),
            addr(PBX),
            Transport::Udp,
        );
        assert!(p.sent().is_empty(), "no further MESSAGE");
        assert_eq!(
            p.events,
            [Event::MessageResult {
                message: m,
                status: 407
            }]
        );
    }
}

// ----- 2xx retransmissions and races -----------------------------------------------------------

/// A retransmitted 2xx of our re-INVITE gets the same ACK again (the PBX lost it), and no
/// second SessionUpdated.
#[test]
fn retransmitted_reinvite_2xx_gets_the_same_ack() {
    let mut p = probe(false);
    let (call, _) = established_call(&mut p);
    p.with(|ua, now| ua.reinvite(call, offer_sdp(4002), now))
        .unwrap();
    let reinvite = only_request(&mut p, "INVITE");
    let ok = reply(&reinvite, 200, "pbx", &[], &offer_sdp(6002));
    p.receive(ok.clone(), addr(PBX), Transport::Udp);
    let first = p.sent();
    assert_eq!(requests(&first)[0].1.method.as_str(), "ACK");
    p.advance(Duration::from_millis(500));
    p.receive(ok, addr(PBX), Transport::Udp);
    assert_eq!(p.sent(), first);
    let updates = p
        .events
        .iter()
        .filter(|e| matches!(e, Event::SessionUpdated { .. }))
        .count();
    assert_eq!(updates, 1);
}

/// We cancel after the 180 but the callee answers anyway (the 200 crosses the CANCEL): the
/// 200 is ACKed and the call ended with a BYE (RFC 3261 §9.1), reported as our hang-up.
#[test]
fn a_200_crossing_our_cancel_is_acked_and_sent_bye() {
    let mut p = probe(false);
    let uri = Uri::parse(format!("sip:101@{PBX}")).unwrap();
    let call = p.with(|ua, now| {
        ua.place_call(
            OutgoingCall {
                target: Target {
                    uri: uri.clone(),
                    destination: addr(PBX),
                    transport: Transport::Udp,
                },
                from: NameAddr::new(Uri::parse(format!("sip:gw@{GW}")).unwrap()),
                to: NameAddr::new(uri),
                sdp: offer_sdp(4000),
                credentials: None,
            },
            now,
        )
    });
    let invite = only_request(&mut p, "INVITE");
    p.receive(
        reply(&invite, 180, "pbx", &[], b""),
        addr(PBX),
        Transport::Udp,
    );
    p.with(|ua, now| ua.hangup(call, now)).unwrap();
    let cancel = only_request(&mut p, "CANCEL");
    p.receive(
        reply(
            &invite,
            200,
            "pbx",
            &[contact(&format!("sip:pbx@{PBX}"))],
            &offer_sdp(6000),
        ),
        addr(PBX),
        Transport::Udp,
    );
    let reqs = requests(&p.sent());
    let methods: Vec<&str> = reqs.iter().map(|(_, r)| r.method.as_str()).collect();
    assert_eq!(methods, ["ACK", "BYE"]);
    p.receive(reply(&cancel, 200, "", &[], b""), addr(PBX), Transport::Udp);
    p.receive(
        reply(&reqs[1].1, 200, "", &[], b""),
        addr(PBX),
        Transport::Udp,
    );
    assert!(!p.events.iter().any(|e| matches!(e, Event::Answered { .. })));
    assert_eq!(
        p.events.last(),
        Some(&Event::Ended {
            call,
            reason: EndReason::LocalHangup
        })
    );
    assert_eq!(p.ua.call_count(), 0);
}

/// `stale=true` after an answered challenge (the nonce expired, the credentials were right)
/// earns one more answer with the new nonce; a further challenge, stale or not, ends it.
#[test]
fn stale_nonce_gets_one_more_answer_then_the_reinvite_fails() {
    let mut p = probe(false);
    let (call, _) = established_call(&mut p);
    p.with(|ua, now| ua.reinvite(call, offer_sdp(4002), now))
        .unwrap();
    let mut req = only_request(&mut p, "INVITE");
    let stale = |nonce: &str| {
        let (n, v) = challenge(false, "SHA-256", nonce);
        (n, format!("{v}, stale=true"))
    };
    for (k, ch) in [challenge(false, "SHA-256", "n1"), stale("n2")]
        .into_iter()
        .enumerate()
    {
        p.receive(
            reply(&req, 401, "pbx", &[ch], b""),
            addr(PBX),
            Transport::Udp,
        );
        req = requests(&p.sent())[1].1.clone();
        let auth = credentials_of(&req, false);
        assert!(digest_ok(&auth, "INVITE", "s3cret"));
        assert!(auth.contains(&format!("nonce=\"n{}\"", k + 1)), "{auth}");
    }
    p.receive(
        reply(&req, 401, "pbx", &[stale("n3")], b""),
        addr(PBX),
        Transport::Udp,
    );
    let reqs = requests(&p.sent());
    assert_eq!(reqs.len(), 1, "only the ACK of the third 401");
    assert_eq!(
        p.events.last(),
        Some(&Event::UpdateFailed { call, status: 401 })
    );
}
