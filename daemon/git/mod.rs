//! Git dependencies: a spec (`spec`) resolved to a commit with the system git (`repo`), packed
//! as npm packs a git dependency (the package's files by npm-packlist's rules, `crate::pack`),
//! and kept in the store's git cache (store-format.md, `git/`):
//! - `repos/<16 hex>/`: one bare repository per remote, fetched into as commits are needed;
//! - `packed/<32 hex>.tgz` and `.json`: the tarball of one `resolved` (repository, commit and
//!   folder) and what was read from it (its integrity and package.json), so a locked git
//!   dependency installs again without running git;
//! - `tmp/`: checkouts being packed, emptied when the daemon starts.
//!
//! The caller imports the tarball into the store like a local tarball.
//!
//! A package with build scripts is prepared before it is packed only through a `Prepare` the
//! caller gives (it decides by the project's script policy and runs the scripts); its tarball
//! is kept apart from the plain one (`packed/<32 hex of "<resolved>\nprepared">`).
//!
//! Must not: import into the store, or run the package's scripts itself.

mod repo;
pub mod spec;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tracing::{debug, info};

pub use spec::GitSpec;

use crate::error::{HoardError, Result};
use repo::Bare;

/// Whether a lockfile's `resolved` (or a tarball reference's URL) is a git repository.
pub fn is_git_resolved(url: &str) -> bool {
    url.starts_with("git+") || url.starts_with("git://") || spec::is_scp_like(url)
}

/// The git spec a lockfile's `resolved` locks, when it is a git URL hoard can read.
pub fn locked(resolved: &str) -> Option<GitSpec> {
    if !is_git_resolved(resolved) {
        return None;
    }
    GitSpec::parse(resolved)?.ok()
}

/// A git dependency packed: what the lockfile says, the tarball, and its package.json.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// `git+ssh://git@github.com/u/r.git#<sha>` (see `GitSpec::resolved`).
    pub resolved: String,
    pub tarball: PathBuf,
    /// `sha512-…` of the tarball.
    pub integrity: String,
    pub manifest: Value,
}

impl Prepared {
    fn relabel(mut self, resolved: &str) -> Prepared {
        self.resolved = resolved.to_string();
        self
    }
}

/// The cache key of a prepared tarball (the plain one's is `resolved` itself).
fn prepared_key(resolved: &str) -> String {
    format!("{resolved}\nprepared")
}

/// What readies a checkout before it is packed, as npm does for a git dependency with build
/// scripts: its dependencies installed (dev ones too) and its `prepare` run. The project's
/// script policy decides whether it happens at all.
pub trait Prepare: Send + Sync {
    /// Whether the package (its package.json, and the `resolved` it is locked as) is to be
    /// prepared.
    fn wanted(&self, manifest: &Value, resolved: &str) -> bool;
    /// Prepare the checkout in `dir`; an error says what failed.
    fn run(&self, dir: &Path, resolved: &str) -> std::result::Result<(), String>;
}

/// The store's git cache.
pub struct GitCache {
    root: PathBuf,
    /// One lock per repository: one fetch or checkout of a remote at a time.
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    counter: std::sync::atomic::AtomicU64,
}

fn short_hash(s: &str, hex_chars: usize) -> String {
    blake3::hash(s.as_bytes()).to_hex()[..hex_chars].to_string()
}

impl GitCache {
    /// The cache at `root` (created as needed); checkouts a killed daemon left are removed.
    /// Call only while holding the store's daemon lock.
    pub fn open(root: PathBuf) -> GitCache {
        let tmp = root.join("tmp");
        if tmp.is_dir() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        GitCache {
            root,
            locks: Mutex::new(HashMap::new()),
            counter: Default::default(),
        }
    }

    fn lock(&self, repo: &str) -> Arc<Mutex<()>> {
        let mut m = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(repo.to_string()).or_default().clone()
    }

    fn packed_paths(&self, resolved: &str) -> (PathBuf, PathBuf) {
        let base = self.root.join("packed").join(short_hash(resolved, 32));
        (base.with_extension("tgz"), base.with_extension("json"))
    }

    /// A `resolved` packed before, if the cache still has it whole.
    fn packed(&self, resolved: &str) -> Option<Prepared> {
        let (tgz, meta) = self.packed_paths(resolved);
        let v: Value = serde_json::from_slice(&std::fs::read(&meta).ok()?).ok()?;
        if v.get("resolved")?.as_str()? != resolved || !tgz.is_file() {
            return None;
        }
        Some(Prepared {
            resolved: resolved.to_string(),
            tarball: tgz,
            integrity: v.get("integrity")?.as_str()?.to_string(),
            manifest: v.get("manifest")?.clone(),
        })
    }

    /// The packed tarball of `resolved`, if the cache has it: prepared when `prepare` wants
    /// this package prepared, plain when it does not; with no `prepare`, the prepared one if
    /// there is one (what an install that could prepare made), else the plain one.
    fn cached(&self, resolved: &str, prepare: Option<&dyn Prepare>) -> Option<Prepared> {
        let plain = self.packed(resolved)?;
        let prepared = || {
            self.packed(&prepared_key(resolved))
                .map(|p| p.relabel(resolved))
        };
        match prepare {
            Some(p) if p.wanted(&plain.manifest, resolved) => prepared(),
            Some(_) => Some(plain),
            None => prepared().or(Some(plain)),
        }
    }

    /// Resolve `spec` to a commit and pack it (from the cache when it was packed before),
    /// prepared first when `prepare` wants it. Offline, only a spec that names a full commit
    /// packed before can be had. Blocking.
    pub fn prepare(
        &self,
        spec: &GitSpec,
        offline: bool,
        prepare: Option<&dyn Prepare>,
    ) -> Result<Prepared> {
        let repo = spec.repo();
        if let Some(sha) = spec.commit()
            && let Some(p) = self.cached(&spec.resolved(&sha.to_ascii_lowercase()), prepare)
        {
            return Ok(p);
        }
        if offline {
            return Err(HoardError::Offline(format!(
                "git dependency `{}` is not in the git cache and --offline forbids fetching it \
                 from {repo}; run the install once online",
                spec.raw
            )));
        }
        let dir = self.root.join("repos").join(short_hash(&repo, 16));
        let bare = Bare {
            dir: &dir,
            repo: repo.clone(),
        };
        let (sha, resolved, plain) = {
            // Fetches into one bare repository one at a time; not held while preparing (the
            // nested install may need this repository again).
            let lock = self.lock(&repo);
            let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
            std::fs::create_dir_all(&dir).map_err(|e| HoardError::io("creating", &dir, e))?;
            bare.init()?;
            let sha = self.commit_of(spec, &bare)?;
            let resolved = spec.resolved(&sha);
            if let Some(p) = self.cached(&resolved, prepare) {
                return Ok(p);
            }
            let plain = match self.packed(&resolved) {
                Some(p) => p,
                None => self.pack(spec, &bare, &sha, &resolved, None)?,
            };
            (sha, resolved, plain)
        };
        match prepare {
            Some(p) if p.wanted(&plain.manifest, &resolved) => {
                self.pack(spec, &bare, &sha, &resolved, Some(p))
            }
            _ => Ok(plain),
        }
    }

    /// `prepare` off the async threads.
    pub async fn prepare_blocking(
        self: &Arc<Self>,
        spec: &GitSpec,
        offline: bool,
        prepare: Option<Arc<dyn Prepare>>,
    ) -> Result<Prepared> {
        let (cache, spec) = (self.clone(), spec.clone());
        tokio::task::spawn_blocking(move || cache.prepare(&spec, offline, prepare.as_deref()))
            .await?
    }

    /// The commit `spec` names, fetched into `bare`.
    fn commit_of(&self, spec: &GitSpec, bare: &Bare) -> Result<String> {
        let (picked, url) = match spec.commit() {
            Some(sha) => (Some(sha.to_ascii_lowercase()), None),
            None => {
                let (refs, url) = repo::ls_remote(spec)?;
                (repo::pick(spec, &refs)?, Some(url))
            }
        };
        let wanted = picked.clone().or_else(|| spec.committish.clone());
        let wanted = wanted.unwrap_or_default();
        if let Some(sha) = bare
            .commit(&wanted)
            .filter(|s| picked.is_none() || *s == wanted)
        {
            return Ok(sha);
        }
        let urls = match url {
            Some(u) => vec![u],
            None => spec.clone_urls(),
        };
        let mut last = None;
        for url in &urls {
            debug!(repo = %bare.repo, url, "fetching into the git cache");
            if let Err(e) = bare.fetch_all(url) {
                last = Some(e);
                continue;
            }
            if picked.is_some() && bare.commit(&wanted).is_none() {
                bare.fetch_commit(url, &wanted);
            }
            if let Some(sha) = bare.commit(&wanted) {
                return Ok(sha);
            }
        }
        Err(match last {
            Some(e) if urls.len() == 1 => e,
            _ => repo::no_such_ref(&bare.repo, spec.committish.as_deref().unwrap_or(&wanted)),
        })
    }

    /// Check `sha` out, prepare it if `prepare` is given, pack it as npm would, and keep the
    /// tarball (a prepared one under its own key).
    fn pack(
        &self,
        spec: &GitSpec,
        bare: &Bare,
        sha: &str,
        resolved: &str,
        prepare: Option<&dyn Prepare>,
    ) -> Result<Prepared> {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let staging = self
            .root
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()));
        if let Some(parent) = staging.parent() {
            std::fs::create_dir_all(parent).map_err(|e| HoardError::io("creating", parent, e))?;
        }
        let r = self.pack_in(spec, bare, sha, resolved, &staging, prepare);
        let _ = std::fs::remove_dir_all(&staging);
        r
    }

    fn pack_in(
        &self,
        spec: &GitSpec,
        bare: &Bare,
        sha: &str,
        resolved: &str,
        staging: &Path,
        prepare: Option<&dyn Prepare>,
    ) -> Result<Prepared> {
        bare.checkout(sha, staging)?;
        let dir = match &spec.subdir {
            Some(p) => staging.join(p),
            None => staging.to_path_buf(),
        };
        if let Some(p) = prepare {
            info!(repo = %bare.repo, sha, "preparing a git dependency");
            p.run(&dir, resolved).map_err(|e| HoardError::Git {
                repo: bare.repo.clone(),
                message: format!("preparing commit {sha}: {e}"),
            })?;
        }
        let packed = crate::pack::pack(&dir).map_err(|e| HoardError::Git {
            repo: bare.repo.clone(),
            message: format!("packing commit {sha}: {e}"),
        })?;
        let key = match prepare {
            Some(_) => prepared_key(resolved),
            None => resolved.to_string(),
        };
        let (tgz, meta) = self.packed_paths(&key);
        if let Some(parent) = tgz.parent() {
            std::fs::create_dir_all(parent).map_err(|e| HoardError::io("creating", parent, e))?;
        }
        crate::atomic::write_atomic(&tgz, &packed.tarball)?;
        let record = json!({
            "resolved": key,
            "integrity": packed.integrity,
            "manifest": packed.manifest,
        });
        crate::atomic::write_atomic(&meta, record.to_string().as_bytes())?;
        info!(repo = %bare.repo, sha, files = packed.files.len(), prepared = prepare.is_some(),
            "packed a git dependency");
        Ok(Prepared {
            resolved: resolved.to_string(),
            tarball: tgz,
            integrity: packed.integrity,
            manifest: packed.manifest,
        })
    }
}
