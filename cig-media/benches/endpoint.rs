//! Benchmarks of the audio endpoint and the tone detector, the per-call costs of the secure
//! phone and of tests that verify audio: one 20 ms frame sent and received over SRTP (tone
//! generation, A-law encode, protect, unprotect, decode) and one 100 ms block analysed against
//! the phone's 381-frequency grid (eight frequencies per pass; anchored by the same grid one
//! frequency at a time) and against three candidates.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cig_media::bridge::LegSrtp;
use cig_media::endpoint::{Endpoint, EndpointConfig, MAX_PACKET_LEN, PTIME, Silence};
use cig_media::g711::Law;
use cig_media::srtp::{MasterKey, SrtpProfile};
use cig_media::tone::{BLOCK_LEN, ToneGenerator, analyze, candidate_grid, goertzel_power};
use criterion::{Criterion, criterion_group, criterion_main};

fn endpoint(c: &mut Criterion) {
    let key = MasterKey::new(SrtpProfile::Aes128CmHmacSha1_80, &[1; 16], &[2; 14]).unwrap();
    let keys = LegSrtp {
        inbound: key.clone(),
        outbound: key,
    };
    let t0 = Instant::now();
    let mut tx = Endpoint::new(
        EndpointConfig::new(Law::Alaw, 1).with_srtp(keys.clone()),
        Box::new(ToneGenerator::new(1000.0, 8000)),
        t0,
    );
    let mut rx = Endpoint::new(
        EndpointConfig::new(Law::Alaw, 2).with_srtp(keys),
        Box::new(Silence),
        t0,
    );
    let mut buf = [0u8; MAX_PACKET_LEN];
    let mut now = t0;
    c.bench_function("endpoint/srtp_frame_roundtrip", |b| {
        b.iter(|| {
            let len = tx.poll_transmit(now, &mut buf).unwrap().unwrap();
            now += PTIME;
            black_box(rx.handle_packet(&mut buf, len).unwrap());
        })
    });
    // Keep the clock plausible for the optimiser (and for a reader).
    black_box(now.duration_since(t0) > Duration::ZERO);
}

fn tone(c: &mut Criterion) {
    let mut block = [0i16; BLOCK_LEN];
    ToneGenerator::new(1000.0, 8000).fill(&mut block);
    let grid = candidate_grid(100.0, 3900.0, 10.0);
    c.bench_function("tone/analyze_grid_381", |b| {
        b.iter(|| black_box(analyze(black_box(&block), &grid)))
    });
    // Anchor in the same run: the grid one frequency at a time (the reference path).
    c.bench_function("tone/grid_381_one_at_a_time", |b| {
        b.iter(|| {
            grid.iter()
                .map(|&f| goertzel_power(black_box(&block), f64::from(f)))
                .fold(0.0f64, f64::max)
        })
    });
    let three = [400.0, 1000.0, 1400.0];
    c.bench_function("tone/analyze_3", |b| {
        b.iter(|| black_box(analyze(black_box(&block), &three)))
    });
}

criterion_group!(benches, endpoint, tone);
criterion_main!(benches);
