//! SMPP against an outside SMSC: the npm `smpp` package (tests/peers/smsc.js), installed by
//! scripts/install-test-deps.sh into CIG_NPM_DIR (default ~/.cache/cig-test-npm).
//! Bind at 3.4; submit GSM, UCS-2 and a 3-part concatenated text (decoded by the npm
//! package's own GSM/UCS-2 coders); deliver single and concatenated texts and a delivery
//! receipt; the centre killed and restarted (nothing lost); throttling answers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use cig_msg::format::Message;
use cig_msg::service::Inbound;
use cig_msg::smpp::{Centre, CentreConfig};
use cig_route::Router;
use cig_testkit::{Proc, free_tcp_port, wait_until};
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn npm_dir() -> PathBuf {
    let dir = std::env::var_os("CIG_NPM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
            cache.join("cig-test-npm")
        });
    assert!(
        dir.join("node_modules/smpp/package.json").exists(),
        "npm smpp is not installed in {}: run scripts/install-test-deps.sh",
        dir.display()
    );
    dir
}

fn smsc(port: u16, deliveries: &Path, throttle: u32) -> Proc {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/smsc.js");
    let mut p = Proc::spawn(
        Command::new("node")
            .env("NODE_PATH", npm_dir().join("node_modules"))
            .arg(script)
            .arg(port.to_string())
            .arg(deliveries)
            .arg(throttle.to_string()),
    );
    p.wait_line(|l| l.contains("listening"), Duration::from_secs(20))
        .unwrap_or_else(|| panic!("smsc.js did not start: {}", p.stderr()));
    p
}

fn events(p: &mut Proc, n: usize, kind: &str) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let line = p
            .wait_line(
                |l| l.contains(&format!("\"ev\":\"{kind}\"")),
                Duration::from_secs(30),
            )
            .unwrap_or_else(|| panic!("no {kind} event; seen {:?}; {}", p.seen(), p.stderr()));
        out.push(serde_json::from_str(&line).unwrap());
    }
    out
}

fn setup(port: u16, spool: &Path) -> (CentreConfig, Arc<Router>) {
    let text = format!(
        r#"
translate_map out_from {{ rule match "tel:+{{n}}" translation "+{{n}}"; }}
translate_map out_to {{ rule match "tel:+8888;{{n}}" translation "+{{n}}"; }}
translate_map in_from {{ rule match "+{{n}}" translation "tel:+8888;{{n}}"; }}
translate_map in_to {{ rule match "+{{n}}" translation "tel:+{{n}}"; }}
message_centers {{
    smpp {{ hostname "127.0.0.1"; port {port}; user "cig"; password "secret";
        read {{ map_from translate_map in_from; map_to translate_map in_to; }}
        write {{ map_from translate_map out_from; map_to translate_map out_to; }} }}
}}
"#
    );
    let config = cig_core::conf::parse(&text, "smpp.conf").unwrap().config;
    let router = Arc::new(Router::from_config(&config).unwrap());
    let mut centre = CentreConfig::from_conf(&config.message_centers[0], "tel:+8888", spool);
    centre.enquire_every = Duration::from_secs(1);
    centre.reassembly_timeout = Duration::from_secs(5);
    (centre, router)
}

fn text_msg(to: &str, text: &str) -> Message {
    Message {
        from: "tel:+4670111".into(),
        to: format!("tel:+8888;{to}"),
        text: text.into(),
        ..Message::default()
    }
}

/// Joins the texts of submit events, ordering concatenated parts by their UDH.
fn joined(parts: &[Value]) -> String {
    let mut v: Vec<&Value> = parts.iter().collect();
    v.sort_by_key(|p| p["udh"][0][4].as_u64().unwrap_or(0));
    v.iter().map(|p| p["text"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_deliver_receipt_restart_and_throttling_against_npm_smpp() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let long: String = (0..400)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let deliveries = dir.path().join("deliveries.json");
    std::fs::write(
        &deliveries,
        json!([
            {"tag": "single", "source": "46701", "dest": "4670999", "text": "Hej från SMS {ok}"},
            {"tag": "p2", "source": "46702", "dest": "4670999", "text": "second ", "udh": [5,0,3,77,3,2]},
            {"tag": "p1", "source": "46702", "dest": "4670999", "text": "first ", "udh": [5,0,3,77,3,1]},
            {"tag": "p3", "source": "46702", "dest": "4670999", "text": "third", "udh": [5,0,3,77,3,3]},
            {"tag": "receipt", "source": "4670999", "dest": "8888", "esm_class": 4,
             "text": "id:m1 sub:001 dlvrd:001 submit date:2611261930 done date:2611261931 stat:DELIVRD err:000 text:"}
        ])
        .to_string(),
    )
    .unwrap();
    let mut server = smsc(port, &deliveries, 0);
    let (config, router) = setup(port, &dir.path().join("spool"));
    let (tx, mut rx) = mpsc::channel::<Inbound>(16);
    let centre = Centre::spawn(config, router, tx).unwrap();

    let bind = events(&mut server, 1, "bind");
    assert_eq!(bind[0]["version"], 0x34);

    // Inbound: a single text and a 3-part one (parts out of order); the receipt is not forwarded.
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(
            tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    got.sort_by(|a, b| a.message.from.cmp(&b.message.from));
    assert_eq!(got[0].message.from, "tel:+8888;46701");
    assert_eq!(got[0].message.to, "tel:+4670999");
    assert_eq!(got[0].message.text, "Hej från SMS {ok}");
    assert_eq!(got[1].message.from, "tel:+8888;46702");
    assert_eq!(got[1].message.text, "first second third");
    assert!(got.iter().all(|g| g.message.id.is_some()));
    // Only the receipt is answered before the sink acknowledged.
    let resp = events(&mut server, 1, "deliver_resp");
    assert_eq!(resp[0]["tag"], "receipt");
    assert_eq!(resp[0]["status"], 0);
    for g in got {
        g.ack.delivered().unwrap();
    }
    let resp = events(&mut server, 4, "deliver_resp");
    assert!(resp.iter().all(|r| r["status"] == 0), "{resp:?}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err()
    );

    // Outbound: GSM with the extension table, UCS-2, 3-part concatenated GSM.
    centre
        .deliver(&text_msg("4670222", "Price: 5€ [ok] ^_^"))
        .unwrap()
        .unwrap();
    let submits = events(&mut server, 1, "submit");
    assert_eq!(submits[0]["data_coding"], 0);
    assert_eq!(submits[0]["esm_class"], 0);
    assert_eq!(submits[0]["source"], "4670111");
    assert_eq!(submits[0]["source_ton"], 1);
    assert_eq!(submits[0]["dest"], "4670222");
    assert_eq!(submits[0]["text"], "Price: 5€ [ok] ^_^");
    centre
        .deliver(&text_msg("4670222", "Привет, мир"))
        .unwrap()
        .unwrap();
    let submits = events(&mut server, 1, "submit");
    assert_eq!(submits[0]["data_coding"], 8);
    assert_eq!(submits[0]["text"], "Привет, мир");
    centre
        .deliver(&text_msg("4670333", &long))
        .unwrap()
        .unwrap();
    let submits = events(&mut server, 3, "submit");
    assert!(
        submits
            .iter()
            .all(|s| s["esm_class"] == 0x40 && s["data_coding"] == 0)
    );
    assert_eq!(joined(&submits), long);
    let spool_new = dir
        .path()
        .join("spool")
        .join("127.0.0.1_".to_owned() + &port.to_string())
        .join("new");
    assert!(wait_until(Duration::from_secs(10), || std::fs::read_dir(
        &spool_new
    )
    .unwrap()
    .count()
        == 0));

    // The centre dies; messages wait in the spool and go out after it is back.
    drop(server);
    centre
        .deliver(&text_msg("4670444", "while down 1"))
        .unwrap()
        .unwrap();
    centre
        .deliver(&text_msg("4670444", "while down 2"))
        .unwrap()
        .unwrap();
    assert_eq!(std::fs::read_dir(&spool_new).unwrap().count(), 2);
    std::fs::write(&deliveries, "[]").unwrap();
    // Throttling: the restarted centre answers the first 2 submit_sm with ESME_RTHROTTLED.
    let mut server = smsc(port, &deliveries, 2);
    events(&mut server, 2, "throttled");
    let submits = events(&mut server, 2, "submit");
    let mut texts: Vec<&str> = submits
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    texts.sort();
    assert_eq!(texts, ["while down 1", "while down 2"]);
    assert!(wait_until(Duration::from_secs(10), || std::fs::read_dir(
        &spool_new
    )
    .unwrap()
    .count()
        == 0));
    // Keepalive runs.
    events(&mut server, 1, "enquire_link");
}
