//! One connection's task: a [`Driver`] that owns its socket, its
//! [`Session`], its outbox and its share of the budget, and a loop that
//! lets the session handle what happened, then waits for the next thing
//! (bytes to read, room to write, messages in the outbox, the timer).
//!
//! The driver is a struct with a poll method rather than locals of an
//! `async` block raced over closures: what a connection's task keeps while
//! it waits, which is what an idle connection costs, is the driver's fields
//! and one reference.

use std::future::Future;
use std::io::{self, IoSlice};
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::future;

use super::park::Parked;
use super::{Counted, Shared};
use crate::budget::Share;
use crate::log::Log;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, Taken};
use crate::read_buffer::{self, Filled};
use crate::runtime::{send_slices, Runtime, Socket};
use crate::session::{Outgoing, Session};

/// How much a connection may do without waiting before it yields to the
/// others: a client that keeps its socket full (pings, empty frames) would
/// otherwise hold a runtime thread for as long as it likes. The budget is a
/// number of turns (wake-ups that found work at once) or of bytes read,
/// whichever runs out first (one full read of the thread's buffer);
/// waiting for anything refills it.
const TURNS_BEFORE_YIELD: u32 = 16;
const BYTES_BEFORE_YIELD: usize = read_buffer::SIZE;

/// Queued frames handed to one vectored write: prepared broadcast frames are
/// shared, so a backlog of small ones leaves in one system call.
const WRITE_SLICES: usize = 64;

/// A connection that took nothing from its outbox and read nothing for this
/// long is quiet: the storage its traffic grew (the outbox's and the batch's
/// vectors, the connection's buffers, the session's log queue, the budget's
/// marks) goes, and comes back with the next traffic. Looked at once per
/// period while traffic flows, so that steady traffic of short messages
/// allocates nothing per message (the look is the connection's timer, set
/// once a period) and reads the clock once a period; not at all once quiet.
const QUIET: Duration = Duration::from_secs(1);

/// A client sent chat messages less than this long ago is in a busy room:
/// with `--write-delay`, the next ones wait for what follows them. One sent
/// none for this long gets the next at once (a conversation whose lines
/// come more than this apart waits for nothing).
const BUSY: Duration = Duration::from_secs(1);

/// Up to this many messages taken from the outbox at once are few: see
/// `Wake::Inbox` in [`Driver::handle`]. (What the smallest allocation of a
/// vector holds.)
const FEW_MESSAGES: usize = 4;

/// The orders in which [`Driver::poll_wake`] polls its sources (0 read,
/// 1 write, 2 the outbox, 3 the timer), by three coins: whether reading
/// and writing go before the outbox and the timer, whether reading goes
/// before writing, and the outbox before the timer.
const ORDERS: [[u8; 4]; 8] = {
    let mut orders = [[0; 4]; 8];
    let mut coins = 0;
    while coins < 8 {
        let io = if coins & 2 == 0 { [0, 1] } else { [1, 0] };
        let inbox = if coins & 4 == 0 { [2, 3] } else { [3, 2] };
        let (a, b) = if coins & 1 == 0 {
            (io, inbox)
        } else {
            (inbox, io)
        };
        orders[coins] = [a[0], a[1], b[0], b[1]];
        coins += 1;
    }
    orders
};

/// Three coins per toss, from a xorshift generator of the driver's own
/// (seeded at random): cheaper than a thread's generator, reached through
/// a thread-local, on every wait.
#[derive(Debug, Clone, Copy)]
struct Coins(u32);

impl Coins {
    fn new() -> Self {
        Self(fastrand::u32(1..))
    }

    /// Three fair coins, as a number below 8.
    fn toss(&mut self) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        (x >> 29) as usize
    }
}

/// Drives one connection until its session is finished. The driver is made
/// here, before the task, so that the task holds it once (an `async` block
/// keeps what it captures apart from its locals): a plain connection joins
/// the budget in the accept loop (a lock that an eviction holds while it
/// sorts the backlogs, so accepting waits that long under overload).
pub(super) fn drive<R: Runtime>(
    socket: impl Socket,
    session: Session,
    shared: Arc<Shared<R>>,
    counted: Option<Counted<R>>,
    park: Park,
) -> impl Future<Output = ()> + Send {
    let conn = Conn::new(session, shared);
    run(Driver::new(socket, conn, counted, Instant::now(), park))
}

/// When a connection parks (see [`Driver::may_park`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Park {
    /// Never: its socket is not one the runtime can let go (TLS).
    Never,
    /// New: as soon as it has nothing to do.
    New,
    /// Woken from parking: once quiet.
    Quiet,
}

/// A parked connection woke (see [`super::park`]): its socket goes back to
/// the runtime, and a task drives it again. If the runtime cannot take the
/// socket, the connection ends there.
pub(super) fn resume<R: Runtime>(parked: Parked<R>) {
    let Parked {
        stream,
        mut conn,
        counted,
        ..
    } = parked;
    let runtime = conn.shared.runtime.clone();
    match runtime.socket(stream) {
        Ok(socket) => {
            let driver = Driver::new(socket, conn, counted, Instant::now(), Park::Quiet);
            runtime.spawn(run(driver));
        }
        Err(_) => {
            // The socket closed (the runtime dropped it); leaving the
            // budget comes before counting out, as in [`Conn`].
            conn.finish();
            drop(conn);
            drop(counted);
        }
    }
}

/// A parked connection's outbox rang: what it holds, if at most `allowed`
/// messages (and a vectored write's worth), is written from the parking
/// thread, and the connection stays parked (a client in a room that talks
/// now and then costs no task, and the notices of a room filling up wake
/// none): the messages sent, at once, whatever `--write-delay` says (a
/// parked connection is sent at most 64 a second, each in its own write).
/// More (the room is busy, or the
/// thread behind), a close, shutdown, or a socket that does not take it
/// all: `None`, and the connection wakes, with what the outbox holds still
/// in it.
pub(super) fn deliver_parked<R: Runtime>(
    parked: &mut Parked<R>,
    batch: &mut Vec<Outgoing>,
    allowed: usize,
) -> Option<usize> {
    let conn = &mut parked.conn;
    let shared = &*conn.shared;
    let limit = allowed.min(WRITE_SLICES);
    if !conn.outbox().take_few(batch, limit) {
        return None;
    }
    let sent = batch.len();
    let session = &mut conn.session;
    for message in batch.drain(..) {
        session.deliver(message);
    }
    let mut written = 0;
    while session.buffered_amount() > 0 {
        let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
        let n = session.poll_transmit_vectored(&mut slices);
        match send_slices(&parked.stream, &slices[..n]) {
            Ok(n) => {
                session.advance(n);
                written += n;
            }
            // Full, or broken: a task waits for room, or finds out.
            Err(_) => break,
        }
    }
    let ms = || u64::try_from(shared.start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let queued = session.buffered_amount();
    shared.budget.update(&mut conn.share, queued, written, ms);
    // A log line (a client too slow) is printed by the task, not here:
    // this thread does not wait on stdout.
    if queued > 0 || conn.share.is_evicted() || !session.may_park() || session.has_logs() {
        return None;
    }
    session.release_when_drained();
    conn.outbox().release();
    conn.share.release();
    Some(sent)
}

/// The connection's task: handles what happened, waits for the next thing,
/// until the connection is over or parks. (An `async move` block, not an
/// `async fn`, whose future would hold the driver twice: as its argument
/// and as the local that the `mut` binding makes.)
#[allow(clippy::manual_async_fn)]
fn run<R: Runtime, S: Socket>(mut driver: Driver<R, S>) -> impl Future<Output = ()> + Send {
    async move {
        loop {
            if driver.out_of_budget() {
                future::yield_now().await;
            }
            let Some(due) = future::poll_fn(|cx| Poll::Ready(driver.prepare(cx))).await else {
                break;
            };
            let wake = match due {
                true => Wake::Due,
                false if driver.may_park() => return driver.park(),
                false => future::poll_fn(|cx| driver.poll_wake(cx)).await,
            };
            if !driver.handle(wake) {
                break;
            }
        }
        driver.conn.finish();
    }
}

/// What woke a connection task.
enum Wake {
    /// Bytes in the thread's read buffer, to be taken before the next wait.
    Read(io::Result<Filled>),
    Wrote(io::Result<usize>),
    Flushed(io::Result<()>),
    /// The outbox handed over messages, closed, or told of shutdown.
    Inbox(Taken),
    /// The runtime's timer fired.
    Timer,
    /// The session's deadline had passed when the turn began.
    Due,
}

/// What a connection is apart from its socket and its task: what a parked
/// one keeps. However it ends (finished, parked and woken into a runtime
/// that stopped, or dropped with its runtime), it leaves the budget first,
/// before its socket closes and before it is counted out.
pub(super) struct Conn<R: Runtime> {
    session: Session,
    shared: Arc<Shared<R>>,
    /// Its place in the budget, which holds its outbox: empty until
    /// messages come; a put past `outbox_capacity` closes it.
    share: Share,
}

impl<R: Runtime> Conn<R> {
    fn new(session: Session, shared: Arc<Shared<R>>) -> Self {
        let share = shared.budget.join(session.id(), Outbox::new());
        Self {
            session,
            shared,
            share,
        }
    }

    pub(super) fn outbox(&self) -> &Outbox {
        self.share.outbox()
    }

    pub(super) fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// When the session wants its `handle_timeout`: a function of the
    /// session alone, so the same until the session is next handled. One
    /// past what an `Instant` holds (a timeout of billions of years) is
    /// none.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.session
            .poll_timeout()
            .and_then(|t| self.shared.start.checked_add(t))
    }

    /// The socket is done or broken: makes sure the chat forgets this
    /// client. (The budget is left when the connection is dropped.)
    fn finish(&mut self) {
        self.session.receive_eof();
        self.shared.process(&mut self.session, self.share.outbox());
        self.shared.print_logs(&mut self.session);
    }
}

impl<R: Runtime> Drop for Conn<R> {
    fn drop(&mut self) {
        self.shared.budget.leave(&mut self.share);
    }
}

/// A connection, as its task drives it.
struct Driver<R: Runtime, S> {
    /// Declared first, dropped first: see [`Conn`].
    conn: Conn<R>,
    socket: S,
    /// What was taken from the outbox in one go, to be delivered.
    batch: Vec<Outgoing>,
    /// The session's timer, made once and set again
    /// ([`Runtime::reset_timer`]) only when its deadline moves earlier (a
    /// timer that fires early finds nothing to do and is armed again), and
    /// dropped when nothing is due.
    timer: Option<R::Timer>,
    /// When the timer fires; `None` once it fired (or was never armed).
    armed: Option<Instant>,
    /// With `--write-delay`: chat messages that came to an empty send
    /// queue in a busy room ([`BUSY`]) are held until then, and what follows
    /// them joins the write.
    hold: Option<Instant>,
    pace: Pace,
    quiet: QuietWatch,
    /// Bytes written since the budget was last told.
    written: usize,
    /// Bytes read and turns taken since the task last waited.
    busy_bytes: usize,
    busy_turns: u32,
    /// A socket at its end reads 0 bytes at once, every time: after that,
    /// only the writes, the inbox and the timer can wake the task.
    read_open: bool,
    write_shut: bool,
    /// The last wait returned `Pending` at least once.
    waited: bool,
    /// The timer's and the outbox's wakers are in place: each was polled
    /// `Pending` with `waker`, and has not changed since (a timer set
    /// again, a hold begun or ended). A wait skips them. Woken, the task
    /// polls again only those that may have brought something: the outbox
    /// if it no longer holds the waker, the timer once its time has come
    /// (a runtime's timer fires no earlier), and both if the task's waker
    /// changed.
    timer_waits: bool,
    outbox_waits: bool,
    /// The waker of the last wait.
    waker: Option<Waker>,
    /// For the order of the sources of each wait.
    coins: Coins,
    /// When it parks: [`Park::New`] until it first does.
    park: Park,
    /// Held to the end (declared last, dropped last): counted out after
    /// the budget lets the connection go.
    _counted: Option<Counted<R>>,
}

impl<R: Runtime, S: Socket> Driver<R, S> {
    /// A driver from `now`: a new connection's, or a parked one's that
    /// woke ([`Park::Quiet`]).
    fn new(
        socket: S,
        conn: Conn<R>,
        counted: Option<Counted<R>>,
        now: Instant,
        park: Park,
    ) -> Self {
        Self {
            conn,
            socket,
            batch: Vec::new(),
            timer: None,
            armed: None,
            hold: None,
            pace: Pace::default(),
            quiet: QuietWatch::new(now),
            written: 0,
            busy_bytes: 0,
            busy_turns: 0,
            read_open: true,
            write_shut: false,
            waited: false,
            timer_waits: false,
            outbox_waits: false,
            waker: None,
            coins: Coins::new(),
            park,
            _counted: counted,
        }
    }

    /// Whether this connection used up its budget (see
    /// [`TURNS_BEFORE_YIELD`]): then it lets the others go first. (Asked
    /// where the last turn's bytes read are gone: see `Wake::Read`.)
    fn out_of_budget(&mut self) -> bool {
        let spent = self.busy_turns > TURNS_BEFORE_YIELD || self.busy_bytes >= BYTES_BEFORE_YIELD;
        if spent {
            (self.busy_turns, self.busy_bytes) = (0, 0);
            // Yielding is a wait: a wake it takes is not seen again.
            (self.timer_waits, self.outbox_waits) = (false, false);
            self.socket.defer_read();
        }
        spent
    }

    /// Lets the session handle what happened, writes what that queued if
    /// the socket takes it now, and gets ready to wait: `None` once the
    /// connection is over, otherwise whether a deadline has passed
    /// already.
    fn prepare(&mut self, cx: &mut Context<'_>) -> Option<bool> {
        let shared = &*self.conn.shared;
        let session = &mut self.conn.session;
        shared.process(session, self.conn.share.outbox());
        shared.print_logs(session);
        // Most turns that queue bytes (an echo, a reply, what the outbox
        // handed over) find room in the socket: written before the budget
        // is told, they were never held, and need no wait and no second
        // turn. Held messages wait for their hold.
        if self.hold.is_none() && session.buffered_amount() > 0 {
            match poll_write_queued(&self.socket, session, cx) {
                Poll::Ready(Ok(n)) => {
                    session.advance(n);
                    self.written += n;
                }
                Poll::Ready(Err(_)) => return None,
                Poll::Pending => {}
            }
        }
        // After the write: it may have sent a finished session's last bytes.
        if session.is_finished() {
            return None;
        }
        let ms = || u64::try_from(shared.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let written = mem::take(&mut self.written);
        shared
            .budget
            .update(&mut self.conn.share, session.buffered_amount(), written, ms);
        if self.conn.share.is_evicted() {
            // Not reading: a close frame behind its backlog would never
            // reach it, and the backlog is what the budget frees.
            let peer = session.peer().to_string();
            shared.log(Log::OverBudget { peer });
            return None;
        }
        if session.is_closed() && session.poll_transmit().is_none() && !self.write_shut {
            let _ = self.socket.shutdown_write();
            self.write_shut = true;
        }
        // A deadline already past (the connection asks for the time to
        // start a timer, e.g. for a message split over reads) is handled
        // now: a runtime timer for it would cost a timer and a turn, and
        // replace the one armed for later.
        let next = self
            .conn
            .deadline()
            .into_iter()
            .chain(self.hold)
            .chain(self.quiet.look_at())
            .min();
        match next {
            // Nothing is due (quiet, with pings and the idle timeout off):
            // the runtime need not keep a timer.
            None => (self.timer, self.armed) = (None, None),
            Some(at) if self.armed.is_none_or(|armed| at < armed) => {
                if at <= Instant::now() {
                    return Some(true);
                }
                self.timer_waits = false;
                match &mut self.timer {
                    Some(timer) => shared.runtime.reset_timer(timer, at),
                    None => self.timer = Some(shared.runtime.timer_at(at)),
                }
                self.armed = Some(at);
            }
            Some(_) => {}
        }
        Some(false)
    }

    /// Waits for bytes to read, room to write what is queued (or a TLS
    /// flush), the outbox, or the timer: the first ready, in an order
    /// drawn at random each time, as two races of two would (a pair first,
    /// then each pair's first): reading and writing each go first half the
    /// time (a random first of four would put reads first 3 times in 4).
    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<Wake> {
        if self.waited {
            self.after_wait(cx);
        }
        for source in ORDERS[self.coins.toss()] {
            let polled = match source {
                0 => self.poll_read(cx),
                1 => self.poll_write(cx),
                2 if self.outbox_waits => Poll::Pending,
                2 => {
                    let polled = self.poll_outbox(cx);
                    self.outbox_waits = polled.is_pending();
                    polled
                }
                _ if self.timer_waits => Poll::Pending,
                _ => match (&mut self.timer, self.armed) {
                    (Some(timer), Some(_)) => {
                        let polled = Pin::new(timer).poll(cx).map(|_| Wake::Timer);
                        self.timer_waits = polled.is_pending();
                        polled
                    }
                    _ => Poll::Pending,
                },
            };
            if polled.is_ready() {
                return polled;
            }
        }
        self.waited = true;
        match &mut self.waker {
            Some(waker) => waker.clone_from(cx.waker()),
            none => *none = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Polled again after a wait: keeps the timer and the outbox skipped
    /// unless they may have woken it (see [`Driver::timer_waits`]).
    fn after_wait(&mut self, cx: &Context<'_>) {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            (self.timer_waits, self.outbox_waits) = (false, false);
            return;
        }
        self.outbox_waits &= self.conn.outbox().is_waited_on();
        if self.timer_waits && self.armed.is_some_and(|at| at <= Instant::now()) {
            self.timer_waits = false;
        }
    }

    fn poll_outbox(&mut self, cx: &mut Context<'_>) -> Poll<Wake> {
        let outbox = self.conn.share.outbox();
        match self.hold {
            // While messages are held, what comes meanwhile stays in the
            // outbox, waking nobody, until the hold ends (or half the
            // outbox fills); a stop or a close still comes.
            Some(_) => {
                outbox.poll_take_held(cx, &mut self.batch, self.conn.shared.config.outbox_capacity)
            }
            // Polled even once closed: a shutdown still comes through it.
            None => outbox.poll_take(cx, &mut self.batch),
        }
        .map(Wake::Inbox)
    }

    fn poll_read(&self, cx: &mut Context<'_>) -> Poll<Wake> {
        match self.read_open {
            true => read_buffer::poll_read(&self.socket, cx).map(Wake::Read),
            false => Poll::Pending,
        }
    }

    fn poll_write(&self, cx: &mut Context<'_>) -> Poll<Wake> {
        match self.conn.session.buffered_amount() {
            0 if self.socket.wants_flush() => self.socket.poll_flush(cx).map(Wake::Flushed),
            0 => Poll::Pending,
            _ if self.hold.is_some() => Poll::Pending,
            _ => poll_write_queued(&self.socket, &self.conn.session, cx).map(Wake::Wrote),
        }
    }

    /// Handles what woke the task; `false` if the connection is over (its
    /// socket broke).
    fn handle(&mut self, wake: Wake) -> bool {
        if mem::take(&mut self.waited) {
            (self.busy_turns, self.busy_bytes) = (0, 0);
        }
        self.busy_turns += 1;
        let shared = &*self.conn.shared;
        let session = &mut self.conn.session;
        match wake {
            // Taken before anything else: the bytes are in the thread's
            // buffer, which is another task's once this one waits.
            Wake::Read(Ok(filled)) if !filled.is_empty() => {
                self.busy_bytes += filled.len();
                self.quiet.saw_traffic(Instant::now);
                shared.metrics.bytes_in.inc_by(filled.len() as u64);
                filled.take(|bytes| session.receive(bytes));
            }
            // The end of the stream, or a broken socket.
            Wake::Read(_) => {
                self.read_open = false;
                session.receive_eof();
            }
            Wake::Wrote(Ok(n)) => {
                session.advance(n);
                self.written += n;
            }
            Wake::Wrote(Err(_)) | Wake::Flushed(Err(_)) => return false,
            Wake::Flushed(Ok(())) => {}
            Wake::Inbox(Taken::Messages) => {
                self.quiet.saw_traffic(Instant::now);
                let delay = shared.config.write_delay;
                if !delay.is_zero() && self.hold.is_none() && session.buffered_amount() == 0 {
                    self.hold = self.pace.hold(Instant::now(), delay);
                }
                // A few messages at a time (notices, a slow room): their
                // storage goes once they are written, here, in the
                // outbox and in the connection, so that a client that is
                // sent little holds little, even before it is quiet. A
                // busy client takes more at once, and keeps its storage; so
                // does one whose messages are now held (a busy room: what
                // comes during the hold gathers in that storage).
                let few = self.batch.len() <= FEW_MESSAGES && self.hold.is_none();
                // All that waited, so that it leaves in one write.
                for message in self.batch.drain(..) {
                    session.deliver(message);
                }
                if few {
                    self.release_traffic_storage();
                }
            }
            Wake::Inbox(Taken::Closed) => {
                // Closed for the budget, the connection ends in `prepare`.
                if !self.conn.share.is_evicted() {
                    session.outbox_closed();
                }
            }
            Wake::Inbox(Taken::Stop) => {
                self.hold = None;
                // Shutdown took the gate before telling us: what the chat
                // took is all in the batch, and goes out before the 1001.
                for message in self.batch.drain(..) {
                    session.deliver(message);
                }
                session.shutdown();
            }
            Wake::Due | Wake::Timer => {
                if matches!(wake, Wake::Timer) {
                    self.armed = None;
                }
                if let Some(until) = self.hold.filter(|until| *until <= Instant::now()) {
                    self.hold = None;
                    // Its waker waited for a held outbox.
                    self.outbox_waits = false;
                    self.pace.released(until);
                    // What came meanwhile waited in the outbox (not polled
                    // while held): it goes in the same write.
                    self.conn.share.outbox().take(&mut self.batch);
                    for message in self.batch.drain(..) {
                        session.deliver(message);
                    }
                }
                session.handle_timeout(shared.start.elapsed());
                let now = Instant::now();
                if self.quiet.went_quiet(now) {
                    self.release_traffic_storage();
                    if self.conn.session.buffered_amount() > 0 {
                        // A backlog still drains (writes are not
                        // traffic): what it holds (samples, marks) is
                        // looked at again once it is written.
                        self.quiet.look_again(now);
                    }
                }
            }
        }
        true
    }

    /// Frees what a connection's traffic grew, for a client sent little or
    /// nothing: the batch's and the outbox's vectors, the session's and its
    /// connection's buffers (once what is queued is written) and the
    /// budget's later marks. Each keeps what is still in use.
    fn release_traffic_storage(&mut self) {
        self.batch = Vec::new();
        self.conn.outbox().release();
        self.conn.session.release_when_drained();
        self.conn.share.release();
    }

    /// Whether the connection parks now (see [`super::park`]): nothing
    /// held, queued or to handle, both directions open, a socket the
    /// runtime can let go ([`Park::Never`] otherwise), an open WebSocket
    /// session; and quiet (what its traffic grew is gone), or new. A new connection parks as soon as
    /// its handshake is written (most connect and wait), so that many
    /// connecting at once do not all hold a task and leave the allocator
    /// the holes of them; one that woke from parking parks again only once
    /// quiet, so that traffic does not pay for parking.
    fn may_park(&mut self) -> bool {
        let idle = self.park != Park::Never
            && self.hold.is_none()
            && self.batch.is_empty()
            && self.read_open
            && !self.write_shut
            && self.conn.session.may_park()
            && self.conn.shared.parker.takes();
        match self.quiet.look_at() {
            _ if !idle => false,
            None => true,
            Some(_) if self.park == Park::New => {
                self.release_traffic_storage();
                true
            }
            Some(_) => false,
        }
    }

    /// Parks the connection: its task ends here. If the runtime cannot let
    /// the socket go, the socket is gone, and so is the connection.
    fn park(self) {
        let Driver {
            mut conn,
            socket,
            _counted: counted,
            ..
        } = self;
        let shared = conn.shared.clone();
        match socket.into_std() {
            Ok(stream) => shared.parker.park(Parked {
                conn,
                stream,
                counted,
            }),
            Err(_) => {
                conn.finish();
                drop(conn);
                drop(counted);
            }
        }
    }
}

/// One vectored write of what `session` has queued. The slices (a
/// kilobyte) are made on this call's stack, not kept in every connection's
/// task between polls; and not at all when what is queued is one piece
/// (an echo, a reply, one message), the most common write.
fn poll_write_queued<S: Socket>(
    socket: &S,
    session: &Session,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if let Some(bytes) = session.poll_transmit() {
        if bytes.len() == session.buffered_amount() {
            return socket.poll_write_vectored(cx, &[IoSlice::new(bytes)]);
        }
    }
    let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
    let n = session.poll_transmit_vectored(&mut slices);
    socket.poll_write_vectored(cx, &slices[..n])
}

/// When a connection's chat messages leave, with `--write-delay` (see
/// [`BUSY`]).
#[derive(Debug, Default)]
struct Pace {
    /// When chat messages last left: written at once, or a hold ended.
    sent_at: Option<Instant>,
}

impl Pace {
    /// Chat messages came to an empty send queue at `now`: until when
    /// they wait for what follows them (`delay` in a busy room), or `None`
    /// when they leave at once.
    fn hold(&mut self, now: Instant, delay: Duration) -> Option<Instant> {
        match self.sent_at {
            Some(at) if !delay.is_zero() && now < at + BUSY => Some(now + delay),
            _ => {
                self.sent_at = Some(now);
                None
            }
        }
    }

    /// The messages held until `at` left then.
    fn released(&mut self, at: Instant) {
        self.sent_at = Some(at);
    }
}

/// Whether a connection went quiet (see [`QUIET`]).
#[derive(Debug)]
struct QuietWatch {
    /// When to look next; `None` once quiet, until traffic comes.
    look: Option<Instant>,
    /// Traffic came since `look` was set.
    traffic: bool,
}

impl QuietWatch {
    /// A watch on a connection that starts at `now`.
    fn new(now: Instant) -> Self {
        Self {
            look: Some(now + QUIET),
            traffic: false,
        }
    }

    /// A read or a take from the outbox; `now` is asked only when the
    /// connection was quiet.
    fn saw_traffic(&mut self, now: impl FnOnce() -> Instant) {
        match self.look {
            Some(_) => self.traffic = true,
            None => self.look = Some(now() + QUIET),
        }
    }

    /// Looks again a period after `now`, though it went quiet.
    fn look_again(&mut self, now: Instant) {
        self.look = Some(now + QUIET);
    }

    /// When it wants to look.
    fn look_at(&self) -> Option<Instant> {
        self.look
    }

    /// Looks, if it is time at `now`: whether the connection went quiet
    /// (then the caller frees what its traffic grew).
    fn went_quiet(&mut self, now: Instant) -> bool {
        match self.look {
            Some(at) if at <= now => {
                if mem::take(&mut self.traffic) {
                    self.look = Some(now + QUIET);
                    false
                } else {
                    self.look = None;
                    true
                }
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_quiet_after_a_period_without_traffic() {
        let t0 = Instant::now();
        let mut quiet = QuietWatch::new(t0);
        assert_eq!(quiet.look_at(), Some(t0 + QUIET));
        // Traffic in the first period: not quiet at its end, looked at again.
        quiet.saw_traffic(|| unreachable!("the watch runs"));
        assert!(!quiet.went_quiet(t0 + QUIET / 2), "not time yet");
        assert!(!quiet.went_quiet(t0 + QUIET));
        assert_eq!(quiet.look_at(), Some(t0 + 2 * QUIET));
        // None in the second: quiet, and no more looks until traffic.
        assert!(quiet.went_quiet(t0 + 2 * QUIET));
        assert_eq!(quiet.look_at(), None);
        assert!(!quiet.went_quiet(t0 + 9 * QUIET));
        // Traffic starts the watch again, from its time.
        let t1 = t0 + 10 * QUIET;
        quiet.saw_traffic(|| t1);
        assert_eq!(quiet.look_at(), Some(t1 + QUIET));
        assert!(quiet.went_quiet(t1 + QUIET));
        // Asked to look again (a backlog still drains): quiet again at the
        // next look, with no traffic.
        quiet.look_again(t1 + QUIET);
        assert_eq!(quiet.look_at(), Some(t1 + 2 * QUIET));
        assert!(quiet.went_quiet(t1 + 2 * QUIET));
    }

    #[test]
    fn chat_messages_wait_only_in_a_busy_room() {
        let delay = Duration::from_millis(20);
        let t0 = Instant::now();
        let mut pace = Pace::default();
        // The first ever, and the first after a quiet spell, leave at once.
        assert_eq!(pace.hold(t0, delay), None);
        // Sent within BUSY of the last: they wait the delay.
        let t1 = t0 + BUSY / 2;
        assert_eq!(pace.hold(t1, delay), Some(t1 + delay));
        // What left at the end of that hold counts as sent then: a message
        // just under BUSY after it still waits.
        pace.released(t1 + delay);
        let t2 = t1 + delay + BUSY - Duration::from_millis(1);
        assert_eq!(pace.hold(t2, delay), Some(t2 + delay));
        // A quiet BUSY after the last write: at once again.
        pace.released(t2 + delay);
        let t3 = t2 + delay + BUSY;
        assert_eq!(pace.hold(t3, delay), None);
        // And with no delay, nothing ever waits.
        assert_eq!(pace.hold(t3 + delay, Duration::ZERO), None);
    }
}
