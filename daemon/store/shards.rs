//! The 256 shard folders of `files/`, made when a file first goes into one and then held open,
//! so that the linker's per-file calls (a stat to check a content file, a hard link to it) name
//! the file relative to its shard instead of walking the store's whole path for each of tens of
//! thousands of files.
//!
//! Must not: delete content files, or make one that is not whole (it moves in a staged file, or
//! writes a new one unnamed and names it once written).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::platform::Dir;

/// A content file's name inside its shard, built on the stack.
pub struct Name {
    buf: [u8; 67],
    len: usize,
}

impl Name {
    /// `<62 hex>` or `<62 hex>-exec`, as `Layout::content_path` names it.
    pub fn of(hash: &[u8; 32], executable: bool) -> Name {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 67];
        for (i, b) in hash[1..].iter().enumerate() {
            buf[2 * i] = HEX[(b >> 4) as usize];
            buf[2 * i + 1] = HEX[(b & 15) as usize];
        }
        let len = if executable {
            buf[62..67].copy_from_slice(b"-exec");
            67
        } else {
            62
        };
        Name { buf, len }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII hex digits and "-exec" are ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

pub struct Shards {
    files: PathBuf,
    dirs: Vec<OnceLock<Option<Dir>>>,
    /// `files/` itself, where new content files are opened unnamed (`create_whole`).
    root: OnceLock<Option<Dir>>,
}

impl Shards {
    pub fn new(files: &Path) -> Shards {
        Shards {
            files: files.to_path_buf(),
            dirs: (0..256).map(|_| OnceLock::new()).collect(),
            root: OnceLock::new(),
        }
    }

    /// The open shard folder of `hash`, made if it is not there yet (a new store makes its
    /// shards as files first go into them); an error if it cannot be had: callers then use
    /// paths.
    fn dir(&self, hash: &[u8; 32]) -> io::Result<&Dir> {
        let slot = &self.dirs[hash[0] as usize];
        let dir = slot.get_or_init(|| {
            let path = self.files.join(format!("{:02x}", hash[0]));
            match Dir::open(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Whether this made it or another thread did first, opening it says
                    // whether it is there now.
                    let _ = std::fs::create_dir(&path);
                    Dir::open(&path).ok()
                }
                opened => opened.ok(),
            }
        });
        dir.as_ref()
            .ok_or_else(|| io::Error::other("shard folder not open"))
    }

    /// (size, mtime in seconds) of a content file.
    pub fn stat(&self, hash: &[u8; 32], executable: bool) -> io::Result<(u64, i64)> {
        self.dir(hash)?.stat(Name::of(hash, executable).as_str())
    }

    /// Hard-link a content file to `rel` inside the open folder `to_dir`.
    pub fn hard_link_at(
        &self,
        hash: &[u8; 32],
        executable: bool,
        to_dir: &Dir,
        rel: &str,
    ) -> io::Result<()> {
        let name = Name::of(hash, executable);
        self.dir(hash)?.hard_link(name.as_str(), to_dir, rel)
    }
}

impl Shards {
    /// Move `from` (a name in the open folder `from_dir`) to content file `hash`, unless it
    /// exists. Ok(false): it existed (same name, same bytes). Any other error: the caller goes
    /// the long way (paths), which reports it with its path.
    pub fn move_in(
        &self,
        from_dir: &Dir,
        from: &str,
        hash: &[u8; 32],
        executable: bool,
    ) -> io::Result<bool> {
        let name = Name::of(hash, executable);
        from_dir.rename_noreplace(from, self.dir(hash)?, name.as_str())
    }

    /// Make content file `hash` hold `bytes` unless it exists, without a staging folder:
    /// Ok(false) when it exists (same name, same bytes). An `Unsupported` error: this platform or
    /// filesystem cannot write a file unnamed (the caller stages and moves it in); any other
    /// error: the caller goes the long way, which reports it with its path.
    pub fn create_whole(
        &self,
        hash: &[u8; 32],
        executable: bool,
        bytes: &[u8],
    ) -> io::Result<bool> {
        let name = Name::of(hash, executable);
        let dir = self.dir(hash)?;
        // Looking first costs a lookup; creating a file only to drop it would free an inode.
        if dir.stat(name.as_str()).is_ok() {
            return Ok(false);
        }
        let mode = if executable { 0o555 } else { 0o444 };
        // Opened in `files/`, not in the shard: the filesystem then keeps the inodes of files
        // written one after the other (one package's) together, as a staging folder did,
        // instead of spreading them over 256 shards' places; linking a package later touches
        // fewer inode blocks (a warm install was 5-13% slower with them spread).
        let near = self
            .root
            .get_or_init(|| Dir::open(&self.files).ok())
            .as_ref()
            .unwrap_or(dir);
        dir.create_whole(
            near,
            name.as_str(),
            mode,
            bytes,
            crate::store::layout::content_times(),
        )
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
            name.as_str(),
            layout_path.file_name().unwrap().to_str().unwrap()
        );
    }

    #[test]
    fn a_new_store_makes_a_shard_folder_when_a_file_first_goes_into_it() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = crate::store::layout::Layout::create(tmp.path()).unwrap();
        assert_eq!(std::fs::read_dir(&layout.files).unwrap().count(), 0);
        let shards = Shards::new(&layout.files);
        let hash = *blake3::hash(b"body").as_bytes();
        // Looking a file up in a shard that is not there yet is "not found", not a failure.
        let missing = shards.stat(&hash, false).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        match shards.create_whole(&hash, false, b"body") {
            Ok(made) => {
                assert!(made);
                let path = layout.content_path(&hash, false);
                assert_eq!(std::fs::read(&path).unwrap(), b"body");
            }
            // No unnamed files on this platform (the importer stages and moves in instead):
            // the shard folder was made all the same.
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {}
            Err(e) => panic!("{e}"),
        }
        let made: Vec<String> = std::fs::read_dir(&layout.files)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(made, [format!("{:02x}", hash[0])]);
    }
}
