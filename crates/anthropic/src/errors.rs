//! Anthropic errors both ways: `ErrorResponse` bodies (`{"type":"error","error":{"type",
//! "message"},"request_id"}`) → [`ErrorClass`], and a class → (status, body) for the mock.
//!
//! The error `type` decides first (the status alone cannot tell a 400 context-length error
//! from a 400 bad request, or a billing 400 from either); the status is the fallback for
//! bodies that are not Anthropic's (a proxy's HTML page, an empty 502).

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use switchyard_core::{retry_after, ErrorClass, UpstreamError};

/// Message fragments of 400s that mean the conversation does not fit the context window.
const CONTEXT_PATTERNS: [&str; 3] = [
    "prompt is too long",
    "exceed context limit",
    "context window",
];

/// Message fragments of `invalid_request_error`s that are really about money.
const QUOTA_PATTERNS: [&str; 2] = [
    "credit balance is too low",
    "reached your specified api usage limits",
];

fn class_for_type(
    kind: &str,
    message: &str,
    status: Option<u16>,
    retry: Option<Duration>,
) -> ErrorClass {
    let lower = message.to_ascii_lowercase();
    match kind {
        "invalid_request_error" if CONTEXT_PATTERNS.iter().any(|p| lower.contains(p)) => {
            ErrorClass::ContextLengthExceeded
        }
        "invalid_request_error" if QUOTA_PATTERNS.iter().any(|p| lower.contains(p)) => {
            ErrorClass::QuotaExhausted
        }
        "invalid_request_error" => ErrorClass::InvalidRequest,
        "authentication_error" => ErrorClass::Auth,
        "billing_error" => ErrorClass::QuotaExhausted,
        "permission_error" => ErrorClass::PermissionDenied,
        "not_found_error" => ErrorClass::NotFound,
        "request_too_large" => ErrorClass::PayloadTooLarge,
        "rate_limit_error" => ErrorClass::RateLimited {
            retry_after_ms: retry.map(|d| d.as_millis() as u64),
        },
        "api_error" => ErrorClass::ServerError,
        "timeout_error" => ErrorClass::Timeout,
        "overloaded_error" => ErrorClass::Overloaded,
        // A type added after this code was written: the status is the best evidence left.
        _ => match status {
            Some(s) => ErrorClass::from_status(s, retry),
            None => ErrorClass::StreamInterrupted,
        },
    }
}

/// Classifies a parsed error body (HTTP error or in-stream `error` event).
pub(crate) fn classify_body(
    body: &Value,
    status: Option<u16>,
    retry: Option<Duration>,
) -> UpstreamError {
    let error = body.get("error");
    let kind = error
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let class = class_for_type(kind, message, status, retry);
    let message = if message.is_empty() {
        match status {
            Some(s) => format!("HTTP {s} from anthropic"),
            None => "error event from anthropic".into(),
        }
    } else {
        message.to_string()
    };
    let mut e = UpstreamError::new(class, message);
    if !kind.is_empty() {
        e = e.with_code(kind);
    }
    if let Some(s) = status {
        e = e.with_status(s);
    }
    e
}

pub(crate) fn classify_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> UpstreamError {
    let retry = retry_after(headers);
    let code = status.as_u16();
    let e = match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.get("error").is_some_and(Value::is_object) => {
            classify_body(&v, Some(code), retry)
        }
        _ => UpstreamError::new(
            ErrorClass::from_status(code, retry),
            format!("HTTP {code} from anthropic"),
        )
        .with_status(code),
    };
    e.with_raw_body(body)
}

/// A class → Anthropic's status and error type, as the docs' error table pairs them.
pub(crate) fn native_error(class: ErrorClass) -> (u16, &'static str) {
    use ErrorClass::*;
    match class {
        InvalidRequest | ContextLengthExceeded | ContentFiltered | Unsupported => {
            (400, "invalid_request_error")
        }
        Auth => (401, "authentication_error"),
        QuotaExhausted => (402, "billing_error"),
        PermissionDenied => (403, "permission_error"),
        NotFound => (404, "not_found_error"),
        PayloadTooLarge => (413, "request_too_large"),
        RateLimited { .. } => (429, "rate_limit_error"),
        ServerError | Connect | StreamInterrupted => (500, "api_error"),
        Timeout => (504, "timeout_error"),
        Overloaded => (529, "overloaded_error"),
    }
}

/// The `ErrorResponse` body for `error`.
pub(crate) fn error_body(error: &UpstreamError) -> Value {
    let (_, kind) = native_error(error.class);
    let mut message = error.message.clone();
    // Clients (and our own provider side) recognise context errors by this phrase.
    if error.class == ErrorClass::ContextLengthExceeded
        && !message.to_ascii_lowercase().contains("prompt is too long")
    {
        message = format!("prompt is too long: {message}");
    }
    json!({
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": null,
    })
}

pub(crate) fn encode_error(error: &UpstreamError) -> (u16, Vec<u8>) {
    let (status, _) = native_error(error.class);
    (
        status,
        serde_json::to_vec(&error_body(error)).unwrap_or_default(),
    )
}
