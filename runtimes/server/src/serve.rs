//! The serve loop, written once for every runtime: accept connections, drive
//! one [`Session`] per socket, carry chat messages between sessions through
//! bounded outboxes, and shut down on SIGINT or SIGTERM (after a drain
//! grace, if one is set, while `/readyz` answers 503). With
//! `--metrics-bind`, a second listener serves only `/metrics`, `/healthz`
//! and `/readyz`. With TLS, each
//! connection task runs its TLS handshake first (under the handshake
//! timeout, never in the accept loop), and SIGHUP reloads the certificate.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_channel::{Receiver, Sender};
use futures_lite::future::{self, FutureExt};
use futures_lite::StreamExt;
use tincan_chat::{Now, RemoteEvent};

use crate::broker::{Broker, Inbound, Side};
use crate::budget::Budget;
use crate::config::ServerConfig;
use crate::fanout::{Fanout, Stripe};
use crate::hub::{lock, Hub};
use crate::log::{self, Log};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::runtime::{self, IntoStream, Listener, Runtime};
use crate::session::{ClientIds, Session, SessionConfig};
use crate::store::Store;
use crate::tls::{self, TlsAcceptor};

mod driver;
mod park;

use driver::{drive, Park};
use park::Parker;

/// What every connection task shares. Once the accept loop and every task
/// have dropped it, `_alive` is gone and shutdown knows all sessions ended.
struct Shared<R: Runtime> {
    runtime: R,
    config: ServerConfig,
    /// What every session reads, one copy for all.
    sessions: Arc<SessionConfig>,
    /// Client ids (taken without the hub's lock: the accept loop takes
    /// them).
    ids: ClientIds,
    hub: Mutex<Hub>,
    /// The rooms' lanes that keep each room's order in every outbox while
    /// rooms fan out in parallel.
    fanout: Fanout,
    /// Held for reading while a session takes chat input and hands what it
    /// led to to the outboxes; taken for writing to stop taking input. So
    /// once shutdown holds it, every message the chat took is in every
    /// recipient's outbox, and none will be taken after.
    gate: RwLock<()>,
    /// The clock origin of every session, so the chat sees one time line.
    start: Instant,
    /// Closed when the server shuts down: for TLS handshakes still running
    /// (the sessions are told through their outboxes: `Budget::stop_all`).
    stop: Receiver<()>,
    /// Bytes queued on all connections together.
    budget: Budget,
    /// The counters of `/metrics`; its open connections are the ones
    /// counted against `--max-clients` before a TLS handshake.
    metrics: Arc<Metrics>,
    /// Connections per IP address, for `max_connections_per_ip`; an address
    /// is forgotten when its last connection ends.
    per_address: Mutex<HashMap<Ipv6Addr, usize>>,
    /// Where idle connections wait without a task.
    parker: Parker<R>,
    _alive: Sender<()>,
}

/// Accepts connections until SIGINT or SIGTERM, then closes every client with
/// 1001 and waits (bounded) for them to finish. An error is a sentence for
/// the user (exit status 1).
pub async fn serve<R: Runtime>(
    program: &str,
    runtime: R,
    config: ServerConfig,
) -> Result<(), String> {
    // Every client is a file descriptor: lift the soft limit (often 1024) to
    // the hard one, or --max-clients would be out of reach.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let mut tls = match &config.tls {
        Some(files) => Some(tls::load(files).map_err(|e| e.to_string())?),
        None => None,
    };
    let addr = SocketAddr::new(config.bind, config.port);
    let listener = runtime::listen(addr, config.socket_send_buffer)
        .and_then(|listener| runtime.listener(listener))
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let ops = match config.metrics_bind {
        Some(addr) => Some(
            runtime::listen(addr, config.socket_send_buffer)
                .and_then(|listener| runtime.listener(listener))
                .map_err(|e| format!("cannot listen on {addr} (--metrics-bind): {e}"))?,
        ),
        None => None,
    };
    let mut signals = runtime
        .shutdown_signals()
        .map_err(|e| format!("cannot handle signals: {e}"))?;
    let mut reloads = match tls {
        Some(_) => Some(
            runtime
                .reload_signals()
                .map_err(|e| format!("cannot handle SIGHUP: {e}"))?,
        ),
        None => None,
    };
    let (level, format) = (config.log_level, config.log_format);
    let tls_on = tls.is_some();
    log::print(
        level,
        format,
        &Log::Listening {
            port: config.port,
            tls: tls_on,
        },
    );
    if let Some(addr) = config.metrics_bind {
        let addr = addr.to_string();
        log::print(level, format, &Log::OpsListening { addr });
    }

    let (stop, stopped) = async_channel::bounded::<()>(1);
    let (alive, all_done) = async_channel::bounded::<()>(1);
    let budget = Budget::new(config.max_queued_bytes);
    let limit = config.max_queued_bytes.unwrap_or(0);
    let mut metrics = Metrics::new(budget.total_gauge(), limit);
    if config.redis.is_some() {
        metrics = metrics.with_redis();
    }
    if config.data_dir.is_some() {
        metrics = metrics.with_store();
    }
    let metrics = Arc::new(metrics);
    let mut hub = Hub::new(config.chat.clone());
    if let Some(dir) = &config.data_dir {
        let (store, histories) =
            Store::open(dir, config.chat.history).map_err(|e| e.to_string())?;
        let path = store.path().display().to_string();
        let mut opened = Log::StoreOpened {
            path,
            rooms: 0,
            entries: 0,
        };
        for (room, entries) in histories {
            let count = entries.len();
            if hub.chat.restore(&room, entries) {
                if let Log::StoreOpened { rooms, entries, .. } = &mut opened {
                    *rooms += 1;
                    *entries += count;
                }
            }
        }
        log::print(level, format, &opened);
        let metrics = metrics.clone();
        let writer = store
            .spawn_writer(config.chat.history, move |line| {
                metrics.record(&line);
                log::print(level, format, &line);
            })
            .map_err(|e| e.to_string())?;
        hub.store = Some(writer);
    }
    let broker = match &config.redis {
        Some(url) => {
            let (broker, snapshot) = Broker::connect(url, config.chat.history)
                .await
                .map_err(|e| e.to_string())?;
            let (first, count) = snapshot.guests;
            hub.chat.reserve_guests(first, count);
            let members = snapshot.presence.len();
            let rooms = snapshot.histories.len();
            for (room, entries) in snapshot.histories {
                hub.chat.restore(&room, entries);
            }
            let start = now(Instant::now());
            for event in snapshot.presence {
                if let Inbound::Remote(who, event) = event {
                    hub.chat.remote(who, event, start);
                }
            }
            let url = url.clone();
            let node = broker.node();
            let line = Log::BrokerConnected {
                url,
                node,
                members,
                rooms,
            };
            metrics.record(&line);
            log::print(level, format, &line);
            Some(broker)
        }
        None => None,
    };
    let parker =
        Parker::new(metrics.clone()).map_err(|e| format!("cannot watch idle connections: {e}"))?;
    let (presence_bell, presence_rung) = async_channel::bounded::<()>(1);
    hub.presence_bell = Some(presence_bell);
    let shared = Arc::new(Shared {
        runtime,
        hub: Mutex::new(hub),
        fanout: Fanout::new(),
        gate: RwLock::new(()),
        sessions: Arc::new(SessionConfig::new(&config, metrics.clone())),
        ids: ClientIds::new(),
        metrics,
        budget,
        config,
        start: Instant::now(),
        stop: stopped,
        per_address: Mutex::new(HashMap::new()),
        parker,
        _alive: alive,
    });
    shared
        .runtime
        .spawn(announce_presence(Arc::downgrade(&shared), presence_rung));
    let link = broker.map(|broker| {
        let side = Arc::new(BrokerSide(Arc::downgrade(&shared)));
        let link = broker.run(&shared.runtime, side);
        lock(&shared.hub).broker = Some(link.clone());
        link
    });
    // Set by the first SIGTERM when there is a drain grace: when it ends.
    let mut drain: Option<R::Timer> = None;
    loop {
        let accepted = async { Accept::Socket(listener.accept().await) }
            .or(async {
                signals.next().await;
                Accept::Stop
            })
            .or(async {
                match &mut reloads {
                    Some(reloads) => {
                        reloads.next().await;
                        Accept::Reload
                    }
                    None => future::pending().await,
                }
            })
            .or(async {
                match &ops {
                    Some(ops) => Accept::Ops(ops.accept().await),
                    None => future::pending().await,
                }
            })
            .or(async {
                match &mut drain {
                    Some(timer) => {
                        timer.await;
                        Accept::Stop
                    }
                    None => future::pending().await,
                }
            });
        match accepted.await {
            Accept::Socket(Ok((socket, peer))) => start(socket, peer, &shared, tls.as_ref()),
            Accept::Ops(Ok((socket, peer))) => {
                let mut session = shared.session(peer);
                session.ops_only();
                shared
                    .runtime
                    .spawn(drive(socket, session, shared.clone(), None, Park::Never));
            }
            Accept::Ops(Err(_)) => {}
            // The first SIGTERM with a grace: not ready any more, and the
            // clients there chat on until the grace ends (or another signal).
            Accept::Stop if drain.is_none() && !shared.config.drain_grace.is_zero() => {
                lock(&shared.hub).drain();
                let grace = shared.config.drain_grace;
                drain = Some(shared.runtime.timer_at(Instant::now() + grace));
                // The WebSocket connections, the ones the 1001 is for; a
                // plain HTTP request still open is not one of them.
                let clients = shared.metrics.websockets();
                shared.log(Log::Draining {
                    clients,
                    grace: grace.as_secs(),
                });
            }
            Accept::Reload => match shared.config.tls.as_ref().map(tls::load) {
                Some(Ok(acceptor)) => {
                    tls = Some(acceptor);
                    let cert = shared.config.tls.as_ref().map(|f| f.cert.display());
                    let cert = cert.map(|c| c.to_string()).unwrap_or_default();
                    shared.log(Log::TlsReloaded { cert });
                }
                Some(Err(e)) => {
                    let error = e.to_string();
                    shared.log(Log::TlsReloadFailed { error });
                }
                None => {}
            },
            Accept::Socket(Err(e)) => {
                // Out of file descriptors and the like: back off briefly.
                eprintln!("{program}: accept failed: {e}");
                let pause = Instant::now() + Duration::from_millis(100);
                shared.runtime.timer_at(pause).await;
            }
            Accept::Stop => break,
        }
    }
    let clients = shared.metrics.websockets();
    shared.log(Log::ShuttingDown { clients });
    // No chat input is taken from here on, and what was taken is in the
    // outboxes (the gate waits for sessions between the two). Each session,
    // told to stop, delivers its outbox before its 1001, so every message
    // taken reaches the whole room, and none taken later reaches a part.
    let store = {
        let _gate = shared.gate.write().unwrap_or_else(PoisonError::into_inner);
        let mut hub = lock(&shared.hub);
        hub.stop();
        hub.store.take()
    };
    shared.budget.stop_all();
    stop.close();
    let grace = Instant::now() + shared.config.connection.close_timeout + Duration::from_secs(1);
    let timer = shared.runtime.timer_at(grace);
    let runtime = shared.runtime.clone();
    drop(shared);
    let _ = all_done
        .recv()
        .or(async {
            timer.await;
            Ok(())
        })
        .await;
    // Every entry taken is written before the process ends.
    if let Some(store) = store {
        store.finish();
    }
    // And the other nodes hear of every leave (bounded: Redis may be gone).
    if let Some(link) = link {
        let timer = runtime.timer_at(Instant::now() + Duration::from_secs(2));
        link.flush()
            .or(async {
                timer.await;
            })
            .await;
    }
    Ok(())
}

/// What woke the accept loop.
enum Accept<S> {
    Socket(io::Result<(S, SocketAddr)>),
    /// A connection to the operations port.
    Ops(io::Result<(S, SocketAddr)>),
    Stop,
    Reload,
}

/// Starts the task of a connection to the public port, over TLS if `tls`
/// is set. It counts against the connection limits from here on, TLS
/// handshake included.
fn start<R: Runtime>(
    socket: <R::Listener as Listener>::Socket,
    peer: SocketAddr,
    shared: &Arc<Shared<R>>,
    tls: Option<&TlsAcceptor>,
) {
    let (counted, total, from_address) = Counted::new(shared, peer.ip());
    let over_address_limit = shared
        .config
        .max_connections_per_ip
        .is_some_and(|max| from_address > max);
    let Some(acceptor) = tls else {
        // Just over the limit, the request gets its 503. Far over it, the
        // connection is closed at once, unanswered: an address that opens
        // connections and sends nothing would otherwise hold as many as it
        // opens in a handshake timeout, each waiting for its request.
        let far_over = shared
            .config
            .max_connections_per_ip
            .is_some_and(|max| from_address > max.saturating_mul(2));
        if far_over {
            // Closed now, logged by a task of its own: the accept loop does
            // not wait for the line (a slow log would slow every accept).
            drop(socket);
            let (runtime, shared) = (shared.runtime.clone(), shared.clone());
            return runtime.spawn(async move {
                let reason = "too many connections from its address";
                let peer = peer.to_string();
                shared.log(Log::ConnectionRefused { peer, reason });
                drop(counted);
            });
        }
        let mut session = shared.session(peer);
        if over_address_limit {
            session.over_address_limit();
        }
        let task = drive(socket, session, shared.clone(), Some(counted), Park::New);
        return shared.runtime.spawn(task);
    };
    // A TLS handshake is the expensive part: past a limit the connection
    // is closed before it, not answered 503 after it (by its task: the
    // accept loop does not wait for the log line).
    let refused = if over_address_limit {
        Some("too many connections from its address")
    } else if total > shared.config.chat.max_clients {
        Some("the server is full")
    } else {
        None
    };
    let task = tls_connection(
        socket,
        peer,
        shared.clone(),
        acceptor.clone(),
        counted,
        refused,
    );
    shared.runtime.spawn(task);
}

/// A connection to the public port, counted in the open connections (of
/// `/metrics`, and against `--max-clients`) and in its address's from when
/// it is accepted until its task ends, however that ends.
struct Counted<R: Runtime> {
    shared: Arc<Shared<R>>,
    /// Its address's key ([`client_key`](crate::session::client_key)).
    key: Ipv6Addr,
}

impl<R: Runtime> Counted<R> {
    /// Counts a connection from `ip` in; also returns how many are open,
    /// in all and from `ip` (from its /64, for IPv6: see
    /// [`client_key`](crate::session::client_key)), with it.
    fn new(shared: &Arc<Shared<R>>, ip: IpAddr) -> (Self, usize, usize) {
        let key = crate::session::client_key(ip);
        let total = shared.metrics.connection_opened();
        let from_address = shared.count_address(key, 1);
        let shared = shared.clone();
        (Self { shared, key }, total, from_address)
    }
}

impl<R: Runtime> Drop for Counted<R> {
    fn drop(&mut self) {
        self.shared.count_address(self.key, -1);
        self.shared.metrics.connection_ended();
    }
}

/// The TLS handshake, then the connection over TLS; or, if `refused` says
/// why, only that line in the log. Its session is made once the handshake
/// is done, so that the task does not hold it twice.
///
/// (An `async move` block rather than an `async fn`: an `async fn`'s
/// future holds its arguments twice, as arguments and as locals.)
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments twice"
)]
fn tls_connection<R: Runtime>(
    socket: <R::Listener as Listener>::Socket,
    peer: SocketAddr,
    shared: Arc<Shared<R>>,
    acceptor: TlsAcceptor,
    counted: Counted<R>,
    refused: Option<&'static str>,
) -> impl Future<Output = ()> + Send {
    async move {
        if let Some(reason) = refused {
            let peer = peer.to_string();
            return shared.log(Log::TlsRefused { peer, reason });
        }
        if let Some(socket) = tls_handshake(&shared, &acceptor, socket, peer).await {
            let session = shared.session(peer);
            drive(socket, session, shared, Some(counted), Park::Never).await;
        }
    }
}

/// Runs the TLS handshake within the handshake timeout (or until shutdown);
/// `None` if it failed, which is logged.
async fn tls_handshake<R: Runtime, S: IntoStream>(
    shared: &Shared<R>,
    acceptor: &TlsAcceptor,
    socket: S,
    peer: SocketAddr,
) -> Option<tls::TlsSocket<S::Stream>> {
    let timeout = shared.config.connection.handshake_timeout;
    let timer = shared.runtime.timer_at(Instant::now() + timeout);
    let handshake = async {
        tls::accept(acceptor, socket.into_stream())
            .await
            .map_err(|e| e.to_string())
    };
    let expired = async {
        timer.await;
        Err(format!("not finished within {} s", timeout.as_secs_f32()))
    };
    let stopped = async {
        let _ = shared.stop.recv().await;
        Err("the server is shutting down".to_owned())
    };
    match handshake.or(expired).or(stopped).await {
        Ok(socket) => Some(socket),
        Err(error) => {
            let peer = peer.to_string();
            shared.log(Log::TlsHandshakeFailed { peer, error });
            None
        }
    }
}

impl<R: Runtime> Shared<R> {
    /// A session, with a fresh id, for a client that connected from `peer`.
    fn session(&self, peer: SocketAddr) -> Session {
        Session::new(self.ids.next(), peer, &self.sessions)
    }

    /// Prints the lines `session` logged.
    fn print_logs(&self, session: &mut Session) {
        while let Some(line) = session.poll_log() {
            log::print(self.config.log_level, self.config.log_format, &line);
        }
    }

    /// Counts a line of the serve loop's own in the metrics, and prints it.
    fn log(&self, line: Log) {
        self.metrics.record(&line);
        log::print(self.config.log_level, self.config.log_format, &line);
    }

    /// Lets `session` handle what happened and hands the chat messages it
    /// led to to their outboxes, inside the gate (see [`Shared::gate`]).
    fn process(&self, session: &mut Session, outbox: &Outbox) {
        // Most turns only wrote or took from the outbox: they need neither
        // the gate (shared by every thread) nor the clocks.
        if !session.has_work() {
            return;
        }
        // An echo server takes no chat input: nothing for shutdown to wait
        // for, and no lock every thread shares to take on every message.
        let _gate =
            (!self.config.echo).then(|| self.gate.read().unwrap_or_else(PoisonError::into_inner));
        // The clocks are read once, by the first event that asks.
        let mut read = None;
        let now = || *read.get_or_insert_with(|| now(self.start));
        session.process(&self.hub, &self.fanout, outbox, now);
    }

    /// Hands the joins and leaves due now to their rooms' outboxes, room
    /// by room, each in its room's turn and inside the gate, as a session
    /// hands out what it said.
    fn announce_due(&self) {
        let _gate = self.gate.read().unwrap_or_else(PoisonError::into_inner);
        loop {
            let mut hub = lock(&self.hub);
            if hub.stopping {
                return;
            }
            let Some((room, out)) = hub.chat.poll_presence(now(self.start)) else {
                return;
            };
            if out.deliveries.is_empty() {
                continue;
            }
            let turn = self.fanout.turn(Stripe::of(&room));
            drop(hub);
            let lane = turn.wait();
            let capacity = self.config.outbox_capacity;
            let (_, delivered) = lane.put(out.deliveries, None, None, capacity);
            self.metrics.deliveries_out.inc_by(delivered);
        }
    }

    /// Counts a connection from the address `key` in (`+1`) or out (`-1`);
    /// returns how many it holds now.
    fn count_address(&self, key: Ipv6Addr, change: isize) -> usize {
        let mut counts = self
            .per_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(key).or_default();
        *count = count.saturating_add_signed(change);
        let now = *count;
        if now == 0 {
            counts.remove(&key);
        }
        now
    }
}

/// Announces joins and leaves once they are due (see
/// [`tincan_chat::ChatConfig::presence_delay`]): sleeps until the chat's
/// next time, or, with none, until a session rings that some wait (see
/// [`Hub::ring_presence`]). Holds the server weakly while it sleeps, so
/// that it never keeps shutdown waiting; ends with it, or once shutdown
/// began (what waits then is moot: every member is being closed).
async fn announce_presence<R: Runtime>(server: Weak<Shared<R>>, rung: Receiver<()>) {
    loop {
        let next = {
            let Some(shared) = server.upgrade() else {
                return;
            };
            let mut hub = lock(&shared.hub);
            if hub.stopping {
                return;
            }
            let next = hub.chat.poll_timeout();
            hub.presence_rung = next.is_some();
            // One past what an `Instant` holds is looked at again in an hour.
            let later = || Instant::now() + Duration::from_secs(3600);
            next.map(|at| {
                let at = shared.start.checked_add(at).unwrap_or_else(later);
                (at, shared.runtime.clone())
            })
        };
        match next {
            None => {
                if rung.recv().await.is_err() {
                    return;
                }
            }
            Some((at, runtime)) => {
                if at > Instant::now() {
                    runtime.timer_at(at).await;
                }
                match server.upgrade() {
                    Some(shared) => shared.announce_due(),
                    None => return,
                }
            }
        }
    }
}

/// The broker's view of the server: applies what other nodes did to the
/// chat and hands the deliveries to the outboxes, as a session does. Holds
/// the server weakly, so that its tasks never keep shutdown waiting.
struct BrokerSide<R: Runtime>(Weak<Shared<R>>);

impl<R: Runtime> Side for BrokerSide<R> {
    fn apply(&self, events: Vec<Inbound>) {
        let Some(shared) = self.0.upgrade() else {
            return;
        };
        let _gate = shared.gate.read().unwrap_or_else(PoisonError::into_inner);
        let now = now(shared.start);
        for event in events {
            let mut hub = lock(&shared.hub);
            if hub.stopping {
                return;
            }
            // The room whose order the output joins (all of them when a
            // node is lost: its members were everywhere).
            let (out, stripe) = match event {
                Inbound::Remote(who, event) => {
                    let room = match &event {
                        RemoteEvent::Joined { room, .. } => Some(room.as_str()),
                        RemoteEvent::Said(appended) => Some(appended.room.as_str()),
                        RemoteEvent::Left | RemoteEvent::Renamed { .. } => {
                            hub.chat.remote_room(who)
                        }
                    };
                    let stripe = room.map(Stripe::of);
                    (hub.chat.remote(who, event, now), stripe)
                }
                Inbound::Lost(node) => (hub.chat.drop_node(node, now), None),
                Inbound::Confirmed(id, nick) => {
                    hub.chat.confirm_nick(id, &nick);
                    continue;
                }
            };
            hub.ring_presence();
            // A local member that lost a nickname race is renamed: the
            // other nodes are told.
            if out.presence.is_some() {
                hub.share(None, out.presence.as_ref());
            }
            if out.deliveries.is_empty() {
                continue;
            }
            // The room's turn, taken in the hub's order and waited for
            // without it, as a session does (see `fanout`); its members'
            // outboxes are there.
            let turn = match stripe {
                Some(stripe) => shared.fanout.turn(stripe),
                None => shared.fanout.turn_of_every_room(),
            };
            drop(hub);
            let room = turn.wait();
            let capacity = shared.config.outbox_capacity;
            let (_, delivered) = room.put(out.deliveries, None, None, capacity);
            shared.metrics.deliveries_out.inc_by(delivered);
        }
    }

    fn members(&self) -> Vec<(u64, String, String)> {
        let Some(shared) = self.0.upgrade() else {
            return Vec::new();
        };
        let hub = lock(&shared.hub);
        hub.chat
            .local_members()
            .map(|(id, room, nick)| (id.0, room.to_owned(), nick.to_owned()))
            .collect()
    }

    fn wants_guests(&self) -> bool {
        let Some(shared) = self.0.upgrade() else {
            return false;
        };
        let wants = lock(&shared.hub)
            .chat
            .wants_guests(crate::broker::GUEST_BLOCK);
        wants
    }

    fn reserve_guests(&self, first: u64, count: u64) {
        if let Some(shared) = self.0.upgrade() {
            lock(&shared.hub).chat.reserve_guests(first, count);
        }
    }

    fn log(&self, line: Log) {
        if let Some(shared) = self.0.upgrade() {
            shared.log(line);
        }
    }
}

/// The time as the session and the chat take it: monotonic since `start`,
/// and the wall clock for the time stamps clients see.
fn now(start: Instant) -> Now {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Now {
        mono: start.elapsed(),
        unix_ms: u64::try_from(unix.as_millis()).unwrap_or(u64::MAX),
    }
}
