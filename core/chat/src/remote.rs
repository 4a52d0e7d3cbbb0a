//! Rooms shared by several server nodes: what members on other nodes do
//! comes in as [`RemoteEvent`]s, in one order that every node sees (the
//! server reads them from a shared log, such as a Redis stream), and is
//! applied with [`Chat::remote`]. What local members do comes out as
//! [`Output::appended`] and [`Output::presence`], for the server to append
//! to that log. Still sans-io: no node id is known here beyond the numbers
//! the caller passes.
//!
//! # Presence
//!
//! A remote member is known by its [`RemoteId`] (node and client), its room
//! and its nickname. `/who` lists local members, then remote ones; joins,
//! leaves and nickname changes of remote members are announced to the local
//! members of the room (under the same `presence_limit`, counting both).
//! [`Chat::drop_node`] forgets every member of a node that stopped
//! answering, with leave notices.
//!
//! # Nicknames
//!
//! A `/nick` is checked against every nickname in the room, local and
//! remote, so a name taken on another node is refused as it is here. Two
//! nodes may still accept the same name at once, before either hears of the
//! other. Then the claim that comes first in the shared order wins, on
//! every node alike:
//!
//! - a remote claim of a name that a remote member, or a local member whose
//!   claim is already confirmed (seen in the shared order, see
//!   [`Chat::confirm_nick`]), holds came later: it is ignored here (its own
//!   node renames its member, and that rename arrives in turn);
//! - a remote claim of a name that a local member claimed but is not yet
//!   confirmed came first: the local member loses, is told, and becomes a
//!   fresh `guest-N` (announced and reported, so the other nodes follow).

use super::*;

/// A member of the chat on another node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemoteId {
    /// The node it is connected to.
    pub node: u64,
    /// Its client id on that node.
    pub client: u64,
}

/// Something a member on another node did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteEvent {
    /// It joined a room (or is there already, when a node loads the
    /// presence of the others at start).
    Joined {
        /// The room.
        room: String,
        /// Its nickname.
        nick: String,
    },
    /// It left.
    Left,
    /// It claimed a new nickname.
    Renamed {
        /// The new nickname.
        nick: String,
    },
    /// It said something (a message or an action).
    Said(Appended),
}

/// What the chat knows of a remote member.
#[derive(Debug, Clone)]
pub(crate) struct RemoteMember {
    pub(crate) room: String,
    pub(crate) name: Name,
}

impl Chat {
    /// Applies what a member on another node did: its room's local members
    /// are told, its presence is updated, and what it said is kept in the
    /// room's history (and handed out as [`Output::appended`]).
    pub fn remote(&mut self, who: RemoteId, event: RemoteEvent, now: Now) -> Output {
        let mut out = Output::default();
        match event {
            RemoteEvent::Joined { room, nick } => {
                if let Some(old) = self.remote_members.get(&who) {
                    if old.room == room {
                        // The same member under another name (a presence
                        // snapshot that overlapped the log): a rename.
                        if old.name.nick() != nick {
                            self.announce_before(&mut out, &room, now);
                            self.rename_remote(&mut out, who, nick, now);
                        }
                        return out;
                    }
                    // Elsewhere now: its old room hears that it left (at once
                    // only in its own output, which goes to the new room's
                    // lane; so, as before, not at all with no delay).
                    let _ = self.remote_leave(who, now, true);
                }
                if !self.make_room(&room) {
                    return out;
                }
                let r = self.rooms.entry(self.room_key(&room)).or_default();
                r.remote.push(who);
                r.last_active = now.mono;
                let announced = r.members.len() + r.remote.len() <= self.config.presence_limit;
                if announced {
                    let event = PresenceEvent {
                        joined: true,
                        told: true,
                        nick: nick.clone(),
                        local: None,
                    };
                    self.record_presence(&mut out, &room, event, now);
                }
                self.remote_members.insert(
                    who,
                    RemoteMember {
                        room,
                        name: Name::new(&nick),
                    },
                );
            }
            RemoteEvent::Left => out = self.remote_leave(who, now, true),
            RemoteEvent::Renamed { nick } => self.remote_rename(&mut out, who, nick, now),
            RemoteEvent::Said(appended) => {
                if !self.make_room(&appended.room) {
                    return out;
                }
                self.announce_before(&mut out, &appended.room, now);
                let limit = self.config.history;
                let room = self.room_key(&appended.room);
                let r = self.rooms.entry(room.clone()).or_default();
                r.last_active = now.mono;
                r.push_history(appended.entry.clone(), limit);
                self.notify_room(&mut out, &room, &Notice::Said(&appended.entry), now);
                out.appended = Some(appended);
            }
        }
        out
    }

    /// Forgets every member of `node` (it stopped answering), with leave
    /// notices to the local members of their rooms (at once, or with other
    /// joins and leaves: see [`ChatConfig::presence_delay`]).
    pub fn drop_node(&mut self, node: u64, now: Now) -> Output {
        let mut gone: Vec<RemoteId> = self
            .remote_members
            .keys()
            .filter(|r| r.node == node)
            .copied()
            .collect();
        gone.sort();
        let mut out = Output::default();
        for who in gone {
            let left = self.remote_leave(who, now, true);
            out.deliveries.extend(left.deliveries);
        }
        out
    }

    /// The room a member of another node is in, if the chat knows it.
    pub fn remote_room(&self, who: RemoteId) -> Option<&str> {
        self.remote_members.get(&who).map(|m| m.room.as_str())
    }

    /// The nodes that have members here.
    pub fn remote_nodes(&self) -> Vec<u64> {
        let mut nodes: Vec<u64> = self.remote_members.keys().map(|r| r.node).collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }

    /// The shared order has reached a local member's claim of `nick`: from
    /// now on it wins against any other claim (see the module docs).
    pub fn confirm_nick(&mut self, id: ClientId, nick: &str) {
        if let Some(member) = self.members.get_mut(&id) {
            if member.name.nick() == nick {
                member.unconfirmed = false;
            }
        }
    }

    /// Makes `room` if it does not exist and there is space for it.
    fn make_room(&mut self, room: &str) -> bool {
        if self.rooms.contains_key(room) {
            return true;
        }
        if self.rooms.len() >= self.config.max_rooms {
            self.forget_an_empty_room();
        }
        if self.rooms.len() >= self.config.max_rooms {
            return false;
        }
        self.rooms.insert(Arc::from(room), Room::default());
        true
    }

    /// Forgets a member of another node; its room is told if `told`.
    fn remote_leave(&mut self, who: RemoteId, now: Now, told: bool) -> Output {
        let mut out = Output::default();
        let Some(member) = self.remote_members.remove(&who) else {
            return out;
        };
        let Some(r) = self.rooms.get_mut(member.room.as_str()) else {
            return out;
        };
        let announced = r.members.len() + r.remote.len() <= self.config.presence_limit;
        r.remote.retain(|&m| m != who);
        r.last_active = now.mono;
        if announced && told {
            let event = PresenceEvent {
                joined: false,
                told,
                nick: member.name.nick().to_owned(),
                local: None,
            };
            self.record_presence(&mut out, &member.room, event, now);
        }
        out
    }

    fn remote_rename(&mut self, out: &mut Output, who: RemoteId, nick: String, now: Now) {
        let Some(member) = self.remote_members.get(&who) else {
            return;
        };
        if member.name.nick() == nick {
            return;
        }
        let Some(r) = self.rooms.get(member.room.as_str()) else {
            return;
        };
        let new_skeleton = skeleton(&nick);
        let clashes = |other: &str, other_skeleton: &str| {
            other.eq_ignore_ascii_case(&nick) || other_skeleton == new_skeleton
        };
        let remote_clash = r
            .remote
            .iter()
            .filter(|&&m| m != who)
            .filter_map(|m| self.remote_members.get(m))
            .any(|m| clashes(m.name.nick(), m.name.skeleton()));
        let local_clash = r
            .members
            .iter()
            .filter_map(|id| self.members.get(id).map(|m| (*id, m)))
            .find(|(_, m)| clashes(m.name.nick(), m.name.skeleton()))
            .map(|(id, m)| (id, m.unconfirmed));
        match local_clash {
            // Later in the shared order than a name held: ignored here.
            _ if remote_clash => return,
            Some((_, false)) => return,
            // Earlier than a local claim not yet confirmed: the local member
            // loses and becomes a guest.
            Some((loser, true)) => {
                let lost = self.members.get(&loser).map(|m| m.name.nick().to_owned());
                let guest = self.next_guest();
                self.set_nick(out, loser, guest.clone(), now);
                let error = format!(
                    "nickname '{}' was claimed on another server first; you are now {guest}",
                    lost.unwrap_or_default()
                );
                self.notify(out, &[loser], &Notice::Error(&error), now);
            }
            None => {}
        }
        if let Some(room) = self.remote_members.get(&who).map(|m| m.room.clone()) {
            self.announce_before(out, &room, now);
        }
        self.rename_remote(out, who, nick, now);
    }

    /// Gives a member of another node its new nickname (already checked)
    /// and tells its room's local members.
    fn rename_remote(&mut self, out: &mut Output, who: RemoteId, nick: String, now: Now) {
        let Some(member) = self.remote_members.get_mut(&who) else {
            return;
        };
        let old = std::mem::replace(&mut member.name, Name::new(&nick));
        let old = old.nick().to_owned();
        let locals = self
            .rooms
            .get(member.room.as_str())
            .map(|r| r.members.clone())
            .unwrap_or_default();
        self.notify(
            out,
            &locals,
            &Notice::Nick {
                old: &old,
                new: &nick,
            },
            now,
        );
    }
}
