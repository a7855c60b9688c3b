//! The UMSG/1 frame layer: length prefix, version, frame type and TLV fields (docs/umsg.md §2),
//! with hard caps, and an incremental [`FrameDecoder`] that buffers at most one frame.

use crate::Error;

/// The protocol version carried in every frame.
pub const VERSION: u8 = 1;
/// Largest value of the length prefix (bytes after the prefix). A larger prefix closes the
/// connection before anything is allocated.
pub const MAX_FRAME_LEN: usize = 256 * 1024;
/// Most fields in one frame.
pub const MAX_FIELDS: usize = 64;
/// The critical bit of a field tag: an unknown critical field is a protocol error.
pub const CRITICAL: u16 = 0x8000;
/// Bytes of the length prefix.
pub const PREFIX_LEN: usize = 4;
/// Bytes of a field header (tag and length).
pub const FIELD_HEADER_LEN: usize = 6;

/// Frame types (docs/umsg.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// Client opens: what it is.
    Hello = 1,
    /// Switch: nonce and time to sign.
    Challenge = 2,
    /// Client: identity, key period, ECCSI signature.
    Register = 3,
    /// Switch: registration accepted.
    Registered = 4,
    /// Switch: registration refused (or replaced).
    Refused = 5,
    /// Keepalive request.
    Ping = 6,
    /// Keepalive answer.
    Pong = 7,
    /// Call offer (I_MESSAGE and media offer).
    Bang = 16,
    /// Switch to caller: the call is routed, with the relay's media address.
    Routed = 17,
    /// Callee is ringing.
    Growl = 18,
    /// Callee answered, with the media answer.
    Talk = 19,
    /// Call ended, with a reason.
    Hangup = 20,
    /// Encrypted text message.
    Msg = 32,
    /// Acknowledgement of a text message.
    MsgAck = 33,
}

impl FrameType {
    /// The frame type of a code, if known.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Hello,
            2 => Self::Challenge,
            3 => Self::Register,
            4 => Self::Registered,
            5 => Self::Refused,
            6 => Self::Ping,
            7 => Self::Pong,
            16 => Self::Bang,
            17 => Self::Routed,
            18 => Self::Growl,
            19 => Self::Talk,
            20 => Self::Hangup,
            32 => Self::Msg,
            33 => Self::MsgAck,
            _ => return None,
        })
    }
}

/// Field tags (docs/umsg.md §2.3). Tags with [`CRITICAL`] set must be understood.
pub mod tag {
    /// 12-byte call session id.
    pub const SESSION_ID: u16 = 0x8001;
    /// From URI.
    pub const FROM: u16 = 0x8002;
    /// To URI (as dialled).
    pub const TO: u16 = 0x8003;
    /// 32-byte switch nonce.
    pub const NONCE: u16 = 0x8004;
    /// u64 Unix seconds.
    pub const TIME: u16 = 0x8005;
    /// Registering identity (tel URI).
    pub const IDENTITY: u16 = 0x8006;
    /// Key period `YYYY-MM`.
    pub const PERIOD: u16 = 0x8007;
    /// ECCSI signature (129 bytes).
    pub const SIGNATURE: u16 = 0x8008;
    /// u8 reason code.
    pub const REASON: u16 = 0x8009;
    /// RFC 6509 I_MESSAGE.
    pub const IMESSAGE: u16 = 0x800A;
    /// Codec payload types, one byte each (0 PCMU, 8 PCMA).
    pub const CODECS: u16 = 0x800B;
    /// u8 telephone-event payload type.
    pub const DTMF_PT: u16 = 0x800C;
    /// u32 SSRC.
    pub const SSRC: u16 = 0x800D;
    /// Media address `host:port` (the switch relay's public address).
    pub const MEDIA_ADDR: u16 = 0x800E;
    /// 16-byte message id.
    pub const MESSAGE_ID: u16 = 0x800F;
    /// AEAD ciphertext of a message body.
    pub const CIPHERTEXT: u16 = 0x8010;
    /// u8 acknowledgement status.
    pub const ACK_STATUS: u16 = 0x8011;
    /// Body: text (UTF-8).
    pub const BODY_TEXT: u16 = 0x8020;
    /// Body: attachment name (starts an attachment).
    pub const ATTACH_NAME: u16 = 0x8021;
    /// Body: attachment content type.
    pub const ATTACH_TYPE: u16 = 0x8022;
    /// Body: attachment bytes.
    pub const ATTACH_DATA: u16 = 0x8023;
    /// Non-critical: human-readable text (software name, reason detail).
    pub const INFO: u16 = 0x0001;
}

/// The largest value a field with `tag` may carry.
pub fn field_cap(t: u16) -> usize {
    match t {
        tag::SESSION_ID => 12,
        tag::NONCE => 32,
        tag::TIME => 8,
        tag::PERIOD => 7,
        tag::SIGNATURE => cig_mikey_sakke::eccsi::SIGNATURE_LEN,
        tag::REASON | tag::DTMF_PT | tag::ACK_STATUS => 1,
        tag::SSRC => 4,
        tag::MESSAGE_ID => 16,
        tag::FROM | tag::TO | tag::IDENTITY | tag::INFO => 256,
        tag::ATTACH_NAME | tag::ATTACH_TYPE => 256,
        tag::MEDIA_ADDR => 64,
        tag::CODECS => 8,
        tag::IMESSAGE => cig_mikey_sakke::mikey::payload::MAX_MESSAGE_LEN,
        _ => MAX_FRAME_LEN,
    }
}

/// One TLV field.
#[derive(Clone, PartialEq, Eq)]
pub struct Field {
    /// Tag (high bit = critical).
    pub tag: u16,
    /// Value.
    pub value: Vec<u8>,
}

impl core::fmt::Debug for Field {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Field({:#06x}, {} bytes)", self.tag, self.value.len())
    }
}

/// A frame: type and fields in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Frame type.
    pub kind: FrameType,
    /// Fields, in the order sent.
    pub fields: Vec<Field>,
}

impl Frame {
    /// A frame of `kind` without fields.
    pub fn new(kind: FrameType) -> Self {
        Self {
            kind,
            fields: Vec::new(),
        }
    }

    /// Appends a field (builder style).
    pub fn with(mut self, tag: u16, value: impl Into<Vec<u8>>) -> Self {
        self.fields.push(Field {
            tag,
            value: value.into(),
        });
        self
    }

    /// The first value of `tag`.
    pub fn get(&self, tag: u16) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.tag == tag)
            .map(|f| f.value.as_slice())
    }

    /// Encoded length including the prefix.
    pub fn encoded_len(&self) -> usize {
        PREFIX_LEN
            + 2
            + self
                .fields
                .iter()
                .map(|f| FIELD_HEADER_LEN + f.value.len())
                .sum::<usize>()
    }

    /// Appends the encoding to `out`; refuses a frame over the caps.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let len = self.encoded_len() - PREFIX_LEN;
        if len > MAX_FRAME_LEN || self.fields.len() > MAX_FIELDS {
            return Err(Error::Frame("frame too large"));
        }
        if self.fields.iter().any(|f| f.value.len() > field_cap(f.tag)) {
            return Err(Error::Frame("field too large"));
        }
        out.reserve(len + PREFIX_LEN);
        out.extend_from_slice(&(len as u32).to_be_bytes());
        out.push(VERSION);
        out.push(self.kind as u8);
        encode_fields(&self.fields, out);
        Ok(())
    }

    /// The encoding as a new vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.encode(&mut v)?;
        Ok(v)
    }

    /// Decodes the body of a frame (everything after the length prefix). Unknown non-critical
    /// fields are dropped; unknown critical fields are an error.
    pub fn decode_body(body: &[u8]) -> Result<Self, Error> {
        let [version, kind, rest @ ..] = body else {
            return Err(Error::Frame("frame shorter than its header"));
        };
        if *version != VERSION {
            return Err(Error::Frame("unsupported version"));
        }
        let kind = FrameType::from_code(*kind).ok_or(Error::Frame("unknown frame type"))?;
        let fields = decode_fields(rest)?;
        Ok(Self { kind, fields })
    }
}

/// Appends TLV fields (no caps checked; [`Frame::encode`] checks them).
pub fn encode_fields(fields: &[Field], out: &mut Vec<u8>) {
    for f in fields {
        out.extend_from_slice(&f.tag.to_be_bytes());
        out.extend_from_slice(&(f.value.len() as u32).to_be_bytes());
        out.extend_from_slice(&f.value);
    }
}

/// Whether a tag is known to this implementation.
fn known(t: u16) -> bool {
    matches!(t, 0x8001..=0x8011 | 0x8020..=0x8023 | tag::INFO)
}

/// Decodes a TLV field list with the caps; drops unknown non-critical fields.
pub fn decode_fields(mut rest: &[u8]) -> Result<Vec<Field>, Error> {
    let mut fields = Vec::new();
    let mut seen = 0usize;
    while !rest.is_empty() {
        let Some((hdr, tail)) = rest.split_first_chunk::<FIELD_HEADER_LEN>() else {
            return Err(Error::Frame("truncated field header"));
        };
        let t = u16::from_be_bytes([hdr[0], hdr[1]]);
        let len = u32::from_be_bytes([hdr[2], hdr[3], hdr[4], hdr[5]]) as usize;
        if len > tail.len() {
            return Err(Error::Frame("field longer than the frame"));
        }
        if len > field_cap(t) {
            return Err(Error::Frame("field over its cap"));
        }
        seen += 1;
        if seen > MAX_FIELDS {
            return Err(Error::Frame("too many fields"));
        }
        let (value, next) = tail.split_at(len);
        rest = next;
        if known(t) {
            fields.push(Field {
                tag: t,
                value: value.to_vec(),
            });
        } else if t & CRITICAL != 0 {
            return Err(Error::Frame("unknown critical field"));
        }
    }
    Ok(fields)
}

/// Incremental decoder for a byte stream: holds at most one frame's bytes.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    prefix: [u8; PREFIX_LEN],
    prefix_len: usize,
    body: Vec<u8>,
    want: usize,
}

impl FrameDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes bytes from the front of `input` until one frame is complete (returned) or
    /// `input` is used up (`Ok(None)`). An error means the stream is unusable: close it.
    pub fn feed(&mut self, input: &mut &[u8]) -> Result<Option<Frame>, Error> {
        while self.prefix_len < PREFIX_LEN {
            let Some((b, rest)) = input.split_first() else {
                return Ok(None);
            };
            self.prefix[self.prefix_len] = *b;
            self.prefix_len += 1;
            *input = rest;
            if self.prefix_len == PREFIX_LEN {
                let len = u32::from_be_bytes(self.prefix) as usize;
                if len > MAX_FRAME_LEN {
                    return Err(Error::Frame("frame length over the cap"));
                }
                self.want = len;
                self.body.clear();
            }
        }
        let take = (self.want - self.body.len()).min(input.len());
        let (now, rest) = input.split_at(take);
        self.body.extend_from_slice(now);
        *input = rest;
        if self.body.len() < self.want {
            return Ok(None);
        }
        self.prefix_len = 0;
        let frame = Frame::decode_body(&self.body);
        self.body.clear();
        if self.body.capacity() > 4096 {
            self.body.shrink_to(4096);
        }
        frame.map(Some)
    }

    /// Bytes buffered for the frame in progress.
    pub fn buffered(&self) -> usize {
        self.prefix_len + self.body.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Frame {
        Frame::new(FrameType::Bang)
            .with(tag::SESSION_ID, [7u8; 12])
            .with(tag::FROM, b"tel:+1".to_vec())
            .with(tag::TO, b"tel:+2;101".to_vec())
    }

    #[test]
    fn round_trip_in_one_and_in_single_bytes() {
        let bytes = sample().to_bytes().unwrap();
        let mut d = FrameDecoder::new();
        let mut input = bytes.as_slice();
        assert_eq!(d.feed(&mut input).unwrap(), Some(sample()));
        assert!(input.is_empty());
        let mut d = FrameDecoder::new();
        let mut got = None;
        for b in &bytes {
            let mut one = std::slice::from_ref(b);
            if let Some(f) = d.feed(&mut one).unwrap() {
                got = Some(f);
            }
        }
        assert_eq!(got, Some(sample()));
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn huge_length_refused_without_allocating() {
        let mut d = FrameDecoder::new();
        let mut input: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 16];
        assert_eq!(
            d.feed(&mut input),
            Err(Error::Frame("frame length over the cap"))
        );
        assert_eq!(d.body.capacity(), 0);
        let mut at_cap = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes().to_vec();
        at_cap.push(1);
        let mut d = FrameDecoder::new();
        assert!(d.feed(&mut at_cap.as_slice()).is_err());
    }

    #[test]
    fn unknown_non_critical_ignored_critical_refused() {
        let mut f = sample();
        f.fields.push(Field {
            tag: 0x0777,
            value: b"future".to_vec(),
        });
        let mut bytes = Vec::new();
        let body_len = f.encoded_len() - PREFIX_LEN;
        bytes.extend_from_slice(&(body_len as u32).to_be_bytes());
        bytes.extend_from_slice(&[VERSION, FrameType::Bang as u8]);
        encode_fields(&f.fields, &mut bytes);
        let got = FrameDecoder::new().feed(&mut bytes.as_slice()).unwrap();
        assert_eq!(got, Some(sample()));
        // Same with the critical bit set.
        let n = bytes.len();
        let pos = n - 6 - 6;
        assert_eq!(&bytes[pos..pos + 2], &[0x07, 0x77]);
        bytes[pos] |= 0x80;
        assert_eq!(
            FrameDecoder::new().feed(&mut bytes.as_slice()),
            Err(Error::Frame("unknown critical field"))
        );
    }

    #[test]
    fn malformed_frames_have_reasons() {
        let cases: &[(&[u8], &str)] = &[
            (&[0, 0, 0, 1, 1], "frame shorter than its header"),
            (&[0, 0, 0, 2, 2, 1], "unsupported version"),
            (&[0, 0, 0, 2, 1, 99], "unknown frame type"),
            (&[0, 0, 0, 5, 1, 1, 0x80, 1, 0], "truncated field header"),
            (
                &[0, 0, 0, 8, 1, 1, 0x80, 2, 0, 0, 0, 9],
                "field longer than the frame",
            ),
            (
                &[0, 0, 0, 10, 1, 1, 0x80, 9, 0, 0, 0, 2, 1, 1],
                "field over its cap",
            ),
        ];
        for (bytes, why) in cases {
            let mut input = *bytes;
            let r = FrameDecoder::new().feed(&mut input);
            let want: Result<Option<Frame>, Error> = Err(Error::Frame(why));
            assert_eq!(r, want, "{bytes:?}");
        }
    }

    #[test]
    fn encoder_refuses_over_cap() {
        let f = Frame::new(FrameType::Ping).with(tag::NONCE, vec![0; 33]);
        assert!(f.to_bytes().is_err());
        let f = Frame::new(FrameType::Msg).with(tag::CIPHERTEXT, vec![0; MAX_FRAME_LEN]);
        assert!(f.to_bytes().is_err());
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        let tags = prop::sample::select(vec![
            tag::FROM,
            tag::TO,
            tag::IMESSAGE,
            tag::CIPHERTEXT,
            tag::INFO,
            tag::BODY_TEXT,
        ]);
        (
            prop::sample::select(vec![1u8, 2, 3, 16, 18, 20, 32, 33]),
            prop::collection::vec((tags, prop::collection::vec(any::<u8>(), 0..200)), 0..10),
        )
            .prop_map(|(k, fs)| Frame {
                kind: FrameType::from_code(k).unwrap(),
                fields: fs
                    .into_iter()
                    .map(|(tag, value)| Field { tag, value })
                    .collect(),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn prop_round_trip_any_split(frames in prop::collection::vec(arb_frame(), 1..4), cut in 0usize..2000) {
            let mut stream = Vec::new();
            for f in &frames { f.encode(&mut stream).unwrap(); }
            let cut = cut.min(stream.len());
            let mut d = FrameDecoder::new();
            let mut got = Vec::new();
            for mut part in [&stream[..cut], &stream[cut..]] {
                while !part.is_empty() {
                    if let Some(f) = d.feed(&mut part).unwrap() { got.push(f); }
                }
            }
            prop_assert_eq!(got, frames);
        }

        #[test]
        fn prop_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let mut d = FrameDecoder::new();
            let mut input = bytes.as_slice();
            while !input.is_empty() {
                match d.feed(&mut input) {
                    Ok(_) => {}
                    Err(_) => break,
                }
                prop_assert!(d.buffered() <= MAX_FRAME_LEN + PREFIX_LEN);
            }
        }
    }
}
