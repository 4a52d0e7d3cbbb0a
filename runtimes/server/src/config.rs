//! Everything a server is configured with, and every default, written once:
//! the command line ([`crate::cli`]) shows these values in `--help`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use tincan_chat::ChatConfig;
use tincan_core::{Config, Connection};

use crate::log::{LogFormat, LogLevel};
use crate::origin::OriginPolicy;

/// Everything a server binary is configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// The TCP port.
    pub port: u16,
    /// The address to listen on.
    pub bind: IpAddr,
    /// Threads that run the connections; `None`: one per core (see
    /// [`ServerConfig::worker_threads`]).
    pub threads: Option<usize>,
    /// Echo every message to its sender instead of chatting (for conformance
    /// testing).
    pub echo: bool,
    /// Lines below this level are not printed.
    pub log_level: LogLevel,
    /// Lines as text (`[HH:MM:SS] ...`) or one JSON object each.
    pub log_format: LogFormat,
    /// Serve `/metrics` (and `/healthz`, `/readyz`) on this address only,
    /// off the public port; `None`: on the public port.
    pub metrics_bind: Option<SocketAddr>,
    /// After SIGTERM, how long the clients there keep chatting (while
    /// `/readyz` answers 503 and new upgrades get 503) before their 1001
    /// close. Zero: closed at once.
    pub drain_grace: Duration,
    /// Limits and timers of each connection. The protocol crate's defaults,
    /// but for a send queue sized for chat: a chat client that falls 1 MiB
    /// behind is not reading.
    pub connection: Config,
    /// How many messages may wait for a client's task before the client
    /// counts as too slow. They are shared frames, so a slot costs a pointer;
    /// the send queue limit (bytes) catches a client that stops reading. This
    /// one sheds load when the server itself falls behind.
    pub outbox_capacity: usize,
    /// How long chat messages for a client in a busy room wait before they
    /// are written, so that the ones after them leave in the same write: a
    /// busy room's traffic then costs fewer system calls, for at most this
    /// much latency. A client is in a busy room when it was sent chat
    /// messages less than a second ago; a message after a quiet second
    /// leaves at once, and so does each one the parking thread writes to an
    /// idle client. Zero: each leaves at once. Only messages from the
    /// outbox start the wait; a client's replies wait only if one is
    /// running. Default 20 ms.
    pub write_delay: Duration,
    /// Rooms, history and limits of the chat.
    pub chat: ChatConfig,
    /// Close clients that send no message for this long; `None` never does.
    pub idle_timeout: Option<Duration>,
    /// Web origins allowed to connect besides the server's own.
    pub origins: OriginPolicy,
    /// Bytes queued for sending on all connections together; past it, the
    /// clients with the oldest unread backlog are closed first (1008).
    /// `None`: no limit.
    pub max_queued_bytes: Option<usize>,
    /// The kernel's send buffer per socket (`SO_SNDBUF`; Linux doubles it).
    /// Bounded so that clients that never read cannot park gigabytes in the
    /// kernel, where no budget sees them.
    pub socket_send_buffer: usize,
    /// Connections one IP address (for IPv6, one /64: see
    /// `session::client_key`) may hold at once (open, in the handshake or
    /// closing); more get 503, and past twice as many a plain connection
    /// is closed at once. `None`: no limit.
    pub max_connections_per_ip: Option<usize>,
    /// Serve https and wss with this certificate and key; `None`: plain
    /// http and ws.
    pub tls: Option<TlsFiles>,
    /// Keep room history in an embedded store in this directory, so that a
    /// restart loses nothing; `None`: in memory only.
    pub data_dir: Option<PathBuf>,
    /// Share rooms with every node connected to this Redis; `None`: alone.
    pub redis: Option<String>,
}

/// Where the TLS certificate and key are: PEM files, read at start and again
/// on SIGHUP (see [`crate::tls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl ServerConfig {
    /// The defaults.
    pub const DEFAULT: Self = Self {
        port: 8080,
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        threads: None,
        echo: false,
        log_level: LogLevel::Info,
        log_format: LogFormat::Text,
        metrics_bind: None,
        drain_grace: Duration::ZERO,
        connection: Config {
            max_send_queue: 1 << 20,
            deflate: true,
            // Buffers kept for a connection's next messages: up to the
            // size below which an echo is copied into the send queue and
            // its buffer kept at once. A larger one (an echo sent from its
            // own buffer, a long chat message) goes back to the allocator
            // once written or handled, and serves the next connection's
            // large message while still in cache, where a kept one would
            // be cold by its own connection's next message (16 KiB echo:
            // 11 % less user CPU; see `Config::max_spare_buffer`).
            max_spare_buffer: Connection::OWNED_FROM,
            ..Config::DEFAULT
        },
        outbox_capacity: 8192,
        write_delay: Duration::from_millis(20),
        chat: ChatConfig::DEFAULT,
        idle_timeout: Some(Duration::from_secs(30 * 60)),
        origins: OriginPolicy::EMPTY,
        max_connections_per_ip: Some(100),
        max_queued_bytes: Some(64 << 20),
        socket_send_buffer: 64 << 10,
        tls: None,
        data_dir: None,
        redis: None,
    };

    /// How many threads run the connections: `threads`, or else as many as
    /// the machine has cores (`std::thread::available_parallelism`).
    pub fn worker_threads(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// The connection limits of one client. In chat mode no message can be
    /// longer than the longest chat message (4 bytes a character, and room
    /// for a command), so a bigger one fails with 1009 as its header arrives
    /// instead of being assembled only to be refused. Echo mode keeps
    /// `max_message_size`, and its send queue takes at least one echo of the
    /// largest message (with its 14-byte frame header).
    pub fn client_connection(&self) -> Config {
        let mut connection = self.connection;
        if self.echo {
            let echo = connection.max_message_size.saturating_add(14);
            connection.max_send_queue = connection.max_send_queue.max(echo);
        } else {
            let longest = self
                .chat
                .max_text_len
                .saturating_mul(4)
                .saturating_add(1024);
            connection.max_message_size = connection.max_message_size.min(longest);
        }
        connection
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}
