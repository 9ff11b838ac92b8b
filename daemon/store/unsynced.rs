//! After the machine restarted: check the files of the package rows the index committed before
//! their content files were synced (its `unsynced` list, rows of an earlier boot). A package
//! with a damaged or missing file has its row dropped (the next install that needs it downloads
//! it again) and the damaged file is quarantined, as `store verify` does, for those packages
//! only.
//!
//! Must not: touch node_modules or global-layout slots (the caller marks the projects that link
//! a dropped package stale and checks slots), or re-hash rows of this boot (their files are
//! still in the page cache; the index writer syncs them).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::{Store, import};
use crate::error::Result;

/// What the check found and changed.
#[derive(Debug, Default)]
pub struct UnsyncedCheck {
    pub packages_checked: u64,
    pub files_checked: u64,
    /// `name@version` of the packages dropped.
    pub dropped: Vec<String>,
    /// Projects that link a dropped package.
    pub stale_projects: Vec<String>,
    /// Inode numbers of the damaged files (a global-layout slot that hard-links one is damaged).
    pub bad_inodes: HashSet<u64>,
    /// Where damaged files were moved.
    pub quarantine: Option<PathBuf>,
}

impl Store {
    /// Re-hash the files of the rows listed in `unsynced` by a boot other than `boot` (all of
    /// them when `boot` is `None`), drop the packages whose files are not whole, and take the
    /// checked rows off the list. Blocking; call before serving installs.
    pub fn check_unsynced(&self, boot: Option<&str>) -> Result<UnsyncedCheck> {
        let earlier: Vec<i64> = (self.index.unsynced()?.into_iter())
            .filter(|(_, b)| Some(b.as_str()) != boot)
            .map(|(id, _)| id)
            .collect();
        let mut check = UnsyncedCheck {
            packages_checked: earlier.len() as u64,
            ..UnsyncedCheck::default()
        };
        if earlier.is_empty() {
            return Ok(check);
        }
        let mut whole: HashMap<([u8; 32], bool), bool> = HashMap::new();
        let mut bad_paths = Vec::new();
        let mut drop_ids = Vec::new();
        for &id in &earlier {
            let (_, files) = self.index.package_files(id)?;
            let mut all_whole = true;
            for f in &files {
                let ok = *whole.entry((f.hash, f.executable)).or_insert_with(|| {
                    let path = self.layout.content_path(&f.hash, f.executable);
                    check.files_checked += 1;
                    let ok = matches!(import::hash_file(&path), Ok(h) if h == f.hash);
                    if !ok && std::fs::symlink_metadata(&path).is_ok() {
                        bad_paths.push(path);
                    }
                    ok
                });
                all_whole &= ok;
            }
            if !all_whole {
                drop_ids.push(id);
            }
        }
        check.bad_inodes = super::verify::inodes_of(&bad_paths);
        check.stale_projects = self.index.projects_using(&drop_ids)?;
        check.dropped = (self.index.package_sources(&drop_ids)?.into_iter())
            .map(|d| d.pkg_id)
            .collect();
        check.quarantine = self.quarantine(&bad_paths)?;
        self.drop_rows(&drop_ids)?;
        self.index.forget_unsynced(earlier)?;
        Ok(check)
    }
}
