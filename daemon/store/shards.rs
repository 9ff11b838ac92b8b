//! The 256 shard folders of `files/`, held open, so that the linker's per-file calls (a stat to
//! check a content file, a hard link to it) name the file relative to its shard instead of
//! walking the store's whole path for each of tens of thousands of files.
//!
//! Must not: create, move or delete content files.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A content file's name inside its shard, NUL-terminated, built on the stack.
pub struct Name {
    buf: [u8; 68],
}

impl Name {
    /// `<62 hex>` or `<62 hex>-exec`, as `Layout::content_path` names it.
    pub fn of(hash: &[u8; 32], executable: bool) -> Name {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 68];
        for (i, b) in hash[1..].iter().enumerate() {
            buf[2 * i] = HEX[(b >> 4) as usize];
            buf[2 * i + 1] = HEX[(b & 15) as usize];
        }
        if executable {
            buf[62..67].copy_from_slice(b"-exec");
        }
        Name { buf }
    }

    fn c_str(&self) -> &CStr {
        // The buffer always holds a NUL after the name.
        CStr::from_bytes_until_nul(&self.buf).unwrap_or_default()
    }
}

pub struct Shards {
    files: PathBuf,
    fds: Vec<OnceLock<Option<OwnedFd>>>,
}

impl Shards {
    pub fn new(files: &Path) -> Shards {
        Shards {
            files: files.to_path_buf(),
            fds: (0..256).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The open shard folder of `hash` (None if it cannot be opened: callers use paths).
    fn fd(&self, hash: &[u8; 32]) -> Option<RawFd> {
        let slot = &self.fds[hash[0] as usize];
        let fd = slot.get_or_init(|| {
            let dir = self.files.join(format!("{:02x}", hash[0]));
            let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
            let flags = crate::platform::DIR_PATH_FLAGS;
            // SAFETY: a valid NUL-terminated path; the fd returned is owned here.
            let fd = unsafe { libc::open(c.as_ptr(), flags) };
            // SAFETY: `fd` was just opened and belongs to nothing else.
            (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
        });
        fd.as_ref().map(|f| f.as_raw_fd())
    }

    /// (size, mtime in seconds) of a content file.
    pub fn stat(&self, hash: &[u8; 32], executable: bool) -> io::Result<(u64, i64)> {
        let Some(dir) = self.fd(hash) else {
            return Err(io::Error::other("shard folder not open"));
        };
        let name = Name::of(hash, executable);
        // SAFETY: a zeroed stat for the call to fill; valid fd and NUL-terminated name.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let flags = libc::AT_SYMLINK_NOFOLLOW;
        if unsafe { libc::fstatat(dir, name.c_str().as_ptr(), &mut st, flags) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((st.st_size as u64, st.st_mtime))
    }

    /// Hard-link a content file to `rel` inside the open folder `to_dir`.
    pub fn hard_link_at(
        &self,
        hash: &[u8; 32],
        executable: bool,
        to_dir: RawFd,
        rel: &str,
    ) -> io::Result<()> {
        let Some(dir) = self.fd(hash) else {
            return Err(io::Error::other("shard folder not open"));
        };
        let name = Name::of(hash, executable);
        let to = std::ffi::CString::new(rel).map_err(io::Error::other)?;
        // SAFETY: valid fds and NUL-terminated paths.
        let r = unsafe { libc::linkat(dir, name.c_str().as_ptr(), to_dir, to.as_ptr(), 0) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Shards {
    /// Move `from` (a name in the open folder `from_dir`) to content file `hash`, unless it
    /// exists. Ok(false): it existed (same name, same bytes). Any other error: the caller goes
    /// the long way (paths), which reports it with its path.
    pub fn move_in(
        &self,
        from_dir: RawFd,
        from: &CStr,
        hash: &[u8; 32],
        executable: bool,
    ) -> io::Result<bool> {
        let Some(dir) = self.fd(hash) else {
            return Err(io::Error::other("shard folder not open"));
        };
        let name = Name::of(hash, executable);
        // SAFETY: valid fds and NUL-terminated names.
        let r = unsafe {
            crate::platform::rename_noreplace(from_dir, from.as_ptr(), dir, name.c_str().as_ptr())
        };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EEXIST) => Ok(false),
            _ => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_layout() {
        let hash = *blake3::hash(b"x").as_bytes();
        let layout_path = crate::store::layout::Layout::create(tempfile::tempdir().unwrap().path())
            .unwrap()
            .content_path(&hash, true);
        let name = Name::of(&hash, true);
        assert_eq!(
            name.c_str().to_str().unwrap(),
            layout_path.file_name().unwrap().to_str().unwrap()
        );
    }
}
