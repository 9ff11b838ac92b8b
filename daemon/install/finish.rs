//! Stage 7 of an install: package-lock.json (a lock used as it is stays byte for byte), the
//! project's registration for the store's GC, then the hidden lock copy and the state file,
//! last, because they say the install is complete. Builds the summary from the stages'
//! hand-offs. Also the short way out of `--package-lock-only`.
//!
//! Must not: change node_modules beyond its two bookkeeping files.

use hoard_proto::v1::{self, InstallSummary, PhaseTiming};

use super::context::{Run, blocking};
use super::fetch::Fetched;
use super::inputs::{Inputs, fingerprint, method_to_proto};
use super::link::Linked;
use super::record::Record;
use super::scripts::{self, Scripts};
use crate::error::Result;
use crate::linker;
use crate::linker::method::Method;
use crate::lockfile;
use crate::tree::Tree;

/// Finish a complete install and summarize it.
pub(super) async fn finish(
    run: &Run<'_>,
    inputs: &Inputs,
    record: &Record,
    fetched: Fetched,
    scripts: Scripts,
    linked: Linked,
) -> Result<InstallSummary> {
    let req = run.req;
    // A lock that was used as it is stays byte for byte (it may carry fields hoard does not
    // write, such as `funding`), unless integrity had to be filled in or entries were pruned.
    let changed = !record.from_lock || record.integrity_filled || record.pruned;
    let rewrite = !req.no_lockfile && !req.frozen && changed;
    let lockfile_written = rewrite && blocking(|| write_lock(&record.tree, inputs))?;

    let ids: Vec<i64> = fetched.stored.values().map(|p| p.id).collect();
    let store = run.installer.store.clone();
    let proj = inputs.dir.display().to_string();
    tokio::task::spawn_blocking(move || store.register_project(proj, ids)).await??;

    // State last: the install is complete.
    blocking(|| {
        let lock_now = std::fs::read(&inputs.lock_path).ok();
        linker::state::write_hidden_lock(&inputs.dir, lock_now.as_deref())?;
        let hash = fingerprint(&inputs.project, lock_now.as_deref(), req, &run.settings);
        let npmrc = std::fs::read(inputs.dir.join(".npmrc")).ok();
        let files = linker::state::input_hashes([
            Some(&inputs.project.pkg_bytes),
            lock_now.as_deref(),
            npmrc.as_deref(),
        ]);
        linker::state::write_state(
            &inputs.dir,
            &linked.plan,
            &hash,
            linked.report.method,
            files,
        )
    })?;

    let report = &linked.report;
    let mut summary = InstallSummary {
        added: report.added,
        removed: report.removed,
        unchanged: report.unchanged,
        files_linked: report.files,
        link_method: method_to_proto(report.method.unwrap_or(Method::Hardlink)) as i32,
        total_packages: linked.plan.package_count() as u64,
        lockfile_written,
        // A package repaired while linking was downloaded after all.
        downloaded: fetched.downloaded + report.repaired,
        reused: fetched.reused.saturating_sub(report.repaired),
        bytes_downloaded: fetched.bytes + report.repaired_bytes,
        metadata_bytes_downloaded: Some(fetched.metadata_bytes),
        repaired: Some(report.repaired),
        from_remote_cache: (fetched.from_remote > 0).then_some(fetched.from_remote),
        denied_scripts: scripts.denied,
        scripts: scripts.allowed,
        timings: vec![
            timing(v1::Phase::Resolve, record.millis),
            timing(v1::Phase::Fetch, fetched.millis),
            timing(v1::Phase::Link, linked.millis),
        ],
        ..Default::default()
    };
    if req.add.is_empty() && req.remove.is_empty() {
        summary.scripts.extend(scripts::root_scripts(inputs));
    }
    summary.total_millis = run.started.elapsed().as_millis() as u64;
    Ok(summary)
}

/// `hoard fetch`: what came into the store; nothing else was done.
pub(super) fn fetch_only(run: &Run<'_>, fetched: Fetched) -> InstallSummary {
    InstallSummary {
        total_packages: fetched.stored.len() as u64,
        downloaded: fetched.downloaded,
        reused: fetched.reused,
        bytes_downloaded: fetched.bytes,
        metadata_bytes_downloaded: Some(fetched.metadata_bytes),
        from_remote_cache: (fetched.from_remote > 0).then_some(fetched.from_remote),
        timings: vec![timing(v1::Phase::Fetch, fetched.millis)],
        total_millis: run.started.elapsed().as_millis() as u64,
        lockfile_written: false,
        up_to_date: false,
        ..Default::default()
    }
}

/// `--package-lock-only`: write package-lock.json from the tree and nothing else.
pub(super) fn lock_only(run: &Run<'_>, inputs: &Inputs, record: &Record) -> Result<InstallSummary> {
    let req = run.req;
    let written = !req.frozen && !req.no_lockfile && blocking(|| write_lock(&record.tree, inputs))?;
    Ok(InstallSummary {
        lockfile_written: written,
        total_packages: (record.tree.nodes.len() - 1) as u64,
        timings: vec![timing(v1::Phase::Resolve, record.millis)],
        total_millis: run.started.elapsed().as_millis() as u64,
        ..Default::default()
    })
}

/// Write package-lock.json from `tree` when its bytes differ. Returns whether it changed.
fn write_lock(tree: &Tree, inputs: &Inputs) -> Result<bool> {
    let omit = inputs.cfg.get("omit-lockfile-registry-resolved") == Some("true");
    let bytes = lockfile::render_tree(tree, &inputs.project.pkg_json, omit, inputs.lock.as_deref());
    if inputs.lock_bytes() == Some(bytes.as_slice()) {
        return Ok(false);
    }
    crate::atomic::write_atomic(&inputs.lock_path, &bytes)?;
    Ok(true)
}

fn timing(phase: v1::Phase, millis: u64) -> PhaseTiming {
    PhaseTiming {
        phase: phase as i32,
        millis,
    }
}
