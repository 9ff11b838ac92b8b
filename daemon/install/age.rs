//! Part of stage 3: the release-age cooldown applied to a tree taken from package-lock.json.
//! Resolution never picks a version younger than the cooldown, but a lockfile written without it
//! (by a teammate, or before the setting) may hold one: each locked registry version's
//! publication time is looked up (cached metadata first), and a too-young one is a warning, or
//! an error under `hoard ci`.
//!
//! Must not: change the tree (the lockfile is the plan of record; the user decides).

use futures_util::StreamExt;

use super::context::Run;
use super::inputs::Inputs;
use crate::cooldown::{Cooldown, time_text};
use crate::error::{HoardError, Result};
use crate::registry::Network;
use crate::tree::{NodeKind, Tree};

/// Packument lookups in flight at once.
const PARALLEL: usize = 32;

/// Warn about (or, frozen, refuse) locked versions published after the cooldown's cutoff.
pub(super) async fn check_locked(run: &Run<'_>, inputs: &Inputs, tree: &Tree) -> Result<()> {
    let Some(cooldown) = Cooldown::from_config(&inputs.cfg, crate::resolve::now_ms())
        .map_err(HoardError::InvalidInput)?
    else {
        return Ok(());
    };
    let mut locked: Vec<(String, String)> = tree
        .nodes
        .iter()
        .filter_map(|n| match &n.kind {
            NodeKind::Package {
                real_name,
                version,
                resolved,
                ..
            } if !n.in_bundle
                && crate::tree::is_registry_resolved(resolved)
                && cooldown.cutoff_for(real_name).is_some() =>
            {
                Some((real_name.clone(), version.clone()))
            }
            _ => None,
        })
        .collect();
    locked.sort();
    locked.dedup();
    let young: Vec<String> = futures_util::stream::iter(locked)
        .map(|(name, version)| published(run, inputs, name, version))
        .buffer_unordered(PARALLEL)
        .filter_map(|r| async move {
            let (name, version, t) = r.ok()??;
            (t > cooldown.cutoff_ms).then(|| format!("{name}@{version} ({})", time_text(t)))
        })
        .collect()
        .await;
    if young.is_empty() {
        return Ok(());
    }
    let mut young = young;
    young.sort();
    let msg = format!(
        "package-lock.json holds {} version{} published after {} ({}): {}",
        young.len(),
        if young.len() == 1 { "" } else { "s" },
        cooldown.cutoff_text(),
        cooldown.setting,
        young.join(", ")
    );
    if run.req.frozen {
        return Err(HoardError::Lockfile(format!(
            "{msg}; `hoard ci` refuses them. Wait until they are old enough, or run `hoard \
             update <name>` to lock older versions"
        )));
    }
    run.em
        .warn(
            "too-young",
            "",
            format!("{msg}; they are installed as locked (`hoard update <name>` locks older ones)"),
        )
        .await;
    Ok(())
}

/// When `name@version` was published: from cached metadata when it knows the version, else
/// fetched. None when the registry records no time for it (npm lets such a version pass).
async fn published(
    run: &Run<'_>,
    inputs: &Inputs,
    name: String,
    version: String,
) -> Result<Option<(String, String, i64)>> {
    let registry = &run.installer.registry;
    let relaxed = match inputs.network {
        Network::Online => Network::PreferOffline,
        n => n,
    };
    let mut p = registry.packument(&name, &inputs.cfg, relaxed).await?;
    if relaxed != inputs.network && !p.sorted.iter().any(|e| *e.raw == version) {
        // Published after the cached document was fetched.
        p = registry
            .packument(&name, &inputs.cfg, inputs.network)
            .await?;
    }
    let t = p
        .sorted
        .iter()
        .find(|e| *e.raw == version)
        .and_then(|e| e.published);
    Ok(t.map(|t| (name, version, t)))
}
