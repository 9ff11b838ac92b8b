//! Bundled dependencies as a package's tarball ships them (npm's `bundleDependencies`): the
//! manifests under the tarball's own node_modules, read from the store once per tarball and kept
//! for the daemon's life (bounded), because a store package's files never change while its
//! integrity stays the same. A warm resolve of a project with a bundler (nyc bundles 182
//! packages) then reads and parses none of them again.
//!
//! Must not: place packages in a tree (`crate::resolve` does), or touch a project's files.

use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap;

use crate::error::{HoardError, Result};
use crate::registry::packument::Manifest;
use crate::store::{Store, StoredPackage};

/// Bundlers whose manifests are kept; past this the cache starts over (bundlers are rare: a
/// project has a handful).
const KEPT: usize = 256;

/// One bundled package: where it sits inside its bundler (`node_modules/a`,
/// `node_modules/a/node_modules/b`) and its package.json.
pub struct Bundled {
    pub dir: String,
    pub manifest: Arc<Manifest>,
}

/// The bundled manifests of each bundler's tarball, by the tarball's integrity.
#[derive(Default)]
pub struct BundleCache {
    by_tarball: Mutex<FxHashMap<String, Arc<[Bundled]>>>,
}

impl BundleCache {
    /// The packages `stored` bundles, shallowest first (a folder's parent before it), then by
    /// folder. A package.json that is not JSON is left out, as npm leaves out what it cannot
    /// read. Blocking: reads store files the first time.
    pub fn of(&self, store: &Store, stored: &StoredPackage) -> Result<Arc<[Bundled]>> {
        if let Some(found) = self.kept(&stored.integrity) {
            return Ok(found);
        }
        let read = Arc::<[Bundled]>::from(read_bundled(store, stored)?);
        if let Ok(mut map) = self.by_tarball.lock() {
            if map.len() >= KEPT {
                map.clear();
            }
            map.insert(stored.integrity.clone(), read.clone());
        }
        Ok(read)
    }

    fn kept(&self, integrity: &str) -> Option<Arc<[Bundled]>> {
        self.by_tarball.lock().ok()?.get(integrity).cloned()
    }
}

fn read_bundled(store: &Store, stored: &StoredPackage) -> Result<Vec<Bundled>> {
    let mut found: Vec<(&str, std::path::PathBuf)> = (stored.files.iter())
        .filter(|f| is_bundled_manifest(&f.path))
        .map(|f| {
            let dir = f.path.trim_end_matches("/package.json");
            (dir, store.content_path(f))
        })
        .collect();
    found.sort_by_key(|&(dir, _)| (dir.matches("node_modules/").count(), dir));
    let mut out = Vec::with_capacity(found.len());
    for (dir, path) in found {
        let bytes = std::fs::read(&path).map_err(|e| HoardError::io("reading", &path, e))?;
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        let (_, name) = crate::tree::split_location(dir);
        out.push(Bundled {
            dir: dir.to_string(),
            manifest: Arc::new(Manifest::from_json(name, &v)),
        });
    }
    Ok(out)
}

/// `node_modules/a/package.json`, `node_modules/@s/b/node_modules/c/package.json`: a bundled
/// package's manifest (not a file deeper inside one).
fn is_bundled_manifest(path: &str) -> bool {
    let Some(dir) = path.strip_suffix("/package.json") else {
        return false;
    };
    let mut parts = dir.split('/').peekable();
    let mut any = false;
    while let Some(nm) = parts.next() {
        if nm != "node_modules" {
            return false;
        }
        let Some(first) = parts.next() else {
            return false;
        };
        if first.starts_with('@') && parts.next().is_none() {
            return false;
        }
        any = true;
    }
    any
}

#[cfg(test)]
mod tests {
    use super::is_bundled_manifest;

    #[test]
    fn only_a_bundled_package_s_own_manifest_counts() {
        assert!(is_bundled_manifest("node_modules/a/package.json"));
        assert!(is_bundled_manifest("node_modules/@s/b/package.json"));
        assert!(is_bundled_manifest(
            "node_modules/a/node_modules/@s/c/package.json"
        ));
        assert!(!is_bundled_manifest("package.json"));
        assert!(!is_bundled_manifest("node_modules/@s/package.json"));
        assert!(!is_bundled_manifest("node_modules/a/lib/package.json"));
        assert!(!is_bundled_manifest("lib/node_modules/a/package.json"));
    }
}
