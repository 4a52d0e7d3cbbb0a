//! What the serve loop needs from an async runtime, and nothing more: run a
//! future, spawn a task, a timer, and TCP sockets. A binary implements
//! [`Runtime`] for its runtime (about a hundred lines) and hands it to
//! [`crate::main`]; everything else is written once, in [`crate::serve`].
//!
//! Signals have a default implementation on `async-signal`, which works under
//! any runtime; a runtime with its own signal handling may override it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Instant;

use async_signal::{Signal, Signals};
use futures_lite::{Stream, StreamExt};

/// The signals that stop the server: one item per SIGINT or SIGTERM.
pub type ShutdownSignals = Pin<Box<dyn Stream<Item = ()> + Send>>;

/// An async runtime, as the serve loop uses it.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// A listening TCP socket.
    type Listener: Listener;
    /// A timer that fires once, at the instant it was made for.
    type Timer: Future + Send + Unpin + 'static;

    /// Runs `future` to completion on this runtime (the binary's `main`).
    fn block_on<F: Future>(&self, future: F) -> F::Output;

    /// Runs `task` in the background; it is never joined.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static);

    /// Listens on `addr`.
    fn bind(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>>;

    /// A timer that fires at `at` (at once if that has passed).
    fn timer_at(&self, at: Instant) -> Self::Timer;

    /// SIGINT and SIGTERM, as a stream.
    fn shutdown_signals(&self) -> io::Result<ShutdownSignals> {
        let signals = Signals::new([Signal::Int, Signal::Term])?;
        Ok(Box::pin(signals.map(|_| ())))
    }
}

/// A listening TCP socket.
pub trait Listener: Send + Sync + 'static {
    /// An accepted connection.
    type Socket: Socket;

    /// The next connection and its peer's address.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Socket, SocketAddr)>> + Send;
}

/// A connected TCP socket. Reads and writes take `&self`, so that one task
/// can wait for both at once.
pub trait Socket: Send + Sync + 'static {
    /// Reads what has arrived into `buf`; `Ok(0)` is the end of the stream.
    fn read(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>> + Send;

    /// Writes some of `bytes`; returns how many.
    fn write(&self, bytes: &[u8]) -> impl Future<Output = io::Result<usize>> + Send;

    /// Shuts the write side (a TCP FIN), once nothing is left to send.
    fn shutdown_write(&self) -> io::Result<()>;

    /// The connection used up its budget for this turn (see
    /// [`crate::serve`]): its next read should wait until the runtime's
    /// reactor reports the socket readable, so that every other connection's
    /// events are seen first. Nothing to do (the default) where the reactor
    /// runs apart from the tasks and a yield is enough.
    fn defer_read(&self) {}
}
