//! The differential corpus: real-world package.json files (tests/corpus/projects.py), the
//! registry metadata npm saw when it resolved them (registry.jsonl.gz) and the package-lock.json
//! npm wrote (projects/<name>/npm-lock.json), all recorded by tests/corpus/record.py. hoard
//! resolves each project against the same metadata from the local test registry, and every
//! node_modules path of its lockfile must carry the same name, version and dev/optional/peer
//! flags as npm's. Projects npm refuses (npm-error.txt) must be refused naming both sides.
//!
//! Known differences are listed, with why, in tests/corpus/known-differences.txt (and the
//! README); a difference not listed fails, and so does a listed one that no longer occurs.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::context::{TestContext, stderr};
use crate::registry::Registry;

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

pub fn load_registry(reg: &Registry) -> usize {
    let f = std::fs::File::open(corpus_dir().join("registry.jsonl.gz")).expect("corpus registry");
    let lines = std::io::BufReader::new(flate2::read::GzDecoder::new(f));
    let mut n = 0;
    for line in lines.lines() {
        let line = line.expect("read the corpus registry");
        // The name is the first key of the sorted JSON: `{"dist-tags":…,"name":"x",…}`.
        let v: Value = serde_json::from_str(&line).expect("corpus packument");
        let name = v["name"].as_str().expect("packument name").to_string();
        reg.publish_raw(&name, Arc::from(line));
        n += 1;
    }
    n
}

/// What is compared for each lockfile path.
fn entries(lock: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(pkgs) = lock["packages"].as_object() else {
        return out;
    };
    for (path, e) in pkgs {
        if path.is_empty() {
            continue;
        }
        let flag = |k: &str| {
            if e[k].as_bool() == Some(true) {
                format!(" {k}")
            } else {
                String::new()
            }
        };
        let what = if e["link"].as_bool() == Some(true) {
            format!("-> {}", e["resolved"].as_str().unwrap_or("?"))
        } else {
            let name = e["name"]
                .as_str()
                .map(|n| format!("{n}@"))
                .unwrap_or_default();
            format!("{name}{}", e["version"].as_str().unwrap_or("?"))
        };
        out.insert(
            path.clone(),
            format!(
                "{what}{}{}{}{}{}{}",
                flag("extraneous"),
                flag("dev"),
                flag("optional"),
                flag("devOptional"),
                flag("peer"),
                flag("inBundle")
            ),
        );
    }
    out
}

pub fn diff(npm: &Value, hoard: &Value) -> Vec<String> {
    let (a, b) = (entries(npm), entries(hoard));
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let mut out = Vec::new();
    for k in keys {
        match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => out.push(format!(
                "{k}: npm {} / hoard {}",
                x.map(String::as_str).unwrap_or("(absent)"),
                y.map(String::as_str).unwrap_or("(absent)")
            )),
        }
    }
    out
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name();
        if name == "npm-lock.json" || name == "npm-error.txt" {
            continue;
        }
        if p.is_dir() {
            copy_dir(&p, &to.join(&name));
        } else {
            std::fs::copy(&p, to.join(&name)).unwrap();
        }
    }
}

/// `project: path: npm … / hoard …` lines that are known and explained.
fn known() -> BTreeSet<String> {
    std::fs::read_to_string(corpus_dir().join("known-differences.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn corpus_trees_match_npm() {
    let reg = Registry::start();
    let packuments = load_registry(&reg);
    // Tarballs npm opened (packages with bundled dependencies), at their registry paths.
    for e in std::fs::read_dir(corpus_dir().join("tarballs"))
        .unwrap()
        .flatten()
    {
        let name = e
            .file_name()
            .to_string_lossy()
            .replace("%40", "@")
            .replace("%2F", "/");
        reg.publish_tarball(&format!("/{name}"), std::fs::read(e.path()).unwrap());
    }
    let meta: Value =
        serde_json::from_slice(&std::fs::read(corpus_dir().join("meta.json")).unwrap()).unwrap();
    let node = meta["node"].as_str().unwrap().to_string();
    let mut ctx = TestContext::new().with_registry(&reg.url);
    // HOARD_CORPUS_LOG=1 prints the daemon's placement log (arborist's `placeDep` lines).
    let trace = std::env::var("HOARD_CORPUS_LOG").is_ok();
    if trace {
        ctx = ctx.env("HOARD_LOG", "placeDep=debug,info");
    }
    let mut projects: Vec<PathBuf> = std::fs::read_dir(corpus_dir().join("projects"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    projects.sort();
    // HOARD_CORPUS=a,b limits the run to some projects (for debugging a difference).
    let only: Option<Vec<String>> = std::env::var("HOARD_CORPUS")
        .ok()
        .map(|v| v.split(',').map(String::from).collect());
    if let Some(only) = &only {
        projects.retain(|p| only.iter().any(|o| p.ends_with(o)));
    }
    let mut found: BTreeSet<String> = BTreeSet::new();
    let mut summary = Vec::new();
    let mut paths_total = 0;
    for dir in &projects {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let work = ctx.home.join("corpus").join(&name);
        copy_dir(dir, &work);
        let own = std::fs::read_to_string(dir.join(".npmrc")).unwrap_or_default();
        std::fs::write(
            work.join(".npmrc"),
            format!("registry={}\nnode-version={node}\n{own}", reg.url),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let out = ctx
            .hoard()
            .args([
                "-C",
                work.to_str().unwrap(),
                "install",
                "--package-lock-only",
            ])
            .output()
            .unwrap();
        let ms = started.elapsed().as_millis();
        if let Ok(err) = std::fs::read_to_string(dir.join("npm-error.txt")) {
            let who = |prefix: &str| {
                err.lines()
                    .find_map(|l| l.trim_start_matches("npm error ").strip_prefix(prefix))
                    .map(|s| s.split_whitespace().last().unwrap_or("").to_string())
            };
            let text = stderr(&out);
            let ok = out.status.code() == Some(1)
                && text.contains("ERESOLVE")
                && who("Found: ").is_some_and(|f| text.contains(&f));
            if !ok {
                found.insert(format!(
                    "{name}: npm refuses (ERESOLVE) / hoard {}",
                    if out.status.success() {
                        "installs"
                    } else {
                        "fails otherwise"
                    }
                ));
                eprintln!("{name}: npm says\n{err}\nhoard says\n{text}");
            }
            summary.push(format!("{name}: refused as npm refuses ({ms} ms)"));
            continue;
        }
        if !out.status.success() {
            found.insert(format!("{name}: hoard fails"));
            eprintln!("{name}: hoard failed: {}", stderr(&out));
            continue;
        }
        let npm: Value =
            serde_json::from_slice(&std::fs::read(dir.join("npm-lock.json")).unwrap()).unwrap();
        let hoard: Value =
            serde_json::from_slice(&std::fs::read(work.join("package-lock.json")).unwrap())
                .unwrap();
        if let Ok(keep) = std::env::var("HOARD_CORPUS_KEEP") {
            // Keep hoard's lockfile for a closer look.
            let _ = std::fs::create_dir_all(&keep);
            let _ = std::fs::copy(
                work.join("package-lock.json"),
                Path::new(&keep).join(format!("{name}.json")),
            );
        }
        let d = diff(&npm, &hoard);
        let n = npm["packages"]
            .as_object()
            .map(|o| o.len() - 1)
            .unwrap_or(0);
        paths_total += n;
        summary.push(format!("{name}: {} of {n} paths differ ({ms} ms)", d.len()));
        for line in d {
            found.insert(format!("{name}: {line}"));
        }
    }
    if trace {
        eprintln!("{}", ctx.log());
    }
    eprintln!(
        "corpus: {} projects, {packuments} packuments, {paths_total} npm paths\n{}",
        projects.len(),
        summary.join("\n")
    );
    let known: BTreeSet<String> = known()
        .into_iter()
        .filter(|k| {
            only.as_ref()
                .is_none_or(|o| o.iter().any(|p| k.starts_with(&format!("{p}:"))))
        })
        .collect();
    let unexplained: Vec<&String> = found.difference(&known).collect();
    let stale: Vec<&String> = known.difference(&found).collect();
    assert!(
        unexplained.is_empty() && stale.is_empty(),
        "{} differences from npm not in known-differences.txt:\n{}\n\n{} listed ones no longer \
         occur:\n{}",
        unexplained.len(),
        unexplained
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        stale.len(),
        stale
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    );
}
