//! `cig-crs`: the reference UMSG/1 switch (docs/umsg.md). A thin binary around
//! `cig_umsg::driver::switch`: reads the community KPAK and the TLS certificate, listens,
//! prints `cig-crs ready on ADDR` once, writes every session event to its log, and stops
//! cleanly (exit 0) on SIGTERM or SIGINT.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use cig_mikey_sakke::eccsi::Kpak;
use cig_umsg::driver::media::{Latch, MediaConfig};
use cig_umsg::driver::server_tls;
use cig_umsg::driver::switch::{self, SwitchConfig};
use cig_umsg::switch::StoreLimits;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

/// Largest certificate, key or community file read.
const MAX_FILE: u64 = 1 << 20;

#[derive(Parser, Debug)]
#[command(name = "cig-crs", version, about = "CIG reference UMSG switch")]
struct Cli {
    /// TCP address to listen on (port 0: any free port; the ready line names it).
    #[arg(long, default_value = "0.0.0.0:5223")]
    listen: SocketAddr,
    /// PEM file of the switch certificate chain (e.g. from `cig-kms switch-cert`).
    #[arg(long)]
    cert: PathBuf,
    /// PEM file of the switch certificate's private key.
    #[arg(long)]
    key: PathBuf,
    /// The community's public parameters: community.json, or the KMS directory holding it.
    #[arg(long)]
    kpak_from: PathBuf,
    /// Address the media relay sockets bind to.
    #[arg(long, default_value = "127.0.0.1")]
    media_bind: IpAddr,
    /// Host announced as the media address (MEDIA_ADDR); default: the bind address.
    #[arg(long)]
    media_public: Option<String>,
    /// Which datagram latches a call leg's relay port (docs/umsg.md §5.1): `connection-ip`
    /// only one from the IP address of that leg's signalling connection; `any` the first one
    /// from anywhere (media and signalling from different hosts).
    #[arg(long, default_value = "connection-ip", value_parser = parse_latch)]
    media_latch: Latch,
    /// UDP port range LO HI for the media relay (two ports per call); default: any free port.
    #[arg(long, num_args = 2, value_names = ["LO", "HI"])]
    rtp_port_range: Option<Vec<u16>>,
    /// Most messages held for offline recipients, in total.
    #[arg(long, default_value_t = 65_536)]
    store_limit: usize,
    /// Most messages held for one offline recipient (at most --store-limit).
    #[arg(long, default_value_t = 256)]
    store_per_identity: usize,
    /// Bytes of frames queued towards one connection that has not read them yet; a client
    /// that falls further behind is disconnected ("too slow reading").
    #[arg(long, default_value_t = cig_umsg::driver::switch::OUT_QUEUE_BYTES)]
    out_queue_bytes: usize,
    /// Log file (appended); default: standard error.
    #[arg(long)]
    log: Option<PathBuf>,
}

fn parse_latch(s: &str) -> Result<Latch, String> {
    match s {
        "connection-ip" => Ok(Latch::ConnectionIp),
        "any" => Ok(Latch::Any),
        _ => Err(format!("{s:?}: connection-ip or any")),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    let len = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if len > MAX_FILE {
        return Err(format!("{}: larger than {MAX_FILE} bytes", path.display()));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The KPAK from community.json (its `kpak` field, 04‖x‖y in hex).
fn kpak(path: &Path) -> Result<Kpak, String> {
    #[derive(serde::Deserialize)]
    struct Public {
        kpak: String,
    }
    let path = if path.is_dir() {
        path.join(cig_mikey_sakke::kms::COMMUNITY_FILE)
    } else {
        path.to_owned()
    };
    let p: Public =
        serde_json::from_slice(&read(&path)?).map_err(|e| format!("{}: {e}", path.display()))?;
    let bytes = hex::decode(p.kpak).map_err(|e| format!("{}: kpak: {e}", path.display()))?;
    Kpak::from_bytes(&bytes).map_err(|e| format!("{}: kpak: {e}", path.display()))
}

fn config(cli: &Cli) -> Result<SwitchConfig, String> {
    let ports = match cli.rtp_port_range.as_deref() {
        Some(&[lo, hi]) if lo <= hi && lo > 0 => Some((lo, hi)),
        Some(_) => return Err("--rtp-port-range needs LO <= HI, both above 0".into()),
        None => None,
    };
    Ok(SwitchConfig {
        listen: cli.listen,
        tls: server_tls(&read(&cli.cert)?, &read(&cli.key)?).map_err(|e| e.to_string())?,
        kpak: kpak(&cli.kpak_from)?,
        media: MediaConfig {
            bind: cli.media_bind,
            public_host: cli.media_public.clone(),
            ports,
            latch: cli.media_latch,
        },
        store: StoreLimits {
            per_identity: cli.store_per_identity.min(cli.store_limit),
            total: cli.store_limit,
        },
        out_queue_bytes: cli.out_queue_bytes,
    })
}

/// A log line: Unix time with milliseconds, then the text.
fn stamp(line: &str) -> String {
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03} {line}\n", t.as_secs(), t.subsec_millis())
}

async fn run(cli: Cli) -> Result<(), String> {
    let cfg = config(&cli)?;
    let mut out: Box<dyn Write + Send> = match &cli.log {
        Some(p) => Box::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("{}: {e}", p.display()))?,
        ),
        None => Box::new(std::io::stderr()),
    };
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let (sw, mut log) = switch::start(cfg).await.map_err(|e| e.to_string())?;
    let addr = sw.local_addr();
    let mut write = move |line: &str| {
        // A log that cannot be written must not stop the switch.
        let _ = out.write_all(stamp(line).as_bytes());
        let _ = out.flush();
    };
    write(&format!("listening on {addr}"));
    println!("cig-crs ready on {addr}");
    let _ = std::io::stdout().flush();
    loop {
        tokio::select! {
            Some(line) = log.recv() => write(&line),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    write("shutting down");
    sw.shutdown().await;
    while let Ok(line) = log.try_recv() {
        write(&line);
    }
    write("stopped");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cig-crs: runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cig-crs: {e}");
            ExitCode::from(2)
        }
    }
}
