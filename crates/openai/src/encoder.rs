//! Canonical events → OpenAI `chat.completion.chunk` frames for a client.
//!
//! The frames match what OpenAI sends and its SDKs parse: `data: <json>\n\n`, the role on the
//! first delta of a choice, `"logprobs": null` and `"finish_reason": null` on every choice,
//! `"usage": null` on every chunk when the client asked for usage, a final usage chunk with
//! `"choices": []`, and `data: [DONE]`.

use serde::Serialize;
use switchyard_core::{StreamEncoder, StreamEvent, StreamMeta, UpstreamError, Usage};

use crate::errors::write_error_object;
use crate::response::{finish_reason_str, usage_to_wire, ReasoningDetailOut};
use crate::wire::WireUsage;

pub struct OpenAiStreamEncoder {
    include_usage: bool,
    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":[`, the same for every
    /// chunk of the stream, so rendered once.
    prefix: Vec<u8>,
    /// Choices whose role went out already.
    role_sent: Vec<u32>,
    /// Reasoning blocks sent per choice, for their `index`.
    blocks_sent: Vec<(u32, u32)>,
    usage: Option<Usage>,
    finished: bool,
}

impl OpenAiStreamEncoder {
    /// `include_usage` is the client's `stream_options.include_usage`
    /// (`ChatRequest::include_usage`).
    pub fn new(meta: StreamMeta, include_usage: bool) -> Self {
        let mut prefix = Vec::with_capacity(128 + meta.id.len() + meta.model.len());
        prefix.extend_from_slice(b"data: {\"id\":");
        write_json(&mut prefix, meta.id.as_str());
        prefix.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        write_json(&mut prefix, &meta.created);
        prefix.extend_from_slice(b",\"model\":");
        write_json(&mut prefix, meta.model.as_str());
        prefix.extend_from_slice(b",\"choices\":[");
        OpenAiStreamEncoder {
            include_usage,
            prefix,
            role_sent: Vec::new(),
            blocks_sent: Vec::new(),
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

    /// One chunk: the pre-rendered prefix, `choice` (if any), then `usage` (`null` on every
    /// chunk but the usage chunk) when the client asked for usage. The bytes are those of
    /// serializing [`ChunkOut`], which the tests check.
    fn write(&self, choice: Option<&ChoiceOut<'_>>, usage: Option<&WireUsage>, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.prefix);
        if let Some(choice) = choice {
            write_json(out, choice);
        }
        self.write_end(usage, out);
    }

    fn write_end(&self, usage: Option<&WireUsage>, out: &mut Vec<u8>) {
        out.push(b']');
        if self.include_usage {
            match usage {
                Some(usage) => {
                    out.extend_from_slice(b",\"usage\":");
                    write_json(out, usage);
                }
                None => out.extend_from_slice(b",\"usage\":null"),
            }
        }
        out.extend_from_slice(b"}\n\n");
    }

    /// A text-like delta (`content`, `reasoning_content` or `refusal`), the one chunk shape
    /// of a long stream, written directly rather than through [`ChoiceOut`].
    fn text_delta(&mut self, choice: u32, key: &[u8], text: &str, out: &mut Vec<u8>) {
        let role = self.role_for(choice);
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b"{\"index\":");
        write_json(out, &choice);
        out.extend_from_slice(b",\"delta\":{");
        if role.is_some() {
            out.extend_from_slice(b"\"role\":\"assistant\",");
        }
        out.extend_from_slice(key);
        write_json(out, text);
        out.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":null}");
        self.write_end(None, out);
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

/// Borrowed strings, numbers and derived structs into a Vec: cannot fail.
fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(&mut *out, value);
}

impl StreamEncoder for OpenAiStreamEncoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match event {
            StreamEvent::Start { .. } => {}
            StreamEvent::TextDelta { choice, text } if !text.is_empty() => {
                self.text_delta(*choice, b"\"content\":", text, out);
            }
            StreamEvent::ReasoningDelta { choice, text } if !text.is_empty() => {
                self.text_delta(*choice, b"\"reasoning_content\":", text, out);
            }
            StreamEvent::RefusalDelta { choice, text } if !text.is_empty() => {
                self.text_delta(*choice, b"\"refusal\":", text, out);
            }
            StreamEvent::TextDelta { .. }
            | StreamEvent::ReasoningDelta { .. }
            | StreamEvent::RefusalDelta { .. } => {}
            StreamEvent::ReasoningBlock { choice, block } => {
                let index = match self.blocks_sent.iter_mut().find(|(c, _)| c == choice) {
                    Some((_, n)) => {
                        *n += 1;
                        *n - 1
                    }
                    None => {
                        self.blocks_sent.push((*choice, 1));
                        0
                    }
                };
                let d = DeltaOut {
                    reasoning_details: Some([ReasoningDetailOut::new(block, index)]),
                    ..DeltaOut::default()
                };
                self.delta(*choice, d, out);
            }
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

/// The chunk the pre-rendered writes must match byte for byte (see the tests).
#[cfg(test)]
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
    /// A reasoning block goes out whole, after its text went out as `reasoning_content`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_details: Option<[ReasoningDetailOut<'a>; 1]>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::FinishReason;

    /// What the encoder wrote before its chunks were pre-rendered: `ChunkOut` serialized.
    fn reference(
        meta: &StreamMeta,
        include_usage: bool,
        choice: Option<ChoiceOut<'_>>,
        usage: Option<&WireUsage>,
    ) -> Vec<u8> {
        let chunk = ChunkOut {
            id: &meta.id,
            object: "chat.completion.chunk",
            created: meta.created,
            model: &meta.model,
            choices: choice.as_slice(),
            usage: include_usage.then_some(usage),
        };
        let mut out = b"data: ".to_vec();
        out.extend_from_slice(&serde_json::to_vec(&chunk).unwrap());
        out.extend_from_slice(b"\n\n");
        out
    }

    fn choice<'a>(index: u32, delta: DeltaOut<'a>, finish: Option<&'static str>) -> ChoiceOut<'a> {
        ChoiceOut {
            index,
            delta,
            logprobs: None,
            finish_reason: finish,
        }
    }

    #[test]
    fn prerendered_chunks_match_the_serialized_chunk() {
        let usage = Usage {
            input_tokens: 3,
            output_tokens: 5,
            total_tokens: 8,
            reasoning_tokens: Some(2),
            ..Usage::default()
        };
        for include_usage in [false, true] {
            let meta = StreamMeta {
                id: "chatcmpl-\"quoted\"\\é".into(),
                model: "m\u{1}ö".into(),
                created: 1_730_000_000,
            };
            let mut enc = OpenAiStreamEncoder::new(meta.clone(), include_usage);
            let mut out = Vec::new();
            let events = [
                StreamEvent::TextDelta {
                    choice: 0,
                    text: "a\"b\n\u{7}漢".into(),
                },
                StreamEvent::TextDelta {
                    choice: 0,
                    text: "c".into(),
                },
                StreamEvent::ReasoningDelta {
                    choice: 1,
                    text: "r".into(),
                },
                StreamEvent::RefusalDelta {
                    choice: 1,
                    text: "no".into(),
                },
                StreamEvent::ToolCallStart {
                    choice: 2,
                    index: 0,
                    id: "call_1".into(),
                    name: "f".into(),
                },
                StreamEvent::ToolCallArguments {
                    choice: 2,
                    index: 0,
                    arguments: "{}".into(),
                },
                StreamEvent::Finish {
                    choice: 0,
                    reason: FinishReason::Stop,
                    native_reason: None,
                },
                StreamEvent::Usage(usage.clone()),
            ];
            for ev in &events {
                enc.encode(ev, &mut out);
            }
            enc.finish(&mut out);

            let text = |t| DeltaOut {
                content: Some(t),
                ..DeltaOut::default()
            };
            let mut want = Vec::new();
            let first = DeltaOut {
                role: Some("assistant"),
                ..text("a\"b\n\u{7}漢")
            };
            want.extend(reference(
                &meta,
                include_usage,
                Some(choice(0, first, None)),
                None,
            ));
            want.extend(reference(
                &meta,
                include_usage,
                Some(choice(0, text("c"), None)),
                None,
            ));
            let reasoning = DeltaOut {
                role: Some("assistant"),
                reasoning_content: Some("r"),
                ..DeltaOut::default()
            };
            want.extend(reference(
                &meta,
                include_usage,
                Some(choice(1, reasoning, None)),
                None,
            ));
            let refusal = DeltaOut {
                refusal: Some("no"),
                ..DeltaOut::default()
            };
            want.extend(reference(
                &meta,
                include_usage,
                Some(choice(1, refusal, None)),
                None,
            ));
            let start = DeltaOut {
                role: Some("assistant"),
                tool_calls: Some([ToolCallChunkOut {
                    index: 0,
                    id: Some("call_1"),
                    kind: Some("function"),
                    function: FunctionChunkOut {
                        name: Some("f"),
                        arguments: "",
                    },
                }]),
                ..DeltaOut::default()
            };
            want.extend(reference(
                &meta,
                include_usage,
                Some(choice(2, start, None)),
                None,
            ));
            let args = DeltaOut {
                tool_calls: Some([ToolCallChunkOut {
                    index: 0,
                    id: None,
                    kind: None,
                    function: FunctionChunkOut {
                        name: None,
                        arguments: "{}",
                    },
                }]),
                ..DeltaOut::default()
            };
            want.extend(reference(
                &meta,
                include_usage,
                Some(choice(2, args, None)),
                None,
            ));
            let finish = choice(0, DeltaOut::default(), Some("stop"));
            want.extend(reference(&meta, include_usage, Some(finish), None));
            if include_usage {
                want.extend(reference(&meta, true, None, Some(&usage_to_wire(&usage))));
            }
            want.extend_from_slice(b"data: [DONE]\n\n");
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
    }
}
