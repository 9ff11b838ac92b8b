//! `hoard install-scripts ls|approve|deny|prune` (the InstallScripts RPC): the installed
//! packages with install scripts (from package-lock.json, their scripts read from the store) and
//! their verdicts under npm's policy; approvals and denials written to package.json's
//! `allowScripts` exactly as `npm install-scripts` writes them (`crate::allow_scripts`).
//!
//! Must not: install, download, or touch anything but package.json's `allowScripts` field.

use std::collections::BTreeMap;

use hoard_proto::v1;
use serde_json::{Map, Value};

use super::audit::locked_tree;
use super::context::{Installer, blocking};
use super::inputs::project_dir;
use super::scripts::{git_prepare_script, package_install_scripts};
use crate::allow_scripts::{self, Change, Identity, Policy, Verdict};
use crate::error::{HoardError, Result};
use crate::project::{self, Project};
use crate::registry::config::NpmConfig;
use crate::tree::NodeKind;

use v1::InstallScriptsAction as Action;

/// One installed package with install scripts.
struct Installed {
    id: Identity,
    version: String,
    location: String,
    scripts: Vec<(String, String)>,
}

impl Installer {
    /// The InstallScripts RPC.
    pub async fn install_scripts(
        &self,
        req: v1::InstallScriptsRequest,
    ) -> Result<v1::InstallScriptsResponse> {
        let dir = project_dir(&req.project_dir)?;
        let project = blocking(|| Project::load(&dir))?;
        let cfg = blocking(|| NpmConfig::load(&dir, &req.env));
        let mut warnings = Vec::new();
        let (installed, all_ids) = self.installed(&project, &cfg, &mut warnings).await?;
        let action = Action::try_from(req.action).unwrap_or(Action::Ls);
        let mut field: Map<String, Value> = project
            .pkg_json
            .get("allowScripts")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let before = field.clone();
        let policy = Policy::load(&project.pkg_json, &cfg);
        if policy.source == allow_scripts::Source::HoardField {
            // The first edit moves hoard's older entries to npm's field, which then wins.
            if let Some(old) = project.pkg_json["hoard"]["allowScripts"].as_object() {
                field.extend(old.clone());
            }
        }
        warnings.extend(policy.warnings.iter().cloned());
        let unreviewed: Vec<&Installed> = installed
            .iter()
            .filter(|p| policy.verdict(&p.id, false) == Verdict::Unreviewed)
            .collect();
        let mut changes: Vec<v1::ScriptChange> = Vec::new();
        let mut record = |name: &str, cs: Vec<Change>| {
            changes.extend(cs.into_iter().map(|c| v1::ScriptChange {
                key: c.key,
                change: c.change.to_string(),
                package: name.to_string(),
            }))
        };
        match action {
            Action::Ls => {}
            Action::Approve | Action::Deny => {
                let names = chosen(&req, &installed, &unreviewed, &mut warnings)?;
                let pin = req
                    .pin
                    .unwrap_or_else(|| cfg.flag("allow-scripts-pin").unwrap_or(true));
                for (name, ids) in names {
                    if action == Action::Approve {
                        let (cs, w) = allow_scripts::approve(&mut field, &ids, pin);
                        warnings.extend(w);
                        record(&name, cs);
                    } else {
                        record(&name, allow_scripts::deny(&mut field, &ids[0]));
                    }
                }
            }
            Action::Prune => {
                let cs = allow_scripts::prune(&mut field, &all_ids);
                for c in cs {
                    record(&c.key.clone(), vec![c]);
                }
            }
        }
        let written = action != Action::Ls && field != before && !req.dry_run;
        if written {
            write_field(&project, field.clone())?;
        }
        // Verdicts after the change (what the next install will do).
        let mut json = project.pkg_json.clone();
        json["allowScripts"] = Value::Object(field);
        let after = Policy::load(&json, &cfg);
        Ok(v1::InstallScriptsResponse {
            packages: installed.iter().map(|p| to_proto(p, &after)).collect(),
            changes,
            warnings,
            written,
        })
    }

    /// Installed packages with install scripts (by name, then location), and every installed
    /// package's identity with whether it has scripts (for prune).
    async fn installed(
        &self,
        project: &Project,
        cfg: &NpmConfig,
        warnings: &mut Vec<String>,
    ) -> Result<(Vec<Installed>, Vec<(Identity, bool)>)> {
        let (lock, tree) = locked_tree(project, cfg, "review its install scripts")?;
        let entries = lock.get("packages").and_then(Value::as_object);
        let mut out = Vec::new();
        let mut all = Vec::new();
        let mut missing = 0;
        let inert = crate::optional_set::inert(&tree);
        for (i, n) in tree.nodes.iter().enumerate() {
            let NodeKind::Package { version, .. } = &n.kind else {
                continue;
            };
            if n.in_bundle || !n.platform_ok || inert.contains(&i) {
                continue;
            }
            // npm trusts only a `resolved` written in the lockfile itself.
            let resolved = entries
                .and_then(|e| e.get(&n.location))
                .and_then(|e| e.get("resolved"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let id = Identity::of(n.real_name(), version, resolved);
            let Some(t) = n.tarball_ref(cfg, &project.dir) else {
                continue;
            };
            let scripts = match self.store.ensure(&t, &self.registry.http, true).await {
                Ok(p) => {
                    let store = self.store.clone();
                    let m = n.manifest.clone();
                    let resolved = resolved.to_string();
                    blocking(move || {
                        let mut s = package_install_scripts(&store, &p, &m);
                        s.extend(git_prepare_script(&store, &p, &resolved));
                        s
                    })
                }
                Err(_) => {
                    if n.manifest.install_scripts() {
                        missing += 1;
                    }
                    continue;
                }
            };
            all.push((id.clone(), !scripts.is_empty()));
            if !scripts.is_empty() {
                out.push(Installed {
                    id,
                    version: version.clone(),
                    location: n.location.clone(),
                    scripts,
                });
            }
        }
        if missing > 0 {
            warnings.push(format!(
                "{missing} locked package(s) with install scripts are not in the store, so their \
                 scripts cannot be shown; run `hoard install` first"
            ));
        }
        out.sort_by(|a, b| (&a.id.name, &a.location).cmp(&(&b.id.name, &b.location)));
        Ok((out, all))
    }
}

/// The packages an approve or deny acts on, grouped by name: the named ones, or with `all`
/// every unreviewed one.
fn chosen(
    req: &v1::InstallScriptsRequest,
    installed: &[Installed],
    unreviewed: &[&Installed],
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, Vec<Identity>>> {
    let mut out: BTreeMap<String, Vec<Identity>> = BTreeMap::new();
    if req.all {
        for p in unreviewed {
            out.entry(p.id.name.clone()).or_default().push(p.id.clone());
        }
        return Ok(out);
    }
    if req.packages.is_empty() {
        return Err(HoardError::InvalidInput(
            "name the packages (`hoard install-scripts approve <pkg>…`), or pass --all".into(),
        ));
    }
    for name in &req.packages {
        // `pkg@1.2.3` names the package; the installed versions are what get pinned.
        let bare = match name.strip_prefix('@') {
            Some(rest) => rest.find('@').map_or(name.as_str(), |i| &name[..i + 1]),
            None => name.split('@').next().unwrap_or(name),
        };
        let ids: Vec<Identity> = installed
            .iter()
            .filter(|p| p.id.name == bare)
            .map(|p| p.id.clone())
            .collect();
        if ids.is_empty() {
            warnings.push(format!(
                "{bare} is not installed with install scripts in this project; nothing to change"
            ));
            continue;
        }
        out.insert(bare.to_string(), ids);
    }
    Ok(out)
}

fn to_proto(p: &Installed, policy: &Policy) -> v1::ScriptPackage {
    v1::ScriptPackage {
        name: p.id.name.clone(),
        version: p.version.clone(),
        location: p.location.clone(),
        scripts: p
            .scripts
            .iter()
            .map(|(event, command)| v1::ScriptCommand {
                event: event.clone(),
                command: command.clone(),
            })
            .collect(),
        verdict: match policy.verdict(&p.id, false) {
            Verdict::Allowed => v1::ScriptVerdict::Allowed,
            Verdict::Denied => v1::ScriptVerdict::Denied,
            Verdict::Unreviewed => v1::ScriptVerdict::Unreviewed,
        } as i32,
    }
}

/// Write `allowScripts` into package.json, keeping its formatting and the field's place (a new
/// field goes last, as npm puts it).
fn write_field(project: &Project, field: Map<String, Value>) -> Result<()> {
    let mut json = project.pkg_json.clone();
    let Some(obj) = json.as_object_mut() else {
        return Err(HoardError::InvalidInput(format!(
            "{} is not a JSON object",
            project.dir.join("package.json").display()
        )));
    };
    if field.is_empty() {
        obj.shift_remove("allowScripts");
    } else {
        obj.insert("allowScripts".into(), Value::Object(field));
    }
    let bytes = project::render_like(&json, &project.pkg_bytes)?;
    crate::atomic::write_atomic(&project.dir.join("package.json"), &bytes)
}
