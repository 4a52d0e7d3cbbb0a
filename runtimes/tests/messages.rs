//! Messages that never end and pings that are never read, against a real
//! server binary: each is refused with 1008 and a reason, and the server
//! keeps serving everyone else. Like `server.rs`, a test of every binary.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;

/// A fresh client still gets a chat round trip.
fn assert_serving(server: &Server) {
    let (mut ws, _) = ws_connect(server, "/");
    let nick = expect_welcome(&mut ws);
    ws_send_text(&mut ws, "still serving");
    assert_eq!(ws_chat(&mut ws), chat_line(&nick, "still serving"));
}

#[test]
fn empty_continuations_forever_are_refused_with_1008() {
    let server = Server::start(&[]);
    let mut raw = Raw::connect(&server);
    raw.upgrade("/");
    // A text frame with FIN clear, then empty continuation frames: the
    // message grows no payload, so past 128 fragments it is refused.
    raw.send(&masked(false, 0x1, b"hi"));
    let empties: Vec<u8> = (0..200).flat_map(|_| masked(false, 0x0, b"")).collect();
    raw.send(&empties);
    let (code, reason) = raw.read_close();
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("fragments"), "{reason}");
    assert_serving(&server);
}

#[test]
fn a_message_that_does_not_end_in_time_is_refused_with_1008() {
    let server = Server::start(&["--message-timeout", "1"]);
    let mut raw = Raw::connect(&server);
    raw.upgrade("/");
    let started = Instant::now();
    raw.send(&masked(false, 0x1, b"never"));
    let (code, reason) = raw.read_close();
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("longer than 1s"), "{reason}");
    assert!(started.elapsed() >= Duration::from_secs(1), "too early");
    assert_serving(&server);

    // A message that ends in time is no concern of the bound.
    // (A room of its own, so no history comes first.)
    let (mut ws, _) = ws_connect(&server, "/late");
    ws_text(&mut ws); // the welcome
    let mut slow = Raw::connect(&server);
    slow.upgrade("/late");
    let welcome = slow.read_text();
    let nick = welcome
        .strip_prefix("* Welcome to #late, ")
        .and_then(|rest| rest.strip_suffix(". Type /help for commands."))
        .unwrap_or_else(|| panic!("a welcome: {welcome:?}"));
    slow.send(&masked(false, 0x1, b"in "));
    slow.send(&masked(true, 0x0, b"time"));
    assert_eq!(ws_chat(&mut ws), chat_line(nick, "in time"));
}

#[test]
fn pings_whose_pongs_are_never_read_are_refused_with_1008() {
    // -q: a "Received PING" line for each of up to 250,000 pings would make
    // the log, not the server, what the test waits for.
    let server = Server::start(&["--ping-interval", "0", "-q"]);
    let mut raw = Raw::connect(&server);
    raw.upgrade("/");
    let peer = format!("127.0.0.1:{}", raw.local_port());
    // Far more pongs than the socket buffers hold: once they stop leaving,
    // the server answers no more pings and then refuses the flood.
    let pings: Vec<u8> = (0..4096)
        .flat_map(|_| masked(true, 0x9, &[b'p'; 125]))
        .collect();
    let writer = raw.writer();
    let flood = std::thread::spawn(move || {
        let mut writer = writer;
        for _ in 0..64 {
            if std::io::Write::write_all(&mut writer, &pings).is_err() {
                break; // the server closed the connection
            }
        }
    });
    server.wait_line(&format!(
        "Protocol error from {peer}: pings sent faster than their pongs are read (closing with 1008)"
    ));
    // Reading at last: pongs, then the close frame with its code.
    let (code, _) = loop {
        let frame = raw.read_frame();
        match frame.opcode {
            0xA | 0x1 => continue, // pongs, the welcome
            0x8 => break (u16::from_be_bytes([frame.payload[0], frame.payload[1]]), ()),
            other => panic!("unexpected opcode {other:#x}"),
        }
    };
    assert_eq!(code, 1008);
    raw.shutdown();
    flood.join().expect("the flooding thread");
    assert_serving(&server);
}
