//! Messages (RFC 6455 §5.4, §5.6): assembling fragments under size limits, and
//! messages encoded once for many connections.

use std::sync::Arc;

#[cfg(feature = "deflate")]
use crate::deflate;
use crate::error::ProtocolError;
#[cfg(feature = "deflate")]
use crate::frame::encode_frame_header;
use crate::frame::{encode_frame, FrameHeader, OpCode};
use crate::mask::extend_masked;
use crate::utf8::Utf8Validator;

/// A complete data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message; always valid UTF-8.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl Message {
    /// The payload, as an owned buffer.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Self::Text(text) => text.into_bytes(),
            Self::Binary(bytes) => bytes,
        }
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(bytes) => bytes,
        }
    }

    /// The opcode of the message's first frame.
    pub fn opcode(&self) -> OpCode {
        match self {
            Self::Text(_) => OpCode::Text,
            Self::Binary(_) => OpCode::Binary,
        }
    }
}

/// The kind of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Arbitrary bytes.
    Binary,
}

impl MessageKind {
    /// The opcode of the message's first frame.
    pub fn opcode(self) -> OpCode {
        match self {
            Self::Text => OpCode::Text,
            Self::Binary => OpCode::Binary,
        }
    }
}

/// A message encoded once as an unmasked (server-to-client) frame, whose bytes
/// any number of connections can share; optionally also compressed once
/// (RFC 7692), for the connections that negotiated permessage-deflate.
///
/// Cloning is a reference-count increment; this is what keeps broadcast cheap.
/// It is one pointer: a message queued for many recipients costs each of
/// them 8 bytes while it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedMessage(Arc<Frames>);

/// A prepared message's frames, each shared with the send queues it is in.
#[derive(Debug, PartialEq, Eq)]
struct Frames {
    frame: Arc<[u8]>,
    deflated: Option<Arc<[u8]>>,
}

impl PreparedMessage {
    /// Encodes a text message.
    pub fn text(text: &str) -> Self {
        Self::new(OpCode::Text, text.as_bytes())
    }

    /// Encodes a binary message.
    pub fn binary(bytes: &[u8]) -> Self {
        Self::new(OpCode::Binary, bytes)
    }

    /// Encodes `message`.
    pub fn from_message(message: &Message) -> Self {
        Self::new(message.opcode(), message.as_bytes())
    }

    fn new(opcode: OpCode, payload: &[u8]) -> Self {
        let mut frame = Vec::new();
        encode_frame(&mut frame, true, opcode, None, payload);
        Self(Arc::new(Frames {
            frame: frame.into(),
            deflated: None,
        }))
    }

    /// Also compresses the message, once, for every recipient that negotiated
    /// permessage-deflate with a full window (each message on its own, as the
    /// server always does: §7.1.1.1). Kept only if it is smaller. Needs the
    /// `deflate` feature.
    #[cfg(feature = "deflate")]
    pub fn with_deflate(self) -> Self {
        let plain = self.frame();
        let (header, len) = match FrameHeader::decode(plain) {
            Ok(Some(found)) => found,
            _ => return self,
        };
        let mut compressed = Vec::new();
        deflate::compress(&plain[len..], 15, &mut compressed);
        let header = FrameHeader {
            rsv: 0b100,
            payload_len: compressed.len() as u64,
            ..header
        };
        let mut frame = Vec::new();
        encode_frame_header(&mut frame, header, &compressed);
        if frame.len() >= plain.len() {
            return self;
        }
        Self(Arc::new(Frames {
            frame: Arc::clone(&self.0.frame),
            deflated: Some(frame.into()),
        }))
    }

    /// The encoded frame.
    pub fn frame(&self) -> &[u8] {
        &self.0.frame
    }

    /// The compressed frame, if [`PreparedMessage::with_deflate`] made one.
    pub fn deflated_frame(&self) -> Option<&[u8]> {
        self.0.deflated.as_deref()
    }

    /// The frame for a connection: compressed where it negotiated
    /// permessage-deflate with a full window.
    pub(crate) fn shared(&self, deflate: bool) -> Arc<[u8]> {
        match (&self.0.deflated, deflate) {
            (Some(deflated), true) => Arc::clone(deflated),
            _ => Arc::clone(&self.0.frame),
        }
    }
}

/// The most a frame header makes the assembler reserve before its payload
/// arrives.
const RESERVE_UP_FRONT: u64 = 256 * 1024;

/// The most bytes of recycled buffers an assembler keeps for the next
/// messages (one read may carry many), so that an idle connection holds
/// little.
pub(crate) const SPARE_BYTES: usize = 128 * 1024;

/// The most recycled buffers it keeps: enough for a read full of messages,
/// few enough that finding the best fit stays cheap.
const SPARE_BUFFERS: usize = 16;

/// A spare buffer this small is taken for any message that fits it, even
/// when a smaller one would do.
const SMALL_ENOUGH: usize = 4096;

/// Fragments any message may have, whatever its size.
const FREE_FRAGMENTS: u64 = 128;

/// Past [`FREE_FRAGMENTS`], each further fragment must be paid for by this
/// many payload bytes on average. Autobahn's 9.3.1 (4 MiB in 64-byte
/// fragments) and 1-byte fragments of short texts pass; empty continuation
/// frames forever do not.
const BYTES_PER_FRAGMENT: u64 = 32;

/// Reassembles data frames into messages, checking text as it arrives.
#[derive(Debug)]
pub(crate) struct Assembler {
    kind: Option<MessageKind>,
    /// Frames in the message in progress.
    fragments: u64,
    buf: Vec<u8>,
    /// Buffers of delivered messages, given back for the next ones.
    spare: Vec<Vec<u8>>,
    spare_bytes: usize,
    /// The largest buffer kept as a spare.
    max_spare: usize,
    utf8: Utf8Validator,
    max_message_size: usize,
}

impl Assembler {
    pub(crate) fn new(max_message_size: usize) -> Self {
        Self {
            kind: None,
            fragments: 0,
            buf: Vec::new(),
            spare: Vec::new(),
            spare_bytes: 0,
            max_spare: SPARE_BYTES,
            utf8: Utf8Validator::new(),
            max_message_size,
        }
    }

    /// Checks a data frame header against the message in progress (§5.4) and
    /// the size limit, before any of its payload is read.
    /// A compressed message's frames say nothing of its size: it is checked
    /// as it inflates ([`Assembler::extend`]).
    pub(crate) fn begin_frame(
        &mut self,
        header: &FrameHeader,
        compressed: bool,
    ) -> Result<(), ProtocolError> {
        match (header.opcode, self.kind) {
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(ProtocolError::ExpectedContinuation)
            }
            (OpCode::Text, None) => self.kind = Some(MessageKind::Text),
            (OpCode::Binary, None) => self.kind = Some(MessageKind::Binary),
            _ => {}
        }
        self.fragments += 1;
        let bytes = self.buf.len() as u64;
        if self.fragments > FREE_FRAGMENTS + bytes / BYTES_PER_FRAGMENT {
            return Err(ProtocolError::TooManyFragments {
                fragments: self.fragments,
                bytes,
            });
        }
        let size = bytes + header.payload_len;
        if !compressed && size > self.max_message_size as u64 {
            return Err(ProtocolError::MessageTooBig {
                size,
                limit: self.max_message_size,
            });
        }
        if self.buf.is_empty() {
            // One reservation for a typical message; a header alone must not
            // make us reserve its whole declared length.
            let want = header.payload_len.min(RESERVE_UP_FRONT) as usize;
            let buf = std::mem::take(&mut self.buf);
            self.buf = self.fit(buf, want);
            self.buf.reserve(want);
        }
        Ok(())
    }

    /// Appends payload bytes that start `offset` bytes into their frame,
    /// unmasking them as they are copied. Text is validated at once, so
    /// invalid UTF-8 fails the connection before the rest of the frame
    /// arrives (§8.1); except when `payload` is the whole message
    /// (`complete`), which [`Assembler::finish`] validates in one pass
    /// anyway.
    pub(crate) fn extend(
        &mut self,
        payload: &[u8],
        mask: Option<[u8; 4]>,
        offset: u64,
        complete: bool,
    ) -> Result<(), ProtocolError> {
        let start = self.buf.len();
        if start + payload.len() > self.max_message_size {
            return Err(ProtocolError::MessageTooBig {
                size: (start + payload.len()) as u64,
                limit: self.max_message_size,
            });
        }
        extend_masked(&mut self.buf, payload, mask, (offset % 4) as usize);
        let added = &self.buf[start..];
        if self.kind == Some(MessageKind::Text) && !(complete && start == 0) {
            self.utf8
                .feed(added)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(())
    }

    /// The largest message it takes.
    pub(crate) fn limit(&self) -> usize {
        self.max_message_size
    }

    /// A whole message that came in one frame, between messages: what
    /// [`Assembler::begin_frame`], [`Assembler::extend`] and
    /// [`Assembler::finish`] make of it, in one step. The caller checked
    /// the frame and the size limit.
    #[inline(always)]
    pub(crate) fn whole(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        mask: Option<[u8; 4]>,
    ) -> Result<Message, ProtocolError> {
        debug_assert!(self.kind.is_none() && self.buf.is_empty() && self.fragments == 0);
        // An empty message takes no spare (it has no bytes to hold).
        let buf = std::mem::take(&mut self.buf);
        let mut bytes = self.fit(buf, payload.len());
        extend_masked(&mut bytes, payload, mask, 0);
        message(kind, bytes)
    }

    /// Ends the message after its final frame.
    pub(crate) fn finish(&mut self) -> Result<Message, ProtocolError> {
        self.fragments = 0;
        let bytes = std::mem::take(&mut self.buf);
        let kind = self.kind.take().unwrap_or(MessageKind::Binary);
        if kind == MessageKind::Text {
            // Fragments were validated piece by piece (and cannot fail
            // here); a message that came whole is validated in `message`.
            self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        message(kind, bytes)
    }

    /// Takes back the buffer of a delivered message to assemble the next one
    /// in, so that steady traffic allocates nothing per message; one larger
    /// than `max_spare` is freed.
    #[inline]
    pub(crate) fn recycle(&mut self, mut bytes: Vec<u8>) {
        let size = bytes.capacity();
        if size > 0
            && size <= self.max_spare
            && self.spare.len() < SPARE_BUFFERS
            && self.spare_bytes + size <= SPARE_BYTES
        {
            bytes.clear();
            self.spare_bytes += size;
            self.spare.push(bytes);
        }
    }

    /// Keeps no spare larger than `size` from now on, and frees those kept.
    pub(crate) fn set_max_spare(&mut self, size: usize) {
        self.max_spare = size;
        self.spare.retain(|b| b.capacity() <= size);
        self.spare_bytes = self.spare.iter().map(Vec::capacity).sum();
    }

    /// `buf` if it holds `want` bytes; else the spare that best fits them
    /// (see [`Assembler::spare_for`]), and `buf`, if it holds memory,
    /// becomes a spare. With no spare, `buf` (which grows).
    #[inline(always)]
    fn fit(&mut self, buf: Vec<u8>, want: usize) -> Vec<u8> {
        if buf.capacity() >= want {
            return buf;
        }
        let spare = self.spare_for(want);
        if spare.capacity() == 0 {
            return buf;
        }
        if buf.capacity() > 0 {
            self.recycle(buf);
        }
        spare
    }

    /// The spare buffer that best fits `want` bytes, taken from the spares:
    /// the last one given back when it fits without wasting much (steady
    /// traffic of one size takes it every time, without a search), else
    /// the smallest one large enough, else the largest; an empty one when
    /// there is none.
    #[inline(always)]
    fn spare_for(&mut self, want: usize) -> Vec<u8> {
        match self.spare.last().map(Vec::capacity) {
            Some(size) if size >= want && (size <= SMALL_ENOUGH || size / 2 <= want) => {
                self.spare_bytes -= size;
                self.spare.pop().unwrap_or_default()
            }
            _ => self.best_spare(want),
        }
    }

    /// The search of [`Assembler::spare_for`], when the last spare does not
    /// fit.
    fn best_spare(&mut self, want: usize) -> Vec<u8> {
        let best = self
            .spare
            .iter()
            .enumerate()
            .min_by_key(|(_, b)| match b.capacity() {
                c if c >= want => (0, c),
                c => (1, usize::MAX - c),
            })
            .map(|(i, _)| i);
        let Some(i) = best else {
            return Vec::new();
        };
        let spare = self.spare.swap_remove(i);
        self.spare_bytes -= spare.capacity();
        spare
    }

    /// Frees the buffers kept for messages to come (the spares, and the
    /// last message's buffer) unless a message is in progress.
    pub(crate) fn release(&mut self) {
        if !self.in_message() {
            self.buf = Vec::new();
            self.spare = Vec::new();
            self.spare_bytes = 0;
        }
    }

    /// Heap bytes held, spares included.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity() + self.spare_bytes
    }

    /// Bytes held for the message in progress.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether a message has begun and not ended.
    pub(crate) fn in_message(&self) -> bool {
        self.kind.is_some()
    }
}

/// The message of `kind` in `bytes`: text must be valid UTF-8 (§8.1).
fn message(kind: MessageKind, bytes: Vec<u8>) -> Result<Message, ProtocolError> {
    match kind {
        MessageKind::Text => String::from_utf8(bytes)
            .map(Message::Text)
            .map_err(|_| ProtocolError::InvalidUtf8),
        MessageKind::Binary => Ok(Message::Binary(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycled_buffers_hold_the_next_message_and_stay_bounded() {
        let mut assembler = Assembler::new(1 << 20);
        let mut old = Vec::with_capacity(100);
        old.extend_from_slice(b"stale bytes");
        assembler.recycle(old);
        let header = FrameHeader::new(OpCode::Text, 2);
        assembler.begin_frame(&header, false).expect("begins");
        assert_eq!(assembler.buffered(), 0, "recycled bytes are cleared");
        assert!(assembler.buf.capacity() >= 100);
        assembler.extend(b"hi", None, 0, true).expect("valid");
        assert_eq!(assembler.finish(), Ok(Message::Text("hi".into())));

        // Spares are kept up to a bound, and the best fit is used.
        assembler.recycle(Vec::with_capacity(SPARE_BYTES + 1));
        assert!(assembler.spare.is_empty(), "too big to keep");
        assembler.recycle(Vec::with_capacity(2000));
        assembler.set_max_spare(1000);
        assert!(assembler.spare.is_empty(), "larger than max_spare: freed");
        assert_eq!(assembler.spare_bytes, 0);
        assembler.recycle(Vec::with_capacity(1001));
        assert!(assembler.spare.is_empty(), "larger than max_spare");
        assembler.recycle(Vec::with_capacity(1000));
        assert_eq!(assembler.spare_bytes, 1000, "as large as max_spare: kept");
        assembler.set_max_spare(SPARE_BYTES);
        assembler.spare.clear();
        assembler.spare_bytes = 0;
        for size in [10, 1000, 100] {
            assembler.recycle(Vec::with_capacity(size));
        }
        assembler
            .begin_frame(&FrameHeader::new(OpCode::Binary, 50), false)
            .expect("begins");
        assert_eq!(assembler.buf.capacity(), 100, "the smallest that fits");
        assert_eq!(assembler.spare_bytes, 1010);
        for _ in 0..100 {
            assembler.recycle(Vec::with_capacity(8));
        }
        assert_eq!(assembler.spare.len(), SPARE_BUFFERS, "a bounded number");
    }

    #[test]
    fn the_last_spare_is_taken_when_it_fits_without_wasting_much() {
        let mut assembler = Assembler::new(1 << 20);
        let begin = |assembler: &mut Assembler, len| {
            let header = FrameHeader::new(OpCode::Binary, len);
            assembler.begin_frame(&header, false).expect("begins");
            assembler.buf.capacity()
        };
        // Last given back: 2000 bytes, small enough for any message.
        assembler.recycle(Vec::with_capacity(100));
        assembler.recycle(Vec::with_capacity(2000));
        assert_eq!(begin(&mut assembler, 50), 2000, "no search");
        let _ = assembler.finish();

        // At the bound: 4 KiB is small enough for anything, 4 KiB + 1 only
        // for a message of more than half its size.
        // (A smaller spare that fits is there each time: the best fit.)
        for (spares, want, taken) in [
            ([100, 4096], 50, 4096),
            ([100, 4097], 50, 100),
            ([3000, 4097], 2049, 4097),
        ] {
            let mut assembler = Assembler::new(1 << 20);
            for size in spares {
                assembler.recycle(Vec::with_capacity(size));
            }
            assert_eq!(begin(&mut assembler, want), taken, "{spares:?} for {want}");
        }

        // Last given back: 64 KiB for 50 bytes is too much; the best fit.
        let mut assembler = Assembler::new(1 << 20);
        assembler.recycle(Vec::with_capacity(100));
        assembler.recycle(Vec::with_capacity(64 * 1024));
        assert_eq!(begin(&mut assembler, 50), 100, "the smallest that fits");
        let _ = assembler.finish();
        assert_eq!(
            begin(&mut assembler, 40 * 1024),
            64 * 1024,
            "and it for a large one"
        );
    }

    #[test]
    fn fragments_must_carry_payload() {
        let mut assembler = Assembler::new(16 << 20);
        let first = FrameHeader {
            fin: false,
            ..FrameHeader::new(OpCode::Text, 0)
        };
        let empty = FrameHeader {
            fin: false,
            ..FrameHeader::new(OpCode::Continuation, 0)
        };
        assembler.begin_frame(&first, false).expect("begins");
        for _ in 1..FREE_FRAGMENTS {
            assembler.begin_frame(&empty, false).expect("free");
        }
        assert_eq!(
            assembler.begin_frame(&empty, false),
            Err(ProtocolError::TooManyFragments {
                fragments: FREE_FRAGMENTS + 1,
                bytes: 0
            })
        );

        // 64-byte fragments (Autobahn 9.3.1) may go on for a whole message.
        let mut assembler = Assembler::new(16 << 20);
        let piece = FrameHeader {
            fin: false,
            ..FrameHeader::new(OpCode::Binary, 64)
        };
        assembler.begin_frame(&piece, false).expect("begins");
        assembler.extend(&[0; 64], None, 0, false).expect("bytes");
        let piece = FrameHeader {
            opcode: OpCode::Continuation,
            ..piece
        };
        for _ in 0..10_000 {
            assembler.begin_frame(&piece, false).expect("paid for");
            assembler.extend(&[0; 64], None, 0, false).expect("bytes");
        }
    }

    #[test]
    fn rfc_5_7_prepared_frames() {
        assert_eq!(PreparedMessage::text("Hello").frame(), b"\x81\x05Hello");
        let big = PreparedMessage::binary(&[0u8; 256]);
        assert_eq!(&big.frame()[..4], &[0x82, 0x7E, 0x01, 0x00]);
        let huge = PreparedMessage::binary(&vec![0u8; 65536]);
        assert_eq!(&huge.frame()[..10], &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn assembles_fragments_and_enforces_order() {
        let mut a = Assembler::new(100);
        let mut first = FrameHeader::new(OpCode::Text, 3);
        first.fin = false;
        a.begin_frame(&first, false).expect("start");
        a.extend(b"Hel", None, 0, false).expect("utf8");
        assert_eq!(
            a.begin_frame(&FrameHeader::new(OpCode::Binary, 1), false),
            Err(ProtocolError::ExpectedContinuation)
        );
        a.begin_frame(&FrameHeader::new(OpCode::Continuation, 2), false)
            .expect("continue");
        a.extend(b"lo", None, 0, false).expect("utf8");
        assert_eq!(a.finish(), Ok(Message::Text("Hello".into())));
        assert_eq!(
            a.begin_frame(&FrameHeader::new(OpCode::Continuation, 1), false),
            Err(ProtocolError::UnexpectedContinuation)
        );
    }

    #[test]
    fn a_header_alone_reserves_little() {
        let mut a = Assembler::new(64 << 20);
        a.begin_frame(&FrameHeader::new(OpCode::Binary, 60 << 20), false)
            .expect("within the limit");
        assert!(a.buf.capacity() <= RESERVE_UP_FRONT as usize);
    }

    #[test]
    fn enforces_the_message_limit_across_fragments() {
        let mut a = Assembler::new(4);
        let mut first = FrameHeader::new(OpCode::Binary, 3);
        first.fin = false;
        a.begin_frame(&first, false).expect("fits");
        a.extend(b"abc", None, 0, false).expect("binary");
        assert_eq!(
            a.begin_frame(&FrameHeader::new(OpCode::Continuation, 2), false),
            Err(ProtocolError::MessageTooBig { size: 5, limit: 4 })
        );
    }
}
