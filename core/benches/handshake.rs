//! Opening handshakes per second: the parser and Sec-WebSocket-Accept alone,
//! and a whole server connection from request bytes to the 101 response.
//!
//!     cargo bench -p tincan-core --bench handshake

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tincan_core::handshake::{accept_response, HeadReader, Request, DEFAULT_MAX_HEAD_SIZE};
use tincan_core::{Config, Connection, Event, Role};

/// The request of RFC 6455 §1.2, as a browser sends it.
const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

fn handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse + accept", |b| {
        b.iter(|| {
            let mut reader = HeadReader::new(DEFAULT_MAX_HEAD_SIZE);
            let (head, _) = reader
                .feed(black_box(REQUEST))
                .expect("valid")
                .expect("complete");
            let request = Request::parse(&head).expect("valid");
            accept_response(request.key().expect("key"), None)
        })
    });
    group.bench_function("connection to 101", |b| {
        b.iter(|| {
            let mut conn = Connection::new(Role::Server, Config::default());
            conn.receive(black_box(REQUEST));
            let Some(Event::Request(request)) = conn.poll_event() else {
                panic!("expected the request");
            };
            conn.accept(request.protocols.first().map(String::as_str))
                .expect("accepted");
            conn.poll_transmit().map(<[u8]>::len)
        })
    });
    group.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);
