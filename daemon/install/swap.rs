//! Stage 2b of an install: an install prepared ahead of time (`prepare`) for exactly these
//! inputs waits in node_modules: swap it in
//! (`linker::swap`), and answer (the project was registered for the store's GC when it was
//! prepared).
//!
//! Must not: build anything; when anything is off, leave it to the ordinary stages.

use hoard_proto::v1::{self, InstallSummary};

use super::context::{Run, blocking};
use super::inputs::Inputs;
use super::scripts;
use crate::error::Result;
use crate::linker::state::prepared_root;
use crate::linker::{self, Layout};

/// The summary of a swapped-in install, or `None` when there is none to swap in.
pub(super) async fn swap(run: &Run<'_>, inputs: &Inputs) -> Result<Option<InstallSummary>> {
    let req = run.req;
    let ci_checks_ages = req.frozen && inputs.cfg.wants_publish_times();
    if inputs.layout != Layout::Global || req.force || inputs.lock_only || ci_checks_ages {
        return Ok(None);
    }
    let root = prepared_root(&inputs.dir);
    let Some(state) = blocking(|| linker::state::read_state_head(&root)) else {
        return Ok(None);
    };
    if state.inputs != inputs.hash {
        return Ok(None);
    }
    // Its slots are still in the store: prune keeps a prepared install's slots, and verify,
    // when it removes a damaged one, removes the prepared installs that link it. The project
    // was registered with these packages when it was prepared.
    run.point_of_no_return()?;
    blocking(|| linker::swap::adopt(&inputs.dir))?;
    // Written by `prepare`, which always counts.
    let total = state.package_count.unwrap_or_default();
    Ok(Some(InstallSummary {
        added: total,
        total_packages: total,
        link_method: v1::LinkMethod::Hardlink as i32,
        scripts: scripts::root_scripts(inputs),
        prepared: Some(true),
        total_millis: run.started.elapsed().as_millis() as u64,
        ..Default::default()
    }))
}
