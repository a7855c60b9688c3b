//! SMPP 3.4 PDUs (sans-IO): the commands an ESME transceiver needs, encoded and decoded with
//! every length capped. Unknown commands decode as [`Pdu::Other`] (answered with generic_nack
//! by the driver).

use crate::{Error, Result};

/// Largest PDU accepted (SMPP 3.4 allows more, nothing here needs it).
pub const MAX_PDU: usize = 64 * 1024;
/// SMPP interface version 3.4.
pub const VERSION_34: u8 = 0x34;

/// command_id values.
pub mod id {
    #![allow(missing_docs)]
    pub const GENERIC_NACK: u32 = 0x8000_0000;
    pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
    pub const BIND_TRANSCEIVER_RESP: u32 = 0x8000_0009;
    pub const SUBMIT_SM: u32 = 0x0000_0004;
    pub const SUBMIT_SM_RESP: u32 = 0x8000_0004;
    pub const DELIVER_SM: u32 = 0x0000_0005;
    pub const DELIVER_SM_RESP: u32 = 0x8000_0005;
    pub const UNBIND: u32 = 0x0000_0006;
    pub const UNBIND_RESP: u32 = 0x8000_0006;
    pub const ENQUIRE_LINK: u32 = 0x0000_0015;
    pub const ENQUIRE_LINK_RESP: u32 = 0x8000_0015;
}

/// command_status values used here.
pub mod status {
    #![allow(missing_docs)]
    pub const OK: u32 = 0;
    pub const INVALID_CMD: u32 = 0x03;
    pub const SYSERR: u32 = 0x08;
    pub const INVDSTADR: u32 = 0x0B;
    pub const MSGQFUL: u32 = 0x14;
    pub const THROTTLED: u32 = 0x58;
    pub const X_T_APPN: u32 = 0x64;
    pub const X_R_APPN: u32 = 0x65;
}

/// esm_class: UDH present.
pub const ESM_UDHI: u8 = 0x40;
/// esm_class message-type bits: SMSC delivery receipt.
pub const ESM_RECEIPT: u8 = 0x04;
/// TLV tag message_payload.
pub const TLV_MESSAGE_PAYLOAD: u16 = 0x0424;

/// The body of submit_sm and deliver_sm.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sm {
    /// service_type.
    pub service_type: String,
    /// source_addr_ton / npi / address.
    pub source: Address,
    /// dest_addr_ton / npi / address.
    pub dest: Address,
    /// esm_class.
    pub esm_class: u8,
    /// protocol_id.
    pub protocol_id: u8,
    /// priority_flag.
    pub priority: u8,
    /// schedule_delivery_time.
    pub schedule: String,
    /// validity_period.
    pub validity: String,
    /// registered_delivery.
    pub registered_delivery: u8,
    /// replace_if_present_flag.
    pub replace: u8,
    /// data_coding.
    pub data_coding: u8,
    /// sm_default_msg_id.
    pub default_msg_id: u8,
    /// short_message (≤ 254 bytes).
    pub short_message: Vec<u8>,
    /// Optional parameters (tag, value).
    pub tlvs: Vec<(u16, Vec<u8>)>,
}

/// An SMPP address: type of number, numbering plan, digits or text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Address {
    /// TON (1 international, 5 alphanumeric, 0 unknown).
    pub ton: u8,
    /// NPI (1 E.164).
    pub npi: u8,
    /// The address (≤ 20 characters).
    pub addr: String,
}

impl Address {
    /// `+4670…` → international E.164, digits → unknown/E.164, else alphanumeric.
    pub fn from_uri_text(s: &str) -> Address {
        if let Some(d) = s
            .strip_prefix('+')
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        {
            Address {
                ton: 1,
                npi: 1,
                addr: d.to_owned(),
            }
        } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            Address {
                ton: 0,
                npi: 1,
                addr: s.to_owned(),
            }
        } else {
            Address {
                ton: 5,
                npi: 0,
                addr: s.to_owned(),
            }
        }
    }

    /// The address as text: international numbers get their `+` back.
    pub fn to_text(&self) -> String {
        if self.ton == 1 && !self.addr.starts_with('+') {
            format!("+{}", self.addr)
        } else {
            self.addr.clone()
        }
    }
}

/// One PDU body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pdu {
    /// bind_transceiver.
    BindTransceiver {
        /// system_id (≤ 15).
        system_id: String,
        /// password (≤ 8).
        password: String,
        /// system_type.
        system_type: String,
    },
    /// bind_transceiver_resp.
    BindTransceiverResp {
        /// The SMSC's system_id.
        system_id: String,
    },
    /// submit_sm.
    SubmitSm(Box<Sm>),
    /// submit_sm_resp.
    SubmitSmResp {
        /// The SMSC's message id.
        message_id: String,
    },
    /// deliver_sm.
    DeliverSm(Box<Sm>),
    /// deliver_sm_resp.
    DeliverSmResp,
    /// enquire_link.
    EnquireLink,
    /// enquire_link_resp.
    EnquireLinkResp,
    /// unbind.
    Unbind,
    /// unbind_resp.
    UnbindResp,
    /// generic_nack.
    GenericNack,
    /// Anything else (kept for the nack).
    Other {
        /// Its command_id.
        command_id: u32,
    },
}

/// A PDU with its header fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// command_status.
    pub status: u32,
    /// sequence_number.
    pub seq: u32,
    /// The body.
    pub pdu: Pdu,
}

impl Pdu {
    /// Its command_id.
    pub fn command_id(&self) -> u32 {
        match self {
            Pdu::BindTransceiver { .. } => id::BIND_TRANSCEIVER,
            Pdu::BindTransceiverResp { .. } => id::BIND_TRANSCEIVER_RESP,
            Pdu::SubmitSm(_) => id::SUBMIT_SM,
            Pdu::SubmitSmResp { .. } => id::SUBMIT_SM_RESP,
            Pdu::DeliverSm(_) => id::DELIVER_SM,
            Pdu::DeliverSmResp => id::DELIVER_SM_RESP,
            Pdu::EnquireLink => id::ENQUIRE_LINK,
            Pdu::EnquireLinkResp => id::ENQUIRE_LINK_RESP,
            Pdu::Unbind => id::UNBIND,
            Pdu::UnbindResp => id::UNBIND_RESP,
            Pdu::GenericNack => id::GENERIC_NACK,
            Pdu::Other { command_id } => *command_id,
        }
    }
}

fn bad(what: impl Into<String>) -> Error {
    Error::Smpp(what.into())
}

fn put_cstr(out: &mut Vec<u8>, s: &str, max: usize) -> Result<()> {
    if s.len() > max || s.as_bytes().contains(&0) {
        return Err(bad(format!("field `{s}` longer than {max} or with NUL")));
    }
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    Ok(())
}

fn put_sm(out: &mut Vec<u8>, sm: &Sm) -> Result<()> {
    put_cstr(out, &sm.service_type, 5)?;
    out.extend_from_slice(&[sm.source.ton, sm.source.npi]);
    put_cstr(out, &sm.source.addr, 20)?;
    out.extend_from_slice(&[sm.dest.ton, sm.dest.npi]);
    put_cstr(out, &sm.dest.addr, 20)?;
    out.extend_from_slice(&[sm.esm_class, sm.protocol_id, sm.priority]);
    put_cstr(out, &sm.schedule, 16)?;
    put_cstr(out, &sm.validity, 16)?;
    out.extend_from_slice(&[
        sm.registered_delivery,
        sm.replace,
        sm.data_coding,
        sm.default_msg_id,
    ]);
    let len = u8::try_from(sm.short_message.len())
        .ok()
        .filter(|&l| l <= 254)
        .ok_or_else(|| bad("short_message over 254 bytes"))?;
    out.push(len);
    out.extend_from_slice(&sm.short_message);
    for (tag, value) in &sm.tlvs {
        let len = u16::try_from(value.len()).map_err(|_| bad("TLV too long"))?;
        out.extend_from_slice(&tag.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(value);
    }
    Ok(())
}

/// Appends the encoded `frame` to `out`.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&frame.pdu.command_id().to_be_bytes());
    out.extend_from_slice(&frame.status.to_be_bytes());
    out.extend_from_slice(&frame.seq.to_be_bytes());
    match &frame.pdu {
        Pdu::BindTransceiver {
            system_id,
            password,
            system_type,
        } => {
            put_cstr(out, system_id, 15)?;
            put_cstr(out, password, 8)?;
            put_cstr(out, system_type, 12)?;
            out.extend_from_slice(&[VERSION_34, 0, 0]);
            put_cstr(out, "", 40)?;
        }
        Pdu::BindTransceiverResp { system_id } => put_cstr(out, system_id, 15)?,
        Pdu::SubmitSm(sm) | Pdu::DeliverSm(sm) => put_sm(out, sm)?,
        Pdu::SubmitSmResp { message_id } => put_cstr(out, message_id, 64)?,
        Pdu::DeliverSmResp => put_cstr(out, "", 0)?,
        Pdu::EnquireLink
        | Pdu::EnquireLinkResp
        | Pdu::Unbind
        | Pdu::UnbindResp
        | Pdu::GenericNack
        | Pdu::Other { .. } => {}
    }
    let len = u32::try_from(out.len() - start).map_err(|_| bad("PDU too long"))?;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// A cursor over a PDU body that never reads past its end.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8> {
        let (&b, rest) = self
            .buf
            .split_first()
            .ok_or_else(|| bad("PDU body too short"))?;
        self.buf = rest;
        Ok(b)
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(bad("PDU body too short"));
        }
        let (a, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(a)
    }
    fn cstr(&mut self, max: usize) -> Result<String> {
        let end = self
            .buf
            .iter()
            .take(max + 1)
            .position(|&b| b == 0)
            .ok_or_else(|| bad(format!("C-string longer than {max}")))?;
        let s = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }
    fn address(&mut self) -> Result<Address> {
        Ok(Address {
            ton: self.u8()?,
            npi: self.u8()?,
            addr: self.cstr(64)?,
        })
    }
}

fn get_sm(r: &mut Reader<'_>) -> Result<Sm> {
    let mut sm = Sm {
        service_type: r.cstr(5)?,
        source: r.address()?,
        dest: r.address()?,
        esm_class: r.u8()?,
        protocol_id: r.u8()?,
        priority: r.u8()?,
        schedule: r.cstr(16)?,
        validity: r.cstr(16)?,
        registered_delivery: r.u8()?,
        replace: r.u8()?,
        data_coding: r.u8()?,
        default_msg_id: r.u8()?,
        ..Sm::default()
    };
    let len = r.u8()? as usize;
    sm.short_message = r.bytes(len)?.to_vec();
    while !r.buf.is_empty() {
        let tag = u16::from_be_bytes([r.u8()?, r.u8()?]);
        let len = u16::from_be_bytes([r.u8()?, r.u8()?]) as usize;
        sm.tlvs.push((tag, r.bytes(len)?.to_vec()));
    }
    Ok(sm)
}

/// Decodes one PDU from the front of `buf`: `Ok(None)` when more bytes are needed,
/// `Ok(Some((frame, used)))` otherwise; an error (length out of range, malformed body) means
/// the connection must be dropped.
pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>> {
    let Some(head) = buf.get(..16) else {
        return Ok(None);
    };
    let word = |i: usize| u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let len = word(0) as usize;
    if !(16..=MAX_PDU).contains(&len) {
        return Err(bad(format!("PDU length {len} out of range")));
    }
    let Some(body) = buf.get(16..len) else {
        return Ok(None);
    };
    let (command_id, status, seq) = (word(4), word(8), word(12));
    let mut r = Reader { buf: body };
    // Responses with an error status may carry no body.
    let empty = body.is_empty();
    let pdu = match command_id {
        id::BIND_TRANSCEIVER => Pdu::BindTransceiver {
            system_id: r.cstr(15)?,
            password: r.cstr(8)?,
            system_type: r.cstr(12)?,
        },
        id::BIND_TRANSCEIVER_RESP => Pdu::BindTransceiverResp {
            system_id: if empty { String::new() } else { r.cstr(15)? },
        },
        id::SUBMIT_SM => Pdu::SubmitSm(Box::new(get_sm(&mut r)?)),
        id::SUBMIT_SM_RESP => Pdu::SubmitSmResp {
            message_id: if empty { String::new() } else { r.cstr(64)? },
        },
        id::DELIVER_SM => Pdu::DeliverSm(Box::new(get_sm(&mut r)?)),
        id::DELIVER_SM_RESP => Pdu::DeliverSmResp,
        id::ENQUIRE_LINK => Pdu::EnquireLink,
        id::ENQUIRE_LINK_RESP => Pdu::EnquireLinkResp,
        id::UNBIND => Pdu::Unbind,
        id::UNBIND_RESP => Pdu::UnbindResp,
        id::GENERIC_NACK => Pdu::GenericNack,
        other => Pdu::Other { command_id: other },
    };
    Ok(Some((Frame { status, seq, pdu }, len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bind_is_version_34_and_round_trips() {
        let f = Frame {
            status: 0,
            seq: 1,
            pdu: Pdu::BindTransceiver {
                system_id: "cig".into(),
                password: "pw".into(),
                system_type: String::new(),
            },
        };
        let mut out = Vec::new();
        encode(&f, &mut out).unwrap();
        assert_eq!(
            &out[..16],
            &[0, 0, 0, 28, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(out[16 + 4 + 3 + 1], VERSION_34);
        assert_eq!(decode(&out).unwrap(), Some((f, out.len())));
        assert_eq!(decode(&out[..20]).unwrap(), None);
    }

    proptest! {
        #[test]
        fn sm_round_trips(dest in "[0-9]{1,20}", sm in proptest::collection::vec(any::<u8>(), 0..=254), esm in any::<u8>(), dc in any::<u8>()) {
            let f = Frame { status: 0, seq: 7, pdu: Pdu::SubmitSm(Box::new(Sm {
                source: Address::from_uri_text("+8888"),
                dest: Address::from_uri_text(&dest),
                esm_class: esm, data_coding: dc, short_message: sm,
                tlvs: vec![(0x1404, vec![1, 2])], ..Sm::default() })) };
            let mut out = Vec::new();
            encode(&f, &mut out).unwrap();
            prop_assert_eq!(decode(&out).unwrap(), Some((f, out.len())));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }
    }
}
