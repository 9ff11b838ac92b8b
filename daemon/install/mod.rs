//! One install request from start to summary, as a sequence of stages with typed hand-offs:
//!
//! 1. `inputs`: check the project, apply package.json edits (`edit`), read the lockfile and
//!    npm's settings, fingerprint everything the install depends on → `Inputs`.
//! 2. `noop`: nothing changed since the last install (or node_modules proves the lockfile that
//!    is missing) → the summary, and the install stops here.
//!    `swap`: or an install prepared ahead of time for exactly these inputs is waiting in
//!    node_modules (`prepare`, the global layout): it is swapped in → the summary.
//! 3. `record`: the plan of record, from the lockfile when it still fits, else resolved →
//!    `Record` (a `Tree`); then the supply-chain checks of that tree: `age` (a locked version
//!    younger than the release-age cooldown), `signed` (registry signatures of what was
//!    resolved), `advised` (advisories, with `audit-level` set).
//! 4. `fetch`: every package to install present in the store → `Fetched`.
//! 5. `scripts`: which install scripts may run under npm's `allowScripts` policy (and so which
//!    packages are real copies) → `Scripts`.
//! 6. `link`: the layout plan (`linker::plan`) materialized into node_modules → `Linked`.
//! 7. `finish`: package-lock.json, the project's registration for GC, the state file last →
//!    the summary.
//!
//! `prepare.rs` runs the same stages ahead of time (the daemon's watcher calls it when a project's
//! package.json or lockfile changes), building the new node_modules beside the old one.
//! Beside the stages: `approvals.rs` (the InstallScripts RPC), `audit.rs` (the Audit RPC, whose
//! advisory query `advised` shares), `outdated.rs`.
//! `context.rs` holds what the stages share (`Installer`, `Run`, the event emitter); the stages
//! import it and each other in stage order, never this file. This file owns the order.
//!
//! Must not: run package code (the client runs allowed scripts), or hold the async executor
//! with blocking work.

mod advised;
mod age;
mod approvals;
mod audit;
mod context;
mod edit;
mod fetch;
mod finish;
mod git_prepare;
mod inputs;
mod link;
mod lock_memo;
mod noop;
mod outdated;
mod prepare;
mod record;
mod scripts;
mod signed;
mod swap;

use std::sync::Arc;
use std::time::Instant;

use hoard_proto::v1::{InstallRequest, InstallSummary};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span};

use crate::error::Result;
use context::Run;
pub(crate) use context::blocking;

pub use audit::locked_tree;
pub use context::{EventSender, Installer};
pub use inputs::project_dir;

/// The request with npm's settings applied (its own flags win), and what else they decide; an
/// error for a setting hoard must not ignore.
pub(super) fn with_settings(
    mut req: InstallRequest,
) -> Result<(InstallRequest, crate::npm_settings::Applied)> {
    let dir = inputs::project_dir(&req.project_dir)?;
    let cfg = crate::registry::config::NpmConfig::load(&dir, &req.env);
    let mut applied = crate::npm_settings::apply(&mut req, &cfg)?;
    applied.cfg = cfg;
    Ok((req, applied))
}

impl Installer {
    /// Run one install. Events go to `tx`; the summary is returned (and not sent).
    pub async fn run(
        self: &Arc<Self>,
        req: InstallRequest,
        tx: EventSender,
        cancel: CancellationToken,
        gate: Arc<crate::operations::Gate>,
    ) -> Result<InstallSummary> {
        let (req, settings) = blocking(|| with_settings(req))?;
        let warnings = settings.warnings.clone();
        let run = Run::new(self, &req, tx, cancel, gate, settings);
        for w in warnings {
            run.em.warn("npm-setting", "", w).await;
        }
        let index = self.store.index.clone();
        tokio::task::spawn_blocking(move || index.check_file()).await??;
        for (code, notice) in self.store.take_notices() {
            run.em.warn(code, "", notice).await;
        }
        let mut inputs = stage("inputs", inputs::read(&run)).await?;
        if inputs.fetch_only {
            blocking(|| inputs.parse_lock())?;
            let tree = record::locked(&inputs)?;
            let fetched = stage("fetch", fetch::fetch(&run, &inputs, &tree)).await?;
            return Ok(finish::fetch_only(&run, fetched));
        }
        if let Some(summary) = stage("noop", noop::check(&run, &inputs)).await? {
            return Ok(summary);
        }
        if let Some(summary) = stage("swap", swap::swap(&run, &inputs)).await? {
            return Ok(summary);
        }
        let memo = &self.lock_memo;
        let remembered = blocking(|| inputs.parse_lock_remembered(memo, &req))?;
        let planned = record::plan_of_record(&run, &inputs, remembered);
        let mut record = stage("record", planned).await?;
        if inputs.lock_only {
            run.point_of_no_return()?;
            let summary = stage("finish", async {
                finish::lock_only(&run, &inputs, &record)
            })
            .await;
            crate::memory::free_later((record, inputs));
            return summary;
        }
        let fetched = stage("fetch", fetch::fetch(&run, &inputs, &record.tree)).await?;
        record.integrity_filled = fetch::fill_integrity(&mut record.tree, &fetched.stored);
        let (tree, stored) = (&record.tree, &fetched.stored);
        let scripts = stage("scripts", scripts::policy(&run, &inputs, tree, stored)).await?;
        run.point_of_no_return()?;
        let linked = link::link(&run, &inputs, &inputs.dir, tree, &fetched, &scripts);
        let linked = stage("link", linked).await?;
        let finished = finish::finish(&run, &inputs, &record, fetched, scripts, linked);
        let summary = stage("finish", finished).await?;
        info!(
            project = %inputs.dir.display(),
            added = summary.added,
            removed = summary.removed,
            downloaded = summary.downloaded,
            millis = summary.total_millis,
            "install finished"
        );
        crate::memory::free_later((record, inputs));
        Ok(summary)
    }
}

/// Run one stage in its own span (`stage{name=…}`) and log how long it took, so each stage can
/// be timed alone (`HOARD_LOG=hoardd::install=debug` in the daemon log).
async fn stage<T>(name: &'static str, f: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = f.instrument(info_span!("stage", name)).await;
    let millis = started.elapsed().as_millis() as u64;
    debug!(stage = name, millis, "stage done");
    out
}
