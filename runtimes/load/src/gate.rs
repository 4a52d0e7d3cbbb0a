//! A one-way signal many tasks, on any thread, can wait for: opened once,
//! seen by all.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;

use smol::channel::{self, Receiver, Recv, Sender};

/// The opening side.
pub struct Gate(Sender<()>);

/// A waiting side; share it by reference or clone it.
#[derive(Clone)]
pub struct Waiter(Receiver<()>);

/// A closed gate and its waiters.
pub fn gate() -> (Gate, Waiter) {
    let (tx, rx) = channel::bounded(1);
    (Gate(tx), Waiter(rx))
}

impl Gate {
    /// Wakes every waiter, now and later.
    pub fn open(&self) {
        self.0.close();
    }
}

impl Waiter {
    /// Resolves once the gate is open.
    pub async fn wait(&self) {
        let _ = self.0.recv().await;
    }

    /// Whether the gate is open.
    pub fn is_open(&self) -> bool {
        self.0.is_closed()
    }
}

/// A [`Waiter`] to poll inside a connection's turn: its wait is made once and
/// stays registered, so a turn costs no allocation.
pub struct Stop<'a> {
    waiter: &'a Waiter,
    wait: Pin<Box<Recv<'a, ()>>>,
}

impl<'a> Stop<'a> {
    /// Watches `waiter`.
    pub fn new(waiter: &'a Waiter) -> Self {
        Self {
            waiter,
            wait: Box::pin(waiter.0.recv()),
        }
    }

    /// Whether the gate is open; if not, `cx` is woken when it opens.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> bool {
        // Once open, the wait is never polled again (it has completed).
        self.waiter.is_open() || self.wait.as_mut().poll(cx).is_ready()
    }
}

/// Waits for `n` connection attempts to report on `ready` (`true`: it is
/// up) and returns how many are up.
pub async fn count_ready(ready: &Receiver<bool>, n: usize) -> u64 {
    let mut up = 0;
    for _ in 0..n {
        up += u64::from(ready.recv().await == Ok(true));
    }
    up
}
