//! cig-server: the gateway. Loads cig.conf and the keystore, connects to cig-relay, registers
//! at the switch, listens for SIP, serves the management port, and runs the call engine of
//! `cig-gateway` between them. Prints `cig-server ready` on stdout once the SIP and management
//! ports are open and both the relay and the switch are connected.

mod keys;
mod logs;
mod messaging;
mod relay;
mod startup;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use cig_core::Secret;
use cig_core::conf::{self, Config, InterfaceKind};
use cig_gateway::engine::{Action, CallId, Dial, Engine, EngineConfig, Invite, SipCommand};
use cig_gateway::logfmt::Level;
use cig_gateway::secure::{Secure, SecureCall};
use cig_mgmt::{
    CallRow, CallState as MgmtState, LinkState, Provider, SipStatus, Status, UmsgRow, UmsgStatus,
};
use cig_mikey_sakke::kdf::SrtpKeys;
use cig_mikey_sakke::keystore::KeyMaterial;
use cig_mikey_sakke::mikey::KeyPeriod;
use cig_sip::driver::{self as sipdrv, SipHandle};
use cig_sip::ua::{Event as SipEvent, OutgoingCall, UaConfig, literal_target};
use cig_umsg::call::{HangupReason, Media, SessionId};
use cig_umsg::client::Event as UmsgEvent;
use cig_umsg::driver::client::{self as umsgdrv, ClientConfig, ClientEvent, ClientHandle};
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::logs::Logs;
use crate::relay::{Pool, PoolEvent};

/// The gateway server (see the manual's "CIG internals"). Every path and port has a flag so
/// several instances run side by side unprivileged.
#[derive(Debug, Parser)]
#[command(name = "cig-server", version)]
struct Args {
    /// Configuration file.
    #[arg(long, default_value = "/opt/cig/cig.conf")]
    config: PathBuf,
    /// Directory of the keystore (`.ks.<identity>`) and of a dropped `cig.raw` bundle.
    #[arg(long, default_value = "/opt/cig/userdata")]
    userdata: PathBuf,
    /// The identity whose keystore to use when userdata holds several.
    #[arg(long)]
    identity: Option<String>,
    /// Log directory (cig.log, session.log); overrides `log_dir` in cig.conf.
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// cig-relay's control socket.
    #[arg(long, default_value = "/run/cig/relay.sock")]
    relay_socket: PathBuf,
    /// Management port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = cig_mgmt::DEFAULT_PORT)]
    mgmt_port: u16,
    /// SIP port (UDP and TCP); overrides the sip interface's `port` (default 5060).
    #[arg(long)]
    sip_port: Option<u16>,
    /// SIP address; overrides the sip interface's `bind` (default 0.0.0.0).
    #[arg(long)]
    sip_bind: Option<IpAddr>,
    /// Address written in SDP when the relay reports an unspecified bind address (default: the
    /// SIP address, or 127.0.0.1 when that is unspecified too).
    #[arg(long)]
    media_ip: Option<IpAddr>,
    /// Switch address `host:port`; repeat for failover. Default: the key bundle's addresses.
    #[arg(long = "switch")]
    switches: Vec<String>,
    /// The notify hook, run with the event name (start, stop, switch-lost, switch-recovered,
    /// relay-lost, relay-recovered) when it exists.
    #[arg(long, default_value = "/opt/cig/scripts/notify.sh")]
    notify: PathBuf,
    /// Media timeout per call in seconds (0: none).
    #[arg(long, default_value_t = 30)]
    media_timeout: u32,
    /// Seconds an unanswered call may ring before it is given up.
    #[arg(long, default_value_t = 60)]
    setup_timeout: u64,
    /// A message from a mailbox or message centre that the switch or its recipient refused
    /// this many times is given up (the mailbox's failed/, a permanent error to the centre).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    message_refusals: u32,
    /// Write DEBUG lines to cig.log.
    #[arg(long)]
    debug: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The manual's start-up checks (platform, cig.conf, keystore) before any file or port;
    // cig.conf's diagnostics are those of `cig-cli read`.
    let checked = match startup::check(&args.config, &args.userdata, args.identity.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let config = checked.config;
    let log_dir = args
        .log_dir
        .clone()
        .or_else(|| config.log_dir.clone())
        .unwrap_or_else(|| PathBuf::from("/var/log/cig"));
    let mut logs = match Logs::open(&log_dir, args.debug) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cig-server: cannot open logs in {}: {e}", log_dir.display());
            return ExitCode::from(1);
        }
    };
    for w in &checked.warnings {
        logs.log("Server", Level::Warn, w);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cig-server: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(args, config, &mut logs)) {
        Ok(()) => {
            logs.flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            logs.log("Server", Level::Warn, &format!("stopped: {e}"));
            logs.flush();
            eprintln!("cig-server: {e}");
            ExitCode::from(1)
        }
    }
}

/// The configuration as cig.log shows it: passwords replaced.
fn masked(config: &Config) -> String {
    let mut c = config.clone();
    for a in &mut c.auths {
        a.password = Secret::new("********");
    }
    for m in &mut c.message_centers {
        m.password = Secret::new("********");
    }
    c.to_string()
}

/// The secure side over the UMSG driver's live session, the key material BANGs are built from
/// outside it, the permits of the dialling threads, and the callees whose SAKKE table is
/// wanted, for [`table_builder`].
#[derive(Debug, Clone)]
struct Umsg(
    ClientHandle,
    Arc<KeyMaterial>,
    Arc<Semaphore>,
    std::sync::mpsc::Sender<Vec<u8>>,
);

/// I_MESSAGEs built at the same time (SAKKE encapsulation + ECCSI signature, ~1.2 ms of CPU
/// each): two, the cores of the target machine; more would only queue on the cores and starve
/// the signalling threads. A callee's `[b]P + Z` table is built apart, in the background.
const DIALLERS: usize = 2;

/// The outcome of an [`Action::Dial`] for [`Engine::on_dialled`].
type Dialled = (CallId, Result<(SessionId, SrtpKeys), cig_gateway::Error>);

impl Umsg {
    /// Dials on the blocking pool: the I_MESSAGE (SAKKE encapsulation, ECCSI signature, ~1 ms)
    /// is built off the signalling loop and outside the UMSG session's lock, which is taken
    /// only to register the session; the outcome comes back on `done`.
    fn dial(&self, d: Dial, done: &mpsc::UnboundedSender<Dialled>) {
        let (umsg, keys, done) = (self.0.clone(), self.1.clone(), done.clone());
        let (permits, tables) = (self.2.clone(), self.3.clone());
        tokio::spawn(async move {
            // The semaphore is never closed.
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            let call = d.call;
            let dial_keys = keys.clone();
            let r = tokio::task::spawn_blocking(move || {
                cig_gateway::secure::prepare(&dial_keys, &d, SystemTime::now()).and_then(|call| {
                    umsg.with(|s, now| cig_gateway::secure::adopt(s, call, now))
                        .unwrap_or(Err(cig_gateway::Error::SwitchUnavailable))
                })
            })
            .await
            .unwrap_or(Err(cig_gateway::Error::SwitchUnavailable));
            let _ = done.send((call, r));
            // A callee dialled again gets its SAKKE table built in the background.
            while let Some(id) = keys.zpub.take_wanted_recipient() {
                let _ = tables.send(id);
            }
        });
    }
}

/// Builds the `[b]P + Z` SAKKE tables of callees dialled again (~0.1 s of CPU each) one at a
/// time, on a thread of its own: off every dial's path, and never more than one core's worth
/// (on the blocking pool, four new callees' tables would take both cores at once). Normal
/// priority on purpose: a table halves the cost of every later encapsulation to its callee
/// (~1 ms instead of ~2 ms), so on a busy machine it should be ready soon, not starved (see
/// docs/decisions.md). Ends when every sender is gone.
fn table_builder(keys: Arc<KeyMaterial>) -> std::io::Result<std::sync::mpsc::Sender<Vec<u8>>> {
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::Builder::new()
        .name("sakke-tables".to_owned())
        .spawn(move || {
            for id in rx {
                keys.zpub.prepare_recipient(&id);
            }
        })
        .map(|_| tx)
}

impl Secure for Umsg {
    fn growl(&mut self, id: &SessionId) {
        self.0.with(|s, _| Secure::growl(s, id));
    }
    fn answer(&mut self, id: &SessionId, media: &Media) {
        self.0.with(|s, _| Secure::answer(s, id, media));
    }
    fn hangup(&mut self, id: &SessionId, reason: HangupReason) {
        self.0.with(|s, _| Secure::hangup(s, id, reason));
    }
    fn call(&self, id: &SessionId) -> Option<SecureCall> {
        self.0.with(|s, _| Secure::call(s, id)).flatten()
    }
}

/// The call engine and the relay pool, which the main loop drives, and what else the
/// management port reads. MGMT locks the engine or the pool only for the request it answers
/// (`show call` copies the table then); the loop locks each for one step at a time, never
/// across an await, so its cost per event does not grow with the number of calls.
#[derive(Debug)]
struct Shared {
    engine: Mutex<Engine>,
    relays: Mutex<Pool>,
    umsg: ClientHandle,
    identity: String,
    domain: String,
    sip_bind: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Provider for Shared {
    fn calls(&self) -> Vec<CallRow> {
        rows(&lock(&self.engine))
    }
    fn umsg(&self) -> Vec<UmsgRow> {
        self.umsg
            .with(|s, now| s.calls.table(now))
            .unwrap_or_default()
            .into_iter()
            .map(|r| UmsgRow {
                from: r.from,
                to: r.to,
                state: r.state.to_owned(),
                time_secs: r.time,
                id: r.id,
            })
            .collect()
    }
    fn status(&self) -> Status {
        let (connection, switch_address) = match self.umsg.state() {
            umsgdrv::LinkState::Registered { switch } => (LinkState::Connected, switch),
            umsgdrv::LinkState::Connecting => (LinkState::Connecting, String::new()),
            umsgdrv::LinkState::Disconnected { .. } => (LinkState::Disconnected, String::new()),
        };
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let period = KeyPeriod::from_unix(now)
            .map(|p| p.to_string())
            .unwrap_or_default();
        Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            relay: lock(&self.relays).status(),
            umsg: UmsgStatus {
                identity: self.identity.clone(),
                domain: self.domain.clone(),
                switch_address,
                connection,
                crypto_state: "OK".to_owned(),
                period,
            },
            sip: SipStatus {
                bind: self.sip_bind.clone(),
            },
        }
    }
}

/// Runs the notify hook with `event` if it exists (not waited for, except at stop).
fn notify(script: &Path, event: &str, logs: &mut Logs) -> Option<tokio::process::Child> {
    if !script.exists() {
        return None;
    }
    match tokio::process::Command::new(script).arg(event).spawn() {
        Ok(child) => Some(child),
        Err(e) => {
            let text = format!("notify hook {} {event}: {e}", script.display());
            logs.log("Notify", Level::Warn, &text);
            None
        }
    }
}

fn reap(child: Option<tokio::process::Child>) {
    if let Some(mut c) = child {
        tokio::spawn(async move {
            let _ = c.wait().await;
        });
    }
}

async fn run(args: Args, config: Config, logs: &mut Logs) -> Result<(), String> {
    logs.log(
        "Server",
        Level::Init,
        &format!("cig-server {} starting", env!("CARGO_PKG_VERSION")),
    );
    logs.log(
        "Config",
        Level::Init,
        &format!("loaded {}", args.config.display()),
    );
    for line in masked(&config).lines() {
        logs.log("Config", Level::Init, line);
    }

    // Keys: the older drop-in path first, then the keystore.
    match keys::import_raw(&args.userdata) {
        keys::Import::Nothing => {}
        keys::Import::Imported(k) => logs.log(
            "Keys",
            Level::Init,
            &format!("imported cig.raw into {k}; cig.raw and cig.raw.code removed"),
        ),
        keys::Import::Refused(e) => logs.log(
            "Keys",
            Level::Warn,
            &format!("cig.raw refused and left in place: {e}"),
        ),
    }
    let material = keys::load(&args.userdata, args.identity.as_deref())?;
    // Build the crypto tables now (clones share them) so the first calls do not wait for them:
    // P's, g's and Z's fixed-base tables, each period's RSK pairing lines, our own [b]P + Z
    // table and ECCSI's signing table (KeyMaterial::prepare).
    material.prepare();
    // Callees' [b]P + Z tables are built in the background (table_builder), not by the dial
    // that sees a callee the second time: a burst of calls to a new phone never waits ~0.1 s.
    material.zpub.defer_recipient_tables();
    logs.log(
        "Keys",
        Level::Init,
        &format!(
            "identity {} domain {} periods {}",
            material.identity,
            material.domain,
            material
                .periods
                .iter()
                .map(|p| p.period.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
    );

    // SIP.
    let sip_if = config
        .interface(InterfaceKind::Sip)
        .cloned()
        .unwrap_or_default();
    let sip_ip = args
        .sip_bind
        .or(sip_if.bind)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let sip_port = args.sip_port.or(sip_if.port).unwrap_or(5060);
    let mut ua = UaConfig::new(SocketAddr::new(sip_ip, sip_port));
    ua.messaging = sip_if.messaging;
    ua.allow = sip_if.allow.clone();
    ua.user_agent = format!("CIG {}", env!("CARGO_PKG_VERSION"));
    let (sip, mut sip_events) = sipdrv::start(ua, seed())
        .await
        .map_err(|e| format!("cannot listen for SIP on {sip_ip}:{sip_port}: {e}"))?;
    logs.log(
        "SIP",
        Level::Init,
        &format!("listening on {} (UDP and TCP)", sip.local_addr()),
    );
    let media_ip = args.media_ip.unwrap_or(if sip_ip.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        sip_ip
    });

    // Engine.
    let settings = EngineConfig {
        media_ip,
        media_timeout_ms: args.media_timeout.saturating_mul(1000),
        setup_timeout: Duration::from_secs(args.setup_timeout),
        identity: material.identity.clone(),
        ..EngineConfig::default()
    };
    let engine = Engine::new(&config, settings).map_err(|e| e.to_string())?;

    // Switch.
    let mut ucfg = ClientConfig::new(material.clone());
    if !args.switches.is_empty() {
        ucfg.switches = args.switches.clone();
    }
    if ucfg.switches.is_empty() {
        return Err("no switch address: none in the key bundle and no --switch".to_owned());
    }
    // Text messages are acknowledged only once kept (messaging.rs).
    ucfg.defer_message_acks = true;
    let (umsg, mut umsg_events) = umsgdrv::start(ucfg);
    let dial_keys = Arc::new(material.clone());
    let mut secure = Umsg(
        umsg.clone(),
        Arc::clone(&dial_keys),
        Arc::new(Semaphore::new(DIALLERS)),
        table_builder(dial_keys).map_err(|e| format!("cannot start a thread: {e}"))?,
    );
    // Messaging: mailboxes and message centres (SMPP spools under userdata/spool), SIP MESSAGE.
    let spool = args.userdata.join("spool");
    let sip_messaging = sip_if.messaging.then(|| sip.clone());
    let (messaging, mut msg_log) = messaging::start(
        &config,
        &material.identity,
        &spool,
        umsg.clone(),
        sip_messaging,
        messaging::Options {
            max_refusals: args.message_refusals,
        },
    )?;

    // Relays: cig.conf's `relay` sections, or the one at --relay-socket.
    let (relays, mut relay_events) = Pool::start(relay::specs(&config.relays, &args.relay_socket)?);
    let (dial_tx, mut dialled) = mpsc::unbounded_channel::<Dialled>();

    // Management.
    let shared = Arc::new(Shared {
        engine: Mutex::new(engine),
        relays: Mutex::new(relays),
        umsg: umsg.clone(),
        identity: material.identity.clone(),
        domain: material.domain.clone(),
        sip_bind: sip.local_addr().ip().to_string(),
    });
    let mgmt = cig_mgmt::serve(args.mgmt_port, shared.clone())
        .await
        .map_err(|e| format!("cannot open the management port {}: {e}", args.mgmt_port))?;
    logs.log(
        "MGMT",
        Level::Init,
        &format!("listening on {}", mgmt.local_addr()),
    );
    drop(material);

    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut sighup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut sigusr1 = signal(SignalKind::user_defined1()).map_err(|e| e.to_string())?;

    reap(notify(&args.notify, "start", logs));
    let (engine, relays) = (&shared.engine, &shared.relays);
    // The replies to SIP commands nothing waits for (see `drain`).
    let mut sip_replies = JoinSet::new();
    // The engine's next timer, re-armed only when it changes.
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    let mut armed: Option<SystemTime> = None;
    let (mut relay_up, mut switch_up) = (false, false);
    let (mut relay_was_up, mut switch_was_up) = (false, false);
    let mut ready = false;
    loop {
        let timer = lock(engine).poll_timeout();
        if timer != armed {
            armed = timer;
            if let Some(t) = timer {
                let d = t.duration_since(SystemTime::now()).unwrap_or_default();
                sleep.as_mut().reset(tokio::time::Instant::now() + d);
            }
        }
        tokio::select! {
            Some(ev) = sip_events.recv() => match ev {
                ev @ (SipEvent::IncomingMessage { .. } | SipEvent::MessageResult { .. }) => {
                    messaging.sip_event(ev);
                }
                ev => lock(engine).on_sip(ev, SystemTime::now(), &mut secure),
            },
            Some((call, r)) = dialled.recv() => {
                lock(engine).on_dialled(call, r, SystemTime::now(), &mut secure);
            }
            Some(ev) = umsg_events.recv() => match ev {
                ClientEvent::Registered { switch } => {
                    logs.log("UMSG", Level::Info, &format!("registered at {switch}"));
                    switch_up = true;
                    lock(engine).switch_restored();
                    if switch_was_up {
                        reap(notify(&args.notify, "switch-recovered", logs));
                    }
                    switch_was_up = true;
                }
                ClientEvent::Disconnected { reason } => {
                    logs.log("UMSG", Level::Warn, &format!("switch connection: {reason}"));
                    if switch_up {
                        switch_up = false;
                        lock(engine).switch_lost(SystemTime::now(), &mut secure);
                        reap(notify(&args.notify, "switch-lost", logs));
                    }
                }
                ClientEvent::Core(UmsgEvent::Call(id)) => {
                    lock(engine).on_umsg_call(id, SystemTime::now(), &mut secure);
                }
                ClientEvent::Core(UmsgEvent::CallRefused(e)) => {
                    logs.log("UMSG", Level::Warn, &format!("incoming call refused: {e}"));
                }
                ClientEvent::Core(UmsgEvent::Message(m)) => messaging.received(m),
                ClientEvent::Core(UmsgEvent::Acked(id, status)) => messaging.acked(id, status),
                ClientEvent::Core(_) => {}
            },
            Some((i, ev)) = relay_events.recv() => {
                let pe = lock(relays).on_event(i, ev);
                match pe {
                    PoolEvent::Up { name, address, engines_available, engines_total, first } => {
                        logs.log("Relay", Level::Info, &format!(
                            "relay {name} connected to {address} \
                             ({engines_available}/{engines_total} crypto engines)"));
                        if first {
                            relay_up = true;
                            lock(engine).relay_restored();
                            if relay_was_up {
                                reap(notify(&args.notify, "relay-recovered", logs));
                            }
                            relay_was_up = true;
                        }
                    }
                    PoolEvent::Lost { name, why, calls, none_left } => {
                        logs.log("Relay", Level::Warn, &format!(
                            "relay {name} lost: {why}; ending its {} calls", calls.len()));
                        let why = format!("relay {name} lost");
                        let now = SystemTime::now();
                        let mut e = lock(engine);
                        e.relay_calls_lost(&calls, &why, now, &mut secure);
                        if none_left && relay_up {
                            relay_up = false;
                            e.relay_lost(now, &mut secure);
                            drop(e);
                            reap(notify(&args.notify, "relay-lost", logs));
                        }
                    }
                    PoolEvent::Failed { name, why } => {
                        logs.log("Relay", Level::Warn, &format!("relay {name}: {why}"));
                    }
                    PoolEvent::Reply(call, m) => {
                        lock(engine).on_relay_reply(call, m, SystemTime::now(), &mut secure);
                    }
                    PoolEvent::Event(m) => {
                        lock(engine).on_relay_event(m, SystemTime::now(), &mut secure);
                    }
                    PoolEvent::Nothing => {}
                }
            }
            Some(done) = sip_replies.join_next() => {
                if let Ok(Err(e)) = done {
                    logs.log("SIP", Level::Debug, &format!("command not applied: {e}"));
                }
            }
            Some((level, text)) = msg_log.recv() => logs.log("Message", level, &text),
            () = &mut sleep, if armed.is_some() => {
                armed = None;
                lock(engine).handle_timeout(SystemTime::now(), &mut secure);
            }
            _ = sighup.recv() => reload(&args.config, &mut lock(engine), logs),
            _ = sigusr1.recv() => {
                if let Err(e) = logs.reopen() {
                    eprintln!("cig-server: cannot reopen logs: {e}");
                }
                logs.log("Server", Level::Info, "log files reopened");
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
        drain(&shared, &sip, &mut secure, logs, &dial_tx, &mut sip_replies).await;
        if !ready && relay_up && switch_up {
            ready = true;
            logs.log("Server", Level::Info, "ready");
            println!("cig-server ready");
        }
        logs.flush();
    }

    // SIGTERM: hang up every call properly, give the messages a moment to leave, stop.
    logs.log("Server", Level::Info, "stopping: hanging up calls");
    lock(engine).hangup_all(SystemTime::now(), &mut secure);
    drain(&shared, &sip, &mut secure, logs, &dial_tx, &mut sip_replies).await;
    logs.flush();
    tokio::time::sleep(Duration::from_millis(200)).await;
    umsg.shutdown().await;
    mgmt.shutdown().await;
    if let Some(mut c) = notify(&args.notify, "stop", logs) {
        let _ = tokio::time::timeout(Duration::from_secs(5), c.wait()).await;
    }
    logs.log("Server", Level::Info, "stopped");
    Ok(())
}

fn rows(engine: &Engine) -> Vec<CallRow> {
    use cig_gateway::engine::CallState as S;
    engine
        .rows()
        .into_iter()
        .map(|r| CallRow {
            in_from: r.in_from,
            in_to: r.in_to,
            out_from: r.out_from,
            out_to: r.out_to,
            state: match r.state {
                S::Routed => MgmtState::Routed,
                S::Try => MgmtState::Try,
                S::Ring => MgmtState::Ring,
                S::Reject => MgmtState::Reject,
                S::Answer => MgmtState::Answer,
                S::Hangup => MgmtState::Hangup,
            },
        })
        .collect()
}

/// SIGHUP: a valid new cig.conf replaces the old one for new calls; a bad one is refused with
/// its diagnostics in cig.log.
fn reload(path: &Path, engine: &mut Engine, logs: &mut Logs) {
    match conf::load(path) {
        Ok(l) => match engine.reload(&l.config) {
            Ok(()) => {
                logs.log(
                    "Config",
                    Level::Init,
                    &format!("reloaded {} for new calls", path.display()),
                );
                for line in masked(&l.config).lines() {
                    logs.log("Config", Level::Init, line);
                }
            }
            Err(e) => logs.log(
                "Config",
                Level::Warn,
                &format!("reload refused, keeping the old configuration: {e}"),
            ),
        },
        Err(diags) => {
            logs.log(
                "Config",
                Level::Warn,
                &format!(
                    "reload of {} refused, keeping the old configuration:",
                    path.display()
                ),
            );
            for line in diags.to_string().lines() {
                logs.log("Config", Level::Warn, line);
            }
        }
    }
}

/// Carries out what the engine asked, in order. Every SIP command is handed to the user
/// agent at once, in the engine's order (a [`SipHandle`] method queues its command when
/// called); only an INVITE is awaited (the engine needs its handle before the call's events
/// are read), the other replies finish in `sip_replies`, so one slow command holds up neither
/// the loop nor the commands after it.
async fn drain(
    shared: &Shared,
    sip: &SipHandle,
    secure: &mut Umsg,
    logs: &mut Logs,
    dial_tx: &mpsc::UnboundedSender<Dialled>,
    sip_replies: &mut JoinSet<Result<(), cig_sip::Error>>,
) {
    loop {
        let next = lock(&shared.engine).poll_action();
        let Some(a) = next else { break };
        match a {
            Action::Dial(d) => secure.dial(*d, dial_tx),
            Action::Sip(SipCommand::Place(inv)) => {
                let call = inv.call;
                let handle = place(sip, *inv).await;
                if let Err(e) = &handle {
                    logs.log("SIP", Level::Warn, &format!("call {call}: INVITE: {e}"));
                }
                let now = SystemTime::now();
                lock(&shared.engine).on_sip_placed(call, handle.ok(), now, secure);
            }
            Action::Sip(SipCommand::Ringing(h)) => {
                sip_replies.spawn(sip.ringing(h));
            }
            Action::Sip(SipCommand::Answer(h, sdp)) => {
                sip_replies.spawn(sip.answer(h, sdp));
            }
            Action::Sip(SipCommand::Reject(h, status)) => {
                sip_replies.spawn(sip.reject(h, status));
            }
            Action::Sip(SipCommand::Hangup(h)) => {
                sip_replies.spawn(sip.hangup(h));
            }
            Action::Relay { call, command } => {
                // No relay can take a new session: the engine gets the refusal as the reply.
                let sent = lock(&shared.relays).send(call, *command);
                if let Err(refused) = sent {
                    let now = SystemTime::now();
                    lock(&shared.engine).on_relay_reply(call, *refused, now, secure);
                }
            }
            Action::SessionLog(l) => logs.session(&l),
            Action::Log(level, l) => logs.raw(level, &l),
        }
    }
}

/// Places the INVITE; its handle and Call-ID.
async fn place(
    sip: &SipHandle,
    inv: Invite,
) -> Result<(cig_sip::ua::CallHandle, String), cig_sip::Error> {
    let target = match literal_target(&inv.uri) {
        Some(t) => t,
        None => sipdrv::resolve(&inv.uri).await?,
    };
    sip.place_call_with_id(OutgoingCall {
        target,
        from: inv.from,
        to: inv.to,
        sdp: inv.sdp,
        credentials: inv.credentials,
    })
    .await
}

/// A random seed for the SIP user agent's tags and branches.
fn seed() -> u64 {
    use rand_core::RngCore;
    rand_core::OsRng.next_u64()
}
