//! `conf/parse_100k`: lex, parse and validate a cig.conf with a 100 000-entry dial plan
//! (target < 1 s), and an anchor in the same run: splitting the same text at whitespace.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

/// A realistic large dial plan: 100k extensions in ten maps with literal prefixes, a source
/// map, both interfaces, an auth referenced by every tenth entry.
fn dial_plan(entries: usize) -> String {
    let mut s = String::with_capacity(entries * 100);
    s.push_str("auth pbx { user \"cig\"; password \"secret\"; }\n");
    let per_map = entries / 10;
    for m in 0..10 {
        s.push_str(&format!("map ext{m} {{\n"));
        for i in 0..per_map {
            let n = m * per_map + i;
            let auth = if n % 10 == 0 { " auth pbx" } else { "" };
            s.push_str(&format!(
                "    entry e{n} tel \"tel:+8888;{n:06}{{ext}}\" sip \"sip:{n:06}{{ext}}@pbx{m}.example.com\"{auth};\n"
            ));
        }
        s.push_str("}\n");
    }
    s.push_str("map src { entry all tel \"tel:+{n}\" sip \"sip:{n}@secure.example.com\"; }\n");
    s.push_str("interfaces {\n    tel {\n");
    for m in 0..10 {
        s.push_str(&format!("        extension map ext{m};\n"));
    }
    s.push_str("    }\n    sip {\n        source map src;\n        bind 192.168.1.1;\n        rtp_port_range 10000 20000;\n    }\n}\n");
    s
}

fn bench(c: &mut Criterion) {
    let text = dial_plan(100_000);
    let loaded = cig_core::conf::parse(&text, "big.conf").expect("valid");
    let n: usize = loaded.config.maps.iter().map(|m| m.entries.len()).sum();
    assert_eq!(n, 100_001);
    let mut g = c.benchmark_group("conf");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Bytes(text.len() as u64));
    g.bench_function("parse_100k", |b| {
        b.iter(|| cig_core::conf::parse(black_box(&text), "big.conf").unwrap())
    });
    // Anchor: the cheapest possible pass that still looks at every word of the same text.
    g.bench_function("anchor_split_whitespace_100k", |b| {
        b.iter(|| black_box(&text).split_whitespace().count())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
