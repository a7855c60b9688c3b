//! The manual's Back-up and restore, end to end: a gateway with its keystore (installed with
//! `cig-cli set-key`) and cig.conf runs; `cig-cli backup`; both items are wiped (cig-server then
//! refuses to start); `cig-cli restore`; cig-server starts again with the same identity,
//! domain, SIP address and the same configuration in cig.log. Unprivileged, in a temp dir
//! (`cig-cli`'s own tests cover the archive format, damage and owners).

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use cig_testkit::{Proc, bin, free_tcp_port, free_udp_port};
use common::{T, bundle, conf, logged_config, run, status_field, wait_status};

/// Starts cig-server on `root`'s cig.conf and userdata.
fn server(root: &Path, dir: &Path, mgmt: u16) -> Proc {
    Proc::spawn(Command::new(bin("cig-server")).args([
        "--config",
        root.join("cig.conf").to_str().unwrap(),
        "--userdata",
        root.join("userdata").to_str().unwrap(),
        "--log-dir",
        dir.join("log").to_str().unwrap(),
        "--relay-socket",
        dir.join("relay.sock").to_str().unwrap(),
        "--mgmt-port",
        &mgmt.to_string(),
        "--notify",
        dir.join("no-notify-hook").to_str().unwrap(),
    ]))
}

#[test]
fn backup_wipe_restore_and_the_server_starts_with_the_same_identity_and_config() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let root = dir.join("opt-cig");
    let userdata = root.join("userdata");
    fs::create_dir_all(&userdata).unwrap();
    fs::set_permissions(
        &userdata,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    // No switch listens there: the gateway keeps trying, which `status` shows.
    let switch = format!("127.0.0.1:{}", free_tcp_port());
    let keys = bundle(dir, &switch);
    let cli = bin("cig-cli");
    run(Command::new(&cli).args([
        "set-key",
        "--bundle",
        keys.bundle.to_str().unwrap(),
        "--code-file",
        keys.code.to_str().unwrap(),
        "--userdata",
        userdata.to_str().unwrap(),
    ]));
    fs::write(root.join("cig.conf"), conf(free_udp_port())).unwrap();

    let mut relay = Proc::spawn(Command::new(bin("cig-relay")).args([
        "--control",
        dir.join("relay.sock").to_str().unwrap(),
        "--log-dir",
        dir.join("log").to_str().unwrap(),
        "--workers",
        "1",
    ]));
    relay
        .wait_line(|l| l.starts_with("cig-relay ready"), T)
        .unwrap_or_else(|| panic!("cig-relay: {}", relay.stderr()));

    let mgmt = free_tcp_port();
    let mut gw = server(&root, dir, mgmt);
    let before = wait_status(&cli, mgmt, &gw);
    let config_before = logged_config(&dir.join("log"));
    assert!(!config_before.is_empty());
    gw.terminate(T).expect("cig-server stops on SIGTERM");
    let conf_before = fs::read(root.join("cig.conf")).unwrap();

    let archive = dir.join("backup.tar");
    run(Command::new(&cli).args([
        "backup",
        "--root",
        root.to_str().unwrap(),
        "--out",
        archive.to_str().unwrap(),
    ]));
    fs::remove_dir_all(&userdata).unwrap();
    fs::remove_file(root.join("cig.conf")).unwrap();
    let mut wiped = server(&root, dir, mgmt);
    assert!(
        wiped.wait_exit(T).is_some_and(|s| s.code() == Some(1)),
        "cig-server must refuse to start without cig.conf"
    );

    let out = run(Command::new(&cli).args([
        "restore",
        archive.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
    ]));
    assert!(out.contains("systemctl restart cig-server"), "{out}");
    assert_eq!(fs::read(root.join("cig.conf")).unwrap(), conf_before);

    let gw = server(&root, dir, mgmt);
    let after = wait_status(&cli, mgmt, &gw);
    for label in ["Public ID", "Security Domain", "SIP Bind address"] {
        assert_eq!(
            status_field(&after, label),
            status_field(&before, label),
            "{label}"
        );
    }
    assert_eq!(status_field(&after, "Public ID"), common::GW);
    assert_eq!(status_field(&after, "Security Domain"), common::DOMAIN);
    assert_eq!(logged_config(&dir.join("log")), config_before);
}
