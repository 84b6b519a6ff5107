//! Native `CreateMessageParams` body → canonical request (the server side, used by the mock
//! provider). The inverse of `request.rs`: what the canonical model cannot hold exactly (an
//! unusual thinking budget, `output_config.effort`, `top_k`, ...) stays in `extra`, which the
//! provider side copies back verbatim, so native → canonical → native is lossless for those.

use serde_json::Value;
use switchyard_core::{
    base64_encode, ChatRequest, Content, ContentPart, ErrorClass, Message, ReasoningEffort,
    ResponseFormat, Role, Tool, ToolCall, ToolChoice, UpstreamError,
};

use crate::request::thinking_budget;
use crate::response::{redacted_block, thinking_block};
use crate::wire::{
    DocumentSource, ImageSource, InputBlock, MessageContent, MessagesRequest, SystemPrompt,
    ToolResultContent, WireRole, WireToolChoice,
};

fn invalid(message: impl Into<String>) -> UpstreamError {
    UpstreamError::new(ErrorClass::InvalidRequest, message).with_status(400)
}

pub(crate) fn parse_request(body: &[u8]) -> Result<ChatRequest, UpstreamError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let wire: MessagesRequest = serde_path_to_error::deserialize(de)
        .map_err(|e| invalid(format!("{}: {}", e.path(), e)))?;

    let mut req = ChatRequest {
        model: wire.model,
        max_output_tokens: Some(wire.max_tokens),
        stream: wire.stream.unwrap_or(false),
        // Anthropic streams always carry usage.
        include_usage: wire.stream.unwrap_or(false),
        temperature: wire.temperature,
        top_p: wire.top_p,
        stop: wire.stop_sequences.unwrap_or_default(),
        user: wire.metadata.and_then(|m| m.user_id),
        extra: wire.extra,
        ..ChatRequest::default()
    };

    match wire.system {
        None => {}
        Some(SystemPrompt::Text(t)) => req.messages.push(Message::text(Role::System, t)),
        Some(SystemPrompt::Blocks(blocks)) => {
            let mut parts = Vec::new();
            for (j, b) in blocks.into_iter().enumerate() {
                match b {
                    InputBlock::Text { text } => parts.push(ContentPart::Text { text }),
                    _ => {
                        return Err(invalid(format!(
                            "system[{j}]: only text blocks are allowed"
                        )))
                    }
                }
            }
            let mut m = Message::text(Role::System, "");
            m.content = Some(Content::Parts(parts));
            req.messages.push(m);
        }
    }

    for (i, m) in wire.messages.into_iter().enumerate() {
        match (m.role, m.content) {
            (role, MessageContent::Text(t)) => {
                let role = match role {
                    WireRole::User => Role::User,
                    WireRole::Assistant => Role::Assistant,
                };
                req.messages.push(Message::text(role, t));
            }
            (WireRole::User, MessageContent::Blocks(blocks)) => {
                user_messages(i, blocks, &mut req.messages)?
            }
            (WireRole::Assistant, MessageContent::Blocks(blocks)) => {
                req.messages.push(assistant_message(i, blocks)?)
            }
        }
    }

    if let Some(tools) = wire.tools {
        for (j, t) in tools.into_iter().enumerate() {
            if t.kind.as_deref().is_some_and(|k| k != "custom") {
                return Err(invalid(format!(
                    "tools[{j}]: server tools are not supported by this endpoint"
                )));
            }
            req.tools.push(Tool {
                name: t.name,
                description: t.description,
                parameters: t.input_schema,
                strict: t.strict,
            });
        }
    }

    if let Some(choice) = wire.tool_choice {
        let (choice, disable) = match choice {
            WireToolChoice::Auto {
                disable_parallel_tool_use,
            } => (ToolChoice::Auto, disable_parallel_tool_use),
            WireToolChoice::Any {
                disable_parallel_tool_use,
            } => (ToolChoice::Required, disable_parallel_tool_use),
            WireToolChoice::Tool {
                name,
                disable_parallel_tool_use,
            } => (ToolChoice::Function { name }, disable_parallel_tool_use),
            WireToolChoice::None => (ToolChoice::None, None),
        };
        req.tool_choice = Some(choice);
        req.parallel_tool_calls = disable.map(|d| !d);
    }

    if let Some(thinking) = wire.thinking {
        match reasoning_effort(&thinking, wire.max_tokens) {
            Some(effort) => req.reasoning_effort = Some(effort),
            None => {
                req.extra.insert("thinking".into(), thinking);
            }
        }
    }

    if let Some(config) = wire.output_config {
        match structured_output(&config) {
            Some(format) => req.response_format = Some(format),
            None => {
                req.extra.insert("output_config".into(), config);
            }
        }
    }
    Ok(req)
}

/// Only a thinking config the provider side would rebuild identically becomes an effort.
fn reasoning_effort(thinking: &Value, max_tokens: u32) -> Option<ReasoningEffort> {
    match thinking.get("type")?.as_str()? {
        "disabled" => Some(ReasoningEffort::None),
        "enabled" if thinking.as_object()?.len() == 2 => {
            let budget = u32::try_from(thinking.get("budget_tokens")?.as_u64()?).ok()?;
            [
                ReasoningEffort::Minimal,
                ReasoningEffort::Low,
                ReasoningEffort::Medium,
                ReasoningEffort::High,
            ]
            .into_iter()
            .find(|&e| thinking_budget(e) == Some(budget) && max_tokens > budget)
        }
        _ => None,
    }
}

fn structured_output(config: &Value) -> Option<ResponseFormat> {
    let obj = config.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    let format = obj.get("format")?;
    if format.get("type")?.as_str()? != "json_schema" || format.as_object()?.len() != 2 {
        return None;
    }
    Some(ResponseFormat::JsonSchema {
        name: "response".into(),
        description: None,
        schema: format.get("schema")?.clone(),
        strict: Some(true),
    })
}

/// One native user turn → canonical user and tool messages, in order: each `tool_result` is a
/// tool message, each run of other blocks one user message.
fn user_messages(
    i: usize,
    blocks: Vec<InputBlock>,
    out: &mut Vec<Message>,
) -> Result<(), UpstreamError> {
    let mut parts: Vec<ContentPart> = Vec::new();
    let flush = |parts: &mut Vec<ContentPart>, out: &mut Vec<Message>| {
        if !parts.is_empty() {
            let mut m = Message::text(Role::User, "");
            m.content = Some(Content::Parts(std::mem::take(parts)));
            out.push(m);
        }
    };
    for (j, b) in blocks.into_iter().enumerate() {
        match b {
            InputBlock::ToolResult {
                tool_use_id,
                content,
                ..
            } => {
                flush(&mut parts, out);
                let content = match content {
                    None => None,
                    Some(ToolResultContent::Text(t)) => Some(Content::Text(t)),
                    Some(ToolResultContent::Blocks(bs)) => {
                        let mut ps = Vec::new();
                        for (k, b) in bs.into_iter().enumerate() {
                            ps.push(part(b).ok_or_else(|| {
                                invalid(format!(
                                    "messages[{i}].content[{j}].content[{k}]: unsupported block"
                                ))
                            })?);
                        }
                        Some(Content::Parts(ps))
                    }
                };
                let mut m = Message::text(Role::Tool, "");
                m.content = content;
                m.tool_call_id = Some(tool_use_id);
                out.push(m);
            }
            other => parts.push(part(other).ok_or_else(|| {
                invalid(format!(
                    "messages[{i}].content[{j}]: unsupported block type in a user message"
                ))
            })?),
        }
    }
    flush(&mut parts, out);
    Ok(())
}

fn part(block: InputBlock) -> Option<ContentPart> {
    match block {
        InputBlock::Text { text } => Some(ContentPart::Text { text }),
        InputBlock::Image { source } => match source {
            ImageSource::Base64 { media_type, data } => Some(ContentPart::ImageUrl {
                url: format!("data:{media_type};base64,{data}"),
                detail: None,
            }),
            ImageSource::Url { url } => Some(ContentPart::ImageUrl { url, detail: None }),
            ImageSource::Unknown => None,
        },
        InputBlock::Document { source, title } => match source {
            DocumentSource::Base64 { media_type, data } => Some(ContentPart::File {
                data,
                media_type: Some(media_type),
                filename: title,
            }),
            DocumentSource::Text { media_type, data } => Some(ContentPart::File {
                data: base64_encode(data.as_bytes()),
                media_type: Some(media_type),
                filename: title,
            }),
            DocumentSource::Unknown => None,
        },
        _ => None,
    }
}

fn assistant_message(i: usize, blocks: Vec<InputBlock>) -> Result<Message, UpstreamError> {
    let mut m = Message::text(Role::Assistant, "");
    m.content = None;
    let mut parts = Vec::new();
    let mut reasoning: Option<String> = None;
    for (j, b) in blocks.into_iter().enumerate() {
        match b {
            InputBlock::Text { text } => parts.push(ContentPart::Text { text }),
            InputBlock::ToolUse { id, name, input } => m.tool_calls.push(ToolCall {
                id,
                name,
                arguments: input.to_string(),
            }),
            InputBlock::Thinking {
                thinking,
                signature,
            } => {
                reasoning
                    .get_or_insert_with(String::new)
                    .push_str(&thinking);
                m.reasoning_blocks.push(thinking_block(thinking, signature));
            }
            InputBlock::RedactedThinking { data } => m.reasoning_blocks.push(redacted_block(data)),
            _ => {
                return Err(invalid(format!(
                    "messages[{i}].content[{j}]: unsupported block type in an assistant message"
                )))
            }
        }
    }
    if !parts.is_empty() {
        m.content = Some(Content::Parts(parts));
    }
    m.reasoning = reasoning;
    Ok(m)
}
