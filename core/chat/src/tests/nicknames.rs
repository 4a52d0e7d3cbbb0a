//! Confusable nicknames ([`crate::nick`]) as clients see them.

use proptest::prelude::*;

use super::*;

fn with_alice() -> Chat {
    let mut chat = immediate();
    join(&mut chat, 1, "lobby");
    join(&mut chat, 2, "lobby");
    chat.join(ClientId(3), addr(3), "lobby", Format::Json, at(0))
        .expect("room");
    chat.input(ClientId(1), "/nick alice", at(1));
    chat
}

#[test]
fn a_lookalike_of_someone_in_the_room_is_refused() {
    let mut chat = with_alice();
    let out = chat.input(ClientId(2), "/nick aIice", at(2));
    assert_eq!(
        texts(&out, 2),
        ["! nickname 'aIice' looks too much like 'alice', who is in #lobby"]
    );
    assert!(texts(&out, 1).is_empty());
    let out = chat.input(ClientId(3), "/nick a1ice", at(2));
    assert_eq!(
        texts(&out, 3),
        [
            r#"{"type":"error","room":"lobby","from":null,"text":"nickname 'a1ice' looks too much like 'alice', who is in #lobby","ts":2000}"#
        ]
    );
    for lookalike in ["ALlCE", "al1ce", "alIce"] {
        let out = chat.input(ClientId(2), &format!("/nick {lookalike}"), at(2));
        assert_eq!(out.deliveries.len(), 1, "{lookalike}");
    }
    // Same letters in another case: taken, as before.
    assert_eq!(
        texts(&chat.input(ClientId(2), "/nick Alice", at(2)), 2),
        ["! nickname 'Alice' is taken in #lobby"]
    );
    assert_eq!(chat.nick(ClientId(2)), Some("guest-2"));
}

#[test]
fn different_names_own_lookalikes_and_other_rooms_are_fine() {
    let mut chat = with_alice();
    let out = chat.input(ClientId(2), "/nick alice2", at(2));
    assert_eq!(texts(&out, 1), ["* guest-2 is now known as alice2"]);
    // Alice may restyle her own name.
    let out = chat.input(ClientId(1), "/nick aIice", at(2));
    assert_eq!(texts(&out, 2), ["* alice is now known as aIice"]);
    // The new name's skeleton is what others are checked against.
    assert_eq!(
        texts(&chat.input(ClientId(3), "/nick alice", at(2)), 3)[0],
        r#"{"type":"error","room":"lobby","from":null,"text":"nickname 'alice' looks too much like 'aIice', who is in #lobby","ts":2000}"#
    );
    join(&mut chat, 4, "rust");
    let out = chat.input(ClientId(4), "/nick a1ice", at(2));
    assert_eq!(texts(&out, 4), ["* guest-4 is now known as a1ice"]);
    // Once she leaves, the name is free.
    chat.leave(ClientId(1), at(3));
    let out = chat.input(ClientId(3), "/nick alice", at(3));
    assert_eq!(
        chat.nick(ClientId(3)),
        Some("alice"),
        "{:?}",
        texts(&out, 3)
    );
}

#[test]
fn guests_keep_their_names_and_no_one_can_look_like_one() {
    let mut chat = with_alice();
    for reserved in ["gue5t-2", "GUEST_2", "guest.9", "guest-2"] {
        assert_eq!(
            texts(
                &chat.input(ClientId(1), &format!("/nick {reserved}"), at(2)),
                1
            ),
            ["! nicknames that look like 'guest-N' are reserved for guests"],
            "{reserved}"
        );
    }
    // Guest numbers go on, clashing with nobody.
    assert_eq!(
        texts(&join(&mut chat, 10, "lobby"), 10)[0],
        "* Welcome to #lobby, guest-4. Type /help for commands."
    );
    let out = chat.input(ClientId(1), "/nick guest4", at(2));
    assert_eq!(texts(&out, 10), ["* alice is now known as guest4"]);
}

proptest! {
    /// Whatever nicknames are asked for, the skeletons in a room stay
    /// distinct.
    #[test]
    fn skeletons_in_a_room_stay_distinct(
        asks in prop::collection::vec((0u64..4, "[a-zA-Z0-9._|-]{1,6}"), 0..40)
    ) {
        let mut chat = Chat::new(ChatConfig {
            presence_delay: Duration::ZERO,
            rate: RateLimit { burst: 1000, per_second: 1.0 },
            ..ChatConfig::default()
        });
        for id in 0..4 {
            join(&mut chat, id, "lobby");
        }
        for (id, nick) in asks {
            chat.input(ClientId(id), &format!("/nick {nick}"), at(id));
            let skeletons: std::collections::HashSet<String> =
                (0..4).filter_map(|id| chat.nick(ClientId(id))).map(skeleton).collect();
            prop_assert_eq!(skeletons.len(), 4);
        }
    }
}
