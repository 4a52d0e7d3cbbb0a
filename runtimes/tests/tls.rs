//! https and wss (`--tls-cert`, `--tls-key`) against a real server binary,
//! with certificates the test makes in memory (rcgen) and a tungstenite
//! client over rustls; like `server.rs`, this file is a test of both
//! `tincan-smol` and `tincan-async-std`.

#[path = "common/mod.rs"]
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tungstenite::{Message, WebSocket};

type TlsStream = StreamOwned<ClientConnection, Stream>;
type Wss = WebSocket<TlsStream>;

/// A self-signed certificate for `localhost` and 127.0.0.1, and its key.
struct Pair {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Pair {
    fn new() -> Pair {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let made = rcgen::generate_simple_self_signed(names).expect("make a certificate");
        Pair {
            cert_pem: made.cert.pem(),
            key_pem: made.signing_key.serialize_pem(),
            der: made.cert.der().clone(),
        }
    }

    /// A client that trusts this certificate alone.
    fn client(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).expect("trust the certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

/// A directory of its own for each test's files.
fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let bin = Path::new(BIN).file_name().expect("binary name");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tls-{}-{name}-{n}", bin.to_string_lossy()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("make a scratch directory");
    dir
}

/// Writes `cert` and `key` into `dir` (replacing what was there); returns
/// their paths.
fn write_pair(dir: &Path, cert: &str, key: &str) -> (String, String) {
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert).expect("write the certificate");
    std::fs::write(&key_path, key).expect("write the key");
    let text = |p: PathBuf| p.to_str().expect("a UTF-8 path").to_owned();
    (text(cert_path), text(key_path))
}

/// A TLS server with `pair` and `args`.
fn start(dir: &Path, pair: &Pair, args: &[&str]) -> Server {
    let (cert, key) = write_pair(dir, &pair.cert_pem, &pair.key_pem);
    let mut all = vec!["--tls-cert", &cert, "--tls-key", &key];
    all.extend_from_slice(args);
    let server = Server::start(&all);
    server.wait_line("(TLS: https and wss)");
    server
}

/// A TLS connection to the server, trusting `client`, its handshake done;
/// the error if it fails.
fn tls_connect(server: &Server, client: &Arc<ClientConfig>) -> Result<TlsStream, std::io::Error> {
    let tcp = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    tcp.set_read_timeout(Some(WAIT)).expect("read timeout");
    tcp.set_write_timeout(Some(WAIT)).expect("write timeout");
    tcp.set_nodelay(true).expect("nodelay");
    let name = ServerName::try_from("localhost").expect("server name");
    let conn = ClientConnection::new(client.clone(), name).expect("client connection");
    let mut stream = StreamOwned::new(conn, Stream(tcp));
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// A wss client in the lobby; returns it and its nickname.
fn wss_join(server: &Server, client: &Arc<ClientConfig>) -> (Wss, String) {
    let stream = tls_connect(server, client).expect("TLS handshake");
    let url = format!("wss://localhost:{}/", server.port);
    let (mut ws, response) =
        tungstenite::client(url.as_str(), stream).unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(response.status(), 101);
    let nick = expect_welcome(&mut ws);
    (ws, nick)
}

#[test]
fn clients_chat_over_wss_and_the_page_comes_over_https() {
    let dir = scratch("chat");
    let pair = Pair::new();
    let server = start(&dir, &pair, &["--rate", "1000", "--burst", "100"]);
    let client = pair.client();
    let (mut a, nick_a) = wss_join(&server, &client);
    let (mut b, nick_b) = wss_join(&server, &client);
    assert_eq!(ws_text(&mut a), format!("* {nick_b} joined #lobby"));
    ws_send_text(&mut a, "over TLS");
    assert_eq!(ws_chat(&mut a), chat_line(&nick_a, "over TLS"));
    assert_eq!(ws_chat(&mut b), chat_line(&nick_a, "over TLS"));
    // A message larger than a TLS record (16 KiB) arrives whole.
    let long = "x".repeat(1900);
    for _ in 0..20 {
        ws_send_text(&mut b, &long);
    }
    for _ in 0..20 {
        assert_eq!(ws_chat(&mut a), chat_line(&nick_b, &long));
    }

    // The page, over https.
    let mut https = tls_connect(&server, &client).expect("TLS handshake");
    https
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("send a request");
    let mut page = Vec::new();
    https
        .read_to_end(&mut page)
        .expect("read the page to close_notify");
    let page = String::from_utf8_lossy(&page);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<html"), "{page}");

    // Closing: the server answers the close, then ends TLS with
    // close_notify (rustls reports a bare TCP FIN as an error).
    a.close(None).expect("send a close");
    loop {
        match a.read() {
            Ok(Message::Text(_) | Message::Close(_)) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            other => panic!("expected the server to end TLS cleanly, got {other:?}"),
        }
    }
    server.wait_line("Connection with 127.0.0.1:");
}

#[test]
fn bad_certificate_files_exit_1_naming_the_file() {
    let dir = scratch("bad");
    let pair = Pair::new();
    let other = Pair::new();
    let (cert, key) = write_pair(&dir, &pair.cert_pem, &pair.key_pem);
    let missing = dir.join("missing.pem").to_str().expect("UTF-8").to_owned();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let garbage = garbage.to_str().expect("UTF-8").to_owned();
    let other_key = dir.join("other-key.pem");
    std::fs::write(&other_key, &other.key_pem).expect("write");
    let other_key = other_key.to_str().expect("UTF-8").to_owned();
    let directory = dir.to_str().expect("UTF-8").to_owned();
    let cases = [
        (missing.clone(), key.clone(), missing.clone(), "cannot read"),
        (
            cert.clone(),
            missing.clone(),
            missing.clone(),
            "cannot read",
        ),
        (directory.clone(), key.clone(), directory, "cannot read"),
        (
            garbage.clone(),
            key.clone(),
            garbage.clone(),
            "no PEM certificate",
        ),
        (cert.clone(), garbage.clone(), garbage, "no PEM private key"),
        (cert.clone(), other_key.clone(), other_key, "does not match"),
    ];
    for (cert, key, named, says) in cases {
        let port = free_port().to_string();
        let run = run(&["--tls-cert", &cert, "--tls-key", &key, &port]);
        assert_eq!(run.status.code(), Some(1), "{cert} {key}: {}", run.stderr);
        assert!(run.stderr.contains(&named), "{named}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{says}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    // One file without the other is a bad command line.
    let run = run(&["--tls-cert", &cert, "8080"]);
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--tls-key"), "{}", run.stderr);
}

#[test]
fn sighup_reloads_the_certificate_and_a_bad_pair_keeps_the_old_one() {
    let dir = scratch("reload");
    let (first, second) = (Pair::new(), Pair::new());
    let server = start(&dir, &first, &[]);
    let (mut old, _) = wss_join(&server, &first.client());

    // Renewed files, then SIGHUP: new connections get the new certificate.
    write_pair(&dir, &second.cert_pem, &second.key_pem);
    let mark = server.mark();
    server.signal("HUP");
    server.wait_line_after(mark, "Reloaded TLS certificate");
    let (mut new, nick_new) = wss_join(&server, &second.client());
    let refused = tls_connect(&server, &first.client()).map(|_| ());
    assert!(refused.is_err(), "the old certificate is still served");
    // The connection made before the reload goes on.
    ws_send_text(&mut new, "after the reload");
    assert_eq!(ws_chat(&mut old), chat_line(&nick_new, "after the reload"));

    // A mismatched pair: logged, and the certificate in use stays.
    write_pair(&dir, &first.cert_pem, &second.key_pem);
    let mark = server.mark();
    server.signal("HUP");
    let (line, _) = server.wait_line_after(mark, "TLS reload failed");
    assert!(line.contains("does not match"), "{line}");
    assert!(line.contains("key.pem"), "{line}");
    wss_join(&server, &second.client());
    // A missing file likewise.
    std::fs::remove_file(dir.join("cert.pem")).expect("remove");
    let mark = server.mark();
    server.signal("HUP");
    let (line, _) = server.wait_line_after(mark, "TLS reload failed");
    assert!(line.contains("cert.pem"), "{line}");
    wss_join(&server, &second.client());
}

/// Reads until the server closes the connection; fails if it does not
/// within `within`.
fn expect_closed_within(mut tcp: TcpStream, within: Duration) {
    tcp.set_read_timeout(Some(within)).expect("read timeout");
    let until = Instant::now() + within;
    let mut buf = [0; 1024];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {} // a TLS alert
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) => panic!("not closed within {within:?}: {e}"),
        }
        assert!(Instant::now() < until, "not closed within {within:?}");
    }
}

#[test]
fn plain_http_and_stalled_handshakes_are_closed_and_nobody_else_waits() {
    let dir = scratch("stall");
    let pair = Pair::new();
    let server = start(&dir, &pair, &["--handshake-timeout", "1"]);
    let client = pair.client();

    // A client that stops halfway through its ClientHello, and one that
    // sends nothing at all.
    let mut half = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .expect("start a ClientHello");
    let silent = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let started = Instant::now();
    // Meanwhile others chat.
    let (mut a, nick_a) = wss_join(&server, &client);
    ws_send_text(&mut a, "still here");
    assert_eq!(ws_chat(&mut a), chat_line(&nick_a, "still here"));
    // Both are closed after the 1 s handshake timeout (with slack for a
    // loaded machine), and the reason is logged.
    expect_closed_within(half, WAIT);
    expect_closed_within(silent, WAIT);
    assert!(started.elapsed() >= Duration::from_millis(900));
    server.wait_count("not finished within 1 s", 2);

    // Plain HTTP on the TLS port: closed at once, not after the timeout.
    let mut plain = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("send");
    expect_closed_within(plain, Duration::from_millis(900));
    let (line, _) = server.wait_line_after(0, "TLS handshake with 127.0.0.1:");
    assert_log_line_format(&line);
    ws_send_text(&mut a, "and still");
    assert_eq!(ws_chat(&mut a), chat_line(&nick_a, "and still"));
}

/// `limit` (the option and its value) allows three connections: two stalled
/// handshakes and a chatting client fill it, the next connection is
/// closed before its handshake, and once a stalled one leaves there is room
/// again.
fn handshakes_count_against(limit: [&str; 2], reason: &str) {
    let dir = scratch("limit");
    let pair = Pair::new();
    let server = start(
        &dir,
        &pair,
        &[limit[0], limit[1], "--handshake-timeout", "60"],
    );
    let client = pair.client();
    let first = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let _second = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    // The accept loop takes connections in order: once the third has
    // finished its handshakes, the first two are counted.
    let (mut a, nick_a) = wss_join(&server, &client);
    let refused = tls_connect(&server, &client);
    assert!(refused.is_err(), "a fourth connection was served");
    server.wait_line("Refused TLS connection from 127.0.0.1:");
    server.wait_line(reason);
    ws_send_text(&mut a, "full");
    assert_eq!(ws_chat(&mut a), chat_line(&nick_a, "full"));

    // One stalled handshake gives up: its place is free.
    first.shutdown(std::net::Shutdown::Both).expect("shutdown");
    drop(first);
    server.wait_line("TLS handshake with 127.0.0.1:");
    let until = deadline();
    loop {
        if let Ok(stream) = tls_connect(&server, &client) {
            let url = format!("wss://localhost:{}/", server.port);
            let (mut b, _) = tungstenite::client(url.as_str(), stream).expect("upgrade");
            expect_welcome(&mut b);
            break;
        }
        // The count goes down just after the log line: try again.
        assert!(Instant::now() < until, "no room again within {WAIT:?}");
    }
}

#[test]
fn tls_handshakes_count_against_the_per_address_limit() {
    handshakes_count_against(
        ["--max-connections-per-ip", "3"],
        "too many connections from its address",
    );
}

#[test]
fn tls_handshakes_count_against_the_total_limit() {
    handshakes_count_against(["--max-clients", "3"], "the server is full");
}
