//! # tincan-chat
//!
//! The tincan chat as a sans-io state machine: rooms, nicknames, presence,
//! history, rate limits, the two wire formats and room routing by path. Like
//! the protocol crate under it (`tincan-core`), it never touches a socket or
//! a clock: inputs (a join, a line of text, a leave, each with its time) go
//! in; deliveries (an encoded [`PreparedMessage`] and who gets it) come out.
//! The server moves the bytes.
//!
//! Clients send plain text; a line that starts with `/` is a command
//! (`/nick NAME`, `/who`, `/me ACTION`, `/help`; `//` sends a literal `/`).
//! What they receive depends on their [`Format`].
//!
//! # Hostile clients
//!
//! - **Text:** a message or `/me` action is refused, with an error to the
//!   sender only, when it is empty (only whitespace and invisible format
//!   characters such as U+200B–U+200D, U+2060, U+FEFF, U+00AD), longer than
//!   `max_text_len` characters, or contains a control character (U+0000–
//!   U+001F with newline, CR and tab, DEL U+007F, U+0080–U+009F, and the
//!   separators U+2028, U+2029) or a bidi control (U+061C, U+200E, U+200F,
//!   U+202A–U+202E, U+2066–U+2069). A refused message is never broadcast
//!   nor kept, so a plain client never sees a forged second line (`* …`,
//!   `! …`) or a terminal escape. The exact rule: [`text`].
//! - **Nicknames:** 1–24 ASCII letters, digits, `-`, `_`, `.`; a `/nick`
//!   whose [`skeleton`] equals that of another nickname in the room
//!   (`aIice` and `alice`) is refused, as are names that look like
//!   `guest-N`. The exact rule: [`nick`].
//! - **Floods:** each client has a token bucket ([`ChatConfig::rate`]);
//!   refused messages in a row close it with 1008. Per [`Address`] the chat
//!   keeps the lowest bucket, so a client that reconnects starts where it
//!   left off, not full: see [`rate`].
//! - **Work:** a room's history is encoded once per format and shared by
//!   every join until the next message. Joins and leaves wait
//!   [`ChatConfig::presence_delay`] and go out together, so a room that
//!   fills in a burst hears a few lines, not one per join; above
//!   [`ChatConfig::presence_limit`] members they are not announced at all.
//!   The caller hands them out when [`Chat::poll_timeout`] says
//!   ([`Chat::poll_presence`]).
//!
//! ```
//! use std::time::Duration;
//! use tincan_chat::{room_for_path, Address, Chat, ChatConfig, ClientId, Format, Now};
//!
//! let now = Now { mono: Duration::from_secs(1), unix_ms: 1_700_000_000_000 };
//! let mut chat = Chat::new(ChatConfig::default());
//! let room = room_for_path("/rust").unwrap();
//! // The 16 octets of the peer's IPv6 (or IPv4-mapped) address.
//! let address = Address([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]);
//! chat.join(ClientId(1), address, room, Format::Plain, now).unwrap();
//! chat.join(ClientId(2), address, room, Format::Plain, now).unwrap();
//!
//! // The second join waits to be announced with any others.
//! assert_eq!(chat.poll_timeout(), Some(now.mono + ChatConfig::default().presence_delay));
//!
//! let out = chat.input(ClientId(1), "hello", now);
//! assert_eq!(out.broadcast, Some(2));
//! // What waited is announced first, so the room hears things in order.
//! let [joined, said] = &out.deliveries[..] else { panic!("two deliveries") };
//! assert_eq!(*joined.to, [ClientId(1)]);
//! assert_eq!(&joined.message.frame()[2..], b"* guest-2 joined #rust");
//! assert_eq!(*said.to, [ClientId(1), ClientId(2)]);
//! // One frame, encoded once for every recipient: an unmasked FIN text frame.
//! assert_eq!(&said.message.frame()[2..], b"guest-1: hello");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod format;
pub mod id_map;
pub mod nick;
pub mod rate;
pub mod remote;
pub mod text;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

pub use format::{Entry, Format, Kind, Notice, SUBPROTOCOL};
pub use id_map::IdMap;
use nick::Name;
pub use nick::{skeleton, NickError};
pub use rate::{Address, AddressTable, RateLimit, TokenBucket};
pub use remote::{RemoteEvent, RemoteId};
pub use text::TextError;
use tincan_core::CloseCode;
use tincan_core::PreparedMessage;

/// Identifies one client of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

/// The time, as the chat needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Now {
    /// Monotonic time since an origin the caller picks (rate limits).
    pub mono: Duration,
    /// Wall-clock Unix time in milliseconds (the `ts` clients see).
    pub unix_ms: u64,
}

/// The chat's limits.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatConfig {
    /// Messages a room keeps for late joiners.
    pub history: usize,
    /// Longest chat message, in characters.
    pub max_text_len: usize,
    /// Clients on the whole server.
    pub max_clients: usize,
    /// Clients in one room.
    pub max_room_clients: usize,
    /// Rooms kept, with their history; an empty room is forgotten to make
    /// space for a new one.
    pub max_rooms: usize,
    /// How fast one client may send.
    pub rate: RateLimit,
    /// Refused messages in a row after which a flooding client is closed
    /// with 1008.
    pub flood_strikes: u32,
    /// Addresses whose lowest rate-limit bucket is kept, so that
    /// reconnecting does not refill it (see [`rate`]); the least recently
    /// used is forgotten first. 0 keeps none.
    pub max_addresses: usize,
    /// Joins and leaves are announced only in rooms of at most this many
    /// members. Announcing each one to everyone costs O(N²) deliveries as a
    /// big room fills (1000 joins would be 500,000 notices); in a bigger room
    /// `/who` still lists everyone.
    pub presence_limit: usize,
    /// Joins and leaves wait this long to be announced, so that those of a
    /// room filling or emptying in a burst (a server restarting, every page
    /// reconnecting) go out together: one line for a plain client, one
    /// write for every member, where each join would otherwise be a notice
    /// to each member. Zero announces each at once. Anything said in the
    /// room first announces what waits, so the order holds.
    pub presence_delay: Duration,
}

impl ChatConfig {
    /// The defaults, written once: the server's command line shows them.
    pub const DEFAULT: Self = Self {
        history: 50,
        max_text_len: 2000,
        max_clients: 10_000,
        max_room_clients: 1000,
        max_rooms: 1000,
        presence_limit: 100,
        presence_delay: Duration::from_millis(250),
        rate: RateLimit::DEFAULT,
        flood_strikes: 10,
        max_addresses: 10_000,
    };
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a client may not join; answered at handshake time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The path is not a room name.
    #[error(
        "no such room: rooms are '/' (the lobby) or '/NAME' with 1-32 letters, digits, '-' or '_'"
    )]
    BadRoom,
    /// The server has `max_clients` clients.
    #[error("server full: {0} clients connected, try again later")]
    ServerFull(usize),
    /// The room has `max_room_clients` clients.
    #[error("room full: #{0} has reached its limit, try again later")]
    RoomFull(String),
    /// Every one of `max_rooms` rooms has people in it.
    #[error("too many rooms in use, try again later")]
    TooManyRooms,
    /// This client id is in the chat already (a caller's mistake: an id
    /// joins once, and leaves before it joins again).
    #[error("already in the chat")]
    AlreadyJoined,
}

impl Refusal {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRoom => 404,
            Self::AlreadyJoined => 409,
            _ => 503,
        }
    }
}

/// One encoded message for some clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Who gets it: shared, as a room's members are by everything said
    /// there until one joins, leaves or changes compression.
    pub to: Arc<[ClientId]>,
    /// The frame, shared by all of them.
    pub message: PreparedMessage,
}

/// What one chat input leads to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Messages to send, in order.
    pub deliveries: Vec<Delivery>,
    /// When a chat message went to a room: how many clients it reached.
    pub broadcast: Option<usize>,
    /// The sender must be closed (persistent flooding).
    pub close: Option<(CloseCode, String)>,
    /// The entry this input appended to a room's history, for a server that
    /// keeps history outside the process (on disk, in a shared broker): the
    /// chat itself stays sans-io, so it hands the entry out rather than
    /// writing it anywhere.
    pub appended: Option<Appended>,
    /// A change of presence in a room (a join, a leave, a new nickname) and
    /// the local client it is about, for a server that shares its rooms with
    /// other nodes.
    pub presence: Option<(ClientId, Presence)>,
}

/// A change of presence (see [`Output::presence`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// A member joined `room` as `nick`.
    Joined {
        /// The room.
        room: String,
        /// Its nickname.
        nick: String,
    },
    /// A member left.
    Left {
        /// The room.
        room: String,
        /// Its nickname.
        nick: String,
    },
    /// A member took a new nickname.
    Renamed {
        /// The room.
        room: String,
        /// The nickname it had.
        old: String,
        /// The nickname it has.
        new: String,
    },
}

/// An entry appended to a room's history (see [`Output::appended`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The room.
    pub room: String,
    /// The entry.
    pub entry: Entry,
}

/// A local member: kept boxed in [`Chat`]'s map, so that the map's spare
/// slots (up to half of them, as it grows by doubling) cost a pointer each
/// rather than a whole record.
#[derive(Debug)]
struct Member {
    /// The room's name, shared with the room map's key.
    room: Arc<str>,
    /// Its nickname, with the skeleton for the confusable check.
    name: Name,
    format: Format,
    /// Its connection takes permessage-deflate: messages to it are also
    /// compressed, once for all.
    deflate: bool,
    address: Address,
    bucket: TokenBucket,
    strikes: u32,
    /// The nickname was changed here and other nodes have not yet seen the
    /// change in the shared order (see [`remote`]): it may still lose to a
    /// concurrent claim of the same name on another node.
    unconfirmed: bool,
}

#[derive(Debug, Default)]
struct Room {
    /// In join order.
    members: Vec<ClientId>,
    /// The members by format, made when something is said and kept until
    /// one joins, leaves or changes compression ([`Chat::set_deflate`]), so
    /// that what is said costs no pass over them.
    recipients: Option<[Group; 2]>,
    /// Members on other nodes, in join order (see [`remote`]).
    remote: Vec<RemoteId>,
    history: VecDeque<Entry>,
    /// The history encoded for each format (plain, JSON), made when a client
    /// of that format first joins and dropped when the history changes, so
    /// that N joins encode it once.
    encoded_history: [Option<Vec<PreparedMessage>>; 2],
    last_active: Duration,
    /// Joins and leaves not yet announced, in order, and when they are due.
    presence: Vec<PresenceEvent>,
    presence_due: Duration,
}

/// A join or leave waiting to be announced.
#[derive(Debug)]
struct PresenceEvent {
    joined: bool,
    /// Announced; not for a join past the presence limit, kept only so that
    /// its member is not told what came before it.
    told: bool,
    nick: String,
    /// The local member that joined: it is told neither of its own join
    /// nor of what its room heard before it.
    local: Option<ClientId>,
}

/// The members of a room (or of a notice's recipients) who take one
/// format.
#[derive(Debug, Clone)]
struct Group {
    ids: Arc<[ClientId]>,
    /// Someone in it takes compressed frames.
    deflate: bool,
}

impl Group {
    /// Splits `to` by format ([`Chat::format_index`]), with one lookup a
    /// member, and finds their room (none if none is a member).
    fn split<'a>(
        members: &'a IdMap<Box<Member>>,
        to: &[ClientId],
    ) -> ([Group; 2], Option<&'a str>) {
        let mut ids: [Vec<ClientId>; 2] = Default::default();
        let mut deflate = [false; 2];
        let mut room = None;
        for id in to {
            if let Some(m) = members.get(id) {
                let i = Chat::format_index(m.format);
                ids[i].push(*id);
                deflate[i] |= m.deflate;
                room.get_or_insert(&*m.room);
            }
        }
        let [plain, json] = ids;
        let groups = [
            Group {
                ids: plain.into(),
                deflate: deflate[0],
            },
            Group {
                ids: json.into(),
                deflate: deflate[1],
            },
        ];
        (groups, room)
    }
}

impl Room {
    fn push_history(&mut self, entry: Entry, limit: usize) {
        if limit == 0 {
            return;
        }
        if self.history.len() >= limit {
            self.history.pop_front();
        }
        self.history.push_back(entry);
        self.encoded_history = [None, None];
    }
}

/// The state of the whole chat.
#[derive(Debug)]
pub struct Chat {
    config: ChatConfig,
    /// By name; every member holds its room's name (the key), not a copy.
    rooms: HashMap<Arc<str>, Room>,
    members: IdMap<Box<Member>>,
    addresses: AddressTable,
    guests: u64,
    /// The guest numbers this node may use, when they are shared with other
    /// nodes: the last of the current block, and the next block reserved.
    guest_block: Option<u64>,
    next_guest_block: Option<(u64, u64)>,
    /// Members on other nodes.
    remote_members: HashMap<RemoteId, remote::RemoteMember>,
    /// Rooms with joins and leaves to announce, by when, earliest first (the
    /// delay is one for all). A room may be listed again, or announced
    /// early: its own `presence_due` says.
    presence_due: VecDeque<(Duration, Arc<str>)>,
    /// How many times a history was encoded (for the tests of the cache).
    #[cfg(test)]
    history_encodings: usize,
}

impl Default for Chat {
    fn default() -> Self {
        Self::new(ChatConfig::DEFAULT)
    }
}

/// The room of a member (empty if it is not one: never, for a caller that
/// found it before).
fn member_room(members: &IdMap<Box<Member>>, id: ClientId) -> String {
    members
        .get(&id)
        .map(|m| m.room.to_string())
        .unwrap_or_default()
}

/// The room that a request path names: `/` is the lobby.
pub fn room_for_path(path: &str) -> Result<&str, Refusal> {
    match path.strip_prefix('/') {
        Some("") => Ok("lobby"),
        Some(name)
            if name.len() <= 32
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(name)
        }
        _ => Err(Refusal::BadRoom),
    }
}

impl Chat {
    /// An empty chat with these limits.
    pub fn new(config: ChatConfig) -> Self {
        Self {
            addresses: AddressTable::new(config.max_addresses),
            config,
            rooms: HashMap::new(),
            members: IdMap::default(),
            guests: 0,
            guest_block: None,
            next_guest_block: None,
            remote_members: HashMap::new(),
            presence_due: VecDeque::new(),
            #[cfg(test)]
            history_encodings: 0,
        }
    }

    /// How many clients are in the chat.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether nobody is in the chat.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Rooms with at least one member, and the members of the largest.
    pub fn room_sizes(&self) -> (usize, usize) {
        self.rooms
            .values()
            .map(|room| room.members.len())
            .filter(|&n| n > 0)
            .fold((0, 0), |(rooms, largest), n| (rooms + 1, largest.max(n)))
    }

    /// Every local member: its id, room and nickname (what a node tells the
    /// others it has).
    pub fn local_members(&self) -> impl Iterator<Item = (ClientId, &str, &str)> {
        self.members
            .iter()
            .map(|(id, m)| (*id, &*m.room, m.name.nick()))
    }

    /// A client's nickname.
    pub fn nick(&self, id: ClientId) -> Option<&str> {
        self.members.get(&id).map(|m| m.name.nick())
    }

    /// The key of room `name` in the room map, to share: the existing one,
    /// or a new one for a room about to be made.
    fn room_key(&self, name: &str) -> Arc<str> {
        match self.rooms.get_key_value(name) {
            Some((key, _)) => key.clone(),
            None => Arc::from(name),
        }
    }

    /// Restores a room's history kept elsewhere (a store read at start),
    /// oldest first: the newest `history` entries are kept. A room that does
    /// not exist yet is made if there is space for it (`max_rooms`), else
    /// the history is not restored and `false` is returned.
    pub fn restore(&mut self, room: &str, entries: impl IntoIterator<Item = Entry>) -> bool {
        if !self.rooms.contains_key(room) && self.rooms.len() >= self.config.max_rooms {
            return false;
        }
        let limit = self.config.history;
        let r = self.rooms.entry(self.room_key(room)).or_default();
        for entry in entries {
            r.push_history(entry, limit);
        }
        true
    }

    /// Checks that a client may join `room` now.
    pub fn check_join(&self, room: &str) -> Result<(), Refusal> {
        if self.members.len() >= self.config.max_clients {
            return Err(Refusal::ServerFull(self.members.len()));
        }
        match self.rooms.get(room) {
            Some(r) if r.members.len() >= self.config.max_room_clients => {
                Err(Refusal::RoomFull(room.to_owned()))
            }
            None if self.rooms.len() >= self.config.max_rooms
                && self.rooms.values().all(|r| !r.members.is_empty()) =>
            {
                Err(Refusal::TooManyRooms)
            }
            _ => Ok(()),
        }
    }

    /// Adds a client that connected from `address` to `room` as `guest-N`
    /// (numbered in join order): it gets a welcome and the room's history;
    /// the others a join notice, at once or with other joins and leaves
    /// (see [`ChatConfig::presence_delay`]). Its rate limit starts from the lowest
    /// bucket recorded for `address` (see [`rate`]).
    pub fn join(
        &mut self,
        id: ClientId,
        address: Address,
        room: &str,
        format: Format,
        now: Now,
    ) -> Result<Output, Refusal> {
        if self.members.contains_key(&id) {
            return Err(Refusal::AlreadyJoined);
        }
        self.check_join(room)?;
        if !self.rooms.contains_key(room) && self.rooms.len() >= self.config.max_rooms {
            self.forget_an_empty_room();
        }
        let nick = self.next_guest();
        let key = self.room_key(room);
        let member = Member {
            room: key.clone(),
            name: Name::new(&nick),
            format,
            deflate: false,
            address,
            bucket: self
                .addresses
                .bucket_for(address, self.config.rate, now.mono),
            strikes: 0,
            unconfirmed: false,
        };
        self.members.insert(id, Box::new(member));
        let r = self.rooms.entry(key).or_default();
        r.members.push(id);
        r.recipients = None;
        r.last_active = now.mono;
        let mut out = Output::default();
        self.notify(&mut out, &[id], &Notice::Welcome { nick: &nick }, now);
        for message in self.encoded_history(room, format) {
            out.deliveries.push(Delivery {
                to: Arc::from([id]),
                message,
            });
        }
        let r = &self.rooms[room];
        let told = r.members.len() + r.remote.len() <= self.config.presence_limit;
        // Past the limit, kept only while something waits, which this
        // member must not be told (it sees the room in `/who`).
        if told || !r.presence.is_empty() {
            let event = PresenceEvent {
                joined: true,
                told,
                nick: nick.clone(),
                local: Some(id),
            };
            self.record_presence(&mut out, room, event, now);
        }
        out.presence = Some((
            id,
            Presence::Joined {
                room: room.to_owned(),
                nick,
            },
        ));
        Ok(out)
    }

    /// Removes a client; the rest of its room gets a leave notice (see
    /// [`ChatConfig::presence_delay`]), unless the client came and went
    /// before its join was announced and no local member joined since.
    pub fn leave(&mut self, id: ClientId, now: Now) -> Output {
        let mut out = Output::default();
        let Some(member) = self.members.remove(&id) else {
            return out;
        };
        out.presence = Some((
            id,
            Presence::Left {
                room: member.room.to_string(),
                nick: member.name.nick().to_owned(),
            },
        ));
        if let Some(room) = self.rooms.get_mut(&member.room) {
            let announced = room.members.len() + room.remote.len() <= self.config.presence_limit;
            room.members.retain(|&m| m != id);
            room.recipients = None;
            room.last_active = now.mono;
            // Left before its join was announced: neither is, unless a
            // local member joined since, which was shown it in `/who`, and
            // the leave is announced.
            let unannounced = room.presence.iter().position(|e| e.local == Some(id));
            if let Some(join) = unannounced {
                let shown = room.presence[join + 1..]
                    .iter()
                    .any(|e| e.joined && e.local.is_some());
                if !shown || !announced {
                    room.presence.remove(join);
                    return out;
                }
            }
            if !announced {
                return out;
            }
            let event = PresenceEvent {
                joined: false,
                told: true,
                nick: member.name.nick().to_owned(),
                local: None,
            };
            self.record_presence(&mut out, &member.room, event, now);
        }
        out
    }

    /// When the chat next wants [`Chat::poll_presence`]: the earliest time
    /// a room's joins and leaves are due (see
    /// [`ChatConfig::presence_delay`]). A join or a leave may set it, so a
    /// caller asks again after each; it never moves later except by
    /// [`Chat::poll_presence`].
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.presence_due.front().map(|&(at, _)| at)
    }

    /// Announces the joins and leaves of one room whose are due at `now`:
    /// the room and the notices, or `None` once no room's are due. Called
    /// until `None` from [`Chat::poll_timeout`]'s time on.
    pub fn poll_presence(&mut self, now: Now) -> Option<(String, Output)> {
        while let Some(&(at, _)) = self.presence_due.front() {
            if at > now.mono {
                return None;
            }
            let Some((_, room)) = self.presence_due.pop_front() else {
                break;
            };
            // Announced early, or gone, or listed again for later.
            let due = self
                .rooms
                .get(&room)
                .is_some_and(|r| !r.presence.is_empty() && r.presence_due <= now.mono);
            if due {
                let mut out = Output::default();
                self.announce(&mut out, &room, now);
                return Some((room.to_string(), out));
            }
        }
        None
    }

    /// Keeps a join or leave in `room` to announce: now with no delay,
    /// otherwise with the others in the room once the delay is over.
    fn record_presence(&mut self, out: &mut Output, room: &str, event: PresenceEvent, now: Now) {
        let delay = self.config.presence_delay;
        let Some(key) = self.rooms.get_key_value(room).map(|(k, _)| k.clone()) else {
            return;
        };
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        // Nobody to tell (a member that joins later learns who is there
        // from `/who`): a join into a room where nothing waits, or a leave
        // that empties it, which makes what waits moot.
        let nobody = r.members.iter().all(|&m| Some(m) == event.local);
        if nobody && (r.presence.is_empty() || !event.joined) {
            r.presence.clear();
            return;
        }
        let first = r.presence.is_empty();
        r.presence.push(event);
        if delay.is_zero() {
            return self.announce(out, room, now);
        }
        if first {
            // No sooner than a room listed before it (a caller's `now` may
            // be a little stale), so that the list stays in order.
            let after = self
                .presence_due
                .back()
                .map_or(Duration::ZERO, |&(at, _)| at);
            let at = now.mono.saturating_add(delay).max(after);
            r.presence_due = at;
            self.presence_due.push_back((at, key));
        }
    }

    /// Announces what waits in `room`, in order: each run of joins (or of
    /// leaves) as one notice, to the members that were in the room before
    /// it. A member that joined in the run hears of those after it only.
    /// Joins past the presence limit are not announced: they only keep
    /// their members from hearing what came before them.
    fn announce(&mut self, out: &mut Output, room: &str, now: Now) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let events = std::mem::take(&mut r.presence);
        let members = r.members.clone();
        // Local members whose join is not yet reached: nothing before it is
        // told to them.
        let mut unborn: HashSet<ClientId> = events
            .iter()
            .filter(|e| e.joined)
            .filter_map(|e| e.local)
            .collect();
        for run in events.chunk_by(|a, b| (a.joined, a.told) == (b.joined, b.told)) {
            if run[0].told {
                let before: Vec<ClientId> = members
                    .iter()
                    .copied()
                    .filter(|m| !unborn.contains(m))
                    .collect();
                self.announce_run(out, run, &before, now);
            }
            if run[0].joined {
                for id in run.iter().filter_map(|e| e.local) {
                    unborn.remove(&id);
                }
            }
        }
    }

    /// One run of joins or of leaves, to `before` (the members in the room
    /// before it) and to the members that joined in it, each of those after
    /// its own join: a plain client gets one line, a JSON one an object per
    /// member, each object made once for all that get it.
    fn announce_run(&self, out: &mut Output, run: &[PresenceEvent], before: &[ClientId], now: Now) {
        let nicks: Vec<&str> = run.iter().map(|e| e.nick.as_str()).collect();
        if !run[0].joined {
            return self.notify(out, before, &Notice::Leave { nicks: &nicks }, now);
        }
        let format = |id: &ClientId| self.members.get(id).map(|m| m.format);
        let (mut json, plain): (Vec<ClientId>, Vec<ClientId>) = before
            .iter()
            .partition(|id| format(id) == Some(Format::Json));
        self.notify(out, &plain, &Notice::Join { nicks: &nicks }, now);
        for (i, event) in run.iter().enumerate() {
            let tail = &nicks[i + 1..];
            match event.local {
                Some(id) if !tail.is_empty() && format(&id) == Some(Format::Plain) => {
                    self.notify(out, &[id], &Notice::Join { nicks: tail }, now);
                }
                _ => {}
            }
        }
        for (i, event) in run.iter().enumerate() {
            self.notify(
                out,
                &json,
                &Notice::Join {
                    nicks: &nicks[i..=i],
                },
                now,
            );
            json.extend(event.local.filter(|id| format(id) == Some(Format::Json)));
        }
    }

    /// Announces what waits in `room` before something else is said there,
    /// so that the room hears things in the order they happened.
    fn announce_before(&mut self, out: &mut Output, room: &str, now: Now) {
        if self.rooms.get(room).is_some_and(|r| !r.presence.is_empty()) {
            self.announce(out, room, now);
        }
    }

    /// A text message from a client: a chat message or a command.
    pub fn input(&mut self, id: ClientId, text: &str, now: Now) -> Output {
        let mut out = Output::default();
        let rate = self.config.rate;
        let strikes = self.config.flood_strikes;
        let Some(member) = self.members.get_mut(&id) else {
            return out;
        };
        let taken = member.bucket.take(rate, now.mono);
        self.addresses
            .record(member.address, member.bucket, rate, now.mono);
        if !taken {
            member.strikes += 1;
            if member.strikes >= strikes {
                out.close = Some((
                    CloseCode::PolicyViolation,
                    "flooding: too many messages".into(),
                ));
            } else {
                let error = format!(
                    "slow down: at most {} messages at once and {} per second",
                    rate.burst, rate.per_second
                );
                self.notify(&mut out, &[id], &Notice::Error(&error), now);
            }
            return out;
        }
        member.strikes = 0;
        // `raw` is all that follows the command name, separator included, so
        // that the text rule sees every character (`/me\n* x` included).
        let (command, raw) = match text.strip_prefix('/') {
            Some(literal) if literal.starts_with('/') => (None, literal),
            Some(command) => {
                let end = command.find(char::is_whitespace).unwrap_or(command.len());
                (Some(&command[..end]), &command[end..])
            }
            None => (None, text),
        };
        let rest = raw.trim();
        match command {
            None => self.say(&mut out, id, Kind::Message, raw, raw, now),
            Some("me") => self.say(&mut out, id, Kind::Action, raw, rest, now),
            Some("nick") => self.rename(&mut out, id, rest, now),
            Some("who") => {
                let room = &self.rooms[&self.members[&id].room];
                let nicks: Vec<&str> = room
                    .members
                    .iter()
                    .map(|m| self.members[m].name.nick())
                    .chain(
                        room.remote
                            .iter()
                            .filter_map(|r| self.remote_members.get(r))
                            .map(|r| r.name.nick()),
                    )
                    .collect();
                self.notify(&mut out, &[id], &Notice::Who(&nicks), now);
            }
            Some("help") => {
                let help = "Commands: /nick NAME (change your nickname), /who (who is here), \
                            /me ACTION (describe an action), /help (this text). \
                            Start a message with // to send a literal /.";
                self.notify(&mut out, &[id], &Notice::Info(help), now);
            }
            Some(other) => {
                // Echoed to the sender only, but escaped all the same.
                let other = match text::check_chars(other) {
                    Ok(()) => other.to_owned(),
                    Err(_) => other.escape_debug().to_string(),
                };
                let error = format!("unknown command '/{other}': try /help");
                self.notify(&mut out, &[id], &Notice::Error(&error), now);
            }
        }
        out
    }

    /// A message or action `text` (an action trimmed from `raw`), checked
    /// against [`text`]'s rule, `raw` for its characters: refused ones get
    /// an error to the sender only (they used a token, as every input does,
    /// but are no flood strike: the sender is not too fast).
    fn say(&mut self, out: &mut Output, id: ClientId, kind: Kind, raw: &str, text: &str, now: Now) {
        let checked = text::check_chars(raw)
            .and_then(|()| text::check_message(text, self.config.max_text_len));
        if let Err(error) = checked {
            return self.notify(out, &[id], &Notice::Error(&error.to_string()), now);
        }
        let room = self.members[&id].room.clone();
        self.announce_before(out, &room, now);
        let member = &self.members[&id];
        let entry = Entry {
            kind,
            from: member.name.nick().to_owned(),
            text: text.to_owned(),
            ts: now.unix_ms,
        };
        let Some(room) = self.rooms.get_mut(&member.room) else {
            return;
        };
        room.last_active = now.mono;
        room.push_history(entry.clone(), self.config.history);
        let room_name = member.room.clone();
        out.broadcast = Some(self.notify_room(out, &room_name, &Notice::Said(&entry), now));
        out.appended = Some(Appended {
            room: member_room(&self.members, id),
            entry,
        });
    }

    /// A `/nick`, checked against [`nick`]'s rules.
    fn rename(&mut self, out: &mut Output, id: ClientId, nick: &str, now: Now) {
        let member = &self.members[&id];
        if nick == member.name.nick() {
            let info = format!("you are already {nick}");
            return self.notify(out, &[id], &Notice::Info(&info), now);
        }
        let new_skeleton = skeleton(nick);
        let room = &self.rooms[&member.room];
        // Every other nickname in the room, here and on other nodes, with
        // its skeleton.
        let others = || {
            room.members
                .iter()
                .filter(|&&m| m != id)
                .filter_map(|m| self.members.get(m))
                .map(|m| &m.name)
                .chain(
                    room.remote
                        .iter()
                        .filter_map(|r| self.remote_members.get(r))
                        .map(|r| &r.name),
                )
        };
        let checked = nick::check_nick(nick).and_then(|()| {
            if others().any(|other| other.nick().eq_ignore_ascii_case(nick)) {
                return Err(NickError::Taken {
                    nick: nick.to_owned(),
                    room: member.room.to_string(),
                });
            }
            match others().find(|other| other.skeleton() == new_skeleton) {
                Some(other) => Err(NickError::Confusable {
                    nick: nick.to_owned(),
                    other: other.nick().to_owned(),
                    room: member.room.to_string(),
                }),
                None => Ok(()),
            }
        });
        if let Err(error) = checked {
            return self.notify(out, &[id], &Notice::Error(&error.to_string()), now);
        }
        self.set_nick(out, id, nick.to_owned(), now);
        if let Some(member) = self.members.get_mut(&id) {
            member.unconfirmed = true;
        }
    }

    /// Gives a member a new nickname (already checked), tells its room, and
    /// reports the change.
    fn set_nick(&mut self, out: &mut Output, id: ClientId, nick: String, now: Now) {
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        let key = member.room.clone();
        self.announce_before(out, &key, now);
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut member.name, Name::new(&nick));
        let old = old.nick().to_owned();
        let room = member.room.to_string();
        let everyone = self
            .rooms
            .get(&*member.room)
            .map(|r| r.members.clone())
            .unwrap_or_default();
        self.notify(
            out,
            &everyone,
            &Notice::Nick {
                old: &old,
                new: &nick,
            },
            now,
        );
        out.presence = Some((
            id,
            Presence::Renamed {
                room,
                old,
                new: nick,
            },
        ));
    }

    /// The next `guest-N` nickname: numbered in join order, from the
    /// reserved blocks when there are some (see [`Chat::reserve_guests`]).
    fn next_guest(&mut self) -> String {
        if let Some(last) = self.guest_block {
            if self.guests >= last {
                if let Some((first, count)) = self.next_guest_block.take() {
                    self.guests = first.saturating_sub(1);
                    self.guest_block = Some(first.saturating_add(count).saturating_sub(1));
                }
            }
        }
        self.guests += 1;
        format!("guest-{}", self.guests)
    }

    /// Reserves `count` guest numbers from `first` on for this node, when
    /// several nodes share rooms and must not hand out the same `guest-N`.
    /// The first block is used at once; a later one when the current block
    /// runs out.
    pub fn reserve_guests(&mut self, first: u64, count: u64) {
        if self.guest_block.is_none() {
            self.guests = first.saturating_sub(1);
            self.guest_block = Some(first.saturating_add(count).saturating_sub(1));
        } else {
            self.next_guest_block = Some((first, count));
        }
    }

    /// Whether the chat wants another block of guest numbers: its current
    /// block is at most half left and none is waiting.
    pub fn wants_guests(&self, count: u64) -> bool {
        match self.guest_block {
            Some(last) => {
                self.next_guest_block.is_none() && last.saturating_sub(self.guests) <= count / 2
            }
            None => false,
        }
    }

    /// Marks a member whose connection negotiated permessage-deflate (RFC
    /// 7692): what it is sent is then also compressed, once for every such
    /// member. A room's history always is (it is encoded once and kept).
    pub fn set_deflate(&mut self, id: ClientId, deflate: bool) {
        if let Some(member) = self.members.get_mut(&id) {
            member.deflate = deflate;
            if let Some(room) = self.rooms.get_mut(&member.room) {
                room.recipients = None;
            }
        }
    }

    /// Encodes `notice` once per format among `to` and adds the deliveries.
    fn notify(&self, out: &mut Output, to: &[ClientId], notice: &Notice<'_>, now: Now) {
        if let (groups, Some(room)) = Group::split(&self.members, to) {
            Self::emit(out, &groups, room, notice, now);
        }
    }

    /// [`Chat::notify`] to every local member of `room`, split by format
    /// once until one joins, leaves or changes compression; returns how
    /// many they are.
    fn notify_room(
        &mut self,
        out: &mut Output,
        room: &str,
        notice: &Notice<'_>,
        now: Now,
    ) -> usize {
        let Some(r) = self.rooms.get_mut(room) else {
            return 0;
        };
        let members = &self.members;
        let groups = r
            .recipients
            .get_or_insert_with(|| Group::split(members, &r.members).0);
        Self::emit(out, groups, room, notice, now);
        r.members.len()
    }

    /// Adds one delivery per text of `notice` in each group's format.
    fn emit(out: &mut Output, groups: &[Group; 2], room: &str, notice: &Notice<'_>, now: Now) {
        for (format, group) in [Format::Plain, Format::Json].into_iter().zip(groups) {
            if group.ids.is_empty() {
                continue;
            }
            for text in format::render(format, room, notice, now.unix_ms) {
                let message = PreparedMessage::text(&text);
                out.deliveries.push(Delivery {
                    to: Arc::clone(&group.ids),
                    message: if group.deflate {
                        message.with_deflate()
                    } else {
                        message
                    },
                });
            }
        }
    }

    /// Where `format` goes in a pair of per-format values.
    fn format_index(format: Format) -> usize {
        match format {
            Format::Plain => 0,
            Format::Json => 1,
        }
    }

    /// The history of `room` encoded for `format`: from the cache, or
    /// encoded now and kept. Its JSON envelope's `ts` is the newest entry's,
    /// so that the encoding depends on the history only.
    fn encoded_history(&mut self, room: &str, format: Format) -> Vec<PreparedMessage> {
        let Some(r) = self.rooms.get_mut(room) else {
            return Vec::new();
        };
        let slot = &mut r.encoded_history[Self::format_index(format)];
        if let Some(messages) = slot {
            return messages.clone();
        }
        let Some(newest) = r.history.back() else {
            return Vec::new();
        };
        let entries: Vec<&Entry> = r.history.iter().collect();
        let messages: Vec<PreparedMessage> =
            format::render(format, room, &Notice::History(&entries), newest.ts)
                .iter()
                .map(|text| PreparedMessage::text(text).with_deflate())
                .collect();
        *slot = Some(messages.clone());
        #[cfg(test)]
        {
            self.history_encodings += 1;
        }
        messages
    }

    fn forget_an_empty_room(&mut self) {
        let oldest = self
            .rooms
            .iter()
            .filter(|(_, r)| r.members.is_empty() && r.remote.is_empty())
            .min_by_key(|(_, r)| r.last_active)
            .map(|(name, _)| name.clone());
        if let Some(name) = oldest {
            self.rooms.remove(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tincan_core::FrameHeader;

    mod deflate;
    mod history_cache;
    mod history_store;
    mod nicknames;
    mod presence;
    mod recipients;
    mod reconnects;
    mod remote_members;
    mod text_rules;

    /// A chat that announces each join and leave at once (see
    /// [`ChatConfig::presence_delay`]), for the tests of what is announced.
    fn immediate() -> Chat {
        Chat::new(ChatConfig {
            presence_delay: Duration::ZERO,
            ..ChatConfig::DEFAULT
        })
    }

    fn at(secs: u64) -> Now {
        Now {
            mono: Duration::from_secs(secs),
            unix_ms: secs * 1000,
        }
    }

    /// The texts `id` receives from `out`, in order.
    fn texts(out: &Output, id: u64) -> Vec<String> {
        out.deliveries
            .iter()
            .filter(|d| d.to.contains(&ClientId(id)))
            .map(|d| {
                let frame = d.message.frame();
                let (_, len) = FrameHeader::decode(frame).expect("valid").expect("whole");
                String::from_utf8(frame[len..].to_vec()).expect("text")
            })
            .collect()
    }

    /// A distinct address per client id.
    fn addr(id: u64) -> Address {
        let mut octets = [0; 16];
        octets[8..].copy_from_slice(&id.to_be_bytes());
        Address(octets)
    }

    fn join(chat: &mut Chat, id: u64, room: &str) -> Output {
        chat.join(ClientId(id), addr(id), room, Format::Plain, at(0))
            .expect("room for everyone")
    }

    #[test]
    fn joins_and_leaves_are_announced_up_to_the_presence_limit() {
        let mut chat = Chat::new(ChatConfig {
            presence_delay: Duration::ZERO,
            presence_limit: 3,
            ..ChatConfig::DEFAULT
        });
        for id in 1..=3 {
            join(&mut chat, id, "big");
        }
        // The third member makes three: still announced, to the other two.
        let fourth = join(&mut chat, 4, "big");
        assert!(texts(&fourth, 1).is_empty(), "four is over the limit");
        assert_eq!(
            texts(&fourth, 4)[0],
            "* Welcome to #big, guest-4. Type /help for commands."
        );
        let leave = chat.leave(ClientId(4), at(1));
        assert!(leave.deliveries.is_empty(), "left a room of four");
        let leave = chat.leave(ClientId(3), at(1));
        assert_eq!(texts(&leave, 1), ["* guest-3 left #big"]);
        let again = join(&mut chat, 5, "big");
        assert_eq!(texts(&again, 1), ["* guest-5 joined #big"]);
        // /who lists everyone whatever the size.
        let who = chat.input(ClientId(1), "/who", at(2));
        assert_eq!(texts(&who, 1), ["* In #big (3): guest-1, guest-2, guest-5"]);
    }

    #[test]
    fn rooms_come_from_paths() {
        assert_eq!(room_for_path("/"), Ok("lobby"));
        assert_eq!(room_for_path("/rust-lang_2"), Ok("rust-lang_2"));
        for bad in [
            "/a/b",
            "/a b",
            "/ü",
            &format!("/{}", "x".repeat(33)),
            "nope",
        ] {
            assert_eq!(room_for_path(bad), Err(Refusal::BadRoom), "{bad}");
        }
        assert_eq!(Refusal::BadRoom.status(), 404);
        assert_eq!(Refusal::ServerFull(1).status(), 503);
    }

    #[test]
    fn a_client_joins_once() {
        let mut chat = immediate();
        join(&mut chat, 1, "a");
        join(&mut chat, 2, "a");
        assert_eq!(
            chat.join(ClientId(1), addr(1), "b", Format::Plain, at(1)),
            Err(Refusal::AlreadyJoined)
        );
        assert_eq!(Refusal::AlreadyJoined.status(), 409);
        // Still in #a only: its commands and messages work there.
        assert_eq!(
            texts(&chat.input(ClientId(1), "/who", at(1)), 1),
            ["* In #a (2): guest-1, guest-2"]
        );
        assert_eq!(
            texts(&chat.input(ClientId(2), "hi", at(1)), 1),
            ["guest-2: hi"]
        );
        chat.leave(ClientId(1), at(2));
        join(&mut chat, 1, "b");
    }

    #[test]
    fn messages_stay_in_their_room() {
        let mut chat = immediate();
        let welcome = join(&mut chat, 1, "rust");
        assert_eq!(
            texts(&welcome, 1),
            ["* Welcome to #rust, guest-1. Type /help for commands."]
        );
        let joined = join(&mut chat, 2, "rust");
        assert_eq!(texts(&joined, 1), ["* guest-2 joined #rust"]);
        join(&mut chat, 3, "lobby");
        let out = chat.input(ClientId(1), "hello", at(1));
        assert_eq!(out.broadcast, Some(2));
        assert_eq!(texts(&out, 1), ["guest-1: hello"]);
        assert_eq!(texts(&out, 2), ["guest-1: hello"]);
        assert!(texts(&out, 3).is_empty());
        // One encoding for both recipients.
        assert_eq!(out.deliveries.len(), 1);
    }

    #[test]
    fn each_format_gets_its_own_encoding() {
        let mut chat = immediate();
        join(&mut chat, 1, "lobby");
        chat.join(ClientId(2), addr(2), "lobby", Format::Json, at(0))
            .expect("room");
        let out = chat.input(ClientId(1), "hi", at(5));
        assert_eq!(texts(&out, 1), ["guest-1: hi"]);
        assert_eq!(
            texts(&out, 2),
            [r#"{"type":"message","room":"lobby","from":"guest-1","text":"hi","ts":5000}"#]
        );
    }

    #[test]
    fn guests_are_numbered_in_join_order() {
        let mut chat = immediate();
        // Client ids also count connections that never joined.
        join(&mut chat, 7, "lobby");
        join(&mut chat, 40, "rust");
        assert_eq!(chat.nick(ClientId(7)), Some("guest-1"));
        assert_eq!(chat.nick(ClientId(40)), Some("guest-2"));
    }

    #[test]
    fn nicknames_are_checked_and_announced() {
        let mut chat = immediate();
        join(&mut chat, 1, "lobby");
        join(&mut chat, 2, "lobby");
        let out = chat.input(ClientId(1), "/nick alice", at(1));
        assert_eq!(texts(&out, 2), ["* guest-1 is now known as alice"]);
        assert_eq!(chat.nick(ClientId(1)), Some("alice"));
        let clash = chat.input(ClientId(2), "/nick ALICE", at(1));
        assert_eq!(texts(&clash, 2), ["! nickname 'ALICE' is taken in #lobby"]);
        assert!(texts(&clash, 1).is_empty());
        for bad in [
            "/nick",
            "/nick a b",
            "/nick <script>",
            &format!("/nick {}", "n".repeat(25)),
        ] {
            let out = chat.input(ClientId(2), bad, at(2));
            assert_eq!(
                texts(&out, 2),
                ["! a nickname is 1-24 letters, digits, '-', '_' or '.'"],
                "{bad}"
            );
        }
        let reserved = chat.input(ClientId(2), "/nick guest-9", at(3));
        assert_eq!(
            texts(&reserved, 2),
            ["! nicknames that look like 'guest-N' are reserved for guests"]
        );
        // The same nickname is fine in another room.
        join(&mut chat, 3, "rust");
        let other_room = chat.input(ClientId(3), "/nick alice", at(3));
        assert_eq!(texts(&other_room, 3), ["* guest-3 is now known as alice"]);
    }

    #[test]
    fn presence_who_me_help_and_unknown_commands() {
        let mut chat = immediate();
        join(&mut chat, 1, "lobby");
        join(&mut chat, 2, "lobby");
        assert_eq!(
            texts(&chat.input(ClientId(1), "/who", at(1)), 1),
            ["* In #lobby (2): guest-1, guest-2"]
        );
        let me = chat.input(ClientId(1), "/me waves", at(1));
        assert_eq!(texts(&me, 2), ["* guest-1 waves"]);
        assert!(texts(&chat.input(ClientId(1), "/help", at(1)), 1)[0]
            .starts_with("* Commands: /nick NAME"));
        assert_eq!(
            texts(&chat.input(ClientId(1), "/dance", at(1)), 1),
            ["! unknown command '/dance': try /help"]
        );
        assert_eq!(
            texts(&chat.input(ClientId(1), "//dance", at(1)), 2),
            ["guest-1: /dance"]
        );
        let left = chat.leave(ClientId(1), at(2));
        assert_eq!(texts(&left, 2), ["* guest-1 left #lobby"]);
        assert_eq!(chat.leave(ClientId(1), at(2)), Output::default());
        assert_eq!(chat.len(), 1);
    }

    #[test]
    fn late_joiners_get_bounded_history() {
        let mut chat = Chat::new(ChatConfig {
            presence_delay: Duration::ZERO,
            history: 2,
            ..ChatConfig::default()
        });
        join(&mut chat, 1, "lobby");
        for (i, text) in ["one", "two", "three"].iter().enumerate() {
            chat.input(ClientId(1), text, at(i as u64 + 1));
        }
        let out = join(&mut chat, 2, "lobby");
        assert_eq!(
            texts(&out, 2),
            [
                "* Welcome to #lobby, guest-2. Type /help for commands.",
                "guest-1: two",
                "guest-1: three"
            ]
        );
        let json = chat
            .join(ClientId(3), addr(3), "lobby", Format::Json, at(9))
            .expect("room");
        let history = &texts(&json, 3)[1];
        assert!(
            history.starts_with(r#"{"type":"history","room":"lobby""#),
            "{history}"
        );
        assert!(history.contains(r#""text":"two","ts":2000}"#), "{history}");
    }

    #[test]
    fn history_survives_an_empty_room_until_the_room_is_needed() {
        let mut chat = Chat::new(ChatConfig {
            presence_delay: Duration::ZERO,
            max_rooms: 1,
            ..ChatConfig::default()
        });
        join(&mut chat, 1, "a");
        chat.input(ClientId(1), "kept", at(1));
        chat.leave(ClientId(1), at(2));
        assert_eq!(texts(&join(&mut chat, 2, "a"), 2)[1], "guest-1: kept");
        assert_eq!(chat.check_join("b"), Err(Refusal::TooManyRooms));
        chat.leave(ClientId(2), at(3));
        // Room "a" is empty, so it makes way for "b".
        assert_eq!(texts(&join(&mut chat, 3, "b"), 3).len(), 1);
        assert_eq!(texts(&join(&mut chat, 4, "b"), 4).len(), 1);
    }

    #[test]
    fn message_length_and_empty_messages() {
        let mut chat = Chat::new(ChatConfig {
            presence_delay: Duration::ZERO,
            max_text_len: 5,
            ..ChatConfig::default()
        });
        join(&mut chat, 1, "lobby");
        assert_eq!(
            texts(&chat.input(ClientId(1), "ééééé", at(1)), 1),
            ["guest-1: ééééé"]
        );
        assert_eq!(
            texts(&chat.input(ClientId(1), "toolong", at(1)), 1),
            ["! message too long: 7 characters, the limit is 5"]
        );
        assert_eq!(
            texts(&chat.input(ClientId(1), "  ", at(1)), 1),
            ["! empty message: only whitespace or invisible characters"]
        );
    }

    #[test]
    fn rate_limit_warns_then_closes_a_flooder() {
        let config = ChatConfig {
            rate: RateLimit {
                burst: 2,
                per_second: 1.0,
            },
            flood_strikes: 3,
            ..ChatConfig::default()
        };
        let mut chat = Chat::new(config);
        join(&mut chat, 1, "lobby");
        assert_eq!(chat.input(ClientId(1), "a", at(0)).broadcast, Some(1));
        assert_eq!(chat.input(ClientId(1), "b", at(0)).broadcast, Some(1));
        let refused = chat.input(ClientId(1), "c", at(0));
        assert_eq!(refused.broadcast, None);
        assert_eq!(
            texts(&refused, 1),
            ["! slow down: at most 2 messages at once and 1 per second"]
        );
        // A second later one token is back, and the strikes reset.
        assert_eq!(chat.input(ClientId(1), "d", at(1)).broadcast, Some(1));
        for _ in 0..2 {
            assert_eq!(chat.input(ClientId(1), "x", at(1)).close, None);
        }
        let closed = chat.input(ClientId(1), "x", at(1));
        assert_eq!(
            closed.close.map(|(code, _)| code),
            Some(CloseCode::PolicyViolation)
        );
    }

    #[test]
    fn server_and_room_capacity() {
        let mut chat = Chat::new(ChatConfig {
            presence_delay: Duration::ZERO,
            max_clients: 3,
            max_room_clients: 2,
            ..ChatConfig::default()
        });
        join(&mut chat, 1, "a");
        join(&mut chat, 2, "a");
        assert_eq!(chat.check_join("a"), Err(Refusal::RoomFull("a".into())));
        assert_eq!(
            chat.join(ClientId(3), addr(3), "a", Format::Plain, at(0)),
            Err(Refusal::RoomFull("a".into()))
        );
        join(&mut chat, 3, "b");
        assert_eq!(chat.check_join("b"), Err(Refusal::ServerFull(3)));
        chat.leave(ClientId(1), at(1));
        assert_eq!(chat.check_join("a"), Ok(()));
    }
}
