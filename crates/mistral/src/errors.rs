//! Mistral error bodies. Three shapes are seen on `/v1/chat/completions`:
//!
//! - `{"detail": [{"loc", "msg", "type"}]}`: FastAPI validation, status 422 (the only one the
//!   spec models);
//! - `{"object": "error", "message", "type", "param", "code"}`: flat, OpenAI-like fields, where
//!   `message` may itself be `{"detail": [...]}`;
//! - `{"message": "Unauthorized", "request_id": ...}` from the gateway in front (401, 429).
//!
//! Anything else (`{"error": {...}}`, HTML) is read by the OpenAI classifier.

use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use switchyard_core::{retry_after, ErrorClass, UpstreamError};

/// A non-2xx answer → classified error.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> UpstreamError {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return switchyard_openai::classify(status, headers, body);
    };
    if obj.contains_key("error") {
        return switchyard_openai::classify(status, headers, body);
    }
    let code = status.as_u16();
    let kind = obj.get("type").and_then(Value::as_str);
    let provider_code = match obj.get("code") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let (message, validation) = message_of(&obj);
    let class = class_of(code, kind, &message, headers, validation);
    let mut err = UpstreamError::new(class, message)
        .with_status(code)
        .with_raw_body(body);
    if let Some(c) = provider_code
        .or_else(|| kind.map(str::to_string))
        .or_else(|| validation.then(|| "validation_error".to_string()))
    {
        err = err.with_code(c);
    }
    err
}

fn class_of(
    status: u16,
    kind: Option<&str>,
    message: &str,
    headers: &HeaderMap,
    validation: bool,
) -> ErrorClass {
    let lower = message.to_ascii_lowercase();
    match status {
        // Capacity of the shared service tier, not this key's rate: another target may answer.
        429 if kind == Some("service_tier_capacity_exceeded") => ErrorClass::Overloaded,
        429 => ErrorClass::RateLimited {
            retry_after_ms: retry_after(headers).map(|d| d.as_millis() as u64),
        },
        400..=499 if !validation && lower.contains("context length") => {
            ErrorClass::ContextLengthExceeded
        }
        _ => ErrorClass::from_status(status, retry_after(headers)),
    }
}

/// The human message, and whether it came from a validation `detail` list.
fn message_of(obj: &serde_json::Map<String, Value>) -> (String, bool) {
    if let Some(detail) = obj.get("detail") {
        return (detail_message(detail), true);
    }
    match obj.get("message") {
        Some(Value::String(s)) if !s.is_empty() => (s.clone(), false),
        Some(Value::Object(inner)) if inner.contains_key("detail") => {
            (detail_message(&inner["detail"]), true)
        }
        Some(other @ (Value::Object(_) | Value::Array(_))) => (other.to_string(), false),
        _ => ("mistral returned an error without a message".into(), false),
    }
}

/// `[{"loc": ["body", "messages", 0, "content"], "msg": "Field required"}]` →
/// ``"`messages[0].content`: Field required"``, joined with `; `.
pub fn detail_message(detail: &Value) -> String {
    let Some(items) = detail.as_array() else {
        return match detail {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
    };
    let parts: Vec<String> = items
        .iter()
        .map(|item| {
            let msg = item.get("msg").and_then(Value::as_str).unwrap_or("invalid");
            let mut path = String::new();
            for (i, seg) in item
                .get("loc")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                match seg {
                    Value::String(s) if i == 0 && s == "body" => {}
                    Value::String(s) => {
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(s);
                    }
                    Value::Number(n) => path.push_str(&format!("[{n}]")),
                    _ => {}
                }
            }
            if path.is_empty() {
                msg.to_string()
            } else {
                format!("`{path}`: {msg}")
            }
        })
        .collect();
    if parts.is_empty() {
        "request validation failed".into()
    } else {
        parts.join("; ")
    }
}

/// An in-stream `{"object": "error", ...}` frame (the stream already had a 200).
pub fn classify_stream_error(data: &str) -> UpstreamError {
    let obj = serde_json::from_str::<Value>(data).unwrap_or(Value::Null);
    let Value::Object(obj) = obj else {
        return UpstreamError::malformed("in-stream error frame");
    };
    let (message, _) = message_of(&obj);
    let kind = obj.get("type").and_then(Value::as_str);
    let class = match kind {
        Some("rate_limited" | "rate_limit_error") => ErrorClass::RateLimited {
            retry_after_ms: None,
        },
        Some("quota_exhausted") => ErrorClass::QuotaExhausted,
        _ => ErrorClass::StreamInterrupted,
    };
    let mut err = UpstreamError::new(class, message).with_raw_body(data.as_bytes());
    if let Some(k) = kind {
        err = err.with_code(k);
    }
    err
}

/// (status, body) in Mistral's flat shape, for the Mistral mock.
pub fn encode_error(error: &UpstreamError) -> (u16, Vec<u8>) {
    let status = error.status.unwrap_or(error.class.policy().client_status);
    (status, error_object(error).to_string().into_bytes())
}

pub(crate) fn error_object(error: &UpstreamError) -> Value {
    let kind = match error.class {
        ErrorClass::RateLimited { .. } => "rate_limited",
        ErrorClass::QuotaExhausted => "quota_exhausted",
        ErrorClass::Overloaded => "service_tier_capacity_exceeded",
        ErrorClass::Auth => "unauthorized",
        c if c.policy().client_status < 500 => "invalid_request_error",
        _ => "internal_server_error",
    };
    json!({
        "object": "error",
        "message": error.message,
        "type": kind,
        "param": null,
        "code": error.provider_code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: u16, body: &str) -> UpstreamError {
        classify(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
        )
    }

    #[test]
    fn validation_detail_is_readable() {
        let e = run(
            422,
            r#"{"detail":[{"type":"missing","loc":["body","messages",0,"content"],"msg":"Field required","input":{}},{"type":"extra_forbidden","loc":["body","store"],"msg":"Extra inputs are not permitted"}]}"#,
        );
        assert_eq!(e.class, ErrorClass::InvalidRequest);
        assert_eq!(
            e.message,
            "`messages[0].content`: Field required; `store`: Extra inputs are not permitted"
        );
        assert_eq!(e.provider_code.as_deref(), Some("validation_error"));
    }

    #[test]
    fn nested_detail_in_flat_error() {
        let e = run(
            422,
            r#"{"object":"error","message":{"detail":[{"type":"float_type","loc":["body","top_p"],"msg":"Input should be a valid number"}]},"type":"invalid_request_error","param":null,"code":null}"#,
        );
        assert_eq!(e.class, ErrorClass::InvalidRequest);
        assert_eq!(e.message, "`top_p`: Input should be a valid number");
        assert_eq!(e.provider_code.as_deref(), Some("invalid_request_error"));
    }

    #[test]
    fn a_validation_error_mentioning_context_length_stays_invalid() {
        let e = run(
            422,
            r#"{"detail":[{"loc":["body","max_tokens"],"msg":"exceeds context length"}]}"#,
        );
        assert_eq!(e.class, ErrorClass::InvalidRequest);
    }
}
