//! Native DeepSeek request → canonical (the DeepSeek mock's front door): OpenAI's parser after
//! `thinking: {"type": "enabled" | "disabled"}` becomes `reasoning_effort` `high` (DeepSeek's
//! default effort) or `none`.

use serde_json::{json, Value};
use switchyard_core::{ChatRequest, ErrorClass, UpstreamError};

pub fn parse_request(body: &[u8]) -> Result<ChatRequest, UpstreamError> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| {
        UpstreamError::new(
            ErrorClass::InvalidRequest,
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    if let Some(o) = value.as_object_mut() {
        if let Some(thinking) = o.remove("thinking") {
            let effort = match thinking.get("type").and_then(Value::as_str) {
                Some("enabled") => "high",
                Some("disabled") => "none",
                _ => {
                    return Err(UpstreamError::new(
                        ErrorClass::InvalidRequest,
                        "`thinking.type`: expected `enabled` or `disabled`",
                    ))
                }
            };
            o.entry("reasoning_effort").or_insert(json!(effort));
        }
    }
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    switchyard_openai::parse::parse_request(&bytes)
}
