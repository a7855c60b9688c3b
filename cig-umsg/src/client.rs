//! The client core (docs/umsg.md §3.1, §4): registration on a fresh connection, keepalive
//! and answer timers from `now`, and dispatch of call and message frames to [`Calls`] and
//! [`Messenger`].

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use cig_mikey_sakke::keystore::KeyMaterial;
use rand_core::CryptoRngCore;

use crate::Error;
use crate::call::{Calls, SessionId};
use crate::frame::{Frame, FrameType, tag};
use crate::message::{AckStatus, MessageId, Messenger, Received, ack_status};
use crate::register::register_frame;

/// Idle time after which the client sends PING.
pub const PING_AFTER: Duration = Duration::from_secs(30);
/// Time after a PING without any frame before the connection counts as lost.
pub const PONG_WITHIN: Duration = Duration::from_secs(10);

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
            | FrameType::Hangup => {
                let id = f
                    .get(tag::SESSION_ID)
                    .and_then(|v| <SessionId>::try_from(v).ok());
                match self.calls.on_frame(f, now) {
                    Ok(_) => self.events.extend(id.map(Event::Call)),
                    Err((e, reply)) => {
                        self.out.extend(reply);
                        self.events.push_back(Event::CallRefused(e));
                    }
                }
            }
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
