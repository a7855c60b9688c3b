//! UMSG/1 stream decoder: arbitrary bytes in arbitrary chunks never panic, the decoder never
//! buffers more than one capped frame, and every decoded frame re-encodes to a frame that
//! decodes to itself. Also the routing-identity cut on any decoded TO.
#![no_main]

use cig_umsg::frame::{FrameDecoder, MAX_FRAME_LEN, PREFIX_LEN, tag};
use cig_umsg::register::routing_identity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut d = FrameDecoder::new();
    for mut part in rest.chunks(chunk) {
        while !part.is_empty() {
            match d.feed(&mut part) {
                Ok(Some(frame)) => {
                    let bytes = frame.to_bytes().expect("a decoded frame re-encodes");
                    let again = FrameDecoder::new().feed(&mut bytes.as_slice());
                    assert_eq!(again, Ok(Some(frame.clone())));
                    if let Some(to) = frame.get(tag::TO).and_then(|t| std::str::from_utf8(t).ok()) {
                        assert!(to.starts_with(routing_identity(to)));
                    }
                }
                Ok(None) => {}
                Err(_) => return,
            }
            assert!(d.buffered() <= MAX_FRAME_LEN + PREFIX_LEN);
        }
    }
});
