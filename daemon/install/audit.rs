//! `hoard audit` and `hoard audit signatures` (the Audit RPC) over the tree package-lock.json
//! installs, and the advisory query the install's gate shares (`advisories_for`).
//!
//! Signatures are checked as `npm audit signatures` checks them: each registry package's
//! signatures against its registry's keys over the integrity the lockfile installs, and
//! attestations' subjects against the package and that integrity (sigstore bundles themselves
//! are not verified). Advisories come from each registry's bulk endpoint.
//!
//! Must not: change the project or the store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures_util::StreamExt;
use hoard_proto::v1;

use super::context::{Installer, blocking};
use super::inputs::{network_of, project_dir};
use crate::advisories;
use crate::error::{HoardError, Result};
use crate::lockfile;
use crate::project::Project;
use crate::registry::config::NpmConfig;
use crate::registry::keys::SigningKey;
use crate::registry::{Network, Registry};
use crate::signatures::{self, Check, Signed};
use crate::tree::{NodeKind, Tree};

/// Lookups in flight at once.
const PARALLEL: usize = 32;

/// A registry package of the tree: (name, version, integrity, locations).
struct Installed {
    name: String,
    version: String,
    integrity: Option<String>,
    locations: Vec<String>,
}

/// Registry packages of `tree` by registry, one entry per name@version.
fn installed(tree: &Tree, cfg: &NpmConfig, omit_dev: bool) -> BTreeMap<String, Vec<Installed>> {
    let mut by: BTreeMap<String, BTreeMap<(String, String), Installed>> = BTreeMap::new();
    for n in &tree.nodes {
        let NodeKind::Package {
            real_name,
            version,
            resolved,
            integrity,
        } = &n.kind
        else {
            continue;
        };
        if n.in_bundle
            || !n.platform_ok
            || (omit_dev && n.dev)
            || !crate::tree::is_registry_resolved(resolved)
        {
            continue;
        }
        let e = by
            .entry(cfg.registry_for(real_name))
            .or_default()
            .entry((real_name.clone(), version.clone()))
            .or_insert_with(|| Installed {
                name: real_name.clone(),
                version: version.clone(),
                integrity: integrity.clone(),
                locations: Vec::new(),
            });
        e.locations.push(n.location.clone());
    }
    by.into_iter()
        .map(|(r, m)| (r, m.into_values().collect()))
        .collect()
}

/// The ranges that ask for `name` anywhere in the tree.
fn ranges_for(tree: &Tree, name: &str) -> Vec<String> {
    let mut out: Vec<String> = tree
        .nodes
        .iter()
        .flat_map(|n| n.edges.iter())
        .filter(|e| e.name == name)
        .map(|e| e.spec.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What the advisory endpoints say of a tree.
pub(super) struct Found {
    pub advisories: Vec<v1::Advisory>,
    pub audited: u64,
    pub without_endpoint: Vec<String>,
}

/// Ask every registry of `tree` about its packages.
pub(super) async fn advisories_for(
    registry: &Arc<Registry>,
    cfg: &NpmConfig,
    network: Network,
    tree: &Tree,
    omit_dev: bool,
) -> Result<Found> {
    let mut found = Found {
        advisories: Vec::new(),
        audited: 0,
        without_endpoint: Vec::new(),
    };
    for (url, list) in installed(tree, cfg, omit_dev) {
        found.audited += list.len() as u64;
        let mut asked: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for p in &list {
            asked
                .entry(p.name.clone())
                .or_default()
                .insert(p.version.clone());
        }
        let endpoint = advisories::bulk_endpoint(&url);
        let body = registry
            .http
            .post_json(
                &endpoint,
                cfg.auth_for(&endpoint).as_deref(),
                advisories::request_body(&asked),
                "advisories",
            )
            .await?;
        let Some(body) = body else {
            found.without_endpoint.push(url);
            continue;
        };
        let answer = advisories::parse(&body)
            .map_err(|e| HoardError::Registry(format!("{endpoint}: {e}")))?;
        for p in &list {
            let Some(advs) = answer.get(&p.name) else {
                continue;
            };
            let Some(v) = crate::semver_npm::parse_version(&p.version) else {
                continue;
            };
            let hits: Vec<&advisories::Raw> = advs.iter().filter(|a| a.affects(&v)).collect();
            if hits.is_empty() {
                continue;
            }
            let (within, outside) = match registry.packument(&p.name, cfg, network).await {
                Ok(pk) => advisories::fixes(&pk, &v, advs, &ranges_for(tree, &p.name)),
                Err(_) => (None, None),
            };
            for a in hits {
                found.advisories.push(v1::Advisory {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    locations: p.locations.clone(),
                    id: a.id,
                    title: a.title.clone(),
                    url: a.url.clone(),
                    severity: a.severity.clone(),
                    vulnerable_versions: a.vulnerable_versions.clone(),
                    cwe: a.cwe.clone(),
                    malware: a.malware(),
                    fix_in_range: within.clone().unwrap_or_default(),
                    fix_outside_range: outside.clone().unwrap_or_default(),
                });
            }
        }
    }
    found.advisories.sort_by(|a, b| {
        (advisories::rank(&b.severity), &a.name, &a.version).cmp(&(
            advisories::rank(&a.severity),
            &b.name,
            &b.version,
        ))
    });
    Ok(found)
}

/// package-lock.json and its tree; a missing lockfile is an error saying to install first, then
/// do `then`.
pub fn locked_tree(
    project: &Project,
    cfg: &NpmConfig,
    then: &str,
) -> Result<(serde_json::Value, Tree)> {
    let lock_path = project.dir.join(lockfile::FILE);
    let Some((lock, _)) = blocking(|| lockfile::parse_json_file(&lock_path))? else {
        return Err(HoardError::NotFound(format!(
            "{} does not exist; run `hoard install` first, then {then}",
            lock_path.display()
        )));
    };
    let ws = project.workspace_map();
    let tree = blocking(|| lockfile::tree_from_lock(&lock, project.manifest.clone(), &ws, cfg))?;
    Ok((lock, tree))
}

impl Installer {
    /// The Audit RPC.
    pub async fn audit(&self, req: v1::AuditRequest) -> Result<v1::AuditResponse> {
        let dir = project_dir(&req.project_dir)?;
        let project = blocking(|| Project::load(&dir))?;
        let cfg = blocking(|| NpmConfig::load(&dir, &req.env));
        let network = network_of(req.network);
        let (_, tree) = locked_tree(&project, &cfg, "audit what it installs")?;
        if req.kind == v1::AuditKind::Signatures as i32 {
            return self
                .audit_signatures(&tree, &cfg, network, req.omit_dev)
                .await;
        }
        let found = advisories_for(&self.registry, &cfg, network, &tree, req.omit_dev).await?;
        Ok(v1::AuditResponse {
            advisories: found.advisories,
            audited: found.audited,
            registries_without_endpoint: found.without_endpoint,
            audit_level: cfg.get("audit-level").map(str::to_string),
            ..Default::default()
        })
    }

    async fn audit_signatures(
        &self,
        tree: &Tree,
        cfg: &NpmConfig,
        network: Network,
        omit_dev: bool,
    ) -> Result<v1::AuditResponse> {
        let mut out = v1::AuditResponse::default();
        for (url, list) in installed(tree, cfg, omit_dev) {
            out.audited += list.len() as u64;
            let keys = self
                .registry
                .keys
                .of(&url, cfg, network == Network::Offline)
                .await?;
            if keys.is_none() {
                out.registries_without_endpoint.push(url.clone());
            }
            let reports: Vec<v1::SignatureReport> = futures_util::stream::iter(list)
                .map(|p| self.signature_report(p, &url, keys.clone(), cfg, network))
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
            out.signatures.extend(reports);
        }
        out.signatures
            .sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        Ok(out)
    }

    /// One package's signatures and attestations.
    async fn signature_report(
        &self,
        p: Installed,
        registry: &str,
        keys: Option<Arc<Vec<SigningKey>>>,
        cfg: &NpmConfig,
        network: Network,
    ) -> v1::SignatureReport {
        let mut r = v1::SignatureReport {
            name: p.name.clone(),
            version: p.version.clone(),
            registry: registry.to_string(),
            ..Default::default()
        };
        let pk = match self
            .registry
            .packument_with_times(&p.name, cfg, network)
            .await
        {
            Ok(pk) => pk,
            Err(e) => {
                r.status = v1::SignatureStatus::Invalid as i32;
                r.message = format!(
                    "{}@{}: its metadata could not be read: {e}",
                    p.name, p.version
                );
                return r;
            }
        };
        let Some(entry) = pk.sorted.iter().position(|e| *e.raw == p.version) else {
            r.status = v1::SignatureStatus::Invalid as i32;
            r.message = format!("{}@{} is not in the registry's metadata", p.name, p.version);
            return r;
        };
        let published = pk.sorted[entry].published;
        let Some(m) = pk.manifest_at(entry) else {
            return r;
        };
        let integrity = p.integrity.clone().or_else(|| m.dist.integrity.clone());
        if let Some(keys) = &keys {
            let s = Signed {
                name: &p.name,
                version: &p.version,
                integrity: integrity.as_deref(),
                signatures: &m.dist.signatures,
                published,
            };
            match signatures::check(&s, keys) {
                Check::Verified => r.status = v1::SignatureStatus::Verified as i32,
                Check::Missing => r.status = v1::SignatureStatus::Missing as i32,
                Check::Invalid(why) => {
                    r.status = v1::SignatureStatus::Invalid as i32;
                    r.message = why;
                }
            }
        } else {
            r.status = v1::SignatureStatus::NoKeys as i32;
        }
        if let Some(att) = &m.dist.attestations
            && let Some(integrity) = &integrity
        {
            match self.attestations(&att.url, registry, cfg).await {
                Ok(doc) => {
                    match signatures::check_attestations(&doc, &p.name, &p.version, integrity) {
                        Ok(types) => r.attestations = types,
                        Err(why) => r.attestation_problem = why,
                    }
                }
                Err(e) => r.attestation_problem = format!("{}@{}: {e}", p.name, p.version),
            }
        }
        r
    }

    /// An attestations document, always from the current registry's host (npm's rule).
    async fn attestations(&self, url: &str, registry: &str, cfg: &NpmConfig) -> Result<Vec<u8>> {
        let path = url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or(url);
        let origin = registry
            .split_once("://")
            .map(|(scheme, rest)| format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest)))
            .unwrap_or_default();
        let full = format!("{origin}{path}");
        let (resp, _permit) = self
            .registry
            .http
            .get(
                crate::registry::http::Lane::Metadata,
                &full,
                cfg.auth_for(&full).as_deref(),
                None,
                "attestations",
            )
            .await?;
        let b = resp
            .bytes()
            .await
            .map_err(|e| HoardError::Registry(format!("reading {full}: {e}")))?;
        Ok(b.to_vec())
    }
}
