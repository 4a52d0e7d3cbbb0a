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
