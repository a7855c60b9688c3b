//! `cig-relay-load`: drives a cig-relay with N bidirectional SRTP ⇄ RTP G.711 calls and reports
//! loss, added latency, relay CPU per call and per packet, and memory per session — next to a
//! plain UDP forwarder (`cig-relay --engine plain`: same sockets, same engine loop, no crypto,
//! no transcoding) measured by the same generator in the same run.
//!
//! Every call sends one 20 ms packet per direction every 20 ms (50 packets/s each way). Each
//! call and direction has its own phase in the 20 ms period, drawn uniformly at random once
//! (`--phases random`, the default: independent calls, as a relay sees them) or spread evenly
//! (`--phases even`: call i at i/N of the period, both directions together). Leg A carries SRTP (AES_CM_128_HMAC_SHA1_80)
//! μ-law, leg B plain RTP A-law. The generator plays all the secure phones from `--gen-sockets`
//! UDP sockets and all the PBX legs from as many others (the relay legs' remote addresses point
//! at them), sends with `sendmmsg` and receives with `recvmmsg`, so that one generator thread
//! can offer 2 × 150 k packets/s; received packets are told apart by the relay port they come
//! from. By default it polls its sockets without sleeping and without registering them with
//! epoll (`--sleep` waits in epoll instead), so the relay's sends never wake it or touch an
//! epoll of the generator. Latency is receive time minus send time of the
//! same packet (matched by sequence number); both are taken once per `sendmmsg`/`recvmmsg`
//! batch, so it includes both kernel hops and the generator's own batching; the plain
//! forwarder's figures, measured by the same generator, are that floor, and "added" latency is
//! the relay's percentile minus the plain forwarder's.

use std::io::{BufRead, BufReader, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
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
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrIn, recvmmsg, setsockopt, sockopt};
use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny, sendmmsg};

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
    /// Generator sockets per side (secure phones, PBX legs); call i uses socket i mod this.
    #[arg(long, default_value_t = 1)]
    gen_sockets: usize,
    /// Release due packets only every this many µs (0: as soon as each is due).
    #[arg(long, default_value_t = 0)]
    tick_us: u64,
    /// Wait in epoll until the next send or a reply instead of polling the sockets.
    #[arg(long)]
    sleep: bool,
    /// Passed to the relay: datagrams per `recvmmsg` (1: the unbatched read-until-EAGAIN path).
    #[arg(long, default_value_t = 32)]
    recv_batch: usize,
    /// How the calls' send times are placed in the 20 ms period.
    #[arg(long, value_enum, default_value_t = Phases::Random)]
    phases: Phases,
    /// Pin the generator to CPU GEN and every relay thread to CPU RELAY (e.g. `--pin 0 1`), so
    /// neither migrates or shares a core with the other.
    #[arg(long, num_args = 2, value_names = ["GEN", "RELAY"])]
    pin: Option<Vec<usize>>,
}

/// Restricts thread `tid` (0: the calling thread) to `cpu`.
fn pin_thread(tid: i32, cpu: usize) -> nix::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(tid), &set)
}

/// Pins every thread of process `pid` (its engines exist once it said "ready") to `cpu`.
fn pin_process(pid: u32, cpu: usize) -> Result<(), Box<dyn std::error::Error>> {
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let tid: i32 = task?.file_name().to_string_lossy().parse()?;
        pin_thread(tid, cpu)?;
    }
    Ok(())
}

/// Placement of each call's and direction's send time in the 20 ms period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Phases {
    /// Independent, uniformly random phases (fixed seed: the same schedule every run).
    Random,
    /// Call i at i/N of the period, both directions at once.
    Even,
}

/// The send schedule of one period: (offset in ns, call, direction), sorted by offset.
fn schedule(n: usize, phases: Phases, period_ns: u64) -> Vec<(u64, usize, usize)> {
    // splitmix64: a fixed, dependency-free sequence of uniform 64-bit values.
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut plan: Vec<(u64, usize, usize)> = (0..n)
        .flat_map(|i| [(i, 0), (i, 1)])
        .map(|(i, dir)| {
            let at = match phases {
                Phases::Random => next() % period_ns,
                Phases::Even => i as u64 * period_ns / n as u64,
            };
            (at, i, dir)
        })
        .collect();
    plan.sort_unstable();
    plan
}

/// Packets per second per direction (20 ms G.711 frames).
const RATE: u32 = 50;
const FRAME: usize = 160;
const RING: usize = 1024;
/// Datagrams per `sendmmsg` / `recvmmsg`.
const BATCH: usize = 64;
/// Generator packet buffers (RTP header + frame + SRTP tag fit).
const PKT: usize = 512;
/// Socket buffers asked for (the kernel caps them at net.core.[rw]mem_max).
const SOCK_BUF: usize = 4 << 20;
const KEY_A_IN: [u8; 16] = [0x11; 16];
const SALT_A_IN: [u8; 14] = [0x22; 14];
const KEY_A_OUT: [u8; 16] = [0x33; 16];
const SALT_A_OUT: [u8; 14] = [0x44; 14];

/// One generated call: the relay's two ports and the per-direction bookkeeping.
struct Call {
    relay: [SocketAddr; 2],
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

/// Packets waiting for one `sendmmsg` on one generator socket.
struct Outbox {
    bufs: Vec<[u8; PKT]>,
    lens: [usize; BATCH],
    dsts: [SocketAddr; BATCH],
    /// (call, sequence) of each queued packet, for its send time.
    who: [(usize, u16); BATCH],
    n: usize,
}

impl Outbox {
    fn new() -> Outbox {
        Outbox {
            bufs: vec![[0; PKT]; BATCH],
            lens: [0; BATCH],
            dsts: [SocketAddr::from(([0, 0, 0, 0], 0)); BATCH],
            who: [(0, 0); BATCH],
            n: 0,
        }
    }
}

/// The generator's sockets and batch state.
struct Generator {
    /// Side 0 plays the secure phones (leg A), side 1 the PBX legs (leg B).
    socks: [Vec<UdpSocket>; 2],
    outbox: [Vec<Outbox>; 2],
    /// Call index + 1 by relay port (0: not ours).
    by_port: Vec<u32>,
    rx_headers: MultiHeaders<SockaddrIn>,
    rx_bufs: Vec<[u8; PKT]>,
    rx_meta: [(usize, u16); BATCH],
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
            .arg("--recv-batch")
            .arg(args.recv_batch.to_string())
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

fn v4(addr: SocketAddr) -> Result<SockaddrIn, Box<dyn std::error::Error>> {
    match addr {
        SocketAddr::V4(a) => Ok(SockaddrIn::from(a)),
        SocketAddr::V6(a) => Err(format!("the generator is IPv4 only, relay gave {a}").into()),
    }
}

impl Generator {
    /// Sockets registered with `poll` only if `register` (the `--sleep` mode waits in epoll).
    fn new(
        per_side: usize,
        poll: &Poll,
        register: bool,
    ) -> Result<Generator, Box<dyn std::error::Error>> {
        let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        let mut socks = [Vec::new(), Vec::new()];
        for (side, list) in socks.iter_mut().enumerate() {
            for k in 0..per_side {
                let mut s = UdpSocket::bind(local)?;
                setsockopt(&s, sockopt::RcvBuf, &SOCK_BUF)?;
                setsockopt(&s, sockopt::SndBuf, &SOCK_BUF)?;
                if register {
                    poll.registry().register(
                        &mut s,
                        Token(side * per_side + k),
                        Interest::READABLE,
                    )?;
                }
                list.push(s);
            }
        }
        Ok(Generator {
            socks,
            outbox: [
                (0..per_side).map(|_| Outbox::new()).collect(),
                (0..per_side).map(|_| Outbox::new()).collect(),
            ],
            by_port: vec![0; 65_536],
            rx_headers: MultiHeaders::preallocate(BATCH, None),
            rx_bufs: vec![[0; PKT]; BATCH],
            rx_meta: [(0, 0); BATCH],
        })
    }

    /// Sends what is queued on `side`'s socket `k` and stamps the send times.
    fn flush(&mut self, side: usize, k: usize, calls: &mut [Call], epoch: Instant) {
        let ob = &mut self.outbox[side][k];
        if ob.n == 0 {
            return;
        }
        let at = epoch.elapsed().as_nanos() as u64;
        for &(i, seq) in &ob.who[..ob.n] {
            calls[i].sent_at[side][usize::from(seq) % RING] = at;
        }
        let mut done = 0;
        while done < ob.n {
            let rest = done..ob.n;
            let iovs: Vec<[IoSlice<'_>; 1]> = rest
                .clone()
                .map(|m| [IoSlice::new(&ob.bufs[m][..ob.lens[m]])])
                .collect();
            let addrs: Vec<SocketAddrAny> = rest.map(|m| ob.dsts[m].into()).collect();
            let mut control: Vec<SendAncillaryBuffer<'_, '_, '_>> = addrs
                .iter()
                .map(|_| SendAncillaryBuffer::default())
                .collect();
            let mut msgs: Vec<MMsgHdr<'_>> = control
                .iter_mut()
                .zip(&addrs)
                .zip(&iovs)
                .map(|((c, a), iov)| MMsgHdr::new_with_addr(a, iov, c))
                .collect();
            match sendmmsg(&self.socks[side][k], &mut msgs, SendFlags::empty()) {
                Ok(sent) => done += sent.max(1),
                // Counted as lost by the receiver.
                Err(_) => done += 1,
            }
        }
        ob.n = 0;
    }

    /// Builds call `i`'s next packet in direction `dir` (0: A→B, SRTP μ-law; 1: B→A, RTP
    /// A-law) into its socket's batch, sending the batch when full.
    fn queue(
        &mut self,
        calls: &mut [Call],
        i: usize,
        dir: usize,
        frames: &[[u8; FRAME]; 2],
        epoch: Instant,
    ) {
        let k = i % self.socks[dir].len();
        if self.outbox[dir][k].n == BATCH {
            self.flush(dir, k, calls, epoch);
        }
        let ob = &mut self.outbox[dir][k];
        let call = &mut calls[i];
        let buf = &mut ob.bufs[ob.n];
        let seq = call.next_seq[dir];
        call.next_seq[dir] = seq.wrapping_add(1);
        let ts = u32::from(seq).wrapping_mul(FRAME as u32);
        let ssrc = (i as u32) << 1 | dir as u32;
        let pt = if dir == 0 { 0 } else { 8 };
        if rtp::write_header(buf, false, pt, seq, ts, ssrc).is_err() {
            return;
        }
        buf[12..12 + FRAME].copy_from_slice(&frames[dir]);
        let mut len = 12 + FRAME;
        if dir == 0 {
            match call.protect_a.protect_rtp(buf, len) {
                Ok(l) => len = l,
                Err(_) => return,
            }
        }
        ob.lens[ob.n] = len;
        ob.dsts[ob.n] = call.relay[dir];
        ob.who[ob.n] = (i, seq);
        ob.n += 1;
    }

    fn flush_all(&mut self, calls: &mut [Call], epoch: Instant) {
        for side in 0..2 {
            for k in 0..self.socks[side].len() {
                self.flush(side, k, calls, epoch);
            }
        }
    }

    /// Drains every generator socket.
    fn receive_all(&mut self, calls: &mut [Call], plain: bool, epoch: Instant, lat: &mut Vec<u32>) {
        for side in 0..2 {
            for k in 0..self.socks[side].len() {
                while self.receive(side, k, calls, plain, epoch, lat) == BATCH {}
            }
        }
    }

    /// One `recvmmsg` on `side`'s socket `k`; how many datagrams it returned.
    fn receive(
        &mut self,
        side: usize,
        k: usize,
        calls: &mut [Call],
        plain: bool,
        epoch: Instant,
        lat: &mut Vec<u32>,
    ) -> usize {
        let n = {
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> = self
                .rx_bufs
                .iter_mut()
                .map(|b| [IoSliceMut::new(&mut b[..])])
                .collect();
            let Ok(res) = recvmmsg(
                self.socks[side][k].as_raw_fd(),
                &mut self.rx_headers,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            ) else {
                return 0;
            };
            let mut n = 0;
            for (meta, m) in self.rx_meta.iter_mut().zip(res) {
                let port = m.address.map_or(0, |a| SocketAddrV4::from(a).port());
                *meta = (m.bytes, port);
                n += 1;
            }
            n
        };
        let at = epoch.elapsed().as_nanos() as u64;
        // Packets arriving at the PBX side (1) went A→B (direction 0), and vice versa.
        let dir = 1 - side;
        for m in 0..n {
            let (len, port) = self.rx_meta[m];
            let Some(i) = self.by_port[usize::from(port)].checked_sub(1) else {
                continue;
            };
            let call = &mut calls[i as usize];
            if call.relay[side].port() != port {
                call.bad += 1;
                continue;
            }
            take(call, dir, plain, &mut self.rx_bufs[m], len, at, lat);
        }
        n
    }
}

/// Checks one packet received in direction `dir` and records its latency.
fn take(
    call: &mut Call,
    dir: usize,
    plain: bool,
    buf: &mut [u8],
    len: usize,
    at: u64,
    lat: &mut Vec<u32>,
) {
    // Through the bridge, B→A arrives as SRTP on A and must verify.
    let len = if dir == 1 && !plain {
        match call.unprotect_a.unprotect_rtp(buf, len) {
            Ok(l) => l,
            Err(_) => {
                call.bad += 1;
                return;
            }
        }
    } else {
        len
    };
    let Ok(h) = RtpHeader::parse(&buf[..len]) else {
        call.bad += 1;
        return;
    };
    // Through the bridge, A→B is transcoded μ→A-law (PT 8) and B→A A→μ-law (PT 0).
    let want_pt = if plain { [0, 8][dir] } else { [8, 0][dir] };
    if h.payload_type != want_pt || len < h.header_len + FRAME {
        call.bad += 1;
        return;
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

fn setup_calls(
    client: &mut Client,
    generator: &mut Generator,
    n: usize,
) -> Result<Vec<Call>, Box<dyn std::error::Error>> {
    let profile = SrtpProfile::Aes128CmHmacSha1_80;
    let mut calls = Vec::with_capacity(n);
    for i in 0..n {
        let k = i % generator.socks[0].len();
        let mut leg_a = LegConfig::rtp(Codec::Pcmu);
        leg_a.remote = Some(generator.socks[0][k].local_addr()?);
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
        leg_b.remote = Some(generator.socks[1][k].local_addr()?);
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
        let relay = [
            SocketAddr::new(pa.ip, pa.rtp_port),
            SocketAddr::new(pb.ip, pb.rtp_port),
        ];
        for r in relay {
            v4(r)?;
            generator.by_port[usize::from(r.port())] = u32::try_from(i + 1)?;
        }
        let first_seq = [(i as u16).wrapping_mul(7), (i as u16).wrapping_mul(13)];
        calls.push(Call {
            relay,
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
    if let Some([_, relay_cpu]) = args.pin.as_deref() {
        pin_process(pid, *relay_cpu)?;
    }
    let (mut client, _) = Client::connect(&proc_.control, "cig-relay-load")?;
    let mut poll = Poll::new()?;
    let mut generator = Generator::new(args.gen_sockets.max(1), &poll, args.sleep)?;
    let rss0 = rss_kib(pid);
    let mut calls = setup_calls(&mut client, &mut generator, n)?;
    let rss1 = rss_kib(pid);
    let frames = [tone(false), tone(true)];
    let plain = engine == "plain";
    let mut events = Events::with_capacity(64);
    let mut lat = Vec::with_capacity(n * 2 * (args.seconds as usize + 1) * RATE as usize);
    let period_ns = (Duration::from_secs(1) / RATE).as_nanos() as u64;
    let plan = schedule(n, args.phases, period_ns);
    let per_period = plan.len() as u64;
    // Packets (one direction each) to send, and when the j-th of them is due.
    let total_sends = (args.seconds * f64::from(RATE)) as u64 * per_period;
    let due = |j: u64| (j / per_period) * period_ns + plan[(j % per_period) as usize].0;
    let tick_ns = args.tick_us.saturating_mul(1000).max(1);
    let duration_ns = (args.seconds * 1e9) as u64;
    let epoch = Instant::now();
    let cpu0 = cpu_seconds(pid);
    let gen0 = cpu_seconds(std::process::id());
    let mut j: u64 = 0;
    let drain_until = loop {
        let now_ns = epoch.elapsed().as_nanos() as u64;
        let release = now_ns - now_ns % tick_ns;
        let mut queued = false;
        while j < total_sends && due(j) <= release {
            let (_, i, dir) = plan[(j % per_period) as usize];
            generator.queue(&mut calls, i, dir, &frames, epoch);
            j += 1;
            queued = true;
        }
        if queued {
            generator.flush_all(&mut calls, epoch);
        }
        // Stop on schedule even if a starved generator fell behind: the achieved rate is
        // reported next to the offered one.
        if j >= total_sends || now_ns >= duration_ns {
            break Instant::now() + Duration::from_millis(300);
        }
        if args.sleep {
            let next = due(j).div_ceil(tick_ns) * tick_ns;
            let wait = Duration::from_nanos(next.saturating_sub(now_ns));
            poll.poll(&mut events, Some(wait))?;
        }
        generator.receive_all(&mut calls, plain, epoch, &mut lat);
    };
    let cpu1 = cpu_seconds(pid);
    let gen1 = cpu_seconds(std::process::id());
    let wall = epoch.elapsed().as_secs_f64();
    let offered_pps = 2.0 * f64::from(RATE) * n as f64;
    while Instant::now() < drain_until {
        if args.sleep {
            poll.poll(&mut events, Some(drain_until - Instant::now()))?;
        }
        generator.receive_all(&mut calls, plain, epoch, &mut lat);
    }
    lat.sort_unstable();
    let received: u64 = calls.iter().map(|c| c.received[0] + c.received[1]).sum();
    let bad = calls.iter().map(|c| c.bad).sum();
    drop(client);
    Ok(RunResult {
        calls: n,
        seconds: wall,
        offered_pps,
        sent: j,
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
        "{engine:>6} calls {:>5}  rate {:>6.0}/{:>6.0} pps  sent {:>8}  lost {:>6} ({:.3}%)  bad {:>3}  p50 {:>6.0} us  p99 {:>6.0} us  max {:>6.0} us  relay CPU {:>5.1}% of a core = {:.4}%/call, {:.2} us/relayed packet (user {:.2})  gen CPU {:>5.1}%  RSS/session {:>6.0} B",
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
        1e6 * r.relay_cpu_s / r.received.max(1) as f64,
        1e6 * r.relay_user_s / r.received.max(1) as f64,
        100.0 * r.generator_cpu_s / r.seconds,
        r.rss_per_session,
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if let Some([gen_cpu, _]) = args.pin.as_deref() {
        pin_thread(0, *gen_cpu)?;
    }
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
            let per = |r: &RunResult| r.relay_cpu_s / r.received.max(1) as f64;
            println!(
                "ratio  calls {n:>5}  relay CPU per packet / plain forwarder CPU per packet = {:.2}  added latency (relay - plain) p50 {:.0} us  p99 {:.0} us",
                per(&bridge) / per(&base),
                bridge.p50_us - base.p50_us,
                bridge.p99_us - base.p99_us,
            );
        }
    }
    Ok(())
}
