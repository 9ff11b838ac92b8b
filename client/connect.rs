//! Finding, starting and greeting the daemon for a store.
//!
//! Connect to `<runtime dir>/hoard-<hash>.sock`; if nothing answers, start `hoardd` (next to this
//! executable, or `HOARD_DAEMON_BIN`) detached, under a spawn lock so that concurrent clients
//! start one daemon, and wait for its socket with a bounded timeout (no retry storm). Then
//! `Hello`: on a protocol mismatch (or `Unimplemented` from an old daemon) ask it to shut down,
//! wait for it to release the store, and start ours.
//! Must not: link anything heavy (SQLite, HTTP client, tar): this is the thin client.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use hoard_proto::v1::hoard_client::HoardClient;
use hoard_proto::v1::{HelloRequest, HelloResponse, ShutdownRequest};
use tonic::transport::Channel;

/// How long to wait for a started daemon's socket.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the client checks every 2 ms for a daemon it started before backing off.
const FAST_POLL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("no daemon is running for store `{store}` (socket `{socket}`)")]
    NotRunning { store: PathBuf, socket: PathBuf },
    #[error("{0}")]
    Unreachable(String),
}

pub struct Connection {
    pub client: Client,
    pub hello: HelloResponse,
    pub socket: PathBuf,
}

enum Greeting {
    Ok(Connection),
    Mismatch(Client, String),
}

type Namer = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

/// The daemon client, naming this client's protocol on every call (the daemon refuses calls
/// from an incompatible one).
pub type Client = HoardClient<tonic::service::interceptor::InterceptedService<Channel, Namer>>;

fn name_protocol(mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    req.metadata_mut().insert(
        hoard_proto::PROTOCOL_METADATA_KEY,
        tonic::metadata::MetadataValue::from_static(hoard_proto::PROTOCOL_VERSION),
    );
    Ok(req)
}

async fn greet(socket: &Path) -> Option<Greeting> {
    let ch = hoard_proto::uds_channel(socket, Duration::from_secs(2))
        .await
        .ok()?;
    let mut client = HoardClient::with_interceptor(ch, name_protocol as Namer);
    let req = HelloRequest {
        protocol_version: hoard_proto::PROTOCOL_VERSION.into(),
        client_version: hoard_proto::BINARY_VERSION.into(),
    };
    match tokio::time::timeout(Duration::from_secs(10), client.hello(req)).await {
        Ok(Ok(resp)) => {
            let hello = resp.into_inner();
            // The daemon must know everything this client may ask (its minor is not older).
            if hello.compatible
                && hoard_proto::daemon_serves(
                    &hello.protocol_version,
                    hoard_proto::PROTOCOL_VERSION,
                )
            {
                Some(Greeting::Ok(Connection {
                    client,
                    hello,
                    socket: socket.to_path_buf(),
                }))
            } else {
                let v = hello.protocol_version.clone();
                Some(Greeting::Mismatch(client, v))
            }
        }
        Ok(Err(status)) if status.code() == tonic::Code::Unimplemented => {
            Some(Greeting::Mismatch(client, "unknown (no Hello)".into()))
        }
        _ => None,
    }
}

/// Whether a daemon holds the store's lock.
pub fn store_locked(store: &Path) -> bool {
    let path = hoard_proto::state::lock_file(store);
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
    else {
        return false;
    };
    match f.try_lock() {
        Ok(()) => {
            let _ = f.unlock();
            false
        }
        Err(_) => true,
    }
}

/// Wait until no daemon holds the store (after a shutdown request).
pub async fn wait_released(store: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !store_locked(store) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn daemon_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HOARD_DAEMON_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("hoardd")))
        .unwrap_or_else(|| PathBuf::from("hoardd"))
}

/// Connect to the running daemon without starting one.
pub async fn connect_existing(store: &Path) -> Result<Connection, ConnectError> {
    let socket = hoard_proto::socket_path(store);
    match greet(&socket).await {
        Some(Greeting::Ok(c)) => Ok(c),
        Some(Greeting::Mismatch(_, v)) => Err(ConnectError::Unreachable(format!(
            "the daemon on `{}` speaks protocol {v}, this client {}; run `hoard daemon restart`",
            socket.display(),
            hoard_proto::PROTOCOL_VERSION
        ))),
        None => Err(ConnectError::NotRunning {
            store: store.to_path_buf(),
            socket,
        }),
    }
}

/// Connect, starting the daemon if needed, replacing one with an incompatible protocol.
pub async fn connect(store: &Path, verbose: bool) -> Result<Connection, ConnectError> {
    let socket = hoard_proto::socket_path(store);
    match greet(&socket).await {
        Some(Greeting::Ok(c)) => return Ok(c),
        Some(Greeting::Mismatch(mut client, theirs)) => {
            if verbose {
                eprintln!(
                    "hoard: the running daemon speaks protocol {theirs}, this client {}; restarting it",
                    hoard_proto::PROTOCOL_VERSION
                );
            }
            let _ = client
                .shutdown(ShutdownRequest {
                    reason: format!(
                        "protocol mismatch: client {}",
                        hoard_proto::PROTOCOL_VERSION
                    ),
                })
                .await;
            if !wait_released(store, Duration::from_secs(15)).await {
                return Err(ConnectError::Unreachable(format!(
                    "the old daemon for `{}` did not stop within 15 s; stop it by hand (pid in `{}`)",
                    store.display(),
                    hoard_proto::state::lock_file(store).display()
                )));
            }
        }
        None => {}
    }
    start_and_connect(store, &socket).await
}

async fn start_and_connect(store: &Path, socket: &Path) -> Result<Connection, ConnectError> {
    let _ = crate::platform::create_private_dir(&hoard_proto::runtime_dir());
    // One starter at a time per store; the others find the socket once they get the lock.
    let spawn_lock_path = hoard_proto::spawn_lock_path(socket);
    let spawn_lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&spawn_lock_path)
        .map_err(|e| {
            ConnectError::Unreachable(format!("opening `{}`: {e}", spawn_lock_path.display()))
        })?;
    let lock_deadline = Instant::now() + START_TIMEOUT;
    loop {
        match spawn_lock.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < lock_deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => {
                return Err(ConnectError::Unreachable(format!(
                    "waiting for another client to start the daemon (`{}`): {e}",
                    spawn_lock_path.display()
                )));
            }
        }
    }
    if let Some(Greeting::Ok(c)) = greet(socket).await {
        return Ok(c);
    }
    std::fs::create_dir_all(hoard_proto::state::dir(store))
        .map_err(|e| ConnectError::Unreachable(format!("creating `{}`: {e}", store.display())))?;
    let stderr_path = hoard_proto::state::dir(store).join("hoardd.stderr");
    let stderr = std::fs::File::create(&stderr_path).map_err(|e| {
        ConnectError::Unreachable(format!("creating `{}`: {e}", stderr_path.display()))
    })?;
    let bin = daemon_bin();
    let mut cmd = std::process::Command::new(&bin);
    cmd.arg("--store-dir")
        .arg(store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr));
    crate::platform::detach(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| {
        ConnectError::Unreachable(format!(
            "cannot start the daemon `{}`: {e}; is hoardd installed next to hoard (or set HOARD_DAEMON_BIN)?",
            bin.display()
        ))
    })?;
    let started = Instant::now();
    let deadline = started + START_TIMEOUT;
    let mut delay = Duration::from_millis(2);
    loop {
        if crate::platform::may_be_listening(socket)
            && let Some(Greeting::Ok(c)) = greet(socket).await
        {
            // Reap the daemon's parent-side handle without waiting for it.
            std::mem::forget(child);
            return Ok(c);
        }
        if let Ok(Some(status)) = child.try_wait()
            && status.code() != Some(hoard_proto::exit::ALREADY_RUNNING.into())
        {
            let msg = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            let mut why = msg.trim().to_string();
            if status.code() == Some(hoard_proto::exit::NO_SPACE.into())
                || why.is_empty() && crate::platform::disk_full(store)
            {
                why = format!(
                    "no space left on the filesystem of the store `{}`; free some space and \
                     try again. {why}",
                    store.display()
                );
            }
            return Err(ConnectError::Unreachable(format!(
                "the daemon exited at start-up ({status}): {}",
                why.trim()
            )));
        }
        if Instant::now() > deadline {
            return Err(ConnectError::Unreachable(format!(
                "the daemon did not open `{}` within {} s; see `{}`",
                socket.display(),
                START_TIMEOUT.as_secs(),
                hoard_proto::state::log_file(store).display()
            )));
        }
        tokio::time::sleep(delay).await;
        // A check is one stat of the socket path: every 2 ms while a daemon usually starts
        // (20-40 ms here), then backing off. Doubling from the start left the client asleep
        // for up to half the start-up time after the daemon was listening.
        if started.elapsed() > FAST_POLL {
            delay = (delay * 2).min(Duration::from_millis(50));
        }
    }
}
