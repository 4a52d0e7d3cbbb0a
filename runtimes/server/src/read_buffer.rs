//! The buffer a connection task reads its socket into.

/// The buffer a runtime reads a socket into: it starts small, so that an
/// idle connection holds little, and doubles (up to 64 KiB) whenever a read
/// fills it, so that a busy one reads in large chunks. [`ReadBuffer::shrink`]
/// takes it back to its first size when the connection has gone quiet.
#[derive(Debug, Clone)]
pub struct ReadBuffer {
    buf: Vec<u8>,
}

impl ReadBuffer {
    /// A chat message or a short upgrade request (a browser's, with
    /// cookies, may take a read or two more).
    const INITIAL: usize = 512;
    const MAX: usize = 64 * 1024;

    /// A small buffer.
    pub fn new() -> Self {
        Self {
            buf: vec![0; Self::INITIAL],
        }
    }

    /// Where the next read goes.
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// The `n` bytes the last read put in [`ReadBuffer::space`]; grows the
    /// buffer for next time if they filled it.
    pub fn filled(&mut self, n: usize) -> &[u8] {
        if n == self.buf.len() && n < Self::MAX {
            let grown = (2 * n).min(Self::MAX);
            self.buf.resize(grown, 0);
        }
        &self.buf[..n.min(self.buf.len())]
    }

    /// Back to the first size, for a connection that has gone quiet.
    pub fn shrink(&mut self) {
        if self.buf.len() > Self::INITIAL {
            self.buf = vec![0; Self::INITIAL];
        }
    }
}

impl Default for ReadBuffer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_buffers_grow_while_reads_fill_them() {
        let mut buf = ReadBuffer::new();
        assert_eq!(buf.space().len(), 512);
        buf.space()[..3].copy_from_slice(b"abc");
        assert_eq!(buf.filled(3), b"abc");
        assert_eq!(buf.space().len(), 512, "a partial read does not grow it");
        let mut len = 512;
        while len < 64 * 1024 {
            buf.space().fill(7);
            assert_eq!(buf.filled(len), vec![7; len]);
            len *= 2;
            assert_eq!(buf.space().len(), len);
        }
        assert_eq!(buf.filled(len).len(), len);
        assert_eq!(buf.space().len(), 64 * 1024, "bounded");
        buf.shrink();
        assert_eq!(buf.space().len(), 512, "quiet again");
    }
}
