//! The daemon's memory hygiene with glibc's allocator: few arenas (the blocking pool runs many
//! threads, and an arena per thread keeps freed memory scattered and resident), and freed memory
//! handed back to the OS once the daemon has been idle for `IDLE` after an install, so an idle
//! daemon stays small while installs that follow each other closely keep their pages.
//!
//! Must not: allocate on behalf of anyone, or run on the async executor (trimming walks the
//! whole heap).

/// Set the allocator up; call once at start, before threads exist. `HOARD_MALLOC_ARENAS`
/// sets the number of arenas (0: glibc's default, 8 per core).
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
        // Freed memory stays with the allocator between requests (a no-op reuses it instead of
        // faulting fresh pages in), and big buffers come from the heap, not from a fresh mmap
        // each time; `give_back` returns it all once an install is over.
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
    }
}

/// How long the daemon must have been idle after an install before `give_back` runs.
pub const IDLE: std::time::Duration = std::time::Duration::from_millis(500);

/// Return free heap memory to the OS (blocking: call from a blocking thread).
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}
