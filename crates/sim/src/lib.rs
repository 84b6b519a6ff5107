//! Mock LLM providers for tests, benchmarks and the demo.
//!
//! A [`MockProvider`] is a real HTTP server on a real socket that speaks one provider's wire
//! format (through that provider crate's [`switchyard_core::ServerSide`]), answers
//! deterministically (see [`reply`]) and misbehaves on command (see [`faults`]): error statuses,
//! delays, hangs, resets, slow, stalled, cut, broken or unfinished streams. It keeps a log of
//! what it was asked, so tests can assert what each upstream saw.
//!
//! Control it in-process ([`MockProvider::push_fault`], [`MockProvider::requests`]) or over
//! HTTP: `POST /_mock/faults` with a [`FaultRule`], `POST /_mock/reset`, `GET /_mock/requests`.

pub mod faults;
pub mod reply;
mod server;

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use switchyard_core::ServerSide;

pub use faults::{Fault, FaultPlan, FaultRule};

/// Which provider's wire format a mock speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wire {
    OpenAi,
    Anthropic,
    Gemini,
}

impl Wire {
    pub fn name(self) -> &'static str {
        match self {
            Wire::OpenAi => "openai",
            Wire::Anthropic => "anthropic",
            Wire::Gemini => "gemini",
        }
    }

    fn server_side(self) -> Option<Arc<dyn ServerSide>> {
        match self {
            #[cfg(feature = "openai")]
            Wire::OpenAi => Some(Arc::new(switchyard_openai::OpenAiServer)),
            #[cfg(feature = "anthropic")]
            Wire::Anthropic => Some(Arc::new(switchyard_anthropic::AnthropicServer)),
            #[cfg(feature = "gemini")]
            Wire::Gemini => Some(Arc::new(switchyard_gemini::GeminiServer)),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

impl FromStr for Wire {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "openai" => Ok(Wire::OpenAi),
            "anthropic" => Ok(Wire::Anthropic),
            "gemini" => Ok(Wire::Gemini),
            other => Err(format!(
                "unknown mock provider {other:?}; expected openai, anthropic or gemini"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct MockConfig {
    pub wire: Wire,
    /// Shown in answers ("Hello from <name>!") and ids.
    pub name: String,
    /// Port 0 picks a free one.
    pub addr: SocketAddr,
    /// Answer with this text instead of the greeting.
    pub reply: Option<String>,
    /// Text pieces per streamed answer; 0 means one per word.
    pub stream_chunks: usize,
    /// Pause between streamed chunks.
    pub chunk_delay: Duration,
    /// Keep request bodies in the log (off for benchmarks).
    pub log_bodies: bool,
}

impl MockConfig {
    pub fn new(wire: Wire, name: impl Into<String>) -> Self {
        MockConfig {
            wire,
            name: name.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            reply: None,
            stream_chunks: 0,
            chunk_delay: Duration::ZERO,
            log_bodies: true,
        }
    }
}

/// One request a mock received.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    pub path: String,
    /// Whether an API key header was present (the key itself is not kept).
    pub had_api_key: bool,
    /// The fault applied, if any.
    pub fault: Option<Fault>,
    #[serde(skip)]
    pub body: Bytes,
    /// The request's trace context headers (`traceparent`, `tracestate`), as sent: the only
    /// header values kept.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

impl LoggedRequest {
    /// The value of a kept header (see [`LoggedRequest::headers`]).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The only request headers a mock keeps the values of.
pub(crate) const LOGGED_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

impl LoggedRequest {
    /// The body as JSON (Null if it was not JSON or bodies are not logged).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

pub(crate) struct State {
    pub config: MockConfig,
    pub server: Arc<dyn ServerSide>,
    pub plan: Mutex<FaultPlan>,
    pub log: Mutex<Vec<LoggedRequest>>,
    pub counter: std::sync::atomic::AtomicU64,
    pub abandoned: std::sync::atomic::AtomicU64,
    pub connections: std::sync::atomic::AtomicU64,
}

/// A running mock provider. Dropping it (or [`MockProvider::shutdown`]) closes the listener,
/// so new connections are refused, as with a provider that went down.
pub struct MockProvider {
    addr: SocketAddr,
    state: Arc<State>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl MockProvider {
    /// Binds and starts serving on the current tokio runtime.
    pub async fn start(config: MockConfig) -> std::io::Result<MockProvider> {
        let server = config.wire.server_side().ok_or_else(|| {
            std::io::Error::other(format!(
                "this build has no {} support (cargo feature off)",
                config.wire.name()
            ))
        })?;
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            config,
            server,
            plan: Mutex::new(FaultPlan::default()),
            log: Mutex::new(Vec::new()),
            counter: std::sync::atomic::AtomicU64::new(0),
            abandoned: std::sync::atomic::AtomicU64::new(0),
            connections: std::sync::atomic::AtomicU64::new(0),
        });
        let accept_task = tokio::spawn(server::accept_loop(listener, Arc::clone(&state)));
        Ok(MockProvider {
            addr,
            state,
            accept_task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: the base URL to configure for this mock.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn push_fault(&self, rule: FaultRule) {
        lock(&self.state.plan).push(rule);
    }

    /// Clears faults and the request log.
    pub fn reset(&self) {
        lock(&self.state.plan).clear();
        lock(&self.state.log).clear();
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.state.log).clone()
    }

    pub fn request_count(&self) -> usize {
        lock(&self.state.log).len()
    }

    /// Streams whose reader (the gateway) went away before the stream's end.
    /// TCP connections accepted so far (to check that clients reuse them).
    pub fn connections(&self) -> u64 {
        self.state
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn abandoned_streams(&self) -> u64 {
        self.state
            .abandoned
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn shutdown(self) {}
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
