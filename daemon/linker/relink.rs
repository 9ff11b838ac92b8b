//! Putting a restored store file back where a damaged one was hard-linked: every file under a
//! folder that is the damaged inode is replaced by a new hard link of the restored file (made
//! beside it, then renamed over it, so no reader sees the file missing).
//!
//! Must not: follow symlinks (a global-layout project's packages are repaired in their slots),
//! or change anything but those files.

use std::path::{Path, PathBuf};

use crate::error::{HoardError, Result};

/// Replace every file under `root` that is inode (`dev`, `ino`) by a hard link of `with`.
/// Returns the files replaced. Blocking.
pub fn replace_inode(root: &Path, dev: u64, ino: u64, with: &Path) -> Result<Vec<PathBuf>> {
    let mut replaced = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(md) = e.metadata() else { continue };
            let p = e.path();
            if md.is_dir() {
                todo.push(p);
            } else if md.is_file()
                && let Ok(id) = crate::platform::identity(&p, &md)
                && id.inode == ino
                && id.device == dev
            {
                let tmp = p.with_file_name(format!("{}.hoard-relink", e.file_name().display()));
                let _ = std::fs::remove_file(&tmp);
                std::fs::hard_link(with, &tmp)
                    .and_then(|()| std::fs::rename(&tmp, &p))
                    .map_err(|e| HoardError::io("relinking the restored file at", &p, e))?;
                replaced.push(p);
            }
        }
    }
    Ok(replaced)
}
