//! Load measurement for a UMSG switch (docs/perf.md, "UMSG switch load"): N phones register
//! over TLS through the client driver, then M calls are set up (BANG → TALK) between pairs of
//! them and hung up. Prints registrations/s, call set-ups/s, set-up latency and, with
//! `--crs-pid`, the switch process's CPU time per phase.
//!
//! ```text
//! cig-kms init --dir K --domain example.org; cig-kms switch-cert --dir K --name 127.0.0.1
//! cig-crs --listen 127.0.0.1:5223 --cert K/switch/127.0.0.1.pem --key K/switch/127.0.0.1.key \
//!         --kpak-from K --log crs.log &
//! cargo run --release -p cig-umsg --example umsg_load -- --switch 127.0.0.1:5223 --kms K \
//!         --phones 2000 --calls 300 --pairs 10 --crs-pid $!
//! ```
//!
//! Call set-ups are dialled (SAKKE encapsulation + ECCSI signature at the caller) before the
//! timed phase, so the timed phase is the switch's routing and relay allocation plus the
//! callee's ECCSI verification and SAKKE decapsulation, which run in this process.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use cig_mikey_sakke::kms::Community;
use cig_mikey_sakke::mikey::KeyPeriod;
use cig_umsg::call::{CallState, HangupReason, Media, SessionId};
use cig_umsg::client::Event;
use cig_umsg::driver::client::{self, ClientConfig, ClientEvent, ClientHandle};
use rand_core::OsRng;
use tokio::sync::mpsc;

struct Args {
    switch: String,
    kms: PathBuf,
    phones: usize,
    calls: usize,
    pairs: usize,
    crs_pid: Option<u32>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        switch: String::new(),
        kms: PathBuf::new(),
        phones: 2000,
        calls: 1000,
        pairs: usize::MAX,
        crs_pid: None,
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
            _ => return Err(format!("unknown option {k}")),
        }
    }
    if a.switch.is_empty() || a.kms.as_os_str().is_empty() {
        return Err(
            "usage: umsg_load --switch ADDR --kms DIR [--phones N] [--calls M] [--pairs P] [--crs-pid PID]"
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

struct Cpu {
    crs: Option<String>,
    at: (Option<f64>, Option<f64>),
}

impl Cpu {
    fn new(crs: Option<u32>) -> Self {
        let crs = crs.map(|p| p.to_string());
        let mut c = Self {
            crs,
            at: (None, None),
        };
        c.at = c.now();
        c
    }
    fn now(&self) -> (Option<f64>, Option<f64>) {
        (self.crs.as_deref().and_then(cpu), cpu("self"))
    }
    /// CPU seconds (switch, this process) since the last call.
    fn lap(&mut self) -> String {
        let now = self.now();
        let d = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.2} s", b - a),
            _ => "n/a".into(),
        };
        let s = format!(
            "cpu switch {} / load+phones {}",
            d(self.at.0, now.0),
            d(self.at.1, now.1)
        );
        self.at = now;
        s
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), String> {
    let a = args()?;
    let community = Community::load(&a.kms).map_err(|e| e.to_string())?;
    let ca = std::fs::read_to_string(a.kms.join("switch/ca.pem")).map_err(|e| e.to_string())?;
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let period = KeyPeriod::from_unix(unix).map_err(|e| e.to_string())?;
    let mut cpu = Cpu::new(a.crs_pid);

    let t = Instant::now();
    let mut keys = Vec::with_capacity(a.phones);
    for i in 0..a.phones {
        let id = format!("tel:+4470{i:07}");
        let k = community
            .issue(&id, period, &mut OsRng)
            .map_err(|e| e.to_string())?;
        keys.push(community.key_material(&id, vec![k], vec![a.switch.clone()], Some(ca.clone())));
    }
    println!(
        "keys: {} identities issued in {:.1} s ({})",
        a.phones,
        t.elapsed().as_secs_f64(),
        cpu.lap()
    );

    // Registration: all phones at once.
    let t = Instant::now();
    let (reg_tx, mut reg_rx) = mpsc::unbounded_channel();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(SessionId, Instant)>();
    let mut phones: Vec<ClientHandle> = Vec::with_capacity(a.phones);
    for k in keys {
        let me = k.identity.clone();
        let (h, rx) = client::start(ClientConfig::new(k));
        tokio::spawn(phone(me, h.clone(), rx, reg_tx.clone(), done_tx.clone()));
        phones.push(h);
    }
    for _ in 0..a.phones {
        reg_rx.recv().await.ok_or("phone task ended")?;
    }
    let reg = t.elapsed().as_secs_f64();
    let rss = a.crs_pid.and_then(|p| rss_kib(&p.to_string()));
    println!(
        "register: {} phones in {reg:.2} s = {:.0}/s ({}); switch RSS {}",
        a.phones,
        a.phones as f64 / reg,
        cpu.lap(),
        rss.map_or("n/a".into(), |r| format!(
            "{r} KiB ({:.1} KiB/phone)",
            r as f64 / a.phones as f64
        )),
    );

    // Calls: dialled first (caller crypto), then sent together; timed until each caller sees TALK.
    // Calls cycle over `pairs` caller/callee pairs (each phone's first call builds its
    // per-recipient SAKKE tables; later calls between the same phones reuse them).
    let half = a.phones / 2;
    let pairs = a.pairs.min(half);
    let offer = Media {
        codecs: vec![8, 0],
        dtmf_pt: 101,
        ssrc: 1,
    };
    let t = Instant::now();
    let mut bangs = Vec::with_capacity(a.calls);
    for c in 0..a.calls {
        let (caller, callee) = (c % pairs, half + c % pairs);
        let to = format!("tel:+4470{callee:07}");
        let dialled = phones[caller]
            .with(|s, now| s.calls.dial(&to, &offer, now, &mut OsRng))
            .ok_or("caller not registered")?
            .map_err(|e| e.to_string())?;
        bangs.push((caller, dialled));
    }
    let dial = t.elapsed().as_secs_f64();
    println!(
        "dial (caller crypto, not timed below): {} BANGs in {dial:.2} s = {:.2} ms each ({})",
        a.calls,
        dial * 1000.0 / a.calls as f64,
        cpu.lap()
    );
    let t = Instant::now();
    let mut sent = HashMap::with_capacity(a.calls);
    for (caller, (id, frame)) in bangs {
        sent.insert(id, Instant::now());
        phones[caller]
            .with(|s, _| s.send(frame))
            .ok_or("caller not registered")?;
    }
    let mut latencies = Vec::with_capacity(a.calls);
    let deadline = tokio::time::sleep(Duration::from_secs(120));
    tokio::pin!(deadline);
    while latencies.len() < a.calls {
        tokio::select! {
            got = done_rx.recv() => {
                let (id, at) = got.ok_or("phone task ended")?;
                if let Some(s) = sent.remove(&id) {
                    latencies.push(at.duration_since(s));
                }
            }
            _ = &mut deadline => break,
        }
    }
    let el = t.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: usize| {
        latencies
            .get(latencies.len() * p / 100)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "calls: {} of {} set up in {el:.2} s = {:.0}/s; BANG->TALK p50 {:.0} ms p99 {:.0} ms ({})",
        latencies.len(),
        a.calls,
        latencies.len() as f64 / el,
        pct(50),
        pct(99),
        cpu.lap()
    );
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
