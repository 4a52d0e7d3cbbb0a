//! A server-wide budget for queued outbound bytes. Each connection reports
//! what its send queue holds; when the sum passes the budget, the clients
//! whose unread backlog is oldest are closed first (1008, "too slow"), so a
//! crowd of clients that never read cannot take the machine's memory, and
//! the clients that do read lose nothing.
//!
//! A backlog's age is the age of its oldest unread byte: the time since the
//! oldest byte still queued for the client was queued. A client that reads
//! is behind by no more than its lag (the time its bytes wait), which stays
//! small however much it is sent; one that stopped reading keeps its oldest
//! byte, which only gets older. So a reader is never closed before a client
//! that stopped reading earlier than the reader's lag. The time since the
//! last write, which this replaced, is kinder to a client that reads a byte
//! a second: it looks fresh for ever while it holds a full queue.
//!
//! A client closed for the budget is dropped at once, with its queue: it is
//! not reading, so a close frame behind its backlog would never reach it,
//! and keeping that backlog for the close timeout is the very memory the
//! budget is for. (It sees the end of the stream after what its kernel
//! buffers held.)
//!
//! Each connection's own queue is capped too (`--max-send-queue`); this is
//! the cap on all of them together, for when many fill up at once.
//!
//! Holding every connection's outbox, the budget is also how shutdown
//! reaches them all ([`Budget::stop_all`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use prometheus_client::metrics::gauge::Gauge;
use tincan_chat::{ClientId, IdMap};

use crate::outbox::Outbox;

/// The budget and who holds what of it.
#[derive(Debug)]
pub struct Budget {
    limit: Option<usize>,
    /// Bytes queued on all connections together: an atomic, and the
    /// `tincan_queued_bytes` gauge as it is.
    total: Gauge,
    members: Mutex<IdMap<Outbox>>,
    /// Shutdown began: a connection that joins now is told at once. Set
    /// and read under `members`' lock.
    stopping: AtomicBool,
}

/// One connection's backlog, updated by its own task and read by every
/// task that evicts: kept with its outbox ([`Outbox::backlog`]), so that
/// the budget holds one handle per connection, and closing that outbox
/// tells the connection's task it is too slow.
#[derive(Debug)]
pub struct Backlog {
    bytes: AtomicUsize,
    /// When its oldest unread byte was queued (milliseconds on the server's
    /// monotonic clock); `u64::MAX` while empty.
    since_ms: AtomicU64,
    /// Closed for the budget: its queue no longer counts.
    evicted: AtomicBool,
}

impl Default for Backlog {
    fn default() -> Self {
        Self {
            bytes: AtomicUsize::new(0),
            since_ms: AtomicU64::new(u64::MAX),
            evicted: AtomicBool::new(false),
        }
    }
}

/// A connection's place in the budget, held by its task.
#[derive(Debug)]
pub struct Share {
    id: ClientId,
    /// Its outbox, which holds its backlog.
    outbox: Outbox,
    /// What its queue took and gave since bytes last waited in it: made
    /// when some do, and dropped by [`Share::release`] once none does, so
    /// that an idle connection holds 8 bytes for it, not 56.
    flow: Option<Box<Flow>>,
}

/// A share's account while its queue holds bytes.
#[derive(Debug, Default)]
struct Flow {
    /// Bytes taken off the queue (written, or dropped by the connection)
    /// and queued: the queue holds `queued - taken`.
    taken: u64,
    queued: u64,
    /// When the queued bytes arrived, oldest first: `(end, ms)` says the
    /// bytes before position `end` (in `queued`'s count) were all queued by
    /// `ms`. Marks wholly taken are dropped, so the first is the oldest
    /// unread byte's.
    marks: VecDeque<(u64, u64)>,
}

/// Backlogs under this many bytes are closed only after every larger one.
const SMALL_BACKLOG: usize = 64 * 1024;

/// Marks kept per connection. Past it, the second oldest is dropped and its
/// bytes count as the next one's: the first mark (a client that does not
/// read keeps it for ever) and the newest stay exact, and the error, bytes
/// taken for younger than they are, is on the side of a client that reads.
const MAX_MARKS: usize = 16;

impl Share {
    /// Frees the account if the queue is empty (for a quiet connection: a
    /// busy one keeps it, and allocates nothing per write).
    pub fn release(&mut self) {
        if self.held() == 0 {
            self.flow = None;
        }
    }

    /// Whether the budget closed this connection.
    pub fn is_evicted(&self) -> bool {
        self.outbox.backlog().evicted.load(Ordering::Relaxed)
    }

    /// The connection's outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Bytes queued and not yet taken, as last accounted.
    fn held(&self) -> u64 {
        self.flow.as_ref().map_or(0, |f| f.queued - f.taken)
    }

    /// The queue holds `bytes` after `written` more were written, at
    /// `now_ms` (asked only when bytes were queued); returns when its oldest
    /// unread byte was queued.
    fn account(&mut self, bytes: usize, written: usize, now_ms: impl FnOnce() -> u64) -> u64 {
        if bytes == 0 && self.flow.is_none() {
            // Nothing waited and nothing waits: nothing to account.
            return u64::MAX;
        }
        let flow = self.flow.get_or_insert_default();
        let bytes = bytes as u64;
        flow.taken += written as u64;
        // Fewer than the writes explain: the connection dropped its queue.
        flow.taken = flow.taken.max(flow.queued.saturating_sub(bytes));
        let end = flow.taken + bytes;
        if end > flow.queued {
            let now_ms = now_ms();
            match flow.marks.back_mut() {
                Some(last) if last.1 >= now_ms => last.0 = end,
                _ => {
                    if flow.marks.len() >= MAX_MARKS {
                        flow.marks.remove(1);
                    }
                    flow.marks.push_back((end, now_ms));
                }
            }
        }
        flow.queued = end;
        while flow
            .marks
            .front()
            .is_some_and(|&(end, _)| end <= flow.taken)
        {
            flow.marks.pop_front();
        }
        match flow.marks.front() {
            Some(&(_, ms)) if bytes > 0 => ms,
            _ => u64::MAX,
        }
    }
}

impl Budget {
    /// A budget of `limit` bytes, or none.
    pub fn new(limit: Option<usize>) -> Self {
        Self {
            limit,
            total: Gauge::default(),
            members: Mutex::new(IdMap::default()),
            stopping: AtomicBool::new(false),
        }
    }

    /// Bytes queued on all connections together.
    pub fn total(&self) -> usize {
        usize::try_from(self.total.get()).unwrap_or(0)
    }

    /// The total as a metric (the same atomic).
    pub fn total_gauge(&self) -> Gauge {
        self.total.clone()
    }

    /// Enters a connection, whose task takes from `outbox`.
    pub fn join(&self, id: ClientId, outbox: Outbox) -> Share {
        let mut members = self.lock();
        if self.stopping.load(Ordering::Relaxed) {
            outbox.stop();
        }
        members.insert(id, outbox.clone());
        drop(members);
        Share {
            id,
            outbox,
            flow: None,
        }
    }

    /// The connection's queue holds `bytes` at `now_ms`, after `written`
    /// bytes were written since the last update. Past the budget, closes
    /// the oldest backlogs until the rest fits. The clock is read only when
    /// bytes were queued: most turns of a connection change nothing here,
    /// and those return at once. Bytes queued and written between two
    /// updates were never held (an echo or a reply written in the turn
    /// that queued it): only what was written of the bytes held counts, so
    /// such a turn changes nothing either.
    pub fn update(
        &self,
        share: &mut Share,
        bytes: usize,
        written: usize,
        now_ms: impl FnOnce() -> u64,
    ) {
        // The queue is first in, first out: what was held leaves first.
        let written = written.min(usize::try_from(share.held()).unwrap_or(usize::MAX));
        if share.is_evicted() || (written == 0 && share.held() == bytes as u64) {
            return;
        }
        let since = share.account(bytes, written, now_ms);
        let backlog = share.outbox.backlog();
        backlog.since_ms.store(since, Ordering::Relaxed);
        let old = backlog.bytes.swap(bytes, Ordering::Relaxed);
        if old == bytes {
            // The total is one atomic for every thread: left alone when
            // this turn did not change it (and it fit when it last did).
            return;
        }
        // Queues are far below i64::MAX bytes.
        let change = bytes as i64 - old as i64;
        let total = usize::try_from(self.total.inc_by(change) + change).unwrap_or(0);
        if self.limit.is_some_and(|limit| total > limit) {
            self.evict_oldest();
        }
    }

    /// Leaves the budget (the connection ended). Leaving again changes
    /// nothing.
    pub fn leave(&self, share: &mut Share) {
        self.lock().remove(&share.id);
        let bytes = share.outbox.backlog().bytes.swap(0, Ordering::Relaxed);
        self.total.dec_by(bytes as i64);
    }

    /// Tells every connection's task that the server stops (see
    /// [`Outbox::stop`]), and every one that joins from now on.
    pub fn stop_all(&self) {
        // Woken outside the lock, which the tasks that end take to leave; a
        // connection that joins meanwhile sees the flag.
        let outboxes: Vec<Outbox> = {
            let members = self.lock();
            self.stopping.store(true, Ordering::Relaxed);
            members.values().cloned().collect()
        };
        for outbox in outboxes {
            outbox.stop();
        }
    }

    fn evict_oldest(&self) {
        let Some(limit) = self.limit else { return };
        let mut members = self.lock();
        // Another task may have made room while this one waited.
        if self.total() <= limit {
            return;
        }
        // Backlogs smaller than a socket buffer go last: a reader that is
        // merely behind (a loaded machine, a burst) holds little, while one
        // that stopped reading fills its queue.
        let mut by_age: Vec<(bool, u64, ClientId)> = members
            .iter()
            .map(|(id, outbox)| {
                let backlog = outbox.backlog();
                let small = backlog.bytes.load(Ordering::Relaxed) < SMALL_BACKLOG;
                (small, backlog.since_ms.load(Ordering::Relaxed), *id)
            })
            .filter(|&(_, since, _)| since != u64::MAX)
            .collect();
        by_age.sort_unstable();
        for (_, _, id) in by_age {
            if self.total() <= limit {
                break;
            }
            if let Some(outbox) = members.remove(&id) {
                let backlog = outbox.backlog();
                backlog.evicted.store(true, Ordering::Relaxed);
                let bytes = backlog.bytes.swap(0, Ordering::Relaxed);
                self.total.dec_by(bytes as i64);
                outbox.close();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IdMap<Outbox>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::{Context, Poll, Waker};

    use crate::outbox::Taken;

    fn members(budget: &Budget, n: u64) -> (Vec<Share>, Vec<Outbox>) {
        (0..n)
            .map(|i| {
                let outbox = Outbox::new();
                (budget.join(ClientId(i), outbox.clone()), outbox)
            })
            .unzip()
    }

    #[test]
    fn stopping_reaches_every_connection_and_the_ones_that_join_later() {
        let budget = Budget::new(None);
        let (_shares, outboxes) = members(&budget, 3);
        budget.stop_all();
        let late = Outbox::new();
        let _late_share = budget.join(ClientId(9), late.clone());
        let mut cx = Context::from_waker(Waker::noop());
        for outbox in outboxes.iter().chain([&late]) {
            let taken = outbox.poll_take(&mut cx, &mut Vec::new());
            assert_eq!(taken, Poll::Ready(Taken::Stop));
        }
    }

    #[test]
    fn the_clock_is_read_only_when_bytes_were_queued() {
        let budget = Budget::new(None);
        let (mut shares, _outboxes) = members(&budget, 1);
        let mut reads = 0;
        let mut clock = |ms| {
            reads += 1;
            ms
        };
        budget.update(&mut shares[0], 100, 0, || clock(5));
        budget.update(&mut shares[0], 100, 0, || clock(6));
        budget.update(&mut shares[0], 40, 60, || clock(7));
        budget.update(&mut shares[0], 0, 40, || clock(8));
        budget.update(&mut shares[0], 30, 0, || clock(9));
        assert_eq!(reads, 2, "the first and the last update queued bytes");
        assert_eq!(budget.total(), 30);
    }

    #[test]
    fn a_small_backlog_goes_after_every_large_one() {
        let budget = Budget::new(Some(3 * SMALL_BACKLOG));
        let (mut shares, inboxes) = members(&budget, 3);
        // Client 0 is behind by a little since 10 ms (a busy reader);
        // clients 1 and 2 stopped reading later, with full queues.
        budget.update(&mut shares[0], 1000, 0, || 10);
        budget.update(&mut shares[1], 2 * SMALL_BACKLOG, 0, || 20);
        budget.update(&mut shares[2], 2 * SMALL_BACKLOG, 0, || 30);
        assert!(inboxes[1].is_closed(), "the oldest large backlog");
        assert!(!inboxes[0].is_closed() && !inboxes[2].is_closed());
        for share in &mut shares {
            budget.leave(share);
        }
    }

    #[test]
    fn past_the_budget_the_oldest_backlogs_go_first() {
        let budget = Budget::new(Some(100));
        let (mut shares, inboxes) = members(&budget, 3);
        // Backlogs since 10 ms (client 1), 20 ms (client 0), 30 ms (client 2).
        budget.update(&mut shares[1], 40, 0, || 10);
        budget.update(&mut shares[0], 40, 0, || 20);
        assert_eq!(budget.total(), 80);
        assert!(inboxes.iter().all(|rx| !rx.is_closed()));
        budget.update(&mut shares[2], 40, 0, || 30);
        // 120 > 100: the oldest (client 1) is closed, and that is enough.
        assert!(inboxes[1].is_closed() && shares[1].is_evicted());
        assert!(!inboxes[0].is_closed() && !inboxes[2].is_closed());
        assert_eq!(budget.total(), 80);
        // What an evicted connection reports no longer counts.
        budget.update(&mut shares[1], 1000, 0, || 40);
        assert_eq!(budget.total(), 80);
        // A client that reads stays young however much it is sent: client 0
        // wrote its 40 bytes of 20 ms at 50 ms and got 55 more, so its
        // oldest unread byte is of 50 ms, and client 2's (30 ms) is older.
        budget.update(&mut shares[0], 55, 40, || 50);
        budget.update(&mut shares[2], 60, 0, || 70);
        assert!(inboxes[2].is_closed());
        assert!(!inboxes[0].is_closed());
        for share in &mut shares {
            budget.leave(share);
        }
        assert_eq!(budget.total(), 0);
    }

    #[test]
    fn a_client_that_reads_a_trickle_ages_with_its_oldest_byte() {
        let budget = Budget::new(Some(100));
        let (mut shares, inboxes) = members(&budget, 2);
        budget.update(&mut shares[0], 60, 0, || 10);
        budget.update(&mut shares[1], 30, 0, || 35);
        // Client 0 writes a byte now and then, and gets more: its oldest
        // unread byte is still one of 10 ms, older than client 1's (35 ms),
        // though it wrote last.
        budget.update(&mut shares[0], 60, 1, || 20);
        budget.update(&mut shares[0], 75, 1, || 40);
        assert!(inboxes[0].is_closed(), "the trickle reader goes first");
        assert!(!inboxes[1].is_closed());
    }

    #[test]
    fn the_oldest_unread_byte_is_tracked_across_writes_drops_and_many_marks() {
        let budget = Budget::new(None);
        let (mut shares, _inboxes) = members(&budget, 1);
        let share = &mut shares[0];
        // 10 bytes at 1 ms, 10 at 2 ms, 10 at 3 ms.
        assert_eq!(share.account(10, 0, || 1), 1);
        assert_eq!(share.account(20, 0, || 2), 1);
        assert_eq!(share.account(30, 0, || 3), 1);
        // Writing the first 10 (and a few of the next) makes 2 ms the oldest.
        assert_eq!(share.account(17, 13, || 4), 2);
        // Writes and new bytes in one update.
        assert_eq!(share.account(15, 12, || 5), 3);
        // All written: nothing is waiting.
        assert_eq!(share.account(0, 15, || 6), u64::MAX);
        // The connection drops what it held (a timeout): nothing waits.
        assert_eq!(share.account(50, 0, || 7), 7);
        assert_eq!(share.account(0, 0, || 8), u64::MAX);
        // A client that never reads, sent something every millisecond: the
        // marks stay few and the first one stays.
        for ms in 10..1000 {
            assert_eq!(share.account((ms - 9) as usize, 0, || ms), 10);
        }
        let marks = share.flow.as_ref().map(|f| f.marks.len());
        assert!(marks.is_some_and(|m| m <= MAX_MARKS), "{marks:?}");
        // Writes with nothing waiting account nothing, and take no storage.
        let mut share = Budget::new(None).join(ClientId(3), Outbox::new());
        assert_eq!(
            share.account(0, 10, || unreachable!("nothing queued")),
            u64::MAX
        );
        assert!(share.flow.is_none());
        // A queue that fills and empties takes storage once, kept while the
        // connection is busy.
        for ms in 0..10 {
            assert_eq!(share.account(10, 0, || ms), ms);
            assert_eq!(share.account(0, 10, || ms), u64::MAX);
        }
        assert!(share.flow.is_some());
        // A quiet connection gives it back once nothing waits.
        for ms in 10..13 {
            share.account(10 * (ms - 9) as usize, 0, || ms);
        }
        share.release();
        assert!(share.flow.is_some(), "kept while bytes wait");
        share.account(0, 30, || 13);
        share.release();
        assert!(share.flow.is_none());
        // Accounted again from nothing, it is as before.
        assert_eq!(share.account(10, 0, || 14), 14);
        assert_eq!(share.account(5, 5, || 15), 14);
        assert_eq!(share.account(0, 5, || 16), u64::MAX);
        // One that reads, always a little behind (5 bytes at 0 ms, then a
        // byte written and one queued each millisecond), is as old as its
        // lag, however long its queue has not been empty.
        let mut share = Budget::new(None).join(ClientId(2), Outbox::new());
        for ms in 0..1000 {
            let written = usize::from(ms >= 5);
            let oldest = if ms < 9 { 0 } else { ms - 4 };
            assert_eq!(share.account(5, written, || ms), oldest, "at {ms} ms");
        }
    }

    #[test]
    fn without_a_limit_nothing_is_closed() {
        let budget = Budget::new(None);
        let rx = Outbox::new();
        let mut share = budget.join(ClientId(1), rx.clone());
        budget.update(&mut share, usize::MAX / 2, 0, || 1);
        assert!(!rx.is_closed());
        budget.leave(&mut share);
        assert_eq!(budget.total(), 0);
        assert!(budget.lock().is_empty());
        // Leaving again changes nothing (a share is left through `&mut`, from
        // its driver's drop, so nothing but this rule stops a second call).
        let mut other = budget.join(ClientId(2), Outbox::new());
        budget.update(&mut other, 10, 0, || 2);
        budget.leave(&mut share);
        assert_eq!((budget.total(), budget.lock().len()), (10, 1));
        budget.leave(&mut other);
    }
}
