//! cig-phone ↔ cig-phone through cig-crs, as processes: calls set up and torn down from either
//! end with audio checked by tone detection at the far end and DTMF digits received; busy,
//! declined and unanswered calls; a message with an attachment delivered once; a message to an
//! offline phone delivered when it registers; registration from an encrypted key bundle.
//!
//! Keys: a community and the switch certificate from `cig-kms` (`init`, `switch-cert`), user
//! keys issued with the `cig_mikey_sakke::kms` API into keystore files (and one bundle made by
//! `cig-kms issue`/`export`). Every phone runs with `--json`; the tests follow its lines.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cig_testkit::{Proc, bin, wait_until};
use cig_umsg::testing::TestDomain;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

/// A KMS directory (community + switch certificate) and a running cig-crs.
struct Domain {
    kms: TestDomain,
    _crs: Proc,
    switch: SocketAddr,
}

impl Domain {
    fn new() -> Domain {
        let kms = TestDomain::new();
        let (crs, switch) = kms.crs(0, &kms.path("crs.log"), &[]);
        Domain {
            kms,
            _crs: crs,
            switch,
        }
    }

    fn path(&self, p: &str) -> std::path::PathBuf {
        self.kms.path(p)
    }

    /// A phone for `identity` (a keystore with this month's keys, this switch, its CA) with
    /// extra arguments.
    fn phone(&self, identity: &str, args: &[&str]) -> Phone {
        let mut cmd = Command::new(bin("cig-phone"));
        cmd.arg("--keystore")
            .arg(self.kms.keystore(identity, &[self.switch]))
            .args(["--json", "--media-ip", "127.0.0.1"])
            .args(args);
        Phone(Proc::spawn(&mut cmd))
    }
}

/// A cig-phone process and its JSON lines.
struct Phone(Proc);

impl Phone {
    /// The next line with `event` whose fields match every `(key, value)`.
    fn wait(&mut self, event: &str, fields: &[(&str, &str)]) -> Value {
        let line = self.0.wait_line(
            |l| {
                let v: Value = serde_json::from_str(l).unwrap_or(Value::Null);
                v["event"] == event && fields.iter().all(|(k, want)| v[*k].as_str() == Some(*want))
            },
            WAIT,
        );
        match line {
            Some(l) => serde_json::from_str(&l).unwrap(),
            None => panic!(
                "no {event} {fields:?}\nseen: {:#?}\nstderr: {}",
                self.0.seen(),
                self.0.stderr()
            ),
        }
    }

    /// Waits for the summary and the exit status.
    fn finish(&mut self) -> (Value, i32) {
        let summary = self.wait("summary", &[]);
        let status = self
            .0
            .wait_exit(WAIT)
            .expect("phone exits after its summary");
        (summary, status.code().unwrap_or(-1))
    }

    /// All lines seen with `event`.
    fn seen(&self, event: &str) -> Vec<Value> {
        self.0
            .seen()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["event"] == event)
            .collect()
    }

    /// The states of the calls seen so far, `STATE` or `HANGUP:reason`.
    fn states(&self) -> Vec<String> {
        self.seen("call")
            .iter()
            .map(|v| match v["reason"].as_str() {
                Some(r) => format!("{}:{r}", v["state"].as_str().unwrap()),
                None => v["state"].as_str().unwrap().to_owned(),
            })
            .collect()
    }
}

#[test]
fn call_with_tones_and_dtmf_caller_hangs_up() {
    let d = Domain::new();
    let mut callee = d.phone(
        "tel:+8888",
        &[
            "--tone",
            "400",
            "--calls",
            "1",
            "--expect-tone",
            "1000",
            "--expect-dtmf",
            "12#",
        ],
    );
    callee.wait("registered", &[]);
    let mut caller = d.phone(
        "tel:+1001",
        &[
            "--dial",
            "tel:+8888w101",
            "--tone",
            "1000",
            "--dtmf",
            "12#",
            "--dtmf-delay",
            "0.6",
            "--hangup-after",
            "1.8",
            "--expect-tone",
            "400",
        ],
    );
    let talk = caller.wait("call", &[("state", "TALK")]);
    let id = talk["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 16);
    let incoming = callee.wait("call", &[("state", "BANG"), ("id", &id)]);
    assert_eq!(incoming["dir"], "in");
    assert_eq!(incoming["from"], "tel:+1001");
    assert_eq!(
        incoming["to"], "tel:+8888w101",
        "the whole dialled URI is passed on"
    );
    let media = caller.wait("media", &[]);
    assert_eq!(
        (media["codec"].as_str(), media["srtp"].as_bool()),
        (Some("PCMA"), Some(true))
    );
    for digit in ["1", "2", "#"] {
        callee.wait("dtmf", &[("digit", digit)]);
    }
    caller.wait("call", &[("state", "HANGUP"), ("reason", "normal")]);
    callee.wait("call", &[("state", "HANGUP"), ("reason", "normal")]);
    let (summary, code) = callee.finish();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["tone_hz"], 1000.0);
    assert_eq!(summary["digits"], "12#");
    let (summary, code) = caller.finish();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["tone_hz"], 400.0);
    // The callee rings and answers at once (GROWL and TALK back to back): both are reported.
    assert_eq!(
        caller.states(),
        ["CREATE", "BANG", "GROWL", "TALK", "HANGUP:normal"]
    );
    assert_eq!(callee.states(), ["BANG", "GROWL", "TALK", "HANGUP:normal"]);
    let end = &caller.seen("media_end")[0];
    assert_eq!(end["rejected"], 0);
    assert!(end["tone_blocks"].as_u64().unwrap() >= 5, "{end}");
}

#[test]
fn callee_answers_later_in_pcmu_records_and_hangs_up() {
    let d = Domain::new();
    let rec = d.path("heard.wav");
    let mut callee = d.phone(
        "tel:+8888",
        &[
            "--answer",
            "after=0.5",
            "--codecs",
            "pcmu",
            "--hangup-after",
            "1.5",
            "--calls",
            "1",
            "--record",
            rec.to_str().unwrap(),
        ],
    );
    callee.wait("registered", &[]);
    let mut caller = d.phone("tel:+1001", &["--dial", "tel:+8888;7", "--tone", "1400"]);
    caller.wait("call", &[("state", "GROWL")]);
    let media = caller.wait("media", &[]);
    assert_eq!(media["codec"], "PCMU");
    caller.wait("call", &[("state", "HANGUP"), ("reason", "normal")]);
    let (summary, code) = caller.finish();
    assert_eq!(code, 0, "{summary}");
    let (summary, code) = callee.finish();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["tone_hz"], 1400.0);
    assert_eq!(callee.seen("call")[0]["to"], "tel:+8888;7");
    // The recording holds the tone (the detector on the WAV file agrees).
    let heard = cig_media::wav::decode(&std::fs::read(&rec).unwrap()).unwrap();
    assert!(heard.len() >= 8000, "{} samples", heard.len());
    let mut det = cig_media::tone::ToneDetector::any_tone();
    det.push(&heard);
    assert_eq!(det.summary().dominant, Some(1400.0));
}

#[test]
fn busy_declined_and_unanswered() {
    let d = Domain::new();
    for (mode, identity, from, reason) in [
        ("reject=busy", "tel:+2001", "tel:+1001", "busy"),
        ("reject=declined", "tel:+2002", "tel:+1002", "declined"),
    ] {
        let mut callee = d.phone(identity, &["--answer", mode, "--calls", "1"]);
        callee.wait("registered", &[]);
        let mut caller = d.phone(from, &["--dial", identity]);
        caller.wait("call", &[("state", "HANGUP"), ("reason", reason)]);
        let (summary, code) = caller.finish();
        assert_eq!(code, 3, "an unanswered dial fails: {summary}");
        assert_eq!(summary["answered"], 0);
        assert!(caller.seen("media").is_empty());
        let (_, code) = callee.finish();
        assert_eq!(code, 0);
    }
    // Nobody answers: the caller gives up after its ring timeout with reason timeout.
    let mut callee = d.phone("tel:+2003", &["--answer", "never", "--calls", "1"]);
    callee.wait("registered", &[]);
    let mut caller = d.phone("tel:+1003", &["--dial", "tel:+2003", "--ring-timeout", "3"]);
    caller.wait("call", &[("state", "GROWL")]);
    callee.wait("call", &[("state", "HANGUP"), ("reason", "timeout")]);
    let (_, code) = caller.finish();
    assert_eq!(code, 3);
    assert_eq!(
        caller.states(),
        ["CREATE", "BANG", "GROWL", "HANGUP:timeout"]
    );
    assert_eq!(callee.finish().1, 0);
    // Nobody registered as the number dialled.
    let mut caller = d.phone("tel:+1004", &["--dial", "tel:+2999"]);
    caller.wait("call", &[("state", "HANGUP"), ("reason", "no_route")]);
    assert_eq!(caller.finish().1, 3);
}

#[test]
fn message_with_attachment_delivered_once() {
    let d = Domain::new();
    let saved = tempfile::tempdir().unwrap();
    let mut bob = d.phone(
        "tel:+3002",
        &["--save-attachments", saved.path().to_str().unwrap()],
    );
    bob.wait("registered", &[]);
    let file = d.path("notes.txt");
    let content: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &content).unwrap();
    let mut alice = d.phone(
        "tel:+3001",
        &[
            "--send-message",
            "tel:+3002",
            "hello with a file",
            "--attach",
            file.to_str().unwrap(),
        ],
    );
    let sent = alice.wait("message_sent", &[]);
    let id = sent["id"].as_str().unwrap().to_owned();
    alice.wait("message_ack", &[("id", &id), ("status", "delivered")]);
    let (summary, code) = alice.finish();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["messages_acked"], 1);
    let got = bob.wait("message", &[("id", &id)]);
    assert_eq!(got["from"], "tel:+3001");
    assert_eq!(got["text"], "hello with a file");
    let att = &got["attachments"][0];
    assert_eq!(att["name"], "notes.txt");
    assert_eq!(att["type"], "text/plain");
    assert_eq!(att["size"], 50_000);
    // The phone prints the message before its driver writes the attachment to disk.
    let saved_file = saved.path().join("notes.txt");
    assert!(
        wait_until(WAIT, || std::fs::read(&saved_file)
            .is_ok_and(|b| b == content)),
        "attachment not saved as sent: {:?}",
        std::fs::metadata(&saved_file)
    );
    // Stopped: exactly one message shown and counted.
    let status = bob.0.terminate(WAIT).expect("bob stops on SIGTERM");
    assert!(status.success(), "{:?}", bob.0.seen());
    let summary = bob.wait("summary", &[]);
    assert_eq!(summary["messages_received"], 1);
    assert_eq!(bob.seen("message").len(), 1);
}

#[test]
fn message_to_offline_phone_delivered_on_registration_and_bundle_keys() {
    let d = Domain::new();
    let mut alice = d.phone(
        "tel:+4001",
        &["--send-message", "tel:+4002", "while you were out"],
    );
    alice.wait("message_ack", &[("status", "stored")]);
    let (summary, code) = alice.finish();
    assert_eq!(code, 0, "{summary}");
    // Carol's keys come as an encrypted bundle from cig-kms.
    let kms = |args: &[&str]| {
        let out = Command::new(bin("cig-kms"))
            .args(args)
            .arg("--dir")
            .arg(d.kms.dir())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    let bundle = d.path("carol.bundle");
    let code_file = d.path("carol.code");
    kms(&["issue", "--identity", "tel:+4002"]);
    kms(&[
        "export",
        "--identity",
        "tel:+4002",
        "--switch",
        &d.switch.to_string(),
        "--out",
        bundle.to_str().unwrap(),
        "--code-file",
        code_file.to_str().unwrap(),
    ]);
    let mut carol = Phone(Proc::spawn(
        Command::new(bin("cig-phone"))
            .arg("--bundle")
            .arg(&bundle)
            .arg("--code-file")
            .arg(&code_file)
            .args(["--json", "--messages", "1"]),
    ));
    carol.wait("registered", &[("identity", "tel:+4002")]);
    let got = carol.wait("message", &[]);
    assert_eq!(got["from"], "tel:+4001");
    assert_eq!(got["text"], "while you were out");
    assert_eq!(got["attachments"], Value::Array(vec![]));
    let (summary, code) = carol.finish();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["messages_received"], 1);
}

/// A wrong transfer code or a keystore that does not exist: exit 1 with an error line, before
/// any connection.
#[test]
fn bad_keys_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing: &Path = &dir.path().join("nope");
    let mut p = Phone(Proc::spawn(
        Command::new(bin("cig-phone"))
            .arg("--keystore")
            .arg(missing)
            .arg("--json"),
    ));
    let err = p.wait("error", &[]);
    assert!(err["what"].as_str().unwrap().contains("nope"), "{err}");
    assert_eq!(p.0.wait_exit(WAIT).and_then(|s| s.code()), Some(1));
}
