//! What the serve loop needs from an async runtime, and nothing more: run a
//! future, spawn a task, a timer, and TCP sockets (the serve loop makes the
//! listening socket itself, with [`listen`], and the runtime takes it over). A binary implements
//! [`Runtime`] for its runtime (about a hundred lines) and hands it to
//! [`crate::main`]; everything else is written once, in [`crate::serve`].
//!
//! Signals have a default implementation on `async-signal`, which works under
//! any runtime; a runtime with its own signal handling may override it.
//!
//! TLS ([`crate::tls`]) is written once too: futures-rustls wraps any
//! futures-io stream, so a runtime's socket only has to be had as one
//! ([`IntoStream`]).

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_signal::{Signal, Signals};
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::{Stream, StreamExt};

/// The signals that stop the server: one item per SIGINT or SIGTERM.
pub type ShutdownSignals = Pin<Box<dyn Stream<Item = ()> + Send>>;

/// The signal that reloads the TLS certificate: one item per SIGHUP.
pub type ReloadSignals = Pin<Box<dyn Stream<Item = ()> + Send>>;

/// An async runtime, as the serve loop uses it.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// A listening TCP socket.
    type Listener: Listener;
    /// A timer that fires once, at the instant it was made for, never
    /// before. Polled `Pending`, it has the waker it was polled with, to
    /// wake when it fires: the serve loop polls it again only once its
    /// time has come (or the task's waker changed).
    type Timer: Future + Send + Unpin + 'static;

    /// Runs `future` to completion on this runtime (the binary's `main`).
    fn block_on<F: Future>(&self, future: F) -> F::Output;

    /// Runs `task` in the background; it is never joined.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static);

    /// Takes over a listening socket (bound, listening and non-blocking:
    /// the serve loop sets its options itself, see [`listen`]).
    fn listener(&self, listener: std::net::TcpListener) -> io::Result<Self::Listener>;

    /// A timer that fires at `at` (at once if that has passed).
    fn timer_at(&self, at: Instant) -> Self::Timer;

    /// Sets `timer`, armed or fired, to fire at `at` instead. By default a
    /// new timer: a runtime that can move one keeps its allocation and
    /// registration.
    fn reset_timer(&self, timer: &mut Self::Timer, at: Instant) {
        *timer = self.timer_at(at);
    }

    /// Takes over a connected socket that [`Socket::into_std`] let go (a
    /// connection waking from `serve/park.rs`): registers it with the
    /// runtime's reactor again. Called from any thread, the parking one
    /// mostly, which is not the runtime's.
    fn socket(&self, stream: TcpStream) -> io::Result<<Self::Listener as Listener>::Socket>;

    /// SIGINT and SIGTERM, as a stream.
    fn shutdown_signals(&self) -> io::Result<ShutdownSignals> {
        let signals = Signals::new([Signal::Int, Signal::Term])?;
        Ok(Box::pin(signals.map(|_| ())))
    }

    /// SIGHUP, as a stream (asked for only when serving TLS, so that
    /// otherwise SIGHUP keeps its default effect).
    fn reload_signals(&self) -> io::Result<ReloadSignals> {
        let signals = Signals::new([Signal::Hup])?;
        Ok(Box::pin(signals.map(|_| ())))
    }
}

/// A listening TCP socket.
pub trait Listener: Send + Sync + 'static {
    /// An accepted connection.
    type Socket: Socket + IntoStream;

    /// The next connection and its peer's address.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Socket, SocketAddr)>> + Send;
}

/// A connected TCP socket. Reads and writes take `&self`, so that one task
/// can wait for both at once.
pub trait Socket: Send + Sync + 'static {
    /// Reads what has arrived into `buf`, or arranges for `cx` to be woken
    /// when something may have; `Ok(0)` is the end of the stream. A poll
    /// rather than a future, so that `buf` is lent for this call only: the
    /// serve loop reads every connection on a thread into one buffer (see
    /// [`crate::read_buffer`]).
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// Writes some of `slices`, in order (one vectored write: see
    /// [`send_slices`]), and returns how
    /// many bytes; or arranges for `cx` to be woken when the socket may take
    /// more. A poll, like [`Socket::poll_read`]: the slices are made on the
    /// stack for each call, so no connection's task holds them (they are a
    /// kilobyte) or allocates a future per write.
    fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;

    /// Shuts the write side (a TCP FIN), once nothing is left to send.
    fn shutdown_write(&self) -> io::Result<()>;

    /// The connection used up its budget for this turn (see
    /// `TURNS_BEFORE_YIELD` in `serve/driver.rs`): its next read should wait until the runtime's
    /// reactor reports the socket readable, so that every other connection's
    /// events are seen first. Nothing to do (the default) where the reactor
    /// runs apart from the tasks and a yield is enough.
    fn defer_read(&self) {}

    /// Whether bytes wait above the kernel (TLS records that a write
    /// accepted but could not send yet): then the serve loop calls
    /// [`Socket::poll_flush`] even with nothing new to write.
    fn wants_flush(&self) -> bool {
        false
    }

    /// Sends what [`Socket::wants_flush`] reported (and, after
    /// [`Socket::shutdown_write`], the end of the stream), or arranges for
    /// `cx` to be woken when it can send more. A poll, like the others: a
    /// connection's task keeps no future for it between polls.
    fn poll_flush(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// The socket, taken out of the runtime's reactor (and its memory
    /// there freed), for an idle connection parked (see `serve/park.rs`);
    /// [`Runtime::socket`] takes it back. Only the listener's plain
    /// sockets are asked (the default is for those that cannot: TLS).
    fn into_std(self) -> io::Result<TcpStream>
    where
        Self: Sized,
    {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// An accepted socket that can also be had as a futures-io byte stream,
/// which is what [`crate::tls`] wraps.
pub trait IntoStream {
    /// The runtime's stream type (smol's `Async<TcpStream>`, async-std's
    /// `TcpStream`).
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static;

    /// The socket as a stream, for TLS.
    fn into_stream(self) -> Self::Stream;
}

/// Writes some of `slices` to a connected socket, in order, with `send`
/// (one slice) or `sendmsg`: socket calls, which skip the file layer that
/// `write` and `writev` go through (`vfs_writev` and `fdget_pos` were 8 % of
/// the server's time in a broadcast to a thousand clients, by `perf`). For
/// a [`Socket::poll_write_vectored`] of a runtime that lets it make the
/// call itself. `MSG_NOSIGNAL`: a peer gone is an error (`EPIPE`), never a
/// signal, whatever the process does with SIGPIPE. `MSG_DONTWAIT`: a full
/// socket is `WouldBlock`, never a wait, even on a socket some runtime left
/// blocking. At most `IOV_MAX` (1024) slices are taken, as `writev` would.
pub fn send_slices(socket: &impl AsFd, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    const IOV_MAX: usize = 1024;
    const FLAGS: libc::c_int = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
    let socket = socket2::SockRef::from(socket);
    match slices {
        [one] => socket.send_with_flags(one, FLAGS),
        _ => {
            let slices = &slices[..slices.len().min(IOV_MAX)];
            socket.send_vectored_with_flags(slices, FLAGS)
        }
    }
}

/// Reads what has arrived on a connected socket into `buf`, for a
/// [`Socket::poll_read`] of a runtime that lets it make the call itself
/// (`WouldBlock` when nothing has). A read that does not fill `buf` emptied
/// the socket: the next one had better wait for readiness.
pub fn read_socket(socket: &impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    (&*socket2::SockRef::from(socket)).read(buf)
}

/// Shuts a connected socket's write side (a TCP FIN): a
/// [`Socket::shutdown_write`] for a runtime whose stream has no call of its
/// own for it.
pub fn shutdown_socket(socket: &impl AsFd) -> io::Result<()> {
    socket2::SockRef::from(socket).shutdown(std::net::Shutdown::Write)
}

/// A listening socket on `addr`, non-blocking, whose accepted sockets have a
/// kernel send buffer of `send_buffer` bytes (`SO_SNDBUF`, inherited from the
/// listener; Linux doubles it) and `TCP_NODELAY` (inherited too: chat
/// messages leave at once, and no adapter sets it per connection). An
/// explicit buffer size also turns off the kernel's autotuning, which would
/// let each client that never reads park megabytes where no budget sees
/// them.
pub fn listen(addr: SocketAddr, send_buffer: usize) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket as RawSocket, Type};
    let socket = RawSocket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_send_buffer_size(send_buffer)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_sockets_inherit_nodelay_from_the_listener() {
        let listener = listen(([127, 0, 0, 1], 0).into(), 64 << 10).expect("listen");
        listener.set_nonblocking(false).expect("blocking");
        let addr = listener.local_addr().expect("address");
        let _client = std::net::TcpStream::connect(addr).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");
        assert!(accepted.nodelay().expect("TCP_NODELAY"));
    }

    /// A connected pair on loopback: the client's end and the accepted one.
    fn socket_pair() -> (TcpStream, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");
        (client, accepted)
    }

    #[test]
    fn sent_slices_arrive_in_order() {
        use std::io::Read;
        let (client, accepted) = socket_pair();
        let one = send_slices(&accepted, &[IoSlice::new(b"one ")]).expect("send");
        let parts = [b"two ".as_slice(), b"", b"three"].map(IoSlice::new);
        let more = send_slices(&accepted, &parts).expect("sendmsg");
        assert_eq!((one, more), (4, 9));
        drop(accepted);
        let mut received = String::new();
        (&client).read_to_string(&mut received).expect("read");
        assert_eq!(received, "one two three");
    }

    #[test]
    fn a_socket_reads_what_arrived_then_would_block_then_its_end() {
        let (client, accepted) = socket_pair();
        accepted.set_nonblocking(true).expect("non-blocking");
        let mut buf = [0u8; 16];
        let empty = read_socket(&accepted, &mut buf).expect_err("nothing yet");
        assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);
        send_slices(&client, &[IoSlice::new(b"hello")]).expect("send");
        // Waits for it from here (a loaded machine may deliver it late).
        accepted.set_nonblocking(false).expect("blocking");
        let wait = Some(std::time::Duration::from_secs(20));
        accepted.set_read_timeout(wait).expect("timeout");
        assert_eq!(read_socket(&accepted, &mut buf).expect("read"), 5);
        assert_eq!(&buf[..5], b"hello");
        shutdown_socket(&client).expect("FIN");
        assert_eq!(read_socket(&accepted, &mut buf).expect("end"), 0);
    }

    #[test]
    fn a_full_socket_is_would_block_even_when_blocking() {
        let (_client, accepted) = socket_pair();
        accepted.set_nonblocking(false).expect("blocking");
        socket2::SockRef::from(&accepted)
            .set_send_buffer_size(4096)
            .expect("SO_SNDBUF");
        // The client reads nothing: the kernels' buffers fill, and a send
        // then fails at once rather than waiting.
        let chunk = vec![0u8; 64 << 10];
        let mut sent = 0;
        let error = loop {
            match send_slices(&accepted, &[IoSlice::new(&chunk)]) {
                Ok(n) => sent += n,
                Err(e) => break e,
            }
            assert!(sent < 64 << 20, "the buffers never filled");
        };
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    }
}
