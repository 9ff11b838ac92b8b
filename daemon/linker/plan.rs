//! The layout planners: from a resolved tree and the store's file lists to a `Plan` of package
//! folders, symlinks and bin candidates, in npm's hoisted layout (every node at its lockfile
//! location) or the isolated one (each package once under `node_modules/.hoard/<name>@<version>`,
//! its dependencies as symlinks beside it).
//!
//! Must not: touch the filesystem (the linker materializes the plan).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::{BinCandidate, Layout, Plan, PlannedLink, PlannedPackage};
use crate::store::StoredPackage;
use crate::tree::{NodeKind, Tree};

/// A package folder at `location`, keyed by `name@version integrity` (and ` copy` for copies).
pub(super) fn planned(
    n: &crate::tree::Node,
    p: &Arc<StoredPackage>,
    copy: bool,
    location: String,
    bins: BTreeMap<String, String>,
) -> PlannedPackage {
    let key = format!(
        "{} {}{}",
        n.pkg_id(),
        p.integrity,
        if copy { " copy" } else { "" }
    );
    PlannedPackage {
        location,
        key,
        stored: p.clone(),
        copy,
        bins,
    }
}

/// Offer `bins` (name → target inside the package at `location`) for `<dir>/.bin`. A bin named
/// like its package (`pkg_name`, scope dropped) wins a clash; see `super::compute_bin_links`.
pub(super) fn add_bins(
    plan: &mut Plan,
    dir: &str,
    location: &str,
    pkg_name: &str,
    bins: BTreeMap<String, String>,
) {
    let own = pkg_name.rsplit('/').next();
    for (name, target) in bins {
        plan.bin_candidates.push(BinCandidate {
            dir: dir.to_string(),
            own: own == Some(name.as_str()),
            name,
            location: location.to_string(),
            target,
        });
    }
}

/// npm's layout: every node at its lockfile location.
pub fn hoisted(
    tree: &Tree,
    stored: &HashMap<usize, Arc<StoredPackage>>,
    copies: &HashSet<usize>,
) -> Plan {
    let mut plan = Plan {
        layout: Layout::Hoisted,
        ..Default::default()
    };
    for (i, n) in tree.nodes.iter().enumerate() {
        match &n.kind {
            NodeKind::Package { .. } => {
                let Some(p) = stored.get(&i) else { continue };
                let bins = super::bins::with_directories(&n.name, &n.manifest, &p.files);
                let parent_loc = n
                    .parent
                    .map(|pi| tree.nodes[pi].location.clone())
                    .unwrap_or_default();
                let dir = if parent_loc.is_empty() {
                    "node_modules".to_string()
                } else {
                    format!("{parent_loc}/node_modules")
                };
                add_bins(&mut plan, &dir, &n.location, n.real_name(), bins.clone());
                let copy = copies.contains(&i);
                plan.packages
                    .push(planned(n, p, copy, n.location.clone(), bins));
            }
            NodeKind::Link { target } => {
                let parent = n.location.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
                plan.links.push(PlannedLink {
                    location: n.location.clone(),
                    target: super::relative(parent, target),
                });
            }
            _ => {}
        }
    }
    plan
}

/// Where the dependencies of a package kept at `dir` (`…/<id>/node_modules/<name>`) are
/// visible from: the folder holding it, `…/<id>/node_modules`.
pub(super) fn deps_home(dir: &str, name: &str) -> String {
    let depth = name.matches('/').count() + 1;
    let mut parts: Vec<&str> = dir.split('/').collect();
    parts.truncate(parts.len() - depth);
    parts.join("/")
}

pub fn isolated_dir(n: &crate::tree::Node) -> String {
    format!(
        "node_modules/.hoard/{}@{}/node_modules/{}",
        n.real_name().replace('/', "+"),
        n.version(),
        n.real_name()
    )
}

/// pnpm-style layout: each package once under `.hoard`, its dependencies as symlinks beside it;
/// every package also in the hidden folder, and those matching `public` (pnpm's
/// `public-hoist-pattern`) at the top (`hoist`).
pub fn isolated(
    tree: &Tree,
    stored: &HashMap<usize, Arc<StoredPackage>>,
    copies: &HashSet<usize>,
    public: &[String],
) -> Plan {
    let mut plan = Plan {
        layout: Layout::Isolated,
        ..Default::default()
    };
    let mut seen_dirs: HashSet<String> = HashSet::new();
    let mut seen_links: HashSet<String> = HashSet::new();
    let target_dir = |to: usize| -> Option<String> {
        let t = &tree.nodes[to];
        match &t.kind {
            NodeKind::Package { .. } if stored.contains_key(&to) => Some(isolated_dir(t)),
            NodeKind::Link { target } => Some(target.clone()),
            _ => None,
        }
    };
    for (i, n) in tree.nodes.iter().enumerate() {
        // Where this node's dependencies must be visible from.
        let deps_home = match &n.kind {
            NodeKind::Root => "node_modules".to_string(),
            NodeKind::Workspace => format!("{}/node_modules", n.location),
            NodeKind::Package { .. } => {
                let Some(p) = stored.get(&i) else { continue };
                let dir = isolated_dir(n);
                if seen_dirs.insert(dir.clone()) {
                    let bins = super::bins::with_directories(n.real_name(), &n.manifest, &p.files);
                    let copy = copies.contains(&i);
                    plan.packages.push(planned(n, p, copy, dir.clone(), bins));
                }
                deps_home(&dir, n.real_name())
            }
            NodeKind::Link { .. } => continue,
        };
        for e in &n.edges {
            let Some(to) = e.to else { continue };
            let Some(target) = target_dir(to) else {
                continue;
            };
            let loc = format!("{deps_home}/{}", e.name);
            if target == loc || !seen_links.insert(loc.clone()) {
                continue;
            }
            let parent = loc.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            plan.links.push(PlannedLink {
                location: loc.clone(),
                target: super::relative(parent, &target),
            });
            let t = &tree.nodes[to];
            if let Some(p) = stored.get(&to) {
                let bins = super::bins::with_directories(&e.name, &t.manifest, &p.files);
                add_bins(&mut plan, &deps_home, &target, &e.name, bins);
            }
        }
    }
    let direct: HashSet<&str> = tree.nodes[0]
        .edges
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    let home = |i: usize| {
        stored
            .contains_key(&i)
            .then(|| isolated_dir(&tree.nodes[i]))
    };
    let hoisted = super::hoist::links(tree, stored, &home, &direct, public);
    plan.links.extend(hoisted);
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::registry::config::NpmConfig;
    use crate::store::index::FileEntry;

    /// A tree from a lockfile (as an install reads one), every package "stored" with one file.
    fn tree_and_store(lock: serde_json::Value) -> (Tree, HashMap<usize, Arc<StoredPackage>>) {
        let root = Arc::new(crate::registry::packument::Manifest::from_json(
            "app",
            &lock["packages"][""],
        ));
        let tree =
            crate::lockfile::tree_from_lock(&lock, root, &HashMap::new(), &NpmConfig::default())
                .unwrap();
        let stored = (0..tree.nodes.len())
            .filter(|&i| matches!(tree.nodes[i].kind, NodeKind::Package { .. }))
            .map(|i| {
                let p = StoredPackage {
                    id: i as i64,
                    integrity: format!("sha512-{i}"),
                    files: vec![FileEntry {
                        path: "index.js".into(),
                        hash: [i as u8; 32],
                        size: 1,
                        executable: false,
                    }],
                    created: Vec::new(),
                    imported_at: None,
                    bytes_downloaded: 0,
                };
                (i, Arc::new(p))
            })
            .collect();
        (tree, stored)
    }

    fn pkg(version: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut v = json!({"version": version, "resolved": format!("http://r/x-{version}.tgz"),
                           "integrity": "sha512-x"});
        for (k, x) in extra.as_object().into_iter().flatten() {
            v[k] = x.clone();
        }
        v
    }

    /// a@1 needs b@^2 (nested under it), tool needs b@^1 (hoisted); tool and @s/x both offer a
    /// `tool` bin; @s/x is a direct dependency too.
    fn fixture() -> serde_json::Value {
        json!({"name": "app", "lockfileVersion": 3, "requires": true, "packages": {
            "": {"name": "app", "dependencies": {"a": "^1", "tool": "1", "@s/x": "1"}},
            "node_modules/@s/x": pkg("1.0.0", json!({"bin": {"tool": "x.js", "xcli": "bin/x"}})),
            "node_modules/a": pkg("1.0.0", json!({"dependencies": {"b": "^2"}})),
            "node_modules/a/node_modules/b": pkg("2.0.0", json!({})),
            "node_modules/b": pkg("1.0.0", json!({})),
            "node_modules/tool": pkg("1.0.0", json!({"bin": {"tool": "cli.js"},
                                                    "dependencies": {"b": "^1"}})),
        }})
    }

    fn sorted(mut v: Vec<(String, String)>) -> Vec<(String, String)> {
        v.sort();
        v
    }

    #[test]
    fn hoisted_puts_every_package_at_its_lockfile_location() {
        let (tree, stored) = tree_and_store(fixture());
        let mut plan = hoisted(&tree, &stored, &HashSet::new());
        crate::linker::compute_bin_links(&mut plan);
        let mut locs: Vec<&str> = plan.packages.iter().map(|p| p.location.as_str()).collect();
        locs.sort();
        assert_eq!(
            locs,
            [
                "node_modules/@s/x",
                "node_modules/a",
                "node_modules/a/node_modules/b",
                "node_modules/b",
                "node_modules/tool",
            ]
        );
        assert!(plan.links.is_empty());
        // The package named like the bin wins the clash; other bins are linked too.
        let bins: Vec<(String, String)> = plan
            .bin_links
            .iter()
            .map(|(d, n, t)| (format!("{d}/.bin/{n}"), t.clone()))
            .collect();
        assert_eq!(
            sorted(bins),
            [
                ("node_modules/.bin/tool".into(), "../tool/cli.js".into()),
                ("node_modules/.bin/xcli".into(), "../@s/x/bin/x".into()),
            ]
        );
        let a = plan
            .packages
            .iter()
            .find(|p| p.location == "node_modules/a");
        assert_eq!(a.map(|p| p.key.as_str()), Some("a@1.0.0 sha512-2"));
    }

    #[test]
    fn isolated_keeps_each_package_once_and_links_only_declared_dependencies() {
        let (tree, stored) = tree_and_store(fixture());
        let copies: HashSet<usize> = (0..tree.nodes.len())
            .filter(|&i| tree.nodes[i].location == "node_modules/tool")
            .collect();
        let mut plan = isolated(&tree, &stored, &copies, &[]);
        crate::linker::compute_bin_links(&mut plan);
        let mut locs: Vec<&str> = plan.packages.iter().map(|p| p.location.as_str()).collect();
        locs.sort();
        assert_eq!(
            locs,
            [
                "node_modules/.hoard/@s+x@1.0.0/node_modules/@s/x",
                "node_modules/.hoard/a@1.0.0/node_modules/a",
                "node_modules/.hoard/b@1.0.0/node_modules/b",
                "node_modules/.hoard/b@2.0.0/node_modules/b",
                "node_modules/.hoard/tool@1.0.0/node_modules/tool",
            ]
        );
        let links: Vec<(String, String)> = plan
            .links
            .iter()
            .map(|l| (l.location.clone(), l.target.clone()))
            .collect();
        assert_eq!(
            sorted(links),
            [
                (
                    "node_modules/.hoard/a@1.0.0/node_modules/b".into(),
                    "../../b@2.0.0/node_modules/b".into()
                ),
                // Hidden hoisting: the shallowest b, where every package under .hoard looks.
                (
                    "node_modules/.hoard/node_modules/b".into(),
                    "../b@1.0.0/node_modules/b".into()
                ),
                (
                    "node_modules/.hoard/tool@1.0.0/node_modules/b".into(),
                    "../../b@1.0.0/node_modules/b".into()
                ),
                (
                    "node_modules/@s/x".into(),
                    "../.hoard/@s+x@1.0.0/node_modules/@s/x".into()
                ),
                (
                    "node_modules/a".into(),
                    ".hoard/a@1.0.0/node_modules/a".into()
                ),
                (
                    "node_modules/tool".into(),
                    ".hoard/tool@1.0.0/node_modules/tool".into()
                ),
            ],
            "b is not a dependency of the project: no node_modules/b"
        );
        let tool = plan.packages.iter().find(|p| p.location.ends_with("/tool"));
        assert!(tool.is_some_and(|p| p.copy && p.key.ends_with(" copy")));
        let bins: Vec<(String, String)> = plan
            .bin_links
            .iter()
            .map(|(d, n, t)| (format!("{d}/.bin/{n}"), t.clone()))
            .collect();
        assert_eq!(
            sorted(bins),
            [
                (
                    "node_modules/.bin/tool".into(),
                    "../.hoard/tool@1.0.0/node_modules/tool/cli.js".into()
                ),
                (
                    "node_modules/.bin/xcli".into(),
                    "../.hoard/@s+x@1.0.0/node_modules/@s/x/bin/x".into()
                ),
            ]
        );
    }

    #[test]
    fn the_lockfile_round_trips_through_the_tree() {
        let lock = fixture();
        let (tree, _) = tree_and_store(lock.clone());
        let pkg_json =
            json!({"name": "app", "dependencies": {"a": "^1", "tool": "1", "@s/x": "1"}});
        let out: serde_json::Value =
            serde_json::from_slice(&crate::lockfile::render_tree(&tree, &pkg_json, false, None))
                .unwrap();
        assert_eq!(out["packages"], lock["packages"], "{out:#}");
        assert!(crate::lockfile::mismatches(&lock, &tree).is_empty());
        // A dependency the lock does not have is a mismatch.
        let mut edited = lock.clone();
        edited["packages"][""]["dependencies"]["new"] = json!("1");
        let root = Arc::new(crate::registry::packument::Manifest::from_json(
            "app",
            &edited["packages"][""],
        ));
        let t2 =
            crate::lockfile::tree_from_lock(&edited, root, &HashMap::new(), &NpmConfig::default())
                .unwrap();
        assert!(!crate::lockfile::mismatches(&edited, &t2).is_empty());
    }
}
