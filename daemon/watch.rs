//! File watching for the `Watch` RPC: one non-recursive notify watcher on a project folder,
//! reporting changes to package.json and package-lock.json.
//!
//! Must not: watch node_modules or anything recursively (cost grows with the tree).

use std::path::Path;

use hoard_proto::v1::watch_event::Kind;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::error::{HoardError, Result};

/// Start watching `dir`; events are sent to `tx` until the returned watcher is dropped.
pub fn watch_project(dir: &Path, tx: mpsc::Sender<Kind>) -> Result<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if event.kind.is_access() {
            return;
        }
        for p in &event.paths {
            let kind = match p.file_name().and_then(|n| n.to_str()) {
                Some("package.json") => Kind::ManifestChanged,
                Some("package-lock.json") => Kind::LockfileChanged,
                _ => continue,
            };
            let _ = tx.try_send(kind);
        }
    })
    .map_err(|e| HoardError::Internal(format!("starting a file watcher: {e}")))?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(|e| HoardError::InvalidInput(format!("cannot watch `{}`: {e}", dir.display())))?;
    Ok(watcher)
}
