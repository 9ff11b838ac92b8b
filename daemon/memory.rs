//! The daemon's memory hygiene with glibc's allocator: few arenas (the blocking pool runs many
//! threads, and an arena per thread keeps freed memory scattered and resident), and freed memory
//! handed back to the OS once an install is over, so an idle daemon stays small.
//!
//! Must not: allocate on behalf of anyone, or run on the async executor (trimming walks the
//! whole heap).

/// Set the allocator up; call once at start, before threads exist.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Return free heap memory to the OS (blocking: call from a blocking thread).
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}
