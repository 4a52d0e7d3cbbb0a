//! `tincan-load`: a WebSocket load generator built on tincan-core's client
//! role, usable against any WebSocket server (like websocat or tcpkali).
//!
//! ```text
//! tincan-load echo <URL> [-c CONNS=100] [-s SIZE=20] [-d DEPTH=1] [-t SECS=10] [--warmup SECS=1] [--text] [--raw-frames]
//! tincan-load broadcast <URL> [URL...] [-n RECEIVERS=1000] [-k SENDERS=1] [-r RATE=100] [-t SECS=10] [--drain SECS=5] [-s SIZE=0]
//! tincan-load idle <URL> [-n CONNS=10000] [-t HOLD_SECS=30] [--rooms N=1]
//! common: [--connect-concurrency N=200] [--threads N=1] [--ca PEM] [--deflate]
//! ```
//!
//! `URL` is `ws://host[:port][/path]`, `wss://host[:port][/path]` (TLS, on
//! rustls with the ring provider: the server's certificate must be signed by,
//! or be, one of the certificates in `--ca PEM`, and name the URL's host), or
//! for `echo` also `tcp://host:port`:
//! raw TCP, no handshake and no framing, where a "message" is SIZE bytes
//! written and the same SIZE bytes read back (the ceiling any WebSocket
//! server can reach at that size and depth).
//!
//! Each run prints exactly one JSON line on stdout (numbers as numbers):
//!
//! - `echo`: `{"mode":"echo","url","connections","connected","size","depth",
//!   "seconds","messages","msgs_per_sec","mb_per_sec","p50_us","p99_us",
//!   "max_us","errors"}`. All C connections are opened (at most
//!   `--connect-concurrency` handshakes at once); then each keeps D messages
//!   of S bytes in flight (binary, or ASCII text with `--text`) and answers
//!   every echo with the next message. After `--warmup` seconds, the echoes
//!   of the next T seconds are counted (`seconds` is that window as
//!   measured). `mb_per_sec` is payload one way: `messages * S / seconds /
//!   1e6`. Latencies are round trips, from a fixed log-linear histogram.
//!   `errors`: failed connections, unexpected closes, echoes of the wrong size.
//!   With `--raw-frames` the client leaves the core after the handshake:
//!   it sends one frame, masked once, over and over and only splits the
//!   server's frames (see `raw_frames.rs`), so that a pipelined run
//!   measures the server more than the tool.
//! - `broadcast`: `{"mode":"broadcast","url","receivers","connected",
//!   "senders","rate","seconds","sent","expected","delivered",
//!   "delivered_per_sec","lost","out_of_order","p50_us","p99_us","max_us",
//!   "errors"}`. N receivers join the URL (one room); once all are open, K
//!   senders connect and each sends R text messages a second for T seconds,
//!   `#tl <sender> <seq> <t_us>`. Receivers find the marker anywhere in a text
//!   message and ignore messages without one. With several URLs (nodes that
//!   share the room), receivers and senders are dealt to them in turn. `expected` is `sent *
//!   connected`; `delivered` counts marked messages received; `lost` is
//!   `expected - delivered` (or the sum of sequence gaps, if larger);
//!   `out_of_order` counts sequence numbers below the one expected.
//!   `delivered_per_sec` is the marked messages received while the senders
//!   were sending (the T seconds from the start signal) divided by T.
//!   Latency is from the sender's stamp to receipt. After sending, up to
//!   `--drain` seconds are given for every receiver to see every sender's
//!   last message.
//! - `idle`: `{"mode":"idle","url","connections","rooms","connected",
//!   "failed","connect_secs"}`, printed as soon as every attempt has
//!   finished; the connections are then held (answering pings) for HOLD
//!   seconds and closed with 1000.
//!
//! Exit status: 0 after a run (even with losses: the line says so), 1 when
//! no connection could be made, 2 for a bad command line.
//!
//! Connections are spread over `--threads` threads (default 1), each a smol
//! local executor with its own counters, so the tool takes as little as
//! possible from the server it shares the machine with. In steady traffic
//! nothing is allocated per message: one read buffer per thread (64 KiB)
//! serves every connection, message buffers go back to the core, and each
//! wake-up writes everything queued in one call.

mod broadcast;
mod client;
mod echo;
mod gate;
mod histogram;
mod idle;
mod raw_frames;
mod report;
mod shard;
mod tls;
mod url;

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use broadcast::BroadcastArgs;
use echo::EchoArgs;
use idle::IdleArgs;
use tls::TlsTarget;
use url::{Scheme, Target};

const USAGE: &str = "\
Usage:
  tincan-load echo <URL> [-c CONNS=100] [-s SIZE=20] [-d DEPTH=1] [-t SECS=10] [--warmup SECS=1] [--text] [--raw-frames]
  tincan-load broadcast <URL> [URL...] [-n RECEIVERS=1000] [-k SENDERS=1] [-r RATE=100] [-t SECS=10] [--drain SECS=5] [-s SIZE=0]
  tincan-load idle <URL> [-n CONNS=10000] [-t HOLD_SECS=30] [--rooms N=1]

Options for every mode:
  --connect-concurrency N   handshakes in flight while connecting (default 200)
  --threads N               threads running the connections (default 1)
  --ca PEM                  for wss://: trust the certificates in this file
                            (and no others); wss:// needs it
  --deflate                 offer permessage-deflate (RFC 7692): messages the
                            server compresses are inflated, and those sent
                            are compressed when that makes them smaller

URL is ws://host:port/path (the path picks a chat room), wss://host:port/path
(TLS), or for echo tcp://host:port for a raw TCP echo server. RATE is messages per second per
sender. Each run prints one JSON line on stdout; exit status 1 means no
connection could be made, 2 a bad command line.
";

/// Options every mode has.
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    /// The URL as given, for the JSON line.
    pub url: String,
    /// Handshakes in flight at once while connecting.
    pub connect_concurrency: usize,
    /// Threads running connections.
    pub threads: usize,
    /// Where the connections' seeds start.
    seed: u64,
}

impl Common {
    /// The seed of connection `i`: its handshake key and masking keys.
    pub fn seed(&self, i: usize) -> u64 {
        self.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// A mode and its options.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    Echo(EchoArgs),
    Broadcast(BroadcastArgs),
    Idle(IdleArgs),
}

/// A parsed command line.
#[derive(Debug)]
enum Command {
    Help,
    Run(Mode, Box<Target>, Common),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, target, common) = match parse(&args) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(mode, target, common)) => (mode, target, common),
        Err(e) => {
            eprintln!("tincan-load: error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let connected = match &mode {
        Mode::Echo(args) => echo::run(&target, &common, args),
        Mode::Broadcast(args) => broadcast::run(&target, &common, args),
        Mode::Idle(args) => idle::run(&target, &common, args),
    };
    if connected == 0 {
        eprintln!("tincan-load: no connection to {} could be made", common.url);
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// Upper bounds that keep every count, duration and buffer sane.
const MAX_COUNT: u64 = 10_000_000;
const MAX_SECS: f64 = 1e7;
const MAX_BYTES: u64 = 1 << 30;

fn parse(args: &[String]) -> Result<Command, String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(Command::Help);
    }
    let mode = args
        .first()
        .ok_or("missing mode: echo, broadcast or idle")?;
    let mut echo = EchoArgs {
        connections: 100,
        size: 20,
        depth: 1,
        seconds: 10.0,
        warmup: 1.0,
        text: false,
        raw_frames: false,
    };
    let mut bc = BroadcastArgs {
        receivers: 1000,
        senders: 1,
        rate: 100.0,
        seconds: 10.0,
        drain: 5.0,
        size: 0,
        more: Vec::new(),
    };
    let mut idle = IdleArgs {
        connections: 10_000,
        hold: 30.0,
        rooms: 1,
    };
    if !matches!(mode.as_str(), "echo" | "broadcast" | "idle") {
        return Err(format!("unknown mode '{mode}': echo, broadcast or idle"));
    }
    let (mut url, mut connect_concurrency, mut threads) = (None, 200, 1);
    let mut more_urls = Vec::new();
    let mut ca = None;
    let mut deflate = false;
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        if !arg.starts_with('-') {
            if url.is_some() {
                if mode == "broadcast" {
                    more_urls.push(arg.as_str());
                    continue;
                }
                return Err(format!("unexpected argument '{arg}'"));
            }
            url = Some(arg.as_str());
            continue;
        }
        if (mode.as_str(), arg.as_str()) == ("echo", "--text") {
            echo.text = true;
            continue;
        }
        if (mode.as_str(), arg.as_str()) == ("echo", "--raw-frames") {
            echo.raw_frames = true;
            continue;
        }
        if arg == "--deflate" {
            deflate = true;
            continue;
        }
        let value = rest
            .next()
            .ok_or_else(|| format!("option '{arg}' needs a value"))?;
        let count = |min: u64, max: u64| integer(arg, value, min, max);
        let secs = |min: f64| seconds(arg, value, min);
        match (mode.as_str(), arg.as_str()) {
            (_, "--connect-concurrency") => connect_concurrency = count(1, MAX_COUNT)?,
            (_, "--threads") => threads = count(1, 256)?,
            (_, "--ca") => ca = Some(value.as_str()),
            ("echo", "-c") => echo.connections = count(1, MAX_COUNT)?,
            ("echo", "-s") => echo.size = count(0, MAX_BYTES)?,
            ("echo", "-d") => echo.depth = count(1, MAX_COUNT)?,
            ("echo", "-t") => echo.seconds = secs(0.001)?,
            ("echo", "--warmup") => echo.warmup = secs(0.0)?,
            ("broadcast", "-n") => bc.receivers = count(1, MAX_COUNT)?,
            ("broadcast", "-k") => bc.senders = count(1, MAX_COUNT)?,
            ("broadcast", "-r") => bc.rate = positive(arg, value, 1e7)?,
            ("broadcast", "-t") => bc.seconds = secs(0.001)?,
            ("broadcast", "--drain") => bc.drain = secs(0.0)?,
            ("broadcast", "-s") => bc.size = count(0, 1 << 20)?,
            ("idle", "-n") => idle.connections = count(1, MAX_COUNT)?,
            ("idle", "-t") => idle.hold = secs(0.0)?,
            ("idle", "--rooms") => idle.rooms = count(1, MAX_COUNT)?,
            _ => return Err(format!("unknown option '{arg}' for {mode}")),
        }
    }
    let url = url.ok_or("missing <URL>")?;
    let target = target(url, deflate, ca)?;
    bc.more = more_urls
        .into_iter()
        .map(|url| self::target(url, deflate, ca))
        .collect::<Result<_, _>>()?;
    if bc.more.iter().any(|more| more.scheme == Scheme::Tcp) {
        return Err("tcp:// URLs are for echo only; this mode needs ws:// or wss://".into());
    }
    let mode = match mode.as_str() {
        "echo" => {
            if target.scheme == Scheme::Tcp && echo.size == 0 {
                return Err("raw TCP (tcp://) needs -s of at least 1".into());
            }
            if echo.raw_frames && (target.scheme == Scheme::Tcp || deflate) {
                return Err("--raw-frames needs ws:// or wss://, without --deflate".into());
            }
            if echo.size.saturating_mul(echo.depth) as u64 > MAX_BYTES {
                return Err("-s SIZE times -d DEPTH must stay within 1 GiB".into());
            }
            Mode::Echo(echo)
        }
        "broadcast" => {
            if bc.receivers.saturating_mul(bc.senders) as u64 > MAX_COUNT {
                return Err(format!(
                    "-n RECEIVERS times -k SENDERS must stay within {MAX_COUNT}"
                ));
            }
            Mode::Broadcast(bc)
        }
        _ => Mode::Idle(idle),
    };
    if target.scheme == Scheme::Tcp && !matches!(mode, Mode::Echo(_)) {
        return Err("tcp:// URLs are for echo only; this mode needs ws:// or wss://".into());
    }
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0x5EED, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()).rotate_left(32);
    let common = Common {
        url: url.to_owned(),
        connect_concurrency,
        threads,
        seed,
    };
    Ok(Command::Run(mode, Box::new(target), common))
}

/// A parsed URL with the options that apply to it.
fn target(url: &str, deflate: bool, ca: Option<&str>) -> Result<Target, String> {
    let mut target = url::parse(url)?;
    if deflate && target.scheme == Scheme::Tcp {
        return Err("--deflate is for ws:// and wss:// URLs".into());
    }
    target.deflate = deflate;
    match (target.scheme, ca) {
        (Scheme::Wss, Some(ca)) => target.tls = Some(TlsTarget::new(ca, target.hostname())?),
        (Scheme::Wss, None) => {
            return Err("wss:// needs --ca PEM: the certificate(s) to trust".into())
        }
        (_, Some(_)) => return Err("--ca is for wss:// URLs".into()),
        (_, None) => {}
    }
    Ok(target)
}

/// A whole number in `min..=max`.
fn integer(flag: &str, value: &str, min: u64, max: u64) -> Result<usize, String> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => usize::try_from(n).map_err(|e| e.to_string()),
        _ => Err(format!(
            "invalid value '{value}' for '{flag}': expected a whole number from {min} to {max}"
        )),
    }
}

/// A number of seconds, at least `min`.
fn seconds(flag: &str, value: &str, min: f64) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(s) if s >= min && s <= MAX_SECS => Ok(s),
        _ => Err(format!(
            "invalid value '{value}' for '{flag}': expected seconds from {min} to {MAX_SECS}"
        )),
    }
}

/// A number above 0, at most `max`.
fn positive(flag: &str, value: &str, max: f64) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(x) if x > 0.0 && x <= max => Ok(x),
        _ => Err(format!(
            "invalid value '{value}' for '{flag}': expected a number above 0, at most {max}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str) -> Result<(Mode, Common), String> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        match parse(&args)? {
            Command::Run(mode, _, common) => Ok((mode, common)),
            Command::Help => Err("help".into()),
        }
    }

    #[test]
    fn defaults_and_options() {
        let (mode, common) = run("echo ws://127.0.0.1:1/").expect("valid");
        assert_eq!(
            mode,
            Mode::Echo(EchoArgs {
                connections: 100,
                size: 20,
                depth: 1,
                seconds: 10.0,
                warmup: 1.0,
                text: false,
                raw_frames: false,
            })
        );
        assert_eq!((common.connect_concurrency, common.threads), (200, 1));
        let (mode, common) = run(
            "broadcast ws://127.0.0.1:1/r -n 5 -k 2 -r 0.5 -t 3 --drain 1 --threads 2 --connect-concurrency 7",
        )
        .expect("valid");
        assert_eq!(
            mode,
            Mode::Broadcast(BroadcastArgs {
                receivers: 5,
                senders: 2,
                rate: 0.5,
                seconds: 3.0,
                drain: 1.0,
                size: 0,
                more: Vec::new(),
            })
        );
        assert_eq!((common.connect_concurrency, common.threads), (7, 2));
        // Options may come before the URL.
        let (mode, _) = run("idle -n 3 ws://127.0.0.1:1/ --rooms 2 -t 0").expect("valid");
        assert_eq!(
            mode,
            Mode::Idle(IdleArgs {
                connections: 3,
                hold: 0.0,
                rooms: 2
            })
        );
        assert!(matches!(
            run("echo tcp://127.0.0.1:1 --text -s 5"),
            Ok((Mode::Echo(EchoArgs { text: true, .. }), _))
        ));
        assert!(matches!(
            run("echo ws://127.0.0.1:1/ --raw-frames"),
            Ok((
                Mode::Echo(EchoArgs {
                    raw_frames: true,
                    ..
                }),
                _
            ))
        ));
        assert_eq!(run("echo ws://x/ --help"), Err("help".into()));
    }

    #[test]
    fn bad_command_lines_say_why() {
        for (line, why) in [
            ("", "missing mode"),
            ("flood ws://127.0.0.1:1/", "unknown mode"),
            ("echo", "missing <URL>"),
            ("echo ws://127.0.0.1:1/ -c", "needs a value"),
            ("echo ws://127.0.0.1:1/ -c 0", "whole number"),
            ("echo ws://127.0.0.1:1/ -c 1.5", "whole number"),
            ("echo ws://127.0.0.1:1/ -t nan", "seconds"),
            ("echo ws://127.0.0.1:1/ -t 1e300", "seconds"),
            ("echo ws://127.0.0.1:1/ -n 3", "unknown option"),
            ("echo ws://127.0.0.1:1/ extra", "unexpected argument"),
            ("echo tcp://127.0.0.1:1 -s 0", "at least 1"),
            ("echo ws://127.0.0.1:1/ -s 1073741824 -d 2", "1 GiB"),
            ("echo tcp://127.0.0.1:1 --raw-frames", "--raw-frames needs"),
            (
                "echo ws://127.0.0.1:1/ --raw-frames --deflate",
                "without --deflate",
            ),
            ("broadcast ws://127.0.0.1:1/ -r 0", "above 0"),
            ("broadcast ws://127.0.0.1:1/ -n 10000 -k 10000", "within"),
            ("idle tcp://127.0.0.1:1", "echo only"),
            ("idle ws://127.0.0.1:1/ --threads 0", "whole number"),
            ("echo wss://127.0.0.1:1/", "needs --ca"),
            ("echo ws://127.0.0.1:1/ --ca x.pem", "for wss://"),
            (
                "echo wss://127.0.0.1:1/ --ca /nonexistent.pem",
                "--ca '/nonexistent.pem'",
            ),
            (
                "echo wss://127.0.0.1:1/ --ca Cargo.toml",
                "no PEM certificate",
            ),
            ("idle http://127.0.0.1:1/", "expected ws://"),
        ] {
            let error = run(line).expect_err(line);
            assert!(error.contains(why), "{line}: {error}");
        }
    }

    #[test]
    fn seeds_differ_per_connection() {
        let (_, common) = run("idle ws://127.0.0.1:1/").expect("valid");
        assert_ne!(common.seed(0), common.seed(1));
        assert_ne!(common.seed(0), 0);
    }
}
