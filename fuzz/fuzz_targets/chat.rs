//! Arbitrary joins, messages (commands included) and leaves: a chat message
//! reaches exactly the members of the sender's room, each once; nothing ever
//! reaches a client outside the room it concerns.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tincan_chat::{Address, Chat, ChatConfig, ClientId, Format, Now, Output, RateLimit, Refusal};

#[derive(Arbitrary, Debug)]
enum Op {
    Join { id: u8, room: u8, json: bool },
    Say { id: u8, text: String },
    Leave { id: u8 },
    Wait { ms: u16 },
}

const ROOMS: [&str; 3] = ["lobby", "rust", "wasm"];

fuzz_target!(|ops: Vec<Op>| {
    let config = ChatConfig {
        history: 3,
        max_rooms: 2,
        max_room_clients: 4,
        max_clients: 6,
        rate: RateLimit {
            burst: 3,
            per_second: 1.0,
        },
        ..ChatConfig::default()
    };
    let mut chat = Chat::new(config);
    let mut rooms: BTreeMap<u8, &str> = BTreeMap::new();
    let mut now = Now::default();
    let members = |rooms: &BTreeMap<u8, &str>, room: &str| -> BTreeSet<ClientId> {
        rooms
            .iter()
            .filter(|(_, r)| **r == room)
            .map(|(&id, _)| ClientId(id.into()))
            .collect()
    };
    let reached = |out: &Output| -> BTreeSet<ClientId> {
        out.deliveries
            .iter()
            .flat_map(|d| d.to.iter().copied())
            .collect()
    };
    for op in ops {
        match op {
            Op::Join { id, room, json } => {
                let room = ROOMS[usize::from(room) % ROOMS.len()];
                let format = if json { Format::Json } else { Format::Plain };
                let joined = chat.join(ClientId(id.into()), Address([id; 16]), room, format, now);
                if rooms.contains_key(&id) {
                    assert_eq!(joined, Err(Refusal::AlreadyJoined));
                    continue;
                }
                if let Ok(out) = joined {
                    rooms.insert(id, room);
                    assert!(reached(&out).is_subset(&members(&rooms, room)));
                    assert!(reached(&out).contains(&ClientId(id.into())), "no welcome");
                }
            }
            Op::Say { id, text } => {
                let out = chat.input(ClientId(id.into()), &text, now);
                let Some(room) = rooms.get(&id).copied() else {
                    assert_eq!(out, Output::default(), "a stranger was heard");
                    continue;
                };
                let room_members = members(&rooms, room);
                assert!(reached(&out).is_subset(&room_members), "left the room");
                if let Some(n) = out.broadcast {
                    assert_eq!(n, room_members.len());
                    assert_eq!(reached(&out), room_members);
                    // Each member gets each message once.
                    let mut seen = BTreeMap::new();
                    for d in &out.deliveries {
                        for id in &d.to {
                            *seen.entry(*id).or_insert(0) += 1;
                        }
                    }
                    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
                }
            }
            Op::Leave { id } => {
                let out = chat.leave(ClientId(id.into()), now);
                if let Some(room) = rooms.remove(&id) {
                    assert_eq!(reached(&out), members(&rooms, room));
                } else {
                    assert_eq!(out, Output::default());
                }
            }
            Op::Wait { ms } => {
                now.mono += Duration::from_millis(ms.into());
                now.unix_ms += u64::from(ms);
            }
        }
        assert_eq!(chat.len(), rooms.len());
    }
});
