//! Arbitrary joins, messages (commands included), waits and leaves, checked
//! against a model of the chat kept here, independent of the implementation:
//!
//! - a join is accepted or refused exactly as the limits say, and a refusal
//!   names the limit that was reached;
//! - every accepted message reaches every member of its room, and no one
//!   else, once, with its content (plain lines and JSON envelopes written out
//!   here); since each input is checked as it happens, every member gets the
//!   room's messages in the order they were sent;
//! - a message the text rule accepts is refused only by the rate limit: never
//!   when the rate limit is lifted, never from a client that sent nothing for
//!   the time the bucket takes to fill, and then only with the rate limit's
//!   error to its sender;
//! - joins and leaves are announced to exactly the rest of the room (up to
//!   the presence limit), and a joiner gets the room's last messages.
//!
//! A chat that dropped, reordered, duplicated or altered messages, or
//! refused joins it should take, fails here.
#![no_main]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tincan_chat::{Address, Chat, ChatConfig, ClientId, Format, Now, Output, RateLimit, Refusal};

#[derive(Arbitrary, Debug)]
struct Input {
    /// Lift the rate limit, so that every message the text rule accepts must
    /// be broadcast.
    unlimited: bool,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Join {
        id: u8,
        room: u8,
        json: bool,
    },
    /// Any text: a message, an action, a command, or one the text rule refuses.
    Say {
        id: u8,
        text: String,
    },
    /// A message the text rule accepts.
    Chat {
        id: u8,
        n: u16,
    },
    Leave {
        id: u8,
    },
    Wait {
        ms: u16,
    },
}

const ROOMS: [&str; 3] = ["lobby", "rust", "wasm"];
/// Few ids, so that most inputs come from members.
const IDS: u8 = 8;
const HISTORY: usize = 3;
const MAX_ROOMS: usize = 2;
const MAX_ROOM_CLIENTS: usize = 4;
const MAX_CLIENTS: usize = 6;
const PRESENCE_LIMIT: usize = 3;
const MAX_TEXT_LEN: usize = 40;
const STRICT: RateLimit = RateLimit {
    burst: 3,
    per_second: 1.0,
};
/// An empty bucket is full again after burst / per_second = 3 s; a margin
/// keeps float rounding out of the verdict.
const REFILLED: Duration = Duration::from_millis(3100);

/// A message or action as the model keeps it.
#[derive(Clone, Debug)]
struct Said {
    action: bool,
    from: String,
    text: String,
    ts: u64,
}

#[derive(Default)]
struct Model {
    /// Each member's room and format.
    members: BTreeMap<ClientId, (&'static str, Format)>,
    /// The last HISTORY messages of each room, as far as the model knows.
    history: BTreeMap<&'static str, VecDeque<Said>>,
    /// Successful joins so far: the next guest is guest-(joins + 1).
    joins: u64,
    /// When each id last sent anything while a member: the last use of its
    /// address's bucket, which outlives its connection.
    last_input: BTreeMap<ClientId, Duration>,
    /// The rate limit is lifted.
    unlimited: bool,
}

impl Model {
    fn room(&self, room: &str) -> BTreeSet<ClientId> {
        self.members
            .iter()
            .filter(|(_, (r, _))| *r == room)
            .map(|(&id, _)| id)
            .collect()
    }

    fn busy_rooms(&self) -> BTreeSet<&'static str> {
        self.members.values().map(|(r, _)| *r).collect()
    }

    fn expected_join(&self, id: ClientId, room: &str) -> Result<(), Refusal> {
        if self.members.contains_key(&id) {
            Err(Refusal::AlreadyJoined)
        } else if self.members.len() >= MAX_CLIENTS {
            Err(Refusal::ServerFull(self.members.len()))
        } else if self.room(room).len() >= MAX_ROOM_CLIENTS {
            Err(Refusal::RoomFull(room.to_owned()))
        } else if self.room(room).is_empty() && self.busy_rooms().len() >= MAX_ROOMS {
            Err(Refusal::TooManyRooms)
        } else {
            Ok(())
        }
    }
}

/// A JSON string literal: `"` and `\` escaped. Only used for text without
/// control characters (the text rule refuses those in messages, and
/// nicknames and room names are ASCII letters, digits and `-_.`).
fn json(s: &str) -> String {
    assert!(!s.chars().any(char::is_control), "{s:?}");
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn plain_said(m: &Said) -> String {
    if m.action {
        format!("* {} {}", m.from, m.text)
    } else {
        format!("{}: {}", m.from, m.text)
    }
}

/// The JSON object of a message, without its closing brace.
fn json_said(room: &str, m: &Said) -> String {
    format!(
        r#"{{"type":"{}","room":"{room}","from":{},"text":{},"ts":{}"#,
        if m.action { "action" } else { "message" },
        json(&m.from),
        json(&m.text),
        m.ts
    )
}

fn expected_said(format: Format, room: &str, m: &Said) -> String {
    match format {
        Format::Plain => plain_said(m),
        Format::Json => json_said(room, m) + "}",
    }
}

/// The payload of an unmasked FIN text frame, the only frame the chat makes.
fn payload(frame: &[u8]) -> &str {
    assert_eq!(frame[0], 0x81, "not a FIN text frame: {frame:?}");
    assert_eq!(frame[1] & 0x80, 0, "a server frame is never masked");
    let (len, start) = match frame[1] {
        126 => (usize::from(u16::from_be_bytes([frame[2], frame[3]])), 4),
        127 => {
            let len = u64::from_be_bytes(frame[2..10].try_into().expect("8 bytes"));
            (usize::try_from(len).expect("fits"), 10)
        }
        len => (usize::from(len), 2),
    };
    assert_eq!(frame.len(), start + len, "frame length");
    std::str::from_utf8(&frame[start..]).expect("UTF-8 text")
}

/// What each client received from `out`, in order.
fn received(out: &Output) -> BTreeMap<ClientId, Vec<String>> {
    let mut got: BTreeMap<ClientId, Vec<String>> = BTreeMap::new();
    for delivery in &out.deliveries {
        let text = payload(delivery.message.frame()).to_owned();
        let mut once = BTreeSet::new();
        for &id in delivery.to.iter() {
            assert!(once.insert(id), "{id:?} twice in one delivery");
            got.entry(id).or_default().push(text.clone());
        }
    }
    got
}

/// What a member's text asks for, as the README's protocol describes it.
enum Meaning {
    Said { action: bool, text: String },
    Command,
}

fn meaning(text: &str) -> Meaning {
    match text.strip_prefix('/') {
        Some(literal) if literal.starts_with('/') => Meaning::Said {
            action: false,
            text: literal.to_owned(),
        },
        Some(command) => {
            let end = command.find(char::is_whitespace).unwrap_or(command.len());
            if &command[..end] == "me" {
                Meaning::Said {
                    action: true,
                    text: command[end..].trim().to_owned(),
                }
            } else {
                Meaning::Command
            }
        }
        None => Meaning::Said {
            action: false,
            text: text.to_owned(),
        },
    }
}

/// Whether the text rule must take `text` (the whole input) whose shown
/// text is `shown`: printable ASCII only, something visible, not too long.
fn surely_clean(text: &str, shown: &str) -> bool {
    text.bytes().all(|b| (0x20..0x7f).contains(&b))
        && shown.bytes().any(|b| b != b' ')
        && shown.len() <= MAX_TEXT_LEN
}

fuzz_target!(|input: Input| {
    let rate = if input.unlimited {
        RateLimit {
            burst: u32::MAX,
            per_second: 1e9,
        }
    } else {
        STRICT
    };
    let config = ChatConfig {
        history: HISTORY,
        max_rooms: MAX_ROOMS,
        max_room_clients: MAX_ROOM_CLIENTS,
        max_clients: MAX_CLIENTS,
        presence_limit: PRESENCE_LIMIT,
        // The model expects each join and leave announced in its own
        // output; announcing them together is the property test's
        // (`tests::presence`).
        presence_delay: Duration::ZERO,
        max_text_len: MAX_TEXT_LEN,
        rate,
        ..ChatConfig::default()
    };
    let mut chat = Chat::new(config);
    let mut model = Model {
        unlimited: input.unlimited,
        ..Model::default()
    };
    let mut now = Now::default();
    let mut sequence = 0u64;
    for op in input.ops {
        match op {
            Op::Join { id, room, json } => {
                let id = ClientId((id % IDS).into());
                let room = ROOMS[usize::from(room) % ROOMS.len()];
                let format = if json { Format::Json } else { Format::Plain };
                let expected = model.expected_join(id, room);
                let others = model.room(room);
                let address = Address([id.0 as u8; 16]);
                let joined = chat.join(id, address, room, format, now);
                let out = match (joined, expected) {
                    (Ok(out), Ok(())) => out,
                    (Err(refusal), Err(reason)) => {
                        assert_eq!(refusal, reason, "refused for another reason");
                        continue;
                    }
                    (joined, expected) => {
                        panic!("join of {id:?} to {room}: {joined:?}, expected {expected:?}")
                    }
                };
                model.joins += 1;
                let nick = format!("guest-{}", model.joins);
                assert_eq!(chat.nick(id), Some(nick.as_str()));
                model.members.insert(id, (room, format));
                let mut got = received(&out);

                // The joiner: a welcome, then the room's last messages.
                let mine = got.remove(&id).expect("no welcome");
                let (welcome, history) = mine.split_first().expect("no welcome");
                let want = match format {
                    Format::Plain => {
                        format!("* Welcome to #{room}, {nick}. Type /help for commands.")
                    }
                    Format::Json => format!(
                        r#"{{"type":"welcome","room":"{room}","from":null,"text":"Welcome to #{room}, {nick}","ts":{},"nick":"{nick}"}}"#,
                        now.unix_ms
                    ),
                };
                assert_eq!(welcome, &want);
                let kept = model.history.entry(room).or_default();
                if history.is_empty() && others.is_empty() {
                    // An empty room may have been forgotten with its history.
                    kept.clear();
                }
                let want: Vec<String> = match (format, kept.back()) {
                    (_, None) => vec![],
                    (Format::Plain, Some(_)) => kept.iter().map(plain_said).collect(),
                    (Format::Json, Some(newest)) => {
                        let entries: Vec<String> =
                            kept.iter().map(|m| json_said(room, m) + "}").collect();
                        vec![format!(
                            r#"{{"type":"history","room":"{room}","from":null,"text":"","ts":{},"messages":[{}]}}"#,
                            newest.ts,
                            entries.join(",")
                        )]
                    }
                };
                assert_eq!(history, want, "history of #{room}");

                // The others: one join notice each, up to the presence limit.
                check_presence(&model, got, &others, room, &nick, true, now);
            }
            Op::Say { id, text } => {
                let id = ClientId((id % IDS).into());
                say(&mut chat, &mut model, id, &text, now);
            }
            Op::Chat { id, n } => {
                // Unique and clean: only the rate limit may refuse it.
                sequence += 1;
                let id = ClientId((id % IDS).into());
                let text = format!("m{sequence} {n}");
                assert!(surely_clean(&text, &text));
                say(&mut chat, &mut model, id, &text, now);
            }
            Op::Leave { id } => {
                let id = ClientId((id % IDS).into());
                let nick = chat.nick(id).map(str::to_owned);
                let out = chat.leave(id, now);
                let Some((room, _)) = model.members.remove(&id) else {
                    assert_eq!(out, Output::default(), "a stranger left");
                    continue;
                };
                let nick = nick.expect("a member has a nickname");
                let rest = model.room(room);
                check_presence(&model, received(&out), &rest, room, &nick, false, now);
            }
            Op::Wait { ms } => {
                now.mono += Duration::from_millis(ms.into());
                now.unix_ms += u64::from(ms);
            }
        }
        assert_eq!(chat.len(), model.members.len());
    }
});

impl Model {
    /// Whether the rate limit may refuse `id` now: never when it is lifted;
    /// else not if `id` never sent anything, nor if its bucket has had the
    /// time to fill since.
    fn rate_may_refuse(&self, id: ClientId, now: Now) -> bool {
        !self.unlimited
            && self
                .last_input
                .get(&id)
                .is_some_and(|&last| now.mono.saturating_sub(last) < REFILLED)
    }
}

/// The join (or leave) notices of `nick` in `room`: one for each of the
/// `rest` of the room, if it is small enough to be told, and no one else.
fn check_presence(
    model: &Model,
    got: BTreeMap<ClientId, Vec<String>>,
    rest: &BTreeSet<ClientId>,
    room: &str,
    nick: &str,
    joined: bool,
    now: Now,
) {
    let told: BTreeSet<ClientId> = got.keys().copied().collect();
    if rest.len() < PRESENCE_LIMIT {
        assert_eq!(&told, rest, "presence notice of {nick}");
    } else {
        assert!(told.is_empty(), "presence announced in a big room");
    }
    let (kind, verb) = if joined {
        ("join", "joined")
    } else {
        ("leave", "left")
    };
    for (other, texts) in got {
        let want = match model.members[&other].1 {
            Format::Plain => format!("* {nick} {verb} #{room}"),
            Format::Json => format!(
                r#"{{"type":"{kind}","room":"{room}","from":"{nick}","text":"{nick} {verb}","ts":{}}}"#,
                now.unix_ms
            ),
        };
        assert_eq!(texts, [want]);
    }
}

/// One input from `id`, checked.
fn say(chat: &mut Chat, model: &mut Model, id: ClientId, text: &str, now: Now) {
    let nick = chat.nick(id).map(str::to_owned);
    let out = chat.input(id, text, now);
    let Some(&(room, _)) = model.members.get(&id) else {
        assert_eq!(out, Output::default(), "a stranger was heard");
        return;
    };
    // Refusals by the rate limit are judged against the input before this one.
    let may_refuse = model.rate_may_refuse(id, now);
    model.last_input.insert(id, now.mono);
    let nick = nick.expect("a member has a nickname");
    let members = model.room(room);
    let got = received(&out);
    let told: BTreeSet<ClientId> = got.keys().copied().collect();
    assert!(told.is_subset(&members), "a message left its room");
    if let Some(n) = out.broadcast {
        // Accepted: every member, once, with its content.
        let Meaning::Said { action, text } = meaning(text) else {
            panic!("the command {text:?} was broadcast");
        };
        assert_eq!(n, members.len());
        assert_eq!(told, members, "not every member got {text:?}");
        let said = Said {
            action,
            from: nick,
            text,
            ts: now.unix_ms,
        };
        for (member, texts) in got {
            let format = model.members[&member].1;
            assert_eq!(texts, [expected_said(format, room, &said)]);
        }
        let kept = model.history.entry(room).or_default();
        if kept.len() == HISTORY {
            kept.pop_front();
        }
        kept.push_back(said);
        return;
    }
    if let Meaning::Said { text: shown, .. } = meaning(text) {
        // Refused: its sender alone hears why, or is closed for flooding.
        assert!(
            told.is_subset(&BTreeSet::from([id])),
            "a refusal went to others"
        );
        let why = got.get(&id).map(Vec::as_slice).unwrap_or_default();
        let rate_limited = match (&out.close, why) {
            (Some((code, _)), []) => {
                assert_eq!(code.as_u16(), 1008, "flooding closes with 1008");
                true
            }
            (None, [error]) => {
                assert!(
                    error.starts_with("! ") || error.starts_with(r#"{"type":"error","#),
                    "{error}"
                );
                error.contains("slow down: ")
            }
            (close, why) => panic!("refused {text:?} with {close:?} and {why:?}"),
        };
        if surely_clean(text, &shown) {
            assert!(rate_limited, "{text:?} refused by the text rule: {why:?}");
        }
        if rate_limited {
            assert!(may_refuse, "{text:?} refused by a full bucket: {why:?}");
        }
    }
}
