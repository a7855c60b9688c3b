//! Profiling harness for the SAKKE fast path: builds a KMS key, an RSK and their tables, then
//! runs `N` decapsulations (first argument, default 1) so that
//! `valgrind --tool=callgrind --toggle-collect='cig_mikey_sakke::sakke::decapsulate'` counts
//! the instructions of exactly those (see docs/perf.md, "ECCSI and SAKKE").

use cig_mikey_sakke::sakke;
use rand_core::OsRng;

const ID: &[u8] = b"2026-11\0tel:+447700900123\0";

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let (z, zpub) = sakke::generate_master(&mut OsRng);
    let rsk = sakke::issue_rsk(&z, ID).expect("issue");
    zpub.prepare();
    rsk.prepare();
    let ssv = sakke::Ssv::random(&mut OsRng);
    let sed = sakke::encapsulate(&zpub, ID, &ssv).expect("encapsulates");
    // the first decapsulation builds the RSK's own-identifier table (not counted)
    sakke::decapsulate(&zpub, ID, &rsk, &sed).expect("decapsulates");
    for _ in 0..n {
        let out = sakke::decapsulate(&zpub, ID, &rsk, &sed).expect("decapsulates");
        std::hint::black_box(out);
    }
}
