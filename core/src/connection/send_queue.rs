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
    Owned(Vec<u8>),
    Shared(Arc<[u8]>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Owned(v) => v,
            Self::Shared(s) => s,
        }
    }
}

/// Queued output: sealed chunks, then the tail that takes small frames.
#[derive(Debug, Default)]
pub(super) struct SendQueue {
    chunks: VecDeque<Chunk>,
    tail: Vec<u8>,
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

    /// Queues shared bytes without copying them.
    pub(super) fn push_shared(&mut self, bytes: Arc<[u8]>) {
        if !self.tail.is_empty() {
            let tail = std::mem::take(&mut self.tail);
            self.chunks.push_back(Chunk::Owned(tail));
        }
        self.len += bytes.len();
        self.chunks.push_back(Chunk::Shared(bytes));
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

    /// Marks `n` bytes as written.
    pub(super) fn advance(&mut self, mut n: usize) {
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
                    Some(Chunk::Owned(v)) if self.tail.is_empty() => {
                        // Reuse the allocation.
                        self.tail = v;
                        self.tail.clear();
                    }
                    Some(_) => {}
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
            self.offset = 0;
        }
    }

    /// Heap bytes held (capacity), shared chunks counted as their slots.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Chunk>() + self.tail.capacity()
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

        queue.advance(3);
        assert_eq!(queue.front(), Some(&b"ared"[..]));
        assert_eq!(collect(&queue), b"aredbc");
        queue.advance(4);
        assert_eq!(Arc::strong_count(&shared), 1, "released once written");
        assert_eq!(queue.front(), Some(&b"bc"[..]));
        queue.advance(100);
        assert_eq!((queue.len(), queue.written(), queue.front()), (0, 9, None));
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
