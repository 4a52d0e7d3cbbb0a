//! # tincan-core
//!
//! A sans-io WebSocket (RFC 6455) protocol core. Bytes and time go in; events
//! and bytes come out. Nothing here opens a socket, reads a clock, spawns or
//! allocates per byte, so the same code runs under any async runtime, in a
//! fuzzer, and in wasm32. It knows nothing of chat or servers: the tincan
//! chat (`tincan-chat`) and server (`tincan-server`) are built on it.
//!
//! ```
//! use tincan_core::{ClientRequest, Config, Connection, Event, Message, Role};
//!
//! let mut server = Connection::new(Role::Server, Config::default());
//! let mut client = Connection::new(Role::Client, Config::default());
//! client.connect(ClientRequest::new("localhost", "/", *b"0123456789abcdef")).unwrap();
//!
//! // Wire the two together: whatever one transmits, the other receives.
//! fn pump(from: &mut Connection, to: &mut Connection) {
//!     while let Some(bytes) = from.poll_transmit() {
//!         let bytes = bytes.to_vec();
//!         from.advance(bytes.len());
//!         to.receive(&bytes);
//!     }
//! }
//!
//! pump(&mut client, &mut server);
//! match server.poll_event() {
//!     Some(Event::Request(request)) => {
//!         assert!(request.is_upgrade);
//!         server.accept(None).unwrap();
//!     }
//!     other => panic!("expected a request, got {other:?}"),
//! }
//! pump(&mut server, &mut client);
//! assert_eq!(client.poll_event(), Some(Event::Open { protocol: None }));
//!
//! client.send_text("Hello").unwrap();
//! pump(&mut client, &mut server);
//! assert_eq!(server.poll_event(), Some(Event::Open { protocol: None }));
//! assert_eq!(server.poll_event(), Some(Event::Message(Message::Text("Hello".into()))));
//! ```
//!
//! Modules, one concept each, follow the RFC: [`handshake`] (§4),
//! [`role`] (§5.1), [`frame`] (§5.2), [`mask`] (§5.3), [`utf8`] (§8.1),
//! [`message`] (§5.4), [`close`] (§5.5.1, §7), and [`connection`], the state
//! machine that puts them together. [`codec`] decodes frames and messages
//! without a connection; [`deflate`] is permessage-deflate (RFC 7692).
//!
//! ## Features
//!
//! - `deflate` (off by default): compressing and inflating for
//!   permessage-deflate, on miniz_oxide. Without it the crate links only
//!   sha1, base64 and thiserror, and a connection declines every
//!   permessage-deflate offer (negotiation still parses them).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod close;
pub mod codec;
pub mod connection;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod message;
pub mod role;
pub mod utf8;

pub use close::CloseCode;
pub use connection::{Config, Connection, Event, Role};
pub use error::{Error, ProtocolError, SendError};
pub use frame::{FrameHeader, OpCode};
pub use handshake::{ClientRequest, HandshakeError, Request};
pub use message::{Message, MessageKind, PreparedMessage};
