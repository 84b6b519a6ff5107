//! Canonical request → DashScope compatible-mode body (OpenAI's `CreateChatCompletionRequest`
//! plus `enable_thinking` / `thinking_budget`).
//!
//! | canonical | Qwen |
//! |---|---|
//! | `max_output_tokens` | `max_tokens` (the compatible mode documents no `max_completion_tokens`) |
//! | `reasoning_effort: none` | `enable_thinking: false` |
//! | `minimal` / `low` / `medium` | `enable_thinking: true`, `thinking_budget` 512 / 2048 / 8192 |
//! | `high` | `enable_thinking: true`, no budget (the model's maximum) |
//! | no effort, not streaming | `enable_thinking: false` (see below) |
//! | assistant `reasoning` | not sent back (Qwen does not read it) |
//! | `file` and `input_audio` content parts | unsupported (see `files_and_audio`) |
//!
//! Thinking is stream-only on the compatible endpoint: a non-streaming call with thinking on is
//! a 400 (`parameter.enable_thinking must be set to false for non-streaming calls`), and Qwen3
//! open-source models think by default. So a non-streaming request that asks for reasoning is
//! [`TranslateError::Unsupported`] (or, with `on_unsupported = drop`, sent with thinking off
//! and a warning), and a non-streaming request that says nothing gets `enable_thinking: false`
//! explicitly, the fix the error message itself asks for. Thinking-only models (QwQ,
//! `*-thinking`) still need streaming; their upstream 400 says so.

use serde_json::{json, Map, Value};
use switchyard_core::{
    ChatRequest, ContentPart, ReasoningEffort, TranslateError, UnsupportedPolicy,
};
use switchyard_openai::request as oa;

use crate::Qwen;

/// `thinking_budget` for an effort; `None` means no cap.
pub fn thinking_budget(effort: ReasoningEffort) -> Option<u32> {
    match effort {
        ReasoningEffort::Minimal => Some(512),
        ReasoningEffort::Low => Some(2048),
        ReasoningEffort::Medium => Some(8192),
        ReasoningEffort::None | ReasoningEffort::High => None,
    }
}

/// The inverse, for the server side: the smallest effort whose budget covers `budget`.
pub fn effort_for(enable: bool, budget: Option<u64>) -> ReasoningEffort {
    match (enable, budget) {
        (false, _) => ReasoningEffort::None,
        (true, None) => ReasoningEffort::High,
        (true, Some(b)) if b <= 512 => ReasoningEffort::Minimal,
        (true, Some(b)) if b <= 2048 => ReasoningEffort::Low,
        (true, Some(b)) if b <= 8192 => ReasoningEffort::Medium,
        (true, Some(_)) => ReasoningEffort::High,
    }
}

pub fn to_native(
    request: &ChatRequest,
    model: &str,
    policy: UnsupportedPolicy,
    warnings: &mut Vec<String>,
) -> Result<Map<String, Value>, TranslateError> {
    let mut m = oa::to_native(request, model);
    if let Some(v) = m.remove("max_completion_tokens") {
        m.insert("max_tokens".into(), v);
    }
    m.remove("reasoning_effort");
    let wants_thinking = request
        .reasoning_effort
        .is_some_and(|e| e != ReasoningEffort::None);
    if wants_thinking && !request.stream {
        match policy {
            UnsupportedPolicy::Reject => {
                return Err(TranslateError::Unsupported {
                    provider: Qwen::NAME,
                    feature: "reasoning without streaming (thinking is stream-only on DashScope's compatible mode)"
                        .into(),
                })
            }
            UnsupportedPolicy::Drop => warnings.push(
                "qwen: thinking turned off; DashScope allows it only on streaming requests".into(),
            ),
        }
    }
    match request.reasoning_effort {
        Some(effort) if wants_thinking && request.stream => {
            m.insert("enable_thinking".into(), Value::Bool(true));
            if let Some(b) = thinking_budget(effort) {
                m.insert("thinking_budget".into(), json!(b));
            }
        }
        Some(_) => {
            m.insert("enable_thinking".into(), Value::Bool(false));
        }
        None if !request.stream => {
            m.insert("enable_thinking".into(), Value::Bool(false));
        }
        None => {}
    }
    oa::remove_parts(&mut m, request, files_and_audio, |feature| match policy {
        UnsupportedPolicy::Reject => Err(TranslateError::Unsupported {
            provider: Qwen::NAME,
            feature: feature.into(),
        }),
        UnsupportedPolicy::Drop => {
            warnings.push(format!("qwen: dropped {feature} (not supported)"));
            Ok(())
        }
    })?;
    Ok(m)
}

/// Files and audio: the compatible mode's documented chat models take text and images. (Its
/// omni models' `input_audio` wants a data URL in `data`, not OpenAI's bare base64, and its
/// documents go through its own file ids; neither is modelled yet.)
fn files_and_audio(p: &ContentPart) -> Option<&'static str> {
    match p {
        ContentPart::File { .. } | ContentPart::FileId { .. } => {
            Some("files (`file` content parts)")
        }
        ContentPart::InputAudio { .. } => Some("audio input (`input_audio` content parts)"),
        ContentPart::Text { .. } | ContentPart::ImageUrl { .. } => None,
    }
}
