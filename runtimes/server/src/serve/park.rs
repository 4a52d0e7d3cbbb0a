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

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::event::{eventfd, EventfdFlags, Timespec};

use super::driver::{self, Conn};
use super::Counted;
use crate::runtime::Runtime;

/// The `epoll` key of the bell (connections are keyed from 1).
const BELL: u64 = 0;

/// Messages a parked connection is sent within a second, past which it
/// wakes: a busy client is driven by a task, on any of the runtime's
/// threads, and this one thread stays free for the quiet ones. (A room
/// filling up sends each member a notice per join, well below it.)
const PARKED_RATE: u32 = 64;

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
    /// When the session wants its `handle_timeout`.
    pub(super) deadline: Option<Instant>,
}

/// A parked connection, as the parker keeps it.
struct Entry<R: Runtime> {
    parked: Parked<R>,
    /// Its waker in the outbox, given again after each delivery.
    ring: Waker,
    /// The second (counted from the parker's start) in which it was sent
    /// `sent` messages (see [`PARKED_RATE`]).
    second: u64,
    sent: u32,
}

struct Inner<R: Runtime> {
    start: Instant,
    epoll: OwnedFd,
    /// An `eventfd` in the set: written to wake the thread (an outbox
    /// rang, an earlier deadline came, or the parker is dropped).
    bell: OwnedFd,
    state: Mutex<State<R>>,
}

struct State<R: Runtime> {
    next_key: u64,
    parked: HashMap<u64, Box<Entry<R>>>,
    deadlines: BTreeSet<(Instant, u64)>,
    /// Keys whose outboxes rang since the thread last looked.
    rung: Vec<u64>,
    closing: bool,
}

impl<R: Runtime> Parker<R> {
    /// The set and its thread (`tincan-park`).
    pub(super) fn new() -> io::Result<Self> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let bell = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        epoll::add(&epoll, &bell, EventData::new_u64(BELL), EventFlags::IN)?;
        let state = Mutex::new(State {
            next_key: BELL + 1,
            parked: HashMap::new(),
            deadlines: BTreeSet::new(),
            rung: Vec::new(),
            closing: false,
        });
        let start = Instant::now();
        let inner = Arc::new(Inner {
            start,
            epoll,
            bell,
            state,
        });
        let watched = inner.clone();
        std::thread::Builder::new()
            .name("tincan-park".into())
            .spawn(move || watched.run())?;
        Ok(Self(inner))
    }

    /// Parks a connection whose task ends. If its outbox has something
    /// already, it rings at once; if the socket cannot be watched, the
    /// connection wakes at once.
    pub(super) fn park(&self, parked: Parked<R>) {
        let inner = &self.0;
        let outbox = parked.conn.outbox().clone();
        let metrics = parked.conn.metrics().clone();
        let deadline = parked.deadline;
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
        let ring = Waker::from(Arc::new(Ring {
            key,
            inner: Arc::downgrade(inner),
        }));
        let entry = Box::new(Entry {
            parked,
            ring: ring.clone(),
            second: 0,
            sent: 0,
        });
        state.parked.insert(key, entry);
        let earliest = state.deadlines.first().map(|(at, _)| *at);
        if let Some(at) = deadline {
            state.deadlines.insert((at, key));
        }
        // The outbox's waker too, under the lock: were the connection woken
        // first (its socket readable) and its new task waiting on the
        // outbox, this waker would replace the task's.
        let rang = !outbox.wait(ring);
        if rang {
            state.rung.push(key);
        }
        drop(state);
        let sooner = deadline.is_some_and(|at| earliest.is_none_or(|e| at < e));
        if rang || sooner {
            inner.ring_bell();
        }
    }
}

impl<R: Runtime> Drop for Parker<R> {
    fn drop(&mut self) {
        self.0.lock().closing = true;
        self.0.ring_bell();
    }
}

impl<R: Runtime> Inner<R> {
    fn lock(&self) -> MutexGuard<'_, State<R>> {
        // Nothing panics while holding it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the connection `key` (from an outbox's waker).
    fn ring(&self, key: u64) {
        self.lock().rung.push(key);
        self.ring_bell();
    }

    fn ring_bell(&self) {
        // Fails only when the counter is full, which wakes the thread too.
        let _ = rustix::io::write(&self.bell, &1u64.to_ne_bytes());
    }

    /// The thread: watches until the parker is dropped. Should it end
    /// otherwise (an error of `epoll_wait`, or a panic in a session), the
    /// parker closes to new connections and every parked one wakes: none
    /// is left with nobody to wake it.
    fn run(self: Arc<Self>) {
        let watched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.watch()));
        let parked: Vec<_> = {
            let mut state = self.lock();
            state.closing = true;
            state.deadlines.clear();
            state.parked.drain().map(|(_, entry)| entry).collect()
        };
        for entry in parked {
            let parked = entry.parked;
            let _ = epoll::delete(&self.epoll, &parked.stream);
            parked.conn.metrics().connections_parked.dec();
            driver::resume(parked);
        }
        if let Err(panic) = watched {
            std::panic::resume_unwind(panic);
        }
    }

    /// Waits for sockets, the bell and deadlines, and wakes or writes to
    /// the connections they are for.
    fn watch(&self) {
        let mut events = Vec::with_capacity(256);
        // Keys to wake (readable, or a deadline), connections to wake, and
        // connections rung, reused from turn to turn.
        let mut wake = Vec::new();
        let mut woken = Vec::new();
        let mut rung = Vec::new();
        let mut batch = Vec::new();
        loop {
            let timeout = {
                let state = self.lock();
                if state.closing {
                    return;
                }
                // Rounded up to the millisecond `epoll_wait` counts in,
                // so that a deadline is never looked at just before it.
                state.deadlines.first().map(|(at, _)| {
                    let left = at.saturating_duration_since(Instant::now());
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
                        let _ = rustix::io::read(&self.bell, &mut [0u8; 8]);
                    }
                    key => wake.push(key),
                }
            }
            let mut guard = self.lock();
            let state = &mut *guard;
            let now = Instant::now();
            while let Some(&(at, key)) = state.deadlines.first() {
                if at > now {
                    break;
                }
                wake.push(key);
                state.deadlines.pop_first();
            }
            // A key may come twice (readable and rung), or after its
            // connection woke (a late ring): only the first finds it.
            for key in wake.drain(..) {
                if let Some(entry) = state.parked.remove(&key) {
                    if let Some(at) = entry.parked.deadline {
                        state.deadlines.remove(&(at, key));
                    }
                    woken.push(entry);
                }
            }
            for key in state.rung.drain(..) {
                if let Some(entry) = state.parked.remove(&key) {
                    rung.push((key, entry));
                }
            }
            drop(guard);
            // Rung: written to from here, and parked again; or woken.
            for (key, mut entry) in rung.drain(..) {
                let second = self.start.elapsed().as_secs();
                if second != entry.second {
                    (entry.second, entry.sent) = (second, 0);
                }
                let allowed = PARKED_RATE.saturating_sub(entry.sent) as usize;
                let deadline = entry.parked.deadline;
                if let Some(sent) = driver::deliver_parked(&mut entry.parked, &mut batch, allowed) {
                    entry.sent += sent as u32;
                    if entry.parked.deadline != deadline {
                        let mut state = self.lock();
                        if let Some(at) = deadline {
                            state.deadlines.remove(&(at, key));
                        }
                        if let Some(at) = entry.parked.deadline {
                            state.deadlines.insert((at, key));
                        }
                    }
                } else {
                    if let Some(at) = entry.parked.deadline {
                        self.lock().deadlines.remove(&(at, key));
                    }
                    woken.push(entry);
                    continue;
                }
                let outbox = entry.parked.conn.outbox().clone();
                let ring = entry.ring.clone();
                let mut state = self.lock();
                state.parked.insert(key, entry);
                if !outbox.wait(ring) {
                    // Taken at the next turn (this thread's own bell).
                    state.rung.push(key);
                    drop(state);
                    self.ring_bell();
                }
            }
            for entry in woken.drain(..) {
                let parked = entry.parked;
                let _ = epoll::delete(&self.epoll, &parked.stream);
                parked.conn.metrics().connections_parked.dec();
                driver::resume(parked);
            }
        }
    }
}

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// A parked connection's waker in its outbox.
struct Ring<R: Runtime> {
    key: u64,
    inner: Weak<Inner<R>>,
}

impl<R: Runtime> Wake for Ring<R> {
    fn wake(self: Arc<Self>) {
        if let Some(inner) = self.inner.upgrade() {
            inner.ring(self.key);
        }
    }
}
