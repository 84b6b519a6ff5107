//! Data-driven checks over `fixtures/gemini/<case>/`: one driver per direction.
//!
//! - `chat_request.json` (canonical, hand-written) → `request.json` (what we send; written on
//!   first run outside CI, then compared), strict spec check, lowerCamelCase, and native →
//!   canonical (server side) → native identical.
//! - `response.json` → canonical snapshot `response.snap`; round trips both ways.
//! - `stream.sse` → events snapshot `stream.snap`; whole = byte by byte = random splits; a cut
//!   stream is `StreamInterrupted`; re-encoded by the server side it parses to the same events.
//! - `errors/error-<status>-*.{json,txt}` → classification snapshot; re-encoded it classifies
//!   the same.

mod common;

use common::*;
use http::{HeaderMap, StatusCode};
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use switchyard_core::{
    ChatRequest, ChatResponse, ErrorClass, Provider, ServerSide, StreamEvent, StreamMeta,
};
use switchyard_gemini::{Gemini, GeminiServer};
use switchyard_spec_check::{assert_valid_gemini, check_gemini_error, specs_dir};

fn specs() -> bool {
    specs_dir().is_some()
}

#[test]
fn requests() {
    let mut seen = 0;
    for dir in cases() {
        let input = dir.join("chat_request.json");
        if !input.exists() {
            continue;
        }
        seen += 1;
        let case = name(&dir);
        let canon: ChatRequest = serde_json::from_value(read_json(&input)).unwrap();
        let up = Gemini
            .build_request(&canon, &target(&canon.model))
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert!(up.warnings.is_empty(), "{case}: {:?}", up.warnings);
        let body: Value = serde_json::from_slice(up.request.body()).unwrap();
        assert_camel_case(&body, &case);
        if specs() {
            assert_valid_gemini(REQ, &body);
        }
        assert!(
            body["contents"].as_array().is_some_and(|c| !c.is_empty()),
            "{case}: contents is required"
        );

        let expected_path = dir.join("request.json");
        if !expected_path.exists() && std::env::var("CI").as_deref() != Ok("true") {
            let text = serde_json::to_string_pretty(&body).unwrap() + "\n";
            std::fs::write(&expected_path, text).unwrap();
            panic!("{case}: wrote new request.json; review it and run again");
        }
        assert_eq!(
            body,
            read_json(&expected_path),
            "{case}: request.json differs"
        );

        // native → canonical (server side) → native: nothing lost that we send.
        let back = GeminiServer
            .parse_request(Some(&canon.model), up.request.body())
            .unwrap_or_else(|e| panic!("{case}: server parse: {e}"));
        let back = ChatRequest {
            stream: canon.stream,
            ..back
        };
        let again = Gemini.build_request(&back, &target(&canon.model)).unwrap();
        let again: Value = serde_json::from_slice(again.request.body()).unwrap();
        assert_eq!(again, body, "{case}: native → canonical → native differs");
    }
    assert!(seen >= 10, "only {seen} request fixtures");
}

/// The fields of a native response that the canonical model carries, in one normal form.
fn normal_form(native: &Value) -> Value {
    let candidates: Vec<Value> = native["candidates"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(pos, c)| {
            let mut parts: Vec<Value> = Vec::new();
            let mut calls = 0;
            for p in c["content"]["parts"].as_array().map(Vec::as_slice).unwrap_or_default() {
                if let Some(t) = p["text"].as_str() {
                    let thought = p["thought"].as_bool().unwrap_or(false);
                    match parts.last_mut() {
                        Some(last) if last["thought"] == json!(thought) && last.get("text").is_some() => {
                            let joined = format!("{}{t}", last["text"].as_str().unwrap());
                            last["text"] = json!(joined);
                        }
                        _ => parts.push(json!({"text": t, "thought": thought})),
                    }
                }
                if let Some(fc) = p.get("functionCall") {
                    let id = fc["id"].as_str().map(str::to_string).unwrap_or(format!("call_{calls}"));
                    calls += 1;
                    parts.push(json!({"id": id, "name": fc["name"], "args": fc.get("args").cloned().unwrap_or(json!({})),
                                      "signature": p["thoughtSignature"]}));
                }
            }
            json!({
                "index": c["index"].as_u64().unwrap_or(pos as u64),
                "finishReason": c["finishReason"],
                "parts": parts,
            })
        })
        .collect();
    let u = &native["usageMetadata"];
    let count = |k: &str| u[k].as_u64().unwrap_or(0);
    json!({
        "responseId": native["responseId"],
        "modelVersion": native["modelVersion"],
        "candidates": candidates,
        "usage": [count("promptTokenCount"), count("candidatesTokenCount"), count("totalTokenCount"),
                  count("cachedContentTokenCount"), count("thoughtsTokenCount")],
    })
}

fn error_json(e: &switchyard_core::UpstreamError) -> Value {
    let mut v = serde_json::to_value(e).unwrap();
    assert!(e.raw_body.is_some(), "raw body kept");
    v.as_object_mut().unwrap().remove("raw_body");
    v
}

#[test]
fn responses() {
    let mut seen = 0;
    for dir in cases() {
        let path = dir.join("response.json");
        if !path.exists() {
            continue;
        }
        seen += 1;
        let case = name(&dir);
        let bytes = std::fs::read(&path).unwrap();
        let native: Value = serde_json::from_slice(&bytes).unwrap();
        if specs() {
            assert_valid_gemini(RESP, &native);
        }
        let parsed = Gemini.parse_response(&bytes);
        let shown = match &parsed {
            Ok(r) => json!({ "ok": r }),
            Err(e) => json!({ "err": error_json(e) }),
        };
        snapshot(&dir, "response", &shown);

        match parsed {
            Ok(resp) => {
                let encoded = GeminiServer.encode_response(&resp);
                let encoded_v: Value = serde_json::from_slice(&encoded).unwrap();
                assert_camel_case(&encoded_v, &case);
                if specs() {
                    assert_valid_gemini(RESP, &encoded_v);
                }
                assert_eq!(
                    normal_form(&encoded_v),
                    normal_form(&native),
                    "{case}: native → canonical → native differs"
                );
                let mut again: ChatResponse = Gemini.parse_response(&encoded).unwrap();
                let mut resp = resp;
                for r in [&mut again, &mut resp] {
                    if let Some(u) = r.usage.as_mut() {
                        u.native = None;
                    }
                }
                assert_eq!(
                    again, resp,
                    "{case}: canonical → native → canonical differs"
                );
            }
            Err(e) => {
                let (code, body) = GeminiServer.encode_error(&e);
                let again = Gemini.parse_response(&body);
                assert_eq!(code, 200, "{case}: blocked prompts are 200s");
                let again = again.expect_err("still an error");
                assert_eq!(again.class, e.class, "{case}");
                assert_eq!(again.provider_code, e.provider_code, "{case}");
            }
        }
    }
    assert!(seen >= 10, "only {seen} response fixtures");
}

fn stream_json(r: &Replay) -> Value {
    json!({
        "events": r.events,
        "end": match &r.end {
            Ok(()) => json!("complete"),
            Err(e) => error_json(e),
        },
    })
}

#[test]
fn streams() {
    let mut seen = 0;
    for dir in cases() {
        let path = dir.join("stream.sse");
        if !path.exists() {
            continue;
        }
        seen += 1;
        let case = name(&dir);
        let bytes = std::fs::read(&path).unwrap();
        check_frames(&case, &bytes, true);

        let whole = replay(&bytes, &[]);
        snapshot(&dir, "stream", &stream_json(&whole));
        let expected = stream_json(&whole);

        let every_byte: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(
            stream_json(&replay(&bytes, &every_byte)),
            expected,
            "{case}: byte by byte"
        );

        let mut runner = TestRunner::new(Config {
            cases: 48,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = proptest::collection::vec(0..=bytes.len(), 0..10);
        runner
            .run(&strategy, |cuts| {
                proptest::prop_assert_eq!(stream_json(&replay(&bytes, &cuts)), expected.clone());
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{case}: random splits: {e}"));

        if whole.end.is_ok() {
            // Without its last frame (the one with the finishReason) the stream is cut.
            let last = bytes[..bytes.len() - 4]
                .windows(4)
                .rposition(|w| w == b"\r\n\r\n")
                .map(|i| i + 4)
                .unwrap_or(0);
            let cut = replay(&bytes[..last], &[]);
            let err = cut.end.expect_err("cut stream must fail");
            assert_eq!(err.class, ErrorClass::StreamInterrupted, "{case}");
            // Cut inside the last frame: the same.
            let mid = replay(&bytes[..bytes.len() - 10], &[]);
            assert_eq!(
                mid.end.unwrap_err().class,
                ErrorClass::StreamInterrupted,
                "{case}"
            );
        }

        // Server side: the events re-encoded parse back to the same events.
        let (id, model) = match whole.events.first() {
            Some(StreamEvent::Start { id, model, .. }) => (id.clone(), model.clone()),
            _ => (String::new(), String::new()),
        };
        let mut enc = GeminiServer.stream_encoder(
            &ChatRequest::default(),
            StreamMeta {
                id,
                model,
                created: 0,
            },
        );
        let mut out = Vec::new();
        for e in &whole.events {
            enc.encode(e, &mut out);
        }
        match &whole.end {
            Ok(()) => enc.finish(&mut out),
            Err(e) => enc.error(e, &mut out),
        }
        check_frames(&case, &out, false);
        let again = replay(&out, &[]);
        assert_eq!(
            without_native(&again.events),
            without_native(&whole.events),
            "{case}: events → native stream → events differ"
        );
        match (&again.end, &whole.end) {
            (Ok(()), Ok(())) => {}
            (Err(a), Err(b)) => {
                assert_eq!(a.class, b.class, "{case}");
                assert_eq!(a.provider_code, b.provider_code, "{case}");
            }
            (a, b) => panic!("{case}: re-encoded stream ends {a:?}, original {b:?}"),
        }
    }
    assert!(seen >= 7, "only {seen} stream fixtures");
}

/// Every frame is a valid `GenerateContentResponse` or a Google error body.
fn check_frames(case: &str, bytes: &[u8], recorded: bool) {
    if !specs() {
        return;
    }
    for data in frames(bytes) {
        let v: Value = serde_json::from_str(&data).unwrap();
        if v.get("error").is_some() {
            check_gemini_error(&v).unwrap_or_else(|e| panic!("{case}: {e}"));
        } else {
            assert_valid_gemini(RESP, &v);
            if !recorded {
                assert_camel_case(&v, case);
            }
        }
    }
}

#[test]
fn errors() {
    let dir = fixtures().join("errors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json" || e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 8);
    for path in files {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let status: u16 = stem
            .strip_prefix("error-")
            .and_then(|s| s.split('-').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{stem}: name must be error-<status>[-what]"));
        let bytes = std::fs::read(&path).unwrap();
        if specs() && path.extension().is_some_and(|e| e == "json") {
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            check_gemini_error(&v).unwrap_or_else(|e| panic!("{stem}: {e}"));
        }
        let status = StatusCode::from_u16(status).unwrap();
        let e = Gemini.classify_error(status, &HeaderMap::new(), &bytes);
        assert_eq!(e.status, Some(status.as_u16()));
        snapshot(&dir, &stem, &error_json(&e));

        // The mock's error body classifies the same.
        let (code, body) = GeminiServer.encode_error(&e);
        let body_v: Value = serde_json::from_slice(&body).unwrap();
        if specs() {
            check_gemini_error(&body_v).unwrap_or_else(|err| panic!("{stem}: {err}"));
        }
        let again = Gemini.classify_error(
            StatusCode::from_u16(code).unwrap(),
            &HeaderMap::new(),
            &body,
        );
        assert_eq!(again.class, e.class, "{stem}: re-encoded error");
    }
}
