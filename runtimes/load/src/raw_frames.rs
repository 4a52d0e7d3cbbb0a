//! `echo --raw-frames`: once the opening handshake is done, the client
//! leaves the core's [`Connection`](tincan_core::Connection). It sends one
//! frame, masked once, over and over, and splits what the server sends
//! with the core's frame decoder alone ([`FrameDecoder`]: each header
//! checked as a client must, for its opcode, RSV bits, masking and length;
//! payloads skipped, not copied; the order of fragments, §5.4, is not
//! checked). An echo is a final Text or Binary frame of the size sent, or
//! a message of that size in fragments. Pings are answered, between two of
//! our frames.
//!
//! What a message then costs the tool is little more than on raw TCP, so a
//! pipelined run measures the server rather than the tool. (The full
//! client does all a client must: a fresh masking key per frame, a send
//! queue, messages assembled and checked as UTF-8.)

use tincan_core::codec::{FrameDecoder, FramePiece};
use tincan_core::frame::encode_frame;
use tincan_core::{CloseCode, FrameHeader, OpCode, ProtocolError, Role};

use crate::client::Peer;
use crate::echo::Units;

/// The largest frame the server may send: a control frame, or an echo (of
/// at most `tincan-load`'s largest size, 1 GiB).
const MAX_FRAME: usize = 1 << 30;

/// The socket's side of a raw-frames echo: frames out, echoes counted in.
pub struct RawFrames {
    /// The frame, `copies` times in a row: the bytes to send are a run of
    /// frames, read from here starting `offset` bytes into one.
    frames: Vec<u8>,
    frame_len: usize,
    /// Bytes still to send; the next one is at `offset` in a frame.
    unsent: usize,
    offset: usize,
    /// A masked pong, sent whole between two frames, and the payload of a
    /// ping that came while one was being written (§5.5.3: only the
    /// latest needs an answer).
    pong: Vec<u8>,
    pong_sent: usize,
    ping: Option<Vec<u8>>,
    /// Our masking key, for the pongs.
    key: [u8; 4],
    size: u64,
    decoder: FrameDecoder,
    /// The frame being read, and the bytes of its message so far.
    frame: Option<FrameHeader>,
    message_len: u64,
    /// A control frame's payload, as it arrives.
    control: Vec<u8>,
    /// Echoes of the right size, and messages of another size, since
    /// [`RawFrames::take_echoes`].
    echoes: usize,
    wrong: usize,
    /// Why the stream ended: the server's close, or a frame no server may
    /// send.
    ended: Option<String>,
}

impl RawFrames {
    /// A client that sends `payload` as a Text (if `text`) or Binary frame,
    /// masked with `key`, and expects it back. Nothing is queued yet.
    pub fn new(payload: &[u8], text: bool, key: [u8; 4], copies: usize) -> Self {
        let opcode = if text { OpCode::Text } else { OpCode::Binary };
        let mut frame = Vec::new();
        encode_frame(&mut frame, true, opcode, Some(key), payload);
        let frame_len = frame.len();
        Self {
            frames: frame.repeat(copies.max(1)),
            frame_len,
            unsent: 0,
            offset: 0,
            pong: Vec::new(),
            pong_sent: 0,
            ping: None,
            key,
            size: payload.len() as u64,
            decoder: FrameDecoder::new(Role::Client, MAX_FRAME),
            frame: None,
            message_len: 0,
            control: Vec::new(),
            echoes: 0,
            wrong: 0,
            ended: None,
        }
    }

    fn on_piece(&mut self, piece: FramePiece<'_>) {
        match piece {
            FramePiece::Header(header) => self.frame = Some(header),
            FramePiece::Payload { bytes, end, .. } => {
                let Some(header) = self.frame else { return };
                if header.opcode.is_control() {
                    self.control.extend_from_slice(bytes);
                } else {
                    self.message_len += bytes.len() as u64;
                }
                if end {
                    self.frame = None;
                    self.end_frame(header.opcode, header.fin);
                }
            }
        }
    }

    fn end_frame(&mut self, opcode: OpCode, fin: bool) {
        match opcode {
            OpCode::Ping => {
                self.ping = Some(std::mem::take(&mut self.control));
                self.answer_ping();
            }
            OpCode::Close => {
                let code = match self.control.first_chunk::<2>() {
                    Some(code) => u16::from_be_bytes(*code),
                    None => CloseCode::NoStatus.as_u16(),
                };
                self.ended = Some(format!("closed by the server: {code}"));
            }
            OpCode::Pong => {}
            _ if fin => {
                match self.message_len == self.size {
                    true => self.echoes += 1,
                    false => self.wrong += 1,
                }
                self.message_len = 0;
            }
            _ => {}
        }
        self.control.clear();
    }

    /// Makes the pong for the latest ping, unless one is being written
    /// (§5.5.3: answering only the latest ping is allowed, so one not yet
    /// begun is replaced).
    fn answer_ping(&mut self) {
        if self.pong_sent > 0 {
            return;
        }
        if let Some(payload) = self.ping.take() {
            self.pong.clear();
            let key = Some(self.key);
            encode_frame(&mut self.pong, true, OpCode::Pong, key, &payload);
        }
    }

    /// The common case in one step: a whole data frame at the front of
    /// `bytes`, between frames, that passes the decoder's checks (those of
    /// [`FrameHeader::validate`] for a client, and the size limit): counted,
    /// and the bytes after it returned. Anything else (a part of a frame, a
    /// control frame, a header that fails a check) is left to the decoder,
    /// which reports what is wrong.
    fn whole_data_frame<'a>(&mut self, bytes: &'a [u8]) -> Option<&'a [u8]> {
        if self.frame.is_some() || !self.decoder.is_between_frames() {
            return None;
        }
        let (header, len) = FrameHeader::decode(bytes).ok()??;
        let size = usize::try_from(header.payload_len).ok()?;
        let valid = header.validate(Role::Client).is_ok() && size <= MAX_FRAME;
        if !valid || header.opcode.is_control() {
            return None;
        }
        let rest = bytes.get(len..)?.get(size..)?;
        self.message_len += header.payload_len;
        self.end_frame(header.opcode, header.fin);
        Some(rest)
    }

    /// Whether the pong goes next: it waits, and no frame is begun.
    fn pong_due(&self) -> bool {
        !self.pong.is_empty() && (self.pong_sent > 0 || self.offset == 0)
    }

    fn fail(&mut self, error: ProtocolError) {
        self.ended = Some(format!("the server broke the protocol: {error}"));
    }
}

/// A message is one frame; one that ends the stream is the server's close
/// frame, or a protocol error.
impl Units for RawFrames {
    fn queue(&mut self) {
        self.unsent += self.frame_len;
    }

    fn take_echoes(&mut self) -> (usize, usize) {
        let taken = (self.echoes, self.wrong);
        (self.echoes, self.wrong) = (0, 0);
        taken
    }

    fn ended(&self) -> Option<&str> {
        self.ended.as_deref()
    }
}

impl Peer for RawFrames {
    fn transmit(&self) -> Option<&[u8]> {
        if self.pong_due() {
            return Some(&self.pong[self.pong_sent..]);
        }
        // While a pong waits, up to the end of the frame begun.
        let limit = match self.pong.is_empty() {
            true => self.frames.len(),
            false => self.frame_len,
        };
        let end = limit.min(self.offset + self.unsent);
        (self.unsent > 0).then(|| &self.frames[self.offset..end])
    }

    fn advance(&mut self, n: usize) {
        if self.pong_due() {
            self.pong_sent += n;
            if self.pong_sent == self.pong.len() {
                self.pong.clear();
                self.pong_sent = 0;
                self.answer_ping();
            }
            return;
        }
        self.unsent -= n;
        self.offset = (self.offset + n) % self.frame_len;
    }

    fn receive(&mut self, mut bytes: &[u8]) {
        while self.ended.is_none() {
            if let Some(rest) = self.whole_data_frame(bytes) {
                bytes = rest;
                continue;
            }
            match self.decoder.decode(&mut bytes) {
                Ok(Some(piece)) => self.on_piece(piece),
                Ok(None) => break,
                Err(error) => self.fail(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends everything `peer` has queued, `chunk` bytes at a time.
    fn sent(peer: &mut RawFrames, chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(bytes) = peer.transmit() {
            let n = bytes.len().min(chunk);
            out.extend_from_slice(&bytes[..n]);
            peer.advance(n);
        }
        out
    }

    fn server_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&mut out, fin, opcode, None, payload);
        out
    }

    #[test]
    fn sends_masked_frames_that_a_server_decodes_in_any_split() {
        let key = [1, 2, 3, 4];
        for chunk in [1, 3, 7, 1000] {
            let mut peer = RawFrames::new(b"hello", true, key, 2);
            for _ in 0..5 {
                peer.queue();
            }
            let bytes = sent(&mut peer, chunk);
            let mut server = FrameDecoder::new(Role::Server, 1 << 20);
            let mut input = &bytes[..];
            let mut frames = 0;
            while let Some(piece) = server.decode(&mut input).expect("valid frames") {
                if let FramePiece::Payload {
                    bytes,
                    end: true,
                    offset: 0,
                } = piece
                {
                    let mut payload = bytes.to_vec();
                    tincan_core::mask::apply_mask(&mut payload, key, 0);
                    assert_eq!(payload, b"hello");
                    frames += 1;
                }
            }
            assert_eq!(frames, 5, "five whole frames, split every {chunk} bytes");
        }
    }

    #[test]
    fn counts_echoes_whole_or_fragmented_and_of_the_wrong_size() {
        let mut stream = server_frame(OpCode::Binary, true, b"abcd");
        stream.extend(server_frame(OpCode::Binary, false, b"ab"));
        stream.extend(server_frame(OpCode::Ping, true, b"p"));
        stream.extend(server_frame(OpCode::Continuation, true, b"cd"));
        stream.extend(server_frame(OpCode::Binary, true, b"abc"));
        stream.extend(server_frame(OpCode::Text, true, b"wxyz"));
        // Whole frames take the one-step path; pieces, the decoder's.
        for chunk in [1, 3, 5, stream.len()] {
            let mut peer = RawFrames::new(b"abcd", false, [9; 4], 1);
            for piece in stream.chunks(chunk) {
                peer.receive(piece);
            }
            assert_eq!(peer.take_echoes(), (3, 1), "in pieces of {chunk}");
            assert_eq!(peer.take_echoes(), (0, 0));
            assert!(peer.ended().is_none());
        }
    }

    #[test]
    fn answers_a_ping_between_two_frames() {
        let key = [5, 6, 7, 8];
        let mut peer = RawFrames::new(b"xyz", false, key, 1);
        peer.queue();
        peer.queue();
        // Part of the first frame is out when the ping comes.
        let first = peer.transmit().expect("queued")[..2].to_vec();
        peer.advance(2);
        peer.receive(&server_frame(OpCode::Ping, true, b"hi"));
        let mut bytes = first;
        bytes.extend(sent(&mut peer, 4));
        let mut server = FrameDecoder::new(Role::Server, 1 << 20);
        let mut input = &bytes[..];
        let mut opcodes = Vec::new();
        while let Some(piece) = server.decode(&mut input).expect("valid frames") {
            if let FramePiece::Header(header) = piece {
                opcodes.push(header.opcode);
            }
        }
        assert_eq!(opcodes, [OpCode::Binary, OpCode::Pong, OpCode::Binary]);
    }

    #[test]
    fn a_ping_while_a_pong_is_written_is_answered_after_it() {
        let mut peer = RawFrames::new(b"x", false, [1, 1, 1, 1], 1);
        peer.receive(&server_frame(OpCode::Ping, true, b"one"));
        let mut bytes = peer.transmit().expect("the pong")[..3].to_vec();
        peer.advance(3);
        peer.receive(&server_frame(OpCode::Ping, true, b"two"));
        peer.receive(&server_frame(OpCode::Ping, true, b"three"));
        bytes.extend(sent(&mut peer, 2));
        let mut server = FrameDecoder::new(Role::Server, 1 << 20);
        let mut input = &bytes[..];
        let mut pongs = Vec::new();
        while let Some(piece) = server.decode(&mut input).expect("valid frames") {
            if let FramePiece::Payload { bytes, .. } = piece {
                let mut payload = bytes.to_vec();
                tincan_core::mask::apply_mask(&mut payload, [1, 1, 1, 1], 0);
                pongs.push(payload);
            }
        }
        assert_eq!(pongs, [&b"one"[..], b"three"], "the first, then the latest");
    }

    #[test]
    fn a_close_or_a_masked_frame_ends_the_stream() {
        let mut peer = RawFrames::new(b"x", false, [0; 4], 1);
        peer.receive(&server_frame(OpCode::Close, true, &1001u16.to_be_bytes()));
        assert_eq!(peer.ended(), Some("closed by the server: 1001"));

        let mut peer = RawFrames::new(b"x", false, [0; 4], 1);
        let mut masked = Vec::new();
        encode_frame(&mut masked, true, OpCode::Binary, Some([1; 4]), b"x");
        peer.receive(&masked);
        let ended = peer.ended().expect("a client refuses masked frames");
        assert!(
            ended.starts_with("the server broke the protocol"),
            "{ended}"
        );
    }
}
