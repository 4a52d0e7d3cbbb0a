//! Steady traffic allocates nothing per message: a server connection that
//! receives masked frames, echoes them and recycles their buffers (or sends
//! them by value, which recycles them once written) makes no heap
//! allocation once it is warm. Counted by a wrapping global allocator,
//! so this file is a test binary of its own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use tincan_core::frame::encode_frame;
use tincan_core::{Config, Connection, Event, Message, OpCode, Role};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How an echo is sent.
#[derive(Clone, Copy)]
enum Reply {
    /// Copied (`send_text`, `send_binary`), then the message recycled.
    Copied,
    /// By value (`send_owned`).
    Owned,
}

/// One round: a batch of client frames in, every message echoed, the
/// output written out.
fn echo_round(conn: &mut Connection, input: &[u8], reply: Reply) -> usize {
    conn.receive(input);
    let mut echoed = 0;
    while let Some(event) = conn.poll_event() {
        if let Event::Message(message) = event {
            match reply {
                Reply::Copied => {
                    match &message {
                        Message::Text(text) => conn.send_text(text),
                        Message::Binary(bytes) => conn.send_binary(bytes),
                    }
                    .expect("queued");
                    conn.recycle(message);
                }
                Reply::Owned => conn.send_owned(message).expect("queued"),
            }
            echoed += 1;
        }
    }
    while let Some(bytes) = conn.poll_transmit() {
        let n = bytes.len();
        conn.advance(n);
    }
    echoed
}

/// One test for both ways: the allocation counter is global, and tests in
/// one binary run in parallel.
#[test]
fn echoing_allocates_nothing_once_warm() {
    echo_allocates_nothing_once_warm(Reply::Copied);
    echo_allocates_nothing_once_warm(Reply::Owned);
}

fn echo_allocates_nothing_once_warm(reply: Reply) {
    let mut input = Vec::new();
    for (i, size) in [20usize, 125, 126, 1000, 16 * 1024]
        .iter()
        .cycle()
        .take(15)
        .enumerate()
    {
        let text = "x".repeat(*size);
        let opcode = if i % 2 == 0 {
            OpCode::Text
        } else {
            OpCode::Binary
        };
        encode_frame(
            &mut input,
            true,
            opcode,
            Some([1, 2, 3, 4]),
            text.as_bytes(),
        );
    }
    let mut conn = Connection::open(Role::Server, Config::default());
    for _ in 0..10 {
        assert_eq!(echo_round(&mut conn, &input, reply), 15);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        assert_eq!(echo_round(&mut conn, &input, reply), 15);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(allocations, 0, "allocations in 15,000 echoed messages");
}
