//! Stage 2 of an install: is there nothing to do? node_modules is exactly what the last install
//! left (its state file and mtime say so) and that install had the same inputs; or
//! package-lock.json is gone but the copy node_modules keeps of it still fits, and is written
//! back. Either way the answer is "up to date" without resolving, downloading or linking.
//!
//! Must not: change node_modules.

use hoard_proto::v1::{self, InstallSummary};

use super::context::{Run, blocking};
use super::inputs::{Inputs, fingerprint};
use super::scripts;
use crate::error::Result;
use crate::linker;
use crate::linker::state::StateHead;

/// The summary of an install that has nothing to do, or `None` when it has.
pub(super) async fn check(run: &Run<'_>, inputs: &Inputs) -> Result<Option<InstallSummary>> {
    let req = run.req;
    // `hoard ci` with a release-age cooldown checks the lockfile's versions every time.
    let ci_checks_ages = req.frozen && inputs.cfg.wants_publish_times();
    if req.force || req.update_all || !req.update.is_empty() || ci_checks_ages {
        return Ok(None);
    }
    let nm = inputs.dir.join("node_modules");
    let Some(state) = blocking(|| linker::state::read_state_head(&inputs.dir)) else {
        return Ok(None);
    };
    if state.node_modules_mtime != linker::state::dir_mtime(&nm) {
        return Ok(None);
    }
    let mut summary = InstallSummary::default();
    if state.inputs != inputs.hash {
        if !give_lock_back(run, inputs, &state).await? {
            return Ok(None);
        }
        summary.lockfile_written = true;
    }
    summary.up_to_date = true;
    let count = match state.package_count {
        Some(n) => n,
        // A state written before the count was kept.
        None => blocking(|| linker::state::read_state(&inputs.dir))
            .map_or(0, |s| (s.packages.len() + s.slots.len()) as u64),
    };
    summary.unchanged = count;
    summary.total_packages = count;
    summary.link_method = match state.link_method.as_str() {
        "reflink" => v1::LinkMethod::Reflink,
        "copy" => v1::LinkMethod::Copy,
        _ => v1::LinkMethod::Hardlink,
    } as i32;
    summary.scripts = scripts::root_scripts(inputs);
    summary.total_millis = run.started.elapsed().as_millis() as u64;
    Ok(Some(summary))
}

/// node_modules is exactly what an earlier install left (its state says so) but
/// package-lock.json is gone: when the lockfile that install ended with, kept in node_modules,
/// still fits this package.json and these options, write it back (the store may be empty).
async fn give_lock_back(run: &Run<'_>, inputs: &Inputs, state: &StateHead) -> Result<bool> {
    let req = run.req;
    if inputs.lock_raw.is_some() || req.no_lockfile || req.frozen || !req.add.is_empty() {
        return Ok(false);
    }
    let Some(bytes) = blocking(|| linker::state::read_hidden_lock(&inputs.dir)) else {
        return Ok(false);
    };
    if blocking(|| fingerprint(&inputs.project, Some(&bytes), req, &run.settings)) != state.inputs {
        return Ok(false);
    }
    blocking(|| crate::atomic::write_atomic(&inputs.lock_path, &bytes))?;
    run.em
        .info(
            "node_modules matches its last install: package-lock.json written back from it".into(),
        )
        .await;
    Ok(true)
}
