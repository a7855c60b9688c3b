//! The demo's processes and files: a KMS community and keys made with `cig-kms`, the switch
//! (`cig-crs`), the gateway's keystore installed with `cig-cli set-key`, `cig-relay` and
//! `cig-server` with a generated cig.conf, all on loopback in a temporary directory. Every
//! binary is the one built beside `cig-demo`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cig_testkit::{Proc, free_tcp_port, free_udp_port};

/// The gateway's identity in the secure domain.
pub const GATEWAY_ID: &str = "tel:+8888";
/// The secure phone's identity.
pub const PHONE_ID: &str = "tel:+4670123456";

/// A failed step, with what the tool said.
pub type Failure = String;

/// Everything the demo started, stopped in reverse order when dropped.
#[derive(Debug)]
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub server: Proc,
    pub relay: Proc,
    pub switch: Proc,
    pub sip_addr: SocketAddr,
    pub pbx_addr: SocketAddr,
    pub mgmt_port: u16,
    /// The secure phone's key bundle and transfer-code file.
    pub phone_bundle: (PathBuf, PathBuf),
}

/// A workspace binary beside this one.
pub fn tool(name: &str) -> Result<PathBuf, Failure> {
    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let path = exe.with_file_name(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} is missing: build the workspace binaries first (scripts/demo.sh does)",
            path.display()
        ))
    }
}

/// Runs `name args` to completion; its stdout, or an error with its stderr.
fn run(name: &str, args: &[&str]) -> Result<String, Failure> {
    let out = Command::new(tool(name)?)
        .args(args)
        .output()
        .map_err(|e| format!("{name}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{name} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Starts `name args` and waits for its readiness line (starting with `ready`).
fn start(name: &str, args: &[String], ready: &str) -> Result<(Proc, String), Failure> {
    let mut p = Proc::spawn(Command::new(tool(name)?).args(args));
    match p.wait_line(|l| l.starts_with(ready), Duration::from_secs(30)) {
        Some(line) => Ok((p, line)),
        None => Err(format!(
            "{name} did not get ready: {}",
            p.stderr().lines().last().unwrap_or("no output")
        )),
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// `key=value` from a tool's output.
fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// The generated cig.conf: the manual's simple example with the PBX and the gateway on
/// loopback.
pub fn config(sip: SocketAddr, pbx: SocketAddr, rtp: (u16, u16)) -> String {
    let mut c = String::new();
    let _ = write!(
        c,
        r#"// cig-demo: the manual's simple configuration on loopback.
// Desk phone 101 of the PBX is sip:101@{pbx}; secure users dial tel:+8888w101.
map maptel2sip {{
   entry telext2sip
     tel "tel:+8888;{{TELEXT}}"
     sip "sip:{{TELEXT}}@{pbx}";
}}

map mapsip2tel {{
   entry sipext2tel
     sip "sip:9{{SIPEXT}}@secure.com"
     tel "tel:+{{SIPEXT}}";
}}

map srctel2sip {{
   entry tel2sipsrc
     tel "tel:+{{TELEXT}}"
     sip "sip:{{TELEXT}}@secure.com";
}}

interfaces {{
    tel {{
          extension map maptel2sip;
    }}
    sip {{
          extension map mapsip2tel;
          source map srctel2sip;
          bind {ip};
          port {port};
          rtp_port_range {lo} {hi};
    }}
}}
"#,
        ip = sip.ip(),
        port = sip.port(),
        lo = rtp.0,
        hi = rtp.1,
    );
    c
}

/// A block of `n` UDP ports for this run, spread by process id.
fn port_block(n: u16) -> (u16, u16) {
    let lo = 20_000 + (std::process::id() % 200) as u16 * 200;
    (lo, lo + n - 1)
}

impl Stack {
    /// Makes the keys and starts switch, relay and server; `say` reports each step.
    pub fn start(mut say: impl FnMut(&str, Duration)) -> Result<Stack, Failure> {
        let dir = tempfile::Builder::new()
            .prefix("cig-demo.")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let d = |name: &str| dir.path().join(name);
        let kms = d("kms");
        let t = Instant::now();
        run(
            "cig-kms",
            &["init", "--dir", &path(&kms), "--domain", "demo.cig.example"],
        )?;
        let cert = run(
            "cig-kms",
            &[
                "switch-cert",
                "--dir",
                &path(&kms),
                "--name",
                "127.0.0.1",
                "--ip",
                "127.0.0.1",
            ],
        )?;
        let (Some(cert_file), Some(key_file)) = (field(&cert, "cert"), field(&cert, "key")) else {
            return Err(format!("cig-kms switch-cert printed no cert/key: {cert}"));
        };
        for identity in [GATEWAY_ID, PHONE_ID] {
            run(
                "cig-kms",
                &["issue", "--dir", &path(&kms), "--identity", identity],
            )?;
        }
        say(
            "KMS community, switch certificate, keys for tel:+8888 and tel:+4670123456",
            t.elapsed(),
        );

        let t = Instant::now();
        let switch_addr = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
        let (switch, _) = start(
            "cig-crs",
            &[
                "--listen".into(),
                switch_addr.to_string(),
                "--cert".into(),
                cert_file.to_owned(),
                "--key".into(),
                key_file.to_owned(),
                "--kpak-from".into(),
                path(&kms),
                "--media-bind".into(),
                "127.0.0.1".into(),
                "--log".into(),
                path(&d("crs.log")),
            ],
            "cig-crs ready",
        )?;
        say(&format!("switch cig-crs on {switch_addr}"), t.elapsed());

        let t = Instant::now();
        let export = |identity: &str, name: &str| -> Result<(PathBuf, PathBuf), Failure> {
            let (bundle, code) = (d(&format!("{name}.bundle")), d(&format!("{name}.code")));
            run(
                "cig-kms",
                &[
                    "export",
                    "--dir",
                    &path(&kms),
                    "--identity",
                    identity,
                    "--out",
                    &path(&bundle),
                    "--switch",
                    &switch_addr.to_string(),
                    "--code-file",
                    &path(&code),
                ],
            )?;
            Ok((bundle, code))
        };
        let gateway_bundle = export(GATEWAY_ID, "gateway")?;
        let phone_bundle = export(PHONE_ID, "phone")?;
        let userdata = d("userdata");
        std::fs::create_dir_all(&userdata).map_err(|e| format!("{}: {e}", userdata.display()))?;
        run(
            "cig-cli",
            &[
                "set-key",
                "--bundle",
                &path(&gateway_bundle.0),
                "--code-file",
                &path(&gateway_bundle.1),
                "--userdata",
                &path(&userdata),
            ],
        )?;
        say(
            "key bundles exported; gateway keystore installed with cig-cli set-key",
            t.elapsed(),
        );

        let t = Instant::now();
        let rtp = port_block(200);
        let socket = d("relay.sock");
        let logs = d("logs");
        std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
        let (relay, _) = start(
            "cig-relay",
            &[
                "--control".into(),
                path(&socket),
                "--log-dir".into(),
                path(&logs),
                "--rtp-port-range".into(),
                rtp.0.to_string(),
                rtp.1.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--workers".into(),
                "1".into(),
            ],
            "cig-relay ready",
        )?;
        say("media relay cig-relay", t.elapsed());

        let t = Instant::now();
        let sip_addr = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
        let pbx_addr = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
        let conf = d("cig.conf");
        std::fs::write(&conf, config(sip_addr, pbx_addr, rtp))
            .map_err(|e| format!("{}: {e}", conf.display()))?;
        let mgmt_port = free_tcp_port();
        let (server, _) = start(
            "cig-server",
            &[
                "--config".into(),
                path(&conf),
                "--userdata".into(),
                path(&userdata),
                "--log-dir".into(),
                path(&logs),
                "--relay-socket".into(),
                path(&socket),
                "--mgmt-port".into(),
                mgmt_port.to_string(),
                "--notify".into(),
                path(&d("notify.sh")),
            ],
            "cig-server ready",
        )?;
        say(
            &format!(
                "gateway cig-server: SIP on {sip_addr}, registered at the switch as tel:+8888"
            ),
            t.elapsed(),
        );

        Ok(Stack {
            dir,
            server,
            relay,
            switch,
            sip_addr,
            pbx_addr,
            mgmt_port,
            phone_bundle,
        })
    }

    /// Starts the secure phone with `args` after its keys.
    pub fn phone(&self, args: &[String]) -> Result<Proc, Failure> {
        let mut all = vec![
            "--bundle".to_owned(),
            path(&self.phone_bundle.0),
            "--code-file".to_owned(),
            path(&self.phone_bundle.1),
            "--media-ip".to_owned(),
            "127.0.0.1".to_owned(),
            "--json".to_owned(),
        ];
        all.extend_from_slice(args);
        Ok(Proc::spawn(Command::new(tool("cig-phone")?).args(&all)))
    }

    /// A log file of the gateway.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join("logs").join(name)).unwrap_or_default()
    }

    /// Stops the server, relay and switch with SIGTERM; whether all exited cleanly.
    pub fn stop(&mut self) -> bool {
        let grace = Duration::from_secs(10);
        // Every process is stopped, whatever the one before did.
        let stopped: Vec<bool> = [&mut self.server, &mut self.relay, &mut self.switch]
            .into_iter()
            .map(|p| p.terminate(grace).is_some_and(|s| s.success()))
            .collect();
        stopped.iter().all(|&ok| ok)
    }
}
