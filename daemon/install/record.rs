//! Stage 3 of an install: the plan of record, the tree this install makes true. It is
//! package-lock.json's tree when the lockfile still fits package.json (and no update was asked
//! for); otherwise the tree is resolved, preferring the lockfile's versions where they still
//! satisfy. `hoard ci` refuses to resolve. While resolving, each picked registry package starts
//! downloading at once.
//!
//! Must not: write anything into the project (the `finish` stage writes the lockfile).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use hoard_proto::v1;
use serde_json::Value;
use tracing::{Instrument, info_span};

use super::context::{Installer, Run, blocking};
use super::inputs::Inputs;
use super::lock_memo::Lookup;
use super::signed::Early;
use crate::error::{HoardError, Result};
use crate::lockfile;
use crate::registry::Network;
use crate::resolve::{Note, PickedHook, Resolver};
use crate::tree::{Node, Tree};

/// The tree an install makes true, and where it came from.
pub(super) struct Record {
    pub tree: Tree,
    /// Taken from package-lock.json as it is (not resolved).
    pub from_lock: bool,
    /// Integrity the lock lacked was filled in from the store (so the lock is rewritten).
    pub integrity_filled: bool,
    /// Entries the lock had that nothing needs (reached only through optional peers) were
    /// dropped, as npm prunes them from a tree read from a lockfile (so the lock is rewritten;
    /// `hoard ci` leaves it alone and only does not install them).
    pub pruned: bool,
    pub millis: u64,
}

/// package-lock.json's tree as it is, whatever package.json says (`hoard fetch`).
pub(super) fn locked(inputs: &Inputs) -> Result<Tree> {
    let Some(lock) = &inputs.lock else {
        return Err(HoardError::Lockfile(format!(
            "`hoard fetch` needs {}",
            inputs.lock_path.display()
        )));
    };
    let ws = inputs.project.workspace_map();
    lockfile::tree_from_lock(lock, inputs.project.manifest.clone(), &ws, &inputs.cfg)
}

/// The plan of record for `inputs`.
/// `remembered`: the lock memo's answer for these inputs (`Inputs::parse_lock_remembered`).
pub(super) async fn plan_of_record(
    run: &Run<'_>,
    inputs: &Inputs,
    remembered: Option<Lookup>,
) -> Result<Record> {
    let started = Instant::now();
    let mut preferred = HashMap::new();
    let mut tree = None;
    match &inputs.lock {
        Some(lock_json) if !run.req.update_all => {
            tree = match remembered {
                Some(Lookup { tree: Some(t), .. }) => Some(t),
                Some(Lookup { key, tree: None }) => {
                    let t = from_lock(run, inputs, lock_json).await?;
                    if let Some(t) = &t {
                        let memo = &run.installer.lock_memo;
                        blocking(|| memo.put(key, lock_json.clone(), t));
                    }
                    t
                }
                None => from_lock(run, inputs, lock_json).await?,
            };
            // Versions to keep when resolving: not needed for a tree taken as it is.
            if tree.is_none() {
                preferred = lockfile::preferred_versions(lock_json);
            }
        }
        None if run.req.frozen && inputs.lock_raw.is_none() => {
            return Err(HoardError::Lockfile(format!(
                "`hoard ci` needs a package-lock.json in `{}`; run `hoard install` first to \
                 create one",
                inputs.dir.display()
            )));
        }
        None if inputs.lock_raw.is_none() => preferred = foreign_versions(run, inputs).await?,
        _ => {}
    }
    let from_lock = tree.is_some();
    let mut pruned = false;
    let tree = match tree {
        Some(t) if t.nodes.iter().any(|n| n.extraneous) => {
            pruned = true;
            let extraneous: Vec<bool> = t.nodes.iter().map(|n| n.extraneous).collect();
            t.retain(|i| !extraneous[i])
        }
        Some(t) => t,
        None => {
            let early = Early::start(run, inputs).await?;
            let tree = resolve(run, inputs, preferred, early.as_ref()).await?;
            super::signed::check_tree(run, inputs, &tree, early).await?;
            tree
        }
    };
    if from_lock {
        super::age::check_locked(run, inputs, &tree).await?;
    }
    super::advised::gate(run, inputs, &tree).await?;
    let n = tree.nodes.len() as u64;
    run.em
        .progress(v1::Phase::Resolve, n, n, 0, true, None)
        .await;
    Ok(Record {
        tree,
        from_lock,
        integrity_filled: false,
        pruned,
        millis: started.elapsed().as_millis() as u64,
    })
}

/// With no package-lock.json: the versions pnpm-lock.yaml, yarn.lock or bun.lock locks (see
/// `foreign_lock`), said in an info line. Empty when there is none.
async fn foreign_versions(run: &Run<'_>, inputs: &Inputs) -> Result<HashMap<String, Vec<String>>> {
    let dir = inputs.dir.clone();
    let Some(locked) = blocking(move || crate::foreign_lock::read(&dir))? else {
        return Ok(HashMap::new());
    };
    run.em
        .info(format!(
            "no package-lock.json: keeping the {} versions {} locks (`{}`)",
            locked.count(),
            locked.kind.file(),
            locked.path.display()
        ))
        .await;
    Ok(locked.versions)
}

/// The lockfile's tree when it fits package.json and no update was asked for; `None` (and a
/// note saying why) when it must be resolved. `hoard ci` fails instead.
async fn from_lock(run: &Run<'_>, inputs: &Inputs, lock_json: &Value) -> Result<Option<Tree>> {
    let req = run.req;
    let ws_map = inputs.project.workspace_map();
    let read = blocking(|| {
        lockfile::tree_from_lock(
            lock_json,
            inputs.project.manifest.clone(),
            &ws_map,
            &inputs.cfg,
        )
    });
    let t = match read {
        Ok(t) => t,
        Err(e) if req.frozen => return Err(e),
        Err(e) => {
            run.em.info(format!("{e}; resolving")).await;
            return Ok(None);
        }
    };
    let problems = blocking(|| lockfile::mismatches(lock_json, &t));
    if req.frozen && !problems.is_empty() {
        return Err(HoardError::Lockfile(format!(
            "package-lock.json does not match package.json, and `hoard ci` never changes it:\n  \
             - {}\nRun `hoard install` to update the lockfile.",
            problems.join("\n  - ")
        )));
    }
    if !problems.is_empty() {
        // After `add` or `remove` the difference is the one asked for: nothing to say.
        if req.add.is_empty() && req.remove.is_empty() {
            run.em
                .info(format!(
                    "package.json asks for what package-lock.json does not have ({}); resolving",
                    problems[0]
                ))
                .await;
        }
        return Ok(None);
    }
    Ok(req.update.is_empty().then_some(t))
}

/// Resolve the project's tree from the registry (cancellable), with its notes sent as warnings.
async fn resolve(
    run: &Run<'_>,
    inputs: &Inputs,
    preferred: HashMap<String, Vec<String>>,
    early: Option<&Early>,
) -> Result<Tree> {
    let req = run.req;
    let installer = run.installer;
    // npm's `node-version` (older npm's setting; the Node.js version engines are checked
    // against), else the `node` on the client's PATH.
    let node_version = match inputs.cfg.get("node-version") {
        Some(v) => crate::semver_npm::parse_version(v),
        None => node_version(installer, &inputs.env).await,
    };
    let download_early = !req.omit_dev && inputs.network != Network::Offline && !inputs.lock_only;
    let mut resolver = Resolver {
        registry: &installer.registry,
        store: &installer.store,
        bundles: &installer.bundles,
        project: &inputs.dir,
        cfg: &inputs.cfg,
        network: inputs.network,
        node_version,
        preferred,
        fresh: if req.update_all {
            Some(vec![])
        } else if req.update.is_empty() {
            None
        } else {
            Some(req.update.clone())
        },
        notes: vec![],
        on_progress: Some(Box::new({
            let hook = run.em.progress_hook(v1::Phase::Resolve);
            move |done, total| hook(done, total, "")
        })),
        on_picked: on_picked(
            download_early.then(|| download_on_pick(installer, inputs)),
            early.map(|e| e.hook(inputs)),
        ),
        git_prepare: Some(super::git_prepare::for_install(
            &installer.store.layout.root,
            inputs,
        )),
    };
    let workspaces = inputs
        .project
        .workspaces
        .iter()
        .map(|(d, m, _)| (d.clone(), m.clone()))
        .collect();
    let project = &inputs.project;
    let tree = tokio::select! {
        r = resolver.resolve(project.manifest.clone(), &project.pkg_json, workspaces)
            .instrument(info_span!("resolve")) => r?,
        _ = run.cancel.cancelled() => return Err(HoardError::Cancelled("during resolution".into())),
    };
    let notes: Vec<Note> = std::mem::take(&mut resolver.notes);
    for (code, pkg, msg) in notes {
        run.em.warn(&code, &pkg, msg).await;
    }
    Ok(tree)
}

/// One pick hook doing both: start the download, hand the signatures to the checker.
fn on_picked(
    mut download: Option<PickedHook<'static>>,
    verify: Option<impl FnMut(&Node) + Send + Sync + 'static>,
) -> Option<PickedHook<'static>> {
    let mut verify = verify;
    if download.is_none() && verify.is_none() {
        return None;
    }
    Some(Box::new(move |n: &Node| {
        if let Some(d) = download.as_mut() {
            d(n);
        }
        if let Some(v) = verify.as_mut() {
            v(n);
        }
    }))
}

/// Downloads start as soon as a version is picked.
fn download_on_pick(installer: &Arc<Installer>, inputs: &Inputs) -> PickedHook<'static> {
    let store = installer.store.clone();
    let http = installer.registry.http.clone();
    let cfg = inputs.cfg.clone();
    let dir = inputs.dir.clone();
    Box::new(move |node: &Node| {
        if !node.platform_ok {
            return;
        }
        if let Some(t) = node.tarball_ref(&cfg, &dir) {
            let store = store.clone();
            let http = http.clone();
            tokio::spawn(async move {
                let _ = store.ensure(&t, &http, false).await;
            });
        }
    })
}

/// `node --version` of the `node` on the client's PATH, remembered per PATH.
async fn node_version(
    installer: &Installer,
    env: &HashMap<String, String>,
) -> Option<semver::Version> {
    let path = env.get("PATH").cloned().unwrap_or_default();
    if let Some(v) = installer
        .node_versions
        .lock()
        .ok()
        .and_then(|m| m.get(&path).cloned())
    {
        return v;
    }
    let out = tokio::process::Command::new("node")
        .arg("--version")
        .env_clear()
        .env("PATH", &path)
        .output()
        .await
        .ok();
    let v = out
        .filter(|o| o.status.success())
        .and_then(|o| crate::semver_npm::parse_version(String::from_utf8_lossy(&o.stdout).trim()));
    if let Ok(mut m) = installer.node_versions.lock() {
        m.insert(path, v.clone());
    }
    v
}
