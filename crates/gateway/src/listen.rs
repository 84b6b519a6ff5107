//! Listening sockets for the worker threads, and each worker's accept loop.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::{mpsc, watch};

use crate::server::{self, Worker};

/// Accepts connections on `listener` and serves HTTP/1.1 on each, on the current thread's
/// runtime, until `stop` turns true; then stops accepting, asks every open connection to close
/// after its current response, and returns once they all have.
pub async fn serve(
    listener: TcpListener,
    worker: Arc<Worker>,
    client_read_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let mut http = hyper::server::conn::http1::Builder::new();
    // Without a timer hyper never times out a request head: a client sending its head a
    // byte at a time (or nothing, on an idle keep-alive connection) would hold the
    // connection for ever.
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(client_read_timeout);
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
        let service =
            hyper::service::service_fn(move |req| server::serve(Arc::clone(&worker), req));
        let conn = http.serve_connection(TokioIo::new(tcp), service);
        let mut stop = stop.clone();
        let open = open_tx.clone();
        tokio::spawn(async move {
            let _open = open;
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                // Clients that hang up mid-request or send garbage; hyper has already
                // answered what could be answered.
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
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
