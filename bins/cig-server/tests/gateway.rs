//! cig-server end to end: a KMS community made with cig-kms, the switch cig-crs, cig-relay,
//! cig-server (keys dropped as `userdata/cig.raw`), the secure phone cig-phone and sipp as the
//! PBX, all on loopback with free ports. Each test proves one call flow of docs/calls.md over
//! the real protocols (UMSG over TLS with MIKEY-SAKKE, SIP over UDP, relay control).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use cig_testkit::{Proc, Signal, bin, free_tcp_port, free_udp_port, wait_until};
use tempfile::TempDir;

mod common;

use common::{Domain, GW, field, run};

const PHONE: &str = "tel:+4670123456";
const T: Duration = Duration::from_secs(30);

/// The PBX side's scenarios: cig-sip's own sipp scenarios (401 + verifyauth, 486) and ours.
fn scenario(name: &str) -> String {
    let local = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name);
    if local.exists() {
        return local.to_string_lossy().into_owned();
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../cig-sip/tests/sipp")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// sipp UAC: INVITE, expects the final status `{code}`, ACKs it.
const UAC_REFUSED: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- A call the gateway must refuse with {code}: INVITE, expects {code}, ACKs it. -->
<scenario name="INVITE refused with {code}">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]C[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:caller@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=- 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [local_ip]
      t=0 0
      m=audio 6000 RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true" />
  <recv response="180" optional="true" />
  <recv response="{code}" />
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]C[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
</scenario>
"#;

struct Bed {
    dir: TempDir,
    /// The KMS community in `dir/kms` and the switch's address and certificate.
    domain: Domain,
    sip_port: u16,
    pbx_port: u16,
    mgmt_port: u16,
    /// Extra cig-server flags (e.g. a short `--media-timeout`).
    server_args: Vec<String>,
    crs: Proc,
    relay: Proc,
    server: Proc,
}

fn conf(pbx_port: u16) -> String {
    format!(
        r#"
map maptel2sip {{
    entry auth tel "tel:+8888;7{{x}}" sip "sip:7{{x}}@127.0.0.1:{pbx_port}" auth pbxaccount;
    entry pbx tel "tel:+8888;{{x}}" sip "sip:{{x}}@127.0.0.1:{pbx_port}";
    entry anyhost tel "tel:+8888;{{x}}" sip "sip:{{x}}@{{host}}";
}}
map mapsip2tel {{
    entry sipext2tel sip "sip:9{{n}}@{{d}}" tel "tel:+{{n}}";
}}
map srctel2sip {{
    entry tel2sipsrc tel "tel:+{{n}}" sip "sip:{{n}}@secure.com";
}}
auth pbxaccount {{ user "gateway"; password "s3cret"; }}
interfaces {{
    tel {{ extension map maptel2sip; }}
    sip {{ extension map mapsip2tel; source map srctel2sip; bind 127.0.0.1; }}
}}
"#
    )
}

impl Bed {
    fn start() -> Bed {
        Bed::start_with(&[])
    }

    fn start_with(server_args: &[&str]) -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let domain = Domain::create(d, &[GW, PHONE]);
        let userdata = d.join("userdata");
        fs::create_dir_all(&userdata).unwrap();
        // The gateway's keys take the manual's older path: cig.raw + cig.raw.code.
        for (id, out) in [
            (GW, userdata.join("cig.raw")),
            (PHONE, d.join("phone.bundle")),
        ] {
            let code = out.with_extension(if id == GW { "raw.code" } else { "code" });
            domain.export(id, &out, &code);
        }
        let pbx_port = free_udp_port();
        fs::write(d.join("cig.conf"), conf(pbx_port)).unwrap();
        let (sip_port, mgmt_port) = (free_udp_port(), free_tcp_port());
        let idle = || Proc::spawn(&mut Command::new("true"));
        let mut bed = Bed {
            domain,
            sip_port,
            pbx_port,
            mgmt_port,
            server_args: server_args.iter().map(|a| (*a).to_owned()).collect(),
            crs: idle(),
            relay: idle(),
            server: idle(),
            dir,
        };
        // The notify hook records the events it is run with.
        let hook = bed.path("notify.sh");
        fs::write(
            &hook,
            format!(
                "#!/bin/sh\necho \"$1\" >> {}\n",
                bed.path("notify.events").display()
            ),
        )
        .unwrap();
        fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        bed.crs = bed.domain.spawn_crs();
        bed.relay = common::spawn_relay(bed.dir.path());
        bed.server = bed.spawn_server();
        bed.server
            .wait_line(|l| l == "cig-server ready", T)
            .unwrap_or_else(|| panic!("cig-server: {}", bed.server.stderr()));
        bed
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn spawn_server(&self) -> Proc {
        let notify = self.path("notify.sh");
        Proc::spawn(
            common::server_command(self.dir.path(), self.sip_port, self.mgmt_port, &notify)
                .args(&self.server_args),
        )
    }

    /// A secure phone registered at the switch.
    fn phone(&self, extra: &[&str]) -> Proc {
        let mut p = Proc::spawn(
            Command::new(bin("cig-phone"))
                .args([
                    "--bundle",
                    self.path("phone.bundle").to_str().unwrap(),
                    "--code-file",
                    self.path("phone.code").to_str().unwrap(),
                    "--switch",
                    &self.domain.switch,
                    "--media-ip",
                    "127.0.0.1",
                ])
                .args(extra),
        );
        p.wait_line(|l| l.starts_with("registered"), T)
            .unwrap_or_else(|| panic!("cig-phone: {}", p.stderr()));
        p
    }

    /// sipp towards the gateway (`-sn uac` or a scenario file), waits for it to finish.
    fn sipp_uac(&self, scenario_args: &[&str], service: &str) -> ExitStatus {
        let target = format!("127.0.0.1:{}", self.sip_port);
        let mut c = Command::new("sipp");
        c.args([
            &target,
            "-s",
            service,
            "-i",
            "127.0.0.1",
            "-m",
            "1",
            "-nostdin",
        ])
        .args(["-timeout", "30s", "-timeout_error", "-trace_err"])
        .args(scenario_args)
        .current_dir(self.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        c.status()
            .expect("sipp (scripts/install-test-deps.sh installs it)")
    }

    /// sipp as the PBX on `pbx_port`, in the background, listening once this returns.
    fn sipp_uas(&self, scenario_args: &[&str]) -> std::process::Child {
        common::sipp_uas(self.dir.path(), self.pbx_port, scenario_args)
    }

    /// A sipp UAC scenario (written into the test directory) whose INVITE must be refused
    /// with `code`.
    fn uac_refused(&self, code: u16) -> String {
        let path = self.path(&format!("uac_{code}.xml"));
        fs::write(&path, UAC_REFUSED.replace("{code}", &code.to_string())).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn notified(&self) -> Vec<String> {
        fs::read_to_string(self.path("notify.events"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// A sipp UAC call of `secs` seconds in the background (BYE from sipp at the end).
    fn long_call(&self, secs: u32) -> std::process::Child {
        Command::new("sipp")
            .args([&format!("127.0.0.1:{}", self.sip_port), "-s", "94670123456"])
            .args(["-i", "127.0.0.1", "-m", "1", "-nostdin", "-sn", "uac"])
            .args(["-d", &(secs * 1000).to_string()])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp")
    }

    fn session_log(&self) -> Vec<String> {
        fs::read_to_string(self.path("log/session.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// What sipp wrote to its error logs (`-trace_err`) in the test directory.
    fn sipp_errors(&self) -> String {
        self.sipp_trace("_errors.log")
    }

    /// The text of sipp's trace files in the test directory whose names end with `suffix`
    /// (`_errors.log`, `_rtt.csv`, `_logs.log`), joined.
    fn sipp_trace(&self, suffix: &str) -> String {
        fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
            .map(|e| fs::read_to_string(e.path()).unwrap_or_default())
            .collect()
    }

    /// The key material of secure identity `id`: the phone's bundle for [`PHONE`], else keys
    /// issued by the test KMS now and exported as `phone-<digits>.bundle`.
    fn phone_keys(&self, id: &str) -> cig_mikey_sakke::keystore::KeyMaterial {
        let (bundle, code) = if id == PHONE {
            (self.path("phone.bundle"), self.path("phone.code"))
        } else {
            let name = format!("phone-{}", id.trim_start_matches("tel:+"));
            let (bundle, code) = (
                self.path(&format!("{name}.bundle")),
                self.path(&format!("{name}.code")),
            );
            let kms = self.path("kms");
            let kms = kms.to_str().unwrap();
            run(Command::new(bin("cig-kms")).args(["issue", "--dir", kms, "--identity", id]));
            self.domain.export(id, &bundle, &code);
            (bundle, code)
        };
        let sealed = fs::read(bundle).unwrap();
        let code = fs::read_to_string(code).unwrap();
        let code = cig_mikey_sakke::bundle::TransferCode::parse(code.trim()).unwrap();
        cig_mikey_sakke::bundle::open(&sealed, &code).unwrap()
    }

    fn cig_log(&self) -> String {
        fs::read_to_string(self.path("log/cig.log")).unwrap_or_default()
    }

    fn cli(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(bin("cig-cli"))
            .args(["--port", &self.mgmt_port.to_string()])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

fn wait_exit(mut child: std::process::Child) -> ExitStatus {
    let mut st = None;
    wait_until(Duration::from_secs(60), || {
        st = child.try_wait().unwrap();
        st.is_some()
    });
    st.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("sipp did not finish")
    })
}

/// A session.log line with its Time field (checked to be `YYYY-MM-DD HH:MM:SS.mmm`) written
/// as `T`, for exact comparison.
fn timeless(line: &str) -> String {
    let (head, rest) = line.split_at(line.find(", ").expect("fields") + 2);
    let (time, tail) = rest.split_at(23);
    let shape: String = time
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(shape, "9999-99-99 99:99:99.999", "{line}");
    format!("{head}T{tail}")
}

/// The states column of session.log lines.
fn states(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.split(", ").nth(6).unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn sip_to_secure_call_with_sipp_as_pbx_and_cig_phone_answering() {
    let bed = Bed::start();
    // The keys were imported from cig.raw, which is gone.
    assert!(!bed.path("userdata/cig.raw").exists());
    assert!(bed.cig_log().contains("imported cig.raw"));
    let mut phone = bed.phone(&["--answer", "auto"]);
    // The manual's worked example from sipp as the PBX: sip:101@pbx.com calls
    // sip:94670123456@secure.com; 180/200 from us, ACK, BYE from the PBX side.
    let st = bed.sipp_uac(
        &[
            "-sf",
            &scenario("uac_worked_example.xml"),
            "-cid_str",
            "worked-%u@pbx.com",
        ],
        "94670123456",
    );
    assert!(st.success(), "sipp uac failed; cig.log:\n{}", bed.cig_log());
    let line = phone
        .wait_line(|l| l.starts_with("call") && l.contains("state=HANGUP"), T)
        .expect("the phone saw the call end");
    assert!(line.contains("dir=in"), "{line}");
    // The secure callee is shown the caller the routing produced: the gateway's identity
    // with the PBX extension (design.md §6), not the bare gateway identity.
    let incoming = phone
        .seen()
        .iter()
        .find(|l| l.starts_with("call") && l.contains("dir=in"))
        .cloned()
        .expect("an incoming call line");
    let fields = incoming.replace(' ', "\n");
    assert_eq!(field(&fields, "from"), "tel:+8888;101", "{incoming}");
    assert_eq!(field(&fields, "to"), PHONE, "{incoming}");
    assert!(phone.seen().iter().any(|l| l.contains("state=TALK")));
    // The HANGUP may reach the phone before the gateway has written its last line.
    wait_until(T, || bed.session_log().len() >= 6);
    let log = bed.session_log();
    assert_eq!(
        states(&log),
        ["routing", "routed", "trying", "ringing", "talk", "hangup"],
        "{log:#?}"
    );
    // The manual's nine fields exactly: the URIs as received and as routed by the maps, the
    // SIP call's Call-ID on the caller's interface and the UMSG session (as the phone saw it)
    // on the callee's.
    let umsg_id = field(&line.replace(' ', "\n"), "id");
    let (caller, callee) = ("sip:101@pbx.com", "sip:94670123456@secure.com");
    let routed = format!("{caller}, {callee}, tel:+8888;101, tel:+4670123456");
    let cid = "worked-1@pbx.com";
    let lines: Vec<String> = log.iter().map(|l| timeless(l)).collect();
    assert_eq!(
        lines,
        [
            format!("event, T, {caller}, {callee}, , , routing, {cid}, "),
            format!("event, T, {routed}, routed, {cid}, "),
            format!("event, T, {routed}, trying, {cid}, {umsg_id}"),
            format!("event, T, {routed}, ringing, {cid}, {umsg_id}"),
            format!("event, T, {routed}, talk, {cid}, {umsg_id}"),
            format!("event, T, {routed}, hangup, {cid}, {umsg_id}"),
        ]
    );
}

#[test]
fn secure_to_sip_call_to_sipp_uas_with_bye_from_the_phone() {
    let bed = Bed::start();
    // sipp writes what it receives (-trace_msg): the INVITE's Call-ID is read from there.
    let pbx = bed.sipp_uas(&["-sn", "uas", "-trace_msg"]);
    let mut phone = bed.phone(&["--dial", "tel:+8888w101", "--hangup-after", "1"]);
    let line = phone
        .wait_line(|l| l.contains("state=HANGUP"), T)
        .expect("call ended");
    assert!(
        phone.seen().iter().any(|l| l.contains("state=TALK")),
        "{line}"
    );
    assert!(
        wait_exit(pbx).success(),
        "sipp uas; cig.log:\n{}",
        bed.cig_log()
    );
    // sipp may finish before the gateway has written its last line.
    wait_until(T, || bed.session_log().len() >= 5);
    let log = bed.session_log();
    assert_eq!(
        states(&log),
        ["routing", "routed", "ringing", "talk", "hangup"],
        "{log:#?}"
    );
    // The manual's nine fields exactly: the phone's session on the caller's interface, the
    // Call-ID of the INVITE the gateway placed (as the PBX received it) on the callee's.
    let umsg_id = field(&line.replace(' ', "\n"), "id");
    let cid = bed
        .sipp_trace("_messages.log")
        .lines()
        .find_map(|l| l.strip_prefix("Call-ID:"))
        .map(|c| c.trim().to_owned())
        .expect("sipp received an INVITE with a Call-ID");
    let (caller, callee) = (PHONE, "tel:+8888w101");
    let routed = format!(
        "{caller}, {callee}, sip:4670123456@secure.com, sip:101@127.0.0.1:{}",
        bed.pbx_port
    );
    let lines: Vec<String> = log.iter().map(|l| timeless(l)).collect();
    assert_eq!(
        lines,
        [
            format!("event, T, {caller}, {callee}, , , routing, {umsg_id}, "),
            format!("event, T, {routed}, routed, {umsg_id}, "),
            format!("event, T, {routed}, ringing, {umsg_id}, {cid}"),
            format!("event, T, {routed}, talk, {umsg_id}, {cid}"),
            format!("event, T, {routed}, hangup, {umsg_id}, {cid}"),
        ]
    );
}

#[test]
fn hold_and_resume_from_the_pbx_are_answered_mirrored_and_outlast_the_media_timeout() {
    // A 2 s media timeout and a 3 s `inactive` hold without RTP: only the hold keeps the call.
    let bed = Bed::start_with(&["--media-timeout", "2"]);
    let mut phone = bed.phone(&["--answer", "auto"]);
    // sipp's RTP: G.711 u-law silence (0xFF), 20 s of it.
    fs::write(bed.path("silence.ulaw"), vec![0xFF_u8; 8000 * 20]).unwrap();
    // sipp checks each 200 OK mirrors its offer: recvonly, inactive, sendrecv.
    let st = bed.sipp_uac(&["-sf", &scenario("uac_hold.xml")], "94670123456");
    assert!(
        st.success(),
        "hold/resume flow; cig.log:\n{}\nsipp:\n{}",
        bed.cig_log(),
        bed.sipp_errors()
    );
    let line = phone
        .wait_line(|l| l.starts_with("call") && l.contains("state=HANGUP"), T)
        .expect("the secure leg ended with sipp's BYE");
    assert!(line.contains("reason=normal"), "{line}");
    let log = bed.cig_log();
    assert!(
        log.contains("the PBX put the call on hold (sendonly)"),
        "{log}"
    );
    // The relay does not even report the `inactive` PBX leg silent (its silence is agreed),
    // so the call outlives the 2 s media timeout with nothing to keep.
    assert!(!log.contains("no media on leg B"), "{log}");
    assert!(log.contains("the PBX resumed the call"), "{log}");
}

/// The relay honours the hold: while the PBX holds the call (`sendonly`) it gets none of the
/// secure phone's audio, and after the resume it gets it again. The PBX's media is a socket of
/// the test: it sends μ-law silence every 20 ms to the relay's PBX leg (read from cig.log, so
/// the relay learns it by symmetric RTP) and times every RTP packet the relay sends it.
#[test]
fn a_holding_pbx_gets_no_rtp_until_it_resumes() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let bed = Bed::start();
    let _phone = bed.phone(&["--answer", "auto"]);
    let media = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    media
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let port = media.local_addr().unwrap().port().to_string();
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let stop = done.clone();
    let log = bed.path("log/cig.log");
    let arrivals = std::thread::spawn(move || {
        let (mut at, mut buf, mut relay, mut seq) = (Vec::new(), [0u8; 1500], None, 0u16);
        while !stop.load(Ordering::Relaxed) {
            relay = relay.or_else(|| {
                let text = fs::read_to_string(&log).unwrap_or_default();
                let leg = text.split("PBX leg ").nth(1)?.lines().next()?;
                leg.trim().parse::<std::net::SocketAddr>().ok()
            });
            if let Some(relay) = relay {
                let mut pkt = [0xffu8; 172];
                let h = cig_media::rtp::write_header(
                    &mut pkt,
                    false,
                    0,
                    seq,
                    u32::from(seq) * 160,
                    0x0bad_cafe,
                )
                .unwrap();
                assert_eq!(h, 12);
                media.send_to(&pkt, relay).unwrap();
                seq = seq.wrapping_add(1);
            }
            if media.recv(&mut buf).is_ok() {
                at.push(std::time::Instant::now());
            }
        }
        at
    });
    // sipp: call, 1 s talk, 1.5 s hold (sendonly), 1 s after the resume, BYE.
    let st = bed.sipp_uac(
        &[
            "-sf",
            &scenario("uac_hold_media.xml"),
            "-set",
            "media",
            &port,
        ],
        "94670123456",
    );
    done.store(true, Ordering::Relaxed);
    let at = arrivals.join().unwrap();
    assert!(
        st.success(),
        "hold/resume flow; cig.log:\n{}\nsipp:\n{}",
        bed.cig_log(),
        bed.sipp_errors()
    );
    // The longest silence is the hold; the phone's 50 packets/s arrive before and after it.
    let (gap_at, gap) = at
        .windows(2)
        .enumerate()
        .map(|(i, w)| (i + 1, w[1] - w[0]))
        .max_by_key(|&(_, g)| g)
        .unwrap_or_else(|| panic!("no RTP reached the PBX; cig.log:\n{}", bed.cig_log()));
    let (before, after) = (gap_at, at.len() - gap_at);
    assert!(
        gap >= Duration::from_millis(1000) && before >= 10 && after >= 10,
        "{before} packets, a {gap:?} gap (the hold), then {after} packets; cig.log:\n{}",
        bed.cig_log()
    );
    let log = bed.cig_log();
    assert!(
        log.contains("the PBX put the call on hold (sendonly)")
            && log.contains("the PBX resumed the call"),
        "{log}"
    );
}

#[test]
fn digest_auth_towards_the_pbx() {
    let bed = Bed::start();
    let pbx = bed.sipp_uas(&["-sf", &scenario("uas_auth.xml")]);
    let mut phone = bed.phone(&["--dial", "tel:+8888;7001", "--hangup-after", "1"]);
    phone
        .wait_line(|l| l.contains("state=HANGUP"), T)
        .expect("call ended");
    assert!(phone.seen().iter().any(|l| l.contains("state=TALK")));
    assert!(
        wait_exit(pbx).success(),
        "the PBX's verifyauth failed; cig.log:\n{}",
        bed.cig_log()
    );
    assert!(!bed.cig_log().contains("s3cret"), "no password in cig.log");
    assert!(bed.cig_log().contains("password \"********\""));
}

#[test]
fn no_route_both_ways_and_session_log_failed_line() {
    let bed = Bed::start();
    // SIP → secure: nothing maps sip:555@…: 404.
    let sipp_port = free_udp_port();
    let refused = bed.uac_refused(404);
    let port = sipp_port.to_string();
    let args = ["-sf", &refused, "-p", &port, "-cid_str", "noroute-%u@pbx"];
    let st = bed.sipp_uac(&args, "555");
    assert!(st.success(), "expected 404; cig.log:\n{}", bed.cig_log());
    // Exactly the manual's nine fields: no routed URIs, the INVITE's Call-ID, no callee
    // session.
    let (caller, callee) = (
        format!("sip:caller@127.0.0.1:{sipp_port}"),
        format!("sip:555@127.0.0.1:{}", bed.sip_port),
    );
    let lines: Vec<String> = bed.session_log().iter().map(|l| timeless(l)).collect();
    assert_eq!(
        lines,
        [
            format!("event, T, {caller}, {callee}, , , routing, noroute-1@pbx, "),
            format!("event, T, {caller}, {callee}, , , failed, noroute-1@pbx, "),
        ]
    );
    // Secure → SIP: the gateway's bare number has no extension entry: HANGUP(no route).
    let mut phone = bed.phone(&["--dial", "tel:+8888"]);
    let line = phone
        .wait_line(|l| l.contains("state=HANGUP"), T)
        .expect("refused");
    assert!(line.contains("reason=no_route"), "{line}");
}

#[test]
fn busy_both_ways() {
    let bed = Bed::start();
    let phone = bed.phone(&["--answer", "reject=busy"]);
    let st = bed.sipp_uac(&["-sf", &bed.uac_refused(486)], "94670123456");
    assert!(st.success(), "expected 486; cig.log:\n{}", bed.cig_log());
    // One identity, one device at a time (a second registration replaces the first).
    drop(phone);

    let pbx = bed.sipp_uas(&["-sf", &scenario("uas_busy.xml")]);
    let mut caller = bed.phone(&["--dial", "tel:+8888;101"]);
    let line = caller
        .wait_line(|l| l.contains("state=HANGUP"), T)
        .expect("refused");
    assert!(line.contains("reason=busy"), "{line}");
    assert!(wait_exit(pbx).success());
}

#[test]
fn cancel_before_answer_and_bye_from_the_pbx() {
    let bed = Bed::start();
    let mut phone = bed.phone(&["--answer", "never"]);
    let st = bed.sipp_uac(&["-sf", &scenario("uac_cancel.xml")], "94670123456");
    assert!(st.success(), "CANCEL flow; cig.log:\n{}", bed.cig_log());
    let line = phone
        .wait_line(|l| l.contains("state=HANGUP"), T)
        .expect("the secure leg ended");
    assert!(line.contains("dir=in"), "{line}");
    drop(phone);

    // Secure → SIP answered, then the PBX hangs up: the phone sees HANGUP.
    let pbx = bed.sipp_uas(&["-sf", &scenario("uas_bye.xml")]);
    let mut caller = bed.phone(&["--dial", "tel:+8888;101"]);
    caller
        .wait_line(|l| l.contains("state=TALK"), T)
        .expect("answered");
    caller
        .wait_line(|l| l.contains("state=HANGUP"), T)
        .unwrap_or_else(|| {
            panic!(
                "BYE from the PBX did not end the secure leg; cig.log:\n{}\nsipp:\n{}",
                bed.cig_log(),
                bed.sipp_errors()
            )
        });
    assert!(wait_exit(pbx).success());
}

#[test]
fn management_port_and_signals() {
    let mut bed = Bed::start();
    let (ok, status) = bed.cli(&["status"]);
    assert!(ok, "{status}");
    assert!(status.contains("CONNECTED"), "{status}");
    assert!(status.contains(GW), "{status}");
    // A call held ringing shows in `show call`.
    let _phone = bed.phone(&["--answer", "never"]);
    let pbx = Command::new("sipp")
        .args([&format!("127.0.0.1:{}", bed.sip_port), "-s", "94670123456"])
        .args(["-i", "127.0.0.1", "-m", "1", "-nostdin", "-sn", "uac"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(T, || bed
        .cli(&["show", "call"])
        .1
        .contains("RING")));
    let (_, table) = bed.cli(&["show", "call"]);
    assert!(
        table.contains("tel:+4670123456") && table.contains("tel:+8888;sipp"),
        "{table}"
    );
    let (_, umsg) = bed.cli(&["show", "umsg"]);
    assert!(umsg.contains("GROWL"), "{umsg}");

    // SIGHUP with a broken file: refused, old config kept, diagnostics in cig.log.
    fs::write(bed.path("cig.conf"), "interfaces { sip { bogus; } }").unwrap();
    bed.server.signal(Signal::HUP);
    assert!(wait_until(T, || bed.cig_log().contains("reload of")));
    assert!(bed.cig_log().contains("keeping the old configuration"));
    // SIGUSR1 reopens the logs after a rotation.
    fs::rename(bed.path("log/cig.log"), bed.path("log/cig.log.1")).unwrap();
    bed.server.signal(Signal::USR1);
    assert!(wait_until(T, || bed.path("log/cig.log").exists()));

    // SIGTERM hangs the ringing call up (sipp's INVITE gets a final answer) and exits 0.
    let st = bed.server.terminate(T).expect("cig-server stopped");
    assert!(st.success(), "{st:?}");
    let mut pbx = pbx;
    assert!(wait_until(T, || pbx.try_wait().unwrap().is_some()));
    let (ok, _) = bed.cli(&["status"]);
    assert!(!ok, "cig-cli reports the server is not running");
}

#[test]
fn relay_killed_mid_call_ends_the_call_and_new_calls_wait_for_its_return() {
    let mut bed = Bed::start();
    let mut phone = bed.phone(&["--answer", "auto"]);
    let mut sipp = bed.long_call(30);
    phone
        .wait_line(|l| l.contains("state=TALK"), T)
        .expect("answered");
    bed.relay.signal(Signal::KILL);
    // The call ends on both legs (sipp gets a BYE it did not expect: its status is moot).
    phone
        .wait_line(|l| l.contains("state=HANGUP"), T)
        .unwrap_or_else(|| panic!("secure leg still up; cig.log:\n{}", bed.cig_log()));
    assert!(
        wait_until(T, || sipp.try_wait().unwrap().is_some()),
        "SIP leg still up"
    );
    assert!(wait_until(T, || bed
        .cli(&["status"])
        .1
        .contains("DISCONNECTED")));
    // New calls: 503 while the relay is away.
    let st = bed.sipp_uac(&["-sf", &bed.uac_refused(503)], "94670123456");
    assert!(st.success(), "expected 503; cig.log:\n{}", bed.cig_log());
    // The relay comes back: calls work again.
    bed.relay = common::spawn_relay(bed.dir.path());
    assert!(wait_until(T, || bed
        .notified()
        .contains(&"relay-recovered".to_owned())));
    let st = bed.sipp_uac(&["-sn", "uac"], "94670123456");
    assert!(
        st.success(),
        "call after the relay's return; cig.log:\n{}",
        bed.cig_log()
    );
    assert_eq!(bed.notified(), ["start", "relay-lost", "relay-recovered"]);
}

#[test]
fn switch_restarted_gateway_reconnects() {
    let mut bed = Bed::start();
    bed.crs.signal(Signal::KILL);
    assert!(wait_until(T, || bed
        .notified()
        .contains(&"switch-lost".to_owned())));
    let st = bed.sipp_uac(&["-sf", &bed.uac_refused(503)], "94670123456");
    assert!(st.success(), "expected 503 while the switch is away");
    bed.crs = bed.domain.spawn_crs();
    assert!(
        wait_until(Duration::from_secs(60), || bed
            .notified()
            .contains(&"switch-recovered".to_owned())),
        "no reconnect; cig.log:\n{}",
        bed.cig_log()
    );
    let _phone = bed.phone(&["--answer", "auto"]);
    let st = bed.sipp_uac(&["-sn", "uac"], "94670123456");
    assert!(
        st.success(),
        "call after reconnecting; cig.log:\n{}",
        bed.cig_log()
    );
    // SIGTERM: stop hook, exit 0.
    assert!(bed.server.terminate(T).expect("stopped").success());
    assert_eq!(
        bed.notified(),
        ["start", "switch-lost", "switch-recovered", "stop"]
    );
}

/// Sustained SIP → secure call set-up (docs/perf.md): sipp's UAC at `CIG_LOAD_RATE` calls/s
/// (default 50) for `CIG_LOAD_CALLS` calls (default 500), spread in turn over `CIG_LOAD_PHONES`
/// secure phones (default 4: each phone decapsulates its own calls, ~4 ms of CPU each),
/// answering at once; every call must succeed. Prints the rate reached, the INVITE → 200
/// set-up times and the CPU time per call of each process.
#[test]
#[ignore = "load run: cargo test -p cig-server --release --test gateway -- --ignored load"]
fn load_sip_to_secure() {
    let env = |k: &str, d: u32| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (rate, calls) = (env("CIG_LOAD_RATE", 50), env("CIG_LOAD_CALLS", 500));
    let phones: Vec<String> = (0..env("CIG_LOAD_PHONES", 4).clamp(1, 40))
        .map(|i| format!("tel:+46701234{}", 56 + i))
        .collect();
    let bed = Bed::start();
    let answering = AutoAnswer::start(&bed, &phones);
    // The numbers the PBX dials (`sip:9{n}@…` routes to `tel:+{n}`), in turn.
    let numbers: String = phones
        .iter()
        .map(|p| format!("9{};\n", p.trim_start_matches("tel:+")))
        .collect();
    let inf = bed.path("numbers.csv");
    fs::write(&inf, format!("SEQUENTIAL\n{numbers}")).unwrap();
    let cpu = Cpu::take(&bed);
    let started = std::time::Instant::now();
    let st = Command::new("sipp")
        .arg(format!("127.0.0.1:{}", bed.sip_port))
        .args([
            "-sf",
            &scenario("uac_load.xml"),
            "-inf",
            inf.to_str().unwrap(),
        ])
        .args(["-i", "127.0.0.1", "-d", "0", "-nostdin"])
        .args([
            "-r",
            &rate.to_string(),
            "-m",
            &calls.to_string(),
            "-l",
            "2000",
        ])
        .args([
            "-trace_rtt",
            "-rtt_freq",
            "1",
            "-trace_err",
            "-trace_logs",
            "-timeout",
            "300s",
            "-timeout_error",
        ])
        .current_dir(bed.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu.per_call(&Cpu::take(&bed), calls);
    // Printed before the verdict: a saturated run's CPU use is worth seeing too.
    println!("load: {cpu}");
    let log = bed.cig_log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("[WARN]"))
        .take(20)
        .collect();
    assert!(
        st.success(),
        "failed calls after {secs:.1} s; cig.log warnings:\n{}\ncig-crs:\n{}\nsipp errors:\n{}",
        warnings.join("\n"),
        fs::read_to_string(bed.path("crs.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.contains("call "))
            .take(30)
            .collect::<Vec<_>>()
            .join("\n"),
        bed.sipp_errors()
            .lines()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Set-up times in call order (sipp's rtt file, one line per call).
    // (The header line's second field is no number.)
    let rtt: Vec<f64> = bed
        .sipp_trace("_rtt.csv")
        .lines()
        .filter_map(|l| l.split(';').nth(1).and_then(|v| v.parse().ok()))
        .collect();
    let pct = |v: &[f64], p: f64| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(((v.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    // The first call builds the SAKKE tables (~0.5 s) and the calls of that first second
    // queue behind it: the steady state is shown apart.
    let warm = rtt.get(rate as usize..).unwrap_or_default();
    println!(
        "load: {calls} calls at {rate}/s offered: {:.1} calls/s reached, set-up p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; after the first second p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; first 10: {:?}",
        f64::from(calls) / secs,
        pct(&rtt, 0.5),
        pct(&rtt, 0.99),
        pct(&rtt, 1.0),
        pct(warm, 0.5),
        pct(warm, 0.99),
        pct(warm, 1.0),
        rtt.get(..10).unwrap_or_default()
    );
    // The set-up time the gateway adds, per call: sipp's INVITE → 200 less the time the phone
    // held that call (matched by the caller, `tel:+8888;{call number}`). What is left is the
    // gateway, the switch both ways, and every wait for a core on the way.
    let holds = answering.holds.lock().unwrap().clone();
    let mut added: Vec<(u64, f64)> = Vec::new();
    for line in bed.sipp_trace("_logs.log").lines() {
        let v: Vec<f64> = line
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        let [n, sent_s, sent_us, ok_s, ok_us] = v[..] else {
            continue;
        };
        let n = n as u64;
        if let Some(hold) = holds.get(&format!("tel:+8888;{n}")) {
            let e2e = (ok_s - sent_s) * 1e3 + (ok_us - sent_us) / 1e3;
            added.push((n, e2e - hold.as_secs_f64() * 1e3));
        }
    }
    let all: Vec<f64> = added.iter().map(|&(_, ms)| ms).collect();
    let warm: Vec<f64> = added
        .iter()
        .filter(|&&(n, _)| n > u64::from(rate))
        .map(|&(_, ms)| ms)
        .collect();
    let held: Vec<f64> = holds.values().map(|d| d.as_secs_f64() * 1e3).collect();
    println!(
        "load: added by the gateway (INVITE → 200 less the phone's hold) over {} calls: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; after the first second p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; the phones' hold p50 {:.1} ms, p99 {:.1} ms",
        added.len(),
        pct(&all, 0.5),
        pct(&all, 0.99),
        pct(&all, 1.0),
        pct(&warm, 0.5),
        pct(&warm, 0.99),
        pct(&warm, 1.0),
        pct(&held, 0.5),
        pct(&held, 0.99),
    );
    assert_eq!(
        added.len(),
        calls as usize,
        "every call's sipp times matched with its phone's hold"
    );
}

/// CPU time used so far by the processes of a load run, from /proc (USER_HZ = 100): the
/// gateway, the switch, the relay, this test process (the load endpoint: its UMSG driver and
/// crypto) and its reaped children (sipp), with the load average.
struct Cpu {
    server: f64,
    crs: f64,
    relay: f64,
    endpoint: f64,
    children: f64,
    loadavg: String,
}

impl Cpu {
    fn take(bed: &Bed) -> Cpu {
        // Fields after the command name: state is field 3, utime 14, stime 15, cutime 16,
        // cstime 17.
        let fields = |pid: &str| -> Vec<f64> {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            rest.split_whitespace()
                .map(|v| v.parse().unwrap_or(0.0) / 100.0)
                .collect()
        };
        let own = |pid: u32| {
            let f = fields(&pid.to_string());
            f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)
        };
        let me = fields("self");
        let at = |i: usize| me.get(i).copied().unwrap_or(0.0);
        Cpu {
            server: own(bed.server.id()),
            crs: own(bed.crs.id()),
            relay: own(bed.relay.id()),
            endpoint: at(11) + at(12),
            children: at(13) + at(14),
            loadavg: fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// CPU milliseconds per call between `self` and `later`, and the load averages.
    fn per_call(&self, later: &Cpu, calls: u32) -> String {
        let ms = |a: f64, b: f64| (b - a) * 1000.0 / f64::from(calls.max(1));
        format!(
            "CPU ms per call: cig-server {:.2}, cig-crs {:.2}, cig-relay {:.2}, sipp {:.2}, load endpoint {:.2}; load average before {}, after {}",
            ms(self.server, later.server),
            ms(self.crs, later.crs),
            ms(self.relay, later.relay),
            ms(self.children, later.children),
            ms(self.endpoint, later.endpoint),
            self.loadavg,
            later.loadavg
        )
    }
}

/// Secure endpoints for load runs: each of `identities` registers over the real UMSG driver
/// (its own connection) and answers every incoming call at once (GROWL, TALK with PCMA), any
/// number at a time, with no media (cig-phone is one line with audio).
struct AutoAnswer {
    rt: Option<tokio::runtime::Runtime>,
    /// Per incoming call, by its FROM: how long the phone held it, from the BANG's arrival at
    /// the phone (its session's `created`, stamped as the reader took the frame) to the TALK
    /// queued — the ECCSI verification and SAKKE decapsulation, and any wait for a core.
    holds: Arc<Mutex<HashMap<String, Duration>>>,
}

impl AutoAnswer {
    fn start(bed: &Bed, identities: &[String]) -> AutoAnswer {
        use cig_umsg::call::{CallState, Media};
        use cig_umsg::client::Event;
        use cig_umsg::driver::client::{ClientConfig, ClientEvent, start};
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (registered_tx, registered) = std::sync::mpsc::channel();
        let holds = Arc::new(Mutex::new(HashMap::new()));
        for id in identities {
            let keys = bed.phone_keys(id);
            // A phone builds its SAKKE tables (Z, RSK pairing lines, its own [b]P + Z) once.
            keys.prepare();
            let mut cfg = ClientConfig::new(keys);
            cfg.switches = vec![bed.domain.switch.clone()];
            let (me, registered_tx, holds) =
                (id.clone(), registered_tx.clone(), Arc::clone(&holds));
            rt.spawn(async move {
                let (h, mut ev) = start(cfg);
                let answer = Media {
                    codecs: vec![8],
                    dtmf_pt: 101,
                    ssrc: 1,
                };
                while let Some(e) = ev.recv().await {
                    match e {
                        ClientEvent::Registered { .. } => {
                            let _ = registered_tx.send(());
                        }
                        ClientEvent::Core(Event::Call(id)) => {
                            h.with(|s, _| {
                                let Some(c) = s
                                    .calls
                                    .get(&id)
                                    .filter(|c| c.state == CallState::Bang && c.to == me)
                                else {
                                    return;
                                };
                                let (from, created) = (c.from.clone(), c.created);
                                for f in [s.calls.growl(&id), s.calls.answer(&id, &answer)]
                                    .into_iter()
                                    .flatten()
                                {
                                    s.send(f);
                                }
                                let held = SystemTime::now()
                                    .duration_since(created)
                                    .unwrap_or_default();
                                holds.lock().unwrap().insert(from, held);
                            });
                        }
                        _ => {}
                    }
                }
            });
        }
        for _ in identities {
            registered.recv_timeout(T).expect("load phone registered");
        }
        AutoAnswer {
            rt: Some(rt),
            holds,
        }
    }
}

impl Drop for AutoAnswer {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// Sustained secure → SIP call set-up (docs/perf.md): a UMSG endpoint registered as the phone's
/// identity sends `CIG_LOAD_CALLS` BANGs (default 500) to `tel:+8888;101` at `CIG_LOAD_RATE`
/// calls/s (default 50), their I_MESSAGEs built before the timed phase; sipp's UAS answers as
/// the PBX. Every call must reach TALK; prints the rate reached and the BANG → TALK times.
#[test]
#[ignore = "load run: cargo test -p cig-server --release --test gateway -- --ignored load"]
fn load_secure_to_sip() {
    use cig_umsg::call::{CallState, HangupReason, Media, PreparedCall, SessionId};
    use cig_umsg::client::Event;
    use cig_umsg::driver::client::{ClientConfig, ClientEvent, start};
    use std::time::Instant;
    let env = |k: &str, d: u32| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (rate, calls) = (env("CIG_LOAD_RATE", 50), env("CIG_LOAD_CALLS", 500));
    let bed = Bed::start();
    let pbx = Command::new("sipp")
        .args(["-i", "127.0.0.1", "-p", &bed.pbx_port.to_string()])
        .args(["-sn", "uas", "-m", &calls.to_string(), "-nostdin"])
        .args(["-timeout", "300s", "-timeout_error", "-trace_err"])
        .current_dir(bed.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp");
    let keys = bed.phone_keys(PHONE);
    keys.zpub.prepare();
    let mut cfg = ClientConfig::new(keys.clone());
    cfg.switches = vec![bed.domain.switch.clone()];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bed_ref = &bed;
    let result = rt.block_on(async move {
        let (h, mut ev) = start(cfg);
        loop {
            match ev.recv().await {
                Some(ClientEvent::Registered { .. }) => break,
                Some(_) => {}
                None => return Err("load phone stopped".to_owned()),
            }
        }
        let offer = Media {
            codecs: vec![0, 8],
            dtmf_pt: 101,
            ssrc: 1,
        };
        // The BANGs are built from the key material before the timed phase and adopted by
        // the session as they are sent.
        let mut bangs = Vec::new();
        for _ in 0..calls {
            let now = std::time::SystemTime::now();
            let to = "tel:+8888;101";
            let call = PreparedCall::new(&keys, None, to, &offer, now, &mut rand_core::OsRng)
                .map_err(|e| e.to_string())?;
            bangs.push(call);
        }
        let cpu = Cpu::take(bed_ref);
        // Each call's place in the sending order and when its BANG left.
        let mut sent: HashMap<SessionId, (usize, Instant)> = HashMap::new();
        let mut setup: Vec<(usize, f64)> = Vec::new();
        let mut failed = 0;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
        let started = Instant::now();
        let mut bangs = bangs.into_iter();
        let deadline = tokio::time::sleep(Duration::from_secs(120));
        tokio::pin!(deadline);
        while setup.len() + failed < calls as usize {
            tokio::select! {
                _ = tick.tick(), if sent.len() + setup.len() + failed < calls as usize => {
                    if let Some(call) = bangs.next() {
                        let id = *call.id();
                        let n = sent.len() + setup.len() + failed;
                        sent.insert(id, (n, Instant::now()));
                        let adopted = h.with(|s, now| {
                            let (_, f) = s.calls.adopt(call, now)?;
                            s.send(f);
                            Ok::<_, cig_umsg::Error>(())
                        });
                        adopted.ok_or("not registered")?.map_err(|e| e.to_string())?;
                    }
                }
                e = ev.recv() => match e {
                    Some(ClientEvent::Core(Event::Call(id))) => {
                        let state = h.with(|s, _| s.calls.get(&id).map(|c| c.state)).flatten();
                        match state {
                            Some(CallState::Talk) => {
                                if let Some((n, t)) = sent.remove(&id) {
                                    setup.push((n, t.elapsed().as_secs_f64() * 1000.0));
                                    h.with(|s, _| {
                                        if let Some(f) = s.calls.hangup(&id, HangupReason::Normal) {
                                            s.send(f);
                                        }
                                    });
                                }
                            }
                            Some(CallState::Hangup) if sent.remove(&id).is_some() => {
                                failed += 1;
                            }
                            _ => {}
                        }
                    }
                    Some(_) => {}
                    None => return Err("load phone stopped".to_owned()),
                },
                () = &mut deadline => break,
            }
        }
        let secs = started.elapsed().as_secs_f64();
        h.shutdown().await;
        Ok((setup, failed, secs, cpu))
    });
    let (setup, failed, secs, cpu) = result.unwrap();
    assert!(
        wait_exit(pbx).success(),
        "sipp uas failed; cig.log warnings:\n{}",
        bed.cig_log()
            .lines()
            .filter(|l| l.contains("[WARN]"))
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(
        (failed, setup.len()),
        (0, calls as usize),
        "failed calls; sipp errors:\n{}",
        bed.sipp_errors()
            .lines()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let cpu = cpu.per_call(&Cpu::take(&bed), calls);
    let sorted = |warm: bool| {
        let mut v: Vec<f64> = setup
            .iter()
            .filter(|(n, _)| !warm || *n >= rate as usize)
            .map(|(_, ms)| *ms)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let pct = |v: &[f64], p: f64| {
        v.get(((v.len().max(1) - 1) as f64 * p) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    // The calls of the first second apart, as in the other direction.
    let (all, warm) = (sorted(false), sorted(true));
    println!(
        "load secure->SIP: {calls} calls at {rate}/s offered: {:.1} calls/s reached, BANG->TALK p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; after the first second p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        f64::from(calls) / secs,
        pct(&all, 0.5),
        pct(&all, 0.99),
        pct(&all, 1.0),
        pct(&warm, 0.5),
        pct(&warm, 0.99),
        pct(&warm, 1.0)
    );
    println!("load secure->SIP: {cpu}");
}

/// baresip (Debian's baresip-core) as the SIP phone, driven through its ctrl_tcp module
/// (netstring-framed JSON commands and events): plays a tone from a WAV file (aufile), dumps
/// what it hears to WAV files (sndfile), answers automatically, sends DTMF with `sndcode`.
struct Baresip {
    dir: PathBuf,
    ctrl: std::net::TcpStream,
    buf: Vec<u8>,
    _proc: Proc,
}

impl Baresip {
    /// A baresip with identity `user` listening for SIP on `port`, playing `tone_hz`, speaking
    /// only `codec` (`PCMU` or `PCMA`).
    fn start(bed: &Bed, user: &str, port: u16, tone_hz: f32, codec: &str) -> Baresip {
        let dir = bed.path(&format!("baresip-{user}"));
        fs::create_dir_all(&dir).unwrap();
        let mut samples = vec![0i16; 8000 * 30];
        cig_media::tone::ToneGenerator::new(tone_hz, 8000).fill(&mut samples);
        let wav = dir.join("tone.wav");
        fs::write(&wav, cig_media::wav::encode(&samples)).unwrap();
        let ctrl_port = free_tcp_port();
        fs::write(
            dir.join("config"),
            format!(
                "sip_listen 127.0.0.1:{port}\n\
                 audio_source aufile,{}\naudio_player aubridge,nil\naudio_alert aubridge,nil\n\
                 ausrc_srate 8000\nausrc_channels 1\nauplay_srate 8000\nauplay_channels 1\n\
                 module_path /usr/lib/baresip/modules\n\
                 module g711.so\nmodule aufile.so\nmodule aubridge.so\nmodule sndfile.so\n\
                 module_app account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\n\
                 ctrl_tcp_listen 127.0.0.1:{ctrl_port}\nsnd_path {}\n",
                wav.display(),
                dir.display()
            ),
        )
        .unwrap();
        fs::write(
            dir.join("accounts"),
            format!(
                "<sip:{user}@127.0.0.1:{port}>;regint=0;answermode=auto;\
                 audio_codecs={codec}/8000/1\n"
            ),
        )
        .unwrap();
        let mut proc = Proc::spawn(
            Command::new("baresip")
                .args(["-f", dir.to_str().unwrap()])
                .current_dir(&dir),
        );
        let ready = proc.wait_line(|l| l.contains("baresip is ready"), T);
        assert!(
            ready.is_some(),
            "baresip did not start (scripts/install-test-deps.sh installs baresip-core): {}",
            proc.stderr()
        );
        let ctrl = std::net::TcpStream::connect(("127.0.0.1", ctrl_port)).unwrap();
        ctrl.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Baresip {
            dir,
            ctrl,
            buf: Vec::new(),
            _proc: proc,
        }
    }

    fn command(&mut self, command: &str, params: &str) {
        use std::io::Write;
        let json =
            serde_json::json!({"command": command, "params": params, "token": command}).to_string();
        write!(self.ctrl, "{}:{json},", json.len()).unwrap();
    }

    /// The next event (or response) within `timeout`.
    fn next(&mut self, timeout: Duration) -> Option<serde_json::Value> {
        use std::io::Read;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(colon) = self.buf.iter().position(|b| *b == b':') {
                let len: usize = std::str::from_utf8(&self.buf[..colon])
                    .unwrap()
                    .parse()
                    .unwrap();
                if self.buf.len() > colon + len + 1 {
                    let msg = serde_json::from_slice(&self.buf[colon + 1..colon + 1 + len]);
                    self.buf.drain(..colon + len + 2);
                    return Some(msg.unwrap());
                }
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            let mut chunk = [0u8; 4096];
            match self.ctrl.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => {}
            }
        }
    }

    /// Waits for event `kind`, collecting the DTMF digits seen on the way into `digits`.
    fn wait_event(&mut self, kind: &str, digits: &mut String) -> serde_json::Value {
        let deadline = std::time::Instant::now() + T;
        while let Some(e) = self.next(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            if e["type"] == "CALL_DTMF_START" {
                digits.push_str(e["param"].as_str().unwrap_or_default());
            }
            if e["type"] == kind {
                return e;
            }
        }
        panic!("baresip: no {kind} event");
    }

    /// How many 50 ms blocks of what baresip heard (its sndfile decode dump, complete once the
    /// call is closed) hold `hz`.
    fn blocks_with_tone(&self, hz: f32) -> usize {
        let dump = fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(Result::ok)
            .find(|e| e.file_name().to_string_lossy().ends_with("-dec.wav"));
        let samples = dump
            .and_then(|d| fs::read(d.path()).ok())
            .and_then(|b| cig_media::wav::decode(&b).ok())
            .unwrap_or_default();
        let grid = cig_media::tone::candidate_grid(300.0, 3400.0, 20.0);
        samples
            .chunks_exact(400)
            .filter(|b| {
                matches!(cig_media::tone::analyze(b, &grid),
                    cig_media::tone::Analysis::Tone { freq, .. } if (freq - hz).abs() < 1.0)
            })
            .count()
    }
}

#[test]
fn baresip_audio_and_dtmf_both_ways_through_the_gateway() {
    let bed = Bed::start();

    // SIP -> secure: baresip (400 Hz, u-law) calls the phone (1000 Hz, A-law on its leg).
    let mut phone = bed.phone(&[
        "--answer",
        "auto",
        "--codecs",
        "pcma",
        "--tone",
        "1000",
        "--dtmf",
        "456",
        "--dtmf-delay",
        "1",
        "--calls",
        "1",
        "--expect-tone",
        "400",
        "--expect-dtmf",
        "123",
    ]);
    let mut caller = Baresip::start(&bed, "desk", free_udp_port(), 400.0, "PCMU");
    let mut digits = String::new();
    caller.command(
        "dial",
        &format!("sip:94670123456@127.0.0.1:{}", bed.sip_port),
    );
    caller.wait_event("CALL_ESTABLISHED", &mut digits);
    std::thread::sleep(Duration::from_secs(1));
    caller.command("sndcode", "123");
    while digits.len() < 3 {
        caller.wait_event("CALL_DTMF_START", &mut digits);
    }
    std::thread::sleep(Duration::from_secs(1));
    caller.command("hangup", "");
    caller.wait_event("CALL_CLOSED", &mut digits);
    assert_eq!(digits, "456", "DTMF from the secure phone reached baresip");
    let st = phone.wait_exit(T).expect("phone done");
    assert!(
        st.success(),
        "the phone did not hear 400 Hz and DTMF 123: {:?}; cig.log:\n{}",
        phone.seen(),
        bed.cig_log()
    );
    assert!(
        wait_until(T, || caller.blocks_with_tone(1000.0) >= 20),
        "baresip heard 1000 Hz in {} blocks of 50 ms",
        caller.blocks_with_tone(1000.0)
    );
    drop(phone);

    // Secure -> SIP: the phone (1000 Hz, u-law) calls baresip as extension 101 (400 Hz,
    // A-law on the PBX leg).
    let mut desk = Baresip::start(&bed, "101", bed.pbx_port, 400.0, "PCMA");
    let mut caller = bed.phone(&[
        "--dial",
        "tel:+8888;101",
        "--codecs",
        "pcmu",
        "--tone",
        "1000",
        "--dtmf",
        "789",
        "--dtmf-delay",
        "1",
        "--hangup-after",
        "4",
        "--expect-tone",
        "400",
        "--expect-dtmf",
        "123",
    ]);
    let mut digits = String::new();
    desk.wait_event("CALL_ESTABLISHED", &mut digits);
    std::thread::sleep(Duration::from_secs(1));
    desk.command("sndcode", "123");
    desk.wait_event("CALL_CLOSED", &mut digits);
    assert_eq!(digits, "789", "DTMF from the secure phone reached baresip");
    let st = caller.wait_exit(T).expect("phone done");
    assert!(
        st.success(),
        "the phone did not hear 400 Hz and DTMF 123: {:?}; cig.log:\n{}",
        caller.seen(),
        bed.cig_log()
    );
    assert!(
        wait_until(T, || desk.blocks_with_tone(1000.0) >= 20),
        "baresip heard 1000 Hz in {} blocks of 50 ms",
        desk.blocks_with_tone(1000.0)
    );
}
