//! RFC 4475 SIP torture tests: one test per message in `tests/data/rfc4475/` (byte-exact copies
//! checked against SHA256SUMS). Valid messages must parse with the meaning the RFC describes;
//! invalid ones must be rejected for the reason the RFC gives (or handled as it says).

use std::net::Ipv4Addr;

use bytes::Bytes;
use cig_sip::Error;
use cig_sip::message::{
    HeaderName, Host, Message, Method, Request, Response, StreamCodec, StreamItem, Uri,
};
use sha2::{Digest, Sha256};
use tokio_util::codec::Decoder;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rfc4475");

fn load(name: &str) -> Bytes {
    Bytes::from(std::fs::read(format!("{DIR}/{name}")).expect("test vector"))
}

fn parse(name: &str) -> Result<Message, Error> {
    Message::parse(load(name))
}

fn request(name: &str) -> Request {
    match parse(name) {
        Ok(Message::Request(r)) => r,
        other => panic!("{name}: expected a valid request, got {other:?}"),
    }
}

fn response(name: &str) -> Response {
    match parse(name) {
        Ok(Message::Response(r)) => r,
        other => panic!("{name}: expected a valid response, got {other:?}"),
    }
}

fn header<'a>(h: &'a cig_sip::message::Headers, name: &str) -> Option<&'a str> {
    h.get(&HeaderName::new(name))
}

fn sip_user(uri: &Uri) -> Vec<u8> {
    uri.as_sip()
        .and_then(|u| u.user_decoded())
        .map(|u| u.into_owned())
        .unwrap_or_default()
}

/// The UAS reaction a parse failure maps to, checked for every invalid message.
fn rejected(name: &str) -> Error {
    let err = parse(name).expect_err(name);
    let expected = if matches!(err, Error::Version) {
        505
    } else {
        400
    };
    assert_eq!(err.status_code(), expected, "{name}: {err}");
    err
}

#[test]
fn vectors_are_byte_exact_copies() {
    let sums = std::fs::read_to_string(format!("{DIR}/SHA256SUMS")).unwrap();
    let mut n = 0;
    for line in sums.lines() {
        let (hash, file) = line.split_once("  ").unwrap();
        assert_eq!(hex::encode(Sha256::digest(load(file))), hash, "{file}");
        n += 1;
    }
    assert_eq!(n, 50);
    let index = std::fs::read_to_string(format!("{DIR}/INDEX.tsv")).unwrap();
    // Every indexed file has a test below: the names are listed here once more.
    let tested = [
        "wsinv",
        "intmeth",
        "esc01",
        "escnull",
        "esc02",
        "lwsdisp",
        "longreq",
        "dblreq",
        "semiuri",
        "transports",
        "mpart01",
        "unreason",
        "noreason",
        "badinv01",
        "clerr",
        "ncl",
        "scalar02",
        "scalarlg",
        "quotbal",
        "ltgtruri",
        "lwsruri",
        "lwsstart",
        "trws",
        "escruri",
        "baddate",
        "regbadct",
        "badaspec",
        "baddn",
        "badvers",
        "mismatch01",
        "mismatch02",
        "bigcode",
        "badbranch",
        "insuf",
        "unkscm",
        "novelsc",
        "unksm2",
        "bext01",
        "invut",
        "regaut01",
        "multi01",
        "mcl01",
        "bcast",
        "zeromf",
        "cparam01",
        "cparam02",
        "regescrt",
        "sdp01",
        "inv2543",
        "test",
    ];
    for line in index.lines().skip(1) {
        let file = line.split('\t').nth(1).unwrap();
        assert!(
            tested.contains(&file.trim_end_matches(".dat")),
            "{file} untested"
        );
    }
}

// ---- 3.1.1 Valid messages -------------------------------------------------------------------

#[test]
fn wsinv_short_tortuous_invite() {
    let r = request("wsinv.dat");
    let h = &r.headers;
    assert_eq!(r.method, Method::Invite);
    assert_eq!(
        r.uri.to_string(),
        "sip:vivekg@chair-dnrc.example.com;unknownparam"
    );
    let to = h.to().unwrap();
    assert_eq!(to.uri.to_string(), "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(to.tag(), Some("1918181833n"));
    let from = h.from().unwrap();
    assert_eq!(from.display_name().as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(from.uri.to_string(), "sip:jdrosen@example.com");
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(h.max_forwards().unwrap(), Some(68));
    assert_eq!(h.call_id().unwrap(), "wsinv.ndaksdj@192.0.2.1");
    assert_eq!(h.content_length().unwrap(), Some(150));
    assert_eq!(r.body.len(), 150);
    let cseq = h.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, Method::Invite));
    let via = h.via().unwrap();
    let got: Vec<_> = via
        .iter()
        .map(|v| {
            (
                v.transport.to_string(),
                v.host.to_string(),
                v.branch().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("UDP".into(), "192.0.2.2".into(), Some("390skdjuw".into())),
            (
                "TCP".into(),
                "spindle.example.com".into(),
                Some("z9hG4bK9ikj8".into())
            ),
            (
                "UDP".into(),
                "192.168.255.111".into(),
                Some("z9hG4bK30239".into())
            ),
        ]
    );
    assert_eq!(header(h, "Subject"), Some(""));
    assert_eq!(
        header(h, "NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(header(h, "UnknownHeaderWithUnusualValue"), Some(";;,,;;,;"));
    assert!(h.content_type().unwrap().unwrap().is("application", "sdp"));
    let route = h.route().unwrap();
    assert_eq!(route.len(), 1);
    let ru = route[0].uri.as_sip().unwrap();
    assert!(ru.params.contains("lr") && ru.params.contains("unknown-no-value"));
    assert_eq!(ru.params.value("unknownwith").as_deref(), Some("value"));
    let c = h.contacts().unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].display_name().as_deref(), Some("Quoted string \"\""));
    assert_eq!(c[0].params.value("newparam").as_deref(), Some("newvalue"));
    assert!(c[0].params.contains("secondparam"));
    assert_eq!(c[0].params.value("q").as_deref(), Some("0.33"));
}

#[test]
fn intmeth_wide_range_of_valid_characters() {
    let r = request("intmeth.dat");
    let h = &r.headers;
    let method = "!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(r.method.as_str(), method);
    assert!(matches!(r.method, Method::Other(_)));
    let u = r.uri.as_sip().unwrap();
    assert_eq!(
        u.user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        u.password.as_deref(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(u.host, Host::Domain("example.com".into()));
    assert_eq!(h.top_via().unwrap().branch(), Some("z9hG4bK-.!%66*_+`'~"));
    let to = h.to().unwrap();
    assert_eq!(
        to.display_name().as_deref(),
        Some("BEL:\u{7} NUL:\u{0} DEL:\u{7f}")
    );
    assert_eq!(
        to.uri.as_sip().unwrap().user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    let from = h.from().unwrap();
    assert_eq!(
        from.display.as_deref(),
        Some("token1~` token2'+_ token3*%!.-")
    );
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    let p = from.params.value("fromParam''~+*_!.-%").unwrap();
    assert_eq!(
        p,
        "\u{0440}\u{0430}\u{0431}\u{043e}\u{0442}\u{0430}\u{044e}\u{0449}\u{0438}\u{0439}"
    );
    assert_eq!(
        h.call_id().unwrap(),
        "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    );
    let cseq = h.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method.as_str()), (139122385, method));
    assert_eq!(h.max_forwards().unwrap(), Some(255));
    assert_eq!(
        header(h, "extensionHeader-!.%*+_`'~"),
        Some("\u{feff}\u{5927}\u{505c}\u{96fb}")
    );
}

#[test]
fn esc01_valid_use_of_escapes() {
    let r = request("esc01.dat");
    let h = &r.headers;
    assert_eq!(sip_user(&r.uri), b"sips:user@example.com");
    assert_eq!(r.uri.as_sip().unwrap().host.to_string(), "example.net");
    let to = h.to().unwrap();
    let plain = Uri::parse("sip:user@example.com").unwrap();
    assert!(to.uri.as_sip().unwrap().equivalent(plain.as_sip().unwrap()));
    assert_eq!(
        to.uri.to_string(),
        "sip:%75se%72@example.com",
        "kept as written"
    );
    assert_eq!(sip_user(&h.from().unwrap().uri), b"I have spaces");
    let c = &h.contacts().unwrap()[0];
    let expected = Uri::parse("sip:caller@host5.example.net;lr;name=value%25%34%31").unwrap();
    assert!(
        c.uri
            .as_sip()
            .unwrap()
            .equivalent(expected.as_sip().unwrap())
    );
    assert!(h.content_type().unwrap().unwrap().is("application", "sdp"));
    assert_eq!(r.body.len(), 150);
}

#[test]
fn escnull_escaped_nulls_in_uris() {
    let r = request("escnull.dat");
    let h = &r.headers;
    assert_eq!(sip_user(&h.to().unwrap().uri), b"null-\0-null");
    assert_eq!(sip_user(&h.from().unwrap().uri), b"null-\0-null");
    let c = h.contacts().unwrap();
    assert_eq!(c.len(), 2);
    assert_eq!(sip_user(&c[0].uri), b"\0");
    assert_eq!(sip_user(&c[1].uri), b"\0\0");
}

#[test]
fn esc02_percent_that_is_not_an_escape() {
    let r = request("esc02.dat");
    let h = &r.headers;
    // The method is the literal token, not REGISTER: a UAS answers 501.
    assert_eq!(r.method.as_str(), "RE%47IST%45R");
    assert_ne!(r.method, Method::Register);
    assert_eq!(h.cseq().unwrap().method, r.method);
    assert_eq!(h.to().unwrap().display_name().as_deref(), Some("%Z%45"));
    assert_eq!(h.top_via().unwrap().branch(), Some("z9hG4bK209%fzsnel234"));
    // `C%6Fntact` is an extension header, not a third Contact.
    let contacts: Vec<_> = h
        .contacts()
        .unwrap()
        .iter()
        .map(|c| c.uri.to_string())
        .collect();
    assert_eq!(
        contacts,
        [
            "sip:alias1@host1.example.com",
            "sip:alias3@host3.example.com"
        ]
    );
    assert_eq!(
        header(h, "C%6Fntact"),
        Some("<sip:alias2@host2.example.com>")
    );
}

#[test]
fn lwsdisp_no_lws_between_display_name_and_laquot() {
    let r = request("lwsdisp.dat");
    let from = r.headers.from().unwrap();
    assert_eq!(from.display_name().as_deref(), Some("caller"));
    assert_eq!(from.uri.to_string(), "sip:caller@example.com");
    assert_eq!(from.tag(), Some("323"));
}

#[test]
fn longreq_long_values_in_header_fields() {
    let r = request("longreq.dat");
    let h = &r.headers;
    let to = h.to().unwrap();
    assert!(
        to.display_name()
            .unwrap()
            .starts_with("I have a user name of extremeextreme")
    );
    let to_uri = to.uri.as_sip().unwrap();
    assert!(to_uri.params.contains(
        "verylonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglongParameterNameWithNoValue"
    ));
    assert!(h.from().unwrap().tag().unwrap().len() > 100);
    assert!(h.call_id().unwrap().len() > 100);
    let via = h.via().unwrap();
    assert_eq!(via.len(), 34);
    assert_eq!(via[0].host.to_string(), "sip33.example.com");
    assert_eq!(via[32].host.to_string(), "sip1.example.com");
    assert_eq!(via[33].received(), Some("192.0.2.5"));
    assert!(via[33].branch().unwrap().len() > 100);
    let unknown = h
        .iter()
        .find(|x| x.name.as_str().starts_with("Unknown-LongLong"))
        .unwrap();
    assert!(unknown.name.as_str().ends_with("-Name"));
    assert!(unknown.value.starts_with("unknown-longlong"));
    assert!(sip_user(&h.contacts().unwrap()[0].uri).starts_with(b"amazinglylongcallername"));
    assert_eq!(r.body.len(), 150);
}

#[test]
fn dblreq_extra_trailing_octets_in_a_datagram() {
    let r = request("dblreq.dat");
    assert_eq!(r.method, Method::Register);
    assert!(r.body.is_empty());
    assert_eq!(r.headers.cseq().unwrap().seq, 8);
    assert!(!r.headers.iter().any(|h| *h.name == HeaderName::ContentType));
}

#[test]
fn semiuri_semicolons_in_the_user_part() {
    let r = request("semiuri.dat");
    let u = r.uri.as_sip().unwrap();
    assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
    assert_eq!(u.host.to_string(), "example.com");
    assert!(u.params.is_empty());
    let accept: Vec<_> = r
        .headers
        .accept()
        .unwrap()
        .iter()
        .map(|m| m.to_string())
        .collect();
    assert_eq!(
        accept,
        [
            "application/sdp",
            "application/pkcs7-mime",
            "multipart/mixed",
            "multipart/signed",
            "message/sip",
            "message/sipfrag"
        ]
    );
}

#[test]
fn transports_varied_and_unknown() {
    let r = request("transports.dat");
    let t: Vec<_> = r
        .headers
        .via()
        .unwrap()
        .iter()
        .map(|v| v.transport.to_string())
        .collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
}

#[test]
fn mpart01_multipart_body() {
    let r = request("mpart01.dat");
    assert_eq!(r.method, Method::Message);
    let ct = r.headers.content_type().unwrap().unwrap();
    assert!(ct.is("multipart", "mixed"));
    assert_eq!(
        ct.params.value("boundary").as_deref(),
        Some("7a9cbec02ceef655")
    );
    assert_eq!(r.body.len(), 553);
    assert!(r.body.starts_with(b"--7a9cbec02ceef655\r\n"));
    assert!(r.body.ends_with(b"--7a9cbec02ceef655--\r\n"));
    assert_eq!(r.headers.top_via().unwrap().rport(), Some(None));
}

#[test]
fn unreason_unusual_reason_phrase() {
    let r = response("unreason.dat");
    assert_eq!(r.status, 200);
    assert!(r.reason.starts_with("= 2**3 * 5**2 \u{043d}\u{043e} "));
    assert!(
        r.reason
            .ends_with(" - \u{043f}\u{0440}\u{043e}\u{0441}\u{0442}\u{043e}\u{0435}")
    );
    assert_eq!(r.body.len(), 154);
}

#[test]
fn noreason_empty_reason_phrase() {
    let r = response("noreason.dat");
    assert_eq!(r.status, 100);
    assert_eq!(&*r.reason, "");
    assert_eq!(r.headers.to().unwrap().tag(), Some("902jndnke3"));
}

// ---- 3.1.2 Invalid messages -----------------------------------------------------------------

#[test]
fn badinv01_extraneous_header_field_separators() {
    assert!(matches!(
        rejected("badinv01.dat"),
        Error::Header { name: "Via", .. }
    ));
    // The Contact is just as broken.
    let Message::Request(r) = Message::parse_unvalidated(load("badinv01.dat")).unwrap() else {
        panic!()
    };
    assert!(matches!(
        r.headers.contacts(),
        Err(Error::Header {
            name: "Contact",
            ..
        })
    ));
}

#[test]
fn clerr_content_length_larger_than_message() {
    assert!(matches!(rejected("clerr.dat"), Error::BodyTruncated));
}

#[test]
fn ncl_negative_content_length() {
    assert!(matches!(
        rejected("ncl.dat"),
        Error::Header {
            name: "Content-Length",
            ..
        }
    ));
}

#[test]
fn scalar02_request_scalars_out_of_range() {
    // 400 because of the CSeq; Max-Forwards and the expiry values are out of range too.
    assert!(matches!(
        rejected("scalar02.dat"),
        Error::Header { name: "CSeq", .. }
    ));
    let Message::Request(r) = Message::parse_unvalidated(load("scalar02.dat")).unwrap() else {
        panic!()
    };
    assert!(r.headers.max_forwards().is_err());
    assert!(r.headers.expires().is_err());
    assert!(matches!(
        r.headers.contacts(),
        Err(Error::Header {
            name: "Contact",
            ..
        })
    ));
}

#[test]
fn scalarlg_response_scalars_out_of_range() {
    // A response: discarded, never answered.
    assert!(matches!(
        parse("scalarlg.dat"),
        Err(Error::Header { name: "CSeq", .. })
    ));
}

#[test]
fn quotbal_unterminated_quoted_string() {
    assert!(matches!(
        rejected("quotbal.dat"),
        Error::Header { name: "To", .. }
    ));
}

#[test]
fn ltgtruri_request_uri_in_angle_brackets() {
    assert!(matches!(rejected("ltgtruri.dat"), Error::RequestUri(_)));
}

#[test]
fn lwsruri_request_uri_with_embedded_lws() {
    assert!(matches!(
        rejected("lwsruri.dat"),
        Error::StartLine(_) | Error::RequestUri(_)
    ));
}

#[test]
fn lwsstart_multiple_sp_in_request_line() {
    assert!(matches!(rejected("lwsstart.dat"), Error::StartLine(_)));
}

#[test]
fn trws_sp_at_end_of_request_line() {
    assert!(matches!(rejected("trws.dat"), Error::StartLine(_)));
}

#[test]
fn escruri_escaped_headers_in_request_uri() {
    assert!(matches!(rejected("escruri.dat"), Error::RequestUri(_)));
}

#[test]
fn baddate_invalid_time_zone() {
    assert!(matches!(
        rejected("baddate.dat"),
        Error::Header { name: "Date", .. }
    ));
}

#[test]
fn regbadct_name_addr_uri_not_in_angle_brackets() {
    assert!(matches!(
        rejected("regbadct.dat"),
        Error::Header {
            name: "Contact",
            ..
        }
    ));
}

#[test]
fn badaspec_spaces_within_addr_spec() {
    assert!(matches!(
        rejected("badaspec.dat"),
        Error::Header { name: "To", .. }
    ));
}

#[test]
fn baddn_non_token_characters_in_display_name() {
    assert!(matches!(
        rejected("baddn.dat"),
        Error::Header { name: "From", .. }
    ));
}

#[test]
fn badvers_unknown_protocol_version() {
    assert!(matches!(rejected("badvers.dat"), Error::Version));
}

#[test]
fn mismatch01_cseq_method_mismatch() {
    assert!(matches!(rejected("mismatch01.dat"), Error::CSeqMismatch));
}

#[test]
fn mismatch02_unknown_method_with_cseq_mismatch() {
    // 400, not 501: the mismatch is found first.
    assert!(matches!(rejected("mismatch02.dat"), Error::CSeqMismatch));
}

#[test]
fn bigcode_overlarge_response_code() {
    assert!(matches!(parse("bigcode.dat"), Err(Error::StartLine(_))));
}

// ---- 3.2 Transaction layer ------------------------------------------------------------------

#[test]
fn badbranch_missing_transaction_identifier() {
    let r = request("badbranch.dat");
    let via = r.headers.top_via().unwrap();
    assert_eq!(via.branch(), Some("z9hG4bK"));
    // Only the magic cookie: not an RFC 3261 branch, so matching falls back to RFC 2543 rules.
    assert!(!via.has_rfc3261_branch());
}

// ---- 3.3 Application layer ------------------------------------------------------------------

#[test]
fn insuf_missing_required_header_fields() {
    assert!(matches!(
        rejected("insuf.dat"),
        Error::MissingHeader("From")
    ));
    // The 400 can still be built from what is there.
    let Message::Request(r) = Message::parse_unvalidated(load("insuf.dat")).unwrap() else {
        panic!()
    };
    let resp = Response::from_request(&r, 400, "Bad Request");
    let names: Vec<_> = resp.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["Via", "CSeq"]);
}

#[test]
fn unkscm_unknown_request_uri_scheme() {
    let r = request("unkscm.dat");
    // Not sip/sips/tel: the UAS answers 416.
    assert!(matches!(&r.uri, Uri::Other(o) if &*o.scheme == "nobodyKnowsThisScheme"));
    assert_eq!(r.uri.scheme(), "nobodyknowsthisscheme");
}

#[test]
fn novelsc_known_but_atypical_scheme() {
    let r = request("novelsc.dat");
    assert!(matches!(&r.uri, Uri::Other(o) if &*o.rest == "//192.0.2.103:3002"));
    assert_eq!(r.uri.scheme(), "soap.beep");
}

#[test]
fn unksm2_unknown_schemes_in_header_fields() {
    let r = request("unksm2.dat");
    let h = &r.headers;
    assert_eq!(h.to().unwrap().uri.to_string(), "isbn:2983792873");
    assert_eq!(h.from().unwrap().uri.to_string(), "http://www.example.com");
    assert_eq!(h.from().unwrap().tag(), Some("3234233"));
    assert_eq!(h.contacts().unwrap()[0].uri.scheme(), "name");
}

#[test]
fn bext01_require_and_proxy_require() {
    let r = request("bext01.dat");
    // A UAS answers 420 listing these in Unsupported.
    assert_eq!(
        r.headers.require().unwrap(),
        ["nothingSupportsThis", "nothingSupportsThisEither"]
    );
    assert_eq!(
        r.headers.proxy_require().unwrap(),
        ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]
    );
}

#[test]
fn invut_unknown_content_type() {
    let r = request("invut.dat");
    // A UAS answers 415 with an Accept header.
    assert!(
        r.headers
            .content_type()
            .unwrap()
            .unwrap()
            .is("application", "unknownformat")
    );
    assert_eq!(r.body.len(), 40);
}

#[test]
fn regaut01_unknown_authorization_scheme() {
    let r = request("regaut01.dat");
    // A registrar answers 401 with a challenge it understands, not 400.
    let creds = r.headers.authorization().unwrap();
    assert_eq!(creds.len(), 1);
    assert_eq!(&*creds[0].scheme, "NoOneKnowsThisScheme");
    assert_eq!(creds[0].param("opaque-data").as_deref(), Some("here"));
}

#[test]
fn multi01_multiple_values_in_single_value_fields() {
    assert!(matches!(
        rejected("multi01.dat"),
        Error::MultipleValues("From")
    ));
    let Message::Request(r) = Message::parse_unvalidated(load("multi01.dat")).unwrap() else {
        panic!()
    };
    assert!(matches!(r.headers.to(), Err(Error::MultipleValues("To"))));
    assert!(matches!(
        r.headers.call_id(),
        Err(Error::MultipleValues("Call-ID"))
    ));
    assert!(matches!(
        r.headers.cseq(),
        Err(Error::MultipleValues("CSeq"))
    ));
    assert!(matches!(
        r.headers.max_forwards(),
        Err(Error::MultipleValues("Max-Forwards"))
    ));
}

#[test]
fn mcl01_multiple_content_length_values() {
    assert!(matches!(
        rejected("mcl01.dat"),
        Error::MultipleValues("Content-Length")
    ));
    // On a stream the framing is lost: the codec reports it and consumes the header section.
    let mut codec = StreamCodec::default();
    let mut buf = bytes::BytesMut::from(&load("mcl01.dat")[..]);
    let item = codec.decode(&mut buf).unwrap();
    assert!(matches!(
        item,
        Some(StreamItem::Invalid {
            error: Error::MultipleValues("Content-Length"),
            ..
        })
    ));
}

#[test]
fn bcast_200_with_broadcast_via() {
    let r = response("bcast.dat");
    let via = r.headers.via().unwrap();
    assert_eq!(via.len(), 2);
    assert_eq!(via[1].host, Host::Ipv4(Ipv4Addr::BROADCAST));
    assert_eq!(r.body.len(), 154);
}

#[test]
fn zeromf_max_forwards_zero() {
    let r = request("zeromf.dat");
    // A UAS answers OPTIONS with Max-Forwards 0 normally; only a proxy would send 483.
    assert_eq!(r.headers.max_forwards().unwrap(), Some(0));
    assert_eq!(r.method, Method::Options);
}

#[test]
fn cparam01_contact_header_parameter() {
    let r = request("cparam01.dat");
    let c = &r.headers.contacts().unwrap()[0];
    // Without <>, `;unknownparam` belongs to the header field, not the URI.
    assert!(c.params.contains("unknownparam"));
    assert_eq!(c.uri.to_string(), "sip:+19725552222@gw1.example.net");
}

#[test]
fn cparam02_contact_uri_parameter() {
    let r = request("cparam02.dat");
    let c = &r.headers.contacts().unwrap()[0];
    assert!(c.params.is_empty());
    assert!(c.uri.as_sip().unwrap().params.contains("unknownparam"));
}

#[test]
fn regescrt_escaped_header_in_contact_uri() {
    let r = request("regescrt.dat");
    let c = &r.headers.contacts().unwrap()[0];
    let u = c.uri.as_sip().unwrap();
    assert_eq!(
        u.headers.as_deref(),
        Some("Route=%3Csip:sip.example.com%3E")
    );
    assert_eq!(
        &*cig_sip::message::percent_decode(u.headers.as_deref().unwrap()),
        b"Route=<sip:sip.example.com>"
    );
}

#[test]
fn sdp01_unacceptable_accept() {
    let r = request("sdp01.dat");
    // The only acceptable type is not SDP: a UAS answers 406.
    let accept = r.headers.accept().unwrap();
    assert_eq!(accept.len(), 1);
    assert!(accept[0].is("text", "nobodyknowsthis"));
    assert!(!accept.iter().any(|m| m.is("application", "sdp")));
}

// ---- 3.4 Backward compatibility -------------------------------------------------------------

#[test]
fn inv2543_rfc2543_syntax() {
    let r = request("inv2543.dat");
    let h = &r.headers;
    let via = h.top_via().unwrap();
    assert_eq!(via.branch(), None);
    assert!(!via.has_rfc3261_branch());
    assert_eq!(h.max_forwards().unwrap(), None);
    assert_eq!(h.content_length().unwrap(), None);
    assert!(r.body.starts_with(b"v=0\r\n"));
    let to = h.to().unwrap();
    assert_eq!(
        to.uri.as_sip().unwrap().user.as_deref(),
        Some("+16505552222")
    );
    // No brackets: `;user=phone` is a To header parameter.
    assert_eq!(to.params.value("user").as_deref(), Some("phone"));
    let rr = h.record_route().unwrap();
    assert_eq!(
        rr[0].uri.as_sip().unwrap().params.value("maddr").as_deref(),
        Some("ss1.example.com")
    );
}

#[test]
fn test_dat_is_not_a_sip_request() {
    // No SIP version in the request line (and a header line without a colon).
    assert!(matches!(rejected("test.dat"), Error::StartLine(_)));
}

#[test]
fn every_valid_message_round_trips() {
    for name in [
        "wsinv",
        "intmeth",
        "esc01",
        "escnull",
        "esc02",
        "lwsdisp",
        "longreq",
        "semiuri",
        "transports",
        "mpart01",
        "unreason",
        "noreason",
        "badbranch",
        "unkscm",
        "novelsc",
        "unksm2",
        "bext01",
        "invut",
        "regaut01",
        "bcast",
        "zeromf",
        "cparam01",
        "cparam02",
        "regescrt",
        "sdp01",
        "inv2543",
    ] {
        let m = parse(&format!("{name}.dat")).unwrap();
        let again = Message::parse(m.to_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let strip = |m: &Message| -> Vec<(String, String)> {
            m.headers()
                .iter()
                .filter(|h| *h.name != HeaderName::ContentLength)
                .map(|h| (h.name.to_string(), h.value.to_owned()))
                .collect()
        };
        assert_eq!(strip(&m), strip(&again), "{name}");
        assert_eq!(m.body(), again.body(), "{name}");
    }
}
