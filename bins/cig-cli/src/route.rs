//! `cig-cli route --config FILE --on tel|sip --from URI --to URI [--json]`: dry-run the
//! routing of one call with `cig_route`. Also owns loading a configuration for the dry-run
//! verbs (diagnostics printed as `read` prints them).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cig_core::conf::{self, Config, InterfaceKind};
use cig_route::{Routed, Router};

/// Exit code of a call or message the configuration does not route.
pub const EXIT_REJECTED: u8 = 3;

/// The incoming interface, as given on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum On {
    /// The secure domain (TEL URIs).
    Tel,
    /// The SIP domain.
    Sip,
}

impl From<On> for InterfaceKind {
    fn from(on: On) -> InterfaceKind {
        match on {
            On::Tel => InterfaceKind::Tel,
            On::Sip => InterfaceKind::Sip,
        }
    }
}

/// Arguments of `route`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file.
    #[arg(long)]
    pub config: PathBuf,
    /// The interface the call arrives on.
    #[arg(long, value_enum)]
    pub on: On,
    /// The call's from-URI.
    #[arg(long)]
    pub from: String,
    /// The call's to-URI.
    #[arg(long)]
    pub to: String,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

/// Loads `path` and compiles its routing tables. On errors prints the diagnostics (as `read`
/// does) or the routing error to stderr and returns exit code 1. Warnings go to stderr.
pub fn load_router(path: &Path) -> Result<(Config, Router), ExitCode> {
    let loaded = conf::load(path).map_err(|diags| {
        eprintln!("{diags}");
        ExitCode::from(1)
    })?;
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    let router = Router::from_config(&loaded.config).map_err(|e| {
        eprintln!("{}: error: {e}", path.display());
        ExitCode::from(1)
    })?;
    Ok((loaded.config, router))
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// Runs the verb: exit 0 when routed, 3 when rejected, 1 when the configuration is bad.
pub fn run(args: &Args) -> ExitCode {
    let router = match load_router(&args.config) {
        Ok((_, router)) => router,
        Err(code) => return code,
    };
    let on = InterfaceKind::from(args.on);
    match router.route(on, &args.from, &args.to) {
        Ok(routed) if args.json => {
            println!("{}", json(&routed));
            ExitCode::SUCCESS
        }
        Ok(routed) => {
            println!("{}", sentence(on, &routed));
            ExitCode::SUCCESS
        }
        Err(reason) if args.json => {
            println!("{{\"rejected\":{}}}", json_str(&reason.to_string()));
            ExitCode::from(EXIT_REJECTED)
        }
        Err(reason) => {
            println!("rejected: {reason}");
            ExitCode::from(EXIT_REJECTED)
        }
    }
}

/// `{"out_interface":"tel","from":"…","to":"…","auth":null}`, keys in this order.
fn json(r: &Routed) -> String {
    format!(
        "{{\"out_interface\":{},\"from\":{},\"to\":{},\"auth\":{}}}",
        json_str(r.out_interface.as_str()),
        json_str(&r.from),
        json_str(&r.to),
        r.auth.as_deref().map_or("null".to_owned(), json_str),
    )
}

/// One line naming the outgoing interface, both URIs and the entries that gave them.
fn sentence(on: InterfaceKind, r: &Routed) -> String {
    let auth = r
        .auth
        .as_deref()
        .map_or(String::new(), |a| format!(", auth {a}"));
    format!(
        "{on} -> {}: to {} (extension map {}, entry {}), from {} ({} map {}, entry {}){auth}",
        r.out_interface,
        r.to,
        r.to_match.map(),
        r.to_match.entry(),
        r.from,
        r.from_maps.as_str(),
        r.from_match.map(),
        r.from_match.entry(),
    )
}
