//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use switchyard_anthropic::{Anthropic, AnthropicServer};
use switchyard_core::{
    ChatRequest, Provider, ServerSide, StreamEvent, StreamMeta, Target, TranslateError,
    UnsupportedPolicy, UpstreamError, UpstreamRequest,
};
use switchyard_spec_check::{check, specs_dir, Api};
use switchyard_sse::SseDecoder;

pub const MODEL: &str = "claude-sonnet-4-5-20250929";
pub const KEY: &str = "sk-ant-api03-secret-test-key";

pub fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/anthropic")
}

pub fn target(policy: UnsupportedPolicy) -> Target<'static> {
    Target {
        base_url: "https://api.anthropic.com",
        model: MODEL,
        api_key: Some(KEY),
        on_unsupported: policy,
    }
}

/// Builds with `policy` and checks the body against `CreateMessageParams` when specs exist.
pub fn build_with(
    req: &ChatRequest,
    policy: UnsupportedPolicy,
) -> Result<(UpstreamRequest, Value), TranslateError> {
    let up = Anthropic.build_request(req, &target(policy))?;
    let body: Value = serde_json::from_slice(up.request.body()).expect("body is JSON");
    spec_valid("CreateMessageParams", &body);
    Ok((up, body))
}

pub fn build(req: &ChatRequest) -> Result<(UpstreamRequest, Value), TranslateError> {
    build_with(req, UnsupportedPolicy::Reject)
}

/// Validates against the Anthropic spec; skipped (with the spec-check notice) without specs.
pub fn spec_valid(schema: &str, value: &Value) {
    if specs_dir().is_none() {
        return;
    }
    if let Err(e) = check(Api::Anthropic, schema, value) {
        panic!("{schema} rejected our JSON:\n{e}\n--- value ---\n{value:#}");
    }
}

/// Runs `chunks` through the SSE decoder and a fresh parser, stopping at the first error.
pub fn replay<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<StreamEvent>, Result<(), UpstreamError>) {
    let mut decoder = SseDecoder::new();
    let mut parser = Anthropic.stream_parser();
    let mut frames = Vec::new();
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk, &mut frames).expect("valid SSE");
        for frame in frames.drain(..) {
            if let Err(e) = parser.feed(&frame, &mut events) {
                return (events, Err(e));
            }
        }
    }
    decoder.finish();
    let result = parser.finish(&mut events);
    (events, result)
}

pub fn replay_whole(bytes: &[u8]) -> (Vec<StreamEvent>, Result<(), UpstreamError>) {
    replay([bytes])
}

/// Canonical events → Anthropic SSE through the server-side encoder.
pub fn encode_stream(events: &[StreamEvent], error: Option<&UpstreamError>) -> Vec<u8> {
    let meta = events
        .iter()
        .find_map(|e| match e {
            StreamEvent::Start { id, model, .. } => Some(StreamMeta {
                id: id.clone(),
                model: model.clone(),
                created: 0,
            }),
            _ => None,
        })
        .unwrap_or(StreamMeta {
            id: "msg_test".into(),
            model: MODEL.into(),
            created: 0,
        });
    let mut enc = AnthropicServer.stream_encoder(&ChatRequest::default(), meta);
    let mut out = Vec::new();
    for e in events {
        enc.encode(e, &mut out);
    }
    match error {
        Some(err) => enc.error(err, &mut out),
        None => enc.finish(&mut out),
    }
    out
}

/// Every frame of an encoded stream: (event name, data as JSON).
pub fn frames(bytes: &[u8]) -> Vec<(String, Value)> {
    let mut decoder = SseDecoder::new();
    let mut out = Vec::new();
    decoder.feed(bytes, &mut out).expect("valid SSE");
    assert!(!decoder.finish(), "encoded stream ends mid-event");
    out.into_iter()
        .map(|f| {
            let data: Value = serde_json::from_str(&f.data).expect("frame data is JSON");
            (f.event.unwrap_or_default(), data)
        })
        .collect()
}

/// Validates every frame of an encoded stream and checks that `event:` names its `type`.
pub fn spec_valid_stream(bytes: &[u8]) {
    for (name, data) in frames(bytes) {
        assert_eq!(
            Some(name.as_str()),
            data["type"].as_str(),
            "event name ≠ type"
        );
        if name == "error" {
            spec_valid("ErrorResponse", &data);
        } else {
            spec_valid("MessageStreamEvent", &data);
        }
    }
}

/// Events with the provider's verbatim usage object removed (it differs after re-encoding
/// by design: the encoder writes the canonical figures, not the upstream's extras).
pub fn without_native(events: &[StreamEvent]) -> Vec<StreamEvent> {
    events
        .iter()
        .cloned()
        .map(|e| match e {
            StreamEvent::Usage(mut u) => {
                u.native = None;
                StreamEvent::Usage(u)
            }
            e => e,
        })
        .collect()
}
