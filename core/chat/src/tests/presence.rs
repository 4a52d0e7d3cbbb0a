//! Joins and leaves announced together after [`ChatConfig::presence_delay`].

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

const DELAY: Duration = ChatConfig::DEFAULT.presence_delay;

fn ms(ms: u64) -> Now {
    Now {
        mono: Duration::from_millis(ms),
        unix_ms: ms,
    }
}

fn join_at(chat: &mut Chat, id: u64, format: Format, now: Now) -> Output {
    chat.join(ClientId(id), addr(id), "lobby", format, now)
        .expect("room for everyone")
}

/// Everything due at `now`, room by room.
fn due(chat: &mut Chat, now: Now) -> Vec<(String, Output)> {
    std::iter::from_fn(|| chat.poll_presence(now)).collect()
}

#[test]
fn joins_within_the_delay_are_announced_together() {
    let mut chat = Chat::default();
    join_at(&mut chat, 1, Format::Plain, ms(0));
    assert_eq!(chat.poll_timeout(), None, "nobody to tell of the first");
    for id in 2..=4 {
        let out = join_at(&mut chat, id, Format::Plain, ms(10 * id));
        assert_eq!(texts(&out, 1), Vec::<String>::new(), "nothing yet");
        assert_eq!(texts(&out, id).len(), 1, "its welcome, at once");
    }
    let due_at = ms(20).mono + DELAY;
    assert_eq!(chat.poll_timeout(), Some(due_at), "no later for more joins");
    assert!(due(&mut chat, ms(269)).is_empty());
    let announced = due(&mut chat, ms(270));
    let [(room, out)] = &announced[..] else {
        panic!("one room: {announced:?}")
    };
    assert_eq!(room, "lobby");
    // Each hears of those that joined after it, in one line.
    assert_eq!(
        texts(out, 1),
        ["* guest-2, guest-3 and guest-4 joined #lobby"]
    );
    assert_eq!(texts(out, 2), ["* guest-3 and guest-4 joined #lobby"]);
    assert_eq!(texts(out, 3), ["* guest-4 joined #lobby"]);
    assert!(texts(out, 4).is_empty());
    assert_eq!(chat.poll_timeout(), None);
    // Leaves, later, the same way; the next join starts a new delay.
    chat.leave(ClientId(2), ms(1000));
    chat.leave(ClientId(3), ms(1100));
    assert_eq!(chat.poll_timeout(), Some(ms(1000).mono + DELAY));
    let announced = due(&mut chat, ms(1250));
    assert_eq!(
        texts(&announced[0].1, 1),
        ["* guest-2 and guest-3 left #lobby"]
    );
    assert_eq!(texts(&announced[0].1, 4), texts(&announced[0].1, 1));
}

#[test]
fn json_clients_get_an_object_each_made_once_for_all() {
    let mut chat = Chat::default();
    for id in 1..=4 {
        join_at(&mut chat, id, Format::Json, ms(0));
    }
    let announced = due(&mut chat, ms(250));
    let out = &announced[0].1;
    // One object per member that joined, each to those there before it.
    let to: Vec<Vec<ClientId>> = out.deliveries.iter().map(|d| d.to.to_vec()).collect();
    assert_eq!(
        to,
        [
            vec![ClientId(1)],
            vec![ClientId(1), ClientId(2)],
            (1..=3).map(ClientId).collect()
        ]
    );
    let json = texts(out, 1);
    for (text, nick) in json.iter().zip(["guest-2", "guest-3", "guest-4"]) {
        let start = format!(r#"{{"type":"join","room":"lobby","from":"{nick}""#);
        assert!(text.starts_with(&start), "{text}");
    }
    // A plain member in the same room gets one line.
    join_at(&mut chat, 5, Format::Plain, ms(300));
    join_at(&mut chat, 6, Format::Json, ms(300));
    join_at(&mut chat, 7, Format::Plain, ms(300));
    let out = &due(&mut chat, ms(550))[0].1;
    assert_eq!(texts(out, 5), ["* guest-6 and guest-7 joined #lobby"]);
    assert_eq!(texts(out, 6).len(), 1, "guest-7's object");
    assert_eq!(texts(out, 1).len(), 3);
}

#[test]
fn a_member_past_the_presence_limit_hears_nothing_from_before_it() {
    let mut chat = Chat::new(ChatConfig {
        presence_limit: 2,
        ..ChatConfig::DEFAULT
    });
    join_at(&mut chat, 1, Format::Plain, ms(0));
    join_at(&mut chat, 2, Format::Plain, ms(0));
    due(&mut chat, ms(250));
    chat.leave(ClientId(2), ms(300));
    join_at(&mut chat, 3, Format::Plain, ms(300));
    // Past the limit: not announced, and not told what waits either.
    join_at(&mut chat, 4, Format::Plain, ms(300));
    let out = &due(&mut chat, ms(550))[0].1;
    assert_eq!(
        texts(out, 1),
        ["* guest-2 left #lobby", "* guest-3 joined #lobby"]
    );
    assert!(texts(out, 3).is_empty());
    assert!(texts(out, 4).is_empty(), "{:?}", texts(out, 4));
}

#[test]
fn a_member_that_comes_and_goes_within_the_delay_is_not_announced() {
    let mut chat = Chat::default();
    join_at(&mut chat, 1, Format::Plain, ms(0));
    due(&mut chat, ms(250));
    join_at(&mut chat, 2, Format::Plain, ms(300));
    chat.leave(ClientId(2), ms(400));
    let announced = due(&mut chat, ms(550));
    assert!(
        announced.iter().all(|(_, out)| out.deliveries.is_empty()),
        "{announced:?}"
    );
    // Unless someone joined in between: it was shown the member.
    join_at(&mut chat, 3, Format::Plain, ms(1000));
    join_at(&mut chat, 4, Format::Plain, ms(1010));
    chat.leave(ClientId(3), ms(1020));
    let announced = due(&mut chat, ms(1250));
    let out = &announced[0].1;
    assert_eq!(
        texts(out, 1),
        [
            "* guest-3 and guest-4 joined #lobby",
            "* guest-3 left #lobby"
        ]
    );
    assert_eq!(texts(out, 4), ["* guest-3 left #lobby"]);
}

#[test]
fn what_is_said_in_the_room_announces_what_waits_first() {
    let mut chat = Chat::default();
    join_at(&mut chat, 1, Format::Plain, ms(0));
    join_at(&mut chat, 2, Format::Plain, ms(0));
    due(&mut chat, ms(250));
    join_at(&mut chat, 3, Format::Plain, ms(300));
    chat.leave(ClientId(2), ms(310));
    join_at(&mut chat, 4, Format::Plain, ms(320));
    let out = chat.input(ClientId(1), "hi", ms(330));
    // In the order it happened: runs of joins and of leaves.
    assert_eq!(
        texts(&out, 1),
        [
            "* guest-3 joined #lobby",
            "* guest-2 left #lobby",
            "* guest-4 joined #lobby",
            "guest-1: hi"
        ]
    );
    // A member hears nothing from before its join.
    assert_eq!(
        texts(&out, 3),
        [
            "* guest-2 left #lobby",
            "* guest-4 joined #lobby",
            "guest-1: hi"
        ]
    );
    assert_eq!(texts(&out, 4), ["guest-1: hi"]);
    // Nothing is left for the timer, which finds the room announced.
    assert!(due(&mut chat, ms(1000)).is_empty());
    assert_eq!(chat.poll_timeout(), None);
    // A new nickname, too.
    join_at(&mut chat, 5, Format::Plain, ms(2000));
    let out = chat.input(ClientId(5), "/nick eve", ms(2010));
    assert_eq!(
        texts(&out, 1),
        ["* guest-5 joined #lobby", "* guest-5 is now known as eve"]
    );
}

#[test]
fn rooms_are_announced_each_in_turn_and_members_of_other_nodes_too() {
    let mut chat = Chat::default();
    join_at(&mut chat, 1, Format::Plain, ms(0));
    let them = RemoteId { node: 7, client: 1 };
    let joined = RemoteEvent::Joined {
        room: "lobby".into(),
        nick: "zoe".into(),
    };
    chat.remote(them, joined, ms(10));
    for id in [2, 3] {
        chat.join(ClientId(id), addr(id), "rust", Format::Plain, ms(100))
            .expect("room");
    }
    assert_eq!(chat.poll_timeout(), Some(ms(260).mono));
    let first = due(&mut chat, ms(260));
    let [(room, out)] = &first[..] else {
        panic!("the lobby only: {first:?}")
    };
    assert_eq!(room, "lobby");
    assert_eq!(texts(out, 1), ["* zoe joined #lobby"]);
    assert_eq!(chat.poll_timeout(), Some(ms(350).mono));
    let second = due(&mut chat, ms(350));
    assert_eq!(second[0].0, "rust");
    assert_eq!(texts(&second[0].1, 2), ["* guest-3 joined #rust"]);
    // Joined again under another name (a snapshot overlapping the log):
    // a rename, after what waits.
    let renamed = RemoteEvent::Joined {
        room: "lobby".into(),
        nick: "zed".into(),
    };
    join_at(&mut chat, 4, Format::Plain, ms(360));
    let out = chat.remote(them, renamed, ms(370));
    assert_eq!(
        texts(&out, 1),
        ["* guest-4 joined #lobby", "* zoe is now known as zed"]
    );
    // Joined again in another room: its old room hears that it left.
    let moved = RemoteEvent::Joined {
        room: "rust".into(),
        nick: "zed".into(),
    };
    chat.remote(them, moved, ms(400));
    let announced = due(&mut chat, ms(650));
    let heard = |room: &str, id| {
        let (_, out) = announced.iter().find(|(r, _)| r == room).expect(room);
        texts(out, id)
    };
    assert_eq!(heard("lobby", 1), ["* zed left #lobby"]);
    assert_eq!(heard("rust", 2), ["* zed joined #rust"]);
    chat.remote(them, RemoteEvent::Left, ms(700));
    let left = due(&mut chat, ms(950));
    assert_eq!(texts(&left[0].1, 2), ["* zed left #rust"]);
}

/// What a test client does.
#[derive(Debug, Clone)]
enum Op {
    /// A new member joins: a JSON client if true, else a plain one.
    Join(bool),
    /// The member at this index (of those in, modulo) leaves.
    Leave(usize),
    /// The member at this index says something.
    Say(usize),
    /// Time passes, in milliseconds.
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<bool>().prop_map(Op::Join),
        2 => any::<usize>().prop_map(Op::Leave),
        1 => any::<usize>().prop_map(Op::Say),
        2 => (0u64..400).prop_map(Op::Wait),
    ]
}

/// The nicknames a plain line, or a JSON object, announces as joined or
/// left.
fn announced(line: &str) -> Option<(bool, Vec<String>)> {
    for (kind, joined) in [("join", true), ("leave", false)] {
        let start = format!(r#"{{"type":"{kind}","room":"lobby","from":""#);
        if let Some(rest) = line.strip_prefix(&start) {
            let nick = rest.split('"').next().unwrap_or_default();
            return Some((joined, vec![nick.to_owned()]));
        }
    }
    let line = line.strip_prefix("* ")?;
    let (who, joined) = match line.strip_suffix(" joined #lobby") {
        Some(who) => (who, true),
        None => (line.strip_suffix(" left #lobby")?, false),
    };
    let nicks = who
        .split(", ")
        .flat_map(|part| part.split(" and "))
        .map(str::to_owned)
        .collect();
    Some((joined, nicks))
}

proptest! {
    /// Every member that starts from the room's `/who` at its join and
    /// follows the announcements it gets ends up knowing who is in the
    /// room, however joins, leaves, messages and time interleave; and it
    /// is never told what it knew.
    #[test]
    fn every_member_knows_who_is_in_the_room(ops in proptest::collection::vec(op(), 1..60)) {
        let followed = follow(ops, ChatConfig::DEFAULT.presence_limit);
        prop_assert!(followed.stale.is_empty(), "{:?}", followed.stale);
        prop_assert!(followed.before.is_empty(), "{:?}", followed.before);
        for (id, view) in &followed.views {
            prop_assert_eq!(view, &followed.actual, "guest-{}", id);
        }
    }

    /// Past the presence limit members are not told of every join and
    /// leave (and may hear of a leave of one whose join was not
    /// announced), but never of one from before their own join.
    #[test]
    fn past_the_presence_limit_nobody_hears_of_what_came_before_it(
        ops in proptest::collection::vec(op(), 1..60),
        limit in 1usize..6,
    ) {
        let followed = follow(ops, limit);
        prop_assert!(followed.before.is_empty(), "{:?}", followed.before);
    }
}

/// What the members of a room made of its announcements.
struct Followed {
    /// Each member's idea of who is in the room.
    views: BTreeMap<u64, BTreeSet<String>>,
    /// Who is in the room.
    actual: BTreeSet<String>,
    /// Announcements that told a member what it knew (a join of one in its
    /// view, a leave of one not in it).
    stale: Vec<String>,
    /// Announcements of a join or leave from before the member joined.
    before: Vec<String>,
}

/// Runs `ops`, every member following the announcements from the room's
/// `/who` at its join.
fn follow(ops: Vec<Op>, limit: usize) -> Followed {
    let mut chat = Chat::new(ChatConfig {
        presence_limit: limit,
        ..ChatConfig::DEFAULT
    });
    let mut now = 0;
    let mut next = 1;
    let mut views: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    // When (the op's index) each member joined, and each nickname joined
    // and left.
    let mut joined_at: HashMap<u64, usize> = HashMap::new();
    let mut events = HashMap::new();
    let (mut stale, mut before) = (Vec::new(), Vec::new());
    type Events = HashMap<(bool, String), usize>;
    let mut apply = |views: &mut BTreeMap<u64, BTreeSet<String>>,
                     joined_at: &HashMap<u64, usize>,
                     events: &Events,
                     out: &Output| {
        for (&id, view) in views.iter_mut() {
            for line in texts(out, id) {
                let Some((joined, nicks)) = announced(&line) else {
                    continue;
                };
                for nick in nicks {
                    let changed = match joined {
                        true => view.insert(nick.clone()),
                        false => view.remove(&nick),
                    };
                    if !changed {
                        stale.push(format!("guest-{id}: {line}"));
                    }
                    let at = events.get(&(joined, nick)).copied().unwrap_or(0);
                    if at < joined_at.get(&id).copied().unwrap_or(0) {
                        before.push(format!("guest-{id}: {line}"));
                    }
                }
            }
        }
    };
    for (index, op) in ops.into_iter().enumerate() {
        let out = match op {
            Op::Join(json) => {
                let id = next;
                next += 1;
                joined_at.insert(id, index);
                events.insert((true, format!("guest-{id}")), index);
                let format = if json { Format::Json } else { Format::Plain };
                let out = join_at(&mut chat, id, format, ms(now));
                // Who is here, from the lobby's member list (what `/who`
                // answers, in either format).
                let who: BTreeSet<String> = chat
                    .local_members()
                    .map(|(_, _, nick)| nick.to_owned())
                    .collect();
                views.insert(id, who);
                out
            }
            Op::Leave(i) if !views.is_empty() => {
                let id = *views.keys().nth(i % views.len()).unwrap_or(&0);
                views.remove(&id);
                events.insert((false, format!("guest-{id}")), index);
                chat.leave(ClientId(id), ms(now))
            }
            Op::Say(i) if !views.is_empty() => {
                let id = *views.keys().nth(i % views.len()).unwrap_or(&0);
                chat.input(ClientId(id), "hello", ms(now))
            }
            Op::Wait(t) => {
                now += t;
                let mut out = Output::default();
                for (_, more) in due(&mut chat, ms(now)) {
                    out.deliveries.extend(more.deliveries);
                }
                out
            }
            _ => Output::default(),
        };
        apply(&mut views, &joined_at, &events, &out);
    }
    for (_, out) in due(&mut chat, ms(now + 1000)) {
        apply(&mut views, &joined_at, &events, &out);
    }
    let actual = views
        .keys()
        .filter_map(|&id| chat.nick(ClientId(id)).map(str::to_owned))
        .collect();
    Followed {
        views,
        actual,
        stale,
        before,
    }
}
