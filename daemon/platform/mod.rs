//! What differs between the operating systems hoard runs on, behind one interface: folders
//! held open for per-file calls (`Dir`), renames that refuse to replace or trade places, file
//! modes, times and identity, durability, links (symlinks on Unix; junctions and bin shims on
//! Windows) and retries on Windows' sharing violations. `unix.rs` and `windows.rs` give the same
//! items; callers never `cfg` themselves.
//!
//! Must not: decide what to link where (the linker's planners do).

pub mod shim;

#[cfg(unix)]
#[path = "unix.rs"]
mod imp;
#[cfg(windows)]
#[path = "windows.rs"]
mod imp;

/// Unix only (the socket's transport): run a closure under another umask.
#[cfg(unix)]
pub use imp::with_umask;
pub use imp::{
    Dir, boot_id, create_private_dir, ctime_ns, device, durable, exchange, identity, is_no_space,
    is_transient, link_dir, link_failure, mode, mtime, mtime_ns, my_uid, owner, set_mode,
    stop_signal, sync_filesystem,
};

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

/// The absolute path a Windows junction must hold for a link in folder `base` (absolute,
/// `\\` or `/` separated, e.g. `C:\\p\\node_modules`) whose text is `target` (relative and
/// `/`-separated as hoard plans links, or absolute): junctions cannot be relative. `.` and `..`
/// are resolved by name, never above the drive (or `\\?\X:`, or `\\server\share`).
#[cfg(any(windows, test))]
pub fn junction_target(base: &str, target: &str) -> String {
    let absolute = |t: &str| t.starts_with(['/', '\\']) || t.as_bytes().get(1) == Some(&b':');
    let (root, rest) = if absolute(target) {
        split_root(target)
    } else {
        let (root, path) = split_root(base);
        (root, format!("{path}\\{target}"))
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in rest.split(['/', '\\']) {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("{root}\\{}", parts.join("\\"))
}

/// (`C:` / `\\?\C:` / `\\server\share`, the rest) of an absolute Windows path.
#[cfg(any(windows, test))]
fn split_root(p: &str) -> (&str, String) {
    let cut = if let Some(v) = p.strip_prefix(r"\\?\") {
        4 + v.find(['\\', '/']).unwrap_or(v.len())
    } else if p.as_bytes().get(1) == Some(&b':') {
        2
    } else if let Some(unc) = p.strip_prefix(r"\\") {
        // \\server\share: the root is the first two names.
        let mut seps = unc.match_indices(['\\', '/']).map(|(i, _)| i + 2);
        seps.nth(1).unwrap_or(p.len())
    } else {
        0
    };
    (&p[..cut], p[cut..].to_string())
}

/// A file's identity: the filesystem it is on, its number there, and how many names it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub device: u64,
    pub inode: u64,
    pub links: u64,
}

/// `rename`, retried while the OS says another process holds the file for a moment (Windows'
/// sharing violations; never on Unix).
pub fn rename(from: &Path, to: &Path) -> std::io::Result<()> {
    retrying(|| std::fs::rename(from, to))
}

/// `remove_dir_all`, retried as `rename` is.
pub fn remove_dir_all(path: &Path) -> std::io::Result<()> {
    retrying(|| std::fs::remove_dir_all(path))
}

/// Run `op` again while it fails with a transient error (`is_transient`), for up to 10 s.
pub fn retrying<T>(op: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    retry_with(op, is_transient, std::thread::sleep)
}

/// `retrying`'s rule: back off from 10 ms, doubling up to 640 ms a wait, until 10 s of waiting
/// have passed (npm's graceful-fs keeps trying renames on Windows for 60 s).
fn retry_with<T>(
    mut op: impl FnMut() -> std::io::Result<T>,
    transient: impl Fn(&std::io::Error) -> bool,
    mut sleep: impl FnMut(std::time::Duration),
) -> std::io::Result<T> {
    let (mut wait, mut waited) = (
        std::time::Duration::from_millis(10),
        std::time::Duration::ZERO,
    );
    loop {
        match op() {
            Err(e) if transient(&e) && waited < std::time::Duration::from_secs(10) => {
                sleep(wait);
                waited += wait;
                wait = (wait * 2).min(std::time::Duration::from_millis(640));
            }
            other => return other,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn junction_targets_are_absolute_windows_paths() {
        let nm = r"C:\Users\me\app\node_modules";
        assert_eq!(
            junction_target(nm, "../packages/ui"),
            r"C:\Users\me\app\packages\ui"
        );
        assert_eq!(
            junction_target(
                r"C:\app\node_modules\.hoard\a@1\node_modules",
                "../../b@2/node_modules/b"
            ),
            r"C:\app\node_modules\.hoard\b@2\node_modules\b"
        );
        assert_eq!(
            junction_target(nm, "./x/./y"),
            r"C:\Users\me\app\node_modules\x\y"
        );
        assert_eq!(junction_target(nm, "D:/work/lib"), r"D:\work\lib");
        assert_eq!(junction_target(r"C:\a", "../../../../x"), r"C:\x");
        assert_eq!(
            junction_target(r"\\?\C:\deep\node_modules", "../y"),
            r"\\?\C:\deep\y"
        );
        assert_eq!(
            junction_target(r"\\srv\share\p\node_modules", "../../../q"),
            r"\\srv\share\q"
        );
    }

    #[test]
    fn a_transient_error_is_retried_until_it_passes_and_others_are_not() {
        let (mut calls, mut slept) = (0, Vec::new());
        let r = retry_with(
            || {
                calls += 1;
                if calls < 4 {
                    Err(Error::from(ErrorKind::ResourceBusy))
                } else {
                    Ok(calls)
                }
            },
            |e| e.kind() == ErrorKind::ResourceBusy,
            |d| slept.push(d.as_millis()),
        );
        assert_eq!(r.unwrap(), 4);
        assert_eq!(slept, vec![10, 20, 40]);

        let mut calls = 0;
        let r: std::io::Result<()> = retry_with(
            || {
                calls += 1;
                Err(Error::from(ErrorKind::NotFound))
            },
            |e| e.kind() == ErrorKind::ResourceBusy,
            |_| panic!("a lasting error is not waited for"),
        );
        assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(calls, 1);
    }

    /// On Linux a file is written unnamed and named whole, with its bytes, mode and mtime, and
    /// an existing name is left alone; elsewhere the caller is told to stage instead.
    #[test]
    fn a_file_written_whole_appears_complete_and_never_replaces_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(499162500);
        let times = std::fs::FileTimes::new().set_modified(t).set_accessed(t);
        let r = dir.create_whole(&dir, "a", 0o444, b"first", times);
        if cfg!(not(target_os = "linux")) {
            assert_eq!(r.unwrap_err().kind(), ErrorKind::Unsupported);
            return;
        }
        assert!(r.unwrap(), "a new name is made");
        let path = tmp.path().join("a");
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        let md = std::fs::metadata(&path).unwrap();
        assert_eq!(mode(&md), 0o444);
        assert_eq!(mtime(&md), 499162500);
        assert!(!dir.create_whole(&dir, "a", 0o444, b"other", times).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"first", "never replaced");
        assert!(
            dir.create_whole(&dir, "x", 0o555, b"#!/bin/sh\n", times)
                .unwrap()
        );
        assert_eq!(
            mode(&std::fs::metadata(tmp.path().join("x")).unwrap()),
            0o555
        );
        // Only the two named files: nothing staged beside them.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_transient_error_that_lasts_gives_up_after_ten_seconds() {
        let mut slept = std::time::Duration::ZERO;
        let r: std::io::Result<()> = retry_with(
            || Err(Error::from(ErrorKind::ResourceBusy)),
            |_| true,
            |d| slept += d,
        );
        assert!(r.is_err());
        assert!(slept >= std::time::Duration::from_secs(10), "{slept:?}");
        assert!(slept < std::time::Duration::from_secs(11), "{slept:?}");
    }
}
