//! What the dashboard shows, gathered from the store, its index and the projects' own files:
//! the store's totals and what sharing saves, each project's last install and whether it is out
//! of date, a project's dependency tree (from its package-lock.json, as `hoard ls` reads it) and
//! its install scripts' verdicts. Blocking: called on the blocking pool.
//!
//! Must not: change anything (the dashboard is read-only) or render HTML.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::linker::state::{self, Freshness, freshness};
use crate::project::Project;
use crate::registry::config::NpmConfig;
use crate::store::Store;
use crate::tree::Tree;

/// The store page's numbers.
pub struct StoreView {
    pub path: PathBuf,
    /// Bytes and files on disk in the content-addressed store.
    pub bytes: u64,
    pub files: u64,
    pub packages: u64,
    pub metadata_bytes: u64,
    /// What the registered projects' packages would take as copies.
    pub linked_bytes: u64,
    pub projects: Vec<ProjectRow>,
}

impl StoreView {
    /// Bytes that sharing saves: the projects' packages as copies, less the store itself.
    pub fn saved_bytes(&self) -> u64 {
        self.linked_bytes.saturating_sub(self.bytes)
    }
}

pub struct ProjectRow {
    pub path: PathBuf,
    /// Unix seconds of the last install through this store (None: never installed here).
    pub last_install: Option<i64>,
    /// Store packages it links.
    pub packages: u64,
    pub status: Freshness,
}

/// The store's totals and every project it serves (registered, or `shown` by `hoard ui`).
pub fn store_view(store: &Store, store_path: &Path, shown: &[PathBuf]) -> Result<StoreView> {
    let t = store.totals()?;
    let usage = store.index.project_usage()?;
    let mut rows: BTreeMap<PathBuf, ProjectRow> = BTreeMap::new();
    let mut linked_bytes = 0;
    for u in usage {
        linked_bytes += u.linked_bytes;
        let path = PathBuf::from(&u.path);
        rows.insert(
            path.clone(),
            ProjectRow {
                status: freshness(&path),
                path,
                last_install: Some(u.last_install),
                packages: u.packages,
            },
        );
    }
    for p in shown {
        rows.entry(p.clone()).or_insert_with(|| ProjectRow {
            status: freshness(p),
            path: p.clone(),
            last_install: None,
            packages: 0,
        });
    }
    let mut projects: Vec<ProjectRow> = rows.into_values().collect();
    projects.sort_by_key(|r| std::cmp::Reverse(r.last_install.unwrap_or(i64::MAX)));
    Ok(StoreView {
        path: store_path.to_path_buf(),
        bytes: t.bytes,
        files: t.files,
        packages: t.packages,
        metadata_bytes: t.metadata_bytes,
        linked_bytes,
        projects,
    })
}

/// One project's page: its manifest, status, last install, and its tree (or why there is none).
pub struct ProjectView {
    pub dir: PathBuf,
    pub name: String,
    pub version: String,
    pub status: Freshness,
    /// Layout and link method of the last install, from its state file.
    pub installed_as: Option<(String, String)>,
    pub tree: std::result::Result<Tree, String>,
}

/// Read a project for its page. `env` is the daemon's own environment (for npm's settings).
pub fn project_view(dir: &Path, env: &HashMap<String, String>) -> Result<ProjectView> {
    let project = Project::load(dir)?;
    let cfg = NpmConfig::load(dir, env);
    let tree = crate::install::locked_tree(&project, &cfg, "open this page again")
        .map(|(_, t)| t)
        .map_err(|e| e.to_string());
    let installed_as =
        state::read_state(dir).map(|s| (s.layout.as_str().to_string(), s.link_method));
    Ok(ProjectView {
        dir: dir.to_path_buf(),
        name: project.manifest.name.clone(),
        version: project.manifest.version.clone(),
        status: freshness(dir),
        installed_as,
        tree,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_follows_the_state_file_and_the_inputs() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        assert_eq!(freshness(dir), Freshness::Gone);
        std::fs::write(dir.join("package.json"), "{}").unwrap();
        assert_eq!(freshness(dir), Freshness::NotInstalled);
    }
}
