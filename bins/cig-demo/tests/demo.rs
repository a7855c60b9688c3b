//! The README's main job in CI: the demo runs the whole system on loopback and passes every
//! check (both calls set up, tones heard both ways, DTMF both ways, session.log, clean stop).

use std::process::Command;
use std::time::Duration;

use cig_testkit::Proc;

#[test]
fn the_demo_passes_every_check() {
    let mut demo = Proc::spawn(Command::new(env!("CARGO_BIN_EXE_cig-demo")).args(["--talk", "2"]));
    let passed = demo.wait_line(|l| l.contains("checks passed"), Duration::from_secs(120));
    let status = demo.wait_exit(Duration::from_secs(30));
    let out = demo.seen().join("\n");
    assert!(
        passed.as_deref().is_some_and(|l| l.starts_with("9 of 9")),
        "{out}\n{}",
        demo.stderr()
    );
    assert!(status.is_some_and(|s| s.success()), "{out}");
    assert!(out.contains("SIP phone received DTMF \"123\""), "{out}");
    assert!(out.contains("secure phone received DTMF \"456\""), "{out}");
}
