//! Swapping in a node_modules prepared ahead of time: the daemon builds the next install's
//! node_modules in `node_modules/.hoard-next/root/node_modules` (the global layout: symlinks into
//! the store, `.bin`, the hidden folder), and the install that asks for it only renames each
//! entry over the old one (the old ones go to the trash), then writes the state file. Entries
//! are renamed, not rebuilt, so their symlinks (planned for their final place) are right once
//! they are there.
//!
//! Must not: build anything (the prepare step did), or keep the prepared folder afterwards.

use std::path::{Path, PathBuf};

use super::state::{HIDDEN_LOCK, STATE_FILE, read_state, remove_state, store_state};
use super::{mkdir_all, rename};
use crate::error::{HoardError, Result};

/// The folder an install is prepared in, inside node_modules.
pub const NEXT: &str = ".hoard-next";

/// Where a prepared install of `project` is built: a stand-in project root whose `node_modules`
/// is the next node_modules.
pub fn prepared_root(project: &Path) -> PathBuf {
    project.join("node_modules").join(NEXT).join("root")
}

/// Names at the top of node_modules that are the linker's own bookkeeping, never swapped.
fn own(name: &str) -> bool {
    matches!(
        name,
        NEXT | ".hoard-trash" | ".hoard-staging" | STATE_FILE | HIDDEN_LOCK
    ) || name.starts_with(".hoard-state.json")
}

/// Swap the prepared node_modules of `project` in. Blocking.
pub fn adopt(project: &Path) -> Result<()> {
    let nm = project.join("node_modules");
    let root = prepared_root(project);
    let next = root.join("node_modules");
    let Some(state) = read_state(&root) else {
        return Err(HoardError::Internal(
            "the prepared install has no state".into(),
        ));
    };
    remove_state(project)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let trash = nm.join(".hoard-trash").join(format!("{nanos:x}"));
    mkdir_all(&trash)?;
    let mut n = 0;
    let mut to_trash = |p: &Path| -> Result<()> {
        n += 1;
        rename(p, &trash.join(n.to_string()))
    };
    let incoming: Vec<String> = names(&next)?.into_iter().filter(|n| !own(n)).collect();
    for old in names(&nm)? {
        if !own(&old) && !incoming.contains(&old) {
            to_trash(&nm.join(&old))?;
        }
    }
    for name in &incoming {
        let dest = nm.join(name);
        if std::fs::symlink_metadata(&dest).is_ok() {
            to_trash(&dest)?;
        }
        rename(&next.join(name), &dest)?;
    }
    rename(&next.join(HIDDEN_LOCK), &nm.join(HIDDEN_LOCK))?;
    let prepared = nm.join(NEXT);
    std::fs::remove_dir_all(&prepared).map_err(|e| HoardError::io("removing", &prepared, e))?;
    store_state(project, state)?;
    std::thread::spawn(move || {
        let _ = std::fs::remove_dir_all(trash);
    });
    Ok(())
}

fn names(dir: &Path) -> Result<Vec<String>> {
    Ok(std::fs::read_dir(dir)
        .map_err(|e| HoardError::io("reading", dir, e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect())
}
