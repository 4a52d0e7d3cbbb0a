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

#[test]
fn timeouts_as_long_as_the_command_line_takes_them_do_not_overflow() {
    // u64::MAX seconds each: a deadline past what the clock holds is none.
    let max = u64::MAX.to_string();
    let server = Server::start(&[
        "--ping-interval",
        &max,
        "--idle-timeout",
        &max,
        "--message-timeout",
        &max,
        "--history",
        "0",
    ]);
    slowest_round_trip(&server, 2);
    // A message begun and left unfinished arms the message timer too.
    let mut raw = Raw::connect(&server);
    raw.upgrade("/");
    raw.send(&masked(false, 0x1, b"half"));
    slowest_round_trip(&server, 1);
}

#[test]
fn connections_that_send_nothing_cannot_pile_up_from_one_address() {
    // (A handshake timeout that the silent ones cannot reach on a slow
    // machine: each would leave, and the count go down.)
    let server = Server::start(&[
        "--max-connections-per-ip",
        "2",
        "--handshake-timeout",
        "120",
    ]);
    // Two within the limit and two just over it (those wait for their
    // request, and its 503), all silent.
    let mut silent: Vec<Raw> = (0..4).map(|_| Raw::connect(&server)).collect();
    // Past twice the limit: closed at once, unanswered.
    let mut far_over = Raw::connect(&server);
    far_over.expect_eof();
    server.wait_line("Refused connection from 127.0.0.1:");
    // The ones just over the limit still get their answer.
    let mut over = silent.pop().expect("four");
    over.send(upgrade_request("/", "").as_bytes());
    assert_eq!(over.read_response().status, 503);
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

/// The resident memory of process `pid`, in bytes, if it is running.
fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    Some(kib * 1024)
}

/// Whether a process still holds the server's end of the loopback connection
/// from `client`, by `/proc/net/tcp` and `tcp6`: the entry from port
/// `server_port` to the client's port, with an inode (a socket that no
/// process holds, orphaned, has inode 0).
fn server_holds(server_port: u16, client: std::net::SocketAddr) -> bool {
    let port = |field: Option<&&str>| {
        field
            .and_then(|end| end.rsplit(':').next())
            .and_then(|hex| u16::from_str_radix(hex, 16).ok())
    };
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        let table = std::fs::read_to_string(table).unwrap_or_default();
        table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            port(fields.get(1)) == Some(server_port)
                && port(fields.get(2)) == Some(client.port())
                && fields.get(9).is_some_and(|inode| *inode != "0")
        })
    })
}

#[test]
fn the_server_end_of_a_connection_is_found_by_the_table() {
    let server = Server::start(&[]);
    let mut raw = Raw::connect(&server);
    raw.upgrade("/");
    let client = raw.stream.local_addr().expect("its address");
    // (Polled: a read of the table can miss an entry while other tests'
    // sockets come and go.)
    let until = deadline();
    while !server_holds(server.port, client) {
        assert!(Instant::now() < until, "the server's end is not found");
        thread::sleep(Duration::from_millis(20));
    }
    let other = std::net::SocketAddr::from(([127, 0, 0, 1], client.port() ^ 1));
    assert!(!server_holds(server.port, other));
    assert!(!server_holds(server.port ^ 1, client));
    // Once the server has closed it, no process holds its end.
    raw.send(&masked(true, 8, &1000u16.to_be_bytes()));
    assert_eq!(raw.read_close().0, 1000);
    raw.expect_eof();
    let until = deadline();
    while server_holds(server.port, client) {
        assert!(Instant::now() < until, "the server's end is still held");
        thread::sleep(Duration::from_millis(20));
    }
}

/// The server's resident memory, in bytes.
fn rss(server: &Server) -> u64 {
    rss_of(server.pid()).expect("the server's VmRSS")
}

/// A member of `/crowd` that completes its handshake and never reads again,
/// with a receive buffer so small that the kernel holds almost nothing for
/// it either: what the server sends it stays in the server.
fn silent_member(server: &Server) -> std::net::TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], server.port).into();
    socket.connect(&addr.into()).expect("connect");
    let mut stream: std::net::TcpStream = socket.into();
    stream
        .write_all(upgrade_request("/crowd", "").as_bytes())
        .expect("request");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("the 101 response");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "), "{head:?}");
    stream
}

/// What [`silent_crowd`] measured.
struct Crowd {
    rss_before: u64,
    rss_peak: u64,
    rss_after: u64,
}

/// `silent` members of `/crowd` that never read, then `senders` members
/// that each send `messages` chat messages of about 1900 bytes, keeping a
/// few unheard at a time, while reading everything the room says (the
/// honest readers). Checks that every honest reader hears every message,
/// each sender's in order, and that every silent member is closed as too
/// slow (the server says so, and the socket ends); returns the server's
/// memory.
fn silent_crowd(server: &Server, silent: usize, senders: usize, messages: usize) -> Crowd {
    // Messages a sender may have sent and not heard back: a reader keeps
    // up with the room, but messages are always in flight.
    const WINDOW: usize = 8;
    // Messages in the room that the slowest reader has not read: readers
    // are threads, and one the machine stalls a while must not fall far
    // behind the others (it would be behind by 256 KiB, the send queue
    // of the test that sets one, after 138 of them).
    let behind = senders * WINDOW;
    // 1.9 KB messages sent before the honest members join.
    const WARM_UP: usize = 80;
    let quiet: Vec<std::net::TcpStream> = (0..silent).map(|_| silent_member(server)).collect();
    let rss_before = rss(server);
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(rss_before));
    let text = |s: usize, i: usize| format!("{s} {i:04} {}", "x".repeat(1890));
    // Before any honest member joins, enough to fill what the kernels hold
    // for each silent member (the server's send buffer, 64 KiB doubled,
    // and its small receive buffer): from then on its backlog is in the
    // server, and older than anything an honest reader can be behind by.
    // Without this the backlogs began 70 messages into the test, and a
    // reader stalled for a few hundred milliseconds on a loaded machine was
    // older, so closed first, as the rule says (CI saw it once).
    let mut warm_up = Raw::connect(server);
    warm_up.upgrade("/crowd");
    let welcome = warm_up.read_text();
    assert!(welcome.starts_with("* Welcome to #crowd"), "{welcome:?}");
    for i in 0..WARM_UP {
        let line = format!("w {i:04} {}", "x".repeat(1890));
        warm_up.send(&masked(true, 1, line.as_bytes()));
        let heard = warm_up.read_text();
        assert!(heard.ends_with(&line), "{heard:?}");
    }
    drop(warm_up);
    let mut honest: Vec<Raw> = (0..senders)
        .map(|_| {
            let mut raw = Raw::connect(server);
            raw.upgrade("/crowd");
            raw
        })
        .collect();
    // Each has its welcome once all have joined: no message is sent
    // before every honest reader is in the room.
    for raw in &mut honest {
        let welcome = raw.read_text();
        assert!(welcome.starts_with("* Welcome to #crowd"), "{welcome:?}");
    }
    // What all have sent, and what each has read.
    let room = Arc::new((
        std::sync::atomic::AtomicUsize::new(0),
        (0..senders)
            .map(|_| std::sync::atomic::AtomicUsize::new(0))
            .collect::<Vec<_>>(),
    ));
    let readers: Vec<JoinHandle<Vec<String>>> = honest
        .into_iter()
        .enumerate()
        .map(|(s, mut raw)| {
            let mut writer = raw.writer();
            let pid = server.pid();
            let peak = peak.clone();
            let room = room.clone();
            thread::spawn(move || {
                let own = format!("{s} ");
                let (mut sent, mut own_heard) = (0, 0);
                let mut heard = Vec::new();
                let (all_sent, read) = &*room;
                let mut waiting = None;
                let slowest = || read.iter().map(|r| r.load(Ordering::Relaxed)).min();
                while heard.len() < senders * messages {
                    while sent < messages
                        && sent < own_heard + WINDOW
                        && all_sent.load(Ordering::Relaxed) < slowest().unwrap_or(0) + behind
                    {
                        writer
                            .write_all(&masked(true, 1, text(s, sent).as_bytes()))
                            .expect("an honest sender's message");
                        sent += 1;
                        all_sent.fetch_add(1, Ordering::Relaxed);
                    }
                    // Nothing on its way to this reader (it read all that
                    // was sent, and may send no more until the slowest
                    // catches up): it waits for a send, not in a read.
                    if all_sent.load(Ordering::Relaxed) <= heard.len() {
                        let since = *waiting.get_or_insert_with(Instant::now);
                        assert!(
                            since.elapsed() < WAIT,
                            "reader {s}: nothing sent in {WAIT:?}"
                        );
                        thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    waiting = None;
                    let line = raw.read_text();
                    if is_notice(&line) {
                        continue;
                    }
                    if line
                        .split_once(": ")
                        .is_some_and(|(_, t)| t.starts_with(&own))
                    {
                        own_heard += 1;
                    }
                    heard.push(line);
                    read[s].store(heard.len(), Ordering::Relaxed);
                    // The server's memory, now and then, while it is busy.
                    if heard.len() % 16 == 0 {
                        if let Some(bytes) = rss_of(pid) {
                            peak.fetch_max(bytes, Ordering::Relaxed);
                        }
                    }
                }
                heard
            })
        })
        .collect();
    // Every honest reader heard every message, each sender's in order.
    for (r, reader) in readers.into_iter().enumerate() {
        let heard = reader.join().expect("an honest reader");
        for s in 0..senders {
            let prefix = format!("{s} ");
            let from: Vec<&String> = heard
                .iter()
                .filter(|l| {
                    l.split_once(": ")
                        .is_some_and(|(_, t)| t.starts_with(&prefix))
                })
                .collect();
            assert_eq!(from.len(), messages, "reader {r}, sender {s}");
            for (i, line) in from.iter().enumerate() {
                assert!(
                    line.ends_with(&text(s, i)),
                    "reader {r}, sender {s}, message {i}"
                );
            }
        }
    }
    // Every silent member was closed as too slow: dropped for the budget or
    // closed with 1008 for a full queue. Its socket, read at last, gives
    // what the kernels held and then ends. (Or goes quiet after the server
    // let go of it: the kernel may drop an orphaned socket that had data
    // for a zero window, without a reset. Seen once, on a loaded machine.)
    // (A client may be named twice: its queue filled as the budget dropped
    // it. Count clients, not lines.)
    let until = deadline();
    loop {
        let text = server.stdout.text();
        let closed: std::collections::HashSet<&str> = text
            .lines()
            .filter_map(|line| line.split_once("] Client ")?.1.split_once(" is too slow"))
            .map(|(peer, _)| peer)
            .collect();
        if closed.len() >= silent {
            break;
        }
        assert!(
            Instant::now() < until,
            "{} of {silent} silent members closed as too slow",
            closed.len()
        );
        thread::sleep(Duration::from_millis(50));
    }
    // Read at last, all at once: a window this small is below one
    // message's segment, which the server's kernel then sends only on its
    // zero-window probes, a few kilobytes a second (more so when the
    // messages were written one at a time, as to a parked member), so one
    // socket after the other would take minutes. Each must make progress
    // within WAIT until it ends.
    let mut open: Vec<(std::net::TcpStream, Instant)> = quiet
        .into_iter()
        .map(|stream| {
            stream.set_nonblocking(true).expect("non-blocking");
            (stream, Instant::now())
        })
        .collect();
    let mut buf = vec![0; 64 * 1024];
    while !open.is_empty() {
        let mut progressed = false;
        open.retain_mut(|(stream, last)| loop {
            match stream.read(&mut buf) {
                Ok(0) => return false,
                Ok(_) => {
                    (*last, progressed) = (Instant::now(), true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return false,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if last.elapsed() < WAIT {
                        return true;
                    }
                    let client = stream.local_addr().expect("its address");
                    assert!(
                        !server_holds(server.port, client),
                        "a silent member's socket did not end, and the server holds it"
                    );
                    return false;
                }
                Err(e) => panic!("a silent member's socket did not end: {e}"),
            }
        });
        if !progressed {
            // Nothing arrived on any: the next probes are due in a while.
            thread::sleep(Duration::from_millis(10));
        }
    }
    let rss_after = rss(server);
    Crowd {
        rss_before,
        rss_peak: peak.load(Ordering::Relaxed).max(rss_after),
        rss_after,
    }
}

/// The options that let one address fill a big room at full speed.
const CROWD: [&str; 8] = [
    "--max-connections-per-ip",
    "0",
    "--max-room-clients",
    "5000",
    "--rate",
    "100000",
    "--burst",
    "100000",
];

#[test]
fn past_the_queue_budget_silent_members_go_and_readers_lose_nothing() {
    // 32 silent members would hold 4 x 100 x 1.9 KB each: 4 MiB for all is
    // far less, but lets them be silent a while before it runs out (a
    // reader behind by more than that would be taken for a silent one).
    // The last few, which the budget can hold, fill their own queue
    // (256 KiB) and are closed with 1008.
    let mut args = CROWD.to_vec();
    args.extend([
        "--history",
        "0",
        "--max-queued-bytes",
        "4194304",
        "--max-send-queue",
        "262144",
    ]);
    let server = Server::start(&args);
    silent_crowd(&server, 32, 4, 100);
    let dropped = server.stdout.count("past --max-queued-bytes, dropping it");
    assert!(dropped > 0, "no member was dropped for the budget");
}

/// How many silent members [`silent_members_are_closed_and_memory_stays_bounded`]
/// starts: `TINCAN_SILENT_MEMBERS`, or 1000.
fn silent_members() -> usize {
    std::env::var("TINCAN_SILENT_MEMBERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000)
}

/// The target: 1000 silent members beside honest senders. The core
/// shares broadcast frames (queued by reference, whatever their size), so
/// the 64 MiB of queued bytes the budget allows cost little more than the
/// frames themselves. Measured before sharing (release, tincan-smol): RSS
/// 171-195 MB at the peak and 40-129 MB after; with it (debug, both
/// binaries): 24-29 MB at the peak, within a few MB of the start after.
#[test]
fn silent_members_are_closed_and_memory_stays_bounded() {
    let silent = silent_members();
    let _ = rlimit::increase_nofile_limit(silent as u64 + 1024);
    let mut args = CROWD.to_vec();
    args.extend(["--history", "0"]);
    let server = Server::start(&args);
    // 4 x 200 messages of 1.9 KB: more than a silent member's kernel
    // buffers and queue (1 MiB) hold, so each is closed, for the budget
    // (64 MiB) while it is crowded, for its queue when few are left.
    let crowd = silent_crowd(&server, silent, 4, 200);
    eprintln!(
        "{silent} silent members: server RSS {} MB before, {} MB at the peak, {} MB after",
        crowd.rss_before >> 20,
        crowd.rss_peak >> 20,
        crowd.rss_after >> 20
    );
    assert!(
        crowd.rss_peak < 128 << 20,
        "peak RSS {} MB",
        crowd.rss_peak >> 20
    );
    assert!(
        crowd.rss_after < crowd.rss_before + (16 << 20),
        "RSS did not come back down: {} MB before, {} MB after",
        crowd.rss_before >> 20,
        crowd.rss_after >> 20
    );
}

/// Joins the lobby from `source` (a loopback address such as 127.0.0.2);
/// returns the client and its nickname.
fn join_from(server: &Server, source: [u8; 4]) -> (Ws, String) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let local: std::net::SocketAddr = (source, 0).into();
    socket.bind(&local.into()).expect("bind a loopback source");
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], server.port).into();
    socket.connect(&addr.into()).expect("connect");
    let stream: std::net::TcpStream = socket.into();
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    stream.set_write_timeout(Some(WAIT)).expect("write timeout");
    let (mut ws, _) = tungstenite::client(server.url("/"), Stream(stream)).expect("handshake");
    let nick = expect_welcome(&mut ws);
    (ws, nick)
}

#[test]
fn reconnecting_does_not_refill_the_rate_limit() {
    // Three at once, then one every 100 s: nothing refills during the test.
    let server = Server::start(&["--burst", "3", "--rate", "0.01", "--history", "0"]);
    let slow_down = "! slow down: at most 3 messages at once and 0.01 per second";
    let (mut first, nick) = join_from(&server, [127, 0, 0, 1]);
    for i in 0..3 {
        ws_send_text(&mut first, &format!("burst {i}"));
        assert_eq!(ws_chat(&mut first), chat_line(&nick, &format!("burst {i}")));
    }
    ws_send_text(&mut first, "one more");
    assert_eq!(ws_chat(&mut first), slow_down);
    first.close(None).expect("close");
    loop {
        match first.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("closing: {e}"),
        }
    }

    // The same address on a new connection: the same empty bucket.
    let (mut again, _) = join_from(&server, [127, 0, 0, 1]);
    ws_send_text(&mut again, "fresh start?");
    assert_eq!(ws_chat(&mut again), slow_down);
    // Another address has a bucket of its own.
    let (mut other, other_nick) = join_from(&server, [127, 0, 0, 2]);
    ws_send_text(&mut other, "hello");
    assert_eq!(ws_chat(&mut other), chat_line(&other_nick, "hello"));
}

/// The refusal a sender gets for a message with control character `code`.
fn control_refusal(code: u32) -> String {
    format!(
        "! message refused: U+{code:04X} is a control character; a message is one line \
         without U+0000-U+001F, U+007F-U+009F, U+2028 or U+2029"
    )
}

/// Sends each of `bad` from a member of the lobby and expects `refusal` of
/// it back; another member hears none of them, only the good message sent
/// after them.
fn refused_to_the_sender_only(server: &Server, bad: &[(&str, String)]) {
    let (mut sender, _) = ws_connect(server, "/");
    let nick = expect_welcome(&mut sender);
    let (mut other, _) = ws_connect(server, "/");
    expect_welcome(&mut other);
    for (text, refusal) in bad {
        ws_send_text(&mut sender, text);
        let answer = ws_chat(&mut sender);
        assert_eq!(&answer, refusal, "for {text:?}");
        assert!(!answer.contains(['\n', '\r']), "{answer:?} is one line");
    }
    ws_send_text(&mut sender, "after them");
    assert_eq!(ws_chat(&mut sender), chat_line(&nick, "after them"));
    assert_eq!(ws_chat(&mut other), chat_line(&nick, "after them"));
}

#[test]
fn control_characters_are_refused_to_the_sender_only() {
    let server = Server::start(&[]);
    let bidi = |code: u32| {
        format!(
            "! message refused: U+{code:04X} is a bidirectional control; U+061C, U+200E, \
             U+200F, U+202A-U+202E and U+2066-U+2069 are not allowed"
        )
    };
    refused_to_the_sender_only(
        &server,
        &[
            // A terminal escape (ECMA-48 ESC and CSI), a bell, NUL, DEL.
            ("\u{1b}[2J\u{1b}[31mred", control_refusal(0x1b)),
            ("csi \u{9b}31m", control_refusal(0x9b)),
            ("ding\u{7}", control_refusal(0x07)),
            ("nul \u{0} byte", control_refusal(0x00)),
            ("del\u{7f}", control_refusal(0x7f)),
            ("/me waves \u{1b}[5m", control_refusal(0x1b)),
            // Trojan Source: a right-to-left override.
            ("access \u{202e}nimda", bidi(0x202e)),
            (
                " \u{200b} ",
                "! empty message: only whitespace or invisible characters".into(),
            ),
        ],
    );
}

#[test]
fn a_message_cannot_forge_a_second_line_in_plain_format() {
    let server = Server::start(&[]);
    refused_to_the_sender_only(
        &server,
        &[
            ("hi\n* admin joined #lobby", control_refusal(0x0a)),
            ("hi\r! you are banned", control_refusal(0x0d)),
            ("hi\r\nguest-1: not me", control_refusal(0x0d)),
            ("hi\u{2028}* line separator", control_refusal(0x2028)),
            ("hi\u{2029}* paragraph separator", control_refusal(0x2029)),
            ("tab\tseparated", control_refusal(0x09)),
            ("/me waves\n* admin joined #lobby", control_refusal(0x0a)),
            ("/me\n* admin joined #lobby", control_refusal(0x0a)),
            ("//\n* literal", control_refusal(0x0a)),
        ],
    );
}

#[test]
fn confusable_and_guest_like_nicknames_are_refused() {
    let server = Server::start(&["--burst", "100"]);
    let (mut alice, _) = ws_connect(&server, "/");
    let nick = expect_welcome(&mut alice);
    ws_send_text(&mut alice, "/nick alice");
    assert_eq!(
        ws_text(&mut alice),
        format!("* {nick} is now known as alice")
    );
    let (mut mallory, _) = ws_connect(&server, "/");
    expect_welcome(&mut mallory);
    let looks_like =
        |name: &str| format!("! nickname '{name}' looks too much like 'alice', who is in #lobby");
    for name in ["a1ice", "aIice", "ALlCE", "aiice", "al1ce"] {
        ws_send_text(&mut mallory, &format!("/nick {name}"));
        assert_eq!(ws_text(&mut mallory), looks_like(name), "/nick {name}");
    }
    ws_send_text(&mut mallory, "/nick Alice");
    assert_eq!(
        ws_text(&mut mallory),
        "! nickname 'Alice' is taken in #lobby"
    );
    let reserved = "! nicknames that look like 'guest-N' are reserved for guests";
    for name in ["guest-7", "GUEST-7", "gue5t-1", "guest_1", "guest.1"] {
        ws_send_text(&mut mallory, &format!("/nick {name}"));
        assert_eq!(ws_text(&mut mallory), reserved, "/nick {name}");
    }
    // A name unlike any in the room is fine; alice saw none of the above.
    ws_send_text(&mut mallory, "/nick mallory");
    let renamed = ws_text(&mut mallory);
    assert!(renamed.ends_with(" is now known as mallory"), "{renamed:?}");
    loop {
        let heard = ws_text(&mut alice);
        if heard.ends_with(" joined #lobby") {
            continue;
        }
        assert_eq!(heard, renamed);
        break;
    }
}

#[test]
fn a_history_reply_is_bounded_and_shared_by_every_joiner() {
    use tungstenite::client::IntoClientRequest;
    // The largest messages the chat takes, in the characters that cost most
    // once encoded: 4-byte UTF-8, and quotes that JSON escapes to 2 bytes.
    // A control character (6 bytes in JSON, `\u0001`) is refused at input,
    // so it never reaches the history.
    const HISTORY: usize = 50;
    const LENGTH: usize = 2000;
    let server = Server::start(&[
        "--rate",
        "100000",
        "--burst",
        "100000",
        "--max-connections-per-ip",
        "0",
    ]);
    let (mut filler, _) = ws_connect(&server, "/");
    let nick = expect_welcome(&mut filler);
    let controls = "\u{1}".repeat(LENGTH);
    ws_send_text(&mut filler, &controls);
    assert_eq!(ws_chat(&mut filler), control_refusal(1));
    for i in 0..HISTORY {
        let text = if i % 2 == 0 {
            "\u{1F600}".repeat(LENGTH)
        } else {
            "\"".repeat(LENGTH)
        };
        ws_send_text(&mut filler, &text);
        assert_eq!(ws_chat(&mut filler), chat_line(&nick, &text));
    }
    // A JSON joiner's history: every entry is at most 4 bytes a character
    // and an envelope, so the reply is at most HISTORY such entries.
    let join_json = || {
        let mut request = server.url("/").into_client_request().expect("request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "tincan.v1".parse().expect("header"),
        );
        let stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        let (ws, _) = tungstenite::client(request, Stream(stream)).expect("handshake");
        ws
    };
    let mut reader = join_json();
    let welcome = ws_text(&mut reader);
    assert!(welcome.contains("\"type\":\"welcome\""), "{welcome}");
    let history = ws_text(&mut reader);
    assert!(
        history.contains("\"type\":\"history\""),
        "{}",
        &history[..100]
    );
    assert!(
        !history.contains("\\u0001"),
        "a refused message is in the history"
    );
    let bound = HISTORY * (4 * LENGTH + 256) + 256;
    assert!(
        history.len() <= bound,
        "the history reply is {} bytes, over {bound}",
        history.len()
    );
    // Joiners that never read hold the same encoded reply, not a copy
    // each (which would be 100 times the reply).
    let before = rss(&server);
    let silent: Vec<std::net::TcpStream> = (0..100)
        .map(|_| {
            let mut stream =
                std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
            let request = upgrade_request("/", "Sec-WebSocket-Protocol: tincan.v1\r\n");
            stream.write_all(request.as_bytes()).expect("request");
            stream
        })
        .collect();
    server.wait_count("joined #lobby as", 2 + silent.len());
    let after = rss(&server);
    eprintln!(
        "history reply {} KB; server RSS {} MB before 100 silent joiners, {} MB after",
        history.len() >> 10,
        before >> 20,
        after >> 20
    );
    assert!(
        after < before + (history.len() as u64 * 100) / 4,
        "100 joiners cost {} MB for a history of {} KB",
        (after - before) >> 20,
        history.len() >> 10
    );
    drop(silent);
}
