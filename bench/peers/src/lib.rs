//! What every peer server shares: the command line (`<binary> <port>
//! [--current-thread]`), the runtime, and the "listening on" line that
//! bench/compare.sh waits for.

use std::future::Future;
use std::io::Write;

/// Parses `<port> [--current-thread]`, binds 127.0.0.1:<port> and runs
/// `serve` on a tokio runtime (multi-thread by default, as `#[tokio::main]`).
pub fn run<F, Fut>(serve: F)
where
    F: FnOnce(tokio::net::TcpListener) -> Fut,
    Fut: Future<Output = ()>,
{
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(port) = args.first().and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!(
            "usage: {} <port> [--current-thread]",
            std::env::args().next().unwrap_or_default()
        );
        std::process::exit(2);
    };
    let mut runtime = if args.iter().any(|a| a == "--current-thread") {
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
        serve(listener).await;
    });
}
