//! The real `tincan-load` binary against every real server binary (and a raw
//! TCP echo server made here): every mode's JSON line, and bad command lines.
//! Every wait is for a condition, bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

const LOAD: &str = env!("CARGO_BIN_EXE_tincan-load");
const WAIT: Duration = Duration::from_secs(60);
const BUILD_WAIT: Duration = Duration::from_secs(900);

/// Every server binary.
const SERVERS: [&str; 3] = ["tincan-smol", "tincan-async-std", "tincan-tokio"];

/// The server binary `name`, beside this one, built first (once, bounded,
/// all of them) if a lone `cargo test -p tincan-load` has not built them:
/// `cargo test --workspace` builds them too, but in no guaranteed order.
fn server_binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let path = PathBuf::from(LOAD).with_file_name(name);
    BUILT.get_or_init(|| {
        if SERVERS
            .iter()
            .all(|name| PathBuf::from(LOAD).with_file_name(name).exists())
        {
            return;
        }
        let release = PathBuf::from(LOAD)
            .parent()
            .is_some_and(|dir| dir.ends_with("release"));
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "-q"]);
        for name in SERVERS {
            build.args(["-p", name]);
        }
        if release {
            build.arg("--release");
        }
        let mut child = build.spawn().expect("cargo runs");
        let status = wait_bounded(&mut child, BUILD_WAIT, "cargo build of the servers");
        assert!(status.success(), "building the servers failed");
    });
    path
}

/// Waits for `child` to exit, killing it (and failing) after `limit`.
fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The first line `child` prints, within `WAIT`.
fn first_line(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(WAIT) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no line within {WAIT:?}");
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running server, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// `name` serving wss with a certificate (and key) for 127.0.0.1 made
    /// here; also returns the certificate's PEM file, for `--ca`.
    fn start_tls(name: &str, args: &[&str]) -> (Self, PathBuf) {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("load-tls-{name}"));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
            .expect("make a certificate");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).expect("write the certificate");
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("write the key");
        let (cert_arg, key_arg) = (cert.to_str().expect("utf-8"), key.to_str().expect("utf-8"));
        let mut args = args.to_vec();
        args.extend(["--tls-cert", cert_arg, "--tls-key", key_arg]);
        (Self::start(name, &args), cert)
    }

    /// Starts `name` on a port that was free a moment ago and waits for
    /// its "listening" line (so the servers run at the info log level; the
    /// rest of their output is read and dropped). Another process can take
    /// the port in between: then the server says so and exits, and this
    /// tries another port, as a port that merely answers may be theirs.
    fn start(name: &str, args: &[&str]) -> Self {
        let mut failures = Vec::new();
        for _ in 0..10 {
            let port = free_port();
            let mut child = Command::new(server_binary(name))
                .arg(port.to_string())
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("server starts");
            let stdout = child.stdout.take().expect("piped stdout");
            let mut stderr = child.stderr.take().expect("piped stderr");
            let errors = thread::spawn(move || {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text);
                text
            });
            let (tx, rx) = mpsc::channel();
            let listening = format!("listening on port {port}");
            thread::spawn(move || {
                let mut said = false;
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if !said && line.contains(&listening) {
                        said = true;
                        let _ = tx.send(());
                    }
                }
            });
            if rx.recv_timeout(WAIT).is_ok() {
                return Server { child, port };
            }
            // No line: it exited (the pipe ended) or it hangs.
            let _ = child.kill();
            let _ = child.wait();
            let err = errors.join().unwrap_or_default();
            if !err.contains("in use") {
                panic!("{name} {args:?} on port {port} did not start listening: {err}");
            }
            failures.push(err);
        }
        panic!("no free port after 10 tries:\n{}", failures.join("\n"));
    }

    fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the tool to the end (bounded) and returns its output.
fn load(args: &[&str]) -> Output {
    let mut child = Command::new(LOAD)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tincan-load starts");
    // Its output is small: the pipes cannot fill up while we wait.
    wait_bounded(&mut child, WAIT, &format!("tincan-load {args:?}"));
    child.wait_with_output().expect("output")
}

/// The number `key` of a flat JSON line.
fn field(line: &str, key: &str) -> f64 {
    let at = line
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {line}"));
    let rest = &line[at + key.len() + 3..];
    let end = rest.find([',', '}']).expect("a value");
    rest[..end]
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {line}"))
}

fn json_line(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout.clone()).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line: {stdout}");
    assert!(lines[0].starts_with('{') && lines[0].ends_with('}'));
    lines[0].to_owned()
}

#[test]
fn echo_counts_and_times_round_trips() {
    for name in SERVERS {
        echo_on(name);
    }
}

fn echo_on(name: &str) {
    let server = Server::start(name, &["--echo"]);
    let url = server.url("/");
    for extra in [
        &["-t", "1"][..],
        &["-t", "0.5", "--text", "-d", "4"],
        &["-t", "0.5", "--threads", "2", "-s", "20000"],
        // Compressed both ways (RFC 7692): the echoes inflate to their size.
        &["-t", "0.5", "--text", "-s", "5000", "--deflate"],
        // Raw frames after the handshake: pipelined, and large.
        &["-t", "0.5", "--raw-frames", "-d", "16"],
        &["-t", "0.5", "--raw-frames", "--text", "-s", "70000"],
    ] {
        let mut args = vec!["echo", &url, "-c", "4", "-s", "100", "--warmup", "0.2"];
        args.extend(extra);
        let line = json_line(&load(&args));
        assert!(line.contains("\"mode\":\"echo\""), "{name}: {line}");
        assert_eq!(field(&line, "connected"), 4.0, "{name}: {line}");
        assert_eq!(field(&line, "errors"), 0.0, "{name}: {line}");
        let messages = field(&line, "messages");
        assert!(messages > 0.0, "{name}: {line}");
        let size = field(&line, "size");
        let mb = messages * size / field(&line, "seconds") / 1e6;
        assert!(
            (field(&line, "mb_per_sec") - mb).abs() < 0.01 + mb / 100.0,
            "{name}: {line}"
        );
        let (p50, p99, max) = (
            field(&line, "p50_us"),
            field(&line, "p99_us"),
            field(&line, "max_us"),
        );
        assert!(p50 <= p99 && p99 <= max && max > 0.0, "{name}: {line}");
    }
}

#[test]
fn echo_over_tls() {
    for name in SERVERS {
        let (server, cert) = Server::start_tls(name, &["--echo"]);
        let url = format!("wss://127.0.0.1:{}/", server.port);
        let ca = cert.to_str().expect("utf-8");
        for (size, raw) in [
            ("20", None),
            ("20000", None),
            ("20000", Some("--raw-frames")),
        ] {
            let mut args = vec![
                "echo", &url, "--ca", ca, "-c", "4", "-s", size, "-t", "0.5", "--warmup", "0.2",
            ];
            args.extend(raw);
            let line = json_line(&load(&args));
            assert_eq!(field(&line, "connected"), 4.0, "{name}: {line}");
            assert_eq!(field(&line, "errors"), 0.0, "{name}: {line}");
            assert!(field(&line, "messages") > 0.0, "{name}: {line}");
        }
        // A certificate the server does not have is refused: no connection.
        let other = cert.with_file_name("other.pem");
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
            .expect("make a certificate");
        std::fs::write(&other, made.cert.pem()).expect("write it");
        let args = [
            "echo",
            &url,
            "--ca",
            other.to_str().expect("utf-8"),
            "-c",
            "2",
            "-t",
            "0.1",
        ];
        let output = load(&args);
        assert_eq!(output.status.code(), Some(1), "{name}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("certificate"), "{name}: {stderr}");
    }
}

#[test]
fn broadcast_delivers_everything_in_order() {
    for name in SERVERS {
        broadcast_on(name);
    }
}

fn broadcast_on(name: &str) {
    let server = Server::start(
        name,
        &["--rate", "100000", "--burst", "100000", "--history", "0"],
    );
    let url = server.url("/bench");
    // Plain, then chat-sized messages compressed both ways (RFC 7692).
    for extra in [&[][..], &["-s", "300", "--deflate"]] {
        let mut args = vec![
            "broadcast",
            &url,
            "-n",
            "20",
            "-k",
            "2",
            "-r",
            "200",
            "-t",
            "1",
            "--threads",
            "2",
        ];
        args.extend(extra);
        let line = json_line(&load(&args));
        assert_eq!(field(&line, "connected"), 20.0, "{name}: {line}");
        assert_eq!(field(&line, "sent"), 400.0, "{name}: {line}");
        assert_eq!(field(&line, "expected"), 8000.0, "{name}: {line}");
        assert_eq!(field(&line, "delivered"), 8000.0, "{name}: {line}");
        assert_eq!(field(&line, "lost"), 0.0, "{name}: {line}");
        assert_eq!(field(&line, "out_of_order"), 0.0, "{name}: {line}");
        assert_eq!(field(&line, "errors"), 0.0, "{name}: {line}");
        let (p50, p99, max) = (
            field(&line, "p50_us"),
            field(&line, "p99_us"),
            field(&line, "max_us"),
        );
        assert!(p50 <= p99 && p99 <= max && max > 0.0, "{name}: {line}");
        assert!(field(&line, "delivered_per_sec") > 0.0, "{name}: {line}");
    }
}

#[test]
fn broadcast_reports_messages_a_server_drops() {
    // A server that sends each receiver only every other message.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || lossy_server(listener));
    let url = format!("ws://127.0.0.1:{port}/");
    let line = json_line(&load(&[
        "broadcast",
        &url,
        "-n",
        "1",
        "-k",
        "1",
        "-r",
        "100",
        "-t",
        "0.2",
        "--drain",
        "0.5",
    ]));
    assert_eq!(field(&line, "sent"), 20.0, "{line}");
    assert!(field(&line, "lost") >= 9.0, "{line}");
}

/// Accepts a receiver, then a sender, and forwards every second text frame
/// of the sender's (short, masked) frames to the receiver, unmasked.
fn lossy_server(listener: TcpListener) {
    let accept = || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).expect("head");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .expect("key")
            .trim()
            .to_owned();
        let accept = tincan_accept(&key);
        write!(
            s,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .expect("101");
        s
    };
    let mut receiver = accept();
    let mut sender = accept();
    let mut n = 0;
    loop {
        let mut header = [0u8; 2];
        if sender.read_exact(&mut header).is_err() {
            return;
        }
        let len = usize::from(header[1] & 0x7f);
        let mut rest = vec![0u8; 4 + len];
        if sender.read_exact(&mut rest).is_err() || header[0] & 0x0f == 8 {
            return;
        }
        let (key, payload) = rest.split_at_mut(4);
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
        n += 1;
        if n % 2 == 0 {
            let mut frame = vec![0x81, len as u8];
            frame.extend_from_slice(payload);
            let _ = receiver.write_all(&frame);
        }
    }
}

fn tincan_accept(key: &str) -> String {
    tincan_core::handshake::accept_key(key)
}

#[test]
fn idle_holds_connections_and_prints_first() {
    // Chat members spread over five rooms (/idle0 … /idle4).
    let server = Server::start("tincan-smol", &[]);
    let url = server.url("/idle");
    let mut child = Command::new(LOAD)
        .args(["idle", &url, "-n", "50", "-t", "30", "--rooms", "5"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts");
    // The line comes while the connections are held, long before 30 s.
    let line = first_line(&mut child);
    assert!(line.contains("\"mode\":\"idle\""), "{line}");
    assert_eq!(field(&line, "connected"), 50.0, "{line}");
    assert_eq!(field(&line, "failed"), 0.0, "{line}");
    assert_eq!(field(&line, "rooms"), 5.0, "{line}");
    assert!(child.try_wait().expect("wait").is_none(), "still holding");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn idle_closes_after_holding() {
    let server = Server::start("tincan-smol", &[]);
    let url = server.url("/idle");
    let line = json_line(&load(&["idle", &url, "-n", "20", "-t", "0.2"]));
    assert_eq!(field(&line, "connected"), 20.0, "{line}");
}

#[test]
fn raw_tcp_echo_is_the_baseline() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut reader = stream.try_clone().expect("clone");
                let mut writer = stream;
                let _ = std::io::copy(&mut reader, &mut writer);
            });
        }
    });
    let url = format!("tcp://127.0.0.1:{port}");
    // Far more in flight than the socket buffers hold: reading and writing
    // must go on together, or client and server both block on writes.
    for (size, depth) in [("1000", "3"), ("100000", "40")] {
        let line = json_line(&load(&[
            "echo", &url, "-c", "2", "-s", size, "-d", depth, "-t", "0.3", "--warmup", "0.1",
        ]));
        assert!(field(&line, "messages") > 0.0, "{line}");
        assert_eq!(field(&line, "errors"), 0.0, "{line}");
        assert!(field(&line, "p50_us") <= field(&line, "max_us"), "{line}");
    }
}

#[test]
fn no_server_means_exit_1() {
    let url = format!("ws://127.0.0.1:{}/", free_port());
    for args in [
        &["echo", &url, "-c", "2", "-t", "0.1", "--warmup", "0"][..],
        &["broadcast", &url, "-n", "2", "-t", "0.1"],
        &["idle", &url, "-n", "2", "-t", "0"],
    ] {
        let output = load(args);
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        // Still one JSON line, saying so.
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        assert_eq!(field(&stdout, "connected"), 0.0, "{stdout}");
    }
}

#[test]
fn help_goes_to_stdout() {
    let output = load(&["--help"]);
    assert!(output.status.success());
    let usage = String::from_utf8_lossy(&output.stdout);
    for mode in [
        "echo <URL>",
        "broadcast <URL>",
        "idle <URL>",
        "--threads",
        "--connect-concurrency",
    ] {
        assert!(usage.contains(mode), "{usage}");
    }
}

#[test]
fn bad_command_lines_exit_2() {
    for args in [
        &[][..],
        &["echo"],
        &["echo", "http://x/"],
        &["flood", "ws://127.0.0.1:1/"],
        &["echo", "ws://127.0.0.1:1/", "-c", "0"],
        &["echo", "ws://127.0.0.1:1/", "-s", "abc"],
        &["echo", "ws://127.0.0.1:1/", "-t"],
        &["echo", "ws://127.0.0.1:1/", "-t", "-1"],
        &["echo", "ws://127.0.0.1:1/", "--threads", "0"],
        &["idle", "tcp://127.0.0.1:1", "-n", "1"],
        &["broadcast", "ws://127.0.0.1:1/", "--warmup", "1"],
        &["echo", "wss://127.0.0.1:1/"],
        &["echo", "wss://127.0.0.1:1/", "--ca", "/nonexistent.pem"],
    ] {
        let output = load(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with("tincan-load: error: "),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn broadcast_deals_connections_to_several_urls_in_turn() {
    // Two servers that share nothing: each receiver hears only the sender
    // on its own server, so exactly half of what is expected arrives.
    let a = Server::start(SERVERS[0], &["--history", "0"]);
    let b = Server::start(SERVERS[0], &["--history", "0"]);
    let (url_a, url_b) = (a.url("/bench"), b.url("/bench"));
    let line = json_line(&load(&[
        "broadcast",
        &url_a,
        &url_b,
        "-n",
        "4",
        "-k",
        "2",
        "-r",
        "20",
        "-t",
        "0.5",
        "--drain",
        "0.2",
    ]));
    assert_eq!(field(&line, "connected"), 4.0, "{line}");
    let expected = field(&line, "expected");
    assert_eq!(field(&line, "sent"), 20.0, "{line}");
    assert_eq!(field(&line, "delivered"), expected / 2.0, "{line}");
    assert_eq!(field(&line, "out_of_order"), 0.0, "{line}");
}
