//! The bytes a connection has queued for the transport, in order: frames it
//! encoded itself, copied into a growing tail, and prepared frames shared with
//! every other connection they were queued on (never copied, whatever their
//! size). A writer takes them one slice at a time or many at once for a
//! vectored write.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;

#[derive(Debug)]
enum Chunk {
    /// A tail sealed by what was pushed behind it.
    Owned(Vec<u8>),
    /// A buffer handed over whole (a message's payload), handed back once
    /// written.
    Given(Vec<u8>),
    Shared(Arc<[u8]>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Owned(v) | Self::Given(v) => v,
            Self::Shared(s) => s,
        }
    }
}

/// Sealed tails' buffers kept for reuse.
const SPARE_TAILS: usize = 4;

/// Queued output: sealed chunks, then the tail that takes small frames.
#[derive(Debug, Default)]
pub(super) struct SendQueue {
    chunks: VecDeque<Chunk>,
    tail: Vec<u8>,
    /// Sealed tails' buffers, written and kept (up to [`SPARE_TAILS`]) for
    /// the next tails: frames of its own between shared or given chunks
    /// then allocate nothing.
    spares: Vec<Vec<u8>>,
    /// How much of the front chunk (or of the tail) was written.
    offset: usize,
    len: usize,
    /// Bytes written since the start: with `len`, a position in the stream.
    written: u64,
}

impl SendQueue {
    /// Bytes queued and not yet written.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes written since the start.
    pub(super) fn written(&self) -> u64 {
        self.written
    }

    /// Where the next queued byte will be in the stream.
    pub(super) fn end(&self) -> u64 {
        self.written + self.len as u64
    }

    /// Appends what `encode` writes into the tail.
    pub(super) fn encode(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        let before = self.tail.len();
        encode(&mut self.tail);
        self.len += self.tail.len() - before;
    }

    /// Queues shared bytes without copying them. (None are empty: an empty
    /// chunk would stop [`SendQueue::front`] before the chunks behind it.)
    pub(super) fn push_shared(&mut self, bytes: Arc<[u8]>) {
        if bytes.is_empty() {
            return;
        }
        self.seal_tail();
        self.len += bytes.len();
        self.chunks.push_back(Chunk::Shared(bytes));
    }

    /// Queues a buffer without copying it; [`SendQueue::advance`] hands it
    /// back once it is written (an empty one is dropped at once).
    pub(super) fn push_given(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        self.seal_tail();
        self.len += bytes.len();
        self.chunks.push_back(Chunk::Given(bytes));
    }

    /// Ends the tail as a chunk of its own, so that what is pushed next
    /// goes behind it.
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            let next = self.spares.pop().unwrap_or_default();
            let tail = std::mem::replace(&mut self.tail, next);
            self.chunks.push_back(Chunk::Owned(tail));
        }
    }

    /// The next bytes to write.
    pub(super) fn front(&self) -> Option<&[u8]> {
        let chunk = match self.chunks.front() {
            Some(chunk) => chunk.bytes(),
            None => &self.tail,
        };
        let rest = &chunk[self.offset..];
        (!rest.is_empty()).then_some(rest)
    }

    /// Fills `slices` with the next bytes to write, in order; returns how many
    /// it filled.
    pub(super) fn fill<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let chunks = self.chunks.iter().map(Chunk::bytes);
        let pieces = chunks.chain(std::iter::once(&self.tail[..]));
        let mut offset = self.offset;
        let mut filled = 0;
        for piece in pieces {
            if filled == slices.len() {
                break;
            }
            let rest = &piece[offset..];
            offset = 0;
            if !rest.is_empty() {
                slices[filled] = IoSlice::new(rest);
                filled += 1;
            }
        }
        filled
    }

    /// Marks `n` bytes as written; hands each given buffer written whole to
    /// `written`.
    pub(super) fn advance(&mut self, mut n: usize, mut written: impl FnMut(Vec<u8>)) {
        n = n.min(self.len);
        self.len -= n;
        self.written += n as u64;
        while n > 0 {
            let len = match self.chunks.front() {
                Some(chunk) => chunk.bytes().len(),
                None => self.tail.len(),
            };
            let step = n.min(len - self.offset);
            self.offset += step;
            n -= step;
            if self.offset == len {
                self.offset = 0;
                match self.chunks.pop_front() {
                    // Its buffer takes the next frames.
                    Some(Chunk::Owned(mut v)) => {
                        v.clear();
                        if self.tail.capacity() == 0 {
                            self.tail = v;
                        } else if self.spares.len() < SPARE_TAILS {
                            self.spares.push(v);
                        }
                    }
                    Some(Chunk::Given(v)) => written(v),
                    Some(Chunk::Shared(_)) => {}
                    None => self.tail.clear(),
                }
            }
        }
    }

    /// Frees the queue's allocations if nothing is queued (they are kept
    /// between writes, so that steady traffic allocates nothing).
    pub(super) fn release(&mut self) {
        if self.len == 0 {
            self.chunks = VecDeque::new();
            self.tail = Vec::new();
            self.spares = Vec::new();
            self.offset = 0;
        }
    }

    /// Heap bytes held (capacity), shared chunks counted as their slots.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self.tail.capacity()
            + self.spares.iter().map(Vec::capacity).sum::<usize>()
            + self.spares.capacity() * std::mem::size_of::<Vec<u8>>()
    }

    /// Drops everything queued (the peer will not read it).
    pub(super) fn clear(&mut self) {
        self.chunks.clear();
        self.tail.clear();
        self.offset = 0;
        self.written += self.len as u64;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn collect(queue: &SendQueue) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); 8];
        let n = queue.fill(&mut slices);
        slices[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    #[test]
    fn shared_bytes_are_not_copied_and_order_holds() {
        let shared: Arc<[u8]> = Arc::from(&b"shared"[..]);
        let mut queue = SendQueue::default();
        queue.encode(|out| out.extend_from_slice(b"a"));
        queue.push_shared(Arc::clone(&shared));
        queue.encode(|out| out.extend_from_slice(b"bc"));
        assert_eq!(Arc::strong_count(&shared), 2, "queued by reference");
        assert_eq!((queue.len(), queue.end()), (9, 9));
        assert_eq!(collect(&queue), b"asharedbc");

        queue.advance(3, drop);
        assert_eq!(queue.front(), Some(&b"ared"[..]));
        assert_eq!(collect(&queue), b"aredbc");
        queue.advance(4, drop);
        assert_eq!(Arc::strong_count(&shared), 1, "released once written");
        assert_eq!(queue.front(), Some(&b"bc"[..]));
        queue.advance(100, drop);
        assert_eq!((queue.len(), queue.written(), queue.front()), (0, 9, None));
    }

    /// What the queue is given, in order.
    #[derive(Debug, Clone)]
    enum Push {
        Encoded(Vec<u8>),
        Shared(Vec<u8>),
        Given(Vec<u8>),
    }

    fn any_push() -> impl Strategy<Value = Push> {
        let bytes = proptest::collection::vec(any::<u8>(), 0..40);
        prop_oneof![
            bytes.clone().prop_map(Push::Encoded),
            bytes.clone().prop_map(Push::Shared),
            bytes.prop_map(Push::Given),
        ]
    }

    proptest! {
        /// Whatever is pushed, and however the writes cut it, the bytes
        /// leave in the order they were pushed, and every given buffer
        /// comes back once, after its last byte is written; the buffers
        /// kept between writes stay bounded.
        #[test]
        fn bytes_leave_in_order_and_given_buffers_come_back(
            rounds in proptest::collection::vec(
                (proptest::collection::vec(any_push(), 0..8), 1usize..50),
                1..12,
            ),
        ) {
            let mut queue = SendQueue::default();
            let (mut expected, mut out) = (Vec::new(), Vec::new());
            let (mut given, mut back) = (Vec::new(), Vec::new());
            for (pushes, step) in rounds {
                for push in pushes {
                    match push {
                        Push::Encoded(b) => {
                            expected.extend_from_slice(&b);
                            queue.encode(|out| out.extend_from_slice(&b));
                        }
                        Push::Shared(b) => {
                            expected.extend_from_slice(&b);
                            queue.push_shared(Arc::from(b));
                        }
                        Push::Given(b) => {
                            expected.extend_from_slice(&b);
                            if !b.is_empty() {
                                given.push((expected.len() as u64, b.clone()));
                            }
                            queue.push_given(b);
                        }
                    }
                }
                // Written `step` bytes at a time, until it is empty.
                while let Some(front) = queue.front() {
                    let n = front.len().min(step);
                    out.extend_from_slice(&front[..n]);
                    queue.advance(n, |b| back.push((out.len() as u64, b)));
                }
                prop_assert_eq!(&out, &expected);
                prop_assert!(queue.spares.len() <= SPARE_TAILS);
            }
            // Each came back once the stream had passed its end.
            prop_assert_eq!(back.len(), given.len());
            for ((at, b), (end, g)) in back.iter().zip(&given) {
                prop_assert_eq!(b, g);
                prop_assert!(*at >= *end, "handed back at {} before its end {}", at, end);
            }
        }
    }

    #[test]
    fn fill_stops_at_the_slices_it_has() {
        let mut queue = SendQueue::default();
        for _ in 0..5 {
            queue.push_shared(Arc::from(&b"xy"[..]));
        }
        assert_eq!(queue.fill(&mut [IoSlice::new(&[]); 3]), 3);
        queue.clear();
        assert_eq!((queue.len(), queue.written()), (0, 10));
        assert_eq!(queue.fill(&mut [IoSlice::new(&[]); 3]), 0);
    }
}
