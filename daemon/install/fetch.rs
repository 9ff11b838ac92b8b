//! Stage 4 of an install: every package the tree installs is made present in the store (from the
//! index, or one coalesced download and import each, 128 at once), counting what was downloaded
//! for this install and what was reused. An optional package that fails is left out with a
//! warning; any other failure fails the install.
//!
//! Must not: touch node_modules.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures_util::StreamExt;
use hoard_proto::v1;
use tracing::{Instrument, info_span};

use super::context::Run;
use super::inputs::Inputs;
use crate::error::{HoardError, Result};
use crate::registry::Network;
use crate::store::StoredPackage;
use crate::tree::{NodeKind, Tree};

/// The tree's packages in the store, by node index.
pub(super) struct Fetched {
    pub stored: HashMap<usize, Arc<StoredPackage>>,
    /// Packages downloaded for this install (possibly by the early download at pick time).
    pub downloaded: u64,
    pub reused: u64,
    /// Tarball and metadata bytes downloaded for this install.
    pub bytes: u64,
    pub millis: u64,
}

/// Nodes this install puts into node_modules: registry and tarball packages that fit this
/// platform, are not inside a bundle, are reachable, and are not dev when dev is omitted.
fn to_install(tree: &Tree, omit_dev: bool) -> Result<Vec<usize>> {
    let unreachable = tree.unreachable();
    let install: Vec<usize> = (1..tree.nodes.len())
        .filter(|&i| {
            let n = &tree.nodes[i];
            matches!(n.kind, NodeKind::Package { .. })
                && !n.in_bundle
                && n.platform_ok
                && !(omit_dev && n.dev)
                && !unreachable.contains(&i)
        })
        .collect();
    for &i in &install {
        if let NodeKind::Package { resolved, .. } = &tree.nodes[i].kind
            && resolved.is_empty()
        {
            return Err(HoardError::Lockfile(format!(
                "{} has no tarball URL",
                tree.nodes[i].pkg_id()
            )));
        }
    }
    Ok(install)
}

/// Fetch every package `tree` installs into the store (cancellable).
pub(super) async fn fetch(run: &Run<'_>, inputs: &Inputs, tree: &Tree) -> Result<Fetched> {
    let started = Instant::now();
    let install = to_install(tree, run.req.omit_dev)?;
    let total = install.len() as u64;
    let offline = inputs.network == Network::Offline;
    let span = info_span!("fetch", packages = total);
    let jobs = install.into_iter().map(|i| {
        let t = tree.nodes[i].tarball_ref(&inputs.cfg, &inputs.dir);
        let store = run.installer.store.clone();
        let http = run.installer.registry.http.clone();
        async move {
            let r = match t {
                Some(t) => store.ensure(&t, &http, offline).await,
                None => Err(HoardError::Internal("not a registry package".into())),
            };
            (i, r)
        }
        .instrument(span.clone())
    });
    let mut stream = futures_util::stream::iter(jobs).buffer_unordered(128);
    let mut out = Fetched {
        stored: HashMap::new(),
        downloaded: 0,
        reused: 0,
        bytes: 0,
        millis: 0,
    };
    let mut done = 0u64;
    loop {
        let next = tokio::select! {
            n = stream.next() => n,
            _ = run.cancel.cancelled() => return Err(HoardError::Cancelled("while fetching".into())),
        };
        let Some((i, r)) = next else { break };
        done += 1;
        match r {
            Ok(p) => out.count(run, i, p),
            Err(e) if tree.nodes[i].optional => {
                let id = tree.nodes[i].pkg_id();
                let msg = format!("optional {id} skipped: {e}");
                // Left out of `stored`: the plan skips it.
                run.em.warn("optional-skipped", &id, msg).await;
            }
            Err(e) => return Err(e),
        }
        if done.is_multiple_of(8) || done == total {
            (run.em)
                .progress(v1::Phase::Fetch, done, total, out.bytes, false)
                .await;
        }
    }
    (run.em)
        .progress(v1::Phase::Fetch, done, total, out.bytes, true)
        .await;
    // Metadata fetched by concurrent installs may be counted here too.
    out.bytes += (run.installer.registry.bytes_downloaded)
        .load(Ordering::Relaxed)
        .saturating_sub(run.metadata_before);
    out.millis = started.elapsed().as_millis() as u64;
    Ok(out)
}

impl Fetched {
    fn count(&mut self, run: &Run<'_>, i: usize, p: Arc<StoredPackage>) {
        if p.imported_at.is_some_and(|t| t >= run.started) {
            self.downloaded += 1;
            self.bytes += p.bytes_downloaded;
        } else {
            self.reused += 1;
        }
        self.stored.insert(i, p);
    }
}

/// Fill in integrity the lock lacked, from the store. Returns whether any was filled.
pub(super) fn fill_integrity(tree: &mut Tree, stored: &HashMap<usize, Arc<StoredPackage>>) -> bool {
    let mut filled = false;
    for (&i, p) in stored {
        if let NodeKind::Package { integrity, .. } = &mut tree.nodes[i].kind
            && integrity.is_none()
        {
            *integrity = Some(p.integrity.clone());
            filled = true;
        }
    }
    filled
}
