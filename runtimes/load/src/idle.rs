//! `idle`: open N connections and hold them, answering pings, so that the
//! server's memory per connection can be read.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use smol::future;
use smol::lock::Semaphore;
use smol::{LocalExecutor, Timer};

use crate::client::WsClient;
use crate::gate::gate;
use crate::url::Target;
use crate::{json, Common};

/// Opens the connections (spread over `rooms` paths when there are more
/// than one), prints the JSON line once every attempt is done, holds them
/// for `hold` seconds and closes them.
pub async fn run(
    ex: &LocalExecutor<'_>,
    target: &Target,
    common: &Common,
    connections: usize,
    rooms: usize,
    hold: f64,
) -> String {
    let (stop, stopped) = gate();
    let failed = Rc::new(Cell::new(0u64));
    let limit = Rc::new(Semaphore::new(common.connect_concurrency));
    let (ready_tx, ready_rx) = smol::channel::unbounded::<bool>();
    let began = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|i| {
            let (limit, ready, stopped, failed) = (
                limit.clone(),
                ready_tx.clone(),
                stopped.clone(),
                failed.clone(),
            );
            let (mut target, seed) = (target.clone(), common.seed(i));
            if rooms > 1 {
                // Spread over `rooms` paths: <path>0, <path>1, …
                target.path = format!("{}{}", target.path, i % rooms);
            }
            ex.spawn(async move {
                let permit = limit.acquire().await;
                let connected = WsClient::connect(&target, seed).await;
                drop(permit);
                let mut client = match connected {
                    Ok(client) => client,
                    Err(e) => {
                        failed.set(failed.get() + 1);
                        crate::report(&e);
                        let _ = ready.try_send(false);
                        return;
                    }
                };
                let _ = ready.try_send(true);
                let hold = async {
                    while client.read().await.is_ok() {
                        while client.conn.poll_event().is_some() {}
                        if client.flush().await.is_err() {
                            break;
                        }
                    }
                    false
                };
                let open = future::or(hold, async {
                    stopped.wait().await;
                    true
                })
                .await;
                if open {
                    client.close().await;
                }
            })
        })
        .collect();
    let mut connected = 0u64;
    for _ in 0..connections {
        connected += u64::from(ready_rx.recv().await == Ok(true));
    }
    let line = json(&[
        ("mode", "\"idle\"".into()),
        ("url", format!("\"{}\"", common.url)),
        ("connections", connections.to_string()),
        ("rooms", rooms.to_string()),
        ("connected", connected.to_string()),
        ("failed", failed.get().to_string()),
        (
            "connect_secs",
            format!("{:.3}", began.elapsed().as_secs_f64()),
        ),
    ]);
    crate::print_line(&line);
    Timer::after(Duration::from_secs_f64(hold)).await;
    stop.open();
    for task in tasks {
        task.await;
    }
    String::new()
}
