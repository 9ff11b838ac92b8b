//! Part of stage 3: the advisory gate. With `audit-level` set (and `audit` not false), the tree
//! about to be installed is checked against the registry's advisories before anything is linked:
//! a version with an advisory at or above the level is refused, and a malware advisory is
//! refused whatever the level. Without `audit-level` nothing is asked: npm only reports after
//! installing, and a round trip on every install would cost warm installs most of their time.
//!
//! Must not: change the tree.

use super::audit::advisories_for;
use super::context::Run;
use super::inputs::Inputs;
use crate::advisories;
use crate::error::{HoardError, Result};
use crate::tree::Tree;

pub(super) async fn gate(run: &Run<'_>, inputs: &Inputs, tree: &Tree) -> Result<()> {
    let cfg = &inputs.cfg;
    let Some(setting) = cfg.get("audit-level") else {
        return Ok(());
    };
    if cfg.flag("audit") == Some(false) {
        return Ok(());
    }
    let level = advisories::level(setting).map_err(HoardError::InvalidInput)?;
    let found = advisories_for(
        &run.installer.registry,
        cfg,
        inputs.network,
        tree,
        run.req.omit_dev,
    )
    .await?;
    for url in &found.without_endpoint {
        run.em
            .warn(
                "audit-unavailable",
                "",
                format!(
                    "{url} has no advisory endpoint, so audit-level={setting} could not be \
                     checked for its packages"
                ),
            )
            .await;
    }
    let blocked: Vec<String> = found
        .advisories
        .iter()
        .filter(|a| a.malware || level.is_some_and(|l| advisories::rank(&a.severity) >= l))
        .map(|a| {
            let fix = match (a.fix_in_range.as_str(), a.fix_outside_range.as_str()) {
                ("", "") => "no fixed version".to_string(),
                ("", out) => format!("fixed in {out}, outside the range asked for"),
                (within, _) => format!("fixed in {within} (`hoard update {}`)", a.name),
            };
            format!(
                "{}@{}: {}{} — {} ({}); {fix}",
                a.name,
                a.version,
                if a.malware { "MALWARE, " } else { "" },
                a.severity,
                a.title,
                a.url
            )
        })
        .collect();
    if blocked.is_empty() {
        return Ok(());
    }
    Err(HoardError::Refused(format!(
        "{} package version(s) have advisories at or above audit-level={setting} (malware \
         always counts); nothing was installed:\n  - {}",
        blocked.len(),
        blocked.join("\n  - ")
    )))
}
