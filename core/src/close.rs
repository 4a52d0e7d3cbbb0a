//! Close codes and close frame payloads (RFC 6455 §5.5.1, §7.4).

use crate::utf8::Utf8Validator;

/// A close status code (§7.4.1).
///
/// Codes that never appear on the wire (1005, 1006, 1015) exist only so that
/// a connection can report how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: the purpose of the connection was fulfilled.
    Normal,
    /// 1001: an endpoint is going away (server shutdown, page navigation).
    GoingAway,
    /// 1002: the peer broke the protocol.
    ProtocolError,
    /// 1003: a kind of data the endpoint cannot accept.
    Unsupported,
    /// 1005: the close frame carried no status code. Never sent.
    NoStatus,
    /// 1006: the connection ended without a close frame. Never sent.
    Abnormal,
    /// 1007: message data was not consistent with its type (bad UTF-8).
    InvalidPayload,
    /// 1008: a message violated the endpoint's policy.
    PolicyViolation,
    /// 1009: a message was too big to process.
    TooBig,
    /// 1010: the client expected an extension the server did not negotiate.
    MandatoryExtension,
    /// 1011: the server met an unexpected condition.
    InternalError,
    /// Any other code; only 3000–4999 are valid on the wire.
    Other(u16),
}

impl CloseCode {
    /// The numeric code.
    pub fn as_u16(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::GoingAway => 1001,
            Self::ProtocolError => 1002,
            Self::Unsupported => 1003,
            Self::NoStatus => 1005,
            Self::Abnormal => 1006,
            Self::InvalidPayload => 1007,
            Self::PolicyViolation => 1008,
            Self::TooBig => 1009,
            Self::MandatoryExtension => 1010,
            Self::InternalError => 1011,
            Self::Other(code) => code,
        }
    }

    /// Whether a peer may send this code in a close frame (§7.4.1, §7.4.2):
    /// 1000–1003, 1007–1011 and 3000–4999.
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.as_u16(), 1000..=1003 | 1007..=1011 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        match code {
            1000 => Self::Normal,
            1001 => Self::GoingAway,
            1002 => Self::ProtocolError,
            1003 => Self::Unsupported,
            1005 => Self::NoStatus,
            1006 => Self::Abnormal,
            1007 => Self::InvalidPayload,
            1008 => Self::PolicyViolation,
            1009 => Self::TooBig,
            1010 => Self::MandatoryExtension,
            1011 => Self::InternalError,
            other => Self::Other(other),
        }
    }
}

impl std::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_u16())
    }
}

/// Why a received close frame payload is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CloseFrameError {
    /// A one-byte payload cannot hold a status code (§5.5.1).
    #[error("close frame payload of 1 byte")]
    Truncated,
    /// A code that must not be sent (§7.4.1, §7.4.2).
    #[error("invalid close code {0}")]
    InvalidCode(u16),
    /// The reason is not UTF-8 (§5.5.1).
    #[error("close reason is not valid UTF-8")]
    InvalidReason,
}

impl CloseFrameError {
    /// The variant's name, e.g. `InvalidCode`.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Truncated => "Truncated",
            Self::InvalidCode(_) => "InvalidCode",
            Self::InvalidReason => "InvalidReason",
        }
    }

    /// The code with which a receiver fails the connection.
    pub fn close_code(self) -> CloseCode {
        match self {
            Self::InvalidReason => CloseCode::InvalidPayload,
            Self::Truncated | Self::InvalidCode(_) => CloseCode::ProtocolError,
        }
    }
}

/// Reads a close frame payload: an optional code and a UTF-8 reason (§5.5.1).
///
/// An empty payload means "no status code" and reads as [`CloseCode::NoStatus`].
pub fn parse_close_payload(payload: &[u8]) -> Result<(CloseCode, String), CloseFrameError> {
    match payload {
        [] => Ok((CloseCode::NoStatus, String::new())),
        [_] => Err(CloseFrameError::Truncated),
        [hi, lo, reason @ ..] => {
            let code = CloseCode::from(u16::from_be_bytes([*hi, *lo]));
            if !code.is_valid_on_wire() {
                return Err(CloseFrameError::InvalidCode(code.as_u16()));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| CloseFrameError::InvalidReason)?;
            Ok((code, reason.to_owned()))
        }
    }
}

/// Writes a close frame payload. [`CloseCode::NoStatus`] gives an empty payload.
///
/// The reason is cut at a character boundary so that the payload fits the
/// 125 bytes of a control frame (§5.5).
pub fn close_payload(code: CloseCode, reason: &str, out: &mut Vec<u8>) {
    if code == CloseCode::NoStatus {
        return;
    }
    out.extend_from_slice(&code.as_u16().to_be_bytes());
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&reason.as_bytes()[..end]);
    debug_assert!(Utf8Validator::new().feed(&out[2..]).is_ok());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code from 0 to 65535, written out from RFC 6455 §7.4.1 and
    /// §7.4.2 and the IANA "WebSocket Close Code Number Registry", with the
    /// verdict a receiver gives it. Independent of the implementation: ranges
    /// and single codes, each with its source, not the expression the code
    /// uses.
    const CLOSE_CODES: &[(u16, u16, bool, &str)] = &[
        (0, 999, false, "§7.4.2: not used"),
        (1000, 1000, true, "§7.4.1: normal closure"),
        (1001, 1001, true, "§7.4.1: going away"),
        (1002, 1002, true, "§7.4.1: protocol error"),
        (1003, 1003, true, "§7.4.1: unsupported data"),
        (1004, 1004, false, "§7.4.1: reserved, meaning to be defined"),
        (1005, 1005, false, "§7.4.1: no status, never sent"),
        (1006, 1006, false, "§7.4.1: abnormal, never sent"),
        (1007, 1007, true, "§7.4.1: invalid frame payload data"),
        (1008, 1008, true, "§7.4.1: policy violation"),
        (1009, 1009, true, "§7.4.1: message too big"),
        (1010, 1010, true, "§7.4.1: mandatory extension"),
        (1011, 1011, true, "§7.4.1: internal error"),
        // Registered by IANA after RFC 6455 (service restart, try again
        // later, bad gateway), defined by no RFC: refused as §7.4.2 reserves
        // 1000-2999 for the protocol's own revisions, and as Autobahn's
        // case 7.9.x expects.
        (1012, 1014, false, "IANA only: restart, try later, gateway"),
        (1015, 1015, false, "§7.4.1: TLS failure, never sent"),
        (1016, 2999, false, "§7.4.2: reserved for the protocol"),
        (3000, 3999, true, "§7.4.2: libraries (IANA registered)"),
        (4000, 4999, true, "§7.4.2: private use by applications"),
        (5000, u16::MAX, false, "§7.4.2: outside every range"),
    ];

    #[test]
    fn the_close_code_table() {
        // The table covers every code once, in order.
        let mut next = 0u32;
        for &(first, last, _, what) in CLOSE_CODES {
            assert_eq!(u32::from(first), next, "gap or overlap before {what}");
            assert!(first <= last, "{what}");
            next = u32::from(last) + 1;
        }
        assert_eq!(next, 65536);

        for &(first, last, accepted, what) in CLOSE_CODES {
            for code in first..=last {
                let close = CloseCode::from(code);
                assert_eq!(close.as_u16(), code);
                assert_eq!(close.is_valid_on_wire(), accepted, "{code}: {what}");
                let payload = u16::to_be_bytes(code);
                let parsed = parse_close_payload(&payload);
                if accepted {
                    assert_eq!(parsed, Ok((close, String::new())), "{code}: {what}");
                } else {
                    assert_eq!(
                        parsed,
                        Err(CloseFrameError::InvalidCode(code)),
                        "{code}: {what}"
                    );
                }
            }
        }
        // The named codes are the ones §7.4.1 names.
        for (code, named) in [
            (1000, CloseCode::Normal),
            (1001, CloseCode::GoingAway),
            (1002, CloseCode::ProtocolError),
            (1003, CloseCode::Unsupported),
            (1005, CloseCode::NoStatus),
            (1006, CloseCode::Abnormal),
            (1007, CloseCode::InvalidPayload),
            (1008, CloseCode::PolicyViolation),
            (1009, CloseCode::TooBig),
            (1010, CloseCode::MandatoryExtension),
            (1011, CloseCode::InternalError),
        ] {
            assert_eq!(CloseCode::from(code), named);
        }
    }

    #[test]
    fn parses_payloads() {
        assert_eq!(
            parse_close_payload(b""),
            Ok((CloseCode::NoStatus, String::new()))
        );
        assert_eq!(
            parse_close_payload(b"\x03"),
            Err(CloseFrameError::Truncated)
        );
        assert_eq!(
            parse_close_payload(b"\x03\xe8bye"),
            Ok((CloseCode::Normal, "bye".to_owned()))
        );
        assert_eq!(
            parse_close_payload(b"\x03\xe8\xff"),
            Err(CloseFrameError::InvalidReason)
        );
        assert_eq!(
            CloseFrameError::InvalidReason.close_code(),
            CloseCode::InvalidPayload
        );
        assert_eq!(
            CloseFrameError::Truncated.close_code(),
            CloseCode::ProtocolError
        );
    }

    #[test]
    fn writes_payloads_that_fit_a_control_frame() {
        let mut out = Vec::new();
        close_payload(CloseCode::NoStatus, "ignored", &mut out);
        assert!(out.is_empty());
        let long = "é".repeat(100);
        close_payload(CloseCode::GoingAway, &long, &mut out);
        assert!(out.len() <= 125);
        let (code, reason) = parse_close_payload(&out).expect("round trip");
        assert_eq!(code, CloseCode::GoingAway);
        assert!(long.starts_with(&reason) && !reason.is_empty());
    }
}
