//! Presence: N clients join one room and then leave it, with every notice,
//! welcome and history line queued on the recipients' connections.
//! Throughput is in clients, so the time per element is the cost of one
//! join and one leave. Up to [`ChatConfig::presence_limit`] members each
//! join and leave is announced to the room: announced each at once
//! (`presence_delay` 0), O(N) each and O(N^2) to fill the room; announced
//! together (the default delay, every join within it), one line per plain
//! member for the lot and one object per join for the JSON ones (half the
//! clients each). Above the limit they are not announced, so the cost per
//! client stays flat as N grows.
//!
//!     cargo bench -p tincan-chat --bench presence

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tincan_chat::{Address, Chat, ChatConfig, ClientId, Format, Now, Output};
use tincan_core::{Config, Connection, Role};

fn now() -> Now {
    Now {
        mono: Duration::from_secs(1),
        unix_ms: 1_700_000_000_000,
    }
}

/// Queues `out`'s deliveries and drains every connection, as the sockets'
/// writes would.
fn deliver(out: &Output, conns: &mut [Connection]) {
    for delivery in &out.deliveries {
        for id in delivery.to.iter() {
            let conn = &mut conns[id.0 as usize];
            conn.send_prepared(&delivery.message).expect("queued");
            while let Some(bytes) = conn.poll_transmit() {
                let len = bytes.len();
                conn.advance(len);
            }
        }
    }
}

/// Time passes until what waits is due, and it is delivered: the time then.
fn flush(chat: &mut Chat, mut t: Now, conns: &mut [Connection]) -> Now {
    if let Some(at) = chat.poll_timeout() {
        t.mono = t.mono.max(at);
    }
    while let Some((_, out)) = chat.poll_presence(t) {
        deliver(&out, conns);
    }
    t
}

fn presence(c: &mut Criterion) {
    let mut group = c.benchmark_group("presence");
    group.sample_size(20);
    let delays = [
        ("at once", Duration::ZERO),
        ("together", ChatConfig::DEFAULT.presence_delay),
    ];
    for (announced, delay) in delays {
        for n in [50usize, 100, 1000, 2000] {
            let mut chat = Chat::new(ChatConfig {
                max_room_clients: n,
                presence_delay: delay,
                ..ChatConfig::default()
            });
            let mut conns: Vec<Connection> = (0..n)
                .map(|_| Connection::open(Role::Server, Config::default()))
                .collect();
            let mut t = now();
            group.throughput(Throughput::Elements(n as u64));
            let name = format!("join and leave, announced {announced}, room of");
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| {
                    for i in 0..n {
                        let id = ClientId(i as u64);
                        let address = Address((i as u128).to_be_bytes());
                        let format = [Format::Plain, Format::Json][i % 2];
                        let out = chat
                            .join(id, address, "lobby", format, t)
                            .expect("room has space");
                        deliver(&out, &mut conns);
                    }
                    t = flush(&mut chat, t, &mut conns);
                    for i in 0..n {
                        let out = chat.leave(ClientId(i as u64), t);
                        deliver(&out, &mut conns);
                    }
                    t = flush(&mut chat, t, &mut conns);
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, presence);
criterion_main!(benches);
