//! `streamGenerateContent?alt=sse` → canonical stream events.
//!
//! Every `data:` is a whole `GenerateContentResponse` carrying only the new parts. There is
//! no `[DONE]`: the stream is complete once every candidate seen has a `finishReason`.
//! `usageMetadata` is cumulative; the last one wins.
//!
//! A chunk is first read into borrowed structs ([`FastChunk`]), the cheap way for the usual
//! text chunk. Whatever that does not take (errors, `promptFeedback`, malformed or odd JSON)
//! goes through [`GenerateContentResponse`] as before, which also words every error.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;
use switchyard_core::{SseFrame, StreamEvent, StreamParser, UpstreamError};

use crate::errors;
use crate::response::{args_text, blocked_prompt, call_id, finish_reason, usage};
use crate::wire::{Blob, FileData, FunctionCall, FunctionResponse, GenerateContentResponse};

#[derive(Debug, Default)]
struct ChoiceState {
    tool_calls: u32,
    finished: bool,
}

/// One per stream.
#[derive(Debug, Default)]
pub struct GeminiStreamParser {
    started: bool,
    done: bool,
    choices: BTreeMap<u32, ChoiceState>,
    /// The last `usageMetadata` (it is cumulative), decoded once the stream is done.
    usage: Option<NativeUsage>,
}

#[derive(Debug)]
enum NativeUsage {
    Raw(Box<RawValue>),
    Parsed(Value),
}

impl GeminiStreamParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Turns one accepted chunk into events; both ways of parsing end here.
    fn emit(
        &mut self,
        chunk: &FastChunk<'_>,
        latest_usage: Option<NativeUsage>,
        data: &str,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), UpstreamError> {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk.response_id.as_deref().unwrap_or_default().to_string(),
                model: chunk
                    .model_version
                    .as_deref()
                    .unwrap_or_default()
                    .to_string(),
                created: 0,
            });
        }
        if latest_usage.is_some() {
            self.usage = latest_usage;
        }
        for (position, cand) in chunk.candidates.iter().enumerate() {
            let choice = cand.index.unwrap_or(position as u32);
            let state = self.choices.entry(choice).or_default();
            for part in cand.content.iter().flat_map(|c| &c.parts) {
                if let Some(text) = part.text.as_deref().filter(|t| !t.is_empty()) {
                    let text = text.to_string();
                    out.push(if part.thought {
                        StreamEvent::ReasoningDelta { choice, text }
                    } else {
                        StreamEvent::TextDelta { choice, text }
                    });
                }
                if let Some(call) = &part.function_call {
                    let index = state.tool_calls;
                    state.tool_calls += 1;
                    out.push(StreamEvent::ToolCallStart {
                        choice,
                        index,
                        id: crate::signature::join(
                            call_id(call.id.as_deref(), index as usize),
                            part.thought_signature.as_deref(),
                        ),
                        name: call.name.clone(),
                    });
                    out.push(StreamEvent::ToolCallArguments {
                        choice,
                        index,
                        arguments: args_text(call.args.as_ref()),
                    });
                }
            }
            if let Some(native) = &cand.finish_reason {
                state.finished = true;
                out.push(StreamEvent::Finish {
                    choice,
                    reason: finish_reason(native, state.tool_calls > 0),
                    native_reason: Some(native.to_string()),
                });
            }
        }
        if !self.choices.is_empty() && self.choices.values().all(|c| c.finished) {
            self.done = true;
            let native = match self.usage.take() {
                None => None,
                Some(NativeUsage::Parsed(v)) => Some(v),
                Some(NativeUsage::Raw(raw)) => Some(
                    serde_json::from_str::<Value>(raw.get())
                        .map_err(|e| UpstreamError::malformed(e).with_raw_body(data.as_bytes()))?,
                ),
            };
            if let Some(u) = &native {
                out.push(StreamEvent::Usage(usage(u)));
            }
        }
        Ok(())
    }
}

impl StreamParser for GeminiStreamParser {
    fn feed(&mut self, frame: &SseFrame, out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        if self.done || frame.data.trim().is_empty() {
            return Ok(());
        }
        if let Some(chunk) = fast_chunk(&frame.data) {
            let usage = chunk
                .usage_metadata
                .map(|raw| NativeUsage::Raw(raw.to_owned()));
            return self.emit(&chunk, usage, &frame.data, out);
        }
        let value: Value = serde_json::from_str(&frame.data)
            .map_err(|e| UpstreamError::malformed(e).with_raw_body(frame.data.as_bytes()))?;
        if value.get("error").is_some() {
            return Err(errors::classify_in_stream(frame.data.as_bytes()));
        }
        let chunk: GenerateContentResponse = serde_json::from_value(value)
            .map_err(|e| UpstreamError::malformed(e).with_raw_body(frame.data.as_bytes()))?;
        blocked_prompt(&chunk).map_err(|e| e.with_raw_body(frame.data.as_bytes()))?;
        let usage = chunk.usage_metadata.clone().map(NativeUsage::Parsed);
        self.emit(&FastChunk::of(&chunk), usage, &frame.data, out)
    }

    fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        if self.done {
            Ok(())
        } else {
            Err(UpstreamError::new(
                switchyard_core::ErrorClass::StreamInterrupted,
                "Gemini stream ended before a finishReason",
            ))
        }
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

/// `data` as a [`FastChunk`], or `None` when the general path must handle it.
///
/// Only an object without `error` or `promptFeedback` is taken (a top-level array would be
/// read by field position), and none with a `\uD800`-`\uDFFF` escape: the general path
/// rejects an unpaired one anywhere, while this one skips unknown fields unchecked.
fn fast_chunk(data: &str) -> Option<FastChunk<'_>> {
    if !data.trim_start().starts_with('{')
        || switchyard_core::may_hold_surrogate_escape(data.as_bytes())
    {
        return None;
    }
    let chunk: FastChunk<'_> = serde_json::from_str(data).ok()?;
    (!chunk.error && !chunk.prompt_feedback).then_some(chunk)
}

/// `GenerateContentResponse` borrowed from the frame. Every field the general path types has
/// the same type here (or a borrowed twin), in the same order, so a chunk accepted here is
/// accepted there with the same content.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FastChunk<'a> {
    #[serde(default, borrow)]
    candidates: Vec<FastCandidate<'a>>,
    #[serde(default, deserialize_with = "present")]
    prompt_feedback: bool,
    #[serde(default, borrow)]
    usage_metadata: Option<&'a RawValue>,
    #[serde(default, borrow)]
    model_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    response_id: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    error: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FastCandidate<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default, borrow)]
    content: Option<FastContent<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "finishMessage")]
    _finish_message: Option<Cow<'a, str>>,
    #[serde(default, rename = "safetyRatings")]
    _safety_ratings: Vec<IgnoredAny>,
    #[serde(default, rename = "logprobsResult")]
    _logprobs_result: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct FastContent<'a> {
    #[serde(default, borrow, rename = "role")]
    _role: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    parts: Vec<FastPart<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FastPart<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, rename = "inlineData")]
    _inline_data: Option<Box<Blob>>,
    #[serde(default, rename = "fileData")]
    _file_data: Option<Box<FileData>>,
    #[serde(default)]
    function_call: Option<Box<FunctionCall>>,
    #[serde(default, rename = "functionResponse")]
    _function_response: Option<Box<FunctionResponse>>,
    #[serde(default)]
    thought: bool,
    #[serde(default, borrow)]
    thought_signature: Option<Cow<'a, str>>,
}

/// The key is there, whatever its value (`null` included).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

impl<'a> FastChunk<'a> {
    /// The general path's parse, seen the way [`GeminiStreamParser::emit`] reads it.
    fn of(chunk: &'a GenerateContentResponse) -> Self {
        let borrow = |s: &'a Option<String>| s.as_deref().map(Cow::Borrowed);
        FastChunk {
            candidates: chunk
                .candidates
                .iter()
                .map(|c| FastCandidate {
                    index: c.index,
                    content: c.content.as_ref().map(|content| FastContent {
                        _role: None,
                        parts: content
                            .parts
                            .iter()
                            .map(|p| FastPart {
                                text: borrow(&p.text),
                                _inline_data: None,
                                _file_data: None,
                                function_call: p.function_call.clone().map(Box::new),
                                _function_response: None,
                                thought: p.thought,
                                thought_signature: borrow(&p.thought_signature),
                            })
                            .collect(),
                    }),
                    finish_reason: borrow(&c.finish_reason),
                    _finish_message: None,
                    _safety_ratings: Vec::new(),
                    _logprobs_result: None,
                })
                .collect(),
            prompt_feedback: false,
            usage_metadata: None,
            model_version: borrow(&chunk.model_version),
            response_id: borrow(&chunk.response_id),
            error: false,
        }
    }
}
