//! `tincan-smol`: the tincan chat server on the smol runtime.
//!
//! A thin adapter: it moves bytes between sockets and
//! [`tincan_core::server::Session`]s, arms the timer each session asks for,
//! and carries chat messages between sessions through bounded channels.
//! Everything about the protocol and the chat lives in `tincan-core`.

use std::io::{ErrorKind, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_signal::{Signal, Signals};
use smol::channel::{self, Receiver, Sender};
use smol::future::{self, FutureExt};
use smol::io::AsyncWriteExt;
use smol::stream::StreamExt;
use smol::{Async, Executor, Timer};
use tincan_core::chat::Now;
use tincan_core::cli::{self, Command};
use tincan_core::server::{Hub, Log, ReadBuffer, ServerConfig, Session};
use tincan_core::PreparedMessage;

const PROGRAM: &str = "tincan-smol";

type Outbox = Sender<PreparedMessage>;

static EXECUTOR: Executor<'static> = Executor::new();

/// What every connection task shares. Once the accept loop and every task
/// have dropped it, `_alive` is gone and shutdown knows all sessions ended.
struct Shared {
    config: ServerConfig,
    hub: Mutex<Hub<Outbox>>,
    /// The clock origin of every session, so the chat sees one time line.
    start: Instant,
    /// Closed to tell every session to shut down.
    stop: Receiver<()>,
    _alive: Sender<()>,
}

fn main() -> ExitCode {
    let config = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(config)) => *config,
        Ok(Command::Help) => {
            print!("{}", cli::usage(PROGRAM));
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("{PROGRAM} {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{PROGRAM}: error: {e}\nTry '{PROGRAM} --help' for usage.");
            return ExitCode::from(2);
        }
    };
    // One thread runs every connection and drives the reactor itself, so a
    // socket event wakes its task without a thread switch.
    match smol::block_on(EXECUTOR.run(run(config))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{PROGRAM}: error: {message}");
            ExitCode::from(1)
        }
    }
}

/// Accepts connections until SIGINT or SIGTERM, then closes every client with
/// 1001 and waits (bounded) for them to finish.
async fn run(config: ServerConfig) -> Result<(), String> {
    // Every client is a file descriptor: lift the soft limit (often 1024) to
    // the hard one, or --max-clients would be out of reach.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let addr = SocketAddr::new(config.bind, config.port);
    let listener =
        Async::<TcpListener>::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let mut signals = Signals::new([Signal::Int, Signal::Term])
        .map_err(|e| format!("cannot handle signals: {e}"))?;
    log(&config, &Log::Listening { port: config.port });

    let (stop, stopped) = channel::bounded::<()>(1);
    let (alive, all_done) = channel::bounded::<()>(1);
    let shared = Arc::new(Shared {
        hub: Mutex::new(Hub::new(config.chat.clone())),
        config,
        start: Instant::now(),
        stop: stopped,
        _alive: alive,
    });
    loop {
        let accepted = async { Some(listener.accept().await) }.or(async {
            signals.next().await;
            None
        });
        match accepted.await {
            Some(Ok((stream, peer))) => {
                EXECUTOR.spawn(serve(stream, peer, shared.clone())).detach();
            }
            Some(Err(e)) => {
                // Out of file descriptors and the like: back off briefly.
                eprintln!("{PROGRAM}: accept failed: {e}");
                Timer::after(Duration::from_millis(100)).await;
            }
            None => break,
        }
    }
    let clients = lock(&shared).len();
    log(&shared.config, &Log::ShuttingDown { clients });
    stop.close();
    let grace = shared.config.connection.close_timeout + Duration::from_secs(1);
    drop(shared);
    let _ = all_done
        .recv()
        .or(async {
            Timer::after(grace).await;
            Ok(())
        })
        .await;
    Ok(())
}

enum Wake {
    Read(std::io::Result<usize>),
    Wrote(std::io::Result<usize>),
    Inbox(Result<PreparedMessage, channel::RecvError>),
    Stop,
    Timer,
}

/// Drives one connection until its session is finished.
async fn serve(stream: Async<TcpStream>, peer: SocketAddr, shared: Arc<Shared>) {
    let config = &shared.config;
    let _ = stream.get_ref().set_nodelay(true);
    // Unbounded, so that an idle client holds no queue; `forward` bounds it.
    let (outbox, inbox) = channel::unbounded();
    let id = lock(&shared).next_id();
    let mut session = Session::new(id, peer, config);
    let mut buf = ReadBuffer::new();
    let (mut read_open, mut inbox_open) = (true, true);
    // Whether a read may find bytes without waiting for the socket to say
    // so. A read that did not fill the buffer emptied the socket: trying
    // again before readiness would only cost a system call that fails.
    // (smol's `Async` can wait for readiness alone; async-std's `TcpStream`
    // cannot, which is why the async-std adapter reads optimistically.)
    let mut may_read = true;
    let (mut stopping, mut write_shut) = (false, false);
    // The session's timer, re-armed only when its deadline moves earlier: a
    // timer that fires early finds nothing to do and is armed again.
    let (mut timer, mut alarm) = (Timer::never(), None::<Instant>);
    loop {
        forward(
            session.process(&shared.hub, &outbox, now(shared.start)),
            config.outbox_capacity,
        );
        while let Some(line) = session.poll_log() {
            log(config, &line);
        }
        if session.is_finished() {
            break;
        }
        if session.is_closed() && session.poll_transmit().is_none() && !write_shut {
            let _ = stream.get_ref().shutdown(Shutdown::Write);
            write_shut = true;
        }
        if let Some(at) = session.poll_timeout().map(|t| shared.start + t) {
            if alarm.is_none_or(|armed| at < armed) {
                timer.set_at(at);
                alarm = Some(at);
            }
        }
        // A socket at its end reads 0 bytes at once, every time: after that,
        // only the writes, the inbox and the timer can wake this task.
        let read = async {
            if !read_open {
                return future::pending().await;
            }
            if !may_read {
                if let Err(e) = stream.readable().await {
                    return Wake::Read(Err(e));
                }
            }
            Wake::Read(stream.get_ref().read(buf.space()))
        };
        let write = async {
            match session.poll_transmit() {
                Some(bytes) => Wake::Wrote((&stream).write(bytes).await),
                None => future::pending().await,
            }
        };
        let message = async {
            match inbox_open {
                true => Wake::Inbox(inbox.recv().await),
                false => future::pending().await,
            }
        };
        let stop = async {
            match stopping {
                false => {
                    let _ = shared.stop.recv().await;
                    Wake::Stop
                }
                true => future::pending().await,
            }
        };
        let timer = async {
            match alarm {
                Some(_) => {
                    (&mut timer).await;
                    Wake::Timer
                }
                None => future::pending().await,
            }
        };
        let wake = future::race(
            future::race(read, write),
            future::race(message, stop.or(timer)),
        )
        .await;
        match wake {
            Wake::Read(Err(e)) if e.kind() == ErrorKind::WouldBlock => may_read = false,
            Wake::Read(Ok(0) | Err(_)) => {
                read_open = false;
                session.receive_eof();
            }
            Wake::Read(Ok(n)) => {
                may_read = n == buf.space().len();
                session.receive(buf.filled(n));
            }
            Wake::Wrote(Ok(n)) => session.advance(n),
            Wake::Wrote(Err(_)) => break,
            Wake::Inbox(Ok(message)) => {
                // Take what else is waiting too (the outbox is bounded), so
                // that it all leaves in one write.
                session.deliver(&message);
                while let Ok(message) = inbox.try_recv() {
                    session.deliver(&message);
                }
            }
            Wake::Inbox(Err(_)) => {
                inbox_open = false;
                session.outbox_closed();
            }
            Wake::Stop => {
                stopping = true;
                session.shutdown();
            }
            Wake::Timer => {
                alarm = None;
                session.handle_timeout(shared.start.elapsed());
            }
        }
    }
    // The socket is done or broken: make sure the chat forgets this client.
    session.receive_eof();
    forward(
        session.process(&shared.hub, &outbox, now(shared.start)),
        config.outbox_capacity,
    );
    while let Some(line) = session.poll_log() {
        log(config, &line);
    }
}

/// Hands chat messages to other clients' outboxes without waiting: a full
/// outbox means that client is too slow, and closing it tells it so.
fn forward(messages: Vec<(Outbox, PreparedMessage)>, capacity: usize) {
    for (outbox, message) in messages {
        if outbox.len() >= capacity || outbox.try_send(message).is_err() {
            outbox.close();
        }
    }
}

fn now(start: Instant) -> Now {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Now {
        mono: start.elapsed(),
        unix_ms: u64::try_from(unix.as_millis()).unwrap_or(u64::MAX),
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, Hub<Outbox>> {
    shared.hub.lock().unwrap_or_else(PoisonError::into_inner)
}

fn log(config: &ServerConfig, line: &Log) {
    if line.level() <= config.log_level {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        println!("{}", line.render(now.as_secs()));
    }
}
