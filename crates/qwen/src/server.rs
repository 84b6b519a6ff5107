//! Native Qwen request → canonical (the Qwen mock's front door): OpenAI's parser after
//! `enable_thinking` / `thinking_budget` become `reasoning_effort` (inverse of the mapping in
//! [`crate::request`]).

use serde_json::{json, Value};
use switchyard_core::{ChatRequest, ErrorClass, UpstreamError};

use crate::request::effort_for;

pub fn parse_request(body: &[u8]) -> Result<ChatRequest, UpstreamError> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| {
        UpstreamError::new(
            ErrorClass::InvalidRequest,
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    if let Some(o) = value.as_object_mut() {
        let enable = o.remove("enable_thinking");
        let budget = o.remove("thinking_budget");
        let budget = match budget {
            None | Some(Value::Null) => None,
            Some(b) => Some(b.as_u64().filter(|b| *b > 0).ok_or_else(|| {
                UpstreamError::new(
                    ErrorClass::InvalidRequest,
                    "`thinking_budget`: expected a positive integer",
                )
            })?),
        };
        match enable {
            None | Some(Value::Null) => {}
            Some(Value::Bool(on)) => {
                let effort = switchyard_openai::request::effort_str(effort_for(on, budget));
                o.entry("reasoning_effort").or_insert(json!(effort));
            }
            Some(_) => {
                return Err(UpstreamError::new(
                    ErrorClass::InvalidRequest,
                    "`enable_thinking`: expected a boolean",
                ))
            }
        }
    }
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    switchyard_openai::parse::parse_request(&bytes)
}
