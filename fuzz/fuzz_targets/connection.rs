//! A client and a server connection wired to each other, with or without
//! permessage-deflate (RFC 7692), driven by an arbitrary sequence of
//! operations: sends (whole, by value or by reference, and fragmented),
//! pings, closes, partial deliveries, the passing of time, and a caller's
//! word that a side is quiet (its buffers go once drained). Invariants:
//! - nothing panics, and two correct peers never see a protocol error (only a
//!   keepalive timeout, when time passes without delivery, and 1009 for a
//!   frame or message over the receiver's limits, which a sender does not
//!   know);
//! - buffered memory stays within what the configured limits allow;
//! - each side receives a prefix of what the other finished sending, in order
//!   and whole; with nothing broken, all of it;
//! - every byte a side emits after its handshake is valid framing for its
//!   role (RSV1 only on a whole compressed message's frame, with deflate);
//! - the close handshake completes.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tincan_core::frame::{FrameHeader, OpCode};
use tincan_core::{
    ClientRequest, CloseCode, Config, Connection, Error, Event, Message, MessageKind,
    ProtocolError, Role,
};

#[derive(Arbitrary, Debug)]
enum Op {
    Send {
        client: bool,
        text: bool,
        payload: Vec<u8>,
        /// By value (`send_owned`), else by reference (`send`).
        owned: bool,
    },
    Fragments {
        client: bool,
        text: bool,
        parts: Vec<Vec<u8>>,
    },
    Ping {
        client: bool,
        payload: Vec<u8>,
    },
    Close {
        client: bool,
        code: u16,
        reason: String,
    },
    Deliver {
        to_server: bool,
        max: u16,
    },
    Wait {
        ms: u16,
    },
    /// `release_when_drained`: whenever it comes (mid-message, mid-write),
    /// nothing either side sees may change. (Two tincan peers agree on no
    /// context takeover: a window kept between messages is a unit test's.)
    Quiet {
        client: bool,
    },
}

const CONFIG: Config = Config {
    max_head_size: 1024,
    max_frame_size: 2048,
    max_message_size: 4096,
    max_send_queue: 8192,
    ping_interval: Some(Duration::from_secs(1)),
    ping_timeout: Duration::from_secs(1),
    handshake_timeout: Duration::from_secs(1),
    message_timeout: Some(Duration::from_secs(2)),
    close_timeout: Duration::from_secs(1),
    deflate: false,
    max_spare_buffer: 1024,
    mask_seed: 7,
};

/// The most inflate state a connection holds (RFC 7692: a 32 KiB window and
/// tables), beside its messages.
const INFLATE_STATE: usize = 48 * 1024;

/// The largest frame header plus the largest control payload.
const CONTROL: usize = 14 + 125;

/// One side and what it has done and seen.
struct Side {
    conn: Connection,
    sent: Vec<Message>,
    received: Vec<Message>,
    closed: Option<CloseCode>,
    broken: bool,
    /// Its output as the peer sees it, checked frame by frame.
    shadow: Vec<u8>,
    head_done: bool,
    /// The peer sent a frame or message over this side's limits: a 1009
    /// from this side is right.
    expect_too_big: bool,
    /// Pings the peer sent: past the core's bound on unanswered pings (64
    /// reads in a row that each left one unanswered: its pongs wait, or its
    /// send queue is full), a 1008 for the flood is this side's right.
    pings_from_peer: usize,
}

impl Side {
    fn new(role: Role, deflate: bool) -> Self {
        Side {
            conn: Connection::new(role, Config { deflate, ..CONFIG }),
            sent: Vec::new(),
            received: Vec::new(),
            closed: None,
            broken: false,
            shadow: Vec::new(),
            head_done: false,
            expect_too_big: false,
            pings_from_peer: 0,
        }
    }

    fn events(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::Request(_) => {
                    self.conn.accept(None).expect("a valid request");
                }
                Event::Message(m) => self.received.push(m),
                Event::Error(Error::Protocol(ProtocolError::KeepaliveTimeout)) => {
                    self.broken = true
                }
                Event::Error(Error::Protocol(
                    ProtocolError::FrameTooBig { .. } | ProtocolError::MessageTooBig { .. },
                )) if self.expect_too_big => self.broken = true,
                Event::Error(Error::Protocol(ProtocolError::ControlFlood))
                    if self.pings_from_peer > 64 =>
                {
                    self.broken = true
                }
                // A message left unfinished (or half delivered) while time
                // passes: the time bound on a message is policy, not a bug.
                Event::Error(Error::Protocol(ProtocolError::MessageTimeout(_))) => {
                    self.broken = true
                }
                Event::Error(e) => panic!("a correct peer caused {e:?}"),
                Event::Closed { code, .. } => {
                    self.broken |= code == CloseCode::Abnormal;
                    self.closed = Some(code);
                }
                Event::Open { .. } | Event::Ping(_) | Event::Pong(_) | Event::PingSent => {}
            }
        }
        assert!(self.conn.buffered_incoming() <= CONFIG.max_message_size + CONTROL + INFLATE_STATE);
        assert!(self.conn.buffered_amount() <= CONFIG.max_send_queue + 3 * CONTROL);
    }

    /// Checks what this side emitted (as `receiver` will read it): after the
    /// HTTP head, nothing but well-formed frames.
    fn check_output(&mut self, bytes: &[u8], receiver: Role) {
        self.shadow.extend_from_slice(bytes);
        if !self.head_done {
            let Some(end) = self.shadow.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            self.shadow.drain(..end + 4);
            self.head_done = true;
        }
        loop {
            match FrameHeader::decode(&self.shadow).expect("emitted a malformed header") {
                None => return,
                Some((header, len)) => {
                    let mut checked = header;
                    if self.conn.deflate().is_some()
                        && header.rsv == 0b100
                        && header.fin
                        && matches!(header.opcode, OpCode::Text | OpCode::Binary)
                    {
                        // A whole compressed message (RFC 7692 §6).
                        checked.rsv = 0;
                    }
                    checked
                        .validate(receiver)
                        .expect("emitted a frame the peer must reject");
                    let total = len + header.payload_len as usize;
                    if self.shadow.len() < total {
                        return;
                    }
                    self.shadow.drain(..total);
                }
            }
        }
    }
}

/// Moves up to `max` bytes from `from` to `to`; returns how many.
fn deliver(from: &mut Side, to: &mut Side, max: usize, receiver: Role) -> usize {
    let Some(bytes) = from.conn.poll_transmit() else {
        return 0;
    };
    let n = bytes.len().min(max.max(1));
    let chunk = bytes[..n].to_vec();
    from.conn.advance(n);
    from.check_output(&chunk, receiver);
    to.conn.receive(&chunk);
    to.events();
    n
}

fn pump(client: &mut Side, server: &mut Side) {
    for _ in 0..10_000 {
        let moved = deliver(client, server, usize::MAX, Role::Server)
            + deliver(server, client, usize::MAX, Role::Client);
        if moved == 0 {
            return;
        }
    }
    panic!("the two sides never fell quiet");
}

/// The side an operation is for (the client if `client`), then its peer.
fn acting<'a>(client: bool, c: &'a mut Side, s: &'a mut Side) -> (&'a mut Side, &'a mut Side) {
    if client {
        (c, s)
    } else {
        (s, c)
    }
}

/// Whether a receiver with `CONFIG` must refuse a frame of `frame` bytes
/// that brings its message to `message` bytes (1009).
fn too_big(frame: usize, message: usize) -> bool {
    frame > CONFIG.max_frame_size || message > CONFIG.max_message_size
}

fn text_of(payload: &[u8]) -> String {
    String::from_utf8_lossy(payload).into_owned()
}

fuzz_target!(|input: (bool, Vec<Op>)| {
    let (deflate, ops) = input;
    let mut client = Side::new(Role::Client, deflate);
    let mut server = Side::new(Role::Server, deflate);
    client
        .conn
        .connect(ClientRequest::new("h", "/", [9; 16]))
        .expect("a client connects");
    pump(&mut client, &mut server);
    client.events();
    assert!(client.conn.is_open() && server.conn.is_open(), "handshake");
    assert_eq!(client.conn.deflate().is_some(), deflate, "negotiated");
    assert_eq!(client.conn.deflate(), server.conn.deflate());

    let mut now = Duration::ZERO;
    for op in ops {
        match op {
            Op::Send {
                client: c,
                text,
                payload,
                owned,
            } => {
                let (side, peer) = acting(c, &mut client, &mut server);
                let message = if text {
                    Message::Text(text_of(&payload))
                } else {
                    Message::Binary(payload)
                };
                let sent = match owned {
                    true => side.conn.send_owned(message.clone()),
                    false => side.conn.send(&message),
                };
                if sent.is_ok() {
                    let len = message.as_bytes().len();
                    peer.expect_too_big |= too_big(len, len);
                    side.sent.push(message);
                }
            }
            Op::Fragments {
                client: c,
                text,
                parts,
            } => {
                let (side, peer) = acting(c, &mut client, &mut server);
                let kind = if text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                let parts: Vec<Vec<u8>> = parts.into_iter().take(8).collect();
                let mut whole = Vec::new();
                let mut finished = !parts.is_empty();
                for (i, part) in parts.iter().enumerate() {
                    let part = if text {
                        text_of(part).into_bytes()
                    } else {
                        part.clone()
                    };
                    if side
                        .conn
                        .send_fragment(kind, &part, i + 1 == parts.len())
                        .is_err()
                    {
                        finished = false;
                        break;
                    }
                    whole.extend_from_slice(&part);
                    peer.expect_too_big |= too_big(part.len(), whole.len());
                }
                if finished {
                    side.sent.push(match kind {
                        MessageKind::Text => {
                            Message::Text(String::from_utf8(whole).expect("text parts"))
                        }
                        MessageKind::Binary => Message::Binary(whole),
                    });
                } else if !parts.is_empty() {
                    // An unfinished fragmented message blocks this side's
                    // sending for good; stop checking that direction fully.
                    side.broken = true;
                }
            }
            Op::Ping { client: c, payload } => {
                let (side, peer) = acting(c, &mut client, &mut server);
                if side.conn.ping(&payload).is_ok() {
                    peer.pings_from_peer += 1;
                }
            }
            Op::Close {
                client: c,
                code,
                reason,
            } => {
                let side = if c { &mut client } else { &mut server };
                let _ = side
                    .conn
                    .close(CloseCode::from(code.clamp(1000, 4999)), &reason);
            }
            Op::Deliver { to_server, max } => {
                if to_server {
                    deliver(&mut client, &mut server, max.into(), Role::Server);
                } else {
                    deliver(&mut server, &mut client, max.into(), Role::Client);
                }
            }
            Op::Quiet { client: c } => {
                let side = if c { &mut client } else { &mut server };
                side.conn.release_when_drained();
            }
            Op::Wait { ms } => {
                now += Duration::from_millis(ms.into());
                for side in [&mut client, &mut server] {
                    side.conn.handle_timeout(now);
                    side.events();
                }
            }
        }
        for side in [&mut client, &mut server] {
            side.events();
        }
        assert!(
            server.sent.starts_with(&client.received),
            "client got something else"
        );
        assert!(
            client.sent.starts_with(&server.received),
            "server got something else"
        );
    }

    // Deliver everything; with nothing broken, nothing is lost.
    pump(&mut client, &mut server);
    if client.broken || server.broken {
        return;
    }
    assert_eq!(client.received, server.sent);
    assert_eq!(server.received, client.sent);
    // And the close handshake completes, whoever began it.
    let _ = client.conn.close(CloseCode::Normal, "done");
    pump(&mut client, &mut server);
    assert!(
        client.closed.is_some() && server.closed.is_some(),
        "close handshake incomplete"
    );
    assert!(client.conn.is_closed() && server.conn.is_closed());
});
