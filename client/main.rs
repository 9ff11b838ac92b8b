//! `hoard`: the thin client. Parses the command line, finds or starts the daemon, forwards the
//! request over gRPC on the Unix socket, renders the streamed progress, runs the scripts the
//! daemon lists, and maps the outcome to an exit code.
//!
//! Exit codes: 0 ok; 1 the operation failed; 2 usage error; 3 the daemon is unreachable;
//! 130 cancelled with Ctrl-C. Must not: link SQLite, the HTTP client or tar (see README).

mod connect;
mod lsview;
mod render;
mod scripts;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use hoard_proto::v1::{self, InstallRequest, InstallSummary, install_event::Event};
use serde_json::json;

use connect::ConnectError;
use render::{Mode, Renderer, json_line};

#[derive(Parser, Debug)]
#[command(
    name = "hoard",
    version,
    about = "A fast, safe npm package installer",
    propagate_version = true
)]
struct Cli {
    /// Run as if started in this directory.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The store directory (default: $XDG_DATA_HOME/hoard/store).
    #[arg(long, global = true, env = "HOARD_STORE_DIR", value_name = "DIR")]
    store_dir: Option<PathBuf>,
    /// One JSON object per line on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Only errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// More detail (phase timings, every deprecation).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone, Default)]
struct InstallFlags {
    /// Never touch the network; fail on anything missing from the store or metadata cache.
    #[arg(long)]
    offline: bool,
    /// Use cached metadata of any age; go online only for what is missing.
    #[arg(long)]
    prefer_offline: bool,
    /// Leave out a dependency type (only `dev` is supported, as --omit=dev).
    #[arg(long, value_name = "TYPE")]
    omit: Vec<String>,
    /// Same as --omit=dev.
    #[arg(long)]
    production: bool,
    /// How files get into node_modules.
    #[arg(long, value_enum, default_value_t = LinkArg::Auto)]
    link: LinkArg,
    /// node_modules layout.
    #[arg(long, value_enum, default_value_t = LayoutArg::Hoisted)]
    layout: LayoutArg,
    /// Do not write package-lock.json.
    #[arg(long)]
    no_package_lock: bool,
    /// Only resolve and write package-lock.json; download and link nothing.
    #[arg(long)]
    package_lock_only: bool,
    /// Re-link every package even when the project looks up to date.
    #[arg(long)]
    force: bool,
    /// Do not run any lifecycle scripts (neither the project's nor allowed dependencies').
    #[arg(long)]
    ignore_scripts: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, Default)]
enum LinkArg {
    #[default]
    Auto,
    Reflink,
    Hardlink,
    Copy,
}

#[derive(ValueEnum, Debug, Clone, Copy, Default)]
enum LayoutArg {
    #[default]
    Hoisted,
    Isolated,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Install the project's dependencies.
    #[command(visible_alias = "i")]
    Install(InstallFlags),
    /// Add packages to package.json and install.
    Add {
        #[arg(required = true, value_name = "PKG")]
        packages: Vec<String>,
        /// Save to devDependencies.
        #[arg(short = 'D', long = "save-dev")]
        dev: bool,
        /// Save to optionalDependencies.
        #[arg(short = 'O', long = "save-optional")]
        optional: bool,
        /// Save the exact version instead of a ^range.
        #[arg(short = 'E', long = "save-exact")]
        exact: bool,
        #[command(flatten)]
        flags: InstallFlags,
    },
    /// Remove packages from package.json and node_modules.
    #[command(visible_alias = "rm")]
    Remove {
        #[arg(required = true, value_name = "NAME")]
        packages: Vec<String>,
        #[command(flatten)]
        flags: InstallFlags,
    },
    /// Install exactly package-lock.json; fail if it does not match package.json.
    Ci(InstallFlags),
    /// Re-resolve dependencies (all, or the named ones) within their ranges.
    #[command(visible_alias = "up")]
    Update {
        names: Vec<String>,
        #[command(flatten)]
        flags: InstallFlags,
    },
    /// Run a script from package.json.
    #[command(visible_alias = "run-script")]
    Run {
        script: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run a bin from node_modules/.bin.
    Exec {
        bin: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run a package's bin without adding it to the project.
    Dlx {
        /// `name[@range]`
        package: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// List installed packages (from package-lock.json).
    Ls {
        /// How deep to print (default 0: direct dependencies).
        #[arg(long, default_value_t = 0)]
        depth: usize,
        /// Everything (same as a very large --depth).
        #[arg(long)]
        all: bool,
    },
    /// Why is a package installed?
    Why { name: String },
    /// Direct dependencies with newer versions (exit 1 when there are any, like npm).
    Outdated {
        #[arg(long)]
        offline: bool,
    },
    /// The daemon.
    Daemon {
        #[command(subcommand)]
        action: DaemonAction,
    },
    /// The store.
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
}

#[derive(Subcommand, Debug)]
enum DaemonAction {
    /// Start the daemon (if not running) and print its pid.
    Start,
    /// Stop the running daemon.
    Stop,
    /// Whether a daemon runs; never starts one.
    Status,
    /// Stop and start again.
    Restart,
    /// Print the end of the daemon's log.
    Logs {
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
    },
}

#[derive(Subcommand, Debug)]
enum StoreAction {
    /// Size, packages, files and projects.
    Status,
    /// Re-hash every file; remove bad entries so the next install fetches them again.
    Verify {
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove packages no registered project uses.
    Prune {
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the store path.
    Path,
}

/// Exit code 3 for a daemon we cannot reach.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct Unreachable(ConnectError);

fn main() -> ExitCode {
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
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = if e.downcast_ref::<Unreachable>().is_some() {
                3
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

fn store_dir(cli: &Cli) -> Result<PathBuf> {
    let s = match &cli.store_dir {
        Some(s) => s.clone(),
        None => hoard_proto::default_store_dir().ok_or_else(|| {
            anyhow!("no store directory: set HOME or HOARD_STORE_DIR, or pass --store-dir")
        })?,
    };
    std::fs::create_dir_all(&s)
        .with_context(|| format!("creating the store directory `{}`", s.display()))?;
    std::fs::canonicalize(&s).with_context(|| format!("resolving `{}`", s.display()))
}

fn project_dir(cli: &Cli) -> Result<PathBuf> {
    let d = match &cli.dir {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("reading the current directory")?,
    };
    std::fs::canonicalize(&d).with_context(|| format!("project directory `{}`", d.display()))
}

async fn connect(cli: &Cli) -> Result<connect::Connection> {
    let store = store_dir(cli)?;
    connect::connect(&store, cli.verbose)
        .await
        .map_err(|e| Unreachable(e).into())
}

/// The environment the daemon reads npm configuration from.
fn request_env() -> HashMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| {
            let l = k.to_ascii_lowercase();
            l.starts_with("npm_config_")
                || matches!(k.as_str(), "HOME" | "PATH")
                || k.contains("TOKEN")
                || k.contains("NPM")
        })
        .collect()
}

fn install_request(project: &Path, f: &InstallFlags) -> Result<InstallRequest> {
    for o in &f.omit {
        if o != "dev" {
            bail!("--omit={o} is not supported (only --omit=dev)");
        }
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
            LayoutArg::Hoisted => v1::Layout::Hoisted,
            LayoutArg::Isolated => v1::Layout::Isolated,
        } as i32,
        no_lockfile: f.no_package_lock,
        package_lock_only: f.package_lock_only.then_some(true),
        force: f.force,
        env: request_env(),
        ..Default::default()
    })
}

/// Send an install request, render its events, run the listed scripts.
async fn install(cli: &Cli, req: InstallRequest, ignore_scripts: bool) -> Result<u8> {
    let mode = Mode::pick(cli.json, cli.quiet);
    // The project's own `preinstall` runs before anything is linked, as npm runs it.
    let plain = req.add.is_empty() && req.remove.is_empty() && req.package_lock_only != Some(true);
    if !ignore_scripts && plain {
        scripts::run_root_preinstall(
            Path::new(&req.project_dir),
            !matches!(mode, Mode::Quiet | Mode::Json),
        )?;
    }
    let mut conn = connect(cli).await?;
    let mut r = Renderer::new(mode, cli.verbose);
    let mut stream = conn
        .client
        .install(req.clone())
        .await
        .map_err(|s| anyhow!("{}", s.message()))?
        .into_inner();
    let mut summary: Option<InstallSummary> = None;
    loop {
        let msg = tokio::select! {
            m = stream.message() => m,
            _ = tokio::signal::ctrl_c() => {
                drop(stream);
                r.finish(None);
                eprintln!("hoard: cancelled");
                return Ok(130);
            }
        };
        match msg {
            Ok(Some(ev)) => {
                if let Some(e) = &ev.event {
                    r.event(e);
                    if let Event::Summary(s) = e {
                        summary = Some(s.clone());
                    }
                }
            }
            Ok(None) => break,
            Err(status) => {
                r.finish(None);
                return Err(anyhow!("{}", status.message()));
            }
        }
    }
    r.finish(summary.as_ref());
    let Some(summary) = summary else {
        bail!("the daemon ended the install without a summary; see `hoard daemon logs`");
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
            })?;
        }
    }
    Ok(0)
}

async fn run(cli: Cli) -> Result<u8> {
    match &cli.command {
        Command::Install(f) => {
            let req = install_request(&project_dir(&cli)?, f)?;
            install(&cli, req, f.ignore_scripts).await
        }
        Command::Ci(f) => {
            let mut req = install_request(&project_dir(&cli)?, f)?;
            req.frozen = true;
            install(&cli, req, f.ignore_scripts).await
        }
        Command::Add {
            packages,
            dev,
            optional,
            exact,
            flags,
        } => {
            let mut req = install_request(&project_dir(&cli)?, flags)?;
            req.add = packages.clone();
            req.add_kind = if *dev {
                v1::DependencyKind::Dev
            } else if *optional {
                v1::DependencyKind::Optional
            } else {
                v1::DependencyKind::Prod
            } as i32;
            req.save_exact = *exact;
            install(&cli, req, flags.ignore_scripts).await
        }
        Command::Remove { packages, flags } => {
            let mut req = install_request(&project_dir(&cli)?, flags)?;
            req.remove = packages.clone();
            install(&cli, req, flags.ignore_scripts).await
        }
        Command::Update { names, flags } => {
            let mut req = install_request(&project_dir(&cli)?, flags)?;
            if names.is_empty() {
                req.update_all = true;
            } else {
                req.update = names.clone();
            }
            install(&cli, req, flags.ignore_scripts).await
        }
        Command::Run { script, args } => {
            scripts::run_named(&project_dir(&cli)?, script, args)?;
            Ok(0)
        }
        Command::Exec { bin, args } => {
            let code = scripts::exec_bin(&project_dir(&cli)?, bin, args)?;
            Ok(u8::try_from(code).unwrap_or(1))
        }
        Command::Dlx { package, args } => dlx(&cli, package, args).await,
        Command::Ls { depth, all } => {
            lsview::ls(&project_dir(&cli)?, if *all { usize::MAX } else { *depth })?;
            Ok(0)
        }
        Command::Why { name } => {
            lsview::why(&project_dir(&cli)?, name)?;
            Ok(0)
        }
        Command::Outdated { offline } => outdated(&cli, *offline).await,
        Command::Daemon { action } => daemon_cmd(&cli, action).await,
        Command::Store { action } => store_cmd(&cli, action).await,
    }
}

/// `hoard dlx pkg[@range] args`: install into a cache folder keyed by the spec, then run its bin.
async fn dlx(cli: &Cli, package: &str, args: &[String]) -> Result<u8> {
    let store = store_dir(cli)?;
    let key = blake3::hash(package.as_bytes()).to_hex();
    let dir = store.join("dlx").join(&key[..16]);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating `{}`", dir.display()))?;
    let pj = dir.join("package.json");
    if !pj.exists() {
        std::fs::write(&pj, b"{\"name\":\"hoard-dlx\",\"private\":true}\n")
            .with_context(|| format!("writing `{}`", pj.display()))?;
        let mut req = install_request(&dir, &InstallFlags::default())?;
        req.add = vec![package.to_string()];
        if let Err(e) = install(cli, req, true).await {
            let _ = std::fs::remove_file(&pj);
            return Err(e);
        }
    }
    let name = match package.strip_prefix('@') {
        Some(r) => format!("@{}", r.split('@').next().unwrap_or(r)),
        None => package.split('@').next().unwrap_or(package).to_string(),
    };
    let bin_dir = dir.join("node_modules/.bin");
    let base = name.rsplit('/').next().unwrap_or(&name).to_string();
    let bin = if bin_dir.join(&base).exists() {
        base
    } else {
        // The package's only bin, whatever its name.
        let bins: Vec<String> = std::fs::read_dir(&bin_dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        match bins.as_slice() {
            [one] => one.clone(),
            [] => bail!("{package} has no bin to run"),
            many => bail!(
                "{package} has several bins ({}); run one with `hoard exec -C {} <bin>`",
                many.join(", "),
                dir.display()
            ),
        }
    };
    let code = std::process::Command::new(bin_dir.join(&bin))
        .args(args)
        .env("PATH", scripts::path_with_bins(&dir, &dir))
        .status()
        .with_context(|| format!("running `{bin}`"))?
        .code()
        .unwrap_or(1);
    Ok(u8::try_from(code).unwrap_or(1))
}

async fn outdated(cli: &Cli, offline: bool) -> Result<u8> {
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

async fn daemon_cmd(cli: &Cli, action: &DaemonAction) -> Result<u8> {
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
                Ok(0)
            }
            Err(e) => Err(Unreachable(e).into()),
        },
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
            if !cli.quiet && !cli.json {
                println!("not running");
            }
        }
        Err(e) => return Err(Unreachable(e).into()),
    }
    Ok(())
}

async fn store_cmd(cli: &Cli, action: &StoreAction) -> Result<u8> {
    let mut conn = connect(cli).await?;
    let err = |s: tonic::Status| anyhow!("{}", s.message());
    match action {
        StoreAction::Path => {
            println!("{}", conn.hello.store_path);
            Ok(0)
        }
        StoreAction::Status => {
            let s = conn
                .client
                .store_status(v1::StoreStatusRequest {})
                .await
                .map_err(err)?
                .into_inner();
            if cli.json {
                json_line(
                    json!({"store": s.store_path, "bytes": s.bytes, "files": s.files, "packages": s.packages, "projects": s.projects, "metadata_bytes": s.metadata_bytes, "format_version": s.format_version}),
                );
            } else {
                println!(
                    "store: {} (format v{})\nsize: {} in {} files\npackages: {}\nprojects: {}\nmetadata cache: {}",
                    s.store_path,
                    s.format_version,
                    render::bytes(s.bytes),
                    s.files,
                    s.packages,
                    s.projects,
                    render::bytes(s.metadata_bytes)
                );
            }
            Ok(0)
        }
        StoreAction::Verify { dry_run } => {
            let mut stream = conn
                .client
                .store_verify(v1::StoreVerifyRequest { dry_run: *dry_run })
                .await
                .map_err(err)?
                .into_inner();
            let mut bad = 0;
            while let Some(ev) = stream.message().await.map_err(err)? {
                use v1::store_verify_event::Event as E;
                match ev.event {
                    Some(E::Problem(p)) => {
                        bad += 1;
                        if cli.json {
                            json_line(
                                json!({"type": "problem", "path": p.path, "kind": p.kind, "packages": p.packages, "detail": p.detail}),
                            );
                        } else {
                            eprintln!(
                                "{}: {} ({}){}",
                                p.kind,
                                p.path,
                                p.detail,
                                if p.packages.is_empty() {
                                    String::new()
                                } else {
                                    format!("; used by {}", p.packages.join(", "))
                                }
                            );
                        }
                    }
                    Some(E::Summary(s)) => {
                        if cli.json {
                            json_line(
                                json!({"type": "summary", "files_checked": s.files_checked, "packages_checked": s.packages_checked, "bad_files": s.bad_files, "packages_removed": s.packages_removed, "millis": s.millis}),
                            );
                        } else {
                            println!(
                                "checked {} files of {} packages in {} ms: {} bad, {} packages removed (the next install fetches them again)",
                                s.files_checked,
                                s.packages_checked,
                                s.millis,
                                s.bad_files,
                                s.packages_removed
                            );
                        }
                    }
                    _ => {}
                }
            }
            Ok(if bad > 0 && *dry_run { 1 } else { 0 })
        }
        StoreAction::Prune { dry_run } => {
            let mut stream = conn
                .client
                .store_prune(v1::StorePruneRequest { dry_run: *dry_run })
                .await
                .map_err(err)?
                .into_inner();
            while let Some(ev) = stream.message().await.map_err(err)? {
                use v1::store_prune_event::Event as E;
                match ev.event {
                    Some(E::DroppedProject(p)) => {
                        if cli.json {
                            json_line(json!({"type": "dropped_project", "path": p}));
                        } else if !cli.quiet {
                            eprintln!("dropped project {p} (its node_modules is gone)");
                        }
                    }
                    Some(E::Summary(s)) => {
                        if cli.json {
                            json_line(
                                json!({"type": "summary", "projects_dropped": s.projects_dropped, "projects_kept": s.projects_kept, "packages_removed": s.packages_removed, "files_removed": s.files_removed, "bytes_freed": s.bytes_freed, "millis": s.millis}),
                            );
                        } else {
                            println!(
                                "{}removed {} packages and {} files, freed {} ({} projects kept, {} dropped)",
                                if *dry_run { "would have " } else { "" },
                                s.packages_removed,
                                s.files_removed,
                                render::bytes(s.bytes_freed),
                                s.projects_kept,
                                s.projects_dropped
                            );
                        }
                    }
                    _ => {}
                }
            }
            Ok(0)
        }
    }
}
