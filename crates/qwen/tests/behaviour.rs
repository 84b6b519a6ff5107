//! Behaviour that fixtures do not show: thinking without streaming, the effort ↔ budget
//! mapping, safety policies.

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_core::{
    ChatRequest, ErrorClass, Message, Provider, ReasoningEffort, Role, ServerSide, TranslateError,
    UnsupportedPolicy, UpstreamError,
};
use switchyard_qwen::{Qwen, QwenServer};

fn request() -> ChatRequest {
    ChatRequest {
        model: "alias".into(),
        messages: vec![Message::text(Role::User, "hi")],
        ..ChatRequest::default()
    }
}

fn body(
    r: &ChatRequest,
    policy: UnsupportedPolicy,
) -> Result<(Value, Vec<String>), TranslateError> {
    let up = Qwen.build_request(r, &target("qwen3-32b", policy))?;
    Ok((
        serde_json::from_slice(up.request.body()).unwrap(),
        up.warnings,
    ))
}

#[test]
fn thinking_without_streaming_is_rejected_or_turned_off_with_a_warning() {
    let mut r = request();
    r.reasoning_effort = Some(ReasoningEffort::High);
    let err = body(&r, UnsupportedPolicy::Reject).unwrap_err();
    assert!(
        matches!(
            err,
            TranslateError::Unsupported {
                provider: "qwen",
                ..
            }
        ),
        "{err}"
    );
    let (b, w) = body(&r, UnsupportedPolicy::Drop).unwrap();
    assert_eq!(b["enable_thinking"], json!(false));
    assert!(b.get("thinking_budget").is_none() && b.get("reasoning_effort").is_none());
    assert_eq!(w.len(), 1);
}

#[test]
fn streaming_efforts_map_to_budgets_and_back() {
    for (effort, budget) in [
        (ReasoningEffort::Minimal, Some(512)),
        (ReasoningEffort::Low, Some(2048)),
        (ReasoningEffort::Medium, Some(8192)),
        (ReasoningEffort::High, None),
    ] {
        let mut r = request();
        r.stream = true;
        r.reasoning_effort = Some(effort);
        let (b, w) = body(&r, UnsupportedPolicy::Reject).unwrap();
        assert!(w.is_empty());
        assert_eq!(b["enable_thinking"], json!(true));
        assert_eq!(b.get("thinking_budget").and_then(Value::as_u64), budget);
        let parsed = QwenServer
            .parse_request(None, &serde_json::to_vec(&b).unwrap())
            .unwrap();
        assert_eq!(parsed.reasoning_effort, Some(effort));
    }
    // A streaming request that says nothing leaves the model's default alone.
    let mut r = request();
    r.stream = true;
    assert!(body(&r, UnsupportedPolicy::Reject)
        .unwrap()
        .0
        .get("enable_thinking")
        .is_none());
}

#[test]
fn server_side_rejects_bad_thinking_fields() {
    let e: UpstreamError = QwenServer
        .parse_request(
            None,
            br#"{"model":"q","messages":[{"role":"user","content":"x"}],"enable_thinking":"yes"}"#,
        )
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::InvalidRequest);
    let e = QwenServer
        .parse_request(None, br#"{"model":"q","messages":[{"role":"user","content":"x"}],"enable_thinking":true,"thinking_budget":0}"#)
        .unwrap_err();
    assert!(e.message.contains("thinking_budget"));
}

#[test]
fn mock_errors_classify_back_to_their_class() {
    for class in [
        ErrorClass::QuotaExhausted,
        ErrorClass::ContentFiltered,
        ErrorClass::RateLimited {
            retry_after_ms: None,
        },
        ErrorClass::Auth,
        ErrorClass::NotFound,
        ErrorClass::InvalidRequest,
        ErrorClass::ServerError,
        ErrorClass::Overloaded,
    ] {
        let (status, body) = QwenServer.encode_error(&UpstreamError::new(class, "boom"));
        let back = Qwen.classify_error(
            http::StatusCode::from_u16(status).unwrap(),
            &http::HeaderMap::new(),
            &body,
        );
        assert_eq!(
            back.class,
            class,
            "{status} {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(back.message, "boom");
    }
}

#[test]
fn files_and_audio_are_unsupported_or_dropped_with_a_warning() {
    switchyard_testkit::assert_files_and_audio_refused(body);
}
