//! The buffer every connection task on a thread reads its socket into.
//!
//! A connection holds no read buffer of its own: it reads into its thread's
//! one, and the session takes the bytes (the protocol keeps only what ends
//! mid-frame) before the task can wait again. So an idle connection holds
//! none, and a busy one reads up to [`SIZE`] bytes in one system call.
//!
//! The bytes stay valid only until the task waits: another task on the
//! thread reads into the same buffer then. [`Filled`] enforces it: it is not
//! `Send`, so a task's future that held one across an `.await` would not be
//! `Send` either, and the runtime would not take it.

use std::cell::RefCell;
use std::io;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use crate::runtime::Socket;

/// The size of each thread's buffer, and so the most one read takes.
pub const SIZE: usize = 64 * 1024;

thread_local! {
    /// Made on a thread's first read, zeroed once.
    static BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; SIZE].into_boxed_slice());
}

/// What a read put in the thread's buffer: to be taken with
/// [`Filled::take`] before the task waits again. Not `Send`, which is what
/// keeps it from outliving the poll that read it:
///
/// ```compile_fail
/// fn across_an_await<T: Send>() {}
/// across_an_await::<tincan_server::read_buffer::Filled>();
/// ```
#[derive(Debug)]
pub struct Filled {
    len: usize,
    /// Not `Send` (see the module's doc).
    _here: PhantomData<*const ()>,
}

impl Filled {
    /// How many bytes were read; 0 is the end of the stream.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the read found the end of the stream.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Hands the bytes read to `take`.
    pub fn take<T>(self, take: impl FnOnce(&[u8]) -> T) -> T {
        BUFFER.with_borrow(|buffer| take(&buffer[..self.len]))
    }
}

/// Reads what has arrived on `socket` into the thread's buffer, or arranges
/// for `cx` to be woken when something may have (see
/// [`Socket::poll_read`]).
pub fn poll_read(socket: &impl Socket, cx: &mut Context<'_>) -> Poll<io::Result<Filled>> {
    BUFFER
        .with_borrow_mut(|buffer| socket.poll_read(cx, buffer))
        .map_ok(|len| Filled {
            len: len.min(SIZE),
            _here: PhantomData,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::IoSlice;
    use std::sync::Mutex;
    use std::task::Waker;

    /// A socket that hands out what it was given, in reads of any size.
    struct Bytes(Mutex<Vec<u8>>);

    impl Socket for Bytes {
        fn poll_read(&self, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            let mut bytes = self.0.lock().expect("lock");
            let n = bytes.len().min(buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            bytes.drain(..n);
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            &self,
            _: &mut Context<'_>,
            _: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(0))
        }

        fn shutdown_write(&self) -> io::Result<()> {
            Ok(())
        }
    }

    fn read(socket: &Bytes) -> Filled {
        let mut cx = Context::from_waker(Waker::noop());
        match poll_read(socket, &mut cx) {
            Poll::Ready(Ok(filled)) => filled,
            other => panic!("a ready read, not {other:?}"),
        }
    }

    #[test]
    fn reads_take_up_to_the_buffer_and_hand_over_exactly_what_came() {
        let all: Vec<u8> = (0..SIZE + 100).map(|i| i as u8).collect();
        let socket = Bytes(Mutex::new(all.clone()));
        let first = read(&socket);
        assert_eq!(first.len(), SIZE, "one read takes a whole buffer");
        assert_eq!(first.take(<[u8]>::to_vec), all[..SIZE]);
        let second = read(&socket);
        assert_eq!(second.take(<[u8]>::to_vec), all[SIZE..], "no stale bytes");
        let end = read(&socket);
        assert!(end.is_empty(), "then the end of the stream");
    }

    #[test]
    fn each_thread_reads_into_its_own_buffer() {
        let here = Bytes(Mutex::new(b"here".to_vec()));
        let filled = read(&here);
        std::thread::spawn(|| {
            let there = Bytes(Mutex::new(b"there, longer".to_vec()));
            assert_eq!(read(&there).take(<[u8]>::to_vec), b"there, longer");
        })
        .join()
        .expect("the other thread");
        assert_eq!(filled.take(<[u8]>::to_vec), b"here");
    }
}
