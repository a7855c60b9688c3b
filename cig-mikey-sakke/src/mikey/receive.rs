//! Receiving an I_MESSAGE: freshness (clock-skew window), the ECCSI signature against the
//! sender's identity for the period named in T, replay protection, then SAKKE decapsulation and
//! SRTP key derivation — in that order.
//!
//! Decapsulation takes a [`VerifiedIMessage`], which only [`verify`] creates: no SAKKE work can
//! happen on a message whose signature has not been checked.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Error;
use crate::eccsi::{self, Kpak};
use crate::kdf::{self, SrtpKeys};
use crate::sakke::{self, EncapsulatedData, KmsPublicKey, Rsk, Ssv};

use super::payload::{IMessage, SAKKE_PARAMS_1, role};
use super::profile::{KeyPeriod, NTP_UNIX_OFFSET, Profile};

/// An I_MESSAGE whose ECCSI signature has been verified against `sender_id`.
#[derive(Debug, Clone)]
pub struct VerifiedIMessage {
    msg: IMessage,
    sender_id: Vec<u8>,
}

/// Verifies the ECCSI signature of `msg` (over every byte up to and including the SIGN
/// payload's type/length field) by `sender_id` under `kpak`.
pub fn verify(msg: IMessage, kpak: &Kpak, sender_id: &[u8]) -> Result<VerifiedIMessage, Error> {
    eccsi::verify(kpak, sender_id, msg.signed_bytes(), &msg.signature)?;
    Ok(VerifiedIMessage {
        msg,
        sender_id: sender_id.to_vec(),
    })
}

impl VerifiedIMessage {
    /// The verified message.
    pub fn message(&self) -> &IMessage {
        &self.msg
    }

    /// The identifier the signature was verified against.
    pub fn sender_id(&self) -> &[u8] {
        &self.sender_id
    }

    /// Decapsulates the SSV (RFC 6508 §6.2.2) with the receiver's identifier and RSK.
    pub fn decapsulate(
        &self,
        zpub: &KmsPublicKey,
        receiver_id: &[u8],
        rsk: &Rsk,
    ) -> Result<Ssv, Error> {
        if self.msg.sakke.params != SAKKE_PARAMS_1 {
            return Err(Error::Unsupported("SAKKE parameter set"));
        }
        let sed = EncapsulatedData::from_bytes(&self.msg.sakke.sed)?;
        sakke::decapsulate(zpub, receiver_id, rsk, &sed)
    }

    /// The SRTP master key and salt of crypto session `cs_id`, with the SSV as TGK.
    pub fn srtp_keys(&self, ssv: &Ssv, cs_id: u8) -> Result<SrtpKeys, Error> {
        let h = &self.msg.header;
        kdf::srtp_keys(h.prf, ssv.as_bytes(), cs_id, h.csb_id, &self.msg.rand)
    }
}

/// The identifier the sender signed with, as the message names it: for RFC 6509 the period of
/// T joined with the IDRi URI, for TS 33.180 the IDRuidi UID.
pub fn sender_identity(msg: &IMessage) -> Result<Vec<u8>, Error> {
    party_identity(msg, role::INITIATOR, role::UID_INITIATOR)
}

/// The identifier the SSV was encapsulated to, as the message names it (see
/// [`sender_identity`]).
pub fn receiver_identity(msg: &IMessage) -> Result<Vec<u8>, Error> {
    party_identity(msg, role::RESPONDER, role::UID_RESPONDER)
}

fn party_identity(msg: &IMessage, uri_role: u8, uid_role: u8) -> Result<Vec<u8>, Error> {
    match Profile::from_id_scheme(msg.sakke.id_scheme)? {
        Profile::Rfc6509 => {
            let period = KeyPeriod::from_ntp_seconds(msg.ntp_seconds())?;
            let idr = msg.idr(uri_role).ok_or(Error::NoKey("IDR URI".into()))?;
            let uri = core::str::from_utf8(&idr.data).map_err(|_| Error::Encoding("IDR URI"))?;
            if uri.contains('\0') {
                return Err(Error::Encoding("IDR URI"));
            }
            Ok(period.identifier(uri))
        }
        Profile::Mcx => {
            let idr = msg.idr(uid_role).ok_or(Error::NoKey("IDR UID".into()))?;
            if idr.data.len() != 32 {
                return Err(Error::Encoding("IDR UID"));
            }
            Ok(idr.data.clone())
        }
    }
}

/// NTP-UTC seconds (since 1900) of a system time.
pub fn ntp_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .saturating_add(NTP_UNIX_OFFSET)
}

/// The 64-bit NTP-UTC timestamp of a system time.
pub fn ntp_timestamp(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs().saturating_add(NTP_UNIX_OFFSET) & 0xffff_ffff;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// Receiving policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// How far T may lie from the receiver's clock, either way.
    pub max_skew: Duration,
    /// Most (T, RAND, CSB ID) entries remembered; when full, new messages are refused.
    pub replay_capacity: usize,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            max_skew: Duration::from_secs(300),
            replay_capacity: 65_536,
        }
    }
}

/// What the receiver needs to know: the community's public keys and its own RSKs.
pub trait KeyLookup {
    /// The KPAK of the sender's community.
    fn kpak(&self) -> &Kpak;
    /// The SAKKE KMS public key Z.
    fn zpub(&self) -> &KmsPublicKey;
    /// The RSK for one of our own identifiers, if we hold it.
    fn rsk(&self, receiver_id: &[u8]) -> Option<&Rsk>;
}

/// An accepted I_MESSAGE: verified message, SSV, and SRTP keys for every crypto session.
#[derive(Debug)]
pub struct Accepted {
    /// The verified message.
    pub message: VerifiedIMessage,
    /// The identifier it was encapsulated to.
    pub receiver_id: Vec<u8>,
    /// The shared secret value (the TGK).
    pub ssv: Ssv,
    /// `(cs_id, keys)` per crypto session of the CS ID map.
    pub srtp: Vec<(u8, SrtpKeys)>,
}

impl Accepted {
    /// Decapsulates a verified message encapsulated to `receiver_id` (one of ours) and derives
    /// the SRTP keys of every crypto session of its CS ID map.
    fn decapsulate(
        message: VerifiedIMessage,
        receiver_id: Vec<u8>,
        keys: &impl KeyLookup,
    ) -> Result<Self, Error> {
        let rsk = keys
            .rsk(&receiver_id)
            .ok_or_else(|| Error::NoKey(String::from_utf8_lossy(&receiver_id).into_owned()))?;
        let ssv = message.decapsulate(keys.zpub(), &receiver_id, rsk)?;
        let srtp = message
            .message()
            .header
            .cs_map
            .cs_ids()
            .into_iter()
            .map(|cs| message.srtp_keys(&ssv, cs).map(|k| (cs, k)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            message,
            receiver_id,
            ssv,
            srtp,
        })
    }
}

/// An I_MESSAGE that passed [`Receiver::check`]: parsed, T inside the skew window, not a replay
/// of a recorded message, encapsulated to an identifier we hold the RSK of. Its signature is not
/// checked yet.
#[derive(Debug, Clone)]
pub struct Checked {
    msg: IMessage,
    sender_id: Vec<u8>,
    receiver_id: Vec<u8>,
}

impl Checked {
    /// The parsed message (not yet authenticated).
    pub fn message(&self) -> &IMessage {
        &self.msg
    }

    /// The identifier the message says it is signed by (not yet verified).
    pub fn sender_id(&self) -> &[u8] {
        &self.sender_id
    }

    /// The costly part, needing no receiver state: verifies the ECCSI signature, then (only
    /// if it holds) decapsulates the SSV and derives the SRTP keys. Record the result with
    /// [`Receiver::record`] before using it: a replay arriving while this runs is only refused
    /// there.
    pub fn accept(self, keys: &impl KeyLookup) -> Result<Accepted, Error> {
        let verified = verify(self.msg, keys.kpak(), &self.sender_id)?;
        Accepted::decapsulate(verified, self.receiver_id, keys)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ReplayKey {
    timestamp: u64,
    csb_id: u32,
    rand: Vec<u8>,
}

/// Remembers (T, RAND, CSB ID) of accepted messages for as long as their T is inside the skew
/// window; older entries are dropped because T alone then refuses them.
#[derive(Debug)]
pub struct ReplayCache {
    seen: HashMap<ReplayKey, u64>,
    capacity: usize,
}

impl ReplayCache {
    /// An empty cache holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: HashMap::new(),
            capacity,
        }
    }

    fn key(msg: &IMessage) -> ReplayKey {
        ReplayKey {
            timestamp: msg.timestamp,
            csb_id: msg.header.csb_id,
            rand: msg.rand.clone(),
        }
    }

    /// Whether `msg` was recorded before.
    pub fn contains(&self, msg: &IMessage) -> bool {
        self.seen.contains_key(&Self::key(msg))
    }

    /// Drops entries whose T (NTP seconds) is before `oldest_ntp_secs`.
    pub fn purge(&mut self, oldest_ntp_secs: u64) {
        self.seen.retain(|_, t| *t >= oldest_ntp_secs);
    }

    /// Records `msg`; refuses a replay or a full cache.
    pub fn insert(&mut self, msg: &IMessage) -> Result<(), Error> {
        if self.seen.len() >= self.capacity {
            return Err(Error::Replay);
        }
        match self.seen.insert(Self::key(msg), msg.ntp_seconds()) {
            Some(_) => Err(Error::Replay),
            None => Ok(()),
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// The receiving side of MIKEY-SAKKE: policy plus replay cache (sans-IO: the caller passes the
/// current time).
#[derive(Debug)]
pub struct Receiver {
    config: ReceiverConfig,
    cache: ReplayCache,
    /// The `oldest` of the last purge (NTP seconds): the cache is purged at most once a second.
    purged_to: u64,
}

impl Receiver {
    /// A receiver with `config`.
    pub fn new(config: ReceiverConfig) -> Self {
        Self {
            config,
            cache: ReplayCache::new(config.replay_capacity),
            purged_to: 0,
        }
    }

    /// Checks T against `now` (NTP seconds) and the skew window.
    pub fn check_time(&self, msg: &IMessage, now_ntp_secs: u64) -> Result<(), Error> {
        if msg.ntp_seconds().abs_diff(now_ntp_secs) > self.config.max_skew.as_secs() {
            return Err(Error::Timestamp);
        }
        Ok(())
    }

    /// The cheap checks, before any public-key work: parses `bytes`, checks T against `now`
    /// and the skew window, refuses a message already recorded against replay, and finds the
    /// sender's and receiver's identifiers and our RSK for the latter. Nothing is recorded:
    /// [`Checked::accept`] does the costly part (no receiver state needed, so it can run
    /// outside whatever lock guards the receiver), then [`Self::record`] records it.
    pub fn check(
        &self,
        bytes: &[u8],
        now: SystemTime,
        keys: &impl KeyLookup,
    ) -> Result<Checked, Error> {
        let msg = IMessage::parse(bytes)?;
        self.check_time(&msg, ntp_seconds(now))?;
        if self.cache.contains(&msg) {
            return Err(Error::Replay);
        }
        let sender_id = sender_identity(&msg)?;
        let receiver_id = receiver_identity(&msg)?;
        if keys.rsk(&receiver_id).is_none() {
            return Err(Error::NoKey(
                String::from_utf8_lossy(&receiver_id).into_owned(),
            ));
        }
        Ok(Checked {
            msg,
            sender_id,
            receiver_id,
        })
    }

    /// Records a verified message against replay (entries older than the skew window at `now`
    /// are dropped first); refuses a replay or a full cache. Only a [`VerifiedIMessage`] can be
    /// recorded, so a forged message never changes the receiver's state.
    pub fn record(&mut self, msg: &VerifiedIMessage, now: SystemTime) -> Result<(), Error> {
        let oldest = ntp_seconds(now).saturating_sub(self.config.max_skew.as_secs());
        // A purge walks every entry: once per second of `now` is enough (an entry up to a
        // second past the window is still refused by the time check first).
        if oldest != self.purged_to || self.cache.len() >= self.config.replay_capacity {
            self.cache.purge(oldest);
            self.purged_to = oldest;
        }
        self.cache.insert(msg.message())
    }

    /// Parses, checks freshness, verifies the signature, records the message against replay,
    /// decapsulates and derives the SRTP keys — [`Self::check`], [`verify`], [`Self::record`]
    /// and the decapsulation in one step. On error, [`super::ErrorCode::for_error`] gives the
    /// MIKEY error code to answer with.
    pub fn receive(
        &mut self,
        bytes: &[u8],
        now: SystemTime,
        keys: &impl KeyLookup,
    ) -> Result<Accepted, Error> {
        let checked = self.check(bytes, now, keys)?;
        let verified = verify(checked.msg, keys.kpak(), &checked.sender_id)?;
        self.record(&verified, now)?;
        Accepted::decapsulate(verified, checked.receiver_id, keys)
    }

    /// Messages currently remembered against replay.
    pub fn replay_entries(&self) -> usize {
        self.cache.len()
    }
}
