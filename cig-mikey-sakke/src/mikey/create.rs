//! Creating an I_MESSAGE as initiator: encapsulate a fresh SSV to the responder's identifier,
//! assemble the payloads of the chosen profile, and sign with ECCSI.

use std::time::SystemTime;

use rand_core::CryptoRngCore;

use crate::Error;
use crate::eccsi::SigningKey;
use crate::sakke::{self, KmsPublicKey, Ssv};

use super::payload::{
    CsIdMap, DATA_TYPE_SAKKE, GenericCs, Header, ID_TYPE_URI, IMessage, Idr, PROT_SRTP,
    SAKKE_PARAMS_1, SakkePayload, SecurityPolicy, SrtpCs, role,
};
use super::profile::{KeyPeriod, NTP_UNIX_OFFSET, Profile, split_rfc6509_identifier};
use super::receive::ntp_timestamp;

/// The default SRTP policy offered: AES-CM-128, HMAC-SHA-1 with an 80-bit tag, 112-bit salt
/// (RFC 3830 §6.10.1 parameter types 0, 1, 2, 3, 4, 11).
pub fn default_srtp_policy() -> SecurityPolicy {
    SecurityPolicy {
        policy_no: 0,
        prot_type: PROT_SRTP,
        params: vec![
            (0, vec![1]),
            (1, vec![16]),
            (2, vec![1]),
            (3, vec![20]),
            (4, vec![14]),
            (11, vec![10]),
        ],
    }
}

/// What an initiator puts in a message besides keys.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// Identity profile.
    pub profile: Profile,
    /// The initiator's identifier (RFC 6509 identifier or UID), which `signer` signs for.
    pub sender_id: &'a [u8],
    /// The responder's identifier the SSV is encapsulated to.
    pub receiver_id: &'a [u8],
    /// When the message is made.
    pub now: SystemTime,
}

/// A created message and the SSV it carries.
#[derive(Debug)]
pub struct Created {
    /// The signed message.
    pub message: IMessage,
    /// The SSV encapsulated in it.
    pub ssv: Ssv,
}

fn random_u32(rng: &mut impl CryptoRngCore) -> u32 {
    let mut b = [0u8; 4];
    rng.fill_bytes(&mut b);
    u32::from_be_bytes(b)
}

/// Creates and signs an I_MESSAGE carrying a fresh random SSV.
///
/// RFC 6509: IDRi/IDRr carry the URIs of the identifiers, T is `now` (or, when `now` lies
/// outside the sender identifier's month, the first second of that month so the receiver
/// derives the same identifier), PRF 0, one SRTP-ID crypto session. TS 33.180: IDRuidi/IDRuidr
/// carry the UIDs, PRF 1, one GENERIC-ID crypto session (CS ID 0, SRTP).
pub fn create(
    req: &Request<'_>,
    signer: &SigningKey,
    zpub: &KmsPublicKey,
    rng: &mut impl CryptoRngCore,
) -> Result<Created, Error> {
    if signer.id() != req.sender_id {
        return Err(Error::Encoding("signing key is for another identifier"));
    }
    let csb_id = random_u32(rng);
    let mut rand = [0u8; 16];
    rng.fill_bytes(&mut rand);
    let mut timestamp = ntp_timestamp(req.now);
    let (cs_map, idrs) = match req.profile {
        Profile::Rfc6509 => {
            let (period, s_uri) = split_rfc6509_identifier(req.sender_id)?;
            let (_, r_uri) = split_rfc6509_identifier(req.receiver_id)?;
            if KeyPeriod::from_ntp_seconds(timestamp >> 32)? != period {
                timestamp = (period.start_unix() + NTP_UNIX_OFFSET) << 32;
            }
            let idrs = vec![
                Idr {
                    role: role::INITIATOR,
                    id_type: ID_TYPE_URI,
                    data: s_uri.as_bytes().to_vec(),
                },
                Idr {
                    role: role::RESPONDER,
                    id_type: ID_TYPE_URI,
                    data: r_uri.as_bytes().to_vec(),
                },
            ];
            let cs = SrtpCs {
                policy_no: 0,
                ssrc: random_u32(rng),
                roc: 0,
            };
            (CsIdMap::Srtp(vec![cs]), idrs)
        }
        Profile::Mcx => {
            if req.sender_id.len() != 32 || req.receiver_id.len() != 32 {
                return Err(Error::Encoding("TS 33.180 UID length"));
            }
            let idrs = vec![
                Idr {
                    role: role::UID_INITIATOR,
                    id_type: ID_TYPE_URI,
                    data: req.sender_id.to_vec(),
                },
                Idr {
                    role: role::UID_RESPONDER,
                    id_type: ID_TYPE_URI,
                    data: req.receiver_id.to_vec(),
                },
            ];
            let cs = GenericCs {
                cs_id: 0,
                prot_type: PROT_SRTP,
                s_flag: false,
                policies: vec![0],
                session_data: Vec::new(),
                spi: csb_id.to_be_bytes().to_vec(),
            };
            (CsIdMap::Generic(vec![cs]), idrs)
        }
    };
    let header = Header {
        data_type: DATA_TYPE_SAKKE,
        v_flag: false,
        prf: req.profile.prf(),
        csb_id,
        cs_map,
    };
    let ssv = Ssv::random(rng);
    let sed = sakke::encapsulate(zpub, req.receiver_id, &ssv)?;
    let sakke = SakkePayload {
        params: SAKKE_PARAMS_1,
        id_scheme: req.profile.id_scheme(),
        sed: sed.as_bytes().to_vec(),
    };
    let signed = IMessage::encode_signed_part(
        &header,
        timestamp,
        &rand,
        &idrs,
        &[default_srtp_policy()],
        &sakke,
        &[],
    )?;
    let sig = signer.sign(&signed, rng);
    let message = IMessage::from_signed_part(signed, &sig)?;
    Ok(Created { message, ssv })
}
