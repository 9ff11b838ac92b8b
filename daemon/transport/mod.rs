//! How clients reach the daemon, behind one interface: a Unix socket (0600, in a 0700 folder,
//! each peer's uid checked) or, on Windows, a named pipe whose security descriptor admits only
//! the daemon's own user (each peer's user checked again from its process token). Gives tonic a
//! stream of connections, each carrying the peer's identity (`Peer`) as its connect info.
//!
//! Must not: know about RPCs (the service reads `Peer` from a request with `peer`).

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[cfg(unix)]
#[path = "unix.rs"]
mod imp;
#[cfg(windows)]
#[path = "windows.rs"]
mod imp;

pub use imp::{bind, incoming, unbind};

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The peer's uid (Unix).
    pub uid: Option<u32>,
    /// The peer's process, where the OS says.
    pub pid: Option<u32>,
    /// Whether the peer runs as the daemon's own user (only such peers are accepted).
    pub same_user: bool,
}

/// The peer of the connection `req` came on.
pub fn peer<T>(req: &tonic::Request<T>) -> Option<&Peer> {
    req.extensions().get::<Peer>()
}

/// One accepted connection and its peer.
pub struct Conn<S> {
    io: S,
    peer: Peer,
}

impl<S> tonic::transport::server::Connected for Conn<S> {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
