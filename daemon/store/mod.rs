//! The global content-addressed store: `Store::ensure` makes a package's files present (from the
//! index, or by one coalesced download + import), and the maintenance operations behind
//! `hoard store status|verify|prune`.
//!
//! Owns: the store directory (layout.rs), its index (index.rs), and the tarball import
//! (import.rs). Must not: know about node_modules, resolution, or gRPC.

mod file_list;
mod gunzip;
pub mod import;
pub mod index;
pub mod integrity;
pub mod layout;
mod projects;
pub mod prune;
pub mod scrub;
pub(crate) mod shards;
pub mod slots;
pub mod trust;
pub mod unsynced;
pub mod verify;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tracing::{debug, info, instrument, warn};

use crate::error::{HoardError, Result};
use crate::platform;
use crate::registry::http::Http;
use import::{ImportError, Imported, Limits};
use index::{FileEntry, Index, PackageRecord};
use integrity::Sri;
use layout::Layout;
use projects::ProjectList;

/// What to fetch: one package version's tarball.
#[derive(Debug, Clone)]
pub struct TarballRef {
    pub name: String,
    pub version: String,
    pub url: String,
    pub integrity: Sri,
    /// `Authorization` header value for `url`, from .npmrc.
    pub auth: Option<String>,
    /// The team's remote cache, asked before `url` (and filled after a download).
    pub remote: Option<Arc<crate::remote::RemoteCache>>,
}

impl TarballRef {
    pub fn pkg_id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// A package present in the store.
#[derive(Debug)]
pub struct StoredPackage {
    pub id: i64,
    /// `sha512-…` of the tarball.
    pub integrity: String,
    pub files: Vec<FileEntry>,
    /// Which of `files` this daemon's import wrote (aligned with `files`; empty when the
    /// package came from the index). See `created_since`.
    pub created: Vec<bool>,
    /// When this daemon downloaded it (None: it was in the store already).
    pub imported_at: Option<std::time::Instant>,
    pub bytes_downloaded: u64,
}

impl StoredPackage {
    /// Which of `files` were written by an import that finished at or after `since` (the
    /// start of the install asking), or an empty slice. Those files are whole by construction:
    /// their bytes were hashed as they were written, and no project linked them before that
    /// install began, so no edit made through a project's link can have reached them; the
    /// linker need not check them again (`Store::looks_whole`).
    pub fn created_since(&self, since: std::time::Instant) -> &[bool] {
        let fresh = self.imported_at.is_some_and(|t| t >= since);
        if fresh && self.created.len() == self.files.len() {
            &self.created
        } else {
            &[]
        }
    }
}

/// Imports running at once; see `Store::import_permits`.
const IMPORTS_AT_ONCE: usize = 16;

/// A tarball of at most this many bytes (by its `Content-Length`) is read whole before its
/// import starts; with `IMPORTS_AT_ONCE`, at most 4 MiB of such bodies are held at once.
const COLLECT_SMALL: u64 = 256 * 1024;

/// A larger tarball, up to this many bytes, is read whole too when `WHOLE_ROOM_KIB` has room for
/// it; past it (or without room) it is imported as its bytes arrive.
const COLLECT_MAX: u64 = 4 << 20;

/// A tarball read whole is also unpacked whole (libdeflate, about half the CPU of streaming
/// inflate) when its gzip trailer says it unpacks to at most this many bytes and `WHOLE_ROOM_KIB`
/// has room for them.
const UNPACK_WHOLE_MAX: usize = 32 << 20;

/// KiB of compressed and unpacked tarball bodies held at once beyond the small ones (so a
/// cold install's peak stays bounded: about 64 MiB more at worst).
const WHOLE_ROOM_KIB: usize = 64 << 10;

/// Permits of `WHOLE_ROOM_KIB` for `bytes` (at least one).
fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX)
}

/// File lists of packages kept in memory: at most this many files in all (~100 bytes each).
const HOT_FILES: usize = 250_000;

/// Package file lists by row id, with the install tick that last stored them.
#[derive(Default)]
struct HotPackages {
    map: HashMap<i64, (Arc<StoredPackage>, u64)>,
    /// Row id by the integrity an install asks for (so a warm install skips the index).
    by_key: HashMap<String, i64>,
    files: usize,
    tick: u64,
}

impl HotPackages {
    fn forget(&mut self, id: i64) {
        if let Some((p, _)) = self.map.remove(&id) {
            self.files -= p.files.len();
        }
        self.by_key.retain(|_, v| *v != id);
    }

    fn by_key(&self, key: &str) -> Option<Arc<StoredPackage>> {
        let id = self.by_key.get(key)?;
        self.map.get(id).map(|(p, _)| p.clone())
    }
}

type SharedImport = Shared<BoxFuture<'static, Result<Arc<StoredPackage>, Arc<HoardError>>>>;

pub struct Store {
    pub layout: Arc<Layout>,
    pub index: Arc<Index>,
    limits: Limits,
    /// Package files by row id, kept hot across installs (bounded, see `keep_hot`).
    hot: Mutex<HotPackages>,
    /// Imports under way, keyed by the expected integrity (or URL when none): concurrent
    /// requests share one download and one import.
    inflight: Mutex<HashMap<String, SharedImport>>,
    /// Imports running at once (CPU-bound work: gunzip, hashing, file creation). Downloads
    /// may outnumber them, to hide latency; a body waits in its socket for a free import.
    import_permits: tokio::sync::Semaphore,
    /// Room for tarball bodies held whole, in KiB (`WHOLE_ROOM_KIB`).
    whole_room: Arc<tokio::sync::Semaphore>,
    /// When each import under way began (by `inflight` key): prune keeps files made since.
    import_starts: Mutex<HashMap<String, SystemTime>>,
    /// Package rows installs in flight are using (row id → installs): prune keeps them.
    pins: Mutex<HashMap<i64, u32>>,
    /// The projects this store serves, also kept outside the index.
    pub projects: ProjectList,
    /// Something the next client should hear once (an index that was rebuilt).
    notices: Mutex<Vec<(&'static str, String)>>,
    /// The shard folders, open for per-file calls.
    shards: Arc<shards::Shards>,
    /// Content files watched since they were last found whole: linked without a check.
    trust: Arc<trust::Trust>,
    /// Git dependencies' repositories and packed tarballs.
    pub git: Arc<crate::git::GitCache>,
}

/// Package rows pinned for one install; unpinned when dropped.
pub struct Pins {
    store: Arc<Store>,
    ids: Vec<i64>,
}

impl Pins {
    pub fn add(&mut self, id: i64) {
        if let Ok(mut m) = self.store.pins.lock() {
            *m.entry(id).or_default() += 1;
            self.ids.push(id);
        }
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        if let Ok(mut m) = self.store.pins.lock() {
            for id in &self.ids {
                if let Some(n) = m.get_mut(id) {
                    *n -= 1;
                    if *n == 0 {
                        m.remove(id);
                    }
                }
            }
        }
    }
}

/// Totals for `store status`.
#[derive(Debug, Default)]
pub struct StoreTotals {
    pub bytes: u64,
    pub files: u64,
    pub packages: u64,
    pub projects: u64,
    pub metadata_bytes: u64,
}

impl Store {
    /// Open or create the store at `root`. Call while holding the daemon lock: it clears
    /// leftovers in `tmp/`.
    pub fn open(root: &Path) -> Result<Store> {
        let layout = Layout::create(root)?;
        let cleaned = layout.clean_tmp()?;
        if cleaned > 0 {
            info!(
                cleaned,
                "removed leftovers of an interrupted import from tmp/"
            );
        }
        let boot = platform::boot_id();
        let (index, notice) = Index::open_healing(&layout.index, layout.files.clone(), boot)?;
        if let Some(n) = &notice {
            warn!("{n}");
        }
        // The two lists of projects agree: the file's into a rebuilt index, the index's into
        // the file of a store made before there was one.
        let projects = ProjectList::open(&layout.projects);
        index.add_projects(projects.all())?;
        projects.add(index.projects()?)?;
        let shards = Arc::new(shards::Shards::new(&layout.files));
        let trusting = std::env::var("HOARD_TRUST_WATCHED").map_or(true, |v| v != "0");
        let trust = Arc::new(trust::Trust::new(&layout.files, trusting));
        let git = Arc::new(crate::git::GitCache::open(layout.git.clone()));
        Ok(Store {
            layout: Arc::new(layout),
            index: Arc::new(index),
            limits: Limits::default(),
            hot: Mutex::new(HotPackages::default()),
            inflight: Mutex::new(HashMap::new()),
            import_permits: tokio::sync::Semaphore::new(IMPORTS_AT_ONCE),
            whole_room: Arc::new(tokio::sync::Semaphore::new(WHOLE_ROOM_KIB)),
            import_starts: Mutex::new(HashMap::new()),
            pins: Mutex::new(HashMap::new()),
            projects,
            notices: Mutex::new(
                notice
                    .map(|n| ("store-index-rebuilt", n))
                    .into_iter()
                    .collect(),
            ),
            shards,
            trust,
            git,
        })
    }

    /// What the next client should hear once, if anything (an index that was rebuilt, packages
    /// dropped after a machine restart), each with its warning code.
    pub fn take_notices(&self) -> Vec<(&'static str, String)> {
        (self.notices.lock()).map_or_else(|_| Vec::new(), |mut n| std::mem::take(&mut *n))
    }

    /// Have the next client hear `text` (warning `code`) once.
    pub fn add_notice(&self, code: &'static str, text: String) {
        if let Ok(mut n) = self.notices.lock() {
            n.push((code, text));
        }
    }

    /// An empty set of pins for one install.
    pub fn pins(self: &Arc<Self>) -> Pins {
        Pins {
            store: self.clone(),
            ids: Vec::new(),
        }
    }

    fn pinned(&self) -> HashSet<i64> {
        (self.pins.lock().map(|m| m.keys().copied().collect())).unwrap_or_default()
    }

    /// When the oldest import under way began.
    fn oldest_import_start(&self) -> Option<SystemTime> {
        (self.import_starts.lock().ok()).and_then(|m| m.values().min().copied())
    }

    /// Record that `project` also uses `package_ids` (a prepared install, until it is swapped
    /// in and the next install registers exactly what it uses). Blocking.
    pub fn add_project_packages(&self, project: String, package_ids: Vec<i64>) -> Result<()> {
        self.projects.add([project.clone()])?;
        self.index.add_project_packages(project, package_ids)
    }

    /// Record that `project` uses exactly `package_ids` (in the index, and the project in the
    /// list kept beside it). Blocking.
    pub fn register_project(&self, project: String, package_ids: Vec<i64>) -> Result<()> {
        self.projects.add([project.clone()])?;
        self.index.register_project(project, package_ids)
    }

    /// Make `pkg` present in the store and return its files. Looks in memory, then the index;
    /// otherwise downloads (coalesced with any concurrent request for the same tarball).
    /// `offline` turns a miss into an error.
    pub async fn ensure(
        self: &Arc<Self>,
        pkg: &TarballRef,
        http: &Arc<Http>,
        offline: bool,
    ) -> Result<Arc<StoredPackage>> {
        self.ensure_prepared(pkg, http, offline, None).await
    }

    /// `ensure`, with git dependencies readied by `prepare` before they are packed (see
    /// `crate::git::Prepare`).
    pub async fn ensure_prepared(
        self: &Arc<Self>,
        pkg: &TarballRef,
        http: &Arc<Http>,
        offline: bool,
        prepare: Option<Arc<dyn crate::git::Prepare>>,
    ) -> Result<Arc<StoredPackage>> {
        let pkg = self.packed_git(pkg, offline, prepare).await?;
        let pkg = &*pkg;
        let key = pkg.integrity.strongest().unwrap_or_else(|| pkg.url.clone());
        // An import under way is joined before the index is asked: its row may already be
        // committed while its result (marked as downloaded now) is not in memory yet.
        let joining = self.inflight.lock().ok().and_then(|m| m.get(&key).cloned());
        if let Some(f) = joining {
            debug!(pkg = %pkg.pkg_id(), "joining an import already under way");
            return f.await.map_err(HoardError::Shared);
        }
        if let Some(found) = self.lookup(pkg).await? {
            return Ok(found);
        }
        if offline {
            return Err(HoardError::Offline(format!(
                "{} is not in the store and --offline forbids downloading it from {}; run the \
                 install once online",
                pkg.pkg_id(),
                pkg.url
            )));
        }
        self.import_coalesced(pkg, http, key, false).await
    }

    /// A git dependency (`pkg.url` is the lockfile's `git+…#<sha>`) as the local tarball the
    /// git cache packs from it (prepared when `prepare` wants it; with none, the prepared one
    /// if the cache has it), with that tarball's integrity; any other package as it is.
    async fn packed_git<'a>(
        &self,
        pkg: &'a TarballRef,
        offline: bool,
        prepare: Option<Arc<dyn crate::git::Prepare>>,
    ) -> Result<Cow<'a, TarballRef>> {
        if !crate::git::is_git_resolved(&pkg.url) {
            return Ok(Cow::Borrowed(pkg));
        }
        let spec = crate::git::locked(&pkg.url).ok_or_else(|| {
            HoardError::Lockfile(format!(
                "{} is locked to `{}`, which is not a git URL hoard can read",
                pkg.pkg_id(),
                pkg.url
            ))
        })?;
        let p = self.git.prepare_blocking(&spec, offline, prepare).await?;
        Ok(Cow::Owned(TarballRef {
            url: format!("file:{}", p.tarball.display()),
            integrity: Sri::parse(Some(&p.integrity), None),
            ..pkg.clone()
        }))
    }

    /// Download and import `pkg` again although the index has it: one of its files is missing
    /// from the store (deleted by hand, a cleaner, a bad disk). Files still present stay; the
    /// missing ones come back. Coalesced like `ensure`.
    pub async fn refetch(
        self: &Arc<Self>,
        pkg: &TarballRef,
        http: &Arc<Http>,
    ) -> Result<Arc<StoredPackage>> {
        warn!(pkg = %pkg.pkg_id(), "a store file of this package is missing; downloading it again");
        let pkg = self.packed_git(pkg, false, None).await?;
        let pkg = &*pkg;
        let key = pkg.integrity.strongest().unwrap_or_else(|| pkg.url.clone());
        let joining = self.inflight.lock().ok().and_then(|m| m.get(&key).cloned());
        if let Some(f) = joining {
            return f.await.map_err(HoardError::Shared);
        }
        self.import_coalesced(pkg, http, key, true).await
    }

    /// One download and import of `pkg` shared by every request for the same `key`; `again`
    /// imports it even when it is in memory (a refetch of missing files). Only a tarball with an
    /// integrity is found in memory: one without (keyed by its URL) may change, and is read again.
    async fn import_coalesced(
        self: &Arc<Self>,
        pkg: &TarballRef,
        http: &Arc<Http>,
        key: String,
        again: bool,
    ) -> Result<Arc<StoredPackage>> {
        let fut = {
            let mut inflight = self
                .inflight
                .lock()
                .map_err(|_| HoardError::Internal("store lock poisoned".into()))?;
            if let Some(f) = inflight.get(&key) {
                debug!(pkg = %pkg.pkg_id(), "joining an import already under way");
                f.clone()
            } else if !again
                && !pkg.integrity.is_empty()
                && let Some(done) = self.hot.lock().ok().and_then(|m| m.by_key(&key))
            {
                // An import that finished between the caller's lookup and this lock: it was
                // kept hot before it left `inflight`, so it is found here and not done twice.
                return Ok(done);
            } else {
                let store = self.clone();
                let http = http.clone();
                let pkg = pkg.clone();
                let key2 = key.clone();
                // A spawned task: a cancelled install does not abort an import other
                // requests are waiting for.
                if let Ok(mut m) = self.import_starts.lock() {
                    m.insert(key.clone(), SystemTime::now());
                }
                let handle = tokio::spawn(async move {
                    let r = store.download_and_import(&pkg, &http).await;
                    if !pkg.integrity.is_empty()
                        && let (Ok(p), Ok(mut m)) = (&r, store.hot.lock())
                    {
                        m.by_key.insert(key2.clone(), p.id);
                    }
                    if let Ok(mut m) = store.inflight.lock() {
                        m.remove(&key2);
                    }
                    if let Ok(mut m) = store.import_starts.lock() {
                        m.remove(&key2);
                    }
                    r.map_err(Arc::new)
                });
                let f: BoxFuture<'static, Result<Arc<StoredPackage>, Arc<HoardError>>> =
                    async move {
                        match handle.await {
                            Ok(r) => r,
                            Err(e) => Err(Arc::new(HoardError::from(e))),
                        }
                    }
                    .boxed();
                let shared = f.shared();
                inflight.insert(key, shared.clone());
                shared
            }
        };
        fut.await.map_err(HoardError::Shared)
    }

    /// A package the daemon holds in memory, found by a lockfile's `integrity` alone: no index,
    /// disk or configuration lookup (the warm install's common case). `None`: ask `ensure`.
    pub fn hot_package(&self, integrity: &str) -> Option<Arc<StoredPackage>> {
        let key = Sri::parse(Some(integrity), None).strongest()?;
        self.hot.lock().ok()?.by_key(&key)
    }

    async fn lookup(&self, pkg: &TarballRef) -> Result<Option<Arc<StoredPackage>>> {
        if pkg.integrity.is_empty() {
            return Ok(None);
        }
        let key = pkg.integrity.strongest().unwrap_or_default();
        if let Some(hit) = self.hot.lock().ok().and_then(|m| m.by_key(&key)) {
            return Ok(Some(hit));
        }
        let index = self.index.clone();
        let sri = pkg.integrity.clone();
        let id = tokio::task::spawn_blocking(move || index.find_package(&sri)).await??;
        let Some(id) = id else { return Ok(None) };
        if let Ok(mut m) = self.hot.lock()
            && let Some(hit) = m.map.get(&id).map(|(p, _)| p.clone())
        {
            m.by_key.insert(key, id);
            return Ok(Some(hit));
        }
        let index = self.index.clone();
        let (integrity, files) =
            tokio::task::spawn_blocking(move || index.package_files(id)).await??;
        let stored = Arc::new(StoredPackage {
            id,
            integrity,
            files,
            created: Vec::new(),
            imported_at: None,
            bytes_downloaded: 0,
        });
        self.keep_hot(&stored);
        if let Ok(mut m) = self.hot.lock() {
            m.by_key.insert(key, id);
        }
        Ok(Some(stored))
    }

    #[instrument(skip_all, fields(pkg = %pkg.pkg_id()))]
    async fn download_and_import(
        self: &Arc<Self>,
        pkg: &TarballRef,
        http: &Arc<Http>,
    ) -> Result<Arc<StoredPackage>> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.try_import(pkg, http).await {
                Ok(p) => return Ok(p),
                Err(ImportFailure::Retryable(e)) if attempt < 3 => {
                    warn!(attempt, error = %e, "download interrupted; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(
                        200 * 4u64.pow(attempt - 1),
                    ))
                    .await;
                }
                Err(ImportFailure::Retryable(e)) | Err(ImportFailure::Fatal(e)) => return Err(e),
            }
        }
    }

    async fn try_import(
        self: &Arc<Self>,
        pkg: &TarballRef,
        http: &Arc<Http>,
    ) -> Result<Arc<StoredPackage>, ImportFailure> {
        let what = pkg.pkg_id();
        let (imported, bytes) = match pkg.url.strip_prefix("file:") {
            Some(path) => (self.import_file(PathBuf::from(path), pkg).await?, 0),
            None => match self.import_from_remote(pkg).await {
                Some(imported) => (Ok(imported), 0),
                None => {
                    let (imported, bytes, body) = self.import_download(pkg, http).await?;
                    // A team cache gets what the registry sent, once it proved whole.
                    if let (Ok(_), Some(body), Some(remote)) = (&imported, body, &pkg.remote)
                        && let Some(key) = pkg.integrity.sha512.as_deref().map(crate::remote::key)
                    {
                        remote.put(&key, body).await;
                    }
                    (imported, bytes)
                }
            },
        };
        let imported = imported.map_err(|e| import_failure(e, pkg))?;
        let record = PackageRecord {
            pkg_id: what.clone(),
            integrity: imported.digests.sha512_sri(),
            sha1_hex: imported.digests.sha1_hex(),
            tarball_url: pkg.url.clone(),
            unpacked_size: imported.unpacked_size,
            files: imported.files,
        };
        let files = record.files.clone();
        let integrity = record.integrity.clone();
        let id = (self.index.insert_package(record).await).map_err(ImportFailure::Fatal)?;
        debug!(
            files = files.len(),
            compressed = imported.compressed_size,
            unpacked = imported.unpacked_size,
            "imported"
        );
        let stored = Arc::new(StoredPackage {
            id,
            integrity,
            files,
            created: imported.created,
            imported_at: Some(std::time::Instant::now()),
            bytes_downloaded: bytes,
        });
        self.keep_hot(&stored);
        Ok(stored)
    }

    /// A local tarball (`file:` dependency): the same import, read from disk.
    async fn import_file(
        &self,
        path: PathBuf,
        pkg: &TarballRef,
    ) -> Result<std::result::Result<Imported, ImportError>, ImportFailure> {
        let (layout, limits) = (self.layout.clone(), self.limits.clone());
        let shards = self.shards.clone();
        let expected = pkg.integrity.clone();
        tokio::task::spawn_blocking(move || {
            let f = std::fs::File::open(&path)
                .map_err(|e| ImportError::Local(HoardError::io("opening the tarball", &path, e)))?;
            import::import(
                std::io::BufReader::new(f),
                &expected,
                (&layout, &*shards),
                &limits,
            )
        })
        .await
        .map_err(|e| ImportFailure::Fatal(e.into()))
    }

    /// The tarball from the team's remote cache, imported (and so checked against the expected
    /// integrity); None when there is no cache, no entry, or the entry was rejected (noted for
    /// the user).
    async fn import_from_remote(&self, pkg: &TarballRef) -> Option<Imported> {
        let remote = pkg.remote.as_ref()?;
        let key = crate::remote::key(pkg.integrity.sha512.as_deref()?);
        let body = remote.get(&key).await?;
        let _importing = self.import_permits.acquire().await.ok()?;
        let (layout, limits) = (self.layout.clone(), self.limits.clone());
        let shards = self.shards.clone();
        let expected = pkg.integrity.clone();
        // The body is in memory already: unpacked whole when there is room, as a download is.
        let unpack = room_to_unpack(&self.whole_room, &body);
        let r = tokio::task::spawn_blocking(move || {
            let store = (&*layout, &*shards);
            match unpack {
                Some((n, _room)) => import::import_whole(&body, &expected, store, &limits, n),
                None => import::import(&body[..], &expected, store, &limits),
            }
        })
        .await
        .ok()?;
        match r {
            Ok(imported) => {
                remote
                    .hits
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Some(imported)
            }
            Err(e) => {
                let why = match e {
                    ImportError::Integrity { expected, actual } => {
                        format!("its integrity is {actual}, not {expected}")
                    }
                    ImportError::Hostile(r) => r,
                    ImportError::Source(e) => e.to_string(),
                    ImportError::Local(e) => e.to_string(),
                };
                remote.note(format!(
                    "the remote cache {} had a bad copy of {} ({why}); it was rejected and \
                     downloaded from {} instead{}",
                    remote.url,
                    pkg.pkg_id(),
                    pkg.url,
                    if remote.writable {
                        ", and the cache entry replaced"
                    } else {
                        ""
                    }
                ));
                None
            }
        }
    }

    /// Download a tarball and import it; (the import, bytes downloaded, the tarball's bytes
    /// when a writable remote cache is to get them). A tarball whose length is known and at
    /// most `COLLECT_SMALL` (or `COLLECT_MAX`, with room in `whole_room`) is read whole first
    /// and imported in one step, unpacked whole when there is room; a larger one is imported
    /// as its bytes arrive.
    async fn import_download(
        &self,
        pkg: &TarballRef,
        http: &Arc<Http>,
    ) -> Result<Downloaded, ImportFailure> {
        let keep = pkg.remote.as_ref().is_some_and(|r| r.writable);
        let lane = crate::registry::http::Lane::Tarball;
        let (resp, _permit) = http
            .get(lane, &pkg.url, pkg.auth.as_deref(), None, &pkg.pkg_id())
            .await
            .map_err(ImportFailure::Fatal)?;
        let _importing = self
            .import_permits
            .acquire()
            .await
            .map_err(|_| ImportFailure::Fatal(HoardError::Internal("store closed".into())))?;
        let (layout, limits) = (self.layout.clone(), self.limits.clone());
        let shards = self.shards.clone();
        let expected = pkg.integrity.clone();
        let import = move |body: Tarball<'_>| match body {
            Tarball::Whole(bytes, unpacked) => {
                import::import_whole(bytes, &expected, (&layout, &*shards), &limits, unpacked)
            }
            Tarball::Stream(reader) => {
                import::import(reader, &expected, (&layout, &*shards), &limits)
            }
        };
        let room = &self.whole_room;
        let r = match resp.content_length() {
            Some(n) if n <= COLLECT_SMALL => {
                collect_then_import(resp, n, keep, room, None, import).await
            }
            Some(n) if n <= COLLECT_MAX => match room.clone().try_acquire_many_owned(kib(n)) {
                Ok(held) => collect_then_import(resp, n, keep, room, Some(held), import).await,
                Err(_) => stream_into_import(resp, keep, import).await,
            },
            _ => stream_into_import(resp, keep, import).await,
        };
        r.map_err(|e| ImportFailure::Fatal(e.into()))
    }

    /// Remember a package's file list for the next install. The lists are bounded: past
    /// `HOT_FILES` files in all, the oldest half is forgotten (they are read from the index again
    /// when needed), so a long-lived daemon stays small.
    fn keep_hot(&self, p: &Arc<StoredPackage>) {
        let Ok(mut m) = self.hot.lock() else { return };
        m.tick += 1;
        let tick = m.tick;
        m.files += p.files.len();
        if let Some((old, _)) = m.map.insert(p.id, (p.clone(), tick)) {
            m.files -= old.files.len();
        }
        if m.files > HOT_FILES {
            let mut ages: Vec<u64> = m.map.values().map(|(_, t)| *t).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            m.map.retain(|_, (_, t)| *t > cut);
            m.files = m.map.values().map(|(p, _)| p.files.len()).sum();
            let HotPackages { map, by_key, .. } = &mut *m;
            by_key.retain(|_, id| map.contains_key(id));
        }
    }

    /// Path of a content file.
    pub fn content_path(&self, f: &FileEntry) -> PathBuf {
        self.layout.content_path(&f.hash, f.executable)
    }

    /// Whether the content file at `path` (for `f`) is whole, checked cheaply: its size and
    /// mtime are what the store gave it. When they are not, the file is judged by its bytes
    /// (`judge`): whole, its mode and mtime are put back; damaged (written to through a hard
    /// link, say), it is moved to the quarantine and `false` is returned, so the caller
    /// downloads the package again.
    /// Blocking.
    pub fn looks_whole(&self, f: &FileEntry, executable: bool) -> bool {
        if let Ok((size, mtime)) = self.shards.stat(&f.hash, executable)
            && size == f.size
            && mtime == layout::CONTENT_MTIME
        {
            return true;
        }
        // The long way (also when a shard folder was replaced since it was opened).
        let path = &self.layout.content_path(&f.hash, executable);
        match std::fs::symlink_metadata(path) {
            Err(_) => return false,
            Ok(md) if md.len() == f.size && platform::mtime(&md) == layout::CONTENT_MTIME => {
                return true;
            }
            Ok(_) => {}
        }
        matches!(self.judge(&f.hash, executable), scrub::Judged::Whole)
    }

    /// The content files trusted whole now (`trust`): a linking run skips their check.
    pub fn trust_snapshot(&self) -> trust::Trusted {
        self.trust.snapshot()
    }

    /// How many content files are trusted whole now.
    pub fn trusted_count(&self) -> u64 {
        self.trust.count()
    }

    /// Watch `files` (found whole, or written, by a linking run) and trust those still whole,
    /// on a thread of its own: the install does not wait.
    pub fn trust_later(&self, files: Vec<(trust::Key, u64)>) {
        if files.is_empty() {
            return;
        }
        let (trust, shards) = (self.trust.clone(), self.shards.clone());
        if let Err(e) = std::thread::Builder::new()
            .name("hoard-trust".into())
            .spawn(move || adopt_whole(&trust, &shards, files))
        {
            warn!(error = %e, "cannot start the thread that watches store files");
        }
    }

    /// Watch `files` (key, size in the index) and trust those found whole now, by the rule of
    /// `looks_whole`'s quick look (size and mtime); files watched already are skipped. Blocking.
    pub fn trust_now(&self, files: Vec<(trust::Key, u64)>) {
        adopt_whole(&self.trust, &self.shards, files)
    }

    /// Whether the trust can take more files (enabled, on this platform, below its cap).
    pub fn trust_has_room(&self) -> bool {
        self.trust.has_room()
    }

    /// Hard-link content file `f` (its executable variant with `executable`) to `rel` inside
    /// the open folder `dir`. Blocking.
    pub fn hard_link_at(
        &self,
        f: &FileEntry,
        executable: bool,
        dir: &platform::Dir,
        rel: &str,
    ) -> std::io::Result<()> {
        self.shards.hard_link_at(&f.hash, executable, dir, rel)
    }

    /// Make sure the executable variant of `f` exists (bin targets shipped without the x bit
    /// are linked from it, so the store's non-executable file never gets chmod'ed).
    pub fn ensure_executable_variant(&self, f: &FileEntry) -> Result<PathBuf> {
        let exec = self.layout.content_path(&f.hash, true);
        if exec.exists() {
            return Ok(exec);
        }
        let src = self.layout.content_path(&f.hash, false);
        let staging = self.layout.new_staging_dir()?;
        let tmp = staging.join("x");
        std::fs::copy(&src, &tmp).map_err(|e| HoardError::io("copying", &src, e))?;
        let copy = std::fs::File::options().write(true).open(&tmp);
        copy.and_then(|c| c.set_times(layout::content_times()))
            .map_err(|e| HoardError::io("setting the time of", &tmp, e))?;
        platform::set_mode(&tmp, 0o555).map_err(|e| HoardError::io("setting mode of", &tmp, e))?;
        let r = platform::rename(&tmp, &exec).map_err(|e| HoardError::io("moving", &exec, e));
        let _ = std::fs::remove_dir_all(&staging);
        r?;
        Ok(exec)
    }

    /// Size on disk and counts. Blocking.
    pub fn totals(&self) -> Result<StoreTotals> {
        let mut t = StoreTotals::default();
        for shard in read_dir(&self.layout.files)? {
            for f in read_dir(&shard)? {
                if let Ok(md) = std::fs::symlink_metadata(&f) {
                    t.files += 1;
                    t.bytes += md.len();
                }
            }
        }
        for f in read_dir(&self.layout.metadata)? {
            if let Ok(md) = std::fs::metadata(&f) {
                t.metadata_bytes += md.len();
            }
        }
        let (p, j) = self.index.counts()?;
        t.packages = p;
        t.projects = j;
        Ok(t)
    }
}

enum ImportFailure {
    Retryable(HoardError),
    Fatal(HoardError),
}

pub(crate) fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| HoardError::io("reading directory", dir, e))?;
    Ok(rd.flatten().map(|e| e.path()).collect())
}

/// What a download and its import give: the import, bytes downloaded, the bytes kept.
type Downloaded = (
    std::result::Result<Imported, ImportError>,
    u64,
    Option<Vec<u8>>,
);

/// A tarball's compressed bytes as the import gets them.
enum Tarball<'a> {
    /// All of them, and room to unpack them whole: at most this many bytes.
    Whole(&'a [u8], usize),
    /// As they arrive, or read whole but without room to unpack them whole (or broken off).
    Stream(&'a mut dyn std::io::Read),
}

/// Read a body whole (`held`: its room in `room`, when it is not a small one), then import it
/// on a blocking thread in one step (one hand-off instead of one per chunk): unpacked whole
/// when its trailer's size fits in `room` too. A download error is read after the bytes that
/// came before it.
async fn collect_then_import(
    resp: reqwest::Response,
    length: u64,
    keep: bool,
    room: &Arc<tokio::sync::Semaphore>,
    held: Option<tokio::sync::OwnedSemaphorePermit>,
    import: impl FnOnce(Tarball<'_>) -> std::result::Result<Imported, ImportError> + Send + 'static,
) -> std::result::Result<Downloaded, tokio::task::JoinError> {
    use futures_util::StreamExt;
    let mut body = Vec::with_capacity(length as usize);
    let mut error = None;
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => body.extend_from_slice(&c),
            Err(e) => {
                error = Some(std::io::Error::other(format!("{e}")));
                break;
            }
        }
    }
    let bytes = body.len() as u64;
    let unpack = if error.is_none() {
        room_to_unpack(room, &body)
    } else {
        None
    };
    tokio::task::spawn_blocking(move || {
        let imported = match unpack {
            Some((unpacked, _room)) => import(Tarball::Whole(&body, unpacked)),
            None => import(Tarball::Stream(&mut Collected {
                body: std::io::Cursor::new(&body[..]),
                error,
            })),
        };
        drop(held);
        (imported, bytes, keep.then_some(body))
    })
    .await
}

/// Room to unpack a tarball held whole in `body`, when its gzip trailer says it unpacks to at
/// most `UNPACK_WHOLE_MAX` bytes and `room` has that many free now: (that size, the room held).
fn room_to_unpack(
    room: &Arc<tokio::sync::Semaphore>,
    body: &[u8],
) -> Option<(usize, tokio::sync::OwnedSemaphorePermit)> {
    let n = gunzip::claimed_size(body).filter(|&n| n <= UNPACK_WHOLE_MAX)?;
    Some((n, room.clone().try_acquire_many_owned(kib(n as u64)).ok()?))
}

/// Import a body on a blocking thread as its chunks arrive (bounded: the download waits for
/// the import, never the other way round).
async fn stream_into_import(
    resp: reqwest::Response,
    keep: bool,
    import: impl FnOnce(Tarball<'_>) -> std::result::Result<Imported, ImportError> + Send + 'static,
) -> std::result::Result<Downloaded, tokio::task::JoinError> {
    use futures_util::StreamExt;
    let mut kept = keep.then(Vec::new);
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(32);
    let worker = tokio::task::spawn_blocking(move || {
        let mut reader = ChannelReader {
            rx,
            current: bytes::Bytes::new(),
        };
        import(Tarball::Stream(&mut reader))
    });
    let mut stream = resp.bytes_stream();
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let item = chunk.map_err(|e| std::io::Error::other(format!("{e}")));
        let failed = item.is_err();
        if let Ok(c) = &item {
            bytes += c.len() as u64;
            if let Some(k) = kept.as_mut() {
                k.extend_from_slice(c);
            }
        }
        // A send error means the worker stopped early (hostile archive); its error wins.
        if tx.send(item).await.is_err() || failed {
            break;
        }
    }
    drop(tx);
    Ok((worker.await?, bytes, kept))
}

/// A body read whole, then its download error (if the download broke), for the import.
struct Collected<'a> {
    body: std::io::Cursor<&'a [u8]>,
    error: Option<std::io::Error>,
}

impl std::io::Read for Collected<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.body.read(buf)?;
        if n == 0
            && !buf.is_empty()
            && let Some(e) = self.error.take()
        {
            return Err(e);
        }
        Ok(n)
    }
}

/// Adapts the download channel to `Read` for the blocking import.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// What a failed import means for the install: a download that broke may be retried; a
/// hostile archive, an integrity mismatch or a local error may not.
fn import_failure(e: ImportError, pkg: &TarballRef) -> ImportFailure {
    let what = pkg.pkg_id();
    match e {
        ImportError::Source(e) => ImportFailure::Retryable(HoardError::Registry(format!(
            "downloading {what} from {}: {e}",
            pkg.url
        ))),
        ImportError::Hostile(reason) => ImportFailure::Fatal(HoardError::HostileTarball {
            package: what,
            url: pkg.url.clone(),
            reason,
        }),
        ImportError::Integrity { expected, actual } => {
            ImportFailure::Fatal(HoardError::Integrity {
                package: what,
                name: pkg.name.clone(),
                url: pkg.url.clone(),
                expected,
                actual,
            })
        }
        ImportError::Local(e) => ImportFailure::Fatal(e),
    }
}

/// Watch `files` and trust those whose quick look (size as indexed, a content file's mtime)
/// finds them whole: the rule of `Store::looks_whole` before it hashes. Blocking.
fn adopt_whole(trust: &trust::Trust, shards: &shards::Shards, files: Vec<(trust::Key, u64)>) {
    let _span = tracing::debug_span!("trust", files = files.len()).entered();
    trust.adopt(files, &|k: &trust::Key, size| {
        matches!(shards.stat(&k.0, k.1), Ok((s, m)) if s == size && m == layout::CONTENT_MTIME)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-file tarball at `path`, as a `file:` reference, with its sha512 integrity when
    /// `with_integrity`.
    fn local_tarball(path: &Path, with_integrity: bool) -> TarballRef {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            std::fs::File::create(path).unwrap(),
            flate2::Compression::fast(),
        ));
        let body = b"module.exports = 1;\n";
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "package/index.js", &body[..])
            .unwrap();
        b.into_inner().unwrap().finish().unwrap();
        let integrity = with_integrity.then(|| {
            use base64::Engine as _;
            use sha2::Digest as _;
            let digest = sha2::Sha512::digest(std::fs::read(path).unwrap());
            format!(
                "sha512-{}",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        });
        TarballRef {
            name: "one".into(),
            version: "1.0.0".into(),
            url: format!("file:{}", path.display()),
            integrity: Sri::parse(integrity.as_deref(), None),
            auth: None,
            remote: None,
        }
    }

    #[test]
    fn an_import_that_finished_after_the_lookup_is_not_done_again() {
        let dir = tempfile::tempdir().unwrap();
        // Opened outside the runtime, as the daemon does.
        let store = Arc::new(Store::open(&dir.path().join("store")).unwrap());
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(imports_once(store, dir.path()));
    }

    async fn imports_once(store: Arc<Store>, dir: &Path) {
        let http = Arc::new(Http::new(4, 4).unwrap());
        let pkg = local_tarball(&dir.join("one.tgz"), true);
        let first = store.ensure(&pkg, &http, false).await.unwrap();
        assert!(first.imported_at.is_some());
        // What a second request does when its lookup missed while the first import ran: it
        // gets the first import, not a second one.
        let key = pkg.integrity.strongest().unwrap();
        let second = (store
            .import_coalesced(&pkg, &http, key.clone(), false)
            .await)
            .unwrap();
        assert!(Arc::ptr_eq(&first, &second), "imported twice");
        // A refetch of missing files does import again.
        let again = store
            .import_coalesced(&pkg, &http, key, true)
            .await
            .unwrap();
        assert!(!Arc::ptr_eq(&first, &again));
        // A tarball without an integrity (a local file that may have changed) is read again.
        let loose = local_tarball(&dir.join("loose.tgz"), false);
        let once = store.ensure(&loose, &http, false).await.unwrap();
        let twice = (store
            .import_coalesced(&loose, &http, loose.url.clone(), false)
            .await)
            .unwrap();
        assert!(
            !Arc::ptr_eq(&once, &twice),
            "a tarball without integrity was not read again"
        );
    }
    #[test]
    fn only_files_an_import_wrote_during_an_install_are_trusted_by_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("store")).unwrap());
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let http = Arc::new(Http::new(4, 4).unwrap());
            let pkg = local_tarball(&dir.path().join("one.tgz"), true);
            let install_began = std::time::Instant::now();
            let first = store.ensure(&pkg, &http, false).await.unwrap();
            assert_eq!(first.created, [true], "the import wrote its one file");
            assert_eq!(first.created_since(install_began), [true]);
            // An install that began after the import does not trust it: the file may have
            // been linked into a project and edited through that link since.
            let later = std::time::Instant::now();
            assert!(first.created_since(later).is_empty());
            // Imported again (its files asked for again): the file was there, not written.
            let key = pkg.integrity.strongest().unwrap();
            let again = store
                .import_coalesced(&pkg, &http, key, true)
                .await
                .unwrap();
            assert_eq!(again.created, [false]);
            assert_eq!(again.created_since(install_began), [false]);
        });
        drop(rt);
        drop(store);
        // Read back from the index by a new daemon: nothing is known to be new.
        let reopened = Arc::new(Store::open(&dir.path().join("store")).unwrap());
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let http = Arc::new(Http::new(4, 4).unwrap());
            let pkg = local_tarball(&dir.path().join("one.tgz"), true);
            let found = reopened.ensure(&pkg, &http, false).await.unwrap();
            assert!(found.imported_at.is_none() && found.created.is_empty());
        });
    }
}
