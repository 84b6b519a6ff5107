//! Data-driven checks over `fixtures/deepseek/<case>/`; canonical forms are insta snapshots
//! beside the fixtures.
//!
//! - `canonical_request.json` → build → must equal `request.json` (snapshot `build_warnings`);
//!   `request.json` → server parse → build must give it back. Bodies are validated against
//!   OpenAI's `CreateChatCompletionRequest` plus the DeepSeek overlay's `RequestAdditions`.
//! - `response.json` → canonical (snapshot `response`) → DeepSeek mock encoding → canonical;
//!   both bodies validated (OpenAI response schema, overlay `Usage`, `FinishReason`).
//! - `stream.sse` → events whole and byte by byte (snapshot `stream`); prefixes interrupted;
//!   events → mock encoding → same events; every chunk valid.
//! - `errors/*.json` `{status, headers, body, class}` → classified (snapshot `errors/errors`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use serde_json::{json, Value};
use switchyard_core::{
    ChatRequest, ErrorClass, Provider, ServerSide, StreamEvent, UnsupportedPolicy,
};
use switchyard_deepseek::{DeepSeek, DeepSeekServer};
use switchyard_spec_check::{assert_valid, check, check_overlay, unknown_keys, Api, Overlay};

const OVERLAY: Overlay = Overlay::DeepSeek;
/// Keys the overlay adds on top of OpenAI's request.
const OVERLAY_KEYS: &[&str] = &["thinking"];
const URL: &str = "https://api.deepseek.com/chat/completions";

fn build(request: &ChatRequest, model: &str) -> (Vec<String>, Value) {
    let up = DeepSeek
        .build_request(request, &target(model, UnsupportedPolicy::Reject))
        .unwrap_or_else(|e| panic!("build failed: {e}"));
    let req = &up.request;
    assert_eq!(req.method(), http::Method::POST);
    assert_eq!(req.uri().to_string(), URL);
    let auth = &req.headers()["authorization"];
    assert!(auth.is_sensitive());
    assert_eq!(auth, "Bearer sk-test-SECRET");
    assert!(!format!("{up:?}").contains("SECRET"), "key leaked in Debug");
    let body = serde_json::from_slice(req.body()).expect("body is JSON");
    (up.warnings, body)
}

fn overlay(def: &str, value: &Value, case: &str) {
    if let Err(e) = check_overlay(OVERLAY, def, value) {
        panic!("{case}: overlay {def}: {e}\n{value:#}");
    }
}

fn spec_request(case: &str, body: &Value) {
    if switchyard_spec_check::specs_dir().is_none() {
        return;
    }
    assert_valid(Api::OpenAi, "CreateChatCompletionRequest", body);
    let unknown: Vec<String> = unknown_keys(Api::OpenAi, "CreateChatCompletionRequest", body)
        .into_iter()
        .filter(|k| !OVERLAY_KEYS.contains(&k.as_str()))
        .collect();
    assert!(unknown.is_empty(), "{case}: unknown keys {unknown:?}");
    overlay("RequestAdditions", body, case);
}

/// `openai_schema`: also the whole OpenAI response schema. Only for what we encode: real
/// DeepSeek responses omit keys OpenAI's schema requires (`message.refusal`).
fn spec_response(case: &str, body: &Value, openai_schema: bool) {
    if switchyard_spec_check::specs_dir().is_none() {
        return;
    }
    if openai_schema {
        if let Err(e) = check(Api::OpenAi, "CreateChatCompletionResponse", body) {
            panic!("{case}: {e}\n{body:#}");
        }
    }
    overlay("Usage", &body["usage"], case);
    for c in body["choices"].as_array().expect("choices") {
        overlay("AssistantMessageAdditions", &c["message"], case);
        overlay("FinishReason", &c["finish_reason"], case);
    }
}

/// `openai_schema` as for responses: recorded chunks may deviate (Qwen sends
/// `"system_fingerprint": null`), what we encode may not.
fn spec_chunk(case: &str, chunk: &Value, openai_schema: bool) {
    if openai_schema {
        if let Err(e) = check(Api::OpenAi, "CreateChatCompletionStreamResponse", chunk) {
            panic!("{case}: chunk invalid: {e}\n{chunk}");
        }
    }
    if !chunk["usage"].is_null() {
        overlay("Usage", &chunk["usage"], case);
    }
    for c in chunk["choices"].as_array().into_iter().flatten() {
        overlay("AssistantMessageAdditions", &c["delta"], case);
        overlay("FinishReason", &c["finish_reason"], case);
    }
}

#[test]
fn every_fixture_case() {
    let dirs = case_dirs();
    assert!(dirs.len() >= 3, "fixture cases went missing: {dirs:?}");
    for dir in dirs {
        let case = case_name(&dir);
        let mut checked = 0;
        if dir.join("canonical_request.json").exists() {
            check_request(&case, &dir);
            checked += 1;
        }
        if dir.join("response.json").exists() {
            check_response(&case, &dir);
            checked += 1;
        }
        if dir.join("stream.sse").exists() {
            check_stream(&case, &dir);
            checked += 1;
        }
        assert!(checked > 0, "{case}: no fixture files");
    }
}

fn check_request(case: &str, dir: &Path) {
    let native = read_json(&dir.join("request.json"));
    let model = native["model"].as_str().expect("model");
    let input: ChatRequest =
        serde_json::from_value(read_json(&dir.join("canonical_request.json"))).expect("canonical");
    let (warnings, body) = build(&input, model);
    assert_eq!(body, native, "{case}: canonical_request → native");
    snapshot(dir, "build_warnings", &warnings);
    spec_request(case, &body);

    let parsed = DeepSeekServer
        .parse_request(None, &serde_json::to_vec(&native).expect("json"))
        .unwrap_or_else(|e| panic!("{case}: server parse: {e}"));
    let (_, rebuilt) = build(&parsed, model);
    assert_eq!(rebuilt, native, "{case}: native → canonical → native");
}

fn check_response(case: &str, dir: &Path) {
    let bytes = std::fs::read(dir.join("response.json")).expect("response");
    let native = read_json(&dir.join("response.json"));
    spec_response(case, &native, false);
    let parsed = DeepSeek
        .parse_response(&bytes)
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    snapshot(dir, "response", &parsed);
    let usage = parsed.usage.as_ref().expect("usage");
    assert_eq!(
        usage.native.as_ref().map(|n| n.to_value()),
        Some(native["usage"].clone())
    );
    // OpenAI semantics: input includes cached tokens; DeepSeek's hit + miss = prompt_tokens.
    let n = &native["usage"];
    assert_eq!(usage.input_tokens, n["prompt_tokens"].as_u64().unwrap());
    if let Some(hit) = n["prompt_cache_hit_tokens"].as_u64() {
        assert_eq!(usage.cached_input_tokens, Some(hit), "{case}");
        assert_eq!(
            hit + n["prompt_cache_miss_tokens"].as_u64().unwrap(),
            usage.input_tokens
        );
    }
    let encoded_bytes = DeepSeekServer.encode_response(&parsed);
    let encoded: Value = serde_json::from_slice(&encoded_bytes).expect("encoded JSON");
    spec_response(case, &encoded, true);
    for key in ["prompt_cache_hit_tokens", "prompt_cache_miss_tokens"] {
        assert_eq!(encoded["usage"][key], native["usage"][key], "{case}: {key}");
    }
    let again = DeepSeek.parse_response(&encoded_bytes).expect("re-parse");
    assert_eq!(
        strip_native(again),
        strip_native(parsed),
        "{case}: canonical round trip"
    );
}

fn check_stream(case: &str, dir: &Path) {
    let bytes = std::fs::read(dir.join("stream.sse")).expect("stream");
    let whole = parse_stream(&bytes).unwrap_or_else(|e| panic!("{case}: {e}"));
    snapshot(dir, "stream", &whole);
    let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(parse_stream_chunks(&bytewise).unwrap(), whole, "{case}");
    assert!(whole
        .iter()
        .any(|e| matches!(e, StreamEvent::Finish { .. })));
    let text = std::str::from_utf8(&bytes).expect("utf-8");
    let cut = text.find("data: [DONE]").expect("ends with [DONE]");
    for end in [cut, cut / 2] {
        let err = parse_stream(&bytes[..end]).unwrap_err();
        assert_eq!(
            err.class,
            ErrorClass::StreamInterrupted,
            "{case}: cut at {end}"
        );
    }
    let out = reencode_stream(&DeepSeekServer, &whole, true);
    let again = parse_stream(&out).unwrap_or_else(|e| panic!("{case}: re-encoded: {e}"));
    assert_eq!(
        strip_native_events(again),
        strip_native_events(whole),
        "{case}: events → stream → events"
    );
    if switchyard_spec_check::specs_dir().is_some() {
        for chunk in data_frames(&bytes) {
            spec_chunk(case, &chunk, false);
        }
        for chunk in data_frames(&out) {
            spec_chunk(case, &chunk, true);
        }
    }
}

#[test]
fn errors_are_classified() {
    let dir = fixtures_root().join("errors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("errors dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 7);
    let mut all = BTreeMap::new();
    for path in files {
        let case = read_json(&path);
        let status = case["status"].as_u64().expect("status") as u16;
        if switchyard_spec_check::specs_dir().is_some() {
            overlay("HttpErrorStatus", &case["status"], "errors");
        }
        let mut headers = http::HeaderMap::new();
        for (k, v) in case["headers"].as_object().into_iter().flatten() {
            headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                v.as_str()
                    .expect("header value")
                    .parse()
                    .expect("header value"),
            );
        }
        let body = match &case["body"] {
            Value::String(s) => s.clone().into_bytes(),
            other => serde_json::to_vec(other).expect("json"),
        };
        let err = DeepSeek.classify_error(
            http::StatusCode::from_u16(status).expect("status"),
            &headers,
            &body,
        );
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        assert_eq!(err.class.name(), case["class"], "{name}");
        assert_eq!(err.status, Some(status), "{name}");
        assert!(err.raw_body.is_some(), "{name}");
        all.insert(name.to_string(), json!(err));
    }
    snapshot(&dir, "errors", &all);
}
