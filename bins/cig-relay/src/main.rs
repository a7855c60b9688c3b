//! `cig-relay`: the CIG media relay. It bridges the secure domain's SRTP to the PBX's RTP G.711
//! per call, on ports from `rtp_port_range`, with one crypto engine (worker thread) per core, and
//! is driven by cig-server over a Unix control socket or, for a remote cig-server, TCP with
//! mutual TLS (protocol: docs/relay-control.md).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

mod engine;
mod log;
mod path;
mod relay;
mod tls;

use cig_media::control::PortRange;
use log::Log;
use relay::{Relay, Settings, TcpControl};

/// Which packet path the engines run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EngineKind {
    /// The relay: cig-media bridge sessions (SRTP ⇄ RTP, G.711 transcoding, RFC 4733).
    Bridge,
    /// Plain UDP forwarding between the legs, no crypto or transcoding: the baseline the load
    /// tool compares the relay against. Not for production.
    Plain,
}

/// The CIG media relay.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The control socket (Unix stream) cig-server connects to.
    #[arg(long, default_value = "/run/cig/relay.sock")]
    control: PathBuf,
    /// Also serve the control protocol on this TCP address with mutual TLS, for a cig-server
    /// on another host (needs --tls-cert, --tls-key and --tls-client-ca).
    #[arg(long, value_name = "IP:PORT", requires_all = ["tls_cert", "tls_key", "tls_client_ca"])]
    control_tcp: Option<SocketAddr>,
    /// The relay's TLS certificate chain (PEM) for --control-tcp (`cig-kms relay-cert`).
    #[arg(long, requires = "control_tcp")]
    tls_cert: Option<PathBuf>,
    /// The relay's TLS private key (PEM) for --control-tcp.
    #[arg(long, requires = "control_tcp")]
    tls_key: Option<PathBuf>,
    /// The CA (PEM) a controller's client certificate must chain to for --control-tcp.
    #[arg(long, requires = "control_tcp")]
    tls_client_ca: Option<PathBuf>,
    /// The directory of relay.log.
    #[arg(long, default_value = "/var/log/cig")]
    log_dir: PathBuf,
    /// The default RTP port range (`rtp_port_range LOW HIGH`): even RTP port, RTCP on the next.
    #[arg(long, num_args = 2, value_names = ["LOW", "HIGH"], default_values_t = [1024u16, 2048])]
    rtp_port_range: Vec<u16>,
    /// The default local address for media sockets.
    #[arg(long, default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Crypto engines (worker threads); default one per core.
    #[arg(long)]
    workers: Option<usize>,
    /// The packet path the engines run.
    #[arg(long, value_enum, default_value_t = EngineKind::Bridge)]
    engine: EngineKind,
    /// Datagrams each engine reads per `recvmmsg` (1..=32); 1 is the unbatched read-until-EAGAIN
    /// path, kept for measurements.
    #[arg(long, default_value_t = engine::BATCH, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=engine::BATCH as u64))]
    recv_batch: usize,
    /// Also write DEBUG lines to relay.log.
    #[arg(long)]
    debug: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (low, high) = match args.rtp_port_range.as_slice() {
        [low, high] => (*low, *high),
        _ => unreachable!("clap enforces two values"),
    };
    let range = match PortRange::new(low, high) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cig-relay: --rtp-port-range {low} {high}: {e}");
            return ExitCode::from(2);
        }
    };
    let workers = args.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    if workers == 0 || workers > 256 {
        eprintln!("cig-relay: --workers must be 1..=256");
        return ExitCode::from(2);
    }
    let log = match Log::open(&args.log_dir, args.debug) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "cig-relay: cannot open {}/relay.log: {e}",
                args.log_dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let control_tcp = match (
        args.control_tcp,
        &args.tls_cert,
        &args.tls_key,
        &args.tls_client_ca,
    ) {
        (Some(addr), Some(cert), Some(key), Some(ca)) => match tls::server_config(cert, key, ca) {
            Ok(tls) => Some(TcpControl { addr, tls }),
            Err(e) => {
                eprintln!("cig-relay: --control-tcp: {e}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    let settings = Settings {
        control: args.control,
        log_dir: args.log_dir,
        rtp_port_range: range,
        bind: args.bind,
        workers,
        control_tcp,
    };
    log.init(
        "Config",
        format_args!("cig-relay {} starting", env!("CARGO_PKG_VERSION")),
    );
    log.init(
        "Config",
        format_args!("control {}", settings.control.display()),
    );
    if let Some(t) = &settings.control_tcp {
        log.init(
            "Config",
            format_args!("control_tcp {} (mutual TLS)", t.addr),
        );
    }
    log.init(
        "Config",
        format_args!("log_dir {}", settings.log_dir.display()),
    );
    log.init(
        "Config",
        format_args!("rtp_port_range {} {}", range.low, range.high),
    );
    log.init("Config", format_args!("bind {}", settings.bind));
    log.init("Config", format_args!("workers {workers}"));
    log.init("Config", format_args!("engine {:?}", args.engine));
    log.init("Config", format_args!("recv_batch {}", args.recv_batch));
    engine::set_recv_batch(args.recv_batch);
    let result = match args.engine {
        EngineKind::Bridge => serve::<path::Bridge>(settings, &log),
        EngineKind::Plain => serve::<path::PlainForward>(settings, &log),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log.warn("Control", format_args!("relay failed: {e}"));
            eprintln!("cig-relay: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the relay, tells whoever started it that the control socket is ready (one line on
/// stdout, so tests and the load tool need not poll for the socket), and serves until a signal.
fn serve<P: path::PacketPath>(settings: Settings, log: &Log) -> std::io::Result<()> {
    let control = settings.control.clone();
    let tcp = settings
        .control_tcp
        .as_ref()
        .map(|t| format!(" and tcp {}", t.addr))
        .unwrap_or_default();
    let relay = Relay::<P>::start(settings, log.clone())?;
    println!("cig-relay ready on {}{tcp}", control.display());
    relay.run()
}
