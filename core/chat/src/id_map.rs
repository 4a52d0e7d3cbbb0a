//! Maps keyed by [`ClientId`], hashed by one multiplication.
//!
//! A client id is the embedder's number for a connection (the server counts
//! them up), never a client's input, so the keyed SipHash that `HashMap`
//! uses by default buys little here, and a message to a room looks each
//! member up in every map on its way (the chat's members, the server's
//! lanes and budget). What a client can choose is which of its connections
//! stay open (every 4096th id, say): the hash spreads ids that differ only
//! in their high bits as well as consecutive ones.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::ClientId;

/// 2^64 divided by the golden ratio, odd: multiplying by it spreads
/// consecutive numbers over the high bits, and keeps their low bits
/// distinct (Fibonacci hashing).
const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

/// The hasher of [`IdMap`]: a multiplication per `u64` written, and a
/// rotation at the end, so that the table's bucket (the hash's low bits)
/// comes from the product's high bits, which every bit of the id reaches.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
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

    /// How many of 1024 buckets, and of the 128 tags, `ids` take: the std
    /// map's table picks a bucket by the hash's low bits and keeps the top
    /// 7 as a tag.
    fn spread(ids: impl Iterator<Item = u64>) -> (usize, usize) {
        let hashes: Vec<u64> = ids.map(hash).collect();
        let buckets: HashSet<u64> = hashes.iter().map(|h| h & 1023).collect();
        let tags: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        (buckets.len(), tags.len())
    }

    #[test]
    fn ids_counted_up_or_far_apart_spread_over_buckets_and_tags() {
        // 1024 keys thrown at random take about 647 of 1024 buckets.
        for (ids, what) in [
            (spread(5000..6024), "consecutive"),
            (spread((0..1024).map(|i| i << 12)), "4096 apart"),
            (spread((0..1024).map(|i| 77 + (i << 20))), "a million apart"),
        ] {
            let (buckets, tags) = ids;
            assert!(buckets >= 600, "{what}: {buckets} buckets");
            assert_eq!(tags, 128, "{what}: every tag used");
        }
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
