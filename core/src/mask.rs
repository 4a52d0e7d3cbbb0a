//! The masking kernel (RFC 6455 §5.3).
//!
//! Every client-to-server payload is XORed with a 4-byte key, byte `i` with
//! `key[i % 4]`. Masking and unmasking are the same operation. Payloads arrive
//! in pieces, so the kernel takes the offset of `buf` within the payload.

/// XORs `buf` with `key`, as if `buf` started at byte `offset` of the payload.
///
/// Works a machine word at a time, in safe code; the compiler vectorises the
/// inner loop.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate(key, offset);
    // The key twice over, as one word (whatever the byte order, both
    // halves hold the same four bytes). Put together byte by byte, it cost
    // the core's echo loop 26 more instructions per 20 B message (386
    // against 360 when measured, with `bench/instructions.sh core`).
    let half = u64::from(u32::from_ne_bytes(key));
    let word = half << 32 | half;
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    // 8 is a multiple of 4, so the tail starts at key[0] again: up to 7
    // bytes, a word of 4 and then fewer than 4 (a cycling iterator over the
    // key cost more than a short payload's words).
    let rest = chunks.into_remainder();
    let (word, rest) = rest.split_at_mut(if rest.len() >= 4 { 4 } else { 0 });
    if let Ok(four) = <&mut [u8; 4]>::try_from(word) {
        *four = (u32::from_ne_bytes(*four) ^ u32::from_ne_bytes(key)).to_ne_bytes();
    }
    for (byte, k) in rest.iter_mut().zip(key) {
        *byte ^= k;
    }
}

/// Appends `src` to `out`, XORed with `mask`'s key if it has one (a plain
/// copy if not), as if `src` started at byte `offset` of the payload: the
/// copy and the unmasking in one pass, where
/// copying and then [`apply_mask`] would read and write the bytes twice
/// (`cargo bench -p tincan-core --bench frame -- copy`, 2026-12-06: 1.5
/// against 2.9 µs for 64 KiB, 43 against 57 µs for 1 MiB; at 1 KiB, with
/// both buffers in the cache, the two are even, 24 to 28 ns).
///
/// Works 32 bytes at a time, in safe code: the compiler turns each block
/// into vector loads, XORs and stores straight into `out`'s spare room.
/// The last 31 bytes or fewer (all of a short payload) are copied and
/// then masked a word at a time, which is faster for so few. Always
/// inlined: a short payload (a chat line) costs its caller no call, as
/// when it was copied and masked in place (when this was written, at
/// 20 B and depth 16: 812 instructions per echo, against 799 before and
/// 840 with a call; `bench/instructions.sh tincan-tokio 20 16`).
#[inline(always)]
pub fn extend_masked(out: &mut Vec<u8>, src: &[u8], mask: Option<[u8; 4]>, offset: usize) {
    let Some(key) = mask else {
        return out.extend_from_slice(src);
    };
    if src.len() >= 32 {
        return extend_masked_blocks(out, src, key, offset);
    }
    extend_then_mask(out, src, key, offset);
}

/// Under a block: copied, then masked in place a word at a time.
#[inline(always)]
fn extend_then_mask(out: &mut Vec<u8>, src: &[u8], key: [u8; 4], offset: usize) {
    let start = out.len();
    out.extend_from_slice(src);
    apply_mask(&mut out[start..], key, offset);
}

/// [`extend_masked`] for a payload of a block or more: kept out of line,
/// so that the short path inlines where it is called.
#[inline(never)]
fn extend_masked_blocks(out: &mut Vec<u8>, src: &[u8], key: [u8; 4], offset: usize) {
    let key = rotate(key, offset);
    out.reserve(src.len());
    // 32 is a multiple of 4: every block, and the tail, starts at key[0].
    let mut pattern = [0u8; 32];
    for (p, k) in pattern.iter_mut().zip(key.iter().cycle()) {
        *p = *k;
    }
    let blocks = src.chunks_exact(32);
    let tail = blocks.remainder();
    out.extend(blocks.flat_map(|block| {
        let mut masked = [0u8; 32];
        for ((m, b), p) in masked.iter_mut().zip(block).zip(&pattern) {
            *m = b ^ p;
        }
        masked
    }));
    extend_then_mask(out, tail, key, 0);
}

/// The key as seen from byte `offset` of the payload.
/// (One rotate instruction: `<[u8]>::rotate_left` is an out-of-line call
/// that cost more than unmasking a short payload.)
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    // Little-endian, byte `i` of the key is bits 8i..8i+8: moving each byte
    // `offset` places towards the front is a right rotation.
    let bits = 8 * (offset % 4) as u32;
    u32::from_le_bytes(key).rotate_right(bits).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn rfc_5_7_masked_hello() {
        // §5.7: "A single-frame masked text message" carries "Hello" masked
        // with 37 fa 21 3d.
        let mut payload = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&payload, b"Hello");
    }

    #[test]
    fn rfc_5_7_masked_hello_extended_in_pieces() {
        let masked = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = Vec::new();
        extend_masked(&mut out, &masked[..3], Some(key), 0);
        extend_masked(&mut out, &masked[3..], Some(key), 3);
        assert_eq!(&out, b"Hello");
    }

    proptest! {
        #[test]
        fn matches_the_bytewise_definition(
            data in proptest::collection::vec(any::<u8>(), 0..100),
            key in any::<[u8; 4]>(),
            offset in 0usize..16,
        ) {
            let mut fast = data.clone();
            let mut slow = data.clone();
            apply_mask(&mut fast, key, offset);
            naive(&mut slow, key, offset);
            prop_assert_eq!(fast, slow);
        }

        #[test]
        fn extending_masked_is_copying_then_masking(
            before in proptest::collection::vec(any::<u8>(), 0..8),
            data in proptest::collection::vec(any::<u8>(), 0..200),
            mask in proptest::option::of(any::<[u8; 4]>()),
            offset in 0usize..16,
        ) {
            let mut fused = before.clone();
            extend_masked(&mut fused, &data, mask, offset);
            let mut slow = data.clone();
            if let Some(key) = mask {
                naive(&mut slow, key, offset);
            }
            prop_assert_eq!(&fused[..before.len()], &before[..]);
            prop_assert_eq!(&fused[before.len()..], &slow[..]);
        }

        #[test]
        fn masking_in_pieces_equals_masking_whole(
            data in proptest::collection::vec(any::<u8>(), 0..100),
            key in any::<[u8; 4]>(),
            split in 0usize..100,
        ) {
            let split = split.min(data.len());
            let mut whole = data.clone();
            apply_mask(&mut whole, key, 0);
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split);
            prop_assert_eq!(whole, pieces);
        }
    }
}
