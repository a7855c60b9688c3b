//! `cig-cli keys`: list the keystores in userdata with their key periods, validating every
//! key, and warn when next month's keys are missing.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use cig_mikey_sakke::keystore;
use cig_mikey_sakke::mikey::KeyPeriod;

/// Arguments of `keys`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The userdata directory holding `.ks.<identity>` keystores.
    #[arg(long, default_value = "/opt/cig/userdata")]
    userdata: PathBuf,
    /// Judge "current" and "next" month at this Unix time instead of now.
    #[arg(long)]
    at_unix: Option<u64>,
}

/// Runs `keys`.
pub fn run(args: &Args) -> ExitCode {
    let now = args.at_unix.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let (current, next) = match KeyPeriod::from_unix(now).and_then(|c| Ok((c, c.next()?))) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cig-cli keys: {e}");
            return ExitCode::FAILURE;
        }
    };
    let paths = match keystore::list(&args.userdata) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cig-cli keys: {e}");
            return ExitCode::FAILURE;
        }
    };
    if paths.is_empty() {
        eprintln!("cig-cli keys: no keystore in {}", args.userdata.display());
        return ExitCode::FAILURE;
    }
    let mut ok = true;
    for path in paths {
        match keystore::load(&path) {
            Ok(m) => {
                println!("identity={} domain={}", m.identity, m.domain);
                for p in &m.periods {
                    let tag = if p.period == current {
                        " (current)"
                    } else if p.period == next {
                        " (next)"
                    } else if p.period < current {
                        " (expired)"
                    } else {
                        ""
                    };
                    println!("  period={}{tag}", p.period);
                }
                if m.period(current).is_none() {
                    println!(
                        "warning: {} has no keys for the current month {current}",
                        m.identity
                    );
                }
                if m.period(next).is_none() {
                    println!("warning: {} has no keys for next month {next}", m.identity);
                }
            }
            Err(e) => {
                ok = false;
                eprintln!("cig-cli keys: {e}");
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
