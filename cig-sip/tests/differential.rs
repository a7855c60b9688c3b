//! Differential test: generated SIP requests (compact and long header names in any case, white
//! space around colons, several Via values per line or one per line, display names, ports,
//! parameters, bodies) are parsed by cig-sip and by ezk-sip-types, an independent parser; both
//! must agree on every field both understand, and cig-sip must agree with the generator.

use bytes::Bytes;
use cig_sip::message::{Host, Message, Uri};
use ezk_sip_types::Name;
use ezk_sip_types::header::typed::{CSeq, CallID, Contact, FromTo, MaxForwards, Via};
use ezk_sip_types::host::Host as EzkHost;
use ezk_sip_types::msg::MessageLine;
use ezk_sip_types::uri::SipUri as EzkUri;
use ezk_sip_types::uri::SipUriUserPart;
use proptest::prelude::*;

#[path = "support/ezk.rs"]
mod ezk;

#[derive(Debug, Clone)]
struct GenUri {
    user: Option<String>,
    host: String,
    port: Option<u16>,
}

impl GenUri {
    fn text(&self) -> String {
        let mut s = String::from("sip:");
        if let Some(u) = &self.user {
            s += u;
            s.push('@');
        }
        s += &self.host;
        if let Some(p) = self.port {
            s += &format!(":{p}");
        }
        s
    }
}

#[derive(Debug, Clone)]
struct GenVia {
    transport: &'static str,
    host: String,
    port: Option<u16>,
    branch: String,
}

#[derive(Debug, Clone)]
struct GenMsg {
    method: &'static str,
    ruri: GenUri,
    vias: Vec<GenVia>,
    vias_one_line: bool,
    from_display: Option<String>,
    from: GenUri,
    from_tag: String,
    to: GenUri,
    to_tag: Option<String>,
    call_id: String,
    cseq: u32,
    max_forwards: u8,
    contact: Option<GenUri>,
    compact: bool,
    colon_ws: bool,
    body: String,
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]([a-z0-9-]{0,6}[a-z0-9])?(\\.[a-z]([a-z0-9-]{0,5}[a-z0-9])?){0,3}",
        any::<[u8; 4]>().prop_map(|a| std::net::Ipv4Addr::from(a).to_string()),
    ]
}

fn uri() -> impl Strategy<Value = GenUri> {
    (
        proptest::option::of("[a-zA-Z0-9_.!~*'+-]{1,12}"),
        host(),
        proptest::option::of(1u16..),
    )
        .prop_map(|(user, host, port)| GenUri { user, host, port })
}

fn via() -> impl Strategy<Value = GenVia> {
    (
        prop_oneof![Just("UDP"), Just("TCP"), Just("TLS")],
        host(),
        proptest::option::of(1u16..),
        "[a-zA-Z0-9.-]{1,16}",
    )
        .prop_map(|(transport, host, port, b)| GenVia {
            transport,
            host,
            port,
            branch: format!("z9hG4bK{b}"),
        })
}

fn message() -> impl Strategy<Value = GenMsg> {
    let methods = prop_oneof![
        Just("INVITE"),
        Just("OPTIONS"),
        Just("BYE"),
        Just("REGISTER"),
        Just("MESSAGE"),
        Just("INFO"),
        Just("UPDATE")
    ];
    (
        (
            methods,
            uri(),
            proptest::collection::vec(via(), 1..4),
            any::<bool>(),
        ),
        (
            proptest::option::of("[A-Za-z][A-Za-z0-9 ]{0,12}[A-Za-z0-9]"),
            uri(),
            "[a-zA-Z0-9]{1,12}",
        ),
        (uri(), proptest::option::of("[a-zA-Z0-9]{1,12}")),
        (
            "[a-zA-Z0-9.-]{1,20}(@[a-z0-9.]{1,12})?",
            0u32..(1 << 31),
            any::<u8>(),
        ),
        (
            proptest::option::of(uri()),
            any::<bool>(),
            any::<bool>(),
            "[ -~]{0,120}",
        ),
    )
        .prop_map(
            |(
                (method, ruri, vias, vias_one_line),
                (fd, from, from_tag),
                (to, to_tag),
                (call_id, cseq, mf),
                (contact, compact, colon_ws, body),
            )| GenMsg {
                method,
                ruri,
                vias,
                vias_one_line,
                from_display: fd,
                from,
                from_tag,
                to,
                to_tag,
                call_id,
                cseq,
                max_forwards: mf,
                contact,
                compact,
                colon_ws,
                body,
            },
        )
}

impl GenMsg {
    fn wire(&self) -> Bytes {
        let name = |long: &str, short: &str| {
            if self.compact && !short.is_empty() {
                short.to_owned()
            } else {
                long.to_ascii_lowercase()
            }
        };
        let colon = if self.colon_ws { " :  " } else { ": " };
        let mut s = format!("{} {} SIP/2.0\r\n", self.method, self.ruri.text());
        let via_text: Vec<String> = self
            .vias
            .iter()
            .map(|v| {
                let port = v.port.map(|p| format!(":{p}")).unwrap_or_default();
                format!(
                    "SIP/2.0/{} {}{};branch={}",
                    v.transport, v.host, port, v.branch
                )
            })
            .collect();
        if self.vias_one_line {
            s += &format!("{}{colon}{}\r\n", name("Via", "v"), via_text.join(" , "));
        } else {
            for v in &via_text {
                s += &format!("{}{colon}{v}\r\n", name("Via", "v"));
            }
        }
        let display = self
            .from_display
            .as_ref()
            .map(|d| format!("\"{d}\" "))
            .unwrap_or_default();
        s += &format!(
            "{}{colon}{display}<{}>;tag={}\r\n",
            name("From", "f"),
            self.from.text(),
            self.from_tag
        );
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        s += &format!("{}{colon}<{}>{to_tag}\r\n", name("To", "t"), self.to.text());
        s += &format!("{}{colon}{}\r\n", name("Call-ID", "i"), self.call_id);
        s += &format!("CSeq{colon}{} {}\r\n", self.cseq, self.method);
        s += &format!("Max-Forwards{colon}{}\r\n", self.max_forwards);
        if let Some(c) = &self.contact {
            s += &format!("{}{colon}<{}>\r\n", name("Contact", "m"), c.text());
        }
        s += &format!(
            "{}{colon}{}\r\n\r\n{}",
            name("Content-Length", "l"),
            self.body.len(),
            self.body
        );
        Bytes::from(s)
    }
}

fn ezk_host(h: &EzkHost) -> String {
    match h {
        EzkHost::IP4(a) => a.to_string(),
        EzkHost::IP6(a) => format!("[{a}]"),
        EzkHost::Name(n) => n.to_string(),
    }
}

fn ezk_user(u: &EzkUri) -> Option<String> {
    match &u.user_part {
        SipUriUserPart::Empty => None,
        SipUriUserPart::User(u) => Some(u.to_string()),
        SipUriUserPart::UserPw(p) => Some(p.user.to_string()),
    }
}

/// (user, host, port) of a cig-sip URI.
fn ours(u: &Uri) -> (Option<String>, String, Option<u16>) {
    let s = u.as_sip().expect("sip uri");
    let host = match &s.host {
        Host::Domain(d) => d.to_string(),
        h => h.to_string(),
    };
    (s.user.as_deref().map(str::to_owned), host, s.port)
}

fn theirs(u: &EzkUri) -> (Option<String>, String, Option<u16>) {
    (ezk_user(u), ezk_host(&u.host_port.host), u.host_port.port)
}

fn gen_uri(u: &GenUri) -> (Option<String>, String, Option<u16>) {
    (u.user.clone(), u.host.clone(), u.port)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cig_sip_agrees_with_ezk_and_the_generator(g in message()) {
        let wire = g.wire();
        let Message::Request(r) = Message::parse(wire.clone()).map_err(|e| TestCaseError::fail(format!("{e}: {wire:?}")))? else {
            return Err(TestCaseError::fail("not a request"));
        };
        let e = ezk::parse(&wire).expect("ezk parses");
        let MessageLine::Request(line) = &e.line else { panic!("ezk: not a request") };
        let h = &r.headers;

        prop_assert_eq!(r.method.as_str(), g.method);
        prop_assert_eq!(line.method.to_string(), g.method);
        prop_assert_eq!(ours(&r.uri), gen_uri(&g.ruri));
        prop_assert_eq!(theirs(&line.uri), gen_uri(&g.ruri));

        let vias = h.via().unwrap();
        let evias: Vec<Via> = e.headers.get_named().unwrap();
        prop_assert_eq!(vias.len(), g.vias.len());
        prop_assert_eq!(evias.len(), g.vias.len());
        for ((v, ev), gv) in vias.iter().zip(&evias).zip(&g.vias) {
            prop_assert_eq!(&*v.transport, gv.transport);
            prop_assert_eq!(ev.transport.to_string(), gv.transport);
            prop_assert_eq!(v.host.to_string(), gv.host.clone());
            prop_assert_eq!(ezk_host(&ev.sent_by.host), gv.host.clone());
            prop_assert_eq!(v.port, gv.port);
            prop_assert_eq!(ev.sent_by.port, gv.port);
            prop_assert_eq!(v.branch(), Some(gv.branch.as_str()));
            prop_assert_eq!(ev.params.get_val("branch").map(|b| b.to_string()), Some(gv.branch.clone()));
        }

        let from = h.from().unwrap();
        let efrom: FromTo = e.headers.get(Name::FROM).unwrap();
        prop_assert_eq!(ours(&from.uri), gen_uri(&g.from));
        prop_assert_eq!(theirs(&efrom.uri.uri), gen_uri(&g.from));
        prop_assert_eq!(from.tag(), Some(g.from_tag.as_str()));
        prop_assert_eq!(efrom.tag.as_deref(), Some(g.from_tag.as_str()));
        prop_assert_eq!(from.display_name().map(|d| d.into_owned()), g.from_display.clone());
        prop_assert_eq!(efrom.uri.name.as_ref().map(|n| n.to_string()), g.from_display.clone());

        let to = h.to().unwrap();
        let eto: FromTo = e.headers.get(Name::TO).unwrap();
        prop_assert_eq!(ours(&to.uri), gen_uri(&g.to));
        prop_assert_eq!(theirs(&eto.uri.uri), gen_uri(&g.to));
        prop_assert_eq!(to.tag(), g.to_tag.as_deref());
        prop_assert_eq!(eto.tag.as_deref(), g.to_tag.as_deref());

        prop_assert_eq!(h.call_id().unwrap(), g.call_id.as_str());
        prop_assert_eq!(e.headers.get_named::<CallID>().unwrap().0.to_string(), g.call_id.clone());
        let cseq = h.cseq().unwrap();
        let ecseq: CSeq = e.headers.get_named().unwrap();
        prop_assert_eq!(cseq.seq, g.cseq);
        prop_assert_eq!(ecseq.cseq, g.cseq);
        prop_assert_eq!(cseq.method.as_str(), ecseq.method.to_string());
        prop_assert_eq!(h.max_forwards().unwrap(), Some(g.max_forwards));
        prop_assert_eq!(e.headers.get_named::<MaxForwards>().unwrap().0, g.max_forwards);

        let contacts = h.contacts().unwrap();
        let econtacts: Vec<Contact> = e.headers.get_named().unwrap_or_default();
        prop_assert_eq!(contacts.len(), usize::from(g.contact.is_some()));
        prop_assert_eq!(econtacts.len(), contacts.len());
        if let (Some(c), Some(ec), Some(gc)) = (contacts.first(), econtacts.first(), &g.contact) {
            prop_assert_eq!(ours(&c.uri), gen_uri(gc));
            prop_assert_eq!(theirs(&ec.uri.uri), gen_uri(gc));
        }

        prop_assert_eq!(&r.body[..], g.body.as_bytes());
        prop_assert_eq!(&e.body[..], g.body.as_bytes());

        // What we serialize, ezk reads the same way.
        let back = ezk::parse(&r.to_bytes()).expect("ezk parses our output");
        let back_from: FromTo = back.headers.get(Name::FROM).unwrap();
        prop_assert_eq!(theirs(&back_from.uri.uri), gen_uri(&g.from));
        let back_vias: Vec<Via> = back.headers.get_named().unwrap();
        prop_assert_eq!(back_vias.len(), g.vias.len());
    }
}
