//! `streamGenerateContent?alt=sse` → canonical stream events.
//!
//! Every `data:` is a whole `GenerateContentResponse` carrying only the new parts. There is
//! no `[DONE]`: the stream is complete once every candidate seen has a `finishReason`.
//! `usageMetadata` is cumulative; the last one wins.

use std::collections::BTreeMap;

use switchyard_core::{SseFrame, StreamEvent, StreamParser, UpstreamError};

use crate::errors;
use crate::response::{args_text, blocked_prompt, call_id, finish_reason, usage};
use crate::wire::GenerateContentResponse;

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
    usage: Option<serde_json::Value>,
}

impl GeminiStreamParser {
    pub fn new() -> Self {
        Self::default()
    }
}

impl StreamParser for GeminiStreamParser {
    fn feed(&mut self, frame: &SseFrame, out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        if self.done || frame.data.trim().is_empty() {
            return Ok(());
        }
        let value: serde_json::Value = serde_json::from_str(&frame.data)
            .map_err(|e| UpstreamError::malformed(e).with_raw_body(frame.data.as_bytes()))?;
        if value.get("error").is_some() {
            return Err(errors::classify_in_stream(frame.data.as_bytes()));
        }
        let chunk: GenerateContentResponse = serde_json::from_value(value)
            .map_err(|e| UpstreamError::malformed(e).with_raw_body(frame.data.as_bytes()))?;
        blocked_prompt(&chunk).map_err(|e| e.with_raw_body(frame.data.as_bytes()))?;

        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk.response_id.clone().unwrap_or_default(),
                model: chunk.model_version.clone().unwrap_or_default(),
                created: 0,
            });
        }
        if let Some(u) = &chunk.usage_metadata {
            self.usage = Some(u.clone());
        }
        for (position, cand) in chunk.candidates.iter().enumerate() {
            let choice = cand.index.unwrap_or(position as u32);
            let state = self.choices.entry(choice).or_default();
            for part in cand.content.iter().flat_map(|c| &c.parts) {
                if let Some(text) = part.text.clone().filter(|t| !t.is_empty()) {
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
                    native_reason: Some(native.clone()),
                });
            }
        }
        if !self.choices.is_empty() && self.choices.values().all(|c| c.finished) {
            self.done = true;
            if let Some(u) = &self.usage {
                out.push(StreamEvent::Usage(usage(u)));
            }
        }
        Ok(())
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
