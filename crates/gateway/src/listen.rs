//! Listening sockets for the worker threads, and each worker's accept loop.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::{mpsc, watch};

use crate::connection;
use crate::server::{self, Worker};

/// Accepts connections on `listener` and serves HTTP/1.1 on each, on the current thread's
/// runtime, until `stop` turns true; then stops accepting, lets every open connection finish
/// the request it is on (idle ones close at once), and returns once they all have.
pub async fn serve(
    listener: TcpListener,
    worker: Arc<Worker>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let limits = worker.limits();
    // The connections watch this thread's own signal, not the shared one: an idle connection
    // re-arms its watch once per request, and on the shared channel that lock would bounce
    // between the worker threads' CPUs.
    let (local_stop_tx, local_stop) = watch::channel(false);
    // Every connection task holds a clone; `recv` returns `None` once the last one ends.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        // Without TCP_NODELAY the first small stream write after the headers waits for the
        // client's delayed ACK (~40 ms of added time to first byte).
        let _ = tcp.set_nodelay(true);
        let worker = Arc::clone(&worker);
        let mut stop = local_stop.clone();
        let open = open_tx.clone();
        tokio::spawn(async move {
            let _open = open;
            connection::serve(tcp, limits, stopped(&mut stop), |req| {
                server::serve(Arc::clone(&worker), req)
            })
            .await;
        });
    }
    let _ = local_stop_tx.send(true);
    drop(open_tx);
    let _ = open_rx.recv().await;
    Ok(())
}

/// Resolves once the gateway is told to stop. A dropped sender (the caller's runtime is gone)
/// also means stop.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    )
}

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
