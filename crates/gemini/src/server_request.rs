//! Server side: a `GenerateContentRequest` body → canonical request (for the mock provider).
//! The inverse of `request.rs`: what that builder writes comes back as it was.

use serde_json::{Map, Value};
use switchyard_core::{
    AudioFormat, ChatRequest, Content as CanonContent, ContentPart, ErrorClass, Message,
    ReasoningEffort, ResponseFormat, Role, SafetyPolicy, SafetySetting as CanonSafety,
    SafetyThreshold, Tool, ToolCall, ToolChoice, UpstreamError,
};

use crate::request::thinking_config;
use crate::wire::{
    Blob, Content, FunctionCallingMode, GenerateContentRequest, GenerationConfig,
    HarmBlockThreshold, HarmCategory, Part,
};

fn invalid(msg: impl Into<String>) -> UpstreamError {
    UpstreamError::new(ErrorClass::InvalidRequest, msg).with_status(400)
}

pub(crate) fn parse(path_model: Option<&str>, body: &[u8]) -> Result<ChatRequest, UpstreamError> {
    let mut native: GenerateContentRequest = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("Invalid JSON payload received. {e}")))?;
    let body_model = native
        .extra
        .remove("model")
        .and_then(|m| m.as_str().map(str::to_string));
    let model = path_model
        .map(str::to_string)
        .or(body_model)
        .ok_or_else(|| invalid("model is required"))?;
    let model = model
        .strip_prefix("models/")
        .map(str::to_string)
        .unwrap_or(model);
    if native.contents.is_empty() {
        return Err(invalid(
            "* GenerateContentRequest.contents: contents is not specified",
        ));
    }

    let mut req = ChatRequest {
        model,
        include_usage: true,
        extra: std::mem::take(&mut native.extra),
        ..ChatRequest::default()
    };
    if let Some(system) = &native.system_instruction {
        for p in &system.parts {
            req.messages.push(Message::text(
                Role::System,
                p.text.clone().unwrap_or_default(),
            ));
        }
    }
    messages(&native.contents, &mut req.messages)?;
    tools(&native, &mut req)?;
    safety(&native, &mut req)?;
    if let Some(g) = native.generation_config.take() {
        generation(g, &mut req)?;
    }
    Ok(req)
}

/// A call of the latest model turn not yet answered. `id` is the canonical id (signature
/// included), `base` the one Gemini's `functionResponse.id` uses.
struct Pending {
    id: String,
    base: String,
    name: String,
}

fn messages(contents: &[Content], out: &mut Vec<Message>) -> Result<(), UpstreamError> {
    // Calls of the latest model turn not yet answered, to give id-less responses the id we
    // gave their call.
    let mut pending: Vec<Pending> = Vec::new();
    for c in contents {
        match c.role.as_deref() {
            Some("model") => {
                pending.clear();
                let mut m = Message::text(Role::Assistant, "");
                m.content = None;
                let (mut text, mut reasoning) = (None::<String>, None::<String>);
                for p in &c.parts {
                    if let Some(t) = &p.text {
                        let slot = if p.thought { &mut reasoning } else { &mut text };
                        slot.get_or_insert_with(String::new).push_str(t);
                    }
                    if let Some(call) = &p.function_call {
                        let base = crate::response::call_id(call.id.as_deref(), m.tool_calls.len());
                        let id =
                            crate::signature::join(base.clone(), p.thought_signature.as_deref());
                        pending.push(Pending {
                            id: id.clone(),
                            base,
                            name: call.name.clone(),
                        });
                        m.tool_calls.push(ToolCall {
                            id,
                            name: call.name.clone(),
                            arguments: crate::response::args_text(call.args.as_ref()),
                        });
                    }
                }
                m.content = text.map(CanonContent::Text);
                m.reasoning = reasoning;
                out.push(m);
            }
            Some("user") | None => user_turn(&c.parts, &mut pending, out)?,
            Some(other) => return Err(invalid(format!("unknown role {other:?}"))),
        }
    }
    Ok(())
}

/// Images stay data URLs, as before there were files; audio in a format OpenAI names becomes
/// `input_audio` (only under the MIME type we write, so the request rebuilds to the same
/// bytes); anything else is a file.
fn inline_part(blob: &Blob) -> ContentPart {
    let mime = blob.mime_type.as_str();
    if mime.starts_with("image/") {
        return ContentPart::ImageUrl {
            url: format!("data:{mime};base64,{}", blob.data),
            detail: None,
        };
    }
    match AudioFormat::from_mime_type(mime).filter(|f| f.mime_type() == mime) {
        Some(format) => ContentPart::InputAudio {
            data: blob.data.clone(),
            format,
        },
        None => ContentPart::File {
            data: blob.data.clone(),
            media_type: Some(mime.to_string()),
            filename: None,
        },
    }
}

fn user_turn(
    parts: &[Part],
    pending: &mut Vec<Pending>,
    out: &mut Vec<Message>,
) -> Result<(), UpstreamError> {
    let mut run: Vec<ContentPart> = Vec::new();
    let flush = |run: &mut Vec<ContentPart>, out: &mut Vec<Message>| {
        if run.is_empty() {
            return;
        }
        let content = match run.as_slice() {
            [ContentPart::Text { text }] => CanonContent::Text(text.clone()),
            _ => CanonContent::Parts(run.clone()),
        };
        run.clear();
        let mut m = Message::text(Role::User, "");
        m.content = Some(content);
        out.push(m);
    };
    for p in parts {
        if let Some(text) = &p.text {
            run.push(ContentPart::Text { text: text.clone() });
        } else if let Some(blob) = &p.inline_data {
            run.push(inline_part(blob));
        } else if let Some(file) = &p.file_data {
            run.push(ContentPart::ImageUrl {
                url: file.file_uri.clone(),
                detail: None,
            });
        } else if let Some(fr) = &p.function_response {
            flush(&mut run, out);
            let id = match fr.id.as_deref().filter(|i| !i.is_empty()) {
                Some(id) => match pending.iter().position(|p| p.base == id) {
                    Some(i) => pending.remove(i).id,
                    None => id.to_string(),
                },
                None => match pending.iter().position(|p| p.name == fr.name) {
                    Some(i) => pending.remove(i).id,
                    None => fr.name.clone(),
                },
            };
            let content = match fr.response.get("result") {
                Some(Value::String(s)) if fr.response.len() == 1 => s.clone(),
                Some(v) if fr.response.len() == 1 => v.to_string(),
                _ => Value::Object(fr.response.clone()).to_string(),
            };
            let mut m = Message::text(Role::Tool, content);
            m.tool_call_id = Some(id);
            out.push(m);
        } else {
            return Err(invalid("unsupported part in a user turn"));
        }
    }
    flush(&mut run, out);
    Ok(())
}

/// OpenAPI-subset `Schema` → JSON Schema: lower-case type names; the rest is shared.
fn json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("type", Value::String(t)) => (k.clone(), Value::String(t.to_lowercase())),
                    _ => (k.clone(), json_schema(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(json_schema).collect()),
        other => other.clone(),
    }
}

fn tools(native: &GenerateContentRequest, req: &mut ChatRequest) -> Result<(), UpstreamError> {
    for t in &native.tools {
        if let Some(kind) = t.other.keys().next() {
            return Err(invalid(format!("tool {kind:?} is not supported here")));
        }
        for f in &t.function_declarations {
            req.tools.push(Tool {
                name: f.name.clone(),
                description: f.description.clone(),
                parameters: f
                    .parameters_json_schema
                    .clone()
                    .or_else(|| f.parameters.as_ref().map(json_schema)),
                strict: None,
            });
        }
    }
    let Some(fc) = native
        .tool_config
        .as_ref()
        .and_then(|c| c.function_calling_config.as_ref())
    else {
        return Ok(());
    };
    req.tool_choice = match (fc.mode, fc.allowed_function_names.as_slice()) {
        (Some(FunctionCallingMode::Any), [name]) => {
            Some(ToolChoice::Function { name: name.clone() })
        }
        (Some(FunctionCallingMode::Any), _) => Some(ToolChoice::Required),
        (Some(FunctionCallingMode::None), _) => Some(ToolChoice::None),
        (Some(FunctionCallingMode::Auto), _) => Some(ToolChoice::Auto),
        (Some(FunctionCallingMode::Validated), _) => {
            for t in &mut req.tools {
                t.strict = Some(true);
            }
            None
        }
        (None, _) => None,
        (Some(FunctionCallingMode::Unknown), _) => {
            return Err(invalid("unknown functionCallingConfig.mode"))
        }
    };
    Ok(())
}

fn safety(native: &GenerateContentRequest, req: &mut ChatRequest) -> Result<(), UpstreamError> {
    use switchyard_core::HarmCategory as C;
    if native.safety_settings.is_empty() {
        return Ok(());
    }
    let mut settings = Vec::new();
    for s in &native.safety_settings {
        let category = match s.category {
            HarmCategory::Harassment => C::Harassment,
            HarmCategory::HateSpeech => C::HateSpeech,
            HarmCategory::SexuallyExplicit => C::SexuallyExplicit,
            HarmCategory::DangerousContent => C::DangerousContent,
            HarmCategory::CivicIntegrity => C::CivicIntegrity,
            HarmCategory::Unknown => return Err(invalid("unsupported safety category")),
        };
        let threshold = match s.threshold {
            HarmBlockThreshold::BlockLowAndAbove => SafetyThreshold::BlockLowAndAbove,
            HarmBlockThreshold::BlockMediumAndAbove => SafetyThreshold::BlockMediumAndAbove,
            HarmBlockThreshold::BlockOnlyHigh => SafetyThreshold::BlockOnlyHigh,
            HarmBlockThreshold::BlockNone => SafetyThreshold::BlockNone,
            HarmBlockThreshold::Off => SafetyThreshold::Off,
            HarmBlockThreshold::Unknown => return Err(invalid("unsupported safety threshold")),
        };
        settings.push(CanonSafety {
            category,
            threshold,
        });
    }
    req.safety = Some(SafetyPolicy { settings });
    Ok(())
}

const EFFORTS: [ReasoningEffort; 5] = [
    ReasoningEffort::None,
    ReasoningEffort::Minimal,
    ReasoningEffort::Low,
    ReasoningEffort::Medium,
    ReasoningEffort::High,
];

fn generation(mut g: GenerationConfig, req: &mut ChatRequest) -> Result<(), UpstreamError> {
    req.temperature = g.temperature;
    req.top_p = g.top_p;
    req.max_output_tokens = g.max_output_tokens;
    req.stop = std::mem::take(&mut g.stop_sequences);
    req.seed = g.seed.map(i64::from);
    req.presence_penalty = g.presence_penalty;
    req.frequency_penalty = g.frequency_penalty;
    req.n = g.candidate_count;
    req.logprobs = g.response_logprobs;
    req.top_logprobs = g.logprobs;
    let mut rest = std::mem::take(&mut g.extra);
    req.response_format = match (
        g.response_mime_type.as_deref(),
        &g.response_json_schema,
        &g.response_schema,
    ) {
        (Some("application/json"), Some(schema), _) => Some(ResponseFormat::JsonSchema {
            name: "response".into(),
            description: None,
            schema: schema.clone(),
            strict: None,
        }),
        (Some("application/json"), None, Some(schema)) => Some(ResponseFormat::JsonSchema {
            name: "response".into(),
            description: None,
            schema: json_schema(schema),
            strict: None,
        }),
        (Some("application/json"), None, None) => Some(ResponseFormat::JsonObject),
        (None, None, None) => None,
        _ => {
            // Other MIME types (`text/x.enum`) have no canonical form: keep them verbatim.
            for (k, v) in [
                (
                    "responseMimeType",
                    g.response_mime_type.clone().map(Value::String),
                ),
                ("responseJsonSchema", g.response_json_schema.clone()),
                ("responseSchema", g.response_schema.clone()),
            ] {
                if let Some(v) = v {
                    rest.insert(k.into(), v);
                }
            }
            None
        }
    };
    if let Some(tc) = g.thinking_config.take() {
        match EFFORTS.into_iter().find(|e| thinking_config(*e) == tc) {
            Some(e) => req.reasoning_effort = Some(e),
            None => {
                let v = serde_json::to_value(tc).map_err(|e| invalid(e.to_string()))?;
                rest.insert("thinkingConfig".into(), v);
            }
        }
    }
    if !rest.is_empty() {
        let slot = req
            .extra
            .entry("generationConfig")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = slot {
            m.extend(rest);
        }
    }
    Ok(())
}
