//! Anthropic's named SSE events ↔ canonical stream events.
//!
//! Upstream order: `message_start` (id, model, input usage), then per content block
//! `content_block_start` / `content_block_delta`* / `content_block_stop`, then `message_delta`
//! (stop reason, cumulative usage), then `message_stop`. `ping` may come anywhere; `error` ends
//! the stream. Only `message_stop` makes a stream complete.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;

use serde_json::{json, Map, Value};
use switchyard_core::{
    ChatRequest, ErrorClass, FinishReason, ReasoningBlock, SseFrame, StreamEncoder, StreamEvent,
    StreamMeta, StreamParser, UpstreamError, Usage,
};
use switchyard_sse::encode_frame;

use crate::errors::{classify_body, error_body};
use crate::response::{
    finish_reason, redacted_block, stop_reason, thinking_block, usage_from_native, usage_to_native,
};
use crate::wire::{BlockDelta, ContentBlock, WireStreamEvent};

#[derive(Debug, Clone, Copy)]
enum BlockKind {
    Text,
    Thinking,
    /// A `tool_use` block and its call index within this message.
    Tool(u32),
    /// Redacted thinking, server tools, ...: their deltas carry nothing canonical.
    Ignored,
}

/// Parser for one Anthropic stream.
#[derive(Debug, Default)]
pub struct AnthropicStreamParser {
    started: bool,
    done: bool,
    /// A `message_delta` carried the stop reason: the answer itself is whole.
    stopped: bool,
    blocks: HashMap<u32, BlockKind>,
    /// Thinking and redacted blocks being read, by block index: each goes out whole as a
    /// `ReasoningBlock` at its `content_block_stop`, when its signature is known.
    reasoning: HashMap<u32, ReasoningBlock>,
    next_tool: u32,
    /// `message_start` usage, overlaid with every non-null field of later `message_delta`s.
    usage: Map<String, Value>,
}

impl AnthropicStreamParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// The common case, a text / thinking / tool-argument delta for a known block, read
    /// into a borrowed struct. Returns false, having appended nothing, for anything else
    /// (other events, unknown blocks, odd shapes, malformed JSON); [`WireStreamEvent`] then
    /// handles the frame, and reports errors exactly as it always did. Whenever this returns
    /// true, the general path would have accepted the frame with the same result.
    fn feed_block_delta(&mut self, data: &str, out: &mut Vec<StreamEvent>) -> bool {
        // The general path rejects an unpaired `\uD800`-`\uDFFF` escape anywhere; this one
        // skips unknown fields unchecked, so such frames go the general way.
        if switchyard_core::may_hold_surrogate_escape(data.as_bytes()) {
            return false;
        }
        let Ok(event) = serde_json::from_str::<FastBlockDelta<'_>>(data) else {
            return false;
        };
        if event.kind != "content_block_delta" {
            return false;
        }
        let Some(&kind) = self.blocks.get(&event.index) else {
            return false;
        };
        let d = event.delta;
        match (kind, d.kind.as_ref(), d.text, d.thinking, d.partial_json) {
            (BlockKind::Text, "text_delta", Some(text), _, _) => out.push(StreamEvent::TextDelta {
                choice: 0,
                text: text.into_owned(),
            }),
            (BlockKind::Thinking, "thinking_delta", _, Some(text), _) => {
                self.keep_thinking(event.index, &text);
                out.push(StreamEvent::ReasoningDelta {
                    choice: 0,
                    text: text.into_owned(),
                })
            }
            (BlockKind::Tool(tool), "input_json_delta", _, _, Some(args)) => {
                if !args.is_empty() {
                    out.push(StreamEvent::ToolCallArguments {
                        choice: 0,
                        index: tool,
                        arguments: args.into_owned(),
                    })
                }
            }
            _ => return false,
        }
        true
    }

    fn keep_thinking(&mut self, index: u32, delta: &str) {
        if let Some(ReasoningBlock::Text { text, .. }) = self.reasoning.get_mut(&index) {
            text.push_str(delta);
        }
    }

    fn merge_usage(&mut self, usage: &Value) {
        if let Value::Object(u) = usage {
            for (k, v) in u {
                if !v.is_null() {
                    self.usage.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

impl StreamParser for AnthropicStreamParser {
    fn feed(&mut self, frame: &SseFrame, out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        if self.done {
            return Ok(());
        }
        if self.feed_block_delta(&frame.data, out) {
            return Ok(());
        }
        let event: WireStreamEvent = serde_json::from_str(&frame.data).map_err(|e| {
            UpstreamError::malformed(format!("{} event: {e}", frame.event_type()))
                .with_raw_body(frame.data.as_bytes())
        })?;
        match event {
            WireStreamEvent::MessageStart { message } => {
                self.started = true;
                self.merge_usage(&message.usage);
                out.push(StreamEvent::Start {
                    id: message.id,
                    model: message.model,
                    created: 0,
                });
            }
            WireStreamEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                let kind = match content_block {
                    ContentBlock::Text { text, .. } => {
                        if !text.is_empty() {
                            out.push(StreamEvent::TextDelta { choice: 0, text });
                        }
                        BlockKind::Text
                    }
                    ContentBlock::Thinking {
                        thinking,
                        signature,
                    } => {
                        self.reasoning
                            .insert(index, thinking_block(thinking.clone(), signature));
                        if !thinking.is_empty() {
                            out.push(StreamEvent::ReasoningDelta {
                                choice: 0,
                                text: thinking,
                            });
                        }
                        BlockKind::Thinking
                    }
                    ContentBlock::ToolUse {
                        id, name, input, ..
                    } => {
                        let tool = self.next_tool;
                        self.next_tool += 1;
                        out.push(StreamEvent::ToolCallStart {
                            choice: 0,
                            index: tool,
                            id,
                            name,
                        });
                        // Arguments normally follow as `input_json_delta`s from `{}`.
                        if input.as_object().is_some_and(|o| !o.is_empty()) {
                            out.push(StreamEvent::ToolCallArguments {
                                choice: 0,
                                index: tool,
                                arguments: input.to_string(),
                            });
                        }
                        BlockKind::Tool(tool)
                    }
                    ContentBlock::RedactedThinking { data } => {
                        self.reasoning.insert(index, redacted_block(data));
                        BlockKind::Ignored
                    }
                    ContentBlock::Unknown => BlockKind::Ignored,
                };
                self.blocks.insert(index, kind);
            }
            WireStreamEvent::ContentBlockDelta { index, delta } => {
                let kind = self.blocks.get(&index).copied().ok_or_else(|| {
                    UpstreamError::malformed(format!("delta for unknown content block {index}"))
                })?;
                match (kind, delta) {
                    (BlockKind::Text, BlockDelta::TextDelta { text }) => {
                        out.push(StreamEvent::TextDelta { choice: 0, text })
                    }
                    (BlockKind::Thinking, BlockDelta::ThinkingDelta { thinking }) => {
                        self.keep_thinking(index, &thinking);
                        out.push(StreamEvent::ReasoningDelta {
                            choice: 0,
                            text: thinking,
                        })
                    }
                    // One delta in practice; appended all the same, so none is ever lost.
                    (BlockKind::Thinking, BlockDelta::SignatureDelta { signature })
                        if !signature.is_empty() =>
                    {
                        if let Some(ReasoningBlock::Text { signature: s, .. }) =
                            self.reasoning.get_mut(&index)
                        {
                            s.get_or_insert_with(String::new).push_str(&signature);
                        }
                    }
                    (BlockKind::Tool(tool), BlockDelta::InputJsonDelta { partial_json })
                        if !partial_json.is_empty() =>
                    {
                        out.push(StreamEvent::ToolCallArguments {
                            choice: 0,
                            index: tool,
                            arguments: partial_json,
                        })
                    }
                    _ => {}
                }
            }
            WireStreamEvent::ContentBlockStop { index } => {
                if let Some(block) = self.reasoning.remove(&index) {
                    out.push(StreamEvent::ReasoningBlock { choice: 0, block });
                }
            }
            WireStreamEvent::MessageDelta { delta, usage } => {
                self.merge_usage(&usage);
                if let Some(reason) = delta.stop_reason {
                    self.stopped = true;
                    out.push(StreamEvent::Finish {
                        choice: 0,
                        reason: finish_reason(&reason),
                        native_reason: Some(reason),
                    });
                }
            }
            WireStreamEvent::MessageStop {} => {
                self.done = true;
                out.push(StreamEvent::Usage(usage_from_native(&Value::Object(
                    self.usage.clone(),
                ))));
            }
            WireStreamEvent::Ping {} | WireStreamEvent::Unknown => {}
            WireStreamEvent::Error { .. } => {
                let body: Value = serde_json::from_str(&frame.data).unwrap_or(Value::Null);
                return Err(classify_body(&body, None, None).with_raw_body(frame.data.as_bytes()));
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        if self.done {
            return Ok(());
        }
        if self.stopped {
            // Stop reason seen, only `message_stop` missing: hand over the usage we have so a
            // caller that accepts the finished answer can still report it.
            out.push(StreamEvent::Usage(usage_from_native(&Value::Object(
                self.usage.clone(),
            ))));
        }
        let what = if self.started {
            "stream ended before message_stop"
        } else {
            "stream ended before message_start"
        };
        Err(UpstreamError::new(ErrorClass::StreamInterrupted, what))
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

/// `content_block_delta`, borrowed from the frame. Each field has the type the general
/// path's [`WireStreamEvent`] / [`BlockDelta`] gives it, or a stricter one, so a frame this
/// accepts is one the general path accepts too.
#[derive(Deserialize)]
struct FastBlockDelta<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    index: u32,
    #[serde(borrow)]
    delta: FastDelta<'a>,
}

#[derive(Deserialize)]
struct FastDelta<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    partial_json: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Text,
    Thinking,
    Redacted,
    Tool(u32),
}

/// Encodes canonical events as Anthropic's SSE sequence for one response.
#[derive(Debug)]
pub struct AnthropicStreamEncoder {
    meta: StreamMeta,
    started: bool,
    /// The open content block and its index.
    open: Option<(u32, OpenBlock)>,
    next_block: u32,
    /// Canonical tool index → content block index.
    tool_blocks: HashMap<u32, u32>,
    finish: Option<(FinishReason, Option<String>)>,
    usage: Option<Usage>,
}

impl AnthropicStreamEncoder {
    pub fn new(_request: &ChatRequest, meta: StreamMeta) -> Self {
        AnthropicStreamEncoder {
            meta,
            started: false,
            open: None,
            next_block: 0,
            tool_blocks: HashMap::new(),
            finish: None,
            usage: None,
        }
    }

    fn frame(name: &str, data: &Value, out: &mut Vec<u8>) {
        encode_frame(Some(name), &data.to_string(), out);
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let message = json!({
            "id": self.meta.id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self.meta.model,
            "stop_reason": null,
            "stop_sequence": null,
            "stop_details": null,
            "container": null,
            // Canonical streams report usage only at the end; the final message_delta has it.
            "usage": usage_to_native(&Usage::default()),
        });
        Self::frame(
            "message_start",
            &json!({"type": "message_start", "message": message}),
            out,
        );
        Self::frame("ping", &json!({"type": "ping"}), out);
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if let Some((index, _)) = self.open.take() {
            Self::frame(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
                out,
            );
        }
    }

    /// Makes `kind` the open block, closing another one first (blocks never interleave).
    fn open_block(&mut self, kind: OpenBlock, block: Value, out: &mut Vec<u8>) -> u32 {
        if let Some((index, open)) = self.open {
            if open == kind {
                return index;
            }
        }
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((index, kind));
        Self::frame(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
            out,
        );
        index
    }

    fn delta(index: u32, delta: Value, out: &mut Vec<u8>) {
        Self::frame(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            out,
        );
    }
}

impl StreamEncoder for AnthropicStreamEncoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match event {
            StreamEvent::Start { .. } => self.ensure_started(out),
            StreamEvent::TextDelta { choice: 0, text }
            | StreamEvent::RefusalDelta { choice: 0, text } => {
                self.ensure_started(out);
                let block = json!({"type": "text", "text": "", "citations": null});
                let index = self.open_block(OpenBlock::Text, block, out);
                Self::delta(index, json!({"type": "text_delta", "text": text}), out);
            }
            StreamEvent::ReasoningDelta { choice: 0, text } => {
                self.ensure_started(out);
                let block = json!({"type": "thinking", "thinking": "", "signature": ""});
                let index = self.open_block(OpenBlock::Thinking, block, out);
                Self::delta(
                    index,
                    json!({"type": "thinking_delta", "thinking": text}),
                    out,
                );
            }
            StreamEvent::ReasoningBlock { choice: 0, block } => {
                self.ensure_started(out);
                match block {
                    ReasoningBlock::Text {
                        text, signature, ..
                    } => {
                        // Its text normally went out as deltas of the open thinking block.
                        let index = match self.open {
                            Some((index, OpenBlock::Thinking)) => index,
                            _ => {
                                let block =
                                    json!({"type": "thinking", "thinking": "", "signature": ""});
                                let index = self.open_block(OpenBlock::Thinking, block, out);
                                if !text.is_empty() {
                                    Self::delta(
                                        index,
                                        json!({"type": "thinking_delta", "thinking": text}),
                                        out,
                                    );
                                }
                                index
                            }
                        };
                        if let Some(signature) = signature.as_deref().filter(|s| !s.is_empty()) {
                            Self::delta(
                                index,
                                json!({"type": "signature_delta", "signature": signature}),
                                out,
                            );
                        }
                    }
                    ReasoningBlock::Encrypted { data, .. } => {
                        self.close_block(out);
                        let block = json!({"type": "redacted_thinking", "data": data});
                        self.open_block(OpenBlock::Redacted, block, out);
                    }
                }
                // The block is whole: the next reasoning opens a block of its own.
                self.close_block(out);
            }
            StreamEvent::ToolCallStart {
                choice: 0,
                index,
                id,
                name,
            } => {
                self.ensure_started(out);
                self.close_block(out);
                let block = json!({
                    "type": "tool_use", "id": id, "name": name, "input": {},
                    "caller": {"type": "direct"},
                });
                let block_index = self.open_block(OpenBlock::Tool(*index), block, out);
                self.tool_blocks.insert(*index, block_index);
            }
            StreamEvent::ToolCallArguments {
                choice: 0,
                index,
                arguments,
            } => {
                // Sent to the call's own block even if another block opened since: Anthropic
                // never interleaves, but SDKs accumulate by index, so no argument is lost.
                if let Some(&block_index) = self.tool_blocks.get(index) {
                    Self::delta(
                        block_index,
                        json!({"type": "input_json_delta", "partial_json": arguments}),
                        out,
                    );
                }
            }
            StreamEvent::Finish {
                choice: 0,
                reason,
                native_reason,
            } => self.finish = Some((*reason, native_reason.clone())),
            StreamEvent::Usage(usage) => self.usage = Some(usage.clone()),
            // An Anthropic message has one choice; others have no place in this stream.
            _ => {}
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.ensure_started(out);
        self.close_block(out);
        let stop = match &self.finish {
            Some((reason, native)) => stop_reason(Some(*reason), native.as_deref()),
            None if !self.tool_blocks.is_empty() => "tool_use",
            None => "end_turn",
        };
        let usage = usage_to_native(&self.usage.clone().unwrap_or_default());
        let delta_usage = json!({
            "input_tokens": usage["input_tokens"],
            "output_tokens": usage["output_tokens"],
            "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
            "cache_read_input_tokens": usage["cache_read_input_tokens"],
            "server_tool_use": usage["server_tool_use"],
        });
        Self::frame(
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": null, "stop_details": null, "container": null},
                "usage": delta_usage,
            }),
            out,
        );
        Self::frame("message_stop", &json!({"type": "message_stop"}), out);
    }

    fn error(&mut self, error: &UpstreamError, out: &mut Vec<u8>) {
        Self::frame("error", &error_body(error), out);
    }
}
