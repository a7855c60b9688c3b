//! Registration (docs/umsg.md §4): the signed transcript, the client's REGISTER built from a
//! CHALLENGE, and the switch-side [`Registrar`] (challenge, verify with KPAK, newer
//! registration replaces the older, routing by the identity part of a dialled tel URI).

use std::collections::HashMap;

use cig_mikey_sakke::eccsi::{self, Kpak, Signature};
use cig_mikey_sakke::keystore::{KeyMaterial, check_identity};
use cig_mikey_sakke::mikey::KeyPeriod;
use rand_core::CryptoRngCore;

use crate::Error;
use crate::frame::{Frame, FrameType, tag};

/// Domain separation label of the registration transcript.
pub const REGISTER_LABEL: &[u8] = b"UMSG/1 register";

/// REFUSED reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RefuseReason {
    /// The ECCSI signature does not verify.
    BadSignature = 1,
    /// The key period is not the switch's current or next period.
    UnknownPeriod = 2,
    /// The identity is not a valid tel URI.
    BadIdentity = 3,
    /// A newer registration of the same identity replaced this one.
    Replaced = 4,
    /// A frame that needs a registration came before it.
    NotRegistered = 5,
}

/// The bytes the client signs: label ‖ nonce ‖ u16 len ‖ identity ‖ period.
pub fn transcript(nonce: &[u8; 32], identity: &str, period: KeyPeriod) -> Vec<u8> {
    let mut t = Vec::with_capacity(REGISTER_LABEL.len() + 32 + 2 + identity.len() + 7);
    t.extend_from_slice(REGISTER_LABEL);
    t.extend_from_slice(nonce);
    t.extend_from_slice(&(identity.len() as u16).to_be_bytes());
    t.extend_from_slice(identity.as_bytes());
    t.extend_from_slice(period.to_string().as_bytes());
    t
}

/// The routing identity of a dialled tel URI: up to the first `;` or `w` after `tel:`.
pub fn routing_identity(uri: &str) -> &str {
    let start = if uri.starts_with("tel:") { 4 } else { 0 };
    match uri[start..].find([';', 'w']) {
        Some(i) => &uri[..start + i],
        None => uri,
    }
}

/// Whether `from` may stand as the FROM of a BANG or MSG sent by the client registered as
/// `identity` (docs/umsg.md §5): its identity part ([`routing_identity`]) is `identity`, and
/// whatever follows it — an extension after `;` or `w`, as the gateway presents a routed
/// caller (`tel:+8888;101` from `tel:+8888`) — is printable ASCII without spaces.
pub fn from_is_of(from: &str, identity: &str) -> bool {
    routing_identity(from) == identity
        && from
            .as_bytes()
            .get(identity.len()..)
            .is_some_and(|ext| ext.iter().all(u8::is_ascii_graphic))
}

fn exact<const N: usize>(f: &Frame, t: u16) -> Result<[u8; N], Error> {
    f.get(t)
        .and_then(|v| <[u8; N]>::try_from(v).ok())
        .ok_or(Error::Frame("required field missing or of the wrong size"))
}

fn text(f: &Frame, t: u16) -> Result<&str, Error> {
    f.get(t)
        .and_then(|v| core::str::from_utf8(v).ok())
        .ok_or(Error::Frame("required text field missing or not UTF-8"))
}

/// Client side: the REGISTER answering `challenge`, signed with the key of the period of the
/// switch's time (or the next period when only that one is held).
pub fn register_frame(
    keys: &KeyMaterial,
    challenge: &Frame,
    rng: &mut impl CryptoRngCore,
) -> Result<Frame, Error> {
    if challenge.kind != FrameType::Challenge {
        return Err(Error::Frame("expected CHALLENGE"));
    }
    let nonce = exact::<32>(challenge, tag::NONCE)?;
    let time = u64::from_be_bytes(exact::<8>(challenge, tag::TIME)?);
    let current = KeyPeriod::from_unix(time).map_err(Error::Crypto)?;
    let period = [Some(current), current.next().ok()]
        .into_iter()
        .flatten()
        .find(|p| keys.period(*p).is_some())
        .ok_or_else(|| Error::Crypto(cig_mikey_sakke::Error::NoKey(current.to_string())))?;
    let signer = keys.signing_key(period).map_err(Error::Crypto)?;
    let sig = signer.sign(&transcript(&nonce, &keys.identity, period), rng);
    Ok(Frame::new(FrameType::Register)
        .with(tag::IDENTITY, keys.identity.as_bytes().to_vec())
        .with(tag::PERIOD, period.to_string().into_bytes())
        .with(tag::SIGNATURE, sig.as_bytes().to_vec()))
}

/// A connection as the switch core names it (the driver picks the numbers).
pub type ConnId = u64;

/// What the registrar wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Connection to send on.
    pub conn: ConnId,
    /// The frame.
    pub frame: Frame,
    /// Close the connection after sending.
    pub close: bool,
}

/// Switch side of registration: per-connection challenges and the identity → connection map.
#[derive(Debug)]
pub struct Registrar {
    kpak: Kpak,
    challenges: HashMap<ConnId, [u8; 32]>,
    by_identity: HashMap<String, ConnId>,
    by_conn: HashMap<ConnId, String>,
}

impl Registrar {
    /// A registrar verifying with the community `kpak`.
    pub fn new(kpak: Kpak) -> Self {
        Self {
            kpak,
            challenges: HashMap::new(),
            by_identity: HashMap::new(),
            by_conn: HashMap::new(),
        }
    }

    /// HELLO on `conn`: a CHALLENGE with a fresh nonce and the switch time `now_unix`.
    pub fn hello(&mut self, conn: ConnId, now_unix: u64, rng: &mut impl CryptoRngCore) -> Frame {
        let mut nonce = [0u8; 32];
        rng.fill_bytes(&mut nonce);
        self.challenges.insert(conn, nonce);
        Frame::new(FrameType::Challenge)
            .with(tag::NONCE, nonce)
            .with(tag::TIME, now_unix.to_be_bytes())
    }

    /// REGISTER on `conn`: verifies and registers, answering REGISTERED or REFUSED; a replaced
    /// older connection gets REFUSED(replaced) and is to be closed.
    pub fn register(&mut self, conn: ConnId, frame: &Frame, now_unix: u64) -> Vec<Transmit> {
        match self.check(conn, frame, now_unix) {
            Ok(identity) => {
                let mut out = Vec::new();
                if let Some(old) = self.by_identity.insert(identity.clone(), conn) {
                    if old != conn {
                        self.by_conn.remove(&old);
                        out.push(Transmit {
                            conn: old,
                            frame: refused(RefuseReason::Replaced),
                            close: true,
                        });
                    }
                }
                self.by_conn.insert(conn, identity.clone());
                out.push(Transmit {
                    conn,
                    frame: Frame::new(FrameType::Registered)
                        .with(tag::IDENTITY, identity.into_bytes())
                        .with(tag::TIME, now_unix.to_be_bytes()),
                    close: false,
                });
                out
            }
            Err(reason) => vec![Transmit {
                conn,
                frame: refused(reason),
                close: true,
            }],
        }
    }

    fn check(&mut self, conn: ConnId, f: &Frame, now_unix: u64) -> Result<String, RefuseReason> {
        // The nonce is single-use: taken out whatever the outcome.
        let nonce = self
            .challenges
            .remove(&conn)
            .ok_or(RefuseReason::NotRegistered)?;
        let identity = text(f, tag::IDENTITY).map_err(|_| RefuseReason::BadIdentity)?;
        check_identity(identity).map_err(|_| RefuseReason::BadIdentity)?;
        let period = text(f, tag::PERIOD)
            .ok()
            .and_then(|p| KeyPeriod::parse(p).ok())
            .ok_or(RefuseReason::UnknownPeriod)?;
        let current = KeyPeriod::from_unix(now_unix).map_err(|_| RefuseReason::UnknownPeriod)?;
        if period != current && current.next().ok() != Some(period) {
            return Err(RefuseReason::UnknownPeriod);
        }
        let sig = f
            .get(tag::SIGNATURE)
            .and_then(|s| Signature::from_bytes(s).ok())
            .ok_or(RefuseReason::BadSignature)?;
        eccsi::verify(
            &self.kpak,
            &period.identifier(identity),
            &transcript(&nonce, identity, period),
            &sig,
        )
        .map_err(|_| RefuseReason::BadSignature)?;
        Ok(identity.to_owned())
    }

    /// The connection registered for the routing identity of `dialled`.
    pub fn route(&self, dialled: &str) -> Option<ConnId> {
        self.by_identity.get(routing_identity(dialled)).copied()
    }

    /// The identity registered on `conn`.
    pub fn identity(&self, conn: ConnId) -> Option<&str> {
        self.by_conn.get(&conn).map(String::as_str)
    }

    /// Registered identities.
    pub fn len(&self) -> usize {
        self.by_conn.len()
    }

    /// Whether no identity is registered.
    pub fn is_empty(&self) -> bool {
        self.by_conn.is_empty()
    }

    /// `conn` closed: forget its challenge and registration.
    pub fn disconnect(&mut self, conn: ConnId) {
        self.challenges.remove(&conn);
        if let Some(id) = self.by_conn.remove(&conn) {
            self.by_identity.remove(&id);
        }
    }
}

fn refused(reason: RefuseReason) -> Frame {
    Frame::new(FrameType::Refused).with(tag::REASON, [reason as u8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use cig_mikey_sakke::kms::Community;
    use rand_core::OsRng;

    const NOW: u64 = 1_795_000_000; // 2026-11
    fn period() -> KeyPeriod {
        KeyPeriod::from_unix(NOW).unwrap()
    }

    fn material(c: &Community, id: &str, p: KeyPeriod) -> KeyMaterial {
        let keys = c.issue(id, p, &mut OsRng).unwrap();
        c.key_material(id, vec![keys], vec![], None)
    }

    fn reason(t: &[Transmit]) -> Option<u8> {
        t.iter()
            .find(|t| t.frame.kind == FrameType::Refused)
            .and_then(|t| t.frame.get(tag::REASON))
            .map(|r| r[0])
    }

    #[test]
    fn routing_identity_cuts_at_extension_mark() {
        assert_eq!(routing_identity("tel:+8888;101"), "tel:+8888");
        assert_eq!(routing_identity("tel:+8888w101"), "tel:+8888");
        assert_eq!(routing_identity("tel:+8888"), "tel:+8888");
    }

    #[test]
    fn from_is_the_identity_with_at_most_an_extension() {
        for ok in [
            "tel:+8888",
            "tel:+8888;101",
            "tel:+8888w101",
            "tel:+8888;sipp",
        ] {
            assert!(from_is_of(ok, "tel:+8888"), "{ok}");
        }
        for bad in [
            "tel:+88889",
            "tel:+888",
            "tel:+9999;101",
            "tel:+8888;1 01",
            "tel:+8888;\u{7f}",
            "tel:+8888;\r\nINJECTED",
            "tel:+8888;é",
            "",
        ] {
            assert!(!from_is_of(bad, "tel:+8888"), "{bad:?}");
        }
    }

    #[test]
    fn registration_ok_then_newer_replaces_older() {
        let c = Community::generate("example.org", &mut OsRng).unwrap();
        let a = material(&c, "tel:+8888", period());
        let mut reg = Registrar::new(c.kpak);
        for conn in [1, 2] {
            let ch = reg.hello(conn, NOW, &mut OsRng);
            let r = register_frame(&a, &ch, &mut OsRng).unwrap();
            let out = reg.register(conn, &r, NOW);
            assert_eq!(out.last().unwrap().frame.kind, FrameType::Registered);
            assert_eq!(reg.route("tel:+8888w12"), Some(conn));
        }
        assert_eq!(reg.identity(1), None);
        // The nonce is single-use.
        let ch = reg.hello(3, NOW, &mut OsRng);
        let r = register_frame(&a, &ch, &mut OsRng).unwrap();
        reg.register(3, &r, NOW);
        assert_eq!(
            reason(&reg.register(3, &r, NOW)),
            Some(RefuseReason::NotRegistered as u8)
        );
    }

    #[test]
    fn wrong_key_and_unknown_period_refused() {
        let c = Community::generate("example.org", &mut OsRng).unwrap();
        let other = Community::generate("example.org", &mut OsRng).unwrap();
        let forged = material(&other, "tel:+8888", period());
        let mut reg = Registrar::new(c.kpak);
        let ch = reg.hello(1, NOW, &mut OsRng);
        let r = register_frame(&forged, &ch, &mut OsRng).unwrap();
        assert_eq!(
            reason(&reg.register(1, &r, NOW)),
            Some(RefuseReason::BadSignature as u8)
        );
        assert_eq!(reg.route("tel:+8888"), None);
        // A key of an old period: signed correctly, refused for the period.
        let old = KeyPeriod::new(2026, 1).unwrap();
        let stale = material(&c, "tel:+8888", old);
        let ch = reg.hello(2, NOW, &mut OsRng);
        let nonce: [u8; 32] = ch.get(tag::NONCE).unwrap().try_into().unwrap();
        let sig = stale
            .signing_key(old)
            .unwrap()
            .sign(&transcript(&nonce, "tel:+8888", old), &mut OsRng);
        let r = Frame::new(FrameType::Register)
            .with(tag::IDENTITY, b"tel:+8888".to_vec())
            .with(tag::PERIOD, b"2026-01".to_vec())
            .with(tag::SIGNATURE, sig.as_bytes().to_vec());
        assert_eq!(
            reason(&reg.register(2, &r, NOW)),
            Some(RefuseReason::UnknownPeriod as u8)
        );
        // The client refuses to sign when it holds no key for the switch's period.
        assert!(register_frame(&stale, &ch, &mut OsRng).is_err());
    }
}
