//! Canonical events → OpenAI `chat.completion.chunk` frames for a client.
//!
//! The frames match what OpenAI sends and its SDKs parse: `data: <json>\n\n`, the role on the
//! first delta of a choice, `"logprobs": null` and `"finish_reason": null` on every choice,
//! `"usage": null` on every chunk when the client asked for usage, a final usage chunk with
//! `"choices": []`, and `data: [DONE]`.

use serde::Serialize;
use switchyard_core::{StreamEncoder, StreamEvent, StreamMeta, UpstreamError, Usage};

use crate::errors::write_error_object;
use crate::response::{finish_reason_str, usage_to_wire};
use crate::wire::WireUsage;

pub struct OpenAiStreamEncoder {
    meta: StreamMeta,
    include_usage: bool,
    /// Choices whose role went out already.
    role_sent: Vec<u32>,
    usage: Option<Usage>,
    finished: bool,
}

impl OpenAiStreamEncoder {
    /// `include_usage` is the client's `stream_options.include_usage`
    /// (`ChatRequest::include_usage`).
    pub fn new(meta: StreamMeta, include_usage: bool) -> Self {
        OpenAiStreamEncoder {
            meta,
            include_usage,
            role_sent: Vec::new(),
            usage: None,
            finished: false,
        }
    }

    fn role_for(&mut self, choice: u32) -> Option<&'static str> {
        if self.role_sent.contains(&choice) {
            None
        } else {
            self.role_sent.push(choice);
            Some("assistant")
        }
    }

    fn write(&self, choice: Option<&ChoiceOut<'_>>, usage: Option<&WireUsage>, out: &mut Vec<u8>) {
        let chunk = ChunkOut {
            id: &self.meta.id,
            object: "chat.completion.chunk",
            created: self.meta.created,
            model: &self.meta.model,
            choices: choice.map(std::slice::from_ref).unwrap_or(&[]),
            usage: self.include_usage.then_some(usage),
        };
        out.extend_from_slice(b"data: ");
        // Borrowed strings and numbers into a Vec: cannot fail.
        let _ = serde_json::to_writer(&mut *out, &chunk);
        out.extend_from_slice(b"\n\n");
    }

    fn delta(&mut self, choice: u32, delta: DeltaOut<'_>, out: &mut Vec<u8>) {
        let delta = DeltaOut {
            role: self.role_for(choice),
            ..delta
        };
        let c = ChoiceOut {
            index: choice,
            delta,
            logprobs: None,
            finish_reason: None,
        };
        self.write(Some(&c), None, out);
    }
}

impl StreamEncoder for OpenAiStreamEncoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match event {
            StreamEvent::Start { .. } => {}
            StreamEvent::TextDelta { choice, text } if !text.is_empty() => {
                let d = DeltaOut {
                    content: Some(text),
                    ..DeltaOut::default()
                };
                self.delta(*choice, d, out);
            }
            StreamEvent::ReasoningDelta { choice, text } if !text.is_empty() => {
                let d = DeltaOut {
                    reasoning_content: Some(text),
                    ..DeltaOut::default()
                };
                self.delta(*choice, d, out);
            }
            StreamEvent::RefusalDelta { choice, text } if !text.is_empty() => {
                let d = DeltaOut {
                    refusal: Some(text),
                    ..DeltaOut::default()
                };
                self.delta(*choice, d, out);
            }
            StreamEvent::TextDelta { .. }
            | StreamEvent::ReasoningDelta { .. }
            | StreamEvent::RefusalDelta { .. } => {}
            StreamEvent::ToolCallStart {
                choice,
                index,
                id,
                name,
            } => {
                let call = ToolCallChunkOut {
                    index: *index,
                    id: Some(id),
                    kind: Some("function"),
                    function: FunctionChunkOut {
                        name: Some(name),
                        arguments: "",
                    },
                };
                let d = DeltaOut {
                    tool_calls: Some([call]),
                    ..DeltaOut::default()
                };
                self.delta(*choice, d, out);
            }
            StreamEvent::ToolCallArguments {
                choice,
                index,
                arguments,
            } => {
                let call = ToolCallChunkOut {
                    index: *index,
                    id: None,
                    kind: None,
                    function: FunctionChunkOut {
                        name: None,
                        arguments,
                    },
                };
                let d = DeltaOut {
                    tool_calls: Some([call]),
                    ..DeltaOut::default()
                };
                self.delta(*choice, d, out);
            }
            StreamEvent::Finish { choice, reason, .. } => {
                let c = ChoiceOut {
                    index: *choice,
                    delta: DeltaOut::default(),
                    logprobs: None,
                    finish_reason: Some(finish_reason_str(*reason)),
                };
                self.write(Some(&c), None, out);
            }
            StreamEvent::Usage(u) => {
                if self.include_usage {
                    self.usage = Some(u.clone());
                }
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.finished = true;
        if let Some(u) = self.usage.take() {
            let wire = usage_to_wire(&u);
            self.write(None, Some(&wire), out);
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    fn error(&mut self, error: &UpstreamError, out: &mut Vec<u8>) {
        self.finished = true;
        let code = error
            .provider_code
            .as_deref()
            .unwrap_or_else(|| error.class.name());
        out.extend_from_slice(b"data: ");
        write_error_object(
            &error.message,
            error.class.policy().openai_type,
            None,
            Some(code),
            out,
        );
        out.extend_from_slice(b"\n\n");
    }
}

#[derive(Serialize)]
struct ChunkOut<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChoiceOut<'a>],
    /// Absent unless the client asked for usage; then `null` except on the usage chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<&'a WireUsage>>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    delta: DeltaOut<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallChunkOut<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCallChunkOut<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionChunkOut<'a>,
}

#[derive(Serialize)]
struct FunctionChunkOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}
