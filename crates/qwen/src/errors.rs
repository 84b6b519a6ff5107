//! DashScope errors. The compatible endpoint answers OpenAI-style
//! `{"error": {"message", "type", "param", "code"}, "request_id"}`, where `code` is often a
//! DashScope code; the native API and some gateways answer `{"code", "message", "request_id"}`.
//! Both are read here; the code decides before the status does, because DashScope puts
//! different failures under one status (an account in arrears is a 400, like a bad parameter).
//! Codes: alibabacloud.com/help/en/model-studio/error-code.

use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use switchyard_core::{retry_after, ErrorClass, UpstreamError};

#[derive(Deserialize)]
struct Native {
    code: Value,
    #[serde(default)]
    message: Option<String>,
}

pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> UpstreamError {
    let base = switchyard_openai::classify(status, headers, body);
    let native = serde_json::from_slice::<Native>(body).ok();
    let (code, message) = match &native {
        Some(n) => (
            match &n.code {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            },
            n.message.clone().filter(|m| !m.is_empty()),
        ),
        None => (base.provider_code.clone(), None),
    };
    let mut err = base;
    if let Some(m) = message {
        err.message = m;
    }
    if let Some(class) = code
        .as_deref()
        .and_then(|c| class_of(c, &err.message, headers))
    {
        err.class = class;
    }
    if let Some(c) = code {
        err.provider_code = Some(c);
    }
    err
}

/// DashScope (and compatible-mode) codes → class; `None` leaves the status-based class.
fn class_of(code: &str, message: &str, headers: &HeaderMap) -> Option<ErrorClass> {
    let rate_limited = || ErrorClass::RateLimited {
        retry_after_ms: retry_after(headers).map(|d| d.as_millis() as u64),
    };
    Some(match code {
        "Arrearage" | "insufficient_quota" => ErrorClass::QuotaExhausted,
        c if c.starts_with("Throttling") => rate_limited(),
        "limit_requests" | "rate_limit_exceeded" => rate_limited(),
        "DataInspectionFailed" | "data_inspection_failed" => ErrorClass::ContentFiltered,
        "InvalidApiKey" | "invalid_api_key" => ErrorClass::Auth,
        c if c.starts_with("AccessDenied") => ErrorClass::PermissionDenied,
        "ModelNotFound" | "model_not_found" => ErrorClass::NotFound,
        "InvalidParameter" | "invalid_parameter_error" | "invalid_request_error" => {
            let m = message.to_ascii_lowercase();
            if m.contains("input length") || m.contains("context length") {
                ErrorClass::ContextLengthExceeded
            } else {
                ErrorClass::InvalidRequest
            }
        }
        c if c.starts_with("InternalError") || c == "internal_error" => ErrorClass::ServerError,
        "ServiceUnavailable" | "ModelServiceUnavailable" => ErrorClass::Overloaded,
        _ => return None,
    })
}

/// The DashScope code a class is reported with by the Qwen mock.
pub fn code_for(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::RateLimited { .. } => "Throttling",
        ErrorClass::QuotaExhausted => "Arrearage",
        ErrorClass::ContentFiltered => "DataInspectionFailed",
        ErrorClass::Auth => "InvalidApiKey",
        ErrorClass::PermissionDenied => "AccessDenied",
        ErrorClass::NotFound => "ModelNotFound",
        ErrorClass::Overloaded => "ServiceUnavailable",
        ErrorClass::ServerError
        | ErrorClass::Timeout
        | ErrorClass::Connect
        | ErrorClass::StreamInterrupted => "InternalError",
        ErrorClass::InvalidRequest
        | ErrorClass::ContextLengthExceeded
        | ErrorClass::PayloadTooLarge
        | ErrorClass::Unsupported => "InvalidParameter",
    }
}

/// (status, compatible-mode body) for the Qwen mock. Arrears and content inspection are 400s
/// on DashScope, as the docs list them.
pub fn encode_error(error: &UpstreamError) -> (u16, Vec<u8>) {
    let code = code_for(error.class);
    let status = error.status.unwrap_or(match error.class {
        ErrorClass::QuotaExhausted | ErrorClass::ContentFiltered => 400,
        c => c.policy().client_status,
    });
    let body = switchyard_openai::error_body(&error.message, code, None, Some(code));
    (status, body)
}
