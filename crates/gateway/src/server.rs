//! The OpenAI-compatible HTTP API. Handlers are thin: read and check the body, find the
//! route, hand over to [`failover`], encode what comes back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::BodyExt;
use switchyard_core::{ChatRequest, ServerSide, UpstreamError};
use switchyard_openai::{OpenAiServer, OpenAiStreamEncoder};
use switchyard_resilience::RetryBudget;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::Config;
use crate::errors::{attempt_count, GatewayError};
use crate::failover::{self, Policy};
use crate::route::{self, Route, RouteTarget};
use crate::streaming;
use crate::upstream::Upstreams;

/// Everything a request needs, shared by all worker threads.
pub struct Gateway {
    routes: HashMap<String, Arc<Route>>,
    connect_timeouts_ms: Vec<u64>,
    aliases: Vec<String>,
    max_body: usize,
    request_timeout: Duration,
    max_retry_after: Duration,
    budget: RetryBudget,
    ids: AtomicU64,
    started: u64,
}

impl Gateway {
    pub fn new(config: &Config) -> Result<Arc<Self>, String> {
        let route::Routes {
            routes,
            connect_timeouts_ms,
        } = route::build(config)?;
        let mut aliases: Vec<String> = routes.keys().cloned().collect();
        aliases.sort();
        Ok(Arc::new(Gateway {
            routes,
            connect_timeouts_ms,
            aliases,
            max_body: config.server.max_body_bytes,
            request_timeout: Duration::from_millis(config.server.request_timeout_ms),
            max_retry_after: Duration::from_millis(config.retry.max_retry_after_ms),
            budget: RetryBudget::new(config.retry.budget_ratio, config.retry.budget_floor_per_sec),
            ids: AtomicU64::new(0),
            started: streaming::now_secs(),
        }))
    }

    /// The HTTP API for one worker thread, with that worker's own upstream clients.
    pub fn router(self: &Arc<Self>) -> Result<Router, String> {
        let worker = Arc::new(Worker {
            gw: Arc::clone(self),
            upstreams: Arc::new(Upstreams::new(&self.connect_timeouts_ms)?),
        });
        Ok(Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/chat/completions", post(chat_completions))
            .route("/v1/models", get(models))
            .route("/health", get(health))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .with_state(worker))
    }

    fn next_id(&self) -> String {
        format!(
            "chatcmpl-sy{:x}{:06x}",
            self.started,
            self.ids.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// What a handler gets: the shared gateway and its worker thread's upstream clients.
struct Worker {
    gw: Arc<Gateway>,
    upstreams: Arc<Upstreams>,
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, GatewayError> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(GatewayError::PayloadTooLarge { limit })
        }
        Err(e) => Err(GatewayError::BadRequest(UpstreamError::new(
            switchyard_core::ErrorClass::InvalidRequest,
            format!("could not read the request body: {e}"),
        ))),
    }
}

async fn chat_completions(State(worker): State<Arc<Worker>>, req: Request) -> Response {
    match handle_chat(&worker, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle_chat(worker: &Worker, req: Request) -> Result<Response, GatewayError> {
    let gw = &worker.gw;
    let body = read_body(req.into_body(), gw.max_body).await?;
    let request = OpenAiServer
        .parse_request(None, &body)
        .map_err(GatewayError::BadRequest)?;
    let route = gw
        .routes
        .get(&request.model)
        .cloned()
        .ok_or_else(|| GatewayError::UnknownModel(request.model.clone()))?;
    let deadline = Instant::now() + gw.request_timeout;
    let policy = Policy {
        budget: &gw.budget,
        max_retry_after: gw.max_retry_after,
        deadline,
    };
    if request.stream {
        // Both paths are boxed so the handler's own future stays small: axum and hyper move
        // it several times per request, and the profile showed those copies.
        Box::pin(stream_chat(worker, &route, request, &policy)).await
    } else {
        let req = &request;
        let upstreams = &*worker.upstreams;
        let won = Box::pin(failover::run(&route, &policy, |target| {
            complete(upstreams, target, req, deadline)
        }))
        .await?;
        won.permit.success();
        let mut response = won.value;
        if response.id.is_empty() {
            response.id = gw.next_id();
        }
        if response.created == 0 {
            // Providers without a timestamp (Anthropic, Gemini) leave it to us.
            response.created = streaming::now_secs();
        }
        let mut resp = (
            StatusCode::OK,
            [(http::header::CONTENT_TYPE, "application/json")],
            OpenAiServer.encode_response(&response),
        )
            .into_response();
        annotate(
            &mut resp,
            &won.target,
            attempt_count(&won.attempts),
            &response.warnings,
        );
        Ok(resp)
    }
}

async fn complete(
    upstreams: &Upstreams,
    target: Arc<RouteTarget>,
    request: &ChatRequest,
    deadline: Instant,
) -> Result<switchyard_core::ChatResponse, UpstreamError> {
    let attempt_deadline = target.attempt_deadline(deadline);
    let header_wait = Duration::from_millis(target.timeouts.headers_ms);
    let opened =
        crate::upstream::open(upstreams, &target, request, header_wait, attempt_deadline).await?;
    let body = crate::upstream::read_bounded(opened.response, 64 << 20, attempt_deadline)
        .await
        .map_err(|e| crate::upstream::scrub(&target, e))?;
    let mut response = target
        .provider
        .parse_response(&body)
        .map_err(|e| crate::upstream::scrub(&target, e))?;
    response.warnings.extend(opened.warnings);
    Ok(response)
}

async fn stream_chat(
    worker: &Worker,
    route: &Arc<Route>,
    request: ChatRequest,
    policy: &Policy<'_>,
) -> Result<Response, GatewayError> {
    let deadline = policy.deadline;
    let req = &request;
    let upstreams = &*worker.upstreams;
    let won = failover::run(route, policy, |target| {
        streaming::open_until_content(upstreams, target, req, deadline)
    })
    .await?;
    let warnings = won.value.warnings.clone();
    let meta = streaming::meta_from(&won.value.held, &won.target.model, || worker.gw.next_id());
    let encoder: Box<dyn switchyard_core::StreamEncoder> =
        Box::new(OpenAiStreamEncoder::new(meta, request.include_usage));
    let (tx, mut rx) = mpsc::channel::<Bytes>(32);
    let target = Arc::clone(&won.target);
    let ctx = streaming::RelayContext {
        upstreams: Arc::clone(&worker.upstreams),
        route: Arc::clone(route),
        request,
        deadline,
    };
    tokio::spawn(streaming::relay(
        ctx, won.value, encoder, target, won.permit, tx,
    ));
    // The relay runs on this thread: let it encode the events already held, so that the
    // response head and the first chunk leave in one write (one less round of wake-ups
    // before the client's first byte).
    tokio::task::yield_now().await;
    let body_stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|o| o.map(Ok::<Bytes, std::convert::Infallible>))
    });
    let mut resp = Response::new(Body::from_stream(body_stream));
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    annotate(
        &mut resp,
        &won.target,
        attempt_count(&won.attempts),
        &warnings,
    );
    Ok(resp)
}

/// Tells the client which target answered, after how many attempts, and what (if anything)
/// was dropped from its request on the way (also in the body's `warnings` when not streamed).
fn annotate(resp: &mut Response, target: &RouteTarget, attempts: usize, warnings: &[String]) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&target.name) {
        h.insert("x-switchyard-target", v);
    }
    h.insert("x-switchyard-attempts", HeaderValue::from(attempts));
    for w in warnings {
        // Header values must be visible ASCII; keep the gist of anything else.
        let ascii: String = w
            .chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        if let Ok(v) = HeaderValue::from_str(&ascii) {
            h.append("x-switchyard-warning", v);
        }
    }
}

async fn models(State(worker): State<Arc<Worker>>) -> Response {
    let gw = &worker.gw;
    let data: Vec<_> = gw
        .aliases
        .iter()
        .map(|a| serde_json::json!({"id": a, "object": "model", "created": gw.started, "owned_by": "switchyard"}))
        .collect();
    axum::Json(serde_json::json!({"object": "list", "data": data})).into_response()
}

async fn health(State(worker): State<Arc<Worker>>) -> Response {
    let gw = &worker.gw;
    let mut targets = serde_json::Map::new();
    for route in gw.routes.values() {
        for t in &route.targets {
            let s = t.breaker.snapshot();
            targets.insert(
                t.name.clone(),
                serde_json::json!({"breaker": s.state, "consecutive_failures": s.consecutive_failures, "last_trip_reason": s.last_trip_reason}),
            );
        }
    }
    axum::Json(serde_json::json!({"status": "ok", "targets": targets})).into_response()
}

fn plain_error(status: StatusCode, message: &str, code: &str) -> Response {
    (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        switchyard_openai::error_body(message, "invalid_request_error", None, Some(code)),
    )
        .into_response()
}

async fn not_found(req: Request) -> Response {
    plain_error(
        StatusCode::NOT_FOUND,
        &format!("no route for {} {}; this gateway serves POST /v1/chat/completions, GET /v1/models and GET /health", req.method(), req.uri().path()),
        "unknown_url",
    )
}

async fn method_not_allowed(req: Request) -> Response {
    plain_error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!(
            "method {} is not allowed on {}",
            req.method(),
            req.uri().path()
        ),
        "method_not_allowed",
    )
}
