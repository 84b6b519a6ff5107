//! The OpenAI-compatible HTTP API. Handlers are thin: read and check the body, find the
//! route, hand over to [`failover`], encode what comes back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderValue, Method, StatusCode};
use switchyard_core::{ChatRequest, ServerSide, UpstreamError};
use switchyard_openai::{OpenAiServer, OpenAiStreamEncoder};
use switchyard_resilience::RetryBudget;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{Instrument, Span};

use crate::body::{self, Response, ResponseBody};
use crate::config::Config;
use crate::connection::{Incoming, Limits};
use crate::errors::GatewayError;
use crate::failover::{self, Policy};
use crate::ops::trace::TraceContext;
use crate::route::{self, Route, RouteTarget};
use crate::routing;
use crate::streaming;
use crate::upstream::Upstreams;
use switchyard_routing::strategy::Order;

/// Everything a request needs, shared by all worker threads.
pub struct Gateway {
    routes: HashMap<String, Arc<Route>>,
    metrics: Arc<crate::ops::metrics::Metrics>,
    connect_timeouts_ms: Vec<u64>,
    aliases: Vec<String>,
    max_body: usize,
    client_read_timeout: Duration,
    request_timeout: Duration,
    max_retry_after: Duration,
    budget: RetryBudget,
    ids: AtomicU64,
    started: u64,
    /// Client keys; `None` (no `[[keys]]`): open, and the request path only tests this.
    keys: Option<Box<crate::keys::Keys>>,
}

impl Gateway {
    pub fn new(config: &Config) -> Result<Arc<Self>, String> {
        let route::Routes {
            routes,
            connect_timeouts_ms,
            metrics,
        } = route::build(config)?;
        let mut aliases: Vec<String> = routes.keys().cloned().collect();
        aliases.sort();
        Ok(Arc::new(Gateway {
            routes,
            metrics,
            connect_timeouts_ms,
            aliases,
            max_body: config.server.max_body_bytes,
            client_read_timeout: Duration::from_millis(config.server.client_read_timeout_ms),
            request_timeout: Duration::from_millis(config.server.request_timeout_ms),
            max_retry_after: Duration::from_millis(config.retry.max_retry_after_ms),
            budget: RetryBudget::new(config.retry.budget_ratio, config.retry.budget_floor_per_sec),
            ids: AtomicU64::new(0),
            started: streaming::now_secs(),
            keys: crate::keys::Keys::from_config(config)?,
        }))
    }

    /// The client keys, when the config has any: their usage for reports.
    pub fn keys(&self) -> Option<&crate::keys::Keys> {
        self.keys.as_deref()
    }

    /// Every route, in no particular order (for the admin API and reports).
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.values().map(|r| &**r)
    }

    /// The Prometheus metrics every route records into.
    pub fn metrics(&self) -> &crate::ops::metrics::Metrics {
        &self.metrics
    }

    /// What one worker thread serves requests with: this gateway and the thread's own
    /// upstream clients.
    pub fn worker(self: &Arc<Self>) -> Result<Arc<Worker>, String> {
        Ok(Arc::new(Worker {
            gw: Arc::clone(self),
            upstreams: Arc::new(Upstreams::new(&self.connect_timeouts_ms)?),
        }))
    }

    /// What the connections of this gateway accept from a client.
    pub fn limits(&self) -> Limits {
        Limits {
            max_body: self.max_body,
            read_timeout: self.client_read_timeout,
        }
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
pub struct Worker {
    gw: Arc<Gateway>,
    upstreams: Arc<Upstreams>,
}

impl Worker {
    pub fn limits(&self) -> Limits {
        self.gw.limits()
    }
}

pub(crate) const TARGET_HEADER: HeaderName = HeaderName::from_static("x-switchyard-target");
pub(crate) const ATTEMPTS_HEADER: HeaderName = HeaderName::from_static("x-switchyard-attempts");
const WARNING_HEADER: HeaderName = HeaderName::from_static("x-switchyard-warning");
/// What the answer cost in USD, when the answering target has a price.
const COST_HEADER: HeaderName = HeaderName::from_static("x-switchyard-cost");

/// What a request path names.
#[derive(Clone, Copy)]
enum Endpoint {
    Chat,
    Models,
    Health,
    Metrics,
}

/// The HTTP API: every request the server reads comes here.
///
/// Four paths do not need a router: matching them by hand keeps the per-request work to a
/// string comparison or two.
pub async fn serve(worker: Arc<Worker>, req: Incoming) -> Response {
    let endpoint = match req.path_bytes() {
        b"/v1/chat/completions" | b"/chat/completions" => Endpoint::Chat,
        b"/v1/models" => Endpoint::Models,
        b"/health" => Endpoint::Health,
        b"/metrics" => Endpoint::Metrics,
        _ => return not_found(&req),
    };
    match (endpoint, &req.method) {
        (Endpoint::Chat, &Method::POST) => {
            let mut route = None;
            // Without an incoming `traceparent` (and without an exporter) this is `None`
            // and the span is disabled: nothing below records or formats anything.
            let trace = TraceContext::of(&req);
            let span = crate::ops::trace::chat_span(trace.as_ref());
            // Wrapping a future moves it: the handler's future is large, so it is wrapped
            // (and boxed) only when the span records something.
            let handled = if span.is_disabled() {
                handle_chat(&worker, req, &mut route, trace.as_ref(), &span).await
            } else {
                Box::pin(
                    handle_chat(&worker, req, &mut route, trace.as_ref(), &span)
                        .instrument(span.clone()),
                )
                .await
            };
            match handled {
                Ok(r) => r,
                Err(e) => {
                    if !span.is_disabled() {
                        span.record("outcome", e.metric_outcome());
                        span.record("error.type", e.metric_outcome());
                        span.record("attempts", crate::errors::attempt_count(e.attempts()));
                    }
                    worker.gw.metrics.request_failed(route, e.metric_outcome());
                    e.into_response()
                }
            }
        }
        (Endpoint::Models, &Method::GET | &Method::HEAD) => models(&worker.gw, &req),
        (Endpoint::Health, &Method::GET | &Method::HEAD) => health(&worker.gw),
        (Endpoint::Metrics, &Method::GET | &Method::HEAD) => {
            crate::ops::metrics::response(&worker.gw.metrics, &req)
        }
        (Endpoint::Chat, _) => method_not_allowed(&req, "POST"),
        (Endpoint::Models | Endpoint::Health | Endpoint::Metrics, _) => {
            method_not_allowed(&req, "GET, HEAD")
        }
    }
}

/// `route` is set once the request's route is known, for the caller's metrics.
async fn handle_chat<'w>(
    worker: &'w Worker,
    req: Incoming,
    route_seen: &mut Option<&'w str>,
    trace: Option<&TraceContext>,
    span: &Span,
) -> Result<Response, GatewayError> {
    let gw = &worker.gw;
    let key = match &gw.keys {
        None => None,
        Some(keys) => Some(keys.authenticate(&req)?),
    };
    let body = &req.body;
    // A match rather than `map_err(..)?`: each wrapper moved the whole request once more.
    let request = match OpenAiServer.parse_request(None, body) {
        Ok(request) => request,
        Err(e) => return Err(GatewayError::BadRequest(e)),
    };
    // Borrowed, not cloned: a reference count both worker threads write to would bounce
    // between their caches on every request.
    let route = gw
        .routes
        .get(&request.model)
        .ok_or_else(|| GatewayError::UnknownModel(request.model.clone()))?;
    *route_seen = Some(&route.alias);
    if !span.is_disabled() {
        span.record("gen_ai.request.model", route.alias.as_str());
        span.record("stream", request.stream);
    }
    // Held until the answer is out (a stream's by its relay): the key's request in flight.
    let ticket = match key {
        None => None,
        Some(key) => Some(key.admit(&route.alias)?),
    };
    let now = Instant::now();
    let deadline = now + gw.request_timeout;
    let order = if route.is_priority() {
        Order::identity(route.targets.len())
    } else {
        let order = routing::order(route, &req, &request, now);
        if order.is_empty() {
            return Err(routing::no_acceptable_target(route, &req, &request));
        }
        order
    };
    let policy = Policy {
        budget: &gw.budget,
        max_retry_after: gw.max_retry_after,
        deadline,
        hedge_after: routing::hedge_after(route, order, request.stream, now),
    };
    if request.stream {
        // Boxed so the handler's own future stays small: every connection task holds it,
        // and the streaming path alone is several KB.
        Box::pin(stream_chat(
            worker, route, request, order, &policy, ticket, trace, span,
        ))
        .await
    } else {
        let req = &request;
        let upstreams = &*worker.upstreams;
        let mut won = failover::run(route, order, &policy, |target, started| {
            let attempt = crate::ops::trace::Attempt {
                ctx: trace,
                span: crate::ops::trace::attempt_span(span, &route.alias, &target),
            };
            complete(upstreams, target, req, started, deadline, attempt)
        })
        .await?;
        let attempts = won.attempt_count();
        let target = &won.target;
        // One clock read for the latency, the slowness check and the statistics.
        let answered = Instant::now();
        let total = answered - won.started;
        let usage = match &mut won.value {
            Answer::Parsed(response) => response.usage.clone(),
            // Read by the forwarding check on its way through the body: never parsed again.
            Answer::Forwarded(_, usage) => usage.take(),
        };
        routing::record_answer(route, target, won.permit, answered, total, usage.as_ref());
        let cost = usage
            .as_ref()
            .and_then(|u| crate::accounting::bill(route, target, u));
        route.answered.inc();
        target.metrics.answered(false, total, None);
        if let Some(u) = &usage {
            target.metrics.billed(u, cost);
            crate::keys::charge(ticket.as_ref(), u, cost);
        }
        if !span.is_disabled() {
            span.record("outcome", "ok");
            span.record("attempts", attempts);
            span.record("target", target.name.as_str());
            crate::ops::trace::usage(span, usage.as_ref());
        }
        let mut resp = match won.value {
            Answer::Forwarded(bytes, _) => body::json(StatusCode::OK, bytes),
            Answer::Parsed(mut response) => {
                if response.id.is_empty() {
                    response.id = gw.next_id();
                }
                if response.created == 0 {
                    // Providers without a timestamp (Anthropic, Gemini) leave it to us.
                    response.created = streaming::now_secs();
                }
                let mut resp = body::json(StatusCode::OK, OpenAiServer.encode_response(&response));
                annotate_warnings(&mut resp, &response.warnings);
                resp
            }
        };
        annotate(&mut resp, &won.target, attempts);
        if let Some(usd) = cost {
            resp.append(COST_HEADER, crate::accounting::cost_header(usd));
        }
        Ok(resp)
    }
}

/// A non-streamed answer, ready for the client.
enum Answer {
    /// The upstream's own bytes: it speaks the client's format and the body passed
    /// [`switchyard_core::Provider::forward_check`], with the usage that check read.
    Forwarded(Bytes, Option<switchyard_core::Usage>),
    /// Translated through the canonical model.
    Parsed(Box<switchyard_core::ChatResponse>),
}

async fn complete(
    upstreams: &Upstreams,
    target: Arc<RouteTarget>,
    request: &ChatRequest,
    started: Instant,
    deadline: Instant,
    trace: crate::ops::trace::Attempt<'_>,
) -> Result<Answer, UpstreamError> {
    if trace.span.is_disabled() {
        return complete_attempt(upstreams, target, request, started, deadline, &trace).await;
    }
    let span = trace.span.clone();
    let result = Box::pin(
        complete_attempt(upstreams, target, request, started, deadline, &trace)
            .instrument(span.clone()),
    )
    .await;
    match &result {
        Ok(Answer::Parsed(response)) => crate::ops::trace::usage(&span, response.usage.as_ref()),
        Ok(Answer::Forwarded(_, usage)) => crate::ops::trace::usage(&span, usage.as_ref()),
        Err(e) => crate::ops::trace::attempt_failed(&span, e),
    }
    result
}

async fn complete_attempt(
    upstreams: &Upstreams,
    target: Arc<RouteTarget>,
    request: &ChatRequest,
    started: Instant,
    deadline: Instant,
    trace: &crate::ops::trace::Attempt<'_>,
) -> Result<Answer, UpstreamError> {
    let attempt_deadline = target.attempt_deadline(started, deadline);
    let header_wait = Duration::from_millis(target.timeouts.headers_ms);
    let opened = crate::upstream::open(
        upstreams,
        &target,
        request,
        started,
        header_wait,
        attempt_deadline,
        trace,
    )
    .await?;
    let body = crate::upstream::read_bounded(opened.response, 64 << 20, attempt_deadline)
        .await
        .map_err(|e| crate::upstream::scrub(&target, e))?;
    // Warnings go into the body, so an answer that has some is re-encoded.
    if target.answers_in_client_format && opened.warnings.is_empty() {
        if let Some(usage) = target.provider.forward_check(&body) {
            return Ok(Answer::Forwarded(body, usage));
        }
    }
    let mut response = target
        .provider
        .parse_response(&body)
        .map_err(|e| crate::upstream::scrub(&target, e))?;
    response.warnings.extend(opened.warnings);
    Ok(Answer::Parsed(Box::new(response)))
}

#[allow(clippy::too_many_arguments)]
async fn stream_chat(
    worker: &Worker,
    route: &Arc<Route>,
    request: ChatRequest,
    order: Order,
    policy: &Policy<'_>,
    ticket: Option<crate::keys::Ticket>,
    trace: Option<&TraceContext>,
    span: &Span,
) -> Result<Response, GatewayError> {
    let deadline = policy.deadline;
    let req = &request;
    let upstreams = &*worker.upstreams;
    let won = failover::run(route, order, policy, |target, started| {
        let attempt = crate::ops::trace::Attempt {
            ctx: trace,
            span: crate::ops::trace::attempt_span(span, &route.alias, &target),
        };
        streaming::open_until_content(upstreams, target, req, started, deadline, attempt)
    })
    .await?;
    if !span.is_disabled() {
        span.record("attempts", won.attempt_count());
        span.record("target", won.target.name.as_str());
    }
    let warnings = won.value.warnings.clone();
    let attempts = won.attempt_count();
    route.answered.inc();
    let meta = streaming::meta_from(&won.value.held, &won.target.model, || worker.gw.next_id());
    let encoder: Box<dyn switchyard_core::StreamEncoder> =
        Box::new(OpenAiStreamEncoder::new(meta, request.include_usage));
    let (tx, rx) = mpsc::channel::<Bytes>(32);
    let target = Arc::clone(&won.target);
    let ctx = streaming::RelayContext {
        upstreams: Arc::clone(&worker.upstreams),
        route: Arc::clone(route),
        request,
        deadline,
        key: ticket,
        trace: trace.cloned(),
        span: span.clone(),
    };
    let relay_span = span.clone();
    let relay = streaming::relay(ctx, won.value, encoder, target, won.permit, tx);
    // The instrumented wrapper enters the span on every poll (every chunk): only when the
    // span records something.
    if relay_span.is_disabled() {
        tokio::spawn(relay);
    } else {
        tokio::spawn(relay.instrument(relay_span));
    }
    // The relay runs on this thread: let it encode the events already held, so that the
    // response head and the first chunk leave in one write (one less round of wake-ups
    // before the client's first byte).
    tokio::task::yield_now().await;
    let mut resp = Response::new(StatusCode::OK, body::EVENT_STREAM, ResponseBody::Stream(rx));
    resp.append(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    annotate(&mut resp, &won.target, attempts);
    annotate_warnings(&mut resp, &warnings);
    Ok(resp)
}

/// Tells the client which target answered, and after how many attempts.
fn annotate(resp: &mut Response, target: &RouteTarget, attempts: usize) {
    if let Some(v) = &target.name_header {
        resp.append(TARGET_HEADER, v.clone());
    }
    resp.append(ATTEMPTS_HEADER, count_header(attempts));
}

/// Tells the client what (if anything) was dropped from its request on the way (also in the
/// body's `warnings` when not streamed).
fn annotate_warnings(resp: &mut Response, warnings: &[String]) {
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
            resp.append(WARNING_HEADER, v);
        }
    }
}

/// A small count as a header value, without formatting (and allocating) one per answer.
pub(crate) fn count_header(n: usize) -> HeaderValue {
    const SMALL: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    match SMALL.get(n) {
        Some(s) => HeaderValue::from_static(s),
        None => HeaderValue::from(n),
    }
}

fn models(gw: &Gateway, req: &Incoming) -> Response {
    let key = match &gw.keys {
        None => None,
        Some(keys) => match keys.authenticate(req) {
            Ok(key) => Some(key),
            Err(e) => return GatewayError::from(e).into_response(),
        },
    };
    let data: Vec<_> = gw
        .aliases
        .iter()
        .filter(|a| key.is_none_or(|k| k.may_use(a)))
        .map(|a| serde_json::json!({"id": a, "object": "model", "created": gw.started, "owned_by": "switchyard"}))
        .collect();
    json_value(&serde_json::json!({"object": "list", "data": data}))
}

fn health(gw: &Gateway) -> Response {
    json_value(&crate::health::report(gw.routes.values().map(|r| &**r)))
}

fn json_value(v: &serde_json::Value) -> Response {
    body::json(StatusCode::OK, v.to_string())
}

fn plain_error(status: StatusCode, message: &str, code: &str) -> Response {
    body::json(
        status,
        switchyard_openai::error_body(message, "invalid_request_error", None, Some(code)),
    )
}

fn not_found(req: &Incoming) -> Response {
    plain_error(
        StatusCode::NOT_FOUND,
        &format!("no route for {} {}; this gateway serves POST /v1/chat/completions, GET /v1/models and GET /health", req.method, req.path()),
        "unknown_url",
    )
}

fn method_not_allowed(req: &Incoming, allowed: &'static str) -> Response {
    let mut resp = plain_error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!(
            "method {} is not allowed on {}; use {allowed}",
            req.method,
            req.path()
        ),
        "method_not_allowed",
    );
    resp.append(http::header::ALLOW, HeaderValue::from_static(allowed));
    resp
}
