//! `cig-cli set-key`: install a key bundle into the keystore `userdata/.ks.<identity>`.
//!
//! Interactive (asks for the bundle path and, without echo, the transfer code) or
//! non-interactive (`--bundle FILE --code-file FILE`). Every key is validated before anything
//! is written; periods of an existing keystore that the bundle lacks are kept when they still
//! validate.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use cig_mikey_sakke::Error;
use cig_mikey_sakke::bundle::{self, TransferCode};
use cig_mikey_sakke::keystore;
use zeroize::Zeroizing;

/// Arguments of `set-key`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The key bundle file (asked for when not given).
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// A file holding the transfer code (asked for, without echo, when not given).
    #[arg(long)]
    code_file: Option<PathBuf>,
    /// The userdata directory the keystore is written to.
    #[arg(long, default_value = "/opt/cig/userdata")]
    userdata: PathBuf,
}

fn ask_line(prompt: &str) -> Result<String, Error> {
    let mut out = std::io::stderr();
    let _ = write!(out, "{prompt}");
    let _ = out.flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::Keystore(format!("reading the answer: {e}")))?;
    Ok(line.trim().to_owned())
}

fn install(args: &Args) -> Result<(), Error> {
    let bundle_path = match &args.bundle {
        Some(p) => p.clone(),
        None => PathBuf::from(ask_line("Key bundle file: ")?),
    };
    let sealed = keystore::read_capped(&bundle_path)?;
    let code = match &args.code_file {
        Some(p) => {
            let raw = keystore::read_capped(p)?;
            let text = Zeroizing::new(
                String::from_utf8(raw.to_vec())
                    .map_err(|_| Error::Keystore(format!("{}: not text", p.display())))?,
            );
            TransferCode::parse(&text)?
        }
        None => {
            let typed = Zeroizing::new(
                rpassword::prompt_password("Transfer code: ")
                    .map_err(|e| Error::Keystore(format!("reading the transfer code: {e}")))?,
            );
            TransferCode::parse(&typed)?
        }
    };
    let mut material = bundle::open(&sealed, &code)?;
    let path = keystore::keystore_path(&args.userdata, &material.identity)?;
    if path.exists() {
        match keystore::load(&path) {
            Ok(old) => {
                for p in material.keep_valid_periods(&old) {
                    println!("kept={p}");
                }
            }
            Err(e) => eprintln!("cig-cli: replacing unusable keystore: {e}"),
        }
    }
    let written = keystore::save(&args.userdata, &material)?;
    println!("identity={}", material.identity);
    println!("domain={}", material.domain);
    for p in &material.periods {
        println!("period={}", p.period);
    }
    for s in &material.switch_addresses {
        println!("switch={s}");
    }
    println!("keystore={}", written.display());
    Ok(())
}

/// Runs `set-key`.
pub fn run(args: &Args) -> ExitCode {
    match install(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cig-cli set-key: {e}; nothing installed");
            ExitCode::FAILURE
        }
    }
}
