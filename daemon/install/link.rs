//! Stage 6 of an install: plan the layout (`linker::plan`: hoisted or isolated; `linker::global`)
//! and materialize it (the global layout's slots in the store first) into node_modules, off the executor (`blocking`). The link method found for a (store, project)
//! filesystem pair is remembered for the daemon's life, so later installs skip the probe.
//!
//! Must not: decide placement itself or write files itself (the linker does both).

use std::sync::Arc;
use std::time::Instant;

use hoard_proto::v1;
use tracing::info_span;

use super::context::{Run, blocking};
use super::fetch::Fetched;
use super::inputs::{Inputs, requested_method};
use super::scripts::Scripts;
use crate::error::{HoardError, Result};
use crate::linker::materialize::{Hooks, LinkOptions};
use crate::linker::method::Requested;
use crate::linker::{self, Layout, LinkReport, Plan, PlannedPackage};
use crate::store::StoredPackage;
use crate::tree::Tree;

/// What linking did.
pub(super) struct Linked {
    pub plan: Plan,
    pub report: LinkReport,
    pub millis: u64,
}

/// Plan and materialize `tree`'s stored packages into the node_modules of `into` (the project,
/// or the folder an install prepared ahead of time is built in).
pub(super) async fn link(
    run: &Run<'_>,
    inputs: &Inputs,
    into: &std::path::Path,
    tree: &Tree,
    fetched: &Fetched,
    scripts: &Scripts,
) -> Result<Linked> {
    let started = Instant::now();
    let installer = run.installer;
    let (stored, copies) = (&fetched.stored, &scripts.copies);
    // pnpm's `public-hoist-pattern` (the isolated and global layouts).
    let public = inputs.cfg.list("public-hoist-pattern");
    let mut plan = match inputs.layout {
        Layout::Isolated => linker::plan::isolated(tree, stored, copies, &public),
        Layout::Hoisted => linker::plan::hoisted(tree, stored, copies),
        Layout::Global => {
            let store = &installer.store;
            blocking(|| {
                let present = store.slot_names()?.into_iter().collect();
                let root = &store.layout.virtual_root;
                let plan = linker::global::plan(tree, stored, copies, root, &present, &public);
                Ok::<_, HoardError>(plan)
            })?
        }
    };
    linker::compute_bin_links(&mut plan);
    tracing::debug!(millis = started.elapsed().as_millis() as u64, "planned");
    let requested = requested_method(run.req);
    let files = &installer.store.layout.files;
    let dev_key = (
        blocking(|| std::fs::metadata(files))
            .map(|m| crate::platform::device(files, &m))
            .unwrap_or(0),
        inputs.dev,
    );
    let remembered = (installer.link_memory.lock().ok()).and_then(|m| m.get(&dev_key).copied());
    let progress = run.em.progress_hook(v1::Phase::Link);
    let opts = LinkOptions {
        requested,
        remembered,
        force: run.req.force,
        fresh_since: Some(run.started),
    };
    // The repair hook runs on the linker's threads, outside the runtime: it spawns onto it.
    let handle = tokio::runtime::Handle::current();
    let report = blocking(|| {
        let _span = info_span!("link").entered();
        let hooks = Hooks {
            progress: &progress,
            repair: &|p| repair(run, &handle, inputs, tree, fetched, p),
            // Past the point of no return (the gate passed before linking): never.
            cancelled: &|| !run.gate.passed() && run.cancel.is_cancelled(),
        };
        // Slots first: the project's links never point at a slot not yet there.
        let mut slots = LinkReport::default();
        let t = Instant::now();
        linker::slots::ensure(&plan.slots, &installer.store, &hooks, &mut slots)?;
        let t_slots = t.elapsed();
        let mut report =
            linker::materialize::materialize(into, &plan, &installer.store, opts, &hooks)?;
        tracing::debug!(
            slots_ms = t_slots.as_millis() as u64,
            project_ms = (t.elapsed() - t_slots).as_millis() as u64,
            "materialized"
        );
        report.absorb(slots);
        if plan.layout == Layout::Global {
            // Always there in this layout: `hoard run` puts it on NODE_PATH.
            let fallback = into.join("node_modules/.hoard/node_modules");
            std::fs::create_dir_all(&fallback)
                .map_err(|e| HoardError::io("creating directory", &fallback, e))?;
        }
        Ok::<_, HoardError>(report)
    })?;
    if let (Some(m), Requested::Auto) = (report.method, requested)
        && let Ok(mut mem) = installer.link_memory.lock()
    {
        mem.insert(dev_key, m);
    }
    for w in &report.warnings {
        run.em.warn("link-fallback", "", w.clone()).await;
    }
    (run.em)
        .progress(v1::Phase::Link, report.added, report.added, 0, true, None)
        .await;
    Ok(Linked {
        plan,
        report,
        millis: started.elapsed().as_millis() as u64,
    })
}

/// The linker's repair hook: a package whose store files are missing is downloaded and imported
/// again (from its tarball URL in this tree), on the runtime, while the linker's thread waits.
/// Rare: the tarball is looked up only then.
fn repair(
    run: &Run<'_>,
    handle: &tokio::runtime::Handle,
    inputs: &Inputs,
    tree: &Tree,
    fetched: &Fetched,
    p: &PlannedPackage,
) -> Result<Arc<StoredPackage>> {
    let t = (fetched.stored.iter())
        .find(|(_, s)| s.id == p.stored.id)
        .and_then(|(&i, _)| tree.nodes[i].tarball_ref(&inputs.cfg, &inputs.dir))
        .ok_or_else(|| HoardError::Internal(format!("no tarball is known for {}", p.key)))?;
    let store = run.installer.store.clone();
    let http = run.installer.registry.http.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    handle.spawn(async move {
        let _ = tx.send(store.refetch(&t, &http).await);
    });
    rx.recv()
        .map_err(|_| HoardError::Internal("the repair of a package stopped".into()))?
}
