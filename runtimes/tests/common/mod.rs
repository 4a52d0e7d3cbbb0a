//! Helpers for the end-to-end tests in `server.rs`: a server process guard
//! that captures the log, a tungstenite client, and a raw-socket client that
//! speaks RFC 6455 byte by byte.
//!
//! Nothing here sleeps for a fixed time: every wait is for a condition (a log
//! line, a byte on a socket, the process ending) with a deadline, and fails
//! with a message that says what was awaited and shows the server's log.

#![allow(dead_code)]

pub mod metrics;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};

/// The server binary of the package whose tests these are. (`env!` in the
/// other arms would be expanded, and fail, in the packages that do not have
/// that binary, so all are `option_env!`.)
pub const BIN: &str = match option_env!("CARGO_BIN_EXE_tincan-smol") {
    Some(p) => p,
    None => match option_env!("CARGO_BIN_EXE_tincan-async-std") {
        Some(p) => p,
        None => match option_env!("CARGO_BIN_EXE_tincan-tokio") {
            Some(p) => p,
            None => panic!("built as the test of none of the tincan binaries"),
        },
    },
};

/// How long any single condition may take on a loaded machine.
pub const WAIT: Duration = Duration::from_secs(20);

/// The `Sec-WebSocket-Key` of RFC 6455 §1.3 and its `Sec-WebSocket-Accept`.
pub const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The masking key of RFC 6455 §5.7.
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

pub fn deadline() -> Instant {
    Instant::now() + WAIT
}

// ---------------------------------------------------------------------------
// Captured output of a child process.

#[derive(Default)]
struct Captured {
    text: String,
    eof: bool,
}

/// Everything a child wrote to one pipe, line by line, with a condition
/// variable so tests can wait for a line to appear.
#[derive(Default)]
pub struct Output {
    state: Mutex<Captured>,
    changed: Condvar,
}

impl Output {
    /// Reads `pipe` on a background thread until end of file.
    pub fn capture(pipe: impl Read + Send + 'static) -> Arc<Output> {
        let out = Arc::new(Output::default());
        let writer = out.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let mut state = writer.lock();
                        state.text.push_str(&String::from_utf8_lossy(&line));
                        if !state.text.ends_with('\n') {
                            // The last line at end of file.
                            state.text.push('\n');
                        }
                        drop(state);
                        writer.changed.notify_all();
                    }
                }
            }
            writer.lock().eof = true;
            writer.changed.notify_all();
        });
        out
    }

    fn lock(&self) -> MutexGuard<'_, Captured> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Everything so far.
    pub fn text(&self) -> String {
        self.lock().text.clone()
    }

    /// A position in the output: later searches can start there.
    pub fn mark(&self) -> usize {
        self.lock().text.len()
    }

    /// Whether a complete line at or after `from` contains `needle`.
    pub fn contains_after(&self, from: usize, needle: &str) -> bool {
        find_line(&self.lock().text, from, needle).is_some()
    }

    /// How many lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lock()
            .text
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits for a line at or after `from` that contains `needle`. Returns the
    /// line and the position after it, or `None` if the deadline passed or
    /// the pipe ended first.
    pub fn wait_after(
        &self,
        from: usize,
        needle: &str,
        timeout: Duration,
    ) -> Option<(String, usize)> {
        let until = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if let Some(found) = find_line(&state.text, from, needle) {
                return Some(found);
            }
            let now = Instant::now();
            if state.eof || now >= until {
                return None;
            }
            state = self
                .changed
                .wait_timeout(state, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits until `n` lines contain `needle`.
    pub fn wait_count(&self, needle: &str, n: usize, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if state.text.lines().filter(|l| l.contains(needle)).count() >= n {
                return true;
            }
            let now = Instant::now();
            if state.eof || now >= until {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits for the end of the pipe (the process exited).
    pub fn wait_eof(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            if state.eof {
                return true;
            }
            if now >= until {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The first whole line starting at or after byte `from` that contains
/// `needle`, and the position after it.
fn find_line(text: &str, from: usize, needle: &str) -> Option<(String, usize)> {
    let mut start = from.min(text.len());
    // Begin at a line start.
    if start > 0 && !text[..start].ends_with('\n') {
        start = text[start..]
            .find('\n')
            .map_or(text.len(), |i| start + i + 1);
    }
    while start < text.len() {
        let end = text[start..].find('\n').map(|i| start + i)?;
        let line = &text[start..end];
        if line.contains(needle) {
            return Some((line.to_owned(), end + 1));
        }
        start = end + 1;
    }
    None
}

// ---------------------------------------------------------------------------
// The server process.

/// A running server. Killed (and reaped) on drop; if the test is failing,
/// its output is printed so the failure can be understood.
pub struct Server {
    child: Child,
    pub port: u16,
    pub stdout: Arc<Output>,
    pub stderr: Arc<Output>,
    status: Option<ExitStatus>,
}

/// Whether process `pid` holds a TCP socket listening on `port`: one of
/// its descriptors is the inode that `/proc/net/tcp` (or `tcp6`) lists in
/// the LISTEN state (`0A`) on that port.
fn listens_on(pid: u32, port: u16) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let inodes: Vec<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        let table = std::fs::read_to_string(table).unwrap_or_default();
        table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|local| local.rsplit(':').next())
                .and_then(|hex| u16::from_str_radix(hex, 16).ok());
            fields.len() > 9
                && local_port == Some(port)
                && fields[3] == "0A"
                && inodes.iter().any(|inode| inode == fields[9])
        })
    })
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

impl Server {
    /// Starts the server with `args` and a free port, and waits for its
    /// "listening" line. Retries with another port if that one was taken in
    /// the meantime.
    pub fn start(args: &[&str]) -> Server {
        Self::start_via(&[], args)
    }

    /// Like [`Server::start`], with the binary run by `wrapper` (a command
    /// and its arguments, the binary's path and arguments following).
    pub fn start_via(wrapper: &[&str], args: &[&str]) -> Server {
        let mut failures = Vec::new();
        for _ in 0..10 {
            let port = free_port();
            let mut command = match wrapper.split_first() {
                Some((program, wrapper_args)) => {
                    let mut command = Command::new(program);
                    command.args(wrapper_args).arg(BIN);
                    command
                }
                None => Command::new(BIN),
            };
            let mut child = command
                .args(args)
                .arg(port.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
            let stdout = Output::capture(child.stdout.take().expect("piped stdout"));
            let stderr = Output::capture(child.stderr.take().expect("piped stderr"));
            let mut server = Server {
                child,
                port,
                stdout,
                stderr,
                status: None,
            };
            // Below info, even the listening line is not printed: then the
            // port answering is the sign.
            let quiet = args
                .windows(2)
                .any(|w| w[0] == "--log-level" && matches!(w[1], "warn" | "error"))
                || args.iter().any(|a| matches!(*a, "-q" | "--quiet"));
            if quiet {
                if server.wait_listening(WAIT) {
                    return server;
                }
            } else {
                let listening = format!("WebSocket server listening on port {port}");
                if let Some((line, _)) = server.stdout.wait_after(0, &listening, WAIT) {
                    let json = args.windows(2).any(|w| w == ["--log-format", "json"]);
                    if json {
                        let line: serde_json::Value = serde_json::from_str(&line)
                            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
                        assert_eq!(line["event"], "listening", "{line}");
                    } else {
                        assert_log_line_format(&line);
                    }
                    return server;
                }
            }
            // Not listening: it exited (the pipe ended) or it hangs.
            let status = server.wait_exit(WAIT);
            server.stderr.wait_eof(WAIT);
            let err = server.stderr.text();
            if err.contains("in use") {
                failures.push(format!("port {port}: {err}"));
                continue;
            }
            panic!(
                "{BIN} {args:?} {port} did not start listening ({status:?})\n\
                 stdout:\n{}\nstderr:\n{err}",
                server.stdout.text()
            );
        }
        panic!(
            "no free port found after 10 tries:\n{}",
            failures.join("\n")
        );
    }

    /// Waits until the server itself listens on its port, or it ends. A
    /// port that merely takes a connection is not proof: another process
    /// may have taken the port first (then the server exits, "in use").
    fn wait_listening(&mut self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if listens_on(self.child.id(), self.port) {
                return true;
            }
            if self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            // Not listening yet: the only thing to wait on is time.
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed: {status}");
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    /// A position in the log; see [`Server::wait_line_after`].
    pub fn mark(&self) -> usize {
        self.stdout.mark()
    }

    /// Waits for a log line containing `needle`; returns it.
    pub fn wait_line(&self, needle: &str) -> String {
        self.wait_line_after(0, needle).0
    }

    /// Waits for a log line containing `needle` at or after `from`; returns
    /// it and the position after it, so that order can be checked.
    pub fn wait_line_after(&self, from: usize, needle: &str) -> (String, usize) {
        self.stdout
            .wait_after(from, needle, WAIT)
            .unwrap_or_else(|| {
                panic!(
                    "no log line containing {needle:?} (after byte {from}) within {WAIT:?}; \
                     log:\n{}",
                    self.stdout.text()
                )
            })
    }

    /// Waits until `n` log lines contain `needle`.
    pub fn wait_count(&self, needle: &str, n: usize) {
        assert!(
            self.stdout.wait_count(needle, n, WAIT),
            "expected {n} log lines containing {needle:?} within {WAIT:?}; log:\n{}",
            self.stdout.text()
        );
    }

    /// Waits for the process to exit; `None` if it did not in time.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_some() {
            return self.status;
        }
        // The process closing its stdout is the usual sign that it ended;
        // a short poll covers the rest of the way.
        self.stdout.wait_eof(timeout);
        let until = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.status = Some(status);
                    return self.status;
                }
                Ok(None) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => return None,
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let before = match self.status {
            Some(status) => Ok(Some(status)),
            None => self.child.try_wait(),
        };
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let state = match before {
                Ok(Some(status)) => format!("had exited: {status}"),
                Ok(None) => "was still running".to_owned(),
                Err(e) => format!("unknown: {e}"),
            };
            eprintln!(
                "---- {BIN} on port {} {state} when the test failed",
                self.port
            );
            // Give the reader threads what is left in the pipes.
            self.stdout.wait_eof(Duration::from_secs(2));
            self.stderr.wait_eof(Duration::from_secs(2));
            eprintln!(
                "---- {BIN} on port {} stdout ----\n{}---- stderr ----\n{}----",
                self.port,
                self.stdout.text(),
                self.stderr.text()
            );
        }
    }
}

/// A plain HTTP `GET` of `path` on `port`, read to the end.
pub fn http_get(port: u16, path: &str) -> HttpResponse {
    let mut raw = Raw::connect_port("127.0.0.1", port);
    raw.send(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes());
    raw.read_response()
}

/// `[HH:MM:SS] ...`
pub fn assert_log_line_format(line: &str) {
    let b = line.as_bytes();
    let ok = b.len() > 11
        && b[0] == b'['
        && b[3] == b':'
        && b[6] == b':'
        && b[9] == b']'
        && b[10] == b' '
        && [1, 2, 4, 5, 7, 8].iter().all(|&i| b[i].is_ascii_digit());
    assert!(ok, "log line without a [HH:MM:SS] stamp: {line:?}");
}

/// The result of running the binary to completion.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary with `args` and waits (bounded) for it to exit.
pub fn run(args: &[&str]) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    let stdout = Output::capture(child.stdout.take().expect("piped stdout"));
    let stderr = Output::capture(child.stderr.take().expect("piped stderr"));
    let mut server = Server {
        child,
        port: 0,
        stdout: stdout.clone(),
        stderr: stderr.clone(),
        status: None,
    };
    let status = server.wait_exit(WAIT).unwrap_or_else(|| {
        panic!(
            "{BIN} {args:?} did not exit within {WAIT:?}\nstdout:\n{}\nstderr:\n{}",
            stdout.text(),
            stderr.text()
        )
    });
    assert!(stdout.wait_eof(WAIT) && stderr.wait_eof(WAIT));
    Run {
        status,
        stdout: stdout.text(),
        stderr: stderr.text(),
    }
}

// ---------------------------------------------------------------------------
// A tungstenite client.

pub type Ws = WebSocket<Stream>;

/// A `TcpStream` whose reads and writes are retried when a signal interrupts
/// them. A socket with a timeout gets `EINTR` even for signals whose handler
/// asks for restarts (signal(7)), and tungstenite would report it as a
/// failure.
#[derive(Debug)]
pub struct Stream(pub TcpStream);

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            match self.0.write(buf) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Sets how long one read of `ws` may block.
pub fn set_read_timeout(ws: &Ws, timeout: Duration) {
    ws.get_ref()
        .0
        .set_read_timeout(Some(timeout))
        .expect("read timeout");
}

/// Connects and completes the handshake; returns the client and its local
/// port (which is how the server's log names it).
pub fn ws_connect(server: &Server, path: &str) -> (Ws, u16) {
    let stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    stream.set_write_timeout(Some(WAIT)).expect("write timeout");
    stream.set_nodelay(true).expect("nodelay");
    let local = stream.local_addr().expect("local address").port();
    let (ws, response) = tungstenite::client(server.url(path), Stream(stream))
        .unwrap_or_else(|e| panic!("handshake with {}: {e}", server.url(path)));
    assert_eq!(response.status(), 101);
    (ws, local)
}

// The helpers below take any `WebSocket<S>`, so that a client made some other
// way (say with a subprotocol) can use them too; connect with a [`Stream`] to
// be immune to `EINTR`.

/// The next message; fails on a timeout or error.
pub fn ws_read<S: Read + Write>(ws: &mut WebSocket<S>) -> Message {
    ws.read()
        .unwrap_or_else(|e| panic!("reading a message (timeout {WAIT:?}): {e}"))
}

pub fn ws_send_text<S: Read + Write>(ws: &mut WebSocket<S>, text: &str) {
    ws.send(Message::text(text))
        .unwrap_or_else(|e| panic!("sending {text:?}: {e}"));
}

/// The next message, which must be text.
pub fn ws_text<S: Read + Write>(ws: &mut WebSocket<S>) -> String {
    match ws_read(ws) {
        Message::Text(text) => text.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Chat mode: the first message a client gets is its welcome, which names
/// it. Returns the nickname.
pub fn expect_welcome<S: Read + Write>(ws: &mut WebSocket<S>) -> String {
    let text = ws_text(ws);
    parse_welcome(&text)
}

pub fn parse_welcome(text: &str) -> String {
    let nick = text
        .strip_prefix("* Welcome to #lobby, ")
        .and_then(|rest| rest.strip_suffix(". Type /help for commands."));
    match nick {
        Some(nick) if !nick.is_empty() => nick.to_owned(),
        _ => panic!("expected the welcome to #lobby, got {text:?}"),
    }
}

/// How a chat message from `nick` looks to a plain-text client.
pub fn chat_line(nick: &str, text: &str) -> String {
    format!("{nick}: {text}")
}

/// A server notice (someone joined or left): `* ...`.
pub fn is_notice(text: &str) -> bool {
    text.starts_with("* ")
}

/// Chat mode: the next chat message, skipping presence notices.
pub fn ws_chat<S: Read + Write>(ws: &mut WebSocket<S>) -> String {
    loop {
        let text = ws_text(ws);
        if !is_notice(&text) {
            return text;
        }
    }
}

/// Reads until the server's close frame (skipping text messages), lets
/// tungstenite answer it, and returns its code and reason.
pub fn ws_expect_close<S: Read + Write>(ws: &mut WebSocket<S>) -> (u16, String) {
    loop {
        match ws_read(ws) {
            Message::Text(_) => continue,
            Message::Close(Some(frame)) => {
                // Sends the close reply.
                let _ = ws.flush();
                return (u16::from(frame.code), frame.reason.as_str().to_owned());
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// After the close handshake: the server ends the TCP connection.
pub fn ws_expect_closed<S: Read + Write>(ws: &mut WebSocket<S>) {
    loop {
        match ws.read() {
            Ok(Message::Text(_)) => continue,
            Err(tungstenite::Error::ConnectionClosed) => return,
            other => panic!("expected the server to end the connection, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// A raw client.

/// The opening handshake request for `path` with the RFC key and extra
/// header lines (each ending in `\r\n`).
pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {RFC_KEY}\r\n\
         Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A frame with any first byte bits: `fin`, `opcode` (reserved ones too),
/// optionally masked.
pub fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A masked client frame.
pub fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, payload, Some(MASK))
}

/// What the server answered to a request, read to the end of the connection.
#[derive(Debug)]
pub struct HttpResponse {
    pub status_line: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed server frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// A WebSocket client over a plain `TcpStream`, for what tungstenite will
/// not send: bad frames, exact fragmentation, early data.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(server: &Server) -> Raw {
        Raw::connect_to(server, "127.0.0.1")
    }

    /// Connects to the server's port on `host` (an address such as `::1`).
    pub fn connect_to(server: &Server, host: &str) -> Raw {
        Raw::connect_port(host, server.port)
    }

    /// Connects to `port` on `host` (another listener of the server's).
    pub fn connect_port(host: &str, port: u16) -> Raw {
        let stream = TcpStream::connect((host, port)).expect("connect");
        stream.set_write_timeout(Some(WAIT)).expect("write timeout");
        stream.set_nodelay(true).expect("nodelay");
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// A second handle on the same socket, for a thread that only writes,
    /// while this one reads.
    pub fn writer(&self) -> TcpStream {
        self.stream.try_clone().expect("clone the socket")
    }

    /// The socket, for a test that drives it itself (bytes read but not
    /// yet taken are dropped).
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    pub fn local_port(&self) -> u16 {
        self.stream.local_addr().expect("local address").port()
    }

    /// Bytes read from the socket and not yet taken.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Writes all of `bytes` in one call.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("writing {} bytes: {e}", bytes.len()));
    }

    /// One read into the buffer before `until`; returns how many bytes came
    /// (0 at end of file). Fails on timeout or error.
    fn fill(&mut self, until: Instant, waiting_for: &str) -> usize {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            panic!(
                "timed out waiting for {waiting_for}; have {} bytes: {:?}",
                self.buf.len(),
                String::from_utf8_lossy(&self.buf[..self.buf.len().min(200)])
            );
        }
        self.stream
            .set_read_timeout(Some(left))
            .expect("read timeout");
        let mut chunk = [0; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                n
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => panic!(
                "timed out waiting for {waiting_for}; have {} bytes: {:?}",
                self.buf.len(),
                String::from_utf8_lossy(&self.buf[..self.buf.len().min(200)])
            ),
            Err(e) if e.kind() == ErrorKind::Interrupted => self.fill(until, waiting_for),
            Err(e) => panic!("reading while waiting for {waiting_for}: {e}"),
        }
    }

    /// Reads until `n` bytes are buffered.
    fn need(&mut self, n: usize, until: Instant, waiting_for: &str) {
        while self.buf.len() < n {
            if self.fill(until, waiting_for) == 0 {
                panic!(
                    "connection ended while waiting for {waiting_for}; have {} bytes: {:?}",
                    self.buf.len(),
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
    }

    /// The next `n` bytes.
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        self.need(n, deadline(), &format!("{n} bytes"));
        self.buf.drain(..n).collect()
    }

    /// Reads an HTTP head (through the blank line); what follows stays
    /// buffered.
    pub fn read_head(&mut self) -> String {
        let until = deadline();
        loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..at + 4).collect();
                return String::from_utf8(head).expect("an ASCII head");
            }
            if self.fill(until, "an HTTP response head") == 0 {
                panic!(
                    "connection ended inside the HTTP head: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
    }

    /// Reads until the server ends the connection.
    pub fn read_to_end(&mut self) -> Vec<u8> {
        let until = deadline();
        while self.fill(until, "the server to end the connection") > 0 {}
        std::mem::take(&mut self.buf)
    }

    /// Reads a whole response: everything until the server closes.
    pub fn read_response(&mut self) -> HttpResponse {
        let bytes = self.read_to_end();
        let at = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| {
                panic!(
                    "no complete HTTP head in {:?}",
                    String::from_utf8_lossy(&bytes)
                )
            });
        let head = String::from_utf8(bytes[..at].to_vec()).expect("an ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_owned();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .map(|l| {
                let (n, v) = l
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad header line {l:?}"));
                (n.trim().to_owned(), v.trim().to_owned())
            })
            .collect();
        let response = HttpResponse {
            status_line,
            status,
            headers,
            body: bytes[at + 4..].to_vec(),
        };
        let length = response
            .header("Content-Length")
            .unwrap_or_else(|| panic!("no Content-Length in {response:?}"));
        assert_eq!(
            length.parse::<usize>().ok(),
            Some(response.body.len()),
            "Content-Length does not match the body of {response:?}"
        );
        response
    }

    /// Sends the opening handshake for `path` and checks the 101; frames
    /// that came with it stay buffered.
    pub fn upgrade(&mut self, path: &str) {
        self.send(upgrade_request(path, "").as_bytes());
        self.expect_101();
    }

    /// Reads and checks a 101 response to a request with [`RFC_KEY`].
    pub fn expect_101(&mut self) {
        let head = self.read_head();
        assert!(
            head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "expected 101, got {head:?}"
        );
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("\r\nupgrade: websocket\r\n"), "{head:?}");
        assert!(lower.contains("\r\nconnection: upgrade\r\n"), "{head:?}");
        assert!(
            head.contains(&format!("\r\nSec-WebSocket-Accept: {RFC_ACCEPT}\r\n")),
            "wrong or missing Sec-WebSocket-Accept in {head:?}"
        );
    }

    /// The next frame from the server; it must not be masked.
    pub fn read_frame(&mut self) -> Frame {
        let until = deadline();
        self.need(2, until, "a frame header");
        let (b0, b1) = (self.buf[0], self.buf[1]);
        assert_eq!(b1 & 0x80, 0, "server frames must not be masked");
        assert_eq!(b0 & 0x70, 0, "reserved bits set in a server frame");
        let (len, header) = match b1 & 0x7f {
            126 => {
                self.need(4, until, "a 16-bit length");
                (u64::from(u16::from_be_bytes([self.buf[2], self.buf[3]])), 4)
            }
            127 => {
                self.need(10, until, "a 64-bit length");
                let mut b = [0; 8];
                b.copy_from_slice(&self.buf[2..10]);
                (u64::from_be_bytes(b), 10)
            }
            n => (u64::from(n), 2),
        };
        let len = usize::try_from(len).expect("a sane length");
        self.need(header + len, until, "a frame payload");
        let payload = self.buf[header..header + len].to_vec();
        self.buf.drain(..header + len);
        Frame {
            fin: b0 & 0x80 != 0,
            opcode: b0 & 0x0f,
            payload,
        }
    }

    /// The next text frame (unfragmented), as a string.
    pub fn read_text(&mut self) -> String {
        let frame = self.read_frame();
        assert!(
            frame.fin && frame.opcode == 1,
            "expected a text frame, got {frame:?}"
        );
        String::from_utf8(frame.payload).expect("valid UTF-8 text")
    }

    /// Chat mode: the next chat message, skipping presence notices.
    pub fn read_chat(&mut self) -> String {
        loop {
            let text = self.read_text();
            if !is_notice(&text) {
                return text;
            }
        }
    }

    /// Reads frames until a close frame, skipping text frames (chat
    /// notices); returns its code and reason.
    pub fn read_close(&mut self) -> (u16, String) {
        loop {
            let frame = self.read_frame();
            match frame.opcode {
                1 if frame.fin => continue,
                8 => {
                    assert!(frame.fin, "fragmented close frame");
                    assert!(
                        frame.payload.len() >= 2,
                        "close frame without a code: {frame:?}"
                    );
                    let code = u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
                    let reason = String::from_utf8(frame.payload[2..].to_vec())
                        .expect("a UTF-8 close reason");
                    return (code, reason);
                }
                _ => panic!("expected a close frame, got {frame:?}"),
            }
        }
    }

    /// The server must end the connection with nothing more to say.
    pub fn expect_eof(&mut self) {
        let until = deadline();
        let n = self.fill(until, "the server to close the TCP connection");
        assert_eq!(
            (n, self.buf.len()),
            (0, 0),
            "expected end of file, got more bytes: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }

    /// Answers a close with the same code (masked, as a client must).
    pub fn send_close(&mut self, code: u16) {
        self.send(&masked(true, 8, &code.to_be_bytes()));
    }

    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// A client of [`all_at_once`]: it sends `s{i}-{n}` lines, reads the room's
/// chat lines, or both.
pub struct Member {
    pub ws: Ws,
    pub sends: bool,
    pub reads: bool,
}

/// Starts every member at once: each sender sends `messages` lines
/// (`s{i}-{n}`, `i` its place among the senders) while each reader reads
/// every sender's lines (notices skipped). Returns what each reader read,
/// in the members' order.
pub fn all_at_once(members: Vec<Member>, messages: usize) -> Vec<Vec<String>> {
    let senders = members.iter().filter(|m| m.sends).count();
    let total = senders * messages;
    let go = Arc::new(std::sync::Barrier::new(members.len()));
    let mut sender = 0;
    let threads: Vec<_> = members
        .into_iter()
        .map(|mut member| {
            let go = go.clone();
            let me = sender;
            sender += usize::from(member.sends);
            std::thread::spawn(move || {
                go.wait();
                if member.sends {
                    for n in 0..messages {
                        ws_send_text(&mut member.ws, &format!("s{me}-{n}"));
                    }
                }
                let lines = match member.reads {
                    true => (0..total).map(|_| ws_chat(&mut member.ws)).collect(),
                    false => Vec::new(),
                };
                // Kept open until every member is done: a socket closed
                // with unread input resets, and the server may then lose
                // lines it had not read yet.
                (member, lines)
            })
        })
        .collect();
    let done: Vec<(Member, Vec<String>)> = threads
        .into_iter()
        .map(|t| t.join().expect("member thread"))
        .collect();
    done.into_iter()
        .filter(|(member, _)| member.reads)
        .map(|(_, lines)| lines)
        .collect()
}

/// Fails, naming the first difference, unless every reader read the same
/// lines in the same order.
pub fn assert_one_order(orders: &[Vec<String>]) {
    let Some((first, rest)) = orders.split_first() else {
        return;
    };
    for (i, order) in rest.iter().enumerate() {
        assert_eq!(
            order.len(),
            first.len(),
            "reader {} read a different count",
            i + 1
        );
        if let Some(at) = first.iter().zip(order).position(|(a, b)| a != b) {
            panic!(
                "reader {} read {:?} where reader 0 read {:?} (line {at} of {})",
                i + 1,
                order[at],
                first[at],
                first.len()
            );
        }
    }
}
