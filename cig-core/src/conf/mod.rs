//! The `cig.conf` language: typed model ([`Config`] and friends), the parser with compiler-like
//! [`Diagnostics`], semantic checks, and a printer (`Display for Config`).
//!
//! The grammar, every directive and the tolerated misspellings are documented in
//! `docs/config.md`.

mod diag;
mod lexer;
mod model;
mod parser;
mod print;

use std::io::Read;
use std::path::Path;
use std::str::FromStr;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use model::*;
pub use parser::{Loaded, MAX_ERRORS, MAX_SOURCE_LEN, parse};

/// Reads and parses the file at `path` (named in diagnostics as given).
///
/// An unreadable, oversized or non-UTF-8 file is reported as a diagnostic like any other error.
pub fn load(path: &Path) -> Result<Loaded, Diagnostics> {
    let name = path.display().to_string();
    let fail = |msg: String| Diagnostics {
        items: vec![parser::no_position(&name, &msg)],
    };
    let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_SOURCE_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if bytes.len() > MAX_SOURCE_LEN {
        return Err(fail(format!("file larger than {MAX_SOURCE_LEN} bytes")));
    }
    match String::from_utf8(bytes) {
        Ok(text) => parse(&text, &name),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..valid]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            Err(fail(format!("invalid UTF-8 at line {line} (byte {valid})")))
        }
    }
}

impl FromStr for Config {
    type Err = crate::Error;

    /// Parses a configuration from a string (diagnostics name the file `<string>`); warnings
    /// are dropped — use [`parse`] to see them.
    fn from_str(s: &str) -> Result<Config, crate::Error> {
        Ok(parse(s, "<string>")?.config)
    }
}
