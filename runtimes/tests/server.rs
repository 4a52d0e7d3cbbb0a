//! End-to-end tests of a server binary: each test starts its own server
//! process on a free port and talks to it over real sockets. The same file is
//! the `server` test of both `tincan-smol` and `tincan-async-std`.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use tungstenite::{Bytes, Message};

// ---------------------------------------------------------------------------
// 1. Handshake, a message, and the log.

#[test]
fn handshake_message_and_log_lines() {
    let server = Server::start(&[]);
    let (mut ws, local) = ws_connect(&server, "/");
    let nick = expect_welcome(&mut ws);
    ws_send_text(&mut ws, "Hello from browser!");
    assert_eq!(ws_chat(&mut ws), chat_line(&nick, "Hello from browser!"));

    // The log tells the story in order.
    let peer = format!("127.0.0.1:{local}");
    let (line, at) = server.wait_line_after(0, &format!("HTTP upgrade request from {peer}"));
    assert_log_line_format(&line);
    let (_, at) = server.wait_line_after(at, "WebSocket handshake complete");
    let (_, at) = server.wait_line_after(at, r#"Received TEXT: "Hello from browser!""#);
    let (line, at) = server.wait_line_after(at, "Broadcasting to ");
    assert!(
        line.ends_with("] Broadcasting to 1 client"),
        "one client, singular: {line:?}"
    );

    // A clean close is logged with its code.
    ws.close(None).expect("send close");
    loop {
        match ws.read() {
            Ok(Message::Close(_)) | Ok(Message::Text(_)) => continue,
            Err(tungstenite::Error::ConnectionClosed) => break,
            other => panic!("expected the close handshake to finish, got {other:?}"),
        }
    }
    let (line, _) = server.wait_line_after(at, &format!("Connection with {peer} closed: "));
    assert!(
        line.ends_with(&format!("Connection with {peer} closed: 1005")),
        "a close without a code is 1005: {line:?}"
    );
}

// ---------------------------------------------------------------------------
// 2. Broadcast.

#[test]
fn broadcast_reaches_every_client_including_the_sender() {
    let server = Server::start(&[]);
    let mut clients: Vec<_> = (0..3).map(|_| ws_connect(&server, "/").0).collect();
    server.wait_count("WebSocket handshake complete", 3);
    let nicks: Vec<String> = clients.iter_mut().map(expect_welcome).collect();
    let distinct: std::collections::HashSet<_> = nicks.iter().collect();
    assert_eq!(distinct.len(), 3, "nicknames must differ: {nicks:?}");

    ws_send_text(&mut clients[1], "hi everyone");
    for (i, ws) in clients.iter_mut().enumerate() {
        assert_eq!(
            ws_chat(ws),
            chat_line(&nicks[1], "hi everyone"),
            "client {i}"
        );
    }
    let (_, at) = server.wait_line_after(0, r#"Received TEXT: "hi everyone""#);
    let (line, _) = server.wait_line_after(at, "Broadcasting to ");
    assert!(line.ends_with("] Broadcasting to 3 clients"), "{line:?}");
}

// ---------------------------------------------------------------------------
// 3. Ping and pong, both ways.

#[test]
fn client_ping_gets_pong_with_the_same_payload() {
    let server = Server::start(&[]);
    let (mut ws, _) = ws_connect(&server, "/");
    expect_welcome(&mut ws);
    ws.send(Message::Ping(Bytes::from_static(b"abc")))
        .expect("send ping");
    assert_eq!(ws_read(&mut ws), Message::Pong(Bytes::from_static(b"abc")));
    server.wait_line("Received PING");
    // Still usable afterwards.
    ws_send_text(&mut ws, "after ping");
    assert!(ws_chat(&mut ws).ends_with(": after ping"));
}

#[test]
fn server_pings_idle_clients_and_keeps_those_that_answer() {
    let server = Server::start(&["--ping-interval", "1", "--ping-timeout", "5"]);
    let (mut ws, local) = ws_connect(&server, "/");
    let nick = expect_welcome(&mut ws);
    set_read_timeout(&ws, Duration::from_millis(200));

    // Stay silent; tungstenite queues the pong when it reads the ping.
    let until = deadline();
    let mut pings = 0;
    while pings < 2 {
        assert!(
            Instant::now() < until,
            "no keepalive ping within {WAIT:?}; log:\n{}",
            server.stdout.text()
        );
        match ws.read() {
            Ok(Message::Ping(_)) => {
                pings += 1;
                ws.flush().expect("send the pong");
            }
            Ok(other) => panic!("expected only pings while idle, got {other:?}"),
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("connection failed while idle: {e}"),
        }
    }
    let (_, at) = server.wait_line_after(0, &format!("Sending PING to 127.0.0.1:{local}"));
    let (_, at) = server.wait_line_after(at, "Received PONG");
    // Answered twice: the second ping came a full interval after the first
    // pong, so the connection survived its ping timeout.
    let (_, at) = server.wait_line_after(at, &format!("Sending PING to 127.0.0.1:{local}"));
    server.wait_line_after(at, "Received PONG");

    set_read_timeout(&ws, WAIT);
    ws_send_text(&mut ws, "still alive");
    loop {
        match ws_read(&mut ws) {
            Message::Ping(_) => continue,
            Message::Text(t) => {
                assert_eq!(t.as_str(), chat_line(&nick, "still alive"));
                break;
            }
            other => panic!("expected the chat message, got {other:?}"),
        }
    }
    assert_eq!(
        server
            .stdout
            .count(&format!("Connection with 127.0.0.1:{local} closed")),
        0,
        "the answering client must not be dropped"
    );
}

// ---------------------------------------------------------------------------
// 4. Fragmentation, with a control frame in the middle (echo mode, so the
//    reply bytes are exact).

#[test]
fn fragmented_message_with_a_ping_between_fragments() {
    let server = Server::start(&["--echo"]);
    let mut raw = Raw::connect(&server);
    raw.upgrade("/");
    // "Hello, wörld!": the two bytes of 'ö' are in different fragments.
    raw.send(&masked(false, 0x1, b"Hello, w\xc3"));
    raw.send(&masked(true, 0x9, b"abc"));
    raw.send(&masked(false, 0x0, b"\xb6rld"));
    raw.send(&masked(true, 0x0, b"!"));

    // The pong is sent as soon as the ping is read, before the message is
    // complete.
    assert_eq!(raw.read_exact(5), b"\x8a\x03abc", "the pong");
    let text = "Hello, wörld!".as_bytes();
    let mut expected = vec![0x81, text.len() as u8];
    expected.extend_from_slice(text);
    assert_eq!(
        raw.read_exact(expected.len()),
        expected,
        "one unmasked text frame"
    );
    server.wait_line(r#"Received TEXT: "Hello, wörld!""#);

    // A masked close is answered with the same code, then the server ends
    // the TCP connection.
    raw.send_close(1000);
    assert_eq!(raw.read_exact(4), b"\x88\x02\x03\xe8");
    raw.expect_eof();
}

// ---------------------------------------------------------------------------
// 5. Invalid frames get the right close code, then the TCP connection ends.

/// Sends `bad` on a fresh connection to a server started with `args`; the
/// server must answer with a close frame with `code` and end the connection
/// by itself; the log names the protocol error.
fn assert_protocol_error(args: &[&str], bad: &[u8], code: u16) {
    let server = Server::start(args);
    let mut raw = Raw::connect(&server);
    let peer = format!("127.0.0.1:{}", raw.local_port());
    raw.upgrade("/");
    raw.send(bad);
    let (got, reason) = raw.read_close();
    assert_eq!(got, code, "close code (reason {reason:?})");
    // Failing the connection (§7.1.7): no need to wait for our close.
    raw.expect_eof();
    let (line, at) = server.wait_line_after(0, &format!("Protocol error from {peer}: "));
    assert!(
        line.ends_with(&format!("(closing with {code})")),
        "{line:?}"
    );
    server.wait_line_after(at, &format!("Connection with {peer} closed: {code}"));
}

#[test]
fn unmasked_frame_is_a_protocol_error() {
    assert_protocol_error(&[], &frame(true, 0x1, b"hi", None), 1002);
}

#[test]
fn reserved_opcode_is_a_protocol_error() {
    assert_protocol_error(&[], &masked(true, 0x3, b"hi"), 1002);
}

#[test]
fn invalid_utf8_text_is_1007() {
    assert_protocol_error(&[], &masked(true, 0x1, b"ok \xc3\x28 bad"), 1007);
}

#[test]
fn other_framing_violations_are_protocol_errors() {
    let cases: [(&str, Vec<u8>, u16); 7] = [
        (
            "RSV1 set",
            {
                let mut f = masked(true, 0x1, b"hi");
                f[0] |= 0x40;
                f
            },
            1002,
        ),
        (
            "continuation with nothing to continue",
            masked(true, 0x0, b"hi"),
            1002,
        ),
        (
            "new message inside a fragmented one",
            {
                let mut f = masked(false, 0x1, b"one");
                f.extend(masked(true, 0x1, b"two"));
                f
            },
            1002,
        ),
        ("fragmented ping", masked(false, 0x9, b"hi"), 1002),
        ("ping of 126 bytes", masked(true, 0x9, &[b'p'; 126]), 1002),
        (
            "close with a 1-byte payload",
            masked(true, 0x8, &[0x03]),
            1002,
        ),
        (
            "close with the reserved code 1005",
            masked(true, 0x8, &1005u16.to_be_bytes()),
            1002,
        ),
    ];
    for (what, bad, code) in cases {
        eprintln!("case: {what}");
        assert_protocol_error(&["--echo"], &bad, code);
    }
}

#[test]
fn message_over_max_message_size_is_1009() {
    let args = ["--max-message-size", "1000"];
    // At the limit is fine.
    let server = Server::start(&args);
    let mut raw = Raw::connect(&server);
    raw.upgrade("/");
    let at_limit = "a".repeat(1000);
    raw.send(&masked(true, 0x1, at_limit.as_bytes()));
    let echoed = raw.read_chat();
    assert!(
        echoed.ends_with(&format!(": {at_limit}")),
        "a 1000-byte message must be accepted, got {echoed:?}"
    );
    drop(server);

    // One byte more is not.
    assert_protocol_error(&args, &masked(true, 0x1, "b".repeat(1001).as_bytes()), 1009);
    // Nor is a fragmented message that adds up to more.
    let mut fragments = masked(false, 0x1, "c".repeat(600).as_bytes());
    fragments.extend(masked(true, 0x0, "c".repeat(401).as_bytes()));
    assert_protocol_error(&args, &fragments, 1009);
}

#[test]
fn binary_message_in_chat_mode_is_1003() {
    let server = Server::start(&[]);
    let mut raw = Raw::connect(&server);
    let peer = format!("127.0.0.1:{}", raw.local_port());
    raw.upgrade("/");
    raw.send(&masked(true, 0x2, &[1, 2, 3]));
    let (code, reason) = raw.read_close();
    assert_eq!(code, 1003, "close code (reason {reason:?})");
    // A close the server started: it waits for our answer, then ends TCP.
    raw.send_close(1003);
    raw.expect_eof();
    server.wait_line("Received BINARY: 3 bytes");
    server.wait_line(&format!("Connection with {peer} closed: 1003"));
    assert_eq!(server.stdout.count("Broadcasting"), 0);
}

// ---------------------------------------------------------------------------
// 6. A client that vanishes does not disturb the others.

#[test]
fn abrupt_disconnect_leaves_other_clients_unaffected() {
    let server = Server::start(&[]);
    let mut a = Raw::connect(&server);
    let a_peer = format!("127.0.0.1:{}", a.local_port());
    a.upgrade("/");
    let a_nick = parse_welcome(&a.read_text());
    let (mut b, _) = ws_connect(&server, "/");
    let (mut c, _) = ws_connect(&server, "/");
    let b_nick = expect_welcome(&mut b);
    let c_nick = expect_welcome(&mut c);
    server.wait_count("WebSocket handshake complete", 3);

    // No close frame, no FIN handshake: the socket just goes away (with
    // unread data, so the kernel resets it).
    drop(a);

    // Everything B and C are told, up to and including the next chat line.
    fn chat_and_notices(ws: &mut Ws, notices: &mut Vec<String>) -> String {
        loop {
            let text = ws_text(ws);
            if !is_notice(&text) {
                return text;
            }
            notices.push(text);
        }
    }
    let (mut b_notices, mut c_notices) = (Vec::new(), Vec::new());
    ws_send_text(&mut b, "still here");
    let want = chat_line(&b_nick, "still here");
    assert_eq!(chat_and_notices(&mut b, &mut b_notices), want);
    assert_eq!(chat_and_notices(&mut c, &mut c_notices), want);
    // B has its own message, so the broadcast of it is in the log.
    let mark = server.mark();

    let (line, at) = server.wait_line_after(0, &format!("Connection with {a_peer} closed: "));
    assert!(
        line.contains(&format!("Connection with {a_peer} closed: 1006")),
        "an abrupt disconnect is 1006: {line:?}"
    );

    // Once A is gone, messages go to the two that are left, who were told
    // that A left.
    ws_send_text(&mut c, "after");
    let want = chat_line(&c_nick, "after");
    assert_eq!(chat_and_notices(&mut b, &mut b_notices), want);
    assert_eq!(chat_and_notices(&mut c, &mut c_notices), want);
    let (line, _) = server.wait_line_after(at.max(mark), "Broadcasting to ");
    assert!(line.ends_with("] Broadcasting to 2 clients"), "{line:?}");
    // The notice went into their outboxes before A's close was logged, but
    // C's own message to itself does not pass through its outbox and may
    // overtake it.
    let left = format!("* {a_nick} left #lobby");
    for (name, ws, notices) in [("B", &mut b, &mut b_notices), ("C", &mut c, &mut c_notices)] {
        while !notices.contains(&left) {
            let text = ws_text(ws);
            assert!(
                is_notice(&text),
                "{name} got {text:?} while waiting for {left:?} (notices so far: {notices:?})"
            );
            notices.push(text);
        }
    }
}

// ---------------------------------------------------------------------------
// 7. Signals.

#[test]
fn sigterm_closes_every_client_with_1001_and_exits_0() {
    let mut server = Server::start(&[]);
    let (mut a, _) = ws_connect(&server, "/");
    let (mut b, _) = ws_connect(&server, "/");
    expect_welcome(&mut a);
    expect_welcome(&mut b);
    server.wait_count("WebSocket handshake complete", 2);

    server.signal("TERM");
    for ws in [&mut a, &mut b] {
        let (code, reason) = ws_expect_close(ws);
        assert_eq!(code, 1001, "going away (reason {reason:?})");
        ws_expect_closed(ws);
    }
    // As a browser would, let go of the sockets once the server ended them.
    drop((a, b));
    server.wait_line("Shutting down: closing 2 connection(s) with 1001");
    let status = server
        .wait_exit(WAIT)
        .unwrap_or_else(|| panic!("still running {WAIT:?} after SIGTERM"));
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
}

#[test]
fn sigint_with_no_clients_exits_0() {
    let mut server = Server::start(&[]);
    server.signal("INT");
    server.wait_line("Shutting down: closing 0 connection(s) with 1001");
    let status = server
        .wait_exit(WAIT)
        .unwrap_or_else(|| panic!("still running {WAIT:?} after SIGINT"));
    assert_eq!(status.code(), Some(0), "exit status after SIGINT");
}

// ---------------------------------------------------------------------------
// 8. Plain HTTP and refused upgrades.

fn http(server: &Server, request: &str) -> HttpResponse {
    let mut raw = Raw::connect(server);
    raw.send(request.as_bytes());
    raw.read_response()
}

#[test]
fn get_root_serves_the_page() {
    let server = Server::start(&[]);
    let response = http(&server, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert_eq!(response.status_line, "HTTP/1.1 200 OK");
    let content_type = response.header("Content-Type").unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "{content_type:?}");
    let body = String::from_utf8_lossy(&response.body).to_ascii_lowercase();
    assert!(body.contains("<html"), "not an HTML page: {body:.200}");
}

#[test]
fn the_page_and_its_assets_carry_security_headers() {
    let server = Server::start(&[]);
    for path in [
        "/",
        "/static/app.js",
        "/static/pkg/tincan_web_bg.wasm",
        "/nope/x",
    ] {
        let response = http(
            &server,
            &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
        );
        assert_eq!(response.header("X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(response.header("X-Frame-Options"), Some("DENY"));
        let csp = response
            .header("Content-Security-Policy")
            .unwrap_or_default();
        // The page's own scripts and wasm codec load; nothing else does, and
        // no other site may frame it.
        for directive in [
            "default-src 'none'",
            "script-src 'self' 'wasm-unsafe-eval'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp:?} lacks {directive}");
        }
    }
}

#[test]
fn get_unknown_path_is_404() {
    let server = Server::start(&[]);
    let response = http(
        &server,
        "GET /no/such/page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    assert_eq!(response.status_line, "HTTP/1.1 404 Not Found");
}

#[test]
fn upgrade_with_version_8_is_426() {
    let server = Server::start(&[]);
    let request = upgrade_request("/", "").replace(
        "Sec-WebSocket-Version: 13\r\n",
        "Sec-WebSocket-Version: 8\r\n",
    );
    let response = http(&server, &request);
    assert_eq!(response.status_line, "HTTP/1.1 426 Upgrade Required");
    assert_eq!(response.header("Sec-WebSocket-Version"), Some("13"));
}

#[test]
fn upgrade_without_key_is_400_with_a_reason() {
    let server = Server::start(&[]);
    let request =
        upgrade_request("/", "").replace(&format!("Sec-WebSocket-Key: {RFC_KEY}\r\n"), "");
    assert!(!request.contains("Key"));
    let response = http(&server, &request);
    assert_eq!(response.status_line, "HTTP/1.1 400 Bad Request");
    let body = String::from_utf8(response.body.clone()).expect("a text body");
    assert!(
        body.ends_with('\n') && body.lines().count() == 1 && body.contains("Sec-WebSocket-Key"),
        "expected a one-line reason naming the header, got {body:?}"
    );
}

#[test]
fn header_block_over_8_kib_is_431() {
    let server = Server::start(&[]);
    let big = format!("X-Filler: {}\r\n", "a".repeat(9000));
    let response = http(&server, &upgrade_request("/", &big));
    assert_eq!(
        response.status_line,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
}

// ---------------------------------------------------------------------------
// 9. The command line.

fn assert_usage_error(args: &[&str]) {
    let run = run(args);
    assert_eq!(run.status.code(), Some(2), "{args:?}: {}", run.stderr);
    assert!(run.stderr.contains("error"), "{args:?}: {:?}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
    assert!(
        !run.stdout.contains("listening"),
        "{args:?}: {}",
        run.stdout
    );
}

#[test]
fn bad_command_lines_exit_2_with_an_error() {
    assert_usage_error(&[]);
    for port in ["0", "99999", "abc", "-1"] {
        assert_usage_error(&[port]);
        let run = run(&[port]);
        assert!(
            run.stderr.contains(&format!(
                "invalid value '{port}' for '<PORT>': expected a number from 1 to 65535"
            )) || (port == "-1" && run.stderr.contains("unexpected argument '-1'")),
            "{port}: {:?}",
            run.stderr
        );
    }
    assert_usage_error(&["--frobnicate", "8080"]);
    assert_usage_error(&["8080", "--ping-interval"]);
    assert_usage_error(&["--ping-interval", "soon", "8080"]);
    assert_usage_error(&["8080", "8081"]);
    // A ping timeout of 0 would drop every client right after its first ping.
    assert_usage_error(&["--ping-timeout", "0", "8080"]);
    for threads in ["0", "1025", "many"] {
        assert_usage_error(&["--threads", threads, "8080"]);
        let run = run(&["--threads", threads, "8080"]);
        let expected = format!("invalid value '{threads}' for '--threads <N>'");
        assert!(run.stderr.contains(&expected), "{:?}", run.stderr);
    }
}

#[test]
fn port_in_use_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port().to_string();
    let run = run(&[port.as_str()]);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("cannot listen"), "{:?}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    drop(taken);
}

#[test]
fn help_and_version_exit_0() {
    let name = std::path::Path::new(BIN)
        .file_name()
        .and_then(|n| n.to_str())
        .expect("binary name");
    for flag in ["--help", "-h"] {
        let run = run(&[flag]);
        assert_eq!(run.status.code(), Some(0), "{flag}");
        assert!(
            run.stdout
                .starts_with(&format!("Usage: {name} [OPTIONS] <PORT>")),
            "{flag}: {:?}",
            run.stdout
        );
        assert_eq!(run.stderr, "");
    }
    let run = run(&["--version"]);
    assert_eq!(run.status.code(), Some(0));
    assert_eq!(
        run.stdout.trim(),
        format!("{name} {}", env!("CARGO_PKG_VERSION"))
    );
}

// ---------------------------------------------------------------------------
// 10. A client that stops reading is dropped; the others keep going.

#[test]
fn slow_client_is_closed_and_fast_client_gets_every_message() {
    let server = Server::start(&[
        "--max-send-queue",
        "65536",
        "--ping-interval",
        "0",
        // Lift the chat limits that would otherwise refuse this traffic.
        "--max-chat-length",
        "100000",
        "--rate",
        "100000",
        "--burst",
        "100000",
    ]);
    let mut stalled = Raw::connect(&server);
    let stalled_peer = format!("127.0.0.1:{}", stalled.local_port());
    stalled.upgrade("/");
    let (mut fast, _) = ws_connect(&server, "/");
    let nick = expect_welcome(&mut fast);
    server.wait_count("WebSocket handshake complete", 2);

    let too_slow = format!("Client {stalled_peer} is too slow");
    let filler = "x".repeat(10 * 1024);
    let message = |i: usize| format!("{i:06} {filler}");
    let check = |got: String, i: usize| {
        let want = chat_line(&nick, &message(i));
        assert!(
            got == want,
            "message {i}: expected {:?}..., got {:?}...",
            &want[..30],
            &got[..got.len().min(30)]
        );
    };
    // Far more than the kernel buffers and the 64 KiB queue can hold.
    const LIMIT: usize = 5000;
    let until = deadline() + WAIT;
    let mut sent = 0;
    while !server.stdout.contains_after(0, &too_slow) {
        assert!(
            sent < LIMIT && Instant::now() < until,
            "{too_slow:?} not logged after {sent} messages of 10 KiB"
        );
        ws_send_text(&mut fast, &message(sent));
        check(ws_chat(&mut fast), sent);
        sent += 1;
    }
    let detected_after = sent;
    // The fast client goes on unaffected.
    for _ in 0..20 {
        ws_send_text(&mut fast, &message(sent));
        check(ws_chat(&mut fast), sent);
        sent += 1;
    }
    assert!(
        detected_after > 1,
        "too slow after {detected_after} messages?"
    );

    // The stalled client, reading at last, finds the messages that fit and
    // then a 1008 close.
    let mut received = 0;
    let (code, reason) = loop {
        let frame = stalled.read_frame();
        match frame.opcode {
            0x1 => {
                let text = String::from_utf8(frame.payload).expect("UTF-8");
                if !is_notice(&text) {
                    check(text, received);
                    received += 1;
                }
            }
            0x8 => {
                let code = u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
                break (
                    code,
                    String::from_utf8_lossy(&frame.payload[2..]).into_owned(),
                );
            }
            other => panic!("unexpected opcode {other:#x}"),
        }
    };
    assert_eq!(code, 1008, "policy violation (reason {reason:?})");
    assert!(
        received < detected_after,
        "the stalled client got {received} of {detected_after} messages: it was not cut off"
    );
    stalled.send_close(1008);
    stalled.expect_eof();
    server.wait_line(&format!("Connection with {stalled_peer} closed: 1008"));
    eprintln!(
        "slow client: detected after {detected_after} messages; \
         it had received {received} before the close"
    );
}

// ---------------------------------------------------------------------------
// 11. Frames that arrive with the handshake request.

#[test]
fn frame_sent_with_the_handshake_request_is_answered() {
    let server = Server::start(&["--echo"]);
    let mut raw = Raw::connect(&server);
    let mut bytes = upgrade_request("/", "").into_bytes();
    bytes.extend(masked(true, 0x1, b"early bird"));
    raw.send(&bytes);
    raw.expect_101();
    assert_eq!(raw.read_exact(12), b"\x81\x0aearly bird");
    server.wait_line(r#"Received TEXT: "early bird""#);
}

// ---------------------------------------------------------------------------
// Extras: clients that stop answering.

#[test]
fn client_that_never_answers_pings_is_dropped() {
    let server = Server::start(&["--ping-interval", "1", "--ping-timeout", "1"]);
    let mut raw = Raw::connect(&server);
    let peer = format!("127.0.0.1:{}", raw.local_port());
    raw.upgrade("/");
    // Read (so nothing piles up) but never answer.
    let mut pings = 0;
    loop {
        let frame = raw.read_frame();
        match frame.opcode {
            0x1 => continue,
            0x9 => pings += 1,
            other => panic!("unexpected opcode {other:#x}: {frame:?}"),
        }
        if pings == 1 {
            break;
        }
    }
    server.wait_line(&format!("Client {peer} did not answer a ping, dropping it"));
    let (line, _) = server.wait_line_after(0, &format!("Connection with {peer} closed: "));
    assert!(
        line.contains(&format!("Connection with {peer} closed: 1006")),
        "{line:?}"
    );
    assert!(!server.stdout.text().contains("Protocol error"));
    // A lost peer gets no close frame: the TCP connection just ends.
    raw.expect_eof();
}

#[test]
fn sigterm_does_not_wait_forever_for_a_client_that_never_answers() {
    let mut server = Server::start(&[]);
    let mut silent = Raw::connect(&server);
    silent.upgrade("/");
    let (mut ws, _) = ws_connect(&server, "/");
    expect_welcome(&mut ws);
    server.wait_count("WebSocket handshake complete", 2);
    server.signal("TERM");
    assert_eq!(ws_expect_close(&mut ws).0, 1001);
    assert_eq!(silent.read_close().0, 1001);
    // The silent client never answers; the server gives up on it.
    let status = server
        .wait_exit(WAIT)
        .unwrap_or_else(|| panic!("still running {WAIT:?} after SIGTERM"));
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
}

#[test]
fn half_closed_client_with_unsent_output_does_not_stall_the_server() {
    let server = Server::start(&["--ping-interval", "0"]);
    let mut a = Raw::connect(&server);
    let a_peer = format!("127.0.0.1:{}", a.local_port());
    a.upgrade("/");
    // Pings, never reading the pongs: far more than the socket buffers hold,
    // so the server is left with output it cannot write.
    let pings: Vec<u8> = (0..8192)
        .flat_map(|_| masked(true, 0x9, &[b'p'; 125]))
        .collect();
    for _ in 0..16 {
        a.send(&pings);
    }
    // Then the client's FIN: every read on the server's side returns 0 now.
    a.stream
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    // Refused for the flood (1008) or lost at the FIN (1006), whichever the
    // server reads first.
    server.wait_line(&format!("Connection with {a_peer} closed: 100"));

    // The server still serves everyone else...
    let (mut b, _) = ws_connect(&server, "/");
    let nick = expect_welcome(&mut b);
    ws_send_text(&mut b, "still here?");
    assert_eq!(ws_chat(&mut b), chat_line(&nick, "still here?"));
    // ...and gives up on the output A does not read (after close_timeout):
    // A finds the end of the stream behind the pongs it was sent.
    a.read_to_end();
}

#[test]
fn the_open_file_limit_is_raised_to_the_hard_limit() {
    // Started with a soft limit of 256 descriptors, as a shell may leave it.
    let server = Server::start_via(&["sh", "-c", "ulimit -Sn 256 && exec \"$@\"", "sh"], &[]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid()))
        .expect("read /proc/PID/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a 'Max open files' line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    // "Max open files <soft> <hard> files"
    assert_eq!(fields[3], fields[4], "soft limit not raised: {line}");
    assert_ne!(fields[3], "256", "{line}");
}

// ---------------------------------------------------------------------------
// 14. Options and refusals that only the binaries show.

#[test]
fn an_upgrade_with_another_method_is_405_allowing_get() {
    let server = Server::start(&[]);
    for method in ["POST", "PUT", "DELETE"] {
        let request = upgrade_request("/", "").replacen("GET", method, 1);
        let response = http(&server, &request);
        assert_eq!(
            response.status_line, "HTTP/1.1 405 Method Not Allowed",
            "{method}"
        );
        assert_eq!(response.header("Allow"), Some("GET"), "{method}");
    }
}

#[test]
fn a_stalled_handshake_is_closed_after_the_handshake_timeout() {
    let server = Server::start(&["--handshake-timeout", "1"]);
    let started = Instant::now();
    let mut stalled = Raw::connect(&server);
    stalled.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    stalled.expect_eof();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}, before the 1 s timeout"
    );
    // Nobody else waited for it.
    let (mut ws, _) = ws_connect(&server, "/");
    expect_welcome(&mut ws);
}

#[test]
fn a_frame_over_max_frame_size_is_1009() {
    let server = Server::start(&["--echo", "--max-frame-size", "100"]);
    let mut raw = Raw::connect(&server);
    raw.upgrade("/");
    raw.send(&masked(true, 1, &[b'a'; 100]));
    assert_eq!(raw.read_text(), "a".repeat(100), "100 bytes are allowed");
    // A message may be larger than a frame: two frames of 60 bytes are fine.
    raw.send(&masked(false, 1, &[b'b'; 60]));
    raw.send(&masked(true, 0, &[b'b'; 60]));
    assert_eq!(raw.read_text(), "b".repeat(120));
    raw.send(&masked(true, 1, &[b'c'; 101]));
    let (code, _) = raw.read_close();
    assert_eq!(code, 1009, "§7.4.1: too big to process");
}

#[test]
fn quiet_drops_info_lines_and_keeps_warnings() {
    let server = Server::start(&["-q"]);
    let (mut ws, _) = ws_connect(&server, "/");
    expect_welcome(&mut ws);
    ws_send_text(&mut ws, "not for the log");
    ws_chat(&mut ws);
    // A warning: an unmasked frame from a client (§5.1).
    let mut bad = Raw::connect(&server);
    bad.upgrade("/");
    bad.send(&frame(true, 1, b"unmasked", None));
    assert_eq!(bad.read_close().0, 1002);
    let line = server.wait_line("Protocol error from 127.0.0.1:");
    assert_log_line_format(&line);
    let log = server.stdout.text();
    for info in [
        "listening on port",
        "HTTP upgrade request",
        "handshake complete",
        "Received TEXT",
        "Broadcasting",
    ] {
        assert!(!log.contains(info), "-q printed {info:?}:\n{log}");
    }
}

#[test]
fn every_room_in_use_refuses_a_new_room_with_503() {
    let server = Server::start(&["--max-rooms", "1"]);
    let (mut a, _) = ws_connect(&server, "/busy");
    ws_text(&mut a);
    let response = http(&server, &upgrade_request("/other", ""));
    assert_eq!(response.status, 503, "{response:?}");
    assert_eq!(response.body, b"too many rooms in use, try again later\n");
    // The room in use still takes people.
    let (mut b, _) = ws_connect(&server, "/busy");
    ws_text(&mut b);
}

#[test]
fn bind_to_every_ipv6_address() {
    let server = Server::start(&["--bind", "::"]);
    let mut raw = Raw::connect_to(&server, "::1");
    raw.upgrade("/");
    assert!(raw.read_text().starts_with("* Welcome to #lobby, "));
    let local = raw.local_port();
    server.wait_line(&format!("HTTP upgrade request from [::1]:{local}"));
}

#[test]
fn echo_mode_shutdown_counts_every_connection() {
    let mut server = Server::start(&["--echo"]);
    let mut clients: Vec<Raw> = (0..2).map(|_| Raw::connect(&server)).collect();
    for raw in &mut clients {
        raw.upgrade("/");
    }
    server.wait_count("WebSocket handshake complete", 2);
    server.signal("TERM");
    for raw in &mut clients {
        assert_eq!(raw.read_close().0, 1001);
    }
    server.wait_line("Shutting down: closing 2 connection(s) with 1001");
    assert_eq!(server.wait_exit(WAIT).and_then(|s| s.code()), Some(0));
}

#[test]
fn the_readme_shows_the_real_options() {
    // The README quotes `tincan-smol -h`, indented, after this line.
    let readme = include_str!("../../README.md");
    let intro = "`tincan-smol -h` prints this";
    let start = readme
        .find(intro)
        .expect("the README introduces the options");
    let quoted: String = readme[start..]
        .lines()
        .skip_while(|line| !line.starts_with("    Usage: "))
        .take_while(|line| line.is_empty() || line.starts_with("    "))
        .map(|line| format!("{}\n", line.strip_prefix("    ").unwrap_or(line)))
        .collect();
    let name = std::path::Path::new(BIN)
        .file_name()
        .and_then(|n| n.to_str())
        .expect("binary name");
    let help = run(&["-h"]).stdout.replace(name, "tincan-smol");
    assert_eq!(
        quoted.trim_end(),
        help.trim_end(),
        "README.md's options differ from `-h`: paste `cargo run -q -p tincan-smol -- -h` there"
    );
}
