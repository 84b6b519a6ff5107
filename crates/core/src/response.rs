//! The canonical chat response and token usage.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::request::{ReasoningBlock, ToolCall};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChatResponse {
    /// The provider's id for this completion.
    pub id: String,
    /// The model that actually answered (the upstream name, not the route alias).
    pub model: String,
    /// Unix seconds.
    pub created: u64,
    pub choices: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Things the gateway or adapter changed or dropped on the way (e.g. an unsupported safety
    /// policy dropped by route config). Never silent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    /// The provider's own finish reason, verbatim (`end_turn`, `SAFETY`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_finish_reason: Option<String>,
    /// Log probabilities, in OpenAI's shape, when the provider returned them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct AssistantMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// The reasoning block by block, as the provider will want it back (see
    /// [`crate::Message::reasoning_blocks`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasoning_blocks: Vec<ReasoningBlock>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

/// Why generation ended, in the canonical (OpenAI-like) vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    Stop,
    /// Output token limit or context window reached.
    Length,
    ToolCalls,
    ContentFilter,
    /// OpenAI's legacy `function_call`.
    FunctionCall,
    /// The provider ended generation for a reason outside this vocabulary (see
    /// `native_finish_reason`).
    Other,
}

/// Token counts, with OpenAI's semantics: `input_tokens` includes cached and cache-written
/// tokens, `output_tokens` includes reasoning tokens. Optional fields are `None` when the
/// provider did not report them (not zero).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_audio_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_audio_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_prediction_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_prediction_tokens: Option<u64>,
    /// The provider's own usage object, verbatim, so nothing it reported is lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Value>")]
    pub native: Option<NativeJson>,
}

/// A provider's own JSON, kept as the text it arrived as. It is carried on every answer and
/// read rarely, so no tree is built for it: parsing usage into a `Value` was a fifth of the
/// cost of translating a small answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct NativeJson(Box<serde_json::value::RawValue>);

/// As the JSON it holds, through any serializer (snapshots use their own, which would write a
/// raw value as a wrapper object). The gateway's hot path never serializes canonical usage.
impl Serialize for NativeJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl NativeJson {
    pub fn from_raw(raw: &serde_json::value::RawValue) -> Self {
        NativeJson(raw.to_owned())
    }

    pub fn from_value(value: &Value) -> Self {
        // Serializing a `Value` cannot fail; `null` is the harmless fallback all the same.
        NativeJson(
            serde_json::value::to_raw_value(value)
                .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned()),
        )
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Parsed, for the few readers that need fields out of it.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

/// Equal when the JSON is, whatever the spacing.
impl PartialEq for NativeJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get() || self.to_value() == other.to_value()
    }
}

impl Usage {
    /// Adds another attempt's usage (a continued stream bills both attempts).
    pub fn add(&mut self, other: &Usage) {
        fn add_opt(a: &mut Option<u64>, b: Option<u64>) {
            if let Some(b) = b {
                *a = Some(a.unwrap_or(0) + b);
            }
        }
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.total_tokens += other.total_tokens;
        add_opt(&mut self.cached_input_tokens, other.cached_input_tokens);
        add_opt(
            &mut self.cache_creation_input_tokens,
            other.cache_creation_input_tokens,
        );
        add_opt(&mut self.reasoning_tokens, other.reasoning_tokens);
        add_opt(&mut self.input_audio_tokens, other.input_audio_tokens);
        add_opt(&mut self.output_audio_tokens, other.output_audio_tokens);
        add_opt(
            &mut self.accepted_prediction_tokens,
            other.accepted_prediction_tokens,
        );
        add_opt(
            &mut self.rejected_prediction_tokens,
            other.rejected_prediction_tokens,
        );
        self.native = None;
    }
}
