//! `cig-phone`: the secure phone of the CIG testbed (the CCA's role). It registers with a
//! UMSG switch using MIKEY-SAKKE keys from a keystore or an encrypted key bundle, dials or
//! answers calls, plays a tone or a WAV file and records what it hears, sends and receives DTMF
//! and text messages with attachments, and prints every step as one line (`--json`: one JSON
//! object) so that tests and demos can follow it. The line schema is in docs/phone.md and in
//! `--help`.
//!
//! Layers: [`phone`] decides (sans-IO, on the UMSG client core); this file runs it on the
//! UMSG client driver, starts one [`MediaTask`] (cig-media's audio endpoint on a UDP socket)
//! per answered call, and prints.

mod cli;
mod phone;
mod report;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use cig_media::endpoint::udp::{MediaTask, Options, Report};
use cig_media::endpoint::{Endpoint, PcmSource, Samples, Silence};
use cig_media::tone::ToneGenerator;
use cig_media::wav;
use cig_mikey_sakke::bundle::{self, TransferCode};
use cig_mikey_sakke::keystore::{self, KeyMaterial};
use cig_umsg::call::{SessionId, session_id_text};
use cig_umsg::client::Event;
use cig_umsg::driver::client::{self, ClientConfig, ClientEvent, ClientHandle, LinkState};
use cig_umsg::message::{Attachment, Body};
use clap::Parser;
use rand_core::OsRng;
use serde_json::Value;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::cli::Args;
use crate::phone::{Action, Phone, Script};
use crate::report::{Line, Reporter};

/// Largest attachment read from disk (a message must fit a 256 KiB UMSG frame).
const MAX_ATTACHMENT: u64 = 200 * 1024;
/// A received tone counts as the expected one within this many Hz (the detector's grid).
const TONE_TOLERANCE_HZ: f32 = 10.0;

fn main() -> ExitCode {
    let args = Args::parse();
    let reporter = Reporter::new(args.json);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            reporter.print(&Line::new("error").with("what", format!("tokio runtime: {e}")));
            return ExitCode::from(1);
        }
    };
    rt.block_on(run(args, reporter))
}

/// Everything read from disk before the phone starts.
struct Setup {
    keys: KeyMaterial,
    script: Script,
    play: Option<Vec<i16>>,
}

fn read_file(path: &Path, cap: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if buf.len() as u64 > cap {
        return Err(format!("{}: larger than {cap} bytes", path.display()));
    }
    Ok(buf)
}

fn load_keys(args: &Args) -> Result<KeyMaterial, String> {
    let mut keys = match (&args.keystore, &args.bundle) {
        (Some(path), _) => keystore::load(path).map_err(|e| e.to_string())?,
        (None, Some(path)) => {
            let typed = match (&args.code, &args.code_file) {
                (Some(c), _) => c.clone(),
                (None, Some(f)) => String::from_utf8(read_file(f, 1024)?)
                    .map_err(|_| format!("{}: not text", f.display()))?,
                (None, None) => return Err("--bundle needs --code or --code-file".into()),
            };
            let code = TransferCode::parse(typed.trim()).map_err(|e| e.to_string())?;
            let bytes = keystore::read_capped(path).map_err(|e| e.to_string())?;
            bundle::open(&bytes, &code).map_err(|e| e.to_string())?
        }
        (None, None) => return Err("--keystore or --bundle is required".into()),
    };
    if !args.switches.is_empty() {
        keys.switch_addresses = args.switches.clone();
    }
    if keys.switch_addresses.is_empty() {
        return Err("no switch address: give --switch or use a bundle that lists one".into());
    }
    if let Some(ca) = &args.ca {
        let pem = String::from_utf8(read_file(ca, 1 << 20)?)
            .map_err(|_| format!("{}: not PEM", ca.display()))?;
        keys.switch_ca_cert = Some(pem);
    }
    Ok(keys)
}

fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "txt" => "text/plain",
        "wav" => "audio/wav",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "pdf" => "application/pdf",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

fn setup(args: &Args) -> Result<Setup, String> {
    let keys = load_keys(args)?;
    // The SAKKE tables (Z fixed-base, the RSK's pairing lines, our own [b]P + Z) are built
    // now (clones share them): the first call does not wait for them, and the answer timer of
    // a dialled call is not eaten by them.
    keys.prepare();
    if let Some(d) = &args.dtmf {
        if d.is_empty()
            || d.chars()
                .any(|c| cig_media::dtmf::digit_to_event(c).is_none())
        {
            return Err(format!("--dtmf {d:?}: digits are 0-9 * # A-D"));
        }
    }
    let mut attachments = Vec::new();
    for path in &args.attach {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{}: no file name", path.display()))?
            .to_owned();
        attachments.push(Attachment {
            content_type: content_type(&name).into(),
            name,
            data: read_file(path, MAX_ATTACHMENT)?,
        });
    }
    let messages = args
        .send_message
        .chunks_exact(2)
        .map(|m| {
            (
                m[0].clone(),
                Body {
                    text: m[1].clone(),
                    attachments: attachments.clone(),
                },
            )
        })
        .collect();
    let play = match &args.play {
        Some(p) => Some(
            wav::decode(&read_file(p, wav::MAX_WAV_BYTES as u64)?)
                .map_err(|e| format!("{}: {e}", p.display()))?,
        ),
        None => None,
    };
    Ok(Setup {
        keys,
        play,
        script: Script {
            dial: args.dial.clone(),
            answer: args.answer,
            codecs: args.codecs.0.clone(),
            dtmf: args.dtmf.clone(),
            dtmf_delay: args.dtmf_delay,
            hangup_after: args.hangup_after,
            messages,
            calls: args.calls,
            messages_expected: args.messages,
        },
    })
}

/// A file name safe to create in the attachments directory.
fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    if clean.is_empty() || clean.starts_with('.') {
        format!("attachment{clean}")
    } else {
        clean
    }
}

/// The running phone: driver handle, media tasks, what was heard.
struct Run {
    args: Args,
    reporter: Reporter,
    handle: ClientHandle,
    identity: String,
    phone: Phone,
    play: Option<Vec<i16>>,
    media: HashMap<SessionId, MediaTask>,
    digits_tx: UnboundedSender<(SessionId, char)>,
    /// The per-call report with the most blocks of one tone.
    best_tone: Option<(f32, u32)>,
    digits: String,
    recorded: Vec<i16>,
}

impl Run {
    fn source(&self) -> Box<dyn PcmSource> {
        match (&self.play, self.args.tone) {
            (Some(samples), _) => Box::new(Samples::new(samples.clone(), self.args.looped)),
            (None, Some(hz)) => Box::new(ToneGenerator::new(hz, self.args.tone_level)),
            (None, None) => Box::new(Silence),
        }
    }

    /// Carries out the phone's actions.
    async fn act(&mut self) {
        while let Some(a) = self.phone.poll_action() {
            match a {
                Action::Print(line) => self.reporter.print(&line),
                Action::StartMedia { id, remote, config } => {
                    if let Err(e) = self.start_media(id, &remote, *config).await {
                        self.reporter.print(&Line::new("error").with("what", e));
                    }
                }
                Action::SendDtmf { id, digits } => {
                    if let Some(m) = self.media.get(&id) {
                        // Digits were checked when the command line was read.
                        let _ = m.send_dtmf(&digits);
                    }
                }
                Action::StopMedia { id } => {
                    if let Some(m) = self.media.remove(&id) {
                        let report = m.stop().await;
                        self.media_ended(id, report);
                    }
                }
                Action::Save { name, data } => self.save(&name, &data),
            }
        }
    }

    async fn start_media(
        &mut self,
        id: SessionId,
        remote: &str,
        config: cig_media::endpoint::EndpointConfig,
    ) -> Result<(), String> {
        let addr = tokio::net::lookup_host(remote)
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| format!("media address {remote:?} does not resolve"))?;
        let socket = tokio::net::UdpSocket::bind((self.args.media_ip, 0))
            .await
            .map_err(|e| format!("media socket: {e}"))?;
        let local = socket
            .local_addr()
            .map_err(|e| format!("media socket: {e}"))?;
        let codec = config.law.name();
        let srtp = config.srtp.is_some();
        let endpoint = Endpoint::new(config, self.source(), Instant::now());
        let (tx, mut rx) = unbounded_channel();
        let tagged = self.digits_tx.clone();
        tokio::spawn(async move {
            while let Some(d) = rx.recv().await {
                if tagged.send((id, d)).is_err() {
                    break;
                }
            }
        });
        let options = Options {
            record: self.args.record.is_some(),
            tone_candidates: None,
        };
        self.media.insert(
            id,
            MediaTask::spawn(socket, addr, endpoint, options, Some(tx)),
        );
        self.reporter.print(
            &Line::new("media")
                .with("id", session_id_text(&id))
                .with("local", local.to_string())
                .with("remote", addr.to_string())
                .with("codec", codec)
                .with("srtp", srtp),
        );
        Ok(())
    }

    fn media_ended(&mut self, id: SessionId, r: Report) {
        self.reporter.print(
            &Line::new("media_end")
                .with("id", session_id_text(&id))
                .with("tone_hz", r.tone.dominant.map(Value::from))
                .with("tone_blocks", r.tone.dominant_blocks)
                .with("silent_blocks", r.tone.silent_blocks)
                .with("audio_rx", r.stats.audio_received)
                .with("audio_tx", r.stats.audio_sent)
                .with("dtmf_rx", r.digits.as_str())
                .with("rejected", r.stats.rejected),
        );
        if let Some(f) = r.tone.dominant {
            if self
                .best_tone
                .is_none_or(|(_, n)| r.tone.dominant_blocks > n)
            {
                self.best_tone = Some((f, r.tone.dominant_blocks));
            }
        }
        let room = cig_media::endpoint::udp::MAX_RECORDED.saturating_sub(self.recorded.len());
        self.recorded
            .extend_from_slice(&r.recorded[..r.recorded.len().min(room)]);
    }

    fn save(&self, name: &str, data: &[u8]) {
        let Some(dir) = &self.args.save_attachments else {
            return;
        };
        let path: PathBuf = dir.join(safe_name(name));
        if let Err(e) = std::fs::write(&path, data) {
            self.reporter
                .print(&Line::new("error").with("what", format!("{}: {e}", path.display())));
        }
    }

    /// Runs the timers of the phone, on the live session.
    fn timers(&mut self) {
        let phone = &mut self.phone;
        self.handle
            .with(|s, now| phone.handle_timeout(s, now, &mut OsRng));
    }

    /// A batch of driver events. The driver reports each call frame as it handles it and the
    /// phone runs on the same single-threaded runtime, so the session state seen now reflects
    /// exactly the frames reported so far: the call events of one call in the batch are
    /// handled once, with their count.
    fn events(&mut self, batch: Vec<ClientEvent>) {
        let mut done: Vec<SessionId> = Vec::new();
        let calls: Vec<Option<SessionId>> = batch
            .iter()
            .map(|e| match e {
                ClientEvent::Core(Event::Call(id)) => Some(*id),
                _ => None,
            })
            .collect();
        for ev in batch {
            if let ClientEvent::Core(Event::Call(id)) = ev {
                if done.contains(&id) {
                    continue;
                }
                done.push(id);
                let frames = calls.iter().filter(|c| **c == Some(id)).count();
                let phone = &mut self.phone;
                self.handle
                    .with(|s, now| phone.on_call_frames(s, id, frames, now, &mut OsRng));
            } else {
                self.event(ev);
            }
        }
    }

    fn event(&mut self, ev: ClientEvent) {
        let phone = &mut self.phone;
        match ev {
            ClientEvent::Registered { switch } => {
                let identity = self.identity.as_str();
                self.handle
                    .with(|s, now| phone.on_registered(s, &switch, identity, now, &mut OsRng));
            }
            ClientEvent::Disconnected { reason } => phone.on_disconnected(&reason),
            ClientEvent::Core(ev) => {
                // Events of a session that is gone (not registered any more) are dropped by
                // `with`: the calls of that session ended with it.
                self.handle
                    .with(|s, now| phone.on_event(s, ev, now, &mut OsRng));
            }
        }
    }
}

/// How long until `at` (zero when past).
fn until(at: SystemTime) -> Duration {
    at.duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
}

async fn run(args: Args, reporter: Reporter) -> ExitCode {
    let Setup { keys, script, play } = match setup(&args) {
        Ok(s) => s,
        Err(e) => {
            reporter.print(&Line::new("error").with("what", e));
            return ExitCode::from(1);
        }
    };
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            reporter.print(&Line::new("error").with("what", "cannot handle signals"));
            return ExitCode::from(1);
        }
    };
    let identity = keys.identity.clone();
    let mut config = ClientConfig::new(keys);
    config.answer_timeout = args.ring_timeout;
    let (handle, mut events) = client::start(config);
    let (digits_tx, mut digits_rx) = unbounded_channel();
    let exit_at = args.exit_after.map(|d| tokio::time::Instant::now() + d);
    let mut run = Run {
        args,
        reporter,
        handle,
        identity,
        phone: Phone::new(script),
        play,
        media: HashMap::new(),
        digits_tx,
        best_tone: None,
        digits: String::new(),
        recorded: Vec::new(),
    };
    loop {
        run.act().await;
        if run.phone.finished().is_some() {
            break;
        }
        // Timers act on the live session: while the link is down they wait (the next
        // Registered event wakes the loop), instead of firing again and again.
        let registered = matches!(run.handle.state(), LinkState::Registered { .. });
        let timer = run.phone.poll_timeout().filter(|_| registered).map(until);
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => {
                    // Everything the driver has reported so far, so that the frames of one
                    // call handled together are counted together (see Run::events).
                    let mut batch = vec![ev];
                    while let Ok(more) = events.try_recv() {
                        batch.push(more);
                    }
                    run.events(batch);
                }
                None => break,
            },
            Some((id, d)) = digits_rx.recv() => {
                run.digits.push(d);
                run.reporter.print(
                    &Line::new("dtmf")
                        .with("id", session_id_text(&id))
                        .with("digit", d.to_string()),
                );
            }
            _ = tokio::time::sleep(timer.unwrap_or(Duration::ZERO)), if timer.is_some() => {
                run.timers();
            }
            _ = tokio::time::sleep_until(exit_at.unwrap_or_else(tokio::time::Instant::now)),
                if exit_at.is_some() => break,
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    finish(run).await
}

/// Hangs up what is still going on, stops the media and the driver, writes the recording and
/// prints the summary.
async fn finish(mut run: Run) -> ExitCode {
    let phone = &mut run.phone;
    run.handle
        .with(|s, now| phone.hangup_all(s, now, &mut OsRng));
    run.act().await;
    for (id, m) in std::mem::take(&mut run.media) {
        let report = m.stop().await;
        run.media_ended(id, report);
    }
    // The driver writes the queued HANGUPs before it closes: the far end sees HANGUP(normal).
    run.handle.shutdown().await;
    if let Some(path) = &run.args.record {
        if let Err(e) = std::fs::write(path, wav::encode(&run.recorded)) {
            run.reporter
                .print(&Line::new("error").with("what", format!("{}: {e}", path.display())));
        }
    }
    let c = run.phone.counters();
    let mut ok = run.phone.finished().unwrap_or(c.failures == 0);
    let tone = run.best_tone.map(|(f, _)| f);
    if let Some(want) = run.args.expect_tone {
        ok &= tone.is_some_and(|f| (f - want).abs() <= TONE_TOLERANCE_HZ);
    }
    if let Some(want) = &run.args.expect_dtmf {
        ok &= run.digits == *want;
    }
    run.reporter.print(
        &Line::new("summary")
            .with("ok", ok)
            .with("calls", c.calls_ended)
            .with("answered", c.answered)
            .with("tone_hz", tone.map(Value::from))
            .with("digits", run.digits.as_str())
            .with("messages_received", c.messages_received)
            .with("messages_acked", c.messages_acked),
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names_are_made_safe() {
        assert_eq!(safe_name("report.pdf"), "report.pdf");
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("a\\b\\c.txt"), "c.txt");
        assert_eq!(safe_name(".bashrc"), "attachment.bashrc");
        assert_eq!(safe_name("dir/"), "attachment");
        assert_eq!(safe_name("x\ny"), "x_y");
        assert_eq!(content_type("A.WAV"), "audio/wav");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
