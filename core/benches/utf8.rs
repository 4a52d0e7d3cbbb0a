//! Incremental UTF-8 validation against `std::str::from_utf8`, for ASCII and
//! for mixed text, whole and in 1 KiB pieces.
//!
//!     cargo bench -p tincan-core --bench utf8

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tincan_core::utf8::Utf8Validator;

const SIZE: usize = 64 << 10;

fn text(unit: &str) -> Vec<u8> {
    let mut text = unit.repeat(SIZE / unit.len() + 1).into_bytes();
    // Cut on a character boundary.
    let mut end = SIZE;
    while std::str::from_utf8(&text[..end]).is_err() {
        end -= 1;
    }
    text.truncate(end);
    text
}

fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    let inputs = [
        ("ascii", text("hello, world; the quick brown fox. ")),
        (
            "mixed",
            text("héllo wörld, 日本語のテキスト 🎉 and ascii too "),
        ),
    ];
    for (name, bytes) in &inputs {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(BenchmarkId::new("std::str::from_utf8", name), |b| {
            b.iter(|| std::str::from_utf8(black_box(bytes)).is_ok())
        });
        group.bench_function(BenchmarkId::new("validator whole", name), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                v.feed(black_box(bytes)).and_then(|()| v.finish()).is_ok()
            })
        });
        group.bench_function(BenchmarkId::new("validator 1 KiB pieces", name), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                for piece in black_box(bytes).chunks(1024) {
                    if v.feed(piece).is_err() {
                        return false;
                    }
                }
                v.finish().is_ok()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, utf8);
criterion_main!(benches);
