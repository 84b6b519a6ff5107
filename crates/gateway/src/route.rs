//! Runtime routes: each model alias with its ordered targets, every target with its HTTP
//! client, timeouts and circuit breaker. Built once from the config.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use switchyard_core::{Provider, Target, UnsupportedPolicy};
use switchyard_resilience::{Breaker, LatencyWindow};

use crate::config::{Config, Timeouts};
use crate::providers;

/// One upstream a route can send to.
pub struct RouteTarget {
    /// For logs and the `x-switchyard-target` header.
    pub name: String,
    pub provider: Arc<dyn Provider>,
    pub base_url: String,
    pub model: String,
    api_key: Option<SecretString>,
    pub timeouts: Timeouts,
    pub client: reqwest::Client,
    /// Shared by every route that names the same provider, base URL and model, so an outage
    /// seen through one alias protects them all.
    pub breaker: Arc<Breaker>,
    pub accepts_prefill: bool,
    pub on_unsupported: UnsupportedPolicy,
    pub context_window: Option<u32>,
    pub min_tokens_per_sec: Option<f64>,
    /// Recent times to first token, to spot an unusually slow one.
    pub ttft: LatencyWindow,
    /// Parsed upstream URLs (a target has one or two: plain and streamed). Parsing a URL
    /// per request (IDNA included) showed up in the profile.
    urls: std::sync::RwLock<Vec<(String, reqwest::Url)>>,
}

impl RouteTarget {
    /// When one attempt on this target must end: its `total_ms` from now, or the request's
    /// own deadline if that comes first.
    pub fn attempt_deadline(&self, request_deadline: tokio::time::Instant) -> tokio::time::Instant {
        (tokio::time::Instant::now() + Duration::from_millis(self.timeouts.total_ms))
            .min(request_deadline)
    }

    /// The parsed form of `uri`, cached.
    pub fn url(&self, uri: &http::Uri) -> Result<reqwest::Url, String> {
        let text = uri.to_string();
        if let Ok(cache) = self.urls.read() {
            if let Some((_, url)) = cache.iter().find(|(t, _)| *t == text) {
                return Ok(url.clone());
            }
        }
        let url = reqwest::Url::parse(&text).map_err(|e| format!("invalid upstream URL: {e}"))?;
        if let Ok(mut cache) = self.urls.write() {
            // Bounded: URLs carry no per-request parts today, but never let that grow.
            if cache.len() < 8 {
                cache.push((text, url.clone()));
            }
        }
        Ok(url)
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
}

/// Builds every route. Fails only on things the config parser cannot see (an HTTP client
/// that will not build).
pub fn build(config: &Config) -> Result<HashMap<String, Arc<Route>>, String> {
    let mut breakers: HashMap<(String, String, String), Arc<Breaker>> = HashMap::new();
    let mut clients: HashMap<u64, reqwest::Client> = HashMap::new();
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
            let client = match clients.get(&timeouts.connect_ms) {
                Some(c) => c.clone(),
                None => {
                    let c = client(timeouts.connect_ms)?;
                    clients.insert(timeouts.connect_ms, c.clone());
                    c
                }
            };
            let breaker = breakers
                .entry((provider_name.to_string(), base_url.clone(), t.model.clone()))
                .or_insert_with(|| Breaker::new(config.breaker))
                .clone();
            targets.push(Arc::new(RouteTarget {
                name: t
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{provider_name}/{}", t.model)),
                provider: provider.clone(),
                base_url,
                model: t.model.clone(),
                api_key: t
                    .api_key
                    .as_ref()
                    .map(|k| SecretString::from(k.get_ref().clone())),
                timeouts,
                client,
                breaker,
                accepts_prefill: t
                    .accepts_prefill
                    .unwrap_or(provider.capabilities().assistant_prefill),
                on_unsupported: route.on_unsupported,
                context_window: t.context_window,
                min_tokens_per_sec: t.min_tokens_per_sec,
                ttft: LatencyWindow::default(),
                urls: std::sync::RwLock::new(Vec::new()),
            }));
        }
        routes.insert(
            alias.clone(),
            Arc::new(Route {
                alias: alias.clone(),
                targets,
                continue_streams: route.continue_streams,
                failover_on_content_filter: route.failover_on_content_filter,
            }),
        );
    }
    Ok(routes)
}

/// One pooled client per connect timeout (reqwest sets it per client, not per request).
fn client(connect_ms: u64) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(connect_ms))
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(512)
        .tcp_nodelay(true)
        // Upstream redirects would resend our key to another host: never follow them.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))
}
