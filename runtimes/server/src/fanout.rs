//! Each room's messages reach every member in one order, while rooms fan out
//! in parallel.
//!
//! The chat takes its input one operation at a time under the hub's mutex,
//! so that is where a room's order is decided (the order of its history).
//! Handing a message to a thousand outboxes takes far longer than deciding
//! it, and is done after the hub is let go, so that it holds up no other
//! room. Done just like that, two sessions on two threads could each be half
//! way through their room's members, and some would get the first message
//! first, others the second.
//!
//! So rooms have lanes here, and a lane hands out turns in the hub's order:
//! a session takes its room's next turn ([`Fanout::turn`]) *before* it lets
//! the hub go, then waits for that turn without the hub ([`Turn::wait`]) and
//! holds it while it hands the output out. The next output for the same room
//! waits, as it must; other rooms' lanes do not, and neither does the hub,
//! so one busy room holds up no other. Rooms are spread over a fixed set of
//! lanes by a hash of their name (striping): nothing is made or freed as
//! rooms come and go, and two rooms that share a lane only take turns, as
//! every room did behind the one hub.
//!
//! Each lane also holds the outboxes of its rooms' members, so that finding
//! a thousand recipients' outboxes is done in the room's turn, not under the
//! hub. A member's outbox goes in when it joins and out when it leaves, in
//! the room's order like its other output.
//!
//! Turns are only ever waited for in the order the hub gave them out, and
//! output that spans rooms (another node lost) takes a turn of every lane,
//! waited for in index order, so no two waits can hold each other up. None
//! is waited for with the hub held.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use tincan_chat::{ClientId, Delivery, IdMap};

use crate::metrics::Sample;
use crate::outbox::Outbox;
use crate::session::Outgoing;

/// How many lanes there are: enough that a few busy rooms rarely share
/// one on any number of cores.
const LANES: usize = 64;
const _: () = assert!(LANES <= 256, "a stripe is a byte");

/// The rooms' lanes (see the [module docs](self)).
#[derive(Debug)]
pub struct Fanout {
    lanes: Box<[Lane]>,
}

/// Aligned to two cache lines, so that two lanes busy on two cores never
/// share one (the prefetcher pulls lines in pairs).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Lane {
    /// The next turn to give out: taken with the hub held, so turns follow
    /// the chat's order.
    next: AtomicU64,
    state: Mutex<LaneState>,
    /// Signalled when a turn ends and someone waits.
    turn_ended: Condvar,
}

#[derive(Debug, Default)]
struct LaneState {
    /// The turn being served (or next to be).
    serving: u64,
    /// How many wait for their turn (so that ending one costs no system call
    /// when nobody does).
    waiting: usize,
    /// The outboxes of the members of the lane's rooms.
    members: IdMap<Outbox>,
}

/// Which lane a room takes (a byte: every session keeps one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stripe(u8);

impl Stripe {
    /// The lane of `room`: the same for the same name, every time.
    pub fn of(room: &str) -> Self {
        let mut hasher = DefaultHasher::new();
        room.hash(&mut hasher);
        Self((hasher.finish() % LANES as u64) as u8)
    }

    fn lane(self) -> usize {
        usize::from(self.0)
    }
}

/// A place in one lane's order (or in every lane's), taken with the hub held.
/// It must be waited for: dropped unused, it still waits for its turn and
/// passes it on, so that the lane does not stop.
#[must_use = "a turn holds up its lane until it is waited for"]
pub struct Turn<'a> {
    fanout: &'a Fanout,
    /// `None` once waited for.
    places: Option<Places>,
}

/// Where a [`Turn`] stands.
enum Places {
    /// This turn of this lane.
    One(usize, u64),
    /// These turns of every lane, in lane order.
    Every(Vec<u64>),
}

/// A turn being served: the output is handed out while it is held, and the
/// next turn of its lane(s) starts when it is dropped.
#[must_use = "the room is ordered only while this is held"]
pub struct Held<'a> {
    fanout: &'a Fanout,
    lanes: Lanes<'a>,
}

enum Lanes<'a> {
    One(usize, MutexGuard<'a, LaneState>),
    Every(Vec<MutexGuard<'a, LaneState>>),
}

impl Fanout {
    /// The lanes, no turn taken, no members.
    pub fn new() -> Self {
        Self {
            lanes: (0..LANES).map(|_| Lane::default()).collect(),
        }
    }

    /// Takes the next turn of `stripe`'s lane. Call it with the hub held.
    pub fn turn(&self, stripe: Stripe) -> Turn<'_> {
        Turn {
            fanout: self,
            places: Some(Places::One(stripe.lane(), self.take_place(stripe.lane()))),
        }
    }

    /// Takes the next turn of every lane, for output that spans rooms
    /// (another node's members, all gone at once). Call it with the hub held.
    pub fn turn_of_every_room(&self) -> Turn<'_> {
        Turn {
            fanout: self,
            places: Some(Places::Every(
                (0..self.lanes.len())
                    .map(|lane| self.take_place(lane))
                    .collect(),
            )),
        }
    }

    fn take_place(&self, lane: usize) -> u64 {
        self.lanes[lane].next.fetch_add(1, Ordering::Relaxed)
    }

    /// Waits for the turns at `places`, in lane order, and holds them.
    fn serve_all(&self, places: Places) -> Held<'_> {
        let lanes = match places {
            Places::One(lane, turn) => Lanes::One(lane, self.serve(lane, turn)),
            Places::Every(turns) => Lanes::Every(
                turns
                    .into_iter()
                    .enumerate()
                    .map(|(lane, turn)| self.serve(lane, turn))
                    .collect(),
            ),
        };
        Held {
            fanout: self,
            lanes,
        }
    }

    /// Waits for `turn` in `lane` and holds the lane's state.
    fn serve(&self, lane: usize, turn: u64) -> MutexGuard<'_, LaneState> {
        let lane = &self.lanes[lane];
        // A panic while a turn was held leaves no map half-changed (an
        // insert or a remove is whole), so a poisoned lock is still fine.
        let mut state = lane.state.lock().unwrap_or_else(PoisonError::into_inner);
        while state.serving != turn {
            state.waiting += 1;
            state = lane
                .turn_ended
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.waiting -= 1;
        }
        state
    }
}

impl Default for Fanout {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Turn<'a> {
    /// Waits for the turn (call it with the hub let go), then holds it.
    pub fn wait(mut self) -> Held<'a> {
        let places = self.places.take().expect("a turn is waited for once");
        self.fanout.serve_all(places)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if let Some(places) = self.places.take() {
            drop(self.fanout.serve_all(places));
        }
    }
}

impl Held<'_> {
    /// The outbox of `id`, a member of a held room.
    pub fn outbox(&self, id: ClientId) -> Option<&Outbox> {
        match &self.lanes {
            Lanes::One(_, state) => state.members.get(&id),
            Lanes::Every(all) => all.iter().find_map(|state| state.members.get(&id)),
        }
    }

    /// Hands each delivery to its recipients' outboxes (a full one closes:
    /// see [`Outbox::put`]), but for `me`'s, which come back in order for
    /// the caller to deliver itself. Also returns how many outboxes got one.
    pub fn put(
        &self,
        deliveries: Vec<Delivery>,
        me: Option<ClientId>,
        sample: Option<Arc<Sample>>,
        capacity: usize,
    ) -> (Vec<Outgoing>, u64) {
        let (mut mine, mut put) = (Vec::new(), 0);
        for delivery in deliveries {
            for &recipient in delivery.to.iter() {
                let outgoing = Outgoing {
                    message: delivery.message.clone(),
                    sample: sample.clone(),
                };
                if Some(recipient) == me {
                    mine.push(outgoing);
                } else if let Some(to) = self.outbox(recipient) {
                    let _ = to.put(outgoing, capacity);
                    put += 1;
                }
            }
        }
        (mine, put)
    }

    /// `id` joined the held room (a turn of its room's lane, from
    /// [`Fanout::turn`]): its room's output reaches `outbox` from now on.
    pub fn enter(&mut self, id: ClientId, outbox: Outbox) {
        debug_assert!(
            matches!(self.lanes, Lanes::One(..)),
            "a member enters its own room"
        );
        if let Lanes::One(_, state) = &mut self.lanes {
            state.members.insert(id, outbox);
        }
    }

    /// `id` left its room, a held one.
    pub fn leave(&mut self, id: ClientId) {
        match &mut self.lanes {
            Lanes::One(_, state) => {
                state.members.remove(&id);
            }
            Lanes::Every(all) => all.iter_mut().for_each(|state| {
                state.members.remove(&id);
            }),
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let end = |lane: usize, mut state: MutexGuard<'_, LaneState>| {
            state.serving += 1;
            let waiting = state.waiting > 0;
            drop(state);
            if waiting {
                self.fanout.lanes[lane].turn_ended.notify_all();
            }
        };
        match mem::replace(&mut self.lanes, Lanes::Every(Vec::new())) {
            Lanes::One(lane, state) => end(lane, state),
            Lanes::Every(all) => all
                .into_iter()
                .enumerate()
                .for_each(|(lane, state)| end(lane, state)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A lane other than `stripe`'s.
    fn another(stripe: Stripe) -> Stripe {
        (0..)
            .map(|i| Stripe::of(&format!("room-{i}")))
            .find(|s| *s != stripe)
            .expect("another lane")
    }

    #[test]
    fn a_room_always_takes_the_same_lane_and_rooms_spread() {
        assert_eq!(Stripe::of("lobby"), Stripe::of("lobby"));
        let used: std::collections::HashSet<usize> = (0..1000)
            .map(|i| Stripe::of(&format!("room-{i}")).lane())
            .collect();
        assert_eq!(used.len(), LANES, "1000 rooms use every lane");
    }

    #[test]
    fn a_member_is_found_in_its_room_from_joining_to_leaving() {
        let fanout = Fanout::new();
        let lobby = Stripe::of("lobby");
        let id = ClientId(7);
        fanout.turn(lobby).wait().enter(id, Outbox::new());
        assert!(fanout.turn(lobby).wait().outbox(id).is_some());
        assert!(fanout.turn(another(lobby)).wait().outbox(id).is_none());
        let every = fanout.turn_of_every_room().wait();
        assert!(every.outbox(id).is_some(), "and across them all");
        drop(every);
        fanout.turn(lobby).wait().leave(id);
        assert!(fanout.turn_of_every_room().wait().outbox(id).is_none());
    }

    #[test]
    fn turns_are_served_in_the_order_taken_and_other_lanes_do_not_wait() {
        let fanout = &Fanout::new();
        let busy = Stripe::of("busy");
        let other = another(busy);
        // Taken in this order, as the hub would give them out.
        let first = fanout.turn(busy);
        let second = fanout.turn(busy);
        let elsewhere = fanout.turn(other);
        let spanning = fanout.turn_of_every_room();
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::channel();
            let (tx2, tx3) = (tx.clone(), tx.clone());
            scope.spawn(move || {
                let _held = second.wait();
                tx.send("second").expect("send");
            });
            scope.spawn(move || {
                let _held = elsewhere.wait();
                tx2.send("elsewhere").expect("send");
            });
            scope.spawn(move || {
                let _held = spanning.wait();
                tx3.send("spanning").expect("send");
            });
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("elsewhere"));
            // Not yet: the first turn of the busy lane is not even served.
            // (A check of absence: on a slow machine it can only pass.)
            assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
            let held = first.wait();
            assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
            drop(held);
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("second"));
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("spanning"));
        });
    }

    #[test]
    fn a_turn_dropped_unused_passes_its_place_on() {
        let fanout = Fanout::new();
        let lobby = Stripe::of("lobby");
        let first = fanout.turn(lobby);
        let second = fanout.turn(lobby);
        drop(first);
        drop(second.wait());
        drop(fanout.turn_of_every_room());
        drop(fanout.turn(lobby).wait());
    }
}
