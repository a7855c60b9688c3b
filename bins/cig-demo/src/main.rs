//! `cig-demo`: the whole CIG system on loopback in one command (the README's first command,
//! `bash scripts/demo.sh`).
//!
//! It makes a KMS community and keys in a temporary directory, starts the switch (`cig-crs`),
//! the media relay (`cig-relay`) and the gateway (`cig-server`, keys installed with
//! `cig-cli set-key`), a secure phone (`cig-phone`, tel:+4670123456, playing 1000 Hz) and a
//! SIP desk phone 101 of the PBX (in-process, cig-sip + cig-media, playing 400 Hz). Then:
//!
//! 1. secure → SIP: the secure phone dials `tel:+8888w101`, sends DTMF `123`, hangs up;
//! 2. SIP → secure: desk phone 101 dials `sip:94670123456@secure.com`, sends DTMF `456`,
//!    hangs up.
//!
//! While the calls run it prints the gateway's `show call` table whenever it changes. At the
//! end it checks that each side heard the other's tone (through G.711 and SRTP), that the
//! digits arrived, prints set-up times and the session.log, stops everything and exits 0 only
//! if every check passed.

mod sip_phone;
mod stack;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::Value;

use crate::sip_phone::{CallReport, Dial, SipPhone};
use crate::stack::{Failure, Stack};

/// Tone of the secure phone, Hz.
const SECURE_TONE: f32 = 1000.0;
/// Tone of the SIP phone, Hz.
const SIP_TONE: f32 = 400.0;

#[derive(Debug, Parser)]
#[command(
    name = "cig-demo",
    version,
    about = "The whole CIG system on loopback: a call each way with audio and DTMF checked"
)]
struct Args {
    /// Seconds each call talks before it is hung up.
    #[arg(long, default_value_t = 3.0)]
    talk: f64,
    /// Keep the temporary directory (keys, cig.conf, logs) and print its path.
    #[arg(long)]
    keep: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match demo(&args) {
        Ok(true) => {
            println!("\nDemo passed.");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!("\nDemo FAILED: see the checks above.");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("\ncig-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One check of the summary.
struct Check {
    what: String,
    ok: bool,
}

fn check(checks: &mut Vec<Check>, what: String, ok: bool) {
    println!("  {} {what}", if ok { "✓" } else { "✗" });
    checks.push(Check { what, ok });
}

fn near(heard: Option<f32>, want: f32) -> bool {
    heard.is_some_and(|h| (h - want).abs() <= 10.0)
}

fn hz(h: Option<f32>) -> String {
    h.map_or_else(|| "no tone".to_owned(), |h| format!("{h:.0} Hz"))
}

fn demo(args: &Args) -> Result<bool, Failure> {
    println!("CIG demo: a secure domain, the gateway and a SIP phone on loopback\n");
    let started = Instant::now();
    let mut stack = Stack::start(|what, took| println!("  ✓ {what} ({} ms)", took.as_millis()))?;
    if args.keep {
        println!("  files: {}", stack.dir.path().display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let mut pbx = runtime
        .block_on(SipPhone::start(stack.pbx_addr, SIP_TONE))
        .map_err(|e| format!("SIP phone on {}: {e}", stack.pbx_addr))?;
    println!(
        "  ✓ SIP desk phone 101 on {} (plays {SIP_TONE} Hz)",
        stack.pbx_addr
    );

    let watching = Arc::new(AtomicBool::new(true));
    let monitor = {
        let (port, watching) = (stack.mgmt_port, Arc::clone(&watching));
        std::thread::spawn(move || show_calls(port, &watching, started))
    };
    let talk = format!("{}", args.talk);
    let mut phone = stack.phone(&[
        "--tone".into(),
        SECURE_TONE.to_string(),
        "--dial".into(),
        "tel:+8888w101".into(),
        "--dtmf".into(),
        "123".into(),
        "--hangup-after".into(),
        talk.clone(),
        "--answer".into(),
        "auto".into(),
        "--calls".into(),
        "2".into(),
        "--exit-after".into(),
        "90".into(),
    ])?;
    let registered = phone.wait_line(|l| l.contains("\"registered\""), Duration::from_secs(30));
    if registered.is_none() {
        return Err(format!(
            "the secure phone did not register: {}",
            phone.stderr()
        ));
    }
    println!("  ✓ secure phone tel:+4670123456 registered (plays {SECURE_TONE} Hz)\n");
    println!("Call 1, secure → SIP: tel:+4670123456 dials tel:+8888w101, sends DTMF 123");
    let wait = Duration::from_secs_f64(args.talk + 30.0);
    let call1 = runtime.block_on(async { tokio::time::timeout(wait, pbx.reports.recv()).await });
    let call1 = call1
        .ok()
        .flatten()
        .ok_or("call 1 did not reach the SIP phone")?;

    println!("\nCall 2, SIP → secure: sip:101 dials sip:94670123456@secure.com, sends DTMF 456");
    pbx.dial(Dial {
        gateway: stack.sip_addr,
        to: "sip:94670123456@secure.com".into(),
        dtmf: "456".into(),
        talk: Duration::from_secs_f64(args.talk),
    });
    let call2 = runtime.block_on(async { tokio::time::timeout(wait, pbx.reports.recv()).await });
    let call2 = call2
        .ok()
        .flatten()
        .ok_or("call 2 did not end at the SIP phone")?;

    let summary = phone.wait_line(|l| l.contains("\"summary\""), Duration::from_secs(30));
    let phone_exit = phone.wait_exit(Duration::from_secs(10));
    watching.store(false, Ordering::Relaxed);
    let _ = monitor.join();

    let lines: Vec<Value> = phone
        .seen()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let secure = SecureView::from_lines(&lines);
    let mut checks = Vec::new();
    println!("\nResults");
    report_call1(&mut checks, &call1, &secure);
    report_call2(&mut checks, &call2, &secure);
    check(
        &mut checks,
        format!(
            "secure phone: summary {}, exit {:?}",
            summary.as_deref().unwrap_or("missing"),
            phone_exit.and_then(|s| s.code())
        ),
        phone_exit.is_some_and(|s| s.success()),
    );
    let session_log = stack.log("session.log");
    println!("\nsession.log:\n{}", session_log.trim_end());
    check(
        &mut checks,
        "session.log records both calls as talk and hangup".into(),
        session_log.matches("talk").count() >= 2 && session_log.matches("hangup").count() >= 2,
    );
    let clean = stack.stop();
    check(
        &mut checks,
        "server, relay and switch stopped cleanly on SIGTERM".into(),
        clean,
    );
    if args.keep {
        // The directory outlives the demo for inspection.
        let kept = stack.dir.keep();
        println!("\nFiles kept in {}", kept.display());
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.what.as_str())
        .collect();
    println!(
        "{} of {} checks passed in {:.1} s",
        checks.len() - failed.len(),
        checks.len(),
        started.elapsed().as_secs_f64()
    );
    for what in &failed {
        println!("  failed: {what}");
    }
    Ok(failed.is_empty())
}

/// What the secure phone's JSON lines say about the two calls.
#[derive(Debug, Default)]
struct SecureView {
    /// Dial to TALK of the call it placed.
    setup_out: Option<f64>,
    /// Tone heard in each call, in order of media_end.
    tones: Vec<Option<f32>>,
    /// Digits received over all calls.
    digits: String,
}

impl SecureView {
    fn from_lines(lines: &[Value]) -> SecureView {
        let mut view = SecureView::default();
        let mut created = None;
        for l in lines {
            let (event, t) = (l["event"].as_str().unwrap_or(""), l["t"].as_f64());
            match (event, l["state"].as_str(), l["dir"].as_str()) {
                ("call", Some("CREATE"), Some("out")) => created = t,
                ("call", Some("TALK"), Some("out")) => {
                    view.setup_out = created.zip(t).map(|(a, b)| b - a);
                }
                ("media_end", _, _) => view.tones.push(l["tone_hz"].as_f64().map(|h| h as f32)),
                ("dtmf", _, _) => view.digits.push_str(l["digit"].as_str().unwrap_or("")),
                _ => {}
            }
        }
        view
    }
}

fn report_call1(checks: &mut Vec<Check>, sip: &CallReport, secure: &SecureView) {
    println!(
        "Call 1 (secure → SIP, {} at the SIP phone): set-up {} ms at the secure phone (dial to answer); {} with {} packets heard; ended {}",
        sip.direction,
        secure
            .setup_out
            .map_or("?".into(), |s| format!("{:.0}", s * 1000.0)),
        sip.codec,
        sip.audio_rx,
        sip.outcome
    );
    check(
        checks,
        format!(
            "SIP phone heard the secure phone's tone: {}",
            hz(sip.tone_hz)
        ),
        near(sip.tone_hz, SECURE_TONE),
    );
    let first = secure.tones.first().copied().flatten();
    check(
        checks,
        format!("secure phone heard the SIP phone's tone: {}", hz(first)),
        near(first, SIP_TONE),
    );
    check(
        checks,
        format!(
            "SIP phone received DTMF {:?} (sent 123 as RFC 4733 in SRTP)",
            sip.digits
        ),
        sip.digits == "123",
    );
}

fn report_call2(checks: &mut Vec<Check>, sip: &CallReport, secure: &SecureView) {
    println!(
        "Call 2 (SIP → secure, {} at the SIP phone): set-up {} ms (INVITE to 200 OK); {} with {} packets heard; ended {}",
        sip.direction,
        sip.setup.as_millis(),
        sip.codec,
        sip.audio_rx,
        sip.outcome
    );
    check(
        checks,
        format!(
            "SIP phone heard the secure phone's tone: {}",
            hz(sip.tone_hz)
        ),
        near(sip.tone_hz, SECURE_TONE),
    );
    let second = secure.tones.get(1).copied().flatten();
    check(
        checks,
        format!("secure phone heard the SIP phone's tone: {}", hz(second)),
        near(second, SIP_TONE),
    );
    check(
        checks,
        format!(
            "secure phone received DTMF {:?} (sent 456 as RFC 4733 in RTP)",
            secure.digits
        ),
        secure.digits == "456",
    );
}

/// Prints the gateway's `show call` table each time it changes, until `watching` is cleared.
fn show_calls(port: u16, watching: &AtomicBool, started: Instant) {
    let mut last = String::new();
    let mut client = None;
    while watching.load(Ordering::Relaxed) {
        if client.is_none() {
            client = cig_mgmt::Client::connect(port, Duration::from_secs(2)).ok();
        }
        if let Some(c) = client.as_mut() {
            match c.calls() {
                Ok(rows) => {
                    let table = cig_mgmt::render::calls(&rows);
                    if table != last {
                        println!(
                            "\n[{:6.2} s] cig-cli show call\n{}",
                            started.elapsed().as_secs_f64(),
                            table.trim_end()
                        );
                        last = table;
                    }
                }
                Err(_) => client = None,
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
