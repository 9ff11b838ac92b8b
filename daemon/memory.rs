//! The daemon's allocator and its memory hygiene.
//!
//! On Linux, Rust's allocations go to jemalloc (the `tikv-jemallocator` crate, the binding
//! TiKV and others maintain): the resolver and the lockfile writer make hundreds of thousands of
//! small allocations per install from several threads, and glibc's malloc spent about a quarter
//! of a warm resolve in its own bookkeeping and arena locks. jemalloc returns freed pages to the
//! OS on its own, on a decay clock run by its background thread (`JEMALLOC_CONF`), so an idle
//! daemon shrinks without being asked. Once the daemon has been idle for `IDLE` after an
//! install, `give_back_unless_within` purges at once, unless its free pages fit in a warm reserve
//! (`reserve_bytes`): those are kept for the next request (faulting them back in cost a warm
//! resolve about an eighth of its time) until `LONG_IDLE` has passed, when `give_back` purges
//! everything. C code (SQLite) keeps glibc's malloc, with few arenas (the
//! blocking pool runs many threads, and an arena per thread keeps freed memory scattered and
//! resident), trimmed by `give_back` too. Elsewhere the system allocator is used as it is.
//!
//! Values whose freeing can wait are kept (`free_later`) until an install's client has its
//! answer (`free_deferred`).
//!
//! Must not: allocate on behalf of anyone (beyond the box `free_later` keeps a value in), or
//! run on the async executor (purging and trimming walk the heaps).

#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts (`_RJEM_MALLOC_CONF` in the environment adds to
/// them): two arenas (as glibc's below: freed memory in few places); freed pages handed back to
/// the OS over `LONG_IDLE` of disuse by the background thread (sooner by
/// `give_back_unless_within`), with `MADV_DONTNEED` (`muzzy_decay_ms:0`: pages left to
/// `MADV_FREE` would still count as resident until the kernel wants them); per-thread caches
/// for objects up to 256 bytes only (the blocking pool's idle threads keep what their caches
/// hold until they exit: with the default 32 KiB the daemon stayed ~30 MB larger after an
/// install).
#[cfg(target_os = "linux")]
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_CONF: jemalloc::Conf = jemalloc::Conf(
    c"background_thread:true,narenas:2,dirty_decay_ms:10000,muzzy_decay_ms:0,tcache_max:256"
        .as_ptr(),
);

/// How long the daemon must have been idle after an install before `give_back_unless_within` runs.
pub const IDLE: std::time::Duration = std::time::Duration::from_millis(500);

/// How long an idle daemon keeps its warm reserve before `give_back` hands back everything
/// (the same as the allocator's own decay above).
pub const LONG_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// Free heap pages an idle daemon keeps for `LONG_IDLE` (default: `RESERVE_MB`); more than this
/// is handed back after `IDLE`. `HOARD_MEMORY_RESERVE_MB` sets it (0: hand back everything
/// after `IDLE`).
pub fn reserve_bytes() -> usize {
    static RESERVE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *RESERVE.get_or_init(|| {
        std::env::var("HOARD_MEMORY_RESERVE_MB")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(RESERVE_MB)
            << 20
    })
}

/// The default warm reserve, in MiB: a warm resolve leaves ~10-12 MiB free, a warm install
/// 13-27 MiB, a cold one more; after the cold installs of `bench/memory.sh` the daemon holds
/// ~115 MiB besides, and issue #10's bound is 150.
pub const RESERVE_MB: usize = 24;

/// Set the allocators up; call once at start, before threads exist. `HOARD_MALLOC_ARENAS`
/// sets the number of glibc arenas for C code (0: glibc's default, 8 per core).
pub fn tune() {
    let arenas = std::env::var("HOARD_MALLOC_ARENAS")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(2);
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas; // only glibc's allocator is tuned
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads start.
    unsafe {
        if arenas > 0 {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// Return free heap memory to the OS unless the allocator's free pages are at most `reserve`
/// bytes; whether it did (blocking: call from a blocking thread). Where the free pages cannot
/// be counted, it always does.
pub fn give_back_unless_within(reserve: usize) -> bool {
    let free = free_bytes();
    let purge = free.is_none_or(|f| f > reserve);
    if purge {
        give_back();
    }
    tracing::debug!(
        free_mb = free.map(|f| f >> 20),
        reserve_mb = reserve >> 20,
        purged = purge,
        "idle: free heap pages"
    );
    purge
}

/// Bytes of free pages the allocator holds (resident, handed back by `give_back`), where it
/// can say.
pub fn free_bytes() -> Option<usize> {
    #[cfg(target_os = "linux")]
    return jemalloc::dirty_bytes();
    #[cfg(not(target_os = "linux"))]
    return None;
}

/// Return free heap memory to the OS (blocking: call from a blocking thread).
pub fn give_back() {
    #[cfg(target_os = "linux")]
    jemalloc::purge();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Values kept by `free_later` until `free_deferred`.
static DEFERRED: std::sync::Mutex<Vec<Box<dyn std::any::Any + Send>>> =
    std::sync::Mutex::new(Vec::new());

/// Keep `value` (a resolver's graph, an install's tree) to be freed by `free_deferred` once the
/// client has its answer: freeing one takes a millisecond or more, and on two cores even a
/// thread of its own would take that from the answer's last steps.
pub fn free_later<T: Send + 'static>(value: T) {
    if let Ok(mut d) = DEFERRED.lock() {
        d.push(Box::new(value));
    }
}

/// Free what `free_later` kept. Blocking: call it from the blocking pool, after the answer.
pub fn free_deferred() {
    let kept = DEFERRED
        .lock()
        .map(|mut d| std::mem::take(&mut *d))
        .unwrap_or_default();
    drop(kept);
}

#[cfg(target_os = "linux")]
mod jemalloc {
    /// `malloc_conf`: a C string jemalloc reads once, before `main`.
    #[repr(transparent)]
    pub struct Conf(pub *const std::ffi::c_char);

    // SAFETY: it points at a string literal that is never written.
    unsafe impl Sync for Conf {}

    /// Read a `size_t` statistic by name.
    fn read_usize(name: &std::ffi::CStr) -> Option<usize> {
        let mut value: usize = 0;
        let mut len = std::mem::size_of::<usize>();
        // SAFETY: `value` is a size_t and `len` its size, as these names are documented.
        let rc = unsafe {
            tikv_jemalloc_sys::mallctl(
                name.as_ptr(),
                (&mut value as *mut usize).cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        (rc == 0 && len == std::mem::size_of::<usize>()).then_some(value)
    }

    /// Bytes in every arena's unused dirty pages (`stats.arenas.<MALLCTL_ARENAS_ALL>.pdirty`
    /// times `arenas.page`), after refreshing the statistics (`epoch`).
    pub fn dirty_bytes() -> Option<usize> {
        let mut epoch: u64 = 1;
        // SAFETY: `epoch` is a uint64_t written to refresh jemalloc's statistics.
        let rc = unsafe {
            tikv_jemalloc_sys::mallctl(
                c"epoch".as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                (&mut epoch as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        if rc != 0 {
            return None;
        }
        let pages = read_usize(c"stats.arenas.4096.pdirty")?;
        Some(pages * read_usize(c"arenas.page")?)
    }

    /// Purge every arena's unused dirty pages (`arena.<MALLCTL_ARENAS_ALL>.purge`).
    pub fn purge() {
        // SAFETY: a documented void mallctl: no values read or written.
        unsafe {
            tikv_jemalloc_sys::mallctl(
                c"arena.4096.purge".as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            );
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn free_pages_are_counted_and_kept_within_the_reserve() {
        // 16 MiB touched and freed, in blocks below jemalloc's oversize threshold (larger ones
        // go to an arena that purges at once): kept as free (dirty) pages until purged.
        let blocks: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8 | 1; 256 << 10]).collect();
        std::hint::black_box(&blocks);
        drop(blocks);
        let free = free_bytes().expect("jemalloc counts its free pages");
        assert!(free >= 8 << 20, "16 MiB freed, {free} bytes counted free");
        assert!(
            !give_back_unless_within(usize::MAX),
            "free pages within the reserve are kept"
        );
        assert!(
            give_back_unless_within(0),
            "free pages beyond the reserve are purged"
        );
    }
}
