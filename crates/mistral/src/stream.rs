//! Mistral streams: `data: CompletionChunk` … `data: [DONE]`, read by the OpenAI parser after
//! chunk content arrays and object arguments are normalised; and the encoder for the mock.

use std::borrow::Cow;

use serde_json::{json, Map, Value};
use switchyard_core::{
    ErrorClass, FinishReason, SseFrame, StreamEncoder, StreamEvent, StreamMeta, StreamParser,
    UpstreamError, Usage,
};
use switchyard_openai::wire::{
    ChatCompletionChunk, ChunkChoice, ChunkDelta, FunctionChunk, ToolCallChunk,
};
use switchyard_openai::OpenAiStreamParser;

use crate::errors::{classify_stream_error, error_object};
use crate::response::{content_value, finish_reason_str, usage_info};
use crate::wire::{self, Content, StreamChunk};

/// Parser for one Mistral stream. Wraps [`OpenAiStreamParser`]; what it adds is reading
/// Mistral's chunk shapes, `model_length` as `Length`, and `finish_reason: "error"` as a failed
/// stream (class `StreamInterrupted`), so a broken generation never looks complete.
#[derive(Debug, Default)]
pub struct MistralStreamParser {
    inner: OpenAiStreamParser,
    scratch: Vec<StreamEvent>,
}

impl MistralStreamParser {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed_data(
        &mut self,
        data: &str,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), UpstreamError> {
        let trimmed = data.trim_ascii();
        if self.inner.is_done() || trimmed.is_empty() || trimmed == "[DONE]" {
            return self.inner.feed_data(trimmed, out);
        }
        let chunk: StreamChunk<'_> = serde_json::from_str(trimmed).map_err(|e| {
            UpstreamError::malformed(format!("stream chunk: {e}")).with_raw_body(trimmed.as_bytes())
        })?;
        if chunk.object.as_deref() == Some("error") {
            return Err(classify_stream_error(trimmed));
        }
        let chunk = to_openai(chunk)?;
        self.scratch.clear();
        self.inner.feed_chunk(chunk, &mut self.scratch)?;
        for e in &mut self.scratch {
            if let StreamEvent::Finish {
                reason,
                native_reason,
                ..
            } = e
            {
                match native_reason.as_deref() {
                    Some("model_length") => *reason = FinishReason::Length,
                    Some("error") => {
                        return Err(UpstreamError::new(
                            ErrorClass::StreamInterrupted,
                            "mistral ended the stream with finish_reason `error`",
                        )
                        .with_code("error"))
                    }
                    _ => {}
                }
            }
        }
        out.append(&mut self.scratch);
        Ok(())
    }
}

fn to_openai(chunk: StreamChunk<'_>) -> Result<ChatCompletionChunk<'_>, UpstreamError> {
    let mut choices = Vec::with_capacity(chunk.choices.len());
    for c in chunk.choices {
        let delta = match c.delta {
            None => None,
            Some(d) => {
                let (content, reasoning) = match d.content {
                    None => (None, None),
                    Some(raw) => {
                        let content: Option<Content> = serde_json::from_str(raw.get())
                            .map_err(|e| UpstreamError::malformed(format!("delta content: {e}")))?;
                        content.map_or((None, None), Content::split)
                    }
                };
                let mut tool_calls = Vec::new();
                for t in d.tool_calls.unwrap_or_default() {
                    let function = match t.function {
                        None => None,
                        Some(f) => Some(FunctionChunk {
                            name: f.name,
                            arguments: match f.arguments {
                                None => None,
                                Some(raw) => {
                                    let v: Value =
                                        serde_json::from_str(raw.get()).map_err(|e| {
                                            UpstreamError::malformed(format!("tool arguments: {e}"))
                                        })?;
                                    Some(Cow::Owned(wire::arguments_text(v)))
                                }
                            },
                        }),
                    };
                    tool_calls.push(ToolCallChunk {
                        index: t.index,
                        id: t.id,
                        function,
                    });
                }
                Some(ChunkDelta {
                    content: content.map(Cow::Owned),
                    reasoning_content: reasoning.map(Cow::Owned),
                    refusal: None,
                    tool_calls,
                })
            }
        };
        choices.push(ChunkChoice {
            index: c.index,
            delta,
            finish_reason: c.finish_reason,
        });
    }
    Ok(ChatCompletionChunk {
        id: chunk.id,
        model: chunk.model,
        created: chunk.created,
        choices,
        usage: chunk.usage,
        error: chunk.error,
    })
}

impl StreamParser for MistralStreamParser {
    fn feed(&mut self, frame: &SseFrame, out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        self.feed_data(&frame.data, out)
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        self.inner.finish(out)
    }

    fn is_done(&self) -> bool {
        self.inner.is_done()
    }
}

/// Canonical events → Mistral chunks, as Mistral sends them: a tool call arrives whole in one
/// delta (its `function` needs both `name` and `arguments`), and usage rides on the last chunk,
/// the one with the finish reason. So tool calls are held until their choice finishes and
/// finish chunks until the stream ends.
pub struct MistralStreamEncoder {
    meta: StreamMeta,
    role_sent: Vec<u32>,
    /// (choice, index, id, name, arguments)
    tools: Vec<(u32, u32, String, String, String)>,
    finishes: Vec<Value>,
    usage: Option<Usage>,
    done: bool,
}

impl MistralStreamEncoder {
    pub fn new(meta: StreamMeta) -> Self {
        MistralStreamEncoder {
            meta,
            role_sent: Vec::new(),
            tools: Vec::new(),
            finishes: Vec::new(),
            usage: None,
            done: false,
        }
    }

    fn chunk(&self, choice: Value, usage: Option<Value>, out: &mut Vec<u8>) {
        let mut c = Map::new();
        c.insert("id".into(), json!(self.meta.id));
        c.insert("object".into(), json!("chat.completion.chunk"));
        c.insert("created".into(), json!(self.meta.created));
        c.insert("model".into(), json!(self.meta.model));
        c.insert("choices".into(), json!([choice]));
        if let Some(u) = usage {
            c.insert("usage".into(), u);
        }
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(Value::Object(c).to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
    }

    fn delta(&mut self, choice: u32, mut delta: Map<String, Value>, out: &mut Vec<u8>) {
        if !self.role_sent.contains(&choice) {
            self.role_sent.push(choice);
            delta.insert("role".into(), json!("assistant"));
        }
        let c = json!({"index": choice, "delta": delta, "finish_reason": null});
        self.chunk(c, None, out);
    }

    fn flush_tools(&mut self, choice: u32, out: &mut Vec<u8>) {
        let calls: Vec<Value> = self
            .tools
            .iter()
            .filter(|t| t.0 == choice)
            .map(|(_, index, id, name, args)| {
                json!({"id": id, "type": "function", "index": index,
                       "function": {"name": name, "arguments": args}})
            })
            .collect();
        self.tools.retain(|t| t.0 != choice);
        if !calls.is_empty() {
            let mut d = Map::new();
            d.insert("content".into(), json!(""));
            d.insert("tool_calls".into(), Value::Array(calls));
            self.delta(choice, d, out);
        }
    }
}

impl StreamEncoder for MistralStreamEncoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match event {
            StreamEvent::Start { .. } => {}
            StreamEvent::TextDelta { choice, text }
            | StreamEvent::RefusalDelta { choice, text }
                if !text.is_empty() =>
            {
                let mut d = Map::new();
                d.insert("content".into(), json!(text));
                self.delta(*choice, d, out);
            }
            StreamEvent::ReasoningDelta { choice, text } if !text.is_empty() => {
                let mut d = Map::new();
                d.insert("content".into(), content_value(None, Some(text)));
                self.delta(*choice, d, out);
            }
            StreamEvent::TextDelta { .. }
            | StreamEvent::RefusalDelta { .. }
            | StreamEvent::ReasoningDelta { .. } => {}
            // Mistral has no place for another provider's signed reasoning.
            StreamEvent::ReasoningBlock { .. } => {}
            StreamEvent::ToolCallStart {
                choice,
                index,
                id,
                name,
            } => self
                .tools
                .push((*choice, *index, id.clone(), name.clone(), String::new())),
            StreamEvent::ToolCallArguments {
                choice,
                index,
                arguments,
            } => {
                if let Some(t) = self
                    .tools
                    .iter_mut()
                    .find(|t| t.0 == *choice && t.1 == *index)
                {
                    t.4.push_str(arguments);
                }
            }
            StreamEvent::Finish { choice, reason, .. } => {
                self.flush_tools(*choice, out);
                self.finishes.push(json!({
                    "index": choice,
                    "delta": {"content": ""},
                    // The stream's enum has no `model_length`.
                    "finish_reason": finish_reason_str(*reason, None),
                }));
            }
            StreamEvent::Usage(u) => self.usage = Some(u.clone()),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.done = true;
        let choices: Vec<u32> = self.tools.iter().map(|t| t.0).collect();
        for c in choices {
            self.flush_tools(c, out);
        }
        let finishes = std::mem::take(&mut self.finishes);
        let last = finishes.len().saturating_sub(1);
        for (i, f) in finishes.into_iter().enumerate() {
            let usage = (i == last).then(|| usage_info(self.usage.as_ref()));
            self.chunk(f, usage.filter(|_| self.usage.is_some()), out);
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    fn error(&mut self, error: &UpstreamError, out: &mut Vec<u8>) {
        self.done = true;
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(error_object(error).to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
    }
}
