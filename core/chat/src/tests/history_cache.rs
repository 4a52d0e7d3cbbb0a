//! A room's history is encoded once per format, not once per join.

use super::*;

/// The address of the frame bytes: equal when two deliveries share them.
fn shared(out: &Output, id: u64) -> Vec<*const u8> {
    out.deliveries
        .iter()
        .filter(|d| d.to.contains(&ClientId(id)))
        .map(|d| d.message.frame().as_ptr())
        .collect()
}

#[test]
fn n_joins_encode_the_history_once_per_format() {
    let mut chat = immediate();
    join(&mut chat, 1, "lobby");
    chat.input(ClientId(1), "one", at(1));
    chat.input(ClientId(1), "/me two", at(2));
    assert_eq!(chat.history_encodings, 0);
    let mut plain = Vec::new();
    let mut json = Vec::new();
    for id in 2..12 {
        let format = if id % 2 == 0 {
            Format::Plain
        } else {
            Format::Json
        };
        let out = chat
            .join(ClientId(id), addr(id), "lobby", format, at(3 + id))
            .expect("room");
        // The welcome, then the history.
        let frames = shared(&out, id);
        match format {
            Format::Plain => plain.push(frames[1..].to_vec()),
            Format::Json => json.push(frames[1..].to_vec()),
        }
        if id == 2 {
            assert_eq!(&texts(&out, id)[1..], ["guest-1: one", "* guest-1 two"]);
        }
        if id == 3 {
            // Its `ts` is the newest entry's, not the join's.
            assert_eq!(
                texts(&out, id)[1],
                r#"{"type":"history","room":"lobby","from":null,"text":"","ts":2000,"messages":[{"type":"message","room":"lobby","from":"guest-1","text":"one","ts":1000},{"type":"action","room":"lobby","from":"guest-1","text":"two","ts":2000}]}"#
            );
        }
    }
    assert_eq!(chat.history_encodings, 2);
    // Every joiner got the very same bytes.
    assert!(plain.iter().all(|frames| frames == &plain[0]));
    assert!(json.iter().all(|frames| frames == &json[0]));
    assert_eq!(plain[0].len(), 2);
    assert_eq!(json[0].len(), 1);

    // A new message drops the cache: the next joiner sees it.
    chat.input(ClientId(1), "three", at(20));
    let out = join(&mut chat, 20, "lobby");
    assert_eq!(
        &texts(&out, 20)[1..],
        ["guest-1: one", "* guest-1 two", "guest-1: three"]
    );
    assert_eq!(chat.history_encodings, 3);
    join(&mut chat, 21, "lobby");
    assert_eq!(chat.history_encodings, 3);
}

#[test]
fn each_room_has_its_own_cache_and_empty_history_encodes_nothing() {
    let mut chat = immediate();
    join(&mut chat, 1, "a");
    join(&mut chat, 2, "b");
    join(&mut chat, 3, "b");
    assert_eq!(chat.history_encodings, 0);
    chat.input(ClientId(1), "in a", at(1));
    chat.input(ClientId(2), "in b", at(1));
    assert_eq!(texts(&join(&mut chat, 4, "a"), 4)[1], "guest-1: in a");
    assert_eq!(texts(&join(&mut chat, 5, "b"), 5)[1], "guest-2: in b");
    assert_eq!(chat.history_encodings, 2);
    // A refused message changes nothing.
    chat.input(ClientId(1), "a\nb", at(2));
    join(&mut chat, 6, "a");
    assert_eq!(chat.history_encodings, 2);
}
