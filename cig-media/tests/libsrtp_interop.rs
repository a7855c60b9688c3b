//! Interop with libsrtp 2.7 + OpenSSL (the PyPI wheel `pylibsrtp`, driven through
//! `tests/libsrtp_peer.py`): packets protected by libsrtp unprotect with ours and vice versa, for
//! AES_CM_128_HMAC_SHA1_80, _32 and AEAD_AES_128_GCM, across a sequence-number rollover (ROC
//! 0 → 1), for SRTP and SRTCP; tampered and replayed packets are rejected on both sides.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use cig_media::Error;
use cig_media::srtp::{MAX_RTCP_OVERHEAD, MAX_RTP_OVERHEAD, MasterKey, SrtpContext, SrtpProfile};

struct Libsrtp {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Libsrtp {
    /// Starts the peer, or returns `None` (after saying so loudly) when python3 or pylibsrtp is
    /// missing on this machine. CI installs both (scripts/install-test-deps.sh).
    fn start() -> Option<Libsrtp> {
        let probe = Command::new("python3")
            .args(["-c", "import pylibsrtp"])
            .status();
        if !matches!(probe, Ok(s) if s.success()) {
            eprintln!(
                "\n**** SKIPPING libsrtp interop: python3 with pylibsrtp not found \
                 (run scripts/install-test-deps.sh) ****\n"
            );
            return None;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/libsrtp_peer.py");
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start libsrtp peer");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Some(Libsrtp {
            child,
            stdin,
            stdout,
        })
    }

    fn ask(&mut self, line: &str) -> Result<Vec<u8>, String> {
        writeln!(self.stdin, "{line}").unwrap();
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).unwrap();
        let answer = answer.trim_end();
        match answer.split_once(' ') {
            Some(("ok", data)) => Ok(hex::decode(data).unwrap()),
            None if answer == "ok" => Ok(Vec::new()),
            _ => Err(answer.to_string()),
        }
    }

    fn session(&mut self, name: &str, profile: &str, direction: &str, key: &[u8]) {
        self.ask(&format!(
            "session {name} {profile} {direction} {}",
            hex::encode(key)
        ))
        .unwrap();
    }

    fn op(&mut self, op: &str, name: &str, pkt: &[u8]) -> Result<Vec<u8>, String> {
        self.ask(&format!("{op} {name} {}", hex::encode(pkt)))
    }
}

impl Drop for Libsrtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rtp(seq: u16, ssrc: u32, fill: u8) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq).wrapping_mul(160)).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..160).map(|i: u32| fill.wrapping_add(i as u8)));
    p
}

/// A receiver report with one block, then a BYE.
fn rtcp(ssrc: u32, n: u8) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 3, 0, 0, 2, 0, 1, 0, n]);
    p.extend_from_slice(&[0; 12]);
    p.extend_from_slice(&[0x81, 203, 0, 1]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

fn ours_protect(ctx: &mut SrtpContext, pkt: &[u8], rtcp: bool) -> Vec<u8> {
    let mut buf = pkt.to_vec();
    buf.resize(pkt.len() + MAX_RTCP_OVERHEAD.max(MAX_RTP_OVERHEAD), 0);
    let n = if rtcp {
        ctx.protect_rtcp(&mut buf, pkt.len())
    } else {
        ctx.protect_rtp(&mut buf, pkt.len())
    }
    .unwrap();
    buf.truncate(n);
    buf
}

fn ours_unprotect(ctx: &mut SrtpContext, pkt: &[u8], rtcp: bool) -> Result<Vec<u8>, Error> {
    let mut buf = pkt.to_vec();
    let n = if rtcp {
        ctx.unprotect_rtcp(&mut buf, pkt.len())
    } else {
        ctx.unprotect_rtp(&mut buf, pkt.len())
    }?;
    buf.truncate(n);
    Ok(buf)
}

const CASES: [(SrtpProfile, &str); 3] = [
    (SrtpProfile::Aes128CmHmacSha1_80, "80"),
    (SrtpProfile::Aes128CmHmacSha1_32, "32"),
    (SrtpProfile::AeadAes128Gcm, "gcm"),
];

fn key_for(profile: SrtpProfile, seed: u8) -> Vec<u8> {
    (0..16 + profile.master_salt_len())
        .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8 * 7))
        .collect()
}

#[test]
fn libsrtp_to_ours_srtp_and_srtcp_with_rollover_tamper_replay() {
    let Some(mut lib) = Libsrtp::start() else {
        return;
    };
    for (profile, name) in CASES {
        let key = key_for(profile, 1);
        lib.session("tx", name, "out", &key);
        let mut rx = SrtpContext::new(&MasterKey::from_concatenated(profile, &key).unwrap());
        let mut sent = Vec::new();
        // 65500 … 65535, 0 … 43: ROC 0 then 1.
        for i in 0..80u16 {
            let plain = rtp(65500u16.wrapping_add(i), 0x1234_5678, i as u8);
            let srtp = lib.op("protect", "tx", &plain).unwrap();
            assert_eq!(srtp.len(), plain.len() + profile.rtp_overhead());
            assert_eq!(
                ours_unprotect(&mut rx, &srtp, false),
                Ok(plain),
                "{name} packet {i}"
            );
            sent.push(srtp);
        }
        assert_eq!(rx.roc(0x1234_5678), Some(1), "{name}");
        // Replays, from before and after the rollover.
        assert_eq!(
            ours_unprotect(&mut rx, &sent[30], false),
            Err(Error::Replayed)
        );
        assert_eq!(
            ours_unprotect(&mut rx, &sent[79], false),
            Err(Error::Replayed)
        );
        // Tampered header, payload and tag.
        let fresh = lib.op("protect", "tx", &rtp(44, 0x1234_5678, 9)).unwrap();
        for at in [2, 40, fresh.len() - 1] {
            let mut bad = fresh.clone();
            bad[at] ^= 0x20;
            assert_eq!(
                ours_unprotect(&mut rx, &bad, false),
                Err(Error::AuthFailed),
                "{name} byte {at}"
            );
        }
        assert!(ours_unprotect(&mut rx, &fresh, false).is_ok());

        // SRTCP: index and E flag as libsrtp writes them.
        let mut rtcp_sent = Vec::new();
        for n in 0..3 {
            let plain = rtcp(0x1234_5678, n);
            let s = lib.op("protect_rtcp", "tx", &plain).unwrap();
            assert_eq!(ours_unprotect(&mut rx, &s, true), Ok(plain), "{name} rtcp");
            rtcp_sent.push(s);
        }
        assert_eq!(
            ours_unprotect(&mut rx, &rtcp_sent[1], true),
            Err(Error::Replayed)
        );
        let mut bad = lib.op("protect_rtcp", "tx", &rtcp(0x1234_5678, 9)).unwrap();
        bad[12] ^= 1;
        assert_eq!(ours_unprotect(&mut rx, &bad, true), Err(Error::AuthFailed));
    }
}

#[test]
fn ours_to_libsrtp_srtp_and_srtcp_with_rollover_tamper_replay() {
    let Some(mut lib) = Libsrtp::start() else {
        return;
    };
    for (profile, name) in CASES {
        let key = key_for(profile, 2);
        lib.session("rx", name, "in", &key);
        let mut tx = SrtpContext::new(&MasterKey::from_concatenated(profile, &key).unwrap());
        let mut sent = Vec::new();
        for i in 0..80u16 {
            let plain = rtp(65520u16.wrapping_add(i), 0xcafe_f00d, i as u8);
            let srtp = ours_protect(&mut tx, &plain, false);
            assert_eq!(
                lib.op("unprotect", "rx", &srtp),
                Ok(plain),
                "{name} packet {i}"
            );
            sent.push(srtp);
        }
        assert_eq!(tx.roc(0xcafe_f00d), Some(1));
        for replay in [&sent[5], &sent[70]] {
            let e = lib.op("unprotect", "rx", replay).unwrap_err();
            assert!(e.contains("replay"), "{name}: {e}");
        }
        let fresh = ours_protect(&mut tx, &rtp(100, 0xcafe_f00d, 1), false);
        for at in [5, 50, fresh.len() - 2] {
            let mut bad = fresh.clone();
            bad[at] ^= 4;
            let e = lib.op("unprotect", "rx", &bad).unwrap_err();
            assert!(e.contains("auth"), "{name} byte {at}: {e}");
        }
        assert!(lib.op("unprotect", "rx", &fresh).is_ok());

        for n in 0..3 {
            let plain = rtcp(0xcafe_f00d, n);
            let s = ours_protect(&mut tx, &plain, true);
            assert_eq!(lib.op("unprotect_rtcp", "rx", &s), Ok(plain), "{name} rtcp");
        }
        let replay = {
            let plain = rtcp(0xcafe_f00d, 7);
            let s = ours_protect(&mut tx, &plain, true);
            assert!(lib.op("unprotect_rtcp", "rx", &s).is_ok());
            s
        };
        assert!(lib.op("unprotect_rtcp", "rx", &replay).is_err());
        let mut bad = ours_protect(&mut tx, &rtcp(0xcafe_f00d, 8), true);
        bad[20] ^= 1;
        assert!(lib.op("unprotect_rtcp", "rx", &bad).is_err());
    }
}
