//! Registry metadata: packuments fetched over HTTP, kept hot in memory across installs and
//! projects, and cached on disk (`<store>/v1/metadata`) with ETag/Last-Modified revalidation
//! and time-based freshness. Concurrent requests for one packument share one fetch.
//!
//! Must not: pick versions (resolve.rs does) or download tarballs (the store does).

pub mod config;
pub mod http;
pub mod packument;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use serde::{Deserialize, Serialize};
use tracing::{debug, instrument};

use crate::error::{HoardError, Result};
use config::NpmConfig;
use http::{Fetched, Http};
use packument::Packument;

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

#[derive(Serialize, Deserialize)]
struct DiskEntry {
    fetched_at: u64,
    etag: Option<String>,
    last_modified: Option<String>,
    packument: Packument,
}

struct HotEntry {
    packument: Arc<Packument>,
    fetched_at: u64,
}

type SharedFetch = Shared<BoxFuture<'static, Result<Arc<Packument>, Arc<HoardError>>>>;

pub struct Registry {
    pub http: Arc<Http>,
    metadata_dir: PathBuf,
    hot: Mutex<HashMap<String, HotEntry>>,
    inflight: Mutex<HashMap<String, SharedFetch>>,
    /// Bytes of metadata downloaded since start (for summaries).
    pub bytes_downloaded: std::sync::atomic::AtomicU64,
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

impl Registry {
    pub fn new(http: Arc<Http>, metadata_dir: PathBuf) -> Registry {
        Registry {
            http,
            metadata_dir,
            hot: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            bytes_downloaded: Default::default(),
        }
    }

    fn disk_path(&self, url: &str) -> PathBuf {
        let h = blake3::hash(url.as_bytes()).to_hex();
        self.metadata_dir.join(format!("{}.json", &h[..32]))
    }

    /// The packument of `name`, following `network`.
    pub async fn packument(
        self: &Arc<Self>,
        name: &str,
        cfg: &NpmConfig,
        network: Network,
    ) -> Result<Arc<Packument>> {
        let registry = cfg.registry_for(name);
        let url = packument_url(&registry, name);
        if let Some(p) = self.hot_hit(&url, network) {
            return Ok(p);
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
                    let r = me.fetch(&name, &url2, auth.as_deref(), network).await;
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

    fn hot_hit(&self, url: &str, network: Network) -> Option<Arc<Packument>> {
        let hot = self.hot.lock().ok()?;
        let e = hot.get(url)?;
        let fresh = now_secs().saturating_sub(e.fetched_at) < METADATA_MAX_AGE.as_secs();
        (fresh || network != Network::Online).then(|| e.packument.clone())
    }

    fn remember(&self, url: &str, p: Arc<Packument>, fetched_at: u64) {
        if let Ok(mut hot) = self.hot.lock() {
            hot.insert(
                url.to_string(),
                HotEntry {
                    packument: p,
                    fetched_at,
                },
            );
        }
    }

    #[instrument(skip_all, fields(name))]
    async fn fetch(
        &self,
        name: &str,
        url: &str,
        auth: Option<&str>,
        network: Network,
    ) -> Result<Arc<Packument>> {
        let disk_path = self.disk_path(url);
        let dp = disk_path.clone();
        let mut disk: Option<DiskEntry> = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&dp).ok()?;
            serde_json::from_slice(&bytes).ok()
        })
        .await?;
        let now = now_secs();
        // Fresh enough, or any age when offline / preferring offline.
        if let Some(d) = disk.take_if(|d| {
            network != Network::Online
                || now.saturating_sub(d.fetched_at) < METADATA_MAX_AGE.as_secs()
        }) {
            let p = Arc::new(d.packument.prepared());
            self.remember(url, p.clone(), d.fetched_at);
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
            .map(|d| (d.etag.clone(), d.last_modified.clone()))
            .unwrap_or((None, None));
        let what = format!("package `{name}`");
        match self
            .http
            .get_conditional(
                url,
                auth,
                Some(ACCEPT),
                etag.as_deref(),
                lm.as_deref(),
                &what,
            )
            .await?
        {
            Fetched::NotModified => {
                let Some(mut d) = disk else {
                    return Err(HoardError::Registry(format!(
                        "{url} answered 304 Not Modified but nothing is cached"
                    )));
                };
                debug!("metadata not modified");
                d.fetched_at = now;
                let p = Arc::new(d.packument.clone().prepared());
                self.remember(url, p.clone(), now);
                let _ = tokio::task::spawn_blocking(move || write_disk(&disk_path, &d)).await;
                Ok(p)
            }
            Fetched::Fresh(resp, _permit) => {
                let header = |h: reqwest::header::HeaderName| {
                    resp.headers()
                        .get(h)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                let etag = header(reqwest::header::ETAG);
                let last_modified = header(reqwest::header::LAST_MODIFIED);
                let body = resp.bytes().await.map_err(|e| {
                    HoardError::Registry(format!("reading metadata of `{name}` from {url}: {e}"))
                })?;
                self.bytes_downloaded
                    .fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
                let name2 = name.to_string();
                let url2 = url.to_string();
                let p = tokio::task::spawn_blocking(move || -> Result<Arc<Packument>> {
                    let packument: Packument = serde_json::from_slice(&body).map_err(|e| {
                        HoardError::Registry(format!(
                            "metadata of `{name2}` from {url2} is not valid JSON: {e}"
                        ))
                    })?;
                    let entry = DiskEntry {
                        fetched_at: now,
                        etag,
                        last_modified,
                        packument,
                    };
                    write_disk(&disk_path, &entry);
                    Ok(Arc::new(entry.packument.prepared()))
                })
                .await??;
                self.remember(url, p.clone(), now);
                Ok(p)
            }
        }
    }
}

fn write_disk(path: &std::path::Path, entry: &DiskEntry) {
    let Ok(bytes) = serde_json::to_vec(entry) else {
        return;
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}
