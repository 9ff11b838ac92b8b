//! The background scrub: while no install is in flight, the daemon looks over its store for
//! content files that were written to (an editor that makes a linked file writable and saves
//! writes into the store through the hard link). Each round stats every content file (cheap: a
//! changed mode or mtime gives such an edit away) and hashes the next batch of files again,
//! those of the most recently installed projects first, at most `files_per_sec`. A file whose
//! bytes are wrong is set aside, downloaded again with its package, and relinked in every
//! registered project that used it (and in the global layout's slots that hold it); the log says
//! which. Each round, and once 2 s after the daemon starts, also puts the store files of
//! registered projects that are not watched yet under the store's trust (`store::trust`:
//! watched, then checked), so that a restarted daemon links them without a look per file
//! again. Settings: `HOARD_SCRUB_SECS` (seconds between rounds, default 20; 0 turns it off)
//! and `HOARD_SCRUB_RATE` (files hashed a second, default 200).
//!
//! Must not: run while an install is in flight or beside verify and prune (it takes upkeep's
//! turn for each step: the stat pass, a chunk of 64 hashes, one repair), or hold either up for
//! long (it never holds the turn while it waits).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, RwLock};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::error::{HoardError, Result};
use crate::registry::http::Http;
use crate::store::Store;
use crate::store::scrub::{Judged, Suspect};
use crate::store::trust::Key;

/// How often and how fast.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub every: Duration,
    pub files_per_sec: u64,
}

impl Settings {
    /// From `HOARD_SCRUB_SECS` and `HOARD_SCRUB_RATE`; None when turned off.
    pub fn from_env() -> Option<Settings> {
        let num = crate::settings::number;
        let secs = num("HOARD_SCRUB_SECS", 20);
        (secs > 0).then(|| Settings {
            every: Duration::from_secs(secs),
            files_per_sec: num("HOARD_SCRUB_RATE", 200).max(1),
        })
    }
}

/// What the scrub needs of the daemon.
pub struct Scrub {
    pub store: Arc<Store>,
    pub http: Arc<Http>,
    /// Installs hold it shared (the scrub only looks whether it is free).
    pub installs: Arc<RwLock<()>>,
    /// Upkeep's turn (verify, prune, the scrub).
    pub one_at_a_time: Arc<Mutex<()>>,
}

/// Where the deep pass is in its list of files (with their sizes), most recently used first.
#[derive(Default)]
struct Cursor {
    files: Vec<(Key, u64)>,
    /// How many of `files`, at its head, registered projects use.
    in_projects: usize,
    next: usize,
}

/// Files watched per turn of the trust's warm-up (the turn is given back between chunks).
const TRUST_CHUNK: usize = 2048;

/// How soon after the daemon starts the trust is first warmed up (when no install is in
/// flight then; each round warms it again).
const FIRST_WARM: Duration = Duration::from_secs(2);

/// Run rounds until `stop`.
pub async fn run(scrub: Scrub, settings: Settings, stop: CancellationToken) {
    let mut cursor = Cursor::default();
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = tokio::time::sleep(FIRST_WARM.min(settings.every)) => {}
    }
    if !scrub.busy()
        && let Err(e) = scrub
            .warm_trust(&mut cursor)
            .instrument(info_span!("scrub"))
            .await
    {
        warn!(error = %e, "scrub: warming the trust failed");
    }
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(settings.every) => {}
        }
        if let Err(e) = scrub
            .round(settings, &mut cursor)
            .instrument(info_span!("scrub"))
            .await
        {
            warn!(error = %e, "scrub round failed");
        }
    }
}

impl Scrub {
    fn busy(&self) -> bool {
        self.installs.try_write().is_err()
    }

    async fn round(&self, settings: Settings, cursor: &mut Cursor) -> Result<()> {
        if self.busy() {
            return Ok(());
        }
        let suspects = {
            let Ok(_turn) = self.one_at_a_time.try_lock() else {
                return Ok(());
            };
            let started = Instant::now();
            let store = self.store.clone();
            let (seen, suspects) = blocking(move || store.written_to()).await?;
            let secs = started.elapsed().as_secs_f64().max(1e-6);
            debug!(
                files = seen,
                millis = started.elapsed().as_millis() as u64,
                files_per_sec = (seen as f64 / secs) as u64,
                "scrub: every content file looked at"
            );
            suspects
        };
        let mut all: Vec<([u8; 32], bool)> = suspects
            .iter()
            .map(|s: &Suspect| (s.hash, s.executable))
            .collect();
        self.warm_trust(cursor).await?;
        all.extend(self.deep_pass(settings, cursor).await?);
        for (hash, exec) in all {
            let Ok(_turn) = self.one_at_a_time.try_lock() else {
                return Ok(()); // verify or prune runs: the next round looks again
            };
            let store = self.store.clone();
            match blocking(move || Ok(store.judge(&hash, exec))).await? {
                Judged::Damaged { inode, dev } => self.restore(&hash, dev, inode).await,
                Judged::Whole => {
                    info!(file = %hex::encode(hash), "a store file's mode or time was changed; put back")
                }
                Judged::Gone => {}
            }
        }
        Ok(())
    }

    /// The list of files from the index again, the deep pass back at its start.
    async fn reload(&self, cursor: &mut Cursor) -> Result<()> {
        let index = self.store.index.clone();
        (cursor.files, cursor.in_projects) = blocking(move || index.files_by_recent_use()).await?;
        cursor.next = 0;
        Ok(())
    }

    /// Watch and trust (`store::trust`) the files of registered projects that are not trusted
    /// yet, the most recently installed first, as far as the trust has room: after a restart,
    /// the next install links them without a check as it would after an install. A file is
    /// looked at the way the linker's check looks (size and mtime), after its watch began.
    /// Stops when an install begins; holds upkeep's turn only for a chunk at a time.
    async fn warm_trust(&self, cursor: &mut Cursor) -> Result<()> {
        if !self.store.trust_has_room() {
            return Ok(());
        }
        if cursor.files.is_empty() {
            self.reload(cursor).await?;
        }
        let started = Instant::now();
        let before = self.store.trusted_count();
        for chunk in cursor.files[..cursor.in_projects].chunks(TRUST_CHUNK) {
            if self.busy() || !self.store.trust_has_room() {
                break;
            }
            let Ok(turn) = self.one_at_a_time.try_lock() else {
                break;
            };
            let (store, chunk) = (self.store.clone(), chunk.to_vec());
            blocking(move || {
                store.trust_now(chunk);
                Ok(())
            })
            .await?;
            drop(turn);
        }
        let after = self.store.trusted_count();
        if after > before {
            debug!(
                trusted = after,
                added = after - before,
                millis = started.elapsed().as_millis() as u64,
                "scrub: store files watched and trusted"
            );
        }
        Ok(())
    }

    /// Hash the next batch of files again (at most `files_per_sec` a second, stopping when an
    /// install begins or upkeep wants its turn; the turn is held only while a chunk is hashed);
    /// returns those whose bytes are wrong.
    async fn deep_pass(
        &self,
        settings: Settings,
        cursor: &mut Cursor,
    ) -> Result<Vec<([u8; 32], bool)>> {
        if cursor.next >= cursor.files.len() {
            self.reload(cursor).await?;
        }
        let budget = (settings.files_per_sec * settings.every.as_secs()).max(1) as usize;
        let end = (cursor.next + budget).min(cursor.files.len());
        let mut bad = Vec::new();
        let started = Instant::now();
        let mut done = 0u64;
        while cursor.next < end {
            if self.busy() {
                break;
            }
            let Ok(turn) = self.one_at_a_time.try_lock() else {
                break;
            };
            let chunk: Vec<Key> = cursor.files[cursor.next..end.min(cursor.next + 64)]
                .iter()
                .map(|(key, _)| *key)
                .collect();
            let (store, n) = (self.store.clone(), chunk.len());
            let found = blocking(move || {
                Ok(chunk
                    .into_iter()
                    .filter(|(h, x)| {
                        let p = store.layout.content_path(h, *x);
                        p.exists()
                            && !matches!(crate::store::import::hash_file(&p), Ok(got) if got == *h)
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
            drop(turn);
            bad.extend(found);
            done += n as u64;
            cursor.next += n;
            // Stay under the rate.
            let due = Duration::from_secs_f64(done as f64 / settings.files_per_sec as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        if done > 0 {
            let secs = started.elapsed().as_secs_f64().max(1e-6);
            info!(
                hashed = done,
                files_per_sec = (done as f64 / secs) as u64,
                "scrub: files hashed again"
            );
        }
        Ok(bad)
    }

    /// A damaged file was set aside: download its packages again, then relink it wherever the
    /// damaged inode is still linked, in registered projects and in slots.
    async fn restore(&self, hash: &[u8; 32], dev: u64, inode: u64) {
        match self.try_restore(hash, dev, inode).await {
            Ok(projects) => info!(
                file = %hex::encode(hash),
                projects = ?projects,
                "scrub: a store file was written to; the original is back, relinked in those projects"
            ),
            Err(e) => {
                warn!(file = %hex::encode(hash), error = %e, "scrub: could not restore a damaged store file; the next install that needs it downloads it again")
            }
        }
    }

    async fn try_restore(&self, hash: &[u8; 32], dev: u64, inode: u64) -> Result<Vec<String>> {
        let (index, h) = (self.store.index.clone(), *hash);
        let ids = blocking(move || index.packages_with_file(&h)).await?;
        let index = self.store.index.clone();
        let ids2 = ids.clone();
        let (sources, projects) =
            blocking(move || Ok((index.package_sources(&ids2)?, index.projects_using(&ids2)?)))
                .await?;
        let mut exec = None;
        for d in &sources {
            let Some(t) = d.tarball() else { continue };
            let stored = self.store.refetch(&t, &self.http).await?;
            exec = exec.or(stored
                .files
                .iter()
                .find(|f| f.hash == *hash)
                .map(|f| f.executable));
        }
        let exec = exec.ok_or_else(|| {
            HoardError::NotFound("no package of it could be downloaded again".into())
        })?;
        let store = self.store.clone();
        let pkg_ids: Vec<String> = sources.iter().map(|d| d.pkg_id.clone()).collect();
        let h = *hash;
        blocking(move || {
            let with = store.layout.content_path(&h, exec);
            for slot in store.slot_names()? {
                if pkg_ids
                    .iter()
                    .any(|p| slot.starts_with(&format!("{}-", p.replace('/', "+"))))
                {
                    let dir = store.layout.virtual_root.join(&slot);
                    crate::linker::relink::replace_inode(&dir, dev, inode, &with)?;
                }
            }
            // A global-layout project sees its slots' files; the others get theirs relinked.
            for p in &projects {
                let nm = Path::new(p).join("node_modules");
                crate::linker::relink::replace_inode(&nm, dev, inode, &with)?;
            }
            Ok(projects)
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(HoardError::from)?
}
