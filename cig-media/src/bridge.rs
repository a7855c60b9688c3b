//! The relay engine's per-call state: a [`Session`] joins leg A (towards the secure domain,
//! usually SRTP) and leg B (towards the PBX, plain RTP, G.711 μ-law or A-law).
//!
//! The session is sans-IO. The driver receives a datagram into a buffer with spare room
//! ([`MAX_OVERHEAD`] bytes beyond the packet, for an SRTP tag), calls [`Session::on_rtp`] or
//! [`Session::on_rtcp`] with the leg it arrived on, the source address and `now`, and gets an
//! [`Action`]: send `buf[..len]` to `dst` from the other leg's socket, or drop it (with the
//! reason). Per packet it: unprotects (SRTP leg) or validates (RTP leg); learns the peer's address
//! from the first authenticated/valid packet (symmetric RTP); converts the payload between the
//! legs' G.711 laws in place when they differ; maps the audio and telephone-event payload types;
//! rewrites SSRC, sequence number and timestamp so that each outgoing stream stays continuous
//! even when the incoming SSRC changes; protects (SRTP leg). Nothing is allocated.
//!
//! [`Session::poll_timeout`] reports a leg that has been silent for the media timeout once;
//! [`Session::next_timeout`] says when to call it next.
//!
//! Each leg has a [`Direction`] ([`Session::set_direction`], e.g. a PBX's hold): RTP is sent to
//! a leg only while it `sends`, and RTP from a leg is forwarded only while it `receives`. A
//! packet held back this way is still unprotected and authenticated (the SRTP receive state,
//! the learned peer and the media-timeout clock move as usual) and counted in
//! [`LegStats::withheld`]; the outgoing sequence numbers continue without a gap at the next
//! packet sent (marker bit set, timestamps kept on the source's clock, like a talkspurt after
//! silence), so the receiver's SRTP rollover counter stays in step. RTCP flows whatever the
//! direction (RFC 3264 §5.1). A leg that does not receive is not reported silent.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::g711::{self, Law};
use crate::rtp::{self, RtpHeader};
use crate::srtp::{MasterKey, SrtpContext};
use crate::{Error, rtcp};

/// Extra bytes the driver must leave after each received packet in its buffer (SRTP/SRTCP tag
/// and SRTCP index added when forwarding to an SRTP leg).
pub const MAX_OVERHEAD: usize = crate::srtp::MAX_RTCP_OVERHEAD;

/// Timestamp units a stream advances by when its source changes (one 20 ms G.711 frame).
const FRAME_UNITS: u32 = 160;

/// One side of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// Towards the secure domain (SRTP).
    A,
    /// Towards the PBX (RTP).
    B,
}

impl Leg {
    /// The other leg.
    pub fn other(self) -> Leg {
        match self {
            Leg::A => Leg::B,
            Leg::B => Leg::A,
        }
    }
}

/// The media direction of a leg as the relay plays it: the direction attribute of the SDP the
/// controller sent to that leg's peer (`recvonly` when the peer put the call on hold with
/// `sendonly`). Absent in a control message means `sendrecv`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Media both ways.
    #[default]
    SendRecv,
    /// The relay sends to the leg's peer; what the peer sends is not forwarded.
    SendOnly,
    /// The relay forwards what the peer sends and sends it nothing (the peer holds the call).
    RecvOnly,
    /// Nothing either way.
    Inactive,
}

impl Direction {
    /// Whether RTP is sent to the leg's peer.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether RTP from the leg's peer is forwarded (and its silence reported).
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// SRTP keys of a leg: the peer's (to unprotect what it sends) and ours (to protect what we
/// send). Both must use the same profile.
#[derive(Debug, Clone)]
pub struct LegSrtp {
    /// The key the peer protects its packets with.
    pub inbound: MasterKey,
    /// The key we protect our packets with.
    pub outbound: MasterKey,
}

/// Configuration of one leg.
#[derive(Debug, Clone)]
pub struct LegConfig {
    /// The G.711 law spoken on this leg.
    pub law: Law,
    /// Payload type of audio on this leg (normally `law.static_payload_type()`).
    pub payload_type: u8,
    /// Payload type of RFC 4733 telephone-events on this leg, if negotiated.
    pub dtmf_payload_type: Option<u8>,
    /// The SSRC we send on this leg.
    pub ssrc: u32,
    /// SRTP keys; `None` for plain RTP.
    pub srtp: Option<LegSrtp>,
    /// The peer's RTP address as announced in signalling (before `rtp_remote_addr_override`);
    /// packets go here until the peer's real address is learned.
    pub remote: Option<SocketAddr>,
    /// The peer's RTCP address if announced separately; otherwise the RTP port + 1.
    pub remote_rtcp: Option<SocketAddr>,
}

impl LegConfig {
    /// A plain-RTP leg speaking `law` with its static payload type, telephone-events on 101.
    pub fn new(law: Law, ssrc: u32) -> LegConfig {
        LegConfig {
            law,
            payload_type: law.static_payload_type(),
            dtmf_payload_type: Some(101),
            ssrc,
            srtp: None,
            remote: None,
            remote_rtcp: None,
        }
    }
}

/// Configuration of a session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Leg A (secure domain side).
    pub a: LegConfig,
    /// Leg B (PBX side).
    pub b: LegConfig,
    /// A leg that receives no RTP for this long raises [`Event::MediaTimeout`].
    pub media_timeout: Duration,
}

/// `rtp_remote_addr_override <IP old> <IP new>` rules: an announced address whose IP is `old`
/// is replaced by `new`, port kept. The first matching rule wins.
pub fn apply_override(addr: SocketAddr, overrides: &[(IpAddr, IpAddr)]) -> SocketAddr {
    overrides
        .iter()
        .find(|(old, _)| *old == addr.ip())
        .map_or(addr, |&(_, new)| SocketAddr::new(new, addr.port()))
}

/// What to do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send `buf[..len]` to `dst` from `leg`'s socket.
    Forward {
        /// The leg to send on.
        leg: Leg,
        /// Destination address.
        dst: SocketAddr,
        /// Length of the packet now in the buffer.
        len: usize,
    },
    /// Do not send anything.
    Drop(DropReason),
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Not a valid RTP/RTCP packet.
    Malformed(Error),
    /// SRTP/SRTCP rejected it (authentication, replay, too old).
    Srtp(Error),
    /// From an address other than the plain-RTP peer already learned.
    UnexpectedSource(SocketAddr),
    /// A payload type this leg did not negotiate (or DTMF the other leg cannot take).
    PayloadType(u8),
    /// The other leg has no known address yet.
    NoDestination,
    /// A valid packet held back by the legs' [`Direction`]s (hold): the leg it came from does
    /// not receive, or the leg it would go to does not send.
    Direction,
    /// Protecting for the other leg failed (e.g. the buffer has no room for the tag).
    Protect(Error),
}

/// Something the driver should know about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// `leg` received no RTP for the media timeout (reported once until media resumes).
    MediaTimeout {
        /// The silent leg.
        leg: Leg,
    },
}

/// Packet counters of one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LegStats {
    /// RTP packets received and accepted.
    pub rx_packets: u64,
    /// RTP bytes received and accepted (as on the wire).
    pub rx_bytes: u64,
    /// RTP packets sent on this leg.
    pub tx_packets: u64,
    /// RTP bytes sent on this leg (as on the wire).
    pub tx_bytes: u64,
    /// RTCP packets received and accepted.
    pub rtcp_rx_packets: u64,
    /// Packets received on this leg and dropped.
    pub dropped: u64,
    /// Valid RTP packets received on this leg and not forwarded because of the legs'
    /// [`Direction`]s (hold); not counted in `dropped`.
    pub withheld: u64,
}

/// Keeps the sequence numbers and timestamps sent on a leg continuous across changes of the
/// incoming SSRC.
#[derive(Debug, Clone, Copy, Default)]
struct Rewriter {
    in_ssrc: Option<u32>,
    seq_delta: u16,
    ts_delta: u32,
    last_seq: u16,
    last_ts: u32,
    /// Packets of the same source may have been held back ([`Direction`]): the next one
    /// continues the sequence from the last one sent.
    resume: bool,
}

impl Rewriter {
    /// The outgoing (sequence, timestamp, new talkspurt: mark it) for an incoming packet.
    fn map(&mut self, ssrc: u32, seq: u16, ts: u32) -> (u16, u32, bool) {
        let changed = self.in_ssrc != Some(ssrc);
        let resumed = std::mem::take(&mut self.resume) && self.in_ssrc.is_some();
        if changed {
            if self.in_ssrc.is_some() {
                self.seq_delta = self.last_seq.wrapping_add(1).wrapping_sub(seq);
                self.ts_delta = self.last_ts.wrapping_add(FRAME_UNITS).wrapping_sub(ts);
            }
            self.in_ssrc = Some(ssrc);
        } else if resumed {
            // No gap for the receiver (its SRTP rollover guess stays right); the timestamp
            // keeps the source's clock, so the pause shows as silence.
            self.seq_delta = self.last_seq.wrapping_add(1).wrapping_sub(seq);
        }
        let out = (
            seq.wrapping_add(self.seq_delta),
            ts.wrapping_add(self.ts_delta),
        );
        // Keep the newest (serial-number arithmetic) as the base for the next change.
        if changed || resumed || (out.0.wrapping_sub(self.last_seq) as i16) > 0 {
            self.last_seq = out.0;
            self.last_ts = out.1;
        }
        (out.0, out.1, changed || resumed)
    }
}

/// The SRTP contexts of a leg: what the peer sends us, and what we send it.
#[derive(Debug)]
struct LegCrypto {
    rx: SrtpContext,
    tx: SrtpContext,
}

#[derive(Debug)]
struct LegState {
    law: Law,
    payload_type: u8,
    dtmf_payload_type: Option<u8>,
    ssrc: u32,
    /// Boxed so that a plain-RTP leg does not carry the space of two contexts.
    srtp: Option<Box<LegCrypto>>,
    announced: Option<SocketAddr>,
    announced_rtcp: Option<SocketAddr>,
    learned: Option<SocketAddr>,
    learned_rtcp: Option<SocketAddr>,
    /// SSRC of the peer's stream on this leg (from its last accepted RTP packet).
    peer_ssrc: Option<u32>,
    out: Rewriter,
    last_rx: Instant,
    timed_out: bool,
    direction: Direction,
    stats: LegStats,
}

impl LegState {
    fn new(cfg: &LegConfig, overrides: &[(IpAddr, IpAddr)], now: Instant) -> LegState {
        let mut leg = LegState {
            law: cfg.law,
            payload_type: cfg.payload_type,
            dtmf_payload_type: cfg.dtmf_payload_type,
            ssrc: cfg.ssrc,
            srtp: None,
            announced: None,
            announced_rtcp: None,
            learned: None,
            learned_rtcp: None,
            peer_ssrc: None,
            out: Rewriter::default(),
            last_rx: now,
            timed_out: false,
            direction: Direction::SendRecv,
            stats: LegStats::default(),
        };
        leg.set_srtp(cfg.srtp.as_ref());
        leg.set_remote(cfg.remote, cfg.remote_rtcp, overrides);
        leg
    }

    fn set_srtp(&mut self, keys: Option<&LegSrtp>) {
        self.srtp = keys.map(|k| {
            Box::new(LegCrypto {
                rx: SrtpContext::new(&k.inbound),
                tx: SrtpContext::new(&k.outbound),
            })
        });
    }

    fn set_remote(
        &mut self,
        rtp: Option<SocketAddr>,
        rtcp: Option<SocketAddr>,
        overrides: &[(IpAddr, IpAddr)],
    ) {
        self.announced = rtp.map(|a| apply_override(a, overrides));
        self.announced_rtcp = rtcp.map(|a| apply_override(a, overrides)).or_else(|| {
            self.announced
                .map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1)))
        });
        self.learned = None;
        self.learned_rtcp = None;
    }

    fn rtp_dst(&self) -> Option<SocketAddr> {
        self.learned.or(self.announced)
    }

    fn rtcp_dst(&self) -> Option<SocketAddr> {
        self.learned_rtcp.or(self.announced_rtcp)
    }

    /// Symmetric RTP: learn `src` as the peer. An SRTP leg follows any authenticated source;
    /// a plain leg keeps the first one until the remote address is set again.
    fn accept_source(
        learned: &mut Option<SocketAddr>,
        src: SocketAddr,
        secure: bool,
    ) -> Result<(), DropReason> {
        match *learned {
            Some(known) if known != src && !secure => Err(DropReason::UnexpectedSource(src)),
            _ => {
                *learned = Some(src);
                Ok(())
            }
        }
    }
}

/// The state of one relayed call. See the [module documentation](self).
#[derive(Debug)]
pub struct Session {
    a: LegState,
    b: LegState,
    media_timeout: Duration,
}

impl Session {
    /// Creates a session at `now`; `overrides` are the interface's `rtp_remote_addr_override`
    /// rules, applied to the announced remote addresses.
    pub fn new(config: &SessionConfig, overrides: &[(IpAddr, IpAddr)], now: Instant) -> Session {
        Session {
            a: LegState::new(&config.a, overrides, now),
            b: LegState::new(&config.b, overrides, now),
            media_timeout: config.media_timeout,
        }
    }

    fn leg(&self, leg: Leg) -> &LegState {
        match leg {
            Leg::A => &self.a,
            Leg::B => &self.b,
        }
    }

    fn legs_mut(&mut self, from: Leg) -> (&mut LegState, &mut LegState) {
        match from {
            Leg::A => (&mut self.a, &mut self.b),
            Leg::B => (&mut self.b, &mut self.a),
        }
    }

    /// Sets a leg's announced remote addresses (e.g. after a re-INVITE) and forgets the learned
    /// ones.
    pub fn set_remote(
        &mut self,
        leg: Leg,
        rtp: Option<SocketAddr>,
        rtcp: Option<SocketAddr>,
        overrides: &[(IpAddr, IpAddr)],
    ) {
        self.legs_mut(leg).0.set_remote(rtp, rtcp, overrides);
    }

    /// Changes a leg's codec in place (a re-INVITE that switches law or payload types): its
    /// G.711 law, audio payload type and telephone-event payload type (`None`: DTMF is not
    /// carried to or from this leg). The outgoing SSRC, sequence and timestamp continue, the
    /// learned peer and the SRTP state are kept; whether packets are transcoded is decided
    /// per packet from the two legs' laws, so it changes with the next packet.
    pub fn set_codec(
        &mut self,
        leg: Leg,
        law: Law,
        payload_type: u8,
        dtmf_payload_type: Option<u8>,
    ) {
        let state = self.legs_mut(leg).0;
        state.law = law;
        state.payload_type = payload_type;
        state.dtmf_payload_type = dtmf_payload_type;
    }

    /// A leg's current codec: law, audio payload type, telephone-event payload type.
    pub fn codec(&self, leg: Leg) -> (Law, u8, Option<u8>) {
        let state = self.leg(leg);
        (state.law, state.payload_type, state.dtmf_payload_type)
    }

    /// Sets the direction the relay plays on `leg` (see the [module documentation](self)).
    /// A leg that starts receiving again counts its media timeout from `now`; packets held
    /// back meanwhile leave no gap in the outgoing sequence numbers.
    pub fn set_direction(&mut self, leg: Leg, direction: Direction, now: Instant) {
        let (state, other) = self.legs_mut(leg);
        let was = std::mem::replace(&mut state.direction, direction);
        if direction.sends() && !was.sends() {
            state.out.resume = true;
        }
        if direction.receives() && !was.receives() {
            other.out.resume = true;
            state.last_rx = now;
            state.timed_out = false;
        }
    }

    /// The direction the relay plays on `leg`.
    pub fn direction(&self, leg: Leg) -> Direction {
        self.leg(leg).direction
    }

    /// Replaces a leg's SRTP keys (`None`: plain RTP from now on). Stream state restarts.
    pub fn set_srtp(&mut self, leg: Leg, keys: Option<&LegSrtp>) {
        self.legs_mut(leg).0.set_srtp(keys);
    }

    /// Where RTP for `leg` goes now: the learned address, else the announced one.
    pub fn remote(&self, leg: Leg) -> Option<SocketAddr> {
        self.leg(leg).rtp_dst()
    }

    /// Bytes this session occupies, inline and on the heap (the boxed SRTP contexts).
    pub fn memory_size(&self) -> usize {
        let crypto = |l: &LegState| {
            l.srtp.as_ref().map_or(0, |c| {
                std::mem::size_of::<LegCrypto>() - 2 * std::mem::size_of::<SrtpContext>()
                    + c.rx.memory_size()
                    + c.tx.memory_size()
            })
        };
        std::mem::size_of::<Session>() + crypto(&self.a) + crypto(&self.b)
    }

    /// Counters of `leg`.
    pub fn stats(&self, leg: Leg) -> LegStats {
        self.leg(leg).stats
    }

    /// Handles an RTP (or SRTP) packet `buf[..len]` that arrived on `leg` from `src`. On
    /// [`Action::Forward`] the buffer holds the packet to send; `buf` should have
    /// [`MAX_OVERHEAD`] spare bytes after `len`.
    pub fn on_rtp(
        &mut self,
        leg: Leg,
        src: SocketAddr,
        buf: &mut [u8],
        len: usize,
        now: Instant,
    ) -> Action {
        let (from, to) = self.legs_mut(leg);
        match relay_rtp(from, (to, leg.other()), src, buf, len, now) {
            Ok(action) => action,
            Err(DropReason::Direction) => {
                from.stats.withheld += 1;
                Action::Drop(DropReason::Direction)
            }
            Err(reason) => {
                from.stats.dropped += 1;
                Action::Drop(reason)
            }
        }
    }

    /// Handles an RTCP (or SRTCP) compound packet `buf[..len]` that arrived on `leg` from
    /// `src`: SSRCs are mapped to the other leg's and the packet is re-protected as needed.
    pub fn on_rtcp(&mut self, leg: Leg, src: SocketAddr, buf: &mut [u8], len: usize) -> Action {
        let (from, to) = self.legs_mut(leg);
        match relay_rtcp(from, (to, leg.other()), src, buf, len) {
            Ok(action) => action,
            Err(reason) => {
                from.stats.dropped += 1;
                Action::Drop(reason)
            }
        }
    }

    /// The next [`Event`] due at `now`, if any. Call until it returns `None`.
    pub fn poll_timeout(&mut self, now: Instant) -> Option<Event> {
        let timeout = self.media_timeout;
        for (leg, state) in [(Leg::A, &mut self.a), (Leg::B, &mut self.b)] {
            if state.direction.receives()
                && !state.timed_out
                && now.saturating_duration_since(state.last_rx) >= timeout
            {
                state.timed_out = true;
                return Some(Event::MediaTimeout { leg });
            }
        }
        None
    }

    /// When [`poll_timeout`](Self::poll_timeout) next has something to say (`None` while
    /// neither leg is receiving and not yet reported silent).
    pub fn next_timeout(&self) -> Option<Instant> {
        [&self.a, &self.b]
            .into_iter()
            .filter(|l| !l.timed_out && l.direction.receives())
            .map(|l| l.last_rx + self.media_timeout)
            .min()
    }
}

fn relay_rtp(
    from: &mut LegState,
    (to, to_leg): (&mut LegState, Leg),
    src: SocketAddr,
    buf: &mut [u8],
    len: usize,
    now: Instant,
) -> Result<Action, DropReason> {
    let wire_len = len;
    let len = match from.srtp.as_mut() {
        Some(c) => c.rx.unprotect_rtp(buf, len).map_err(DropReason::Srtp)?,
        None => len.min(buf.len()),
    };
    let pkt = &buf[..len];
    let hdr = RtpHeader::parse(pkt).map_err(DropReason::Malformed)?;
    let payload_end = hdr.payload_end(pkt).map_err(DropReason::Malformed)?;
    LegState::accept_source(&mut from.learned, src, from.srtp.is_some())?;
    from.last_rx = now;
    from.timed_out = false;
    from.peer_ssrc = Some(hdr.ssrc);
    from.stats.rx_packets += 1;
    from.stats.rx_bytes += wire_len as u64;
    if !from.direction.receives() || !to.direction.sends() {
        return Err(DropReason::Direction);
    }

    let out_pt = if hdr.payload_type == from.payload_type {
        g711::transcode(from.law, to.law, &mut buf[hdr.header_len..payload_end]);
        to.payload_type
    } else if Some(hdr.payload_type) == from.dtmf_payload_type {
        to.dtmf_payload_type
            .ok_or(DropReason::PayloadType(hdr.payload_type))?
    } else {
        return Err(DropReason::PayloadType(hdr.payload_type));
    };
    let dst = to.rtp_dst().ok_or(DropReason::NoDestination)?;
    let (seq, ts, source_changed) = to.out.map(hdr.ssrc, hdr.sequence, hdr.timestamp);
    let pkt = &mut buf[..len];
    rtp::set_payload_type(pkt, out_pt);
    if source_changed {
        rtp::set_marker(pkt, true);
    }
    rtp::set_sequence(pkt, seq);
    rtp::set_timestamp(pkt, ts);
    rtp::set_ssrc(pkt, to.ssrc);
    let len = match to.srtp.as_mut() {
        Some(c) => c.tx.protect_rtp(buf, len).map_err(DropReason::Protect)?,
        None => len,
    };
    to.stats.tx_packets += 1;
    to.stats.tx_bytes += len as u64;
    Ok(Action::Forward {
        leg: to_leg,
        dst,
        len,
    })
}

fn relay_rtcp(
    from: &mut LegState,
    (to, to_leg): (&mut LegState, Leg),
    src: SocketAddr,
    buf: &mut [u8],
    len: usize,
) -> Result<Action, DropReason> {
    let len = match from.srtp.as_mut() {
        Some(c) => c.rx.unprotect_rtcp(buf, len).map_err(DropReason::Srtp)?,
        None => len.min(buf.len()),
    };
    // Reports from `from`'s peer: its own SSRC becomes ours on `to`; the stream it reports on
    // (ours on `from`) becomes the original source on `to`'s side.
    let (peer, ours_on_from, ours_on_to) = (from.peer_ssrc, from.ssrc, to.ssrc);
    let original = from.out.in_ssrc;
    rtcp::rewrite_ssrcs(&mut buf[..len], |s| {
        if Some(s) == peer {
            ours_on_to
        } else if s == ours_on_from {
            original.unwrap_or(s)
        } else {
            s
        }
    })
    .map_err(DropReason::Malformed)?;
    LegState::accept_source(&mut from.learned_rtcp, src, from.srtp.is_some())?;
    from.stats.rtcp_rx_packets += 1;
    let dst = to.rtcp_dst().ok_or(DropReason::NoDestination)?;
    let len = match to.srtp.as_mut() {
        Some(c) => c.tx.protect_rtcp(buf, len).map_err(DropReason::Protect)?,
        None => len,
    };
    Ok(Action::Forward {
        leg: to_leg,
        dst,
        len,
    })
}
