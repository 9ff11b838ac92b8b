//! node_modules: the install plan (which package goes where, which symlinks and bins exist) and
//! its materialization from the store. This file holds the plan's types; the rooms are:
//! `plan` (the planners: where each package goes, hoisted or isolated), `global` (the global
//! layout's planner: shared slots in the store, symlinks in the project), `scc` (dependency
//! cycles, for the global planner), `materialize` (writes the project's part of a plan into
//! node_modules, incrementally), `slots` (builds the global layout's slots in the store),
//! `state` (what an install leaves behind to prove what node_modules holds), `method` (reflink,
//! hardlink or copy, probed once), `checked` (the store files one run already found whole),
//! `bins` (bin names and targets as npm normalizes them).
//!
//! The plan is separate from how it is materialized, so layouts differ only in planning.
//! Must not: download, resolve, or run package code.

pub mod bins;
pub mod case;
pub mod checked;
pub mod global;
pub mod hoist;
pub mod materialize;
pub mod method;
pub mod plan;
pub mod relink;
pub mod scc;
pub mod schedule;
pub mod slots;
pub mod state;
pub mod swap;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{HoardError, Result};
use crate::store::StoredPackage;
use method::Method;

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

/// A package's folder in the virtual store, with the symlinks beside it.
#[derive(Debug, Clone)]
pub struct Slot {
    /// The slot's folder name under the virtual folder, e.g. `@s+x@1.0.0-3fa9…`.
    pub dir: String,
    /// The package, its `location` relative to the slot folder (`node_modules/<name>`).
    pub package: PlannedPackage,
    /// Symlinks relative to the slot folder (`node_modules/<dep>` → `../../<slot>/…`).
    pub links: Vec<PlannedLink>,
    /// The slot was in the store when planned: nothing to build (its links and bins are not
    /// worked out).
    pub present: bool,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub packages: Vec<PlannedPackage>,
    pub links: Vec<PlannedLink>,
    pub bin_candidates: Vec<BinCandidate>,
    /// `.bin` entries to create: (bin dir, name, symlink text).
    pub bin_links: Vec<(String, String, String)>,
    pub layout: Layout,
    /// The global layout's slots (shared package folders in the store); empty otherwise.
    pub slots: Vec<Slot>,
}

/// How node_modules is laid out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// npm's tree: every package at its lockfile location.
    #[default]
    Hoisted,
    /// pnpm-style: each package once under `node_modules/.hoard`, dependencies as symlinks.
    Isolated,
    /// Each package once in the store (`<store>/v1/virtual/<slot>`), shared by every project;
    /// node_modules holds symlinks.
    Global,
}

impl Plan {
    /// Every package the plan installs: package folders in the project and slots in the store.
    pub fn package_count(&self) -> usize {
        self.packages.len() + self.slots.len()
    }
}

impl Layout {
    /// A layout by the name `as_str` gives it.
    pub fn parse(s: &str) -> Option<Layout> {
        [Layout::Hoisted, Layout::Isolated, Layout::Global]
            .into_iter()
            .find(|l| l.as_str() == s.trim())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Hoisted => "hoisted",
            Layout::Isolated => "isolated",
            Layout::Global => "global",
        }
    }
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
        // A package in the store is linked by its absolute path.
        let text = if c.location.starts_with('/') {
            format!("{}/{}", c.location, c.target)
        } else {
            relative(
                &format!("{}/.bin", c.dir),
                &format!("{}/{}", c.location, c.target),
            )
        };
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
    /// Packages whose store files were missing and were downloaded again.
    pub repaired: u64,
    /// Tarball bytes downloaded to repair them.
    pub repaired_bytes: u64,
}

impl LinkReport {
    /// Add the counts of another part of the same install (the global layout's slots).
    pub fn absorb(&mut self, other: LinkReport) {
        self.added += other.added;
        self.removed += other.removed;
        self.unchanged += other.unchanged;
        self.files += other.files;
        self.repaired += other.repaired;
        self.repaired_bytes += other.repaired_bytes;
        self.warnings.extend(other.warnings);
        self.method = self.method.or(other.method);
    }
}

fn mkdir_all(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| HoardError::io("creating directory", p, e))
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    crate::platform::rename(from, to).map_err(|e| {
        HoardError::io(
            "renaming",
            from,
            std::io::Error::new(e.kind(), format!("to `{}`: {e}", to.display())),
        )
    })
}
