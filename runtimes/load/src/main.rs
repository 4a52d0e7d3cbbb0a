//! `tincan-load`: a WebSocket load generator built on tincan-core's client
//! role, usable against any WebSocket server (like websocat or tcpkali).
//!
//! ```text
//! tincan-load echo <URL> [-c CONNS=100] [-s SIZE=20] [-d DEPTH=1] [-t SECS=10] [--warmup SECS=1] [--text]
//! tincan-load broadcast <URL> [-n RECEIVERS=1000] [-k SENDERS=1] [-r RATE=100] [-t SECS=10] [--drain SECS=5]
//! tincan-load idle <URL> [-n CONNS=10000] [-t HOLD_SECS=30] [--rooms N=1]
//! ```
//!
//! Each run prints one JSON line on stdout:
//! - `echo`: C connections each keep D messages of S bytes in flight (binary,
//!   or text with `--text`); after the warm-up, echoes are counted for T
//!   seconds: `msgs_per_sec`, `mb_per_sec` (payload, one way), round trip
//!   `p50_us`/`p99_us`/`max_us`. A `tcp://host:port` URL talks raw TCP (S-byte
//!   blobs echoed back): the ceiling for a given size and depth.
//! - `broadcast`: N receivers join the URL's room, then K senders each send R
//!   messages a second for T seconds. `delivered_per_sec` is every marked
//!   message received divided by the time from the first send to the last
//!   delivery (at least T); `lost` and `out_of_order` must be 0;
//!   latencies are from send to receipt.
//! - `idle`: N connections are opened; the line (`connected`, `failed`) is
//!   printed once all attempts are done, then they are held (answering pings)
//!   for HOLD seconds and closed. With `--rooms N` connection i goes to the
//!   URL's path followed by `i % N` (`/idle0`, `/idle1`, …), so that a chat
//!   server's rooms stay small.
//!
//! One thread runs every connection (smol's local executor), so the tool
//! takes at most one core from the server it measures.

mod broadcast;
mod client;
mod echo;
mod gate;
mod histogram;
mod idle;
mod url;

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use smol::LocalExecutor;

use broadcast::BroadcastArgs;
use echo::EchoArgs;
use url::{Scheme, Target};

const USAGE: &str = "Usage:
  tincan-load echo <URL> [-c CONNS=100] [-s SIZE=20] [-d DEPTH=1] [-t SECS=10] [--warmup SECS=1] [--text]
  tincan-load broadcast <URL> [-n RECEIVERS=1000] [-k SENDERS=1] [-r RATE=100] [-t SECS=10] [--drain SECS=5]
  tincan-load idle <URL> [-n CONNS=10000] [-t HOLD_SECS=30] [--rooms N=1]

URL is ws://host:port/path (the path picks a chat room), or for echo
tcp://host:port for a raw TCP echo server. RATE is messages per second per
sender. Every mode also takes --connect-concurrency N (handshakes in flight,
default 200). Each run prints one JSON line.
";

/// Options every mode has.
pub struct Common {
    url: String,
    connect_concurrency: usize,
    seed: u64,
}

impl Common {
    /// A seed for connection `i` (handshake keys and masks).
    fn seed(&self, i: usize) -> u64 {
        self.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

enum Mode {
    Echo(EchoArgs),
    Broadcast(BroadcastArgs),
    Idle {
        connections: usize,
        rooms: usize,
        hold: f64,
    },
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let (mode, target, common) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("tincan-load: error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let ex = LocalExecutor::new();
    let line = smol::block_on(ex.run(async {
        match &mode {
            Mode::Echo(args) => echo::run(&ex, &target, &common, args).await,
            Mode::Broadcast(args) => broadcast::run(&ex, &target, &common, args).await,
            Mode::Idle {
                connections,
                rooms,
                hold,
            } => idle::run(&ex, &target, &common, *connections, *rooms, *hold).await,
        }
    }));
    if !line.is_empty() {
        print_line(&line);
    }
    if CONNECTED_NONE.load(Ordering::Relaxed) && line.contains("\"connected\":0,") {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

static CONNECTED_NONE: AtomicBool = AtomicBool::new(false);
static FD_HINT: AtomicBool = AtomicBool::new(false);

fn parse(args: &[String]) -> Result<(Mode, Target, Common), String> {
    let mode = args
        .first()
        .ok_or("missing mode: echo, broadcast or idle")?;
    let url = args.get(1).ok_or("missing <URL>")?;
    let target = url::parse(url)?;
    let mut common = Common {
        url: url.clone(),
        connect_concurrency: 200,
        seed: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    };
    let mut echo = EchoArgs {
        connections: 100,
        size: 20,
        depth: 1,
        seconds: 10.0,
        warmup: 1.0,
        text: false,
    };
    let mut bc = BroadcastArgs {
        receivers: 1000,
        senders: 1,
        rate: 100.0,
        seconds: 10.0,
        drain: 5.0,
    };
    let (mut idle_n, mut rooms, mut hold) = (10_000usize, 1usize, 30.0f64);
    let mut rest = args[2..].iter();
    while let Some(flag) = rest.next() {
        let mut value = || {
            rest.next()
                .ok_or_else(|| format!("option '{flag}' needs a value"))
        };
        match (mode.as_str(), flag.as_str()) {
            (_, "--connect-concurrency") => {
                common.connect_concurrency = number(flag, value()?, 1.0)? as usize
            }
            ("echo", "-c") => echo.connections = number(flag, value()?, 1.0)? as usize,
            ("echo", "-s") => echo.size = number(flag, value()?, 0.0)? as usize,
            ("echo", "-d") => echo.depth = number(flag, value()?, 1.0)? as usize,
            ("echo", "-t") => echo.seconds = number(flag, value()?, 0.001)?,
            ("echo", "--warmup") => echo.warmup = number(flag, value()?, 0.0)?,
            ("echo", "--text") => echo.text = true,
            ("broadcast", "-n") => bc.receivers = number(flag, value()?, 1.0)? as usize,
            ("broadcast", "-k") => bc.senders = number(flag, value()?, 1.0)? as usize,
            ("broadcast", "-r") => bc.rate = number(flag, value()?, 0.001)?,
            ("broadcast", "-t") => bc.seconds = number(flag, value()?, 0.001)?,
            ("broadcast", "--drain") => bc.drain = number(flag, value()?, 0.0)?,
            ("idle", "-n") => idle_n = number(flag, value()?, 1.0)? as usize,
            ("idle", "-t") => hold = number(flag, value()?, 0.0)?,
            ("idle", "--rooms") => rooms = number(flag, value()?, 1.0)? as usize,
            ("echo" | "broadcast" | "idle", _) => {
                return Err(format!("unknown option '{flag}' for {mode}"))
            }
            _ => break,
        }
    }
    if target.scheme == Scheme::Tcp && mode != "echo" {
        return Err(format!("{mode} needs a ws:// URL"));
    }
    let mode = match mode.as_str() {
        "echo" => Mode::Echo(echo),
        "broadcast" => Mode::Broadcast(bc),
        "idle" => Mode::Idle {
            connections: idle_n,
            rooms,
            hold,
        },
        other => return Err(format!("unknown mode '{other}': echo, broadcast or idle")),
    };
    Ok((mode, target, common))
}

/// A number at least `min`.
fn number(flag: &str, value: &str, min: f64) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= min => Ok(n),
        _ => Err(format!(
            "invalid value '{value}' for '{flag}': expected a number >= {min}"
        )),
    }
}

/// Formats `fields` as one JSON object (values are already JSON).
fn json(fields: &[(&str, String)]) -> String {
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    let line = format!("{{{}}}", body.join(","));
    if line.contains("\"connected\":0,") {
        CONNECTED_NONE.store(true, Ordering::Relaxed);
    }
    line
}

/// Prints a line on stdout at once (a script may be waiting for it).
fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Reports a failed connection on stderr, with a hint when the cause is too
/// few file descriptors (once).
fn report(failure: &client::Failure) {
    if let client::Failure::Connect {
        os_error: Some(24), ..
    } = failure
    {
        if !FD_HINT.swap(true, Ordering::Relaxed) {
            eprintln!("tincan-load: out of file descriptors: raise the limit with `ulimit -n`");
        }
        return;
    }
    // The first few say what went wrong; the JSON line counts them all.
    if FAILURES_SHOWN.fetch_add(1, Ordering::Relaxed) < 5 {
        eprintln!("tincan-load: {failure}");
    } else if !MORE_HINT.swap(true, Ordering::Relaxed) {
        eprintln!("tincan-load: more failures: see \"errors\" in the result");
    }
}

static FAILURES_SHOWN: AtomicUsize = AtomicUsize::new(0);
static MORE_HINT: AtomicBool = AtomicBool::new(false);
