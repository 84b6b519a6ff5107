//! Prometheus metrics, in the Prometheus project's own Rust client.
//!
//! Names and units follow Prometheus conventions (`_total` counters, `_seconds`, `_usd`).
//! Labels are bounded: route aliases, target names and providers from the config, error
//! classes and outcomes from fixed lists; nothing the client sends becomes a label (a request
//! for an unknown model is counted under `route="_unknown"`).
//!
//! The request path touches only handles resolved when the routes are built (one atomic add
//! per counter, one lock per histogram observation); a label set is looked up in a family only
//! on error paths. Breaker gauges and transitions are read from the breakers at scrape time,
//! so the healthy path pays nothing for them.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use switchyard_core::{ErrorClass, Usage};
use switchyard_resilience::{Breaker, STATE_NAMES};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    route: String,
    target: String,
    provider: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    route: String,
    target: String,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    route: String,
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    route: String,
    target: String,
    stream: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    route: String,
    target: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    target: String,
    to: &'static str,
}

type CostCounter = Counter<f64, AtomicU64>;

/// A breaker by the name of the first target that uses it, and the transition counts already
/// added to the counters.
type WatchedBreaker = (String, Arc<Breaker>, [u64; 4]);

fn latency_histogram() -> Histogram {
    // 1 ms to ~65 s, doubling: first tokens and whole answers of LLMs span that range.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Every metric family, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    attempts: Family<AttemptLabels, Counter>,
    failovers: Family<ClassLabels, Counter>,
    retries: Family<ClassLabels, Counter>,
    hedges: Family<TargetLabels, Counter>,
    continuations: Family<TargetLabels, Counter>,
    first_token: Family<TargetLabels, Histogram, fn() -> Histogram>,
    duration: Family<DurationLabels, Histogram, fn() -> Histogram>,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<TargetLabels, CostCounter>,
    breaker_state: Family<UpstreamLabels, Gauge>,
    recovery_percent: Family<UpstreamLabels, Gauge>,
    breaker_transitions: Family<TransitionLabels, Counter>,
    breakers: Mutex<Vec<WatchedBreaker>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchyard");
        let m = Metrics {
            requests: Family::default(),
            attempts: Family::default(),
            failovers: Family::default(),
            retries: Family::default(),
            hedges: Family::default(),
            continuations: Family::default(),
            first_token: Family::new_with_constructor(latency_histogram),
            duration: Family::new_with_constructor(latency_histogram),
            tokens: Family::default(),
            cost: Family::default(),
            breaker_state: Family::default(),
            recovery_percent: Family::default(),
            breaker_transitions: Family::default(),
            breakers: Mutex::new(Vec::new()),
            registry: Registry::default(),
        };
        registry.register(
            "requests",
            "Client requests by route and outcome (ok, or the error the client got)",
            m.requests.clone(),
        );
        registry.register(
            "upstream_attempts",
            "Attempts on upstream targets by outcome (ok, cancelled, or the error class)",
            m.attempts.clone(),
        );
        registry.register(
            "failovers",
            "Moves to the next target after a failure, by the class of the failure",
            m.failovers.clone(),
        );
        registry.register(
            "retries",
            "Same-target retries, by the class of the failure retried",
            m.retries.clone(),
        );
        registry.register(
            "hedges",
            "Hedged attempts started on a target because the first had produced nothing yet",
            m.hedges.clone(),
        );
        registry.register(
            "continuations",
            "Broken streams continued on a target after content had been sent",
            m.continuations.clone(),
        );
        registry.register_with_unit(
            "first_token",
            "Time from sending a streamed request to its first content",
            Unit::Seconds,
            m.first_token.clone(),
        );
        registry.register_with_unit(
            "answer_duration",
            "Time from sending a request to the end of its answer",
            Unit::Seconds,
            m.duration.clone(),
        );
        registry.register(
            "tokens",
            "Tokens by kind: input and output (their totals), cached_input, cache_write and reasoning (parts of them)",
            m.tokens.clone(),
        );
        registry.register(
            "cost_usd",
            "What answers cost at the targets' configured prices, in US dollars",
            m.cost.clone(),
        );
        registry.register(
            "breaker_state",
            "Each upstream's breaker: 0 closed, 1 open, 2 half-open, 3 recovering",
            m.breaker_state.clone(),
        );
        registry.register(
            "breaker_recovery_percent",
            "Share of requests the recovery ramp lets through (100 when not recovering)",
            m.recovery_percent.clone(),
        );
        registry.register(
            "breaker_transitions",
            "Breaker state changes, by the state entered",
            m.breaker_transitions.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The handles one target of one route writes to on the request path.
    pub fn target(&self, route: &str, target: &str, provider: &'static str) -> TargetMetrics {
        let t = |s: &str| s.to_string();
        let tl = TargetLabels {
            route: t(route),
            target: t(target),
        };
        let tokens = |kind: &'static str| {
            self.tokens.get_or_create_owned(&TokenLabels {
                route: t(route),
                target: t(target),
                kind,
            })
        };
        let duration = |stream: &'static str| {
            self.duration.get_or_create_owned(&DurationLabels {
                route: t(route),
                target: t(target),
                stream,
            })
        };
        TargetMetrics {
            route: t(route),
            target: t(target),
            provider,
            answered: self.attempts.get_or_create_owned(&AttemptLabels {
                route: t(route),
                target: t(target),
                provider,
                outcome: "ok",
            }),
            duration: [duration("false"), duration("true")],
            first_token: self.first_token.get_or_create_owned(&tl),
            tokens: [
                tokens("input"),
                tokens("output"),
                tokens("cached_input"),
                tokens("cache_write"),
                tokens("reasoning"),
            ],
            cost: self.cost.get_or_create_owned(&tl),
            by_class: Arc::new(Default::default()),
        }
    }

    /// The counter of answered requests of one route.
    pub fn route_ok(&self, route: &str) -> Counter {
        self.requests.get_or_create_owned(&RequestLabels {
            route: route.to_string(),
            outcome: "ok",
        })
    }

    /// A request that ended with an error; `route` is `None` when no route was found.
    pub fn request_failed(&self, route: Option<&str>, outcome: &'static str) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.unwrap_or("_unknown").to_string(),
                outcome,
            })
            .inc();
    }

    /// A failed attempt, by its class.
    pub fn attempt_failed(&self, t: &TargetMetrics, class: ErrorClass) {
        t.by_class[class.index()]
            .failed
            .get_or_init(|| {
                self.attempts.get_or_create_owned(&AttemptLabels {
                    route: t.route.clone(),
                    target: t.target.clone(),
                    provider: t.provider,
                    outcome: class.name(),
                })
            })
            .inc();
    }

    pub fn attempt_cancelled(&self, t: &TargetMetrics) {
        self.attempts
            .get_or_create(&AttemptLabels {
                route: t.route.clone(),
                target: t.target.clone(),
                provider: t.provider,
                outcome: "cancelled",
            })
            .inc();
    }

    pub fn retried(&self, t: &TargetMetrics, class: ErrorClass) {
        t.by_class[class.index()]
            .retried
            .get_or_init(|| self.retries.get_or_create_owned(&t.class_labels(class)))
            .inc();
    }

    pub fn failed_over(&self, t: &TargetMetrics, class: ErrorClass) {
        t.by_class[class.index()]
            .failed_over
            .get_or_init(|| self.failovers.get_or_create_owned(&t.class_labels(class)))
            .inc();
    }

    pub fn hedged(&self, t: &TargetMetrics) {
        self.hedges.get_or_create(&t.labels()).inc();
    }

    pub fn continued(&self, t: &TargetMetrics) {
        self.continuations.get_or_create(&t.labels()).inc();
    }

    /// Watches an upstream's breaker (once per upstream; targets sharing it share it here).
    pub fn watch_breaker(&self, target: &str, breaker: &Arc<Breaker>) {
        let mut breakers = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        if !breakers.iter().any(|(_, b, _)| Arc::ptr_eq(b, breaker)) {
            breakers.push((target.to_string(), Arc::clone(breaker), [0; 4]));
        }
    }

    /// The exposition in the classic Prometheus text format (0.0.4), what most scrapers and
    /// `promtool` read: the OpenMetrics text with counter families named by their samples
    /// (`x_total`), and without the `# UNIT` and `# EOF` lines that format does not have.
    pub fn encode_classic(&self) -> String {
        to_classic(&self.encode())
    }

    /// The OpenMetrics text exposition, with breaker gauges and transitions read now.
    pub fn encode(&self) -> String {
        {
            let mut breakers = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
            for (target, breaker, seen) in breakers.iter_mut() {
                let labels = UpstreamLabels {
                    target: target.clone(),
                };
                let snap = breaker.snapshot();
                let state = STATE_NAMES
                    .iter()
                    .position(|s| *s == snap.state)
                    .unwrap_or(0);
                self.breaker_state
                    .get_or_create(&labels)
                    .set(i64::try_from(state).unwrap_or(0));
                self.recovery_percent
                    .get_or_create(&labels)
                    .set(i64::from(snap.recovery_percent.unwrap_or(100)));
                let now = breaker.transitions();
                for (i, (n, before)) in now.iter().zip(seen.iter_mut()).enumerate() {
                    let counter = self.breaker_transitions.get_or_create(&TransitionLabels {
                        target: target.clone(),
                        to: STATE_NAMES[i],
                    });
                    counter.inc_by(n.saturating_sub(*before));
                    *before = *n;
                }
            }
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// One target of one route: the handles its answers write to.
#[derive(Clone, Debug)]
pub struct TargetMetrics {
    route: String,
    target: String,
    provider: &'static str,
    answered: Counter,
    /// Non-streamed, streamed.
    duration: [Histogram; 2],
    first_token: Histogram,
    /// input, output, cached_input, cache_write, reasoning.
    tokens: [Counter; 5],
    cost: CostCounter,
    /// Per error class, the counters of the failure path, resolved on first use: a series
    /// appears once something happened, and later failures skip the label lookup (two
    /// `String` label sets built and hashed per failed attempt, in callgrind).
    by_class: Arc<[ClassCounters; ErrorClass::ALL.len()]>,
}

#[derive(Debug, Default)]
struct ClassCounters {
    failed: std::sync::OnceLock<Counter>,
    retried: std::sync::OnceLock<Counter>,
    failed_over: std::sync::OnceLock<Counter>,
}

impl TargetMetrics {
    fn labels(&self) -> TargetLabels {
        TargetLabels {
            route: self.route.clone(),
            target: self.target.clone(),
        }
    }

    fn class_labels(&self, class: ErrorClass) -> ClassLabels {
        ClassLabels {
            route: self.route.clone(),
            target: self.target.clone(),
            class: class.name(),
        }
    }

    /// An answer delivered (a stream: when it ended).
    pub fn answered(&self, streamed: bool, took: Duration, first_token: Option<Duration>) {
        self.answered.inc();
        self.duration[usize::from(streamed)].observe(took.as_secs_f64());
        if let Some(d) = first_token {
            self.first_token.observe(d.as_secs_f64());
        }
    }

    /// The tokens of one answer (or of this target's part of a continued stream) and what
    /// they cost.
    pub fn billed(&self, usage: &Usage, cost: Option<f64>) {
        self.tokens[0].inc_by(usage.input_tokens);
        self.tokens[1].inc_by(usage.output_tokens);
        for (i, n) in [
            usage.cached_input_tokens,
            usage.cache_creation_input_tokens,
            usage.reasoning_tokens,
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(n) = n.filter(|&n| n > 0) {
                self.tokens[2 + i].inc_by(n);
            }
        }
        if let Some(usd) = cost {
            self.cost.inc_by(usd);
        }
    }
}

/// `GET /metrics`, on the main listener and the admin one: OpenMetrics to a scraper that asks
/// for it (Prometheus does), the classic text format to everyone else.
pub fn response(metrics: &Metrics, req: &crate::connection::Incoming) -> crate::body::Response {
    use http::HeaderValue;
    let openmetrics = req
        .header("accept")
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let (content_type, text) = if openmetrics {
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        )
    } else {
        (
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.encode_classic(),
        )
    };
    let mut resp = crate::body::Response::new(
        http::StatusCode::OK,
        HeaderValue::from_static(content_type),
        crate::body::ResponseBody::Whole(Some(bytes::Bytes::from(text))),
    );
    resp.append(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    resp
}

/// OpenMetrics text to the classic Prometheus text format. The two differ, for what this
/// registry emits, only in how a counter family is named in `# HELP` and `# TYPE` (OpenMetrics:
/// without `_total`; classic: the sample name) and in the `# UNIT` and `# EOF` lines.
fn to_classic(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].into_iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_follow_the_conventions() {
        let m = Metrics::new();
        let t = m.target("chat", "a", "openai");
        t.answered(false, Duration::from_millis(20), None);
        t.billed(&Usage::default(), Some(0.5));
        m.route_ok("chat").inc();
        m.request_failed(None, "model_not_found");
        let text = m.encode();
        for line in [
            "switchyard_requests_total{route=\"chat\",outcome=\"ok\"} 1",
            "switchyard_requests_total{route=\"_unknown\",outcome=\"model_not_found\"} 1",
            "switchyard_upstream_attempts_total{route=\"chat\",target=\"a\",provider=\"openai\",outcome=\"ok\"} 1",
            "switchyard_cost_usd_total{route=\"chat\",target=\"a\"} 0.5",
            "# TYPE switchyard_answer_duration_seconds histogram",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }
}
