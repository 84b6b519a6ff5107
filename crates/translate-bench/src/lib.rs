//! Inputs for the translation benchmarks (`cargo bench -p switchyard-translate-bench`): client
//! requests, native responses and native streams, built once. Fixtures from `fixtures/` are used
//! where they exist; synthetic inputs cover sizes the fixtures do not (a 32 KB request, a
//! 200-chunk stream). The tests check that every input actually translates, so a bench never
//! measures an error path by accident.

use serde_json::{json, Value};
use switchyard_core::{Provider, StreamEvent, StreamMeta, Target, UnsupportedPolicy};
use switchyard_sse::SseDecoder;

/// The providers benchmarked, by name.
pub fn providers() -> Vec<(&'static str, Box<dyn Provider>)> {
    vec![
        ("openai", Box::new(switchyard_openai::OpenAi)),
        ("anthropic", Box::new(switchyard_anthropic::Anthropic)),
        ("gemini", Box::new(switchyard_gemini::Gemini)),
    ]
}

pub fn target(model: &str) -> Target<'_> {
    Target {
        base_url: "http://127.0.0.1:9",
        model,
        api_key: Some("sk-bench-key"),
        on_unsupported: UnsupportedPolicy::Reject,
    }
}

/// A one-turn chat request as a client sends it.
pub fn small_request() -> Vec<u8> {
    json!({
        "model": "chat",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Say hello to the benchmark."}
        ],
        "max_tokens": 64,
        "temperature": 0.2
    })
    .to_string()
    .into_bytes()
}

/// A request of about `size` bytes: twelve tools with schemas, a multi-turn conversation with
/// a tool call and its result, and long user text to make up the size.
pub fn large_request(size: usize) -> Vec<u8> {
    let tools: Vec<Value> = (0..12)
        .map(|i| {
            json!({"type": "function", "function": {
                "name": format!("tool_{i}"),
                "description": format!("Tool number {i}: looks things up in system {i} and returns a JSON summary of what it found."),
                "parameters": {
                    "type": "object",
                    "properties": {
                        "query": {"type": "string", "description": "What to look for."},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                        "filters": {"type": "array", "items": {"type": "object", "properties": {
                            "field": {"type": "string"}, "value": {"type": "string"}}, "required": ["field", "value"]}},
                        "mode": {"type": "string", "enum": ["fast", "thorough"]}
                    },
                    "required": ["query"]
                }
            }})
        })
        .collect();
    let mut messages = vec![
        json!({"role": "system", "content": "You are an assistant with tools. Use them when they help."}),
        json!({"role": "user", "content": "Find the open invoices for ACME."}),
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "tool_3", "arguments": "{\"query\":\"ACME open invoices\",\"limit\":20}"}}]}),
        json!({"role": "tool", "tool_call_id": "call_1", "content": "{\"invoices\":[{\"id\":17,\"amount\":120.5},{\"id\":18,\"amount\":99}]}"}),
        json!({"role": "assistant", "content": "ACME has two open invoices, 17 and 18."}),
    ];
    let base = json!({"model": "chat", "messages": messages, "tools": tools})
        .to_string()
        .len();
    let filler = "The quick brown fox jumps over the lazy dog; ünïcödé 漢字 too. ";
    let text: String = filler.repeat(size.saturating_sub(base + 200) / filler.len() + 1);
    messages.push(json!({"role": "user", "content": format!("Summarise this for me: {text}")}));
    json!({"model": "chat", "messages": messages, "tools": tools, "tool_choice": "auto", "max_tokens": 1024})
        .to_string()
        .into_bytes()
}

fn fixture(provider: &str, case: &str, file: &str) -> Option<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(provider)
        .join(case)
        .join(file);
    std::fs::read(path).ok()
}

/// A non-streamed native response of `provider` for `case` (`plain` or `tools`): the fixture
/// when there is one, else an inline plain answer.
pub fn response(provider: &str, case: &str) -> Option<Vec<u8>> {
    if let Some(body) = fixture(provider, case, "response.json") {
        return Some(body);
    }
    if case != "plain" {
        return None;
    }
    let v = match provider {
        "openai" => {
            json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1730000000, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there!"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}})
        }
        "anthropic" => {
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Hello there!"}], "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 12, "output_tokens": 3}})
        }
        "gemini" => {
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello there!"}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 3, "totalTokenCount": 15}, "modelVersion": "gemini-2.5-flash", "responseId": "r1"})
        }
        _ => return None,
    };
    Some(v.to_string().into_bytes())
}

/// A native SSE stream of `chunks` text deltas, as separate frames (the way they arrive).
pub fn stream(provider: &str, chunks: usize) -> Vec<Vec<u8>> {
    let mut frames = Vec::with_capacity(chunks + 8);
    match provider {
        "openai" => {
            let head = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"#;
            frames.push(format!("data: {head}\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"));
            for i in 0..chunks {
                frames.push(format!("data: {head}\"delta\":{{\"content\":\"token{i} \"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"));
            }
            frames.push(format!(
                "data: {head}\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}]}}\n\n"
            ));
            frames.push("data: [DONE]\n\n".into());
        }
        "anthropic" => {
            frames.push("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":14,\"output_tokens\":1}}}\n\n".into());
            frames.push("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".into());
            for i in 0..chunks {
                frames.push(format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"token{i} \"}}}}\n\n"));
            }
            frames.push("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n".into());
            frames.push("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":200}}\n\n".into());
            frames.push("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".into());
        }
        "gemini" => {
            let tail = r#""modelVersion":"gemini-2.5-flash","responseId":"r1"}"#;
            for i in 0..chunks {
                frames.push(format!("data: {{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":\"token{i} \"}}],\"role\":\"model\"}},\"index\":0}}],{tail}\n\n"));
            }
            frames.push(format!("data: {{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":\"\"}}],\"role\":\"model\"}},\"finishReason\":\"STOP\",\"index\":0}}],\"usageMetadata\":{{\"promptTokenCount\":8,\"candidatesTokenCount\":200,\"totalTokenCount\":208}},{tail}\n\n"));
        }
        _ => {}
    }
    frames.into_iter().map(String::into_bytes).collect()
}

/// The whole stream path of the gateway for one stream: bytes → SSE frames → canonical events
/// → OpenAI SSE bytes. Returns the bytes written and the number of text deltas seen.
pub fn translate_stream(provider: &dyn Provider, frames: &[Vec<u8>]) -> (usize, usize) {
    let mut decoder = SseDecoder::new();
    let mut parser = provider.stream_parser();
    let meta = StreamMeta {
        id: "chatcmpl-sy1".into(),
        model: "bench-model".into(),
        created: 1_730_000_000,
    };
    let mut encoder = switchyard_openai::OpenAiStreamEncoder::new(meta, true);
    let mut sse = Vec::new();
    let mut events = Vec::new();
    let mut out = Vec::with_capacity(1024);
    let (mut written, mut texts) = (0, 0);
    let mut emit = |events: &mut Vec<StreamEvent>, out: &mut Vec<u8>| {
        for ev in events.drain(..) {
            if matches!(ev, StreamEvent::TextDelta { .. }) {
                texts += 1;
            }
            switchyard_core::StreamEncoder::encode(&mut encoder, &ev, out);
        }
        // The gateway hands each piece to the client as its own buffer.
        written += out.len();
        out.clear();
    };
    for bytes in frames {
        if decoder.feed(bytes, &mut sse).is_err() {
            return (written, texts);
        }
        for frame in sse.drain(..) {
            if parser.feed(&frame, &mut events).is_err() {
                return (written, texts);
            }
        }
        emit(&mut events, &mut out);
    }
    decoder.finish();
    if parser.finish(&mut events).is_err() {
        return (written, texts);
    }
    emit(&mut events, &mut out);
    switchyard_core::StreamEncoder::finish(&mut encoder, &mut out);
    written += out.len();
    (written, texts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::ServerSide;
    use switchyard_openai::OpenAiServer;

    #[test]
    fn every_request_translates_for_every_provider() {
        for body in [small_request(), large_request(32 << 10)] {
            let req = OpenAiServer.parse_request(None, &body).unwrap();
            for (name, p) in providers() {
                let built = p.build_request(&req, &target("m"));
                assert!(built.is_ok(), "{name}: {:?}", built.err());
            }
        }
        let large = large_request(32 << 10).len();
        assert!((30 << 10..36 << 10).contains(&large), "{large} bytes");
    }

    #[test]
    fn every_response_parses() {
        for (name, p) in providers() {
            for case in ["plain", "tools"] {
                let Some(body) = response(name, case) else {
                    assert_eq!(case, "tools", "{name}: plain always exists");
                    continue;
                };
                let r = p.parse_response(&body);
                assert!(r.is_ok(), "{name} {case}: {:?}", r.err());
            }
        }
    }

    #[test]
    fn every_stream_yields_all_its_chunks() {
        for (name, p) in providers() {
            let (written, texts) = translate_stream(p.as_ref(), &stream(name, 200));
            assert_eq!(texts, 200, "{name}");
            let frames = stream("openai", 200).len();
            assert!(written > frames * 50, "{name}: {written} bytes");
        }
    }
}
