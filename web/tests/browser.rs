//! The codec in a real browser (`wasm-pack test --headless --chrome` and
//! `--firefox`): RFC 6455 vectors, round trips, and malformed input giving the
//! errors the core reports natively.

#![cfg(target_arch = "wasm32")]

use tincan_web::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// §5.7: the masking key of the examples.
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn decode_all(as_server: bool, bytes: &[u8]) -> (Vec<Frame>, Vec<Decoded>) {
    let mut decoder = Decoder::new(as_server);
    decoder.push(bytes).expect("valid stream");
    let frames = std::iter::from_fn(|| decoder.next_frame()).collect();
    let messages = std::iter::from_fn(|| decoder.next_message()).collect();
    (frames, messages)
}

#[wasm_bindgen_test]
fn rfc_1_3_accept_key() {
    assert_eq!(
        accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[wasm_bindgen_test]
fn rfc_1_3_request() {
    let request = parse_request(
        b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
          Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
          Sec-WebSocket-Version: 13\r\n\r\n",
    )
    .expect("valid");
    assert!(request.is_upgrade());
    assert_eq!(request.path(), "/chat");
    assert_eq!(request.origin().as_deref(), Some("http://example.com"));
    assert_eq!(request.protocols(), ["chat", "superchat"]);
    let response =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n";
    let protocols = vec!["chat".to_owned()];
    assert_eq!(
        check_response(response, "dGhlIHNhbXBsZSBub25jZQ==", protocols),
        Ok(Some("chat".to_owned()))
    );
}

#[wasm_bindgen_test]
fn rfc_5_7_single_frames() {
    let unmasked = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let masked = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(
        encode_frame(1, true, b"Hello", None).expect("text"),
        unmasked
    );
    assert_eq!(
        encode_frame(1, true, b"Hello", Some(KEY.to_vec())).expect("text"),
        masked
    );
    let (frames, messages) = decode_all(false, &unmasked);
    assert_eq!(frames[0].opcode(), "text");
    assert!(frames[0].fin() && frames[0].mask().is_none());
    assert_eq!(messages[0].text().as_deref(), Some("Hello"));
    let (frames, messages) = decode_all(true, &masked);
    assert_eq!(frames[0].mask(), Some(KEY.to_vec()));
    assert_eq!(frames[0].payload(), b"Hello");
    assert_eq!(messages[0].text().as_deref(), Some("Hello"));
}

#[wasm_bindgen_test]
fn rfc_5_7_fragments_ping_and_pong() {
    let mut bytes = vec![0x01, 0x03, 0x48, 0x65, 0x6c];
    bytes.extend([0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    bytes.extend([0x80, 0x02, 0x6c, 0x6f]);
    let (frames, messages) = decode_all(false, &bytes);
    let opcodes: Vec<String> = frames.iter().map(Frame::opcode).collect();
    assert_eq!(opcodes, ["text", "ping", "continuation"]);
    assert!(!frames[0].fin() && frames[2].fin());
    let kinds: Vec<String> = messages.iter().map(Decoded::kind).collect();
    assert_eq!(kinds, ["ping", "text"]);
    assert_eq!(messages[1].text().as_deref(), Some("Hello"));

    let pong = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let (frames, messages) = decode_all(true, &pong);
    assert_eq!(frames[0].opcode(), "pong");
    assert_eq!(messages[0].bytes(), b"Hello");
}

#[wasm_bindgen_test]
fn rfc_5_7_long_lengths() {
    let bytes = encode_frame(2, true, &[9; 256], None).expect("binary");
    assert_eq!(&bytes[..4], &[0x82, 0x7E, 0x01, 0x00]);
    let bytes = encode_frame(2, true, &vec![9; 65536], None).expect("binary");
    assert_eq!(&bytes[..10], &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    let (frames, messages) = decode_all(false, &bytes);
    assert_eq!(frames[0].length(), 65536.0);
    assert_eq!(messages[0].bytes().len(), 65536);
}

#[wasm_bindgen_test]
fn round_trips_across_every_split() {
    let text = "κόσμε, tincan 🥫";
    let bytes = encode_frame(1, true, text.as_bytes(), Some(vec![1, 2, 3, 4])).expect("text");
    for split in 0..=bytes.len() {
        let mut decoder = Decoder::new(true);
        decoder.push(&bytes[..split]).expect("prefix");
        decoder.push(&bytes[split..]).expect("rest");
        assert_eq!(
            decoder.next_message().and_then(|m| m.text()).as_deref(),
            Some(text),
            "split {split}"
        );
        assert_eq!(
            decoder.next_frame().map(|f| f.payload()),
            Some(text.as_bytes().to_vec())
        );
    }
}

#[wasm_bindgen_test]
fn malformed_input_gives_the_native_errors() {
    let unmasked_to_server = Decoder::new(true).push(b"\x81\x00").expect_err("unmasked");
    assert_eq!(
        (unmasked_to_server.kind(), unmasked_to_server.close_code()),
        ("UnmaskedFrame".into(), Some(1002))
    );
    let reserved = Decoder::new(false)
        .push(&[0x83, 0x00])
        .expect_err("reserved");
    assert_eq!(
        (reserved.kind(), reserved.close_code()),
        ("ReservedOpcode".into(), Some(1002))
    );
    let utf8 = Decoder::new(false)
        .push(&[0x81, 0x02, 0xce, 0xff])
        .expect_err("bad text");
    assert_eq!(
        (utf8.kind(), utf8.close_code()),
        ("InvalidUtf8".into(), Some(1007))
    );
    let big = Decoder::with_limit(false, 10)
        .push(&[0x82, 0x0b])
        .expect_err("too big");
    assert_eq!(
        (big.kind(), big.close_code()),
        ("FrameTooBig".into(), Some(1009))
    );
    let close = Decoder::new(false)
        .push(&[0x88, 0x02, 0x03, 0xed])
        .expect_err("1005 on the wire");
    assert_eq!(
        (close.kind(), close.close_code()),
        ("InvalidCode".into(), Some(1002))
    );

    let version = parse_request(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n")
        .expect_err("version 8");
    assert_eq!(
        (version.kind(), version.status()),
        ("UnsupportedVersion".into(), Some(426))
    );
    let no_key = parse_request(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
        .expect_err("no key");
    assert_eq!(
        (no_key.kind(), no_key.status()),
        ("MissingKey".into(), Some(400))
    );
}

#[wasm_bindgen_test]
fn utf8_validator_fails_at_the_first_bad_byte() {
    let mut v = Utf8Validator::new();
    assert!(v.feed(&[0xce]));
    assert!(v.feed(&[0xba]));
    assert!(v.finish());
    assert!(v.feed(&[0xed]));
    assert!(!v.feed(&[0xa0]));
    let mut v = Utf8Validator::new();
    assert!(v.feed(&[0xf0, 0x9f]));
    assert!(!v.finish());
}

/// RFC 7692 §7.2.3.1 and a round trip of a compressed message, in the
/// browser's wasm engine.
#[wasm_bindgen_test]
fn rfc_7692_compressed_messages() {
    let mut client = Decoder::new(false);
    client.enable_deflate(true);
    client
        .push(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
        .expect("the RFC's compressed Hello");
    assert_eq!(
        client.next_message().and_then(|m| m.text()),
        Some("Hello".to_owned())
    );

    let text = "tincan ".repeat(100);
    for bits in [8, 12, 15] {
        let frame =
            encode_compressed(1, text.as_bytes(), bits, Some(vec![9, 8, 7, 6])).expect("ok");
        assert!(
            frame.len() < text.len() / 4,
            "window {bits}: {}",
            frame.len()
        );
        let mut server = Decoder::new(true);
        server.enable_deflate(false);
        for piece in frame.chunks(5) {
            server.push(piece).expect("valid");
        }
        assert_eq!(
            server.next_message().and_then(|m| m.text()),
            Some(text.clone())
        );
    }
}
