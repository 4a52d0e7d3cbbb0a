//! `tincan-async-std`: the tincan chat server on the async-std runtime.
//!
//! A thin adapter: it moves bytes between sockets and
//! [`tincan_core::server::Session`]s, arms the timer each session asks for,
//! and carries chat messages between sessions through bounded channels.
//! Everything about the protocol and the chat lives in `tincan-core`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_signal::{Signal, Signals};
use async_std::channel::{self, Receiver, Sender};
use async_std::io::{ReadExt, WriteExt};
use async_std::net::{Shutdown, TcpListener, TcpStream};
use async_std::task;
use futures_lite::future::{self, FutureExt};
use futures_lite::StreamExt;
use tincan_core::chat::Now;
use tincan_core::cli::{self, Command};
use tincan_core::server::{Hub, Log, ReadBuffer, ServerConfig, Session};
use tincan_core::PreparedMessage;

const PROGRAM: &str = "tincan-async-std";

type Outbox = Sender<PreparedMessage>;

/// A pending sleep.
type Alarm = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

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
    match task::block_on(run(config)) {
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
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
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
                task::spawn(serve(stream, peer, shared.clone()));
            }
            Some(Err(e)) => {
                // Out of file descriptors and the like: back off briefly.
                eprintln!("{PROGRAM}: accept failed: {e}");
                task::sleep(Duration::from_millis(100)).await;
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
            task::sleep(grace).await;
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
async fn serve(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let config = &shared.config;
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = (stream.clone(), stream.clone());
    // Unbounded, so that an idle client holds no queue; `forward` bounds it.
    let (outbox, inbox) = channel::unbounded();
    let id = lock(&shared).next_id();
    let mut session = Session::new(id, peer, config);
    let mut buf = ReadBuffer::new();
    let (mut read_open, mut inbox_open) = (true, true);
    let (mut stopping, mut write_shut) = (false, false);
    // The session's timer, re-armed only when its deadline moves earlier: a
    // timer that fires early finds nothing to do and is armed again.
    let (mut timer, mut alarm) = (Box::pin(future::pending::<()>()) as Alarm, None::<Instant>);
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
            let _ = stream.shutdown(Shutdown::Write);
            write_shut = true;
        }
        if let Some(at) = session.poll_timeout().map(|t| shared.start + t) {
            if alarm.is_none_or(|armed| at < armed) {
                timer = Box::pin(task::sleep(at.saturating_duration_since(Instant::now())));
                alarm = Some(at);
            }
        }
        // A socket at its end reads 0 bytes at once, every time: after that,
        // only the writes, the inbox and the timer can wake this task.
        let read = async {
            match read_open {
                true => Wake::Read(reader.read(buf.space()).await),
                false => future::pending().await,
            }
        };
        let write = async {
            match session.poll_transmit() {
                Some(bytes) => Wake::Wrote(writer.write(bytes).await),
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
                    timer.as_mut().await;
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
            Wake::Read(Ok(0) | Err(_)) => {
                read_open = false;
                session.receive_eof();
            }
            Wake::Read(Ok(n)) => session.receive(buf.filled(n)),
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
