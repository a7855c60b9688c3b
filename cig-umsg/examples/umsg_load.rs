//! Load measurement for a UMSG switch (docs/perf.md, "UMSG switch load"): N phones register
//! over TLS through the client driver, then M calls are set up (BANG → TALK) between pairs of
//! them and hung up. Prints registrations/s, call set-ups/s, set-up latency, the load average
//! and, with `--crs-pid`, the switch process's CPU time per phase.
//!
//! ```text
//! cig-kms init --dir K --domain example.org; cig-kms switch-cert --dir K --name 127.0.0.1
//! cig-crs --listen 127.0.0.1:5223 --cert K/switch/127.0.0.1.pem --key K/switch/127.0.0.1.key \
//!         --kpak-from K --log crs.log &
//! cargo run --release -p cig-umsg --example umsg_load -- --switch 127.0.0.1:5223 --kms K \
//!         --phones 2000 --calls 600 --pairs 10 --workers 2 --crs-pid $!
//! ```
//!
//! `--workers W` splits the phones and the calls over W processes (this program started again
//! with `--worker I/W`), so the endpoints' MIKEY-SAKKE work runs on every core; each worker's
//! calls stay between its own phones. The workers register, warm up (`--warmup R` rounds of one
//! call per pair, so the per-peer tables of cig-mikey-sakke — the callee's RSK pairing lines and
//! own-identifier table, the ECCSI table of each caller's PVT, the caller's SAKKE table of its
//! callee — exist before timing, as they do for phones that call each other again), dial their
//! timed calls (SAKKE encapsulation + ECCSI signature at the caller, not timed), and start
//! sending them together on a `go` from this process. The timed phase is the switch's routing
//! and relay allocation plus the callee's ECCSI verification and SAKKE decapsulation.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use cig_mikey_sakke::kms::Community;
use cig_mikey_sakke::mikey::KeyPeriod;
use cig_umsg::call::{CallState, HangupReason, Media, SessionId};
use cig_umsg::client::Event;
use cig_umsg::driver::client::{self, ClientConfig, ClientEvent, ClientHandle};
use cig_umsg::frame::Frame;
use rand_core::OsRng;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
struct Args {
    switch: String,
    kms: PathBuf,
    phones: usize,
    calls: usize,
    pairs: usize,
    crs_pid: Option<u32>,
    workers: usize,
    warmup: usize,
    /// This process is worker I of W.
    worker: Option<(usize, usize)>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        switch: String::new(),
        kms: PathBuf::new(),
        phones: 2000,
        calls: 1000,
        pairs: usize::MAX,
        crs_pid: None,
        workers: 1,
        warmup: 2,
        worker: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        let num = |v: &str| v.parse::<usize>().map_err(|e| format!("{k}: {e}"));
        match k.as_str() {
            "--switch" => a.switch = v,
            "--kms" => a.kms = v.into(),
            "--phones" => a.phones = num(&v)?.max(2),
            "--calls" => a.calls = num(&v)?,
            "--pairs" => a.pairs = num(&v)?.max(1),
            "--crs-pid" => a.crs_pid = Some(num(&v)? as u32),
            "--workers" => a.workers = num(&v)?.max(1),
            "--warmup" => a.warmup = num(&v)?,
            "--worker" => {
                let (i, w) = v.split_once('/').ok_or("--worker I/W")?;
                a.worker = Some((num(i)?, num(w)?.max(1)));
            }
            _ => return Err(format!("unknown option {k}")),
        }
    }
    if a.switch.is_empty() || a.kms.as_os_str().is_empty() {
        return Err(
            "usage: umsg_load --switch ADDR --kms DIR [--phones N] [--calls M] \
                    [--pairs P] [--workers W] [--warmup R] [--crs-pid PID]"
                .into(),
        );
    }
    Ok(a)
}

/// User + system CPU seconds of a process (from /proc, 100 ticks per second).
fn cpu(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn rss_kib(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "n/a".into())
}

fn pct(sorted: &[f64], p: usize) -> f64 {
    sorted
        .get(sorted.len() * p / 100)
        .copied()
        .unwrap_or_default()
}

fn main() -> Result<(), String> {
    let a = args()?;
    if a.worker.is_some() || a.workers == 1 {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        return rt.block_on(worker(a));
    }
    coordinate(&a)
}

// ----- the coordinating process (--workers W > 1) ------------------------------------------

struct Worker {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Worker {
    /// The next line starting with `key`, its remaining words (other lines are echoed).
    fn expect(&mut self, key: &str) -> Result<Vec<String>, String> {
        loop {
            let mut line = String::new();
            if self.out.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err(format!("worker ended before {key}"));
            }
            match line.trim_end().strip_prefix(key) {
                Some(rest) => return Ok(rest.split_whitespace().map(str::to_owned).collect()),
                None => print!("  {line}"),
            }
        }
    }
}

fn coordinate(a: &Args) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let crs = a.crs_pid.map(|p| p.to_string());
    let crs_cpu = || crs.as_deref().and_then(cpu);
    let t = Instant::now();
    let cpu0 = crs_cpu();
    let mut workers = Vec::with_capacity(a.workers);
    for i in 0..a.workers {
        let mut cmd = Command::new(&exe);
        cmd.args(["--switch", &a.switch, "--kms"])
            .arg(&a.kms)
            .args(["--phones", &a.phones.to_string()])
            .args(["--calls", &a.calls.to_string()])
            .args(["--pairs", &a.pairs.min(a.phones / 2).to_string()])
            .args(["--warmup", &a.warmup.to_string()])
            .args(["--worker", &format!("{i}/{}", a.workers)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        let out = BufReader::new(child.stdout.take().ok_or("worker stdout")?);
        workers.push(Worker { child, out });
    }
    let mut reg_secs: f64 = 0.0;
    for w in &mut workers {
        let r = w.expect("registered")?;
        reg_secs = reg_secs.max(r.first().and_then(|s| s.parse().ok()).unwrap_or(0.0));
    }
    let cpu1 = crs_cpu();
    let rss = crs.as_deref().and_then(rss_kib);
    println!(
        "register: {} phones in {} workers, slowest worker {reg_secs:.2} s = {:.0}/s; switch CPU {}; RSS {}",
        a.phones,
        a.workers,
        a.phones as f64 / reg_secs.max(1e-9),
        lap(cpu0, cpu1, None),
        rss.map_or("n/a".into(), |r| format!(
            "{r} KiB ({:.1} KiB/phone)",
            r as f64 / a.phones as f64
        )),
    );
    for w in &mut workers {
        w.expect("dialled")?;
    }
    let load0 = loadavg();
    let cpu2 = crs_cpu();
    for w in &mut workers {
        let stdin = w.child.stdin.as_mut().ok_or("worker stdin")?;
        stdin.write_all(b"go\n").map_err(|e| e.to_string())?;
        stdin.flush().map_err(|e| e.to_string())?;
    }
    let (mut done, mut slowest, mut worker_cpu) = (0usize, 0.0f64, 0.0f64);
    let mut lat: Vec<f64> = Vec::new();
    for w in &mut workers {
        let r = w.expect("result")?;
        let f = |i: usize| r.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
        done += f(0) as usize;
        slowest = slowest.max(f(1));
        worker_cpu += f(2);
        lat.extend(
            r.get(3)
                .map(|s| s.split(',').filter_map(|x| x.parse::<f64>().ok()).collect())
                .unwrap_or_else(Vec::new),
        );
    }
    let cpu3 = crs_cpu();
    let load1 = loadavg();
    lat.sort_by(f64::total_cmp);
    let total = a.calls;
    println!(
        "calls: {done} of {total} set up in {slowest:.2} s = {:.0}/s; BANG->TALK p50 {:.0} ms \
         p99 {:.0} ms; switch CPU {}; workers' CPU {worker_cpu:.2} s ({:.2} ms per call); \
         load average {load0} -> {load1}",
        done as f64 / slowest.max(1e-9),
        pct(&lat, 50),
        pct(&lat, 99),
        lap(cpu2, cpu3, Some(done)),
        worker_cpu * 1000.0 / done.max(1) as f64,
    );
    for mut w in workers {
        let _ = w.child.wait();
    }
    println!("total {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// CPU seconds between two readings (and per call).
fn lap(a: Option<f64>, b: Option<f64>, per: Option<usize>) -> String {
    match (a, b, per) {
        (Some(a), Some(b), Some(n)) if n > 0 => {
            format!(
                "{:.2} s ({:.3} ms per call)",
                b - a,
                (b - a) * 1000.0 / n as f64
            )
        }
        (Some(a), Some(b), _) => format!("{:.2} s", b - a),
        _ => "n/a".into(),
    }
}

// ----- a worker (or the only process) -------------------------------------------------------

/// Waits for `go` on standard input (workers only).
async fn wait_go() -> Result<(), String> {
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        (line.trim() == "go")
            .then_some(())
            .ok_or_else(|| format!("expected go, got {line:?}"))
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn worker(a: Args) -> Result<(), String> {
    let (index, count) = a.worker.unwrap_or((0, 1));
    let coordinated = a.worker.is_some();
    let community = Community::load(&a.kms).map_err(|e| e.to_string())?;
    let ca = std::fs::read_to_string(a.kms.join("switch/ca.pem")).map_err(|e| e.to_string())?;
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let period = KeyPeriod::from_unix(unix).map_err(|e| e.to_string())?;
    let crs = a.crs_pid.map(|p| p.to_string());
    let cpus = || (crs.as_deref().and_then(cpu), cpu("self"));

    // This worker's phones and calls.
    let per = a.phones / count;
    let base = index * per;
    let calls = a.calls / count + usize::from(index < a.calls % count);
    let t = Instant::now();
    let mut keys = Vec::with_capacity(per);
    for i in base..base + per {
        let id = format!("tel:+4470{i:07}");
        let k = community
            .issue(&id, period, &mut OsRng)
            .map_err(|e| e.to_string())?;
        keys.push(community.key_material(&id, vec![k], vec![a.switch.clone()], Some(ca.clone())));
    }
    if !coordinated {
        println!(
            "keys: {per} identities issued in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }

    // Registration: all phones at once.
    let c0 = cpus();
    let t = Instant::now();
    let (reg_tx, mut reg_rx) = mpsc::unbounded_channel();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(SessionId, Instant)>();
    let mut phones: Vec<ClientHandle> = Vec::with_capacity(per);
    for k in keys {
        let me = k.identity.clone();
        let (h, rx) = client::start(ClientConfig::new(k));
        tokio::spawn(phone(me, h.clone(), rx, reg_tx.clone(), done_tx.clone()));
        phones.push(h);
    }
    for _ in 0..per {
        reg_rx.recv().await.ok_or("phone task ended")?;
    }
    let reg = t.elapsed().as_secs_f64();
    if coordinated {
        println!("registered {reg:.3}");
    } else {
        let c1 = cpus();
        let rss = crs.as_deref().and_then(rss_kib);
        println!(
            "register: {per} phones in {reg:.2} s = {:.0}/s; switch CPU {}, load CPU {}; switch RSS {}",
            per as f64 / reg,
            lap(c0.0, c1.0, None),
            lap(c0.1, c1.1, None),
            rss.map_or("n/a".into(), |r| format!(
                "{r} KiB ({:.1} KiB/phone)",
                r as f64 / per as f64
            )),
        );
    }

    let half = per / 2;
    let pairs = a.pairs.min(half).max(1);
    let offer = Media {
        codecs: vec![8, 0],
        dtmf_pt: 101,
        ssrc: 1,
    };
    let dial = |c: usize| -> Result<(usize, (SessionId, Frame)), String> {
        let (caller, callee) = (c % pairs, half + c % pairs);
        let to = format!("tel:+4470{:07}", base + callee);
        let d = phones[caller]
            .with(|s, now| s.calls.dial(&to, &offer, now, &mut OsRng))
            .ok_or("caller not registered")?
            .map_err(|e| e.to_string())?;
        Ok((caller, d))
    };
    let send =
        |bangs: Vec<(usize, (SessionId, Frame))>| -> Result<HashMap<SessionId, Instant>, String> {
            let mut sent = HashMap::with_capacity(bangs.len());
            for (caller, (id, frame)) in bangs {
                sent.insert(id, Instant::now());
                phones[caller]
                    .with(|s, _| s.send(frame))
                    .ok_or("caller not registered")?;
            }
            Ok(sent)
        };

    // Warm-up: `warmup` rounds of one call per pair (tables built, as between phones that
    // have called each other before).
    for _ in 0..a.warmup {
        let bangs = (0..pairs).map(dial).collect::<Result<Vec<_>, _>>()?;
        let mut sent = send(bangs)?;
        while !sent.is_empty() {
            let (id, _) = tokio::time::timeout(Duration::from_secs(60), done_rx.recv())
                .await
                .map_err(|_| "warm-up call not answered in 60 s")?
                .ok_or("phone task ended")?;
            sent.remove(&id);
        }
    }

    // The timed calls: dialled first (caller crypto), then sent together; timed until each
    // caller sees TALK.
    let t = Instant::now();
    let bangs = (0..calls).map(dial).collect::<Result<Vec<_>, _>>()?;
    let dial_secs = t.elapsed().as_secs_f64();
    if coordinated {
        println!("dialled");
        wait_go().await?;
    } else {
        println!(
            "dial (caller crypto, not timed below): {calls} BANGs in {dial_secs:.2} s = {:.2} ms each",
            dial_secs * 1000.0 / calls.max(1) as f64,
        );
    }
    let c2 = cpus();
    let load0 = loadavg();
    let t = Instant::now();
    let mut sent = send(bangs)?;
    let mut latencies = Vec::with_capacity(calls);
    let deadline = tokio::time::sleep(Duration::from_secs(120));
    tokio::pin!(deadline);
    while latencies.len() < calls {
        tokio::select! {
            got = done_rx.recv() => {
                let (id, at) = got.ok_or("phone task ended")?;
                if let Some(s) = sent.remove(&id) {
                    latencies.push(at.duration_since(s).as_secs_f64() * 1000.0);
                }
            }
            _ = &mut deadline => break,
        }
    }
    let el = t.elapsed().as_secs_f64();
    let c3 = cpus();
    if coordinated {
        let lat: Vec<String> = latencies.iter().map(|l| format!("{l:.1}")).collect();
        println!(
            "result {} {el:.4} {:.3} {}",
            latencies.len(),
            c3.1.zip(c2.1).map_or(0.0, |(b, a)| b - a),
            lat.join(",")
        );
    } else {
        latencies.sort_by(f64::total_cmp);
        let n = latencies.len();
        println!(
            "calls: {n} of {calls} set up in {el:.2} s = {:.0}/s; BANG->TALK p50 {:.0} ms p99 {:.0} ms; \
             switch CPU {}; load CPU {}; load average {load0} -> {}",
            n as f64 / el,
            pct(&latencies, 50),
            pct(&latencies, 99),
            lap(c2.0, c3.0, Some(n)),
            lap(c2.1, c3.1, Some(n)),
            loadavg(),
        );
    }
    for p in &phones {
        p.shutdown().await;
    }
    Ok(())
}

/// One phone: reports registration, answers incoming calls at once, reports its own calls
/// reaching TALK and hangs them up.
async fn phone(
    me: String,
    h: ClientHandle,
    mut rx: mpsc::UnboundedReceiver<ClientEvent>,
    reg: mpsc::UnboundedSender<()>,
    done: mpsc::UnboundedSender<(SessionId, Instant)>,
) {
    let answer = Media {
        codecs: vec![8],
        dtmf_pt: 101,
        ssrc: 2,
    };
    while let Some(e) = rx.recv().await {
        match e {
            ClientEvent::Registered { .. } => {
                let _ = reg.send(());
            }
            ClientEvent::Core(Event::Call(id)) => {
                let talk = h.with(|s, _| {
                    let c = s.calls.get(&id)?;
                    match (c.state, c.from == me) {
                        (CallState::Bang, false) => {
                            let f = s.calls.answer(&id, &answer)?;
                            s.send(f);
                            None
                        }
                        (CallState::Talk, true) => {
                            let f = s.calls.hangup(&id, HangupReason::Normal)?;
                            s.send(f);
                            Some(Instant::now())
                        }
                        _ => None,
                    }
                });
                if let Some(Some(at)) = talk {
                    let _ = done.send((id, at));
                }
            }
            _ => {}
        }
    }
}
