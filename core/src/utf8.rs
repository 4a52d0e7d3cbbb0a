//! Incremental UTF-8 validation (RFC 6455 §8.1).
//!
//! Text arrives in frames and frames arrive in pieces; a code point may be split
//! anywhere. The validator fails on the first byte that can no longer begin or
//! continue a valid sequence, so a connection can be failed with 1007 before the
//! rest of a bad message arrives.

/// Invalid UTF-8 was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Utf8Error {
    /// A byte that cannot appear at this point of a UTF-8 sequence.
    #[error("invalid UTF-8 sequence")]
    Invalid,
    /// The text ended in the middle of a multi-byte sequence.
    #[error("text ends inside a UTF-8 sequence")]
    Incomplete,
}

/// Validates UTF-8 fed in arbitrary pieces.
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    /// Bytes of a sequence begun in an earlier piece (at most 3).
    pending: [u8; 4],
    pending_len: usize,
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next piece of text.
    ///
    /// Fails as soon as the text so far cannot be the prefix of valid UTF-8.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Utf8Error> {
        if self.pending_len > 0 {
            bytes = self.complete_pending(bytes)?;
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(Utf8Error::Invalid),
            Err(e) => {
                // A valid but unfinished sequence at the end (at most 3 bytes).
                let tail = &bytes[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len();
                Ok(())
            }
        }
    }

    /// Checks that the text did not stop inside a sequence, and resets.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let complete = self.pending_len == 0;
        self.pending_len = 0;
        if complete {
            Ok(())
        } else {
            Err(Utf8Error::Incomplete)
        }
    }

    /// Moves bytes from `bytes` into the pending sequence until it is complete;
    /// returns the bytes that follow it.
    fn complete_pending<'a>(&mut self, bytes: &'a [u8]) -> Result<&'a [u8], Utf8Error> {
        for (used, &byte) in bytes.iter().enumerate() {
            self.pending[self.pending_len] = byte;
            self.pending_len += 1;
            match std::str::from_utf8(&self.pending[..self.pending_len]) {
                Ok(_) => {
                    self.pending_len = 0;
                    return Ok(&bytes[used + 1..]);
                }
                Err(e) if e.error_len().is_some() => return Err(Utf8Error::Invalid),
                Err(_) => {}
            }
        }
        Ok(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feed_split(bytes: &[u8], splits: &[usize]) -> Result<(), Utf8Error> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &s in splits {
            let s = s.clamp(start, bytes.len());
            v.feed(&bytes[start..s])?;
            start = s;
        }
        v.feed(&bytes[start..])?;
        v.finish()
    }

    #[test]
    fn accepts_text_split_inside_code_points() {
        let text = "κόσμε 𝄞 ok".as_bytes();
        for i in 0..text.len() {
            for j in i..text.len() {
                assert_eq!(feed_split(text, &[i, j]), Ok(()), "split at {i},{j}");
            }
        }
    }

    #[test]
    fn fails_fast_on_the_first_invalid_byte() {
        // "κόσμε" followed by 0xED 0xA0 0x80 (a UTF-16 surrogate): the second
        // byte is already impossible, before the text ends.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed("κόσμε".as_bytes()), Ok(()));
        assert_eq!(v.feed(&[0xed]), Ok(()));
        assert_eq!(v.feed(&[0xa0]), Err(Utf8Error::Invalid));
    }

    #[test]
    fn rejects_a_truncated_sequence_at_the_end() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[0xf0, 0x9d]), Ok(()));
        assert_eq!(v.finish(), Err(Utf8Error::Incomplete));
        // finish() resets for the next message.
        assert_eq!(v.feed(b"fine"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn rejects_overlong_and_out_of_range() {
        for bad in [&[0xc0, 0x80][..], &[0xf4, 0x90, 0x80, 0x80], &[0xff]] {
            assert!(feed_split(bad, &[1]).is_err(), "{bad:x?}");
        }
    }

    proptest! {
        #[test]
        fn agrees_with_std_for_every_split(
            bytes in proptest::collection::vec(any::<u8>(), 0..40),
            mut splits in proptest::collection::vec(0usize..40, 0..4),
        ) {
            splits.sort_unstable();
            let expected = std::str::from_utf8(&bytes).is_ok();
            prop_assert_eq!(feed_split(&bytes, &splits).is_ok(), expected);
        }

        #[test]
        fn agrees_with_std_on_mostly_valid_text(
            text in "\\PC{0,20}",
            noise in any::<u8>(),
            at in 0usize..80,
            split in 0usize..80,
        ) {
            let mut bytes = text.into_bytes();
            let at = at.min(bytes.len());
            bytes.insert(at, noise);
            let expected = std::str::from_utf8(&bytes).is_ok();
            prop_assert_eq!(feed_split(&bytes, &[split]).is_ok(), expected);
        }
    }
}
