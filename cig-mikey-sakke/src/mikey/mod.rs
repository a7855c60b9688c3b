//! MIKEY-SAKKE I_MESSAGEs (RFC 3830, RFC 6043, RFC 6509): the payload codec, the two identity
//! profiles (RFC 6509 tel URI, 3GPP TS 33.180 UID), creating a signed message, and the
//! receiving rules (clock-skew window, verify-before-decapsulate, replay cache, MIKEY error
//! codes).
//!
//! ```
//! use cig_mikey_sakke::mikey::{IMessage, ErrorCode};
//! // A truncated message is refused, and the refusal maps to a MIKEY error code.
//! let err = IMessage::parse(&[1, 26, 5]).unwrap_err();
//! assert_eq!(ErrorCode::for_error(&err), ErrorCode::Unspecified);
//! ```

pub mod create;
pub mod payload;
pub mod profile;
pub mod receive;

pub use create::{Created, Request, create};
pub use payload::{
    CsIdMap, ErrorCode, GeneralExt, GenericCs, Header, IMessage, Idr, SakkePayload, SecurityPolicy,
    SrtpCs, encode_error_message,
};
pub use profile::{KeyPeriod, McxPeriods, Profile, mcx_uid, split_rfc6509_identifier};
pub use receive::{
    Accepted, Checked, KeyLookup, Receiver, ReceiverConfig, ReplayCache, VerifiedIMessage,
    receiver_identity, sender_identity, verify,
};
