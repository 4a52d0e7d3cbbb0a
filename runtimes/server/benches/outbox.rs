//! The outbox: one chat message from a client in a room of N, through the
//! server's own path to every recipient's queued bytes. The sender's
//! session takes the frame and asks the hub's chat; in the room's turn
//! (`tincan_server::fanout`), each recipient's message goes into its outbox (`tincan_server::outbox::Outbox`), where
//! the recipient's task waits for it (a waker that does nothing here), is
//! taken off by its session and written out (`poll_transmit_vectored`, then
//! `advance`).
//! Throughput is in recipients, so the time per element is the cost per
//! delivery that the server adds before the socket. Not in it: the
//! runtime's wake-up of each recipient's task and the `write` system call,
//! which `bench/compare.sh`'s broadcast rows measure with real sockets.
//!
//!     cargo bench -p tincan-server --bench outbox

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tincan_chat::Now;
use tincan_core::frame::encode_frame;
use tincan_core::OpCode;
use tincan_server::fanout::{Fanout, Stripe};
use tincan_server::hub::Hub;
use tincan_server::log::LogLevel;
use tincan_server::metrics::Metrics;
use tincan_server::outbox::Outbox;
use tincan_server::session::{ClientIds, Outgoing, Session, SessionConfig};
use tincan_server::ServerConfig;

/// The recipients' client ids.
static IDS: ClientIds = ClientIds::new();

fn now() -> Now {
    Now {
        mono: Duration::from_secs(1),
        unix_ms: 1_700_000_000_000,
    }
}

/// A recipient: its session, its outbox and the batch its task takes.
struct Client {
    session: Session,
    outbox: Outbox,
    batch: Vec<Outgoing>,
}

impl Client {
    /// A session through its handshake into the room at `/{room}`.
    fn joined(
        hub: &Mutex<Hub>,
        fanout: &Fanout,
        config: &ServerConfig,
        metrics: &Arc<Metrics>,
        room: &str,
    ) -> Self {
        let id = IDS.next();
        let peer = SocketAddr::from(([127, 0, 0, 1], 5000));
        let sessions = Arc::new(SessionConfig::new(config, metrics.clone()));
        let mut session = Session::new(id, peer, &sessions);
        let outbox = Outbox::new();
        session.receive(
            format!(
                "GET /{room} HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 Sec-WebSocket-Version: 13\r\n\r\n"
            )
            .as_bytes(),
        );
        let mut client = Self {
            session,
            outbox,
            batch: Vec::new(),
        };
        client.forward(hub, fanout);
        client
    }

    /// What the session's task does after input: the session hands the
    /// chat's messages to their outboxes.
    fn forward(&mut self, hub: &Mutex<Hub>, fanout: &Fanout) {
        self.session.process(hub, fanout, &self.outbox, now);
    }

    /// What the task does when its outbox wakes it: takes everything
    /// waiting and writes it out (the write taking it all), then waits
    /// again; returns the bytes written.
    fn take_and_write(&mut self) -> usize {
        let mut written = 0;
        let mut cx = Context::from_waker(Waker::noop());
        while self.outbox.poll_take(&mut cx, &mut self.batch).is_ready() {
            for outgoing in self.batch.drain(..) {
                self.session.deliver(outgoing);
            }
        }
        loop {
            let mut slices = [IoSlice::new(&[]); 64];
            let n = self.session.poll_transmit_vectored(&mut slices);
            let len: usize = slices[..n].iter().map(|s| s.len()).sum();
            if len == 0 {
                return written;
            }
            self.session.advance(len);
            written += len;
        }
    }
}

/// The chat's limits lifted for the bench: rooms of `n`, no rate limit, no
/// log lines below warnings (they would pile up in the sessions), outboxes
/// that never fill.
fn config(n: usize) -> ServerConfig {
    let mut config = ServerConfig {
        log_level: LogLevel::Warn,
        outbox_capacity: usize::MAX,
        ..ServerConfig::default()
    };
    config.chat.max_room_clients = n;
    config.chat.rate.burst = u32::MAX;
    config.chat.rate.per_second = 1e12;
    config
}

/// The members of one room, the first of them the sender.
struct Room {
    clients: Vec<Client>,
    frame: Vec<u8>,
}

impl Room {
    fn joined(hub: &Mutex<Hub>, fanout: &Fanout, config: &ServerConfig, name: &str) -> Self {
        let n = config.chat.max_room_clients;
        let metrics = Arc::new(Metrics::default());
        let mut clients: Vec<Client> = (0..n)
            .map(|_| Client::joined(hub, fanout, config, &metrics, name))
            .collect();
        for client in &mut clients {
            client.take_and_write();
        }
        let mut frame = Vec::new();
        encode_frame(
            &mut frame,
            true,
            OpCode::Text,
            Some([1, 2, 3, 4]),
            b"hello, everyone",
        );
        Self { clients, frame }
    }

    /// One message from the sender, and every member's task taking it and
    /// writing it out; returns how many members got it.
    fn send(&mut self, hub: &Mutex<Hub>, fanout: &Fanout) -> usize {
        let (sender, rest) = self.clients.split_first_mut().expect("n > 0");
        sender.session.receive(&self.frame);
        sender.forward(hub, fanout);
        let mut reached = usize::from(sender.take_and_write() > 0);
        for client in rest {
            reached += usize::from(client.take_and_write() > 0);
        }
        reached
    }
}

fn outbox(c: &mut Criterion) {
    let mut group = c.benchmark_group("outbox");
    for n in [10usize, 100, 1000] {
        let config = config(n);
        let hub = Mutex::new(Hub::new(config.chat.clone()));
        let fanout = Fanout::new();
        let mut room = Room::joined(&hub, &fanout, &config, "");
        assert_eq!(room.send(&hub, &fanout), n, "every member gets the message");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("message to room of", n), |b| {
            b.iter(|| room.send(&hub, &fanout))
        });
    }
    group.finish();
}

/// Two rooms of 1000 on one hub, a message to each per iteration: on one
/// thread, one room after the other; on two, each on its own thread, as two
/// cores would run them. The hub is taken only to decide each message and
/// take the room's turn; the fan-out runs in each room's own lane (see
/// `tincan_server::fanout`). On this 2-core VM two threads did 1.1-1.9x
/// the work of one (bench/README.md).
fn rooms_in_parallel(c: &mut Criterion) {
    const N: usize = 1000;
    let mut group = c.benchmark_group("rooms in parallel");
    let config = config(N);
    let hub = Mutex::new(Hub::new(config.chat.clone()));
    let fanout = Fanout::new();
    let (a, b) = ("room-a", "room-b");
    assert_ne!(Stripe::of(a), Stripe::of(b), "two rooms, two lanes");
    let mut rooms = [
        Room::joined(&hub, &fanout, &config, a),
        Room::joined(&hub, &fanout, &config, b),
    ];
    group.throughput(Throughput::Elements(2 * N as u64));
    group.bench_function(BenchmarkId::new("two rooms of 1000, threads", 1), |bench| {
        bench.iter(|| {
            for room in &mut rooms {
                assert_eq!(room.send(&hub, &fanout), N);
            }
        })
    });
    group.bench_function(BenchmarkId::new("two rooms of 1000, threads", 2), |bench| {
        bench.iter_custom(|iters| {
            let [first, second] = &mut rooms;
            let (hub, fanout) = (&hub, &fanout);
            let start = Instant::now();
            std::thread::scope(|scope| {
                scope
                    .spawn(move || (0..iters).for_each(|_| assert_eq!(first.send(hub, fanout), N)));
                scope.spawn(move || {
                    (0..iters).for_each(|_| assert_eq!(second.send(hub, fanout), N))
                });
            });
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, outbox, rooms_in_parallel);
criterion_main!(benches);
