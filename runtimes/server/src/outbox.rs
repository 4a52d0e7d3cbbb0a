//! A client's outbox: where other sessions (and the broker) put the chat
//! messages meant for it, and where its own task takes them from.
//!
//! Not a channel: a queue behind a mutex and one stored waiter. A message put
//! into an empty outbox wakes the task once; the ones put before it has run
//! join the same batch without another wake-up, and the task takes the whole
//! batch in one swap of vectors. So a burst to a client costs one wake-up,
//! and a message costs a lock and a push, with nothing allocated per message
//! or per wait (a channel's receiver makes and drops a listener every time
//! it waits) while the task keeps the storage: it gives it back
//! ([`Outbox::release`]) when it takes only a few messages at a time, or
//! when its client goes quiet.
//!
//! The queue is bounded by whoever puts into it ([`Outbox::put`]): a full
//! outbox means its client is too slow, and it is closed. A closed outbox
//! still hands over what it took, then tells its task that it closed.
//!
//! Shutdown reaches each task through its outbox too ([`Outbox::stop`]), on
//! the waker it holds anyway, rather than through a listener of its own on
//! a server-wide signal, which each connection would keep (about 48 bytes)
//! and poll on every turn.
//!
//! A connection without a task (parked) waits on its outbox with a key on
//! a [`Rung`] that many outboxes share ([`Outbox::park`]), not a waker of
//! its own: what it costs is its key.
//!
//! A task that holds its messages back for a while (`--write-delay`) waits
//! with [`Outbox::poll_take_held`]: messages then gather without waking it,
//! until half the capacity waits; a stop or a close still wakes it.

use std::mem;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::budget::Backlog;
use crate::session::Outgoing;

/// A handle on one client's outbox: cloned into its room's lane (see
/// [`crate::fanout`]) for the senders, and held by the client's task, which
/// takes from it.
#[derive(Debug, Clone, Default)]
pub struct Outbox(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<State>,
    /// A task's waker is in place ([`Waiter::Task`] or [`Waiter::Holding`]):
    /// nothing it would be woken for has come since it waited. Written
    /// under the lock, with the waiter; read without it (see
    /// [`Outbox::is_waited_on`]).
    waited_on: AtomicBool,
    /// What waits in the connection's send queue, for the budget: here so
    /// that a connection's outbox and backlog are one allocation.
    backlog: Backlog,
}

#[derive(Debug, Default)]
struct State {
    queue: Vec<Outgoing>,
    closed: bool,
    /// [`Taken::Closed`] was handed out: it is told once.
    told_closed: bool,
    /// The server stops, and the task has not been told yet.
    stop: bool,
    /// The task waiting for the queue to fill, taken when woken: one
    /// wake-up per wait, however many messages arrive before the task runs.
    waiter: Option<Waiter>,
}

/// Who waits on an outbox.
#[derive(Debug)]
enum Waiter {
    Task(Waker),
    /// A task that holds its messages back: a message wakes it only past
    /// half the capacity.
    Holding(Waker),
    /// A parked connection, by its key on a rung.
    Parked(Arc<Rung>, u64),
}

impl Waiter {
    fn wake(self) {
        match self {
            Self::Task(waker) | Self::Holding(waker) => waker.wake(),
            Self::Parked(rung, key) => rung.ring(key),
        }
    }
}

/// The keys of parked outboxes that rang (something came that their
/// connection would take), for the one watching them: a ring adds its key,
/// and wakes the watcher if the list was empty.
#[derive(Debug)]
pub struct Rung {
    keys: Mutex<Vec<u64>>,
    watcher: Waker,
}

impl Rung {
    /// A rung whose rings wake `watcher`.
    pub fn new(watcher: Waker) -> Self {
        Self {
            keys: Mutex::new(Vec::new()),
            watcher,
        }
    }

    /// Adds `key` and wakes the watcher if it is the first since the last
    /// [`Rung::take`].
    pub fn ring(&self, key: u64) {
        let first = {
            let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            keys.push(key);
            keys.len() == 1
        };
        if first {
            self.watcher.wake_by_ref();
        }
    }

    /// Moves the keys that rang into `keys`, in the order they rang. An
    /// empty `keys` is swapped in: the rung keeps its storage, not what the
    /// last burst grew.
    pub fn take(&self, keys: &mut Vec<u64>) {
        let mut rang = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        match keys.is_empty() {
            true => mem::swap(&mut *rang, keys),
            false => keys.append(&mut rang),
        }
    }
}

/// What [`Outbox::poll_take`] handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Messages, now in the batch.
    Messages,
    /// The server stops: whatever waited is in the batch (perhaps nothing),
    /// to be delivered before the client is told. Once per [`Outbox::stop`].
    Stop,
    /// Closed, with nothing left to take.
    Closed,
}

/// Why [`Outbox::put`] did not take a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PutError {
    /// It held its capacity already: now it is closed.
    #[error("the outbox is full: its client is too slow")]
    Full,
    /// It was closed before.
    #[error("the outbox is closed")]
    Closed,
}

impl Outbox {
    /// An empty, open outbox.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing here panics while holding the lock.
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection's backlog, for the budget (see [`crate::budget`]).
    pub fn backlog(&self) -> &Backlog {
        &self.0.backlog
    }

    /// Puts `message` in, unless the outbox holds `capacity` messages
    /// already (then it is closed, so that its task learns it is too slow)
    /// or is closed. Wakes the task if it was waiting.
    pub fn put(&self, message: Outgoing, capacity: usize) -> Result<(), PutError> {
        let mut state = self.state();
        if state.closed {
            return Err(PutError::Closed);
        }
        let full = state.queue.len() >= capacity;
        if full {
            state.closed = true;
        } else {
            state.queue.push(message);
        }
        let waiter = match &state.waiter {
            Some(Waiter::Holding(_)) if !full && state.queue.len() < capacity / 2 => None,
            _ => self.take_waiter(&mut state),
        };
        drop(state);
        if let Some(waiter) = waiter {
            waiter.wake();
        }
        match full {
            true => Err(PutError::Full),
            false => Ok(()),
        }
    }

    /// Closes the outbox: what it holds can still be taken.
    pub fn close(&self) {
        self.signal(|state| state.closed = true);
    }

    /// Tells the task that the server stops (see [`Taken::Stop`]), waking
    /// it if it was waiting. Messages can still be put in after it.
    pub fn stop(&self) {
        self.signal(|state| state.stop = true);
    }

    /// Changes the state, then wakes the task if it was waiting (outside
    /// the lock, so that it does not wake into a held lock).
    fn signal(&self, change: impl FnOnce(&mut State)) {
        let waiter = {
            let mut state = self.state();
            change(&mut state);
            self.take_waiter(&mut state)
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }

    /// Takes the waiter, to wake it (outside the lock).
    fn take_waiter(&self, state: &mut State) -> Option<Waiter> {
        self.0.waited_on.store(false, Ordering::Release);
        state.waiter.take()
    }

    /// Puts a task's waker in place (see [`Outbox::is_waited_on`]).
    fn wait(&self, state: &mut State, waker: &Waker, holding: bool) {
        match (&mut state.waiter, holding) {
            (Some(Waiter::Task(old)), false) | (Some(Waiter::Holding(old)), true) => {
                old.clone_from(waker)
            }
            (waiter, false) => *waiter = Some(Waiter::Task(waker.clone())),
            (waiter, true) => *waiter = Some(Waiter::Holding(waker.clone())),
        }
        self.0.waited_on.store(true, Ordering::Release);
    }

    /// Whether the waker of the task's last `Pending` poll is still in
    /// place: then nothing came since that [`Outbox::poll_take`] (or
    /// [`Outbox::poll_take_held`]) would hand over, and polling it again
    /// with the same waker would change nothing. Without the lock: a
    /// change made meanwhile wakes the task after it, so a task that saw
    /// `true` is polled again.
    pub fn is_waited_on(&self) -> bool {
        self.0.waited_on.load(Ordering::Acquire)
    }

    /// Whether it was closed (full, or by the budget).
    pub fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// Whether no message waits.
    pub fn is_empty(&self) -> bool {
        self.state().queue.is_empty()
    }

    /// Moves every waiting message into `batch` (which should be empty: its
    /// capacity is handed to the outbox for the next batch); `false` once
    /// the outbox is closed and empty.
    pub fn take(&self, batch: &mut Vec<Outgoing>) -> bool {
        let mut state = self.state();
        Self::take_from(&mut state, batch)
    }

    fn take_from(state: &mut State, batch: &mut Vec<Outgoing>) -> bool {
        if state.queue.is_empty() {
            return !state.closed;
        }
        if batch.is_empty() {
            mem::swap(&mut state.queue, batch);
        } else {
            batch.append(&mut state.queue);
        }
        true
    }

    /// [`Outbox::take`], or `Pending` (and a wake-up when a message comes,
    /// the outbox closes or the server stops) if none waits. In order: a
    /// stop (with whatever waited), then messages, then that it closed, which
    /// is told once; after that only a stop can come, so the task may keep
    /// polling.
    pub fn poll_take(&self, cx: &mut Context<'_>, batch: &mut Vec<Outgoing>) -> Poll<Taken> {
        let mut state = self.state();
        if mem::take(&mut state.stop) {
            Self::take_from(&mut state, batch);
            return Poll::Ready(Taken::Stop);
        }
        if !state.queue.is_empty() {
            Self::take_from(&mut state, batch);
            return Poll::Ready(Taken::Messages);
        }
        if state.closed && !mem::replace(&mut state.told_closed, true) {
            return Poll::Ready(Taken::Closed);
        }
        self.wait(&mut state, cx.waker(), false);
        Poll::Pending
    }

    /// [`Outbox::poll_take`] for a task that holds its messages back: while
    /// fewer than half of `capacity` (what [`Outbox::put`] is given) wait,
    /// and nothing else is to tell, `Pending`, and the messages that come
    /// wake it only once half the capacity waits; a stop or a close wakes
    /// it at once.
    pub fn poll_take_held(
        &self,
        cx: &mut Context<'_>,
        batch: &mut Vec<Outgoing>,
        capacity: usize,
    ) -> Poll<Taken> {
        {
            let mut state = self.state();
            let tell = state.stop || (state.closed && !state.told_closed);
            if !tell && state.queue.len() < capacity / 2 {
                self.wait(&mut state, cx.waker(), true);
                return Poll::Pending;
            }
        }
        self.poll_take(cx, batch)
    }

    /// Takes what waits into `batch` (which should be empty) if that is
    /// messages only, from one to `limit` of them, with no stop or close to
    /// tell: for a parked connection, which is written to without a task.
    pub fn take_few(&self, batch: &mut Vec<Outgoing>, limit: usize) -> bool {
        let mut state = self.state();
        let few = (1..=limit).contains(&state.queue.len()) && !state.stop && !state.closed;
        if few {
            Self::take_from(&mut state, batch);
        }
        few
    }

    /// Rings `key` on `rung` when [`Outbox::poll_take`] would hand
    /// something over (for a parked connection, which has no task to
    /// poll); `false`, keeping nothing, if it would now.
    pub fn park(&self, rung: &Arc<Rung>, key: u64) -> bool {
        let mut state = self.state();
        let ready = state.stop || !state.queue.is_empty() || (state.closed && !state.told_closed);
        if !ready {
            self.0.waited_on.store(false, Ordering::Release);
            state.waiter = Some(Waiter::Parked(rung.clone(), key));
        }
        !ready
    }

    /// Frees the queue's memory kept from a burst (its task calls this when
    /// quiet), if none waits.
    pub fn release(&self) {
        let mut state = self.state();
        if state.queue.is_empty() {
            state.queue = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use tincan_core::PreparedMessage;

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn message(text: &str) -> Outgoing {
        Outgoing {
            message: PreparedMessage::text(text),
            sample: None,
        }
    }

    /// The texts of a batch of short messages (after their 2-byte headers).
    fn texts(batch: &[Outgoing]) -> Vec<&[u8]> {
        batch.iter().map(|m| &m.message.frame()[2..]).collect()
    }

    /// An empty outbox whose task waits on it with a counting waker.
    fn waited_on() -> (Outbox, Arc<Counter>, Waker) {
        let outbox = Outbox::new();
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        assert_eq!(outbox.poll_take(&mut cx, &mut Vec::new()), Poll::Pending);
        (outbox, counter, waker)
    }

    #[test]
    fn a_burst_wakes_the_waiting_task_once_and_arrives_in_order() {
        let (outbox, counter, waker) = waited_on();
        let mut cx = Context::from_waker(&waker);
        let mut batch = Vec::new();
        for text in ["a", "b", "c"] {
            outbox.put(message(text), 10).expect("room for it");
        }
        assert_eq!(
            counter.0.load(Ordering::Relaxed),
            1,
            "one wake-up for the burst"
        );
        assert_eq!(
            outbox.poll_take(&mut cx, &mut batch),
            Poll::Ready(Taken::Messages)
        );
        assert_eq!(texts(&batch), [b"a", b"b", b"c"]);
        assert!(outbox.is_empty());
        batch.clear();
        assert_eq!(outbox.poll_take(&mut cx, &mut batch), Poll::Pending);
        outbox.put(message("d"), 10).expect("room for it");
        assert_eq!(
            counter.0.load(Ordering::Relaxed),
            2,
            "a new wait, a new wake-up"
        );
    }

    #[test]
    fn a_task_holding_its_messages_is_woken_past_half_the_capacity_or_by_a_stop_or_close() {
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let wakes = || counter.0.load(Ordering::Relaxed);
        let mut batch = Vec::new();
        let outbox = Outbox::new();
        let held =
            |batch: &mut Vec<Outgoing>, cx: &mut Context<'_>| outbox.poll_take_held(cx, batch, 8);
        assert_eq!(held(&mut batch, &mut cx), Poll::Pending);
        for text in ["a", "b", "c"] {
            outbox.put(message(text), 8).expect("room for it");
        }
        assert_eq!(wakes(), 0, "below half the capacity, they gather");
        assert_eq!(held(&mut batch, &mut cx), Poll::Pending, "and stay");
        outbox.put(message("d"), 8).expect("room for it");
        assert_eq!(wakes(), 1, "half the capacity wakes it");
        assert_eq!(held(&mut batch, &mut cx), Poll::Ready(Taken::Messages));
        assert_eq!(texts(&batch), [b"a", b"b", b"c", b"d"]);
        // A stop wakes it at once, with what waited; so does a close, which
        // hands over what waited first (then that it closed, below).
        type Signal = fn(&Outbox);
        let signals: [(Signal, &str, Taken, usize); 2] = [
            (Outbox::stop, "e", Taken::Stop, 2),
            (Outbox::close, "f", Taken::Messages, 3),
        ];
        for (signal, text, first, woken) in signals {
            batch.clear();
            assert_eq!(held(&mut batch, &mut cx), Poll::Pending);
            outbox.put(message(text), 8).expect("room for it");
            signal(&outbox);
            assert_eq!(wakes(), woken, "{first:?} wakes it");
            assert_eq!(held(&mut batch, &mut cx), Poll::Ready(first));
            assert_eq!(texts(&batch), [text.as_bytes()]);
        }
        assert_eq!(held(&mut batch, &mut cx), Poll::Ready(Taken::Closed));
    }

    #[test]
    fn it_is_waited_on_until_something_would_wake_its_task() {
        let (outbox, _, waker) = waited_on();
        let mut cx = Context::from_waker(&waker);
        let mut batch = Vec::new();
        assert!(outbox.is_waited_on(), "polled Pending");
        outbox.put(message("a"), 8).expect("room for it");
        assert!(!outbox.is_waited_on(), "a message took the waker");
        assert_eq!(
            outbox.poll_take(&mut cx, &mut batch),
            Poll::Ready(Taken::Messages)
        );
        assert!(!outbox.is_waited_on(), "a poll that hands over waits not");
        // Held: messages below half the capacity leave the waker in place,
        // as they wake nobody; the one that reaches half takes it.
        assert_eq!(outbox.poll_take_held(&mut cx, &mut batch, 8), Poll::Pending);
        for (text, waits) in [("b", true), ("c", true), ("d", true), ("e", false)] {
            outbox.put(message(text), 8).expect("room for it");
            assert_eq!(outbox.is_waited_on(), waits, "after {text}");
        }
        batch.clear();
        assert_eq!(
            outbox.poll_take(&mut cx, &mut batch),
            Poll::Ready(Taken::Messages)
        );
        for signal in [Outbox::stop, Outbox::close] {
            batch.clear();
            while outbox.poll_take(&mut cx, &mut batch).is_ready() {}
            assert!(outbox.is_waited_on());
            signal(&outbox);
            assert!(!outbox.is_waited_on(), "a stop or a close takes it");
        }
        // A parked connection waits with a key, not a waker.
        let (outbox, _, _) = waited_on();
        let rung = Arc::new(Rung::new(waker.clone()));
        assert!(outbox.park(&rung, 1));
        assert!(!outbox.is_waited_on());
    }

    #[test]
    fn a_full_outbox_closes_and_still_hands_over_what_it_took() {
        let outbox = Outbox::new();
        outbox.put(message("a"), 2).expect("room");
        outbox.put(message("b"), 2).expect("room");
        assert_eq!(outbox.put(message("c"), 2), Err(PutError::Full));
        assert_eq!(outbox.put(message("d"), 2), Err(PutError::Closed));
        let mut batch = Vec::new();
        assert!(outbox.take(&mut batch), "what it took comes first");
        assert_eq!(texts(&batch), [b"a", b"b"]);
        batch.clear();
        assert!(!outbox.take(&mut batch), "then that it closed");
        assert!(batch.is_empty());
    }

    #[test]
    fn closing_wakes_the_waiting_task() {
        let (outbox, counter, waker) = waited_on();
        let mut cx = Context::from_waker(&waker);
        let mut batch = Vec::new();
        outbox.clone().close();
        assert_eq!(counter.0.load(Ordering::Relaxed), 1);
        assert_eq!(
            outbox.poll_take(&mut cx, &mut batch),
            Poll::Ready(Taken::Closed)
        );
        assert_eq!(
            outbox.poll_take(&mut cx, &mut batch),
            Poll::Pending,
            "told once"
        );
        outbox.stop();
        assert_eq!(
            counter.0.load(Ordering::Relaxed),
            2,
            "a stop still wakes it"
        );
        assert_eq!(
            outbox.poll_take(&mut cx, &mut batch),
            Poll::Ready(Taken::Stop)
        );
    }

    #[test]
    fn a_stop_comes_before_the_close_with_what_waited() {
        let outbox = Outbox::new();
        let mut cx = Context::from_waker(Waker::noop());
        let mut batch = Vec::new();
        outbox.put(message("a"), 1).expect("room");
        assert_eq!(outbox.put(message("b"), 1), Err(PutError::Full));
        outbox.stop();
        assert_eq!(
            outbox.poll_take(&mut cx, &mut batch),
            Poll::Ready(Taken::Stop)
        );
        assert_eq!(texts(&batch), [b"a"]);
        assert_eq!(
            outbox.poll_take(&mut cx, &mut batch),
            Poll::Ready(Taken::Closed)
        );
        assert_eq!(outbox.poll_take(&mut cx, &mut batch), Poll::Pending);
    }

    #[test]
    fn stopping_wakes_the_task_and_hands_over_what_waited_once() {
        let (outbox, counter, waker) = waited_on();
        let mut cx = Context::from_waker(&waker);
        let mut batch = Vec::new();
        outbox.put(message("a"), 10).expect("room");
        outbox.stop();
        assert_eq!(counter.0.load(Ordering::Relaxed), 1, "one wake-up");
        assert_eq!(
            outbox.poll_take(&mut cx, &mut batch),
            Poll::Ready(Taken::Stop)
        );
        assert_eq!(texts(&batch), [b"a"], "what waited comes with it");
        batch.clear();
        assert_eq!(
            outbox.poll_take(&mut cx, &mut batch),
            Poll::Pending,
            "told once"
        );
        outbox.put(message("b"), 10).expect("still open");
        assert_eq!(
            outbox.poll_take(&mut cx, &mut batch),
            Poll::Ready(Taken::Messages)
        );
        assert_eq!(texts(&batch), [b"b"]);
    }

    #[test]
    fn a_batch_taken_into_a_non_empty_vector_is_appended() {
        let outbox = Outbox::new();
        let mut batch = vec![message("a")];
        outbox.put(message("b"), 10).expect("room");
        assert!(outbox.take(&mut batch));
        assert_eq!(texts(&batch), [b"a", b"b"]);
    }

    /// A rung whose watcher counts its wake-ups.
    fn rung() -> (Arc<Rung>, Arc<Counter>) {
        let counter = Arc::new(Counter::default());
        (Arc::new(Rung::new(Waker::from(counter.clone()))), counter)
    }

    fn rang(rung: &Rung) -> Vec<u64> {
        let mut keys = Vec::new();
        rung.take(&mut keys);
        keys
    }

    #[test]
    fn a_parked_connection_is_rung_by_what_it_would_take_and_takes_only_a_few_messages() {
        let outbox = Outbox::new();
        let (rung, counter) = rung();
        // Nothing waits: the key is kept, and a message rings it once.
        assert!(outbox.park(&rung, 7));
        outbox.put(message("a"), 10).expect("room");
        outbox.put(message("b"), 10).expect("room");
        assert_eq!(counter.0.load(Ordering::Relaxed), 1);
        assert_eq!(rang(&rung), [7]);
        // Something waits: nothing is kept.
        assert!(!outbox.park(&rung, 7));
        // More than the limit: nothing taken.
        let mut batch = Vec::new();
        assert!(!outbox.take_few(&mut batch, 1));
        assert!(batch.is_empty());
        assert!(outbox.take_few(&mut batch, 2));
        assert_eq!(texts(&batch), [b"a", b"b"]);
        // Empty: nothing to take.
        batch.clear();
        assert!(!outbox.take_few(&mut batch, 2));
        // A stop, or a close, is for the task to tell, with what waits.
        for signal in [Outbox::stop, Outbox::close] {
            let outbox = Outbox::new();
            outbox.put(message("c"), 10).expect("room");
            signal(&outbox);
            assert!(!outbox.take_few(&mut batch, 2));
            assert!(!outbox.park(&rung, 8));
            assert!(batch.is_empty());
        }
        // A close told already leaves only a stop to wait for.
        let outbox = Outbox::new();
        outbox.close();
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(
            outbox.poll_take(&mut cx, &mut batch),
            Poll::Ready(Taken::Closed)
        );
        assert!(outbox.park(&rung, 9));
        outbox.stop();
        assert_eq!(rang(&rung), [9]);
        // A task that polls again replaces the key.
        let (outbox, counter, waker) = waited_on();
        assert!(outbox.park(&rung, 10));
        let mut cx = Context::from_waker(&waker);
        assert_eq!(outbox.poll_take(&mut cx, &mut batch), Poll::Pending);
        outbox.put(message("d"), 10).expect("room");
        assert_eq!(counter.0.load(Ordering::Relaxed), 1, "the task is woken");
        assert!(rang(&rung).is_empty(), "the key is not rung");
    }

    #[test]
    fn a_rung_wakes_its_watcher_once_until_it_takes_the_keys() {
        let (rung, counter) = rung();
        rung.ring(1);
        rung.ring(2);
        assert_eq!(counter.0.load(Ordering::Relaxed), 1);
        let mut keys = vec![0];
        rung.take(&mut keys);
        assert_eq!(keys, [0, 1, 2], "appended, in order");
        rung.ring(3);
        assert_eq!(
            counter.0.load(Ordering::Relaxed),
            2,
            "rung again once taken"
        );
        assert_eq!(rang(&rung), [3]);
        assert!(rang(&rung).is_empty());
    }
}
