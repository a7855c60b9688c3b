//! The I_MESSAGE wire format: encoding and parsing of the MIKEY payloads used by MIKEY-SAKKE
//! (RFC 3830 §6, RFC 6043 §6, RFC 6509 §4).
//!
//! Parsing is bounded (message length, payload count and every length field are checked against
//! the remaining input) and never panics. A parsed [`IMessage`] keeps the exact bytes it came
//! from, so the signature is checked over what was received, not over a re-encoding.

use crate::Error;
use crate::eccsi::{SIGNATURE_LEN, Signature};
use crate::kdf::Prf;

/// Longest I_MESSAGE accepted (bytes).
pub const MAX_MESSAGE_LEN: usize = 16 * 1024;
/// Most payloads accepted in one message (the header included).
pub const MAX_PAYLOADS: usize = 64;
/// Shortest RAND accepted (RFC 3830 §6.11: at least 128 bits).
pub const MIN_RAND_LEN: usize = 16;

/// MIKEY version carried in every header.
pub const MIKEY_VERSION: u8 = 1;
/// Header data type of a SAKKE I_MESSAGE (RFC 6509 §4.1).
pub const DATA_TYPE_SAKKE: u8 = 26;
/// Header data type of an error message (RFC 3830 §6.1).
pub const DATA_TYPE_ERROR: u8 = 6;

/// Next-payload code points (RFC 3830 §6.1 table, RFC 6043 §6.6, RFC 6509 §4.2).
pub mod kind {
    /// No further payload.
    pub const LAST: u8 = 0;
    /// Signature payload (always last; has no next-payload field).
    pub const SIGN: u8 = 4;
    /// Timestamp payload.
    pub const T: u8 = 5;
    /// Security policy payload.
    pub const SP: u8 = 10;
    /// RAND payload.
    pub const RAND: u8 = 11;
    /// Error payload.
    pub const ERR: u8 = 12;
    /// Identity payload with role (RFC 6043).
    pub const IDR: u8 = 14;
    /// General extension payload.
    pub const GENERAL_EXT: u8 = 21;
    /// SAKKE payload (RFC 6509).
    pub const SAKKE: u8 = 26;
}

/// Timestamp type NTP-UTC, 64 bits (RFC 3830 §6.6).
pub const TS_TYPE_NTP_UTC: u8 = 0;
/// Signature type ECCSI in the SIGN payload (RFC 6509 §4.3).
pub const SIGN_TYPE_ECCSI: u8 = 2;
/// SAKKE parameter set 1 (RFC 6509 Appendix A).
pub const SAKKE_PARAMS_1: u8 = 1;
/// SAKKE ID scheme: tel URI with monthly keys (RFC 6509 §4.4).
pub const ID_SCHEME_TEL_URI: u8 = 1;
/// SAKKE ID scheme: 3GPP TS 33.180 UID.
pub const ID_SCHEME_UID: u8 = 2;
/// IDR ID type: URI (RFC 6043 §6.6).
pub const ID_TYPE_URI: u8 = 1;
/// Protocol type SRTP in maps and policies.
pub const PROT_SRTP: u8 = 0;

/// IDR roles (RFC 6043 §6.6, RFC 6509 §4.4, 3GPP TS 33.180 §E).
pub mod role {
    /// Initiator (IDRi).
    pub const INITIATOR: u8 = 1;
    /// Responder (IDRr).
    pub const RESPONDER: u8 = 2;
    /// KMS (IDRkms).
    pub const KMS: u8 = 3;
    /// Pre-shared key (IDRpsk).
    pub const PSK: u8 = 4;
    /// Application (IDRapp).
    pub const APP: u8 = 5;
    /// Initiator's KMS (IDRkmsi, RFC 6509).
    pub const KMS_INITIATOR: u8 = 6;
    /// Responder's KMS (IDRkmsr, RFC 6509).
    pub const KMS_RESPONDER: u8 = 7;
    /// Initiator's user identifier, a TS 33.180 UID.
    pub const UID_INITIATOR: u8 = 8;
    /// Responder's user identifier, a TS 33.180 UID.
    pub const UID_RESPONDER: u8 = 9;

    /// A short name for a role, for tools.
    pub fn name(role: u8) -> &'static str {
        match role {
            INITIATOR => "IDRi",
            RESPONDER => "IDRr",
            KMS => "IDRkms",
            PSK => "IDRpsk",
            APP => "IDRapp",
            KMS_INITIATOR => "IDRkmsi",
            KMS_RESPONDER => "IDRkmsr",
            UID_INITIATOR => "IDRuidi",
            UID_RESPONDER => "IDRuidr",
            _ => "IDR?",
        }
    }
}

/// One crypto session of an SRTP-ID map (RFC 3830 §6.1.1); its CS ID is its position from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpCs {
    /// Security policy number.
    pub policy_no: u8,
    /// SSRC of the stream.
    pub ssrc: u32,
    /// Rollover counter.
    pub roc: u32,
}

/// One crypto session of a GENERIC-ID map (RFC 6043 §6.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericCs {
    /// Crypto session identifier.
    pub cs_id: u8,
    /// Security protocol (0 = SRTP).
    pub prot_type: u8,
    /// The S flag: session data present.
    pub s_flag: bool,
    /// Policy numbers that apply.
    pub policies: Vec<u8>,
    /// Session data (for SRTP: SSRC/ROC blocks).
    pub session_data: Vec<u8>,
    /// Security parameter index.
    pub spi: Vec<u8>,
}

/// The CS ID map of the common header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsIdMap {
    /// Type 0, SRTP-ID.
    Srtp(Vec<SrtpCs>),
    /// Type 1, empty map, with the `#CS` count as sent.
    Empty(u8),
    /// Type 2, GENERIC-ID.
    Generic(Vec<GenericCs>),
}

impl CsIdMap {
    /// The CS IDs this map names, in order (SRTP-ID numbers from 1; an empty map names the
    /// single crypto session 0).
    pub fn cs_ids(&self) -> Vec<u8> {
        match self {
            Self::Srtp(v) => (1..=v.len()).map(|i| i as u8).collect(),
            Self::Empty(_) => vec![0],
            Self::Generic(v) => v.iter().map(|c| c.cs_id).collect(),
        }
    }
}

/// The common header (RFC 3830 §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Data type (26 for a SAKKE I_MESSAGE).
    pub data_type: u8,
    /// The V flag (verification message requested).
    pub v_flag: bool,
    /// The PRF used for key derivation.
    pub prf: Prf,
    /// Crypto session bundle identifier.
    pub csb_id: u32,
    /// The crypto sessions.
    pub cs_map: CsIdMap,
}

/// An identity payload with role (RFC 6043 §6.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idr {
    /// Role (see [`role`]).
    pub role: u8,
    /// ID type (1 = URI).
    pub id_type: u8,
    /// The identity bytes.
    pub data: Vec<u8>,
}

/// A security policy payload (RFC 3830 §6.10): parameters as (type, value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityPolicy {
    /// Policy number referenced by the CS ID map.
    pub policy_no: u8,
    /// Protocol type (0 = SRTP).
    pub prot_type: u8,
    /// Parameters in the order sent.
    pub params: Vec<(u8, Vec<u8>)>,
}

/// The SAKKE payload (RFC 6509 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SakkePayload {
    /// SAKKE parameter set (1).
    pub params: u8,
    /// ID scheme (1 = tel URI, 2 = UID).
    pub id_scheme: u8,
    /// The SAKKE encapsulated data `R || H`.
    pub sed: Vec<u8>,
}

/// A general extension payload (RFC 3830 §6.15), kept opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneralExt {
    /// Extension type.
    pub ext_type: u8,
    /// Extension data.
    pub data: Vec<u8>,
}

/// A SAKKE I_MESSAGE (RFC 6509 §2.1): header, T, RAND, IDRs, SPs, SAKKE, extensions, SIGN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IMessage {
    /// Common header.
    pub header: Header,
    /// NTP-UTC timestamp (seconds since 1900 in the high 32 bits, fraction in the low 32).
    pub timestamp: u64,
    /// RAND.
    pub rand: Vec<u8>,
    /// Identity payloads in the order sent.
    pub idrs: Vec<Idr>,
    /// Security policies in the order sent.
    pub policies: Vec<SecurityPolicy>,
    /// The SAKKE payload.
    pub sakke: SakkePayload,
    /// General extensions in the order sent.
    pub extensions: Vec<GeneralExt>,
    /// The ECCSI signature.
    pub signature: Signature,
    /// The bytes as received (or as encoded); the signature covers `raw[..signed_len]`.
    raw: Vec<u8>,
    signed_len: usize,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or(Error::Encoding(what))?;
        let s = self.buf.get(self.pos..end).ok_or(Error::Encoding(what))?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, Error> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, Error> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
}

fn len8(n: usize, what: &'static str) -> Result<u8, Error> {
    u8::try_from(n).map_err(|_| Error::Encoding(what))
}

fn len16(n: usize, what: &'static str) -> Result<[u8; 2], Error> {
    u16::try_from(n)
        .map(u16::to_be_bytes)
        .map_err(|_| Error::Encoding(what))
}

fn parse_header(r: &mut Reader<'_>) -> Result<(Header, u8), Error> {
    if r.u8("HDR")? != MIKEY_VERSION {
        return Err(Error::Unsupported("MIKEY version"));
    }
    let data_type = r.u8("HDR")?;
    let next = r.u8("HDR")?;
    let vp = r.u8("HDR")?;
    let prf = Prf::from_code(vp & 0x7f)?;
    let csb_id = r.u32("HDR")?;
    let n_cs = r.u8("HDR")?;
    let map_type = r.u8("HDR")?;
    let cs_map = match map_type {
        0 => {
            let mut v = Vec::with_capacity(usize::from(n_cs));
            for _ in 0..n_cs {
                v.push(SrtpCs {
                    policy_no: r.u8("SRTP-ID map")?,
                    ssrc: r.u32("SRTP-ID map")?,
                    roc: r.u32("SRTP-ID map")?,
                });
            }
            CsIdMap::Srtp(v)
        }
        1 => CsIdMap::Empty(n_cs),
        2 => {
            let mut v = Vec::with_capacity(usize::from(n_cs));
            for _ in 0..n_cs {
                let cs_id = r.u8("GENERIC-ID map")?;
                let prot_type = r.u8("GENERIC-ID map")?;
                let sp = r.u8("GENERIC-ID map")?;
                let policies = r.take(usize::from(sp & 0x7f), "GENERIC-ID map")?.to_vec();
                let sd_len = r.u16("GENERIC-ID map")?;
                let session_data = r.take(usize::from(sd_len), "GENERIC-ID map")?.to_vec();
                let spi_len = r.u8("GENERIC-ID map")?;
                let spi = r.take(usize::from(spi_len), "GENERIC-ID map")?.to_vec();
                v.push(GenericCs {
                    cs_id,
                    prot_type,
                    s_flag: sp & 0x80 != 0,
                    policies,
                    session_data,
                    spi,
                });
            }
            CsIdMap::Generic(v)
        }
        _ => return Err(Error::Unsupported("CS ID map type")),
    };
    Ok((
        Header {
            data_type,
            v_flag: vp & 0x80 != 0,
            prf,
            csb_id,
            cs_map,
        },
        next,
    ))
}

fn encode_header(h: &Header, next: u8, out: &mut Vec<u8>) -> Result<(), Error> {
    out.extend_from_slice(&[MIKEY_VERSION, h.data_type, next]);
    out.push(h.prf.code() | if h.v_flag { 0x80 } else { 0 });
    out.extend_from_slice(&h.csb_id.to_be_bytes());
    match &h.cs_map {
        CsIdMap::Srtp(v) => {
            out.extend_from_slice(&[len8(v.len(), "#CS")?, 0]);
            for cs in v {
                out.push(cs.policy_no);
                out.extend_from_slice(&cs.ssrc.to_be_bytes());
                out.extend_from_slice(&cs.roc.to_be_bytes());
            }
        }
        CsIdMap::Empty(n) => out.extend_from_slice(&[*n, 1]),
        CsIdMap::Generic(v) => {
            out.extend_from_slice(&[len8(v.len(), "#CS")?, 2]);
            for cs in v {
                if cs.policies.len() > 0x7f {
                    return Err(Error::Encoding("GENERIC-ID policies"));
                }
                out.extend_from_slice(&[cs.cs_id, cs.prot_type]);
                out.push(cs.policies.len() as u8 | if cs.s_flag { 0x80 } else { 0 });
                out.extend_from_slice(&cs.policies);
                out.extend_from_slice(&len16(cs.session_data.len(), "session data")?);
                out.extend_from_slice(&cs.session_data);
                out.push(len8(cs.spi.len(), "SPI")?);
                out.extend_from_slice(&cs.spi);
            }
        }
    }
    Ok(())
}

impl IMessage {
    /// Parses a SAKKE I_MESSAGE. Checks structure only; see [`super::receive`] for what makes
    /// a message acceptable.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(Error::Encoding("I_MESSAGE too long"));
        }
        let mut r = Reader { buf: bytes, pos: 0 };
        let (header, mut next) = parse_header(&mut r)?;
        if header.data_type != DATA_TYPE_SAKKE {
            return Err(Error::Unsupported("data type"));
        }
        let mut timestamp = None;
        let mut rand = None;
        let mut sakke = None;
        let mut idrs = Vec::new();
        let mut policies = Vec::new();
        let mut extensions = Vec::new();
        let mut count = 1;
        loop {
            count += 1;
            if count > MAX_PAYLOADS {
                return Err(Error::Encoding("too many payloads"));
            }
            let this = next;
            if this == kind::SIGN {
                break;
            }
            if this == kind::LAST {
                return Err(Error::Encoding("SIGN payload missing"));
            }
            next = r.u8("next payload")?;
            match this {
                kind::T => {
                    if r.u8("T")? != TS_TYPE_NTP_UTC {
                        return Err(Error::Unsupported("timestamp type"));
                    }
                    let t = r.u64("T")?;
                    if timestamp.replace(t).is_some() {
                        return Err(Error::Encoding("duplicate T payload"));
                    }
                }
                kind::RAND => {
                    let n = r.u8("RAND")?;
                    if usize::from(n) < MIN_RAND_LEN {
                        return Err(Error::Encoding("RAND shorter than 128 bits"));
                    }
                    let v = r.take(usize::from(n), "RAND")?.to_vec();
                    if rand.replace(v).is_some() {
                        return Err(Error::Encoding("duplicate RAND payload"));
                    }
                }
                kind::IDR => {
                    let role = r.u8("IDR")?;
                    let id_type = r.u8("IDR")?;
                    let n = r.u16("IDR")?;
                    let data = r.take(usize::from(n), "IDR")?.to_vec();
                    idrs.push(Idr {
                        role,
                        id_type,
                        data,
                    });
                }
                kind::SP => {
                    let policy_no = r.u8("SP")?;
                    let prot_type = r.u8("SP")?;
                    let n = r.u16("SP")?;
                    let mut pr = Reader {
                        buf: r.take(usize::from(n), "SP")?,
                        pos: 0,
                    };
                    let mut params = Vec::new();
                    while pr.pos < pr.buf.len() {
                        let t = pr.u8("SP parameter")?;
                        let l = pr.u8("SP parameter")?;
                        params.push((t, pr.take(usize::from(l), "SP parameter")?.to_vec()));
                    }
                    policies.push(SecurityPolicy {
                        policy_no,
                        prot_type,
                        params,
                    });
                }
                kind::SAKKE => {
                    let params = r.u8("SAKKE")?;
                    let id_scheme = r.u8("SAKKE")?;
                    let n = r.u16("SAKKE")?;
                    let sed = r.take(usize::from(n), "SAKKE")?.to_vec();
                    let p = SakkePayload {
                        params,
                        id_scheme,
                        sed,
                    };
                    if sakke.replace(p).is_some() {
                        return Err(Error::Encoding("duplicate SAKKE payload"));
                    }
                }
                kind::GENERAL_EXT => {
                    let ext_type = r.u8("general extension")?;
                    let n = r.u16("general extension")?;
                    let data = r.take(usize::from(n), "general extension")?.to_vec();
                    extensions.push(GeneralExt { ext_type, data });
                }
                _ => return Err(Error::Unsupported("payload type")),
            }
        }
        // SIGN: S type (4 bits) and signature length (12 bits), then the signature.
        let st = r.u16("SIGN")?;
        let signed_len = r.pos;
        if st >> 12 != u16::from(SIGN_TYPE_ECCSI) {
            return Err(Error::Unsupported("signature type"));
        }
        if usize::from(st & 0x0fff) != SIGNATURE_LEN {
            return Err(Error::Encoding("SIGN length"));
        }
        let signature = Signature::from_bytes(r.take(SIGNATURE_LEN, "SIGN")?)?;
        if r.pos != bytes.len() {
            return Err(Error::Encoding("bytes after SIGN payload"));
        }
        Ok(Self {
            header,
            timestamp: timestamp.ok_or(Error::Encoding("T payload missing"))?,
            rand: rand.ok_or(Error::Encoding("RAND payload missing"))?,
            idrs,
            policies,
            sakke: sakke.ok_or(Error::Encoding("SAKKE payload missing"))?,
            extensions,
            signature,
            raw: bytes.to_vec(),
            signed_len,
        })
    }

    /// Encodes everything the signature covers: all payloads in the order header, T, RAND,
    /// IDRs, SPs, SAKKE, extensions, then the SIGN type/length field.
    pub fn encode_signed_part(
        header: &Header,
        timestamp: u64,
        rand: &[u8],
        idrs: &[Idr],
        policies: &[SecurityPolicy],
        sakke: &SakkePayload,
        extensions: &[GeneralExt],
    ) -> Result<Vec<u8>, Error> {
        if rand.len() < MIN_RAND_LEN {
            return Err(Error::Encoding("RAND shorter than 128 bits"));
        }
        // Payload kinds in order, so each can name the next.
        let mut kinds = vec![kind::T, kind::RAND];
        kinds.extend(idrs.iter().map(|_| kind::IDR));
        kinds.extend(policies.iter().map(|_| kind::SP));
        kinds.push(kind::SAKKE);
        kinds.extend(extensions.iter().map(|_| kind::GENERAL_EXT));
        kinds.push(kind::SIGN);
        let mut out = Vec::with_capacity(1024);
        encode_header(header, kinds[0], &mut out)?;
        let mut nexts = kinds[1..].iter().copied();
        let mut next = || nexts.next().unwrap_or(kind::SIGN);
        out.extend_from_slice(&[next(), TS_TYPE_NTP_UTC]);
        out.extend_from_slice(&timestamp.to_be_bytes());
        out.extend_from_slice(&[next(), len8(rand.len(), "RAND")?]);
        out.extend_from_slice(rand);
        for idr in idrs {
            out.extend_from_slice(&[next(), idr.role, idr.id_type]);
            out.extend_from_slice(&len16(idr.data.len(), "IDR")?);
            out.extend_from_slice(&idr.data);
        }
        for sp in policies {
            out.extend_from_slice(&[next(), sp.policy_no, sp.prot_type]);
            let plen: usize = sp.params.iter().map(|(_, v)| 2 + v.len()).sum();
            out.extend_from_slice(&len16(plen, "SP")?);
            for (t, v) in &sp.params {
                out.extend_from_slice(&[*t, len8(v.len(), "SP parameter")?]);
                out.extend_from_slice(v);
            }
        }
        out.extend_from_slice(&[next(), sakke.params, sakke.id_scheme]);
        out.extend_from_slice(&len16(sakke.sed.len(), "SAKKE")?);
        out.extend_from_slice(&sakke.sed);
        for ext in extensions {
            out.extend_from_slice(&[next(), ext.ext_type]);
            out.extend_from_slice(&len16(ext.data.len(), "general extension")?);
            out.extend_from_slice(&ext.data);
        }
        let st = (u16::from(SIGN_TYPE_ECCSI) << 12) | SIGNATURE_LEN as u16;
        out.extend_from_slice(&st.to_be_bytes());
        if out.len() + SIGNATURE_LEN > MAX_MESSAGE_LEN {
            return Err(Error::Encoding("I_MESSAGE too long"));
        }
        Ok(out)
    }

    /// The bytes the ECCSI signature covers: everything up to and including the SIGN
    /// payload's type/length field.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.raw[..self.signed_len]
    }

    /// The whole message as received or encoded.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The first IDR with `role`, if any.
    pub fn idr(&self, role: u8) -> Option<&Idr> {
        self.idrs.iter().find(|i| i.role == role)
    }

    /// NTP-UTC seconds of the timestamp (the high 32 bits).
    pub fn ntp_seconds(&self) -> u64 {
        self.timestamp >> 32
    }
}

/// A MIKEY error code (RFC 3830 §6.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 0: authentication failure.
    AuthFailure,
    /// 1: invalid timestamp.
    InvalidTs,
    /// 2: PRF function not supported.
    InvalidPrf,
    /// 3: MAC algorithm not supported.
    InvalidMac,
    /// 4: encryption algorithm not supported.
    InvalidEa,
    /// 5: hash function not supported.
    InvalidHa,
    /// 6: DH group not supported.
    InvalidDh,
    /// 7: ID not supported.
    InvalidId,
    /// 8: certificate not supported.
    InvalidCert,
    /// 9: SP type not supported.
    InvalidSp,
    /// 10: SP parameters not supported.
    InvalidSpPar,
    /// 11: data type not supported.
    InvalidDt,
    /// 12: unspecified error.
    Unspecified,
}

impl ErrorCode {
    /// The code point of the ERR payload.
    pub fn code(self) -> u8 {
        match self {
            Self::AuthFailure => 0,
            Self::InvalidTs => 1,
            Self::InvalidPrf => 2,
            Self::InvalidMac => 3,
            Self::InvalidEa => 4,
            Self::InvalidHa => 5,
            Self::InvalidDh => 6,
            Self::InvalidId => 7,
            Self::InvalidCert => 8,
            Self::InvalidSp => 9,
            Self::InvalidSpPar => 10,
            Self::InvalidDt => 11,
            Self::Unspecified => 12,
        }
    }

    /// The error code for a refusal of an I_MESSAGE.
    pub fn for_error(e: &Error) -> Self {
        match e {
            Error::BadSignature | Error::Decapsulation | Error::InvalidPoint(_) => {
                Self::AuthFailure
            }
            Error::Timestamp | Error::Replay => Self::InvalidTs,
            Error::Unsupported("PRF function") => Self::InvalidPrf,
            Error::Unsupported("data type") => Self::InvalidDt,
            Error::Unsupported("ID scheme") | Error::NoKey(_) => Self::InvalidId,
            Error::Unsupported("SAKKE parameter set") => Self::InvalidSpPar,
            _ => Self::Unspecified,
        }
    }
}

/// Encodes a MIKEY error message (RFC 3830 §5.1.2: HDR with data type 6, T, ERR) answering an
/// I_MESSAGE with `csb_id` at NTP-UTC time `timestamp`.
pub fn encode_error_message(csb_id: u32, timestamp: u64, code: ErrorCode) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.extend_from_slice(&[MIKEY_VERSION, DATA_TYPE_ERROR, kind::T, 0]);
    out.extend_from_slice(&csb_id.to_be_bytes());
    out.extend_from_slice(&[0, 1]); // no crypto sessions, empty map
    out.extend_from_slice(&[kind::ERR, TS_TYPE_NTP_UTC]);
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&[kind::LAST, code.code(), 0, 0]);
    out
}

impl IMessage {
    /// Assembles a message from its signed part (as made by [`IMessage::encode_signed_part`])
    /// and the signature over it.
    pub fn from_signed_part(mut signed: Vec<u8>, signature: &Signature) -> Result<Self, Error> {
        signed.extend_from_slice(signature.as_bytes());
        Self::parse(&signed)
    }
}
