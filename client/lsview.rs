//! `hoard ls` and `hoard why`, read from the project's package-lock.json (what hoard installed
//! is exactly what the lock describes), without the daemon.
//!
//! Must not: change anything.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Value;

struct Lock {
    packages: BTreeMap<String, Value>,
}

fn load(project: &Path) -> Result<Lock> {
    let path = project.join("package-lock.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading `{}` (run `hoard install` first)", path.display()))?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing `{}`", path.display()))?;
    let Some(p) = v.get("packages").and_then(Value::as_object) else {
        bail!("`{}` has no `packages` section", path.display());
    };
    Ok(Lock {
        packages: p.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    })
}

fn deps_of(entry: &Value, root: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut sections = vec!["dependencies", "optionalDependencies", "peerDependencies"];
    if root {
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

    fn version(&self, loc: &str) -> String {
        let e = &self.packages[loc];
        match e.get("version").and_then(Value::as_str) {
            Some(v) => v.to_string(),
            None => e
                .get("resolved")
                .and_then(Value::as_str)
                .map(|r| format!("-> {r}"))
                .unwrap_or_default(),
        }
    }
}

pub fn ls(project: &Path, depth: usize) -> Result<()> {
    let lock = load(project)?;
    let root = lock.packages.get("").cloned().unwrap_or(Value::Null);
    println!(
        "{}@{} {}",
        root.get("name").and_then(Value::as_str).unwrap_or(""),
        root.get("version").and_then(Value::as_str).unwrap_or(""),
        project.display()
    );
    fn walk(
        lock: &Lock,
        loc: &str,
        entry: &Value,
        level: usize,
        max: usize,
        prefix: &str,
        seen: &mut Vec<String>,
    ) {
        let deps = deps_of(entry, loc.is_empty());
        let n = deps.len();
        for (i, (name, _)) in deps.iter().enumerate() {
            let last = i + 1 == n;
            let branch = if last { "└── " } else { "├── " };
            match lock.resolve(loc, name) {
                Some(target) => {
                    println!("{prefix}{branch}{name}@{}", lock.version(&target));
                    if level < max && !seen.contains(&target) {
                        seen.push(target.clone());
                        let child = lock.packages[&target].clone();
                        let next = format!("{prefix}{}", if last { "    " } else { "│   " });
                        walk(lock, &target, &child, level + 1, max, &next, seen);
                        seen.pop();
                    }
                }
                None => println!("{prefix}{branch}{name} (not installed)"),
            }
        }
    }
    walk(&lock, "", &root, 0, depth, "", &mut Vec::new());
    Ok(())
}

pub fn why(project: &Path, name: &str) -> Result<()> {
    let lock = load(project)?;
    let targets: Vec<String> = lock
        .packages
        .keys()
        .filter(|k| k.rsplit("node_modules/").next() == Some(name))
        .cloned()
        .collect();
    if targets.is_empty() {
        bail!("`{name}` is not installed in `{}`", project.display());
    }
    for t in targets {
        println!("{name}@{} ({t})", lock.version(&t));
        for (loc, entry) in &lock.packages {
            for (dep, spec) in deps_of(entry, loc.is_empty()) {
                if dep == name && lock.resolve(loc, &dep).as_deref() == Some(t.as_str()) {
                    let who = if loc.is_empty() {
                        "the project".to_string()
                    } else {
                        format!(
                            "{}@{}",
                            loc.rsplit("node_modules/").next().unwrap_or(loc),
                            lock.version(loc)
                        )
                    };
                    println!("  required by {who} ({spec})");
                }
            }
        }
    }
    Ok(())
}
