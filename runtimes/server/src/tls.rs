//! TLS on rustls (the ring provider), through futures-rustls: the same port
//! serves the page over https and WebSocket over wss. Written once for every
//! runtime: a runtime's socket is had as a futures-io stream
//! ([`IntoStream`](crate::runtime::IntoStream)), and [`TlsSocket`] is a
//! [`Socket`] again, so the serve loop drives it like any other.
//!
//! The certificate and key are read by [`load`] at start (a bad file ends the
//! server, naming it) and again on SIGHUP (a bad pair is logged, and the old
//! one kept): the accept loop holds the current [`TlsAcceptor`] and hands a
//! clone of it to each connection, so a reload reaches every connection
//! accepted after it and none before.

use std::io::{self, IoSlice};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};
use futures_rustls::pki_types::pem::{self, PemObject};
use futures_rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls::{self, crypto::ring, Error as RustlsError, InconsistentKeys};
use futures_rustls::server::TlsStream;
pub use futures_rustls::TlsAcceptor;

use crate::config::TlsFiles;
use crate::runtime::Socket;

/// Why a certificate and key cannot be served. Each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file is missing or unreadable.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The file is not valid PEM.
    #[error("{} is not valid PEM: {detail}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The certificate file holds no `CERTIFICATE` block.
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key block (PKCS#8, PKCS#1 or SEC1).
    #[error("{} holds no PEM private key", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key is not the certificate's.
    #[error("the key in {} does not match the certificate in {}", key.display(), cert.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the key or the certificate (an unsupported key type,
    /// say).
    #[error("cannot use the key in {} with the certificate in {}: {source}", key.display(), cert.display())]
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        source: RustlsError,
    },
}

/// Reads the certificate chain and key and makes an acceptor of them: TLS
/// 1.2 and 1.3, no client certificates, ALPN `http/1.1` (WebSocket runs over
/// HTTP/1.1, RFC 6455 §4.1).
pub fn load(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let cert_pem = read(&files.cert)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(&files.cert, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key_pem = read(&files.key)?;
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(key) => key,
        Err(pem::Error::NoItemsFound) => {
            return Err(TlsError::NoKey {
                path: files.key.clone(),
            })
        }
        Err(e) => return Err(pem_error(&files.key, e)),
    };
    let rejected = |source| TlsError::Rejected {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    };
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(rejected)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| match e {
                RustlsError::InconsistentKeys(InconsistentKeys::KeyMismatch) => {
                    TlsError::Mismatch {
                        cert: files.cert.clone(),
                        key: files.key.clone(),
                    }
                }
                e => rejected(e),
            })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn pem_error(path: &Path, error: pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        detail: error.to_string(),
    }
}

/// Runs the TLS handshake on `stream`; the caller bounds it in time.
pub async fn accept<S>(acceptor: &TlsAcceptor, stream: S) -> io::Result<TlsSocket<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let stream = acceptor.accept(stream).await?;
    Ok(TlsSocket {
        inner: Mutex::new(Inner {
            stream,
            close: Close::Open,
        }),
    })
}

/// A connection after its TLS handshake, as a [`Socket`]. Reads and writes
/// take `&self` (the serve loop waits for both at once), so the stream sits
/// behind a mutex, which is only ever held inside one poll.
///
/// A write hands plaintext to rustls, which encrypts it into records and
/// sends what the socket takes; records it could not send yet wait in rustls
/// (at most 64 KiB, its default buffer limit, past which writes wait) until
/// [`Socket::poll_flush`].
pub struct TlsSocket<S> {
    inner: Mutex<Inner<S>>,
}

struct Inner<S> {
    stream: TlsStream<S>,
    close: Close,
}

/// The write side's end: `close_notify` and a TCP FIN, after everything
/// queued before it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Close {
    Open,
    Closing,
    Closed,
}

impl<S> TlsSocket<S> {
    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Polls `op` on the stream, under the lock for that poll only.
    fn poll_with<T>(
        &self,
        cx: &mut Context<'_>,
        op: impl FnOnce(&mut Inner<S>, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        op(&mut self.lock(), cx)
    }
}

impl<S> Socket for TlsSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static,
{
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.poll_with(cx, |inner, cx| {
            Pin::new(&mut inner.stream).poll_read(cx, buf)
        })
    }

    fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_with(cx, |inner, cx| {
            Pin::new(&mut inner.stream).poll_write_vectored(cx, slices)
        })
    }

    /// Queues `close_notify` and the FIN: [`Socket::poll_flush`] sends them.
    fn shutdown_write(&self) -> io::Result<()> {
        let mut inner = self.lock();
        if inner.close == Close::Open {
            inner.close = Close::Closing;
        }
        Ok(())
    }

    fn wants_flush(&self) -> bool {
        let inner = self.lock();
        inner.close == Close::Closing || inner.stream.get_ref().1.wants_write()
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_with(cx, |inner, cx| {
            let stream = Pin::new(&mut inner.stream);
            if inner.close != Close::Closing {
                return stream.poll_flush(cx);
            }
            ready!(stream.poll_close(cx))?;
            inner.close = Close::Closed;
            Poll::Ready(Ok(()))
        })
    }
}
