//! The canonical chat request: what every front door parses into and every provider builds from.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::safety::SafetyPolicy;

/// One chat completion request, independent of any provider's wire format.
///
/// Fields a provider cannot express are rejected by that provider's request builder with
/// [`crate::TranslateError::Unsupported`] (or dropped, when the route says so), never silently.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ChatRequest {
    /// The model the client asked for. At the front door this is a route alias; a provider's
    /// request builder uses the target's upstream model name instead.
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Upper bound on generated tokens (OpenAI `max_completion_tokens` / `max_tokens`,
    /// Anthropic `max_tokens`, Gemini `maxOutputTokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    /// Number of choices. Most providers only support 1; they reject larger values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<ReasoningEffort>,
    #[serde(default)]
    pub stream: bool,
    /// Whether a stream ends with a usage chunk (OpenAI `stream_options.include_usage`).
    #[serde(default)]
    pub include_usage: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety: Option<SafetyPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Provider-specific fields the canonical model does not know. A provider's builder copies
    /// them verbatim into its native body, so clients can reach features we do not model yet.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    pub role: Role,
    /// `None` for an assistant turn that only calls tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Assistant turns: the tools it called.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Tool turns: which call this result answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Assistant turns: reasoning text the model produced (DeepSeek `reasoning_content`,
    /// Anthropic thinking). Providers that do not accept it back drop it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Assistant turns: the reasoning as the provider returned it, block by block, to be sent
    /// back unmodified. Anthropic refuses a tool loop with thinking on unless the turn's signed
    /// thinking comes back; `reasoning` is the plain text, for providers that read only that.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasoning_blocks: Vec<ReasoningBlock>,
    /// Assistant turns: a refusal message (OpenAI `refusal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

/// One block of a model's reasoning, kept whole because a provider that signs its reasoning
/// checks it byte for byte when it comes back (Anthropic's `thinking` / `redacted_thinking`).
/// `format` names the provider family that produced it, in OpenRouter's vocabulary
/// (`anthropic-claude-v1`), so a signature only goes back to the provider that can read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReasoningBlock {
    /// Visible reasoning, with the provider's signature over it when it signs (Anthropic
    /// `thinking`).
    Text {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<String>,
    },
    /// Reasoning the provider encrypted instead of showing (Anthropic `redacted_thinking`).
    Encrypted {
        data: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<String>,
    },
}

impl ReasoningBlock {
    pub fn format(&self) -> Option<&str> {
        match self {
            ReasoningBlock::Text { format, .. } | ReasoningBlock::Encrypted { format, .. } => {
                format.as_deref()
            }
        }
    }
}

impl Message {
    /// A message with plain text content and nothing else.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Message {
            role,
            content: Some(Content::Text(text.into())),
            name: None,
            tool_calls: Vec::new(),
            tool_call_id: None,
            reasoning: None,
            reasoning_blocks: Vec::new(),
            refusal: None,
        }
    }

    /// The text of this message, with text parts joined; images, files and audio are left out.
    pub fn text_content(&self) -> String {
        match &self.content {
            None => String::new(),
            Some(Content::Text(t)) => t.clone(),
            Some(Content::Parts(parts)) => parts
                .iter()
                .filter_map(|p| match p {
                    ContentPart::Text { text } => Some(text.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(""),
        }
    }
}

/// Message content. The two forms are kept apart so that a request round-trips exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text {
        text: String,
    },
    /// An image by URL; `data:` URLs carry inline base64 images.
    ImageUrl {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<ImageDetail>,
    },
    /// A file sent inline (OpenAI `file` with `file_data`, Anthropic `document`, Gemini
    /// `inlineData`).
    File {
        /// Base64, without a `data:` prefix.
        data: String,
        /// The MIME type, from the `data:` URL the client sent. `None` when it sent bare
        /// base64; providers then go by the filename's extension ([`ContentPart::file_media_type`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_type: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
    /// A file uploaded to OpenAI beforehand (`file_id`). Only OpenAI targets can read it.
    FileId {
        file_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
    /// Audio input (OpenAI `input_audio`): base64 `data` in `format`.
    InputAudio {
        data: String,
        format: AudioFormat,
    },
}

impl ContentPart {
    /// An inline file's MIME type: the one it came with, else one known from its filename's
    /// extension (`.pdf`, `.txt`, ...), else `None`.
    pub fn file_media_type<'a>(
        media_type: Option<&'a str>,
        filename: Option<&str>,
    ) -> Option<&'a str> {
        if let Some(m) = media_type {
            return Some(m);
        }
        let ext = filename?.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match ext.as_str() {
            "pdf" => "application/pdf",
            "txt" => "text/plain",
            "md" => "text/markdown",
            "csv" => "text/csv",
            "html" | "htm" => "text/html",
            "json" => "application/json",
            "wav" => "audio/wav",
            "mp3" => "audio/mp3",
            "png" => "image/png",
            "jpg" | "jpeg" => "image/jpeg",
            "gif" => "image/gif",
            "webp" => "image/webp",
            _ => return None,
        })
    }
}

/// Audio input formats (OpenAI's `input_audio.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AudioFormat {
    Wav,
    Mp3,
}

impl AudioFormat {
    /// OpenAI's name for it.
    pub const fn as_str(self) -> &'static str {
        match self {
            AudioFormat::Wav => "wav",
            AudioFormat::Mp3 => "mp3",
        }
    }

    /// The MIME type Gemini documents for it (`audio/wav`, `audio/mp3`).
    pub const fn mime_type(self) -> &'static str {
        match self {
            AudioFormat::Wav => "audio/wav",
            AudioFormat::Mp3 => "audio/mp3",
        }
    }

    /// The format of an audio MIME type (`audio/mpeg` and `audio/x-wav` included).
    pub fn from_mime_type(mime: &str) -> Option<AudioFormat> {
        match mime {
            "audio/wav" | "audio/x-wav" | "audio/wave" => Some(AudioFormat::Wav),
            "audio/mp3" | "audio/mpeg" => Some(AudioFormat::Mp3),
            _ => None,
        }
    }
}

/// `bytes` in standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (k, &b)| n | (b as u32) << (16 - 8 * k));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 (`+/`, padding optional) decoded, or `None` when it is not base64.
pub fn base64_decode(data: &str) -> Option<Vec<u8>> {
    fn value(b: u8) -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let trimmed = data.trim_end_matches('=');
    if data.len() - trimmed.len() > 2 || trimmed.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(trimmed.len() / 4 * 3 + 2);
    for chunk in trimmed.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (k, &b) in chunk.iter().enumerate() {
            n |= value(b)? << (18 - 6 * k);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// How many bytes a base64 text decodes to (padding and a malformed tail are not checked):
/// what a provider's size limit counts.
pub fn base64_decoded_len(data: &str) -> usize {
    let trimmed = data.trim_end_matches('=');
    trimmed.len() / 4 * 3 + (trimmed.len() % 4).saturating_sub(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImageDetail {
    Auto,
    Low,
    High,
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    None,
    Auto,
    /// The model must call some tool.
    Required,
    /// The model must call this tool.
    Function {
        name: String,
    },
}

/// A tool call made by the model. `arguments` is the JSON text of the arguments object, as
/// OpenAI sends it; providers that send an object serialize it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        schema: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningEffort {
    None,
    Minimal,
    Low,
    Medium,
    High,
}

#[cfg(test)]
mod base64_tests {
    use super::*;

    #[test]
    fn decodes_standard_base64_and_counts_its_bytes() {
        for (b64, plain) in [
            ("", ""),
            ("aA==", "h"),
            ("aGk=", "hi"),
            ("aGk", "hi"),
            ("aGVsbG8gd29ybGQ=", "hello world"),
            ("JVBERi0xLjQK", "%PDF-1.4\n"),
        ] {
            assert_eq!(
                base64_decode(b64).as_deref(),
                Some(plain.as_bytes()),
                "{b64}"
            );
            assert_eq!(base64_decoded_len(b64), plain.len(), "{b64}");
            if b64.len() % 4 == 0 {
                assert_eq!(base64_encode(plain.as_bytes()), b64);
            }
        }
        for bad in ["a", "a===", "a*b=", "aGk=x"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }
}
