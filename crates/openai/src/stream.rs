//! Upstream stream: `data: {chat.completion.chunk}` … `data: [DONE]` → canonical events.

use switchyard_core::{ErrorClass, SseFrame, StreamEvent, StreamParser, UpstreamError, Usage};

use crate::errors::classify_stream_error;
use crate::response::{finish_reason_from_str, usage_from_native};
use crate::wire::ChatCompletionChunk;

/// Stateful parser for one OpenAI (or OpenAI-compatible) stream.
///
/// Dialects whose chunks carry extra fields can parse a frame into their own type, pass the
/// OpenAI part to [`OpenAiStreamParser::feed_chunk`] and handle the rest themselves; or wrap
/// this parser and post-process the events it appends.
#[derive(Debug, Default)]
pub struct OpenAiStreamParser {
    started: bool,
    done: bool,
    /// (choice, tool index) pairs whose `ToolCallStart` went out. Some dialects repeat the id
    /// and name on every fragment; a call starts only once.
    open_tools: Vec<(u32, u32)>,
    /// Usage is held until `[DONE]`: dialects that repeat cumulative usage then report once,
    /// with the final figures.
    usage: Option<Usage>,
}

impl OpenAiStreamParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles the `data` of one frame: a chunk, `[DONE]`, or an in-stream error.
    pub fn feed_data(
        &mut self,
        data: &str,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), UpstreamError> {
        if self.done {
            return Ok(());
        }
        let data = data.trim_ascii();
        if data == "[DONE]" {
            self.done = true;
            if let Some(u) = self.usage.take() {
                out.push(StreamEvent::Usage(u));
            }
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let chunk: ChatCompletionChunk<'_> = serde_json::from_str(data).map_err(|e| {
            UpstreamError::malformed(format!("stream chunk: {e}")).with_raw_body(data.as_bytes())
        })?;
        self.feed_chunk(chunk, out)
    }

    /// Handles one parsed chunk.
    pub fn feed_chunk(
        &mut self,
        chunk: ChatCompletionChunk<'_>,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), UpstreamError> {
        if let Some(err) = chunk.error {
            return Err(classify_stream_error(err.get()));
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk.id.map(|s| s.into_owned()).unwrap_or_default(),
                model: chunk.model.map(|s| s.into_owned()).unwrap_or_default(),
                created: chunk.created.unwrap_or(0),
            });
        }
        for c in chunk.choices {
            let choice = c.index;
            if let Some(d) = c.delta {
                if let Some(t) = d.reasoning_content.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::ReasoningDelta {
                        choice,
                        text: t.into_owned(),
                    });
                }
                if let Some(t) = d.content.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta {
                        choice,
                        text: t.into_owned(),
                    });
                }
                if let Some(t) = d.refusal.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::RefusalDelta {
                        choice,
                        text: t.into_owned(),
                    });
                }
                for tc in d.tool_calls {
                    let (name, arguments) = match tc.function {
                        Some(f) => (f.name, f.arguments),
                        None => (None, None),
                    };
                    let key = (choice, tc.index);
                    if !self.open_tools.contains(&key) {
                        if let (Some(id), Some(name)) = (tc.id, name) {
                            self.open_tools.push(key);
                            out.push(StreamEvent::ToolCallStart {
                                choice,
                                index: tc.index,
                                id: id.into_owned(),
                                name: name.into_owned(),
                            });
                        }
                    }
                    if let Some(a) = arguments.filter(|a| !a.is_empty()) {
                        out.push(StreamEvent::ToolCallArguments {
                            choice,
                            index: tc.index,
                            arguments: a.into_owned(),
                        });
                    }
                }
            }
            if let Some(reason) = c.finish_reason {
                out.push(StreamEvent::Finish {
                    choice,
                    reason: finish_reason_from_str(&reason),
                    native_reason: Some(reason.into_owned()),
                });
            }
        }
        if let Some(raw) = chunk.usage {
            self.usage = Some(usage_from_native(raw)?);
        }
        Ok(())
    }
}

impl StreamParser for OpenAiStreamParser {
    fn feed(&mut self, frame: &SseFrame, out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        self.feed_data(&frame.data, out)
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        if !self.done {
            // No `[DONE]`: still hand over the usage seen, for a caller that accepts an
            // answer which did finish (a finish_reason was sent) but was never terminated.
            if let Some(u) = self.usage.take() {
                out.push(StreamEvent::Usage(u));
            }
        }
        if self.done {
            Ok(())
        } else {
            Err(UpstreamError::new(
                ErrorClass::StreamInterrupted,
                "stream ended before `data: [DONE]`",
            ))
        }
    }

    fn is_done(&self) -> bool {
        self.done
    }
}
