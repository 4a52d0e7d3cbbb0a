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
//!
//! Negotiation is always here; compressing and inflating (RFC 7692 §7.2) come with the crate's `deflate` feature, which adds
//! miniz_oxide. Without it a connection declines every offer and never
//! sends one, so an embedder that does not want compression links nothing
//! for it.

use crate::role::Role;

#[cfg(feature = "deflate")]
mod payload;
#[cfg(feature = "deflate")]
pub use payload::compress;
#[cfg(feature = "deflate")]
pub(crate) use payload::Inflater;
#[cfg(not(feature = "deflate"))]
pub(crate) use without::Inflater;

/// The extension's name in `Sec-WebSocket-Extensions`.
pub const NAME: &str = "permessage-deflate";

/// What a client offers.
pub const CLIENT_OFFER: &str =
    "permessage-deflate; client_no_context_takeover; client_max_window_bits";

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
    check_response_to(CLIENT_OFFER, values)
}

/// Client: [`check_response`] for the offers a client made in `offer` (a
/// `Sec-WebSocket-Extensions` value): the response must accept one of its
/// permessage-deflate offers as RFC 7692 lets a server accept it. With a
/// `server_no_context_takeover` or a `server_max_window_bits` the offer
/// named, the response names it too (§7.1.1.1; §7.1.2.1, at most the
/// offered value, though a window of 15 may go unnamed); a
/// `client_max_window_bits` the offer did not name, the response must not
/// name (§7.1.2.2), nor more than its value.
pub fn check_response_to<'a>(
    offer: &str,
    values: impl Iterator<Item = &'a str>,
) -> Option<DeflateParams> {
    let list = extensions(values);
    let [(name, params_list)] = list.as_slice() else {
        return None;
    };
    if !name.eq_ignore_ascii_case(NAME) {
        return None;
    }
    let p = params(params_list)?;
    let offers = extensions(std::iter::once(offer));
    let accepts = |o: &Params| {
        let server_bits = match (o.server_max_window_bits, p.server_max_window_bits) {
            (Some(offered), Some(bits)) => bits <= offered,
            // Unnamed is the largest window, 15: as offered only if 15.
            (Some(offered), None) => offered == 15,
            (None, _) => true,
        };
        let client_bits = match (o.client_max_window_bits, p.client_max_window_bits) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(None), Some(_)) => true,
            (Some(Some(offered)), Some(bits)) => bits.is_some_and(|b| b <= offered),
        };
        server_bits
            && client_bits
            && (p.server_no_context_takeover || !o.server_no_context_takeover)
    };
    let offered = offers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(NAME))
        .filter_map(|(_, list)| params(list))
        .any(|o| accepts(&o));
    if !offered {
        return None;
    }
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

/// Without the `deflate` feature nothing is ever negotiated, so a decoder
/// never holds an inflater: the type has no values, and the compiler checks
/// that no path reaches one.
#[cfg(not(feature = "deflate"))]
mod without {
    use crate::error::ProtocolError;

    #[derive(Debug)]
    pub(crate) enum Inflater {}

    impl Inflater {
        pub(crate) fn inflate(
            &mut self,
            _: &[u8],
            _: &mut impl FnMut(&[u8]) -> Result<(), ProtocolError>,
        ) -> Result<(), ProtocolError> {
            match *self {}
        }

        pub(crate) fn finish(
            &mut self,
            _: &mut impl FnMut(&[u8]) -> Result<(), ProtocolError>,
        ) -> Result<(), ProtocolError> {
            match *self {}
        }

        pub(crate) fn release(&mut self) -> bool {
            match *self {}
        }

        pub(crate) fn held(&self) -> usize {
            match *self {}
        }
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

    #[test]
    fn a_response_must_accept_an_offer_the_client_made() {
        let check = |offer: &str, response: &str| {
            check_response_to(offer, std::iter::once(response)).is_some()
        };
        let plain = "permessage-deflate";
        assert!(check(plain, "permessage-deflate"));
        assert!(check(
            plain,
            "permessage-deflate; server_no_context_takeover"
        ));
        assert!(check(
            plain,
            "permessage-deflate; server_max_window_bits=10"
        ));
        // §7.1.2.2: not offered, so not in the response.
        assert!(!check(
            plain,
            "permessage-deflate; client_max_window_bits=10"
        ));
        assert!(!check("x-custom", "permessage-deflate"), "never offered");
        let bits = "permessage-deflate; client_max_window_bits=10; server_max_window_bits=12";
        assert!(check(
            bits,
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=9"
        ));
        // §7.1.2.1: the offered server window is named, at most as large.
        assert!(!check(bits, "permessage-deflate; client_max_window_bits=9"));
        assert!(!check(
            bits,
            "permessage-deflate; server_max_window_bits=13"
        ));
        assert!(!check(
            bits,
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=11"
        ));
        let full = "permessage-deflate; server_max_window_bits=15";
        assert!(check(full, "permessage-deflate"), "15 goes unnamed");
        // §7.1.1.1: an offered server_no_context_takeover is accepted by name.
        let nct = "permessage-deflate; server_no_context_takeover";
        assert!(!check(nct, "permessage-deflate"));
        assert!(check(nct, "permessage-deflate; server_no_context_takeover"));
        // Any of several offers.
        let two = "permessage-deflate; server_no_context_takeover, permessage-deflate";
        assert!(check(two, "permessage-deflate"));
    }
}
