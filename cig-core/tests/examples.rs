//! Every configuration example of the manual (examples/conf/) parses with exactly the
//! expected warnings, prints back to an equivalent configuration, and the faithful copy of the
//! simple example fails with the "did you mean" hint.

use std::path::PathBuf;

use cig_core::conf::{self, InterfaceKind, Loaded, Transport};

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/conf")
        .join(name)
}

/// Parses `examples/conf/NAME` under the display name `NAME`.
fn parse(name: &str) -> Result<Loaded, conf::Diagnostics> {
    let text = std::fs::read_to_string(path(name)).unwrap();
    conf::parse(&text, name)
}

/// Asserts NAME parses with exactly `warnings` (headlines), and that printing it gives a file
/// that parses to the same model without the misspelling warnings.
fn check(name: &str, warnings: &[&str]) -> Loaded {
    let loaded = parse(name).unwrap_or_else(|d| panic!("{name} fails:\n{d}"));
    let got: Vec<String> = loaded.warnings.iter().map(|w| w.headline()).collect();
    assert_eq!(got, warnings, "{name}");
    let printed = loaded.config.to_string();
    let again = conf::parse(&printed, "printed").unwrap_or_else(|d| panic!("{printed}\n{d}"));
    assert_eq!(again.config, loaded.config, "{name} round trip");
    // Printing writes the canonical spellings, so only semantic warnings remain.
    let semantic = |l: &Loaded| -> Vec<String> {
        l.warnings
            .iter()
            .map(|w| w.message.clone())
            .filter(|m| m.starts_with("translation uses"))
            .collect()
    };
    let all_again: Vec<String> = again.warnings.iter().map(|w| w.message.clone()).collect();
    assert_eq!(all_again, semantic(&loaded), "{name}");
    loaded
}

#[test]
fn simple_repaired() {
    let c = check("simple.conf", &[]).config;
    let sip = c.interface(InterfaceKind::Sip).unwrap();
    assert_eq!(sip.extension_maps, ["mapsip2tel"]);
    assert_eq!(sip.source_maps, ["srctel2sip"]);
    assert_eq!(sip.bind, Some("192.168.1.1".parse().unwrap()));
    assert_eq!(sip.rtp_port_range, Some((1024, 2048)));
    assert!(sip.messaging);
    let tel = c.interface(InterfaceKind::Tel).unwrap();
    assert!(tel.source_maps.is_empty() && !tel.messaging);
    let e = &c.map("mapsip2tel").unwrap().entries[0];
    assert_eq!(e.sip.as_ref().unwrap().as_str(), "sip:9{SIPEXT}@secure.com");
    assert_eq!(e.tel.as_ref().unwrap().as_str(), "tel:+{SIPEXT}");
}

#[test]
fn simple_as_printed_in_the_manual_fails_with_did_you_mean() {
    let d = parse("simple-manual.conf").unwrap_err();
    assert_eq!(d.error_count(), 1, "{d}");
    let e = d.errors().next().unwrap();
    assert_eq!(
        e.headline(),
        "simple-manual.conf:28:22: error: undefined map `srcsip2tel`"
    );
    assert_eq!(e.help.as_deref(), Some("did you mean `srctel2sip`?"));
    assert_eq!(e.source_line, "          source map srcsip2tel;");
    assert_eq!(e.width, "srcsip2tel".len());
}

#[test]
fn outline() {
    let c = check("outline.conf", &[]).config;
    let tel = c.interface(InterfaceKind::Tel).unwrap();
    assert_eq!(tel.rtp_port_range, Some((20000, 30000)));
    assert_eq!(tel.source_maps, ["srcmap"]);
}

#[test]
fn authentication() {
    let c = check("authentication.conf", &[]).config;
    let a = c.auth("pbxaccount1").unwrap();
    assert_eq!(a.user, "user-id");
    assert_eq!(a.password.expose(), "password");
    assert!(!format!("{a:?}").contains("\"password\""));
    let e = &c.map("maptel2sipauth").unwrap().entries[0];
    assert_eq!(e.auth.as_deref(), Some("pbxaccount1"));
    let tel = c.interface(InterfaceKind::Tel).unwrap();
    assert_eq!(tel.extension_maps, ["maptel2sipauth", "maptel2sip"]);
}

#[test]
fn elaborate_with_the_manuals_misspellings() {
    let c = check(
        "elaborate.conf",
        &[
            "elaborate.conf:16:17: warning: whitespace inside URI template removed",
            "elaborate.conf:27:18: warning: whitespace inside URI template removed",
            "elaborate.conf:60:13: warning: `rtp port range` read as `rtp_port_range`",
        ],
    )
    .config;
    let e = &c.map("maptel2sip").unwrap().entries[0];
    assert_eq!(e.tel.as_ref().unwrap().as_str(), "tel:+8888;{series}");
    let sip = c.interface(InterfaceKind::Sip).unwrap();
    assert_eq!(sip.rtp_port_range, Some((1024, 2048)));
    assert_eq!(
        c.interface(InterfaceKind::Tel).unwrap().source_maps,
        ["srcsip2tel"]
    );
}

#[test]
fn alternative_deployment_two_switch_instances() {
    let c = check("alternative-deployment.conf", &[]).config;
    let tel = c.interface(InterfaceKind::Tel).unwrap();
    let ip = |s: &str| s.parse().unwrap();
    assert_eq!(
        tel.rtp_remote_addr_override,
        [
            (ip("46.16.234.56"), ip("192.168.1.15")),
            (ip("46.16.235.34"), ip("192.168.1.16")),
        ]
    );
    assert_eq!(
        tel.rtp_remote_override(ip("46.16.235.34")),
        Some(ip("192.168.1.16"))
    );
    assert_eq!(tel.rtp_remote_override(ip("192.168.1.16")), None);
}

#[test]
fn mailboxes() {
    let c = check("mailboxes.conf", &[]).config;
    assert_eq!(c.mailboxes.read.len(), 1);
    assert_eq!(c.mailboxes.write.len(), 2);
    let r = &c.mailboxes.read[0];
    assert_eq!(r.path, PathBuf::from("/path/to/read/mailbox"));
    assert_eq!(r.maps.map_from, "example_map1");
    assert_eq!(r.maps.map_to, "example_map2");
    assert_eq!(c.translate_map("example_map4").unwrap().rules.len(), 2);
}

#[test]
fn migration_with_the_manuals_misspellings() {
    let w = |line: u32, col: u32, msg: &str| format!("migration.conf:{line}:{col}: warning: {msg}");
    let ws = "whitespace inside URI template removed";
    let tm = "`translate map` read as `translate_map`";
    let mf = "`map from` read as `map_from`";
    let mt = "`map to` read as `map_to`";
    let expected = [
        w(7, 16, ws),
        w(13, 17, ws),
        w(26, 1, tm),
        w(28, 19, ws),
        w(31, 1, tm),
        w(36, 1, tm),
        w(
            39,
            25,
            "translation uses `{discard}`, which the match side never captures; it expands empty",
        ),
        w(41, 1, tm),
        w(49, 13, mf),
        w(49, 22, tm),
        w(50, 13, mt),
        w(50, 20, tm),
        w(54, 13, mf),
        w(54, 22, tm),
        w(55, 13, mt),
        w(55, 20, tm),
    ];
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    let c = check("migration.conf", &expected).config;
    let names: Vec<&str> = c.translate_maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["telmap", "telsrc", "sipsrc", "sipmap"]);
    assert_eq!(c.mailboxes.write[0].maps.map_to, "telmap");
    assert_eq!(
        c.translate_map("telmap").unwrap().rules[0].match_.as_str(),
        "tel:+8888;{series}"
    );
}

#[test]
fn smpp() {
    let c = check("smpp.conf", &[]).config;
    assert_eq!(c.message_centers.len(), 2);
    let m = &c.message_centers[0];
    assert_eq!(
        (m.hostname.as_str(), m.port, m.user.as_str()),
        ("smsc.example.com", 2775, "cig")
    );
    assert_eq!(m.password.expose(), "secret");
    assert_eq!(m.read.as_ref().unwrap().map_from, "msisdn2cig");
    assert_eq!(m.write.as_ref().unwrap().map_to, "cig2msisdn");
    assert!(c.message_centers[1].read.is_none());
}

#[test]
fn sip_additions() {
    let src = r#"
        map m { entry e sip "sip:{x}@pbx" tel "tel:+1{x}"; }
        interfaces {
            sip {
                extension map m;
                bind ::1;
                port 5070;
                transport tcp;
                allow 192.168.1.0/24 10.0.0.1 2001:db8::/32;
            }
        }
        log_dir "/var/log/cig";
    "#;
    let c = conf::parse(src, "x").unwrap().config;
    let sip = c.interface(InterfaceKind::Sip).unwrap();
    assert_eq!(sip.port, Some(5070));
    assert_eq!(sip.transports, [Transport::Tcp]);
    assert!(sip.uses_transport(Transport::Tcp) && !sip.uses_transport(Transport::Udp));
    assert!(sip.allows("192.168.1.77".parse().unwrap()));
    assert!(sip.allows("10.0.0.1".parse().unwrap()));
    assert!(!sip.allows("10.0.0.2".parse().unwrap()));
    assert_eq!(c.log_dir, Some(PathBuf::from("/var/log/cig")));
    assert_eq!(conf::parse(&c.to_string(), "y").unwrap().config, c);
}

#[test]
fn load_reports_missing_and_non_utf8_files() {
    let d = conf::load(&path("does-not-exist.conf")).unwrap_err();
    assert!(d.items[0].headline().contains("error: cannot read:"), "{d}");
    let dir = std::env::temp_dir().join(format!("cig-core-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("latin1.conf");
    std::fs::write(&f, b"// ok\nlog_dir \"/tmp/\xe5\";\n").unwrap();
    let d = conf::load(&f).unwrap_err();
    assert!(
        d.items[0]
            .headline()
            .ends_with("error: invalid UTF-8 at line 2 (byte 20)"),
        "{d}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
