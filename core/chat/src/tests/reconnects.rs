//! The rate limit holds across reconnects ([`crate::rate`]).

use proptest::prelude::*;

use super::*;

const HOME: Address = Address([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]);

fn limited(burst: u32, per_second: f64) -> Chat {
    Chat::new(ChatConfig {
        presence_delay: Duration::ZERO,
        rate: RateLimit { burst, per_second },
        ..ChatConfig::default()
    })
}

fn join_from(chat: &mut Chat, id: u64, address: Address, now: Now) -> Output {
    chat.join(ClientId(id), address, "lobby", Format::Plain, now)
        .expect("room")
}

/// How many of `n` messages from `id` at `now` reach the room.
fn sent(chat: &mut Chat, id: u64, n: usize, now: Now) -> usize {
    (0..n)
        .filter(|_| chat.input(ClientId(id), "hi", now).broadcast.is_some())
        .count()
}

#[test]
fn reconnecting_does_not_refill_the_bucket() {
    let mut chat = limited(3, 1.0);
    join_from(&mut chat, 1, HOME, at(0));
    assert_eq!(sent(&mut chat, 1, 3, at(0)), 3);
    chat.leave(ClientId(1), at(0));
    join_from(&mut chat, 2, HOME, at(0));
    let out = chat.input(ClientId(2), "again", at(0));
    assert_eq!(out.broadcast, None);
    assert_eq!(
        texts(&out, 2),
        ["! slow down: at most 3 messages at once and 1 per second"]
    );
    // Refilled for the time since, as if it had stayed.
    chat.leave(ClientId(2), at(0));
    join_from(&mut chat, 3, HOME, at(2));
    assert_eq!(sent(&mut chat, 3, 3, at(2)), 2);
    // Another address is not affected.
    join_from(&mut chat, 4, addr(4), at(2));
    assert_eq!(sent(&mut chat, 4, 4, at(2)), 3);
}

#[test]
fn concurrent_clients_from_one_address_keep_their_own_buckets() {
    let mut chat = limited(3, 1.0);
    join_from(&mut chat, 1, HOME, at(0));
    join_from(&mut chat, 2, HOME, at(0));
    assert_eq!(sent(&mut chat, 1, 5, at(0)), 3);
    // Client 1's burst did not spend client 2's.
    assert_eq!(sent(&mut chat, 2, 5, at(0)), 3);
    // A third one starts from the lowest, empty bucket.
    join_from(&mut chat, 3, HOME, at(0));
    assert_eq!(sent(&mut chat, 3, 1, at(0)), 0);
}

#[test]
fn the_address_table_is_bounded_least_recently_used_first() {
    let mut chat = Chat::new(ChatConfig {
        presence_delay: Duration::ZERO,
        rate: RateLimit {
            burst: 2,
            per_second: 1.0,
        },
        max_addresses: 2,
        ..ChatConfig::default()
    });
    join_from(&mut chat, 1, HOME, at(0));
    assert_eq!(sent(&mut chat, 1, 2, at(0)), 2);
    chat.leave(ClientId(1), at(0));
    // Two other addresses push HOME out.
    for id in [2, 3] {
        join_from(&mut chat, id, addr(id), at(0));
        sent(&mut chat, id, 1, at(0));
    }
    join_from(&mut chat, 4, HOME, at(0));
    assert_eq!(sent(&mut chat, 4, 2, at(0)), 2);
    assert_eq!(chat.addresses.len(), 2);

    // With no table, each connection starts full.
    let mut chat = Chat::new(ChatConfig {
        presence_delay: Duration::ZERO,
        max_addresses: 0,
        ..ChatConfig::default()
    });
    join_from(&mut chat, 1, HOME, at(0));
    assert_eq!(sent(&mut chat, 1, 10, at(0)), 10);
    chat.leave(ClientId(1), at(0));
    join_from(&mut chat, 2, HOME, at(0));
    assert_eq!(sent(&mut chat, 2, 10, at(0)), 10);
}

proptest! {
    /// However often a client reconnects at once, what it sends in total
    /// is at most one burst plus what the elapsed time refilled.
    #[test]
    fn reconnects_never_add_up_to_more_than_the_limit(
        burst in 1u32..20,
        per_second in 0.1f64..10.0,
        visits in prop::collection::vec((0u64..3000, 0usize..30), 1..20),
    ) {
        let mut chat = limited(burst, per_second);
        let mut ms = 0;
        let mut total = 0;
        for (id, (wait, messages)) in (1..).zip(visits) {
            ms += wait;
            let now = Now { mono: Duration::from_millis(ms), unix_ms: ms };
            join_from(&mut chat, id, HOME, now);
            total += sent(&mut chat, id, messages, now);
            chat.leave(ClientId(id), now);
        }
        let allowed = f64::from(burst) + ms as f64 / 1000.0 * per_second;
        prop_assert!(total as f64 <= allowed + 1e-9, "{total} > {allowed}");
    }
}
