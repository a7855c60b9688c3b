//! `cig-cli read FILE`: parse and validate a configuration, print a short summary and the
//! warnings (stdout); on errors print the diagnostics (stderr) and exit 1.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use cig_core::conf::{self, Config, InterfaceKind};

/// Arguments of `read`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file (e.g. /opt/cig/cig.conf).
    pub file: PathBuf,
}

/// Runs the verb: exit 0 when the file is valid, 1 when it has errors.
pub fn run(args: &Args) -> ExitCode {
    match conf::load(&args.file) {
        Ok(loaded) => {
            print!("{}", summary(&loaded.config));
            for w in &loaded.warnings {
                println!("\n{w}");
            }
            let n = loaded.warnings.len();
            println!("{}: valid, {}", args.file.display(), plural(n, "warning"));
            ExitCode::SUCCESS
        }
        Err(diags) => {
            eprintln!("{diags}");
            ExitCode::from(1)
        }
    }
}

/// `1 rule`, `2 rules`; `many` is the plural form.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn plural(n: usize, word: &str) -> String {
    count(n, word, &format!("{word}s"))
}

/// The short summary: maps with entry counts, interfaces, translate maps, mailboxes, centres.
pub fn summary(c: &Config) -> String {
    let mut s = String::new();
    let entries: usize = c.maps.iter().map(|m| m.entries.len()).sum();
    let _ = writeln!(
        s,
        "maps: {}, {}",
        c.maps.len(),
        count(entries, "entry", "entries")
    );
    for m in &c.maps {
        let _ = writeln!(
            s,
            "  {}: {}",
            m.name,
            count(m.entries.len(), "entry", "entries")
        );
    }
    let _ = writeln!(s, "auths: {}", c.auths.len());
    for kind in InterfaceKind::ALL {
        let Some(i) = c.interface(kind) else {
            let _ = writeln!(s, "interface {kind}: not configured");
            continue;
        };
        let _ = write!(
            s,
            "interface {kind}: extension maps [{}]",
            i.extension_maps.join(", ")
        );
        let _ = write!(s, ", source maps [{}]", i.source_maps.join(", "));
        if let Some(ip) = i.bind {
            let _ = write!(s, ", bind {ip}");
        }
        if let Some(port) = i.port {
            let _ = write!(s, ", port {port}");
        }
        if let Some((lo, hi)) = i.rtp_port_range {
            let _ = write!(s, ", rtp {lo}-{hi}");
        }
        if !i.rtp_remote_addr_override.is_empty() {
            let _ = write!(
                s,
                ", {}",
                plural(i.rtp_remote_addr_override.len(), "rtp override")
            );
        }
        if !i.allow.is_empty() {
            let _ = write!(s, ", allow {}", plural(i.allow.len(), "network"));
        }
        if i.messaging {
            s.push_str(", messaging");
        }
        s.push('\n');
    }
    let rules: usize = c.translate_maps.iter().map(|m| m.rules.len()).sum();
    let _ = writeln!(
        s,
        "translate maps: {}, {}",
        c.translate_maps.len(),
        plural(rules, "rule")
    );
    let _ = writeln!(
        s,
        "mailboxes: {} read, {} write",
        c.mailboxes.read.len(),
        c.mailboxes.write.len()
    );
    let _ = writeln!(s, "message centres: {}", c.message_centers.len());
    for m in &c.message_centers {
        let _ = writeln!(s, "  smpp {}:{}", m.hostname, m.port);
    }
    s
}
