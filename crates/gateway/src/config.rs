//! The config file: TOML, validated at start with errors that name the line and the field.
//!
//! Secrets come from the environment through `${VAR}` in `api_key` and `base_url`; the file
//! itself never needs to hold a key.

use std::collections::BTreeMap;
use std::ops::Range;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};
use switchyard_core::UnsupportedPolicy;
use switchyard_resilience::{BreakerConfig, StreamTimeouts};
use switchyard_routing::stats::Quantile;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    /// Defaults for every target's timeouts; a target may override any of them.
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    #[schemars(with = "BreakerSchema")]
    pub breaker: BreakerConfig,
    #[serde(default)]
    pub retry: RetryConfig,
    /// The live statistics every target keeps (they feed the latency and cost strategies,
    /// soft failures, hedging and `/health`).
    #[serde(default)]
    pub routing: RoutingConfig,
    /// Overrides of the built-in reaction to each error class, for every route (a route's own
    /// `policy` overrides these in turn). See README, "What happens on each error".
    #[serde(default)]
    pub policy: crate::policy::PolicyConfig,
    /// Quality score per upstream model per task (`[quality."gpt-4o"] chat = 0.9`), for the
    /// `cost` strategy's floor. A task is a route alias or the tag a request carries
    /// (`x-switchyard-task` header or `metadata.switchyard_task`).
    #[serde(default)]
    pub quality: BTreeMap<String, BTreeMap<String, f64>>,
    /// Model aliases the clients use, each an ordered list of targets.
    #[schemars(with = "BTreeMap<String, ModelRoute>")]
    pub models: BTreeMap<String, Spanned<ModelRoute>>,
    /// Client API keys (`[[keys]]`). With none, anyone who can reach the port may use every
    /// route; with any, every chat request and `GET /v1/models` must present one
    /// (`Authorization: Bearer <key>` or `x-api-key`). `/health` stays open.
    #[serde(default)]
    #[schemars(with = "Vec<KeyConfig>")]
    pub keys: Vec<Spanned<KeyConfig>>,
    /// The admin API (`/admin/...` and `/metrics`) on a listener of its own; off when absent.
    pub admin: Option<AdminConfig>,
}

/// The admin listener: targets' state, forcing breakers, draining, the effective config,
/// client keys' usage. Never on the main port.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin listener, e.g. `127.0.0.1:9090` (port 0 picks a free port).
    pub listen: String,
    /// `sha256:` and the admin key's SHA-256 digest in hex, as `switchyard hash-key` prints
    /// it; every admin request must present the key as `Authorization: Bearer <key>`.
    /// Required unless `listen` is a loopback address (then the admin API is open to local
    /// users, with a warning at start).
    #[schemars(with = "Option<String>")]
    #[serde(serialize_with = "redacted_opt")]
    pub key_hash: Option<Spanned<String>>,
}

/// One client API key, its routes and its limits.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Who holds the key; in logs, errors and usage reports (the key itself never is).
    pub name: String,
    /// `sha256:` and the key's SHA-256 digest in hex, as `switchyard hash-key` prints it. The
    /// key itself is never written into the config.
    #[schemars(with = "String")]
    #[serde(serialize_with = "redacted")]
    pub hash: Spanned<String>,
    /// Model aliases this key may use (403 for the others, which `/v1/models` does not list
    /// to it); absent: all.
    pub routes: Option<Vec<String>>,
    /// Requests per minute: a burst of this many, then one every `60 s / n` (429 beyond).
    #[schemars(range(min = 1))]
    pub requests_per_minute: Option<u32>,
    /// Input plus output tokens of answered requests per minute, counted after each answer;
    /// while over it, new requests get 429 until enough of it has drained.
    #[schemars(range(min = 1))]
    pub tokens_per_minute: Option<u64>,
    /// Most USD this key's answers may cost per period (answers of targets with a `price`).
    pub budget: Option<KeyBudget>,
    /// Requests of this key being answered at once (a stream counts until it ends).
    #[schemars(range(min = 1))]
    pub max_concurrent: Option<u32>,
}

/// A client key's spend limit per period.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyBudget {
    /// USD; once the period's spend reaches it, the key's requests get 429 until the period
    /// ends (the answer that crosses it completes).
    pub usd: f64,
    /// `"1h"`, `"1d"`, `"30d"`...; aligned to the Unix epoch (a daily budget resets at
    /// 00:00 UTC).
    pub period: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Deadline for a whole client request across all attempts, in milliseconds.
    pub request_timeout_ms: u64,
    /// Event-loop threads, each with its own listening socket (`SO_REUSEPORT`) and its own
    /// upstream connection pool, so a request never changes thread. 0: one per CPU.
    pub workers: usize,
    /// Longest wait for a client's request head (from when its connection is idle, so this is
    /// also the keep-alive timeout) and then for its body, in milliseconds. A slower client is
    /// disconnected (head) or answered 408 (body), so a slow or stalled client cannot hold a
    /// connection and its task for ever.
    pub client_read_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 8 << 20,
            request_timeout_ms: 300_000,
            workers: 0,
            client_read_timeout_ms: 30_000,
        }
    }
}

/// Per-attempt timeouts, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// TCP (and TLS) connect.
    pub connect_ms: u64,
    /// From sending the request to the response headers. For a non-streamed request the
    /// upstream often sends headers only with the whole answer, so this bounds generation too.
    pub headers_ms: u64,
    /// Streams: from sending the request to the first content token.
    pub first_token_ms: u64,
    /// Streams: longest silence between two chunks.
    pub stall_ms: u64,
    /// One attempt, start to end.
    pub total_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect_ms: 3_000,
            headers_ms: 60_000,
            first_token_ms: 10_000,
            stall_ms: 15_000,
            total_ms: 120_000,
        }
    }
}

impl Timeouts {
    pub fn stream(&self) -> StreamTimeouts {
        StreamTimeouts {
            first_token_ms: self.first_token_ms,
            stall_ms: self.stall_ms,
        }
    }
}

/// A target's overrides of the default timeouts.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeoutOverrides {
    pub connect_ms: Option<u64>,
    pub headers_ms: Option<u64>,
    pub first_token_ms: Option<u64>,
    pub stall_ms: Option<u64>,
    pub total_ms: Option<u64>,
}

impl TimeoutOverrides {
    pub fn apply(&self, base: Timeouts) -> Timeouts {
        Timeouts {
            connect_ms: self.connect_ms.unwrap_or(base.connect_ms),
            headers_ms: self.headers_ms.unwrap_or(base.headers_ms),
            first_token_ms: self.first_token_ms.unwrap_or(base.first_token_ms),
            stall_ms: self.stall_ms.unwrap_or(base.stall_ms),
            total_ms: self.total_ms.unwrap_or(base.total_ms),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// A 429 whose Retry-After is at most this is waited out on the same target; longer ones
    /// fail over at once.
    pub max_retry_after_ms: u64,
    /// Retries may add at most this fraction of requests (retry budget).
    pub budget_ratio: f64,
    /// Retries allowed per second regardless of traffic.
    pub budget_floor_per_sec: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_retry_after_ms: 2_000,
            budget_ratio: 0.2,
            budget_floor_per_sec: 1.0,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Sliding window of each target's statistics, in milliseconds; older traffic ages out.
    pub window_ms: u64,
    /// Slices the window is kept in (it moves on one slice at a time).
    pub slices: u32,
    /// How stale the latency figures read on the request path may be, in milliseconds.
    pub refresh_ms: u64,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            window_ms: 300_000,
            slices: 10,
            refresh_ms: 1_000,
        }
    }
}

/// Mirror of [`BreakerConfig`] for the JSON Schema (the resilience crate has no schemars).
#[derive(JsonSchema)]
#[allow(dead_code)]
struct BreakerSchema {
    /// Consecutive failures that open a target's breaker (default 3).
    failure_threshold: Option<u32>,
    /// First cool-down in ms (default 60000); doubled after each failed probe.
    cooldown_ms: Option<u64>,
    /// Cap of the cool-down in ms (default 120000).
    max_cooldown_ms: Option<u64>,
    /// Relative jitter of each cool-down (default 0.1).
    jitter: Option<f64>,
    /// What opens a closed breaker: `"consecutive"` (default: `failure_threshold` failures in
    /// a row) or `"error_rate"` (`error_rate` of the requests in the last `window_ms` failed,
    /// with at least `min_requests` of them: catches a target that fails one request in
    /// three, which consecutive failures never see under mixed traffic).
    mode: Option<String>,
    /// `error_rate` mode: the failing share that opens the breaker (default 0.5).
    error_rate: Option<f64>,
    /// `error_rate` mode: the sliding window, in ms (default 30000).
    window_ms: Option<u64>,
    /// `error_rate` mode: fewest requests in the window before it may open (default 20).
    min_requests: Option<u32>,
    /// How long each stage of the recovery ramp lasts, in ms (default 10000). After a
    /// successful probe the target gets back only a share of its requests, growing stage by
    /// stage, so that it is not knocked over again by all its traffic at once. 0: no ramp, the
    /// probe's success closes the breaker at once.
    recovery_stage_ms: Option<u64>,
    /// The share of requests, in percent, each stage of the recovery ramp lets through
    /// (default [5, 25, 50], then all). Each in 1..=99 and larger than the one before, at most
    /// 8 stages. Empty: no ramp.
    recovery_percent: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelRoute {
    /// Tried in order; later ones are fallbacks.
    pub targets: Vec<TargetConfig>,
    /// What a target does with a request field it cannot express: reject (fail over to the
    /// next target, 400 if none can) or drop it with a warning in the response.
    #[serde(default)]
    #[schemars(with = "String")]
    pub on_unsupported: UnsupportedPolicy,
    /// When a stream breaks after content was sent, continue the answer on the next target
    /// (prefill where the target accepts it, else regenerate and skip the text already sent).
    #[serde(default = "yes")]
    pub continue_streams: bool,
    /// Fail over when a target filters the content (off: the client gets the provider's reason).
    #[serde(default)]
    pub failover_on_content_filter: bool,
    /// How the targets are ordered for each request: `priority` (as listed, the default),
    /// `latency` (fastest recent first), `cost` (cheapest acceptable first) or `weighted`
    /// (first target chosen by `weight`, the rest as fallbacks).
    #[serde(default)]
    pub strategy: StrategyName,
    /// Tuning of the `latency` strategy.
    #[serde(default)]
    pub latency: LatencyTuning,
    /// `cost` strategy: only targets whose quality score for the request's task is at least
    /// this are used (see `[quality]`).
    pub quality_floor: Option<f64>,
    /// Start the same request on the next target when the first has not produced its first
    /// token (its whole answer, when not streamed) after this long: a duration such as
    /// `"300ms"` or `"2s"`, or `"p50"`/`"p90"`/`"p95"`/`"p99"` of the first target's recent
    /// latency. The first to produce content wins; the other is cancelled. Each hedge is
    /// spent from the retry budget.
    #[schemars(with = "Option<String>")]
    pub hedge_after: Option<Spanned<String>>,
    /// An answer (or a stream's first token) slower than this many times the target's recent
    /// median, and at least 100 ms over it, counts against the target's breaker.
    #[serde(default = "three")]
    pub slow_factor: f64,
    /// This route's overrides of the reaction to each error class (over the global `[policy]`).
    #[serde(default)]
    pub policy: crate::policy::PolicyConfig,
}

fn three() -> f64 {
    3.0
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StrategyName {
    #[default]
    Priority,
    Latency,
    Cost,
    Weighted,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LatencyTuning {
    /// `p50` or `p90` (also `p95`, `p99`) of first-token latency for streams and of total
    /// latency for the rest.
    #[schemars(with = "String")]
    pub quantile: QuantileName,
    /// How often the order is recomputed, in milliseconds.
    pub recompute_ms: u64,
    /// How much faster (0.2: 20 %) a target must be than the current first to take the lead,
    pub margin: f64,
    /// and for how long, in milliseconds.
    pub hold_ms: u64,
    /// Share of requests sent first to a target with no recent samples, to keep its
    /// statistics fresh.
    pub explore: f64,
}

impl Default for LatencyTuning {
    fn default() -> Self {
        let d = switchyard_routing::strategy::LatencyPolicy::default();
        LatencyTuning {
            quantile: QuantileName(d.quantile),
            recompute_ms: millis(d.recompute),
            margin: d.margin,
            hold_ms: millis(d.hold),
            explore: d.explore,
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A quantile as written in the config (`"p50"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantileName(pub Quantile);

impl QuantileName {
    pub fn parse(s: &str) -> Option<Quantile> {
        match s {
            "p50" => Some(Quantile::P50),
            "p90" => Some(Quantile::P90),
            "p95" => Some(Quantile::P95),
            "p99" => Some(Quantile::P99),
            _ => None,
        }
    }
}

impl Serialize for QuantileName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self.0 {
            Quantile::P50 => "p50",
            Quantile::P90 => "p90",
            Quantile::P95 => "p95",
            Quantile::P99 => "p99",
        })
    }
}

/// What a secret serializes as (`GET /admin/config`): the config is shown, its secrets never.
pub const REDACTED: &str = "[redacted]";

fn redacted<S: Serializer>(_: &Spanned<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(REDACTED)
}

fn redacted_opt<S: Serializer>(v: &Option<Spanned<String>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str(REDACTED),
        None => s.serialize_none(),
    }
}

fn url_redacted<S: Serializer>(v: &Option<Spanned<String>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(url) => s.serialize_str(&redact_url(url.get_ref())),
        None => s.serialize_none(),
    }
}

/// A URL without its secrets: credentials (`user:pass@`) and the query (where some APIs take a
/// key) become [`REDACTED`]; scheme, host, port and path stay.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let (rest, query) = match rest.split_once(['?', '#']) {
        Some((before, _)) => (before, true),
        None => (rest, false),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let mut out = String::with_capacity(url.len());
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    match authority.rsplit_once('@') {
        Some((_, host)) => {
            out.push_str(REDACTED);
            out.push('@');
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
    out.push_str(path);
    if query {
        out.push('?');
        out.push_str(REDACTED);
    }
    out
}

impl<'de> Deserialize<'de> for QuantileName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        QuantileName::parse(&s).map(QuantileName).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown quantile {s:?}; expected p50, p90, p95 or p99"
            ))
        })
    }
}

/// When to hedge, read from `hedge_after`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeAfter {
    Fixed(std::time::Duration),
    Quantile(Quantile),
}

impl HedgeAfter {
    pub fn parse(s: &str) -> Result<HedgeAfter, String> {
        if let Some(q) = QuantileName::parse(s) {
            return Ok(HedgeAfter::Quantile(q));
        }
        parse_duration(s)
            .map(HedgeAfter::Fixed)
            .ok_or_else(|| format!("{s:?} is neither a duration (\"300ms\", \"2s\") nor a quantile (p50, p90, p95, p99)"))
    }
}

/// `"300ms"`, `"2s"`, `"1m"`: a positive duration.
fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n.checked_mul(1_000)?,
        "m" => n.checked_mul(60_000)?,
        _ => return None,
    };
    (ms > 0).then(|| std::time::Duration::from_millis(ms))
}

/// A per-target spend cap.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CostCap {
    /// Most USD spent on this target per period; over it, the target is skipped like an open
    /// breaker until the period ends.
    pub usd: f64,
    /// `"1h"`, `"1d"`, `"30m"`...; periods are aligned to the Unix epoch (a daily cap resets
    /// at 00:00 UTC).
    #[schemars(with = "String")]
    pub period: Spanned<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Name in logs and the `x-switchyard-target` header; default `provider/model`.
    pub name: Option<String>,
    /// `openai`, `anthropic`, `gemini`, `mistral`, `deepseek` or `qwen`.
    #[schemars(with = "String")]
    pub provider: Spanned<String>,
    /// Base URL; `${VAR}` is read from the environment. Defaults to the provider's public API.
    #[schemars(with = "Option<String>")]
    #[serde(serialize_with = "url_redacted")]
    pub base_url: Option<Spanned<String>>,
    /// API key, normally `${VAR}`.
    #[schemars(with = "Option<String>")]
    #[serde(serialize_with = "redacted_opt")]
    pub api_key: Option<Spanned<String>>,
    /// The model name the upstream knows.
    pub model: String,
    #[serde(default)]
    pub timeouts: TimeoutOverrides,
    /// Price per million tokens, for cost-aware routing and reports.
    pub price: Option<Price>,
    /// A label for where this target runs (the same model in two regions or accounts is two
    /// targets, each with its own statistics), shown in `/health`.
    pub region: Option<String>,
    /// Share of first attempts under the `weighted` strategy (relative to the other targets).
    #[serde(default = "one")]
    pub weight: u32,
    /// Spend per period above which this target is skipped.
    pub cost_cap: Option<CostCap>,
    /// This target's breaker settings over the global `[breaker]` (any of its fields).
    #[schemars(with = "Option<BreakerSchema>")]
    pub breaker: Option<switchyard_resilience::BreakerOverrides>,
    /// The target continues from a final assistant message (prefill).
    pub accepts_prefill: Option<bool>,
    /// Context window in tokens, when known.
    pub context_window: Option<u32>,
    /// Streams slower than this (output tokens per second after the first token) count as a
    /// soft failure for the breaker even when they complete.
    pub min_tokens_per_sec: Option<f64>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// Cached input tokens (prompt-cache reads); the input price when absent.
    pub cache_read_per_mtok: Option<f64>,
    /// Tokens written to the prompt cache; the input price when absent.
    pub cache_write_per_mtok: Option<f64>,
}

impl From<Price> for switchyard_routing::cost::Price {
    fn from(p: Price) -> Self {
        switchyard_routing::cost::Price {
            input_per_mtok: p.input_per_mtok,
            output_per_mtok: p.output_per_mtok,
            cache_read_per_mtok: p.cache_read_per_mtok,
            cache_write_per_mtok: p.cache_write_per_mtok,
        }
    }
}

fn one() -> u32 {
    1
}

/// A config problem, pointing at the line and field.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ConfigError {
    pub origin: String,
    pub message: String,
}

/// Parses and validates a config. `origin` names the file in errors. `env` resolves `${VAR}`.
pub fn parse(
    text: &str,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut config: Config = toml::from_str(text).map_err(|e| ConfigError {
        origin: origin.to_string(),
        message: match e.span() {
            Some(span) => format!("line {}: {}", line_of(text, &span), e.message()),
            None => e.message().to_string(),
        },
    })?;
    let err = |span: Range<usize>, message: String| ConfigError {
        origin: origin.to_string(),
        message: format!("line {}: {message}", line_of(text, &span)),
    };
    if config.models.is_empty() {
        return Err(ConfigError {
            origin: origin.into(),
            message: "no [models.<alias>] defined: the gateway would have nothing to serve".into(),
        });
    }
    for (alias, route) in config.models.iter_mut() {
        let span = route.span();
        let route = route.get_mut();
        if route.targets.is_empty() {
            return Err(err(span, format!("models.{alias}.targets is empty")));
        }
        for (i, target) in route.targets.iter_mut().enumerate() {
            let field = |f: &str| format!("models.{alias}.targets[{i}].{f}");
            let provider = target.provider.get_ref().as_str();
            if !crate::providers::is_known(provider) {
                return Err(err(
                    target.provider.span(),
                    format!(
                        "{}: unknown provider {provider:?}; this build supports: {}",
                        field("provider"),
                        crate::providers::compiled().join(", ")
                    ),
                ));
            }
            for (name, slot) in [
                ("api_key", &mut target.api_key),
                ("base_url", &mut target.base_url),
            ] {
                if let Some(value) = slot {
                    let span = value.span();
                    let expanded = interpolate(value.get_ref(), env).map_err(|var| {
                        err(
                            span.clone(),
                            format!("{}: environment variable {var} is not set", field(name)),
                        )
                    })?;
                    *value = Spanned::new(span, expanded);
                }
            }
            if let Some(url) = &target.base_url {
                let u = url.get_ref();
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(err(
                        url.span(),
                        format!("{}: {u:?} is not an http(s) URL", field("base_url")),
                    ));
                }
            }
            if target.model.is_empty() {
                return Err(err(span.clone(), format!("{} is empty", field("model"))));
            }
            if let Some(p) = &target.price {
                let prices = [
                    Some(p.input_per_mtok),
                    Some(p.output_per_mtok),
                    p.cache_read_per_mtok,
                    p.cache_write_per_mtok,
                ];
                if prices
                    .into_iter()
                    .flatten()
                    .any(|x| !(x.is_finite() && x >= 0.0))
                {
                    return Err(err(
                        span.clone(),
                        format!("{}: prices must be finite and not negative", field("price")),
                    ));
                }
            }
            if let Some(o) = &target.breaker {
                o.apply(config.breaker)
                    .validate()
                    .map_err(|m| err(span.clone(), format!("{}.{m}", field("breaker"))))?;
            }
            if let Some(cap) = &target.cost_cap {
                if !(cap.usd.is_finite() && cap.usd > 0.0) {
                    return Err(err(
                        cap.period.span(),
                        format!("{}: usd must be a positive amount", field("cost_cap")),
                    ));
                }
                if let Err(e) = switchyard_routing::cost::parse_period(cap.period.get_ref()) {
                    return Err(err(
                        cap.period.span(),
                        format!("{}: {e}", field("cost_cap.period")),
                    ));
                }
                if target.price.is_none() {
                    return Err(err(
                        cap.period.span(),
                        format!(
                            "{}: a cost cap needs the target's price to count spend",
                            field("cost_cap")
                        ),
                    ));
                }
            }
        }
        validate_routing(route).map_err(|m| err(span.clone(), format!("models.{alias}: {m}")))?;
        crate::policy::FailurePolicy::build(&[&config.policy, &route.policy]).map_err(|m| {
            err(
                span.clone(),
                format!("models.{alias}: {m} (global [policy] and this route's policy combined)"),
            )
        })?;
    }
    if config.server.max_body_bytes == 0 {
        return Err(ConfigError {
            origin: origin.into(),
            message: "server.max_body_bytes must be positive".into(),
        });
    }
    let r = config.routing;
    if r.window_ms == 0 || r.slices == 0 || u64::from(r.slices) > r.window_ms {
        return Err(ConfigError {
            origin: origin.into(),
            message: "routing.window_ms and routing.slices must be positive, with slices of at least 1 ms".into(),
        });
    }
    if config.server.client_read_timeout_ms == 0 {
        return Err(ConfigError {
            origin: origin.into(),
            message: "server.client_read_timeout_ms must be positive".into(),
        });
    }
    config.breaker.validate().map_err(|message| ConfigError {
        origin: origin.into(),
        message: format!("breaker.{message}"),
    })?;
    validate_keys(&config).map_err(|(span, m)| err(span, m))?;
    if let Some(admin) = &config.admin {
        if let Some(hash) = &admin.key_hash {
            crate::keys::parse_hash(hash.get_ref())
                .map_err(|m| err(hash.span(), format!("admin.key_hash: {m}")))?;
        }
        if admin.listen.trim().is_empty() {
            return Err(ConfigError {
                origin: origin.into(),
                message: "admin.listen is empty".into(),
            });
        }
    }
    Ok(config)
}

/// The checks of `[[keys]]`: names and hashes present and unique, routes that exist, limits
/// that let something through.
fn validate_keys(config: &Config) -> Result<(), (Range<usize>, String)> {
    let mut names = std::collections::HashSet::new();
    let mut hashes = std::collections::HashSet::new();
    for (i, key) in config.keys.iter().enumerate() {
        let span = key.span();
        let k = key.get_ref();
        let at = |m: String| (span.clone(), format!("keys[{i}] ({:?}): {m}", k.name));
        if k.name.trim().is_empty() {
            return Err((span.clone(), format!("keys[{i}].name is empty")));
        }
        if !names.insert(k.name.as_str()) {
            return Err(at("another key has the same name".into()));
        }
        let digest = crate::keys::parse_hash(k.hash.get_ref())
            .map_err(|m| (k.hash.span(), format!("keys[{i}] ({:?}).hash: {m}", k.name)))?;
        if !hashes.insert(digest) {
            return Err((
                k.hash.span(),
                format!(
                    "keys[{i}] ({:?}).hash: another key has the same hash",
                    k.name
                ),
            ));
        }
        if let Some(routes) = &k.routes {
            if routes.is_empty() {
                return Err(at(
                    "routes is empty, so the key could use nothing; remove the key instead".into(),
                ));
            }
            if let Some(r) = routes.iter().find(|r| !config.models.contains_key(*r)) {
                return Err(at(format!(
                    "routes: no model alias {r:?} (defined: {})",
                    config.models.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        for (field, value) in [
            ("requests_per_minute", k.requests_per_minute.map(u64::from)),
            ("tokens_per_minute", k.tokens_per_minute),
            ("max_concurrent", k.max_concurrent.map(u64::from)),
        ] {
            if value == Some(0) {
                return Err(at(format!("{field} must be positive")));
            }
        }
        if let Some(b) = &k.budget {
            if !(b.usd.is_finite() && b.usd > 0.0) {
                return Err(at("budget.usd must be a positive amount".into()));
            }
            switchyard_routing::cost::parse_period(&b.period)
                .map_err(|e| at(format!("budget.period: {e}")))?;
        }
    }
    Ok(())
}

/// The checks of a route's strategy, hedging and soft-failure settings.
fn validate_routing(route: &ModelRoute) -> Result<(), String> {
    let max = switchyard_routing::strategy::MAX_TARGETS;
    if route.targets.len() > max {
        return Err(format!("a route has at most {max} targets"));
    }
    if let Some(h) = &route.hedge_after {
        HedgeAfter::parse(h.get_ref()).map_err(|e| format!("hedge_after: {e}"))?;
    }
    if !(route.slow_factor.is_finite() && route.slow_factor >= 1.0) {
        return Err("slow_factor must be at least 1".into());
    }
    let l = &route.latency;
    if !(0.0..1.0).contains(&l.margin) || !(0.0..=1.0).contains(&l.explore) {
        return Err("latency.margin must be in [0, 1) and latency.explore in [0, 1]".into());
    }
    if l.recompute_ms == 0 {
        return Err("latency.recompute_ms must be positive".into());
    }
    match route.strategy {
        StrategyName::Weighted if route.targets.iter().all(|t| t.weight == 0) => {
            return Err("strategy = \"weighted\" needs a target with a positive weight".into())
        }
        StrategyName::Cost if route.targets.iter().all(|t| t.price.is_none()) => {
            return Err("strategy = \"cost\" needs a price on at least one target".into())
        }
        _ => {}
    }
    if route.quality_floor.is_some() && route.strategy != StrategyName::Cost {
        return Err("quality_floor is only used by strategy = \"cost\"".into());
    }
    Ok(())
}

/// Replaces each `${VAR}` with its value; `Err(VAR)` names the first unset one. `$$` is a `$`.
fn interpolate(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(r) = rest.strip_prefix("$$") {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("${") {
            let Some(end) = r.find('}') else {
                return Err(format!("(unclosed ${{ in {value:?})"));
            };
            let var = &r[..end];
            out.push_str(&env(var).ok_or_else(|| var.to_string())?);
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn line_of(text: &str, span: &Range<usize>) -> usize {
    let end = span.start.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(var: &str) -> Option<String> {
        (var == "KEY").then(|| "sk-test".to_string())
    }

    const OK: &str = r#"
[models.chat]
targets = [
  { provider = "openai", base_url = "http://127.0.0.1:1", api_key = "${KEY}", model = "gpt-4o-mini" },
  { provider = "openai", base_url = "http://127.0.0.1:2", model = "backup", timeouts = { first_token_ms = 500 } },
]
"#;

    #[test]
    fn parses_and_interpolates() {
        let c = parse(OK, "t.toml", &env).unwrap();
        let t = &c.models["chat"].get_ref().targets;
        assert_eq!(t[0].api_key.as_ref().unwrap().get_ref(), "sk-test");
        assert_eq!(t[1].timeouts.apply(c.timeouts).first_token_ms, 500);
        assert_eq!(t[1].timeouts.apply(c.timeouts).stall_ms, 15_000);
    }

    #[test]
    fn a_missing_env_var_names_line_and_field() {
        let text = OK.replace("${KEY}", "${NOPE}");
        let e = parse(&text, "t.toml", &env).unwrap_err().to_string();
        assert!(e.contains("line 4"), "{e}");
        assert!(e.contains("models.chat.targets[0].api_key"), "{e}");
        assert!(e.contains("NOPE"), "{e}");
    }

    #[test]
    fn an_unknown_provider_names_line_and_field() {
        let text = OK.replace(
            "provider = \"openai\", base_url = \"http://127.0.0.1:2\"",
            "provider = \"opneai\", base_url = \"http://127.0.0.1:2\"",
        );
        let e = parse(&text, "t.toml", &env).unwrap_err().to_string();
        assert!(
            e.contains("line 5") && e.contains("targets[1].provider") && e.contains("opneai"),
            "{e}"
        );
    }

    #[test]
    fn a_typo_in_a_key_names_its_line() {
        let text = OK.replace("first_token_ms", "first_tokn_ms");
        let e = parse(&text, "t.toml", &env).unwrap_err().to_string();
        assert!(e.contains("line 5") && e.contains("first_tokn_ms"), "{e}");
    }

    #[test]
    fn a_missing_field_is_reported() {
        let text = "[models.chat]\ntargets = [ { provider = \"openai\" } ]\n";
        let e = parse(text, "t.toml", &env).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("model"), "{e}");
    }

    #[test]
    fn interpolation_handles_dollars() {
        assert_eq!(interpolate("a$$b${KEY}c$", &env).unwrap(), "a$bsk-testc$");
        assert_eq!(
            interpolate("${X", &env).unwrap_err(),
            "(unclosed ${ in \"${X\")"
        );
    }
}
