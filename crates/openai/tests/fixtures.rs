//! Data-driven checks over `fixtures/openai/*`: canonical snapshots, round trips both ways,
//! and validation against OpenAI's official spec.

mod common;

use common::*;
use serde_json::{json, Map, Value};
use switchyard_core::{
    ErrorClass, Provider, ServerSide, StreamEncoder, StreamEvent, StreamMeta, StreamParser,
};
use switchyard_openai::{OpenAi, OpenAiServer, OpenAiStreamEncoder, OpenAiStreamParser};
use switchyard_spec_check::{assert_valid, specs_dir, unknown_keys, Api};

const REQ: &str = "CreateChatCompletionRequest";
const RESP: &str = "CreateChatCompletionResponse";
const CHUNK: &str = "CreateChatCompletionStreamResponse";

/// Compares two objects key by key so a failure names the field that differs.
fn assert_same_fields(case: &str, what: &str, expected: &Value, actual: &Value) {
    let (Value::Object(e), Value::Object(a)) = (expected, actual) else {
        assert_eq!(expected, actual, "{case}: {what}");
        return;
    };
    let keys: std::collections::BTreeSet<_> = e.keys().chain(a.keys()).collect();
    for k in keys {
        let same = match (e.get(k), a.get(k)) {
            (Some(x), Some(y)) => same_json(x, y),
            (x, y) => x == y,
        };
        assert!(
            same,
            "{case}: {what}: field `{k}` differs\n expected: {:?}\n   actual: {:?}",
            e.get(k),
            a.get(k)
        );
    }
}

/// JSON equality where `0` and `0.0` are the same number (canonical numbers are f64).
fn same_json(x: &Value, y: &Value) -> bool {
    match (x, y) {
        (Value::Number(a), Value::Number(b)) => a == b || a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => x == y,
    }
}

fn drop_nulls(obj: &mut Map<String, Value>) {
    obj.retain(|_, v| !v.is_null());
}

/// The documented differences between what a client sends and what we send upstream.
fn normalize_client_request(mut v: Value) -> Value {
    let o = v.as_object_mut().unwrap();
    drop_nulls(o);
    if let Some(mt) = o.remove("max_tokens") {
        o.entry("max_completion_tokens").or_insert(mt);
    }
    if o.get("stream") == Some(&json!(true)) {
        o.insert("stream_options".into(), json!({"include_usage": true}));
    } else {
        o.remove("stream");
        o.remove("stream_options");
    }
    if let Some(Value::Array(msgs)) = o.get_mut("messages") {
        for m in msgs {
            let m = m.as_object_mut().unwrap();
            drop_nulls(m);
            // OpenAI has no field for prior reasoning: not sent back upstream.
            m.remove("reasoning_content");
            m.remove("reasoning_details");
        }
    }
    v
}

/// What we do not reproduce from an upstream response: empty `annotations` (not modelled)
/// and top-level nulls (we omit unknown fields rather than write `null`).
fn normalize_upstream_response(mut v: Value) -> Value {
    let o = v.as_object_mut().unwrap();
    drop_nulls(o);
    for c in o["choices"].as_array_mut().unwrap() {
        let m = c["message"].as_object_mut().unwrap();
        if m.get("annotations") == Some(&json!([])) {
            m.remove("annotations");
        }
    }
    v
}

#[test]
fn requests_parse_then_build_round_trip() {
    let cases = cases_with("request.json");
    assert!(cases.len() >= 10);
    for (case, dir, bytes) in cases {
        let canonical = OpenAiServer
            .parse_request(None, &bytes)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        snapshot(&dir, "canonical_request", &canonical);

        let original = json(&bytes);
        let model = original["model"].as_str().unwrap();
        let up = OpenAi
            .build_request(&canonical, &target(model))
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert!(up.warnings.is_empty(), "{case}: {:?}", up.warnings);
        let req = &up.request;
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(
            req.uri().to_string(),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(req.headers()["content-type"], "application/json");
        let auth = &req.headers()["authorization"];
        assert!(auth.is_sensitive(), "{case}: key header must be sensitive");
        assert_eq!(auth, "Bearer sk-test-SECRET");
        assert!(
            !format!("{up:?}").contains("SECRET"),
            "{case}: key leaked in Debug"
        );

        let body: Value = serde_json::from_slice(req.body()).unwrap();
        assert_same_fields(&case, "request", &normalize_client_request(original), &body);
    }
}

#[test]
fn requests_match_the_spec() {
    switchyard_spec_check::require_specs!();
    for (case, _, bytes) in cases_with("request.json") {
        let original = json(&bytes);
        assert_valid(Api::OpenAi, REQ, &original);
        let canonical = OpenAiServer.parse_request(None, &bytes).unwrap();
        let up = OpenAi.build_request(&canonical, &target("gpt-4o")).unwrap();
        let body: Value = serde_json::from_slice(up.request.body()).unwrap();
        assert_valid(Api::OpenAi, REQ, &body);
        assert_eq!(
            unknown_keys(Api::OpenAi, REQ, &body),
            Vec::<String>::new(),
            "{case}: unknown keys in what we send"
        );
    }
}

#[test]
fn responses_parse_then_encode_round_trip() {
    let cases = cases_with("response.json");
    assert!(cases.len() >= 10);
    for (case, dir, bytes) in cases {
        let canonical = OpenAi
            .parse_response(&bytes)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        snapshot(&dir, "canonical_response", &canonical);
        let encoded: Value =
            serde_json::from_slice(&OpenAiServer.encode_response(&canonical)).unwrap();
        assert_same_fields(
            &case,
            "response",
            &normalize_upstream_response(json(&bytes)),
            &encoded,
        );
        // And back: the encoded form parses to the same canonical response (what the OpenAI
        // mock provider relies on), except `native` usage, which is now our own object.
        let mut again = OpenAi
            .parse_response(&serde_json::to_vec(&encoded).unwrap())
            .unwrap();
        let mut first = canonical.clone();
        for r in [&mut again, &mut first] {
            if let Some(u) = r.usage.as_mut() {
                u.native = None;
            }
        }
        assert_eq!(first, again, "{case}: canonical → native → canonical");
    }
}

#[test]
fn responses_match_the_spec() {
    switchyard_spec_check::require_specs!();
    for (case, _, bytes) in cases_with("response.json") {
        let canonical = OpenAi.parse_response(&bytes).unwrap();
        let encoded: Value =
            serde_json::from_slice(&OpenAiServer.encode_response(&canonical)).unwrap();
        if let Err(e) = switchyard_spec_check::check(Api::OpenAi, RESP, &encoded) {
            panic!("{case}: encoded response invalid: {e}");
        }
        assert_valid(Api::OpenAi, RESP, &json(&bytes));
    }
}

fn meta_of(events: &[StreamEvent]) -> StreamMeta {
    match &events[0] {
        StreamEvent::Start { id, model, created } => StreamMeta {
            id: id.clone(),
            model: model.clone(),
            created: *created,
        },
        other => panic!("first event must be Start, got {other:?}"),
    }
}

fn encode_events(events: &[StreamEvent], include_usage: bool) -> Vec<u8> {
    let mut enc = OpenAiStreamEncoder::new(meta_of(events), include_usage);
    let mut out = Vec::new();
    for e in events {
        enc.encode(e, &mut out);
    }
    enc.finish(&mut out);
    out
}

#[test]
fn streams_parse_identically_whole_and_byte_by_byte() {
    let cases = cases_with("stream.sse");
    assert!(cases.len() >= 5);
    for (case, dir, bytes) in cases {
        let whole = parse_stream(&bytes).unwrap_or_else(|e| panic!("{case}: {e}"));
        snapshot(&dir, "canonical_stream", &whole);
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        let bytewise = parse_stream_chunks(&chunks).unwrap();
        assert_eq!(whole, bytewise, "{case}: byte-by-byte");
        assert!(matches!(whole[0], StreamEvent::Start { .. }), "{case}");
        assert!(
            whole
                .iter()
                .any(|e| matches!(e, StreamEvent::Finish { .. })),
            "{case}: no Finish"
        );
    }
}

#[test]
fn streams_cut_before_done_are_interrupted() {
    for (case, _, bytes) in cases_with("stream.sse") {
        let text = std::str::from_utf8(&bytes).unwrap();
        let cut = text.find("data: [DONE]").expect("fixture ends with [DONE]");
        let err = parse_stream(&bytes[..cut]).unwrap_err();
        assert_eq!(err.class, ErrorClass::StreamInterrupted, "{case}");
        // Also cut in the middle of a frame.
        let err = parse_stream(&bytes[..cut / 2]).unwrap_err();
        assert_eq!(err.class, ErrorClass::StreamInterrupted, "{case}");
    }
}

#[test]
fn streams_round_trip_through_the_encoder() {
    for (case, _, bytes) in cases_with("stream.sse") {
        let events = parse_stream(&bytes).unwrap();
        let has_usage = events.iter().any(|e| matches!(e, StreamEvent::Usage(_)));
        let encoded = encode_events(&events, has_usage);
        assert!(encoded.ends_with(b"data: [DONE]\n\n"), "{case}");
        let again = parse_stream(&encoded).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(events, again, "{case}: stream → events → stream → events");
    }
}

#[test]
fn streams_match_the_spec_both_ways() {
    switchyard_spec_check::require_specs!();
    assert!(specs_dir().is_some());
    for (case, _, bytes) in cases_with("stream.sse") {
        for chunk in data_frames(&bytes) {
            if let Err(e) = switchyard_spec_check::check(Api::OpenAi, CHUNK, &chunk) {
                panic!("{case}: fixture chunk invalid: {e}\n{chunk}");
            }
        }
        let events = parse_stream(&bytes).unwrap();
        for include_usage in [false, true] {
            let encoded = encode_events(&events, include_usage);
            let frames = data_frames(&encoded);
            assert!(!frames.is_empty());
            for chunk in frames {
                if let Err(e) = switchyard_spec_check::check(Api::OpenAi, CHUNK, &chunk) {
                    panic!("{case}: encoded chunk invalid: {e}\n{chunk}");
                }
            }
        }
    }
}

#[test]
fn errors_are_classified_from_status_headers_and_body() {
    let expected: &[(&str, ErrorClass)] = &[
        ("error_auth", ErrorClass::Auth),
        ("error_context_length", ErrorClass::ContextLengthExceeded),
        ("error_insufficient_quota", ErrorClass::QuotaExhausted),
        ("error_overloaded", ErrorClass::Overloaded),
        (
            "error_rate_limit",
            ErrorClass::RateLimited {
                retry_after_ms: Some(2000),
            },
        ),
        ("error_server", ErrorClass::ServerError),
    ];
    let cases = cases_with("error.json");
    assert_eq!(cases.len(), expected.len());
    for (case, dir, bytes) in cases {
        let status: u16 = std::fs::read_to_string(dir.join("error.status"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut headers = http::HeaderMap::new();
        if let Ok(text) = std::fs::read_to_string(dir.join("error.headers")) {
            for line in text.lines().filter(|l| !l.is_empty()) {
                let (k, v) = line.split_once(':').unwrap();
                headers.insert(
                    http::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                    v.trim().parse().unwrap(),
                );
            }
        }
        let err = OpenAi.classify_error(
            http::StatusCode::from_u16(status).unwrap(),
            &headers,
            &bytes,
        );
        snapshot(&dir, "canonical_error", &err);
        let want = expected
            .iter()
            .find(|(n, _)| *n == case)
            .unwrap_or_else(|| panic!("no expectation for {case}"))
            .1;
        assert_eq!(err.class, want, "{case}");
        assert_eq!(err.status, Some(status));
        assert!(err.raw_body.is_some());
        let native = json(&bytes);
        assert_eq!(err.message, native["error"]["message"].as_str().unwrap());
    }
}

#[test]
fn stream_parser_ignores_frames_after_done() {
    let mut p = OpenAiStreamParser::new();
    let mut out = Vec::new();
    p.feed_data("[DONE]", &mut out).unwrap();
    assert!(p.is_done());
    p.feed_data("{not json", &mut out).unwrap();
    assert!(out.is_empty());
    p.finish(&mut out).unwrap();
}
