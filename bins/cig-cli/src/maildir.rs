//! `cig-cli create-maildir PATH`: create a CIG mailbox (`new/`, `cur/`, `tmp/`, mode 2770,
//! group `cigmail` when it exists) with `cig_msg::maildir::create_maildir`, the manual's
//! `create_cig_maildir`.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `create-maildir`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The mailbox directory to create (parents are created as needed).
    path: PathBuf,
}

/// Runs `create-maildir`: exit 0 when the mailbox exists afterwards, 1 otherwise.
pub fn run(args: &Args) -> ExitCode {
    match cig_msg::maildir::create_maildir(&args.path) {
        Ok(()) => {
            println!("maildir={}", args.path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cig-cli create-maildir: {e}");
            ExitCode::FAILURE
        }
    }
}
