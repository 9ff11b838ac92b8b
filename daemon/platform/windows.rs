//! The Windows side of `platform`: folders named by path (Windows has no `openat`; std turns
//! paths longer than 260 characters into `\\?\` paths itself), renames that refuse to replace
//! (`MoveFileExW` without `MOVEFILE_REPLACE_EXISTING`), file identity and link counts from
//! `GetFileInformationByHandle` (not in stable std there), junctions for folder links (as npm
//! and pnpm make them: a symlink needs a privilege on Windows), and per-file durability.
//!
//! Windows has no mode bits: the store's files are left writable there (a read-only file
//! cannot be deleted with its folder by most tools), `mode` reports them as the store's
//! read-only modes, and a changed file is found by its mtime and size alone.
//!
//! Must not: be named outside `platform` (callers use `platform::…`).

use std::fs::{File, Metadata};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};

use windows_sys::Win32::Foundation as win;
use windows_sys::Win32::Storage::FileSystem as fs;

fn wide(p: &Path) -> Vec<u16> {
    // `\\?\` for long absolute paths, as std does for its own calls.
    let s = p.as_os_str();
    let long = s.len() >= 248 && p.is_absolute() && !s.to_string_lossy().starts_with(r"\\");
    let mut w: Vec<u16> = if long {
        std::ffi::OsStr::new(r"\\?\").encode_wide().collect()
    } else {
        Vec::new()
    };
    w.extend(s.encode_wide());
    w.push(0);
    w
}

/// A folder, named by its path; names given to its methods are relative to it.
pub struct Dir(PathBuf);

impl Dir {
    /// The folder at `path` (which must be one).
    pub fn open(path: &Path) -> io::Result<Dir> {
        if !std::fs::metadata(path)?.is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotADirectory, "not a folder"));
        }
        Ok(Dir(path.to_path_buf()))
    }

    /// (size, mtime in seconds) of `name`, not following a link.
    pub fn stat(&self, name: &str) -> io::Result<(u64, i64)> {
        let md = std::fs::symlink_metadata(self.0.join(name))?;
        Ok((md.len(), mtime(&md)))
    }

    /// Hard-link `name` to `rel` inside `to`.
    pub fn hard_link(&self, name: &str, to: &Dir, rel: &str) -> io::Result<()> {
        std::fs::hard_link(self.0.join(name), to.0.join(rel))
    }

    /// Make folder `rel` (its parent must exist); an existing one is an `AlreadyExists` error.
    pub fn mkdir(&self, rel: &str) -> io::Result<()> {
        std::fs::create_dir(self.0.join(rel))
    }

    /// Create file `name` (it must not exist), open for writing (`mode` has no meaning here).
    pub fn create(&self, name: &str, _mode: u32) -> io::Result<File> {
        File::options()
            .write(true)
            .create_new(true)
            .open(self.0.join(name))
    }

    /// Move `name` to `to_name` inside `to` unless that exists: Ok(false) when it does.
    pub fn rename_noreplace(&self, name: &str, to: &Dir, to_name: &str) -> io::Result<bool> {
        move_noreplace(&self.0.join(name), &to.0.join(to_name))
    }

    /// As `rename_noreplace`, to a full path.
    pub fn rename_noreplace_to(&self, name: &str, dest: &Path) -> io::Result<bool> {
        move_noreplace(&self.0.join(name), dest)
    }

    /// Windows has no unnamed files: always `Unsupported` (the caller stages and renames).
    pub fn create_whole(
        &self,
        _near: &Dir,
        _name: &str,
        _mode: u32,
        _bytes: &[u8],
        _times: std::fs::FileTimes,
    ) -> io::Result<bool> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

fn move_noreplace(from: &Path, to: &Path) -> io::Result<bool> {
    let (a, b) = (wide(from), wide(to));
    super::retrying(|| {
        // SAFETY: two NUL-terminated wide paths; flags 0 refuses an existing target.
        if unsafe { fs::MoveFileExW(a.as_ptr(), b.as_ptr(), 0) } != 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error().map(|c| c as u32) {
            Some(win::ERROR_ALREADY_EXISTS) | Some(win::ERROR_FILE_EXISTS) => Ok(false),
            _ => Err(e),
        }
    })
}

/// Windows cannot trade two entries atomically: always `Unsupported` (the caller moves the
/// old one aside first).
pub fn exchange(_a: &Path, _b: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "Windows has no atomic exchange of two folders",
    ))
}

/// No boot name is read on Windows: the store keeps making each file durable as it is
/// written (`durable`), as if every restart were a machine restart.
pub fn boot_id() -> Option<String> {
    None
}

/// Windows lets only administrators flush a whole volume: each content file is flushed by
/// `durable` as it is written instead.
pub fn sync_filesystem(_dir: &Path) {}

/// Flush a content file just written (`FlushFileBuffers`).
pub fn durable(file: &File) -> io::Result<()> {
    file.sync_data()
}

/// The store's modes, as Unix would report them: 0o555 for a folder, 0o444 for a file (see the
/// module's note: Windows has no mode bits).
pub fn mode(md: &Metadata) -> u32 {
    if md.is_dir() { 0o555 } else { 0o444 }
}

/// Nothing to set: Windows has no mode bits.
pub fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

fn nanos(t: io::Result<std::time::SystemTime>) -> i128 {
    match t.map(|t| t.duration_since(std::time::UNIX_EPOCH)) {
        Ok(Ok(d)) => d.as_nanos() as i128,
        Ok(Err(before)) => -(before.duration().as_nanos() as i128),
        Err(_) => 0,
    }
}

/// mtime in seconds.
pub fn mtime(md: &Metadata) -> i64 {
    nanos(md.modified()).div_euclid(1_000_000_000) as i64
}

/// mtime in nanoseconds.
pub fn mtime_ns(md: &Metadata) -> i128 {
    nanos(md.modified())
}

/// std offers no change time on Windows: the last write time stands in (a hard link made to a
/// file does not change it, so prune keeps files by link count there).
pub fn ctime_ns(md: &Metadata) -> i128 {
    nanos(md.modified())
}

/// The volume `path` is on (its serial number); 0 when it cannot be read.
pub fn device(path: &Path, md: &Metadata) -> u64 {
    identity(path, md).map(|i| i.device).unwrap_or(0)
}

/// (volume, file index, link count) of the file or folder at `path`.
pub fn identity(path: &Path, _md: &Metadata) -> io::Result<super::Identity> {
    let f = std::fs::OpenOptions::new()
        .access_mode(0)
        .custom_flags(fs::FILE_FLAG_BACKUP_SEMANTICS | fs::FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)?;
    // SAFETY: zeroed plain data for the call to fill; a valid open handle.
    let mut info: fs::BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    if unsafe { fs::GetFileInformationByHandle(f.as_raw_handle() as _, &mut info) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(super::Identity {
        device: info.dwVolumeSerialNumber as u64,
        inode: (info.nFileIndexHigh as u64) << 32 | info.nFileIndexLow as u64,
        links: info.nNumberOfLinks as u64,
    })
}

/// Windows files have no uid (the store and projects are under the user's own profile, whose
/// ACL keeps other users out).
pub fn owner(_md: &Metadata) -> Option<u32> {
    None
}

/// No uids on Windows.
pub fn my_uid() -> u32 {
    0
}

/// Whether `e` says the disk is full.
pub fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(|c| c as u32),
        Some(win::ERROR_DISK_FULL) | Some(win::ERROR_HANDLE_DISK_FULL)
    )
}

/// A short reason for a failed link, from its Windows error code.
pub fn link_failure(e: &io::Error) -> &'static str {
    match e.raw_os_error().map(|c| c as u32) {
        Some(win::ERROR_NOT_SAME_DEVICE) => {
            "the store and the project are on different volumes (ERROR_NOT_SAME_DEVICE)"
        }
        Some(win::ERROR_TOO_MANY_LINKS) => "a store file has too many links (ERROR_TOO_MANY_LINKS)",
        Some(win::ERROR_ACCESS_DENIED) => "the volume refused the link (ERROR_ACCESS_DENIED)",
        Some(win::ERROR_INVALID_FUNCTION) | Some(win::ERROR_NOT_SUPPORTED) => {
            "the volume cannot do it (FAT or a network share)"
        }
        _ => "it failed",
    }
}

/// A junction at `link` to folder `target` (relative to the link's folder, `/`-separated, or
/// absolute): junctions hold absolute paths (`super::junction_target`).
pub fn link_dir(target: &str, link: &Path) -> io::Result<()> {
    let base = link.parent().unwrap_or(Path::new(""));
    let to = super::junction_target(&base.to_string_lossy(), target);
    junction::create(PathBuf::from(to), link)
}

/// Errors Windows gives while another process (an editor, an indexer, an antivirus) holds the
/// file open for a moment; npm's graceful-fs retries the same ones.
pub fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(|c| c as u32),
        Some(win::ERROR_SHARING_VIOLATION)
            | Some(win::ERROR_LOCK_VIOLATION)
            | Some(win::ERROR_ACCESS_DENIED)
    )
}

/// Make `path` (and its parents); under `%LOCALAPPDATA%` it inherits the profile's ACL, which
/// admits only the user (and administrators).
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    std::fs::create_dir_all(path)
}

/// Wait for Ctrl-C, Ctrl-Break, the console closing, logoff or shutdown; gives its name.
pub async fn stop_signal() -> &'static str {
    use tokio::signal::windows;
    let (Ok(mut c), Ok(mut brk), Ok(mut close), Ok(mut shutdown)) = (
        windows::ctrl_c(),
        windows::ctrl_break(),
        windows::ctrl_close(),
        windows::ctrl_shutdown(),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = c.recv() => "CTRL_C",
        _ = brk.recv() => "CTRL_BREAK",
        _ = close.recv() => "CTRL_CLOSE",
        _ = shutdown.recv() => "CTRL_SHUTDOWN",
    }
}
