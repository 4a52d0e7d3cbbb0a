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

/// What a member of a room heard until the server closed it: the chat
/// lines, and the close code.
struct Heard {
    lines: Vec<String>,
    code: u16,
}

/// Progress shared by the readers and senders of the shutdown test: how many
/// of each sender's messages each reader has heard, and which readers are
/// done.
struct Progress {
    /// `heard[reader][sender]`.
    heard: Vec<Vec<usize>>,
    done: Vec<bool>,
}

fn lock(progress: &std::sync::Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    progress
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The sender number and sequence number in `guest-N: s{sender} {i}`.
fn parse_flood_line(line: &str) -> Option<(usize, usize)> {
    let text = line.split_once(": ")?.1;
    let (sender, i) = text.strip_prefix('s')?.split_once(' ')?;
    Some((sender.parse().ok()?, i.parse().ok()?))
}

#[test]
fn sigterm_mid_flood_delivers_every_accepted_message_to_the_whole_room() {
    const MEMBERS: usize = 6;
    const SENDERS: usize = 3;
    // Messages a sender may have sent and not yet heard back: enough to keep
    // messages in flight everywhere, few enough that no queue fills.
    const WINDOW: usize = 32;
    // Each reader has heard this many of each sender's messages before the
    // signal, so it arrives mid-flood.
    const BEFORE_SIGNAL: usize = 100;
    let mut server = Server::start(&[
        "-q",
        "--history",
        "0",
        "--rate",
        "1000000",
        "--burst",
        "1000000",
    ]);
    let progress = Arc::new((
        std::sync::Mutex::new(Progress {
            heard: vec![vec![0; SENDERS]; MEMBERS],
            done: vec![false; MEMBERS],
        }),
        std::sync::Condvar::new(),
    ));
    let mut members: Vec<Raw> = (0..MEMBERS)
        .map(|_| {
            let mut raw = Raw::connect(&server);
            raw.upgrade("/");
            raw
        })
        .collect();
    // Everyone is in the room before anyone speaks: the last to join hears
    // its welcome after the others joined.
    for raw in &mut members {
        let welcome = raw.read_text();
        assert!(welcome.starts_with("* Welcome to #lobby"), "{welcome:?}");
    }
    let writers: Vec<std::net::TcpStream> = members.iter().take(SENDERS).map(Raw::writer).collect();
    let readers: Vec<JoinHandle<Heard>> = members
        .into_iter()
        .enumerate()
        .map(|(r, mut raw)| {
            let progress = progress.clone();
            thread::spawn(move || {
                let mut lines = Vec::new();
                let code = loop {
                    let frame = raw.read_frame();
                    match frame.opcode {
                        1 => {
                            let text = String::from_utf8(frame.payload).expect("UTF-8");
                            if is_notice(&text) {
                                continue;
                            }
                            let (s, _) = parse_flood_line(&text)
                                .unwrap_or_else(|| panic!("not a flood line: {text:?}"));
                            lines.push(text);
                            lock(&progress.0).heard[r][s] += 1;
                            progress.1.notify_all();
                        }
                        8 => {
                            let code = u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
                            raw.send_close(code);
                            break code;
                        }
                        other => panic!("unexpected opcode {other:#x}"),
                    }
                };
                lock(&progress.0).done[r] = true;
                progress.1.notify_all();
                Heard { lines, code }
            })
        })
        .collect();
    // Sender `s` is member `s`: it sends while it has heard back all but
    // WINDOW of its messages, until its reader is closed.
    let senders: Vec<JoinHandle<usize>> = writers
        .into_iter()
        .enumerate()
        .map(|(s, mut writer)| {
            let progress = progress.clone();
            thread::spawn(move || {
                let until = deadline() + WAIT;
                let mut sent = 0;
                loop {
                    let mut p = lock(&progress.0);
                    while !p.done[s] && p.heard[s][s] + WINDOW <= sent {
                        let left = until.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return sent;
                        }
                        p = progress
                            .1
                            .wait_timeout(p, left)
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .0;
                    }
                    if p.done[s] {
                        return sent;
                    }
                    drop(p);
                    let frame = masked(true, 1, format!("s{s} {sent}").as_bytes());
                    if writer.write_all(&frame).is_err() {
                        return sent;
                    }
                    sent += 1;
                }
            })
        })
        .collect();

    // Mid-flood: every reader has heard BEFORE_SIGNAL of every sender's.
    {
        let until = deadline();
        let mut p = lock(&progress.0);
        while !p
            .heard
            .iter()
            .all(|counts| counts.iter().all(|&n| n >= BEFORE_SIGNAL))
        {
            let left = until.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the flood did not get going within {WAIT:?}: {:?}",
                p.heard
            );
            p = progress
                .1
                .wait_timeout(p, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }
    server.signal("TERM");

    let heard: Vec<Heard> = readers
        .into_iter()
        .map(|r| r.join().expect("a reader"))
        .collect();
    let sent: Vec<usize> = senders
        .into_iter()
        .map(|s| s.join().expect("a sender"))
        .collect();
    let status = server
        .wait_exit(WAIT)
        .unwrap_or_else(|| panic!("still running {WAIT:?} after SIGTERM"));
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");

    // Each member was closed with 1001 and heard, from each sender, the
    // messages 0..n without a gap, with the same n for every member: every
    // message taken before the shutdown reached the whole room, and none
    // taken after reached a part of it.
    let per_sender = |heard: &Heard| -> Vec<Vec<usize>> {
        let mut got = vec![Vec::new(); SENDERS];
        for line in &heard.lines {
            let (s, i) = parse_flood_line(line).expect("a flood line");
            got[s].push(i);
        }
        got
    };
    let first = per_sender(&heard[0]);
    for (r, member) in heard.iter().enumerate() {
        assert_eq!(member.code, 1001, "member {r}'s close code");
        let got = per_sender(member);
        for (s, seq) in got.iter().enumerate() {
            assert!(
                seq.iter().copied().eq(0..seq.len()),
                "member {r} heard sender {s}'s messages with gaps or out of order: \
                 {} of them, ending {:?}",
                seq.len(),
                &seq[seq.len().saturating_sub(5)..]
            );
        }
        let counts: Vec<usize> = got.iter().map(Vec::len).collect();
        let first_counts: Vec<usize> = first.iter().map(Vec::len).collect();
        assert_eq!(
            counts, first_counts,
            "member {r} and member 0 heard different messages (per sender)"
        );
    }
    let delivered: Vec<usize> = first.iter().map(Vec::len).collect();
    eprintln!("per sender: sent {sent:?}, delivered to every member {delivered:?}");
}
