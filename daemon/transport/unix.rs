//! The Unix side of `transport`: a socket file, created 0600 in a 0700 folder; connections
//! from another uid are refused and logged.
//!
//! Must not: be named outside `transport`.

use std::path::Path;

use tokio_stream::StreamExt;
use tracing::warn;

use super::{Conn, Peer};
use crate::error::HoardError;
use crate::platform;

pub type Listener = tokio::net::UnixListener;

/// Listen on `socket` (a stale socket file from a killed daemon is replaced: the caller holds
/// the store lock).
pub fn bind(socket: &Path) -> Result<Listener, HoardError> {
    let dir = socket.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir)
        .map_err(|e| HoardError::io("creating the socket directory", dir, e))?;
    platform::set_mode(dir, 0o700)
        .map_err(|e| HoardError::io("securing the socket directory", dir, e))?;
    match std::fs::remove_file(socket) {
        Ok(()) => warn!(socket = %socket.display(), "removed a stale socket"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(HoardError::io("removing the stale socket", socket, e)),
    }
    // The socket is created 0600 (no window with wider permissions).
    let listener = platform::with_umask(0o177, || tokio::net::UnixListener::bind(socket))
        .map_err(|e| HoardError::io("binding the socket", socket, e))?;
    platform::set_mode(socket, 0o600)
        .map_err(|e| HoardError::io("securing the socket", socket, e))?;
    Ok(listener)
}

/// Remove the socket file (the daemon still holds the store lock).
pub fn unbind(socket: &Path) {
    let _ = std::fs::remove_file(socket);
}

/// The listener's connections from this daemon's own user; others are refused and logged.
pub fn incoming(
    listener: Listener,
) -> impl tokio_stream::Stream<Item = std::io::Result<Conn<tokio::net::UnixStream>>> {
    let my_uid = platform::my_uid();
    tokio_stream::wrappers::UnixListenerStream::new(listener).filter_map(move |conn| match conn {
        Ok(io) => match io.peer_cred() {
            Ok(cred) if cred.uid() == my_uid => {
                let peer = Peer {
                    uid: Some(cred.uid()),
                    pid: cred.pid().map(|p| p as u32),
                    same_user: true,
                };
                Some(Ok(Conn { io, peer }))
            }
            Ok(cred) => {
                warn!(uid = cred.uid(), "refused a connection from another user");
                None
            }
            Err(e) => {
                warn!(error = %e, "refused a connection without peer credentials");
                None
            }
        },
        Err(e) => {
            warn!(error = %e, "accept failed");
            None
        }
    })
}
