//! A token bucket per client (`burst` messages at once, refilled at
//! `per_second`), and a bounded table of the lowest bucket per address, so
//! that reconnecting does not refill a bucket.
//!
//! # Across reconnects
//!
//! Each client has its own bucket, so honest clients behind one address
//! (a NAT, a family) do not slow each other down. But a client that sent its
//! burst could close its connection and come back with a full bucket. So the
//! chat also keeps, per [`Address`], the *lowest* bucket any client from it
//! has had (the [`AddressTable`]): after every message a client sends, its
//! bucket replaces the address's if it holds fewer tokens. A new client from
//! that address starts from a copy of that bucket, refilled for the time
//! since at the same rate, instead of a full one. Refilling keeps the order
//! of two buckets (it adds the same amount to both, up to the same cap), so
//! the recorded bucket stays the lowest. An address whose clients went quiet
//! for `burst / per_second` seconds starts full again.
//!
//! The table holds at most `max_addresses` addresses; the least recently
//! used one is forgotten to make room (then a client from it starts full,
//! as without the table). With `max_addresses` 0 there is no table.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The rate a client may send chat messages at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// How many messages may be sent at once.
    pub burst: u32,
    /// How many messages per second are allowed over time.
    pub per_second: f64,
}

impl RateLimit {
    /// 10 at once, then 2 a second.
    pub const DEFAULT: Self = Self {
        burst: 10,
        per_second: 2.0,
    };
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One client's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    last: Duration,
}

impl TokenBucket {
    /// A full bucket at time `now`.
    pub fn new(limit: RateLimit, now: Duration) -> Self {
        Self {
            tokens: f64::from(limit.burst),
            last: now,
        }
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, limit: RateLimit, now: Duration) -> bool {
        self.tokens = self.level(limit, now);
        self.last = self.last.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The tokens in the bucket at `now`, refilled since the last take.
    pub fn level(&self, limit: RateLimit, now: Duration) -> f64 {
        let elapsed = now.saturating_sub(self.last).as_secs_f64();
        (self.tokens + elapsed * limit.per_second).min(f64::from(limit.burst))
    }
}

/// Where a client connects from, as an opaque key: the server passes the
/// 16 octets of the peer's IPv6 address, or of the IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2) for IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Address(pub [u8; 16]);

/// The lowest bucket per address, for at most `max` addresses, the least
/// recently used forgotten first (see the [module docs](self)).
#[derive(Debug, Default)]
pub struct AddressTable {
    max: usize,
    buckets: HashMap<Address, (TokenBucket, u64)>,
    /// Addresses by last use (a counter, not a clock), oldest first.
    by_use: BTreeMap<u64, Address>,
    uses: u64,
}

impl AddressTable {
    /// An empty table for at most `max` addresses.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            ..Self::default()
        }
    }

    /// How many addresses the table holds.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The bucket a new client from `address` starts with at `now`: the
    /// address's lowest, or a full one for an address the table does not hold.
    pub fn bucket_for(&mut self, address: Address, limit: RateLimit, now: Duration) -> TokenBucket {
        match self.buckets.get(&address) {
            Some(&(bucket, _)) => {
                self.touch(address);
                bucket
            }
            None => TokenBucket::new(limit, now),
        }
    }

    /// Records a client's `bucket` after it changed at `now`: it becomes the
    /// address's if it is lower.
    pub fn record(
        &mut self,
        address: Address,
        bucket: TokenBucket,
        limit: RateLimit,
        now: Duration,
    ) {
        if self.max == 0 {
            return;
        }
        match self.buckets.get_mut(&address) {
            Some((low, _)) => {
                if bucket.level(limit, now) < low.level(limit, now) {
                    *low = bucket;
                }
                self.touch(address);
            }
            None => {
                if self.buckets.len() >= self.max {
                    if let Some((_, oldest)) = self.by_use.pop_first() {
                        self.buckets.remove(&oldest);
                    }
                }
                self.uses += 1;
                self.buckets.insert(address, (bucket, self.uses));
                self.by_use.insert(self.uses, address);
            }
        }
    }

    fn touch(&mut self, address: Address) {
        if let Some((_, used)) = self.buckets.get_mut(&address) {
            self.by_use.remove(used);
            self.uses += 1;
            *used = self.uses;
            self.by_use.insert(self.uses, address);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_the_rate() {
        let limit = RateLimit {
            burst: 3,
            per_second: 2.0,
        };
        let t = Duration::from_secs(100);
        let mut bucket = TokenBucket::new(limit, t);
        assert!((0..3).all(|_| bucket.take(limit, t)));
        assert!(!bucket.take(limit, t));
        assert!(!bucket.take(limit, t + Duration::from_millis(400)));
        assert!(bucket.take(limit, t + Duration::from_millis(500)));
        // Refill stops at the burst size.
        let later = t + Duration::from_secs(60);
        assert_eq!((0..5).filter(|_| bucket.take(limit, later)).count(), 3);
        // Time going backwards refills nothing.
        assert!(!bucket.take(limit, t));
    }

    #[test]
    fn the_table_keeps_the_lowest_bucket_per_address() {
        let limit = RateLimit {
            burst: 3,
            per_second: 1.0,
        };
        let t = Duration::from_secs(10);
        let (a, b) = (Address([1; 16]), Address([2; 16]));
        let mut table = AddressTable::new(2);
        let mut low = table.bucket_for(a, limit, t);
        assert_eq!(low.level(limit, t), 3.0);
        let mut high = low;
        assert!(low.take(limit, t) && low.take(limit, t));
        table.record(a, low, limit, t);
        assert!(high.take(limit, t));
        table.record(a, high, limit, t);
        // The lower one stays, refilled for the time since.
        let later = t + Duration::from_millis(500);
        assert_eq!(table.bucket_for(a, limit, later).level(limit, later), 1.5);
        assert_eq!(table.bucket_for(b, limit, later).level(limit, later), 3.0);
        // Bounded: b is recorded, then a is used, so a third address evicts b.
        table.record(b, TokenBucket::new(limit, t), limit, t);
        table.bucket_for(a, limit, later);
        let c = Address([3; 16]);
        table.record(c, TokenBucket::new(limit, t), limit, t);
        assert_eq!(table.len(), 2);
        assert_eq!(table.bucket_for(a, limit, later).level(limit, later), 1.5);
        assert!(!table.buckets.contains_key(&b));
        // Without a table nothing is kept.
        let mut none = AddressTable::new(0);
        none.record(a, low, limit, t);
        assert!(none.is_empty());
    }
}
