//! DeepSeek streams: OpenAI chunks with `reasoning_content` deltas (read by the OpenAI parser),
//! cache counts in the usage chunk, keep-alive comments (dropped by the SSE decoder), and
//! `insufficient_system_resource` as a failed stream.

use serde_json::json;
use switchyard_core::{
    SseFrame, StreamEncoder, StreamEvent, StreamMeta, StreamParser, UpstreamError, Usage,
};
use switchyard_openai::{OpenAiStreamEncoder, OpenAiStreamParser};

use crate::response::{fix_usage, insufficient_resource, usage_value, INSUFFICIENT_RESOURCE};

#[derive(Debug, Default)]
pub struct DeepSeekStreamParser {
    inner: OpenAiStreamParser,
    scratch: Vec<StreamEvent>,
}

impl DeepSeekStreamParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the OpenAI parser into a scratch buffer, then fixes or rejects what it produced.
    fn post(
        &mut self,
        result: Result<(), UpstreamError>,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), UpstreamError> {
        let outcome = result.and_then(|()| {
            for e in &mut self.scratch {
                match e {
                    StreamEvent::Finish {
                        native_reason: Some(r),
                        ..
                    } if r == INSUFFICIENT_RESOURCE => return Err(insufficient_resource()),
                    StreamEvent::Usage(u) => fix_usage(u),
                    _ => {}
                }
            }
            Ok(())
        });
        out.append(&mut self.scratch);
        outcome
    }
}

impl StreamParser for DeepSeekStreamParser {
    fn feed(&mut self, frame: &SseFrame, out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        self.scratch.clear();
        let r = self.inner.feed_data(&frame.data, &mut self.scratch);
        self.post(r, out)
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        self.scratch.clear();
        let r = self.inner.finish(&mut self.scratch);
        self.post(r, out)
    }

    fn is_done(&self) -> bool {
        self.inner.is_done()
    }
}

/// OpenAI's encoder, except that the usage chunk carries DeepSeek's cache hit/miss counts.
pub struct DeepSeekStreamEncoder {
    inner: OpenAiStreamEncoder,
    meta: StreamMeta,
    include_usage: bool,
    usage: Option<Usage>,
}

impl DeepSeekStreamEncoder {
    pub fn new(meta: StreamMeta, include_usage: bool) -> Self {
        DeepSeekStreamEncoder {
            inner: OpenAiStreamEncoder::new(meta.clone(), include_usage),
            meta,
            include_usage,
            usage: None,
        }
    }
}

impl StreamEncoder for DeepSeekStreamEncoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match event {
            StreamEvent::Usage(u) if self.include_usage => self.usage = Some(u.clone()),
            StreamEvent::Usage(_) => {}
            // DeepSeek's reasoning is text only (`reasoning_content`).
            StreamEvent::ReasoningBlock { .. } => {}
            other => self.inner.encode(other, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if let Some(u) = self.usage.take() {
            let chunk = json!({
                "id": self.meta.id,
                "object": "chat.completion.chunk",
                "created": self.meta.created,
                "model": self.meta.model,
                "choices": [],
                "usage": usage_value(&u),
            });
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(chunk.to_string().as_bytes());
            out.extend_from_slice(b"\n\n");
        }
        self.inner.finish(out);
    }

    fn error(&mut self, error: &UpstreamError, out: &mut Vec<u8>) {
        self.inner.error(error, out);
    }
}
