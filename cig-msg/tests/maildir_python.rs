//! Maildir against an outside peer: Python's standard `mailbox.Maildir` and `email` packages
//! (tests/peers/maildir_peer.py) put messages (plain, and multipart with binary attachments)
//! into a read mailbox and take messages out of a write mailbox; every field and attachment
//! byte is compared.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cig_msg::format::{Attachment, Message};
use cig_msg::maildir::{self, Reader, ReaderConfig};
use cig_msg::service::Outbound;
use cig_route::Router;
use serde_json::{Value, json};

fn peer(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/maildir_peer.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "maildir_peer.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn config(read: &Path, write: &Path) -> cig_core::Config {
    let text = format!(
        r#"
translate_map ext2gw {{ rule match "sip:{{user}}@pbx.com" translation "tel:+8888;{{user}}"; }}
translate_map secure2tel {{ rule match "sip:{{number}}@secure.com" translation "tel:+{{number}}"; }}
translate_map tel2secure {{ rule match "tel:+{{number}}" translation "sip:{{number}}@secure.com"; }}
translate_map gw2ext {{ rule match "tel:+8888;{{ext}}" translation "sip:{{ext}}@pbx.com"; }}
mailboxes {{
    read {{ path "{}"; map_from translate_map ext2gw; map_to translate_map secure2tel; }}
    write {{ path "{}"; map_from translate_map tel2secure; map_to translate_map gw2ext; }}
}}
"#,
        read.display(),
        write.display()
    );
    cig_core::conf::parse(&text, "test.conf").unwrap().config
}

fn binary(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_puts_into_read_mailbox_and_takes_from_write_mailbox() {
    let dir = tempfile::tempdir().unwrap();
    let (read, write) = (dir.path().join("read"), dir.path().join("write"));
    maildir::create_maildir(&read).unwrap();
    maildir::create_maildir(&write).unwrap();
    let config = config(&read, &write);
    let router = Arc::new(Router::from_config(&config).unwrap());

    // Python → read mailbox → reader → sink.
    let attachment = binary(3000, 7);
    let specs = json!([
        {"to": "sip:4670123456@secure.com", "from": "sip:101@pbx.com", "date": 1448558144,
         "text": "Plain text, åäö €\nsecond line", "attachments": [],
         "headers": [["Auto-Submitted", "no"], ["X-Sender-Domain", "Exämple Domain"]]},
        {"to": "sip:4670999@secure.com", "from": "sip:102@pbx.com", "date": 1700000000,
         "text": "With a picture", "headers": [],
         "attachments": [
            {"filename": "picture.png", "content_type": "image/png", "data": B64.encode(&attachment)},
            {"filename": "zeros.bin", "content_type": "application/octet-stream", "data": B64.encode([0u8; 10])}
         ]},
        // Not routable: From does not translate to the gateway.
        {"to": "sip:1@secure.com", "from": "sip:103@elsewhere.com", "date": 1700000000,
         "text": "nobody", "attachments": [], "headers": []}
    ]);
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, specs.to_string()).unwrap();
    peer(&["put", read.to_str().unwrap(), spec_path.to_str().unwrap()]);

    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let _reader = Reader::spawn(
        ReaderConfig {
            path: read.clone(),
            map_from: "ext2gw".into(),
            map_to: "secure2tel".into(),
            gateway: "tel:+8888".into(),
            scan_every: Duration::from_secs(30),
        },
        Arc::clone(&router),
        tx,
    )
    .unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let inbound = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a message from the read mailbox")
            .unwrap();
        got.push(inbound);
    }
    got.sort_by(|a, b| a.message.from.cmp(&b.message.from));
    let plain = &got[0].message;
    assert_eq!(plain.from, "tel:+8888;101");
    assert_eq!(plain.to, "tel:+4670123456");
    assert_eq!(plain.date, Some(1448558144));
    assert_eq!(plain.text, "Plain text, åäö €\nsecond line");
    assert_eq!(plain.header("Auto-Submitted"), Some("no"));
    assert_eq!(plain.header("X-Sender-Domain"), Some("Exämple Domain"));
    assert!(plain.attachments.is_empty());
    assert!(plain.id.is_some());
    let multi = &got[1].message;
    assert_eq!(multi.from, "tel:+8888;102");
    assert_eq!(multi.to, "tel:+4670999");
    assert_eq!(multi.date, Some(1700000000));
    assert_eq!(multi.text, "With a picture");
    assert_eq!(
        multi.attachments,
        [
            Attachment {
                filename: "picture.png".into(),
                content_type: "image/png".into(),
                data: attachment.clone()
            },
            Attachment {
                filename: "zeros.bin".into(),
                content_type: "application/octet-stream".into(),
                data: vec![0; 10]
            }
        ]
    );
    // The unroutable one went to failed/ with its reason; nothing else is left over.
    let failed = read.join(maildir::FAILED_DIR);
    assert!(cig_testkit::wait_until(Duration::from_secs(10), || {
        std::fs::read_dir(&failed).map(|d| d.count()).unwrap_or(0) == 2
    }));
    let reason = std::fs::read_dir(&failed)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "reason"))
        .unwrap();
    assert!(
        std::fs::read_to_string(reason)
            .unwrap()
            .contains("sip:103@elsewhere.com")
    );
    // Files stay until acknowledged.
    assert_eq!(std::fs::read_dir(read.join("new")).unwrap().count(), 2);
    for inbound in got {
        inbound.ack.delivered().unwrap();
    }
    assert_eq!(std::fs::read_dir(read.join("new")).unwrap().count(), 0);

    // Secure side → write mailbox → Python.
    let outbound = Outbound::new(&config, Arc::clone(&router));
    let mut m1 = Message {
        from: "tel:+4670123456".into(),
        to: "tel:+8888;101".into(),
        date: Some(1448558144),
        text: format!("Hello från CIG\n{}", "long line ".repeat(200)),
        ..Message::default()
    };
    m1.set_header("Auto-Submitted", "no");
    m1.set_header("X-Sender-Domain", "Exämple Domain");
    m1.set_header("X-Responder-Type", "tel-uri");
    let m2 = Message {
        from: "tel:+4670999".into(),
        to: "tel:+8888;102".into(),
        date: Some(1700000000),
        text: "picture".into(),
        attachments: vec![Attachment {
            filename: "picture.png".into(),
            content_type: "image/png".into(),
            data: attachment.clone(),
        }],
        ..Message::default()
    };
    let unroutable = Message {
        from: "tel:+4670999".into(),
        to: "tel:+9999;1".into(),
        text: "x".into(),
        ..Message::default()
    };
    assert_eq!(outbound.deliver(&m1).unwrap().files.len(), 1);
    assert_eq!(outbound.deliver(&m2).unwrap().files.len(), 1);
    assert!(outbound.deliver(&unroutable).unwrap().is_empty());

    let taken: Value = serde_json::from_str(&peer(&["take", write.to_str().unwrap()])).unwrap();
    let mut taken = taken.as_array().unwrap().clone();
    taken.sort_by_key(|m| m["text"].as_str().unwrap().len());
    assert_eq!(taken.len(), 2);
    let (p2, p1) = (&taken[0], &taken[1]);
    assert_eq!(p1["to"], "<sip:101@pbx.com>");
    assert_eq!(p1["from"], "<sip:4670123456@secure.com>");
    assert_eq!(p1["date"], 1448558144);
    assert_eq!(p1["text"], m1.text.as_str());
    assert_eq!(
        p1["headers"],
        json!([
            ["Auto-Submitted", "no"],
            ["X-Sender-Domain", "Exämple Domain"],
            ["X-Responder-Type", "tel-uri"],
            ["X-Sender-URI", "tel:+4670123456"]
        ])
    );
    assert_eq!(p1["attachments"], json!([]));
    assert_eq!(p2["to"], "<sip:102@pbx.com>");
    assert_eq!(p2["from"], "<sip:4670999@secure.com>");
    assert_eq!(p2["text"], "picture");
    assert_eq!(
        p2["attachments"],
        json!([{"filename": "picture.png", "content_type": "image/png", "data": B64.encode(&attachment)}])
    );
    assert_eq!(std::fs::read_dir(write.join("new")).unwrap().count(), 0);
}
