//! The management verbs run as a process against a real `cig_mgmt::serve` with a test
//! Provider (in this test process): exact text layouts, exact `--json`, `echo`, `help`, the
//! not-running message and exit code, and interactive mode through a pty.

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use cig_mgmt::*;
use expectrl::session::OsSession;
use expectrl::{Eof, Expect, Regex, Session};

/// A gateway with two calls, a messaging descriptor and a call session.
struct TestGateway;

impl Provider for TestGateway {
    fn calls(&self) -> Vec<CallRow> {
        vec![
            CallRow {
                in_from: "tel:+46701234567".into(),
                in_to: "tel:+8888;101".into(),
                out_from: "sip:+46701234567@pbx.com".into(),
                out_to: "sip:101@pbx.com".into(),
                state: CallState::Answer,
            },
            CallRow {
                in_from: "sip:101@pbx.com".into(),
                in_to: "sip:94670123456@secure.com".into(),
                out_from: "tel:+8888;101".into(),
                out_to: "tel:+4670123456".into(),
                state: CallState::Ring,
            },
        ]
    }
    fn umsg(&self) -> Vec<UmsgRow> {
        vec![
            UmsgRow {
                from: "tel:+8888".into(),
                to: "*".into(),
                state: "MSG".into(),
                time_secs: 43321,
                id: "AAAAAAAAAAAAAAAA".into(),
            },
            UmsgRow {
                from: "tel:+46701234567".into(),
                to: "tel:+8888;101".into(),
                state: "TALK".into(),
                time_secs: 429,
                id: "SxU+cQAE66+12m5j".into(),
            },
        ]
    }
    fn status(&self) -> Status {
        Status {
            version: "0.1.0".into(),
            relay: RelayStatus {
                connected: true,
                engines_available: 3,
                engines_total: 3,
                relays: Vec::new(),
            },
            umsg: UmsgStatus {
                identity: "tel:+12345".into(),
                domain: "DOMAIN".into(),
                switch_address: "192.168.1.1".into(),
                connection: LinkState::Connected,
                crypto_state: "OK".into(),
                period: "2026-11".into(),
            },
            sip: SipStatus {
                bind: "192.168.1.2".into(),
            },
        }
    }
}

const CALLS: &str = "\
IN-FROM           IN-TO                       OUT-FROM                  OUT-TO           STATE
tel:+46701234567  tel:+8888;101               sip:+46701234567@pbx.com  sip:101@pbx.com  ANSWER
sip:101@pbx.com   sip:94670123456@secure.com  tel:+8888;101             tel:+4670123456  RING
";

const UMSG: &str = "\
FROM              TO             STATE  TIME   ID
tel:+8888         *              MSG    43321  AAAAAAAAAAAAAAAA
tel:+46701234567  tel:+8888;101  TALK   429    SxU+cQAE66+12m5j
";

const STATUS: &str = "\
CIG Interconnect Gateway v0.1.0

Relay connection state    CONNECTED
Crypto engines available  3/3

UMSG status:
------------
Public ID                 tel:+12345
Security Domain           DOMAIN
CRS Address               192.168.1.1
Connection state          CONNECTED
Crypto state              OK
Crypto period             2026-11

SIP status:
-----------
SIP Bind address          192.168.1.2
";

/// The management server on a free loopback port, on its own runtime.
struct Server {
    rt: tokio::runtime::Runtime,
    server: Option<MgmtServer>,
}

impl Server {
    fn start() -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(serve(0, Arc::new(TestGateway))).unwrap();
        Server {
            rt,
            server: Some(server),
        }
    }

    fn port(&self) -> u16 {
        self.server.as_ref().unwrap().local_addr().port()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

fn cli(port: u16, args: &[&str]) -> Output {
    // `--port` first: `echo` takes every word after it.
    Command::new(env!("CARGO_BIN_EXE_cig-cli"))
        .arg("--port")
        .arg(port.to_string())
        .args(args)
        .output()
        .unwrap()
}

/// Runs a verb that must succeed; returns its stdout.
fn ok(port: u16, args: &[&str]) -> String {
    let out = cli(port, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn show_and_status_print_the_manual_layouts() {
    let s = Server::start();
    assert_eq!(ok(s.port(), &["show", "call"]), CALLS);
    assert_eq!(ok(s.port(), &["show", "umsg"]), UMSG);
    assert_eq!(ok(s.port(), &["status"]), STATUS);
}

#[test]
fn json_output_is_the_documented_objects() {
    let s = Server::start();
    assert_eq!(
        ok(s.port(), &["show", "call", "--json"]),
        concat!(
            r#"[{"in_from":"tel:+46701234567","in_to":"tel:+8888;101","out_from":"sip:+46701234567@pbx.com","out_to":"sip:101@pbx.com","state":"ANSWER"},"#,
            r#"{"in_from":"sip:101@pbx.com","in_to":"sip:94670123456@secure.com","out_from":"tel:+8888;101","out_to":"tel:+4670123456","state":"RING"}]"#,
            "\n"
        )
    );
    assert_eq!(
        ok(s.port(), &["show", "umsg", "--json"]),
        concat!(
            r#"[{"from":"tel:+8888","to":"*","state":"MSG","time_secs":43321,"id":"AAAAAAAAAAAAAAAA"},"#,
            r#"{"from":"tel:+46701234567","to":"tel:+8888;101","state":"TALK","time_secs":429,"id":"SxU+cQAE66+12m5j"}]"#,
            "\n"
        )
    );
    assert_eq!(
        ok(s.port(), &["status", "--json"]),
        concat!(
            r#"{"version":"0.1.0","relay":{"connected":true,"engines_available":3,"engines_total":3},"#,
            r#""umsg":{"identity":"tel:+12345","domain":"DOMAIN","switch_address":"192.168.1.1","connection":"CONNECTED","crypto_state":"OK","period":"2026-11"},"#,
            r#""sip":{"bind":"192.168.1.2"}}"#,
            "\n"
        )
    );
}

#[test]
fn echo_goes_through_the_server() {
    let s = Server::start();
    assert_eq!(
        ok(s.port(), &["echo", "hello", "-n", "gateway"]),
        "hello -n gateway\n"
    );
}

#[test]
fn help_lists_the_manual_verbs() {
    // `help` needs no server.
    let out = ok(cig_testkit::free_tcp_port(), &["help"]);
    assert!(out.starts_with("CIG Interconnect Gateway\n"), "{out}");
    for line in [
        "  echo <anything>            echo test functionality\n",
        "  show call/umsg             show active calls or umsg sessions\n",
        "  read <FILE>                test read a configuration file\n",
        "  help                       shows this help\n",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
}

#[test]
fn without_a_server_the_verbs_say_so_and_exit_69() {
    let port = cig_testkit::free_tcp_port();
    for args in [
        &["show", "call"][..],
        &["show", "umsg", "--json"],
        &["status"],
        &["echo", "x"],
    ] {
        let out = cli(port, args);
        assert_eq!(out.status.code(), Some(69), "{args:?}");
        assert!(out.stdout.is_empty());
        assert_eq!(
            String::from_utf8(out.stderr).unwrap(),
            format!("cig-cli: cig-server is not running (no answer on 127.0.0.1:{port})\n")
        );
    }
}

#[test]
fn a_bad_verb_is_a_usage_error() {
    let out = cli(cig_testkit::free_tcp_port(), &["show", "everything"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `cig-cli` alone, in a pseudo-terminal.
fn interactive(port: u16) -> OsSession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cig-cli"));
    cmd.arg("--port").arg(port.to_string()).env("TERM", "xterm");
    let mut p = Session::spawn(cmd).unwrap();
    p.set_expect_timeout(Some(Duration::from_secs(10)));
    p
}

#[test]
fn interactive_prompt_runs_verbs_completes_and_recalls_history() {
    let s = Server::start();
    let mut p = interactive(s.port());
    p.expect("cig-cli$ ").unwrap();
    p.send_line("show call").unwrap();
    p.expect("sip:94670123456@secure.com  tel:+8888;101             tel:+4670123456  RING")
        .unwrap();
    p.expect("cig-cli$ ").unwrap();
    // Tab completes `sta` to `status `.
    p.send("sta\t").unwrap();
    p.send("\r").unwrap();
    p.expect("Crypto engines available  3/3").unwrap();
    p.expect("SIP Bind address          192.168.1.2").unwrap();
    p.expect("cig-cli$ ").unwrap();
    // Up arrow twice recalls `show call`.
    p.send("\x1b[A\x1b[A\r").unwrap();
    p.expect("tel:+46701234567  tel:+8888;101               sip:+46701234567@pbx.com  sip:101@pbx.com  ANSWER")
        .unwrap();
    p.expect("cig-cli$ ").unwrap();
    // Errors do not end the session.
    p.send_line("show nothing").unwrap();
    // (clap colours its messages on a terminal)
    p.expect(Regex("invalid value .{0,12}nothing")).unwrap();
    p.expect("cig-cli$ ").unwrap();
    p.send_line("echo still here").unwrap();
    p.expect("still here").unwrap();
    p.expect("cig-cli$ ").unwrap();
    p.send_line("exit").unwrap();
    p.expect(Eof).unwrap();
}

#[test]
fn interactive_prompt_reports_a_stopped_server_and_goes_on() {
    let port = cig_testkit::free_tcp_port();
    let mut p = interactive(port);
    p.expect("cig-cli$ ").unwrap();
    p.send_line("status").unwrap();
    p.expect(format!("cig-server is not running (no answer on 127.0.0.1:{port})").as_str())
        .unwrap();
    p.expect("cig-cli$ ").unwrap();
    p.send_line("help").unwrap();
    p.expect("shows this help").unwrap();
    // Ctrl-D leaves.
    p.send("\x04").unwrap();
    p.expect(Eof).unwrap();
}

#[test]
fn an_error_reply_is_printed_and_exits_1() {
    let s = Server::start();
    // Occupy every connection slot: the next connection is answered "busy".
    let held: Vec<Client> = (0..cig_mgmt::server::MAX_CONNECTIONS)
        .map(|_| {
            let mut c = Client::connect(s.port(), Duration::from_secs(5)).unwrap();
            c.echo("hold").unwrap();
            c
        })
        .collect();
    let out = cli(s.port(), &["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "cig-cli: cig-server: busy: 32 management connections open\n"
    );
    drop(held);
}
