//! # tincan-server
//!
//! The tincan chat server, written once for every runtime. A binary
//! (`tincan-smol`, `tincan-async-std`, `tincan-tokio`) implements the small [`Runtime`] trait
//! for its runtime and calls [`main`]; everything else lives here:
//!
//! - [`config`]: every setting and its default, written once;
//! - [`cli`]: the command line on clap, with `TINCAN_<OPTION>` variables;
//! - [`log`]: the log lines, as text or JSON;
//! - [`metrics`]: the Prometheus metrics of `/metrics`;
//! - [`origin`]: which web pages may connect;
//! - [`session`]: one client connection (HTTP routing, upgrade, chat, echo);
//! - [`hub`]: what the sessions share, behind one mutex;
//! - [`fanout`]: the rooms' lanes that keep each room's order while rooms fan
//!   out in parallel;
//! - [`budget`]: the server-wide cap on queued outbound bytes;
//! - [`page`]: the browser page and its wasm codec, embedded;
//! - [`read_buffer`]: the read buffer each thread lends its connections;
//! - [`runtime`]: the trait a runtime implements;
//! - [`serve`]: the accept loop and the connection task;
//! - [`tls`]: https and wss on rustls, and the certificate reload;
//! - [`store`]: `--data-dir`, room history on disk (redb);
//! - [`broker`]: `--redis`, rooms shared by several nodes through Redis;
//! - `allocator` (private): one glibc `malloc` arena for every thread.
//!
//! The protocol (`tincan-core`) and the chat (`tincan-chat`) are sans-io
//! crates under it; this crate adds the sockets, the clock, the threads and
//! the files.
//!
//! ```no_run
//! # use tincan_server::runtime::Runtime;
//! # fn run<R: Runtime>(runtime: fn(usize) -> std::io::Result<R>) -> std::process::ExitCode {
//! // The whole `main` of a runtime binary: `runtime` makes the runtime for
//! // the number of threads the command line asks for.
//! tincan_server::main("tincan-example", runtime)
//! # }
//! ```

// Denied, not forbidden: `allocator` makes the one call into glibc.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod allocator;
pub mod broker;
pub mod budget;
pub mod cli;
pub mod config;
pub mod fanout;
pub mod hub;
pub mod log;
pub mod metrics;
pub mod origin;
pub mod outbox;
pub mod page;
pub mod read_buffer;
pub mod runtime;
pub mod serve;
pub mod session;
pub mod store;
pub mod tls;

use std::process::ExitCode;

pub use config::ServerConfig;
pub use runtime::{
    read_socket, send_slices, shutdown_socket, IntoStream, Listener, Runtime, Socket,
};

/// Sets the allocator's policy (one glibc arena: `src/allocator.rs`),
/// parses the command line,
/// makes the runtime with `runtime(threads)` (the
/// `--threads` that run the connections, by default one per core), then
/// serves until SIGINT or SIGTERM. Exit status 0 after a clean shutdown or
/// `--help`/`--version`, 2 for a bad command line, 1 when the server cannot
/// run (the port is taken, say).
pub fn main<R: Runtime>(
    program: &'static str,
    runtime: impl FnOnce(usize) -> std::io::Result<R>,
) -> ExitCode {
    allocator::one_arena();
    let config = match cli::parse(program, std::env::args_os()) {
        Ok(config) => config,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let threads = config.worker_threads();
    let runtime = match runtime(threads) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{program}: error: cannot start {threads} threads: {e}");
            return ExitCode::from(1);
        }
    };
    let served = runtime.block_on(serve::serve(program, runtime.clone(), config));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{program}: error: {message}");
            ExitCode::from(1)
        }
    }
}
