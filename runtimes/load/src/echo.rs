//! `echo`: C connections each keep D messages of S bytes in flight; every
//! echo is timed and answered with the next message.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use smol::future;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::lock::Semaphore;
use smol::{LocalExecutor, Timer};
use tincan_core::{Event, Message};

use crate::client::{tcp_connect, Failure, WsClient};
use crate::gate::{gate, Waiter};
use crate::histogram::Histogram;
use crate::url::{Scheme, Target};
use crate::{json, Common};

/// The options of an echo run.
#[derive(Debug, Clone)]
pub struct EchoArgs {
    /// Connections.
    pub connections: usize,
    /// Payload bytes per message.
    pub size: usize,
    /// Messages in flight per connection.
    pub depth: usize,
    /// Length of the measured window.
    pub seconds: f64,
    /// Time before the window, not measured.
    pub warmup: f64,
    /// Send text instead of binary.
    pub text: bool,
}

/// What all connections share.
struct Shared {
    measuring: Cell<bool>,
    messages: Cell<u64>,
    errors: Cell<u64>,
    latency: RefCell<Histogram>,
    stop: Waiter,
}

impl Shared {
    /// Counts a failed connection and says why.
    fn fail(&self, failure: &Failure) {
        self.errors.set(self.errors.get() + 1);
        crate::report(failure);
    }
}

/// Runs it and returns the JSON line.
pub async fn run(
    ex: &LocalExecutor<'_>,
    target: &Target,
    common: &Common,
    args: &EchoArgs,
) -> String {
    let (start, started) = gate();
    let (stop, stopped) = gate();
    let shared = Rc::new(Shared {
        measuring: Cell::new(false),
        messages: Cell::new(0),
        errors: Cell::new(0),
        latency: RefCell::new(Histogram::new()),
        stop: stopped,
    });
    let limit = Rc::new(Semaphore::new(common.connect_concurrency));
    let (ready_tx, ready_rx) = smol::channel::unbounded::<bool>();
    let tasks: Vec<_> = (0..args.connections)
        .map(|i| {
            let (shared, limit, started, ready) = (
                shared.clone(),
                limit.clone(),
                started.clone(),
                ready_tx.clone(),
            );
            let (target, args, seed) = (target.clone(), args.clone(), common.seed(i));
            ex.spawn(async move {
                let result =
                    connection(&target, &args, seed, &shared, &limit, &started, &ready).await;
                if let Err(e) = result {
                    shared.fail(&e);
                    let _ = ready.try_send(false);
                }
            })
        })
        .collect();
    // Everyone connected (or failed): warm up, then measure.
    let mut connected = 0;
    for _ in 0..args.connections {
        if ready_rx.recv().await == Ok(true) {
            connected += 1;
        }
    }
    start.open();
    Timer::after(Duration::from_secs_f64(args.warmup)).await;
    shared.measuring.set(true);
    let began = Instant::now();
    Timer::after(Duration::from_secs_f64(args.seconds)).await;
    shared.measuring.set(false);
    let elapsed = began.elapsed().as_secs_f64();
    stop.open();
    for task in tasks {
        task.await;
    }
    let messages = shared.messages.get();
    let latency = shared.latency.borrow();
    let rate = messages as f64 / elapsed;
    json(&[
        ("mode", "\"echo\"".into()),
        ("url", format!("\"{}\"", common.url)),
        ("connections", args.connections.to_string()),
        ("connected", connected.to_string()),
        ("size", args.size.to_string()),
        ("depth", args.depth.to_string()),
        ("seconds", format!("{elapsed:.3}")),
        ("messages", messages.to_string()),
        ("msgs_per_sec", format!("{rate:.0}")),
        (
            "mb_per_sec",
            format!("{:.2}", rate * args.size as f64 / 1e6),
        ),
        ("p50_us", latency.quantile(0.5).to_string()),
        ("p99_us", latency.quantile(0.99).to_string()),
        ("max_us", latency.max().to_string()),
        ("errors", shared.errors.get().to_string()),
    ])
}

async fn connection(
    target: &Target,
    args: &EchoArgs,
    seed: u64,
    shared: &Shared,
    limit: &Semaphore,
    started: &Waiter,
    ready: &smol::channel::Sender<bool>,
) -> Result<(), Failure> {
    let permit = limit.acquire().await;
    match target.scheme {
        Scheme::Ws => {
            let client = WsClient::connect(target, seed).await?;
            drop(permit);
            let _ = ready.try_send(true);
            started.wait().await;
            ws_loop(client, args, shared).await
        }
        Scheme::Tcp => {
            let stream = tcp_connect(target).await?;
            drop(permit);
            let _ = ready.try_send(true);
            started.wait().await;
            tcp_loop(stream, args, shared).await
        }
    }
}

/// Records one echo that arrived now for a message sent at `sent`.
fn record(shared: &Shared, sent: Option<Instant>) {
    if shared.measuring.get() {
        shared.messages.set(shared.messages.get() + 1);
        if let Some(sent) = sent {
            shared
                .latency
                .borrow_mut()
                .record(sent.elapsed().as_micros() as u64);
        }
    }
}

async fn ws_loop(mut client: WsClient, args: &EchoArgs, shared: &Shared) -> Result<(), Failure> {
    let payload = vec![b'x'; args.size];
    let text = String::from_utf8(payload.clone()).unwrap_or_default();
    let mut in_flight = VecDeque::with_capacity(args.depth);
    let send = |client: &mut WsClient, in_flight: &mut VecDeque<Instant>| {
        let queued = if args.text {
            client.conn.send_text(&text)
        } else {
            client.conn.send_binary(&payload)
        };
        in_flight.push_back(Instant::now());
        queued.map_err(|e| Failure::Closed(e.to_string()))
    };
    for _ in 0..args.depth {
        send(&mut client, &mut in_flight)?;
    }
    client.flush().await?;
    loop {
        if !client.read_or(&shared.stop).await? {
            break;
        }
        while let Some(event) = client.conn.poll_event() {
            match event {
                Event::Message(message) => {
                    if message_len(&message) != args.size {
                        shared.errors.set(shared.errors.get() + 1);
                    }
                    record(shared, in_flight.pop_front());
                    client.conn.recycle(message);
                    if !shared.stop.is_open() {
                        send(&mut client, &mut in_flight)?;
                    }
                }
                Event::Closed { code, reason } => {
                    return Err(Failure::Closed(format!(
                        "closed by the server: {code:?} {reason}"
                    )))
                }
                _ => {}
            }
        }
        client.flush().await?;
    }
    client.close().await;
    Ok(())
}

fn message_len(message: &Message) -> usize {
    message.as_bytes().len()
}

async fn tcp_loop(
    mut stream: smol::net::TcpStream,
    args: &EchoArgs,
    shared: &Shared,
) -> Result<(), Failure> {
    let size = args.size.max(1);
    let mut out = vec![b'x'; size * args.depth];
    let mut buf = vec![0u8; 64 * 1024];
    let mut in_flight: VecDeque<Instant> = (0..args.depth).map(|_| Instant::now()).collect();
    let io = |e: std::io::Error| Failure::Closed(e.to_string());
    stream.write_all(&out).await.map_err(io)?;
    let mut pending = 0; // bytes of the next echo that have arrived
    loop {
        let read = future::or(async { Some(stream.read(&mut buf).await) }, async {
            shared.stop.wait().await;
            None
        })
        .await;
        let n = match read {
            None => return Ok(()),
            Some(Ok(0)) => return Err(Failure::Closed("the server closed the connection".into())),
            Some(result) => result.map_err(io)?,
        };
        pending += n;
        let mut answered = 0;
        while pending >= size {
            pending -= size;
            record(shared, in_flight.pop_front());
            answered += 1;
        }
        if answered > 0 && !shared.stop.is_open() {
            out.resize(size * answered, b'x');
            let now = Instant::now();
            in_flight.extend((0..answered).map(|_| now));
            stream.write_all(&out).await.map_err(io)?;
        }
    }
}
