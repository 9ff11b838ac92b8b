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
pub fn ls(project: &Path, depth: usize, json: bool) -> Result<u8> {
    lsview::ls(project, depth, json)?;
    Ok(0)
}

/// `hoard why <name>`.
pub fn why(project: &Path, name: &str, json: bool) -> Result<u8> {
    lsview::why(project, name, json)?;
    Ok(0)
}

fn sync_word(p: &v1::ProjectInfo) -> String {
    match v1::SyncState::try_from(p.sync_state).unwrap_or(v1::SyncState::Unspecified) {
        v1::SyncState::InSync => "in sync".into(),
        v1::SyncState::NeedsInstall => format!("needs install: {}", p.reason),
        v1::SyncState::NotInstalled => "not installed".into(),
        v1::SyncState::Gone => "gone".into(),
        v1::SyncState::Unspecified => "unknown".into(),
    }
}

fn project_json(p: &v1::ProjectInfo) -> serde_json::Value {
    let state = v1::SyncState::try_from(p.sync_state)
        .map(|s| s.as_str_name())
        .unwrap_or("SYNC_STATE_UNSPECIFIED");
    json!({"path": p.path, "last_install_unix": p.last_install_unix, "packages": p.packages,
           "sync_state": state, "reason": p.reason})
}

/// `hoard projects`.
pub async fn projects(cli: &Cli) -> Result<u8> {
    let mut conn = connect(cli).await?;
    let r = conn
        .client
        .list_projects(v1::ListProjectsRequest {})
        .await
        .map_err(|s| anyhow!("{}", s.message()))?
        .into_inner();
    for p in &r.projects {
        if cli.json {
            json_line(project_json(p));
        } else {
            println!("{}  ({} packages; {})", p.path, p.packages, sync_word(p));
        }
    }
    if r.projects.is_empty() && !cli.json {
        println!("no project installed with this store yet");
    }
    Ok(0)
}

/// `hoard status`: exit 0 when the project is in sync, 1 when not.
pub async fn status(cli: &Cli) -> Result<u8> {
    let dir = project_dir(cli)?;
    let mut conn = connect(cli).await?;
    let r = conn
        .client
        .project_status(v1::ProjectStatusRequest {
            project_dir: dir.display().to_string(),
        })
        .await
        .map_err(|s| anyhow!("{}", s.message()))?
        .into_inner();
    let p = r.project.unwrap_or_default();
    if cli.json {
        json_line(project_json(&p));
    } else {
        println!("{}", sync_word(&p));
    }
    Ok(u8::from(p.sync_state != v1::SyncState::InSync as i32))
}

/// `hoard query <selector>`: npm's JSON array, as `npm query` prints it.
pub async fn query(
    cli: &Cli,
    selector: &str,
    expect_results: bool,
    package_lock_only: bool,
) -> Result<u8> {
    let project = project_dir(cli)?;
    let mut conn = connect(cli).await?;
    let r = conn
        .client
        .query(v1::QueryRequest {
            project_dir: project.display().to_string(),
            selector: selector.to_string(),
            env: request_env(),
            package_lock_only: package_lock_only.then_some(true),
        })
        .await
        .map_err(|s| anyhow!("{}", s.message()))?
        .into_inner();
    let items = r
        .items
        .iter()
        .map(|i| serde_json::from_str(&i.npm_json))
        .collect::<Result<Vec<serde_json::Value>, _>>()?;
    println!("{}", serde_json::to_string_pretty(&items)?);
    Ok(u8::from(expect_results && items.is_empty()))
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
                json!({"name": p.name, "current": p.current, "wanted": p.wanted, "latest": p.latest, "type": p.dependency_type, "dependency_type": p.dependency_type}),
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
