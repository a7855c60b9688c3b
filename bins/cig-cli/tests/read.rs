//! `cig-cli read` run as a process: exit codes, summary, warnings and diagnostics.

use std::path::PathBuf;
use std::process::{Command, Output};

fn conf(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/conf")
        .join(name)
}

fn read(path: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cig-cli"))
        .arg("read")
        .arg(path)
        .output()
        .unwrap()
}

#[test]
fn valid_config_prints_summary_and_exits_0() {
    let out = read(&conf("simple.conf"));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("maps: 3, 3 entries\n"), "{stdout}");
    assert!(stdout.contains("  mapsip2tel: 1 entry\n"), "{stdout}");
    assert!(
        stdout.contains(
            "interface sip: extension maps [mapsip2tel], source maps [srctel2sip], bind 192.168.1.1, rtp 1024-2048, messaging\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("interface tel: extension maps [maptel2sip], source maps []\n"));
    assert!(stdout.contains("translate maps: 0, 0 rules\n"));
    assert!(stdout.contains("mailboxes: 0 read, 0 write\n"));
    assert!(stdout.contains("message centres: 0\n"));
    assert!(
        stdout.ends_with("simple.conf: valid, 0 warnings\n"),
        "{stdout}"
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn warnings_are_printed_with_line_and_caret() {
    let out = read(&conf("elaborate.conf"));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains(":60:13: warning: `rtp port range` read as `rtp_port_range`\n"));
    assert!(
        stdout.contains(
            "\n60 |             rtp port range 1024 2048;\n   |             ^^^^^^^^^^^^^^\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("elaborate.conf: valid, 3 warnings\n"),
        "{stdout}"
    );
}

#[test]
fn smpp_centres_are_summarised() {
    let out = read(&conf("smpp.conf"));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout
            .contains("message centres: 2\n  smpp smsc.example.com:2775\n  smpp 192.0.2.10:2776\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("secret"), "passwords must not be printed");
}

#[test]
fn invalid_config_prints_diagnostics_and_exits_1() {
    let out = read(&conf("simple-manual.conf"));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("simple-manual.conf:28:22: error: undefined map `srcsip2tel`\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("= help: did you mean `srctel2sip`?"),
        "{stderr}"
    );
    assert!(stderr.ends_with("1 error\n"), "{stderr}");
}

#[test]
fn several_errors_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.conf");
    std::fs::write(
        &f,
        "map m {\n  entry a tel \"tel:{x\" sip \"sip:x\";\n  entry b tel \"tel:1\";\n}\ninterfaces { sip { extension map n; bind 300.1.1.1; } }\n",
    )
    .unwrap();
    let out = read(&f);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("bad.conf:2:20: error: bad URI template: unclosed `{`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.conf:5:34: error: undefined map `n`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.conf:5:42: error: invalid IP address `300.1.1.1`"),
        "{stderr}"
    );
    assert!(stderr.ends_with("3 errors\n"), "{stderr}");
}

#[test]
fn missing_file_exits_1() {
    let out = read(&conf("no-such.conf"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("error: cannot read:")
    );
}
