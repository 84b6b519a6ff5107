//! What the client sees when something goes wrong: always OpenAI's error JSON, with a status
//! that matches, and never an API key.

use std::time::Duration;

use http::{HeaderValue, StatusCode};
use serde::Serialize;
use switchyard_core::{ErrorClass, UpstreamError};
use switchyard_openai::error_body;

use crate::body::{self, Response};
use crate::route::RouteTarget;

/// What happened at one target during one client request.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    pub target: String,
    pub skipped: bool,
    pub class: Option<ErrorClass>,
    pub status: Option<u16>,
    pub message: String,
}

impl AttemptRecord {
    pub fn skipped(target: &RouteTarget, why: &str) -> Self {
        AttemptRecord {
            target: target.name.clone(),
            skipped: true,
            class: None,
            status: None,
            message: why.to_string(),
        }
    }

    /// An attempt that was under way when another target produced content first (hedging);
    /// it was cancelled and charged to nobody.
    pub fn cancelled(target: &RouteTarget, winner: &RouteTarget) -> Self {
        AttemptRecord {
            target: target.name.clone(),
            skipped: false,
            class: None,
            status: None,
            message: format!("cancelled: {} produced content first", winner.name),
        }
    }

    pub fn failure(target: &RouteTarget, err: &UpstreamError) -> Self {
        AttemptRecord {
            target: target.name.clone(),
            skipped: false,
            class: Some(err.class),
            status: err.status,
            message: err.message.clone(),
        }
    }

    fn describe(&self) -> String {
        match (self.skipped, self.class.map(ErrorClass::name), self.status) {
            (true, _, _) => format!("{}: skipped, {}", self.target, self.message),
            (false, Some(class), Some(status)) => {
                format!("{}: {class} (HTTP {status}): {}", self.target, self.message)
            }
            (false, Some(class), None) => format!("{}: {class}: {}", self.target, self.message),
            (false, None, _) => format!("{}: {}", self.target, self.message),
        }
    }
}

/// Counts real attempts (not breaker skips), for the `x-switchyard-attempts` header.
pub fn attempt_count(attempts: &[AttemptRecord]) -> usize {
    attempts.iter().filter(|a| !a.skipped).count()
}

#[derive(Debug)]
pub enum GatewayError {
    /// The client's request is malformed (400).
    BadRequest(UpstreamError),
    PayloadTooLarge {
        limit: usize,
    },
    /// The client did not send its whole body within `server.client_read_timeout_ms` (408).
    ClientTimeout {
        waited: Duration,
    },
    UnknownModel(String),
    /// A target answered with a hard error (400, 401, content filter, ...): passed on.
    Upstream {
        error: UpstreamError,
        target: String,
        attempts: Vec<AttemptRecord>,
    },
    /// Every target was tried (or skipped) and none answered.
    Exhausted {
        attempts: Vec<AttemptRecord>,
    },
    /// Every target's breaker is open: nothing was sent.
    Unavailable {
        attempts: Vec<AttemptRecord>,
        retry_in: Duration,
    },
    /// Every target that could have answered is over its spend cap: nothing was sent.
    SpendCapped {
        attempts: Vec<AttemptRecord>,
        retry_in: Duration,
    },
    /// The route's `cost` strategy found no target whose quality for the task meets its floor.
    NoAcceptableTarget {
        route: String,
        task: String,
        floor: f64,
    },
    /// Client keys are configured and the request presents none, or one that is not
    /// configured (401). The presented key is never kept, so it cannot be echoed.
    InvalidApiKey {
        missing: bool,
    },
    /// The client's key may not use this route (403).
    RouteNotAllowed {
        /// The key's config name.
        key: String,
        route: String,
    },
    /// One of the client key's limits refuses the request: nothing was sent (429).
    KeyLimited {
        /// The key's config name.
        key: String,
        limit: crate::keys::Limit,
        retry_in: Duration,
    },
}

impl GatewayError {
    /// The `outcome` label of `switchyard_requests_total` for this error: a fixed word.
    pub fn metric_outcome(&self) -> &'static str {
        match self {
            GatewayError::BadRequest(_) => "bad_request",
            GatewayError::PayloadTooLarge { .. } => "payload_too_large",
            GatewayError::ClientTimeout { .. } => "client_timeout",
            GatewayError::UnknownModel(_) => "model_not_found",
            GatewayError::Upstream { error, .. } => error.class.name(),
            GatewayError::Exhausted { .. } => "all_targets_failed",
            GatewayError::Unavailable { .. } => "all_targets_unavailable",
            GatewayError::SpendCapped { .. } => "spend_cap_reached",
            GatewayError::NoAcceptableTarget { .. } => "no_acceptable_target",
            GatewayError::InvalidApiKey { .. } => "invalid_api_key",
            GatewayError::RouteNotAllowed { .. } => "model_not_allowed",
            GatewayError::KeyLimited { limit, .. } => limit.kind_and_code().1,
        }
    }

    pub fn attempts(&self) -> &[AttemptRecord] {
        match self {
            GatewayError::Upstream { attempts, .. }
            | GatewayError::Exhausted { attempts }
            | GatewayError::Unavailable { attempts, .. }
            | GatewayError::SpendCapped { attempts, .. } => attempts,
            _ => &[],
        }
    }

    /// (status, OpenAI error type, code, param, message).
    fn parts(&self) -> (u16, &'static str, String, Option<String>, String) {
        match self {
            GatewayError::BadRequest(e) => (
                400,
                "invalid_request_error",
                e.provider_code.clone().unwrap_or_else(|| "invalid_request".into()),
                None,
                e.message.clone(),
            ),
            GatewayError::PayloadTooLarge { limit } => (
                413,
                "invalid_request_error",
                "request_too_large".into(),
                None,
                format!("request body is larger than the gateway's limit of {limit} bytes"),
            ),
            GatewayError::ClientTimeout { waited } => (
                408,
                "invalid_request_error",
                "request_timeout".into(),
                None,
                format!(
                    "the request body did not arrive within {} ms",
                    waited.as_millis()
                ),
            ),
            GatewayError::UnknownModel(m) => (
                404,
                "invalid_request_error",
                "model_not_found".into(),
                Some("model".into()),
                format!("the model {m:?} does not exist on this gateway; GET /v1/models lists the configured aliases"),
            ),
            GatewayError::Upstream { error, target, .. } => {
                let p = error.class.policy();
                let status = match error.class {
                    // Pass the upstream's own status on when it is a client error we mirror.
                    ErrorClass::InvalidRequest | ErrorClass::NotFound => {
                        error.status.filter(|s| (400..500).contains(s)).unwrap_or(p.client_status)
                    }
                    _ => p.client_status,
                };
                (
                    status,
                    p.openai_type,
                    error
                        .provider_code
                        .clone()
                        .unwrap_or_else(|| error.class.name().into()),
                    None,
                    format!("target {target} refused the request: {}", error.message),
                )
            }
            GatewayError::Exhausted { attempts } => {
                let class = attempts
                    .iter()
                    .rev()
                    .find_map(|a| a.class)
                    .unwrap_or(ErrorClass::ServerError);
                let p = class.policy();
                (
                    p.client_status,
                    p.openai_type,
                    "all_targets_failed".into(),
                    None,
                    format!(
                        "every target failed: {}",
                        attempts
                            .iter()
                            .map(AttemptRecord::describe)
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                )
            }
            GatewayError::Unavailable { attempts, retry_in } => (
                503,
                "server_error",
                "all_targets_unavailable".into(),
                None,
                format!(
                    "every target's circuit breaker is open; retry in {} ms ({})",
                    retry_in.as_millis(),
                    attempts
                        .iter()
                        .map(AttemptRecord::describe)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
            GatewayError::SpendCapped { attempts, retry_in } => (
                429,
                "insufficient_quota",
                "spend_cap_reached".into(),
                None,
                format!(
                    "every available target has reached its spend cap; the first cap resets in {} s ({})",
                    retry_in.as_secs(),
                    attempts
                        .iter()
                        .map(AttemptRecord::describe)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
            GatewayError::NoAcceptableTarget { route, task, floor } => (
                400,
                "invalid_request_error",
                "no_acceptable_target".into(),
                None,
                format!(
                    "no target of model {route:?} has a quality score of at least {floor} for the task {task:?} (see [quality] in the gateway's config)"
                ),
            ),
            GatewayError::InvalidApiKey { missing: true } => (
                401,
                "authentication_error",
                "missing_api_key".into(),
                None,
                "this gateway requires an API key: send it as `Authorization: Bearer <key>` or `x-api-key: <key>`".into(),
            ),
            GatewayError::InvalidApiKey { missing: false } => (
                401,
                "authentication_error",
                "invalid_api_key".into(),
                None,
                "invalid API key".into(),
            ),
            GatewayError::RouteNotAllowed { key, route } => (
                403,
                "permission_error",
                "model_not_allowed".into(),
                Some("model".into()),
                format!("the API key {key:?} may not use the model {route:?}; GET /v1/models lists the ones it may use"),
            ),
            GatewayError::KeyLimited {
                key,
                limit,
                retry_in,
            } => {
                let (kind, code) = limit.kind_and_code();
                (
                    429,
                    kind,
                    code.into(),
                    None,
                    format!(
                        "the API key {key:?} has reached {}; retry in {} s",
                        limit.describe(),
                        whole_secs(*retry_in)
                    ),
                )
            }
        }
    }

    /// The OpenAI error object as JSON bytes, for in-stream use too.
    pub fn body(&self) -> (u16, Vec<u8>) {
        let (status, kind, code, param, message) = self.parts();
        (
            status,
            error_body(&message, kind, param.as_deref(), Some(&code)),
        )
    }
}

impl GatewayError {
    /// The OpenAI error JSON with its status, and the attempts and retry hint as headers.
    pub fn into_response(self) -> Response {
        let (status, text) = self.body();
        let mut resp = body::json(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            text,
        );
        let attempts = attempt_count(self.attempts());
        if !self.attempts().is_empty() {
            resp.append(
                crate::server::ATTEMPTS_HEADER,
                crate::server::count_header(attempts),
            );
        }
        if let GatewayError::Unavailable { retry_in, .. }
        | GatewayError::SpendCapped { retry_in, .. }
        | GatewayError::KeyLimited { retry_in, .. } = &self
        {
            resp.append(
                http::header::RETRY_AFTER,
                HeaderValue::from(whole_secs(*retry_in)),
            );
        }
        // Spent money does not come back in the SDKs' few seconds of automatic retries; the
        // OpenAI SDKs read this header and stop retrying.
        let spent = matches!(
            &self,
            GatewayError::SpendCapped { .. }
                | GatewayError::KeyLimited {
                    limit: crate::keys::Limit::Budget { .. },
                    ..
                }
        );
        if spent {
            resp.append(SHOULD_RETRY, HeaderValue::from_static("false"));
        }
        if let GatewayError::InvalidApiKey { .. } = &self {
            resp.append(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// Read by the OpenAI SDKs to decide whether to retry a failed request themselves.
const SHOULD_RETRY: http::header::HeaderName =
    http::header::HeaderName::from_static("x-should-retry");

/// A wait as whole seconds for `Retry-After`: rounded up, at least 1.
fn whole_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// The default error-class table as Markdown, exactly as README.md prints it (a test keeps
/// the two equal).
pub fn policy_table_markdown() -> String {
    crate::policy::FailurePolicy::default().markdown()
}
