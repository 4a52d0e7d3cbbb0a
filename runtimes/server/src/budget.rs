//! A server-wide budget for queued outbound bytes. Each connection reports
//! what its send queue holds; when the sum passes the budget, the clients
//! whose unread backlog is oldest are closed first (1008, "too slow"), so a
//! crowd of clients that never read cannot take the machine's memory, and
//! the clients that do read lose nothing. A backlog's age is the time since
//! its connection last wrote anything: a client that reads, however far
//! behind, stays young; one that stopped reading only gets older.
//!
//! Each connection's own queue is capped too (`--max-send-queue`); this is
//! the cap on all of them together, for when many fill up at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_channel::Sender;
use tincan_chat::ClientId;
use tincan_core::PreparedMessage;

/// The budget and who holds what of it.
#[derive(Debug)]
pub struct Budget {
    limit: Option<usize>,
    total: AtomicUsize,
    members: Mutex<HashMap<ClientId, Member>>,
}

#[derive(Debug)]
struct Member {
    /// Closing it tells the connection's task it is too slow.
    outbox: Sender<PreparedMessage>,
    backlog: Arc<Backlog>,
}

/// One connection's share, updated by its own task.
#[derive(Debug)]
struct Backlog {
    bytes: AtomicUsize,
    /// Since when its queue has waited: the last write, or when it went
    /// from empty to not empty (milliseconds on the server's monotonic
    /// clock); `u64::MAX` while empty.
    since_ms: AtomicU64,
    /// Closed for the budget: its queue no longer counts.
    evicted: AtomicBool,
}

/// A connection's place in the budget, held by its task.
#[derive(Debug)]
pub struct Share {
    id: ClientId,
    backlog: Arc<Backlog>,
}

impl Budget {
    /// A budget of `limit` bytes, or none.
    pub fn new(limit: Option<usize>) -> Self {
        Self {
            limit,
            total: AtomicUsize::new(0),
            members: Mutex::new(HashMap::new()),
        }
    }

    /// Bytes queued on all connections together.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Enters a connection, whose task listens on `outbox`'s channel.
    pub fn join(&self, id: ClientId, outbox: Sender<PreparedMessage>) -> Share {
        let backlog = Arc::new(Backlog {
            bytes: AtomicUsize::new(0),
            since_ms: AtomicU64::new(u64::MAX),
            evicted: AtomicBool::new(false),
        });
        let member = Member {
            outbox,
            backlog: backlog.clone(),
        };
        self.lock().insert(id, member);
        Share { id, backlog }
    }

    /// The connection's queue holds `bytes` at `now_ms`; `wrote` if it
    /// wrote some since the last update. Past the budget, closes the oldest
    /// backlogs until the rest fits.
    pub fn update(&self, share: &Share, bytes: usize, wrote: bool, now_ms: u64) {
        let backlog = &share.backlog;
        if backlog.evicted.load(Ordering::Relaxed) {
            return;
        }
        let old = backlog.bytes.swap(bytes, Ordering::Relaxed);
        if bytes == 0 {
            backlog.since_ms.store(u64::MAX, Ordering::Relaxed);
        } else if old == 0 || wrote {
            backlog.since_ms.store(now_ms, Ordering::Relaxed);
        }
        let total = if bytes >= old {
            self.total.fetch_add(bytes - old, Ordering::Relaxed) + (bytes - old)
        } else {
            self.total.fetch_sub(old - bytes, Ordering::Relaxed) - (old - bytes)
        };
        if self.limit.is_some_and(|limit| total > limit) {
            self.evict_oldest();
        }
    }

    /// Leaves the budget (the connection ended).
    pub fn leave(&self, share: Share) {
        self.lock().remove(&share.id);
        let bytes = share.backlog.bytes.swap(0, Ordering::Relaxed);
        self.total.fetch_sub(bytes, Ordering::Relaxed);
    }

    fn evict_oldest(&self) {
        let Some(limit) = self.limit else { return };
        let mut members = self.lock();
        // Another task may have made room while this one waited.
        if self.total() <= limit {
            return;
        }
        let mut by_age: Vec<(u64, ClientId)> = members
            .iter()
            .map(|(id, m)| (m.backlog.since_ms.load(Ordering::Relaxed), *id))
            .filter(|(since, _)| *since != u64::MAX)
            .collect();
        by_age.sort_unstable();
        for (_, id) in by_age {
            if self.total() <= limit {
                break;
            }
            if let Some(member) = members.remove(&id) {
                let backlog = &member.backlog;
                backlog.evicted.store(true, Ordering::Relaxed);
                let bytes = backlog.bytes.swap(0, Ordering::Relaxed);
                self.total.fetch_sub(bytes, Ordering::Relaxed);
                member.outbox.close();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientId, Member>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_budget_the_oldest_backlogs_go_first() {
        let budget = Budget::new(Some(100));
        let channels: Vec<_> = (0..3).map(|_| async_channel::unbounded()).collect();
        let shares: Vec<Share> = channels
            .iter()
            .enumerate()
            .map(|(i, (tx, _))| budget.join(ClientId(i as u64), tx.clone()))
            .collect();
        // Backlogs since 10 ms (client 1), 20 ms (client 0), 30 ms (client 2).
        budget.update(&shares[1], 40, false, 10);
        budget.update(&shares[0], 40, false, 20);
        assert_eq!(budget.total(), 80);
        assert!(channels.iter().all(|(_, rx)| !rx.is_closed()));
        budget.update(&shares[2], 40, false, 30);
        // 120 > 100: the oldest (client 1) is closed, and that is enough.
        assert!(channels[1].1.is_closed());
        assert!(!channels[0].1.is_closed() && !channels[2].1.is_closed());
        assert_eq!(budget.total(), 80);
        // What an evicted connection reports no longer counts.
        budget.update(&shares[1], 1000, false, 40);
        assert_eq!(budget.total(), 80);
        // A client that reads stays young however much it holds: client 0
        // wrote some at 50 ms (and got more to send), so client 2's backlog
        // (30 ms) is now the oldest.
        budget.update(&shares[0], 55, true, 50);
        budget.update(&shares[2], 60, false, 70);
        assert!(channels[2].1.is_closed());
        assert!(!channels[0].1.is_closed());
        let mut shares = shares.into_iter();
        for share in shares.by_ref() {
            budget.leave(share);
        }
        assert_eq!(budget.total(), 0);
    }

    #[test]
    fn without_a_limit_nothing_is_closed() {
        let budget = Budget::new(None);
        let (tx, rx) = async_channel::unbounded();
        let share = budget.join(ClientId(1), tx);
        budget.update(&share, usize::MAX / 2, false, 1);
        assert!(!rx.is_closed());
        budget.leave(share);
        assert_eq!(budget.total(), 0);
    }
}
