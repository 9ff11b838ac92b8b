//! The store's half of the background scrub: finding content files that were written to since
//! they were imported (a quick pass of stats: their mode or mtime is not a content file's), and
//! judging one by its bytes (hashed again): untouched but for its mode or time (put back), or
//! damaged (set aside in the quarantine, or deleted when it cannot be, its inode returned so the caller can find the hard links
//! that still hold it).
//!
//! Must not: download, or touch a project (the scrub task in `crate::scrub` does both).

use crate::platform;

use tracing::{debug, warn};

use super::layout::{CONTENT_MTIME, Layout, content_times};
use super::{Store, import, read_dir};
use crate::error::Result;

/// A content file that was found written to.
#[derive(Debug, Clone)]
pub struct Suspect {
    pub hash: [u8; 32],
    pub executable: bool,
}

/// What hashing a suspect again found.
#[derive(Debug, PartialEq, Eq)]
pub enum Judged {
    /// Its bytes are right; its mode and time were put back.
    Whole,
    /// Its bytes are wrong: it was moved to the quarantine. `inode` is the damaged file's, still
    /// hard-linked wherever it was linked before.
    Damaged { inode: u64, dev: u64 },
    /// It is gone.
    Gone,
}

impl Store {
    /// Every content file whose mode or mtime says it was written to (stats only). Blocking.
    pub fn written_to(&self) -> Result<(u64, Vec<Suspect>)> {
        let mut seen = 0;
        let mut out = Vec::new();
        for shard in read_dir(&self.layout.files)? {
            let sname = shard.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let sname = sname.to_string();
            for path in read_dir(&shard)? {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let Some((hash, executable)) = Layout::parse_content_name(&sname, name) else {
                    continue;
                };
                seen += 1;
                let Ok(md) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                if platform::mode(&md) & 0o222 != 0 || platform::mtime(&md) != CONTENT_MTIME {
                    out.push(Suspect { hash, executable });
                }
            }
        }
        Ok((seen, out))
    }

    /// Hash content file (`hash`, `executable`) again and deal with it (see `Judged`); the
    /// check before linking (`looks_whole`) and the scrub both judge this way. Blocking.
    pub fn judge(&self, hash: &[u8; 32], executable: bool) -> Judged {
        let path = self.layout.content_path(hash, executable);
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            return Judged::Gone;
        };
        if matches!(import::hash_file(&path), Ok(h) if h == *hash) {
            let mode = if executable { 0o555 } else { 0o444 };
            let settled = platform::set_mode(&path, mode)
                .and_then(|()| std::fs::File::open(&path)?.set_times(content_times()));
            if let Err(e) = settled {
                debug!(path = %path.display(), error = %e, "could not put back the mode and time of a whole file");
            }
            return Judged::Whole;
        }
        warn!(path = %path.display(), "a store file does not match its hash; quarantined");
        if self.quarantine(std::slice::from_ref(&path)).is_err() {
            let _ = std::fs::remove_file(&path);
        }
        let id = platform::identity(&path, &md).ok();
        Judged::Damaged {
            inode: id.map_or(0, |i| i.inode),
            dev: id.map_or(0, |i| i.device),
        }
    }
}
