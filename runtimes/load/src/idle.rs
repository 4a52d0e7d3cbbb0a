//! `idle`: open N connections and hold them, answering pings, so that the
//! server's memory per connection can be read meanwhile.

use std::time::{Duration, Instant};

use smol::channel::{self, Sender};
use smol::lock::Semaphore;
use smol::Timer;

use crate::client::{closed_by_server, WsClient};
use crate::gate::{count_ready, gate, Stop, Waiter};
use crate::report::{self, Json};
use crate::shard;
use crate::url::Target;
use crate::Common;

/// The options of an idle run.
#[derive(Debug, Clone, PartialEq)]
pub struct IdleArgs {
    /// Connections to open.
    pub connections: usize,
    /// How long to hold them, in seconds.
    pub hold: f64,
    /// Connection `i` goes to the URL's path followed by `i % rooms`
    /// (`/idle0`, `/idle1`, …) when there is more than one, so that a chat
    /// server's rooms stay small.
    pub rooms: usize,
}

/// What the connections of every thread share.
struct Run<'a> {
    target: &'a Target,
    common: &'a Common,
    args: &'a IdleArgs,
    limit: Semaphore,
    /// Each connection says once whether it connected.
    ready: Sender<bool>,
    stopped: Waiter,
}

/// Opens the connections, prints the JSON line once every attempt is done,
/// holds them and closes them; returns how many were made.
pub fn run(target: &Target, common: &Common, args: &IdleArgs) -> u64 {
    let (stop, stopped) = gate();
    let (ready, ready_rx) = channel::unbounded();
    let run = Run {
        target,
        common,
        args,
        limit: Semaphore::new(common.connect_concurrency),
        ready,
        stopped,
    };
    let began = Instant::now();
    let control = async {
        let connected = count_ready(&ready_rx, args.connections).await;
        let line = Json::new()
            .str("mode", "idle")
            .str("url", &common.url)
            .int("connections", args.connections as u64)
            .int("rooms", args.rooms as u64)
            .int("connected", connected)
            .int("failed", args.connections as u64 - connected)
            .num("connect_secs", began.elapsed().as_secs_f64(), 3)
            .finish();
        report::print_line(&line);
        if connected > 0 {
            Timer::after(Duration::from_secs_f64(args.hold)).await;
        }
        stop.open();
        connected
    };
    let (connected, _) = shard::run(common.threads, |t| shard(&run, t), control);
    connected
}

/// The connections of thread `t`.
async fn shard(run: &Run<'_>, t: usize) {
    shard::run_all(
        shard::indices(t, run.common.threads, run.args.connections).map(|i| hold(run, i)),
    )
    .await;
}

/// Connects, then reads (answering pings) until the end, and closes.
async fn hold(run: &Run<'_>, i: usize) {
    let mut target = run.target.clone();
    if run.args.rooms > 1 {
        target.path = format!("{}{}", target.path, i % run.args.rooms);
    }
    let permit = run.limit.acquire().await;
    let connected = WsClient::connect(&target, run.common.seed(i)).await;
    drop(permit);
    let _ = run.ready.try_send(connected.is_ok());
    let mut client = match connected {
        Ok(client) => client,
        Err(e) => return report::failure(&e),
    };
    let mut stop = Stop::new(&run.stopped);
    loop {
        match client.turn(|cx| stop.poll(cx)).await {
            Ok(true) => {
                while let Some(event) = client.conn.poll_event() {
                    match event {
                        tincan_core::Event::Message(message) => client.recycle(message),
                        tincan_core::Event::Closed { code, reason } => {
                            return report::failure(&closed_by_server(code, &reason))
                        }
                        _ => {}
                    }
                }
            }
            Ok(false) => return client.close().await,
            Err(e) => return report::failure(&e),
        }
    }
}
