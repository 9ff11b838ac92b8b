//! arborist's buildIdealTree loop: a queue of nodes sorted by depth then path; for each, the
//! edges that are missing or invalid ("problem edges") get a node loaded with its peer set into
//! a virtual root, then placed (place.rs); what a placement disturbed is queued again.
//! Workspace folders and `file:` directory targets are processed after the root's tree, as npm
//! does when it resolves links.
//!
//! Must not: pick versions itself (the `Source` does, with npm-pick-manifest's rules) or touch
//! the project's files.

use rustc_hash::{FxHashMap, FxHashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::registry::packument::Manifest;
use crate::spec::Spec;
use crate::tree::EdgeKind;

use super::collate::{locale_cmp, sort_key};
use super::graph::{ERef, Graph, Id, Kind, LoadError, NewNode, normalize};
use super::overrides::Overrides;
use super::place::{self, Can, Options, Placement};

/// Where manifests come from.
pub trait Source: Send + Sync {
    /// The manifest npm would pick for dependency `name` with `spec` (a range, tag or alias),
    /// or why there is none.
    fn manifest(
        &self,
        name: &str,
        spec: &Spec,
    ) -> impl Future<Output = Result<Arc<Manifest>, LoadError>> + Send;
    /// The package.json of a local directory (relative to the project).
    fn local_manifest(&self, dir: &str) -> Result<Arc<Manifest>, String>;
    /// A hint that `name` will be needed soon.
    fn prefetch(&self, _name: &str, _spec: &Spec) {}
}

/// The build failed: npm's ERESOLVE, with npm's kind of explanation. (A dependency that could
/// not be loaded is not an error here: it is placed as a failed node, and the caller decides.)
#[derive(Debug)]
pub enum BuildError {
    Eresolve(String),
}

/// Called with each node placed into the project's tree.
pub type PlacedHook<'s> = Box<dyn FnMut(&Graph, Id) + Send + 's>;

type Step<'f> = Pin<Box<dyn Future<Output = Result<Id, BuildError>> + Send + 'f>>;

pub struct Builder<'s, S: Source> {
    pub g: Graph,
    src: &'s S,
    opts: Options,
    queue: std::collections::BTreeSet<(usize, Vec<u8>, Id)>,
    queued: FxHashSet<Id>,
    seen: FxHashSet<Id>,
    peer_set_source: FxHashMap<Id, Id>,
    virtual_roots: FxHashMap<Id, Id>,
    pub load_failures: Vec<Id>,
    link_nodes: Vec<Id>,
    link_targets: FxHashMap<String, Id>,
    manifests: FxHashMap<String, Result<Arc<Manifest>, LoadError>>,
    /// npm's "overriding peer dependency" warnings.
    pub warnings: Vec<String>,
    /// Called with each node placed into the project's tree (to start its download).
    pub on_placed: Option<PlacedHook<'s>>,
}

impl<'s, S: Source> Builder<'s, S> {
    /// A tree with just the root (package.json as `root`, raw JSON for `overrides`) and its
    /// workspace members (folder relative to the project, manifest).
    pub fn new(
        src: &'s S,
        root: Arc<Manifest>,
        root_json: &serde_json::Value,
        workspaces: Vec<(String, Arc<Manifest>)>,
        opts: Options,
        legacy_peer_deps: bool,
    ) -> Self {
        let mut g = Graph::new(Overrides::from_root(root_json), legacy_peer_deps);
        let rule = g.overrides.as_ref().map(|_| 0);
        g.add(NewNode {
            name: root.name.clone(),
            kind: Kind::Root,
            manifest: root,
            rule,
            dev: true,
        });
        let mut b = Builder {
            g,
            src,
            opts,
            queue: Default::default(),
            queued: FxHashSet::default(),
            seen: FxHashSet::default(),
            peer_set_source: FxHashMap::default(),
            virtual_roots: FxHashMap::default(),
            load_failures: vec![],
            link_nodes: vec![],
            link_targets: FxHashMap::default(),
            manifests: FxHashMap::default(),
            warnings: vec![],
            on_placed: None,
        };
        for (dir, m) in workspaces {
            let name = m.name.clone();
            let target = b.add_link_target(&dir, m, true);
            let link = b.g.add(NewNode {
                name: name.clone(),
                kind: Kind::Link {
                    target: dir.clone(),
                },
                manifest: b.g.nodes[target].manifest.clone(),
                rule,
                dev: false,
            });
            b.g.set_parent(link, 0);
            b.g.add_workspace_edge(0, &name, &dir);
        }
        b
    }

    fn add_link_target(&mut self, dir: &str, m: Arc<Manifest>, dev: bool) -> Id {
        if let Some(&t) = self.link_targets.get(dir) {
            return t;
        }
        let rule = self.g.overrides.as_ref().map(|_| 0);
        let t = self.g.add(NewNode {
            name: m.name.clone(),
            kind: Kind::Workspace {
                dir: dir.to_string(),
            },
            manifest: m,
            rule,
            dev,
        });
        self.g.set_fs_parent(t, 0);
        self.link_targets.insert(dir.to_string(), t);
        t
    }

    /// Queue a node, keyed by depth then path in npm's order. (A node keeps its place in the
    /// tree while queued: a replacement takes over the replaced node's path.)
    fn push(&mut self, id: Id) {
        if self.queued.insert(id) {
            let key = (self.g.depth(id), sort_key(&sort_path(&self.g, id)), id);
            self.queue.insert(key);
        }
    }

    fn pop(&mut self) -> Option<Id> {
        let (_, _, id) = self.queue.pop_first()?;
        self.queued.remove(&id);
        Some(id)
    }

    /// Build the whole tree.
    pub async fn build(&mut self) -> Result<(), BuildError> {
        self.push(0);
        loop {
            let Some(node) = self.pop() else {
                self.resolve_links();
                if self.queue.is_empty() {
                    return Ok(());
                }
                continue;
            };
            if self.seen.contains(&node) || !self.g.in_tree(node) {
                continue;
            }
            self.seen.insert(node);
            self.step(node).await?;
        }
    }

    fn resolve_links(&mut self) {
        for link in std::mem::take(&mut self.link_nodes) {
            if !self.g.in_tree(link) {
                continue;
            }
            // A folder outside the project is somebody else's: npm leaves its dependencies
            // alone.
            if let Kind::Link { target } = &self.g.nodes[link].kind
                && !target.starts_with("../")
                && !target.starts_with('/')
                && let Some(&t) = self.link_targets.get(target)
                && !self.seen.contains(&t)
            {
                self.push(t);
            }
        }
    }

    fn problem_edges(&self, node: Id) -> Vec<ERef> {
        let g = &self.g;
        let manifest = (!g.is_root_or_workspace(node)).then(|| &g.nodes[node].manifest);
        let mut out = Vec::new();
        for e in g.edge_refs(node) {
            let edge = g.edge(e);
            if manifest.is_some_and(|m| m.bundles(&edge.name)) {
                continue;
            }
            match g.to(e) {
                Some(to) if self.load_failures.contains(&to) => {}
                None => {
                    if edge.kind != EdgeKind::PeerOptional {
                        out.push(e);
                    }
                }
                Some(_) => {
                    if !g.valid(e) {
                        out.push(e);
                    }
                }
            }
        }
        out
    }

    async fn step(&mut self, node: Id) -> Result<(), BuildError> {
        let peer_source = self.peer_set_source.get(&node).copied().unwrap_or(node);
        let mut tasks: Vec<(ERef, Id)> = Vec::new();
        for e in self.problem_edges(node) {
            if self.g.peer_conflicted.contains(&e) {
                continue;
            }
            let peer = self.g.edge(e).peer();
            let source = if peer { peer_source } else { node };
            let vr = self.virtual_root(source, true);
            let name = self.g.edge(e).name.clone();
            let vr_dep = self
                .g
                .edge_named(vr, &name)
                .filter(|&ve| self.g.valid(ve))
                .and_then(|ve| self.g.to(ve));
            let hoistable = || {
                (self.g.edge(e).kind == EdgeKind::PeerOptional)
                    .then(|| self.find_hoistable(e))
                    .flatten()
            };
            let dep = match vr_dep
                .filter(|&d| self.g.satisfies(d, e))
                .or_else(hoistable)
            {
                Some(d) => d,
                None => {
                    let mut required = FxHashSet::from_iter([e.from]);
                    self.node_from_edge(e, peer.then_some(vr), None, &mut required)
                        .await?
                }
            };
            tasks.push((e, dep));
        }
        tasks.sort_by(|a, b| locale_cmp(&self.g.edge(a.0).name, &self.g.edge(b.0).name));
        for (e, dep) in tasks {
            let p = place::place_dep(&mut self.g, e, dep, self.opts)
                .map_err(|c| BuildError::Eresolve(self.explain(c.edge, c.dep)))?;
            self.visit(&p);
        }
        let links: Vec<Id> = self
            .g
            .edge_refs(node)
            .filter_map(|e| self.g.to(e))
            .filter(|&t| matches!(self.g.nodes[t].kind, Kind::Link { .. }))
            .collect();
        self.link_nodes.extend(links);
        Ok(())
    }

    /// An optional peer met by a package already somewhere below the dependent's parent
    /// (breadth-first): npm 11 takes it rather than loading a new one.
    fn find_hoistable(&self, e: ERef) -> Option<Id> {
        let g = &self.g;
        let root = g.resolve_parent(e.from).unwrap_or(e.from);
        let name = &g.edge(e).name;
        let mut queue: std::collections::VecDeque<Id> = g.children_by_name(root).into();
        while let Some(n) = queue.pop_front() {
            if g.nodes[n].name == *name && g.satisfies(n, e) {
                return Some(n);
            }
            queue.extend(g.children_by_name(n));
        }
        None
    }

    fn visit(&mut self, p: &Placement) {
        for &(e, dep) in &p.warnings {
            let w = self.explain(e, dep);
            self.warnings.push(w);
        }
        if let Some(placed) = p.placed {
            if self.g.nodes[placed].errors() {
                self.load_failures.push(placed);
            }
            for ei in self.g.edges_in(placed).collect::<Vec<_>>() {
                if ei == p.edge || self.g.peer_conflicted.contains(&ei) || self.g.valid(ei) {
                    continue;
                }
                // npm 11 (with `save`, its default) looks again at a dependent it has already
                // seen whose edge this placement broke, for OK and REPLACE alike.
                if matches!(p.how, Some(Can::Ok | Can::Replace)) {
                    self.seen.remove(&ei.from);
                    self.push(ei.from);
                }
            }
            self.push(placed);
            for &n in &p.need_evaluation {
                self.seen.remove(&n);
                self.push(n);
            }
            for e in self.problem_edges(placed) {
                if let Some(spec) = self.g.edge(e).parsed() {
                    self.src.prefetch(&self.g.edge(e).name, spec);
                }
            }
            if let Some(cb) = self.on_placed.as_mut() {
                cb(&self.g, placed);
            }
        }
        for c in &p.children {
            self.visit(c);
        }
    }

    fn virtual_root(&mut self, source: Id, reuse: bool) -> Id {
        if reuse && let Some(&vr) = self.virtual_roots.get(&source) {
            return vr;
        }
        let s = &self.g.nodes[source];
        let dev = self.g.is_top(source) && !matches!(s.kind, Kind::Virtual { .. });
        let vr = self.g.add(NewNode {
            name: s.name.clone(),
            kind: Kind::Virtual { source },
            manifest: s.manifest.clone(),
            rule: s.rule,
            dev,
        });
        self.virtual_roots.insert(source, vr);
        vr
    }

    /// Load the node `edge` asks for into a virtual root (the given one, or a new one for the
    /// edge's dependent), with its peers beside it (arborist's #nodeFromEdge).
    fn node_from_edge<'f>(
        &'f mut self,
        edge: ERef,
        parent: Option<Id>,
        second: Option<ERef>,
        required: &'f mut FxHashSet<Id>,
    ) -> Step<'f> {
        Box::pin(async move {
            let parent = match parent {
                Some(p) => p,
                None => self.virtual_root(edge.from, false),
            };
            let name = self.g.edge(edge).name.clone();
            let first = self.node_from_spec(&name, edge, parent).await?;
            let mut second_node = None;
            if let Some(se) = second
                && !self.g.valid(se)
            {
                second_node = Some(self.node_from_spec(&name, se, parent).await?);
            }
            let node = match second_node {
                Some(s) if self.g.valid(edge) => s,
                _ => first,
            };
            self.g.set_parent(node, parent);
            let req = |b: &Self, e: ERef, required: &FxHashSet<Id>| {
                required.contains(&e.from) && b.g.edge(e).kind != EdgeKind::PeerOptional
            };
            if req(self, edge, required) || second.is_some_and(|se| req(self, se, required)) {
                required.insert(node);
            }
            let src = match self.g.nodes[parent].kind {
                Kind::Virtual { source } => source,
                _ => parent,
            };
            self.peer_set_source.insert(node, src);
            self.load_peer_set(node, required).await
        })
    }

    async fn node_from_spec(
        &mut self,
        name: &str,
        edge: ERef,
        parent: Id,
    ) -> Result<Id, BuildError> {
        // The edge is read in place, not cloned (its parsed range with it) for every node.
        let e = self.g.edge(edge);
        let rule = e.rule.or(self.g.nodes[parent].rule);
        let spec = match e.parsed() {
            Some(s) => s.clone(),
            None => {
                let why = match Spec::parse(name, &e.spec) {
                    Err(err) => err.to_string(),
                    Ok(_) => format!("`{name}@{}` is not a valid dependency spec", e.spec),
                };
                return Ok(self.failed(name, parent, rule, why.into()));
            }
        };
        if let Spec::Directory(dir) | Spec::Link(dir) = &spec {
            let dir = normalize(dir);
            let m = match self.src.local_manifest(&dir) {
                Ok(m) => m,
                Err(err) => return Ok(self.failed(name, parent, rule, err.into())),
            };
            self.add_link_target(&dir, m.clone(), false);
            let link = self.g.add(NewNode {
                name: name.to_string(),
                kind: Kind::Link { target: dir },
                manifest: m,
                rule,
                dev: false,
            });
            self.g.set_parent(link, parent);
            self.link_nodes.push(link);
            return Ok(link);
        }
        if let Some(ws_link) = self.g.resolve(0, name)
            && let Kind::Link { target } = &self.g.nodes[ws_link].kind
            && self
                .link_targets
                .get(target)
                .is_some_and(|&t| self.g.is_workspace(t))
            && self.g.satisfied_by(edge, ws_link)
        {
            return Ok(ws_link);
        }
        let key = format!("{name}@{}", self.g.edge(edge).spec);
        let got = match self.manifests.get(&key) {
            Some(r) => r.clone(),
            None => {
                let r = self.src.manifest(name, &spec).await;
                self.manifests.insert(key, r.clone());
                r
            }
        };
        match got {
            Ok(m) => {
                let real_name = if m.name.is_empty() {
                    name.to_string()
                } else {
                    m.name.clone()
                };
                let integrity = m.dist.integrity.clone().or_else(|| {
                    crate::store::integrity::Sri::parse(None, m.dist.shasum.as_deref()).strongest()
                });
                let n = self.g.add(NewNode {
                    name: name.to_string(),
                    kind: Kind::Package {
                        real_name,
                        version: m.version.clone(),
                        resolved: m.dist.tarball.clone(),
                        integrity,
                    },
                    manifest: m,
                    rule,
                    dev: false,
                });
                self.g.set_parent(n, parent);
                Ok(n)
            }
            Err(err) => Ok(self.failed(name, parent, rule, err)),
        }
    }

    fn failed(&mut self, name: &str, parent: Id, rule: Option<usize>, error: LoadError) -> Id {
        let n = self.g.add(NewNode {
            name: name.to_string(),
            kind: Kind::Failed { error },
            manifest: Arc::new(Manifest {
                name: name.to_string(),
                ..Default::default()
            }),
            rule,
            dev: false,
        });
        self.g.set_parent(n, parent);
        self.load_failures.push(n);
        n
    }

    /// Load `node`'s peers (and theirs) beside it in its virtual root, preferring versions the
    /// virtual root's own dependencies accept (arborist's #loadPeerSet).
    fn load_peer_set<'f>(&'f mut self, node: Id, required: &'f mut FxHashSet<Id>) -> Step<'f> {
        Box::pin(async move {
            let mut peer_edges: Vec<ERef> = self
                .g
                .edge_refs(node)
                .filter(|&e| self.g.edge(e).peer() && !(self.g.valid(e) && self.g.to(e).is_some()))
                .collect();
            peer_edges.sort_by(|a, b| locale_cmp(&self.g.edge(*a).name, &self.g.edge(*b).name));
            for e in peer_edges {
                let Some(parent) = self.g.nodes[node].parent else {
                    break;
                };
                if self.g.valid(e) && self.g.to(e).is_some() {
                    continue;
                }
                let name = self.g.edge(e).name.clone();
                let parent_edge = self.g.edge_named(parent, &name);
                let source = match self.g.nodes[parent].kind {
                    Kind::Virtual { source } => source,
                    _ => parent,
                };
                let is_mine = self.g.is_root_or_workspace(source);
                let conflict_ok = self.opts.force || !is_mine && !self.opts.strict_peer_deps;
                if self.g.to(e).is_none() {
                    match parent_edge {
                        None => {
                            self.node_from_edge(e, Some(parent), None, required).await?;
                            continue;
                        }
                        Some(pe) => {
                            let dep = self
                                .node_from_edge(pe, Some(parent), Some(e), required)
                                .await?;
                            if self.g.valid(e) {
                                continue;
                            }
                            if conflict_ok || !required.contains(&dep) {
                                self.g.peer_conflicted.insert(e);
                                continue;
                            }
                            return Err(BuildError::Eresolve(self.explain(e, dep)));
                        }
                    }
                }
                let Some(current) = self.g.to(e) else {
                    continue;
                };
                let dep = self.node_from_edge(e, None, None, required).await?;
                if self.g.can_replace_with(current, dep, &[]) {
                    self.node_from_edge(e, Some(parent), None, required).await?;
                    continue;
                }
                if conflict_ok || !required.contains(&e.from) {
                    continue;
                }
                return Err(BuildError::Eresolve(self.explain(e, dep)));
            }
            Ok(node)
        })
    }

    /// npm's ERESOLVE explanation: what was found, who wants it, and what could not be had.
    fn explain(&self, edge: ERef, dep: Id) -> String {
        let g = &self.g;
        let e = g.edge(edge);
        let mut out = format!("While resolving: {}\n", g.pkg_id(0));
        // The conflicting peer: a peer of `dep` that what is in the tree does not satisfy.
        let mut conflict: Option<(ERef, Id)> = None;
        for pe in g.edge_refs(dep) {
            if !g.edge(pe).peer() {
                continue;
            }
            let name = &g.edge(pe).name;
            if let Some(cur) = g.resolve(edge.from, name)
                && !g.satisfied_by(pe, cur)
            {
                conflict = Some((pe, cur));
                break;
            }
        }
        let (want_edge, found) = match conflict {
            Some((pe, cur)) => (pe, Some(cur)),
            None => (edge, g.resolve(edge.from, &e.name)),
        };
        if let Some(f) = found {
            out.push_str(&format!("Found: {}\n{}\n", g.pkg_id(f), g.location(f)));
            for ei in g.edges_in(f) {
                out.push_str(&format!("  {}\n", self.describe_edge(ei)));
            }
        }
        out.push_str(&format!(
            "\nCould not resolve dependency:\n{}\n",
            self.describe_edge(want_edge)
        ));
        if want_edge != edge {
            out.push_str(&format!("  {}\n", self.describe_edge(edge)));
        }
        out.push_str(
            "\nFix the upstream dependency conflict, or set legacy-peer-deps=true (or force=true) \
             in .npmrc to accept an incorrect (and potentially broken) dependency resolution.",
        );
        out
    }

    fn describe_edge(&self, e: ERef) -> String {
        let g = &self.g;
        let edge = g.edge(e);
        let kind = match edge.kind {
            EdgeKind::Peer => "peer ",
            EdgeKind::PeerOptional => "peerOptional ",
            EdgeKind::Dev => "dev ",
            EdgeKind::Optional => "optional ",
            EdgeKind::Prod => "",
        };
        let from = match g.nodes[e.from].kind {
            Kind::Root => "the root project".to_string(),
            Kind::Virtual { source: 0 } => "the root project".to_string(),
            _ => g.pkg_id(e.from),
        };
        format!("{kind}{}@\"{}\" from {from}", edge.name, edge.spec)
    }
}

/// The path arborist sorts the queue by, relative to the project ("" for the root).
fn sort_path(g: &Graph, id: Id) -> String {
    let loc = g.location(id);
    if loc.is_empty() {
        loc
    } else {
        format!("/{loc}")
    }
}
