//! `cig-cli`: the operator's command-line tool. `main` only parses the command line and
//! dispatches; each verb lives in its own module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod read;
mod route;
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
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Read(args) => read::run(&args),
        Command::Route(args) => route::run(&args),
        Command::Translate(args) => translate::run(&args),
    }
}
