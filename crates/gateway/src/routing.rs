//! The gateway's side of routing: what it tells the route's strategy about a request, when a
//! hedge starts, and what it records about each answer (the statistics the strategies,
//! soft failures and `/health` read).

use std::time::Duration;

use switchyard_core::{ChatRequest, Usage};
use switchyard_resilience::Permit;
use switchyard_routing::stats::{Answered, Quantile};
use switchyard_routing::strategy::{Order, RequestInfo, Strategy};
use tokio::time::Instant;

use crate::config::HedgeAfter;
use crate::connection::Incoming;
use crate::errors::GatewayError;
use crate::route::{Route, RouteTarget};

/// The header a request names its task with, for quality floors.
const TASK_HEADER: &str = "x-switchyard-task";
/// The same, as a `metadata` entry of the request body.
const TASK_METADATA: &str = "switchyard_task";

/// How much later than the recent median an answer (or a stream's first token) must come,
/// besides being `slow_factor` times as late, before it counts against the target's breaker.
/// Without it a fast upstream (a median under a millisecond) would have its breaker opened by
/// scheduling jitter of a few milliseconds; against a cloud provider's median of hundreds of
/// milliseconds the ratio decides alone.
pub const SLOW_MARGIN: Duration = Duration::from_millis(100);

/// The order for a route whose strategy is not `priority`; empty when the `cost` strategy
/// found no target good enough for the request's task (see [`no_acceptable_target`]).
pub fn order(route: &Route, incoming: &Incoming, request: &ChatRequest, now: Instant) -> Order {
    route.router.order(
        now,
        &RequestInfo {
            streamed: request.stream,
            body_bytes: incoming.body.len(),
            max_tokens: request.max_output_tokens.map(u64::from),
            task: task_of(route, incoming, request),
        },
    )
}

/// The client's error when [`order`] came back empty.
pub fn no_acceptable_target(
    route: &Route,
    incoming: &Incoming,
    request: &ChatRequest,
) -> GatewayError {
    let floor = match route.router.strategy() {
        Strategy::Cost(p) => p.quality_floor.unwrap_or(0.0),
        _ => 0.0,
    };
    GatewayError::NoAcceptableTarget {
        route: route.alias.clone(),
        task: task_of(route, incoming, request).to_string(),
        floor,
    }
}

/// The request's task: its header, else its metadata entry, else the route alias.
fn task_of<'a>(route: &'a Route, incoming: &'a Incoming, request: &'a ChatRequest) -> &'a str {
    incoming
        .header(TASK_HEADER)
        .filter(|t| !t.is_empty())
        .or_else(|| request.metadata.get(TASK_METADATA).map(String::as_str))
        .unwrap_or(&route.alias)
}

/// When to hedge this request, if the route hedges: a fixed delay, or a quantile of the first
/// target's recent latency (no hedge until it has enough samples to say).
pub fn hedge_after(route: &Route, order: Order, streamed: bool, now: Instant) -> Option<Duration> {
    match route.hedge_after? {
        HedgeAfter::Fixed(d) => Some(d),
        HedgeAfter::Quantile(q) => {
            let first = route.targets.get(order.first()?)?;
            first.stats.quick(now, streamed, q)
        }
    }
}

/// True when `took` is over `factor` times the target's recent median and [`SLOW_MARGIN`]
/// over it: a success that still counts against the breaker.
pub fn is_slow(
    target: &RouteTarget,
    now: Instant,
    streamed: bool,
    took: Duration,
    factor: f64,
) -> bool {
    target
        .stats
        .quick(now, streamed, Quantile::P50)
        // In f64 seconds: `Duration::mul_f64` checks and rounds its way back to a Duration
        // (most of this function's cost on every answer, in callgrind).
        .is_some_and(|m| {
            took.as_secs_f64() > m.as_secs_f64() * factor && took >= m.saturating_add(SLOW_MARGIN)
        })
}

/// A non-streamed answer: its latency goes into the statistics (after the slowness check, so
/// an outlier is judged against the median before it) and its permit is reported.
pub fn record_answer(
    route: &Route,
    target: &RouteTarget,
    permit: Permit,
    now: Instant,
    total: Duration,
    usage: Option<&Usage>,
) {
    if is_slow(target, now, false, total, route.slow_factor) {
        tracing::warn!(target = %target.name, "answer took {} ms, over {}x the recent median; counted against the breaker", total.as_millis(), route.slow_factor);
        permit.failure("slow_answer");
    } else {
        permit.success();
    }
    target.stats.record_answer(
        now,
        &Answered {
            streamed: false,
            ttft: None,
            total,
            output_tokens: usage.map(|u| u.output_tokens),
            generation: None,
        },
    );
}
