//! RTP/RTCP/RFC 4733 parsing and the bridge session on plain-RTP legs: no input panics, parsed
//! lengths stay inside the packet, and whatever the session forwards is itself valid RTP/RTCP.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cig_media::bridge::{Action, Leg, LegConfig, Session, SessionConfig};
use cig_media::g711::Law;
use cig_media::{dtmf, rtcp, rtp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = rtp::RtpHeader::parse(data) {
        assert!(h.header_len <= data.len());
        if let Ok(end) = h.payload_end(data) {
            assert!(h.header_len <= end && end <= data.len());
        }
    }
    let _ = rtp::is_rtcp(data);
    let _ = dtmf::TelephoneEvent::parse(data);
    for p in rtcp::packets(data) {
        match p {
            Ok(rtcp::RtcpPacket::SenderReport { reports, .. })
            | Ok(rtcp::RtcpPacket::ReceiverReport { reports, .. }) => {
                reports.for_each(drop);
            }
            Ok(rtcp::RtcpPacket::Bye { sources, .. }) => sources.for_each(drop),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let mut copy = data.to_vec();
    let _ = rtcp::rewrite_ssrcs(&mut copy, |s| s.rotate_left(8));

    // Both legs plain, different laws, so audio is transcoded.
    let mut a = LegConfig::new(Law::Ulaw, 1);
    a.remote = Some("127.0.0.1:4000".parse().unwrap());
    let mut b = LegConfig::new(Law::Alaw, 2);
    b.remote = Some("127.0.0.1:5000".parse().unwrap());
    let config = SessionConfig {
        a,
        b,
        media_timeout: Duration::from_secs(1),
    };
    let now = Instant::now();
    let mut session = Session::new(&config, &[], now);
    let src: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut buf = data.to_vec();
    buf.resize(data.len() + cig_media::bridge::MAX_OVERHEAD, 0);
    if let Action::Forward { len, .. } = session.on_rtp(Leg::A, src, &mut buf, data.len(), now) {
        assert!(rtp::RtpHeader::parse(&buf[..len]).is_ok());
    }
    let mut buf = data.to_vec();
    if let Action::Forward { len, .. } = session.on_rtcp(Leg::B, src, &mut buf, data.len()) {
        assert!(rtcp::packets(&buf[..len]).all(|p| p.is_ok()));
    }
    let _ = session.poll_timeout(now + Duration::from_secs(2));
});
