//! Speculative metadata prefetch: resolution places packages one at a time, but the metadata it
//! will need can be fetched long before. Once a packument arrives, the version most likely to be
//! picked for the range that asked for it (npm-pick-manifest's choice, without a lockfile's
//! preferences) is looked at, and the packuments of its dependencies, optional dependencies and
//! required peers are requested at once, and so on down. Fetches share the registry's in-flight
//! map and caches with the resolver, so the walk only ever runs ahead of it; a speculation that
//! turns out wrong costs one packument, never a different tree. A packument already in memory
//! since before the install began is not walked through (its dependencies came with it), so a
//! warm resolve pays nothing.
//!
//! Must not: decide anything about the tree, or outlive the install that started it (each walk
//! stops once its `Prefetch` handle is dropped).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::pick::pick;
use crate::registry::config::NpmConfig;
use crate::registry::packument::Manifest;
use crate::registry::{Network, Registry};
use crate::spec::{Spec, validate_name};

struct Walk {
    registry: Arc<Registry>,
    cfg: NpmConfig,
    network: Network,
    node: Option<semver::Version>,
    cooldown: Option<crate::cooldown::Cooldown>,
    /// (name, range, reached through a peer edge) already walked.
    seen: Mutex<HashSet<(String, String, bool)>>,
    /// Names reached through a dependency edge (not a peer's): a peer edge to one of these
    /// fetches the packument but does not walk on (see `step`).
    depended: Mutex<rustc_hash::FxHashSet<Box<str>>>,
    /// Names found in memory since before the walk began (asked once each, not per edge).
    hot: Mutex<rustc_hash::FxHashSet<Box<str>>>,
    stopped: AtomicBool,
    started: std::time::Instant,
}

/// One install's prefetch walk; dropping it stops the walk.
pub struct Prefetch(Arc<Walk>);

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Relaxed);
    }
}

impl Prefetch {
    pub fn new(
        registry: &Arc<Registry>,
        cfg: &NpmConfig,
        network: Network,
        node: Option<semver::Version>,
        cooldown: Option<crate::cooldown::Cooldown>,
    ) -> Prefetch {
        Prefetch(Arc::new(Walk {
            registry: registry.clone(),
            cfg: cfg.clone(),
            network,
            node,
            cooldown,
            seen: Mutex::new(HashSet::new()),
            depended: Mutex::default(),
            hot: Mutex::default(),
            stopped: AtomicBool::new(false),
            started: std::time::Instant::now(),
        }))
    }

    /// Start walking from `name@range` (a dependency as a package.json spells it).
    pub fn start(&self, name: &str, range: &str) {
        if let Ok(spec) = Spec::parse(name, range) {
            self.start_spec(name, &spec);
        }
    }

    /// Start walking from a parsed dependency spec (only registry specs are walked).
    pub fn start_spec(&self, name: &str, spec: &Spec) {
        Walk::spawn(&self.0, name, spec, false);
    }

    /// Start walking from every registry dependency of `m` (dev ones included: for the root and
    /// workspaces).
    pub fn start_all(&self, m: &Manifest) {
        for (name, range) in m
            .dependencies
            .iter()
            .chain(&m.optional_dependencies)
            .chain(&m.dev_dependencies)
        {
            self.start(name, range);
        }
    }
}

impl Walk {
    /// Walk from `name@spec` in a task of its own, unless it was walked already; `peer`: the
    /// edge is a required peer's.
    fn spawn(me: &Arc<Walk>, name: &str, spec: &Spec, peer: bool) {
        let (real, spec) = match spec {
            Spec::Alias { name, spec } => (name.as_str(), &**spec),
            s => (name, s),
        };
        let (Spec::Range(raw) | Spec::Tag(raw)) = spec else {
            return;
        };
        // Checked before a task is made for it (and before the name is validated): a warm
        // resolve asks this for every edge.
        if me.stopped.load(Ordering::Relaxed) || me.already_hot(real) {
            return;
        }
        if validate_name(real).is_err() {
            return;
        }
        if !peer && let Ok(mut depended) = me.depended.lock() {
            depended.insert(real.into());
        }
        let key = (real.to_string(), raw.clone(), peer);
        let fresh = me
            .seen
            .lock()
            .is_ok_and(|mut seen| seen.insert(key.clone()));
        if !fresh {
            return;
        }
        let me = me.clone();
        let spec = spec.clone();
        tokio::spawn(async move { me.step(&key.0, &spec, peer).await });
    }

    /// Metadata in memory since before this install came with its dependencies' (an earlier
    /// install fetched them): walking on would only repeat the resolver's picks. (Metadata
    /// that arrived during this install is walked: another range of the same package may pick
    /// another version, with other dependencies.)
    fn already_hot(&self, name: &str) -> bool {
        if self.hot.lock().is_ok_and(|hot| hot.contains(name)) {
            return true;
        }
        let hot = (self.registry).hot_before(name, &self.cfg, self.network, self.started);
        if hot && let Ok(mut known) = self.hot.lock() {
            known.insert(name.into());
        }
        hot
    }

    /// Walk on from `name@spec` (`spawn` has checked it was not in memory already; it cannot
    /// have become so since, as an entry loaded later is not loaded before the walk began).
    ///
    /// Through a peer edge (`peer`), only the packument is fetched when the name is also
    /// reached through a dependency edge: the peer is then most often met by that copy (npm
    /// places a peer only where none that fits is in reach), and the version a peer's range
    /// picks alone is often another major (a plugin's `vue: ">=2"` picking Vue 3), whose
    /// dependencies the tree never uses: 123 packuments (7.6 MB) of medium-size-app's cold
    /// install were such. The dependency edge walks on with its own range.
    async fn step(self: &Arc<Self>, name: &str, spec: &Spec, peer: bool) {
        let Ok(p) = self.registry.packument(name, &self.cfg, self.network).await else {
            return;
        };
        if self.stopped.load(Ordering::Relaxed)
            || (peer && self.depended.lock().is_ok_and(|d| d.contains(name)))
        {
            return;
        }
        let before = self.cooldown.as_ref().and_then(|c| c.cutoff_for(name));
        let Some(m) = pick(&p, spec, self.node.as_ref(), None, before) else {
            return;
        };
        let optional_peer = |n: &str| m.peer_dependencies_meta.get(n).is_some_and(|x| x.optional);
        let required_peers = m
            .peer_dependencies
            .iter()
            .filter(|(n, _)| !optional_peer(n))
            .map(|e| (e, true));
        let edges = m.dependencies.iter().chain(&m.optional_dependencies);
        for ((dep, r), peer) in edges.map(|e| (e, false)).chain(required_peers) {
            if !m.bundles(dep)
                && let Ok(s) = Spec::parse(dep, r)
            {
                Walk::spawn(self, dep, &s, peer);
            }
        }
    }
}
