//! `cig-cli translate --config FILE --map NAME URI [--json]`: dry-run one translate map
//! (messaging) with `cig_route`.

use std::path::PathBuf;
use std::process::ExitCode;

use cig_route::Untranslated;

use crate::route::{EXIT_REJECTED, json_str, load_router};

/// Arguments of `translate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file.
    #[arg(long)]
    pub config: PathBuf,
    /// The translate map to apply.
    #[arg(long)]
    pub map: String,
    /// The URI (or address) to translate.
    pub uri: String,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

/// Runs the verb: exit 0 when translated, 3 when not, 1 when the configuration is bad.
/// With `--json`: `{"uri":"…","rule":N}` (`N` counts rules from 1, in file order) or
/// `{"untranslated":"<reason>"}`.
pub fn run(args: &Args) -> ExitCode {
    let (config, router) = match load_router(&args.config) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    match router.translate(&args.map, &args.uri) {
        Ok(t) if args.json => {
            println!("{{\"uri\":{},\"rule\":{}}}", json_str(&t.uri), t.rule + 1);
            ExitCode::SUCCESS
        }
        Ok(t) => {
            let rule = config
                .translate_map(&args.map)
                .and_then(|m| m.rules.get(t.rule));
            let (m, tr) = rule.map_or(("", ""), |r| (r.match_.as_str(), r.translation.as_str()));
            println!(
                "{} (translate map {}, rule {}: match \"{m}\" translation \"{tr}\")",
                t.uri,
                args.map,
                t.rule + 1
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let reason = match e {
                Untranslated::UnknownMap => {
                    format!("the configuration has no translate map `{}`", args.map)
                }
                other => other.to_string(),
            };
            if args.json {
                println!("{{\"untranslated\":{}}}", json_str(&reason));
            } else {
                println!("not translated: {reason}");
            }
            ExitCode::from(EXIT_REJECTED)
        }
    }
}
