//! The tree arborist builds an ideal tree in: an arena of nodes with parents, children and
//! outgoing edges, where an edge's target is never stored but found the way Node.js finds it
//! (`resolve`: own node_modules, then each ancestor's), and an edge is valid when that target
//! satisfies its spec. Virtual roots (the throw-away trees a dependency's peer set is loaded
//! into) live in the same arena, as tops of their own.
//!
//! Also the node predicates placement needs: `matches`, `satisfies`, `can_replace_with`,
//! `can_dedupe`, `peer_entry_sets`, `gather_dep_set`, `deepest_nesting_target`.
//! Must not: fetch metadata or decide where anything goes (that is place.rs).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::registry::packument::Manifest;
use crate::semver_npm::{self, Range};
use crate::spec::Spec;
use crate::tree::EdgeKind;

use super::overrides::{Overrides, RuleId};

pub type Id = usize;

/// A package name interned in one graph.
pub type NameId = u32;

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// The project.
    Root,
    /// A workspace member's folder (a top whose resolve parent is the root).
    Workspace { dir: String },
    /// A throw-away top a dependency and its peers are loaded into; `source` is the node whose
    /// dependencies it mirrors.
    Virtual { source: Id },
    Package {
        real_name: String,
        version: String,
        resolved: String,
        integrity: Option<String>,
    },
    /// A symlink: `target` is a path relative to the project (a workspace folder, a `file:`
    /// directory, or a node_modules folder for a dependency cycle npm links).
    Link { target: String },
    /// A dependency whose metadata could not be had (fatal unless everything needing it is
    /// optional).
    Failed { error: LoadError },
}

/// Why a dependency could not be loaded: a stable reason (the API's `ErrorInfo.reason`, e.g.
/// `NO_MATCHING_VERSION`) and a self-contained message.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub reason: &'static str,
    pub message: String,
}

impl LoadError {
    pub fn new(reason: &'static str, message: impl Into<String>) -> LoadError {
        LoadError {
            reason,
            message: message.into(),
        }
    }
}

impl From<String> for LoadError {
    fn from(message: String) -> LoadError {
        LoadError::new("RESOLUTION_FAILED", message)
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[derive(Debug, Clone)]
pub struct Edge {
    pub name: String,
    /// The spec after `overrides`.
    pub spec: String,
    pub kind: EdgeKind,
    /// The override rule this edge falls under (passed on to the node it brings in).
    pub rule: Option<RuleId>,
    parsed: Option<Spec>,
    range: Option<Range>,
}

impl Edge {
    pub fn peer(&self) -> bool {
        matches!(self.kind, EdgeKind::Peer | EdgeKind::PeerOptional)
    }
    pub fn optional(&self) -> bool {
        matches!(self.kind, EdgeKind::Optional | EdgeKind::PeerOptional)
    }
    pub fn parsed(&self) -> Option<&Spec> {
        self.parsed.as_ref()
    }
}

/// One outgoing edge: the node it leaves and its index there (edges never change after a node
/// is made, so this is stable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ERef {
    pub from: Id,
    pub idx: usize,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    name_id: NameId,
    pub kind: Kind,
    pub manifest: Arc<Manifest>,
    pub version: Option<semver::Version>,
    pub parent: Option<Id>,
    pub fs_parent: Option<Id>,
    /// What is in its node_modules, in no particular order (`children_by_name` where the
    /// order matters); `child_at` finds one by name.
    pub children: Vec<Id>,
    /// Shared between nodes made from the same manifest under the same rule (and, without
    /// overrides, between resolves: kept in the manifest).
    pub edges: Arc<Vec<Edge>>,
    /// The names of `edges` interned in this graph, in the same order.
    edge_names: Arc<Vec<NameId>>,
    pub rule: Option<RuleId>,
    /// Lives in a virtual root (a placement never moves a node between trees, it copies it).
    pub virtual_: bool,
    /// False once removed from its tree (arborist's `node.root = null`).
    pub attached: bool,
}

impl Node {
    pub fn errors(&self) -> bool {
        matches!(self.kind, Kind::Failed { .. })
    }
    pub fn package_name(&self) -> &str {
        match &self.kind {
            Kind::Package { real_name, .. } => real_name,
            _ => &self.manifest.name,
        }
    }
    fn resolved(&self) -> Option<&str> {
        match &self.kind {
            Kind::Package { resolved, .. } if !resolved.is_empty() => Some(resolved),
            _ => None,
        }
    }
    fn integrity(&self) -> Option<&str> {
        match &self.kind {
            Kind::Package { integrity, .. } => integrity.as_deref(),
            _ => None,
        }
    }
}

/// What a new node is made from.
pub struct NewNode {
    pub name: String,
    pub kind: Kind,
    pub manifest: Arc<Manifest>,
    pub rule: Option<RuleId>,
    /// Whether its devDependencies are edges (the root, workspace folders, virtual roots of
    /// those).
    pub dev: bool,
}

/// (manifest address, override rule, devDependencies included, is a link).
type EdgeKey = (usize, Option<RuleId>, bool, bool);

/// The manifest (held so its address stays its own), its edges, their names interned, and its
/// version parsed (a package is loaded, given a virtual root and placed: three nodes).
type CachedEdges = (
    Arc<Manifest>,
    Arc<Vec<Edge>>,
    Arc<Vec<NameId>>,
    Option<semver::Version>,
);

/// The graph's maps: keys are package names and node ids, never outside input that could be
/// chosen to collide (names come from the project's and the registry's manifests, and a
/// collision only costs time), so a fast hash instead of SipHash.
type FxHashMap<K, V> = HashMap<K, V, rustc_hash::FxBuildHasher>;
type FxHashSet<K> = HashSet<K, rustc_hash::FxBuildHasher>;

fn sized<K, V>(n: usize) -> FxHashMap<K, V> {
    FxHashMap::with_capacity_and_hasher(n, Default::default())
}

/// Nodes in chunks of a fixed size: a growing graph never moves its nodes (a warm resolve of
/// 1,500 packages makes about 5,000, and a `Vec` would copy them, and fault in fresh pages for
/// the copies, three times over).
#[derive(Debug, Default)]
pub struct Nodes {
    chunks: Vec<Vec<Node>>,
    len: usize,
}

const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;

impl Nodes {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn iter(&self) -> impl Iterator<Item = &Node> {
        self.chunks.iter().flatten()
    }

    fn push(&mut self, n: Node) {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(last) = self.chunks.last_mut() {
            last.push(n);
            self.len += 1;
        }
    }
}

impl std::ops::Index<Id> for Nodes {
    type Output = Node;
    fn index(&self, id: Id) -> &Node {
        &self.chunks[id >> CHUNK_BITS][id & (CHUNK - 1)]
    }
}

impl std::ops::IndexMut<Id> for Nodes {
    fn index_mut(&mut self, id: Id) -> &mut Node {
        &mut self.chunks[id >> CHUNK_BITS][id & (CHUNK - 1)]
    }
}

#[derive(Debug, Default)]
pub struct Graph {
    pub nodes: Nodes,
    /// Every name a node or an edge has, interned.
    names: FxHashMap<String, NameId>,
    /// (node, name) → the child of that name in the node's node_modules: `children` for
    /// lookups by id (the hot path of `resolve`); kept in step by `set_parent` and `unlink`.
    child_at: FxHashMap<(Id, NameId), Id>,
    /// Dependency name → nodes that have an edge of that name (for edges in).
    dependents: FxHashMap<NameId, Vec<Id>>,
    /// Node name → nodes of that name, in creation order (arborist's inventory by name).
    by_name: FxHashMap<NameId, Vec<Id>>,
    pub peer_conflicted: FxHashSet<ERef>,
    /// Edges already built, by (manifest, rule, dev, link).
    edge_cache: FxHashMap<EdgeKey, CachedEdges>,
    pub overrides: Option<Overrides>,
    pub legacy_peer_deps: bool,
}

impl Graph {
    pub fn new(overrides: Option<Overrides>, legacy_peer_deps: bool) -> Graph {
        // Sized for a project of a thousand packages or so, which would otherwise rehash each
        // map ten times over (a few percent of a warm resolve); a small project pays a few
        // hundred kilobytes for a moment.
        const NODES: usize = 1024;
        Graph {
            names: sized(2 * NODES),
            child_at: sized(NODES),
            dependents: sized(NODES),
            by_name: sized(NODES),
            edge_cache: sized(NODES),
            overrides,
            legacy_peer_deps,
            ..Default::default()
        }
    }

    /// Make a node (not yet in any tree). Edges are built in arborist's order: peer,
    /// peerOptional, prod, optional, dev; a later kind replaces an earlier one of the same name
    /// and moves it to the end.
    pub fn add(&mut self, n: NewNode) -> Id {
        let is_link = matches!(n.kind, Kind::Link { .. });
        let key = (Arc::as_ptr(&n.manifest) as usize, n.rule, n.dev, is_link);
        let (edges, edge_names, manifest_version) = match self.edge_cache.get(&key) {
            Some((_, e, names, v)) => (e.clone(), names.clone(), v.clone()),
            None => {
                let e = self.edges_of(&n, is_link);
                let names: Vec<NameId> = e.iter().map(|edge| self.intern(&edge.name)).collect();
                let names = Arc::new(names);
                let v = semver_npm::parse_version(&n.manifest.version);
                let cached = (n.manifest.clone(), e.clone(), names.clone(), v.clone());
                self.edge_cache.insert(key, cached);
                (e, names, v)
            }
        };
        let id = self.nodes.len();
        let virtual_ = matches!(n.kind, Kind::Virtual { .. });
        // A virtual root copies all its source's edges but only its children can meet them:
        // `edges_in` asks it directly instead of listing it under every name it depends on.
        if !virtual_ {
            for &name in edge_names.iter() {
                self.dependents.entry(name).or_default().push(id);
            }
        }
        let name_id = self.intern(&n.name);
        self.by_name.entry(name_id).or_default().push(id);
        let version = match &n.kind {
            Kind::Package { version, .. } if *version != n.manifest.version => {
                semver_npm::parse_version(version)
            }
            _ => manifest_version,
        };
        self.nodes.push(Node {
            name: n.name,
            name_id,
            kind: n.kind,
            manifest: n.manifest,
            version,
            parent: None,
            fs_parent: None,
            children: Vec::new(),
            edges,
            edge_names,
            rule: n.rule,
            virtual_,
            attached: true,
        });
        id
    }

    /// A new node's edges. Without overrides, `--legacy-peer-deps`, devDependencies or a link,
    /// they depend on the manifest alone and are kept in it for the next resolve.
    fn edges_of(&self, n: &NewNode, is_link: bool) -> Arc<Vec<Edge>> {
        if self.overrides.is_none() && !self.legacy_peer_deps && !n.dev && !is_link {
            let kept = (n.manifest.derived).get_or_init(|| self.make_edges(n, false));
            if let Some(edges) = kept {
                return edges;
            }
        }
        Arc::new(self.make_edges(n, is_link))
    }

    fn make_edges(&self, n: &NewNode, is_link: bool) -> Vec<Edge> {
        // A link's dependencies are its target's, never its own.
        let m = if is_link {
            &Arc::new(Manifest::default())
        } else {
            &n.manifest
        };
        let mut edges: Vec<Edge> = Vec::new();
        let mut push = |name: &str, raw: &str, kind: EdgeKind, g: &Graph| {
            edges.retain(|e| e.name != name);
            let rule = match (&g.overrides, n.rule) {
                (Some(o), Some(r)) => Some(o.edge_rule(r, name, raw)),
                _ => None,
            };
            let spec = match (&g.overrides, rule) {
                (Some(o), Some(r)) => o.spec_for(r, name, raw).to_string(),
                _ => raw.to_string(),
            };
            let (parsed, range) = match Spec::parse_with_range(name, &spec) {
                Ok((parsed, range)) => (Some(parsed), range),
                Err(_) => (None, None),
            };
            edges.push(Edge {
                name: name.to_string(),
                spec,
                kind,
                rule,
                parsed,
                range,
            });
        };
        if !self.legacy_peer_deps {
            let optional = |name: &str| {
                m.peer_dependencies_meta
                    .get(name)
                    .is_some_and(|x| x.optional)
            };
            for (name, spec) in m.peer_dependencies.iter().filter(|(k, _)| !optional(k)) {
                push(name, spec, EdgeKind::Peer, self);
            }
            for (name, spec) in m.peer_dependencies.iter().filter(|(k, _)| optional(k)) {
                push(name, spec, EdgeKind::PeerOptional, self);
            }
        }
        for (name, spec) in &m.dependencies {
            push(name, spec, EdgeKind::Prod, self);
        }
        for (name, spec) in &m.optional_dependencies {
            push(name, spec, EdgeKind::Optional, self);
        }
        if n.dev {
            for (name, spec) in &m.dev_dependencies {
                push(name, spec, EdgeKind::Dev, self);
            }
        }
        edges
    }

    /// Add a workspace edge (the root's `file:` edge to a member's link).
    pub fn add_workspace_edge(&mut self, from: Id, name: &str, dir: &str) {
        let spec = format!("file:{dir}");
        let name_id = self.intern(name);
        self.dependents.entry(name_id).or_default().push(from);
        let parsed = Spec::parse(name, &spec).ok();
        let node = &mut self.nodes[from];
        let edges = Arc::make_mut(&mut node.edges);
        let names = Arc::make_mut(&mut node.edge_names);
        if let Some(i) = edges.iter().position(|e| e.name == name) {
            edges.remove(i);
            names.remove(i);
        }
        names.push(name_id);
        edges.push(Edge {
            name: name.to_string(),
            spec,
            kind: EdgeKind::Prod,
            rule: None,
            parsed,
            range: None,
        });
    }

    pub fn edge(&self, e: ERef) -> &Edge {
        &self.nodes[e.from].edges[e.idx]
    }

    pub fn edge_named(&self, from: Id, name: &str) -> Option<ERef> {
        self.edge_named_id(from, *self.names.get(name)?)
    }

    pub fn edge_named_id(&self, from: Id, name: NameId) -> Option<ERef> {
        self.nodes[from]
            .edge_names
            .iter()
            .position(|&e| e == name)
            .map(|idx| ERef { from, idx })
    }

    /// `name`'s id, made on first sight.
    fn intern(&mut self, name: &str) -> NameId {
        if let Some(&id) = self.names.get(name) {
            return id;
        }
        let id = self.names.len() as NameId;
        self.names.insert(name.to_string(), id);
        id
    }

    pub fn edge_refs(&self, from: Id) -> impl Iterator<Item = ERef> + use<> {
        (0..self.nodes[from].edges.len()).map(move |idx| ERef { from, idx })
    }

    /// Put `id` under `parent` (its node_modules), clobbering what was there.
    pub fn set_parent(&mut self, id: Id, parent: Id) {
        // `edges_in` counts on a virtual root never having a parent.
        debug_assert!(!matches!(self.nodes[id].kind, Kind::Virtual { .. }));
        self.unlink(id);
        let old = self.child_at.insert((parent, self.nodes[id].name_id), id);
        if let Some(old) = old
            && old != id
        {
            self.nodes[parent].children.retain(|&c| c != old);
            self.nodes[old].parent = None;
            self.nodes[old].attached = false;
        }
        if old != Some(id) {
            self.nodes[parent].children.push(id);
        }
        self.nodes[id].parent = Some(parent);
        self.nodes[id].attached = true;
        if self.nodes[parent].virtual_ {
            self.nodes[id].virtual_ = true;
        }
    }

    pub fn set_fs_parent(&mut self, id: Id, fs_parent: Id) {
        debug_assert!(!matches!(self.nodes[id].kind, Kind::Virtual { .. }));
        self.nodes[id].fs_parent = Some(fs_parent);
    }

    fn unlink(&mut self, id: Id) {
        if let Some(p) = self.nodes[id].parent.take() {
            let key = (p, self.nodes[id].name_id);
            if self.child_at.get(&key) == Some(&id) {
                self.child_at.remove(&key);
                self.nodes[p].children.retain(|&c| c != id);
            }
        }
    }

    /// Remove a node (and so everything below it) from its tree.
    pub fn detach(&mut self, id: Id) {
        self.unlink(id);
        self.nodes[id].fs_parent = None;
        self.nodes[id].attached = false;
    }

    /// `new` takes `old`'s place and its children (arborist's `Node.replace`).
    pub fn replace(&mut self, new: Id, old: Id) {
        let kids: Vec<Id> = self.nodes[old].children.clone();
        let parent = self.nodes[old].parent;
        if !matches!(self.nodes[new].kind, Kind::Link { .. }) {
            for k in kids {
                self.set_parent(k, new);
            }
        }
        match parent {
            Some(p) => self.set_parent(new, p),
            None => self.detach(old),
        }
    }

    pub fn resolve_parent(&self, id: Id) -> Option<Id> {
        self.nodes[id].parent.or(self.nodes[id].fs_parent)
    }

    pub fn is_top(&self, id: Id) -> bool {
        self.nodes[id].parent.is_none()
    }

    /// The project root, a virtual root, or a removed node: a tree of its own.
    pub fn is_project_root(&self, id: Id) -> bool {
        self.resolve_parent(id).is_none()
    }

    pub fn is_workspace(&self, id: Id) -> bool {
        matches!(self.nodes[id].kind, Kind::Workspace { .. })
    }

    pub fn is_root_or_workspace(&self, id: Id) -> bool {
        id == 0 || self.is_workspace(id)
    }

    pub fn root_of(&self, mut id: Id) -> Id {
        while let Some(p) = self.resolve_parent(id) {
            id = p;
        }
        id
    }

    /// In the project's tree (not removed, not in a virtual root).
    pub fn in_tree(&self, id: Id) -> bool {
        self.root_of(id) == 0
    }

    pub fn is_descendant_of(&self, id: Id, ancestor: Id) -> bool {
        let mut cur = Some(id);
        while let Some(c) = cur {
            if c == ancestor {
                return true;
            }
            cur = self.resolve_parent(c);
        }
        false
    }

    /// What `require(name)` from `from` finds.
    pub fn resolve(&self, from: Id, name: &str) -> Option<Id> {
        // A name never seen is no node's.
        self.resolve_id(from, *self.names.get(name)?)
    }

    fn resolve_id(&self, from: Id, name: NameId) -> Option<Id> {
        let mut cur = Some(from);
        while let Some(c) = cur {
            if let Some(&k) = self.child_at.get(&(c, name)) {
                return Some(k);
            }
            cur = self.resolve_parent(c);
        }
        None
    }

    /// What is in `id`'s node_modules, by name (bytewise, as a sorted map of names would
    /// give them).
    pub fn children_by_name(&self, id: Id) -> Vec<Id> {
        let mut kids = self.nodes[id].children.clone();
        kids.sort_unstable_by(|&a, &b| self.nodes[a].name.cmp(&self.nodes[b].name));
        kids
    }

    /// A child of `id` by name (its node_modules only, no walk up).
    pub fn child(&self, id: Id, name: &str) -> Option<Id> {
        self.child_by_id(id, *self.names.get(name)?)
    }

    /// `child` by interned name.
    pub fn child_by_id(&self, id: Id, name: NameId) -> Option<Id> {
        self.child_at.get(&(id, name)).copied()
    }

    /// The interned name of edge `e`.
    pub fn edge_name(&self, e: ERef) -> NameId {
        self.nodes[e.from].edge_names[e.idx]
    }

    pub fn to(&self, e: ERef) -> Option<Id> {
        self.resolve_id(e.from, self.edge_name(e))
    }

    /// arborist's `edge.valid`: missing optional edges are fine; a peer met from the dependent's
    /// own node_modules is not ("PEER LOCAL").
    pub fn valid(&self, e: ERef) -> bool {
        let edge = self.edge(e);
        match self.to(e) {
            None => edge.optional(),
            Some(to) => {
                !(edge.peer() && self.nodes[to].parent == Some(e.from) && !self.is_top(e.from))
                    && self.satisfied_by(e, to)
            }
        }
    }

    /// arborist's dep-valid: does node `n` meet the spec of edge `e` (names aside)?
    pub fn satisfied_by(&self, e: ERef, n: Id) -> bool {
        let node = &self.nodes[n];
        if node.name_id != self.edge_name(e) {
            return false;
        }
        let edge = self.edge(e);
        let Some(parsed) = &edge.parsed else {
            return false;
        };
        let inner = match parsed {
            Spec::Alias { spec, .. } => &**spec,
            s => s,
        };
        match inner {
            Spec::Range(r) => {
                let r = r.trim();
                if r == "*" || r.is_empty() {
                    return true;
                }
                let version = match &node.kind {
                    Kind::Link { target } => self.link_version(target),
                    _ => node.version.clone(),
                };
                match (&edge.range, version) {
                    (Some(range), Some(v)) => range.satisfies(&v),
                    _ => false,
                }
            }
            Spec::Tag(_) => node
                .resolved()
                .is_some_and(|r| !r.starts_with("file:") && !crate::git::is_git_resolved(r)),
            Spec::Git(g) => {
                node.resolved().is_some_and(|r| g.accepts_resolved(r))
                    && g.range.as_deref().is_none_or(|r| {
                        node.version
                            .as_ref()
                            .is_some_and(|v| crate::semver_npm::satisfies(&v.to_string(), r))
                    })
            }
            Spec::Tarball(url) => node.resolved() == Some(url.as_str()),
            Spec::LocalTarball(p) => {
                node.resolved().and_then(|r| r.strip_prefix("file:"))
                    == Some(p.trim_start_matches("file:"))
            }
            Spec::Directory(p) | Spec::Link(p) => match &node.kind {
                Kind::Link { target } => *target == normalize(p),
                _ => false,
            },
            Spec::Workspace(_) => matches!(node.kind, Kind::Link { .. }),
            Spec::Alias { .. } => false,
        }
    }

    fn link_version(&self, target: &str) -> Option<semver::Version> {
        self.nodes
            .iter()
            .find(|n| matches!(&n.kind, Kind::Workspace { dir } if dir == target))
            .and_then(|n| n.version.clone())
    }

    /// `node.satisfies(edge)`.
    pub fn satisfies(&self, n: Id, e: ERef) -> bool {
        self.satisfied_by(e, n)
    }

    /// Edges that resolve to `id` (from nodes in the same tree), in the order of their nodes'
    /// creation.
    pub fn edges_in(&self, id: Id) -> impl Iterator<Item = ERef> + '_ {
        let name = self.nodes[id].name_id;
        let virtual_ = self.nodes[id].virtual_;
        let froms = self.dependents.get(&name).map_or(&[][..], Vec::as_slice);
        // Virtual roots are not in `dependents` (see `add`). One resolves only to its own
        // children (it has no parent), so the one that can reach `id` is `id`'s parent.
        let vr =
            (self.nodes[id].parent).filter(|&p| matches!(self.nodes[p].kind, Kind::Virtual { .. }));
        let from_vr = vr
            .filter(|&r| self.resolve_id(r, name) == Some(id))
            .and_then(|r| self.edge_named_id(r, name));
        let split = vr.map_or(froms.len(), |r| {
            froms.iter().position(|&f| f > r).unwrap_or(froms.len())
        });
        let (before, after) = froms.split_at(split);
        self.edges_in_from(before, id, name, virtual_)
            .chain(from_vr)
            .chain(self.edges_in_from(after, id, name, virtual_))
    }

    /// The edges named `name` of nodes `froms` (listed once or more each, in a row) that
    /// resolve to `id`, from nodes in `id`'s kind of tree.
    fn edges_in_from<'g>(
        &'g self,
        froms: &'g [Id],
        id: Id,
        name: NameId,
        virtual_: bool,
    ) -> impl Iterator<Item = ERef> + 'g {
        let mut last = usize::MAX;
        froms.iter().filter_map(move |&f| {
            // Edges never cross between a virtual root and the project's tree.
            if f == last || self.nodes[f].virtual_ != virtual_ {
                return None;
            }
            last = f;
            if self.resolve_id(f, name) != Some(id) {
                return None;
            }
            self.edge_named_id(f, name)
        })
    }

    /// Nodes named `name`, in creation order.
    pub fn named(&self, name: &str) -> Vec<Id> {
        (self.names.get(name))
            .and_then(|id| self.by_name.get(id))
            .cloned()
            .unwrap_or_default()
    }

    /// arborist's `Node.matches`: the same package (links by target, else integrity, resolved,
    /// or name and version).
    pub fn matches(&self, a: Id, b: Id) -> bool {
        if a == b {
            return true;
        }
        let (x, y) = (&self.nodes[a], &self.nodes[b]);
        if x.name != y.name {
            return false;
        }
        if let Kind::Link { target } = &x.kind {
            return matches!(&y.kind, Kind::Link { target: t } if t == target);
        }
        if let (Some(i), Some(j)) = (x.integrity(), y.integrity()) {
            return i == j;
        }
        if let (Some(i), Some(j)) = (x.resolved(), y.resolved()) {
            return i == j;
        }
        !x.package_name().is_empty()
            && x.package_name() == y.package_name()
            && x.version.is_some()
            && x.version == y.version
    }

    /// arborist's `canReplaceWith`: every dependent of `this` from outside its own dependency
    /// set would be happy with `other`.
    pub fn can_replace_with(&self, this: Id, other: Id, ignore_peers: &[String]) -> bool {
        let (t, o) = (&self.nodes[this], &self.nodes[other]);
        if t.name_id != o.name_id || t.package_name() != o.package_name() {
            return false;
        }
        // Override sets matter only for a node with dependencies of its own.
        if !t.edges.is_empty() && t.rule != o.rule {
            return false;
        }
        // The dependents that would go with `this` (its dependency set), gathered only when an
        // edge is not met by `other` anyway: the common case needs none.
        let mut dep_set: Option<Vec<Id>> = None;
        for e in self.edges_in(this) {
            let edge = self.edge(e);
            if !self.is_top(this)
                && self.nodes[e.from].parent == t.parent
                && edge.peer()
                && ignore_peers.contains(&self.nodes[e.from].name)
            {
                continue;
            }
            if self.satisfied_by(e, other) {
                continue;
            }
            let dep_set = dep_set.get_or_insert_with(|| {
                self.gather_dep_set(&[this], |g, e| g.to(e) != Some(this) && g.valid(e))
            });
            if !dep_set.contains(&e.from) {
                return false;
            }
        }
        true
    }

    /// arborist's `canDedupe`: can `id` go, because whoever depends on it is happy with what
    /// they would find above it?
    pub fn can_dedupe(&self, id: Id, prefer_dedupe: bool) -> bool {
        let Some(rp) = self.resolve_parent(id) else {
            return false;
        };
        let Some(rpp) = self.resolve_parent(rp) else {
            return false;
        };
        if self.edges_in(id).next().is_none() {
            return true;
        }
        let Some(other) = self.resolve(rpp, &self.nodes[id].name) else {
            return false;
        };
        if self.matches(other, id) {
            return true;
        }
        if !self.can_replace_with(id, other, &[]) {
            return false;
        }
        let order = match (&self.nodes[other].version, &self.nodes[id].version) {
            (Some(a), Some(b)) => Some(semver_npm::cmp(a, b)),
            _ => None,
        };
        // npm 11: the same version, or a greater one unless this one is an override's pick.
        prefer_dedupe
            || order == Some(std::cmp::Ordering::Equal)
            || (!self.overridden(id) && order == Some(std::cmp::Ordering::Greater))
    }

    /// Whether `id`'s version is what an override rule for its own name asked for.
    fn overridden(&self, id: Id) -> bool {
        let n = &self.nodes[id];
        match (&self.overrides, n.rule) {
            (Some(o), Some(r)) => {
                let rule = &o.rules[r];
                rule.parent.is_some()
                    && rule.name == n.name
                    && !rule.value.is_empty()
                    && n.version.as_ref().is_some_and(|v| {
                        Range::parse(&rule.value).is_some_and(|range| range.satisfies(v))
                    })
            }
            _ => false,
        }
    }

    /// arborist's gather-dep-set: the nodes in `start` and what they depend on (through edges
    /// passing `filter`), less those that something outside the set also depends on.
    pub fn gather_dep_set(&self, start: &[Id], filter: impl Fn(&Graph, ERef) -> bool) -> Vec<Id> {
        let mut deps: Vec<Id> = Vec::new();
        let mut seen: FxHashSet<Id> = FxHashSet::default();
        for &s in start {
            if seen.insert(s) {
                deps.push(s);
            }
        }
        let mut i = 0;
        while i < deps.len() {
            let n = deps[i];
            for e in self.edge_refs(n) {
                if let Some(to) = self.to(e)
                    && filter(self, e)
                    && seen.insert(to)
                {
                    deps.push(to);
                }
            }
            i += 1;
        }
        let mut changed = true;
        while changed && !deps.is_empty() {
            changed = false;
            let mut j = 0;
            while j < deps.len() {
                let d = deps[j];
                let outside = self
                    .edges_in(d)
                    .any(|e| !seen.contains(&e.from) && filter(self, e));
                if outside {
                    seen.remove(&d);
                    deps.remove(j);
                    changed = true;
                } else {
                    j += 1;
                }
            }
        }
        deps
    }

    /// arborist's peer-entry-sets: for each edge that brings `node`'s peer group in from outside
    /// (a non-peer edge, or any edge from a top), the set of peers it brings.
    pub fn peer_entry_sets(&self, node: Id) -> Vec<(ERef, Vec<Id>)> {
        let mut union: Vec<Id> = vec![node];
        let mut i = 0;
        while i < union.len() {
            let n = union[i];
            for e in self.edge_refs(n) {
                if self.edge(e).peer()
                    && self.valid(e)
                    && let Some(to) = self.to(e)
                    && !union.contains(&to)
                {
                    union.push(to);
                }
            }
            for e in self.edges_in(n) {
                if self.edge(e).peer() && self.valid(e) && !union.contains(&e.from) {
                    union.push(e.from);
                }
            }
            i += 1;
        }
        let mut out: Vec<(ERef, Vec<Id>)> = Vec::new();
        for &peer in &union {
            for e in self.edges_in(peer) {
                if !self.valid(e) {
                    continue;
                }
                if !self.edge(e).peer() || self.is_top(e.from) {
                    let mut sub = vec![peer];
                    let mut k = 0;
                    while k < sub.len() {
                        let p = sub[k];
                        for pe in self.edge_refs(p) {
                            if self.edge(pe).peer()
                                && self.valid(pe)
                                && let Some(to) = self.to(pe)
                                && !sub.contains(&to)
                            {
                                sub.push(to);
                            }
                        }
                        k += 1;
                    }
                    if sub.contains(&node) {
                        out.retain(|(x, _)| *x != e);
                        out.push((e, sub));
                    }
                }
            }
        }
        out
    }

    /// The deepest place a dependency `name` of `start` could go: `start`, unless it has a peer
    /// dependency on that name, then up.
    pub fn deepest_nesting_target(&self, start: Id, name: Option<&str>) -> Id {
        let mut cur = start;
        loop {
            if self.is_project_root(cur) {
                return cur;
            }
            let peer = name
                .and_then(|n| self.edge_named(cur, n))
                .is_some_and(|e| self.edge(e).peer());
            if !peer {
                return cur;
            }
            match self.resolve_parent(cur) {
                Some(p) => cur = p,
                None => return cur,
            }
        }
    }

    /// `node_modules/a/node_modules/b`, a workspace's folder, or "" for the root.
    pub fn location(&self, id: Id) -> String {
        // The names from `id` up to the first node that has no parent folder of its own (the
        // root, a virtual root, a workspace's folder, or a package not in any tree yet).
        let mut names: Vec<&str> = Vec::new();
        let mut cur = id;
        let prefix: &str = loop {
            let n = &self.nodes[cur];
            match &n.kind {
                Kind::Root | Kind::Virtual { .. } => break "",
                Kind::Workspace { dir } => break dir,
                _ => match n.parent {
                    Some(p) => {
                        names.push(&n.name);
                        cur = p;
                    }
                    None => break "",
                },
            }
        };
        let len = prefix.len() + names.iter().map(|n| n.len() + 14).sum::<usize>();
        let mut loc = String::with_capacity(len);
        loc.push_str(prefix);
        for name in names.iter().rev() {
            if !loc.is_empty() {
                loc.push('/');
            }
            loc.push_str("node_modules/");
            loc.push_str(name);
        }
        loc
    }

    /// arborist's depth: 0 for tops, else one more than the parent's.
    pub fn depth(&self, id: Id) -> usize {
        let mut d = 0;
        let mut cur = id;
        while let Some(p) = self.nodes[cur].parent {
            d += 1;
            cur = p;
        }
        d
    }

    pub fn pkg_id(&self, id: Id) -> String {
        let n = &self.nodes[id];
        match &n.kind {
            Kind::Package {
                real_name, version, ..
            } => format!("{real_name}@{version}"),
            Kind::Root => {
                if n.manifest.version.is_empty() {
                    "the root project".to_string()
                } else {
                    format!("{}@{}", n.manifest.name, n.manifest.version)
                }
            }
            _ => format!("{}@{}", n.name, n.manifest.version),
        }
    }
}

/// `./a/b/` → `a/b`.
pub fn normalize(p: &str) -> String {
    p.trim_start_matches("file:")
        .trim_start_matches("./")
        .trim_end_matches('/')
        .to_string()
}
