//! Frame headers (RFC 6455 §5.2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! ```

use crate::error::ProtocolError;
use crate::mask::extend_masked;
use crate::role::Role;

/// The longest possible header: 2 + 8 (length) + 4 (mask) bytes.
pub const MAX_HEADER_LEN: usize = 14;

/// A frame opcode (§5.2, §11.8).
/// Each is its 4-bit value, so [`OpCode::as_u8`] costs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation = 0x0,
    /// 0x1: the first frame of a text message.
    Text = 0x1,
    /// 0x2: the first frame of a binary message.
    Binary = 0x2,
    /// 0x8: begins or answers the closing handshake.
    Close = 0x8,
    /// 0x9: asks for a pong.
    Ping = 0x9,
    /// 0xA: answers a ping, or is a unidirectional heartbeat.
    Pong = 0xA,
}

impl OpCode {
    /// Reads the 4-bit opcode; reserved values are an error.
    pub fn from_u8(bits: u8) -> Result<Self, ProtocolError> {
        Ok(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            other => return Err(ProtocolError::ReservedOpcode(other)),
        })
    }

    /// The 4-bit value.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Close, ping and pong are control frames (§5.5).
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as the low three bits.
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on client-to-server frames.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes.
    pub payload_len: u64,
}

impl FrameHeader {
    /// A final, unmasked frame with no RSV bits.
    pub fn new(opcode: OpCode, payload_len: u64) -> Self {
        Self {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            payload_len,
        }
    }

    /// Decodes a header from the start of `buf`.
    ///
    /// Returns the header and its length in bytes, or `None` if `buf` does not
    /// yet hold the whole header.
    #[inline]
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let [b0, b1, rest @ ..] = buf else {
            return Ok(None);
        };
        let opcode = OpCode::from_u8(b0 & 0x0F)?;
        let (payload_len, len_bytes) = match b1 & 0x7F {
            126 => {
                let Some(bytes) = rest.first_chunk::<2>() else {
                    return Ok(None);
                };
                let len = u16::from_be_bytes(*bytes);
                if len < 126 {
                    return Err(ProtocolError::NonMinimalLength);
                }
                (u64::from(len), 2)
            }
            127 => {
                let Some(bytes) = rest.first_chunk::<8>() else {
                    return Ok(None);
                };
                let len = u64::from_be_bytes(*bytes);
                if len >> 63 != 0 {
                    return Err(ProtocolError::LengthHighBit);
                }
                if len <= u64::from(u16::MAX) {
                    return Err(ProtocolError::NonMinimalLength);
                }
                (len, 8)
            }
            short => (u64::from(short), 0),
        };
        let rest = &rest[len_bytes..];
        let mask = if b1 & 0x80 != 0 {
            let Some(key) = rest.first_chunk::<4>() else {
                return Ok(None);
            };
            Some(*key)
        } else {
            None
        };
        let header = Self {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x07,
            opcode,
            mask,
            payload_len,
        };
        Ok(Some((header, header.encoded_len())))
    }

    /// Checks the rules that depend on who receives the frame (§5.1, §5.2, §5.5):
    /// no RSV bits (no extension is negotiated), masking by role, and short,
    /// unfragmented control frames.
    pub fn validate(&self, receiver: Role) -> Result<(), ProtocolError> {
        if self.rsv != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        match (receiver, self.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if self.opcode.is_control() {
            if self.payload_len > 125 {
                return Err(ProtocolError::ControlTooLong);
            }
            if !self.fin {
                return Err(ProtocolError::ControlFragmented);
            }
        }
        Ok(())
    }

    /// The number of bytes [`FrameHeader::encode`] writes.
    #[inline]
    pub fn encoded_len(&self) -> usize {
        let len_bytes = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + len_bytes + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Appends the header to `out`, with the minimal length encoding.
    #[inline]
    pub fn encode(&self, out: &mut Vec<u8>) {
        if let Some(short) = self.short() {
            out.extend_from_slice(&short);
            return;
        }
        let mut bytes = [0; MAX_HEADER_LEN];
        let len = self.encode_into(&mut bytes);
        // With room for it, the whole array and then back: a copy of a
        // known size is a few moves, where one of `len` bytes is a call to
        // `memcpy`. (Without, no more is allocated than the header takes.)
        let start = out.len();
        if out.capacity() - start >= MAX_HEADER_LEN {
            out.extend_from_slice(&bytes);
            out.truncate(start + len);
        } else {
            out.extend_from_slice(&bytes[..len]);
        }
    }

    /// The whole header of the commonest frame, a server's short one (no
    /// mask, a length of at most 125 in the 7-bit field, §5.2): two bytes.
    #[inline]
    fn short(&self) -> Option<[u8; 2]> {
        (self.mask.is_none() && self.payload_len <= 125)
            .then(|| [self.first_byte(), self.payload_len as u8])
    }

    /// FIN, the RSV bits and the opcode.
    #[inline]
    fn first_byte(&self) -> u8 {
        let fin = if self.fin { 0x80 } else { 0 };
        fin | (self.rsv & 0x07) << 4 | self.opcode.as_u8()
    }

    /// Writes the header to the front of `bytes` and returns its length:
    /// built on the stack and appended in one go, which costs less than
    /// appending its fields one by one.
    #[inline]
    fn encode_into(&self, bytes: &mut [u8; MAX_HEADER_LEN]) -> usize {
        bytes[0] = self.first_byte();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut len = match self.payload_len {
            n @ 0..=125 => {
                bytes[1] = mask_bit | n as u8;
                2
            }
            n @ 126..=0xFFFF => {
                bytes[1] = mask_bit | 126;
                bytes[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                4
            }
            n => {
                bytes[1] = mask_bit | 127;
                bytes[2..10].copy_from_slice(&n.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            bytes[len..len + 4].copy_from_slice(&key);
            len += 4;
        }
        len
    }
}

/// Appends one whole frame to `out`: the header, then `payload`, masked with
/// `mask` if there is one (§5.3). `rsv` is 0: no extension is in use.
#[inline]
pub fn encode_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    encode_frame_header(
        out,
        FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        },
        payload,
    );
}

/// Appends one whole frame to `out`: `header`, then `payload`, masked with
/// the header's key if it has one (§5.3). Every frame is written here:
/// through [`encode_frame`], or directly for one with RSV bits (RFC 7692).
/// `header.payload_len` must be `payload.len()` (checked in debug builds
/// only): the length written is `header.payload_len` on every path.
#[inline(always)]
pub fn encode_frame_header(out: &mut Vec<u8>, header: FrameHeader, payload: &[u8]) {
    debug_assert_eq!(header.payload_len, payload.len() as u64);
    // The commonest, a server's short frame (an echo, a chat line): its two
    // header bytes and the payload after one reservation, without working
    // out the header's length, looking at it again in `encode`, and
    // looking for a key to mask with. Inlined where it is called, with the
    // rest out of line.
    if let Some(short) = header.short() {
        out.reserve(short.len() + payload.len());
        out.extend_from_slice(&short);
        out.extend_from_slice(payload);
        return;
    }
    encode_long_frame(out, header, payload);
}

/// [`encode_frame_header`] for every frame but a server's short one.
#[inline(never)]
fn encode_long_frame(out: &mut Vec<u8>, header: FrameHeader, payload: &[u8]) {
    out.reserve(header.encoded_len() + payload.len());
    header.encode(out);
    extend_masked(out, payload, header.mask, 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(bytes: &[u8]) -> (FrameHeader, &[u8]) {
        let (header, len) = FrameHeader::decode(bytes)
            .expect("valid")
            .expect("complete");
        (header, &bytes[len..])
    }

    #[test]
    fn rfc_5_7_unmasked_hello() {
        let (h, payload) = decode_all(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(h, FrameHeader::new(OpCode::Text, 5));
        assert_eq!(payload, b"Hello");
        assert_eq!(h.validate(Role::Client), Ok(()));
        assert_eq!(h.validate(Role::Server), Err(ProtocolError::UnmaskedFrame));
    }

    #[test]
    fn rfc_5_7_masked_hello() {
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, _) = decode_all(&bytes);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(h.payload_len, 5);
        assert_eq!(h.validate(Role::Server), Ok(()));
        assert_eq!(h.validate(Role::Client), Err(ProtocolError::MaskedFrame));
    }

    #[test]
    fn rfc_5_7_fragmented_hello() {
        let (first, _) = decode_all(&[0x01, 0x03, 0x48, 0x65, 0x6c]);
        assert!(!first.fin);
        assert_eq!(first.opcode, OpCode::Text);
        let (last, _) = decode_all(&[0x80, 0x02, 0x6c, 0x6f]);
        assert!(last.fin);
        assert_eq!(last.opcode, OpCode::Continuation);
    }

    #[test]
    fn rfc_5_7_ping_and_pong() {
        let (ping, _) = decode_all(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(ping.opcode, OpCode::Ping);
        let bytes = [
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (pong, _) = decode_all(&bytes);
        assert_eq!(pong.opcode, OpCode::Pong);
        assert_eq!(pong.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
    }

    #[test]
    fn rfc_5_7_16_and_64_bit_lengths() {
        let mut bytes = vec![0x82, 0x7E, 0x01, 0x00];
        let (h, _) = decode_all(&bytes);
        assert_eq!(h.payload_len, 256);
        let mut encoded = Vec::new();
        h.encode(&mut encoded);
        assert_eq!(encoded, bytes);

        bytes = vec![0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];
        let (h, _) = decode_all(&bytes);
        assert_eq!(h.payload_len, 65536);
        encoded.clear();
        h.encode(&mut encoded);
        assert_eq!(encoded, bytes);
    }

    #[test]
    fn a_short_server_frame_ends_at_125_bytes() {
        // §5.2: a length of 0 to 125 is the 7-bit field itself; 126 takes
        // the 16-bit form.
        for len in [0usize, 1, 125, 126] {
            let payload = vec![0x5a; len];
            let mut out = vec![0xee];
            encode_frame(&mut out, true, OpCode::Binary, None, &payload);
            let header: &[u8] = match len {
                126 => &[0xee, 0x82, 0x7e, 0x00, 0x7e],
                short => &[0xee, 0x82, short as u8],
            };
            assert_eq!(&out[..header.len()], header, "length {len}");
            assert_eq!(&out[header.len()..], &payload[..], "length {len}");
        }
    }

    #[test]
    fn the_longest_header_fills_its_14_bytes_exactly() {
        // A compressed client frame's first fragment with a 64-bit length:
        // every field the header can carry.
        let header = FrameHeader {
            fin: false,
            rsv: 0b100,
            opcode: OpCode::Text,
            mask: Some([0xa1, 0xb2, 0xc3, 0xd4]),
            payload_len: 0x0102_0304_0506_0708,
        };
        let mut encoded = vec![0xee];
        header.encode(&mut encoded);
        assert_eq!(
            encoded,
            [0xee, 0x41, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 0xa1, 0xb2, 0xc3, 0xd4],
            "appended after what was there"
        );
        assert_eq!(header.encoded_len(), MAX_HEADER_LEN);
        assert_eq!(decode_all(&encoded[1..]).0, header);
    }

    #[test]
    fn rejects_reserved_opcodes_and_bad_lengths() {
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                FrameHeader::decode(&[0x80 | op, 0x80]),
                Err(ProtocolError::ReservedOpcode(op))
            );
        }
        let high_bit = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            FrameHeader::decode(&high_bit),
            Err(ProtocolError::LengthHighBit)
        );
        assert_eq!(
            FrameHeader::decode(&[0x82, 0x7E, 0x00, 0x7D]),
            Err(ProtocolError::NonMinimalLength)
        );
        assert_eq!(
            FrameHeader::decode(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]),
            Err(ProtocolError::NonMinimalLength)
        );
    }

    #[test]
    fn validates_control_frames_and_rsv() {
        let mut h = FrameHeader::new(OpCode::Ping, 126);
        assert_eq!(h.validate(Role::Client), Err(ProtocolError::ControlTooLong));
        h.payload_len = 125;
        h.fin = false;
        assert_eq!(
            h.validate(Role::Client),
            Err(ProtocolError::ControlFragmented)
        );
        let mut h = FrameHeader::new(OpCode::Text, 1);
        h.rsv = 0b100;
        assert_eq!(h.validate(Role::Client), Err(ProtocolError::ReservedBits));
    }

    fn any_header() -> impl Strategy<Value = FrameHeader> {
        let opcode = prop::sample::select(vec![
            OpCode::Continuation,
            OpCode::Text,
            OpCode::Binary,
            OpCode::Close,
            OpCode::Ping,
            OpCode::Pong,
        ]);
        let len = prop_oneof![0u64..=125, 126u64..=0xFFFF, 0x1_0000u64..=(u64::MAX >> 1)];
        (any::<bool>(), 0u8..8, opcode, any::<Option<[u8; 4]>>(), len).prop_map(
            |(fin, rsv, opcode, mask, payload_len)| FrameHeader {
                fin,
                rsv,
                opcode,
                mask,
                payload_len,
            },
        )
    }

    proptest! {
        #[test]
        fn encode_then_decode_at_every_split(header in any_header()) {
            let mut bytes = Vec::new();
            header.encode(&mut bytes);
            prop_assert_eq!(bytes.len(), header.encoded_len());
            for cut in 0..bytes.len() {
                prop_assert_eq!(FrameHeader::decode(&bytes[..cut]), Ok(None));
            }
            prop_assert_eq!(FrameHeader::decode(&bytes), Ok(Some((header, bytes.len()))));
        }

        /// A whole frame (the short server frame's own path included) is
        /// the header as `encode` writes it, then the payload masked byte
        /// by byte as §5.3 defines it, after what `out` held.
        #[test]
        fn a_whole_frame_is_its_header_then_its_masked_payload(
            header in any_header(),
            payload in prop::collection::vec(any::<u8>(), 0..300),
            before in prop::collection::vec(any::<u8>(), 0..4),
        ) {
            let header = FrameHeader { payload_len: payload.len() as u64, ..header };
            let mut expected = before.clone();
            header.encode(&mut expected);
            let key = header.mask.unwrap_or([0; 4]);
            expected.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            let mut out = before;
            encode_frame_header(&mut out, header, &payload);
            prop_assert_eq!(out, expected);
        }
    }
}
