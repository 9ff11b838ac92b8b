//! `hoardd`: the hoard daemon. One per store: takes the store's lock, binds the socket, serves
//! `hoard.v1.Hoard` plus gRPC health and reflection, and exits on the Shutdown RPC, SIGTERM/SIGINT
//! or after an idle timeout.
//!
//! This file owns the process lifecycle only (arguments, lock, logging, socket, shutdown).
//! Must not: contain install or store logic.

mod advisories;
mod ahead;
mod allow_scripts;
mod atomic;
mod bundled;
mod cooldown;
mod error;
mod foreign_lock;
mod git;
mod ideal;
mod install;
mod linker;
mod lockfile;
mod memory;
mod npm_settings;
mod operations;
mod optional_set;
mod pack;
mod pick;
mod platform;
mod prefetch;
mod project;
mod query;
mod registry;
mod remote;
mod resolve;
mod scrub;
mod semver_npm;
mod service;
mod settings;
mod share;
mod signatures;
mod spec;
mod store;
mod transport;
mod tree;
mod ui;
mod upkeep;
mod watch;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tracing::{error, info, warn};

use error::HoardError;
use service::{CloseReason, Daemon, DaemonConfig, Service};

#[derive(Parser, Debug)]
#[command(
    name = "hoardd",
    version,
    about = "The hoard daemon (started by `hoard`; rarely run by hand)"
)]
struct Args {
    /// Store directory this daemon owns.
    #[arg(long, env = "HOARD_STORE_DIR")]
    store_dir: Option<PathBuf>,
    /// Exit after this many seconds without requests (default 1800; 120 when CI is set).
    #[arg(long, env = "HOARD_IDLE_TIMEOUT")]
    idle_timeout: Option<u64>,
}

fn default_idle() -> u64 {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0") {
        120
    } else {
        1800
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            // Never `eprintln!`: it panics when stderr cannot be written (a full disk).
            let _ = writeln!(std::io::stderr(), "hoardd: {e}");
            ExitCode::from(match e {
                HoardError::NoSpace { .. } => hoard_proto::exit::NO_SPACE,
                _ => 1,
            })
        }
    }
}

/// The log file, capped: rotated to `.1` when over 10 MiB at start-up.
fn open_log(path: &Path) -> Result<std::fs::File, HoardError> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() > 10 << 20) {
        let _ = std::fs::rename(path, path.with_extension("log.1"));
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| HoardError::io("opening the log file", path, e))
}

fn run(args: Args) -> Result<ExitCode, HoardError> {
    let store = match args.store_dir {
        Some(s) => s,
        None => hoard_proto::default_store_dir().ok_or_else(|| {
            HoardError::InvalidInput(
                "no store directory: set HOME, HOARD_STORE_DIR or --store-dir".into(),
            )
        })?,
    };
    platform::create_private_dir(&store)
        .map_err(|e| HoardError::io("creating the store", &store, e))?;
    let store =
        std::fs::canonicalize(&store).map_err(|e| HoardError::io("resolving", &store, e))?;
    let state_dir = hoard_proto::state::dir(&store);
    std::fs::create_dir_all(&state_dir).map_err(|e| HoardError::io("creating", &state_dir, e))?;
    let _ = platform::set_mode(&state_dir, 0o700);

    // One daemon per store: the lock comes before anything else touches the store.
    let lock_path = hoard_proto::state::lock_file(&store);
    let mut lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&lock_path)
        .map_err(|e| HoardError::io("opening the daemon lock", &lock_path, e))?;
    let socket = hoard_proto::socket_path(&store);
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let pid = std::fs::read_to_string(&lock_path).unwrap_or_default();
            let _ = writeln!(
                std::io::stderr(),
                "hoardd: another daemon (pid {}) already serves the store `{}` on `{}`; use \
                 `hoard daemon stop` to stop it",
                pid.trim(),
                store.display(),
                socket.display()
            );
            return Ok(ExitCode::from(hoard_proto::exit::ALREADY_RUNNING));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(HoardError::io("locking", &lock_path, e));
        }
    }
    lock.set_len(0)
        .map_err(|e| HoardError::io("writing", &lock_path, e))?;
    write!(lock, "{}", std::process::id()).map_err(|e| HoardError::io("writing", &lock_path, e))?;

    let log_path = hoard_proto::state::log_file(&store);
    let log = open_log(&log_path)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::sync::Mutex::new(log))
        // A log line that cannot be written (a full disk) is dropped, never a panic.
        .log_internal_errors(false)
        .with_ansi(false)
        .init();

    let idle = Duration::from_secs(args.idle_timeout.unwrap_or_else(default_idle).max(1));
    let protocol_version = std::env::var("HOARD_PROTOCOL_VERSION_OVERRIDE")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| hoard_proto::PROTOCOL_VERSION.to_string());
    info!(pid = std::process::id(), store = %store.display(), version = hoard_proto::BINARY_VERSION, %protocol_version, "hoardd starting");

    memory::tune();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hoardd")
        .build()
        .map_err(|e| HoardError::Internal(format!("starting the runtime: {e}")))?;
    let result = runtime.block_on(serve(
        store.clone(),
        socket.clone(),
        log_path,
        idle,
        protocol_version,
    ));
    // Socket removed while we still hold the lock: no other daemon can own it yet.
    transport::unbind(&socket);
    runtime.shutdown_timeout(Duration::from_secs(5));
    match result {
        Ok(reason) => {
            info!(?reason, "hoardd stopped");
            drop(lock);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            error!(error = %e, "hoardd failed");
            Err(e)
        }
    }
}

async fn serve(
    store_path: PathBuf,
    socket: PathBuf,
    log_path: PathBuf,
    idle: Duration,
    protocol_version: String,
) -> Result<CloseReason, HoardError> {
    let sp = store_path.clone();
    // The HTTP client reads the system's root certificates (milliseconds, more with a
    // certificate folder): on the other core while the store opens, not after it.
    let http = tokio::task::spawn_blocking(|| registry::http::Http::new(128, 128));
    let store = Arc::new(
        tokio::task::spawn_blocking(move || {
            let store = store::Store::open(&sp)?;
            upkeep::check_after_restart(&store)?;
            Ok::<_, HoardError>(store)
        })
        .await??,
    );
    let http = Arc::new(http.await??);
    let hot_budget = std::env::var("HOARD_METADATA_CACHE_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(registry::HOT_BUDGET_BYTES, |mb| mb << 20);
    let registry = Arc::new(registry::Registry::new(
        http,
        (store.layout.metadata.clone(), store.layout.tmp.clone()),
        hot_budget,
    ));
    let installer = Arc::new(install::Installer::new(store.clone(), registry));
    let daemon = Daemon::new(
        DaemonConfig {
            store_path,
            socket_path: socket.clone(),
            log_path,
            idle_timeout: idle,
            protocol_version,
        },
        installer,
        store,
    );

    let listener = transport::bind(&socket)?;
    info!(socket = %socket.display(), idle_secs = idle.as_secs(), "listening");
    let pointer = point_to(&daemon.config);
    let incoming = transport::incoming(listener);
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<hoard_proto::v1::hoard_server::HoardServer<Service>>()
        .await;
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| HoardError::Internal(format!("reflection: {e}")))?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| HoardError::Internal(format!("reflection: {e}")))?;
    tokio::spawn(close_when_idle(daemon.clone(), idle));
    tokio::spawn(close_on_signal(daemon.clone()));
    if let Some(settings) = ahead::Settings::from_env() {
        daemon.start_ahead(settings);
    }
    if let Some(settings) = scrub::Settings::from_env() {
        tokio::spawn(scrub::run(
            daemon.scrub(),
            settings,
            daemon.shutdown.clone(),
        ));
    }

    let shutdown = daemon.shutdown.clone();
    let server = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(hoard_proto::v1::hoard_server::HoardServer::new(Service(
            daemon.clone(),
        )))
        .serve_with_incoming_shutdown(incoming, async move { shutdown.cancelled().await });
    tokio::pin!(server);
    // In-flight requests get a bounded grace period after the shutdown signal.
    tokio::select! {
        r = &mut server => r.map_err(|e| HoardError::Internal(format!("server: {e}")))?,
        _ = async {
            daemon.shutdown.cancelled().await;
            tokio::time::sleep(Duration::from_secs(10)).await;
        } => warn!("in-flight requests did not finish within 10 s of shutdown; exiting anyway"),
    }
    if let Some(p) = pointer {
        let _ = std::fs::remove_file(p);
    }
    // The metadata fetched so far goes to the disk cache before the daemon exits.
    let registry = daemon.installer.registry.clone();
    let flushed =
        tokio::task::spawn_blocking(move || registry.flush_disk_writes(Duration::from_secs(10)));
    if !matches!(flushed.await, Ok(true)) {
        warn!("the metadata disk cache's writes did not finish within 10 s; exiting anyway");
    }
    let index = daemon.store.index.clone();
    let checkpoint = tokio::task::spawn_blocking(move || match index.checkpoint() {
        Err(e) if e.broken_index().is_some() => index.set_aside_now().map(|_| ()).map_err(|_| e),
        r => r,
    });
    if let Ok(Err(e)) = checkpoint.await {
        warn!(error = %e, "could not checkpoint the store index");
    }
    Ok(daemon
        .close_reason()
        .unwrap_or(CloseReason::Signal("server ended")))
}

/// For the default store's daemon: write the pointer file tools find the socket by (see
/// `hoard_proto::pointer_file`); its path, to remove at exit.
fn point_to(config: &service::DaemonConfig) -> Option<PathBuf> {
    let default = hoard_proto::default_store_dir().and_then(|d| std::fs::canonicalize(d).ok())?;
    if default != config.store_path {
        return None;
    }
    let path = hoard_proto::pointer_file();
    if let Some(dir) = path.parent() {
        // The runtime dir (a pipe has no folder of its own to make it on Windows).
        let _ = platform::create_private_dir(dir);
    }
    let body = serde_json::json!({
        "socket": config.socket_path.display().to_string(),
        "store": config.store_path.display().to_string(),
        "pid": std::process::id(),
        "protocol_version": config.protocol_version,
    });
    match atomic::write_atomic(&path, format!("{body}\n").as_bytes()) {
        Ok(()) => Some(path),
        Err(e) => {
            warn!(error = %e, "could not write the pointer file");
            None
        }
    }
}

/// gRPC reflection over hoard's API and the health service (for grpcurl and stock clients).
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(hoard_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// Idle shutdown: a deadline pushed back by every request.
async fn close_when_idle(d: Arc<Daemon>, idle: Duration) {
    loop {
        let idle_for = d.idle_for();
        if d.in_flight() == 0 && idle_for >= idle {
            d.close(CloseReason::Idle(idle));
            break;
        }
        let wait = idle
            .saturating_sub(idle_for)
            .clamp(Duration::from_millis(100), Duration::from_secs(30));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = d.shutdown.cancelled() => break,
        }
    }
}

/// SIGTERM and SIGINT (Ctrl-C, Ctrl-Break, closing the console, logoff or shutdown on
/// Windows) close the daemon gracefully.
async fn close_on_signal(d: Arc<Daemon>) {
    tokio::select! {
        name = platform::stop_signal() => d.close(CloseReason::Signal(name)),
        _ = d.shutdown.cancelled() => {}
    }
}
