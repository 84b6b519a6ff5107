//! Listening sockets for the worker threads.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use socket2::{Domain, Protocol, Socket, Type};

/// Binds `count` listening sockets to the same address. The first one picks the port when
/// `listen` asks for port 0; the others join it through `SO_REUSEPORT`, and the kernel spreads
/// new connections over all of them. Where that option does not exist, one socket is returned.
pub fn bind(listen: &str, count: usize) -> Result<Vec<TcpListener>, String> {
    let addr = listen
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {listen}: {e}"))?
        .next()
        .ok_or_else(|| format!("{listen} resolves to no address"))?;
    let count = if cfg!(unix) { count.max(1) } else { 1 };
    if count > 1 && addr.port() != 0 {
        // With SO_REUSEPORT a second gateway started on the same port would bind too and
        // silently take half the connections. A plain bind first fails as usual when the
        // port is taken, by anyone.
        drop(socket(addr, false).map_err(|e| format!("cannot listen on {listen}: {e}"))?);
    }
    let first = socket(addr, count > 1).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = first
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let mut listeners = vec![first];
    for _ in 1..count {
        listeners
            .push(socket(bound, true).map_err(|e| format!("cannot listen again on {bound}: {e}"))?);
    }
    Ok(listeners)
}

fn socket(addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std and tokio do: a restarted gateway can bind while old connections linger.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    #[cfg(not(unix))]
    let _ = reuse_port;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_share_one_port() {
        let listeners = bind("127.0.0.1:0", 3).unwrap();
        assert_eq!(listeners.len(), if cfg!(unix) { 3 } else { 1 });
        let port = listeners[0].local_addr().unwrap().port();
        assert!(listeners
            .iter()
            .all(|l| l.local_addr().unwrap().port() == port));
    }

    #[test]
    fn a_port_in_use_is_refused_even_to_another_gateway() {
        let first = bind("127.0.0.1:0", 2).unwrap();
        let taken = first[0].local_addr().unwrap();
        let err = bind(&taken.to_string(), 2).unwrap_err();
        assert!(err.contains("cannot listen"), "{err}");
    }
}
