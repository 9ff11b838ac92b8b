//! Swapping in a node_modules prepared ahead of time: the daemon builds the next install's
//! node_modules in `node_modules/.hoard-next/root/node_modules` (the global layout: symlinks into
//! the store, `.bin`, the hidden folder), and the install that asks for it only renames each
//! entry over the old one (the old ones go to the trash), then writes the state file. Entries
//! are renamed, not rebuilt, so their symlinks (planned for their final place) are right once
//! they are there.
//!
//! Must not: build anything (the prepare step did), or keep the prepared folder afterwards.

use std::path::Path;

use super::state::{
    HIDDEN_LOCK, MTIME_FILE, NEXT, STATE_FILE, adopt_state, prepared_root, remove_state,
};
use super::{mkdir_all, rename};
use crate::error::{HoardError, Result};

/// Names at the top of node_modules that are the linker's own bookkeeping, never swapped.
fn own(name: &str) -> bool {
    matches!(
        name,
        NEXT | ".hoard-trash" | ".hoard-staging" | STATE_FILE | HIDDEN_LOCK | MTIME_FILE
    ) || name.starts_with(".hoard-state.json")
}

/// Old entries that go when their place is not taken by a new one: packages, and hoard's own
/// `.bin` and `.hoard`. Other dot-folders (tools' caches, such as `.cache` or `.vite`) stay.
fn replaced_when_absent(name: &str) -> bool {
    !name.starts_with('.') || name == ".bin" || name == ".hoard"
}

/// Swap the prepared node_modules of `project` in. Blocking.
pub fn adopt(project: &Path) -> Result<()> {
    let nm = project.join("node_modules");
    let root = prepared_root(project);
    let next = root.join("node_modules");
    let prepared_state = super::state::state_path(&root);
    if !prepared_state.exists() {
        return Err(HoardError::Internal(
            "the prepared install has no state".into(),
        ));
    }
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
        if !own(&old) && replaced_when_absent(&old) && !incoming.contains(&old) {
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
    // Out of the prepared folder before it goes; its mtime is recorded last.
    let state_tmp = nm.join(format!("{STATE_FILE}.next"));
    rename(&prepared_state, &state_tmp)?;
    let prepared = nm.join(NEXT);
    std::fs::remove_dir_all(&prepared).map_err(|e| HoardError::io("removing", &prepared, e))?;
    adopt_state(project, &state_tmp)?;
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
