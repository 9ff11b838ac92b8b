//! Registry metadata: packuments fetched over HTTP, kept hot in memory across installs and
//! projects under a byte budget (least recently used first out), and cached on disk
//! (`<store>/v1/metadata`, compact form, written behind the install by `disk_writes`) with
//! ETag/Last-Modified revalidation and time-based freshness. Concurrent requests for one
//! packument share one fetch.
//!
//! Must not: pick versions (resolve.rs does) or download tarballs (the store does).

pub mod compact;
pub mod config;
mod disk_writes;
pub mod http;
pub mod keys;
pub mod packument;
mod reduce;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tracing::{debug, instrument};

use crate::error::{HoardError, Result};
use compact::{CacheMeta, Packument};
use config::NpmConfig;
use http::{Fetched, Http};

/// Network policy of one request (mirrors the proto's NetworkMode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Online,
    PreferOffline,
    Offline,
}

/// How long fetched metadata is used without revalidation (online mode).
pub const METADATA_MAX_AGE: Duration = Duration::from_secs(300);

const ACCEPT: &str = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";

/// The full document: asked for when publication times are needed (a release-age cooldown).
const ACCEPT_FULL: &str = "application/json";

/// Default budget of the in-memory metadata cache (`HOARD_METADATA_CACHE_MB` overrides).
pub const HOT_BUDGET_BYTES: usize = 64 << 20;

struct HotEntry {
    packument: Arc<Packument>,
    fetched_at: u64,
    /// When it came into memory (from the network or the disk cache).
    loaded: std::time::Instant,
    size: usize,
    last_used: u64,
}

/// Packuments in memory, evicted least recently used first above `budget` bytes.
#[derive(Default)]
struct Hot {
    map: rustc_hash::FxHashMap<String, HotEntry>,
    bytes: usize,
    tick: u64,
    budget: usize,
}

impl Hot {
    fn get(&mut self, url: &str) -> Option<&HotEntry> {
        self.tick += 1;
        let tick = self.tick;
        let e = self.map.get_mut(url)?;
        e.last_used = tick;
        Some(e)
    }

    fn insert(&mut self, url: &str, packument: Arc<Packument>, fetched_at: u64) {
        self.tick += 1;
        let size = packument.mem_size();
        let e = HotEntry {
            packument,
            fetched_at,
            loaded: std::time::Instant::now(),
            size,
            last_used: self.tick,
        };
        if let Some(old) = self.map.insert(url.to_string(), e) {
            self.bytes -= old.size;
        }
        self.bytes += size;
        if self.bytes > self.budget {
            self.evict();
        }
    }

    /// Drop the least recently used entries until the cache is at 3/4 of its budget.
    fn evict(&mut self) {
        let mut by_age: Vec<(u64, String)> = self
            .map
            .iter()
            .map(|(k, e)| (e.last_used, k.clone()))
            .collect();
        by_age.sort_unstable();
        for (_, k) in by_age {
            if self.bytes <= self.budget / 4 * 3 {
                break;
            }
            if let Some(e) = self.map.remove(&k) {
                self.bytes -= e.size;
            }
        }
    }
}

type SharedFetch = Shared<BoxFuture<'static, Result<Arc<Packument>, Arc<HoardError>>>>;

pub struct Registry {
    pub http: Arc<Http>,
    metadata_dir: PathBuf,
    hot: Mutex<Hot>,
    inflight: Mutex<HashMap<String, SharedFetch>>,
    /// Bytes of metadata downloaded since start (for summaries).
    pub bytes_downloaded: std::sync::atomic::AtomicU64,
    /// Registries' signing keys.
    pub keys: keys::Keys,
    disk_writes: disk_writes::DiskWrites,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The packument URL of `name` on `registry` (scoped names as `@scope%2fname`).
pub fn packument_url(registry: &str, name: &str) -> String {
    format!("{registry}{}", name.replace('/', "%2f"))
}

/// The URL of `name`'s packument under `cfg`.
fn packument_url_of(cfg: &NpmConfig, name: &str) -> String {
    packument_url(&cfg.registry_base(name), name)
}

impl Registry {
    /// A registry client caching metadata in `metadata_dir`, writing it through temp files in
    /// `tmp_dir` (see `disk_writes`), with `hot_budget` bytes of packuments in memory.
    pub fn new(
        http: Arc<Http>,
        (metadata_dir, tmp_dir): (PathBuf, PathBuf),
        hot_budget: usize,
    ) -> Registry {
        let disk_writes = disk_writes::DiskWrites::new(tmp_dir, metadata_dir.clone());
        Registry {
            keys: keys::Keys::new(http.clone(), metadata_dir.clone()),
            http,
            metadata_dir,
            hot: Mutex::new(Hot {
                budget: hot_budget,
                ..Hot::default()
            }),
            inflight: Mutex::new(HashMap::new()),
            bytes_downloaded: Default::default(),
            disk_writes,
        }
    }

    /// Wait (blocking) until the metadata fetched so far is in the disk cache, or `limit` has
    /// passed; whether it all is.
    pub fn flush_disk_writes(&self, limit: Duration) -> bool {
        self.disk_writes.flush(limit)
    }

    fn disk_path(&self, url: &str) -> PathBuf {
        let h = blake3::hash(url.as_bytes()).to_hex();
        self.metadata_dir.join(format!("{}.pk2", &h[..32]))
    }

    /// The packument of `name`, following `network`.
    pub async fn packument(
        self: &Arc<Self>,
        name: &str,
        cfg: &NpmConfig,
        network: Network,
    ) -> Result<Arc<Packument>> {
        let url = packument_url_of(cfg, name);
        let need_time = cfg.wants_publish_times();
        if let Some(p) = self.hot_hit(&url, network)
            && (p.has_time || !need_time)
        {
            return Ok(p);
        }
        if need_time {
            // Not shared with fetches of the abbreviated document.
            let auth = cfg.auth_for(&url);
            return self.fetch(name, &url, auth.as_deref(), network, true).await;
        }
        let fut = {
            let mut inflight = self
                .inflight
                .lock()
                .map_err(|_| HoardError::Internal("registry lock poisoned".into()))?;
            if let Some(f) = inflight.get(&url) {
                f.clone()
            } else {
                let me = self.clone();
                let auth = cfg.auth_for(&url);
                let name = name.to_string();
                let url2 = url.clone();
                let handle = tokio::spawn(async move {
                    let r = me
                        .fetch(&name, &url2, auth.as_deref(), network, false)
                        .await;
                    if let Ok(mut m) = me.inflight.lock() {
                        m.remove(&url2);
                    }
                    r.map_err(Arc::new)
                });
                let f: BoxFuture<'static, Result<Arc<Packument>, Arc<HoardError>>> = async move {
                    match handle.await {
                        Ok(r) => r,
                        Err(e) => Err(Arc::new(HoardError::from(e))),
                    }
                }
                .boxed();
                let shared = f.shared();
                inflight.insert(url.clone(), shared.clone());
                shared
            }
        };
        fut.await.map_err(HoardError::Shared)
    }

    /// The packument of `name` with publication times (the full document, fetched unless one
    /// is cached).
    pub async fn packument_with_times(
        self: &Arc<Self>,
        name: &str,
        cfg: &NpmConfig,
        network: Network,
    ) -> Result<Arc<Packument>> {
        let url = packument_url_of(cfg, name);
        if let Some(p) = self.hot_hit(&url, network)
            && p.has_time
        {
            return Ok(p);
        }
        let auth = cfg.auth_for(&url);
        self.fetch(name, &url, auth.as_deref(), network, true).await
    }

    /// Whether `name`'s packument is in memory and fresh (a request would not wait).
    pub fn is_hot(&self, name: &str, cfg: &NpmConfig, network: Network) -> bool {
        let url = packument_url_of(cfg, name);
        self.hot_hit(&url, network).is_some()
    }

    /// Whether `name`'s packument was in memory, fresh, already before `t`.
    pub fn hot_before(
        &self,
        name: &str,
        cfg: &NpmConfig,
        network: Network,
        t: std::time::Instant,
    ) -> bool {
        let url = packument_url_of(cfg, name);
        let Ok(hot) = self.hot.lock() else {
            return false;
        };
        hot.map
            .get(&url)
            .is_some_and(|e| e.loaded < t && Self::usable(e, network))
    }

    /// A hot entry may be used without asking: fresh, or any age when not strictly online.
    fn usable(e: &HotEntry, network: Network) -> bool {
        now_secs().saturating_sub(e.fetched_at) < METADATA_MAX_AGE.as_secs()
            || network != Network::Online
    }

    fn hot_hit(&self, url: &str, network: Network) -> Option<Arc<Packument>> {
        let mut hot = self.hot.lock().ok()?;
        let e = hot.get(url)?;
        Self::usable(e, network).then(|| e.packument.clone())
    }

    fn remember(&self, url: &str, p: Arc<Packument>, fetched_at: u64) {
        if let Ok(mut hot) = self.hot.lock() {
            hot.insert(url, p, fetched_at);
        }
    }

    #[instrument(skip_all, fields(name))]
    async fn fetch(
        &self,
        name: &str,
        url: &str,
        auth: Option<&str>,
        network: Network,
        need_time: bool,
    ) -> Result<Arc<Packument>> {
        let disk_path = self.disk_path(url);
        let dp = disk_path.clone();
        let mut disk: Option<(CacheMeta, Packument)> =
            tokio::task::spawn_blocking(move || Packument::decode(std::fs::read(&dp).ok()?))
                .await?;
        if need_time
            && network == Network::Offline
            && disk.as_ref().is_some_and(|(_, p)| !p.has_time)
        {
            return Err(HoardError::Offline(format!(
                "the cached metadata of `{name}` has no publication times, which the release-age \
                 cooldown (min-release-age / minimum-release-age / before) needs; run the install \
                 once online"
            )));
        }
        // A cached abbreviated document is no use when times are needed.
        disk.take_if(|(_, p)| need_time && !p.has_time);
        let now = now_secs();
        // Fresh enough, or any age when offline / preferring offline.
        if let Some((meta, p)) = disk.take_if(|(m, _)| {
            network != Network::Online
                || now.saturating_sub(m.fetched_at) < METADATA_MAX_AGE.as_secs()
        }) {
            let p = Arc::new(p);
            self.remember(url, p.clone(), meta.fetched_at);
            return Ok(p);
        }
        if network == Network::Offline {
            return Err(HoardError::Offline(format!(
                "metadata of `{name}` is not cached and --offline forbids fetching it from {url}; \
                 run the install once online"
            )));
        }
        let (etag, lm) = disk
            .as_ref()
            .map(|(m, _)| (m.etag.clone(), m.last_modified.clone()))
            .unwrap_or((None, None));
        let what = format!("package `{name}`");
        let fetched = self
            .http
            .get_conditional(
                http::Lane::Metadata,
                url,
                auth,
                Some(if need_time { ACCEPT_FULL } else { ACCEPT }),
                etag.as_deref(),
                lm.as_deref(),
                &what,
            )
            .await?;
        let p = match fetched {
            Fetched::NotModified => {
                let Some((mut meta, p)) = disk else {
                    return Err(HoardError::Registry(format!(
                        "{url} answered 304 Not Modified but nothing is cached"
                    )));
                };
                debug!("metadata not modified");
                meta.fetched_at = now;
                let p = Arc::new(p);
                self.disk_writes.write(disk_path, p.clone(), meta);
                p
            }
            Fetched::Fresh(resp, _permit) => {
                self.parse_fresh(name, url, resp, now, disk_path).await?
            }
        };
        self.remember(url, p.clone(), now);
        Ok(p)
    }

    /// Read a 200 answer's body, compact it and write it to the disk cache.
    async fn parse_fresh(
        &self,
        name: &str,
        url: &str,
        resp: reqwest::Response,
        now: u64,
        disk_path: PathBuf,
    ) -> Result<Arc<Packument>> {
        let header = |h: reqwest::header::HeaderName| {
            resp.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let meta = CacheMeta {
            fetched_at: now,
            etag: header(reqwest::header::ETAG),
            last_modified: header(reqwest::header::LAST_MODIFIED),
        };
        let body = resp.bytes().await.map_err(|e| {
            HoardError::Registry(format!("reading metadata of `{name}` from {url}: {e}"))
        })?;
        self.bytes_downloaded
            .fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let name = name.to_string();
        let url = url.to_string();
        let p = tokio::task::spawn_blocking(move || -> Result<Arc<Packument>> {
            let p = Packument::parse(&body).map_err(|e| {
                HoardError::Registry(format!(
                    "metadata of `{name}` from {url} is not valid JSON: {e}"
                ))
            })?;
            drop(body);
            Ok(Arc::new(p))
        })
        .await??;
        self.disk_writes.write(disk_path, p.clone(), meta);
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packument(name: &str, versions: usize) -> Arc<Packument> {
        let doc = serde_json::json!({
            "name": name,
            "versions": (0..versions)
                .map(|i| (format!("1.0.{i}"), serde_json::json!({"name": name, "version": format!("1.0.{i}")})))
                .collect::<serde_json::Map<_, _>>(),
        });
        Arc::new(Packument::parse(doc.to_string().as_bytes()).unwrap())
    }

    #[test]
    fn the_hot_cache_stays_under_its_budget_and_drops_the_least_recently_used() {
        let one = packument("x", 50).mem_size();
        let mut hot = Hot {
            budget: one * 4,
            ..Hot::default()
        };
        for n in ["a", "b", "c", "d"] {
            hot.insert(n, packument(n, 50), 0);
        }
        assert_eq!(hot.map.len(), 4);
        // `a` is used again, so `b` is now the oldest.
        assert!(hot.get("a").is_some());
        hot.insert("e", packument("e", 50), 0);
        assert!(
            hot.bytes <= hot.budget * 3 / 4,
            "{} > {}",
            hot.bytes,
            hot.budget
        );
        assert!(hot.map.contains_key("a") && hot.map.contains_key("e"));
        assert!(!hot.map.contains_key("b"));
        assert_eq!(hot.bytes, hot.map.values().map(|e| e.size).sum::<usize>());
    }
}
