//! `Message` ↔ canonical response, stop reasons and usage.

use serde_json::{json, Map, Value};
use switchyard_core::{
    AssistantMessage, ChatResponse, Choice, FinishReason, ReasoningBlock, ToolCall, UpstreamError,
    Usage,
};

use crate::errors::classify_body;
use crate::wire::{ContentBlock, WireMessage};
use crate::REASONING_FORMAT;

/// A `thinking` block as canonical; an empty signature (our own encoders write one) is none.
pub(crate) fn thinking_block(thinking: String, signature: String) -> ReasoningBlock {
    ReasoningBlock::Text {
        text: thinking,
        signature: (!signature.is_empty()).then_some(signature),
        format: Some(REASONING_FORMAT.into()),
    }
}

pub(crate) fn redacted_block(data: String) -> ReasoningBlock {
    ReasoningBlock::Encrypted {
        data,
        format: Some(REASONING_FORMAT.into()),
    }
}

/// Every `stop_reason` this spec version knows. Unknown future values map to
/// [`FinishReason::Other`] and are kept verbatim in `native_finish_reason`.
pub(crate) const STOP_REASONS: [&str; 6] = [
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
];

pub(crate) fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

/// The native stop reason for an encoded response: the verbatim one when it is Anthropic's,
/// else the closest match.
pub(crate) fn stop_reason(reason: Option<FinishReason>, native: Option<&str>) -> &'static str {
    if let Some(n) = native.and_then(|n| STOP_REASONS.iter().find(|s| **s == n)) {
        if reason.is_none_or(|r| finish_reason(n) == r) {
            return n;
        }
    }
    match reason {
        Some(FinishReason::Length) => "max_tokens",
        Some(FinishReason::ToolCalls | FinishReason::FunctionCall) => "tool_use",
        Some(FinishReason::ContentFilter) => "refusal",
        Some(FinishReason::Stop | FinishReason::Other) | None => "end_turn",
    }
}

fn count(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

/// Anthropic usage (`Usage` or a merged stream usage) → canonical. Anthropic's `input_tokens`
/// leaves out cache reads and writes; the canonical figure includes them.
pub(crate) fn usage_from_native(native: &Value) -> Usage {
    let uncached = count(native, "input_tokens").unwrap_or(0);
    let cache_read = count(native, "cache_read_input_tokens");
    let cache_write = count(native, "cache_creation_input_tokens");
    let input = uncached + cache_read.unwrap_or(0) + cache_write.unwrap_or(0);
    let output = count(native, "output_tokens").unwrap_or(0);
    Usage {
        input_tokens: input,
        output_tokens: output,
        total_tokens: input + output,
        cached_input_tokens: cache_read,
        cache_creation_input_tokens: cache_write,
        native: Some(switchyard_core::NativeJson::from_value(native)),
        ..Usage::default()
    }
}

/// Canonical usage → `Usage` with every key the spec requires (nullable ones as `null`).
pub(crate) fn usage_to_native(usage: &Usage) -> Value {
    let cache_read = usage.cached_input_tokens.unwrap_or(0);
    let cache_write = usage.cache_creation_input_tokens.unwrap_or(0);
    let mut out = json!({
        "input_tokens": usage.input_tokens.saturating_sub(cache_read + cache_write),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
        "cache_creation": null,
        "server_tool_use": null,
        "service_tier": null,
        "inference_geo": null,
    });
    // Keep what only Anthropic reports (cache_creation breakdown, service_tier, ...) when the
    // native object is Anthropic's own.
    let native = usage
        .native
        .as_ref()
        .map(switchyard_core::NativeJson::to_value);
    if let (Some(Value::Object(native)), Value::Object(map)) = (&native, &mut out) {
        if native.contains_key("input_tokens") && native.contains_key("output_tokens") {
            for key in [
                "cache_creation",
                "server_tool_use",
                "service_tier",
                "inference_geo",
            ] {
                if let Some(v) = native.get(key) {
                    map.insert(key.into(), v.clone());
                }
            }
        }
    }
    out
}

pub(crate) fn parse_response(body: &[u8]) -> Result<ChatResponse, UpstreamError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        UpstreamError::malformed(format!("response is not JSON: {e}")).with_raw_body(body)
    })?;
    if value.get("type").and_then(Value::as_str) == Some("error") {
        return Err(classify_body(&value, None, None).with_raw_body(body));
    }
    let msg: WireMessage = serde_json::from_value(value)
        .map_err(|e| UpstreamError::malformed(format!("message: {e}")).with_raw_body(body))?;

    let mut message = AssistantMessage::default();
    let mut text: Option<String> = None;
    for block in msg.content {
        match block {
            ContentBlock::Text { text: t, .. } => text.get_or_insert_with(String::new).push_str(&t),
            ContentBlock::ToolUse {
                id, name, input, ..
            } => message.tool_calls.push(ToolCall {
                id,
                name,
                arguments: input.to_string(),
            }),
            ContentBlock::Thinking {
                thinking,
                signature,
            } => {
                message
                    .reasoning
                    .get_or_insert_with(String::new)
                    .push_str(&thinking);
                message
                    .reasoning_blocks
                    .push(thinking_block(thinking, signature));
            }
            ContentBlock::RedactedThinking { data } => {
                message.reasoning_blocks.push(redacted_block(data))
            }
            ContentBlock::Unknown => {}
        }
    }
    message.content = text;
    let usage = (!msg.usage.is_null()).then(|| usage_from_native(&msg.usage));
    let service_tier = msg
        .usage
        .get("service_tier")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(ChatResponse {
        id: msg.id,
        model: msg.model,
        // Anthropic sends no timestamp and translation reads no clock: the gateway stamps it.
        created: 0,
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: msg.stop_reason.as_deref().map(finish_reason),
            native_finish_reason: msg.stop_reason,
            logprobs: None,
        }],
        usage,
        system_fingerprint: None,
        service_tier,
        warnings: Vec::new(),
    })
}

/// Parses tool-call arguments for a `tool_use` block; non-object text is kept under `_raw` so
/// nothing is lost (the encoder cannot fail).
pub(crate) fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return Value::Object(Map::new());
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "_raw": arguments }),
    }
}

pub(crate) fn encode_response(response: &ChatResponse) -> Vec<u8> {
    let choice = response.choices.first();
    let mut content = Vec::new();
    if let Some(choice) = choice {
        let m = &choice.message;
        if m.reasoning_blocks.is_empty() {
            if let Some(r) = &m.reasoning {
                content.push(json!({"type": "thinking", "thinking": r, "signature": ""}));
            }
        }
        for block in &m.reasoning_blocks {
            content.push(match block {
                ReasoningBlock::Text {
                    text, signature, ..
                } => json!({
                    "type": "thinking",
                    "thinking": text,
                    "signature": signature.as_deref().unwrap_or_default(),
                }),
                ReasoningBlock::Encrypted { data, .. } => {
                    json!({"type": "redacted_thinking", "data": data})
                }
            });
        }
        let text = match (&m.content, &m.refusal) {
            (Some(c), _) => Some(c.as_str()),
            (None, Some(r)) => Some(r.as_str()),
            (None, None) => None,
        };
        if let Some(t) = text {
            content.push(json!({"type": "text", "text": t, "citations": null}));
        }
        for call in &m.tool_calls {
            content.push(json!({
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": tool_input(&call.arguments),
                "caller": {"type": "direct"},
            }));
        }
    }
    let stop = choice.map(|c| stop_reason(c.finish_reason, c.native_finish_reason.as_deref()));
    let usage = response
        .usage
        .as_ref()
        .map(usage_to_native)
        .unwrap_or_else(|| usage_to_native(&Usage::default()));
    let body = json!({
        "id": response.id,
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": response.model,
        "stop_reason": stop,
        "stop_sequence": null,
        "stop_details": null,
        "container": null,
        "usage": usage,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}
