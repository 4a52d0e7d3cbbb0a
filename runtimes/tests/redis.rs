//! `--redis`: several nodes share rooms through a real Redis. Each test
//! starts its own `redis-server` on a free port, with nothing kept on disk,
//! and stops it by its PID. Run against every binary.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::metrics::*;
use common::*;

/// A `redis-server` of the test's own, killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        Redis::start_on(free_port())
    }

    /// Starts one on `port` and waits (bounded) until it answers PING.
    fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server (scripts/setup.sh installs it): {e}")
            });
        let mut redis = Redis { child, port };
        let until = Instant::now() + WAIT;
        while !redis.pings() {
            assert!(
                Instant::now() < until,
                "redis-server on {port} never answered PING"
            );
            if let Ok(Some(status)) = redis.child.try_wait() {
                panic!("redis-server on {port} exited: {status}");
            }
            // Not listening yet: the only thing to wait on is time.
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    fn pings(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL, by PID) and reaps it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A node on `redis`.
fn node(redis: &Redis, extra: &[&str]) -> Server {
    let url = redis.url();
    let mut args = vec!["--redis", url.as_str()];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    server.wait_line("Sharing rooms through Redis");
    server
}

/// Reads texts until one contains `needle`; returns it.
fn wait_text(ws: &mut Ws, needle: &str) -> String {
    let mut seen = Vec::new();
    loop {
        let text = match ws.read() {
            Ok(tungstenite::Message::Text(text)) => text.as_str().to_owned(),
            other => panic!("waiting for {needle:?} after {seen:?}: {other:?}"),
        };
        if text.contains(needle) {
            return text;
        }
        seen.push(text);
        assert!(seen.len() < 1000, "no {needle:?} in {seen:?}");
    }
}

/// Sends `/who` until its answer satisfies `done` (bounded); returns it.
/// The nodes of a test that uses it take many messages at once.
fn who_until(ws: &mut Ws, done: impl Fn(&str) -> bool) -> String {
    let until = Instant::now() + WAIT;
    loop {
        ws_send_text(ws, "/who");
        let who = wait_text(ws, "* In #");
        if done(&who) {
            return who;
        }
        assert!(Instant::now() < until, "never got there: {who}");
    }
}

/// Joins the lobby on `server`; returns the client and its nickname.
fn join(server: &Server) -> (Ws, String) {
    let (mut ws, _) = ws_connect(server, "/");
    let nick = expect_welcome(&mut ws);
    (ws, nick)
}

/// Options for a test that sends many messages at once.
const FAST: [&str; 4] = ["--rate", "1000", "--burst", "1000"];

/// Two nodes `a` and `b` on one Redis, alice on `a` and bob on `b`, once
/// alice has heard bob join.
struct Pair {
    redis: Redis,
    a: Server,
    b: Server,
    alice: Ws,
    alice_nick: String,
    bob: Ws,
    bob_nick: String,
}

fn pair(extra: &[&str]) -> Pair {
    let redis = Redis::start();
    let a = node(&redis, extra);
    let b = node(&redis, extra);
    let (mut alice, alice_nick) = join(&a);
    let (bob, bob_nick) = join(&b);
    wait_text(&mut alice, &format!("* {bob_nick} joined #lobby"));
    Pair {
        redis,
        a,
        b,
        alice,
        alice_nick,
        bob,
        bob_nick,
    }
}

#[test]
fn two_nodes_share_a_room_in_order_with_history_and_presence() {
    let mut p = pair(&FAST);
    let (alice_nick, bob_nick) = (p.alice_nick.clone(), p.bob_nick.clone());
    assert_ne!(alice_nick, bob_nick, "guest numbers are shared");
    // /who lists both, on both nodes (bob's node may hear of alice after
    // bob joined: ask until it has).
    for ws in [&mut p.alice, &mut p.bob] {
        let who = who_until(ws, |who| who.starts_with("* In #lobby (2)"));
        assert!(
            who.contains(&alice_nick) && who.contains(&bob_nick),
            "{who}"
        );
    }
    // Both send at once; each receiver gets each sender's messages in order.
    for i in 0..5 {
        ws_send_text(&mut p.alice, &format!("a{i}"));
        ws_send_text(&mut p.bob, &format!("b{i}"));
    }
    for ws in [&mut p.alice, &mut p.bob] {
        let got: Vec<String> = (0..10).map(|_| ws_chat(ws)).collect();
        let from = |nick: &str| -> Vec<String> {
            got.iter()
                .filter_map(|t| t.strip_prefix(&format!("{nick}: ")).map(str::to_owned))
                .collect()
        };
        assert_eq!(from(&alice_nick), ["a0", "a1", "a2", "a3", "a4"], "{got:?}");
        assert_eq!(from(&bob_nick), ["b0", "b1", "b2", "b3", "b4"], "{got:?}");
    }
    // A joiner on a third node gets the same history.
    let c = node(&p.redis, &FAST);
    let (mut carol, _) = ws_connect(&c, "/");
    expect_welcome(&mut carol);
    let history: Vec<String> = (0..10).map(|_| ws_text(&mut carol)).collect();
    assert_eq!(
        history
            .iter()
            .filter(|t| t.starts_with(&format!("{alice_nick}: ")))
            .count(),
        5
    );
    assert_eq!(
        history.iter().filter(|t| t.starts_with(&bob_nick)).count(),
        5
    );
    // A leave on one node is announced on the others.
    p.bob.close(None).expect("close");
    // Until the close handshake is done (each read bounded by WAIT).
    while p.bob.read().is_ok() {}
    wait_text(&mut p.alice, &format!("* {bob_nick} left #lobby"));
    wait_text(&mut carol, &format!("* {bob_nick} left #lobby"));
}

/// The members on one node see its room in one order, lines from its own
/// senders and from another node's mixed: the node's (its history's).
#[test]
fn members_on_one_node_see_local_and_remote_lines_in_one_order() {
    const MESSAGES: usize = 100;
    let fast = [
        FAST.as_slice(),
        &["--threads", "2", "--max-connections-per-ip", "0"],
    ]
    .concat();
    let redis = Redis::start();
    let a = node(&redis, &fast);
    let b = node(&redis, &fast);
    let member = |node: &Server, sends, reads| Member {
        ws: join(node).0,
        sends,
        reads,
    };
    let mut members: Vec<Member> = (0..12).map(|_| member(&a, false, true)).collect();
    // Senders on a read too; b's may see b's order, which can differ.
    members.extend((0..2).map(|_| member(&a, true, true)));
    members.extend((0..2).map(|_| member(&b, true, false)));
    // Node a knows b's senders once they are in /who there.
    let (mut watcher, _) = join(&a);
    who_until(&mut watcher, |who| who.starts_with("* In #lobby (17)"));
    let orders = all_at_once(members, MESSAGES);
    assert_eq!(orders.len(), 14);
    assert_one_order(&orders);
    // Both nodes' lines are there.
    for s in 0..4 {
        let mine = format!(": s{s}-");
        let count = orders[0].iter().filter(|t| t.contains(&mine)).count();
        assert_eq!(count, MESSAGES, "sender {s}");
    }
}

#[test]
fn a_nickname_taken_on_another_node_is_refused() {
    let mut p = pair(&[]);
    ws_send_text(&mut p.alice, "/nick alice");
    wait_text(&mut p.bob, "is now known as alice");
    ws_send_text(&mut p.bob, "/nick ALICE");
    assert_eq!(
        wait_text(&mut p.bob, "! "),
        "! nickname 'ALICE' is taken in #lobby"
    );
}

#[test]
fn concurrent_claims_of_one_nickname_end_with_one_holder_everywhere() {
    let mut p = pair(&FAST);
    ws_send_text(&mut p.alice, "/nick zed");
    ws_send_text(&mut p.bob, "/nick zed");
    // Whichever came first in the shared order, both nodes settle on one
    // zed: ask until both agree (each answer is a fresh read of the state).
    let until = Instant::now() + WAIT;
    loop {
        ws_send_text(&mut p.alice, "/who");
        let on_a = wait_text(&mut p.alice, "* In #lobby");
        ws_send_text(&mut p.bob, "/who");
        let on_b = wait_text(&mut p.bob, "* In #lobby");
        let zeds = |who: &str| who.matches("zed").count();
        let sorted = |who: &str| {
            let mut names: Vec<String> = who
                .split_once(": ")
                .map(|(_, names)| names.split(", ").map(str::to_owned).collect())
                .unwrap_or_default();
            names.sort();
            names
        };
        if zeds(&on_a) == 1 && sorted(&on_a) == sorted(&on_b) {
            break;
        }
        assert!(zeds(&on_a) <= 1 && zeds(&on_b) <= 1, "{on_a} / {on_b}");
        assert!(Instant::now() < until, "never agreed: {on_a} / {on_b}");
    }
}

#[test]
fn a_killed_node_s_members_leave_within_ten_seconds() {
    let mut p = pair(&[]);
    let killed = Instant::now();
    p.b.signal("KILL");
    wait_text(&mut p.alice, &format!("* {} left #lobby", p.bob_nick));
    let took = killed.elapsed();
    assert!(took <= Duration::from_secs(10), "took {took:?}");
}

#[test]
fn redis_restarted_mid_chat_local_members_chat_on_and_queued_events_arrive() {
    let Pair {
        mut redis,
        a,
        b,
        mut alice,
        alice_nick,
        mut bob,
        ..
    } = pair(&[]);
    let (mut anna, _) = join(&a);
    ws_send_text(&mut alice, "before");
    assert_eq!(
        wait_text(&mut bob, "before"),
        chat_line(&alice_nick, "before")
    );

    assert_eq!(
        value(&scrape(a.port), "tincan_redis_connected", &[]),
        Some(1.0)
    );
    redis.kill();
    a.wait_line("Lost Redis at");
    assert_eq!(http_get(a.port, "/readyz").status, 503);
    assert_eq!(
        value(&scrape(a.port), "tincan_redis_connected", &[]),
        Some(0.0)
    );
    ws_send_text(&mut alice, "during");
    assert_eq!(
        wait_text(&mut anna, "during"),
        chat_line(&alice_nick, "during")
    );

    let port = redis.port;
    let _redis = Redis::start_on(port);
    a.wait_line("is back");
    b.wait_line("is back");
    let back = scrape(a.port);
    assert_eq!(value(&back, "tincan_redis_connected", &[]), Some(1.0));
    assert_eq!(
        value(&back, "tincan_redis_reconnects_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        wait_text(&mut bob, "during"),
        chat_line(&alice_nick, "during")
    );
    ws_send_text(&mut alice, "after");
    assert_eq!(
        wait_text(&mut bob, "after"),
        chat_line(&alice_nick, "after")
    );
    ws_send_text(&mut bob, "back");
    wait_text(&mut alice, "back");
    assert_eq!(a.stdout.count("Lost Redis at"), 1, "logged once");
}

#[test]
fn unreachable_redis_at_start_exits_1_naming_the_url() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let port = free_port().to_string();
    let run = run(&["--redis", &url, &port]);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("cannot reach Redis at {url}")),
        "{}",
        run.stderr
    );
}
