//! Throughput of the message paths (docs/perf.md, cig-msg): mailbox → sink and
//! sink → mailbox with fsync, and SMPP submit from the spool with a window of 10 against the
//! npm `smpp` SMSC (tests/peers/smsc.js; NODE_PATH must reach its node_modules).
//!
//! usage: msgperf [N_MAILBOX] [N_SMPP]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cig_msg::format::{self, Message};
use cig_msg::maildir::{self, Reader, ReaderConfig};
use cig_msg::service::Outbound;
use cig_msg::smpp::{Centre, CentreConfig};
use cig_route::Router;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n_box: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let n_smpp: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let dir = tempfile::tempdir().expect("temp dir");
    let (read, write, spool) = (
        dir.path().join("read"),
        dir.path().join("write"),
        dir.path().join("spool"),
    );
    maildir::create_maildir(&read).expect("read box");
    maildir::create_maildir(&write).expect("write box");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let conf = format!(
        r#"
translate_map ext2gw {{ rule match "sip:{{u}}@pbx.com" translation "tel:+8888;{{u}}"; }}
translate_map secure2tel {{ rule match "sip:{{n}}@secure.com" translation "tel:+{{n}}"; }}
translate_map tel2secure {{ rule match "tel:+{{n}}" translation "sip:{{n}}@secure.com"; }}
translate_map gw2ext {{ rule match "tel:+8888;{{e}}" translation "sip:{{e}}@pbx.com"; }}
translate_map out_from {{ rule match "tel:+{{n}}" translation "+{{n}}"; }}
translate_map out_to {{ rule match "tel:+8888;{{n}}" translation "+{{n}}"; }}
mailboxes {{
    read {{ path "{}"; map_from translate_map ext2gw; map_to translate_map secure2tel; }}
    write {{ path "{}"; map_from translate_map tel2secure; map_to translate_map gw2ext; }}
}}
message_centers {{ smpp {{ hostname "127.0.0.1"; port {port}; user "cig"; password "secret";
    write {{ map_from translate_map out_from; map_to translate_map out_to; }} }} }}"#,
        read.display(),
        write.display()
    );
    let config = cig_core::conf::parse(&conf, "perf.conf")
        .expect("config")
        .config;
    let router = Arc::new(Router::from_config(&config).expect("router"));
    let secure = |i: usize| Message {
        from: "tel:+4670123".into(),
        to: format!("tel:+8888;{i}"),
        text: format!("message number {i}, a short text of ordinary length"),
        date: Some(1_700_000_000),
        ..Message::default()
    };

    // sink → mailbox: Outbound::deliver, one durable file (2 fsyncs) per message.
    let outbound = Outbound::new(&config, Arc::clone(&router));
    let t = Instant::now();
    for i in 0..n_box {
        outbound.deliver(&secure(i)).expect("deliver");
    }
    let rate = n_box as f64 / t.elapsed().as_secs_f64();
    println!(
        "sink -> mailbox, 1 writer: {n_box} messages in {:?}: {rate:.0} msg/s",
        t.elapsed()
    );
    // One writer with group commit (what cig-server's writer task does with the messages that
    // queued up while the previous batch was being made durable): batches of 16 and 64.
    for batch in [16, 64] {
        let t = Instant::now();
        let msgs: Vec<Message> = (0..n_box).map(secure).collect();
        for chunk in msgs.chunks(batch) {
            for r in outbound.deliver_batch(chunk) {
                r.expect("deliver");
            }
        }
        let rate = n_box as f64 / t.elapsed().as_secs_f64();
        println!(
            "sink -> mailbox, 1 writer, batches of {batch}: {n_box} messages in {:?}: {rate:.0} msg/s",
            t.elapsed()
        );
    }
    // The same with 4 concurrent deliveries (cig-server can deliver each UMSG message on its
    // own blocking task): the fsyncs overlap.
    let t = Instant::now();
    std::thread::scope(|s| {
        for w in 0..4 {
            let (outbound, secure) = (&outbound, &secure);
            s.spawn(move || {
                for i in (w..n_box).step_by(4) {
                    outbound.deliver(&secure(i)).expect("deliver");
                }
            });
        }
    });
    let rate = n_box as f64 / t.elapsed().as_secs_f64();
    println!(
        "sink -> mailbox, 4 writers: {n_box} messages in {:?}: {rate:.0} msg/s",
        t.elapsed()
    );

    // mailbox → sink: N files in new/, reader parses, translates, sink acknowledges (delete).
    for i in 0..n_box {
        let m = Message {
            from: format!("sip:{i}@pbx.com"),
            to: "sip:4670@secure.com".into(),
            text: format!("message number {i}, a short text of ordinary length"),
            ..Message::default()
        };
        maildir::deliver(&read, &format::write(&m).expect("write")).expect("fill");
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let t = Instant::now();
    let reader = Reader::spawn(
        ReaderConfig {
            path: read.clone(),
            map_from: "ext2gw".into(),
            map_to: "secure2tel".into(),
            gateway: "tel:+8888".into(),
            scan_every: Duration::from_secs(60),
        },
        Arc::clone(&router),
        tx,
    )
    .expect("reader");
    for _ in 0..n_box {
        let inbound = rx.recv().await.expect("inbound");
        inbound.ack.delivered().expect("ack");
    }
    let rate = n_box as f64 / t.elapsed().as_secs_f64();
    println!(
        "mailbox -> sink: {n_box} messages in {:?}: {rate:.0} msg/s",
        t.elapsed()
    );
    drop(reader);

    if n_smpp == 0 {
        return;
    }
    // SMPP submit: N messages already in the spool, window 10, npm smpp SMSC.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/smsc.js");
    let deliveries = dir.path().join("none.json");
    std::fs::write(&deliveries, "[]").expect("deliveries");
    let mut smsc = Command::new("node")
        .env("SMSC_QUIET", "1")
        .arg(script)
        .arg(port.to_string())
        .arg(&deliveries)
        .arg("0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("node smsc.js");
    // The SMSC prints a line with its clock every 1,000 submit_sm: the steady submit rate is
    // taken between the first and the last of them (no connect, bind or spool loading).
    let stdout = smsc.stdout.take().expect("stdout");
    let counts = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut marks = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["ev"] == "count" || v["ev"] == "bind" {
                marks.push((v["n"].as_u64().unwrap_or(0), v["ms"].as_u64().unwrap_or(0)));
            }
        }
        marks
    });
    std::thread::sleep(Duration::from_millis(1500));
    let mut centre_conf = CentreConfig::from_conf(&config.message_centers[0], "tel:+8888", &spool);
    centre_conf.window = 10;
    maildir::create_maildir(&centre_conf.spool).expect("spool");
    for i in 0..n_smpp {
        let mut m = secure(i);
        m.from = "+4670123".into();
        m.to = format!("+{i}");
        maildir::deliver(&centre_conf.spool, &format::write(&m).expect("write")).expect("spool");
    }
    let new = centre_conf.spool.join("new");
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let t = Instant::now();
    let centre = Centre::spawn(centre_conf, router, tx).expect("centre");
    while std::fs::read_dir(&new).map(|d| d.count()).unwrap_or(0) > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "SMPP submit stalled"
        );
    }
    let rate = n_smpp as f64 / t.elapsed().as_secs_f64();
    println!(
        "smpp submit (window 10, incl. connect+bind): {n_smpp} messages in {:?}: {rate:.0} msg/s",
        t.elapsed()
    );
    drop(centre);
    let _ = smsc.kill();
    let _ = smsc.wait();
    let marks = counts.join().expect("counts");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    println!(
        "smsc marks (submit count, ms before the end): {:?}",
        marks
            .iter()
            .map(|(n, ms)| (*n, now_ms.saturating_sub(*ms)))
            .collect::<Vec<_>>()
    );
    let marks: Vec<(u64, u64)> = marks.into_iter().filter(|m| m.0 > 0).collect();
    if let (Some(first), Some(last)) = (marks.first(), marks.last()) {
        if last.0 > first.0 {
            let rate = (last.0 - first.0) as f64 * 1000.0 / (last.1 - first.1).max(1) as f64;
            println!(
                "smpp submit steady (window 10, submit_sm {}..{} at the SMSC): {rate:.0} msg/s",
                first.0, last.0
            );
        }
    }
}
