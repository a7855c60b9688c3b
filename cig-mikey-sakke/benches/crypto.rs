//! Criterion benches for ECCSI and SAKKE (ids as named in docs/perf.md).

use cig_mikey_sakke::eccsi;
use criterion::{Criterion, criterion_group, criterion_main};
use rand_core::OsRng;

fn eccsi_benches(c: &mut Criterion) {
    let id = b"2026-11\0tel:+447700900123\0";
    let (ksak, kpak) = eccsi::generate_community(&mut OsRng);
    let (ssk, pvt) = eccsi::issue_user_key(&ksak, &kpak, id, &mut OsRng);
    let key = eccsi::SigningKey::new(&kpak, id, ssk, pvt).expect("fresh key validates");
    let msg = [0x5au8; 300];
    c.bench_function("eccsi/sign", |b| b.iter(|| key.sign(&msg, &mut OsRng)));
    let sig = key.sign(&msg, &mut OsRng);
    c.bench_function("eccsi/verify", |b| {
        b.iter(|| eccsi::verify(&kpak, id, &msg, &sig).expect("verifies"))
    });
}

criterion_group!(benches, eccsi_benches);
criterion_main!(benches);
