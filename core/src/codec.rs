//! A standalone codec (RFC 6455 §5): frames and messages decoded without a
//! [`Connection`](crate::Connection), in two layers.
//!
//! - [`FrameDecoder`] splits a byte stream into frame headers and payload
//!   pieces, with the checks of §5.1, §5.2 and §5.5 and a frame size limit.
//!   It copies nothing but a partial header: payload pieces borrow the input.
//! - [`MessageDecoder`] puts those pieces together into [`Decoded`] messages
//!   and control frames: fragment assembly (§5.4), incremental UTF-8 (§8.1),
//!   close payloads (§5.5.1) and the message size limit.
//!
//! Both take input as a slice they advance, so a caller decodes straight out
//! of its read buffer and keeps whatever is left:
//!
//! ```
//! use tincan_core::codec::{Decoded, Limits, MessageDecoder};
//! use tincan_core::{Message, Role};
//!
//! // Two client frames (§5.7: a fragmented unmasked text message, here masked
//! // with a zero key as a client must mask), fed in two pieces.
//! let wire = [0x01, 0x83, 0, 0, 0, 0, b'H', b'e', b'l', 0x80, 0x82, 0, 0, 0, 0, b'l', b'o'];
//! let mut decoder = MessageDecoder::new(Role::Server, Limits::default());
//! let mut decoded = Vec::new();
//! for piece in wire.chunks(5) {
//!     let mut input = piece;
//!     while let Some(item) = decoder.decode(&mut input).unwrap() {
//!         decoded.push(item);
//!     }
//!     assert!(input.is_empty(), "a decoder keeps what it needs");
//! }
//! assert_eq!(decoded, [Decoded::Message(Message::Text("Hello".into()))]);
//! ```

use crate::close::{parse_close_payload, CloseCode};
use crate::deflate::Inflater;
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, OpCode};
use crate::mask::{apply_mask, extend_masked};
use crate::message::{Assembler, Message, MessageKind};
use crate::role::Role;

/// The longest frame header: 2 bytes, an 8-byte length and a 4-byte mask.
const MAX_HEADER: usize = 14;

/// The size limits a decoder enforces (§10.4); both fail with 1009.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Cap on one frame's payload.
    pub max_frame_size: usize,
    /// Cap on one message, across its fragments.
    pub max_message_size: usize,
}

impl Limits {
    /// 16 MiB frames and messages.
    pub const DEFAULT: Self = Self {
        max_frame_size: 16 << 20,
        max_message_size: 16 << 20,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What [`FrameDecoder::decode`] found next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramePiece<'a> {
    /// A frame header, already checked for the receiving role and the size
    /// limit. Its payload follows in [`FramePiece::Payload`] pieces.
    Header(FrameHeader),
    /// Payload bytes of the current frame as they arrived: still masked, so
    /// the caller unmasks them wherever it copies them (with the header's key,
    /// starting `offset` bytes into the frame).
    Payload {
        /// The bytes, borrowed from the input.
        bytes: &'a [u8],
        /// Where they start in the frame's payload.
        offset: u64,
        /// Whether they end the frame. A frame always ends with such a piece,
        /// which is empty for an empty frame.
        end: bool,
    },
}

/// The frame being read: its header and how much payload has been reported.
#[derive(Debug, Clone, Copy)]
struct InFrame {
    header: FrameHeader,
    read: u64,
}

/// Splits a byte stream into frame headers and payload pieces (§5.2).
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    receiver: Role,
    max_frame_size: usize,
    /// A header that arrived in pieces.
    head: Vec<u8>,
    frame: Option<InFrame>,
    failed: Option<ProtocolError>,
    /// RSV1 may mark the first frame of a data message (RFC 7692 §6).
    rsv1: bool,
}

impl FrameDecoder {
    /// A decoder for what `receiver` receives: a server expects masked frames,
    /// a client unmasked ones (§5.1).
    pub fn new(receiver: Role, max_frame_size: usize) -> Self {
        Self {
            receiver,
            max_frame_size,
            head: Vec::new(),
            frame: None,
            failed: None,
            rsv1: false,
        }
    }

    /// Lets RSV1 mark a compressed message's first frame, once
    /// permessage-deflate is negotiated (RFC 7692 §6). It stays an error on
    /// continuation and control frames (§6.1).
    pub fn allow_rsv1(&mut self) {
        self.rsv1 = true;
    }

    /// Decodes the next piece from the front of `input` and advances it past
    /// what was used. `None` means `input` is used up (a partial header is
    /// kept). After an error the stream cannot be resynchronised (§7.1.7):
    /// every later call returns the same error.
    pub fn decode<'a>(
        &mut self,
        input: &mut &'a [u8],
    ) -> Result<Option<FramePiece<'a>>, ProtocolError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if let Some(frame) = &mut self.frame {
            let want = frame.header.payload_len - frame.read;
            if want > 0 && input.is_empty() {
                return Ok(None);
            }
            let take = input.len().min(usize::try_from(want).unwrap_or(usize::MAX));
            let (bytes, rest) = input.split_at(take);
            *input = rest;
            let offset = frame.read;
            frame.read += take as u64;
            let end = frame.read == frame.header.payload_len;
            if end {
                self.frame = None;
            }
            return Ok(Some(FramePiece::Payload { bytes, offset, end }));
        }
        match self.header(input) {
            Ok(Some(header)) => {
                self.frame = Some(InFrame { header, read: 0 });
                Ok(Some(FramePiece::Header(header)))
            }
            Ok(None) => Ok(None),
            Err(error) => {
                self.failed = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Whether a frame's payload is being read.
    pub fn in_frame(&self) -> bool {
        self.frame.is_some()
    }

    /// Whether it holds nothing the next bytes depend on: no part of a
    /// header or a frame, and no error. A new decoder for the same receiver
    /// and limits would then decode what follows the same way.
    pub fn is_between_frames(&self) -> bool {
        self.head.is_empty() && self.frame.is_none() && self.failed.is_none()
    }

    /// Reads a header, from `input` alone or after bytes kept from before.
    fn header(&mut self, input: &mut &[u8]) -> Result<Option<FrameHeader>, ProtocolError> {
        let found = if self.head.is_empty() {
            match FrameHeader::decode(input)? {
                Some((header, len)) => {
                    *input = &input[len..];
                    Some(header)
                }
                None => {
                    self.head.extend_from_slice(input);
                    *input = &[];
                    None
                }
            }
        } else {
            let kept = self.head.len();
            let add = input.len().min(MAX_HEADER - kept);
            self.head.extend_from_slice(&input[..add]);
            match FrameHeader::decode(&self.head)? {
                Some((header, len)) => {
                    *input = &input[len - kept..];
                    self.head.clear();
                    Some(header)
                }
                None => {
                    *input = &input[add..];
                    None
                }
            }
        };
        let Some(header) = found else {
            return Ok(None);
        };
        let mut checked = header;
        if self.rsv1
            && header.rsv == 0b100
            && matches!(header.opcode, OpCode::Text | OpCode::Binary)
        {
            checked.rsv = 0;
        }
        checked.validate(self.receiver)?;
        if header.payload_len > self.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooBig {
                size: header.payload_len,
                limit: self.max_frame_size,
            });
        }
        Ok(Some(header))
    }
}

/// A message or control frame from a [`MessageDecoder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A complete data message (§5.6).
    Message(Message),
    /// A ping and its payload (§5.5.2).
    Ping(Vec<u8>),
    /// A pong and its payload (§5.5.3).
    Pong(Vec<u8>),
    /// A close frame (§5.5.1): its code ([`CloseCode::NoStatus`] when it had
    /// none) and reason. Nothing follows it.
    Close {
        /// The status code.
        code: CloseCode,
        /// The reason, valid UTF-8.
        reason: String,
    },
}

/// Decodes a byte stream into messages and control frames (§5.4–§5.6).
#[derive(Debug)]
pub struct MessageDecoder {
    frames: FrameDecoder,
    header: Option<FrameHeader>,
    /// The payload of a control frame that arrived in pieces (≤ 125 bytes).
    control: Vec<u8>,
    assembler: Assembler,
    /// With permessage-deflate: the inflater, and whether the message in
    /// progress is compressed.
    inflater: Option<Inflater>,
    compressed: bool,
    /// Unmasked compressed bytes on their way to the inflater.
    scratch: Vec<u8>,
    failed: Option<ProtocolError>,
    /// A close frame was decoded: nothing after it is read (§5.5.1).
    closed: bool,
}

impl MessageDecoder {
    /// A decoder for what `receiver` receives, within `limits`.
    pub fn new(receiver: Role, limits: Limits) -> Self {
        Self {
            frames: FrameDecoder::new(receiver, limits.max_frame_size),
            header: None,
            control: Vec::new(),
            assembler: Assembler::new(limits.max_message_size),
            inflater: None,
            compressed: false,
            scratch: Vec::new(),
            failed: None,
            closed: false,
        }
    }

    /// Inflates messages whose first frame has RSV1 set (RFC 7692 §6.2), once
    /// permessage-deflate is negotiated. `keep_context`: the peer may refer
    /// back to earlier messages (no `*_no_context_takeover` for it), so the
    /// window is kept between them. Needs the `deflate` feature.
    #[cfg(feature = "deflate")]
    pub fn enable_deflate(&mut self, keep_context: bool) {
        self.frames.allow_rsv1();
        self.inflater = Some(Inflater::new(keep_context));
    }

    /// Decodes from the front of `input` until something is complete, and
    /// advances `input` past what was used. `None` means `input` is used up.
    /// After an error (or a close frame) every later call returns the same
    /// error (or `None`): nothing after them belongs to the stream.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Decoded>, ProtocolError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.closed {
            return Ok(None);
        }
        match self.next(input) {
            Ok(decoded) => Ok(decoded),
            Err(error) => {
                self.failed = Some(error.clone());
                self.control = Vec::new();
                Err(error)
            }
        }
    }

    fn next(&mut self, input: &mut &[u8]) -> Result<Option<Decoded>, ProtocolError> {
        loop {
            // Used up between frames (the call after every read's last
            // message): nothing can come of it. (Inside a frame, a payload
            // of length 0 still ends it.)
            if input.is_empty() && !self.frames.in_frame() {
                return Ok(None);
            }
            if let Some(message) = self.whole_message(input) {
                return message.map(|m| Some(Decoded::Message(m)));
            }
            match self.frames.decode(input)? {
                None => return Ok(None),
                Some(FramePiece::Header(header)) => {
                    if matches!(header.opcode, OpCode::Text | OpCode::Binary) {
                        self.compressed = header.rsv & 0b100 != 0;
                    }
                    if !header.opcode.is_control() {
                        self.assembler.begin_frame(&header, self.compressed)?;
                    }
                    self.header = Some(header);
                }
                Some(FramePiece::Payload { bytes, offset, end }) => {
                    let Some(header) = self.header else {
                        continue;
                    };
                    if header.opcode.is_control() {
                        self.control.extend_from_slice(bytes);
                    } else if self.compressed {
                        self.inflate(bytes, header.mask, offset, header.fin && end)?;
                    } else {
                        let whole = header.fin && offset == 0 && end;
                        self.assembler.extend(bytes, header.mask, offset, whole)?;
                    }
                    if end {
                        self.header = None;
                        if let Some(decoded) = self.end_frame(&header)? {
                            return Ok(Some(decoded));
                        }
                    }
                }
            }
        }
    }

    /// The common case in one step: a whole uncompressed message in one
    /// valid frame (§5.4: FIN set, Text or Binary), all of it in `input`,
    /// between messages. What the frame decoder, `begin_frame`, `extend`
    /// and `finish` would make of it, without the pieces in between; the
    /// same result, error included (invalid UTF-8). Anything else (a part
    /// of a frame, a fragment, a control frame, compression, a header that
    /// fails a check or a limit): `None`, and `input` is untouched for the
    /// piece by piece path, which reports what is wrong.
    fn whole_message(&mut self, input: &mut &[u8]) -> Option<Result<Message, ProtocolError>> {
        if !self.frames.is_between_frames() || self.assembler.in_message() {
            return None;
        }
        let Ok(Some((header, len))) = FrameHeader::decode(input) else {
            return None;
        };
        let kind = match header.opcode {
            OpCode::Text => MessageKind::Text,
            OpCode::Binary => MessageKind::Binary,
            _ => return None,
        };
        let payload = input
            .get(len..)?
            .get(..usize::try_from(header.payload_len).ok()?)?;
        let fits =
            payload.len() <= self.frames.max_frame_size && payload.len() <= self.assembler.limit();
        if !header.fin || !fits || header.validate(self.frames.receiver).is_err() {
            return None;
        }
        *input = &input[len + payload.len()..];
        Some(self.assembler.whole(kind, payload, header.mask))
    }

    /// Decodes the run of whole short messages at the front of `input`, each
    /// in one frame of at most 125 bytes (FIN set, no RSV bit, Text or
    /// Binary, masked as the receiver expects, within the limits), hands
    /// each to `each` and advances `input` past them. It stops at anything
    /// else, untouched, for [`MessageDecoder::decode`]: a part of a frame, a
    /// longer or fragmented one, a control frame, a compressed one, a header
    /// that fails a check. What `decode` would return for them, message by
    /// message (a read of pipelined chat lines or echoes, without the frame
    /// layer's steps and the checks of state between them). Invalid UTF-8
    /// fails as it does there: the frame is used up, and `decode` returns
    /// the same error from then on (this returns `Ok` and takes nothing
    /// once the decoder has failed or read a close frame).
    pub(crate) fn decode_short_messages(
        &mut self,
        input: &mut &[u8],
        mut each: impl FnMut(Message),
    ) -> Result<(), ProtocolError> {
        if self.failed.is_some()
            || self.closed
            || !self.frames.is_between_frames()
            || self.assembler.in_message()
        {
            return Ok(());
        }
        // §5.1: a server reads masked frames, with the key after the two
        // header bytes (§5.2); a client unmasked ones.
        let masked = self.frames.receiver == Role::Server;
        let head = if masked { 6 } else { 2 };
        let limit = self
            .frames
            .max_frame_size
            .min(self.assembler.limit())
            .min(125);
        let mut rest = *input;
        while let [first, second, ..] = *rest {
            let kind = match first {
                0x81 => MessageKind::Text,
                0x82 => MessageKind::Binary,
                _ => break,
            };
            let len = usize::from(second & 0x7F);
            if (second & 0x80 != 0) != masked || len > limit {
                break;
            }
            let Some((header, payload)) = rest.get(..head + len).map(|f| f.split_at(head)) else {
                break;
            };
            let mask = match *header {
                [_, _, a, b, c, d] => Some([a, b, c, d]),
                _ => None,
            };
            rest = &rest[head + len..];
            match self.assembler.whole(kind, payload, mask) {
                Ok(message) => each(message),
                Err(error) => {
                    *input = rest;
                    self.failed = Some(error.clone());
                    self.control = Vec::new();
                    return Err(error);
                }
            }
        }
        *input = rest;
        Ok(())
    }

    /// Unmasks compressed bytes and inflates them into the message, which
    /// refuses them past its limit before inflating more (a zip bomb stops
    /// at `max_message_size`).
    fn inflate(
        &mut self,
        bytes: &[u8],
        mask: Option<[u8; 4]>,
        offset: u64,
        last: bool,
    ) -> Result<(), ProtocolError> {
        let Some(inflater) = &mut self.inflater else {
            return Err(ProtocolError::ReservedBits);
        };
        self.scratch.clear();
        extend_masked(&mut self.scratch, bytes, mask, (offset % 4) as usize);
        let assembler = &mut self.assembler;
        let mut sink = |plain: &[u8]| assembler.extend(plain, None, 0, false);
        inflater.inflate(&self.scratch, &mut sink)?;
        if last {
            inflater.finish(&mut sink)?;
        }
        if self.scratch.capacity() > 64 * 1024 {
            self.scratch = Vec::new();
        }
        Ok(())
    }

    fn end_frame(&mut self, header: &FrameHeader) -> Result<Option<Decoded>, ProtocolError> {
        if !header.opcode.is_control() {
            return match header.fin {
                true => Ok(Some(Decoded::Message(self.assembler.finish()?))),
                false => Ok(None),
            };
        }
        let mut payload = std::mem::take(&mut self.control);
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key, 0);
        }
        Ok(Some(match header.opcode {
            OpCode::Ping => Decoded::Ping(payload),
            OpCode::Pong => Decoded::Pong(payload),
            _ => {
                let (code, reason) = parse_close_payload(&payload)?;
                self.closed = true;
                Decoded::Close { code, reason }
            }
        }))
    }

    /// Gives back a decoded message's buffer to hold a later one, so steady
    /// traffic allocates nothing per message (buffers up to
    /// [`MessageDecoder::set_max_spare_buffer`]). Optional.
    pub fn recycle(&mut self, message: Message) {
        self.assembler.recycle(message.into_bytes());
    }

    /// The largest capacity, in bytes, of a buffer that
    /// [`MessageDecoder::recycle`] keeps (by default, any that the spares
    /// have room for); spares kept already above it are freed. See
    /// [`crate::Config::max_spare_buffer`].
    pub fn set_max_spare_buffer(&mut self, size: usize) {
        self.assembler.set_max_spare(size);
    }

    /// Frees the inflate state between messages when the peer compresses
    /// each message on its own (RFC 7692 `*_no_context_takeover`): a
    /// connection that has gone quiet then holds nothing for it. Returns
    /// whether there was state to free.
    pub fn release_inflate_state(&mut self) -> bool {
        match &mut self.inflater {
            Some(inflater) if !self.assembler.in_message() => inflater.release(),
            _ => false,
        }
    }

    /// Frees what only traffic needs, for a connection that has gone quiet:
    /// the inflate state (as [`MessageDecoder::release_inflate_state`]) and
    /// the buffers kept to assemble later messages (and unmask compressed
    /// bytes) in. A message in progress and a partial frame are kept. The
    /// next message allocates again.
    pub fn release_buffers(&mut self) {
        self.release_inflate_state();
        self.assembler.release();
        self.scratch = Vec::new();
        if self.control.is_empty() {
            self.control = Vec::new();
        }
    }

    /// Heap bytes held for assembling messages.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.assembler.capacity() + self.control.capacity()
    }

    /// Whether a data message has begun and not ended (§5.4).
    pub fn in_message(&self) -> bool {
        self.assembler.in_message()
    }

    /// Whether it holds nothing the next bytes depend on, and no memory: no
    /// part of a frame or a message, no error or close, no inflate state (a
    /// window kept between messages) and no spare buffers. A new decoder
    /// with the same receiver and limits (and permessage-deflate enabled
    /// the same way) would then decode what follows the same way (see
    /// [`Connection`](crate::Connection), which keeps none while idle).
    pub fn is_at_rest(&self) -> bool {
        self.frames.is_between_frames()
            && self.header.is_none()
            && self.control.capacity() == 0
            && self.assembler.capacity() == 0
            && !self.assembler.in_message()
            && self.inflater.as_ref().is_none_or(|i| i.held() == 0)
            && self.scratch.capacity() == 0
            && self.failed.is_none()
            && !self.closed
    }

    /// Bytes held: a partial header or control frame and the message being
    /// assembled. Bounded by the limits.
    pub fn buffered(&self) -> usize {
        let inflating = self.inflater.as_ref().map_or(0, Inflater::held);
        self.frames.head.len() + self.control.len() + self.assembler.buffered() + inflating
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::frame::encode_frame;

    fn decode_all(
        decoder: &mut MessageDecoder,
        mut input: &[u8],
    ) -> Result<Vec<Decoded>, ProtocolError> {
        let mut out = Vec::new();
        while let Some(decoded) = decoder.decode(&mut input)? {
            out.push(decoded);
        }
        assert!(input.is_empty());
        Ok(out)
    }

    /// RFC 6455 §5.7, the examples as a client receives them.
    #[test]
    fn rfc_5_7_examples() {
        let unmasked_hello = b"\x81\x05\x48\x65\x6c\x6c\x6f";
        let fragmented = b"\x01\x03\x48\x65\x6c\x80\x02\x6c\x6f";
        let ping = b"\x89\x05\x48\x65\x6c\x6c\x6f";
        let mut client = MessageDecoder::new(Role::Client, Limits::default());
        assert_eq!(
            decode_all(&mut client, unmasked_hello),
            Ok(vec![Decoded::Message(Message::Text("Hello".into()))])
        );
        assert_eq!(
            decode_all(&mut client, fragmented),
            Ok(vec![Decoded::Message(Message::Text("Hello".into()))])
        );
        assert_eq!(
            decode_all(&mut client, ping),
            Ok(vec![Decoded::Ping(b"Hello".to_vec())])
        );
        // "A single-frame masked text message" as a server receives it.
        let masked = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
        let mut server = MessageDecoder::new(Role::Server, Limits::default());
        assert_eq!(
            decode_all(&mut server, masked),
            Ok(vec![Decoded::Message(Message::Text("Hello".into()))])
        );
    }

    #[test]
    fn every_split_gives_the_same_pieces() {
        let mut wire = Vec::new();
        encode_frame(
            &mut wire,
            false,
            OpCode::Binary,
            Some([1, 2, 3, 4]),
            &[7; 300],
        );
        encode_frame(&mut wire, true, OpCode::Ping, Some([5, 6, 7, 8]), b"p");
        encode_frame(
            &mut wire,
            true,
            OpCode::Continuation,
            Some([9, 9, 9, 9]),
            b"",
        );
        encode_frame(&mut wire, true, OpCode::Close, Some([0; 4]), b"\x03\xe8bye");
        let whole = decode_all(
            &mut MessageDecoder::new(Role::Server, Limits::default()),
            &wire,
        )
        .expect("valid");
        assert_eq!(
            whole,
            [
                Decoded::Ping(b"p".to_vec()),
                Decoded::Message(Message::Binary(vec![7; 300])),
                Decoded::Close {
                    code: CloseCode::Normal,
                    reason: "bye".into()
                },
            ]
        );
        for split in 1..wire.len() {
            let mut decoder = MessageDecoder::new(Role::Server, Limits::default());
            let mut got = decode_all(&mut decoder, &wire[..split]).expect("valid");
            got.extend(decode_all(&mut decoder, &wire[split..]).expect("valid"));
            assert_eq!(got, whole, "split at {split}");
        }
    }

    #[test]
    fn frame_pieces_borrow_the_input_and_end_every_frame() {
        let mut wire = Vec::new();
        encode_frame(&mut wire, true, OpCode::Text, None, b"abc");
        encode_frame(&mut wire, true, OpCode::Pong, None, b"");
        let mut decoder = FrameDecoder::new(Role::Client, 1024);
        let (mut first, mut second) = wire.split_at(4);
        assert_eq!(
            decoder.decode(&mut first),
            Ok(Some(FramePiece::Header(FrameHeader::new(OpCode::Text, 3))))
        );
        assert_eq!(
            decoder.decode(&mut first),
            Ok(Some(FramePiece::Payload {
                bytes: b"ab",
                offset: 0,
                end: false
            }))
        );
        assert_eq!(decoder.decode(&mut first), Ok(None));
        assert_eq!(
            decoder.decode(&mut second),
            Ok(Some(FramePiece::Payload {
                bytes: b"c",
                offset: 2,
                end: true
            }))
        );
        assert_eq!(
            decoder.decode(&mut second),
            Ok(Some(FramePiece::Header(FrameHeader::new(OpCode::Pong, 0))))
        );
        assert_eq!(
            decoder.decode(&mut second),
            Ok(Some(FramePiece::Payload {
                bytes: b"",
                offset: 0,
                end: true
            }))
        );
        assert_eq!(decoder.decode(&mut second), Ok(None));
    }

    #[test]
    fn errors_are_the_protocols_and_stick() {
        let limits = Limits {
            max_frame_size: 10,
            max_message_size: 15,
        };
        let cases: [(&[u8], ProtocolError); 5] = [
            (b"\x83\x00", ProtocolError::ReservedOpcode(3)),
            (b"\x81\x00", ProtocolError::UnmaskedFrame),
            (
                b"\x82\x8b\0\0\0\0",
                ProtocolError::FrameTooBig {
                    size: 11,
                    limit: 10,
                },
            ),
            (
                b"\x02\x8a\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x80\x86\0\0\0\0",
                ProtocolError::MessageTooBig {
                    size: 16,
                    limit: 15,
                },
            ),
            (b"\x81\x81\0\0\0\0\xff", ProtocolError::InvalidUtf8),
        ];
        for (wire, error) in cases {
            let mut decoder = MessageDecoder::new(Role::Server, limits);
            assert_eq!(decode_all(&mut decoder, wire), Err(error.clone()));
            assert_eq!(decoder.decode(&mut &b"\x81\x80\0\0\0\0"[..]), Err(error));
        }
    }

    /// Everything a decoder for `receiver` gives for `wire` fed in pieces
    /// cut at `cuts` (positions, in any order), up to and including its
    /// first error; with `short_runs`, as a
    /// [`Connection`](crate::Connection) decodes: each run of whole short
    /// messages first ([`MessageDecoder::decode_short_messages`]), then
    /// one step of [`MessageDecoder::decode`].
    fn decode_as(
        receiver: Role,
        limits: Limits,
        wire: &[u8],
        cuts: &[usize],
        short_runs: bool,
    ) -> (Vec<Decoded>, Option<ProtocolError>) {
        let (out, failure) = decode_to_failure(receiver, limits, wire, cuts, short_runs);
        (out, failure.map(|f| f.error))
    }

    /// Where and how a decoder failed: its error, how much of the wire
    /// it had used, and what it said when asked again.
    #[derive(Debug, PartialEq)]
    struct Failure {
        error: ProtocolError,
        used: usize,
        again: Result<Option<Decoded>, ProtocolError>,
    }

    /// [`decode_as`], with where the decoder stopped at its error and what
    /// it says after it (a short run after a failure must take nothing).
    fn decode_to_failure(
        receiver: Role,
        limits: Limits,
        wire: &[u8],
        cuts: &[usize],
        short_runs: bool,
    ) -> (Vec<Decoded>, Option<Failure>) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        cuts.push(wire.len());
        cuts.sort_unstable();
        let mut decoder = MessageDecoder::new(receiver, limits);
        let (mut out, mut start) = (Vec::new(), 0);
        for end in cuts {
            let mut input = &wire[start..end];
            start = end;
            loop {
                let mut failed = None;
                if short_runs {
                    let run = decoder.decode_short_messages(&mut input, |message| {
                        out.push(Decoded::Message(message));
                    });
                    failed = run.err();
                }
                if failed.is_none() {
                    match decoder.decode(&mut input) {
                        Ok(Some(decoded)) => out.push(decoded),
                        Ok(None) => break,
                        Err(e) => failed = Some(e),
                    }
                }
                if let Some(error) = failed {
                    let used = end - input.len();
                    let before = input;
                    if short_runs {
                        let taken = decoder.decode_short_messages(&mut input, |_| {});
                        assert_eq!((taken, input), (Ok(()), before), "nothing after a failure");
                    }
                    let again = decoder.decode(&mut input);
                    return (out, Some(Failure { error, used, again }));
                }
            }
        }
        (out, None)
    }

    /// The frames of [`any_frame`] on the wire, for `receiver`: those
    /// marked `masked` as it expects (masked for a server, not for a
    /// client), the others not.
    fn encode_frames(frames: &[(u8, bool, u8, bool, Vec<u8>)], receiver: Role) -> Vec<u8> {
        let mut wire = Vec::new();
        for (opcode, fin, rsv, masked, payload) in frames {
            let mut header = FrameHeader::new(OpCode::Text, payload.len() as u64);
            header.fin = *fin;
            header.rsv = *rsv;
            let with_key = *masked == (receiver == Role::Server);
            header.mask = with_key.then_some([0x37, 0xfa, 0x21, 0x3d]);
            header.encode(&mut wire);
            // The opcode by hand: reserved ones too.
            let first = wire.len() - header.encoded_len();
            wire[first] = (wire[first] & 0xF0) | opcode;
            let start = wire.len();
            wire.extend_from_slice(payload);
            if let Some(key) = header.mask {
                apply_mask(&mut wire[start..], key, 0);
            }
        }
        wire
    }

    /// A frame as `(opcode, FIN, RSV, masked, payload)`: mostly data
    /// frames, some control frames and reserved opcodes, some RSV bits and
    /// unmasked frames; payloads of text or of any bytes.
    fn any_frame() -> impl Strategy<Value = (u8, bool, u8, bool, Vec<u8>)> {
        (
            prop_oneof![
                6 => prop::sample::select(vec![0u8, 1, 2]),
                2 => prop::sample::select(vec![8u8, 9, 10]),
                1 => 0u8..16,
            ],
            prop::bool::weighted(0.8),
            prop_oneof![8 => Just(0u8), 1 => 0u8..8],
            prop::bool::weighted(0.95),
            prop_oneof![
                any::<String>().prop_map(String::into_bytes),
                prop::collection::vec(any::<u8>(), 0..300),
            ],
        )
    }

    proptest! {
        /// A whole message in one frame takes a shorter path than one
        /// that comes in pieces ([`MessageDecoder::whole_message`]): both
        /// give the same messages, control frames and errors, for valid
        /// and invalid frames alike (any opcode, FIN, RSV and mask, text
        /// that is not UTF-8, frames and messages over the limits).
        #[test]
        fn whole_frames_decode_as_frames_in_pieces_do(
            frames in prop::collection::vec(any_frame(), 1..12),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let wire = encode_frames(&frames, Role::Server);
            let limits = Limits { max_frame_size: 200, max_message_size: 250 };
            let whole = decode_as(Role::Server, limits, &wire, &[], false);
            let bytes: Vec<usize> = (0..wire.len()).collect();
            prop_assert_eq!(&whole, &decode_as(Role::Server, limits, &wire, &bytes, false));
            prop_assert_eq!(&whole, &decode_as(Role::Server, limits, &wire, &cuts, false));
        }

        /// Runs of whole short messages take a shorter path still
        /// ([`MessageDecoder::decode_short_messages`], as a connection
        /// decodes): the same messages, control frames and errors as
        /// [`MessageDecoder::decode`] alone, for either receiver, under any
        /// limits (some below 125 bytes), in any split.
        #[test]
        fn short_runs_decode_as_frames_one_by_one_do(
            frames in prop::collection::vec(any_frame(), 1..24),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
            client in prop::bool::weighted(0.2),
            max_frame_size in prop_oneof![3 => Just(200usize), 1 => 0usize..200],
            max_message_size in prop_oneof![3 => Just(250usize), 1 => 0usize..250],
        ) {
            let receiver = if client { Role::Client } else { Role::Server };
            let wire = encode_frames(&frames, receiver);
            let limits = Limits { max_frame_size, max_message_size };
            let plain = decode_as(receiver, limits, &wire, &[], false);
            prop_assert_eq!(&plain, &decode_as(receiver, limits, &wire, &[], true));
            prop_assert_eq!(&plain, &decode_as(receiver, limits, &wire, &cuts, true));
            // In the same pieces, a failure leaves the input at the same
            // place, and sticks.
            prop_assert_eq!(
                decode_to_failure(receiver, limits, &wire, &cuts, false),
                decode_to_failure(receiver, limits, &wire, &cuts, true)
            );
        }
    }

    /// §5.7's masked "Hello" three times over, as a server reads them: all
    /// three in one run, with the input left at what follows (a ping, for
    /// `decode`); an unmasked one is left for `decode` to refuse.
    #[test]
    fn a_run_of_short_messages_stops_at_anything_else() {
        let hello = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
        let mut wire = [&hello[..], hello, hello, b"\x89\x80\0\0\0\0"].concat();
        let mut decoder = MessageDecoder::new(Role::Server, Limits::default());
        let mut messages = Vec::new();
        let mut input = &wire[..];
        decoder
            .decode_short_messages(&mut input, |m| messages.push(m))
            .expect("valid");
        assert_eq!(messages, vec![Message::Text("Hello".into()); 3]);
        assert_eq!(input, b"\x89\x80\0\0\0\0");
        assert_eq!(
            decoder.decode(&mut input),
            Ok(Some(Decoded::Ping(Vec::new())))
        );

        wire = b"\x81\x05Hello".to_vec();
        let mut input = &wire[..];
        decoder
            .decode_short_messages(&mut input, |m| messages.push(m))
            .expect("stops");
        assert_eq!(input.len(), wire.len());
        assert_eq!(
            decoder.decode(&mut input),
            Err(ProtocolError::UnmaskedFrame)
        );
    }

    /// What a run of short messages must leave to `decode`, each case
    /// after a start that `decode` takes: the continuation a fragment
    /// waits for, what follows a close, a header begun in an earlier read,
    /// and a compressed frame (RSV1, with permessage-deflate on).
    #[test]
    fn a_run_of_short_messages_waits_for_the_state_before_it() {
        let hello = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
        let mut noted = Vec::new();
        let mut run = |decoder: &mut MessageDecoder, input: &mut &[u8]| {
            let before = input.len();
            decoder
                .decode_short_messages(input, |m| noted.push(m))
                .expect("stops");
            before - input.len()
        };
        // A fresh decoder after `start`, what `decode` made of it, and what
        // `decode` makes of "Hello" once the run took none of it.
        let mut after = |start: &[u8], case: &str| {
            let mut decoder = MessageDecoder::new(Role::Server, Limits::default());
            let mut input = start;
            let first = decoder.decode(&mut input);
            let mut input = &hello[..];
            assert_eq!(run(&mut decoder, &mut input), 0, "{case}");
            (first, decoder.decode(&mut input))
        };

        // A fragment began: a whole message next is a protocol error (§5.4).
        assert_eq!(
            after(b"\x01\x81\0\0\0\0a", "in a message"),
            (Ok(None), Err(ProtocolError::ExpectedContinuation))
        );

        // After a close frame, nothing is read (§5.5.1).
        let (close, next) = after(b"\x88\x80\0\0\0\0", "after a close");
        assert!(matches!(close, Ok(Some(Decoded::Close { .. }))));
        assert_eq!(next, Ok(None));

        // A header's first byte kept from the last read: what comes next
        // is the rest of it, not a frame, even when it looks like one (the
        // masked "Hello" is then a 1-byte binary frame, and a bad one).
        assert_eq!(
            after(b"\x82", "a header in pieces"),
            (
                Ok(None),
                Ok(Some(Decoded::Message(Message::Binary(vec![0x3d ^ 0x85]))))
            )
        );

        // The middle of a long frame's payload.
        let mut decoder = MessageDecoder::new(Role::Server, Limits::default());
        let long = [&b"\x82\xfe\x01\x00\0\0\0\0"[..], &hello[..], &[0; 200]].concat();
        let mut input = &long[..8];
        assert_eq!(decoder.decode(&mut input), Ok(None));
        let mut input = &long[8..];
        assert_eq!(run(&mut decoder, &mut input), 0, "inside a frame");
        assert_eq!(decoder.decode(&mut input), Ok(None));
        assert_eq!(decoder.buffered(), 211, "of 256");

        #[cfg(feature = "deflate")]
        {
            // RSV1: a compressed message is the inflater's.
            let mut decoder = MessageDecoder::new(Role::Server, Limits::default());
            decoder.enable_deflate(false);
            let mut input = &b"\xc1\x80\0\0\0\0"[..];
            assert_eq!(run(&mut decoder, &mut input), 0, "compressed");
        }
        assert!(noted.is_empty());
    }

    /// Invalid UTF-8 in a run fails as `decode` fails: the frame is used,
    /// the error sticks, and the run takes nothing more.
    #[test]
    fn invalid_text_in_a_run_fails_and_stays_failed() {
        let wire = b"\x82\x81\0\0\0\0a\x81\x81\0\0\0\0\xff\x82\x81\0\0\0\0b";
        let mut decoder = MessageDecoder::new(Role::Server, Limits::default());
        let mut messages = Vec::new();
        let mut input = &wire[..];
        let run = decoder.decode_short_messages(&mut input, |m| messages.push(m));
        assert_eq!(run, Err(ProtocolError::InvalidUtf8));
        assert_eq!(messages, [Message::Binary(b"a".to_vec())]);
        assert_eq!(input, b"\x82\x81\0\0\0\0b", "the bad frame is used up");
        let run = decoder.decode_short_messages(&mut input, |m| messages.push(m));
        assert_eq!((run, input.len()), (Ok(()), 7), "nothing more is taken");
        assert_eq!(decoder.decode(&mut input), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn a_partial_header_is_all_that_is_kept() {
        let mut decoder = MessageDecoder::new(Role::Server, Limits::default());
        let mut input = &b"\x82\xff\0\0\0\0"[..];
        assert_eq!(decoder.decode(&mut input), Ok(None));
        assert_eq!(decoder.buffered(), 6);
        assert!(!decoder.in_message());
    }
}
