//! File watching for the `Watch` RPC: one non-recursive notify watcher per project folder,
//! reporting changes to package.json and package-lock.json, settled (the bursts one save makes
//! become one change) and compared by content (a change that leaves the bytes as they were is
//! not reported); and the stream a client gets, those changes with the watched projects'
//! install events.
//!
//! Must not: watch node_modules or anything recursively (cost grows with the tree).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hoard_proto::v1::watch_event::{Change, Kind};
use hoard_proto::v1::{WatchEvent, watch_event};
use notify::{RecursiveMode, Watcher};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::error::{HoardError, Result};

/// How long a file must be quiet before its change is reported.
pub const SETTLE: Duration = Duration::from_millis(100);

/// The files watched in each project.
const FILES: [(&str, Kind); 2] = [
    ("package.json", Kind::ManifestChanged),
    ("package-lock.json", Kind::LockfileChanged),
];

/// A raw notification: something happened to `file` of project `dir`.
#[derive(Debug, Clone)]
pub struct Touched {
    pub dir: PathBuf,
    pub file: PathBuf,
}

/// Start watching `dir`; notifications go to `tx` until the returned watcher is dropped.
pub fn watch_project(dir: &Path, tx: mpsc::Sender<Touched>) -> Result<notify::RecommendedWatcher> {
    let project = dir.to_path_buf();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if event.kind.is_access() {
            return;
        }
        for p in &event.paths {
            let name = p.file_name().and_then(|n| n.to_str());
            if FILES.iter().any(|(f, _)| Some(*f) == name) {
                let _ = tx.try_send(Touched {
                    dir: project.clone(),
                    file: project.join(name.unwrap_or_default()),
                });
            }
        }
    })
    .map_err(|e| HoardError::Internal(format!("starting a file watcher: {e}")))?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(|e| HoardError::InvalidInput(format!("cannot watch `{}`: {e}", dir.display())))?;
    Ok(watcher)
}

/// A settled change, ready to report.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub dir: PathBuf,
    pub file: PathBuf,
    pub kind: Kind,
    pub change: Change,
    /// BLAKE3 hex of the new content (None: deleted).
    pub blake3: Option<String>,
    /// Some notification of it arrived while an install of the project ran.
    pub self_caused: bool,
    /// The install that was running when it changed (the one that wrote it).
    pub operation: Option<String>,
}

/// The BLAKE3 hex of a file's content, or None when it cannot be read (gone).
fn hash(file: &Path) -> Option<String> {
    std::fs::read(file)
        .ok()
        .map(|b| blake3::hash(&b).to_hex().to_string())
}

/// Settling: notifications wait `SETTLE` for quiet, then become a change if the content differs
/// from what was last seen.
#[derive(Default)]
pub struct Settler {
    /// Last known content hash of each watched file (None: absent).
    known: HashMap<PathBuf, Option<String>>,
    /// Files waiting to settle: when they may be reported, and whether an install ran.
    pending: HashMap<PathBuf, (PathBuf, Instant, Option<String>)>,
}

impl Settler {
    /// Know the watched files of `dir` as they are now (blocking reads).
    pub fn baseline(&mut self, dir: &Path) {
        for (f, _) in FILES {
            let file = dir.join(f);
            let h = hash(&file);
            self.known.insert(file, h);
        }
    }

    /// A file changed; `installing` is the operation installing its project then, if any.
    pub fn touched(&mut self, t: Touched, installing: Option<String>) {
        let due = Instant::now() + SETTLE;
        let e = self.pending.entry(t.file).or_insert((t.dir, due, None));
        e.1 = due;
        if installing.is_some() {
            e.2 = installing;
        }
    }

    /// When the next pending file settles.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending.values().map(|(_, due, _)| *due).min()
    }

    /// The changes of every settled file (blocking reads).
    pub fn settle(&mut self, now: Instant) -> Vec<Settled> {
        let due: Vec<PathBuf> = (self.pending.iter())
            .filter(|(_, (_, d, _))| *d <= now)
            .map(|(f, _)| f.clone())
            .collect();
        let mut out = Vec::new();
        for file in due {
            let Some((dir, _, operation)) = self.pending.remove(&file) else {
                continue;
            };
            let now_hash = hash(&file);
            let before = self.known.insert(file.clone(), now_hash.clone()).flatten();
            let change = match (&before, &now_hash) {
                (a, b) if a == b => continue,
                (None, Some(_)) => Change::Created,
                (Some(_), None) => Change::Deleted,
                _ => Change::Modified,
            };
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let kind = (FILES.iter())
                .find(|(f, _)| *f == name)
                .map_or(Kind::ManifestChanged, |(_, k)| *k);
            out.push(Settled {
                dir,
                file,
                kind,
                change,
                blake3: now_hash,
                self_caused: operation.is_some(),
                operation,
            });
        }
        out.sort_by(|a, b| a.file.cmp(&b.file));
        out
    }
}

/// The Watch stream: install events of the watched projects as they come, file changes
/// once settled and only when the content changed (with the file, how, its hash, whether an
/// install of the project wrote it, and the project's sync state), and a last DAEMON_STOPPING
/// when the daemon stops.
pub async fn stream(
    stopping: CancellationToken,
    dirs: Vec<PathBuf>,
    tx: mpsc::Sender<Result<WatchEvent, Status>>,
    token: CancellationToken,
    mut installs: broadcast::Receiver<(PathBuf, WatchEvent)>,
    mut fs_rx: mpsc::Receiver<Touched>,
) {
    let ev = |kind: watch_event::Kind, dir: &Path| WatchEvent {
        kind: kind as i32,
        path: dir.display().to_string(),
        ..Default::default()
    };
    let settler = std::sync::Arc::new(std::sync::Mutex::new(Settler::default()));
    {
        let (s, dirs) = (settler.clone(), dirs.clone());
        let _ = tokio::task::spawn_blocking(move || {
            let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
            for dir in &dirs {
                s.baseline(dir);
            }
        })
        .await;
    }
    for dir in &dirs {
        if tx
            .send(Ok(ev(watch_event::Kind::Watching, dir)))
            .await
            .is_err()
        {
            return;
        }
    }
    // The operation installing each project now.
    let mut installing: HashMap<PathBuf, String> = Default::default();
    loop {
        let due = settler.lock().ok().and_then(|s| s.next_due());
        let sleep = async {
            match due {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let out: Vec<WatchEvent> = tokio::select! {
            _ = token.cancelled() => {
                if stopping.is_cancelled() {
                    for dir in &dirs {
                        let mut e = ev(watch_event::Kind::DaemonStopping, dir);
                        e.message = "the daemon is stopping".into();
                        let _ = tx.send(Ok(e)).await;
                    }
                }
                break;
            }
            t = fs_rx.recv() => match t {
                Some(t) => {
                    let busy = installing.get(&t.dir).cloned();
                    if let Ok(mut s) = settler.lock() {
                        s.touched(t, busy);
                    }
                    continue;
                }
                None => break,
            },
            i = installs.recv() => match i {
                Ok((p, e)) if dirs.contains(&p) => {
                    if e.kind == watch_event::Kind::InstallStarted as i32 {
                        installing.insert(p, e.operation_id.clone().unwrap_or_default());
                    } else if e.kind == watch_event::Kind::InstallFinished as i32 {
                        installing.remove(&p);
                    }
                    vec![e]
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            },
            _ = sleep => {
                let s = settler.clone();
                let settled = tokio::task::spawn_blocking(move || {
                    let changes = s
                        .lock()
                        .map(|mut s| s.settle(tokio::time::Instant::now()))
                        .unwrap_or_default();
                    changes
                        .into_iter()
                        .map(|c| {
                            let sync = crate::linker::state::freshness(&c.dir);
                            settled_event(c, sync)
                        })
                        .collect::<Vec<_>>()
                })
                .await;
                settled.unwrap_or_default()
            }
        };
        for e in out {
            if tx.send(Ok(e)).await.is_err() {
                return;
            }
        }
    }
}

/// A settled file change as the event a client gets.
fn settled_event(c: Settled, sync: crate::linker::state::Freshness) -> WatchEvent {
    let (state, reason) = sync.sync_state();
    WatchEvent {
        kind: c.kind as i32,
        path: c.dir.display().to_string(),
        message: String::new(),
        file: Some(c.file.display().to_string()),
        change: Some(c.change as i32),
        blake3: c.blake3,
        self_caused: Some(c.self_caused),
        sync_state: Some(state as i32),
        sync_reason: Some(reason),
        operation_id: c.operation,
        outcome: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_one_change_and_the_same_bytes_are_none() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().to_path_buf();
        let pj = dir.join("package.json");
        std::fs::write(&pj, "{}").unwrap();
        let mut s = Settler::default();
        s.baseline(&dir);
        let touch = |s: &mut Settler, installing| {
            s.touched(
                Touched {
                    dir: dir.clone(),
                    file: pj.clone(),
                },
                installing,
            )
        };
        std::fs::write(&pj, "{\"a\":1}").unwrap();
        touch(&mut s, None);
        touch(&mut s, None);
        assert!(s.settle(Instant::now()).is_empty(), "not settled yet");
        let later = Instant::now() + SETTLE * 2;
        let got = s.settle(later);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].change, Change::Modified);
        assert_eq!(got[0].kind, Kind::ManifestChanged);
        // Written again with the same bytes: nothing.
        std::fs::write(&pj, "{\"a\":1}").unwrap();
        touch(&mut s, Some("op-1".into()));
        assert!(s.settle(later + SETTLE * 2).is_empty());
        // The lockfile appears during an install: created, by the daemon.
        let lock = dir.join("package-lock.json");
        std::fs::write(&lock, "{}").unwrap();
        s.touched(
            Touched {
                dir: dir.clone(),
                file: lock.clone(),
            },
            Some("op-2".into()),
        );
        let got = s.settle(later + SETTLE * 4);
        assert_eq!(got[0].change, Change::Created);
        assert!(got[0].self_caused);
        assert_eq!(got[0].operation.as_deref(), Some("op-2"));
        std::fs::remove_file(&lock).unwrap();
        s.touched(
            Touched {
                dir: dir.clone(),
                file: lock,
            },
            None,
        );
        let got = s.settle(later + SETTLE * 6);
        assert_eq!(
            (got[0].change, got[0].blake3.clone()),
            (Change::Deleted, None)
        );
    }
}
