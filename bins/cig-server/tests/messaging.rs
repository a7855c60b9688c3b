//! cig-server messaging end to end: a KMS community made with cig-kms, the switch cig-crs,
//! cig-relay and cig-server with a read and a write mailbox, and a secure user that is a
//! cig-umsg client over the real driver (UMSG over TLS, MIKEY-SAKKE per message). The Maildir
//! side is Python's standard `mailbox`/`email` packages (cig-msg's tests/peers/maildir_peer.py).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cig_testkit::{Proc, bin, free_tcp_port, free_udp_port, wait_until};
use cig_umsg::message::{AckStatus, Attachment, Body, MessageId, Received};
use serde_json::{Value, json};
use tempfile::TempDir;

const GW: &str = "tel:+8888";
const USER: &str = "tel:+4670123456";
const T: Duration = Duration::from_secs(30);

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {out}"))
        .to_owned()
}

/// cig-msg's Python Maildir peer (`put MAILBOX SPEC.json` / `take MAILBOX`).
fn python_peer(args: &[&str]) -> String {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cig-msg/tests/peers/maildir_peer.py");
    run(Command::new("python3").arg(script).args(args))
}

/// The gateway with mailboxes: messages from `sip:{u}@pbx.com` in the read mailbox go to
/// `tel:+{n}` for `To: sip:9{n}@secure.com`; messages from secure users to `tel:+8888;{e}` are
/// written with `From: sip:{n}@secure.com`, `To: sip:{e}@pbx.com`. SIP messaging is on: a
/// MESSAGE to `sip:9{n}@…` from `sip:{x}@127.0.0.1…` goes to `tel:+{n}`.
fn conf(read: &Path, write: &Path) -> String {
    format!(
        r#"
map maptel2sip {{ entry pbx tel "tel:+8888;{{x}}" sip "sip:{{x}}@127.0.0.1{{port}}"; }}
map mapsip2tel {{ entry sipext2tel sip "sip:9{{n}}@{{d}}" tel "tel:+{{n}}"; }}
interfaces {{
    tel {{ extension map maptel2sip; }}
    sip {{ extension map mapsip2tel; bind 127.0.0.1; messaging true; }}
}}
translate_map ext2gw {{ rule match "sip:{{u}}@pbx.com" translation "tel:+8888;{{u}}"; }}
translate_map secure2tel {{ rule match "sip:9{{n}}@secure.com" translation "tel:+{{n}}"; }}
translate_map tel2secure {{ rule match "tel:+{{n}}" translation "sip:{{n}}@secure.com"; }}
translate_map gw2ext {{ rule match "tel:+8888;{{e}}" translation "sip:{{e}}@pbx.com"; }}
mailboxes {{
    read {{ path "{}"; map_from translate_map ext2gw; map_to translate_map secure2tel; }}
    write {{ path "{}"; map_from translate_map tel2secure; map_to translate_map gw2ext; }}
}}
"#,
        read.display(),
        write.display()
    )
}

struct Bed {
    dir: TempDir,
    sip_port: u16,
    switch: String,
    certs: String,
    crs: Proc,
    _relay: Proc,
    server: Proc,
}

impl Bed {
    fn start() -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let kms = d.join("kms");
        let kms_s = kms.to_str().unwrap();
        run(Command::new(bin("cig-kms")).args(["init", "--dir", kms_s, "--domain", "cig.test"]));
        for id in [GW, USER] {
            run(Command::new(bin("cig-kms")).args(["issue", "--dir", kms_s, "--identity", id]));
        }
        let certs = run(Command::new(bin("cig-kms")).args([
            "switch-cert",
            "--dir",
            kms_s,
            "--name",
            "localhost",
            "--ip",
            "127.0.0.1",
        ]));
        let switch = format!("127.0.0.1:{}", free_tcp_port());
        let userdata = d.join("userdata");
        fs::create_dir_all(&userdata).unwrap();
        for (id, out, code) in [
            (GW, userdata.join("cig.raw"), userdata.join("cig.raw.code")),
            (USER, d.join("user.bundle"), d.join("user.code")),
        ] {
            run(Command::new(bin("cig-kms")).args([
                "export",
                "--dir",
                kms_s,
                "--identity",
                id,
                "--out",
                out.to_str().unwrap(),
                "--switch",
                &switch,
                "--code-file",
                code.to_str().unwrap(),
            ]));
        }
        let (read, write) = (d.join("mail/read"), d.join("mail/write"));
        for mb in [&read, &write] {
            run(Command::new(bin("cig-cli")).arg("create-maildir").arg(mb));
        }
        fs::write(d.join("cig.conf"), conf(&read, &write)).unwrap();
        let crs = spawn_crs(d, &switch, &certs);
        let mut relay = Proc::spawn(Command::new(bin("cig-relay")).args([
            "--control",
            d.join("relay.sock").to_str().unwrap(),
            "--log-dir",
            d.join("log").to_str().unwrap(),
            "--bind",
            "127.0.0.1",
            "--rtp-port-range",
            "20000",
            "40000",
            "--workers",
            "1",
        ]));
        relay
            .wait_line(|l| l.starts_with("cig-relay ready"), T)
            .unwrap_or_else(|| panic!("cig-relay: {}", relay.stderr()));
        let sip_port = free_udp_port();
        let mut server = Proc::spawn(Command::new(bin("cig-server")).args([
            "--config",
            d.join("cig.conf").to_str().unwrap(),
            "--userdata",
            userdata.to_str().unwrap(),
            "--log-dir",
            d.join("log").to_str().unwrap(),
            "--relay-socket",
            d.join("relay.sock").to_str().unwrap(),
            "--mgmt-port",
            &free_tcp_port().to_string(),
            "--sip-port",
            &sip_port.to_string(),
            "--notify",
            d.join("no-hook").to_str().unwrap(),
            "--debug",
        ]));
        server
            .wait_line(|l| l == "cig-server ready", T)
            .unwrap_or_else(|| panic!("cig-server: {}", server.stderr()));
        Bed {
            dir,
            sip_port,
            switch,
            certs,
            crs,
            _relay: relay,
            server,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn cig_log(&self) -> String {
        fs::read_to_string(self.path("log/cig.log")).unwrap_or_default()
    }

    fn files(&self, mailbox: &str) -> Vec<PathBuf> {
        fs::read_dir(self.path(&format!("mail/{mailbox}/new")))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }
}

fn spawn_crs(d: &Path, switch: &str, certs: &str) -> Proc {
    let mut crs = Proc::spawn(Command::new(bin("cig-crs")).args([
        "--listen",
        switch,
        "--cert",
        &field(certs, "cert"),
        "--key",
        &field(certs, "key"),
        "--kpak-from",
        d.join("kms").to_str().unwrap(),
        "--log",
        d.join("crs.log").to_str().unwrap(),
    ]));
    crs.wait_line(|l| l.starts_with("cig-crs ready"), T)
        .unwrap_or_else(|| panic!("cig-crs: {}", crs.stderr()));
    crs
}

/// What the secure user's client saw.
#[derive(Debug)]
enum Seen {
    Message(Received),
    Acked(MessageId, AckStatus),
}

/// A secure user: a cig-umsg client over the real driver, registered at the switch. Messages
/// it receives are acknowledged by the client core (MSG_ACK delivered) and reported.
struct SecureUser {
    rt: tokio::runtime::Runtime,
    handle: cig_umsg::driver::client::ClientHandle,
    seen: std_mpsc::Receiver<Seen>,
}

impl SecureUser {
    fn start(bed: &Bed) -> SecureUser {
        use cig_umsg::client::Event;
        use cig_umsg::driver::client::{ClientConfig, ClientEvent, start};
        let sealed = fs::read(bed.path("user.bundle")).unwrap();
        let code = fs::read_to_string(bed.path("user.code")).unwrap();
        let code = cig_mikey_sakke::bundle::TransferCode::parse(code.trim()).unwrap();
        let keys = cig_mikey_sakke::bundle::open(&sealed, &code).unwrap();
        let mut cfg = ClientConfig::new(keys);
        cfg.switches = vec![bed.switch.clone()];
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (tx, seen) = std_mpsc::channel();
        let (handle, mut events) = rt.block_on(async { start(cfg) });
        rt.spawn(async move {
            while let Some(e) = events.recv().await {
                let s = match e {
                    ClientEvent::Registered { .. } => None,
                    ClientEvent::Core(Event::Message(m)) => Some(Seen::Message(m)),
                    ClientEvent::Core(Event::Acked(id, st)) => Some(Seen::Acked(id, st)),
                    _ => None,
                };
                if let Some(s) = s {
                    let _ = tx.send(s);
                }
            }
        });
        assert!(
            wait_until(T, || handle.with(|_, _| ()).is_some()),
            "the secure user did not register"
        );
        SecureUser { rt, handle, seen }
    }

    fn send(&self, to: &str, body: &Body) -> MessageId {
        let _guard = self.rt.enter();
        self.handle
            .with(|s, now| {
                let (id, frame) = s
                    .messenger
                    .send(to, body, now, &mut rand_core::OsRng)
                    .unwrap();
                s.send(frame);
                id
            })
            .expect("registered")
    }

    fn next(&self, timeout: Duration) -> Option<Seen> {
        self.seen.recv_timeout(timeout).ok()
    }
}

fn binary(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn secure_user_to_write_mailbox_read_by_python() {
    let bed = Bed::start();
    let user = SecureUser::start(&bed);
    let picture = binary(5000, 3);
    let body = Body {
        text: "Hej från den säkra sidan\nrad två".into(),
        attachments: vec![Attachment {
            name: "picture.png".into(),
            content_type: "image/png".into(),
            data: picture.clone(),
        }],
    };
    let id = user.send("tel:+8888;101", &body);
    // The gateway's client core acknowledges it (delivered).
    match user.next(T) {
        Some(Seen::Acked(got, AckStatus::Delivered)) => assert_eq!(got, id),
        other => panic!("expected MSG_ACK delivered, got {other:?}"),
    }
    assert!(
        wait_until(T, || bed.files("write").len() == 1),
        "no file in the write mailbox; cig.log:\n{}",
        bed.cig_log()
    );
    let taken: Value = serde_json::from_str(&python_peer(&[
        "take",
        bed.path("mail/write").to_str().unwrap(),
    ]))
    .unwrap();
    let got = &taken[0];
    assert_eq!(got["from"], "<sip:4670123456@secure.com>");
    assert_eq!(got["to"], "<sip:101@pbx.com>");
    assert_eq!(got["text"], body.text.as_str());
    assert_eq!(
        got["attachments"],
        json!([{"filename": "picture.png", "content_type": "image/png",
                "data": B64.encode(&picture)}])
    );
    let headers = got["headers"].as_array().unwrap();
    assert!(
        headers.contains(&json!(["X-Sender-URI", USER])),
        "{headers:?}"
    );
    assert!(bed.files("write").is_empty());
    assert!(wait_until(T, || bed
        .cig_log()
        .contains("written to 1 mailbox(es)")));
}

#[test]
fn python_to_read_mailbox_reaches_the_secure_user_and_the_file_goes_only_after_the_ack() {
    let mut bed = Bed::start();
    // The switch is away: the message cannot be acknowledged, so its file stays.
    assert!(bed.crs.terminate(T).is_some());
    let spec = bed.path("spec.json");
    let attachment = binary(3000, 9);
    fs::write(
        &spec,
        json!([{"to": "sip:94670123456@secure.com", "from": "sip:7@pbx.com", "date": 1448558144,
                "text": "Från PBX:en, åäö", "headers": [],
                "attachments": [{"filename": "doc.bin", "content_type": "application/octet-stream",
                                 "data": B64.encode(&attachment)}]}])
        .to_string(),
    )
    .unwrap();
    python_peer(&[
        "put",
        bed.path("mail/read").to_str().unwrap(),
        spec.to_str().unwrap(),
    ]);
    let files = bed.files("read");
    assert_eq!(files.len(), 1);
    // The reader offered it at once (inotify) and the full scan 10 s later: both times the
    // switch could not take it.
    std::thread::sleep(Duration::from_secs(12));
    assert!(files[0].exists(), "deleted without an acknowledgement");
    assert!(bed.files("read").len() == 1);
    // The switch is back, the user registers: the next scan delivers it, the MSG_ACK deletes
    // the file.
    bed.crs = spawn_crs(bed.dir.path(), &bed.switch, &bed.certs);
    let user = SecureUser::start(&bed);
    let m = loop {
        match user.next(Duration::from_secs(60)) {
            Some(Seen::Message(m)) => break m,
            Some(_) => continue,
            None => panic!("no message; cig.log:\n{}", bed.cig_log()),
        }
    };
    assert_eq!(m.from, GW);
    assert_eq!(m.to, USER);
    assert_eq!(m.body.text, "Från PBX:en, åäö");
    assert_eq!(m.body.attachments.len(), 1);
    assert_eq!(m.body.attachments[0].name, "doc.bin");
    assert_eq!(m.body.attachments[0].data, attachment);
    assert!(
        wait_until(T, || !files[0].exists()),
        "file kept after the ack; cig.log:\n{}",
        bed.cig_log()
    );
    assert!(
        wait_until(T, || bed.cig_log().contains("accepted by the switch (")),
        "{}",
        bed.cig_log()
    );
    assert!(bed.server.terminate(T).expect("stopped").success());
}

#[test]
fn sipp_message_reaches_the_secure_user_and_is_answered_202_after_the_ack() {
    let bed = Bed::start();
    let user = SecureUser::start(&bed);
    // cig-sip's scenario: MESSAGE from sip:200@127.0.0.1:port, expects 202.
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cig-sip/tests/sipp/uac_message.xml");
    let st = Command::new("sipp")
        .arg("-sf")
        .arg(&scenario)
        .arg(format!("127.0.0.1:{}", bed.sip_port))
        .args([
            "-s",
            "94670123456",
            "-i",
            "127.0.0.1",
            "-m",
            "1",
            "-nostdin",
        ])
        .args(["-timeout", "30s", "-timeout_error", "-trace_err"])
        .current_dir(bed.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("sipp (scripts/install-test-deps.sh installs it)");
    assert!(st.success(), "sipp: no 202; cig.log:\n{}", bed.cig_log());
    let m = loop {
        match user.next(T) {
            Some(Seen::Message(m)) => break m,
            Some(_) => continue,
            None => panic!("no message; cig.log:\n{}", bed.cig_log()),
        }
    };
    assert_eq!(m.from, GW);
    assert_eq!(m.to, USER);
    assert_eq!(m.body.text.trim_end(), "hello from sipp");
}
