//! The connection state machine: bytes and time in, events and bytes out.
//!
//! ```text
//!  Handshake ──request──▶ Decision ──accept──▶ Open ──close frames──▶ Closed ──EOF / timer──▶ finished
//!      │  (client: valid 101) ─────────────────▲  │
//!      └──────── bad head / respond / reject ──┴──┴── protocol error ──▶ Closed
//! ```
//!
//! The connection never touches a socket or a clock: see [`Connection`] for
//! its kinds of methods and the order to call them in. Frames and messages
//! are decoded by the standalone [`codec`](crate::codec); output waits in a
//! send queue (`send_queue`) until the caller writes it.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;
use std::time::Duration;

use crate::close::{close_payload, CloseCode};
use crate::codec::{Decoded, Limits, MessageDecoder};
use crate::deflate::{self, DeflateParams};
use crate::error::{Error, ProtocolError, SendError};
#[cfg(feature = "deflate")]
use crate::frame::encode_frame_header;
use crate::frame::{encode_frame, FrameHeader, OpCode};
use crate::handshake::{self, ClientRequest, HandshakeError, HeadReader, Request};
use crate::message::{Message, MessageKind, PreparedMessage};
pub use crate::role::Role;
use crate::utf8::Utf8Validator;

mod send_queue;

use send_queue::SendQueue;

/// Pongs that may wait in the send queue at once. §5.5.3 lets an endpoint
/// answer only the latest ping; answering each of a few (Autobahn 2.10 sends
/// ten in one go and expects ten pongs) keeps strict peers happy, and the
/// bound keeps a peer that pings without reading from filling the queue.
const MAX_PENDING_PONGS: usize = 16;

/// Messages shorter than this are sent uncompressed even with
/// permessage-deflate: they would not shrink.
#[cfg(feature = "deflate")]
const COMPRESS_FROM: usize = 64;

/// Reads that each left a ping unanswered ([`MAX_PENDING_PONGS`] waiting
/// already, or a full send queue) before the peer is refused with 1008
/// ([`ProtocolError::ControlFlood`]); only a read that brought pings and
/// answered every one starts the count again (reads with no ping leave it
/// as it is). Per read, not per ping: a burst in one read is answered in
/// part (§5.5.3), never refused. Not restarted by what is written either:
/// the transport's buffers take megabytes of pongs whether or not the peer
/// reads them, so a flood of pings is refused however fast, or slowly, its
/// pongs are read.
const MAX_UNANSWERED_READS: u32 = 64;

/// Limits and timers of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Cap on the HTTP head of the handshake; larger requests get 431.
    pub max_head_size: usize,
    /// Cap on one frame's payload; larger frames fail with 1009.
    pub max_frame_size: usize,
    /// Cap on one message; larger messages fail with 1009.
    pub max_message_size: usize,
    /// Cap on bytes queued for sending; a send past it fails with
    /// [`SendError::QueueFull`] and pongs are skipped (§5.5.3 allows answering
    /// only the latest ping). Only a keepalive ping and the close frame may
    /// go beyond it.
    pub max_send_queue: usize,
    /// Ping a peer that has sent nothing for this long; `None` disables
    /// keepalive.
    pub ping_interval: Option<Duration>,
    /// Give up on a peer that sends nothing for this long after a ping.
    pub ping_timeout: Duration,
    /// Give up on a handshake that has not completed after this long.
    pub handshake_timeout: Duration,
    /// Fail a data message that began but has not ended after this long
    /// (1008); `None` waits forever.
    pub message_timeout: Option<Duration>,
    /// How long to wait for the peer's close frame, and then for it to close
    /// the transport.
    pub close_timeout: Duration,
    /// Negotiate permessage-deflate (RFC 7692): a server accepts a client's
    /// offer, a client makes one. See [`crate::deflate`] for the parameters.
    /// Needs the crate's `deflate` feature; without it this is ignored.
    pub deflate: bool,
    /// The largest capacity, in bytes, of a message buffer kept to receive
    /// the connection's next messages in, once it comes back: a received
    /// message's buffer recycled ([`Connection::recycle`]), or one sent by
    /// value ([`Connection::send_owned`]) and written. Larger ones go back
    /// to the allocator. Steady traffic whose buffers are kept allocates
    /// nothing; a large buffer given back serves the next large message of
    /// any connection on the thread while it is still in the CPU's cache,
    /// where a kept one waits, and goes cold, until its own connection's
    /// next message. A server with many connections per thread sets it
    /// low. The default is what the spares hold in all (128 KiB): any
    /// buffer they have room for is kept.
    pub max_spare_buffer: usize,
    /// Seed of the masking keys of a client (§5.3 wants them unpredictable:
    /// take the seed from a random source). Every connection made from one
    /// config starts from it: clients that share a config should each be
    /// given a seed of their own ([`Connection::seed_masks`]). The
    /// default is a constant, fit for tests only.
    pub mask_seed: u64,
}

impl Config {
    /// The defaults.
    pub const DEFAULT: Self = Self {
        max_head_size: handshake::DEFAULT_MAX_HEAD_SIZE,
        max_frame_size: 16 << 20,
        max_message_size: 16 << 20,
        max_send_queue: 64 << 20,
        ping_interval: Some(Duration::from_secs(30)),
        ping_timeout: Duration::from_secs(10),
        handshake_timeout: Duration::from_secs(10),
        message_timeout: Some(Duration::from_secs(60)),
        close_timeout: Duration::from_secs(5),
        deflate: false,
        max_spare_buffer: crate::message::SPARE_BYTES,
        mask_seed: 0x5EED_F07A_C4B1,
    };

    /// The decoder's limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_frame_size: self.max_frame_size,
            max_message_size: self.max_message_size,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Something that happened on a connection, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Server: a complete HTTP request arrived. For an upgrade
    /// (`request.is_upgrade`) call [`Connection::accept`] or
    /// [`Connection::respond`]; for a plain request, [`Connection::respond`].
    /// Boxed: a request is large and comes once, while every message moves
    /// through the same event type.
    Request(Box<Request>),
    /// The handshake completed; messages may flow. Carries the subprotocol.
    Open {
        /// The subprotocol in use, if one was agreed.
        protocol: Option<String>,
    },
    /// A complete message.
    Message(Message),
    /// A ping arrived; the pong is already queued (§5.5.2).
    Ping(Vec<u8>),
    /// A pong arrived (§5.5.3).
    Pong(Vec<u8>),
    /// The connection sent a keepalive ping to an idle peer.
    PingSent,
    /// The handshake failed or the peer broke the protocol. The answer (an
    /// HTTP error or a close frame) is already queued. `Closed` follows after
    /// a protocol error.
    Error(Error),
    /// The WebSocket connection is closed: write out what
    /// [`Connection::poll_transmit`] still has, then shut the transport down.
    Closed {
        /// The code of the close frame, or 1005/1006 when there was none.
        code: CloseCode,
        /// The reason given.
        reason: String,
    },
}

/// Where the connection is. The handshake's states are boxed: an open
/// connection, the one that lasts, then holds a tag, not room for a head
/// being read.
#[derive(Debug)]
enum State {
    /// Reading the request (server) or the response (client).
    Handshake(Box<HeadReader>),
    /// Server: the request was reported; waiting for the application.
    Decision(Box<Decision>),
    /// Messages flow. A close may have been sent (`close_sent`).
    Open,
    /// Done with WebSocket; waiting for the transport to end.
    Closed,
}

/// What a server needs of the request to accept it.
#[derive(Debug)]
struct Decision {
    key: Option<String>,
    protocols: Vec<String>,
    deflate: Option<DeflateParams>,
}

/// What a connection holds only while something is in flight: input kept
/// until the request is accepted, events not yet taken, bytes not yet
/// written and the pongs among them, and a text message being sent in
/// fragments. An idle connection has none (see `Connection::traffic`).
#[derive(Debug, Default)]
struct Traffic {
    /// Frames that arrived before the application accepted the request.
    input: Vec<u8>,
    steps: VecDeque<Step>,
    queue: SendQueue,
    /// Where each pong still in the queue ends, oldest first.
    pongs: VecDeque<u64>,
    /// Reads that left pings unanswered since one answered all it brought
    /// (see [`MAX_UNANSWERED_READS`]).
    unanswered: u32,
    /// The UTF-8 of the text fragments sent so far.
    send_utf8: Utf8Validator,
}

impl Traffic {
    /// A connection's traffic, made if it has none.
    fn of(traffic: &mut Option<Box<Self>>) -> &mut Self {
        traffic.get_or_insert_with(Box::default)
    }

    /// Whether it holds nothing a new one would not (with no message being
    /// sent): the written-bytes count starts again with no pong to place,
    /// and with no pong waiting, the next ping is answered anyway.
    fn is_idle(&self) -> bool {
        self.input.is_empty()
            && self.steps.is_empty()
            && self.queue.len() == 0
            && self.pongs.is_empty()
    }

    /// Frees spare storage, keeping what is queued.
    fn shrink(&mut self) {
        self.queue.release();
        if self.input.is_empty() {
            self.input = Vec::new();
        }
        self.steps.shrink_to_fit();
        self.pongs.shrink_to_fit();
    }
}

/// What the application will see, and what happens when it gets there.
///
/// A close caused by input (the answer to the peer's close frame, or the close
/// frame of a failure) takes effect only when the application has taken every
/// event before it, so replies to earlier messages are sent first (§7.1.7
/// fails the connection, but a message that arrived whole before the bad frame
/// was received and is answered).
#[derive(Debug)]
enum Step {
    Event(Event),
    /// Send this close frame unless one was sent; then the connection is closed.
    Close(Option<(CloseCode, String)>),
    /// The transport ended too.
    Finish,
}

/// What became of the pings in the bytes being read (see
/// [`MAX_UNANSWERED_READS`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ReadPings {
    /// None came.
    #[default]
    None,
    /// Each got its pong.
    Answered,
    /// At least one got none.
    Skipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Off,
    /// Due this long after the next time the caller gives.
    Arm(Duration),
    Due(Duration),
}

/// One WebSocket connection, server or client, as a pure state machine.
///
/// It never touches a socket or a clock. Its methods come in four kinds:
///
/// - **input**: [`receive`](Self::receive) bytes from the peer (in any
///   split), [`receive_eof`](Self::receive_eof) when the transport ends, and
///   [`handle_timeout`](Self::handle_timeout) with the time, a [`Duration`]
///   since an origin the caller picks;
/// - **output**: [`poll_event`](Self::poll_event) for what happened,
///   [`poll_transmit`](Self::poll_transmit) (or
///   [`poll_transmit_vectored`](Self::poll_transmit_vectored)) and
///   [`advance`](Self::advance) for the bytes to write, and
///   [`poll_timeout`](Self::poll_timeout) for when to call `handle_timeout`;
/// - **commands**: [`accept`](Self::accept) or [`respond`](Self::respond) to a
///   request, the `send_*` methods, [`ping`](Self::ping),
///   [`close`](Self::close);
/// - **queries**: [`is_open`](Self::is_open), [`is_closed`](Self::is_closed),
///   [`is_finished`](Self::is_finished), the buffered amounts.
///
/// After every input or command, poll in this order: `poll_event` until it
/// returns `None` (a close that input caused takes effect only then, so
/// replies to earlier messages go first), then `poll_transmit`/`advance`
/// until it returns `None` or the transport would block, then `poll_timeout`
/// to re-arm the timer. Once [`is_finished`](Self::is_finished), drop the
/// transport.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    /// Shared by every connection made with the same `Arc`.
    config: Arc<Config>,
    state: State,
    /// Client: the request sent, to check the response against. Boxed: a
    /// server's connections (most of them) keep 8 bytes, not 144.
    client_request: Option<Box<ClientRequest>>,
    /// Made when frames come, and dropped again once the connection is
    /// quiet and the decoder at rest ([`MessageDecoder::is_at_rest`]):
    /// an idle connection holds 8 bytes for it, not 296.
    decoder: Option<Box<MessageDecoder>>,
    /// Made when there is something to queue, and dropped once it is all
    /// taken or written (when buffers are released): an idle connection
    /// holds 8 bytes for it, not 224.
    traffic: Option<Box<Traffic>>,
    /// False once input can no longer be used: a close or a failure is queued.
    reading: bool,
    /// Whether the current read's pings were answered (see
    /// `Traffic::unanswered`).
    read_pings: ReadPings,
    sending: Option<MessageKind>,
    close_sent: bool,
    finished: bool,
    now: Duration,
    timer: Timer,
    /// The time bound on the data message in progress.
    message_timer: Timer,
    /// The permessage-deflate parameters, once agreed.
    deflate: Option<DeflateParams>,
    activity: bool,
    /// The handshake, or a keepalive ping answered after a quiet interval,
    /// grew buffers that only traffic would use again, or the caller said
    /// the connection is quiet ([`Connection::release_when_drained`]): they
    /// go once every event is taken and every byte written.
    release_when_drained: bool,
    ping_outstanding: bool,
    rng: u64,
}

impl Connection {
    /// [`Connection::send_owned`] sends a server's message from its own
    /// buffer from this size up; a smaller one is copied behind the frames
    /// queued before it, which then leave in the same slice of a write.
    pub const OWNED_FROM: usize = 4096;

    /// A connection at the start of its handshake. A client must then call
    /// [`Connection::connect`]. `config` is a [`Config`], or an
    /// `Arc<Config>` that many connections share (a server's thousands of
    /// idle connections then hold one copy, not one each).
    pub fn new(role: Role, config: impl Into<Arc<Config>>) -> Self {
        let config = config.into();
        Self {
            role,
            state: State::Handshake(Box::new(HeadReader::new(config.max_head_size))),
            client_request: None,
            decoder: None,
            traffic: None,
            reading: true,
            read_pings: ReadPings::None,
            sending: None,
            close_sent: false,
            finished: false,
            now: Duration::ZERO,
            timer: Timer::Arm(config.handshake_timeout),
            message_timer: Timer::Off,
            deflate: None,
            activity: false,
            release_when_drained: true,
            ping_outstanding: false,
            rng: config.mask_seed,
            config,
        }
    }

    /// A connection whose opening handshake was done elsewhere (for example
    /// by an HTTP server that handed the socket over): frames flow at once.
    pub fn open(role: Role, config: impl Into<Arc<Config>>) -> Self {
        let mut conn = Self::new(role, config);
        conn.open_state(None);
        conn.traffic = None;
        conn
    }

    /// Client: the masking keys from here on come from `seed` (§5.3: from
    /// a random source), not from [`Config::mask_seed`], which every
    /// connection made from the same config shares. This crate has no
    /// source of randomness of its own: the caller brings it.
    pub fn seed_masks(&mut self, seed: u64) {
        self.rng = seed;
    }

    /// Client: queues the opening handshake request, on a connection made
    /// with [`Connection::new`] (not yet opened). With [`Config::deflate`]
    /// and no offer of the caller's own, the request offers
    /// permessage-deflate. A request with a field that cannot go into it as
    /// it is ([`ClientRequest::is_valid`]) is refused
    /// ([`SendError::InvalidHeader`]).
    pub fn connect(&mut self, mut request: ClientRequest) -> Result<(), SendError> {
        let fresh = matches!(self.state, State::Handshake(_)) && self.reading;
        if self.role != Role::Client || self.client_request.is_some() || !fresh {
            return Err(SendError::InvalidState);
        }
        if !request.is_valid() {
            return Err(SendError::InvalidHeader);
        }
        if self.offers_deflate() && request.extensions.is_none() {
            request.extensions = Some(deflate::CLIENT_OFFER.to_owned());
        }
        self.push_owned(&request.to_bytes());
        self.client_request = Some(Box::new(request));
        Ok(())
    }

    /// Feeds bytes that arrived from the peer, in any split.
    pub fn receive(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || !self.reading {
            return;
        }
        self.activity = true;
        match &mut self.state {
            State::Handshake(reader) => match reader.feed(bytes) {
                Ok(None) => {}
                Ok(Some((head, used))) => {
                    let input = &mut Traffic::of(&mut self.traffic).input;
                    input.extend_from_slice(&bytes[used..]);
                    self.on_head(&head);
                }
                Err(e) => self.fail_handshake(e),
            },
            State::Decision(_) => {
                let input = &mut Traffic::of(&mut self.traffic).input;
                let size = input.len() + bytes.len();
                if size > self.config.max_message_size {
                    // More than a message's worth before the request was
                    // answered: the connection ends, and says so.
                    let limit = self.config.max_message_size;
                    self.fail(ProtocolError::MessageTooBig {
                        size: size as u64,
                        limit,
                    });
                    self.finish_after_steps();
                } else {
                    input.extend_from_slice(bytes);
                }
            }
            State::Open => self.read_frames(bytes),
            State::Closed => {}
        }
    }

    /// The peer closed its side of the transport (a read returned 0 bytes).
    /// Calling it again changes nothing: a socket at its end reads 0 bytes
    /// again and again, and that must not restart the time output gets to
    /// leave.
    pub fn receive_eof(&mut self) {
        if self.reading {
            self.stop(None, CloseCode::Abnormal, "connection lost".into());
        }
        self.finish_after_steps();
    }

    /// The next event, in the order things happened. Call it until it returns
    /// `None` after every input: a close that input caused takes effect when
    /// the events before it have been taken.
    pub fn poll_event(&mut self) -> Option<Event> {
        while let Some(step) = self.traffic.as_mut().and_then(|t| t.steps.pop_front()) {
            match step {
                Step::Event(event) => return Some(event),
                Step::Close(frame) => {
                    if let Some((code, reason)) = frame.filter(|_| !self.close_sent) {
                        self.send_close(code, &reason);
                    }
                    self.enter_closed();
                }
                Step::Finish => self.finish(),
            }
        }
        self.release_if_drained();
        None
    }

    /// Whether [`Connection::poll_event`] has anything to do: an event to
    /// hand out, or a close or the end that waits for the events before it.
    /// When `false`, `poll_event` returns `None` and changes nothing the
    /// caller can see (at most it frees spare buffers, as
    /// [`Connection::advance`] does), so a caller may skip it (and whatever
    /// it takes to handle events).
    pub fn has_pending_events(&self) -> bool {
        self.traffic.as_ref().is_some_and(|t| !t.steps.is_empty())
    }

    /// Bytes to write to the transport next, if any. Call
    /// [`Connection::advance`] with how many were written.
    pub fn poll_transmit(&self) -> Option<&[u8]> {
        self.traffic.as_ref()?.queue.front()
    }

    /// Like [`Connection::poll_transmit`], for a vectored write: fills
    /// `slices` with the next bytes in order (prepared frames by reference)
    /// and returns how many it filled. Call [`Connection::advance`] with how
    /// many bytes were written.
    pub fn poll_transmit_vectored<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        self.traffic.as_ref().map_or(0, |t| t.queue.fill(slices))
    }

    /// Marks `n` bytes from [`Connection::poll_transmit`] as written.
    pub fn advance(&mut self, n: usize) {
        let Some(traffic) = &mut self.traffic else {
            return;
        };
        let decoder = &mut self.decoder;
        traffic.queue.advance(n, |bytes| {
            if let Some(decoder) = decoder {
                decoder.recycle(Message::Binary(bytes));
            }
        });
        let written = traffic.queue.written();
        while traffic.pongs.front().is_some_and(|&end| end <= written) {
            traffic.pongs.pop_front();
        }
        self.release_if_drained();
    }

    /// What the handshake grew (the response's buffer, the request's
    /// events, the queue's slots), once it and whatever was sent right
    /// behind it (a welcome, a history) are written; what a keepalive ping
    /// and its pong grew, once the pong is taken; or what traffic grew, once
    /// the caller said the connection is quiet. An idle connection then
    /// holds no buffers until traffic comes; a busy one grows them again in
    /// a message or two.
    fn release_if_drained(&mut self) {
        let drained = self
            .traffic
            .as_ref()
            .is_none_or(|t| t.queue.len() == 0 && t.steps.is_empty());
        if self.release_when_drained && drained && matches!(self.state, State::Open) {
            self.release_when_drained = false;
            self.release_buffers();
        }
    }

    /// Bytes queued and not yet handed to the transport.
    pub fn buffered_amount(&self) -> usize {
        self.traffic.as_ref().map_or(0, |t| t.queue.len())
    }

    /// Bytes held from the peer: a partial header or control frame, and the
    /// message being assembled. Bounded by the configured limits.
    pub fn buffered_incoming(&self) -> usize {
        let input = self.traffic.as_ref().map_or(0, |t| t.input.len());
        input + self.decoder.as_ref().map_or(0, |d| d.buffered())
    }

    /// When [`Connection::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let due = |timer| match timer {
            Timer::Off => None,
            Timer::Arm(_) => Some(self.now),
            Timer::Due(at) => Some(at),
        };
        match (due(self.timer), due(self.message_timer)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Tells the connection the time; it fires whatever timer is due.
    pub fn handle_timeout(&mut self, now: Duration) {
        self.now = self.now.max(now);
        match self.message_timer {
            Timer::Arm(after) => self.message_timer = Timer::Due(self.now.saturating_add(after)),
            Timer::Due(at) if self.now >= at => {
                self.message_timer = Timer::Off;
                if self.reading {
                    let limit = self.config.message_timeout.unwrap_or_default();
                    self.fail(ProtocolError::MessageTimeout(limit));
                }
            }
            _ => {}
        }
        match self.timer {
            Timer::Off => {}
            Timer::Arm(after) => self.timer = Timer::Due(self.now.saturating_add(after)),
            Timer::Due(at) if self.now >= at => self.on_timer(),
            Timer::Due(_) => {}
        }
    }

    /// Server: accepts the upgrade request reported by [`Event::Request`],
    /// with a subprotocol chosen from those it offered (§4.2.2).
    pub fn accept(&mut self, protocol: Option<&str>) -> Result<(), SendError> {
        let State::Decision(decision) = &self.state else {
            return Err(SendError::InvalidState);
        };
        // Stopped while the request waited (the transport ended, or the
        // handshake's time ran out): there is nobody to answer.
        if !self.reading {
            return Err(SendError::InvalidState);
        }
        let Decision {
            key: Some(key),
            protocols,
            deflate,
        } = &**decision
        else {
            return Err(SendError::InvalidState);
        };
        if protocol.is_some_and(|p| !protocols.iter().any(|o| o == p)) {
            return Err(SendError::InvalidState);
        }
        let deflate = *deflate;
        let extensions = deflate.map(|params| params.response());
        let response =
            handshake::accept_response_with_extensions(key, protocol, extensions.as_deref());
        self.push_owned(&response);
        if let Some(params) = deflate {
            self.use_deflate(params);
        }
        self.open_state(protocol.map(str::to_owned));
        let early = self.take_input();
        self.read_frames(&early);
        Ok(())
    }

    /// Server: answers the request with a plain HTTP response (a page, a 404,
    /// or a refused upgrade such as 503) and ends the connection.
    pub fn respond(
        &mut self,
        status: u16,
        content_type: &str,
        body: &[u8],
    ) -> Result<(), SendError> {
        self.respond_with_headers(status, content_type, &[], body)
    }

    /// Like [`Connection::respond`], with more header fields (security
    /// headers, `Retry-After`). A name that is not an HTTP token, or a value
    /// with a line break, is refused ([`SendError::InvalidHeader`]) rather
    /// than let split the response.
    pub fn respond_with_headers(
        &mut self,
        status: u16,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), SendError> {
        if !matches!(self.state, State::Decision(_)) {
            return Err(SendError::InvalidState);
        }
        let mut extra = String::new();
        for (name, value) in headers {
            if !handshake::is_token(name) || value.contains(['\r', '\n']) {
                return Err(SendError::InvalidHeader);
            }
            extra.push_str(&format!("{name}: {value}\r\n"));
        }
        if content_type.contains(['\r', '\n']) {
            return Err(SendError::InvalidHeader);
        }
        self.push_owned(&handshake::http_response(
            status,
            content_type,
            body,
            &extra,
        ));
        self.enter_closed();
        Ok(())
    }

    /// Queues a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.send_frame(OpCode::Text, text.as_bytes())
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        self.send_frame(OpCode::Binary, bytes)
    }

    /// Queues a message.
    pub fn send(&mut self, message: &Message) -> Result<(), SendError> {
        self.send_frame(message.opcode(), message.as_bytes())
    }

    /// Queues a message, taking its buffer. A server sends one of
    /// [`Connection::OWNED_FROM`] bytes or more as it is, behind its header,
    /// without the copy [`Connection::send`] makes (an echo, a relay), and
    /// recycles the buffer once it is written (see
    /// [`Connection::recycle`]); a smaller one, a compressed one or a
    /// client's is copied and recycled at once.
    pub fn send_owned(&mut self, message: Message) -> Result<(), SendError> {
        let len = message.as_bytes().len();
        let compressed = cfg!(feature = "deflate") && self.deflate.is_some();
        if self.role == Role::Client || compressed || len < Self::OWNED_FROM {
            let sent = self.send(&message);
            self.recycle(message);
            return sent;
        }
        if self.sending.is_some() {
            return Err(SendError::FragmentInProgress);
        }
        self.check_send(len)?;
        let header = FrameHeader::new(message.opcode(), len as u64);
        let queue = self.send_queue();
        queue.encode(|out| header.encode(out));
        queue.push_given(message.into_bytes());
        Ok(())
    }

    /// Gives back a message from [`Event::Message`] once the application is
    /// done with it: its buffer holds the next message, so steady traffic
    /// allocates nothing per message (buffers up to
    /// [`Config::max_spare_buffer`]). Optional.
    pub fn recycle(&mut self, message: Message) {
        if let Some(decoder) = &mut self.decoder {
            decoder.recycle(message);
        }
    }

    /// Frees the buffers kept between messages (so that steady traffic
    /// allocates nothing) once every queued byte is written and every event
    /// taken, as after the handshake: for a caller that knows the
    /// connection to be quiet, such as a server whose client has had no
    /// traffic for a while. Traffic grows them again. Optional.
    pub fn release_when_drained(&mut self) {
        self.release_when_drained = true;
        self.release_if_drained();
    }

    /// Queues one fragment of a message (§5.4): the first call sends `kind`'s
    /// opcode, later ones continuation frames, and `fin` ends the message.
    /// Control frames may be sent between fragments. Text fragments must join
    /// up to valid UTF-8, though each may split a character.
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        let opcode = match self.sending {
            None => kind.opcode(),
            Some(k) if k == kind => OpCode::Continuation,
            Some(_) => return Err(SendError::FragmentInProgress),
        };
        self.check_send(payload.len())?;
        if kind == MessageKind::Text {
            // Checked before a refusal could make traffic storage.
            let sent = self.traffic.as_ref().map(|t| &t.send_utf8);
            let mut check = sent.cloned().unwrap_or_default();
            check.feed(payload).map_err(|_| SendError::InvalidUtf8)?;
            if fin {
                check.finish().map_err(|_| SendError::InvalidUtf8)?;
            }
            Traffic::of(&mut self.traffic).send_utf8 = check;
        }
        self.sending = if fin { None } else { Some(kind) };
        self.queue_frame(opcode, payload, fin);
        Ok(())
    }

    /// Server: queues a message encoded once for many connections. Its bytes
    /// are shared, not copied; [`Connection::poll_transmit_vectored`] writes
    /// many of them at once. Like any message, not while one sent in
    /// fragments is unfinished ([`SendError::FragmentInProgress`], §5.4).
    pub fn send_prepared(&mut self, message: &PreparedMessage) -> Result<(), SendError> {
        if self.role != Role::Server {
            return Err(SendError::InvalidState);
        }
        if self.sending.is_some() {
            return Err(SendError::FragmentInProgress);
        }
        self.check_send(message.frame().len())?;
        // One compressed frame serves every connection with a full window.
        let deflated = self
            .deflate
            .is_some_and(|params| params.server_max_window_bits == 15);
        self.send_queue().push_shared(message.shared(deflated));
        Ok(())
    }

    /// Queues a ping with up to 125 bytes of payload (§5.5.2).
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        if payload.len() > 125 {
            return Err(SendError::ControlTooLong);
        }
        self.check_send(payload.len())?;
        self.queue_frame(OpCode::Ping, payload, true);
        Ok(())
    }

    /// Starts the closing handshake (§7.1.2). Messages that arrive before
    /// the peer's close frame are still reported.
    /// [`CloseCode::NoStatus`] sends a close frame without a code.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        if code != CloseCode::NoStatus && !code.is_valid_on_wire() {
            return Err(SendError::InvalidCloseCode(code.as_u16()));
        }
        self.check_open()?;
        self.send_close(code, reason);
        self.timer = Timer::Arm(self.config.close_timeout);
        Ok(())
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The permessage-deflate parameters, if the handshake agreed on them.
    pub fn deflate(&self) -> Option<DeflateParams> {
        self.deflate
    }

    /// [`Config::deflate`], if this build can compress (the crate's
    /// `deflate` feature): otherwise offers are declined and none is made.
    fn offers_deflate(&self) -> bool {
        self.config.deflate && cfg!(feature = "deflate")
    }

    /// Agrees to permessage-deflate: the decoder, made when frames come,
    /// inflates (see `decoder`).
    fn use_deflate(&mut self, params: DeflateParams) {
        self.deflate = Some(params);
    }

    /// Whether messages can be sent (open, and no close sent).
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open) && !self.close_sent
    }

    /// Whether the WebSocket conversation is over: once
    /// [`Connection::poll_transmit`] is empty, shut the transport's write side.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether the transport can be dropped: the peer closed it too, or the
    /// close timeout passed, and nothing is left to transmit.
    pub fn is_finished(&self) -> bool {
        self.finished && self.buffered_amount() == 0
    }

    fn on_head(&mut self, head: &[u8]) {
        match self.role {
            Role::Server => match Request::parse(head) {
                Ok(request) => {
                    let deflate = match self.offers_deflate() && request.is_upgrade {
                        true => deflate::negotiate(request.extensions()),
                        false => None,
                    };
                    self.state = State::Decision(Box::new(Decision {
                        key: request.key().map(str::to_owned),
                        protocols: request.protocols.clone(),
                        deflate,
                    }));
                    self.emit(Event::Request(Box::new(request)));
                }
                Err(e) => self.fail_handshake(e),
            },
            Role::Client => {
                let checked = match &self.client_request {
                    Some(request) => request.check_response_accepted(head),
                    None => Err(HandshakeError::MalformedStatusLine),
                };
                // RFC 7692 §7.1: a response that does not accept the offer
                // as sent (ours, or the caller's own) fails the connection.
                let offer = self
                    .client_request
                    .as_ref()
                    .and_then(|r| r.extensions.clone());
                let checked = checked.and_then(|accepted| match &accepted.extensions {
                    None => Ok((accepted.protocol, None)),
                    Some(values) => offer
                        .and_then(|offer| {
                            deflate::check_response_to(&offer, std::iter::once(values.as_str()))
                        })
                        .filter(|_| self.offers_deflate())
                        .map(|params| (accepted.protocol, Some(params)))
                        .ok_or(HandshakeError::UnexpectedExtension),
                });
                match checked {
                    Ok((protocol, params)) => {
                        if let Some(params) = params {
                            self.use_deflate(params);
                        }
                        self.open_state(protocol);
                        let rest = self.take_input();
                        self.read_frames(&rest);
                    }
                    Err(e) => {
                        self.emit(Event::Error(e.into()));
                        self.enter_closed();
                        self.push_step(Step::Finish);
                    }
                }
            }
        }
    }

    fn fail_handshake(&mut self, error: HandshakeError) {
        if self.role == Role::Server {
            self.push_owned(&handshake::error_response(&error));
        }
        self.emit(Event::Error(error.into()));
        self.enter_closed();
    }

    fn open_state(&mut self, protocol: Option<String>) {
        self.state = State::Open;
        self.timer = match self.config.ping_interval {
            Some(interval) => Timer::Arm(interval),
            None => Timer::Off,
        };
        self.emit(Event::Open { protocol });
    }

    /// The decoder, made if there is none (an idle connection keeps none),
    /// inflating if permessage-deflate was agreed.
    fn decoder(&mut self) -> &mut MessageDecoder {
        // Called for every frame: the limits and the deflate parameters are
        // looked at only when a decoder is made. (The closure borrows the
        // fields it reads, not `self`, which the decoder's field is part of.)
        self.decoder
            .get_or_insert_with(|| new_decoder(self.role, &self.config, self.deflate))
    }

    /// Whether a data message has begun and not ended.
    fn in_message(&self) -> bool {
        self.decoder.as_ref().is_some_and(|d| d.in_message())
    }

    /// Decodes frames from `bytes`; the decoder keeps a partial header.
    fn read_frames(&mut self, mut bytes: &[u8]) {
        if bytes.is_empty() {
            // Nothing to decode (what came with the handshake, often): no
            // decoder to make, and nothing changes.
            return;
        }
        while self.reading {
            // The commonest first: whole short messages, one frame each (a
            // read of chat lines or pipelined echoes); then whatever
            // follows them, piece by piece.
            if let Err(e) = self.read_short_messages(&mut bytes) {
                self.fail(e);
                break;
            }
            match self.decoder().decode(&mut bytes) {
                Ok(Some(decoded)) => self.on_decoded(decoded),
                Ok(None) => break,
                Err(e) => self.fail(e),
            }
        }
        match std::mem::take(&mut self.read_pings) {
            ReadPings::Skipped => {
                let traffic = Traffic::of(&mut self.traffic);
                traffic.unanswered += 1;
                if self.reading && traffic.unanswered > MAX_UNANSWERED_READS {
                    self.fail(ProtocolError::ControlFlood);
                }
            }
            // Only a read whose pings were all answered starts the count
            // again: one without any (a byte, a message) says nothing.
            ReadPings::Answered => {
                if let Some(traffic) = &mut self.traffic {
                    traffic.unanswered = 0;
                }
            }
            ReadPings::None => {}
        }
        self.message_timer = match self.config.message_timeout {
            Some(limit) if self.reading && self.in_message() => match self.message_timer {
                Timer::Off => Timer::Arm(limit),
                running => running,
            },
            _ => Timer::Off,
        };
    }

    /// Queues the events of the run of whole short messages at the front
    /// of `bytes` (see [`MessageDecoder::decode_short_messages`]): what
    /// [`Connection::on_decoded`] would make of them one by one.
    fn read_short_messages(&mut self, bytes: &mut &[u8]) -> Result<(), ProtocolError> {
        // The decoder as `decoder()` makes it, borrowed beside the traffic
        // state (which the method's borrow of `self` would not allow).
        let decoder = self
            .decoder
            .get_or_insert_with(|| new_decoder(self.role, &self.config, self.deflate));
        // Made only for a message: a read of part of a frame leaves a
        // quiet connection without traffic state, as it was. (The event is
        // built in the push: built first, as a value of its own, it cost
        // the core's echo loop 22 more instructions per 20 B message: 382
        // against 360 when measured, with `bench/instructions.sh core`.)
        let traffic = &mut self.traffic;
        decoder.decode_short_messages(bytes, |message| {
            Traffic::of(traffic)
                .steps
                .push_back(Step::Event(Event::Message(message)));
        })
    }

    fn on_decoded(&mut self, decoded: Decoded) {
        match decoded {
            Decoded::Message(message) => self.emit(Event::Message(message)),
            Decoded::Ping(payload) => {
                self.answer_ping(&payload);
                if self.reading {
                    self.emit(Event::Ping(payload));
                }
            }
            Decoded::Pong(payload) => {
                // The answer to a keepalive ping: the connection was quiet.
                self.release_when_drained |= self.ping_outstanding;
                self.ping_outstanding = false;
                self.emit(Event::Pong(payload));
            }
            // §5.5.1: answer with the status code of the peer's close.
            Decoded::Close { code, reason } => self.stop(Some((code, String::new())), code, reason),
        }
    }

    /// Queues the pong for a ping (§5.5.2), unless too many pongs wait
    /// already: §5.5.3 allows answering only the latest ping. A peer whose
    /// pings go unanswered read after read is refused (see
    /// [`MAX_UNANSWERED_READS`]).
    fn answer_ping(&mut self, payload: &[u8]) {
        if self.close_sent {
            return;
        }
        let traffic = Traffic::of(&mut self.traffic);
        let fits = traffic.queue.len() + payload.len() <= self.config.max_send_queue;
        if fits && traffic.pongs.len() < MAX_PENDING_PONGS {
            self.queue_frame(OpCode::Pong, payload, true);
            let traffic = Traffic::of(&mut self.traffic);
            traffic.pongs.push_back(traffic.queue.end());
            if self.read_pings == ReadPings::None {
                self.read_pings = ReadPings::Answered;
            }
            return;
        }
        self.read_pings = ReadPings::Skipped;
    }

    /// Fails the connection (§7.1.7): the close frame (once open), then
    /// closed.
    fn fail(&mut self, error: ProtocolError) {
        // Before the upgrade no close frame can go: closed abnormally
        // (§7.1.5), and the error says why.
        let code = match self.state {
            State::Open => error.close_code(),
            _ => CloseCode::Abnormal,
        };
        let reason = error.to_string();
        self.emit(Event::Error(error.into()));
        let frame = (code != CloseCode::Abnormal).then(|| (code, reason.clone()));
        self.stop(frame, code, reason);
    }

    /// Stops reading and queues the close (with `frame`, if any) and the
    /// `Closed` event behind the events already queued.
    fn stop(&mut self, frame: Option<(CloseCode, String)>, code: CloseCode, reason: String) {
        self.reading = false;
        self.message_timer = Timer::Off;
        self.push_step(Step::Close(frame));
        self.emit(Event::Closed { code, reason });
    }

    fn emit(&mut self, event: Event) {
        self.push_step(Step::Event(event));
    }

    fn push_step(&mut self, step: Step) {
        Traffic::of(&mut self.traffic).steps.push_back(step);
    }

    /// Input that came before the connection opened.
    fn take_input(&mut self) -> Vec<u8> {
        self.traffic
            .as_mut()
            .map(|t| std::mem::take(&mut t.input))
            .unwrap_or_default()
    }

    fn enter_closed(&mut self) {
        self.state = State::Closed;
        self.reading = false;
        self.decoder = None;
        self.message_timer = Timer::Off;
        if let Some(traffic) = &mut self.traffic {
            traffic.input = Vec::new();
        }
        self.timer = Timer::Arm(self.config.close_timeout);
    }

    /// Nothing more will be read. Output still queued gets `close_timeout`
    /// to leave, then is dropped; finishing again keeps that deadline.
    fn finish(&mut self) {
        if self.finished {
            return;
        }
        if !matches!(self.state, State::Closed) {
            self.enter_closed();
        }
        self.finished = true;
        self.timer = if self.buffered_amount() > 0 {
            Timer::Arm(self.config.close_timeout)
        } else {
            Timer::Off
        };
    }

    /// Finishes now, or after the steps already queued (once).
    fn finish_after_steps(&mut self) {
        let last = self.traffic.as_ref().and_then(|t| t.steps.back());
        match last {
            None => self.finish(),
            Some(Step::Finish) => {}
            Some(_) => self.push_step(Step::Finish),
        }
    }

    fn discard_output(&mut self) {
        if let Some(traffic) = &mut self.traffic {
            traffic.queue.clear();
            traffic.pongs.clear();
        }
    }

    fn on_timer(&mut self) {
        if self.finished {
            // The peer does not read what is left.
            self.discard_output();
            self.timer = Timer::Off;
            return;
        }
        match self.state {
            // A close is already queued.
            _ if !self.reading && !matches!(self.state, State::Closed) => {}
            State::Handshake(_) | State::Decision(_) => {
                self.stop(None, CloseCode::Abnormal, "handshake timed out".into());
                self.push_step(Step::Finish);
            }
            State::Open if self.close_sent => {
                self.stop(
                    None,
                    CloseCode::Abnormal,
                    "close handshake timed out".into(),
                );
                self.push_step(Step::Finish);
            }
            State::Open => self.keepalive(),
            State::Closed => self.finish(),
        }
    }

    /// §5.5.2: a ping "may serve … as a keepalive". Any byte from the peer
    /// counts as life; after a silent interval, ping; after a silent timeout,
    /// give up.
    fn keepalive(&mut self) {
        let Some(interval) = self.config.ping_interval else {
            self.timer = Timer::Off;
            return;
        };
        if std::mem::take(&mut self.activity) {
            self.ping_outstanding = false;
            self.timer = Timer::Due(self.now.saturating_add(interval));
        } else if !self.ping_outstanding {
            // Quiet for a whole interval: what only traffic needs goes
            // (buffers kept for the next messages, the inflate state).
            self.release_buffers();
            self.ping_outstanding = true;
            self.queue_frame(OpCode::Ping, b"tincan", true);
            self.emit(Event::PingSent);
            self.timer = Timer::Due(self.now.saturating_add(self.config.ping_timeout));
        } else {
            self.fail(ProtocolError::KeepaliveTimeout);
            // The peer is gone: nothing queued will be read.
            self.discard_output();
            self.push_step(Step::Finish);
        }
    }

    /// Frees the buffers kept between messages so that steady traffic
    /// allocates nothing: for a connection that has been quiet for a ping
    /// interval, or that its caller knows to be quiet, where they would
    /// otherwise be held for as long as it stays idle (a burst of history or
    /// one large message leaves kilobytes).
    fn release_buffers(&mut self) {
        if let Some(decoder) = &mut self.decoder {
            decoder.release_buffers();
            if decoder.is_at_rest() {
                self.decoder = None;
            }
        }
        if let Some(traffic) = &mut self.traffic {
            match traffic.is_idle() && self.sending.is_none() {
                true => self.traffic = None,
                false => traffic.shrink(),
            }
        }
    }

    fn check_open(&self) -> Result<(), SendError> {
        match self.state {
            State::Open if self.close_sent => Err(SendError::Closing),
            State::Open => Ok(()),
            State::Closed => Err(SendError::Closing),
            _ => Err(SendError::NotOpen),
        }
    }

    fn check_send(&self, len: usize) -> Result<(), SendError> {
        self.check_open()?;
        if self.buffered_amount() + len > self.config.max_send_queue {
            return Err(SendError::QueueFull);
        }
        Ok(())
    }

    fn send_frame(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), SendError> {
        if self.sending.is_some() {
            return Err(SendError::FragmentInProgress);
        }
        self.check_send(payload.len())?;
        match self.deflate {
            #[cfg(feature = "deflate")]
            Some(params) if payload.len() >= COMPRESS_FROM => {
                let mut compressed = Vec::new();
                deflate::compress(payload, params.send_window_bits(self.role), &mut compressed);
                if compressed.len() < payload.len() {
                    self.queue_compressed(opcode, &compressed);
                } else {
                    self.queue_frame(opcode, payload, true);
                }
            }
            _ => self.queue_frame(opcode, payload, true),
        }
        Ok(())
    }

    /// Queues a whole message as one frame with RSV1 set: its payload is
    /// compressed (RFC 7692 §6).
    #[cfg(feature = "deflate")]
    fn queue_compressed(&mut self, opcode: OpCode, compressed: &[u8]) {
        let header = FrameHeader {
            rsv: 0b100,
            mask: match self.role {
                Role::Client => Some(self.next_mask()),
                Role::Server => None,
            },
            ..FrameHeader::new(opcode, compressed.len() as u64)
        };
        self.send_queue()
            .encode(|out| encode_frame_header(out, header, compressed));
    }

    fn send_close(&mut self, code: CloseCode, reason: &str) {
        let mut payload = Vec::with_capacity(125);
        close_payload(code, reason, &mut payload);
        self.queue_frame(OpCode::Close, &payload, true);
        self.close_sent = true;
    }

    fn queue_frame(&mut self, opcode: OpCode, payload: &[u8], fin: bool) {
        let mask = match self.role {
            Role::Client => Some(self.next_mask()),
            Role::Server => None,
        };
        self.send_queue()
            .encode(|out| encode_frame(out, fin, opcode, mask, payload));
    }

    fn push_owned(&mut self, bytes: &[u8]) {
        self.send_queue().encode(|out| out.extend_from_slice(bytes));
    }

    /// The send queue, made (with the rest of the traffic state) if there
    /// is none.
    fn send_queue(&mut self) -> &mut SendQueue {
        &mut Traffic::of(&mut self.traffic).queue
    }

    /// SplitMix64: fast, and unpredictable enough given a random seed.
    fn next_mask(&mut self) -> [u8; 4] {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z as u32).to_ne_bytes()
    }
}

/// A decoder for what `role` receives, with `config`'s limits, inflating
/// if permessage-deflate was agreed (`deflate`).
fn new_decoder(
    role: Role,
    config: &Config,
    #[allow(unused_variables, reason = "inflating needs the deflate feature")] deflate: Option<
        DeflateParams,
    >,
) -> Box<MessageDecoder> {
    let mut decoder = MessageDecoder::new(role, config.limits());
    decoder.set_max_spare_buffer(config.max_spare_buffer);
    #[cfg(feature = "deflate")]
    if let Some(params) = deflate {
        decoder.enable_deflate(!params.receive_without_context(role));
    }
    Box::new(decoder)
}

#[cfg(test)]
mod tests;
