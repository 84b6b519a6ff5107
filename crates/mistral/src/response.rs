//! Mistral `ChatCompletionResponse` ↔ canonical response.

use serde_json::{json, Map, Value};
use switchyard_core::{ChatResponse, ErrorClass, FinishReason, UpstreamError, Usage};
use switchyard_openai::response as oa;
use switchyard_openai::wire::{
    ChatCompletion, CompletionChoice, ResponseMessage, WireFunctionCall, WireToolCall,
};

use crate::wire::{arguments_text, Completion};

/// A 2xx body → canonical. Thinking chunks become `reasoning`, object arguments become JSON
/// text, `model_length` is [`FinishReason::Length`]. A choice that finished with `error` makes
/// the whole answer an error: Mistral says the generation failed, and a truncated answer must
/// not reach a client as if it were complete (the gateway may retry or fail over instead).
pub fn from_native(body: &[u8]) -> Result<ChatResponse, UpstreamError> {
    let native: Completion = match serde_json::from_slice(body) {
        Ok(n) => n,
        // Not a completion: the OpenAI reader knows 2xx error bodies and reports the rest.
        Err(_) => return oa::from_native(body),
    };
    let choices = native
        .choices
        .into_iter()
        .map(|c| {
            let (content, reasoning) = match c.message.content {
                Some(content) => content.split(),
                None => (None, None),
            };
            let tool_calls = c
                .message
                .tool_calls
                .unwrap_or_default()
                .into_iter()
                .map(|t| WireToolCall {
                    id: t.id.unwrap_or_default(),
                    kind: "function".into(),
                    function: WireFunctionCall {
                        name: t.function.name,
                        arguments: arguments_text(t.function.arguments),
                    },
                })
                .collect();
            CompletionChoice {
                index: c.index,
                message: ResponseMessage {
                    content,
                    refusal: None,
                    tool_calls,
                    reasoning_content: reasoning,
                    function_call: None,
                },
                finish_reason: c.finish_reason,
                logprobs: None,
            }
        })
        .collect();
    let mut response = oa::from_wire(ChatCompletion {
        id: native.id,
        created: native.created,
        model: native.model,
        choices,
        usage: native.usage,
        system_fingerprint: None,
        service_tier: None,
    })?;
    for c in &mut response.choices {
        match c.native_finish_reason.as_deref() {
            Some("model_length") => c.finish_reason = Some(FinishReason::Length),
            Some("error") => {
                return Err(UpstreamError::new(
                    ErrorClass::ServerError,
                    "mistral ended the generation with finish_reason `error`",
                )
                .with_code("error")
                .with_raw_body(body))
            }
            _ => {}
        }
    }
    Ok(response)
}

/// Canonical finish reason → Mistral's enum (`stop, length, model_length, error, tool_calls`).
/// Mistral has no `content_filter`: it becomes `stop`, the only value that does not claim a
/// limit or a failure.
pub fn finish_reason_str(reason: FinishReason, native: Option<&str>) -> &'static str {
    match (reason, native) {
        (FinishReason::Length, Some("model_length")) => "model_length",
        (FinishReason::Length, _) => "length",
        (FinishReason::ToolCalls | FinishReason::FunctionCall, _) => "tool_calls",
        (FinishReason::Stop | FinishReason::ContentFilter | FinishReason::Other, _) => "stop",
    }
}

/// `UsageInfo`, which is closed: only the three counts (cache and reasoning details have no
/// field there).
pub fn usage_info(u: Option<&Usage>) -> Value {
    let u = u.cloned().unwrap_or_default();
    json!({
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
    })
}

/// Assistant content: a plain string, or chunks when there is reasoning to carry.
pub fn content_value(text: Option<&str>, reasoning: Option<&str>) -> Value {
    match reasoning {
        None => text.map_or(Value::Null, |t| json!(t)),
        Some(r) => {
            let mut chunks =
                vec![json!({"type": "thinking", "thinking": [{"type": "text", "text": r}]})];
            if let Some(t) = text {
                chunks.push(json!({"type": "text", "text": t}));
            }
            Value::Array(chunks)
        }
    }
}

/// Canonical response → `ChatCompletionResponse` JSON (for the Mistral mock).
pub fn encode(r: &ChatResponse) -> Vec<u8> {
    let choices: Vec<Value> = r
        .choices
        .iter()
        .map(|c| {
            let mut message = Map::new();
            message.insert("role".into(), json!("assistant"));
            let text = c
                .message
                .content
                .as_deref()
                .or(c.message.refusal.as_deref());
            message.insert(
                "content".into(),
                content_value(text, c.message.reasoning.as_deref()),
            );
            if !c.message.tool_calls.is_empty() {
                let calls = c
                    .message
                    .tool_calls
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        json!({"id": t.id, "type": "function", "index": i,
                               "function": {"name": t.name, "arguments": t.arguments}})
                    })
                    .collect();
                message.insert("tool_calls".into(), Value::Array(calls));
            }
            json!({
                "index": c.index,
                "message": message,
                "finish_reason": finish_reason_str(
                    c.finish_reason.unwrap_or(FinishReason::Stop),
                    c.native_finish_reason.as_deref(),
                ),
            })
        })
        .collect();
    let body = json!({
        "id": r.id,
        "object": "chat.completion",
        "created": r.created,
        "model": r.model,
        "choices": choices,
        "usage": usage_info(r.usage.as_ref()),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}
