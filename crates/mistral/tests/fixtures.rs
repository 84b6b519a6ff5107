//! Data-driven checks over `fixtures/mistral/<case>/`; canonical forms are insta snapshots
//! beside the fixtures.
//!
//! - `canonical_request.json` → build → must equal `request.json` (snapshot `build_warnings`);
//!   `request.json` → server parse → build must give `request.json` back. Both are validated
//!   against Mistral's closed `ChatCompletionRequest`.
//! - `response.json` → canonical (snapshot `response`) → Mistral mock encoding → canonical.
//! - `stream.sse` → events whole and byte by byte (snapshot `stream`); prefixes are interrupted;
//!   events → mock encoding → same events; every chunk is a valid `CompletionChunk`.
//! - `errors/*.json` `{status, headers, body, class}` → classified (snapshot `errors/errors`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use serde_json::{json, Value};
use switchyard_core::{
    ChatRequest, ErrorClass, Provider, ServerSide, StreamEvent, UnsupportedPolicy,
};
use switchyard_mistral::{Mistral, MistralServer};
use switchyard_spec_check::{assert_valid, check, unknown_keys, Api};

const REQ: &str = "ChatCompletionRequest";

fn build(request: &ChatRequest, model: &str) -> (Vec<String>, Value) {
    let up = Mistral
        .build_request(request, &target(model, UnsupportedPolicy::Reject))
        .unwrap_or_else(|e| panic!("build failed: {e}"));
    let req = &up.request;
    assert_eq!(req.method(), http::Method::POST);
    assert_eq!(
        req.uri().to_string(),
        "https://api.mistral.ai/v1/chat/completions"
    );
    let auth = &req.headers()["authorization"];
    assert!(auth.is_sensitive());
    assert_eq!(auth, "Bearer mk-test-SECRET");
    assert!(!format!("{up:?}").contains("SECRET"), "key leaked in Debug");
    let body = serde_json::from_slice(req.body()).expect("body is JSON");
    (up.warnings, body)
}

fn spec_request(case: &str, body: &Value) {
    if switchyard_spec_check::specs_dir().is_none() {
        return;
    }
    assert_valid(Api::Mistral, REQ, body);
    assert_eq!(
        unknown_keys(Api::Mistral, REQ, body),
        Vec::<String>::new(),
        "{case}"
    );
}

/// Mistral's `ChatCompletionResponse` lists `data` as required, which no response carries (a
/// quirk of the published spec); every other error counts.
fn spec_response(case: &str, body: &Value) {
    if switchyard_spec_check::specs_dir().is_none() {
        return;
    }
    if let Err(errors) = check(Api::Mistral, "ChatCompletionResponse", body) {
        let real: Vec<&str> = errors
            .lines()
            .filter(|l| !l.contains("\"data\" is a required property"))
            .collect();
        assert!(real.is_empty(), "{case}: {real:?}\n{body:#}");
    }
    for c in body["choices"].as_array().expect("choices") {
        assert_valid(Api::Mistral, "ChatCompletionChoice", c);
    }
    assert_valid(Api::Mistral, "UsageInfo", &body["usage"]);
}

#[test]
fn every_fixture_case() {
    let dirs = case_dirs();
    assert!(dirs.len() >= 5, "fixture cases went missing: {dirs:?}");
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

    let parsed = MistralServer
        .parse_request(None, &serde_json::to_vec(&native).expect("json"))
        .unwrap_or_else(|e| panic!("{case}: server parse: {e}"));
    let (_, rebuilt) = build(&parsed, model);
    assert_eq!(rebuilt, native, "{case}: native → canonical → native");
}

fn check_response(case: &str, dir: &Path) {
    let bytes = std::fs::read(dir.join("response.json")).expect("response");
    let native = read_json(&dir.join("response.json"));
    spec_response(case, &native);
    let parsed = Mistral
        .parse_response(&bytes)
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    snapshot(dir, "response", &parsed);
    assert_eq!(
        parsed.choices[0].native_finish_reason.as_deref(),
        native["choices"][0]["finish_reason"].as_str()
    );
    assert_eq!(
        parsed
            .usage
            .as_ref()
            .and_then(|u| u.native.as_ref())
            .map(|n| n.to_value()),
        Some(native["usage"].clone())
    );
    for c in &parsed.choices {
        for t in &c.message.tool_calls {
            serde_json::from_str::<Value>(&t.arguments)
                .unwrap_or_else(|e| panic!("{case}: arguments are not JSON text: {e}"));
        }
    }
    let encoded_bytes = MistralServer.encode_response(&parsed);
    let encoded: Value = serde_json::from_slice(&encoded_bytes).expect("encoded JSON");
    spec_response(case, &encoded);
    for key in ["id", "model", "created"] {
        assert_eq!(encoded[key], native[key], "{case}: {key}");
    }
    assert_eq!(
        encoded["choices"][0]["finish_reason"], native["choices"][0]["finish_reason"],
        "{case}: finish reason after re-encoding"
    );
    let again = Mistral.parse_response(&encoded_bytes).expect("re-parse");
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
    assert_eq!(
        parse_stream_chunks(&bytewise).unwrap(),
        whole,
        "{case}: byte by byte"
    );
    assert!(whole
        .iter()
        .any(|e| matches!(e, StreamEvent::Finish { .. })));
    assert!(
        matches!(whole.last(), Some(StreamEvent::Usage(_))),
        "{case}: Mistral always reports usage"
    );
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

    let out = reencode_stream(&MistralServer, &whole, false);
    let again = parse_stream(&out).unwrap_or_else(|e| panic!("{case}: re-encoded: {e}"));
    assert_eq!(again, whole, "{case}: events → Mistral stream → events");

    if switchyard_spec_check::specs_dir().is_some() {
        for chunk in data_frames(&bytes).iter().chain(&data_frames(&out)) {
            if let Err(e) = check(Api::Mistral, "CompletionChunk", chunk) {
                panic!("{case}: chunk invalid: {e}\n{chunk}");
            }
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
    assert!(files.len() >= 8);
    let mut all = BTreeMap::new();
    for path in files {
        let case = read_json(&path);
        let status = case["status"].as_u64().expect("status") as u16;
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
        let err = Mistral.classify_error(
            http::StatusCode::from_u16(status).expect("status"),
            &headers,
            &body,
        );
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        assert_eq!(err.class.name(), case["class"], "{name}");
        assert_eq!(err.status, Some(status), "{name}");
        assert!(err.raw_body.is_some(), "{name}");
        assert!(!err.message.is_empty(), "{name}");
        all.insert(name.to_string(), json!(err));
    }
    snapshot(&dir, "errors", &all);
}
