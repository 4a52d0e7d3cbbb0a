//! permessage-deflate compression (RFC 7692 §7.2.1) of one message on its
//! own, as the server does for every compressed send and once per
//! broadcast: a chat message, 16 KiB of text and a 128 KiB message like
//! Autobahn's 12.x cases.
//!
//!     cargo bench -p tincan-core --features deflate --bench deflate

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tincan_core::deflate::compress;

const CHAT: &str = r#"{"type":"message","room":"lobby","from":"alice","text":"Hello from browser! how is everyone doing today?","ts":1764812345123,"seq":42}"#;

/// `len` bytes of text from a small vocabulary, in a fixed pseudo-random
/// order: compressible, but not a run of one phrase.
fn text(len: usize) -> Vec<u8> {
    const WORDS: [&str; 8] = [
        "hello ", "world ", "room ", "chat ", "message ", "the ", "a ", "tincan ",
    ];
    let mut state = 0x2545_f491_u32;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        out.extend_from_slice(WORDS[(state % 8) as usize].as_bytes());
    }
    out.truncate(len);
    out
}

fn deflate(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate");
    let inputs = [
        ("chat", CHAT.as_bytes().to_vec()),
        ("16KiB", text(16 << 10)),
        ("128KiB", text(128 << 10)),
    ];
    for (name, payload) in &inputs {
        group.throughput(Throughput::Bytes(payload.len() as u64));
        group.bench_function(BenchmarkId::new("compress", name), |b| {
            let mut out = Vec::new();
            b.iter(|| {
                out.clear();
                compress(black_box(payload), 15, &mut out);
                out.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, deflate);
criterion_main!(benches);
