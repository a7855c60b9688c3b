//! WAV files and received media: `wav::decode` never panics and gives back what `encode`
//! wrote for anything it accepts; the audio endpoint's receive path (plain RTP and SRTP) never
//! panics on any datagram and reports at most one digit per packet.
#![no_main]

use std::time::Instant;

use cig_media::bridge::LegSrtp;
use cig_media::endpoint::{Endpoint, EndpointConfig, Received, Silence};
use cig_media::g711::Law;
use cig_media::srtp::{MasterKey, SrtpProfile};
use cig_media::wav;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(samples) = wav::decode(data) {
        assert!(samples.len() <= data.len() / 2);
        assert_eq!(wav::decode(&wav::encode(&samples)).unwrap(), samples);
    }
    let now = Instant::now();
    let key = MasterKey::new(SrtpProfile::Aes128CmHmacSha1_80, &[3; 16], &[4; 14]).unwrap();
    for srtp in [false, true] {
        let mut cfg = EndpointConfig::new(Law::Alaw, 1);
        if srtp {
            cfg.srtp = Some(LegSrtp {
                inbound: key.clone(),
                outbound: key.clone(),
            });
        }
        let mut ep = Endpoint::new(cfg, Box::new(Silence), now);
        let mut buf = data.to_vec();
        if let Ok(Received::Audio { samples, .. }) = ep.handle_packet(&mut buf, data.len()) {
            assert!(samples.len() <= data.len());
        }
    }
});
