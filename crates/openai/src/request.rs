//! Canonical request → native OpenAI request body and HTTP request.
//!
//! Dialects call [`to_native`], edit the map (rename or drop keys they differ on) and then
//! [`map_body`]; every OpenAI-compatible API takes [`endpoint`]. OpenAI itself uses
//! [`native_body`], which writes the same bytes without building the map.

mod body;
mod write;

use serde_json::{json, Map, Value};
use switchyard_core::{
    ChatRequest, Content, ContentPart, Endpoint, ImageDetail, Message, ReasoningEffort,
    ResponseFormat, Role, Tool, ToolChoice, TranslateError, UnsupportedPolicy,
};

/// The native `CreateChatCompletionRequest` body for `request`, with `model` set to `model`.
///
/// Differences from what a client may have sent (all deliberate):
/// - the output limit is always `max_completion_tokens` (never the deprecated `max_tokens`);
/// - a streaming request always carries `stream_options.include_usage: true`, because the
///   gateway needs usage even when the client did not ask for it;
/// - assistant `reasoning` and `reasoning_blocks` are not sent back (OpenAI has no field for
///   them);
/// - `safety` is not represented (see [`check_safety`]);
/// - keys of `ChatRequest::extra` are copied verbatim, never overriding a key set here.
pub fn to_native(request: &ChatRequest, model: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("model".into(), Value::String(model.to_string()));
    m.insert(
        "messages".into(),
        Value::Array(request.messages.iter().map(message).collect()),
    );
    if !request.tools.is_empty() {
        m.insert(
            "tools".into(),
            Value::Array(request.tools.iter().map(tool).collect()),
        );
    }
    if let Some(tc) = &request.tool_choice {
        m.insert("tool_choice".into(), tool_choice(tc));
    }
    put(&mut m, "parallel_tool_calls", request.parallel_tool_calls);
    put(&mut m, "temperature", request.temperature);
    put(&mut m, "top_p", request.top_p);
    put(&mut m, "max_completion_tokens", request.max_output_tokens);
    if !request.stop.is_empty() {
        m.insert("stop".into(), json!(request.stop));
    }
    put(&mut m, "seed", request.seed);
    put(&mut m, "presence_penalty", request.presence_penalty);
    put(&mut m, "frequency_penalty", request.frequency_penalty);
    put(&mut m, "n", request.n);
    put(&mut m, "logprobs", request.logprobs);
    put(&mut m, "top_logprobs", request.top_logprobs);
    if let Some(rf) = &request.response_format {
        m.insert("response_format".into(), response_format(rf));
    }
    if let Some(effort) = request.reasoning_effort {
        m.insert("reasoning_effort".into(), json!(effort_str(effort)));
    }
    if request.stream {
        m.insert("stream".into(), Value::Bool(true));
        m.insert("stream_options".into(), json!({"include_usage": true}));
    }
    put(&mut m, "user", request.user.as_deref());
    if !request.metadata.is_empty() {
        m.insert("metadata".into(), json!(request.metadata));
    }
    for (k, v) in &request.extra {
        m.entry(k.clone()).or_insert_with(|| v.clone());
    }
    m
}

/// The JSON bytes of [`to_native`]`(request, model)`. A request without `extra` keys, the
/// usual case, is serialized from borrowed structs instead of through the map, and the
/// simplest of those are written by hand ([`write`]).
pub fn native_body(request: &ChatRequest, model: &str) -> Result<Vec<u8>, TranslateError> {
    let bytes = if request.extra.is_empty() {
        if let Some(bytes) = write::plain(request, model) {
            return Ok(bytes);
        }
        serde_json::to_vec(&body::Body::new(request, model))
    } else {
        serde_json::to_vec(&to_native(request, model))
    };
    bytes.map_err(|e| TranslateError::Invalid(format!("request body: {e}")))
}

/// OpenAI has no request-side safety settings. A policy that blocks something is rejected, or
/// dropped with a warning when the route says `on_unsupported = drop`.
pub fn check_safety(
    provider: &'static str,
    request: &ChatRequest,
    on_unsupported: UnsupportedPolicy,
    warnings: &mut Vec<String>,
) -> Result<(), TranslateError> {
    match &request.safety {
        Some(policy) if policy.blocks_anything() => match on_unsupported {
            UnsupportedPolicy::Reject => Err(TranslateError::Unsupported {
                provider,
                feature: "safety settings (there is no request-side safety filter)".into(),
            }),
            UnsupportedPolicy::Drop => {
                warnings.push(format!(
                    "{provider}: safety settings dropped; this provider has no request-side safety filter"
                ));
                Ok(())
            }
        },
        _ => Ok(()),
    }
}

/// `POST {base_url}/{path}` with a bearer key (marked sensitive) and a JSON body.
pub fn endpoint(
    base_url: &str,
    path: &str,
    api_key: Option<&str>,
) -> Result<Endpoint, TranslateError> {
    let url = format!("{}/{}", base_url.trim_end_matches('/'), path);
    let bearer = api_key.map(|key| format!("Bearer {key}"));
    Endpoint::json_post(&url, bearer.as_deref().map(|b| ("authorization", b)))
}

/// The JSON bytes of a body map built with [`to_native`] and edited by a dialect.
pub fn map_body(body: &Map<String, Value>) -> Result<Vec<u8>, TranslateError> {
    serde_json::to_vec(body).map_err(|e| TranslateError::Invalid(format!("request body: {e}")))
}

fn put<T: serde::Serialize>(m: &mut Map<String, Value>, key: &str, v: Option<T>) {
    if let Some(v) = v {
        m.insert(key.into(), json!(v));
    }
}

/// The wire name of a role.
pub fn role_str(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::Developer => "developer",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

pub fn effort_str(effort: ReasoningEffort) -> &'static str {
    match effort {
        ReasoningEffort::None => "none",
        ReasoningEffort::Minimal => "minimal",
        ReasoningEffort::Low => "low",
        ReasoningEffort::Medium => "medium",
        ReasoningEffort::High => "high",
    }
}

/// One canonical message in OpenAI's shape.
pub fn message(msg: &Message) -> Value {
    let mut m = Map::new();
    m.insert("role".into(), json!(role_str(msg.role)));
    if let Some(content) = &msg.content {
        m.insert("content".into(), self::content(content));
    }
    put(&mut m, "name", msg.name.as_deref());
    if !msg.tool_calls.is_empty() {
        let calls = msg
            .tool_calls
            .iter()
            .map(|c| {
                json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}})
            })
            .collect();
        m.insert("tool_calls".into(), Value::Array(calls));
    }
    put(&mut m, "tool_call_id", msg.tool_call_id.as_deref());
    put(&mut m, "refusal", msg.refusal.as_deref());
    Value::Object(m)
}

fn content(c: &Content) -> Value {
    match c {
        Content::Text(t) => Value::String(t.clone()),
        Content::Parts(parts) => Value::Array(
            parts
                .iter()
                .map(|p| match p {
                    ContentPart::Text { text } => json!({"type": "text", "text": text}),
                    ContentPart::ImageUrl { url, detail } => {
                        let mut img = Map::new();
                        img.insert("url".into(), json!(url));
                        if let Some(d) = detail {
                            img.insert("detail".into(), json!(detail_str(*d)));
                        }
                        json!({"type": "image_url", "image_url": img})
                    }
                    ContentPart::File {
                        data,
                        media_type,
                        filename,
                    } => {
                        let mut f = Map::new();
                        f.insert(
                            "file_data".into(),
                            json!(file_data(data, media_type.as_deref())),
                        );
                        put(&mut f, "filename", filename.as_deref());
                        json!({"type": "file", "file": f})
                    }
                    ContentPart::FileId { file_id, filename } => {
                        let mut f = Map::new();
                        f.insert("file_id".into(), json!(file_id));
                        put(&mut f, "filename", filename.as_deref());
                        json!({"type": "file", "file": f})
                    }
                    ContentPart::InputAudio { data, format } => json!({
                        "type": "input_audio",
                        "input_audio": {"data": data, "format": format.as_str()},
                    }),
                })
                .collect(),
        ),
    }
}

/// For the OpenAI dialects: removes from `native` (built by [`to_native`] from `request`) the
/// content parts that `refused` names a feature for, each only if `gap(feature)` allows it (the
/// route's `drop`; under `reject` it returns the error). Never a silent drop.
pub fn remove_parts(
    native: &mut Map<String, Value>,
    request: &ChatRequest,
    refused: impl Fn(&ContentPart) -> Option<&'static str>,
    mut gap: impl FnMut(&str) -> Result<(), TranslateError>,
) -> Result<(), TranslateError> {
    let Some(Value::Array(messages)) = native.get_mut("messages") else {
        return Ok(());
    };
    for (v, msg) in messages.iter_mut().zip(&request.messages) {
        let Some(Content::Parts(parts)) = &msg.content else {
            continue;
        };
        let Some(Value::Array(out)) = v.get_mut("content") else {
            continue;
        };
        for (j, p) in parts.iter().enumerate().rev() {
            if let Some(feature) = refused(p) {
                gap(feature)?;
                if j < out.len() {
                    out.remove(j);
                }
            }
        }
    }
    Ok(())
}

/// `file_data` as the client sent it: a `data:` URL when the MIME type is known, else bare
/// base64.
fn file_data<'a>(data: &'a str, media_type: Option<&str>) -> std::borrow::Cow<'a, str> {
    match media_type {
        Some(m) => format!("data:{m};base64,{data}").into(),
        None => data.into(),
    }
}

fn detail_str(d: ImageDetail) -> &'static str {
    match d {
        ImageDetail::Auto => "auto",
        ImageDetail::Low => "low",
        ImageDetail::High => "high",
    }
}

fn tool(t: &Tool) -> Value {
    let mut f = Map::new();
    f.insert("name".into(), json!(t.name));
    put(&mut f, "description", t.description.as_deref());
    put(&mut f, "parameters", t.parameters.as_ref());
    put(&mut f, "strict", t.strict);
    json!({"type": "function", "function": f})
}

fn tool_choice(tc: &ToolChoice) -> Value {
    match tc {
        ToolChoice::None => json!("none"),
        ToolChoice::Auto => json!("auto"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Function { name } => json!({"type": "function", "function": {"name": name}}),
    }
}

fn response_format(rf: &ResponseFormat) -> Value {
    match rf {
        ResponseFormat::Text => json!({"type": "text"}),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema {
            name,
            description,
            schema,
            strict,
        } => {
            let mut s = Map::new();
            s.insert("name".into(), json!(name));
            put(&mut s, "description", description.as_deref());
            s.insert("schema".into(), schema.clone());
            put(&mut s, "strict", *strict);
            json!({"type": "json_schema", "json_schema": s})
        }
    }
}
