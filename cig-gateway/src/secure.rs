//! The secure side as the engine sees it: a small trait over the UMSG client core, so the
//! engine runs against an in-memory [`ClientSession`] in tests and against the TLS driver's
//! session (behind its lock) in cig-server; and [`prepare`] + [`adopt`], which carry out the
//! engine's [`Dial`] requests: the I_MESSAGE built from the key material alone (no lock), then
//! the session registered on the live client session.

use std::time::SystemTime;

use cig_mikey_sakke::kdf::SrtpKeys;
use cig_mikey_sakke::keystore::KeyMaterial;
use cig_umsg::call::{CallState, HangupReason, Media, PreparedCall, SessionId};
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

/// The costly half of an [`Action::Dial`](crate::engine::Action::Dial), run where no lock is
/// held: the BANG to `d.to` (FROM `d.from` or our registered identity) with a fresh I_MESSAGE
/// built from our key material — SAKKE encapsulation and ECCSI signature, about a millisecond.
pub fn prepare(keys: &KeyMaterial, d: &Dial, now: SystemTime) -> Result<PreparedCall, Error> {
    Ok(PreparedCall::new(
        keys,
        d.from.as_deref(),
        &d.to,
        &d.offer,
        now,
        &mut OsRng,
    )?)
}

/// The cheap half, on the live session: the prepared call is registered and its BANG queued;
/// the session id and SRTP keys for [`Engine::on_dialled`](crate::engine::Engine::on_dialled).
pub fn adopt(
    session: &mut ClientSession,
    call: PreparedCall,
    now: SystemTime,
) -> Result<(SessionId, SrtpKeys), Error> {
    if !session.is_registered() {
        return Err(Error::SwitchUnavailable);
    }
    let keys = call.keys().clone();
    let (id, frame) = session.calls.adopt(call, now)?;
    session.send(frame);
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
