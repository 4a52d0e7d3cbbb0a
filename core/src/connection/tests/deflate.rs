//! permessage-deflate on a connection (RFC 7692), with the `deflate`
//! feature.

use super::*;

/// A client and a server with permessage-deflate, the client offering
/// `offer`; the handshake done.
fn deflate_pair(offer: &str) -> (Connection, Connection) {
    let config = Config {
        deflate: true,
        ..Config::default()
    };
    let mut client = Connection::new(Role::Client, config);
    let mut server = Connection::new(Role::Server, config);
    let mut request = ClientRequest::new("h", "/", [7; 16]);
    request.extensions = Some(offer.to_owned());
    client.connect(request).expect("connect");
    server.receive(&drain(&mut client));
    assert!(matches!(server.poll_event(), Some(Event::Request(_))));
    server.accept(None).expect("accept");
    client.receive(&drain(&mut server));
    assert_eq!(events(&mut client), [Event::Open { protocol: None }]);
    assert_eq!(events(&mut server), [Event::Open { protocol: None }]);
    (client, server)
}

fn chat_text(n: usize) -> String {
    (0..n)
        .map(|i| format!("line {i} of a chat that repeats itself; "))
        .collect()
}

#[test]
fn deflate_round_trips_for_every_parameter_combination() {
    for client_nct in [false, true] {
        for server_nct in [false, true] {
            for server_bits in [None, Some(8), Some(12), Some(15)] {
                for client_bits in [None, Some(None), Some(Some(9))] {
                    let mut offer = String::from("permessage-deflate");
                    if client_nct {
                        offer.push_str("; client_no_context_takeover");
                    }
                    if server_nct {
                        offer.push_str("; server_no_context_takeover");
                    }
                    if let Some(bits) = server_bits {
                        offer.push_str(&format!("; server_max_window_bits={bits}"));
                    }
                    match client_bits {
                        Some(Some(bits)) => {
                            offer.push_str(&format!("; client_max_window_bits={bits}"))
                        }
                        Some(None) => offer.push_str("; client_max_window_bits"),
                        None => {}
                    }
                    let (mut client, mut server) = deflate_pair(&offer);
                    let params = server.deflate().expect("negotiated");
                    assert_eq!(client.deflate(), Some(params), "{offer}");
                    assert!(
                        params.server_no_context_takeover,
                        "always, to keep no compressor"
                    );
                    assert_eq!(params.client_no_context_takeover, client_nct, "{offer}");
                    assert_eq!(params.server_max_window_bits, server_bits.unwrap_or(15));
                    for round in 0..3 {
                        let text = chat_text(20 + round);
                        client.send_text(&text).expect("open");
                        let wire = drain(&mut client);
                        assert_eq!(wire[0] & 0x40, 0x40, "RSV1: compressed");
                        assert!(wire.len() < text.len() / 2, "{offer}: {}", wire.len());
                        server.receive(&wire);
                        assert_eq!(
                            events(&mut server),
                            [Event::Message(Message::Text(text.clone()))]
                        );
                        server.send_text(&text).expect("open");
                        let wire = drain(&mut server);
                        assert_eq!(wire[0] & 0x40, 0x40, "RSV1: compressed");
                        client.receive(&wire);
                        assert_eq!(events(&mut client), [Event::Message(Message::Text(text))]);
                    }
                    // Broadcasts use the shared compressed frame where the
                    // window is full, the plain one otherwise.
                    let prepared = PreparedMessage::text(&chat_text(10)).with_deflate();
                    server.send_prepared(&prepared).expect("open");
                    let wire = drain(&mut server);
                    let expected = match params.server_max_window_bits {
                        15 => prepared.deflated_frame().expect("compressed"),
                        _ => prepared.frame(),
                    };
                    assert_eq!(wire, expected, "{offer}");
                    client.receive(&wire);
                    assert_eq!(
                        events(&mut client),
                        [Event::Message(Message::Text(chat_text(10)))]
                    );
                }
            }
        }
    }
}

#[test]
fn rsv1_is_refused_where_deflate_does_not_allow_it() {
    // Not negotiated: RSV1 is a reserved bit (§5.2).
    let mut server = open_server(Config::default());
    let mut frame = masked(0x1, true, b"hi");
    frame[0] |= 0x40;
    server.receive(&frame);
    assert_failed(&mut server, 1002);
    // Negotiated, but on a continuation or a control frame (RFC 7692 §6.1).
    for (first, second) in [
        (masked(0x1, false, b"a"), masked(0x0, true, b"b")),
        (masked(0x9, true, b""), Vec::new()),
    ] {
        let (_, mut server) = deflate_pair("permessage-deflate");
        let mut bad = if second.is_empty() {
            first.clone()
        } else {
            second
        };
        bad[0] |= 0x40;
        if !first.is_empty() && first[0] & 0x0f != 0x9 {
            server.receive(&first);
        }
        server.receive(&bad);
        assert_failed(&mut server, 1002);
    }
}

#[test]
fn a_compressed_bomb_fails_with_1009_at_the_limit() {
    let (mut client, mut server) = deflate_pair("permessage-deflate");
    let zeros = vec![0u8; 10 << 20];
    client.send_binary(&zeros).expect("open");
    let wire = drain(&mut client);
    // Our fast level still gives 200:1 on zeros.
    assert!(wire.len() < 64 << 10, "{}", wire.len());
    let limits = Config {
        deflate: true,
        max_message_size: 1 << 20,
        ..Config::default()
    };
    // The same wire bytes to a server with a 1 MiB limit.
    let mut small = Connection::new(Role::Server, limits);
    let mut request = ClientRequest::new("h", "/", [7; 16]);
    request.extensions = Some("permessage-deflate".into());
    small.receive(&request.to_bytes());
    assert!(matches!(small.poll_event(), Some(Event::Request(_))));
    small.accept(None).expect("accept");
    events(&mut small);
    drain(&mut small);
    small.receive(&wire);
    assert!(small.buffered_incoming() <= (1 << 20) + 64 * 1024);
    assert_failed(&mut small, 1009);
    server.receive(&wire);
    assert_eq!(
        events(&mut server),
        [Event::Message(Message::Binary(zeros))]
    );
}

#[test]
fn a_broadcast_to_a_thousand_is_compressed_once_and_shared() {
    let prepared = PreparedMessage::text(&chat_text(50)).with_deflate();
    let deflated = prepared.deflated_frame().expect("compressed").as_ptr();
    let mut servers: Vec<Connection> = (0..1000)
        .map(|_| deflate_pair("permessage-deflate; client_no_context_takeover").1)
        .collect();
    for server in &mut servers {
        server.send_prepared(&prepared).expect("open");
        let mut slices = [IoSlice::new(&[]); 1];
        assert_eq!(server.poll_transmit_vectored(&mut slices), 1);
        // The very bytes compressed once, not a copy and not a re-run.
        assert_eq!(slices[0].as_ptr(), deflated);
    }
}

/// A browser that only listens keeps no decoder, deflate or not; one whose
/// window the server keeps (context takeover) keeps it once it has sent,
/// whether the quiet is a keepalive's or the caller's word
/// ([`Connection::release_when_drained`]).
#[test]
fn a_deflate_connection_keeps_a_decoder_only_while_it_holds_something() {
    for offer in [
        "permessage-deflate; client_no_context_takeover",
        "permessage-deflate",
    ] {
        for keepalive in [true, false] {
            let (mut client, mut server) = deflate_pair(offer);
            assert!(server.decoder.is_none(), "{offer}: nothing has come");
            server.handle_timeout(Duration::ZERO);
            client.send_text(&chat_text(10)).expect("open");
            server.receive(&drain(&mut client));
            assert_eq!(events(&mut server).len(), 1);
            if keepalive {
                server.handle_timeout(Duration::from_secs(31));
                server.handle_timeout(Duration::from_secs(62));
                assert_eq!(events(&mut server), [Event::PingSent]);
            } else {
                server.release_when_drained();
            }
            let keeps_window = !offer.contains("client_no_context_takeover");
            assert_eq!(server.decoder.is_some(), keeps_window, "{offer}");
            // Either way the next message refers back correctly (or not at all).
            client.send_text(&chat_text(10)).expect("open");
            server.receive(&drain(&mut client));
            assert_eq!(
                events(&mut server),
                [Event::Message(Message::Text(chat_text(10)))],
                "{offer}"
            );
        }
    }
}

#[test]
fn inflate_state_is_kept_while_busy_and_released_when_quiet() {
    // The client compresses each message on its own: nothing refers back.
    let (mut client, mut server) = deflate_pair("permessage-deflate; client_no_context_takeover");
    assert_eq!(
        server.buffered_incoming(),
        0,
        "nothing before a compressed message"
    );
    server.handle_timeout(Duration::ZERO);
    client.send_text(&chat_text(10)).expect("open");
    server.receive(&drain(&mut client));
    assert_eq!(events(&mut server).len(), 1);
    assert!(
        server.buffered_incoming() > 32 * 1024,
        "kept for the next message"
    );
    // One interval with traffic in it keeps it; a quiet one releases it.
    server.handle_timeout(Duration::from_secs(31));
    assert!(server.buffered_incoming() > 32 * 1024);
    server.handle_timeout(Duration::from_secs(62));
    assert_eq!(events(&mut server), [Event::PingSent]);
    assert_eq!(server.buffered_incoming(), 0, "released while quiet");
    assert!(server.decoder.is_none(), "and the decoder with it");
    // And made again, inflating, for the next compressed message.
    client.send_text(&chat_text(10)).expect("open");
    server.receive(&drain(&mut client));
    assert_eq!(
        events(&mut server),
        [Event::Message(Message::Text(chat_text(10)))]
    );
}
