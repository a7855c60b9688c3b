//! MIKEY I_MESSAGE parser and key-file decoders: never panic on any input; whatever parses
//! re-encodes (canonical payload order) to a message that parses to the same values; the
//! identity and error-code helpers are safe on every parsed message.
#![no_main]

use cig_mikey_sakke::keystore::KeyMaterial;
use cig_mikey_sakke::mikey::{
    ErrorCode, IMessage, KeyPeriod, receiver_identity, sender_identity, split_rfc6509_identifier,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match IMessage::parse(data) {
        Ok(msg) => {
            let _ = (sender_identity(&msg), receiver_identity(&msg));
            let signed = IMessage::encode_signed_part(
                &msg.header,
                msg.timestamp,
                &msg.rand,
                &msg.idrs,
                &msg.policies,
                &msg.sakke,
                &msg.extensions,
            )
            .expect("a parsed message re-encodes");
            let again = IMessage::from_signed_part(signed, &msg.signature)
                .expect("a re-encoded message parses");
            assert_eq!(again.header, msg.header);
            assert_eq!(again.timestamp, msg.timestamp);
            assert_eq!(again.rand, msg.rand);
            assert_eq!(again.idrs, msg.idrs);
            assert_eq!(again.policies, msg.policies);
            assert_eq!(again.sakke, msg.sakke);
            assert_eq!(again.extensions, msg.extensions);
            assert_eq!(again.signature, msg.signature);
        }
        Err(e) => {
            let _ = ErrorCode::for_error(&e).code();
        }
    }
    let _ = split_rfc6509_identifier(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = KeyPeriod::parse(s);
    }
    let _ = KeyMaterial::from_json(data);
});
