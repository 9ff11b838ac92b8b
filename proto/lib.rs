//! `hoard_proto`: the wire contract shared by the daemon (`hoardd`), the client (`hoard`) and
//! any other Rust tool: the generated gRPC code, the protocol version, and the rules that both
//! sides must agree on without talking (where the store and the socket live).
//!
//! Must not: depend on anything heavy (SQLite, HTTP, tar): the thin client links this crate.

use std::path::{Path, PathBuf};

/// Generated messages and the `Hoard` service (client and server).
pub mod npmrc;

pub mod v1 {
    tonic::include_proto!("hoard.v1");

    /// Encoded `FileDescriptorSet` of `hoard.v1`, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/hoard_descriptor.bin"));
}

/// The protocol semver, separate from the binary version. Bump the minor for additions (new
/// optional fields, new RPCs), the major for anything an older peer would misread.
pub const PROTOCOL_VERSION: &str = "1.9.0";

/// The metadata key a client names its protocol version in; the daemon refuses a call whose
/// version is incompatible (FAILED_PRECONDITION), except Hello and Shutdown (how a client
/// replaces an incompatible daemon).
pub const PROTOCOL_METADATA_KEY: &str = "hoard-protocol-version";

/// Version of the `hoard` package these binaries were built from.
pub const BINARY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Environment variable naming the store directory (the `--store-dir` flag wins).
pub const STORE_DIR_ENV: &str = "HOARD_STORE_DIR";

/// Whether two protocol versions can talk: same major, and for 0.x the same minor.
/// Unparsable versions are never compatible.
pub fn protocol_compatible(a: &str, b: &str) -> bool {
    fn parts(v: &str) -> Option<(u64, u64)> {
        let mut it = v.trim().split('.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        let _patch: u64 = it.next()?.parse().ok()?;
        Some((major, minor))
    }
    match (parts(a), parts(b)) {
        (Some((0, ma)), Some((0, mb))) => ma == mb,
        (Some((a, _)), Some((b, _))) => a == b,
        _ => false,
    }
}

/// A gRPC channel to the daemon's Unix socket at `socket`. The HTTP/2 authority is
/// `hoardd.local` (the URI is otherwise ignored; every connection goes to the socket).
pub async fn uds_channel(
    socket: &Path,
    connect_timeout: std::time::Duration,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let path = socket.to_path_buf();
    tonic::transport::Endpoint::from_static("http://hoardd.local")
        .connect_timeout(connect_timeout)
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                #[cfg(unix)]
                let stream = tokio::net::UnixStream::connect(path).await?;
                #[cfg(windows)]
                let stream = connect_pipe(&path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
}

/// Open the daemon's named pipe, waiting while every instance is busy (ERROR_PIPE_BUSY).
#[cfg(windows)]
async fn connect_pipe(
    path: &Path,
) -> std::io::Result<tokio::net::windows::named_pipe::NamedPipeClient> {
    const ERROR_PIPE_BUSY: i32 = 231;
    loop {
        match tokio::net::windows::named_pipe::ClientOptions::new().open(path) {
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            other => return other,
        }
    }
}

/// Whether a daemon speaking `daemon` can serve a client speaking `client`: compatible, and the
/// daemon knows at least every RPC and field the client may use (its minor is not older). A
/// client restarts a daemon that cannot.
pub fn daemon_serves(daemon: &str, client: &str) -> bool {
    let minor = |v: &str| {
        v.trim()
            .split('.')
            .nth(1)
            .and_then(|m| m.parse::<u64>().ok())
    };
    protocol_compatible(daemon, client)
        && matches!((minor(daemon), minor(client)), (Some(d), Some(c)) if d >= c)
}

/// The default store directory: `$XDG_DATA_HOME/hoard/store`, else `~/.local/share/hoard/store`;
/// on Windows `%LOCALAPPDATA%\hoard\store`.
pub fn default_store_dir() -> Option<PathBuf> {
    #[cfg(windows)]
    if let Some(local) = std::env::var_os("LOCALAPPDATA").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(local).join("hoard").join("store"));
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("hoard").join("store"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".local/share/hoard/store"))
}

/// The longest socket path every Unix accepts: `sockaddr_un.sun_path` is 104 bytes on macOS
/// and the BSDs (108 on Linux), NUL included.
pub const MAX_SOCKET_PATH: usize = 103;

/// Bytes a socket's own name adds to its folder: `/hoard-<16 hex>.sock`.
const SOCKET_NAME_LEN: usize = "/hoard-0123456789abcdef.sock".len();

/// The directory holding daemon sockets: `$XDG_RUNTIME_DIR/hoard`, else `$TMPDIR/hoard-<uid>`;
/// when that would make a socket path longer than `MAX_SOCKET_PATH` (macOS's `$TMPDIR` is long,
/// and so may be anyone's), `/tmp/hoard-<uid>`. Created with mode 0700 by the daemon; a client
/// only reads it.
pub fn runtime_dir() -> PathBuf {
    #[cfg(unix)]
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    #[cfg(windows)]
    let uid = 0; // the folder is under the user's own profile there
    #[cfg(windows)]
    if let Some(local) = std::env::var_os("LOCALAPPDATA") {
        return PathBuf::from(local).join("hoard").join("run");
    }
    runtime_dir_from(
        std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()),
        std::env::temp_dir(),
        uid,
    )
}

/// `runtime_dir`'s rule, from the environment it reads.
pub fn runtime_dir_from(xdg: Option<std::ffi::OsString>, tmp: PathBuf, uid: u32) -> PathBuf {
    let wanted = match xdg {
        Some(x) => PathBuf::from(x).join("hoard"),
        None => tmp.join(format!("hoard-{uid}")),
    };
    if wanted.as_os_str().len() + SOCKET_NAME_LEN <= MAX_SOCKET_PATH {
        wanted
    } else {
        PathBuf::from(format!("/tmp/hoard-{uid}"))
    }
}

/// The socket of the daemon that owns `store`: `<runtime dir>/hoard-<16 hex of BLAKE3(store)>.sock`.
/// The hash keeps the path short (Unix socket paths are limited to 107 bytes) and makes one
/// socket per store. `store` should be absolute and canonical.
pub fn socket_path(store: &Path) -> PathBuf {
    let digest = blake3::hash(store.as_os_str().as_encoded_bytes());
    let hex = digest.to_hex();
    #[cfg(windows)]
    return PathBuf::from(format!(r"\\.\pipe\hoard-{}", &hex[..16]));
    #[cfg(not(windows))]
    runtime_dir().join(format!("hoard-{}.sock", &hex[..16]))
}

/// The file clients lock while one of them starts the daemon of `socket`: beside the socket
/// (`<socket minus .sock>.spawn.lock`); on Windows, where the socket is a pipe name, in the
/// runtime dir.
pub fn spawn_lock_path(socket: &Path) -> PathBuf {
    #[cfg(windows)]
    if let Some(name) = socket.file_name() {
        let mut n = name.to_os_string();
        n.push(".spawn.lock");
        return runtime_dir().join(n);
    }
    socket.with_extension("spawn.lock")
}

/// Where the daemon of the default store says where it listens, for tools that would rather
/// not hash the store path: `<runtime dir>/default.json`, `{"socket", "store", "pid",
/// "protocol_version"}`, written when that daemon starts and removed when it stops.
pub fn pointer_file() -> PathBuf {
    runtime_dir().join("default.json")
}

/// gRPC metadata key on an error status: the daemon is restarting (it set a damaged store index
/// aside); the client waits for it to go and sends the request again, once.
pub const RETRY_METADATA_KEY: &str = "hoard-retry";

/// Response header of a long RPC (Install) naming its operation (since protocol 1.7.0): the id
/// to give CancelOperation and AttachOperation.
pub const OPERATION_ID_HEADER: &str = "hoard-operation-id";

/// Exit statuses of `hoardd` that the client that started it acts on.
pub mod exit {
    /// Another daemon already serves the store (the client keeps waiting for that one).
    pub const ALREADY_RUNNING: u8 = 75;
    /// The store's filesystem is full at start-up (EX_CANTCREAT).
    pub const NO_SPACE: u8 = 73;
}

/// Files the daemon keeps about itself inside the store.
pub mod state {
    use std::path::{Path, PathBuf};

    /// `<store>/daemon`: lock, pid and log files.
    pub fn dir(store: &Path) -> PathBuf {
        store.join("daemon")
    }
    /// Held (flock, exclusive) by the running daemon for its whole life.
    pub fn lock_file(store: &Path) -> PathBuf {
        dir(store).join("hoardd.lock")
    }
    /// The daemon's log file.
    pub fn log_file(store: &Path) -> PathBuf {
        dir(store).join("hoardd.log")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatibility_follows_semver() {
        assert!(protocol_compatible("1.0.0", "1.4.2"));
        assert!(!protocol_compatible("1.0.0", "2.0.0"));
        assert!(protocol_compatible("0.3.0", "0.3.9"));
        assert!(!protocol_compatible("0.3.0", "0.4.0"));
        assert!(!protocol_compatible("1.0", "1.0.0"));
        assert!(!protocol_compatible("garbage", "1.0.0"));
        // An older daemon minor cannot serve a newer client.
        assert!(daemon_serves("1.1.0", "1.0.0"));
        assert!(!daemon_serves("1.0.0", "1.1.0"));
        assert!(!daemon_serves("2.0.0", "1.0.0"));
    }

    #[test]
    fn a_long_tmpdir_or_runtime_dir_still_gives_a_socket_path_every_unix_accepts() {
        let long = PathBuf::from(format!("/{}", "t".repeat(99)));
        assert_eq!(long.as_os_str().len(), 100);
        for (xdg, tmp) in [
            (None, long.clone()),
            (Some(long.clone().into_os_string()), long),
        ] {
            let dir = runtime_dir_from(xdg, tmp, 501);
            assert_eq!(dir, PathBuf::from("/tmp/hoard-501"));
            let sock = dir.join("hoard-0123456789abcdef.sock");
            assert!(sock.as_os_str().len() < 104, "{}", sock.display());
        }
        // Short ones are kept.
        let d = runtime_dir_from(None, PathBuf::from("/var/folders/xy/T"), 501);
        assert_eq!(d, PathBuf::from("/var/folders/xy/T/hoard-501"));
        let d = runtime_dir_from(Some("/run/user/501".into()), PathBuf::from("/tmp"), 501);
        assert_eq!(d, PathBuf::from("/run/user/501/hoard"));
    }

    #[test]
    fn socket_path_is_short_and_per_store() {
        let a = socket_path(Path::new(
            "/a/very/long/store/path/that/goes/on/and/on/and/on/for/ages",
        ));
        let b = socket_path(Path::new("/another"));
        assert_ne!(a, b);
        assert!(a.file_name().unwrap().len() < 30);
    }
}
