//! The phone's logic: what to do on each UMSG event and timer, given the script from the
//! command line. It works on the client core ([`ClientSession`]) and a `now` handed in, and
//! hands out [`Action`]s (lines to print, media to start and stop, digits to send,
//! attachments to save), so it is tested against the in-memory switch core without sockets.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::SystemTime;

use cig_media::bridge::LegSrtp;
use cig_media::endpoint::EndpointConfig;
use cig_media::g711::Law;
use cig_media::srtp::{MasterKey, SrtpProfile};
use cig_umsg::call::{Call, CallState, HangupReason, Media, SessionId, session_id_text};
use cig_umsg::client::{ClientSession, Event};
use cig_umsg::message::{AckStatus, Body, MessageId};
use rand_core::CryptoRngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cli::AnswerMode;
use crate::report::Line;

/// The RFC 4733 payload type we offer.
pub const DTMF_PT: u8 = 101;

/// What the phone was asked to do.
#[derive(Debug, Clone)]
pub struct Script {
    /// Dial this URI once registered.
    pub dial: Option<String>,
    /// Incoming call handling.
    pub answer: AnswerMode,
    /// Accepted payload types in preference order.
    pub codecs: Vec<u8>,
    /// DTMF digits to send after an answer.
    pub dtmf: Option<String>,
    /// Delay of the digits after the answer.
    pub dtmf_delay: std::time::Duration,
    /// Hang up this long after the answer.
    pub hangup_after: Option<std::time::Duration>,
    /// Messages to send once registered.
    pub messages: Vec<(String, Body)>,
    /// Finished once this many calls ended.
    pub calls: Option<u32>,
    /// Finished once this many messages were received.
    pub messages_expected: Option<u32>,
}

/// Something for the driver to do.
#[derive(Debug)]
pub enum Action {
    /// Print a line.
    Print(Line),
    /// Start the media of a call: send to `remote` (the switch relay's `host:port`).
    StartMedia {
        /// The call.
        id: SessionId,
        /// Where to send.
        remote: String,
        /// Codec, SSRC and SRTP keys.
        config: Box<EndpointConfig>,
    },
    /// Send DTMF digits in a call.
    SendDtmf {
        /// The call.
        id: SessionId,
        /// The digits.
        digits: String,
    },
    /// Stop the media of a call.
    StopMedia {
        /// The call.
        id: SessionId,
    },
    /// Save a received attachment.
    Save {
        /// File name as sent (to be sanitised by the driver).
        name: String,
        /// Contents.
        data: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Out,
    In,
}

#[derive(Debug)]
struct Track {
    dir: Dir,
    reported: Option<CallState>,
    /// Our side of the media: offer (caller) or answer (callee).
    local: Option<Media>,
    answered: bool,
    media: bool,
    answer_at: Option<SystemTime>,
    dtmf_at: Option<SystemTime>,
    hangup_at: Option<SystemTime>,
}

impl Track {
    fn new(dir: Dir) -> Track {
        Track {
            dir,
            reported: None,
            local: None,
            answered: false,
            media: false,
            answer_at: None,
            dtmf_at: None,
            hangup_at: None,
        }
    }

    fn next_timer(&self) -> Option<SystemTime> {
        [self.answer_at, self.dtmf_at, self.hangup_at]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Counters for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Calls that ended (either direction).
    pub calls_ended: u32,
    /// Calls that were answered.
    pub answered: u32,
    /// Messages received (each once).
    pub messages_received: u32,
    /// Our messages acknowledged as stored or delivered.
    pub messages_acked: u32,
    /// Things asked that failed.
    pub failures: u32,
}

/// The phone. See the [module documentation](self).
#[derive(Debug)]
pub struct Phone {
    script: Script,
    tracks: HashMap<SessionId, Track>,
    started: bool,
    dial_result: Option<bool>,
    pending_acks: HashSet<MessageId>,
    counters: Counters,
    actions: VecDeque<Action>,
}

/// The `call` line of `id` in `state`.
fn call_line(id: &SessionId, dir: Dir, state: CallState, c: &Call) -> Line {
    let mut line = Line::new("call")
        .with("id", session_id_text(id))
        .with(
            "dir",
            match dir {
                Dir::Out => "out",
                Dir::In => "in",
            },
        )
        .with("state", state.name())
        .with("from", c.from.as_str())
        .with("to", c.to.as_str());
    if let (CallState::Hangup, Some(r)) = (state, c.reason) {
        line = line.with("reason", reason_name(r));
    }
    line
}

fn growl(s: &mut ClientSession, id: &SessionId) {
    if let Some(f) = s.calls.growl(id) {
        s.send(f);
    }
}

/// Ends call `id` with `reason` (a HANGUP queued; nothing when it already ended).
fn hang_up(s: &mut ClientSession, id: &SessionId, reason: HangupReason) {
    if let Some(f) = s.calls.hangup(id, reason) {
        s.send(f);
    }
}

fn law_of(pt: u8) -> Option<Law> {
    match pt {
        0 => Some(Law::Ulaw),
        8 => Some(Law::Alaw),
        _ => None,
    }
}

fn reason_name(r: HangupReason) -> &'static str {
    match r {
        HangupReason::Normal => "normal",
        HangupReason::Busy => "busy",
        HangupReason::Declined => "declined",
        HangupReason::NoRoute => "no_route",
        HangupReason::Unavailable => "unavailable",
        HangupReason::Timeout => "timeout",
        HangupReason::Error => "error",
    }
}

/// The name of a REFUSED reason code (docs/umsg.md §4).
pub fn refuse_name(code: u8) -> &'static str {
    match code {
        1 => "bad_signature",
        2 => "unknown_period",
        3 => "malformed_identity",
        4 => "replaced",
        5 => "not_registered",
        _ => "unknown",
    }
}

impl Phone {
    /// A phone following `script`.
    pub fn new(script: Script) -> Phone {
        let pending = script.messages.len();
        Phone {
            script,
            tracks: HashMap::new(),
            started: false,
            dial_result: None,
            pending_acks: HashSet::with_capacity(pending),
            counters: Counters::default(),
            actions: VecDeque::new(),
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The next action.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn print(&mut self, line: Line) {
        self.actions.push_back(Action::Print(line));
    }

    fn error(&mut self, what: String) {
        self.print(Line::new("error").with("what", what));
    }

    /// Whether everything asked has finished: `Some(all succeeded)`; `None` while something
    /// is still going on or when nothing finite was asked (an answering phone runs until
    /// stopped).
    pub fn finished(&self) -> Option<bool> {
        let s = &self.script;
        let asked = s.dial.is_some()
            || !s.messages.is_empty()
            || s.calls.is_some()
            || s.messages_expected.is_some();
        let dial_done = s.dial.is_none() || self.dial_result.is_some();
        let messages_done = !s.messages.is_empty() && self.started && self.pending_acks.is_empty()
            || s.messages.is_empty();
        let calls_done = s.calls.is_none_or(|n| self.counters.calls_ended >= n);
        let received_done = s
            .messages_expected
            .is_none_or(|n| self.counters.messages_received >= n);
        (asked && dial_done && messages_done && calls_done && received_done)
            .then(|| self.dial_result != Some(false) && self.counters.failures == 0)
    }

    /// REGISTERED on a connection to `switch`. The first time, the call is dialled and the
    /// messages are sent.
    pub fn on_registered(
        &mut self,
        s: &mut ClientSession,
        switch: &str,
        identity: &str,
        now: SystemTime,
        rng: &mut impl CryptoRngCore,
    ) {
        self.print(
            Line::new("registered")
                .with("identity", identity)
                .with("switch", switch),
        );
        if self.started {
            return;
        }
        self.started = true;
        if let Some(to) = self.script.dial.clone() {
            let offer = Media {
                codecs: self.script.codecs.clone(),
                dtmf_pt: DTMF_PT,
                ssrc: rng.next_u32(),
            };
            match s.calls.dial(&to, &offer, now, rng) {
                Ok((id, frame)) => {
                    s.send(frame);
                    let mut t = Track::new(Dir::Out);
                    t.local = Some(offer);
                    self.tracks.insert(id, t);
                    self.sync(s, id, now, rng);
                }
                Err(e) => {
                    self.error(format!("dial {to}: {e}"));
                    self.dial_result = Some(false);
                }
            }
        }
        for (to, body) in self.script.messages.clone() {
            match s.messenger.send(&to, &body, now, rng) {
                Ok((id, frame)) => {
                    s.send(frame);
                    self.pending_acks.insert(id);
                    self.print(
                        Line::new("message_sent")
                            .with("id", hex::encode(id))
                            .with("to", to)
                            .with("attachments", body.attachments.len()),
                    );
                }
                Err(e) => {
                    self.counters.failures += 1;
                    self.error(format!("message to {to}: {e}"));
                }
            }
        }
    }

    /// The connection was lost: its calls are gone (the switch hangs up their other legs).
    pub fn on_disconnected(&mut self, reason: &str) {
        self.print(Line::new("disconnected").with("reason", reason));
        let live: Vec<SessionId> = self.tracks.keys().copied().collect();
        for id in live {
            self.print(
                Line::new("call")
                    .with("id", session_id_text(&id))
                    .with("state", "HANGUP")
                    .with("reason", "unavailable"),
            );
            self.ended(id);
        }
    }

    /// An event of the client core.
    pub fn on_event(
        &mut self,
        s: &mut ClientSession,
        ev: Event,
        now: SystemTime,
        rng: &mut impl CryptoRngCore,
    ) {
        match ev {
            Event::Call(id) => self.on_call_frames(s, id, 1, now, rng),
            Event::CallRefused(e) => self.error(format!("incoming call refused: {e}")),
            Event::Refused(code) => self.print(
                Line::new("refused")
                    .with("reason", refuse_name(code))
                    .with("code", code),
            ),
            // The client core shows each message once (its ids carry over reconnections).
            Event::Message(m) => {
                self.counters.messages_received += 1;
                let attachments: Vec<Value> = m
                    .body
                    .attachments
                    .iter()
                    .map(|a| {
                        serde_json::json!({
                            "name": a.name,
                            "type": a.content_type,
                            "size": a.data.len(),
                            "sha256": hex::encode(Sha256::digest(&a.data)),
                        })
                    })
                    .collect();
                self.print(
                    Line::new("message")
                        .with("id", hex::encode(m.id))
                        .with("from", m.from)
                        .with("text", m.body.text)
                        .with("attachments", attachments),
                );
                for a in m.body.attachments {
                    self.actions.push_back(Action::Save {
                        name: a.name,
                        data: a.data,
                    });
                }
            }
            Event::Acked(id, status) => {
                let name = match status {
                    AckStatus::Stored => "stored",
                    AckStatus::Delivered => "delivered",
                    AckStatus::Refused => "refused",
                };
                self.print(
                    Line::new("message_ack")
                        .with("id", hex::encode(id))
                        .with("status", name),
                );
                if self.pending_acks.remove(&id) {
                    match status {
                        AckStatus::Refused => self.counters.failures += 1,
                        _ => self.counters.messages_acked += 1,
                    }
                }
            }
            // Registration is reported with the switch's address by the driver's own event;
            // a lost connection by its Disconnected event.
            Event::Registered | Event::ConnectionLost => {}
        }
    }

    /// When [`Self::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Option<SystemTime> {
        self.tracks.values().filter_map(Track::next_timer).min()
    }

    /// Runs the timers due at `now` (answer after N, DTMF delay, hang up after N; the answer
    /// timeout of a dialled call is the client core's).
    pub fn handle_timeout(
        &mut self,
        s: &mut ClientSession,
        now: SystemTime,
        rng: &mut impl CryptoRngCore,
    ) {
        let due: Vec<SessionId> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.next_timer().is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(t) = self.tracks.get_mut(&id) else {
                continue;
            };
            if t.answer_at.is_some_and(|at| at <= now) {
                t.answer_at = None;
                self.answer(s, id, rng);
            }
            let Some(t) = self.tracks.get_mut(&id) else {
                continue;
            };
            if t.dtmf_at.is_some_and(|at| at <= now) {
                t.dtmf_at = None;
                if let Some(digits) = self.script.dtmf.clone() {
                    self.print(
                        Line::new("dtmf_sent")
                            .with("id", session_id_text(&id))
                            .with("digits", digits.as_str()),
                    );
                    self.actions.push_back(Action::SendDtmf { id, digits });
                }
            }
            let Some(t) = self.tracks.get_mut(&id) else {
                continue;
            };
            if t.hangup_at.is_some_and(|at| at <= now) {
                t.hangup_at = None;
                hang_up(s, &id, HangupReason::Normal);
            }
            self.sync(s, id, now, rng);
        }
    }

    /// Hangs up every live call (before exiting).
    pub fn hangup_all(
        &mut self,
        s: &mut ClientSession,
        now: SystemTime,
        rng: &mut impl CryptoRngCore,
    ) {
        let live: Vec<SessionId> = self.tracks.keys().copied().collect();
        for id in live {
            hang_up(s, &id, HangupReason::Normal);
            self.sync(s, id, now, rng);
        }
    }

    /// `frames` call frames of call `id` were handled by the client core since this phone last
    /// looked at the call (a driver may handle several frames that arrived together before the
    /// application sees their events). States that those frames passed through are reported
    /// before the current one: ROUTED and TALK leave their data in the call (media address,
    /// answer), and a remaining frame before TALK or HANGUP was the GROWL.
    pub fn on_call_frames(
        &mut self,
        s: &mut ClientSession,
        id: SessionId,
        frames: usize,
        now: SystemTime,
        rng: &mut impl CryptoRngCore,
    ) {
        self.fill_gap(s, id, frames);
        self.sync(s, id, now, rng);
    }

    fn fill_gap(&mut self, s: &ClientSession, id: SessionId, frames: usize) {
        let rank = |st: CallState| match st {
            CallState::Create => 0,
            CallState::Bang => 1,
            CallState::Growl => 2,
            CallState::Talk => 3,
            CallState::Hangup => 4,
        };
        let Some(c) = s.calls.get(&id) else { return };
        let Some(t) = self.tracks.get_mut(&id) else {
            return;
        };
        let (Dir::Out, Some(reported)) = (t.dir, t.reported) else {
            return;
        };
        let (r, now_rank) = (rank(reported), rank(c.state));
        let between = |x| r < x && x < now_rank;
        let bang = between(1) && c.media_addr.is_some();
        let talk = between(3) && c.remote_media.is_some();
        // One frame brought the current state; ROUTED and TALK are accounted for above.
        let known = 1 + usize::from(bang) + usize::from(talk);
        let growl = between(2) && frames > known;
        let passed: Vec<CallState> = [
            (bang, CallState::Bang),
            (growl, CallState::Growl),
            (talk, CallState::Talk),
        ]
        .into_iter()
        .filter_map(|(happened, st)| happened.then_some(st))
        .collect();
        for st in passed {
            t.reported = Some(st);
            if st == CallState::Talk {
                // Answered and ended before the media could start.
                t.answered = true;
                self.counters.answered += 1;
            }
            let line = call_line(&id, Dir::Out, st, c);
            self.actions.push_back(Action::Print(line));
        }
    }

    /// Reports every state change of call `id` and acts on it, until its state is stable.
    fn sync(
        &mut self,
        s: &mut ClientSession,
        id: SessionId,
        now: SystemTime,
        rng: &mut impl CryptoRngCore,
    ) {
        loop {
            let Some(c) = s.calls.get(&id) else { return };
            let state = c.state;
            let track = match self.tracks.get_mut(&id) {
                Some(t) => t,
                None if state == CallState::Bang => {
                    self.tracks.entry(id).or_insert_with(|| Track::new(Dir::In))
                }
                None => return,
            };
            if track.reported == Some(state) {
                return;
            }
            track.reported = Some(state);
            let dir = track.dir;
            let line = call_line(&id, dir, state, c);
            self.print(line);
            match state {
                CallState::Bang if dir == Dir::In => self.incoming(s, id, now),
                CallState::Growl if dir == Dir::In && self.script.answer == AnswerMode::Auto => {
                    self.answer(s, id, rng)
                }
                CallState::Talk => self.talk(s, id, now, rng),
                CallState::Hangup => self.ended(id),
                _ => {}
            }
        }
    }

    fn incoming(&mut self, s: &mut ClientSession, id: SessionId, now: SystemTime) {
        let busy = self.tracks.keys().any(|other| *other != id);
        match self.script.answer {
            _ if busy => hang_up(s, &id, HangupReason::Busy),
            AnswerMode::Busy => hang_up(s, &id, HangupReason::Busy),
            AnswerMode::Declined => hang_up(s, &id, HangupReason::Declined),
            // Answered once GROWL has been reported (see `sync`).
            AnswerMode::Auto => growl(s, &id),
            AnswerMode::After(d) => {
                growl(s, &id);
                if let Some(t) = self.tracks.get_mut(&id) {
                    t.answer_at = Some(now + d);
                }
            }
            AnswerMode::Never => growl(s, &id),
        }
    }

    fn answer(&mut self, s: &mut ClientSession, id: SessionId, rng: &mut impl CryptoRngCore) {
        let Some(offer) = s.calls.get(&id).and_then(|c| c.remote_media.clone()) else {
            return;
        };
        let chosen = offer
            .codecs
            .iter()
            .copied()
            .find(|pt| self.script.codecs.contains(pt));
        let Some(pt) = chosen else {
            self.error(format!("no common codec in the offer {:?}", offer.codecs));
            hang_up(s, &id, HangupReason::Error);
            return;
        };
        let answer = Media {
            codecs: vec![pt],
            dtmf_pt: offer.dtmf_pt,
            ssrc: rng.next_u32(),
        };
        if let Some(f) = s.calls.answer(&id, &answer) {
            s.send(f);
            if let Some(t) = self.tracks.get_mut(&id) {
                t.local = Some(answer);
            }
        }
    }

    /// TALK: start the media and the after-answer timers.
    fn talk(
        &mut self,
        s: &mut ClientSession,
        id: SessionId,
        now: SystemTime,
        rng: &mut impl CryptoRngCore,
    ) {
        let Some(c) = s.calls.get(&id) else { return };
        let Some(t) = self.tracks.get_mut(&id) else {
            return;
        };
        // The codec: the callee's answer (caller), our answer (callee).
        let (chosen, dtmf_pt) = match t.dir {
            Dir::Out => match &c.remote_media {
                Some(m) => (m.codecs.first().copied(), m.dtmf_pt),
                None => (None, DTMF_PT),
            },
            Dir::In => match &t.local {
                Some(m) => (m.codecs.first().copied(), m.dtmf_pt),
                None => (None, DTMF_PT),
            },
        };
        let offered = t
            .local
            .as_ref()
            .map(|m| m.codecs.clone())
            .unwrap_or_default();
        let ssrc = t.local.as_ref().map_or(0, |m| m.ssrc);
        let law = chosen
            .filter(|pt| t.dir == Dir::In || offered.contains(pt))
            .and_then(|pt| law_of(pt).map(|l| (pt, l)));
        let (Some((pt, law)), Some(remote)) = (law, c.media_addr.clone()) else {
            self.error("answer without a usable codec or media address".into());
            hang_up(s, &id, HangupReason::Error);
            return;
        };
        let key = MasterKey::new(
            SrtpProfile::Aes128CmHmacSha1_80,
            &c.keys.master_key,
            &c.keys.master_salt,
        );
        let key = match key {
            Ok(k) => k,
            Err(e) => {
                self.error(format!("SRTP key: {e}"));
                return;
            }
        };
        let mut config = EndpointConfig::new(law, ssrc);
        config.payload_type = pt;
        config.dtmf_payload_type = Some(dtmf_pt);
        config.first_sequence = (rng.next_u32() & 0x7fff) as u16;
        config.first_timestamp = rng.next_u32();
        config.srtp = Some(LegSrtp {
            inbound: key.clone(),
            outbound: key,
        });
        t.answered = true;
        t.media = true;
        if self.script.dtmf.is_some() {
            t.dtmf_at = Some(now + self.script.dtmf_delay);
        }
        t.hangup_at = self.script.hangup_after.map(|d| now + d);
        self.counters.answered += 1;
        self.actions.push_back(Action::StartMedia {
            id,
            remote,
            config: Box::new(config),
        });
    }

    /// The call ended: its track is dropped (frames that still come for it find no track and
    /// are ignored, see `sync`).
    fn ended(&mut self, id: SessionId) {
        let Some(t) = self.tracks.remove(&id) else {
            return;
        };
        let (dir, answered, media) = (t.dir, t.answered, t.media);
        if media {
            self.actions.push_back(Action::StopMedia { id });
        }
        self.counters.calls_ended += 1;
        if dir == Dir::Out {
            self.dial_result = Some(answered);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cig_mikey_sakke::kms::Community;
    use cig_mikey_sakke::mikey::KeyPeriod;
    use cig_umsg::message::Attachment;
    use cig_umsg::switch::{StoreLimits, SwitchCore};
    use rand_core::OsRng;
    use std::time::Duration;

    fn script() -> Script {
        Script {
            dial: None,
            answer: AnswerMode::Auto,
            codecs: vec![8, 0],
            dtmf: None,
            dtmf_delay: Duration::from_millis(500),
            hangup_after: None,
            messages: Vec::new(),
            calls: None,
            messages_expected: None,
        }
    }

    struct Station {
        identity: String,
        session: Option<ClientSession>,
        phone: Phone,
        keys: cig_mikey_sakke::keystore::KeyMaterial,
        /// Message ids carried from one connection to the next, as the driver does.
        seen: cig_umsg::message::SeenIds,
        lines: Vec<Line>,
        media: Vec<(SessionId, String, Box<EndpointConfig>)>,
        other: Vec<Action>,
        /// Events are held until the switch has nothing more to send, as when a driver
        /// handles several frames before the application looks (see `Phone::on_call_frames`).
        batched: bool,
        held: Vec<Event>,
    }

    /// Phones and the switch core in memory, with a virtual clock.
    struct Net {
        sw: SwitchCore,
        st: Vec<Station>,
        now: SystemTime,
    }

    impl Net {
        fn new(scripts: Vec<Script>) -> Net {
            let now = SystemTime::now();
            let unix = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let c = Community::generate("example.org", &mut OsRng).unwrap();
            let p = KeyPeriod::from_unix(unix).unwrap();
            let st = scripts
                .into_iter()
                .enumerate()
                .map(|(i, script)| {
                    let identity = format!("tel:+{}", 100 + i);
                    let keys = c.key_material(
                        &identity,
                        vec![c.issue(&identity, p, &mut OsRng).unwrap()],
                        vec![],
                        None,
                    );
                    Station {
                        identity,
                        session: None,
                        phone: Phone::new(script),
                        keys,
                        seen: Default::default(),
                        lines: Vec::new(),
                        media: Vec::new(),
                        other: Vec::new(),
                        batched: false,
                        held: Vec::new(),
                    }
                })
                .collect();
            Net {
                sw: SwitchCore::new(c.kpak, "192.0.2.1:4000".into(), StoreLimits::default()),
                st,
                now,
            }
        }

        fn connect(&mut self, i: usize) {
            let mut s = ClientSession::new(self.st[i].keys.clone(), self.now);
            s.messenger.set_seen(std::mem::take(&mut self.st[i].seen));
            self.st[i].session = Some(s);
            self.pump();
        }

        fn disconnect(&mut self, i: usize) {
            if let Some(mut s) = self.st[i].session.take() {
                self.st[i].seen = s.messenger.take_seen();
            }
            self.st[i].phone.on_disconnected("test");
            for t in self.sw.disconnect(i as u64) {
                self.deliver(t.conn as usize, &t.frame);
            }
            self.pump();
        }

        fn deliver(&mut self, j: usize, frame: &cig_umsg::frame::Frame) {
            let now = self.now;
            if let Some(s) = self.st[j].session.as_mut() {
                s.handle_frame(frame, now, &mut OsRng).unwrap();
                self.events(j);
            }
        }

        /// Hands the client core's events of station `j` to its phone (or holds them).
        fn events(&mut self, j: usize) {
            let now = self.now;
            let st = &mut self.st[j];
            let Some(s) = st.session.as_mut() else { return };
            while let Some(ev) = s.poll_event() {
                if st.batched {
                    st.held.push(ev);
                    continue;
                }
                match ev {
                    Event::Registered => {
                        st.phone
                            .on_registered(s, "switch:1", &st.identity, now, &mut OsRng)
                    }
                    ev => st.phone.on_event(s, ev, now, &mut OsRng),
                }
            }
        }

        /// Moves frames until every queue is empty, then collects the phones' actions.
        fn pump(&mut self) {
            let unix = self
                .now
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            loop {
                let mut moved = false;
                for i in 0..self.st.len() {
                    while let Some(f) = self.st[i].session.as_mut().and_then(|s| s.poll_transmit())
                    {
                        moved = true;
                        for t in self.sw.handle(i as u64, &f, unix, &mut OsRng) {
                            self.deliver(t.conn as usize, &t.frame);
                        }
                    }
                }
                if !moved && !self.release_held() {
                    break;
                }
            }
            for st in &mut self.st {
                while let Some(a) = st.phone.poll_action() {
                    match a {
                        Action::Print(l) => st.lines.push(l),
                        Action::StartMedia { id, remote, config } => {
                            st.media.push((id, remote, config))
                        }
                        other => st.other.push(other),
                    }
                }
            }
        }

        /// Hands held events to their phones, call events of one call once with their count;
        /// whether there were any.
        fn release_held(&mut self) -> bool {
            let now = self.now;
            let mut any = false;
            for st in &mut self.st {
                let held = std::mem::take(&mut st.held);
                let Some(s) = st.session.as_mut() else {
                    continue;
                };
                any |= !held.is_empty();
                let ids: Vec<Option<SessionId>> = held
                    .iter()
                    .map(|e| match e {
                        Event::Call(id) => Some(*id),
                        _ => None,
                    })
                    .collect();
                let mut done = Vec::new();
                for ev in held {
                    match ev {
                        Event::Call(id) if !done.contains(&id) => {
                            done.push(id);
                            let k = ids.iter().filter(|x| **x == Some(id)).count();
                            st.phone.on_call_frames(s, id, k, now, &mut OsRng);
                        }
                        Event::Call(_) => {}
                        Event::Registered => {
                            st.phone
                                .on_registered(s, "switch:1", &st.identity, now, &mut OsRng)
                        }
                        ev => st.phone.on_event(s, ev, now, &mut OsRng),
                    }
                }
            }
            any
        }

        /// Advances the clock by `d`, running the client cores' and the phones' timers.
        fn advance(&mut self, d: Duration) {
            self.now += d;
            let now = self.now;
            for i in 0..self.st.len() {
                if let Some(s) = self.st[i].session.as_mut() {
                    if s.poll_timeout() <= now {
                        s.handle_timeout(now);
                    }
                }
                self.events(i);
                let st = &mut self.st[i];
                if let (Some(s), Some(at)) = (st.session.as_mut(), st.phone.poll_timeout()) {
                    if at <= now {
                        st.phone.handle_timeout(s, now, &mut OsRng);
                    }
                }
            }
            self.pump();
        }

        fn calls(&self, i: usize) -> Vec<String> {
            self.st[i]
                .lines
                .iter()
                .filter(|l| l.event == "call")
                .map(|l| {
                    let mut s = l.get("state").unwrap().as_str().unwrap().to_owned();
                    if let Some(r) = l.get("reason") {
                        s = format!("{s}:{}", r.as_str().unwrap());
                    }
                    s
                })
                .collect()
        }
    }

    #[test]
    fn call_answered_media_keys_match_and_caller_hangs_up_after() {
        let mut caller = script();
        caller.dial = Some("tel:+101w22".into());
        caller.hangup_after = Some(Duration::from_secs(2));
        caller.dtmf = Some("12#".into());
        let mut callee = script();
        callee.codecs = vec![0]; // PCMU only
        callee.calls = Some(1);
        let mut net = Net::new(vec![caller, callee]);
        net.connect(1);
        net.connect(0);
        assert_eq!(net.calls(0), ["CREATE", "BANG", "GROWL", "TALK"]);
        assert_eq!(net.calls(1), ["BANG", "GROWL", "TALK"]);
        let to = net.st[1].lines.iter().find(|l| l.event == "call").unwrap();
        assert_eq!(to.get("to").unwrap(), "tel:+101w22");
        assert_eq!(to.get("dir").unwrap(), "in");
        // Both ends start media towards the relay with PCMU, the same SRTP key, own SSRCs.
        let (a, b) = (&net.st[0].media[0], &net.st[1].media[0]);
        assert_eq!(a.0, b.0);
        assert_eq!(
            (a.1.as_str(), b.1.as_str()),
            ("192.0.2.1:4000", "192.0.2.1:4000")
        );
        assert_eq!((a.2.law, a.2.payload_type), (Law::Ulaw, 0));
        assert_eq!((b.2.law, b.2.payload_type), (Law::Ulaw, 0));
        assert_eq!(a.2.dtmf_payload_type, Some(DTMF_PT));
        assert_ne!(a.2.ssrc, b.2.ssrc);
        let (ka, kb) = (a.2.srtp.as_ref().unwrap(), b.2.srtp.as_ref().unwrap());
        let probe = |k: &MasterKey| {
            let mut ctx = cig_media::srtp::SrtpContext::new(k);
            let mut buf = [0u8; 64];
            cig_media::rtp::write_header(&mut buf, false, 0, 1, 1, 1).unwrap();
            ctx.protect_rtp(&mut buf, 16).unwrap();
            buf
        };
        assert_eq!(
            probe(&ka.outbound),
            probe(&kb.inbound),
            "same key both ways"
        );
        assert_eq!(net.st[0].phone.finished(), None);
        // DTMF after 0.5 s, hang-up after 2 s.
        net.advance(Duration::from_millis(500));
        assert!(
            matches!(&net.st[0].other[..], [Action::SendDtmf { digits, .. }] if digits == "12#")
        );
        net.advance(Duration::from_millis(1500));
        assert_eq!(net.calls(0).last().unwrap(), "HANGUP:normal");
        assert_eq!(net.calls(1).last().unwrap(), "HANGUP:normal");
        assert!(matches!(net.st[1].other[..], [Action::StopMedia { .. }]));
        assert_eq!(net.st[0].phone.finished(), Some(true));
        assert_eq!(net.st[1].phone.finished(), Some(true));
        assert_eq!(net.st[0].phone.counters().answered, 1);
    }

    /// GROWL and TALK (or ROUTED and HANGUP) handled together before the caller looks: the
    /// states they passed through are still reported, in order.
    #[test]
    fn states_of_frames_handled_together_are_all_reported() {
        let mut caller = script();
        caller.dial = Some("tel:+101".into());
        let mut net = Net::new(vec![caller, script()]);
        net.st[0].batched = true;
        net.connect(1);
        net.connect(0);
        assert_eq!(net.calls(0), ["CREATE", "BANG", "GROWL", "TALK"]);
        assert_eq!(net.st[0].media.len(), 1, "media starts at TALK");
        let mut caller = script();
        caller.dial = Some("tel:+101".into());
        let mut busy = script();
        busy.answer = AnswerMode::Busy;
        let mut net = Net::new(vec![caller, busy]);
        net.st[0].batched = true;
        net.connect(1);
        net.connect(0);
        assert_eq!(net.calls(0), ["CREATE", "BANG", "HANGUP:busy"]);
        assert_eq!(net.st[0].phone.finished(), Some(false));
    }

    #[test]
    fn callee_hangs_up_and_answer_after_delay() {
        let mut caller = script();
        caller.dial = Some("tel:+101".into());
        let mut callee = script();
        callee.answer = AnswerMode::After(Duration::from_secs(1));
        callee.hangup_after = Some(Duration::from_secs(1));
        let mut net = Net::new(vec![caller, callee]);
        net.connect(1);
        net.connect(0);
        assert_eq!(net.calls(0), ["CREATE", "BANG", "GROWL"]);
        net.advance(Duration::from_millis(999));
        assert_eq!(net.calls(0), ["CREATE", "BANG", "GROWL"]);
        net.advance(Duration::from_millis(1));
        assert_eq!(net.calls(0).last().unwrap(), "TALK");
        net.advance(Duration::from_secs(1));
        assert_eq!(net.calls(0).last().unwrap(), "HANGUP:normal");
        assert_eq!(net.calls(1).last().unwrap(), "HANGUP:normal");
        assert_eq!(net.st[0].phone.finished(), Some(true));
        // No goal asked of the callee: it keeps running.
        assert_eq!(net.st[1].phone.finished(), None);
    }

    #[test]
    fn busy_declined_no_route_and_a_second_call_while_busy() {
        for (mode, expect) in [
            (AnswerMode::Busy, "HANGUP:busy"),
            (AnswerMode::Declined, "HANGUP:declined"),
        ] {
            let mut caller = script();
            caller.dial = Some("tel:+101".into());
            let mut callee = script();
            callee.answer = mode;
            let mut net = Net::new(vec![caller, callee]);
            net.connect(1);
            net.connect(0);
            assert_eq!(net.calls(0), ["CREATE", "BANG", expect]);
            assert_eq!(net.st[0].phone.finished(), Some(false));
            assert!(net.st[0].media.is_empty() && net.st[1].media.is_empty());
        }
        // Nobody registered as tel:+109.
        let mut caller = script();
        caller.dial = Some("tel:+109".into());
        let mut net = Net::new(vec![caller]);
        net.connect(0);
        assert_eq!(net.calls(0), ["CREATE", "HANGUP:no_route"]);
        // Phone 1 talks to phone 0; phone 2 calls phone 1 and finds it busy.
        let mut first = script();
        first.dial = Some("tel:+101".into());
        let mut second = script();
        second.dial = Some("tel:+101".into());
        let mut net = Net::new(vec![first, script(), second]);
        net.connect(1);
        net.connect(0);
        net.connect(2);
        assert_eq!(net.calls(0).last().unwrap(), "TALK");
        assert_eq!(net.calls(2), ["CREATE", "BANG", "HANGUP:busy"]);
        assert_eq!(
            net.calls(1),
            ["BANG", "GROWL", "TALK", "BANG", "HANGUP:busy"]
        );
        // The caller's connection drops: the callee's leg ends as unavailable.
        net.disconnect(0);
        assert_eq!(net.calls(1).last().unwrap(), "HANGUP:unavailable");
        assert_eq!(net.calls(0).last().unwrap(), "HANGUP:unavailable");
    }

    #[test]
    fn unanswered_call_times_out_after_the_ring_timeout() {
        let mut caller = script();
        caller.dial = Some("tel:+101".into());
        let mut callee = script();
        callee.answer = AnswerMode::Never;
        let mut net = Net::new(vec![caller, callee]);
        net.connect(1);
        net.connect(0);
        net.advance(Duration::from_secs(59));
        assert_eq!(net.calls(0), ["CREATE", "BANG", "GROWL"]);
        net.advance(Duration::from_secs(1));
        assert_eq!(net.calls(0).last().unwrap(), "HANGUP:timeout");
        assert_eq!(net.calls(1).last().unwrap(), "HANGUP:timeout");
        assert_eq!(net.st[0].phone.finished(), Some(false));
    }

    #[test]
    fn never_answer_rings_until_the_caller_gives_up() {
        let mut caller = script();
        caller.dial = Some("tel:+101".into());
        caller.hangup_after = Some(Duration::from_secs(1));
        let mut callee = script();
        callee.answer = AnswerMode::Never;
        let mut net = Net::new(vec![caller, callee]);
        net.connect(1);
        net.connect(0);
        net.advance(Duration::from_secs(5));
        // hangup_after counts from the answer: the caller is still ringing.
        assert_eq!(net.calls(0), ["CREATE", "BANG", "GROWL"]);
        let now = net.now;
        let st = &mut net.st[0];
        st.phone
            .hangup_all(st.session.as_mut().unwrap(), now, &mut OsRng);
        net.pump();
        assert_eq!(net.calls(1).last().unwrap(), "HANGUP:normal");
        assert_eq!(net.st[0].phone.finished(), Some(false), "not answered");
    }

    #[test]
    fn messages_online_with_attachment_and_offline_until_registered() {
        let body = Body {
            text: "see attached".into(),
            attachments: vec![Attachment {
                name: "a.txt".into(),
                content_type: "text/plain".into(),
                data: b"hello".to_vec(),
            }],
        };
        let mut sender = script();
        sender.messages = vec![
            ("tel:+101".into(), body.clone()),
            (
                "tel:+102".into(),
                Body {
                    text: "later".into(),
                    attachments: vec![],
                },
            ),
        ];
        let mut online = script();
        online.messages_expected = Some(1);
        let mut offline = script();
        offline.messages_expected = Some(1);
        let mut net = Net::new(vec![sender, online, offline]);
        net.connect(1);
        net.connect(0);
        let acks: Vec<_> = net.st[0]
            .lines
            .iter()
            .filter(|l| l.event == "message_ack")
            .map(|l| l.get("status").unwrap().as_str().unwrap().to_owned())
            .collect();
        assert_eq!(acks.len(), 2);
        assert!(acks.contains(&"delivered".into()) && acks.contains(&"stored".into()));
        assert_eq!(net.st[0].phone.finished(), Some(true));
        let got: Vec<_> = net.st[1]
            .lines
            .iter()
            .filter(|l| l.event == "message")
            .collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].get("text").unwrap(), "see attached");
        assert_eq!(got[0].get("from").unwrap(), "tel:+100");
        let att = &got[0].get("attachments").unwrap()[0];
        assert_eq!(att["name"], "a.txt");
        assert_eq!(att["size"], 5);
        assert_eq!(
            att["sha256"],
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(
            matches!(&net.st[1].other[..], [Action::Save { name, data }] if name == "a.txt" && data == b"hello")
        );
        assert_eq!(net.st[1].phone.finished(), Some(true));
        // The offline phone registers and gets its message; a reconnection does not show it
        // twice.
        net.connect(2);
        net.disconnect(2);
        net.connect(2);
        let got: Vec<_> = net.st[2]
            .lines
            .iter()
            .filter(|l| l.event == "message")
            .collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].get("text").unwrap(), "later");
        assert_eq!(net.st[2].phone.counters().messages_received, 1);
        assert_eq!(
            net.st[2]
                .lines
                .iter()
                .filter(|l| l.event == "registered")
                .count(),
            2
        );
    }
}
