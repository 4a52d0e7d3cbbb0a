//! A one-way signal many tasks can wait for: closed once, seen by all.

use smol::channel::{self, Receiver, Sender};

/// The opening side.
pub struct Gate(Sender<()>);

/// A waiting side; clone it for every task.
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
