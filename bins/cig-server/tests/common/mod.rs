//! What the operations tests (package.rs, restore.rs) and the end-to-end tests share: the
//! gateway's keys made with cig-kms ([`bundle`], or a whole [`Domain`] with its switch
//! cig-crs), a small cig.conf, starting cig-relay and cig-server, and `cig-cli status`.

#![allow(dead_code)] // Each test file uses its own part.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cig_testkit::{Proc, bin, wait_until};

/// The gateway's identity.
pub const GW: &str = "tel:+8888";
/// The KMS community's domain.
pub const DOMAIN: &str = "cig.test";
/// How long a process may take to come up.
pub const T: Duration = Duration::from_secs(30);

/// Runs `cmd`, which must succeed; its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A key bundle for [`GW`] and its transfer code file, as `cig-cli set-key` takes them.
#[derive(Debug)]
pub struct Bundle {
    pub bundle: PathBuf,
    pub code: PathBuf,
}

/// Makes a KMS community in `dir/kms` with [`GW`] and exports its bundle into `dir`, naming
/// `switch` as the switch address.
pub fn bundle(dir: &Path, switch: &str) -> Bundle {
    let kms = dir.join("kms");
    let kms_s = kms.to_str().unwrap();
    run(Command::new(bin("cig-kms")).args(["init", "--dir", kms_s, "--domain", DOMAIN]));
    run(Command::new(bin("cig-kms")).args(["issue", "--dir", kms_s, "--identity", GW]));
    let b = Bundle {
        bundle: dir.join("gw.bundle"),
        code: dir.join("gw.code"),
    };
    run(Command::new(bin("cig-kms")).args([
        "export",
        "--dir",
        kms_s,
        "--identity",
        GW,
        "--out",
        b.bundle.to_str().unwrap(),
        "--switch",
        switch,
        "--code-file",
        b.code.to_str().unwrap(),
    ]));
    b
}

/// A cig.conf whose SIP side listens on 127.0.0.1:`sip_port`.
pub fn conf(sip_port: u16) -> String {
    format!(
        r#"// Written by the operations tests.
map maptel2sip {{ entry e tel "tel:+8888;{{x}}" sip "sip:{{x}}@127.0.0.1:5099"; }}
map mapsip2tel {{ entry e sip "sip:9{{n}}@{{d}}" tel "tel:+{{n}}"; }}
interfaces {{
    tel {{ extension map maptel2sip; }}
    sip {{ extension map mapsip2tel; bind 127.0.0.1; port {sip_port}; }}
}}
"#
    )
}

/// `cig-cli status` against the management port `port`: its output, or `None` while
/// cig-server does not answer.
pub fn status(cli: &Path, port: u16) -> Option<String> {
    let out = Command::new(cli)
        .args(["--port", &port.to_string(), "status"])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", cli.display()));
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits until `cig-cli status` shows the relay connected and the keystore's identity; the
/// status text. Panics with the server's stderr otherwise.
pub fn wait_status(cli: &Path, port: u16, server: &Proc) -> String {
    let mut last = None;
    let up = wait_until(T, || {
        last = status(cli, port);
        last.as_deref().is_some_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Relay connection state") && l.ends_with(" CONNECTED"))
        })
    });
    assert!(
        up,
        "status {last:?}; cig-server stderr: {}",
        server.stderr()
    );
    last.unwrap_or_default()
}

/// The value of the `label` line of a `cig-cli status` text.
pub fn status_field(status: &str, label: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in {status}"))
        .trim()
        .to_owned()
}

/// The configuration lines cig-server wrote to `log_dir/cig.log` at its last start.
pub fn logged_config(log_dir: &Path) -> Vec<String> {
    let log = fs::read_to_string(log_dir.join("cig.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let start = lines
        .iter()
        .rposition(|l| l.contains("starting"))
        .expect("a start in cig.log");
    lines[start..]
        .iter()
        .filter(|l| l.contains("Config[INIT]") && !l.contains("loaded "))
        .map(|l| l.split_once("Config[INIT]").unwrap().1.to_owned())
        .collect()
}

/// The `key=` line of a `cig-kms switch-cert` output.
pub fn field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {out}"))
        .to_owned()
}

/// A KMS community in `dir/kms` (domain [`DOMAIN`]) with keys for some identities, a switch
/// certificate for 127.0.0.1, and the address the switch listens on (a free port).
#[derive(Debug)]
pub struct Domain {
    pub dir: PathBuf,
    pub switch: String,
    /// `cig-kms switch-cert` output (`cert=`, `key=` lines).
    pub certs: String,
}

impl Domain {
    pub fn create(dir: &Path, identities: &[&str]) -> Domain {
        let kms = dir.join("kms");
        let kms_s = kms.to_str().unwrap();
        run(Command::new(bin("cig-kms")).args(["init", "--dir", kms_s, "--domain", DOMAIN]));
        for id in identities {
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
        Domain {
            dir: dir.to_owned(),
            switch: format!("127.0.0.1:{}", cig_testkit::free_tcp_port()),
            certs,
        }
    }

    /// Exports `identity`'s key bundle to `out` with its transfer code in `code`.
    pub fn export(&self, identity: &str, out: &Path, code: &Path) {
        run(Command::new(bin("cig-kms")).args([
            "export",
            "--dir",
            self.dir.join("kms").to_str().unwrap(),
            "--identity",
            identity,
            "--out",
            out.to_str().unwrap(),
            "--switch",
            &self.switch,
            "--code-file",
            code.to_str().unwrap(),
        ]));
    }

    /// The switch cig-crs on [`Domain::switch`], logging to `dir/crs.log`; ready.
    pub fn spawn_crs(&self) -> Proc {
        let mut crs = Proc::spawn(Command::new(bin("cig-crs")).args([
            "--listen",
            &self.switch,
            "--cert",
            &field(&self.certs, "cert"),
            "--key",
            &field(&self.certs, "key"),
            "--kpak-from",
            self.dir.join("kms").to_str().unwrap(),
            "--log",
            self.dir.join("crs.log").to_str().unwrap(),
        ]));
        crs.wait_line(|l| l.starts_with("cig-crs ready"), T)
            .unwrap_or_else(|| panic!("cig-crs: {}", crs.stderr()));
        crs
    }
}

/// cig-relay with its control socket `dir/relay.sock` and logs in `dir/log`; ready.
pub fn spawn_relay(dir: &Path) -> Proc {
    spawn_relay_with(dir, &[])
}

/// [`spawn_relay`] with `extra` flags (e.g. `--control-tcp …` and its TLS files).
pub fn spawn_relay_with(dir: &Path, extra: &[&str]) -> Proc {
    let mut relay = Proc::spawn(
        Command::new(bin("cig-relay"))
            .args([
                "--control",
                dir.join("relay.sock").to_str().unwrap(),
                "--log-dir",
                dir.join("log").to_str().unwrap(),
                "--bind",
                "127.0.0.1",
                "--rtp-port-range",
                "20000",
                "40000",
                "--workers",
                "1",
            ])
            .args(extra),
    );
    relay
        .wait_line(|l| l.starts_with("cig-relay ready"), T)
        .unwrap_or_else(|| panic!("cig-relay: {}", relay.stderr()));
    relay
}

/// The cig-server command for the test directory `dir`: `dir/cig.conf`, `dir/userdata`, logs
/// in `dir/log` (DEBUG lines on), the relay at `dir/relay.sock`, the given ports and notify
/// hook. Add flags and spawn it.
pub fn server_command(dir: &Path, sip_port: u16, mgmt_port: u16, notify: &Path) -> Command {
    let mut c = Command::new(bin("cig-server"));
    c.args([
        "--config",
        dir.join("cig.conf").to_str().unwrap(),
        "--userdata",
        dir.join("userdata").to_str().unwrap(),
        "--log-dir",
        dir.join("log").to_str().unwrap(),
        "--relay-socket",
        dir.join("relay.sock").to_str().unwrap(),
        "--mgmt-port",
        &mgmt_port.to_string(),
        "--sip-port",
        &sip_port.to_string(),
        "--notify",
        notify.to_str().unwrap(),
        "--debug",
    ]);
    c
}

/// sipp as the PBX on 127.0.0.1:`port`, one call, in the background in `dir` (errors to
/// `dir/*_errors.log`), with `scenario_args` (`-sf FILE` or `-sn uas`).
pub fn sipp_uas(dir: &Path, port: u16, scenario_args: &[&str]) -> std::process::Child {
    let child = Command::new("sipp")
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", "1"])
        .args([
            "-nostdin",
            "-timeout",
            "30s",
            "-timeout_error",
            "-trace_err",
        ])
        .args(scenario_args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sipp (scripts/install-test-deps.sh installs it)");
    assert!(
        cig_testkit::wait_udp_bound(port, Duration::from_secs(10)),
        "sipp did not bind UDP port {port}"
    );
    child
}
