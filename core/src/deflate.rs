//! permessage-deflate (RFC 7692): negotiating it in the opening handshake
//! (§5, §7.1) and compressing and inflating messages (§7.2).
//!
//! The server's choices keep memory per connection small:
//!
//! - it always answers with `server_no_context_takeover` (§7.1.1.1 allows it
//!   even when not offered), so it keeps no compressor per connection: each
//!   message is compressed on its own, and a broadcast
//!   ([`PreparedMessage`](crate::PreparedMessage)) once for every recipient;
//! - it answers `client_no_context_takeover` when the client offers it, and
//!   then holds inflate state only while a compressed message is arriving;
//!   otherwise (§7.1.1.2: the client keeps its context) the state is made at
//!   the first compressed message and kept, about 43 KiB;
//! - it honours `server_max_window_bits` 8–15: a smaller window compresses
//!   each window-sized piece of a message on its own (see [`compress`]).
//!
//! A client offers `permessage-deflate; client_no_context_takeover;
//! client_max_window_bits` and compresses every message on its own too.

use miniz_oxide::deflate::core::{compress_to_output, CompressionStrategy, CompressorOxide};
use miniz_oxide::deflate::core::{TDEFLFlush, TDEFLStatus};
use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use crate::error::ProtocolError;
use crate::role::Role;

/// The extension's name in `Sec-WebSocket-Extensions`.
pub const NAME: &str = "permessage-deflate";

/// What a client offers.
pub const CLIENT_OFFER: &str =
    "permessage-deflate; client_no_context_takeover; client_max_window_bits";

/// §7.2.1: the tail a sync flush leaves, removed from every message and put
/// back before inflating it.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The compression level: zlib's default, a good ratio on chat text.
const LEVEL: u8 = 6;

/// The parameters both ends agreed on (§7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server compresses each message on its own (§7.1.1.1).
    pub server_no_context_takeover: bool,
    /// The client compresses each message on its own (§7.1.1.2).
    pub client_no_context_takeover: bool,
    /// The largest window the server's compressor may use, 8–15 (§7.1.2.1).
    pub server_max_window_bits: u8,
    /// The largest window the client's compressor may use, 8–15 (§7.1.2.2).
    pub client_max_window_bits: u8,
}

impl DeflateParams {
    /// The window `role` may compress with.
    pub fn send_window_bits(&self, role: Role) -> u8 {
        match role {
            Role::Server => self.server_max_window_bits,
            Role::Client => self.client_max_window_bits,
        }
    }

    /// Whether `role` may forget its inflate state between messages: the
    /// peer compresses each message on its own.
    pub fn receive_without_context(&self, role: Role) -> bool {
        match role {
            Role::Server => self.client_no_context_takeover,
            Role::Client => self.server_no_context_takeover,
        }
    }

    /// The `Sec-WebSocket-Extensions` value of a server's response.
    pub fn response(&self) -> String {
        let mut out = String::from(NAME);
        if self.server_no_context_takeover {
            out.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            out.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < 15 {
            out.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        if self.client_max_window_bits < 15 {
            out.push_str(&format!(
                "; client_max_window_bits={}",
                self.client_max_window_bits
            ));
        }
        out
    }
}

/// One extension of a `Sec-WebSocket-Extensions` list (RFC 6455 §9.1): its
/// name and parameters, values unquoted.
type Extension<'a> = (&'a str, Vec<(&'a str, Option<&'a str>)>);

/// Splits header values into extensions. An element that does not parse is
/// left out: it cannot be accepted anyway.
fn extensions<'a>(values: impl Iterator<Item = &'a str>) -> Vec<Extension<'a>> {
    let mut out = Vec::new();
    for element in values.flat_map(|v| v.split(',')) {
        let mut parts = element.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        if name.is_empty() {
            continue;
        }
        let params: Option<Vec<_>> = parts
            .map(|param| match param.split_once('=') {
                None => Some((param, None)),
                Some((key, value)) => {
                    let value = value.trim();
                    let value = value
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or(value);
                    (!value.is_empty()).then_some((key.trim(), Some(value)))
                }
            })
            .collect();
        if let Some(params) = params {
            out.push((name, params));
        }
    }
    out
}

/// A window size parameter's value: 8–15 in decimal digits (§7.1.2).
fn window_bits(value: &str) -> Option<u8> {
    if !value.bytes().all(|b| b.is_ascii_digit()) || value.len() > 2 || value.starts_with('0') {
        return None;
    }
    value.parse().ok().filter(|bits| (8..=15).contains(bits))
}

/// The parameters of one offer or response, if they are all known, valid
/// and not repeated (§7.1: otherwise the offer is declined, or the
/// response fails the connection). `None` values of the window sizes mean
/// "named without a value".
#[derive(Default)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: Option<Option<u8>>,
}

fn params(list: &[(&str, Option<&str>)]) -> Option<Params> {
    let mut p = Params::default();
    for &(name, value) in list {
        match (name.to_ascii_lowercase().as_str(), value) {
            ("server_no_context_takeover", None) if !p.server_no_context_takeover => {
                p.server_no_context_takeover = true
            }
            ("client_no_context_takeover", None) if !p.client_no_context_takeover => {
                p.client_no_context_takeover = true
            }
            ("server_max_window_bits", Some(v)) if p.server_max_window_bits.is_none() => {
                p.server_max_window_bits = Some(window_bits(v)?)
            }
            ("client_max_window_bits", v) if p.client_max_window_bits.is_none() => {
                // Named alone, or with a valid value.
                p.client_max_window_bits = Some(match v {
                    None => None,
                    Some(v) => Some(window_bits(v)?),
                })
            }
            _ => return None,
        }
    }
    Some(p)
}

/// Server: the parameters for the first acceptable permessage-deflate offer
/// among the values of the request's `Sec-WebSocket-Extensions` headers
/// (§5.1, §7.1). Other extensions, and offers with unknown, repeated or
/// invalid parameters, are declined.
pub fn negotiate<'a>(values: impl Iterator<Item = &'a str>) -> Option<DeflateParams> {
    extensions(values)
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(NAME))
        .find_map(|(_, list)| params(list))
        .map(|offer| DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: offer.client_no_context_takeover,
            server_max_window_bits: offer.server_max_window_bits.unwrap_or(15),
            // The client's window is its own business: our inflater reads any.
            client_max_window_bits: 15,
        })
}

/// Client: the parameters of a server's response to [`CLIENT_OFFER`], or
/// `None` if it is not a valid acceptance of it (§7.1: the client fails the
/// connection).
pub fn check_response<'a>(values: impl Iterator<Item = &'a str>) -> Option<DeflateParams> {
    let list = extensions(values);
    let [(name, params_list)] = list.as_slice() else {
        return None;
    };
    if !name.eq_ignore_ascii_case(NAME) {
        return None;
    }
    let p = params(params_list)?;
    Some(DeflateParams {
        server_no_context_takeover: p.server_no_context_takeover,
        client_no_context_takeover: p.client_no_context_takeover,
        server_max_window_bits: p.server_max_window_bits.unwrap_or(15),
        // §7.1.2.2: a response names the client's window with a value.
        client_max_window_bits: match p.client_max_window_bits {
            None => 15,
            Some(Some(bits)) => bits,
            Some(None) => return None,
        },
    })
}

/// Compresses one message on its own (no context from earlier ones) with a
/// window of at most `2^window_bits` bytes, without the §7.2.1 tail.
///
/// Under 15 bits the message is compressed in independent pieces of at most
/// one window each (the compressor reset between them), so no match can
/// reach further back than the window: the output is valid for any window
/// from 8 bits, which zlib-style compressors cannot produce (§7.1.2.1).
pub fn compress(payload: &[u8], window_bits: u8, out: &mut Vec<u8>) {
    let mut compressor =
        CompressorOxide::with_params(DataFormat::Raw, LEVEL, CompressionStrategy::Default, 15);
    let start = out.len();
    let piece_len = match window_bits {
        15.. => payload.len().max(1),
        bits => 1 << bits.max(8),
    };
    let mut pieces = payload.chunks(piece_len).peekable();
    if pieces.peek().is_none() {
        sync_flush(&mut compressor, &[], out);
    }
    for (i, piece) in pieces.enumerate() {
        if i > 0 {
            compressor.reset();
        }
        sync_flush(&mut compressor, piece, out);
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

    fn negotiated(offer: &str) -> Option<String> {
        negotiate(std::iter::once(offer)).map(|p| p.response())
    }

    #[test]
    fn offers_are_accepted_declined_or_skipped() {
        let ok = "permessage-deflate; server_no_context_takeover";
        for (offer, response) in [
            ("permessage-deflate", Some(ok.to_owned())),
            ("PerMessage-Deflate", Some(ok.to_owned())),
            (
                "permessage-deflate; client_max_window_bits",
                Some(ok.to_owned()),
            ),
            (
                "permessage-deflate; client_no_context_takeover",
                Some(format!("{ok}; client_no_context_takeover")),
            ),
            (
                "permessage-deflate; server_max_window_bits=10",
                Some(format!("{ok}; server_max_window_bits=10")),
            ),
            (
                "permessage-deflate; server_max_window_bits=\"8\"",
                Some(format!("{ok}; server_max_window_bits=8")),
            ),
            // Unknown extensions are ignored; the first acceptable offer wins.
            ("x-webkit-deflate-frame, permessage-deflate", Some(ok.to_owned())),
            (
                "permessage-deflate; server_max_window_bits=7, permessage-deflate; client_no_context_takeover",
                Some(format!("{ok}; client_no_context_takeover")),
            ),
            // Declined: bad values, values where none belong, repeats, unknowns.
            ("permessage-deflate; server_max_window_bits=16", None),
            ("permessage-deflate; server_max_window_bits=08", None),
            ("permessage-deflate; server_max_window_bits", None),
            ("permessage-deflate; client_max_window_bits=7", None),
            ("permessage-deflate; server_no_context_takeover=1", None),
            ("permessage-deflate; client_no_context_takeover; client_no_context_takeover", None),
            ("permessage-deflate; mystery", None),
            ("x-other", None),
            ("", None),
        ] {
            assert_eq!(negotiated(offer), response, "{offer:?}");
        }
        // Offers spread over several header fields are one list.
        let values = ["x-a", "permessage-deflate; client_no_context_takeover"];
        assert!(negotiate(values.into_iter()).is_some());
    }

    #[test]
    fn responses_to_our_offer_are_checked() {
        let check = |v: &str| check_response(std::iter::once(v));
        assert_eq!(
            check("permessage-deflate; server_no_context_takeover; client_max_window_bits=9"),
            Some(DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: false,
                server_max_window_bits: 15,
                client_max_window_bits: 9,
            })
        );
        for bad in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate, permessage-deflate",
            "x-other",
            "permessage-deflate; server_max_window_bits=99",
            "permessage-deflate; foo",
        ] {
            assert_eq!(check(bad), None, "{bad:?}");
        }
    }

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

    #[test]
    fn a_zip_bomb_stops_at_the_limit() {
        // 100 MB of zeros compress to about 100 KB.
        let zeros = vec![0u8; 100 << 20];
        let mut bomb = Vec::new();
        compress(&zeros, 15, &mut bomb);
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
