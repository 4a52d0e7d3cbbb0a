//! The allocator's policy for a server of many idle connections.
//!
//! glibc's `malloc` gives each thread that allocates at the same time as
//! another an arena of its own (up to eight per core). Memory freed in an
//! arena serves only that arena's later allocations, so a burst of
//! connections spread over the runtime's threads and the parking thread
//! leaves free space in each arena that the others cannot use: about 0.1
//! KiB per idle connection (tincan-tokio with 10,000: 0.89-0.95 KiB per
//! connection in one arena, 1.00-1.10 in the five it otherwise makes).
//! With one arena that space serves every thread. Most small allocations
//! still come from each thread's own cache (glibc's tcache, a few chunks of
//! each size) without the arena's lock, and broadcast throughput on two
//! threads does not change (`bench/README.md`); on many cores the one lock
//! may cost more, which an operator can undo.
//!
//! An operator's `MALLOC_ARENA_MAX` (or `glibc.malloc.arena_max` in
//! `GLIBC_TUNABLES`) is left alone, as is any other C library.
//!
//! What a burst of connections frees in the middle of the heap (their
//! handshakes' and tasks' memory, the notices that announced them) stays
//! resident: `free` gives memory back to the kernel only from the heap's
//! top, and the connections' lasting state lies above it. How much
//! depends on how many were in their handshake at once: 0.07-0.33 KiB
//! per connection, run to run, of tincan-tokio's 0.83-1.09 KiB with
//! 10,000 idle. [`give_back`] returns the whole free pages among it, and
//! the parking thread calls it once such a burst has gone idle (see
//! `serve/park.rs`).

/// Makes every thread share one `malloc` arena (glibc only; see the
/// module's docs). Called first thing in [`crate::main`], before any other
/// thread exists: glibc reads the setting without a lock when a thread
/// first allocates.
pub(crate) fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none()
        && !std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc.arena_max"))
    {
        // SAFETY: `mallopt` sets one of malloc's parameters and nothing
        // else; no other thread exists yet to read it meanwhile.
        #[allow(unsafe_code, reason = "the one call into glibc's malloc settings")]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// Gives the whole pages of the heap's free memory back to the kernel
/// (glibc's `malloc_trim`, which since glibc 2.8 releases free pages
/// anywhere in the heap, not only at its top); `false` where there is no
/// such call (any other C library), and nothing was done. The
/// allocator's lock is held while it walks its free lists: 0.2 ms for
/// tincan-tokio's heap with 10,000 idle connections.
pub(crate) fn give_back() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` only returns free memory to the kernel,
        // under the allocator's own lock; any thread may call it at any
        // time.
        #[allow(
            unsafe_code,
            reason = "the one call that returns freed memory to the kernel"
        )]
        unsafe {
            libc::malloc_trim(0);
        }
        true
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}
