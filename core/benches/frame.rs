//! Frame throughput against a plain memcpy of the same size: header decode
//! plus unmasking (the server's receive path), encoding for both roles, and a
//! whole message through a server [`Connection`].
//!
//!     cargo bench -p tincan-core --bench frame

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tincan_core::frame::encode_frame;
use tincan_core::mask::{apply_mask, extend_masked};
use tincan_core::{Config, Connection, Event, FrameHeader, OpCode, Role};

const SIZES: [usize; 4] = [16, 1 << 10, 64 << 10, 1 << 20];
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn label(size: usize) -> String {
    match size {
        s if s >= 1 << 20 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// A masked client frame carrying `size` bytes.
fn client_frame(size: usize) -> Vec<u8> {
    let mut frame = Vec::new();
    encode_frame(&mut frame, true, OpCode::Binary, Some(KEY), &payload(size));
    frame
}

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let id = |name: &str| BenchmarkId::new(name, label(size));

        let src = payload(size);
        let mut dst = vec![0u8; size];
        group.bench_function(id("memcpy"), |b| {
            b.iter(|| dst.copy_from_slice(black_box(&src)))
        });

        // Unmasking in place twice restores the bytes, so the buffer can be
        // reused: every iteration does the same work.
        let mut frame = client_frame(size);
        group.bench_function(id("decode+unmask"), |b| {
            b.iter(|| {
                let (header, len) = FrameHeader::decode(black_box(&frame))
                    .expect("valid")
                    .expect("complete");
                apply_mask(&mut frame[len..], header.mask.expect("masked"), 0);
            })
        });

        // A masked payload into a message's buffer: copied, then unmasked
        // there (two passes), against `extend_masked` (one).
        let mut message = Vec::with_capacity(size);
        group.bench_function(id("copy, then unmask"), |b| {
            b.iter(|| {
                message.clear();
                message.extend_from_slice(black_box(&src));
                apply_mask(&mut message, KEY, 0);
            })
        });
        group.bench_function(id("copy unmasking"), |b| {
            b.iter(|| {
                message.clear();
                extend_masked(&mut message, black_box(&src), Some(KEY), 0);
            })
        });

        let mut out = Vec::with_capacity(size + 14);
        group.bench_function(id("encode server"), |b| {
            b.iter(|| {
                out.clear();
                encode_frame(&mut out, true, OpCode::Binary, None, black_box(&src));
            })
        });
        group.bench_function(id("encode client (masked)"), |b| {
            b.iter(|| {
                out.clear();
                encode_frame(&mut out, true, OpCode::Binary, Some(KEY), black_box(&src));
            })
        });

        // The whole receive path: buffer, decode, unmask, assemble, event;
        // the buffer goes back for the next message, as a server does.
        let frame = client_frame(size);
        let mut conn = Connection::open(Role::Server, Config::default());
        group.bench_function(id("connection receive"), |b| {
            b.iter(|| {
                conn.receive(black_box(&frame));
                match conn.poll_event() {
                    Some(Event::Message(message)) => conn.recycle(black_box(message)),
                    other => panic!("expected a message, got {other:?}"),
                }
            })
        });
    }
    group.finish();
}

/// A server's whole turn for a read that carried 16 small messages: receive,
/// take each event, echo it back, write everything out. Per message, this is
/// the protocol's share of the server's pipelined echo (`bench/compare.sh
/// echo`, depth 16).
fn echo(c: &mut Criterion) {
    const DEPTH: usize = 16;
    let mut group = c.benchmark_group("echo");
    for size in [20, 1 << 10] {
        group.throughput(Throughput::Elements(DEPTH as u64));
        let read: Vec<u8> = (0..DEPTH).flat_map(|_| client_frame(size)).collect();
        let mut conn = Connection::open(Role::Server, Config::default());
        group.bench_function(BenchmarkId::new("16 messages per read", label(size)), |b| {
            b.iter(|| {
                conn.receive(black_box(&read));
                while let Some(event) = conn.poll_event() {
                    match event {
                        Event::Message(message) => {
                            conn.send_owned(message).expect("open");
                        }
                        other => panic!("expected a message, got {other:?}"),
                    }
                }
                let mut written = 0;
                while let Some(bytes) = conn.poll_transmit() {
                    written += black_box(bytes).len();
                    conn.advance(bytes.len());
                }
                black_box(written)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, frames, echo);
criterion_main!(benches);
