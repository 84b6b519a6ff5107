//! `GET /health`: per target, its breaker (and recovery stage), recent latency, throughput,
//! errors and spend; per route, its strategy and the order it would use now, with why.

use serde_json::{json, Map, Value};
use switchyard_routing::stats::Percentiles;
use tokio::time::Instant;

use crate::route::{Route, RouteTarget};

pub fn report<'a>(routes: impl Iterator<Item = &'a Route>) -> Value {
    let now = Instant::now();
    let now_ms = crate::accounting::now_ms();
    let mut targets = Map::new();
    let mut route_reports = Map::new();
    let mut routes: Vec<&Route> = routes.collect();
    routes.sort_by(|a, b| a.alias.cmp(&b.alias));
    for route in routes {
        for t in &route.targets {
            if targets.contains_key(&t.name) {
                continue;
            }
            targets.insert(t.name.clone(), target_report(t, now, now_ms));
        }
        let order = |streamed: bool| -> Vec<Value> {
            route
                .router
                .explain(now, streamed, &route.alias)
                .into_iter()
                .filter_map(|r| {
                    let t = route.targets.get(r.index)?;
                    Some(json!({"target": t.name, "score": r.score, "reason": r.reason}))
                })
                .collect()
        };
        route_reports.insert(
            route.alias.clone(),
            json!({
                "strategy": route.router.strategy().name(),
                "order": order(false),
                "order_streamed": order(true),
                "hedge_after": route.hedge_after.map(|h| format!("{h:?}")),
                "spent_usd": route.spent.total(),
            }),
        );
    }
    json!({"status": "ok", "targets": targets, "routes": route_reports})
}

/// One target's entry: its breaker (state, mode, recovery stage, an operator's override),
/// whether it is drained, its live statistics and its spend. `now` and `now_ms` are read
/// once per report.
pub fn target_report(t: &RouteTarget, now: Instant, now_ms: u64) -> Value {
    let b = t.breaker.snapshot();
    let s = t.stats.summary(now);
    let cap = t.cap.as_ref().map(|c| {
        json!({
            "limit_usd": c.limit(),
            "spent_usd": c.spent(now_ms),
            "over": c.is_over(now_ms),
            "resets_in_s": c.resets_in(now_ms).as_secs(),
        })
    });
    json!({
        "provider": t.provider.name(),
        "model": t.model,
        "region": t.region,
        "breaker": b.state,
        "consecutive_failures": b.consecutive_failures,
        "last_trip_reason": b.last_trip_reason,
        "recovery_percent": b.recovery_percent,
        "breaker_mode": b.mode,
        "breaker_window": (b.mode == "error_rate").then(|| json!({"requests": b.window_requests, "failures": b.window_failures})),
        "forced": b.forced.map(|f| f.as_str()),
        "drained": t.is_drained(),
        "requests": s.requests,
        "failures": s.failures,
        "error_rate": s.error_rate,
        "failures_by_class": s.failures_by_class.iter().map(|(c, n)| (c.to_string(), json!(n))).collect::<Map<_, _>>(),
        "first_token_ms": s.ttft.map(percentiles),
        "total_ms": s.total.map(percentiles),
        "tokens_per_sec": s.tokens_per_sec,
        "spent_usd": t.spent.total(),
        "cost_cap": cap,
    })
}

fn percentiles(p: Percentiles) -> Value {
    let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    json!({"count": p.count, "p50": ms(p.p50), "p90": ms(p.p90), "p95": ms(p.p95), "p99": ms(p.p99)})
}
