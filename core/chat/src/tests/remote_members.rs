//! Members on other nodes: presence, their messages, node loss, and
//! nickname claims resolved by the shared order.

use super::*;

fn them(client: u64) -> RemoteId {
    RemoteId { node: 9, client }
}

fn remote_join(chat: &mut Chat, client: u64, room: &str, nick: &str) -> Output {
    let event = RemoteEvent::Joined {
        room: room.into(),
        nick: nick.into(),
    };
    chat.remote(them(client), event, at(1))
}

#[test]
fn remote_members_are_announced_listed_and_heard() {
    let mut chat = immediate();
    join(&mut chat, 1, "lobby");
    let joined = remote_join(&mut chat, 5, "lobby", "guest-100");
    assert_eq!(texts(&joined, 1), ["* guest-100 joined #lobby"]);
    assert_eq!(joined.presence, None, "not reported back to the log");
    assert_eq!(
        texts(&chat.input(ClientId(1), "/who", at(2)), 1),
        ["* In #lobby (2): guest-1, guest-100"]
    );
    let said = Appended {
        room: "lobby".into(),
        entry: Entry {
            kind: Kind::Message,
            from: "guest-100".into(),
            text: "hi".into(),
            ts: 5,
        },
    };
    let heard = chat.remote(them(5), RemoteEvent::Said(said.clone()), at(3));
    assert_eq!(texts(&heard, 1), ["guest-100: hi"]);
    assert_eq!(heard.appended, Some(said));
    // Kept for late joiners here.
    assert_eq!(texts(&join(&mut chat, 2, "lobby"), 2)[1], "guest-100: hi");
    let renamed = chat.remote(them(5), RemoteEvent::Renamed { nick: "zoe".into() }, at(4));
    assert!(texts(&renamed, 1).contains(&"* guest-100 is now known as zoe".to_owned()));
    // A local claim of a remote name is refused like a local one.
    assert_eq!(
        texts(&chat.input(ClientId(1), "/nick ZOE", at(5)), 1),
        ["! nickname 'ZOE' is taken in #lobby"]
    );
    assert_eq!(chat.remote_room(them(5)), Some("lobby"));
    let left = chat.remote(them(5), RemoteEvent::Left, at(6));
    assert_eq!(texts(&left, 1), ["* zoe left #lobby"]);
    assert_eq!(chat.remote_room(them(5)), None);
}

#[test]
fn a_lost_node_takes_its_members_with_leave_notices() {
    let mut chat = immediate();
    join(&mut chat, 1, "lobby");
    remote_join(&mut chat, 5, "lobby", "guest-100");
    remote_join(&mut chat, 6, "lobby", "guest-101");
    assert_eq!(chat.remote_nodes(), [9]);
    let gone = chat.drop_node(9, at(2));
    assert_eq!(
        texts(&gone, 1),
        ["* guest-100 left #lobby", "* guest-101 left #lobby"]
    );
    assert!(chat.remote_nodes().is_empty());
}

#[test]
fn local_events_are_reported_for_the_other_nodes() {
    let mut chat = immediate();
    let joined = join(&mut chat, 1, "lobby");
    assert_eq!(
        joined.presence.map(|(_, p)| p),
        Some(Presence::Joined {
            room: "lobby".into(),
            nick: "guest-1".into()
        })
    );
    let renamed = chat.input(ClientId(1), "/nick al", at(1));
    assert_eq!(
        renamed.presence.map(|(_, p)| p),
        Some(Presence::Renamed {
            room: "lobby".into(),
            old: "guest-1".into(),
            new: "al".into()
        })
    );
    assert_eq!(
        chat.leave(ClientId(1), at(2)).presence.map(|(_, p)| p),
        Some(Presence::Left {
            room: "lobby".into(),
            nick: "al".into()
        })
    );
}

#[test]
fn the_first_claim_in_the_shared_order_wins() {
    let mut chat = immediate();
    join(&mut chat, 1, "lobby");
    join(&mut chat, 2, "lobby");
    remote_join(&mut chat, 5, "lobby", "guest-100");
    remote_join(&mut chat, 6, "lobby", "guest-101");
    // Local 1 claims bob; a remote claim of Bob comes first in the order:
    // the local member loses and becomes a guest.
    chat.input(ClientId(1), "/nick bob", at(2));
    let lost = chat.remote(them(5), RemoteEvent::Renamed { nick: "Bob".into() }, at(3));
    let told = texts(&lost, 1);
    assert_eq!(told[0], "* bob is now known as guest-3");
    assert_eq!(
        told[1],
        "! nickname 'bob' was claimed on another server first; you are now guest-3"
    );
    assert_eq!(told[2], "* guest-100 is now known as Bob");
    assert!(
        matches!(lost.presence, Some((ClientId(1), Presence::Renamed { ref new, .. })) if new == "guest-3")
    );
    // Local 2 claims carol and the order confirms it: a later remote claim
    // is ignored here (its node renames its member).
    chat.input(ClientId(2), "/nick carol", at(4));
    chat.confirm_nick(ClientId(2), "carol");
    let ignored = chat.remote(
        them(6),
        RemoteEvent::Renamed {
            nick: "carol".into(),
        },
        at(5),
    );
    assert!(ignored.deliveries.is_empty());
    // A remote claim of a name another remote member holds is ignored too.
    let ignored = chat.remote(them(6), RemoteEvent::Renamed { nick: "bob".into() }, at(5));
    assert!(ignored.deliveries.is_empty());
    assert_eq!(
        texts(&chat.input(ClientId(2), "/who", at(6)), 2),
        ["* In #lobby (4): guest-3, carol, Bob, guest-101"]
    );
}

#[test]
fn reserved_guest_blocks_are_used_in_turn() {
    let mut chat = immediate();
    assert!(!chat.wants_guests(2), "numbers are not shared");
    chat.reserve_guests(1001, 2);
    assert!(!chat.wants_guests(2));
    join(&mut chat, 1, "lobby");
    assert!(chat.wants_guests(2), "half of the block is left");
    chat.reserve_guests(5001, 2);
    assert!(!chat.wants_guests(2));
    for id in 2..=3 {
        join(&mut chat, id, "lobby");
    }
    assert_eq!(chat.nick(ClientId(1)), Some("guest-1001"));
    assert_eq!(chat.nick(ClientId(2)), Some("guest-1002"));
    assert_eq!(chat.nick(ClientId(3)), Some("guest-5001"));
}
