//! Shared types of CIG, the interconnect gateway between a MIKEY-SAKKE secure domain and SIP
//! PBXs, Maildir and SMPP — chiefly the `cig.conf` configuration language.
//!
//! [`conf`] reads a configuration into a typed [`Config`] with compiler-like diagnostics;
//! [`template`] owns the `{param}` URI template syntax that maps and translate maps use;
//! [`logline`] writes the manual's `[Time] Module[Type]: Information` log line.
//!
//! ```
//! use cig_core::conf::{self, InterfaceKind};
//!
//! let src = r#"
//!     map maptel2sip { entry telext2sip tel "tel:+8888;{ext}" sip "sip:{ext}@pbx.com"; }
//!     interfaces { tel { extension map maptel2sip; } }
//! "#;
//! let loaded = conf::parse(src, "cig.conf").unwrap();
//! let tel = loaded.config.interface(InterfaceKind::Tel).unwrap();
//! assert_eq!(tel.extension_maps, ["maptel2sip"]);
//! // Printing gives a valid cig.conf again.
//! assert_eq!(conf::parse(&loaded.config.to_string(), "again").unwrap().config, loaded.config);
//!
//! let err = conf::parse("map m { entry e tel \"tel:{x\"; }", "bad.conf").unwrap_err();
//! assert_eq!(
//!     err.items[0].headline(),
//!     "bad.conf:1:26: error: bad URI template: unclosed `{`: expected `}` after the parameter name"
//! );
//! ```
#![forbid(unsafe_code)]

pub mod conf;
pub mod logline;
mod net;
mod secret;
pub mod template;

pub use conf::{Config, Diagnostic, Diagnostics};
pub use net::IpNet;
pub use secret::Secret;
pub use template::{Template, TemplateError};

/// The errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A URI template is malformed.
    #[error("bad URI template: {0}")]
    Template(#[from] TemplateError),
    /// A configuration has errors; the diagnostics say which and where.
    #[error("invalid configuration:\n{0}")]
    Config(#[from] Diagnostics),
    /// Text that should be an IP network (`a.b.c.d/len`) is not.
    #[error("`{0}` is not an IP address or network (expected e.g. 192.168.1.0/24)")]
    BadNetwork(String),
}
