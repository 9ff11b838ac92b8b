//! An install done before it is asked for: the daemon's watcher calls `Installer::prepare` when a
//! project's package.json or lockfile changed. It runs the install's stages with the project's
//! last request: resolution (when the lockfile no longer fits) and downloads always, so the store
//! is warm; and, for the global layout with a lockfile that fits as it is, the whole next
//! node_modules, built in `node_modules/.hoard-next` (its slots in the store first), so that the
//! install the user then runs only swaps it in (`swap`).
//!
//! Must not: change the project: not package.json, not the lockfile, not node_modules outside
//! the prepared folder (whose creation keeps the no-op check holding, `state::restamp`).

use std::sync::Arc;

use hoard_proto::v1::InstallRequest;
use tokio_util::sync::CancellationToken;

use super::context::{Installer, Run, blocking};
use super::{fetch, inputs, link, record, scripts};
use crate::error::{HoardError, Result};
use crate::linker::state::{NEXT, prepared_root};
use crate::linker::{self, Layout};

/// What preparing did.
#[derive(Debug, Default)]
pub struct Prepared {
    /// Nothing to do: node_modules already matches.
    pub up_to_date: bool,
    /// The next node_modules is built and waits to be swapped in.
    pub ready: bool,
    /// Packages of the next install (all now in the store).
    pub packages: u64,
}

impl Installer {
    /// Prepare the next install of `req`'s project (see the module comment). `out_of_date` is
    /// called once it is clear that node_modules does not match.
    pub async fn prepare(
        self: &Arc<Self>,
        mut req: InstallRequest,
        cancel: CancellationToken,
        out_of_date: impl FnOnce(),
    ) -> Result<Prepared> {
        // Never an edit: only what the files on disk say.
        req.add.clear();
        req.remove.clear();
        req.update.clear();
        req.update_all = false;
        req.force = false;
        let (tx, _) = tokio::sync::mpsc::channel(1);
        let (req, settings) = blocking(|| super::with_settings(req))?;
        let gate = Arc::new(crate::operations::Gate::default());
        let run = Run::new(self, &req, tx, cancel, gate, settings);
        let mut inputs = inputs::read(&run).await?;
        let dir = inputs.dir.clone();
        let current = blocking(|| linker::state::read_state_head(&dir));
        if current.is_some_and(|s| s.inputs == inputs.hash)
            && blocking(|| linker::state::holds(&dir))
        {
            return Ok(Prepared {
                up_to_date: true,
                ..Default::default()
            });
        }
        out_of_date();
        let memo = &self.lock_memo;
        let remembered = blocking(|| inputs.parse_lock_remembered(memo, &req))?;
        if inputs.lock_only {
            return Ok(Prepared::default());
        }
        let record = record::plan_of_record(&run, &inputs, remembered).await?;
        let mut tree = record.tree;
        let fetched = fetch::fetch(&run, &inputs, &tree).await?;
        let filled = fetch::fill_integrity(&mut tree, &fetched.stored);
        let mut out = Prepared {
            packages: fetched.stored.len() as u64,
            ..Default::default()
        };
        // Only a lockfile used as it is can be swapped in without writing it.
        if inputs.layout != Layout::Global || !record.from_lock || filled || record.pruned {
            return Ok(out);
        }
        let scripts = scripts::policy(&run, &inputs, &tree, &fetched.stored).await?;
        if !scripts.copies.is_empty() {
            return Ok(out); // packages whose scripts run are built by the install itself
        }
        let root = prepared_root(&dir);
        blocking(|| fresh_folder(&dir, &root))?;
        let linked = link::link(&run, &inputs, &root, &tree, &fetched, &scripts).await?;
        // Registered now, beside what the project uses today (prune keeps both), so that the
        // install that swaps it in has nothing to write but the state.
        let ids: Vec<i64> = fetched.stored.values().map(|p| p.id).collect();
        let (store, proj) = (self.store.clone(), dir.display().to_string());
        tokio::task::spawn_blocking(move || store.add_project_packages(proj, ids)).await??;
        blocking(|| {
            linker::state::write_hidden_lock(&root, inputs.lock_bytes())?;
            let method = linked.report.method;
            let npmrc = std::fs::read(dir.join(".npmrc")).ok();
            let files = linker::state::input_hashes([
                Some(&inputs.project.pkg_bytes),
                inputs.lock_bytes(),
                npmrc.as_deref(),
            ]);
            linker::state::write_state(&root, &linked.plan, &inputs.hash, method, files)
        })?;
        out.ready = true;
        Ok(out)
    }
}

/// An empty prepared folder (an older one goes), keeping the project's no-op check holding.
fn fresh_folder(project: &std::path::Path, root: &std::path::Path) -> Result<()> {
    let nm = project.join("node_modules");
    let held = linker::state::holds(project);
    let next = nm.join(NEXT);
    if next.exists() {
        std::fs::remove_dir_all(&next).map_err(|e| HoardError::io("removing", &next, e))?;
    }
    std::fs::create_dir_all(root).map_err(|e| HoardError::io("creating directory", root, e))?;
    linker::state::restamp(project, held)
}
