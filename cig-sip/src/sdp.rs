//! SDP (RFC 4566) parsing and serialization, and the RFC 3264 offer/answer model for one audio
//! stream: PCMU (0), PCMA (8), `telephone-event` (RFC 4733, dynamic payload type), `ptime`,
//! the direction attributes and the connection address / RTP port.
//!
//! The gateway relays audio without transcoding, so negotiation only picks the first codec of
//! the offer that the local side also supports. An offer without such a codec gives
//! [`Error::NoSharedCodec`](crate::Error::NoSharedCodec), which a UAS answers with 488.

use std::fmt;
use std::net::IpAddr;

use crate::{Error, Result};

/// Largest SDP body accepted.
pub const MAX_SDP_LEN: usize = 16 * 1024;
const MAX_MEDIA: usize = 16;
const MAX_FORMATS: usize = 64;
const MAX_ATTRIBUTES: usize = 128;

/// The payload type this side uses for `telephone-event` in offers.
pub const DEFAULT_TELEPHONE_EVENT_PT: u8 = 101;

/// A G.711 codec the gateway relays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 μ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type (RFC 3551).
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The encoding name used in `a=rtpmap`.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    fn from_encoding(name: &str, clock: u32) -> Option<Codec> {
        if clock != 8000 {
            return None;
        }
        if name.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(Codec::Pcma)
        } else {
            None
        }
    }
}

/// The media direction attribute (RFC 3264 §5.1); `sendrecv` when absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Both ways.
    #[default]
    SendRecv,
    /// The describing side only sends (the other side is put on hold).
    SendOnly,
    /// The describing side only receives.
    RecvOnly,
    /// No media either way.
    Inactive,
}

impl Direction {
    /// The attribute name (`sendrecv`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn parse(s: &str) -> Option<Direction> {
        Some(match s {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// The same stream seen from the other end: `sendonly` ↔ `recvonly`.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// The direction allowed by both `self` (what this side wants) and `other` (what the peer
    /// allows, already seen from this side).
    pub fn intersect(self, other: Direction) -> Direction {
        let send = self.sends() && other.sends();
        let recv = self.receives() && other.receives();
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether the describing side sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the describing side receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type.
    pub payload_type: u8,
    /// Encoding name as written.
    pub encoding: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count when given.
    pub channels: Option<u8>,
}

/// One `m=` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    /// Media type (`audio`, `video`, …).
    pub kind: String,
    /// Transport port; 0 rejects or disables the stream.
    pub port: u16,
    /// Transport protocol (`RTP/AVP`, …).
    pub proto: String,
    /// The format list as written (payload type numbers for RTP).
    pub formats: Vec<String>,
    /// Media-level `c=` address.
    pub connection: Option<IpAddr>,
    /// `a=rtpmap` lines.
    pub rtpmaps: Vec<RtpMap>,
    /// `a=fmtp` lines: payload type and parameters.
    pub fmtps: Vec<(u8, String)>,
    /// `a=ptime` in milliseconds.
    pub ptime: Option<u32>,
    /// Media-level direction attribute.
    pub direction: Option<Direction>,
    /// Other `a=` lines, value after `a=`, kept verbatim.
    pub other_attributes: Vec<String>,
}

impl Media {
    /// The encoding of payload type `pt`: its `rtpmap`, or the RFC 3551 static assignment.
    fn encoding_of(&self, pt: u8) -> Option<(&str, u32)> {
        if let Some(m) = self.rtpmaps.iter().find(|m| m.payload_type == pt) {
            return Some((m.encoding.as_str(), m.clock_rate));
        }
        match pt {
            0 => Some(("PCMU", 8000)),
            8 => Some(("PCMA", 8000)),
            _ => None,
        }
    }

    /// The payload types of the format list, in order, skipping non-numeric formats.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse().ok())
    }

    /// The G.711 codecs of this stream with their payload types, in the offer's order.
    pub fn codecs(&self) -> impl Iterator<Item = (u8, Codec)> + '_ {
        self.payload_types().filter_map(|pt| {
            let (name, clock) = self.encoding_of(pt)?;
            Codec::from_encoding(name, clock).map(|c| (pt, c))
        })
    }

    /// The payload type of `telephone-event/8000`, when offered.
    pub fn telephone_event(&self) -> Option<u8> {
        self.payload_types().find(|&pt| {
            self.encoding_of(pt)
                .is_some_and(|(n, c)| c == 8000 && n.eq_ignore_ascii_case("telephone-event"))
        })
    }
}

/// `o=` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// User name (`-` when none).
    pub username: String,
    /// Session id.
    pub session_id: u64,
    /// Session version; incremented on each changed offer.
    pub session_version: u64,
    /// Unicast address of the originator as written.
    pub address: String,
}

/// A session description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`.
    pub origin: Origin,
    /// `s=`.
    pub session_name: String,
    /// Session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Session-level direction attribute.
    pub direction: Option<Direction>,
    /// The `m=` sections.
    pub media: Vec<Media>,
}

fn sdp_err(reason: &'static str) -> Error {
    Error::Sdp(reason)
}

/// `c=IN IP4 <addr>` / `c=IN IP6 <addr>`; multicast TTL suffixes are dropped.
fn parse_connection(v: &str) -> Result<IpAddr> {
    let mut it = v.split(' ');
    let (Some("IN"), Some(at), Some(addr)) = (it.next(), it.next(), it.next()) else {
        return Err(sdp_err("bad c= line"));
    };
    let addr = addr.split('/').next().unwrap_or(addr);
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| sdp_err("c= address is not an IP address"))?;
    match (at, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(ip),
        _ => Err(sdp_err("c= address type mismatch")),
    }
}

fn parse_origin(v: &str) -> Result<Origin> {
    let f: Vec<&str> = v.split(' ').filter(|s| !s.is_empty()).collect();
    let [user, id, version, "IN", _, addr] = f.as_slice() else {
        return Err(sdp_err("bad o= line"));
    };
    // Session ids are numeric in RFC 4566 but some peers send longer numbers; keep the low bits.
    let num = |s: &str| -> Result<u64> {
        if s.is_empty() || s.len() > 40 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(sdp_err("o= id is not a number"));
        }
        Ok(s.bytes().fold(0u64, |a, b| {
            a.wrapping_mul(10).wrapping_add(u64::from(b - b'0'))
        }))
    };
    Ok(Origin {
        username: (*user).to_owned(),
        session_id: num(id)?,
        session_version: num(version)?,
        address: (*addr).to_owned(),
    })
}

fn parse_media_line(v: &str) -> Result<Media> {
    let mut it = v.split(' ').filter(|s| !s.is_empty());
    let (Some(kind), Some(port), Some(proto)) = (it.next(), it.next(), it.next()) else {
        return Err(sdp_err("bad m= line"));
    };
    // `<port>/<number of ports>` is allowed; only the base port matters here.
    let port = port.split('/').next().unwrap_or(port);
    let port: u16 = port.parse().map_err(|_| sdp_err("bad m= port"))?;
    let mut formats = Vec::new();
    for f in it {
        if formats.len() == MAX_FORMATS {
            return Err(sdp_err("too many formats"));
        }
        formats.push(f.to_owned());
    }
    Ok(Media {
        kind: kind.to_owned(),
        port,
        proto: proto.to_owned(),
        formats,
        connection: None,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        ptime: None,
        direction: None,
        other_attributes: Vec::new(),
    })
}

fn parse_rtpmap(v: &str) -> Result<RtpMap> {
    let (pt, rest) = v.split_once(' ').ok_or(sdp_err("bad rtpmap"))?;
    let payload_type = pt.parse().map_err(|_| sdp_err("bad rtpmap payload type"))?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next().unwrap_or_default().to_owned();
    let clock_rate = parts
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or(sdp_err("bad rtpmap clock rate"))?;
    let channels = match parts.next() {
        Some(c) => Some(c.parse().map_err(|_| sdp_err("bad rtpmap channels"))?),
        None => None,
    };
    Ok(RtpMap {
        payload_type,
        encoding,
        clock_rate,
        channels,
    })
}

impl SessionDescription {
    /// Parses an SDP body. Unknown lines and attributes are tolerated; the lines the offer/answer
    /// model needs must be well formed.
    pub fn parse(body: &[u8]) -> Result<SessionDescription> {
        if body.len() > MAX_SDP_LEN {
            return Err(sdp_err("body too large"));
        }
        let text = std::str::from_utf8(body).map_err(|_| sdp_err("not UTF-8"))?;
        let mut origin = None;
        let mut session_name = String::new();
        let mut connection = None;
        let mut direction = None;
        let mut media: Vec<Media> = Vec::new();
        let mut attributes = 0usize;
        let mut seen_version = false;
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let b = line.as_bytes();
            if b.len() < 2 || b[1] != b'=' {
                return Err(sdp_err("line is not <type>=<value>"));
            }
            let value = &line[2..];
            match (b[0], media.last_mut()) {
                (b'v', None) => {
                    if value != "0" {
                        return Err(sdp_err("version is not 0"));
                    }
                    seen_version = true;
                }
                (b'o', None) => origin = Some(parse_origin(value)?),
                (b's', None) => session_name = value.to_owned(),
                (b'c', None) => connection = Some(parse_connection(value)?),
                (b'c', Some(m)) => m.connection = Some(parse_connection(value)?),
                (b'm', _) => {
                    if media.len() == MAX_MEDIA {
                        return Err(sdp_err("too many m= sections"));
                    }
                    media.push(parse_media_line(value)?);
                }
                (b'a', m) => {
                    attributes += 1;
                    if attributes > MAX_ATTRIBUTES {
                        return Err(sdp_err("too many attributes"));
                    }
                    let (name, val) = match value.split_once(':') {
                        Some((n, v)) => (n, Some(v)),
                        None => (value, None),
                    };
                    match m {
                        None => {
                            if let Some(d) = Direction::parse(name) {
                                direction = Some(d);
                            }
                        }
                        Some(m) => match (name, val) {
                            ("rtpmap", Some(v)) => m.rtpmaps.push(parse_rtpmap(v)?),
                            ("fmtp", Some(v)) => {
                                let (pt, p) = v.split_once(' ').unwrap_or((v, ""));
                                let pt = pt.parse().map_err(|_| sdp_err("bad fmtp"))?;
                                m.fmtps.push((pt, p.to_owned()));
                            }
                            ("ptime", Some(v)) => {
                                m.ptime = Some(v.trim().parse().map_err(|_| sdp_err("bad ptime"))?)
                            }
                            (n, None) if Direction::parse(n).is_some() => {
                                m.direction = Direction::parse(n)
                            }
                            _ => m.other_attributes.push(value.to_owned()),
                        },
                    }
                }
                // b=, t=, r=, z=, k=, i=, u=, e=, p= and media-level lines the model ignores.
                _ => {}
            }
        }
        if !seen_version {
            return Err(sdp_err("missing v= line"));
        }
        let origin = origin.ok_or(sdp_err("missing o= line"))?;
        Ok(SessionDescription {
            origin,
            session_name,
            connection,
            direction,
            media,
        })
    }

    /// The effective connection address of stream `m`: its own `c=`, else the session's.
    pub fn connection_of(&self, m: &Media) -> Option<IpAddr> {
        m.connection.or(self.connection)
    }

    /// The effective direction of stream `m`: its own attribute, else the session's, else
    /// `sendrecv`.
    pub fn direction_of(&self, m: &Media) -> Direction {
        m.direction.or(self.direction).unwrap_or_default()
    }

    /// Serializes to the wire form (CRLF line ends).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

fn write_connection(f: &mut fmt::Formatter<'_>, ip: IpAddr) -> fmt::Result {
    let at = if ip.is_ipv4() { "IP4" } else { "IP6" };
    write!(f, "c=IN {at} {ip}\r\n")
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        let at = if o.address.contains(':') {
            "IP6"
        } else {
            "IP4"
        };
        write!(f, "v=0\r\n")?;
        write!(
            f,
            "o={} {} {} IN {at} {}\r\n",
            o.username, o.session_id, o.session_version, o.address
        )?;
        let name = if self.session_name.is_empty() {
            "-"
        } else {
            &self.session_name
        };
        write!(f, "s={name}\r\n")?;
        if let Some(c) = self.connection {
            write_connection(f, c)?;
        }
        write!(f, "t=0 0\r\n")?;
        if let Some(d) = self.direction {
            write!(f, "a={}\r\n", d.as_str())?;
        }
        for m in &self.media {
            write!(f, "m={} {} {}", m.kind, m.port, m.proto)?;
            for fmt_ in &m.formats {
                write!(f, " {fmt_}")?;
            }
            f.write_str("\r\n")?;
            if let Some(c) = m.connection {
                write_connection(f, c)?;
            }
            for r in &m.rtpmaps {
                write!(
                    f,
                    "a=rtpmap:{} {}/{}",
                    r.payload_type, r.encoding, r.clock_rate
                )?;
                if let Some(ch) = r.channels {
                    write!(f, "/{ch}")?;
                }
                f.write_str("\r\n")?;
            }
            for (pt, p) in &m.fmtps {
                write!(f, "a=fmtp:{pt} {p}\r\n")?;
            }
            if let Some(p) = m.ptime {
                write!(f, "a=ptime:{p}\r\n")?;
            }
            for a in &m.other_attributes {
                write!(f, "a={a}\r\n")?;
            }
            if let Some(d) = m.direction {
                write!(f, "a={}\r\n", d.as_str())?;
            }
        }
        Ok(())
    }
}

/// What this side can do for audio: where it receives RTP (the relay's address and port), which
/// codecs in order of preference, whether it relays DTMF events, its packet time and direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioCapabilities {
    /// Address the relay receives RTP on.
    pub address: IpAddr,
    /// RTP port of the relay.
    pub port: u16,
    /// Supported codecs, preferred first; must not be empty.
    pub codecs: Vec<Codec>,
    /// Whether `telephone-event` (RFC 4733) is offered/accepted.
    pub telephone_event: bool,
    /// Packet time in milliseconds.
    pub ptime: u32,
    /// The direction this side wants (`SendOnly` puts the peer on hold).
    pub direction: Direction,
}

impl AudioCapabilities {
    /// PCMU and PCMA with telephone-event, 20 ms, sendrecv.
    pub fn new(address: IpAddr, port: u16) -> AudioCapabilities {
        AudioCapabilities {
            address,
            port,
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            telephone_event: true,
            ptime: 20,
            direction: Direction::SendRecv,
        }
    }
}

/// The outcome of offer/answer for the audio stream: where and how to send RTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NegotiatedAudio {
    /// The codec both sides use.
    pub codec: Codec,
    /// Its payload type on the wire.
    pub payload_type: u8,
    /// The `telephone-event` payload type, when both sides support it.
    pub telephone_event: Option<u8>,
    /// The peer's RTP address; `0.0.0.0` means "do not send" (RFC 2543 hold).
    pub remote_address: IpAddr,
    /// The peer's RTP port.
    pub remote_port: u16,
    /// Packet time the peer asked for, if any.
    pub remote_ptime: Option<u32>,
    /// Direction of the stream seen from this side (`SendOnly`: this side sends, the peer
    /// only receives).
    pub direction: Direction,
}

impl NegotiatedAudio {
    /// Whether the peer has put this call on hold: it does not want media from this side
    /// (`sendonly` or `inactive` offer, or the RFC 2543 `c=0.0.0.0`).
    pub fn held_by_peer(&self) -> bool {
        !self.direction.sends() || self.remote_address.is_unspecified()
    }
}

fn audio_media(
    local: &AudioCapabilities,
    codecs: &[(u8, Codec)],
    te: Option<u8>,
    dir: Direction,
) -> Media {
    let mut formats = Vec::with_capacity(codecs.len() + 1);
    let mut rtpmaps = Vec::with_capacity(codecs.len() + 1);
    for &(pt, c) in codecs {
        formats.push(pt.to_string());
        rtpmaps.push(RtpMap {
            payload_type: pt,
            encoding: c.encoding_name().to_owned(),
            clock_rate: 8000,
            channels: None,
        });
    }
    let mut fmtps = Vec::new();
    if let Some(pt) = te {
        formats.push(pt.to_string());
        rtpmaps.push(RtpMap {
            payload_type: pt,
            encoding: "telephone-event".to_owned(),
            clock_rate: 8000,
            channels: None,
        });
        fmtps.push((pt, "0-15".to_owned()));
    }
    Media {
        kind: "audio".to_owned(),
        port: local.port,
        proto: "RTP/AVP".to_owned(),
        formats,
        connection: None,
        rtpmaps,
        fmtps,
        ptime: Some(local.ptime),
        direction: Some(dir),
        other_attributes: Vec::new(),
    }
}

fn origin_for(local: &AudioCapabilities, session_id: u64, version: u64) -> Origin {
    Origin {
        username: "-".to_owned(),
        session_id,
        session_version: version,
        address: local.address.to_string(),
    }
}

/// Builds an offer with one audio stream from the local capabilities.
pub fn offer(local: &AudioCapabilities, session_id: u64, version: u64) -> SessionDescription {
    let codecs: Vec<(u8, Codec)> = local
        .codecs
        .iter()
        .map(|&c| (c.payload_type(), c))
        .collect();
    let te = local.telephone_event.then_some(DEFAULT_TELEPHONE_EVENT_PT);
    SessionDescription {
        origin: origin_for(local, session_id, version),
        session_name: "CIG".to_owned(),
        connection: Some(local.address),
        direction: None,
        media: vec![audio_media(local, &codecs, te, local.direction)],
    }
}

/// The first offered G.711 codec that `local` supports.
fn pick(local: &AudioCapabilities, m: &Media) -> Option<(u8, Codec)> {
    m.codecs().find(|(_, c)| local.codecs.contains(c))
}

/// Answers `offer` (RFC 3264 §6): the first audio stream with a shared codec is accepted, every
/// other stream is rejected with port 0. Returns the answer and the negotiated audio, or
/// [`Error::NoSharedCodec`] when no audio stream can be accepted (answer the INVITE with 488).
pub fn answer(
    offer: &SessionDescription,
    local: &AudioCapabilities,
    session_id: u64,
    version: u64,
) -> Result<(SessionDescription, NegotiatedAudio)> {
    let mut chosen = None;
    let mut media = Vec::with_capacity(offer.media.len());
    for m in &offer.media {
        let usable =
            chosen.is_none() && m.kind == "audio" && m.port != 0 && m.proto.starts_with("RTP/AVP");
        let codec = if usable { pick(local, m) } else { None };
        let (Some((pt, codec)), Some(addr)) = (codec, offer.connection_of(m)) else {
            // Rejected stream: same media line with port 0 (RFC 3264 §6).
            let mut rejected = m.clone();
            rejected.port = 0;
            rejected.connection = None;
            rejected.rtpmaps.clear();
            rejected.fmtps.clear();
            rejected.ptime = None;
            rejected.direction = None;
            rejected.other_attributes.clear();
            media.push(rejected);
            continue;
        };
        let te = if local.telephone_event {
            m.telephone_event()
        } else {
            None
        };
        let dir = local.direction.intersect(offer.direction_of(m).reverse());
        media.push(audio_media(local, &[(pt, codec)], te, dir));
        chosen = Some(NegotiatedAudio {
            codec,
            payload_type: pt,
            telephone_event: te,
            remote_address: addr,
            remote_port: m.port,
            remote_ptime: m.ptime,
            direction: dir,
        });
    }
    let negotiated = chosen.ok_or(Error::NoSharedCodec)?;
    let sdp = SessionDescription {
        origin: origin_for(local, session_id, version),
        session_name: "CIG".to_owned(),
        connection: Some(local.address),
        direction: None,
        media,
    };
    Ok((sdp, negotiated))
}

/// Reads the peer's answer to an offer this side made (`offer` from [`offer`]): the first
/// accepted audio stream with a codec of the offer. [`Error::NoSharedCodec`] when the answer
/// rejected audio or picked something that was not offered.
pub fn accept_answer(
    local: &AudioCapabilities,
    answer: &SessionDescription,
) -> Result<NegotiatedAudio> {
    for m in &answer.media {
        if m.kind != "audio" || m.port == 0 {
            continue;
        }
        let Some((pt, codec)) = pick(local, m) else {
            continue;
        };
        let addr = answer
            .connection_of(m)
            .ok_or(sdp_err("no connection address"))?;
        let te = if local.telephone_event {
            m.telephone_event()
        } else {
            None
        };
        let dir = local.direction.intersect(answer.direction_of(m).reverse());
        return Ok(NegotiatedAudio {
            codec,
            payload_type: pt,
            telephone_event: te,
            remote_address: addr,
            remote_port: m.port,
            remote_ptime: m.ptime,
            direction: dir,
        });
    }
    Err(Error::NoSharedCodec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINPHONE_OFFER: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 96 8 0 101\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:30\r\n\
m=video 51372 RTP/AVP 31\r\n\
a=rtpmap:31 H261/90000\r\n";

    fn local() -> AudioCapabilities {
        AudioCapabilities::new("198.51.100.1".parse().unwrap(), 40000)
    }

    #[test]
    fn answer_picks_first_shared_codec_and_rejects_video() {
        let offer = SessionDescription::parse(LINPHONE_OFFER.as_bytes()).unwrap();
        let (ans, neg) = answer(&offer, &local(), 7, 1).unwrap();
        assert_eq!(neg.codec, Codec::Pcma);
        assert_eq!(neg.payload_type, 8);
        assert_eq!(neg.telephone_event, Some(101));
        assert_eq!(neg.remote_address, "192.0.2.10".parse::<IpAddr>().unwrap());
        assert_eq!(neg.remote_port, 49170);
        assert_eq!(neg.remote_ptime, Some(30));
        assert_eq!(neg.direction, Direction::SendRecv);
        let text = ans.to_string();
        assert_eq!(
            text,
            "v=0\r\no=- 7 1 IN IP4 198.51.100.1\r\ns=CIG\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\nm=video 0 RTP/AVP 31\r\n"
        );
        // The answer parses back into the same structure.
        assert_eq!(SessionDescription::parse(text.as_bytes()).unwrap(), ans);
    }

    #[test]
    fn no_shared_codec_is_an_error() {
        let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 96 9\r\na=rtpmap:96 opus/48000/2\r\n";
        let offer = SessionDescription::parse(offer.as_bytes()).unwrap();
        assert!(matches!(
            answer(&offer, &local(), 1, 1),
            Err(Error::NoSharedCodec)
        ));
    }

    #[test]
    fn static_payload_types_without_rtpmap() {
        let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\n";
        let offer = SessionDescription::parse(offer.as_bytes()).unwrap();
        let (_, neg) = answer(&offer, &local(), 1, 1).unwrap();
        assert_eq!((neg.codec, neg.payload_type), (Codec::Pcmu, 0));
        assert_eq!(neg.remote_address, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(neg.telephone_event, None);
    }

    #[test]
    fn hold_and_resume_directions() {
        let mk = |dir: &str| {
            format!(
                "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0\r\na={dir}\r\n"
            )
        };
        let cases = [
            ("sendonly", Direction::RecvOnly, true),
            ("inactive", Direction::Inactive, true),
            ("recvonly", Direction::SendOnly, false),
            ("sendrecv", Direction::SendRecv, false),
        ];
        for (offered, expected, held) in cases {
            let offer = SessionDescription::parse(mk(offered).as_bytes()).unwrap();
            let (ans, neg) = answer(&offer, &local(), 1, 1).unwrap();
            assert_eq!(neg.direction, expected, "{offered}");
            assert_eq!(ans.media[0].direction, Some(expected));
            assert_eq!(neg.held_by_peer(), held, "{offered}");
        }
        // Session-level attribute applies to streams without their own.
        let offer = "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\na=inactive\r\n\
m=audio 4000 RTP/AVP 8\r\n";
        let offer = SessionDescription::parse(offer.as_bytes()).unwrap();
        let (_, neg) = answer(&offer, &local(), 1, 1).unwrap();
        assert_eq!(neg.direction, Direction::Inactive);
        assert!(neg.remote_address.is_unspecified());
    }

    #[test]
    fn offer_then_accept_answer() {
        let mut caps = local();
        caps.direction = Direction::SendOnly;
        let o = offer(&caps, 42, 3);
        let text = o.to_string();
        assert!(text.contains("m=audio 40000 RTP/AVP 0 8 101\r\n"), "{text}");
        assert!(text.contains("a=sendonly\r\n"));
        // The peer answers the offer with its own capabilities.
        let peer = AudioCapabilities::new("203.0.113.9".parse().unwrap(), 5004);
        let parsed = SessionDescription::parse(text.as_bytes()).unwrap();
        let (ans, peer_neg) = answer(&parsed, &peer, 9, 9).unwrap();
        assert_eq!(peer_neg.direction, Direction::RecvOnly);
        let neg = accept_answer(&caps, &ans).unwrap();
        assert_eq!(neg.codec, Codec::Pcmu);
        assert_eq!(neg.telephone_event, Some(DEFAULT_TELEPHONE_EVENT_PT));
        assert_eq!(neg.remote_port, 5004);
        assert_eq!(neg.direction, Direction::SendOnly);
    }

    #[test]
    fn rejected_answer_is_no_shared_codec() {
        let ans = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 0 RTP/AVP 0\r\n";
        let ans = SessionDescription::parse(ans.as_bytes()).unwrap();
        assert!(matches!(
            accept_answer(&local(), &ans),
            Err(Error::NoSharedCodec)
        ));
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"v=1\r\n",
            b"v=0\r\nx\r\n",
            b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 nothost\r\n",
            b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 99999 RTP/AVP 0\r\n",
            b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:300 X/8000\r\n",
            b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",
            b"v=0\r\no=- x 1 IN IP4 1.2.3.4\r\n",
            b"\xff=0\r\n",
        ] {
            assert!(
                SessionDescription::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let many = format!(
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n{}",
            "m=audio 1 RTP/AVP 0\r\n".repeat(17)
        );
        assert!(SessionDescription::parse(many.as_bytes()).is_err());
    }
}
