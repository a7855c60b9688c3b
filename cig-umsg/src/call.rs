//! Call sessions (docs/umsg.md §5): the client's call table (BANG built with SAKKE to the
//! callee's routing identity and ECCSI-signed, in one step or prepared outside the table with
//! [`PreparedCall`] and adopted; a received BANG checked for time and replay, then its signature
//! verified before decapsulation — in one step, or checked on the table
//! ([`Calls::check_bang`]), verified and decapsulated outside it ([`IncomingBang::verify`]) and
//! adopted ([`Calls::adopt_incoming`]); SRTP keys derived; the caller's answer timer) and the
//! switch's call relay.
//!
//! Ended sessions leave the live table at once (so `show umsg` and memory do not grow with
//! every call); the last [`ENDED_KEPT`] stay readable through [`Calls::get`] so that the
//! application can read how a call ended when it handles the event.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use cig_mikey_sakke::eccsi::Kpak;
use cig_mikey_sakke::kdf::{self, SrtpKeys};
use cig_mikey_sakke::keystore::KeyMaterial;
use cig_mikey_sakke::mikey::{
    self, Accepted, Checked, KeyLookup, KeyPeriod, Profile, Receiver, ReceiverConfig,
};
use cig_mikey_sakke::sakke::{KmsPublicKey, Rsk};
use rand_core::CryptoRngCore;

use crate::Error;
use crate::frame::{Frame, FrameType, field_cap, tag};
use crate::register::{ConnId, Registrar, Transmit, from_is_of, routing_identity};

/// How long a caller waits for TALK after its BANG before it hangs up with reason timeout
/// ("no answer", docs/umsg.md §5); see [`Calls::set_answer_timeout`].
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// Ended sessions kept readable through [`Calls::get`] (oldest dropped first).
pub const ENDED_KEPT: usize = 256;

/// A 12-byte call session id.
pub type SessionId = [u8; 12];

/// The 16-character base64 form of a session id.
pub fn session_id_text(id: &SessionId) -> String {
    base64::engine::general_purpose::STANDARD.encode(id)
}

/// Call states as `show umsg` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// Created, BANG sent, not yet routed.
    Create,
    /// Routed (caller) or received and verified (callee).
    Bang,
    /// Ringing.
    Growl,
    /// Answered.
    Talk,
    /// Ended.
    Hangup,
}

impl CallState {
    /// The name in the session table.
    pub fn name(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Bang => "BANG",
            Self::Growl => "GROWL",
            Self::Talk => "TALK",
            Self::Hangup => "HANGUP",
        }
    }
}

/// HANGUP reasons (docs/umsg.md §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum HangupReason {
    /// Normal clearing.
    Normal = 0,
    /// Callee busy.
    Busy = 1,
    /// Callee declined.
    Declined = 2,
    /// No registration for the routing identity.
    NoRoute = 3,
    /// The other end lost its connection.
    Unavailable = 4,
    /// No answer in time.
    Timeout = 5,
    /// Verification failed or protocol misuse.
    Error = 6,
}

impl HangupReason {
    /// The reason of a code (unknown codes read as `Error`).
    pub fn from_code(c: u8) -> Self {
        match c {
            0 => Self::Normal,
            1 => Self::Busy,
            2 => Self::Declined,
            3 => Self::NoRoute,
            4 => Self::Unavailable,
            5 => Self::Timeout,
            _ => Self::Error,
        }
    }
}

/// A media offer or answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// RTP payload types in preference order (8 PCMA, 0 PCMU).
    pub codecs: Vec<u8>,
    /// telephone-event payload type.
    pub dtmf_pt: u8,
    /// The sender's SSRC.
    pub ssrc: u32,
}

impl Media {
    fn add_to(&self, f: Frame) -> Frame {
        f.with(tag::CODECS, self.codecs.clone())
            .with(tag::DTMF_PT, [self.dtmf_pt])
            .with(tag::SSRC, self.ssrc.to_be_bytes())
    }

    fn from_frame(f: &Frame) -> Result<Self, Error> {
        let codecs = f.get(tag::CODECS).ok_or(Error::Frame("CODECS missing"))?;
        let dtmf = f.get(tag::DTMF_PT).ok_or(Error::Frame("DTMF_PT missing"))?;
        let ssrc = exact::<4>(f, tag::SSRC)?;
        Ok(Self {
            codecs: codecs.to_vec(),
            dtmf_pt: *dtmf.first().ok_or(Error::Frame("DTMF_PT empty"))?,
            ssrc: u32::from_be_bytes(ssrc),
        })
    }
}

fn exact<const N: usize>(f: &Frame, t: u16) -> Result<[u8; N], Error> {
    f.get(t)
        .and_then(|v| <[u8; N]>::try_from(v).ok())
        .ok_or(Error::Frame("required field missing or of the wrong size"))
}

fn text(f: &Frame, t: u16) -> Result<String, Error> {
    f.get(t)
        .and_then(|v| core::str::from_utf8(v).ok())
        .map(str::to_owned)
        .ok_or(Error::Frame("required text field missing or not UTF-8"))
}

/// One call session at a client.
#[derive(Debug)]
pub struct Call {
    /// From URI.
    pub from: String,
    /// To URI as dialled.
    pub to: String,
    /// State.
    pub state: CallState,
    /// When the session was created.
    pub created: SystemTime,
    /// SRTP master key and salt (from the SSV).
    pub keys: SrtpKeys,
    /// The far end's media offer or answer, once known.
    pub remote_media: Option<Media>,
    /// The switch relay's media address for this leg, once known.
    pub media_addr: Option<String>,
    /// Why it ended.
    pub reason: Option<HangupReason>,
    /// Caller: the call is hung up with reason timeout at this time unless it reached TALK.
    pub answer_by: Option<SystemTime>,
}

/// One row of `show umsg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// FROM.
    pub from: String,
    /// TO.
    pub to: String,
    /// STATE.
    pub state: &'static str,
    /// TIME: whole seconds since created.
    pub time: u64,
    /// ID: 16 base64 characters.
    pub id: String,
}

pub(crate) struct Keys<'a>(pub(crate) &'a KeyMaterial);

impl KeyLookup for Keys<'_> {
    fn kpak(&self) -> &Kpak {
        &self.0.kpak
    }
    fn zpub(&self) -> &KmsPublicKey {
        &self.0.zpub
    }
    fn rsk(&self, receiver_id: &[u8]) -> Option<&Rsk> {
        self.0
            .periods
            .iter()
            .find(|p| self.0.identifier(p.period) == receiver_id)
            .map(|p| &p.rsk)
    }
}

/// A fresh RFC 6509 I_MESSAGE (new SSV) from our identity to the routing identity of `to`,
/// signed with our key of the period that contains `now`. Calls and text messages both start
/// with one.
pub(crate) fn imessage_to(
    keys: &KeyMaterial,
    to: &str,
    now: SystemTime,
    rng: &mut impl CryptoRngCore,
) -> Result<mikey::Created, Error> {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let period = KeyPeriod::from_unix(secs).map_err(Error::Crypto)?;
    let signer = keys.signing_key(period).map_err(Error::Crypto)?;
    let sender_id = keys.identifier(period);
    let receiver_id = period.identifier(routing_identity(to));
    let req = mikey::Request {
        profile: Profile::Rfc6509,
        sender_id: &sender_id,
        receiver_id: &receiver_id,
        now,
    };
    mikey::create(&req, &signer, &keys.zpub, rng).map_err(Error::Crypto)
}

/// A BANG built from the caller's key material alone, outside any call table: the I_MESSAGE
/// (SAKKE encapsulation of a fresh SSV to the callee's routing identity, ECCSI-signed: about a
/// millisecond of CPU), the call's SRTP keys and a fresh session id. A client builds it where it
/// holds no lock (e.g. on a worker thread while its driver goes on reading frames) and then
/// [`Calls::adopt`]s it, which only registers the session.
#[derive(Debug)]
pub struct PreparedCall {
    id: SessionId,
    from: String,
    to: String,
    keys: SrtpKeys,
    frame: Frame,
    created: SystemTime,
}

impl PreparedCall {
    /// A BANG from the identity of `keys` to `to` with our media `offer`, its I_MESSAGE signed
    /// with our key of the period that contains `now`. FROM is `from` when given — the
    /// registered identity with an extension, as a gateway presents a routed caller
    /// (`tel:+8888;101`; see [`from_is_of`]) — else the registered identity itself.
    pub fn new(
        keys: &KeyMaterial,
        from: Option<&str>,
        to: &str,
        offer: &Media,
        now: SystemTime,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, Error> {
        let from = from.unwrap_or(&keys.identity);
        if !from_is_of(from, &keys.identity) || from.len() > field_cap(tag::FROM) {
            return Err(Error::Frame(
                "FROM is not the caller's identity with at most an extension",
            ));
        }
        if to.len() > field_cap(tag::TO) {
            return Err(Error::Frame("TO over its cap"));
        }
        let created = imessage_to(keys, to, now, rng)?;
        let m = &created.message;
        let srtp = kdf::srtp_keys(
            m.header.prf,
            created.ssv.as_bytes(),
            1,
            m.header.csb_id,
            &m.rand,
        )
        .map_err(Error::Crypto)?;
        let mut id = [0u8; 12];
        rng.fill_bytes(&mut id);
        let frame = offer.add_to(
            Frame::new(FrameType::Bang)
                .with(tag::SESSION_ID, id)
                .with(tag::FROM, from.as_bytes().to_vec())
                .with(tag::TO, to.as_bytes().to_vec())
                .with(tag::IMESSAGE, m.as_bytes().to_vec()),
        );
        Ok(Self {
            id,
            from: from.to_owned(),
            to: to.to_owned(),
            keys: srtp,
            frame,
            created: now,
        })
    }

    /// The session id the call will have.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// FROM as sent.
    pub fn from(&self) -> &str {
        &self.from
    }

    /// The call's SRTP master key and salt.
    pub fn keys(&self) -> &SrtpKeys {
        &self.keys
    }
}

/// A received BANG that passed [`Calls::check_bang`], its ECCSI verification and SAKKE
/// decapsulation still to do: [`Self::verify`] needs no call table, so a client runs it on a
/// worker while its driver goes on reading frames, then hands the result to
/// [`Calls::adopt_incoming`].
#[derive(Debug)]
pub struct IncomingBang {
    id: SessionId,
    bang: Bang,
    checked: Checked,
    keys: Arc<KeyMaterial>,
}

/// What a BANG carries besides its I_MESSAGE.
#[derive(Debug)]
struct Bang {
    from: String,
    to: String,
    media: Media,
    addr: String,
    created: SystemTime,
}

impl IncomingBang {
    /// The session id of the BANG.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The costly half: verifies the I_MESSAGE's ECCSI signature and, only if it holds,
    /// decapsulates the SSV and derives the SRTP keys (about 4 ms of CPU).
    pub fn verify(self) -> VerifiedBang {
        let accepted = self
            .checked
            .accept(&Keys(&self.keys))
            .map_err(Error::Crypto);
        VerifiedBang {
            id: self.id,
            bang: self.bang,
            accepted,
        }
    }
}

/// The outcome of [`IncomingBang::verify`], for [`Calls::adopt_incoming`].
#[derive(Debug)]
pub struct VerifiedBang {
    id: SessionId,
    bang: Bang,
    accepted: Result<Accepted, Error>,
}

impl VerifiedBang {
    /// The session id of the BANG.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// Whether the signature verified and the SSV was recovered.
    pub fn is_ok(&self) -> bool {
        self.accepted.is_ok()
    }
}

/// The client's call sessions (sans-IO: frames and `now` in, frames out, the answer timer
/// through [`Calls::poll_timeout`] and [`Calls::handle_timeout`]).
#[derive(Debug)]
pub struct Calls {
    keys: Arc<KeyMaterial>,
    receiver: Receiver,
    calls: HashMap<SessionId, Call>,
    ended: HashMap<SessionId, Call>,
    ended_order: VecDeque<SessionId>,
    /// The answer deadlines of the live calls that have one, earliest first (the driver asks
    /// for the next one on every turn: no scan of the table).
    deadlines: BTreeSet<(SystemTime, SessionId)>,
    answer_timeout: Duration,
    created: SystemTime,
}

impl Calls {
    /// A call table for the identity of `keys`, created at `now`, with the default answer
    /// timeout ([`ANSWER_TIMEOUT`]).
    pub fn new(keys: KeyMaterial, now: SystemTime) -> Self {
        Self {
            keys: Arc::new(keys),
            receiver: Receiver::new(ReceiverConfig::default()),
            calls: HashMap::new(),
            ended: HashMap::new(),
            ended_order: VecDeque::new(),
            deadlines: BTreeSet::new(),
            answer_timeout: ANSWER_TIMEOUT,
            created: now,
        }
    }

    /// Sets how long later dialled calls wait for TALK (default [`ANSWER_TIMEOUT`]).
    pub fn set_answer_timeout(&mut self, d: Duration) {
        self.answer_timeout = d;
    }

    /// A session: a live one, or one of the last [`ENDED_KEPT`] ended ones (state HANGUP).
    pub fn get(&self, id: &SessionId) -> Option<&Call> {
        self.calls.get(id).or_else(|| self.ended.get(id))
    }

    /// Live (not ended) sessions.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Ends live session `id` with `reason`: it leaves the live table and stays readable among
    /// the recently ended. Whether it was live.
    fn end(&mut self, id: &SessionId, reason: HangupReason) -> bool {
        let Some(mut c) = self.calls.remove(id) else {
            return false;
        };
        c.state = CallState::Hangup;
        c.reason = Some(reason);
        if let Some(t) = c.answer_by.take() {
            self.deadlines.remove(&(t, *id));
        }
        if self.ended_order.len() >= ENDED_KEPT {
            if let Some(old) = self.ended_order.pop_front() {
                self.ended.remove(&old);
            }
        }
        if self.ended.insert(*id, c).is_none() {
            self.ended_order.push_back(*id);
        }
        true
    }

    /// When [`Self::handle_timeout`] wants to run next: the earliest answer deadline of a
    /// dialled call not yet in TALK.
    pub fn poll_timeout(&self) -> Option<SystemTime> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Ends every dialled call whose answer deadline has passed at `now` with reason timeout
    /// ("no answer"); the HANGUP frames to send, with their session ids.
    pub fn handle_timeout(&mut self, now: SystemTime) -> Vec<(SessionId, Frame)> {
        let due: Vec<SessionId> = self
            .deadlines
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, id)| *id)
            .collect();
        due.into_iter()
            .filter(|id| self.end(id, HangupReason::Timeout))
            .map(|id| (id, hangup_frame(&id, HangupReason::Timeout)))
            .collect()
    }

    /// Dials `to`: a BANG with an I_MESSAGE to the routing identity of `to`, signed with our
    /// key of the current period, and our media offer, FROM our registered identity. The
    /// session starts in CREATE. ([`PreparedCall::new`] and [`Self::adopt`] do the same in two
    /// steps, the costly one outside the table.)
    pub fn dial(
        &mut self,
        to: &str,
        offer: &Media,
        now: SystemTime,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(SessionId, Frame), Error> {
        let prepared = PreparedCall::new(&self.keys, None, to, offer, now, rng)?;
        self.adopt(prepared, now)
    }

    /// Registers a [`PreparedCall`] made with this table's identity as a dialled session in
    /// CREATE, its answer timer running from `now`; the BANG to send. Refused (nothing
    /// registered) when it was made for another identity or its session id is in use.
    pub fn adopt(
        &mut self,
        call: PreparedCall,
        now: SystemTime,
    ) -> Result<(SessionId, Frame), Error> {
        if routing_identity(&call.from) != self.keys.identity {
            return Err(Error::Frame("call prepared for another identity"));
        }
        if self.calls.contains_key(&call.id) || self.ended.contains_key(&call.id) {
            return Err(Error::Frame("session id in use"));
        }
        let answer_by = now + self.answer_timeout;
        self.deadlines.insert((answer_by, call.id));
        self.calls.insert(
            call.id,
            Call {
                from: call.from,
                to: call.to,
                state: CallState::Create,
                created: call.created,
                keys: call.keys,
                remote_media: None,
                media_addr: None,
                reason: None,
                answer_by: Some(answer_by),
            },
        );
        Ok((call.id, call.frame))
    }

    /// Handles a call frame from the switch. A BANG that fails any check is answered with
    /// HANGUP(error) (returned) and the error; nothing else is answered.
    pub fn on_frame(
        &mut self,
        f: &Frame,
        now: SystemTime,
    ) -> Result<Option<Frame>, (Error, Option<Frame>)> {
        let id = exact::<12>(f, tag::SESSION_ID).map_err(|e| (e, None))?;
        match f.kind {
            FrameType::Bang => self
                .check_bang(f, now)
                .and_then(|bang| self.adopt_incoming(bang.verify(), now))
                .map(|_| None)
                .map_err(|e| (e, Some(hangup_frame(&id, HangupReason::Error)))),
            FrameType::Routed => {
                let addr = text(f, tag::MEDIA_ADDR).map_err(|e| (e, None))?;
                self.update(&id, CallState::Create, |c| {
                    c.state = CallState::Bang;
                    c.media_addr = Some(addr);
                });
                Ok(None)
            }
            FrameType::Growl => {
                self.update(&id, CallState::Bang, |c| c.state = CallState::Growl);
                Ok(None)
            }
            FrameType::Talk => {
                let media = Media::from_frame(f).map_err(|e| (e, None))?;
                if let Some(c) = self.calls.get_mut(&id) {
                    if matches!(c.state, CallState::Bang | CallState::Growl) {
                        c.state = CallState::Talk;
                        c.remote_media = Some(media);
                        if let Some(t) = c.answer_by.take() {
                            self.deadlines.remove(&(t, id));
                        }
                    }
                }
                Ok(None)
            }
            FrameType::Hangup => {
                let r = f.get(tag::REASON).and_then(|r| r.first().copied());
                self.end(&id, HangupReason::from_code(r.unwrap_or(6)));
                Ok(None)
            }
            _ => Err((Error::Frame("not a call frame"), None)),
        }
    }

    fn update(&mut self, id: &SessionId, from: CallState, f: impl FnOnce(&mut Call)) {
        if let Some(c) = self.calls.get_mut(id) {
            if c.state == from {
                f(c);
            }
        }
    }

    /// The cheap half of receiving a BANG, on the table: its fields, a session id not in
    /// use, the I_MESSAGE's time window and replay cache (nothing recorded), the RSK for its
    /// receiver and FROM against its sender. What remains — the ECCSI verification and the SAKKE
    /// decapsulation, about 4 ms — is [`IncomingBang::verify`], to run where no lock is held;
    /// [`Self::adopt_incoming`] then registers the session. ([`Self::on_frame`] does all three.)
    /// On error, answer with HANGUP(error).
    pub fn check_bang(&self, f: &Frame, now: SystemTime) -> Result<IncomingBang, Error> {
        let id = exact::<12>(f, tag::SESSION_ID)?;
        if f.kind != FrameType::Bang {
            return Err(Error::Frame("not a BANG"));
        }
        if self.calls.contains_key(&id) {
            return Err(Error::Frame("session id in use"));
        }
        let from = text(f, tag::FROM)?;
        let to = text(f, tag::TO)?;
        let media = Media::from_frame(f)?;
        let addr = text(f, tag::MEDIA_ADDR)?;
        let im = f
            .get(tag::IMESSAGE)
            .ok_or(Error::Frame("IMESSAGE missing"))?;
        // Time and replay are checked before any public-key work.
        let checked = self
            .receiver
            .check(im, now, &Keys(&self.keys))
            .map_err(Error::Crypto)?;
        let (_, sender_uri) =
            mikey::split_rfc6509_identifier(checked.sender_id()).map_err(Error::Crypto)?;
        if !from_is_of(&from, sender_uri) {
            return Err(Error::Frame("I_MESSAGE sender is not FROM"));
        }
        Ok(IncomingBang {
            id,
            bang: Bang {
                from,
                to,
                media,
                addr,
                created: now,
            },
            checked,
            keys: Arc::clone(&self.keys),
        })
    }

    /// Registers a BANG verified with [`IncomingBang::verify`] as an incoming session in
    /// state BANG: its I_MESSAGE is recorded against replay now — a copy that was verified
    /// meanwhile is refused here — and the session id must still be free. Its id, or the error
    /// to answer with HANGUP(error) (nothing changed).
    pub fn adopt_incoming(&mut self, v: VerifiedBang, now: SystemTime) -> Result<SessionId, Error> {
        let VerifiedBang { id, bang, accepted } = v;
        let accepted = accepted?;
        if self.calls.contains_key(&id) {
            return Err(Error::Frame("session id in use"));
        }
        let keys = accepted
            .srtp
            .into_iter()
            .find(|(cs, _)| *cs == 1)
            .map(|(_, k)| k)
            .ok_or(Error::Frame("I_MESSAGE without crypto session 1"))?;
        self.receiver
            .record(&accepted.message, now)
            .map_err(Error::Crypto)?;
        self.calls.insert(
            id,
            Call {
                from: bang.from,
                to: bang.to,
                state: CallState::Bang,
                created: bang.created,
                keys,
                remote_media: Some(bang.media),
                media_addr: Some(bang.addr),
                reason: None,
                answer_by: None,
            },
        );
        Ok(id)
    }

    /// Callee: ringing.
    pub fn growl(&mut self, id: &SessionId) -> Option<Frame> {
        let c = self.calls.get_mut(id)?;
        (c.state == CallState::Bang).then(|| {
            c.state = CallState::Growl;
            Frame::new(FrameType::Growl).with(tag::SESSION_ID, *id)
        })
    }

    /// Callee: answer with `media`.
    pub fn answer(&mut self, id: &SessionId, media: &Media) -> Option<Frame> {
        let c = self.calls.get_mut(id)?;
        matches!(c.state, CallState::Bang | CallState::Growl).then(|| {
            c.state = CallState::Talk;
            media.add_to(Frame::new(FrameType::Talk).with(tag::SESSION_ID, *id))
        })
    }

    /// Either end: hang up (`None` when the session is not live).
    pub fn hangup(&mut self, id: &SessionId, reason: HangupReason) -> Option<Frame> {
        self.end(id, reason).then(|| hangup_frame(id, reason))
    }

    /// The `show umsg` rows: the messaging descriptor row, then the live calls oldest first.
    pub fn table(&self, now: SystemTime) -> Vec<Row> {
        let secs = |t: SystemTime| now.duration_since(t).map_or(0, |d| d.as_secs());
        let mut rows = vec![Row {
            from: self.keys.identity.clone(),
            to: "*".into(),
            state: "MSG",
            time: secs(self.created),
            id: session_id_text(&[0; 12]),
        }];
        let mut calls: Vec<_> = self.calls.iter().collect();
        calls.sort_by_key(|(id, c)| (c.created, **id));
        rows.extend(calls.into_iter().map(|(id, c)| Row {
            from: c.from.clone(),
            to: c.to.clone(),
            state: c.state.name(),
            time: secs(c.created),
            id: session_id_text(id),
        }));
        rows
    }
}

pub(crate) fn hangup_frame(id: &SessionId, reason: HangupReason) -> Frame {
    Frame::new(FrameType::Hangup)
        .with(tag::SESSION_ID, *id)
        .with(tag::REASON, [reason as u8])
}

/// The switch's call relay: routes BANGs by identity and forwards GROWL/TALK/HANGUP.
#[derive(Debug)]
pub struct CallRelay {
    media_addr: String,
    legs: HashMap<SessionId, (ConnId, ConnId)>,
}

impl CallRelay {
    /// A relay announcing `media_addr` (the switch's public media address).
    pub fn new(media_addr: String) -> Self {
        Self {
            media_addr,
            legs: HashMap::new(),
        }
    }

    /// Live call sessions (removed at HANGUP or when a leg's connection closes).
    pub fn len(&self) -> usize {
        self.legs.len()
    }

    /// Whether no call session is live.
    pub fn is_empty(&self) -> bool {
        self.legs.is_empty()
    }

    /// The (caller, callee) connections of a live call session.
    pub fn legs(&self, id: &SessionId) -> Option<(ConnId, ConnId)> {
        self.legs.get(id).copied()
    }

    /// A call frame from `conn`.
    pub fn on_frame(&mut self, conn: ConnId, f: &Frame, reg: &Registrar) -> Vec<Transmit> {
        let Ok(id) = exact::<12>(f, tag::SESSION_ID) else {
            return Vec::new();
        };
        let send = |conn, frame| Transmit {
            conn,
            frame,
            close: false,
        };
        if f.kind == FrameType::Bang {
            let from = f.get(tag::FROM);
            let Some(me) = reg.identity(conn) else {
                return vec![send(conn, hangup_frame(&id, HangupReason::Error))];
            };
            let from_ok = from
                .and_then(|f| core::str::from_utf8(f).ok())
                .is_some_and(|f| from_is_of(f, me));
            if !from_ok || self.legs.contains_key(&id) {
                return vec![send(conn, hangup_frame(&id, HangupReason::Error))];
            }
            let callee = text(f, tag::TO).ok().and_then(|to| reg.route(&to));
            let Some(callee) = callee else {
                return vec![send(conn, hangup_frame(&id, HangupReason::NoRoute))];
            };
            self.legs.insert(id, (conn, callee));
            let addr = self.media_addr.as_bytes().to_vec();
            let routed = Frame::new(FrameType::Routed)
                .with(tag::SESSION_ID, id)
                .with(tag::MEDIA_ADDR, addr.clone());
            let mut fwd = f.clone();
            fwd.fields.retain(|x| x.tag != tag::MEDIA_ADDR);
            return vec![
                send(conn, routed),
                send(callee, fwd.with(tag::MEDIA_ADDR, addr)),
            ];
        }
        let Some(&(caller, callee)) = self.legs.get(&id) else {
            return Vec::new();
        };
        let to = match f.kind {
            FrameType::Growl | FrameType::Talk if conn == callee => caller,
            FrameType::Hangup if conn == callee => caller,
            FrameType::Hangup if conn == caller => callee,
            _ => return Vec::new(),
        };
        if f.kind == FrameType::Hangup {
            self.legs.remove(&id);
        }
        vec![send(to, f.clone())]
    }

    /// `conn` closed: HANGUP(unavailable) to the other leg of each of its calls.
    pub fn disconnect(&mut self, conn: ConnId) -> Vec<Transmit> {
        let mut out = Vec::new();
        self.legs.retain(|id, (a, b)| {
            let other = if *a == conn {
                *b
            } else if *b == conn {
                *a
            } else {
                return true;
            };
            out.push(Transmit {
                conn: other,
                frame: hangup_frame(id, HangupReason::Unavailable),
                close: false,
            });
            false
        });
        out
    }
}
