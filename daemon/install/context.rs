//! What every install stage shares: the daemon's long-lived `Installer`, the install under way
//! (`Run`: the request, the event stream, cancellation, the clock), and the rule for blocking
//! work. The stages import this; none imports `mod.rs`, which only calls them in order.
//!
//! Must not: hold any stage's logic.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hoard_proto::v1::{self, InstallEvent, InstallRequest, PhaseProgress, install_event::Event};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::linker::method::Method;
use crate::registry::Registry;
use crate::store::Store;

/// Shared, long-lived install machinery (one per daemon).
pub struct Installer {
    pub store: Arc<Store>,
    pub registry: Arc<Registry>,
    /// Link method found per (store device, project device).
    pub(super) link_memory: Mutex<HashMap<(u64, u64), Method>>,
    /// `node --version` per PATH.
    pub(super) node_versions: Mutex<HashMap<String, Option<semver::Version>>>,
    /// Bundled dependencies' manifests per bundler tarball, kept across resolves.
    pub(super) bundles: crate::bundled::BundleCache,
    /// The last lockfile's tree, kept by the bytes it came from.
    pub(super) lock_memo: super::lock_memo::LockMemo,
}

pub type EventSender = mpsc::Sender<std::result::Result<InstallEvent, tonic::Status>>;

/// Sends install events to the client.
pub(super) struct Emitter {
    pub(super) tx: EventSender,
    /// At most one progress update per `PROGRESS_EVERY` (a phase's last always goes): a
    /// resolution places thousands of packages, and an event per package cost the daemon and
    /// the client more than the progress bar gains.
    progress_gate: Arc<ProgressGate>,
}

/// Shortest time between two progress updates of one install.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

/// The clock of the progress throttle, shared with the blocking code's callbacks.
struct ProgressGate {
    started: Instant,
    /// Microseconds after `started` when the last update went (`u64::MAX`: none yet).
    last: std::sync::atomic::AtomicU64,
}

impl ProgressGate {
    /// Whether an update may go now; `last` (a phase's final update) always may.
    fn admit(&self, last: bool) -> bool {
        let now = self.started.elapsed().as_micros() as u64;
        let prev = self.last.load(Ordering::Relaxed);
        let due = prev == u64::MAX || now >= prev + PROGRESS_EVERY.as_micros() as u64;
        if !(due || last) {
            return false;
        }
        self.last.store(now, Ordering::Relaxed);
        true
    }
}

impl Emitter {
    pub(super) fn new(tx: EventSender) -> Emitter {
        Emitter {
            tx,
            progress_gate: Arc::new(ProgressGate {
                started: Instant::now(),
                last: std::sync::atomic::AtomicU64::new(u64::MAX),
            }),
        }
    }

    pub(super) async fn send(&self, e: Event) {
        let _ = self.tx.send(Ok(InstallEvent { event: Some(e) })).await;
    }

    pub(super) async fn info(&self, message: String) {
        self.send(Event::Info(message)).await;
    }

    pub(super) async fn progress(
        &self,
        phase: v1::Phase,
        done: u64,
        total: u64,
        bytes: u64,
        finished: bool,
        package: Option<String>,
    ) {
        if !self.progress_gate.admit(finished || done >= total) {
            return;
        }
        self.send(Event::Progress(PhaseProgress {
            phase: phase as i32,
            done,
            total,
            bytes,
            finished,
            package,
        }))
        .await;
    }

    /// A progress callback for blocking code: drops an update rather than wait for the client.
    pub(super) fn progress_hook(
        &self,
        phase: v1::Phase,
    ) -> impl Fn(u64, u64, &str) + Send + Sync + 'static {
        let tx = self.tx.clone();
        let gate = self.progress_gate.clone();
        move |done, total, package: &str| {
            if !gate.admit(done >= total) {
                return;
            }
            let _ = tx.try_send(Ok(InstallEvent {
                event: Some(Event::Progress(PhaseProgress {
                    phase: phase as i32,
                    done,
                    total,
                    bytes: 0,
                    finished: false,
                    package: (!package.is_empty()).then(|| package.to_string()),
                })),
            }));
        }
    }

    pub(super) async fn warn(&self, code: &str, package: &str, message: String) {
        self.send(Event::Warning(v1::Warning {
            message,
            package: package.to_string(),
            code: code.to_string(),
        }))
        .await;
    }
}

/// One install under way: the request and what every stage shares.
pub(super) struct Run<'a> {
    pub(super) installer: &'a Arc<Installer>,
    pub(super) req: &'a InstallRequest,
    pub(super) em: Emitter,
    pub(super) cancel: CancellationToken,
    /// Decides between a cancel and the first change to the project (operations.rs).
    pub(super) gate: Arc<crate::operations::Gate>,
    pub(super) started: Instant,
    /// Registry metadata bytes downloaded by the daemon before this install began.
    pub(super) metadata_before: u64,
    /// npm's settings beyond the request's fields (`npm_settings::apply`).
    pub(super) settings: crate::npm_settings::Applied,
}

impl<'a> Run<'a> {
    /// A run of `req` starting now; events go to `tx`.
    pub(super) fn new(
        installer: &'a Arc<Installer>,
        req: &'a InstallRequest,
        tx: EventSender,
        cancel: CancellationToken,
        gate: Arc<crate::operations::Gate>,
        settings: crate::npm_settings::Applied,
    ) -> Run<'a> {
        Run {
            settings,
            installer,
            req,
            em: Emitter::new(tx),
            cancel,
            gate,
            started: Instant::now(),
            metadata_before: installer.registry.bytes_downloaded.load(Ordering::Relaxed),
        }
    }

    /// About to change the project (node_modules or package-lock.json): from here on a cancel
    /// is refused and the install completes; a cancel that came first wins instead.
    pub(super) fn point_of_no_return(&self) -> crate::error::Result<()> {
        if self.cancel.is_cancelled() || !self.gate.pass() {
            return Err(crate::error::HoardError::Cancelled(
                "before anything changed".into(),
            ));
        }
        Ok(())
    }
}

/// Run blocking filesystem or CPU work from async code without stalling the executor: the
/// runtime moves its other tasks off this worker while `f` runs (multi-thread runtime only).
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

impl Installer {
    pub fn new(store: Arc<Store>, registry: Arc<Registry>) -> Installer {
        Installer {
            store,
            registry,
            link_memory: Mutex::new(HashMap::new()),
            node_versions: Mutex::new(HashMap::new()),
            bundles: Default::default(),
            lock_memo: Default::default(),
        }
    }
}
