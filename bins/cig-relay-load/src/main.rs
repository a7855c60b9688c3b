//! `cig-relay-load`: drives a cig-relay with N bidirectional SRTP ⇄ RTP G.711 calls and reports
//! loss, added latency, relay CPU per call and per packet, and memory per session — next to a
//! plain UDP forwarder (`cig-relay --engine plain`: same sockets, same engine loop, no crypto,
//! no transcoding) measured by the same generator in the same run.
//!
//! Per call the generator owns two UDP sockets (the secure phone's and the PBX's) and sends one
//! 20 ms packet per direction every 20 ms (50 packets/s each way), with the calls' phases spread
//! evenly over the 20 ms. Leg A carries SRTP (AES_CM_128_HMAC_SHA1_80) μ-law, leg B plain RTP
//! A-law. Latency is receive time minus send time of the same packet (matched by sequence
//! number), so it includes both kernel hops and the generator's own scheduling.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use cig_media::control::{
    Client, Codec, Command, KeyMaterial, LegConfig, Reply, SecretBytes, SrtpConfig, SrtpProfileName,
};
use cig_media::g711;
use cig_media::rtp::{self, RtpHeader};
use cig_media::srtp::{MasterKey, SrtpContext, SrtpProfile};
use clap::Parser;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

/// Load generator for cig-relay.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The cig-relay binary (default: next to this one).
    #[arg(long)]
    relay: Option<PathBuf>,
    /// Call counts to run, e.g. `--calls 100,500,1000,1500`.
    #[arg(long, value_delimiter = ',', default_values_t = [100usize])]
    calls: Vec<usize>,
    /// Seconds of traffic per run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Relay crypto engines.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Relay RTP port range.
    #[arg(long, num_args = 2, value_names = ["LOW", "HIGH"], default_values_t = [30000u16, 39999])]
    rtp_port_range: Vec<u16>,
    /// Skip the plain-forwarder baseline.
    #[arg(long)]
    no_baseline: bool,
}

/// Packets per second per direction (20 ms G.711 frames).
const RATE: u32 = 50;
const FRAME: usize = 160;
const RING: usize = 1024;
const KEY_A_IN: [u8; 16] = [0x11; 16];
const SALT_A_IN: [u8; 14] = [0x22; 14];
const KEY_A_OUT: [u8; 16] = [0x33; 16];
const SALT_A_OUT: [u8; 14] = [0x44; 14];

/// One generated call: the two peers of the relay.
struct Call {
    a: UdpSocket,
    b: UdpSocket,
    relay_a: SocketAddr,
    relay_b: SocketAddr,
    protect_a: SrtpContext,
    unprotect_a: SrtpContext,
    next_seq: [u16; 2],
    first_seq: [u16; 2],
    /// Send times (ns since the run's epoch) by sequence number, per direction (0: A→B).
    sent_at: [Box<[u64; RING]>; 2],
    /// (first received output sequence, first sent input sequence) per direction.
    base: [Option<(u16, u16)>; 2],
    received: [u64; 2],
    bad: u64,
}

#[derive(Debug, Default)]
struct RunResult {
    calls: usize,
    seconds: f64,
    offered_pps: f64,
    sent: u64,
    received: u64,
    bad: u64,
    relay_cpu_s: f64,
    relay_user_s: f64,
    generator_cpu_s: f64,
    rss_per_session: f64,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
}

/// (utime, stime) of a process, in clock ticks.
fn clock_ticks(pid: u32) -> std::io::Result<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let parse = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok((parse(11), parse(12)))
}

/// (user, system) CPU seconds of a process (USER_HZ is 100 on Linux).
fn cpu_seconds(pid: u32) -> (f64, f64) {
    clock_ticks(pid).map_or((0.0, 0.0), |(u, s)| (u as f64 / 100.0, s as f64 / 100.0))
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

struct RelayProcess {
    child: Child,
    control: PathBuf,
    _dir: tempfile::TempDir,
}

impl RelayProcess {
    fn start(relay: &Path, engine: &str, args: &Args) -> std::io::Result<RelayProcess> {
        let dir = tempfile::tempdir()?;
        let control = dir.path().join("relay.sock");
        let mut child = Process::new(relay)
            .arg("--control")
            .arg(&control)
            .arg("--log-dir")
            .arg(dir.path())
            .arg("--rtp-port-range")
            .arg(args.rtp_port_range[0].to_string())
            .arg(args.rtp_port_range[1].to_string())
            .args(["--bind", "127.0.0.1", "--workers"])
            .arg(args.workers.to_string())
            .args(["--engine", engine])
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        if !line.starts_with("cig-relay ready") {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other(format!(
                "relay did not start: {line:?}"
            )));
        }
        Ok(RelayProcess {
            child,
            control,
            _dir: dir,
        })
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        );
        let _ = self.child.wait();
    }
}

fn key(profile: SrtpProfile, k: &[u8], s: &[u8]) -> MasterKey {
    MasterKey::new(profile, k, s).expect("fixed key lengths match the profile")
}

fn tone(law_a: bool) -> [u8; FRAME] {
    let mut pcm = [0i16; FRAME];
    for (i, s) in pcm.iter_mut().enumerate() {
        *s = (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 8000.0).sin()) as i16;
    }
    let mut out = [0u8; FRAME];
    if law_a {
        g711::encode_alaw(&pcm, &mut out);
    } else {
        g711::encode_ulaw(&pcm, &mut out);
    }
    out
}

fn setup_calls(
    client: &mut Client,
    poll: &Poll,
    n: usize,
) -> Result<Vec<Call>, Box<dyn std::error::Error>> {
    let profile = SrtpProfile::Aes128CmHmacSha1_80;
    let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    let mut calls = Vec::with_capacity(n);
    for i in 0..n {
        let mut a = UdpSocket::bind(local)?;
        let mut b = UdpSocket::bind(local)?;
        let mut leg_a = LegConfig::rtp(Codec::Pcmu);
        leg_a.remote = Some(a.local_addr()?);
        leg_a.telephone_event_pt = Some(101);
        leg_a.srtp = Some(SrtpConfig {
            profile: SrtpProfileName::AesCm128HmacSha1_80,
            inbound: KeyMaterial {
                key: SecretBytes::new(&KEY_A_IN),
                salt: SecretBytes::new(&SALT_A_IN),
            },
            outbound: KeyMaterial {
                key: SecretBytes::new(&KEY_A_OUT),
                salt: SecretBytes::new(&SALT_A_OUT),
            },
        });
        let mut leg_b = LegConfig::rtp(Codec::Pcma);
        leg_b.remote = Some(b.local_addr()?);
        leg_b.telephone_event_pt = Some(101);
        let reply = client.call(Command::CreateSession {
            session: format!("load-{i}"),
            a: leg_a,
            b: leg_b,
            media_timeout_ms: 0,
        })?;
        let Reply::SessionCreated { a: pa, b: pb, .. } = reply else {
            return Err(format!("unexpected reply {reply:?}").into());
        };
        poll.registry()
            .register(&mut a, Token(2 * i), Interest::READABLE)?;
        poll.registry()
            .register(&mut b, Token(2 * i + 1), Interest::READABLE)?;
        let first_seq = [(i as u16).wrapping_mul(7), (i as u16).wrapping_mul(13)];
        calls.push(Call {
            a,
            b,
            relay_a: SocketAddr::new(pa.ip, pa.rtp_port),
            relay_b: SocketAddr::new(pb.ip, pb.rtp_port),
            protect_a: SrtpContext::new(&key(profile, &KEY_A_IN, &SALT_A_IN)),
            unprotect_a: SrtpContext::new(&key(profile, &KEY_A_OUT, &SALT_A_OUT)),
            next_seq: first_seq,
            first_seq,
            sent_at: [Box::new([0; RING]), Box::new([0; RING])],
            base: [None, None],
            received: [0; 2],
            bad: 0,
        });
    }
    Ok(calls)
}

/// Sends one frame in direction `dir` (0: A→B, SRTP μ-law; 1: B→A, RTP A-law).
fn send_one(call: &mut Call, dir: usize, i: usize, frames: &[[u8; FRAME]; 2], epoch: Instant) {
    let mut buf = [0u8; 256];
    let seq = call.next_seq[dir];
    call.next_seq[dir] = seq.wrapping_add(1);
    let ts = u32::from(seq).wrapping_mul(FRAME as u32);
    let ssrc = (i as u32) << 1 | dir as u32;
    let pt = if dir == 0 { 0 } else { 8 };
    if rtp::write_header(&mut buf, false, pt, seq, ts, ssrc).is_err() {
        return;
    }
    buf[12..12 + FRAME].copy_from_slice(&frames[dir]);
    let mut len = 12 + FRAME;
    if dir == 0 {
        match call.protect_a.protect_rtp(&mut buf, len) {
            Ok(l) => len = l,
            Err(_) => return,
        }
    }
    call.sent_at[dir][usize::from(seq) % RING] = epoch.elapsed().as_nanos() as u64;
    let (sock, dst) = if dir == 0 {
        (&call.a, call.relay_a)
    } else {
        (&call.b, call.relay_b)
    };
    let _ = sock.send_to(&buf[..len], dst);
}

/// Drains one generator socket; `dir` is the direction of the packets it receives.
fn receive(call: &mut Call, dir: usize, plain: bool, epoch: Instant, lat: &mut Vec<u32>) {
    let mut buf = [0u8; 512];
    loop {
        let sock = if dir == 0 { &call.b } else { &call.a };
        let len = match sock.recv_from(&mut buf) {
            Ok((len, _)) => len,
            Err(_) => break,
        };
        let at = epoch.elapsed().as_nanos() as u64;
        // Through the bridge, B→A arrives as SRTP on A and must verify.
        let len = if dir == 1 && !plain {
            match call.unprotect_a.unprotect_rtp(&mut buf, len) {
                Ok(l) => l,
                Err(_) => {
                    call.bad += 1;
                    continue;
                }
            }
        } else {
            len
        };
        let Ok(h) = RtpHeader::parse(&buf[..len]) else {
            call.bad += 1;
            continue;
        };
        // Through the bridge, A→B is transcoded μ→A-law (PT 8) and B→A A→μ-law (PT 0).
        let want_pt = if plain { [0, 8][dir] } else { [8, 0][dir] };
        if h.payload_type != want_pt || len < h.header_len + FRAME {
            call.bad += 1;
            continue;
        }
        // The first packet received is taken to be the first sent (no loss before it).
        let first_sent = call.first_seq[dir];
        let (first_out, first_in) = *call.base[dir].get_or_insert((h.sequence, first_sent));
        let in_seq = h.sequence.wrapping_sub(first_out).wrapping_add(first_in);
        let sent = call.sent_at[dir][usize::from(in_seq) % RING];
        call.received[dir] += 1;
        if sent != 0 && at >= sent {
            lat.push(u32::try_from((at - sent) / 1000).unwrap_or(u32::MAX));
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)])
}

fn run(
    relay: &Path,
    engine: &str,
    n: usize,
    args: &Args,
) -> Result<RunResult, Box<dyn std::error::Error>> {
    let proc_ = RelayProcess::start(relay, engine, args)?;
    let pid = proc_.child.id();
    let (mut client, _) = Client::connect(&proc_.control, "cig-relay-load")?;
    let mut poll = Poll::new()?;
    let rss0 = rss_kib(pid);
    let mut calls = setup_calls(&mut client, &poll, n)?;
    let rss1 = rss_kib(pid);
    let frames = [tone(false), tone(true)];
    let plain = engine == "plain";
    let mut events = Events::with_capacity(4096);
    let mut lat = Vec::with_capacity(n * 2 * (args.seconds as usize + 1) * RATE as usize);
    let period = Duration::from_secs(1) / RATE;
    let total_sends = (args.seconds * f64::from(RATE)) as u64 * n as u64;
    let step_ns = period.as_nanos() as u64 / n as u64;
    let duration_ns = (args.seconds * 1e9) as u64;
    let epoch = Instant::now();
    let cpu0 = cpu_seconds(pid);
    let gen0 = cpu_seconds(std::process::id());
    let mut j: u64 = 0;
    let drain_until = loop {
        let now_ns = epoch.elapsed().as_nanos() as u64;
        let mut burst = 0;
        while j < total_sends && j * step_ns <= now_ns && burst < 256 {
            let i = (j % n as u64) as usize;
            send_one(&mut calls[i], 0, i, &frames, epoch);
            send_one(&mut calls[i], 1, i, &frames, epoch);
            j += 1;
            burst += 1;
        }
        // Stop on schedule even if a starved generator fell behind: the achieved rate is
        // reported next to the offered one.
        if j >= total_sends || now_ns >= duration_ns {
            break Instant::now() + Duration::from_millis(300);
        }
        let wait = Duration::from_nanos((j * step_ns).saturating_sub(now_ns));
        poll.poll(&mut events, Some(wait))?;
        for ev in events.iter() {
            let (i, side_b) = (ev.token().0 / 2, ev.token().0 % 2 == 1);
            // Packets arriving on B went A→B (direction 0).
            receive(
                &mut calls[i],
                if side_b { 0 } else { 1 },
                plain,
                epoch,
                &mut lat,
            );
        }
    };
    let cpu1 = cpu_seconds(pid);
    let gen1 = cpu_seconds(std::process::id());
    let wall = epoch.elapsed().as_secs_f64();
    let offered_pps = 2.0 * f64::from(RATE) * n as f64;
    while Instant::now() < drain_until {
        poll.poll(&mut events, Some(drain_until - Instant::now()))?;
        for ev in events.iter() {
            let (i, side_b) = (ev.token().0 / 2, ev.token().0 % 2 == 1);
            receive(
                &mut calls[i],
                if side_b { 0 } else { 1 },
                plain,
                epoch,
                &mut lat,
            );
        }
    }
    lat.sort_unstable();
    let received: u64 = calls.iter().map(|c| c.received[0] + c.received[1]).sum();
    let bad = calls.iter().map(|c| c.bad).sum();
    drop(client);
    Ok(RunResult {
        calls: n,
        seconds: wall,
        offered_pps,
        sent: 2 * j,
        received,
        bad,
        relay_cpu_s: (cpu1.0 + cpu1.1) - (cpu0.0 + cpu0.1),
        relay_user_s: cpu1.0 - cpu0.0,
        generator_cpu_s: (gen1.0 + gen1.1) - (gen0.0 + gen0.1),
        rss_per_session: (rss1.saturating_sub(rss0) as f64 * 1024.0) / n as f64,
        p50_us: percentile(&lat, 0.50),
        p99_us: percentile(&lat, 0.99),
        max_us: lat.last().map_or(f64::NAN, |&m| f64::from(m)),
    })
}

fn report(engine: &str, r: &RunResult) {
    let lost = r.sent.saturating_sub(r.received);
    let cpu_frac = r.relay_cpu_s / r.seconds;
    println!(
        "{engine:>6} calls {:>5}  rate {:>6.0}/{:>6.0} pps  sent {:>8}  lost {:>6} ({:.3}%)  bad {:>3}  p50 {:>6.0} us  p99 {:>6.0} us  max {:>6.0} us  relay CPU {:>5.1}% of a core = {:.4}%/call, {:.2} us/packet (user {:.2})  gen CPU {:>5.1}%  RSS/session {:>6.0} B",
        r.calls,
        r.sent as f64 / r.seconds,
        r.offered_pps,
        r.sent,
        lost,
        100.0 * lost as f64 / r.sent.max(1) as f64,
        r.bad,
        r.p50_us,
        r.p99_us,
        r.max_us,
        100.0 * cpu_frac,
        100.0 * cpu_frac / r.calls as f64,
        1e6 * r.relay_cpu_s / r.sent.max(1) as f64,
        1e6 * r.relay_user_s / r.sent.max(1) as f64,
        100.0 * r.generator_cpu_s / r.seconds,
        r.rss_per_session,
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let relay = match &args.relay {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("cig-relay"),
    };
    for &n in &args.calls {
        let bridge = run(&relay, "bridge", n, &args)?;
        report("bridge", &bridge);
        if !args.no_baseline {
            let base = run(&relay, "plain", n, &args)?;
            report("plain", &base);
            let per = |r: &RunResult| r.relay_cpu_s / r.sent.max(1) as f64;
            println!(
                "ratio  calls {n:>5}  relay CPU per packet / plain forwarder CPU per packet = {:.2}",
                per(&bridge) / per(&base)
            );
        }
    }
    Ok(())
}
