//! OpenAI Chat Completions wire types (the parts we model), public so that OpenAI-compatible
//! dialects (Mistral, DeepSeek, Qwen) can reuse or wrap them.
//!
//! Inbound types (responses, stream chunks, errors) are lenient: unknown fields are ignored and
//! enums that grow over time are read as strings. Stream chunk types borrow from the frame so
//! that parsing a chunk allocates only what the resulting events own.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// `null` read as the default: OpenAI-compatible servers write `"tool_calls": null` where
/// OpenAI leaves the field out, and that is still an answer, not a malformed one.
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// Non-streaming response (`chat.completion`)
// ---------------------------------------------------------------------------------------------

/// A `chat.completion` body as upstream sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatCompletion {
    pub id: String,
    #[serde(default)]
    pub created: u64,
    pub model: String,
    pub choices: Vec<CompletionChoice>,
    /// Kept as JSON so the provider's own object survives in `Usage::native`.
    #[serde(default)]
    pub usage: Option<Box<RawValue>>,
    #[serde(default)]
    pub system_fingerprint: Option<String>,
    #[serde(default)]
    pub service_tier: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CompletionChoice {
    #[serde(default)]
    pub index: u32,
    pub message: ResponseMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub logprobs: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResponseMessage {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tool_calls: Vec<WireToolCall>,
    /// DeepSeek / Qwen reasoning text (not sent by OpenAI itself).
    #[serde(default)]
    pub reasoning_content: Option<String>,
    /// Legacy single function call; read as a tool call without id.
    #[serde(default)]
    pub function_call: Option<WireFunctionCall>,
}

/// `{id, type: "function", function: {name, arguments}}`, both directions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: WireFunctionCall,
}

fn function_type() -> String {
    "function".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireFunctionCall {
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

/// `CompletionUsage`. Every field is optional on the way in: dialects report subsets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WireUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_prediction_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_prediction_tokens: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// Stream chunk (`chat.completion.chunk`), borrowed
// ---------------------------------------------------------------------------------------------

/// One `data:` frame of a stream. Borrowed: strings without escapes point into the frame.
#[derive(Debug, Deserialize)]
pub struct ChatCompletionChunk<'a> {
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub model: Option<Cow<'a, str>>,
    #[serde(default)]
    pub created: Option<u64>,
    #[serde(default, borrow, deserialize_with = "null_as_default")]
    pub choices: Vec<ChunkChoice<'a>>,
    /// Present (non-null) on the final usage chunk; dialects may repeat it cumulatively.
    #[serde(default, borrow)]
    pub usage: Option<&'a RawValue>,
    /// An in-stream error (`{"error": {...}}`).
    #[serde(default, borrow)]
    pub error: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
pub struct ChunkChoice<'a> {
    #[serde(default)]
    pub index: u32,
    #[serde(default, borrow)]
    pub delta: Option<ChunkDelta<'a>>,
    #[serde(default, borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChunkDelta<'a> {
    #[serde(default, borrow)]
    pub content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub refusal: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "null_as_default")]
    pub tool_calls: Vec<ToolCallChunk<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct ToolCallChunk<'a> {
    #[serde(default)]
    pub index: u32,
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub function: Option<FunctionChunk<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct FunctionChunk<'a> {
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub arguments: Option<Cow<'a, str>>,
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// `{"error": {...}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorObject,
}

/// `Error`: `code` is a string in the spec, but some servers send numbers, so it is read as JSON.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorObject {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub param: Option<Value>,
    #[serde(default)]
    pub code: Option<Value>,
}

impl ErrorObject {
    /// `code` as text (`"insufficient_quota"`, `"429"`), if any.
    pub fn code_str(&self) -> Option<Cow<'_, str>> {
        match self.code.as_ref()? {
            Value::String(s) => Some(Cow::Borrowed(s.as_str())),
            Value::Null => None,
            other => Some(Cow::Owned(other.to_string())),
        }
    }
}

/// The error object we write, borrowed.
#[derive(Debug, Serialize)]
pub struct ErrorOut<'a> {
    pub message: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub param: Option<&'a str>,
    pub code: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct ErrorEnvelopeOut<'a> {
    pub error: ErrorOut<'a>,
}
