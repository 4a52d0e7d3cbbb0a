//! Operating the server: `/healthz`, `/readyz` across a SIGTERM drain,
//! `/metrics` scraped and parsed as the Prometheus text format while real
//! traffic moves its counters, `--metrics-bind`, and `--log-format json`
//! read with a JSON parser. Run against every binary.

mod common;

use std::time::{Duration, Instant};

use common::metrics::*;
use common::*;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

/// Closes `ws` with `code` and `reason`, and reads until the server has
/// answered and ended the connection.
fn close(ws: &mut Ws, code: CloseCode, reason: &str) {
    ws.close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
    .expect("close");
    loop {
        match ws.read() {
            Ok(Message::Text(_) | Message::Close(_)) => continue,
            Err(tungstenite::Error::ConnectionClosed) => return,
            other => panic!("expected the server to end the connection, got {other:?}"),
        }
    }
}

#[test]
fn metrics_move_with_real_traffic() {
    let server = Server::start(&["--rate", "1000", "--burst", "1000"]);
    let before = scrape(server.port);
    // The scrape's own connection is the one open.
    assert_eq!(value(&before, "tincan_connections_open", &[]), Some(1.0));
    // ... and it is no WebSocket.
    assert_eq!(value(&before, "tincan_websockets_open", &[]), Some(0.0));
    assert_eq!(value(&before, "tincan_messages_in_total", &[]), Some(0.0));
    assert_eq!(
        value(&before, "tincan_queued_bytes_limit", &[]),
        Some(f64::from(64 << 20))
    );
    assert_eq!(value(&before, "tincan_queued_bytes", &[]), Some(0.0));
    assert_eq!(value(&before, "tincan_rooms", &[]), Some(0.0));

    let (mut a, _) = ws_connect(&server, "/");
    let a_nick = expect_welcome(&mut a);
    let (mut b, _) = ws_connect(&server, "/");
    expect_welcome(&mut b);
    // A refused upgrade: a page from another origin.
    let mut refused = Raw::connect(&server);
    refused.send(upgrade_request("/", "Origin: http://elsewhere.example\r\n").as_bytes());
    assert_eq!(refused.read_response().status, 403);
    drop(refused);

    // Enough messages for at least two latency samples (one in 64).
    const N: usize = 130;
    for i in 0..N {
        ws_send_text(&mut a, &format!("m{i}"));
    }
    for ws in [&mut a, &mut b] {
        for i in 0..N {
            assert_eq!(ws_chat(ws), chat_line(&a_nick, &format!("m{i}")));
        }
    }
    // Two clients and this scrape, once the refused one is gone.
    let during = scrape_until(server.port, "3 connections open", |s| {
        value(s, "tincan_connections_open", &[]) == Some(3.0)
    });
    assert_eq!(value(&during, "tincan_websockets_open", &[]), Some(2.0));
    assert_eq!(value(&during, "tincan_rooms", &[]), Some(1.0));
    assert_eq!(
        value(&during, "tincan_largest_room_clients", &[]),
        Some(2.0)
    );

    close(&mut b, CloseCode::Normal, "bye");

    let after = scrape_until(server.port, "b's close and a latency sample", |s| {
        value(s, "tincan_closes_total", &[("code", "1000")]) == Some(1.0)
            && histogram_count(s, "tincan_message_latency_seconds") >= 2.0
    });
    let n = N as f64;
    assert_eq!(value(&after, "tincan_messages_in_total", &[]), Some(n));
    // Each message to both members, plus the welcomes, the join notice and
    // the history: at least 2 N.
    let deliveries = value(&after, "tincan_deliveries_out_total", &[]).expect("deliveries");
    assert!(deliveries >= 2.0 * n, "{deliveries}");
    let bytes_in = value(&after, "tincan_bytes_in_total", &[]).expect("bytes in");
    let bytes_out = value(&after, "tincan_bytes_out_total", &[]).expect("bytes out");
    // Each message is at least a 6-byte masked header and 2 bytes of text
    // in, and twice a 2-byte header and its line out.
    assert!(bytes_in >= 8.0 * n, "{bytes_in}");
    assert!(bytes_out >= 2.0 * 4.0 * n, "{bytes_out}");
    assert_eq!(
        value(
            &after,
            "tincan_handshakes_refused_total",
            &[("status", "403")]
        ),
        Some(1.0)
    );
    // Scrapes (before, during, the ones until now), a, b, the refused one:
    // at least 6.
    let accepted = value(&after, "tincan_connections_accepted_total", &[]).expect("accepted");
    assert!(accepted >= 6.0, "{accepted}");
    assert_eq!(value(&after, "tincan_largest_room_clients", &[]), Some(1.0));
    scrape_until(server.port, "b's session gone", |s| {
        value(s, "tincan_websockets_open", &[]) == Some(1.0)
    });
    assert_eq!(
        histogram_count(&before, "tincan_message_latency_seconds"),
        0.0
    );
    drop(a);
}

#[test]
fn a_flooder_closed_by_the_server_is_counted_by_reason_and_code() {
    let server = Server::start(&["--rate", "0.5", "--burst", "1"]);
    let (mut a, _) = ws_connect(&server, "/");
    expect_welcome(&mut a);
    // One taken, then ten refused in a row: closed with 1008.
    for i in 0..12 {
        if a.send(Message::text(format!("flood {i}"))).is_err() {
            break;
        }
    }
    let (code, _) = ws_expect_close(&mut a);
    assert_eq!(code, 1008);
    let after = scrape_until(server.port, "the flooder counted", |s| {
        value(s, "tincan_closes_total", &[("code", "1008")]).is_some()
    });
    assert_eq!(
        value(
            &after,
            "tincan_clients_closed_total",
            &[("reason", "flooding")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&after, "tincan_clients_closed_total", &[("reason", "slow")]),
        None
    );
    assert_eq!(
        value(&after, "tincan_closes_total", &[("code", "1008")]),
        Some(1.0)
    );
}

#[test]
fn metrics_bind_serves_metrics_on_its_own_port_only() {
    let ops = free_port();
    let bind = format!("127.0.0.1:{ops}");
    let server = Server::start(&["--metrics-bind", &bind]);
    server.wait_line(&format!("Serving /metrics, /healthz and /readyz on {bind}"));
    assert_eq!(http_get(server.port, "/metrics").status, 404);
    // The operations port's connections are not counted as clients: once
    // the public one above is gone, a scrape there sees none open (not
    // itself).
    scrape_until(ops, "no connection open", |s| {
        value(s, "tincan_connections_open", &[]) == Some(0.0)
    });
    for port in [server.port, ops] {
        let health = http_get(port, "/healthz");
        assert_eq!((health.status, &health.body[..]), (200, &b"ok\n"[..]));
        assert_eq!(http_get(port, "/readyz").status, 200);
    }
    // Nothing else answers there: not the page, not an upgrade.
    assert_eq!(http_get(ops, "/").status, 404);
    let mut raw = Raw::connect_port("127.0.0.1", ops);
    raw.send(upgrade_request("/", "").as_bytes());
    assert_eq!(raw.read_response().status, 404);
    // Nor is a health check logged at info level (plain requests are
    // debug lines, "HTTP GET /path from ..."). A join afterwards is: once
    // its line is read, any line before it would have been too.
    let (mut ws, local) = ws_connect(&server, "/");
    expect_welcome(&mut ws);
    server.wait_line(&format!("127.0.0.1:{local} joined #lobby"));
    assert_eq!(server.stdout.count("HTTP GET /"), 0);
}

#[test]
fn sigterm_drains_readyz_turns_503_and_new_clients_are_sent_away() {
    let mut server = Server::start(&["--drain-grace", "600"]);
    assert_eq!(http_get(server.port, "/readyz").status, 200);
    let (mut a, _) = ws_connect(&server, "/");
    let nick = expect_welcome(&mut a);

    server.signal("TERM");
    // The drain begins before its line is printed.
    server.wait_line("Draining: /readyz answers 503; closing 1 connection(s) with 1001 in 600 s");
    let ready = http_get(server.port, "/readyz");
    assert_eq!(ready.status, 503, "{ready:?}");
    assert_eq!(http_get(server.port, "/healthz").status, 200);
    let mut late = Raw::connect(&server);
    late.send(upgrade_request("/", "").as_bytes());
    let refused = late.read_response();
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.header("Retry-After"), Some("5"));
    // The client there chats on meanwhile.
    ws_send_text(&mut a, "still here");
    assert_eq!(ws_chat(&mut a), chat_line(&nick, "still here"));

    // A second signal ends the grace at once.
    server.signal("TERM");
    let (code, reason) = ws_expect_close(&mut a);
    assert_eq!(code, 1001, "going away ({reason:?})");
    ws_expect_closed(&mut a);
    drop(a);
    let status = server
        .wait_exit(WAIT)
        .unwrap_or_else(|| panic!("still running {WAIT:?} after SIGTERM"));
    assert_eq!(status.code(), Some(0), "exit status after the drain");
}

#[test]
fn the_drain_grace_ends_with_1001_and_exit_0() {
    let mut server = Server::start(&["--drain-grace", "1"]);
    let (mut a, _) = ws_connect(&server, "/");
    expect_welcome(&mut a);
    let signalled = Instant::now();
    server.signal("TERM");
    let (code, _) = ws_expect_close(&mut a);
    assert_eq!(code, 1001);
    let waited = signalled.elapsed();
    assert!(waited >= Duration::from_secs(1), "closed after {waited:?}");
    ws_expect_closed(&mut a);
    drop(a);
    let status = server.wait_exit(WAIT).expect("exits after the grace");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn json_logs_are_one_object_per_line_with_the_events_fields() {
    let server = Server::start(&["--log-format", "json"]);
    let (mut a, local) = ws_connect(&server, "/");
    let nick = expect_welcome(&mut a);
    ws_send_text(&mut a, "hello \"json\"");
    assert_eq!(ws_chat(&mut a), chat_line(&nick, "hello \"json\""));
    close(&mut a, CloseCode::Normal, "done");
    let mut refused = Raw::connect(&server);
    refused.send(upgrade_request("/bad!room", "").as_bytes());
    let status = refused.read_response().status;
    assert!(status >= 400, "{status}");
    server.wait_line(r#""event":"handshake_rejected""#);
    server.wait_line(r#""event":"closed""#);

    let lines: Vec<serde_json::Value> = server
        .stdout
        .text()
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect();
    for line in &lines {
        let time = line["time"].as_str().unwrap_or_else(|| panic!("{line}"));
        // RFC 3339 in UTC: 2026-12-02T19:46:31.123Z.
        let b = time.as_bytes();
        assert!(
            b.len() == 24 && b[4] == b'-' && b[10] == b'T' && b[19] == b'.' && time.ends_with('Z'),
            "{time}"
        );
        assert!(
            line["level"].is_string() && line["message"].is_string(),
            "{line}"
        );
    }
    let event = |name: &str| {
        lines
            .iter()
            .find(|l| l["event"] == name)
            .unwrap_or_else(|| panic!("no {name} event in {lines:#?}"))
    };
    let peer = format!("127.0.0.1:{local}");
    let joined = event("joined");
    assert_eq!(joined["peer"], peer.as_str());
    assert_eq!(joined["room"], "lobby");
    assert_eq!(joined["nick"], nick.as_str());
    assert_eq!(joined["level"], "info");
    assert_eq!(event("received_text")["text"], "hello \"json\"");
    let closed = event("closed");
    assert_eq!(closed["peer"], peer.as_str());
    assert_eq!(closed["code"], 1000);
    assert_eq!(closed["reason"], "done");
    let rejected = event("handshake_rejected");
    assert_eq!(rejected["level"], "warn");
    assert_eq!(rejected["status"], status);
}

/// The threads of process `pid` named `name` (`/proc/<pid>/task/*/comm`).
fn threads_named(pid: u32, name: &str) -> usize {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc/<pid>/task");
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

/// `--threads 2`: two threads run the connections, each binary's way (smol
/// runs its executor on the main thread and one `tincan-worker`; async-std
/// and tokio on two `tincan-worker`s, the main thread running the accept
/// loop), and the chat works across them.
#[test]
fn threads_starts_that_many_workers() {
    let server = Server::start(&["--threads", "2"]);
    let workers = if BIN.ends_with("tincan-smol") { 1 } else { 2 };
    let deadline = deadline();
    while threads_named(server.pid(), "tincan-worker") != workers {
        assert!(
            Instant::now() < deadline,
            "{} tincan-worker threads, not {workers}",
            threads_named(server.pid(), "tincan-worker")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (mut alice, _) = ws_connect(&server, "/");
    let nick = expect_welcome(&mut alice);
    let (mut bob, _) = ws_connect(&server, "/");
    expect_welcome(&mut bob);
    ws_send_text(&mut alice, "across threads");
    assert_eq!(ws_chat(&mut bob), chat_line(&nick, "across threads"));
}
