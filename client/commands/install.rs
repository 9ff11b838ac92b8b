//! The install family: `install`, `ci`, `add`, `remove`, `update`. Each builds one
//! `InstallRequest`; `send` forwards it, renders the streamed events and runs the scripts the
//! daemon lists (the project's `preinstall` first, as npm does).
//!
//! Must not: decide anything about the install itself (the daemon does).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use hoard_proto::v1::{self, InstallRequest, InstallSummary, install_event::Event};

use crate::cli::{Cli, InstallFlags, LayoutArg, LinkArg, SaveFlags};
use crate::connect::{self, ConnectError};
use crate::context::{Unreachable, connect, project_dir, request_env, store_dir};
use crate::render::{Mode, Renderer};
use crate::scripts;

/// `hoard install` (and `hoard ci` with `frozen`).
pub async fn install(cli: &Cli, flags: &InstallFlags, frozen: bool) -> Result<u8> {
    let mut req = request(&project_dir(cli)?, flags)?;
    req.frozen = frozen;
    send(cli, req, flags.ignore_scripts).await
}

/// `hoard fetch`: fill the store from package-lock.json alone (package.json is not needed).
pub async fn fetch(cli: &Cli, flags: &InstallFlags) -> Result<u8> {
    let mut req = request(&project_dir(cli)?, flags)?;
    req.fetch_only = Some(true);
    // Nothing is linked, so no script runs.
    send(cli, req, true).await
}

/// `hoard add` (and `hoard install <pkg…>`): `save` says where package.json gets them.
pub async fn add(
    cli: &Cli,
    packages: &[String],
    save: SaveFlags,
    flags: &InstallFlags,
) -> Result<u8> {
    let kind = if save.dev {
        v1::DependencyKind::Dev
    } else if save.optional {
        v1::DependencyKind::Optional
    } else {
        v1::DependencyKind::Prod
    };
    let mut req = request(&project_dir(cli)?, flags)?;
    req.add = packages.to_vec();
    req.add_kind = kind as i32;
    req.save_exact = save.exact;
    send(cli, req, flags.ignore_scripts).await
}

/// `hoard remove`.
pub async fn remove(cli: &Cli, packages: &[String], flags: &InstallFlags) -> Result<u8> {
    let mut req = request(&project_dir(cli)?, flags)?;
    req.remove = packages.to_vec();
    send(cli, req, flags.ignore_scripts).await
}

/// `hoard update [names]`: all dependencies when no name is given.
pub async fn update(cli: &Cli, names: &[String], flags: &InstallFlags) -> Result<u8> {
    let mut req = request(&project_dir(cli)?, flags)?;
    if names.is_empty() {
        req.update_all = true;
    } else {
        req.update = names.to_vec();
    }
    send(cli, req, flags.ignore_scripts).await
}

pub fn request(project: &Path, f: &InstallFlags) -> Result<InstallRequest> {
    for o in &f.omit {
        if o != "dev" {
            bail!("--omit={o} is not supported (only --omit=dev)");
        }
    }
    // Settings given as flags go to the daemon as npm does with them: as configuration above
    // every .npmrc.
    let mut env = request_env();
    for (key, value) in [
        ("npm_config_min_release_age", &f.min_release_age),
        ("npm_config_minimum_release_age", &f.minimum_release_age),
        ("npm_config_before", &f.before),
    ] {
        if let Some(v) = value {
            env.insert(key.to_string(), v.clone());
        }
    }
    if f.ignore_scripts {
        env.insert("npm_config_ignore_scripts".into(), "true".into());
    }
    Ok(InstallRequest {
        project_dir: project.display().to_string(),
        network: if f.offline {
            v1::NetworkMode::Offline
        } else if f.prefer_offline {
            v1::NetworkMode::PreferOffline
        } else {
            v1::NetworkMode::Online
        } as i32,
        omit_dev: f.production || f.omit.iter().any(|o| o == "dev"),
        link_method: match f.link {
            LinkArg::Auto => v1::LinkMethod::Auto,
            LinkArg::Reflink => v1::LinkMethod::Reflink,
            LinkArg::Hardlink => v1::LinkMethod::Hardlink,
            LinkArg::Copy => v1::LinkMethod::Copy,
        } as i32,
        layout: match f.layout {
            None | Some(LayoutArg::Hoisted) => v1::Layout::Hoisted,
            Some(LayoutArg::Isolated) => v1::Layout::Isolated,
            Some(LayoutArg::Global) => v1::Layout::Global,
        } as i32,
        // Without --layout the project's own setting decides.
        layout_forced: f.layout.is_some().then_some(true),
        no_lockfile: f.no_package_lock,
        package_lock_only: f.package_lock_only.then_some(true),
        force: f.force,
        env,
        ..Default::default()
    })
}

/// Send an install request, render its events, run the listed scripts.
pub async fn send(cli: &Cli, req: InstallRequest, ignore_scripts: bool) -> Result<u8> {
    let mode = Mode::pick(cli.json, cli.quiet);
    // The project's own `preinstall` runs before anything is linked, as npm runs it.
    let plain = req.add.is_empty() && req.remove.is_empty() && req.package_lock_only != Some(true);
    if !ignore_scripts && plain {
        scripts::run_root_preinstall(
            Path::new(&req.project_dir),
            !matches!(mode, Mode::Quiet | Mode::Json),
            mode == Mode::Json,
        )?;
    }
    let mut retried = false;
    let summary = loop {
        match stream_install(cli, &req, mode).await? {
            Outcome::Done(s) => break s,
            Outcome::Cancelled => return Ok(130),
            // The daemon found its store index damaged, set it aside and is stopping: once,
            // wait for it to go and send the request to a new one.
            Outcome::Retry(why) if !retried => {
                retried = true;
                if mode != Mode::Json {
                    eprintln!("hoard: {why}: retrying with a new daemon");
                }
                connect::wait_released(&store_dir(cli)?, Duration::from_secs(30)).await;
            }
            Outcome::Retry(why) => bail!("{why}"),
        }
    };
    if !ignore_scripts && !summary.scripts.is_empty() {
        let root = PathBuf::from(&req.project_dir);
        for s in &summary.scripts {
            if mode != Mode::Quiet && mode != Mode::Json {
                eprintln!("> {}@{} {}: {}", s.package, s.version, s.event, s.command);
            }
            scripts::run(&scripts::ScriptRun {
                dir: Path::new(&s.path),
                root: &root,
                package: &s.package,
                version: &s.version,
                event: &s.event,
                command: &s.command,
                npm_command: "install",
                args: &[],
                quiet_stdout: mode == Mode::Json,
            })?;
        }
    }
    Ok(0)
}

/// The daemon went away in the middle of a request.
fn gone(detail: &str) -> anyhow::Error {
    Unreachable(ConnectError::Unreachable(format!(
        "the daemon stopped answering during the install ({detail}); the project may be half \
         installed: run the install again (see `hoard daemon logs` for why)"
    )))
    .into()
}

/// How one attempt at an install ended.
enum Outcome {
    Done(InstallSummary),
    Cancelled,
    /// The daemon asks for the request again (it is restarting).
    Retry(String),
}

/// Send `req` to the daemon and render its events until the summary.
async fn stream_install(cli: &Cli, req: &InstallRequest, mode: Mode) -> Result<Outcome> {
    let mut conn = connect(cli).await?;
    let mut r = Renderer::new(mode, cli.verbose);
    r.fetch_only = req.fetch_only == Some(true);
    let resp = conn
        .client
        .install(req.clone())
        .await
        .map_err(|s| anyhow!("{}", s.message()))?;
    // Older daemons name no operation: Ctrl-C then drops the stream, as it always did.
    let op_id = (resp.metadata().get(hoard_proto::OPERATION_ID_HEADER))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut stream = resp.into_inner();
    let mut summary: Option<InstallSummary> = None;
    let mut cancelling = false;
    loop {
        let msg = tokio::select! {
            m = stream.message() => m,
            _ = tokio::signal::ctrl_c() => {
                // First Ctrl-C: ask the daemon to cancel and hear what really happened.
                if let (Some(id), false) = (&op_id, cancelling) {
                    cancelling = true;
                    r.note("hoard: cancelling (Ctrl-C again to stop waiting)");
                    let mut c = conn.client.clone();
                    let operation_id = id.clone();
                    tokio::spawn(async move {
                        let _ = c
                            .cancel_operation(v1::CancelOperationRequest { operation_id })
                            .await;
                    });
                    continue;
                }
                drop(stream);
                r.finish(None);
                eprintln!("hoard: cancelled");
                return Ok(Outcome::Cancelled);
            }
        };
        match msg {
            Ok(Some(ev)) => {
                if let Some(e) = &ev.event {
                    r.event(e);
                    if let Event::Summary(s) = e {
                        summary = Some(s.clone());
                    }
                    if let Event::Finished(f) = e
                        && let Some(note) = &f.cancel
                        && mode != Mode::Json
                    {
                        r.note(&format!("hoard: {note}"));
                    }
                }
            }
            Err(status) if cancelling && status.code() == tonic::Code::Cancelled => {
                r.finish(None);
                return Ok(Outcome::Cancelled);
            }
            Ok(None) => break,
            Err(status)
                if status
                    .metadata()
                    .contains_key(hoard_proto::RETRY_METADATA_KEY) =>
            {
                r.finish(None);
                return Ok(Outcome::Retry(status.message().to_string()));
            }
            // The daemon's own errors carry a code; a transport failure (the daemon died or
            // closed the connection) is `Unknown`: the daemon is unreachable, exit 3.
            Err(status) if status.code() == tonic::Code::Unknown => {
                r.finish(None);
                return Err(gone(status.message()));
            }
            Err(status) => {
                r.finish(None);
                return Err(anyhow!("{}", status.message()));
            }
        }
    }
    r.finish(summary.as_ref());
    summary
        .map(Outcome::Done)
        .ok_or_else(|| gone("the stream ended without a summary"))
}
