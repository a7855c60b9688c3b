//! The call engine against the real UMSG client and switch cores (in memory, with real
//! MIKEY-SAKKE keys) and a scripted SIP side and relay: every call flow of docs/calls.md.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cig_gateway::engine::{Action, CallState, Engine, EngineConfig, Invite, SipCommand};
use cig_media::control::{Command, Direction, LegId, LegStats, LocalPorts, Reply, SessionStats};
use cig_mikey_sakke::keystore::KeyMaterial;
use cig_mikey_sakke::kms::Community;
use cig_mikey_sakke::mikey::KeyPeriod;
use cig_sip::message::{NameAddr, Uri};
use cig_sip::transaction::Transport;
use cig_sip::ua::{CallHandle, EndReason, Event};
use cig_umsg::call::{CallState as UmsgState, HangupReason, Media, SessionId};
use cig_umsg::client::{ClientSession, Event as UmsgEvent};
use cig_umsg::switch::{StoreLimits, SwitchCore};
use rand_core::OsRng;

const CONF: &str = r#"
map maptel2sip {
    entry auth7 tel "tel:+8888;7{x}" sip "sip:7{x}@pbx.com" auth pbx;
    entry telext2sip tel "tel:+8888;{TELEXT}" sip "sip:{TELEXT}@pbx.com";
}
map mapsip2tel {
    entry sipext2tel sip "sip:9{SIPEXT}@secure.com" tel "tel:+{SIPEXT}";
}
map srctel2sip {
    entry tel2sipsrc tel "tel:+{TELEXT}" sip "sip:{TELEXT}@secure.com";
}
auth pbx { user "gw"; password "s3cret"; }
interfaces {
    tel { extension map maptel2sip; rtp_remote_addr_override 203.0.113.5 127.0.0.1; }
    sip { extension map mapsip2tel; source map srctel2sip; }
}
"#;

const PHONE: &str = "tel:+4670123456";
const GW: usize = 1;
const PH: usize = 2;

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n";

struct World {
    now: SystemTime,
    gw: ClientSession,
    /// The gateway's key material (BANGs are built from it outside the session).
    gw_keys: KeyMaterial,
    phone: ClientSession,
    switch: SwitchCore,
    engine: Engine,
    actions: Vec<Action>,
    phone_events: Vec<SessionId>,
    next_handle: u64,
}

fn keys(c: &Community, id: &str, p: KeyPeriod) -> KeyMaterial {
    c.key_material(id, vec![c.issue(id, p, &mut OsRng).unwrap()], vec![], None)
}

impl World {
    fn new() -> World {
        World::with_identity("tel:+8888")
    }

    /// A world whose engine believes its registered identity is `identity`.
    fn with_identity(identity: &str) -> World {
        let now = SystemTime::now();
        let unix = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let p = KeyPeriod::from_unix(unix).unwrap();
        let c = Community::generate("example.org", &mut OsRng).unwrap();
        let conf = cig_core::conf::parse(CONF, "cig.conf").unwrap().config;
        let settings = EngineConfig {
            media_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            identity: identity.to_owned(),
            ..EngineConfig::default()
        };
        let gw_keys = keys(&c, "tel:+8888", p);
        let mut w = World {
            now,
            gw: ClientSession::new(gw_keys.clone(), now),
            gw_keys,
            phone: ClientSession::new(keys(&c, PHONE, p), now),
            switch: SwitchCore::new(c.kpak, "203.0.113.5:30000".into(), StoreLimits::default()),
            engine: Engine::new(&conf, settings).unwrap(),
            actions: Vec::new(),
            phone_events: Vec::new(),
            next_handle: 100,
        };
        w.pump();
        assert!(w.gw.is_registered() && w.phone.is_registered());
        w.engine.set_links(true, true);
        w
    }

    fn unix(&self) -> u64 {
        self.now.duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    /// Moves frames between the three UMSG cores, feeds the gateway's call events to the
    /// engine and answers relay requests, until everything is quiet.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            for from in [GW, PH] {
                loop {
                    let f = if from == GW {
                        self.gw.poll_transmit()
                    } else {
                        self.phone.poll_transmit()
                    };
                    let Some(f) = f else { break };
                    moved = true;
                    let unix = self.unix();
                    for t in self.switch.handle(from as u64, &f, unix, &mut OsRng) {
                        let dest = if t.conn == GW as u64 {
                            &mut self.gw
                        } else {
                            &mut self.phone
                        };
                        dest.handle_frame(&t.frame, self.now, &mut OsRng).unwrap();
                    }
                }
            }
            while let Some(e) = self.gw.poll_event() {
                moved = true;
                if let UmsgEvent::Call(id) = e {
                    self.engine.on_umsg_call(id, self.now, &mut self.gw);
                }
            }
            while let Some(e) = self.phone.poll_event() {
                if let UmsgEvent::Call(id) = e {
                    self.phone_events.push(id);
                }
            }
            while let Some(a) = self.engine.poll_action() {
                moved = true;
                if let Action::Dial(d) = &a {
                    let dialled = cig_gateway::secure::prepare(&self.gw_keys, d, self.now)
                        .and_then(|c| cig_gateway::secure::adopt(&mut self.gw, c, self.now));
                    self.engine
                        .on_dialled(d.call, dialled, self.now, &mut self.gw);
                }
                if let Action::Relay { call, command } = &a {
                    let reply = match &**command {
                        Command::CreateSession { session, .. } => Some(Reply::SessionCreated {
                            id: 0,
                            session: session.clone(),
                            engine: 0,
                            a: ports(20000),
                            b: ports(20002),
                        }),
                        Command::UpdateSession { session, .. } => Some(Reply::SessionUpdated {
                            id: 0,
                            session: session.clone(),
                        }),
                        Command::DeleteSession { session } => Some(Reply::SessionDeleted {
                            id: 0,
                            stats: SessionStats {
                                session: session.clone(),
                                engine: 0,
                                a: LegStats::default(),
                                b: LegStats::default(),
                            },
                        }),
                        _ => None,
                    };
                    if let Some(r) = reply {
                        self.engine.on_relay_reply(*call, r, self.now, &mut self.gw);
                    }
                }
                self.actions.push(a);
            }
            if !moved {
                break;
            }
        }
    }

    fn sip(&mut self, ev: Event) {
        self.engine.on_sip(ev, self.now, &mut self.gw);
        self.pump();
    }

    fn invite(&mut self, from: &str, to: &str) -> CallHandle {
        self.next_handle += 1;
        let h = CallHandle(self.next_handle);
        self.sip(Event::IncomingCall {
            call: h,
            request_uri: Uri::parse(to).unwrap(),
            from: NameAddr::new(Uri::parse(from).unwrap()),
            to: NameAddr::new(Uri::parse(to).unwrap()),
            sdp: Bytes::from_static(OFFER.as_bytes()),
            source: "192.0.2.50:5060".parse().unwrap(),
            transport: Transport::Udp,
            call_id: format!("call-{}@192.0.2.50", self.next_handle),
        });
        h
    }

    /// The phone dials `to`; returns the session id.
    fn phone_dials(&mut self, to: &str) -> SessionId {
        let offer = Media {
            codecs: vec![8, 0],
            dtmf_pt: 101,
            ssrc: 7,
        };
        let (id, f) = self
            .phone
            .calls
            .dial(to, &offer, self.now, &mut OsRng)
            .unwrap();
        self.phone.send(f);
        self.pump();
        id
    }

    /// The last incoming session at the phone.
    fn phone_incoming(&self) -> SessionId {
        *self
            .phone_events
            .iter()
            .rev()
            .find(|id| self.phone.calls.get(id).is_some_and(|c| c.to == PHONE))
            .expect("no incoming call at the phone")
    }

    fn phone_state(&self, id: &SessionId) -> (UmsgState, Option<HangupReason>) {
        let c = self.phone.calls.get(id).unwrap();
        (c.state, c.reason)
    }

    fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    fn states(&self) -> Vec<CallState> {
        self.engine.rows().iter().map(|r| r.state).collect()
    }
}

fn ports(rtp: u16) -> LocalPorts {
    LocalPorts {
        ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        rtp_port: rtp,
        rtcp_port: rtp + 1,
    }
}

fn session_states(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SessionLog(l) => Some(l.split(", ").nth(6).unwrap().to_owned()),
            _ => None,
        })
        .collect()
}

fn sip_cmds(actions: &[Action]) -> Vec<&SipCommand> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Sip(c) => Some(c),
            _ => None,
        })
        .collect()
}

fn relay_cmds(actions: &[Action]) -> Vec<&Command> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Relay { command, .. } => Some(&**command),
            _ => None,
        })
        .collect()
}

#[test]
fn sip_to_secure_call_rings_answers_and_ends_on_bye_from_the_pbx() {
    let mut w = World::new();
    let h = w.invite("sip:101@pbx.com", "sip:94670123456@secure.com");
    let a = w.take();
    // The relay session: leg A SRTP with the call's keys, leg B towards the PBX's offer.
    let Command::CreateSession { a: la, b: lb, .. } = relay_cmds(&a)[0] else {
        panic!("no create_session first: {a:?}");
    };
    assert!(la.srtp.is_some() && lb.srtp.is_none());
    assert_eq!(lb.remote, Some("192.0.2.50:40000".parse().unwrap()));
    assert_eq!(
        la.codec,
        cig_media::control::Codec::Pcma,
        "the PBX offered PCMA first"
    );
    // The switch's media address (ROUTED) goes to leg A; the relay applies the override.
    assert!(relay_cmds(&a).iter().any(|c| matches!(c,
        Command::UpdateSession { a: Some(u), .. } if u.remote == Some("203.0.113.5:30000".parse().unwrap()))));
    assert_eq!(la.remote_addr_overrides.len(), 1);
    let id = w.phone_incoming();
    let pc = w.phone.calls.get(&id).unwrap();
    // The routed caller, the gateway's identity with the PBX extension, is FROM (the switch
    // accepts the gateway's identity with an extension, the phone the signer's identity part).
    assert_eq!(pc.from, "tel:+8888;101");
    assert_eq!(w.engine.rows()[0].out_from, "tel:+8888;101");
    assert_eq!(pc.to, PHONE);
    assert_eq!(w.engine.rows()[0].state, CallState::Try);
    // Both ends hold the same SRTP keys: the relay's leg A key is the phone's.
    let srtp = la.srtp.as_ref().unwrap();
    assert_eq!(srtp.inbound.key.expose(), &pc.keys.master_key[..]);
    assert_eq!(srtp.outbound.salt.expose(), &pc.keys.master_salt[..]);

    let f = w.phone.calls.growl(&id).unwrap();
    w.phone.send(f);
    w.pump();
    assert!(matches!(sip_cmds(&w.take())[..], [SipCommand::Ringing(x)] if *x == h));
    assert_eq!(w.states(), [CallState::Ring]);

    let answer = Media {
        codecs: vec![0],
        dtmf_pt: 101,
        ssrc: 9,
    };
    let f = w.phone.calls.answer(&id, &answer).unwrap();
    w.phone.send(f);
    w.pump();
    let a = w.take();
    let Some(SipCommand::Answer(x, sdp)) = sip_cmds(&a).first().copied() else {
        panic!("no 200: {a:?}");
    };
    assert_eq!(*x, h);
    let sdp = String::from_utf8(sdp.to_vec()).unwrap();
    // The relay's leg B port, the configured media address for an unspecified bind.
    assert!(sdp.contains("c=IN IP4 10.0.0.1"), "{sdp}");
    assert!(sdp.contains("m=audio 20002 RTP/AVP 8 101"), "{sdp}");
    // The phone chose PCMU: leg A changes codec, the relay transcodes.
    assert!(relay_cmds(&a).iter().any(|c| matches!(c,
        Command::UpdateSession { a: Some(u), .. } if u.codec == Some(cig_media::control::Codec::Pcmu))));
    assert_eq!(w.states(), [CallState::Answer]);

    w.sip(Event::Ended {
        call: h,
        reason: EndReason::RemoteHangup,
    });
    let a = w.take();
    assert_eq!(
        w.phone_state(&id),
        (UmsgState::Hangup, Some(HangupReason::Normal))
    );
    assert!(matches!(
        relay_cmds(&a)[..],
        [Command::DeleteSession { .. }]
    ));
    assert!(sip_cmds(&a).is_empty(), "no second BYE: {a:?}");
    assert_eq!(w.states(), [CallState::Hangup]);
    assert_eq!(w.engine.active_calls(), 0);
    // Ended calls leave the table after the linger time.
    w.now += Duration::from_secs(6);
    w.engine.handle_timeout(w.now, &mut w.gw);
    assert!(w.engine.rows().is_empty());
}

#[test]
fn a_routed_caller_outside_the_gateway_identity_is_presented_as_that_identity() {
    // The engine is told another identity than the one the routing's caller falls under
    // (`tel:+8888;101`): it cannot be FROM, the registered identity is, and cig.log says so.
    let mut w = World::with_identity("tel:+9999");
    w.invite("sip:101@pbx.com", "sip:94670123456@secure.com");
    let a = w.take();
    let id = w.phone_incoming();
    assert_eq!(w.phone.calls.get(&id).unwrap().from, "tel:+8888");
    assert_eq!(w.engine.rows()[0].out_from, "tel:+8888;101");
    assert!(
        logs(&a).iter().any(|l| l.contains(
            "the routed caller tel:+8888;101 is not under the gateway's identity tel:+9999"
        )),
        "{a:?}"
    );
}

#[test]
fn session_log_of_a_routed_sip_call_has_every_state_in_order() {
    let mut w = World::new();
    let h = w.invite("sip:101@pbx.com", "sip:94670123456@secure.com");
    let id = w.phone_incoming();
    let f = w.phone.calls.growl(&id).unwrap();
    w.phone.send(f);
    let media = Media {
        codecs: vec![8],
        dtmf_pt: 101,
        ssrc: 9,
    };
    let f = w.phone.calls.answer(&id, &media).unwrap();
    w.phone.send(f);
    w.pump();
    let f = w.phone.calls.hangup(&id, HangupReason::Normal).unwrap();
    w.phone.send(f);
    w.pump();
    let a = w.take();
    assert_eq!(
        session_states(&a),
        ["routing", "routed", "trying", "ringing", "talk", "hangup"]
    );
    // BYE from the secure side: the PBX leg gets BYE.
    assert!(
        sip_cmds(&a)
            .iter()
            .any(|c| matches!(c, SipCommand::Hangup(x) if *x == h))
    );
    let last = a
        .iter()
        .filter_map(|a| match a {
            Action::SessionLog(l) => Some(l.clone()),
            _ => None,
        })
        .next_back()
        .unwrap();
    let f: Vec<&str> = last.trim_end().split(", ").collect();
    assert_eq!(f.len(), 9, "{last}");
    assert_eq!(f[0], "event");
    assert_eq!(
        &f[2..8],
        [
            "sip:101@pbx.com",
            "sip:94670123456@secure.com",
            "tel:+8888;101",
            "tel:+4670123456",
            "hangup",
            &format!("call-{}@192.0.2.50", h.0),
        ]
    );
    assert_eq!(f[8], cig_umsg::call::session_id_text(&id));
}

#[test]
fn secure_to_sip_call_places_an_invite_and_maps_progress_back() {
    let mut w = World::new();
    let id = w.phone_dials("tel:+8888w101");
    let a = w.take();
    let Some(SipCommand::Place(inv)) = sip_cmds(&a).first().copied() else {
        panic!("no INVITE: {a:?}");
    };
    let Invite {
        call,
        uri,
        from,
        sdp,
        credentials,
        ..
    } = &**inv;
    assert_eq!(uri.to_string(), "sip:101@pbx.com");
    assert_eq!(from.uri.to_string(), "sip:4670123456@secure.com");
    assert!(credentials.is_none());
    let offer = String::from_utf8(sdp.to_vec()).unwrap();
    assert!(offer.contains("m=audio 20002 RTP/AVP 8 0 101"), "{offer}");
    let Command::CreateSession { a: la, .. } = relay_cmds(&a)[0] else {
        panic!()
    };
    // Leg A: the switch's relay address from the BANG, the phone's keys.
    assert_eq!(la.remote, Some("203.0.113.5:30000".parse().unwrap()));
    let pc = w.phone.calls.get(&id).unwrap();
    assert_eq!(
        la.srtp.as_ref().unwrap().inbound.key.expose(),
        &pc.keys.master_key[..]
    );
    let call = *call;
    let h = CallHandle(7);
    w.engine
        .on_sip_placed(call, Some((h, "out-7@10.0.0.1".into())), w.now, &mut w.gw);
    w.sip(Event::Trying { call: h });
    assert_eq!(w.states(), [CallState::Try]);
    // session.log: the UMSG session on the caller's side, the INVITE's Call-ID on the callee's.
    let trying = w
        .take()
        .into_iter()
        .find_map(|a| match a {
            Action::SessionLog(l) if l.contains(", trying, ") => Some(l),
            _ => None,
        })
        .expect("a trying line");
    let sid = cig_umsg::call::session_id_text(&id);
    assert!(
        trying.ends_with(&format!(", trying, {sid}, out-7@10.0.0.1\n")),
        "{trying}"
    );
    w.sip(Event::Ringing {
        call: h,
        status: 180,
        sdp: None,
    });
    assert_eq!(w.phone_state(&id).0, UmsgState::Growl);
    assert_eq!(w.states(), [CallState::Ring]);
    let answer = "v=0\r\no=- 2 1 IN IP4 192.0.2.60\r\ns=-\r\nc=IN IP4 192.0.2.60\r\nt=0 0\r\n\
m=audio 41000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
    w.sip(Event::Answered {
        call: h,
        sdp: Bytes::from_static(answer.as_bytes()),
    });
    assert_eq!(w.phone_state(&id).0, UmsgState::Talk);
    let talk = w
        .phone
        .calls
        .get(&id)
        .unwrap()
        .remote_media
        .clone()
        .unwrap();
    assert_eq!(
        talk.codecs,
        [8],
        "the secure side keeps the codec it offered first"
    );
    let a = w.take();
    assert!(relay_cmds(&a).iter().any(|c| matches!(c,
        Command::UpdateSession { b: Some(u), .. }
            if u.remote == Some("192.0.2.60:41000".parse().unwrap())
            && u.codec == Some(cig_media::control::Codec::Pcmu))));
    assert_eq!(w.states(), [CallState::Answer]);
    // HANGUP from the phone: BYE to the PBX.
    let f = w.phone.calls.hangup(&id, HangupReason::Normal).unwrap();
    w.phone.send(f);
    w.pump();
    let a = w.take();
    assert!(matches!(sip_cmds(&a)[..], [SipCommand::Hangup(x)] if *x == h));
    assert_eq!(session_states(&a), ["hangup"]);
    assert_eq!(w.states(), [CallState::Hangup]);
}

#[test]
fn digest_credentials_come_from_the_entry_auth() {
    let mut w = World::new();
    w.phone_dials("tel:+8888;7001");
    let a = w.take();
    let Some(SipCommand::Place(inv)) = sip_cmds(&a).first().copied() else {
        panic!("no INVITE: {a:?}");
    };
    let (uri, credentials) = (&inv.uri, &inv.credentials);
    assert_eq!(uri.to_string(), "sip:7001@pbx.com");
    assert_eq!(credentials.as_ref().map(|c| c.username()), Some("gw"));
    assert!(
        !format!("{a:?}").contains("s3cret"),
        "the password is never shown"
    );
}

#[test]
fn no_route_is_404_towards_sip_and_no_route_towards_umsg() {
    let mut w = World::new();
    let h = w.invite("sip:101@pbx.com", "sip:555@elsewhere.com");
    let a = w.take();
    assert!(matches!(sip_cmds(&a)[..], [SipCommand::Reject(x, 404)] if *x == h));
    assert_eq!(session_states(&a), ["routing", "failed"]);
    assert!(relay_cmds(&a).is_empty());
    assert_eq!(w.states(), [CallState::Reject]);

    let id = w.phone_dials("tel:+8888");
    let a = w.take();
    assert_eq!(session_states(&a), ["routing", "failed"]);
    assert_eq!(
        w.phone_state(&id),
        (UmsgState::Hangup, Some(HangupReason::NoRoute))
    );
    assert!(sip_cmds(&a).is_empty() && relay_cmds(&a).is_empty());
}

#[test]
fn busy_maps_both_ways() {
    let mut w = World::new();
    // Secure → SIP: 486 from the PBX is HANGUP(busy).
    let id = w.phone_dials("tel:+8888;101");
    let call = match sip_cmds(&w.take()).first() {
        Some(SipCommand::Place(inv)) => inv.call,
        other => panic!("{other:?}"),
    };
    w.engine.on_sip_placed(
        call,
        Some((CallHandle(3), "c3@gw".into())),
        w.now,
        &mut w.gw,
    );
    w.sip(Event::Rejected {
        call: CallHandle(3),
        status: 486,
        reason: "Busy Here".into(),
    });
    assert_eq!(
        w.phone_state(&id),
        (UmsgState::Hangup, Some(HangupReason::Busy))
    );
    assert_eq!(w.states(), [CallState::Reject]);
    assert!(matches!(
        relay_cmds(&w.take())[..],
        [Command::DeleteSession { .. }]
    ));

    // SIP → secure: the phone is busy, the PBX gets 486.
    let h = w.invite("sip:101@pbx.com", "sip:94670123456@secure.com");
    let id = w.phone_incoming();
    let f = w.phone.calls.hangup(&id, HangupReason::Busy).unwrap();
    w.phone.send(f);
    w.pump();
    let a = w.take();
    assert!(
        sip_cmds(&a)
            .iter()
            .any(|c| matches!(c, SipCommand::Reject(x, 486) if *x == h))
    );
    assert_eq!(w.engine.rows()[1].state, CallState::Reject);
}

#[test]
fn cancel_before_answer_ends_the_secure_leg() {
    let mut w = World::new();
    let h = w.invite("sip:101@pbx.com", "sip:94670123456@secure.com");
    let id = w.phone_incoming();
    w.take();
    w.sip(Event::Ended {
        call: h,
        reason: EndReason::Cancelled,
    });
    assert_eq!(
        w.phone_state(&id),
        (UmsgState::Hangup, Some(HangupReason::Normal))
    );
    let a = w.take();
    assert!(sip_cmds(&a).is_empty());
    assert!(matches!(
        relay_cmds(&a)[..],
        [Command::DeleteSession { .. }]
    ));

    // The secure caller gives up before the PBX answers: the INVITE is cancelled.
    let id = w.phone_dials("tel:+8888;101");
    let call = match sip_cmds(&w.take()).first() {
        Some(SipCommand::Place(inv)) => inv.call,
        other => panic!("{other:?}"),
    };
    w.engine.on_sip_placed(
        call,
        Some((CallHandle(9), "c9@gw".into())),
        w.now,
        &mut w.gw,
    );
    let f = w.phone.calls.hangup(&id, HangupReason::Normal).unwrap();
    w.phone.send(f);
    w.pump();
    assert!(matches!(
        sip_cmds(&w.take())[..],
        [SipCommand::Hangup(CallHandle(9))]
    ));
}

#[test]
fn media_timeout_and_lost_links_end_calls_and_refuse_new_ones() {
    let mut w = World::new();
    let h = w.invite("sip:101@pbx.com", "sip:94670123456@secure.com");
    let id = w.phone_incoming();
    let media = Media {
        codecs: vec![8],
        dtmf_pt: 101,
        ssrc: 9,
    };
    let f = w.phone.calls.answer(&id, &media).unwrap();
    w.phone.send(f);
    w.pump();
    w.take();
    w.engine.on_relay_event(
        Reply::MediaTimeout {
            session: "call-1".into(),
            leg: LegId::A,
        },
        w.now,
        &mut w.gw,
    );
    w.pump();
    let a = w.take();
    assert!(matches!(sip_cmds(&a)[..], [SipCommand::Hangup(x)] if *x == h));
    assert_eq!(
        w.phone_state(&id),
        (UmsgState::Hangup, Some(HangupReason::Timeout))
    );

    // Relay lost mid-call: both legs end; new INVITEs get 503 until it is back.
    let h2 = w.invite("sip:101@pbx.com", "sip:94670123456@secure.com");
    let id2 = w.phone_incoming();
    w.take();
    w.engine.relay_lost(w.now, &mut w.gw);
    w.pump();
    let a = w.take();
    assert!(
        sip_cmds(&a)
            .iter()
            .any(|c| matches!(c, SipCommand::Reject(x, 503) if *x == h2))
    );
    assert!(
        relay_cmds(&a).is_empty(),
        "nothing to delete on a dead relay"
    );
    assert_eq!(w.phone_state(&id2).0, UmsgState::Hangup);
    let h3 = w.invite("sip:101@pbx.com", "sip:94670123456@secure.com");
    assert!(matches!(sip_cmds(&w.take())[..], [SipCommand::Reject(x, 503)] if *x == h3));
    w.engine.relay_restored();
    w.invite("sip:101@pbx.com", "sip:94670123456@secure.com");
    assert!(matches!(
        relay_cmds(&w.take())[0],
        Command::CreateSession { .. }
    ));
}

#[test]
fn unanswered_calls_time_out_with_408() {
    let mut w = World::new();
    let h = w.invite("sip:101@pbx.com", "sip:94670123456@secure.com");
    let id = w.phone_incoming();
    w.take();
    let t = w.engine.poll_timeout().unwrap();
    assert_eq!(t, w.now + Duration::from_secs(60));
    w.now = t;
    w.engine.handle_timeout(w.now, &mut w.gw);
    w.pump();
    assert!(matches!(sip_cmds(&w.take())[..], [SipCommand::Reject(x, 408)] if *x == h));
    assert_eq!(
        w.phone_state(&id),
        (UmsgState::Hangup, Some(HangupReason::Timeout))
    );
}

/// A PBX re-offer `dir` from 192.0.2.50 (or `c=0.0.0.0`) and the answer the user agent sent.
fn reoffer(h: CallHandle, addr: &str, port: u16, dir: &str, answer_dir: &str) -> Event {
    let offer = format!(
        "v=0\r\no=- 1 2 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na={dir}\r\n"
    );
    let answer = format!(
        "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=CIG\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
         m=audio 20002 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na={answer_dir}\r\n"
    );
    Event::SessionUpdated {
        call: h,
        remote_sdp: Bytes::from(offer),
        local_sdp: Bytes::from(answer),
    }
}

fn logs(actions: &[Action]) -> Vec<&str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Log(_, l) => Some(l.as_str()),
            _ => None,
        })
        .collect()
}

/// The direction of the one relay update in `actions` if it changes nothing else on leg B.
fn b_direction_only(actions: &[Action]) -> Option<Direction> {
    match relay_cmds(actions)[..] {
        [
            Command::UpdateSession {
                a: None,
                b: Some(u),
                ..
            },
        ] if u.remote.is_none() && u.codec.is_none() && u.telephone_event_pt.is_none() => {
            u.direction
        }
        _ => None,
    }
}

fn timeout_b(w: &mut World) {
    w.engine.on_relay_event(
        Reply::MediaTimeout {
            session: "call-1".into(),
            leg: LegId::B,
        },
        w.now,
        &mut w.gw,
    );
    w.pump();
}

#[test]
fn hold_and_resume_from_the_pbx_keep_the_call_and_follow_the_pbx_leg() {
    let mut w = World::new();
    let h = w.invite("sip:101@pbx.com", "sip:94670123456@secure.com");
    let id = w.phone_incoming();
    let media = Media {
        codecs: vec![8],
        dtmf_pt: 101,
        ssrc: 9,
    };
    let f = w.phone.calls.answer(&id, &media).unwrap();
    w.phone.send(f);
    w.pump();
    w.take();

    // Hold (sendonly, same address): the relay stops sending to the PBX (it plays `recvonly`
    // on leg B, the PBX's music still reaches the phone); the hold is logged.
    w.sip(reoffer(h, "192.0.2.50", 40000, "sendonly", "recvonly"));
    let a = w.take();
    assert_eq!(b_direction_only(&a), Some(Direction::RecvOnly), "{a:?}");
    assert!(
        logs(&a)
            .iter()
            .any(|l| l.contains("call 1: the PBX put the call on hold (sendonly)")),
        "{a:?}"
    );
    // The PBX leg falls silent while held (inactive): the call is kept.
    w.sip(reoffer(h, "192.0.2.50", 40000, "inactive", "inactive"));
    assert_eq!(b_direction_only(&w.take()), Some(Direction::Inactive));
    timeout_b(&mut w);
    let a = w.take();
    assert!(sip_cmds(&a).is_empty(), "{a:?}");
    assert_eq!(w.states(), [CallState::Answer]);
    assert_eq!(w.phone_state(&id).0, UmsgState::Talk);
    // An RFC 2543 hold (c=0.0.0.0): the relay keeps the address it has (0.0.0.0 would be
    // this host) and does not send to the PBX.
    w.sip(reoffer(h, "0.0.0.0", 40000, "sendrecv", "sendrecv"));
    assert_eq!(b_direction_only(&w.take()), Some(Direction::RecvOnly));

    // Resume from a new address: leg B follows and sends again, the resume is logged.
    w.sip(reoffer(h, "192.0.2.60", 41000, "sendrecv", "sendrecv"));
    let a = w.take();
    assert!(
        matches!(relay_cmds(&a)[..], [Command::UpdateSession { a: None, b: Some(u), .. }]
            if u.remote == Some("192.0.2.60:41000".parse().unwrap()) && u.codec.is_none()
                && u.direction == Some(Direction::SendRecv)),
        "{a:?}"
    );
    assert!(
        logs(&a)
            .iter()
            .any(|l| l.contains("the PBX resumed the call"))
    );
    // Not held any more: a silent PBX leg ends the call as usual.
    timeout_b(&mut w);
    let a = w.take();
    assert!(matches!(sip_cmds(&a)[..], [SipCommand::Hangup(x)] if *x == h));
    assert_eq!(
        w.phone_state(&id),
        (UmsgState::Hangup, Some(HangupReason::Timeout))
    );
}
