//! Swapping in a node_modules prepared ahead of time: the daemon builds the next install's
//! node_modules in `node_modules/.hoard-next/root/node_modules` (the global layout: symlinks into
//! the store, `.bin`, the hidden folder), and the install that asks for it only puts it in
//! place. Where the OS can swap two folders atomically, the whole prepared folder trades places
//! with node_modules in one call (`renameat2(RENAME_EXCHANGE)`, after one rename that takes it
//! out of node_modules to `<project>/.hoard-swap-<n>`), and the old folder's entries that are
//! not hoard's (tools' caches such as `.cache`) move into the new one. Elsewhere each entry
//! trades places with the old one (one exchange, or two renames, each; a symlink the same as
//! before stays), and the state file moves in. Either way the old entries go to the trash.
//! Entries are renamed, not rebuilt, so their symlinks (planned for their final place) are right
//! once they are there.
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
    remove_leftover_swaps(project);
    // The trash before the state: the state records node_modules' mtime last.
    if let Some(old) = swap_whole(project, &next)? {
        trash(&nm, &old)?;
        return super::state::adopt_state_in_place(project);
    }
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
    trash(&nm, &nm.join(NEXT))?;
    adopt_state(project, &state_tmp)
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Send `old` (the old entries) to node_modules' trash, deleted a moment later so as not to
/// compete with the install's own last steps.
fn trash(nm: &Path, old: &Path) -> Result<()> {
    let trash_root = nm.join(".hoard-trash");
    mkdir_all(&trash_root)?;
    let trash = trash_root.join(format!("{:x}", nanos()));
    rename(old, &trash)?;
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let _ = crate::platform::remove_dir_all(&trash);
    });
    Ok(())
}

/// Folders a swap interrupted by a crash left in the project (`.hoard-swap-<n>`): an old
/// node_modules, or a prepared one never swapped in.
fn remove_leftover_swaps(project: &Path) {
    let Ok(rd) = std::fs::read_dir(project) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with(".hoard-swap-") {
            let _ = crate::platform::remove_dir_all(&e.path());
        }
    }
}

/// Swap the whole prepared folder `next` in for node_modules, when node_modules is a real
/// folder and the OS can exchange two folders; the old folder's foreign entries move into the
/// new one. Returns where the old folder now is, or `None` (nothing changed) when the entries
/// must be swapped one by one.
fn swap_whole(project: &Path, next: &Path) -> Result<Option<std::path::PathBuf>> {
    let nm = project.join("node_modules");
    if !std::fs::symlink_metadata(&nm).is_ok_and(|m| m.is_dir()) {
        return Ok(None);
    }
    let out = project.join(format!(".hoard-swap-{:x}", nanos()));
    rename(next, &out)?;
    match crate::platform::exchange(&out, &nm) {
        Ok(()) => {}
        Err(e) => {
            // Put it back; the caller swaps entry by entry (or fails there, naming the cause).
            rename(&out, next)?;
            tracing::debug!(error = %e, "no folder exchange here; swapping entry by entry");
            return Ok(None);
        }
    }
    // node_modules is the new folder now; `out` holds the old one.
    for name in names(&out)? {
        if !own(&name) && !replaced_when_absent(&name) && !nm.join(&name).exists() {
            rename(&out.join(&name), &nm.join(&name))?;
        }
    }
    Ok(Some(out))
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
