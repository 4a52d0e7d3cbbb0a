//! `--redis URL`: several nodes share their rooms through one Redis.
//!
//! # The design
//!
//! - **One log, one order.** Every event the other nodes need (a message or
//!   action, a join, a leave, a nickname change) is appended to one Redis
//!   stream, [`EVENTS`], tagged with the node's random id. Each node reads
//!   that stream with `XREAD BLOCK` from the last id it saw and applies the
//!   other nodes' entries to its chat ([`tincan_chat::Chat::remote`]): every
//!   node sees the same total order, so per-sender order holds everywhere,
//!   and after losing Redis a node resumes from its last id.
//! - **Local first.** A node delivers its own members' messages to its own
//!   members at once (the chat does); Redis is only on the path to the other
//!   nodes.
//! - **History.** A room's history is a second stream, `tincan:history:ROOM`,
//!   capped at `--history`; a Lua script appends to both streams at once with
//!   the same id, so history and the log never disagree, and a starting node
//!   reads each room's history up to the log position it starts reading
//!   from: nothing twice, nothing missed.
//! - **Presence.** Each node refreshes its entry in the sorted set
//!   [`NODES`] (score: its clock in ms) and its members in
//!   `tincan:presence:NODE` every [`HEARTBEAT`]. A node missing from the set
//!   for [`NODE_TIMEOUT`] is dropped by the others, with leave notices for
//!   its members. A starting node loads the presence of the live nodes (and
//!   of any node it first hears of later).
//! - **Guests.** Guest numbers come in blocks of [`GUEST_BLOCK`] reserved
//!   with `INCRBY`, so no two nodes name two guests alike.
//! - **Faults.** Redis unreachable at start is an error naming the URL. Lost
//!   while running: logged once ([`Log::BrokerLost`], then
//!   [`Log::BrokerBack`]), `/readyz` answers 503, local members chat on,
//!   outgoing events wait in a bounded queue ([`QUEUE`]; overflow is dropped
//!   and counted in the log), and each task reconnects with capped
//!   exponential backoff, then the queue is flushed in order and reading
//!   resumes from the last id.
//!
//! The redis crate runs here on async-io (its `smol-comp` feature), which
//! works under every runtime binary of this project; only `connect` names
//! the connection type, the seam for another runtime's feature.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_channel::{Receiver, Sender, TrySendError};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Value};
use tincan_chat::{Appended, ClientId, Entry, Kind, Presence, RemoteEvent, RemoteId};

use crate::log::Log;
use crate::runtime::Runtime;

/// The stream of every node's events.
pub const EVENTS: &str = "tincan:events";
/// The sorted set of live nodes: node id to its last heartbeat (Unix ms).
pub const NODES: &str = "tincan:nodes";
/// The set of rooms that have a history stream.
const ROOMS: &str = "tincan:rooms";
/// The counter guest numbers are reserved from.
const GUESTS: &str = "tincan:guests";
/// How often a node refreshes its heartbeat and presence.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A node silent this long is dropped by the others.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(5);
/// Guest numbers reserved at once.
pub const GUEST_BLOCK: u64 = 100_000;
/// Outgoing events that may wait while Redis is slow or lost.
pub const QUEUE: usize = 10_000;
/// The events stream is trimmed to about this many entries.
const EVENTS_KEPT: usize = 100_000;
/// Events sent in one pipeline, and read in one `XREAD`.
const BATCH: usize = 512;
/// How long one `XREAD` waits for new entries.
const BLOCK: Duration = Duration::from_millis(1000);
/// The longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Appends an event to the log and, for a message, to its room's history
/// with the same id, and keeps the node's presence hash in step with its
/// joins, leaves and nicknames: one script, so all or nothing, and a node
/// that reads the log position and then the presence hashes sees each
/// member as of that position or later (never earlier).
/// KEYS: the events stream, the room's history stream, the room set, the
/// node's presence hash.
/// ARGV: events kept, history kept (0: not a message), room, presence
/// change (`set`, `del` or ``), client, presence value, then the event's
/// fields and values.
const APPEND: &str = r"
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
if tonumber(ARGV[2]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], id, unpack(fields))
  redis.call('SADD', KEYS[3], ARGV[3])
end
if ARGV[4] == 'set' then
  redis.call('HSET', KEYS[4], ARGV[5], ARGV[6])
elseif ARGV[4] == 'del' then
  redis.call('HDEL', KEYS[4], ARGV[5])
end
return id
";

/// Why the server cannot start with `--redis`; each names the URL.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The URL is not a Redis URL.
    #[error("--redis {url} is not a Redis URL: {source}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        source: redis::RedisError,
    },
    /// Redis did not answer.
    #[error("cannot reach Redis at {url}: {source}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        source: redis::RedisError,
    },
}

/// One event from the log, for the chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Another node's member did something.
    Remote(RemoteId, RemoteEvent),
    /// This node's own nickname change reached the log.
    Confirmed(ClientId, String),
    /// A node stopped answering.
    Lost(u64),
}

/// What the broker needs of the rest of the server: implemented by the
/// serve loop over its hub.
pub trait Side: Send + Sync + 'static {
    /// Applies events from the log, in order.
    fn apply(&self, events: Vec<Inbound>);
    /// The local members: client id, room, nickname.
    fn members(&self) -> Vec<(u64, String, String)>;
    /// Whether the chat wants another block of guest numbers.
    fn wants_guests(&self) -> bool;
    /// Gives the chat a block of guest numbers.
    fn reserve_guests(&self, first: u64, count: u64);
    /// Prints (and counts) a log line.
    fn log(&self, line: Log);
}

/// An event for the other nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outbound {
    client: u64,
    kind: &'static str,
    room: String,
    nick: String,
    text: String,
    ts: u64,
}

/// The sessions' side of the broker: queues events for the other nodes
/// without waiting, and tells whether Redis is reachable.
#[derive(Debug)]
pub struct Link {
    queue: Sender<Outbound>,
    dropped: AtomicU64,
    connected: AtomicBool,
    /// Closed when the publisher has sent everything and ended.
    published: Receiver<()>,
}

impl Link {
    /// Queues what a local client's chat output means to the other nodes.
    /// A full queue drops the event and counts it.
    pub fn publish(&self, appended: Option<&Appended>, presence: Option<&(ClientId, Presence)>) {
        let mut events = Vec::new();
        if let Some(Appended { room, entry }) = appended {
            // The sender is not needed: messages carry the nickname.
            events.push(Outbound {
                client: 0,
                kind: match entry.kind {
                    Kind::Message => "msg",
                    Kind::Action => "act",
                },
                room: room.clone(),
                nick: entry.from.clone(),
                text: entry.text.clone(),
                ts: entry.ts,
            });
        }
        if let Some((id, presence)) = presence {
            let (kind, room, nick) = match presence {
                Presence::Joined { room, nick } => ("join", room, nick),
                Presence::Left { room, nick } => ("leave", room, nick),
                Presence::Renamed { room, new, .. } => ("nick", room, new),
            };
            events.push(Outbound {
                client: id.0,
                kind,
                room: room.clone(),
                nick: nick.clone(),
                text: String::new(),
                ts: 0,
            });
        }
        for event in events {
            if let Err(TrySendError::Full(_) | TrySendError::Closed(_)) = self.queue.try_send(event)
            {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Whether Redis answered the last heartbeat.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Closes the queue and waits until the publisher has sent what is
    /// left (unbounded: the caller bounds it, Redis may be gone).
    pub async fn flush(&self) {
        self.queue.close();
        let _ = self.published.recv().await;
    }
}

/// What a starting node loads from Redis before it takes clients.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The members of the live nodes.
    pub presence: Vec<Inbound>,
    /// Each room's history, oldest first.
    pub histories: Vec<(String, Vec<Entry>)>,
    /// The first block of guest numbers.
    pub guests: (u64, u64),
}

/// A broker connected at start, not yet running.
pub struct Broker {
    client: Client,
    url: String,
    conn: MultiplexedConnection,
    node: u64,
    last: String,
    history: usize,
    known: HashSet<u64>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("url", &self.url)
            .field("node", &self.node)
            .finish()
    }
}

/// Opens a connection; `read` is for the connection that blocks in `XREAD`
/// (its replies may take [`BLOCK`]).
async fn connect(client: &Client, read: bool) -> redis::RedisResult<MultiplexedConnection> {
    let response = if read { BLOCK * 5 } else { BLOCK * 2 };
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

impl Broker {
    /// This node's id.
    pub fn node(&self) -> u64 {
        self.node
    }

    /// Connects to `url` and loads what a starting node needs: the log
    /// position, the live nodes' presence, each room's history up to that
    /// position (at most `history` each), and a block of guest numbers.
    pub async fn connect(url: &str, history: usize) -> Result<(Self, Snapshot), BrokerError> {
        let client = Client::open(url).map_err(|source| BrokerError::Url {
            url: url.to_owned(),
            source,
        })?;
        let unreachable = |source| BrokerError::Unreachable {
            url: url.to_owned(),
            source,
        };
        let mut conn = connect(&client, false).await.map_err(unreachable)?;
        let mut broker = Self {
            client,
            url: url.to_owned(),
            conn: conn.clone(),
            node: node_id(),
            last: "0-0".into(),
            history,
            known: HashSet::new(),
        };
        let snapshot = broker.load(&mut conn).await.map_err(unreachable)?;
        Ok((broker, snapshot))
    }

    async fn load(&mut self, conn: &mut MultiplexedConnection) -> redis::RedisResult<Snapshot> {
        let mut snapshot = Snapshot::default();
        let end: u64 = redis::cmd("INCRBY")
            .arg(GUESTS)
            .arg(GUEST_BLOCK)
            .query_async(conn)
            .await?;
        snapshot.guests = (end + 1 - GUEST_BLOCK, GUEST_BLOCK);
        let newest: Value = redis::cmd("XREVRANGE")
            .arg(EVENTS)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(conn)
            .await?;
        if let Some((id, _)) = entries(&newest).into_iter().next() {
            self.last = id;
        }
        let (presence, known) = load_presence(conn, self.node, None).await?;
        snapshot.presence = presence;
        self.known = known;
        if self.history > 0 && self.last != "0-0" {
            let rooms: Vec<String> = redis::cmd("SMEMBERS").arg(ROOMS).query_async(conn).await?;
            for room in rooms {
                let reply: Value = redis::cmd("XREVRANGE")
                    .arg(history_key(&room))
                    .arg(&self.last)
                    .arg("-")
                    .arg("COUNT")
                    .arg(self.history)
                    .query_async(conn)
                    .await?;
                let mut history: Vec<Entry> = entries(&reply)
                    .into_iter()
                    .filter_map(|(_, fields)| match parse(&fields) {
                        Some((_, _, RemoteEvent::Said(appended))) => Some(appended.entry),
                        _ => None,
                    })
                    .collect();
                history.reverse();
                if !history.is_empty() {
                    snapshot.histories.push((room, history));
                }
            }
        }
        // Known to the others from now on, with no members yet.
        heartbeat(conn, self.node, Some(&[])).await?;
        Ok(snapshot)
    }

    /// Starts the publisher, the reader and the heartbeat on `runtime`;
    /// returns the link the sessions publish through.
    pub fn run<R: Runtime, S: Side>(self, runtime: &R, side: Arc<S>) -> Arc<Link> {
        let (queue, outbound) = async_channel::bounded(QUEUE);
        let (done, published) = async_channel::bounded(1);
        let link = Arc::new(Link {
            queue,
            dropped: AtomicU64::new(0),
            connected: AtomicBool::new(true),
            published,
        });
        let shared = Arc::new(Tasks {
            client: self.client,
            url: self.url,
            node: self.node,
            history: self.history,
        });
        let publisher = publish(runtime.clone(), shared.clone(), self.conn.clone(), outbound);
        runtime.spawn(async move {
            publisher.await;
            drop(done);
        });
        runtime.spawn(read(
            runtime.clone(),
            shared.clone(),
            side.clone(),
            self.last,
        ));
        runtime.spawn(beat(
            runtime.clone(),
            shared,
            self.conn,
            side,
            link.clone(),
            self.known,
        ));
        link
    }
}

/// What the broker's tasks share.
struct Tasks {
    client: Client,
    url: String,
    node: u64,
    history: usize,
}

impl Tasks {
    /// A connection, made again (with pauses that double up to
    /// [`MAX_BACKOFF`]) until one is made.
    async fn reconnect<R: Runtime>(&self, runtime: &R, read: bool) -> MultiplexedConnection {
        let mut pause = Duration::from_millis(50);
        loop {
            if let Ok(conn) = connect(&self.client, read).await {
                return conn;
            }
            runtime.timer_at(Instant::now() + pause).await;
            pause = (pause * 2).min(MAX_BACKOFF);
        }
    }
}

/// Sends queued events in order, a pipeline per batch; a failed batch is
/// sent again after reconnecting, so nothing taken from the queue is lost
/// and the order holds. Ends when the queue is closed and empty.
async fn publish<R: Runtime>(
    runtime: R,
    tasks: Arc<Tasks>,
    mut conn: MultiplexedConnection,
    outbound: Receiver<Outbound>,
) {
    let node = tasks.node.to_string();
    let presence = presence_key(tasks.node);
    let mut batch = Vec::with_capacity(BATCH);
    while let Ok(first) = outbound.recv().await {
        batch.push(first);
        while batch.len() < BATCH {
            match outbound.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        let mut pipe = redis::pipe();
        for event in &batch {
            let (history, change) = match event.kind {
                "msg" | "act" => (tasks.history, ""),
                "leave" => (0, "del"),
                _ => (0, "set"),
            };
            pipe.cmd("EVAL")
                .arg(APPEND)
                .arg(4)
                .arg(EVENTS)
                .arg(history_key(&event.room))
                .arg(ROOMS)
                .arg(&presence)
                .arg(EVENTS_KEPT)
                .arg(history)
                .arg(&event.room)
                .arg(change)
                .arg(event.client)
                .arg(format!("{}\n{}", event.room, event.nick))
                .arg("n")
                .arg(&node)
                .arg("c")
                .arg(event.client)
                .arg("t")
                .arg(event.kind)
                .arg("r")
                .arg(&event.room)
                .arg("k")
                .arg(&event.nick)
                .arg("x")
                .arg(&event.text)
                .arg("ts")
                .arg(event.ts)
                .ignore();
        }
        while pipe.query_async::<()>(&mut conn).await.is_err() {
            conn = tasks.reconnect(&runtime, false).await;
        }
        batch.clear();
    }
}

/// Reads the log from `last` on and hands the other nodes' events to the
/// chat; reconnects (and resumes from the last id) when Redis is lost.
async fn read<R: Runtime, S: Side>(runtime: R, tasks: Arc<Tasks>, side: Arc<S>, mut last: String) {
    let mut conn = tasks.reconnect(&runtime, true).await;
    loop {
        let reply: redis::RedisResult<Value> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(EVENTS)
            .arg(&last)
            .query_async(&mut conn)
            .await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(_) => {
                conn = tasks.reconnect(&runtime, true).await;
                if let Some(line) = gap(&mut conn, &last).await {
                    side.log(line);
                }
                continue;
            }
        };
        let mut events = Vec::new();
        for stream in items(&reply) {
            let [_, entries_of_stream] = items(stream) else {
                continue;
            };
            for (id, fields) in entries(entries_of_stream) {
                last = id;
                let Some((node, client, event)) = parse(&fields) else {
                    continue;
                };
                if node == tasks.node {
                    if let RemoteEvent::Renamed { nick } = event {
                        events.push(Inbound::Confirmed(ClientId(client), nick));
                    }
                } else {
                    events.push(Inbound::Remote(RemoteId { node, client }, event));
                }
            }
        }
        if !events.is_empty() {
            side.apply(events);
        }
    }
}

/// After a reconnect: whether entries after `last` were trimmed (or lost
/// with a restarted Redis) before this node read them.
async fn gap(conn: &mut MultiplexedConnection, last: &str) -> Option<Log> {
    let info: Value = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(EVENTS)
        .query_async(conn)
        .await
        .ok()?;
    let fields = items(&info);
    let field = |name: &str| {
        fields
            .chunks(2)
            .find(|pair| text(&pair[0]).as_deref() == Some(name))
            .and_then(|pair| pair.get(1))
    };
    let deleted = field("max-deleted-entry-id").and_then(text)?;
    let first = field("first-entry")
        .and_then(|entry| items(entry).first().and_then(text))
        .unwrap_or_default();
    (stream_id(&deleted) > stream_id(last)).then(|| Log::BrokerGap {
        after: last.to_owned(),
        resumed: first,
    })
}

/// Every [`HEARTBEAT`]: refreshes this node's entry and members, drops the
/// nodes silent for [`NODE_TIMEOUT`], loads the presence of nodes first
/// heard of, reserves guest numbers when the chat runs short, and logs
/// Redis lost or back, and dropped events.
async fn beat<R: Runtime, S: Side>(
    runtime: R,
    tasks: Arc<Tasks>,
    mut conn: MultiplexedConnection,
    side: Arc<S>,
    link: Arc<Link>,
    mut known: HashSet<u64>,
) {
    // Each other node's last heartbeat (Unix ms, its clock: the nodes'
    // clocks are taken to agree within a fraction of NODE_TIMEOUT).
    let mut seen: HashMap<u64, u64> = known.iter().map(|&n| (n, unix_ms())).collect();
    let mut next = Instant::now();
    // Whether to write the whole presence hash (after Redis came back: it
    // may have lost it); otherwise the publisher keeps it in step.
    let mut rewrite = false;
    loop {
        next += HEARTBEAT;
        runtime.timer_at(next.max(Instant::now())).await;
        let dropped = link.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            side.log(Log::BrokerDropped { count: dropped });
        }
        let members = rewrite.then(|| side.members());
        let result = async {
            heartbeat(&mut conn, tasks.node, members.as_deref()).await?;
            let beats: Vec<(u64, f64)> = redis::cmd("ZRANGE")
                .arg(NODES)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut conn)
                .await?;
            let cutoff = unix_ms().saturating_sub(NODE_TIMEOUT.as_millis() as u64);
            let live: Vec<(u64, u64)> = beats
                .into_iter()
                .map(|(node, at)| (node, at as u64))
                .filter(|&(_, at)| at > cutoff)
                .collect();
            let fresh: HashSet<u64> = live
                .iter()
                .map(|&(node, _)| node)
                .filter(|n| *n != tasks.node && !known.contains(n))
                .collect();
            let (presence, _) = load_presence(&mut conn, tasks.node, Some(&fresh)).await?;
            if side.wants_guests() {
                let end: u64 = redis::cmd("INCRBY")
                    .arg(GUESTS)
                    .arg(GUEST_BLOCK)
                    .query_async(&mut conn)
                    .await?;
                side.reserve_guests(end + 1 - GUEST_BLOCK, GUEST_BLOCK);
            }
            Ok::<_, redis::RedisError>((live, fresh, presence))
        }
        .await;
        match result {
            Ok((live, fresh, presence)) => {
                rewrite = false;
                if !link.connected.swap(true, Ordering::Relaxed) {
                    side.log(Log::BrokerBack {
                        url: tasks.url.clone(),
                    });
                }
                for (node, at) in live {
                    let last = seen.entry(node).or_insert(at);
                    *last = (*last).max(at);
                }
                known.extend(fresh);
                let mut events = presence;
                let cutoff = unix_ms().saturating_sub(NODE_TIMEOUT.as_millis() as u64);
                seen.retain(|&node, at| {
                    let alive = *at > cutoff;
                    if !alive {
                        known.remove(&node);
                        events.push(Inbound::Lost(node));
                    }
                    alive
                });
                if !events.is_empty() {
                    side.apply(events);
                }
            }
            Err(e) => {
                if link.connected.swap(false, Ordering::Relaxed) {
                    side.log(Log::BrokerLost {
                        url: tasks.url.clone(),
                        error: e.to_string(),
                    });
                }
                // While Redis is away nobody's heartbeat is seen: no node
                // is dropped for that, so the clocks restart on recovery.
                let now = unix_ms();
                seen.values_mut().for_each(|at| *at = now);
                rewrite = true;
                conn = tasks.reconnect(&runtime, false).await;
            }
        }
    }
}

/// Writes this node's heartbeat, and its members if given, in one
/// transaction.
async fn heartbeat(
    conn: &mut MultiplexedConnection,
    node: u64,
    members: Option<&[(u64, String, String)]>,
) -> redis::RedisResult<()> {
    let key = presence_key(node);
    let mut pipe = redis::pipe();
    pipe.atomic();
    pipe.cmd("ZADD")
        .arg(NODES)
        .arg(unix_ms())
        .arg(node)
        .ignore();
    if let Some(members) = members {
        pipe.cmd("DEL").arg(&key).ignore();
        if !members.is_empty() {
            let cmd = pipe.cmd("HSET").arg(&key);
            for (client, room, nick) in members {
                cmd.arg(client).arg(format!("{room}\n{nick}"));
            }
            cmd.ignore();
        }
    }
    pipe.cmd("PEXPIRE")
        .arg(&key)
        .arg(NODE_TIMEOUT.as_millis() as u64 * 3)
        .ignore();
    // Nodes gone for long are forgotten, so the set stays small.
    let old = unix_ms().saturating_sub(NODE_TIMEOUT.as_millis() as u64 * 60);
    pipe.cmd("ZREMRANGEBYSCORE")
        .arg(NODES)
        .arg("-inf")
        .arg(old)
        .ignore();
    pipe.query_async(conn).await
}

/// The members of the live nodes (only of `only`, if given) as joins, and
/// the nodes read.
async fn load_presence(
    conn: &mut MultiplexedConnection,
    node: u64,
    only: Option<&HashSet<u64>>,
) -> redis::RedisResult<(Vec<Inbound>, HashSet<u64>)> {
    let nodes: Vec<u64> = match only {
        Some(only) => only.iter().copied().collect(),
        None => {
            let cutoff = unix_ms().saturating_sub(NODE_TIMEOUT.as_millis() as u64);
            redis::cmd("ZRANGEBYSCORE")
                .arg(NODES)
                .arg(cutoff)
                .arg("+inf")
                .query_async(conn)
                .await?
        }
    };
    let mut joins = Vec::new();
    let mut read = HashSet::new();
    for other in nodes.into_iter().filter(|&n| n != node) {
        let members: HashMap<u64, String> = redis::cmd("HGETALL")
            .arg(presence_key(other))
            .query_async(conn)
            .await?;
        read.insert(other);
        let mut members: Vec<(u64, String)> = members.into_iter().collect();
        members.sort();
        for (client, value) in members {
            if let Some((room, nick)) = value.split_once('\n') {
                let who = RemoteId {
                    node: other,
                    client,
                };
                let event = RemoteEvent::Joined {
                    room: room.to_owned(),
                    nick: nick.to_owned(),
                };
                joins.push(Inbound::Remote(who, event));
            }
        }
    }
    Ok((joins, read))
}

/// Reads one log entry's fields: its node, client and event; `None` for an
/// entry that is not one of ours (never a panic).
fn parse(fields: &[(String, String)]) -> Option<(u64, u64, RemoteEvent)> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let node = get("n")?.parse().ok()?;
    let client = get("c")?.parse().ok()?;
    let room = get("r")?;
    tincan_chat::room_for_path(&format!("/{room}")).ok()?;
    let nick = get("k")?.to_owned();
    let said = |kind| {
        Some(RemoteEvent::Said(Appended {
            room: room.to_owned(),
            entry: Entry {
                kind,
                from: nick.clone(),
                text: get("x")?.to_owned(),
                ts: get("ts")?.parse().ok()?,
            },
        }))
    };
    let event = match get("t")? {
        "join" => RemoteEvent::Joined {
            room: room.to_owned(),
            nick: nick.clone(),
        },
        "leave" => RemoteEvent::Left,
        "nick" => RemoteEvent::Renamed { nick: nick.clone() },
        "msg" => said(Kind::Message)?,
        "act" => said(Kind::Action)?,
        _ => return None,
    };
    Some((node, client, event))
}

/// The elements of an array reply (none for anything else).
fn items(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        _ => &[],
    }
}

/// A string reply as text.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The entries of a stream reply (`XRANGE`, or one stream of `XREAD`): id
/// and fields.
fn entries(value: &Value) -> Vec<(String, Vec<(String, String)>)> {
    items(value)
        .iter()
        .filter_map(|entry| {
            let [id, fields] = items(entry) else {
                return None;
            };
            let fields = items(fields)
                .chunks(2)
                .filter_map(|pair| Some((text(pair.first()?)?, text(pair.get(1)?)?)))
                .collect();
            Some((text(id)?, fields))
        })
        .collect()
}

/// A stream id as numbers, for comparing.
fn stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

fn history_key(room: &str) -> String {
    format!("tincan:history:{room}")
}

fn presence_key(node: u64) -> String {
    format!("tincan:presence:{node}")
}

fn unix_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// A random node id: the standard library's per-process random hash keys,
/// mixed with the time and the process id.
fn node_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(unix_ms());
    hasher.write_u32(std::process::id());
    // Below 2^53, so that any JSON reader takes it exactly.
    hasher.finish() >> 11
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(fields.iter().map(|f| bulk(f)).collect()),
        ])
    }

    #[test]
    fn log_entries_are_parsed_and_foreign_ones_skipped() {
        let rows: [(&str, &[&str]); 5] = [
            (
                "1-0",
                &[
                    "n", "7", "c", "3", "t", "msg", "r", "lobby", "k", "al", "x", "hi", "ts", "5",
                ],
            ),
            (
                "2-0",
                &["n", "7", "c", "3", "t", "nick", "r", "lobby", "k", "bo"],
            ),
            (
                "3-0",
                &["n", "x", "c", "3", "t", "join", "r", "lobby", "k", "a"],
            ),
            (
                "4-0",
                &["n", "7", "c", "3", "t", "join", "r", "a/b", "k", "a"],
            ),
            (
                "5-0",
                &["n", "7", "c", "3", "t", "boom", "r", "lobby", "k", "a"],
            ),
        ];
        let mut reply: Vec<Value> = rows.iter().map(|(id, fields)| entry(id, fields)).collect();
        reply.push(Value::Nil);
        let reply = Value::Array(reply);
        let parsed: Vec<_> = entries(&reply)
            .iter()
            .map(|(id, fields)| (id.clone(), parse(fields)))
            .collect();
        assert_eq!(parsed.len(), 5);
        let said = RemoteEvent::Said(Appended {
            room: "lobby".into(),
            entry: Entry {
                kind: Kind::Message,
                from: "al".into(),
                text: "hi".into(),
                ts: 5,
            },
        });
        assert_eq!(parsed[0], ("1-0".into(), Some((7, 3, said))));
        assert_eq!(
            parsed[1].1,
            Some((7, 3, RemoteEvent::Renamed { nick: "bo".into() }))
        );
        assert!(parsed[2..].iter().all(|(_, p)| p.is_none()), "{parsed:?}");
    }

    #[test]
    fn stream_ids_compare_as_numbers() {
        assert!(stream_id("10-0") > stream_id("9-5"));
        assert!(stream_id("9-10") > stream_id("9-9"));
        assert_eq!(stream_id("0-0"), (0, 0));
    }

    #[test]
    fn the_queue_is_bounded_and_counts_what_it_drops() {
        let (queue, _outbound) = async_channel::bounded(1);
        let (_done, published) = async_channel::bounded(1);
        let link = Link {
            queue,
            dropped: AtomicU64::new(0),
            connected: AtomicBool::new(true),
            published,
        };
        let joined = (
            ClientId(1),
            Presence::Joined {
                room: "lobby".into(),
                nick: "guest-1".into(),
            },
        );
        link.publish(None, Some(&joined));
        link.publish(None, Some(&joined));
        link.publish(None, Some(&joined));
        assert_eq!(link.dropped.load(Ordering::Relaxed), 2);
    }
}
