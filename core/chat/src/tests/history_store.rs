//! History kept outside the chat: each appended entry is handed out, and a
//! restored history is served to joiners as if it had been said here.

use super::*;

#[test]
fn each_message_and_action_is_handed_out_and_nothing_else() {
    let mut chat = immediate();
    join(&mut chat, 1, "rust");
    let said = chat.input(ClientId(1), "hello", at(1));
    assert_eq!(
        said.appended,
        Some(Appended {
            room: "rust".into(),
            entry: Entry {
                kind: Kind::Message,
                from: "guest-1".into(),
                text: "hello".into(),
                ts: 1000,
            },
        })
    );
    let acted = chat.input(ClientId(1), "/me waves", at(2));
    assert_eq!(acted.appended.map(|a| a.entry.kind), Some(Kind::Action));
    for command in ["/who", "/nick bob", "/help", "/nope", "  "] {
        assert_eq!(chat.input(ClientId(1), command, at(3)).appended, None);
    }
    assert_eq!(join(&mut chat, 2, "rust").appended, None);
}

#[test]
fn a_message_is_handed_out_even_without_history() {
    // Other nodes need it to deliver it; a store keeps none of it.
    let mut chat = Chat::new(ChatConfig {
        presence_delay: Duration::ZERO,
        history: 0,
        ..ChatConfig::DEFAULT
    });
    join(&mut chat, 1, "lobby");
    assert!(chat.input(ClientId(1), "hi", at(1)).appended.is_some());
}

#[test]
fn a_restored_history_is_served_capped_at_the_limit() {
    let mut chat = Chat::new(ChatConfig {
        presence_delay: Duration::ZERO,
        history: 2,
        max_rooms: 1,
        ..ChatConfig::DEFAULT
    });
    let entry = |text: &str, ts| Entry {
        kind: Kind::Message,
        from: "alice".into(),
        text: text.into(),
        ts,
    };
    assert!(chat.restore(
        "lobby",
        [entry("one", 1), entry("two", 2), entry("three", 3)]
    ));
    assert!(!chat.restore("other", [entry("x", 4)]), "no room for it");
    let out = join(&mut chat, 1, "lobby");
    assert_eq!(&texts(&out, 1)[1..], ["alice: two", "alice: three"]);
    let said = chat.input(ClientId(1), "four", at(5));
    assert!(said.appended.is_some());
    assert_eq!(
        &texts(&join(&mut chat, 2, "lobby"), 2)[1..],
        ["alice: three", "guest-1: four"]
    );
}
