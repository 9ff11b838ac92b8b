//! The Unix side of `platform` (Linux and macOS): folders held open by fd with every per-file
//! call made relative to them (`openat`, `linkat`, `fstatat`, `mkdirat`, `renameat2` /
//! `renameatx_np`), files written unnamed and named once whole (Linux's `O_TMPFILE`), Unix modes
//! and owners, and durability (`syncfs`, `F_FULLFSYNC`).
//!
//! Must not: be named outside `platform` (callers use `platform::…`, which is the same
//! interface on Windows).

use std::ffi::CStr;
use std::fs::{File, Metadata, Permissions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// A short name made NUL-terminated on the stack (file names in the store are short);
/// longer ones are allocated.
fn with_c<T>(name: &str, f: impl FnOnce(&CStr) -> io::Result<T>) -> io::Result<T> {
    let mut buf = [0u8; 256];
    if name.len() < buf.len() && !name.as_bytes().contains(&0) {
        buf[..name.len()].copy_from_slice(name.as_bytes());
        let c = CStr::from_bytes_until_nul(&buf).map_err(io::Error::other)?;
        return f(c);
    }
    let c = std::ffi::CString::new(name).map_err(io::Error::other)?;
    f(&c)
}

fn path_c(p: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Flags for opening a directory only to name things relative to it (Linux's `O_PATH`; other
/// Unixes open it for reading).
#[cfg(target_os = "linux")]
const DIR_PATH_FLAGS: libc::c_int = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
#[cfg(not(target_os = "linux"))]
const DIR_PATH_FLAGS: libc::c_int = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;

/// A folder held open; names given to its methods are relative to it (`/`-separated).
pub struct Dir(OwnedFd);

impl Dir {
    /// Open `path` to make, link and move things inside it.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let c = path_c(path)?;
        // SAFETY: a valid NUL-terminated path; the fd returned is owned here.
        let fd = unsafe { libc::open(c.as_ptr(), DIR_PATH_FLAGS) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and belongs to nothing else.
        Ok(Dir(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// (size, mtime in seconds) of `name`, not following a symlink.
    pub fn stat(&self, name: &str) -> io::Result<(u64, i64)> {
        with_c(name, |c| {
            // SAFETY: a zeroed stat for the call to fill; valid fd and NUL-terminated name.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            let flags = libc::AT_SYMLINK_NOFOLLOW;
            check(unsafe { libc::fstatat(self.fd(), c.as_ptr(), &mut st, flags) })?;
            Ok((st.st_size as u64, st.st_mtime))
        })
    }

    /// Hard-link `name` to `rel` inside `to`.
    pub fn hard_link(&self, name: &str, to: &Dir, rel: &str) -> io::Result<()> {
        with_c(name, |from| {
            with_c(rel, |dest| {
                // SAFETY: valid fds and NUL-terminated paths.
                check(unsafe { libc::linkat(self.fd(), from.as_ptr(), to.fd(), dest.as_ptr(), 0) })
            })
        })
    }

    /// Make folder `rel` (its parent must exist); an existing one is an `AlreadyExists` error.
    pub fn mkdir(&self, rel: &str) -> io::Result<()> {
        // SAFETY: a valid directory fd and a NUL-terminated relative path.
        with_c(rel, |c| {
            check(unsafe { libc::mkdirat(self.fd(), c.as_ptr(), 0o755) })
        })
    }

    /// Create file `name` (it must not exist) with `mode` exactly (whatever the umask), open
    /// for writing.
    pub fn create(&self, name: &str, mode: u32) -> io::Result<File> {
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC;
        let fd = with_c(name, |c| {
            // SAFETY: a valid directory fd and NUL-terminated name.
            let fd = unsafe { libc::openat(self.fd(), c.as_ptr(), flags, mode) };
            if fd < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(fd)
            }
        })?;
        // SAFETY: `fd` was just opened and is not owned by anything else.
        let file = unsafe { File::from_raw_fd(fd) };
        if umask() & mode != 0 {
            file.set_permissions(Permissions::from_mode(mode))?;
        }
        Ok(file)
    }

    /// Move `name` to `to_name` inside `to` unless that exists: Ok(false) when it does.
    /// A filesystem that cannot refuse atomically gives an `Unsupported` error.
    pub fn rename_noreplace(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<bool> {
        with_c(name, |a| {
            with_c(to_name, |b| {
                // SAFETY: valid fds and NUL-terminated names.
                noreplace_result(unsafe { rename_noreplace(self.fd(), a, to.fd(), b) })
            })
        })
    }

    /// As `rename_noreplace`, to a full path.
    pub fn rename_noreplace_to(&self, name: &str, dest: &Path) -> io::Result<bool> {
        let b = path_c(dest)?;
        with_c(name, |a| {
            // SAFETY: a valid fd, AT_FDCWD and NUL-terminated names.
            noreplace_result(unsafe { rename_noreplace(self.fd(), a, libc::AT_FDCWD, &b) })
        })
    }

    /// Write a new file `name` here holding `bytes`, with `mode` exactly and `times`, and give
    /// it its name only once it is whole (Linux: an unnamed `O_TMPFILE` file, then `linkat`
    /// through `/proc/self/fd`), so nothing is staged elsewhere, renamed or deleted. The
    /// unnamed file is opened in `near` (the filesystem places its inode near that folder's:
    /// files written one after the other stay together). Ok(false): `name` exists and is left
    /// as it is. An `Unsupported` error: no unnamed files here (not Linux, a filesystem without
    /// `O_TMPFILE`, no `/proc`); the caller stages and renames.
    pub fn create_whole(
        &self,
        near: &Dir,
        name: &str,
        mode: u32,
        bytes: &[u8],
        times: std::fs::FileTimes,
    ) -> io::Result<bool> {
        #[cfg(target_os = "linux")]
        {
            unnamed::create_whole((near.fd(), self.fd()), name, mode, bytes, times)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (near, name, mode, bytes, times);
            Err(io::Error::from(io::ErrorKind::Unsupported))
        }
    }
}

/// Linux's unnamed files (`O_TMPFILE`), named with `linkat` once written.
#[cfg(target_os = "linux")]
mod unnamed {
    use std::io::{self, Write};
    use std::os::fd::{FromRawFd, RawFd};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Set once this filesystem or system has refused an unnamed file: later calls do not try.
    static REFUSED: AtomicBool = AtomicBool::new(false);

    fn refused(e: io::Error) -> io::Error {
        REFUSED.store(true, Ordering::Relaxed);
        io::Error::new(io::ErrorKind::Unsupported, e)
    }

    pub fn create_whole(
        (near, dir): (RawFd, RawFd),
        name: &str,
        mode: u32,
        bytes: &[u8],
        times: std::fs::FileTimes,
    ) -> io::Result<bool> {
        if REFUSED.load(Ordering::Relaxed) {
            return Err(io::Error::from(io::ErrorKind::Unsupported));
        }
        let flags = libc::O_TMPFILE | libc::O_WRONLY | libc::O_CLOEXEC;
        // SAFETY: a valid directory fd and a NUL-terminated name.
        let fd = unsafe { libc::openat(near, c".".as_ptr(), flags, mode) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EOPNOTSUPP) | Some(libc::EISDIR) | Some(libc::EINVAL) => Err(refused(e)),
                _ => Err(e),
            };
        }
        // SAFETY: `fd` was just opened and is not owned by anything else.
        let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
        if super::umask() & mode != 0 {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        file.write_all(bytes)?;
        file.set_times(times)?;
        if let Some(named) = name_by_fd(fd, dir, name) {
            return named;
        }
        let by_proc = name_by_proc(fd, dir, name);
        if by_proc.is_ok() {
            // The descriptor's own way was refused where `/proc`'s works: do not ask again.
            NO_EMPTY_PATH.store(true, Ordering::Relaxed);
        }
        by_proc
    }

    /// Name the unnamed file `fd` as `name` in `dir` through `/proc/self/fd/N`.
    fn name_by_proc(fd: RawFd, dir: RawFd, name: &str) -> io::Result<bool> {
        let from = format!("/proc/self/fd/{fd}");
        super::with_c(&from, |from| {
            super::with_c(name, |to| {
                // SAFETY: AT_FDCWD, a valid directory fd and NUL-terminated names.
                let r = unsafe {
                    libc::linkat(
                        libc::AT_FDCWD,
                        from.as_ptr(),
                        dir,
                        to.as_ptr(),
                        libc::AT_SYMLINK_FOLLOW,
                    )
                };
                if r == 0 {
                    return Ok(true);
                }
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EEXIST) => Ok(false),
                    // No `/proc` (the folder itself may have been removed: the caller's
                    // long way says so with its path).
                    Some(libc::ENOENT) if !std::path::Path::new("/proc/self/fd").exists() => {
                        Err(refused(e))
                    }
                    _ => Err(e),
                }
            })
        })
    }

    /// Set once `linkat(fd, "", AT_EMPTY_PATH)` was refused where naming through `/proc` worked:
    /// later files are named through `/proc/self/fd` at once.
    static NO_EMPTY_PATH: AtomicBool = AtomicBool::new(false);

    /// Name the unnamed file `fd` as `name` in `dir` straight from its descriptor (Linux 6.10+
    /// allows this to the process that opened it; before, only with CAP_DAC_READ_SEARCH). It
    /// saves the walk of `/proc/self/fd/N` each file would otherwise cost. None: refused here,
    /// the caller names it through `/proc`.
    fn name_by_fd(fd: RawFd, dir: RawFd, name: &str) -> Option<io::Result<bool>> {
        if NO_EMPTY_PATH.load(Ordering::Relaxed) {
            return None;
        }
        let r = super::with_c(name, |to| {
            // SAFETY: a valid open file, a valid directory fd and NUL-terminated names.
            let r =
                unsafe { libc::linkat(fd, c"".as_ptr(), dir, to.as_ptr(), libc::AT_EMPTY_PATH) };
            if r == 0 {
                return Ok(true);
            }
            Err(io::Error::last_os_error())
        });
        match r {
            Ok(named) => Some(Ok(named)),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Some(Ok(false)),
            // Refused (ENOENT is what an older kernel answers without the capability), or the
            // folder is gone: the `/proc` way decides, and reports a real error.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::EPERM)) => None,
            Err(e) => Some(Err(e)),
        }
    }

    #[cfg(test)]
    mod tests {
        use std::os::fd::{AsRawFd, OwnedFd};

        fn unnamed_in(dir: &std::fs::File, bytes: &[u8]) -> OwnedFd {
            use std::os::fd::FromRawFd;
            let flags = libc::O_TMPFILE | libc::O_WRONLY | libc::O_CLOEXEC;
            // SAFETY: a valid directory fd and a NUL-terminated name.
            let fd = unsafe { libc::openat(dir.as_raw_fd(), c".".as_ptr(), flags, 0o444) };
            assert!(fd >= 0, "O_TMPFILE: {}", std::io::Error::last_os_error());
            // SAFETY: just opened, owned here.
            let f = unsafe { OwnedFd::from_raw_fd(fd) };
            let mut file = std::fs::File::from(f.try_clone().unwrap());
            std::io::Write::write_all(&mut file, bytes).unwrap();
            f
        }

        /// Both ways of naming an unnamed file (its descriptor, where the kernel allows it, and
        /// `/proc/self/fd`, the fallback) make the name once and never replace one.
        #[test]
        fn both_ways_of_naming_an_unnamed_file_name_it_once() {
            let tmp = tempfile::tempdir().unwrap();
            let dir = std::fs::File::open(tmp.path()).unwrap();
            let d = dir.as_raw_fd();
            let a = unnamed_in(&dir, b"a");
            assert!(super::name_by_proc(a.as_raw_fd(), d, "a").unwrap());
            let again = unnamed_in(&dir, b"other");
            assert!(!super::name_by_proc(again.as_raw_fd(), d, "a").unwrap());
            let b = unnamed_in(&dir, b"b");
            match super::name_by_fd(b.as_raw_fd(), d, "b") {
                // Refused on this kernel: the fallback is what runs.
                None => assert!(super::name_by_proc(b.as_raw_fd(), d, "b").unwrap()),
                Some(r) => assert!(r.unwrap()),
            }
            if let Some(r) = super::name_by_fd(again.as_raw_fd(), d, "b") {
                assert!(!r.unwrap(), "an existing name stays");
            }
            assert_eq!(std::fs::read(tmp.path().join("a")).unwrap(), b"a");
            assert_eq!(std::fs::read(tmp.path().join("b")).unwrap(), b"b");
            assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2);
        }
    }
}

fn noreplace_result(r: libc::c_int) -> io::Result<bool> {
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EEXIST) => Ok(false),
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::ENOTSUP) => {
            Err(io::Error::new(io::ErrorKind::Unsupported, e))
        }
        _ => Err(e),
    }
}

/// Rename, failing with EEXIST rather than replace (`RENAME_NOREPLACE` on Linux, `RENAME_EXCL`
/// on macOS).
///
/// # Safety
/// The fds must be valid or `AT_FDCWD`.
unsafe fn rename_noreplace(a_dir: RawFd, a: &CStr, b_dir: RawFd, b: &CStr) -> libc::c_int {
    #[cfg(target_os = "linux")]
    // SAFETY: as the caller promises; the names are NUL-terminated.
    unsafe {
        libc::renameat2(a_dir, a.as_ptr(), b_dir, b.as_ptr(), libc::RENAME_NOREPLACE)
    }
    #[cfg(target_vendor = "apple")]
    // SAFETY: as the caller promises; the names are NUL-terminated.
    unsafe {
        libc::renameatx_np(a_dir, a.as_ptr(), b_dir, b.as_ptr(), libc::RENAME_EXCL)
    }
}

/// Atomically trade two paths (`renameat2(RENAME_EXCHANGE)` on Linux, `renameatx_np(RENAME_SWAP)`
/// on macOS). `NotFound` when either is missing; `Unsupported` where the filesystem cannot.
pub fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    let (a, b) = (path_c(a)?, path_c(b)?);
    let (at, a, b) = (libc::AT_FDCWD, a.as_ptr(), b.as_ptr());
    #[cfg(target_os = "linux")]
    // SAFETY: AT_FDCWD and two NUL-terminated paths.
    let r = unsafe { libc::renameat2(at, a, at, b, libc::RENAME_EXCHANGE) };
    #[cfg(target_vendor = "apple")]
    // SAFETY: AT_FDCWD and two NUL-terminated paths.
    let r = unsafe { libc::renameatx_np(at, a, at, b, libc::RENAME_SWAP) };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::ENOTSUP) => {
            Err(io::Error::new(io::ErrorKind::Unsupported, e))
        }
        _ => Err(e),
    }
}

/// The process's umask, read once from /proc (reading it with umask(2) would change it for a
/// moment under other threads). Unknown: assume it takes every bit, so modes are always set.
fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("Umask:"))?;
                u32::from_str_radix(line.trim_start_matches("Umask:").trim(), 8).ok()
            })
            .unwrap_or(0o777)
    })
}

/// Run `f` with the umask set to `mask` (for a socket created with no wider permissions).
pub fn with_umask<T>(mask: u32, f: impl FnOnce() -> T) -> T {
    // SAFETY: umask only changes this process's file mode creation mask.
    let old = unsafe { libc::umask(mask as libc::mode_t) };
    let r = f();
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    r
}

/// Make every write to the filesystem holding `dir` durable: `syncfs` on Linux; on macOS `sync`
/// and then `F_FULLFSYNC`, which also has the drive flush its cache (plain fsync does not).
pub fn sync_filesystem(dir: &Path) {
    let Ok(f) = File::open(dir) else { return };
    let fd = f.as_raw_fd();
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

/// This boot of the machine, as the kernel names it (Linux's `boot_id`): the store tells a
/// daemon restart (the page cache still holds every write) from a machine restart (writes not
/// yet synced may be lost). `None` where the kernel gives no such name (macOS, BSDs): then
/// the store syncs before it commits, as if every restart were a machine restart.
pub fn boot_id() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// A content file just written: nothing more to do on Unix (`sync_filesystem` covers a batch).
pub fn durable(_file: &File) -> io::Result<()> {
    Ok(())
}

/// The permission bits of `md`.
pub fn mode(md: &Metadata) -> u32 {
    md.mode() & 0o7777
}

/// Give `path` exactly `mode`.
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(path, Permissions::from_mode(mode))
}

/// mtime in seconds.
pub fn mtime(md: &Metadata) -> i64 {
    md.mtime()
}

/// mtime in nanoseconds.
pub fn mtime_ns(md: &Metadata) -> i128 {
    md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128
}

/// When the file's inode last changed (a link made to it counts), in nanoseconds.
pub fn ctime_ns(md: &Metadata) -> i128 {
    md.ctime() as i128 * 1_000_000_000 + md.ctime_nsec() as i128
}

/// The filesystem `path` (whose metadata is `md`) is on.
pub fn device(_path: &Path, md: &Metadata) -> u64 {
    md.dev()
}

/// (device, inode, link count) of the file at `path`, whose metadata is `md`.
pub fn identity(_path: &Path, md: &Metadata) -> io::Result<super::Identity> {
    Ok(super::Identity {
        device: md.dev(),
        inode: md.ino(),
        links: md.nlink(),
    })
}

/// The uid owning `md`.
pub fn owner(md: &Metadata) -> Option<u32> {
    Some(md.uid())
}

/// This process's user.
pub fn my_uid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether `e` says the disk (or the user's quota) is full.
pub fn is_no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// A short reason for a failed link, from its errno.
pub fn link_failure(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EXDEV) => "the store and the project are on different filesystems (EXDEV)",
        Some(libc::EMLINK) => "a store file has too many links (EMLINK)",
        Some(libc::EPERM) => "the filesystem refused the link (EPERM)",
        Some(libc::EOPNOTSUPP) => "the filesystem cannot do it (ENOTSUP)",
        Some(libc::EINVAL) => "the filesystem cannot do it (EINVAL)",
        _ => "it failed",
    }
}

/// A link to folder `target` (its text: relative to the link's folder, or absolute) at `link`.
pub fn link_dir(target: &str, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

/// Sharing violations do not happen on Unix: nothing to retry.
pub fn is_transient(_e: &io::Error) -> bool {
    false
}

/// Make `path` (and its parents) with mode 0700.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Wait for SIGTERM or SIGINT; gives its name. Never returns if neither can be listened for.
pub async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
