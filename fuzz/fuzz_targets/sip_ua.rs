//! SIP user agent core on a virtual clock (`cig_sip::sim::Probe`): the input is a little program
//! of raw datagrams (UDP and TCP, two sources), well-formed requests built from fuzzed fields
//! (calls, re-INVITEs, ACKs with and without SDP, BYE, CANCEL, UPDATE, MESSAGE, OPTIONS),
//! responses to whatever the agent sent last (any status, To tag, challenge, SDP, Contact,
//! Record-Route: forks and digest paths), application commands and clock jumps. The agent must
//! never panic, and once the input stops every timer must run out: after ten idle minutes of
//! virtual time nothing is left to send and no timer is pending.
#![no_main]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cig_sip::digest::Credentials;
use cig_sip::message::{HeaderName, Message, NameAddr, Request, Response, Uri, reason_phrase};
use cig_sip::sim::Probe;
use cig_sip::transaction::Transport;
use cig_sip::ua::{
    CallHandle, Event, MessageHandle, OutgoingCall, OutgoingMessage, Target, UaConfig, UserAgent,
};
use libfuzzer_sys::fuzz_target;

const GW: &str = "192.0.2.1:5060";
const PBX: &str = "192.0.2.2:5060";
const OTHER: &str = "198.51.100.7:5099";
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

/// Reads the program.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from(self.byte()?) << 8 | u16::from(self.byte()?))
    }

    fn bytes(&mut self) -> Option<&[u8]> {
        let n = usize::from(self.u16()?).min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(b)
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

struct State {
    p: Probe,
    calls: Vec<CallHandle>,
    messages: Vec<MessageHandle>,
    /// The last requests the agent sent (responses are built to them).
    sent_requests: Vec<Request>,
    /// Our To tag in the agent's last response (for in-dialog requests to it).
    their_tag: String,
}

impl State {
    fn drain(&mut self) {
        for t in self.p.sent() {
            match Message::parse(t.payload) {
                Ok(Message::Request(r)) => {
                    if self.sent_requests.len() == 8 {
                        self.sent_requests.remove(0);
                    }
                    self.sent_requests.push(r);
                }
                Ok(Message::Response(r)) => {
                    if let Some(tag) = r.headers.to().ok().and_then(|t| t.tag().map(str::to_owned))
                    {
                        self.their_tag = tag;
                    }
                }
                Err(_) => {}
            }
        }
        for e in self.p.events.drain(..) {
            match e {
                Event::IncomingCall { call, .. } => self.calls.push(call),
                Event::IncomingMessage { message, .. } => self.messages.push(message),
                _ => {}
            }
        }
    }

    fn pick<T: Copy>(v: &[T], b: u8) -> Option<T> {
        (!v.is_empty()).then(|| v[usize::from(b) % v.len()])
    }

    /// A request to the agent from the PBX, fields from the input.
    fn request(&mut self, inp: &mut Input<'_>) -> Option<()> {
        let op = inp.byte()?;
        let method = [
            "INVITE", "ACK", "BYE", "CANCEL", "UPDATE", "MESSAGE", "OPTIONS", "INFO",
        ][usize::from(op & 7)];
        let branch = inp.byte()? & 7;
        let seq = inp.byte()? & 7;
        let in_dialog = op & 8 != 0;
        let body = if op & 16 != 0 { SDP } else { "" };
        let tcp = op & 32 != 0;
        let to_tag = if in_dialog {
            format!(";tag={}", self.their_tag)
        } else {
            String::new()
        };
        let ct = if body.is_empty() {
            ""
        } else if method == "MESSAGE" {
            "Content-Type: text/plain\r\n"
        } else {
            "Content-Type: application/sdp\r\n"
        };
        let cseq_method = if method == "ACK" && op & 64 != 0 {
            "INVITE"
        } else {
            method
        };
        let t = if tcp { "TCP" } else { "UDP" };
        let text = format!(
            "{method} sip:gw@{GW} SIP/2.0\r\nVia: SIP/2.0/{t} {PBX};branch=z9hG4bK{branch}\r\n\
Max-Forwards: 70\r\nFrom: <sip:200@{PBX}>;tag=caller\r\nTo: <sip:gw@{GW}>{to_tag}\r\n\
Call-ID: fuzz-call\r\nCSeq: {seq} {cseq_method}\r\nContact: <sip:200@{PBX}>\r\n\
Supported: timer\r\nSession-Expires: 90\r\n{ct}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let transport = if tcp { Transport::Tcp } else { Transport::Udp };
        self.p.receive(text, addr(PBX), transport);
        Some(())
    }

    /// A response to one of the agent's last requests, fields from the input.
    fn response(&mut self, inp: &mut Input<'_>) -> Option<()> {
        let k = inp.byte()?;
        let req = Self::pick(&(0..self.sent_requests.len()).collect::<Vec<_>>(), k)
            .map(|i| self.sent_requests[i].clone())?;
        let status = 100 + inp.u16()? % 600;
        let flags = inp.byte()?;
        let mut r = Response::from_request(&req, status, reason_phrase(status));
        if status > 100 && flags & 1 != 0 {
            let _ = r.headers.set_to_tag(&format!("fork{}", flags >> 5));
        }
        if flags & 2 != 0 {
            let name = if status == 407 {
                HeaderName::ProxyAuthenticate
            } else {
                HeaderName::WwwAuthenticate
            };
            let alg = ["MD5", "SHA-256", "SHA-512-256", "MD5-sess"][usize::from(flags >> 6)];
            let stale = if flags & 16 != 0 { ", stale=true" } else { "" };
            r.headers.push(
                name,
                format!(
                    "Digest realm=\"r\", nonce=\"n{}\", algorithm={alg}, qop=\"auth\"{stale}",
                    flags & 4
                ),
            );
        }
        if flags & 4 != 0 {
            r.headers
                .push(HeaderName::Contact, format!("<sip:pbx{}@{OTHER}>", flags >> 5));
        }
        if flags & 8 != 0 {
            r.headers
                .push(HeaderName::RecordRoute, format!("<sip:proxy@{OTHER};lr>"));
        }
        if flags & 16 != 0 {
            r.set_body("application/sdp", Bytes::from_static(SDP.as_bytes()));
        }
        self.p.receive(r.to_bytes(), addr(PBX), Transport::Udp);
        Some(())
    }

    fn command(&mut self, inp: &mut Input<'_>) -> Option<()> {
        let op = inp.byte()?;
        let b = inp.byte()?;
        let call = Self::pick(&self.calls, b);
        let sdp = if op & 16 != 0 {
            Bytes::new()
        } else {
            Bytes::from_static(SDP.as_bytes())
        };
        let creds = (op & 32 != 0).then(|| Credentials::new("gw", "pw"));
        let target = |tcp: bool| Target {
            uri: Uri::parse(format!("sip:101@{PBX}")).expect("uri"),
            destination: addr(PBX),
            transport: if tcp { Transport::Tcp } else { Transport::Udp },
        };
        let calls = &mut self.calls;
        let messages = &self.messages;
        let _ = self.p.with(|ua, now| -> cig_sip::Result<()> {
            let call = call.ok_or(cig_sip::Error::CallState("none"));
            match op & 15 {
                0 => {
                    let c = ua.place_call(
                        OutgoingCall {
                            target: target(op & 64 != 0),
                            from: NameAddr::new(Uri::parse(format!("sip:gw@{GW}"))?),
                            to: NameAddr::new(Uri::parse(format!("sip:101@{PBX}"))?),
                            sdp,
                            credentials: creds,
                        },
                        now,
                    );
                    calls.push(c);
                    Ok(())
                }
                1 => ua.answer(call?, sdp, now),
                2 => ua.ringing(call?, now),
                3 => ua.reject(call?, 300 + u16::from(b), now),
                4 => ua.hangup(call?, now),
                5 => ua.reinvite(call?, sdp, now),
                6 => ua.set_credentials(call?, creds),
                7 => {
                    ua.send_message(
                        OutgoingMessage {
                            target: target(op & 64 != 0),
                            from: NameAddr::new(Uri::parse(format!("sip:gw@{GW}"))?),
                            to: NameAddr::new(Uri::parse(format!("sip:101@{PBX}"))?),
                            content_type: "text/plain".into(),
                            body: Bytes::from_static(b"hi"),
                            credentials: creds,
                        },
                        now,
                    );
                    Ok(())
                }
                8 => match Self::pick(messages, b) {
                    Some(m) => ua.respond_message(m, 100 + u16::from(b) * 3, now),
                    None => Ok(()),
                },
                9 => {
                    ua.handle_transport_error(addr(PBX), Transport::Tcp);
                    Ok(())
                }
                10 => ua.ack(call?, sdp),
                _ => Ok(()),
            }
        });
        Some(())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut config = UaConfig::new(addr(GW));
    let mut inp = Input(data);
    config.messaging = inp.byte().is_some_and(|b| b & 1 != 0);
    let mut s = State {
        p: Probe::new(UserAgent::new(config, 1)),
        calls: Vec::new(),
        messages: Vec::new(),
        sent_requests: Vec::new(),
        their_tag: String::new(),
    };
    for _ in 0..64 {
        let Some(op) = inp.byte() else { break };
        let done = match op % 8 {
            0 | 1 => inp.bytes().map(|d| {
                let transport = if op & 8 != 0 {
                    Transport::Tcp
                } else {
                    Transport::Udp
                };
                let source = if op & 16 != 0 { OTHER } else { PBX };
                s.p.receive(Bytes::copy_from_slice(d), addr(source), transport);
            }),
            2 | 3 => s.request(&mut inp),
            4 | 5 => s.response(&mut inp),
            6 => s.command(&mut inp),
            _ => inp
                .u16()
                .map(|ms| s.p.advance(Duration::from_millis(u64::from(ms) * 4))),
        };
        s.drain();
        if done.is_none() {
            break;
        }
    }
    // Idle: every retransmission and timer must end.
    s.p.advance(Duration::from_secs(600));
    s.drain();
    s.p.advance(Duration::from_secs(600));
    assert!(s.p.sent().is_empty(), "still sending after ten idle minutes");
    assert!(
        s.p.ua.poll_timeout().is_none(),
        "a timer is still pending after ten idle minutes"
    );
});
