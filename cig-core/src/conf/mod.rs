//! The `cig.conf` language: typed model ([`Config`] and friends) and diagnostics.

mod diag;
mod model;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use model::*;
