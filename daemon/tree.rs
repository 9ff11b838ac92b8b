//! The logical dependency tree: nodes at npm lockfile locations (`node_modules/a/node_modules/b`),
//! their outgoing edges, and npm's dev/optional/devOptional/peer flags.
//!
//! Produced by the resolver or read from package-lock.json; consumed by the fetcher, the linker
//! and the lockfile writer. Must not: do I/O.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;

use crate::registry::config::NpmConfig;
use crate::registry::packument::Manifest;
use crate::store::TarballRef;
use crate::store::integrity::Sri;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    Prod,
    Dev,
    Optional,
    Peer,
    PeerOptional,
}

#[derive(Debug, Clone)]
pub struct Edge {
    /// The name the dependency is required under (alias name for aliases).
    pub name: String,
    pub spec: String,
    pub kind: EdgeKind,
    /// Resolved node, if any (missing optional deps stay None).
    pub to: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Root,
    /// A package from a registry or tarball URL.
    Package {
        /// The real package name (differs from `Node::name` for aliases).
        real_name: String,
        version: String,
        resolved: String,
        integrity: Option<String>,
    },
    /// A symlink to a directory (workspace member, `file:` directory, `link:`); `target` is
    /// relative to the project root.
    Link {
        target: String,
    },
    /// A workspace member's own folder (the target of a Link), e.g. `packages/a`.
    Workspace,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub location: String,
    pub parent: Option<usize>,
    pub children: BTreeMap<String, usize>,
    pub kind: NodeKind,
    pub manifest: Arc<Manifest>,
    pub edges: Vec<Edge>,
    pub dev: bool,
    pub optional: bool,
    pub dev_optional: bool,
    pub peer: bool,
    /// Reached only through optional peer edges: npm keeps it in the tree and writes
    /// `"extraneous": true` (and no other flag) in the lockfile.
    pub extraneous: bool,
    /// Shipped inside its bundling package's tarball (`bundleDependencies`): listed in the
    /// lockfile with `"inBundle": true`, never fetched or linked on its own.
    pub in_bundle: bool,
    /// False when os/cpu/libc exclude this platform (kept in the lockfile, not installed).
    pub platform_ok: bool,
}

/// `a/node_modules/b` → (`a`, `b`); scoped names stay whole. A location with no
/// `node_modules/` (a workspace folder) → (``, the location).
pub fn split_location(loc: &str) -> (&str, &str) {
    location_parts(loc).unwrap_or(("", loc))
}

/// The package name a location gives it (a workspace folder's: its last component).
pub fn name_from_location(loc: &str) -> &str {
    match location_parts(loc) {
        Some((_, name)) => name,
        None => loc.rsplit('/').next().unwrap_or(loc),
    }
}

/// `a/node_modules/b` → Some((`a`, `b`)), `node_modules/@s/b` → Some((``, `@s/b`)); None when the
/// location is not inside a `node_modules` folder (the root, a workspace folder).
pub fn location_parts(loc: &str) -> Option<(&str, &str)> {
    let i = loc.rfind("node_modules/")?;
    Some((
        loc[..i].trim_end_matches('/'),
        &loc[i + "node_modules/".len()..],
    ))
}

/// Whether a `resolved` URL is a registry tarball (`<host>/<name>/-/<file>-<digit>…`), the shape
/// npm trusts a registry identity from (a bare `https://host/-/x-1.0.0.tgz` is not one).
pub fn is_registry_resolved(resolved: &str) -> bool {
    let Some(rest) = resolved
        .strip_prefix("https://")
        .or_else(|| resolved.strip_prefix("http://"))
    else {
        return false;
    };
    let Some((host, path)) = rest.split_once('/') else {
        return false;
    };
    // `.+/-/[^/]+-\d`: some path, then `/-/`, then a file name holding `-<digit>`.
    let Some(i) = path.rfind("/-/") else {
        return false;
    };
    let file = &path.as_bytes()[i + 3..];
    !host.is_empty()
        && i > 0
        && !file.contains(&b'/')
        && (1..file.len())
            .any(|j| file[j] == b'-' && file.get(j + 1).is_some_and(u8::is_ascii_digit))
}

impl Node {
    /// A node with no edges, no children and no flags yet (`compute_flags` sets them).
    pub fn new(
        name: String,
        location: String,
        parent: Option<usize>,
        kind: NodeKind,
        manifest: Arc<Manifest>,
        platform_ok: bool,
    ) -> Node {
        Node {
            name,
            location,
            parent,
            children: BTreeMap::new(),
            kind,
            manifest,
            edges: vec![],
            dev: false,
            optional: false,
            dev_optional: false,
            peer: false,
            extraneous: false,
            in_bundle: false,
            platform_ok,
        }
    }

    pub fn depth(&self) -> usize {
        if self.location.is_empty() {
            0
        } else {
            self.location.matches("node_modules/").count()
        }
    }

    pub fn version(&self) -> &str {
        match &self.kind {
            NodeKind::Package { version, .. } => version,
            _ => &self.manifest.version,
        }
    }

    pub fn real_name(&self) -> &str {
        match &self.kind {
            NodeKind::Package { real_name, .. } => real_name,
            _ => &self.name,
        }
    }

    /// What to fetch for a package node (`file:` tarballs are made absolute against `project`).
    pub fn tarball_ref(&self, cfg: &NpmConfig, project: &Path) -> Option<TarballRef> {
        let NodeKind::Package {
            real_name,
            version,
            resolved,
            integrity,
        } = &self.kind
        else {
            return None;
        };
        Some(TarballRef {
            name: real_name.clone(),
            version: version.clone(),
            url: match resolved.strip_prefix("file:") {
                Some(rel) if !rel.starts_with('/') => {
                    format!("file:{}", project.join(rel).display())
                }
                _ => resolved.clone(),
            },
            integrity: Sri::parse(integrity.as_deref(), None),
            auth: cfg.auth_for(resolved),
            remote: cfg.remote_cache().ok().flatten(),
        })
    }

    pub fn pkg_id(&self) -> String {
        format!("{}@{}", self.real_name(), self.version())
    }
}

#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    pub fn root(&self) -> &Node {
        &self.nodes[0]
    }

    /// The node `from` would get for `require(name)`: its own node_modules, then each
    /// ancestor's.
    pub fn resolve_from(&self, from: usize, name: &str) -> Option<usize> {
        let mut cur = Some(from);
        while let Some(i) = cur {
            if let Some(&c) = self.nodes[i].children.get(name) {
                return Some(c);
            }
            cur = self.nodes[i].parent;
        }
        None
    }

    /// Compute npm's dev/optional/devOptional/peer flags from the edges.
    pub fn compute_flags(&mut self) {
        // A node is *not* dev if reachable from the root without passing a root dev edge, etc.
        let is_opt = |e: &Edge| matches!(e.kind, EdgeKind::Optional | EdgeKind::PeerOptional);
        // Dev edges count from the root and from workspace members' folders.
        let top =
            |tree: &Tree, from: usize| from == 0 || tree.nodes[from].kind == NodeKind::Workspace;
        let not_dev = self.reached(&|from, e| !(top(self, from) && e.kind == EdgeKind::Dev));
        let not_opt = self.reached(&|_, e| !is_opt(e));
        let not_dev_opt =
            self.reached(&|from, e| !(is_opt(e) || top(self, from) && e.kind == EdgeKind::Dev));
        let not_peer =
            self.reached(&|_, e| !matches!(e.kind, EdgeKind::Peer | EdgeKind::PeerOptional));
        let not_extraneous = self.reached(&|_, e| e.kind != EdgeKind::PeerOptional);
        for (i, n) in self.nodes.iter_mut().enumerate() {
            if i == 0 {
                continue;
            }
            n.extraneous = !not_extraneous[i];
            n.dev = !not_dev[i];
            n.optional = !not_opt[i];
            n.dev_optional = !not_dev_opt[i];
            n.peer = !not_peer[i];
        }
    }

    /// The tree with only the nodes `keep` accepts (the root always), indexes renumbered.
    pub fn retain(self, keep: impl Fn(usize) -> bool) -> Tree {
        let map: Vec<Option<usize>> = {
            let mut next = 0;
            (0..self.nodes.len())
                .map(|i| {
                    (i == 0 || keep(i)).then(|| {
                        next += 1;
                        next - 1
                    })
                })
                .collect()
        };
        let nodes = self
            .nodes
            .into_iter()
            .enumerate()
            .filter(|(i, _)| map[*i].is_some())
            .map(|(_, mut n)| {
                n.parent = n.parent.and_then(|p| map[p]);
                n.children = n
                    .children
                    .into_iter()
                    .filter_map(|(k, c)| map[c].map(|c| (k, c)))
                    .collect();
                for e in n.edges.iter_mut() {
                    e.to = e.to.and_then(|t| map[t]);
                }
                n
            })
            .collect();
        Tree { nodes }
    }

    /// Nodes that are not reachable from the root at all (left over after re-resolution).
    pub fn unreachable(&self) -> HashSet<usize> {
        let seen = self.reached(&|_, _| true);
        (0..self.nodes.len()).filter(|&i| !seen[i]).collect()
    }

    /// Which nodes the root reaches, by index, through the edges `allow` accepts (a link
    /// reaches the workspace member it points at).
    fn reached(&self, allow: &dyn Fn(usize, &Edge) -> bool) -> Vec<bool> {
        let mut seen = vec![false; self.nodes.len()];
        let mut queue = VecDeque::from([0usize]);
        seen[0] = true;
        while let Some(i) = queue.pop_front() {
            for e in &self.nodes[i].edges {
                if let Some(to) = e.to
                    && allow(i, e)
                    && !std::mem::replace(&mut seen[to], true)
                {
                    queue.push_back(to);
                }
            }
            // Workspace members are reached through their link.
            if let NodeKind::Link { .. } = self.nodes[i].kind {
                for (j, n) in self.nodes.iter().enumerate() {
                    if n.kind == NodeKind::Workspace
                        && link_target_matches(&self.nodes[i], n)
                        && !std::mem::replace(&mut seen[j], true)
                    {
                        queue.push_back(j);
                    }
                }
            }
        }
        seen
    }
}

fn link_target_matches(link: &Node, ws: &Node) -> bool {
    matches!(&link.kind, NodeKind::Link { target } if *target == ws.location)
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
