//! Idle connections parked without a task. A plain WebSocket connection
//! with nothing to write or handle parks when it is new (its handshake
//! written: most clients connect and wait) or after a quiet period (see
//! `QUIET` in [`super::driver`]): it takes its socket out of the runtime's
//! reactor and ends its task, and what is left of it (its [`Conn`]: the
//! session, the outbox, the budget's share) waits here, in one `epoll` set
//! watched by one thread.
//!
//! Messages put into a parked connection's outbox are written from that
//! thread (up to [`PARKED_RATE`] a second), and the connection stays parked:
//! a client in a room that talks now and then, or one filling up (a notice
//! per join), costs no task. It wakes (a task drives it again from where it
//! was) when its socket has something to read or closed, its session's
//! deadline comes (a ping, the idle timeout), its outbox closes or tells of
//! shutdown, or it is sent more than the thread writes for it.
//!
//! What an idle connection costs is then its state, not a task, the
//! runtime's I/O source and a timer (the tenth session in
//! `bench/README.md`). uWebSockets keeps every connection so, with no task
//! at all.
//!
//! What the connections used before they parked is free then, but still
//! resident, in holes between what stays (see [`crate::allocator`]). Once
//! [`GIVE_BACK_AFTER`] connections have parked, each within [`SETTLED`] of
//! the one before, and then none for [`SETTLED`], a burst has gone idle,
//! and the thread gives those pages back to the kernel.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::event::{eventfd, EventfdFlags, Timespec};

use super::driver::{self, Conn};
use super::Counted;
use crate::allocator;
use crate::metrics::Metrics;
use crate::outbox::Rung;
use crate::runtime::Runtime;
use crate::session::Outgoing;

/// The `epoll` key of the bell (connections are keyed from 1).
const BELL: u64 = 0;

/// Messages a parked connection is sent within a second, past which it
/// wakes: a busy client is driven by a task, on any of the runtime's
/// threads, and this one thread stays free for the quiet ones. (A room
/// filling up sends each member a notice per join, well below it.)
const PARKED_RATE: u32 = 64;

/// Entries the thread's lists keep room for between turns: a burst (every
/// member of a room rung at once, a connection storm) grows them, and
/// what it grew goes once they are empty again.
const KEPT: usize = 64;

/// The longest the thread waits for a deadline before it looks again.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Connections parked in a burst (each within [`SETTLED`] of the one
/// before), from which on the thread gives memory back once parking has
/// been quiet for [`SETTLED`]: a burst of connections gone idle (see
/// [`allocator::give_back`]). Parks spread out over time never add up to
/// one.
const GIVE_BACK_AFTER: u32 = 256;

/// How long no connection parks before a burst counts as over.
const SETTLED: Duration = Duration::from_secs(1);

/// The `epoll` set of parked connections and the thread that watches it.
/// Dropped with the server's shared state, which a parked connection
/// holds: so only once none is parked. Then its thread ends.
pub(super) struct Parker<R: Runtime>(Arc<Inner<R>>);

/// A connection parked: what its task held, but the socket out of the
/// runtime.
/// (Fields in the order a connection's end drops them: it leaves the
/// budget, its socket closes, it is counted out.)
pub(super) struct Parked<R: Runtime> {
    pub(super) conn: Conn<R>,
    pub(super) stream: TcpStream,
    pub(super) counted: Option<Counted<R>>,
}

/// A parked connection, as the parker keeps it.
struct Entry<R: Runtime> {
    parked: Parked<R>,
    /// The second (counted from the parker's start, wrapping after 136
    /// years) in which it was sent `sent` messages (see [`PARKED_RATE`]).
    second: u32,
    sent: u32,
}

struct Inner<R: Runtime> {
    start: Instant,
    /// The thread ended: connections no longer park (read without the
    /// lock by every connection that might).
    closed: AtomicBool,
    epoll: OwnedFd,
    /// Rung to wake the thread: by the rung's first ring, an earlier
    /// deadline, or the parker dropped.
    bell: Arc<Bell>,
    /// Where the parked connections' outboxes ring, by key.
    rung: Arc<Rung>,
    state: Mutex<State<R>>,
    metrics: Arc<Metrics>,
}

/// An `eventfd` in the set.
struct Bell(OwnedFd);

impl Bell {
    fn ring(&self) {
        // Fails only when the counter is full, which wakes the thread too.
        let _ = rustix::io::write(&self.0, &1u64.to_ne_bytes());
    }
}

impl Wake for Bell {
    fn wake(self: Arc<Self>) {
        self.ring();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ring();
    }
}

struct State<R: Runtime> {
    next_key: u64,
    parked: HashMap<u64, Box<Entry<R>>>,
    deadlines: BTreeSet<(Instant, u64)>,
    closing: bool,
    /// Connections parked in the current burst (none once memory was given
    /// back), and when the last one did (see [`GIVE_BACK_AFTER`]).
    parks: u32,
    last_park: Instant,
}

impl<R: Runtime> State<R> {
    /// When the thread next gives memory back: [`SETTLED`] after the last
    /// park of a burst.
    fn give_back_at(&self) -> Option<Instant> {
        (self.parks >= GIVE_BACK_AFTER).then(|| self.last_park + SETTLED)
    }
}

impl<R: Runtime> Parker<R> {
    /// The set and its thread (`tincan-park`), which counts what it gives
    /// back to the kernel in `metrics`.
    pub(super) fn new(metrics: Arc<Metrics>) -> io::Result<Self> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let bell = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        epoll::add(&epoll, &bell, EventData::new_u64(BELL), EventFlags::IN)?;
        let bell = Arc::new(Bell(bell));
        let state = Mutex::new(State {
            next_key: BELL + 1,
            parked: HashMap::new(),
            deadlines: BTreeSet::new(),
            closing: false,
            parks: 0,
            last_park: Instant::now(),
        });
        let start = Instant::now();
        let inner = Arc::new(Inner {
            start,
            closed: AtomicBool::new(false),
            epoll,
            rung: Arc::new(Rung::new(Waker::from(bell.clone()))),
            bell,
            state,
            metrics,
        });
        let watched = inner.clone();
        std::thread::Builder::new()
            .name("tincan-park".into())
            .spawn(move || watched.run())?;
        Ok(Self(inner))
    }

    /// Whether connections park: not once the thread has ended.
    pub(super) fn takes(&self) -> bool {
        !self.0.closed.load(Ordering::Relaxed)
    }

    /// Parks a connection whose task ends. If its outbox has something
    /// already, it rings at once; if the socket cannot be watched, the
    /// connection wakes at once.
    pub(super) fn park(&self, parked: Parked<R>) {
        let inner = &self.0;
        let outbox = parked.conn.outbox().clone();
        let metrics = parked.conn.metrics().clone();
        let deadline = parked.conn.deadline();
        let mut state = inner.lock();
        if state.closing {
            // The thread is gone: nobody would wake it.
            drop(state);
            return driver::resume(parked);
        }
        metrics.connections_parked.inc();
        let key = state.next_key;
        state.next_key += 1;
        // Registered and put in the map under one lock, which the thread
        // takes to look a key up: it finds the connection however soon the
        // socket is readable (it may be already: `epoll` reports that at
        // once).
        let flags = EventFlags::IN | EventFlags::RDHUP | EventFlags::ONESHOT;
        if epoll::add(&inner.epoll, &parked.stream, EventData::new_u64(key), flags).is_err() {
            drop(state);
            metrics.connections_parked.dec();
            return driver::resume(parked);
        }
        let entry = Box::new(Entry {
            parked,
            second: 0,
            sent: 0,
        });
        state.parked.insert(key, entry);
        let now = Instant::now();
        if now.saturating_duration_since(state.last_park) > SETTLED {
            // The last burst settled without enough parks; this starts one.
            state.parks = 0;
        }
        state.parks = state.parks.saturating_add(1);
        state.last_park = now;
        // The park that makes a burst: the thread, which may be waiting for
        // a later deadline or none, learns of the give-back's.
        let burst = state.parks == GIVE_BACK_AFTER;
        let earliest = state.deadlines.first().map(|(at, _)| *at);
        if let Some(at) = deadline {
            state.deadlines.insert((at, key));
        }
        // Its key in the outbox too, under the lock: were the connection
        // woken first (its socket readable) and its new task waiting on the
        // outbox, the key would replace the task's waker.
        let rang = !outbox.park(&inner.rung, key);
        drop(state);
        if rang {
            inner.rung.ring(key);
        }
        if burst || deadline.is_some_and(|at| earliest.is_none_or(|e| at < e)) {
            inner.bell.ring();
        }
    }
}

impl<R: Runtime> Drop for Parker<R> {
    fn drop(&mut self) {
        self.0.lock().closing = true;
        self.0.bell.ring();
    }
}

impl<R: Runtime> Inner<R> {
    fn lock(&self) -> MutexGuard<'_, State<R>> {
        // Nothing panics while holding it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The thread: watches until the parker is dropped. Should it end
    /// otherwise (an error of `epoll_wait`, or a panic in a session), the
    /// parker takes no more connections and every parked one wakes, those
    /// the thread was handling too: none is left with nobody to wake it.
    fn run(self: Arc<Self>) {
        let mut work = Work {
            wake: Vec::new(),
            rang: Vec::new(),
            woken: Vec::new(),
            rung: Vec::new(),
            current: None,
            batch: Vec::new(),
        };
        let watched =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.watch(&mut work)));
        self.closed.store(true, Ordering::Relaxed);
        let mut left = {
            let mut state = self.lock();
            state.closing = true;
            state.deadlines.clear();
            state
                .parked
                .drain()
                .map(|(_, entry)| entry)
                .collect::<Vec<_>>()
        };
        left.append(&mut work.woken);
        left.extend(work.rung.drain(..).map(|(_, entry)| entry));
        left.extend(work.current.take().map(|(_, entry)| entry));
        for entry in left {
            self.resume(entry);
        }
        if let Err(panic) = watched {
            std::panic::resume_unwind(panic);
        }
    }

    /// Takes a connection out of the set and lets a task drive it again.
    fn resume(&self, entry: Box<Entry<R>>) {
        let parked = entry.parked;
        let _ = epoll::delete(&self.epoll, &parked.stream);
        parked.conn.metrics().connections_parked.dec();
        driver::resume(parked);
    }

    /// Waits for sockets, the bell and deadlines, and wakes or writes to
    /// the connections they are for. What it took out of the map is in
    /// `work` until it is back or woken, so that [`Inner::run`] can wake it
    /// should this panic.
    fn watch(&self, work: &mut Work<R>) {
        let mut events = Vec::with_capacity(256);
        loop {
            let timeout = {
                let state = self.lock();
                if state.closing {
                    return;
                }
                // Rounded up to the millisecond `epoll_wait` counts in, so
                // that a deadline is never looked at just before it; at most
                // an hour (a longer wait takes `epoll_pwait2`, which an older
                // kernel lacks).
                let deadline = state.deadlines.first().map(|(at, _)| *at);
                [deadline, state.give_back_at()]
                    .into_iter()
                    .flatten()
                    .min()
                    .map(|at| {
                        let left = at.saturating_duration_since(Instant::now()).min(MAX_WAIT);
                        let ms = left.as_nanos().div_ceil(1_000_000);
                        timespec(Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)))
                    })
            };
            events.clear();
            let spare = rustix::buffer::spare_capacity(&mut events);
            match epoll::wait(&self.epoll, spare, timeout.as_ref()) {
                Ok(_) => {}
                Err(e) if e == rustix::io::Errno::INTR => continue,
                // Nothing else is expected of a valid set; wait no more.
                Err(_) => return,
            }
            for event in &events {
                match event.data.u64() {
                    BELL => {
                        let _ = rustix::io::read(&self.bell.0, &mut [0u8; 8]);
                    }
                    key => work.wake.push(key),
                }
            }
            self.rung.take(&mut work.rang);
            let mut guard = self.lock();
            let state = &mut *guard;
            let now = Instant::now();
            let give_back = state.give_back_at().is_some_and(|at| at <= now);
            if give_back {
                state.parks = 0;
            }
            while let Some(&(at, key)) = state.deadlines.first() {
                if at > now {
                    break;
                }
                work.wake.push(key);
                state.deadlines.pop_first();
            }
            // A key may come twice (readable and rung), or after its
            // connection woke (a late ring): only the first finds it.
            for key in work.wake.drain(..) {
                if let Some(entry) = state.parked.remove(&key) {
                    if let Some(at) = entry.parked.conn.deadline() {
                        state.deadlines.remove(&(at, key));
                    }
                    work.woken.push(entry);
                }
            }
            for key in work.rang.drain(..) {
                if let Some(entry) = state.parked.remove(&key) {
                    work.rung.push((key, entry));
                }
            }
            drop(guard);
            // Rung: written to from here, and parked again; or woken.
            while let Some(rung) = work.rung.pop() {
                let (key, entry) = work.current.insert(rung);
                let key = *key;
                if self.deliver(key, entry, &mut work.batch) {
                    if let Some((_, entry)) = work.current.take() {
                        self.repark(key, entry);
                    }
                } else if let Some((_, entry)) = work.current.take() {
                    work.woken.push(entry);
                }
            }
            while let Some(entry) = work.woken.pop() {
                self.resume(entry);
            }
            work.shrink();
            if give_back && allocator::give_back() {
                self.metrics.memory_given_back.inc();
            }
        }
    }

    /// Writes what a rung connection's outbox holds, if it may stay
    /// parked (see [`driver::deliver_parked`]); `false` if it wakes (its
    /// deadline is out of the set then).
    fn deliver(&self, key: u64, entry: &mut Entry<R>, batch: &mut Vec<Outgoing>) -> bool {
        let second = self.start.elapsed().as_secs() as u32;
        if second != entry.second {
            (entry.second, entry.sent) = (second, 0);
        }
        let allowed = PARKED_RATE.saturating_sub(entry.sent) as usize;
        let deadline = entry.parked.conn.deadline();
        let delivered = driver::deliver_parked(&mut entry.parked, batch, allowed);
        if let Some(sent) = delivered {
            entry.sent = entry
                .sent
                .saturating_add(u32::try_from(sent).unwrap_or(u32::MAX));
        }
        let after = delivered.and_then(|_| entry.parked.conn.deadline());
        if after != deadline {
            let mut state = self.lock();
            if let Some(at) = deadline {
                state.deadlines.remove(&(at, key));
            }
            if let Some(at) = after {
                state.deadlines.insert((at, key));
            }
        }
        delivered.is_some()
    }

    /// Puts a connection written to back in the map, with its key in its
    /// outbox again (under the lock, as in [`Parker::park`]).
    fn repark(&self, key: u64, entry: Box<Entry<R>>) {
        let outbox = entry.parked.conn.outbox().clone();
        let mut state = self.lock();
        state.parked.insert(key, entry);
        let rang = !outbox.park(&self.rung, key);
        drop(state);
        if rang {
            // Taken at the next turn (this thread's own bell).
            self.rung.ring(key);
        }
    }
}

/// What the parking thread holds between taking connections out of the map
/// and putting them back or waking them.
#[allow(
    clippy::vec_box,
    reason = "entries move between the map and these lists as boxes, not 400-byte copies"
)]
struct Work<R: Runtime> {
    /// Keys to wake: readable, or a deadline.
    wake: Vec<u64>,
    /// Keys whose outboxes rang.
    rang: Vec<u64>,
    woken: Vec<Box<Entry<R>>>,
    rung: Vec<(u64, Box<Entry<R>>)>,
    /// The rung connection being written to.
    current: Option<(u64, Box<Entry<R>>)>,
    batch: Vec<Outgoing>,
}

impl<R: Runtime> Work<R> {
    /// Lets go of what a burst grew (see [`KEPT`]).
    fn shrink(&mut self) {
        shrink(&mut self.wake);
        shrink(&mut self.rang);
        shrink(&mut self.woken);
        shrink(&mut self.rung);
        shrink(&mut self.batch);
    }
}

/// `list`'s storage past [`KEPT`] entries, if it is empty.
fn shrink<T>(list: &mut Vec<T>) {
    if list.is_empty() && list.capacity() > KEPT {
        list.shrink_to(KEPT);
    }
}

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}
