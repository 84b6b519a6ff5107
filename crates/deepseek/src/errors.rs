//! DeepSeek errors: OpenAI-style `{"error": {...}}` bodies with DeepSeek's documented statuses
//! (api-docs.deepseek.com/quick_start/error_codes): 400 invalid format, 401 auth, 402
//! insufficient balance, 422 invalid parameters, 429 rate limit, 500 server error, 503 server
//! overloaded. The status carries the meaning; the body's `type`/`code` are not documented.

use http::{HeaderMap, StatusCode};
use switchyard_core::{ErrorClass, UpstreamError};

pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> UpstreamError {
    let mut err = switchyard_openai::classify(status, headers, body);
    err.class = match status.as_u16() {
        // Out of balance is permanent for this target whatever the body says.
        402 => ErrorClass::QuotaExhausted,
        400 | 422
            if err.class == ErrorClass::InvalidRequest
                && err.message.contains("maximum context length") =>
        {
            ErrorClass::ContextLengthExceeded
        }
        _ => err.class,
    };
    err
}

/// (status, OpenAI-style body) with DeepSeek's statuses: out of credit is 402, overload 503.
pub fn encode_error(error: &UpstreamError) -> (u16, Vec<u8>) {
    let (status, body) = switchyard_openai::errors::encode_error(error);
    let status = match (error.status, error.class) {
        (Some(s), _) => s,
        (None, ErrorClass::QuotaExhausted) => 402,
        _ => status,
    };
    (status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_402_is_quota_exhausted_whatever_the_body_says() {
        let e = classify(
            StatusCode::PAYMENT_REQUIRED,
            &HeaderMap::new(),
            br#"{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}"#,
        );
        assert_eq!(e.class, ErrorClass::QuotaExhausted);
        assert_eq!(e.message, "Insufficient Balance");
    }
}
