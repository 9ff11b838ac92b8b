//! Installs done before they are asked for. The daemon watches the projects it installed (the
//! most recently installed first, at most `HOARD_AHEAD_PROJECTS`, default 32; 0 turns it off),
//! one non-recursive watcher each. When package.json or package-lock.json changes (a `git
//! checkout`, a `git pull`), it lets the change settle (`HOARD_AHEAD_SETTLE_MS`, default 300)
//! and prepares the next install with the project's last request (`Installer::prepare`): the
//! store gets what the new tree needs and, in the global layout, the next node_modules is built
//! beside the old one. `Watch` streams hear "node_modules out of date", then "ready". A project
//! opts out with `"hoard": {"prepare": false}` in package.json. Each watched project's last
//! request is kept in the store (`v1/ahead/<16 hex>.req`, the private store folder, since the
//! request carries the client's npm environment), so a new daemon watches the same projects.
//!
//! Must not: change a project itself (prepare builds only inside `node_modules/.hoard-next`),
//! run beside an install of the same project (it takes the project's lock), or beside verify
//! (it holds the installs' shared lock, as an install does).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use hoard_proto::v1::InstallRequest;
use hoard_proto::v1::watch_event::Kind;
use notify::{RecursiveMode, Watcher};
use tokio::sync::{RwLock, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::install::Installer;

/// What ahead-of-time installs need of the daemon.
pub trait Host: Send + Sync {
    /// The lock an install of `dir` holds.
    fn project_lock(&self, dir: &Path) -> Arc<tokio::sync::Mutex<()>>;
    /// Tell `Watch` streams of `dir`.
    fn emit(&self, dir: &Path, kind: Kind, message: String);
}

/// How many projects, and how long a change settles.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub projects: usize,
    pub settle: Duration,
}

impl Settings {
    pub fn from_env() -> Option<Settings> {
        let num = crate::settings::number;
        let projects = num("HOARD_AHEAD_PROJECTS", 32) as usize;
        (projects > 0).then(|| Settings {
            projects,
            settle: Duration::from_millis(num("HOARD_AHEAD_SETTLE_MS", 300)),
        })
    }
}

/// One watched project.
struct Watched {
    req: InstallRequest,
    _watcher: notify::RecommendedWatcher,
    /// Bumped by every change; a prepare runs only for the latest one.
    generation: u64,
}

pub struct Ahead {
    installer: Arc<Installer>,
    installs: Arc<RwLock<()>>,
    host: Weak<dyn Host>,
    settings: Settings,
    stop: CancellationToken,
    /// Watched projects, the most recently installed last.
    order: Mutex<VecDeque<PathBuf>>,
    watched: Mutex<HashMap<PathBuf, Watched>>,
    changes: mpsc::UnboundedSender<PathBuf>,
    /// Where each watched project's last request is kept.
    saved: PathBuf,
}

impl Ahead {
    /// Start watching nothing yet; `remember` adds projects.
    pub fn start(
        installer: Arc<Installer>,
        installs: Arc<RwLock<()>>,
        host: Weak<dyn Host>,
        settings: Settings,
        stop: CancellationToken,
    ) -> Arc<Ahead> {
        let (tx, rx) = mpsc::unbounded_channel();
        let saved = installer.store.layout.ahead.clone();
        let ahead = Arc::new(Ahead {
            installer,
            installs,
            host,
            settings,
            stop,
            order: Mutex::new(VecDeque::new()),
            watched: Mutex::new(HashMap::new()),
            changes: tx,
            saved,
        });
        let saved = ahead.clone();
        tokio::task::spawn_blocking(move || saved.watch_saved());
        tokio::spawn(Ahead::listen(Arc::downgrade(&ahead), rx));
        ahead
    }

    /// Watch again the projects an earlier daemon watched (the most recent ones). Blocking.
    fn watch_saved(&self) {
        let mut found: Vec<(std::time::SystemTime, InstallRequest)> = Vec::new();
        for e in std::fs::read_dir(&self.saved)
            .into_iter()
            .flatten()
            .flatten()
        {
            let when = e.metadata().and_then(|m| m.modified());
            let req = std::fs::read(e.path())
                .ok()
                .and_then(|b| <InstallRequest as prost::Message>::decode(b.as_slice()).ok());
            match (when, req) {
                (Ok(t), Some(r)) if Path::new(&r.project_dir).join("node_modules").is_dir() => {
                    found.push((t, r))
                }
                _ => {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        found.sort_by_key(|(t, _)| *t);
        let skip = found.len().saturating_sub(self.settings.projects);
        for (_, req) in found.into_iter().skip(skip) {
            let dir = PathBuf::from(&req.project_dir);
            self.remember(&dir, &req);
        }
    }

    fn saved_path(&self, dir: &Path) -> PathBuf {
        let h = blake3::hash(dir.as_os_str().as_encoded_bytes()).to_hex();
        self.saved.join(format!("{}.req", &h[..16]))
    }

    /// After an install of `dir` with `req`: watch it (or stop, when it opts out). Blocking
    /// (reads package.json, may write the kept request).
    pub fn remember(&self, dir: &Path, req: &InstallRequest) {
        let Ok(mut watched) = self.watched.lock() else {
            return;
        };
        let Ok(mut order) = self.order.lock() else {
            return;
        };
        order.retain(|p| p != dir);
        if opted_out(dir) {
            watched.remove(dir);
            let _ = std::fs::remove_file(self.saved_path(dir));
            return;
        }
        let mut req = req.clone();
        req.add.clear();
        req.remove.clear();
        req.update.clear();
        req.update_all = false;
        req.project_dir = dir.display().to_string();
        // Kept on disk when it changed (a no-op repeats the request it was installed with).
        if watched.get(dir).is_none_or(|w| w.req != req) {
            let bytes = prost::Message::encode_to_vec(&req);
            let _ = std::fs::create_dir_all(&self.saved);
            if let Err(e) = crate::atomic::write_atomic(&self.saved_path(dir), &bytes) {
                warn!(project = %dir.display(), error = %e, "cannot keep the project's request");
            }
        }
        if let Some(w) = watched.get_mut(dir) {
            w.req = req;
        } else {
            match self.watch(dir) {
                Ok(watcher) => {
                    let w = Watched {
                        req,
                        _watcher: watcher,
                        generation: 0,
                    };
                    watched.insert(dir.to_path_buf(), w);
                }
                Err(e) => {
                    warn!(project = %dir.display(), error = %e, "cannot watch the project");
                    return;
                }
            }
        }
        order.push_back(dir.to_path_buf());
        while order.len() > self.settings.projects {
            if let Some(old) = order.pop_front() {
                watched.remove(&old);
                let _ = std::fs::remove_file(self.saved_path(&old));
            }
        }
    }

    fn watch(&self, dir: &Path) -> notify::Result<notify::RecommendedWatcher> {
        let tx = self.changes.clone();
        let project = dir.to_path_buf();
        let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            if event.kind.is_access() {
                return;
            }
            let relevant = event.paths.iter().any(|p| {
                matches!(
                    p.file_name().and_then(|n| n.to_str()),
                    Some("package.json" | "package-lock.json" | ".npmrc")
                )
            });
            if relevant {
                let _ = tx.send(project.clone());
            }
        })?;
        w.watch(dir, RecursiveMode::NonRecursive)?;
        Ok(w)
    }

    /// Each change bumps its project's generation; the prepare waits for the change to settle.
    async fn listen(me: Weak<Ahead>, mut rx: mpsc::UnboundedReceiver<PathBuf>) {
        while let Some(dir) = rx.recv().await {
            let Some(ahead) = me.upgrade() else { return };
            let generation = {
                let Ok(mut w) = ahead.watched.lock() else {
                    continue;
                };
                let Some(entry) = w.get_mut(&dir) else {
                    continue;
                };
                entry.generation += 1;
                entry.generation
            };
            let span = info_span!("prepare", project = %dir.display());
            tokio::spawn(
                async move { ahead.settle_then_prepare(dir, generation).await }.instrument(span),
            );
        }
    }

    async fn settle_then_prepare(self: Arc<Self>, dir: PathBuf, generation: u64) {
        tokio::select! {
            _ = self.stop.cancelled() => return,
            _ = tokio::time::sleep(self.settings.settle) => {}
        }
        let Some(host) = self.host.upgrade() else {
            return;
        };
        let lock = host.project_lock(&dir);
        let _project = lock.lock().await;
        let _shared = self.installs.read().await;
        // Only the latest change of the project is prepared.
        let req = {
            let Ok(w) = self.watched.lock() else { return };
            match w.get(&dir) {
                Some(e) if e.generation == generation => e.req.clone(),
                _ => return,
            }
        };
        let cancel = self.stop.child_token();
        let prepared = self
            .installer
            .prepare(req, cancel, || {
                host.emit(&dir, Kind::NodeModulesOutOfDate, String::new())
            })
            .await;
        // No client waits for this one: what its resolution kept goes at once.
        tokio::task::spawn_blocking(crate::memory::free_deferred);
        match prepared {
            Ok(p) if p.up_to_date => debug!("node_modules is up to date"),
            Ok(p) => {
                let msg = if p.ready {
                    format!(
                        "{} packages ready; `hoard install` swaps them in",
                        p.packages
                    )
                } else {
                    format!(
                        "{} packages in the store; `hoard install` links them",
                        p.packages
                    )
                };
                info!(
                    ready = p.ready,
                    packages = p.packages,
                    "prepared the next install"
                );
                host.emit(&dir, Kind::NodeModulesReady, msg);
            }
            Err(e) => {
                warn!(error = %e, "could not prepare the next install; `hoard install` will do it all")
            }
        }
    }
}

/// `"hoard": {"prepare": false}` in the project's package.json.
fn opted_out(dir: &Path) -> bool {
    std::fs::read(dir.join("package.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("hoard")?.get("prepare")?.as_bool())
        == Some(false)
}
