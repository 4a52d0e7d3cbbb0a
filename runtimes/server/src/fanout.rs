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
//! So a session takes its room's lock here *before* it lets the hub go, and
//! holds it while it hands the output out: the next output for the same room
//! waits for it, as it must, and other rooms take other locks. Rooms are
//! spread over a fixed set of locks by a hash of their name (lock striping):
//! nothing is made or freed as rooms come and go, and two rooms that share a
//! lock only take turns, as every room did behind the one hub.
//!
//! Each lock also holds the outboxes of its rooms' members, so that finding
//! a thousand recipients' outboxes is done under the room's lock too, not
//! the hub's. A member's outbox goes in when it joins and out when it
//! leaves, under the lock, in the room's order like its other output.
//!
//! The order in which locks are taken is always the hub, then the room
//! locks (all of them in index order, when one output spans rooms); none is
//! held while the hub is taken.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tincan_chat::ClientId;

use crate::outbox::Outbox;

/// How many room locks there are: enough that a few busy rooms rarely
/// share one on any number of cores.
const STRIPES: usize = 64;

/// The outboxes of the members of the rooms that share one lock.
type Members = HashMap<ClientId, Outbox>;

/// The room locks (see the [module docs](self)).
#[derive(Debug)]
pub struct Fanout {
    stripes: Box<[Mutex<Members>]>,
}

/// Which of the [`Fanout`] locks a room takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stripe(usize);

impl Stripe {
    /// The lock of `room`: the same for the same name, every time.
    pub fn of(room: &str) -> Self {
        let mut hasher = DefaultHasher::new();
        room.hash(&mut hasher);
        Self((hasher.finish() % STRIPES as u64) as usize)
    }
}

/// A room's lock, held while its output is handed out.
#[must_use = "the room is ordered only while this is held"]
pub enum Held<'a> {
    /// One room's lock.
    Room(MutexGuard<'a, Members>),
    /// Every room's.
    Every(Vec<MutexGuard<'a, Members>>),
}

impl Held<'_> {
    /// The outbox of `id`, a member of a held room.
    pub fn outbox(&self, id: ClientId) -> Option<&Outbox> {
        match self {
            Held::Room(members) => members.get(&id),
            Held::Every(all) => all.iter().find_map(|members| members.get(&id)),
        }
    }

    /// `id` joined the held room (held with [`Fanout::room`], its room's
    /// stripe): its room's output reaches `outbox` from now on.
    pub fn enter(&mut self, id: ClientId, outbox: Outbox) {
        debug_assert!(
            matches!(self, Held::Room(_)),
            "a member enters its own room"
        );
        if let Held::Room(members) = self {
            members.insert(id, outbox);
        }
    }

    /// `id` left its room, a held one.
    pub fn leave(&mut self, id: ClientId) {
        match self {
            Held::Room(members) => {
                members.remove(&id);
            }
            Held::Every(all) => all.iter_mut().for_each(|members| {
                members.remove(&id);
            }),
        }
    }
}

impl Fanout {
    /// The room locks, none held, no members.
    pub fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::default()).collect(),
        }
    }

    /// Takes the lock of the room at `stripe`. Call it with the hub still
    /// held.
    pub fn room(&self, stripe: Stripe) -> Held<'_> {
        Held::Room(self.take(stripe.0))
    }

    /// Takes every room's lock, in index order, for output that spans rooms
    /// (another node's members, all gone at once). Call it with the hub still
    /// held.
    pub fn every_room(&self) -> Held<'_> {
        Held::Every((0..self.stripes.len()).map(|i| self.take(i)).collect())
    }

    /// A panic while handing out leaves no map half-changed (an insert or
    /// a remove is whole), so a poisoned lock is still fine.
    fn take(&self, index: usize) -> MutexGuard<'_, Members> {
        self.stripes[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Fanout {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_room_always_takes_the_same_lock_and_rooms_spread() {
        assert_eq!(Stripe::of("lobby"), Stripe::of("lobby"));
        let used: std::collections::HashSet<usize> = (0..1000)
            .map(|i| Stripe::of(&format!("room-{i}")).0)
            .collect();
        assert_eq!(used.len(), STRIPES, "1000 rooms use every lock");
    }

    #[test]
    fn a_member_is_found_under_its_room_lock_from_joining_to_leaving() {
        let fanout = Fanout::new();
        let lobby = Stripe::of("lobby");
        let other = (0..)
            .map(|i| Stripe::of(&format!("room-{i}")))
            .find(|s| *s != lobby)
            .expect("another lock");
        let id = ClientId(7);
        fanout.room(lobby).enter(id, Outbox::new());
        assert!(fanout.room(lobby).outbox(id).is_some());
        assert!(fanout.room(other).outbox(id).is_none());
        assert!(
            fanout.every_room().outbox(id).is_some(),
            "and across them all"
        );
        fanout.room(lobby).leave(id);
        assert!(fanout.every_room().outbox(id).is_none());
    }

    #[test]
    fn a_held_room_holds_up_its_next_output_and_no_other_room() {
        let fanout = &Fanout::new();
        let busy = Stripe::of("busy");
        let other = (0..)
            .map(|i| format!("other-{i}"))
            .map(|name| Stripe::of(&name))
            .find(|s| *s != busy)
            .expect("another lock");
        std::thread::scope(|scope| {
            let held = fanout.room(busy);
            let (tx, rx) = mpsc::channel();
            scope.spawn(move || {
                let _other = fanout.room(other);
                tx.send("other").expect("send");
                let _same = fanout.room(busy);
                tx.send("same").expect("send");
            });
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("other"));
            // Bounded: the same room must still be waiting while held.
            assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
            drop(held);
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("same"));
        });
        // Every room's lock, then any one again: nothing stays held.
        drop(fanout.every_room());
        drop(fanout.room(busy));
    }
}
