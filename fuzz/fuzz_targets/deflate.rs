//! permessage-deflate (RFC 7692) on its own:
//! - arbitrary `Sec-WebSocket-Extensions` values never panic the server's
//!   negotiation or the client's check, and whatever a server answers, the
//!   client's check reads back as the same parameters;
//! - any payload compressed with any window (8–15) inflates back to itself,
//!   across an arbitrary split of the compressed frame;
//! - arbitrary bytes as a compressed message inflate or fail with a protocol
//!   error, never past the message limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_core::codec::{Decoded, Limits, MessageDecoder};
use tincan_core::deflate::{check_response, compress, negotiate};
use tincan_core::frame::{encode_frame_header, FrameHeader};
use tincan_core::{Message, OpCode, Role};

const LIMIT: usize = 1 << 16;

/// A server-to-client frame with RSV1 set, its payload `compressed`.
fn compressed_frame(compressed: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        rsv: 0b100,
        ..FrameHeader::new(OpCode::Binary, compressed.len() as u64)
    };
    let mut out = Vec::new();
    encode_frame_header(&mut out, header, compressed);
    out
}

fn decode(pieces: &[&[u8]]) -> Result<Vec<Decoded>, tincan_core::ProtocolError> {
    let limits = Limits {
        max_frame_size: LIMIT,
        max_message_size: LIMIT,
    };
    let mut decoder = MessageDecoder::new(Role::Client, limits);
    decoder.enable_deflate(true);
    let mut out = Vec::new();
    for piece in pieces {
        let mut input = *piece;
        while let Some(decoded) = decoder.decode(&mut input)? {
            out.push(decoded);
        }
        assert!(decoder.buffered() <= LIMIT + 64 * 1024);
    }
    Ok(out)
}

fuzz_target!(|input: (String, u8, u16, Vec<u8>)| {
    let (offer, bits, split, payload) = input;

    if let Some(params) = negotiate(std::iter::once(offer.as_str())) {
        let answer = params.response();
        assert_eq!(
            check_response(std::iter::once(answer.as_str())),
            Some(params),
            "{answer}"
        );
    }
    let _ = check_response(std::iter::once(offer.as_str()));

    let bits = 8 + bits % 8;
    let mut compressed = Vec::new();
    compress(&payload, bits, &mut compressed);
    let frame = compressed_frame(&compressed);
    if frame.len() <= LIMIT {
        let at = usize::from(split).min(frame.len());
        let got = decode(&[&frame[..at], &frame[at..]]);
        if payload.len() <= LIMIT {
            assert_eq!(
                got,
                Ok(vec![Decoded::Message(Message::Binary(payload.clone()))])
            );
        } else {
            assert!(got.is_err());
        }
    }

    // The payload itself as compressed data: inflates or fails, in bounds.
    if payload.len() <= LIMIT {
        let _ = decode(&[&compressed_frame(&payload)]);
    }
});
