//! The `hoard.v1.Hoard` gRPC service: one method per RPC, each in a tracing span. Turns requests
//! into calls on the installer and the store, tracks requests in flight (for idle shutdown and
//! `Status`), serializes installs per project, and keeps maintenance (verify/prune) exclusive
//! of installs.
//!
//! Must not: contain install or store logic itself; domain errors become `tonic::Status` only
//! through `From<HoardError>`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hoard_proto::v1::{hoard_server::Hoard, *};
use tokio::sync::{RwLock, broadcast, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::{Request, Response, Status};
use tracing::{Instrument, info, info_span, warn};

mod install;

use crate::error::HoardError;
use crate::install::Installer;
use crate::operations::{Operations, Refused};
use crate::registry::config::NpmConfig;
use crate::store::Store;
use crate::upkeep::Upkeep;

/// Why the daemon stopped (logged at exit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    ShutdownRpc(String),
    /// The store index was found damaged and set aside; the next daemon starts a new one.
    IndexBroken,
    Idle(Duration),
    Signal(&'static str),
}

pub struct DaemonConfig {
    pub store_path: PathBuf,
    pub socket_path: PathBuf,
    pub log_path: PathBuf,
    pub idle_timeout: Duration,
    pub protocol_version: String,
}

pub struct Daemon {
    pub config: DaemonConfig,
    pub installer: Arc<Installer>,
    pub store: Arc<Store>,
    pub started: Instant,
    in_flight: AtomicU32,
    last_activity: Mutex<Instant>,
    /// Cancelled to stop the daemon; installs run on child tokens.
    pub shutdown: CancellationToken,
    close_reason: Mutex<Option<CloseReason>>,
    project_locks: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
    /// Store verify and prune.
    upkeep: Upkeep,
    events: broadcast::Sender<(PathBuf, WatchEvent)>,
    /// Every install's events, for the dashboard's live view.
    live: crate::ui::LiveSender,
    /// The web dashboard, once a Dashboard RPC started it.
    dashboard: tokio::sync::OnceCell<Arc<crate::ui::Dashboard>>,
    /// Installs prepared ahead of time (started by `start_ahead`).
    ahead: std::sync::OnceLock<Arc<crate::ahead::Ahead>>,
    /// Running and recently finished operations (installs), by id.
    operations: Operations,
}

/// Counts a request in flight and marks activity at start and end.
pub struct InFlight(Arc<Daemon>);

impl InFlight {
    fn new(d: &Arc<Daemon>) -> InFlight {
        d.in_flight.fetch_add(1, Ordering::SeqCst);
        d.touch();
        InFlight(d.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
    }
}

impl Daemon {
    pub fn new(config: DaemonConfig, installer: Arc<Installer>, store: Arc<Store>) -> Arc<Daemon> {
        let upkeep = Upkeep {
            store: store.clone(),
            http: installer.registry.http.clone(),
            installs: Arc::new(RwLock::new(())),
            one_at_a_time: Arc::new(tokio::sync::Mutex::new(())),
        };
        Arc::new(Daemon {
            config,
            installer,
            store,
            started: Instant::now(),
            in_flight: AtomicU32::new(0),
            last_activity: Mutex::new(Instant::now()),
            shutdown: CancellationToken::new(),
            close_reason: Mutex::new(None),
            project_locks: Mutex::new(HashMap::new()),
            upkeep,
            events: broadcast::channel(256).0,
            live: crate::ui::live_channel(),
            dashboard: tokio::sync::OnceCell::new(),
            ahead: std::sync::OnceLock::new(),
            operations: Operations::default(),
        })
    }

    pub fn touch(&self) {
        if let Ok(mut t) = self.last_activity.lock() {
            *t = Instant::now();
        }
    }

    /// Start preparing installs ahead of time for the projects this daemon installs.
    pub fn start_ahead(self: &Arc<Self>, settings: crate::ahead::Settings) {
        let host: std::sync::Weak<dyn crate::ahead::Host> = Arc::downgrade(self) as _;
        let installs = self.upkeep.installs.clone();
        let stop = self.shutdown.clone();
        let a = crate::ahead::Ahead::start(self.installer.clone(), installs, host, settings, stop);
        let _ = self.ahead.set(a);
    }

    /// The background scrub, sharing upkeep's locks.
    pub fn scrub(&self) -> crate::scrub::Scrub {
        crate::scrub::Scrub {
            store: self.store.clone(),
            http: self.upkeep.http.clone(),
            installs: self.upkeep.installs.clone(),
            one_at_a_time: self.upkeep.one_at_a_time.clone(),
        }
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub fn idle_for(&self) -> Duration {
        self.last_activity
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }

    /// Begin shutting down (first reason wins).
    pub fn close(&self, reason: CloseReason) {
        if let Ok(mut r) = self.close_reason.lock()
            && r.is_none()
        {
            info!(?reason, "shutting down");
            *r = Some(reason);
        }
        self.shutdown.cancel();
    }

    /// The store index is damaged: set it aside and stop, so that the next daemon starts a
    /// new one (the client that hit it retries once with that daemon).
    fn index_broken(&self, e: &HoardError) {
        warn!(error = %e, "the store index is damaged; setting it aside and stopping");
        match self.store.index.set_aside_now() {
            Ok(p) => warn!(aside = %p.display(), "store index set aside"),
            Err(err) => warn!(error = %err, "could not set the store index aside"),
        }
        self.close(CloseReason::IndexBroken);
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason.lock().ok().and_then(|r| r.clone())
    }

    fn project_lock(&self, dir: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = match self.project_locks.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.entry(dir.to_path_buf()).or_default().clone()
    }

    /// Work done ahead (node_modules out of date / ready): to Watch streams and the dashboard.
    fn emit(&self, dir: &Path, kind: watch_event::Kind, message: String) {
        self.emit_live(dir, kind, &message);
        self.emit_watch(dir, kind, message, None, None);
    }

    /// An event about a project to Watch streams; an install's names its operation (and, once
    /// finished, its outcome).
    fn emit_watch(
        &self,
        dir: &Path,
        kind: watch_event::Kind,
        message: String,
        op: Option<&str>,
        outcome: Option<Outcome>,
    ) {
        let _ = self.events.send((
            dir.to_path_buf(),
            WatchEvent {
                kind: kind as i32,
                path: dir.display().to_string(),
                message,
                operation_id: op.map(str::to_string),
                outcome: outcome.map(|o| o as i32),
                ..Default::default()
            },
        ));
    }

    fn emit_live(&self, dir: &Path, kind: watch_event::Kind, message: &str) {
        let kind = match kind {
            watch_event::Kind::InstallStarted => crate::ui::LiveKind::Started,
            watch_event::Kind::InstallFinished => crate::ui::LiveKind::Finished(message.into()),
            _ => return,
        };
        if crate::ui::listened(&self.live) {
            let _ = self.live.send(crate::ui::LiveEvent {
                project: dir.to_path_buf(),
                kind,
            });
        }
    }
}

impl crate::ahead::Host for Daemon {
    fn project_lock(&self, dir: &Path) -> Arc<tokio::sync::Mutex<()>> {
        Daemon::project_lock(self, dir)
    }

    fn emit(&self, dir: &Path, kind: watch_event::Kind, message: String) {
        Daemon::emit(self, dir, kind, message)
    }
}

/// A response stream that cancels its request when the client goes away.
pub struct CancelOnDrop<T> {
    inner: ReceiverStream<Result<T, Status>>,
    _guard: DropGuard,
}

impl<T> Stream for CancelOnDrop<T> {
    type Item = Result<T, Status>;
    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

fn stream<T>(rx: mpsc::Receiver<Result<T, Status>>, token: &CancellationToken) -> CancelOnDrop<T> {
    CancelOnDrop {
        inner: ReceiverStream::new(rx),
        _guard: token.clone().drop_guard(),
    }
}

/// NOT_FOUND for an operation id the daemon does not know.
fn unknown_operation(id: &str) -> Status {
    Status::not_found(format!(
        "no operation `{id}` is running or recently finished"
    ))
}

/// A project as the projects RPCs describe it.
fn project_info(dir: &Path, last_install: Option<i64>, packages: u64) -> ProjectInfo {
    let (state, reason) = crate::linker::state::freshness(dir).sync_state();
    ProjectInfo {
        path: dir.display().to_string(),
        last_install_unix: last_install,
        packages,
        sync_state: state as i32,
        reason,
    }
}

/// What Hello says this daemon serves.
const CAPABILITIES: &[&str] = &[
    "Hello",
    "Install",
    "Status",
    "StoreStatus",
    "StoreVerify",
    "StorePrune",
    "Watch",
    "Shutdown",
    "Outdated",
    "InstallScripts",
    "Audit",
    "Dashboard",
    "ListProjects",
    "ProjectStatus",
    "Query",
    "CancelOperation",
    "ListOperations",
    "AttachOperation",
    "operations",
    "Tree",
    "Why",
    "structured-errors",
    "layout-global",
    "team-cache",
    "npm-settings",
    "live-events",
];

/// Refuse a call from a client whose `hoard-protocol-version` metadata is incompatible (a
/// client that sends none is taken at its word from Hello).
fn protocol_ok<T>(req: &Request<T>, ours: &str) -> Result<(), Status> {
    let Some(theirs) = req
        .metadata()
        .get(hoard_proto::PROTOCOL_METADATA_KEY)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    if hoard_proto::protocol_compatible(theirs, ours) {
        return Ok(());
    }
    Err(Status::failed_precondition(format!(
        "this daemon speaks protocol {ours} and the client {theirs}; they are not compatible \
         (replace the daemon with one of the client's version)"
    )))
}

/// The uid of the peer `req` came from (0 where the OS has no uids: Windows checks the user by
/// SID when the pipe connects).
fn peer_uid<T>(req: &Request<T>) -> Option<u32> {
    crate::transport::peer(req).map(|p| p.uid.unwrap_or(0))
}

/// A request's project folder (checked as every RPC checks it) and its npm configuration: the
/// project's and the user's .npmrc with the client's `npm_config_*`.
fn npm_config(
    project_dir: &str,
    env: &std::collections::HashMap<String, String>,
) -> Result<(PathBuf, NpmConfig), HoardError> {
    let dir = crate::install::project_dir(project_dir)?;
    let cfg = crate::install::blocking(|| NpmConfig::load(&dir, env));
    Ok((dir, cfg))
}

/// The registry an account command talks to: the one given, else the scope's, else the
/// default (with a trailing slash).
fn account_registry(cfg: &NpmConfig, registry: &Option<String>, scope: &Option<String>) -> String {
    match (registry, scope) {
        (Some(r), _) if r.ends_with('/') => r.clone(),
        (Some(r), _) => format!("{r}/"),
        (None, Some(s)) => cfg.registry_for_scope(s),
        (None, None) => cfg.default_registry(),
    }
}

/// The service handle tonic holds.
#[derive(Clone)]
pub struct Service(pub Arc<Daemon>);

#[tonic::async_trait]
impl Hoard for Service {
    async fn hello(&self, req: Request<HelloRequest>) -> Result<Response<HelloResponse>, Status> {
        let _g = InFlight::new(&self.0);
        let r = req.into_inner();
        let compatible =
            hoard_proto::protocol_compatible(&r.protocol_version, &self.0.config.protocol_version);
        info_span!("rpc.hello", client = %r.client_version, protocol = %r.protocol_version, compatible)
            .in_scope(|| {
                if !compatible {
                    warn!("client protocol is not compatible");
                }
            });
        let ours = &self.0.config.protocol_version;
        Ok(Response::new(HelloResponse {
            protocol_version: ours.clone(),
            daemon_version: hoard_proto::BINARY_VERSION.to_string(),
            pid: std::process::id(),
            store_path: self.0.config.store_path.display().to_string(),
            compatible,
            capabilities: CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            upgrade_required: Some(
                compatible && !hoard_proto::daemon_serves(ours, &r.protocol_version),
            ),
        }))
    }

    type InstallStream = CancelOnDrop<InstallEvent>;

    async fn install(
        &self,
        req: Request<InstallRequest>,
    ) -> Result<Response<Self::InstallStream>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let guard = InFlight::new(&self.0);
        let peer_pid = crate::transport::peer(&req).and_then(|p| p.pid);
        let uid = peer_uid(&req)
            .ok_or_else(|| Status::permission_denied("peer credentials are unavailable"))?;
        let mut r = req.into_inner();
        r.peer_uid = uid;
        let token = self.0.shutdown.child_token();
        let key =
            std::fs::canonicalize(&r.project_dir).unwrap_or_else(|_| PathBuf::from(&r.project_dir));
        let op = (self.0.operations)
            .start("install", &key, r.operation_id.clone(), token.clone())
            .map_err(|e| match e {
                Refused::BadId(id) => Status::invalid_argument(format!(
                    "operation id `{id}`: use at most 64 letters, digits, `-`, `_` or `.`"
                )),
                Refused::Duplicate(id) => {
                    Status::already_exists(format!("an operation `{id}` is already running"))
                }
            })?;
        let (tx, rx) = mpsc::channel(256);
        let out = stream(rx, &token);
        let span =
            info_span!("rpc.install", project = %r.project_dir, operation = %op.id, peer_pid);
        let id = op.id.clone();
        install::spawn(self.0.clone(), r, op, tx, guard, span);
        let mut resp = Response::new(out);
        if let Ok(v) = id.parse() {
            resp.metadata_mut()
                .insert(hoard_proto::OPERATION_ID_HEADER, v);
        }
        Ok(resp)
    }

    async fn cancel_operation(
        &self,
        req: Request<CancelOperationRequest>,
    ) -> Result<Response<CancelOperationResponse>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let id = req.into_inner().operation_id;
        let span = info_span!("rpc.cancel_operation", operation = %id);
        let _e = span.enter();
        let resp = (self.0.operations.cancel(&id)).ok_or_else(|| unknown_operation(&id))?;
        info!(cancelled = resp.cancelled, state = %resp.state, "cancel asked");
        Ok(Response::new(resp))
    }

    async fn list_operations(
        &self,
        req: Request<ListOperationsRequest>,
    ) -> Result<Response<ListOperationsResponse>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let _e = info_span!("rpc.list_operations").entered();
        Ok(Response::new(ListOperationsResponse {
            operations: self.0.operations.list(),
        }))
    }

    type AttachOperationStream = ReceiverStream<Result<InstallEvent, Status>>;

    async fn attach_operation(
        &self,
        req: Request<AttachOperationRequest>,
    ) -> Result<Response<Self::AttachOperationStream>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let id = req.into_inner().operation_id;
        let op = (self.0.operations.get(&id)).ok_or_else(|| unknown_operation(&id))?;
        let (tx, rx) = mpsc::channel(256);
        let span = info_span!("rpc.attach_operation", operation = %id);
        tokio::spawn(
            async move {
                let (events, first) = op.attach();
                let done =
                    |e: &InstallEvent| matches!(e.event, Some(install_event::Event::Finished(_)));
                for e in first {
                    let end = done(&e);
                    if tx.send(Ok(e)).await.is_err() || end {
                        return;
                    }
                }
                // Done already: its `finished` was the first (and last) event.
                let Some(mut events) = events else { return };
                loop {
                    match events.recv().await {
                        Ok(e) => {
                            let end = done(&e);
                            if tx.send(Ok(e)).await.is_err() || end {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => {
                            // The operation ended while we caught up: its last word.
                            if let Some(f) = op.finished() {
                                let e = InstallEvent {
                                    event: Some(install_event::Event::Finished(f)),
                                };
                                let _ = tx.send(Ok(e)).await;
                            }
                            return;
                        }
                    }
                }
            }
            .instrument(span),
        );
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn status(
        &self,
        _req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        protocol_ok(&_req, &self.0.config.protocol_version)?;
        let _g = InFlight::new(&self.0);
        let d = self.0.clone();
        let totals = {
            let store = d.store.clone();
            tokio::task::spawn_blocking(move || store.totals())
                .instrument(info_span!("rpc.status"))
                .await
                .map_err(HoardError::from)??
        };
        Ok(Response::new(StatusResponse {
            daemon_version: hoard_proto::BINARY_VERSION.into(),
            protocol_version: d.config.protocol_version.clone(),
            pid: std::process::id(),
            uptime_millis: d.started.elapsed().as_millis() as u64,
            store_path: d.config.store_path.display().to_string(),
            store_bytes: totals.bytes,
            store_files: totals.files,
            store_packages: totals.packages,
            projects: totals.projects,
            // This call itself is not counted.
            requests_in_flight: d.in_flight().saturating_sub(1),
            idle_timeout_secs: d.config.idle_timeout.as_secs(),
            log_path: d.config.log_path.display().to_string(),
            socket_path: d.config.socket_path.display().to_string(),
        }))
    }

    async fn store_status(
        &self,
        _req: Request<StoreStatusRequest>,
    ) -> Result<Response<StoreStatusResponse>, Status> {
        protocol_ok(&_req, &self.0.config.protocol_version)?;
        let _g = InFlight::new(&self.0);
        let store = self.0.store.clone();
        let t = tokio::task::spawn_blocking(move || {
            Ok::<_, HoardError>((store.totals()?, store.trusted_count()))
        })
        .instrument(info_span!("rpc.store_status"))
        .await
        .map_err(HoardError::from)??;
        let (t, trusted) = t;
        Ok(Response::new(StoreStatusResponse {
            store_path: self.0.config.store_path.display().to_string(),
            bytes: t.bytes,
            files: t.files,
            packages: t.packages,
            projects: t.projects,
            metadata_bytes: t.metadata_bytes,
            format_version: crate::store::layout::FORMAT_VERSION,
            trusted_files: Some(trusted),
        }))
    }

    type StoreVerifyStream = CancelOnDrop<StoreVerifyEvent>;

    async fn store_verify(
        &self,
        req: Request<StoreVerifyRequest>,
    ) -> Result<Response<Self::StoreVerifyStream>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let guard = InFlight::new(&self.0);
        let r = req.into_inner();
        let (dry_run, repair) = (r.dry_run, r.repair == Some(true));
        let (tx, rx) = mpsc::channel(256);
        let token = self.0.shutdown.child_token();
        let out = stream(rx, &token);
        let d = self.0.clone();
        tokio::spawn(
            async move {
                let _guard = guard;
                tokio::select! {
                    _ = d.upkeep.verify(dry_run, repair, tx) => {}
                    _ = token.cancelled() => {}
                }
            }
            .instrument(info_span!("rpc.store_verify", dry_run)),
        );
        Ok(Response::new(out))
    }

    type StorePruneStream = CancelOnDrop<StorePruneEvent>;

    async fn store_prune(
        &self,
        req: Request<StorePruneRequest>,
    ) -> Result<Response<Self::StorePruneStream>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let guard = InFlight::new(&self.0);
        let dry_run = req.into_inner().dry_run;
        let (tx, rx) = mpsc::channel(256);
        let token = self.0.shutdown.child_token();
        let out = stream(rx, &token);
        let d = self.0.clone();
        tokio::spawn(
            async move {
                let _guard = guard;
                tokio::select! {
                    _ = d.upkeep.prune(dry_run, tx) => {}
                    _ = token.cancelled() => {}
                }
            }
            .instrument(info_span!("rpc.store_prune", dry_run)),
        );
        Ok(Response::new(out))
    }

    type WatchStream = CancelOnDrop<WatchEvent>;

    async fn watch(
        &self,
        req: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let guard = InFlight::new(&self.0);
        let r = req.into_inner();
        let mut dirs = vec![crate::install::project_dir(&r.project_dir)?];
        for more in &r.more_project_dirs {
            dirs.push(crate::install::project_dir(more)?);
        }
        let (tx, rx) = mpsc::channel(64);
        let token = self.0.shutdown.child_token();
        let out = stream(rx, &token);
        let installs = self.0.events.subscribe();
        let (fs_tx, fs_rx) = mpsc::channel::<crate::watch::Touched>(256);
        let mut watchers = Vec::new();
        for dir in &dirs {
            watchers.push(crate::watch::watch_project(dir, fs_tx.clone()).map_err(Status::from)?);
        }
        let span = info_span!("rpc.watch", projects = dirs.len());
        let d = self.0.clone();
        tokio::spawn(
            async move {
                let _guard = guard;
                let _watchers = watchers;
                let stopping = d.shutdown.clone();
                crate::watch::stream(stopping, dirs, tx, token, installs, fs_rx).await;
            }
            .instrument(span),
        );
        Ok(Response::new(out))
    }

    async fn pack(&self, req: Request<PackRequest>) -> Result<Response<PackResponse>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let _g = InFlight::new(&self.0);
        let r = req.into_inner();
        let dir = crate::install::project_dir(&r.package_dir)?;
        let span = info_span!("rpc.pack", package = %dir.display());
        let resp = tokio::task::spawn_blocking(move || {
            let _e = span.entered();
            crate::pack::serve(dir, &r)
        })
        .await
        .map_err(|e| HoardError::Internal(format!("packing: {e}")))??;
        Ok(Response::new(resp))
    }

    async fn publish(
        &self,
        req: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let _g = InFlight::new(&self.0);
        let r = req.into_inner();
        let (dir, cfg) = npm_config(&r.package_dir, &r.env)?;
        let span = info_span!("rpc.publish", package = %dir.display(), dry_run = r.dry_run);
        let opts = crate::share::publish::Options {
            tag: r.tag.as_deref(),
            access: r.access.as_deref(),
            dry_run: r.dry_run,
        };
        let http = &self.0.installer.registry.http;
        let p = crate::share::publish::publish(http, &cfg, &dir, opts)
            .instrument(span)
            .await?;
        Ok(Response::new(PublishResponse {
            pack: Some(crate::pack::response(&p.pack, None)),
            registry: p.registry,
            tag: p.tag,
            access: p.access,
        }))
    }

    async fn login(&self, req: Request<LoginRequest>) -> Result<Response<LoginResponse>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let _g = InFlight::new(&self.0);
        let r = req.into_inner();
        let span = info_span!("rpc.login", registry = %r.registry, user = %r.username);
        let http = &self.0.installer.registry.http;
        let token =
            crate::share::account::login(http, &r.registry, &r.username, &r.password, &r.email)
                .instrument(span)
                .await?;
        Ok(Response::new(LoginResponse { token }))
    }

    async fn whoami(
        &self,
        req: Request<WhoamiRequest>,
    ) -> Result<Response<WhoamiResponse>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let _g = InFlight::new(&self.0);
        let r = req.into_inner();
        let (_, cfg) = npm_config(&r.project_dir, &r.env)?;
        let registry = account_registry(&cfg, &r.registry, &r.scope);
        let http = &self.0.installer.registry.http;
        let username = crate::share::account::whoami(http, &cfg, &registry)
            .instrument(info_span!("rpc.whoami", %registry))
            .await?;
        Ok(Response::new(WhoamiResponse { username, registry }))
    }

    async fn logout(
        &self,
        req: Request<LogoutRequest>,
    ) -> Result<Response<LogoutResponse>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let _g = InFlight::new(&self.0);
        let r = req.into_inner();
        let (_, cfg) = npm_config(&r.project_dir, &r.env)?;
        let registry = account_registry(&cfg, &r.registry, &r.scope);
        let http = &self.0.installer.registry.http;
        let revoked = crate::share::account::logout(http, &cfg, &registry)
            .instrument(info_span!("rpc.logout", %registry))
            .await?;
        Ok(Response::new(LogoutResponse { revoked, registry }))
    }

    async fn view(&self, req: Request<ViewRequest>) -> Result<Response<ViewResponse>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let _g = InFlight::new(&self.0);
        let r = req.into_inner();
        let (_, cfg) = npm_config(&r.project_dir, &r.env)?;
        let http = &self.0.installer.registry.http;
        let found = crate::share::lookup::view(http, &cfg, &r.spec)
            .instrument(info_span!("rpc.view", spec = %r.spec))
            .await?;
        Ok(Response::new(ViewResponse {
            versions_json: found.iter().map(|v| v.to_string()).collect(),
        }))
    }

    async fn search(
        &self,
        req: Request<SearchRequest>,
    ) -> Result<Response<SearchResponse>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let _g = InFlight::new(&self.0);
        let r = req.into_inner();
        let (_, cfg) = npm_config(&r.project_dir, &r.env)?;
        let http = &self.0.installer.registry.http;
        let size = r.size.unwrap_or(20).clamp(1, 250);
        let (registry, found) = crate::share::lookup::search(http, &cfg, &r.text, size)
            .instrument(info_span!("rpc.search", text = %r.text))
            .await?;
        Ok(Response::new(SearchResponse {
            packages_json: found.iter().map(|v| v.to_string()).collect(),
            registry,
        }))
    }

    async fn outdated(
        &self,
        req: Request<OutdatedRequest>,
    ) -> Result<Response<OutdatedResponse>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let _g = InFlight::new(&self.0);
        let r = req.into_inner();
        let span = info_span!("rpc.outdated", project = %r.project_dir);
        let resp = self.0.installer.outdated(r).instrument(span).await?;
        Ok(Response::new(resp))
    }

    async fn install_scripts(
        &self,
        req: Request<InstallScriptsRequest>,
    ) -> Result<Response<InstallScriptsResponse>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let _g = InFlight::new(&self.0);
        let r = req.into_inner();
        let span = info_span!("rpc.install_scripts", project = %r.project_dir, action = r.action);
        let resp = self.0.installer.install_scripts(r).instrument(span).await?;
        Ok(Response::new(resp))
    }

    async fn audit(&self, req: Request<AuditRequest>) -> Result<Response<AuditResponse>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let _g = InFlight::new(&self.0);
        let r = req.into_inner();
        let span = info_span!("rpc.audit", project = %r.project_dir, kind = r.kind);
        let resp = self.0.installer.audit(r).instrument(span).await?;
        Ok(Response::new(resp))
    }

    async fn dashboard(
        &self,
        req: Request<DashboardRequest>,
    ) -> Result<Response<DashboardResponse>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let _g = InFlight::new(&self.0);
        let peer = crate::transport::peer(&req)
            .ok_or_else(|| Status::permission_denied("peer credentials are unavailable"))?;
        let uid = peer.uid.unwrap_or(0);
        if !peer.same_user && uid != 0 {
            let own = crate::platform::my_uid();
            return Err(HoardError::PermissionDenied(format!(
                "the dashboard belongs to the daemon's user (uid {own}), not to uid {uid}"
            ))
            .into());
        }
        let r = req.into_inner();
        let project = match r.project_dir.as_deref() {
            Some(p) => Some(crate::install::project_dir(p)?),
            None => None,
        };
        let d = self.0.clone();
        let dash = self
            .0
            .dashboard
            .get_or_try_init(|| {
                let touch_d = Arc::downgrade(&d);
                crate::ui::Dashboard::start(
                    crate::ui::Sources {
                        installer: d.installer.clone(),
                        store: d.store.clone(),
                        store_path: d.config.store_path.clone(),
                        live: d.live.clone(),
                        touch: Arc::new(move || {
                            if let Some(d) = touch_d.upgrade() {
                                d.touch();
                            }
                        }),
                    },
                    d.shutdown.child_token(),
                )
            })
            .instrument(info_span!("rpc.dashboard"))
            .await?;
        if let Some(p) = &project {
            dash.show(p.clone());
        }
        Ok(Response::new(DashboardResponse {
            url: dash.url(project.as_deref()),
            port: dash.port as u32,
            token: dash.token.clone(),
        }))
    }

    async fn list_projects(
        &self,
        req: Request<ListProjectsRequest>,
    ) -> Result<Response<ListProjectsResponse>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let _g = InFlight::new(&self.0);
        let store = self.0.store.clone();
        let projects = tokio::task::spawn_blocking(move || -> crate::error::Result<_> {
            let usage = store.index.project_usage()?;
            Ok(usage
                .into_iter()
                .map(|u| project_info(Path::new(&u.path), Some(u.last_install), u.packages))
                .collect())
        })
        .instrument(info_span!("rpc.list_projects"))
        .await
        .map_err(HoardError::from)??;
        Ok(Response::new(ListProjectsResponse { projects }))
    }

    async fn project_status(
        &self,
        req: Request<ProjectStatusRequest>,
    ) -> Result<Response<ProjectStatusResponse>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let _g = InFlight::new(&self.0);
        let dir = crate::install::project_dir(&req.into_inner().project_dir)?;
        let store = self.0.store.clone();
        let project = tokio::task::spawn_blocking(move || -> crate::error::Result<_> {
            let key = dir.display().to_string();
            let usage = store.index.project_usage()?;
            let u = usage.into_iter().find(|u| u.path == key);
            Ok(project_info(
                &dir,
                u.as_ref().map(|u| u.last_install),
                u.map_or(0, |u| u.packages),
            ))
        })
        .instrument(info_span!("rpc.project_status"))
        .await
        .map_err(HoardError::from)??;
        Ok(Response::new(ProjectStatusResponse {
            project: Some(project),
        }))
    }

    async fn query(&self, req: Request<QueryRequest>) -> Result<Response<QueryResponse>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let _g = InFlight::new(&self.0);
        let r = req.into_inner();
        let span = info_span!("rpc.query", project = %r.project_dir, selector = %r.selector);
        let resp = self.0.installer.query(r).instrument(span).await?;
        Ok(Response::new(resp))
    }

    async fn tree(&self, req: Request<TreeRequest>) -> Result<Response<TreeResponse>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let _g = InFlight::new(&self.0);
        let r = req.into_inner();
        let span = info_span!("rpc.tree", project = %r.project_dir);
        let resp = tokio::task::spawn_blocking(move || span.in_scope(|| crate::query::tree(&r)))
            .await
            .map_err(HoardError::from)??;
        Ok(Response::new(resp))
    }

    async fn why(&self, req: Request<WhyRequest>) -> Result<Response<WhyResponse>, Status> {
        protocol_ok(&req, &self.0.config.protocol_version)?;
        let _g = InFlight::new(&self.0);
        let r = req.into_inner();
        let span = info_span!("rpc.why", project = %r.project_dir, package = %r.package);
        let resp = tokio::task::spawn_blocking(move || span.in_scope(|| crate::query::why(&r)))
            .await
            .map_err(HoardError::from)??;
        Ok(Response::new(resp))
    }

    async fn shutdown(
        &self,
        req: Request<ShutdownRequest>,
    ) -> Result<Response<ShutdownResponse>, Status> {
        let reason = req.into_inner().reason;
        info_span!("rpc.shutdown").in_scope(|| info!(%reason, "shutdown requested"));
        self.0.close(CloseReason::ShutdownRpc(reason));
        Ok(Response::new(ShutdownResponse {
            pid: std::process::id(),
        }))
    }
}

/// For tests only: `HOARD_FAILPOINT_INSTALL_HOLD_MS` keeps every install that long inside the
/// project's lock, so concurrent installs into one project would overlap if the lock failed.
fn failpoint_install_hold() -> Option<std::time::Duration> {
    static HOLD: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    *HOLD.get_or_init(|| {
        std::env::var("HOARD_FAILPOINT_INSTALL_HOLD_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(std::time::Duration::from_millis)
    })
}
