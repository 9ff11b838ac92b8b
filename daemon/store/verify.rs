//! `hoard store verify`: re-hash every content file against its name, find the packages that use a
//! damaged or missing file, move damaged files to `quarantine/<time>/` (never delete them), and
//! drop those packages' rows so the next install that needs them downloads them again. Says
//! which projects link a damaged package (the caller marks them stale) and how to download the
//! packages again (the caller may, with `--repair`).
//!
//! Must not: touch node_modules or the network.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::index::DroppedPackage;
use super::layout::Layout;
use super::{Store, import, read_dir};
use crate::error::{HoardError, Result};

/// A content file's identity: (BLAKE3, executable variant).
type FileKey = ([u8; 32], bool);

/// What `verify` found, and what it changed unless it was a dry run.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub files_checked: u64,
    pub packages_checked: u64,
    /// Files whose bytes do not match their name, or that are not content files at all.
    pub bad_files: u64,
    /// Packages that use a bad or missing file (their rows are dropped unless a dry run).
    pub packages_removed: u64,
    /// Where damaged files were moved.
    pub quarantine: Option<PathBuf>,
    /// Projects that link a damaged package: their next install must relink it.
    pub stale_projects: Vec<String>,
    /// The packages dropped, to download again.
    pub dropped: Vec<DroppedPackage>,
    /// Inode numbers of the damaged files (a global-layout slot that hard-links one is damaged).
    pub bad_inodes: HashSet<u64>,
    /// Global-layout slots checked and found damaged (filled by the caller, which checks them).
    pub slots_checked: u64,
    pub slots_damaged: u64,
}

/// What re-hashing the content files found.
struct Scan {
    /// Files whose bytes do not match their name.
    bad: HashSet<FileKey>,
    /// Files that are whole.
    present: HashSet<FileKey>,
    /// Every file to set aside (bad, or not a content file name at all).
    bad_paths: Vec<PathBuf>,
}

impl Store {
    /// Re-hash every content file; report problems through `on_problem` (path, packages, kind,
    /// detail); unless `dry_run`, quarantine bad files and drop every package row that uses a
    /// bad or missing file. Blocking.
    pub fn verify(
        &self,
        dry_run: bool,
        on_progress: impl FnMut(u64, u64),
        mut on_problem: impl FnMut(String, Vec<String>, &'static str, String),
    ) -> Result<VerifyReport> {
        let mut shards = read_dir(&self.layout.files)?;
        shards.sort();
        let mut all = Vec::new();
        for s in &shards {
            all.extend(read_dir(s)?);
        }
        let scan = scan_files(&all, on_progress, &mut on_problem);
        // Which packages use bad or missing files?
        let packages = self.index.all_packages()?;
        let mut remove_ids = Vec::new();
        let mut reported: HashMap<FileKey, Vec<String>> = HashMap::new();
        for (id, pkg_id) in &packages {
            let (_, files) = self.index.package_files(*id)?;
            let mut broken = false;
            for f in &files {
                let key = (f.hash, f.executable);
                if scan.bad.contains(&key) || !scan.present.contains(&key) {
                    broken = true;
                    reported.entry(key).or_default().push(pkg_id.clone());
                }
            }
            if broken {
                remove_ids.push(*id);
            }
        }
        self.report_damage(&scan, &reported, &mut on_problem);
        let mut report = VerifyReport {
            files_checked: all.len() as u64,
            packages_checked: packages.len() as u64,
            bad_files: scan.bad_paths.len() as u64,
            packages_removed: remove_ids.len() as u64,
            stale_projects: self.index.projects_using(&remove_ids)?,
            dropped: self.index.package_sources(&remove_ids)?,
            quarantine: None,
            bad_inodes: inodes_of(&scan.bad_paths),
            slots_checked: 0,
            slots_damaged: 0,
        };
        if !dry_run {
            report.quarantine = self.quarantine(&scan.bad_paths)?;
            self.drop_rows(&remove_ids)?;
        }
        Ok(report)
    }

    /// Report every damaged or missing file, with the packages that use it.
    fn report_damage(
        &self,
        scan: &Scan,
        reported: &HashMap<FileKey, Vec<String>>,
        on_problem: &mut impl FnMut(String, Vec<String>, &'static str, String),
    ) {
        let path_of = |key: &FileKey| {
            self.layout
                .content_path(&key.0, key.1)
                .display()
                .to_string()
        };
        for (key, pkgs) in reported {
            if scan.bad.contains(key) {
                let why = "content does not match its BLAKE3 name".into();
                on_problem(path_of(key), pkgs.clone(), "hash-mismatch", why);
            } else {
                let why = "file referenced by the index is not in the store".into();
                on_problem(path_of(key), pkgs.clone(), "missing", why);
            }
        }
        for key in &scan.bad {
            if !reported.contains_key(key) {
                let why = "content does not match its BLAKE3 name (no package uses it)".into();
                on_problem(path_of(key), vec![], "hash-mismatch", why);
            }
        }
    }

    /// Move damaged files to `quarantine/<unix time>/<shard>-<name>`. Returns the folder.
    pub(super) fn quarantine(&self, bad_paths: &[PathBuf]) -> Result<Option<PathBuf>> {
        if bad_paths.is_empty() {
            return Ok(None);
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let dir = self.layout.quarantine.join(stamp.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| HoardError::io("creating", &dir, e))?;
        for p in bad_paths {
            let name = super::layout::quarantine_name(p);
            std::fs::rename(p, dir.join(&name))
                .map_err(|e| HoardError::io("quarantining", p, e))?;
        }
        Ok(Some(dir))
    }

    /// Drop package rows (and their hot file lists): the next install that needs them downloads
    /// them again.
    pub(super) fn drop_rows(&self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let owned = ids.to_vec();
        self.index.write(move |tx| {
            for id in owned {
                tx.execute("DELETE FROM packages WHERE id = ?1", [id])
                    .map_err(|e| HoardError::Internal(format!("removing package: {e}")))?;
            }
            Ok(())
        })?;
        if let Ok(mut hot) = self.hot.lock() {
            for id in ids {
                hot.forget(*id);
            }
        }
        Ok(())
    }
}

/// The inode numbers of `paths` (a global-layout slot that hard-links one of them shares it);
/// a path that cannot be read is left out.
pub(super) fn inodes_of(paths: &[PathBuf]) -> HashSet<u64> {
    (paths.iter())
        .filter_map(|p| {
            let md = std::fs::symlink_metadata(p).ok()?;
            crate::platform::identity(p, &md).ok()
        })
        .map(|id| id.inode)
        .collect()
}

/// Re-hash `files`; names that are not content file names are reported as foreign.
fn scan_files(
    files: &[PathBuf],
    mut on_progress: impl FnMut(u64, u64),
    on_problem: &mut impl FnMut(String, Vec<String>, &'static str, String),
) -> Scan {
    let total = files.len() as u64;
    let mut scan = Scan {
        bad: HashSet::new(),
        present: HashSet::new(),
        bad_paths: Vec::new(),
    };
    for (i, path) in files.iter().enumerate() {
        let shard = path
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or("");
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some((hash, exec)) = Layout::parse_content_name(shard, name) else {
            let why = "not a content file name".into();
            on_problem(path.display().to_string(), vec![], "foreign", why);
            scan.bad_paths.push(path.clone());
            continue;
        };
        if matches!(import::hash_file(path), Ok(h) if h == hash) {
            scan.present.insert((hash, exec));
        } else {
            scan.bad.insert((hash, exec));
            scan.bad_paths.push(path.clone());
        }
        if i % 256 == 0 {
            on_progress(i as u64, total);
        }
    }
    on_progress(total, total);
    scan
}
