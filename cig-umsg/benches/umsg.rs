//! `umsg/frame_roundtrip`: encode a BANG-sized frame and decode it through the stream decoder.
//! Anchor in the same run: `umsg/memcpy_anchor`, copying the same number of bytes.

use cig_umsg::frame::{Frame, FrameDecoder, FrameType, tag};
use criterion::{Criterion, black_box, criterion_group, criterion_main};

fn bang() -> Frame {
    Frame::new(FrameType::Bang)
        .with(tag::SESSION_ID, [0x5a; 12])
        .with(tag::FROM, b"tel:+447700900123".to_vec())
        .with(tag::TO, b"tel:+8888;101".to_vec())
        .with(tag::IMESSAGE, vec![0xa5; 560])
        .with(tag::CODECS, vec![8, 0])
        .with(tag::DTMF_PT, [101])
        .with(tag::SSRC, 0x1234_5678u32.to_be_bytes())
}

fn bench(c: &mut Criterion) {
    let frame = bang();
    let mut g = c.benchmark_group("umsg");
    let mut out = Vec::with_capacity(1024);
    g.bench_function("frame_roundtrip", |b| {
        b.iter(|| {
            out.clear();
            black_box(&frame).encode(&mut out).unwrap();
            let mut d = FrameDecoder::new();
            let mut input = out.as_slice();
            black_box(d.feed(&mut input).unwrap())
        })
    });
    let src = frame.to_bytes().unwrap();
    g.bench_function("memcpy_anchor", |b| {
        b.iter(|| black_box(black_box(&src).clone()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
