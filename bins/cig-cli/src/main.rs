//! `cig-cli`: the operator's command-line tool. `main` only parses the command line and
//! dispatches; each verb lives in its own module. Without a verb it runs the interactive
//! `cig-cli$ ` prompt ([`interactive`]).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod backup;
mod interactive;
mod keys;
mod maildir;
mod mgmt;
mod read;
mod route;
mod set_key;
mod translate;

/// CLI command tool for the CIG interconnect gateway.
#[derive(Debug, Parser)]
#[command(
    name = "cig-cli",
    version,
    about,
    disable_help_subcommand = true,
    args_override_self = true
)]
pub struct Cli {
    /// The management port of cig-server (always on 127.0.0.1).
    #[arg(long, global = true, default_value_t = cig_mgmt::DEFAULT_PORT)]
    port: u16,
    /// The verb; without one, cig-cli runs interactively.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the active calls (`show call`) or UMSG sessions (`show umsg`) of cig-server.
    Show(mgmt::ShowArgs),
    /// Show cig-server's status: relay, UMSG and SIP interfaces.
    Status(mgmt::StatusArgs),
    /// Send a text to cig-server and print its answer (tests the management connection).
    Echo(mgmt::EchoArgs),
    /// List the verbs.
    Help,
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
    /// Create a Maildir mailbox for the messaging interface (new/, cur/, tmp/; mode 2770).
    CreateMaildir(maildir::Args),
    /// Archive cig.conf and userdata/ with a manifest and SHA-256 checksums.
    Backup(backup::BackupArgs),
    /// Verify an archive made by `backup` and restore it (modes, and owners when root).
    Restore(backup::RestoreArgs),
}

/// The verbs as `help` lists them and interactive mode completes them: name, arguments,
/// description.
pub const VERBS: &[(&str, &str, &str)] = &[
    ("echo", "<anything>", "echo test functionality"),
    ("show", "call/umsg", "show active calls or umsg sessions"),
    ("status", "", "show the gateway's status"),
    ("read", "<FILE>", "test read a configuration file"),
    ("route", "<OPTIONS>", "dry-run the routing of a call"),
    ("translate", "<OPTIONS> <URI>", "dry-run a translate map"),
    ("set-key", "", "install the gateway's key bundle"),
    ("keys", "", "list the keystores and their key periods"),
    ("create-maildir", "<PATH>", "create a Maildir mailbox"),
    ("backup", "[--out FILE]", "archive cig.conf and userdata"),
    ("restore", "<FILE>", "restore an archive made by backup"),
    ("help", "", "shows this help"),
];

/// The `help` text, in the manual's form.
pub fn help_text() -> String {
    let verbs: Vec<(String, &str)> = VERBS
        .iter()
        .map(|(name, args, what)| (format!("{name} {args}").trim_end().to_owned(), *what))
        .collect();
    let width = verbs.iter().map(|v| v.0.len()).max().unwrap_or(0) + 2;
    let mut s = format!("{}\n", cig_mgmt::render::PRODUCT);
    for (verb, what) in verbs {
        s.push_str(&format!("  {verb:<width$}{what}\n"));
    }
    s.push_str(
        "Options: --port PORT (management port, default 8083), --json (show, status)\n\
         `cig-cli VERB --help` describes a verb.\n",
    );
    s
}

/// Runs one parsed command line.
pub fn dispatch(cli: &Cli) -> ExitCode {
    let Some(command) = &cli.command else {
        return interactive::run(cli.port);
    };
    match command {
        Command::Show(args) => mgmt::show(cli.port, args),
        Command::Status(args) => mgmt::status(cli.port, args),
        Command::Echo(args) => mgmt::echo(cli.port, args),
        Command::Help => {
            print!("{}", help_text());
            ExitCode::SUCCESS
        }
        Command::Read(args) => read::run(args),
        Command::Route(args) => route::run(args),
        Command::Translate(args) => translate::run(args),
        Command::SetKey(args) => set_key::run(args),
        Command::Keys(args) => keys::run(args),
        Command::CreateMaildir(args) => maildir::run(args),
        Command::Backup(args) => backup::backup(args),
        Command::Restore(args) => backup::restore(args),
    }
}

fn main() -> ExitCode {
    dispatch(&Cli::parse())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn help_lists_exactly_the_verbs_clap_knows() {
        let mut clap: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect();
        let mut listed: Vec<String> = VERBS.iter().map(|v| v.0.to_owned()).collect();
        clap.sort();
        listed.sort();
        assert_eq!(clap, listed);
    }
}
