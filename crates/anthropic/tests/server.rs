//! Server side: request parsing errors, inverse mappings, encoding canonical values that came
//! from other providers.

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_anthropic::AnthropicServer;
use switchyard_core::{
    AssistantMessage, ChatResponse, Choice, ErrorClass, FinishReason, ReasoningEffort, ServerSide,
    ToolCall, UpstreamError, Usage,
};

fn parse(v: Value) -> Result<switchyard_core::ChatRequest, UpstreamError> {
    AnthropicServer.parse_request(None, &serde_json::to_vec(&v).expect("json"))
}

#[test]
fn bad_requests_are_invalid_request_with_a_path() {
    let e = AnthropicServer.parse_request(None, b"{nope").unwrap_err();
    assert_eq!(e.class, ErrorClass::InvalidRequest);
    assert_eq!(e.status, Some(400));

    let e = parse(json!({"model": "m", "messages": []})).unwrap_err();
    assert!(e.message.contains("max_tokens"), "{}", e.message);

    let e = parse(
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}),
    )
    .unwrap_err();
    assert!(e.message.contains("messages[0]"), "{}", e.message);

    let e = parse(json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}]}]}))
        .unwrap_err();
    assert!(
        e.message.contains("messages[0].content[0]"),
        "{}",
        e.message
    );

    let e = parse(
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
    )
    .unwrap_err();
    assert!(e.message.contains("tools[0]"), "{}", e.message);
}

#[test]
fn unusual_native_settings_survive_in_extra() {
    let native = json!({"model": "m", "max_tokens": 20000, "messages": [{"role": "user", "content": "x"}],
        "thinking": {"type": "enabled", "budget_tokens": 5000}, "top_k": 3,
        "output_config": {"effort": "low"}, "service_tier": "auto"});
    let req = parse(native.clone()).expect("parses");
    assert_eq!(req.reasoning_effort, None);
    assert_eq!(req.extra["thinking"], native["thinking"]);
    assert_eq!(req.extra["top_k"], 3);
    let (_, rebuilt) = build(&req).expect("builds");
    let mut want = native;
    want["model"] = json!(MODEL);
    assert_eq!(rebuilt, want);

    let req = parse(
        json!({"model": "m", "max_tokens": 20000, "messages": [{"role": "user", "content": "x"}],
        "thinking": {"type": "enabled", "budget_tokens": 16384}}),
    )
    .expect("parses");
    assert_eq!(req.reasoning_effort, Some(ReasoningEffort::High));
}

fn response(
    message: AssistantMessage,
    finish: FinishReason,
    native: Option<&str>,
    usage: Usage,
) -> ChatResponse {
    ChatResponse {
        id: "chatcmpl-1".into(),
        model: "gpt-4o".into(),
        created: 1_700_000_000,
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: Some(finish),
            native_finish_reason: native.map(str::to_string),
            logprobs: None,
        }],
        usage: Some(usage),
        system_fingerprint: None,
        service_tier: None,
        warnings: vec![],
    }
}

#[test]
fn encodes_responses_from_other_providers() {
    let usage = Usage {
        input_tokens: 100,
        output_tokens: 30,
        total_tokens: 130,
        cached_input_tokens: Some(60),
        reasoning_tokens: Some(10),
        native: Some(switchyard_core::NativeJson::from_value(
            &json!({"prompt_tokens": 100, "completion_tokens": 30}),
        )),
        ..Usage::default()
    };
    let message = AssistantMessage {
        content: Some("calling".into()),
        tool_calls: vec![ToolCall {
            id: "call_1".into(),
            name: "f".into(),
            arguments: "{\"x\":1}".into(),
        }],
        ..AssistantMessage::default()
    };
    let body: Value = serde_json::from_slice(&AnthropicServer.encode_response(&response(
        message,
        FinishReason::ToolCalls,
        Some("tool_calls"),
        usage,
    )))
    .expect("json");
    spec_valid("Message", &body);
    assert_eq!(
        body["stop_reason"], "tool_use",
        "OpenAI's native reason is not Anthropic's"
    );
    assert_eq!(body["usage"]["input_tokens"], 40);
    assert_eq!(body["usage"]["cache_read_input_tokens"], 60);
    assert_eq!(body["usage"]["cache_creation_input_tokens"], Value::Null);
    assert_eq!(body["content"][1]["input"], json!({"x": 1}));
    assert_eq!(
        body["content"][0],
        json!({"type": "text", "text": "calling", "citations": null})
    );

    for (finish, want) in [
        (FinishReason::Stop, "end_turn"),
        (FinishReason::Length, "max_tokens"),
        (FinishReason::ContentFilter, "refusal"),
        (FinishReason::Other, "end_turn"),
    ] {
        let body: Value = serde_json::from_slice(&AnthropicServer.encode_response(&response(
            AssistantMessage {
                content: Some("x".into()),
                ..AssistantMessage::default()
            },
            finish,
            None,
            Usage::default(),
        )))
        .expect("json");
        assert_eq!(body["stop_reason"], want, "{finish:?}");
    }
}

#[test]
fn encode_error_statuses() {
    for (class, status, kind) in [
        (ErrorClass::Overloaded, 529, "overloaded_error"),
        (
            ErrorClass::RateLimited {
                retry_after_ms: Some(1000),
            },
            429,
            "rate_limit_error",
        ),
        (
            ErrorClass::ContextLengthExceeded,
            400,
            "invalid_request_error",
        ),
        (ErrorClass::Auth, 401, "authentication_error"),
        (ErrorClass::QuotaExhausted, 402, "billing_error"),
        (ErrorClass::ServerError, 500, "api_error"),
        (ErrorClass::Timeout, 504, "timeout_error"),
        (ErrorClass::PayloadTooLarge, 413, "request_too_large"),
    ] {
        let (s, body) = AnthropicServer.encode_error(&UpstreamError::new(class, "boom"));
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(s, status, "{class:?}");
        assert_eq!(v["error"]["type"], kind, "{class:?}");
        if kind != "request_too_large" {
            spec_valid("ErrorResponse", &v);
        }
        if class == ErrorClass::ContextLengthExceeded {
            assert!(v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("prompt is too long"));
        }
    }
}

#[test]
fn spec_checks_bite() {
    switchyard_spec_check::require_specs!();
    use switchyard_spec_check::{assert_invalid, Api};
    // The validator must reject what we take care to avoid, or the checks above prove nothing.
    assert_invalid(
        Api::Anthropic,
        "CreateMessageParams",
        &json!({"model": "m", "messages": []}),
    );
    assert_invalid(
        Api::Anthropic,
        "CreateMessageParams",
        &json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}),
    );
    let ok: Value = serde_json::from_slice(&AnthropicServer.encode_response(&response(
        AssistantMessage {
            content: Some("x".into()),
            ..AssistantMessage::default()
        },
        FinishReason::Stop,
        None,
        Usage::default(),
    )))
    .expect("json");
    spec_valid("Message", &ok);
    let mut missing_null = ok.clone();
    missing_null
        .as_object_mut()
        .expect("object")
        .remove("stop_details");
    assert_invalid(Api::Anthropic, "Message", &missing_null);
}
