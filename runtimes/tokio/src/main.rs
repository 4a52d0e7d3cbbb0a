//! `tincan-tokio`: the tincan chat server on the tokio runtime.
//!
//! Only what differs between runtimes lives here: how to run and spawn, the
//! timer, and the sockets. The serve loop, the protocol and the chat are in
//! `tincan-server` and the sans-io crates under it.
//!
//! tokio's reactor is edge-triggered and remembers readiness, and its
//! scheduler polls the reactor every 61 tasks, so a connection that used up
//! its budget (see `tincan_server::serve`) only has to yield.

use std::future::Future;
use std::io::{self, ErrorKind, IoSlice};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::process::ExitCode;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use tincan_server::{self as server, IntoStream, Listener, Runtime, Socket};
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

/// The runtime, made once from `--threads` and never dropped (a task that
/// held the last handle would otherwise drop it on a worker, which panics).
#[derive(Debug, Clone, Copy)]
struct Tokio(&'static tokio::runtime::Runtime);

impl Tokio {
    /// One thread: the current-thread scheduler, which runs every task on
    /// the thread that drives the reactor. More: the multi-thread scheduler
    /// with that many workers (the main thread runs only the accept loop).
    fn new(threads: usize) -> io::Result<Self> {
        let mut builder = match threads {
            1 => tokio::runtime::Builder::new_current_thread(),
            _ => tokio::runtime::Builder::new_multi_thread(),
        };
        let runtime = builder
            .worker_threads(threads)
            .thread_name("tincan-worker")
            .enable_all()
            .build()?;
        Ok(Tokio(Box::leak(Box::new(runtime))))
    }
}

impl Runtime for Tokio {
    type Listener = TokioListener;
    type Timer = Timer;

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.0.block_on(future)
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.0.spawn(task);
    }

    fn listener(&self, listener: std::net::TcpListener) -> io::Result<TokioListener> {
        let _context = self.0.enter();
        TcpListener::from_std(listener).map(TokioListener)
    }

    fn timer_at(&self, at: Instant) -> Self::Timer {
        let _context = self.0.enter();
        Timer(Box::pin(tokio::time::sleep_until(at.into())))
    }

    fn reset_timer(&self, timer: &mut Self::Timer, at: Instant) {
        timer.0.as_mut().reset(at.into());
    }

    fn socket(&self, stream: std::net::TcpStream) -> io::Result<TokioSocket> {
        let _context = self.0.enter();
        TcpStream::from_std(stream).map(TokioSocket)
    }
}

/// tokio's `Sleep` (boxed: it is `!Unpin`, and the serve loop moves its
/// timer), polled outside tokio's cooperative budget: out of budget, a
/// `Sleep` is `Pending` without taking the waker, and the serve loop, which
/// polls its timer again only once its time has come, would never hear
/// that it fired.
struct Timer(Pin<Box<Sleep>>);

impl Future for Timer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        pin!(tokio::task::unconstrained(&mut self.0)).poll(cx)
    }
}

struct TokioListener(TcpListener);

impl Listener for TokioListener {
    type Socket = TokioSocket;

    async fn accept(&self) -> io::Result<(TokioSocket, SocketAddr)> {
        let (stream, peer) = self.0.accept().await?;
        Ok((TokioSocket(stream), peer))
    }
}

/// A connection: `poll_read_ready`/`poll_write_ready` and `try_io` take
/// `&self`, as the serve loop wants.
struct TokioSocket(TcpStream);

impl Socket for TokioSocket {
    /// A read that did not fill `buf` emptied the socket: it also clears
    /// tokio's readiness (as a `WouldBlock` from `try_io` does), so the next
    /// read waits for an event instead of a system call that fails (data that
    /// arrived meanwhile brought an event of its own, which stays).
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            let mut emptied = None;
            let read = self.0.try_io(Interest::READABLE, || {
                let n = server::read_socket(&self.0, buf)?;
                if n > 0 && n < buf.len() {
                    emptied = Some(n);
                    return Err(ErrorKind::WouldBlock.into());
                }
                Ok(n)
            });
            match (read, emptied) {
                (_, Some(n)) => return Poll::Ready(Ok(n)),
                (Err(e), None) if e.kind() == ErrorKind::WouldBlock => {}
                (result, None) => return Poll::Ready(result),
            }
        }
    }

    fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self
                .0
                .try_io(Interest::WRITABLE, || server::send_slices(&self.0, slices))
            {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        server::shutdown_socket(&self.0)
    }

    fn into_std(self) -> io::Result<std::net::TcpStream> {
        self.0.into_std()
    }
}

/// For TLS: tokio's stream, seen through the futures-io traits.
impl IntoStream for TokioSocket {
    type Stream = Compat<TcpStream>;

    fn into_stream(self) -> Compat<TcpStream> {
        self.0.compat()
    }
}

fn main() -> ExitCode {
    tincan_server::main("tincan-tokio", Tokio::new)
}
