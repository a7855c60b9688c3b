//! Reads a cig.conf, reports its warnings (or errors) like a compiler, and prints it back in
//! canonical form.
//!
//! `cargo run -p cig-examples --example conf -- examples/conf/elaborate.conf`

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let path = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "examples/conf/simple.conf".into()),
    );
    match cig_core::conf::load(&path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{w}\n");
            }
            // The canonical form: misspellings fixed, comments dropped, one entry per line.
            print!("{}", loaded.config);
            ExitCode::SUCCESS
        }
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            ExitCode::FAILURE
        }
    }
}
