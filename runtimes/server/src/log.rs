//! The server's log lines: the seed's texts, each with its level, and how
//! they are printed: `[HH:MM:SS] text` (UTC), or with `--log-format json`
//! one JSON object per line with the same event and its fields.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `[HH:MM:SS] text`, the seed's lines.
    Text,
    /// One JSON object per line: `time` (RFC 3339, UTC), `level`, `event`,
    /// `message` (the text line) and the event's fields.
    Json,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
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
    /// A plain connection was closed as soon as it was accepted, unanswered:
    /// its address holds more than twice as many connections as allowed
    /// (those just over the limit get their 503).
    ConnectionRefused {
        /// The client's address.
        peer: String,
        /// Which limit.
        reason: &'static str,
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
    /// The operations port (`--metrics-bind`) is listening.
    OpsListening {
        /// Its address and port.
        addr: String,
    },
    /// SIGTERM: `/readyz` answers 503 and new clients are refused; the
    /// clients there get a 1001 close when the grace ends.
    Draining {
        /// How many WebSocket clients get the 1001 when the grace ends.
        clients: usize,
        /// The grace, in seconds.
        grace: u64,
    },
    /// The server is stopping.
    ShuttingDown {
        /// How many clients get a 1001 close.
        clients: usize,
    },
    /// `--data-dir`: the history store is open and its rooms restored.
    StoreOpened {
        /// The database file.
        path: String,
        /// Rooms restored.
        rooms: usize,
        /// Entries restored, all rooms together.
        entries: usize,
    },
    /// A history write failed (logged once per run of failures): the
    /// server keeps serving, and the entries of that batch are not kept.
    StoreWriteFailed {
        /// The database file.
        path: String,
        /// Why.
        error: String,
    },
    /// History writes succeed again after [`Log::StoreWriteFailed`].
    StoreWriteRecovered {
        /// The database file.
        path: String,
    },
    /// The history writer fell behind and its bounded queue was full: these
    /// entries were served live but not kept.
    StoreDropped {
        /// Entries dropped since the last such line.
        count: u64,
    },
    /// `--redis`: connected, and the shared rooms loaded.
    BrokerConnected {
        /// The Redis URL.
        url: String,
        /// This node's id.
        node: u64,
        /// Members on the other nodes.
        members: usize,
        /// Rooms whose history was loaded.
        rooms: usize,
    },
    /// Redis stopped answering (logged once per outage): local members
    /// chat on, events for the other nodes wait in a bounded queue.
    BrokerLost {
        /// The Redis URL.
        url: String,
        /// Why.
        error: String,
    },
    /// Redis answers again: the queue is flushed, reading resumes.
    BrokerBack {
        /// The Redis URL.
        url: String,
    },
    /// The queue for the other nodes was full: these events were dropped.
    BrokerDropped {
        /// Events dropped since the last such line.
        count: u64,
    },
    /// After a reconnect, entries of the shared log after the last one read
    /// were gone (trimmed, or lost with a restarted Redis).
    BrokerGap {
        /// The last entry read.
        after: String,
        /// The oldest entry there now.
        resumed: String,
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
            | Self::ConnectionRefused { .. }
            | Self::TlsRefused { .. }
            | Self::TlsHandshakeFailed { .. }
            | Self::TlsReloadFailed { .. }
            | Self::StoreDropped { .. }
            | Self::BrokerDropped { .. }
            | Self::BrokerGap { .. } => LogLevel::Warn,
            Self::BrokerLost { .. } => LogLevel::Error,
            Self::StoreWriteFailed { .. } => LogLevel::Error,
            Self::HttpRequest { .. } => LogLevel::Debug,
            _ => LogLevel::Info,
        }
    }

    /// The event's name in JSON lines: the variant's, in snake case.
    pub fn event(&self) -> &'static str {
        match self {
            Self::Listening { .. } => "listening",
            Self::UpgradeRequest { .. } => "upgrade_request",
            Self::HandshakeComplete { .. } => "handshake_complete",
            Self::HandshakeRejected { .. } => "handshake_rejected",
            Self::HttpRequest { .. } => "http_request",
            Self::ReceivedText { .. } => "received_text",
            Self::ReceivedBinary { .. } => "received_binary",
            Self::Broadcasting { .. } => "broadcasting",
            Self::SendingPing { .. } => "sending_ping",
            Self::ReceivedPing => "received_ping",
            Self::ReceivedPong => "received_pong",
            Self::ProtocolError { .. } => "protocol_error",
            Self::Joined { .. } => "joined",
            Self::Idle { .. } => "idle",
            Self::Flooding { .. } => "flooding",
            Self::NoPong { .. } => "no_pong",
            Self::SlowClient { .. } => "slow_client",
            Self::OverBudget { .. } => "over_budget",
            Self::Closed { .. } => "closed",
            Self::ConnectionRefused { .. } => "connection_refused",
            Self::TlsRefused { .. } => "tls_refused",
            Self::TlsHandshakeFailed { .. } => "tls_handshake_failed",
            Self::TlsReloaded { .. } => "tls_reloaded",
            Self::TlsReloadFailed { .. } => "tls_reload_failed",
            Self::OpsListening { .. } => "ops_listening",
            Self::Draining { .. } => "draining",
            Self::ShuttingDown { .. } => "shutting_down",
            Self::StoreOpened { .. } => "store_opened",
            Self::StoreWriteFailed { .. } => "store_write_failed",
            Self::StoreWriteRecovered { .. } => "store_write_recovered",
            Self::StoreDropped { .. } => "store_dropped",
            Self::BrokerConnected { .. } => "broker_connected",
            Self::BrokerLost { .. } => "broker_lost",
            Self::BrokerBack { .. } => "broker_back",
            Self::BrokerDropped { .. } => "broker_dropped",
            Self::BrokerGap { .. } => "broker_gap",
        }
    }

    /// The line as one JSON object: `time` (RFC 3339, UTC, milliseconds),
    /// `level`, `event`, `message` (the text line without its stamp), and
    /// the event's fields (`peer`, `room`, `code`, ...).
    pub fn to_json(&self, since_epoch: Duration) -> String {
        use serde_json::{json, Map, Value};
        let mut object = Map::new();
        object.insert("time".into(), rfc3339(since_epoch).into());
        object.insert("level".into(), self.level().to_string().into());
        object.insert("event".into(), self.event().into());
        object.insert("message".into(), self.to_string().into());
        let fields = match self {
            Self::Listening { port, tls } => json!({ "port": port, "tls": tls }),
            Self::UpgradeRequest { peer }
            | Self::HandshakeComplete { peer }
            | Self::SendingPing { peer }
            | Self::Idle { peer }
            | Self::Flooding { peer }
            | Self::NoPong { peer }
            | Self::SlowClient { peer }
            | Self::OverBudget { peer } => json!({ "peer": peer }),
            Self::HandshakeRejected {
                peer,
                status,
                reason,
            } => json!({ "peer": peer, "status": status, "reason": reason }),
            Self::HttpRequest {
                peer,
                method,
                target,
                status,
            } => json!({ "peer": peer, "method": method, "target": target, "status": status }),
            Self::ReceivedText { text, len } => json!({ "text": text, "len": len }),
            Self::ReceivedBinary { len } => json!({ "len": len }),
            Self::Broadcasting { clients } | Self::ShuttingDown { clients } => {
                json!({ "clients": clients })
            }
            Self::ReceivedPing | Self::ReceivedPong => json!({}),
            Self::ProtocolError { peer, error, code } => {
                json!({ "peer": peer, "error": error, "code": code.as_u16() })
            }
            Self::Joined { peer, nick, room } => {
                json!({ "peer": peer, "nick": nick, "room": room })
            }
            Self::Closed { peer, code, reason } => {
                json!({ "peer": peer, "code": code.as_u16(), "reason": reason })
            }
            Self::ConnectionRefused { peer, reason } | Self::TlsRefused { peer, reason } => {
                json!({ "peer": peer, "reason": reason })
            }
            Self::TlsHandshakeFailed { peer, error } => json!({ "peer": peer, "error": error }),
            Self::TlsReloaded { cert } => json!({ "cert": cert }),
            Self::TlsReloadFailed { error } => json!({ "error": error }),
            Self::OpsListening { addr } => json!({ "addr": addr }),
            Self::Draining { clients, grace } => json!({ "clients": clients, "grace": grace }),
            Self::StoreOpened {
                path,
                rooms,
                entries,
            } => json!({ "path": path, "rooms": rooms, "entries": entries }),
            Self::StoreWriteFailed { path, error } => json!({ "path": path, "error": error }),
            Self::StoreWriteRecovered { path } => json!({ "path": path }),
            Self::StoreDropped { count } | Self::BrokerDropped { count } => {
                json!({ "count": count })
            }
            Self::BrokerConnected {
                url,
                node,
                members,
                rooms,
            } => json!({ "url": url, "node": node, "members": members, "rooms": rooms }),
            Self::BrokerLost { url, error } => json!({ "url": url, "error": error }),
            Self::BrokerBack { url } => json!({ "url": url }),
            Self::BrokerGap { after, resumed } => json!({ "after": after, "resumed": resumed }),
        };
        if let Value::Object(fields) = fields {
            object.extend(fields);
        }
        Value::Object(object).to_string()
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
            Self::ConnectionRefused { peer, reason } => {
                write!(f, "Refused connection from {peer}: {reason}")
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
            Self::OpsListening { addr } => {
                write!(f, "Serving /metrics, /healthz and /readyz on {addr}")
            }
            Self::Draining { clients, grace } => {
                write!(
                    f,
                    "Draining: /readyz answers 503; closing {clients} connection(s) \
                     with 1001 in {grace} s"
                )
            }
            Self::ShuttingDown { clients } => {
                write!(
                    f,
                    "Shutting down: closing {clients} connection(s) with 1001"
                )
            }
            Self::StoreOpened {
                path,
                rooms,
                entries,
            } => write!(
                f,
                "History store {path}: restored {entries} message(s) in {rooms} room(s)"
            ),
            Self::StoreWriteFailed { path, error } => write!(
                f,
                "History store {path}: write failed, history is not being kept: {error}"
            ),
            Self::StoreWriteRecovered { path } => {
                write!(f, "History store {path}: writes succeed again")
            }
            Self::StoreDropped { count } => write!(
                f,
                "History store behind: {count} message(s) dropped from its queue, not kept"
            ),
            Self::BrokerConnected {
                url,
                node,
                members,
                rooms,
            } => write!(
                f,
                "Sharing rooms through Redis at {url} as node {node}: {members} member(s) on \
                 other nodes, history of {rooms} room(s) loaded"
            ),
            Self::BrokerLost { url, error } => write!(
                f,
                "Lost Redis at {url}: {error}; serving local members, queueing events for the \
                 other nodes, reconnecting"
            ),
            Self::BrokerBack { url } => {
                write!(
                    f,
                    "Redis at {url} is back: sending queued events, reading on"
                )
            }
            Self::BrokerDropped { count } => write!(
                f,
                "Queue for the other nodes full: {count} event(s) dropped"
            ),
            Self::BrokerGap { after, resumed } => write!(
                f,
                "Shared log entries after {after} were gone before they were read (resumed at \
                 {resumed:?}): the other nodes' events between are lost here"
            ),
        }
    }
}

/// Prints `line` to standard output in `format` if `level` lets it
/// through.
pub fn print(level: LogLevel, format: LogFormat, line: &Log) {
    if line.level() <= level {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        match format {
            LogFormat::Text => println!("{}", line.render(now.as_secs())),
            LogFormat::Json => println!("{}", line.to_json(now)),
        }
    }
}

/// `since_epoch` as an RFC 3339 UTC time with milliseconds,
/// `2026-12-02T19:46:31.123Z`.
pub fn rfc3339(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let (days, s) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days_from_civil, inverted: the proleptic Gregorian
    // calendar in 400-year eras of 146 097 days, from 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        since_epoch.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates_across_leap_days_and_centuries() {
        for (secs, millis, text) in [
            (0, 0, "1970-01-01T00:00:00.000Z"),
            (951_782_400, 5, "2000-02-29T00:00:00.005Z"),
            (951_868_799, 999, "2000-02-29T23:59:59.999Z"),
            (1_764_072_000, 0, "2025-11-25T12:00:00.000Z"),
            (4_107_542_400, 0, "2100-03-01T00:00:00.000Z"),
        ] {
            let at = Duration::from_secs(secs) + Duration::from_millis(millis);
            assert_eq!(rfc3339(at), text, "{secs}");
        }
    }

    #[test]
    fn json_lines_carry_the_event_its_fields_and_the_text() {
        let line = Log::Closed {
            peer: "127.0.0.1:5000".into(),
            code: CloseCode::GoingAway,
            reason: "bye \"now\"".into(),
        };
        let json: serde_json::Value =
            serde_json::from_str(&line.to_json(Duration::from_secs(1_764_072_000)))
                .expect("a JSON object");
        assert_eq!(json["time"], "2025-11-25T12:00:00.000Z");
        assert_eq!(json["level"], "info");
        assert_eq!(json["event"], "closed");
        assert_eq!(json["peer"], "127.0.0.1:5000");
        assert_eq!(json["code"], 1001);
        assert_eq!(json["reason"], "bye \"now\"");
        assert_eq!(json["message"], line.to_string());
        let rejected = Log::HandshakeRejected {
            peer: "p".into(),
            status: 503,
            reason: "full".into(),
        };
        let json: serde_json::Value =
            serde_json::from_str(&rejected.to_json(Duration::ZERO)).expect("JSON");
        assert_eq!(json["level"], "warn");
        assert_eq!(json["status"], 503);
    }
}
