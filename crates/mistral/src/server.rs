//! Native Mistral request → canonical (the Mistral mock's front door).
//!
//! Mistral's request is rewritten into OpenAI's shape and read by
//! [`switchyard_openai::parse::parse_request`]: `random_seed` → `seed`, `tool_choice: "any"` →
//! `required`, `safe_prompt: true` → a safety policy blocking the four harm categories at
//! medium and above (the closest canonical reading of "inject a safety prompt"), object
//! `arguments` → JSON text, thinking chunks in assistant turns → `reasoning_content`, string
//! `image_url` → `{url}`, `document_url` → a `file` part, a string `input_audio` →
//! `{data, format}`. `prefix` is dropped: a final assistant turn is a prefix canonically.
//! Other Mistral keys (`prompt_mode`, `guardrails`, `prediction`, ...) land in `extra` and are
//! sent back verbatim by the request builder.

use serde_json::{json, Map, Value};
use switchyard_core::{ChatRequest, ErrorClass, UpstreamError};
use switchyard_openai::parse::{parse_request as parse_openai, SAFETY_SETTINGS_KEY};

use crate::wire::{arguments_text, Content};

pub fn parse_request(body: &[u8]) -> Result<ChatRequest, UpstreamError> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| {
        UpstreamError::new(
            ErrorClass::InvalidRequest,
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    if let Some(o) = value.as_object_mut() {
        rewrite(o);
    }
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    parse_openai(&bytes)
}

fn rewrite(o: &mut Map<String, Value>) {
    if let Some(seed) = o.remove("random_seed") {
        o.entry("seed").or_insert(seed);
    }
    if o.get("tool_choice") == Some(&json!("any")) {
        o.insert("tool_choice".into(), json!("required"));
    }
    match o.remove("safe_prompt") {
        Some(Value::Bool(true)) => {
            let settings: Vec<Value> = [
                "harassment",
                "hate_speech",
                "sexually_explicit",
                "dangerous_content",
            ]
            .iter()
            .map(|c| json!({"category": c, "threshold": "block_medium_and_above"}))
            .collect();
            o.insert(SAFETY_SETTINGS_KEY.into(), Value::Array(settings));
        }
        // `false` is the default; anything else is left for the parser to reject.
        Some(Value::Bool(false)) | None => {}
        Some(other) => {
            o.insert("safe_prompt".into(), other);
        }
    }
    if let Some(Value::Array(messages)) = o.get_mut("messages") {
        for m in messages.iter_mut().filter_map(Value::as_object_mut) {
            rewrite_message(m);
        }
    }
}

fn rewrite_message(m: &mut Map<String, Value>) {
    m.remove("prefix");
    if let Some(Value::Array(calls)) = m.get_mut("tool_calls") {
        for call in calls.iter_mut().filter_map(Value::as_object_mut) {
            call.remove("index");
            if let Some(args) = call
                .get_mut("function")
                .and_then(|f| f.get_mut("arguments"))
            {
                if !args.is_string() {
                    *args = Value::String(arguments_text(args.take()));
                }
            }
        }
    }
    let is_assistant = m.get("role").and_then(Value::as_str) == Some("assistant");
    if let Some(Value::Array(parts)) = m.get_mut("content") {
        let thinking = parts
            .iter()
            .any(|p| p.get("type").and_then(Value::as_str) == Some("thinking"));
        if is_assistant && thinking {
            let chunks = Value::Array(std::mem::take(parts));
            if let Ok(content) = serde_json::from_value::<Content>(chunks) {
                let (text, reasoning) = content.split();
                m.insert("content".into(), text.map_or(Value::Null, Value::String));
                if let Some(r) = reasoning {
                    m.insert("reasoning_content".into(), Value::String(r));
                }
            }
            return;
        }
        for p in parts.iter_mut() {
            if let Some(url @ Value::String(_)) = p.get_mut("image_url") {
                *url = json!({"url": url.take()});
            }
            // `document_url` (a data: URL) and `input_audio` (bare base64, no format) in
            // OpenAI's shape. The format is read from the data: a RIFF header is WAV, anything
            // else is taken for MP3, the only other format OpenAI names.
            if p.get("type").and_then(Value::as_str) == Some("document_url") {
                let mut file = serde_json::Map::new();
                if let Some(url) = p.get("document_url") {
                    file.insert("file_data".into(), url.clone());
                }
                if let Some(name @ Value::String(_)) = p.get("document_name") {
                    file.insert("filename".into(), name.clone());
                }
                *p = json!({"type": "file", "file": file});
            } else if let Some(Value::String(data)) = p.get("input_audio") {
                let format = if data.starts_with("UklGR") {
                    "wav"
                } else {
                    "mp3"
                };
                *p =
                    json!({"type": "input_audio", "input_audio": {"data": data, "format": format}});
            }
        }
    }
}
