//! A server's pipelined echo with the protocol alone: reads of 16 masked
//! binary messages, each taken as an event and sent back, everything
//! written out. `bench/instructions.sh core` counts its instructions per
//! message with callgrind (the same count however busy the machine is),
//! for an A/B of a change to the per-message work.
//!
//! ```text
//! cargo run --release -p tincan-core --example echo_loop -- [READS=100000] [SIZE=20]
//! ```

use std::hint::black_box;

use tincan_core::frame::{encode_frame_header, FrameHeader, OpCode};
use tincan_core::{Config, Connection, Event, Role};

/// Messages per read, as in `bench/compare.sh echo` at depth 16.
const DEPTH: usize = 16;

fn main() {
    let arg = |i: usize, default: usize| match std::env::args().nth(i) {
        None => Some(default),
        Some(arg) => arg.parse().ok(),
    };
    let (Some(reads), Some(size)) = (arg(1, 100_000), arg(2, 20)) else {
        eprintln!("usage: echo_loop [READS] [SIZE]");
        std::process::exit(2);
    };
    let read: Vec<u8> = (0..DEPTH).flat_map(|_| client_frame(size)).collect();
    let mut conn = Connection::open(Role::Server, Config::default());
    let mut written = 0;
    for _ in 0..reads {
        conn.receive(black_box(&read));
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(message) => conn.send_owned(message).expect("open"),
                other => panic!("expected a message, got {other:?}"),
            }
        }
        while let Some(bytes) = conn.poll_transmit() {
            written += black_box(bytes).len();
            conn.advance(bytes.len());
        }
    }
    println!("{written}");
}

/// A client's binary frame of `size` bytes (§5.2), masked (§5.3).
fn client_frame(size: usize) -> Vec<u8> {
    let mut header = FrameHeader::new(OpCode::Binary, size as u64);
    header.mask = Some([1, 2, 3, 4]);
    let mut frame = Vec::new();
    encode_frame_header(&mut frame, header, &vec![0x5a; size]);
    frame
}
