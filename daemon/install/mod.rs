//! One install request from start to summary, as a sequence of stages with typed hand-offs:
//!
//! 1. `inputs`: check the project, apply package.json edits (`edit`), read the lockfile and
//!    npm's settings, fingerprint everything the install depends on → `Inputs`.
//! 2. `noop`: nothing changed since the last install (or node_modules proves the lockfile that
//!    is missing) → the summary, and the install stops here.
//! 3. `record`: the plan of record, from the lockfile when it still fits, else resolved →
//!    `Record` (a `Tree`).
//! 4. `fetch`: every package to install present in the store → `Fetched`.
//! 5. `scripts`: which install scripts may run (and so which packages are real copies) →
//!    `Scripts`.
//! 6. `link`: the layout plan (`linker::plan`) materialized into node_modules → `Linked`.
//! 7. `finish`: package-lock.json, the project's registration for GC, the state file last →
//!    the summary.
//!
//! This file owns the order and the events streamed to the client. Must not: run package code
//! (the client runs allowed scripts), or hold the async executor with blocking work.

mod edit;
mod fetch;
mod finish;
mod inputs;
mod link;
mod noop;
mod outdated;
mod record;
mod scripts;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hoard_proto::v1::{
    self, InstallEvent, InstallRequest, InstallSummary, PhaseProgress, install_event::Event,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::error::Result;
use crate::linker::method::Method;
use crate::registry::Registry;
use crate::store::Store;

pub use inputs::project_dir;

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

/// Sends install events to the client.
struct Emitter {
    tx: EventSender,
}

impl Emitter {
    async fn send(&self, e: Event) {
        let _ = self.tx.send(Ok(InstallEvent { event: Some(e) })).await;
    }

    async fn info(&self, message: String) {
        self.send(Event::Info(message)).await;
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

    /// A progress callback for blocking code: drops an update rather than wait for the client.
    fn progress_hook(&self, phase: v1::Phase) -> impl Fn(u64, u64) + Send + Sync + 'static {
        let tx = self.tx.clone();
        move |done, total| {
            let _ = tx.try_send(Ok(InstallEvent {
                event: Some(Event::Progress(PhaseProgress {
                    phase: phase as i32,
                    done,
                    total,
                    bytes: 0,
                    finished: false,
                })),
            }));
        }
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

/// One install under way: the request and what every stage shares.
struct Run<'a> {
    installer: &'a Arc<Installer>,
    req: &'a InstallRequest,
    em: Emitter,
    cancel: CancellationToken,
    started: Instant,
    /// Registry metadata bytes downloaded by the daemon before this install began.
    metadata_before: u64,
}

/// Run blocking filesystem or CPU work from async code without stalling the executor: the
/// runtime moves its other tasks off this worker while `f` runs (multi-thread runtime only).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
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

    /// Run one install. Events go to `tx`; the summary is returned (and not sent).
    pub async fn run(
        self: &Arc<Self>,
        req: InstallRequest,
        tx: EventSender,
        cancel: CancellationToken,
    ) -> Result<InstallSummary> {
        let run = Run {
            installer: self,
            req: &req,
            em: Emitter { tx },
            cancel,
            started: Instant::now(),
            metadata_before: self.registry.bytes_downloaded.load(Ordering::Relaxed),
        };
        let inputs = inputs::read(&run).await?;
        if let Some(summary) = noop::check(&run, &inputs).await? {
            return Ok(summary);
        }
        let mut record = record::plan_of_record(&run, &inputs).await?;
        if inputs.lock_only {
            return finish::lock_only(&run, &inputs, &record);
        }
        let fetched = fetch::fetch(&run, &inputs, &record.tree).await?;
        record.integrity_filled = fetch::fill_integrity(&mut record.tree, &fetched.stored);
        let scripts = scripts::policy(&run, &inputs, &record.tree, &fetched.stored).await;
        let linked = link::link(&run, &inputs, &record.tree, &fetched, &scripts).await?;
        let summary = finish::finish(&run, &inputs, &record, fetched, scripts, linked).await?;
        info!(
            project = %inputs.dir.display(),
            added = summary.added,
            removed = summary.removed,
            downloaded = summary.downloaded,
            millis = summary.total_millis,
            "install finished"
        );
        Ok(summary)
    }
}
