//! What differs between the operating systems hoard runs on, behind one interface: links
//! (symlinks on Unix; junctions and bin shims on Windows). Callers never `cfg` themselves.
//!
//! Must not: decide what to link where (the linker's planners do).

pub mod shim;

use std::path::Path;

/// Put the bin `name` in `bin_dir` (a `.bin` folder), pointing at `target` (relative to
/// `bin_dir`, `/`-separated): a symlink on Unix; on Windows the three shims npm's cmd-shim
/// writes (`name`, `name.cmd`, `name.ps1`), read from the target's `#!` line.
pub fn link_bin(bin_dir: &Path, name: &str, target: &str) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(target, bin_dir.join(name))
    }
    #[cfg(not(unix))]
    {
        let content = std::fs::read_to_string(bin_dir.join(target)).ok();
        let s = shim::shims(target, content.as_deref());
        std::fs::write(bin_dir.join(format!("{name}.cmd")), s.cmd)?;
        std::fs::write(bin_dir.join(format!("{name}.ps1")), s.ps1)?;
        std::fs::write(bin_dir.join(name), s.sh)
    }
}

/// Flags for opening a directory only to name things relative to it (Linux's `O_PATH`; other
/// Unixes open it for reading).
#[cfg(target_os = "linux")]
pub const DIR_PATH_FLAGS: libc::c_int = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
#[cfg(all(unix, not(target_os = "linux")))]
pub const DIR_PATH_FLAGS: libc::c_int = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;

/// Atomically trade two directory entries (`renameat2(RENAME_EXCHANGE)` on Linux,
/// `renameatx_np(RENAME_SWAP)` on macOS). Returns what the C call returns (0, or -1 with errno;
/// EINVAL/ENOSYS/ENOTSUP where the filesystem cannot).
///
/// # Safety
/// `from` and `to` must be valid NUL-terminated paths, and the fds valid or `AT_FDCWD`.
#[cfg(unix)]
pub unsafe fn rename_exchange(
    from_dir: libc::c_int,
    from: *const libc::c_char,
    to_dir: libc::c_int,
    to: *const libc::c_char,
) -> libc::c_int {
    #[cfg(target_os = "linux")]
    // SAFETY: as the caller promises.
    unsafe {
        libc::renameat2(from_dir, from, to_dir, to, libc::RENAME_EXCHANGE)
    }
    #[cfg(target_vendor = "apple")]
    // SAFETY: as the caller promises.
    unsafe {
        libc::renameatx_np(from_dir, from, to_dir, to, libc::RENAME_SWAP)
    }
    #[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
    {
        let _ = (from_dir, from, to_dir, to);
        // SAFETY: setting errno for the caller's fallback.
        unsafe { *libc::__errno_location() = libc::ENOSYS };
        -1
    }
}

/// Rename, failing with EEXIST rather than replace (`RENAME_NOREPLACE` on Linux, `RENAME_EXCL`
/// on macOS).
///
/// # Safety
/// As for `rename_exchange`.
#[cfg(unix)]
pub unsafe fn rename_noreplace(
    from_dir: libc::c_int,
    from: *const libc::c_char,
    to_dir: libc::c_int,
    to: *const libc::c_char,
) -> libc::c_int {
    #[cfg(target_os = "linux")]
    // SAFETY: as the caller promises.
    unsafe {
        libc::renameat2(from_dir, from, to_dir, to, libc::RENAME_NOREPLACE)
    }
    #[cfg(target_vendor = "apple")]
    // SAFETY: as the caller promises.
    unsafe {
        libc::renameatx_np(from_dir, from, to_dir, to, libc::RENAME_EXCL)
    }
}

/// Make every write to the filesystem holding `fd` durable: `syncfs` on Linux; on macOS
/// `sync` and then `F_FULLFSYNC`, which also has the drive flush its cache (plain fsync does
/// not there).
#[cfg(unix)]
pub fn sync_filesystem(fd: std::os::fd::RawFd) {
    #[cfg(target_os = "linux")]
    // SAFETY: a valid fd; syncfs has no other preconditions.
    unsafe {
        libc::syncfs(fd);
    }
    #[cfg(target_vendor = "apple")]
    // SAFETY: sync has no preconditions; fcntl on a valid fd.
    unsafe {
        libc::sync();
        libc::fcntl(fd, libc::F_FULLFSYNC);
    }
}

/// Whether `dir`'s filesystem ignores case (macOS's default APFS, NTFS, ext4 with casefold):
/// a probe file made with capitals is looked up in lower case. For tests,
/// `HOARD_TEST_ASSUME_CASE_INSENSITIVE=1` makes it say yes (Linux kernels without
/// CONFIG_UNICODE cannot mount a case-insensitive filesystem).
pub fn case_insensitive(dir: &Path) -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    if std::env::var_os("HOARD_TEST_ASSUME_CASE_INSENSITIVE").is_some_and(|v| v == "1") {
        return true;
    }
    let name = format!(
        ".hoard-CaseProbe-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let probe = dir.join(&name);
    if std::fs::write(&probe, b"").is_err() {
        return false;
    }
    let insensitive = std::fs::symlink_metadata(dir.join(name.to_lowercase())).is_ok();
    let _ = std::fs::remove_file(&probe);
    insensitive
}
