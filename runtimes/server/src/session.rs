//! The chat server's application logic for one connection, shared by every
//! runtime: routing the HTTP request, accepting the upgrade, feeding the chat,
//! answering in echo mode, and the log lines.
//!
//! A runtime owns one [`Session`] per socket, its [`Outbox`], and one [`Hub`]
//! in a mutex beside the rooms' lanes ([`Fanout`]). It feeds bytes and time
//! into the session, calls [`Session::process`] (which takes the hub only to
//! decide each chat operation, then, in the room's turn, hands what it led
//! to to the other members' outboxes; a full one is closed, never waited
//! on), delivers what its own outbox gets, and writes what
//! [`Session::poll_transmit`] gives.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tincan_chat::{self as chat, ClientId, Format, Now, Output};
use tincan_core::{
    CloseCode, Config, Connection, Error, Event, Message, PreparedMessage, ProtocolError, Request,
    Role, SendError,
};

use crate::config::ServerConfig;
use crate::fanout::{Fanout, Stripe};
use crate::hub::{lock, Hub};
use crate::log::{Log, LogLevel};
use crate::metrics::{self, Metrics, Sample};
use crate::origin::OriginPolicy;
use crate::outbox::Outbox;
use crate::page;

/// A message on its way to a client's task, with the latency sample it
/// carries, if it is the one message in [`metrics::SAMPLE_EVERY`] timed.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The message, encoded once for every recipient.
    pub message: PreparedMessage,
    /// Held until the message is written.
    pub sample: Option<Arc<Sample>>,
}

/// What a chat operation did to the client's membership of its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Membership {
    Same,
    Joined,
    Left,
}

/// `Retry-After` (seconds) on the 503 that refuses an upgrade while the
/// server drains: by then a balancer has stopped sending clients here.
const RETRY_AFTER: &str = "5";

/// Samples a client's task holds at most; past it the oldest is let go
/// (recorded early) rather than kept for a client whose queue never empties.
const MAX_SAMPLES: usize = 64;

/// Gives out client ids, each once: the serve loop holds one for every
/// session it makes.
#[derive(Debug)]
pub struct ClientIds(AtomicU64);

impl ClientIds {
    /// Ids from 1.
    pub const fn new() -> Self {
        Self(AtomicU64::new(1))
    }

    /// An id not given out before.
    pub fn next(&self) -> ClientId {
        ClientId(self.0.fetch_add(1, Ordering::Relaxed))
    }
}

impl Default for ClientIds {
    fn default() -> Self {
        Self::new()
    }
}

/// What every session of a server reads and none changes, made once
/// ([`SessionConfig::new`]) and shared: each connection holds one pointer
/// to it, not a copy of each setting.
#[derive(Debug)]
pub struct SessionConfig {
    /// [`ServerConfig::client_connection`], every connection's limits.
    connection: Arc<Config>,
    echo: bool,
    origins: OriginPolicy,
    /// [`ServerConfig::outbox_capacity`]: a client with more waiting is
    /// too slow, and closed.
    outbox_capacity: usize,
    idle_timeout: Option<Duration>,
    /// Lines above this level are never made, so a quiet server does not
    /// copy every message into a log line.
    log_level: LogLevel,
    /// `GET /metrics` is served on the public port (not when
    /// `--metrics-bind` moved it).
    serves_metrics: bool,
    metrics: Arc<Metrics>,
}

impl SessionConfig {
    /// The settings of `config`'s sessions, which count into `metrics`.
    pub fn new(config: &ServerConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            connection: Arc::new(config.client_connection()),
            echo: config.echo,
            origins: config.origins.clone(),
            outbox_capacity: config.outbox_capacity,
            idle_timeout: config.idle_timeout,
            log_level: config.log_level,
            serves_metrics: config.metrics_bind.is_none(),
            metrics,
        }
    }
}

/// One client connection of the chat server.
#[derive(Debug)]
pub struct Session {
    id: ClientId,
    peer: SocketAddr,
    conn: Connection,
    config: Arc<SessionConfig>,
    /// Its address holds more connections than allowed: every request gets
    /// 503.
    over_address_limit: bool,
    joined: bool,
    /// The lock of its room, held while its chat output is handed out.
    stripe: Stripe,
    /// The handshake completed: counted in the open WebSocket connections
    /// until the session is dropped.
    upgraded: bool,
    /// Monotonic time of the last chat message (or of joining).
    last_input: Duration,
    /// Made when there is a log line or a sample, and dropped when the
    /// client is quiet.
    pending: Option<Box<Pending>>,
    /// The operations port: only `/metrics`, `/healthz` and `/readyz`.
    ops_only: bool,
}

/// What a session holds for the serve loop while there is traffic: log
/// lines not yet taken, and the latency samples of messages queued but not
/// yet written.
#[derive(Debug, Default)]
struct Pending {
    logs: VecDeque<Log>,
    samples: VecDeque<Arc<Sample>>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.logs.is_empty() && self.samples.is_empty()
    }
}

impl Session {
    /// A session for a client that connected from `peer`.
    pub fn new(id: ClientId, peer: SocketAddr, config: &Arc<SessionConfig>) -> Self {
        Self {
            id,
            peer,
            conn: Connection::new(Role::Server, config.connection.clone()),
            config: config.clone(),
            over_address_limit: false,
            joined: false,
            stripe: Stripe::of(""),
            upgraded: false,
            last_input: Duration::ZERO,
            pending: None,
            ops_only: false,
        }
    }

    /// The client's id in the chat.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// Where the client connected from.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// A connection to the operations port (`--metrics-bind`): it serves
    /// only `/metrics`, `/healthz` and `/readyz`.
    pub fn ops_only(&mut self) {
        self.ops_only = true;
    }

    /// Whether `GET /metrics` is answered here.
    fn serves_metrics(&self) -> bool {
        self.ops_only || self.config.serves_metrics
    }

    /// The client's address holds more connections than
    /// [`ServerConfig::max_connections_per_ip`]: its request gets 503.
    pub fn over_address_limit(&mut self) {
        self.over_address_limit = true;
    }

    /// Bytes from the client.
    pub fn receive(&mut self, bytes: &[u8]) {
        self.conn.receive(bytes);
    }

    /// The client closed its side.
    pub fn receive_eof(&mut self) {
        self.conn.receive_eof();
    }

    /// When [`Session::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let idle = self.idle_deadline();
        match (self.conn.poll_timeout(), idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Tells the session the monotonic time: keepalive, handshake and close
    /// timers, and the idle timeout.
    pub fn handle_timeout(&mut self, now: Duration) {
        self.conn.handle_timeout(now);
        if self.idle_deadline().is_some_and(|at| now >= at) {
            self.log(Log::Idle {
                peer: self.peer.to_string(),
            });
            let _ = self.conn.close(CloseCode::GoingAway, "idle timeout");
        }
    }

    /// A chat message from another session, taken from this client's outbox.
    pub fn deliver(&mut self, outgoing: Outgoing) {
        if let Err(SendError::QueueFull) = self.conn.send_prepared(&outgoing.message) {
            self.too_slow();
        }
        if let Some(sample) = outgoing.sample {
            let samples = &mut self.pending.get_or_insert_default().samples;
            if samples.len() >= MAX_SAMPLES {
                samples.pop_front();
            }
            samples.push_back(sample);
        }
    }

    /// The client is quiet: the storage kept for its traffic goes, its
    /// connection's once what is queued is written (see
    /// [`Connection::release_when_drained`]), and the log queue's and the
    /// latency samples' if both are empty. (A connection logs a few lines
    /// at its start, which would otherwise keep four lines' room, 320
    /// bytes, for as long as it lasts.)
    pub fn release_when_drained(&mut self) {
        self.conn.release_when_drained();
        if self.pending.as_ref().is_some_and(|p| p.is_empty()) {
            self.pending = None;
        }
    }

    /// This client's outbox was closed because it was full (a sender's
    /// put found it so).
    pub fn outbox_closed(&mut self) {
        self.too_slow();
    }

    /// The server is stopping: close with 1001 (§7.4.1 "going away").
    pub fn shutdown(&mut self) {
        if self
            .conn
            .close(CloseCode::GoingAway, "server shutting down")
            .is_err()
        {
            // Not open: nothing to say goodbye to.
            self.conn.receive_eof();
        }
    }

    /// Whether [`Session::process`] has anything to handle: if not, it
    /// would neither take the hub nor change anything.
    pub fn has_work(&self) -> bool {
        self.conn.has_pending_events() || self.must_leave()
    }

    /// Joined, and the connection closed: the chat must forget it.
    fn must_leave(&self) -> bool {
        self.joined && self.conn.is_closed()
    }

    /// Handles what happened since the last call, at the time `now` tells
    /// (asked only by the events that need it: most echoes, pings and
    /// pongs do not, and the clocks are not read for them): each chat
    /// operation takes the hub and its room's next turn in `fanout`, lets the
    /// hub go, and in that turn its output goes to the other members'
    /// outboxes (see [`crate::fanout`]). `outbox` is this client's:
    /// what waits there (what the room said before) is delivered before the
    /// output's part for this client.
    pub fn process(
        &mut self,
        hub: &Mutex<Hub>,
        fanout: &Fanout,
        outbox: &Outbox,
        mut now: impl FnMut() -> Now,
    ) {
        // Echoed messages, counted once per call: the counters are atomics
        // every thread shares, and a read can hold many messages.
        let mut echoed = 0;
        // Pings and pongs are logged once per call (per read), however
        // many it held: a read of empty pongs holds ten thousand, and a
        // line for each would make the log, not the client, the cost.
        let (mut pinged, mut ponged) = (false, false);
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::Request(request) => {
                    let mut hub = lock(hub);
                    let out = self.route(&request, &mut hub, now());
                    // Joined now: its outbox goes to its room's members.
                    let change = match self.joined {
                        true => Membership::Joined,
                        false => Membership::Same,
                    };
                    self.hand_out(out, hub, fanout, outbox, None, change);
                }
                Event::Open { .. } => {}
                Event::Message(message) if self.config.echo => {
                    match &message {
                        Message::Text(text) => self.log_text(text),
                        Message::Binary(bytes) => self.log_binary(bytes.len()),
                    }
                    echoed += 1;
                    // A large one leaves from its own buffer, which goes
                    // back to the allocator once written (see
                    // `ServerConfig::DEFAULT`'s `max_spare_buffer`); a
                    // small one is copied, and its buffer kept.
                    self.reply(|conn| conn.send_owned(message));
                }
                Event::Message(Message::Text(text)) => {
                    self.log_text(&text);
                    let now = now();
                    self.last_input = now.mono;
                    let sample = self.config.metrics.message_in();
                    let mut hub = lock(hub);
                    // Once shutdown has begun, input is not taken: a message
                    // taken now might reach only the part of the room not
                    // yet closed.
                    if !hub.stopping {
                        let out = hub.chat.input(self.id, &text, now);
                        self.hand_out(out, hub, fanout, outbox, sample, Membership::Same);
                    } else {
                        drop(hub);
                    }
                    self.conn.recycle(Message::Text(text));
                }
                Event::Message(Message::Binary(bytes)) => {
                    self.config.metrics.messages_in.inc();
                    self.log_binary(bytes.len());
                    // §7.4.1: 1003 for a kind of data the endpoint cannot accept.
                    let _ = self
                        .conn
                        .close(CloseCode::Unsupported, "this chat accepts text only");
                    self.conn.recycle(Message::Binary(bytes));
                }
                Event::Ping(_) => pinged = true,
                Event::Pong(_) => ponged = true,
                Event::PingSent => self.log(Log::SendingPing {
                    peer: self.peer.to_string(),
                }),
                Event::Error(Error::Handshake(e)) => self.log(Log::HandshakeRejected {
                    peer: self.peer.to_string(),
                    status: e.status(),
                    reason: e.to_string(),
                }),
                Event::Error(Error::Protocol(ProtocolError::KeepaliveTimeout)) => {
                    self.log(Log::NoPong {
                        peer: self.peer.to_string(),
                    })
                }
                Event::Error(Error::Protocol(e)) => self.log(Log::ProtocolError {
                    peer: self.peer.to_string(),
                    error: e.to_string(),
                    code: e.close_code(),
                }),
                Event::Closed { code, reason } => {
                    self.config.metrics.closed(code);
                    if self.joined || self.config.echo {
                        self.log(Log::Closed {
                            peer: self.peer.to_string(),
                            code,
                            reason,
                        });
                    }
                }
            }
        }
        if echoed > 0 {
            self.config.metrics.messages_in.inc_by(echoed);
            self.config.metrics.deliveries_out.inc_by(echoed);
        }
        if pinged {
            self.log(Log::ReceivedPing);
        }
        if ponged {
            self.log(Log::ReceivedPong);
        }
        if self.must_leave() {
            self.joined = false;
            let mut hub = lock(hub);
            let out = hub.leave(self.id, now());
            self.hand_out(out, hub, fanout, outbox, None, Membership::Left);
        }
    }

    /// The next log line.
    pub fn poll_log(&mut self) -> Option<Log> {
        self.pending.as_mut()?.logs.pop_front()
    }

    /// See [`Connection::poll_transmit`].
    pub fn poll_transmit(&self) -> Option<&[u8]> {
        self.conn.poll_transmit()
    }

    /// See [`Connection::poll_transmit_vectored`].
    pub fn poll_transmit_vectored<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        self.conn.poll_transmit_vectored(slices)
    }

    /// See [`Connection::buffered_amount`].
    pub fn buffered_amount(&self) -> usize {
        self.conn.buffered_amount()
    }

    /// See [`Connection::advance`]: `n` bytes were written to the client
    /// (and are counted as such).
    pub fn advance(&mut self, n: usize) {
        self.config.metrics.bytes_out.inc_by(n as u64);
        self.conn.advance(n);
        if self.conn.buffered_amount() == 0 {
            // Everything queued is written: the sampled messages too.
            if let Some(pending) = &mut self.pending {
                pending.samples.clear();
            }
        }
    }

    /// Whether the session can wait without a task (see `serve/park.rs`):
    /// an open WebSocket connection, with nothing to write or to handle.
    pub fn may_park(&self) -> bool {
        self.upgraded && self.conn.is_open() && self.conn.buffered_amount() == 0 && !self.has_work()
    }

    /// Whether log lines wait for [`Session::poll_log`].
    pub fn has_logs(&self) -> bool {
        self.pending.as_ref().is_some_and(|p| !p.logs.is_empty())
    }

    /// See [`Connection::is_closed`]: shut the write side once nothing is left
    /// to transmit.
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// See [`Connection::is_finished`]: drop the socket.
    pub fn is_finished(&self) -> bool {
        self.conn.is_finished()
    }

    /// Answers the HTTP request: the page, a refusal, or the upgrade into a
    /// room (`/` is the lobby), in the format the client asked for.
    fn route(&mut self, request: &Request, hub: &mut Hub, now: Now) -> Output {
        if !request.is_upgrade {
            let text = "text/plain; charset=utf-8";
            let not_found = (404, text, Cow::Borrowed(&b"not found\n"[..]));
            let (status, content_type, body) = match (request.method.as_str(), request.path()) {
                ("GET", "/healthz") => (200, text, Cow::Borrowed(&b"ok\n"[..])),
                ("GET", "/readyz") => match hub.readiness() {
                    Ok(()) => (200, text, Cow::Borrowed(&b"ready\n"[..])),
                    Err(not_ready) => (503, text, format!("{not_ready}\n").into_bytes().into()),
                },
                // Not the page of a room "metrics" either when
                // --metrics-bind moved it: a scraper must not get a page.
                ("GET", "/metrics") if !self.serves_metrics() => not_found,
                ("GET", "/metrics") => {
                    let body = self.config.metrics.render(hub.chat.room_sizes());
                    (200, metrics::CONTENT_TYPE, body.into_bytes().into())
                }
                ("GET", _) if self.ops_only => not_found,
                ("GET", path) => match page::asset(path) {
                    Some(asset) => (200, asset.content_type, Cow::Borrowed(asset.body)),
                    None => not_found,
                },
                _ => (405, text, Cow::Borrowed(&b"method not allowed\n"[..])),
            };
            let _ =
                self.conn
                    .respond_with_headers(status, content_type, page::SECURITY_HEADERS, &body);
            self.log(Log::HttpRequest {
                peer: self.peer.to_string(),
                method: request.method.clone(),
                target: request.target.clone(),
                status,
            });
            return Output::default();
        }
        self.log(Log::UpgradeRequest {
            peer: self.peer.to_string(),
        });
        if self.ops_only {
            self.refuse(
                404,
                "this port serves /metrics, /healthz and /readyz only".into(),
            );
            return Output::default();
        }
        // Draining or stopping: come back later, to another server.
        if let Err(not_ready) = hub.admission() {
            let headers = [("Retry-After", RETRY_AFTER)];
            self.refuse_with_headers(503, not_ready.to_string(), &headers);
            return Output::default();
        }
        if self.over_address_limit {
            self.refuse(
                503,
                "too many connections from your address, try again later".into(),
            );
            return Output::default();
        }
        let origin = request.header("Origin");
        if !self.config.origins.allows(origin, request.host()) {
            let reason = format!(
                "origin '{}' is not allowed: only this server's own pages \
                 and --allowed-origin may connect",
                origin.unwrap_or_default()
            );
            self.refuse(403, reason);
            return Output::default();
        }
        if self.config.echo {
            if self.conn.accept(None).is_ok() {
                self.upgraded();
            }
            return Output::default();
        }
        let wants_json = request.protocols.iter().any(|p| p == chat::SUBPROTOCOL);
        let format = if wants_json {
            Format::Json
        } else {
            Format::Plain
        };
        let joined = chat::room_for_path(request.path())
            .and_then(|room| hub.chat.check_join(room).map(|()| room));
        let room = match joined {
            Ok(room) => room,
            Err(refusal) => {
                self.refuse(refusal.status(), refusal.to_string());
                return Output::default();
            }
        };
        let protocol = wants_json.then_some(chat::SUBPROTOCOL);
        if self.conn.accept(protocol).is_err() {
            return Output::default();
        }
        self.upgraded();
        match hub
            .chat
            .join(self.id, address(self.peer.ip()), room, format, now)
        {
            Ok(out) => {
                hub.chat.set_deflate(self.id, self.conn.deflate().is_some());
                self.joined = true;
                self.stripe = Stripe::of(room);
                self.last_input = now.mono;
                let nick = hub.chat.nick(self.id).unwrap_or_default().to_owned();
                self.log(Log::Joined {
                    peer: self.peer.to_string(),
                    nick,
                    room: room.to_owned(),
                });
                out
            }
            // Checked above under the same lock, so this cannot happen.
            Err(_) => Output::default(),
        }
    }

    /// Refuses the upgrade with `status` and a one-line reason.
    fn refuse(&mut self, status: u16, reason: String) {
        self.refuse_with_headers(status, reason, &[]);
    }

    /// Refuses the upgrade with `status`, a one-line reason and `headers`.
    fn refuse_with_headers(&mut self, status: u16, reason: String, headers: &[(&str, &str)]) {
        let body = format!("{reason}\n");
        let text = "text/plain; charset=utf-8";
        let _ = self
            .conn
            .respond_with_headers(status, text, headers, body.as_bytes());
        self.log(Log::HandshakeRejected {
            peer: self.peer.to_string(),
            status,
            reason,
        });
    }

    /// Hands out a chat operation's output, taken with `hub` held, in the
    /// room's turn taken before the hub is let go and waited for after (see
    /// [`crate::fanout`]): a member that `change`d enters or leaves the
    /// room's outboxes, this client's part goes to itself after what its
    /// outbox holds, and the rest to the other members' outboxes.
    fn hand_out(
        &mut self,
        out: Output,
        mut hub: MutexGuard<'_, Hub>,
        fanout: &Fanout,
        outbox: &Outbox,
        sample: Option<Arc<Sample>>,
        change: Membership,
    ) {
        hub.ring_presence();
        if let Some(clients) = out.broadcast {
            self.log(Log::Broadcasting { clients });
        }
        hub.share(out.appended, out.presence.as_ref());
        // Counted once per chat output, not once per recipient: a broadcast
        // to a thousand is one atomic add.
        let deliveries: usize = out.deliveries.iter().map(|d| d.to.len()).sum();
        if deliveries > 0 {
            self.config.metrics.deliveries_out.inc_by(deliveries as u64);
        }
        if deliveries == 0 && change == Membership::Same {
            drop(hub);
        } else {
            // The room's turn, taken in the hub's order and waited for
            // without it (see `fanout`).
            let turn = fanout.turn(self.stripe);
            drop(hub);
            let mut room = turn.wait();
            match change {
                Membership::Joined => room.enter(self.id, outbox.clone()),
                Membership::Left => room.leave(self.id),
                Membership::Same => {}
            }
            let (mine, _) = room.put(
                out.deliveries,
                Some(self.id),
                sample,
                self.config.outbox_capacity,
            );
            // A closed outbox means this client is too slow and about to
            // be closed: its own line would come after a gap.
            if !mine.is_empty() && !outbox.is_closed() {
                // The room's earlier output, put here by other sessions
                // in earlier turns, goes before this client's own.
                let mut earlier = Vec::new();
                outbox.take(&mut earlier);
                for outgoing in earlier.into_iter().chain(mine) {
                    self.deliver(outgoing);
                }
            }
        }
        if let Some((code, reason)) = out.close {
            if self.conn.is_open() {
                self.log(Log::Flooding {
                    peer: self.peer.to_string(),
                });
                let _ = self.conn.close(code, &reason);
            }
        }
    }

    fn idle_deadline(&self) -> Option<Duration> {
        match (self.joined && self.conn.is_open(), self.config.idle_timeout) {
            (true, Some(timeout)) => Some(self.last_input.saturating_add(timeout)),
            _ => None,
        }
    }

    /// The upgrade was accepted: the connection is a WebSocket now.
    fn upgraded(&mut self) {
        self.upgraded = true;
        self.config.metrics.websocket_opened();
        self.log(Log::HandshakeComplete {
            peer: self.peer.to_string(),
        });
    }

    fn log(&mut self, line: Log) {
        self.config.metrics.record(&line);
        if line.level() <= self.config.log_level {
            self.pending.get_or_insert_default().logs.push_back(line);
        }
    }

    fn log_text(&mut self, text: &str) {
        if self.config.log_level < LogLevel::Info {
            return;
        }
        let mut end = text.len().min(200);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.log(Log::ReceivedText {
            text: text[..end].to_owned(),
            len: text.len(),
        });
    }

    /// As [`Session::log_text`]: a line per message, made only when it
    /// is printed.
    fn log_binary(&mut self, len: usize) {
        if self.config.log_level >= LogLevel::Info {
            self.log(Log::ReceivedBinary { len });
        }
    }

    fn reply(&mut self, send: impl FnOnce(&mut Connection) -> Result<(), SendError>) {
        if let Err(SendError::QueueFull) = send(&mut self.conn) {
            self.too_slow();
        }
    }

    fn too_slow(&mut self) {
        if self.conn.is_open() {
            self.log(Log::SlowClient {
                peer: self.peer.to_string(),
            });
            let _ = self
                .conn
                .close(CloseCode::PolicyViolation, "too slow: send queue full");
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.upgraded {
            self.config.metrics.websocket_ended();
        }
    }
}

/// The key a peer's limits go by (its connections at once, its chat
/// rate): for IPv4 its address, as the IPv4-mapped IPv6 address (RFC 4291
/// §2.5.5.2), so that a client has one key whether it reached a dual-stack
/// socket over IPv4 or IPv6; for IPv6 its /64 network. A host picks the
/// last 64 bits of its addresses itself (RFC 4291 §2.5.1, RFC 8981's
/// temporary addresses), as many as it likes: keyed on the whole address,
/// one host would have as many limits as addresses. Addresses whose last
/// bits name an IPv4 client (NAT64's `64:ff9b::/96` and `64:ff9b:1::/48`,
/// RFC 6052 and 8215) or whose first 64 bits name a relay (Teredo's
/// `2001::/32`, RFC 4380) are keyed whole.
pub(crate) fn client_key(ip: IpAddr) -> Ipv6Addr {
    let v6 = match ip {
        IpAddr::V4(v4) => return v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    let bits = u128::from(v6);
    let prefix = |len: u32, value: u128| bits >> (128 - len) == value >> (128 - len);
    let whole = v6.to_ipv4_mapped().is_some()
        || prefix(96, 0x0064_ff9b << 96)
        || prefix(48, 0x0064_ff9b_0001 << 80)
        || prefix(32, 0x2001_0000 << 96);
    match whole {
        true => v6,
        false => Ipv6Addr::from(bits & (u128::MAX << 64)),
    }
}

/// The chat's key for a peer (see [`client_key`]).
fn address(ip: IpAddr) -> chat::Address {
    chat::Address(client_key(ip).octets())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tincan_core::frame::encode_frame;
    use tincan_core::{FrameHeader, OpCode};

    /// Every test's sessions take their ids from here.
    static IDS: ClientIds = ClientIds::new();

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    #[test]
    fn client_ids_are_given_out_once_each() {
        let ids = ClientIds::new();
        let taken: Vec<ClientId> = (0..3).map(|_| ids.next()).collect();
        assert_eq!(taken, [ClientId(1), ClientId(2), ClientId(3)]);
    }

    /// A chat's hub and rooms, each test its own. Joins and leaves are
    /// announced at once: no task here announces them later (the serve
    /// loop's does, tested through the binaries).
    fn chat_for(config: &ServerConfig) -> (Mutex<Hub>, Fanout) {
        let chat = chat::ChatConfig {
            presence_delay: Duration::ZERO,
            ..config.chat.clone()
        };
        (Mutex::new(Hub::new(chat)), Fanout::new())
    }

    fn at(secs: u64) -> Now {
        Now {
            mono: Duration::from_secs(secs),
            unix_ms: secs * 1000,
        }
    }

    /// A session through its handshake into `path`, and its outbox.
    fn joined(
        (hub, fanout): (&Mutex<Hub>, &Fanout),
        config: &ServerConfig,
        path: &str,
    ) -> (Session, Outbox) {
        joined_from(
            (hub, fanout),
            config,
            path,
            SocketAddr::from(([127, 0, 0, 1], 5000)),
        )
    }

    fn joined_from(
        (hub, fanout): (&Mutex<Hub>, &Fanout),
        config: &ServerConfig,
        path: &str,
        peer: SocketAddr,
    ) -> (Session, Outbox) {
        let id = IDS.next();
        let sessions = Arc::new(SessionConfig::new(config, Arc::default()));
        let mut session = Session::new(id, peer, &sessions);
        session.receive(
            format!(
                "GET {path} HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 Sec-WebSocket-Version: 13\r\n\r\n"
            )
            .as_bytes(),
        );
        let outbox = Outbox::new();
        session.process(hub, fanout, &outbox, || at(0));
        let head = sent(&mut session);
        assert!(head.starts_with(b"HTTP/1.1 101 "), "{head:?}");
        (session, outbox)
    }

    #[test]
    fn a_quiet_session_keeps_no_log_storage() {
        let config = ServerConfig {
            log_level: LogLevel::Info,
            ..ServerConfig::default()
        };
        let chat = chat_for(&config);
        let (mut session, _outbox) = joined((&chat.0, &chat.1), &config, "/");
        let lines: Vec<Log> = std::iter::from_fn(|| session.poll_log()).collect();
        assert!(
            lines
                .iter()
                .any(|l| matches!(l, Log::HandshakeComplete { .. })),
            "{lines:?}"
        );
        assert!(session.pending.is_some());
        session.release_when_drained();
        assert!(session.pending.is_none());
    }

    /// Two sessions in the lobby, what they were sent so far read.
    fn two_in_the_lobby(
        chat: (&Mutex<Hub>, &Fanout),
        config: &ServerConfig,
    ) -> ((Session, Outbox), (Session, Outbox)) {
        let (mut a, a_outbox) = joined(chat, config, "/");
        let (mut b, b_outbox) = joined(chat, config, "/");
        sent(&mut a);
        sent(&mut b);
        ((a, a_outbox), (b, b_outbox))
    }

    /// The payloads waiting in `outbox`, taken.
    fn taken(outbox: &Outbox) -> Vec<Vec<u8>> {
        let mut batch = Vec::new();
        outbox.take(&mut batch);
        batch
            .iter()
            .map(|m| frames(m.message.frame())[0].1.clone())
            .collect()
    }

    fn sent(session: &mut Session) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(bytes) = session.poll_transmit() {
            out.extend_from_slice(bytes);
            let n = bytes.len();
            session.advance(n);
        }
        out
    }

    /// The frames in `bytes` (server frames: unmasked), as opcode and payload.
    fn frames(mut bytes: &[u8]) -> Vec<(OpCode, Vec<u8>)> {
        let mut frames = Vec::new();
        while let Ok(Some((header, len))) = FrameHeader::decode(bytes) {
            let end = len + header.payload_len as usize;
            frames.push((header.opcode, bytes[len..end].to_vec()));
            bytes = &bytes[end..];
        }
        frames
    }

    fn close_code(frame: &(OpCode, Vec<u8>)) -> u16 {
        assert_eq!(frame.0, OpCode::Close, "{frame:?}");
        u16::from_be_bytes([frame.1[0], frame.1[1]])
    }

    fn client_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&mut out, true, opcode, Some(KEY), payload);
        out
    }

    #[test]
    fn chat_refuses_a_message_longer_than_any_chat_message_at_its_header() {
        let mut config = ServerConfig::default();
        config.chat.max_text_len = 10;
        let (hub, fanout) = chat_for(&config);
        let (mut session, outbox) = joined((&hub, &fanout), &config, "/");
        sent(&mut session);
        // Over 4 * 10 + 1024 bytes: only the header is sent.
        let mut header = FrameHeader::new(OpCode::Text, 1065);
        header.mask = Some(KEY);
        let mut bytes = Vec::new();
        header.encode(&mut bytes);
        session.receive(&bytes);
        session.process(&hub, &fanout, &outbox, || at(1));
        let out = sent(&mut session);
        assert_eq!(close_code(&frames(&out)[0]), 1009);

        // Any --max-chat-length is fine, the largest too (no overflow).
        config.chat.max_text_len = usize::MAX;
        joined((&hub, &fanout), &config, "/");
        config.chat.max_text_len = 10;

        // The echo mode keeps the configured limit.
        config.echo = true;
        let (mut echo, outbox) = joined((&hub, &fanout), &config, "/");
        let long = "x".repeat(5000);
        echo.receive(&client_frame(OpCode::Text, long.as_bytes()));
        echo.process(&hub, &fanout, &outbox, || at(1));
        assert_eq!(
            frames(&sent(&mut echo)),
            [(OpCode::Text, long.into_bytes())]
        );
    }

    #[test]
    fn echo_answers_each_message_and_counts_them_all() {
        let config = ServerConfig {
            echo: true,
            ..ServerConfig::default()
        };
        let (hub, fanout) = chat_for(&config);
        let metrics = Arc::new(Metrics::default());
        let peer = SocketAddr::from(([127, 0, 0, 1], 5000));
        let sessions = Arc::new(SessionConfig::new(&config, metrics.clone()));
        let mut session = Session::new(ClientId(1), peer, &sessions);
        session.receive(
            b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n",
        );
        session.process(&hub, &fanout, &Outbox::new(), || at(0));
        sent(&mut session);
        // Three messages in one read, then one more.
        let mut read = client_frame(OpCode::Text, b"one");
        read.extend(client_frame(OpCode::Binary, b"two"));
        read.extend(client_frame(OpCode::Text, b"three"));
        session.receive(&read);
        session.process(&hub, &fanout, &Outbox::new(), || at(1));
        session.receive(&client_frame(OpCode::Text, b"four"));
        session.process(&hub, &fanout, &Outbox::new(), || at(1));
        assert_eq!(
            frames(&sent(&mut session)),
            [
                (OpCode::Text, b"one".to_vec()),
                (OpCode::Binary, b"two".to_vec()),
                (OpCode::Text, b"three".to_vec()),
                (OpCode::Text, b"four".to_vec()),
            ]
        );
        assert_eq!(metrics.messages_in.get(), 4);
        assert_eq!(metrics.deliveries_out.get(), 4);
    }

    #[test]
    fn a_read_full_of_pings_and_pongs_logs_one_line_of_each() {
        let config = ServerConfig {
            log_level: LogLevel::Info,
            ..ServerConfig::default()
        };
        let (hub, fanout) = chat_for(&config);
        let (mut session, outbox) = joined((&hub, &fanout), &config, "/");
        sent(&mut session);
        std::iter::from_fn(|| session.poll_log()).for_each(drop);
        let mut read = Vec::new();
        for _ in 0..1000 {
            read.extend(client_frame(OpCode::Pong, b""));
            read.extend(client_frame(OpCode::Ping, b""));
        }
        session.receive(&read);
        session.process(&hub, &fanout, &outbox, || at(1));
        let lines: Vec<Log> = std::iter::from_fn(|| session.poll_log()).collect();
        assert_eq!(lines, [Log::ReceivedPing, Log::ReceivedPong]);
        // The next read logs again.
        session.receive(&client_frame(OpCode::Pong, b""));
        session.process(&hub, &fanout, &outbox, || at(2));
        assert_eq!(session.poll_log(), Some(Log::ReceivedPong));
    }

    #[test]
    fn binary_in_the_chat_is_1003() {
        let config = ServerConfig::default();
        let (hub, fanout) = chat_for(&config);
        let (mut session, outbox) = joined((&hub, &fanout), &config, "/");
        sent(&mut session);
        session.receive(&client_frame(OpCode::Binary, b"\x00\x01"));
        session.process(&hub, &fanout, &outbox, || at(1));
        assert_eq!(close_code(&frames(&sent(&mut session))[0]), 1003);
    }

    #[test]
    fn idle_clients_are_closed_with_1001() {
        let mut config = ServerConfig {
            idle_timeout: Some(Duration::from_secs(60)),
            ..ServerConfig::default()
        };
        config.connection.ping_interval = None;
        let (hub, fanout) = chat_for(&config);
        let (mut session, outbox) = joined((&hub, &fanout), &config, "/");
        sent(&mut session);
        session.receive(&client_frame(OpCode::Text, b"hello"));
        session.process(&hub, &fanout, &outbox, || at(30));
        sent(&mut session);
        // A ping is no message: only messages keep a client from idling.
        session.receive(&client_frame(OpCode::Ping, b""));
        session.process(&hub, &fanout, &outbox, || at(80));
        sent(&mut session);
        assert_eq!(session.poll_timeout(), Some(Duration::from_secs(90)));
        session.handle_timeout(Duration::from_secs(90));
        session.process(&hub, &fanout, &outbox, || at(90));
        assert_eq!(close_code(&frames(&sent(&mut session))[0]), 1001);
        assert!(std::iter::from_fn(|| session.poll_log()).any(|l| matches!(l, Log::Idle { .. })));
    }

    #[test]
    fn a_dropped_client_is_announced_to_its_room() {
        let config = ServerConfig::default();
        let (hub, fanout) = chat_for(&config);
        let (mut a, a_outbox) = joined((&hub, &fanout), &config, "/");
        let (mut b, b_outbox) = joined((&hub, &fanout), &config, "/");
        let (mut c, c_outbox) = joined((&hub, &fanout), &config, "/elsewhere");
        for s in [&mut a, &mut b, &mut c] {
            sent(s);
        }
        a.receive_eof();
        a.process(&hub, &fanout, &a_outbox, || at(5));
        assert_eq!(taken(&b_outbox), [b"* guest-1 left #lobby"]);
        // C is in another room.
        assert!(c_outbox.is_empty());
        assert_eq!(lock(&hub).len(), 2);
    }

    #[test]
    fn what_the_room_said_before_reaches_the_sender_before_its_own_line() {
        let config = ServerConfig::default();
        let (hub, fanout) = chat_for(&config);
        let ((mut a, a_outbox), (mut b, b_outbox)) = two_in_the_lobby((&hub, &fanout), &config);
        assert_eq!(taken(&a_outbox), [b"* guest-2 joined #lobby"]);
        b.receive(&client_frame(OpCode::Text, b"first"));
        b.process(&hub, &fanout, &b_outbox, || at(1));
        // B's line waits in A's outbox (A's task has not run yet) when A
        // speaks: the room's order (its history's) is B's, then A's.
        a.receive(&client_frame(OpCode::Text, b"second"));
        a.process(&hub, &fanout, &a_outbox, || at(1));
        let texts: Vec<Vec<u8>> = frames(&sent(&mut a)).into_iter().map(|(_, p)| p).collect();
        assert_eq!(texts, [&b"guest-2: first"[..], b"guest-1: second"]);
        assert!(a_outbox.is_empty());
        assert_eq!(taken(&b_outbox), [b"guest-1: second"]);
    }

    #[test]
    fn a_closed_outbox_closes_the_client_with_1008() {
        let config = ServerConfig::default();
        let (hub, fanout) = chat_for(&config);
        let (mut session, outbox) = joined((&hub, &fanout), &config, "/");
        sent(&mut session);
        session.outbox_closed();
        session.process(&hub, &fanout, &outbox, || at(1));
        let out = frames(&sent(&mut session));
        assert_eq!(close_code(&out[0]), 1008);
        assert_eq!(&out[0].1[2..], b"too slow: send queue full");
        assert!(
            std::iter::from_fn(|| session.poll_log()).any(|l| matches!(l, Log::SlowClient { .. }))
        );
    }

    #[test]
    fn once_stopping_no_input_is_taken_no_join_and_no_leave_announced() {
        let config = ServerConfig::default();
        let (hub, fanout) = chat_for(&config);
        let ((mut a, a_outbox), (_, b_outbox)) = two_in_the_lobby((&hub, &fanout), &config);
        lock(&hub).stop();
        a.receive(&client_frame(OpCode::Text, b"too late"));
        a.process(&hub, &fanout, &a_outbox, || at(1));
        assert!(b_outbox.is_empty());
        assert!(sent(&mut a).is_empty(), "not even to the sender");
        // A join that was still in its handshake is refused.
        let id = IDS.next();
        let peer = SocketAddr::from(([127, 0, 0, 1], 5001));
        let sessions = Arc::new(SessionConfig::new(&config, Arc::default()));
        let mut late = Session::new(id, peer, &sessions);
        late.receive(
            b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        );
        late.process(&hub, &fanout, &Outbox::new(), || at(1));
        assert!(sent(&mut late).starts_with(b"HTTP/1.1 503 "));
        // Leaving is not announced: the whole room is going.
        a.shutdown();
        a.receive_eof();
        a.process(&hub, &fanout, &a_outbox, || at(2));
        assert!(b_outbox.is_empty());
        assert_eq!(lock(&hub).len(), 1);
    }

    #[test]
    fn peers_are_keyed_by_their_ipv4_mapped_address_or_ipv6_network() {
        let v4: SocketAddr = ([192, 0, 2, 1], 1000).into();
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:2000".parse().expect("address");
        let mut octets = [0; 16];
        octets[10..].copy_from_slice(&[0xff, 0xff, 192, 0, 2, 1]);
        assert_eq!(address(v4.ip()), chat::Address(octets));
        assert_eq!(address(mapped.ip()), chat::Address(octets));
        // IPv6: the /64, whatever address in it the host took.
        let mut octets = [0; 16];
        octets[..8].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 7]);
        for host in [
            "[2001:db8:0:7::1]:3000",
            "[2001:db8:0:7:a1b2:c3d4:e5f6:789]:3001",
        ] {
            let v6: SocketAddr = host.parse().expect("address");
            assert_eq!(address(v6.ip()), chat::Address(octets), "{host}");
        }
        let other: SocketAddr = "[2001:db8:0:8::1]:3000".parse().expect("address");
        assert_ne!(address(other.ip()), chat::Address(octets), "another /64");
        // Whole where the address names the client past its /64: NAT64
        // (the IPv4 client in the last bits), Teredo (a relay before them).
        for whole in [
            "64:ff9b::c000:201",
            "64:ff9b:1::c000:201",
            "2001:0:4136:e378::1",
        ] {
            let ip: Ipv6Addr = whole.parse().expect("address");
            assert_eq!(client_key(IpAddr::V6(ip)), ip, "{whole}");
        }
        let two = ["64:ff9b::c000:201", "64:ff9b::c000:202"]
            .map(|a| client_key(IpAddr::V6(a.parse().expect("address"))));
        assert_ne!(two[0], two[1], "two IPv4 clients behind NAT64");
    }

    #[test]
    fn a_flooder_that_reconnects_gets_no_new_burst() {
        let mut config = ServerConfig::default();
        config.chat.rate = chat::RateLimit {
            burst: 2,
            per_second: 0.5,
        };
        let (hub, fanout) = chat_for(&config);
        let texts = |session: &mut Session| -> Vec<Vec<u8>> {
            frames(&sent(session)).into_iter().map(|(_, p)| p).collect()
        };
        let home = SocketAddr::from(([192, 0, 2, 1], 1000));
        let (mut a, a_outbox) = joined_from((&hub, &fanout), &config, "/", home);
        texts(&mut a);
        for _ in 0..2 {
            a.receive(&client_frame(OpCode::Text, b"hi"));
        }
        a.process(&hub, &fanout, &a_outbox, || at(0));
        assert_eq!(texts(&mut a), [b"guest-1: hi", b"guest-1: hi"]);
        a.receive_eof();
        a.process(&hub, &fanout, &a_outbox, || at(0));

        // Another port of the same address: the same, empty bucket.
        let (mut b, b_outbox) = joined_from(
            (&hub, &fanout),
            &config,
            "/",
            SocketAddr::from(([192, 0, 2, 1], 1001)),
        );
        texts(&mut b);
        b.receive(&client_frame(OpCode::Text, b"hi"));
        b.process(&hub, &fanout, &b_outbox, || at(0));
        assert_eq!(
            texts(&mut b),
            [&b"! slow down: at most 2 messages at once and 0.5 per second"[..]]
        );
        // Another address has its own.
        let (mut c, c_outbox) = joined_from(
            (&hub, &fanout),
            &config,
            "/",
            SocketAddr::from(([192, 0, 2, 2], 1000)),
        );
        texts(&mut c);
        c.receive(&client_frame(OpCode::Text, b"hi"));
        c.process(&hub, &fanout, &c_outbox, || at(0));
        assert_eq!(texts(&mut c), [b"guest-3: hi"]);
    }
}
