//! OpenAI error bodies, both ways: classifying an upstream error and writing one for a client.

use http::{HeaderMap, StatusCode};
use switchyard_core::{retry_after, ErrorClass, UpstreamError};

use crate::wire::{ErrorEnvelopeOut, ErrorObject, ErrorOut, ErrorResponse};

/// Codes / types that mean the provider refused on content-policy grounds.
const CONTENT_POLICY: &[&str] = &[
    "content_filter",
    "content_policy_violation",
    "content_policy_violation_error",
];

/// Longest message we take from a body that is not an OpenAI error object.
const MAX_TEXT_MESSAGE: usize = 512;

/// A non-2xx OpenAI (or OpenAI-compatible) answer → classified error.
///
/// The body decides before the status does: a 429 whose code is `insufficient_quota` is a
/// permanent [`ErrorClass::QuotaExhausted`], and a 400 with `context_length_exceeded` is
/// [`ErrorClass::ContextLengthExceeded`]. Everything else falls back to
/// [`ErrorClass::from_status`].
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> UpstreamError {
    let status = status.as_u16();
    let parsed = serde_json::from_slice::<ErrorResponse>(body)
        .ok()
        .map(|e| e.error);
    let obj = parsed.clone().unwrap_or_default();
    let code = obj.code_str();
    let kind = obj.kind.as_deref();
    let is = |names: &[&str]| {
        code.as_deref().is_some_and(|c| names.contains(&c))
            || kind.is_some_and(|k| names.contains(&k))
    };

    let class = if status == 429 && is(&["insufficient_quota"]) {
        ErrorClass::QuotaExhausted
    } else if status == 429 {
        ErrorClass::RateLimited {
            retry_after_ms: retry_after(headers).map(|d| d.as_millis() as u64),
        }
    } else if (400..500).contains(&status) && is(&["context_length_exceeded"]) {
        ErrorClass::ContextLengthExceeded
    } else if (400..500).contains(&status) && is(CONTENT_POLICY) {
        ErrorClass::ContentFiltered
    } else {
        ErrorClass::from_status(status, retry_after(headers))
    };

    let message = match obj.message.as_deref() {
        Some(m) if !m.is_empty() => m.to_string(),
        _ if parsed.is_some() => format!("upstream answered {status}"),
        _ => text_message(status, body),
    };
    let mut err = UpstreamError::new(class, message)
        .with_status(status)
        .with_raw_body(body);
    if let Some(c) = code.map(|c| c.into_owned()).or_else(|| obj.kind.clone()) {
        err = err.with_code(c);
    }
    err
}

/// Classifies an in-stream `{"error": {...}}` object (the stream already had a 200).
pub fn classify_stream_error(raw: &str) -> UpstreamError {
    let obj: ErrorObject = match serde_json::from_str(raw) {
        Ok(o) => o,
        Err(e) => return UpstreamError::malformed(format!("in-stream error object: {e}")),
    };
    let code = obj.code_str().map(|c| c.into_owned());
    // Anything unrecognised mid-stream (server_error, overloaded, unknown) broke the stream.
    let class = code
        .as_deref()
        .and_then(stream_class)
        .or_else(|| obj.kind.as_deref().and_then(stream_class))
        .unwrap_or(ErrorClass::StreamInterrupted);
    let message = obj
        .message
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "error event in stream".to_string());
    let mut err = UpstreamError::new(class, message).with_raw_body(raw.as_bytes());
    if let Some(c) = code.or_else(|| obj.kind.clone()) {
        err = err.with_code(c);
    }
    err
}

/// OpenAI codes and types, plus our own class names (a Switchyard gateway or mock upstream
/// writes those as `code`).
fn stream_class(tag: &str) -> Option<ErrorClass> {
    Some(match tag {
        "insufficient_quota" | "quota_exhausted" => ErrorClass::QuotaExhausted,
        "rate_limit_exceeded" | "rate_limit_error" | "rate_limited" => ErrorClass::RateLimited {
            retry_after_ms: None,
        },
        "context_length_exceeded" => ErrorClass::ContextLengthExceeded,
        "content_filtered" => ErrorClass::ContentFiltered,
        t if CONTENT_POLICY.contains(&t) => ErrorClass::ContentFiltered,
        _ => return None,
    })
}

fn text_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return format!("upstream answered {status} with an empty body");
    }
    let mut end = text.len().min(MAX_TEXT_MESSAGE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// An OpenAI error body: `{"error": {"message", "type", "param", "code"}}`. Used for the
/// gateway's own errors as well as translated upstream ones.
pub fn error_body(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + message.len());
    write_error_object(message, kind, param, code, &mut out);
    out
}

pub(crate) fn write_error_object(
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
    out: &mut Vec<u8>,
) {
    let body = ErrorEnvelopeOut {
        error: ErrorOut {
            message,
            kind,
            param,
            code,
        },
    };
    // Writing borrowed strings into a Vec cannot fail.
    let _ = serde_json::to_writer(out, &body);
}

/// (status, body) for an error a client of the OpenAI API should see.
pub fn encode_error(error: &UpstreamError) -> (u16, Vec<u8>) {
    let policy = error.class.policy();
    let status = error.status.unwrap_or(policy.client_status);
    let code = error
        .provider_code
        .as_deref()
        .unwrap_or_else(|| error.class.name());
    (
        status,
        error_body(&error.message, policy.openai_type, None, Some(code)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_json(status: u16, body: &str) -> UpstreamError {
        classify(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
        )
    }

    #[test]
    fn quota_429_is_not_rate_limiting() {
        let e = classify_json(
            429,
            r#"{"error":{"message":"quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        );
        assert_eq!(e.class, ErrorClass::QuotaExhausted);
        assert_eq!(e.provider_code.as_deref(), Some("insufficient_quota"));
    }

    #[test]
    fn retry_after_ms_header_is_read() {
        let mut h = HeaderMap::new();
        h.insert("retry-after-ms", "1500".parse().unwrap());
        let e = classify(StatusCode::TOO_MANY_REQUESTS, &h, b"{}");
        assert_eq!(
            e.class,
            ErrorClass::RateLimited {
                retry_after_ms: Some(1500)
            }
        );
    }

    #[test]
    fn content_policy_400_is_content_filtered_and_plain_400_is_not() {
        let e = classify_json(
            400,
            r#"{"error":{"message":"no","type":"invalid_request_error","code":"content_policy_violation"}}"#,
        );
        assert_eq!(e.class, ErrorClass::ContentFiltered);
        let e = classify_json(
            400,
            r#"{"error":{"message":"bad","type":"invalid_request_error","code":null}}"#,
        );
        assert_eq!(e.class, ErrorClass::InvalidRequest);
        assert_eq!(e.provider_code.as_deref(), Some("invalid_request_error"));
    }

    #[test]
    fn non_json_body_keeps_truncated_text_and_status_class() {
        let body = format!("<html>{}</html>", "x".repeat(2000));
        let e = classify_json(502, &body);
        assert_eq!(e.class, ErrorClass::ServerError);
        assert!(e.message.starts_with("<html>"));
        assert!(e.message.len() <= MAX_TEXT_MESSAGE);
        assert!(e.raw_body.unwrap().len() > MAX_TEXT_MESSAGE);
    }

    #[test]
    fn numeric_code_is_read_as_text() {
        let e = classify_json(500, r#"{"error":{"message":"boom","code":500}}"#);
        assert_eq!(e.class, ErrorClass::ServerError);
        assert_eq!(e.provider_code.as_deref(), Some("500"));
    }

    #[test]
    fn encode_error_uses_policy_status_and_class_name_when_unset() {
        let e = UpstreamError::new(ErrorClass::Overloaded, "busy");
        let (status, body) = encode_error(&e);
        assert_eq!(status, 503);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"message": "busy", "type": "server_error", "param": null, "code": "overloaded"}})
        );
    }

    #[test]
    fn in_stream_errors_are_classified() {
        let e = classify_stream_error(r#"{"message":"slow down","type":"rate_limit_error"}"#);
        assert!(matches!(e.class, ErrorClass::RateLimited { .. }));
        let e = classify_stream_error(r#"{"message":"oops","type":"server_error"}"#);
        assert_eq!(e.class, ErrorClass::StreamInterrupted);
        assert_eq!(e.message, "oops");
    }
}
