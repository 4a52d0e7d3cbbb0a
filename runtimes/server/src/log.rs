//! The server's log lines: the seed's texts, each with its level, and how
//! they are printed (`[HH:MM:SS] text`, UTC).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tincan_core::CloseCode;

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum LogLevel {
    /// The server cannot go on.
    Error,
    /// A client misbehaved or was refused.
    Warn,
    /// Connections, messages, pings.
    Info,
    /// Everything else.
    Debug,
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
        })
    }
}

/// A line for the server's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Log {
    /// The server is ready.
    Listening {
        /// The port it listens on.
        port: u16,
        /// Whether it serves https and wss there.
        tls: bool,
    },
    /// An upgrade request arrived.
    UpgradeRequest {
        /// The client's address.
        peer: String,
    },
    /// The upgrade was accepted.
    HandshakeComplete {
        /// The client's address.
        peer: String,
    },
    /// A handshake failed; the client got this status.
    HandshakeRejected {
        /// The client's address.
        peer: String,
        /// The HTTP status sent.
        status: u16,
        /// The one-line reason sent.
        reason: String,
    },
    /// A plain HTTP request was answered.
    HttpRequest {
        /// The client's address.
        peer: String,
        /// The request method.
        method: String,
        /// The request target.
        target: String,
        /// The HTTP status sent.
        status: u16,
    },
    /// A text message arrived.
    ReceivedText {
        /// The text, shortened if long.
        text: String,
        /// Its full length in bytes.
        len: usize,
    },
    /// A binary message arrived.
    ReceivedBinary {
        /// Its length in bytes.
        len: usize,
    },
    /// A chat message went to this many clients.
    Broadcasting {
        /// How many.
        clients: usize,
    },
    /// A keepalive ping went to an idle client.
    SendingPing {
        /// The client's address.
        peer: String,
    },
    /// A ping arrived.
    ReceivedPing,
    /// A pong arrived.
    ReceivedPong,
    /// A client broke the protocol.
    ProtocolError {
        /// The client's address.
        peer: String,
        /// What it did.
        error: String,
        /// The close code it got.
        code: CloseCode,
    },
    /// A client joined a room.
    Joined {
        /// The client's address.
        peer: String,
        /// Its nickname.
        nick: String,
        /// The room.
        room: String,
    },
    /// A client sent no message for the idle timeout and is being closed.
    Idle {
        /// The client's address.
        peer: String,
    },
    /// A client kept sending faster than the rate limit; closed with 1008.
    Flooding {
        /// The client's address.
        peer: String,
    },
    /// A client did not answer a keepalive ping in time and is dropped
    /// (no close frame: it is not listening).
    NoPong {
        /// The client's address.
        peer: String,
    },
    /// A client read too slowly and is being closed with 1008.
    SlowClient {
        /// The client's address.
        peer: String,
    },
    /// A client's unread backlog was the oldest when the server's queued
    /// bytes passed `--max-queued-bytes`: it is dropped, with its queue.
    OverBudget {
        /// The client's address.
        peer: String,
    },
    /// A WebSocket connection ended.
    Closed {
        /// The client's address.
        peer: String,
        /// The close code.
        code: CloseCode,
        /// The close reason.
        reason: String,
    },
    /// A TLS connection was closed before its handshake: its address, or
    /// the server, already holds as many connections as allowed.
    TlsRefused {
        /// The client's address.
        peer: String,
        /// Which limit.
        reason: &'static str,
    },
    /// A TLS handshake failed (a plain HTTP request on the TLS port, say) or
    /// did not finish within the handshake timeout.
    TlsHandshakeFailed {
        /// The client's address.
        peer: String,
        /// What went wrong.
        error: String,
    },
    /// SIGHUP: the certificate and key were read again and are in use.
    TlsReloaded {
        /// The certificate file.
        cert: String,
    },
    /// SIGHUP: the certificate and key could not be read again; the old pair
    /// stays in use.
    TlsReloadFailed {
        /// Why.
        error: String,
    },
    /// The server is stopping.
    ShuttingDown {
        /// How many clients get a 1001 close.
        clients: usize,
    },
}

impl Log {
    /// The line's level.
    pub fn level(&self) -> LogLevel {
        match self {
            Self::HandshakeRejected { .. }
            | Self::ProtocolError { .. }
            | Self::SlowClient { .. }
            | Self::OverBudget { .. }
            | Self::Flooding { .. }
            | Self::TlsRefused { .. }
            | Self::TlsHandshakeFailed { .. }
            | Self::TlsReloadFailed { .. } => LogLevel::Warn,
            Self::HttpRequest { .. } => LogLevel::Debug,
            _ => LogLevel::Info,
        }
    }

    /// The line with its `[HH:MM:SS]` (UTC) time stamp.
    pub fn render(&self, unix_secs: u64) -> String {
        let s = unix_secs % 86_400;
        format!("[{:02}:{:02}:{:02}] {self}", s / 3600, s / 60 % 60, s % 60)
    }
}

impl fmt::Display for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Listening { port, tls: false } => {
                write!(f, "WebSocket server listening on port {port}")
            }
            Self::Listening { port, tls: true } => {
                write!(
                    f,
                    "WebSocket server listening on port {port} (TLS: https and wss)"
                )
            }
            Self::UpgradeRequest { peer } => write!(f, "HTTP upgrade request from {peer}"),
            Self::HandshakeComplete { .. } => write!(f, "WebSocket handshake complete"),
            Self::HandshakeRejected {
                peer,
                status,
                reason,
            } => {
                write!(f, "Rejected handshake from {peer}: {status} {reason}")
            }
            Self::HttpRequest {
                peer,
                method,
                target,
                status,
            } => {
                write!(f, "HTTP {method} {target} from {peer}: {status}")
            }
            Self::ReceivedText { text, len } if text.len() < *len => {
                write!(f, "Received TEXT: {text:?}... ({len} bytes)")
            }
            Self::ReceivedText { text, .. } => write!(f, "Received TEXT: {text:?}"),
            Self::ReceivedBinary { len } => write!(f, "Received BINARY: {len} bytes"),
            Self::Broadcasting { clients: 1 } => write!(f, "Broadcasting to 1 client"),
            Self::Broadcasting { clients } => write!(f, "Broadcasting to {clients} clients"),
            Self::SendingPing { peer } => write!(f, "Sending PING to {peer}"),
            Self::ReceivedPing => write!(f, "Received PING"),
            Self::ReceivedPong => write!(f, "Received PONG"),
            Self::ProtocolError { peer, error, code } => {
                write!(
                    f,
                    "Protocol error from {peer}: {error} (closing with {code})"
                )
            }
            Self::Joined { peer, nick, room } => write!(f, "{peer} joined #{room} as {nick}"),
            Self::Idle { peer } => write!(f, "Client {peer} is idle, closing with 1001"),
            Self::Flooding { peer } => write!(f, "Client {peer} is flooding, closing with 1008"),
            Self::NoPong { peer } => {
                write!(f, "Client {peer} did not answer a ping, dropping it")
            }
            Self::SlowClient { peer } => {
                write!(
                    f,
                    "Client {peer} is too slow: send queue full, closing with 1008"
                )
            }
            Self::OverBudget { peer } => {
                write!(
                    f,
                    "Client {peer} is too slow: its unread backlog is the oldest past \
                     --max-queued-bytes, dropping it"
                )
            }
            Self::Closed { peer, code, reason } if reason.is_empty() => {
                write!(f, "Connection with {peer} closed: {code}")
            }
            Self::Closed { peer, code, reason } => {
                write!(f, "Connection with {peer} closed: {code} {reason:?}")
            }
            Self::TlsRefused { peer, reason } => {
                write!(f, "Refused TLS connection from {peer}: {reason}")
            }
            Self::TlsHandshakeFailed { peer, error } => {
                write!(f, "TLS handshake with {peer} failed: {error}")
            }
            Self::TlsReloaded { cert } => write!(f, "Reloaded TLS certificate {cert}"),
            Self::TlsReloadFailed { error } => {
                write!(f, "TLS reload failed, keeping the old certificate: {error}")
            }
            Self::ShuttingDown { clients } => {
                write!(
                    f,
                    "Shutting down: closing {clients} connection(s) with 1001"
                )
            }
        }
    }
}

/// Prints `line` to standard output if `level` lets it through.
pub fn print(level: LogLevel, line: &Log) {
    if line.level() <= level {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        println!("{}", line.render(now.as_secs()));
    }
}
