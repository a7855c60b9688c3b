//! Property: printing any valid configuration and parsing the text again gives the same model
//! (and no diagnostics except the semantic "expands empty" warnings).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use cig_core::conf::{
    self, Auth, Config, Interface, Interfaces, Mailbox, Mailboxes, Map, MapEntry, Relay,
    RelayEndpoint, SmppCenter, TranslateMap, TranslatePair, TranslateRule, Transport,
};
use cig_core::{IpNet, Secret, Template};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_-]{0,8}"
}

/// Templates without whitespace (the parser strips it), with `"`, `\`, `;` and non-ASCII in
/// the literals and adjacent parameters allowed.
fn template() -> impl Strategy<Value = Template> {
    let seg = prop_oneof![
        "[a-z0-9:+;@.\"\\\\é-]{1,6}",
        "[A-Za-z_][A-Za-z0-9_]{0,5}".prop_map(|p| format!("{{{p}}}")),
    ];
    prop::collection::vec(seg, 0..5).prop_map(|s| Template::parse(&s.concat()).unwrap())
}

/// Any text, control characters and quotes included.
fn text() -> impl Strategy<Value = String> {
    "(?s).{0,12}"
}

fn ip() -> impl Strategy<Value = IpAddr> {
    any::<IpAddr>()
}

/// A relay's endpoint: a local socket or a remote TLS address with its three PEM paths.
fn relay() -> impl Strategy<Value = RelayEndpoint> {
    prop_oneof![
        text().prop_map(|p| RelayEndpoint::Unix(PathBuf::from(p))),
        (ip(), 1u16..=65535, text(), text(), text()).prop_map(|(ip, port, ca, cert, key)| {
            RelayEndpoint::Tls {
                address: SocketAddr::new(ip, port),
                ca: ca.into(),
                cert: cert.into(),
                key: key.into(),
            }
        }),
    ]
}

fn net() -> impl Strategy<Value = IpNet> {
    (ip(), 0u8..=128).prop_map(|(a, p)| {
        let max = if a.is_ipv4() { 32 } else { 128 };
        IpNet::new(a, p % (max + 1)).unwrap()
    })
}

fn port_range() -> impl Strategy<Value = (u16, u16)> {
    (1024u16..65535).prop_flat_map(|low| (Just(low), low + 1..=65535))
}

fn interface(sip: bool, maps: Vec<String>) -> impl Strategy<Value = Interface> {
    let pick = move |ix: Vec<prop::sample::Index>| -> Vec<String> {
        if maps.is_empty() {
            return Vec::new();
        }
        ix.iter().map(|i| i.get(&maps).clone()).collect()
    };
    let transports = prop::sample::select(vec![
        vec![],
        vec![Transport::Udp],
        vec![Transport::Tcp],
        vec![Transport::Udp, Transport::Tcp],
        vec![Transport::Tcp, Transport::Udp],
    ]);
    (
        prop::collection::vec(any::<prop::sample::Index>(), 0..3),
        prop::collection::vec(any::<prop::sample::Index>(), 0..3),
        prop::option::of(ip()),
        prop::option::of(1u16..=65535),
        transports,
        any::<bool>(),
        prop::option::of(port_range()),
        prop::collection::vec((ip(), ip()), 0..3),
        prop::collection::vec(net(), 0..3),
    )
        .prop_map(
            move |(ext, src, bind, port, transports, messaging, rtp, ovr, allow)| Interface {
                extension_maps: pick(ext),
                source_maps: pick(src),
                bind,
                port: port.filter(|_| sip),
                transports: if sip { transports } else { Vec::new() },
                messaging,
                rtp_port_range: rtp,
                rtp_remote_addr_override: ovr,
                allow: if sip { allow } else { Vec::new() },
            },
        )
}

/// Makes names unique by suffixing their position.
fn unique(base: &str, i: usize) -> String {
    format!("{base}{i}")
}

fn config() -> impl Strategy<Value = Config> {
    let auths = prop::collection::vec((name(), text(), text()), 0..3);
    let entries = prop::collection::vec(
        (
            name(),
            prop::option::of(template()),
            prop::option::of(template()),
            any::<Option<prop::sample::Index>>(),
        ),
        0..4,
    );
    let maps = prop::collection::vec((name(), entries), 0..4);
    let rules = prop::collection::vec((template(), template()), 0..3);
    let tmaps = prop::collection::vec((name(), rules), 0..3);
    (auths, maps, tmaps).prop_flat_map(|(auths, maps, tmaps)| {
        let auths: Vec<Auth> = auths
            .into_iter()
            .enumerate()
            .map(|(i, (n, user, pw))| Auth {
                name: unique(&n, i),
                user,
                password: Secret::new(pw),
            })
            .collect();
        let maps: Vec<Map> = maps
            .into_iter()
            .enumerate()
            .map(|(i, (n, entries))| Map {
                name: unique(&n, i),
                entries: entries
                    .into_iter()
                    .enumerate()
                    .map(|(j, (en, sip, tel, auth))| {
                        // An entry needs at least one side.
                        let tel = if sip.is_none() && tel.is_none() {
                            Some(Template::parse("tel:{x}").unwrap())
                        } else {
                            tel
                        };
                        MapEntry {
                            name: unique(&en, j),
                            sip,
                            tel,
                            auth: auth
                                .filter(|_| !auths.is_empty())
                                .map(|ix| ix.get(&auths).name.clone()),
                        }
                    })
                    .collect(),
            })
            .collect();
        let tmaps: Vec<TranslateMap> = tmaps
            .into_iter()
            .enumerate()
            .map(|(i, (n, rules))| TranslateMap {
                name: unique(&n, i),
                rules: rules
                    .into_iter()
                    .map(|(match_, translation)| TranslateRule {
                        match_,
                        translation,
                    })
                    .collect(),
            })
            .collect();
        // Only maps whose every entry has both sides may be used on an interface.
        let routable: Vec<String> = maps
            .iter()
            .filter(|m| m.entries.iter().all(|e| e.sip.is_some() && e.tel.is_some()))
            .map(|m| m.name.clone())
            .collect();
        let tnames: Vec<String> = tmaps.iter().map(|m| m.name.clone()).collect();
        let pair = {
            let tnames = tnames.clone();
            (any::<prop::sample::Index>(), any::<prop::sample::Index>())
                .prop_map(move |(a, b)| TranslatePair {
                    map_from: a.get(&tnames).clone(),
                    map_to: b.get(&tnames).clone(),
                })
                .boxed()
        };
        let has_tmaps = !tnames.is_empty();
        let mailbox = (text(), pair.clone())
            .prop_map(|(p, maps)| Mailbox {
                path: PathBuf::from(p),
                maps,
            })
            .boxed();
        let n = if has_tmaps { 2 } else { 0 };
        let center = (
            "[a-z0-9.-]{1,12}",
            1u16..=65535,
            text(),
            text(),
            prop::option::of(pair.clone()),
            prop::option::of(pair),
        )
            .prop_map(|(hostname, port, user, pw, read, write)| SmppCenter {
                hostname,
                port,
                user,
                password: Secret::new(pw),
                read,
                write,
            });
        (
            Just((auths, maps, tmaps)),
            prop::option::of(interface(false, routable.clone())),
            prop::option::of(interface(true, routable)),
            prop::collection::vec(mailbox.clone(), 0..=n),
            prop::collection::vec(mailbox, 0..=n),
            prop::collection::vec(center, 0..=n),
            prop::option::of(text()),
            prop::collection::vec(relay(), 0..=2),
        )
            .prop_map(
                |((auths, maps, translate_maps), tel, sip, read, write, centers, log, relays)| {
                    Config {
                        maps,
                        auths,
                        interfaces: Interfaces { tel, sip },
                        translate_maps,
                        mailboxes: Mailboxes { read, write },
                        message_centers: centers,
                        log_dir: log.map(PathBuf::from),
                        relays: relays
                            .into_iter()
                            .enumerate()
                            .map(|(i, endpoint)| Relay {
                                name: format!("relay{i}"),
                                endpoint,
                            })
                            .collect(),
                    }
                },
            )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn print_then_parse_gives_the_same_model(c in config()) {
        let text = c.to_string();
        let loaded = conf::parse(&text, "printed.conf")
            .map_err(|d| TestCaseError::fail(format!("{text}\n{d}")))?;
        prop_assert_eq!(&loaded.config, &c, "{}", text);
        for w in &loaded.warnings {
            prop_assert!(w.message.starts_with("translation uses"), "{}", w);
        }
        // Printing is canonical: the reparsed model prints to the same text.
        prop_assert_eq!(loaded.config.to_string(), text);
    }
}
