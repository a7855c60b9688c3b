//! The verbs that ask the running cig-server over the management port (`cig_mgmt`):
//! `show call`, `show umsg`, `status` (text in the manual's layout, or `--json`) and `echo`.

use std::process::ExitCode;

use cig_mgmt::{Client, Error, client::DEFAULT_TIMEOUT, render};
use serde::Serialize;

/// Exit code when cig-server does not answer on the management port (sysexits'
/// `EX_UNAVAILABLE`; distinct from the verbs' own codes 1–3).
pub const EXIT_NOT_RUNNING: u8 = 69;

/// What `show` shows.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum What {
    /// Active gateway calls: IN-FROM IN-TO OUT-FROM OUT-TO STATE.
    Call,
    /// UMSG sessions: FROM TO STATE TIME ID.
    Umsg,
}

/// Arguments of `show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// `call` or `umsg`.
    #[arg(value_enum)]
    what: What,
    /// Print the rows as one JSON array (docs/mgmt.md §4) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print one JSON object (docs/mgmt.md §4) instead of the text layout.
    #[arg(long)]
    json: bool,
}

/// Arguments of `echo`.
#[derive(Debug, clap::Args)]
pub struct EchoArgs {
    /// The text (words are joined with single spaces).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    words: Vec<String>,
}

/// Connects, runs `ask`, prints its text; maps failures to the documented exit codes.
fn ask(port: u16, ask: impl FnOnce(&mut Client) -> Result<String, Error>) -> ExitCode {
    match Client::connect(port, DEFAULT_TIMEOUT).and_then(|mut c| ask(&mut c)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e @ Error::NotRunning { .. }) => {
            eprintln!("cig-cli: {e}");
            ExitCode::from(EXIT_NOT_RUNNING)
        }
        Err(e) => {
            eprintln!("cig-cli: {e}");
            ExitCode::FAILURE
        }
    }
}

fn json_line<T: Serialize>(value: &T) -> String {
    // The management types serialise without error (plain structs, string keys).
    let mut s = serde_json::to_string(value).unwrap_or_default();
    s.push('\n');
    s
}

/// `show call` / `show umsg`.
pub fn show(port: u16, args: &ShowArgs) -> ExitCode {
    ask(port, |c| {
        Ok(match (args.what, args.json) {
            (What::Call, false) => render::calls(&c.calls()?),
            (What::Call, true) => json_line(&c.calls()?),
            (What::Umsg, false) => render::umsg(&c.umsg()?),
            (What::Umsg, true) => json_line(&c.umsg()?),
        })
    })
}

/// `status`.
pub fn status(port: u16, args: &StatusArgs) -> ExitCode {
    ask(port, |c| {
        let s = c.status()?;
        Ok(if args.json {
            json_line(&s)
        } else {
            render::status(&s)
        })
    })
}

/// `echo TEXT`: the server's answer on one line.
pub fn echo(port: u16, args: &EchoArgs) -> ExitCode {
    ask(port, |c| {
        Ok(format!("{}\n", c.echo(&args.words.join(" "))?))
    })
}
