//! The Switchyard gateway: an OpenAI-compatible HTTP server in front of many LLM providers,
//! with ordered failover, circuit breakers and stream-aware timeouts.
//!
//! The layers a chat request passes through, outside in:
//! 1. [`server`]: read the body (size-limited), parse it with the OpenAI front door, find the
//!    route for the model alias.
//! 2. [`routing`]: the route's strategy orders its targets for this request (from the live
//!    statistics every target keeps); [`failover`]: the request deadline, then each target in
//!    that order: its spend cap, its circuit breaker (and recovery ramp), the attempt (hedged,
//!    when the route says so), and the error-class policy that says stop, retry or move on.
//!    Each answer's latency and cost are recorded ([`accounting`]); [`health`] shows them.
//! 3. [`upstream`]: one attempt: the provider crate builds the native request, [`client`] sends
//!    it under the connect and header timeouts, non-2xx answers are classified.
//! 4. [`streaming`]: for streams, events are held back until the first content arrives (so a
//!    failure before it fails over invisibly), then relayed under first-token and stall
//!    deadlines; a client that leaves cancels the upstream.
//!
//! This is the only crate (with the mock providers in `switchyard-sim`) that does network I/O.

pub mod accounting;
pub mod body;
pub mod chunked;
pub mod client;
pub mod config;
pub mod connection;
pub mod continuation;
#[cfg(feature = "sim")]
pub mod demo;
pub mod errors;
pub mod failover;
pub mod health;
pub mod keys;
mod listen;
pub mod ops;
pub mod policy;
pub mod providers;
pub mod route;
pub mod routing;
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
    /// The admin listener's address, when `[admin]` is configured.
    pub admin_addr: Option<SocketAddr>,
    /// Ends when every worker thread has stopped; the error of the first one that failed.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The admin API's base URL, when `[admin]` is configured.
    pub fn admin_url(&self) -> Option<String> {
        self.admin_addr.map(|a| format!("http://{a}"))
    }
}

/// Binds `config.server.listen` (port 0 picks a free port) and serves until `shutdown`
/// completes.
///
/// The server runs on its own threads, not on the caller's runtime: `server.workers` threads
/// (one per CPU by default), each a single-threaded runtime with its own listening socket on
/// the same address (`SO_REUSEPORT`, so the kernel spreads connections over them) and its own
/// upstream clients. A request is read, forwarded and answered on one thread; on a
/// work-stealing runtime the client and upstream connection tasks of one request kept waking
/// each other across CPUs, which the profile showed as kernel time.
pub async fn start(
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, String> {
    let gateway = Gateway::new(config)?;
    let workers = match config.server.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let listeners = listen::bind(&config.server.listen, workers)?;
    let addr = listeners[0]
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    // Bound before any thread starts, so a bad `[admin]` section fails the start cleanly.
    let admin = match &config.admin {
        Some(admin_config) => Some(ops::admin::Admin::bind(
            std::sync::Arc::clone(&gateway),
            config,
            admin_config,
        )?),
        None => None,
    };
    let admin_addr = match &admin {
        Some((_, listener)) => Some(
            listener
                .local_addr()
                .map_err(|e| format!("cannot read the admin address: {e}"))?,
        ),
        None => None,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Worker threads are detached: each reports how it ended here, so that nothing blocks a
    // caller's runtime from shutting down (the server then stops with it).
    let (ended_tx, mut ended_rx) = tokio::sync::mpsc::unbounded_channel();
    let count = listeners.len() + usize::from(admin.is_some());
    if let Some((admin, listener)) = admin {
        // Its own thread and runtime: nothing it does waits behind, or delays, a request.
        let stop = stop_rx.clone();
        let ended = ended_tx.clone();
        let serve = move || -> std::io::Result<()> {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(ops::admin::serve(listener, admin, stop))
        };
        std::thread::Builder::new()
            .name("switchyard-admin".into())
            .spawn(move || {
                let _ = ended.send(serve());
            })
            .map_err(|e| format!("cannot start the admin thread: {e}"))?;
        if let Some(a) = admin_addr {
            tracing::info!(addr = %a, "admin API listening");
        }
    }
    for (i, listener) in listeners.into_iter().enumerate() {
        let worker = gateway.worker()?;
        let stop = stop_rx.clone();
        let ended = ended_tx.clone();
        let serve = move || -> std::io::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                tokio::spawn(timer_anchor());
                listen::serve(listener, worker, stop).await
            })
        };
        std::thread::Builder::new()
            .name(format!("switchyard-{i}"))
            .spawn(move || {
                let _ = ended.send(serve());
            })
            .map_err(|e| format!("cannot start worker thread {i}: {e}"))?;
    }
    drop(ended_tx);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let task = tokio::spawn(async move {
        let mut result = Ok(());
        for _ in 0..count {
            match ended_rx.recv().await {
                Some(Ok(())) => {}
                Some(Err(e)) if result.is_ok() => result = Err(e),
                Some(Err(_)) => {}
                // A thread that ends without reporting has panicked.
                None => return Err(std::io::Error::other("a worker thread panicked")),
            }
        }
        result
    });
    Ok(Running {
        addr,
        admin_addr,
        task,
    })
}

/// Keeps a timer due within the next few milliseconds on the worker's runtime, for ever.
///
/// tokio's timer wakes its thread through an eventfd write whenever a new timer is due
/// earlier than every pending one. Every request sets a few timers (header, attempt and
/// request deadlines); with no earlier timer pending, the first of them cost a `write` and an
/// extra `epoll_wait` per request (seen with `strace -c` under load). With this anchor always
/// due sooner, request timers never are the earliest. Its own cost is a wake-up every 100 ms;
/// only timers shorter than that (retry pauses) still pay the write.
async fn timer_anchor() {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}
