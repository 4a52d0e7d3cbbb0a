//! `broadcast`: N receivers in one room, then K senders each sending R text
//! messages a second for T seconds. Each message carries
//! `#tl <sender> <seq> <micros since the tool started>`, found anywhere in
//! what arrives (servers may prefix it or wrap it in JSON), so delivery
//! latency, loss and order can be checked per receiver and sender.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use smol::future;
use smol::lock::Semaphore;
use smol::{LocalExecutor, Timer};
use tincan_core::{Event, Message};

use crate::client::{Failure, WsClient};
use crate::gate::{gate, Waiter};
use crate::histogram::Histogram;
use crate::url::Target;
use crate::{json, Common};

/// The options of a broadcast run.
#[derive(Debug, Clone)]
pub struct BroadcastArgs {
    /// Receiving connections.
    pub receivers: usize,
    /// Sending connections.
    pub senders: usize,
    /// Messages per second per sender.
    pub rate: f64,
    /// How long the senders send.
    pub seconds: f64,
    /// How long to wait for stragglers after sending stops.
    pub drain: f64,
}

struct Shared {
    origin: Instant,
    delivered: Cell<u64>,
    lost: Cell<u64>,
    out_of_order: Cell<u64>,
    errors: Cell<u64>,
    last_delivery: Cell<Option<Instant>>,
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

/// The marker a message carries.
const MARK: &str = "#tl ";

/// Finds `#tl <sender> <seq> <t_us>` in `text`.
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
    let t = numbers.next()??;
    Some((usize::try_from(sender).ok()?, seq, t))
}

/// Runs it and returns the JSON line.
pub async fn run(
    ex: &LocalExecutor<'_>,
    target: &Target,
    common: &Common,
    args: &BroadcastArgs,
) -> String {
    let (stop, stopped) = gate();
    let shared = Rc::new(Shared {
        origin: Instant::now(),
        delivered: Cell::new(0),
        lost: Cell::new(0),
        out_of_order: Cell::new(0),
        errors: Cell::new(0),
        last_delivery: Cell::new(None),
        latency: RefCell::new(Histogram::new()),
        stop: stopped,
    });
    let limit = Rc::new(Semaphore::new(common.connect_concurrency));

    // Receivers first, all in before anyone sends.
    let (ready_tx, ready_rx) = smol::channel::unbounded::<bool>();
    let receivers: Vec<_> = (0..args.receivers)
        .map(|i| {
            let (shared, limit, ready) = (shared.clone(), limit.clone(), ready_tx.clone());
            let (target, senders, seed) = (target.clone(), args.senders, common.seed(i));
            ex.spawn(async move {
                let permit = limit.acquire().await;
                match WsClient::connect(&target, seed).await {
                    Ok(client) => {
                        drop(permit);
                        let _ = ready.try_send(true);
                        if let Err(e) = receive(client, senders, &shared).await {
                            shared.fail(&e);
                        }
                    }
                    Err(e) => {
                        shared.fail(&e);
                        let _ = ready.try_send(false);
                    }
                }
            })
        })
        .collect();
    let mut listening = 0u64;
    for _ in 0..args.receivers {
        listening += u64::from(ready_rx.recv().await == Ok(true));
    }

    // Then the senders; they start together. Each reports how many it sent
    // when it is done sending, then keeps reading until the run ends.
    let (go, going) = gate();
    let (done_tx, done_rx) = smol::channel::unbounded::<u64>();
    let senders: Vec<_> = (0..args.senders)
        .map(|s| {
            let (shared, going, ready, done) = (
                shared.clone(),
                going.clone(),
                ready_tx.clone(),
                done_tx.clone(),
            );
            let (target, args, seed) = (
                target.clone(),
                args.clone(),
                common.seed(args.receivers + s),
            );
            ex.spawn(async move {
                match WsClient::connect(&target, seed).await {
                    Ok(client) => {
                        let _ = ready.try_send(true);
                        going.wait().await;
                        if let Err(e) = send(client, s, &args, &shared, &done).await {
                            shared.fail(&e);
                        }
                    }
                    Err(e) => {
                        shared.fail(&e);
                        let _ = ready.try_send(false);
                        let _ = done.try_send(0);
                    }
                }
            })
        })
        .collect();
    for _ in 0..args.senders {
        let _ = ready_rx.recv().await;
    }
    let began = Instant::now();
    go.open();
    let mut sent = 0;
    for _ in 0..args.senders {
        sent += done_rx.recv().await.unwrap_or(0);
    }

    // Wait for every message to reach every receiver, or the drain time.
    let expected = sent * listening;
    let deadline = Instant::now() + Duration::from_secs_f64(args.drain);
    while shared.delivered.get() < expected && Instant::now() < deadline {
        Timer::after(Duration::from_millis(10)).await;
    }
    stop.open();
    for task in receivers.into_iter().chain(senders) {
        task.await;
    }

    let delivered = shared.delivered.get();
    let span = shared
        .last_delivery
        .get()
        .map_or(args.seconds, |last| {
            last.duration_since(began).as_secs_f64()
        })
        .max(args.seconds);
    let latency = shared.latency.borrow();
    json(&[
        ("mode", "\"broadcast\"".into()),
        ("url", format!("\"{}\"", common.url)),
        ("receivers", args.receivers.to_string()),
        ("connected", listening.to_string()),
        ("senders", args.senders.to_string()),
        ("rate", args.rate.to_string()),
        ("seconds", args.seconds.to_string()),
        ("sent", sent.to_string()),
        ("expected", expected.to_string()),
        ("delivered", delivered.to_string()),
        (
            "delivered_per_sec",
            format!("{:.0}", delivered as f64 / span),
        ),
        (
            "lost",
            (expected.saturating_sub(delivered).max(shared.lost.get())).to_string(),
        ),
        ("out_of_order", shared.out_of_order.get().to_string()),
        ("p50_us", latency.quantile(0.5).to_string()),
        ("p99_us", latency.quantile(0.99).to_string()),
        ("max_us", latency.max().to_string()),
        ("errors", shared.errors.get().to_string()),
    ])
}

/// A receiver: checks each marked message's order and times its delivery.
async fn receive(mut client: WsClient, senders: usize, shared: &Shared) -> Result<(), Failure> {
    let mut next = vec![0u64; senders];
    loop {
        if !client.read_or(&shared.stop).await? {
            break;
        }
        while let Some(event) = client.conn.poll_event() {
            match event {
                Event::Message(Message::Text(text)) => {
                    if let Some((sender, seq, t_us)) = parse_marker(&text) {
                        if let Some(expected) = next.get_mut(sender) {
                            let now = Instant::now();
                            let age = (now - shared.origin).as_micros() as u64;
                            shared.latency.borrow_mut().record(age.saturating_sub(t_us));
                            shared.delivered.set(shared.delivered.get() + 1);
                            shared.last_delivery.set(Some(now));
                            if seq < *expected {
                                shared.out_of_order.set(shared.out_of_order.get() + 1);
                            } else {
                                shared.lost.set(shared.lost.get() + (seq - *expected));
                                *expected = seq + 1;
                            }
                        }
                    }
                    client.conn.recycle(Message::Text(text));
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

/// A sender: paced by a 2 ms tick, it also reads (and drops) what arrives,
/// so that the server never finds it slow. Reports how many it sent on
/// `done` (also when it fails), then reads until the run ends.
async fn send(
    mut client: WsClient,
    me: usize,
    args: &BroadcastArgs,
    shared: &Shared,
    done: &smol::channel::Sender<u64>,
) -> Result<(), Failure> {
    let start = Instant::now();
    let total = (args.rate * args.seconds).round() as u64;
    let mut sent = 0u64;
    let mut text = String::with_capacity(64);
    let mut tick = Timer::interval(Duration::from_millis(2));
    let result = async {
        while sent < total {
            let wake = future::or(async { Some(client.read().await) }, async {
                smol::stream::StreamExt::next(&mut tick).await;
                None
            })
            .await;
            match wake {
                Some(result) => {
                    result?;
                    discard(&mut client);
                }
                None => {
                    let due = ((start.elapsed().as_secs_f64() * args.rate) as u64).min(total);
                    while sent < due {
                        use std::fmt::Write;
                        text.clear();
                        let t_us = shared.origin.elapsed().as_micros();
                        let _ = write!(text, "{MARK}{me} {sent} {t_us}");
                        client
                            .conn
                            .send_text(&text)
                            .map_err(|e| Failure::Closed(e.to_string()))?;
                        sent += 1;
                    }
                }
            }
            client.flush().await?;
        }
        Ok(())
    }
    .await;
    let _ = done.try_send(sent);
    result?;
    let drain = async {
        while client.read().await.is_ok() {
            discard(&mut client);
            if client.flush().await.is_err() {
                break;
            }
        }
    };
    future::or(drain, shared.stop.wait()).await;
    client.close().await;
    Ok(())
}

/// Drops what arrived (answering pings is automatic).
fn discard(client: &mut WsClient) {
    while let Some(event) = client.conn.poll_event() {
        if let Event::Message(message) = event {
            client.conn.recycle(message);
        }
    }
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
    }
}
