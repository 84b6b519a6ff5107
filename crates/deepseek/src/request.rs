//! Canonical request → DeepSeek body (OpenAI's `CreateChatCompletionRequest` plus `thinking`).
//!
//! | canonical | DeepSeek |
//! |---|---|
//! | `max_output_tokens` | `max_tokens` (DeepSeek documents no `max_completion_tokens`) |
//! | `reasoning_effort: none` | `thinking: {"type": "disabled"}` |
//! | any other effort | `thinking: {"type": "enabled"}`; DeepSeek has no effort levels, so `minimal`/`low`/`medium` add a warning (`high` is its default) |
//! | `response_format: json_schema` | unsupported; with `drop`, sent as `json_object` + warning |
//! | `n > 1`, `seed` | unsupported (not DeepSeek parameters) |
//! | `file` and `input_audio` content parts | unsupported (DeepSeek documents text content only) |
//! | assistant `reasoning` | sent back as `reasoning_content` only on assistant turns with tool calls after the last user turn (thinking-mode tool loops need it: DeepSeek answers 400 "Missing `reasoning_content` field" otherwise); elsewhere dropped without warning, because DeepSeek ignores (older `deepseek-reasoner`: rejects) it there — api-docs.deepseek.com/guides/thinking_mode |
//! | assistant `reasoning_blocks` (signed reasoning from Anthropic) | never sent: DeepSeek takes reasoning back as `reasoning_content` text only, and OpenAI's builder writes no `reasoning_details` |
//! | `temperature`, `top_p`, penalties on the reasoner | sent: DeepSeek ignores them, it does not reject them |

use serde_json::{json, Map, Value};
use switchyard_core::{
    ChatRequest, ContentPart, ReasoningEffort, ResponseFormat, Role, TranslateError,
    UnsupportedPolicy,
};
use switchyard_openai::request as oa;

use crate::DeepSeek;

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
    if let Some(effort) = request.reasoning_effort {
        m.remove("reasoning_effort");
        let kind = if effort == ReasoningEffort::None {
            "disabled"
        } else {
            "enabled"
        };
        m.insert("thinking".into(), json!({ "type": kind }));
        if matches!(
            effort,
            ReasoningEffort::Minimal | ReasoningEffort::Low | ReasoningEffort::Medium
        ) {
            warnings.push(format!(
                "deepseek: reasoning_effort `{}` sent as thinking enabled (DeepSeek has no effort levels)",
                oa::effort_str(effort)
            ));
        }
    }
    if request.n.is_some_and(|n| n > 1) {
        unsupported(policy, "n > 1 (several choices)", warnings)?;
        m.remove("n");
    }
    if request.seed.is_some() {
        unsupported(policy, "seed", warnings)?;
        m.remove("seed");
    }
    if let Some(ResponseFormat::JsonSchema { .. }) = request.response_format {
        unsupported(
            policy,
            "response_format json_schema (only json_object)",
            warnings,
        )?;
        m.insert("response_format".into(), json!({"type": "json_object"}));
    }
    // DeepSeek's chat API documents text content only.
    oa::remove_parts(&mut m, request, files_and_audio, |feature| {
        unsupported(policy, feature, warnings)
    })?;
    let last_user = request.messages.iter().rposition(|m| m.role == Role::User);
    if let Some(Value::Array(messages)) = m.get_mut("messages") {
        for (i, (v, msg)) in messages.iter_mut().zip(&request.messages).enumerate() {
            let in_tool_loop = last_user.is_none_or(|u| i > u);
            if let (Some(r), true) = (&msg.reasoning, in_tool_loop && !msg.tool_calls.is_empty()) {
                v["reasoning_content"] = json!(r);
            }
        }
    }
    Ok(m)
}

/// Files and audio: DeepSeek documents no such content parts.
fn files_and_audio(p: &ContentPart) -> Option<&'static str> {
    match p {
        ContentPart::File { .. } | ContentPart::FileId { .. } => {
            Some("files (`file` content parts)")
        }
        ContentPart::InputAudio { .. } => Some("audio input (`input_audio` content parts)"),
        ContentPart::Text { .. } | ContentPart::ImageUrl { .. } => None,
    }
}

fn unsupported(
    policy: UnsupportedPolicy,
    feature: &str,
    warnings: &mut Vec<String>,
) -> Result<(), TranslateError> {
    match policy {
        UnsupportedPolicy::Reject => Err(TranslateError::Unsupported {
            provider: DeepSeek::NAME,
            feature: feature.to_string(),
        }),
        UnsupportedPolicy::Drop => {
            warnings.push(format!("deepseek: {feature} dropped (not supported)"));
            Ok(())
        }
    }
}
