//! `cig-cli`: the operator's command-line tool. `main` only parses the command line and
//! dispatches; each verb lives in its own module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod keys;
mod read;
mod route;
mod set_key;
mod translate;

/// CLI command tool for the CIG interconnect gateway.
#[derive(Debug, Parser)]
#[command(name = "cig-cli", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and validate a cig.conf; print a summary and the warnings.
    Read(read::Args),
    /// Dry-run the routing of a call: new interface, to-URI, from-URI and auth.
    Route(route::Args),
    /// Dry-run a translate map (messaging) on one URI.
    Translate(translate::Args),
    /// Install a key bundle (asks for bundle and transfer code, or takes them as files).
    SetKey(set_key::Args),
    /// List the keystores and their key periods; warn when next month's keys are missing.
    Keys(keys::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Read(args) => read::run(&args),
        Command::Route(args) => route::run(&args),
        Command::Translate(args) => translate::run(&args),
        Command::SetKey(args) => set_key::run(&args),
        Command::Keys(args) => keys::run(&args),
    }
}
