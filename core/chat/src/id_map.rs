//! Maps keyed by [`ClientId`], hashed by one multiplication.
//!
//! A client id is the embedder's number for a connection (the server counts
//! them up), never a client's input: no client can pick ids that collide,
//! so the keyed SipHash that `HashMap` uses by default buys nothing here,
//! and a message to a room looks each member up in every map on its way
//! (the chat's members, the server's lanes and budget).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::ClientId;

/// 2^64 divided by the golden ratio, odd: multiplying by it spreads
/// consecutive numbers over the high bits, and keeps their low bits
/// distinct (Fibonacci hashing).
const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

/// The hasher of [`IdMap`]: a multiplication per `u64` written.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(SPREAD);
    }
}

/// A map keyed by client id, with [`IdHasher`].
pub type IdMap<V> = HashMap<ClientId, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    fn hash(id: u64) -> u64 {
        BuildHasherDefault::<IdHasher>::default().hash_one(ClientId(id))
    }

    #[test]
    fn consecutive_ids_take_distinct_buckets_and_varied_tags() {
        // The std map's table picks a bucket by the low bits and keeps the
        // top 7 as a tag: ids counted up must spread over both.
        let hashes: Vec<u64> = (5000..6024).map(hash).collect();
        let buckets: HashSet<u64> = hashes.iter().map(|h| h & 1023).collect();
        assert_eq!(buckets.len(), 1024, "1024 ids, 1024 buckets");
        let tags: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(tags.len(), 128, "every tag used");
    }

    #[test]
    fn an_id_map_finds_what_was_put_in() {
        let mut map = IdMap::default();
        for id in (0..10_000).map(|i| i * 7) {
            map.insert(ClientId(id), id);
        }
        assert_eq!(map.len(), 10_000);
        assert_eq!(map.get(&ClientId(7 * 9_999)), Some(&(7 * 9_999)));
        assert_eq!(map.get(&ClientId(1)), None);
    }
}
