//! Swapping in a node_modules prepared ahead of time: the daemon builds the next install's
//! node_modules in `node_modules/.hoard-next/root/node_modules` (the global layout: symlinks into
//! the store, `.bin`, the hidden folder), and the install that asks for it only makes each
//! entry trade places with the old one (one `renameat2(RENAME_EXCHANGE)` each: no moment
//! without it; a symlink the same as before stays), moves the state file in and sends the prepared folder, now holding the old
//! entries, to the trash. Entries are renamed, not rebuilt, so their symlinks (planned for their
//! final place) are right once they are there.
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
    let incoming: Vec<String> = names(&next)?.into_iter().filter(|n| !own(n)).collect();
    // Old entries with no new one take the place of nothing: they leave with the prepared
    // folder. Every other entry trades places with its new one in one call.
    for old in names(&nm)? {
        if !own(&old) && replaced_when_absent(&old) && !incoming.contains(&old) {
            rename(&nm.join(&old), &next.join(&old))?;
        }
    }
    for name in &incoming {
        let (new, dest) = (next.join(name), nm.join(name));
        // A dependency that links the same slot as before stays as it is.
        let same = matches!((std::fs::read_link(&new), std::fs::read_link(&dest)), (Ok(a), Ok(b)) if a == b);
        if !same {
            exchange_or_move(&new, &dest)?;
        }
    }
    rename(&next.join(HIDDEN_LOCK), &nm.join(HIDDEN_LOCK))?;
    // The state out of the prepared folder, which (holding the old entries now) goes to the
    // trash and is deleted in the background; node_modules' mtime is recorded last.
    let state_tmp = nm.join(format!("{STATE_FILE}.next"));
    rename(&prepared_state, &state_tmp)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let trash_root = nm.join(".hoard-trash");
    mkdir_all(&trash_root)?;
    let trash = trash_root.join(format!("{nanos:x}"));
    rename(&nm.join(NEXT), &trash)?;
    adopt_state(project, &state_tmp)?;
    // Deleted a moment later, so as not to compete with the install's own last steps.
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let _ = crate::platform::remove_dir_all(&trash);
    });
    Ok(())
}

/// Put `new` at `dest`: when `dest` exists the two trade places (atomic where the OS can:
/// `dest` is never missing), else `new` is moved there.
fn exchange_or_move(new: &Path, dest: &Path) -> Result<()> {
    match crate::platform::exchange(new, dest) {
        Ok(()) => Ok(()),
        // Nothing at `dest` to trade with.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => rename(new, dest),
        // A filesystem (or an OS) without exchange: the old one goes beside the new one first.
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
            let aside = new.with_file_name(format!(
                "{}.old",
                new.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            ));
            rename(dest, &aside)?;
            rename(new, dest)
        }
        Err(e) => Err(HoardError::io("swapping in", dest, e)),
    }
}

fn names(dir: &Path) -> Result<Vec<String>> {
    Ok(std::fs::read_dir(dir)
        .map_err(|e| HoardError::io("reading", dir, e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect())
}
