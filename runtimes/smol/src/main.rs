//! `tincan-smol`: the tincan chat server on the smol runtime.
//!
//! Only what differs between runtimes lives here: how to run and spawn, the
//! timer, and the sockets. The serve loop, the protocol and the chat are in
//! `tincan-server` and the sans-io crates under it.

use std::future::Future;
use std::io::{self, ErrorKind, IoSlice};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{ready, Context, Poll};
use std::time::Instant;

use smol::{Async, Executor, Timer};
use tincan_server::{self as server, IntoStream, Listener, Runtime, Socket};

/// The executor of every connection, run by the main thread and by
/// `--threads` - 1 more. Each of them drives the reactor itself when it runs
/// out of tasks, so with one thread a socket event wakes its task without a
/// thread switch. One executor on N threads rather than a thread per core
/// with its own `SO_REUSEPORT` listener: the chat hub is shared by every
/// connection anyway, and an idle thread steals work from a busy one, where
/// the kernel's hash of the peer's address would pin a busy room's clients
/// to whatever thread they landed on.
static EXECUTOR: Executor<'static> = Executor::new();

#[derive(Debug, Clone, Copy)]
struct Smol;

impl Smol {
    /// Starts `threads` - 1 threads on the executor; the main thread is the
    /// last (see [`Runtime::block_on`]).
    fn new(threads: usize) -> io::Result<Self> {
        for _ in 1..threads {
            std::thread::Builder::new()
                .name("tincan-worker".into())
                .spawn(|| smol::block_on(EXECUTOR.run(smol::future::pending::<()>())))?;
        }
        Ok(Smol)
    }
}

impl Runtime for Smol {
    type Listener = SmolListener;
    type Timer = Timer;

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        smol::block_on(EXECUTOR.run(future))
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        EXECUTOR.spawn(task).detach();
    }

    fn listener(&self, listener: TcpListener) -> io::Result<SmolListener> {
        Async::new(listener).map(SmolListener)
    }

    fn timer_at(&self, at: Instant) -> Timer {
        Timer::at(at)
    }

    fn reset_timer(&self, timer: &mut Timer, at: Instant) {
        timer.set_at(at);
    }

    fn socket(&self, stream: TcpStream) -> io::Result<SmolSocket> {
        Async::new(stream).map(SmolSocket::new)
    }
}

struct SmolListener(Async<TcpListener>);

impl Listener for SmolListener {
    type Socket = SmolSocket;

    async fn accept(&self) -> io::Result<(SmolSocket, SocketAddr)> {
        let (stream, peer) = self.0.accept().await?;
        Ok((SmolSocket::new(stream), peer))
    }
}

/// A connection that reads only when it may find bytes: a read that did not
/// fill the buffer emptied the socket, so the next one waits for readiness
/// first instead of making a system call that fails. (smol's `Async` can wait
/// for readiness alone; async-std's `TcpStream` cannot.)
struct SmolSocket {
    stream: Async<TcpStream>,
    may_read: AtomicBool,
}

impl SmolSocket {
    fn new(stream: Async<TcpStream>) -> Self {
        let may_read = AtomicBool::new(true);
        Self { stream, may_read }
    }
}

impl Socket for SmolSocket {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            if !self.may_read.load(Ordering::Relaxed) {
                // The socket's own waker slot, which stays registered
                // between turns: `readable()`'s future unregisters on drop,
                // and re-arming epoll on every turn was 1.5 `epoll_ctl` per
                // broadcast delivery.
                ready!(self.stream.poll_readable(cx))?;
            }
            match server::read_socket(self.stream.get_ref(), buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.may_read.store(false, Ordering::Relaxed);
                }
                Ok(n) => {
                    self.may_read.store(n == buf.len(), Ordering::Relaxed);
                    return Poll::Ready(Ok(n));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            match server::send_slices(self.stream.get_ref(), slices) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    ready!(self.stream.poll_writable(cx))?;
                }
                result => return Poll::Ready(result),
            }
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        server::shutdown_socket(self.stream.get_ref())
    }

    /// The executor polls the reactor only when it runs out of tasks (or
    /// every 200 of them): a task that merely yields would keep the others'
    /// socket events waiting.
    fn defer_read(&self) {
        self.may_read.store(false, Ordering::Relaxed);
    }

    fn into_std(self) -> io::Result<TcpStream> {
        self.stream.into_inner()
    }
}

/// For TLS: `Async<TcpStream>` is a futures-io stream as it is.
impl IntoStream for SmolSocket {
    type Stream = Async<TcpStream>;

    fn into_stream(self) -> Async<TcpStream> {
        self.stream
    }
}

fn main() -> ExitCode {
    tincan_server::main("tincan-smol", Smol::new)
}
