//! Native `chat.completion` ↔ canonical response, and OpenAI usage ↔ canonical usage.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use switchyard_core::{
    AssistantMessage, ChatResponse, Choice, FinishReason, NativeJson, ReasoningBlock, ToolCall,
    UpstreamError, Usage,
};

use crate::errors::classify_stream_error;
use crate::wire::{ChatCompletion, CompletionTokensDetails, PromptTokensDetails, WireUsage};

/// A 2xx `chat.completion` body → canonical response. A 2xx body that is an error object
/// (some OpenAI-compatible servers do this) is returned as that error.
pub fn from_native(body: &[u8]) -> Result<ChatResponse, UpstreamError> {
    let native: ChatCompletion = match serde_json::from_slice(body) {
        Ok(n) => n,
        Err(e) => {
            #[derive(Deserialize)]
            struct MaybeError<'a> {
                #[serde(borrow)]
                error: &'a serde_json::value::RawValue,
            }
            if let Ok(err) = serde_json::from_slice::<MaybeError>(body) {
                return Err(classify_stream_error(err.error.get()).with_raw_body(body));
            }
            return Err(
                UpstreamError::malformed(format!("chat.completion body: {e}")).with_raw_body(body),
            );
        }
    };
    from_wire(native)
}

/// The typed form of [`from_native`], for dialects that parse their own envelope.
pub fn from_wire(native: ChatCompletion) -> Result<ChatResponse, UpstreamError> {
    let choices = native
        .choices
        .into_iter()
        .map(|c| {
            let m = c.message;
            let mut tool_calls: Vec<ToolCall> = m
                .tool_calls
                .into_iter()
                .map(|t| ToolCall {
                    id: t.id,
                    name: t.function.name,
                    arguments: t.function.arguments,
                })
                .collect();
            if let Some(f) = m.function_call {
                tool_calls.push(ToolCall {
                    id: String::new(),
                    name: f.name,
                    arguments: f.arguments,
                });
            }
            Choice {
                index: c.index,
                // `reasoning_details` from an upstream (an OpenRouter or a Switchyard behind
                // this one) are not read: no OpenAI-format provider takes them back.
                message: AssistantMessage {
                    content: m.content,
                    tool_calls,
                    reasoning: m.reasoning_content,
                    reasoning_blocks: Vec::new(),
                    refusal: m.refusal,
                },
                finish_reason: c.finish_reason.as_deref().map(finish_reason_from_str),
                native_finish_reason: c.finish_reason,
                logprobs: c.logprobs.filter(|v| !v.is_null()),
            }
        })
        .collect();
    let usage = match native.usage {
        Some(u) if u.get() != "null" => Some(usage_from_native(&u)?),
        _ => None,
    };
    Ok(ChatResponse {
        id: native.id,
        model: native.model,
        created: native.created,
        choices,
        usage,
        system_fingerprint: native.system_fingerprint,
        service_tier: native.service_tier,
        warnings: Vec::new(),
    })
}

/// OpenAI finish reason → canonical. Unknown values are `Other` (the native one is kept).
pub fn finish_reason_from_str(s: &str) -> FinishReason {
    match s {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        "function_call" => FinishReason::FunctionCall,
        _ => FinishReason::Other,
    }
}

/// Canonical finish reason → the closest value OpenAI clients know. `Other` becomes `stop`:
/// the spec's enum has nothing better and SDKs reject unknown values.
pub fn finish_reason_str(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Stop | FinishReason::Other => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::FunctionCall => "function_call",
    }
}

/// A native `CompletionUsage` object → canonical usage, keeping the object in `native`.
pub fn usage_from_native(native: &RawValue) -> Result<Usage, UpstreamError> {
    let w: WireUsage = serde_json::from_str(native.get())
        .map_err(|e| UpstreamError::malformed(format!("usage: {e}")))?;
    let p = w.prompt_tokens_details.unwrap_or_default();
    let c = w.completion_tokens_details.unwrap_or_default();
    let total = if w.total_tokens == 0 {
        w.prompt_tokens + w.completion_tokens
    } else {
        w.total_tokens
    };
    Ok(Usage {
        input_tokens: w.prompt_tokens,
        output_tokens: w.completion_tokens,
        total_tokens: total,
        cached_input_tokens: p.cached_tokens,
        cache_creation_input_tokens: p.cache_write_tokens,
        reasoning_tokens: c.reasoning_tokens,
        input_audio_tokens: p.audio_tokens,
        output_audio_tokens: c.audio_tokens,
        accepted_prediction_tokens: c.accepted_prediction_tokens,
        rejected_prediction_tokens: c.rejected_prediction_tokens,
        native: Some(NativeJson::from_raw(native)),
    })
}

/// Canonical usage → OpenAI's object; detail objects only where something is known.
pub fn usage_to_wire(u: &Usage) -> WireUsage {
    let p = PromptTokensDetails {
        cached_tokens: u.cached_input_tokens,
        audio_tokens: u.input_audio_tokens,
        cache_write_tokens: u.cache_creation_input_tokens,
    };
    let c = CompletionTokensDetails {
        reasoning_tokens: u.reasoning_tokens,
        audio_tokens: u.output_audio_tokens,
        accepted_prediction_tokens: u.accepted_prediction_tokens,
        rejected_prediction_tokens: u.rejected_prediction_tokens,
    };
    WireUsage {
        prompt_tokens: u.input_tokens,
        completion_tokens: u.output_tokens,
        total_tokens: u.total_tokens,
        prompt_tokens_details: (p != PromptTokensDetails::default()).then_some(p),
        completion_tokens_details: (c != CompletionTokensDetails::default()).then_some(c),
    }
}

/// `chat.completion` as we write it to a client.
#[derive(Debug, Serialize)]
pub struct ChatCompletionOut<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: Vec<ChoiceOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<WireUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<&'a str>,
    /// Switchyard extension: what was changed or dropped on the way.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub warnings: &'a [String],
}

#[derive(Debug, Serialize)]
pub struct ChoiceOut<'a> {
    pub index: u32,
    pub message: MessageOut<'a>,
    pub logprobs: Option<&'a Value>,
    pub finish_reason: &'static str,
}

#[derive(Debug, Serialize)]
pub struct MessageOut<'a> {
    pub role: &'static str,
    /// `null` when the turn only calls tools.
    pub content: Option<&'a str>,
    pub refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<&'a str>,
    /// Switchyard extension: the reasoning block by block, signatures included, for the client
    /// to send back with the turn (see [`ReasoningDetailOut`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasoning_details: Vec<ReasoningDetailOut<'a>>,
}

/// One entry of `reasoning_details` on an assistant message or a stream delta, in OpenRouter's
/// shape so that clients written for it keep and return ours too:
/// `{"type": "reasoning.text", "text", "signature", "format", "index"}` or
/// `{"type": "reasoning.encrypted", "data", "format", "index"}`. The official Python SDK
/// keeps unknown fields of a message, so a client that appends the message it got to its
/// history sends them back as they came. The spec's message and delta schemas are open (no
/// `additionalProperties: false`), so answers carrying the field still validate.
#[derive(Debug, Serialize)]
pub struct ReasoningDetailOut<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<&'a str>,
    /// The block's place among the message's blocks. Stream helpers (the Python SDK's,
    /// OpenRouter clients) merge list entries of deltas by `index`, concatenating strings, so
    /// each block has its own: ours arrive whole, one per index.
    pub index: u32,
}

impl<'a> ReasoningDetailOut<'a> {
    pub fn new(block: &'a ReasoningBlock, index: u32) -> Self {
        match block {
            ReasoningBlock::Text {
                text,
                signature,
                format,
            } => ReasoningDetailOut {
                kind: "reasoning.text",
                text: Some(text),
                signature: signature.as_deref(),
                data: None,
                format: format.as_deref(),
                index,
            },
            ReasoningBlock::Encrypted { data, format } => ReasoningDetailOut {
                kind: "reasoning.encrypted",
                text: None,
                signature: None,
                data: Some(data),
                format: format.as_deref(),
                index,
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ToolCallOut<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionOut<'a>,
}

#[derive(Debug, Serialize)]
pub struct FunctionOut<'a> {
    pub name: &'a str,
    pub arguments: &'a str,
}

/// Canonical response → the wire struct a client gets.
pub fn to_wire(r: &ChatResponse) -> ChatCompletionOut<'_> {
    ChatCompletionOut {
        id: &r.id,
        object: "chat.completion",
        created: r.created,
        model: &r.model,
        choices: r
            .choices
            .iter()
            .map(|c| ChoiceOut {
                index: c.index,
                message: MessageOut {
                    role: "assistant",
                    content: c.message.content.as_deref(),
                    refusal: c.message.refusal.as_deref(),
                    tool_calls: c
                        .message
                        .tool_calls
                        .iter()
                        .map(|t| ToolCallOut {
                            id: &t.id,
                            kind: "function",
                            function: FunctionOut {
                                name: &t.name,
                                arguments: &t.arguments,
                            },
                        })
                        .collect(),
                    reasoning_content: c.message.reasoning.as_deref(),
                    reasoning_details: (0..)
                        .zip(&c.message.reasoning_blocks)
                        .map(|(i, b)| ReasoningDetailOut::new(b, i))
                        .collect(),
                },
                logprobs: c.logprobs.as_ref(),
                finish_reason: finish_reason_str(c.finish_reason.unwrap_or(FinishReason::Stop)),
            })
            .collect(),
        usage: r.usage.as_ref().map(usage_to_wire),
        system_fingerprint: r.system_fingerprint.as_deref(),
        service_tier: r.service_tier.as_deref(),
        warnings: &r.warnings,
    }
}

/// Canonical response → `chat.completion` JSON bytes.
pub fn encode(r: &ChatResponse) -> Vec<u8> {
    // Serializing borrowed strings and `Value`s into a Vec cannot fail.
    serde_json::to_vec(&to_wire(r)).unwrap_or_default()
}
