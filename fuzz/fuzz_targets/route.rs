//! Routing: for any cig.conf the router accepts and any pair of URIs, the indexed router answers
//! exactly as the naive linear walk of the manual's rules (`cig_route::reference`), through
//! both lookups (`route_into` with a reused buffer, `route`) and every translate map — and never
//! panics. Input: the config text, then the from-URI and the to-URI, separated by NUL bytes.
#![no_main]

use cig_core::conf::InterfaceKind;
use cig_route::{RouteBuf, Router, reference};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\0');
    let (Some(conf), Some(from), Some(to)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let Ok(loaded) = cig_core::conf::parse(conf, "fuzz.conf") else {
        return;
    };
    let config = loaded.config;
    let Ok(router) = Router::from_config(&config) else {
        return;
    };
    // A buffer left dirty by an earlier answer must not show in the next one.
    let mut uris = RouteBuf {
        from: "sip:left@over".to_owned(),
        to: "tel:+0".to_owned(),
    };
    for on in [InterfaceKind::Sip, InterfaceKind::Tel] {
        let expected = reference::route(&config, on, from, to);
        let borrowed = router
            .route_into(on, from, to, &mut uris)
            .map(|r| r.into_routed(uris.clone()));
        assert_eq!(
            borrowed, expected,
            "route_into on {on:?}: {from:?} -> {to:?}"
        );
        assert_eq!(router.route(on, from, to), expected, "route on {on:?}");
    }
    for map in &config.translate_maps {
        assert_eq!(
            router.translate(&map.name, to),
            reference::translate(&config, &map.name, to),
            "translate {}: {to:?}",
            map.name
        );
    }
});
