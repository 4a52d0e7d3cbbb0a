//! The command line of the server binaries, shared so that every runtime
//! accepts the same options and gives the same errors.

use std::time::Duration;

use crate::server::{LogLevel, ServerConfig};

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Run a server.
    Run(Box<ServerConfig>),
    /// Print [`usage`] and exit successfully.
    Help,
    /// Print the version and exit successfully.
    Version,
}

/// A command line that cannot be run. Binaries print it with [`usage`] and
/// exit with status 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// No port was given.
    #[error("missing <PORT> argument")]
    MissingPort,
    /// The port is not a number from 1 to 65535.
    #[error("invalid port '{0}': expected a number from 1 to 65535")]
    InvalidPort(String),
    /// An option this program does not have.
    #[error("unknown option '{0}'")]
    UnknownOption(String),
    /// An option that needs a value came last.
    #[error("option '{0}' needs a value")]
    MissingValue(String),
    /// An option's value does not parse.
    #[error("invalid value '{value}' for '{option}': {expected}")]
    InvalidValue {
        /// The option.
        option: String,
        /// The value given.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// More than one positional argument.
    #[error("unexpected argument '{0}'")]
    UnexpectedArgument(String),
}

/// The help text for a binary called `program`.
pub fn usage(program: &str) -> String {
    format!(
        "Usage: {program} [OPTIONS] <PORT>

A WebSocket (RFC 6455) chat server. Open http://localhost:<PORT>/ in a browser,
or connect a WebSocket client to ws://localhost:<PORT>/.

Arguments:
  <PORT>                     TCP port to listen on (1-65535)

Options:
      --bind <ADDR>          address to listen on [default: 127.0.0.1]
      --echo                 echo every message back to its sender instead of
                             chatting (for conformance testing)
      --ping-interval <SECS> ping clients idle this long; 0 disables [default: 30]
      --ping-timeout <SECS>  drop clients silent this long after a ping [default: 10]
      --max-message-size <BYTES>  largest message accepted [default: 16777216; in chat
                                  mode at most 4 x --max-chat-length + 1024]
      --max-frame-size <BYTES>    largest frame accepted [default: 16777216]
      --max-send-queue <BYTES>    bytes queued for a slow client before it is
                             closed with 1008 [default: 33554432]
      --history <N>          messages a room keeps for late joiners [default: 50]
      --max-chat-length <N>  longest chat message in characters [default: 2000]
      --max-clients <N>      clients on the server; more get 503 [default: 10000]
      --max-room-clients <N> clients in one room; more get 503 [default: 1000]
      --rate <PER_SEC>       chat messages per second per client [default: 2]
      --burst <N>            chat messages a client may send at once [default: 10]
      --idle-timeout <SECS>  close clients that send no message for this long;
                             0 disables [default: 1800]
      --log-level <LEVEL>    error, warn, info or debug [default: info]
  -q, --quiet                same as --log-level warn
  -h, --help                 print this help
  -V, --version              print the version
"
    )
}

/// Parses the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<Command, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut config = ServerConfig::default();
    let mut port = None;
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| CliError::MissingValue(name.clone()))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "-q" | "--quiet" => config.log_level = LogLevel::Warn,
            "--echo" => config.echo = true,
            "--bind" => {
                let v = value()?;
                config.bind = v
                    .parse()
                    .map_err(|_| invalid(&name, &v, "an IP address such as 127.0.0.1 or ::"))?;
            }
            "--ping-interval" => {
                let secs = seconds(&name, &value()?)?;
                config.connection.ping_interval = (!secs.is_zero()).then_some(secs);
            }
            "--ping-timeout" => config.connection.ping_timeout = seconds(&name, &value()?)?,
            "--max-message-size" => config.connection.max_message_size = bytes(&name, &value()?)?,
            "--max-frame-size" => config.connection.max_frame_size = bytes(&name, &value()?)?,
            "--max-send-queue" => config.connection.max_send_queue = bytes(&name, &value()?)?,
            "--history" => config.chat.history = count(&name, &value()?, 0)?,
            "--max-chat-length" => config.chat.max_text_len = count(&name, &value()?, 1)?,
            "--max-clients" => config.chat.max_clients = count(&name, &value()?, 1)?,
            "--max-room-clients" => config.chat.max_room_clients = count(&name, &value()?, 1)?,
            "--burst" => config.chat.rate.burst = count(&name, &value()?, 1)?,
            "--rate" => {
                let v = value()?;
                config.chat.rate.per_second = match v.parse::<f64>() {
                    Ok(rate) if rate > 0.0 && rate.is_finite() => rate,
                    _ => {
                        return Err(invalid(
                            &name,
                            &v,
                            "a positive number of messages per second",
                        ))
                    }
                };
            }
            "--idle-timeout" => {
                let secs = seconds(&name, &value()?)?;
                config.idle_timeout = (!secs.is_zero()).then_some(secs);
            }
            "--log-level" => {
                let v = value()?;
                config.log_level = match v.as_str() {
                    "error" => LogLevel::Error,
                    "warn" => LogLevel::Warn,
                    "info" => LogLevel::Info,
                    "debug" => LogLevel::Debug,
                    _ => return Err(invalid(&name, &v, "one of error, warn, info, debug")),
                };
            }
            _ if arg.starts_with('-') && arg.len() > 1 => return Err(CliError::UnknownOption(arg)),
            _ if port.is_some() => return Err(CliError::UnexpectedArgument(arg)),
            _ => match arg.parse::<u16>() {
                Ok(p) if p > 0 => port = Some(p),
                _ => return Err(CliError::InvalidPort(arg)),
            },
        }
    }
    config.port = port.ok_or(CliError::MissingPort)?;
    Ok(Command::Run(Box::new(config)))
}

fn invalid(option: &str, value: &str, expected: &'static str) -> CliError {
    CliError::InvalidValue {
        option: option.to_owned(),
        value: value.to_owned(),
        expected,
    }
}

fn seconds(option: &str, value: &str) -> Result<Duration, CliError> {
    value
        .parse::<u32>()
        .map(|s| Duration::from_secs(s.into()))
        .map_err(|_| invalid(option, value, "a whole number of seconds"))
}

fn count<N: std::str::FromStr + PartialOrd + From<u8>>(
    option: &str,
    value: &str,
    min: u8,
) -> Result<N, CliError> {
    match value.parse::<N>() {
        Ok(n) if n >= N::from(min) => Ok(n),
        _ if min == 0 => Err(invalid(option, value, "a whole number")),
        _ => Err(invalid(option, value, "a positive whole number")),
    }
}

fn bytes(option: &str, value: &str) -> Result<usize, CliError> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(invalid(option, value, "a positive number of bytes")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> ServerConfig {
        match parse(args.iter().copied()) {
            Ok(Command::Run(config)) => *config,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn a_port_is_enough() {
        let config = run(&["8080"]);
        assert_eq!(config.port, 8080);
        assert!(!config.echo);
        assert_eq!(config.log_level, LogLevel::Info);
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
        ]);
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
    }

    #[test]
    fn bad_command_lines_have_specific_errors() {
        let err = |args: &[&str]| parse(args.iter().copied()).expect_err("must fail");
        assert_eq!(err(&[]), CliError::MissingPort);
        assert_eq!(err(&["0"]), CliError::InvalidPort("0".into()));
        assert_eq!(err(&["99999"]), CliError::InvalidPort("99999".into()));
        assert_eq!(err(&["abc"]), CliError::InvalidPort("abc".into()));
        assert_eq!(
            err(&["--frobnicate"]),
            CliError::UnknownOption("--frobnicate".into())
        );
        assert_eq!(
            err(&["8080", "--bind"]),
            CliError::MissingValue("--bind".into())
        );
        assert_eq!(err(&["1", "2"]), CliError::UnexpectedArgument("2".into()));
        assert!(matches!(
            err(&["--bind", "nowhere", "1"]),
            CliError::InvalidValue { .. }
        ));
        assert!(matches!(
            err(&["--log-level", "loud", "1"]),
            CliError::InvalidValue { .. }
        ));
        for bad in [
            ["--burst", "0", "1"],
            ["--rate", "-1", "1"],
            ["--rate", "inf", "1"],
            ["--history", "x", "1"],
        ] {
            assert!(
                matches!(err(&bad), CliError::InvalidValue { .. }),
                "{bad:?}"
            );
        }
        assert_eq!(parse(["--help"]), Ok(Command::Help));
        assert_eq!(parse(["8080", "-V"]), Ok(Command::Version));
    }
}
