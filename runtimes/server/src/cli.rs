//! The command line of every server binary, on clap: each option can also be
//! set from a `TINCAN_<OPTION>` environment variable, and `--help` shows the
//! defaults of [`ServerConfig::DEFAULT`] and the variables.

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::{CommandFactory, FromArgMatches, Parser};

use crate::config::{ServerConfig, TlsFiles};
use crate::log::{LogFormat, LogLevel};
use crate::origin::OriginPolicy;

const ABOUT: &str =
    "A WebSocket (RFC 6455) chat server. Open http://localhost:<PORT>/ in a browser,
or connect a WebSocket client to ws://localhost:<PORT>/.";

/// The most `--threads` accepted: more is a typo, not a machine.
const MAX_THREADS: usize = 1024;

/// The longest `--write-delay` accepted, in milliseconds: more is not a
/// chat any more.
const MAX_WRITE_DELAY_MS: u64 = 1000;

/// The defaults, as the command line shows them.
const DEFAULT: ServerConfig = ServerConfig::DEFAULT;

/// The options. Field docs are the help text.
#[derive(Debug, Parser)]
#[command(
    version,
    about = ABOUT,
    help_template = "{usage-heading} {usage}\n\n{about}\n\n{all-args}",
    max_term_width = 100
)]
struct Args {
    /// TCP port to listen on (1-65535)
    #[arg(env = "TINCAN_PORT", value_parser = port)]
    port: u16,

    /// Address to listen on
    #[arg(long, env = "TINCAN_BIND", value_name = "ADDR", default_value_t = DEFAULT.bind)]
    bind: IpAddr,

    /// Threads that run the connections [default: the number of cores]
    #[arg(long, env = "TINCAN_THREADS", value_name = "N",
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_THREADS as u64))]
    threads: Option<usize>,

    /// Echo every message back to its sender instead of chatting (for
    /// conformance testing)
    #[arg(long, env = "TINCAN_ECHO")]
    echo: bool,

    /// Ping clients idle this long; 0 disables
    #[arg(long, env = "TINCAN_PING_INTERVAL", value_name = "SECS",
          default_value_t = secs(DEFAULT.connection.ping_interval))]
    ping_interval: u64,

    /// Drop clients silent this long after a ping (at least 1)
    #[arg(long, env = "TINCAN_PING_TIMEOUT", value_name = "SECS",
          value_parser = RangedU64ValueParser::<u64>::new().range(1..=u64::from(u32::MAX)),
          default_value_t = DEFAULT.connection.ping_timeout.as_secs())]
    ping_timeout: u64,

    /// Close connections whose opening handshake has not completed after this long
    #[arg(long, env = "TINCAN_HANDSHAKE_TIMEOUT", value_name = "SECS",
          value_parser = RangedU64ValueParser::<u64>::new().range(1..=u64::from(u32::MAX)),
          default_value_t = DEFAULT.connection.handshake_timeout.as_secs())]
    handshake_timeout: u64,

    /// permessage-deflate (RFC 7692) with clients that offer it: on, or off
    #[arg(long, env = "TINCAN_DEFLATE", value_parser = ["on", "off"],
          default_value = if DEFAULT.connection.deflate { "on" } else { "off" })]
    deflate: String,

    /// Close a client whose message has begun but not ended after this long
    /// (1008); 0 disables
    #[arg(long, env = "TINCAN_MESSAGE_TIMEOUT", value_name = "SECS",
          default_value_t = secs(DEFAULT.connection.message_timeout))]
    message_timeout: u64,

    /// Largest message accepted; in chat mode at most 4 x --max-chat-length + 1024
    #[arg(long, env = "TINCAN_MAX_MESSAGE_SIZE", value_name = "BYTES",
          value_parser = positive(), default_value_t = DEFAULT.connection.max_message_size)]
    max_message_size: usize,

    /// Largest frame accepted
    #[arg(long, env = "TINCAN_MAX_FRAME_SIZE", value_name = "BYTES",
          value_parser = positive(), default_value_t = DEFAULT.connection.max_frame_size)]
    max_frame_size: usize,

    /// Bytes queued for a slow client before it is closed with 1008 (in echo
    /// mode at least one largest message)
    #[arg(long, env = "TINCAN_MAX_SEND_QUEUE", value_name = "BYTES",
          value_parser = positive(), default_value_t = DEFAULT.connection.max_send_queue)]
    max_send_queue: usize,

    /// Bytes queued on all clients together; past it the clients with the
    /// oldest unread backlog are closed first with 1008. 0: no limit
    #[arg(long, env = "TINCAN_MAX_QUEUED_BYTES", value_name = "BYTES",
          default_value_t = DEFAULT.max_queued_bytes.unwrap_or(0))]
    max_queued_bytes: usize,

    /// In a busy room (chat messages sent to the client in the last second)
    /// a client's chat messages wait this long, so that the ones after them
    /// leave in the same write: fewer system calls, for at most that much
    /// latency (an idle client, written by the parking thread, is not held).
    /// 0: always at once
    #[arg(long, env = "TINCAN_WRITE_DELAY", value_name = "MS",
          value_parser = RangedU64ValueParser::<u64>::new().range(0..=MAX_WRITE_DELAY_MS),
          default_value_t = DEFAULT.write_delay.as_millis() as u64)]
    write_delay: u64,

    /// The kernel's send buffer per socket (SO_SNDBUF; Linux doubles it)
    #[arg(long, env = "TINCAN_SOCKET_SEND_BUFFER", value_name = "BYTES",
          value_parser = positive(), default_value_t = DEFAULT.socket_send_buffer)]
    socket_send_buffer: usize,

    /// Messages a room keeps for late joiners
    #[arg(long, env = "TINCAN_HISTORY", value_name = "N", default_value_t = DEFAULT.chat.history)]
    history: usize,

    /// Longest chat message in characters
    #[arg(long, env = "TINCAN_MAX_CHAT_LENGTH", value_name = "N",
          value_parser = positive(), default_value_t = DEFAULT.chat.max_text_len)]
    max_chat_length: usize,

    /// Clients on the server; more get 503
    #[arg(long, env = "TINCAN_MAX_CLIENTS", value_name = "N",
          value_parser = positive(), default_value_t = DEFAULT.chat.max_clients)]
    max_clients: usize,

    /// Clients in one room; more get 503
    #[arg(long, env = "TINCAN_MAX_ROOM_CLIENTS", value_name = "N",
          value_parser = positive(), default_value_t = DEFAULT.chat.max_room_clients)]
    max_room_clients: usize,

    /// Connections one IP address (an IPv6 /64) may hold at once; more get 503, past twice as many closed at once. 0: no limit
    #[arg(long, env = "TINCAN_MAX_CONNECTIONS_PER_IP", value_name = "N",
          default_value_t = DEFAULT.max_connections_per_ip.unwrap_or(0))]
    max_connections_per_ip: usize,

    /// Rooms kept with their history; when every one has people in it, a new room gets 503
    #[arg(long, env = "TINCAN_MAX_ROOMS", value_name = "N",
          value_parser = positive(), default_value_t = DEFAULT.chat.max_rooms)]
    max_rooms: usize,

    /// Joins and leaves are announced only in rooms of at most this many
    /// members (/who always lists everyone)
    #[arg(long, env = "TINCAN_PRESENCE_LIMIT", value_name = "N",
          default_value_t = DEFAULT.chat.presence_limit)]
    presence_limit: usize,

    /// Joins and leaves wait this long, so that a room filling in a burst hears them together (one line for plain clients, one write for every member). 0: each at once
    #[arg(long, env = "TINCAN_PRESENCE_DELAY", value_name = "MS",
          default_value_t = DEFAULT.chat.presence_delay.as_millis() as u64)]
    presence_delay: u64,

    /// Addresses whose rate-limit state outlives their connections, so that
    /// reconnecting does not refill it (least recently used forgotten first)
    #[arg(long, env = "TINCAN_MAX_ADDRESSES", value_name = "N",
          default_value_t = DEFAULT.chat.max_addresses)]
    max_addresses: usize,

    /// Chat messages per second per client
    #[arg(long, env = "TINCAN_RATE", value_name = "PER_SEC", value_parser = rate, allow_negative_numbers = true,
          default_value_t = DEFAULT.chat.rate.per_second)]
    rate: f64,

    /// Chat messages a client may send at once
    #[arg(long, env = "TINCAN_BURST", value_name = "N",
          value_parser = RangedU64ValueParser::<u32>::new().range(1..),
          default_value_t = DEFAULT.chat.rate.burst)]
    burst: u32,

    /// Close clients that send no message for this long; 0 disables
    #[arg(long, env = "TINCAN_IDLE_TIMEOUT", value_name = "SECS",
          default_value_t = secs(DEFAULT.idle_timeout))]
    idle_timeout: u64,

    /// A web origin allowed to connect besides the server's own (repeat it,
    /// or separate with commas; * allows any). Clients that send no Origin
    /// (not browsers) are always allowed
    #[arg(
        long = "allowed-origin",
        env = "TINCAN_ALLOWED_ORIGIN",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,

    /// Serve https and wss with this PEM certificate chain (needs
    /// --tls-key); reread on SIGHUP
    #[arg(
        long,
        env = "TINCAN_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert; reread on SIGHUP
    #[arg(
        long,
        env = "TINCAN_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,

    /// Keep room history in this directory (an embedded redb store), so a
    /// restart loses nothing
    #[arg(
        long,
        env = "TINCAN_DATA_DIR",
        value_name = "PATH",
        conflicts_with = "redis"
    )]
    data_dir: Option<PathBuf>,

    /// Share rooms, history and presence with every node connected to this
    /// Redis, e.g. redis://127.0.0.1:6379
    #[arg(long, env = "TINCAN_REDIS", value_name = "URL")]
    redis: Option<String>,

    /// After SIGTERM, /readyz answers 503 and new clients get 503 for this
    /// long while the clients there chat on; then they get a 1001 close
    #[arg(long, env = "TINCAN_DRAIN_GRACE", value_name = "SECS",
          default_value_t = DEFAULT.drain_grace.as_secs())]
    drain_grace: u64,

    /// Serve /metrics on this address and port instead of the public port
    /// (/healthz and /readyz answer on both), e.g. 127.0.0.1:9090
    #[arg(long, env = "TINCAN_METRICS_BIND", value_name = "ADDR:PORT")]
    metrics_bind: Option<SocketAddr>,

    /// Lines below this level are not printed
    #[arg(long, env = "TINCAN_LOG_LEVEL", value_name = "LEVEL", default_value_t = DEFAULT.log_level)]
    log_level: LogLevel,

    /// Log lines as text, or one JSON object per line
    #[arg(long, env = "TINCAN_LOG_FORMAT", value_name = "FORMAT", default_value_t = DEFAULT.log_format)]
    log_format: LogFormat,

    /// Same as --log-level warn
    #[arg(short, long, env = "TINCAN_QUIET")]
    quiet: bool,
}

/// Parses the command line (`args` starts with the program's name). An error
/// is clap's: print it with [`clap::Error::print`]; it exits with 2, or with
/// 0 for `--help` and `--version` (see [`clap::Error::exit_code`]).
pub fn parse<I, T>(program: &'static str, args: I) -> Result<ServerConfig, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = Args::command()
        .name(program)
        .bin_name(program)
        .try_get_matches_from(args)?;
    let args = Args::from_arg_matches(&matches)?;
    let mut config = ServerConfig::DEFAULT;
    config.port = args.port;
    config.bind = args.bind;
    config.echo = args.echo;
    config.threads = args.threads;
    config.log_level = if args.quiet {
        LogLevel::Warn
    } else {
        args.log_level
    };
    config.log_format = args.log_format;
    config.drain_grace = Duration::from_secs(args.drain_grace);
    config.write_delay = Duration::from_millis(args.write_delay);
    config.metrics_bind = args.metrics_bind;
    config.connection.ping_interval = duration(args.ping_interval);
    config.connection.ping_timeout = Duration::from_secs(args.ping_timeout);
    config.connection.handshake_timeout = Duration::from_secs(args.handshake_timeout);
    config.connection.message_timeout = duration(args.message_timeout);
    config.connection.deflate = args.deflate == "on";
    config.connection.max_message_size = args.max_message_size;
    config.connection.max_frame_size = args.max_frame_size;
    config.connection.max_send_queue = args.max_send_queue;
    config.chat.history = args.history;
    config.chat.max_text_len = args.max_chat_length;
    config.chat.max_clients = args.max_clients;
    config.chat.max_room_clients = args.max_room_clients;
    config.chat.max_rooms = args.max_rooms;
    config.chat.presence_limit = args.presence_limit;
    config.chat.presence_delay = Duration::from_millis(args.presence_delay);
    config.chat.max_addresses = args.max_addresses;
    config.chat.rate.per_second = args.rate;
    config.chat.rate.burst = args.burst;
    config.idle_timeout = duration(args.idle_timeout);
    config.origins = OriginPolicy::new(args.allowed_origins);
    config.max_queued_bytes = (args.max_queued_bytes > 0).then_some(args.max_queued_bytes);
    config.socket_send_buffer = args.socket_send_buffer;
    config.max_connections_per_ip =
        (args.max_connections_per_ip > 0).then_some(args.max_connections_per_ip);
    config.tls = args
        .tls_cert
        .zip(args.tls_key)
        .map(|(cert, key)| TlsFiles { cert, key });
    config.data_dir = args.data_dir;
    config.redis = args.redis;
    Ok(config)
}

/// Whole seconds, 0 for none.
fn secs(duration: Option<Duration>) -> u64 {
    duration.map_or(0, |d| d.as_secs())
}

/// `None` for 0 seconds.
fn duration(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

fn positive() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(1..)
}

fn port(value: &str) -> Result<u16, String> {
    match value.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err("expected a number from 1 to 65535".into()),
    }
}

fn rate(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
        _ => Err("expected a positive number of messages per second".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn run(args: &[&str]) -> Result<ServerConfig, clap::Error> {
        parse(
            "tincan-test",
            std::iter::once("tincan-test").chain(args.iter().copied()),
        )
    }

    fn kind(args: &[&str]) -> ErrorKind {
        run(args).expect_err("must fail").kind()
    }

    #[test]
    fn a_port_is_enough_and_everything_else_is_the_default() {
        let config = run(&["8080"]).expect("runs");
        assert_eq!(
            config,
            ServerConfig {
                port: 8080,
                ..ServerConfig::DEFAULT
            }
        );
    }

    #[test]
    fn data_dir_and_redis_each_alone_not_together() {
        let config = run(&["--data-dir", "/var/lib/tincan", "1"]).expect("runs");
        assert_eq!(config.data_dir, Some(PathBuf::from("/var/lib/tincan")));
        let config = run(&["--redis", "redis://127.0.0.1:6379", "1"]).expect("runs");
        assert_eq!(config.redis.as_deref(), Some("redis://127.0.0.1:6379"));
        assert_eq!(
            kind(&["--data-dir", "d", "--redis", "redis://x", "1"]),
            ErrorKind::ArgumentConflict
        );
    }

    #[test]
    fn options_in_both_forms() {
        let config = run(&[
            "--echo",
            "-q",
            "--bind",
            "0.0.0.0",
            "--ping-interval=0",
            "--max-message-size",
            "100",
            "--history",
            "0",
            "--rate",
            "0.5",
            "--burst",
            "3",
            "--idle-timeout",
            "0",
            "--max-clients=7",
            "9001",
        ])
        .expect("runs");
        assert_eq!(config.chat.history, 0);
        assert_eq!(config.chat.rate.per_second, 0.5);
        assert_eq!(config.chat.rate.burst, 3);
        assert_eq!(config.chat.max_clients, 7);
        assert_eq!(config.idle_timeout, None);
        assert!(config.echo);
        assert_eq!(config.log_level, LogLevel::Warn);
        assert_eq!(config.bind.to_string(), "0.0.0.0");
        assert_eq!(config.connection.ping_interval, None);
        assert_eq!(config.connection.max_message_size, 100);
        assert_eq!(config.port, 9001);
        assert_eq!(config.tls, None);
    }

    #[test]
    fn operations_options() {
        let config = run(&[
            "--log-format",
            "json",
            "--metrics-bind",
            "127.0.0.1:9090",
            "--drain-grace=15",
            "--write-delay=20",
            "--presence-delay=0",
            "8080",
        ])
        .expect("runs");
        assert_eq!(config.write_delay, Duration::from_millis(20));
        assert_eq!(config.chat.presence_delay, Duration::ZERO);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.metrics_bind, Some(([127, 0, 0, 1], 9090).into()));
        assert_eq!(config.drain_grace, Duration::from_secs(15));
    }

    #[test]
    fn threads_default_to_the_cores() {
        assert_eq!(run(&["1"]).expect("runs").threads, None);
        let config = run(&["--threads", "2", "1"]).expect("runs");
        assert_eq!((config.threads, config.worker_threads()), (Some(2), 2));
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(ServerConfig::DEFAULT.worker_threads(), cores);
    }

    #[test]
    fn tls_takes_both_files_or_neither() {
        let config = run(&["--tls-cert", "c.pem", "--tls-key=k.pem", "443"]).expect("runs");
        assert_eq!(
            config.tls,
            Some(TlsFiles {
                cert: "c.pem".into(),
                key: "k.pem".into()
            })
        );
        for half in [["--tls-cert", "c.pem"], ["--tls-key", "k.pem"]] {
            let error = run(&[half[0], half[1], "443"]).expect_err("one file");
            assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument, "{half:?}");
        }
    }

    #[test]
    fn bad_command_lines_have_specific_errors() {
        assert_eq!(kind(&[]), ErrorKind::MissingRequiredArgument);
        for port in ["0", "99999", "abc"] {
            let error = run(&[port]).expect_err(port);
            assert_eq!(error.kind(), ErrorKind::ValueValidation, "{port}");
            let text = error.to_string();
            assert!(
                text.contains(&format!("invalid value '{port}' for '<PORT>'")),
                "{text}"
            );
            assert!(text.contains("expected a number from 1 to 65535"), "{text}");
        }
        assert_eq!(kind(&["--frobnicate", "1"]), ErrorKind::UnknownArgument);
        assert_eq!(kind(&["8080", "--bind"]), ErrorKind::InvalidValue);
        assert_eq!(kind(&["1", "2"]), ErrorKind::UnknownArgument);
        for bad in [
            ["--bind", "nowhere", "1"],
            ["--log-level", "loud", "1"],
            ["--burst", "0", "1"],
            ["--rate", "-1", "1"],
            ["--rate", "inf", "1"],
            ["--history", "x", "1"],
            ["--ping-timeout", "0", "1"],
            ["--metrics-bind", "127.0.0.1", "1"],
            ["--log-format", "xml", "1"],
            ["--drain-grace", "soon", "1"],
            ["--max-frame-size", "0", "1"],
            ["--threads", "0", "1"],
            ["--threads", "1025", "1"],
            ["--write-delay", "1001", "1"],
            ["--write-delay", "soon", "1"],
        ] {
            let kind = kind(&bad);
            assert!(
                matches!(kind, ErrorKind::ValueValidation | ErrorKind::InvalidValue),
                "{bad:?}: {kind:?}"
            );
        }
        assert_eq!(kind(&["--help"]), ErrorKind::DisplayHelp);
        assert_eq!(kind(&["8080", "-V"]), ErrorKind::DisplayVersion);
    }

    #[test]
    fn help_shows_every_default_and_variable() {
        let help = Args::command()
            .name("tincan-test")
            .render_help()
            .to_string();
        for (option, default) in [
            ("--bind", "127.0.0.1".to_owned()),
            ("--ping-interval", "30".into()),
            ("--ping-timeout", "10".into()),
            ("--handshake-timeout", "10".into()),
            ("--message-timeout", "60".into()),
            ("--deflate", "on".into()),
            ("--max-rooms", "1000".into()),
            ("--max-connections-per-ip", "100".into()),
            ("--presence-limit", "100".into()),
            ("--presence-delay", "250".into()),
            ("--max-addresses", "10000".into()),
            ("--max-message-size", (16 << 20).to_string()),
            ("--max-send-queue", (1 << 20).to_string()),
            ("--max-queued-bytes", (64 << 20).to_string()),
            ("--socket-send-buffer", (64 << 10).to_string()),
            ("--history", "50".into()),
            ("--rate", "2".into()),
            ("--burst", "10".into()),
            ("--idle-timeout", "1800".into()),
            ("--log-level", "info".into()),
            ("--log-format", "text".into()),
            ("--drain-grace", "0".into()),
            ("--write-delay", "20".into()),
        ] {
            let line = help
                .split("\n  ")
                .find(|entry| entry.trim_start().contains(option))
                .unwrap_or_else(|| panic!("{option} is missing from\n{help}"));
            assert!(line.contains(&format!("[default: {default}]")), "{line}");
            let env = format!("TINCAN_{}", option[2..].replace('-', "_").to_uppercase());
            assert!(line.contains(&format!("[env: {env}")), "{line}");
        }
    }
}
