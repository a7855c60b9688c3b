//! Property tests of the I_MESSAGE codec: every encodable message parses back to the same
//! values, the signed part ends exactly at the SIGN type/length field, and every truncation
//! is refused.

use cig_mikey_sakke::eccsi::Signature;
use cig_mikey_sakke::kdf::Prf;
use cig_mikey_sakke::mikey::{
    CsIdMap, GeneralExt, GenericCs, Header, IMessage, Idr, SakkePayload, SecurityPolicy, SrtpCs,
};
use proptest::collection::vec;
use proptest::prelude::*;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

fn cs_map() -> impl Strategy<Value = CsIdMap> {
    prop_oneof![
        vec((any::<u8>(), any::<u32>(), any::<u32>()), 0..4).prop_map(|v| CsIdMap::Srtp(
            v.into_iter()
                .map(|(policy_no, ssrc, roc)| SrtpCs {
                    policy_no,
                    ssrc,
                    roc
                })
                .collect()
        )),
        any::<u8>().prop_map(CsIdMap::Empty),
        vec(
            (
                any::<u8>(),
                any::<u8>(),
                any::<bool>(),
                bytes(5),
                bytes(20),
                bytes(12)
            ),
            0..3
        )
        .prop_map(|v| CsIdMap::Generic(
            v.into_iter()
                .map(
                    |(cs_id, prot_type, s_flag, policies, session_data, spi)| GenericCs {
                        cs_id,
                        prot_type,
                        s_flag,
                        policies,
                        session_data,
                        spi,
                    }
                )
                .collect()
        )),
    ]
}

prop_compose! {
    fn message()(
        v_flag in any::<bool>(),
        sha256 in any::<bool>(),
        csb_id in any::<u32>(),
        cs_map in cs_map(),
        timestamp in any::<u64>(),
        rand in vec(any::<u8>(), 16..40),
        idrs in vec((any::<u8>(), any::<u8>(), bytes(40)), 0..5),
        policies in vec((any::<u8>(), any::<u8>(), vec((any::<u8>(), bytes(4)), 0..6)), 0..3),
        sakke in (any::<u8>(), any::<u8>(), bytes(300)),
        extensions in vec((any::<u8>(), bytes(80)), 0..3),
        sig in vec(any::<u8>(), 129),
    ) -> (Vec<u8>, IMessage) {
        let header = Header {
            data_type: 26,
            v_flag,
            prf: if sha256 { Prf::HmacSha256 } else { Prf::HmacSha1 },
            csb_id,
            cs_map,
        };
        let idrs: Vec<Idr> = idrs.into_iter().map(|(role, id_type, data)| Idr { role, id_type, data }).collect();
        let policies: Vec<SecurityPolicy> = policies
            .into_iter()
            .map(|(policy_no, prot_type, params)| SecurityPolicy { policy_no, prot_type, params })
            .collect();
        let sakke = SakkePayload { params: sakke.0, id_scheme: sakke.1, sed: sakke.2 };
        let extensions: Vec<GeneralExt> = extensions.into_iter().map(|(ext_type, data)| GeneralExt { ext_type, data }).collect();
        let signed = IMessage::encode_signed_part(&header, timestamp, &rand, &idrs, &policies, &sakke, &extensions).unwrap();
        let signature = Signature::from_bytes(&sig).unwrap();
        let msg = IMessage::from_signed_part(signed.clone(), &signature).unwrap();
        assert_eq!(msg.header, header);
        assert_eq!(msg.timestamp, timestamp);
        assert_eq!(msg.rand, rand);
        assert_eq!(msg.idrs, idrs);
        assert_eq!(msg.policies, policies);
        assert_eq!(msg.sakke, sakke);
        assert_eq!(msg.extensions, extensions);
        assert_eq!(msg.signature, signature);
        (signed, msg)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn encode_parse_round_trip((signed, msg) in message()) {
        prop_assert_eq!(msg.signed_bytes(), &signed[..]);
        prop_assert_eq!(&signed[signed.len() - 2..], &[0x20, 0x81]);
        prop_assert_eq!(msg.as_bytes().len(), signed.len() + 129);
    }

    #[test]
    fn every_truncation_and_extension_is_refused((_s, msg) in message(), extra in 1u8..=255) {
        let full = msg.as_bytes();
        for n in 0..full.len() {
            prop_assert!(IMessage::parse(&full[..n]).is_err());
        }
        let mut longer = full.to_vec();
        longer.push(extra);
        prop_assert!(IMessage::parse(&longer).is_err());
    }
}
