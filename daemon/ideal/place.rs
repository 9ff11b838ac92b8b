//! Where a dependency goes, as arborist's PlaceDep and CanPlaceDep decide it: walk up from the
//! deepest allowed spot, ask at each level whether the dependency *and its peer set* can go
//! there (OK, KEEP what is there, REPLACE it, or CONFLICT), stop at the first conflict, place at
//! the last good level; then prune what the placement made redundant and place the peers
//! beside it.
//!
//! Must not: fetch anything (the dependency and its peers arrive loaded in a virtual root).

use std::cmp::Ordering;

use super::collate::locale_cmp;
use super::graph::{ERef, Graph, Id, Kind, NewNode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Can {
    Ok,
    Keep,
    Replace,
    Conflict,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub prefer_dedupe: bool,
    pub strict_peer_deps: bool,
    pub force: bool,
    /// npm's install-strategy=nested (no hoisting) or shallow (only direct dependencies at the top).
    pub nested: bool,
    pub shallow: bool,
}

/// One CanPlaceDep: can `dep` go into `target` for `edge`?
struct Check {
    dep: Id,
    target: Id,
    edge: ERef,
    parent: Option<usize>,
    peer_path: Vec<Id>,
    prefer_dedupe: bool,
    can_place: Can,
    can_place_self: Option<Can>,
    peers_memo: Option<Can>,
    children: Vec<usize>,
}

/// The checks of one placement tree, in an arena (parents are indexes).
#[derive(Default)]
pub struct Checks {
    all: Vec<Check>,
}

impl Checks {
    fn top(&self, mut c: usize) -> usize {
        while let Some(p) = self.all[c].parent {
            c = p;
        }
        c
    }

    fn deepest(&self, g: &Graph, c: usize) -> Id {
        let name = &g.edge(self.all[c].edge).name;
        let start = match self.all[c].parent {
            Some(p) => self.deepest(g, p),
            None => self.all[c].edge.from,
        };
        g.deepest_nesting_target(start, Some(name))
    }

    /// A check of `dep` into `target` for `edge` (`what`), under `parent`'s.
    fn new_check(
        &mut self,
        g: &Graph,
        what: (Id, Id, ERef),
        parent: Option<usize>,
        peer_path: Vec<Id>,
        prefer_dedupe: bool,
    ) -> usize {
        let (dep, target, edge) = what;
        let id = self.all.len();
        self.all.push(Check {
            dep,
            target,
            edge,
            parent,
            peer_path,
            prefer_dedupe: prefer_dedupe || g.edge(edge).peer(),
            can_place: Can::Conflict,
            can_place_self: None,
            peers_memo: None,
            children: vec![],
        });
        let can = self.check_can_place(g, id);
        self.all[id].can_place = can;
        if self.all[id].can_place_self.is_none() {
            self.all[id].can_place_self = Some(can);
        }
        id
    }

    fn check_can_place(&mut self, g: &Graph, c: usize) -> Can {
        let Check {
            dep, target, edge, ..
        } = self.all[c];
        let name = g.edge_name(edge);
        let current = g.child_by_id(target, name);
        if g.nodes[dep].errors() {
            return if current.is_some() {
                Can::Replace
            } else {
                Can::Ok
            };
        }
        let target_edge = g.edge_named_id(target, name);
        if let Some(te) = target_edge
            && g.edge(te).peer()
            && !g.is_top(target)
        {
            return Can::Conflict;
        }
        if current.is_none()
            && let Some(te) = target_edge
            && !g.satisfies(dep, te)
            && te != edge
        {
            return Can::Conflict;
        }
        match current {
            Some(cur) => self.check_current(g, c, cur),
            None => self.check_no_current(g, c),
        }
    }

    fn check_current(&mut self, g: &Graph, c: usize, current: Id) -> Can {
        let Check {
            dep,
            target,
            edge,
            prefer_dedupe,
            ..
        } = self.all[c];
        let edge_override = !g.satisfies(dep, edge);
        if g.matches(dep, current) && (g.satisfies(current, edge) || edge_override) {
            return Can::Keep;
        }
        let try_replace = match (&g.nodes[current].version, &g.nodes[dep].version) {
            (Some(cur), Some(new)) => crate::semver_npm::cmp(new, cur).is_ge(),
            _ => false,
        };
        if try_replace && g.can_replace_with(current, dep, &[]) {
            let cpp = self.can_place_peers(g, c, Can::Replace);
            if cpp != Can::Conflict {
                return cpp;
            }
        }
        if g.satisfies(current, edge) {
            return Can::Keep;
        }
        if prefer_dedupe && !try_replace && g.can_replace_with(current, dep, &[]) {
            let cpp = self.can_place_peers(g, c, Can::Replace);
            if cpp != Can::Conflict {
                return cpp;
            }
        }
        if target != self.deepest(g, c) {
            return Can::Conflict;
        }
        let peer = g.edge(edge).peer();
        if !peer && target == edge.from {
            return self.can_place_peers(g, c, Can::Replace);
        }
        if self.all[c].parent.is_none() && !peer {
            return Can::Conflict;
        }
        let entry_edge = self.all[self.top(c)].edge;
        let vr = g.nodes[dep].parent;
        let vr_names: Vec<String> = vr
            .map(|v| {
                (g.nodes[v].children.iter())
                    .map(|&c| g.nodes[c].name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut can_replace = true;
        for (ee, current_peers) in g.peer_entry_sets(current) {
            if ee == edge || ee == entry_edge {
                continue;
            }
            let Some(entry_node) = g.to(ee) else { continue };
            let entry_rep = vr.and_then(|v| g.child(v, &g.nodes[entry_node].name));
            if let Some(rep) = entry_rep
                && g.can_replace_with(entry_node, rep, &vr_names)
            {
                continue;
            }
            let mut can_clobber = entry_rep.is_none();
            if entry_rep.is_none() {
                let mut walk = vec![entry_node];
                let mut i = 0;
                'outer: while i < walk.len() {
                    let cp = walk[i];
                    i += 1;
                    for pe in g.edge_refs(cp) {
                        if !g.edge(pe).peer() || !g.valid(pe) {
                            continue;
                        }
                        let rep = vr.and_then(|v| g.child(v, &g.edge(pe).name));
                        match rep {
                            None => {
                                if let Some(to) = g.to(pe)
                                    && !walk.contains(&to)
                                {
                                    walk.push(to);
                                }
                            }
                            Some(r) => {
                                if !g.satisfies(r, pe) {
                                    can_clobber = false;
                                    break 'outer;
                                }
                            }
                        }
                    }
                }
            }
            if can_clobber {
                continue;
            }
            for cp in current_peers {
                let cur_deep = g.deepest_nesting_target(ee.from, Some(&g.nodes[cp].name));
                if cur_deep == target || g.is_descendant_of(target, cur_deep) {
                    can_replace = false;
                    break;
                }
            }
        }
        if can_replace {
            self.can_place_peers(g, c, Can::Replace)
        } else {
            Can::Conflict
        }
    }

    fn check_no_current(&mut self, g: &Graph, c: usize) -> Can {
        let Check { dep, target, .. } = self.all[c];
        let entry_edge = self.all[self.top(c)].edge;
        let name = &g.edge(self.all[c].edge).name;
        if target != entry_edge.from
            && let Some(current) = g.resolve(target, name)
        {
            for e in g.edges_in(current) {
                if g.is_descendant_of(e.from, target) && g.valid(e) && !g.satisfies(dep, e) {
                    return Can::Conflict;
                }
            }
        }
        self.can_place_peers(g, c, Can::Ok)
    }

    fn can_place_peers(&mut self, g: &Graph, c: usize, state: Can) -> Can {
        self.all[c].can_place_self = Some(state);
        if let Some(m) = self.all[c].peers_memo {
            return m;
        }
        let dep = self.all[c].dep;
        let mut peer_path = self.all[c].peer_path.clone();
        peer_path.push(dep);
        let mut saw_conflict = false;
        for pe in g.edge_refs(dep) {
            if !g.edge(pe).peer() {
                continue;
            }
            let Some(peer) = g.to(pe) else { continue };
            if peer_path.contains(&peer) {
                continue;
            }
            let target = g.deepest_nesting_target(self.all[c].target, Some(&g.nodes[peer].name));
            let child = self.new_check(g, (peer, target, pe), Some(c), peer_path.clone(), true);
            self.all[c].children.push(child);
            if self.all[child].can_place == Can::Conflict {
                saw_conflict = true;
            }
        }
        let r = if saw_conflict { Can::Conflict } else { state };
        self.all[c].peers_memo = Some(r);
        r
    }
}

/// A peer conflict npm would refuse (ERESOLVE): who wants what, and what is there.
#[derive(Debug, Clone)]
pub struct PeerConflict {
    pub edge: ERef,
    pub dep: Id,
}

/// One PlaceDep: the result of placing `dep` for `edge`, and the peers placed with it.
pub struct Placement {
    pub edge: ERef,
    pub placed: Option<Id>,
    /// How it was placed (OK or REPLACE), when it was.
    pub how: Option<Can>,
    pub children: Vec<Placement>,
    /// Nodes whose dependencies must be looked at again.
    pub need_evaluation: Vec<Id>,
    /// Peer edges npm warns about ("overriding peer dependency").
    pub warnings: Vec<(ERef, Id)>,
}

struct Ctx<'a> {
    g: &'a mut Graph,
    opts: Options,
    checks: Checks,
}

/// Place `dep` (a node in a virtual root) for `edge`, with its peer set.
pub fn place_dep(
    g: &mut Graph,
    edge: ERef,
    dep: Id,
    opts: Options,
) -> Result<Placement, PeerConflict> {
    let mut cx = Ctx {
        g,
        opts,
        checks: Checks::default(),
    };
    cx.place(edge, dep, None)
}

/// What a parent placement passes to its peers' placements.
#[derive(Clone, Copy)]
struct Up {
    /// The parent's chosen check.
    can_place: Option<usize>,
    /// The parent's start node.
    start: Id,
    /// The top placement's edge and dep.
    top: (ERef, Id),
}

impl Ctx<'_> {
    fn place(&mut self, edge: ERef, dep: Id, up: Option<Up>) -> Result<Placement, PeerConflict> {
        let mut out = Placement {
            edge,
            placed: None,
            how: None,
            children: vec![],
            need_evaluation: vec![],
            warnings: vec![],
        };
        if self.g.to(edge).is_some() && self.g.valid(edge) {
            return Ok(out);
        }
        let name = self.g.edge(edge).name.clone();
        let start_from = up.map(|u| u.start).unwrap_or(edge.from);
        let start = self.g.deepest_nesting_target(start_from, Some(&name));
        let (can_place, can_place_self) = self.walk_up(edge, dep, &name, start, up);
        let top = up.map(|u| u.top).unwrap_or((edge, dep));
        let c = match (can_place, can_place_self) {
            (Some(c), _) => c,
            _ if !self.opts.force && (self.is_mine(top.0) || self.opts.strict_peer_deps) => {
                return Err(PeerConflict {
                    edge: top.0,
                    dep: top.1,
                });
            }
            (None, Some(c)) => c,
            (None, None) => {
                out.warnings.push((edge, dep));
                self.g.peer_conflicted.insert(edge);
                return Ok(out);
            }
        };
        let check = &self.checks.all[c];
        let target = check.target;
        let how = if check.can_place == Can::Conflict {
            check.can_place_self.unwrap_or(Can::Conflict)
        } else {
            check.can_place
        };
        if how == Can::Keep {
            if self.g.edge(edge).peer() && !self.g.valid(edge) {
                out.warnings.push((edge, dep));
                self.g.peer_conflicted.insert(edge);
            }
            self.prune_dedupable(target, true);
            return Ok(out);
        }
        out.how = Some(how);
        if let Some(link) = self.link_cycle(target, dep) {
            out.placed = Some(link);
            return Ok(out);
        }
        let virtual_root = self.g.nodes[dep].parent;
        let placed = self.put((edge, dep, target, how), &name, &mut out);
        self.prune_after(edge, placed, target, &name);
        // Place its unmet peers beside it.
        let up = Up {
            can_place: Some(c),
            start,
            top,
        };
        if let Some(vr) = virtual_root {
            out.children = self.place_peers(placed, vr, up)?;
        }
        Ok(out)
    }

    /// npm's walk from `start` up the tree: the highest target where `dep` can go (the last
    /// check that is not a conflict) and the last where it could replace what is there.
    fn walk_up(
        &mut self,
        edge: ERef,
        dep: Id,
        name: &str,
        start: Id,
        up: Option<Up>,
    ) -> (Option<usize>, Option<usize>) {
        let g = &*self.g;
        let mut can_place: Option<usize> = None;
        let mut can_place_self: Option<usize> = None;
        let mut target = Some(start);
        while let Some(t) = target {
            target = g.resolve_parent(t);
            if !g.is_top(t)
                && let Some(te) = g.edge_named(t, name)
                && g.edge(te).peer()
            {
                continue;
            }
            let parent_check = up.and_then(|u| u.can_place);
            let c = self.checks.new_check(
                g,
                (dep, t, edge),
                parent_check,
                vec![],
                self.opts.prefer_dedupe,
            );
            let check = &self.checks.all[c];
            if check.can_place_self != Some(Can::Conflict) {
                can_place_self = Some(c);
            }
            if check.can_place != Can::Conflict {
                can_place = Some(c);
            } else {
                break;
            }
            if g.nodes[dep].errors() || self.opts.nested {
                break;
            }
            if self.opts.shallow
                && let Some(rp) = g.resolve_parent(t)
                && g.is_project_root(rp)
            {
                break;
            }
        }
        (can_place, can_place_self)
    }

    /// A dependency cycle that would nest forever links to the earlier copy.
    fn link_cycle(&mut self, target: Id, dep: Id) -> Option<Id> {
        let mut p = Some(target);
        while let Some(x) = p {
            if self.g.matches(x, dep) && !self.g.is_top(x) {
                let loc = self.g.location(x);
                let link = self.g.add(NewNode {
                    name: self.g.nodes[dep].name.clone(),
                    kind: Kind::Link { target: loc },
                    manifest: self.g.nodes[dep].manifest.clone(),
                    rule: self.g.nodes[dep].rule,
                    dev: false,
                });
                self.g.set_parent(link, target);
                return Some(link);
            }
            p = self.g.resolve_parent(x);
        }
        None
    }

    /// Put a copy of `dep` under `target` (replacing what is there by that name).
    fn put(&mut self, at: (ERef, Id, Id, Can), name: &str, out: &mut Placement) -> Id {
        let (edge, dep, target, how) = at;
        let d = &self.g.nodes[dep];
        let placed = self.g.add(NewNode {
            name: d.name.clone(),
            kind: d.kind.clone(),
            manifest: d.manifest.clone(),
            rule: d.rule,
            dev: false,
        });
        out.placed = Some(placed);
        tracing::debug!(
            target: "placeDep",
            "{} {} {:?} for: {} want: {}",
            if self.g.location(target).is_empty() { "ROOT".to_string() } else { self.g.location(target) },
            self.g.pkg_id(dep),
            how,
            self.g.pkg_id(edge.from),
            self.g.edge(edge).spec
        );
        match self.g.child(target, name) {
            Some(old) => self.replace_old_dep(placed, old, dep, out),
            None => self.g.set_parent(placed, target),
        }
        if self.g.edge(edge).peer() && !self.g.satisfies(placed, edge) {
            out.warnings.push((edge, dep));
            self.g.peer_conflicted.insert(edge);
        }
        placed
    }

    /// After placing: copies the new one makes redundant go (what the edge pointed at before,
    /// and same-named nodes below the target, with their children).
    fn prune_after(&mut self, edge: ERef, placed: Id, target: Id, name: &str) {
        if self.g.valid(edge)
            && let Some(to) = self.g.to(edge)
            && to != placed
        {
            self.prune_dedupable(to, false);
        }
        for n in self.g.named(name) {
            if self.g.in_tree(n) && self.g.is_descendant_of(n, target) && !self.g.is_top(n) {
                self.prune_dedupable(n, false);
                if self.g.in_tree(n) {
                    let kids = self.g.children_by_name(n);
                    for k in kids {
                        self.prune_dedupable(k, false);
                    }
                }
            }
        }
    }

    /// Place `placed`'s unmet peers from its virtual root `vr` beside it.
    fn place_peers(&mut self, placed: Id, vr: Id, up: Up) -> Result<Vec<Placement>, PeerConflict> {
        let mut children = Vec::new();
        for pe in self.g.edge_refs(placed).collect::<Vec<_>>() {
            if self.g.valid(pe) || !self.g.edge(pe).peer() || self.g.peer_conflicted.contains(&pe) {
                continue;
            }
            let Some(peer) = self.g.child(vr, &self.g.edge(pe).name) else {
                continue;
            };
            if !self.g.satisfies(peer, pe) {
                continue;
            }
            children.push(self.place(pe, peer, Some(up))?);
        }
        Ok(children)
    }

    fn replace_old_dep(&mut self, placed: Id, old: Id, dep: Id, out: &mut Placement) {
        let g = &*self.g;
        let target = g.nodes[old].parent;
        let mut old_deps: Vec<Id> = Vec::new();
        for e in g.edge_refs(old) {
            let ename = &g.edge(e).name;
            if g.edge_named(placed, ename).is_none()
                && let Some(to) = g.to(e)
            {
                old_deps.extend(g.gather_dep_set(&[to], |g, x| g.to(x) != Some(to)));
            }
        }
        let mut prune_peer_sets: Vec<Id> = Vec::new();
        for e in g.edges_in(old) {
            if g.satisfies(placed, e)
                || !g.edge(e).peer()
                || g.nodes[e.from].parent != target
                || g.peer_conflicted.contains(&e)
            {
                continue;
            }
            for (entry, _) in g.peer_entry_sets(e.from) {
                let Some(entry_node) = g.to(entry) else {
                    continue;
                };
                let deepest = g.deepest_nesting_target(entry_node, None);
                if Some(deepest) != target && !g.is_root_or_workspace(entry.from) {
                    prune_peer_sets.extend(g.gather_dep_set(&[entry_node], |g, x| {
                        g.to(x) != Some(entry_node) && !g.peer_conflicted.contains(&x)
                    }));
                } else {
                    out.warnings.push((e, dep));
                }
            }
        }
        for (e, _) in &out.warnings {
            self.g.peer_conflicted.insert(*e);
        }
        self.g.replace(placed, old);
        self.prune_for_replacement(placed, &old_deps);
        for d in prune_peer_sets {
            for e in self.g.edges_in(d) {
                out.need_evaluation.push(e.from);
            }
            self.g.detach(d);
        }
    }

    fn prune_for_replacement(&mut self, node: Id, old_deps: &[Id]) {
        let g = &*self.g;
        let mut invalid: Vec<Id> = Vec::new();
        for e in g.edge_refs(node) {
            if let Some(to) = g.to(e)
                && !g.valid(e)
                && !invalid.contains(&to)
            {
                invalid.push(to);
            }
        }
        for &d in old_deps {
            for x in g.gather_dep_set(&[d], |g, e| g.to(e) != Some(d) && g.valid(e)) {
                if !invalid.contains(&x) {
                    invalid.push(x);
                }
            }
        }
        let junk = g.gather_dep_set(&invalid, |g, e| {
            e.from != node && g.to(e) != Some(node) && g.valid(e)
        });
        for d in junk {
            self.g.detach(d);
        }
    }

    fn prune_dedupable(&mut self, node: Id, descend: bool) {
        if self.g.can_dedupe(node, self.opts.prefer_dedupe) {
            let deps = self
                .g
                .gather_dep_set(&[node], |g, e| g.to(e) != Some(node) && g.valid(e));
            for d in deps {
                self.g.detach(d);
            }
            return;
        }
        if descend {
            let mut kids = self.g.children_by_name(node);
            let locs: Vec<String> = kids.iter().map(|&k| self.g.location(k)).collect();
            let mut order: Vec<usize> = (0..kids.len()).collect();
            order.sort_by(|&a, &b| locale_cmp(&locs[a], &locs[b]));
            kids = order.into_iter().map(|i| kids[i]).collect();
            for k in kids {
                if self.g.nodes[k].attached {
                    self.prune_dedupable(k, true);
                }
            }
            // Workspace folders (fs children of the root) too.
            if node == 0 {
                let ws: Vec<Id> = (0..self.g.nodes.len())
                    .filter(|&i| self.g.is_workspace(i) && self.g.nodes[i].fs_parent == Some(0))
                    .collect();
                for w in ws {
                    let mut kids = self.g.children_by_name(w);
                    kids.sort_by(|&a, &b| {
                        locale_cmp(&self.g.location(a), &self.g.location(b)).then(Ordering::Equal)
                    });
                    for k in kids {
                        if self.g.nodes[k].attached {
                            self.prune_dedupable(k, true);
                        }
                    }
                }
            }
        }
    }

    /// Is the top edge of this placement "ours" (from the project or a workspace, directly or
    /// through a peer group it brings in)?
    fn is_mine(&self, top_edge: ERef) -> bool {
        let g = &*self.g;
        let node = top_edge.from;
        if g.is_root_or_workspace(node) || g.is_project_root(node) {
            return true;
        }
        if !g.edge(top_edge).peer() {
            return false;
        }
        let mut has_peer_edges = false;
        for e in g.edges_in(node) {
            if g.edge(e).peer() {
                has_peer_edges = true;
                continue;
            }
            if g.is_root_or_workspace(e.from) {
                return true;
            }
        }
        if has_peer_edges {
            for (e, _) in g.peer_entry_sets(node) {
                if g.is_root_or_workspace(e.from) {
                    return true;
                }
            }
        }
        false
    }
}
