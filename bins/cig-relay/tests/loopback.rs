//! End-to-end on loopback: the built `cig-relay` binary with a temporary control socket, log
//! directory and port range, driven over the control protocol like cig-server drives it, with
//! SRTP protected/unprotected by cig-media's own SRTP contexts on the secure leg.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use cig_media::control::{
    AddrOverride, Client, Codec, Command, ControlError, Direction, ErrorCode, KeyMaterial,
    LegConfig, LegId, LegStats, LegUpdate, PROTOCOL_VERSION, Reply, SecretBytes, SrtpConfig,
    SrtpProfileName,
};
use cig_media::dtmf::{DtmfSender, TelephoneEvent, digit_to_event, event_to_digit};
use cig_media::g711;
use cig_media::rtp::{self, RtpHeader};
use cig_media::srtp::{MasterKey, SrtpContext, SrtpProfile};
use cig_testkit::wait_until;

const KEY_IN: [u8; 16] = *b"secure-leg-in-k!";
const SALT_IN: [u8; 14] = *b"salt-inbound14";
const KEY_OUT: [u8; 16] = *b"secure-leg-out-k";
const SALT_OUT: [u8; 14] = *b"salt-outbound1";
const FRAME: usize = 160;

/// The relay process; stopped with SIGTERM (and checked to exit cleanly) when dropped.
struct Relay {
    child: Option<Child>,
    control: PathBuf,
    dir: tempfile::TempDir,
}

impl Relay {
    fn start(workers: usize) -> Relay {
        let dir = tempfile::tempdir().unwrap();
        let control = dir.path().join("relay.sock");
        // A range per relay, spread over the port space by process; busy ports are skipped
        // by the relay anyway.
        static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
        let nth = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 10;
        let low = 20_000 + (std::process::id() % 40) as u16 * 1000 + nth * 100;
        let mut child = Process::new(env!("CARGO_BIN_EXE_cig-relay"))
            .arg("--control")
            .arg(&control)
            .arg("--log-dir")
            .arg(dir.path())
            .args([
                "--rtp-port-range",
                &low.to_string(),
                &(low + 99).to_string(),
            ])
            .args(["--bind", "127.0.0.1", "--workers", &workers.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("cig-relay ready"), "relay said {line:?}");
        Relay {
            child: Some(child),
            control,
            dir,
        }
    }

    fn connect(&self) -> Client {
        let (client, hello) = Client::connect(&self.control, "loopback-test").unwrap();
        let Reply::Hello {
            protocol,
            engines_available,
            engines_total,
            ..
        } = hello
        else {
            panic!("{hello:?}");
        };
        assert_eq!(protocol, PROTOCOL_VERSION);
        assert_eq!(engines_available, engines_total);
        client
    }

    /// SIGTERM, then the exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        child.wait().unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("relay.log")).unwrap()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn srtp() -> SrtpConfig {
    SrtpConfig {
        profile: SrtpProfileName::AesCm128HmacSha1_80,
        inbound: KeyMaterial {
            key: SecretBytes::new(&KEY_IN),
            salt: SecretBytes::new(&SALT_IN),
        },
        outbound: KeyMaterial {
            key: SecretBytes::new(&KEY_OUT),
            salt: SecretBytes::new(&SALT_OUT),
        },
    }
}

fn ctx(key: &[u8], salt: &[u8]) -> SrtpContext {
    SrtpContext::new(&MasterKey::new(SrtpProfile::Aes128CmHmacSha1_80, key, salt).unwrap())
}

fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

/// A created session: the secure phone's socket (leg A), the PBX's (leg B), the relay's ports.
struct Call {
    phone: UdpSocket,
    pbx: UdpSocket,
    relay_a: SocketAddr,
    relay_b: SocketAddr,
}

fn create(client: &mut Client, name: &str, media_timeout_ms: u32) -> Call {
    create_with(client, name, media_timeout_ms, None)
}

/// Like [`create`]; with `announce_b`, leg B's remote is announced with that (unroutable) IP
/// and an `rtp_remote_addr_override` rule maps it to loopback.
fn create_with(
    client: &mut Client,
    name: &str,
    media_timeout_ms: u32,
    announce_b: Option<std::net::IpAddr>,
) -> Call {
    let (phone, pbx) = (udp(), udp());
    let mut a = LegConfig::rtp(Codec::Pcmu);
    a.srtp = Some(srtp());
    a.telephone_event_pt = Some(101);
    a.remote = Some(phone.local_addr().unwrap());
    let mut b = LegConfig::rtp(Codec::Pcma);
    b.telephone_event_pt = Some(96);
    b.remote = Some(pbx.local_addr().unwrap());
    if let Some(ip) = announce_b {
        b.remote = Some(SocketAddr::new(ip, pbx.local_addr().unwrap().port()));
        b.remote_addr_overrides = vec![AddrOverride {
            from: ip,
            to: "127.0.0.1".parse().unwrap(),
        }];
    }
    let reply = client
        .call(Command::CreateSession {
            session: name.into(),
            a,
            b,
            media_timeout_ms,
        })
        .unwrap();
    let Reply::SessionCreated { a, b, session, .. } = reply else {
        panic!("unexpected {reply:?}");
    };
    assert_eq!(session, name);
    for p in [a, b] {
        assert_eq!(p.rtp_port % 2, 0);
        assert_eq!(p.rtcp_port, p.rtp_port + 1);
    }
    Call {
        phone,
        pbx,
        relay_a: SocketAddr::new(a.ip, a.rtp_port),
        relay_b: SocketAddr::new(b.ip, b.rtp_port),
    }
}

/// The "1 kHz" test tone at 1020 Hz (ITU-T O.6 practice: an exact 1000 Hz is 1/8 of the
/// sampling rate and would hit only 5 sample values, so its quantisation noise says nothing),
/// amplitude 10 000 (about −10 dBm0), `n` samples from `start`.
fn tone(start: usize, n: usize) -> Vec<i16> {
    (start..start + n)
        .map(|i| {
            (10_000.0 * (2.0 * std::f64::consts::PI * 1020.0 * i as f64 / 8000.0).sin()) as i16
        })
        .collect()
}

fn snr_db(reference: &[i16], got: &[i16]) -> f64 {
    let (mut s, mut e) = (0.0f64, 0.0f64);
    for (&r, &g) in reference.iter().zip(got) {
        s += f64::from(r).powi(2);
        e += (f64::from(r) - f64::from(g)).powi(2);
    }
    10.0 * (s / e).log10()
}

/// Receives one RTP packet on `sock`; through `unprotect` if the leg is SRTP.
fn recv_rtp(sock: &UdpSocket, unprotect: Option<&mut SrtpContext>) -> (RtpHeader, Vec<u8>) {
    let mut buf = [0u8; 1500];
    let (len, _) = sock.recv_from(&mut buf).expect("packet from the relay");
    let len = match unprotect {
        Some(c) => c
            .unprotect_rtp(&mut buf, len)
            .expect("relay's SRTP verifies"),
        None => len,
    };
    let h = RtpHeader::parse(&buf[..len]).unwrap();
    (h, buf[h.header_len..len].to_vec())
}

fn send_rtp(
    sock: &UdpSocket,
    to: SocketAddr,
    protect: Option<&mut SrtpContext>,
    (marker, pt, seq, ts): (bool, u8, u16, u32),
    payload: &[u8],
) {
    let mut buf = [0u8; 1500];
    let h = rtp::write_header(&mut buf, marker, pt, seq, ts, 0x5eed_0000 | u32::from(pt)).unwrap();
    buf[h..h + payload.len()].copy_from_slice(payload);
    let mut len = h + payload.len();
    if let Some(c) = protect {
        len = c.protect_rtp(&mut buf, len).unwrap();
    }
    sock.send_to(&buf[..len], to).unwrap();
}

/// Sends 50 frames of tone one way and checks what comes out the other side: payload type,
/// exact transcoding, continuity, and the SNR against the ideal tone.
fn tone_one_way(call: &Call, a_to_b: bool, tx: &mut SrtpContext, rx: &mut SrtpContext) -> f64 {
    let frames = 50;
    let pcm = tone(0, frames * FRAME);
    let (in_law, out_law) = if a_to_b {
        (g711::Law::Ulaw, g711::Law::Alaw)
    } else {
        (g711::Law::Alaw, g711::Law::Ulaw)
    };
    let mut decoded = Vec::new();
    let mut last_seq = None;
    for f in 0..frames {
        let mut codes = [0u8; FRAME];
        let samples = &pcm[f * FRAME..(f + 1) * FRAME];
        match in_law {
            g711::Law::Ulaw => g711::encode_ulaw(samples, &mut codes),
            g711::Law::Alaw => g711::encode_alaw(samples, &mut codes),
        };
        let hdr = (
            f == 0,
            in_law.static_payload_type(),
            1000 + f as u16,
            8000 + (f * FRAME) as u32,
        );
        let (h, payload) = if a_to_b {
            send_rtp(&call.phone, call.relay_a, Some(tx), hdr, &codes);
            recv_rtp(&call.pbx, None)
        } else {
            send_rtp(&call.pbx, call.relay_b, None, hdr, &codes);
            recv_rtp(&call.phone, Some(rx))
        };
        assert_eq!(h.payload_type, out_law.static_payload_type());
        if let Some(prev) = last_seq {
            assert_eq!(
                h.sequence,
                u16::wrapping_add(prev, 1),
                "sequence continuity"
            );
        }
        last_seq = Some(h.sequence);
        // The relay's transcoding is exactly G.711's direct code conversion.
        let mut expect = codes;
        g711::transcode(in_law, out_law, &mut expect);
        assert_eq!(payload, expect, "frame {f} transcoded exactly");
        let mut out = [0i16; FRAME];
        match out_law {
            g711::Law::Ulaw => g711::decode_ulaw(&payload, &mut out),
            g711::Law::Alaw => g711::decode_alaw(&payload, &mut out),
        };
        decoded.extend_from_slice(&out);
    }
    snr_db(&pcm, &decoded)
}

/// The SNR G.711 theory predicts for this tone through one encoder and one μ↔A code
/// conversion, computed here from the quantiser itself on the same samples: quantise with the
/// first law, map codes, decode with the second.
fn expected_snr(first: g711::Law, second: g711::Law) -> f64 {
    let pcm = tone(0, 50 * FRAME);
    let mut codes = vec![0u8; pcm.len()];
    let mut back = vec![0i16; pcm.len()];
    match first {
        g711::Law::Ulaw => g711::encode_ulaw(&pcm, &mut codes),
        g711::Law::Alaw => g711::encode_alaw(&pcm, &mut codes),
    };
    g711::transcode(first, second, &mut codes);
    match second {
        g711::Law::Ulaw => g711::decode_ulaw(&codes, &mut back),
        g711::Law::Alaw => g711::decode_alaw(&codes, &mut back),
    };
    snr_db(&pcm, &back)
}

/// Sends `digits` as RFC 4733 events one way; returns the digits seen on the other side with
/// the payload type they arrived with (each event counted once, at its first end packet).
fn dtmf_one_way(
    call: &Call,
    a_to_b: bool,
    digits: &str,
    tx: &mut SrtpContext,
    rx: &mut SrtpContext,
) -> (String, Vec<u8>) {
    let mut sender = DtmfSender::new(Duration::from_millis(20), 160);
    let mut now = Instant::now();
    let (mut seq, mut ts) = (5000u16, 90_000u32);
    let mut got = String::new();
    let mut pts = Vec::new();
    let mut ended = false;
    for d in digits.chars() {
        sender.start(digit_to_event(d).unwrap(), 10, 800, ts, now);
        while let Some(p) = sender.poll(now) {
            let mut payload = [0u8; 4];
            p.event.write(&mut payload).unwrap();
            let hdr = (p.marker, if a_to_b { 101 } else { 96 }, seq, p.timestamp);
            let (h, body) = if a_to_b {
                send_rtp(&call.phone, call.relay_a, Some(tx), hdr, &payload);
                recv_rtp(&call.pbx, None)
            } else {
                send_rtp(&call.pbx, call.relay_b, None, hdr, &payload);
                recv_rtp(&call.phone, Some(rx))
            };
            let ev = TelephoneEvent::parse(&body).unwrap();
            if ev.end && !ended {
                got.push(event_to_digit(ev.event).unwrap());
                pts.push(h.payload_type);
            }
            ended = ev.end;
            seq = seq.wrapping_add(1);
            now += Duration::from_millis(20);
        }
        ended = false;
        ts = ts.wrapping_add(1600);
    }
    (got, pts)
}

#[test]
fn srtp_to_rtp_tone_and_dtmf_both_directions() {
    let mut relay = Relay::start(2);
    let mut client = relay.connect();
    let call = create(&mut client, "call-1", 30_000);
    let mut tx = ctx(&KEY_IN, &SALT_IN);
    let mut rx = ctx(&KEY_OUT, &SALT_OUT);

    let snr_ab = tone_one_way(&call, true, &mut tx, &mut rx);
    let snr_ba = tone_one_way(&call, false, &mut tx, &mut rx);
    let (exp_ab, exp_ba) = (
        expected_snr(g711::Law::Ulaw, g711::Law::Alaw),
        expected_snr(g711::Law::Alaw, g711::Law::Ulaw),
    );
    // Independent prediction: the two quantisations (the sender's G.711 encoder and the μ↔A
    // code conversion, which re-quantises to the other law's grid) add uncorrelated noise, so
    // the tandem SNR is the power sum of each law's own single-encode SNR on this tone.
    let (single_u, single_a) = (
        expected_snr(g711::Law::Ulaw, g711::Law::Ulaw),
        expected_snr(g711::Law::Alaw, g711::Law::Alaw),
    );
    let tandem = -10.0 * (10f64.powf(-single_u / 10.0) + 10f64.powf(-single_a / 10.0)).log10();
    eprintln!(
        "1 kHz (1020 Hz) tone at -10 dBm0: single-encode SNR μ {single_u:.2} dB, A {single_a:.2} dB; \
         predicted tandem {tandem:.2} dB; relay μ→A {snr_ab:.2} dB (exact chain {exp_ab:.2}), \
         A→μ {snr_ba:.2} dB (exact chain {exp_ba:.2})"
    );
    // The relay's output is exactly the G.711 conversion chain...
    assert!((snr_ab - exp_ab).abs() < 1e-9 && (snr_ba - exp_ba).abs() < 1e-9);
    // ...and the tone survives it as the noise model predicts.
    assert!(
        (snr_ab - tandem).abs() < 1.5,
        "μ→A {snr_ab} vs predicted {tandem}"
    );
    assert!(
        (snr_ba - tandem).abs() < 1.5,
        "A→μ {snr_ba} vs predicted {tandem}"
    );
    assert!(
        single_u > 35.0 && single_a > 35.0,
        "G.711 single encode is ≈ 38 dB here"
    );

    let (digits, pts) = dtmf_one_way(&call, true, "159#", &mut tx, &mut rx);
    assert_eq!(digits, "159#");
    assert!(
        pts.iter().all(|&pt| pt == 96),
        "A's PT 101 remapped to B's 96: {pts:?}"
    );
    let (digits, pts) = dtmf_one_way(&call, false, "*0D", &mut tx, &mut rx);
    assert_eq!(digits, "*0D");
    assert!(
        pts.iter().all(|&pt| pt == 101),
        "B's PT 96 remapped to A's 101: {pts:?}"
    );

    // A tampered SRTP packet is dropped and counted, not forwarded.
    let mut buf = [0u8; 256];
    let h = rtp::write_header(&mut buf, false, 0, 2000, 0, 1).unwrap();
    let len = tx.protect_rtp(&mut buf, h + FRAME).unwrap();
    buf[20] ^= 1;
    call.phone.send_to(&buf[..len], call.relay_a).unwrap();
    // A good packet behind it on the same socket proves the bad one was handled.
    send_rtp(
        &call.phone,
        call.relay_a,
        Some(&mut tx),
        (false, 0, 2001, 160),
        &[0xff; FRAME],
    );
    assert_eq!(recv_rtp(&call.pbx, None).0.payload_type, 8);
    let Reply::SessionDeleted { stats, .. } = client
        .call(Command::DeleteSession {
            session: "call-1".into(),
        })
        .unwrap()
    else {
        panic!("no final stats");
    };
    assert_eq!(stats.a.dropped, 1);
    // 50 tone frames, 7 packets per 100 ms digit (5 updates, 2 more end repeats), 2 extra.
    assert_eq!(stats.a.packets_in, 50 + 4 * 7 + 2);
    assert_eq!(stats.b.packets_in, 50 + 3 * 7);
    assert_eq!(stats.a.peer, Some(call.phone.local_addr().unwrap()));

    assert!(relay.stop().success());
    assert!(
        !relay.control.exists(),
        "control socket removed at shutdown"
    );
}

#[test]
fn codec_change_mid_call_changes_the_transcoding() {
    let mut relay = Relay::start(1);
    let mut client = relay.connect();
    let call = create(&mut client, "reinvite", 30_000);
    let mut tx = ctx(&KEY_IN, &SALT_IN);
    let mut ulaw = [0u8; FRAME];
    g711::encode_ulaw(&tone(0, FRAME), &mut ulaw);
    // Leg A μ-law, leg B A-law: transcoded.
    send_rtp(
        &call.phone,
        call.relay_a,
        Some(&mut tx),
        (true, 0, 1, 0),
        &ulaw,
    );
    let (before, payload) = recv_rtp(&call.pbx, None);
    let mut alaw = ulaw;
    g711::transcode(g711::Law::Ulaw, g711::Law::Alaw, &mut alaw);
    assert_eq!((before.payload_type, &payload[..]), (8, &alaw[..]));

    // Re-INVITE: the PBX moves to μ-law on a dynamic payload type; nothing to transcode now.
    let upd = LegUpdate {
        codec: Some(Codec::Pcmu),
        payload_type: Some(112),
        ..LegUpdate::default()
    };
    let reply = client
        .call(Command::UpdateSession {
            session: "reinvite".into(),
            a: None,
            b: Some(upd),
        })
        .unwrap();
    assert!(matches!(reply, Reply::SessionUpdated { .. }), "{reply:?}");
    send_rtp(
        &call.phone,
        call.relay_a,
        Some(&mut tx),
        (false, 0, 2, 160),
        &ulaw,
    );
    let (after, payload) = recv_rtp(&call.pbx, None);
    assert_eq!((after.payload_type, &payload[..]), (112, &ulaw[..]));
    assert_eq!(after.ssrc, before.ssrc);
    assert_eq!(after.sequence, before.sequence.wrapping_add(1));
    assert_eq!(after.timestamp, before.timestamp.wrapping_add(160));

    // A codec alone takes its static payload type: back to A-law, PT 8, transcoded again.
    let upd = LegUpdate {
        codec: Some(Codec::Pcma),
        ..LegUpdate::default()
    };
    client
        .call(Command::UpdateSession {
            session: "reinvite".into(),
            a: None,
            b: Some(upd),
        })
        .unwrap();
    send_rtp(
        &call.phone,
        call.relay_a,
        Some(&mut tx),
        (false, 0, 3, 320),
        &ulaw,
    );
    let (h, payload) = recv_rtp(&call.pbx, None);
    assert_eq!((h.payload_type, &payload[..]), (8, &alaw[..]));
    assert_eq!(h.sequence, after.sequence.wrapping_add(1));
    assert!(relay.stop().success());
}

#[test]
fn silent_leg_raises_media_timeout() {
    let mut relay = Relay::start(2);
    let mut client = relay.connect();
    let call = create(&mut client, "quiet", 400);
    let mut tx = ctx(&KEY_IN, &SALT_IN);
    // Leg A talks every 20 ms until the relay reports leg B (the PBX, which never sends) silent.
    let start = Instant::now();
    let mut seq = 0u16;
    let first = loop {
        send_rtp(
            &call.phone,
            call.relay_a,
            Some(&mut tx),
            (false, 0, seq, u32::from(seq) * 160),
            &[0xff; FRAME],
        );
        seq += 1;
        if let Some(ev) = client.next_event(Duration::from_millis(20)).unwrap() {
            break ev;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "no media timeout");
    };
    assert_eq!(
        first,
        Reply::MediaTimeout {
            session: "quiet".into(),
            leg: LegId::B
        }
    );
    assert!(start.elapsed() >= Duration::from_millis(400));
    // Now A stops too.
    let second = client.next_event(Duration::from_secs(2)).unwrap();
    assert_eq!(
        second,
        Some(Reply::MediaTimeout {
            session: "quiet".into(),
            leg: LegId::A
        })
    );
    // Each silence is reported once.
    assert_eq!(client.next_event(Duration::from_millis(500)).unwrap(), None);
    assert!(relay.stop().success());
}

fn refused(r: Result<Reply, ControlError>) -> ErrorCode {
    match r {
        Err(ControlError::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn control_protocol_rules_and_controller_loss() {
    let mut relay = Relay::start(1);
    // Before hello: refused. Wrong version: refused.
    let mut raw = std::os::unix::net::UnixStream::connect(&relay.control).unwrap();
    let mut dec = cig_media::control::FrameDecoder::new();
    let mut ask = |req: &cig_media::control::Request| -> Reply {
        use std::io::{Read, Write};
        raw.write_all(&cig_media::control::encode_frame(req).unwrap())
            .unwrap();
        loop {
            if let Some(r) = dec.next_message().unwrap() {
                return r;
            }
            let mut b = [0u8; 4096];
            let n = raw.read(&mut b).unwrap();
            dec.push(&b[..n]);
        }
    };
    let r = ask(&cig_media::control::Request {
        id: 1,
        command: Command::Status,
    });
    assert!(matches!(
        r,
        Reply::Error {
            id: Some(1),
            code: ErrorCode::Version,
            ..
        }
    ));
    let r = ask(&cig_media::control::Request {
        id: 2,
        command: Command::Hello {
            protocol: 99,
            client: "future".into(),
        },
    });
    assert!(matches!(
        r,
        Reply::Error {
            id: Some(2),
            code: ErrorCode::Version,
            ..
        }
    ));
    // An unknown op is answered (no id: the request could not be read) and the connection
    // stays usable.
    {
        use std::io::{Read, Write};
        let body = br#"{"id":3,"op":"teleport"}"#;
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        let mut raw = std::os::unix::net::UnixStream::connect(&relay.control).unwrap();
        raw.write_all(&frame).unwrap();
        let mut dec = cig_media::control::FrameDecoder::new();
        let reply: Reply = loop {
            if let Some(r) = dec.next_message().unwrap() {
                break r;
            }
            let mut b = [0u8; 4096];
            let n = raw.read(&mut b).unwrap();
            dec.push(&b[..n]);
        };
        assert!(matches!(
            reply,
            Reply::Error {
                id: None,
                code: ErrorCode::BadRequest,
                ..
            }
        ));
        // A frame longer than the limit closes the connection.
        raw.write_all(&(1u32 << 20).to_be_bytes()).unwrap();
        let mut rest = Vec::new();
        raw.read_to_end(&mut rest).unwrap();
        dec.push(&rest);
        assert!(matches!(
            dec.next_message::<Reply>().unwrap(),
            Some(Reply::Error {
                id: None,
                code: ErrorCode::BadRequest,
                ..
            })
        ));
    }

    let mut client = Client::connect(&relay.control, "controller-1").unwrap().0;
    let status = client.call(Command::Status).unwrap();
    assert_eq!(
        status,
        Reply::Status {
            id: 2,
            engines_available: 1,
            engines_total: 1,
            sessions: 0
        }
    );
    let call = create_with(&mut client, "c1", 0, Some("192.0.2.77".parse().unwrap()));
    // The announced 192.0.2.77 was overridden to loopback: B→... A→B reaches the PBX socket.
    let mut tx = ctx(&KEY_IN, &SALT_IN);
    send_rtp(
        &call.phone,
        call.relay_a,
        Some(&mut tx),
        (false, 0, 1, 160),
        &[0xff; FRAME],
    );
    assert_eq!(recv_rtp(&call.pbx, None).0.payload_type, 8);
    assert_eq!(
        refused(client.call(Command::CreateSession {
            session: "c1".into(),
            a: LegConfig::rtp(Codec::Pcmu),
            b: LegConfig::rtp(Codec::Pcma),
            media_timeout_ms: 0,
        })),
        ErrorCode::SessionExists
    );
    assert_eq!(
        refused(client.call(Command::DeleteSession {
            session: "nope".into()
        })),
        ErrorCode::NoSuchSession
    );
    // Another controller can neither see nor end this one's session.
    let mut other = Client::connect(&relay.control, "controller-2").unwrap().0;
    assert_eq!(
        refused(other.call(Command::DeleteSession {
            session: "c1".into()
        })),
        ErrorCode::NoSuchSession
    );

    // A re-announced remote address (re-INVITE) also goes through the override rules and
    // takes effect for the next packet.
    let moved = udp();
    let announced = SocketAddr::new(
        "192.0.2.77".parse().unwrap(),
        moved.local_addr().unwrap().port(),
    );
    let upd = LegUpdate {
        remote: Some(announced),
        ..LegUpdate::default()
    };
    client
        .call(Command::UpdateSession {
            session: "c1".into(),
            a: None,
            b: Some(upd),
        })
        .unwrap();
    send_rtp(
        &call.phone,
        call.relay_a,
        Some(&mut tx),
        (false, 0, 2, 320),
        &[0xff; FRAME],
    );
    let (h, _) = recv_rtp(&moved, None);
    assert_eq!(h.payload_type, 8);

    let stats = client.call(Command::Stats { session: None }).unwrap();
    let Reply::Stats { sessions, .. } = stats else {
        panic!("{stats:?}")
    };
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].b.packets_out, 2);

    // The controller goes away: its sessions end and their ports are free again.
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let Reply::Status { sessions, .. } = other.call(Command::Status).unwrap() else {
            panic!()
        };
        if sessions == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sessions of a lost controller not ended"
        );
        other.next_event(Duration::from_millis(50)).unwrap();
    }
    UdpSocket::bind(call.relay_a).expect("leg A's port is free again");

    // SIGTERM: a live session is reported ended to its owner, the relay exits 0.
    create(&mut other, "c2", 0);
    assert!(relay.stop().success());
    assert_eq!(
        other.next_event(Duration::from_secs(2)).unwrap(),
        Some(Reply::SessionEnded {
            session: "c2".into(),
            reason: "relay shutting down".into()
        })
    );
    check_log(&relay.log());
}

/// relay.log: `[Time] Module[Type]: Information`, UTC, configuration logged first.
fn check_log(log: &str) {
    let mut types = std::collections::BTreeSet::new();
    for line in log.lines() {
        let (time, rest) = line[1..]
            .split_once("] ")
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        assert_eq!(time.len(), 23, "time {time:?}");
        assert!(time.as_bytes()[10] == b' ' && time.as_bytes()[19] == b'.');
        let (module, rest) = rest.split_once('[').unwrap();
        assert!(module.chars().all(|c| c.is_ascii_alphabetic()));
        let (ty, info) = rest.split_once("]: ").unwrap();
        assert!(["INIT", "INFO", "WARN", "DEBUG"].contains(&ty), "type {ty}");
        assert!(!info.is_empty());
        types.insert(ty.to_string());
    }
    let first: Vec<&str> = log.lines().take(7).collect();
    assert!(
        first.iter().all(|l| l.contains("Config[INIT]: ")),
        "{first:?}"
    );
    assert!(log.contains("Config[INIT]: workers 1"));
    assert!(log.contains("Control[INFO]: relay stopped"));
    assert!(types.contains("INFO"));
}

#[test]
fn refuses_a_control_socket_in_use() {
    let relay = Relay::start(2);
    let out = Process::new(env!("CARGO_BIN_EXE_cig-relay"))
        .arg("--control")
        .arg(&relay.control)
        .arg("--log-dir")
        .arg(relay.dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"));
    assert!(Path::new(&relay.control).exists());
}

/// The batched packet path: with the relay stopped (SIGSTOP), 100 packets queue up on one leg's
/// socket; once it runs again they are read `recvmmsg` by `recvmmsg` (more than one batch and
/// more than one socket budget, so the engine has to come back to the socket after the poll),
/// each is unprotected and transcoded, and all 100 leave the other leg in order with one
/// `sendmmsg` per batch. Both directions.
#[test]
fn queued_burst_is_relayed_whole_and_in_order() {
    const BURST: u16 = 100;
    let mut relay = Relay::start(1);
    let mut client = relay.connect();
    let call = create(&mut client, "burst", 30_000);
    let mut tx = ctx(&KEY_IN, &SALT_IN);
    let mut rx = ctx(&KEY_OUT, &SALT_OUT);
    let pid = rustix::process::Pid::from_child(relay.child.as_ref().unwrap());
    for a_to_b in [true, false] {
        rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
        let mut sent = Vec::new();
        for s in 0..BURST {
            let mut codes = [0u8; FRAME];
            for (k, c) in codes.iter_mut().enumerate() {
                *c = (usize::from(s) * 7 + k) as u8;
            }
            let hdr = |pt| (false, pt, 500 + s, u32::from(s) * FRAME as u32);
            if a_to_b {
                send_rtp(&call.phone, call.relay_a, Some(&mut tx), hdr(0), &codes);
            } else {
                send_rtp(&call.pbx, call.relay_b, None, hdr(8), &codes);
            }
            sent.push(codes);
        }
        rustix::process::kill_process(pid, rustix::process::Signal::CONT).unwrap();
        let mut last_seq = None;
        for (f, codes) in sent.iter().enumerate() {
            let (h, payload) = if a_to_b {
                recv_rtp(&call.pbx, None)
            } else {
                recv_rtp(&call.phone, Some(&mut rx))
            };
            if let Some(prev) = last_seq {
                assert_eq!(
                    h.sequence,
                    u16::wrapping_add(prev, 1),
                    "packet {f} in order"
                );
            }
            last_seq = Some(h.sequence);
            let mut expect = *codes;
            let (from, to) = if a_to_b {
                (g711::Law::Ulaw, g711::Law::Alaw)
            } else {
                (g711::Law::Alaw, g711::Law::Ulaw)
            };
            g711::transcode(from, to, &mut expect);
            assert_eq!(h.payload_type, to.static_payload_type());
            assert_eq!(payload, expect, "packet {f} transcoded exactly");
        }
    }
    let Reply::SessionDeleted { stats, .. } = client
        .call(Command::DeleteSession {
            session: "burst".into(),
        })
        .unwrap()
    else {
        panic!("no final stats");
    };
    for leg in [stats.a, stats.b] {
        assert_eq!(leg.packets_in, u64::from(BURST));
        assert_eq!(leg.packets_out, u64::from(BURST));
        assert_eq!(leg.dropped, 0);
    }
    assert!(relay.stop().success());
}

/// The counters of legs A and B, read with `stats`.
fn leg_stats(client: &mut Client, session: &str) -> [LegStats; 2] {
    let reply = client
        .call(Command::Stats {
            session: Some(session.into()),
        })
        .unwrap();
    let Reply::Stats { sessions, .. } = reply else {
        panic!("{reply:?}")
    };
    [sessions[0].a, sessions[0].b]
}

fn set_direction(client: &mut Client, session: &str, leg: LegId, direction: Direction) {
    let upd = Some(LegUpdate {
        direction: Some(direction),
        ..LegUpdate::default()
    });
    let (a, b) = match leg {
        LegId::A => (upd, None),
        LegId::B => (None, upd),
    };
    let reply = client
        .call(Command::UpdateSession {
            session: session.into(),
            a,
            b,
        })
        .unwrap();
    assert!(matches!(reply, Reply::SessionUpdated { .. }), "{reply:?}");
}

/// A PBX holding the call (`sendonly`: the relay plays `recvonly` on leg B) gets nothing of the
/// secure phone's audio while its music on hold still reaches the phone; `sendrecv` again
/// restores the phone → PBX direction with continuous sequence numbers.
#[test]
fn a_held_pbx_leg_gets_nothing_while_the_other_direction_flows_and_resume_restores_it() {
    let mut relay = Relay::start(1);
    let mut client = relay.connect();
    let call = create(&mut client, "hold", 30_000);
    let mut tx = ctx(&KEY_IN, &SALT_IN);
    let mut rx = ctx(&KEY_OUT, &SALT_OUT);
    let voice = |tx: &mut SrtpContext, seq: u16| {
        send_rtp(
            &call.phone,
            call.relay_a,
            Some(tx),
            (false, 0, seq, u32::from(seq) * FRAME as u32),
            &[0xff; FRAME],
        );
    };
    voice(&mut tx, 1);
    let (before, _) = recv_rtp(&call.pbx, None);

    set_direction(&mut client, "hold", LegId::B, Direction::RecvOnly);
    for seq in 2..=11 {
        voice(&mut tx, seq);
        // Music on hold still goes PBX → phone, as SRTP the phone verifies.
        send_rtp(
            &call.pbx,
            call.relay_b,
            None,
            (false, 8, 100 + seq, u32::from(seq) * FRAME as u32),
            &[0xd5; FRAME],
        );
        let (h, _) = recv_rtp(&call.phone, Some(&mut rx));
        assert_eq!(h.payload_type, 0);
    }
    // Once the relay has handled all ten, none of them reached the PBX.
    assert!(
        wait_until(Duration::from_secs(5), || leg_stats(&mut client, "hold")[0]
            .withheld
            == 10),
        "ten packets withheld on leg A"
    );
    call.pbx.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1500];
    assert_eq!(
        call.pbx.recv_from(&mut buf).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "the held PBX received RTP"
    );
    call.pbx.set_nonblocking(false).unwrap();
    let [a, b] = leg_stats(&mut client, "hold");
    assert_eq!((a.packets_in, a.dropped, b.packets_out), (11, 0, 1));

    // Resume: the phone's audio reaches the PBX again, the sequence continuing without a gap.
    set_direction(&mut client, "hold", LegId::B, Direction::SendRecv);
    voice(&mut tx, 12);
    let (after, _) = recv_rtp(&call.pbx, None);
    assert_eq!(after.sequence, before.sequence.wrapping_add(1));
    assert!(after.marker, "a new talkspurt after the hold");
    assert_eq!(leg_stats(&mut client, "hold")[1].packets_out, 2);
    assert!(relay.stop().success());
}
