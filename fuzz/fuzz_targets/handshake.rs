//! Arbitrary bytes, in arbitrary pieces, into the server's request parser and
//! the client's response parser: the verdict (the request or response, the
//! error, the bytes left over, everything the connection says and sends) must
//! not depend on the split. Both sides negotiate permessage-deflate, so
//! extension offers and answers (RFC 7692 §5, §7.1) are parsed too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_core::handshake::{HeadReader, Request};
use tincan_core::{ClientRequest, Config, Connection, Event, Role};

fn pieces<'a>(bytes: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in cuts {
        let end = (at + usize::from(cut)).min(bytes.len());
        out.push(&bytes[at..end]);
        at = end;
    }
    out.push(&bytes[at..]);
    out
}

/// What a head reader and the request parser make of the pieces.
fn parse(pieces: &[&[u8]]) -> String {
    let mut reader = HeadReader::new(512);
    let mut consumed = 0;
    for piece in pieces {
        match reader.feed(piece) {
            Ok(None) => consumed += piece.len(),
            Ok(Some((head, used))) => {
                return format!("{:?} after {}", Request::parse(&head), consumed + used);
            }
            Err(e) => return format!("{e:?}"),
        }
    }
    "incomplete".into()
}

/// Everything a connection in `role` reports and sends, given the pieces.
fn converse(role: Role, pieces: &[&[u8]]) -> (Vec<Event>, Vec<u8>) {
    let config = Config {
        max_head_size: 512,
        deflate: true,
        ..Config::default()
    };
    let mut conn = Connection::new(role, config);
    if role == Role::Client {
        let mut request = ClientRequest::new("h", "/", *b"the sample nonce");
        request.protocols = vec!["tincan.v1".into()];
        let _ = conn.connect(request);
    }
    let mut events = Vec::new();
    for piece in pieces {
        conn.receive(piece);
        while let Some(event) = conn.poll_event() {
            if let Event::Request(request) = &event {
                if request.is_upgrade {
                    let _ = conn.accept(request.protocols.first().map(String::as_str));
                } else {
                    let _ = conn.respond(404, "text/plain", b"no");
                }
            }
            events.push(event);
        }
    }
    let mut out = Vec::new();
    while let Some(bytes) = conn.poll_transmit() {
        out.extend_from_slice(bytes);
        let n = bytes.len();
        conn.advance(n);
    }
    (events, out)
}

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (bytes, cuts) = input;
    let split = pieces(&bytes, &cuts);
    assert_eq!(parse(&[&bytes]), parse(&split));
    for role in [Role::Server, Role::Client] {
        assert_eq!(
            converse(role, &[&bytes]),
            converse(role, &split),
            "{role:?}"
        );
    }
});
