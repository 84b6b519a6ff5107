//! Errors are data: every provider classifies its failures into one [`ErrorClass`], and one
//! exhaustive table ([`ErrorClass::policy`]) says what happens next.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What kind of failure an upstream attempt had, independent of the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum ErrorClass {
    /// 429 rate limiting: temporary. `retry_after_ms` from `Retry-After` / `retry-after-ms`.
    RateLimited {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// Out of credit or quota (OpenAI `insufficient_quota`, DeepSeek 402, Anthropic billing):
    /// permanent for this target, but another target may well answer.
    QuotaExhausted,
    /// The provider says it is overloaded (503, Anthropic 529).
    Overloaded,
    /// 500, 502 and other server faults.
    ServerError,
    /// An attempt, header, first-token, stall or total deadline passed.
    Timeout,
    /// Could not connect, or the connection was refused or reset before a response.
    Connect,
    /// The response or stream broke: connection dropped mid-body, malformed JSON, a stream that
    /// ended without its terminal event, or an in-stream error event.
    StreamInterrupted,
    /// The gateway's credentials for this target were rejected (401).
    Auth,
    /// 403.
    PermissionDenied,
    /// 400 / 422: the request itself is wrong.
    InvalidRequest,
    /// The conversation does not fit the model's context window.
    ContextLengthExceeded,
    /// 404: unknown model or path.
    NotFound,
    /// 413.
    PayloadTooLarge,
    /// The provider refused to answer on safety grounds (blocked prompt, filtered output).
    ContentFiltered,
    /// The target cannot express this request (e.g. `n > 1`); found before any network call.
    Unsupported,
}

/// What the gateway does after an attempt failed with a given class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ErrorPolicy {
    /// Try the next target in the route.
    pub fail_over: bool,
    /// How many extra attempts the same target may get (spent from the retry budget).
    pub retries_on_same_target: u8,
    /// Counts as a failure for the target's circuit breaker.
    pub trips_breaker: bool,
    /// HTTP status the client gets when this is the error it sees.
    pub client_status: u16,
    /// OpenAI error `type` the client gets.
    pub openai_type: &'static str,
}

impl ErrorClass {
    /// The one table from class to reaction. Exhaustive on purpose: a new class must be placed.
    pub const fn policy(self) -> ErrorPolicy {
        use ErrorClass::*;
        const fn p(
            fail_over: bool,
            retries_on_same_target: u8,
            trips_breaker: bool,
            client_status: u16,
            openai_type: &'static str,
        ) -> ErrorPolicy {
            ErrorPolicy {
                fail_over,
                retries_on_same_target,
                trips_breaker,
                client_status,
                openai_type,
            }
        }
        match self {
            RateLimited { .. } => p(true, 0, true, 429, "rate_limit_error"),
            QuotaExhausted => p(true, 0, true, 429, "insufficient_quota"),
            Overloaded => p(true, 0, true, 503, "server_error"),
            ServerError => p(true, 1, true, 502, "server_error"),
            Timeout => p(true, 0, true, 504, "timeout_error"),
            Connect => p(true, 0, true, 502, "server_error"),
            StreamInterrupted => p(true, 0, true, 502, "server_error"),
            Auth => p(false, 0, false, 401, "authentication_error"),
            PermissionDenied => p(false, 0, false, 403, "permission_error"),
            InvalidRequest => p(false, 0, false, 400, "invalid_request_error"),
            ContextLengthExceeded => p(false, 0, false, 400, "invalid_request_error"),
            NotFound => p(false, 0, false, 404, "not_found_error"),
            PayloadTooLarge => p(false, 0, false, 413, "invalid_request_error"),
            ContentFiltered => p(false, 0, false, 400, "content_filter"),
            Unsupported => p(true, 0, false, 400, "invalid_request_error"),
        }
    }

    /// Whether an attempt that failed this way should move on to the next target.
    pub const fn fails_over(self) -> bool {
        self.policy().fail_over
    }

    /// A short stable name for logs, metrics and headers.
    pub const fn name(self) -> &'static str {
        use ErrorClass::*;
        match self {
            RateLimited { .. } => "rate_limited",
            QuotaExhausted => "quota_exhausted",
            Overloaded => "overloaded",
            ServerError => "server_error",
            Timeout => "timeout",
            Connect => "connect",
            StreamInterrupted => "stream_interrupted",
            Auth => "auth",
            PermissionDenied => "permission_denied",
            InvalidRequest => "invalid_request",
            ContextLengthExceeded => "context_length_exceeded",
            NotFound => "not_found",
            PayloadTooLarge => "payload_too_large",
            ContentFiltered => "content_filtered",
            Unsupported => "unsupported",
        }
    }

    /// The class a bare HTTP status implies, for providers whose body says nothing more.
    pub fn from_status(status: u16, retry_after: Option<Duration>) -> ErrorClass {
        match status {
            400 | 422 => ErrorClass::InvalidRequest,
            401 => ErrorClass::Auth,
            402 => ErrorClass::QuotaExhausted,
            403 => ErrorClass::PermissionDenied,
            404 => ErrorClass::NotFound,
            408 => ErrorClass::Timeout,
            413 => ErrorClass::PayloadTooLarge,
            429 => ErrorClass::RateLimited {
                retry_after_ms: retry_after.map(|d| d.as_millis() as u64),
            },
            503 | 529 => ErrorClass::Overloaded,
            504 => ErrorClass::Timeout,
            500..=599 => ErrorClass::ServerError,
            // Other 4xx are client-side faults we cannot fix by trying elsewhere.
            _ => ErrorClass::InvalidRequest,
        }
    }

    /// This class's position in [`ErrorClass::ALL`], for tables indexed by class.
    pub const fn index(self) -> usize {
        use ErrorClass::*;
        match self {
            RateLimited { .. } => 0,
            QuotaExhausted => 1,
            Overloaded => 2,
            ServerError => 3,
            Timeout => 4,
            Connect => 5,
            StreamInterrupted => 6,
            Auth => 7,
            PermissionDenied => 8,
            InvalidRequest => 9,
            ContextLengthExceeded => 10,
            NotFound => 11,
            PayloadTooLarge => 12,
            ContentFiltered => 13,
            Unsupported => 14,
        }
    }

    /// Every class, for tables and docs.
    pub const ALL: [ErrorClass; 15] = [
        ErrorClass::RateLimited {
            retry_after_ms: None,
        },
        ErrorClass::QuotaExhausted,
        ErrorClass::Overloaded,
        ErrorClass::ServerError,
        ErrorClass::Timeout,
        ErrorClass::Connect,
        ErrorClass::StreamInterrupted,
        ErrorClass::Auth,
        ErrorClass::PermissionDenied,
        ErrorClass::InvalidRequest,
        ErrorClass::ContextLengthExceeded,
        ErrorClass::NotFound,
        ErrorClass::PayloadTooLarge,
        ErrorClass::ContentFiltered,
        ErrorClass::Unsupported,
    ];
}

/// One failed upstream attempt, classified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[error("{} ({}): {message}", class.name(), status.map(|s| s.to_string()).unwrap_or_else(|| "no status".into()))]
pub struct UpstreamError {
    pub class: ErrorClass,
    /// The HTTP status the upstream answered with, if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The provider's message, or ours when there was no response.
    pub message: String,
    /// The provider's own error type or code (`overloaded_error`, `RESOURCE_EXHAUSTED`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_code: Option<String>,
    /// The upstream body, cut to a few KiB, kept for whoever debugs. Upstream bodies do not echo
    /// our API key; the gateway still never logs it at info level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_body: Option<String>,
}

impl UpstreamError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        UpstreamError {
            class,
            status: None,
            message: message.into(),
            provider_code: None,
            raw_body: None,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.provider_code = Some(code.into());
        self
    }

    /// Keeps at most 4 KiB of the raw body, cut on a character boundary.
    pub fn with_raw_body(mut self, body: &[u8]) -> Self {
        const MAX: usize = 4096;
        let text = String::from_utf8_lossy(body);
        let mut end = text.len().min(MAX);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.raw_body = Some(text[..end].to_string());
        self
    }

    /// A malformed upstream body or event. Carries the code [`UpstreamError::MALFORMED`] so a
    /// stream reader can tell one bad frame (skippable) from a failed stream.
    pub fn malformed(what: impl std::fmt::Display) -> Self {
        UpstreamError::new(
            ErrorClass::StreamInterrupted,
            format!("malformed upstream data: {what}"),
        )
        .with_code(Self::MALFORMED)
    }

    /// `provider_code` of errors made by [`UpstreamError::malformed`].
    pub const MALFORMED: &'static str = "malformed_upstream_data";

    pub fn is_malformed(&self) -> bool {
        self.provider_code.as_deref() == Some(Self::MALFORMED)
    }
}

/// Reads the delay a 429/503 asks for: `retry-after-ms` (OpenAI) or `Retry-After` in seconds.
/// The HTTP-date form of `Retry-After` is not used by the LLM APIs we speak and is ignored.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0 && *v < 86_400.0)
        .map(Duration::from_secs_f64)
}

/// A canonical request that a provider cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("{provider} does not support {feature}")]
    Unsupported {
        provider: &'static str,
        feature: String,
    },
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl From<TranslateError> for UpstreamError {
    fn from(e: TranslateError) -> Self {
        let class = match e {
            TranslateError::Unsupported { .. } => ErrorClass::Unsupported,
            TranslateError::Invalid(_) => ErrorClass::InvalidRequest,
        };
        UpstreamError::new(class, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn index_is_the_position_in_all() {
        for (i, class) in ErrorClass::ALL.iter().enumerate() {
            assert_eq!(class.index(), i, "{}", class.name());
        }
    }

    use super::*;

    #[test]
    fn transient_classes_fail_over_and_hard_ones_stop() {
        for status in [408, 429, 500, 502, 503, 504, 529] {
            assert!(
                ErrorClass::from_status(status, None).fails_over(),
                "{status} should fail over"
            );
        }
        for status in [400, 401, 403, 404, 422] {
            assert!(
                !ErrorClass::from_status(status, None).fails_over(),
                "{status} should stop"
            );
        }
        assert!(!ErrorClass::ContentFiltered.fails_over());
        assert!(ErrorClass::Connect.fails_over());
        assert!(ErrorClass::Timeout.fails_over());
    }

    #[test]
    fn retry_after_reads_ms_then_seconds() {
        let mut h = http::HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut h = http::HeaderMap::new();
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn raw_body_is_cut_on_a_char_boundary() {
        let body = "é".repeat(3000);
        let e = UpstreamError::new(ErrorClass::ServerError, "x").with_raw_body(body.as_bytes());
        let raw = e.raw_body.unwrap();
        assert!(raw.len() <= 4096);
        assert!(raw.chars().all(|c| c == 'é'));
    }
}
