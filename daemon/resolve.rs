//! Resolution: from a root manifest (plus workspaces) to a hoisted, deduplicated tree the way
//! npm (arborist) builds it: breadth-first by depth then path; each dependency reuses the
//! version its requirer would already see if that satisfies the spec, else the best version is
//! picked (the `latest` tag when it satisfies, else the highest satisfying, preferring
//! non-deprecated versions whose engines fit) and placed as high as it can go without
//! conflicting with a package already there or shadowing a version another package relies on.
//!
//! Peer dependencies are installed like npm 7+ (placed where the dependent's parent sees them);
//! optional dependencies that fail or do not fit the platform are skipped with a note.
//! Must not: download tarballs or touch the project's files.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::path::Path;
use std::sync::Arc;

use tracing::{debug, instrument};

use crate::error::{HoardError, Result};
use crate::registry::config::NpmConfig;
use crate::registry::packument::{Manifest, Packument};
use crate::registry::{Network, Registry};
use crate::semver_npm::{self, Range};
use crate::spec::{Spec, validate_name};
use crate::tree::{Edge, EdgeKind, Node, NodeKind, Tree};

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
    /// `overrides` from the root package.json, flattened: name → spec.
    pub overrides: HashMap<String, String>,
    pub notes: Vec<Note>,
    /// Called with (resolved so far, known so far).
    pub on_progress: Option<Box<dyn FnMut(u64, u64) + Send + Sync + 'a>>,
    /// Called as soon as a package's version is picked (to start its download early).
    pub on_picked: Option<PickedHook<'a>>,
}

/// What `os`/`cpu`/`libc` fields are compared against.
pub fn platform_ok(m: &Manifest) -> bool {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        o => o,
    };
    let cpu = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        "x86" => "ia32",
        a => a,
    };
    let libc = if cfg!(target_env = "musl") {
        "musl"
    } else {
        "glibc"
    };
    // npm-install-checks: `any`, negations (`!win32`), and positive entries.
    let fits = |list: &[String], value: &str| {
        if list.is_empty() || (list.len() == 1 && list[0] == "any") {
            return true;
        }
        let mut negated = 0;
        let mut matched = false;
        for entry in list {
            match entry.strip_prefix('!') {
                Some(test) => {
                    negated += 1;
                    if test == value {
                        return false;
                    }
                }
                None => matched |= entry == value,
            }
        }
        matched || negated == list.len()
    };
    fits(&m.os, os) && fits(&m.cpu, cpu) && (os != "linux" || fits(&m.libc, libc))
}

fn engine_ok(m: &Manifest, node: Option<&semver::Version>) -> bool {
    match (node, m.engines.get("node")) {
        (Some(v), Some(r)) => Range::parse(r)
            .map(|r| r.satisfies_including_prerelease(v))
            .unwrap_or(true),
        _ => true,
    }
}

/// npm-pick-manifest: the version of `p` that npm would pick for `spec`.
pub fn pick(
    p: &Packument,
    spec: &Spec,
    node: Option<&semver::Version>,
    preferred: Option<&[String]>,
) -> Option<Arc<Manifest>> {
    match spec {
        Spec::Tag(tag) => {
            let v = p.dist_tags.get(tag)?;
            p.versions.get(v).cloned()
        }
        Spec::Range(r) => {
            let range = Range::parse(r)?;
            if let Some(pref) = preferred {
                let mut best: Option<(&semver::Version, &String)> = None;
                for v in pref {
                    if let Some((pv, s)) =
                        p.sorted.iter().find(|(_, s)| s == v).map(|(a, b)| (a, b))
                        && range.satisfies(pv)
                        && best.is_none_or(|(b, _)| semver_npm::cmp(pv, b).is_gt())
                    {
                        best = Some((pv, s));
                    }
                }
                if let Some((_, s)) = best {
                    return p.versions.get(s).cloned();
                }
            }
            if let Some(latest) = p.dist_tags.get("latest")
                && let Some(lv) = semver_npm::parse_version(latest)
                && (range.is_any() || range.satisfies(&lv))
                && let Some(m) = p.versions.get(latest)
                && m.deprecated.is_none()
                && engine_ok(m, node)
            {
                return Some(m.clone());
            }
            // Highest satisfying, ranked: not deprecated and engine ok > engine ok > not
            // deprecated > any.
            let mut best: Option<(u8, &Arc<Manifest>)> = None;
            for (v, s) in &p.sorted {
                if !range.satisfies(v) {
                    continue;
                }
                let Some(m) = p.versions.get(s) else { continue };
                let eng = engine_ok(m, node);
                let nodep = m.deprecated.is_none();
                let rank = match (nodep && eng, eng, nodep) {
                    (true, _, _) => 3,
                    (_, true, _) => 2,
                    (_, _, true) => 1,
                    _ => 0,
                };
                // `sorted` is highest first: the first of the best rank wins.
                if best.is_none_or(|(r, _)| rank > r) {
                    best = Some((rank, m));
                    if rank == 3 {
                        break;
                    }
                }
            }
            best.map(|(_, m)| m.clone())
        }
        _ => None,
    }
}

/// Does `node` satisfy `spec` (as declared under dependency name `dep_name`)?
fn node_satisfies(node: &Node, spec: &Spec) -> bool {
    match (spec, &node.kind) {
        (Spec::Alias { name, spec }, NodeKind::Package { real_name, .. }) => {
            name == real_name && node_satisfies_version(node, spec)
        }
        (_, NodeKind::Package { real_name, .. }) if *real_name != node.name => false,
        (Spec::Tarball(url), NodeKind::Package { resolved, .. }) => url == resolved,
        (Spec::LocalTarball(p), NodeKind::Package { resolved, .. }) => {
            resolved.strip_prefix("file:") == Some(p.trim_start_matches("file:"))
        }
        (Spec::Range(_) | Spec::Tag(_), NodeKind::Package { .. }) => {
            node_satisfies_version(node, spec)
        }
        (Spec::Directory(_) | Spec::Link(_) | Spec::Workspace(_), NodeKind::Link { .. }) => true,
        // A workspace member satisfies a registry range its version matches (npm links it).
        (Spec::Range(r), NodeKind::Link { .. }) => {
            r == "*" || semver_npm::satisfies(&node.manifest.version, r)
        }
        _ => false,
    }
}

fn node_satisfies_version(node: &Node, spec: &Spec) -> bool {
    match spec {
        Spec::Range(r) => semver_npm::satisfies(node.version(), r),
        // A tag is satisfied by whatever is installed when it was picked for it (npm re-checks
        // tags only on update).
        Spec::Tag(_) => true,
        _ => false,
    }
}

/// Declared dependencies of a node as edges, sorted by name (npm's order). Dev dependencies
/// count only for the root and workspace members (`is_root`), and only with `include_dev`.
pub fn edges_of(m: &Manifest, is_root: bool, include_dev: bool) -> Vec<Edge> {
    let mut by_name: BTreeMap<String, Edge> = BTreeMap::new();
    let bundled: Vec<String> = if is_root { vec![] } else { m.bundled() };
    let mut add = |deps: &BTreeMap<String, String>, kind: EdgeKind| {
        for (name, spec) in deps {
            if bundled.contains(name) {
                continue;
            }
            by_name.insert(
                name.clone(),
                Edge {
                    name: name.clone(),
                    spec: spec.clone(),
                    kind,
                    to: None,
                },
            );
        }
    };
    // Later sections win, as in npm: peer < prod < optional; dev only at the root.
    let mut peers = BTreeMap::new();
    let mut peer_opt = BTreeMap::new();
    for (n, s) in &m.peer_dependencies {
        if m.peer_dependencies_meta.get(n).is_some_and(|x| x.optional) {
            peer_opt.insert(n.clone(), s.clone());
        } else {
            peers.insert(n.clone(), s.clone());
        }
    }
    add(&peer_opt, EdgeKind::PeerOptional);
    add(&peers, EdgeKind::Peer);
    if is_root && include_dev {
        add(&m.dev_dependencies, EdgeKind::Dev);
    }
    add(&m.dependencies, EdgeKind::Prod);
    add(&m.optional_dependencies, EdgeKind::Optional);
    by_name.into_values().collect()
}

/// Workspace member directories matched by the root's `workspaces` field (`dir/*` globs and
/// plain paths), relative to the project root, sorted.
pub fn workspace_dirs(project: &Path, root: &serde_json::Value) -> Result<Vec<String>> {
    let patterns: Vec<String> = match root.get("workspaces") {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        Some(serde_json::Value::Object(o)) => o
            .get("packages")
            .and_then(|p| p.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        _ => vec![],
    };
    let mut out = Vec::new();
    for pat in patterns {
        let pat = pat.trim_start_matches("./").trim_end_matches('/');
        if pat.contains("..") {
            return Err(HoardError::InvalidInput(format!(
                "workspace pattern `{pat}` in {}/package.json leaves the project",
                project.display()
            )));
        }
        if let Some(dir) = pat.strip_suffix("/*").or_else(|| pat.strip_suffix("/**")) {
            let base = project.join(dir);
            if let Ok(rd) = std::fs::read_dir(&base) {
                for e in rd.flatten() {
                    if e.path().join("package.json").is_file() {
                        out.push(format!("{dir}/{}", e.file_name().to_string_lossy()));
                    }
                }
            }
        } else if project.join(pat).join("package.json").is_file() {
            out.push(pat.to_string());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

impl<'a> Resolver<'a> {
    fn note(&mut self, code: &str, pkg: String, msg: String) {
        self.notes.push((code.to_string(), pkg, msg));
    }

    /// Resolve the full tree for `root` (the project's package.json) and its workspaces.
    #[instrument(skip_all)]
    pub async fn resolve(
        &mut self,
        root: Arc<Manifest>,
        workspaces: Vec<(String, Arc<Manifest>)>,
    ) -> Result<Tree> {
        let mut tree = Tree::default();
        tree.nodes.push(Node {
            name: root.name.clone(),
            location: String::new(),
            parent: None,
            children: BTreeMap::new(),
            kind: NodeKind::Root,
            edges: edges_of(&root, true, true),
            manifest: root,
            dev: false,
            optional: false,
            dev_optional: false,
            peer: false,
            platform_ok: true,
        });
        // Workspace members: a folder node (deps processed like the root's, hoisted to the
        // root) and a link in node_modules.
        for (dir, m) in workspaces {
            validate_name(&m.name)?;
            tree.nodes.push(Node {
                name: m.name.clone(),
                location: dir.clone(),
                parent: Some(0),
                children: BTreeMap::new(),
                kind: NodeKind::Workspace,
                edges: edges_of(&m, true, true),
                manifest: m.clone(),
                dev: false,
                optional: false,
                dev_optional: false,
                peer: false,
                platform_ok: true,
            });
            let link = tree.nodes.len();
            tree.nodes.push(Node {
                name: m.name.clone(),
                location: format!("node_modules/{}", m.name),
                parent: Some(0),
                children: BTreeMap::new(),
                kind: NodeKind::Link { target: dir },
                edges: vec![],
                manifest: m.clone(),
                dev: false,
                optional: false,
                dev_optional: false,
                peer: false,
                platform_ok: true,
            });
            tree.nodes[0].children.insert(m.name.clone(), link);
            // The root depends on each member, like npm's workspace edges.
            let spec = format!("file:{}", tree.nodes[link].location);
            tree.nodes[0].edges.push(Edge {
                name: m.name.clone(),
                spec,
                kind: EdgeKind::Prod,
                to: Some(link),
            });
        }
        // Prefetch every root-level dependency's metadata at once.
        for n in &tree.nodes {
            self.prefetch(&n.edges);
        }
        let mut heap: BinaryHeap<Reverse<(usize, String, usize)>> = BinaryHeap::new();
        for (i, n) in tree.nodes.iter().enumerate() {
            if matches!(n.kind, NodeKind::Root | NodeKind::Workspace) {
                heap.push(Reverse((n.depth(), n.location.clone(), i)));
            }
        }
        // name → (dependent node, edge index) for the shadowing check.
        let mut dependents: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
        let mut done = 0u64;
        while let Some(Reverse((_, _, idx))) = heap.pop() {
            done += 1;
            let n_edges = tree.nodes[idx].edges.len();
            for ei in 0..n_edges {
                if tree.nodes[idx].edges[ei].to.is_some() {
                    continue;
                }
                if let Some(new) = self
                    .resolve_edge(&mut tree, idx, ei, &mut dependents)
                    .await?
                {
                    let n = &tree.nodes[new];
                    heap.push(Reverse((n.depth(), n.location.clone(), new)));
                }
            }
            if let Some(cb) = self.on_progress.as_mut() {
                cb(done, done + heap.len() as u64);
            }
        }
        tree.compute_flags();
        Ok(tree)
    }

    fn prefetch(&self, edges: &[Edge]) {
        for e in edges {
            let name = match Spec::parse(&e.name, &e.spec) {
                Ok(Spec::Alias { name, .. }) => name,
                Ok(Spec::Range(_) | Spec::Tag(_)) => e.name.clone(),
                _ => continue,
            };
            if validate_name(&name).is_err() {
                continue;
            }
            let reg = self.registry.clone();
            let cfg = self.cfg.clone();
            let net = self.network;
            tokio::spawn(async move {
                let _ = reg.packument(&name, &cfg, net).await;
            });
        }
    }

    /// Resolve edge `ei` of node `from`; returns a newly created node to process.
    async fn resolve_edge(
        &mut self,
        tree: &mut Tree,
        from: usize,
        ei: usize,
        dependents: &mut HashMap<String, Vec<(usize, usize)>>,
    ) -> Result<Option<usize>> {
        let edge = tree.nodes[from].edges[ei].clone();
        let requirer = tree.nodes[from].pkg_id();
        let mut raw_spec = edge.spec.clone();
        if from != 0
            && let Some(o) = self.overrides.get(&edge.name)
        {
            raw_spec = o.clone();
            tree.nodes[from].edges[ei].spec = raw_spec.clone();
        }
        let optional = matches!(edge.kind, EdgeKind::Optional | EdgeKind::PeerOptional);
        let spec = match Spec::parse(&edge.name, &raw_spec) {
            Ok(s) => s,
            Err(e) if optional => {
                self.note(
                    "optional-skipped",
                    requirer,
                    format!("optional dependency skipped: {e}"),
                );
                return Ok(None);
            }
            Err(e) => return Err(HoardError::Resolve(format!("{e} (required by {requirer})"))),
        };
        validate_name(&edge.name)?;
        let is_peer = matches!(edge.kind, EdgeKind::Peer | EdgeKind::PeerOptional);
        // Peers must be visible from the dependent's parent.
        let start = if is_peer && from != 0 {
            tree.nodes[from].parent.unwrap_or(0)
        } else {
            from
        };
        if let Some(found) = tree.resolve_from(start, &edge.name) {
            if node_satisfies(&tree.nodes[found], &spec) {
                tree.nodes[from].edges[ei].to = Some(found);
                dependents
                    .entry(edge.name.clone())
                    .or_default()
                    .push((from, ei));
                return Ok(None);
            }
            if is_peer {
                let other = tree.nodes[found].pkg_id();
                self.note(
                    "peer-conflict",
                    requirer.clone(),
                    format!(
                        "{requirer} wants peer {}@{} but {other} is installed where it looks; \
                         keeping {other}",
                        edge.name, raw_spec
                    ),
                );
                tree.nodes[from].edges[ei].to = Some(found);
                return Ok(None);
            }
        }
        if edge.kind == EdgeKind::PeerOptional {
            // Optional peers are only checked, never installed.
            return Ok(None);
        }
        let (real_name, inner) = match &spec {
            Spec::Alias { name, spec } => (name.clone(), (**spec).clone()),
            Spec::Range(_) | Spec::Tag(_) => (edge.name.clone(), spec.clone()),
            Spec::Directory(p) | Spec::Link(p) => {
                return self.place_link(tree, from, ei, p).map(|_| None);
            }
            Spec::Workspace(_) => {
                // Workspace members are linked from the root already.
                if let Some(found) = tree.resolve_from(0, &edge.name) {
                    tree.nodes[from].edges[ei].to = Some(found);
                    return Ok(None);
                }
                return Err(HoardError::Resolve(format!(
                    "{requirer} depends on `{}@{raw_spec}` but no workspace member has that name",
                    edge.name
                )));
            }
            Spec::Tarball(_) | Spec::LocalTarball(_) => (edge.name.clone(), spec.clone()),
        };
        let (real_name, manifest) = if matches!(inner, Spec::Tarball(_) | Spec::LocalTarball(_)) {
            match self.tarball_manifest(&edge.name, &inner).await {
                Ok(m) => (m.name.clone(), m),
                Err(e) if optional => {
                    self.note(
                        "optional-skipped",
                        format!("{}@{raw_spec}", edge.name),
                        format!(
                            "optional dependency {} of {requirer} skipped: {e}",
                            edge.name
                        ),
                    );
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        } else {
            let packument = match self
                .registry
                .packument(&real_name, self.cfg, self.network)
                .await
            {
                Ok(p) => p,
                Err(e) if optional => {
                    self.note(
                        "optional-skipped",
                        format!("{real_name}@{raw_spec}"),
                        format!("optional dependency {real_name} of {requirer} skipped: {e}"),
                    );
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            let fresh = match &self.fresh {
                None => false,
                Some(list) => list.is_empty() || list.contains(&real_name),
            };
            let preferred = if fresh {
                None
            } else {
                self.preferred.get(&real_name).map(Vec::as_slice)
            };
            let Some(picked) = pick(&packument, &inner, self.node_version.as_ref(), preferred)
            else {
                let mut versions: Vec<&str> = packument
                    .sorted
                    .iter()
                    .take(12)
                    .map(|(_, s)| s.as_str())
                    .collect();
                versions.reverse();
                let msg = format!(
                    "no version of `{real_name}` satisfies `{raw_spec}` (required by {requirer}); \
                     available: {}{}; dist-tags: {}",
                    if packument.sorted.len() > 12 {
                        "…, "
                    } else {
                        ""
                    },
                    versions.join(", "),
                    packument
                        .dist_tags
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                if optional {
                    self.note("optional-skipped", format!("{real_name}@{raw_spec}"), msg);
                    return Ok(None);
                }
                return Err(HoardError::Resolve(msg));
            };
            (real_name, picked)
        };
        let platform = platform_ok(&manifest);
        if !platform && !optional {
            // npm: EBADPLATFORM for a required dependency; kept going only when some other path
            // marks it optional (decided by flags later): we record it, not install it.
            self.note(
                "platform",
                format!("{real_name}@{}", manifest.version),
                format!(
                    "{real_name}@{} (required by {requirer}) does not support this platform \
                     (os {:?}, cpu {:?}); it will not be installed",
                    manifest.version, manifest.os, manifest.cpu
                ),
            );
        }
        if let Some(d) = &manifest.deprecated {
            self.note(
                "deprecated",
                format!("{real_name}@{}", manifest.version),
                format!("{real_name}@{}: {d}", manifest.version),
            );
        }
        if !engine_ok(&manifest, self.node_version.as_ref()) {
            self.note(
                "engine",
                format!("{real_name}@{}", manifest.version),
                format!(
                    "{real_name}@{} wants node {} (current: {})",
                    manifest.version,
                    manifest
                        .engines
                        .get("node")
                        .map(String::as_str)
                        .unwrap_or("?"),
                    self.node_version
                        .as_ref()
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                ),
            );
        }
        // Placement: walk up from `start`, stop at a conflict or a shadowing problem.
        let version = semver_npm::parse_version(&manifest.version);
        let mut target: Option<usize> = None;
        let mut cur = Some(start);
        while let Some(level) = cur {
            if tree.nodes[level].children.contains_key(&edge.name) {
                break;
            }
            let shadows = dependents.get(&edge.name).is_some_and(|deps| {
                deps.iter().any(|&(d, dei)| {
                    let e = &tree.nodes[d].edges[dei];
                    let Some(to) = e.to else { return false };
                    tree.is_within(d, level)
                        && !tree.is_within(to, level)
                        && !version.as_ref().is_some_and(|v| {
                            Spec::parse(&e.name, &e.spec).ok().is_some_and(|s| match s {
                                Spec::Range(r) => Range::parse(&r).is_some_and(|r| r.satisfies(v)),
                                Spec::Alias { spec, .. } => match *spec {
                                    Spec::Range(r) => {
                                        Range::parse(&r).is_some_and(|r| r.satisfies(v))
                                    }
                                    _ => false,
                                },
                                _ => false,
                            })
                        })
                })
            });
            if shadows {
                break;
            }
            target = Some(level);
            // Workspace folders hoist into the root.
            cur = tree.nodes[level].parent;
        }
        let Some(target) = target else {
            // Only when `start` itself holds a conflicting child: the requirer gets the one
            // it already sees (npm would replace it; rare).
            let found = tree.resolve_from(start, &edge.name);
            self.note(
                "conflict",
                requirer.clone(),
                format!(
                    "{requirer} wants {}@{raw_spec}, which conflicts with the copy already in its \
                     own node_modules; keeping that copy",
                    edge.name
                ),
            );
            tree.nodes[from].edges[ei].to = found;
            return Ok(None);
        };
        let parent_loc = &tree.nodes[target].location;
        let location = if parent_loc.is_empty() {
            format!("node_modules/{}", edge.name)
        } else {
            format!("{parent_loc}/node_modules/{}", edge.name)
        };
        let edges = edges_of(&manifest, false, false);
        self.prefetch(&edges);
        let idx = tree.nodes.len();
        tree.nodes.push(Node {
            name: edge.name.clone(),
            location,
            parent: Some(target),
            children: BTreeMap::new(),
            kind: NodeKind::Package {
                real_name: real_name.clone(),
                version: manifest.version.clone(),
                resolved: manifest.dist.tarball.clone(),
                integrity: manifest.dist.integrity.clone().or_else(|| {
                    crate::store::integrity::Sri::parse(None, manifest.dist.shasum.as_deref())
                        .strongest()
                }),
            },
            edges,
            manifest,
            dev: false,
            optional: false,
            dev_optional: false,
            peer: false,
            platform_ok: platform,
        });
        tree.nodes[target].children.insert(edge.name.clone(), idx);
        tree.nodes[from].edges[ei].to = Some(idx);
        dependents
            .entry(edge.name.clone())
            .or_default()
            .push((from, ei));
        debug!(pkg = %tree.nodes[idx].pkg_id(), location = %tree.nodes[idx].location, "placed");
        if let Some(cb) = self.on_picked.as_mut() {
            cb(&tree.nodes[idx]);
        }
        Ok(Some(idx))
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
        };
        let stored = self
            .store
            .ensure(&t, &self.registry.http, self.network == Network::Offline)
            .await?;
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
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            HoardError::Resolve(format!(
                "package.json in the tarball `{resolved}` of `{dep}`: {e}"
            ))
        })?;
        let mut m = crate::lockfile::manifest_from_json(dep, &v);
        if m.version.is_empty() {
            return Err(HoardError::Resolve(format!(
                "package.json in the tarball `{resolved}` of `{dep}` has no version"
            )));
        }
        validate_name(&m.name)?;
        m.dist = crate::registry::packument::Dist {
            tarball: resolved,
            integrity: Some(stored.integrity.clone()),
            shasum: None,
        };
        Ok(Arc::new(m))
    }

    fn place_link(&mut self, tree: &mut Tree, from: usize, ei: usize, path: &str) -> Result<()> {
        let edge = tree.nodes[from].edges[ei].clone();
        if from != 0 {
            return Err(HoardError::Resolve(format!(
                "{} depends on `{}` through a local path (`{}`); only the project itself may use \
                 file:/link: dependencies",
                tree.nodes[from].pkg_id(),
                edge.name,
                edge.spec
            )));
        }
        let target = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let idx = tree.nodes.len();
        tree.nodes.push(Node {
            name: edge.name.clone(),
            location: format!("node_modules/{}", edge.name),
            parent: Some(0),
            children: BTreeMap::new(),
            kind: NodeKind::Link { target },
            edges: vec![],
            manifest: Arc::new(Manifest {
                name: edge.name.clone(),
                ..Default::default()
            }),
            dev: false,
            optional: false,
            dev_optional: false,
            peer: false,
            platform_ok: true,
        });
        tree.nodes[0].children.insert(edge.name.clone(), idx);
        tree.nodes[from].edges[ei].to = Some(idx);
        Ok(())
    }
}
