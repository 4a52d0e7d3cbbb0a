//! Hostile and slow clients against a real server binary: no connection may
//! stall the others, and what a client can make the server hold is bounded.
//! Like `server.rs`, this file is a test of every server binary.

#[path = "common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::*;

/// A client that writes `frames` as fast as the socket takes them (and reads
/// and discards whatever comes back) until dropped.
struct Flooder {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<u64>>,
}

impl Flooder {
    fn start(server: &Server, first: Vec<u8>, frames: Vec<u8>) -> Flooder {
        let mut raw = Raw::connect(server);
        raw.upgrade("/");
        let stream = raw.into_stream();
        let stop = Arc::new(AtomicBool::new(false));
        let mut reader = stream.try_clone().expect("clone");
        reader
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let stopped = stop.clone();
        let read = thread::spawn(move || {
            let mut buf = vec![0; 64 * 1024];
            let mut total = 0;
            while !stopped.load(Ordering::Relaxed) {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => total += n as u64,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
            total
        });
        let mut writer = stream;
        writer
            .set_write_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let stopped = stop.clone();
        let write = thread::spawn(move || {
            let mut sent = 0;
            if writer.write_all(&first).is_err() {
                return 0;
            }
            // Where the next write starts: a write may take part of a frame.
            let mut at = 0;
            while !stopped.load(Ordering::Relaxed) {
                match writer.write(&frames[at..]) {
                    Ok(n) => {
                        sent += n as u64;
                        at = (at + n) % frames.len();
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
            sent
        });
        Flooder {
            stop,
            threads: vec![read, write],
        }
    }
}

impl Drop for Flooder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// `n` copies of one masked frame.
fn repeated(fin: bool, opcode: u8, payload: &[u8], n: usize) -> Vec<u8> {
    masked(fin, opcode, payload).repeat(n)
}

/// The slowest of `n` fresh clients' round trips: connect, welcome, send a
/// chat message and read it back.
fn slowest_round_trip(server: &Server, n: usize) -> Duration {
    (0..n)
        .map(|i| {
            let started = Instant::now();
            let (mut ws, _) = ws_connect(server, "/");
            let nick = expect_welcome(&mut ws);
            let text = format!("round trip {i}");
            ws_send_text(&mut ws, &text);
            assert_eq!(ws_chat(&mut ws), chat_line(&nick, &text));
            started.elapsed()
        })
        .max()
        .unwrap_or_default()
}

/// A generous bound for a loaded 2-core machine; the real figure is in the
/// benchmark. Without a per-turn budget, these clients wait for seconds or
/// never get through.
const PROMPTLY: Duration = Duration::from_secs(3);

#[test]
fn clients_flooding_pings_do_not_stall_the_others() {
    // No history, so that each fresh client hears only its own message.
    let server = Server::start(&["-q", "--history", "0"]);
    let pings = repeated(true, 9, b"ping", 4096);
    let _floods: Vec<Flooder> = (0..2)
        .map(|_| Flooder::start(&server, Vec::new(), pings.clone()))
        .collect();
    let slowest = slowest_round_trip(&server, 8);
    eprintln!("slowest of 8 round trips beside two ping floods: {slowest:?}");
    assert!(
        slowest < PROMPTLY,
        "a round trip took {slowest:?} beside two ping floods"
    );
}

#[test]
fn clients_flooding_empty_continuations_do_not_stall_the_others() {
    let server = Server::start(&["-q", "--echo"]);
    let first = masked(false, 1, b"");
    let empty = repeated(false, 0, b"", 8192);
    let _floods: Vec<Flooder> = (0..2)
        .map(|_| Flooder::start(&server, first.clone(), empty.clone()))
        .collect();
    let slowest = (0..8)
        .map(|i| {
            let started = Instant::now();
            let mut raw = Raw::connect(&server);
            raw.upgrade("/");
            let text = format!("echo {i}");
            raw.send(&masked(true, 1, text.as_bytes()));
            assert_eq!(raw.read_text(), text);
            started.elapsed()
        })
        .max()
        .unwrap_or_default();
    eprintln!("slowest of 8 round trips beside two continuation floods: {slowest:?}");
    assert!(
        slowest < PROMPTLY,
        "a round trip took {slowest:?} beside two continuation floods"
    );
}

/// The status and body of an upgrade to `/` with these extra header lines.
fn upgrade_with(server: &Server, extra: &str) -> (u16, String) {
    let mut raw = Raw::connect(server);
    raw.send(upgrade_request("/", extra).as_bytes());
    let head = raw.read_head();
    let status = head[9..12].parse().expect("a status");
    let body = if status == 101 {
        String::new()
    } else {
        String::from_utf8(raw.read_to_end()).expect("a text body")
    };
    (status, body)
}

#[test]
fn only_the_own_origin_and_listed_origins_may_connect() {
    let server = Server::start(&[]);
    // `upgrade_request` sends `Host: 127.0.0.1`: the page would be there.
    let own = "Origin: http://127.0.0.1\r\n";
    assert_eq!(upgrade_with(&server, own).0, 101, "the server's own page");
    let other_port = "Origin: http://127.0.0.1:1\r\n";
    assert_eq!(upgrade_with(&server, other_port).0, 403, "another port");
    assert_eq!(upgrade_with(&server, "").0, 101, "no Origin: not a browser");
    let (status, body) = upgrade_with(&server, "Origin: http://evil.example\r\n");
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body,
        "origin 'http://evil.example' is not allowed: only this server's own pages \
         and --allowed-origin may connect\n"
    );
    server.wait_line("Rejected handshake from 127.0.0.1:");

    let server = Server::start(&[
        "--allowed-origin",
        "http://evil.example,https://chat.example",
    ]);
    for listed in ["http://evil.example", "https://chat.example"] {
        let origin = format!("Origin: {listed}\r\n");
        assert_eq!(upgrade_with(&server, &origin).0, 101, "{listed}");
    }
    let other = "Origin: http://other.example\r\n";
    assert_eq!(upgrade_with(&server, other).0, 403);
}

#[test]
fn one_address_cannot_take_every_slot() {
    let server = Server::start(&["--max-connections-per-ip", "3"]);
    let mut held: Vec<Raw> = (0..3)
        .map(|_| {
            let mut raw = Raw::connect(&server);
            raw.upgrade("/");
            raw
        })
        .collect();
    let (status, body) = upgrade_with(&server, "");
    assert_eq!(status, 503);
    assert_eq!(
        body,
        "too many connections from your address, try again later\n"
    );
    // Once one of them has gone, there is room again.
    held.pop().expect("one").shutdown();
    let until = deadline();
    while upgrade_with(&server, "").0 != 101 {
        assert!(
            Instant::now() < until,
            "no room {WAIT:?} after a client left"
        );
    }
}
