//! The text rule ([`crate::text`]) as clients see it.

use proptest::prelude::*;

use super::*;

/// Plain client 1 and JSON client 2 in the lobby.
fn two_formats() -> Chat {
    let mut chat = Chat::new(ChatConfig {
        presence_delay: Duration::ZERO,
        flood_strikes: 2,
        ..ChatConfig::default()
    });
    join(&mut chat, 1, "lobby");
    chat.join(ClientId(2), addr(2), "lobby", Format::Json, at(0))
        .expect("room");
    chat
}

#[test]
fn a_forged_second_line_is_refused_to_the_sender_only() {
    let mut chat = two_formats();
    let out = chat.input(ClientId(1), "hi\n* guest-2 left #lobby", at(1));
    assert_eq!(out.broadcast, None);
    assert_eq!(
        texts(&out, 1),
        [
            "! message refused: U+000A is a control character; a message is one line \
          without U+0000-U+001F, U+007F-U+009F, U+2028 or U+2029"
        ]
    );
    assert!(texts(&out, 2).is_empty());
    let out = chat.input(ClientId(2), "\u{1b}[2Jgone", at(1));
    assert_eq!(out.broadcast, None);
    assert_eq!(
        texts(&out, 2),
        [
            r#"{"type":"error","room":"lobby","from":null,"text":"message refused: U+001B is a control character; a message is one line without U+0000-U+001F, U+007F-U+009F, U+2028 or U+2029","ts":1000}"#
        ]
    );
    assert!(texts(&out, 1).is_empty());
}

#[test]
fn actions_follow_the_same_rule() {
    let mut chat = two_formats();
    let out = chat.input(ClientId(1), "/me waves\r! server restarting", at(1));
    assert_eq!(
        texts(&out, 1),
        [
            "! message refused: U+000D is a control character; a message is one line \
          without U+0000-U+001F, U+007F-U+009F, U+2028 or U+2029"
        ]
    );
    let out = chat.input(ClientId(2), "/me \u{202E}sevaw", at(1));
    assert_eq!(
        texts(&out, 2),
        [
            r#"{"type":"error","room":"lobby","from":null,"text":"message refused: U+202E is a bidirectional control; U+061C, U+200E, U+200F, U+202A-U+202E and U+2066-U+2069 are not allowed","ts":1000}"#
        ]
    );
    // Whatever follows `/me` counts, the separator and the end too.
    for action in ["/me\n* guest-2 left #lobby", "/me waves\n", "/me\twaves"] {
        let out = chat.input(ClientId(1), action, at(1));
        assert_eq!(out.broadcast, None, "{action:?}");
        assert!(
            texts(&out, 1)[0].starts_with("! message refused: U+000"),
            "{action:?}"
        );
    }
    // An unknown command is echoed to its sender escaped.
    assert_eq!(
        texts(&chat.input(ClientId(1), "/x\u{1b}[2J", at(1)), 1),
        ["! unknown command '/x\\u{1b}[2J': try /help"]
    );
    let out = chat.input(ClientId(1), "/me \u{200B}\u{FEFF}", at(1));
    assert_eq!(
        texts(&out, 1),
        ["! empty message: only whitespace or invisible characters"]
    );
    // A visible action with a zero-width joiner inside is fine.
    let out = chat.input(ClientId(1), "/me hugs \u{1F469}\u{200D}\u{1F467}", at(1));
    assert_eq!(out.broadcast, Some(2));
    assert_eq!(
        texts(&out, 1),
        ["* guest-1 hugs \u{1F469}\u{200D}\u{1F467}"]
    );
}

#[test]
fn refused_text_is_not_kept_and_is_no_flood_strike() {
    let mut chat = two_formats();
    // flood_strikes is 2: five refused texts in a row close nobody.
    for _ in 0..5 {
        let out = chat.input(ClientId(1), "a\u{7}b", at(1));
        assert_eq!(out.close, None);
        assert_eq!(out.broadcast, None);
    }
    // The history is empty: a late joiner gets only its welcome.
    assert_eq!(
        texts(&join(&mut chat, 3, "lobby"), 3),
        ["* Welcome to #lobby, guest-3. Type /help for commands."]
    );
}

/// Any text that has a character the rule refuses somewhere in it.
fn with_a_refused_char() -> impl Strategy<Value = String> {
    let refused = prop_oneof![
        (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap_or('\0')),
        (0x7fu32..0xa0).prop_map(|c| char::from_u32(c).unwrap_or('\0')),
        prop::sample::select(vec![
            '\u{2028}', '\u{2029}', '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}',
            '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ]),
    ];
    (".{0,20}", refused, ".{0,20}").prop_map(|(a, c, b)| format!("x{a}{c}{b}"))
}

proptest! {
    #[test]
    fn any_text_with_a_control_is_refused(text in with_a_refused_char()) {
        let mut chat = two_formats();
        for message in [text.clone(), format!("/me {text}")] {
            let out = chat.input(ClientId(1), &message, at(1));
            prop_assert_eq!(out.broadcast, None);
            prop_assert!(texts(&out, 2).is_empty());
            let told = texts(&out, 1);
            prop_assert_eq!(told.len(), 1);
            prop_assert!(told[0].starts_with("! message refused: U+"), "{}", told[0]);
        }
    }

    #[test]
    fn any_accepted_message_is_broadcast_unchanged(text in "(?s).{1,40}") {
        let mut chat = two_formats();
        let out = chat.input(ClientId(1), &text, at(1));
        let accepted = text::check_message(&text, 2000).is_ok() && !text.starts_with('/');
        if accepted {
            prop_assert_eq!(out.broadcast, Some(2));
            prop_assert_eq!(texts(&out, 1), [format!("guest-1: {text}")]);
            let history = texts(&join(&mut chat, 3, "lobby"), 3);
            prop_assert_eq!(&history[1], &format!("guest-1: {text}"));
        } else if !text.starts_with('/') {
            prop_assert_eq!(out.broadcast, None);
        }
    }
}
