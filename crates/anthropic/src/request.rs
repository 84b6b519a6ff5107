//! Canonical request → Anthropic `CreateMessageParams` body.
//!
//! Shape rules (why the code below looks the way it does):
//! - `system`/`developer` messages, wherever they are, become the top-level `system`: a string
//!   when there is exactly one plain-text system message, text blocks otherwise.
//! - `user`/`assistant` turns must alternate, so consecutive same-role messages merge into one
//!   turn with several blocks; canonical `tool` messages become `tool_result` blocks of a user
//!   turn (so a run of tool results, and a user message after them, share one turn).
//! - A message that stands alone as plain text is sent with string content, so a native request
//!   parsed by the server side rebuilds to the same bytes.
//! - A final assistant message is sent as is: Anthropic continues from it (prefill). This is how
//!   the gateway continues a cut stream.
//! - Reasoning goes back only as the signed blocks Anthropic returned (`reasoning_blocks`),
//!   unmodified and first in their turn, and only while thinking is on: with thinking off,
//!   Anthropic refuses thinking in the turn in progress and ignores it elsewhere. With thinking
//!   on, the turn in progress must start with signed thinking; when it has none, thinking is
//!   turned off for the request (with a warning) rather than sent to a certain 400.

use serde_json::{Map, Value};
use switchyard_core::{
    base64_decode, ChatRequest, Content, ContentPart, ImageDetail, Message, ReasoningBlock,
    ReasoningEffort, ResponseFormat, Role, ToolChoice, TranslateError, UnsupportedPolicy,
};

use crate::wire::{
    DocumentSource, ImageSource, InputBlock, InputMessage, MessageContent, MessagesRequest,
    Metadata, SystemPrompt, ToolDef, ToolResultContent, WireRole, WireToolChoice,
};
use crate::{PROVIDER, REASONING_FORMAT};

/// `max_tokens` is required by Anthropic; used when the client gave no limit.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Thinking budget per canonical effort. Anthropic's minimum budget is 1024 and the budget must
/// stay below `max_tokens`, which counts thinking too.
pub const fn thinking_budget(effort: ReasoningEffort) -> Option<u32> {
    match effort {
        ReasoningEffort::None => None,
        ReasoningEffort::Minimal => Some(1024),
        ReasoningEffort::Low => Some(4096),
        ReasoningEffort::Medium => Some(8192),
        ReasoningEffort::High => Some(16384),
    }
}

const MIN_THINKING_BUDGET: u32 = 1024;
const IMAGE_MEDIA_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];
const PDF: &str = "application/pdf";
const TEXT: &str = "text/plain";
const MAX_TITLE_CHARS: usize = 500;
const AUDIO: &str = "audio input";

/// Anthropic's documented request size limit for the Messages API (32 MB; PDFs also have a
/// 100-page limit, which only Anthropic can count). A larger body is refused before it is sent,
/// so that failover can pick a target that takes it.
pub const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// [`MAX_REQUEST_BYTES`] checked on a built body. Not a field that can be dropped, so the
/// route's `on_unsupported` does not apply.
pub fn check_size(body: &[u8]) -> Result<(), TranslateError> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(TranslateError::Unsupported {
            provider: PROVIDER,
            feature: format!(
                "requests over 32 MB (its Messages API limit; this one is {} bytes)",
                body.len()
            ),
        });
    }
    Ok(())
}

/// Collects what was dropped under `UnsupportedPolicy::Drop`, or fails under `Reject`.
struct Ctx {
    policy: UnsupportedPolicy,
    warnings: Vec<String>,
}

impl Ctx {
    fn unsupported(&mut self, feature: impl Into<String>) -> Result<(), TranslateError> {
        let feature = feature.into();
        match self.policy {
            UnsupportedPolicy::Reject => Err(TranslateError::Unsupported {
                provider: PROVIDER,
                feature,
            }),
            UnsupportedPolicy::Drop => {
                self.warnings
                    .push(format!("{PROVIDER}: dropped {feature} (not supported)"));
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

/// The JSON body for `model`, plus warnings for what was dropped.
pub(crate) fn build_body(
    req: &ChatRequest,
    model: &str,
    policy: UnsupportedPolicy,
) -> Result<(Value, Vec<String>), TranslateError> {
    let mut ctx = Ctx {
        policy,
        warnings: Vec::new(),
    };
    check_unsupported(req, &mut ctx)?;

    let system = build_system(&req.messages, &mut ctx)?;

    // Thinking is settled before the turns, which carry reasoning only while it is on. Its
    // warnings still follow the turns'.
    let mut thinking_ctx = Ctx {
        policy,
        warnings: Vec::new(),
    };
    let (mut thinking, mut max_tokens) = thinking_and_max_tokens(req, &mut thinking_ctx)?;
    // A client's own `thinking` (in `extra`) replaces ours, as every extra key does.
    let mut thinking_on = is_on(req.extra.get("thinking").or(thinking.as_ref()));
    let mut forced_off = false;
    if thinking_on {
        if let Some(i) = unsigned_turn(&req.messages) {
            thinking_ctx.warnings.push(format!(
                "{PROVIDER}: thinking turned off for this request: the assistant turn in progress \
                 (messages[{i}]) has no signed thinking block to send back (reasoning_details), \
                 which Anthropic requires while thinking is on"
            ));
            thinking = Some(serde_json::json!({"type": "disabled"}));
            max_tokens = req.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
            thinking_on = false;
            forced_off = true;
        }
    }

    let messages = build_turns(&req.messages, thinking_on, &mut ctx)?;
    ctx.warnings.append(&mut thinking_ctx.warnings);

    let temperature = match req.temperature {
        Some(t) if t > 1.0 => {
            ctx.unsupported(format!("temperature {t} (Anthropic accepts 0 to 1)"))?;
            None
        }
        t => t,
    };

    let mut wire = MessagesRequest {
        model: model.to_string(),
        messages,
        max_tokens,
        system,
        metadata: req.user.as_ref().map(|u| Metadata {
            user_id: Some(u.clone()),
        }),
        stop_sequences: (!req.stop.is_empty()).then(|| req.stop.clone()),
        stream: req.stream.then_some(true),
        temperature,
        top_p: req.top_p,
        tools: None,
        tool_choice: build_tool_choice(req),
        thinking,
        output_config: build_output_config(req, &mut ctx)?,
        extra: Map::new(),
    };
    if !req.tools.is_empty() {
        wire.tools = Some(
            req.tools
                .iter()
                .map(|t| ToolDef {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    input_schema: Some(t.parameters.clone().unwrap_or_else(
                        || serde_json::json!({"type": "object", "properties": {}}),
                    )),
                    strict: t.strict,
                    kind: None,
                })
                .collect(),
        );
    }

    let mut body = serde_json::to_value(&wire)
        .map_err(|e| TranslateError::Invalid(format!("cannot encode request: {e}")))?;
    if let Value::Object(map) = &mut body {
        // The client's own keys win: they are how a client reaches what we do not model.
        // Except a `thinking` that would have been refused with this history.
        for (k, v) in &req.extra {
            if forced_off && k == "thinking" {
                continue;
            }
            map.insert(k.clone(), v.clone());
        }
    }
    Ok((body, ctx.warnings))
}

fn check_unsupported(req: &ChatRequest, ctx: &mut Ctx) -> Result<(), TranslateError> {
    if let Some(n) = req.n.filter(|&n| n > 1) {
        ctx.unsupported(format!("n = {n} (one choice per request)"))?;
    }
    if req.logprobs == Some(true) {
        ctx.unsupported("logprobs")?;
    }
    if req.top_logprobs.is_some() {
        ctx.unsupported("top_logprobs")?;
    }
    if req.seed.is_some() {
        ctx.unsupported("seed")?;
    }
    if req.presence_penalty.is_some() {
        ctx.unsupported("presence_penalty")?;
    }
    if req.frequency_penalty.is_some() {
        ctx.unsupported("frequency_penalty")?;
    }
    if req.safety.as_ref().is_some_and(|s| s.blocks_anything()) {
        ctx.unsupported("safety settings (Anthropic has no per-request safety thresholds)")?;
    }
    if !req.metadata.is_empty() {
        ctx.bookkeeping("metadata (Anthropic metadata only has user_id)");
    }
    Ok(())
}

fn build_system(
    messages: &[Message],
    ctx: &mut Ctx,
) -> Result<Option<SystemPrompt>, TranslateError> {
    let system: Vec<&Message> = messages
        .iter()
        .filter(|m| matches!(m.role, Role::System | Role::Developer))
        .collect();
    if let [only] = system.as_slice() {
        if let Some(Content::Text(t)) = &only.content {
            return Ok((!t.is_empty()).then(|| SystemPrompt::Text(t.clone())));
        }
    }
    let mut blocks = Vec::new();
    for m in system {
        match &m.content {
            None => {}
            Some(Content::Text(t)) => push_text(&mut blocks, t),
            Some(Content::Parts(parts)) => {
                for p in parts {
                    match p {
                        ContentPart::Text { text } => push_text(&mut blocks, text),
                        ContentPart::ImageUrl { .. } => {
                            ctx.unsupported("images in system messages")?
                        }
                        ContentPart::File { .. } | ContentPart::FileId { .. } => {
                            ctx.unsupported("files in system messages")?
                        }
                        ContentPart::InputAudio { .. } => ctx.unsupported(AUDIO)?,
                    }
                }
            }
        }
    }
    Ok((!blocks.is_empty()).then_some(SystemPrompt::Blocks(blocks)))
}

/// Text blocks must not be empty (`minLength: 1`).
fn push_text(blocks: &mut Vec<InputBlock>, text: &str) {
    if !text.is_empty() {
        blocks.push(InputBlock::Text {
            text: text.to_string(),
        });
    }
}

struct Turn {
    role: WireRole,
    blocks: Vec<InputBlock>,
    /// One canonical message with plain string content made this turn.
    string_form: bool,
}

/// Whether a `thinking` config turns thinking on.
fn is_on(thinking: Option<&Value>) -> bool {
    matches!(
        thinking.and_then(|t| t.get("type")).and_then(Value::as_str),
        Some("enabled" | "adaptive")
    )
}

/// Index of the first message of the assistant turn in progress: everything after the last
/// user message that starts a turn of its own. A user message right after tool results joins
/// their native turn (they merge), so it is taken to continue the tool loop, which is the
/// reading that can only turn thinking off needlessly, never send a turn Anthropic refuses.
fn turn_in_progress(messages: &[Message]) -> usize {
    let mut start = 0;
    let mut previous = None;
    for (i, m) in messages.iter().enumerate() {
        match m.role {
            Role::System | Role::Developer => continue,
            Role::User if previous != Some(Role::Tool) => start = i + 1,
            _ => {}
        }
        previous = Some(m.role);
    }
    start
}

/// A reasoning block Anthropic can take back: its own, signed (or redacted).
fn sendable(block: &ReasoningBlock) -> Option<InputBlock> {
    if block.format().is_some_and(|f| f != REASONING_FORMAT) {
        return None;
    }
    match block {
        ReasoningBlock::Text {
            text,
            signature: Some(signature),
            ..
        } if !signature.is_empty() => Some(InputBlock::Thinking {
            thinking: text.clone(),
            signature: signature.clone(),
        }),
        ReasoningBlock::Text { .. } => None,
        ReasoningBlock::Encrypted { data, .. } => {
            Some(InputBlock::RedactedThinking { data: data.clone() })
        }
    }
}

/// The assistant message that opens the turn in progress, when it has no signed thinking to
/// start with (Anthropic's 400 "Expected `thinking` or `redacted_thinking`" with thinking on).
fn unsigned_turn(messages: &[Message]) -> Option<usize> {
    let start = turn_in_progress(messages);
    let (i, first) = messages
        .iter()
        .enumerate()
        .skip(start)
        .find(|(_, m)| m.role == Role::Assistant)?;
    (!first.reasoning_blocks.iter().any(|b| sendable(b).is_some())).then_some(i)
}

fn build_turns(
    messages: &[Message],
    thinking_on: bool,
    ctx: &mut Ctx,
) -> Result<Vec<InputMessage>, TranslateError> {
    let mut turns: Vec<Turn> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let (role, blocks, string_form) = match m.role {
            Role::System | Role::Developer => continue,
            Role::User => (WireRole::User, user_blocks(m, ctx)?, is_plain_text(m)),
            Role::Assistant => {
                let mut blocks = Vec::new();
                if thinking_on {
                    blocks.extend(m.reasoning_blocks.iter().filter_map(sendable));
                }
                let plain = blocks.is_empty() && is_plain_text(m) && m.tool_calls.is_empty();
                blocks.extend(assistant_blocks(i, m, ctx)?);
                (WireRole::Assistant, blocks, plain)
            }
            Role::Tool => (WireRole::User, vec![tool_result_block(i, m, ctx)?], false),
        };
        if blocks.is_empty() {
            return Err(TranslateError::Invalid(format!(
                "messages[{i}] has no content (Anthropic rejects empty turns)"
            )));
        }
        match turns.last_mut() {
            Some(last) if last.role == role => {
                last.blocks.extend(blocks);
                last.string_form = false;
            }
            _ => turns.push(Turn {
                role,
                blocks,
                string_form,
            }),
        }
    }
    match turns.first() {
        None => {
            return Err(TranslateError::Invalid(
                "no user or assistant messages".into(),
            ))
        }
        Some(t) if t.role == WireRole::Assistant => {
            return Err(TranslateError::Invalid(
                "the first turn must be a user message for Anthropic".into(),
            ))
        }
        Some(_) => {}
    }
    trim_prefill(&mut turns, ctx);
    Ok(turns
        .into_iter()
        .filter(|t| !t.blocks.is_empty())
        .map(|t| {
            let content = match t.blocks.as_slice() {
                [InputBlock::Text { text }] if t.string_form => MessageContent::Text(text.clone()),
                _ => MessageContent::Blocks(t.blocks),
            };
            InputMessage {
                role: t.role,
                content,
            }
        })
        .collect())
}

/// Anthropic rejects a final assistant turn that ends in whitespace; the continuation then
/// starts with that whitespace instead.
fn trim_prefill(turns: &mut [Turn], ctx: &mut Ctx) {
    let Some(last) = turns.last_mut().filter(|t| t.role == WireRole::Assistant) else {
        return;
    };
    if let Some(InputBlock::Text { text }) = last.blocks.last_mut() {
        let trimmed_len = text.trim_end().len();
        if trimmed_len < text.len() {
            text.truncate(trimmed_len);
            ctx.warnings.push(format!(
                "{PROVIDER}: removed trailing whitespace from the final assistant message (prefill)"
            ));
            if text.is_empty() {
                last.blocks.pop();
            }
        }
    }
}

fn is_plain_text(m: &Message) -> bool {
    matches!(&m.content, Some(Content::Text(t)) if !t.is_empty())
}

fn user_blocks(m: &Message, ctx: &mut Ctx) -> Result<Vec<InputBlock>, TranslateError> {
    content_blocks(m.content.as_ref(), true, ctx)
}

fn content_blocks(
    content: Option<&Content>,
    images_allowed: bool,
    ctx: &mut Ctx,
) -> Result<Vec<InputBlock>, TranslateError> {
    let mut blocks = Vec::new();
    match content {
        None => {}
        Some(Content::Text(t)) => push_text(&mut blocks, t),
        Some(Content::Parts(parts)) => {
            for p in parts {
                match p {
                    ContentPart::Text { text } => push_text(&mut blocks, text),
                    ContentPart::ImageUrl { url, detail } => {
                        if !images_allowed {
                            ctx.unsupported("images in assistant messages")?;
                            continue;
                        }
                        if matches!(detail, Some(ImageDetail::Low | ImageDetail::High)) {
                            ctx.warnings.push(format!(
                                "{PROVIDER}: image detail is ignored (no such setting)"
                            ));
                        }
                        if let Some(source) = image_source(url, ctx)? {
                            blocks.push(InputBlock::Image { source });
                        }
                    }
                    ContentPart::File {
                        data,
                        media_type,
                        filename,
                    } => {
                        if !images_allowed {
                            ctx.unsupported("files in assistant messages")?;
                            continue;
                        }
                        if let Some(block) =
                            document(data, media_type.as_deref(), filename.as_deref(), ctx)?
                        {
                            blocks.push(block);
                        }
                    }
                    ContentPart::FileId { .. } => ctx.unsupported(
                        "OpenAI file ids (`file_id`; send the file inline as `file_data`)",
                    )?,
                    ContentPart::InputAudio { .. } => ctx.unsupported(AUDIO)?,
                }
            }
        }
    }
    Ok(blocks)
}

/// A file as a `document` block: PDFs as base64, plain text as its text (Anthropic's
/// `PlainTextSource` takes the text itself). Other types have no document source.
fn document(
    data: &str,
    media_type: Option<&str>,
    filename: Option<&str>,
    ctx: &mut Ctx,
) -> Result<Option<InputBlock>, TranslateError> {
    let source = match ContentPart::file_media_type(media_type, filename) {
        Some(PDF) => DocumentSource::Base64 {
            media_type: PDF.into(),
            data: data.to_string(),
        },
        Some(TEXT) => {
            let Some(text) = base64_decode(data).and_then(|b| String::from_utf8(b).ok()) else {
                return Err(TranslateError::Invalid(
                    "a text/plain file must be base64-encoded UTF-8".into(),
                ));
            };
            DocumentSource::Text {
                media_type: TEXT.into(),
                data: text,
            }
        }
        Some(other) => {
            ctx.unsupported(format!(
                "files of type {other} (documents must be application/pdf or text/plain)"
            ))?;
            return Ok(None);
        }
        None => {
            ctx.unsupported(
                "files of unknown type (no MIME type in `file_data`, no known extension)",
            )?;
            return Ok(None);
        }
    };
    let title = match filename {
        Some(name) if (1..=MAX_TITLE_CHARS).contains(&name.chars().count()) => {
            Some(name.to_string())
        }
        Some(_) => {
            ctx.bookkeeping("a filename (document titles are 1 to 500 characters)");
            None
        }
        None => None,
    };
    Ok(Some(InputBlock::Document { source, title }))
}

fn image_source(url: &str, ctx: &mut Ctx) -> Result<Option<ImageSource>, TranslateError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let Some((media_type, data)) = rest.split_once(";base64,") else {
            ctx.unsupported("data: image URLs that are not base64")?;
            return Ok(None);
        };
        if !IMAGE_MEDIA_TYPES.contains(&media_type) {
            ctx.unsupported(format!("image type {media_type}"))?;
            return Ok(None);
        }
        return Ok(Some(ImageSource::Base64 {
            media_type: media_type.to_string(),
            data: data.to_string(),
        }));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(Some(ImageSource::Url {
            url: url.to_string(),
        }));
    }
    Err(TranslateError::Invalid(
        "image URL must be a data: URL or an http(s) URL".into(),
    ))
}

fn assistant_blocks(
    i: usize,
    m: &Message,
    ctx: &mut Ctx,
) -> Result<Vec<InputBlock>, TranslateError> {
    // Plain `reasoning` is not sent back: only a signed block can be (see `build_turns`).
    let mut blocks = content_blocks(m.content.as_ref(), false, ctx)?;
    if let Some(refusal) = &m.refusal {
        push_text(&mut blocks, refusal);
    }
    for (j, call) in m.tool_calls.iter().enumerate() {
        let input = if call.arguments.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_str::<Value>(&call.arguments).map_err(|e| {
                TranslateError::Invalid(format!(
                    "messages[{i}].tool_calls[{j}].arguments is not valid JSON: {e}"
                ))
            })?
        };
        if !input.is_object() {
            return Err(TranslateError::Invalid(format!(
                "messages[{i}].tool_calls[{j}].arguments must be a JSON object"
            )));
        }
        blocks.push(InputBlock::ToolUse {
            id: call.id.clone(),
            name: call.name.clone(),
            input,
        });
    }
    Ok(blocks)
}

fn tool_result_block(i: usize, m: &Message, ctx: &mut Ctx) -> Result<InputBlock, TranslateError> {
    let tool_use_id = m.tool_call_id.clone().ok_or_else(|| {
        TranslateError::Invalid(format!(
            "messages[{i}] is a tool result without tool_call_id"
        ))
    })?;
    let content = match &m.content {
        None => None,
        Some(Content::Text(t)) => Some(ToolResultContent::Text(t.clone())),
        Some(c @ Content::Parts(_)) => Some(ToolResultContent::Blocks(content_blocks(
            Some(c),
            true,
            ctx,
        )?)),
    };
    Ok(InputBlock::ToolResult {
        tool_use_id,
        content,
        is_error: None,
    })
}

fn build_tool_choice(req: &ChatRequest) -> Option<WireToolChoice> {
    let disable = (req.parallel_tool_calls == Some(false)).then_some(true);
    match &req.tool_choice {
        None if disable.is_some() && !req.tools.is_empty() => Some(WireToolChoice::Auto {
            disable_parallel_tool_use: disable,
        }),
        None => None,
        Some(ToolChoice::None) => Some(WireToolChoice::None),
        Some(ToolChoice::Auto) => Some(WireToolChoice::Auto {
            disable_parallel_tool_use: disable,
        }),
        Some(ToolChoice::Required) => Some(WireToolChoice::Any {
            disable_parallel_tool_use: disable,
        }),
        Some(ToolChoice::Function { name }) => Some(WireToolChoice::Tool {
            name: name.clone(),
            disable_parallel_tool_use: disable,
        }),
    }
}

/// Returns `thinking` and `max_tokens`. With thinking on, a client-less limit grows by the
/// budget so visible output keeps [`DEFAULT_MAX_TOKENS`]; a client limit is kept and the budget
/// shrinks to fit below it.
fn thinking_and_max_tokens(
    req: &ChatRequest,
    ctx: &mut Ctx,
) -> Result<(Option<Value>, u32), TranslateError> {
    let budget = match req.reasoning_effort {
        None => None,
        Some(ReasoningEffort::None) => {
            return Ok((
                Some(serde_json::json!({"type": "disabled"})),
                req.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            ))
        }
        Some(effort) => thinking_budget(effort),
    };
    let Some(budget) = budget else {
        return Ok((None, req.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS)));
    };
    match req.max_output_tokens {
        None => Ok((
            Some(enabled(budget)),
            DEFAULT_MAX_TOKENS.saturating_add(budget),
        )),
        Some(max) if max > budget => Ok((Some(enabled(budget)), max)),
        Some(max) if max > MIN_THINKING_BUDGET => {
            Ok((Some(enabled((max / 2).max(MIN_THINKING_BUDGET))), max))
        }
        Some(max) => {
            ctx.unsupported(format!(
                "reasoning_effort with max_output_tokens {max} (thinking needs more than {MIN_THINKING_BUDGET})"
            ))?;
            Ok((None, max))
        }
    }
}

fn enabled(budget: u32) -> Value {
    serde_json::json!({"type": "enabled", "budget_tokens": budget})
}

fn build_output_config(req: &ChatRequest, ctx: &mut Ctx) -> Result<Option<Value>, TranslateError> {
    match &req.response_format {
        None | Some(ResponseFormat::Text) => Ok(None),
        Some(ResponseFormat::JsonObject) => {
            ctx.unsupported("response_format json_object (use json_schema)")?;
            Ok(None)
        }
        // Anthropic structured outputs have no name or strict flag: the schema is enforced.
        Some(ResponseFormat::JsonSchema { schema, .. }) => Ok(Some(serde_json::json!({
            "format": {"type": "json_schema", "schema": schema}
        }))),
    }
}
