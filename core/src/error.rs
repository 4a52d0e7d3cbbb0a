//! The errors of the protocol layer: one variant per violation, each mapped to
//! the close code with which the connection is failed.

use crate::close::{CloseCode, CloseFrameError};
use crate::handshake::HandshakeError;

/// A peer broke RFC 6455 after the handshake; the connection fails with
/// [`ProtocolError::close_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// §5.2: opcodes 3–7 and 0xB–0xF are reserved.
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// §5.2: RSV1–3 must be 0 unless an extension defines them.
    #[error("reserved bits set without a negotiated extension")]
    ReservedBits,
    /// §5.2: the most significant bit of a 64-bit length must be 0.
    #[error("64-bit payload length with the high bit set")]
    LengthHighBit,
    /// §5.2: "the minimal number of bytes MUST be used to encode the length".
    #[error("payload length not minimally encoded")]
    NonMinimalLength,
    /// §5.1: a server must fail on an unmasked client frame.
    #[error("client frame is not masked")]
    UnmaskedFrame,
    /// §5.1: a client must fail on a masked server frame.
    #[error("server frame is masked")]
    MaskedFrame,
    /// §5.5: control frames carry at most 125 bytes.
    #[error("control frame payload longer than 125 bytes")]
    ControlTooLong,
    /// §5.5: control frames must not be fragmented.
    #[error("fragmented control frame")]
    ControlFragmented,
    /// §5.4: a continuation frame with no message in progress.
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// §5.4: a new data message began before the previous one ended.
    #[error("new data frame inside a fragmented message")]
    ExpectedContinuation,
    /// §8.1: text that is not UTF-8.
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    /// §5.5.1: a close frame with a bad code or reason.
    #[error(transparent)]
    Close(#[from] CloseFrameError),
    /// §10.4: a frame larger than the configured limit.
    #[error("frame of {size} bytes exceeds the limit of {limit}")]
    FrameTooBig {
        /// The frame's declared payload length.
        size: u64,
        /// The configured limit.
        limit: usize,
    },
    /// §10.4: a message larger than the configured limit.
    #[error("message of at least {size} bytes exceeds the limit of {limit}")]
    MessageTooBig {
        /// How large the message would be with this frame.
        size: u64,
        /// The configured limit.
        limit: usize,
    },
    /// RFC 7692 §7.2.2: compressed data that does not inflate.
    #[error("compressed data is not valid DEFLATE")]
    InvalidCompressedData,
    /// §10.4 leaves limits to the endpoint: a message split into more
    /// fragments than its payload justifies (empty continuation frames
    /// forever, for instance) is refused.
    #[error("{fragments} fragments for a message of {bytes} bytes")]
    TooManyFragments {
        /// Frames in the message so far.
        fragments: u64,
        /// Payload bytes in the message so far.
        bytes: u64,
    },
    /// §10.4: a message that began but did not end within the configured
    /// time.
    #[error("a message took longer than {0:?} to arrive")]
    MessageTimeout(std::time::Duration),
    /// §5.5.3 lets an endpoint answer only the latest ping: a peer whose
    /// pings go unanswered read after read (16 pongs waiting already each
    /// time, or a full send queue) is refused.
    #[error("pings sent faster than their pongs are read")]
    ControlFlood,
    /// The peer did not answer a keepalive ping in time.
    #[error("no answer to a keepalive ping")]
    KeepaliveTimeout,
}

impl ProtocolError {
    /// The variant's name, e.g. `ReservedOpcode`, for programs that report
    /// errors by kind (the close-frame errors give their own).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ReservedOpcode(_) => "ReservedOpcode",
            Self::ReservedBits => "ReservedBits",
            Self::LengthHighBit => "LengthHighBit",
            Self::NonMinimalLength => "NonMinimalLength",
            Self::UnmaskedFrame => "UnmaskedFrame",
            Self::MaskedFrame => "MaskedFrame",
            Self::ControlTooLong => "ControlTooLong",
            Self::ControlFragmented => "ControlFragmented",
            Self::UnexpectedContinuation => "UnexpectedContinuation",
            Self::ExpectedContinuation => "ExpectedContinuation",
            Self::InvalidUtf8 => "InvalidUtf8",
            Self::InvalidCompressedData => "InvalidCompressedData",
            Self::Close(e) => e.kind(),
            Self::FrameTooBig { .. } => "FrameTooBig",
            Self::MessageTooBig { .. } => "MessageTooBig",
            Self::TooManyFragments { .. } => "TooManyFragments",
            Self::MessageTimeout(_) => "MessageTimeout",
            Self::ControlFlood => "ControlFlood",
            Self::KeepaliveTimeout => "KeepaliveTimeout",
        }
    }

    /// The close code that reports this violation (§7.4.1).
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::InvalidUtf8 | Self::InvalidCompressedData => CloseCode::InvalidPayload,
            Self::Close(e) => e.close_code(),
            Self::FrameTooBig { .. } | Self::MessageTooBig { .. } => CloseCode::TooBig,
            Self::TooManyFragments { .. } | Self::MessageTimeout(_) | Self::ControlFlood => {
                CloseCode::PolicyViolation
            }
            Self::KeepaliveTimeout => CloseCode::Abnormal,
            _ => CloseCode::ProtocolError,
        }
    }
}

/// Why a connection failed: during the handshake or after it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The opening handshake failed; see [`HandshakeError::status`].
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The peer broke the protocol; see [`ProtocolError::close_code`].
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// Why a call that queues output was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The opening handshake has not completed.
    #[error("the connection is not open yet")]
    NotOpen,
    /// A close frame was sent: no data may follow it (§5.5.1).
    #[error("the connection is closing")]
    Closing,
    /// Queuing this would exceed the configured send queue limit.
    #[error("send queue full")]
    QueueFull,
    /// A close code that must not be sent (§7.4.1): only 1000–1003,
    /// 1007–1011 and 3000–4999, or no code at all (1005).
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// A control frame payload over 125 bytes (§5.5).
    #[error("control frame payload longer than 125 bytes")]
    ControlTooLong,
    /// A fragment of another kind of message while one is in progress, or a
    /// message while a fragmented one is unfinished (§5.4).
    #[error("a fragmented message is in progress")]
    FragmentInProgress,
    /// Text fragments that do not form valid UTF-8 (§5.6).
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    /// This call does not apply in the current state or role (for example
    /// accepting a request that was not received, or a prepared message on a
    /// client connection, whose frames must each get a fresh mask).
    #[error("not possible in this state or role")]
    InvalidState,
    /// A response header whose name is not an HTTP token or whose value
    /// holds a line break (RFC 9110 §5.1, §5.5), or a client's request
    /// with a field that could not go into it as it is (see
    /// [`ClientRequest::is_valid`](crate::ClientRequest::is_valid)).
    #[error("invalid header field")]
    InvalidHeader,
}
