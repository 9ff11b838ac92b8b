//! package-lock.json (lockfileVersion 2 and 3): read into a `Tree`, check against package.json,
//! and write in npm's format (so that `npm ci` accepts it) with `resolved` and `integrity` for
//! every package.
//!
//! Writing is `write::render_tree`, which prints straight from the tree in npm's format.
//!
//! Must not: resolve anything from the registry; a lock that does not fit is reported, and the
//! caller decides whether to re-resolve or (for `hoard ci`) fail.

mod write;

pub use write::render_tree;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::error::{HoardError, Result};
use crate::ideal::collate::locale_cmp;
use crate::pick::platform_ok;
use crate::registry::config::NpmConfig;
use crate::registry::packument::{Manifest, str_map};
use crate::spec::{Spec, validate_name};
use crate::tree::{Edge, EdgeKind, Node, NodeKind, Tree, name_from_location};

pub const FILE: &str = "package-lock.json";

/// Parse a JSON file, with file, line and column in the error.
pub fn parse_json_file(path: &Path) -> Result<Option<(Value, Vec<u8>)>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(HoardError::io("reading", path, e)),
    };
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| json_error(path, &bytes, &e))?;
    Ok(Some((v, bytes)))
}

/// A JSON syntax error as `file:line:column: what; what to do`. A trailing comma is placed at
/// the comma (serde_json reports the bracket after it).
pub fn json_error(path: &Path, bytes: &[u8], e: &serde_json::Error) -> HoardError {
    let (mut line, mut column) = (e.line(), e.column());
    let what = e.to_string();
    let what = what
        .rsplit_once(" at line ")
        .map(|(w, _)| w.to_string())
        .unwrap_or(what);
    if what.starts_with("trailing comma")
        && let Some(at) = offset_of(bytes, line, column)
        && let Some(comma) = bytes[..at].iter().rposition(|b| !b.is_ascii_whitespace())
        && bytes[comma] == b','
    {
        line = 1 + bytes[..comma].iter().filter(|b| **b == b'\n').count();
        column = comma
            - bytes[..comma]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1)
            + 1;
    }
    HoardError::InvalidInput(format!(
        "{}:{line}:{column}: invalid JSON: {what}; fix the file and run the command again",
        path.display()
    ))
}

/// The byte offset of a 1-based line and column (serde_json's column is 1-based too).
fn offset_of(bytes: &[u8], line: usize, column: usize) -> Option<usize> {
    let mut start = 0;
    for _ in 1..line {
        start += bytes[start..].iter().position(|b| *b == b'\n')? + 1;
    }
    let at = start + column.checked_sub(1)?;
    (at <= bytes.len()).then_some(at)
}

/// The tarball URL npm would use for `name@version` on the configured registry (for locks
/// written without `resolved`).
pub fn default_tarball_url(cfg: &NpmConfig, name: &str, version: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    format!("{}{name}/-/{base}-{version}.tgz", cfg.registry_for(name))
}

fn parent_location(loc: &str) -> Option<&str> {
    crate::tree::location_parts(loc).map(|(parent, _)| parent)
}

/// Build a tree from a lockfile. `root` is the project's package.json; `workspace_manifests`
/// the members' package.json by folder. Errors when the lock is not a v2/v3 lock.
pub fn tree_from_lock(
    lock: &Value,
    root: Arc<Manifest>,
    workspace_manifests: &HashMap<String, Arc<Manifest>>,
    cfg: &NpmConfig,
) -> Result<Tree> {
    let Some(packages) = lock.get("packages").and_then(Value::as_object) else {
        return Err(HoardError::Lockfile(
            "package-lock.json has no `packages` section (lockfileVersion 1, from npm 6); it \
             will be replaced"
                .into(),
        ));
    };
    let mut tree = Tree::default();
    tree.nodes.push(Node::new(
        root.name.clone(),
        String::new(),
        None,
        NodeKind::Root,
        root.clone(),
        true,
    ));
    let mut by_loc: HashMap<String, usize> = HashMap::from([(String::new(), 0)]);
    let mut keys: Vec<&String> = packages.keys().filter(|k| !k.is_empty()).collect();
    // Parents before children.
    keys.sort_by_cached_key(|k| (k.matches("node_modules/").count(), *k));
    for key in keys {
        let entry = &packages[key.as_str()];
        let is_nm = key.contains("node_modules/");
        let name = name_from_location(key).to_string();
        let parent = if is_nm {
            validate_name(&name).map_err(|e| {
                HoardError::Lockfile(format!("package-lock.json entry `{key}`: {e}"))
            })?;
            let pl = parent_location(key).unwrap_or("");
            // Entries below a link target outside node_modules are not installed by hoard;
            // anything else is a broken lock.
            *by_loc.get(pl).ok_or_else(|| {
                HoardError::Lockfile(format!(
                    "package-lock.json entry `{key}` has no parent entry `{pl}`"
                ))
            })?
        } else {
            0
        };
        let (kind, manifest) = entry_kind(key, &name, entry, workspace_manifests, cfg)?;
        let idx = tree.nodes.len();
        let ws_name = if kind == NodeKind::Workspace {
            manifest.name.clone()
        } else {
            name.clone()
        };
        let platform = platform_ok(&manifest);
        let mut node = Node::new(
            ws_name,
            key.to_string(),
            Some(parent),
            kind,
            manifest,
            platform,
        );
        node.in_bundle = entry.get("inBundle").and_then(Value::as_bool) == Some(true);
        tree.nodes.push(node);
        if is_nm {
            tree.nodes[parent].children.insert(name, idx);
        }
        by_loc.insert(key.to_string(), idx);
    }
    resolve_edges(&mut tree);
    tree.compute_flags();
    Ok(tree)
}

/// What a lock entry is (a link, a workspace folder or a package) and its manifest.
fn entry_kind(
    key: &str,
    name: &str,
    entry: &Value,
    workspace_manifests: &HashMap<String, Arc<Manifest>>,
    cfg: &NpmConfig,
) -> Result<(NodeKind, Arc<Manifest>)> {
    let from_entry = || Arc::new(Manifest::from_json(name, entry));
    if entry.get("link").and_then(Value::as_bool).unwrap_or(false) {
        let target = entry
            .get("resolved")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let m = workspace_manifests.get(&target).cloned();
        return Ok((NodeKind::Link { target }, m.unwrap_or_else(from_entry)));
    }
    if !key.contains("node_modules/") {
        let m = workspace_manifests.get(key).cloned();
        return Ok((NodeKind::Workspace, m.unwrap_or_else(from_entry)));
    }
    let m = Manifest::from_json(name, entry);
    let real_name = m.name.clone();
    validate_name(&real_name)
        .map_err(|e| HoardError::Lockfile(format!("package-lock.json entry `{key}`: {e}")))?;
    let version = m.version.clone();
    if version.is_empty() {
        return Err(HoardError::Lockfile(format!(
            "package-lock.json entry `{key}` has no version"
        )));
    }
    let resolved = entry
        .get("resolved")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| default_tarball_url(cfg, &real_name, &version));
    let integrity = entry
        .get("integrity")
        .and_then(Value::as_str)
        .map(String::from);
    let kind = NodeKind::Package {
        real_name,
        version,
        resolved,
        integrity,
    };
    Ok((kind, Arc::new(m)))
}

/// Every node's edges, resolved the way Node's require would find them; and the root's edges
/// to workspace links.
fn resolve_edges(tree: &mut Tree) {
    for i in 0..tree.nodes.len() {
        let n = &tree.nodes[i];
        let is_rootlike = matches!(n.kind, NodeKind::Root | NodeKind::Workspace);
        if matches!(n.kind, NodeKind::Link { .. }) {
            continue;
        }
        // The same edges the resolver derives from a manifest; a bundle's packages and the
        // package that bundles them have every dependency as an edge, bundled ones included
        // (they resolve inside the bundle), as `Resolver::add_bundles` gives them.
        let bundles = !is_rootlike && (n.in_bundle || n.manifest.bundles_any());
        let mut edges = crate::tree::edges_of(&n.manifest, is_rootlike || bundles, is_rootlike);
        for e in &mut edges {
            let start = if matches!(e.kind, EdgeKind::Peer | EdgeKind::PeerOptional) && i != 0 {
                tree.nodes[i].parent.unwrap_or(0)
            } else {
                i
            };
            e.to = tree.resolve_from(start, &e.name);
        }
        edges.sort_by(|a, b| a.name.cmp(&b.name));
        tree.nodes[i].edges = edges;
    }
    let links: Vec<(String, usize)> = tree.nodes[0]
        .children
        .iter()
        .filter(|(_, c)| matches!(tree.nodes[**c].kind, NodeKind::Link { .. }))
        .map(|(n, &c)| (n.clone(), c))
        .collect();
    for (name, c) in links {
        if !tree.nodes[0].edges.iter().any(|e| e.name == name) {
            tree.nodes[0].edges.push(Edge {
                name,
                spec: "*".into(),
                kind: EdgeKind::Prod,
                to: Some(c),
            });
        }
    }
}

/// Why the lock does not fit package.json: root/workspace declarations that differ, and
/// edges that resolve to nothing or to a version outside their range.
pub fn mismatches(lock: &Value, tree: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    let packages = lock.get("packages").and_then(Value::as_object);
    for (i, n) in tree.nodes.iter().enumerate() {
        if matches!(n.kind, NodeKind::Root | NodeKind::Workspace) {
            let key = if i == 0 { "" } else { n.location.as_str() };
            let entry = packages.and_then(|p| p.get(key));
            let m = &n.manifest;
            for (field, declared) in [
                ("dependencies", &m.dependencies),
                ("devDependencies", &m.dev_dependencies),
                ("optionalDependencies", &m.optional_dependencies),
                ("peerDependencies", &m.peer_dependencies),
            ] {
                let locked = str_map(entry.and_then(|e| e.get(field)));
                if locked != *declared {
                    let label = if i == 0 {
                        "package.json".to_string()
                    } else {
                        format!("{key}/package.json")
                    };
                    for (k, v) in declared {
                        match locked.get(k) {
                            None => out.push(format!(
                                "{label}: {field}.{k} `{v}` is not in package-lock.json"
                            )),
                            Some(l) if l != v => out.push(format!(
                                "{label}: {field}.{k} is `{v}` but package-lock.json has `{l}`"
                            )),
                            _ => {}
                        }
                    }
                    for k in locked.keys() {
                        if !declared.contains_key(k) {
                            out.push(format!("{label}: {field}.{k} is in package-lock.json but not in package.json"));
                        }
                    }
                }
            }
        }
    }
    // Edges share specs and nodes are reached by many edges: each spec and each version is
    // parsed once.
    let mut wants: HashMap<(&str, &str), Want> = HashMap::new();
    let mut versions: Vec<Option<Option<semver::Version>>> = vec![None; tree.nodes.len()];
    for n in &tree.nodes {
        for e in &n.edges {
            let optional = matches!(e.kind, EdgeKind::Optional | EdgeKind::PeerOptional);
            match e.to {
                None if !optional => out.push(format!(
                    "{} needs {}@{} but package-lock.json has no such package where it looks",
                    if n.location.is_empty() {
                        "the project".to_string()
                    } else {
                        n.pkg_id()
                    },
                    e.name,
                    e.spec
                )),
                Some(to) => {
                    let t = &tree.nodes[to];
                    let want = wants
                        .entry((e.name.as_str(), e.spec.as_str()))
                        .or_insert_with(|| Want::of(&e.name, &e.spec));
                    let version = versions[to]
                        .get_or_insert_with(|| crate::semver_npm::parse_version(t.version()));
                    let ok = want.met_by(t.real_name(), version.as_ref());
                    if !ok && !matches!(e.kind, EdgeKind::Peer | EdgeKind::PeerOptional) {
                        out.push(format!(
                            "{} needs {}@{} but package-lock.json gives it {}",
                            if n.location.is_empty() {
                                "the project".to_string()
                            } else {
                                n.pkg_id()
                            },
                            e.name,
                            e.spec,
                            t.pkg_id()
                        ));
                    }
                }
                None => {}
            }
        }
    }
    out
}

/// What an edge's spec asks of the package it reaches, for `mismatches`.
enum Want {
    /// This package name, in this range (`None`: a range that does not parse, met by nothing).
    Range(String, Option<crate::semver_npm::Range>),
    /// This package name, any version (an alias to a tag, a URL…).
    Named(String),
    /// Anything (a tag, a URL, a folder, git).
    Any,
    /// A spec that does not parse.
    Invalid,
}

impl Want {
    fn of(name: &str, spec: &str) -> Want {
        use crate::semver_npm::Range;
        match Spec::parse(name, spec) {
            Ok(Spec::Range(r)) => Want::Range(name.to_string(), Range::parse(&r)),
            Ok(Spec::Alias { name, spec }) => match *spec {
                Spec::Range(r) => Want::Range(name, Range::parse(&r)),
                _ => Want::Named(name),
            },
            Ok(_) => Want::Any,
            Err(_) => Want::Invalid,
        }
    }

    fn met_by(&self, real_name: &str, version: Option<&semver::Version>) -> bool {
        match self {
            Want::Range(name, range) => {
                real_name == name
                    && match (range, version) {
                        (Some(r), Some(v)) => r.satisfies(v),
                        _ => false,
                    }
            }
            Want::Named(name) => real_name == name,
            Want::Any => true,
            Want::Invalid => false,
        }
    }
}

/// name → versions the lock has, to prefer them when re-resolving.
pub fn preferred_versions(lock: &Value) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(p) = lock.get("packages").and_then(Value::as_object) {
        for (k, v) in p {
            if !k.contains("node_modules/") {
                continue;
            }
            let name = v
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_else(|| name_from_location(k));
            if let Some(ver) = v.get("version").and_then(Value::as_str) {
                out.entry(name.to_string())
                    .or_default()
                    .push(ver.to_string());
            }
        }
    }
    out
}

/// Where `k` is among the keys npm puts first, in this order (arborist's `swKeyOrder`): a
/// `match`, as the lockfile's writer asks this for every comparison while sorting.
fn key_rank(k: &str) -> Option<usize> {
    Some(match k {
        "name" => 0,
        "version" => 1,
        "lockfileVersion" => 2,
        "resolved" => 3,
        "integrity" => 4,
        "requires" => 5,
        "packages" => 6,
        "dependencies" => 7,
        _ => return None,
    })
}

/// json-stringify-nice's order of two keys, given whether each one's value is an object.
fn key_order(ak: &str, a_object: bool, bk: &str, b_object: bool) -> std::cmp::Ordering {
    a_object
        .cmp(&b_object)
        .then_with(|| match (key_rank(ak), key_rank(bk)) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => locale_cmp(ak, bk),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_as_npm_sorts_them() {
        // As node sorts with localeCompare(…, 'en').
        let mut names = [
            "a-b", "a_b", "a.b", "ab", "a/b", "@a/b", "A", "a", "aB", "ab1", "a1", "a-", "abc",
            "ab-c", "ab.c", "abC", "Abc",
        ];
        names.sort_by(|a, b| locale_cmp(a, b));
        assert_eq!(
            names,
            [
                "@a/b", "a", "A", "a_b", "a-", "a-b", "a.b", "a/b", "a1", "ab", "aB", "ab-c",
                "ab.c", "ab1", "abc", "abC", "Abc"
            ]
        );
        let entry = serde_json::json!({"license": "MIT", "dependencies": {"b": "1", "a": "1"},
            "deprecated": "x", "integrity": "i", "bin": {"x": "y"}, "version": "1.0.0",
            "resolved": "r", "os": ["linux"], "engines": {"node": ">=8"}, "dev": true});
        let text = String::from_utf8(write::render_value(&entry)).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  \"") && !l.starts_with("    "))
            .map(|l| l.trim().split('"').nth(1).unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "version",
                "resolved",
                "integrity",
                "deprecated",
                "dev",
                "license",
                "os",
                "dependencies",
                "bin",
                "engines"
            ]
        );
        assert!(text.contains("\"a\": \"1\",\n    \"b\""), "{text}");
    }

    #[test]
    fn a_trailing_comma_is_reported_where_it_is() {
        let text = b"{\n  \"a\": 1,\n  \"b\": 2,\n}\n";
        let e = serde_json::from_slice::<Value>(text).unwrap_err();
        let msg = json_error(Path::new("package.json"), text, &e).to_string();
        assert!(
            msg.contains("package.json:3:9: invalid JSON: trailing comma"),
            "{msg}"
        );
        let text = b"{\"a\": }";
        let e = serde_json::from_slice::<Value>(text).unwrap_err();
        let msg = json_error(Path::new("x.json"), text, &e).to_string();
        assert!(
            msg.contains("x.json:1:7: invalid JSON: expected value;"),
            "{msg}"
        );
    }
}
