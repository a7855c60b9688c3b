//! The secure side as the engine sees it: a small trait over the UMSG client core, so the
//! engine runs against an in-memory [`ClientSession`] in tests and against the TLS driver's
//! session (behind its lock) in cig-server; and [`dial`], which carries out the engine's
//! [`Dial`] requests on a session.

use std::time::SystemTime;

use cig_mikey_sakke::kdf::SrtpKeys;
use cig_umsg::call::{CallState, HangupReason, Media, SessionId};
use cig_umsg::client::ClientSession;
use rand_core::OsRng;

use crate::Error;
use crate::engine::Dial;

/// What the engine reads of one UMSG call session.
#[derive(Debug, Clone)]
pub struct SecureCall {
    /// FROM (the caller's tel URI).
    pub from: String,
    /// TO as dialled.
    pub to: String,
    /// The session's state.
    pub state: CallState,
    /// The SRTP master key and salt of the call (from the verified BANG or our own I_MESSAGE).
    pub keys: SrtpKeys,
    /// The far end's media offer (incoming BANG) or answer (TALK).
    pub remote_media: Option<Media>,
    /// The switch relay's media address for our leg.
    pub media_addr: Option<String>,
    /// Why it ended, once it has.
    pub reason: Option<HangupReason>,
}

/// Carries out an [`Action::Dial`](crate::engine::Action::Dial): a BANG to `d.to` with a
/// fresh I_MESSAGE is queued on `session`; the new session id and its SRTP keys, for
/// [`Engine::on_dialled`](crate::engine::Engine::on_dialled).
pub fn dial(
    session: &mut ClientSession,
    d: &Dial,
    now: SystemTime,
) -> Result<(SessionId, SrtpKeys), Error> {
    if !session.is_registered() {
        return Err(Error::SwitchUnavailable);
    }
    let (id, frame) = session.calls.dial(&d.to, &d.offer, now, &mut OsRng)?;
    session.send(frame);
    let keys = session
        .calls
        .get(&id)
        .map(|c| c.keys.clone())
        .ok_or(Error::SwitchUnavailable)?;
    Ok((id, keys))
}

/// The UMSG call operations the engine needs on a live session.
pub trait Secure {
    /// GROWL for an incoming session.
    fn growl(&mut self, id: &SessionId);
    /// TALK for an incoming session.
    fn answer(&mut self, id: &SessionId, media: &Media);
    /// HANGUP with `reason` (nothing if the session already ended).
    fn hangup(&mut self, id: &SessionId, reason: HangupReason);
    /// The session, if it exists.
    fn call(&self, id: &SessionId) -> Option<SecureCall>;
}

impl Secure for ClientSession {
    fn growl(&mut self, id: &SessionId) {
        if let Some(f) = self.calls.growl(id) {
            self.send(f);
        }
    }

    fn answer(&mut self, id: &SessionId, media: &Media) {
        if let Some(f) = self.calls.answer(id, media) {
            self.send(f);
        }
    }

    fn hangup(&mut self, id: &SessionId, reason: HangupReason) {
        if let Some(f) = self.calls.hangup(id, reason) {
            self.send(f);
        }
    }

    fn call(&self, id: &SessionId) -> Option<SecureCall> {
        self.calls.get(id).map(|c| SecureCall {
            from: c.from.clone(),
            to: c.to.clone(),
            state: c.state,
            keys: c.keys.clone(),
            remote_media: c.remote_media.clone(),
            media_addr: c.media_addr.clone(),
            reason: c.reason,
        })
    }
}
