//! Canonical request → Mistral `ChatCompletionRequest`.
//!
//! Built from the OpenAI body ([`switchyard_openai::request::to_native`]) and then edited where
//! Mistral differs. Mistral's request schema is closed (`additionalProperties: false`, also on
//! every message type), so a key it does not know is a 422: everything below either renames a
//! key, removes it with a warning (route policy `drop`) or rejects the request (`reject`).
//!
//! | canonical | Mistral |
//! |---|---|
//! | `max_output_tokens` | `max_tokens` (there is no `max_completion_tokens`) |
//! | `seed` | `random_seed` (minimum 0: a negative seed has its sign bit cleared, deterministically) |
//! | `tool_choice: required` | `"any"` (Mistral's own name; older API versions know only that) |
//! | tool without `parameters` | `parameters: {"type": "object", "properties": {}}` (required) |
//! | tool call ids | see [`crate::ids`] |
//! | role `developer` | `system` |
//! | final assistant turn | `prefix: true` (else Mistral rejects a conversation ending on it) |
//! | safety policy blocking anything | `safe_prompt: true` + a warning: thresholds are approximated |
//! | stream | no `stream_options`: Mistral always sends usage on the last chunk |
//! | `logprobs`, `top_logprobs`, `user`, `name` on non-tool turns | unsupported (reject / drop) |
//! | assistant `reasoning` | not sent back (Mistral does not read it; no warning: it is model output) |
//! | assistant `refusal` | becomes the content when there is none, else dropped |
//! | `file` part, PDF | `document_url` chunk with the `data:` URL, `document_name` from the filename |
//! | `file` part, other type or `file_id` | unsupported (Mistral's `file` chunk takes its own upload ids) |
//! | `input_audio` part | `input_audio` chunk: the base64 string (Mistral takes no format) |

use serde_json::{json, Map, Value};
use switchyard_core::{ChatRequest, Content, ContentPart, Role, TranslateError, UnsupportedPolicy};

const PDF: &str = "application/pdf";
use switchyard_openai::request as oa;

use crate::ids::tool_call_id;
use crate::Mistral;

/// The native body for `request`, with warnings for what the route let us drop.
pub fn to_native(
    request: &ChatRequest,
    model: &str,
    policy: UnsupportedPolicy,
    warnings: &mut Vec<String>,
) -> Result<Map<String, Value>, TranslateError> {
    let mut m = oa::to_native(request, model);
    let gap = |feature: &str, warnings: &mut Vec<String>| unsupported(policy, feature, warnings);

    if let Some(v) = m.remove("max_completion_tokens") {
        m.insert("max_tokens".into(), v);
    }
    if let Some(seed) = request.seed {
        m.remove("seed");
        m.insert("random_seed".into(), json!(seed & i64::MAX));
    }
    m.remove("stream_options");
    if m.get("tool_choice") == Some(&json!("required")) {
        m.insert("tool_choice".into(), json!("any"));
    }
    if let Some(Value::Array(tools)) = m.get_mut("tools") {
        for t in tools {
            if let Some(f) = t.get_mut("function").and_then(Value::as_object_mut) {
                f.entry("parameters")
                    .or_insert_with(|| json!({"type": "object", "properties": {}}));
            }
        }
    }
    if request.logprobs.is_some() || request.top_logprobs.is_some() {
        gap("logprobs", warnings)?;
        m.remove("logprobs");
        m.remove("top_logprobs");
    }
    if request.user.is_some() {
        // An end-user id never changes the answer: drop it (with a warning) whatever the
        // route's policy, rather than fail every client that sends one.
        warnings.push(
            "mistral: dropped the `user` field (no equivalent; it does not affect the answer)"
                .into(),
        );
        m.remove("user");
    }
    if let Some(safety) = &request.safety {
        if safety.blocks_anything() {
            m.insert("safe_prompt".into(), Value::Bool(true));
            warnings.push(
                "mistral: safety settings approximated by `safe_prompt: true` (one safety system prompt; no per-category thresholds)"
                    .into(),
            );
        }
    }

    let last = request.messages.len().checked_sub(1);
    let mut messages = Vec::with_capacity(request.messages.len());
    for (i, msg) in request.messages.iter().enumerate() {
        let mut v = oa::message(msg);
        let Some(o) = v.as_object_mut() else {
            continue;
        };
        if msg.role == Role::Developer {
            o.insert("role".into(), json!("system"));
        }
        if msg.name.is_some() && msg.role != Role::Tool {
            gap(
                &format!("`name` on {} messages", oa::role_str(msg.role)),
                warnings,
            )?;
            o.remove("name");
        }
        if let Some(refusal) = o.remove("refusal") {
            if msg.content.is_none() {
                o.insert("content".into(), refusal);
            }
        }
        if let Some(Value::Array(calls)) = o.get_mut("tool_calls") {
            for (call, c) in calls.iter_mut().zip(&msg.tool_calls) {
                call["id"] = json!(tool_call_id(&c.id));
            }
        }
        if let (Some(Content::Parts(parts)), Some(Value::Array(out))) =
            (&msg.content, o.get_mut("content"))
        {
            for (j, p) in parts.iter().enumerate().rev() {
                match p {
                    ContentPart::Text { .. } | ContentPart::ImageUrl { .. } => {}
                    ContentPart::File {
                        data,
                        media_type,
                        filename,
                    } => match ContentPart::file_media_type(
                        media_type.as_deref(),
                        filename.as_deref(),
                    ) {
                        Some(PDF) => {
                            let mut chunk = Map::new();
                            chunk.insert("type".into(), json!("document_url"));
                            chunk.insert(
                                "document_url".into(),
                                json!(format!("data:{PDF};base64,{data}")),
                            );
                            if let Some(name) = filename {
                                chunk.insert("document_name".into(), json!(name));
                            }
                            out[j] = Value::Object(chunk);
                        }
                        other => {
                            gap(
                                &format!(
                                    "files of type {} (documents must be PDFs)",
                                    other.unwrap_or("unknown")
                                ),
                                warnings,
                            )?;
                            out.remove(j);
                        }
                    },
                    ContentPart::FileId { .. } => {
                        gap("OpenAI file ids (`file_id`)", warnings)?;
                        out.remove(j);
                    }
                    ContentPart::InputAudio { data, .. } => {
                        out[j] = json!({"type": "input_audio", "input_audio": data});
                    }
                }
            }
        }
        if let Some(id) = &msg.tool_call_id {
            o.insert("tool_call_id".into(), json!(tool_call_id(id)));
        }
        match msg.role {
            // `content` is required on these (null is allowed).
            Role::System | Role::Developer | Role::User | Role::Tool => {
                o.entry("content").or_insert(Value::Null);
            }
            Role::Assistant if Some(i) == last => {
                o.insert("prefix".into(), Value::Bool(true));
            }
            Role::Assistant => {}
        }
        messages.push(v);
    }
    m.insert("messages".into(), Value::Array(messages));
    Ok(m)
}

/// Rejects, or drops with a warning, per the route's policy.
fn unsupported(
    policy: UnsupportedPolicy,
    feature: &str,
    warnings: &mut Vec<String>,
) -> Result<(), TranslateError> {
    match policy {
        UnsupportedPolicy::Reject => Err(TranslateError::Unsupported {
            provider: Mistral::NAME,
            feature: feature.to_string(),
        }),
        UnsupportedPolicy::Drop => {
            warnings.push(format!("mistral: {feature} dropped (not supported)"));
            Ok(())
        }
    }
}
