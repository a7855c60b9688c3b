//! Several gateways behind a standard SIP load balancer (docs/operations.md "Several gateways
//! behind Kamailio"): Debian's kamailio, run in the foreground with the shipped
//! packaging/kamailio/kamailio.cfg (dispatcher module, OPTIONS probing once a second here), its
//! own runtime directory and control socket, in front of two cig-server gateways, each with its
//! own relay and identity, one switch and one secure phone, all on loopback. sipp's calls through
//! Kamailio reach both gateways; once one gateway is stopped, Kamailio's probing marks it down
//! and every new call goes to the other.

mod common;
mod scaling;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cig_testkit::{Proc, free_tcp_port, free_udp_port, wait_until};
use common::{GW, T};
use scaling::Site;

const GW2: &str = "tel:+8887";
const PHONE: &str = "tel:+4670123456";

/// Kamailio in the foreground (`-DD -E`, logging to stderr); stopped with SIGTERM (which
/// also stops its worker processes) when dropped.
struct Kamailio(Proc);

impl Kamailio {
    fn start(dir: &Path, port: u16, gateways: &[u16]) -> Kamailio {
        let run = dir.join("kamailio");
        std::fs::create_dir_all(&run).unwrap();
        let list = run.join("dispatcher.list");
        let lines: String = gateways
            .iter()
            .map(|p| format!("1 sip:127.0.0.1:{p}\n"))
            .collect();
        std::fs::write(&list, lines).unwrap();
        let cfg =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/kamailio/kamailio.cfg");
        let define = |k: &str, v: String| ["-A".to_owned(), format!("{k}={v}")];
        let mut c = Command::new("kamailio");
        c.args(["-DD", "-E", "-m", "32", "-M", "4", "-f"])
            .arg(&cfg)
            .arg("-Y")
            .arg(&run)
            .arg("-P")
            .arg(run.join("kamailio.pid"))
            .args(define("LISTEN_PORT", port.to_string()))
            .args(define("DISPATCHER_LIST", format!("\"{}\"", list.display())))
            .args(define(
                "CTL_SOCKET",
                format!("\"unix:{}\"", run.join("ctl.sock").display()),
            ))
            .args(define("PROBE_INTERVAL", "1".into()))
            .args(define("FR_TIMER", "1000".into()))
            .args(define("CHILDREN", "1".into()));
        Kamailio(Proc::spawn(&mut c))
    }

    fn log(&self) -> String {
        self.0.stderr()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let _ = self.0.terminate(Duration::from_secs(10));
    }
}

/// One gateway: its relay and cig-server, both stopped when dropped.
struct Gateway {
    dir: PathBuf,
    sip_port: u16,
    _relay: Proc,
    server: Proc,
}

impl Gateway {
    fn start(d: &Site, name: &str, identity: &str) -> Gateway {
        let dir = d.path(name);
        let relay = common::spawn_relay(&dir);
        let sip_port = scaling::sip_port();
        d.userdata(&dir, identity);
        let conf = scaling::gateway_conf(identity, sip_port, "");
        let server = scaling::server(&dir, &conf, sip_port, free_tcp_port());
        Gateway {
            dir,
            sip_port,
            _relay: relay,
            server,
        }
    }

    /// Calls this gateway answered (session.log `talk`).
    fn talks(&self) -> usize {
        scaling::session_states(&self.dir)
            .iter()
            .filter(|s| *s == "talk")
            .count()
    }
}

#[test]
fn kamailio_dispatcher_spreads_calls_and_skips_a_stopped_gateway() {
    let d = Site::start(&[GW, GW2, PHONE]);
    let a = Gateway::start(&d, "gw-a", GW);
    let mut b = Gateway::start(&d, "gw-b", GW2);
    let _phone = d.phone(PHONE);
    let port = free_udp_port();
    let kamailio = Kamailio::start(d.dir.path(), port, &[a.sip_port, b.sip_port]);
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/uac_via_proxy.xml");
    let target = format!("127.0.0.1:{port}");
    let calls = |n: u32| {
        scaling::sipp_uac(d.dir.path(), &target, "94670123456", n, Some(&scenario), 0)
            .status()
            .expect("sipp (scripts/install-test-deps.sh installs it)")
            .success()
    };
    let (a_dir, b_dir) = (a.dir.clone(), b.dir.clone());
    let explain = |what: &str| {
        format!(
            "{what}\nkamailio:\n{}\ngateway a:\n{}\ngateway b:\n{}",
            kamailio.log(),
            scaling::cig_log(&a_dir),
            scaling::cig_log(&b_dir)
        )
    };

    // Round robin over both gateways (sipp's INVITE retransmissions cover Kamailio's start).
    assert!(calls(4), "{}", explain("calls through Kamailio failed"));
    assert_eq!(a.talks() + b.talks(), 4, "{}", explain("4 calls answered"));
    assert!(
        a.talks() >= 1 && b.talks() >= 1,
        "a {} b {}: {}",
        a.talks(),
        b.talks(),
        explain("both gateways take calls")
    );

    // Gateway b stops: the next probe finds it gone.
    assert!(b.server.terminate(T).is_some_and(|s| s.success()));
    let stopped = Instant::now();
    let down = format!("CIG gateway down: sip:127.0.0.1:{}", b.sip_port);
    assert!(
        wait_until(T, || kamailio.log().contains(&down)),
        "{}",
        explain("gateway b not marked down")
    );
    eprintln!(
        "gateway stopped -> Kamailio marked it down in {:?}",
        stopped.elapsed()
    );
    let (a_before, b_before) = (a.talks(), b.talks());
    assert!(calls(3), "{}", explain("calls with gateway b down"));
    assert_eq!(a.talks(), a_before + 3, "{}", explain("all new calls on a"));
    assert_eq!(b.talks(), b_before);
}
