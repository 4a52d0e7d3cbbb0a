//! `broadcast`: N receivers join the URL's room; once all are in, K senders
//! each send R text messages a second for T seconds. Each message carries
//! `#tl <sender> <seq> <t_us>` (`t_us`: microseconds since the tool
//! started), found anywhere in what arrives: servers may prefix it
//! (`guest-7: #tl 0 15 123456`) or wrap it in JSON. Per receiver and sender
//! the next sequence number is tracked, which gives loss, order and, from
//! `t_us`, delivery latency.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use smol::channel::{self, Sender};
use smol::lock::Semaphore;
use smol::Timer;
use tincan_core::{Event, Message};

use crate::client::{closed_by_server, timer_fired, Failure, WsClient};
use crate::gate::{count_ready, gate, Stop, Waiter};
use crate::histogram::Histogram;
use crate::report::{self, Json};
use crate::shard;
use crate::url::Target;
use crate::Common;

/// The options of a broadcast run.
#[derive(Debug, Clone, PartialEq)]
pub struct BroadcastArgs {
    /// Receiving connections.
    pub receivers: usize,
    /// Sending connections.
    pub senders: usize,
    /// Messages per second per sender.
    pub rate: f64,
    /// How long the senders send, in seconds.
    pub seconds: f64,
    /// How long to wait for stragglers after sending stops.
    pub drain: f64,
    /// Pad each message with chat-like words to at least this many bytes
    /// (0: the marker alone), so compression has text to work on.
    pub size: usize,
    /// More URLs (nodes sharing the room): receiver `r` and sender `s`
    /// connect to URL `r % U` and `s % U` of the first and these, so each
    /// node gets its share of both.
    pub more: Vec<Target>,
}

/// Words the padding repeats: chat-like text, which compresses as chat does.
const FILLER: &str = " the quick brown fox jumps over the lazy dog and says hello to the room";

/// The marker a message carries.
const MARK: &str = "#tl ";

/// How often a sender sends what is due.
const TICK: Duration = Duration::from_millis(2);

/// How often the drain checks whether everything has arrived.
const DRAIN_CHECK: Duration = Duration::from_millis(5);

/// What the connections of every thread share.
struct Run<'a> {
    target: &'a Target,
    common: &'a Common,
    args: &'a BroadcastArgs,
    /// Where every `t_us` counts from.
    origin: Instant,
    limit: Semaphore,
    /// Each connection says once whether it connected.
    ready: Sender<bool>,
    /// Every receiver is in: the senders connect.
    receivers_in: Waiter,
    /// Every sender is in: sending starts.
    go: Waiter,
    stopped: Waiter,
    /// When the sending window ends, in µs since `origin`.
    window_end_us: AtomicU64,
    /// Each sender says once how many messages it sent.
    done: Sender<(usize, u64)>,
    /// The next sequence number receiver `r` expects from sender `s`, at
    /// `r * senders + s`: written by the receiver alone, read by the drain.
    progress: Box<[AtomicU64]>,
}

impl Run<'_> {
    /// The URL of connection `i` among the receivers (or the senders).
    fn target_of(&self, i: usize) -> &Target {
        match i % (self.args.more.len() + 1) {
            0 => self.target,
            n => &self.args.more[n - 1],
        }
    }
}

/// One thread's counts.
#[derive(Default)]
struct Tally {
    delivered: Cell<u64>,
    in_window: Cell<u64>,
    lost: Cell<u64>,
    out_of_order: Cell<u64>,
    errors: Cell<u64>,
    latency: RefCell<Histogram>,
}

impl Tally {
    fn fail(&self, failure: &Failure) {
        self.errors.set(self.errors.get() + 1);
        report::failure(failure);
    }
}

fn add(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get() + n);
}

fn micros(d: Duration) -> u64 {
    d.as_micros() as u64
}

/// Finds `#tl <sender> <seq> <t_us>` anywhere in `text`.
pub fn parse_marker(text: &str) -> Option<(usize, u64, u64)> {
    let rest = &text[text.find(MARK)? + MARK.len()..];
    let mut numbers = rest.split(' ').map(|part| {
        let digits = part
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(part.len());
        part[..digits].parse::<u64>().ok()
    });
    let sender = numbers.next()??;
    let seq = numbers.next()??;
    let t_us = numbers.next()??;
    Some((usize::try_from(sender).ok()?, seq, t_us))
}

/// Runs it, prints the JSON line and returns how many receivers connected.
pub fn run(target: &Target, common: &Common, args: &BroadcastArgs) -> u64 {
    let (open_receivers_in, receivers_in) = gate();
    let (open_go, go) = gate();
    let (stop, stopped) = gate();
    let (ready, ready_rx) = channel::unbounded();
    let (done, done_rx) = channel::unbounded();
    let (n, k) = (args.receivers, args.senders);
    let run = Run {
        target,
        common,
        args,
        origin: Instant::now(),
        limit: Semaphore::new(common.connect_concurrency),
        ready,
        receivers_in,
        go,
        stopped,
        window_end_us: AtomicU64::new(u64::MAX),
        done,
        progress: (0..n * k).map(|_| AtomicU64::new(0)).collect(),
    };
    let control = async {
        let listening = count_ready(&ready_rx, n).await;
        if listening == 0 {
            stop.open();
            open_receivers_in.open();
            return (0, 0);
        }
        open_receivers_in.open();
        for _ in 0..k {
            let _ = ready_rx.recv().await;
        }
        let window = micros(run.origin.elapsed()) + micros(Duration::from_secs_f64(args.seconds));
        run.window_end_us.store(window, Ordering::Relaxed);
        open_go.open();
        let mut last = vec![0u64; k];
        for _ in 0..k {
            if let Ok((s, sent)) = done_rx.recv().await {
                last[s] = sent;
            }
        }
        // Until every receiver has every sender's last message, or time is up.
        let deadline = Instant::now() + Duration::from_secs_f64(args.drain);
        let mut complete = 0; // receivers before this one have everything
        loop {
            while complete < n
                && (0..k).all(|s| run.progress[complete * k + s].load(Ordering::Relaxed) >= last[s])
            {
                complete += 1;
            }
            if complete == n || Instant::now() >= deadline {
                break;
            }
            Timer::after(DRAIN_CHECK).await;
        }
        stop.open();
        (listening, last.iter().sum::<u64>())
    };
    let ((listening, sent), tallies) = shard::run(common.threads, |t| shard(&run, t), control);

    let mut latency = Histogram::new();
    let (mut delivered, mut in_window, mut gaps, mut out_of_order, mut errors) = (0, 0, 0, 0, 0);
    for tally in &tallies {
        delivered += tally.delivered.get();
        in_window += tally.in_window.get();
        gaps += tally.lost.get();
        out_of_order += tally.out_of_order.get();
        errors += tally.errors.get();
        latency.merge(&tally.latency.borrow());
    }
    let expected = sent * listening;
    let line = Json::new()
        .str("mode", "broadcast")
        .str("url", &common.url)
        .int("receivers", n as u64)
        .int("connected", listening)
        .int("senders", k as u64)
        .num("rate", args.rate, rate_decimals(args.rate))
        .num("seconds", args.seconds, 3)
        .int("sent", sent)
        .int("expected", expected)
        .int("delivered", delivered)
        .num("delivered_per_sec", in_window as f64 / args.seconds, 0)
        .int("lost", expected.saturating_sub(delivered).max(gaps))
        .int("out_of_order", out_of_order)
        .int("p50_us", latency.quantile(0.5))
        .int("p99_us", latency.quantile(0.99))
        .int("max_us", latency.max())
        .int("errors", errors)
        .finish();
    report::print_line(&line);
    listening
}

/// Whole rates print as integers.
fn rate_decimals(rate: f64) -> usize {
    if rate.fract() == 0.0 {
        0
    } else {
        3
    }
}

/// The receivers and senders of thread `t`.
async fn shard(run: &Run<'_>, t: usize) -> Tally {
    let tally = Tally::default();
    let (n, k) = (run.args.receivers, run.args.senders);
    let members = shard::indices(t, run.common.threads, n + k).map(|i| {
        let tally = &tally;
        async move {
            if i < n {
                receiver(run, tally, i).await;
            } else {
                sender(run, tally, i - n).await;
            }
        }
    });
    shard::run_all(members).await;
    tally
}

async fn receiver(run: &Run<'_>, tally: &Tally, r: usize) {
    let k = run.args.senders;
    let progress = &run.progress[r * k..(r + 1) * k];
    let permit = run.limit.acquire().await;
    let connected = WsClient::connect(run.target_of(r), run.common.seed(r)).await;
    drop(permit);
    let _ = run.ready.try_send(connected.is_ok());
    let result = match connected {
        Ok(client) => receive(client, run, tally, progress).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tally.fail(&e);
        // Nothing more will come: the drain must not wait for it.
        for slot in progress {
            slot.store(u64::MAX, Ordering::Relaxed);
        }
    }
}

/// Checks each marked message's order and times its delivery.
async fn receive(
    mut client: WsClient,
    run: &Run<'_>,
    tally: &Tally,
    progress: &[AtomicU64],
) -> Result<(), Failure> {
    let mut stop = Stop::new(&run.stopped);
    while client.turn(|cx| stop.poll(cx)).await? {
        let now_us = micros(run.origin.elapsed());
        let in_window = now_us <= run.window_end_us.load(Ordering::Relaxed);
        let mut latency = tally.latency.borrow_mut();
        while let Some(event) = client.conn.poll_event() {
            match event {
                Event::Message(Message::Text(text)) => {
                    if let Some((sender, seq, t_us)) = parse_marker(&text) {
                        if let Some(slot) = progress.get(sender) {
                            latency.record(now_us.saturating_sub(t_us));
                            add(&tally.delivered, 1);
                            add(&tally.in_window, u64::from(in_window));
                            let expected = slot.load(Ordering::Relaxed);
                            if seq < expected {
                                add(&tally.out_of_order, 1);
                            } else {
                                add(&tally.lost, seq - expected);
                                slot.store(seq + 1, Ordering::Relaxed);
                            }
                        }
                    }
                    client.recycle(Message::Text(text));
                }
                Event::Message(message) => client.recycle(message),
                Event::Closed { code, reason } => return Err(closed_by_server(code, &reason)),
                _ => {}
            }
        }
    }
    client.close().await;
    Ok(())
}

async fn sender(run: &Run<'_>, tally: &Tally, s: usize) {
    run.receivers_in.wait().await;
    if run.stopped.is_open() {
        return; // no receiver: no run
    }
    let permit = run.limit.acquire().await;
    let target = run.target_of(s);
    let connected = WsClient::connect(target, run.common.seed(run.args.receivers + s)).await;
    drop(permit);
    let _ = run.ready.try_send(connected.is_ok());
    let mut client = match connected {
        Ok(client) => client,
        Err(e) => {
            let _ = run.done.try_send((s, 0));
            tally.fail(&e);
            return;
        }
    };
    run.go.wait().await;
    let mut sent = 0;
    let result = send(&mut client, run, s, &mut sent).await;
    let _ = run.done.try_send((s, sent));
    let result = match result {
        // Keep reading (a server may drop a client that does not) until the end.
        Ok(()) => {
            let mut stop = Stop::new(&run.stopped);
            loop {
                match client.turn(|cx| stop.poll(cx)).await {
                    Ok(true) => {
                        if let Err(e) = discard(&mut client) {
                            break Err(e);
                        }
                    }
                    Ok(false) => break Ok(()),
                    Err(e) => break Err(e),
                }
            }
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => client.close().await,
        Err(e) => tally.fail(&e),
    }
}

/// Sends R messages a second for T seconds, paced by a timer tick: at each
/// tick, what is due. Reads (and drops) what arrives meanwhile.
async fn send(
    client: &mut WsClient,
    run: &Run<'_>,
    me: usize,
    sent: &mut u64,
) -> Result<(), Failure> {
    let args = run.args;
    let total = (args.rate * args.seconds).round() as u64;
    let start = Instant::now();
    let mut tick = Timer::interval(TICK);
    let mut text = String::with_capacity(64);
    loop {
        // The first message goes at once, the last 1/R before T.
        let due = ((start.elapsed().as_secs_f64() * args.rate) as u64 + 1).min(total);
        let t_us = micros(run.origin.elapsed());
        while *sent < due {
            text.clear();
            let _ = write!(text, "{MARK}{me} {sent} {t_us}");
            while text.len() < args.size {
                let room = args.size - text.len();
                text.push_str(&FILLER[..room.min(FILLER.len())]);
            }
            client
                .conn
                .send_text(&text)
                .map_err(|e| Failure::Closed(format!("cannot send: {e}")))?;
            *sent += 1;
        }
        if *sent >= total {
            return Ok(());
        }
        while client.turn(timer_fired(&mut tick)).await? {
            discard(client)?;
        }
    }
}

/// Drops what arrived (pings are answered by the core).
fn discard(client: &mut WsClient) -> Result<(), Failure> {
    while let Some(event) = client.conn.poll_event() {
        match event {
            Event::Message(message) => client.recycle(message),
            Event::Closed { code, reason } => return Err(closed_by_server(code, &reason)),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_wherever_they_are() {
        assert_eq!(parse_marker("#tl 1 2 3"), Some((1, 2, 3)));
        assert_eq!(
            parse_marker("guest-7: #tl 0 15 123456"),
            Some((0, 15, 123456))
        );
        assert_eq!(
            parse_marker(r##"{"type":"message","text":"#tl 3 4 5","ts":1}"##),
            Some((3, 4, 5))
        );
        assert_eq!(parse_marker("guest-1 joined"), None);
        assert_eq!(parse_marker("#tl 1 x 3"), None);
        assert_eq!(parse_marker("#tl 1 2"), None);
        assert_eq!(parse_marker("#tl"), None);
    }
}
