//! Property tests: the compiled matcher and the prefix-indexed router give exactly the answers
//! of the naive backtracking matcher and linear walk in `cig_route::reference`.

mod common;

use cig_core::conf::{Config, InterfaceKind};
use cig_route::pattern::{Pattern, Rule};
use cig_route::{RouteBuf, Router, reference};
use common::*;
use proptest::prelude::*;

/// Template text over a small alphabet, so that random URIs often match: a scheme-like
/// prefix, then literals and `{a}`/`{b}`/`{c}` parameters (adjacent ones included).
fn template() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![
        Just(""),
        Just("tel:+"),
        Just("tel:+1"),
        Just("tel:+1w"),
        Just("sip:"),
        Just("sip:1"),
        Just("{a}")
    ];
    let piece = prop_oneof![
        "[12@w;.x]{0,3}",
        Just("{a}".to_owned()),
        Just("{b}".to_owned()),
        Just("{c}".to_owned())
    ];
    (prefix, prop::collection::vec(piece, 0..4))
        .prop_map(|(p, pieces)| format!("{p}{}", pieces.concat()))
}

/// URIs over the same alphabet, with `W`, as both TEL and SIP.
fn uri() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![
        Just(""),
        Just("tel:+"),
        Just("tel:+1"),
        Just("TEL:+"),
        Just("sip:"),
        Just("sip:1")
    ];
    (prefix, "[12@wW;.x]{0,7}").prop_map(|(p, rest)| format!("{p}{rest}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn pattern_captures_like_backtracking(m in template(), o in template(), uri in uri()) {
        let (m, o) = (t(&m), t(&o));
        let naive = reference::captures(&m, &uri);
        let fast = Pattern::new(&m).unwrap().captures(&uri).map(|c| {
            c.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect::<Vec<_>>()
        });
        prop_assert_eq!(&fast, &naive);
        let expanded = naive.map(|caps| reference::expand(&o, &caps));
        prop_assert_eq!(Rule::new(&m, &o).unwrap().apply(&uri), expanded);
    }
}

/// A map entry's two templates, one per side: TEL ones usually start `tel:`, SIP ones `sip:`.
fn entry_templates() -> impl Strategy<Value = (String, String)> {
    (template(), template())
}

/// A dial plan: up to four maps of up to 24 entries and the interfaces' map lists.
fn plan() -> impl Strategy<Value = Config> {
    let maps = prop::collection::vec(
        prop::collection::vec((entry_templates(), any::<bool>()), 0..24),
        1..5,
    );
    maps.prop_flat_map(|maps| {
        let n = maps.len();
        let lists = || prop::collection::vec(0..n, 0..4);
        (Just(maps), lists(), lists(), lists(), lists(), any::<u8>())
    })
    .prop_map(|(maps, tel_ext, tel_src, sip_ext, sip_src, missing)| {
        let name = |i: &usize| format!("m{i}");
        let maps = maps
            .into_iter()
            .enumerate()
            .map(|(i, entries)| {
                let entries = entries
                    .into_iter()
                    .enumerate()
                    .map(|(j, ((sip, tel), auth))| {
                        entry(
                            &format!("e{j}"),
                            &sip,
                            &tel,
                            auth.then(|| format!("auth{i}{j}")).as_deref(),
                        )
                    })
                    .collect();
                map(&format!("m{i}"), entries)
            })
            .collect();
        let list = |v: &[usize]| v.iter().map(name).collect::<Vec<_>>();
        let (te, ts, se, ss) = (
            list(&tel_ext),
            list(&tel_src),
            list(&sip_ext),
            list(&sip_src),
        );
        config(
            maps,
            (missing != 0).then(|| iface(&te, &ts)).flatten(),
            (missing != 1).then(|| iface(&se, &ss)).flatten(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn router_routes_like_linear_walk(
        config in plan(),
        calls in prop::collection::vec((any::<bool>(), uri(), uri()), 1..24),
    ) {
        let router = Router::from_config(&config).unwrap();
        // One buffer for all calls, as a gateway keeps it: what a call left in it never
        // shows in the next answer.
        let mut uris = RouteBuf::default();
        for (on_tel, from, to) in calls {
            let on = if on_tel { InterfaceKind::Tel } else { InterfaceKind::Sip };
            let expected = reference::route(&config, on, &from, &to);
            let borrowed = router.route_into(on, &from, &to, &mut uris);
            if borrowed.is_err() {
                prop_assert_eq!(&uris, &RouteBuf::default());
            }
            prop_assert_eq!(borrowed.map(|r| r.into_routed(uris.clone())), expected.clone());
            prop_assert_eq!(router.route(on, &from, &to), expected);
        }
    }
}

/// Number-series plans: many keys nested in each other (`sip:1`, `sip:12`, `sip:121`…) in
/// random order, catch-alls anywhere, so the index's parent chains and early stop are
/// exercised on deep prefixes.
fn series_plan() -> impl Strategy<Value = Config> {
    let entry_strategy = prop_oneof![
        4 => "[12]{0,5}".prop_map(|d| (format!("sip:{d}{{x}}@pbx.com"), format!("tel:+{d}{{x}}"))),
        1 => "[12]{0,3}".prop_map(|d| (format!("sip:{d}{{x}}@{{h}}"), format!("tel:+9{d}{{x}}"))),
        1 => "[12]{0,3}".prop_map(|d| (format!("{{any}}{d}@pbx.com"), "tel:+8{any}".to_owned())),
    ];
    prop::collection::vec(entry_strategy, 1..60).prop_map(|entries| {
        let entries = entries
            .iter()
            .enumerate()
            .map(|(i, (sip, tel))| entry(&format!("e{i}"), sip, tel, None))
            .collect();
        config(
            vec![map("m", entries)],
            iface(&["m"], &[]),
            iface(&["m"], &[]),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn router_routes_series_plans_like_linear_walk(
        config in series_plan(),
        calls in prop::collection::vec(("[12]{0,7}", "[12]{0,7}", prop_oneof![Just("pbx.com"), Just("x")]), 1..24),
    ) {
        let router = Router::from_config(&config).unwrap();
        for (from, to, host) in calls {
            let (from, to) = (format!("sip:{from}@pbx.com"), format!("sip:{to}@{host}"));
            prop_assert_eq!(
                router.route(InterfaceKind::Sip, &from, &to),
                reference::route(&config, InterfaceKind::Sip, &from, &to)
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Arbitrary text (any Unicode, any length up to 64) as URIs and template literals: no
    /// panic, and still the reference's answers.
    #[test]
    fn arbitrary_text_never_panics(
        lits in prop::collection::vec(any::<String>().prop_map(|s| s.replace(['{', '}'], "")), 1..4),
        uri in prop_oneof![any::<String>(), "tel:[+0-9wW;]{0,10}\\PC{0,8}"],
    ) {
        let template = format!("tel:{}", lits.join("{p}"));
        let (m, o) = (t(&template), t("{p}|{q}"));
        let expected = reference::captures(&m, &uri).map(|caps| reference::expand(&o, &caps));
        prop_assert_eq!(Rule::new(&m, &o).unwrap().apply(&uri), expected);
        let config = config(
            vec![map("m", vec![entry("e", &lits.join("{p}"), &template, None)])],
            iface(&["m"], &[]),
            iface(&["m"], &[]),
        );
        let router = Router::from_config(&config).unwrap();
        for on in [InterfaceKind::Tel, InterfaceKind::Sip] {
            prop_assert_eq!(router.route(on, &uri, &uri), reference::route(&config, on, &uri, &uri));
        }
    }
}

/// A plan large enough that a table keeps its record lines in a memory map (huge pages, from
/// 2 MiB): number series nested three deep (`sip:7`, `sip:71`, `sip:712`…) with
/// a catch-all in front of a few of them, routed like the linear walk on hits, misses and
/// catch-all answers.
#[test]
fn large_plan_routes_like_linear_walk() {
    let mut entries = vec![entry("early", "sip:75{x}@pbx.com", "tel:+75{x}", None)];
    for i in 0..12_000u32 {
        let series = format!("{}{:04}", 7 + i % 3, i);
        entries.push(entry(
            &format!("e{i}"),
            &format!("sip:{series}{{x}}@pbx.com"),
            &format!("tel:+{series}{{x}}"),
            Some("acc").filter(|_| i % 7 == 0),
        ));
    }
    entries.push(entry("rest", "sip:{x}@{h}", "tel:+0{x}", None));
    let config = config(
        vec![map("m", entries)],
        iface(&["m"], &[]),
        iface(&["m"], &[]),
    );
    let router = Router::from_config(&config).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for k in 0..40u32 {
        let i = k.wrapping_mul(2_971) % 12_000;
        for to in [
            format!("sip:{}{:04}55@pbx.com", 7 + i % 3, i),
            format!("sip:{}{:04}@pbx.com", 7 + i % 3, i),
            format!("sip:{}{:03}@pbx.com", 7 + i % 3, i),
            format!("sip:{}{:04}1@elsewhere", 7 + i % 3, i),
            format!("sip:75{i}@pbx.com"),
        ] {
            let from = format!("sip:9{i}@pbx.com");
            let got = router.route(InterfaceKind::Sip, &from, &to);
            assert_eq!(
                got,
                reference::route(&config, InterfaceKind::Sip, &from, &to),
                "{to}"
            );
            let entry = got.map(|r| r.to_match.entry().to_owned());
            seen.insert(entry.map_or("none".to_owned(), |e| {
                if e.strip_prefix('e')
                    .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()))
                {
                    "series".into()
                } else {
                    e
                }
            }));
        }
    }
    // Series entries, the early entry in front of some and the catch-all all answered.
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["early", "rest", "series"]
    );
}

/// A failed attempt after a match (an earlier rule under a shorter key that fails on its
/// second middle literal, after writing its first capture) leaves the winner's captures intact.
#[test]
fn failed_later_attempt_keeps_the_winners_captures() {
    let config = config(
        vec![map(
            "m",
            vec![
                entry("wide", "sip:{a}x{b}y{c}@h", "tel:+0{a}", None),
                entry("narrow", "sip:1{z}", "tel:+1{z}", None),
            ],
        )],
        iface(&["m"], &[]),
        iface(&["m"], &[]),
    );
    let router = Router::from_config(&config).unwrap();
    let got = router.route(InterfaceKind::Sip, "sip:1@h", "sip:1x2@h");
    assert_eq!(
        got,
        reference::route(&config, InterfaceKind::Sip, "sip:1@h", "sip:1x2@h")
    );
    let got = got.unwrap();
    assert_eq!(
        (got.to.as_str(), got.to_match.entry()),
        ("tel:+1x2@h", "narrow")
    );
}

/// A reused buffer keeps its allocations: once both strings have grown to the longest URIs,
/// further calls write into the same memory.
#[test]
fn route_into_reuses_the_buffer() {
    let config = config(
        vec![map(
            "m",
            vec![entry("e", "sip:{x}@pbx.com", "tel:+8888;{x}", Some("acc"))],
        )],
        iface(&["m"], &[]),
        iface(&["m"], &[]),
    );
    let router = Router::from_config(&config).unwrap();
    let mut uris = RouteBuf::default();
    router
        .route_into(
            InterfaceKind::Sip,
            "sip:123456@pbx.com",
            "sip:1234567@pbx.com",
            &mut uris,
        )
        .unwrap();
    let (from_at, to_at) = (uris.from.as_ptr(), uris.to.as_ptr());
    for (from, to) in [
        ("sip:1@pbx.com", "sip:22@pbx.com"),
        ("sip:333@pbx.com", "sip:4@pbx.com"),
    ] {
        let route = router
            .route_into(InterfaceKind::Sip, from, to, &mut uris)
            .unwrap();
        assert_eq!((route.to_match.map(), route.to_match.entry()), ("m", "e"));
        assert_eq!(route.auth, Some("acc"));
        assert_eq!(
            Some(uris.clone()),
            router
                .route(InterfaceKind::Sip, from, to)
                .ok()
                .map(|r| RouteBuf {
                    from: r.from,
                    to: r.to
                })
        );
        assert_eq!((uris.from.as_ptr(), uris.to.as_ptr()), (from_at, to_at));
    }
    assert_eq!(uris.to, "tel:+8888;4");
    assert!(
        router
            .route_into(
                InterfaceKind::Sip,
                "sip:1@pbx.com",
                "sip:1@other",
                &mut uris
            )
            .is_err()
    );
    assert_eq!(uris, RouteBuf::default());
}

/// Output literals that repeat the match side are copied from the URI at lookup: never across
/// a TEL wait mark (the caller's `w` must not replace the template's `;`), non-ASCII text
/// stays whole, and a copy merged with the capture after it keeps the caller's spelling of
/// the captured text.
#[test]
fn copied_output_literals_keep_the_templates_text() {
    let config = config(
        vec![map(
            "m",
            vec![
                entry("wait", "sip:8888;{x}@pbx.se", "tel:+8888;{x}", None),
                entry("åsa", "sip:åsa.{x}@bü.se", "tel:+46åsa.bü.se{x}", None),
                entry("span", "sip:46701{x}@pbx.se", "tel:+46701{x}", None),
            ],
        )],
        iface(&["m"], &[]),
        iface(&["m"], &[]),
    );
    let router = Router::from_config(&config).unwrap();
    let mut uris = RouteBuf::default();
    for (on, from, to, expect) in [
        (
            InterfaceKind::Tel,
            "tel:+8888w1",
            "tel:+8888w101",
            "sip:8888;101@pbx.se",
        ),
        (
            InterfaceKind::Tel,
            "tel:+8888;1",
            "tel:+8888W101",
            "sip:8888;101@pbx.se",
        ),
        (
            InterfaceKind::Sip,
            "sip:åsa.1@bü.se",
            "sip:åsa.77@bü.se",
            "tel:+46åsa.bü.se77",
        ),
        (
            InterfaceKind::Tel,
            "tel:+46701;2",
            "tel:+46701w5",
            "sip:46701w5@pbx.se",
        ),
    ] {
        let expected = reference::route(&config, on, from, to);
        assert_eq!(expected.as_ref().map(|r| r.to.as_str()), Ok(expect));
        let got = router.route_into(on, from, to, &mut uris);
        assert_eq!(got.map(|r| r.into_routed(uris.clone())), expected);
    }
}
