//! Data-driven checks over `fixtures/anthropic/<case>/`. One `check` per case runs every
//! direction the case has files for; canonical forms are insta snapshots beside the fixtures.
//!
//! - `request.json`: native request as we send it. Server parse → canonical (snapshot
//!   `request`) → provider build must give the same JSON back, key by key.
//! - `canonical_request.json`: canonical input whose build must equal `request.json`
//!   (snapshot `build_warnings`).
//! - `response.json`: provider parse → canonical (snapshot `response`) → server encode, which
//!   must carry the same id, model, stop reason, blocks and token counts and parse back equal.
//! - `stream.sse`: replayed whole and byte by byte (snapshot `stream`); a complete stream is
//!   re-encoded by the server side and must parse back to the same events; every proper prefix
//!   must end in `StreamInterrupted`.
//! - `errors/*.json`: `{status, headers, body}` → classified (snapshot `errors/errors`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::{json, Value};
use switchyard_anthropic::{Anthropic, AnthropicServer};
use switchyard_core::{
    ChatRequest, ChatResponse, ErrorClass, Provider, ServerSide, StreamEvent, UnsupportedPolicy,
};

fn snapshot(dir: &Path, name: &str, value: &Value) {
    insta::with_settings!({
        snapshot_path => dir,
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_json_snapshot!(name, value);
    });
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Equal JSON objects, reported key by key so a failure names the field.
fn assert_same_keys(case: &str, what: &str, got: &Value, want: &Value) {
    let (Some(g), Some(w)) = (got.as_object(), want.as_object()) else {
        assert_eq!(got, want, "{case}: {what}");
        return;
    };
    for (k, v) in w {
        assert_eq!(g.get(k), Some(v), "{case}: {what}: field `{k}` differs");
    }
    for k in g.keys() {
        assert!(w.contains_key(k), "{case}: {what}: unexpected field `{k}`");
    }
}

fn case_dirs() -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(fixtures_root())
        .expect("fixtures/anthropic exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "errors"))
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_fixture_case() {
    let dirs = case_dirs();
    assert!(dirs.len() >= 15, "fixture cases went missing: {dirs:?}");
    for dir in dirs {
        check(&dir);
    }
}

fn check(dir: &Path) {
    let case = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("?")
        .to_string();
    let mut checked = 0;
    if dir.join("request.json").exists() {
        check_request(&case, dir);
        checked += 1;
    }
    if dir.join("response.json").exists() {
        check_response(&case, dir);
        checked += 1;
    }
    if dir.join("stream.sse").exists() {
        check_stream(&case, dir);
        checked += 1;
    }
    assert!(checked > 0, "{case}: no fixture files");
}

fn check_request(case: &str, dir: &Path) {
    let native = read_json(&dir.join("request.json"));
    spec_valid("CreateMessageParams", &native);
    let bytes = serde_json::to_vec(&native).expect("json");
    let canonical = AnthropicServer
        .parse_request(None, &bytes)
        .unwrap_or_else(|e| panic!("{case}: server parse failed: {e}"));
    snapshot(
        dir,
        "request",
        &serde_json::to_value(&canonical).expect("json"),
    );

    let (_, rebuilt) = build(&canonical).unwrap_or_else(|e| panic!("{case}: build failed: {e}"));
    assert_same_keys(case, "native → canonical → native", &rebuilt, &native);

    let canonical_path = dir.join("canonical_request.json");
    if canonical_path.exists() {
        let input: ChatRequest =
            serde_json::from_value(read_json(&canonical_path)).expect("canonical request");
        let (up, body) = build(&input).unwrap_or_else(|e| panic!("{case}: build failed: {e}"));
        assert_same_keys(case, "canonical_request → native", &body, &native);
        snapshot(dir, "build_warnings", &json!(up.warnings));
    }
}

fn check_response(case: &str, dir: &Path) {
    let native = read_json(&dir.join("response.json"));
    let parsed = Anthropic
        .parse_response(&serde_json::to_vec(&native).expect("json"))
        .unwrap_or_else(|e| panic!("{case}: parse failed: {e}"));
    snapshot(
        dir,
        "response",
        &serde_json::to_value(&parsed).expect("json"),
    );

    let choice = &parsed.choices[0];
    assert_eq!(
        choice.native_finish_reason.as_deref(),
        native["stop_reason"].as_str(),
        "{case}: native stop reason kept verbatim"
    );
    assert_eq!(
        parsed
            .usage
            .as_ref()
            .and_then(|u| u.native.as_ref())
            .map(|n| n.to_value()),
        Some(native["usage"].clone())
    );

    let encoded: Value =
        serde_json::from_slice(&AnthropicServer.encode_response(&parsed)).expect("encoded JSON");
    spec_valid("Message", &encoded);
    for key in ["id", "type", "role", "model", "stop_reason"] {
        assert_eq!(
            encoded[key], native[key],
            "{case}: `{key}` after re-encoding"
        );
    }
    for key in [
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "cache_creation",
        "service_tier",
    ] {
        assert_eq!(
            encoded["usage"][key], native["usage"][key],
            "{case}: usage.{key} after re-encoding"
        );
    }
    // Blocks the canonical model keeps: thinking (text and signature), redacted thinking,
    // text, tool_use (id, name, input).
    let kept = |v: &Value| -> Vec<Value> {
        v["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| match b["type"].as_str() {
                Some("text") => Some(json!({"text": b["text"]})),
                Some("thinking") => {
                    Some(json!({"thinking": b["thinking"], "signature": b["signature"]}))
                }
                Some("redacted_thinking") => Some(json!({"data": b["data"]})),
                Some("tool_use") => {
                    Some(json!({"id": b["id"], "name": b["name"], "input": b["input"]}))
                }
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        kept(&encoded),
        kept(&native),
        "{case}: content blocks after re-encoding"
    );

    let reparsed = Anthropic
        .parse_response(&serde_json::to_vec(&encoded).expect("json"))
        .expect("re-encoded response parses");
    assert_eq!(
        strip_native(reparsed),
        strip_native(parsed),
        "{case}: canonical round trip"
    );
}

fn strip_native(mut r: ChatResponse) -> ChatResponse {
    if let Some(u) = r.usage.as_mut() {
        u.native = None;
    }
    r
}

fn check_stream(case: &str, dir: &Path) {
    let bytes = std::fs::read(dir.join("stream.sse")).expect("stream.sse");
    let (events, result) = replay_whole(&bytes);
    let (bytewise, bytewise_result) = replay(bytes.chunks(1));
    assert_eq!(bytewise, events, "{case}: byte-by-byte replay differs");
    assert_eq!(
        bytewise_result, result,
        "{case}: byte-by-byte result differs"
    );

    let error = result
        .as_ref()
        .err()
        .map(|e| json!({"class": e.class, "provider_code": e.provider_code, "message": e.message}));
    snapshot(
        dir,
        "stream",
        &json!({"events": serde_json::to_value(&events).expect("json"), "error": error}),
    );

    match &result {
        Ok(()) => {
            assert!(
                matches!(events.last(), Some(StreamEvent::Usage(_))),
                "{case}: a complete stream ends with usage"
            );
            let encoded = encode_stream(&events, None);
            spec_valid_stream(&encoded);
            let (again, again_result) = replay_whole(&encoded);
            assert_eq!(again_result, Ok(()), "{case}: re-encoded stream incomplete");
            assert_eq!(
                without_native(&again),
                without_native(&events),
                "{case}: stream round trip"
            );
        }
        Err(e) => {
            let encoded = encode_stream(&events, Some(e));
            spec_valid_stream(&encoded);
            let (again, again_result) = replay_whole(&encoded);
            assert_eq!(again, events, "{case}: events before the error");
            assert_eq!(again_result.map_err(|e| e.class), Err(e.class));
        }
    }

    // Every cut before the terminal event must read as interrupted, never as complete.
    let text = String::from_utf8(bytes.clone()).expect("utf-8");
    let ends: Vec<usize> = text.match_indices("\n\n").map(|(i, _)| i + 2).collect();
    for &end in &ends[..ends.len().saturating_sub(1)] {
        let (_, r) = replay_whole(&bytes[..end]);
        let class = r.expect_err("cut stream must fail").class;
        if result.is_ok() {
            assert_eq!(
                class,
                ErrorClass::StreamInterrupted,
                "{case}: cut at byte {end}"
            );
        }
    }
}

#[test]
fn every_error_fixture() {
    let dir = fixtures_root().join("errors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("errors dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let expected: BTreeMap<&str, ErrorClass> = [
        ("api_error_500", ErrorClass::ServerError),
        ("auth_401", ErrorClass::Auth),
        ("billing_402", ErrorClass::QuotaExhausted),
        ("credit_low_400", ErrorClass::QuotaExhausted),
        ("html_502", ErrorClass::ServerError),
        ("invalid_400", ErrorClass::InvalidRequest),
        ("not_found_404", ErrorClass::NotFound),
        ("overloaded_529", ErrorClass::Overloaded),
        ("permission_403", ErrorClass::PermissionDenied),
        ("prompt_too_long_400", ErrorClass::ContextLengthExceeded),
        (
            "rate_limited_429",
            ErrorClass::RateLimited {
                retry_after_ms: Some(17_000),
            },
        ),
        ("timeout_504", ErrorClass::Timeout),
        ("too_large_413", ErrorClass::PayloadTooLarge),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        files.len(),
        expected.len(),
        "error fixtures and table disagree"
    );

    let mut all = serde_json::Map::new();
    for path in files {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_string();
        let fixture = read_json(&path);
        let status = StatusCode::from_u16(fixture["status"].as_u64().expect("status") as u16)
            .expect("status");
        let mut headers = HeaderMap::new();
        for (k, v) in fixture["headers"].as_object().expect("headers") {
            headers.insert(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v.as_str().expect("str")).expect("value"),
            );
        }
        let body = match &fixture["body"] {
            Value::String(s) => s.clone().into_bytes(),
            v => {
                if v["error"]["type"] != "request_too_large" {
                    spec_valid("ErrorResponse", v);
                }
                serde_json::to_vec(v).expect("json")
            }
        };
        let err = Anthropic.classify_error(status, &headers, &body);
        assert_eq!(err.class, expected[name.as_str()], "{name}");
        assert_eq!(err.status, Some(status.as_u16()), "{name}: status kept");
        assert!(err.raw_body.is_some(), "{name}: raw body kept");

        // The server side writes the same class back, and our provider reads it the same way.
        let (s, b) = AnthropicServer.encode_error(&err);
        let written: Value = serde_json::from_slice(&b).expect("error JSON");
        if written["error"]["type"] != "request_too_large" {
            spec_valid("ErrorResponse", &written);
        }
        let again =
            Anthropic.classify_error(StatusCode::from_u16(s).expect("status"), &headers, &b);
        assert_eq!(again.class, err.class, "{name}: encode_error round trip");

        all.insert(
            name,
            json!({
                "class": err.class,
                "status": err.status,
                "provider_code": err.provider_code,
                "message": err.message,
                "encoded_status": s,
            }),
        );
    }
    snapshot(&dir, "errors", &Value::Object(all));
}

#[test]
fn drop_policy_changes_nothing_for_supported_fixtures() {
    // Every fixture request is fully supported, so Drop must not add warnings.
    for dir in case_dirs() {
        let path = dir.join("request.json");
        if !path.exists() {
            continue;
        }
        let native = read_json(&path);
        let canonical = AnthropicServer
            .parse_request(None, &serde_json::to_vec(&native).expect("json"))
            .expect("parse");
        let (up, body) = build_with(&canonical, UnsupportedPolicy::Drop).expect("build");
        assert!(
            up.warnings.is_empty(),
            "{}: {:?}",
            dir.display(),
            up.warnings
        );
        assert_eq!(body, native);
    }
}
