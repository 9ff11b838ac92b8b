//! Materializing a `Plan`: make node_modules what the plan says, touching only what changed since
//! the state file was written. Each package folder is built in a staging folder and renamed into
//! place, so a package is always either old or new, never half. The state file is removed before
//! anything changes (the caller writes it last): after a crash the next install sees no state and
//! re-links everything.
//!
//! Must not: decide where packages go (the planners do), download, or run package code.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use rustc_hash::FxHashSet;
use tracing::{debug, instrument};

use super::method::{self, LinkState, Method, Requested};
use super::schedule;
use super::state::{State, read_state, remove_state};
use super::{LinkReport, Plan, PlannedLink, PlannedPackage, mkdir_all, rename};
use crate::error::{HoardError, Result};
use crate::platform::Dir;
use crate::store::index::FileEntry;
use crate::store::{Store, StoredPackage};

const STAGING: &str = ".hoard-staging";
const TRASH_DIR: &str = ".hoard-trash";

/// How to materialize.
#[derive(Debug, Clone, Copy)]
pub struct LinkOptions {
    /// The link method asked for (or auto).
    pub requested: Requested,
    /// The method an earlier probe found for this (store, project) filesystem pair.
    pub remembered: Option<Method>,
    /// Rebuild every package folder, trusting nothing already there.
    pub force: bool,
    /// When the install began: store files its own imports wrote are linked without the
    /// check that a store file is whole (`StoredPackage::created_since`). None: check all.
    pub fresh_since: Option<std::time::Instant>,
}

/// What materializing calls back into.
pub struct Hooks<'a> {
    /// (packages done, packages to do).
    /// Packages done, of how many, and the last one done (`name@version`).
    pub progress: &'a (dyn Fn(u64, u64, &str) + Sync),
    /// A package's store files are missing: get them back (download and import it again) and
    /// return its files. Blocking.
    pub repair: &'a (dyn Fn(&PlannedPackage) -> Result<Arc<StoredPackage>> + Sync),
    /// Whether the install was cancelled (checked before each package).
    pub cancelled: &'a (dyn Fn() -> bool + Sync),
}

/// Apply `plan` to `project`. Blocking (uses rayon for parallel linking). On an error the
/// staging folder goes; the state file stays absent, so the next install relinks.
#[instrument(skip_all, fields(project = %project.display(), packages = plan.packages.len()))]
pub fn materialize(
    project: &Path,
    plan: &Plan,
    store: &Store,
    opts: LinkOptions,
    hooks: &Hooks<'_>,
) -> Result<LinkReport> {
    let nm = project.join("node_modules");
    mkdir_all(&nm)?;
    let case_insensitive = crate::platform::case_insensitive(&nm);
    if case_insensitive {
        // Before anything changes.
        super::case::refuse_collisions(project, plan)?;
    }
    let old = if opts.force {
        None
    } else {
        read_state(project).filter(|s| s.layout == plan.layout)
    };
    // From here on the tree is in flux: no state until the end.
    remove_state(project)?;
    let bench = Workbench::open(&nm)?;
    let mut report = LinkReport::default();

    let removals = match &old {
        Some(s) => no_longer_planned(plan, s),
        None => unknown_at_top(&nm, plan)?,
    };
    for loc in &removals {
        bench.to_trash(&project.join(loc))?;
        report.removed += 1;
    }
    let changed = changed_packages(project, plan, old.as_ref(), &mut report);
    let mut link_state = probe(&bench.staging, &changed, store, opts)?;
    link_state.fresh_since = opts.fresh_since;
    link_state.case_insensitive = case_insensitive;
    if link_state.method == Method::Hardlink {
        // Only a hard link shares the store's inode, which is what the trust watches.
        link_state.trusted = store.trust_snapshot();
    }
    report.method = Some(link_state.method);
    let built = build_changed(project, &changed, store, &link_state, &bench, hooks);
    // What this run found whole (even when it failed later) is watched from now on.
    store.trust_later(link_state.checked.take());
    (report.files, report.repaired, report.repaired_bytes) = built?;
    report.added = changed.len() as u64;
    place_symlinks(project, plan, old.as_ref(), &bench)?;
    let bins_same = old.as_ref().is_some_and(|s| s.bin_links == plan.bin_links)
        && changed.is_empty()
        && removals.is_empty();
    if !bins_same {
        place_bins(project, plan, old.as_ref())?;
    }
    bench.finish();
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

/// The staging folder new package folders are built in, and the trash replaced ones go to.
struct Workbench {
    staging: PathBuf,
    trash: PathBuf,
    trash_count: AtomicU64,
}

impl Workbench {
    /// Replaced folders go to `.hoard-trash/<run>/` and are deleted in the background. The
    /// `.hoard-trash` folder itself stays, so that deletion never changes node_modules' own
    /// mtime (which the no-op check compares).
    fn open(nm: &Path) -> Result<Workbench> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let trash_root = nm.join(TRASH_DIR);
        let staging = nm.join(STAGING);
        let _ = std::fs::remove_dir_all(&staging);
        // Leftover trash of an earlier run.
        if let Ok(rd) = std::fs::read_dir(&trash_root) {
            for e in rd.flatten() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        mkdir_all(&staging)?;
        Ok(Workbench {
            staging,
            trash: trash_root.join(format!("{nanos:x}")),
            trash_count: AtomicU64::new(0),
        })
    }

    fn to_trash(&self, p: &Path) -> Result<()> {
        if std::fs::symlink_metadata(p).is_err() {
            return Ok(());
        }
        if !self.trash.exists() {
            let _ = std::fs::create_dir_all(&self.trash);
        }
        let n = self.trash_count.fetch_add(1, Ordering::Relaxed);
        rename(p, &self.trash.join(n.to_string()))
    }

    fn finish(self) {
        if self.trash.exists() {
            // Deleting can take a while for big trees; the install does not wait for it.
            let t = self.trash.clone();
            std::thread::spawn(move || {
                let _ = std::fs::remove_dir_all(t);
            });
        }
    }
}

impl Drop for Workbench {
    /// The staging folder never outlives a materialize, whether it worked or not.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

/// Locations the last install made that the plan no longer names, deepest first (nested
/// removals happen before their parents move).
fn no_longer_planned(plan: &Plan, old: &State) -> Vec<String> {
    let planned: HashSet<&str> = plan
        .packages
        .iter()
        .map(|p| p.location.as_str())
        .chain(plan.links.iter().map(|l| l.location.as_str()))
        .collect();
    let mut removals: Vec<String> = old
        .packages
        .keys()
        .filter(|loc| !planned.contains(loc.as_str()))
        .cloned()
        .collect();
    for l in &old.links {
        if !plan.links.contains(l) {
            removals.push(l.location.clone());
        }
    }
    removals.sort_by_key(|l| std::cmp::Reverse(l.matches('/').count()));
    removals
}

/// Unknown tree (first install, or after a crash, or npm's): anything at the top of
/// node_modules that the plan does not name goes.
fn unknown_at_top(nm: &Path, plan: &Plan) -> Result<Vec<String>> {
    let wanted_top: HashSet<String> = plan
        .packages
        .iter()
        .map(|p| p.location.as_str())
        .chain(plan.links.iter().map(|l| l.location.as_str()))
        .filter_map(top_name)
        .collect();
    let mut removals = Vec::new();
    for e in std::fs::read_dir(nm)
        .map_err(|e| HoardError::io("reading", nm, e))?
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
    removals.sort_by_key(|l| std::cmp::Reverse(l.matches('/').count()));
    Ok(removals)
}

/// The entry directly under node_modules that holds `loc` (`a`, `@s/a` or `.hoard`).
fn top_name(loc: &str) -> Option<String> {
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
}

/// Planned packages whose folder is not already what the plan wants; counts the rest as
/// unchanged.
fn changed_packages<'p>(
    project: &Path,
    plan: &'p Plan,
    old: Option<&State>,
    report: &mut LinkReport,
) -> Vec<&'p PlannedPackage> {
    let mut changed = Vec::new();
    for p in &plan.packages {
        let same = old
            .and_then(|s| s.packages.get(&p.location))
            .is_some_and(|k| *k == p.key)
            && project.join(&p.location).join("package.json").exists();
        if same {
            report.unchanged += 1;
        } else {
            changed.push(p);
        }
    }
    changed
}

/// Find the link method on the first file to link (or, with nothing to link, report what would
/// have been used).
fn probe(
    staging: &Path,
    changed: &[&PlannedPackage],
    store: &Store,
    opts: LinkOptions,
) -> Result<LinkState> {
    let LinkOptions {
        requested,
        remembered,
        ..
    } = opts;
    // The first file present (a missing one is repaired while building its package).
    let first = changed
        .iter()
        .filter(|p| !p.copy)
        .flat_map(|p| p.stored.files.first())
        .take(16)
        .find(|f| store.content_path(f).exists());
    let Some(f) = first else {
        let m = match requested {
            Requested::Exactly(m) => m,
            Requested::Auto => remembered.unwrap_or(Method::Hardlink),
        };
        return Ok(LinkState::probe_free(m));
    };
    let probe_dir = staging.join("probe");
    mkdir_all(&probe_dir)?;
    let state = LinkState::probe(
        requested,
        remembered,
        &store.content_path(f),
        &probe_dir.join("f"),
        f.executable,
    )?;
    let _ = std::fs::remove_dir_all(&probe_dir);
    Ok(state)
}

/// Build every changed package (in staging and renamed into place, or in place when nothing
/// was there), each after the package folder it is nested in, the biggest ready ones first
/// (`schedule`). Returns (files linked, packages repaired, bytes downloaded to repair them).
fn build_changed(
    project: &Path,
    changed: &[&PlannedPackage],
    store: &Store,
    links: &LinkState,
    bench: &Workbench,
    hooks: &Hooks<'_>,
) -> Result<(u64, u64, u64)> {
    let total = changed.len() as u64;
    let (counter, done, files) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let (repaired, repaired_bytes) = (AtomicU64::new(0), AtomicU64::new(0));
    schedule::run(changed, rayon::current_num_threads(), |p| -> Result<()> {
        failpoint_link_hold();
        if (hooks.cancelled)() {
            return Err(HoardError::Cancelled("while linking".into()));
        }
        let dest = project.join(&p.location);
        // Nothing there yet (a new node_modules): built where it goes, without a staging
        // folder and a rename. Safe because the state file is gone until the install ends:
        // a half-built folder is rebuilt by the next install.
        let in_place = make_new_dir(&dest);
        let stage = if in_place {
            dest.clone()
        } else {
            let stage = bench
                .staging
                .join(counter.fetch_add(1, Ordering::Relaxed).to_string());
            mkdir_all(&stage)?;
            stage
        };
        let built = build_or_repair(&stage, p, store, links, hooks)?;
        files.fetch_add(built.files, Ordering::Relaxed);
        if let Some(bytes) = built.repaired_bytes {
            repaired.fetch_add(1, Ordering::Relaxed);
            repaired_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        if !in_place {
            swap_in(&stage, &dest, bench)?;
        }
        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
        if d.is_multiple_of(16) || d == total {
            (hooks.progress)(d, total, p.key.split(' ').next().unwrap_or(""));
        }
        Ok(())
    })?;
    Ok((
        files.load(Ordering::Relaxed),
        repaired.load(Ordering::Relaxed),
        repaired_bytes.load(Ordering::Relaxed),
    ))
}

/// Create `dest`, and its parent when that is missing (the `node_modules` folder of a package
/// built just before: `schedule` builds a package after the one it is nested in). Whether
/// `dest` is new and empty.
fn make_new_dir(dest: &Path) -> bool {
    match std::fs::create_dir(dest) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => dest.parent().is_some_and(|p| {
            std::fs::create_dir_all(p).is_ok() && std::fs::create_dir(dest).is_ok()
        }),
        Err(_) => false,
    }
}

impl schedule::Job for &PlannedPackage {
    fn location(&self) -> &str {
        &self.location
    }
    fn weight(&self) -> usize {
        self.stored.files.len()
    }
}

/// Tests only: what the link failpoint holds each package for.
enum Hold {
    /// `HOARD_FAILPOINT_LINK_HOLD_MS`: a fixed time.
    For(std::time::Duration),
    /// `HOARD_FAILPOINT_LINK_HOLD_UNTIL`: until this file exists (at most two minutes), so a
    /// test decides when linking goes on instead of racing a timer.
    Until(std::path::PathBuf),
}

/// Tests only: `HOARD_FAILPOINT_LINK_HOLD_MS` or `HOARD_FAILPOINT_LINK_HOLD_UNTIL` hold each
/// package before it is linked, so that a cancellation (or a kill) can be sent while linking.
pub(super) fn failpoint_link_hold() {
    static HOLD: std::sync::OnceLock<Option<Hold>> = std::sync::OnceLock::new();
    let hold = HOLD.get_or_init(|| {
        if let Some(path) = std::env::var_os("HOARD_FAILPOINT_LINK_HOLD_UNTIL") {
            return Some(Hold::Until(path.into()));
        }
        std::env::var("HOARD_FAILPOINT_LINK_HOLD_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(|ms| Hold::For(std::time::Duration::from_millis(ms)))
    });
    match hold {
        None => {}
        Some(Hold::For(d)) => std::thread::sleep(*d),
        Some(Hold::Until(path)) => {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while !path.exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

/// What building one package folder did.
pub(super) struct Built {
    pub files: u64,
    /// Set when its store files were missing and it was downloaded again: the bytes it took.
    pub repaired_bytes: Option<u64>,
}

/// Build package `p` in the existing empty folder `stage`; when its store files are gone, get
/// the package back through the repair hook and build it again.
pub(super) fn build_or_repair(
    stage: &Path,
    p: &PlannedPackage,
    store: &Store,
    links: &LinkState,
    hooks: &Hooks<'_>,
) -> Result<Built> {
    match build_package(stage, &p.stored, p, store, links) {
        Ok(files) => Ok(Built {
            files,
            repaired_bytes: None,
        }),
        Err(e) if !sources_present(&p.stored.files, store) => {
            tracing::warn!(package = %p.key, error = %e, "store file missing; repairing");
            let _ = std::fs::remove_dir_all(stage);
            mkdir_all(stage)?;
            let fresh = (hooks.repair)(p)?;
            let files = build_package(stage, &fresh, p, store, links)?;
            Ok(Built {
                files,
                repaired_bytes: Some(fresh.bytes_downloaded),
            })
        }
        Err(e) => Err(e),
    }
}

/// Whether every file of a package is in the store (asked only after a build failed).
fn sources_present(files: &[FileEntry], store: &Store) -> bool {
    files.iter().all(|f| store.content_path(f).exists())
}

/// Put a built package folder at `dest`, keeping the nested packages of the folder it replaces.
fn swap_in(stage: &Path, dest: &Path, bench: &Workbench) -> Result<()> {
    if std::fs::symlink_metadata(dest).is_ok() {
        let nested = dest.join("node_modules");
        if nested.is_dir() {
            rename(&nested, &stage.join("node_modules"))?;
        }
        bench.to_trash(dest)?;
    } else if let Some(parent) = dest.parent() {
        mkdir_all(parent)?;
    }
    rename(stage, dest)
}

/// Symlinks (workspaces, `file:` dependencies, the isolated and global layouts); those already
/// in place stay. Made in parallel (the global layout has one per package).
fn place_symlinks(
    project: &Path,
    plan: &Plan,
    old: Option<&State>,
    bench: &Workbench,
) -> Result<()> {
    let old_links: HashSet<&PlannedLink> =
        old.map(|s| s.links.iter().collect()).unwrap_or_default();
    let mut todo: Vec<&PlannedLink> = Vec::new();
    let mut parents: HashSet<&str> = HashSet::new();
    for l in &plan.links {
        let dest = project.join(&l.location);
        let present = std::fs::symlink_metadata(&dest).is_ok();
        if old_links.contains(l) && present {
            continue;
        }
        if present {
            bench.to_trash(&dest)?;
        }
        parents.insert(l.location.rsplit_once('/').map_or("", |(p, _)| p));
        todo.push(l);
    }
    for p in parents {
        mkdir_all(&project.join(p))?;
    }
    todo.par_iter().try_for_each(|l| {
        let dest = project.join(&l.location);
        crate::platform::link_dir(&l.target, &dest)
            .map_err(|e| HoardError::io("creating symlink", &dest, e))
    })
}

/// Rebuild every `.bin` folder the plan or the last install names: each removed, made once,
/// and filled.
fn place_bins(project: &Path, plan: &Plan, old: Option<&State>) -> Result<()> {
    let mut dirs: HashSet<&str> = plan.bin_links.iter().map(|(d, _, _)| d.as_str()).collect();
    if let Some(s) = old {
        dirs.extend(s.bin_links.iter().map(|(d, _, _)| d.as_str()));
    }
    for d in &dirs {
        let _ = std::fs::remove_dir_all(project.join(d).join(".bin"));
    }
    let mut made: HashSet<&str> = HashSet::new();
    for (dir, name, text) in &plan.bin_links {
        let bin = project.join(dir).join(".bin");
        if made.insert(dir.as_str()) {
            mkdir_all(&bin)?;
        }
        let link = || crate::platform::link_bin(&bin, name, text);
        // Something left in a `.bin` that could not be removed as a whole: replace it.
        let made_link = link().or_else(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                let _ = std::fs::remove_file(bin.join(name));
                link()
            }
            _ => Err(e),
        });
        made_link.map_err(|e| HoardError::io("creating bin link", bin.join(name), e))?;
    }
    Ok(())
}

/// Make `rel` and its parents (those not in `made` yet) inside the open folder `dir`.
fn make_dirs<'a>(dir: &Dir, rel: &'a str, made: &mut FxHashSet<&'a str>) -> std::io::Result<()> {
    if made.contains(rel) {
        return Ok(());
    }
    if let Some((parent, _)) = rel.rsplit_once('/') {
        make_dirs(dir, parent, made)?;
    }
    if let Err(e) = dir.mkdir(rel)
        && e.kind() != std::io::ErrorKind::AlreadyExists
    {
        return Err(e);
    }
    made.insert(rel);
    Ok(())
}

/// Create one package's directory tree in the existing folder `stage` and link (or copy) the
/// files of `stored` (the package as planned, or as repaired).
fn build_package(
    stage: &Path,
    stored: &StoredPackage,
    p: &PlannedPackage,
    store: &Store,
    links: &LinkState,
) -> Result<u64> {
    let folded;
    // Which files this install's own import wrote (whole: not checked again).
    let (files, created) = if links.case_insensitive {
        folded = super::case::fold_files(&stored.files);
        (&folded[..], &[][..])
    } else {
        let created = (links.fresh_since).map_or(&[][..], |t| stored.created_since(t));
        (&stored.files[..], created)
    };
    // The folder held open: folders and links are made relative to it (no walk of the
    // project's path for each file).
    let dir = Dir::open(stage).map_err(|e| HoardError::io("opening", stage, e))?;
    let mut made: FxHashSet<&str> = FxHashSet::default();
    // A package's files come folder by folder: the folder of the file before is there already.
    let mut last_parent = "";
    let bin_targets: FxHashSet<&str> = p.bins.values().map(String::as_str).collect();
    let mut n = 0;
    for (i, f) in files.iter().enumerate() {
        if let Some((parent, _)) = f.path.rsplit_once('/')
            && parent != last_parent
        {
            make_dirs(&dir, parent, &mut made)
                .map_err(|e| HoardError::io("creating directory", stage.join(parent), e))?;
            last_parent = parent;
        }
        // Bin targets must be executable: use the store's executable variant of the file.
        let needs_exec = !f.executable && bin_targets.contains(f.path.as_str());
        if needs_exec {
            store.ensure_executable_variant(f)?;
        }
        let exec = f.executable || needs_exec;
        if !needs_exec && created.get(i) == Some(&true) {
            links.checked.remember(&f.hash, exec, f.size);
        } else if !links.trusted.contains(&(f.hash, exec)) && !links.checked.known(&f.hash, exec) {
            if !store.looks_whole(f, exec) {
                return Err(HoardError::NotFound(format!(
                    "a store file of {} ({}) is missing or damaged",
                    p.key, f.path
                )));
            }
            links.checked.remember(&f.hash, exec, f.size);
        }
        // The common case without building either path; anything else (and any error,
        // reported with its paths) goes the long way.
        let quick = !p.copy && links.method == Method::Hardlink;
        if !quick || store.hard_link_at(f, exec, &dir, &f.path).is_err() {
            let dst = stage.join(&f.path);
            let src = store.layout.content_path(&f.hash, exec);
            if p.copy {
                method::link_with(Method::Copy, &src, &dst, exec)
                    .map_err(|e| HoardError::io("copying a store file to", &dst, e))?;
            } else {
                links.link(&src, &dst, exec)?;
            }
        }
        n += 1;
    }
    Ok(n)
}
