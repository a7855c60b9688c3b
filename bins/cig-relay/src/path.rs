//! What an engine does with one received packet: the [`PacketPath`] of a session.
//!
//! The relay's path is the cig-media bridge session (SRTP ⇄ RTP, transcoding, DTMF); the
//! [`PlainForward`] path only swaps legs (recv + send, no crypto) and exists so the load tool can
//! measure the relay's cost against a plain UDP forwarder with the same sockets and the same
//! engine loop (`cig-relay --engine plain`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::control::{AddrOverride, ErrorCode, LegConfig, LegId, LegUpdate, apply_overrides};

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
    /// Applies a controller update to `leg`.
    fn update(&mut self, leg: LegId, update: &LegUpdate) -> Result<(), (ErrorCode, String)>;
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

/// Recv + send with no crypto and no transcoding: the baseline forwarder.
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

    fn update(&mut self, leg: LegId, update: &LegUpdate) -> Result<(), (ErrorCode, String)> {
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
