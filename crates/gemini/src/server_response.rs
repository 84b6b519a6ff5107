//! Server side: canonical responses, stream events and errors → Gemini's wire format.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use switchyard_core::{
    ChatResponse, ErrorClass, FinishReason, StreamEncoder, StreamEvent, StreamMeta, UpstreamError,
    Usage,
};

use crate::errors;
use crate::wire::{
    Candidate, Content, FunctionCall, GenerateContentResponse, Part, PromptFeedback,
};

/// Finish reasons Gemini itself sends; a canonical `native_finish_reason` is reused only if
/// it is one of these (it may come from another provider).
const GEMINI_FINISH_REASONS: &[&str] = &[
    "STOP",
    "MAX_TOKENS",
    "SAFETY",
    "RECITATION",
    "LANGUAGE",
    "OTHER",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "MALFORMED_FUNCTION_CALL",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_OTHER",
    "NO_IMAGE",
    "IMAGE_RECITATION",
    "UNEXPECTED_TOOL_CALL",
    "TOO_MANY_TOOL_CALLS",
];

fn native_finish(reason: FinishReason, native: Option<&str>) -> String {
    if let Some(n) = native.filter(|n| GEMINI_FINISH_REASONS.contains(n)) {
        return n.to_string();
    }
    match reason {
        FinishReason::Stop | FinishReason::ToolCalls | FinishReason::FunctionCall => "STOP",
        FinishReason::Length => "MAX_TOKENS",
        FinishReason::ContentFilter => "SAFETY",
        FinishReason::Other => "OTHER",
    }
    .to_string()
}

/// Canonical usage → `usageMetadata`, zeros left out as proto3 JSON does.
pub(crate) fn usage_metadata(u: &Usage) -> Value {
    let reasoning = u.reasoning_tokens.unwrap_or(0);
    let mut m = Map::new();
    let mut put = |k: &str, v: u64| {
        if v > 0 {
            m.insert(k.into(), json!(v));
        }
    };
    put("promptTokenCount", u.input_tokens);
    put(
        "candidatesTokenCount",
        u.output_tokens.saturating_sub(reasoning),
    );
    put("totalTokenCount", u.total_tokens);
    put(
        "cachedContentTokenCount",
        u.cached_input_tokens.unwrap_or(0),
    );
    put("thoughtsTokenCount", reasoning);
    Value::Object(m)
}

fn function_call_part(id: &str, name: &str, arguments: &str) -> Part {
    // Arguments that are not a JSON object cannot be a `Struct`; keep them under one key.
    let args = match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(m)) => m,
        _ if arguments.trim().is_empty() => Map::new(),
        _ => Map::from_iter([("arguments".to_string(), Value::String(arguments.into()))]),
    };
    let (id, signature) = crate::signature::split(id);
    Part {
        function_call: Some(FunctionCall {
            id: (!id.is_empty()).then(|| id.to_string()),
            name: name.to_string(),
            args: Some(args),
        }),
        thought_signature: signature.map(str::to_string),
        ..Part::default()
    }
}

fn model_content(parts: Vec<Part>) -> Option<Content> {
    (!parts.is_empty()).then(|| Content {
        role: Some("model".into()),
        parts,
    })
}

/// OpenAI-shaped logprobs → `logprobsResult` (token ids are not known, so left out).
fn logprobs_result(openai: &Value) -> Option<Value> {
    let content = openai.get("content")?.as_array()?;
    let candidate = |e: &Value| {
        json!({
            "token": e.get("token").cloned().unwrap_or(Value::Null),
            "logProbability": e.get("logprob").cloned().unwrap_or(Value::Null),
        })
    };
    let chosen: Vec<Value> = content.iter().map(candidate).collect();
    let top: Vec<Value> = content
        .iter()
        .map(|e| {
            let cs: Vec<Value> = e
                .get("top_logprobs")
                .and_then(Value::as_array)
                .map(|t| t.iter().map(candidate).collect())
                .unwrap_or_default();
            json!({ "candidates": cs })
        })
        .collect();
    Some(json!({ "topCandidates": top, "chosenCandidates": chosen }))
}

pub(crate) fn encode(response: &ChatResponse) -> Vec<u8> {
    let candidates = response
        .choices
        .iter()
        .map(|c| {
            let m = &c.message;
            let mut parts = Vec::new();
            if let Some(r) = &m.reasoning {
                parts.push(Part {
                    thought: true,
                    ..Part::text(r.clone())
                });
            }
            if let Some(t) = &m.content {
                parts.push(Part::text(t.clone()));
            }
            if let Some(r) = &m.refusal {
                parts.push(Part::text(r.clone()));
            }
            for call in &m.tool_calls {
                parts.push(function_call_part(&call.id, &call.name, &call.arguments));
            }
            Candidate {
                index: Some(c.index),
                content: model_content(parts),
                finish_reason: c
                    .finish_reason
                    .map(|r| native_finish(r, c.native_finish_reason.as_deref())),
                logprobs_result: c.logprobs.as_ref().and_then(logprobs_result),
                ..Candidate::default()
            }
        })
        .collect();
    let native = GenerateContentResponse {
        candidates,
        prompt_feedback: None,
        usage_metadata: response.usage.as_ref().map(usage_metadata),
        model_version: Some(response.model.clone()).filter(|m| !m.is_empty()),
        response_id: Some(response.id.clone()).filter(|i| !i.is_empty()),
    };
    serde_json::to_vec(&native).unwrap_or_default()
}

/// Gemini reports a blocked prompt as a 200 with `promptFeedback.blockReason`, not as an
/// HTTP error, so `ContentFiltered` is encoded that way.
fn blocked_body(error: &UpstreamError) -> Value {
    let reason = error
        .provider_code
        .as_deref()
        .filter(|c| {
            [
                "SAFETY",
                "OTHER",
                "BLOCKLIST",
                "PROHIBITED_CONTENT",
                "IMAGE_SAFETY",
            ]
            .contains(c)
        })
        .unwrap_or("SAFETY");
    let native = GenerateContentResponse {
        prompt_feedback: Some(PromptFeedback {
            block_reason: Some(reason.into()),
            safety_ratings: vec![],
        }),
        ..GenerateContentResponse::default()
    };
    serde_json::to_value(native).unwrap_or(Value::Null)
}

pub(crate) fn encode_error(error: &UpstreamError) -> (u16, Vec<u8>) {
    let (code, body) = if error.class == ErrorClass::ContentFiltered {
        (200, blocked_body(error))
    } else {
        errors::status_body(error)
    };
    (code, serde_json::to_vec(&body).unwrap_or_default())
}

/// Canonical events → `data: {GenerateContentResponse}` frames. Text and thoughts go out as
/// they come; a tool call goes out whole once its arguments are complete (Gemini never
/// splits a `functionCall`); finish reasons wait for the usage so that, as upstream, the
/// last chunk carries both.
pub struct GeminiStreamEncoder {
    meta: StreamMeta,
    /// (choice, index) → (id, name, arguments so far).
    calls: BTreeMap<(u32, u32), (String, String, String)>,
    finishes: Vec<(u32, String)>,
    usage: Option<Value>,
    flushed_final: bool,
}

impl GeminiStreamEncoder {
    pub fn new(meta: StreamMeta) -> Self {
        GeminiStreamEncoder {
            meta,
            calls: BTreeMap::new(),
            finishes: Vec::new(),
            usage: None,
            flushed_final: false,
        }
    }

    fn chunk(&self, candidates: Vec<Candidate>, usage: Option<Value>, out: &mut Vec<u8>) {
        let native = GenerateContentResponse {
            candidates,
            prompt_feedback: None,
            usage_metadata: usage,
            model_version: Some(self.meta.model.clone()).filter(|m| !m.is_empty()),
            response_id: Some(self.meta.id.clone()).filter(|i| !i.is_empty()),
        };
        let data = serde_json::to_string(&native).unwrap_or_default();
        switchyard_sse::encode_frame(None, &data, out);
    }

    fn parts_chunk(&self, choice: u32, parts: Vec<Part>, out: &mut Vec<u8>) {
        let cand = Candidate {
            index: Some(choice),
            content: model_content(parts),
            ..Candidate::default()
        };
        self.chunk(vec![cand], None, out);
    }

    /// Sends the buffered calls of `choice` (all choices when `None`).
    fn flush_calls(&mut self, choice: Option<u32>, out: &mut Vec<u8>) {
        let keys: Vec<_> = self
            .calls
            .keys()
            .filter(|(c, _)| choice.is_none_or(|x| x == *c))
            .copied()
            .collect();
        let mut by_choice: BTreeMap<u32, Vec<Part>> = BTreeMap::new();
        for k in keys {
            if let Some((id, name, args)) = self.calls.remove(&k) {
                by_choice
                    .entry(k.0)
                    .or_default()
                    .push(function_call_part(&id, &name, &args));
            }
        }
        for (c, parts) in by_choice {
            self.parts_chunk(c, parts, out);
        }
    }

    fn flush_final(&mut self, out: &mut Vec<u8>) {
        if self.flushed_final || self.finishes.is_empty() {
            return;
        }
        self.flush_calls(None, out);
        let candidates = self
            .finishes
            .iter()
            .map(|(choice, reason)| Candidate {
                index: Some(*choice),
                finish_reason: Some(reason.clone()),
                ..Candidate::default()
            })
            .collect();
        self.chunk(candidates, self.usage.clone(), out);
        self.flushed_final = true;
    }
}

impl StreamEncoder for GeminiStreamEncoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.flushed_final {
            return;
        }
        match event {
            StreamEvent::Start { .. } => {}
            StreamEvent::TextDelta { choice, text }
            | StreamEvent::RefusalDelta { choice, text } => {
                self.flush_calls(Some(*choice), out);
                self.parts_chunk(*choice, vec![Part::text(text.clone())], out);
            }
            StreamEvent::ReasoningDelta { choice, text } => {
                self.flush_calls(Some(*choice), out);
                let part = Part {
                    thought: true,
                    ..Part::text(text.clone())
                };
                self.parts_chunk(*choice, vec![part], out);
            }
            // Another provider's signed reasoning: Gemini's own signatures ride in call ids.
            StreamEvent::ReasoningBlock { .. } => {}
            StreamEvent::ToolCallStart {
                choice,
                index,
                id,
                name,
            } => {
                self.calls
                    .insert((*choice, *index), (id.clone(), name.clone(), String::new()));
            }
            StreamEvent::ToolCallArguments {
                choice,
                index,
                arguments,
            } => {
                if let Some(call) = self.calls.get_mut(&(*choice, *index)) {
                    call.2.push_str(arguments);
                }
            }
            StreamEvent::Finish {
                choice,
                reason,
                native_reason,
            } => {
                self.flush_calls(Some(*choice), out);
                self.finishes
                    .push((*choice, native_finish(*reason, native_reason.as_deref())));
            }
            StreamEvent::Usage(u) => {
                self.usage = Some(usage_metadata(u));
                self.flush_final(out);
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.flush_final(out);
    }

    fn error(&mut self, error: &UpstreamError, out: &mut Vec<u8>) {
        let body = if error.class == ErrorClass::ContentFiltered {
            blocked_body(error)
        } else {
            errors::status_body(error).1
        };
        switchyard_sse::encode_frame(None, &body.to_string(), out);
    }
}
