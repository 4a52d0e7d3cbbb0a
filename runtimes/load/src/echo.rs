//! `echo`: C connections each keep D messages of S bytes in flight. Every
//! echo is timed (send instants wait in a per-connection ring: echoes come
//! back in order) and answered with the next message. After a warm-up, the
//! echoes of exactly T seconds are counted.
//!
//! Three clients: the core's [`Connection`] (the default), raw frames after
//! its handshake (`--raw-frames`, see [`crate::raw_frames`]), and raw TCP
//! (`tcp://`). The last two share one loop ([`unit_echo`]).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use smol::channel::{self, Sender};
use smol::lock::Semaphore;
use smol::Timer;
use tincan_core::{Connection, Event};

use crate::client::{closed_by_server, Failure, Peer, Socket, Turn, WsClient};
use crate::gate::{count_ready, gate, Stop, Waiter};
use crate::histogram::Histogram;
use crate::raw_frames::RawFrames;
use crate::report::{self, Json};
use crate::shard;
use crate::url::{Scheme, Target};
use crate::Common;

/// The options of an echo run.
#[derive(Debug, Clone, PartialEq)]
pub struct EchoArgs {
    /// Connections.
    pub connections: usize,
    /// Payload bytes per message.
    pub size: usize,
    /// Messages in flight per connection.
    pub depth: usize,
    /// Length of the measured window, in seconds.
    pub seconds: f64,
    /// Time before the window, not measured.
    pub warmup: f64,
    /// Send text instead of binary.
    pub text: bool,
    /// After the handshake, send and read raw frames (see
    /// [`crate::raw_frames`]).
    pub raw_frames: bool,
}

/// What the connections of every thread share.
struct Run<'a> {
    target: &'a Target,
    common: &'a Common,
    args: &'a EchoArgs,
    limit: Semaphore,
    /// Each connection says once whether it connected.
    ready: Sender<bool>,
    started: Waiter,
    stopped: Waiter,
    measuring: AtomicBool,
}

/// One thread's counts.
#[derive(Default)]
struct Tally {
    messages: Cell<u64>,
    errors: Cell<u64>,
    latency: RefCell<Histogram>,
}

impl Tally {
    fn fail(&self, failure: &Failure) {
        self.errors.set(self.errors.get() + 1);
        report::failure(failure);
    }
}

/// Runs it, prints the JSON line and returns how many connections were made.
pub fn run(target: &Target, common: &Common, args: &EchoArgs) -> u64 {
    let (start, started) = gate();
    let (stop, stopped) = gate();
    let (ready, ready_rx) = channel::unbounded();
    let run = Run {
        target,
        common,
        args,
        limit: Semaphore::new(common.connect_concurrency),
        ready,
        started,
        stopped,
        measuring: AtomicBool::new(false),
    };
    let control = async {
        let connected = count_ready(&ready_rx, args.connections).await;
        if connected == 0 {
            stop.open();
            start.open();
            return (0, 0.0);
        }
        start.open();
        Timer::after(Duration::from_secs_f64(args.warmup)).await;
        run.measuring.store(true, Ordering::Relaxed);
        let began = Instant::now();
        Timer::after(Duration::from_secs_f64(args.seconds)).await;
        run.measuring.store(false, Ordering::Relaxed);
        let elapsed = began.elapsed().as_secs_f64();
        stop.open();
        (connected, elapsed)
    };
    let ((connected, elapsed), tallies) = shard::run(common.threads, |t| shard(&run, t), control);

    let mut latency = Histogram::new();
    let (mut messages, mut errors) = (0, 0);
    for tally in &tallies {
        messages += tally.messages.get();
        errors += tally.errors.get();
        latency.merge(&tally.latency.borrow());
    }
    let rate = messages as f64 / elapsed;
    let line = Json::new()
        .str("mode", "echo")
        .str("url", &common.url)
        .int("connections", args.connections as u64)
        .int("connected", connected)
        .int("size", args.size as u64)
        .int("depth", args.depth as u64)
        .num("seconds", elapsed, 3)
        .int("messages", messages)
        .num("msgs_per_sec", rate, 0)
        .num("mb_per_sec", rate * args.size as f64 / 1e6, 2)
        .int("p50_us", latency.quantile(0.5))
        .int("p99_us", latency.quantile(0.99))
        .int("max_us", latency.max())
        .int("errors", errors)
        .finish();
    report::print_line(&line);
    connected
}

/// The connections of thread `t`.
async fn shard(run: &Run<'_>, t: usize) -> Tally {
    let tally = Tally::default();
    let n = run.args.connections;
    shard::run_all(shard::indices(t, run.common.threads, n).map(|i| connection(run, &tally, i)))
        .await;
    tally
}

async fn connection(run: &Run<'_>, tally: &Tally, i: usize) {
    let result = match run.target.scheme {
        Scheme::Ws | Scheme::Wss if run.args.raw_frames => {
            let seed = run.common.seed(i);
            let connect = WsClient::connect(run.target, seed);
            let args = run.args;
            let payload = vec![b'x'; args.size];
            let key = (seed as u32).to_le_bytes();
            // Enough copies of the frame for a write of up to 64 KiB.
            let copies = (64 * 1024 / (args.size + 14)).clamp(1, args.depth);
            let peer = RawFrames::new(&payload, args.text, key, copies);
            let echo = |client: WsClient| async move {
                unit_echo(client.into_socket()?, peer, run, tally).await
            };
            session(run, connect, echo).await
        }
        Scheme::Ws | Scheme::Wss => {
            let connect = WsClient::connect(run.target, run.common.seed(i));
            session(run, connect, |client| ws_echo(client, run, tally)).await
        }
        Scheme::Tcp => {
            let connect = Socket::connect(run.target.addr);
            let peer = RawEcho {
                size: run.args.size.max(1),
                unsent: 0,
                arrived: 0,
            };
            session(run, connect, |socket| unit_echo(socket, peer, run, tally)).await
        }
    };
    if let Err(e) = result {
        tally.fail(&e);
    }
}

/// Connects (within the concurrency limit), says whether that worked,
/// waits for the start, and echoes.
async fn session<L, E: Future<Output = Result<(), Failure>>>(
    run: &Run<'_>,
    connect: impl Future<Output = Result<L, Failure>>,
    echo: impl FnOnce(L) -> E,
) -> Result<(), Failure> {
    let permit = run.limit.acquire().await;
    let link = connect.await;
    drop(permit);
    let _ = run.ready.try_send(link.is_ok());
    let link = link?;
    run.started.wait().await;
    echo(link).await
}

/// An echo came back at `now` for a message sent at `sent`.
fn record(run: &Run<'_>, latency: &mut Histogram, echoed: &mut u64, sent: Instant, now: Instant) {
    if run.measuring.load(Ordering::Relaxed) {
        *echoed += 1;
        latency.record(now.saturating_duration_since(sent).as_micros() as u64);
    }
}

async fn ws_echo(mut client: WsClient, run: &Run<'_>, tally: &Tally) -> Result<(), Failure> {
    let args = run.args;
    let binary = vec![b'x'; args.size];
    let text = "x".repeat(args.size);
    let send = |conn: &mut Connection| {
        let queued = if args.text {
            conn.send_text(&text)
        } else {
            conn.send_binary(&binary)
        };
        queued.map_err(|e| Failure::Closed(format!("cannot send: {e}")))
    };
    let mut in_flight = VecDeque::with_capacity(args.depth);
    let now = Instant::now();
    for _ in 0..args.depth {
        send(&mut client.conn)?;
        in_flight.push_back(now);
    }
    let mut stop = Stop::new(&run.stopped);
    while client.turn(|cx| stop.poll(cx)).await? {
        // One clock read per wake-up: it is when this batch arrived, and
        // (nearly) when the answers queued now will leave.
        let now = Instant::now();
        let mut echoed = 0;
        let mut latency = tally.latency.borrow_mut();
        while let Some(event) = client.conn.poll_event() {
            match event {
                Event::Message(message) => {
                    let len = message.as_bytes().len();
                    client.recycle(message);
                    let Some(sent) = in_flight.pop_front().filter(|_| len == args.size) else {
                        // Not the echo of what we sent.
                        tally.errors.set(tally.errors.get() + 1);
                        continue;
                    };
                    record(run, &mut latency, &mut echoed, sent, now);
                    if !run.stopped.is_open() {
                        send(&mut client.conn)?;
                        in_flight.push_back(now);
                    }
                }
                Event::Closed { code, reason } => return Err(closed_by_server(code, &reason)),
                _ => {}
            }
        }
        tally.messages.set(tally.messages.get() + echoed);
    }
    client.close().await;
    Ok(())
}

/// Bytes to send: every raw message is SIZE bytes of `x`.
static FILLER: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// What [`unit_echo`] drives: a peer that queues one message at a time and
/// counts the echoes.
pub(crate) trait Units: Peer {
    /// Queues one more message.
    fn queue(&mut self);
    /// The echoes, and the messages that were not echoes, since the last
    /// call.
    fn take_echoes(&mut self) -> (usize, usize);
    /// Why the server's stream ended, if it did.
    fn ended(&self) -> Option<&str>;
}

/// Raw TCP: a message is SIZE bytes; how many are left to send and have
/// arrived.
struct RawEcho {
    size: usize,
    unsent: usize,
    arrived: usize,
}

impl Peer for RawEcho {
    fn transmit(&self) -> Option<&[u8]> {
        (self.unsent > 0).then(|| &FILLER[..self.unsent.min(FILLER.len())])
    }

    fn advance(&mut self, n: usize) {
        self.unsent -= n;
    }

    fn receive(&mut self, bytes: &[u8]) {
        self.arrived += bytes.len();
    }
}

impl Units for RawEcho {
    fn queue(&mut self) {
        self.unsent += self.size;
    }

    fn take_echoes(&mut self) -> (usize, usize) {
        let echoes = self.arrived / self.size;
        self.arrived %= self.size;
        (echoes, 0)
    }

    fn ended(&self) -> Option<&str> {
        None
    }
}

/// Echoes with a peer of raw messages (raw frames, or raw TCP).
async fn unit_echo(
    mut socket: Socket,
    mut peer: impl Units,
    run: &Run<'_>,
    tally: &Tally,
) -> Result<(), Failure> {
    let depth = run.args.depth;
    for _ in 0..depth {
        peer.queue();
    }
    let mut in_flight: VecDeque<Instant> = (0..depth).map(|_| Instant::now()).collect();
    let mut stop = Stop::new(&run.stopped);
    loop {
        let turn = socket.turn(&mut peer, |cx| stop.poll(cx)).await;
        match turn.map_err(|e| Failure::Closed(e.to_string()))? {
            Turn::Interrupted => return Ok(()),
            Turn::Eof => return Err(Failure::Closed("the server closed the connection".into())),
            Turn::Read => {}
        }
        let now = Instant::now();
        let (mut echoed, mut latency) = (0, tally.latency.borrow_mut());
        let (echoes, wrong) = peer.take_echoes();
        // Not the echo of what we sent: counted, and not answered (as in
        // `ws_echo`).
        tally.errors.set(tally.errors.get() + wrong as u64);
        in_flight.drain(..wrong.min(in_flight.len()));
        for _ in 0..echoes {
            let Some(sent) = in_flight.pop_front() else {
                // More came back than was sent.
                tally.errors.set(tally.errors.get() + 1);
                continue;
            };
            record(run, &mut latency, &mut echoed, sent, now);
            if !run.stopped.is_open() {
                peer.queue();
                in_flight.push_back(now);
            }
        }
        tally.messages.set(tally.messages.get() + echoed);
        if let Some(why) = peer.ended() {
            return Err(Failure::Closed(why.to_string()));
        }
    }
}
