//! Routes calls through a cig.conf with `cig-route`, the way a gateway would: build the
//! `Router` once, then ask it about each call with `Router::route_into` and one `RouteBuf`
//! reused for every call (the new URIs are written into it; no allocation per call once it
//! has grown).
//!
//! `cargo run -p cig-examples --example route -- [CONFIG] [tel|sip FROM TO]`
//!
//! Without a call it routes the manual's worked example (simple.conf: a call on the sip
//! interface from `sip:101@pbx.com` to `sip:94670123456@secure.com`) and the reverse call
//! that a secure phone makes by dialling `+8888w101`.

use std::path::PathBuf;
use std::process::ExitCode;

use cig_core::conf::InterfaceKind;
use cig_route::{RouteBuf, Router};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = PathBuf::from(
        args.first()
            .map_or("examples/conf/simple.conf", String::as_str),
    );
    let config = match cig_core::conf::load(&path) {
        Ok(loaded) => loaded.config,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            return ExitCode::FAILURE;
        }
    };
    let router = match Router::from_config(&config) {
        Ok(router) => router,
        Err(e) => {
            eprintln!("{}: error: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let calls = match &args[..] {
        [_, on, from, to] => {
            let on = match on.as_str() {
                "tel" => InterfaceKind::Tel,
                "sip" => InterfaceKind::Sip,
                other => {
                    eprintln!("interface must be tel or sip, not {other}");
                    return ExitCode::FAILURE;
                }
            };
            vec![(on, from.as_str(), to.as_str())]
        }
        _ => vec![
            (
                InterfaceKind::Sip,
                "sip:101@pbx.com",
                "sip:94670123456@secure.com",
            ),
            (InterfaceKind::Tel, "tel:+4670123456", "tel:+8888w101"),
        ],
    };
    let mut uris = RouteBuf::default();
    for (on, from, to) in calls {
        println!("call on {on} from {from} to {to}");
        match router.route_into(on, from, to, &mut uris) {
            Ok(r) => {
                println!(
                    "  leaves on {} from {} to {}",
                    r.out_interface, uris.from, uris.to
                );
                println!(
                    "  to-URI by {}, from-URI by {} ({} maps)",
                    r.to_match,
                    r.from_match,
                    r.from_maps.as_str()
                );
                if let Some(auth) = r.auth {
                    println!("  digest credentials: auth {auth}");
                }
            }
            Err(reason) => println!("  rejected: {reason}"),
        }
    }
    ExitCode::SUCCESS
}
