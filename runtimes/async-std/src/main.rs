//! `tincan-async-std`: the tincan chat server on the async-std runtime.
//!
//! async-std is discontinued (RUSTSEC-2025-0052; its maintainers point to
//! smol). This binary stays as the proof that the serve loop is runtime-
//! independent; for new deployments pick `tincan-smol`.
//!
//! Only what differs between runtimes lives here: how to run and spawn, the
//! timer, and the sockets. The serve loop, the protocol and the chat are in
//! `tincan-server` and the sans-io crates under it.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};
use std::time::Instant;

use async_std::io::{Read, Write};
use async_std::net::{TcpListener, TcpStream};
use async_std::task;
use tincan_server::{IntoStream, Listener, Runtime, Socket};

#[derive(Debug, Clone, Copy)]
struct AsyncStd;

impl AsyncStd {
    /// Sets the thread count of the global executor that `task::spawn` runs
    /// on, before anything starts it (async-std's own setup comes second and
    /// keeps this one). Its variable `ASYNC_STD_THREAD_COUNT` still wins, as
    /// async-std documents. The main thread runs only the accept loop.
    fn new(threads: usize) -> io::Result<Self> {
        async_global_executor::init_with_config(
            async_global_executor::GlobalExecutorConfig::default()
                .with_env_var("ASYNC_STD_THREAD_COUNT")
                .with_min_threads(threads)
                .with_max_threads(threads)
                .with_thread_name_fn(|| "tincan-worker".into()),
        );
        Ok(AsyncStd)
    }
}

impl Runtime for AsyncStd {
    type Listener = AsyncStdListener;
    /// What `task::sleep` is made of, on the same reactor: it can be moved.
    type Timer = async_io::Timer;

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        task::block_on(future)
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        task::spawn(task);
    }

    fn listener(&self, listener: std::net::TcpListener) -> io::Result<AsyncStdListener> {
        Ok(AsyncStdListener(listener.into()))
    }

    fn timer_at(&self, at: Instant) -> Self::Timer {
        async_io::Timer::at(at)
    }

    fn reset_timer(&self, timer: &mut Self::Timer, at: Instant) {
        timer.set_at(at);
    }

    /// async-std's conversion registers the socket with its reactor and
    /// panics if that fails (the kernel out of memory for an `epoll`
    /// entry): the panic is an error here (the socket is closed), not the
    /// end of the thread that wakes parked connections.
    fn socket(&self, stream: std::net::TcpStream) -> io::Result<AsyncStdSocket> {
        let convert = std::panic::AssertUnwindSafe(|| TcpStream::from(stream));
        std::panic::catch_unwind(convert)
            .map(AsyncStdSocket)
            .map_err(|_| io::Error::other("the reactor did not take the socket"))
    }
}

struct AsyncStdListener(TcpListener);

impl Listener for AsyncStdListener {
    type Socket = AsyncStdSocket;

    async fn accept(&self) -> io::Result<(AsyncStdSocket, SocketAddr)> {
        let (stream, peer) = self.0.accept().await?;
        Ok((AsyncStdSocket(stream), peer))
    }
}

/// async-std reads optimistically: a read tries the socket first and waits
/// for readiness only when it would block.
struct AsyncStdSocket(TcpStream);

impl Socket for AsyncStdSocket {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut &self.0).poll_read(cx, buf)
    }

    fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &self.0).poll_write_vectored(cx, slices)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.0.shutdown(Shutdown::Write)
    }

    /// Removes the socket from the reactor (this task holds its only
    /// handle). async-std makes it blocking again; a parked connection's
    /// socket stays non-blocking.
    fn into_std(self) -> io::Result<std::net::TcpStream> {
        let stream = std::net::TcpStream::try_from(self.0)?;
        stream.set_nonblocking(true)?;
        Ok(stream)
    }
}

impl IntoStream for AsyncStdSocket {
    /// async-std's `TcpStream` implements the futures-io traits.
    type Stream = TcpStream;

    fn into_stream(self) -> TcpStream {
        self.0
    }
}

fn main() -> ExitCode {
    tincan_server::main("tincan-async-std", AsyncStd::new)
}
