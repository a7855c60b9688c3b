//! Criterion benches for ECCSI and SAKKE (ids as named in docs/perf.md).

use cig_mikey_sakke::{eccsi, sakke};
use criterion::{Criterion, criterion_group, criterion_main};
use rand_core::OsRng;

const ID: &[u8] = b"2026-11\0tel:+447700900123\0";

fn eccsi_benches(c: &mut Criterion) {
    let (ksak, kpak) = eccsi::generate_community(&mut OsRng);
    let (ssk, pvt) = eccsi::issue_user_key(&ksak, &kpak, ID, &mut OsRng);
    let key = eccsi::SigningKey::new(&kpak, ID, ssk, pvt).expect("fresh key validates");
    let msg = [0x5au8; 300];
    c.bench_function("eccsi/sign", |b| b.iter(|| key.sign(&msg, &mut OsRng)));
    let sig = key.sign(&msg, &mut OsRng);
    c.bench_function("eccsi/verify", |b| {
        b.iter(|| eccsi::verify(&kpak, ID, &msg, &sig).expect("verifies"))
    });
}

fn sakke_benches(c: &mut Criterion) {
    let (z, zpub) = sakke::generate_master(&mut OsRng);
    let rsk = sakke::issue_rsk(&z, ID).expect("issue");
    // per-KMS table and per-RSK lines are built once, outside the measurement; the recipient
    // and the RSK's own-identifier tables are built by the warm-up
    zpub.prepare();
    rsk.prepare();
    let ssv = sakke::Ssv::random(&mut OsRng);
    c.bench_function("sakke/encapsulate", |b| {
        b.iter(|| sakke::encapsulate(&zpub, ID, &ssv).expect("encapsulates"))
    });
    // a different recipient every time: no per-recipient table, two fixed-base tables
    let mut n = 0u64;
    c.bench_function("sakke/encapsulate_new_recipient", |b| {
        b.iter(|| {
            n += 1;
            let id = [ID, &n.to_be_bytes()].concat();
            sakke::encapsulate(&zpub, &id, &ssv).expect("encapsulates")
        })
    });
    let sed = sakke::encapsulate(&zpub, ID, &ssv).expect("encapsulates");
    c.bench_function("sakke/decapsulate", |b| {
        b.iter(|| sakke::decapsulate(&zpub, ID, &rsk, &sed).expect("decapsulates"))
    });
    let mut slow = c.benchmark_group("sakke");
    slow.sample_size(10);
    slow.bench_function("decapsulate_reference", |b| {
        b.iter(|| sakke::reference::decapsulate(&zpub, ID, &rsk, &sed).expect("decapsulates"))
    });
    slow.finish();
}

criterion_group!(benches, eccsi_benches, sakke_benches);
criterion_main!(benches);
