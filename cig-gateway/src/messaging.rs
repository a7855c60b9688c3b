//! Text messages between the secure side (UMSG) and the messaging interfaces, sans-IO: the
//! conversions between a UMSG message and the manual's message format ([`from_secure`],
//! [`to_secure_body`]), the routing of SIP MESSAGE requests with the call maps
//! ([`route_to_sip`], [`route_from_sip`]) and the table of messages sent to secure users that
//! wait for the switch's MSG_ACK ([`Pending`]): a source (Maildir file, SMPP deliver_sm, SIP
//! MESSAGE transaction) keeps its copy until [`Pending::on_ack`] reports the switch accepted
//! it (MSG_ACK stored or delivered), and gets it back for a later retry when the switch
//! refuses it or does not answer in time ([`Pending::handle_timeout`]).
//!
//! Where the copies of a message from a secure user go (write mailboxes, message centres) is
//! `cig_msg::service`'s; `cig-server` wires both to the UMSG driver.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cig_core::conf::InterfaceKind;
use cig_msg::format::{self, Message};
use cig_route::{Rejected, Routed, Router};
use cig_umsg::message::{self as umsg, AckStatus, Body, MessageId, Received};

use crate::engine::normalize_wait_mark;

/// How long a message sent to a secure user waits for its MSG_ACK before it counts as not
/// delivered (the source offers it again later).
pub const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// Most messages to secure users awaiting their MSG_ACK at once; the sources wait beyond it.
pub const MAX_PENDING: usize = 256;

/// A message id as text: 32 lower-case hex digits (the `Message-ID` of a written file).
pub fn id_hex(id: &MessageId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// A text message from a secure user in the manual's format: `From` the sender's URI, `To`
/// the URI it was addressed to (`tel:+8888;101`: the gateway with an extension, the `w` wait
/// mark read as `;`), `Date` = `now`, `Message-ID` the UMSG id in hex, attachments as they
/// came. Translation for the destinations is the caller's (`cig_msg::service::Outbound`).
pub fn from_secure(r: &Received, now: SystemTime) -> Message {
    Message {
        from: r.from.clone(),
        to: normalize_wait_mark(&r.to),
        date: now
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_secs()).ok()),
        text: r.body.text.clone(),
        attachments: r
            .body
            .attachments
            .iter()
            .map(|a| format::Attachment {
                filename: a.name.clone(),
                content_type: a.content_type.clone(),
                data: a.data.clone(),
            })
            .collect(),
        id: Some(id_hex(&r.id)),
        headers: vec![(format::AUTO_SUBMITTED.to_owned(), "no".to_owned())],
    }
}

/// The UMSG body of a message for a secure user: its text and attachments. A UMSG body
/// carries at most [`umsg::MAX_ATTACHMENTS`]; the ones beyond are left out and named in a note
/// appended to the text (as for SMS).
pub fn to_secure_body(m: &Message) -> Body {
    let keep = m.attachments.len().min(umsg::MAX_ATTACHMENTS);
    let mut text = m.text.clone();
    if let Some(rest) = m.attachments.get(keep..).filter(|r| !r.is_empty()) {
        let names: Vec<&str> = rest.iter().map(|a| a.filename.as_str()).collect();
        text.push_str(&format!(
            "\n[attachments left out, at most {} per message: {}]",
            umsg::MAX_ATTACHMENTS,
            names.join(", ")
        ));
    }
    Body {
        text,
        attachments: m.attachments[..keep]
            .iter()
            .map(|a| umsg::Attachment {
                name: a.filename.clone(),
                content_type: a.content_type.clone(),
                data: a.data.clone(),
            })
            .collect(),
    }
}

/// A message from secure user `from` to `to` (the gateway with an extension) as a SIP MESSAGE:
/// routed like a call arriving on the tel interface (its extension maps give the new To,
/// the sip interface's source maps the new From; `auth` names the credentials to answer a
/// challenge with).
pub fn route_to_sip(router: &Router, from: &str, to: &str) -> Result<Routed, Rejected> {
    router.route(InterfaceKind::Tel, from, &normalize_wait_mark(to))
}

/// A SIP MESSAGE from `from` to `to`: routed like a call arriving on the sip interface; the
/// new To is the secure recipient, the new From the gateway's sender URI.
pub fn route_from_sip(router: &Router, from: &str, to: &str) -> Result<Routed, Rejected> {
    router.route(InterfaceKind::Sip, from, to)
}

/// What the switch said about a message sent to a secure user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// MSG_ACK stored or delivered: the switch has it; the source may forget it.
    Accepted,
    /// MSG_ACK refused (verification, decryption or the switch's store is full).
    Refused,
}

/// Messages sent to secure users that await their MSG_ACK, each with what its source needs
/// to confirm or release it (`T`: an acknowledgement handle, a SIP transaction, …).
#[derive(Debug)]
pub struct Pending<T> {
    items: HashMap<MessageId, (T, SystemTime)>,
    /// Deadlines in insertion order (one timeout for all: also deadline order); ids already
    /// answered are skipped lazily.
    order: VecDeque<(SystemTime, MessageId)>,
    timeout: Duration,
}

impl<T> Pending<T> {
    /// An empty table whose entries expire `timeout` after they were sent.
    pub fn new(timeout: Duration) -> Self {
        Self {
            items: HashMap::new(),
            order: VecDeque::new(),
            timeout,
        }
    }

    /// Message `id` carrying `item` was sent at `now`.
    pub fn insert(&mut self, id: MessageId, item: T, now: SystemTime) {
        let deadline = now + self.timeout;
        self.items.insert(id, (item, deadline));
        self.order.push_back((deadline, id));
    }

    /// A MSG_ACK: the item of `id` (if still waiting) with what became of it.
    pub fn on_ack(&mut self, id: &MessageId, status: AckStatus) -> Option<(T, Outcome)> {
        let (item, _) = self.items.remove(id)?;
        let outcome = match status {
            AckStatus::Stored | AckStatus::Delivered => Outcome::Accepted,
            AckStatus::Refused => Outcome::Refused,
        };
        Some((item, outcome))
    }

    /// When the oldest waiting message times out.
    pub fn poll_timeout(&mut self) -> Option<SystemTime> {
        while let Some((deadline, id)) = self.order.front() {
            if self.items.get(id).is_some_and(|(_, d)| d == deadline) {
                return Some(*deadline);
            }
            self.order.pop_front();
        }
        None
    }

    /// The items whose MSG_ACK did not come by `now` (not delivered: their sources keep them).
    pub fn handle_timeout(&mut self, now: SystemTime) -> Vec<T> {
        let mut out = Vec::new();
        while let Some(&(deadline, id)) = self.order.front() {
            if deadline > now {
                break;
            }
            self.order.pop_front();
            if self.items.get(&id).is_some_and(|(_, d)| *d == deadline) {
                out.extend(self.items.remove(&id).map(|(t, _)| t));
            }
        }
        out
    }

    /// Messages still waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// No room for more ([`MAX_PENDING`]): stop taking messages from the sources.
    pub fn is_full(&self) -> bool {
        self.items.len() >= MAX_PENDING
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(to: &str, attachments: usize) -> Received {
        Received {
            id: [0xab; 16],
            from: "tel:+4670123".into(),
            to: to.into(),
            body: Body {
                text: "hej".into(),
                attachments: (0..attachments)
                    .map(|i| umsg::Attachment {
                        name: format!("f{i}.bin"),
                        content_type: "application/octet-stream".into(),
                        data: vec![0, 1, 2, i as u8],
                    })
                    .collect(),
            },
        }
    }

    #[test]
    fn a_secure_message_becomes_the_manual_format_and_back() {
        let now = UNIX_EPOCH + Duration::from_secs(1_448_558_144);
        let m = from_secure(&received("tel:+8888w101", 2), now);
        assert_eq!(m.from, "tel:+4670123");
        assert_eq!(m.to, "tel:+8888;101");
        assert_eq!(m.date, Some(1_448_558_144));
        assert_eq!(m.id.as_deref(), Some("abababababababababababababababab"));
        assert_eq!(m.header(format::AUTO_SUBMITTED), Some("no"));
        // It is writable in the manual's format and reads back the same.
        let back = format::parse(&format::write(&m).unwrap()).unwrap();
        assert_eq!(back.attachments, m.attachments);
        let body = to_secure_body(&back);
        assert_eq!(body, received("", 2).body);
    }

    #[test]
    fn attachments_beyond_the_umsg_limit_are_named_in_the_text() {
        let mut m = from_secure(&received("tel:+8888", 0), UNIX_EPOCH);
        m.attachments = (0..umsg::MAX_ATTACHMENTS + 2)
            .map(|i| format::Attachment {
                filename: format!("a{i}"),
                content_type: "text/plain".into(),
                data: vec![1],
            })
            .collect();
        let body = to_secure_body(&m);
        assert_eq!(body.attachments.len(), umsg::MAX_ATTACHMENTS);
        assert!(body.text.starts_with("hej\n[attachments left out"));
        assert!(body.text.ends_with(": a16, a17]"), "{}", body.text);
        // The body encodes (the UMSG limit holds).
        assert_eq!(Body::decode(&body.encode()).unwrap(), body);
    }

    #[test]
    fn pending_messages_are_confirmed_refused_or_time_out_in_order() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        let mut p = Pending::new(ACK_TIMEOUT);
        assert_eq!(p.poll_timeout(), None);
        p.insert([1; 16], "a", t0);
        p.insert([2; 16], "b", t0 + Duration::from_secs(1));
        p.insert([3; 16], "c", t0 + Duration::from_secs(2));
        assert_eq!(p.len(), 3);
        assert_eq!(
            p.on_ack(&[1; 16], AckStatus::Stored),
            Some(("a", Outcome::Accepted))
        );
        assert_eq!(p.on_ack(&[1; 16], AckStatus::Delivered), None);
        assert_eq!(
            p.on_ack(&[3; 16], AckStatus::Refused),
            Some(("c", Outcome::Refused))
        );
        // a was answered: the next deadline is b's.
        assert_eq!(
            p.poll_timeout(),
            Some(t0 + Duration::from_secs(1) + ACK_TIMEOUT)
        );
        assert!(p.handle_timeout(t0 + ACK_TIMEOUT).is_empty());
        assert_eq!(
            p.handle_timeout(t0 + Duration::from_secs(1) + ACK_TIMEOUT),
            ["b"]
        );
        assert!(p.is_empty());
        assert_eq!(p.poll_timeout(), None);
        // The same id sent again later gets a fresh deadline.
        p.insert([2; 16], "b2", t0 + Duration::from_secs(100));
        assert!(p.handle_timeout(t0 + Duration::from_secs(100)).is_empty());
        assert_eq!(p.len(), 1);
        for i in 0..MAX_PENDING {
            p.insert([i as u8; 16], "x", t0);
        }
        assert!(p.is_full());
    }

    #[test]
    fn sip_messages_route_with_the_call_maps() {
        let conf = cig_core::conf::parse(
            r#"map maptel2sip { entry e tel "tel:+8888;{x}" sip "sip:{x}@pbx.com" auth acc; }
               map mapsip2tel { entry s sip "sip:9{n}@secure.com" tel "tel:+{n}"; }
               map srctel2sip { entry t tel "tel:+{n}" sip "sip:{n}@secure.com"; }
               auth acc { user "u"; password "p"; }
               interfaces { tel { extension map maptel2sip; }
                            sip { extension map mapsip2tel; source map srctel2sip; messaging true; } }"#,
            "cig.conf",
        )
        .unwrap()
        .config;
        let router = Router::from_config(&conf).unwrap();
        let out = route_to_sip(&router, "tel:+4670123", "tel:+8888w101").unwrap();
        assert_eq!(out.to, "sip:101@pbx.com");
        assert_eq!(out.from, "sip:4670123@secure.com");
        assert_eq!(out.auth.as_deref(), Some("acc"));
        let back = route_from_sip(&router, "sip:101@pbx.com", "sip:94670123@secure.com").unwrap();
        assert_eq!(back.to, "tel:+4670123");
        assert_eq!(back.from, "tel:+8888;101");
        assert!(route_from_sip(&router, "sip:101@pbx.com", "sip:5@elsewhere").is_err());
    }
}
