//! The mailbox pipeline with a file-backed fake secure side, for the crash-safety test:
//! messages of READ_BOX go to ACCEPTED (one file per message id, written durably before the
//! acknowledgement), and message files in OUTBOX go through `Outbound::deliver` into
//! WRITE_BOX (the outbox file is removed after the durable write). Runs until killed.
//!
//! usage: msgpipe READ_BOX WRITE_BOX ACCEPTED OUTBOX

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cig_msg::format;
use cig_msg::maildir::{Reader, ReaderConfig};
use cig_msg::service::Outbound;
use cig_route::Router;

fn durable_write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [read, write, accepted, outbox] = args.as_slice() else {
        eprintln!("usage: msgpipe READ_BOX WRITE_BOX ACCEPTED OUTBOX");
        std::process::exit(2);
    };
    let conf = format!(
        r#"
translate_map ext2gw {{ rule match "sip:{{u}}@pbx.com" translation "tel:+8888;{{u}}"; }}
translate_map secure2tel {{ rule match "sip:{{n}}@secure.com" translation "tel:+{{n}}"; }}
translate_map tel2secure {{ rule match "tel:+{{n}}" translation "sip:{{n}}@secure.com"; }}
translate_map gw2ext {{ rule match "tel:+8888;{{e}}" translation "sip:{{e}}@pbx.com"; }}
mailboxes {{
    read {{ path "{}"; map_from translate_map ext2gw; map_to translate_map secure2tel; }}
    write {{ path "{}"; map_from translate_map tel2secure; map_to translate_map gw2ext; }}
}}"#,
        read.display(),
        write.display()
    );
    let config = cig_core::conf::parse(&conf, "msgpipe.conf")
        .expect("valid configuration")
        .config;
    let router = Arc::new(Router::from_config(&config).expect("router"));
    let outbound = Outbound::new(&config, Arc::clone(&router));
    let outbox = outbox.clone();
    let out_task = tokio::task::spawn_blocking(move || {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&outbox)
            .expect("outbox")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        for f in files {
            let m = format::parse(&std::fs::read(&f).expect("read")).expect("parse");
            outbound.deliver(&m).expect("deliver");
            std::fs::remove_file(&f).expect("remove");
        }
    });
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let _reader = Reader::spawn(
        ReaderConfig {
            path: read.clone(),
            map_from: "ext2gw".into(),
            map_to: "secure2tel".into(),
            gateway: "tel:+8888".into(),
            scan_every: Duration::from_secs(1),
        },
        router,
        tx,
    )
    .expect("reader");
    println!("ready");
    while let Some(inbound) = rx.recv().await {
        let id = inbound.message.id.clone().expect("id");
        let bytes = format::write(&inbound.message).expect("write");
        durable_write(accepted, &id, &bytes).expect("accept");
        inbound.ack.delivered().expect("ack");
    }
    out_task.await.expect("outbound");
}
