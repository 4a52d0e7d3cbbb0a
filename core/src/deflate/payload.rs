//! Compressing and inflating message payloads (RFC 7692 §7.2), on
//! miniz_oxide: what the `deflate` feature adds to negotiation.

use std::cell::RefCell;

use miniz_oxide::deflate::core::{compress_to_output, CompressionStrategy, CompressorOxide};
use miniz_oxide::deflate::core::{TDEFLFlush, TDEFLStatus};
use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use crate::error::ProtocolError;

/// §7.2.1: the tail a sync flush leaves, removed from every message and put
/// back before inflating it.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The compression level: 1, miniz's fast greedy mode (libwebsockets uses
/// 1 too). On a 134-byte chat line it gives 115 bytes where zlib's default
/// 6 gives 114, and on Autobahn's 131072-byte 12.3 messages it takes a
/// quarter of the server CPU (3.0 s against 13.0 s for case 12.3.10).
const LEVEL: u8 = 1;

/// Compresses one message on its own (no context from earlier ones) with a
/// window of at most `2^window_bits` bytes, without the §7.2.1 tail.
///
/// Under 15 bits the message is compressed in independent pieces of at most
/// one window each (the compressor reset between them), so no match can
/// reach further back than the window: the output is valid for any window
/// from 8 bits, which zlib-style compressors cannot produce (§7.1.2.1).
///
/// The compressor is the thread's own, made at its first message and reset
/// after each one, as uWebSockets shares one per event loop: making one
/// allocates and zeroes about 300 KB.
pub fn compress(payload: &[u8], window_bits: u8, out: &mut Vec<u8>) {
    let compressed = COMPRESSOR.try_with(|slot| {
        let mut slot = slot.borrow_mut();
        let compressor = slot.get_or_insert_with(new_compressor);
        compress_with(compressor, payload, window_bits, out);
        compressor.reset();
    });
    // Only while the thread is being torn down.
    if compressed.is_err() {
        compress_with(&mut new_compressor(), payload, window_bits, out);
    }
}

std::thread_local! {
    /// One compressor per thread, as uWebSockets shares one per event loop.
    /// Making one allocates and zeroes about 300 KB: 15 µs for a chat line
    /// in `cargo bench --bench deflate`, and about 100 µs where the
    /// allocator maps fresh pages for it; a reset costs about 9 µs. Each
    /// message is compressed on its own, so nothing carries over between
    /// messages and the output is the same as from a new compressor.
    static COMPRESSOR: RefCell<Option<Box<CompressorOxide>>> = const { RefCell::new(None) };
}

fn new_compressor() -> Box<CompressorOxide> {
    Box::new(CompressorOxide::with_params(
        DataFormat::Raw,
        LEVEL,
        CompressionStrategy::Default,
        15,
    ))
}

fn compress_with(
    compressor: &mut CompressorOxide,
    payload: &[u8],
    window_bits: u8,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    let piece_len = match window_bits {
        15.. => payload.len().max(1),
        bits => 1 << bits.max(8),
    };
    let mut pieces = payload.chunks(piece_len).peekable();
    if pieces.peek().is_none() {
        sync_flush(compressor, &[], out);
    }
    for (i, piece) in pieces.enumerate() {
        if i > 0 {
            compressor.reset();
        }
        sync_flush(compressor, piece, out);
    }
    if out[start..].ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
}

/// Compresses `input` and ends with a sync flush: byte-aligned, no final
/// block, so more may follow.
fn sync_flush(compressor: &mut CompressorOxide, input: &[u8], out: &mut Vec<u8>) {
    let (status, _) = compress_to_output(compressor, input, TDEFLFlush::Sync, |bytes| {
        out.extend_from_slice(bytes);
        true
    });
    debug_assert_eq!(status, TDEFLStatus::Okay);
}

/// Inflates compressed messages as their frames arrive, into a sink that
/// bounds them. Its state (a 32 KiB window and tables) is made at the first
/// compressed message. When the peer compresses each message on its own,
/// the state is reset between messages (not remade: that would cost an
/// allocation and 43 KiB of zeroing per message) and can be released while
/// the connection is idle ([`Inflater::release`]).
pub(crate) struct Inflater {
    state: Option<Box<InflateState>>,
    keep_context: bool,
}

/// Bytes inflated at a time before they go to the sink.
const INFLATE_CHUNK: usize = 16 * 1024;

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("held", &self.held())
            .field("keep_context", &self.keep_context)
            .finish()
    }
}

impl Inflater {
    pub(crate) fn new(keep_context: bool) -> Self {
        Self {
            state: None,
            keep_context,
        }
    }

    /// Inflates the next compressed bytes of the message, handing what they
    /// give to `sink` in pieces (which refuses a message past its limit
    /// before the next piece is made).
    pub(crate) fn inflate(
        &mut self,
        mut input: &[u8],
        sink: &mut impl FnMut(&[u8]) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        let state = self
            .state
            .get_or_insert_with(|| InflateState::new_boxed(DataFormat::Raw));
        let mut chunk = [0u8; INFLATE_CHUNK];
        loop {
            let result = inflate(state, input, &mut chunk, MZFlush::None);
            input = &input[result.bytes_consumed..];
            if result.bytes_written > 0 {
                sink(&chunk[..result.bytes_written])?;
            }
            match result.status {
                Ok(MZStatus::StreamEnd) => {
                    // A final block (§7.2.3.4 allows BFINAL): what follows
                    // starts afresh, without the old window.
                    state.reset(DataFormat::Raw);
                    if input.is_empty() {
                        return Ok(());
                    }
                }
                Ok(_) if input.is_empty() && result.bytes_written < chunk.len() => return Ok(()),
                Ok(_) => {}
                Err(MZError::Buf) if input.is_empty() => return Ok(()),
                Err(_) => return Err(ProtocolError::InvalidCompressedData),
            }
        }
    }

    /// Ends a message: inflates the §7.2.2 tail, and forgets the window if
    /// the peer does not use it.
    pub(crate) fn finish(
        &mut self,
        sink: &mut impl FnMut(&[u8]) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        self.inflate(&TAIL, sink)?;
        if let Some(state) = self.state.as_mut().filter(|_| !self.keep_context) {
            state.reset(DataFormat::Raw);
        }
        Ok(())
    }

    /// Drops the state between messages if nothing refers back to it (the
    /// peer compresses each message on its own); returns whether it did.
    pub(crate) fn release(&mut self) -> bool {
        !self.keep_context && self.state.take().is_some()
    }

    /// Bytes held: the inflate state, if there is one.
    pub(crate) fn held(&self) -> usize {
        self.state
            .as_ref()
            .map_or(0, |_| std::mem::size_of::<InflateState>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7692 §7.2.3.1 and §7.2.3.2: "Hello" compressed, and the same as
    /// a stored block, both inflate to "Hello".
    #[test]
    fn rfc_7692_7_2_3_examples_inflate() {
        for compressed in [
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..],
            &[
                0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ],
        ] {
            let mut inflater = Inflater::new(false);
            let mut out = Vec::new();
            let mut sink = |b: &[u8]| {
                out.extend_from_slice(b);
                Ok(())
            };
            inflater.inflate(compressed, &mut sink).expect("valid");
            inflater.finish(&mut sink).expect("valid");
            assert_eq!(out, b"Hello");
            assert!(inflater.release(), "no context to keep");
            assert_eq!(inflater.held(), 0);
        }
    }

    /// §7.2.3.2: with context takeover, a second "Hello" may refer back to
    /// the first.
    #[test]
    fn rfc_7692_7_2_3_2_context_takeover() {
        let mut inflater = Inflater::new(true);
        let mut out = Vec::new();
        let mut sink = |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        };
        inflater
            .inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut sink)
            .expect("first");
        inflater.finish(&mut sink).expect("first");
        inflater
            .inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], &mut sink)
            .expect("second");
        inflater.finish(&mut sink).expect("second");
        assert_eq!(out, b"HelloHello");
        assert!(inflater.held() > 32 * 1024, "the window is kept");
    }

    #[test]
    fn every_window_round_trips() {
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("message {} of the chat; ", i % 97).into_bytes())
            .collect();
        for bits in 8..=15 {
            let mut compressed = Vec::new();
            compress(&text, bits, &mut compressed);
            assert!(
                compressed.len() < text.len() / 2,
                "{bits}: {}",
                compressed.len()
            );
            let mut inflater = Inflater::new(false);
            let mut out = Vec::new();
            let mut sink = |b: &[u8]| {
                out.extend_from_slice(b);
                Ok(())
            };
            inflater.inflate(&compressed, &mut sink).expect("valid");
            inflater.finish(&mut sink).expect("valid");
            assert_eq!(out, text, "window bits {bits}");
        }
        let mut empty = Vec::new();
        compress(b"", 15, &mut empty);
        let mut inflater = Inflater::new(false);
        let mut out = Vec::new();
        let mut sink = |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        };
        inflater.inflate(&empty, &mut sink).expect("valid");
        inflater.finish(&mut sink).expect("valid");
        assert!(out.is_empty());
    }

    /// Under 15 bits, each window-sized piece is compressed on its own: no
    /// match reaches back past the window, which a peer's small-window
    /// inflater would reject ("invalid distance too far back").
    #[test]
    fn small_windows_compress_pieces_on_their_own() {
        let text: Vec<u8> = (0..5000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for bits in 8..15u8 {
            let mut whole = Vec::new();
            compress(&text, bits, &mut whole);
            let mut pieces = Vec::new();
            for piece in text.chunks(1 << bits) {
                let mut compressor = CompressorOxide::with_params(
                    DataFormat::Raw,
                    LEVEL,
                    CompressionStrategy::Default,
                    15,
                );
                sync_flush(&mut compressor, piece, &mut pieces);
            }
            pieces.truncate(pieces.len() - TAIL.len());
            assert_eq!(whole, pieces, "window bits {bits}");
        }
    }

    /// The thread's compressor, used before for other messages (one cut
    /// into 256-byte pieces), gives what a new compressor gives.
    #[test]
    fn a_reused_compressor_gives_what_a_new_one_gives() {
        let text: Vec<u8> = (0..5000u32)
            .flat_map(|i| format!("line {} of the chat; ", i % 97).into_bytes())
            .collect();
        let fresh = |payload: &[u8], bits| {
            let mut out = Vec::new();
            compress_with(&mut new_compressor(), payload, bits, &mut out);
            out
        };
        for (payload, bits) in [
            (&text[..], 8),
            (&text[..3000], 15),
            (b"Hello", 15),
            (b"", 15),
        ] {
            let mut reused = Vec::new();
            compress(payload, bits, &mut reused);
            assert_eq!(
                reused,
                fresh(payload, bits),
                "{} bytes, {bits} bits",
                payload.len()
            );
        }
    }

    #[test]
    fn a_zip_bomb_stops_at_the_limit() {
        // 100 MB of zeros compress to about 100 KB at the best level, as
        // an attacker would make them.
        let zeros = vec![0u8; 100 << 20];
        let bomb = miniz_oxide::deflate::compress_to_vec(&zeros, 10);
        assert!(bomb.len() < 200 << 10, "{}", bomb.len());
        let limit = 1 << 20;
        let mut inflater = Inflater::new(false);
        let mut total = 0usize;
        let mut peak = 0usize;
        let mut sink = |b: &[u8]| {
            peak = peak.max(b.len());
            if total + b.len() > limit {
                return Err(ProtocolError::MessageTooBig {
                    size: (total + b.len()) as u64,
                    limit,
                });
            }
            total += b.len();
            Ok(())
        };
        let result = inflater.inflate(&bomb, &mut sink);
        assert!(matches!(result, Err(ProtocolError::MessageTooBig { .. })));
        assert!(total <= limit && peak <= INFLATE_CHUNK);
    }

    #[test]
    fn garbage_is_invalid_compressed_data() {
        let mut inflater = Inflater::new(false);
        let mut sink = |_: &[u8]| Ok(());
        assert_eq!(
            inflater.inflate(&[0xff; 8], &mut sink),
            Err(ProtocolError::InvalidCompressedData)
        );
    }
}
