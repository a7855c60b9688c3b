//! `route/lookup_1k`, `route/lookup_10k`, `route/lookup_100k`: one routed call (to-URI and
//! from-URI) through a dial plan whose extension map and source map each hold 1k / 10k / 100k
//! entries — `Router::route_into` with one `RouteBuf` reused across calls, the path the
//! gateway takes (the new URIs written into the buffer, the rest borrowed) — with the naive linear walk (`route/linear_*`) measured in the same run as the
//! anchor, and a memory-latency anchor (`route/hashmap_get_*`: one std
//! `HashMap<String, u32>` lookup of a to-URI in a map of as many URIs) that shows how loaded
//! the shared machine was during the run.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use cig_core::Template;
use cig_core::conf::{Config, Interface, InterfaceKind, Map, MapEntry};
use cig_route::{RouteBuf, Router, reference};
use criterion::{Criterion, criterion_group};

/// Dial plan sizes and their bench id suffixes.
const SIZES: [(usize, &str); 3] = [(1_000, "1k"), (10_000, "10k"), (100_000, "100k")];

const COUNTRY_CODES: [&str; 10] = ["46", "47", "45", "358", "49", "44", "1", "33", "34", "39"];

/// The `i`-th number series: country code, area code, series (10 × 100 × 100 distinct).
fn series(i: usize) -> String {
    let cc = COUNTRY_CODES[i % COUNTRY_CODES.len()];
    format!("{cc}{:02}{:02}", (i / 10) % 100, (i / 1000) % 100)
}

fn t(s: &str) -> Option<Template> {
    Some(Template::parse(s).unwrap())
}

fn entry(name: String, sip: &str, tel: &str) -> MapEntry {
    MapEntry {
        name,
        sip: t(sip),
        tel: t(tel),
        auth: None,
    }
}

/// A plan of `n` series in each direction, with a few fixed numbers first and catch-alls last:
/// - sip extension map `out`: `sip:9{series}{ext}@secure.com` → `tel:+{series}{ext}`;
/// - tel source map `src`: `sip:{dept}{ext}@pbx.com` → `tel:+8888;{dept}{ext}` per department
///   prefix.
fn plan(n: usize) -> Config {
    let mut out = vec![
        entry("emergency".into(), "sip:112@{d}", "tel:+112"),
        entry("operator".into(), "sip:0@{d}", "tel:+8888;0"),
    ];
    out.extend((0..n).map(|i| {
        let s = series(i);
        entry(
            format!("out{i}"),
            &format!("sip:9{s}{{ext}}@secure.com"),
            &format!("tel:+{s}{{ext}}"),
        )
    }));
    out.push(entry("rest".into(), "sip:9{num}@{domain}", "tel:+{num}"));
    let mut src: Vec<MapEntry> = (0..n)
        .map(|i| {
            let dept = format!("{}{:04}", 1 + i % 9, i / 9);
            entry(
                format!("src{i}"),
                &format!("sip:{dept}{{ext}}@pbx.com"),
                &format!("tel:+8888;{dept}{{ext}}"),
            )
        })
        .collect();
    src.push(entry(
        "anyone".into(),
        "sip:{user}@{domain}",
        "tel:+8888;{user}",
    ));
    let mut config = Config {
        maps: vec![
            Map {
                name: "out".into(),
                entries: out,
            },
            Map {
                name: "src".into(),
                entries: src,
            },
        ],
        ..Config::default()
    };
    config.interfaces.sip = Some(Interface {
        extension_maps: vec!["out".into()],
        ..Interface::default()
    });
    config.interfaces.tel = Some(Interface {
        source_maps: vec!["src".into()],
        ..Interface::default()
    });
    config
}

/// 1024 calls spread over the plan: `(from, to)` on the sip interface, all routable.
fn calls(n: usize) -> Vec<(String, String)> {
    (0..1024usize)
        .map(|k| {
            let i = k.wrapping_mul(7919) % n;
            let dept = format!("{}{:04}", 1 + i % 9, i / 9);
            (
                format!("sip:{dept}{:02}@pbx.com", k % 100),
                format!("sip:9{}{:04}@secure.com", series(i), k),
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("route");
    for (n, label) in SIZES {
        let config = plan(n);
        let router = Router::from_config(&config).unwrap();
        let calls = calls(n);
        let mut uris = RouteBuf::default();
        for (from, to) in &calls {
            let r = router
                .route_into(InterfaceKind::Sip, from, to, &mut uris)
                .unwrap();
            assert!(
                r.to_match.entry().starts_with("out") && r.from_match.entry().starts_with("src")
            );
            assert_eq!(
                Some(r.into_routed(uris.clone())),
                router.route(InterfaceKind::Sip, from, to).ok()
            );
        }
        let mut k = 0;
        let exact: HashMap<String, u32> = (0..n as u32)
            .map(|i| (format!("sip:9{}0000@secure.com", series(i as usize)), i))
            .collect();
        let probes: Vec<String> = (0..calls.len())
            .map(|k| format!("sip:9{}0000@secure.com", series(k.wrapping_mul(7919) % n)))
            .collect();
        group.bench_function(format!("hashmap_get_{label}"), |b| {
            b.iter(|| {
                k = (k + 1) % probes.len();
                black_box(exact.get(black_box(probes[k].as_str())))
            })
        });
        group.bench_function(format!("lookup_{label}"), |b| {
            b.iter(|| {
                k = (k + 1) % calls.len();
                route_call(&router, &calls[k], &mut uris);
            })
        });
        group.sample_size(10);
        group.bench_function(format!("linear_{label}"), |b| {
            b.iter(|| {
                k = (k + 1) % calls.len();
                let (from, to) = &calls[k];
                black_box(reference::route(
                    &config,
                    InterfaceKind::Sip,
                    black_box(from),
                    black_box(to),
                ))
            })
        });
        group.sample_size(100);
    }
    group.finish();
}

/// Minimum over 2,000 runs of the mean time of 16 consecutive `f()` calls.
/// One routed call as the gateway makes it: both URIs of `call` through `route_into` with the
/// caller's reused buffer.
#[inline(always)]
fn route_call(router: &Router, (from, to): &(String, String), uris: &mut RouteBuf) {
    black_box(
        router
            .route_into(InterfaceKind::Sip, black_box(from), black_box(to), uris)
            .ok(),
    );
    black_box(&*uris);
}

fn best_of(mut f: impl FnMut()) -> Duration {
    (0..2000)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..16 {
                f();
            }
            t.elapsed() / 16
        })
        .min()
        .unwrap_or_default()
}

/// Best-of figures for the lookup and its HashMap yardstick, both sizes.
fn best_of_report() {
    for (n, label) in SIZES {
        let config = plan(n);
        let router = Router::from_config(&config).unwrap();
        let calls = calls(n);
        let exact: HashMap<String, u32> = (0..n as u32)
            .map(|i| (format!("sip:9{}0000@secure.com", series(i as usize)), i))
            .collect();
        let probes: Vec<String> = (0..calls.len())
            .map(|k| format!("sip:9{}0000@secure.com", series(k.wrapping_mul(7919) % n)))
            .collect();
        let mut k = 0;
        let mut uris = RouteBuf::default();
        let lookup = best_of(|| {
            k = (k + 1) % calls.len();
            route_call(&router, &calls[k], &mut uris);
        });
        let get = best_of(|| {
            k = (k + 1) % probes.len();
            black_box(exact.get(black_box(probes[k].as_str())));
        });
        println!(
            "route/lookup_{label} best-of: {lookup:?}; route/hashmap_get_{label} best-of: {get:?}"
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    best_of_report();
}
