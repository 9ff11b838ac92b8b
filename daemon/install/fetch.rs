//! Stage 4 of an install: every package the tree installs is made present in the store (from the
//! index, or one coalesced download and import each, 128 at once), counting what was downloaded
//! for this install and what was reused. An optional package that fails is left out with a
//! warning; any other failure fails the install.
//!
//! Must not: touch node_modules.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures_util::StreamExt;
use hoard_proto::v1;
use tracing::{Instrument, info_span};

use super::context::Run;
use super::inputs::Inputs;
use crate::error::{HoardError, Result};
use crate::registry::Network;
use crate::store::{Pins, StoredPackage};
use crate::tree::{NodeKind, Tree};

/// The tree's packages in the store, by node index.
pub(super) struct Fetched {
    pub stored: HashMap<usize, Arc<StoredPackage>>,
    /// Distinct packages downloaded for this install (possibly by the early download at pick
    /// time), and found in the store; a package placed at two locations counts once.
    pub downloaded: u64,
    pub reused: u64,
    /// Tarball bytes downloaded for this install.
    pub bytes: u64,
    /// Metadata bytes downloaded while this install ran.
    pub metadata_bytes: u64,
    pub millis: u64,
    /// The packages' rows, pinned until the install ends (prune keeps them).
    pub pins: Pins,
    /// Tarballs the team's remote cache served.
    pub from_remote: u64,
    /// Store rows already counted in `downloaded` or `reused`.
    counted: HashSet<i64>,
}

/// The dependency types left out of node_modules (npm's `omit`).
#[derive(Debug, Clone, Copy, Default)]
struct Omit {
    dev: bool,
    optional: bool,
    peer: bool,
}

/// Nodes this install puts into node_modules: registry and tarball packages that fit this
/// platform, are not inside a bundle, are reachable, are not dev when dev is omitted, and are
/// not needed only by an optional package that does not fit (npm's inert optional sets).
fn to_install(tree: &Tree, omit: Omit) -> Result<Vec<usize>> {
    let unreachable = tree.unreachable();
    let inert = crate::optional_set::inert(tree);
    let install: Vec<usize> = (1..tree.nodes.len())
        .filter(|&i| {
            let n = &tree.nodes[i];
            let left_out = n.in_bundle
                || !n.platform_ok
                || (omit.dev && n.dev)
                || (omit.optional && n.optional)
                || (omit.dev && omit.optional && n.dev_optional)
                || (omit.peer && n.peer)
                || unreachable.contains(&i)
                || inert.contains(&i);
            matches!(n.kind, NodeKind::Package { .. }) && !left_out
        })
        .collect();
    for &i in &install {
        if let NodeKind::Package { resolved, .. } = &tree.nodes[i].kind
            && resolved.is_empty()
        {
            return Err(HoardError::Lockfile(format!(
                "{} has no tarball URL",
                tree.nodes[i].pkg_id()
            )));
        }
    }
    Ok(install)
}

/// Fetch every package `tree` installs into the store (cancellable).
pub(super) async fn fetch(run: &Run<'_>, inputs: &Inputs, tree: &Tree) -> Result<Fetched> {
    let started = Instant::now();
    let omit = Omit {
        dev: run.req.omit_dev,
        optional: run.settings.omit_optional,
        peer: run.settings.omit_peer,
    };
    let install = to_install(tree, omit)?;
    let total = install.len() as u64;
    let mut out = Fetched {
        stored: HashMap::new(),
        downloaded: 0,
        reused: 0,
        bytes: 0,
        metadata_bytes: 0,
        millis: 0,
        pins: run.installer.store.pins(),
        from_remote: 0,
        counted: HashSet::new(),
    };
    // Packages the store holds in memory are counted at once; the rest go through `ensure`.
    let install: Vec<usize> = install
        .into_iter()
        .filter(|&i| match hot(run, tree, i) {
            Some(p) => {
                out.count(run, i, p);
                false
            }
            None => true,
        })
        .collect();
    let mut waiting = Waiting::new(&install);
    let offline = inputs.network == Network::Offline;
    let span = info_span!("fetch", packages = total);
    // Built only for a tree with git packages (the policy and the client's environment).
    let git_prepare = install
        .iter()
        .any(|&i| is_git(tree, i))
        .then(|| super::git_prepare::for_install(&run.installer.store.layout.root, inputs));
    let no_git = inputs.cfg.get("allow-git") == Some("none");
    let jobs = install.into_iter().map(|i| {
        let t = tree.nodes[i].tarball_ref(&inputs.cfg, &inputs.dir);
        let store = run.installer.store.clone();
        let http = run.installer.registry.http.clone();
        let git = is_git(tree, i);
        let prepare = git.then(|| git_prepare.clone()).flatten();
        let refused = (git && no_git).then(|| {
            HoardError::InvalidInput(format!(
                "{} is a git dependency in package-lock.json and allow-git=none forbids fetching \
                 it; set allow-git=all (or root) to install it",
                tree.nodes[i].pkg_id()
            ))
        });
        async move {
            let r = match (t, refused) {
                (_, Some(e)) => Err(e),
                (Some(t), None) => store.ensure_prepared(&t, &http, offline, prepare).await,
                (None, None) => Err(HoardError::Internal("not a registry package".into())),
            };
            (i, r)
        }
        .instrument(span.clone())
    });
    let mut stream = futures_util::stream::iter(jobs).buffer_unordered(128);
    let mut done = out.stored.len() as u64;
    loop {
        let next = tokio::select! {
            n = stream.next() => n,
            _ = run.cancel.cancelled() => return Err(HoardError::Cancelled("while fetching".into())),
            _ = waiting.tick.tick() => {
                if let Some(msg) = waiting.message(tree) {
                    run.em.info(msg).await;
                }
                continue;
            }
        };
        let Some((i, r)) = next else { break };
        waiting.done(i);
        done += 1;
        match r {
            Ok(p) => out.count(run, i, p),
            Err(e) if tree.nodes[i].optional => {
                let id = tree.nodes[i].pkg_id();
                let msg = format!("optional {id} skipped: {e}");
                // Left out of `stored`: the plan skips it.
                run.em.warn("optional-skipped", &id, msg).await;
            }
            Err(e) => return Err(e),
        }
        if done.is_multiple_of(8) || done == total {
            let id = Some(tree.nodes[i].pkg_id());
            (run.em)
                .progress(v1::Phase::Fetch, done, total, out.bytes, false, id)
                .await;
        }
    }
    (run.em)
        .progress(v1::Phase::Fetch, done, total, out.bytes, true, None)
        .await;
    // Metadata fetched by concurrent installs may be counted here too.
    out.metadata_bytes = (run.installer.registry.bytes_downloaded)
        .load(Ordering::Relaxed)
        .saturating_sub(run.metadata_before);
    out.millis = started.elapsed().as_millis() as u64;
    if let Ok(Some(remote)) = inputs.cfg.remote_cache() {
        out.from_remote = remote.hits.load(Ordering::Relaxed);
        for p in remote.take_problems() {
            run.em.warn("remote-cache", "", p).await;
        }
    }
    Ok(out)
}

/// Says what the fetch waits for when nothing has arrived for a while.
struct Waiting {
    pending: std::collections::BTreeSet<usize>,
    last: Instant,
    tick: tokio::time::Interval,
}

impl Waiting {
    const QUIET: std::time::Duration = std::time::Duration::from_secs(10);

    fn new(install: &[usize]) -> Waiting {
        let start = tokio::time::Instant::now() + Self::QUIET;
        Waiting {
            pending: install.iter().copied().collect(),
            last: Instant::now(),
            tick: tokio::time::interval_at(start, Self::QUIET),
        }
    }

    fn done(&mut self, i: usize) {
        self.pending.remove(&i);
        self.last = Instant::now();
    }

    /// "still downloading …" when nothing arrived for `QUIET`.
    fn message(&self, tree: &Tree) -> Option<String> {
        if self.last.elapsed() < Self::QUIET || self.pending.is_empty() {
            return None;
        }
        let names: Vec<String> = (self.pending.iter().take(3))
            .map(|&i| tree.nodes[i].pkg_id())
            .collect();
        let more = self.pending.len().saturating_sub(names.len());
        Some(format!(
            "still downloading: nothing arrived for {} s; waiting for {}{}",
            self.last.elapsed().as_secs(),
            names.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ))
    }
}

impl Fetched {
    fn count(&mut self, run: &Run<'_>, i: usize, p: Arc<StoredPackage>) {
        if !self.counted.insert(p.id) {
            // Counted at its first location.
        } else if p.imported_at.is_some_and(|t| t >= run.started) {
            self.downloaded += 1;
            self.bytes += p.bytes_downloaded;
        } else {
            self.reused += 1;
        }
        self.pins.add(p.id);
        self.stored.insert(i, p);
    }
}

/// Node `i`'s package when the store holds it in memory (a registry or tarball package with
/// integrity; never a git dependency, which is packed by commit).
fn hot(run: &Run<'_>, tree: &Tree, i: usize) -> Option<Arc<StoredPackage>> {
    let NodeKind::Package {
        integrity: Some(integrity),
        ..
    } = &tree.nodes[i].kind
    else {
        return None;
    };
    if is_git(tree, i) {
        return None;
    }
    run.installer.store.hot_package(integrity)
}

/// Whether node `i` is a git dependency (locked by commit, packed by the git cache).
fn is_git(tree: &Tree, i: usize) -> bool {
    match &tree.nodes[i].kind {
        NodeKind::Package { resolved, .. } => crate::git::is_git_resolved(resolved),
        _ => false,
    }
}

/// Fill in integrity the lock lacked, from the store (not for git dependencies, which npm
/// locks by commit alone). Returns whether any was filled.
pub(super) fn fill_integrity(tree: &mut Tree, stored: &HashMap<usize, Arc<StoredPackage>>) -> bool {
    let mut filled = false;
    for (&i, p) in stored {
        if let NodeKind::Package {
            integrity,
            resolved,
            ..
        } = &mut tree.nodes[i].kind
            && integrity.is_none()
            && !crate::git::is_git_resolved(resolved)
        {
            *integrity = Some(p.integrity.clone());
            filled = true;
        }
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::registry::config::NpmConfig;
    use crate::registry::packument::Manifest;

    fn tree(lock: serde_json::Value) -> Tree {
        let root = Arc::new(Manifest::from_json("app", &lock["packages"][""]));
        crate::lockfile::tree_from_lock(&lock, root, &HashMap::new(), &NpmConfig::default())
            .unwrap()
    }

    fn names(t: &Tree, idx: &[usize]) -> Vec<String> {
        let mut v: Vec<String> = idx.iter().map(|&i| t.nodes[i].location.clone()).collect();
        v.sort();
        v
    }

    /// prod `a` (with a bundled `c` inside), dev `d`, and `w` only for another OS.
    fn fixture() -> serde_json::Value {
        let p = |v: &str| json!({"version": v, "resolved": format!("http://r/{v}.tgz")});
        let mut w = p("1.0.0");
        w["os"] = json!(["an-os-that-is-not-this-one"]);
        let mut c = p("3.0.0");
        c["inBundle"] = json!(true);
        json!({"name": "app", "lockfileVersion": 3, "packages": {
            "": {"dependencies": {"a": "1", "w": "1"}, "devDependencies": {"d": "2"}},
            "node_modules/a": p("1.0.0"),
            "node_modules/a/node_modules/c": c,
            "node_modules/d": p("2.0.0"),
            "node_modules/w": w,
        }})
    }

    #[test]
    fn installs_what_fits_this_platform_and_leaves_bundled_packages_to_their_tarball() {
        let t = tree(fixture());
        let all = to_install(&t, Omit::default()).unwrap();
        assert_eq!(names(&t, &all), ["node_modules/a", "node_modules/d"]);
        let prod = to_install(
            &t,
            Omit {
                dev: true,
                ..Omit::default()
            },
        )
        .unwrap();
        assert_eq!(names(&t, &prod), ["node_modules/a"]);
    }

    #[test]
    fn a_package_without_a_tarball_url_is_refused_by_name() {
        let mut t = tree(fixture());
        let a = t.nodes.iter().position(|n| n.location == "node_modules/a");
        if let NodeKind::Package { resolved, .. } = &mut t.nodes[a.unwrap()].kind {
            resolved.clear();
        }
        let err = to_install(&t, Omit::default()).unwrap_err().to_string();
        assert!(err.contains("a@1.0.0 has no tarball URL"), "{err}");
    }

    #[test]
    fn integrity_missing_from_the_lock_is_filled_from_the_store() {
        let mut t = tree(fixture());
        let a = t.nodes.iter().position(|n| n.location == "node_modules/a");
        let a = a.unwrap();
        let stored = |i: usize| {
            let p = StoredPackage {
                id: 1,
                integrity: "sha512-fromstore".into(),
                files: vec![],
                created: Vec::new(),
                imported_at: None,
                bytes_downloaded: 0,
            };
            HashMap::from([(i, Arc::new(p))])
        };
        assert!(fill_integrity(&mut t, &stored(a)));
        let NodeKind::Package { integrity, .. } = &t.nodes[a].kind else {
            panic!("a is a package")
        };
        assert_eq!(integrity.as_deref(), Some("sha512-fromstore"));
        // Already there: nothing to fill, the lock stays as it is.
        assert!(!fill_integrity(&mut t, &stored(a)));
    }
}
