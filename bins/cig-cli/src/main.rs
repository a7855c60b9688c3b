//! `cig-cli`: the operator's command-line tool. `main` only parses the command line and
//! dispatches; each verb lives in its own module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod read;

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
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Read(args) => read::run(&args),
    }
}
