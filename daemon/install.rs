//! One install request from start to summary: project checks, package.json edits (add/remove),
//! the no-op check, lockfile or resolution, fetching into the store, planning and linking
//! node_modules, scripts policy, package-lock.json, project registration and the state file.
//!
//! Owns the order of the pipeline and the events it streams. Must not: run package code (the
//! client runs allowed scripts), or hold the async executor with blocking work.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::StreamExt;
use hoard_proto::v1::{
    self, DeniedScript, InstallEvent, InstallRequest, InstallSummary, PhaseProgress, PhaseTiming,
    Script, install_event::Event,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span};

use crate::error::{HoardError, Result};
use crate::linker;
use crate::linker::method::{Method, Requested};
use crate::lockfile;
use crate::project::{self, Project};
use crate::registry::config::NpmConfig;
use crate::registry::{Network, Registry};
use crate::resolve::Resolver;
use crate::spec::{Spec, split_arg};
use crate::store::{Store, StoredPackage};
use crate::tree::{NodeKind, Tree};

/// Shared, long-lived install machinery (one per daemon).
pub struct Installer {
    pub store: Arc<Store>,
    pub registry: Arc<Registry>,
    /// Link method found per (store device, project device).
    link_memory: Mutex<HashMap<(u64, u64), Method>>,
    /// `node --version` per PATH.
    node_versions: Mutex<HashMap<String, Option<semver::Version>>>,
}

pub type EventSender = mpsc::Sender<std::result::Result<InstallEvent, tonic::Status>>;

struct Emitter {
    tx: EventSender,
}

impl Emitter {
    async fn send(&self, e: Event) {
        let _ = self.tx.send(Ok(InstallEvent { event: Some(e) })).await;
    }
    async fn progress(&self, phase: v1::Phase, done: u64, total: u64, bytes: u64, finished: bool) {
        self.send(Event::Progress(PhaseProgress {
            phase: phase as i32,
            done,
            total,
            bytes,
            finished,
        }))
        .await;
    }
    async fn warn(&self, code: &str, package: &str, message: String) {
        self.send(Event::Warning(v1::Warning {
            message,
            package: package.to_string(),
            code: code.to_string(),
        }))
        .await;
    }
}

fn network_of(req: &InstallRequest) -> Network {
    match v1::NetworkMode::try_from(req.network).unwrap_or(v1::NetworkMode::Online) {
        v1::NetworkMode::Online => Network::Online,
        v1::NetworkMode::PreferOffline => Network::PreferOffline,
        v1::NetworkMode::Offline => Network::Offline,
    }
}

fn requested_method(req: &InstallRequest) -> Requested {
    match v1::LinkMethod::try_from(req.link_method).unwrap_or(v1::LinkMethod::Auto) {
        v1::LinkMethod::Auto => Requested::Auto,
        v1::LinkMethod::Reflink => Requested::Exactly(Method::Reflink),
        v1::LinkMethod::Hardlink => Requested::Exactly(Method::Hardlink),
        v1::LinkMethod::Copy => Requested::Exactly(Method::Copy),
    }
}

fn method_to_proto(m: Method) -> v1::LinkMethod {
    match m {
        Method::Reflink => v1::LinkMethod::Reflink,
        Method::Hardlink => v1::LinkMethod::Hardlink,
        Method::Copy => v1::LinkMethod::Copy,
    }
}

fn layout_name(req: &InstallRequest) -> &'static str {
    match v1::Layout::try_from(req.layout).unwrap_or(v1::Layout::Hoisted) {
        v1::Layout::Hoisted => "hoisted",
        v1::Layout::Isolated => "isolated",
    }
}

/// Fingerprint of everything an install depends on.
fn inputs_hash(project: &Project, lock_bytes: Option<&[u8]>, req: &InstallRequest) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"hoard-inputs-v1\0");
    h.update(&project.pkg_bytes);
    h.update(b"\0lock\0");
    h.update(lock_bytes.unwrap_or(b""));
    for (dir, _, bytes) in &project.workspaces {
        h.update(dir.as_bytes());
        h.update(bytes);
    }
    h.update(
        format!(
            "\0{}\0{}\0{}",
            req.omit_dev,
            layout_name(req),
            req.link_method
        )
        .as_bytes(),
    );
    if let Ok(npmrc) = std::fs::read(project.dir.join(".npmrc")) {
        h.update(&npmrc);
    }
    h.finalize().to_hex().to_string()
}

/// Run blocking filesystem or CPU work from async code without stalling the executor: the
/// runtime moves its other tasks off this worker while `f` runs (multi-thread runtime only).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Root lifecycle scripts npm runs after a plain `npm install` has linked node_modules, in
/// order. (`preinstall` runs before: the client runs it before it sends the request.)
const ROOT_EVENTS: [&str; 6] = [
    "install",
    "postinstall",
    "prepublish",
    "preprepare",
    "prepare",
    "postprepare",
];

fn root_scripts(project: &Project) -> Vec<Script> {
    let mut out = Vec::new();
    for event in ROOT_EVENTS {
        if let Some(cmd) = project.manifest.scripts.get(event) {
            out.push(Script {
                package: project.manifest.name.clone(),
                version: project.manifest.version.clone(),
                path: project.dir.display().to_string(),
                event: event.to_string(),
                command: cmd.clone(),
                is_root: true,
            });
        }
    }
    out
}

impl Installer {
    pub fn new(store: Arc<Store>, registry: Arc<Registry>) -> Installer {
        Installer {
            store,
            registry,
            link_memory: Mutex::new(HashMap::new()),
            node_versions: Mutex::new(HashMap::new()),
        }
    }

    async fn node_version(&self, env: &HashMap<String, String>) -> Option<semver::Version> {
        let path = env.get("PATH").cloned().unwrap_or_default();
        if let Some(v) = self
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
        let v = out.filter(|o| o.status.success()).and_then(|o| {
            crate::semver_npm::parse_version(String::from_utf8_lossy(&o.stdout).trim())
        });
        if let Ok(mut m) = self.node_versions.lock() {
            m.insert(path, v.clone());
        }
        v
    }

    /// Run one install. Events go to `tx`; the summary is returned (and not sent).
    pub async fn run(
        self: &Arc<Self>,
        req: InstallRequest,
        tx: EventSender,
        cancel: CancellationToken,
    ) -> Result<InstallSummary> {
        let started = Instant::now();
        let metadata_bytes_before = self
            .registry
            .bytes_downloaded
            .load(std::sync::atomic::Ordering::Relaxed);
        let em = Emitter { tx };
        let dir = PathBuf::from(&req.project_dir);
        if !dir.is_absolute() {
            return Err(HoardError::InvalidInput(format!(
                "project_dir `{}` must be an absolute path",
                dir.display()
            )));
        }
        let dir = blocking(|| std::fs::canonicalize(&dir)).map_err(|e| {
            HoardError::InvalidInput(format!(
                "project directory `{}` cannot be used: {e}",
                dir.display()
            ))
        })?;
        let md =
            blocking(|| std::fs::metadata(&dir)).map_err(|e| HoardError::io("reading", &dir, e))?;
        if md.uid() != req.peer_uid && req.peer_uid != 0 {
            return Err(HoardError::PermissionDenied(format!(
                "project directory `{}` belongs to uid {}, not to you (uid {}); hoard installs \
                 only into your own projects",
                dir.display(),
                md.uid(),
                req.peer_uid
            )));
        }
        let env: HashMap<String, String> = req.env.clone();
        let cfg = blocking(|| NpmConfig::load(&dir, &env));
        let network = network_of(&req);
        let lock_only =
            req.package_lock_only == Some(true) || cfg.get("package-lock-only") == Some("true");

        // package.json edits (add/remove).
        let mut project = blocking(|| Project::load(&dir))?;
        if !req.add.is_empty() || !req.remove.is_empty() {
            self.edit_manifest(&mut project, &req, &cfg, network, &em)
                .await?;
            project = blocking(|| Project::load(&dir))?;
        }
        let lock_path = dir.join(lockfile::FILE);
        let lock = blocking(|| lockfile::parse_json_file(&lock_path))?;
        let lock_bytes = lock.as_ref().map(|(_, b)| b.clone());
        let inputs = blocking(|| inputs_hash(&project, lock_bytes.as_deref(), &req));
        let mut summary = InstallSummary::default();

        // No-op: nothing changed since the last install.
        let updating = req.update_all || !req.update.is_empty();
        if !req.force && !updating {
            let nm = dir.join("node_modules");
            if let Some(state) = blocking(|| linker::read_state(&dir))
                && state.node_modules_mtime == linker::state::dir_mtime(&nm)
                && (state.inputs == inputs || {
                    summary.lockfile_written = self
                        .give_lock_back(&dir, &project, &lock, &state, &req, &em)
                        .await?;
                    summary.lockfile_written
                })
            {
                summary.up_to_date = true;
                summary.unchanged = state.packages.len() as u64;
                summary.total_packages = state.packages.len() as u64;
                summary.link_method = match state.link_method.as_str() {
                    "reflink" => v1::LinkMethod::Reflink,
                    "copy" => v1::LinkMethod::Copy,
                    _ => v1::LinkMethod::Hardlink,
                } as i32;
                summary.scripts = root_scripts(&project);
                summary.total_millis = started.elapsed().as_millis() as u64;
                return Ok(summary);
            }
        }

        // Tree: from the lockfile when it still fits, else resolved.
        let t_resolve = Instant::now();
        let ws_map = project.workspace_map();
        let mut preferred = HashMap::new();
        let mut tree: Option<Tree> = None;
        match &lock {
            Some((lock_json, _)) if !req.update_all => {
                match blocking(|| {
                    lockfile::tree_from_lock(lock_json, project.manifest.clone(), &ws_map, &cfg)
                }) {
                    Ok(t) => {
                        let problems = blocking(|| lockfile::mismatches(lock_json, &t));
                        if req.frozen && !problems.is_empty() {
                            return Err(HoardError::Lockfile(format!(
                                "package-lock.json does not match package.json, and `hoard ci` \
                                 never changes it:\n  - {}\nRun `hoard install` to update the lockfile.",
                                problems.join("\n  - ")
                            )));
                        }
                        if problems.is_empty() && req.update.is_empty() {
                            tree = Some(t);
                        } else if !problems.is_empty() {
                            em.send(Event::Info(format!(
                                "package-lock.json is out of date ({}); resolving",
                                problems[0]
                            )))
                            .await;
                        }
                    }
                    Err(e) if req.frozen => return Err(e),
                    Err(e) => em.send(Event::Info(format!("{e}; resolving"))).await,
                }
                preferred = lockfile::preferred_versions(lock_json);
            }
            None if req.frozen => {
                return Err(HoardError::Lockfile(format!(
                    "`hoard ci` needs a package-lock.json in `{}`; run `hoard install` first to \
                     create one",
                    dir.display()
                )));
            }
            _ => {}
        }
        let from_lock = tree.is_some();
        let mut notes = Vec::new();
        let mut tree = match tree {
            Some(t) => t,
            None => {
                // npm's `node-version` (older npm's setting; the Node.js version engines are
                // checked against), else the `node` on the client's PATH.
                let node_version = match cfg.get("node-version") {
                    Some(v) => crate::semver_npm::parse_version(v),
                    None => self.node_version(&env).await,
                };
                let store = self.store.clone();
                let http = self.registry.http.clone();
                let prefetch = !req.omit_dev && network != Network::Offline && !lock_only;
                let cfg2 = cfg.clone();
                let dir2 = dir.clone();
                let em_tx = em.tx.clone();
                let mut resolver = Resolver {
                    registry: &self.registry,
                    store: &self.store,
                    project: &dir,
                    cfg: &cfg,
                    network,
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
                    on_progress: Some(Box::new(move |done, total| {
                        let _ = em_tx.try_send(Ok(InstallEvent {
                            event: Some(Event::Progress(PhaseProgress {
                                phase: v1::Phase::Resolve as i32,
                                done,
                                total,
                                bytes: 0,
                                finished: false,
                            })),
                        }));
                    })),
                    // Downloads start as soon as a version is picked.
                    on_picked: Some(Box::new(move |node| {
                        if !prefetch || !node.platform_ok {
                            return;
                        }
                        if let Some(t) = node.tarball_ref(&cfg2, &dir2) {
                            let store = store.clone();
                            let http = http.clone();
                            tokio::spawn(async move {
                                let _ = store.ensure(&t, &http, false).await;
                            });
                        }
                    })),
                };
                let workspaces = project
                    .workspaces
                    .iter()
                    .map(|(d, m, _)| (d.clone(), m.clone()))
                    .collect();
                let resolved = tokio::select! {
                    r = resolver.resolve(project.manifest.clone(), &project.pkg_json, workspaces)
                        .instrument(info_span!("resolve")) => r?,
                    _ = cancel.cancelled() => return Err(HoardError::Cancelled("during resolution".into())),
                };
                notes = std::mem::take(&mut resolver.notes);
                resolved
            }
        };
        for (code, pkg, msg) in &notes {
            em.warn(code, pkg, msg.clone()).await;
        }
        let resolve_ms = t_resolve.elapsed().as_millis() as u64;
        em.progress(
            v1::Phase::Resolve,
            tree.nodes.len() as u64,
            tree.nodes.len() as u64,
            0,
            true,
        )
        .await;

        if lock_only {
            let started_at = started;
            return blocking(|| {
                write_lock_only(&tree, &project, &lock_path, lock_bytes.as_deref(), &req)
            })
            .map(|written| {
                summary.lockfile_written = written;
                summary.total_packages = (tree.nodes.len() - 1) as u64;
                summary.timings = vec![PhaseTiming {
                    phase: v1::Phase::Resolve as i32,
                    millis: resolve_ms,
                }];
                summary.total_millis = started_at.elapsed().as_millis() as u64;
                summary
            });
        }

        // Which nodes get installed.
        let unreachable = tree.unreachable();
        let install: Vec<usize> = (1..tree.nodes.len())
            .filter(|&i| {
                let n = &tree.nodes[i];
                matches!(n.kind, NodeKind::Package { .. })
                    && !n.in_bundle
                    && n.platform_ok
                    && !(req.omit_dev && n.dev)
                    && !unreachable.contains(&i)
            })
            .collect();
        for &i in &install {
            if let NodeKind::Package { resolved, .. } = &tree.nodes[i].kind
                && resolved.is_empty()
            {
                return Err(HoardError::Lockfile(format!(
                    "{} has no tarball URL",
                    tree.nodes[i].pkg_id()
                )));
            }
        }

        // Fetch into the store.
        let t_fetch = Instant::now();
        let total = install.len() as u64;
        let mut stored: HashMap<usize, Arc<StoredPackage>> = HashMap::new();
        {
            let offline = network == Network::Offline;
            let span = info_span!("fetch", packages = total);
            let jobs = install.clone().into_iter().map(|i| {
                let t = tree.nodes[i].tarball_ref(&cfg, &dir);
                let store = self.store.clone();
                let http = self.registry.http.clone();
                async move {
                    let r = match t {
                        Some(t) => store.ensure(&t, &http, offline).await,
                        None => Err(HoardError::Internal("not a registry package".into())),
                    };
                    (i, r)
                }
                .instrument(span.clone())
            });
            let mut stream = futures_util::stream::iter(jobs).buffer_unordered(128);
            let mut done = 0u64;
            let mut bytes = 0u64;
            loop {
                let next = tokio::select! {
                    n = stream.next() => n,
                    _ = cancel.cancelled() => return Err(HoardError::Cancelled("while fetching".into())),
                };
                let Some((i, r)) = next else { break };
                done += 1;
                match r {
                    Ok(p) => {
                        // Downloaded for this install (possibly by the early prefetch).
                        if p.imported_at.is_some_and(|t| t >= started) {
                            summary.downloaded += 1;
                            bytes += p.bytes_downloaded;
                        } else {
                            summary.reused += 1;
                        }
                        stored.insert(i, p);
                    }
                    Err(e) if tree.nodes[i].optional => {
                        em.warn(
                            "optional-skipped",
                            &tree.nodes[i].pkg_id(),
                            format!("optional {} skipped: {e}", tree.nodes[i].pkg_id()),
                        )
                        .await;
                        // Left out of `stored`: the plan skips it.
                    }
                    Err(e) => return Err(e),
                }
                if done.is_multiple_of(8) || done == total {
                    em.progress(v1::Phase::Fetch, done, total, bytes, false)
                        .await;
                }
            }
            // Metadata fetched by concurrent installs may be counted here too.
            summary.bytes_downloaded = bytes
                + self
                    .registry
                    .bytes_downloaded
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .saturating_sub(metadata_bytes_before);
            em.progress(v1::Phase::Fetch, done, total, bytes, true)
                .await;
        }
        let fetch_ms = t_fetch.elapsed().as_millis() as u64;
        // Fill in integrity the lock lacked.
        let mut integrity_filled = false;
        for (&i, p) in &stored {
            if let NodeKind::Package { integrity, .. } = &mut tree.nodes[i].kind
                && integrity.is_none()
            {
                *integrity = Some(p.integrity.clone());
                integrity_filled = true;
            }
        }

        // Scripts policy.
        let layout = layout_name(&req);
        let allowed = project.allowed_scripts();
        let mut dep_scripts: Vec<(usize, Script)> = Vec::new();
        let mut copies: HashSet<usize> = HashSet::new();
        for (&i, p) in &stored {
            let n = &tree.nodes[i];
            let scripts = blocking(|| package_install_scripts(&self.store, p, &n.manifest));
            if scripts.is_empty() {
                continue;
            }
            let real = n.real_name().to_string();
            if allowed.get(&real).copied().unwrap_or(false) {
                copies.insert(i);
                for (event, command) in scripts {
                    dep_scripts.push((
                        i,
                        Script {
                            package: real.clone(),
                            version: n.version().to_string(),
                            // Where the package's folder is in this layout.
                            path: dir
                                .join(if layout == "isolated" {
                                    linker::plan::isolated_dir(n)
                                } else {
                                    n.location.clone()
                                })
                                .display()
                                .to_string(),
                            event,
                            command,
                            is_root: false,
                        },
                    ));
                }
            } else {
                for (event, command) in scripts {
                    summary.denied_scripts.push(DeniedScript {
                        package: real.clone(),
                        version: n.version().to_string(),
                        event,
                        command,
                    });
                }
            }
        }
        if !summary.denied_scripts.is_empty() {
            let mut names: Vec<String> = summary
                .denied_scripts
                .iter()
                .map(|d| d.package.clone())
                .collect();
            names.dedup();
            em.warn(
                "script-denied",
                "",
                format!(
                    "install scripts of {} were not run; to allow them add to package.json: \
                     \"hoard\": {{\"allowScripts\": {{\"{}\": true}}}}",
                    names.join(", "),
                    names[0]
                ),
            )
            .await;
        }
        // Dependencies before dependents: deeper folders first.
        dep_scripts.sort_by_key(|(i, s)| {
            (
                std::cmp::Reverse(tree.nodes[*i].depth()),
                tree.nodes[*i].location.clone(),
                ROOT_EVENTS.iter().position(|e| *e == s.event),
            )
        });

        // Plan and link.
        let t_link = Instant::now();
        let mut plan = if layout == "isolated" {
            linker::plan::isolated(&tree, &stored, &copies)
        } else {
            linker::plan::hoisted(&tree, &stored, &copies)
        };
        linker::compute_bin_links(&mut plan);
        let requested = requested_method(&req);
        let dev_key = (
            blocking(|| std::fs::metadata(&self.store.layout.files))
                .map(|m| m.dev())
                .unwrap_or(0),
            md.dev(),
        );
        let remembered = self
            .link_memory
            .lock()
            .ok()
            .and_then(|m| m.get(&dev_key).copied());
        let store = self.store.clone();
        let dir2 = dir.clone();
        let em_tx = em.tx.clone();
        let force = req.force;
        let plan = Arc::new(plan);
        let plan2 = plan.clone();
        let report = tokio::task::spawn_blocking(move || {
            let _span = info_span!("link").entered();
            let progress = move |done: u64, total: u64| {
                let _ = em_tx.try_send(Ok(InstallEvent {
                    event: Some(Event::Progress(PhaseProgress {
                        phase: v1::Phase::Link as i32,
                        done,
                        total,
                        bytes: 0,
                        finished: false,
                    })),
                }));
            };
            linker::materialize(
                &dir2, &plan2, &store, requested, remembered, force, &progress,
            )
        })
        .await??;
        if let (Some(m), Requested::Auto) = (report.method, requested)
            && let Ok(mut mem) = self.link_memory.lock()
        {
            mem.insert(dev_key, m);
        }
        for w in &report.warnings {
            em.warn("link-fallback", "", w.clone()).await;
        }
        em.progress(v1::Phase::Link, report.added, report.added, 0, true)
            .await;
        let link_ms = t_link.elapsed().as_millis() as u64;

        // package-lock.json.
        let mut lockfile_written = false;
        // A lock that was used as it is stays byte for byte (it may carry fields hoard does
        // not write, such as `funding`), unless integrity had to be filled in.
        if !req.no_lockfile && !req.frozen && (!from_lock || integrity_filled) {
            let bytes = blocking(|| lockfile::render(&lockfile::to_json(&tree, &project.pkg_json)));
            if lock_bytes.as_deref() != Some(bytes.as_slice()) {
                blocking(|| crate::atomic::write_atomic(&lock_path, &bytes))?;
                lockfile_written = true;
            }
        }

        // Register the project for GC.
        let ids: Vec<i64> = stored.values().map(|p| p.id).collect();
        let index = self.store.index.clone();
        let proj = dir.display().to_string();
        tokio::task::spawn_blocking(move || index.register_project(proj, ids)).await??;

        // State last: the install is complete.
        blocking(|| {
            let lock_now = std::fs::read(&lock_path).ok();
            linker::state::write_hidden_lock(&dir, lock_now.as_deref())?;
            let inputs = inputs_hash(&project, lock_now.as_deref(), &req);
            linker::write_state(&dir, &plan, &inputs, report.method)
        })?;

        summary.added = report.added;
        summary.removed = report.removed;
        summary.unchanged = report.unchanged;
        summary.files_linked = report.files;
        summary.link_method = method_to_proto(report.method.unwrap_or(Method::Hardlink)) as i32;
        summary.total_packages = plan.packages.len() as u64;
        summary.lockfile_written = lockfile_written;
        summary.timings = vec![
            PhaseTiming {
                phase: v1::Phase::Resolve as i32,
                millis: resolve_ms,
            },
            PhaseTiming {
                phase: v1::Phase::Fetch as i32,
                millis: fetch_ms,
            },
            PhaseTiming {
                phase: v1::Phase::Link as i32,
                millis: link_ms,
            },
        ];
        summary.scripts = dep_scripts.into_iter().map(|(_, s)| s).collect();
        if req.add.is_empty() && req.remove.is_empty() {
            summary.scripts.extend(root_scripts(&project));
        }
        summary.total_millis = started.elapsed().as_millis() as u64;
        info!(
            project = %dir.display(),
            added = summary.added,
            removed = summary.removed,
            downloaded = summary.downloaded,
            millis = summary.total_millis,
            "install finished"
        );
        Ok(summary)
    }

    /// `hoard outdated`: direct dependencies with a newer wanted or latest version.
    /// node_modules is exactly what an earlier install left (its state says so) but
    /// package-lock.json is gone: when the lockfile that install ended with, kept in
    /// node_modules, still fits this package.json and these options, write it back and answer
    /// "up to date" without resolving or downloading anything (the store may be empty).
    async fn give_lock_back(
        &self,
        dir: &Path,
        project: &Project,
        lock: &Option<(serde_json::Value, Vec<u8>)>,
        state: &linker::State,
        req: &InstallRequest,
        em: &Emitter,
    ) -> Result<bool> {
        if lock.is_some() || req.no_lockfile || req.frozen || !req.add.is_empty() {
            return Ok(false);
        }
        let Some(bytes) = blocking(|| linker::state::read_hidden_lock(dir)) else {
            return Ok(false);
        };
        if blocking(|| inputs_hash(project, Some(&bytes), req)) != state.inputs {
            return Ok(false);
        }
        let lock_path = dir.join(lockfile::FILE);
        blocking(|| crate::atomic::write_atomic(&lock_path, &bytes))?;
        em.send(Event::Info(
            "node_modules matches its last install: package-lock.json written back from it".into(),
        ))
        .await;
        Ok(true)
    }

    pub async fn outdated(&self, req: v1::OutdatedRequest) -> Result<v1::OutdatedResponse> {
        let dir = project_dir(&req.project_dir)?;
        let project = blocking(|| Project::load(&dir))?;
        let cfg = blocking(|| NpmConfig::load(&dir, &req.env));
        let network =
            match v1::NetworkMode::try_from(req.network).unwrap_or(v1::NetworkMode::Online) {
                v1::NetworkMode::Online => Network::Online,
                v1::NetworkMode::PreferOffline => Network::PreferOffline,
                v1::NetworkMode::Offline => Network::Offline,
            };
        let installed: HashMap<String, String> =
            blocking(|| lockfile::parse_json_file(&dir.join(lockfile::FILE)))?
                .and_then(|(v, _)| v.get("packages").and_then(|p| p.as_object()).cloned())
                .map(|p| {
                    p.iter()
                        .filter_map(|(k, e)| {
                            let name = k.strip_prefix("node_modules/")?;
                            (!name.contains("/node_modules/")).then(|| {
                                Some((name.to_string(), e.get("version")?.as_str()?.to_string()))
                            })?
                        })
                        .collect()
                })
                .unwrap_or_default();
        let m = &project.manifest;
        let mut out = Vec::new();
        for (section, deps) in [
            ("dependencies", &m.dependencies),
            ("devDependencies", &m.dev_dependencies),
            ("optionalDependencies", &m.optional_dependencies),
        ] {
            for (name, raw) in deps {
                let (real, inner) = match Spec::parse(name, raw)? {
                    Spec::Alias { name, spec } => (name, *spec),
                    s @ (Spec::Range(_) | Spec::Tag(_)) => (name.clone(), s),
                    _ => continue,
                };
                let p = self.registry.packument(&real, &cfg, network).await?;
                let wanted = crate::pick::pick(&p, &inner, None, None)
                    .map(|m| m.version.clone())
                    .unwrap_or_default();
                let latest = p.dist_tags.get("latest").cloned().unwrap_or_default();
                let current = installed.get(name).cloned().unwrap_or_default();
                if current != wanted || current != latest {
                    out.push(v1::OutdatedPackage {
                        name: name.clone(),
                        current,
                        wanted,
                        latest,
                        dependency_type: section.to_string(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v1::OutdatedResponse { packages: out })
    }

    /// Apply `add`/`remove` to package.json (resolving added specs to save `^version`).
    async fn edit_manifest(
        &self,
        project: &mut Project,
        req: &InstallRequest,
        cfg: &NpmConfig,
        network: Network,
        em: &Emitter,
    ) -> Result<()> {
        let mut pkg = project.pkg_json.clone();
        let section =
            match v1::DependencyKind::try_from(req.add_kind).unwrap_or(v1::DependencyKind::Prod) {
                v1::DependencyKind::Prod => "dependencies",
                v1::DependencyKind::Dev => "devDependencies",
                v1::DependencyKind::Optional => "optionalDependencies",
                v1::DependencyKind::Peer => "peerDependencies",
            };
        for arg in &req.add {
            let (name, raw) = split_arg(arg)?;
            let raw = if raw.is_empty() {
                "latest".to_string()
            } else {
                raw
            };
            let spec = Spec::parse(&name, &raw)?;
            let save = match &spec {
                Spec::Range(_) | Spec::Tag(_) | Spec::Alias { .. } => {
                    let (real, inner) = match &spec {
                        Spec::Alias { name, spec } => (name.clone(), (**spec).clone()),
                        s => (name.clone(), s.clone()),
                    };
                    let p = self.registry.packument(&real, cfg, network).await?;
                    let Some(m) = crate::pick::pick(&p, &inner, None, None) else {
                        return Err(HoardError::Resolve(format!(
                            "no version of `{real}` matches `{raw}`; dist-tags: {}",
                            p.dist_tags
                                .iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    };
                    let exact = req.save_exact || crate::semver_npm::parse_version(&raw).is_some();
                    let v = if exact {
                        m.version.clone()
                    } else {
                        format!("^{}", m.version)
                    };
                    if matches!(spec, Spec::Alias { .. }) {
                        format!("npm:{real}@{v}")
                    } else {
                        v
                    }
                }
                _ => raw.clone(),
            };
            project::set_dependency(&mut pkg, section, &name, &save);
            em.send(Event::Info(format!("{name}@{save} added to {section}")))
                .await;
        }
        for name in &req.remove {
            if !project::remove_dependency(&mut pkg, name) {
                em.warn(
                    "not-a-dependency",
                    name,
                    format!("`{name}` is not a dependency in package.json; nothing to remove"),
                )
                .await;
            }
        }
        let bytes = project::render_like(&pkg, &project.pkg_bytes)?;
        blocking(|| crate::atomic::write_atomic(&project.dir.join("package.json"), &bytes))
    }
}

/// (event, command) of a package's install scripts, in order; node-gyp's implicit
/// `install` when binding.gyp exists and no install/preinstall script is given.
fn package_install_scripts(
    store: &Store,
    p: &StoredPackage,
    m: &crate::registry::packument::Manifest,
) -> Vec<(String, String)> {
    let has_gyp = p.files.iter().any(|f| f.path == "binding.gyp");
    if !m.install_scripts() && !has_gyp {
        return vec![];
    }
    let scripts: HashMap<String, String> = p
        .files
        .iter()
        .find(|f| f.path == "package.json")
        .and_then(|f| std::fs::read(store.content_path(f)).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("scripts").cloned())
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or_default();
    let mut out = Vec::new();
    for event in ["preinstall", "install", "postinstall"] {
        if let Some(c) = scripts.get(event) {
            out.push((event.to_string(), c.clone()));
        } else if event == "install" && has_gyp && !scripts.contains_key("preinstall") {
            out.push((event.to_string(), "node-gyp rebuild".to_string()));
        }
    }
    out
}

/// Helper for the service: is `dir` a usable project path (for Watch).
pub fn project_dir(raw: &str) -> Result<PathBuf> {
    let p = Path::new(raw);
    if !p.is_absolute() {
        return Err(HoardError::InvalidInput(format!(
            "`{raw}` must be an absolute path"
        )));
    }
    std::fs::canonicalize(p).map_err(|e| HoardError::InvalidInput(format!("`{raw}`: {e}")))
}

/// `--package-lock-only`: write package-lock.json from the tree and nothing else. Returns
/// whether the file changed.
fn write_lock_only(
    tree: &Tree,
    project: &Project,
    lock_path: &Path,
    old: Option<&[u8]>,
    req: &InstallRequest,
) -> Result<bool> {
    if req.frozen || req.no_lockfile {
        return Ok(false);
    }
    let bytes = lockfile::render(&lockfile::to_json(tree, &project.pkg_json));
    if old == Some(bytes.as_slice()) {
        return Ok(false);
    }
    crate::atomic::write_atomic(lock_path, &bytes)?;
    Ok(true)
}
