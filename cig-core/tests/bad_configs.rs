//! Table-driven: every `tests/bad/NAME.conf` must fail, and its first error must be exactly the
//! line in `tests/bad/NAME.expected` (`NAME.conf:line:column: error: message`).

use std::path::PathBuf;

use cig_core::conf;

#[test]
fn every_bad_config_gives_its_expected_first_error() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".conf").map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 30, "only {} bad configs", names.len());
    let mut failures = Vec::new();
    for name in &names {
        let file = format!("{name}.conf");
        let text = std::fs::read_to_string(dir.join(&file)).unwrap();
        let expected = std::fs::read_to_string(dir.join(format!("{name}.expected")))
            .unwrap_or_else(|_| panic!("{name}.expected missing"));
        match conf::parse(&text, &file) {
            Ok(_) => failures.push(format!("{file}: parsed without errors")),
            Err(d) => {
                let first = d.errors().next().map(|e| e.headline()).unwrap_or_default();
                if first != expected.trim_end() {
                    failures.push(format!(
                        "{file}:\n  expected {}\n  got      {first}",
                        expected.trim_end()
                    ));
                }
                // Every error has a position, a source line and a caret.
                for e in d.errors() {
                    assert!(e.line > 0 && e.width > 0, "{file}: {e}");
                    assert!(e.to_string().contains('^'), "{file}: {e}");
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Recovery: one run reports errors from several statements and sections.
#[test]
fn several_errors_per_run() {
    let src = "map m {\n  entry a sip \"sip:{x\" tel \"tel:{x}\";\n  entry b sip \"s\" tel \"t\" bogus;\n  entry c sip \"sip:{y}\" tel \"tel:{y}\";\n}\nauth a { user \"u\"; pass \"p\"; }\ninterfaces {\n  sip { extension map m; bind 1.2.3; rtp_port_range 5000 10; }\n  tel { extension map nope; }\n}\n";
    let d = conf::parse(src, "multi.conf").unwrap_err();
    let got: Vec<String> = d.errors().map(|e| e.headline()).collect();
    assert_eq!(
        got,
        [
            "multi.conf:2:20: error: bad URI template: unclosed `{`: expected `}` after the parameter name",
            "multi.conf:3:27: error: unknown entry attribute `bogus`",
            "multi.conf:6:20: error: unknown statement `pass` in an auth block",
            "multi.conf:8:31: error: invalid IP address `1.2.3`",
            "multi.conf:8:58: error: port `10` out of range",
            "multi.conf:9:23: error: undefined map `nope`",
        ]
    );
}

/// The full rendering: headline, source line, caret under the span, help.
#[test]
fn rendering() {
    let src = "interfaces {\n\tsip {\n\t\tsource map srcsip2tel;\n\t}\n}\nmap srctel2sip { entry e sip \"sip:{a}\" tel \"tel:{a}\"; }\n";
    let d = conf::parse(src, "r.conf").unwrap_err();
    assert_eq!(
        d.to_string(),
        "r.conf:3:14: error: undefined map `srcsip2tel`\n  |\n3 | \t\tsource map srcsip2tel;\n  | \t\t           ^^^^^^^^^^\n  = help: did you mean `srctel2sip`?\n\n1 error"
    );
}

#[test]
fn too_many_errors_stop() {
    let src = "bogus;\n".repeat(500);
    let d = conf::parse(&src, "many.conf").unwrap_err();
    assert_eq!(d.error_count(), conf::MAX_ERRORS + 1);
    assert_eq!(
        d.items.last().unwrap().headline(),
        format!(
            "many.conf: error: too many errors; stopped after {}",
            conf::MAX_ERRORS
        )
    );
}
