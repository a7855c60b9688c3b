//! What the scaling-out tests (relays.rs, kamailio.rs) share on top of `common`: a secure
//! domain in a temporary directory with its switch running, keys and phones per identity,
//! relay certificates from `cig-kms relay-cert`, a gateway's cig.conf and cig-server, what
//! the relays and gateways logged, and sipp's UAC.

#![allow(dead_code)] // Each test file uses its own part.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cig_testkit::{Proc, bin};
use tempfile::TempDir;

use crate::common::{self, T, field, run};

/// A secure domain on loopback: a KMS community with some identities (`common::Domain`) and
/// its switch cig-crs running, in one temporary directory; the switch stops when this is
/// dropped.
#[derive(Debug)]
pub struct Site {
    /// The temporary directory (the KMS in `kms/`).
    pub dir: TempDir,
    /// The community and its switch address.
    pub kms: common::Domain,
    _crs: Proc,
}

impl Site {
    /// Makes the community with `identities` and starts its switch.
    pub fn start(identities: &[&str]) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let kms = common::Domain::create(dir.path(), identities);
        let crs = kms.spawn_crs();
        Site {
            dir,
            kms,
            _crs: crs,
        }
    }

    /// `p` inside the temporary directory.
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// `dir/userdata` holding `identity`'s keys as `cig.raw` (cig-server imports them).
    pub fn userdata(&self, dir: &Path, identity: &str) {
        let userdata = dir.join("userdata");
        fs::create_dir_all(&userdata).unwrap();
        self.kms.export(
            identity,
            &userdata.join("cig.raw"),
            &userdata.join("cig.raw.code"),
        );
    }

    /// A secure phone of `identity`, registered at the switch, answering every call at once.
    pub fn phone(&self, identity: &str) -> Proc {
        let name = identity.trim_start_matches("tel:+");
        let (bundle, code) = (
            self.path(&format!("{name}.bundle")),
            self.path(&format!("{name}.code")),
        );
        self.kms.export(identity, &bundle, &code);
        let mut p = Proc::spawn(Command::new(bin("cig-phone")).args([
            "--bundle",
            bundle.to_str().unwrap(),
            "--code-file",
            code.to_str().unwrap(),
            "--switch",
            &self.kms.switch,
            "--media-ip",
            "127.0.0.1",
            "--answer",
            "auto",
        ]));
        p.wait_line(|l| l.starts_with("registered"), T)
            .unwrap_or_else(|| panic!("cig-phone: {}", p.stderr()));
        p
    }
}

/// `cig-kms relay-cert` in the KMS directory `kms`: the CA, certificate and key paths of a
/// relay's server certificate for `name` (an IP address here), or of a client certificate.
pub fn relay_cert(kms: &Path, name: &str, client: bool) -> [String; 3] {
    let mut c = Command::new(bin("cig-kms"));
    c.args(["relay-cert", "--dir", kms.to_str().unwrap(), "--name", name]);
    if client {
        c.arg("--client");
    }
    let out = run(&mut c);
    ["ca", "cert", "key"].map(|k| field(&out, k))
}

/// A port free for both UDP and TCP on 127.0.0.1 (cig-server's SIP listens on both).
pub fn sip_port() -> u16 {
    loop {
        let p = cig_testkit::free_udp_port();
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// How many sessions the relay logging in `dir/log` has created so far.
pub fn relay_sessions(dir: &Path) -> usize {
    fs::read_to_string(dir.join("log/relay.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" created on engine "))
        .count()
}

/// A gateway's cig.conf: SIP on 127.0.0.1:`sip_port`, `sip:9N@…` routed to `tel:+N`, the
/// caller shown as `IDENTITY;USER`, then `extra` (e.g. `relay` sections).
pub fn gateway_conf(identity: &str, sip_port: u16, extra: &str) -> String {
    format!(
        r#"// Written by the scaling-out tests.
map maptel2sip {{ entry anyhost tel "{identity};{{x}}" sip "sip:{{x}}@{{host}}"; }}
map mapsip2tel {{ entry sipext2tel sip "sip:9{{n}}@{{d}}" tel "tel:+{{n}}"; }}
interfaces {{
    tel {{ extension map maptel2sip; }}
    sip {{ extension map mapsip2tel; bind 127.0.0.1; port {sip_port}; }}
}}
{extra}"#
    )
}

/// cig-server of the gateway directory `dir` with cig.conf `conf` (`common::server_command`:
/// keys in `dir/userdata`, logs in `dir/log`, the relay at `dir/relay.sock` unless `conf`
/// names relays); ready.
pub fn server(dir: &Path, conf: &str, sip_port: u16, mgmt_port: u16) -> Proc {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("cig.conf"), conf).unwrap();
    let hook = dir.join("no-notify-hook");
    let mut s = Proc::spawn(&mut common::server_command(dir, sip_port, mgmt_port, &hook));
    s.wait_line(|l| l == "cig-server ready", T)
        .unwrap_or_else(|| panic!("cig-server: {}", s.stderr()));
    s
}

/// The session.log states (`routing`, `talk`, `hangup`, …) of the gateway in `dir`.
pub fn session_states(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("log/session.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(", ").nth(6).unwrap_or_default().to_owned())
        .collect()
}

/// The gateway in `dir`'s cig.log.
pub fn cig_log(dir: &Path) -> String {
    fs::read_to_string(dir.join("log/cig.log")).unwrap_or_default()
}

/// sipp's UAC placing `calls` calls to `service` at `target`, one at a time (one a second),
/// with the `scenario` file or the built-in `uac` holding each call `hold_ms`; run in `dir`.
pub fn sipp_uac(
    dir: &Path,
    target: &str,
    service: &str,
    calls: u32,
    scenario: Option<&Path>,
    hold_ms: u32,
) -> Command {
    let mut c = Command::new("sipp");
    c.args([target, "-s", service, "-i", "127.0.0.1", "-nostdin"])
        .args(["-m", &calls.to_string(), "-l", "1", "-r", "1"])
        .args(["-timeout", "60s", "-timeout_error", "-trace_err"])
        .args(["-d", &hold_ms.to_string()])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match scenario {
        Some(s) => c.arg("-sf").arg(s),
        None => c.args(["-sn", "uac"]),
    };
    c
}
