//! The installation package on this machine, as the manual's Initial Installation, Upgrade
//! Installation and removal: the .deb is built from the debug binaries with scripts/package.sh,
//! installed with dpkg, the manual's layout checked, both systemd units' ExecStart commands run
//! directly (no systemd) as ciguser, `cig-cli status` asked; then a rebuilt package with a
//! higher version is installed over it and cig.conf and the keystore must have survived and
//! still work; `dpkg -r` keeps them, `dpkg -P` removes them.
//!
//! Needs root (dpkg, users) and cargo-deb (scripts/install-test-deps.sh installs it); skipped
//! with a message otherwise. It installs into /opt/cig, so it refuses to run over a `cig`
//! package it did not install itself.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use cig_testkit::{Proc, bin, free_tcp_port, free_udp_port, wait_until};
use common::{GW, T, bundle, conf, run, status_field, wait_status};

/// The package name.
const PKG: &str = "cig";
/// The version suffix that marks a package this test installed.
const MARK: &str = "+pkgtest";
const UNITS: &str = "/lib/systemd/system";
const KEYSTORE: &str = "/opt/cig/userdata/.ks.tel:+8888";

fn out(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// `dpkg ARGS`, retried while another dpkg or apt holds the lock.
fn dpkg(args: &[&str]) {
    let mut last = None;
    let done = wait_until(Duration::from_secs(120), || {
        let o = out(Command::new("dpkg")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"));
        let locked = String::from_utf8_lossy(&o.stderr).contains("lock");
        let ok = o.status.success();
        last = Some(o);
        ok || !locked
    });
    let o = last.expect("dpkg ran");
    assert!(
        done && o.status.success(),
        "dpkg {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// dpkg's status and version of the package, `None` when dpkg does not know it.
fn package_state() -> Option<(String, String)> {
    let o = out(Command::new("dpkg-query").args(["-W", "-f=${Status}|${Version}", PKG]));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let (status, version) = text.split_once('|')?;
    (o.status.success() && !status.ends_with("not-installed"))
        .then(|| (status.to_owned(), version.to_owned()))
}

/// Purges the test's package (also when the test fails half-way) and the runtime directory.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = out(Command::new("dpkg").args(["--purge", PKG]));
        let _ = fs::remove_dir_all("/run/cig");
    }
}

/// Why this test cannot run here, if it cannot.
fn cannot_run() -> Option<String> {
    if fs::metadata("/proc/self").map_or(true, |m| m.uid() != 0) {
        return Some("needs root (dpkg -i, users ciguser and cigmail)".into());
    }
    let maildir_script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/create_cig_maildir");
    if !maildir_script.exists() {
        return Some(format!(
            "{} (a file of the package) is not in this tree yet",
            maildir_script.display()
        ));
    }
    if out(Command::new("dpkg-deb").arg("--version")).status.code() != Some(0) {
        return Some("dpkg-deb not found (not a Debian system)".into());
    }
    if let Some((status, version)) = package_state()
        && !version.contains(MARK)
    {
        return Some(format!(
            "a real {PKG} package is on this machine ({status} {version}); not touching it"
        ));
    }
    None
}

/// Builds the .deb of `version` from the debug binaries beside this test; its path.
fn build(version: &str, out_dir: &Path) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // target/debug/cig-server -> target
    let target = bin("cig-server")
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_owned();
    let o = out(Command::new(workspace.join("scripts/package.sh"))
        .args([
            "--deb",
            "--profile",
            "dev",
            "--no-build",
            "--version",
            version,
        ])
        .arg("--out")
        .arg(out_dir)
        .env("CARGO_TARGET_DIR", &target));
    assert!(
        o.status.success(),
        "scripts/package.sh (cargo-deb comes from scripts/install-test-deps.sh): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    fs::read_dir(out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.extension().is_some_and(|e| e == "deb")
                && p.to_string_lossy().contains(&format!("{version}-1"))
        })
        .unwrap_or_else(|| panic!("no .deb of {version} in {}", out_dir.display()))
}

/// The unit file's `ExecStart=` command line (ours have no quoting).
fn exec_start(unit: &str) -> Vec<String> {
    let text = fs::read_to_string(Path::new(UNITS).join(unit)).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("no ExecStart in {unit}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// `argv` as the units run it: user and group ciguser with its supplementary groups.
fn as_ciguser(argv: &[String]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=ciguser", "--regid=ciguser", "--init-groups", "--"])
        .args(argv);
    c
}

fn mode_owner(path: &str) -> (u32, String, String) {
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let name = |db: &str, id: u32| {
        run(Command::new("getent").args([db, &id.to_string()]))
            .split(':')
            .next()
            .unwrap()
            .to_owned()
    };
    (
        m.mode() & 0o7777,
        name("passwd", m.uid()),
        name("group", m.gid()),
    )
}

/// The server unit's ExecStart, run as ciguser, must exit with 1 and say `why` on stderr.
fn refused_saying(why: &str) {
    let mut server = Proc::spawn(&mut as_ciguser(&exec_start("cig-server.service")));
    assert_eq!(server.wait_exit(T).and_then(|s| s.code()), Some(1));
    // stderr is read by a thread: give it a moment after the exit.
    let said = wait_until(Duration::from_secs(5), || server.stderr().contains(why));
    assert!(said, "{why:?} in {}", server.stderr());
}

/// The running services (stopped when dropped).
struct Services {
    relay: Proc,
    server: Proc,
}

impl Services {
    /// Runs both units' ExecStart as ciguser, as systemd would (RuntimeDirectory=cig made
    /// here); the server gets a free management port so parallel tests are not disturbed.
    /// Returns them once `cig-cli status` (the one on the PATH) shows the relay connected.
    fn start(mgmt: u16) -> (Services, String) {
        run(Command::new("install").args([
            "-d", "-m", "0750", "-o", "ciguser", "-g", "ciguser", "/run/cig",
        ]));
        let mut relay = Proc::spawn(&mut as_ciguser(&exec_start("cig-relay.service")));
        relay
            .wait_line(|l| l.starts_with("cig-relay ready"), T)
            .unwrap_or_else(|| panic!("cig-relay: {}", relay.stderr()));
        let mut server = exec_start("cig-server.service");
        server.extend(["--mgmt-port".to_owned(), mgmt.to_string()]);
        let server = Proc::spawn(&mut as_ciguser(&server));
        let status = wait_status(Path::new("/usr/bin/cig-cli"), mgmt, &server);
        (Services { relay, server }, status)
    }

    fn stop(mut self) {
        assert!(self.server.terminate(T).is_some(), "cig-server stops");
        assert!(self.relay.terminate(T).is_some(), "cig-relay stops");
    }
}

#[test]
fn deb_installs_runs_upgrades_keeping_config_and_keys_removes_and_purges() {
    if let Some(why) = cannot_run() {
        eprintln!("package test skipped: {why}");
        return;
    }
    let _cleanup = Cleanup;
    if package_state().is_some() {
        dpkg(&["--purge", PKG]);
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let v1 = format!("{}{MARK}1", env!("CARGO_PKG_VERSION"));
    let v2 = format!("{}{MARK}2", env!("CARGO_PKG_VERSION"));
    let deb1 = build(&v1, &dir.join("v1"));

    // Initial installation.
    dpkg(&["-i", deb1.to_str().unwrap()]);
    assert_eq!(package_state().unwrap().1, format!("{v1}-1"));
    for b in ["cig-server", "cig-relay", "cig-cli", "create_cig_maildir"] {
        let (mode, user, _) = mode_owner(&format!("/opt/cig/bin/{b}"));
        assert_eq!((mode, user.as_str()), (0o755, "root"), "{b}");
    }
    assert_eq!(
        mode_owner("/opt/cig/userdata"),
        (0o700, "ciguser".into(), "ciguser".into())
    );
    assert_eq!(
        mode_owner("/opt/cig/cig.conf"),
        (0o640, "root".into(), "ciguser".into())
    );
    assert_eq!(mode_owner("/var/log/cig").1, "ciguser");
    assert_eq!(mode_owner("/opt/cig/scripts/notify.sh").0, 0o755);
    assert!(
        out(Command::new("/opt/cig/scripts/notify.sh").arg("start"))
            .status
            .success()
    );
    assert_eq!(
        fs::read_link("/usr/bin/cig-cli").unwrap(),
        Path::new("/opt/cig/bin/cig-cli")
    );
    assert!(Path::new("/etc/logrotate.d/cig").exists());
    let groups = run(Command::new("id").args(["-nG", "ciguser"]));
    assert!(
        groups.split_whitespace().any(|g| g == "cigmail"),
        "{groups}"
    );
    let conffiles = run(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", PKG]));
    for f in [
        "/opt/cig/cig.conf",
        "/opt/cig/scripts/notify.sh",
        "/etc/logrotate.d/cig",
    ] {
        assert!(conffiles.contains(f), "{f} not a conffile: {conffiles}");
    }
    // The shipped example is a valid configuration.
    run(Command::new("/usr/bin/cig-cli").args(["read", "/opt/cig/cig.conf"]));
    let server_unit = fs::read_to_string(Path::new(UNITS).join("cig-server.service")).unwrap();
    for line in [
        "User=ciguser",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "Restart=on-failure",
        "Requires=cig-relay.service",
    ] {
        assert!(
            server_unit.lines().any(|l| l == line),
            "{line} in cig-server.service"
        );
    }

    // Without keys the server says what to do.
    refused_saying("run `cig-cli set-key`");

    // The operator's configuration, and keys installed by root with set-key: the server (as
    // ciguser) cannot read them and says how to fix it.
    fs::write("/opt/cig/cig.conf", conf(free_udp_port())).unwrap();
    let switch = format!("127.0.0.1:{}", free_tcp_port());
    let keys = bundle(dir, &switch);
    run(Command::new("/usr/bin/cig-cli").args([
        "set-key",
        "--bundle",
        keys.bundle.to_str().unwrap(),
        "--code-file",
        keys.code.to_str().unwrap(),
    ]));
    refused_saying("chown ciguser:ciguser");
    run(Command::new("chown").args(["ciguser:ciguser", KEYSTORE]));

    let mgmt = free_tcp_port();
    let (services, status) = Services::start(mgmt);
    assert_eq!(status_field(&status, "Public ID"), GW);
    services.stop();
    assert_eq!(mode_owner("/var/log/cig/cig.log").1, "ciguser");
    let conf_before = fs::read("/opt/cig/cig.conf").unwrap();
    let keys_before = fs::read(KEYSTORE).unwrap();

    // Upgrade to a rebuilt package.
    let deb2 = build(&v2, &dir.join("v2"));
    dpkg(&["-i", deb2.to_str().unwrap()]);
    assert_eq!(package_state().unwrap().1, format!("{v2}-1"));
    assert_eq!(
        fs::read("/opt/cig/cig.conf").unwrap(),
        conf_before,
        "cig.conf kept"
    );
    assert_eq!(fs::read(KEYSTORE).unwrap(), keys_before, "keystore kept");
    assert_eq!(
        mode_owner(KEYSTORE),
        (0o600, "ciguser".into(), "ciguser".into())
    );
    let (services, status) = Services::start(mgmt);
    assert_eq!(status_field(&status, "Public ID"), GW);
    services.stop();

    // Remove: the programs go, configuration and keys stay.
    dpkg(&["-r", PKG]);
    assert!(package_state().unwrap().0.contains("config-files"));
    for gone in [
        "/opt/cig/bin/cig-server",
        "/usr/bin/cig-cli",
        "/lib/systemd/system/cig-server.service",
    ] {
        assert!(
            fs::symlink_metadata(gone).is_err(),
            "{gone} left after remove"
        );
    }
    assert_eq!(fs::read("/opt/cig/cig.conf").unwrap(), conf_before);
    assert_eq!(fs::read(KEYSTORE).unwrap(), keys_before);

    // Purge: they go too.
    dpkg(&["--purge", PKG]);
    assert_eq!(package_state(), None);
    for gone in ["/opt/cig", "/var/log/cig"] {
        assert!(
            fs::symlink_metadata(gone).is_err(),
            "{gone} left after purge"
        );
    }
}
