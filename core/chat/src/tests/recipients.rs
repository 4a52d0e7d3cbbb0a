//! What is said reaches the room's members as they are at that moment:
//! the recipients kept per room (split by format) follow every join, leave
//! and change of compression, for what members here say and for what
//! members of other nodes say; and rooms forgotten when empty (two at most
//! here) come back with none kept.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

/// Long and repetitive enough that compressing it always makes it smaller.
const TEXT: &str = "a message long enough that compressing it makes it smaller, smaller, smaller";

const ROOMS: [&str; 3] = ["lobby", "den", "attic"];

#[derive(Debug, Clone, Copy)]
enum Op {
    /// Client `.0` joins room `.1`, in JSON if `.2`.
    Join(u64, usize, bool),
    Leave(u64),
    Say(u64),
    /// A member of another node says something in room `.0`.
    SayFromAfar(usize),
    /// Client `.0` takes compressed frames or not.
    Deflate(u64, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..6, 0..ROOMS.len(), any::<bool>()).prop_map(|(id, room, json)| Op::Join(id, room, json)),
        1 => (0u64..6).prop_map(Op::Leave),
        3 => (0u64..6).prop_map(Op::Say),
        1 => (0..ROOMS.len()).prop_map(Op::SayFromAfar),
        2 => (0u64..6, any::<bool>()).prop_map(|(id, on)| Op::Deflate(id, on)),
    ]
}

/// A member as the test sees it: its room, whether it takes JSON and
/// compressed frames.
#[derive(Debug, Clone, Copy)]
struct Seen {
    room: usize,
    json: bool,
    deflate: bool,
}

proptest! {
    #[test]
    fn what_is_said_reaches_the_room_as_it_is_then(ops in proptest::collection::vec(op(), 1..80)) {
        let mut chat = Chat::new(ChatConfig {
            presence_delay: Duration::ZERO,
            max_rooms: 2,
            ..ChatConfig::DEFAULT
        });
        let mut members: BTreeMap<u64, Seen> = BTreeMap::new();
        // Ten seconds a step: every speaker's tokens are back.
        for (step, op) in ops.into_iter().enumerate() {
            let now = at(10 * step as u64);
            match op {
                Op::Join(id, room, json) if !members.contains_key(&id) => {
                    let format = if json { Format::Json } else { Format::Plain };
                    // Refused when two other rooms have members.
                    if chat.join(ClientId(id), addr(id), ROOMS[room], format, now).is_ok() {
                        members.insert(id, Seen { room, json, deflate: false });
                    }
                }
                Op::Join(..) => {}
                Op::Leave(id) => {
                    chat.leave(ClientId(id), now);
                    members.remove(&id);
                }
                Op::Deflate(id, on) => {
                    chat.set_deflate(ClientId(id), on);
                    if let Some(seen) = members.get_mut(&id) {
                        seen.deflate = on;
                    }
                }
                Op::Say(..) | Op::SayFromAfar(..) => {
                    let (out, room) = match op {
                        Op::Say(id) => {
                            let Some(speaker) = members.get(&id).copied() else { continue };
                            (chat.input(ClientId(id), TEXT, now), speaker.room)
                        }
                        Op::SayFromAfar(room) => {
                            let said = Appended {
                                room: ROOMS[room].into(),
                                entry: Entry {
                                    kind: Kind::Message,
                                    from: "far-1".into(),
                                    text: TEXT.into(),
                                    ts: now.unix_ms,
                                },
                            };
                            let far = RemoteId { node: 9, client: 1 };
                            (chat.remote(far, RemoteEvent::Said(said), now), room)
                        }
                        _ => unreachable!("matched above"),
                    };
                    let said: Vec<&Delivery> = out
                        .deliveries
                        .iter()
                        .filter(|d| String::from_utf8_lossy(d.message.frame()).contains(TEXT))
                        .collect();
                    let reached: BTreeSet<u64> =
                        said.iter().flat_map(|d| d.to.iter().map(|c| c.0)).collect();
                    let room: BTreeSet<u64> = members
                        .iter()
                        .filter(|(_, m)| m.room == room)
                        .map(|(&id, _)| id)
                        .collect();
                    prop_assert_eq!(&reached, &room, "who heard it");
                    let heard: usize = said.iter().map(|d| d.to.len()).sum();
                    prop_assert_eq!(heard, room.len(), "each once");
                    if matches!(op, Op::Say(_)) {
                        prop_assert_eq!(out.broadcast, Some(room.len()), "the room's size");
                    }
                    for delivery in said {
                        let json = String::from_utf8_lossy(delivery.message.frame()).contains("\"type\"");
                        let takers = delivery.to.iter().map(|c| members[&c.0]);
                        prop_assert!(takers.clone().all(|m| m.json == json), "one format a frame");
                        let deflate = takers.clone().any(|m| m.deflate);
                        prop_assert_eq!(
                            delivery.message.deflated_frame().is_some(),
                            deflate,
                            "compressed when someone takes it"
                        );
                    }
                }
            }
        }
    }
}
