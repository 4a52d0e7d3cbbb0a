//! What every peer server shares: the command line (`<binary> [--current-thread]
//! [--tls-cert PEM --tls-key PEM] <port>`, in any order), the runtime, the TLS
//! acceptor, and the "listening on" line that bench/compare.sh waits for.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;

use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
pub use tokio_rustls::TlsAcceptor;

fn usage() -> ! {
    eprintln!(
        "usage: {} <port> [--current-thread] [--tls-cert PEM --tls-key PEM]",
        std::env::args().next().unwrap_or_default()
    );
    std::process::exit(2);
}

/// Parses the command line, binds 127.0.0.1:<port> and runs `serve` on a
/// tokio runtime (multi-thread by default, as `#[tokio::main]`), with a TLS
/// acceptor (tokio-rustls on the ring provider) when a certificate and key
/// are given.
pub fn run<F, Fut>(serve: F)
where
    F: FnOnce(tokio::net::TcpListener, Option<TlsAcceptor>) -> Fut,
    Fut: Future<Output = ()>,
{
    let (mut port, mut current_thread, mut cert, mut key) = (None, false, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--current-thread" => current_thread = true,
            "--tls-cert" => cert = Some(args.next().unwrap_or_else(|| usage())),
            "--tls-key" => key = Some(args.next().unwrap_or_else(|| usage())),
            _ => port = Some(arg.parse::<u16>().unwrap_or_else(|_| usage())),
        }
    }
    let Some(port) = port else { usage() };
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(acceptor(&cert, &key)),
        (None, None) => None,
        _ => usage(),
    };
    let mut runtime = if current_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = runtime.enable_all().build().expect("a tokio runtime");
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("cannot listen on port {port}: {e}");
                std::process::exit(1);
            }
        };
        println!("listening on {port}");
        let _ = std::io::stdout().flush();
        serve(listener, tls).await;
    });
}

/// A TLS acceptor for the PEM certificate chain and key in these files,
/// as tokio-rustls's examples/server.rs makes it (with the ring provider).
fn acceptor(cert: &str, key: &str) -> TlsAcceptor {
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("{what}: {e}");
        std::process::exit(1);
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| fail(cert, &e));
    let key = PrivateKeyDer::from_pem_file(key).unwrap_or_else(|e| fail(key, &e));
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| fail("TLS versions", &e))
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap_or_else(|e| fail("TLS certificate", &e));
    TlsAcceptor::from(Arc::new(config))
}

/// For the peers without TLS: refuses `--tls-cert` rather than ignore it.
pub fn no_tls(tls: Option<TlsAcceptor>) {
    if tls.is_some() {
        eprintln!("this peer has no TLS");
        std::process::exit(2);
    }
}
