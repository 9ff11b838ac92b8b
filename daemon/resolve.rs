//! Resolution: from a root manifest (plus workspaces) to the tree npm would build. The placement
//! itself is arborist's, in `crate::ideal`; this module supplies it with manifests
//! (npm-pick-manifest's choice, `crate::pick`; metadata is fetched ahead by `crate::prefetch`),
//! reads npm's settings (`legacy-peer-deps`, `strict-peer-deps`, `force`, `prefer-dedupe`,
//! `install-strategy`), and turns the result into a `Tree` with notes (deprecations, engines,
//! platforms, peer conflicts npm overrides, optional dependencies left out).
//!
//! Must not: touch the project's files. (Tarball dependencies are imported into the store to read
//! their package.json; registry tarballs are downloaded by the caller's hook as versions are
//! picked.)

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use tracing::instrument;

use crate::error::Unresolved;
use crate::error::{HoardError, Result};
use crate::ideal::build::{BuildError, Builder, Source};
use crate::ideal::graph::LoadError;
use crate::ideal::graph::{Graph, Id, Kind};
use crate::ideal::place::Options;
use crate::pick::{engine_ok, no_version_message, pick, platform_ok, too_young_message};
use crate::registry::compact::Packument;
use crate::registry::config::NpmConfig;
use crate::registry::packument::Manifest;
use crate::registry::{Network, Registry};
use crate::spec::{Spec, validate_name};
use crate::tree::{Edge, Node, NodeKind, Tree, edges_of, split_location};

/// A warning collected during resolution: (code, package, message).
pub type Note = (String, String, String);

/// Called as soon as a package's version is picked.
pub type PickedHook<'a> = Box<dyn FnMut(&Node) + Send + Sync + 'a>;

pub struct Resolver<'a> {
    pub registry: &'a Arc<Registry>,
    pub store: &'a Arc<crate::store::Store>,
    /// The project root (for `file:` tarballs).
    pub project: &'a Path,
    pub cfg: &'a NpmConfig,
    pub network: Network,
    /// The Node.js version engines are checked against (None: all engines fit).
    pub node_version: Option<semver::Version>,
    /// Versions a previous lockfile had for each name: preferred when they still satisfy.
    pub preferred: HashMap<String, Vec<String>>,
    /// Names to re-resolve freshly (ignore `preferred`); `None` in the set means all.
    pub fresh: Option<Vec<String>>,
    pub notes: Vec<Note>,
    /// Called with (resolved so far, known so far).
    pub on_progress: Option<Box<dyn FnMut(u64, u64) + Send + Sync + 'a>>,
    /// Called as soon as a package's version is picked (to start its download early).
    pub on_picked: Option<PickedHook<'a>>,
    /// Readies git dependencies with build scripts before they are packed (when the project's
    /// policy allows).
    pub git_prepare: Option<Arc<dyn crate::git::Prepare>>,
    /// Bundled dependencies' manifests, kept per bundler's tarball across resolves.
    pub bundles: &'a crate::bundled::BundleCache,
}

/// Manifests for the ideal-tree builder: npm-pick-manifest's choice from the registry (with the
/// previous lockfile's versions preferred), tarballs imported to read their package.json, and
/// local directories' package.json.
struct RegistrySource<'r> {
    registry: &'r Arc<Registry>,
    store: &'r Arc<crate::store::Store>,
    project: &'r Path,
    cfg: &'r NpmConfig,
    network: Network,
    node_version: Option<semver::Version>,
    preferred: &'r HashMap<String, Vec<String>>,
    fresh: &'r Option<Vec<String>>,
    prefetch: crate::prefetch::Prefetch,
    cooldown: Option<crate::cooldown::Cooldown>,
    git_prepare: Option<Arc<dyn crate::git::Prepare>>,
    allow_git: AllowGit,
    /// The packument each name had the first time this resolve asked (a resolve sees one
    /// document per name, and later picks skip the registry's lookup by URL).
    seen: std::sync::Mutex<rustc_hash::FxHashMap<String, Arc<Packument>>>,
}

/// npm's `allow-git`: which git dependencies may be fetched.
enum AllowGit {
    All,
    None,
    /// Only these (name, spec) pairs: the project's and its workspaces' own dependencies.
    Root(std::collections::HashSet<(String, String)>),
}

impl AllowGit {
    fn of(
        cfg: &NpmConfig,
        root: &Manifest,
        workspaces: &[(String, Arc<Manifest>)],
    ) -> Result<AllowGit> {
        Ok(match cfg.get("allow-git").unwrap_or("all") {
            "all" => AllowGit::All,
            "none" => AllowGit::None,
            "root" => AllowGit::Root(
                std::iter::once(root)
                    .chain(workspaces.iter().map(|(_, m)| &**m))
                    .flat_map(|m| {
                        [
                            &m.dependencies,
                            &m.dev_dependencies,
                            &m.optional_dependencies,
                            &m.peer_dependencies,
                        ]
                    })
                    .flat_map(|deps| deps.iter().map(|(n, s)| (n.clone(), s.clone())))
                    .collect(),
            ),
            other => {
                return Err(HoardError::InvalidInput(format!(
                    "allow-git=`{other}` in .npmrc or the environment: npm takes `all`, `none` or \
                     `root`"
                )));
            }
        })
    }

    /// Why the git dependency `name` (`spec`) may not be fetched, if it may not.
    fn refusal(&self, name: &str, spec: &crate::git::GitSpec) -> Option<String> {
        let what = format!("`{name}` is a git dependency (`{}`)", spec.raw);
        match self {
            AllowGit::All => None,
            AllowGit::None => Some(format!(
                "{what} and allow-git=none forbids fetching any; set allow-git=all (or root) to \
                 install it"
            )),
            AllowGit::Root(own) => {
                (!own.contains(&(name.to_string(), spec.raw.clone()))).then(|| {
                    format!(
                        "{what} of a dependency, and allow-git=root allows only the project's own; \
                         set allow-git=all to install it"
                    )
                })
            }
        }
    }
}

impl RegistrySource<'_> {
    /// `real_name`'s packument: the one this resolve already has, else the registry's.
    async fn packument(&self, real_name: &str) -> std::result::Result<Arc<Packument>, LoadError> {
        let known = self
            .seen
            .lock()
            .ok()
            .and_then(|m| m.get(real_name).cloned());
        if let Some(p) = known {
            return Ok(p);
        }
        validate_name(real_name)
            .map_err(|e| LoadError::new("INVALID_PACKAGE_NAME", e.to_string()))?;
        if tracing::enabled!(tracing::Level::DEBUG)
            && !self.registry.is_hot(real_name, self.cfg, self.network)
        {
            tracing::debug!(name = real_name, "placement waits for metadata");
        }
        // Boxed: the fetch's future is big, and unboxed it would be part of (and moved with)
        // every node the resolver makes, though most names are already in memory.
        let p = Box::pin(self.registry.packument(real_name, self.cfg, self.network))
            .await
            .map_err(|e| LoadError::new(e.reason(), e.to_string()))?;
        if let Ok(mut m) = self.seen.lock() {
            m.insert(real_name.to_string(), p.clone());
        }
        Ok(p)
    }

    async fn pick_from_registry(
        &self,
        real_name: &str,
        inner: &Spec,
    ) -> std::result::Result<Arc<Manifest>, LoadError> {
        let packument = self.packument(real_name).await?;
        let fresh = match self.fresh {
            None => false,
            Some(list) => list.is_empty() || list.iter().any(|n| n == real_name),
        };
        let preferred = if fresh {
            None
        } else {
            self.preferred.get(real_name).map(Vec::as_slice)
        };
        let before = self.cooldown.as_ref().and_then(|c| c.cutoff_for(real_name));
        if let Some(m) = pick(
            &packument,
            inner,
            self.node_version.as_ref(),
            preferred,
            before,
        ) {
            return Ok(m);
        }
        let young = (self.cooldown.as_ref())
            .filter(|_| before.is_some())
            .and_then(|c| too_young_message(&packument, real_name, inner, c));
        Err(match young {
            Some(m) => LoadError::new("RELEASE_AGE", m),
            None => LoadError::new(
                "NO_MATCHING_VERSION",
                no_version_message(&packument, real_name, inner),
            ),
        })
    }

    /// Fetch a tarball dependency (URL or local file) into the store and read its package.json.
    /// The manifest's `dist` records what the lockfile will say: the URL (or `file:<path>`
    /// relative to the project) and the integrity computed at import.
    async fn tarball_manifest(&self, dep: &str, spec: &Spec) -> Result<Arc<Manifest>> {
        let (url, resolved) = match spec {
            Spec::Tarball(u) => (u.clone(), u.clone()),
            Spec::LocalTarball(p) => {
                let rel = p.trim_start_matches("file:");
                let abs = self.project.join(rel);
                (format!("file:{}", abs.display()), format!("file:{rel}"))
            }
            _ => return Err(HoardError::Internal("not a tarball spec".into())),
        };
        let t = crate::store::TarballRef {
            name: dep.to_string(),
            version: resolved.clone(),
            auth: self.cfg.auth_for(&url),
            url,
            integrity: crate::store::integrity::Sri::default(),
            remote: None,
        };
        let stored = self
            .store
            .ensure(&t, &self.registry.http, self.network == Network::Offline)
            .await?;
        let json = self.stored_package_json(dep, &resolved, &stored)?;
        let mut m = checked_manifest(dep, &resolved, &json)?;
        m.dist = crate::registry::packument::Dist {
            tarball: resolved,
            integrity: Some(stored.integrity.clone()),
            ..Default::default()
        };
        Ok(Arc::new(m))
    }

    /// A git dependency: resolved to a commit and packed by the store's git cache, which also
    /// keeps its package.json (the fetch stage imports the tarball). Its `dist.tarball` is what
    /// npm locks (`git+ssh://…#<sha>`), with no integrity (npm locks none for git); installs
    /// find the packed tarball by that URL.
    async fn git_manifest(&self, dep: &str, spec: &crate::git::GitSpec) -> Result<Arc<Manifest>> {
        let offline = self.network == Network::Offline;
        let prepared = (self.store.git)
            .prepare_blocking(spec, offline, self.git_prepare.clone())
            .await?;
        let mut m = checked_manifest(dep, &prepared.resolved, &prepared.manifest)?;
        m.dist = crate::registry::packument::Dist {
            tarball: prepared.resolved,
            ..Default::default()
        };
        Ok(Arc::new(m))
    }

    /// The package.json of a package imported from `resolved`.
    fn stored_package_json(
        &self,
        dep: &str,
        resolved: &str,
        stored: &crate::store::StoredPackage,
    ) -> Result<serde_json::Value> {
        let pj = stored
            .files
            .iter()
            .find(|f| f.path == "package.json")
            .ok_or_else(|| {
                HoardError::Resolve(format!(
                    "the tarball `{resolved}` of `{dep}` has no package.json"
                ))
            })?;
        let path = self.store.content_path(pj);
        let bytes = tokio::task::block_in_place(|| std::fs::read(&path))
            .map_err(|e| HoardError::io("reading", &path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            HoardError::Resolve(format!(
                "package.json in the tarball `{resolved}` of `{dep}`: {e}"
            ))
        })
    }
}

/// The manifest of a package from `resolved` (a tarball or a git commit), checked to have a
/// valid name and a version.
fn checked_manifest(dep: &str, resolved: &str, json: &serde_json::Value) -> Result<Manifest> {
    let m = Manifest::from_json(dep, json);
    if m.version.is_empty() {
        return Err(HoardError::Resolve(format!(
            "package.json in the tarball `{resolved}` of `{dep}` has no version"
        )));
    }
    validate_name(&m.name)?;
    Ok(m)
}

impl Source for RegistrySource<'_> {
    async fn manifest(
        &self,
        name: &str,
        spec: &Spec,
    ) -> std::result::Result<Arc<Manifest>, LoadError> {
        match spec {
            Spec::Alias { name: real, spec } => self.pick_from_registry(real, spec).await,
            Spec::Range(_) | Spec::Tag(_) => self.pick_from_registry(name, spec).await,
            // The rare kinds are boxed, so that their big futures are not part of every pick's.
            Spec::Tarball(_) | Spec::LocalTarball(_) => Box::pin(self.tarball_manifest(name, spec))
                .await
                .map_err(|e| LoadError::new(e.reason(), e.to_string())),
            Spec::Git(g) => match self.allow_git.refusal(name, g) {
                Some(why) => Err(LoadError::new("GIT_NOT_ALLOWED", why)),
                None => Box::pin(self.git_manifest(name, g))
                    .await
                    .map_err(|e| LoadError::new(e.reason(), e.to_string())),
            },
            Spec::Workspace(_) => Err(LoadError::new(
                "NO_MATCHING_WORKSPACE",
                format!(
                    "`{name}` is a workspace: dependency but no workspace member has that name"
                ),
            )),
            Spec::Directory(_) | Spec::Link(_) => Err(LoadError::new(
                "RESOLUTION_FAILED",
                "a directory is not a registry package",
            )),
        }
    }

    fn local_manifest(&self, dir: &str) -> std::result::Result<Arc<Manifest>, String> {
        let path = self.project.join(dir).join("package.json");
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = v.get("name").and_then(|n| n.as_str()).unwrap_or_default();
        Ok(Arc::new(Manifest::from_json(name, &v)))
    }

    fn prefetch(&self, name: &str, spec: &Spec) {
        self.prefetch.start_spec(name, spec);
    }
}

/// Now, in ms since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn cfg_flag(cfg: &NpmConfig, key: &str) -> bool {
    cfg.get(key).is_some_and(|v| v == "true" || v.is_empty())
}

impl<'a> Resolver<'a> {
    fn note(&mut self, code: &str, pkg: String, msg: String) {
        self.notes.push((code.to_string(), pkg, msg));
    }

    /// Resolve the full tree for `root` (the project's package.json, `root_json` its raw JSON
    /// for `overrides`) and its workspaces, exactly as npm places it.
    #[instrument(skip_all)]
    pub async fn resolve(
        &mut self,
        root: Arc<Manifest>,
        root_json: &serde_json::Value,
        workspaces: Vec<(String, Arc<Manifest>)>,
    ) -> Result<Tree> {
        for (_, m) in &workspaces {
            validate_name(&m.name)?;
        }
        let strategy = crate::npm_settings::install_strategy(self.cfg);
        let opts = Options {
            prefer_dedupe: cfg_flag(self.cfg, "prefer-dedupe"),
            strict_peer_deps: cfg_flag(self.cfg, "strict-peer-deps"),
            force: cfg_flag(self.cfg, "force"),
            nested: strategy == "nested",
            shallow: strategy == "shallow",
        };
        let legacy = cfg_flag(self.cfg, "legacy-peer-deps");
        let cooldown = crate::cooldown::Cooldown::from_config(self.cfg, now_ms())
            .map_err(HoardError::InvalidInput)?;
        let (g, warnings, failures) = {
            let src = RegistrySource {
                registry: self.registry,
                store: self.store,
                project: self.project,
                cfg: self.cfg,
                network: self.network,
                node_version: self.node_version.clone(),
                preferred: &self.preferred,
                fresh: &self.fresh,
                prefetch: crate::prefetch::Prefetch::new(
                    self.registry,
                    self.cfg,
                    self.network,
                    self.node_version.clone(),
                    cooldown.clone(),
                ),
                cooldown,
                seen: Default::default(),
                git_prepare: self.git_prepare.clone(),
                allow_git: AllowGit::of(self.cfg, &root, &workspaces)?,
            };
            src.prefetch.start_all(&root);
            for (_, m) in &workspaces {
                src.prefetch.start_all(m);
            }
            let mut b = Builder::new(&src, root, root_json, workspaces, opts, legacy);
            let mut on_picked = self.on_picked.take();
            let mut on_progress = self.on_progress.take();
            let mut placed = 0u64;
            b.on_placed = Some(Box::new(move |g: &Graph, id: Id| {
                placed += 1;
                if let Some(cb) = on_progress.as_mut() {
                    cb(placed, placed + 1);
                }
                if let Some(cb) = on_picked.as_mut()
                    && let Some(node) = tree_node(g, id)
                {
                    cb(&node);
                }
            }));
            let built = b.build().await;
            b.on_placed = None;
            match built {
                Ok(()) => {}
                Err(BuildError::Eresolve(msg)) => {
                    return Err(HoardError::Resolve(format!(
                        "ERESOLVE unable to resolve dependency tree\n\n{msg}"
                    )));
                }
            }
            let warnings = std::mem::take(&mut b.warnings);
            let failures = std::mem::take(&mut b.load_failures);
            (b.g, warnings, failures)
        };
        for w in warnings {
            self.note(
                "peer-conflict",
                String::new(),
                format!("ERESOLVE overriding peer dependency\n{w}"),
            );
        }
        let (mut tree, origin) = to_tree(&g);
        self.add_bundles(&mut tree).await?;
        let done = self.finish(&g, tree, &origin, &failures);
        // Freeing a big graph takes milliseconds: not on the way to the answer.
        crate::memory::free_later(g);
        done
    }

    /// Packages with `bundleDependencies` ship them in their own tarball: read that tarball's
    /// node_modules and put what it holds into the tree as `inBundle` nodes, as npm does when it
    /// writes a complete lockfile.
    async fn add_bundles(&mut self, tree: &mut Tree) -> Result<()> {
        let bundlers: Vec<usize> = (1..tree.nodes.len())
            .filter(|&i| {
                let n = &tree.nodes[i];
                !n.in_bundle
                    && matches!(n.kind, NodeKind::Package { .. })
                    && n.manifest.bundles_any()
            })
            .collect();
        // Each node by location, for the bundled packages' parents (built only when needed).
        let mut at: rustc_hash::FxHashMap<String, usize> = if bundlers.is_empty() {
            Default::default()
        } else {
            (tree.nodes.iter().enumerate())
                .map(|(i, n)| (n.location.clone(), i))
                .collect()
        };
        for b in bundlers {
            let Some(t) = bundle_tarball(&tree.nodes[b], self.cfg, self.project) else {
                continue;
            };
            let stored = self
                .store
                .ensure(&t, &self.registry.http, self.network == Network::Offline)
                .await?;
            let bundled = tokio::task::block_in_place(|| self.bundles.of(self.store, &stored))?;
            let base = tree.nodes[b].location.clone();
            for one in bundled.iter() {
                let location = format!("{base}/{}", one.dir);
                let (parent_loc, name) = split_location(&location);
                let Some(&parent) = at.get(parent_loc) else {
                    continue;
                };
                let name = name.to_string();
                let m = &one.manifest;
                let idx = tree.nodes.len();
                let real_name = if m.name.is_empty() {
                    name.clone()
                } else {
                    m.name.clone()
                };
                let mut node = Node::new(
                    name.clone(),
                    location.clone(),
                    Some(parent),
                    NodeKind::Package {
                        real_name,
                        version: m.version.clone(),
                        resolved: String::new(),
                        integrity: None,
                    },
                    m.clone(),
                    platform_ok(m),
                );
                // Every dependency, bundled ones included (they resolve inside the bundle).
                node.edges = edges_of(m, true, false);
                node.in_bundle = true;
                tree.nodes.push(node);
                tree.nodes[parent].children.insert(name, idx);
                at.insert(location, idx);
            }
            // The bundler's bundled edges and the bundle's own edges now find the copies inside.
            let all_edges = edges_of(&tree.nodes[b].manifest, true, false);
            tree.nodes[b].edges = all_edges;
        }
        for i in 0..tree.nodes.len() {
            let inside = tree.nodes[i].in_bundle || tree.nodes[i].manifest.bundles_any();
            if !inside || i == 0 {
                continue;
            }
            let names: Vec<String> = tree.nodes[i].edges.iter().map(|e| e.name.clone()).collect();
            for (k, name) in names.iter().enumerate() {
                let to = tree.resolve_from(i, name);
                tree.nodes[i].edges[k].to = to;
            }
        }
        Ok(())
    }

    /// Turn the built graph into the logical tree; load failures are fatal unless only optional
    /// edges lead to them (then they and what only they needed are left out, as npm does).
    fn finish(
        &mut self,
        g: &Graph,
        mut tree: Tree,
        origin: &[Id],
        failures: &[Id],
    ) -> Result<Tree> {
        tree.compute_flags();
        let mut drop: Vec<usize> = Vec::new();
        let mut unresolved: Vec<Unresolved> = Vec::new();
        for (i, n) in tree.nodes.iter().enumerate() {
            let Some(&gid) = origin.get(i) else { continue };
            if !failures.contains(&gid) {
                continue;
            }
            let Kind::Failed { error } = &g.nodes[gid].kind else {
                continue;
            };
            if !n.optional {
                let into: Vec<(&Node, &Edge)> = (tree.nodes.iter())
                    .flat_map(|x| x.edges.iter().map(move |e| (x, e)))
                    .filter(|(_, e)| e.to == Some(i))
                    .collect();
                unresolved.push(Unresolved {
                    package: n.name.clone(),
                    range: into
                        .first()
                        .map(|(_, e)| e.spec.clone())
                        .unwrap_or_default(),
                    reason: error.reason,
                    message: error.message.clone(),
                    wanted_by: into.iter().map(|(x, _)| x.pkg_id()).collect(),
                });
                continue;
            }
            self.note(
                "optional-skipped",
                n.name.clone(),
                format!("optional dependency {} skipped: {error}", n.name),
            );
            drop.push(i);
        }
        if !unresolved.is_empty() {
            return Err(HoardError::Unresolvable(unresolved));
        }
        if !drop.is_empty() {
            tree = without(tree, &drop);
            tree.compute_flags();
        }
        let strict_engines = cfg_flag(self.cfg, "engine-strict");
        // Most packages share a handful of `engines.node` ranges: each is parsed and checked
        // once per resolve.
        let mut engine_answers: rustc_hash::FxHashMap<&str, bool> = Default::default();
        for n in tree.nodes.iter().skip(1) {
            let NodeKind::Package {
                real_name, version, ..
            } = &n.kind
            else {
                continue;
            };
            let id = || format!("{real_name}@{version}");
            if !n.platform_ok && !n.optional {
                let id = id();
                self.note(
                    "platform",
                    id.clone(),
                    format!(
                        "{id} does not support this platform (os {:?}, cpu {:?}); it will not be \
                         installed",
                        n.manifest.os, n.manifest.cpu
                    ),
                );
            }
            if let Some(d) = &n.manifest.deprecated {
                let id = id();
                self.note("deprecated", id.clone(), format!("{id}: {d}"));
            }
            let wanted = n.manifest.engines.get("node").map(String::as_str);
            let fits = match wanted {
                None => true,
                Some(w) => *engine_answers
                    .entry(w)
                    .or_insert_with(|| engine_ok(Some(w), self.node_version.as_ref())),
            };
            if !fits {
                let id = id();
                let wants = format!(
                    "{id} wants node {} (current: {})",
                    wanted.unwrap_or("?"),
                    (self.node_version.as_ref())
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                );
                if strict_engines && !n.optional {
                    return Err(HoardError::Resolve(format!(
                        "{wants}, and engine-strict=true refuses it (npm's EBADENGINE); use a \
                         Node.js it supports or unset engine-strict"
                    )));
                }
                self.note("engine", id, wants);
            }
        }
        Ok(tree)
    }
}

/// One placed graph node as a (parentless) tree node, for the download hook.
fn tree_node(g: &Graph, id: Id) -> Option<Node> {
    let n = &g.nodes[id];
    let Kind::Package {
        real_name,
        version,
        resolved,
        integrity,
    } = &n.kind
    else {
        return None;
    };
    Some(Node::new(
        n.name.clone(),
        g.location(id),
        None,
        NodeKind::Package {
            real_name: real_name.clone(),
            version: version.clone(),
            resolved: resolved.clone(),
            integrity: integrity.clone(),
        },
        n.manifest.clone(),
        platform_ok(&n.manifest),
    ))
}

/// The project's tree in the graph (root, workspace folders, everything reachable from them
/// by edges) as a `Tree`, in breadth-first order of locations, with the graph node of each.
fn to_tree(g: &Graph) -> (Tree, Vec<Id>) {
    const NONE: usize = usize::MAX;
    // Reachable by edges from the root and the workspace folders. Each kept node's edge
    // targets are found once (finding one walks up the tree) and used again for its edges;
    // `pos[id]` is the node's place in `keep`.
    let mut keep: Vec<Id> = vec![0];
    let mut pos: Vec<usize> = vec![NONE; g.nodes.len()];
    pos[0] = 0;
    let mut targets: Vec<Option<Id>> = Vec::with_capacity(g.nodes.len() * 4);
    let mut first_target: Vec<usize> = Vec::with_capacity(g.nodes.len());
    let mut i = 0;
    while i < keep.len() {
        let n = keep[i];
        i += 1;
        first_target.push(targets.len());
        for e in g.edge_refs(n) {
            let t = g.to(e);
            targets.push(t);
            if let Some(t) = t
                && pos[t] == NONE
                && g.in_tree(t)
            {
                pos[t] = keep.len();
                keep.push(t);
            }
        }
        if let Kind::Link { target } = &g.nodes[n].kind {
            let members: Vec<Id> = (0..g.nodes.len())
                .filter(|&w| {
                    matches!(&g.nodes[w].kind, Kind::Workspace { dir } if dir == target)
                        && g.in_tree(w)
                })
                .collect();
            for w in members {
                if pos[w] == NONE {
                    pos[w] = keep.len();
                    keep.push(w);
                }
            }
        }
    }
    first_target.push(targets.len());
    // Parents first: order by location depth then location.
    let mut order: Vec<(usize, String, Id)> = keep
        .iter()
        .map(|&id| {
            let loc = g.location(id);
            (loc.matches("node_modules/").count(), loc, id)
        })
        .collect();
    order.sort_unstable();
    let mut tree = Tree::default();
    tree.nodes.reserve(order.len());
    let mut origin: Vec<Id> = Vec::with_capacity(order.len());
    // `index[id]`: the node's index in the tree.
    let mut index: Vec<usize> = vec![NONE; g.nodes.len()];
    for (_, location, id) in order {
        let n = &g.nodes[id];
        let kind = match &n.kind {
            Kind::Root => NodeKind::Root,
            Kind::Workspace { .. } => NodeKind::Workspace,
            Kind::Link { target } => NodeKind::Link {
                target: target.clone(),
            },
            Kind::Package {
                real_name,
                version,
                resolved,
                integrity,
            } => NodeKind::Package {
                real_name: real_name.clone(),
                version: version.clone(),
                resolved: resolved.clone(),
                integrity: integrity.clone(),
            },
            Kind::Failed { .. } => NodeKind::Package {
                real_name: n.name.clone(),
                version: String::new(),
                resolved: String::new(),
                integrity: None,
            },
            Kind::Virtual { .. } => continue,
        };
        let parent = match &n.kind {
            Kind::Root => None,
            Kind::Workspace { .. } => Some(0),
            // Parents come first, so a parent in the tree has its index by now.
            _ => n.parent.map(|p| index[p]).filter(|&p| p != NONE),
        };
        let idx = tree.nodes.len();
        index[id] = idx;
        origin.push(id);
        tree.nodes.push(Node::new(
            n.name.clone(),
            location,
            parent,
            kind,
            n.manifest.clone(),
            platform_ok(&n.manifest),
        ));
        if let Some(p) = parent
            && !matches!(n.kind, Kind::Workspace { .. })
        {
            tree.nodes[p].children.insert(n.name.clone(), idx);
        }
    }
    for (tid, &gid) in origin.iter().enumerate() {
        let k = pos[gid];
        let found = &targets[first_target[k]..first_target[k + 1]];
        let node = &g.nodes[gid];
        let edges = (node.edges.iter().zip(found))
            .map(|(edge, t)| Edge {
                name: edge.name.clone(),
                spec: edge.spec.clone(),
                kind: edge.kind,
                to: t.map(|t| index[t]).filter(|&t| t != NONE),
            })
            .collect();
        tree.nodes[tid].edges = edges;
    }
    (tree, origin)
}

/// `tree` without the nodes in `drop` and what only they led to.
fn without(mut tree: Tree, drop: &[usize]) -> Tree {
    for n in tree.nodes.iter_mut() {
        for e in n.edges.iter_mut() {
            if e.to.is_some_and(|t| drop.contains(&t)) {
                e.to = None;
            }
        }
    }
    for &d in drop {
        if let Some(p) = tree.nodes[d].parent {
            let name = tree.nodes[d].name.clone();
            tree.nodes[p].children.remove(&name);
        }
    }
    let gone = tree.unreachable();
    tree.retain(|i| !gone.contains(&i) && !drop.contains(&i))
}

/// The tarball of a package that bundles dependencies (registry and URL tarballs; local `file:`
/// tarballs are left out).
fn bundle_tarball(n: &Node, cfg: &NpmConfig, project: &Path) -> Option<crate::store::TarballRef> {
    match &n.kind {
        NodeKind::Package { resolved, .. }
            if !resolved.is_empty() && !resolved.starts_with("file:") =>
        {
            n.tarball_ref(cfg, project)
        }
        _ => None,
    }
}
