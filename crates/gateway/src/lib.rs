//! The Switchyard gateway: an OpenAI-compatible HTTP server in front of many LLM providers,
//! with ordered failover, circuit breakers and stream-aware timeouts.
//!
//! The layers a chat request passes through, outside in:
//! 1. [`server`]: read the body (size-limited), parse it with the OpenAI front door, find the
//!    route for the model alias.
//! 2. [`failover`]: the request deadline, then each target in order: its circuit breaker,
//!    the attempt, and the error-class policy that says stop, retry or move on.
//! 3. [`upstream`]: one attempt: the provider crate builds the native request, reqwest sends
//!    it under the connect and header timeouts, non-2xx answers are classified.
//! 4. [`streaming`]: for streams, events are held back until the first content arrives (so a
//!    failure before it fails over invisibly), then relayed under first-token and stall
//!    deadlines; a client that leaves cancels the upstream.
//!
//! This is the only crate (with the mock providers in `switchyard-sim`) that does network I/O.

pub mod config;
pub mod continuation;
#[cfg(feature = "sim")]
pub mod demo;
pub mod errors;
pub mod failover;
pub mod providers;
pub mod route;
pub mod schemas;
pub mod server;
pub mod streaming;
pub mod upstream;

use std::future::Future;
use std::net::SocketAddr;

pub use config::Config;
pub use server::Gateway;

/// A gateway serving on a socket.
pub struct Running {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Binds `config.server.listen` (port 0 picks a free port) and serves until `shutdown`
/// completes.
pub async fn start(
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, String> {
    let gateway = Gateway::new(config)?;
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let app = gateway.router();
    // Without TCP_NODELAY the first small stream write after the headers waits for the
    // client's delayed ACK (~40 ms of added time to first byte).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok(Running { addr, task })
}
