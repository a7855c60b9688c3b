//! What an engine does with one received packet: the [`PacketPath`] of a session.
//!
//! The relay's path is [`Bridge`], the cig-media bridge session (SRTP ⇄ RTP, transcoding, DTMF);
//! the [`PlainForward`] path only swaps legs (recv + send, no crypto) and exists so the load tool
//! can measure the relay's cost against a plain UDP forwarder with the same sockets and the same
//! engine loop (`cig-relay --engine plain`).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cig_media::bridge::{self, Action, DropReason, Event, Leg, LegSrtp, Session, SessionConfig};
use cig_media::control::{
    AddrOverride, Codec, ErrorCode, KeyMaterial, LegConfig, LegId, LegUpdate, SrtpConfig,
    SrtpProfileName, apply_overrides,
};
use cig_media::g711::Law;
use cig_media::srtp::{MasterKey, SrtpProfile};

/// The outcome of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send `buf[..len]` from `leg`'s RTP (or RTCP) socket to `dst`.
    Forward {
        /// The leg whose socket sends.
        leg: LegId,
        /// Whether to send from the RTCP socket.
        rtcp: bool,
        /// Where to.
        dst: SocketAddr,
        /// How many bytes of the buffer.
        len: usize,
    },
    /// Nothing to send (invalid, unauthenticated, or no destination known yet).
    Drop,
    /// A valid packet not forwarded because of the legs' directions (a hold).
    Withheld,
}

/// A session's packet processing, owned by one engine thread.
pub trait PacketPath: Send + Sized + 'static {
    /// Builds the path for a new session (keys are expanded here, on the control thread).
    /// `media_timeout`: how long a leg may stay silent before [`PacketPath::poll_timeout`]
    /// reports it.
    fn build(
        a: &LegConfig,
        b: &LegConfig,
        media_timeout: Duration,
        now: Instant,
    ) -> Result<Self, (ErrorCode, String)>;
    /// Processes `buf[..len]` received on `leg` from `src`, in place.
    fn on_packet(
        &mut self,
        leg: LegId,
        rtcp: bool,
        src: SocketAddr,
        buf: &mut [u8],
        len: usize,
        now: Instant,
    ) -> Verdict;
    /// Applies a controller update to `leg` at `now`.
    fn update(
        &mut self,
        leg: LegId,
        update: &LegUpdate,
        now: Instant,
    ) -> Result<(), (ErrorCode, String)>;
    /// The peer address `leg` sends to, if known.
    fn peer(&self, leg: LegId) -> Option<SocketAddr>;
    /// A leg that has been silent for the media timeout, reported once per silence; call until
    /// `None`.
    fn poll_timeout(&mut self, now: Instant) -> Option<LegId>;
}

/// Index of a leg in two-element arrays.
pub fn leg_index(leg: LegId) -> usize {
    match leg {
        LegId::A => 0,
        LegId::B => 1,
    }
}

/// The other leg.
pub fn other(leg: LegId) -> LegId {
    match leg {
        LegId::A => LegId::B,
        LegId::B => LegId::A,
    }
}

/// Recv + send with no crypto and no transcoding: the baseline forwarder. Of an update it
/// applies only a new remote address (codecs, keys and directions are the bridge's business).
#[derive(Debug)]
pub struct PlainForward {
    peers: [Option<SocketAddr>; 2],
    overrides: [Vec<AddrOverride>; 2],
    media_timeout: Duration,
    last_rx: [Instant; 2],
    timed_out: [bool; 2],
}

impl PacketPath for PlainForward {
    fn build(
        a: &LegConfig,
        b: &LegConfig,
        media_timeout: Duration,
        now: Instant,
    ) -> Result<Self, (ErrorCode, String)> {
        let overrides = [
            a.remote_addr_overrides.clone(),
            b.remote_addr_overrides.clone(),
        ];
        let peers = [
            a.remote.map(|r| apply_overrides(&overrides[0], r)),
            b.remote.map(|r| apply_overrides(&overrides[1], r)),
        ];
        Ok(PlainForward {
            peers,
            overrides,
            media_timeout,
            last_rx: [now; 2],
            timed_out: [false; 2],
        })
    }

    fn on_packet(
        &mut self,
        leg: LegId,
        rtcp: bool,
        src: SocketAddr,
        _buf: &mut [u8],
        len: usize,
        now: Instant,
    ) -> Verdict {
        if !rtcp {
            // Symmetric RTP: answer where the peer sends from.
            let i = leg_index(leg);
            self.peers[i] = Some(src);
            self.last_rx[i] = now;
            self.timed_out[i] = false;
        }
        let out = other(leg);
        match self.peers[leg_index(out)] {
            Some(peer) => {
                let dst = if rtcp {
                    SocketAddr::new(peer.ip(), peer.port().wrapping_add(1))
                } else {
                    peer
                };
                Verdict::Forward {
                    leg: out,
                    rtcp,
                    dst,
                    len,
                }
            }
            None => Verdict::Drop,
        }
    }

    fn update(
        &mut self,
        leg: LegId,
        update: &LegUpdate,
        _now: Instant,
    ) -> Result<(), (ErrorCode, String)> {
        let i = leg_index(leg);
        if let Some(r) = update.remote {
            self.peers[i] = Some(apply_overrides(&self.overrides[i], r));
        }
        Ok(())
    }

    fn peer(&self, leg: LegId) -> Option<SocketAddr> {
        self.peers[leg_index(leg)]
    }

    fn poll_timeout(&mut self, now: Instant) -> Option<LegId> {
        for leg in [LegId::A, LegId::B] {
            let i = leg_index(leg);
            if !self.timed_out[i]
                && now.saturating_duration_since(self.last_rx[i]) >= self.media_timeout
            {
                self.timed_out[i] = true;
                return Some(leg);
            }
        }
        None
    }
}

fn leg_of(leg: LegId) -> Leg {
    match leg {
        LegId::A => Leg::A,
        LegId::B => Leg::B,
    }
}

fn leg_id(leg: Leg) -> LegId {
    match leg {
        Leg::A => LegId::A,
        Leg::B => LegId::B,
    }
}

fn law(codec: Codec) -> Law {
    match codec {
        Codec::Pcmu => Law::Ulaw,
        Codec::Pcma => Law::Alaw,
    }
}

fn master_key(profile: SrtpProfile, k: &KeyMaterial) -> Result<MasterKey, (ErrorCode, String)> {
    MasterKey::new(profile, k.key.expose(), k.salt.expose())
        .map_err(|e| (ErrorCode::Unsupported, format!("SRTP key: {e}")))
}

fn leg_srtp(c: &SrtpConfig) -> Result<LegSrtp, (ErrorCode, String)> {
    let profile = match c.profile {
        SrtpProfileName::AesCm128HmacSha1_80 => SrtpProfile::Aes128CmHmacSha1_80,
        SrtpProfileName::AesCm128HmacSha1_32 => SrtpProfile::Aes128CmHmacSha1_32,
        SrtpProfileName::AeadAes128Gcm => SrtpProfile::AeadAes128Gcm,
    };
    Ok(LegSrtp {
        inbound: master_key(profile, &c.inbound)?,
        outbound: master_key(profile, &c.outbound)?,
    })
}

/// A random SSRC (RFC 3550 §8.1 asks for randomness, not secrecy): std seeds `RandomState`
/// from the OS once per thread and steps the keys for every new one, so each call differs.
fn random_ssrc() -> u32 {
    let mut h = RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish() as u32
}

/// The production path: a cig-media bridge session per call.
#[derive(Debug)]
pub struct Bridge {
    session: Session,
    overrides: [Vec<AddrOverride>; 2],
}

fn bridge_leg(c: &LegConfig) -> Result<bridge::LegConfig, (ErrorCode, String)> {
    let mut leg = bridge::LegConfig::new(law(c.codec), random_ssrc());
    leg.payload_type = c.codec_pt();
    leg.dtmf_payload_type = c.telephone_event_pt;
    leg.srtp = c.srtp.as_ref().map(leg_srtp).transpose()?;
    leg.remote = c
        .remote
        .map(|r| apply_overrides(&c.remote_addr_overrides, r));
    Ok(leg)
}

impl PacketPath for Bridge {
    fn build(
        a: &LegConfig,
        b: &LegConfig,
        media_timeout: Duration,
        now: Instant,
    ) -> Result<Self, (ErrorCode, String)> {
        let config = SessionConfig {
            a: bridge_leg(a)?,
            b: bridge_leg(b)?,
            media_timeout,
        };
        // Each leg's own override rules were applied above (legs belong to different
        // interfaces, each with its own `rtp_remote_addr_override` list).
        Ok(Bridge {
            session: Session::new(&config, &[], now),
            overrides: [
                a.remote_addr_overrides.clone(),
                b.remote_addr_overrides.clone(),
            ],
        })
    }

    fn on_packet(
        &mut self,
        leg: LegId,
        rtcp: bool,
        src: SocketAddr,
        buf: &mut [u8],
        len: usize,
        now: Instant,
    ) -> Verdict {
        let action = if rtcp {
            self.session.on_rtcp(leg_of(leg), src, buf, len)
        } else {
            self.session.on_rtp(leg_of(leg), src, buf, len, now)
        };
        match action {
            Action::Forward { leg, dst, len } => Verdict::Forward {
                leg: leg_id(leg),
                rtcp,
                dst,
                len,
            },
            Action::Drop(DropReason::Direction) => Verdict::Withheld,
            Action::Drop(_) => Verdict::Drop,
        }
    }

    fn update(
        &mut self,
        leg: LegId,
        update: &LegUpdate,
        now: Instant,
    ) -> Result<(), (ErrorCode, String)> {
        let keys = update.srtp.as_ref().map(leg_srtp).transpose()?;
        if update.codec.is_some()
            || update.payload_type.is_some()
            || update.telephone_event_pt.is_some()
        {
            // A new codec without a payload type takes its static one; a new payload type
            // alone keeps the law.
            let (law_now, pt_now, dtmf_now) = self.session.codec(leg_of(leg));
            let (law, static_pt) = update.codec.map_or((law_now, pt_now), |c| {
                (law(c), law(c).static_payload_type())
            });
            self.session.set_codec(
                leg_of(leg),
                law,
                update.payload_type.unwrap_or(static_pt),
                update.telephone_event_pt.or(dtmf_now),
            );
        }
        if let Some(r) = update.remote {
            let r = apply_overrides(&self.overrides[leg_index(leg)], r);
            self.session.set_remote(leg_of(leg), Some(r), None, &[]);
        }
        if let Some(keys) = keys {
            self.session.set_srtp(leg_of(leg), Some(&keys));
        }
        if let Some(d) = update.direction {
            self.session.set_direction(leg_of(leg), d, now);
        }
        Ok(())
    }

    fn peer(&self, leg: LegId) -> Option<SocketAddr> {
        self.session.remote(leg_of(leg))
    }

    fn poll_timeout(&mut self, now: Instant) -> Option<LegId> {
        while let Some(ev) = self.session.poll_timeout(now) {
            if let Event::MediaTimeout { leg } = ev {
                return Some(leg_id(leg));
            }
        }
        None
    }
}
