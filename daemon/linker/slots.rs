//! Building the global layout's slots in the store's virtual folder (`<store>/v1/virtual/`).
//! Each missing slot is built in the store's `tmp/` (its package's files hard-linked from the
//! content files, then the symlinks beside it) and renamed into place whole: a slot is there
//! complete or not at all, even after kill -9 (the daemon empties `tmp/` when it starts). When
//! another install renamed the same slot first, ours is dropped: both are the same.
//!
//! Must not: touch a project (the project's symlinks are `materialize`'s), or change a slot that
//! exists (slots are shared; only prune and verify remove them).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use tracing::instrument;

use super::materialize::{Hooks, build_or_repair, failpoint_link_hold};
use super::method::{LinkState, Method};
use super::{LinkReport, Slot, mkdir_all};
use crate::error::{HoardError, Result};
use crate::store::Store;

/// Make every slot of `slots` exist. Blocking (builds in parallel). Adds what it did to
/// `report`: slots built count as added, slots already there as unchanged.
#[instrument(skip_all, fields(slots = slots.len()))]
pub fn ensure(
    slots: &[Slot],
    store: &Store,
    hooks: &Hooks<'_>,
    report: &mut LinkReport,
) -> Result<()> {
    let root = &store.layout.virtual_root;
    mkdir_all(root)?;
    // Slots planned as present are not looked at again; the others may have been made since.
    let missing: Vec<&Slot> = (slots.iter())
        .filter(|s| !s.present && !root.join(&s.dir).is_dir())
        .collect();
    report.unchanged += (slots.len() - missing.len()) as u64;
    if missing.is_empty() {
        return Ok(());
    }
    let links = LinkState::probe_free(Method::Hardlink);
    let total = missing.len() as u64;
    let (done, files) = (AtomicU64::new(0), AtomicU64::new(0));
    let (repaired, repaired_bytes) = (AtomicU64::new(0), AtomicU64::new(0));
    missing.par_iter().try_for_each(|s| -> Result<()> {
        failpoint_link_hold();
        if (hooks.cancelled)() {
            return Err(HoardError::Cancelled("while linking".into()));
        }
        let stage = store.layout.new_staging_dir()?;
        let built = build(&stage, s, store, &links, hooks).and_then(|b| {
            place(&stage, &root.join(&s.dir))?;
            Ok(b)
        });
        let _ = std::fs::remove_dir_all(&stage);
        let built = built?;
        files.fetch_add(built.files, Ordering::Relaxed);
        if let Some(b) = built.repaired_bytes {
            repaired.fetch_add(1, Ordering::Relaxed);
            repaired_bytes.fetch_add(b, Ordering::Relaxed);
        }
        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
        if d.is_multiple_of(16) || d == total {
            (hooks.progress)(d, total, "");
        }
        Ok(())
    })?;
    report.added += total;
    report.files += files.into_inner();
    report.repaired += repaired.into_inner();
    report.repaired_bytes += repaired_bytes.into_inner();
    Ok(())
}

/// Build slot `s` in `stage`: the package folder, then its symlinks.
fn build(
    stage: &Path,
    s: &Slot,
    store: &Store,
    links: &LinkState,
    hooks: &Hooks<'_>,
) -> Result<super::materialize::Built> {
    let folder = stage.join(&s.package.location);
    mkdir_all(&folder)?;
    let built = build_or_repair(&folder, &s.package, store, links, hooks)?;
    for l in &s.links {
        let dest = stage.join(&l.location);
        if let Some(parent) = dest.parent() {
            mkdir_all(parent)?;
        }
        crate::platform::link_dir(&l.target, &dest)
            .map_err(|e| HoardError::io("creating symlink", &dest, e))?;
    }
    Ok(built)
}

/// Rename a built slot into place; a slot already there (another install's) is kept.
fn place(stage: &Path, dest: &Path) -> Result<()> {
    match std::fs::rename(stage, dest) {
        Ok(()) => Ok(()),
        Err(e)
            if e.raw_os_error() == Some(libc::ENOTEMPTY)
                || e.kind() == std::io::ErrorKind::AlreadyExists =>
        {
            Ok(())
        }
        Err(e) => Err(HoardError::io(
            "placing slot",
            dest,
            std::io::Error::new(e.kind(), format!("from `{}`: {e}", stage.display())),
        )),
    }
}
