//! One cig-server driving several cig-relays (docs/relay-control.md "Transports", docs/config.md
//! `relay`): a local relay on its Unix socket and a remote one over TCP with mutual TLS, the
//! certificates made by `cig-kms relay-cert`, with the switch cig-crs, cig-phone and sipp on
//! loopback. Calls spread over both relays; killing one ends only its calls (both legs told,
//! cig.log and session.log lines), new calls go to the other, and the lost relay takes calls
//! again once it is back. Relays whose certificates are not trusted, either way, are refused.

mod common;
mod scaling;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use cig_testkit::{Proc, Signal, bin, free_tcp_port, wait_until};
use common::{GW, T};
use scaling::{Site, cig_log, relay_cert, relay_sessions};

const PHONE1: &str = "tel:+4670123456";
const PHONE2: &str = "tel:+4670123457";

/// The `status` row of relay `name`: address, state, engines, sessions.
fn relay_row(mgmt_port: u16, name: &str) -> Option<Vec<String>> {
    let text = common::status(&bin("cig-cli"), mgmt_port)?;
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|cells| cells.len() == 5 && cells[0] == name)
        .map(|cells| cells[1..].to_vec())
}

/// Waits until `status` shows relay `name` in `state`; the row.
fn wait_relay(mgmt_port: u16, name: &str, state: &str, server: &Proc) -> Vec<String> {
    let mut last = None;
    let ok = wait_until(T, || {
        last = relay_row(mgmt_port, name);
        last.as_ref().is_some_and(|r| r[1] == state)
    });
    assert!(
        ok,
        "relay {name} not {state}: {last:?}; cig-server: {}",
        server.stderr()
    );
    last.unwrap_or_default()
}

/// A TLS relay's arguments: control port on 127.0.0.1:`port`, its certificate and key, and the
/// CA its controllers' client certificates must chain to.
fn tls_args(port: u16, cert: &str, key: &str, client_ca: &str) -> Vec<String> {
    [
        "--control-tcp",
        &format!("127.0.0.1:{port}"),
        "--tls-cert",
        cert,
        "--tls-key",
        key,
        "--tls-client-ca",
        client_ca,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A `relay NAME { address …; }` section of cig.conf.
fn remote_section(name: &str, port: u16, ca: &str, cert: &str, key: &str) -> String {
    format!(
        "relay {name} {{\n    address 127.0.0.1;\n    port {port};\n    ca \"{ca}\";\n    \
         cert \"{cert}\";\n    key \"{key}\";\n}}\n"
    )
}

/// One short call from sipp to `service` through the gateway on `sip_port`: did it succeed?
fn short_call(d: &Site, sip_port: u16, service: &str) -> bool {
    let target = format!("127.0.0.1:{sip_port}");
    scaling::sipp_uac(d.dir.path(), &target, service, 1, None, 0)
        .status()
        .expect("sipp (scripts/install-test-deps.sh installs it)")
        .success()
}

#[test]
fn calls_spread_over_a_local_and_a_tls_relay_and_survive_losing_one() {
    let d = Site::start(&[GW, PHONE1, PHONE2]);
    let kms = d.path("kms");
    let [ca, cert, key] = relay_cert(&kms, "127.0.0.1", false);
    let [_, client_cert, client_key] = relay_cert(&kms, "cig-server", true);
    let (local_dir, remote_dir) = (d.path("relay-local"), d.path("relay-remote"));
    let tcp = free_tcp_port();
    let remote_args = tls_args(tcp, &cert, &key, &ca);
    let remote_args: Vec<&str> = remote_args.iter().map(String::as_str).collect();
    let _local = common::spawn_relay(&local_dir);
    let remote = common::spawn_relay_with(&remote_dir, &remote_args);
    let (sip, mgmt) = (scaling::sip_port(), free_tcp_port());
    let relays = format!(
        "relay local {{ socket \"{}\"; }}\n{}",
        local_dir.join("relay.sock").display(),
        remote_section("remote", tcp, &ca, &client_cert, &client_key)
    );
    let gw = d.path("gw");
    d.userdata(&gw, GW);
    let server = scaling::server(&gw, &scaling::gateway_conf(GW, sip, &relays), sip, mgmt);
    wait_relay(mgmt, "local", "CONNECTED", &server);
    let row = wait_relay(mgmt, "remote", "CONNECTED", &server);
    assert_eq!(row[0], format!("tls:127.0.0.1:{tcp}"));
    assert_eq!(row[3], "0", "no sessions yet");

    // Two calls at once: one on each relay (the second goes to the emptier one).
    let mut phone1 = d.phone(PHONE1);
    let mut phone2 = d.phone(PHONE2);
    let target = format!("127.0.0.1:{sip}");
    let _call1 = Proc::spawn(&mut scaling::sipp_uac(
        d.dir.path(),
        &target,
        "94670123456",
        1,
        None,
        120_000,
    ));
    phone1
        .wait_line(|l| l.contains("state=TALK"), T)
        .unwrap_or_else(|| panic!("call 1 not answered; cig.log:\n{}", cig_log(&gw)));
    let mut call2 = Proc::spawn(&mut scaling::sipp_uac(
        d.dir.path(),
        &target,
        "94670123457",
        1,
        None,
        120_000,
    ));
    phone2
        .wait_line(|l| l.contains("state=TALK"), T)
        .unwrap_or_else(|| panic!("call 2 not answered; cig.log:\n{}", cig_log(&gw)));
    assert_eq!(relay_sessions(&local_dir), 1);
    assert_eq!(relay_sessions(&remote_dir), 1);
    assert_eq!(relay_row(mgmt, "local").unwrap()[3], "1");
    assert_eq!(relay_row(mgmt, "remote").unwrap()[3], "1");

    // The remote relay dies: call 2 (its media was there) ends on both legs, call 1 goes on.
    let killed = Instant::now();
    remote.signal(Signal::KILL);
    phone2
        .wait_line(|l| l.contains("state=HANGUP"), T)
        .unwrap_or_else(|| panic!("secure leg of call 2 still up; cig.log:\n{}", cig_log(&gw)));
    assert!(
        call2.wait_exit(T).is_some(),
        "the PBX leg of call 2 got no BYE"
    );
    eprintln!(
        "relay killed -> its call ended on both legs in {:?}",
        killed.elapsed()
    );
    wait_relay(mgmt, "remote", "DISCONNECTED", &server);
    assert_eq!(relay_row(mgmt, "local").unwrap()[1], "CONNECTED");
    assert!(
        phone1
            .wait_line(|l| l.contains("state=HANGUP"), Duration::from_secs(1))
            .is_none(),
        "call 1 on the local relay ended too"
    );
    let log = cig_log(&gw);
    assert!(
        log.contains("relay remote lost: ") && log.contains("ending its 1 calls"),
        "{log}"
    );
    assert!(
        log.contains(": relay remote lost; ending the call"),
        "{log}"
    );
    let states = scaling::session_states(&gw);
    assert_eq!(
        states.iter().filter(|s| *s == "hangup").count(),
        1,
        "{states:?}"
    );

    // New calls go to the local relay meanwhile.
    assert!(
        short_call(&d, sip, "94670123457"),
        "call while the remote relay is away; cig.log:\n{}",
        cig_log(&gw)
    );
    assert_eq!(relay_sessions(&local_dir), 2);

    // The remote relay comes back (same port): reconnected with back-off and used again, as
    // the emptier relay (call 1 still holds a session on the local one).
    let _remote = common::spawn_relay_with(&remote_dir, &remote_args);
    let back = Instant::now();
    wait_relay(mgmt, "remote", "CONNECTED", &server);
    eprintln!("relay back -> reconnected in {:?}", back.elapsed());
    assert!(
        short_call(&d, sip, "94670123457"),
        "call after the remote relay's return; cig.log:\n{}",
        cig_log(&gw)
    );
    assert_eq!(relay_sessions(&remote_dir), 2);
    assert_eq!(relay_sessions(&local_dir), 2);
}

#[test]
fn relays_with_untrusted_certificates_are_refused_both_ways() {
    let d = Site::start(&[GW, PHONE1]);
    let kms = d.path("kms");
    // A second community's relay CA: trusted by nobody here.
    let other = d.path("other-kms");
    common::run(Command::new(bin("cig-kms")).args([
        "init",
        "--dir",
        other.to_str().unwrap(),
        "--domain",
        "other.test",
    ]));
    let [ca, cert, key] = relay_cert(&kms, "127.0.0.1", false);
    let [_, client_cert, client_key] = relay_cert(&kms, "cig-server", true);
    let [_, rogue_cert, rogue_key] = relay_cert(&other, "127.0.0.1", false);
    let [_, stranger_cert, stranger_key] = relay_cert(&other, "cig-server", true);

    let local_dir = d.path("relay-local");
    let _local = common::spawn_relay(&local_dir);
    // "rogue" shows a certificate of the other CA: cig-server must refuse it.
    let (rogue_dir, rogue_port) = (d.path("relay-rogue"), free_tcp_port());
    let args = tls_args(rogue_port, &rogue_cert, &rogue_key, &ca);
    let _rogue = common::spawn_relay_with(
        &rogue_dir,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // "picky" is genuine but cig-server shows it a client certificate of the other CA: the
    // relay must refuse cig-server.
    let (picky_dir, picky_port) = (d.path("relay-picky"), free_tcp_port());
    let args = tls_args(picky_port, &cert, &key, &ca);
    let _picky = common::spawn_relay_with(
        &picky_dir,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let relays = format!(
        "relay local {{ socket \"{}\"; }}\n{}{}",
        local_dir.join("relay.sock").display(),
        remote_section("rogue", rogue_port, &ca, &client_cert, &client_key),
        remote_section("picky", picky_port, &ca, &stranger_cert, &stranger_key),
    );
    let (sip, mgmt) = (scaling::sip_port(), free_tcp_port());
    let gw = d.path("gw");
    d.userdata(&gw, GW);
    let server = scaling::server(&gw, &scaling::gateway_conf(GW, sip, &relays), sip, mgmt);
    wait_relay(mgmt, "local", "CONNECTED", &server);
    assert!(
        wait_until(T, || cig_log(&gw).contains(&format!(
            "relay rogue: TLS with 127.0.0.1:{rogue_port}: invalid peer certificate"
        ))),
        "cig.log:\n{}",
        cig_log(&gw)
    );
    assert!(
        wait_until(T, || fs::read_to_string(picky_dir.join("log/relay.log"))
            .unwrap_or_default()
            .contains(": TLS: invalid peer certificate")),
        "picky relay.log:\n{}",
        fs::read_to_string(picky_dir.join("log/relay.log")).unwrap_or_default()
    );
    assert!(
        wait_until(T, || cig_log(&gw).contains("relay picky: ")),
        "cig.log:\n{}",
        cig_log(&gw)
    );
    assert_eq!(relay_row(mgmt, "rogue").unwrap()[1], "DISCONNECTED");
    assert_eq!(relay_row(mgmt, "picky").unwrap()[1], "DISCONNECTED");

    // Calls all go to the one trusted relay.
    let _phone = d.phone(PHONE1);
    for _ in 0..2 {
        assert!(
            short_call(&d, sip, "94670123456"),
            "cig.log:\n{}",
            cig_log(&gw)
        );
    }
    assert_eq!(relay_sessions(&local_dir), 2);
    assert_eq!(relay_sessions(&rogue_dir), 0);
    assert_eq!(relay_sessions(&picky_dir), 0);
}

#[test]
fn a_relay_that_stops_answering_is_given_up_and_used_again_when_it_answers() {
    let d = Site::start(&[GW, PHONE1]);
    let (a_dir, b_dir) = (d.path("relay-a"), d.path("relay-b"));
    let a = common::spawn_relay(&a_dir);
    let _b = common::spawn_relay(&b_dir);
    let relays = format!(
        "relay a {{ socket \"{}\"; }}\nrelay b {{ socket \"{}\"; }}\n",
        a_dir.join("relay.sock").display(),
        b_dir.join("relay.sock").display()
    );
    let (sip, mgmt) = (scaling::sip_port(), free_tcp_port());
    let gw = d.path("gw");
    d.userdata(&gw, GW);
    let server = scaling::server(&gw, &scaling::gateway_conf(GW, sip, &relays), sip, mgmt);
    wait_relay(mgmt, "a", "CONNECTED", &server);
    wait_relay(mgmt, "b", "CONNECTED", &server);
    let mut phone = d.phone(PHONE1);
    let target = format!("127.0.0.1:{sip}");
    let mut call = Proc::spawn(&mut scaling::sipp_uac(
        d.dir.path(),
        &target,
        "94670123456",
        1,
        None,
        120_000,
    ));
    phone
        .wait_line(|l| l.contains("state=TALK"), T)
        .unwrap_or_else(|| panic!("call not answered; cig.log:\n{}", cig_log(&gw)));
    assert_eq!(
        relay_sessions(&a_dir),
        1,
        "the first call goes to the first relay"
    );

    // Relay a freezes (its socket stays open): its status probes go unanswered, it is given
    // up and its call ended; b stays.
    let frozen = Instant::now();
    a.signal(Signal::STOP);
    phone
        .wait_line(|l| l.contains("state=HANGUP"), T)
        .unwrap_or_else(|| panic!("call still up; cig.log:\n{}", cig_log(&gw)));
    assert!(call.wait_exit(T).is_some(), "the PBX leg got no BYE");
    eprintln!("relay frozen -> its call ended in {:?}", frozen.elapsed());
    assert!(
        cig_log(&gw).contains("relay a lost: no answer to status within 2 s; ending its 1 calls"),
        "{}",
        cig_log(&gw)
    );
    wait_relay(mgmt, "a", "DISCONNECTED", &server);
    assert_eq!(relay_row(mgmt, "b").unwrap()[1], "CONNECTED");

    // It thaws: reconnected and used again.
    a.signal(Signal::CONT);
    wait_relay(mgmt, "a", "CONNECTED", &server);
    assert!(short_call(&d, sip, "94670123456"), "{}", cig_log(&gw));
    assert_eq!(relay_sessions(&a_dir) + relay_sessions(&b_dir), 2);
}
