//! What is said reaches the room's members as they are at that moment:
//! the recipients kept per room (split by format) follow every join, leave
//! and change of compression.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

/// Long and repetitive enough that compressing it always makes it smaller.
const TEXT: &str = "a message long enough that compressing it makes it smaller, smaller, smaller";

#[derive(Debug, Clone)]
enum Op {
    /// Client `.0` joins room `.1` (of two), in JSON if `.2`.
    Join(u64, usize, bool),
    Leave(u64),
    Say(u64),
    /// Client `.0` takes compressed frames or not.
    Deflate(u64, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..6, 0usize..2, any::<bool>()).prop_map(|(id, room, json)| Op::Join(id, room, json)),
        1 => (0u64..6).prop_map(Op::Leave),
        3 => (0u64..6).prop_map(Op::Say),
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
        let mut chat = immediate();
        let mut members: BTreeMap<u64, Seen> = BTreeMap::new();
        // Ten seconds a step: every speaker's tokens are back.
        for (step, op) in ops.into_iter().enumerate() {
            let now = at(10 * step as u64);
            match op {
                Op::Join(id, room, json) if !members.contains_key(&id) => {
                    let format = if json { Format::Json } else { Format::Plain };
                    let room_name = ["lobby", "den"][room];
                    chat.join(ClientId(id), addr(id), room_name, format, now).expect("room");
                    members.insert(id, Seen { room, json, deflate: false });
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
                Op::Say(id) => {
                    let Some(speaker) = members.get(&id).copied() else { continue };
                    let out = chat.input(ClientId(id), TEXT, now);
                    let said: Vec<&Delivery> = out
                        .deliveries
                        .iter()
                        .filter(|d| String::from_utf8_lossy(d.message.frame()).contains(TEXT))
                        .collect();
                    let reached: BTreeSet<u64> =
                        said.iter().flat_map(|d| d.to.iter().map(|c| c.0)).collect();
                    let room: BTreeSet<u64> = members
                        .iter()
                        .filter(|(_, m)| m.room == speaker.room)
                        .map(|(&id, _)| id)
                        .collect();
                    prop_assert_eq!(&reached, &room, "who heard it");
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
