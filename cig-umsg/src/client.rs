//! The client core (docs/umsg.md §3.1, §4): registration on a fresh connection, keepalive
//! and answer timers from `now`, and dispatch of call and message frames to [`Calls`] and
//! [`Messenger`]. With deferred verification ([`ClientSession::set_deferred_verification`]),
//! an incoming BANG's ECCSI verification and SAKKE decapsulation are handed out as jobs
//! ([`ClientSession::poll_verification`]) for the driver to run off its frame reader; frames
//! for a session still being verified are held and applied in order once it is adopted
//! ([`ClientSession::verified`]).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use cig_mikey_sakke::keystore::KeyMaterial;
use rand_core::CryptoRngCore;

use crate::Error;
use crate::call::{Calls, HangupReason, IncomingBang, SessionId, VerifiedBang, hangup_frame};
use crate::frame::{Frame, FrameType, tag};
use crate::message::{AckStatus, MessageId, Messenger, Received, ack_status};
use crate::register::register_frame;

/// Idle time after which the client sends PING.
pub const PING_AFTER: Duration = Duration::from_secs(30);
/// Time after a PING without any frame before the connection counts as lost.
pub const PONG_WITHIN: Duration = Duration::from_secs(10);
/// Most incoming BANGs being verified at once (deferred verification); more are refused with
/// HANGUP(unavailable) until some are done.
pub const MAX_VERIFYING: usize = 1024;
/// Most frames held for one session being verified (the switch sends an incoming session
/// nothing but its HANGUP; more are dropped).
const HELD_PER_SESSION: usize = 4;

/// What happened, for the application.
#[derive(Debug)]
pub enum Event {
    /// REGISTERED received.
    Registered,
    /// REFUSED with a reason code: the driver closes the connection.
    Refused(u8),
    /// A call frame changed a session (incoming BANG, ROUTED, GROWL, TALK, HANGUP), or the
    /// answer timer ended a dialled call ("no answer": state HANGUP, reason timeout, and a
    /// HANGUP(timeout) queued for the switch).
    Call(SessionId),
    /// A BANG was refused (verification failed); HANGUP(error) was queued.
    CallRefused(Error),
    /// A new text message.
    Message(Received),
    /// A MSG_ACK for one of our messages.
    Acked(MessageId, AckStatus),
    /// No answer to a PING in time: the driver closes and reconnects.
    ConnectionLost,
}

/// The client core of one connection.
#[derive(Debug)]
pub struct ClientSession {
    keys: KeyMaterial,
    registered: bool,
    /// Call sessions.
    pub calls: Calls,
    /// Messaging.
    pub messenger: Messenger,
    out: VecDeque<Frame>,
    events: VecDeque<Event>,
    last_rx: SystemTime,
    ping_sent: Option<SystemTime>,
    /// Deferred verification is on.
    defer: bool,
    /// BANGs checked and waiting to be taken by [`Self::poll_verification`].
    jobs: VecDeque<IncomingBang>,
    /// Sessions being verified, with the frames that arrived for them meanwhile.
    verifying: HashMap<SessionId, Vec<Frame>>,
}

impl ClientSession {
    /// A session on a new connection at `now`: HELLO is queued.
    pub fn new(keys: KeyMaterial, now: SystemTime) -> Self {
        let mut out = VecDeque::new();
        out.push_back(Frame::new(FrameType::Hello).with(tag::INFO, b"cig-umsg".to_vec()));
        Self {
            calls: Calls::new(keys.clone(), now),
            messenger: Messenger::new(keys.clone()),
            keys,
            registered: false,
            out,
            events: VecDeque::new(),
            last_rx: now,
            ping_sent: None,
            defer: false,
            jobs: VecDeque::new(),
            verifying: HashMap::new(),
        }
    }

    /// Defers the costly part of incoming BANGs (off by default: [`Self::handle_frame`] then
    /// verifies and decapsulates inline). When on, a BANG that passes the cheap checks becomes
    /// a job for [`Self::poll_verification`]; run it ([`IncomingBang::verify`]) anywhere and
    /// give the result back with [`Self::verified`].
    pub fn set_deferred_verification(&mut self, on: bool) {
        self.defer = on;
    }

    /// The next incoming BANG to verify (deferred verification).
    pub fn poll_verification(&mut self) -> Option<IncomingBang> {
        self.jobs.pop_front()
    }

    /// Incoming BANGs checked but not yet adopted (deferred verification).
    pub fn verifying(&self) -> usize {
        self.verifying.len()
    }

    /// The outcome of a job from [`Self::poll_verification`]: the session is adopted
    /// ([`Event::Call`]) and the frames held for it are applied in order, or it is refused
    /// (HANGUP(error) queued, [`Event::CallRefused`]) and they are dropped. An outcome for a
    /// session not being verified here is ignored.
    pub fn verified(&mut self, v: VerifiedBang, now: SystemTime) {
        let id = *v.id();
        let Some(held) = self.verifying.remove(&id) else {
            return;
        };
        match self.calls.adopt_incoming(v, now) {
            Ok(id) => {
                self.events.push_back(Event::Call(id));
                for f in held {
                    self.call_frame(&f, now);
                }
            }
            Err(e) => self.refuse(&id, HangupReason::Error, e),
        }
    }

    /// A job from [`Self::poll_verification`] that will not finish (its worker failed): the
    /// session is refused as in [`Self::verified`].
    pub fn verification_lost(&mut self, id: &SessionId) {
        if self.verifying.remove(id).is_some() {
            self.refuse(
                id,
                HangupReason::Error,
                Error::Frame("incoming call verification failed"),
            );
        }
    }

    fn refuse(&mut self, id: &SessionId, reason: HangupReason, e: Error) {
        self.out.push_back(hangup_frame(id, reason));
        self.events.push_back(Event::CallRefused(e));
    }

    /// A call frame: BANGs checked (then verified inline, or handed out as a job), frames for
    /// sessions being verified held, the others applied.
    fn call_frame(&mut self, f: &Frame, now: SystemTime) {
        let id = f
            .get(tag::SESSION_ID)
            .and_then(|v| <SessionId>::try_from(v).ok());
        if let Some(held) = id.and_then(|id| self.verifying.get_mut(&id)) {
            if f.kind == FrameType::Bang {
                self.out
                    .extend(id.map(|id| hangup_frame(&id, HangupReason::Error)));
                self.events
                    .push_back(Event::CallRefused(Error::Frame("session id in use")));
            } else if held.len() < HELD_PER_SESSION {
                held.push(f.clone());
            }
            return;
        }
        if let (FrameType::Bang, true, Some(id)) = (f.kind, self.defer, id) {
            if self.verifying.len() >= MAX_VERIFYING {
                return self.refuse(
                    &id,
                    HangupReason::Unavailable,
                    Error::Frame("too many incoming calls being verified"),
                );
            }
            match self.calls.check_bang(f, now) {
                Ok(job) => {
                    self.verifying.insert(id, Vec::new());
                    self.jobs.push_back(job);
                }
                Err(e) => self.refuse(&id, HangupReason::Error, e),
            }
            return;
        }
        match self.calls.on_frame(f, now) {
            Ok(_) => self.events.extend(id.map(Event::Call)),
            Err((e, reply)) => {
                self.out.extend(reply);
                self.events.push_back(Event::CallRefused(e));
            }
        }
    }

    /// Whether REGISTERED was received.
    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// Queues a frame made by [`Calls`] or [`Messenger`].
    pub fn send(&mut self, f: Frame) {
        self.out.push_back(f);
    }

    /// A frame from the switch. An error is a protocol error: close the connection.
    pub fn handle_frame(
        &mut self,
        f: &Frame,
        now: SystemTime,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), Error> {
        self.last_rx = now;
        self.ping_sent = None;
        match f.kind {
            FrameType::Challenge => self.out.push_back(register_frame(&self.keys, f, rng)?),
            FrameType::Registered => {
                self.registered = true;
                self.events.push_back(Event::Registered);
            }
            FrameType::Refused => {
                let r = f.get(tag::REASON).and_then(|r| r.first().copied());
                self.registered = false;
                self.events.push_back(Event::Refused(r.unwrap_or(0)));
            }
            FrameType::Ping => self.out.push_back(Frame::new(FrameType::Pong)),
            FrameType::Pong => {}
            FrameType::Bang
            | FrameType::Routed
            | FrameType::Growl
            | FrameType::Talk
            | FrameType::Hangup => self.call_frame(f, now),
            FrameType::Msg => {
                let (ack, got) = self.messenger.handle_msg(f, now)?;
                self.out.extend(ack);
                self.events.extend(got.map(Event::Message));
            }
            FrameType::MsgAck => {
                let (id, s) = ack_status(f).ok_or(Error::Frame("malformed MSG_ACK"))?;
                self.events.push_back(Event::Acked(id, s));
            }
            FrameType::Hello | FrameType::Register => {
                return Err(Error::Frame("client frame from the switch"));
            }
        }
        Ok(())
    }

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Frame> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn keepalive_at(&self) -> SystemTime {
        match self.ping_sent {
            Some(t) => t + PONG_WITHIN,
            None => self.last_rx + PING_AFTER,
        }
    }

    /// When [`Self::handle_timeout`] wants to run next (keepalive, or a dialled call's answer
    /// deadline).
    pub fn poll_timeout(&self) -> SystemTime {
        let keepalive = self.keepalive_at();
        self.calls
            .poll_timeout()
            .map_or(keepalive, |t| t.min(keepalive))
    }

    /// Timers: PING after idle time, connection lost when the PING goes unanswered, dialled
    /// calls not answered in time hung up with reason timeout (an [`Event::Call`] each).
    pub fn handle_timeout(&mut self, now: SystemTime) {
        for (id, f) in self.calls.handle_timeout(now) {
            self.out.push_back(f);
            self.events.push_back(Event::Call(id));
        }
        if now < self.keepalive_at() {
            return;
        }
        if self.ping_sent.is_some() {
            self.events.push_back(Event::ConnectionLost);
            self.ping_sent = None;
            self.last_rx = now;
        } else {
            self.out.push_back(Frame::new(FrameType::Ping));
            self.ping_sent = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::{StoreLimits, SwitchCore};
    use cig_mikey_sakke::kms::Community;
    use cig_mikey_sakke::mikey::KeyPeriod;
    use rand_core::OsRng;

    #[test]
    fn registers_through_switch_and_keepalive_timers() {
        let now = SystemTime::now();
        let unix = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let c = Community::generate("example.org", &mut OsRng).unwrap();
        let p = KeyPeriod::from_unix(unix).unwrap();
        let k = c.key_material(
            "tel:+1",
            vec![c.issue("tel:+1", p, &mut OsRng).unwrap()],
            vec![],
            None,
        );
        let mut sw = SwitchCore::new(c.kpak, "192.0.2.1:1".into(), StoreLimits::default());
        let mut cl = ClientSession::new(k, now);
        while let Some(f) = cl.poll_transmit() {
            for t in sw.handle(7, &f, unix, &mut OsRng) {
                cl.handle_frame(&t.frame, now, &mut OsRng).unwrap();
            }
        }
        assert!(cl.is_registered());
        assert!(matches!(cl.poll_event(), Some(Event::Registered)));
        // Idle: PING at +30 s; unanswered: lost at +40 s.
        let t1 = now + PING_AFTER;
        assert_eq!(cl.poll_timeout(), t1);
        cl.handle_timeout(t1 - Duration::from_secs(1));
        assert!(cl.poll_transmit().is_none());
        cl.handle_timeout(t1);
        assert_eq!(cl.poll_transmit().map(|f| f.kind), Some(FrameType::Ping));
        cl.handle_timeout(t1 + PONG_WITHIN);
        assert!(matches!(cl.poll_event(), Some(Event::ConnectionLost)));
    }
}
