//! Part of stage 3: the registry signatures of a freshly resolved tree (`verify-signatures`:
//! `warn`, the default, `require` or `off`). Checked when a version's integrity is about to enter
//! package-lock.json: from then on the lockfile's integrity pins the bytes, and an install from
//! the lockfile fetches no metadata to check again. A bad signature always fails the install,
//! naming package, version, keyid and registry; a missing one (from a registry that publishes
//! keys) warns, or fails under `require`. Registries that publish no keys are skipped, as npm
//! skips them.
//!
//! Must not: change the tree, or fetch anything but the keys (the metadata is in memory).

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::context::{Run, blocking};
use super::inputs::Inputs;
use crate::error::{HoardError, Result};
use crate::registry::Network;
use crate::registry::packument::DistSignature;
use crate::signatures::{self, Check, Mode, Signed};
use crate::tree::{NodeKind, Tree};

/// What one version brings to the check.
struct Claim {
    name: String,
    version: String,
    integrity: Option<String>,
    signatures: Vec<DistSignature>,
    published: Option<i64>,
}

pub(super) async fn check_tree(run: &Run<'_>, inputs: &Inputs, tree: &Tree) -> Result<()> {
    let mode = Mode::from_setting(inputs.cfg.get("verify-signatures"))
        .map_err(HoardError::InvalidInput)?;
    if mode == Mode::Off {
        return Ok(());
    }
    let mut by_registry: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, n) in tree.nodes.iter().enumerate() {
        if let NodeKind::Package {
            real_name,
            resolved,
            ..
        } = &n.kind
            && !n.in_bundle
            && crate::tree::is_registry_resolved(resolved)
        {
            let registry = inputs.cfg.registry_for(real_name);
            by_registry.entry(registry).or_default().push(i);
        }
    }
    let registry = &run.installer.registry;
    let offline = inputs.network == Network::Offline;
    for (url, nodes) in by_registry {
        let Some(keys) = registry.keys.of(&url, &inputs.cfg, offline).await? else {
            continue;
        };
        let mut claims = Vec::with_capacity(nodes.len());
        for i in nodes {
            let n = &tree.nodes[i];
            let name = n.real_name().to_string();
            let version = n.version().to_string();
            // In memory since resolution picked it; the full document (with times) only when a
            // key that signed it expires, so its publication time decides.
            let sigs = &n.manifest.dist.signatures;
            let expiring = sigs.iter().any(|s| {
                keys.iter()
                    .any(|k| k.keyid == s.keyid && k.expires.is_some())
            });
            let when = |p: std::sync::Arc<crate::registry::compact::Packument>| {
                p.sorted.iter().find(|e| *e.raw == version)?.published
            };
            let mut published = registry
                .packument(&name, &inputs.cfg, Network::PreferOffline)
                .await
                .ok()
                .and_then(when);
            if published.is_none() && expiring {
                let net = if offline {
                    Network::Offline
                } else {
                    Network::PreferOffline
                };
                published = registry
                    .packument_with_times(&name, &inputs.cfg, net)
                    .await
                    .ok()
                    .and_then(when);
            }
            claims.push(Claim {
                integrity: n.manifest.dist.integrity.clone(),
                signatures: n.manifest.dist.signatures.clone(),
                name,
                version,
                published,
            });
        }
        let checks: Vec<(String, Check)> = blocking(|| {
            claims
                .par_iter()
                .map(|c| {
                    let s = Signed {
                        name: &c.name,
                        version: &c.version,
                        integrity: c.integrity.as_deref(),
                        signatures: &c.signatures,
                        published: c.published,
                    };
                    (
                        format!("{}@{}", c.name, c.version),
                        signatures::check(&s, &keys),
                    )
                })
                .collect()
        });
        report(run, &url, mode, checks).await?;
    }
    Ok(())
}

async fn report(
    run: &Run<'_>,
    registry: &str,
    mode: Mode,
    checks: Vec<(String, Check)>,
) -> Result<()> {
    let mut invalid: Vec<String> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    for (id, c) in checks {
        match c {
            Check::Verified => {}
            Check::Missing => missing.push(id),
            Check::Invalid(why) => invalid.push(why),
        }
    }
    invalid.sort();
    missing.sort();
    if !invalid.is_empty() {
        return Err(HoardError::Refused(format!(
            "{} package(s) from {registry} failed the registry signature check:\n  - {}\nSomeone \
             might have tampered with them since they were published on the registry; nothing \
             was installed. (`verify-signatures=off` in .npmrc turns the check off.)",
            invalid.len(),
            invalid.join("\n  - ")
        )));
    }
    if missing.is_empty() {
        return Ok(());
    }
    let msg = format!(
        "{} package(s) have no registry signature, but {registry} publishes signing keys: {}",
        missing.len(),
        missing.join(", ")
    );
    if mode == Mode::Require {
        return Err(HoardError::Refused(format!(
            "{msg}; `verify-signatures=require` refuses them"
        )));
    }
    run.em.warn("signature-missing", "", msg).await;
    Ok(())
}
