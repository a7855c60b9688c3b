//! Crash safety: the mailbox pipeline (examples/msgpipe.rs, with a file-backed fake secure
//! side) is killed with SIGKILL at pseudo-random points while 1,000 messages flow each way;
//! after restarts every message arrived, duplicates are recognised by their ids, none is lost.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cig_msg::format::{self, Message};
use cig_msg::maildir;
use cig_testkit::{Proc, wait_until};

const N: usize = 1000;

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    dir.join("examples").join(name)
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn sigkill_at_random_points_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s);
    let (read, write, accepted, outbox) = (p("read"), p("write"), p("accepted"), p("outbox"));
    maildir::create_maildir(&read).unwrap();
    maildir::create_maildir(&write).unwrap();
    std::fs::create_dir(&accepted).unwrap();
    std::fs::create_dir(&outbox).unwrap();
    for i in 0..N {
        let m = Message {
            from: format!("sip:{i}@pbx.com"),
            to: "sip:4670@secure.com".into(),
            text: format!("inbound {i}"),
            date: Some(1_700_000_000),
            ..Message::default()
        };
        maildir::deliver(&read, &format::write(&m).unwrap()).unwrap();
        let m = Message {
            from: "tel:+4670".into(),
            to: format!("tel:+8888;{i}"),
            text: format!("outbound {i}"),
            date: Some(1_700_000_000),
            id: Some(format!("out-{i}@cig")),
            ..Message::default()
        };
        std::fs::write(outbox.join(format!("{i:05}")), format::write(&m).unwrap()).unwrap();
    }
    let bin = example("msgpipe");
    assert!(bin.exists(), "{} not built", bin.display());
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut kills = 0;
    while count(&read.join("new")) > 0 || count(&outbox) > 0 {
        let mut proc = Proc::spawn(Command::new(&bin).args([&read, &write, &accepted, &outbox]));
        proc.wait_line(|l| l == "ready", Duration::from_secs(20))
            .unwrap_or_else(|| panic!("msgpipe did not start: {}", proc.stderr()));
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let ms = 20 + (seed >> 33) % 200;
        std::thread::sleep(Duration::from_millis(ms));
        if count(&read.join("new")) == 0 && count(&outbox) == 0 {
            // Let the last acknowledgements land before the final kill.
            std::thread::sleep(Duration::from_millis(200));
        }
        drop(proc); // SIGKILL
        kills += 1;
        assert!(kills < 200, "no progress");
    }
    // Inbound: every message accepted exactly once by id (redeliveries overwrite their file).
    let ids: HashSet<String> = std::fs::read_dir(&accepted)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(ids.len(), N);
    let texts: HashSet<String> = ids
        .iter()
        .map(|id| {
            format::parse(&std::fs::read(accepted.join(id)).unwrap())
                .unwrap()
                .text
        })
        .collect();
    assert_eq!(texts, (0..N).map(|i| format!("inbound {i}")).collect());
    // Outbound: every message in the write mailbox; duplicates carry the same Message-ID.
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    for e in std::fs::read_dir(write.join("new")).unwrap() {
        let m = format::parse(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
        if !seen.insert(m.id.clone().unwrap()) {
            duplicates += 1;
        }
    }
    assert_eq!(seen, (0..N).map(|i| format!("out-{i}@cig")).collect());
    assert!(
        count(&write.join("tmp")) <= kills,
        "at most one torn tmp file per kill"
    );
    assert!(wait_until(Duration::from_secs(1), || count(
        &read.join("new")
    ) == 0));
    println!("{kills} kills, {duplicates} outbound duplicates suppressed by Message-ID");
}
