//! `hoard ls` and `hoard why`, read without the daemon from what describes node_modules:
//! package-lock.json, else the hidden lockfile npm keeps in node_modules
//! (`node_modules/.package-lock.json`) or hoard's copy (`node_modules/.hoard-lock.json`), else
//! the package.json files in node_modules themselves. Workspaces show as npm shows them: linked
//! from the root (`a@1.0.0 -> ./packages/a`), with their own dependencies below.
//!
//! Must not: change anything.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Value;

struct Lock {
    packages: BTreeMap<String, Value>,
}

/// The first of package-lock.json, npm's hidden lockfile and hoard's that exists, else a
/// description of node_modules read from its package.json files.
fn load(project: &Path) -> Result<Lock> {
    for rel in [
        "package-lock.json",
        "node_modules/.package-lock.json",
        "node_modules/.hoard-lock.json",
    ] {
        let path = project.join(rel);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading `{}`", path.display())),
        };
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing `{}`", path.display()))?;
        let Some(p) = v.get("packages").and_then(Value::as_object) else {
            bail!("`{}` has no `packages` section", path.display());
        };
        let mut packages: BTreeMap<String, Value> =
            p.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if !packages.contains_key("") {
            // Hidden lockfiles leave the root out.
            packages.insert(String::new(), read_manifest(&project.join("package.json")));
        }
        return Ok(Lock { packages });
    }
    let pj = project.join("package.json");
    if !pj.exists() {
        bail!(
            "`{}` has no package.json, package-lock.json or node_modules to list",
            project.display()
        );
    }
    let mut packages = BTreeMap::from([(String::new(), read_manifest(&pj))]);
    scan(project, &project.join("node_modules"), "", &mut packages);
    Ok(Lock { packages })
}

fn read_manifest(path: &Path) -> Value {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// Every package folder under `nm` (scoped ones too), as lockfile entries; a symlink to a
/// folder of the project (a workspace) as a link entry and that folder's own entry.
fn scan(project: &Path, nm: &Path, base: &str, out: &mut BTreeMap<String, Value>) {
    let Ok(rd) = std::fs::read_dir(nm) else {
        return;
    };
    let mut names: Vec<String> = Vec::new();
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().to_string();
        if n.starts_with('.') {
            continue;
        }
        if n.starts_with('@') {
            for s in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                names.push(format!("{n}/{}", s.file_name().to_string_lossy()));
            }
        } else {
            names.push(n);
        }
    }
    for name in names {
        let dir = nm.join(&name);
        let loc = if base.is_empty() {
            format!("node_modules/{name}")
        } else {
            format!("{base}/node_modules/{name}")
        };
        let m = read_manifest(&dir.join("package.json"));
        if m.is_null() {
            continue;
        }
        let linked = std::fs::symlink_metadata(&dir).is_ok_and(|md| md.is_symlink());
        let folder = std::fs::canonicalize(&dir).ok().and_then(|real| {
            real.strip_prefix(project)
                .ok()
                .map(|r| r.display().to_string())
        });
        match folder {
            Some(folder) if linked && !folder.contains("node_modules") => {
                out.insert(loc, serde_json::json!({"link": true, "resolved": folder}));
                if !out.contains_key(&folder) {
                    out.insert(folder.clone(), m);
                    scan(
                        project,
                        &project.join(&folder).join("node_modules"),
                        &folder,
                        out,
                    );
                }
            }
            _ => {
                out.insert(loc.clone(), m);
                scan(project, &dir.join("node_modules"), &loc, out);
            }
        }
    }
}

fn deps_of(entry: &Value, top: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut sections = vec!["dependencies", "optionalDependencies", "peerDependencies"];
    if top {
        sections.push("devDependencies");
    }
    for s in sections {
        if let Some(o) = entry.get(s).and_then(Value::as_object) {
            for (k, v) in o {
                out.insert(k.clone(), v.as_str().unwrap_or("").to_string());
            }
        }
    }
    out
}

/// Whether `loc` is a folder of the project (a workspace or `file:` folder), not a package in
/// node_modules.
fn is_folder(loc: &str) -> bool {
    !loc.is_empty() && !loc.starts_with("node_modules/") && !loc.contains("/node_modules/")
}

impl Lock {
    /// Where `name` resolves from `loc`, as Node would find it.
    fn resolve(&self, loc: &str, name: &str) -> Option<String> {
        let mut cur = loc.to_string();
        loop {
            let cand = if cur.is_empty() {
                format!("node_modules/{name}")
            } else {
                format!("{cur}/node_modules/{name}")
            };
            if self.packages.contains_key(&cand) {
                return Some(cand);
            }
            if cur.is_empty() {
                return None;
            }
            cur = match cur.rfind("/node_modules/") {
                Some(i) => cur[..i].to_string(),
                None => String::new(),
            };
        }
    }

    /// The folder a link entry points to (None for a package).
    fn link_target(&self, loc: &str) -> Option<String> {
        let e = &self.packages[loc];
        if e.get("link").and_then(Value::as_bool) != Some(true) {
            return None;
        }
        e.get("resolved").and_then(Value::as_str).map(String::from)
    }

    /// The entry that holds `loc`'s manifest (a link's target's).
    fn real(&self, loc: &str) -> String {
        match self.link_target(loc) {
            Some(t) if self.packages.contains_key(&t) => t,
            _ => loc.to_string(),
        }
    }

    fn name(&self, loc: &str) -> String {
        let tail = loc.rsplit("node_modules/").next().unwrap_or(loc);
        if is_folder(loc) {
            return self.packages[loc]
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(tail)
                .to_string();
        }
        tail.to_string()
    }

    /// `name@version`, `name@version -> ./folder` for a link, the project's own name for the
    /// root (without a trailing `@` when it has no version).
    fn label(&self, loc: &str) -> String {
        let real = self.real(loc);
        let e = &self.packages[&real];
        let name = if loc.is_empty() {
            e.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        } else {
            self.name(loc)
        };
        let version = e.get("version").and_then(Value::as_str).unwrap_or("");
        let mut s = match (name.is_empty(), version.is_empty()) {
            (true, _) => "(unnamed project)".to_string(),
            (false, true) => name,
            (false, false) => format!("{name}@{version}"),
        };
        if let Some(t) = self.link_target(loc) {
            s.push_str(&format!(" -> ./{t}"));
        }
        s
    }

    /// The root's dependencies, with every workspace linked at the top as npm lists them.
    fn root_deps(&self) -> BTreeMap<String, String> {
        let mut deps = deps_of(&self.packages[""], true);
        for loc in self.packages.keys() {
            if let Some(name) = loc.strip_prefix("node_modules/")
                && !name.contains("/node_modules/")
                && self.link_target(loc).is_some_and(|t| is_folder(&t))
            {
                deps.entry(name.to_string()).or_default();
            }
        }
        deps
    }

    fn deps(&self, loc: &str) -> BTreeMap<String, String> {
        if loc.is_empty() {
            return self.root_deps();
        }
        let real = self.real(loc);
        deps_of(&self.packages[&real], is_folder(&real))
    }
}

pub fn ls(project: &Path, depth: usize, json: bool) -> Result<()> {
    let lock = load(project)?;
    if json {
        let root = &lock.packages[""];
        let mut v = serde_json::json!({
            "name": root.get("name").cloned().unwrap_or(Value::Null),
            "version": root.get("version").cloned().unwrap_or(Value::Null),
            "path": project.display().to_string(),
        });
        v["dependencies"] = json_deps(&lock, "", 0, depth, &mut Vec::new());
        println!("{v}");
        return Ok(());
    }
    println!("{} {}", lock.label(""), project.display());
    walk(&lock, "", 0, depth, "", &mut Vec::new());
    Ok(())
}

/// `npm ls --json`'s shape: `{name: {version, location, resolved?, dependencies?}}`; a link's
/// entry names its folder (`link_target`); missing ones say `"missing": true`.
fn json_deps(lock: &Lock, loc: &str, level: usize, max: usize, seen: &mut Vec<String>) -> Value {
    let mut out = serde_json::Map::new();
    let from = lock.real(loc);
    for (name, spec) in lock.deps(loc) {
        let Some(target) = lock.resolve(&from, &name) else {
            out.insert(name, serde_json::json!({"required": spec, "missing": true}));
            continue;
        };
        let real = lock.real(&target);
        let e = &lock.packages[&real];
        let mut v = serde_json::json!({
            "version": e.get("version").cloned().unwrap_or(Value::Null),
            "location": target,
        });
        if let Some(r) = e.get("resolved") {
            v["resolved"] = r.clone();
        }
        if let Some(t) = lock.link_target(&target) {
            v["link_target"] = Value::String(t);
        }
        if level < max && !seen.contains(&target) {
            seen.push(target.clone());
            let deps = json_deps(lock, &target, level + 1, max, seen);
            seen.pop();
            if deps.as_object().is_some_and(|d| !d.is_empty()) {
                v["dependencies"] = deps;
            }
        }
        out.insert(name, v);
    }
    Value::Object(out)
}

fn walk(lock: &Lock, loc: &str, level: usize, max: usize, prefix: &str, seen: &mut Vec<String>) {
    let deps = lock.deps(loc);
    let n = deps.len();
    // A package resolves its dependencies from where it really is (a workspace's folder).
    let from = lock.real(loc);
    for (i, (name, _)) in deps.iter().enumerate() {
        let last = i + 1 == n;
        let branch = if last { "└── " } else { "├── " };
        match lock.resolve(&from, name) {
            Some(target) => {
                println!("{prefix}{branch}{}", lock.label(&target));
                if level < max && !seen.contains(&target) {
                    seen.push(target.clone());
                    let next = format!("{prefix}{}", if last { "    " } else { "│   " });
                    walk(lock, &target, level + 1, max, &next, seen);
                    seen.pop();
                }
            }
            None => println!("{prefix}{branch}{name} (not installed)"),
        }
    }
}

pub fn why(project: &Path, name: &str, json: bool) -> Result<()> {
    let lock = load(project)?;
    let targets: Vec<String> = lock
        .packages
        .keys()
        .filter(|k| !is_folder(k) && !k.is_empty() && lock.name(k) == name)
        .cloned()
        .collect();
    if targets.is_empty() {
        bail!("`{name}` is not installed in `{}`", project.display());
    }
    let mut all = Vec::new();
    for t in targets {
        let mut dependents = Vec::new();
        for loc in lock.packages.keys() {
            if lock.link_target(loc).is_some() {
                continue;
            }
            for (dep, spec) in lock.deps(loc) {
                if dep == name && lock.resolve(loc, &dep).as_deref() == Some(t.as_str()) {
                    dependents.push((loc.clone(), spec));
                }
            }
        }
        if json {
            let real = lock.real(&t);
            all.push(serde_json::json!({
                "name": name,
                "version": lock.packages[&real].get("version").cloned().unwrap_or(Value::Null),
                "location": t,
                // `from_location`/`from_name` are the Why RPC's WhyStep names for the same facts.
                "dependents": dependents.iter().map(|(loc, spec)| serde_json::json!({
                    "location": loc,
                    "name": if loc.is_empty() { Value::Null } else { Value::String(lock.name(loc)) },
                    "from_location": loc,
                    "from_name": if loc.is_empty() { Value::Null } else { Value::String(lock.name(loc)) },
                    "spec": spec,
                })).collect::<Vec<_>>(),
            }));
            continue;
        }
        println!("{} ({t})", lock.label(&t));
        for (loc, spec) in dependents {
            let who = if loc.is_empty() {
                "the project".to_string()
            } else if is_folder(&loc) {
                format!("workspace {} ({loc})", lock.label(&loc))
            } else {
                lock.label(&loc)
            };
            let spec = if spec.is_empty() {
                "workspace".into()
            } else {
                spec
            };
            println!("  required by {who} ({spec})");
        }
    }
    if json {
        println!("{}", Value::Array(all));
    }
    Ok(())
}
