//! Paths inside a store directory (see store-format.md): `<store>/v1/{files,tmp,metadata,
//! quarantine,git}`, `<store>/v1/index.sqlite` and `<store>/v1/projects.txt`; and the store root's
//! mode (private: 0700, or 0750 with `HOARD_STORE_SHARED=group`).
//!
//! Must not: read or write file contents; it only names and creates directories.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{HoardError, Result};

/// Store format version, the `v1` in the path.
pub const FORMAT_VERSION: u32 = 1;

/// The modification time of every content file (seconds since the epoch; npm's date for
/// extracted files, 1985-10-26T08:15:00Z). A content file with another mtime, or another size
/// than its index row says, was written to since: it is hashed again before it is linked.
pub const CONTENT_MTIME: i64 = 499_162_500;

/// `CONTENT_MTIME` as file times.
pub fn content_times() -> std::fs::FileTimes {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(CONTENT_MTIME as u64);
    std::fs::FileTimes::new().set_modified(t).set_accessed(t)
}

#[derive(Debug)]
pub struct Layout {
    /// The store directory itself (what `--store-dir` names).
    pub root: PathBuf,
    pub files: PathBuf,
    pub tmp: PathBuf,
    pub metadata: PathBuf,
    pub index: PathBuf,
    /// Damaged content files found by `store verify`, kept for a look (`quarantine/<time>/`).
    pub quarantine: PathBuf,
    /// Every project this store has installed into, one path a line: kept apart from the index
    /// so that the list survives the loss of the index.
    pub projects: PathBuf,
    /// The global layout's slots: one folder per package and dependency closure, shared by
    /// every project installed with `--layout global`. `virtual/node_modules/.store`, the shape
    /// of npm's own linked store, so that npm's tools (`npm ls`) treat a slot as a dependency,
    /// not as a linked project of its own.
    pub virtual_root: PathBuf,
    /// The last install request of each project the daemon watches (`ahead/<16 hex>.req`).
    pub ahead: PathBuf,
    /// Git dependencies: bare repositories and the tarballs packed from them (`crate::git`).
    pub git: PathBuf,
    counter: AtomicU64,
}

/// The mode of the store root: private (0700), or group-readable (0750) when
/// `HOARD_STORE_SHARED=group` says the store is shared with a group on purpose.
pub fn root_mode() -> u32 {
    match std::env::var("HOARD_STORE_SHARED").as_deref() {
        Ok("group") => 0o750,
        _ => 0o700,
    }
}

/// Make the store root private (see `root_mode`). Only the owner can change the mode; a store
/// owned by someone else is left as it is (opening it fails later on its own terms).
fn secure_root(root: &Path) -> Result<()> {
    use crate::platform;
    let md = std::fs::metadata(root).map_err(|e| HoardError::io("reading", root, e))?;
    if platform::owner(&md) != Some(platform::my_uid())
        || platform::mode(&md) & 0o777 == root_mode()
    {
        return Ok(());
    }
    platform::set_mode(root, root_mode())
        .map_err(|e| HoardError::io("making the store private:", root, e))
}

fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| HoardError::io("creating directory", path, e))
}

impl Layout {
    /// Create (if needed) the directory tree of a store at `root`.
    pub fn create(root: &Path) -> Result<Layout> {
        let base = root.join(format!("v{FORMAT_VERSION}"));
        let layout = Layout {
            root: root.to_path_buf(),
            files: base.join("files"),
            tmp: base.join("tmp"),
            metadata: base.join("metadata"),
            index: base.join("index.sqlite"),
            quarantine: base.join("quarantine"),
            projects: base.join("projects.txt"),
            virtual_root: base.join("virtual").join("node_modules").join(".store"),
            ahead: base.join("ahead"),
            git: base.join("git"),
            counter: AtomicU64::new(0),
        };
        mkdir(root)?;
        secure_root(root)?;
        for d in [&layout.files, &layout.tmp, &layout.metadata] {
            mkdir(d)?;
        }
        // The 256 shard folders are made as files first go into them (`Shards`): making them
        // all here cost a new daemon a few milliseconds before it listened (tens of them
        // after large deletes on ext4).
        Ok(layout)
    }

    /// `files/<2 hex>/<62 hex>` plus `-exec` for executable files.
    pub fn content_path(&self, hash: &[u8; 32], executable: bool) -> PathBuf {
        let hex = hex::encode(hash);
        let name = if executable {
            format!("{}-exec", &hex[2..])
        } else {
            hex[2..].to_string()
        };
        self.files.join(&hex[..2]).join(name)
    }

    /// Parse a content path's file name back to (hash, executable). None for foreign files.
    pub fn parse_content_name(shard: &str, name: &str) -> Option<([u8; 32], bool)> {
        let (rest, exec) = match name.strip_suffix("-exec") {
            Some(r) => (r, true),
            None => (name, false),
        };
        if shard.len() != 2 || rest.len() != 62 {
            return None;
        }
        let bytes = hex::decode(format!("{shard}{rest}")).ok()?;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes);
        Some((hash, exec))
    }

    pub fn ensure_shard(&self, dir: &Path) -> Result<()> {
        if !dir.is_dir() {
            mkdir(dir)?;
        }
        Ok(())
    }

    /// A fresh, empty staging directory under `tmp/`, unique within and across daemon runs.
    pub fn new_staging_dir(&self) -> Result<PathBuf> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = self
            .tmp
            .join(format!("{}-{nanos:x}-{n}", std::process::id()));
        std::fs::create_dir(&dir)
            .map_err(|e| HoardError::io("creating staging directory", &dir, e))?;
        Ok(dir)
    }

    /// Remove everything under `tmp/` (leftovers of a killed daemon). Call only while holding
    /// the daemon lock, before serving.
    pub fn clean_tmp(&self) -> Result<u64> {
        let mut removed = 0;
        let rd =
            std::fs::read_dir(&self.tmp).map_err(|e| HoardError::io("reading", &self.tmp, e))?;
        for entry in rd.flatten() {
            let p = entry.path();
            let r = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            r.map_err(|e| HoardError::io("removing leftover", &p, e))?;
            removed += 1;
        }
        Ok(removed)
    }
}

/// `<shard>-<name>` of a content path, so quarantined files keep their whole hash.
pub fn quarantine_name(p: &Path) -> String {
    let shard = p
        .parent()
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    format!("{shard}-{name}")
}
