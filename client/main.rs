//! `hoard`: the thin client. Parses the command line (`cli`) and dispatches to the command
//! families (`commands`); they find or start the daemon (`connect`), forward the request over
//! gRPC on the Unix socket, render the streamed progress (`render`), run the scripts the daemon
//! lists (`scripts`), and map the outcome to an exit code.
//!
//! Exit codes: 0 ok; 1 the operation failed; 2 usage error; 3 the daemon is unreachable;
//! 130 cancelled with Ctrl-C. Must not: link SQLite, the HTTP client or tar (see README).

mod cli;
mod commands;
mod connect;
mod context;
mod lsview;
mod npm_defaults;
mod npm_env;
mod platform;
mod render;
mod scripts;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use serde_json::json;

use cli::{Cli, Command};
use commands::{approve, audit, daemon, inspect, install, run, store, ui};
use context::{Unreachable, project_dir};
use render::json_line;

/// A reader that goes away (`hoard daemon status | head -1`) ends hoard quietly, as it ends
/// other tools (ripgrep's rule: exit 0), instead of println!'s panic. SIGPIPE itself stays
/// ignored: the client's sockets must see EPIPE as an error, not die of it.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hoard: {e}");
            return ExitCode::from(1);
        }
    };
    let json = cli.json;
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = if e.downcast_ref::<Unreachable>().is_some() {
                3
            } else if let Some(s) = e.downcast_ref::<scripts::ScriptFailed>() {
                // `hoard run` exits as the script did, as `npm run` does.
                s.code
            } else {
                1
            };
            if json {
                json_line(json!({"type": "error", "message": format!("{e:#}"), "exit_code": code}));
            }
            eprintln!("hoard: error: {e:#}");
            ExitCode::from(code)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<u8> {
    match &cli.command {
        Command::Install {
            packages,
            save,
            flags,
        } if !packages.is_empty() => install::add(&cli, packages, *save, flags).await,
        Command::Install { flags, .. } => install::install(&cli, flags, false).await,
        Command::Ci(f) => install::install(&cli, f, true).await,
        Command::Fetch(f) => install::fetch(&cli, f).await,
        Command::Add {
            packages,
            save,
            flags,
        } => install::add(&cli, packages, *save, flags).await,
        Command::Remove { packages, flags } => install::remove(&cli, packages, flags).await,
        Command::Update { names, flags } => install::update(&cli, names, flags).await,
        Command::Run { script, args } => run::run_script(&project_dir(&cli)?, script, args),
        Command::Exec { bin, args } => run::exec(&project_dir(&cli)?, bin, args),
        Command::Dlx { package, args } => run::dlx(&cli, package, args).await,
        Command::Ls { depth, all } => inspect::ls(
            &project_dir(&cli)?,
            if *all { usize::MAX } else { *depth },
            cli.json,
        ),
        Command::Why { name } => inspect::why(&project_dir(&cli)?, name, cli.json),
        Command::Query {
            selector,
            expect_results,
            package_lock_only,
        } => inspect::query(&cli, selector, *expect_results, *package_lock_only).await,
        Command::Outdated { offline } => inspect::outdated(&cli, *offline).await,
        Command::Publish {
            tag,
            access,
            dry_run,
        } => {
            let args = commands::share::PublishArgs {
                tag: tag.as_deref(),
                access: access.as_deref(),
                dry_run: *dry_run,
            };
            commands::share::publish(&cli, args).await
        }
        Command::Login { registry, scope } => {
            commands::share::login(&cli, registry.as_deref(), scope.as_deref()).await
        }
        Command::Whoami { registry, scope } => {
            commands::share::whoami(&cli, registry.as_deref(), scope.as_deref()).await
        }
        Command::Logout { registry, scope } => {
            commands::share::logout(&cli, registry.as_deref(), scope.as_deref()).await
        }
        Command::Init { yes: _ } => commands::project::init(&project_dir(&cli)?),
        Command::Version {
            what,
            preid,
            no_git_tag_version,
            allow_same_version,
        } => {
            let args = commands::project::VersionArgs {
                what: what.as_deref(),
                preid: preid.as_deref(),
                no_git_tag_version: *no_git_tag_version,
                allow_same_version: *allow_same_version,
            };
            commands::project::version(&cli, &project_dir(&cli)?, args)
        }
        Command::View { spec, fields } => commands::lookup::view(&cli, spec, fields).await,
        Command::Search { words, searchlimit } => {
            commands::lookup::search(&cli, words, *searchlimit).await
        }
        Command::Pack {
            dry_run,
            pack_destination,
        } => commands::pack::pack(&cli, *dry_run, pack_destination.as_deref()).await,
        Command::InstallScripts { action } => approve::install_scripts(&cli, action).await,
        Command::ApproveScripts(a) => approve::approve(&cli, a).await,
        Command::DenyScripts(d) => approve::deny(&cli, d).await,
        Command::ApproveBuilds => approve::approve_builds(&cli).await,
        Command::Audit {
            what,
            audit_level,
            omit,
            offline,
        } => audit::audit(&cli, *what, audit_level.as_deref(), omit, *offline).await,
        Command::Ui { no_open } => ui::ui(&cli, *no_open).await,
        Command::Projects => inspect::projects(&cli).await,
        Command::Status => inspect::status(&cli).await,
        Command::Daemon { action } => daemon::daemon(&cli, action).await,
        Command::Store { action } => store::store(&cli, action).await,
    }
}
