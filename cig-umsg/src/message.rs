//! Text messages (docs/umsg.md §6): body encoding, per-message encryption (fresh SSV in an
//! I_MESSAGE to the recipient, ChaCha20-Poly1305 under a key derived from it), receiving with
//! verification before decapsulation, acknowledgements and duplicate suppression by id.
//!
//! Acknowledgements are immediate by default (MSG_ACK delivered as soon as a message
//! decrypts). With [`Messenger::set_deferred_acks`] the application acknowledges instead
//! ([`Messenger::ack`]) once the message is safe on its side, or releases it
//! ([`Messenger::release`]) so that the switch's next re-send is shown again; re-sends of a
//! message still awaiting the application are not shown twice.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, SystemTime};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use cig_mikey_sakke::kdf::{self, CONST_ENCR, CS_ID_MESSAGE, Prf};
use cig_mikey_sakke::keystore::KeyMaterial;
use cig_mikey_sakke::mikey::{self, IMessage, KeyLookup};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::Error;
use crate::call::{Keys, imessage_to};
use crate::frame::{Field, Frame, FrameType, decode_fields, encode_fields, tag};
use crate::register::routing_identity;

/// A 16-byte message id.
pub type MessageId = [u8; 16];
/// Most attachments in one body.
pub const MAX_ATTACHMENTS: usize = 16;
/// How far a message's I_MESSAGE time T may lie ahead of the receiver's clock (MIKEY's
/// window; there is no limit into the past, see docs/umsg.md §6.2).
pub const MAX_AHEAD: Duration = Duration::from_secs(300);
/// Message ids remembered for duplicate suppression; also the most messages awaiting the
/// application's acknowledgement (beyond it new messages are left to the switch's re-sends).
pub const SEEN_IDS: usize = 4096;

/// An attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// File name.
    pub name: String,
    /// Content type.
    pub content_type: String,
    /// Bytes.
    pub data: Vec<u8>,
}

/// A message body: text and attachments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Body {
    /// Text.
    pub text: String,
    /// Attachments in order.
    pub attachments: Vec<Attachment>,
}

impl Body {
    /// The plaintext TLV encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut fields = vec![Field {
            tag: tag::BODY_TEXT,
            value: self.text.as_bytes().to_vec(),
        }];
        for a in &self.attachments {
            for (t, v) in [
                (tag::ATTACH_NAME, a.name.as_bytes()),
                (tag::ATTACH_TYPE, a.content_type.as_bytes()),
                (tag::ATTACH_DATA, a.data.as_slice()),
            ] {
                fields.push(Field {
                    tag: t,
                    value: v.to_vec(),
                });
            }
        }
        let mut out = Vec::new();
        encode_fields(&fields, &mut out);
        out
    }

    /// Decodes a plaintext body (text first, then name/type/data triples).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let fields = decode_fields(bytes)?;
        let utf8 = |f: &Field| {
            String::from_utf8(f.value.clone()).map_err(|_| Error::Frame("body text not UTF-8"))
        };
        let (first, rest) = fields
            .split_first()
            .filter(|(f, _)| f.tag == tag::BODY_TEXT)
            .ok_or(Error::Frame("body without text"))?;
        if rest.len() % 3 != 0 || rest.len() / 3 > MAX_ATTACHMENTS {
            return Err(Error::Frame("malformed attachments"));
        }
        let mut attachments = Vec::new();
        for t in rest.chunks_exact(3) {
            if (t[0].tag, t[1].tag, t[2].tag)
                != (tag::ATTACH_NAME, tag::ATTACH_TYPE, tag::ATTACH_DATA)
            {
                return Err(Error::Frame("malformed attachments"));
            }
            attachments.push(Attachment {
                name: utf8(&t[0])?,
                content_type: utf8(&t[1])?,
                data: t[2].value.clone(),
            });
        }
        Ok(Self {
            text: utf8(first)?,
            attachments,
        })
    }
}

/// MSG_ACK status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum AckStatus {
    /// Stored by the switch for an offline recipient.
    Stored = 1,
    /// Delivered to the recipient.
    Delivered = 2,
    /// Refused (verification, decryption or store full).
    Refused = 3,
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Message id.
    pub id: MessageId,
    /// Sender.
    pub from: String,
    /// Recipient as the sender addressed it (e.g. `tel:+8888;101`: the identity with an
    /// extension).
    pub to: String,
    /// Body.
    pub body: Body,
}

fn aad(id: &MessageId, from: &str, to: &str) -> Vec<u8> {
    let mut a = b"UMSG/1 msg".to_vec();
    a.extend_from_slice(id);
    for s in [from, to] {
        a.extend_from_slice(&(s.len() as u16).to_be_bytes());
        a.extend_from_slice(s.as_bytes());
    }
    a
}

fn aead(prf: Prf, ssv: &[u8], csb_id: u32, rand: &[u8]) -> Result<ChaCha20Poly1305, Error> {
    let mut k = Zeroizing::new([0u8; 32]);
    kdf::derive(
        prf,
        ssv,
        CONST_ENCR,
        CS_ID_MESSAGE,
        csb_id,
        rand,
        &mut k[..],
    )
    .map_err(Error::Crypto)?;
    ChaCha20Poly1305::new_from_slice(&k[..]).map_err(|_| Error::Frame("AEAD key length"))
}

/// Ids of the messages already received (the last [`SEEN_IDS`]), for duplicate suppression,
/// and of those shown to the application that await its acknowledgement (deferred
/// acknowledgements). The client driver carries them from one connection's [`Messenger`] to
/// the next, so a message the switch re-sends after a reconnection (its acknowledgement was
/// lost) is acknowledged again but not shown twice.
#[derive(Debug, Clone, Default)]
pub struct SeenIds {
    set: HashSet<MessageId>,
    order: VecDeque<MessageId>,
    awaiting: HashSet<MessageId>,
}

impl SeenIds {
    /// Whether `id` was received.
    pub fn contains(&self, id: &MessageId) -> bool {
        self.set.contains(id)
    }

    /// Records `id` (forgetting the oldest beyond [`SEEN_IDS`]); whether it was new.
    pub fn insert(&mut self, id: MessageId) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > SEEN_IDS {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    /// Ids remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Messages shown to the application that await its acknowledgement.
    pub fn awaiting(&self) -> usize {
        self.awaiting.len()
    }

    /// The application answered `status` for `id`: it no longer awaits; delivered (or
    /// stored) ids count as received, a refused one is shown again if the switch re-sends it.
    pub fn settle(&mut self, id: &MessageId, status: AckStatus) {
        self.awaiting.remove(id);
        if status != AckStatus::Refused {
            self.insert(*id);
        }
    }

    /// The application could not keep `id`: the switch's next re-send is shown again.
    pub fn release(&mut self, id: &MessageId) {
        self.awaiting.remove(id);
    }
}

fn ack_frame(id: &MessageId, s: AckStatus) -> Frame {
    Frame::new(FrameType::MsgAck)
        .with(tag::MESSAGE_ID, *id)
        .with(tag::ACK_STATUS, [s as u8])
}

/// The client's messaging endpoint (sans-IO).
#[derive(Debug)]
pub struct Messenger {
    keys: KeyMaterial,
    seen: SeenIds,
    deferred: bool,
}

impl Messenger {
    /// A messenger for the identity of `keys`.
    pub fn new(keys: KeyMaterial) -> Self {
        Self {
            keys,
            seen: SeenIds::default(),
            deferred: false,
        }
    }

    /// With `on`, [`Self::handle_msg`] sends no MSG_ACK for a new message: the application
    /// acknowledges it with [`Self::ack`] (e.g. once it is on disk) or releases it with
    /// [`Self::release`]. The switch keeps the message and re-sends it until then.
    pub fn set_deferred_acks(&mut self, on: bool) {
        self.deferred = on;
    }

    /// Takes the ids of the messages received so far (to hand to the next connection's
    /// messenger with [`Self::set_seen`]).
    pub fn take_seen(&mut self) -> SeenIds {
        std::mem::take(&mut self.seen)
    }

    /// Continues from the ids received on an earlier connection.
    pub fn set_seen(&mut self, seen: SeenIds) {
        self.seen = seen;
    }

    /// An encrypted MSG to `to` (fresh SSV, new id) from the own identity.
    pub fn send(
        &self,
        to: &str,
        body: &Body,
        now: SystemTime,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(MessageId, Frame), Error> {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let frame = self.send_as(&self.keys.identity, to, id, body, now, rng)?;
        Ok((id, frame))
    }

    /// An encrypted MSG with the caller's `id` (the same id for every retry of one message,
    /// so that the switch and the recipient drop duplicates) and FROM = `from`, the own
    /// identity optionally with an extension (`tel:+8888;101`); any other FROM is an error.
    pub fn send_as(
        &self,
        from: &str,
        to: &str,
        id: MessageId,
        body: &Body,
        now: SystemTime,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Frame, Error> {
        if routing_identity(from) != self.keys.identity {
            return Err(Error::Frame("FROM is not the own identity"));
        }
        let c = imessage_to(&self.keys, to, now, rng)?;
        let m = &c.message;
        let cipher = aead(m.header.prf, c.ssv.as_bytes(), m.header.csb_id, &m.rand)?;
        let plain = Zeroizing::new(body.encode());
        let ct = cipher
            .encrypt(
                &Nonce::default(),
                Payload {
                    msg: &plain,
                    aad: &aad(&id, from, to),
                },
            )
            .map_err(|_| Error::Frame("message too large to encrypt"))?;
        Ok(Frame::new(FrameType::Msg)
            .with(tag::MESSAGE_ID, id)
            .with(tag::FROM, from.as_bytes().to_vec())
            .with(tag::TO, to.as_bytes().to_vec())
            .with(tag::IMESSAGE, m.as_bytes().to_vec())
            .with(tag::CIPHERTEXT, ct))
    }

    /// A MSG from the switch: the MSG_ACK to send and the message if new (a duplicate id is
    /// acknowledged as delivered and not shown again).
    pub fn receive(
        &mut self,
        f: &Frame,
        now: SystemTime,
    ) -> Result<(Frame, Option<Received>), Error> {
        let id = message_id(f)?;
        let ack = |s: AckStatus| ack_frame(&id, s);
        if self.seen.contains(&id) {
            return Ok((ack(AckStatus::Delivered), None));
        }
        match self.open(id, f, now) {
            Ok(r) => {
                self.seen.insert(id);
                Ok((ack(AckStatus::Delivered), Some(r)))
            }
            Err(_) => Ok((ack(AckStatus::Refused), None)),
        }
    }

    /// A MSG from the switch, as the client core handles it: [`Self::receive`] with
    /// immediate acknowledgements; with deferred ones a new message is shown without a
    /// MSG_ACK (the application answers with [`Self::ack`] or [`Self::release`]), a re-send
    /// of a message still awaiting the application is dropped silently, and one that is
    /// already acknowledged is acknowledged again (delivered). While [`SEEN_IDS`] messages
    /// await the application, new ones are left unanswered for the switch to re-send.
    pub fn handle_msg(
        &mut self,
        f: &Frame,
        now: SystemTime,
    ) -> Result<(Option<Frame>, Option<Received>), Error> {
        if !self.deferred {
            let (ack, got) = self.receive(f, now)?;
            return Ok((Some(ack), got));
        }
        let id = message_id(f)?;
        if self.seen.contains(&id) {
            return Ok((Some(ack_frame(&id, AckStatus::Delivered)), None));
        }
        if self.seen.awaiting.contains(&id) || self.seen.awaiting.len() >= SEEN_IDS {
            return Ok((None, None));
        }
        match self.open(id, f, now) {
            Ok(r) => {
                self.seen.awaiting.insert(id);
                Ok((None, Some(r)))
            }
            Err(_) => Ok((Some(ack_frame(&id, AckStatus::Refused)), None)),
        }
    }

    /// The application's MSG_ACK for a message it was shown (deferred acknowledgements):
    /// delivered once it is safe on the application's side, refused when it never can be
    /// (a re-send is then shown again).
    pub fn ack(&mut self, id: &MessageId, status: AckStatus) -> Frame {
        self.seen.settle(id, status);
        ack_frame(id, status)
    }

    /// The application could not keep message `id` (deferred acknowledgements): no MSG_ACK
    /// goes out, and the switch's next re-send of it is shown again.
    pub fn release(&mut self, id: &MessageId) {
        self.seen.release(id);
    }

    /// Verifies, decapsulates and decrypts a MSG. Unlike a BANG's, a MSG's I_MESSAGE is not
    /// held to MIKEY's replay cache nor to the clock window's past side (docs/umsg.md §6.2):
    /// the switch stores messages for offline recipients and re-sends unacknowledged ones
    /// with the original I_MESSAGE, possibly hours later; duplicates are suppressed by
    /// MESSAGE_ID, which the AEAD binds to the I_MESSAGE's key. A T more than
    /// [`MAX_AHEAD`] after `now` is refused.
    fn open(&self, id: MessageId, f: &Frame, now: SystemTime) -> Result<Received, Error> {
        let s = |t| {
            f.get(t)
                .and_then(|v| core::str::from_utf8(v).ok())
                .ok_or(Error::Frame("FROM/TO missing"))
        };
        let (from, to) = (s(tag::FROM)?, s(tag::TO)?);
        let im = f
            .get(tag::IMESSAGE)
            .ok_or(Error::Frame("IMESSAGE missing"))?;
        let ct = f
            .get(tag::CIPHERTEXT)
            .ok_or(Error::Frame("CIPHERTEXT missing"))?;
        let msg = IMessage::parse(im).map_err(Error::Crypto)?;
        if msg.ntp_seconds() > mikey::receive::ntp_seconds(now) + MAX_AHEAD.as_secs() {
            return Err(Error::Frame("I_MESSAGE from the future"));
        }
        let sender_id = mikey::sender_identity(&msg).map_err(Error::Crypto)?;
        let receiver_id = mikey::receiver_identity(&msg).map_err(Error::Crypto)?;
        let keys = Keys(&self.keys);
        let rsk = keys
            .rsk(&receiver_id)
            .ok_or(Error::Frame("I_MESSAGE not for one of our keys"))?;
        let verified = mikey::verify(msg, keys.kpak(), &sender_id).map_err(Error::Crypto)?;
        let (_, sender) =
            mikey::split_rfc6509_identifier(verified.sender_id()).map_err(Error::Crypto)?;
        if sender != routing_identity(from) {
            return Err(Error::Frame("I_MESSAGE sender is not FROM"));
        }
        let ssv = verified
            .decapsulate(keys.zpub(), &receiver_id, rsk)
            .map_err(Error::Crypto)?;
        let m = verified.message();
        let cipher = aead(m.header.prf, ssv.as_bytes(), m.header.csb_id, &m.rand)?;
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    &Nonce::default(),
                    Payload {
                        msg: ct,
                        aad: &aad(&id, from, to),
                    },
                )
                .map_err(|_| Error::Frame("message does not decrypt"))?,
        );
        Ok(Received {
            id,
            from: from.to_owned(),
            to: to.to_owned(),
            body: Body::decode(&plain)?,
        })
    }
}

fn message_id(f: &Frame) -> Result<MessageId, Error> {
    f.get(tag::MESSAGE_ID)
        .and_then(|v| v.try_into().ok())
        .ok_or(Error::Frame("MESSAGE_ID missing"))
}

/// The (id, status) of a MSG_ACK.
pub fn ack_status(f: &Frame) -> Option<(MessageId, AckStatus)> {
    let id = f.get(tag::MESSAGE_ID)?.try_into().ok()?;
    let s = match f.get(tag::ACK_STATUS)? {
        [1] => AckStatus::Stored,
        [2] => AckStatus::Delivered,
        [3] => AckStatus::Refused,
        _ => return None,
    };
    Some((id, s))
}
