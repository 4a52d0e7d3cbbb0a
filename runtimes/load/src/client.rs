//! The connection driver: a TCP socket that writes whatever its [`Peer`] has
//! queued and feeds it whatever arrives. [`WsClient`] puts tincan-core's
//! client role on it; raw TCP modes bring their own [`Peer`].
//!
//! A [`Socket::turn`] writes until the queue is empty or the socket is full,
//! then reads once (up to 64 KiB, into a buffer shared by the thread's
//! connections), waiting for input, for room to write, or for an interrupt
//! (a stop signal, a timer). Reading and writing in one wait means a peer
//! that echoes while we still have plenty to send cannot deadlock us.
//!
//! A `wss://` socket does the same through its [`Tls`] layer; a plain one
//! pays a single check per turn for it.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use smol::{Async, Timer};
use tincan_core::{ClientRequest, CloseCode, Config, Connection, Event, Message, Role};

use crate::tls::Tls;
use crate::url::Target;

/// Bytes read per system call.
const READ_SIZE: usize = 64 * 1024;

/// How long a TCP connect plus the opening handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Message buffers given back to the core per turn. The core searches its
/// spare buffers one by one for every message it assembles, so a pool of
/// thousands (one 64 KiB read of small broadcast messages) costs far more
/// than the allocations it saves; a few per turn keep steady traffic
/// allocation-free and the search short.
const RECYCLE_PER_TURN: usize = 8;

/// How long to wait for the server's answer to our close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

thread_local! {
    /// A read is handed to its connection at once, so every connection of a
    /// thread can share one buffer.
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_SIZE].into_boxed_slice());
}

/// Why a connection ended or never started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The TCP connect failed; `os_error` says why (24 is `EMFILE`).
    Connect {
        /// The OS error number, if there was one.
        os_error: Option<i32>,
        /// What went wrong.
        message: String,
    },
    /// The server refused or broke the handshake, or was too slow.
    Handshake(String),
    /// The connection broke or the server closed it.
    Closed(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect { message, .. } => write!(f, "connect: {message}"),
            Failure::Handshake(m) => write!(f, "handshake: {m}"),
            Failure::Closed(m) => write!(f, "connection: {m}"),
        }
    }
}

/// The protocol state on a socket: bytes to send, and a place for bytes
/// that arrive.
pub trait Peer {
    /// The bytes to write next, if any.
    fn transmit(&self) -> Option<&[u8]>;
    /// `n` bytes of [`Peer::transmit`] were written.
    fn advance(&mut self, n: usize);
    /// Bytes arrived.
    fn receive(&mut self, bytes: &[u8]);
}

impl Peer for Connection {
    fn transmit(&self) -> Option<&[u8]> {
        self.poll_transmit()
    }

    fn advance(&mut self, n: usize) {
        Connection::advance(self, n);
    }

    fn receive(&mut self, bytes: &[u8]) {
        Connection::receive(self, bytes);
    }
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Bytes arrived and were given to the peer.
    Read,
    /// The server closed its side.
    Eof,
    /// The interrupt fired first.
    Interrupted,
}

/// A non-blocking TCP socket.
pub struct Socket {
    io: Async<TcpStream>,
    /// The last read took everything there was.
    drained: bool,
    /// The TLS layer of a `wss://` connection.
    tls: Option<Box<Tls>>,
}

impl Socket {
    /// Connects with Nagle off (every message is latency-sensitive).
    pub async fn connect(addr: SocketAddr) -> Result<Self, Failure> {
        let stream = Async::<TcpStream>::connect(addr)
            .await
            .map_err(|e| Failure::Connect {
                os_error: e.raw_os_error(),
                message: e.to_string(),
            })?;
        let _ = stream.get_ref().set_nodelay(true);
        Ok(Self {
            io: stream,
            drained: false,
            tls: None,
        })
    }

    /// Writes what `peer` has queued, then waits until bytes arrive (given
    /// to `peer`), the server closes, or `interrupt` returns true (it is
    /// polled first, and must arrange a wake-up when it returns false).
    pub async fn turn(
        &mut self,
        peer: &mut impl Peer,
        mut interrupt: impl FnMut(&mut Context<'_>) -> bool,
    ) -> io::Result<Turn> {
        poll_fn(|cx| {
            if interrupt(cx) {
                return Poll::Ready(Ok(Turn::Interrupted));
            }
            if let Some(tls) = self.tls.as_deref_mut() {
                return poll_tls(&self.io, &mut self.drained, tls, peer, cx);
            }
            // Write until done or full; when full, also wait for room.
            while let Some(bytes) = peer.transmit() {
                match (&mut self.io.get_ref()).write(bytes) {
                    Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Ok(n) => peer.advance(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        match self.io.poll_writable(cx) {
                            Poll::Ready(Ok(())) => continue,
                            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                            Poll::Pending => break,
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            let io = &self.io;
            poll_read(io, &mut self.drained, cx, |buf| {
                let n = (&mut io.get_ref()).read(buf)?;
                peer.receive(&buf[..n]);
                Ok(n)
            })
        })
        .await
    }
}

/// [`Socket::turn`] through a TLS layer: the same steps, ciphertext on the
/// socket and plaintext to and from `peer`.
fn poll_tls(
    io: &Async<TcpStream>,
    drained: &mut bool,
    tls: &mut Tls,
    peer: &mut impl Peer,
    cx: &mut Context<'_>,
) -> Poll<io::Result<Turn>> {
    loop {
        match tls.write(peer, io.get_ref()) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => match io.poll_writable(cx) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
    if tls.is_closed() {
        return Poll::Ready(Ok(Turn::Eof));
    }
    // A read of handshake records gives the peer nothing, but rustls may
    // then have something to send: the next turn writes it.
    poll_read(io, drained, cx, |buf| tls.read(io.get_ref(), buf, peer))
}

/// The reading half of a turn: reads once with `read` (into the thread's
/// buffer; it hands the bytes on and says how many it read), waiting for the
/// socket first when the last read emptied it.
fn poll_read(
    io: &Async<TcpStream>,
    drained: &mut bool,
    cx: &mut Context<'_>,
    mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
) -> Poll<io::Result<Turn>> {
    loop {
        if *drained {
            // The last read emptied the socket: a read now would most
            // likely find nothing, so wait for word that it won't.
            match io.poll_readable(cx) {
                Poll::Ready(Ok(())) => *drained = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let result = READ_BUF.with_borrow_mut(|buf| {
            let n = read(buf)?;
            Ok::<_, io::Error>((n, n < buf.len()))
        });
        match result {
            Ok((0, _)) => return Poll::Ready(Ok(Turn::Eof)),
            Ok((_, emptied)) => {
                *drained = emptied;
                return Poll::Ready(Ok(Turn::Read));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => *drained = true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// An interrupt that fires when `timer` does.
pub fn timer_fired(timer: &mut Timer) -> impl FnMut(&mut Context<'_>) -> bool + '_ {
    move |cx| Pin::new(&mut *timer).poll(cx).is_ready()
}

/// A WebSocket connection: a socket driven by a [`Connection`] in the
/// client role.
pub struct WsClient {
    socket: Socket,
    /// The protocol state; the caller queues messages on it and polls its
    /// events after each [`WsClient::turn`].
    pub conn: Connection,
    /// Buffers given back since the last turn.
    recycled: usize,
}

impl WsClient {
    /// Connects and completes the opening handshake (§4.1), and for
    /// `wss://` the TLS handshake before it, within 10 s.
    /// `seed` makes the key and the masking keys: a load tool needs variety,
    /// not secrecy.
    pub async fn connect(target: &Target, seed: u64) -> Result<Self, Failure> {
        let mut deadline = Timer::after(CONNECT_TIMEOUT);
        let timed_out = || Failure::Handshake("no answer within 10 s".into());
        let socket = smol::future::or(Socket::connect(target.addr), async {
            (&mut deadline).await;
            Err(timed_out())
        })
        .await?;
        let mut socket = socket;
        if let Some(tls) = &target.tls {
            let tls = tls
                .connect()
                .map_err(|e| Failure::Handshake(e.to_string()))?;
            socket.tls = Some(Box::new(tls));
        }
        let config = Config {
            // Whatever the server sends, and whatever a run queues.
            max_frame_size: 1 << 30,
            max_message_size: 1 << 30,
            max_send_queue: 1 << 31,
            // Pings are answered (the core queues pongs), never sent.
            ping_interval: None,
            mask_seed: seed,
            deflate: target.deflate,
            ..Config::default()
        };
        let mut conn = Connection::new(Role::Client, config);
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&seed.to_le_bytes());
        nonce[8..].copy_from_slice(&seed.rotate_left(29).to_le_bytes());
        conn.connect(ClientRequest::new(&target.host, &target.path, nonce))
            .map_err(|e| Failure::Handshake(e.to_string()))?;
        let mut client = Self {
            socket,
            conn,
            recycled: 0,
        };
        loop {
            if !client
                .turn(timer_fired(&mut deadline))
                .await
                .map_err(|e| Failure::Handshake(e.to_string()))?
            {
                return Err(timed_out());
            }
            while let Some(event) = client.conn.poll_event() {
                match event {
                    Event::Open { .. } => return Ok(client),
                    Event::Error(e) => return Err(Failure::Handshake(e.to_string())),
                    Event::Closed { .. } => {
                        return Err(Failure::Handshake("closed during the handshake".into()))
                    }
                    _ => {}
                }
            }
        }
    }

    /// One [`Socket::turn`]: `Ok(true)` when bytes arrived (poll the events),
    /// `Ok(false)` when `interrupt` fired.
    pub async fn turn(
        &mut self,
        interrupt: impl FnMut(&mut Context<'_>) -> bool,
    ) -> Result<bool, Failure> {
        self.recycled = 0;
        match self.socket.turn(&mut self.conn, interrupt).await {
            Ok(Turn::Read) => Ok(true),
            Ok(Turn::Interrupted) => Ok(false),
            Ok(Turn::Eof) => {
                self.conn.receive_eof();
                Err(Failure::Closed("the server closed the connection".into()))
            }
            Err(e) => Err(Failure::Closed(e.to_string())),
        }
    }

    /// Done with a message: its buffer goes back to the core for the next
    /// ones (a few per turn, see [`RECYCLE_PER_TURN`]) or is freed.
    pub fn recycle(&mut self, message: Message) {
        if self.recycled < RECYCLE_PER_TURN {
            self.recycled += 1;
            self.conn.recycle(message);
        }
    }

    /// The socket alone, for a client that frames its own messages from
    /// now on (see [`crate::raw_frames`]): only between messages, with
    /// nothing queued, held or unread in the core.
    pub fn into_socket(self) -> Result<Socket, Failure> {
        let conn = &self.conn;
        if conn.buffered_amount() > 0 || conn.buffered_incoming() > 0 || conn.has_pending_events() {
            return Err(Failure::Handshake(
                "the server sent frames before any message: not an echo server".into(),
            ));
        }
        Ok(self.socket)
    }

    /// Sends a normal close (1000) and waits briefly for the server's.
    pub async fn close(mut self) {
        if self.conn.close(CloseCode::Normal, "").is_err() {
            return;
        }
        let mut timer = Timer::after(CLOSE_TIMEOUT);
        while let Ok(true) = self.turn(timer_fired(&mut timer)).await {
            while self.conn.poll_event().is_some() {}
            if self.conn.is_closed() {
                break;
            }
        }
    }
}

/// A failure from a server-side close or protocol error event.
pub fn closed_by_server(code: CloseCode, reason: &str) -> Failure {
    Failure::Closed(format!("closed by the server: {} {reason}", code.as_u16()))
}
