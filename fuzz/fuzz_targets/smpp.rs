//! cig-msg SMPP: the PDU decoder and a bound ESME session never panic on any bytes from the
//! centre; every PDU the decoder accepts re-encodes (when encodable) to bytes that decode to it.
#![no_main]

use std::time::{Duration, Instant};

use cig_msg::smpp::pdu::{self, Frame, Pdu};
use cig_msg::smpp::session::{Session, SessionConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((frame, used))) = pdu::decode(rest) {
        let mut out = Vec::new();
        if pdu::encode(&frame, &mut out).is_ok() {
            let (again, _) = pdu::decode(&out)
                .expect("re-encoded PDU decodes")
                .expect("complete");
            assert_eq!(again.pdu, frame.pdu);
        }
        rest = &rest[used..];
    }
    let t0 = Instant::now();
    let config = SessionConfig {
        system_id: "cig".into(),
        password: cig_core::Secret::new("pw"),
        window: 3,
        enquire_every: Duration::from_secs(30),
        reassembly_timeout: Duration::from_secs(60),
    };
    let Ok(mut s) = Session::new(config, t0) else {
        return;
    };
    let _ = s.poll_transmit();
    let mut bind = Vec::new();
    let resp = Frame {
        status: 0,
        seq: 1,
        pdu: Pdu::BindTransceiverResp {
            system_id: "x".into(),
        },
    };
    pdu::encode(&resp, &mut bind).expect("bind resp");
    s.handle_input(&bind, t0).expect("bound");
    let a = pdu::Address::from_uri_text("+4670");
    s.queue(
        1,
        &a,
        &a,
        cig_msg::smpp::text::split("hello", 1).expect("split"),
    );
    let _ = s.poll_transmit();
    for (i, chunk) in data.chunks(97).enumerate() {
        let now = t0 + Duration::from_millis(i as u64 * 700);
        if s.handle_input(chunk, now).is_err() || s.handle_timeout(now).is_err() {
            break;
        }
        while s.poll_event().is_some() {}
        let _ = s.poll_transmit();
        let _ = s.poll_timeout();
    }
});
