//! The connection state machine: bytes and time in, events and bytes out.
//!
//! ```text
//!  Handshake ──request──▶ Decision ──accept──▶ Open ──close frames──▶ Closed ──EOF / timer──▶ finished
//!      │  (client: valid 101) ─────────────────▲  │
//!      └──────── bad head / respond / reject ──┴──┴── protocol error ──▶ Closed
//! ```
//!
//! The connection never touches a socket or a clock. [`Connection::receive`]
//! takes bytes in any split; [`Connection::poll_event`] reports what happened;
//! [`Connection::poll_transmit`] and [`Connection::advance`] hand out the bytes
//! to write; [`Connection::poll_timeout`] and [`Connection::handle_timeout`]
//! drive the handshake timeout, keepalive pings and the close timeout. Time is
//! a [`Duration`] since an origin the caller picks.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::close::{close_payload, parse_close_payload, CloseCode};
use crate::error::{Error, ProtocolError, SendError};
use crate::frame::{encode_frame, FrameHeader, OpCode};
use crate::handshake::{self, ClientRequest, HandshakeError, HeadReader, Request};
use crate::mask::apply_mask;
use crate::message::{Assembler, Message, MessageKind, PreparedMessage};
pub use crate::role::Role;
use crate::utf8::Utf8Validator;

/// Prepared frames up to this size are copied into the output buffer, so
/// that many small messages leave in one write; larger ones are shared.
const COPY_BELOW: usize = 4096;

/// Limits and timers of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// How long to wait for the peer's close frame, and then for it to close
    /// the transport.
    pub close_timeout: Duration,
    /// Seed of the masking keys of a client (§5.3 wants them unpredictable:
    /// take the seed from a random source).
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
        close_timeout: Duration::from_secs(5),
        mask_seed: 0x5EED_F07A_C4B1,
    };
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
    Request(Request),
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

#[derive(Debug)]
enum State {
    /// Reading the request (server) or the response (client).
    Handshake(HeadReader),
    /// Server: the request was reported; waiting for the application.
    Decision {
        key: Option<String>,
        protocols: Vec<String>,
    },
    /// Messages flow. A close may have been sent (`close_sent`).
    Open,
    /// Done with WebSocket; waiting for the transport to end.
    Closed,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Off,
    /// Due this long after the next time the caller gives.
    Arm(Duration),
    Due(Duration),
}

/// A frame whose payload is being read.
#[derive(Debug, Clone, Copy)]
struct InFrame {
    header: FrameHeader,
    read: u64,
}

#[derive(Debug)]
enum Chunk {
    Owned(Vec<u8>),
    Shared(Arc<[u8]>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Owned(v) => v,
            Self::Shared(s) => s,
        }
    }
}

/// One WebSocket connection, server or client, as a pure state machine.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    config: Config,
    state: State,
    client_request: Option<ClientRequest>,
    /// Received bytes not yet used: part of a header or control frame, or
    /// frames that arrived before the application accepted.
    input: Vec<u8>,
    frame: Option<InFrame>,
    control: Vec<u8>,
    assembler: Assembler,
    steps: VecDeque<Step>,
    /// False once input can no longer be used: a close or a failure is queued.
    reading: bool,
    /// Sealed output, in order; `tail` follows it and takes small frames.
    out: VecDeque<Chunk>,
    tail: Vec<u8>,
    out_offset: usize,
    out_len: usize,
    sending: Option<MessageKind>,
    send_utf8: Utf8Validator,
    close_sent: bool,
    finished: bool,
    now: Duration,
    timer: Timer,
    activity: bool,
    ping_outstanding: bool,
    rng: u64,
}

impl Connection {
    /// A connection at the start of its handshake. A client must then call
    /// [`Connection::connect`].
    pub fn new(role: Role, config: Config) -> Self {
        Self {
            role,
            state: State::Handshake(HeadReader::new(config.max_head_size)),
            client_request: None,
            input: Vec::new(),
            frame: None,
            control: Vec::new(),
            assembler: Assembler::new(config.max_message_size),
            steps: VecDeque::new(),
            reading: true,
            out: VecDeque::new(),
            tail: Vec::new(),
            out_offset: 0,
            out_len: 0,
            sending: None,
            send_utf8: Utf8Validator::new(),
            close_sent: false,
            finished: false,
            now: Duration::ZERO,
            timer: Timer::Arm(config.handshake_timeout),
            activity: false,
            ping_outstanding: false,
            rng: config.mask_seed,
            config,
        }
    }

    /// A connection whose opening handshake was done elsewhere (for example
    /// by an HTTP server that handed the socket over): frames flow at once.
    pub fn open(role: Role, config: Config) -> Self {
        let mut conn = Self::new(role, config);
        conn.open_state(None);
        conn.steps.clear();
        conn
    }

    /// Client: queues the opening handshake request.
    pub fn connect(&mut self, request: ClientRequest) -> Result<(), SendError> {
        if self.role != Role::Client || self.client_request.is_some() {
            return Err(SendError::InvalidState);
        }
        self.push_owned(&request.to_bytes());
        self.client_request = Some(request);
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
                    self.input.extend_from_slice(&bytes[used..]);
                    self.on_head(&head);
                }
                Err(e) => self.fail_handshake(e),
            },
            State::Decision { .. } => {
                if self.input.len() + bytes.len() > self.config.max_message_size {
                    self.finish();
                } else {
                    self.input.extend_from_slice(bytes);
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
        while let Some(step) = self.steps.pop_front() {
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
        None
    }

    /// Bytes to write to the transport next, if any. Call
    /// [`Connection::advance`] with how many were written.
    pub fn poll_transmit(&self) -> Option<&[u8]> {
        let chunk = match self.out.front() {
            Some(chunk) => chunk.bytes(),
            None => &self.tail,
        };
        let rest = &chunk[self.out_offset..];
        (!rest.is_empty()).then_some(rest)
    }

    /// Marks `n` bytes from [`Connection::poll_transmit`] as written.
    pub fn advance(&mut self, mut n: usize) {
        n = n.min(self.out_len);
        self.out_len -= n;
        while n > 0 {
            let len = match self.out.front() {
                Some(chunk) => chunk.bytes().len(),
                None => self.tail.len(),
            };
            let step = n.min(len - self.out_offset);
            self.out_offset += step;
            n -= step;
            if self.out_offset == len {
                self.out_offset = 0;
                match self.out.pop_front() {
                    Some(Chunk::Owned(v)) if self.tail.is_empty() => {
                        // Reuse the allocation.
                        self.tail = v;
                        self.tail.clear();
                    }
                    Some(_) => {}
                    None => self.tail.clear(),
                }
            }
        }
    }

    /// Bytes queued and not yet handed to the transport.
    pub fn buffered_amount(&self) -> usize {
        self.out_len
    }

    /// Bytes held from the peer: a partial header or control frame, and the
    /// message being assembled. Bounded by the configured limits.
    pub fn buffered_incoming(&self) -> usize {
        self.input.len() + self.control.len() + self.assembler.buffered()
    }

    /// When [`Connection::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.timer {
            Timer::Off => None,
            Timer::Arm(_) => Some(self.now),
            Timer::Due(at) => Some(at),
        }
    }

    /// Tells the connection the time; it fires whatever timer is due.
    pub fn handle_timeout(&mut self, now: Duration) {
        self.now = self.now.max(now);
        match self.timer {
            Timer::Off => {}
            Timer::Arm(after) => self.timer = Timer::Due(self.now + after),
            Timer::Due(at) if self.now >= at => self.on_timer(),
            Timer::Due(_) => {}
        }
    }

    /// Server: accepts the upgrade request reported by [`Event::Request`],
    /// with a subprotocol chosen from those it offered (§4.2.2).
    pub fn accept(&mut self, protocol: Option<&str>) -> Result<(), SendError> {
        let State::Decision {
            key: Some(key),
            protocols,
        } = &self.state
        else {
            return Err(SendError::InvalidState);
        };
        if protocol.is_some_and(|p| !protocols.iter().any(|o| o == p)) {
            return Err(SendError::InvalidState);
        }
        let response = handshake::accept_response(key, protocol);
        self.push_owned(&response);
        self.open_state(protocol.map(str::to_owned));
        let early = std::mem::take(&mut self.input);
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
        if !matches!(self.state, State::Decision { .. }) {
            return Err(SendError::InvalidState);
        }
        self.push_owned(&handshake::http_response(status, content_type, body, ""));
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

    /// Gives back a message from [`Event::Message`] once the application is
    /// done with it: its buffer holds the next message, so steady traffic
    /// allocates nothing per message. Optional.
    pub fn recycle(&mut self, message: Message) {
        self.assembler.recycle(message.into_bytes());
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
            let mut check = self.send_utf8.clone();
            check.feed(payload).map_err(|_| SendError::InvalidUtf8)?;
            if fin {
                check.finish().map_err(|_| SendError::InvalidUtf8)?;
            }
            self.send_utf8 = check;
        }
        self.sending = if fin { None } else { Some(kind) };
        self.queue_frame(opcode, payload, fin);
        Ok(())
    }

    /// Server: queues a message encoded once for many connections.
    pub fn send_prepared(&mut self, message: &PreparedMessage) -> Result<(), SendError> {
        if self.role != Role::Server {
            return Err(SendError::InvalidState);
        }
        let frame = message.frame();
        self.check_send(frame.len())?;
        self.out_len += frame.len();
        if frame.len() <= COPY_BELOW {
            // Copying a small frame costs less than a write of its own.
            self.tail.extend_from_slice(frame);
        } else {
            if !self.tail.is_empty() {
                let tail = std::mem::take(&mut self.tail);
                self.out.push_back(Chunk::Owned(tail));
            }
            self.out.push_back(Chunk::Shared(message.shared()));
        }
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
        self.finished && self.out_len == 0
    }

    fn on_head(&mut self, head: &[u8]) {
        match self.role {
            Role::Server => match Request::parse(head) {
                Ok(request) => {
                    self.state = State::Decision {
                        key: request.key().map(str::to_owned),
                        protocols: request.protocols.clone(),
                    };
                    self.emit(Event::Request(request));
                }
                Err(e) => self.fail_handshake(e),
            },
            Role::Client => {
                let checked = match &self.client_request {
                    Some(request) => request.check_response(head),
                    None => Err(HandshakeError::MalformedStatusLine),
                };
                match checked {
                    Ok(protocol) => {
                        self.open_state(protocol);
                        let rest = std::mem::take(&mut self.input);
                        self.read_frames(&rest);
                    }
                    Err(e) => {
                        self.emit(Event::Error(e.into()));
                        self.enter_closed();
                        self.steps.push_back(Step::Finish);
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

    /// Parses frames from `bytes`, keeping what is left over for later.
    fn read_frames(&mut self, bytes: &[u8]) {
        if self.input.is_empty() {
            let used = self.parse(bytes);
            self.input.extend_from_slice(&bytes[used..]);
        } else {
            let mut input = std::mem::take(&mut self.input);
            input.extend_from_slice(bytes);
            let used = self.parse(&input);
            input.drain(..used);
            self.input = input;
        }
        if !self.reading {
            self.input.clear();
        }
    }

    /// Consumes as much of `buf` as possible; returns how much.
    fn parse(&mut self, mut buf: &[u8]) -> usize {
        let start = buf.len();
        while self.reading {
            let mut frame = match self.frame.take() {
                Some(frame) => frame,
                None => match FrameHeader::decode(buf) {
                    Ok(None) => break,
                    Ok(Some((header, len))) => {
                        buf = &buf[len..];
                        if let Err(e) = self.begin_frame(&header) {
                            self.fail(e);
                            break;
                        }
                        InFrame { header, read: 0 }
                    }
                    Err(e) => {
                        self.fail(e);
                        break;
                    }
                },
            };
            let want = frame.header.payload_len - frame.read;
            let take = buf.len().min(usize::try_from(want).unwrap_or(usize::MAX));
            let (chunk, rest) = buf.split_at(take);
            buf = rest;
            if frame.header.opcode.is_control() {
                self.control.extend_from_slice(chunk);
            } else if let Err(e) = self.assembler.extend(
                chunk,
                frame.header.mask,
                frame.read,
                frame.header.fin && take as u64 == frame.header.payload_len,
            ) {
                self.fail(e);
                break;
            }
            frame.read += take as u64;
            if frame.read < frame.header.payload_len {
                self.frame = Some(frame);
                break;
            }
            self.end_frame(&frame.header);
        }
        start - buf.len()
    }

    fn begin_frame(&mut self, header: &FrameHeader) -> Result<(), ProtocolError> {
        header.validate(self.role)?;
        if header.payload_len > self.config.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooBig {
                size: header.payload_len,
                limit: self.config.max_frame_size,
            });
        }
        if !header.opcode.is_control() {
            self.assembler.begin_frame(header)?;
        }
        Ok(())
    }

    fn end_frame(&mut self, header: &FrameHeader) {
        if !header.opcode.is_control() {
            if header.fin {
                match self.assembler.finish() {
                    Ok(message) => self.emit(Event::Message(message)),
                    Err(e) => self.fail(e),
                }
            }
            return;
        }
        let mut payload = std::mem::take(&mut self.control);
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key, 0);
        }
        match header.opcode {
            OpCode::Ping => {
                // §5.5.3: a pong may answer only the latest ping, so one that
                // would overfill the queue of a peer that does not read is
                // skipped.
                if !self.close_sent && self.out_len + payload.len() <= self.config.max_send_queue {
                    self.queue_frame(OpCode::Pong, &payload, true);
                }
                self.emit(Event::Ping(payload));
            }
            OpCode::Pong => {
                self.ping_outstanding = false;
                self.emit(Event::Pong(payload));
            }
            _ => match parse_close_payload(&payload) {
                Err(e) => self.fail(e.into()),
                // §5.5.1: answer with the status code of the peer's close.
                Ok((code, reason)) => self.stop(Some((code, String::new())), code, reason),
            },
        }
    }

    /// Fails the connection (§7.1.7): the close frame, then closed.
    fn fail(&mut self, error: ProtocolError) {
        let code = error.close_code();
        let reason = error.to_string();
        self.emit(Event::Error(error.into()));
        let frame = (code != CloseCode::Abnormal).then(|| (code, reason.clone()));
        self.stop(frame, code, reason);
    }

    /// Stops reading and queues the close (with `frame`, if any) and the
    /// `Closed` event behind the events already queued.
    fn stop(&mut self, frame: Option<(CloseCode, String)>, code: CloseCode, reason: String) {
        self.reading = false;
        self.frame = None;
        self.steps.push_back(Step::Close(frame));
        self.emit(Event::Closed { code, reason });
    }

    fn emit(&mut self, event: Event) {
        self.steps.push_back(Step::Event(event));
    }

    fn enter_closed(&mut self) {
        self.state = State::Closed;
        self.reading = false;
        self.frame = None;
        self.control = Vec::new();
        self.assembler = Assembler::new(self.config.max_message_size);
        self.input = Vec::new();
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
        self.timer = if self.out_len > 0 {
            Timer::Arm(self.config.close_timeout)
        } else {
            Timer::Off
        };
    }

    /// Finishes now, or after the steps already queued (once).
    fn finish_after_steps(&mut self) {
        if self.steps.is_empty() {
            self.finish();
        } else if !matches!(self.steps.back(), Some(Step::Finish)) {
            self.steps.push_back(Step::Finish);
        }
    }

    fn discard_output(&mut self) {
        self.out.clear();
        self.tail.clear();
        self.out_offset = 0;
        self.out_len = 0;
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
            State::Handshake(_) | State::Decision { .. } => {
                self.stop(None, CloseCode::Abnormal, "handshake timed out".into());
                self.steps.push_back(Step::Finish);
            }
            State::Open if self.close_sent => {
                self.stop(
                    None,
                    CloseCode::Abnormal,
                    "close handshake timed out".into(),
                );
                self.steps.push_back(Step::Finish);
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
            self.timer = Timer::Due(self.now + interval);
        } else if !self.ping_outstanding {
            self.ping_outstanding = true;
            self.queue_frame(OpCode::Ping, b"tincan", true);
            self.emit(Event::PingSent);
            self.timer = Timer::Due(self.now + self.config.ping_timeout);
        } else {
            self.fail(ProtocolError::KeepaliveTimeout);
            // The peer is gone: nothing queued will be read.
            self.discard_output();
            self.steps.push_back(Step::Finish);
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
        if self.out_len + len > self.config.max_send_queue {
            return Err(SendError::QueueFull);
        }
        Ok(())
    }

    fn send_frame(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), SendError> {
        if self.sending.is_some() {
            return Err(SendError::FragmentInProgress);
        }
        self.check_send(payload.len())?;
        self.queue_frame(opcode, payload, true);
        Ok(())
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
        let before = self.tail.len();
        encode_frame(&mut self.tail, fin, opcode, mask, payload);
        self.out_len += self.tail.len() - before;
    }

    fn push_owned(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        self.out_len += bytes.len();
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\n\
        Upgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    /// A client frame, masked with the key of §5.7.
    fn masked(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut header = FrameHeader::new(OpCode::Binary, payload.len() as u64);
        header.mask = Some(key);
        let mut out = Vec::new();
        header.encode(&mut out);
        // Any opcode, reserved ones included.
        out[0] = if fin { 0x80 } else { 0 } | opcode;
        let start = out.len();
        out.extend_from_slice(payload);
        apply_mask(&mut out[start..], key, 0);
        out
    }

    fn drain(conn: &mut Connection) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(bytes) = conn.poll_transmit() {
            out.extend_from_slice(bytes);
            let n = bytes.len();
            conn.advance(n);
        }
        out
    }

    fn events(conn: &mut Connection) -> Vec<Event> {
        std::iter::from_fn(|| conn.poll_event()).collect()
    }

    fn open_server(config: Config) -> Connection {
        let mut server = Connection::new(Role::Server, config);
        server.receive(RFC_REQUEST);
        assert!(matches!(server.poll_event(), Some(Event::Request(_))));
        server.accept(None).expect("accept");
        assert_eq!(server.poll_event(), Some(Event::Open { protocol: None }));
        let response = drain(&mut server);
        assert!(response.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
        server
    }

    /// The close frame a server sends for `code`: the code, then any reason.
    fn close_code_of(bytes: &[u8]) -> u16 {
        assert_eq!(bytes[0], 0x88, "not a close frame: {bytes:x?}");
        u16::from_be_bytes([bytes[2], bytes[3]])
    }

    fn assert_failed(server: &mut Connection, code: u16) {
        let evs = events(server);
        assert!(
            matches!(evs.first(), Some(Event::Error(Error::Protocol(_)))),
            "{evs:?}"
        );
        assert!(
            matches!(evs.last(), Some(Event::Closed { code: c, .. }) if c.as_u16() == code),
            "{evs:?}"
        );
        let out = drain(server);
        let close = out.iter().rposition(|&b| b == 0x88).expect("a close frame");
        assert_eq!(close_code_of(&out[close..]), code);
        assert!(server.is_closed());
    }

    #[test]
    fn rfc_5_7_masked_hello_reaches_the_server() {
        let mut server = open_server(Config::default());
        server.receive(&[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ]);
        assert_eq!(
            events(&mut server),
            [Event::Message(Message::Text("Hello".into()))]
        );
    }

    #[test]
    fn rfc_5_7_ping_gets_the_unmasked_pong() {
        let mut server = open_server(Config::default());
        server.receive(&masked(0x9, true, b"Hello"));
        assert_eq!(events(&mut server), [Event::Ping(b"Hello".to_vec())]);
        assert_eq!(
            drain(&mut server),
            [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );
    }

    #[test]
    fn a_connection_can_start_open() {
        let mut client = Connection::open(Role::Client, Config::default());
        client.receive(b"\x81\x05Hello");
        assert_eq!(
            events(&mut client),
            [Event::Message(Message::Text("Hello".into()))]
        );
        client.send_text("Hi").expect("open");
        let out = drain(&mut client);
        assert_eq!(&out[..2], [0x81, 0x82]);
    }

    #[test]
    fn frames_in_the_same_read_as_the_request_are_kept() {
        let mut server = Connection::new(Role::Server, Config::default());
        let mut bytes = RFC_REQUEST.to_vec();
        bytes.extend(masked(0x1, true, b"early"));
        server.receive(&bytes);
        assert!(matches!(server.poll_event(), Some(Event::Request(_))));
        server.accept(None).expect("accept");
        assert_eq!(
            events(&mut server),
            [
                Event::Open { protocol: None },
                Event::Message(Message::Text("early".into()))
            ]
        );
    }

    #[test]
    fn fragments_with_a_ping_between() {
        let mut server = open_server(Config::default());
        let mut bytes = masked(0x1, false, b"Hel");
        bytes.extend(masked(0x9, true, b""));
        bytes.extend(masked(0x0, true, b"lo"));
        server.receive(&bytes);
        assert_eq!(
            events(&mut server),
            [
                Event::Ping(vec![]),
                Event::Message(Message::Text("Hello".into()))
            ]
        );
    }

    #[test]
    fn protocol_violations_close_with_the_right_code() {
        let cases: Vec<(Vec<u8>, u16)> = vec![
            ([0x81, 0x05].iter().chain(b"Hello").copied().collect(), 1002), // unmasked (§5.1)
            (masked(0x3, true, b""), 1002),                                 // reserved opcode
            ([0xC1, 0x80, 1, 2, 3, 4].to_vec(), 1002), // RSV1 without extension
            (masked(0x9, false, b""), 1002),           // fragmented ping
            (masked(0x9, true, &[0; 126]), 1002),      // long ping
            (masked(0x0, true, b"x"), 1002),           // stray continuation
            (
                [masked(0x1, false, b"a"), masked(0x2, true, b"b")].concat(),
                1002,
            ),
            (masked(0x1, true, &[0xff]), 1007), // bad UTF-8
            (masked(0x8, true, &[0x03]), 1002), // 1-byte close
            (masked(0x8, true, &1005u16.to_be_bytes()), 1002), // reserved code
            (masked(0x8, true, &[0x03, 0xe8, 0xff]), 1007), // bad reason
        ];
        for (bytes, code) in cases {
            let mut server = open_server(Config::default());
            server.receive(&bytes);
            assert_failed(&mut server, code);
            // Nothing after the close frame, and no more events.
            server.receive(&masked(0x1, true, b"ignored"));
            assert_eq!(server.poll_event(), None);
            assert_eq!(server.send_text("late"), Err(SendError::Closing));
        }
    }

    #[test]
    fn replies_to_messages_before_a_bad_frame_go_out_before_the_close() {
        // Autobahn 3.2: a good message and a bad frame in one read.
        let mut server = open_server(Config::default());
        server.receive(&[masked(0x1, true, b"first"), masked(0x3, true, b"")].concat());
        assert_eq!(
            server.poll_event(),
            Some(Event::Message(Message::Text("first".into())))
        );
        server
            .send_text("first")
            .expect("still open: the failure is not reached yet");
        assert_failed(&mut server, 1002);
        let mut server = open_server(Config::default());
        server.receive(&[masked(0x1, true, b"bye"), masked(0x8, true, b"\x03\xe8")].concat());
        assert_eq!(
            server.poll_event(),
            Some(Event::Message(Message::Text("bye".into())))
        );
        server.send_text("bye").expect("open");
        assert_eq!(
            events(&mut server),
            [Event::Closed {
                code: CloseCode::Normal,
                reason: String::new()
            }]
        );
        assert_eq!(drain(&mut server), b"\x81\x03bye\x88\x02\x03\xe8");
    }

    #[test]
    fn invalid_utf8_fails_before_the_frame_ends() {
        let mut server = open_server(Config::default());
        let frame = masked(0x1, true, "κόσμε\u{FFFD}-then-bad".as_bytes());
        let mut bad = frame.clone();
        // Corrupt the first byte of the replacement character (after masking).
        let at = 6 + "κόσμε".len();
        bad[at] ^= 0xEF ^ 0xFF;
        server.receive(&bad[..at + 1]);
        assert_failed(&mut server, 1007);
    }

    #[test]
    fn size_limits_close_with_1009() {
        let config = Config {
            max_frame_size: 10,
            max_message_size: 15,
            ..Config::default()
        };
        let mut server = open_server(config.clone());
        // The header alone is enough to refuse (§10.4).
        server.receive(&masked(0x2, true, &[0; 11])[..8]);
        assert_failed(&mut server, 1009);

        let mut server = open_server(config);
        server.receive(&masked(0x2, false, &[0; 10]));
        server.receive(&masked(0x0, true, &[0; 6]));
        assert_failed(&mut server, 1009);
    }

    #[test]
    fn close_initiated_by_the_peer_is_echoed() {
        let mut server = open_server(Config::default());
        server.receive(&masked(0x8, true, &[0x03, 0xe8, b'o', b'k']));
        assert_eq!(
            events(&mut server),
            [Event::Closed {
                code: CloseCode::Normal,
                reason: "ok".into()
            }]
        );
        assert_eq!(drain(&mut server), [0x88, 0x02, 0x03, 0xe8]);
        assert!(server.is_closed() && !server.is_finished());
        server.receive_eof();
        assert!(server.is_finished());
    }

    #[test]
    fn an_empty_close_is_answered_with_an_empty_close() {
        let mut server = open_server(Config::default());
        server.receive(&masked(0x8, true, b""));
        assert_eq!(
            events(&mut server),
            [Event::Closed {
                code: CloseCode::NoStatus,
                reason: String::new()
            }]
        );
        assert_eq!(drain(&mut server), [0x88, 0x00]);
    }

    #[test]
    fn close_initiated_here_waits_for_the_answer_and_then_times_out() {
        let mut server = open_server(Config::default());
        server.close(CloseCode::GoingAway, "bye").expect("open");
        assert_eq!(server.send_text("more"), Err(SendError::Closing));
        assert_eq!(close_code_of(&drain(&mut server)), 1001);
        // Data that was already on its way is still delivered.
        server.receive(&masked(0x1, true, b"in flight"));
        assert_eq!(
            events(&mut server),
            [Event::Message(Message::Text("in flight".into()))]
        );
        server.handle_timeout(Duration::from_secs(1));
        assert_eq!(server.poll_timeout(), Some(Duration::from_secs(6)));
        server.handle_timeout(Duration::from_secs(6));
        assert!(matches!(
            events(&mut server).as_slice(),
            [Event::Closed {
                code: CloseCode::Abnormal,
                ..
            }]
        ));
        assert!(server.is_finished());
    }

    #[test]
    fn keepalive_pings_an_idle_peer_and_gives_up_on_a_silent_one() {
        let config = Config {
            ping_interval: Some(Duration::from_secs(30)),
            ping_timeout: Duration::from_secs(10),
            ..Config::default()
        };
        let mut server = open_server(config);
        server.handle_timeout(Duration::ZERO);
        assert_eq!(server.poll_timeout(), Some(Duration::from_secs(30)));
        // Traffic in the interval postpones the ping.
        server.receive(&masked(0xA, true, b""));
        events(&mut server);
        server.handle_timeout(Duration::from_secs(30));
        assert_eq!(server.poll_event(), None);
        assert_eq!(server.poll_timeout(), Some(Duration::from_secs(60)));
        // Silence: ping.
        server.handle_timeout(Duration::from_secs(60));
        assert_eq!(events(&mut server), [Event::PingSent]);
        assert_eq!(&drain(&mut server)[..2], [0x89, 0x06]);
        assert_eq!(server.poll_timeout(), Some(Duration::from_secs(70)));
        // More silence: give up, without a close frame nobody would read.
        server.handle_timeout(Duration::from_secs(70));
        let evs = events(&mut server);
        assert!(
            matches!(
                evs.last(),
                Some(Event::Closed {
                    code: CloseCode::Abnormal,
                    ..
                })
            ),
            "{evs:?}"
        );
        assert!(server.is_finished());
        assert_eq!(server.poll_transmit(), None);
    }

    #[test]
    fn a_pong_keeps_the_peer_alive() {
        let config = Config {
            ping_interval: Some(Duration::from_secs(1)),
            ..Config::default()
        };
        let mut server = open_server(config);
        server.handle_timeout(Duration::ZERO);
        // The handshake itself was traffic: the first interval passes quietly.
        server.handle_timeout(Duration::from_secs(1));
        assert_eq!(server.poll_event(), None);
        server.handle_timeout(Duration::from_secs(2));
        assert_eq!(events(&mut server), [Event::PingSent]);
        server.receive(&masked(0xA, true, b"tincan"));
        server.handle_timeout(Duration::from_secs(12));
        assert_eq!(events(&mut server), [Event::Pong(b"tincan".to_vec())]);
        assert!(server.is_open());
    }

    #[test]
    fn handshake_timeout_and_errors() {
        let mut server = Connection::new(Role::Server, Config::default());
        server.handle_timeout(Duration::ZERO);
        server.receive(b"GET / HTTP/1.1\r\n");
        server.handle_timeout(Duration::from_secs(10));
        assert!(matches!(
            events(&mut server).as_slice(),
            [Event::Closed {
                code: CloseCode::Abnormal,
                ..
            }]
        ));
        assert!(server.is_finished());

        let config = Config {
            max_head_size: 64,
            ..Config::default()
        };
        let mut server = Connection::new(Role::Server, config);
        server.receive(&[b'a'; 65]);
        assert!(matches!(
            events(&mut server).as_slice(),
            [Event::Error(Error::Handshake(
                HandshakeError::HeadTooLarge { limit: 64 }
            ))]
        ));
        assert!(drain(&mut server).starts_with(b"HTTP/1.1 431 "));
        assert!(server.is_closed());
    }

    #[test]
    fn accept_checks_the_subprotocol() {
        let mut server = Connection::new(Role::Server, Config::default());
        let mut request = ClientRequest::new("h", "/", [1; 16]);
        request.protocols = vec!["tincan.v1".into()];
        server.receive(&request.to_bytes());
        assert!(matches!(server.poll_event(), Some(Event::Request(_))));
        assert_eq!(server.accept(Some("other")), Err(SendError::InvalidState));
        assert_eq!(server.accept(Some("tincan.v1")), Ok(()));
        assert_eq!(
            server.poll_event(),
            Some(Event::Open {
                protocol: Some("tincan.v1".into())
            })
        );
    }

    #[test]
    fn close_refuses_codes_that_must_not_be_sent() {
        let mut server = open_server(Config::default());
        for code in [1004, 1005 + 1, 1015, 2000, 5000] {
            assert_eq!(
                server.close(CloseCode::from(code), ""),
                Err(SendError::InvalidCloseCode(code))
            );
        }
        assert!(server.is_open());
        server
            .close(CloseCode::NoStatus, "ignored")
            .expect("no code is fine");
        assert_eq!(drain(&mut server), [0x88, 0x00]);
    }

    #[test]
    fn the_send_queue_is_bounded() {
        let config = Config {
            max_send_queue: 10,
            ..Config::default()
        };
        let mut server = open_server(config);
        assert_eq!(server.send_binary(&[0; 8]), Ok(()));
        assert_eq!(server.send_binary(&[0; 8]), Err(SendError::QueueFull));
        drain(&mut server);
        assert_eq!(server.send_binary(&[0; 8]), Ok(()));
    }

    #[test]
    fn prepared_messages_are_shared_and_ordered() {
        let mut server = open_server(Config::default());
        let prepared = PreparedMessage::text("shared");
        let big = PreparedMessage::binary(&[7; COPY_BELOW]);
        server.send_text("a").expect("open");
        server.send_prepared(&prepared).expect("open");
        server.send_prepared(&big).expect("open");
        server.send_text("b").expect("open");
        // Small frames leave together; the big one is handed out by reference.
        assert_eq!(
            server.poll_transmit(),
            Some(&b"\x81\x01a\x81\x06shared"[..])
        );
        let expected = [
            b"\x81\x01a".as_slice(),
            b"\x81\x06shared",
            big.frame(),
            b"\x81\x01b",
        ];
        assert_eq!(drain(&mut server), expected.concat());
        let mut client = Connection::new(Role::Client, Config::default());
        assert_eq!(
            client.send_prepared(&prepared),
            Err(SendError::InvalidState)
        );
    }

    #[test]
    fn sending_fragments() {
        let mut server = open_server(Config::default());
        server
            .send_fragment(MessageKind::Text, "κ".as_bytes()[..1].as_ref(), false)
            .expect("first");
        assert_eq!(server.send_text("x"), Err(SendError::FragmentInProgress));
        assert_eq!(
            server.send_fragment(MessageKind::Binary, b"", true),
            Err(SendError::FragmentInProgress)
        );
        server.ping(b"p").expect("control frames may interleave");
        assert_eq!(
            server.send_fragment(MessageKind::Text, &[0xff], true),
            Err(SendError::InvalidUtf8)
        );
        server
            .send_fragment(MessageKind::Text, &"κ".as_bytes()[1..], true)
            .expect("last");
        assert_eq!(
            drain(&mut server),
            [
                &[0x01, 0x01, 0xce][..],
                &[0x89, 0x01, b'p'],
                &[0x80, 0x01, 0xba]
            ]
            .concat()
        );
    }

    #[test]
    fn plain_http_requests_get_a_response() {
        let mut server = Connection::new(Role::Server, Config::default());
        server.receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(matches!(server.poll_event(), Some(Event::Request(r)) if !r.is_upgrade));
        server
            .respond(200, "text/plain", b"hi")
            .expect("decision pending");
        let response = drain(&mut server);
        assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(response.ends_with(b"\r\n\r\nhi"));
        assert!(server.is_closed());
    }

    #[test]
    fn repeated_eof_does_not_restart_the_time_left_for_output() {
        let mut server = open_server(Config::default());
        server.send_text("never read").expect("open");
        server.receive_eof();
        server.receive_eof();
        let evs = events(&mut server);
        assert!(
            matches!(
                evs.as_slice(),
                [Event::Closed {
                    code: CloseCode::Abnormal,
                    ..
                }]
            ),
            "{evs:?}"
        );
        server.handle_timeout(Duration::ZERO);
        let due = server.poll_timeout().expect("output gets close_timeout");
        assert_eq!(due, Config::default().close_timeout);
        // A socket at its end reads 0 bytes on every try.
        for ms in 1..100 {
            server.receive_eof();
            server.handle_timeout(Duration::from_millis(ms));
            assert_eq!(server.poll_timeout(), Some(due));
        }
        assert_eq!(server.poll_event(), None);
        server.handle_timeout(due);
        assert!(
            server.is_finished(),
            "queued output dropped at the deadline"
        );
    }

    /// Client and server wired together through a byte pipe with arbitrary cuts.
    fn pump(from: &mut Connection, to: &mut Connection, cuts: &[usize]) {
        let bytes = drain(from);
        let mut start = 0;
        for &cut in cuts {
            let cut = cut.clamp(start, bytes.len());
            to.receive(&bytes[start..cut]);
            start = cut;
        }
        to.receive(&bytes[start..]);
    }

    fn any_message() -> impl Strategy<Value = Message> {
        prop_oneof![
            "\\PC{0,40}".prop_map(Message::Text),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(Message::Binary),
            Just(Message::Binary(vec![7; 70_000])),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn messages_survive_any_split_in_both_directions(
            messages in proptest::collection::vec(any_message(), 1..6),
            mut cuts in proptest::collection::vec(0usize..80_000, 0..8),
            seed in any::<u64>(),
        ) {
            cuts.sort_unstable();
            let mut client = Connection::new(Role::Client, Config { mask_seed: seed, ..Config::default() });
            let mut server = Connection::new(Role::Server, Config::default());
            client.connect(ClientRequest::new("h", "/", seed.to_le_bytes().repeat(2).try_into().expect("16"))).expect("client");
            pump(&mut client, &mut server, &cuts);
            prop_assert!(matches!(server.poll_event(), Some(Event::Request(_))));
            server.accept(None).expect("accept");
            pump(&mut server, &mut client, &cuts);
            prop_assert_eq!(client.poll_event(), Some(Event::Open { protocol: None }));
            prop_assert_eq!(server.poll_event(), Some(Event::Open { protocol: None }));
            for m in &messages {
                client.send(m).expect("client send");
                server.send(m).expect("server send");
            }
            pump(&mut client, &mut server, &cuts);
            pump(&mut server, &mut client, &cuts);
            let expected: Vec<Event> = messages.iter().cloned().map(Event::Message).collect();
            prop_assert_eq!(events(&mut server), expected.clone());
            prop_assert_eq!(events(&mut client), expected);

            // The closing handshake completes from the client side.
            client.close(CloseCode::Normal, "done").expect("open");
            pump(&mut client, &mut server, &cuts);
            prop_assert_eq!(events(&mut server), vec![Event::Closed { code: CloseCode::Normal, reason: "done".into() }]);
            pump(&mut server, &mut client, &cuts);
            prop_assert_eq!(events(&mut client), vec![Event::Closed { code: CloseCode::Normal, reason: String::new() }]);
        }
    }
}
