//! node_modules: the install plan (which package goes where, which symlinks and bins exist) and
//! its materialization from the store.
//!
//! The plan is separate from how it is materialized, so layouts differ only in planning:
//! `hoisted` (npm's tree) and `isolated` (pnpm-style `.hoard/<name>@<version>/node_modules/<name>`
//! plus symlinks). Materializing touches only what changed since the state file
//! (`node_modules/.hoard-state.json`) was written; each package directory is built in a staging
//! folder and renamed into place, so a package is always either old or new, never half. The
//! state file is removed before anything changes and written last: after a crash the next
//! install sees no state and re-links everything.
//! Must not: download, resolve, or run package code.

pub mod bins;
pub mod method;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tracing::{debug, instrument};

use crate::error::{HoardError, Result};
use crate::store::{Store, StoredPackage};
use method::{LinkState, Method, Requested};

pub const STATE_FILE: &str = ".hoard-state.json";
const STAGING: &str = ".hoard-staging";
const TRASH_DIR: &str = ".hoard-trash";

/// One package directory to create.
#[derive(Debug, Clone)]
pub struct PlannedPackage {
    /// Relative to the project root, e.g. `node_modules/a/node_modules/b`.
    pub location: String,
    /// Identity for incremental installs: `name@version integrity`.
    pub key: String,
    pub stored: Arc<StoredPackage>,
    /// Real copies instead of links (packages whose scripts run write into their folder).
    pub copy: bool,
    /// Bin name → target inside the package.
    pub bins: BTreeMap<String, String>,
}

/// A bin that wants a link in `<dir>/.bin/<name>`.
#[derive(Debug, Clone)]
pub struct BinCandidate {
    /// Folder holding the `.bin` directory (relative to the project), e.g. `node_modules`.
    pub dir: String,
    pub name: String,
    /// The package folder (relative to the project).
    pub location: String,
    /// Target inside the package.
    pub target: String,
    /// The package's own name equals the bin name (wins clashes).
    pub own: bool,
}

/// A symlink to create: `location` → `target` (the link's text, relative to its folder).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlannedLink {
    pub location: String,
    pub target: String,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub packages: Vec<PlannedPackage>,
    pub links: Vec<PlannedLink>,
    pub bin_candidates: Vec<BinCandidate>,
    /// `.bin` entries to create: (bin dir, name, symlink text).
    pub bin_links: Vec<(String, String, String)>,
    pub layout: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub layout: String,
    /// Hash of every input of the install (package.json, lockfile, options).
    pub inputs: String,
    pub link_method: String,
    pub packages: BTreeMap<String, String>,
    pub links: Vec<PlannedLink>,
    pub bin_links: Vec<(String, String, String)>,
    /// mtime (ns) of node_modules when the state was written.
    pub node_modules_mtime: i128,
}

/// A copy of the package-lock.json an install ended with, kept beside the state: with the
/// state it proves what node_modules holds, so a missing lockfile can be given back without
/// resolving or downloading (pnpm's and npm's trust in node_modules, for hoard's own folders).
pub const HIDDEN_LOCK: &str = ".hoard-lock.json";

/// Keep (or, when the install wrote no lockfile, drop) the hidden copy of the lockfile. Call
/// before `write_state`, which records node_modules' mtime.
pub fn write_hidden_lock(project: &Path, lock: Option<&[u8]>) -> Result<()> {
    let path = project.join("node_modules").join(HIDDEN_LOCK);
    match lock {
        Some(bytes) => crate::atomic::write_atomic(&path, bytes),
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(HoardError::io("removing", &path, e))
            }
            _ => Ok(()),
        },
    }
}

pub fn read_hidden_lock(project: &Path) -> Option<Vec<u8>> {
    std::fs::read(project.join("node_modules").join(HIDDEN_LOCK)).ok()
}

pub fn state_path(project: &Path) -> PathBuf {
    project.join("node_modules").join(STATE_FILE)
}

pub fn read_state(project: &Path) -> Option<State> {
    let bytes = std::fs::read(state_path(project)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn dir_mtime(p: &Path) -> i128 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p)
        .map(|m| m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128)
        .unwrap_or(-1)
}

/// The text of a symlink placed in `from_dir` that points at `to` (both relative to the
/// project root).
pub fn relative(from_dir: &str, to: &str) -> String {
    let a: Vec<&str> = from_dir.split('/').filter(|s| !s.is_empty()).collect();
    let b: Vec<&str> = to.split('/').filter(|s| !s.is_empty()).collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<&str> = vec![".."; a.len() - common];
    parts.extend(&b[common..]);
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// Resolve bin candidates into `.bin` links. On a name clash in one folder the package whose
/// name equals the bin wins, then the first in location order.
pub fn compute_bin_links(plan: &mut Plan) {
    let mut cands = plan.bin_candidates.clone();
    cands.sort_by(|a, b| {
        (&a.dir, &a.name, !a.own, &a.location).cmp(&(&b.dir, &b.name, !b.own, &b.location))
    });
    let mut seen: HashSet<(String, String)> = HashSet::new();
    plan.bin_links = Vec::new();
    for c in cands {
        if !seen.insert((c.dir.clone(), c.name.clone())) {
            continue;
        }
        let text = relative(
            &format!("{}/.bin", c.dir),
            &format!("{}/{}", c.location, c.target),
        );
        plan.bin_links.push((c.dir, c.name, text));
    }
}

/// Counters reported back to the caller.
#[derive(Debug, Default)]
pub struct LinkReport {
    pub added: u64,
    pub removed: u64,
    pub unchanged: u64,
    pub files: u64,
    pub method: Option<Method>,
    pub warnings: Vec<String>,
}

fn mkdir_all(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| HoardError::io("creating directory", p, e))
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| {
        HoardError::io(
            "renaming",
            from,
            std::io::Error::new(e.kind(), format!("to `{}`: {e}", to.display())),
        )
    })
}

/// Apply `plan` to `project`. Blocking (uses rayon for parallel linking). `remembered` is the
/// method an earlier probe found for this filesystem pair.
#[instrument(skip_all, fields(project = %project.display(), packages = plan.packages.len()))]
pub fn materialize(
    project: &Path,
    plan: &Plan,
    store: &Store,
    requested: Requested,
    remembered: Option<Method>,
    force: bool,
    on_progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<LinkReport> {
    let nm = project.join("node_modules");
    mkdir_all(&nm)?;
    let old = if force {
        None
    } else {
        read_state(project).filter(|s| s.layout == plan.layout)
    };
    // From here on the tree is in flux: no state until the end.
    let sp = state_path(project);
    match std::fs::remove_file(&sp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(HoardError::io("removing", &sp, e)),
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // Replaced folders go to `.hoard-trash/<run>/` and are deleted in the background. The
    // `.hoard-trash` folder itself stays, so that deletion never changes node_modules' own mtime
    // (which the no-op check compares).
    let trash_root = nm.join(TRASH_DIR);
    let trash = trash_root.join(format!("{nanos:x}"));
    let staging = nm.join(STAGING);
    let _ = std::fs::remove_dir_all(&staging);
    // Leftover trash of an earlier run.
    if let Ok(rd) = std::fs::read_dir(&trash_root) {
        for e in rd.flatten() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    mkdir_all(&staging)?;
    let trash_count = AtomicU64::new(0);
    let to_trash = |p: &Path| -> Result<()> {
        if std::fs::symlink_metadata(p).is_err() {
            return Ok(());
        }
        if !trash.exists() {
            let _ = std::fs::create_dir_all(&trash);
        }
        let n = trash_count.fetch_add(1, Ordering::Relaxed);
        rename(p, &trash.join(n.to_string()))
    };

    let planned: HashMap<&str, &PlannedPackage> = plan
        .packages
        .iter()
        .map(|p| (p.location.as_str(), p))
        .collect();
    let link_locs: HashSet<&str> = plan.links.iter().map(|l| l.location.as_str()).collect();
    let mut report = LinkReport::default();

    // 1. Remove what is no longer planned.
    let mut removals: Vec<String> = Vec::new();
    match &old {
        Some(s) => {
            for loc in s.packages.keys() {
                if !planned.contains_key(loc.as_str()) && !link_locs.contains(loc.as_str()) {
                    removals.push(loc.clone());
                }
            }
            for l in &s.links {
                if !plan.links.contains(l) {
                    removals.push(l.location.clone());
                }
            }
        }
        None => {
            // Unknown tree (first install, or after a crash, or npm's): anything at the top of
            // node_modules that the plan does not name goes.
            let wanted_top: HashSet<String> = plan
                .packages
                .iter()
                .map(|p| p.location.as_str())
                .chain(plan.links.iter().map(|l| l.location.as_str()))
                .filter_map(|loc| {
                    let rest = loc.strip_prefix("node_modules/")?;
                    let mut parts = rest.splitn(3, '/');
                    let first = parts.next()?;
                    Some(if first.starts_with('@') {
                        format!("{first}/{}", parts.next().unwrap_or(""))
                    } else if first == ".hoard" {
                        ".hoard".to_string()
                    } else {
                        first.to_string()
                    })
                })
                .collect();
            for e in std::fs::read_dir(&nm)
                .map_err(|e| HoardError::io("reading", &nm, e))?
                .flatten()
            {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with('.') && name != ".hoard" {
                    continue;
                }
                if name.starts_with('@') {
                    if let Ok(rd) = std::fs::read_dir(e.path()) {
                        for s in rd.flatten() {
                            let full = format!("{name}/{}", s.file_name().to_string_lossy());
                            if !wanted_top.contains(&full) {
                                removals.push(format!("node_modules/{full}"));
                            }
                        }
                    }
                } else if !wanted_top.contains(&name) {
                    removals.push(format!("node_modules/{name}"));
                }
            }
        }
    }
    // Deepest first, so nested removals happen before their parents move.
    removals.sort_by_key(|l| std::cmp::Reverse(l.matches('/').count()));
    for loc in &removals {
        to_trash(&project.join(loc))?;
        report.removed += 1;
    }

    // 2. Which packages change?
    let mut changed: Vec<&PlannedPackage> = Vec::new();
    for p in &plan.packages {
        let same = old
            .as_ref()
            .and_then(|s| s.packages.get(&p.location))
            .is_some_and(|k| *k == p.key)
            && project.join(&p.location).join("package.json").exists();
        if same {
            report.unchanged += 1;
        } else {
            changed.push(p);
        }
    }
    let total = changed.len() as u64;
    let done = AtomicU64::new(0);
    let files = AtomicU64::new(0);

    // 3. Probe the link method on the first file.
    let mut link_state: Option<LinkState> = None;
    if let Some(first) = changed
        .iter()
        .find(|p| !p.stored.files.is_empty() && !p.copy)
    {
        let f = &first.stored.files[0];
        let probe_dir = staging.join("probe");
        mkdir_all(&probe_dir)?;
        let dst = probe_dir.join("f");
        link_state = Some(LinkState::probe(
            requested,
            remembered,
            &store.content_path(f),
            &dst,
            f.executable,
        )?);
        let _ = std::fs::remove_dir_all(&probe_dir);
    }
    let link_state = match link_state {
        Some(s) => s,
        None => {
            // Nothing to link (or only copies): report what would have been used.
            let m = match requested {
                Requested::Exactly(m) => m,
                Requested::Auto => remembered.unwrap_or(Method::Hardlink),
            };
            LinkState::probe_free(m)
        }
    };
    report.method = Some(link_state.method);

    // 4. Materialize by depth, parents before nested packages.
    let mut by_depth: BTreeMap<usize, Vec<&PlannedPackage>> = BTreeMap::new();
    for p in changed {
        by_depth
            .entry(p.location.matches("node_modules/").count())
            .or_default()
            .push(p);
    }
    let counter = AtomicU64::new(0);
    for (_, level) in by_depth {
        level.par_iter().try_for_each(|p| -> Result<()> {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let stage = staging.join(n.to_string());
            let linked = build_package(&stage, p, store, &link_state)?;
            files.fetch_add(linked, Ordering::Relaxed);
            let dest = project.join(&p.location);
            if std::fs::symlink_metadata(&dest).is_ok() {
                // Keep nested packages: move the old node_modules into the new folder.
                let nested = dest.join("node_modules");
                if nested.is_dir() {
                    rename(&nested, &stage.join("node_modules"))?;
                }
                to_trash(&dest)?;
            } else if let Some(parent) = dest.parent() {
                mkdir_all(parent)?;
            }
            rename(&stage, &dest)?;
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            if d.is_multiple_of(16) || d == total {
                on_progress(d, total);
            }
            Ok(())
        })?;
    }
    report.added = total;
    report.files = files.load(Ordering::Relaxed);

    // 5. Symlinks (workspaces, file: dependencies, isolated layout).
    let old_links: HashSet<&PlannedLink> = old
        .as_ref()
        .map(|s| s.links.iter().collect())
        .unwrap_or_default();
    for l in &plan.links {
        let dest = project.join(&l.location);
        if old_links.contains(l) && std::fs::symlink_metadata(&dest).is_ok() {
            continue;
        }
        if std::fs::symlink_metadata(&dest).is_ok() {
            to_trash(&dest)?;
        }
        if let Some(parent) = dest.parent() {
            mkdir_all(parent)?;
        }
        std::os::unix::fs::symlink(&l.target, &dest)
            .map_err(|e| HoardError::io("creating symlink", &dest, e))?;
    }

    // 6. Bins: rebuilt when anything changed.
    let bins_same = old.as_ref().is_some_and(|s| s.bin_links == plan.bin_links)
        && total == 0
        && removals.is_empty();
    if !bins_same {
        let mut dirs: HashSet<String> = plan.bin_links.iter().map(|(d, _, _)| d.clone()).collect();
        if let Some(s) = &old {
            dirs.extend(s.bin_links.iter().map(|(d, _, _)| d.clone()));
        }
        for d in &dirs {
            let bin = project.join(d).join(".bin");
            let _ = std::fs::remove_dir_all(&bin);
        }
        for (dir, name, text) in &plan.bin_links {
            let bin = project.join(dir).join(".bin");
            mkdir_all(&bin)?;
            let dest = bin.join(name);
            let _ = std::fs::remove_file(&dest);
            std::os::unix::fs::symlink(text, &dest)
                .map_err(|e| HoardError::io("creating bin link", &dest, e))?;
        }
    }

    let _ = std::fs::remove_dir_all(&staging);
    if trash.exists() {
        // Deleting can take a while for big trees; the install does not wait for it.
        let t = trash.clone();
        std::thread::spawn(move || {
            let _ = std::fs::remove_dir_all(t);
        });
    }
    report.warnings = link_state
        .warnings
        .lock()
        .map(|w| w.clone())
        .unwrap_or_default();
    debug!(
        added = report.added,
        removed = report.removed,
        unchanged = report.unchanged,
        "linked"
    );
    Ok(report)
}

/// Write the state file (last step of an install).
pub fn write_state(
    project: &Path,
    plan: &Plan,
    inputs: &str,
    method: Option<Method>,
) -> Result<()> {
    let nm = project.join("node_modules");
    let state = State {
        version: 1,
        layout: plan.layout.clone(),
        inputs: inputs.to_string(),
        link_method: method.map(|m| m.as_str().to_string()).unwrap_or_default(),
        packages: plan
            .packages
            .iter()
            .map(|p| (p.location.clone(), p.key.clone()))
            .collect(),
        links: plan.links.clone(),
        bin_links: plan.bin_links.clone(),
        node_modules_mtime: 0,
    };
    let path = state_path(project);
    let tmp = nm.join(format!("{STATE_FILE}.tmp"));
    let mut state = state;
    // Writing the temp file changes node_modules' mtime; the rename does again. Record the
    // mtime after the rename by writing twice (the second rename keeps the directory entry set
    // the same, so the mtime recorded is what the next install will see).
    let bytes = serde_json::to_vec(&state).map_err(|e| HoardError::Internal(e.to_string()))?;
    std::fs::write(&tmp, &bytes).map_err(|e| HoardError::io("writing", &tmp, e))?;
    rename(&tmp, &path)?;
    state.node_modules_mtime = dir_mtime(&nm);
    let bytes = serde_json::to_vec(&state).map_err(|e| HoardError::Internal(e.to_string()))?;
    // Overwrite in place: no directory entry changes, so node_modules' mtime stays.
    std::fs::write(&path, &bytes).map_err(|e| HoardError::io("writing", &path, e))?;
    Ok(())
}

/// Create one package's directory tree under `stage` and link (or copy) its files.
fn build_package(
    stage: &Path,
    p: &PlannedPackage,
    store: &Store,
    links: &LinkState,
) -> Result<u64> {
    mkdir_all(stage)?;
    let mut made: HashSet<&str> = HashSet::new();
    let bin_targets: HashSet<&str> = p.bins.values().map(String::as_str).collect();
    let mut n = 0;
    for f in &p.stored.files {
        if let Some((dir, _)) = f.path.rsplit_once('/')
            && !made.contains(dir)
        {
            mkdir_all(&stage.join(dir))?;
            // Record every ancestor as made.
            let mut d = dir;
            loop {
                made.insert(d);
                match d.rsplit_once('/') {
                    Some((parent, _)) => d = parent,
                    None => break,
                }
            }
        }
        let dst = stage.join(&f.path);
        // Bin targets must be executable: use the store's executable variant of the file.
        let needs_exec = !f.executable && bin_targets.contains(f.path.as_str());
        let src = if needs_exec {
            store.ensure_executable_variant(f)?
        } else {
            store.content_path(f)
        };
        let exec = f.executable || needs_exec;
        if p.copy {
            method::link_with(Method::Copy, &src, &dst, exec)
                .map_err(|e| HoardError::io("copying a store file to", &dst, e))?;
        } else {
            links.link(&src, &dst, exec)?;
        }
        n += 1;
    }
    Ok(n)
}
