//! package-lock.json's bytes written straight from the tree: each entry's fields borrowed from
//! its node and manifest, ordered as npm orders them and printed as npm prints them (two-space
//! indentation, json-stringify-nice's key order), without building a `serde_json::Value` of
//! the whole lockfile first. A unit test writes back every npm lockfile of the corpus byte for
//! byte.
//!
//! Must not: do I/O, or decide what the tree holds (the resolver and `tree_from_lock` do).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::Value;

use super::key_order;
use crate::registry::packument::{Engines, PeerMeta};
use crate::tree::{Node, NodeKind, Tree};

/// Fields of the old lockfile that the metadata an entry is rewritten from may lack (a
/// registry's abbreviated documents have no `license` or `funding`; a mirror may drop
/// `deprecated`): an entry still at the same place,
/// with the same version and integrity, keeps them, so an add, remove or update leaves
/// untouched entries as they were.
const KEPT: [&str; 9] = [
    "license",
    "funding",
    "deprecated",
    "engines",
    "bin",
    "hasInstallScript",
    "os",
    "cpu",
    "libc",
];

/// One value of an entry, borrowed where it can be.
enum V<'a> {
    Str(&'a str),
    True,
    False,
    Json(&'a Value),
    Map(&'a BTreeMap<String, String>),
    Pairs(BTreeMap<String, String>),
    List(&'a [String]),
    FundingUrl(&'a str),
    PeerMeta(&'a BTreeMap<String, PeerMeta>),
    Packages(Vec<(&'a str, Fields<'a>)>),
    Int(u64),
}

type Fields<'a> = Vec<(&'a str, V<'a>)>;

impl V<'_> {
    fn is_object(&self) -> bool {
        match self {
            V::Json(v) => v.is_object(),
            V::Map(_) | V::Pairs(_) | V::FundingUrl(_) | V::PeerMeta(_) | V::Packages(_) => true,
            V::Str(_) | V::True | V::False | V::List(_) | V::Int(_) => false,
        }
    }
}

/// package-lock.json's bytes for `tree`. `pkg_json` is the project's package.json (for the
/// root entry); `omit_registry_resolved` is npm's `omit-lockfile-registry-resolved` (no
/// `resolved` for registry packages: they are fetched from whatever registry is configured
/// then); `old` is the lockfile being replaced, whose untouched entries keep the `KEPT` fields.
pub fn render_tree(
    tree: &Tree,
    pkg_json: &Value,
    omit_registry_resolved: bool,
    old: Option<&Value>,
) -> Vec<u8> {
    let old_pkgs = old
        .and_then(|o| o.get("packages"))
        .and_then(Value::as_object);
    let unreachable = tree.unreachable();
    let mut packages: Vec<(&str, Fields<'_>)> = Vec::with_capacity(tree.nodes.len());
    packages.push(("", root_fields(tree, pkg_json)));
    for (i, n) in tree.nodes.iter().enumerate().skip(1) {
        if unreachable.contains(&i) {
            continue;
        }
        let Some(mut f) = entry_fields(n, omit_registry_resolved) else {
            continue;
        };
        if let Some(o) = old_pkgs.and_then(|p| p.get(&n.location)) {
            keep_untouched(&mut f, o);
        }
        packages.push((&n.location, f));
    }
    let mut top: Fields<'_> = Vec::with_capacity(5);
    match pkg_json.get("name") {
        Some(v) => top.push(("name", V::Json(v))),
        None => top.push(("name", V::Str(""))),
    }
    if let Some(v) = pkg_json.get("version") {
        top.push(("version", V::Json(v)));
    }
    top.push(("lockfileVersion", V::Int(3)));
    top.push(("requires", V::True));
    top.push(("packages", V::Packages(packages)));
    let mut out = Vec::with_capacity(tree.nodes.len() * 480 + 1024);
    write_fields(&mut out, &mut top, 0);
    out.push(b'\n');
    out
}

/// The `""` entry: the root package's own declarations.
fn root_fields<'a>(tree: &'a Tree, pkg_json: &'a Value) -> Fields<'a> {
    let mut f: Fields<'a> = Vec::new();
    for key in ["name", "version", "license", "workspaces"] {
        if let Some(v) = pkg_json.get(key) {
            f.push((key, V::Json(v)));
        }
    }
    let rm = &tree.root().manifest;
    put_map(&mut f, "dependencies", &rm.dependencies);
    put_map(&mut f, "devDependencies", &rm.dev_dependencies);
    put_map(&mut f, "optionalDependencies", &rm.optional_dependencies);
    put_map(&mut f, "peerDependencies", &rm.peer_dependencies);
    for key in ["bin", "engines"] {
        if let Some(v) = pkg_json.get(key) {
            f.push((key, V::Json(v)));
        }
    }
    f
}

fn put_map<'a>(f: &mut Fields<'a>, key: &'a str, m: &'a BTreeMap<String, String>) {
    if !m.is_empty() {
        f.push((key, V::Map(m)));
    }
}

/// One node's fields (`None` for the root).
fn entry_fields(n: &Node, omit_registry_resolved: bool) -> Option<Fields<'_>> {
    let m = &n.manifest;
    let mut f: Fields<'_> = Vec::with_capacity(12);
    match &n.kind {
        NodeKind::Link { target } => {
            f.push(("resolved", V::Str(target)));
            f.push(("link", V::True));
            return Some(f);
        }
        NodeKind::Workspace => {
            f.push(("name", V::Str(&m.name)));
            if !m.version.is_empty() {
                f.push(("version", V::Str(&m.version)));
            }
        }
        NodeKind::Package {
            real_name,
            version,
            resolved,
            integrity,
        } => {
            if *real_name != n.name {
                f.push(("name", V::Str(real_name)));
            }
            f.push(("version", V::Str(version)));
            if n.in_bundle {
                f.push(("inBundle", V::True));
            } else {
                if !(omit_registry_resolved && crate::tree::is_registry_resolved(resolved)) {
                    f.push(("resolved", V::Str(resolved)));
                }
                if let Some(i) = integrity {
                    f.push(("integrity", V::Str(i)));
                }
            }
        }
        NodeKind::Root => return None,
    }
    put_flags(&mut f, n);
    if m.has_install_script || m.install_scripts() {
        f.push(("hasInstallScript", V::True));
    }
    if let Some(l) = &m.license {
        f.push(("license", V::Str(l)));
    }
    if npm_keeps(&m.bundle_dependencies) {
        f.push(("bundleDependencies", V::Json(&m.bundle_dependencies)));
    }
    if n.kind != NodeKind::Workspace && npm_keeps(&m.workspaces) {
        f.push(("workspaces", V::Json(&m.workspaces)));
    }
    put_map(&mut f, "dependencies", &m.dependencies);
    if n.kind == NodeKind::Workspace {
        put_map(&mut f, "devDependencies", &m.dev_dependencies);
    }
    put_map(&mut f, "optionalDependencies", &m.optional_dependencies);
    put_manifest_tail(&mut f, n);
    Some(f)
}

/// Whether npm copies a manifest field into the lockfile (arborist's `metaFieldFromPkg`): a
/// truthy value that is not an empty object or array.
fn npm_keeps(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(true) => true,
    }
}

/// `extraneous`, or `dev`, `optional`, `devOptional`, `peer`.
fn put_flags(f: &mut Fields<'_>, n: &Node) {
    if n.extraneous {
        f.push(("extraneous", V::True));
        return;
    }
    let flags = [
        ("dev", n.dev),
        ("optional", n.optional),
        ("devOptional", n.dev_optional && !n.dev && !n.optional),
        ("peer", n.peer),
    ];
    for (key, on) in flags {
        if on {
            f.push((key, V::True));
        }
    }
}

/// `bin`, `engines`, `funding`, `os`, `cpu`, `libc`, `deprecated`, `peerDependencies`,
/// `peerDependenciesMeta`.
fn put_manifest_tail<'a>(f: &mut Fields<'a>, n: &'a Node) {
    let m = &n.manifest;
    if !m.bin.is_null() {
        let bins = crate::linker::bins::normalized(&n.name, m);
        if !bins.is_empty() {
            f.push(("bin", V::Pairs(bins)));
        }
    }
    match &m.engines {
        Engines::Map(engines) => put_map(f, "engines", engines),
        Engines::List(engines) => f.push(("engines", V::List(engines))),
    }
    let empty = match &m.funding {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    if !empty {
        f.push(match &m.funding {
            Value::String(url) => ("funding", V::FundingUrl(url)),
            other => ("funding", V::Json(other)),
        });
    }
    for (key, list) in [("os", &m.os), ("cpu", &m.cpu), ("libc", &m.libc)] {
        if !list.is_empty() {
            f.push((key, V::List(list)));
        }
    }
    if let Some(d) = &m.deprecated {
        f.push(("deprecated", V::Str(d)));
    }
    put_map(f, "peerDependencies", &m.peer_dependencies);
    if !m.peer_dependencies_meta.is_empty() {
        f.push((
            "peerDependenciesMeta",
            V::PeerMeta(&m.peer_dependencies_meta),
        ));
    }
}

/// The same version and integrity as the old entry → the old entry's `KEPT` fields the new one
/// lacks are added.
fn keep_untouched<'a>(f: &mut Fields<'a>, old: &'a Value) {
    let same = |key: &str| {
        let new = f
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| match v {
                V::Str(s) => Some(*s),
                _ => None,
            });
        new.is_some() && new == old.get(key).and_then(Value::as_str)
    };
    if !same("version") || !same("integrity") {
        return;
    }
    for key in KEPT {
        if !f.iter().any(|(k, _)| *k == key)
            && let Some(v) = old.get(key)
        {
            f.push((key, V::Json(v)));
        }
    }
}

/// Any JSON value as the lockfile writer prints it (two-space indentation, npm's key order).
#[cfg(test)]
pub fn render_value(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_json(&mut out, v, 0);
    out
}

/// Write `fields` as an object at nesting `depth`, its keys in npm's order.
fn write_fields(out: &mut Vec<u8>, fields: &mut [(&str, V<'_>)], depth: usize) {
    fields.sort_by(|(ak, av), (bk, bv)| key_order(ak, av.is_object(), bk, bv.is_object()));
    write_object(out, fields, depth, write_v);
}

/// An object whose members are already in order: `{}` when empty, else one member per line.
fn write_object<K: AsRef<str>, T>(
    out: &mut Vec<u8>,
    members: &mut [(K, T)],
    depth: usize,
    value: impl FnMut(&mut Vec<u8>, &mut T, usize),
) {
    if members.is_empty() {
        out.extend_from_slice(b"{}");
        return;
    }
    out.push(b'{');
    write_members(out, members, 0, depth, value);
    close(out, depth, b'}');
}

/// An object's members, one per line, the first of them member number `from` (a comma before
/// all but member 0).
fn write_members<K: AsRef<str>, T>(
    out: &mut Vec<u8>,
    members: &mut [(K, T)],
    from: usize,
    depth: usize,
    mut value: impl FnMut(&mut Vec<u8>, &mut T, usize),
) {
    for (i, (k, v)) in members.iter_mut().enumerate() {
        open_entry(out, from + i, depth + 1);
        write_str(out, k.as_ref());
        out.extend_from_slice(b": ");
        value(out, v, depth + 1);
    }
}

/// An array: `[]` when empty, else one element per line.
fn write_array<T>(
    out: &mut Vec<u8>,
    items: &[T],
    depth: usize,
    mut item: impl FnMut(&mut Vec<u8>, &T, usize),
) {
    if items.is_empty() {
        out.extend_from_slice(b"[]");
        return;
    }
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        open_entry(out, i, depth + 1);
        item(out, x, depth + 1);
    }
    close(out, depth, b']');
}

fn write_v(out: &mut Vec<u8>, v: &mut V<'_>, depth: usize) {
    match v {
        V::Str(s) => write_str(out, s),
        V::True => out.extend_from_slice(b"true"),
        V::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
        V::Json(v) => write_json(out, v, depth),
        V::Map(m) => write_string_map(out, m.iter(), depth),
        V::Pairs(m) => write_string_map(out, m.iter(), depth),
        V::List(l) => write_array(out, l, depth, |out, s, _| write_str(out, s)),
        V::FundingUrl(url) => write_fields(out, &mut [("url", V::Str(url))], depth),
        V::PeerMeta(m) => {
            let mut keys: Vec<(&String, bool)> = m.iter().map(|(k, p)| (k, p.optional)).collect();
            keys.sort_by(|(a, _), (b, _)| key_order(a, true, b, true));
            write_object(out, &mut keys, depth, |out, optional, depth| {
                let mut f = [("optional", if *optional { V::True } else { V::False })];
                write_object(out, &mut f, depth, write_v);
            });
        }
        V::Packages(entries) => {
            entries.sort_by(|(a, _), (b, _)| key_order(a, true, b, true));
            write_packages(out, entries, depth);
        }
        V::False => out.extend_from_slice(b"false"),
    }
}

/// Entries past this many are written by two threads, half each (the writer is a tenth of a
/// warm resolve, and the daemon has nothing else to do while the client waits).
const PACKAGES_PER_THREAD: usize = 256;

/// One entry of `packages`: its fields, in npm's order.
fn entry(out: &mut Vec<u8>, fields: &mut Fields<'_>, depth: usize) {
    write_fields(out, fields, depth)
}

/// The `packages` object, its entries already in order.
fn write_packages(out: &mut Vec<u8>, entries: &mut [(&str, Fields<'_>)], depth: usize) {
    if entries.len() < 2 * PACKAGES_PER_THREAD {
        write_object(out, entries, depth, entry);
        return;
    }
    let mid = entries.len() / 2;
    let (first, second) = entries.split_at_mut(mid);
    out.push(b'{');
    std::thread::scope(|s| {
        let other = s.spawn(|| {
            let mut tail = Vec::with_capacity(second.len() * 480);
            write_members(&mut tail, second, mid, depth, entry);
            tail
        });
        write_members(out, first, 0, depth, entry);
        match other.join() {
            Ok(tail) => out.extend_from_slice(&tail),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    close(out, depth, b'}');
}

/// An object of strings, its keys in npm's order.
fn write_string_map<'a>(
    out: &mut Vec<u8>,
    m: impl Iterator<Item = (&'a String, &'a String)>,
    depth: usize,
) {
    let mut pairs: Vec<(&String, &String)> = m.collect();
    if !pairs.is_sorted_by(|(a, _), (b, _)| key_order(a, false, b, false) != Ordering::Greater) {
        pairs.sort_by(|(a, _), (b, _)| key_order(a, false, b, false));
    }
    write_object(out, &mut pairs, depth, |out, v, _| write_str(out, v));
}

/// Any JSON value, objects' keys in npm's order, spaced as serde_json's pretty printer spaces
/// it.
fn write_json(out: &mut Vec<u8>, v: &Value, depth: usize) {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|(ak, av), (bk, bv)| key_order(ak, av.is_object(), bk, bv.is_object()));
            write_object(out, &mut entries, depth, |out, v, depth| {
                write_json(out, v, depth)
            });
        }
        Value::Array(a) => write_array(out, a, depth, write_json),
        Value::String(s) => write_str(out, s),
        // Numbers, booleans, null: serde_json's own spelling.
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

/// Before the `i`th member of an object or array: a comma after the previous one, a new line,
/// the indentation.
fn open_entry(out: &mut Vec<u8>, i: usize, depth: usize) {
    if i > 0 {
        out.push(b',');
    }
    out.push(b'\n');
    indent(out, depth);
}

fn close(out: &mut Vec<u8>, depth: usize, bracket: u8) {
    out.push(b'\n');
    indent(out, depth);
    out.push(bracket);
}

fn indent(out: &mut Vec<u8>, depth: usize) {
    out.resize(out.len() + 2 * depth, b' ');
}

/// A JSON string as serde_json escapes it: `"` and `\`, and control characters (the common
/// ones by letter, the rest as `\u00XX`); everything else as it is.
fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most strings (versions, URLs, integrity) need no escape: one pass without branches.
    let plain = !bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::render_tree;
    use crate::registry::config::NpmConfig;
    use crate::registry::packument::Manifest;
    use crate::tree::Tree;

    fn tree_of(lock: &Value, pkg_json: &Value) -> Tree {
        let root = Arc::new(Manifest::from_json("root", pkg_json));
        super::super::tree_from_lock(lock, root, &HashMap::new(), &NpmConfig::default()).unwrap()
    }

    /// Every lockfile npm wrote for the corpus's projects, read into a tree and written again
    /// with npm's as the old lockfile: the same bytes as npm's; and without it, the same JSON
    /// (old-style `engines` arrays included).
    #[test]
    fn npm_lockfiles_of_the_corpus_are_written_back_byte_for_byte() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/projects");
        let mut checked = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let (Ok(lock_bytes), Ok(pkg)) = (
                std::fs::read(p.join("npm-lock.json")),
                std::fs::read(p.join("package.json")),
            ) else {
                continue;
            };
            let lock: Value = serde_json::from_slice(&lock_bytes).unwrap();
            let pkg: Value = serde_json::from_slice(&pkg).unwrap();
            let tree = tree_of(&lock, &pkg);
            let ours = render_tree(&tree, &pkg, false, Some(&lock));
            let (a, b) = (
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&lock_bytes),
            );
            let first = a.lines().zip(b.lines()).position(|(x, y)| x != y);
            assert!(
                ours == lock_bytes,
                "{}: first different line {:?}: ours {:?}, npm's {:?}",
                p.display(),
                first,
                first.and_then(|i| a.lines().nth(i)),
                first.and_then(|i| b.lines().nth(i)),
            );
            let fresh: Value =
                serde_json::from_slice(&render_tree(&tree, &pkg, false, None)).unwrap();
            let npm = lock.clone();
            assert!(
                fresh == npm,
                "{}: differs without the old lockfile",
                p.display()
            );
            checked += 1;
        }
        assert!(
            checked >= 20,
            "only {checked} corpus lockfiles found in {}",
            dir.display()
        );
    }

    fn lock_with(packages: Value) -> Value {
        json!({"name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
               "packages": packages})
    }

    /// Output of the tree writer, read back and printed again by the generic writer: the same
    /// bytes (one format, one key order for both).
    fn round_trip(bytes: &[u8]) -> Value {
        let v: Value = serde_json::from_slice(bytes).unwrap();
        let mut again = super::render_value(&v);
        again.push(b'\n');
        assert_eq!(
            String::from_utf8_lossy(&again),
            String::from_utf8_lossy(bytes)
        );
        v
    }

    #[test]
    fn odd_entries_are_written_as_npm_writes_them() {
        let pkg = json!({"name": "app", "version": "1.0.0",
            "dependencies": {"name": "1", "version": "^2", "a": "1", "w": "file:w", "l": "file:l"}});
        let lock = lock_with(json!({
            "": {"name": "app", "version": "1.0.0",
                 "dependencies": {"name": "1", "version": "^2", "a": "1", "w": "file:w", "l": "file:l"}},
            "node_modules/name": {"version": "1.0.0", "resolved": "https://r/name/-/name-1.0.0.tgz",
                "integrity": "sha512-n", "funding": "https://fund/me",
                "deprecated": "say \"no\"\n\tplease \u{1} é", "license": "MIT",
                "bundleDependencies": ["version"], "dependencies": {"version": "2"},
                "peerDependencies": {"z": "1", "y": "2"},
                "peerDependenciesMeta": {"z": {"optional": true}, "y": {"optional": false}}},
            "node_modules/name/node_modules/version": {"version": "2.0.0", "inBundle": true,
                "license": "ISC"},
            "node_modules/version": {"version": "2.1.0", "resolved": "https://r/version/-/version-2.1.0.tgz",
                "integrity": "sha512-v", "bin": {"v": "cli.js"}, "os": ["linux", "darwin"],
                "engines": {"node": ">=8", "npm": "*"}, "hasInstallScript": true},
            "node_modules/a": {"name": "@real/a", "version": "1.0.0",
                "resolved": "https://r/@real/a/-/a-1.0.0.tgz", "integrity": "sha512-a",
                "workspaces": ["packages/*"], "funding": [{"url": "x"}, "y"]},
            "node_modules/w": {"resolved": "w", "link": true},
            "w": {"name": "w", "version": "0.1.0", "devDependencies": {"a": "1"}},
            "node_modules/l": {"resolved": "l", "link": true},
            "l": {"version": "0.0.1"}
        }));
        let tree = tree_of(&lock, &pkg);
        let ours = render_tree(&tree, &pkg, false, None);
        let v = round_trip(&ours);
        let text = String::from_utf8_lossy(&ours);
        assert_eq!(
            v["packages"]["node_modules/name"]["funding"],
            json!({"url": "https://fund/me"})
        );
        assert_eq!(
            v["packages"]["node_modules/name"]["deprecated"],
            "say \"no\"\n\tplease \u{1} é"
        );
        assert!(
            text.contains(r#""deprecated": "say \"no\"\n\tplease \u0001 é","#),
            "{text}"
        );
        assert_eq!(
            v["packages"]["node_modules/name"]["bundleDependencies"],
            json!(["version"])
        );
        assert_eq!(
            v["packages"]["node_modules/name/node_modules/version"]["inBundle"],
            true
        );
        assert_eq!(v["packages"]["node_modules/a"]["name"], "@real/a");
        assert_eq!(
            v["packages"]["node_modules/a"]["workspaces"],
            json!(["packages/*"])
        );
        assert_eq!(v["packages"]["w"]["devDependencies"], json!({"a": "1"}));
        assert_eq!(
            v["packages"]["node_modules/w"],
            json!({"resolved": "w", "link": true})
        );
        // A dependency named `name` or `version` sorts first, as arborist's key list says.
        assert!(text.contains("\"dependencies\": {\n        \"name\": \"1\",\n        \"version\": \"^2\",\n        \"a\": \"1\""), "{text}");
        let omitted: Value = serde_json::from_slice(&render_tree(&tree, &pkg, true, None)).unwrap();
        assert!(
            omitted["packages"]["node_modules/version"]
                .get("resolved")
                .is_none()
        );
        assert_eq!(omitted["packages"]["node_modules/w"]["resolved"], "w");
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let all: String = (0u32..0x2100).filter_map(char::from_u32).collect();
        for s in [all.as_str(), "", "plain", "\u{7f}\u{1f}\"\\/"] {
            let mut out = Vec::new();
            super::write_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap());
        }
    }

    #[test]
    fn untouched_entries_keep_license_and_funding() {
        let pkg = json!({"name": "app", "dependencies": {"a": "1", "b": "2"}});
        let entries = |a_extra: Value, b_version: &str| {
            let mut a = json!({"version": "1.0.0", "resolved": "https://r/a/-/a-1.0.0.tgz",
                               "integrity": "i1"});
            for (k, v) in a_extra.as_object().unwrap() {
                a[k] = v.clone();
            }
            lock_with(
                json!({"": {"name": "app", "dependencies": {"a": "1", "b": "2"}},
                "node_modules/a": a,
                "node_modules/b": {"version": b_version, "resolved": "https://r/b/-/b.tgz",
                                   "integrity": format!("i-{b_version}"), "license": "ISC"}}),
            )
        };
        let old = entries(
            json!({"license": "MIT", "funding": {"url": "u"}, "deprecated": "old",
                   "engines": ["node >= 6.0"]}),
            "1.0.0",
        );
        let mut new = entries(json!({}), "2.0.0");
        new["packages"]["node_modules/b"]
            .as_object_mut()
            .unwrap()
            .shift_remove("license");
        let tree = tree_of(&new, &pkg);
        let v = round_trip(&render_tree(&tree, &pkg, false, Some(&old)));
        let a = &v["packages"]["node_modules/a"];
        assert_eq!(a["license"], "MIT");
        assert_eq!(a["funding"]["url"], "u");
        assert_eq!(a["deprecated"], "old");
        assert_eq!(a["engines"][0], "node >= 6.0");
        assert!(
            v["packages"]["node_modules/b"].get("license").is_none(),
            "b was updated"
        );
    }

    #[test]
    fn entries_are_written_in_npm_order() {
        let want = [
            "",
            "node_modules/_x",
            "node_modules/@babel/core",
            "node_modules/a",
            "node_modules/a-b",
            "node_modules/a/node_modules/b",
            "node_modules/a0",
            "node_modules/ab",
            "node_modules/b",
            "node_modules/B",
        ];
        let mut packages = serde_json::Map::new();
        for k in want.iter().rev() {
            packages.insert(k.to_string(), json!({"license": "MIT", "version": "1.0.0"}));
        }
        let v = json!({"packages": packages, "lockfileVersion": 3, "name": "p"});
        let text = String::from_utf8(super::render_value(&v)).unwrap();
        let at = |k: &str| text.find(&format!("\"{k}\": {{")).unwrap();
        let got: Vec<usize> = want.iter().map(|k| at(k)).collect();
        assert!(got.is_sorted(), "{text}");
        // swKeyOrder first, then the rest by name; objects after the other values.
        assert!(text.find("\"name\"").unwrap() < text.find("\"lockfileVersion\"").unwrap());
        assert!(text.find("\"version\"").unwrap() < text.find("\"license\"").unwrap());
        assert!(text.find("\"lockfileVersion\"").unwrap() < text.find("\"packages\"").unwrap());
    }
}
