//! cig-server messaging end to end: a KMS community made with cig-kms, the switch cig-crs,
//! cig-relay and cig-server with a read and a write mailbox, an SMPP centre and SIP messaging,
//! and secure users that are cig-umsg clients over the real driver (UMSG over TLS,
//! MIKEY-SAKKE per message). The outside systems are nobody's here: Python's standard
//! `mailbox`/`email` packages (cig-msg's tests/peers/maildir_peer.py), sipp (UAC and UAS) and
//! the npm `smpp` package as SMSC (cig-msg's tests/peers/smsc.js).

mod common;
#[path = "common/msg.rs"]
mod msg;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cig_testkit::{Proc, wait_until};
use cig_umsg::message::{AckStatus, Attachment, Body};
use common::{T, sipp_uas};
use msg::{Bed, SecureUser, Seen, USER, python_peer, text};
use serde_json::{Value, json};

fn binary(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The ids the gateway sent messages to secure users with (cig.log DEBUG `sent as <hex>`).
fn sent_ids(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| {
            l.split_once(": sent as ")
                .map(|(_, id)| id.trim().to_owned())
        })
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
    // The gateway acknowledges it (delivered) only once the file is durable in new/.
    assert_eq!(user.acked(&bed, id, T), AckStatus::Delivered);
    assert_eq!(
        bed.files("write/new").len(),
        1,
        "acknowledged before written"
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
    assert!(bed.files("write/new").is_empty());
    assert!(wait_until(T, || bed
        .cig_log()
        .contains("written to 1 mailbox(es)")));
    // Nothing routes it: refused.
    let id = user.send("tel:+8888;999", &text("nowhere"));
    assert_eq!(user.acked(&bed, id, T), AckStatus::Refused);
}

#[test]
fn a_message_lost_before_it_was_durable_comes_again_and_is_written_once() {
    let mut bed = Bed::start();
    let user = SecureUser::start(&bed);
    // The write mailbox is gone: the copy cannot be made, so no MSG_ACK goes out and the
    // switch keeps the message.
    let (mailbox, away) = (bed.path("mail/write"), bed.path("mail/write.away"));
    fs::rename(&mailbox, &away).unwrap();
    let id = user.send("tel:+8888;101", &text("keep me"));
    assert!(
        wait_until(T, || bed
            .cig_log()
            .contains("not written, left to the switch")),
        "{}",
        bed.cig_log()
    );
    assert!(
        user.next(Duration::from_secs(2)).is_none(),
        "acknowledged though not written"
    );
    // The gateway dies before it could keep the message; the mailbox is back; after the
    // restart the switch sends the message again.
    bed.kill_server();
    fs::rename(&away, &mailbox).unwrap();
    bed.server = bed.spawn_server(&[]);
    assert_eq!(user.acked(&bed, id, T), AckStatus::Delivered);
    assert_eq!(bed.files("write/new").len(), 1);
    // The switch does not send it again: still one copy after its first re-send time.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(bed.files("write/new").len(), 1, "{}", bed.cig_log());
    let taken: Value = serde_json::from_str(&python_peer(&[
        "take",
        bed.path("mail/write").to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(taken[0]["text"], "keep me");
}

#[test]
fn python_to_read_mailbox_reaches_the_secure_user_and_the_file_goes_only_after_the_ack() {
    let mut bed = Bed::start();
    // The switch is away: the message cannot be acknowledged, so its file stays.
    assert!(bed.crs.terminate(T).is_some());
    let attachment = binary(3000, 9);
    let files = bed.put(
        json!([{"to": "sip:94670123456@secure.com", "from": "sip:7@pbx.com",
        "date": 1448558144, "text": "Från PBX:en, åäö", "headers": [],
        "attachments": [{"filename": "doc.bin", "content_type": "application/octet-stream",
                         "data": B64.encode(&attachment)}]}]),
    );
    assert_eq!(files.len(), 1);
    // The reader offered it at once (inotify) and the full scan 10 s later: both times the
    // switch could not take it.
    std::thread::sleep(Duration::from_secs(12));
    assert!(files[0].exists(), "deleted without an acknowledgement");
    assert!(bed.files("read/new").len() == 1);
    // The switch is back, the user registers: the next scan delivers it, the MSG_ACK deletes
    // the file.
    bed.crs = bed.domain.spawn_crs();
    let user = SecureUser::start(&bed);
    let m = user.message(&bed, Duration::from_secs(60));
    // From keeps the extension the read mailbox's map gave it.
    assert_eq!(m.from, "tel:+8888;7");
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
fn a_retried_message_keeps_its_id_and_is_shown_once() {
    let mut bed = Bed::start();
    // The user's application holds the message without acknowledging it.
    let user = SecureUser::start_with(&bed, true);
    let file = bed.put_for_user("42", "only once");
    let m = user.message(&bed, T);
    assert_eq!(
        (m.from.as_str(), m.body.text.as_str()),
        ("tel:+8888;42", "only once")
    );
    // The gateway dies before the MSG_ACK came; after the restart its reader offers the file
    // again, with the same id: the switch still holds it (stored), the file goes.
    bed.kill_server();
    assert!(file.exists());
    bed.server = bed.spawn_server(&[]);
    assert!(
        wait_until(T, || !file.exists()),
        "file kept; cig.log:\n{}",
        bed.cig_log()
    );
    let ids = sent_ids(&bed.cig_log());
    assert!(ids.len() >= 2, "{ids:?}");
    assert!(ids.iter().all(|i| *i == ids[0]), "ids changed: {ids:?}");
    assert!(bed.cig_log().contains("accepted by the switch (Stored)"));
    // The switch's re-sends meanwhile were not shown again; the user acknowledges now.
    user.ack(m.id, AckStatus::Delivered);
    match user.next(Duration::from_secs(6)) {
        None => {}
        Some(Seen::Message(again)) => panic!("shown twice: {again:?}"),
        Some(other) => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_message_refused_again_and_again_goes_to_failed() {
    let bed = Bed::start_with(&["--message-refusals", "2"]);
    let user = SecureUser::start_with(&bed, true);
    let file = bed.put_for_user("9", "refuse me");
    // Refused twice (the second offer is the reader's next scan): given up.
    for _ in 0..2 {
        let m = user.message(&bed, Duration::from_secs(30));
        assert_eq!(m.body.text, "refuse me");
        user.ack(m.id, AckStatus::Refused);
    }
    let failed = bed.path("mail/read/failed").join(file.file_name().unwrap());
    assert!(
        wait_until(T, || failed.exists()),
        "not in failed/; cig.log:\n{}",
        bed.cig_log()
    );
    assert!(!file.exists());
    // The reader moves the file first and then logs (through cig-server's log task).
    let given_up = "refused by the switch or its recipient 2 times: given up";
    wait_until(T, || bed.cig_log().contains(given_up));
    let log = bed.cig_log();
    assert!(log.contains("refused by the switch (1 of 2)"), "{log}");
    assert!(log.contains(given_up), "{log}");
    // Not offered again.
    assert!(user.next(Duration::from_secs(12)).is_none());
}

/// One of cig-sip's sipp scenarios.
fn sipp_scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../cig-sip/tests/sipp")
        .join(name)
}

#[test]
fn sipp_message_reaches_the_secure_user_and_is_answered_202_after_the_ack() {
    let bed = Bed::start();
    let user = SecureUser::start(&bed);
    // cig-sip's scenario: MESSAGE from sip:200@127.0.0.1:port, expects 202.
    let st = Command::new("sipp")
        .arg("-sf")
        .arg(sipp_scenario("uac_message.xml"))
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
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("sipp (scripts/install-test-deps.sh installs it)");
    assert!(st.success(), "sipp: no 202; cig.log:\n{}", bed.cig_log());
    let m = user.message(&bed, T);
    assert_eq!(m.from, "tel:+8888;200");
    assert_eq!(m.to, USER);
    assert_eq!(m.body.text.trim_end(), "hello from sipp");
}

#[test]
fn secure_user_to_sip_pbx_as_message_with_digest_acknowledged_after_202() {
    let bed = Bed::start();
    let user = SecureUser::start(&bed);
    // cig-sip's PBX scenario: challenges the MESSAGE (401), checks the digest of
    // gateway/s3cret and the body, answers 202.
    let scenario = sipp_scenario("uas_message_auth.xml");
    let mut pbx = sipp_uas(
        bed.dir.path(),
        bed.pbx_port,
        &["-sf", scenario.to_str().unwrap()],
    );
    let id = user.send("tel:+8888;250", &text("hello PBX, from the secure side"));
    assert_eq!(user.acked(&bed, id, T), AckStatus::Delivered);
    let mut status = None;
    assert!(wait_until(T, || {
        status = pbx.try_wait().unwrap();
        status.is_some()
    }));
    assert!(
        status.unwrap().success(),
        "the PBX did not accept it; cig.log:\n{}",
        bed.cig_log()
    );
    assert!(
        bed.cig_log()
            .contains("SIP MESSAGE sip:4670123456@secure.com -> sip:250@127.0.0.1"),
        "{}",
        bed.cig_log()
    );
    assert!(bed.files("write/new").is_empty(), "not for the mailbox");
}

/// The npm `smpp` SMSC of cig-msg's tests (installed by scripts/install-test-deps.sh).
fn smsc(port: u16, deliveries: &Path) -> Proc {
    let npm = std::env::var_os("CIG_NPM_DIR").map_or_else(
        || Path::new(&std::env::var("HOME").unwrap()).join(".cache/cig-test-npm"),
        PathBuf::from,
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cig-msg/tests/peers/smsc.js");
    let mut p = Proc::spawn(
        Command::new("node")
            .env("NODE_PATH", npm.join("node_modules"))
            .arg(script)
            .arg(port.to_string())
            .arg(deliveries)
            .arg("0"),
    );
    p.wait_line(|l| l.contains("listening"), T)
        .unwrap_or_else(|| panic!("smsc.js did not start: {}", p.stderr()));
    p
}

#[test]
fn secure_user_to_sms_centre_and_back() {
    let bed = Bed::start();
    let deliveries = bed.path("deliveries.json");
    fs::write(
        &deliveries,
        json!([{"tag": "in", "source": "46701", "dest": "4670123456", "text": "Hej från SMS"}])
            .to_string(),
    )
    .unwrap();
    let mut centre = smsc(bed.smsc_port, &deliveries);
    let user = SecureUser::start(&bed);
    let id = user.send(
        "tel:+8888;46701112233",
        &text("Hej SMSC, från den säkra sidan"),
    );
    // Acknowledged once the copy is in the centre's durable spool; meanwhile the centre's
    // deliver_sm reaches the user from the gateway with the sender's number as extension.
    let (mut acked, mut got) = (None, None);
    while acked.is_none() || got.is_none() {
        match user.next(T) {
            Some(Seen::Acked(i, st)) if i == id => acked = Some(st),
            Some(Seen::Message(m)) => got = Some(m),
            Some(_) => {}
            None => panic!("{acked:?} {got:?}; cig.log:\n{}", bed.cig_log()),
        }
    }
    assert_eq!(acked, Some(AckStatus::Delivered));
    let m = got.unwrap();
    assert_eq!((m.from.as_str(), m.to.as_str()), ("tel:+8888;46701", USER));
    assert_eq!(m.body.text, "Hej från SMS");
    let line = centre
        .wait_line(|l| l.contains("\"ev\":\"submit\""), T)
        .unwrap_or_else(|| panic!("no submit_sm; cig.log:\n{}", bed.cig_log()));
    let submit: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(submit["dest"], "46701112233");
    assert_eq!(submit["source"], "4670123456");
    assert_eq!(submit["text"], "Hej SMSC, från den säkra sidan");
    // The deliver_sm was answered OK once the switch had the text (before or after the
    // submit_sm).
    let resp = |l: &str| l.contains("\"ev\":\"deliver_resp\"");
    let line = match centre.seen().iter().find(|l| resp(l)) {
        Some(l) => l.clone(),
        None => centre
            .wait_line(resp, T)
            .unwrap_or_else(|| panic!("no deliver_sm_resp; cig.log:\n{}", bed.cig_log())),
    };
    assert!(line.contains("\"status\":0"), "{line}");
}
