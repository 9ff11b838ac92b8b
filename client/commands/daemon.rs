//! The daemon family: `hoard daemon start | stop | status | restart | logs`.
//!
//! Must not: start a daemon for `status` (it only looks).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use hoard_proto::v1;
use serde_json::json;

use crate::cli::{Cli, DaemonAction};
use crate::connect::{self, ConnectError};
use crate::context::{Unreachable, connect, store_dir};
use crate::render::{self, json_line};

/// Run one `hoard daemon` action.
pub async fn daemon(cli: &Cli, action: &DaemonAction) -> Result<u8> {
    let store = store_dir(cli)?;
    match action {
        DaemonAction::Status => match connect::connect_existing(&store).await {
            Ok(mut c) => {
                let s = c
                    .client
                    .status(v1::StatusRequest {})
                    .await
                    .map_err(|s| anyhow!("{}", s.message()))?
                    .into_inner();
                if cli.json {
                    json_line(json!({
                        "running": true, "pid": c.hello.pid, "version": c.hello.daemon_version,
                        "protocol": c.hello.protocol_version, "socket": c.socket.display().to_string(),
                        "store": c.hello.store_path, "uptime_millis": s.uptime_millis,
                        "requests_in_flight": s.requests_in_flight, "store_bytes": s.store_bytes,
                        "store_files": s.store_files, "store_packages": s.store_packages,
                        "projects": s.projects, "idle_timeout_secs": s.idle_timeout_secs, "log": s.log_path
                    }));
                } else {
                    println!(
                        "running: pid {}, version {}, protocol {}, up {} s, {} requests in flight\nsocket: {}\nstore: {} ({} packages, {} files, {}; {} projects)\nlog: {}\nidle timeout: {} s",
                        c.hello.pid,
                        c.hello.daemon_version,
                        c.hello.protocol_version,
                        s.uptime_millis / 1000,
                        s.requests_in_flight,
                        c.socket.display(),
                        c.hello.store_path,
                        s.store_packages,
                        s.store_files,
                        render::bytes(s.store_bytes),
                        s.projects,
                        s.log_path,
                        s.idle_timeout_secs
                    );
                }
                Ok(0)
            }
            Err(ConnectError::NotRunning { store, socket }) => {
                not_mine(&store)?;
                if cli.json {
                    json_line(
                        json!({"running": false, "socket": socket.display().to_string(), "store": store.display().to_string()}),
                    );
                } else {
                    println!(
                        "not running\nsocket: {}\nstore: {}",
                        socket.display(),
                        store.display()
                    );
                }
                // As `hoard` exits when it cannot reach the daemon.
                Ok(3)
            }
            Err(e) => Err(Unreachable(e).into()),
        },
        DaemonAction::Ensure => {
            let c = crate::context::connect(cli).await?;
            if cli.json {
                json_line(
                    json!({"socket": c.socket.display().to_string(), "store": c.hello.store_path,
                    "pid": c.hello.pid, "protocol_version": c.hello.protocol_version,
                    "capabilities": c.hello.capabilities}),
                );
            } else {
                println!(
                    "socket: {}\nstore: {}\npid: {}",
                    c.socket.display(),
                    c.hello.store_path,
                    c.hello.pid
                );
            }
            Ok(0)
        }
        DaemonAction::Start => {
            let c = connect(cli).await?;
            if cli.json {
                json_line(json!({"running": true, "pid": c.hello.pid}));
            } else if !cli.quiet {
                println!("running: pid {}", c.hello.pid);
            }
            Ok(0)
        }
        DaemonAction::Stop => {
            stop(cli, &store).await?;
            Ok(0)
        }
        DaemonAction::Restart => {
            stop(cli, &store).await?;
            let c = connect(cli).await?;
            if !cli.quiet {
                println!("running: pid {}", c.hello.pid);
            }
            Ok(0)
        }
        DaemonAction::Logs { lines } => {
            let path = hoard_proto::state::log_file(&store);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading `{}`", path.display()))?;
            let all: Vec<&str> = text.lines().collect();
            for l in &all[all.len().saturating_sub(*lines)..] {
                println!("{l}");
            }
            Ok(0)
        }
    }
}

async fn stop(cli: &Cli, store: &Path) -> Result<()> {
    match connect::connect_existing(store).await {
        Ok(mut c) => {
            c.client
                .shutdown(v1::ShutdownRequest {
                    reason: "hoard daemon stop".into(),
                })
                .await
                .map_err(|s| anyhow!("{}", s.message()))?;
            if !connect::wait_released(store, Duration::from_secs(15)).await {
                bail!("the daemon (pid {}) did not stop within 15 s", c.hello.pid);
            }
            if !cli.quiet && !cli.json {
                println!("stopped pid {}", c.hello.pid);
            }
        }
        Err(ConnectError::NotRunning { .. }) => {
            not_mine(store)?;
            if !cli.quiet && !cli.json {
                println!("not running");
            }
        }
        Err(e) => return Err(Unreachable(e).into()),
    }
    Ok(())
}

/// A store of another user is served by that user's daemon, which this user cannot see (its
/// socket is in that user's runtime folder, and it refuses other users): say so, instead of
/// "not running".
fn not_mine(store: &Path) -> Result<()> {
    let Ok(md) = std::fs::metadata(store) else {
        return Ok(());
    };
    if let Some((owner, me)) = crate::platform::owner(&md)
        && me != 0
        && owner != me
    {
        bail!(
            "the store `{}` belongs to uid {owner}, not to you (uid {me}): only that user's \
             daemon serves it, and only that user can stop it",
            store.display(),
        );
    }
    Ok(())
}
