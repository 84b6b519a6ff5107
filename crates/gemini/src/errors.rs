//! Google's `{"error": {code, message, status, details}}` → [`ErrorClass`], and back.
//!
//! The `status` name (a `google.rpc.Code`) decides, then the body refines:
//!
//! | status | class |
//! |---|---|
//! | `RESOURCE_EXHAUSTED` | `RateLimited` (delay from `google.rpc.RetryInfo.retryDelay`, else `Retry-After`), but `QuotaExhausted` when the quota cannot come back soon: a `QuotaFailure` violation with `quotaValue` "0" or a per-day `quotaId`, a message with `limit: 0`, "free quota tier", or depleted prepaid credits |
//! | `UNAVAILABLE` | `Overloaded` |
//! | `INTERNAL`, `UNKNOWN`, `DATA_LOSS` | `ServerError` |
//! | `DEADLINE_EXCEEDED` | `Timeout` |
//! | `INVALID_ARGUMENT`, `FAILED_PRECONDITION`, `OUT_OF_RANGE` | `InvalidRequest`; `Auth` for a rejected key (`API_KEY_INVALID`; Gemini answers a bad key with 400); `ContextLengthExceeded` for token-limit messages; `QuotaExhausted` for `FAILED_PRECONDITION` about billing / free tier; `PayloadTooLarge` on HTTP 413 |
//! | `UNAUTHENTICATED` | `Auth` |
//! | `PERMISSION_DENIED` | `PermissionDenied` |
//! | `NOT_FOUND` | `NotFound` |
//! | anything else / no JSON | by HTTP status ([`ErrorClass::from_status`]) |

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use switchyard_core::{retry_after, ErrorClass, UpstreamError};

use crate::wire::{ErrorEnvelope, Status};

const RETRY_INFO: &str = "type.googleapis.com/google.rpc.RetryInfo";
const QUOTA_FAILURE: &str = "type.googleapis.com/google.rpc.QuotaFailure";
const ERROR_INFO: &str = "type.googleapis.com/google.rpc.ErrorInfo";

pub(crate) fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> UpstreamError {
    let http_status = status.as_u16();
    match parse_status(body) {
        Some(s) => from_google_status(http_status, retry_after(headers), &s),
        None => UpstreamError::new(
            ErrorClass::from_status(http_status, retry_after(headers)),
            format!("Gemini answered HTTP {http_status} without a Google error body"),
        ),
    }
    .with_status(http_status)
    .with_raw_body(body)
}

/// An `{"error": ...}` object arriving as an SSE `data:` after a 200.
pub(crate) fn classify_in_stream(data: &[u8]) -> UpstreamError {
    match parse_status(data) {
        Some(s) => {
            let code = s.code.unwrap_or(500);
            from_google_status(code, None, &s).with_status(code)
        }
        None => UpstreamError::malformed("unreadable error event in stream"),
    }
    .with_raw_body(data)
}

/// The envelope, also inside the JSON array that `streamGenerateContent` without `alt=sse`
/// answers with.
fn parse_status(body: &[u8]) -> Option<Status> {
    if let Ok(e) = serde_json::from_slice::<ErrorEnvelope>(body) {
        return Some(e.error);
    }
    let list: Vec<ErrorEnvelope> = serde_json::from_slice(body).ok()?;
    list.into_iter().next().map(|e| e.error)
}

fn from_google_status(
    http_status: u16,
    header_delay: Option<Duration>,
    s: &Status,
) -> UpstreamError {
    let name = s.status.as_deref().unwrap_or_default();
    let msg = s.message.to_ascii_lowercase();
    let class = match name {
        "RESOURCE_EXHAUSTED" if quota_is_gone(s, &msg) => ErrorClass::QuotaExhausted,
        "RESOURCE_EXHAUSTED" => ErrorClass::RateLimited {
            retry_after_ms: retry_delay(s)
                .or(header_delay)
                .map(|d| d.as_millis() as u64),
        },
        "UNAVAILABLE" => ErrorClass::Overloaded,
        "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => ErrorClass::ServerError,
        "DEADLINE_EXCEEDED" => ErrorClass::Timeout,
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => {
            if http_status == 413 {
                ErrorClass::PayloadTooLarge
            } else if error_reason(s) == Some("API_KEY_INVALID")
                || msg.contains("api key not valid")
            {
                ErrorClass::Auth
            } else if is_context_length(&msg) {
                ErrorClass::ContextLengthExceeded
            } else if name == "FAILED_PRECONDITION"
                && (msg.contains("billing") || msg.contains("free tier"))
            {
                ErrorClass::QuotaExhausted
            } else {
                ErrorClass::InvalidRequest
            }
        }
        "UNAUTHENTICATED" => ErrorClass::Auth,
        "PERMISSION_DENIED" => ErrorClass::PermissionDenied,
        "NOT_FOUND" => ErrorClass::NotFound,
        _ => ErrorClass::from_status(http_status, header_delay),
    };
    let mut e = UpstreamError::new(class, s.message.clone());
    if !name.is_empty() {
        e = e.with_code(name);
    }
    e
}

fn details_of<'a>(s: &'a Status, ty: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    s.details
        .iter()
        .filter(move |d| d.get("@type").and_then(Value::as_str) == Some(ty))
}

fn error_reason(s: &Status) -> Option<&str> {
    details_of(s, ERROR_INFO).find_map(|d| d.get("reason").and_then(Value::as_str))
}

/// Quota that will not come back within a retry: a zero limit (model not in this tier), a
/// daily quota, or billing. A per-minute limit with a `retryDelay` is plain rate limiting.
fn quota_is_gone(s: &Status, msg: &str) -> bool {
    let violation = details_of(s, QUOTA_FAILURE)
        .filter_map(|d| d.get("violations").and_then(Value::as_array))
        .flatten()
        .any(|v| {
            v.get("quotaValue").and_then(Value::as_str) == Some("0")
                || v.get("quotaId")
                    .and_then(Value::as_str)
                    .is_some_and(|id| id.contains("PerDay"))
        });
    violation
        || msg.contains("limit: 0,")
        || msg.contains("limit: 0\n")
        || msg.ends_with("limit: 0")
        || msg.contains("free quota tier")
        || msg.contains("credits are depleted")
}

fn is_context_length(msg: &str) -> bool {
    msg.contains("input token count")
        || msg.contains("exceeds the maximum number of tokens")
        || msg.contains("context window")
        || msg.contains("context length")
}

/// `google.protobuf.Duration` JSON: `"13s"`, `"0.250s"`.
fn retry_delay(s: &Status) -> Option<Duration> {
    details_of(s, RETRY_INFO).find_map(|d| {
        let secs: f64 = d
            .get("retryDelay")?
            .as_str()?
            .strip_suffix('s')?
            .parse()
            .ok()?;
        (secs.is_finite() && (0.0..86_400.0).contains(&secs)).then(|| Duration::from_secs_f64(secs))
    })
}

/// What a Gemini server answers for `error` (the mock provider uses this).
pub(crate) fn status_body(error: &UpstreamError) -> (u16, Value) {
    let (code, name) = match error.class {
        ErrorClass::RateLimited { .. } | ErrorClass::QuotaExhausted => (429, "RESOURCE_EXHAUSTED"),
        ErrorClass::Overloaded | ErrorClass::Connect => (503, "UNAVAILABLE"),
        ErrorClass::ServerError | ErrorClass::StreamInterrupted => (500, "INTERNAL"),
        ErrorClass::Timeout => (504, "DEADLINE_EXCEEDED"),
        ErrorClass::Auth => (400, "INVALID_ARGUMENT"),
        ErrorClass::PermissionDenied => (403, "PERMISSION_DENIED"),
        ErrorClass::NotFound => (404, "NOT_FOUND"),
        ErrorClass::PayloadTooLarge => (413, "INVALID_ARGUMENT"),
        ErrorClass::InvalidRequest
        | ErrorClass::ContextLengthExceeded
        | ErrorClass::ContentFiltered
        | ErrorClass::Unsupported => (400, "INVALID_ARGUMENT"),
    };
    let mut details = Vec::new();
    let mut message = error.message.clone();
    match error.class {
        ErrorClass::RateLimited {
            retry_after_ms: Some(ms),
        } => details.push(json!({
            "@type": RETRY_INFO,
            "retryDelay": format!("{}s", ms as f64 / 1000.0),
        })),
        ErrorClass::QuotaExhausted => details.push(json!({
            "@type": QUOTA_FAILURE,
            "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                "quotaId": "GenerateRequestsPerDayPerProjectPerModel",
                "quotaValue": "0",
            }],
        })),
        ErrorClass::Auth => {
            details.push(json!({
                "@type": ERROR_INFO,
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
            }));
            if !message.to_ascii_lowercase().contains("api key not valid") {
                message = format!("API key not valid. {message}");
            }
        }
        ErrorClass::ContextLengthExceeded if !is_context_length(&message.to_ascii_lowercase()) => {
            message = format!(
                "The input token count exceeds the maximum number of tokens allowed. {message}"
            );
        }
        _ => {}
    }
    let envelope = ErrorEnvelope {
        error: Status {
            code: Some(code),
            message,
            status: Some(name.into()),
            details,
        },
    };
    let body = serde_json::to_value(envelope).unwrap_or(Value::Null);
    (code, body)
}
