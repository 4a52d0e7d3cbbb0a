//! End-to-end tests of the chat (rooms, nicknames, history, limits,
//! keepalive) against a real server binary; like `server.rs`, this file is a
//! test of both `tincan-smol` and `tincan-async-std`.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

/// The welcome of a plain client in `room`; returns the nickname.
fn welcome_in(ws: &mut Ws, room: &str) -> String {
    let text = ws_text(ws);
    let nick = text
        .strip_prefix(&format!("* Welcome to #{room}, "))
        .and_then(|rest| rest.strip_suffix(". Type /help for commands."));
    nick.unwrap_or_else(|| panic!("expected the welcome to #{room}, got {text:?}"))
        .to_owned()
}

/// Joins the room at `/{path}` (`""` is the lobby); returns the nickname.
fn join(server: &Server, path: &str) -> (Ws, String) {
    let (mut ws, _) = ws_connect(server, &format!("/{path}"));
    let room = if path.is_empty() { "lobby" } else { path };
    let nick = welcome_in(&mut ws, room);
    (ws, nick)
}

#[test]
fn messages_reach_their_room_and_no_other() {
    let server = Server::start(&[]);
    let (mut a, nick_a) = join(&server, "rust");
    let (mut b, nick_b) = join(&server, "rust");
    let (mut c, nick_c) = join(&server, "");
    assert_eq!(ws_text(&mut a), format!("* {nick_b} joined #rust"));

    ws_send_text(&mut a, "only for rust");
    assert_eq!(ws_text(&mut a), chat_line(&nick_a, "only for rust"));
    assert_eq!(ws_text(&mut b), chat_line(&nick_a, "only for rust"));
    server.wait_line("Broadcasting to 2 clients");
    // The lobby heard nothing: the next thing c receives is its own message.
    ws_send_text(&mut c, "lobby here");
    assert_eq!(ws_text(&mut c), chat_line(&nick_c, "lobby here"));
    server.wait_line("Broadcasting to 1 client");
}

#[test]
fn nicknames_clash_within_a_room() {
    let server = Server::start(&[]);
    let (mut a, nick_a) = join(&server, "");
    let (mut b, nick_b) = join(&server, "");
    assert_eq!(ws_text(&mut a), format!("* {nick_b} joined #lobby"));

    ws_send_text(&mut a, "/nick alice");
    assert_eq!(ws_text(&mut a), format!("* {nick_a} is now known as alice"));
    assert_eq!(ws_text(&mut b), format!("* {nick_a} is now known as alice"));
    ws_send_text(&mut b, "/nick Alice");
    assert_eq!(ws_text(&mut b), "! nickname 'Alice' is taken in #lobby");
    ws_send_text(&mut b, "/nick <b>");
    assert_eq!(
        ws_text(&mut b),
        "! a nickname is 1-24 letters, digits, '-', '_' or '.'"
    );
    ws_send_text(&mut b, "/who");
    assert_eq!(ws_text(&mut b), format!("* In #lobby (2): alice, {nick_b}"));
    // The same name is free in another room.
    let (mut c, nick_c) = join(&server, "other");
    ws_send_text(&mut c, "/nick alice");
    assert_eq!(ws_text(&mut c), format!("* {nick_c} is now known as alice"));
}

#[test]
fn late_joiners_get_the_last_messages() {
    let server = Server::start(&["--history", "2"]);
    let (mut a, nick_a) = join(&server, "");
    for text in ["one", "two", "three"] {
        ws_send_text(&mut a, text);
        assert_eq!(ws_text(&mut a), chat_line(&nick_a, text));
    }
    let (mut b, _) = join(&server, "");
    assert_eq!(ws_text(&mut b), chat_line(&nick_a, "two"));
    assert_eq!(ws_text(&mut b), chat_line(&nick_a, "three"));
    // Then live traffic.
    ws_send_text(&mut a, "four");
    assert_eq!(ws_chat(&mut b), chat_line(&nick_a, "four"));
}

#[test]
fn the_rate_limit_warns_then_closes_a_flooder_with_1008() {
    let server = Server::start(&["--rate", "0.5", "--burst", "2"]);
    let (mut a, nick_a) = join(&server, "");
    ws_send_text(&mut a, "1");
    ws_send_text(&mut a, "2");
    ws_send_text(&mut a, "3");
    assert_eq!(ws_text(&mut a), chat_line(&nick_a, "1"));
    assert_eq!(ws_text(&mut a), chat_line(&nick_a, "2"));
    assert_eq!(
        ws_text(&mut a),
        "! slow down: at most 2 messages at once and 0.5 per second"
    );
    // Ten refused messages in a row: closed.
    for i in 0..12 {
        if a.send(Message::text(format!("flood {i}"))).is_err() {
            break;
        }
    }
    let (code, reason) = ws_expect_close(&mut a);
    assert_eq!(code, 1008, "{reason}");
    server.wait_line("is flooding, closing with 1008");
}

#[test]
fn a_client_that_stops_answering_pings_is_dropped_and_its_leave_announced() {
    let server = Server::start(&["--ping-interval", "1", "--ping-timeout", "1"]);
    // A raw client answers nothing, pings included.
    let mut dead = Raw::connect(&server);
    dead.upgrade("/");
    let welcome = dead.read_text();
    let dead_nick = parse_welcome(&welcome);
    let (mut alive, _) = join(&server, "");
    // tungstenite answers the server's pings while this client reads.
    let left = format!("* {dead_nick} left #lobby");
    loop {
        match ws_read(&mut alive) {
            Message::Text(text) if text.as_str() == left => break,
            // Pings (answered by tungstenite) and other chat traffic.
            _ => continue,
        }
    }
    server.wait_line(&format!("Sending PING to 127.0.0.1:{}", dead.local_port()));
    server.wait_line("Received PONG");
    server.wait_line(&format!(
        "Connection with 127.0.0.1:{} closed: 1006",
        dead.local_port()
    ));
}

#[test]
fn a_full_server_refuses_the_handshake_with_503() {
    let server = Server::start(&["--max-clients", "1"]);
    let (_a, _) = join(&server, "");
    let mut b = Raw::connect(&server);
    b.send(upgrade_request("/", "").as_bytes());
    let response = b.read_response();
    assert_eq!(response.status, 503, "{response:?}");
    assert!(response.body.starts_with(b"server full"), "{response:?}");
    server.wait_line("Rejected handshake from");
}

#[test]
fn a_full_room_refuses_with_503_and_a_bad_room_with_404() {
    let server = Server::start(&["--max-room-clients", "1"]);
    let (_a, _) = join(&server, "busy");
    for (path, status) in [("/busy", 503), ("/not/a/room", 404)] {
        let mut raw = Raw::connect(&server);
        raw.send(upgrade_request(path, "").as_bytes());
        assert_eq!(raw.read_response().status, status, "{path}");
    }
    // Another room still has space.
    let (_b, _) = join(&server, "quiet");
}

#[test]
fn the_tincan_v1_subprotocol_gets_json_envelopes() {
    let server = Server::start(&[]);
    let (mut plain, plain_nick) = join(&server, "json");
    let mut request = server.url("/json").into_client_request().expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "tincan.v1".parse().expect("header value"),
    );
    let stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let (mut json, response) = tungstenite::client(request, Stream(stream)).expect("handshake");
    assert_eq!(
        response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok()),
        Some("tincan.v1")
    );
    let welcome = ws_text(&mut json);
    assert!(
        welcome.starts_with(r#"{"type":"welcome","room":"json","from":null,"#),
        "{welcome}"
    );
    let json_nick = welcome
        .split(r#""nick":""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("nick field")
        .to_owned();
    assert_eq!(ws_text(&mut plain), format!("* {json_nick} joined #json"));

    ws_send_text(&mut plain, r#"say "hi" <b>"#);
    let message = ws_text(&mut json);
    let expected = format!(
        r#"{{"type":"message","room":"json","from":"{plain_nick}","text":"say \"hi\" <b>","ts":"#
    );
    assert!(message.starts_with(&expected), "{message}");
    ws_send_text(&mut json, "/nope");
    let error = ws_text(&mut json);
    assert!(
        error.starts_with(r#"{"type":"error","room":"json","from":null,"text":"unknown command '/nope': try /help","#),
        "{error}"
    );
}

#[test]
fn an_idle_client_is_closed_with_1001() {
    let server = Server::start(&["--idle-timeout", "1"]);
    let (mut a, _) = join(&server, "");
    let (code, reason) = ws_expect_close(&mut a);
    assert_eq!((code, reason.as_str()), (1001, "idle timeout"));
    server.wait_line("is idle, closing with 1001");
}

/// A `tincan.v1` client of the room at `/{room}`.
fn join_json(server: &Server, room: &str) -> Ws {
    let mut request = server
        .url(&format!("/{room}"))
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "tincan.v1".parse().expect("header value"),
    );
    let stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let (ws, _) = tungstenite::client(request, Stream(stream)).expect("handshake");
    ws
}

/// `text` with each `"ts":<digits>` written `"ts":T`, after checking that the
/// time is now (Unix milliseconds, within a minute).
fn without_ts(text: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(r#""ts":"#) {
        let (before, after) = rest.split_at(at + 5);
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let ts: u64 = after[..digits].parse().expect("ts is a number");
        assert!(
            ts.abs_diff(now) < 60_000,
            "ts {ts} is not now ({now}): {text}"
        );
        out.push_str(before);
        out.push('T');
        rest = &after[digits..];
    }
    out + rest
}

/// The nickname in a JSON welcome.
fn json_nick(welcome: &str) -> String {
    welcome
        .split(r#""nick":""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no nick in {welcome}"))
        .to_owned()
}

#[test]
fn every_json_envelope_to_the_letter() {
    let server = Server::start(&[]);
    let mut a = join_json(&server, "env");
    let welcome = ws_text(&mut a);
    let na = json_nick(&welcome);
    assert_eq!(
        without_ts(&welcome),
        format!(
            r#"{{"type":"welcome","room":"env","from":null,"text":"Welcome to #env, {na}","ts":T,"nick":"{na}"}}"#
        )
    );
    let mut b = join_json(&server, "env");
    let nb = json_nick(&ws_text(&mut b));
    assert_eq!(
        without_ts(&ws_text(&mut a)),
        format!(r#"{{"type":"join","room":"env","from":"{nb}","text":"{nb} joined","ts":T}}"#)
    );

    ws_send_text(&mut b, "/nick bobby");
    let nick = format!(
        r#"{{"type":"nick","room":"env","from":"{nb}","text":"{nb} is now known as bobby","ts":T,"nick":"bobby"}}"#
    );
    assert_eq!(without_ts(&ws_text(&mut a)), nick);
    assert_eq!(without_ts(&ws_text(&mut b)), nick);

    ws_send_text(&mut a, "/me waves \"hi\"");
    let action =
        format!(r#"{{"type":"action","room":"env","from":"{na}","text":"waves \"hi\"","ts":T}}"#);
    assert_eq!(without_ts(&ws_text(&mut a)), action);
    assert_eq!(without_ts(&ws_text(&mut b)), action);

    ws_send_text(&mut a, "/help");
    assert_eq!(
        without_ts(&ws_text(&mut a)),
        r#"{"type":"info","room":"env","from":null,"text":"Commands: /nick NAME (change your nickname), /who (who is here), /me ACTION (describe an action), /help (this text). Start a message with // to send a literal /.","ts":T}"#
    );
    ws_send_text(&mut a, "/who");
    assert_eq!(
        without_ts(&ws_text(&mut a)),
        format!(
            r#"{{"type":"who","room":"env","from":null,"text":"{na}, bobby","ts":T,"users":["{na}","bobby"]}}"#
        )
    );

    b.close(None).expect("close");
    assert_eq!(
        without_ts(&ws_text(&mut a)),
        r#"{"type":"leave","room":"env","from":"bobby","text":"bobby left","ts":T}"#
    );

    // A late joiner: its welcome, then the history in one envelope.
    let mut c = join_json(&server, "env");
    let nc = json_nick(&ws_text(&mut c));
    assert_eq!(
        without_ts(&ws_text(&mut c)),
        format!(
            r#"{{"type":"history","room":"env","from":null,"text":"","ts":T,"messages":[{action}]}}"#
        )
    );
    assert_eq!(
        without_ts(&ws_text(&mut a)),
        format!(r#"{{"type":"join","room":"env","from":"{nc}","text":"{nc} joined","ts":T}}"#)
    );
}

/// Everyone in a room sees its messages in one order, the chat's (the order
/// of its history), however many threads fan them out: senders on both
/// threads at once, and every receiver's sequence compared.
#[test]
fn every_member_sees_the_room_in_one_order() {
    const SENDERS: usize = 4;
    const MESSAGES: usize = 200;
    const RECEIVERS: usize = 40;
    let server = Server::start(&[
        "--threads",
        "2",
        "--quiet",
        "--rate",
        "1000000",
        "--burst",
        "1000000",
        "--max-connections-per-ip",
        "0",
    ]);
    let member = |sends| Member {
        ws: join(&server, "order").0,
        sends,
        // Senders read their own copies too: the sender's own line is the
        // one most easily put out of order.
        reads: true,
    };
    let mut members: Vec<Member> = (0..RECEIVERS).map(|_| member(false)).collect();
    members.extend((0..SENDERS).map(|_| member(true)));
    let orders = all_at_once(members, MESSAGES);
    assert_eq!(orders.len(), RECEIVERS + SENDERS);
    assert_eq!(orders[0].len(), SENDERS * MESSAGES);
    assert_one_order(&orders);
}

#[test]
fn in_a_busy_room_a_write_delay_holds_chat_messages_and_sends_what_follows_in_the_same_write() {
    let delay = Duration::from_millis(500);
    let server = Server::start(&["--write-delay", "500"]);
    let (mut a, nick_a) = join(&server, "");
    let mut b = Raw::connect(&server);
    b.upgrade("/");
    let nick_b = parse_welcome(&b.read_text());
    assert_eq!(ws_text(&mut a), format!("* {nick_b} joined #lobby"));

    // b speaks, so that a task drives it (a new connection parks, and the
    // parking thread writes what little comes at once) for a second at
    // least. It was sent no chat message before: "one" is not held.
    // (Whether it took less than the delay is the unit test's to say: a
    // loaded machine may take as long.)
    b.send(&masked(true, 1, b"hi"));
    assert_eq!(b.read_text(), chat_line(&nick_b, "hi"));
    assert_eq!(ws_text(&mut a), chat_line(&nick_b, "hi"));
    ws_send_text(&mut a, "one");
    assert_eq!(b.read_text(), chat_line(&nick_a, "one"));
    // Now b's room is busy: "two" waits the delay, and "three", which
    // reached b's outbox meanwhile, leaves in the same write.
    let sent = Instant::now();
    ws_send_text(&mut a, "two");
    ws_send_text(&mut a, "three");
    assert_eq!(b.read_text(), chat_line(&nick_a, "two"));
    let held = sent.elapsed();
    assert!(held >= delay, "written after {held:?}, before the delay");
    let three = chat_line(&nick_a, "three");
    assert_eq!(b.buffered(), 2 + three.len(), "both frames in one read");
    assert_eq!(b.read_text(), three);
}

#[test]
fn joins_within_the_presence_delay_are_announced_together_before_what_is_said() {
    // Long enough that the timer announces nothing during the test.
    let server = Server::start(&["--presence-delay", "600000"]);
    let (mut a, nick_a) = join(&server, "");
    let (mut b, nick_b) = join(&server, "");
    let (mut c, nick_c) = join(&server, "");
    // What waits goes out first, in one line, each member hearing of
    // those that came after it.
    ws_send_text(&mut a, "hi");
    let hi = chat_line(&nick_a, "hi");
    assert_eq!(
        ws_text(&mut a),
        format!("* {nick_b} and {nick_c} joined #lobby")
    );
    assert_eq!(ws_text(&mut a), hi);
    assert_eq!(ws_text(&mut b), format!("* {nick_c} joined #lobby"));
    assert_eq!(ws_text(&mut b), hi);
    assert_eq!(ws_text(&mut c), hi);
}

#[test]
fn the_server_announces_joins_and_leaves_once_the_presence_delay_is_over() {
    let delay = Duration::from_millis(300);
    let server = Server::start(&["--presence-delay", "300"]);
    let (mut a, _) = join(&server, "");
    // Parked, as a quiet client is: the notices reach it there.
    wait_parked(&server, 1.0);
    let before = Instant::now();
    let (b, nick_b) = join(&server, "");
    assert_eq!(ws_text(&mut a), format!("* {nick_b} joined #lobby"));
    assert!(
        before.elapsed() >= delay,
        "announced after {:?}",
        before.elapsed()
    );
    let before = Instant::now();
    drop(b);
    assert_eq!(ws_text(&mut a), format!("* {nick_b} left #lobby"));
    assert!(
        before.elapsed() >= delay,
        "announced after {:?}",
        before.elapsed()
    );
}

#[test]
fn once_a_burst_of_connections_has_gone_idle_the_server_gives_free_memory_back() {
    // The parking thread's `GIVE_BACK_AFTER` (`serve/park.rs`).
    const BURST: usize = 256;
    let _ = rlimit::increase_nofile_limit(2 * BURST as u64 + 1024);
    // No pings and no presence notices: nothing but a park wakes the
    // parking thread, which must learn of the give-back from the park that
    // makes the burst.
    let server = Server::start(&[
        "--max-connections-per-ip",
        "0",
        "--ping-interval",
        "0",
        "--presence-limit",
        "0",
    ]);
    let given_back = |scrape: &prometheus_parse::Scrape| {
        common::metrics::value(scrape, "tincan_memory_given_back_total", &[])
    };
    let connect = |clients: &mut Vec<Raw>, n: usize| {
        for _ in 0..n {
            let mut raw = Raw::connect(&server);
            raw.send(upgrade_request("/", "").as_bytes());
            assert!(raw.read_head().starts_with("HTTP/1.1 101"));
            clients.push(raw);
        }
    };
    // However long parking then stays quiet (the thread gives back a
    // second after a burst), nothing is given back.
    let nothing_given_back = |parked: usize| {
        wait_parked(&server, parked as f64);
        let quiet = Instant::now();
        while quiet.elapsed() < Duration::from_millis(1500) {
            let scrape = common::metrics::scrape(server.port);
            assert_eq!(given_back(&scrape), Some(0.0), "{parked} parked");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let mut clients = Vec::new();
    // One short of a burst.
    connect(&mut clients, BURST - 1);
    nothing_given_back(BURST - 1);
    // One more, after that burst settled: parks spread out over time do
    // not add up to a burst.
    connect(&mut clients, 1);
    nothing_given_back(BURST);
    // A whole burst ends in one give-back.
    connect(&mut clients, BURST);
    let scrape = common::metrics::scrape_until(server.port, "memory given back", |scrape| {
        given_back(scrape) == Some(1.0)
    });
    // Every client is still connected, parked.
    assert_eq!(
        common::metrics::value(&scrape, "tincan_connections_parked", &[]),
        Some((2 * BURST) as f64)
    );
}

/// Waits until `/metrics` counts `n` parked connections.
fn wait_parked(server: &Server, n: f64) {
    common::metrics::scrape_until(server.port, &format!("{n} parked"), |scrape| {
        common::metrics::value(scrape, "tincan_connections_parked", &[]) == Some(n)
    });
}

/// The next text message, past pings (which tungstenite answers).
fn next_text(ws: &mut Ws) -> String {
    loop {
        match ws_read(ws) {
            Message::Text(text) => return text.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// The next chat message, past pings and notices.
fn next_chat(ws: &mut Ws) -> String {
    loop {
        let text = next_text(ws);
        if !is_notice(&text) {
            return text;
        }
    }
}

#[test]
fn quiet_clients_park_and_wake_for_what_comes() {
    // Pings every 3 s: a connection is quiet a second after its pong, so
    // it parks between pings, and the ping is a deadline that wakes it.
    let server = Server::start(&["--ping-interval", "3", "--ping-timeout", "20"]);
    let (mut a, a_nick) = join(&server, "");
    let (mut b, b_nick) = join(&server, "");
    assert_eq!(next_text(&mut a), format!("* {b_nick} joined #lobby"));
    // Both park once their handshake and welcome are written (the join
    // notice went to `a` while it was parked).
    wait_parked(&server, 2.0);
    // A message from a parked client wakes it; the other receives it
    // parked.
    ws_send_text(&mut a, "hello");
    assert_eq!(next_chat(&mut b), chat_line(&a_nick, "hello"));
    // `b` did not wake for it (woken, it would hold a task for a quiet
    // second; `a` woke to read): at least one is parked now.
    let scrape = common::metrics::scrape(server.port);
    let parked = common::metrics::value(&scrape, "tincan_connections_parked", &[]);
    assert!(parked >= Some(1.0), "{parked:?} parked");
    assert_eq!(next_chat(&mut a), chat_line(&a_nick, "hello"));
    wait_parked(&server, 2.0);
    // The next ping comes while `b` is parked: its deadline wakes it, and
    // it parks again after the pong (tungstenite answers while `b` reads).
    let pinged = server.mark();
    let b_port = b.get_ref().0.local_addr().expect("address").port();
    let reader = std::thread::spawn(move || {
        let text = next_chat(&mut b);
        (b, text)
    });
    server.wait_line_after(pinged, &format!("Sending PING to 127.0.0.1:{b_port}"));
    server.wait_line_after(pinged, "Received PONG");
    wait_parked(&server, 2.0);
    ws_send_text(&mut a, "still there?");
    let (b, text) = reader.join().expect("b's reader");
    assert_eq!(text, chat_line(&a_nick, "still there?"));
    assert_eq!(next_chat(&mut a), chat_line(&a_nick, "still there?"));
    wait_parked(&server, 2.0);
    // A parked client that goes away is noticed (its socket reads its
    // end), and its leave reaches the other, parked too.
    drop(b);
    assert_eq!(next_text(&mut a), format!("* {b_nick} left #lobby"));
    wait_parked(&server, 1.0);
    // Shutdown reaches a parked client: 1001.
    server.signal("TERM");
    loop {
        match ws_read(&mut a) {
            Message::Close(Some(frame)) => {
                let reason = frame.reason.as_str().to_owned();
                assert_eq!(
                    (u16::from(frame.code), reason.as_str()),
                    (1001, "server shutting down")
                );
                break;
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected the close frame, got {other:?}"),
        }
    }
}
