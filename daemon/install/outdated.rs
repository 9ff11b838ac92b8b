//! `hoard outdated`: the project's direct dependencies whose installed version (from
//! package-lock.json) is not the one their range wants now, or not the registry's `latest`.
//!
//! Must not: change the project.

use std::collections::HashMap;

use hoard_proto::v1;

use super::context::{Installer, blocking};
use super::inputs::{network_of, project_dir};
use crate::error::{HoardError, Result};
use crate::lockfile;
use crate::project::Project;
use crate::registry::config::NpmConfig;
use crate::spec::Spec;

impl Installer {
    /// `hoard outdated`: direct dependencies with a newer wanted or latest version.
    pub async fn outdated(&self, req: v1::OutdatedRequest) -> Result<v1::OutdatedResponse> {
        let dir = project_dir(&req.project_dir)?;
        let project = blocking(|| Project::load(&dir))?;
        let cfg = blocking(|| NpmConfig::load(&dir, &req.env));
        let network = network_of(req.network);
        let installed: HashMap<String, String> =
            blocking(|| lockfile::parse_json_file(&dir.join(lockfile::FILE)))?
                .and_then(|(v, _)| v.get("packages").and_then(|p| p.as_object()).cloned())
                .map(|p| {
                    p.iter()
                        .filter_map(|(k, e)| {
                            let name = k.strip_prefix("node_modules/")?;
                            (!name.contains("/node_modules/")).then(|| {
                                Some((name.to_string(), e.get("version")?.as_str()?.to_string()))
                            })?
                        })
                        .collect()
                })
                .unwrap_or_default();
        let m = &project.manifest;
        let cooldown = crate::cooldown::Cooldown::from_config(&cfg, crate::resolve::now_ms())
            .map_err(HoardError::InvalidInput)?;
        let mut out = Vec::new();
        for (section, deps) in [
            ("dependencies", &m.dependencies),
            ("devDependencies", &m.dev_dependencies),
            ("optionalDependencies", &m.optional_dependencies),
        ] {
            for (name, raw) in deps {
                let (real, inner) = match Spec::parse(name, raw)? {
                    Spec::Alias { name, spec } => (name, *spec),
                    s @ (Spec::Range(_) | Spec::Tag(_)) => (name.clone(), s),
                    _ => continue,
                };
                let p = self.registry.packument(&real, &cfg, network).await?;
                let before = cooldown.as_ref().and_then(|c| c.cutoff_for(&real));
                let wanted = crate::pick::pick(&p, &inner, None, None, before)
                    .map(|m| m.version.clone())
                    .unwrap_or_default();
                let latest = p.dist_tags.get("latest").cloned().unwrap_or_default();
                let current = installed.get(name).cloned().unwrap_or_default();
                if current != wanted || current != latest {
                    out.push(v1::OutdatedPackage {
                        name: name.clone(),
                        current,
                        wanted,
                        latest,
                        dependency_type: section.to_string(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v1::OutdatedResponse { packages: out })
    }
}
