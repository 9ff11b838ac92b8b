//! The global layout's planner: each package with its whole dependency closure gets one *slot*
//! in the store's virtual folder (`<store>/v1/virtual/<name>@<version>-<closure hash>/`), built
//! once and shared by every project whose tree has the same closure. A slot holds the package at
//! `node_modules/<name>` and, beside it, symlinks to its dependencies' slots and to every other
//! package of its closure (hoisted, nearest first), so Node's realpath resolution finds what the
//! package declares and what it uses without declaring but gets through its own dependencies.
//!
//! The project keeps a symlink per direct dependency, `.bin`, and a hidden fallback folder
//! (`node_modules/.hoard/node_modules`, pnpm's hoisting of everything) for lookups from the
//! project and, through `NODE_PATH` in `hoard run`, for undeclared dependencies outside a
//! package's closure. Packages that cannot be shared stay in the project, isolated-style: those
//! whose install scripts run (they write into their folder) and any package whose closure holds
//! one of those or a workspace or `file:` link (`local_dir`).
//!
//! Must not: touch the filesystem (`slots` builds slots, `materialize` the project's part).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;

use super::hoist::link_to;
use super::plan::{add_bins, deps_home, planned};
use super::{Layout, Plan, PlannedLink, Slot};
use crate::store::StoredPackage;
use crate::tree::{NodeKind, Tree};

/// The dependency graph the planner works on: stored package nodes and, for each, its
/// dependencies as (name required under, node), sorted by name.
struct Graph<'t> {
    tree: &'t Tree,
    stored: &'t HashMap<usize, Arc<StoredPackage>>,
    deps: HashMap<usize, Vec<(&'t str, usize)>>,
}

impl<'t> Graph<'t> {
    fn new(tree: &'t Tree, stored: &'t HashMap<usize, Arc<StoredPackage>>) -> Graph<'t> {
        let mut deps = HashMap::new();
        for &i in stored.keys() {
            let mut d: Vec<(&str, usize)> = tree.nodes[i]
                .edges
                .iter()
                .filter_map(|e| Some((e.name.as_str(), e.to?)))
                .filter(|(_, t)| {
                    stored.contains_key(t) || matches!(tree.nodes[*t].kind, NodeKind::Link { .. })
                })
                .collect();
            d.sort();
            d.dedup_by(|a, b| a.0 == b.0);
            deps.insert(i, d);
        }
        Graph { tree, stored, deps }
    }

    fn deps(&self, i: usize) -> &[(&'t str, usize)] {
        self.deps.get(&i).map(Vec::as_slice).unwrap_or(&[])
    }

    fn is_link(&self, i: usize) -> bool {
        matches!(self.tree.nodes[i].kind, NodeKind::Link { .. })
    }
}

/// Nodes that cannot be shared: copies, and every package that reaches a copy or a link.
fn local_nodes(g: &Graph<'_>, copies: &HashSet<usize>) -> HashSet<usize> {
    let mut users: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut queue: VecDeque<usize> = VecDeque::new();
    for (&i, deps) in &g.deps {
        for &(_, t) in deps {
            users.entry(t).or_default().push(i);
            if g.is_link(t) {
                queue.push_back(i);
            }
        }
    }
    queue.extend(copies.iter().copied().filter(|i| g.stored.contains_key(i)));
    let mut local = HashSet::new();
    while let Some(i) = queue.pop_front() {
        if local.insert(i) {
            queue.extend(users.get(&i).into_iter().flatten().copied());
        }
    }
    local
}

/// The closure hash of every shareable node: equal exactly when the package and everything it
/// reaches (names, versions, integrity, and which name leads where) are equal. Strongly
/// connected parts (dependency cycles) are encoded by a walk from each member that refers back
/// to nodes already seen by their order of first visit.
fn closure_hashes(g: &Graph<'_>, shared: &[usize]) -> HashMap<usize, blake3::Hash> {
    let comps = super::scc::components(shared, |i| g.deps(i).iter().map(|&(_, t)| t));
    let mut comp_of: HashMap<usize, usize> = HashMap::new();
    for (c, members) in comps.iter().enumerate() {
        for &m in members {
            comp_of.insert(m, c);
        }
    }
    let mut hashes: HashMap<usize, blake3::Hash> = HashMap::new();
    // Components come dependencies first: every edge out of a component meets a hash.
    for members in &comps {
        let mut done = Vec::with_capacity(members.len());
        for &m in members {
            let mut h = blake3::Hasher::new();
            let mut seen: HashMap<usize, usize> = HashMap::new();
            encode(g, m, &comp_of, &hashes, &mut seen, &mut h);
            done.push((m, h.finalize()));
        }
        hashes.extend(done);
    }
    hashes
}

/// Write node `v` (and, inside its component, what it reaches) into `h`.
fn encode(
    g: &Graph<'_>,
    v: usize,
    comp_of: &HashMap<usize, usize>,
    hashes: &HashMap<usize, blake3::Hash>,
    seen: &mut HashMap<usize, usize>,
    h: &mut blake3::Hasher,
) {
    if let Some(k) = seen.get(&v) {
        h.update(format!("^{k}\0").as_bytes());
        return;
    }
    seen.insert(v, seen.len());
    let n = &g.tree.nodes[v];
    let integrity = g.stored.get(&v).map(|p| p.integrity.as_str()).unwrap_or("");
    h.update(format!("{}\0{}\0{integrity}\0{{", n.real_name(), n.version()).as_bytes());
    for &(name, t) in g.deps(v) {
        h.update(name.as_bytes());
        h.update(b"=");
        match hashes.get(&t) {
            Some(x) if comp_of.get(&t) != comp_of.get(&v) => {
                h.update(x.as_bytes());
            }
            _ => encode(g, t, comp_of, hashes, seen, h),
        }
    }
    h.update(b"}");
}

/// Where a package that stays in the project goes:
/// `node_modules/.hoard/node_modules/.store/<name>@<version>/node_modules/<name>`. A `.store`
/// folder, as npm's own linked layout has, so npm's tools treat it as a dependency; inside the
/// fallback folder, so that Node finds the project's other packages from it too.
pub fn local_dir(n: &crate::tree::Node) -> String {
    format!(
        "node_modules/.hoard/node_modules/.store/{}@{}/node_modules/{}",
        n.real_name().replace('/', "+"),
        n.version(),
        n.real_name()
    )
}

/// A slot's folder name: readable, and unique by closure.
fn slot_dir(n: &crate::tree::Node, hash: &blake3::Hash) -> String {
    format!(
        "{}@{}-{}",
        n.real_name().replace('/', "+"),
        n.version(),
        &hash.to_hex()[..32]
    )
}

/// Plan the global layout. `virtual_root` is the store's virtual folder (absolute; the project's
/// links into it are absolute) and `present` the slots already in it (planned, not worked out).
pub fn plan(
    tree: &Tree,
    stored: &HashMap<usize, Arc<StoredPackage>>,
    copies: &HashSet<usize>,
    virtual_root: &Path,
    present: &HashSet<String>,
    public: &[String],
) -> Plan {
    let g = Graph::new(tree, stored);
    let local = local_nodes(&g, copies);
    let mut shared: Vec<usize> = stored
        .keys()
        .copied()
        .filter(|i| !local.contains(i))
        .collect();
    shared.sort_unstable();
    let hashes = closure_hashes(&g, &shared);
    let dirs: HashMap<usize, String> = shared
        .iter()
        .map(|&i| (i, slot_dir(&tree.nodes[i], &hashes[&i])))
        .collect();
    let mut plan = Plan {
        layout: Layout::Global,
        ..Default::default()
    };
    let vroot = virtual_root.display().to_string();
    // Where node `t` is, as seen from the project: its slot (absolute) or its local folder.
    let home = |t: usize| -> Option<String> {
        if let Some(d) = dirs.get(&t) {
            return Some(format!(
                "{vroot}/{d}/node_modules/{}",
                tree.nodes[t].real_name()
            ));
        }
        match &tree.nodes[t].kind {
            NodeKind::Package { .. } if stored.contains_key(&t) => Some(local_dir(&tree.nodes[t])),
            NodeKind::Link { target } => Some(target.clone()),
            _ => None,
        }
    };
    let mut seen_slots = HashSet::new();
    for &i in &shared {
        let dir = &dirs[&i];
        if !seen_slots.insert(dir.clone()) {
            continue;
        }
        plan.slots.push(if present.contains(dir) {
            let n = &tree.nodes[i];
            let location = format!("node_modules/{}", n.real_name());
            Slot {
                dir: dir.clone(),
                package: planned(n, &stored[&i], false, location, BTreeMap::new()),
                links: vec![],
                present: true,
            }
        } else {
            slot(&g, i, &dirs)
        });
    }
    plan.slots.sort_by(|a, b| a.dir.cmp(&b.dir));
    plan_local(&g, &local, copies, &home, &mut plan);
    plan_project(&g, &home, &mut plan, public);
    plan
}

/// One shareable package's slot: the package, its dependencies, then the rest of its closure,
/// nearest first (a name already taken keeps its first, nearer, holder).
fn slot(g: &Graph<'_>, i: usize, dirs: &HashMap<usize, String>) -> Slot {
    let n = &g.tree.nodes[i];
    let p = &g.stored[&i];
    let name = n.real_name();
    let bins = super::bins::with_directories(name, &n.manifest, &p.files);
    let dir = dirs[&i].clone();
    let package = planned(n, p, false, format!("node_modules/{name}"), bins);
    let mut taken: HashSet<&str> = HashSet::from([name]);
    let mut links = Vec::new();
    let mut visited = HashSet::from([i]);
    let mut queue = VecDeque::from([i]);
    while let Some(v) = queue.pop_front() {
        for &(dep, t) in g.deps(v) {
            if visited.insert(t) {
                queue.push_back(t);
            }
            let Some(tdir) = dirs.get(&t) else { continue };
            // The package itself and nearer holders of a name keep it.
            if !taken.insert(dep) {
                continue;
            }
            let loc = format!("{dir}/node_modules/{dep}");
            let to = format!("{tdir}/node_modules/{}", g.tree.nodes[t].real_name());
            let parent = loc.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            links.push(PlannedLink {
                location: loc[dir.len() + 1..].to_string(),
                target: super::relative(parent, &to),
            });
        }
    }
    Slot {
        dir,
        package,
        links,
        present: false,
    }
}

/// Packages kept in the project, isolated-style, with their dependencies as symlinks.
fn plan_local(
    g: &Graph<'_>,
    local: &HashSet<usize>,
    copies: &HashSet<usize>,
    home: &dyn Fn(usize) -> Option<String>,
    plan: &mut Plan,
) {
    let mut order: Vec<usize> = local.iter().copied().collect();
    order.sort_unstable();
    let mut seen_dirs = HashSet::new();
    let mut seen_links = HashSet::new();
    for i in order {
        let n = &g.tree.nodes[i];
        let p = &g.stored[&i];
        let dir = local_dir(n);
        if !seen_dirs.insert(dir.clone()) {
            continue;
        }
        let bins = super::bins::with_directories(n.real_name(), &n.manifest, &p.files);
        plan.packages
            .push(planned(n, p, copies.contains(&i), dir.clone(), bins));
        let deps_home = deps_home(&dir, n.real_name());
        for &(dep, t) in g.deps(i) {
            let loc = format!("{deps_home}/{dep}");
            if loc == dir || !seen_links.insert(loc.clone()) {
                continue;
            }
            if let Some(target) = home(t) {
                plan.links.push(link_to(&loc, &target));
            }
        }
    }
}

/// The project's own part: direct dependencies (of the root and each workspace) and their
/// bins, then the hidden fallback folder.
fn plan_project(
    g: &Graph<'_>,
    home: &dyn Fn(usize) -> Option<String>,
    plan: &mut Plan,
    public: &[String],
) {
    let tree = g.tree;
    let mut direct: HashSet<&str> = HashSet::new();
    for n in &tree.nodes {
        let deps_home = match &n.kind {
            NodeKind::Root => "node_modules".to_string(),
            NodeKind::Workspace => format!("{}/node_modules", n.location),
            _ => continue,
        };
        let mut edges: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &n.edges {
            if let Some(t) = e.to {
                edges.entry(e.name.as_str()).or_insert(t);
            }
        }
        for (name, t) in edges {
            let Some(target) = home(t) else { continue };
            let loc = format!("{deps_home}/{name}");
            if target == loc {
                continue;
            }
            if matches!(n.kind, NodeKind::Root) {
                direct.insert(name);
            }
            plan.links.push(link_to(&loc, &target));
            if let Some(p) = g.stored.get(&t) {
                let tn = &tree.nodes[t];
                let bins = super::bins::with_directories(name, &tn.manifest, &p.files);
                add_bins(plan, &deps_home, &target, name, bins);
            }
        }
    }
    // The hidden folder (every other package once) and the public hoist.
    plan.links
        .extend(super::hoist::links(tree, g.stored, home, &direct, public));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::registry::config::NpmConfig;
    use crate::store::index::FileEntry;

    /// The plan of a lockfile's tree, every package "stored" with one file.
    fn plan_of(lock: serde_json::Value, copies: &[&str]) -> Plan {
        let root = Arc::new(crate::registry::packument::Manifest::from_json(
            "app",
            &lock["packages"][""],
        ));
        let tree =
            crate::lockfile::tree_from_lock(&lock, root, &HashMap::new(), &NpmConfig::default())
                .unwrap();
        let stored: HashMap<usize, Arc<StoredPackage>> = (0..tree.nodes.len())
            .filter(|&i| matches!(tree.nodes[i].kind, NodeKind::Package { .. }))
            .map(|i| {
                let files = vec![FileEntry {
                    path: "index.js".into(),
                    hash: [1; 32],
                    size: 1,
                    executable: false,
                }];
                let integrity = format!("sha512-{}", tree.nodes[i].pkg_id());
                let p = StoredPackage {
                    id: i as i64,
                    integrity,
                    files,
                    created: Vec::new(),
                    imported_at: None,
                    bytes_downloaded: 0,
                };
                (i, Arc::new(p))
            })
            .collect();
        let copies: HashSet<usize> = (0..tree.nodes.len())
            .filter(|&i| copies.contains(&tree.nodes[i].location.as_str()))
            .collect();
        plan(
            &tree,
            &stored,
            &copies,
            Path::new("/s"),
            &HashSet::new(),
            &[],
        )
    }

    fn pkg(version: &str, deps: serde_json::Value) -> serde_json::Value {
        json!({"version": version, "resolved": format!("http://r/x-{version}.tgz"),
               "integrity": "sha512-x", "dependencies": deps})
    }

    fn slot_of<'p>(plan: &'p Plan, prefix: &str) -> Vec<&'p Slot> {
        plan.slots
            .iter()
            .filter(|s| s.dir.starts_with(prefix))
            .collect()
    }

    /// x@1 and y@1 need each other (a cycle); x also needs z, nested in one place at another
    /// version than at the top.
    fn lock(z_nested: &str) -> serde_json::Value {
        json!({"name": "app", "lockfileVersion": 3, "packages": {
            "": {"name": "app", "dependencies": {"x": "1", "w": "1", "z": "*"}},
            "node_modules/x": pkg("1.0.0", json!({"y": "1", "z": "*"})),
            "node_modules/y": pkg("1.0.0", json!({"x": "1"})),
            "node_modules/z": pkg("1.0.0", json!({})),
            "node_modules/w": pkg("1.0.0", json!({"q": "*"})),
            "node_modules/w/node_modules/q": pkg("1.0.0", json!({"z": "*"})),
            "node_modules/w/node_modules/z": pkg(z_nested, json!({})),
        }})
    }

    #[test]
    fn a_slot_is_keyed_by_its_whole_closure_cycles_included() {
        let p1 = plan_of(lock("2.0.0"), &[]);
        // Two z versions, two z slots; q reaches the nested z, x the top one.
        assert_eq!(slot_of(&p1, "z@").len(), 2);
        let (x, y) = (slot_of(&p1, "x@")[0], slot_of(&p1, "y@")[0]);
        let xl: Vec<&str> = x.links.iter().map(|l| l.location.as_str()).collect();
        assert_eq!(
            xl,
            ["node_modules/y", "node_modules/z"],
            "x's deps beside it"
        );
        assert!(
            y.links.iter().any(|l| l.location == "node_modules/z"),
            "y sees z through x (hoisted from its closure): {:?}",
            y.links
        );
        assert!(
            !y.links.iter().any(|l| l.location == "node_modules/y"),
            "never over the package itself"
        );
        // Another nested z changes w's and q's closures only.
        let p2 = plan_of(lock("3.0.0"), &[]);
        let dirs = |p: &Plan, pre: &str| slot_of(p, pre)[0].dir.clone();
        assert_eq!(dirs(&p1, "x@"), dirs(&p2, "x@"));
        assert_eq!(dirs(&p1, "y@"), dirs(&p2, "y@"));
        assert_ne!(dirs(&p1, "w@"), dirs(&p2, "w@"));
        assert_ne!(dirs(&p1, "q@"), dirs(&p2, "q@"));
        // The same tree plans the same slots.
        let again = plan_of(lock("2.0.0"), &[]);
        let names = |p: &Plan| p.slots.iter().map(|s| s.dir.clone()).collect::<Vec<_>>();
        assert_eq!(names(&p1), names(&again));
    }

    #[test]
    fn a_copy_and_everything_that_reaches_it_stay_in_the_project() {
        let p = plan_of(lock("2.0.0"), &["node_modules/w/node_modules/q"]);
        let local: Vec<&str> = p.packages.iter().map(|p| p.location.as_str()).collect();
        assert_eq!(
            local,
            [
                "node_modules/.hoard/node_modules/.store/w@1.0.0/node_modules/w",
                "node_modules/.hoard/node_modules/.store/q@1.0.0/node_modules/q",
            ]
        );
        assert!(slot_of(&p, "w@").is_empty() && slot_of(&p, "q@").is_empty());
        let link = |loc: &str| {
            p.links
                .iter()
                .find(|l| l.location == loc)
                .map(|l| &l.target)
        };
        assert_eq!(
            link("node_modules/w").map(String::as_str),
            Some(".hoard/node_modules/.store/w@1.0.0/node_modules/w")
        );
        let z = link("node_modules/.hoard/node_modules/.store/q@1.0.0/node_modules/z").unwrap();
        assert!(
            z.starts_with("/s/z@2.0.0-"),
            "a local package links shared slots: {z}"
        );
        assert!(link("node_modules/x").unwrap().starts_with("/s/x@1.0.0-"));
        assert!(
            link("node_modules/.hoard/node_modules/y").is_some(),
            "the fallback holds what is not direct"
        );
    }
}
