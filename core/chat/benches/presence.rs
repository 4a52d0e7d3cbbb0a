//! Presence: N clients join one room and then leave it, with every notice,
//! welcome and history line queued on the recipients' connections.
//! Throughput is in clients, so the time per element is the cost of one
//! join and one leave. Up to [`ChatConfig::presence_limit`] members each
//! join and leave is announced to the room (O(N) each, O(N^2) to fill it);
//! above it they are not, so the cost per client stays flat as N grows.
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
        for id in &delivery.to {
            let conn = &mut conns[id.0 as usize];
            conn.send_prepared(&delivery.message).expect("queued");
            while let Some(bytes) = conn.poll_transmit() {
                let len = bytes.len();
                conn.advance(len);
            }
        }
    }
}

fn presence(c: &mut Criterion) {
    let mut group = c.benchmark_group("presence");
    group.sample_size(20);
    for n in [50usize, 100, 1000, 2000] {
        let mut chat = Chat::new(ChatConfig {
            max_room_clients: n,
            ..ChatConfig::default()
        });
        let mut conns: Vec<Connection> = (0..n)
            .map(|_| Connection::open(Role::Server, Config::default()))
            .collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("join and leave, room of", n), |b| {
            b.iter(|| {
                for i in 0..n {
                    let id = ClientId(i as u64);
                    let address = Address((i as u128).to_be_bytes());
                    let out = chat
                        .join(id, address, "lobby", Format::Json, now())
                        .expect("room has space");
                    deliver(&out, &mut conns);
                }
                for i in 0..n {
                    let out = chat.leave(ClientId(i as u64), now());
                    deliver(&out, &mut conns);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, presence);
criterion_main!(benches);
