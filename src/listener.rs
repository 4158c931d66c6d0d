//! The server's listening socket.

use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Pending connections the kernel may queue before `accept` (capped by net.core.somaxconn).
/// A fleet reconnecting after a restart arrives all at once; a short queue turns that into
/// dropped SYNs and resets, and every reset agent backs off for seconds.
pub const LISTEN_BACKLOG: i32 = 4096;

/// Binds `addr` with address reuse and a deep accept queue.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}
