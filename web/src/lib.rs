//! # tincan-web
//!
//! The tincan WebSocket codec for JavaScript: the same `tincan-core` code the
//! server runs, compiled to wasm32 and exported with `wasm-bindgen`. It
//! computes accept keys, parses handshakes, encodes frames, decodes byte
//! streams fed in any pieces into frames and messages, and validates UTF-8
//! incrementally, reporting the errors the core reports natively.
//!
//! From Rust (the same calls JavaScript makes):
//!
//! ```
//! use tincan_web::{accept_key, encode_frame, Decoder};
//!
//! assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//!
//! // A masked text frame as a browser sends it, decoded as a server would.
//! let bytes = encode_frame(1, true, b"Hello", Some(vec![0x37, 0xfa, 0x21, 0x3d])).unwrap();
//! let mut decoder = Decoder::new(true);
//! decoder.push(&bytes[..3]).unwrap();
//! assert!(decoder.next_frame().is_none());
//! decoder.push(&bytes[3..]).unwrap();
//! let frame = decoder.next_frame().unwrap();
//! assert_eq!((frame.opcode(), frame.payload()), ("text".to_owned(), b"Hello".to_vec()));
//! assert_eq!(decoder.next_message().unwrap().text(), Some("Hello".to_owned()));
//! ```
//!
//! From JavaScript (after `wasm-bindgen --target web`):
//!
//! ```js
//! import init, { acceptKey, encodeFrame, Decoder } from './tincan_web.js';
//! await init();
//! const decoder = new Decoder(false);            // decode as a client
//! decoder.push(encodeFrame(1, true, new TextEncoder().encode('hi')));
//! decoder.nextMessage().text;                    // "hi"
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::VecDeque;

use tincan_core::codec::{self, FrameDecoder, FramePiece, Limits, MessageDecoder};
use tincan_core::deflate;
use tincan_core::frame::{self, FrameHeader, OpCode};
use tincan_core::handshake::{self, ClientRequest, HandshakeError, HeadReader, Request};
use tincan_core::mask::apply_mask;
use tincan_core::utf8;
use tincan_core::{Message, ProtocolError, Role};
use wasm_bindgen::prelude::*;

/// An error from the codec: the core's error, by name, with its message and
/// the HTTP status or close code it maps to. Thrown to JavaScript.
#[wasm_bindgen]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError {
    kind: String,
    message: String,
    status: Option<u16>,
    close_code: Option<u16>,
}

#[wasm_bindgen]
impl CodecError {
    /// The core's error variant, e.g. `ReservedOpcode` or `MissingKey`.
    #[wasm_bindgen(getter)]
    pub fn kind(&self) -> String {
        self.kind.clone()
    }

    /// The core's message for it.
    #[wasm_bindgen(getter)]
    pub fn message(&self) -> String {
        self.message.clone()
    }

    /// For handshake errors: the HTTP status a server answers with.
    #[wasm_bindgen(getter)]
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// For protocol errors: the close code the connection fails with.
    #[wasm_bindgen(getter, js_name = closeCode)]
    pub fn close_code(&self) -> Option<u16> {
        self.close_code
    }
}

impl From<HandshakeError> for CodecError {
    fn from(e: HandshakeError) -> Self {
        Self {
            kind: e.kind().to_owned(),
            message: e.to_string(),
            status: Some(e.status()),
            close_code: None,
        }
    }
}

impl From<ProtocolError> for CodecError {
    fn from(e: ProtocolError) -> Self {
        let close_code = Some(e.close_code().as_u16());
        Self {
            kind: e.kind().to_owned(),
            message: e.to_string(),
            status: None,
            close_code,
        }
    }
}

/// A masking key from JavaScript: 4 bytes, or none.
fn mask_key(mask: Option<Vec<u8>>) -> Result<Option<[u8; 4]>, CodecError> {
    mask.map(|key| {
        <[u8; 4]>::try_from(key.as_slice())
            .map_err(|_| usage("BadMask", "a masking key has 4 bytes"))
    })
    .transpose()
}

fn usage(kind: &str, message: &str) -> CodecError {
    CodecError {
        kind: kind.to_owned(),
        message: message.to_owned(),
        status: None,
        close_code: None,
    }
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §1.3).
#[wasm_bindgen(js_name = acceptKey)]
pub fn accept_key(key: &str) -> String {
    handshake::accept_key(key)
}

/// A parsed HTTP request head.
#[wasm_bindgen]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRequest {
    request: Request,
}

#[wasm_bindgen]
impl ParsedRequest {
    /// Whether it is a valid WebSocket upgrade (otherwise plain HTTP).
    #[wasm_bindgen(getter, js_name = isUpgrade)]
    pub fn is_upgrade(&self) -> bool {
        self.request.is_upgrade
    }

    /// The method.
    #[wasm_bindgen(getter)]
    pub fn method(&self) -> String {
        self.request.method.clone()
    }

    /// The path, without the query.
    #[wasm_bindgen(getter)]
    pub fn path(&self) -> String {
        self.request.path().to_owned()
    }

    /// The `Host` header.
    #[wasm_bindgen(getter)]
    pub fn host(&self) -> Option<String> {
        self.request.host().map(str::to_owned)
    }

    /// The `Origin` header.
    #[wasm_bindgen(getter)]
    pub fn origin(&self) -> Option<String> {
        self.request.origin().map(str::to_owned)
    }

    /// The subprotocols offered, in order.
    #[wasm_bindgen(getter)]
    pub fn protocols(&self) -> Vec<String> {
        self.request.protocols.clone()
    }

    /// The `Sec-WebSocket-Key` of an upgrade.
    #[wasm_bindgen(getter)]
    pub fn key(&self) -> Option<String> {
        self.request.key().map(str::to_owned)
    }
}

/// Parses a complete request head (ending with an empty line) as a server
/// would (§4.2.1); the error carries the HTTP status a server answers with.
#[wasm_bindgen(js_name = parseRequest)]
pub fn parse_request(head: &[u8]) -> Result<ParsedRequest, CodecError> {
    let mut reader = HeadReader::new(handshake::DEFAULT_MAX_HEAD_SIZE);
    match reader.feed(head)? {
        Some((head, _)) => Ok(ParsedRequest {
            request: Request::parse(&head)?,
        }),
        None => Err(usage(
            "Incomplete",
            "the request head does not end with an empty line",
        )),
    }
}

/// Checks a server's response head as a client that sent `key` and offered
/// `protocols` (§4.1); returns the subprotocol the server selected.
#[wasm_bindgen(js_name = checkResponse)]
pub fn check_response(
    head: &[u8],
    key: &str,
    protocols: Vec<String>,
) -> Result<Option<String>, CodecError> {
    let request = ClientRequest {
        host: String::new(),
        path: String::new(),
        key: key.to_owned(),
        protocols,
        origin: None,
        extensions: None,
    };
    Ok(request.check_response(head)?)
}

/// Encodes one frame: `opcode` (0–2, 8–10), FIN, the payload, and a 4-byte
/// masking key for client frames (§5.2).
#[wasm_bindgen(js_name = encodeFrame)]
pub fn encode_frame(
    opcode: u8,
    fin: bool,
    payload: &[u8],
    mask: Option<Vec<u8>>,
) -> Result<Vec<u8>, CodecError> {
    let opcode = OpCode::from_u8(opcode)?;
    let mask = mask_key(mask)?;
    let mut out = Vec::new();
    frame::encode_frame(&mut out, fin, opcode, mask, payload);
    Ok(out)
}

/// Encodes a whole message compressed with permessage-deflate (RFC 7692
/// §7.2.1: each message on its own, a window of `2^window_bits` bytes,
/// 8–15): one frame with RSV1 set, masked with `mask` for client frames.
#[wasm_bindgen(js_name = encodeCompressed)]
pub fn encode_compressed(
    opcode: u8,
    payload: &[u8],
    window_bits: u8,
    mask: Option<Vec<u8>>,
) -> Result<Vec<u8>, CodecError> {
    let opcode = OpCode::from_u8(opcode)?;
    if !matches!(opcode, OpCode::Text | OpCode::Binary) {
        return Err(usage(
            "NotData",
            "only text and binary messages are compressed",
        ));
    }
    if !(8..=15).contains(&window_bits) {
        return Err(usage("BadWindow", "window bits are 8 to 15"));
    }
    let mask = mask_key(mask)?;
    let mut compressed = Vec::new();
    deflate::compress(payload, window_bits, &mut compressed);
    let header = FrameHeader {
        rsv: 0b100,
        mask,
        ..FrameHeader::new(opcode, compressed.len() as u64)
    };
    let mut out = Vec::new();
    frame::encode_frame_header(&mut out, header, &compressed);
    Ok(out)
}

/// One decoded frame, for a protocol inspector.
#[wasm_bindgen]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    header: FrameHeader,
    payload: Vec<u8>,
}

#[wasm_bindgen]
impl Frame {
    /// FIN: the last frame of its message.
    #[wasm_bindgen(getter)]
    pub fn fin(&self) -> bool {
        self.header.fin
    }

    /// RSV1–3 as the low three bits.
    #[wasm_bindgen(getter)]
    pub fn rsv(&self) -> u8 {
        self.header.rsv
    }

    /// `continuation`, `text`, `binary`, `close`, `ping` or `pong`.
    #[wasm_bindgen(getter)]
    pub fn opcode(&self) -> String {
        match self.header.opcode {
            OpCode::Continuation => "continuation",
            OpCode::Text => "text",
            OpCode::Binary => "binary",
            OpCode::Close => "close",
            OpCode::Ping => "ping",
            OpCode::Pong => "pong",
        }
        .to_owned()
    }

    /// The masking key, for masked frames.
    #[wasm_bindgen(getter)]
    pub fn mask(&self) -> Option<Vec<u8>> {
        self.header.mask.map(|key| key.to_vec())
    }

    /// The payload length.
    #[wasm_bindgen(getter)]
    pub fn length(&self) -> f64 {
        self.header.payload_len as f64
    }

    /// The payload, unmasked.
    #[wasm_bindgen(getter)]
    pub fn payload(&self) -> Vec<u8> {
        self.payload.clone()
    }
}

/// A decoded message or control frame.
#[wasm_bindgen]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    kind: &'static str,
    bytes: Vec<u8>,
    text: Option<String>,
    close_code: Option<u16>,
}

#[wasm_bindgen]
impl Decoded {
    /// `text`, `binary`, `ping`, `pong` or `close`.
    #[wasm_bindgen(getter)]
    pub fn kind(&self) -> String {
        self.kind.to_owned()
    }

    /// The text of a text message, or the reason of a close.
    #[wasm_bindgen(getter)]
    pub fn text(&self) -> Option<String> {
        self.text.clone()
    }

    /// The payload bytes.
    #[wasm_bindgen(getter)]
    pub fn bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The code of a close.
    #[wasm_bindgen(getter, js_name = closeCode)]
    pub fn close_code(&self) -> Option<u16> {
        self.close_code
    }
}

/// Decodes a byte stream, fed in any pieces, into frames and messages, with
/// the checks of the receiving role (a server expects masked frames). It is
/// the core's standalone codec: frames for an inspector from its
/// `FrameDecoder`, messages from its `MessageDecoder`.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Decoder {
    frames: FrameDecoder,
    /// The frame being collected, unmasked, for the inspector.
    frame: Option<Frame>,
    complete: VecDeque<Frame>,
    messages: MessageDecoder,
    decoded: VecDeque<Decoded>,
    failed: Option<CodecError>,
}

#[wasm_bindgen]
impl Decoder {
    /// A decoder for what a server receives (`as_server`, masked frames) or
    /// what a client receives.
    #[wasm_bindgen(constructor)]
    pub fn new(as_server: bool) -> Decoder {
        Self::with_limit(as_server, Limits::DEFAULT.max_message_size)
    }

    /// Like [`Decoder::new`], with a limit on frame and message size (1009).
    #[wasm_bindgen(js_name = withLimit)]
    pub fn with_limit(as_server: bool, max_message_size: usize) -> Decoder {
        let role = if as_server {
            Role::Server
        } else {
            Role::Client
        };
        let limits = Limits {
            max_frame_size: max_message_size,
            max_message_size,
        };
        Decoder {
            frames: FrameDecoder::new(role, max_message_size),
            frame: None,
            complete: VecDeque::new(),
            messages: MessageDecoder::new(role, limits),
            decoded: VecDeque::new(),
            failed: None,
        }
    }

    /// Accepts messages compressed with permessage-deflate (RFC 7692), as
    /// negotiated: `keep_context` when the sender may refer back to earlier
    /// messages (it did not agree to `*_no_context_takeover`). Call it before
    /// the first frame.
    #[wasm_bindgen(js_name = enableDeflate)]
    pub fn enable_deflate(&mut self, keep_context: bool) {
        self.frames.allow_rsv1();
        self.messages.enable_deflate(keep_context);
    }

    /// Feeds the next bytes. After an error every later call reports it
    /// again: the stream cannot be resynchronised (§7.1.7).
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let mut input = bytes;
        loop {
            match self.frames.decode(&mut input) {
                Ok(Some(piece)) => self.collect(piece),
                Ok(None) => break,
                Err(e) => break self.fail(e),
            }
        }
        let mut input = bytes;
        loop {
            match self.messages.decode(&mut input) {
                Ok(Some(decoded)) => self.decoded.push_back(Decoded::from(decoded)),
                Ok(None) => break,
                Err(e) => break self.fail(e),
            }
        }
        match &self.failed {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// The next complete frame, if any.
    #[wasm_bindgen(js_name = nextFrame)]
    pub fn next_frame(&mut self) -> Option<Frame> {
        self.complete.pop_front()
    }

    /// The next complete message or control frame, if any.
    #[wasm_bindgen(js_name = nextMessage)]
    pub fn next_message(&mut self) -> Option<Decoded> {
        self.decoded.pop_front()
    }

    /// Adds a frame piece to the frame being collected.
    fn collect(&mut self, piece: FramePiece<'_>) {
        match piece {
            FramePiece::Header(header) => {
                self.frame = Some(Frame {
                    header,
                    payload: Vec::new(),
                })
            }
            FramePiece::Payload { bytes, offset, end } => {
                let Some(frame) = &mut self.frame else {
                    return;
                };
                let start = frame.payload.len();
                frame.payload.extend_from_slice(bytes);
                if let Some(key) = frame.header.mask {
                    apply_mask(&mut frame.payload[start..], key, (offset % 4) as usize);
                }
                if end {
                    self.complete.extend(self.frame.take());
                }
            }
        }
    }

    fn fail(&mut self, error: ProtocolError) {
        self.frame = None;
        self.failed.get_or_insert_with(|| error.into());
    }
}

impl From<codec::Decoded> for Decoded {
    fn from(decoded: codec::Decoded) -> Self {
        match decoded {
            codec::Decoded::Message(Message::Text(text)) => {
                Decoded::new("text", text.as_bytes().to_vec(), Some(text), None)
            }
            codec::Decoded::Message(Message::Binary(bytes)) => {
                Decoded::new("binary", bytes, None, None)
            }
            codec::Decoded::Ping(bytes) => Decoded::new("ping", bytes, None, None),
            codec::Decoded::Pong(bytes) => Decoded::new("pong", bytes, None, None),
            codec::Decoded::Close { code, reason } => {
                Decoded::new("close", Vec::new(), Some(reason), Some(code.as_u16()))
            }
        }
    }
}

impl Decoded {
    fn new(
        kind: &'static str,
        bytes: Vec<u8>,
        text: Option<String>,
        close_code: Option<u16>,
    ) -> Self {
        Self {
            kind,
            bytes,
            text,
            close_code,
        }
    }
}

/// Validates UTF-8 fed in any pieces, failing at the first impossible byte
/// (§8.1).
#[wasm_bindgen]
#[derive(Debug, Default)]
pub struct Utf8Validator {
    inner: utf8::Utf8Validator,
}

#[wasm_bindgen]
impl Utf8Validator {
    /// A validator at the start of a text.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Utf8Validator {
        Self::default()
    }

    /// Checks the next piece; `false` once the text cannot be valid.
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        self.inner.feed(bytes).is_ok()
    }

    /// Whether the text ended on a character boundary; resets.
    pub fn finish(&mut self) -> bool {
        self.inner.finish().is_ok()
    }
}

/// The frame that carries `text` as the browser sends it (masked with
/// `mask`) or receives it (unmasked), decoded back as its receiver would.
/// With `compressed`, the frame a permessage-deflate connection carries: the
/// payload compressed (RSV1 set), as tincan and browsers send messages of 64
/// bytes or more.
#[wasm_bindgen(js_name = inspectText)]
pub fn inspect_text(
    text: &str,
    sent: bool,
    mask: Option<Vec<u8>>,
    compressed: Option<bool>,
) -> Result<Vec<Frame>, CodecError> {
    let mask = if sent {
        Some(mask.unwrap_or_else(|| vec![0; 4]))
    } else {
        None
    };
    let compressed = compressed.unwrap_or(false) && text.len() >= 64;
    let bytes = match compressed {
        true => encode_compressed(OpCode::Text.as_u8(), text.as_bytes(), 15, mask)?,
        false => encode_frame(OpCode::Text.as_u8(), true, text.as_bytes(), mask)?,
    };
    let mut decoder = Decoder::new(sent);
    decoder.enable_deflate(false);
    decoder.push(&bytes)?;
    Ok(std::iter::from_fn(|| decoder.next_frame()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_reports_core_errors_with_close_codes() {
        let mut server = Decoder::new(true);
        let error = server
            .push(b"\x81\x05Hello")
            .expect_err("unmasked to a server");
        assert_eq!(
            (error.kind(), error.close_code()),
            ("UnmaskedFrame".to_owned(), Some(1002))
        );
        // It stays failed.
        assert_eq!(server.push(b""), Err(error));

        let mut client = Decoder::new(false);
        assert_eq!(
            client.push(&[0x83, 0x00]).expect_err("reserved").kind(),
            "ReservedOpcode"
        );
        let mut client = Decoder::new(false);
        assert_eq!(
            client
                .push(&[0x81, 0x01, 0xff])
                .expect_err("utf-8")
                .close_code(),
            Some(1007)
        );
        let mut small = Decoder::with_limit(false, 4);
        assert_eq!(
            small.push(&[0x82, 0x05]).expect_err("too big").close_code(),
            Some(1009)
        );
    }

    #[test]
    fn compressed_messages_decode_and_the_rfc_7692_example_holds() {
        // §7.2.3.1: "Hello" compressed, in one unmasked frame.
        let mut client = Decoder::new(false);
        client.enable_deflate(true);
        client
            .push(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
            .expect("valid");
        assert_eq!(
            client.next_message().and_then(|m| m.text()),
            Some("Hello".into())
        );
        let frame = client.next_frame().expect("a frame");
        assert_eq!((frame.rsv(), frame.length()), (4, 7.0));

        let text = "a chat message that says the same thing again and again and again";
        let bytes = encode_compressed(1, text.as_bytes(), 15, Some(vec![1, 2, 3, 4])).expect("ok");
        assert!(bytes.len() < text.len());
        let mut server = Decoder::new(true);
        server.enable_deflate(false);
        for piece in bytes.chunks(3) {
            server.push(piece).expect("valid");
        }
        assert_eq!(
            server.next_message().and_then(|m| m.text()),
            Some(text.into())
        );
        // Without deflate, RSV1 is a protocol error.
        let mut plain = Decoder::new(true);
        assert_eq!(plain.push(&bytes).expect_err("rsv1").kind(), "ReservedBits");
    }

    #[test]
    fn frames_and_messages_come_from_the_same_bytes_in_any_split() {
        let mut wire = Vec::new();
        for payload in [&b"hi"[..], b""] {
            wire.extend(encode_frame(9, true, payload, Some(vec![1, 2, 3, 4])).expect("ping"));
        }
        wire.extend(encode_frame(1, false, "h\u{e9}".as_bytes(), Some(vec![5; 4])).expect("text"));
        wire.extend(encode_frame(0, true, b"!", Some(vec![6; 4])).expect("last"));
        for split in 0..wire.len() {
            let mut server = Decoder::new(true);
            server.push(&wire[..split]).expect("valid");
            server.push(&wire[split..]).expect("valid");
            let frames: Vec<(String, Vec<u8>)> = std::iter::from_fn(|| server.next_frame())
                .map(|f| (f.opcode(), f.payload()))
                .collect();
            assert_eq!(
                frames,
                [
                    ("ping".to_owned(), b"hi".to_vec()),
                    ("ping".to_owned(), vec![]),
                    ("text".to_owned(), "h\u{e9}".as_bytes().to_vec()),
                    ("continuation".to_owned(), b"!".to_vec()),
                ],
                "split at {split}"
            );
            let messages: Vec<(String, Vec<u8>)> = std::iter::from_fn(|| server.next_message())
                .map(|m| (m.kind(), m.bytes()))
                .collect();
            assert_eq!(
                messages,
                [
                    ("ping".to_owned(), b"hi".to_vec()),
                    ("ping".to_owned(), vec![]),
                    ("text".to_owned(), "h\u{e9}!".as_bytes().to_vec()),
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn handshake_errors_carry_statuses() {
        let error = parse_request(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n\r\n")
            .expect_err("version 8");
        assert_eq!(
            (error.kind(), error.status()),
            ("UnsupportedVersion".to_owned(), Some(426))
        );
        assert_eq!(
            parse_request(b"GET /").expect_err("incomplete").kind(),
            "Incomplete"
        );
    }

    #[test]
    fn inspect_text_round_trips() {
        let frames = inspect_text("hé", true, Some(vec![1, 2, 3, 4]), None).expect("valid");
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].payload(), "hé".as_bytes());
        assert_eq!(frames[0].mask(), Some(vec![1, 2, 3, 4]));
        assert_eq!(
            encode_frame(3, true, b"", None)
                .expect_err("reserved")
                .kind(),
            "ReservedOpcode"
        );
        assert_eq!(
            encode_frame(1, true, b"", Some(vec![1]))
                .expect_err("mask")
                .kind(),
            "BadMask"
        );
    }
}
