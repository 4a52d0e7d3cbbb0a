use super::*;
use crate::frame::FrameHeader;
use crate::mask::apply_mask;
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

fn open_server(config: impl Into<Arc<Config>>) -> Connection {
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
fn connections_made_from_one_arc_share_their_config_and_obey_it() {
    let config = Arc::new(Config {
        max_message_size: 4,
        ..Config::DEFAULT
    });
    let mut servers: Vec<Connection> = (0..2).map(|_| open_server(config.clone())).collect();
    assert_eq!(Arc::strong_count(&config), 3, "one copy for all");
    for server in &mut servers {
        server.receive(&masked(0x1, true, b"12345"));
        assert_failed(server, 1009);
    }
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
        ([0xC1, 0x80, 1, 2, 3, 4].to_vec(), 1002),                      // RSV1 without extension
        (masked(0x9, false, b""), 1002),                                // fragmented ping
        (masked(0x9, true, &[0; 126]), 1002),                           // long ping
        (masked(0x0, true, b"x"), 1002),                                // stray continuation
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
    let mut server = open_server(config);
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

/// Heap bytes the connection keeps for traffic: its send queue and what it
/// assembles messages in.
fn traffic_capacity(conn: &Connection) -> usize {
    let traffic = conn.traffic.as_ref();
    traffic.map_or(0, |t| t.queue.capacity() + t.input.capacity())
        + conn.decoder.as_ref().map_or(0, |d| d.capacity())
}

#[test]
fn the_handshake_buffers_go_once_it_and_what_followed_are_written() {
    let mut server = Connection::new(Role::Server, Config::default());
    server.receive(RFC_REQUEST);
    assert!(matches!(server.poll_event(), Some(Event::Request(_))));
    server.accept(None).expect("accept");
    assert_eq!(server.poll_event(), Some(Event::Open { protocol: None }));
    // A welcome right behind the 101, as the chat sends: nothing goes
    // while either is unwritten.
    let welcome = crate::PreparedMessage::text("* Welcome to #lobby, guest-1.");
    server.send_prepared(&welcome).expect("open");
    let all = server.buffered_amount();
    server.advance(all - 1);
    assert!(traffic_capacity(&server) > 0);
    server.advance(1);
    assert!(server.traffic.is_none(), "the request's events, the queue");
    // Traffic grows them again, and they stay between messages (the
    // steady state allocates nothing).
    server.receive(&masked(0x1, true, b"hi"));
    assert_eq!(
        events(&mut server),
        [Event::Message(Message::Text("hi".into()))]
    );
    server.send_text("hi").expect("open");
    drain(&mut server);
    let busy = traffic_capacity(&server);
    assert!(busy > 0);
    server.send_text("again").expect("open");
    drain(&mut server);
    assert_eq!(traffic_capacity(&server), busy);
}

#[test]
fn a_large_buffer_is_kept_for_the_next_message_only_up_to_max_spare_buffer() {
    // A 16 KiB echo sent by value leaves from its own buffer, which comes
    // back once written: kept by default (steady traffic allocates
    // nothing), given back to the allocator past `max_spare_buffer`, as a
    // short message's buffer is not.
    let large = "x".repeat(16 << 10);
    let echo = |server: &mut Connection, text: &str| {
        server.receive(&masked(0x1, true, text.as_bytes()));
        let Some(Event::Message(message)) = server.poll_event() else {
            panic!("a message");
        };
        assert_eq!(message, Message::Text(text.into()));
        server.send_owned(message).expect("open");
        drain(server);
        server.decoder.as_ref().map_or(0, |d| d.capacity())
    };
    for (max_spare_buffer, kept) in [(Config::DEFAULT.max_spare_buffer, true), (4096, false)] {
        let mut server = open_server(Config {
            max_spare_buffer,
            ..Config::default()
        });
        echo(&mut server, &large);
        let spares = echo(&mut server, "hi");
        assert_eq!(
            spares >= large.len(),
            kept,
            "limit {max_spare_buffer}: {spares} bytes"
        );
        assert!(
            spares >= 2,
            "limit {max_spare_buffer}: the short one's buffer is kept"
        );
        // A decoder made again after a quiet spell has the same limit.
        server.release_when_drained();
        assert!(server.poll_event().is_none());
        assert!(server.decoder.is_none(), "freed once quiet");
        let spares = echo(&mut server, &large);
        assert_eq!(
            spares >= large.len(),
            kept,
            "limit {max_spare_buffer}: again"
        );
    }
}

#[test]
fn a_caller_that_knows_it_quiet_frees_the_buffers_once_drained() {
    let mut server = open_server(Config::default());
    server.receive(&masked(0x1, true, b"hi"));
    assert_eq!(
        events(&mut server),
        [Event::Message(Message::Text("hi".into()))]
    );
    let notice = crate::PreparedMessage::text("* guest-2 joined #lobby");
    server.send_prepared(&notice).expect("open");
    server.send_prepared(&notice).expect("open");
    // Asked while bytes wait: they go, then the buffers.
    server.release_when_drained();
    assert!(traffic_capacity(&server) > 0);
    let frames = drain(&mut server);
    assert_eq!(frames.len(), 2 * notice.frame().len());
    assert!(server.traffic.is_none(), "nothing queued");
    assert!(server.decoder.is_none(), "nothing half read");
    // And the next traffic works as before.
    server.send_prepared(&notice).expect("open");
    assert_eq!(drain(&mut server), notice.frame());
}

/// An open server that pings after 30 quiet seconds, its clock started.
fn pinging_server() -> Connection {
    let mut server = open_server(Config {
        ping_interval: Some(Duration::from_secs(30)),
        ..Config::default()
    });
    server.handle_timeout(Duration::ZERO);
    server
}

#[test]
fn a_keepalive_exchange_leaves_no_buffers_behind() {
    let mut server = pinging_server();
    assert!(server.traffic.is_none(), "after the handshake");
    assert!(server.decoder.is_none(), "no frame has come");
    // The handshake's interval counts as traffic; the next is quiet: a
    // ping goes out, the pong comes back.
    server.handle_timeout(Duration::from_secs(30));
    server.handle_timeout(Duration::from_secs(60));
    assert_eq!(events(&mut server), [Event::PingSent]);
    assert_eq!(&drain(&mut server)[..2], [0x89, 0x06]);
    server.receive(&masked(0xA, true, b"tincan"));
    assert_eq!(events(&mut server), [Event::Pong(b"tincan".to_vec())]);
    assert_eq!(server.poll_event(), None);
    assert!(server.traffic.is_none(), "the ping's and pong's events");
    assert!(server.decoder.is_none(), "the pong's decoder");
    // A ping from the peer is no keepalive of ours: its answer's buffer
    // stays for the traffic it may announce.
    server.receive(&masked(0x9, true, b"hi"));
    assert_eq!(events(&mut server), [Event::Ping(b"hi".to_vec())]);
    drain(&mut server);
    assert!(traffic_capacity(&server) > 0);
}

#[test]
fn part_of_a_frame_makes_no_traffic_state() {
    // The header and a piece of a short message, then of a long one: no
    // event yet, so a quiet connection keeps no queue for events.
    let mut server = pinging_server();
    let short = masked(0x1, true, b"hello");
    server.receive(&short[..3]);
    assert!(server.traffic.is_none(), "a partial header");
    server.receive(&short[3..8]);
    assert!(server.traffic.is_none(), "a partial payload");
    server.receive(&short[8..]);
    assert_eq!(
        events(&mut server),
        [Event::Message(Message::Text("hello".into()))]
    );
    let mut server = pinging_server();
    let long = masked(0x2, true, &[7; 300]);
    server.receive(&long[..100]);
    assert_eq!(server.poll_event(), None);
    assert!(server.traffic.is_none(), "a piece of a long payload");
}

#[test]
fn buffers_kept_for_traffic_are_freed_after_a_quiet_interval() {
    let mut server = pinging_server();
    // A 64 KiB message in, recycled as an application would; 50 small
    // messages out, written.
    server.receive(&masked(0x2, true, &[7; 64 << 10]));
    for event in events(&mut server) {
        if let Event::Message(message) = event {
            server.recycle(message);
        }
    }
    for _ in 0..50 {
        server.send_text("a line of chat history").expect("open");
    }
    drain(&mut server);
    let busy = traffic_capacity(&server);
    assert!(busy > 64 << 10, "{busy}");
    // An interval with traffic keeps them for the next messages.
    server.handle_timeout(Duration::from_secs(30));
    assert_eq!(traffic_capacity(&server), busy);
    // A quiet one frees them (the ping it sends takes a few bytes).
    server.handle_timeout(Duration::from_secs(60));
    assert_eq!(events(&mut server), [Event::PingSent]);
    assert!(
        traffic_capacity(&server) < 64,
        "{}",
        traffic_capacity(&server)
    );
    assert_eq!(&drain(&mut server)[..2], [0x89, 0x06]);
    // And the next message is taken as before.
    server.receive(&masked(0x1, true, b"back"));
    assert_eq!(
        events(&mut server),
        [Event::Message(Message::Text("back".into()))]
    );
}

/// A message in progress when the interval ends quietly is kept whole.
#[test]
fn a_quiet_interval_keeps_a_message_in_progress() {
    let mut server = pinging_server();
    server.receive(&masked(0x1, false, b"hel"));
    server.handle_timeout(Duration::from_secs(30));
    server.handle_timeout(Duration::from_secs(60));
    assert_eq!(events(&mut server), [Event::PingSent]);
    server.receive(&masked(0x0, true, b"lo"));
    assert_eq!(
        events(&mut server),
        [Event::Message(Message::Text("hello".into()))]
    );
}

/// An idle connection keeps no decoder, but one that goes between the
/// pieces of a frame would lose them: a quiet interval in the middle of a
/// header, and in the middle of a payload, keeps the decoder, and the frame
/// arrives whole.
#[test]
fn a_quiet_interval_keeps_a_frame_split_anywhere() {
    let text = masked(0x1, true, b"hello");
    let ping = masked(0x9, true, b"hello");
    // In the header, after it (2 bytes and the 4 of the mask), in the
    // payload; a ping's payload is held apart from messages'.
    for (frame, split) in [(&text, 1), (&text, 4), (&text, 9), (&ping, 6), (&ping, 8)] {
        let mut server = pinging_server();
        server.receive(&frame[..split]);
        assert!(events(&mut server).is_empty());
        server.handle_timeout(Duration::from_secs(30));
        server.handle_timeout(Duration::from_secs(60));
        assert_eq!(events(&mut server), [Event::PingSent], "split {split}");
        assert!(server.decoder.is_some(), "split {split}");
        server.receive(&frame[split..]);
        let expected = match frame == &text {
            true => Event::Message(Message::Text("hello".into())),
            false => Event::Ping(b"hello".to_vec()),
        };
        assert_eq!(events(&mut server), [expected], "split {split}");
        // Whole again: the pong to the ping lets the decoder go.
        drain(&mut server);
        server.receive(&masked(0xA, true, b"tincan"));
        assert_eq!(events(&mut server), [Event::Pong(b"tincan".to_vec())]);
        assert!(server.is_open(), "split {split}");
        assert!(server.decoder.is_none(), "split {split}");
    }
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
    let big = PreparedMessage::binary(&[7; 5000]);
    server.send_text("a").expect("open");
    server.send_prepared(&prepared).expect("open");
    server.send_prepared(&big).expect("open");
    server.send_text("b").expect("open");
    // Whatever their size, prepared frames are handed out by reference: a
    // vectored write takes them all at once.
    let mut slices = [IoSlice::new(&[]); 8];
    let n = server.poll_transmit_vectored(&mut slices);
    assert_eq!(n, 4);
    assert_eq!(slices[1].as_ptr(), prepared.frame().as_ptr(), "not copied");
    assert_eq!(slices[2].as_ptr(), big.frame().as_ptr(), "not copied");
    let expected = [
        b"\x81\x01a".as_slice(),
        b"\x81\x06shared",
        big.frame(),
        b"\x81\x01b",
    ];
    let gathered: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
    assert_eq!(gathered, expected.concat());
    assert_eq!(drain(&mut server), expected.concat());
    let mut client = Connection::new(Role::Client, Config::default());
    assert_eq!(
        client.send_prepared(&prepared),
        Err(SendError::InvalidState)
    );
}

#[test]
fn a_prepared_message_waits_for_a_fragmented_one_to_end() {
    // §5.4: no other message's frame goes between the fragments of one.
    let prepared = PreparedMessage::text("to all");
    let mut server = open_server(Config::default());
    server
        .send_fragment(MessageKind::Text, b"hal", false)
        .expect("first");
    assert_eq!(
        server.send_prepared(&prepared),
        Err(SendError::FragmentInProgress)
    );
    server
        .send_fragment(MessageKind::Text, b"f", true)
        .expect("last");
    server
        .send_prepared(&prepared)
        .expect("after the last fragment");
    let mut expected = b"\x01\x03hal\x80\x01f".to_vec();
    expected.extend_from_slice(prepared.frame());
    assert_eq!(drain(&mut server), expected);
}

#[test]
fn a_ping_flood_whose_pongs_are_read_in_a_trickle_is_refused() {
    let mut server = open_server(Config::default());
    let ping = masked(0x9, true, b"p");
    let burst: Vec<u8> = (0..100).flat_map(|_| ping.clone()).collect();
    let flood = Event::Error(Error::Protocol(ProtocolError::ControlFlood));
    // Read after read of pings, while the peer reads one pong (3 bytes)
    // between them: the queue moves, but never empties. A read with no
    // ping in it (a message) changes nothing.
    for read in 0..=MAX_UNANSWERED_READS {
        assert!(!events(&mut server).contains(&flood), "refused at {read}");
        server.receive(&burst);
        let pong = server.poll_transmit().expect("pongs wait")[..3].to_vec();
        assert_eq!(pong, b"\x8a\x01p");
        server.advance(3);
        if read == MAX_UNANSWERED_READS / 2 {
            server.receive(&masked(0x1, true, b"hi"));
        }
    }
    assert!(events(&mut server).contains(&flood));
}

#[test]
fn pings_that_are_all_answered_are_never_refused() {
    // Ten at a time (as Autobahn's case 2.10 sends them), read after read.
    let mut server = open_server(Config::default());
    let ping = masked(0x9, true, b"p");
    let ten: Vec<u8> = (0..10).flat_map(|_| ping.clone()).collect();
    for _ in 0..4 * MAX_UNANSWERED_READS {
        server.receive(&ten);
        assert_eq!(drain(&mut server).len(), 10 * 3);
        events(&mut server);
    }
    assert!(server.is_open());
    // A read that answers every ping starts the count again.
    let burst: Vec<u8> = (0..100).flat_map(|_| ping.clone()).collect();
    for _ in 0..3 {
        for _ in 0..MAX_UNANSWERED_READS {
            server.receive(&burst);
            drain(&mut server);
        }
        server.receive(&ping);
        drain(&mut server);
    }
    events(&mut server);
    assert!(server.is_open());
}

#[test]
fn a_ping_flood_that_reads_nothing_is_refused() {
    let mut server = open_server(Config::default());
    let ping = masked(0x9, true, b"p");
    // The first pongs are queued; later pings wait for them to leave.
    for _ in 0..MAX_PENDING_PONGS {
        server.receive(&ping);
    }
    assert_eq!(server.buffered_amount(), MAX_PENDING_PONGS * 3);
    for _ in 0..MAX_UNANSWERED_READS {
        server.receive(&ping);
    }
    assert_eq!(server.buffered_amount(), MAX_PENDING_PONGS * 3, "bounded");
    assert!(server.is_open() && !server.is_closed());
    // Once the pongs leave, pings are answered again: a reader is never refused.
    drain(&mut server);
    events(&mut server);
    server.receive(&ping);
    assert_eq!(drain(&mut server), b"\x8a\x01p");
    // A burst in one read is answered in part, and not refused...
    let burst: Vec<u8> = (0..1000).flat_map(|_| ping.clone()).collect();
    server.receive(&burst);
    assert!(server.is_open());
    assert_eq!(drain(&mut server).len(), MAX_PENDING_PONGS * 3);
    events(&mut server);
    // ...but read after read while nothing leaves, it is.
    for _ in 0..MAX_PENDING_PONGS + MAX_UNANSWERED_READS as usize + 1 {
        server.receive(&ping);
    }
    let evs = events(&mut server);
    assert_eq!(
        evs[evs.len() - 2..],
        [
            Event::Error(Error::Protocol(ProtocolError::ControlFlood)),
            Event::Closed {
                code: CloseCode::PolicyViolation,
                reason: ProtocolError::ControlFlood.to_string()
            }
        ]
    );
    let out = drain(&mut server);
    assert_eq!(close_code_of(&out[MAX_PENDING_PONGS * 3..]), 1008);
}

#[test]
fn ten_pings_in_one_read_get_ten_pongs() {
    // Autobahn 2.10: not required by §5.5.3, but expected.
    let mut server = open_server(Config::default());
    let pings: Vec<u8> = (0..10u8).flat_map(|i| masked(0x9, true, &[i])).collect();
    server.receive(&pings);
    assert_eq!(events(&mut server).len(), 10);
    let pongs: Vec<u8> = (0..10u8).flat_map(|i| [0x8a, 1, i]).collect();
    assert_eq!(drain(&mut server), pongs);
}

#[test]
fn a_message_that_never_ends_is_refused() {
    let config = Config {
        message_timeout: Some(Duration::from_secs(5)),
        ..Config::default()
    };
    let mut server = open_server(config);
    server.handle_timeout(Duration::from_secs(100));
    server.receive(&masked(0x1, false, b"never"));
    // Empty continuations forever: refused for their count.
    for _ in 0..127 {
        server.receive(&masked(0x0, false, b""));
    }
    assert!(server.is_open());
    server.receive(&masked(0x0, false, b""));
    assert_failed(&mut server, 1008);

    // Slow fragments with payload: refused for the time they take.
    let mut server = open_server(config);
    server.handle_timeout(Duration::from_secs(100));
    server.receive(&masked(0x1, false, b"slow"));
    assert_eq!(server.poll_timeout(), Some(Duration::from_secs(100)));
    server.handle_timeout(Duration::from_secs(100));
    server.receive(&masked(0x0, false, b"er"));
    server.handle_timeout(Duration::from_secs(104));
    assert!(server.is_open());
    assert_eq!(server.poll_timeout(), Some(Duration::from_secs(105)));
    server.handle_timeout(Duration::from_secs(105));
    assert_failed(&mut server, 1008);

    // A message that ends in time stops the clock.
    let mut server = open_server(config);
    server.receive(&masked(0x1, false, b"quick"));
    server.handle_timeout(Duration::from_secs(1));
    server.receive(&masked(0x0, true, b"!"));
    assert_eq!(
        events(&mut server),
        [Event::Message(Message::Text("quick!".into()))]
    );
    server.handle_timeout(Duration::from_secs(10));
    assert!(server.is_open());
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
fn a_message_sent_in_fragments_survives_a_release_between_them() {
    // The first half of a character goes out and is written; the
    // connection is told it is quiet, and then sits through a quiet ping
    // interval: the text's UTF-8 state must stay for the second half.
    let mut server = pinging_server();
    server
        .send_fragment(MessageKind::Text, &"κ".as_bytes()[..1], false)
        .expect("first");
    assert_eq!(drain(&mut server), [0x01, 0x01, 0xce]);
    server.release_when_drained();
    server.handle_timeout(Duration::from_secs(30));
    server.handle_timeout(Duration::from_secs(60));
    assert_eq!(events(&mut server), [Event::PingSent]);
    drain(&mut server);
    server
        .send_fragment(MessageKind::Text, &"κ".as_bytes()[1..], true)
        .expect("the second half completes the character");
    assert_eq!(drain(&mut server), [0x80, 0x01, 0xba]);
    // A refused fragment on an idle connection makes no storage.
    server.receive(&masked(0xA, true, b"tincan"));
    assert_eq!(events(&mut server), [Event::Pong(b"tincan".to_vec())]);
    assert!(server.traffic.is_none());
    assert_eq!(
        server.send_fragment(MessageKind::Text, &[0xff], true),
        Err(SendError::InvalidUtf8)
    );
    assert!(server.traffic.is_none());
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

/// What a caller can observe of a connection besides its events.
fn observable(conn: &Connection) -> (bool, bool, Option<Vec<u8>>, Option<Duration>) {
    (
        conn.is_closed(),
        conn.is_finished(),
        conn.poll_transmit().map(<[u8]>::to_vec),
        conn.poll_timeout(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `has_pending_events` is what lets a caller skip `poll_event`: when it
    /// is false, `poll_event` returns `None` and changes nothing. Inputs:
    /// frames of any opcode, timeouts past the keepalive, a local close and
    /// the end of the stream, in any order.
    #[test]
    fn without_pending_events_poll_event_changes_nothing(
        inputs in proptest::collection::vec(
            (0u8..16, any::<bool>(), proptest::collection::vec(any::<u8>(), 0..40), 0u8..6),
            1..12,
        ),
    ) {
        let mut server = open_server(Config {
            ping_interval: Some(Duration::from_secs(1)),
            ..Config::default()
        });
        let mut now = Duration::ZERO;
        for (opcode, fin, payload, what) in inputs {
            match what {
                0 => server.receive_eof(),
                1 => {
                    now += Duration::from_millis(700);
                    server.handle_timeout(now);
                }
                2 => {
                    let _ = server.close(CloseCode::Normal, "bye");
                }
                _ => server.receive(&masked(opcode, fin, &payload)),
            }
            let mut polled = 0;
            while server.has_pending_events() {
                server.poll_event();
                polled += 1;
                prop_assert!(polled < 100, "pending for ever");
            }
            let before = observable(&server);
            prop_assert_eq!(server.poll_event(), None);
            prop_assert_eq!(observable(&server), before);
            drain(&mut server);
        }
    }
}

/// One step for `send_owned`'s property test: a message sent by value or
/// copied, a shared frame, or a ping between messages.
#[derive(Debug, Clone)]
enum SendStep {
    Owned(Message),
    Copied(Message),
    Prepared(String),
    Ping,
}

fn any_send_step() -> impl Strategy<Value = SendStep> {
    let sized = prop_oneof![
        "\\PC{0,40}".prop_map(Message::Text),
        "[a-z]{3000,6000}".prop_map(Message::Text),
        proptest::collection::vec(any::<u8>(), 0..9000).prop_map(Message::Binary),
    ];
    prop_oneof![
        sized.clone().prop_map(SendStep::Owned),
        sized.prop_map(SendStep::Copied),
        "\\PC{0,40}".prop_map(SendStep::Prepared),
        Just(SendStep::Ping),
    ]
}

/// Drains `conn` in writes of at most `step` bytes, through the vectored
/// path a server uses.
fn drain_vectored(conn: &mut Connection, step: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut slices = [std::io::IoSlice::new(&[]); 4];
        let n = conn.poll_transmit_vectored(&mut slices);
        let mut taken = 0;
        for slice in &slices[..n] {
            let room = step - taken;
            out.extend_from_slice(&slice[..slice.len().min(room)]);
            taken += slice.len().min(room);
        }
        if taken == 0 {
            return out;
        }
        conn.advance(taken);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A server's `send_owned` puts the same bytes on the wire as `send`,
    /// in the same order, large messages (queued as they are) and small
    /// ones (copied) alike, whatever the writes take at a time.
    #[test]
    fn send_owned_puts_the_same_bytes_on_the_wire_as_send(
        steps in proptest::collection::vec(any_send_step(), 1..12),
        step in 1usize..9000,
    ) {
        let mut owned = open_server(Config::default());
        let mut copied = open_server(Config::default());
        for s in &steps {
            match s {
                SendStep::Owned(m) => {
                    owned.send_owned(m.clone()).expect("open");
                    copied.send(m).expect("open");
                }
                SendStep::Copied(m) => {
                    owned.send(m).expect("open");
                    copied.send(m).expect("open");
                }
                SendStep::Prepared(text) => {
                    let shared = PreparedMessage::text(text);
                    owned.send_prepared(&shared).expect("open");
                    copied.send_text(text).expect("open");
                }
                SendStep::Ping => {
                    owned.ping(b"p").expect("open");
                    copied.ping(b"p").expect("open");
                }
            }
            prop_assert_eq!(owned.buffered_amount(), copied.buffered_amount());
        }
        prop_assert_eq!(drain_vectored(&mut owned, step), drain(&mut copied));
    }
}

#[test]
fn send_owned_reaches_the_peer_and_keeps_sends_rules() {
    // A client's message is masked (copied): the server reads it.
    let mut client = Connection::open(Role::Client, Config::default());
    let mut server = Connection::open(Role::Server, Config::default());
    let big = Message::Binary(vec![5; 5000]);
    client.send_owned(big.clone()).expect("open");
    server.receive(&drain(&mut client));
    assert_eq!(events(&mut server), [Event::Message(big.clone())]);
    // A server's goes as it is.
    server.send_owned(big.clone()).expect("open");
    client.receive(&drain(&mut server));
    assert_eq!(events(&mut client), [Event::Message(big.clone())]);

    // The send queue's limit and a fragment in progress refuse it, as
    // they refuse `send`.
    let mut small_queue = open_server(Config {
        max_send_queue: 4000,
        ..Config::default()
    });
    assert_eq!(
        small_queue.send_owned(big.clone()),
        Err(SendError::QueueFull)
    );
    small_queue
        .send_fragment(MessageKind::Text, b"a", false)
        .expect("open");
    assert_eq!(
        small_queue.send_owned(Message::Binary(vec![1; 3000])),
        Err(SendError::FragmentInProgress)
    );
    // And once closed, nothing is sent.
    server.close(CloseCode::Normal, "").expect("open");
    assert!(server.send_owned(big).is_err());
}

#[test]
fn a_response_carries_extra_headers_but_no_injected_lines() {
    let respond = |headers: &[(&str, &str)]| {
        let mut server = Connection::new(Role::Server, Config::default());
        server.receive(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(matches!(server.poll_event(), Some(Event::Request(_))));
        let result = server.respond_with_headers(200, "text/plain", headers, b"hi");
        (
            result,
            String::from_utf8(drain(&mut server)).expect("ascii"),
        )
    };
    let (result, out) = respond(&[("X-Content-Type-Options", "nosniff")]);
    assert_eq!(result, Ok(()));
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(
        out.contains("\r\nX-Content-Type-Options: nosniff\r\n"),
        "{out}"
    );
    assert!(out.ends_with("\r\n\r\nhi"), "{out}");
    for bad in [("X-A", "1\r\nSet-Cookie: x"), ("X A", "1"), ("", "1")] {
        assert_eq!(
            respond(&[bad]),
            (Err(SendError::InvalidHeader), String::new())
        );
    }
}

#[test]
fn deflate_is_answered_only_when_configured_and_offered() {
    let request = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
    // Without the crate's `deflate` feature the offer is always declined.
    for (deflate, answered) in [(true, cfg!(feature = "deflate")), (false, false)] {
        let mut server = Connection::new(
            Role::Server,
            Config {
                deflate,
                ..Config::default()
            },
        );
        server.receive(request.as_bytes());
        assert!(matches!(server.poll_event(), Some(Event::Request(_))));
        server.accept(None).expect("accept");
        let head = String::from_utf8(drain(&mut server)).expect("ascii");
        assert_eq!(
            head.contains(
                "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
            ),
            answered,
            "{head}"
        );
        assert_eq!(server.deflate().is_some(), answered);
    }
}

#[cfg(feature = "deflate")]
mod deflate;

#[test]
fn a_request_whose_peer_left_before_the_answer_cannot_be_upgraded() {
    let mut server = Connection::new(Role::Server, Config::default());
    server.receive(RFC_REQUEST);
    server.receive_eof();
    assert!(matches!(server.poll_event(), Some(Event::Request(_))));
    // Nobody is there to upgrade: no 101, and no `Open` after the `Closed`.
    assert_eq!(server.accept(None), Err(SendError::InvalidState));
    assert_eq!(server.poll_transmit(), None);
    // A plain answer still goes (the peer may only have shut its side, as
    // an HTTP client that sent its request may).
    server
        .respond(503, "text/plain", b"busy")
        .expect("an answer");
    assert!(server.poll_transmit().is_some());
    let rest = events(&mut server);
    assert!(matches!(rest[..], [Event::Closed { .. }]), "{rest:?}");
}

#[test]
fn more_than_a_message_before_the_request_is_answered_ends_the_connection_with_an_event() {
    let config = Config {
        max_message_size: 100,
        ..Config::default()
    };
    let mut server = Connection::new(Role::Server, config);
    server.receive(RFC_REQUEST);
    server.receive(&[0; 101]);
    let evs = events(&mut server);
    assert!(matches!(evs[0], Event::Request(_)));
    assert_eq!(
        evs[1..],
        [
            Event::Error(Error::Protocol(ProtocolError::MessageTooBig {
                size: 101,
                limit: 100
            })),
            Event::Closed {
                code: CloseCode::Abnormal,
                reason: ProtocolError::MessageTooBig {
                    size: 101,
                    limit: 100
                }
                .to_string()
            }
        ]
    );
    assert_eq!(server.accept(None), Err(SendError::InvalidState));
}

#[test]
fn connect_refuses_a_request_that_would_not_go_out_as_it_is() {
    let valid = ClientRequest::new("example.com", "/chat", [7; 16]);
    let refused = |change: &dyn Fn(&mut ClientRequest)| {
        let mut request = valid.clone();
        change(&mut request);
        let mut client = Connection::new(Role::Client, Config::default());
        client.connect(request)
    };
    assert_eq!(
        refused(&|r| r.path = "/x HTTP/1.1\r\nEvil: 1\r\nX: y".into()),
        Err(SendError::InvalidHeader)
    );
    assert_eq!(
        refused(&|r| r.path = "/a b".into()),
        Err(SendError::InvalidHeader)
    );
    assert_eq!(
        refused(&|r| r.host = "h\r\nEvil: 1".into()),
        Err(SendError::InvalidHeader)
    );
    assert_eq!(
        refused(&|r| r.key = "c2hvcnQ=".into()),
        Err(SendError::InvalidHeader),
        "not 16 bytes"
    );
    assert_eq!(
        refused(&|r| r.protocols = vec!["chat v2".into()]),
        Err(SendError::InvalidHeader),
        "§4.1: a token"
    );
    assert_eq!(
        refused(&|r| r.protocols = vec!["chat".into(), "chat".into()]),
        Err(SendError::InvalidHeader),
        "§4.1: unique"
    );
    assert_eq!(
        refused(&|r| r.origin = Some("https://a\r\nEvil: 1".into())),
        Err(SendError::InvalidHeader)
    );
    assert_eq!(
        refused(&|r| r.extensions = Some("x\ny".into())),
        Err(SendError::InvalidHeader)
    );
    assert_eq!(refused(&|r| r.protocols = vec!["chat".into()]), Ok(()));
    // Only a connection still in its handshake sends a request.
    let mut open = Connection::open(Role::Client, Config::default());
    assert_eq!(open.connect(valid), Err(SendError::InvalidState));
}

#[test]
fn a_client_takes_permessage_deflate_only_as_it_offered_it() {
    let config = Config {
        deflate: true,
        ..Config::default()
    };
    let mut request = ClientRequest::new("h", "/", [1; 16]);
    // The caller's own offer, which the connection does not understand.
    request.extensions = Some("x-custom".into());
    let key = request.key.clone();
    let mut client = Connection::new(Role::Client, config);
    client.connect(request).expect("a fresh client");
    let head = drain(&mut client);
    assert!(!String::from_utf8_lossy(&head).contains("permessage-deflate"));
    let response =
        handshake::accept_response_with_extensions(&key, None, Some("permessage-deflate"));
    client.receive(&response);
    assert_eq!(
        client.poll_event(),
        Some(Event::Error(Error::Handshake(
            HandshakeError::UnexpectedExtension
        )))
    );
    assert_eq!(client.deflate(), None);
}

#[test]
fn timeouts_as_long_as_a_duration_goes_do_not_overflow() {
    let config = Config {
        ping_interval: Some(Duration::MAX),
        ping_timeout: Duration::MAX,
        close_timeout: Duration::MAX,
        message_timeout: Some(Duration::MAX),
        handshake_timeout: Duration::MAX,
        ..Config::default()
    };
    let mut server = open_server(config);
    server.handle_timeout(Duration::from_secs(1));
    server.receive(&masked(0x1, false, b"half"));
    server.handle_timeout(Duration::from_secs(2));
    server.close(CloseCode::Normal, "").expect("open");
    server.handle_timeout(Duration::from_secs(3));
    // (Each deadline is `now + timeout`: unchecked, these calls panicked.)
    server.handle_timeout(Duration::MAX);
}

#[test]
fn clients_that_share_a_config_mask_alike_unless_each_is_seeded() {
    let config = Arc::new(Config::default());
    let first_mask = |seed: Option<u64>| {
        let mut client = Connection::open(Role::Client, Arc::clone(&config));
        if let Some(seed) = seed {
            client.seed_masks(seed);
        }
        client.send_text("x").expect("open");
        drain(&mut client)[2..6].to_vec()
    };
    assert_eq!(
        first_mask(None),
        first_mask(None),
        "one config, one sequence"
    );
    assert_ne!(first_mask(Some(1)), first_mask(Some(2)));
}
