//! Chat fan-out: one message in a room of N, from chat input to bytes queued
//! on every recipient's connection. Throughput is in recipients, so the time
//! per element is the cost per recipient.
//!
//!     cargo bench -p tincan-chat --bench fanout

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tincan_chat::{Address, Chat, ChatConfig, ClientId, Format, Now, RateLimit};
use tincan_core::{Config, Connection, Role};

fn now() -> Now {
    Now {
        mono: Duration::from_secs(1),
        unix_ms: 1_700_000_000_000,
    }
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    for n in [10usize, 100, 1000] {
        let mut chat = Chat::new(ChatConfig {
            max_room_clients: n,
            // The joins of the setup announced there, not in the first
            // broadcast measured.
            presence_delay: Duration::ZERO,
            rate: RateLimit {
                burst: u32::MAX,
                per_second: 1e12,
            },
            ..ChatConfig::default()
        });
        let mut conns: Vec<Connection> = (0..n)
            .map(|i| {
                let format = if i % 2 == 0 {
                    Format::Plain
                } else {
                    Format::Json
                };
                chat.join(ClientId(i as u64), Address([0; 16]), "bench", format, now())
                    .expect("room has space");
                Connection::open(Role::Server, Config::default())
            })
            .collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("message to room of", n), |b| {
            b.iter(|| {
                let out = chat.input(ClientId(0), black_box("hello, everyone"), now());
                for delivery in &out.deliveries {
                    for id in delivery.to.iter() {
                        let conn = &mut conns[id.0 as usize];
                        conn.send_prepared(&delivery.message).expect("queued");
                    }
                }
                // What the socket writes would do.
                for conn in &mut conns {
                    while let Some(bytes) = conn.poll_transmit() {
                        let len = bytes.len();
                        conn.advance(len);
                    }
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
