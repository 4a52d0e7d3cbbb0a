//! `wss://`: a rustls client connection (the ring provider) between the
//! socket and the WebSocket [`Peer`]. Sans-IO like the core: ciphertext is
//! read into the thread's shared buffer and fed to rustls, plaintext goes to
//! the peer straight from rustls's buffer, and what the peer queues is
//! encrypted into rustls's outgoing buffer and written from there.
//!
//! The server's certificate is checked against the certificates in the file
//! given with `--ca PEM` (a bench's own self-signed certificate, say) and
//! nothing else: there is no option to skip the check.

use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::client::Peer;

/// What a `wss://` connection needs: the configuration (shared by every
/// connection) and the name the certificate must have.
#[derive(Clone)]
pub struct TlsTarget {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTarget")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PartialEq for TlsTarget {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config) && self.name == other.name
    }
}

impl Eq for TlsTarget {}

impl TlsTarget {
    /// Trusts the certificates in the PEM file `ca` alone, for a server
    /// called `host` (a DNS name or an IP address, as the URL has it, without
    /// the port).
    pub fn new(ca: &str, host: &str) -> Result<Self, String> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("--ca '{ca}': {e}"))? {
            let cert = cert.map_err(|e| format!("--ca '{ca}': {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("--ca '{ca}': cannot trust a certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err(format!("--ca '{ca}': no PEM certificate in it"));
        }
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare.to_owned())
            .map_err(|e| format!("'{host}' is no TLS server name: {e}"))?;
        Ok(Self {
            config: Arc::new(config),
            name,
        })
    }

    /// A client connection, its ClientHello queued.
    pub fn connect(&self) -> io::Result<Tls> {
        ClientConnection::new(self.config.clone(), self.name.clone())
            .map(|conn| Tls {
                conn,
                closed: false,
            })
            .map_err(io::Error::other)
    }
}

/// One connection's TLS state.
pub struct Tls {
    conn: ClientConnection,
    /// close_notify arrived (and everything before it was handed on).
    closed: bool,
}

impl Tls {
    /// Moves what `peer` has queued into rustls (as much as its buffer
    /// takes) and writes ciphertext to `socket` until all is written or the
    /// socket is full (`WouldBlock`, for the caller to wait on).
    pub fn write(&mut self, peer: &mut impl Peer, mut socket: impl Write) -> io::Result<()> {
        loop {
            while let Some(bytes) = peer.transmit() {
                match self.conn.writer().write(bytes)? {
                    0 => break,
                    n => peer.advance(n),
                }
            }
            if !self.conn.wants_write() {
                return Ok(());
            }
            match self.conn.write_tls(&mut socket)? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                _ => continue,
            }
        }
    }

    /// Feeds `ciphertext` (just read) to rustls and gives `peer` whatever
    /// plaintext it yields, up to close_notify.
    fn receive(&mut self, mut ciphertext: &[u8], peer: &mut impl Peer) -> io::Result<()> {
        while !ciphertext.is_empty() {
            self.conn.read_tls(&mut ciphertext)?;
            self.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let mut reader = self.conn.reader();
            loop {
                match reader.fill_buf() {
                    Ok([]) => {
                        self.closed = true;
                        return Ok(());
                    }
                    Ok(chunk) => {
                        let n = chunk.len();
                        peer.receive(chunk);
                        reader.consume(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Reads once from `socket` (into `buf`) and gives `peer` the
    /// plaintext: the number of bytes read, 0 at the end (a TCP end, or the
    /// read after close_notify).
    pub fn read(
        &mut self,
        mut socket: impl Read,
        buf: &mut [u8],
        peer: &mut impl Peer,
    ) -> io::Result<usize> {
        if self.closed {
            return Ok(0);
        }
        let n = socket.read(buf)?;
        self.receive(&buf[..n], peer)?;
        Ok(n)
    }

    /// The server has said close_notify: nothing more will come.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}
