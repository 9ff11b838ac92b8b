//! `hoard store prune`: drop projects whose node_modules is gone, then packages no project (and no
//! install in flight) uses, then content files no package uses. Runs beside installs: it keeps
//! package rows that installs in flight have pinned, files newer than the oldest import under
//! way, and any content file something else hard-links (a project's node_modules, even one the
//! index does not know, as after a rebuilt index).
//!
//! Must not: wait for installs, or touch node_modules.

use crate::platform;
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::layout::Layout;
use super::{Store, read_dir};
use crate::error::{HoardError, Result};

/// What `prune` did (or would do).
#[derive(Debug, Default)]
pub struct PruneReport {
    pub projects_dropped: u64,
    pub projects_kept: u64,
    pub packages_removed: u64,
    pub files_removed: u64,
    pub bytes_freed: u64,
    /// Unused content files kept because something hard-links them.
    pub files_kept_linked: u64,
    /// Global-layout slots no project links.
    pub slots_removed: u64,
}

impl Store {
    /// Prune the store (see the module comment). `slot_roots` are the global-layout slots the
    /// registered projects link; they and the slots they reach are kept. Blocking.
    pub fn prune(
        &self,
        dry_run: bool,
        slot_roots: Vec<String>,
        mut on_dropped: impl FnMut(String),
    ) -> Result<PruneReport> {
        let started = SystemTime::now();
        // Files made since an import under way began are its own, not yet in the index.
        let newest_kept = self
            .oldest_import_start()
            .map_or(started, |t| (t - Duration::from_secs(1)).min(started));
        let mut report = PruneReport::default();
        let mut dropped = Vec::new();
        for p in self.index.projects()? {
            if Path::new(&p).join("node_modules").is_dir() {
                report.projects_kept += 1;
            } else {
                on_dropped(p.clone());
                dropped.push(p);
            }
        }
        report.projects_dropped = dropped.len() as u64;
        let packages = self.index.all_packages()?;
        let dropped_set: HashSet<String> = dropped.iter().cloned().collect();
        // Packages used only by dropped projects are unused too; pinned ones are in use.
        let mut used = self.index.referenced_excluding(&dropped_set)?;
        let pinned_ids = self.pinned();
        used.extend(pinned_ids.iter().copied());
        let remove_ids: Vec<i64> = packages
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| !used.contains(id))
            .collect();
        report.packages_removed = remove_ids.len() as u64;
        // Slots before files: a removed slot's files lose a link and can go too.
        let pinned: Vec<&str> = (packages.iter())
            .filter(|(id, _)| pinned_ids.contains(id))
            .map(|(_, pkg)| pkg.as_str())
            .collect();
        report.slots_removed = self.prune_slots(slot_roots, &pinned, newest_kept, dry_run)?;
        let mut keep: HashSet<([u8; 32], bool)> = HashSet::new();
        for (id, _) in &packages {
            if used.contains(id) {
                for f in self.index.package_files(*id)?.1 {
                    keep.insert((f.hash, f.executable));
                }
            }
        }
        self.remove_unused_files(&keep, newest_kept, dry_run, &mut report)?;
        if !dry_run {
            self.forget_projects(dropped)?;
            self.drop_rows(&remove_ids)?;
        }
        Ok(report)
    }

    /// Remove the slots that neither `roots` reach nor an install in flight may be using (a slot
    /// of a pinned package, or one made since the oldest import began). Returns how many.
    fn prune_slots(
        &self,
        roots: Vec<String>,
        pinned: &[&str],
        newest_kept: SystemTime,
        dry_run: bool,
    ) -> Result<u64> {
        let keep = self.slot_closure(roots);
        let prefixes: Vec<String> = pinned
            .iter()
            .map(|p| format!("{}-", p.replace('/', "+")))
            .collect();
        let mut removed = 0;
        for name in self.slot_names()? {
            if keep.contains(&name) || prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                continue;
            }
            let made = std::fs::symlink_metadata(self.layout.virtual_root.join(&name))
                .and_then(|m| m.modified());
            if made.is_ok_and(|t| t >= newest_kept) {
                continue;
            }
            removed += 1;
            if !dry_run {
                self.remove_slot(&name)?;
            }
        }
        Ok(removed)
    }

    /// Delete content files outside `keep` that nothing hard-links and that are older than
    /// `newest_kept`.
    fn remove_unused_files(
        &self,
        keep: &HashSet<([u8; 32], bool)>,
        newest_kept: SystemTime,
        dry_run: bool,
        report: &mut PruneReport,
    ) -> Result<()> {
        let newest_kept = newest_kept
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        for shard in read_dir(&self.layout.files)? {
            let sname = shard
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            for f in read_dir(&shard)? {
                let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let Some((hash, exec)) = Layout::parse_content_name(&sname, name) else {
                    continue;
                };
                // An executable variant made for a bin target is kept with its plain twin.
                if keep.contains(&(hash, exec)) || (exec && keep.contains(&(hash, false))) {
                    continue;
                }
                let Ok(md) = std::fs::symlink_metadata(&f) else {
                    continue;
                };
                let Ok(id) = platform::identity(&f, &md) else {
                    continue;
                };
                if id.links > 1 {
                    report.files_kept_linked += 1;
                    continue;
                }
                if platform::ctime_ns(&md) >= newest_kept {
                    continue;
                }
                report.bytes_freed += md.len();
                report.files_removed += 1;
                if !dry_run {
                    let _ = std::fs::remove_file(&f);
                }
            }
        }
        Ok(())
    }

    /// Forget projects, in the index and in the list beside it.
    fn forget_projects(&self, dropped: Vec<String>) -> Result<()> {
        self.projects.remove(&dropped)?;
        self.index.write(move |tx| {
            for p in dropped {
                tx.execute("DELETE FROM projects WHERE path = ?1", [p])
                    .map_err(|e| HoardError::Internal(format!("pruning: {e}")))?;
            }
            Ok(())
        })
    }
}
