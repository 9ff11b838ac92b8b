//! Which files `npm pack` puts in a package: npm-packlist 10 on ignore-walk 8, ported. The
//! folder is walked with, in each directory, the default rules (`.git`, `.DS_Store`, `*.orig`,
//! `.npmrc` …), package.json's `files` (root only; it silences .npmignore and .gitignore
//! there), `.npmignore` (else `.gitignore`), and the strict rules (package.json, README,
//! LICENSE, `main`, `browser` and `bin` always in; `/node_modules`, lockfiles and `/.git`
//! always out). A parent's rules judge every path below it. Symlinks and names with `*` are
//! left out, as npm leaves them. Bundled dependencies found in node_modules are added, each by
//! its own rules.
//!
//! Must not: read file contents other than ignore files and package.json.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::rules::Rule;
use crate::error::{HoardError, Result};

const DEFAULTS: &[&str] = &[
    ".npmignore",
    ".gitignore",
    "**/.git",
    "**/.svn",
    "**/.hg",
    "**/CVS",
    "**/.git/**",
    "**/.svn/**",
    "**/.hg/**",
    "**/CVS/**",
    "/.lock-wscript",
    "/.wafpickle-*",
    "/build/config.gypi",
    "npm-debug.log",
    "**/.npmrc",
    ".*.swp",
    ".DS_Store",
    "**/.DS_Store/**",
    "._*",
    "**/._*/**",
    "*.orig",
    "/archived-packages/**",
];

/// A package root's rule sources, in the order they are applied.
const EVERY_RULE: [Source; 5] = [
    Source::Defaults,
    Source::PackageJson,
    Source::Npmignore,
    Source::Gitignore,
    Source::Strict,
];

/// Where a walker's rules came from, in the order they are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    Defaults,
    PackageJson,
    Npmignore,
    Gitignore,
    Strict,
}

struct Walker<'p> {
    dir: PathBuf,
    basename: String,
    sources: Vec<Source>,
    rules: HashMap<Source, Vec<Rule>>,
    parent: Option<&'p Walker<'p>>,
    exact: bool,
    required: Vec<String>,
}

fn rules(lines: &[String]) -> Vec<Rule> {
    lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(Rule::parse)
        .collect()
}

fn read_rules(path: &Path) -> Result<Vec<Rule>> {
    let text = std::fs::read_to_string(path).map_err(|e| HoardError::io("reading", path, e))?;
    Ok(rules(&text.lines().map(String::from).collect::<Vec<_>>()))
}

/// The files of the package in `root` (its package.json `manifest`), `/`-separated, relative;
/// with its bundled dependencies' files under `node_modules/` (npm-packlist's gatherBundles).
pub fn files(root: &Path, manifest: &Value) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    walk_package(root, manifest, EVERY_RULE.to_vec(), "", &mut out)?;
    let mut seen = HashSet::new();
    seen.insert(root.canonicalize().unwrap_or_else(|_| root.to_path_buf()));
    bundle(root, root, &bundled_names(manifest), &mut seen, &mut out)?;
    Ok(out)
}

/// One package's walk, its files put under `prefix`.
fn walk_package(
    dir: &Path,
    manifest: &Value,
    sources: Vec<Source>,
    prefix: &str,
    out: &mut BTreeSet<String>,
) -> Result<()> {
    let mut w = Walker {
        dir: dir.to_path_buf(),
        basename: String::new(),
        sources,
        rules: HashMap::new(),
        parent: None,
        exact: false,
        required: Vec::new(),
    };
    w.rules.insert(Source::Defaults, rules(&owned(DEFAULTS)));
    package_rules(&mut w, dir, manifest);
    w.walk(prefix, out)
}

/// The root's `bundleDependencies` (or `bundledDependencies`; `true`: every dependency), less
/// those that are only dev or peer dependencies (npm does not bundle those).
fn bundled_names(manifest: &Value) -> Vec<String> {
    let deps = |k: &str| {
        manifest
            .get(k)
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let listed = match manifest
        .get("bundleDependencies")
        .or_else(|| manifest.get("bundledDependencies"))
    {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        Some(Value::Bool(true)) => deps("dependencies"),
        _ => return Vec::new(),
    };
    let regular: HashSet<String> = deps("dependencies")
        .into_iter()
        .chain(deps("optionalDependencies"))
        .collect();
    let dev_or_peer: HashSet<String> = deps("devDependencies")
        .into_iter()
        .chain(deps("peerDependencies"))
        .collect();
    listed
        .into_iter()
        .filter(|n| regular.contains(n) || !dev_or_peer.contains(n))
        .collect()
}

/// Where `require(name)` from the package in `from` finds it: `node_modules/<name>` in `from`
/// or a package folder above it, up to `root`.
fn locate(root: &Path, from: &Path, name: &str) -> Option<PathBuf> {
    let mut dir = Some(from);
    while let Some(d) = dir {
        if d.file_name().is_none_or(|n| n != "node_modules") {
            let candidate = d.join("node_modules").join(name);
            if candidate.join("package.json").is_file() {
                return Some(candidate);
            }
        }
        if d == root {
            break;
        }
        dir = d.parent();
    }
    None
}

/// Add each of `names` found from `from`, and (recursively) its dependencies and optional
/// dependencies: a bundled package is walked by its package.json's `files` and the strict rules
/// (its ignore files count only in its subfolders; a linked one gets all the rules), as
/// npm-packlist walks it. Missing ones are left out, as npm leaves them.
fn bundle(
    root: &Path,
    from: &Path,
    names: &[String],
    seen: &mut HashSet<PathBuf>,
    out: &mut BTreeSet<String>,
) -> Result<()> {
    for name in names {
        let Some(dir) = locate(root, from, name) else {
            continue;
        };
        if !seen.insert(dir.canonicalize().unwrap_or_else(|_| dir.clone())) {
            continue;
        }
        let pj = dir.join("package.json");
        let Ok(manifest) = std::fs::read(&pj)
            .map_err(|_| ())
            .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|_| ()))
        else {
            continue;
        };
        let is_link = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink());
        let sources = if is_link {
            EVERY_RULE.to_vec()
        } else {
            vec![Source::PackageJson, Source::Strict]
        };
        let rel = dir
            .strip_prefix(root)
            .map(|r| r.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        walk_package(&dir, &manifest, sources, &rel, out)?;
        let deps: Vec<String> = ["dependencies", "optionalDependencies"]
            .iter()
            .filter_map(|k| manifest.get(*k).and_then(Value::as_object))
            .flat_map(|m| m.keys().cloned())
            .collect();
        bundle(root, &dir, &deps, seen, out)?;
    }
    Ok(())
}

fn owned(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|s| s.to_string()).collect()
}

/// npm-packlist's processPackage: `files` as rules (`*`, then each entry included), and the
/// strict rules.
fn package_rules(w: &mut Walker<'_>, root: &Path, manifest: &Value) {
    let mut strict: Vec<String> = owned(&[
        "/.git",
        "!/package.json",
        "!/readme{,.*[^~$]}",
        "!/copying{,.*[^~$]}",
        "!/license{,.*[^~$]}",
        "!/licence{,.*[^~$]}",
        "/.git",
        "/node_modules",
        ".npmrc",
        "/package-lock.json",
        "/yarn.lock",
        "/pnpm-lock.yaml",
        "/bun.lockb",
    ]);
    if let Some(files) = manifest.get("files").and_then(Value::as_array) {
        let mut ignores = vec!["*".to_string()];
        for f in files.iter().filter_map(Value::as_str) {
            let mut f = f
                .strip_prefix("./")
                .map(|r| format!("/{r}"))
                .unwrap_or(f.to_string());
            if f.ends_with("/*") {
                f.push('*');
            }
            let inverse = format!("!{f}");
            let on_disk = root.join(f.trim_start_matches('!').trim_start_matches('/'));
            match std::fs::symlink_metadata(&on_disk) {
                Ok(md) if md.is_file() => {
                    strict.insert(0, inverse);
                    w.required.push(f.trim_start_matches('/').to_string());
                }
                Ok(md) if md.is_dir() => {
                    ignores.push(inverse.clone());
                    ignores.push(format!("{inverse}/**"));
                }
                Ok(_) => {}
                Err(_) => ignores.push(inverse),
            }
        }
        w.rules.insert(Source::PackageJson, rules(&ignores));
    }
    for key in ["browser", "main"] {
        if let Some(v) = manifest.get(key).and_then(Value::as_str) {
            strict.push(format!("!/{v}"));
        }
    }
    match manifest.get("bin") {
        Some(Value::String(b)) => strict.push(format!("!/{b}")),
        Some(Value::Object(m)) => {
            for b in m.values().filter_map(Value::as_str) {
                strict.push(format!("!/{b}"));
            }
        }
        _ => {}
    }
    w.rules.insert(Source::Strict, rules(&strict));
}

impl<'p> Walker<'p> {
    /// ignore-walk's filterEntry: whether `entry` (relative to this folder) is included.
    fn filter(&self, entry: &str, partial: bool, base: Option<&str>) -> bool {
        let mut included = true;
        if let Some(parent) = self.parent {
            let parent_entry = format!("{}/{entry}", self.basename);
            included = parent.filter(&parent_entry, partial, Some(base.unwrap_or(entry)));
            if !included && !self.exact {
                return false;
            }
        }
        for src in &self.sources {
            let Some(list) = self.rules.get(src) else {
                continue;
            };
            for rule in list {
                if rule.negate == included {
                    continue;
                }
                let relative = base.is_some() && rule.is_relative();
                let b = base.unwrap_or("");
                let hit = rule.matches(&format!("/{entry}"), false)
                    || rule.matches(entry, false)
                    || partial
                        && (rule.matches(&format!("/{entry}/"), false)
                            || rule.matches(&format!("{entry}/"), false)
                            || rule.negate
                                && (rule.matches(&format!("/{entry}"), true)
                                    || rule.matches(entry, true))
                            || relative
                                && (rule.matches(&format!("/{b}/"), false)
                                    || rule.matches(&format!("{b}/"), false)
                                    || rule.negate
                                        && (rule.matches(&format!("/{b}"), true)
                                            || rule.matches(b, true))));
                if hit {
                    included = rule.negate;
                }
            }
        }
        included
    }

    /// Read this folder: its ignore files, then each entry judged and walked.
    fn walk(&mut self, rel: &str, out: &mut BTreeSet<String>) -> Result<()> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .map_err(|e| HoardError::io("reading", &self.dir, e))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for (file, src) in [
            (".npmignore", Source::Npmignore),
            (".gitignore", Source::Gitignore),
        ] {
            if self.sources.contains(&src) && names.iter().any(|n| n == file) {
                let r = read_rules(&self.dir.join(file))?;
                self.rules.insert(src, r);
            }
        }
        // package.json's rules silence both ignore files; .npmignore silences .gitignore.
        if self.rules.contains_key(&Source::PackageJson) {
            self.rules.remove(&Source::Npmignore);
            self.rules.remove(&Source::Gitignore);
        } else if self.rules.contains_key(&Source::Npmignore) {
            self.rules.remove(&Source::Gitignore);
        }
        for name in &names {
            let (pass_file, pass_dir) = (
                self.filter(name, false, None),
                self.filter(name, true, None),
            );
            if (!pass_file && !pass_dir) || name.contains('*') {
                continue;
            }
            let path = self.dir.join(name);
            let Ok(md) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let rel_name = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if md.is_file() {
                if pass_file {
                    out.insert(rel_name);
                }
            } else if md.is_dir() && pass_dir {
                let exact = pass_file || self.filter(&format!("{name}/"), false, None);
                let mut child = self.child(name, exact);
                child.walk(&rel_name, out)?;
            }
        }
        Ok(())
    }

    /// The walker of subfolder `name`: the defaults, its own ignore files, and the strict rules
    /// with the required files that are directly in it.
    fn child(&'p self, name: &str, exact: bool) -> Walker<'p> {
        let required: Vec<String> = self
            .required
            .iter()
            .filter_map(|f| {
                let (dir, file) = f.rsplit_once('/')?;
                (dir == name).then(|| file.to_string())
            })
            .collect();
        let mut strict = vec!["/.git".to_string()];
        strict.extend(required.iter().map(|f| format!("!{f}")));
        let mut rules = HashMap::new();
        rules.insert(Source::Defaults, self::rules(&owned(DEFAULTS)));
        rules.insert(Source::Strict, self::rules(&strict));
        Walker {
            dir: self.dir.join(name),
            basename: name.to_string(),
            sources: vec![
                Source::Defaults,
                Source::Npmignore,
                Source::Gitignore,
                Source::Strict,
            ],
            rules,
            parent: Some(self),
            exact,
            required,
        }
    }
}
