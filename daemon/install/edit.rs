//! package.json edits of `hoard add` / `hoard remove`: added registry specs are resolved to the
//! version they pick and saved as `^version` (exact with `--save-exact` or an exact spec), as npm
//! saves them; git specs as npm saves them (hosted repositories as `github:u/r#ref`, under the
//! name their package.json gives when the argument names none); other specs (file, URLs) as
//! given. The file keeps its indentation
//! and key order.
//!
//! Must not: install anything (the stages after `inputs` do).

use hoard_proto::v1::{self, InstallRequest};

use super::context::{Run, blocking};
use crate::error::{HoardError, Result};
use crate::project::{self, Project};
use crate::registry::Network;
use crate::registry::config::NpmConfig;
use crate::spec::{Spec, split_arg};

/// Apply the request's `add`/`remove` to package.json.
pub(super) async fn apply(
    run: &Run<'_>,
    project: &Project,
    cfg: &NpmConfig,
    network: Network,
) -> Result<()> {
    let req = run.req;
    let mut pkg = project.pkg_json.clone();
    let section = section_of(req);
    for arg in &req.add {
        let (name, save) = match crate::git::GitSpec::parse(arg) {
            Some(git) => {
                let git = git.map_err(HoardError::InvalidInput)?;
                (git_name(run, &git, network).await?, git.saved())
            }
            None => {
                let (name, raw) = split_arg(arg)?;
                let raw = if raw.is_empty() {
                    "latest".to_string()
                } else {
                    raw
                };
                let save = saved_spec(run, &name, &raw, cfg, network).await?;
                (name, save)
            }
        };
        project::set_dependency(&mut pkg, section, &name, &save);
        run.em
            .info(format!("{name}@{save} added to {section}"))
            .await;
    }
    for name in &req.remove {
        if !project::remove_dependency(&mut pkg, name) {
            run.em
                .warn(
                    "not-a-dependency",
                    name,
                    format!("`{name}` is not a dependency in package.json; nothing to remove"),
                )
                .await;
        }
    }
    let bytes = project::render_like(&pkg, &project.pkg_bytes)?;
    blocking(|| crate::atomic::write_atomic(&project.dir.join("package.json"), &bytes))
}

/// The name a git dependency added without one (`hoard add github:u/r`) is saved under: its
/// package.json's, as npm does.
async fn git_name(run: &Run<'_>, git: &crate::git::GitSpec, network: Network) -> Result<String> {
    let offline = network == Network::Offline;
    let prepared = (run.installer.store.git)
        .prepare_blocking(git, offline, None)
        .await?;
    let name = prepared.manifest.get("name").and_then(|n| n.as_str());
    let name = name.unwrap_or_default().to_string();
    crate::spec::validate_name(&name).map_err(|e| HoardError::Git {
        repo: git.repo(),
        message: format!("its package.json: {e}"),
    })?;
    Ok(name)
}

fn section_of(req: &InstallRequest) -> &'static str {
    match v1::DependencyKind::try_from(req.add_kind).unwrap_or(v1::DependencyKind::Prod) {
        v1::DependencyKind::Prod => "dependencies",
        v1::DependencyKind::Dev => "devDependencies",
        v1::DependencyKind::Optional => "optionalDependencies",
        v1::DependencyKind::Peer => "peerDependencies",
    }
}

/// What package.json gets for `name@raw`.
async fn saved_spec(
    run: &Run<'_>,
    name: &str,
    raw: &str,
    cfg: &NpmConfig,
    network: Network,
) -> Result<String> {
    let spec = Spec::parse(name, raw)?;
    let (real, inner) = match &spec {
        Spec::Alias { name, spec } => (name.clone(), (**spec).clone()),
        s @ (Spec::Range(_) | Spec::Tag(_)) => (name.to_string(), s.clone()),
        Spec::Git(g) => return Ok(g.saved()),
        _ => return Ok(raw.to_string()),
    };
    let p = run
        .installer
        .registry
        .packument(&real, cfg, network)
        .await?;
    let cooldown = crate::cooldown::Cooldown::from_config(cfg, crate::resolve::now_ms())
        .map_err(HoardError::InvalidInput)?;
    let before = cooldown.as_ref().and_then(|c| c.cutoff_for(&real));
    let Some(m) = crate::pick::pick(&p, &inner, None, None, before) else {
        if let Some(msg) = cooldown
            .as_ref()
            .and_then(|c| crate::pick::too_young_message(&p, &real, &inner, c))
        {
            return Err(HoardError::Resolve(msg));
        }
        return Err(HoardError::Resolve(format!(
            "no version of `{real}` matches `{raw}`; dist-tags: {}",
            p.dist_tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let exact = run.req.save_exact || crate::semver_npm::parse_version(raw).is_some();
    // npm's `save-prefix` (`^` unless set; `~`, or empty for exact).
    let prefix = cfg.get("save-prefix").unwrap_or("^");
    let v = if exact {
        m.version.clone()
    } else {
        format!("{prefix}{}", m.version)
    };
    Ok(if matches!(spec, Spec::Alias { .. }) {
        format!("npm:{real}@{v}")
    } else {
        v
    })
}
