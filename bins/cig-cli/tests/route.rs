//! `cig-cli route` and `cig-cli translate` run as processes on the manual's example
//! configurations: exact output, exit codes, diagnostics for a bad configuration.

use std::path::PathBuf;
use std::process::Command;

fn conf(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/conf")
        .join(name)
}

/// Runs `cig-cli ARGS…`: (exit code, stdout, stderr).
fn cli(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cig-cli"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn route(
    config: &str,
    on: &str,
    from: &str,
    to: &str,
    json: bool,
) -> (Option<i32>, String, String) {
    let path = conf(config);
    let mut args = vec![
        "route",
        "--config",
        path.to_str().unwrap(),
        "--on",
        on,
        "--from",
        from,
        "--to",
        to,
    ];
    if json {
        args.push("--json");
    }
    cli(&args)
}

#[test]
fn manual_worked_example_as_json() {
    let (code, out, _) = route(
        "simple.conf",
        "sip",
        "sip:101@pbx.com",
        "sip:94670123456@secure.com",
        true,
    );
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        "{\"out_interface\":\"tel\",\"from\":\"tel:+8888;101\",\"to\":\"tel:+4670123456\",\"auth\":null}\n"
    );
}

#[test]
fn readable_line_names_maps_and_entries() {
    let (code, out, _) = route(
        "simple.conf",
        "sip",
        "sip:101@pbx.com",
        "sip:94670123456@secure.com",
        false,
    );
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        "sip -> tel: to tel:+4670123456 (extension map mapsip2tel, entry sipext2tel), \
         from tel:+8888;101 (extension map maptel2sip, entry telext2sip)\n"
    );
    let (code, out, _) = route(
        "authentication.conf",
        "tel",
        "tel:+8888;7",
        "tel:+8888w42",
        false,
    );
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        "tel -> sip: to sip:42@pbx.com (extension map maptel2sipauth, entry maptel2sipauth), \
         from sip:7@pbx.com (extension map mapsip2tel, entry mapsip2tel), auth pbxaccount1\n"
    );
}

#[test]
fn auth_in_json_and_elaborate_source_maps() {
    let (code, out, _) = route(
        "authentication.conf",
        "tel",
        "tel:+8888;7",
        "tel:+8888w42",
        true,
    );
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        "{\"out_interface\":\"sip\",\"from\":\"sip:7@pbx.com\",\"to\":\"sip:42@pbx.com\",\"auth\":\"pbxaccount1\"}\n"
    );
    // The elaborate example warns about its damaged spellings on stderr; stdout stays JSON.
    let (code, out, err) = route(
        "elaborate.conf",
        "tel",
        "tel:+4670123456",
        "tel:+8888w101",
        true,
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        "{\"out_interface\":\"sip\",\"from\":\"sip:4670123456@secure.com\",\"to\":\"sip:101@pbx.com\",\"auth\":null}\n"
    );
    assert!(err.contains("warning"), "{err}");
}

#[test]
fn rejected_call_exits_3_with_reason() {
    let (code, out, _) = route(
        "simple.conf",
        "sip",
        "sip:101@pbx.com",
        "sip:555@elsewhere.com",
        true,
    );
    assert_eq!(code, Some(3));
    assert_eq!(
        out,
        "{\"rejected\":\"no new to-URI: no extension map entry of the sip interface matches the to-URI\"}\n"
    );
    let (code, out, _) = route(
        "simple.conf",
        "sip",
        "sip:101@elsewhere.com",
        "sip:9555@secure.com",
        false,
    );
    assert_eq!(code, Some(3));
    assert_eq!(
        out,
        "rejected: no new from-URI: the tel interface has no source maps and none of its extension map entries matches the from-URI\n"
    );
}

#[test]
fn bad_config_prints_diagnostics_and_exits_1() {
    // The manual's simple example as printed names the undefined map `srcsip2tel`.
    let (code, out, err) = route(
        "simple-manual.conf",
        "sip",
        "sip:101@pbx.com",
        "sip:9555@secure.com",
        true,
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("error:") && err.contains("srcsip2tel"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.conf");
    std::fs::write(
        &path,
        "map m {\n  entry e sip \"sip:{x@pbx.com\" tel \"tel:+{x}\";\n}\n",
    )
    .unwrap();
    let (code, _, err) = cli(&[
        "translate",
        "--config",
        path.to_str().unwrap(),
        "--map",
        "m",
        "x",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("broken.conf:2:"), "{err}");
}

#[test]
fn translate_verb() {
    let path = conf("mailboxes.conf");
    let path = path.to_str().unwrap();
    let (code, out, _) = cli(&[
        "translate",
        "--config",
        path,
        "--map",
        "example_map4",
        "tel:+8888w101",
        "--json",
    ]);
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "{\"uri\":\"101@pbx.com\",\"rule\":1}\n")
    );
    let (code, out, _) = cli(&[
        "translate",
        "--config",
        path,
        "--map",
        "example_map1",
        "sip:101@pbx.com",
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        "tel:+8888;101 (translate map example_map1, rule 1: match \"sip:{user}@pbx.com\" translation \"tel:+8888;{user}\")\n"
    );
    let (code, out, _) = cli(&[
        "translate",
        "--config",
        path,
        "--map",
        "example_map3",
        "sip:x@y",
        "--json",
    ]);
    assert_eq!(
        (code, out.as_str()),
        (
            Some(3),
            "{\"untranslated\":\"no rule of the translate map matches the URI\"}\n"
        )
    );
    let (code, out, _) = cli(&["translate", "--config", path, "--map", "nope", "tel:+1"]);
    assert_eq!(
        (code, out.as_str()),
        (
            Some(3),
            "not translated: the configuration has no translate map `nope`\n"
        )
    );
}
