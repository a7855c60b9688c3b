//! The call engine: the table of calls, each joining a SIP leg and a UMSG leg (docs/calls.md).
//!
//! Inputs: [`Engine::on_sip`] (user-agent events), [`Engine::on_sip_placed`] (the handle of an
//! INVITE the runtime placed), [`Engine::on_umsg_call`] (a UMSG session changed),
//! [`Engine::on_relay_reply`] / [`Engine::on_relay_event`], link state changes and
//! [`Engine::handle_timeout`]. Outputs: [`Engine::poll_action`]. The secure side is reached
//! through the [`Secure`] trait, synchronously.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cig_core::conf::{Config, Interface, InterfaceKind};
use cig_media::control::{
    AddrOverride, Codec as RelayCodec, Command, Direction as RelayDirection, KeyMaterial,
    LegConfig, LegId, LegUpdate, LocalPorts, PortRange, Reply, SecretBytes, SrtpConfig,
    SrtpProfileName,
};
use cig_mikey_sakke::kdf::SrtpKeys;
use cig_route::{RouteBuf, Router};
use cig_sip::digest::Credentials;
use cig_sip::message::{NameAddr, Uri};
use cig_sip::sdp::{self, AudioCapabilities, Codec, NegotiatedAudio, SessionDescription};
use cig_sip::ua::{CallHandle, EndReason, Event};
use cig_umsg::call::{CallState as UmsgState, HangupReason, Media, SessionId, session_id_text};
use cig_umsg::register::from_is_of;

use crate::Error;
use crate::logfmt::{self, Level, SessionEvent, SessionState};
use crate::mapping::{reason_for_status, reason_name, status_for_reason};
use crate::secure::{Secure, SecureCall};

/// A call's number inside the engine (also names its relay session `call-N`).
pub type CallId = u64;

/// `show call` states (the manual's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// Routed.
    Routed,
    /// The gateway initiated the call to the receiver.
    Try,
    /// Ringing at the receiver.
    Ring,
    /// Rejected / declined.
    Reject,
    /// Answered, media up.
    Answer,
    /// Ended.
    Hangup,
}

impl CallState {
    /// `ROUTED`, `TRY`, `RING`, `REJECT`, `ANSWER` or `HANGUP`.
    pub fn name(self) -> &'static str {
        match self {
            CallState::Routed => "ROUTED",
            CallState::Try => "TRY",
            CallState::Ring => "RING",
            CallState::Reject => "REJECT",
            CallState::Answer => "ANSWER",
            CallState::Hangup => "HANGUP",
        }
    }
}

/// One `show call` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRow {
    /// The caller as it came in.
    pub in_from: String,
    /// The dialled number as it came in.
    pub in_to: String,
    /// The caller as the gateway presents it on the other side.
    pub out_from: String,
    /// The mapped destination.
    pub out_to: String,
    /// The last completed event.
    pub state: CallState,
}

/// What the runtime must do for the SIP side.
#[derive(Debug, Clone)]
pub enum SipCommand {
    /// Place an INVITE (resolve the Request-URI's next hop first) and report the handle with
    /// [`Engine::on_sip_placed`].
    Place(Box<Invite>),
    /// 180 Ringing.
    Ringing(CallHandle),
    /// 200 OK with this SDP answer.
    Answer(CallHandle, Bytes),
    /// A final error status for an incoming INVITE.
    Reject(CallHandle, u16),
    /// BYE (answered) or CANCEL (early).
    Hangup(CallHandle),
}

/// An INVITE for the runtime to place.
#[derive(Debug, Clone)]
pub struct Invite {
    /// The engine's call.
    pub call: CallId,
    /// Request-URI.
    pub uri: Uri,
    /// From.
    pub from: NameAddr,
    /// To.
    pub to: NameAddr,
    /// SDP offer.
    pub sdp: Bytes,
    /// Digest credentials from the map entry's `auth`.
    pub credentials: Option<Credentials>,
}

/// A UMSG call for the runtime to dial ([`crate::secure::dial`]) and report with
/// [`Engine::on_dialled`]. Building the BANG's I_MESSAGE costs about a millisecond of CPU
/// (SAKKE encapsulation, ECCSI signature), so the runtime does it away from its signalling loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    /// The engine's call.
    pub call: CallId,
    /// FROM: the routed caller when it is the gateway's registered identity with an extension
    /// (`tel:+8888;101`), so the secure callee sees who calls; `None`: the registered identity
    /// itself (the routed caller is outside it and cannot be presented, docs/calls.md).
    pub from: Option<String>,
    /// TO: the routed callee (a TEL URI).
    pub to: String,
    /// The media offer.
    pub offer: Media,
}

/// What the engine asks of the runtime.
#[derive(Debug)]
pub enum Action {
    /// A SIP user-agent command.
    Sip(SipCommand),
    /// Dial the secure callee; feed the outcome to [`Engine::on_dialled`].
    Dial(Box<Dial>),
    /// A relay request on behalf of `call`; feed the reply to [`Engine::on_relay_reply`].
    Relay {
        /// The engine's call.
        call: CallId,
        /// The request.
        command: Box<Command>,
    },
    /// One session.log line (with newline).
    SessionLog(String),
    /// One cig.log line (with newline).
    Log(Level, String),
}

/// Engine settings that do not come from cig.conf.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The address put in SDP when the relay reports an unspecified bind address.
    pub media_ip: IpAddr,
    /// The relay's media timeout per session (0: none).
    pub media_timeout_ms: u32,
    /// How long an unanswered call may take before it is given up (408 / HANGUP timeout).
    pub setup_timeout: Duration,
    /// How long an ended call stays in `show call` (as REJECT or HANGUP).
    pub linger: Duration,
    /// RFC 4733 payload type offered on both sides.
    pub dtmf_pt: u8,
    /// The gateway's registered UMSG identity (`tel:+8888`): a routed caller under it is
    /// presented to the secure callee as FROM (empty: none is).
    pub identity: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            media_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            media_timeout_ms: 30_000,
            setup_timeout: Duration::from_secs(60),
            linger: Duration::from_secs(5),
            dtmf_pt: sdp::DEFAULT_TELEPHONE_EVENT_PT,
            identity: String::new(),
        }
    }
}

/// A secure side that is not there (switch disconnected): no session exists.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSecure;

impl Secure for NoSecure {
    fn growl(&mut self, _id: &SessionId) {}
    fn answer(&mut self, _id: &SessionId, _media: &Media) {}
    fn hangup(&mut self, _id: &SessionId, _reason: HangupReason) {}
    fn call(&self, _id: &SessionId) -> Option<SecureCall> {
        None
    }
}

/// The parts of an [`Event::IncomingCall`] the engine uses.
struct IncomingInvite<'a> {
    call: CallHandle,
    call_id: String,
    from: &'a NameAddr,
    to: &'a NameAddr,
    sdp: &'a [u8],
    source: SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    SipToSecure,
    SecureToSip,
}

#[derive(Debug)]
enum RelayState {
    None,
    Creating,
    Up { b: LocalPorts },
    Gone,
}

#[derive(Debug)]
struct Call {
    dir: Dir,
    in_from: String,
    in_to: String,
    out_from: String,
    out_to: String,
    state: CallState,
    /// The call's one timer in [`Engine`]'s deadline set: the set-up timeout while it is
    /// unanswered, the end of the linger time once it ended, none while it talks.
    deadline: Option<SystemTime>,
    sip: Option<CallHandle>,
    /// The SIP leg's Call-ID (empty until the leg exists): its session.log interface id.
    sip_call_id: String,
    umsg: Option<SessionId>,
    /// SIP → secure: the PBX's offer.
    sip_offer: Option<SessionDescription>,
    /// Codec on the relay's legs as created/last updated.
    a_codec: RelayCodec,
    b_codec: RelayCodec,
    /// Leg B's announced remote address and telephone-event type as the relay has them.
    b_remote: Option<SocketAddr>,
    b_te: Option<u8>,
    /// The PBX holds the call (its last offer was `sendonly`/`inactive` or `c=0.0.0.0`).
    held: bool,
    /// The direction the relay plays on leg B, as last sent (sessions start `sendrecv`).
    b_direction: RelayDirection,
    relay: RelayState,
    /// The secure far end's announced media address was given to the relay.
    a_remote_sent: bool,
    sip_placed: bool,
    sip_answered: bool,
    secure_trying_logged: bool,
    ring_done: bool,
    answered: bool,
    ended_at: Option<SystemTime>,
    sip_done: bool,
    secure_done: bool,
    auth: Option<Credentials>,
    /// Secure → SIP: the offer's capabilities (relay leg B).
    b_caps: Option<AudioCapabilities>,
}

impl Call {
    /// session.log's Caller-if-ID and Callee-if-ID: the SIP leg's Call-ID and the UMSG
    /// session id (16 base64 characters), each empty until that leg exists.
    fn if_ids(&self) -> (String, String) {
        let umsg = self.umsg.as_ref().map(session_id_text).unwrap_or_default();
        let sip = self.sip_call_id.clone();
        match self.dir {
            Dir::SipToSecure => (sip, umsg),
            Dir::SecureToSip => (umsg, sip),
        }
    }
}

fn relay_session(call: CallId) -> String {
    format!("call-{call}")
}

fn call_of_session(s: &str) -> Option<CallId> {
    s.strip_prefix("call-")?.parse().ok()
}

fn relay_codec(c: Codec) -> RelayCodec {
    match c {
        Codec::Pcmu => RelayCodec::Pcmu,
        Codec::Pcma => RelayCodec::Pcma,
    }
}

fn sip_codec(c: RelayCodec) -> Codec {
    match c {
        RelayCodec::Pcmu => Codec::Pcmu,
        RelayCodec::Pcma => Codec::Pcma,
    }
}

fn codec_of_pt(pt: u8) -> Option<RelayCodec> {
    match pt {
        0 => Some(RelayCodec::Pcmu),
        8 => Some(RelayCodec::Pcma),
        _ => None,
    }
}

fn other_codec(c: RelayCodec) -> RelayCodec {
    match c {
        RelayCodec::Pcmu => RelayCodec::Pcma,
        RelayCodec::Pcma => RelayCodec::Pcmu,
    }
}

/// `tel:+8888w101` → `tel:+8888;101`: the secure phones' "wait for connect" mark `w` is routed
/// like the manual's `;` (design.md §3), so maps written with `;` match both.
pub fn normalize_wait_mark(uri: &str) -> String {
    match uri.strip_prefix("tel:") {
        Some(rest) => match rest.find(['w', 'W']) {
            Some(i) if !rest[..i].contains(';') => {
                format!("tel:{};{}", &rest[..i], &rest[i + 1..])
            }
            _ => uri.to_owned(),
        },
        None => uri.to_owned(),
    }
}

fn srtp_config(keys: &SrtpKeys) -> SrtpConfig {
    // UMSG: both directions use the call's one master key and salt (docs/umsg.md §5).
    let km = || KeyMaterial {
        key: SecretBytes::new(&keys.master_key),
        salt: SecretBytes::new(&keys.master_salt),
    };
    SrtpConfig {
        profile: SrtpProfileName::AesCm128HmacSha1_80,
        inbound: km(),
        outbound: km(),
    }
}

/// The direction the relay plays towards the PBX: ours in the negotiated SDP, without sending
/// while the PBX announced `c=0.0.0.0` (RFC 2543 hold).
fn relay_direction(n: &NegotiatedAudio) -> RelayDirection {
    let sends = n.direction.sends() && !n.remote_address.is_unspecified();
    match (sends, n.direction.receives()) {
        (true, true) => RelayDirection::SendRecv,
        (true, false) => RelayDirection::SendOnly,
        (false, true) => RelayDirection::RecvOnly,
        (false, false) => RelayDirection::Inactive,
    }
}

fn leg_config(
    iface: Option<&Interface>,
    codec: RelayCodec,
    dtmf_pt: Option<u8>,
    remote: Option<SocketAddr>,
) -> LegConfig {
    let mut leg = LegConfig::rtp(codec);
    leg.telephone_event_pt = dtmf_pt;
    leg.remote = remote;
    if let Some(i) = iface {
        leg.bind = i.bind;
        leg.port_range = i
            .rtp_port_range
            .and_then(|(low, high)| PortRange::new(low, high).ok());
        leg.remote_addr_overrides = i
            .rtp_remote_addr_override
            .iter()
            .map(|&(from, to)| AddrOverride { from, to })
            .collect();
    }
    leg
}

/// The call engine.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    router: Router,
    settings: EngineConfig,
    calls: BTreeMap<CallId, Call>,
    /// Every call's [`Call::deadline`], earliest first: the next timer is the first entry and
    /// a timeout touches only the calls that are due (no scan of the table per event).
    timers: BTreeSet<(SystemTime, CallId)>,
    by_sip: HashMap<CallHandle, CallId>,
    by_umsg: HashMap<SessionId, CallId>,
    out: VecDeque<Action>,
    next_id: CallId,
    relay_up: bool,
    switch_up: bool,
    ssrc_seed: u32,
}

impl Engine {
    /// An engine routing with `config`'s maps. Both links start down ([`Engine::set_links`]).
    pub fn new(config: &Config, settings: EngineConfig) -> Result<Engine, Error> {
        Ok(Engine {
            router: Router::from_config(config)?,
            config: config.clone(),
            settings,
            calls: BTreeMap::new(),
            timers: BTreeSet::new(),
            by_sip: HashMap::new(),
            by_umsg: HashMap::new(),
            out: VecDeque::new(),
            next_id: 1,
            relay_up: false,
            switch_up: false,
            ssrc_seed: 0x4349_4700,
        })
    }

    /// Replaces the configuration for new calls (SIGHUP); calls in progress keep theirs.
    pub fn reload(&mut self, config: &Config) -> Result<(), Error> {
        self.router = Router::from_config(config)?;
        self.config = config.clone();
        Ok(())
    }

    /// The configuration new calls use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sets whether the relay and the switch are connected (new calls are refused with 503
    /// while either is down). Use [`Engine::relay_lost`] / [`Engine::switch_lost`] to also end
    /// the calls that depended on a link.
    pub fn set_links(&mut self, relay_up: bool, switch_up: bool) {
        self.relay_up = relay_up;
        self.switch_up = switch_up;
    }

    /// The relay connection is gone: every call ends (its media is gone), new calls get 503.
    pub fn relay_lost(&mut self, now: SystemTime, secure: &mut dyn Secure) {
        self.relay_up = false;
        let ids: Vec<CallId> = self.live_calls().collect();
        for id in ids {
            let end = End::new(HangupReason::Error, 503).gone(Gone::Relay);
            self.end(id, now, secure, end);
        }
    }

    /// The relay is connected (again).
    pub fn relay_restored(&mut self) {
        self.relay_up = true;
    }

    /// One relay of several is gone: the calls `ids` whose media it carried end as on
    /// [`Engine::relay_lost`] (503 / Error, both legs told), each with a cig.log line saying
    /// `why`; new calls go on (the runtime places them on the other relays).
    pub fn relay_calls_lost(
        &mut self,
        ids: &[CallId],
        why: &str,
        now: SystemTime,
        secure: &mut dyn Secure,
    ) {
        for &id in ids {
            let end = End::new(HangupReason::Error, 503).gone(Gone::Relay).note(
                "Relay",
                Level::Warn,
                format!("{why}; ending the call"),
            );
            self.end(id, now, secure, end);
        }
    }

    /// The switch connection is gone: the UMSG sessions went with it, so every call's SIP leg
    /// ends; new calls get 503.
    pub fn switch_lost(&mut self, now: SystemTime, secure: &mut dyn Secure) {
        self.switch_up = false;
        let ids: Vec<CallId> = self.live_calls().collect();
        for id in ids {
            let end = End::new(HangupReason::Unavailable, 503).gone(Gone::Secure);
            self.end(id, now, secure, end);
        }
    }

    /// The switch is connected and we are registered (again).
    pub fn switch_restored(&mut self) {
        self.switch_up = true;
    }

    /// Ends every call (SIGTERM): BYE / CANCEL / 503 towards SIP, HANGUP(normal) towards UMSG.
    pub fn hangup_all(&mut self, now: SystemTime, secure: &mut dyn Secure) {
        let ids: Vec<CallId> = self.live_calls().collect();
        for id in ids {
            self.end(id, now, secure, End::new(HangupReason::Normal, 503));
        }
    }

    /// Calls not yet ended.
    pub fn active_calls(&self) -> usize {
        self.calls.values().filter(|c| c.ended_at.is_none()).count()
    }

    fn live_calls(&self) -> impl Iterator<Item = CallId> + '_ {
        self.calls
            .iter()
            .filter(|(_, c)| c.ended_at.is_none())
            .map(|(id, _)| *id)
    }

    /// The `show call` rows, oldest first (ended calls stay for the linger time).
    pub fn rows(&self) -> Vec<CallRow> {
        self.calls
            .values()
            .map(|c| CallRow {
                in_from: c.in_from.clone(),
                in_to: c.in_to.clone(),
                out_from: c.out_from.clone(),
                out_to: c.out_to.clone(),
                state: c.state,
            })
            .collect()
    }

    /// The next thing for the runtime to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// When [`Engine::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<SystemTime> {
        self.timers.first().map(|&(at, _)| at)
    }

    /// Timers: unanswered calls past the set-up timeout end (408 / HANGUP timeout); ended
    /// calls leave `show call` after the linger time. Only the calls that are due are touched.
    pub fn handle_timeout(&mut self, now: SystemTime, secure: &mut dyn Secure) {
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let Some(c) = self.calls.get_mut(&id) else {
                continue;
            };
            c.deadline = None;
            if c.ended_at.is_none() {
                // Only an unanswered call has a timer while it lasts: the set-up timeout.
                let end = End::new(HangupReason::Timeout, 408).note(
                    "Call",
                    Level::Info,
                    "no answer in time".to_owned(),
                );
                self.end(id, now, secure, end);
            } else if let Some(c) = self.calls.remove(&id) {
                if let Some(h) = c.sip {
                    self.by_sip.remove(&h);
                }
                if let Some(u) = c.umsg {
                    self.by_umsg.remove(&u);
                }
            }
        }
    }

    /// Sets call `id`'s one timer to `at` (`None`: no timer).
    fn set_deadline(&mut self, id: CallId, at: Option<SystemTime>) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if c.deadline == at {
            return;
        }
        if let Some(old) = c.deadline.take() {
            self.timers.remove(&(old, id));
        }
        if let Some(at) = at {
            self.timers.insert((at, id));
        }
        c.deadline = at;
    }

    fn log(&mut self, now: SystemTime, module: &str, level: Level, text: String) {
        self.out.push_back(Action::Log(
            level,
            logfmt::log_line(now, module, level, format_args!("{text}")),
        ));
    }

    fn session_log(&mut self, now: SystemTime, id: CallId, state: SessionState) {
        let Some(c) = self.calls.get(&id) else { return };
        let (ci, cei) = c.if_ids();
        let line = logfmt::session_line(
            now,
            &SessionEvent {
                caller: &c.in_from,
                callee: &c.in_to,
                routed_caller: &c.out_from,
                routed_callee: &c.out_to,
                state,
                caller_if_id: &ci,
                callee_if_id: &cei,
            },
        );
        self.out.push_back(Action::SessionLog(line));
    }

    fn sip(&mut self, cmd: SipCommand) {
        self.out.push_back(Action::Sip(cmd));
    }

    fn relay(&mut self, call: CallId, command: Command) {
        self.out.push_back(Action::Relay {
            call,
            command: Box::new(command),
        });
    }

    fn next_ssrc(&mut self) -> u32 {
        // A distinct SSRC per offer; the relay keeps its own per leg, this is informational.
        self.ssrc_seed = self
            .ssrc_seed
            .wrapping_mul(1_664_525)
            .wrapping_add(1_013_904_223);
        self.ssrc_seed
    }

    fn new_call(&mut self, dir: Dir, in_from: String, in_to: String, now: SystemTime) -> CallId {
        let id = self.next_id;
        self.next_id += 1;
        self.calls.insert(
            id,
            Call {
                dir,
                in_from,
                in_to,
                out_from: String::new(),
                out_to: String::new(),
                state: CallState::Routed,
                deadline: None,
                sip: None,
                sip_call_id: String::new(),
                umsg: None,
                sip_offer: None,
                a_codec: RelayCodec::Pcmu,
                b_codec: RelayCodec::Pcmu,
                b_remote: None,
                b_te: None,
                held: false,
                b_direction: RelayDirection::SendRecv,
                relay: RelayState::None,
                a_remote_sent: false,
                sip_placed: false,
                sip_answered: false,
                secure_trying_logged: false,
                ring_done: false,
                answered: false,
                ended_at: None,
                sip_done: false,
                secure_done: false,
                auth: None,
                b_caps: None,
            },
        );
        self.set_deadline(id, Some(now + self.settings.setup_timeout));
        id
    }

    /// Routes a new call, logging `routing` then `routed` or `failed` (`None`: the caller ends
    /// the call as refused for no route).
    fn route(&mut self, id: CallId, on: InterfaceKind, now: SystemTime) -> Option<()> {
        self.session_log(now, id, SessionState::Routing);
        let c = self.calls.get(&id)?;
        let to = match on {
            InterfaceKind::Tel => normalize_wait_mark(&c.in_to),
            InterfaceKind::Sip => c.in_to.clone(),
        };
        let mut uris = RouteBuf::default();
        match self.router.route_into(on, &c.in_from, &to, &mut uris) {
            Ok(r) => {
                let auth = r
                    .auth
                    .and_then(|a| self.config.auth(a))
                    .map(|a| Credentials::new(a.user.clone(), a.password.expose().to_owned()));
                let c = self.calls.get_mut(&id)?;
                c.out_from = uris.from;
                c.out_to = uris.to;
                c.auth = auth;
                let text = format!(
                    "call {id}: {} -> {} routed to {} -> {} by {} / {}",
                    c.in_from, c.in_to, c.out_from, c.out_to, r.to_match, r.from_match
                );
                self.log(now, "Route", Level::Info, text);
                self.session_log(now, id, SessionState::Routed);
                Some(())
            }
            Err(e) => {
                let text = format!("call {id}: {} -> {}: {e}", c.in_from, c.in_to);
                self.log(now, "Route", Level::Info, text);
                self.session_log(now, id, SessionState::Failed);
                None
            }
        }
    }

    // ----- SIP side -------------------------------------------------------------------

    /// A SIP user-agent event.
    pub fn on_sip(&mut self, ev: Event, now: SystemTime, secure: &mut dyn Secure) {
        match ev {
            Event::IncomingCall {
                call,
                from,
                to,
                sdp,
                source,
                call_id,
                ..
            } => {
                let invite = IncomingInvite {
                    call,
                    call_id,
                    from: &from,
                    to: &to,
                    sdp: &sdp,
                    source,
                };
                self.incoming_sip(invite, now, secure);
            }
            Event::Trying { call } => {
                if let Some(id) = self.by_sip.get(&call).copied() {
                    self.session_log(now, id, SessionState::Trying);
                }
            }
            Event::Ringing { call, sdp, .. } => {
                let Some(id) = self.by_sip.get(&call).copied() else {
                    return;
                };
                if let Some(body) = sdp {
                    self.sip_answer_sdp(id, &body, now);
                }
                let Some(c) = self.calls.get_mut(&id) else {
                    return;
                };
                if c.ring_done || c.ended_at.is_some() {
                    return;
                }
                c.ring_done = true;
                c.state = CallState::Ring;
                if let Some(u) = c.umsg {
                    secure.growl(&u);
                }
                self.session_log(now, id, SessionState::Ringing);
            }
            Event::Answered { call, sdp } => {
                let Some(id) = self.by_sip.get(&call).copied() else {
                    return;
                };
                self.sip_answered(id, &sdp, now, secure);
            }
            Event::Rejected { call, status, .. } => {
                let Some(id) = self.by_sip.get(&call).copied() else {
                    return;
                };
                let end = End::new(reason_for_status(status), status)
                    .rejected()
                    .gone(Gone::Sip)
                    .note("Call", Level::Info, format!("the PBX answered {status}"));
                self.end(id, now, secure, end);
            }
            Event::SessionUpdated {
                call,
                remote_sdp,
                local_sdp,
            } => {
                if let Some(id) = self.by_sip.get(&call).copied() {
                    self.sip_reoffer(id, &remote_sdp, &local_sdp, now);
                }
            }
            Event::Ended { call, reason } => {
                let Some(id) = self.by_sip.get(&call).copied() else {
                    return;
                };
                let r = match reason {
                    EndReason::Timeout => HangupReason::Timeout,
                    _ => HangupReason::Normal,
                };
                self.end(id, now, secure, End::new(r, 487).gone(Gone::Sip));
            }
            _ => {}
        }
    }

    fn incoming_sip(&mut self, inv: IncomingInvite<'_>, now: SystemTime, secure: &mut dyn Secure) {
        let IncomingInvite {
            call: h,
            call_id,
            from,
            to,
            sdp: body,
            source,
        } = inv;
        let (in_from, in_to) = (from.uri.to_string(), to.uri.to_string());
        if !self.relay_up || !self.switch_up {
            let text = format!(
                "INVITE {in_from} -> {in_to} from {source} refused with 503: {} down",
                if self.relay_up { "switch" } else { "relay" }
            );
            self.log(now, "Call", Level::Warn, text);
            self.sip(SipCommand::Reject(h, 503));
            return;
        }
        let id = self.new_call(Dir::SipToSecure, in_from, in_to, now);
        self.by_sip.insert(h, id);
        if let Some(c) = self.calls.get_mut(&id) {
            c.sip = Some(h);
            c.sip_call_id = call_id;
        }
        if self.route(id, InterfaceKind::Sip, now).is_none() {
            let end = End::new(HangupReason::NoRoute, 404).rejected();
            self.end(id, now, secure, end);
            return;
        }
        // The PBX's offer decides leg B's codec; the secure side is offered the same first.
        let probe = AudioCapabilities::new(self.settings.media_ip, 9);
        let negotiated = SessionDescription::parse(body)
            .map_err(Error::from)
            .and_then(|o| {
                let (_, n) = sdp::answer(&o, &probe, id, 1)?;
                Ok((o, n))
            });
        let (offer, n) = match negotiated {
            Ok(x) => x,
            Err(e) => {
                let end = End::new(HangupReason::Error, 488).rejected().note(
                    "Call",
                    Level::Info,
                    format!("unusable SDP offer ({e}); 488"),
                );
                self.end(id, now, secure, end);
                return;
            }
        };
        let codec = relay_codec(n.codec);
        let media = Media {
            codecs: vec![
                codec.static_payload_type(),
                other_codec(codec).static_payload_type(),
            ],
            dtmf_pt: self.settings.dtmf_pt,
            ssrc: self.next_ssrc(),
        };
        let b_remote = Some(SocketAddr::new(n.remote_address, n.remote_port))
            .filter(|r| !r.ip().is_unspecified());
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        c.sip_offer = Some(offer);
        c.a_codec = codec;
        c.b_codec = codec;
        c.b_remote = b_remote;
        c.b_te = n.telephone_event;
        c.held = n.held_by_peer();
        c.state = CallState::Try;
        let (to, out_from) = (c.out_to.clone(), c.out_from.clone());
        let identity = &self.settings.identity;
        let presentable = !identity.is_empty() && from_is_of(&out_from, identity);
        let from = if presentable {
            Some(out_from)
        } else {
            let text = format!(
                "call {id}: the routed caller {out_from} is not under the gateway's identity \
                 {identity}; the secure callee sees {identity}"
            );
            self.log(now, "Call", Level::Info, text);
            None
        };
        self.out.push_back(Action::Dial(Box::new(Dial {
            call: id,
            from,
            to,
            offer: media,
        })));
    }

    /// The outcome of an [`Action::Dial`]: the UMSG session and its SRTP keys, or why it could
    /// not be dialled (503 towards the PBX). The relay session is created with the keys; what
    /// the secure side did meanwhile (ROUTED, GROWL, TALK, HANGUP) is caught up with.
    pub fn on_dialled(
        &mut self,
        id: CallId,
        dialled: Result<(SessionId, SrtpKeys), Error>,
        now: SystemTime,
        secure: &mut dyn Secure,
    ) {
        let live = self.calls.get(&id).is_some_and(|c| c.ended_at.is_none());
        let (sid, keys) = match dialled {
            Ok((sid, _)) if !live => {
                // The PBX gave up (CANCEL) while we were dialling.
                secure.hangup(&sid, HangupReason::Normal);
                return;
            }
            Ok(x) => x,
            Err(e) => {
                let to = self.calls.get(&id).map(|c| c.out_to.clone());
                let text = format!("cannot call {}: {e}", to.unwrap_or_default());
                let end =
                    End::new(HangupReason::Error, 503)
                        .rejected()
                        .note("Call", Level::Warn, text);
                self.end(id, now, secure, end);
                return;
            }
        };
        self.by_umsg.insert(sid, id);
        let timeout = self.settings.media_timeout_ms;
        let dtmf = self.settings.dtmf_pt;
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let ifaces = &self.config.interfaces;
        let mut a = leg_config(ifaces.tel.as_ref(), c.a_codec, Some(dtmf), None);
        a.srtp = Some(srtp_config(&keys));
        let b = leg_config(ifaces.sip.as_ref(), c.b_codec, c.b_te, c.b_remote);
        c.umsg = Some(sid);
        c.relay = RelayState::Creating;
        self.relay(
            id,
            Command::CreateSession {
                session: relay_session(id),
                a,
                b,
                media_timeout_ms: timeout,
            },
        );
        self.on_umsg_call(sid, now, secure);
    }

    /// The PBX's SDP answer to our INVITE (in 183 or 200): leg B follows.
    fn sip_answer_sdp(&mut self, id: CallId, body: &[u8], now: SystemTime) -> Option<()> {
        let caps = self.calls.get(&id)?.b_caps.clone()?;
        let n = match SessionDescription::parse(body).and_then(|d| sdp::accept_answer(&caps, &d)) {
            Ok(n) => n,
            Err(e) => {
                let text = format!("call {id}: unusable SDP answer from the PBX: {e}");
                self.log(now, "Call", Level::Warn, text);
                return None;
            }
        };
        self.update_leg_b(id, &n);
        Some(())
    }

    /// A re-INVITE (or UPDATE) from the PBX with a new offer, which the user agent has already
    /// answered from our last SDP with the direction mirrored (`sendonly` → `recvonly`,
    /// `inactive` → `inactive`, `sendrecv` → `sendrecv`). Negotiating the same way here gives
    /// what was agreed: leg B follows a new address or codec, and while the PBX holds the call
    /// (`sendonly`, `inactive` or the RFC 2543 `c=0.0.0.0`) a silent PBX leg does not end it.
    /// UMSG/1 has no re-offer, so the secure side keeps its session (docs/calls.md "Hold").
    fn sip_reoffer(&mut self, id: CallId, offer: &[u8], answer: &[u8], now: SystemTime) {
        let answered_codec = SessionDescription::parse(answer).ok().and_then(|d| {
            d.media
                .iter()
                .find(|m| m.kind == "audio" && m.port != 0)
                .and_then(|m| m.codecs().next().map(|(_, c)| c))
        });
        let negotiated = answered_codec.ok_or(Error::Sip(cig_sip::Error::NoSharedCodec));
        let negotiated = negotiated.and_then(|codec| {
            let mut caps = AudioCapabilities::new(self.settings.media_ip, 9);
            caps.codecs = vec![codec];
            let offer = SessionDescription::parse(offer)?;
            Ok(sdp::answer(&offer, &caps, id, 1)?.1)
        });
        let n = match negotiated {
            Ok(n) => n,
            Err(e) => {
                let text = format!("call {id}: unusable re-offer from the PBX: {e}");
                self.log(now, "Call", Level::Warn, text);
                return;
            }
        };
        let held = n.held_by_peer();
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if c.held != held {
            c.held = held;
            let text = if held {
                format!(
                    "call {id}: the PBX put the call on hold ({}); the PBX leg may fall silent",
                    n.direction.reverse().as_str()
                )
            } else {
                format!("call {id}: the PBX resumed the call")
            };
            self.log(now, "Call", Level::Info, text);
        }
        self.update_leg_b(id, &n);
    }

    /// Tells the relay what changed on leg B (address, codec, telephone-event type, direction).
    /// A `c=0.0.0.0` hold keeps the address the relay has (0.0.0.0 would reach this host) and
    /// stops the relay sending to the PBX, like `sendonly`/`inactive` holds do.
    fn update_leg_b(&mut self, id: CallId, n: &NegotiatedAudio) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if !matches!(c.relay, RelayState::Up { .. }) {
            return;
        }
        let codec = relay_codec(n.codec);
        let changed = codec != c.b_codec;
        let remote = Some(SocketAddr::new(n.remote_address, n.remote_port))
            .filter(|r| !r.ip().is_unspecified() && r.port() != 0 && c.b_remote != Some(*r));
        let te = n.telephone_event.filter(|pt| c.b_te != Some(*pt));
        let direction = Some(relay_direction(n)).filter(|d| *d != c.b_direction);
        if !changed && remote.is_none() && te.is_none() && direction.is_none() {
            return;
        }
        if let Some(d) = direction {
            c.b_direction = d;
        }
        c.b_codec = codec;
        if remote.is_some() {
            c.b_remote = remote;
        }
        if te.is_some() {
            c.b_te = te;
        }
        let update = LegUpdate {
            remote,
            codec: changed.then_some(codec),
            payload_type: changed.then_some(n.payload_type),
            telephone_event_pt: te,
            direction,
            ..LegUpdate::default()
        };
        self.relay(
            id,
            Command::UpdateSession {
                session: relay_session(id),
                a: None,
                b: Some(update),
            },
        );
    }

    fn sip_answered(&mut self, id: CallId, body: &[u8], now: SystemTime, secure: &mut dyn Secure) {
        if self.sip_answer_sdp(id, body, now).is_none() {
            // An answer we cannot use: hang up both legs.
            self.end(id, now, secure, End::new(HangupReason::Error, 488));
            return;
        }
        let dtmf = self.settings.dtmf_pt;
        let ssrc = self.next_ssrc();
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if c.answered || c.ended_at.is_some() {
            return;
        }
        c.answered = true;
        c.sip_answered = true;
        c.state = CallState::Answer;
        let media = Media {
            codecs: vec![c.a_codec.static_payload_type()],
            dtmf_pt: dtmf,
            ssrc,
        };
        if let Some(u) = c.umsg {
            secure.answer(&u, &media);
        }
        self.set_deadline(id, None);
        self.session_log(now, id, SessionState::Talk);
    }

    /// The runtime placed the INVITE of [`SipCommand::Place`]: its handle and Call-ID (or it
    /// could not: `None`).
    pub fn on_sip_placed(
        &mut self,
        id: CallId,
        placed: Option<(CallHandle, String)>,
        now: SystemTime,
        secure: &mut dyn Secure,
    ) {
        let Some(c) = self.calls.get_mut(&id) else {
            if let Some((h, _)) = placed {
                self.sip(SipCommand::Hangup(h));
            }
            return;
        };
        match placed {
            Some((h, call_id)) => {
                c.sip = Some(h);
                c.sip_call_id = call_id;
                self.by_sip.insert(h, id);
                if c.ended_at.is_some() {
                    // Ended while the INVITE was being placed: cancel it.
                    self.sip(SipCommand::Hangup(h));
                }
            }
            None => {
                let text = format!("cannot reach {}", c.out_to);
                let end = End::new(HangupReason::Unavailable, 503)
                    .rejected()
                    .gone(Gone::Sip)
                    .note("Call", Level::Warn, text);
                self.end(id, now, secure, end);
            }
        }
    }

    // ----- secure side ----------------------------------------------------------------

    /// A UMSG call session changed (the client core's `Event::Call`).
    pub fn on_umsg_call(&mut self, sid: SessionId, now: SystemTime, secure: &mut dyn Secure) {
        let Some(sc) = secure.call(&sid) else { return };
        let Some(id) = self.by_umsg.get(&sid).copied() else {
            if sc.state == UmsgState::Bang && sc.remote_media.is_some() {
                self.incoming_secure(sid, &sc, now, secure);
            }
            return;
        };
        if sc.state == UmsgState::Hangup {
            let reason = sc.reason.unwrap_or(HangupReason::Normal);
            let text = format!("secure side ended the call ({})", reason_name(reason));
            let mut end = End::new(reason, status_for_reason(reason))
                .gone(Gone::Secure)
                .note("Call", Level::Info, text);
            if reason != HangupReason::Normal && !self.calls.get(&id).is_some_and(|c| c.answered) {
                end = end.rejected();
            }
            self.end(id, now, secure, end);
            return;
        }
        let Some(c) = self.calls.get(&id) else { return };
        if c.dir != Dir::SipToSecure || c.ended_at.is_some() {
            return;
        }
        // The state may have moved on by more than one step since the event: catch up.
        if sc.media_addr.is_some() && !c.secure_trying_logged {
            if let Some(c) = self.calls.get_mut(&id) {
                c.secure_trying_logged = true;
            }
            self.session_log(now, id, SessionState::Trying);
            self.send_a_remote(id, &sc);
        }
        let ringing = matches!(sc.state, UmsgState::Growl | UmsgState::Talk);
        if ringing && !self.calls.get(&id).is_some_and(|c| c.ring_done) {
            if let Some(c) = self.calls.get_mut(&id) {
                c.ring_done = true;
                c.state = CallState::Ring;
                if let Some(h) = c.sip {
                    self.out.push_back(Action::Sip(SipCommand::Ringing(h)));
                }
            }
            self.session_log(now, id, SessionState::Ringing);
        }
        if sc.state == UmsgState::Talk {
            self.answer_sip_when_ready(id, &sc, now, secure);
        }
    }

    /// SIP → secure: the secure far end's media address (`sc`, the call's UMSG session) to
    /// the relay's leg A, once the relay session is up.
    fn send_a_remote(&mut self, id: CallId, sc: &SecureCall) {
        let Some(c) = self.calls.get(&id) else { return };
        if c.a_remote_sent || !matches!(c.relay, RelayState::Up { .. }) {
            return;
        }
        let Some(addr) = sc
            .media_addr
            .as_deref()
            .and_then(|a| a.parse::<SocketAddr>().ok())
        else {
            return;
        };
        if let Some(c) = self.calls.get_mut(&id) {
            c.a_remote_sent = true;
        }
        self.relay(
            id,
            Command::UpdateSession {
                session: relay_session(id),
                a: Some(LegUpdate {
                    remote: Some(addr),
                    ..LegUpdate::default()
                }),
                b: None,
            },
        );
    }

    /// SIP → secure: TALK arrived (`sc`, the call's UMSG session); answer the INVITE once the
    /// relay session is up.
    fn answer_sip_when_ready(
        &mut self,
        id: CallId,
        sc: &SecureCall,
        now: SystemTime,
        secure: &mut dyn Secure,
    ) {
        let Some(c) = self.calls.get(&id) else { return };
        if c.sip_answered || c.ended_at.is_some() {
            return;
        }
        let RelayState::Up { b, .. } = &c.relay else {
            return;
        };
        if sc.state != UmsgState::Talk {
            return;
        }
        let chosen = sc
            .remote_media
            .as_ref()
            .and_then(|m| m.codecs.first().copied())
            .and_then(codec_of_pt);
        let Some(chosen) = chosen else {
            let text = "the secure callee answered without a G.711 codec".to_owned();
            let end = End::new(HangupReason::Error, 488).note("Call", Level::Warn, text);
            self.end(id, now, secure, end);
            return;
        };
        let ip = if b.ip.is_unspecified() {
            self.settings.media_ip
        } else {
            b.ip
        };
        let mut caps = AudioCapabilities::new(ip, b.rtp_port);
        caps.codecs = vec![sip_codec(c.b_codec)];
        let Some(offer) = c.sip_offer.as_ref() else {
            return;
        };
        let answer = match sdp::answer(offer, &caps, id, 1) {
            Ok((a, _)) => Bytes::from(a.to_bytes()),
            Err(e) => {
                let text = format!("cannot answer the PBX's offer: {e}");
                let end = End::new(HangupReason::Error, 488).note("Call", Level::Warn, text);
                self.end(id, now, secure, end);
                return;
            }
        };
        let a_changed = chosen != c.a_codec;
        let Some(h) = c.sip else { return };
        if a_changed {
            self.relay(
                id,
                Command::UpdateSession {
                    session: relay_session(id),
                    a: Some(LegUpdate {
                        codec: Some(chosen),
                        payload_type: Some(chosen.static_payload_type()),
                        telephone_event_pt: sc.remote_media.as_ref().map(|m| m.dtmf_pt),
                        ..LegUpdate::default()
                    }),
                    b: None,
                },
            );
        }
        if let Some(c) = self.calls.get_mut(&id) {
            c.a_codec = chosen;
            c.sip_answered = true;
            c.answered = true;
            c.state = CallState::Answer;
        }
        self.set_deadline(id, None);
        self.sip(SipCommand::Answer(h, answer));
        self.session_log(now, id, SessionState::Talk);
    }

    fn incoming_secure(
        &mut self,
        sid: SessionId,
        sc: &SecureCall,
        now: SystemTime,
        secure: &mut dyn Secure,
    ) {
        let id = self.new_call(Dir::SecureToSip, sc.from.clone(), sc.to.clone(), now);
        self.by_umsg.insert(sid, id);
        if let Some(c) = self.calls.get_mut(&id) {
            c.umsg = Some(sid);
        }
        if self.route(id, InterfaceKind::Tel, now).is_none() {
            let end = End::new(HangupReason::NoRoute, 404).rejected();
            self.end(id, now, secure, end);
            return;
        }
        if !self.relay_up {
            let text = "refused, the relay is not connected".to_owned();
            let end = End::new(HangupReason::Error, 503)
                .rejected()
                .note("Call", Level::Warn, text);
            self.end(id, now, secure, end);
            return;
        }
        let offered = sc.remote_media.as_ref();
        let codec = offered
            .and_then(|m| m.codecs.iter().copied().find_map(codec_of_pt))
            .unwrap_or(RelayCodec::Pcmu);
        let remote = sc.media_addr.as_deref().and_then(|a| a.parse().ok());
        let ifaces = &self.config.interfaces;
        let mut a = leg_config(
            ifaces.tel.as_ref(),
            codec,
            offered.map(|m| m.dtmf_pt),
            remote,
        );
        a.srtp = Some(srtp_config(&sc.keys));
        let b = leg_config(
            ifaces.sip.as_ref(),
            codec,
            Some(self.settings.dtmf_pt),
            None,
        );
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        c.a_codec = codec;
        c.b_codec = codec;
        c.b_te = Some(self.settings.dtmf_pt);
        c.a_remote_sent = true;
        c.relay = RelayState::Creating;
        let timeout = self.settings.media_timeout_ms;
        self.relay(
            id,
            Command::CreateSession {
                session: relay_session(id),
                a,
                b,
                media_timeout_ms: timeout,
            },
        );
    }

    /// Secure → SIP: the relay session is up, place the INVITE with its leg B address.
    fn place_invite(&mut self, id: CallId, now: SystemTime, secure: &mut dyn Secure) {
        let Some(c) = self.calls.get(&id) else { return };
        if c.sip_placed || c.ended_at.is_some() {
            return;
        }
        let RelayState::Up { b, .. } = &c.relay else {
            return;
        };
        let ip = if b.ip.is_unspecified() {
            self.settings.media_ip
        } else {
            b.ip
        };
        let mut caps = AudioCapabilities::new(ip, b.rtp_port);
        caps.codecs = vec![sip_codec(c.b_codec), sip_codec(other_codec(c.b_codec))];
        let offer = Bytes::from(sdp::offer(&caps, id, 1).to_bytes());
        let (uri, from) = match (
            Uri::parse(c.out_to.as_str()),
            Uri::parse(c.out_from.as_str()),
        ) {
            (Ok(u), Ok(f)) => (u, f),
            _ => {
                let text = format!("routed URIs {} / {} are not SIP URIs", c.out_from, c.out_to);
                let end =
                    End::new(HangupReason::Error, 500)
                        .rejected()
                        .note("Call", Level::Warn, text);
                self.end(id, now, secure, end);
                return;
            }
        };
        let credentials = c.auth.clone();
        if let Some(c) = self.calls.get_mut(&id) {
            c.sip_placed = true;
            c.state = CallState::Try;
            c.b_caps = Some(caps);
        }
        self.sip(SipCommand::Place(Box::new(Invite {
            call: id,
            to: NameAddr::new(uri.clone()),
            uri,
            from: NameAddr::new(from),
            sdp: offer,
            credentials,
        })));
    }

    // ----- relay ----------------------------------------------------------------------

    /// The relay's reply to a request made for `id` (an error reply included).
    pub fn on_relay_reply(
        &mut self,
        id: CallId,
        reply: Reply,
        now: SystemTime,
        secure: &mut dyn Secure,
    ) {
        match reply {
            Reply::SessionCreated { a, b, .. } => {
                let Some(c) = self.calls.get_mut(&id) else {
                    self.relay(
                        id,
                        Command::DeleteSession {
                            session: relay_session(id),
                        },
                    );
                    return;
                };
                if c.ended_at.is_some() {
                    c.relay = RelayState::Gone;
                    self.relay(
                        id,
                        Command::DeleteSession {
                            session: relay_session(id),
                        },
                    );
                    return;
                }
                c.relay = RelayState::Up { b };
                let text = format!(
                    "call {id}: relay session up, secure leg {}:{}, PBX leg {}:{}",
                    a.ip, a.rtp_port, b.ip, b.rtp_port
                );
                self.log(now, "Relay", Level::Debug, text);
                let Some(c) = self.calls.get(&id) else { return };
                match c.dir {
                    Dir::SipToSecure => {
                        // What the secure side did while the session was being created.
                        if let Some(sc) = c.umsg.and_then(|u| secure.call(&u)) {
                            self.send_a_remote(id, &sc);
                            self.answer_sip_when_ready(id, &sc, now, secure);
                        }
                    }
                    Dir::SecureToSip => self.place_invite(id, now, secure),
                }
            }
            Reply::Error { code, message, .. } => {
                let text = format!("call {id}: relay refused a request: {code:?} {message}");
                self.log(now, "Relay", Level::Warn, text);
                let creating = self
                    .calls
                    .get(&id)
                    .is_some_and(|c| matches!(c.relay, RelayState::Creating));
                if creating {
                    let end = End::new(HangupReason::Error, 503)
                        .rejected()
                        .gone(Gone::Relay);
                    self.end(id, now, secure, end);
                }
            }
            _ => {}
        }
    }

    /// An event from the relay (media timeout, session ended by the relay).
    pub fn on_relay_event(&mut self, event: Reply, now: SystemTime, secure: &mut dyn Secure) {
        let (session, why) = match &event {
            Reply::MediaTimeout { session, leg } => (session, format!("no media on leg {leg:?}")),
            Reply::SessionEnded { session, reason } => (session, reason.clone()),
            _ => return,
        };
        let Some(id) = call_of_session(session) else {
            return;
        };
        let Some(c) = self.calls.get(&id).filter(|c| c.ended_at.is_none()) else {
            return;
        };
        if c.held && matches!(event, Reply::MediaTimeout { leg: LegId::B, .. }) {
            // A PBX holding the call may send nothing (inactive): not a reason to end it.
            let text = format!("call {id}: {why} while the PBX holds the call; call kept");
            self.log(now, "Relay", Level::Debug, text);
            return;
        }
        let mut end = End::new(HangupReason::Timeout, 408).note(
            "Relay",
            Level::Info,
            format!("{why}; ending the call"),
        );
        if matches!(event, Reply::SessionEnded { .. }) {
            end = end.gone(Gone::Relay);
        }
        self.end(id, now, secure, end);
    }

    // ----- ending ---------------------------------------------------------------------

    /// Ends call `id` once, whatever the cause: the cig.log line saying why, the final status /
    /// BYE / CANCEL towards the SIP leg and HANGUP towards the UMSG leg (unless that leg ended
    /// by itself), the relay session deleted, session.log `hangup` for a routed call.
    fn end(&mut self, id: CallId, now: SystemTime, secure: &mut dyn Secure, end: End) {
        if self.calls.get(&id).is_none_or(|c| c.ended_at.is_some()) {
            return;
        }
        if let Some((module, level, text)) = end.note {
            self.log(now, module, level, format!("call {id}: {text}"));
        }
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        match end.gone {
            Some(Gone::Sip) => c.sip_done = true,
            Some(Gone::Secure) => c.secure_done = true,
            Some(Gone::Relay) => c.relay = RelayState::Gone,
            None => {}
        }
        c.ended_at = Some(now);
        let was_routed = !c.out_to.is_empty();
        c.state = if end.reject {
            CallState::Reject
        } else {
            CallState::Hangup
        };
        let mut cmds = Vec::new();
        if !c.sip_done {
            c.sip_done = true;
            if let Some(h) = c.sip {
                match (c.dir, c.sip_answered) {
                    (Dir::SipToSecure, false) => cmds.push(SipCommand::Reject(h, end.status)),
                    _ => cmds.push(SipCommand::Hangup(h)),
                }
            }
        }
        if !c.secure_done {
            c.secure_done = true;
            if let Some(u) = c.umsg {
                secure.hangup(&u, end.reason);
            }
        }
        let delete = matches!(c.relay, RelayState::Up { .. });
        // A session still being created is deleted when its reply comes (ended_at is set).
        if delete {
            c.relay = RelayState::Gone;
        }
        for cmd in cmds {
            self.sip(cmd);
        }
        if delete {
            self.relay(
                id,
                Command::DeleteSession {
                    session: relay_session(id),
                },
            );
        }
        if was_routed {
            self.session_log(now, id, SessionState::Hangup);
        }
        self.set_deadline(id, Some(now + self.settings.linger));
    }
}

/// The part of a call that already ended by itself: nothing more is sent towards it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gone {
    /// The SIP dialog (BYE, CANCEL or a final status from the PBX, or no INVITE placed).
    Sip,
    /// The UMSG session (HANGUP from the switch, or the switch connection lost).
    Secure,
    /// The relay session (relay lost, refused or ended by the relay).
    Relay,
}

/// How a call ends (docs/calls.md "Ending"): the reason towards UMSG, the status towards an
/// unanswered incoming INVITE, whether `show call` says REJECT, the leg that already ended by
/// itself and the cig.log line saying why.
#[derive(Debug)]
struct End {
    reason: HangupReason,
    status: u16,
    reject: bool,
    gone: Option<Gone>,
    note: Option<(&'static str, Level, String)>,
}

impl End {
    fn new(reason: HangupReason, status: u16) -> End {
        End {
            reason,
            status,
            reject: false,
            gone: None,
            note: None,
        }
    }

    /// `show call` says REJECT: the call was refused or failed.
    fn rejected(mut self) -> End {
        self.reject = true;
        self
    }

    fn gone(mut self, leg: Gone) -> End {
        self.gone = Some(leg);
        self
    }

    /// The cig.log line (`call N: ` is prefixed).
    fn note(mut self, module: &'static str, level: Level, text: String) -> End {
        self.note = Some((module, level, text));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_mark_is_routed_like_a_semicolon() {
        assert_eq!(normalize_wait_mark("tel:+8888w101"), "tel:+8888;101");
        assert_eq!(normalize_wait_mark("tel:+8888;101"), "tel:+8888;101");
        assert_eq!(normalize_wait_mark("tel:+8888"), "tel:+8888");
        assert_eq!(normalize_wait_mark("sip:w@x"), "sip:w@x");
        assert_eq!(call_of_session("call-17"), Some(17));
        assert_eq!(call_of_session("x-17"), None);
    }
}
