//! Stage 6 of an install: plan the layout (`linker::plan`, hoisted or isolated) and materialize
//! it into node_modules on a blocking thread. The link method found for a (store, project)
//! filesystem pair is remembered for the daemon's life, so later installs skip the probe.
//!
//! Must not: decide placement itself or write files itself (the linker does both).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::Instant;

use hoard_proto::v1;
use tracing::info_span;

use super::context::{Run, blocking};
use super::fetch::Fetched;
use super::inputs::{Inputs, layout, requested_method};
use super::scripts::Scripts;
use crate::error::{HoardError, Result};
use crate::linker::materialize::{Hooks, LinkOptions};
use crate::linker::method::Requested;
use crate::linker::{self, Layout, LinkReport, Plan, PlannedPackage};
use crate::store::{StoredPackage, TarballRef};
use crate::tree::Tree;

/// What linking did.
pub(super) struct Linked {
    pub plan: Arc<Plan>,
    pub report: LinkReport,
    pub millis: u64,
}

/// Plan and materialize `tree`'s stored packages into the project's node_modules.
pub(super) async fn link(
    run: &Run<'_>,
    inputs: &Inputs,
    tree: &Tree,
    fetched: &Fetched,
    scripts: &Scripts,
) -> Result<Linked> {
    let started = Instant::now();
    let mut plan = match layout(run.req) {
        Layout::Isolated => linker::plan::isolated(tree, &fetched.stored, &scripts.copies),
        Layout::Hoisted => linker::plan::hoisted(tree, &fetched.stored, &scripts.copies),
    };
    linker::compute_bin_links(&mut plan);
    let plan = Arc::new(plan);
    let installer = run.installer;
    let requested = requested_method(run.req);
    let dev_key = (
        blocking(|| std::fs::metadata(&installer.store.layout.files))
            .map(|m| m.dev())
            .unwrap_or(0),
        inputs.dev,
    );
    let remembered = (installer.link_memory.lock().ok()).and_then(|m| m.get(&dev_key).copied());
    let (store, dir, plan2) = (installer.store.clone(), inputs.dir.clone(), plan.clone());
    let progress = run.em.progress_hook(v1::Phase::Link);
    let repair = repairer(run, inputs, tree, fetched);
    let token = run.cancel.clone();
    let opts = LinkOptions {
        requested,
        remembered,
        force: run.req.force,
    };
    let report = tokio::task::spawn_blocking(move || {
        let _span = info_span!("link").entered();
        let hooks = Hooks {
            progress: &progress,
            repair: &repair,
            cancelled: &|| token.is_cancelled(),
        };
        linker::materialize::materialize(&dir, &plan2, &store, opts, &hooks)
    })
    .await??;
    if let (Some(m), Requested::Auto) = (report.method, requested)
        && let Ok(mut mem) = installer.link_memory.lock()
    {
        mem.insert(dev_key, m);
    }
    for w in &report.warnings {
        run.em.warn("link-fallback", "", w.clone()).await;
    }
    (run.em)
        .progress(v1::Phase::Link, report.added, report.added, 0, true)
        .await;
    Ok(Linked {
        plan,
        report,
        millis: started.elapsed().as_millis() as u64,
    })
}

/// The linker's repair hook: a package whose store files are missing is downloaded and imported
/// again (from its tarball URL in this tree), on the runtime, while the linker's thread waits.
fn repairer(
    run: &Run<'_>,
    inputs: &Inputs,
    tree: &Tree,
    fetched: &Fetched,
) -> impl Fn(&PlannedPackage) -> Result<Arc<StoredPackage>> + Send + Sync + 'static {
    let refs: HashMap<i64, TarballRef> = (fetched.stored.iter())
        .filter_map(|(&i, p)| Some((p.id, tree.nodes[i].tarball_ref(&inputs.cfg, &inputs.dir)?)))
        .collect();
    let store = run.installer.store.clone();
    let http = run.installer.registry.http.clone();
    let handle = tokio::runtime::Handle::current();
    move |p: &PlannedPackage| {
        let t = refs
            .get(&p.stored.id)
            .cloned()
            .ok_or_else(|| HoardError::Internal(format!("no tarball is known for {}", p.key)))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let (store, http) = (store.clone(), http.clone());
        handle.spawn(async move {
            let _ = tx.send(store.refetch(&t, &http).await);
        });
        rx.recv()
            .map_err(|_| HoardError::Internal("the repair of a package stopped".into()))?
    }
}
