//! Runtime routes: each model alias with its ordered targets, every target with its HTTP
//! client, timeouts and circuit breaker. Built once from the config.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use switchyard_core::{Provider, ServerSide, Target, UnsupportedPolicy};
use switchyard_openai::OpenAiServer;
use switchyard_resilience::Breaker;
use switchyard_routing::cost::{Ledger, Price, SpendCap};
use switchyard_routing::stats::{StatsConfig, TargetStats};
use switchyard_routing::strategy::{CostPolicy, LatencyPolicy, Router, Strategy, TargetInfo};

use crate::client::RequestHead;
use crate::config::{Config, HedgeAfter, StrategyName, Timeouts};
use crate::ops::metrics::{Metrics, TargetMetrics};
use crate::policy::FailurePolicy;
use crate::providers;

/// One upstream a route can send to.
pub struct RouteTarget {
    /// For logs and the `x-switchyard-target` header.
    pub name: String,
    /// `name` as that header's value, made once; `None` if the name cannot be one.
    pub name_header: Option<http::HeaderValue>,
    pub provider: Arc<dyn Provider>,
    pub base_url: String,
    pub model: String,
    api_key: Option<SecretString>,
    pub timeouts: Timeouts,
    /// Which of a worker's HTTP clients serves this target (see [`crate::upstream::Upstreams`]).
    pub client_slot: usize,
    /// Shared by every route that names the same provider, base URL and model, so an outage
    /// seen through one alias protects them all.
    pub breaker: Arc<Breaker>,
    pub accepts_prefill: bool,
    pub on_unsupported: UnsupportedPolicy,
    pub context_window: Option<u32>,
    pub min_tokens_per_sec: Option<f64>,
    /// Rolling latency, throughput and error statistics; shared like the breaker.
    pub stats: Arc<TargetStats>,
    pub region: Option<String>,
    pub price: Option<Price>,
    /// USD spent on this upstream since the gateway started; shared like the breaker.
    pub spent: Arc<Ledger>,
    /// Spend per period, when the target has a cap; shared like the breaker.
    pub cap: Option<Arc<SpendCap>>,
    /// Set by an operator (`POST /admin/targets/{name}/drain`): failover skips the target, so
    /// it gets no new requests while those in flight finish. Shared like the breaker.
    drained: Arc<AtomicBool>,
    /// This target's metric handles, within its route.
    pub metrics: TargetMetrics,
    /// The encoded request heads for a whole answer and for a stream (see
    /// [`Provider::endpoint`]): made when the config is loaded, so a bad URL or key is a
    /// config error and a request only adds its content length and body.
    heads: [RequestHead; 2],
    /// Whether this target's non-streamed answers are already in the client's format (the
    /// OpenAI front door's), so that a checked one can be forwarded unchanged.
    pub answers_in_client_format: bool,
}

impl RouteTarget {
    /// When one attempt on this target, begun at `started`, must end: its `total_ms` later,
    /// or at the request's own deadline if that comes first.
    pub fn attempt_deadline(
        &self,
        started: tokio::time::Instant,
        request_deadline: tokio::time::Instant,
    ) -> tokio::time::Instant {
        (started + Duration::from_millis(self.timeouts.total_ms)).min(request_deadline)
    }

    /// Whether an operator has drained this target (see [`Self::set_drained`]).
    pub fn is_drained(&self) -> bool {
        self.drained.load(Ordering::Relaxed)
    }

    /// Drains (no new requests; those in flight finish) or undrains the target, and with it
    /// every target that is the same upstream.
    pub fn set_drained(&self, drained: bool) {
        self.drained.store(drained, Ordering::Relaxed);
    }

    /// The request head for an answer streamed or not.
    pub fn head(&self, stream: bool) -> &RequestHead {
        &self.heads[usize::from(stream)]
    }

    pub fn target(&self) -> Target<'_> {
        Target {
            base_url: &self.base_url,
            model: &self.model,
            api_key: self.api_key.as_ref().map(|k| k.expose_secret()),
            on_unsupported: self.on_unsupported,
        }
    }

    /// Removes this target's key from text that came back from upstream (some providers echo
    /// part of a rejected key).
    pub fn scrub(&self, text: &str) -> String {
        match &self.api_key {
            Some(k) if !k.expose_secret().is_empty() && text.contains(k.expose_secret()) => {
                text.replace(k.expose_secret(), "[redacted]")
            }
            _ => text.to_string(),
        }
    }
}

impl std::fmt::Debug for RouteTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTarget")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct Route {
    pub alias: String,
    pub targets: Vec<Arc<RouteTarget>>,
    pub continue_streams: bool,
    pub failover_on_content_filter: bool,
    /// Orders the targets for each request.
    pub router: Router,
    pub hedge_after: Option<HedgeAfter>,
    /// A (non-streamed) answer or first token slower than this many times the target's
    /// recent median (and 100 ms over it) counts against its breaker.
    pub slow_factor: f64,
    /// USD spent through this route since the gateway started.
    pub spent: Ledger,
    /// The reaction to each error class on this route.
    pub policy: FailurePolicy,
    pub metrics: Arc<Metrics>,
    /// Requests of this route answered.
    pub answered: prometheus_client::metrics::counter::Counter,
}

impl Route {
    /// True when the targets are always tried in configured order: the plain path skips
    /// the router.
    pub fn is_priority(&self) -> bool {
        matches!(self.router.strategy(), Strategy::Priority)
    }
}

/// Every route, and the connect timeouts of the HTTP clients they need (a target's
/// `client_slot` indexes this list).
pub struct Routes {
    pub routes: HashMap<String, Arc<Route>>,
    pub connect_timeouts_ms: Vec<u64>,
    pub metrics: Arc<Metrics>,
}

/// Builds every route. Fails only on things the config parser cannot see (a provider that is
/// not compiled in, a URL or key the provider cannot make a request with).
pub fn build(config: &Config) -> Result<Routes, String> {
    let mut shared: HashMap<UpstreamKey, Shared> = HashMap::new();
    let metrics = Arc::new(Metrics::new());
    let workers = match config.server.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let stats_config = StatsConfig {
        window: Duration::from_millis(config.routing.window_ms),
        slices: config.routing.slices,
        shards: workers,
        refresh: Duration::from_millis(config.routing.refresh_ms),
    };
    let mut connect_timeouts_ms: Vec<u64> = Vec::new();
    let mut routes = HashMap::new();
    for (alias, route) in &config.models {
        let route = route.get_ref();
        let mut targets = Vec::new();
        for t in &route.targets {
            let provider_name = t.provider.get_ref().as_str();
            let (provider, default_url) = providers::get(provider_name)
                .ok_or_else(|| format!("provider {provider_name} is not compiled in"))?;
            let base_url = t
                .base_url
                .as_ref()
                .map(|u| u.get_ref().trim_end_matches('/').to_string())
                .unwrap_or_else(|| default_url.to_string());
            let timeouts = t.timeouts.apply(config.timeouts);
            let client_slot = match connect_timeouts_ms
                .iter()
                .position(|&ms| ms == timeouts.connect_ms)
            {
                Some(slot) => slot,
                None => {
                    connect_timeouts_ms.push(timeouts.connect_ms);
                    connect_timeouts_ms.len() - 1
                }
            };
            let key = (
                provider_name.to_string(),
                base_url.clone(),
                t.model.clone(),
                t.region.clone(),
            );
            let breaker_config = t
                .breaker
                .map_or(config.breaker, |o| o.apply(config.breaker));
            let state = shared.entry(key).or_insert_with(|| Shared {
                breaker: Breaker::new(breaker_config),
                stats: Arc::new(TargetStats::new(stats_config)),
                spent: Arc::new(Ledger::default()),
                cap: t.cost_cap.as_ref().and_then(|c| {
                    let period = switchyard_routing::cost::parse_period(c.period.get_ref()).ok()?;
                    Some(Arc::new(SpendCap::new(c.usd, period)))
                }),
                drained: Arc::new(AtomicBool::new(false)),
            });
            if state.breaker.config() != &breaker_config {
                return Err(format!(
                    "models.{alias}: target {} is the same upstream (provider, base URL, model, region) as one configured earlier with other breaker settings; they share one breaker, so give them the same settings or a different region",
                    t.name.as_deref().unwrap_or(&t.model)
                ));
            }
            let name = t
                .name
                .clone()
                .unwrap_or_else(|| format!("{provider_name}/{}", t.model));
            let api_key = t
                .api_key
                .as_ref()
                .map(|k| SecretString::from(k.get_ref().clone()));
            let heads = request_heads(
                provider.as_ref(),
                &Target {
                    base_url: &base_url,
                    model: &t.model,
                    api_key: api_key.as_ref().map(|k| k.expose_secret()),
                    on_unsupported: route.on_unsupported,
                },
            )
            .map_err(|e| format!("models.{alias}, target {name}: {e}"))?;
            metrics.watch_breaker(&name, &state.breaker);
            targets.push(Arc::new(RouteTarget {
                metrics: metrics.target(alias, &name, provider.name()),
                name_header: http::HeaderValue::from_str(&name).ok(),
                name,
                provider: provider.clone(),
                base_url,
                model: t.model.clone(),
                api_key,
                timeouts,
                client_slot,
                breaker: Arc::clone(&state.breaker),
                stats: Arc::clone(&state.stats),
                region: t.region.clone(),
                price: t.price.map(Price::from),
                spent: Arc::clone(&state.spent),
                cap: state.cap.clone(),
                drained: Arc::clone(&state.drained),
                accepts_prefill: t
                    .accepts_prefill
                    .unwrap_or(provider.capabilities().assistant_prefill),
                on_unsupported: route.on_unsupported,
                context_window: t.context_window,
                min_tokens_per_sec: t.min_tokens_per_sec,
                heads,
                answers_in_client_format: provider
                    .answer_format()
                    .is_some_and(|f| OpenAiServer.wire_format() == Some(f)),
            }));
        }
        let infos = targets
            .iter()
            .zip(&route.targets)
            .map(|(target, t)| TargetInfo {
                stats: Arc::clone(&target.stats),
                price: target.price,
                weight: t.weight,
                quality: config
                    .quality
                    .get(&t.model)
                    .map(|tasks| tasks.iter().map(|(k, v)| (k.clone(), *v)).collect())
                    .unwrap_or_default(),
            })
            .collect();
        let strategy = match route.strategy {
            StrategyName::Priority => Strategy::Priority,
            StrategyName::Weighted => Strategy::Weighted,
            StrategyName::Latency => {
                let l = route.latency;
                Strategy::Latency(LatencyPolicy {
                    quantile: l.quantile.0,
                    recompute: Duration::from_millis(l.recompute_ms),
                    margin: l.margin,
                    hold: Duration::from_millis(l.hold_ms),
                    explore: l.explore,
                })
            }
            StrategyName::Cost => Strategy::Cost(CostPolicy {
                quality_floor: route.quality_floor,
                ..CostPolicy::default()
            }),
        };
        let hedge_after = match &route.hedge_after {
            Some(h) => Some(
                HedgeAfter::parse(h.get_ref())
                    .map_err(|e| format!("models.{alias}.hedge_after: {e}"))?,
            ),
            None => None,
        };
        routes.insert(
            alias.clone(),
            Arc::new(Route {
                alias: alias.clone(),
                targets,
                continue_streams: route.continue_streams,
                failover_on_content_filter: route.failover_on_content_filter,
                router: Router::new(strategy, infos),
                hedge_after,
                slow_factor: route.slow_factor,
                spent: Ledger::default(),
                policy: FailurePolicy::build(&[&config.policy, &route.policy])
                    .map_err(|e| format!("models.{alias}: {e}"))?,
                answered: metrics.route_ok(alias),
                metrics: Arc::clone(&metrics),
            }),
        );
    }
    Ok(Routes {
        routes,
        connect_timeouts_ms,
        metrics,
    })
}

/// Targets with the same provider, base URL, model and region are one upstream: they share a
/// breaker, statistics and spend.
type UpstreamKey = (String, String, String, Option<String>);

struct Shared {
    breaker: Arc<Breaker>,
    stats: Arc<TargetStats>,
    spent: Arc<Ledger>,
    cap: Option<Arc<SpendCap>>,
    drained: Arc<AtomicBool>,
}

/// A target's request heads, not streamed and streamed.
fn request_heads(provider: &dyn Provider, target: &Target<'_>) -> Result<[RequestHead; 2], String> {
    let head = |stream: bool| {
        let endpoint = provider
            .endpoint(target, stream)
            .map_err(|e| e.to_string())?;
        RequestHead::new(&http::Method::POST, &endpoint.uri, &endpoint.headers)
            .map_err(|e| e.to_string())
    };
    Ok([head(false)?, head(true)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_with(provider: &str, key: &str) -> Result<Routes, String> {
        let text = format!(
            "[models.chat]\ntargets = [ {{ name = \"t1\", provider = \"{provider}\", base_url = \"http://127.0.0.1:9\", api_key = \"${{KEY}}\", model = \"m\" }} ]\n"
        );
        let config = crate::config::parse(&text, "t", &|v| (v == "KEY").then(|| key.to_string()))
            .expect("the config parses");
        build(&config)
    }

    #[test]
    fn a_key_no_header_can_carry_is_a_config_error_that_does_not_repeat_it() {
        for provider in crate::providers::compiled() {
            let err = build_with(provider, "sk-secret\u{1}value")
                .err()
                .unwrap_or_else(|| panic!("{provider}: a control byte in the key was accepted"));
            assert!(err.contains("t1") && err.contains("API key"), "{err}");
            assert!(
                !err.contains("sk-secret"),
                "{provider} echoed the key: {err}"
            );
        }
    }

    #[test]
    fn each_target_has_its_request_heads_made_once() {
        for provider in crate::providers::compiled() {
            let routes = build_with(provider, "sk-fine").unwrap();
            let target = &routes.routes["chat"].targets[0];
            let shown = format!("{:?} {:?}", target.head(false), target.head(true));
            assert!(shown.contains("127.0.0.1"), "{shown}");
            assert!(
                !shown.contains("sk-fine"),
                "a head's Debug shows the key: {shown}"
            );
        }
    }
}
