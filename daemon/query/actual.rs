//! The project's installed tree as npm's arborist reads it from disk (`loadActual`), for `hoard
//! query`: the root, every package folder below `node_modules` (nested ones too), symlinks as
//! links to their targets, each node's package.json normalized as @npmcli/package-json does,
//! edges from its dependency sections resolved the way `require` finds folders, and npm's
//! dev/optional/peer/extraneous flags computed as calcDepFlags computes them.
//!
//! For layouts whose node_modules is not npm's shape (isolated, global) and for
//! `--package-lock-only`, `load_virtual` builds the same graph from package-lock.json's locations
//! instead, as arborist's `loadVirtual` does, reading each package.json from wherever the package
//! really is (falling back to the lock entry).
//!
//! Must not: write anything.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{HoardError, Result};

/// npm's edge types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeType {
    Prod,
    Dev,
    Optional,
    Peer,
    PeerOptional,
    Workspace,
}

impl EdgeType {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeType::Prod => "prod",
            EdgeType::Dev => "dev",
            EdgeType::Optional => "optional",
            EdgeType::Peer => "peer",
            EdgeType::PeerOptional => "peerOptional",
            EdgeType::Workspace => "workspace",
        }
    }

    pub fn optional(self) -> bool {
        matches!(self, EdgeType::Optional | EdgeType::PeerOptional)
    }

    pub fn peer(self) -> bool {
        matches!(self, EdgeType::Peer | EdgeType::PeerOptional)
    }
}

#[derive(Debug, Clone)]
pub struct Edge {
    pub from: usize,
    pub name: String,
    pub spec: String,
    pub kind: EdgeType,
    pub to: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct Node {
    /// The folder name (`node.name`): the alias for aliased packages, the package name (or
    /// folder name) for the root.
    pub name: String,
    /// Relative to the root, `/`-separated (`node_modules/a/node_modules/b`, `packages/a`).
    pub location: String,
    pub path: PathBuf,
    pub realpath: PathBuf,
    /// package.json, normalized as npm normalizes it.
    pub package: Value,
    pub parent: Option<usize>,
    /// For a tree top inside the root's folder (a workspace member): the node whose folder
    /// holds it.
    pub fs_parent: Option<usize>,
    pub children: BTreeMap<String, usize>,
    /// For a link: the node of the folder it points to.
    pub target: Option<usize>,
    pub links_in: Vec<usize>,
    pub edges_out: Vec<usize>,
    pub edges_in: Vec<usize>,
    pub is_root: bool,
    pub is_workspace: bool,
    pub dev: bool,
    pub optional: bool,
    pub peer: bool,
    pub extraneous: bool,
    pub resolved: Option<String>,
    /// Made up by `:missing` for an edge nothing satisfies (npm's `queryContext.missing`).
    pub missing: bool,
}

impl Node {
    pub fn is_link(&self) -> bool {
        self.target.is_some()
    }

    pub fn is_top(&self) -> bool {
        self.parent.is_none()
    }

    fn str_field(&self, k: &str) -> &str {
        self.package.get(k).and_then(Value::as_str).unwrap_or("")
    }

    pub fn version(&self) -> &str {
        self.str_field("version")
    }

    pub fn package_name(&self) -> &str {
        self.str_field("name")
    }

    /// npm's `pkgid`: `name@version`, `alias@npm:real@version` for aliases.
    pub fn pkgid(&self) -> String {
        let real = self.package_name();
        let mine = if self.is_root && !real.is_empty() {
            real
        } else {
            &self.name
        };
        let alias = if !self.is_root && !real.is_empty() && mine != real {
            format!("npm:{real}@")
        } else {
            String::new()
        };
        format!("{mine}@{alias}{}", self.version())
    }
}

#[derive(Debug, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// The nodes in the order npm's inventory holds them: the root's node_modules level by
    /// level in directory order, then link targets and what is below them.
    pub inventory: Vec<usize>,
}

impl Graph {
    /// The node a `require(name)` from `from` finds: its own node_modules, then its parents'
    /// (and a workspace member's enclosing folders').
    pub fn resolve(&self, from: usize, name: &str) -> Option<usize> {
        let mut cur = Some(from);
        while let Some(i) = cur {
            let n = &self.nodes[i];
            if let Some(&c) = n.children.get(name) {
                return Some(c);
            }
            cur = n.parent.or(n.fs_parent);
        }
        None
    }

    /// The node itself, or a link's target.
    pub fn target(&self, i: usize) -> usize {
        self.nodes[i].target.unwrap_or(i)
    }
}

fn io<'a>(context: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> HoardError + 'a {
    move |source| HoardError::Io {
        context,
        path: path.to_path_buf(),
        source,
    }
}

/// Read a package.json as npm does for the actual tree; a missing or broken one is an empty
/// package (npm keeps such folders in the tree with an error).
fn read_package(dir: &Path) -> Value {
    let v = std::fs::read(dir.join("package.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| Value::Object(Map::new()));
    normalize_package(v)
}

/// @npmcli/package-json's `normalize` steps, in its order: `_` fields dropped, `_id` added,
/// `bundledDependencies` renamed, `bundleDependencies: true` expanded, optional dependencies
/// removed from `dependencies`, scripts cleaned, string `funding` made an object, `bin` made a
/// map with clean paths.
pub fn normalize_package(mut v: Value) -> Value {
    let Some(o) = v.as_object_mut() else {
        return v;
    };
    o.retain(|k, _| !k.starts_with('_'));
    let truthy = |x: Option<&Value>| x.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    if truthy(o.get("name")) && truthy(o.get("version")) {
        let id = format!(
            "{}@{}",
            o["name"].as_str().unwrap_or(""),
            o["version"].as_str().unwrap_or("")
        );
        o.insert("_id".into(), Value::String(id));
    }
    if !o.contains_key("bundleDependencies")
        && let Some(b) = o.get("bundledDependencies").cloned()
    {
        o.insert("bundleDependencies".into(), b);
    }
    o.remove("bundledDependencies");
    match o.get("bundleDependencies") {
        Some(Value::Bool(false)) => {
            o.insert("bundleDependencies".into(), Value::Array(vec![]));
        }
        Some(Value::Bool(true)) => {
            let names = o
                .get("dependencies")
                .and_then(Value::as_object)
                .map(|d| d.keys().map(|k| Value::String(k.clone())).collect())
                .unwrap_or_default();
            o.insert("bundleDependencies".into(), Value::Array(names));
        }
        _ => {}
    }
    let optional: Vec<String> = o
        .get("optionalDependencies")
        .and_then(Value::as_object)
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(deps) = o.get_mut("dependencies").and_then(Value::as_object_mut) {
        for n in &optional {
            deps.remove(n);
        }
    }
    clean_scripts(o);
    if let Some(Value::String(url)) = o.get("funding").cloned() {
        o.insert("funding".into(), serde_json::json!({ "url": url }));
    }
    normalize_bin(o);
    v
}

fn clean_scripts(o: &mut Map<String, Value>) {
    match o.get_mut("scripts") {
        Some(Value::Object(s)) => {
            s.retain(|_, v| v.is_string());
            for v in s.values_mut() {
                if let Value::String(cmd) = v {
                    for prefix in ["./node_modules/.bin/", "node_modules/.bin/"] {
                        if let Some(rest) = cmd.strip_prefix(prefix) {
                            *cmd = rest.to_string();
                            break;
                        }
                    }
                }
            }
        }
        Some(_) => {
            o.remove("scripts");
        }
        None => {}
    }
}

/// `p` split at `seps`, with empty and `.` segments dropped and `..` taking the previous one
/// away (as path.join against `/` does), joined with `/` and without a leading one.
pub(super) fn resolve_dots(p: &str, seps: &[char]) -> String {
    let mut out: Vec<&str> = vec![];
    for seg in p.split(seps) {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

/// npm-normalize-package-bin: a string `bin` becomes `{<unscoped name>: path}`; keys are base
/// names, paths are joined against `/` and made relative again.
fn normalize_bin(o: &mut Map<String, Value>) {
    let clean_path = |p: &str| resolve_dots(p, &['/', '\\']);
    let map = match o.get("bin") {
        Some(Value::String(p)) => {
            let name = o.get("name").and_then(Value::as_str).unwrap_or("");
            let key = name.rsplit('/').next().unwrap_or(name).to_string();
            let mut m = Map::new();
            if !key.is_empty() {
                m.insert(key, Value::String(clean_path(p)));
            }
            m
        }
        Some(Value::Object(b)) => b
            .iter()
            .filter_map(|(k, v)| {
                let key = k.replace(['\\', ':'], "/");
                let key = key.rsplit('/').next().unwrap_or("").to_string();
                let val = v.as_str()?;
                (!key.is_empty()).then(|| (key, Value::String(clean_path(val))))
            })
            .collect(),
        Some(_) => Map::new(),
        None => return,
    };
    if map.is_empty() {
        o.remove("bin");
    } else {
        o.insert("bin".into(), Value::Object(map));
    }
}

/// `node_modules` entries as npm lists them: `name` and `@scope/name`, dot folders skipped.
fn node_modules_entries(dir: &Path) -> Vec<String> {
    let read = |d: &Path| -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(d) else {
            return vec![];
        };
        // Directory order, as npm reads it (it decides the order of `:missing` items).
        rd.filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect::<Vec<String>>()
    };
    let mut out = vec![];
    for e in read(dir) {
        if e.starts_with('.') {
            continue;
        }
        if e.starts_with('@') {
            for s in read(&dir.join(&e)) {
                if !s.starts_with('.') {
                    out.push(format!("{e}/{s}"));
                }
            }
        } else {
            out.push(e);
        }
    }
    out
}

fn relative(root: &Path, p: &Path) -> String {
    if let Ok(r) = p.strip_prefix(root) {
        return r.to_string_lossy().replace('\\', "/");
    }
    // Outside the root: `../x` as path.relative would write it.
    let mut up = root.to_path_buf();
    let mut prefix = String::new();
    while let Some(parent) = up.parent() {
        prefix.push_str("../");
        up = parent.to_path_buf();
        if let Ok(r) = p.strip_prefix(&up) {
            return format!("{prefix}{}", r.to_string_lossy())
                .trim_end_matches('/')
                .into();
        }
    }
    p.to_string_lossy().into()
}

struct Loader {
    root_real: PathBuf,
    g: Graph,
    by_real: HashMap<PathBuf, usize>,
}

impl Loader {
    fn push(&mut self, n: Node) -> usize {
        self.g.nodes.push(n);
        self.g.nodes.len() - 1
    }

    /// Load `parent`'s node_modules (and, recursively, theirs and link targets').
    fn children(&mut self, parent: usize) {
        let nm = self.g.nodes[parent].realpath.join("node_modules");
        for name in node_modules_entries(&nm) {
            let path = nm.join(&name);
            let Ok(real) = std::fs::canonicalize(&path) else {
                continue; // a dangling link: npm keeps a broken link; nothing to query in it
            };
            if !real.is_dir() {
                continue;
            }
            let logical = self.g.nodes[parent].path.join("node_modules").join(&name);
            let location = relative(&self.root_real, &logical);
            let is_link = std::fs::symlink_metadata(&path)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false)
                || real != path;
            let id = if is_link {
                let target = self.target(&real);
                let package = self.g.nodes[target].package.clone();
                let id = self.push(Node {
                    name: name.clone(),
                    location,
                    path: logical,
                    realpath: real,
                    package,
                    parent: Some(parent),
                    target: Some(target),
                    ..Node::default()
                });
                self.g.nodes[target].links_in.push(id);
                id
            } else {
                let id = self.push(Node {
                    name: name.clone(),
                    location,
                    path: logical,
                    realpath: real.clone(),
                    package: read_package(&real),
                    parent: Some(parent),
                    ..Node::default()
                });
                self.by_real.insert(real, id);
                self.children(id);
                id
            };
            self.g.nodes[parent].children.insert(name, id);
        }
    }

    /// The node of a link target, loaded (with its node_modules) the first time.
    fn target(&mut self, real: &Path) -> usize {
        if let Some(&i) = self.by_real.get(real) {
            return i;
        }
        let name = real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = self.push(Node {
            name,
            location: relative(&self.root_real, real),
            path: real.to_path_buf(),
            realpath: real.to_path_buf(),
            package: read_package(real),
            ..Node::default()
        });
        self.by_real.insert(real.to_path_buf(), id);
        self.children(id);
        id
    }
}

/// The project's own node.
fn root_node(name: String, root_real: &Path, package: Value) -> Node {
    Node {
        name,
        location: String::new(),
        path: root_real.to_path_buf(),
        realpath: root_real.to_path_buf(),
        package,
        is_root: true,
        ..Node::default()
    }
}

/// Load the tree under `dir` as `npm query` sees it. `lock_packages` (package-lock.json's or
/// the hidden lockfile's `packages`) lends each location its `resolved`.
pub fn load(dir: &Path, lock_packages: Option<&Map<String, Value>>) -> Result<Graph> {
    let root_real = std::fs::canonicalize(dir).map_err(io("reading the project folder", dir))?;
    let package = read_package(&root_real);
    if package.as_object().is_none_or(Map::is_empty) && !root_real.join("package.json").exists() {
        return Err(HoardError::InvalidInput(format!(
            "`{}` has no package.json: run `hoard query` in a project folder",
            dir.display()
        )));
    }
    let name = package
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            root_real
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    let mut l = Loader {
        root_real: root_real.clone(),
        g: Graph::default(),
        by_real: HashMap::new(),
    };
    l.push(root_node(name, &root_real, package));
    l.by_real.insert(root_real.clone(), 0);
    l.children(0);
    let mut g = l.g;
    g.inventory = inventory_order(&g);
    set_fs_parents(&mut g);
    finish(&mut g, &root_real, lock_packages);
    Ok(g)
}

/// Fields of a lock entry that describe the lock, not the package.
const LOCK_ONLY: &[&str] = &[
    "resolved",
    "integrity",
    "link",
    "dev",
    "optional",
    "devOptional",
    "peer",
    "extraneous",
    "inBundle",
    "hasInstallScript",
    "hasShrinkwrap",
];

/// The folder `name` resolves to from `from` (a real folder), as `require` would find it.
fn find_from(from: &Path, name: &str) -> Option<PathBuf> {
    let mut dir = Some(from);
    while let Some(d) = dir {
        let candidate = d.join("node_modules").join(name);
        if candidate.join("package.json").is_file() {
            return std::fs::canonicalize(&candidate).ok();
        }
        dir = d.parent();
    }
    None
}

/// The graph of package-lock.json's `packages` (arborist's loadVirtual): nodes at the lock's
/// locations, each package.json taken from its lock entry, or with `from_disk`, read from
/// where the package really is (found as its dependents' `require` finds it) when its version
/// matches the lock.
pub fn load_virtual(dir: &Path, lock: &Map<String, Value>, from_disk: bool) -> Result<Graph> {
    let root_real = std::fs::canonicalize(dir).map_err(io("reading the project folder", dir))?;
    let package = read_package(&root_real);
    let name = package
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_default();
    let mut g = Graph::default();
    g.nodes.push(root_node(name, &root_real, package));
    // Where each node's package really is, for finding its dependencies' folders.
    let mut physical: Vec<Option<PathBuf>> = vec![Some(root_real.clone())];
    let mut by_loc: HashMap<String, usize> = HashMap::from([(String::new(), 0)]);
    let mut keys: Vec<&String> = lock.keys().filter(|k| !k.is_empty()).collect();
    keys.sort_by_key(|k| (k.matches("node_modules/").count(), k.to_string()));
    let mut links = vec![];
    for key in keys {
        let entry = &lock[key.as_str()];
        let (parent, name) = match crate::tree::location_parts(key) {
            Some((pl, name)) => {
                let Some(&p) = by_loc.get(pl) else { continue };
                (Some(p), name.to_string())
            }
            None => (None, crate::tree::name_from_location(key).to_string()),
        };
        let logical = root_real.join(key.as_str());
        let real = match parent {
            None => std::fs::canonicalize(&logical).ok(),
            Some(p) => physical[p]
                .as_deref()
                .and_then(|from| find_from(from, &name)),
        };
        let version = entry.get("version").and_then(Value::as_str);
        let read = real
            .as_deref()
            .filter(|_| from_disk)
            .map(read_package)
            .filter(|p| {
                version.is_none_or(|v| p.get("version").and_then(Value::as_str) == Some(v))
            });
        let real = real.filter(|_| read.is_some());
        let package = read.unwrap_or_else(|| {
            let mut p = entry.as_object().cloned().unwrap_or_default();
            p.retain(|k, _| !LOCK_ONLY.contains(&k.as_str()));
            if !p.contains_key("name") {
                p.insert("name".into(), Value::String(name.clone()));
            }
            normalize_package(Value::Object(p))
        });
        let id = g.nodes.len();
        g.nodes.push(Node {
            name: name.clone(),
            location: key.to_string(),
            path: logical.clone(),
            realpath: logical,
            package,
            parent,
            ..Node::default()
        });
        physical.push(real);
        by_loc.insert(key.to_string(), id);
        if let Some(p) = parent {
            g.nodes[p].children.insert(name, id);
        }
        if entry.get("link").and_then(Value::as_bool) == Some(true) {
            let target = entry.get("resolved").and_then(Value::as_str).unwrap_or("");
            links.push((id, target.to_string()));
        }
    }
    if from_disk {
        read_through_dependents(&mut g, &mut physical);
    }
    for (id, target) in links {
        let Some(&t) = by_loc.get(&target) else {
            continue;
        };
        g.nodes[id].target = Some(t);
        g.nodes[id].package = g.nodes[t].package.clone();
        g.nodes[t].links_in.push(id);
    }
    g.inventory = inventory_order(&g);
    set_fs_parents(&mut g);
    finish(&mut g, &root_real, Some(lock));
    Ok(g)
}

/// In layouts where a package is not at its lock location (isolated, global), find it from a
/// dependent already found, as that dependent's `require` would, until nothing more is found.
fn read_through_dependents(g: &mut Graph, physical: &mut [Option<PathBuf>]) {
    loop {
        let mut found = vec![];
        for (j, from) in physical.iter().enumerate() {
            let Some(from) = from else { continue };
            let pkg = &g.nodes[j].package;
            let names = ["dependencies", "optionalDependencies", "peerDependencies"]
                .iter()
                .flat_map(|k| dep_map(pkg, k).into_iter().map(|(n, _)| n));
            for name in names {
                let Some(i) = g.resolve(j, &name).filter(|&i| physical[i].is_none()) else {
                    continue;
                };
                let Some(real) = find_from(from, &name) else {
                    continue;
                };
                let p = read_package(&real);
                if p.get("version") == g.nodes[i].package.get("version") {
                    found.push((i, real, p));
                }
            }
        }
        if found.is_empty() {
            return;
        }
        for (i, real, p) in found {
            if physical[i].is_none() {
                g.nodes[i].package = p;
                physical[i] = Some(real);
            }
        }
    }
}

/// Workspaces, edges, flags and `resolved`: what both loaders end with.
fn finish(g: &mut Graph, root_real: &Path, lock: Option<&Map<String, Value>>) {
    let workspaces = workspace_targets(g, root_real);
    for &w in &workspaces {
        g.nodes[w].is_workspace = true;
    }
    add_edges(g, &workspaces);
    // A member's link from the root is a workspace too (npm's isWorkspace: `to === this`).
    for &e in &g.nodes[0].edges_out.clone() {
        if g.edges[e].kind == EdgeType::Workspace
            && let Some(l) = g.edges[e].to
        {
            g.nodes[l].is_workspace = true;
        }
    }
    calc_dep_flags(g);
    if let Some(lock) = lock {
        for n in g.nodes.iter_mut() {
            n.resolved = lock
                .get(&n.location)
                .and_then(|e| e.get("resolved"))
                .and_then(Value::as_str)
                .map(str::to_string);
        }
    }
}

/// Breadth-first from the root, then from each link target in the order they were found.
fn inventory_order(g: &Graph) -> Vec<usize> {
    let mut out = vec![];
    let tops = std::iter::once(0)
        .chain((1..g.nodes.len()).filter(|&i| g.nodes[i].parent.is_none() && !g.nodes[i].is_root));
    for top in tops.collect::<Vec<_>>() {
        let mut queue = std::collections::VecDeque::from([top]);
        while let Some(i) = queue.pop_front() {
            out.push(i);
            let mut kids: Vec<usize> = g.nodes[i].children.values().copied().collect();
            kids.sort_unstable();
            queue.extend(kids);
        }
    }
    out
}

/// Tops (link targets) inside another node's folder hang from it for resolution.
fn set_fs_parents(g: &mut Graph) {
    for i in 1..g.nodes.len() {
        if !g.nodes[i].is_top() || g.nodes[i].is_link() {
            continue;
        }
        let real = g.nodes[i].realpath.clone();
        let mut best: Option<(usize, usize)> = None;
        for (j, n) in g.nodes.iter().enumerate() {
            if j != i && !n.is_link() && real.starts_with(&n.realpath) && real != n.realpath {
                let depth = n.realpath.components().count();
                if best.is_none_or(|(_, d)| depth > d) {
                    best = Some((j, depth));
                }
            }
        }
        g.nodes[i].fs_parent = best.map(|(j, _)| j);
    }
}

/// The folders the root's `workspaces` globs name, as nodes (members no link points at are
/// loaded too, as arborist does).
fn workspace_targets(g: &Graph, root: &Path) -> Vec<usize> {
    let Ok(project) = crate::project::Project::load(root) else {
        return vec![];
    };
    project
        .workspaces
        .iter()
        .filter_map(|(rel, _, _)| {
            let real = std::fs::canonicalize(root.join(rel)).ok()?;
            g.nodes
                .iter()
                .position(|n| !n.is_link() && n.realpath == real)
        })
        .collect()
}

fn dep_map(pkg: &Value, key: &str) -> Vec<(String, String)> {
    pkg.get(key)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Each node's edges in arborist's order (peer, then prod, optional and, for tree tops, dev;
/// a later section replaces an earlier one), resolved from the node.
fn add_edges(g: &mut Graph, workspaces: &[usize]) {
    for from in 0..g.nodes.len() {
        let n = &g.nodes[from];
        if n.is_link() {
            continue; // links have no edges of their own; their targets do
        }
        let pkg = &n.package;
        let meta = pkg.get("peerDependenciesMeta");
        let mut out: Vec<(String, String, EdgeType)> = vec![];
        let mut add = |name: String, spec: String, kind: EdgeType| {
            if let Some(e) = out.iter_mut().find(|e| e.0 == name) {
                if e.2 != EdgeType::Workspace {
                    *e = (name, spec, kind);
                }
            } else {
                out.push((name, spec, kind));
            }
        };
        if from == 0 {
            for &w in workspaces {
                let ws = &g.nodes[w];
                let name = ws.package_name().to_string();
                add(name, format!("file:{}", ws.location), EdgeType::Workspace);
            }
        }
        for (name, spec) in dep_map(pkg, "peerDependencies") {
            let optional = meta
                .and_then(|m| m.get(&name))
                .and_then(|m| m.get("optional"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let kind = if optional {
                EdgeType::PeerOptional
            } else {
                EdgeType::Peer
            };
            add(name, spec, kind);
        }
        for (name, spec) in dep_map(pkg, "dependencies") {
            add(name, spec, EdgeType::Prod);
        }
        for (name, spec) in dep_map(pkg, "optionalDependencies") {
            add(name, spec, EdgeType::Optional);
        }
        if n.is_top() {
            for (name, spec) in dep_map(pkg, "devDependencies") {
                add(name, spec, EdgeType::Dev);
            }
        }
        for (name, spec, kind) in out {
            let to = g.resolve(from, &name);
            let id = g.edges.len();
            g.edges.push(Edge {
                from,
                name,
                spec,
                kind,
                to,
            });
            g.nodes[from].edges_out.push(id);
            if let Some(t) = to {
                g.nodes[t].edges_in.push(id);
            }
        }
    }
}

/// arborist's calcDepFlags: every flag starts set, the root's cleared, and walking outward
/// edges clears a flag on the target when the source lacks it and the edge is not of that kind.
fn calc_dep_flags(g: &mut Graph) {
    for n in g.nodes.iter_mut().skip(1) {
        (n.dev, n.optional, n.peer, n.extraneous) = (true, true, true, true);
    }
    let mut queue = vec![0usize];
    let mut seen = vec![false; g.nodes.len()];
    while let Some(i) = queue.pop() {
        seen[i] = true;
        if !g.nodes[i].extraneous {
            let mut p = g.nodes[i].parent.or(g.nodes[i].fs_parent);
            while let Some(j) = p.filter(|&j| g.nodes[j].extraneous) {
                g.nodes[j].extraneous = false;
                p = g.nodes[j].parent.or(g.nodes[j].fs_parent);
            }
        }
        if let Some(t) = g.nodes[i].target {
            let (dev, opt, peer, ext) = {
                let n = &g.nodes[i];
                (n.dev, n.optional, n.peer, n.extraneous)
            };
            let tn = &mut g.nodes[t];
            let mut changed = false;
            for (flag, src) in [
                (&mut tn.dev, dev),
                (&mut tn.optional, opt),
                (&mut tn.peer, peer),
                (&mut tn.extraneous, ext),
            ] {
                if *flag && !src {
                    *flag = false;
                    changed = true;
                }
            }
            if changed || !seen[t] {
                queue.push(t);
            }
            continue;
        }
        for &e in &g.nodes[i].edges_out.clone() {
            let Edge { kind, to, .. } = g.edges[e];
            let Some(to) = to else { continue };
            let (dev, opt, peer, ext) = {
                let n = &g.nodes[i];
                (n.dev, n.optional, n.peer, n.extraneous)
            };
            let tn = &mut g.nodes[to];
            let mut changed = false;
            let mut clear = |flag: &mut bool, keep: bool| {
                if *flag && !keep {
                    *flag = false;
                    changed = true;
                }
            };
            clear(&mut tn.extraneous, ext || kind == EdgeType::PeerOptional);
            clear(&mut tn.dev, dev || kind == EdgeType::Dev);
            clear(&mut tn.optional, opt || kind.optional());
            clear(&mut tn.peer, peer || kind.peer());
            if changed {
                queue.push(to);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn packages_are_normalized_as_npm_normalizes_them() {
        let v = normalize_package(json!({
            "name": "@s/x", "_resolved": "r", "version": "1.0.0",
            "bin": "./bin/x.js",
            "bundledDependencies": true,
            "dependencies": {"a": "1", "b": "2"},
            "optionalDependencies": {"b": "2"},
            "scripts": {"t": "node_modules/.bin/jest", "bad": 1},
            "funding": "https://f"
        }));
        assert_eq!(v["_id"], "@s/x@1.0.0");
        assert!(v.get("_resolved").is_none());
        assert_eq!(v["bin"], json!({"x": "bin/x.js"}));
        assert_eq!(v["dependencies"], json!({"a": "1"}));
        assert_eq!(v["bundleDependencies"], json!(["a", "b"]));
        assert!(v.get("bundledDependencies").is_none());
        assert_eq!(v["scripts"], json!({"t": "jest"}));
        assert_eq!(v["funding"], json!({"url": "https://f"}));
    }

    #[test]
    fn flags_follow_reachability_like_calc_dep_flags() {
        let d = tempfile::tempdir().unwrap();
        let w = |p: &str, v: Value| {
            let dir = d.path().join(p);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("package.json"), v.to_string()).unwrap();
        };
        w(
            "",
            json!({"name":"r","dependencies":{"a":"1"},"devDependencies":{"d":"1"}}),
        );
        w(
            "node_modules/a",
            json!({"name":"a","version":"1.0.0","peerDependencies":{"p":"1"}}),
        );
        w(
            "node_modules/d",
            json!({"name":"d","version":"1.0.0","dependencies":{"a":"1"}}),
        );
        w("node_modules/p", json!({"name":"p","version":"1.0.0"}));
        w("node_modules/x", json!({"name":"x","version":"1.0.0"}));
        let g = load(d.path(), None).unwrap();
        let by = |n: &str| g.nodes.iter().find(|x| x.name == n).unwrap();
        assert!(!by("a").dev && !by("a").peer);
        assert!(by("d").dev && !by("d").extraneous);
        assert!(by("p").peer && !by("p").dev);
        assert!(by("x").extraneous && by("x").dev);
        assert_eq!(by("a").edges_in.len(), 2);
    }
}
