//! The allocator's policy for a server of many idle connections.
//!
//! glibc's `malloc` gives each thread that allocates at the same time as
//! another an arena of its own (up to eight per core). Memory freed in an
//! arena serves only that arena's later allocations, so a burst of
//! connections spread over the runtime's threads and the parking thread
//! leaves free space in each arena, which the others cannot use: about a
//! tenth of what an idle connection costs (tincan-tokio with 10,000:
//! 0.88-0.95 KiB per connection in one arena, 1.00-1.10 in the default
//! four). With one arena that space serves every thread; small allocations
//! still come from each thread's own cache without a lock, and broadcast
//! throughput on two threads does not change (`bench/README.md`).
//!
//! An operator's `MALLOC_ARENA_MAX` (or `GLIBC_TUNABLES`) is left alone, as
//! is any other C library.

/// Makes every thread share one `malloc` arena (glibc only; see the
/// [module docs](self)). Called first thing in [`crate::main`].
pub fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none()
        && std::env::var_os("GLIBC_TUNABLES").is_none()
    {
        // SAFETY: `mallopt` sets one of malloc's parameters, under malloc's
        // own lock; nothing else is touched.
        #[allow(unsafe_code, reason = "the one call into glibc's malloc settings")]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}
