//! One WebSocket client connection: a socket driven by a
//! [`tincan_core::Connection`] in the client role.

use std::time::Duration;

use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use tincan_core::{ClientRequest, CloseCode, Config, Connection, Event, Role};

use crate::gate::Waiter;
use crate::url::Target;

/// Why a connection ended or never started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The TCP connect failed (`EMFILE` is 24: out of file descriptors).
    Connect {
        os_error: Option<i32>,
        message: String,
    },
    /// The server refused or broke the handshake.
    Handshake(String),
    /// The server closed the connection or broke the protocol.
    Closed(String),
}

/// A socket with the client state machine on it.
pub struct WsClient {
    stream: TcpStream,
    /// The protocol state; events are polled from it directly.
    pub conn: Connection,
    buf: Vec<u8>,
}

/// Connects a TCP socket with Nagle off.
pub async fn tcp_connect(target: &Target) -> Result<TcpStream, Failure> {
    let stream = TcpStream::connect(target.addr)
        .await
        .map_err(|e| Failure::Connect {
            os_error: e.raw_os_error(),
            message: e.to_string(),
        })?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

impl WsClient {
    /// Connects and completes the opening handshake. `seed` makes the key
    /// and the masking keys (a load tool needs variety, not secrecy).
    pub async fn connect(target: &Target, seed: u64) -> Result<Self, Failure> {
        let stream = tcp_connect(target).await?;
        let config = Config {
            max_frame_size: 1 << 30,
            max_message_size: 1 << 30,
            max_send_queue: 1 << 30,
            ping_interval: None,
            mask_seed: seed,
            ..Config::default()
        };
        let mut conn = Connection::new(Role::Client, config);
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&seed.to_le_bytes());
        nonce[8..].copy_from_slice(&seed.rotate_left(29).to_le_bytes());
        conn.connect(ClientRequest::new(&target.host, &target.path, nonce))
            .map_err(|e| Failure::Handshake(e.to_string()))?;
        let mut client = Self {
            stream,
            conn,
            buf: vec![0; 64 * 1024],
        };
        client.flush().await?;
        loop {
            client.read().await?;
            while let Some(event) = client.conn.poll_event() {
                match event {
                    Event::Open { .. } => return Ok(client),
                    Event::Error(e) => return Err(Failure::Handshake(e.to_string())),
                    Event::Closed { .. } => {
                        return Err(Failure::Handshake("closed during the handshake".into()))
                    }
                    _ => {}
                }
            }
        }
    }

    /// Writes everything the connection has queued.
    pub async fn flush(&mut self) -> Result<(), Failure> {
        while let Some(bytes) = self.conn.poll_transmit() {
            let n = self
                .stream
                .write(bytes)
                .await
                .map_err(|e| Failure::Closed(e.to_string()))?;
            self.conn.advance(n);
        }
        Ok(())
    }

    /// Reads once and feeds the connection; the caller polls its events.
    pub async fn read(&mut self) -> Result<(), Failure> {
        let n = self
            .stream
            .read(&mut self.buf)
            .await
            .map_err(|e| Failure::Closed(e.to_string()))?;
        if n == 0 {
            self.conn.receive_eof();
            return Err(Failure::Closed("the server closed the connection".into()));
        }
        self.conn.receive(&self.buf[..n]);
        Ok(())
    }

    /// Like [`WsClient::read`], unless `stop` opens first: then `Ok(false)`.
    pub async fn read_or(&mut self, stop: &Waiter) -> Result<bool, Failure> {
        let read = async { self.read().await.map(|()| true) };
        smol::future::or(read, async {
            stop.wait().await;
            Ok(false)
        })
        .await
    }

    /// Sends a normal close and waits briefly for the server's answer.
    pub async fn close(mut self) {
        if self.conn.close(CloseCode::Normal, "").is_ok() && self.flush().await.is_ok() {
            let answer = async {
                while self.read().await.is_ok() && !self.conn.is_closed() {
                    while self.conn.poll_event().is_some() {}
                }
            };
            let _ = smol::future::or(answer, async {
                smol::Timer::after(Duration::from_secs(1)).await;
            })
            .await;
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect { message, .. } => write!(f, "connect: {message}"),
            Failure::Handshake(m) => write!(f, "handshake: {m}"),
            Failure::Closed(m) => write!(f, "connection: {m}"),
        }
    }
}
