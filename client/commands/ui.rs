//! `hoard ui`: asks the daemon for its dashboard (started on first use) and opens it: the
//! project's page when run in a project, else the overview. The address carries the session's
//! token; it is printed either way.
//!
//! Must not: serve anything itself (the daemon does).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Result, anyhow};
use hoard_proto::v1;
use serde_json::json;

use crate::cli::Cli;
use crate::context::{connect, project_dir};
use crate::render::json_line;

/// The project to show: the working (or `-C`) folder when it holds package.json or a lockfile.
fn project(cli: &Cli) -> Option<PathBuf> {
    let dir = project_dir(cli).ok()?;
    (dir.join("package.json").is_file() || dir.join("package-lock.json").is_file()).then_some(dir)
}

pub async fn ui(cli: &Cli, no_open: bool) -> Result<u8> {
    let mut conn = connect(cli).await?;
    let project = project(cli);
    let r = conn
        .client
        .dashboard(v1::DashboardRequest {
            project_dir: project.as_ref().map(|p| p.display().to_string()),
        })
        .await
        .map_err(|s| anyhow!("{}", s.message()))?
        .into_inner();
    if cli.json {
        json_line(json!({"url": r.url, "port": r.port}));
    } else {
        println!("hoard dashboard: {}", r.url);
    }
    if !no_open && let Err(why) = open(&r.url) {
        eprintln!("hoard: could not open a browser ({why}); open the address above");
    }
    Ok(0)
}

/// Open `url` with `$BROWSER`, else the platform's opener; the browser is not waited for.
fn open(url: &str) -> std::result::Result<(), String> {
    let opener = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| {
            if cfg!(target_os = "macos") {
                "open"
            } else {
                "xdg-open"
            }
            .to_string()
        });
    Command::new(&opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| format!("`{opener}`: {e}"))
}
