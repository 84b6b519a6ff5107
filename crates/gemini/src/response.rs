//! `GenerateContentResponse` → canonical response, plus the mappings the stream parser shares.

use serde_json::{json, Value};
use switchyard_core::{
    AssistantMessage, ChatResponse, Choice, ErrorClass, FinishReason, ToolCall, UpstreamError,
    Usage,
};

use crate::wire::{Candidate, GenerateContentResponse, UsageMetadata};

pub(crate) fn parse(body: &[u8]) -> Result<ChatResponse, UpstreamError> {
    let native: GenerateContentResponse = serde_json::from_slice(body)
        .map_err(|e| UpstreamError::malformed(e).with_raw_body(body))?;
    blocked_prompt(&native).map_err(|e| e.with_raw_body(body))?;
    if native.candidates.is_empty() {
        return Err(UpstreamError::malformed("response has no candidates").with_raw_body(body));
    }
    let choices = native
        .candidates
        .iter()
        .enumerate()
        .map(|(i, c)| choice(i, c))
        .collect();
    Ok(ChatResponse {
        id: native.response_id.clone().unwrap_or_default(),
        model: native.model_version.clone().unwrap_or_default(),
        // Gemini sends no creation time and this crate reads no clock; the gateway stamps it.
        created: 0,
        choices,
        usage: native.usage_metadata.as_ref().map(usage),
        system_fingerprint: None,
        service_tier: None,
        warnings: Vec::new(),
    })
}

/// A prompt blocked before generation: 200 with `promptFeedback.blockReason` and no
/// candidates.
pub(crate) fn blocked_prompt(native: &GenerateContentResponse) -> Result<(), UpstreamError> {
    match native
        .prompt_feedback
        .as_ref()
        .and_then(|f| f.block_reason.as_deref())
    {
        Some(reason) if native.candidates.is_empty() => Err(UpstreamError::new(
            ErrorClass::ContentFiltered,
            format!("Gemini blocked the prompt ({reason})"),
        )
        .with_code(reason)),
        _ => Ok(()),
    }
}

fn choice(position: usize, c: &Candidate) -> Choice {
    let mut message = AssistantMessage::default();
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut any_text = false;
    let mut any_reasoning = false;
    for part in c.content.iter().flat_map(|c| &c.parts) {
        if let Some(t) = &part.text {
            if part.thought {
                reasoning.push_str(t);
                any_reasoning = true;
            } else {
                text.push_str(t);
                any_text = true;
            }
        }
        if let Some(call) = &part.function_call {
            let index = message.tool_calls.len();
            message.tool_calls.push(ToolCall {
                id: crate::signature::join(
                    call_id(call.id.as_deref(), index),
                    part.thought_signature.as_deref(),
                ),
                name: call.name.clone(),
                arguments: args_text(call.args.as_ref()),
            });
        }
    }
    message.content = any_text.then_some(text);
    message.reasoning = any_reasoning.then_some(reasoning);
    let finish_reason = c
        .finish_reason
        .as_deref()
        .map(|r| finish_reason(r, !message.tool_calls.is_empty()));
    Choice {
        index: c.index.unwrap_or(position as u32),
        message,
        finish_reason,
        native_finish_reason: c.finish_reason.clone(),
        logprobs: c.logprobs_result.as_ref().and_then(openai_logprobs),
    }
}

/// Gemini's own id when it sent one; else a deterministic one from the call's position in
/// the candidate (the Developer API often omits ids).
pub(crate) fn call_id(id: Option<&str>, index: usize) -> String {
    match id {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => format!("call_{index}"),
    }
}

pub(crate) fn args_text(args: Option<&serde_json::Map<String, Value>>) -> String {
    match args {
        Some(a) => Value::Object(a.clone()).to_string(),
        None => "{}".into(),
    }
}

pub(crate) fn finish_reason(native: &str, has_tool_calls: bool) -> FinishReason {
    match native {
        "STOP" if has_tool_calls => FinishReason::ToolCalls,
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

/// `usageMetadata` → canonical usage (OpenAI semantics).
///
/// - `promptTokenCount` already includes `cachedContentTokenCount` (proto comment: "this is
///   still the total effective prompt size meaning this includes the number of tokens in the
///   cached content"), so it is not added again. `toolUsePromptTokenCount` (results of
///   built-in tools fed back to the model) is billed as input and is added.
/// - `candidatesTokenCount` excludes thoughts, so output = candidates + thoughts.
pub(crate) fn usage(native: &Value) -> Usage {
    let m: UsageMetadata = serde_json::from_value(native.clone()).unwrap_or_default();
    let thoughts = m.thoughts_token_count.unwrap_or(0);
    Usage {
        input_tokens: m.prompt_token_count + m.tool_use_prompt_token_count,
        output_tokens: m.candidates_token_count + thoughts,
        total_tokens: m.total_token_count,
        cached_input_tokens: m.cached_content_token_count,
        reasoning_tokens: m.thoughts_token_count,
        native: Some(switchyard_core::NativeJson::from_value(native)),
        ..Usage::default()
    }
}

/// `logprobsResult` → OpenAI's `{"content": [{token, logprob, bytes, top_logprobs}]}`.
fn openai_logprobs(result: &Value) -> Option<Value> {
    let chosen = result.get("chosenCandidates")?.as_array()?;
    let top = result.get("topCandidates").and_then(Value::as_array);
    let entry = |c: &Value| {
        json!({
            "token": c.get("token").and_then(Value::as_str).unwrap_or_default(),
            "logprob": c.get("logProbability").and_then(Value::as_f64).unwrap_or(0.0),
            "bytes": null,
        })
    };
    let content = chosen
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut e = entry(c);
            let tops: Vec<Value> = top
                .and_then(|t| t.get(i))
                .and_then(|t| t.get("candidates"))
                .and_then(Value::as_array)
                .map(|cs| cs.iter().map(entry).collect())
                .unwrap_or_default();
            e["top_logprobs"] = Value::Array(tops);
            e
        })
        .collect();
    Some(json!({ "content": Value::Array(content) }))
}
