//! The user agent core, sans-IO: UAC and UAS for calls (INVITE, 1xx, 2xx, ACK, CANCEL, BYE,
//! re-INVITE and UPDATE), OPTIONS, MESSAGE, digest authentication as a client and access
//! control, on top of [`crate::transaction`] and [`crate::dialog`].
//!
//! Feed it datagrams / stream messages with [`UserAgent::handle_datagram`] and the clock with
//! [`UserAgent::handle_timeout`]; drain [`UserAgent::poll_transmit`] and
//! [`UserAgent::poll_event`]; sleep until [`UserAgent::poll_timeout`]. It never reads a clock,
//! opens a socket or resolves a name: targets come in as socket addresses ([`next_hop`] says
//! which host, port and transport a URI asks for).
//!
//! # MESSAGE (RFC 3428)
//!
//! - In, with [`UaConfig::messaging`] off: 405 with an `Allow` that lists no MESSAGE.
//! - In, with messaging on: [`Event::IncomingMessage`] carries a [`MessageHandle`] and From,
//!   To, Request-URI, Content-Type and body; nothing is answered yet. The application answers
//!   with [`UserAgent::respond_message`]`(handle, status, now)` — e.g. 202 once the switch took
//!   the message, 4xx–6xx when it refused it. Meanwhile the non-INVITE server transaction
//!   absorbs retransmissions; after T2 (4 s) it sends 100 Trying once (RFC 4320: not earlier
//!   over UDP) and resends it for retransmissions; after 32·T1 (16 s, half the sender's
//!   timer F) without an answer the user agent answers 408 itself and `respond_message`
//!   returns an error.
//! - Out: [`UserAgent::send_message`] sends an out-of-dialog MESSAGE; a 401/407 is answered
//!   once with the [`OutgoingMessage::credentials`] (MD5, SHA-256, SHA-512-256, qop=auth, nonce
//!   count); the final status comes as [`Event::MessageResult`] (2xx success; the refusing
//!   status, 408 on timeout, 503 on a transport error otherwise).
//!
//! # Offer/answer
//!
//! An INVITE without SDP (delayed offer) reaches the application as an [`Event::IncomingCall`]
//! with an empty `sdp`; [`UserAgent::answer`] must then be given our offer (an empty
//! one is refused), and the peer's answer from the ACK is reported as [`Event::MediaAnswer`].
//! An ACK without a usable answer ends such a call with a BYE ([`EndReason::MediaFailed`]). A
//! re-INVITE without SDP is answered with the call's current SDP as the offer; its ACK's
//! answer is reported the same way.
//!
//! The other way round, [`UserAgent::place_call`] with an empty [`OutgoingCall::sdp`] sends an
//! INVITE without a body; the 2xx's offer is reported as [`Event::Answered`] and the
//! application's answer goes in the ACK ([`UserAgent::ack`]). A 2xx without a usable offer is
//! ACKed and the call ended with a BYE ([`EndReason::MediaFailed`]).
//!
//! # Forking
//!
//! When an INVITE of ours forks, the first 2xx confirms the call. Every 2xx with another To
//! tag (another dialog) is ACKed and that dialog is ended with a BYE at once (RFC 3261
//! §13.2.2.4), up to 16 per INVITE; retransmitted 2xx get the same ACK again while timer M
//! runs.
//!
//! # Digest authentication
//!
//! A 401/407 to the INVITE, a re-INVITE, a BYE or a MESSAGE is answered once with the call's
//! (or message's) credentials: the request again with the next CSeq, a new branch and an
//! `Authorization` / `Proxy-Authorization`; a second challenge (unless `stale=true` after an
//! accepted answer) ends the request with the challenge's status — [`Event::Rejected`],
//! [`Event::UpdateFailed`], [`Event::Ended`] or [`Event::MessageResult`]. Incoming calls get
//! credentials for their in-dialog requests with [`UserAgent::set_credentials`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use bytestring::ByteString;
use cig_core::IpNet;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::dialog::{Dialog, literal_address};
use crate::digest::{Challenge, Credentials, DigestClient, RequestTarget};
use crate::message::{
    CSeq, HeaderName, Host, Message, Method, NameAddr, Request, Response, Uri, Via, reason_phrase,
};
use crate::sdp::{self, AudioCapabilities, SessionDescription};
use crate::transaction::{ClientTx, Outbox, Retransmit, ServerTx, Timers, Transmit, Transport};
use crate::{Error, Result};

/// Settings of a [`UserAgent`].
#[derive(Clone, Debug)]
pub struct UaConfig {
    /// The address this agent listens on for UDP and TCP (Via sent-by and Contact).
    pub local_addr: SocketAddr,
    /// Accept MESSAGE requests (the sip interface's `messaging true`); otherwise 405.
    pub messaging: bool,
    /// Networks allowed to send requests; others get 403. Empty: everyone.
    pub allow: Vec<IpNet>,
    /// Transaction timers.
    pub timers: Timers,
    /// Value of the User-Agent / Server header.
    pub user_agent: String,
}

impl UaConfig {
    /// Defaults for `local_addr`: no messaging, allow all, RFC timers.
    pub fn new(local_addr: SocketAddr) -> UaConfig {
        UaConfig {
            local_addr,
            messaging: false,
            allow: Vec::new(),
            timers: Timers::default(),
            user_agent: "CIG".to_owned(),
        }
    }
}

/// Identifies a call inside one [`UserAgent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

/// Identifies an outgoing MESSAGE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageHandle(pub u64);

/// Where a request goes: the Request-URI and the resolved next hop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Request-URI.
    pub uri: Uri,
    /// Resolved address of the next hop.
    pub destination: SocketAddr,
    /// Transport to use.
    pub transport: Transport,
}

/// Host, port and transport a SIP URI asks for: `;transport=tcp` selects TCP, a port in the URI
/// selects the port; the defaults are UDP and 5060. The host still has to be resolved (the
/// driver uses the system resolver).
pub fn next_hop(uri: &Uri) -> Result<(String, u16, Transport)> {
    let sip = uri
        .as_sip()
        .ok_or(Error::CallState("target is not a SIP URI"))?;
    let transport = match sip.transport().as_deref() {
        None | Some("udp") => Transport::Udp,
        Some("tcp") => Transport::Tcp,
        Some(_) => return Err(Error::CallState("unsupported transport in target URI")),
    };
    let host = match &sip.host {
        Host::Domain(d) => d.to_string(),
        Host::Ipv4(a) => a.to_string(),
        Host::Ipv6(a) => a.to_string(),
    };
    Ok((host, sip.port.unwrap_or(5060), transport))
}

/// A call to place.
#[derive(Clone, Debug)]
pub struct OutgoingCall {
    /// Request-URI and next hop.
    pub target: Target,
    /// From (our identity); a tag is added.
    pub from: NameAddr,
    /// To.
    pub to: NameAddr,
    /// The SDP offer; empty for a delayed offer (the 2xx brings the peer's offer as
    /// [`Event::Answered`]'s `sdp`, our answer goes in the ACK: [`UserAgent::ack`]).
    pub sdp: Bytes,
    /// Credentials to answer a 401/407 with, once per challenge.
    pub credentials: Option<Credentials>,
}

/// A MESSAGE to send (RFC 3428).
#[derive(Clone, Debug)]
pub struct OutgoingMessage {
    /// Request-URI and next hop.
    pub target: Target,
    /// From.
    pub from: NameAddr,
    /// To.
    pub to: NameAddr,
    /// Content-Type of the body, e.g. `text/plain;charset=UTF-8`.
    pub content_type: String,
    /// Body.
    pub body: Bytes,
    /// Credentials for a 401/407.
    pub credentials: Option<Credentials>,
}

/// Why a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// The peer sent BYE.
    RemoteHangup,
    /// [`UserAgent::hangup`] completed (BYE answered, or CANCEL took effect).
    LocalHangup,
    /// The caller cancelled an incoming call before it was answered.
    Cancelled,
    /// No ACK for our 2xx, or no answer to our BYE.
    Timeout,
    /// Our 2xx carried the offer (the INVITE had no SDP) and the ACK brought no usable SDP
    /// answer: the call was ended with a BYE.
    MediaFailed,
}

/// What the user agent reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A new incoming call; answer with [`UserAgent::answer`] or [`UserAgent::reject`].
    IncomingCall {
        /// The call.
        call: CallHandle,
        /// Request-URI.
        request_uri: Uri,
        /// From (with the caller's tag).
        from: NameAddr,
        /// To.
        to: NameAddr,
        /// The SDP offer. Empty for a delayed offer: [`UserAgent::answer`] must then be given
        /// our offer, and the peer's answer arrives in the ACK as [`Event::MediaAnswer`].
        sdp: Bytes,
        /// Source address of the INVITE.
        source: SocketAddr,
        /// Transport it came on.
        transport: Transport,
        /// The INVITE's Call-ID, as received (also [`UserAgent::call_id`] while the call
        /// lives).
        call_id: String,
    },
    /// Our INVITE got 100 Trying.
    Trying {
        /// The call.
        call: CallHandle,
    },
    /// Our INVITE got 180/183; `sdp` is early media when the response carried a body.
    Ringing {
        /// The call.
        call: CallHandle,
        /// Status (180, 183, ...).
        status: u16,
        /// Early-media SDP answer.
        sdp: Option<Bytes>,
    },
    /// Our INVITE was answered (ACK already sent, except for a delayed offer).
    Answered {
        /// The call.
        call: CallHandle,
        /// The SDP answer. For a delayed offer (the call was placed with an empty SDP) the
        /// peer's offer instead: the ACK waits for our answer, [`UserAgent::ack`].
        sdp: Bytes,
    },
    /// Our INVITE failed with a final status (PBX status passed through; 408 on timeout).
    Rejected {
        /// The call.
        call: CallHandle,
        /// Status code.
        status: u16,
        /// Reason phrase as received.
        reason: String,
    },
    /// The peer changed the session (re-INVITE or UPDATE with SDP, e.g. hold or resume); the
    /// user agent answered it already from the call's current local SDP.
    SessionUpdated {
        /// The call.
        call: CallHandle,
        /// The peer's new SDP.
        remote_sdp: Bytes,
        /// The answer sent.
        local_sdp: Bytes,
    },
    /// Our re-INVITE was refused; the call goes on with the previous session.
    UpdateFailed {
        /// The call.
        call: CallHandle,
        /// Status code.
        status: u16,
    },
    /// The call is over.
    Ended {
        /// The call.
        call: CallHandle,
        /// Why.
        reason: EndReason,
    },
    /// A MESSAGE arrived (only with messaging enabled). Not answered yet: answer it with
    /// [`UserAgent::respond_message`] (e.g. 202 once the message was taken over); until then
    /// the request's retransmissions are absorbed, a 100 Trying goes out after T2, and after
    /// 32·T1 (16 s) without an answer the user agent answers 408 itself.
    IncomingMessage {
        /// The handle to answer with.
        message: MessageHandle,
        /// From.
        from: NameAddr,
        /// To.
        to: NameAddr,
        /// Request-URI.
        request_uri: Uri,
        /// Content-Type as written.
        content_type: String,
        /// Body.
        body: Bytes,
        /// Source address.
        source: SocketAddr,
    },
    /// Our 2xx carried an SDP offer (the INVITE or re-INVITE had none) and the ACK brought the
    /// peer's answer (parsed: it is valid SDP).
    MediaAnswer {
        /// The call.
        call: CallHandle,
        /// The SDP answer from the ACK.
        sdp: Bytes,
    },
    /// The final status of an outgoing MESSAGE (408 on timeout, 503 on a transport error; a
    /// 401/407 when the credentials were refused or missing).
    MessageResult {
        /// The message.
        message: MessageHandle,
        /// Status code.
        status: u16,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Invite,
    Cancel,
    Other,
}

impl Kind {
    fn of(m: &Method) -> Kind {
        match m {
            Method::Invite | Method::Ack => Kind::Invite,
            Method::Cancel => Kind::Cancel,
            _ => Kind::Other,
        }
    }
}

/// Transaction key: the branch (or, for RFC 2543 peers, Call-ID and CSeq number) and the kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct TxKey {
    branch: ByteString,
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    Client(TxKey),
    Server(TxKey),
    Call(CallHandle),
    /// An incoming MESSAGE waiting for the application's answer.
    Message(MessageHandle),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Call(CallHandle),
    Message(MessageHandle),
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallState {
    /// UAC: INVITE sent. UAS: INVITE received, not answered.
    Early,
    /// UAS: 2xx sent, waiting for the ACK.
    Answered,
    /// UAC: our INVITE had no SDP; its 2xx brought the peer's offer and the ACK waits for the
    /// application's answer ([`UserAgent::ack`]).
    AwaitingAnswer,
    Confirmed,
    /// BYE sent.
    Terminating,
}

/// The ACK of a delayed-offer call's 2xx, waiting for the application's answer: the INVITE
/// transaction, the 2xx's To tag and CSeq, and when the call is given up.
#[derive(Debug)]
struct PendingAck {
    key: TxKey,
    tag: String,
    seq: u32,
    give_up: Instant,
}

/// The UAS's 2xx retransmission until the ACK (RFC 3261 §13.3.1.4).
#[derive(Debug)]
struct PendingOk {
    wire: Bytes,
    retransmit: Option<Retransmit>,
    give_up: Instant,
}

#[derive(Debug)]
struct Call {
    uac: bool,
    state: CallState,
    dialog: Dialog,
    /// UAC: the INVITE in flight. UAS: the INVITE being answered.
    invite: Request,
    invite_key: TxKey,
    credentials: Option<Credentials>,
    auth: Auth,
    hangup_requested: bool,
    pending_ok: Option<PendingOk>,
    /// UAC, delayed offer: the ACK waiting for our answer.
    pending_ack: Option<PendingAck>,
    /// Our 2xx carries the offer (the INVITE had no SDP): `Some(initial INVITE?)` until the
    /// ACK with the answer arrives.
    delayed_offer: Option<bool>,
    /// The SDP this side last sent (answers re-offers).
    local_sdp: Bytes,
    sdp_version: u64,
    bye_key: Option<TxKey>,
    /// Our re-INVITE in flight.
    reinvite: Option<Reinvite>,
}

/// A re-INVITE of ours: its transaction, the SDP it offers, the request (resent with
/// credentials after a 401/407) and its own challenge state.
#[derive(Debug)]
struct Reinvite {
    key: TxKey,
    sdp: Bytes,
    request: Request,
    auth: Auth,
}

/// Challenge answering state of one request: at most one answer per challenge, never a loop.
/// The digest client is kept from request to request of a call, so a challenge with the same
/// nonce continues its nonce count.
#[derive(Clone, Debug, Default)]
struct Auth {
    answered: u8,
    client: Option<(bool, DigestClient)>,
}

/// At most this many 2xx dialogs (forks) are ACKed and sent BYE per INVITE; later ones are
/// dropped (a peer inventing To tags cannot make us send without bound).
const MAX_FORKS: usize = 16;

/// At most this many incoming MESSAGEs wait for the application's answer; more get 503.
const MAX_PENDING_MESSAGES: usize = 4096;

/// An incoming MESSAGE the application has not answered yet.
#[derive(Debug)]
struct InboundMessage {
    key: TxKey,
    request: Request,
    /// When the 100 Trying goes out (RFC 4320: not before timer E reached T2); `None` once sent.
    trying_at: Option<Instant>,
    /// When the user agent answers 408 itself.
    give_up: Instant,
}

impl InboundMessage {
    fn deadline(&self) -> Instant {
        self.trying_at.map_or(self.give_up, |t| t.min(self.give_up))
    }
}

#[derive(Debug)]
struct PendingMessage {
    request: Request,
    target: Target,
    credentials: Option<Credentials>,
    auth: Auth,
}

/// The user agent core. See the module documentation.
#[derive(Debug)]
pub struct UserAgent {
    config: UaConfig,
    rng: StdRng,
    next_id: u64,
    calls: HashMap<CallHandle, Call>,
    dialogs: HashMap<(ByteString, ByteString), CallHandle>,
    clients: HashMap<TxKey, (ClientTx, Owner)>,
    servers: HashMap<TxKey, (ServerTx, Option<CallHandle>)>,
    messages: HashMap<MessageHandle, PendingMessage>,
    inbound: HashMap<MessageHandle, InboundMessage>,
    timers: BinaryHeap<Reverse<(Instant, TimerKey)>>,
    out: Outbox,
    events: VecDeque<Event>,
}

fn text(s: impl Into<String>) -> ByteString {
    ByteString::from(s.into())
}

/// Answers `challenge` for `request` (adds the Authorization / Proxy-Authorization header).
fn authorize(
    request: &mut Request,
    proxy: bool,
    client: &mut DigestClient,
    cred: &Credentials,
    cnonce: &str,
) {
    let uri = request.uri.to_string();
    let target = RequestTarget {
        method: request.method.as_str(),
        uri: &uri,
        body: &request.body,
    };
    let value = client.authorization(cred, &target, cnonce);
    let name = if proxy {
        HeaderName::ProxyAuthorization
    } else {
        HeaderName::Authorization
    };
    request.headers.remove(&HeaderName::Authorization);
    request.headers.remove(&HeaderName::ProxyAuthorization);
    request.headers.push(name, value);
}

impl Auth {
    /// Picks up a 401/407: returns the digest client to answer with, or `None` when this
    /// challenge must not be answered (no credentials, already answered and not stale, or an
    /// unusable challenge).
    fn on_challenge(&mut self, resp: &Response, have_credentials: bool) -> bool {
        if !have_credentials {
            return false;
        }
        let proxy = resp.status == 407;
        let name = if proxy {
            HeaderName::ProxyAuthenticate
        } else {
            HeaderName::WwwAuthenticate
        };
        let Some(ch) = Challenge::best(resp.headers.get_all(&name)) else {
            return false;
        };
        // A second challenge is answered only when the first was accepted but the nonce was
        // stale (RFC 7616 §3.3); two answers at most.
        if self.answered >= 2 || (self.answered == 1 && !ch.stale) {
            return false;
        }
        self.answered += 1;
        let same = matches!(&self.client, Some((p, c)) if *p == proxy && *c.challenge() == ch);
        if !same {
            self.client = Some((proxy, DigestClient::new(ch)));
        }
        true
    }
}

impl UserAgent {
    /// A user agent; `seed` seeds tags, branches and Call-IDs (use a random seed in production,
    /// a fixed one in tests).
    pub fn new(config: UaConfig, seed: u64) -> UserAgent {
        UserAgent {
            config,
            rng: StdRng::seed_from_u64(seed),
            next_id: 1,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            clients: HashMap::new(),
            servers: HashMap::new(),
            messages: HashMap::new(),
            inbound: HashMap::new(),
            timers: BinaryHeap::new(),
            out: Outbox::new(),
            events: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &UaConfig {
        &self.config
    }

    /// Number of calls in progress.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// The SIP Call-ID of a call in progress (ours from [`UserAgent::place_call`], the
    /// caller's for an incoming call); `None` once the call is gone.
    pub fn call_id(&self, call: CallHandle) -> Option<&str> {
        self.calls.get(&call).map(|c| c.dialog.call_id.as_str())
    }

    /// The next datagram or stream message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`UserAgent::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    fn token(&mut self) -> String {
        format!("{:016x}", self.rng.r#gen::<u64>())
    }

    fn via(&mut self, transport: Transport) -> (String, ByteString) {
        let branch = format!("z9hG4bK{}", self.token());
        let via = format!(
            "SIP/2.0/{} {};branch={branch};rport",
            transport.via_name(),
            self.config.local_addr
        );
        (via, text(branch))
    }

    fn contact(&self, user: Option<&str>, transport: Transport) -> String {
        let t = if transport.is_reliable() {
            ";transport=tcp"
        } else {
            ""
        };
        match user {
            Some(u) => format!("<sip:{u}@{}{t}>", self.config.local_addr),
            None => format!("<sip:{}{t}>", self.config.local_addr),
        }
    }

    fn allow_value(&self) -> &'static str {
        if self.config.messaging {
            "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, MESSAGE"
        } else {
            "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE"
        }
    }

    fn schedule(&mut self, key: TimerKey, at: Option<Instant>) {
        if let Some(at) = at {
            self.timers.push(Reverse((at, key)));
        }
    }

    fn start_client(
        &mut self,
        req: Request,
        branch: ByteString,
        target: (SocketAddr, Transport),
        owner: Owner,
        now: Instant,
    ) -> TxKey {
        let key = TxKey {
            branch,
            kind: Kind::of(&req.method),
        };
        let tx = ClientTx::start(
            req,
            target.0,
            target.1,
            &self.config.timers,
            now,
            &mut self.out,
        );
        let at = tx.next_timeout();
        self.clients.insert(key.clone(), (tx, owner));
        self.schedule(TimerKey::Client(key.clone()), at);
        key
    }

    // ----- commands -------------------------------------------------------------------------

    /// Places a call: sends the INVITE. Events follow: Trying, Ringing, then Answered or
    /// Rejected, and eventually Ended.
    pub fn place_call(&mut self, call: OutgoingCall, now: Instant) -> CallHandle {
        let handle = CallHandle(self.next_id);
        self.next_id += 1;
        let local_tag = self.token();
        let call_id = format!("{}@{}", self.token(), self.config.local_addr.ip());
        let mut local = call.from;
        local.set_tag(&local_tag);
        let user = local
            .uri
            .as_sip()
            .and_then(|u| u.user.as_ref())
            .map(|u| u.to_string());
        let transport = call.target.transport;
        let contact = self.contact(user.as_deref(), transport);
        let mut dialog = Dialog {
            call_id: call_id.clone(),
            local_tag: local_tag.clone(),
            remote_tag: None,
            local,
            remote: call.to,
            local_seq: 0,
            remote_seq: None,
            remote_target: call.target.uri.clone(),
            route_set: Vec::new(),
            destination: call.target.destination,
            transport,
        };
        let (via, branch) = self.via(transport);
        let mut invite = dialog.request(Method::Invite, via, &contact, None);
        invite.headers.push(HeaderName::Allow, self.allow_value());
        invite
            .headers
            .push(HeaderName::UserAgent, self.config.user_agent.clone());
        invite.set_body("application/sdp", call.sdp.clone());
        let key = self.start_client(
            invite.clone(),
            branch,
            (call.target.destination, transport),
            Owner::Call(handle),
            now,
        );
        self.dialogs
            .insert((text(call_id), text(local_tag)), handle);
        self.calls.insert(
            handle,
            Call {
                uac: true,
                state: CallState::Early,
                dialog,
                invite,
                invite_key: key,
                credentials: call.credentials,
                auth: Auth::default(),
                hangup_requested: false,
                pending_ok: None,
                pending_ack: None,
                delayed_offer: None,
                local_sdp: call.sdp,
                sdp_version: 0,
                bye_key: None,
                reinvite: None,
            },
        );
        handle
    }

    fn call_mut(&mut self, call: CallHandle) -> Result<&mut Call> {
        self.calls
            .get_mut(&call)
            .ok_or(Error::CallState("no such call"))
    }

    /// Builds a response to the INVITE of an incoming call.
    fn invite_response(&self, c: &Call, status: u16) -> Response {
        let mut r = Response::from_request(&c.invite, status, reason_phrase(status));
        if status > 100 {
            let _ = r.headers.set_to_tag(&c.dialog.local_tag);
        }
        if (101..300).contains(&status) {
            r.headers
                .copy_from(&c.invite.headers, &HeaderName::RecordRoute);
            r.headers
                .push(HeaderName::Contact, self.contact(None, c.dialog.transport));
        }
        r
    }

    fn respond_invite(&mut self, call: CallHandle, resp: &Response, now: Instant) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let key = c.invite_key.clone();
        if let Some((tx, _)) = self.servers.get_mut(&key) {
            tx.respond(
                resp.status,
                resp.to_bytes(),
                &self.config.timers,
                now,
                &mut self.out,
            );
            let at = tx.next_timeout();
            self.schedule(TimerKey::Server(key), at);
        }
    }

    /// Sends 180 Ringing for an incoming call.
    pub fn ringing(&mut self, call: CallHandle, now: Instant) -> Result<()> {
        let c = self
            .calls
            .get(&call)
            .ok_or(Error::CallState("no such call"))?;
        if c.uac || c.state != CallState::Early {
            return Err(Error::CallState("not an unanswered incoming call"));
        }
        let r = self.invite_response(c, 180);
        self.respond_invite(call, &r, now);
        Ok(())
    }

    /// Answers an incoming call with 200 and the SDP answer; retransmitted until the ACK.
    ///
    /// When the INVITE had no SDP (delayed offer), `sdp` is our offer and must not be empty;
    /// the peer's answer comes in the ACK as [`Event::MediaAnswer`] (an ACK without a usable
    /// answer ends the call with a BYE and [`EndReason::MediaFailed`]).
    pub fn answer(&mut self, call: CallHandle, sdp: Bytes, now: Instant) -> Result<()> {
        let c = self
            .calls
            .get(&call)
            .ok_or(Error::CallState("no such call"))?;
        if c.uac || c.state != CallState::Early {
            return Err(Error::CallState("not an unanswered incoming call"));
        }
        let delayed = c.invite.body.is_empty();
        if delayed && sdp.is_empty() {
            return Err(Error::CallState(
                "the INVITE had no SDP: the 200 must carry an offer",
            ));
        }
        let mut r = self.invite_response(c, 200);
        r.headers.push(HeaderName::Allow, self.allow_value());
        session_timer(&c.invite, &mut r);
        r.set_body("application/sdp", sdp.clone());
        self.respond_invite(call, &r, now);
        self.send_ok(call, r.to_bytes(), now);
        let c = self.call_mut(call)?;
        c.local_sdp = sdp;
        c.state = CallState::Answered;
        c.delayed_offer = delayed.then_some(true);
        Ok(())
    }

    /// Sends the ACK of a delayed-offer call with our SDP answer: the call was placed with an
    /// empty [`OutgoingCall::sdp`], so its 2xx carried the peer's offer, reported as
    /// [`Event::Answered`]'s `sdp` (RFC 3264 §5; RFC 3261 §13.2.1). Retransmissions of that
    /// 2xx get the same ACK again. Until this is called they are absorbed; after 64·T1 (32 s)
    /// the user agent ACKs without an answer and ends the call with a BYE
    /// ([`EndReason::Timeout`]). To refuse the offer, [`UserAgent::hangup`] (ACK, then BYE).
    pub fn ack(&mut self, call: CallHandle, sdp: Bytes) -> Result<()> {
        let c = self
            .calls
            .get(&call)
            .ok_or(Error::CallState("no such call"))?;
        if c.state != CallState::AwaitingAnswer {
            return Err(Error::CallState("no 2xx offer of ours waits for an answer"));
        }
        if sdp.is_empty() {
            return Err(Error::CallState("the ACK must carry the SDP answer"));
        }
        self.send_pending_ack(call, sdp);
        Ok(())
    }

    /// Starts the 2xx retransmission of the UAS core (the transaction only sent it once).
    fn send_ok(&mut self, call: CallHandle, wire: Bytes, now: Instant) {
        let timers = self.config.timers;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let retransmit = (!c.dialog.transport.is_reliable()).then_some(Retransmit {
            at: now + timers.t1,
            interval: timers.t1,
        });
        c.pending_ok = Some(PendingOk {
            wire,
            retransmit,
            give_up: now + timers.timeout(),
        });
        let at = call_deadline(c);
        self.schedule(TimerKey::Call(call), at);
    }

    /// Rejects an incoming call with `status` (400–699), e.g. 486, 488 when
    /// [`sdp::answer`] found no shared codec, 404 when there is no route.
    pub fn reject(&mut self, call: CallHandle, status: u16, now: Instant) -> Result<()> {
        if !(300..700).contains(&status) {
            return Err(Error::CallState("reject needs a status in 300..=699"));
        }
        let c = self
            .calls
            .get(&call)
            .ok_or(Error::CallState("no such call"))?;
        if c.uac || c.state != CallState::Early {
            return Err(Error::CallState("not an unanswered incoming call"));
        }
        let r = self.invite_response(c, status);
        self.respond_invite(call, &r, now);
        self.remove_call(call);
        Ok(())
    }

    /// Ends a call: BYE when established, CANCEL while our INVITE is pending (sent as soon as a
    /// provisional response arrived), 480 for an unanswered incoming call.
    pub fn hangup(&mut self, call: CallHandle, now: Instant) -> Result<()> {
        let c = self.call_mut(call)?;
        let (uac, state) = (c.uac, c.state);
        match (uac, state) {
            (false, CallState::Early) => {
                self.reject(call, 480, now)?;
                self.events.push_back(Event::Ended {
                    call,
                    reason: EndReason::LocalHangup,
                });
                Ok(())
            }
            (true, CallState::Early) => {
                self.call_mut(call)?.hangup_requested = true;
                self.try_cancel(call, now);
                Ok(())
            }
            (_, CallState::AwaitingAnswer) => {
                // The offer goes unanswered: ACK the 2xx without an answer, then BYE.
                self.send_pending_ack(call, Bytes::new());
                self.send_bye(call, now);
                Ok(())
            }
            (_, CallState::Answered | CallState::Confirmed) => {
                self.send_bye(call, now);
                Ok(())
            }
            (_, CallState::Terminating) => Ok(()),
        }
    }

    fn try_cancel(&mut self, call: CallHandle, now: Instant) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let proceeding = self
            .clients
            .get(&c.invite_key)
            .is_some_and(|(tx, _)| tx.is_proceeding());
        if !proceeding {
            return; // RFC 3261 §9.1: wait for a provisional response.
        }
        let inv = &c.invite;
        let mut cancel = Request::new(Method::Cancel, inv.uri.clone());
        if let Ok(v) = inv.headers.top_via() {
            cancel.headers.push(HeaderName::Via, v.to_string());
        }
        cancel.headers.push(HeaderName::MaxForwards, "70");
        for n in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
            cancel.headers.copy_from(&inv.headers, &n);
        }
        let seq = inv.headers.cseq().map(|s| s.seq).unwrap_or(1);
        cancel.headers.push(
            HeaderName::CSeq,
            CSeq {
                seq,
                method: Method::Cancel,
            }
            .to_string(),
        );
        cancel.headers.copy_from(&inv.headers, &HeaderName::Route);
        let target = (c.dialog.destination, c.dialog.transport);
        let branch = c.invite_key.branch.clone();
        self.start_client(cancel, branch, target, Owner::None, now);
    }

    fn send_bye(&mut self, call: CallHandle, now: Instant) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let transport = c.dialog.transport;
        let (via, branch) = self.via(transport);
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let mut bye = c.dialog.request(Method::Bye, via, "", None);
        bye.headers
            .push(HeaderName::UserAgent, self.config.user_agent.clone());
        c.state = CallState::Terminating;
        c.pending_ok = None;
        c.auth.answered = 0;
        let target = (c.dialog.destination, transport);
        let key = self.start_client(bye, branch, target, Owner::Call(call), now);
        if let Some(c) = self.calls.get_mut(&call) {
            c.bye_key = Some(key);
        }
    }

    /// Sends a re-INVITE with a new SDP offer on an established call (hold: an offer with
    /// `sendonly` or `inactive`; resume: `sendrecv`). The outcome comes as
    /// [`Event::SessionUpdated`] or [`Event::UpdateFailed`].
    pub fn reinvite(&mut self, call: CallHandle, sdp: Bytes, now: Instant) -> Result<()> {
        let c = self
            .calls
            .get(&call)
            .ok_or(Error::CallState("no such call"))?;
        if c.state != CallState::Confirmed || c.reinvite.is_some() {
            return Err(Error::CallState(
                "call not established or an offer is pending",
            ));
        }
        if sdp.is_empty() {
            return Err(Error::CallState("a re-INVITE needs an SDP offer"));
        }
        let transport = c.dialog.transport;
        let (via, branch) = self.via(transport);
        let contact = self.contact(None, transport);
        let allow = self.allow_value();
        let c = self.call_mut(call)?;
        let mut invite = c.dialog.request(Method::Invite, via, &contact, None);
        invite.headers.push(HeaderName::Allow, allow);
        invite.set_body("application/sdp", sdp.clone());
        let target = (c.dialog.destination, transport);
        let auth = Auth {
            answered: 0,
            client: c.auth.client.clone(),
        };
        let key = self.start_client(invite.clone(), branch, target, Owner::Call(call), now);
        self.call_mut(call)?.reinvite = Some(Reinvite {
            key,
            sdp,
            request: invite,
            auth,
        });
        Ok(())
    }

    /// Sets the credentials a call answers 401/407 challenges to its in-dialog requests
    /// (re-INVITE, BYE) with; an outgoing call starts with those of its [`OutgoingCall`], an
    /// incoming one with none.
    pub fn set_credentials(
        &mut self,
        call: CallHandle,
        credentials: Option<Credentials>,
    ) -> Result<()> {
        self.call_mut(call)?.credentials = credentials;
        Ok(())
    }

    /// A final non-2xx response to our re-INVITE: one answer to a 401/407 (the re-INVITE
    /// again with credentials, next CSeq, new branch), else [`Event::UpdateFailed`].
    fn on_reinvite_failure(&mut self, call: CallHandle, resp: &Response, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(mut re) = c.reinvite.take() else {
            return;
        };
        let challenged =
            matches!(resp.status, 401 | 407) && re.auth.on_challenge(resp, c.credentials.is_some());
        if !challenged {
            c.auth.client = re.auth.client;
            self.events.push_back(Event::UpdateFailed {
                call,
                status: resp.status,
            });
            return;
        }
        let Reinvite {
            sdp,
            request,
            mut auth,
            ..
        } = re;
        let Some((key, request)) = self.resend_authorized(call, request, Some(&mut auth), now)
        else {
            return;
        };
        if let Some(c) = self.calls.get_mut(&call) {
            c.reinvite = Some(Reinvite {
                key,
                sdp,
                request,
                auth,
            });
        }
    }

    /// An INVITE or re-INVITE of `call` again after a 401/407 (RFC 3261 §22.2): a new branch,
    /// the dialog's next CSeq and the answer to the challenge held by `auth` (`None`: the
    /// call's own). Returns the new transaction and the request as sent.
    fn resend_authorized(
        &mut self,
        call: CallHandle,
        mut invite: Request,
        auth: Option<&mut Auth>,
        now: Instant,
    ) -> Option<(TxKey, Request)> {
        let transport = self.calls.get(&call)?.dialog.transport;
        let (via, branch) = self.via(transport);
        let cnonce = self.token();
        let c = self.calls.get_mut(&call)?;
        c.dialog.local_seq = c.dialog.local_seq.wrapping_add(1);
        invite.headers.set(HeaderName::Via, via);
        invite.headers.set(
            HeaderName::CSeq,
            CSeq {
                seq: c.dialog.local_seq,
                method: Method::Invite,
            }
            .to_string(),
        );
        let auth = auth.unwrap_or(&mut c.auth);
        if let (Some((proxy, client)), Some(cred)) = (auth.client.as_mut(), c.credentials.as_ref())
        {
            authorize(&mut invite, *proxy, client, cred, &cnonce);
        }
        let target = (c.dialog.destination, transport);
        let key = self.start_client(invite.clone(), branch, target, Owner::Call(call), now);
        Some((key, invite))
    }

    /// A 2xx to our re-INVITE: ACK it, the offer becomes the call's local SDP.
    fn on_reinvite_ok(&mut self, call: CallHandle, key: &TxKey, resp: Response) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(re) = c.reinvite.take() else {
            return;
        };
        c.auth.client = re.auth.client;
        c.local_sdp = re.sdp.clone();
        let seq = resp
            .headers
            .cseq()
            .map(|s| s.seq)
            .unwrap_or(c.dialog.local_seq);
        self.ack_2xx(
            call,
            key,
            to_tag(&resp),
            seq,
            Some(&re.request),
            Bytes::new(),
        );
        self.events.push_back(Event::SessionUpdated {
            call,
            remote_sdp: resp.body,
            local_sdp: re.sdp,
        });
    }

    /// Sends the ACK of a 2xx (To tag `tag`, CSeq `seq`) to our INVITE or re-INVITE on
    /// `call`'s dialog, with the credentials of the request it acknowledges (RFC 3261
    /// §13.2.2.4; `reinvite`, else the call's INVITE) and `sdp`: our answer when the 2xx
    /// carried the offer, else empty.
    fn ack_2xx(
        &mut self,
        call: CallHandle,
        key: &TxKey,
        tag: String,
        seq: u32,
        reinvite: Option<&Request>,
        sdp: Bytes,
    ) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let transport = c.dialog.transport;
        let (via, _) = self.via(transport);
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let mut ack = c.dialog.request(Method::Ack, via, "", Some(seq));
        copy_credentials(reinvite.unwrap_or(&c.invite), &mut ack);
        if !sdp.is_empty() {
            ack.set_body("application/sdp", sdp);
        }
        let ack = Transmit {
            transport,
            destination: c.dialog.destination,
            payload: ack.to_bytes(),
        };
        self.send_ack(key, tag, ack);
    }

    /// Sends the ACK for a 2xx (To tag `tag`) and remembers it in the INVITE transaction,
    /// which resends it when that 2xx is retransmitted.
    fn send_ack(&mut self, key: &TxKey, tag: String, ack: Transmit) {
        self.out.push_back(ack.clone());
        if let Some((tx, _)) = self.clients.get_mut(key) {
            tx.acks.push((tag, ack));
        }
    }

    /// Sends a MESSAGE; its final status comes as [`Event::MessageResult`].
    pub fn send_message(&mut self, msg: OutgoingMessage, now: Instant) -> MessageHandle {
        let handle = MessageHandle(self.next_id);
        self.next_id += 1;
        let mut from = msg.from;
        let tag = self.token();
        from.set_tag(&tag);
        let mut req = Request::new(Method::Message, msg.target.uri.clone());
        req.headers.push(HeaderName::MaxForwards, "70");
        req.headers.push(HeaderName::From, from.to_string());
        req.headers.push(HeaderName::To, msg.to.to_string());
        req.headers.push(
            HeaderName::CallId,
            format!("{}@{}", self.token(), self.config.local_addr.ip()),
        );
        req.headers.push(
            HeaderName::CSeq,
            CSeq {
                seq: 1,
                method: Method::Message,
            }
            .to_string(),
        );
        req.headers
            .push(HeaderName::UserAgent, self.config.user_agent.clone());
        req.set_body(&msg.content_type, msg.body);
        self.messages.insert(
            handle,
            PendingMessage {
                request: req,
                target: msg.target,
                credentials: msg.credentials,
                auth: Auth::default(),
            },
        );
        self.send_pending_message(handle, now);
        handle
    }

    fn send_pending_message(&mut self, handle: MessageHandle, now: Instant) {
        let (via, branch) = self.via(match self.messages.get(&handle) {
            Some(m) => m.target.transport,
            None => return,
        });
        let cnonce = self.token();
        let Some(m) = self.messages.get_mut(&handle) else {
            return;
        };
        let mut req = m.request.clone();
        req.headers.remove(&HeaderName::Via);
        req.headers.push_front(HeaderName::Via, via);
        if let (Some((proxy, client)), Some(cred)) =
            (m.auth.client.as_mut(), m.credentials.as_ref())
        {
            authorize(&mut req, *proxy, client, cred, &cnonce);
        }
        let target = (m.target.destination, m.target.transport);
        self.start_client(req, branch, target, Owner::Message(handle), now);
    }

    // ----- input ----------------------------------------------------------------------------

    /// One datagram (UDP) or one framed message (TCP) from `source`.
    pub fn handle_datagram(
        &mut self,
        data: Bytes,
        source: SocketAddr,
        transport: Transport,
        now: Instant,
    ) {
        match Message::parse(data.clone()) {
            Ok(Message::Request(r)) => self.handle_request(r, source, transport, now),
            Ok(Message::Response(r)) => self.handle_response(r, now),
            Err(e) => {
                // Answer a request we can still make sense of (RFC 3261 §8.2); drop the rest.
                if let Ok(Message::Request(r)) = Message::parse_unvalidated(data)
                    && r.method != Method::Ack
                {
                    self.stateless(&r, e.status_code(), source, transport);
                }
            }
        }
    }

    /// A parsed message from a stream transport (the driver's TCP codec already framed it).
    pub fn handle_message(
        &mut self,
        msg: Message,
        source: SocketAddr,
        transport: Transport,
        now: Instant,
    ) {
        match msg {
            Message::Request(r) => self.handle_request(r, source, transport, now),
            Message::Response(r) => self.handle_response(r, now),
        }
    }

    fn stateless(&mut self, req: &Request, status: u16, source: SocketAddr, transport: Transport) {
        let headers_ok = req.headers.top_via().is_ok()
            && req.headers.from().is_ok()
            && req.headers.to().is_ok()
            && req.headers.call_id().is_ok()
            && req.headers.cseq().is_ok();
        if !headers_ok {
            return;
        }
        let mut r = Response::from_request(req, status, reason_phrase(status));
        if r.headers.to().is_ok_and(|t| t.tag().is_none()) {
            let tag = self.token();
            let _ = r.headers.set_to_tag(&tag);
        }
        self.out.push_back(Transmit {
            transport,
            destination: source,
            payload: r.to_bytes(),
        });
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        self.config.allow.is_empty() || self.config.allow.iter().any(|n| n.contains(ip))
    }

    fn handle_request(
        &mut self,
        mut req: Request,
        source: SocketAddr,
        transport: Transport,
        now: Instant,
    ) {
        let Some(top) = stamp_via(&mut req, source) else {
            return;
        };
        let dest = response_destination(&top, source, transport);
        let branch = match top.branch() {
            Some(b) if top.has_rfc3261_branch() => text(b),
            _ => {
                let cseq = req.headers.cseq().map(|c| c.seq).unwrap_or(0);
                let call_id = req
                    .headers
                    .call_id()
                    .map(|c| c.to_string())
                    .unwrap_or_default();
                text(format!("{call_id};{cseq}"))
            }
        };
        let key = TxKey {
            branch,
            kind: Kind::of(&req.method),
        };
        if let Some((tx, call)) = self.servers.get_mut(&key) {
            if req.method == Method::Ack {
                let call = *call;
                if tx.on_ack(&self.config.timers, now) {
                    let at = tx.next_timeout();
                    self.schedule(TimerKey::Server(key), at);
                } else if let Some(call) = call {
                    self.on_ack(call, &req, now);
                }
            } else {
                tx.on_retransmission(&mut self.out);
            }
            return;
        }
        if req.method == Method::Ack {
            // ACK for a 2xx: its own branch, matched to the dialog.
            if let Some(call) = self.find_dialog(&req) {
                self.on_ack(call, &req, now);
            }
            return;
        }
        let tx = ServerTx::new(req.method == Method::Invite, dest, transport);
        self.servers.insert(key.clone(), (tx, None));
        if !self.allowed(source.ip()) {
            self.reply(&key, &req, 403, now);
            return;
        }
        match req.method {
            Method::Invite => self.on_invite(key, req, source, transport, now),
            Method::Cancel => self.on_cancel(key, req, now),
            Method::Bye => self.on_bye(key, req, now),
            Method::Update => self.on_update(key, req, now),
            Method::Options => {
                let mut r = self.response(&req, 200);
                r.headers.push(HeaderName::Allow, self.allow_value());
                let accept = if self.config.messaging {
                    "application/sdp, text/plain"
                } else {
                    "application/sdp"
                };
                r.headers.push(HeaderName::Accept, accept);
                r.headers.push(HeaderName::Supported, "timer");
                self.send_response(&key, r, now);
            }
            Method::Message if self.config.messaging => self.on_message(key, req, source, now),
            Method::Other(_) => self.reply(&key, &req, 501, now),
            _ => {
                let mut r = self.response(&req, 405);
                r.headers.push(HeaderName::Allow, self.allow_value());
                self.send_response(&key, r, now);
            }
        }
    }

    /// An incoming MESSAGE: reported to the application, which answers it with
    /// [`UserAgent::respond_message`]; the timer behind [`InboundMessage::deadline`] sends the
    /// 100 Trying and, without an answer, the 408.
    fn on_message(&mut self, key: TxKey, req: Request, source: SocketAddr, now: Instant) {
        let (Ok(from), Ok(to)) = (req.headers.from(), req.headers.to()) else {
            return self.reply(&key, &req, 400, now);
        };
        if self.inbound.len() >= MAX_PENDING_MESSAGES {
            return self.reply(&key, &req, 503, now);
        }
        let message = MessageHandle(self.next_id);
        self.next_id += 1;
        let content_type = req
            .headers
            .get(&HeaderName::ContentType)
            .map(|v| v.to_string())
            .unwrap_or_default();
        let timers = self.config.timers;
        let pending = InboundMessage {
            key,
            request: req.clone(),
            trying_at: Some(now + timers.t2),
            give_up: now + timers.timeout() / 2,
        };
        let at = pending.deadline();
        self.inbound.insert(message, pending);
        self.schedule(TimerKey::Message(message), Some(at));
        self.events.push_back(Event::IncomingMessage {
            message,
            from,
            to,
            request_uri: req.uri,
            content_type,
            body: req.body,
            source,
        });
    }

    /// Answers an incoming MESSAGE ([`Event::IncomingMessage`]) with a final status
    /// (200..=699: 200/202 when taken over, 4xx–6xx when refused). Errors when the handle names
    /// no unanswered MESSAGE (already answered, or answered 408 by the user agent after 32·T1).
    pub fn respond_message(
        &mut self,
        message: MessageHandle,
        status: u16,
        now: Instant,
    ) -> Result<()> {
        if !(200..700).contains(&status) {
            return Err(Error::CallState(
                "respond_message needs a status in 200..=699",
            ));
        }
        let pending = self
            .inbound
            .remove(&message)
            .ok_or(Error::CallState("no unanswered incoming MESSAGE"))?;
        self.reply(&pending.key, &pending.request, status, now);
        Ok(())
    }

    fn message_timer(&mut self, message: MessageHandle, at: Instant, now: Instant) {
        let Some(m) = self.inbound.get_mut(&message) else {
            return;
        };
        if m.deadline() != at {
            return;
        }
        if m.give_up <= now {
            if let Some(m) = self.inbound.remove(&message) {
                self.reply(&m.key, &m.request, 408, now);
            }
            return;
        }
        if m.trying_at.is_some_and(|t| t <= now) {
            m.trying_at = None;
            let (key, trying) = (
                m.key.clone(),
                Response::from_request(&m.request, 100, "Trying"),
            );
            self.send_response(&key, trying, now);
        }
        let next = self.inbound.get(&message).map(InboundMessage::deadline);
        self.schedule(TimerKey::Message(message), next);
    }

    /// A response to `req` with a To tag (the dialog's when there is one).
    fn response(&mut self, req: &Request, status: u16) -> Response {
        let mut r = Response::from_request(req, status, reason_phrase(status));
        if status > 100 && r.headers.to().is_ok_and(|t| t.tag().is_none()) {
            let tag = self.token();
            let _ = r.headers.set_to_tag(&tag);
        }
        r.headers
            .push(HeaderName::Server, self.config.user_agent.clone());
        r
    }

    fn send_response(&mut self, key: &TxKey, r: Response, now: Instant) {
        if let Some((tx, _)) = self.servers.get_mut(key) {
            tx.respond(
                r.status,
                r.to_bytes(),
                &self.config.timers,
                now,
                &mut self.out,
            );
            let at = tx.next_timeout();
            self.schedule(TimerKey::Server(key.clone()), at);
        }
    }

    fn reply(&mut self, key: &TxKey, req: &Request, status: u16, now: Instant) {
        let r = self.response(req, status);
        self.send_response(key, r, now);
    }

    fn find_dialog(&self, req: &Request) -> Option<CallHandle> {
        let call_id = req.headers.call_id_shared().ok()?;
        let to = req.headers.to().ok()?;
        let tag = to.tag()?;
        self.dialogs.get(&(call_id, text(tag))).copied()
    }

    fn on_invite(
        &mut self,
        key: TxKey,
        req: Request,
        source: SocketAddr,
        transport: Transport,
        now: Instant,
    ) {
        if req.headers.to().is_ok_and(|t| t.tag().is_some()) {
            return self.on_reinvite(key, req, now);
        }
        if let Some(status) = precheck(&req) {
            let mut r = self.response(&req, status);
            if status == 420 {
                let unsupported: Vec<String> = unsupported_requires(&req);
                r.headers
                    .push(HeaderName::Unsupported, unsupported.join(", "));
            }
            return self.send_response(&key, r, now);
        }
        let (Ok(from), Ok(to), Ok(call_id), Ok(cseq)) = (
            req.headers.from(),
            req.headers.to(),
            req.headers.call_id_shared(),
            req.headers.cseq(),
        ) else {
            return self.reply(&key, &req, 400, now);
        };
        let Some(remote_tag) = from.tag().map(str::to_owned) else {
            return self.reply(&key, &req, 400, now);
        };
        let call = CallHandle(self.next_id);
        self.next_id += 1;
        let local_tag = self.token();
        let mut local = to.clone();
        local.set_tag(&local_tag);
        let remote_target = req
            .headers
            .contact()
            .ok()
            .flatten()
            .map(|c| c.uri)
            .unwrap_or_else(|| from.uri.clone());
        let route_set = req.headers.record_route().unwrap_or_default();
        let mut dialog = Dialog {
            call_id: call_id.to_string(),
            local_tag: local_tag.clone(),
            remote_tag: Some(remote_tag),
            local,
            remote: from.clone(),
            local_seq: 0,
            remote_seq: Some(cseq.seq),
            remote_target,
            route_set,
            destination: source,
            transport,
        };
        dialog.retarget();
        self.dialogs.insert((call_id, text(local_tag)), call);
        if let Some((_, owner)) = self.servers.get_mut(&key) {
            *owner = Some(call);
        }
        let sdp = req.body.clone();
        let request_uri = req.uri.clone();
        let call_id = dialog.call_id.clone();
        let c = Call {
            uac: false,
            state: CallState::Early,
            dialog,
            invite: req,
            invite_key: key,
            credentials: None,
            auth: Auth::default(),
            hangup_requested: false,
            pending_ok: None,
            pending_ack: None,
            delayed_offer: None,
            local_sdp: Bytes::new(),
            sdp_version: 0,
            bye_key: None,
            reinvite: None,
        };
        let trying = self.invite_response(&c, 100);
        self.calls.insert(call, c);
        self.respond_invite(call, &trying, now);
        self.events.push_back(Event::IncomingCall {
            call,
            request_uri,
            from,
            to,
            sdp,
            source,
            transport,
            call_id,
        });
    }

    /// Checks the CSeq of an in-dialog request (RFC 3261 §12.2.2); returns the call when the
    /// request belongs to a live dialog, after answering 481/500 otherwise.
    fn in_dialog(&mut self, key: &TxKey, req: &Request, now: Instant) -> Option<CallHandle> {
        let Some(call) = self.find_dialog(req) else {
            self.reply(key, req, 481, now);
            return None;
        };
        let seq = req.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let c = self.calls.get_mut(&call)?;
        if c.dialog.remote_seq.is_some_and(|r| seq <= r) && req.method != Method::Ack {
            self.reply(key, req, 500, now);
            return None;
        }
        c.dialog.remote_seq = Some(seq);
        if let Some((_, owner)) = self.servers.get_mut(key) {
            *owner = Some(call);
        }
        Some(call)
    }

    /// Answers a re-offer from the call's current local SDP (codecs, address, port kept, the
    /// direction follows the offer: hold and resume). 488 when the offer shares no codec.
    fn answer_reoffer(
        &mut self,
        call: CallHandle,
        offer: &[u8],
    ) -> std::result::Result<Bytes, u16> {
        let c = self.calls.get_mut(&call).ok_or(481u16)?;
        let offer = SessionDescription::parse(offer).map_err(|_| 400u16)?;
        let local = SessionDescription::parse(&c.local_sdp).map_err(|_| 488u16)?;
        let caps = capabilities_of(&local).ok_or(488u16)?;
        c.sdp_version += 1;
        let version = local.origin.session_version.wrapping_add(c.sdp_version);
        let (answer, _) =
            sdp::answer(&offer, &caps, local.origin.session_id, version).map_err(|_| 488u16)?;
        let bytes = Bytes::from(answer.to_bytes());
        Ok(bytes)
    }

    fn on_reinvite(&mut self, key: TxKey, req: Request, now: Instant) {
        let Some(call) = self.in_dialog(&key, &req, now) else {
            return;
        };
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if c.state != CallState::Confirmed || c.reinvite.is_some() {
            // An offer is still being answered (RFC 3261 §14.2): 491 for ours, 500 for theirs.
            let status = if c.uac { 491 } else { 500 };
            return self.reply(&key, &req, status, now);
        }
        let body = if req.body.is_empty() {
            Ok(c.local_sdp.clone())
        } else {
            self.answer_reoffer(call, &req.body)
        };
        match body {
            Err(status) => self.reply(&key, &req, status, now),
            Ok(sdp) => {
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                if let Some(ct) = req.headers.contact().ok().flatten() {
                    c.dialog.remote_target = ct.uri;
                    c.dialog.retarget();
                }
                c.state = CallState::Answered;
                c.delayed_offer = req.body.is_empty().then_some(false);
                c.invite = req.clone();
                c.invite_key = key.clone();
                let local_tag = c.dialog.local_tag.clone();
                let transport = c.dialog.transport;
                let mut r = Response::from_request(&req, 200, "OK");
                let _ = r.headers.set_to_tag(&local_tag);
                r.headers
                    .push(HeaderName::Contact, self.contact(None, transport));
                r.headers.push(HeaderName::Allow, self.allow_value());
                session_timer(&req, &mut r);
                r.set_body("application/sdp", sdp.clone());
                let wire = r.to_bytes();
                self.send_response(&key, r, now);
                self.send_ok(call, wire, now);
                if !req.body.is_empty() {
                    self.events.push_back(Event::SessionUpdated {
                        call,
                        remote_sdp: req.body,
                        local_sdp: sdp,
                    });
                }
            }
        }
    }

    fn on_update(&mut self, key: TxKey, req: Request, now: Instant) {
        let Some(call) = self.in_dialog(&key, &req, now) else {
            return;
        };
        let answer = if req.body.is_empty() {
            None
        } else {
            Some(self.answer_reoffer(call, &req.body))
        };
        let mut r = match &answer {
            Some(Err(status)) => return self.reply(&key, &req, *status, now),
            _ => self.response(&req, 200),
        };
        if let Some(c) = self.calls.get(&call) {
            let _ = r.headers.set_to_tag(&c.dialog.local_tag);
            r.headers
                .push(HeaderName::Contact, self.contact(None, c.dialog.transport));
        }
        session_timer(&req, &mut r);
        if let Some(Ok(sdp)) = answer {
            r.set_body("application/sdp", sdp.clone());
            self.events.push_back(Event::SessionUpdated {
                call,
                remote_sdp: req.body.clone(),
                local_sdp: sdp,
            });
        }
        self.send_response(&key, r, now);
    }

    /// The ACK of our 2xx confirms the call; when that 2xx carried the offer it carries the
    /// answer: reported as [`Event::MediaAnswer`]. Without a usable answer an initial call is
    /// ended (BYE, [`EndReason::MediaFailed`]); a re-INVITE keeps the previous session.
    fn on_ack(&mut self, call: CallHandle, req: &Request, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let seq = req.headers.cseq().map(|s| s.seq).ok();
        let invite_seq = c.invite.headers.cseq().map(|s| s.seq).ok();
        if c.state != CallState::Answered || seq != invite_seq {
            return;
        }
        c.state = CallState::Confirmed;
        c.pending_ok = None;
        let Some(initial) = c.delayed_offer.take() else {
            return;
        };
        let is_sdp = req
            .headers
            .content_type()
            .ok()
            .flatten()
            .is_some_and(|t| t.is("application", "sdp"));
        if is_sdp && SessionDescription::parse(&req.body).is_ok() {
            self.events.push_back(Event::MediaAnswer {
                call,
                sdp: req.body.clone(),
            });
        } else if initial {
            self.end_call(call, EndReason::MediaFailed, now);
        }
    }

    fn on_cancel(&mut self, key: TxKey, req: Request, now: Instant) {
        let invite_key = TxKey {
            branch: key.branch.clone(),
            kind: Kind::Invite,
        };
        let target = self
            .servers
            .get(&invite_key)
            .map(|(tx, call)| (tx.is_pending(), *call));
        let Some((pending, call)) = target else {
            return self.reply(&key, &req, 481, now);
        };
        self.reply(&key, &req, 200, now);
        if let (true, Some(call)) = (pending, call) {
            let Some(c) = self.calls.get(&call) else {
                return;
            };
            if c.state == CallState::Early {
                let r = self.invite_response(c, 487);
                self.respond_invite(call, &r, now);
                self.remove_call(call);
                self.events.push_back(Event::Ended {
                    call,
                    reason: EndReason::Cancelled,
                });
            }
        }
    }

    fn on_bye(&mut self, key: TxKey, req: Request, now: Instant) {
        let Some(call) = self.in_dialog(&key, &req, now) else {
            return;
        };
        self.reply(&key, &req, 200, now);
        self.remove_call(call);
        self.events.push_back(Event::Ended {
            call,
            reason: EndReason::RemoteHangup,
        });
    }

    fn remove_call(&mut self, call: CallHandle) {
        if let Some(c) = self.calls.remove(&call) {
            self.dialogs
                .remove(&(text(c.dialog.call_id), text(c.dialog.local_tag)));
        }
    }

    fn handle_response(&mut self, resp: Response, now: Instant) {
        let Ok(top) = resp.headers.top_via() else {
            return;
        };
        let Some(branch) = top.branch() else { return };
        let Ok(cseq) = resp.headers.cseq() else {
            return;
        };
        let key = TxKey {
            branch: text(branch),
            kind: Kind::of(&cseq.method),
        };
        let Some((tx, owner)) = self.clients.get_mut(&key) else {
            return;
        };
        let owner = *owner;
        let Some(resp) = tx.on_response(resp, &self.config.timers, now, &mut self.out) else {
            return;
        };
        let at = tx.next_timeout();
        self.schedule(TimerKey::Client(key.clone()), at);
        if cseq.method == Method::Invite && (200..300).contains(&resp.status) {
            return self.on_invite_2xx(&key, owner, resp, now);
        }
        match owner {
            Owner::Call(call) if cseq.method == Method::Invite => {
                let ours = self
                    .calls
                    .get(&call)
                    .and_then(|c| c.reinvite.as_ref())
                    .is_some_and(|re| re.key == key);
                if !ours {
                    self.on_invite_response(call, resp, now)
                } else if resp.status >= 300 {
                    self.on_reinvite_failure(call, &resp, now)
                }
            }
            Owner::Call(call) if cseq.method == Method::Bye => {
                self.on_bye_response(call, &key, resp, now)
            }
            Owner::Message(m) => self.on_message_response(m, resp, now),
            _ => {}
        }
    }

    /// A 2xx to an INVITE of ours (RFC 3261 §13.2.2.4): a retransmission gets the same ACK
    /// again; the first 2xx of an initial INVITE confirms the call; a 2xx of a re-INVITE ends
    /// the offer/answer; a 2xx from another fork (another To tag) is ACKed and sent BYE at once,
    /// the call stays on the first dialog.
    fn on_invite_2xx(&mut self, key: &TxKey, owner: Owner, resp: Response, now: Instant) {
        let tag = to_tag(&resp);
        let Some((tx, _)) = self.clients.get(key) else {
            return;
        };
        if let Some((_, ack)) = tx.acks.iter().find(|(t, _)| *t == tag) {
            self.out.push_back(ack.clone());
            return;
        }
        if let Owner::Call(call) = owner
            && let Some(c) = self.calls.get(&call)
        {
            if c.pending_ack
                .as_ref()
                .is_some_and(|p| p.key == *key && p.tag == tag)
            {
                return; // a retransmission while the application answers the offer
            }
            if c.reinvite.as_ref().is_some_and(|re| re.key == *key) {
                return self.on_reinvite_ok(call, key, resp);
            }
            if c.invite_key == *key && c.state == CallState::Early {
                return self.on_invite_ok(call, key, resp, now);
            }
        }
        self.on_fork_ok(key, resp, now);
    }

    /// A 2xx that opened a dialog we do not want (a second fork, or an INVITE whose call is
    /// gone): ACK and BYE on that dialog (RFC 3261 §13.2.2.4).
    fn on_fork_ok(&mut self, key: &TxKey, resp: Response, now: Instant) {
        let Some((tx, _)) = self.clients.get(key) else {
            return;
        };
        if tx.acks.len() >= MAX_FORKS {
            return;
        }
        let Some(mut dialog) = Dialog::from_2xx(&tx.request, &resp, tx.destination, tx.transport)
        else {
            return;
        };
        let invite = tx.request.clone();
        let transport = dialog.transport;
        let (via, _) = self.via(transport);
        let seq = dialog.local_seq;
        let mut ack = dialog.request(Method::Ack, via, "", Some(seq));
        copy_credentials(&invite, &mut ack);
        let ack = Transmit {
            transport,
            destination: dialog.destination,
            payload: ack.to_bytes(),
        };
        self.send_ack(key, to_tag(&resp), ack);
        let (via, branch) = self.via(transport);
        let mut bye = dialog.request(Method::Bye, via, "", None);
        bye.headers
            .push(HeaderName::UserAgent, self.config.user_agent.clone());
        let target = (dialog.destination, transport);
        self.start_client(bye, branch, target, Owner::None, now);
    }

    fn on_invite_response(&mut self, call: CallHandle, resp: Response, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let status = resp.status;
        match status {
            100..=199 => {
                if status == 100 {
                    self.events.push_back(Event::Trying { call });
                } else {
                    if let Some(tag) = resp
                        .headers
                        .to()
                        .ok()
                        .and_then(|t| t.tag().map(str::to_owned))
                    {
                        c.dialog.set_remote_tag(&tag);
                    }
                    let sdp = (!resp.body.is_empty()).then(|| resp.body.clone());
                    self.events.push_back(Event::Ringing { call, status, sdp });
                }
                if c.hangup_requested {
                    self.try_cancel(call, now);
                }
            }
            401 | 407 => {
                let have = c.credentials.is_some();
                if c.state == CallState::Early
                    && c.auth.on_challenge(&resp, have)
                    && !c.hangup_requested
                {
                    self.resend_invite(call, now);
                } else {
                    self.invite_failed(call, &resp);
                }
            }
            _ => self.invite_failed(call, &resp),
        }
    }

    fn invite_failed(&mut self, call: CallHandle, resp: &Response) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if c.state != CallState::Early {
            return;
        }
        let event = if c.hangup_requested {
            Event::Ended {
                call,
                reason: EndReason::LocalHangup,
            }
        } else {
            Event::Rejected {
                call,
                status: resp.status,
                reason: resp.reason.to_string(),
            }
        };
        self.remove_call(call);
        self.events.push_back(event);
    }

    /// The INVITE again with credentials: same Call-ID and tags, next CSeq, new branch.
    fn resend_invite(&mut self, call: CallHandle, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.dialog.remote_tag = None;
        c.dialog.remote.params.remove("tag");
        let invite = c.invite.clone();
        let Some((key, invite)) = self.resend_authorized(call, invite, None, now) else {
            return;
        };
        if let Some(c) = self.calls.get_mut(&call) {
            c.invite = invite;
            c.invite_key = key;
        }
    }

    fn on_invite_ok(&mut self, call: CallHandle, key: &TxKey, resp: Response, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if let Some(tag) = resp
            .headers
            .to()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned))
        {
            c.dialog.set_remote_tag(&tag);
        }
        if let Some(contact) = resp.headers.contact().ok().flatten() {
            c.dialog.remote_target = contact.uri;
        }
        let mut routes = resp.headers.record_route().unwrap_or_default();
        routes.reverse();
        c.dialog.route_set = routes;
        c.dialog.retarget();
        let seq = resp
            .headers
            .cseq()
            .map(|s| s.seq)
            .unwrap_or(c.dialog.local_seq);
        let hangup = c.hangup_requested;
        let tag = to_tag(&resp);
        if c.invite.body.is_empty() && !hangup {
            // Delayed offer: the 2xx carries the peer's offer, the ACK our answer.
            if SessionDescription::parse(&resp.body).is_ok() {
                c.state = CallState::AwaitingAnswer;
                c.pending_ack = Some(PendingAck {
                    key: key.clone(),
                    tag,
                    seq,
                    give_up: now + self.config.timers.timeout(),
                });
                let at = call_deadline(c);
                self.schedule(TimerKey::Call(call), at);
                self.events.push_back(Event::Answered {
                    call,
                    sdp: resp.body,
                });
            } else {
                c.state = CallState::Confirmed;
                self.ack_2xx(call, key, tag, seq, None, Bytes::new());
                self.end_call(call, EndReason::MediaFailed, now);
            }
            return;
        }
        c.state = CallState::Confirmed;
        self.ack_2xx(call, key, tag, seq, None, Bytes::new());
        if hangup {
            self.send_bye(call, now);
        } else {
            self.events.push_back(Event::Answered {
                call,
                sdp: resp.body,
            });
        }
    }

    /// Ends an established call at once: BYE, removed, [`Event::Ended`] with `reason` (the
    /// BYE's own outcome is not waited for).
    fn end_call(&mut self, call: CallHandle, reason: EndReason, now: Instant) {
        self.send_bye(call, now);
        self.remove_call(call);
        self.events.push_back(Event::Ended { call, reason });
    }

    /// Sends the ACK a delayed-offer call's 2xx waits for, with `sdp` (our answer, or empty
    /// when the call is being given up); the call is then confirmed. False when no ACK waits.
    fn send_pending_ack(&mut self, call: CallHandle, sdp: Bytes) -> bool {
        let Some(c) = self.calls.get_mut(&call) else {
            return false;
        };
        let Some(p) = c.pending_ack.take() else {
            return false;
        };
        c.state = CallState::Confirmed;
        if !sdp.is_empty() {
            c.local_sdp = sdp.clone();
        }
        self.ack_2xx(call, &p.key, p.tag, p.seq, None, sdp);
        true
    }

    fn on_bye_response(&mut self, call: CallHandle, key: &TxKey, resp: Response, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.bye_key.as_ref() != Some(key) || resp.status < 200 {
            return;
        }
        if matches!(resp.status, 401 | 407) {
            let have = c.credentials.is_some();
            if c.auth.on_challenge(&resp, have) {
                let transport = c.dialog.transport;
                let (via, branch) = self.via(transport);
                let cnonce = self.token();
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                let mut bye = c.dialog.request(Method::Bye, via, "", None);
                if let (Some((proxy, client)), Some(cred)) =
                    (c.auth.client.as_mut(), c.credentials.as_ref())
                {
                    authorize(&mut bye, *proxy, client, cred, &cnonce);
                }
                let target = (c.dialog.destination, transport);
                let key = self.start_client(bye, branch, target, Owner::Call(call), now);
                if let Some(c) = self.calls.get_mut(&call) {
                    c.bye_key = Some(key);
                }
                return;
            }
        }
        self.remove_call(call);
        self.events.push_back(Event::Ended {
            call,
            reason: EndReason::LocalHangup,
        });
    }

    fn on_message_response(&mut self, m: MessageHandle, resp: Response, now: Instant) {
        if resp.status < 200 {
            return;
        }
        let Some(pm) = self.messages.get_mut(&m) else {
            return;
        };
        if matches!(resp.status, 401 | 407) && pm.auth.on_challenge(&resp, pm.credentials.is_some())
        {
            let seq = pm.request.headers.cseq().map(|c| c.seq).unwrap_or(1) + 1;
            pm.request.headers.set(
                HeaderName::CSeq,
                CSeq {
                    seq,
                    method: Method::Message,
                }
                .to_string(),
            );
            return self.send_pending_message(m, now);
        }
        self.messages.remove(&m);
        self.events.push_back(Event::MessageResult {
            message: m,
            status: resp.status,
        });
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, key))) = self.timers.pop() else {
                break;
            };
            match key {
                TimerKey::Client(k) => self.client_timer(k, at, now),
                TimerKey::Server(k) => self.server_timer(k, at, now),
                TimerKey::Call(c) => self.call_timer(c, at, now),
                TimerKey::Message(m) => self.message_timer(m, at, now),
            }
        }
    }

    fn client_timer(&mut self, key: TxKey, at: Instant, now: Instant) {
        let Some((tx, owner)) = self.clients.get_mut(&key) else {
            return;
        };
        if tx.next_timeout() != Some(at) {
            return; // stale heap entry
        }
        let owner = *owner;
        let timed_out = tx.on_timeout(&self.config.timers, now, &mut self.out);
        let next = tx.next_timeout();
        if tx.is_terminated() {
            self.clients.remove(&key);
        } else {
            self.schedule(TimerKey::Client(key.clone()), next);
        }
        if timed_out {
            self.client_failed(&key, owner, 408);
        }
    }

    /// A client transaction ended without a final response: timer B/F (408) or a transport
    /// error (503, RFC 3261 §8.1.3.1).
    fn client_failed(&mut self, key: &TxKey, owner: Owner, status: u16) {
        match owner {
            Owner::Call(call) => {
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                if c.bye_key.as_ref() == Some(key) {
                    self.remove_call(call);
                    self.events.push_back(Event::Ended {
                        call,
                        reason: EndReason::Timeout,
                    });
                } else if c.reinvite.as_ref().is_some_and(|re| re.key == *key) {
                    if let Some(re) = c.reinvite.take() {
                        c.auth.client = re.auth.client;
                    }
                    self.events.push_back(Event::UpdateFailed { call, status });
                } else if c.invite_key == *key && c.state == CallState::Early {
                    let r = Response::new(status, reason_phrase(status));
                    self.invite_failed(call, &r);
                }
            }
            Owner::Message(m) => {
                self.messages.remove(&m);
                self.events
                    .push_back(Event::MessageResult { message: m, status });
            }
            Owner::None => {}
        }
    }

    /// The driver could not reach `destination` (TCP connect or write failed): every pending
    /// client transaction towards it fails as if answered 503.
    pub fn handle_transport_error(&mut self, destination: SocketAddr, transport: Transport) {
        let failed: Vec<(TxKey, Owner)> = self
            .clients
            .iter()
            .filter(|(_, (tx, _))| tx.destination == destination && tx.transport == transport)
            .map(|(k, (_, o))| (k.clone(), *o))
            .collect();
        for (key, owner) in failed {
            self.clients.remove(&key);
            self.client_failed(&key, owner, 503);
        }
    }

    fn server_timer(&mut self, key: TxKey, at: Instant, now: Instant) {
        let Some((tx, _)) = self.servers.get_mut(&key) else {
            return;
        };
        if tx.next_timeout() != Some(at) {
            return;
        }
        tx.on_timeout(&self.config.timers, now, &mut self.out);
        let next = tx.next_timeout();
        if tx.is_terminated() {
            self.servers.remove(&key);
        } else {
            self.schedule(TimerKey::Server(key), next);
        }
    }

    fn call_timer(&mut self, call: CallHandle, at: Instant, now: Instant) {
        let t2 = self.config.timers.t2;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if call_deadline(c) != Some(at) {
            return;
        }
        if c.pending_ack.is_some() {
            // The application never answered the 2xx's offer: ACK without an answer, BYE.
            self.send_pending_ack(call, Bytes::new());
            return self.end_call(call, EndReason::Timeout, now);
        }
        let Some(ok) = c.pending_ok.as_mut() else {
            return;
        };
        if ok.give_up <= now {
            // No ACK (RFC 3261 §13.3.1.4): end the dialog with a BYE.
            return self.end_call(call, EndReason::Timeout, now);
        }
        if let Some(r) = ok.retransmit
            && r.at <= now
        {
            self.out.push_back(Transmit {
                transport: c.dialog.transport,
                destination: c.dialog.destination,
                payload: ok.wire.clone(),
            });
            let interval = (r.interval * 2).min(t2);
            ok.retransmit = Some(Retransmit {
                at: now + interval,
                interval,
            });
        }
        let next = call_deadline(c);
        self.schedule(TimerKey::Call(call), next);
    }
}

fn call_deadline(c: &Call) -> Option<Instant> {
    if let Some(p) = &c.pending_ack {
        return Some(p.give_up);
    }
    let ok = c.pending_ok.as_ref()?;
    Some(ok.retransmit.map_or(ok.give_up, |r| r.at.min(ok.give_up)))
}

/// The local capabilities implied by the SDP this side sent.
fn capabilities_of(local: &SessionDescription) -> Option<AudioCapabilities> {
    let m = local
        .media
        .iter()
        .find(|m| m.kind == "audio" && m.port != 0)?;
    let address = local.connection_of(m)?;
    let mut caps = AudioCapabilities::new(address, m.port);
    caps.codecs = m.codecs().map(|(_, c)| c).collect();
    caps.telephone_event = m.telephone_event().is_some();
    if let Some(p) = m.ptime {
        caps.ptime = p;
    }
    Some(caps)
}

/// Adds RFC 3581 `received` / `rport` to the top Via and returns it.
fn stamp_via(req: &mut Request, source: SocketAddr) -> Option<Via> {
    let mut vias = req.headers.via().ok()?;
    let top = vias.first_mut()?;
    let same_host = match &top.host {
        Host::Ipv4(a) => IpAddr::V4(*a) == source.ip(),
        Host::Ipv6(a) => IpAddr::V6(*a) == source.ip(),
        Host::Domain(_) => false,
    };
    let wants_rport = top.params.contains("rport");
    if same_host && !wants_rport {
        return Some(top.clone());
    }
    if !same_host {
        top.params
            .set("received", Some(text(source.ip().to_string())));
    }
    if wants_rport {
        top.params
            .set("rport", Some(text(source.port().to_string())));
    }
    let pos = req.headers.position(&HeaderName::Via)?;
    req.headers.remove(&HeaderName::Via);
    for (k, v) in vias.iter().enumerate() {
        req.headers
            .insert(pos + k, HeaderName::Via, text(v.to_string()));
    }
    vias.into_iter().next()
}

/// Where responses go (RFC 3261 §18.2.2 with RFC 3581): the connection over TCP; over UDP the
/// source address, with the source port when `rport` was asked for, else the Via port.
fn response_destination(top: &Via, source: SocketAddr, transport: Transport) -> SocketAddr {
    if transport.is_reliable() || top.params.contains("rport") {
        source
    } else {
        SocketAddr::new(source.ip(), top.port.unwrap_or(5060))
    }
}

/// Option tags this UA supports in Require.
const SUPPORTED: &[&str] = &["timer"];

fn unsupported_requires(req: &Request) -> Vec<String> {
    req.headers
        .require()
        .unwrap_or_default()
        .iter()
        .filter(|t| !SUPPORTED.iter().any(|s| t.eq_ignore_ascii_case(s)))
        .map(|t| t.to_string())
        .collect()
}

/// Status for an initial INVITE that cannot be taken: 416 non-SIP Request-URI, 483 hops
/// exhausted, 420 unknown Require, 415 body that is not SDP.
fn precheck(req: &Request) -> Option<u16> {
    if !matches!(req.uri, Uri::Sip(_) | Uri::Tel(_)) {
        return Some(416);
    }
    if req.headers.max_forwards().ok().flatten() == Some(0) {
        return Some(483);
    }
    if !unsupported_requires(req).is_empty() {
        return Some(420);
    }
    if !req.body.is_empty() {
        let sdp = req
            .headers
            .content_type()
            .ok()
            .flatten()
            .is_some_and(|t| t.is("application", "sdp"));
        if !sdp {
            return Some(415);
        }
    }
    None
}

/// RFC 4028 tolerated: when the peer supports session timers and asked for an interval, the 2xx
/// confirms it with the peer as refresher; refreshes arrive as re-INVITE / UPDATE.
fn session_timer(req: &Request, resp: &mut Response) {
    let Some(se) = req.headers.get(&HeaderName::SessionExpires) else {
        return;
    };
    let supports = req
        .headers
        .supported()
        .unwrap_or_default()
        .iter()
        .chain(req.headers.require().unwrap_or_default().iter())
        .any(|t| t.eq_ignore_ascii_case("timer"));
    if !supports {
        return;
    }
    let value = if se.contains("refresher") {
        se.to_string()
    } else {
        format!("{se};refresher=uac")
    };
    resp.headers.push(HeaderName::SessionExpires, value);
    resp.headers.push(HeaderName::Require, "timer");
}

/// The To tag of a response ("" when it has none).
fn to_tag(resp: &Response) -> String {
    resp.headers
        .to()
        .ok()
        .and_then(|t| t.tag().map(str::to_owned))
        .unwrap_or_default()
}

/// The ACK of a 2xx carries the credentials of the INVITE it acknowledges (RFC 3261
/// §13.2.2.4).
fn copy_credentials(invite: &Request, ack: &mut Request) {
    ack.headers
        .copy_from(&invite.headers, &HeaderName::Authorization);
    ack.headers
        .copy_from(&invite.headers, &HeaderName::ProxyAuthorization);
}

/// The address of a Request-URI whose host is an IP literal.
pub fn literal_target(uri: &Uri) -> Option<Target> {
    let (_, _, transport) = next_hop(uri).ok()?;
    Some(Target {
        uri: uri.clone(),
        destination: literal_address(uri)?,
        transport,
    })
}
