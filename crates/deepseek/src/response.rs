//! DeepSeek responses and usage: OpenAI's reader, plus the cache hit/miss counts and the
//! `insufficient_system_resource` finish reason.

use serde_json::Value;
use switchyard_core::{ChatResponse, ErrorClass, UpstreamError, Usage};
use switchyard_openai::response as oa;

/// The finish reason DeepSeek uses when it cut a generation short for lack of capacity.
pub const INSUFFICIENT_RESOURCE: &str = "insufficient_system_resource";

/// A 2xx body → canonical. A choice cut short by `insufficient_system_resource` makes the
/// answer an [`ErrorClass::Overloaded`] error: the text is truncated for a reason on DeepSeek's
/// side, so it must not reach the client as a complete answer, and another target (or a later
/// attempt) can give a whole one.
pub fn from_native(body: &[u8]) -> Result<ChatResponse, UpstreamError> {
    let mut r = oa::from_native(body)?;
    if r.choices
        .iter()
        .any(|c| c.native_finish_reason.as_deref() == Some(INSUFFICIENT_RESOURCE))
    {
        return Err(insufficient_resource().with_raw_body(body));
    }
    if let Some(u) = r.usage.as_mut() {
        fix_usage(u);
    }
    Ok(r)
}

pub fn insufficient_resource() -> UpstreamError {
    UpstreamError::new(
        ErrorClass::Overloaded,
        "deepseek cut the generation short: insufficient_system_resource",
    )
    .with_code(INSUFFICIENT_RESOURCE)
}

/// DeepSeek reports cache hits as top-level `prompt_cache_hit_tokens` (newer responses also
/// carry `prompt_tokens_details.cached_tokens`, which wins when present). Hits plus misses equal
/// `prompt_tokens`, so `input_tokens` already has OpenAI's meaning and stays as is.
pub fn fix_usage(u: &mut Usage) {
    if u.cached_input_tokens.is_none() {
        #[derive(serde::Deserialize)]
        struct Hits {
            prompt_cache_hit_tokens: Option<u64>,
        }
        u.cached_input_tokens = u
            .native
            .as_ref()
            .and_then(|n| serde_json::from_str::<Hits>(n.get()).ok())
            .and_then(|h| h.prompt_cache_hit_tokens);
    }
}

/// OpenAI's usage object plus DeepSeek's hit/miss counts, when the cached count is known.
pub fn usage_value(u: &Usage) -> Value {
    let mut v = serde_json::to_value(oa::usage_to_wire(u)).unwrap_or(Value::Null);
    if let (Some(hit), Some(o)) = (u.cached_input_tokens, v.as_object_mut()) {
        o.insert("prompt_cache_hit_tokens".into(), hit.into());
        o.insert(
            "prompt_cache_miss_tokens".into(),
            u.input_tokens.saturating_sub(hit).into(),
        );
    }
    v
}

/// Canonical response → DeepSeek `chat.completion` JSON (OpenAI's, with DeepSeek's usage, and
/// without `reasoning_details`: DeepSeek's reasoning is text only).
pub fn encode(r: &ChatResponse) -> Vec<u8> {
    let mut wire = oa::to_wire(r);
    for c in &mut wire.choices {
        c.message.reasoning_details.clear();
    }
    let mut v = serde_json::to_value(wire).unwrap_or(Value::Null);
    if let (Some(u), Some(o)) = (&r.usage, v.as_object_mut()) {
        o.insert("usage".into(), usage_value(u));
    }
    serde_json::to_vec(&v).unwrap_or_default()
}
