//! The inspect family: `ls` and `why` (read from package-lock.json, no daemon) and `outdated`
//! (asks the daemon, which reads the registry).
//!
//! Must not: change the project.

use std::path::Path;

use anyhow::{Result, anyhow};
use hoard_proto::v1;
use serde_json::json;

use crate::cli::Cli;
use crate::context::{connect, project_dir, request_env};
use crate::lsview;
use crate::render::json_line;

/// `hoard ls`: to `depth` (usize::MAX for `--all`).
pub fn ls(project: &Path, depth: usize) -> Result<u8> {
    lsview::ls(project, depth)?;
    Ok(0)
}

/// `hoard why <name>`.
pub fn why(project: &Path, name: &str) -> Result<u8> {
    lsview::why(project, name)?;
    Ok(0)
}

/// `hoard outdated`: exit 1 when anything is outdated, as npm.
pub async fn outdated(cli: &Cli, offline: bool) -> Result<u8> {
    let project = project_dir(cli)?;
    let mut conn = connect(cli).await?;
    let r = conn
        .client
        .outdated(v1::OutdatedRequest {
            project_dir: project.display().to_string(),
            env: request_env(),
            network: if offline {
                v1::NetworkMode::Offline
            } else {
                v1::NetworkMode::Online
            } as i32,
        })
        .await
        .map_err(|s| anyhow!("{}", s.message()))?
        .into_inner();
    if cli.json {
        for p in &r.packages {
            json_line(
                json!({"name": p.name, "current": p.current, "wanted": p.wanted, "latest": p.latest, "type": p.dependency_type}),
            );
        }
    } else if !r.packages.is_empty() {
        let w = r
            .packages
            .iter()
            .map(|p| p.name.len())
            .max()
            .unwrap_or(7)
            .max(7);
        println!(
            "{:w$}  {:10}  {:10}  {:10}  type",
            "package", "current", "wanted", "latest"
        );
        for p in &r.packages {
            let cur = if p.current.is_empty() {
                "missing"
            } else {
                &p.current
            };
            println!(
                "{:w$}  {:10}  {:10}  {:10}  {}",
                p.name, cur, p.wanted, p.latest, p.dependency_type
            );
        }
    }
    Ok(if r.packages.is_empty() { 0 } else { 1 })
}
