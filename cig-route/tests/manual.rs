//! The manual's routing examples and rules, end to end through [`Router`], each also checked
//! against the naive [`reference`] router.

mod common;

use cig_core::conf::{
    Config,
    InterfaceKind::{Sip, Tel},
};
use cig_route::{FromMaps, Rejected, RouteError, Routed, Router, Untranslated, reference};
use common::*;

/// Loads `examples/conf/NAME`, the manual's examples as files (repaired where the manual's
/// text is broken; see the comments in each file).
fn load(name: &str) -> Config {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/conf")
        .join(name);
    cig_core::conf::load(&path)
        .unwrap_or_else(|d| panic!("{name}: {d}"))
        .config
}

/// The manual's simple configuration, repaired as design.md §6 says: the sip interface's
/// source map is the defined `srctel2sip` (the manual lists an undefined `srcsip2tel`).
fn simple() -> Config {
    load("simple.conf")
}

/// The manual's elaborate configuration (the parser strips the whitespace inside its
/// templates, with a warning).
fn elaborate() -> Config {
    load("elaborate.conf")
}

/// Routes with the indexed router, checks the reference router agrees, returns the result.
fn route(
    config: &Config,
    on: cig_core::conf::InterfaceKind,
    from: &str,
    to: &str,
) -> Result<Routed, Rejected> {
    let got = Router::from_config(config).unwrap().route(on, from, to);
    assert_eq!(
        got,
        reference::route(config, on, from, to),
        "router and reference disagree"
    );
    got
}

fn names(r: &Routed) -> [String; 2] {
    [r.to_match.to_string(), r.from_match.to_string()]
}

#[test]
fn simple_worked_example_sip_to_tel() {
    let r = route(
        &simple(),
        Sip,
        "sip:101@pbx.com",
        "sip:94670123456@secure.com",
    )
    .unwrap();
    assert_eq!(r.out_interface, Tel);
    assert_eq!(r.to, "tel:+4670123456"); // the manual prints +464670123456, a typo
    assert_eq!(r.from, "tel:+8888;101");
    assert_eq!(
        names(&r),
        ["mapsip2tel/sipext2tel", "maptel2sip/telext2sip"]
    );
    assert_eq!(r.from_maps, FromMaps::Extension, "tel has no source maps");
    assert_eq!(r.auth, None);
}

#[test]
fn simple_tel_to_sip_uses_sip_source_map() {
    for to in ["tel:+8888;101", "tel:+8888w101", "tel:+8888W101"] {
        let r = route(&simple(), Tel, "tel:+4670123456", to).unwrap();
        assert_eq!(r.out_interface, Sip);
        assert_eq!(r.to, "sip:101@pbx.com", "{to}");
        assert_eq!(r.from, "sip:4670123456@secure.com");
        assert_eq!(
            names(&r),
            ["maptel2sip/telext2sip", "srctel2sip/tel2sipsrc"]
        );
        assert_eq!(r.from_maps, FromMaps::Source);
    }
}

#[test]
fn manual_as_printed_names_an_undefined_source_map() {
    let mut config = simple();
    config.interfaces.sip.as_mut().unwrap().source_maps = vec!["srcsip2tel".into()];
    assert_eq!(
        Router::from_config(&config).unwrap_err(),
        RouteError::UnknownMap {
            interface: Sip,
            map: "srcsip2tel".into()
        }
    );
}

#[test]
fn elaborate_both_directions_discard_domain_and_options() {
    let c = elaborate();
    let r = route(
        &c,
        Sip,
        "sip:101@pbx.com;transport=tcp",
        "sip:4670123456@cig.example.com:5060",
    )
    .unwrap();
    assert_eq!(
        (r.out_interface, r.to.as_str(), r.from.as_str()),
        (Tel, "tel:+4670123456", "tel:+8888;101")
    );
    assert_eq!(names(&r), ["mapsip2tel/all", "srcsip2tel/all"]);

    let r = route(&c, Tel, "tel:+4670123456", "tel:+8888w101").unwrap();
    assert_eq!(
        (r.out_interface, r.to.as_str(), r.from.as_str()),
        (Sip, "sip:101@pbx.com", "sip:4670123456@secure.com")
    );
    assert_eq!(names(&r), ["maptel2sip/asterisk", "srctel2sip/all"]);
}

#[test]
fn rejection_reasons() {
    let c = simple();
    // No new to-URI.
    let e = route(&c, Sip, "sip:101@pbx.com", "sip:101@pbx.com").unwrap_err();
    assert_eq!(e, Rejected::NoExtensionMatch { interface: Sip });
    assert_eq!(
        e.to_string(),
        "no new to-URI: no extension map entry of the sip interface matches the to-URI"
    );
    // No new from-URI, from the outgoing interface's extension maps (tel has no source maps).
    let e = route(&c, Sip, "sip:101@elsewhere.com", "sip:9123@secure.com").unwrap_err();
    assert_eq!(
        e,
        Rejected::NoSourceMatch {
            interface: Tel,
            maps: FromMaps::Extension
        }
    );
    assert!(
        e.to_string().contains("tel interface has no source maps"),
        "{e}"
    );
    // No new from-URI, from the outgoing interface's source maps.
    let e = route(&c, Tel, "sip:not-a-tel-uri", "tel:+8888;101").unwrap_err();
    assert_eq!(
        e,
        Rejected::NoSourceMatch {
            interface: Sip,
            maps: FromMaps::Source
        }
    );
    assert_eq!(
        e.to_string(),
        "no new from-URI: no source map entry of the sip interface matches the from-URI"
    );
    // An interface that is not configured.
    let mut only_sip = c.clone();
    only_sip.interfaces.tel = None;
    let e = route(&only_sip, Sip, "sip:101@pbx.com", "sip:9123@secure.com").unwrap_err();
    assert_eq!(e, Rejected::InterfaceNotConfigured { interface: Tel });
    assert_eq!(e.to_string(), "the tel interface is not configured");
}

#[test]
fn first_match_wins_across_maps_in_listed_order() {
    let c = config(
        vec![
            map(
                "vip",
                vec![
                    entry("boss", "sip:boss@pbx.com", "tel:+8888;1", None),
                    entry("any", "sip:{x}@vip.pbx.com", "tel:+8888;9{x}", None),
                ],
            ),
            map(
                "all",
                vec![
                    entry("ones", "sip:{x}@pbx.com", "tel:+8888;1{x}", None),
                    entry("twos", "sip:{x}@pbx.com", "tel:+8888;2{x}", None),
                ],
            ),
        ],
        iface(&["vip", "all"], &[]),
        iface(&["vip", "all"], &[]),
    );
    // `all/ones` would match `tel:+8888;1` too, but `vip` is listed first.
    let r = route(&c, Tel, "tel:+8888;1", "tel:+8888;1").unwrap();
    assert_eq!(
        (r.to.as_str(), r.to_match.to_string()),
        ("sip:boss@pbx.com", "vip/boss".into())
    );
    assert_eq!(
        (r.from.as_str(), r.from_match.to_string()),
        ("sip:boss@pbx.com", "vip/boss".into())
    );
    let r = route(&c, Tel, "tel:+8888;9", "tel:+8888;15").unwrap();
    assert_eq!(
        (r.to.as_str(), r.to_match.to_string()),
        ("sip:5@pbx.com", "all/ones".into())
    );
    assert_eq!(
        (r.from.as_str(), r.from_match.to_string()),
        ("sip:@vip.pbx.com", "vip/any".into())
    );
    let r = route(&c, Tel, "tel:+8888;1", "tel:+8888;2").unwrap();
    assert_eq!(
        (r.to.as_str(), r.to_match.to_string()),
        ("sip:@pbx.com", "all/twos".into())
    );
}

#[test]
fn auth_of_the_extension_entry_travels() {
    let c = config(
        vec![
            map(
                "maptel2sip",
                vec![entry(
                    "maptel2sipauth",
                    "sip:{foobar}@pbx.com",
                    "tel:+8888;{foobar}",
                    Some("pbxaccount1"),
                )],
            ),
            map(
                "src",
                vec![entry(
                    "src",
                    "sip:{n}@secure.com",
                    "tel:+{n}",
                    Some("not-this-one"),
                )],
            ),
            map(
                "mapsip2tel",
                vec![entry("plain", "sip:{n}@secure.com", "tel:+{n}", None)],
            ),
        ],
        iface(&["maptel2sip"], &[]),
        iface(&["mapsip2tel"], &["src"]),
    );
    let r = route(&c, Tel, "tel:+46701", "tel:+8888w42").unwrap();
    assert_eq!(r.to, "sip:42@pbx.com");
    assert_eq!(r.auth.as_deref(), Some("pbxaccount1"));
    // The other direction's entry names no auth; the source entry's auth does not travel.
    let r = route(&c, Sip, "sip:42@pbx.com", "sip:46701@secure.com").unwrap();
    assert_eq!(r.auth, None);
}

#[test]
fn authentication_example_carries_pbxaccount1() {
    let c = load("authentication.conf");
    let r = route(&c, Tel, "tel:+8888;7", "tel:+8888w42").unwrap();
    assert_eq!(
        (r.to.as_str(), r.auth.as_deref()),
        ("sip:42@pbx.com", Some("pbxaccount1"))
    );
    assert_eq!(
        names(&r),
        ["maptel2sipauth/maptel2sipauth", "mapsip2tel/mapsip2tel"]
    );
    // The sip side: `discard` swallows what follows the domain and expands to nothing.
    let r = route(&c, Sip, "sip:42@pbx.com", "sip:7@pbx.com;user=phone").unwrap();
    assert_eq!(
        (r.to.as_str(), r.from.as_str(), r.auth.as_deref()),
        ("tel:+8888;7", "tel:+8888;42", None)
    );
}

#[test]
fn build_errors() {
    let mut c = simple();
    c.maps[0].entries[0].sip = None;
    assert_eq!(
        Router::from_config(&c).unwrap_err().to_string(),
        "entry `telext2sip` of map `maptel2sip` has no sip template but interface tel uses it"
    );
    // Entries of maps that no interface uses are not compiled and need not be complete.
    let mut c = simple();
    c.maps.push(map("unused", vec![]));
    c.maps[3].entries.push(cig_core::conf::MapEntry {
        name: "half".into(),
        sip: None,
        tel: Some(t("tel:1")),
        auth: None,
    });
    assert!(Router::from_config(&c).is_ok());
}

#[test]
fn translate_maps() {
    let mut c = simple();
    c.translate_maps = vec![translate_map(
        "to_mail",
        &[
            ("tel:+8888;{ext}", "{ext}@pbx.com"),
            ("tel:+{num}", "{num}@secure.com{unused}"),
        ],
    )];
    let router = Router::from_config(&c).unwrap();
    for (uri, expect) in [
        ("tel:+8888w101", Ok(("101@pbx.com", 0))),
        ("tel:+4670", Ok(("4670@secure.com", 1))),
        ("sip:x@y", Err(Untranslated::NoMatch)),
    ] {
        let got = router.translate("to_mail", uri);
        assert_eq!(
            got.as_ref()
                .map(|t| (t.uri.as_str(), t.rule))
                .map_err(|e| *e),
            expect
        );
        assert_eq!(got, reference::translate(&c, "to_mail", uri));
    }
    assert_eq!(
        router.translate("nope", "tel:+1"),
        Err(Untranslated::UnknownMap)
    );
    assert_eq!(
        Untranslated::NoMatch.to_string(),
        "no rule of the translate map matches the URI"
    );
}
