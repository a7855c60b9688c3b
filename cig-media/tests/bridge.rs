//! The bridge session driven as the relay drives it: a secure phone (SRTP, μ-law) on leg A, a
//! PBX (plain RTP, A-law) on leg B, a virtual clock.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use cig_media::bridge::{
    Action, Direction, DropReason, Event, Leg, LegConfig, LegSrtp, MAX_OVERHEAD, Session,
    SessionConfig,
};
use cig_media::dtmf::TelephoneEvent;
use cig_media::g711::{self, Law};
use cig_media::rtcp::{self, RtcpPacket};
use cig_media::rtp::{self, RtpHeader};
use cig_media::srtp::{MasterKey, SrtpContext, SrtpProfile};
use cig_media::{Error, srtp};

const PHONE_SSRC: u32 = 0x0a0a_0a0a;
const PBX_SSRC: u32 = 0x0b0b_0b0b;
const OUR_SSRC_A: u32 = 0xaaaa_0001;
const OUR_SSRC_B: u32 = 0xbbbb_0002;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn key(seed: u8) -> MasterKey {
    let bytes: Vec<u8> = (0..30u8).map(|i| seed ^ i.wrapping_mul(13)).collect();
    MasterKey::from_concatenated(SrtpProfile::Aes128CmHmacSha1_80, &bytes).unwrap()
}

struct Call {
    session: Session,
    /// The phone's contexts: it protects with the key we unprotect with, and vice versa.
    phone_tx: SrtpContext,
    phone_rx: SrtpContext,
    t0: Instant,
}

fn call() -> Call {
    let mut a = LegConfig::new(Law::Ulaw, OUR_SSRC_A);
    a.srtp = Some(LegSrtp {
        inbound: key(1),
        outbound: key(2),
    });
    a.remote = Some(addr("192.0.2.10:40000"));
    let mut b = LegConfig::new(Law::Alaw, OUR_SSRC_B);
    b.dtmf_payload_type = Some(96);
    b.remote = Some(addr("10.1.1.1:5004"));
    let config = SessionConfig {
        a,
        b,
        media_timeout: Duration::from_secs(10),
    };
    let overrides: [(IpAddr, IpAddr); 1] =
        [("10.1.1.1".parse().unwrap(), "127.0.0.1".parse().unwrap())];
    let t0 = Instant::now();
    Call {
        session: Session::new(&config, &overrides, t0),
        phone_tx: SrtpContext::new(&key(1)),
        phone_rx: SrtpContext::new(&key(2)),
        t0,
    }
}

fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 12];
    rtp::write_header(&mut p, false, pt, seq, ts, ssrc).unwrap();
    p.extend_from_slice(payload);
    p
}

/// A 1 kHz tone at 8 kHz, frame `n` of 160 samples.
fn tone(n: u32) -> [i16; 160] {
    let mut s = [0i16; 160];
    for (i, x) in s.iter_mut().enumerate() {
        let t = f64::from(n * 160 + i as u32) / 8000.0;
        *x = ((t * 1000.0 * std::f64::consts::TAU).sin() * 16000.0) as i16;
    }
    s
}

fn snr_db(reference: &[i16], got: &[i16]) -> f64 {
    let signal: f64 = reference.iter().map(|&x| f64::from(x).powi(2)).sum();
    let noise: f64 = reference
        .iter()
        .zip(got)
        .map(|(&r, &g)| (f64::from(r) - f64::from(g)).powi(2))
        .sum();
    10.0 * (signal / noise).log10()
}

impl Call {
    /// The phone sends a μ-law frame as SRTP; returns what the session did and the buffer.
    fn phone_sends(&mut self, src: SocketAddr, plain: &[u8], at: Duration) -> (Action, Vec<u8>) {
        let mut buf = plain.to_vec();
        buf.resize(plain.len() + MAX_OVERHEAD, 0);
        let n = self.phone_tx.protect_rtp(&mut buf, plain.len()).unwrap();
        let action = self.session.on_rtp(Leg::A, src, &mut buf, n, self.t0 + at);
        (action, buf)
    }

    fn pbx_sends(&mut self, src: SocketAddr, plain: &[u8], at: Duration) -> (Action, Vec<u8>) {
        let mut buf = plain.to_vec();
        buf.resize(plain.len() + MAX_OVERHEAD, 0);
        let action = self
            .session
            .on_rtp(Leg::B, src, &mut buf, plain.len(), self.t0 + at);
        (action, buf)
    }
}

#[test]
fn srtp_ulaw_to_rtp_alaw_keeps_a_1khz_tone_and_continuity() {
    let mut c = call();
    let phone = addr("192.0.2.99:41000");
    let mut reference = Vec::new();
    let mut received = Vec::new();
    let mut last_seq = None;
    for n in 0..50u32 {
        let pcm = tone(n);
        let mut ulaw = [0u8; 160];
        g711::encode_ulaw(&pcm, &mut ulaw);
        let plain = packet(0, 1000 + n as u16, 5000 + n * 160, PHONE_SSRC, &ulaw);
        let (action, buf) = c.phone_sends(phone, &plain, Duration::from_millis(20 * u64::from(n)));
        let Action::Forward { leg, dst, len } = action else {
            panic!("{action:?}")
        };
        assert_eq!((leg, dst, len), (Leg::B, addr("127.0.0.1:5004"), 172));
        let h = RtpHeader::parse(&buf[..len]).unwrap();
        assert_eq!((h.payload_type, h.ssrc), (8, OUR_SSRC_B));
        if let Some(prev) = last_seq {
            assert_eq!(h.sequence, u16::wrapping_add(prev, 1));
        }
        last_seq = Some(h.sequence);
        let mut pcm_out = [0i16; 160];
        g711::decode_alaw(&buf[12..len], &mut pcm_out);
        reference.extend_from_slice(&pcm);
        received.extend_from_slice(&pcm_out);
    }
    let snr = snr_db(&reference, &received);
    assert!(snr > 30.0, "SNR {snr:.1} dB");
    let stats = c.session.stats(Leg::A);
    assert_eq!((stats.rx_packets, stats.dropped), (50, 0));
    assert_eq!(c.session.stats(Leg::B).tx_packets, 50);
}

#[test]
fn rtp_alaw_to_srtp_ulaw_learns_the_phone_address() {
    let mut c = call();
    let pbx = addr("127.0.0.1:5004");
    let phone = addr("192.0.2.99:41000");
    // Before the phone sent anything, its announced address is the destination.
    assert_eq!(c.session.remote(Leg::A), Some(addr("192.0.2.10:40000")));
    let mut alaw = [0u8; 160];
    g711::encode_alaw(&tone(0), &mut alaw);
    let (action, _) = c.pbx_sends(pbx, &packet(8, 7, 0, PBX_SSRC, &alaw), Duration::ZERO);
    assert!(matches!(action, Action::Forward { dst, .. } if dst == addr("192.0.2.10:40000")));
    // The phone speaks from elsewhere (NAT): after its first authenticated packet we follow it.
    c.phone_sends(
        phone,
        &packet(0, 1, 0, PHONE_SSRC, &[0xff; 160]),
        Duration::ZERO,
    );
    assert_eq!(c.session.remote(Leg::A), Some(phone));
    let (action, mut buf) = c.pbx_sends(pbx, &packet(8, 8, 160, PBX_SSRC, &alaw), Duration::ZERO);
    let Action::Forward { leg, dst, len } = action else {
        panic!("{action:?}")
    };
    assert_eq!((leg, dst, len), (Leg::A, phone, 172 + 10));
    let n = c.phone_rx.unprotect_rtp(&mut buf, len).unwrap();
    let h = RtpHeader::parse(&buf[..n]).unwrap();
    assert_eq!((h.payload_type, h.ssrc), (0, OUR_SSRC_A));
    let expected: Vec<u8> = alaw.iter().map(|&a| g711::alaw_to_ulaw_code(a)).collect();
    assert_eq!(&buf[12..n], &expected[..]);
}

#[test]
fn forged_replayed_and_foreign_packets_are_dropped() {
    let mut c = call();
    let phone = addr("192.0.2.99:41000");
    let plain = packet(0, 1, 0, PHONE_SSRC, &[0xff; 160]);
    let mut buf = plain.clone();
    buf.resize(plain.len() + MAX_OVERHEAD, 0);
    let n = c.phone_tx.protect_rtp(&mut buf, plain.len()).unwrap();
    let genuine = buf.clone();
    let mut forged = buf.clone();
    forged[20] ^= 1;
    let now = c.t0;
    assert_eq!(
        c.session.on_rtp(Leg::A, phone, &mut forged, n, now),
        Action::Drop(DropReason::Srtp(Error::AuthFailed))
    );
    // A forged packet must not move the learned address.
    assert_eq!(c.session.remote(Leg::A), Some(addr("192.0.2.10:40000")));
    assert!(matches!(
        c.session.on_rtp(Leg::A, phone, &mut buf, n, now),
        Action::Forward { .. }
    ));
    let mut replay = genuine;
    assert_eq!(
        c.session.on_rtp(Leg::A, phone, &mut replay, n, now),
        Action::Drop(DropReason::Srtp(Error::Replayed))
    );
    // Plain leg: the first source is kept, others are dropped.
    let pbx = addr("127.0.0.1:5004");
    c.pbx_sends(
        pbx,
        &packet(8, 1, 0, PBX_SSRC, &[0xd5; 160]),
        Duration::ZERO,
    );
    let intruder = addr("127.0.0.1:6666");
    let (action, _) = c.pbx_sends(intruder, &packet(8, 2, 160, 9, &[0; 160]), Duration::ZERO);
    assert_eq!(action, Action::Drop(DropReason::UnexpectedSource(intruder)));
    // Payload types nobody negotiated.
    let (action, _) = c.pbx_sends(pbx, &packet(18, 3, 320, PBX_SSRC, &[0; 20]), Duration::ZERO);
    assert_eq!(action, Action::Drop(DropReason::PayloadType(18)));
    assert_eq!(c.session.stats(Leg::A).dropped, 2);
    assert_eq!(c.session.stats(Leg::B).dropped, 2);
}

#[test]
fn dtmf_crosses_with_payload_type_remap_both_ways() {
    let mut c = call();
    let ev = TelephoneEvent {
        event: 5,
        end: true,
        volume: 10,
        duration: 800,
    };
    let mut payload = [0u8; 4];
    ev.write(&mut payload).unwrap();
    let (action, buf) = c.phone_sends(
        addr("192.0.2.99:41000"),
        &packet(101, 1, 0, PHONE_SSRC, &payload),
        Duration::ZERO,
    );
    let Action::Forward { len, .. } = action else {
        panic!("{action:?}")
    };
    let h = RtpHeader::parse(&buf[..len]).unwrap();
    assert_eq!(h.payload_type, 96);
    assert_eq!(
        TelephoneEvent::parse(&buf[12..len]),
        Ok(ev),
        "payload untouched"
    );

    let (action, mut buf) = c.pbx_sends(
        addr("127.0.0.1:5004"),
        &packet(96, 1, 0, PBX_SSRC, &payload),
        Duration::ZERO,
    );
    let Action::Forward { len, .. } = action else {
        panic!("{action:?}")
    };
    let n = c.phone_rx.unprotect_rtp(&mut buf, len).unwrap();
    assert_eq!(RtpHeader::parse(&buf[..n]).unwrap().payload_type, 101);
    assert_eq!(TelephoneEvent::parse(&buf[12..n]), Ok(ev));
}

#[test]
fn a_new_incoming_ssrc_continues_the_outgoing_stream() {
    let mut c = call();
    let pbx = addr("127.0.0.1:5004");
    let mut out = Vec::new();
    for (seq, ts, ssrc) in [(100, 1000, 1), (101, 1160, 1), (7, 90000, 2), (8, 90160, 2)] {
        let (action, buf) =
            c.pbx_sends(pbx, &packet(8, seq, ts, ssrc, &[0xd5; 160]), Duration::ZERO);
        let Action::Forward { len, .. } = action else {
            panic!("{action:?}")
        };
        let mut b = buf;
        let n = c.phone_rx.unprotect_rtp(&mut b, len).unwrap();
        out.push(RtpHeader::parse(&b[..n]).unwrap());
    }
    let seqs: Vec<u16> = out.iter().map(|h| h.sequence).collect();
    let tss: Vec<u32> = out.iter().map(|h| h.timestamp).collect();
    assert_eq!(seqs, [100, 101, 102, 103]);
    assert_eq!(tss, [1000, 1160, 1320, 1480]);
    assert!(out[2].marker && !out[3].marker);
    assert!(out.iter().all(|h| h.ssrc == OUR_SSRC_A));
}

#[test]
fn rtcp_is_relayed_with_ssrcs_mapped_and_srtcp_on_leg_a() {
    let mut c = call();
    let phone = addr("192.0.2.99:41000");
    // Establish both directions so the SSRC map is known.
    c.phone_sends(
        phone,
        &packet(0, 1, 0, PHONE_SSRC, &[0xff; 160]),
        Duration::ZERO,
    );
    c.pbx_sends(
        addr("127.0.0.1:5004"),
        &packet(8, 1, 0, PBX_SSRC, &[0xd5; 160]),
        Duration::ZERO,
    );
    // The phone reports on the stream we send it (OUR_SSRC_A).
    let mut plain = vec![0u8; 64];
    let block = rtcp::ReportBlock {
        ssrc: OUR_SSRC_A,
        ..Default::default()
    };
    let n = rtcp::write_receiver_report(&mut plain, PHONE_SSRC, &[block]).unwrap();
    plain.truncate(n);
    let mut buf = plain.clone();
    buf.resize(n + srtp::MAX_RTCP_OVERHEAD, 0);
    let len = c.phone_tx.protect_rtcp(&mut buf, n).unwrap();
    let action = c
        .session
        .on_rtcp(Leg::A, addr("192.0.2.99:41001"), &mut buf, len);
    assert_eq!(
        action,
        Action::Forward {
            leg: Leg::B,
            dst: addr("127.0.0.1:5005"),
            len: n
        }
    );
    let Some(Ok(RtcpPacket::ReceiverReport { ssrc, mut reports })) =
        rtcp::packets(&buf[..n]).next()
    else {
        panic!()
    };
    assert_eq!(ssrc, OUR_SSRC_B, "sender mapped to our SSRC on leg B");
    assert_eq!(
        reports.next().unwrap().ssrc,
        PBX_SSRC,
        "report about the PBX's stream"
    );
}

#[test]
fn a_silent_leg_times_out_once_and_rearms_on_media() {
    let mut c = call();
    let t0 = c.t0;
    assert_eq!(c.session.next_timeout(), Some(t0 + Duration::from_secs(10)));
    assert_eq!(c.session.poll_timeout(t0 + Duration::from_secs(5)), None);
    // Leg B keeps talking, leg A is silent.
    c.pbx_sends(
        addr("127.0.0.1:5004"),
        &packet(8, 1, 0, PBX_SSRC, &[0xd5; 160]),
        Duration::from_secs(9),
    );
    let at = t0 + Duration::from_secs(10);
    assert_eq!(
        c.session.poll_timeout(at),
        Some(Event::MediaTimeout { leg: Leg::A })
    );
    assert_eq!(c.session.poll_timeout(at), None, "reported once");
    assert_eq!(c.session.next_timeout(), Some(t0 + Duration::from_secs(19)));
    c.phone_sends(
        addr("192.0.2.99:41000"),
        &packet(0, 1, 0, PHONE_SSRC, &[0xff; 160]),
        Duration::from_secs(12),
    );
    assert_eq!(
        c.session.poll_timeout(t0 + Duration::from_secs(19)),
        Some(Event::MediaTimeout { leg: Leg::B })
    );
    assert_eq!(c.session.next_timeout(), Some(t0 + Duration::from_secs(22)));
}

#[test]
fn remote_address_override_applies_to_updates() {
    let mut c = call();
    assert_eq!(c.session.remote(Leg::B), Some(addr("127.0.0.1:5004")));
    let overrides: [(IpAddr, IpAddr); 1] =
        [("203.0.113.5".parse().unwrap(), "127.0.0.2".parse().unwrap())];
    c.session
        .set_remote(Leg::A, Some(addr("203.0.113.5:30000")), None, &overrides);
    assert_eq!(c.session.remote(Leg::A), Some(addr("127.0.0.2:30000")));
    c.session
        .set_remote(Leg::A, Some(addr("203.0.113.6:30000")), None, &overrides);
    assert_eq!(c.session.remote(Leg::A), Some(addr("203.0.113.6:30000")));
}

#[test]
fn session_memory_stays_small() {
    // Two SRTP contexts (leg A) dominate; recorded in docs/perf.md. Their SRTCP keys are
    // derived on the first RTCP packet of each direction.
    let mut c = call();
    let size = c.session.memory_size();
    let phone = addr("192.0.2.99:41000");
    c.phone_sends(
        phone,
        &packet(0, 1, 0, PHONE_SSRC, &[0xff; 160]),
        Duration::ZERO,
    );
    let mut buf = vec![0u8; 64 + srtp::MAX_RTCP_OVERHEAD];
    let n = rtcp::write_receiver_report(&mut buf, PHONE_SSRC, &[]).unwrap();
    let len = c.phone_tx.protect_rtcp(&mut buf, n).unwrap();
    let inbound = c.session.on_rtcp(Leg::A, phone, &mut buf, len);
    assert!(matches!(inbound, Action::Forward { leg: Leg::B, .. }));
    let after_rx = c.session.memory_size();
    let n = rtcp::write_receiver_report(&mut buf, PBX_SSRC, &[]).unwrap();
    let outbound = c
        .session
        .on_rtcp(Leg::B, addr("127.0.0.1:5005"), &mut buf, n);
    assert!(matches!(outbound, Action::Forward { leg: Leg::A, .. }));
    let with_rtcp = c.session.memory_size();
    eprintln!("SRTP<->RTP session: {size} bytes; {with_rtcp} once SRTCP ran both ways");
    assert!(size <= 3072, "Session is {size} bytes before RTCP");
    assert!(
        size < after_rx && after_rx < with_rtcp,
        "SRTCP keys derived lazily, per direction"
    );
    assert!(
        with_rtcp <= 4096,
        "Session is {with_rtcp} bytes with SRTCP both ways (target 4 KiB)"
    );
}

#[test]
fn a_codec_change_mid_call_changes_the_transcoding_and_keeps_continuity() {
    let mut c = call();
    let phone = addr("192.0.2.99:41000");
    let mut ulaw = [0u8; 160];
    g711::encode_ulaw(&tone(0), &mut ulaw);
    let send = |c: &mut Call, pt: u8, seq: u16| {
        let (action, buf) = c.phone_sends(
            phone,
            &packet(pt, seq, u32::from(seq) * 160, PHONE_SSRC, &ulaw),
            Duration::ZERO,
        );
        let Action::Forward { len, .. } = action else {
            panic!("{action:?}")
        };
        let h = RtpHeader::parse(&buf[..len]).unwrap();
        (h, buf[12..len].to_vec())
    };
    // μ-law on A, A-law on B: transcoded.
    let (before, payload) = send(&mut c, 0, 10);
    let mut alaw = ulaw;
    g711::transcode(Law::Ulaw, Law::Alaw, &mut alaw);
    assert_eq!((before.payload_type, &payload[..]), (8, &alaw[..]));
    assert_eq!(c.session.codec(Leg::B), (Law::Alaw, 8, Some(96)));

    // Re-INVITE: leg B switches to μ-law with a dynamic payload type; no transcoding now.
    c.session.set_codec(Leg::B, Law::Ulaw, 110, Some(97));
    assert_eq!(c.session.codec(Leg::B), (Law::Ulaw, 110, Some(97)));
    let (after, payload) = send(&mut c, 0, 11);
    assert_eq!((after.payload_type, &payload[..]), (110, &ulaw[..]));
    assert_eq!(after.ssrc, before.ssrc, "outgoing SSRC kept");
    assert_eq!(
        after.sequence,
        before.sequence.wrapping_add(1),
        "sequence continues"
    );
    assert_eq!(
        after.timestamp,
        before.timestamp.wrapping_add(160),
        "timestamp continues"
    );

    // Leg A moves to A-law (PT 8): its μ-law payload type is now foreign, A-law is
    // converted to B's μ-law.
    c.session.set_codec(Leg::A, Law::Alaw, 8, Some(101));
    let (action, _) = c.phone_sends(
        phone,
        &packet(0, 12, 12 * 160, PHONE_SSRC, &ulaw),
        Duration::ZERO,
    );
    assert_eq!(action, Action::Drop(DropReason::PayloadType(0)));
    let (h, payload) = send(&mut c, 8, 13);
    let mut back = ulaw;
    g711::transcode(Law::Alaw, Law::Ulaw, &mut back);
    assert_eq!((h.payload_type, &payload[..]), (110, &back[..]));
    // The dropped packet leaves its gap in the outgoing sequence, as a lost one would.
    assert_eq!(h.sequence, after.sequence.wrapping_add(2));
}

#[test]
fn a_held_pbx_leg_receives_nothing_while_its_music_still_flows_and_resume_restores_it() {
    let mut c = call();
    let (phone, pbx) = (addr("192.0.2.99:41000"), addr("127.0.0.1:5004"));
    let ms = |n: u64| Duration::from_millis(20 * n);
    let voice = |seq: u16| packet(0, seq, u32::from(seq) * 160, PHONE_SSRC, &[0xff; 160]);
    let music = |seq: u16| packet(8, seq, u32::from(seq) * 160, PBX_SSRC, &[0xd5; 160]);
    let (a, buf) = c.phone_sends(phone, &voice(100), ms(0));
    let Action::Forward { len, .. } = a else {
        panic!("{a:?}")
    };
    let before = RtpHeader::parse(&buf[..len]).unwrap();
    // The PBX holds with `sendonly`: the relay plays `recvonly` on leg B.
    c.session
        .set_direction(Leg::B, Direction::RecvOnly, c.t0 + ms(1));
    for n in 1..=20u16 {
        let (a, _) = c.phone_sends(phone, &voice(100 + n), ms(u64::from(n)));
        assert_eq!(a, Action::Drop(DropReason::Direction), "nothing to the PBX");
        // Music on hold still reaches the phone, protected and continuous.
        let (a, mut buf) = c.pbx_sends(pbx, &music(500 + n), ms(u64::from(n)));
        let Action::Forward { leg, len, .. } = a else {
            panic!("{a:?}")
        };
        assert_eq!(leg, Leg::A);
        c.phone_rx.unprotect_rtp(&mut buf, len).unwrap();
    }
    // Leg A's SRTP receive state moved on while held: a replay of a held packet is refused.
    let (a, _) = c.phone_sends(phone, &voice(110), ms(21));
    assert!(matches!(a, Action::Drop(DropReason::Srtp(_))), "{a:?}");
    let st = c.session.stats(Leg::A);
    assert_eq!((st.withheld, st.dropped, st.rx_packets), (20, 1, 21));
    // Resume: the next packet follows the last one sent without a gap, marked.
    c.session
        .set_direction(Leg::B, Direction::SendRecv, c.t0 + ms(22));
    let (a, buf) = c.phone_sends(phone, &voice(125), ms(22));
    let Action::Forward { leg, len, .. } = a else {
        panic!("{a:?}")
    };
    assert_eq!(leg, Leg::B);
    let after = RtpHeader::parse(&buf[..len]).unwrap();
    assert_eq!(after.sequence, before.sequence.wrapping_add(1));
    assert!(after.marker);
    assert_eq!(after.timestamp, before.timestamp.wrapping_add(25 * 160));
}

#[test]
fn an_inactive_leg_is_not_timed_out_and_times_out_again_after_resume() {
    let mut c = call();
    let (t0, pbx) = (c.t0, addr("127.0.0.1:5004"));
    c.session
        .set_direction(Leg::B, Direction::Inactive, t0 + Duration::from_secs(1));
    assert_eq!(c.session.direction(Leg::B), Direction::Inactive);
    // Nothing forwarded either way.
    let (a, _) = c.pbx_sends(
        pbx,
        &packet(8, 1, 0, PBX_SSRC, &[0xd5; 160]),
        Duration::ZERO,
    );
    assert_eq!(a, Action::Drop(DropReason::Direction));
    // Leg A (silent too) still times out; leg B, which receives nothing by agreement, does not.
    let late = t0 + Duration::from_secs(60);
    assert_eq!(
        c.session.poll_timeout(late),
        Some(Event::MediaTimeout { leg: Leg::A })
    );
    assert_eq!(c.session.poll_timeout(late), None);
    assert_eq!(c.session.next_timeout(), None);
    // Resumed at 60 s: leg B's silence counts from then.
    c.session.set_direction(Leg::B, Direction::SendRecv, late);
    assert_eq!(
        c.session.next_timeout(),
        Some(late + Duration::from_secs(10))
    );
    assert_eq!(
        c.session.poll_timeout(late + Duration::from_secs(10)),
        Some(Event::MediaTimeout { leg: Leg::B })
    );
}

#[test]
fn a_long_hold_of_the_srtp_leg_keeps_its_rollover_counter_in_step() {
    let mut c = call();
    let pbx = addr("127.0.0.1:5004");
    let music = |seq: u16| packet(8, seq, u32::from(seq) * 160, PBX_SSRC, &[0xd5; 160]);
    let (a, mut buf) = c.pbx_sends(pbx, &music(0), Duration::ZERO);
    let Action::Forward { len, .. } = a else {
        panic!("{a:?}")
    };
    let n = c.phone_rx.unprotect_rtp(&mut buf, len).unwrap();
    let first = RtpHeader::parse(&buf[..n]).unwrap();
    // The relay stops sending to the phone for 40,000 packets (more than half the sequence
    // space: a jump that long would make the phone guess the wrong rollover counter).
    c.session.set_direction(Leg::A, Direction::RecvOnly, c.t0);
    for seq in 1..=40_000u16 {
        let (a, _) = c.pbx_sends(pbx, &music(seq), Duration::ZERO);
        assert_eq!(a, Action::Drop(DropReason::Direction));
    }
    assert_eq!(c.session.stats(Leg::B).withheld, 40_000);
    c.session.set_direction(Leg::A, Direction::SendRecv, c.t0);
    let (a, mut buf) = c.pbx_sends(pbx, &music(40_001), Duration::ZERO);
    let Action::Forward { len, .. } = a else {
        panic!("{a:?}")
    };
    let n = c
        .phone_rx
        .unprotect_rtp(&mut buf, len)
        .expect("the phone's SRTP context accepts the packet after the hold");
    let h = RtpHeader::parse(&buf[..n]).unwrap();
    assert_eq!(h.sequence, first.sequence.wrapping_add(1));
    assert!(h.marker);
}
