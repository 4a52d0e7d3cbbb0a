//! The frame decoder, for both roles:
//! - agrees with an obviously correct reference decoder on every verdict
//!   (need more, each error, each header field, the header length);
//! - every header it accepts encodes back to exactly the bytes it read;
//! - a stream fed to a connection in two pieces gives the same events and the
//!   same output as the stream fed whole;
//! - the standalone codec's `FrameDecoder` gives the same frames (headers and
//!   payload bytes) and the same error whatever the split, and every byte it
//!   takes is accounted for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_core::codec::{FrameDecoder, FramePiece};
use tincan_core::{Config, Connection, FrameHeader, ProtocolError, Role};
use tincan_fuzz::{reference_decode, Reference};

fn run(role: Role, pieces: &[&[u8]]) -> (Vec<tincan_core::Event>, Vec<u8>) {
    let config = Config {
        max_frame_size: 1 << 16,
        max_message_size: 1 << 17,
        ..Config::default()
    };
    let mut conn = Connection::open(role, config);
    let mut events = Vec::new();
    for piece in pieces {
        conn.receive(piece);
        events.extend(std::iter::from_fn(|| conn.poll_event()));
    }
    let mut out = Vec::new();
    while let Some(bytes) = conn.poll_transmit() {
        out.extend_from_slice(bytes);
        let n = bytes.len();
        conn.advance(n);
    }
    (events, out)
}

type Frames = (Vec<(FrameHeader, Vec<u8>)>, Option<ProtocolError>);

/// Every frame the codec finds in `pieces`, with its payload gathered.
fn frames(role: Role, pieces: &[&[u8]]) -> Frames {
    let mut decoder = FrameDecoder::new(role, 1 << 16);
    let mut found: Vec<(FrameHeader, Vec<u8>)> = Vec::new();
    for piece in pieces {
        let mut input = *piece;
        loop {
            let before = input.len();
            match decoder.decode(&mut input) {
                Ok(Some(FramePiece::Header(header))) => found.push((header, Vec::new())),
                Ok(Some(FramePiece::Payload { bytes, offset, end })) => {
                    assert_eq!(before - input.len(), bytes.len(), "payload bytes taken");
                    let (header, payload) = found.last_mut().expect("a header first");
                    assert_eq!(offset, payload.len() as u64);
                    payload.extend_from_slice(bytes);
                    assert_eq!(end, payload.len() as u64 == header.payload_len);
                }
                Ok(None) => {
                    assert!(input.is_empty(), "None leaves nothing unread");
                    break;
                }
                Err(e) => return (found, Some(e)),
            }
        }
    }
    (found, None)
}

fuzz_target!(|input: (u16, Vec<u8>)| {
    let (split, bytes) = input;
    let decoded = FrameHeader::decode(&bytes);
    match (reference_decode(&bytes), &decoded) {
        (Reference::NeedMore, Ok(None)) => {}
        (Reference::ReservedOpcode(a), Err(ProtocolError::ReservedOpcode(b))) => assert_eq!(a, *b),
        (Reference::HighBit, Err(ProtocolError::LengthHighBit)) => {}
        (Reference::NonMinimal, Err(ProtocolError::NonMinimalLength)) => {}
        (
            Reference::Header {
                fin,
                rsv,
                opcode,
                mask,
                len,
                header_len,
            },
            Ok(Some((h, n))),
        ) => {
            assert_eq!(
                (h.fin, h.rsv, h.opcode.as_u8(), h.mask, h.payload_len),
                (fin, rsv, opcode, mask, len)
            );
            assert_eq!(*n, header_len);
            let mut encoded = Vec::new();
            h.encode(&mut encoded);
            assert_eq!(encoded, bytes[..*n], "re-encoding differs");
            for role in [Role::Server, Role::Client] {
                let expected_ok = rsv == 0
                    && (role == Role::Server) == mask.is_some()
                    && (opcode < 8 || (fin && len <= 125));
                assert_eq!(h.validate(role).is_ok(), expected_ok, "{role:?} {h:?}");
            }
        }
        (reference, core) => panic!("reference {reference:?} but core {core:?}"),
    }

    let split = usize::from(split).min(bytes.len());
    for role in [Role::Server, Role::Client] {
        let whole = run(role, &[&bytes]);
        let halves = run(role, &[&bytes[..split], &bytes[split..]]);
        assert_eq!(
            whole, halves,
            "{role:?}: the split at {split} changed the outcome"
        );
        assert_eq!(
            frames(role, &[&bytes]),
            frames(role, &[&bytes[..split], &bytes[split..]]),
            "{role:?}: the split at {split} changed the codec's frames"
        );
    }
});
