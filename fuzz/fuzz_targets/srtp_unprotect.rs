//! SRTP/SRTCP unprotect on arbitrary bytes, for every profile: never panics, a packet it accepts
//! (the corpus holds genuine ones) is refused as a replay the second time, and any RTP/RTCP the
//! fuzzer makes survives protect → unprotect unchanged.
#![no_main]

use cig_media::srtp::{MAX_RTCP_OVERHEAD, MasterKey, SrtpContext, SrtpProfile};
use libfuzzer_sys::fuzz_target;

const PROFILES: [SrtpProfile; 3] = [
    SrtpProfile::Aes128CmHmacSha1_80,
    SrtpProfile::Aes128CmHmacSha1_32,
    SrtpProfile::AeadAes128Gcm,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let profile = PROFILES[usize::from(selector) % PROFILES.len()];
    let salt = vec![0x42; profile.master_salt_len()];
    let key = MasterKey::new(profile, &[0x17; 16], &salt).unwrap();
    let mut rx = SrtpContext::new(&key);

    let mut buf = data.to_vec();
    if rx.unprotect_rtp(&mut buf, data.len()).is_ok() {
        let mut again = data.to_vec();
        assert!(
            rx.unprotect_rtp(&mut again, data.len()).is_err(),
            "SRTP replay accepted"
        );
    }
    assert!(rx.unprotect_rtp(&mut buf, usize::MAX).is_err());
    let mut buf = data.to_vec();
    if rx.unprotect_rtcp(&mut buf, data.len()).is_ok() {
        let mut again = data.to_vec();
        assert!(
            rx.unprotect_rtcp(&mut again, data.len()).is_err(),
            "SRTCP replay accepted"
        );
    }
    let mut rx = SrtpContext::new(&key);

    let mut tx = SrtpContext::new(&key);
    let mut buf = data.to_vec();
    buf.resize(data.len() + MAX_RTCP_OVERHEAD, 0);
    if let Ok(n) = tx.protect_rtp(&mut buf, data.len()) {
        let plain = rx
            .unprotect_rtp(&mut buf, n)
            .expect("own SRTP packet rejected");
        assert_eq!(&buf[..plain], data);
    }
    let mut buf = data.to_vec();
    buf.resize(data.len() + MAX_RTCP_OVERHEAD, 0);
    if let Ok(n) = tx.protect_rtcp(&mut buf, data.len()) {
        let plain = rx
            .unprotect_rtcp(&mut buf, n)
            .expect("own SRTCP packet rejected");
        assert_eq!(&buf[..plain], data);
    }
});
