//! Canonical request → `GenerateContentRequest` + URL + headers.

use std::collections::HashMap;

use serde_json::{Map, Value};
use switchyard_core::{
    ChatRequest, Content as CanonContent, ContentPart, Endpoint, Message, NativeBody,
    ReasoningEffort, ResponseFormat, Role, SafetyThreshold, Target, ToolChoice, TranslateError,
    UnsupportedPolicy,
};

use crate::wire::{
    Blob, Content, FileData, FunctionCall, FunctionCallingConfig, FunctionCallingMode,
    FunctionDeclaration, FunctionResponse, GenerateContentRequest, GenerationConfig,
    HarmBlockThreshold, HarmCategory, Part, SafetySetting, ThinkingConfig, Tool, ToolConfig,
};
use crate::PROVIDER;

/// `reasoning_effort` → `thinkingBudget`. Low/medium/high follow Google's own OpenAI
/// compatibility layer (1K/8K/24K); `none` disables thinking (0), which 2.5 Pro refuses;
/// `minimal` is ours. Budgets past a model's range are clamped by the API.
pub(crate) fn thinking_budget(effort: ReasoningEffort) -> i32 {
    match effort {
        ReasoningEffort::None => 0,
        ReasoningEffort::Minimal => 512,
        ReasoningEffort::Low => 1024,
        ReasoningEffort::Medium => 8192,
        ReasoningEffort::High => 24576,
    }
}

/// The `thinkingConfig` we send for an effort: thought summaries are asked for whenever
/// thinking is on, so canonical `reasoning` gets filled.
pub(crate) fn thinking_config(effort: ReasoningEffort) -> ThinkingConfig {
    let budget = thinking_budget(effort);
    ThinkingConfig {
        include_thoughts: (budget != 0).then_some(true),
        thinking_budget: Some(budget),
        extra: Map::new(),
    }
}

/// Collects what the target cannot express: an error, or a warning under `Drop`.
struct Gaps<'a> {
    policy: UnsupportedPolicy,
    warnings: &'a mut Vec<String>,
}

impl Gaps<'_> {
    fn unsupported(&mut self, feature: impl Into<String>) -> Result<(), TranslateError> {
        let feature = feature.into();
        match self.policy {
            UnsupportedPolicy::Reject => Err(TranslateError::Unsupported {
                provider: PROVIDER,
                feature,
            }),
            UnsupportedPolicy::Drop => {
                self.warnings
                    .push(format!("gemini: dropped {feature} (not supported)"));
                Ok(())
            }
        }
    }

    /// Drops a bookkeeping field that never changes the answer (end-user ids, tags), whatever
    /// the route's policy: rejecting every request that carries one would fail most real
    /// clients for nothing. Still never silent.
    fn bookkeeping(&mut self, feature: &str) {
        self.warnings.push(format!(
            "{PROVIDER}: dropped {feature} (no equivalent; it does not affect the answer)"
        ));
    }
}

pub(crate) fn build_body_bytes(
    request: &ChatRequest,
    target: &Target<'_>,
) -> Result<NativeBody, TranslateError> {
    let mut warnings = Vec::new();
    let body = build_body(request, target.on_unsupported, &mut warnings)?;
    let body = serde_json::to_vec(&body)
        .map_err(|e| TranslateError::Invalid(format!("cannot serialize request: {e}")))?;
    // Not a field that can be dropped, so the route's `on_unsupported` does not apply.
    if body.len() > MAX_REQUEST_BYTES {
        return Err(TranslateError::Unsupported {
            provider: PROVIDER,
            feature: format!(
                "requests over 20 MB (its inline data limit; this one is {} bytes)",
                body.len()
            ),
        });
    }
    Ok(NativeBody { body, warnings })
}

/// `{base}/v1beta/models/{model}:generateContent`, or the streaming method with SSE framing.
pub(crate) fn endpoint(target: &Target<'_>, stream: bool) -> Result<Endpoint, TranslateError> {
    let model = model_path(target.model)?;
    let base = target.base_url.trim_end_matches('/');
    let url = if stream {
        format!("{base}/v1beta/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("{base}/v1beta/{model}:generateContent")
    };
    Endpoint::json_post(&url, target.api_key.map(|key| ("x-goog-api-key", key)))
}

/// `gemini-2.5-flash` / `models/gemini-2.5-flash` → `models/gemini-2.5-flash`;
/// `tunedModels/x` stays as is.
fn model_path(model: &str) -> Result<String, TranslateError> {
    let (collection, name) = match model.split_once('/') {
        Some((c @ ("models" | "tunedModels"), name)) => (c, name),
        _ => ("models", model),
    };
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !ok {
        return Err(TranslateError::Invalid(format!(
            "model name {model:?} is not a valid Gemini model id"
        )));
    }
    Ok(format!("{collection}/{name}"))
}

pub(crate) fn build_body(
    req: &ChatRequest,
    policy: UnsupportedPolicy,
    warnings: &mut Vec<String>,
) -> Result<Value, TranslateError> {
    let mut gaps = Gaps { policy, warnings };
    let mut native = GenerateContentRequest {
        contents: contents(req, &mut gaps)?,
        system_instruction: system_instruction(req, &mut gaps)?,
        ..Default::default()
    };
    if native.contents.is_empty() {
        return Err(TranslateError::Invalid(
            "Gemini needs at least one user or assistant message".into(),
        ));
    }

    let any_strict = req.tools.iter().any(|t| t.strict == Some(true));
    if !req.tools.is_empty() {
        native.tools = vec![Tool {
            function_declarations: req
                .tools
                .iter()
                .map(|t| FunctionDeclaration {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    parameters: None,
                    parameters_json_schema: t.parameters.clone(),
                })
                .collect(),
            other: Map::new(),
        }];
    }
    native.tool_config = tool_config(req.tool_choice.as_ref(), any_strict);
    if req.parallel_tool_calls == Some(false) {
        gaps.unsupported("parallel_tool_calls=false")?;
    }

    if let Some(safety) = &req.safety {
        native.safety_settings = safety
            .settings
            .iter()
            .map(|s| SafetySetting {
                category: category(s.category),
                threshold: threshold(s.threshold),
            })
            .collect();
    }

    native.generation_config = generation_config(req, &mut gaps)?;

    if req.user.is_some() {
        gaps.bookkeeping("user");
    }
    if !req.metadata.is_empty() {
        gaps.bookkeeping("metadata");
    }

    let mut body = serde_json::to_value(&native)
        .map_err(|e| TranslateError::Invalid(format!("cannot serialize request: {e}")))?;
    merge(&mut body, &Value::Object(req.extra.clone()));
    Ok(body)
}

/// Deep-merges `extra` into `body`: objects merge key by key (so `{"generationConfig":
/// {"topK": 40}}` adds one setting), anything else replaces.
fn merge(body: &mut Value, extra: &Value) {
    match (body, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                match b.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, e) => *b = e.clone(),
    }
}

fn generation_config(
    req: &ChatRequest,
    gaps: &mut Gaps<'_>,
) -> Result<Option<GenerationConfig>, TranslateError> {
    let int = |name: &str, v: u32| -> Result<u32, TranslateError> {
        if v > i32::MAX as u32 {
            return Err(TranslateError::Invalid(format!(
                "{name} {v} is out of range"
            )));
        }
        Ok(v)
    };
    let mut g = GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        max_output_tokens: req
            .max_output_tokens
            .map(|v| int("max_output_tokens", v))
            .transpose()?,
        stop_sequences: req.stop.clone(),
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        ..Default::default()
    };
    if let Some(seed) = req.seed {
        match i32::try_from(seed) {
            Ok(s) => g.seed = Some(s),
            Err(_) => gaps.unsupported(format!("seed {seed} (Gemini seeds are 32-bit)"))?,
        }
    }
    match req.n {
        None | Some(1) => {}
        Some(0) => return Err(TranslateError::Invalid("n must be at least 1".into())),
        Some(n) => g.candidate_count = Some(int("n", n)?),
    }
    if req.logprobs == Some(true) {
        g.response_logprobs = Some(true);
        g.logprobs = req.top_logprobs.filter(|n| *n > 0);
    } else if req.top_logprobs.is_some_and(|n| n > 0) {
        return Err(TranslateError::Invalid(
            "top_logprobs needs logprobs=true".into(),
        ));
    }
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            g.response_mime_type = Some("application/json".into());
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            g.response_mime_type = Some("application/json".into());
            g.response_json_schema = Some(schema.clone());
        }
    }
    if let Some(effort) = req.reasoning_effort {
        g.thinking_config = Some(thinking_config(effort));
    }
    Ok((g != GenerationConfig::default()).then_some(g))
}

fn tool_config(choice: Option<&ToolChoice>, any_strict: bool) -> Option<ToolConfig> {
    let (mode, names) = match choice {
        // Constrained decoding of calls is the nearest thing Gemini has to `strict`.
        None | Some(ToolChoice::Auto) if any_strict => (FunctionCallingMode::Validated, vec![]),
        None => return None,
        Some(ToolChoice::Auto) => (FunctionCallingMode::Auto, vec![]),
        Some(ToolChoice::None) => (FunctionCallingMode::None, vec![]),
        Some(ToolChoice::Required) => (FunctionCallingMode::Any, vec![]),
        Some(ToolChoice::Function { name }) => (FunctionCallingMode::Any, vec![name.clone()]),
    };
    Some(ToolConfig {
        function_calling_config: Some(FunctionCallingConfig {
            mode: Some(mode),
            allowed_function_names: names,
        }),
        other: Map::new(),
    })
}

pub(crate) fn category(c: switchyard_core::HarmCategory) -> HarmCategory {
    use switchyard_core::HarmCategory as C;
    match c {
        C::Harassment => HarmCategory::Harassment,
        C::HateSpeech => HarmCategory::HateSpeech,
        C::SexuallyExplicit => HarmCategory::SexuallyExplicit,
        C::DangerousContent => HarmCategory::DangerousContent,
        C::CivicIntegrity => HarmCategory::CivicIntegrity,
    }
}

pub(crate) fn threshold(t: SafetyThreshold) -> HarmBlockThreshold {
    match t {
        SafetyThreshold::Off => HarmBlockThreshold::Off,
        SafetyThreshold::BlockNone => HarmBlockThreshold::BlockNone,
        SafetyThreshold::BlockOnlyHigh => HarmBlockThreshold::BlockOnlyHigh,
        SafetyThreshold::BlockMediumAndAbove => HarmBlockThreshold::BlockMediumAndAbove,
        SafetyThreshold::BlockLowAndAbove => HarmBlockThreshold::BlockLowAndAbove,
    }
}

/// System and developer messages, one text part each. Gemini has a single top-level
/// instruction, so one that stood mid-conversation moves to the top (with a warning).
fn system_instruction(
    req: &ChatRequest,
    gaps: &mut Gaps<'_>,
) -> Result<Option<Content>, TranslateError> {
    let mut parts = Vec::new();
    let mut seen_turn = false;
    for m in &req.messages {
        if !matches!(m.role, Role::System | Role::Developer) {
            seen_turn = true;
            continue;
        }
        if seen_turn {
            gaps.warnings.push(
                "gemini: a system message after the first turn was moved into systemInstruction"
                    .into(),
            );
        }
        if m.name.is_some() {
            gaps.unsupported("message name")?;
        }
        if let Some(CanonContent::Parts(ps)) = &m.content {
            if ps.iter().any(|p| !matches!(p, ContentPart::Text { .. })) {
                gaps.unsupported("images, files or audio in a system message")?;
            }
        }
        parts.push(Part::text(m.text_content()));
    }
    Ok((!parts.is_empty()).then_some(Content { role: None, parts }))
}

fn contents(req: &ChatRequest, gaps: &mut Gaps<'_>) -> Result<Vec<Content>, TranslateError> {
    // tool_call_id → function name, as of the latest assistant turn that used the id
    // (synthetic ids like `call_0` repeat across turns).
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    let mut out: Vec<Content> = Vec::new();
    for m in &req.messages {
        let (role, parts) = match m.role {
            Role::System | Role::Developer => continue,
            Role::User => {
                if m.name.is_some() {
                    gaps.unsupported("message name")?;
                }
                ("user", user_parts(m.content.as_ref(), gaps)?)
            }
            Role::Assistant => {
                for c in &m.tool_calls {
                    call_names.insert(c.id.as_str(), c.name.as_str());
                }
                if let Some(CanonContent::Parts(ps)) = &m.content {
                    if ps.iter().any(|p| !matches!(p, ContentPart::Text { .. })) {
                        gaps.unsupported("images, files or audio in an assistant message")?;
                    }
                }
                ("model", assistant_parts(m)?)
            }
            Role::Tool => ("user", vec![tool_result_part(m, &call_names)?]),
        };
        if parts.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.role.as_deref() == Some(role) => last.parts.extend(parts),
            _ => out.push(Content {
                role: Some(role.into()),
                parts,
            }),
        }
    }
    Ok(out)
}

fn user_parts(
    content: Option<&CanonContent>,
    gaps: &mut Gaps<'_>,
) -> Result<Vec<Part>, TranslateError> {
    match content {
        None => Ok(vec![]),
        Some(CanonContent::Text(t)) => Ok(vec![Part::text(t.clone())]),
        Some(CanonContent::Parts(ps)) => {
            let mut parts = Vec::with_capacity(ps.len());
            for p in ps {
                match p {
                    ContentPart::Text { text } => parts.push(Part::text(text.clone())),
                    ContentPart::ImageUrl { url, detail } => {
                        if detail.is_some_and(|d| d != switchyard_core::ImageDetail::Auto) {
                            gaps.unsupported("image detail")?;
                        }
                        parts.push(image_part(url)?);
                    }
                    ContentPart::File {
                        data,
                        media_type,
                        filename,
                    } => match ContentPart::file_media_type(media_type.as_deref(), filename.as_deref()) {
                        Some(mime) if inline_file_type(mime) => {
                            if !is_base64(data) {
                                return Err(TranslateError::Invalid(
                                    "a file's `file_data` is not base64".into(),
                                ));
                            }
                            // Gemini's Blob has no name: the filename goes no further.
                            parts.push(inline(mime, data));
                        }
                        Some(other) => gaps.unsupported(format!("files of type {other}"))?,
                        None => gaps.unsupported(
                            "files of unknown type (no MIME type in `file_data`, no known extension)",
                        )?,
                    },
                    ContentPart::FileId { .. } => gaps.unsupported(
                        "OpenAI file ids (`file_id`; send the file inline as `file_data`)",
                    )?,
                    ContentPart::InputAudio { data, format } => {
                        if !is_base64(data) {
                            return Err(TranslateError::Invalid(
                                "`input_audio.data` is not base64".into(),
                            ));
                        }
                        parts.push(inline(format.mime_type(), data));
                    }
                }
            }
            Ok(parts)
        }
    }
}

fn inline(mime: &str, data: &str) -> Part {
    Part {
        inline_data: Some(Blob {
            mime_type: mime.into(),
            data: data.into(),
        }),
        ..Part::default()
    }
}

/// The file types Gemini documents for inline data: PDF, text and code, images, audio, video.
fn inline_file_type(mime: &str) -> bool {
    let (kind, _) = mime.split_once('/').unwrap_or((mime, ""));
    matches!(kind, "text" | "image" | "audio" | "video")
        || matches!(
            mime,
            "application/pdf"
                | "application/json"
                | "application/rtf"
                | "application/x-javascript"
                | "application/x-python-code"
                | "application/x-typescript"
        )
}

/// Gemini's documented limit on a request with inline data (20 MB; larger files go through
/// its Files API, which we do not use). A larger body is refused before it is sent, so that
/// failover can pick a target that takes it.
pub const MAX_REQUEST_BYTES: usize = 20 * 1024 * 1024;

/// `data:` URLs become `inlineData`; other URLs `fileData`, which Gemini fetches itself
/// (Files API URIs, and public or signed HTTPS URLs). The MIME type is guessed from the
/// extension; when it cannot be, it is left out and Gemini sniffs it.
fn image_part(url: &str) -> Result<Part, TranslateError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| TranslateError::Invalid("malformed data: URL".into()))?;
        let mime = meta.strip_suffix(";base64").ok_or_else(|| {
            TranslateError::Invalid("data: URLs must be base64-encoded for Gemini".into())
        })?;
        if mime.is_empty() || !is_base64(data) {
            return Err(TranslateError::Invalid(
                "malformed data: URL (MIME type or base64)".into(),
            ));
        }
        return Ok(Part {
            inline_data: Some(Blob {
                mime_type: mime.into(),
                data: data.into(),
            }),
            ..Part::default()
        });
    }
    Ok(Part {
        file_data: Some(FileData {
            mime_type: guess_mime(url).map(str::to_string),
            file_uri: url.into(),
        }),
        ..Part::default()
    })
}

fn is_base64(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

fn guess_mime(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

fn assistant_parts(m: &Message) -> Result<Vec<Part>, TranslateError> {
    // Reasoning is not sent back: Gemini does not take thought text as input.
    let mut parts = Vec::new();
    let text = m.text_content();
    if !text.is_empty() {
        parts.push(Part::text(text));
    }
    if let Some(refusal) = m.refusal.as_ref().filter(|r| !r.is_empty()) {
        parts.push(Part::text(refusal.clone()));
    }
    for c in &m.tool_calls {
        let args = if c.arguments.trim().is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Value>(&c.arguments) {
                Ok(Value::Object(map)) => map,
                _ => {
                    return Err(TranslateError::Invalid(format!(
                        "tool call {:?} arguments are not a JSON object",
                        c.id
                    )))
                }
            }
        };
        let signature = crate::signature::split(&c.id).1;
        parts.push(Part {
            function_call: Some(FunctionCall {
                id: wire_id(&c.id),
                name: c.name.clone(),
                args: Some(args),
            }),
            thought_signature: signature.map(str::to_string),
            ..Part::default()
        });
    }
    Ok(parts)
}

/// `{"result": <JSON if the content is JSON, else the text>}`: Gemini wants an object, and
/// one fixed key keeps the translation reversible.
fn tool_result_part(m: &Message, names: &HashMap<&str, &str>) -> Result<Part, TranslateError> {
    let id = m.tool_call_id.as_deref().unwrap_or_default();
    let name = names
        .get(id)
        .copied()
        .or(m.name.as_deref())
        .ok_or_else(|| {
            TranslateError::Invalid(format!(
                "tool result {id:?} answers no earlier assistant tool call"
            ))
        })?;
    let text = m.text_content();
    let result = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
    let mut response = Map::new();
    response.insert("result".into(), result);
    Ok(Part {
        function_response: Some(FunctionResponse {
            id: wire_id(id),
            name: name.to_string(),
            response,
        }),
        ..Part::default()
    })
}

/// The id to show Gemini: ours without the signature, and none for the `call_<n>` ids we
/// made up for calls Gemini sent without one (so it gets back exactly what it sent).
fn wire_id(id: &str) -> Option<String> {
    let base = crate::signature::split(id).0;
    let synthetic = base
        .strip_prefix("call_")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    (!base.is_empty() && !synthetic).then(|| base.to_string())
}
