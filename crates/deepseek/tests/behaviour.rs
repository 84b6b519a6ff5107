//! Behaviour that fixtures do not show: insufficient_system_resource, unsupported fields under
//! both policies, effort approximation.

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_core::{
    ChatRequest, ErrorClass, Message, Provider, ReasoningEffort, ResponseFormat, Role,
    TranslateError, UnsupportedPolicy,
};
use switchyard_deepseek::DeepSeek;

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
    let up = DeepSeek.build_request(r, &target("deepseek-chat", policy))?;
    Ok((
        serde_json::from_slice(up.request.body()).unwrap(),
        up.warnings,
    ))
}

#[test]
fn insufficient_system_resource_is_overloaded_in_responses_and_streams() {
    let e = DeepSeek
        .parse_response(br#"{"id":"x","object":"chat.completion","created":1,"model":"deepseek-chat","choices":[{"index":0,"message":{"role":"assistant","content":"cut"},"finish_reason":"insufficient_system_resource"}]}"#)
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Overloaded);
    assert!(e.raw_body.is_some());
    let stream = b"data: {\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"cut\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"insufficient_system_resource\"}]}\n\ndata: [DONE]\n\n";
    let e = parse_stream(stream).unwrap_err();
    assert_eq!(e.class, ErrorClass::Overloaded);
}

#[test]
fn several_choices_seed_and_json_schema_are_rejected_or_dropped() {
    let mut r = request();
    r.n = Some(2);
    r.seed = Some(1);
    r.response_format = Some(ResponseFormat::JsonSchema {
        name: "x".into(),
        description: None,
        schema: json!({"type": "object"}),
        strict: None,
    });
    assert!(matches!(
        body(&r, UnsupportedPolicy::Reject),
        Err(TranslateError::Unsupported {
            provider: "deepseek",
            ..
        })
    ));
    let (b, warnings) = body(&r, UnsupportedPolicy::Drop).unwrap();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(b.get("n").is_none() && b.get("seed").is_none());
    assert_eq!(b["response_format"], json!({"type": "json_object"}));
}

#[test]
fn effort_levels_map_to_the_thinking_switch() {
    let mut r = request();
    r.reasoning_effort = Some(ReasoningEffort::None);
    let (b, w) = body(&r, UnsupportedPolicy::Reject).unwrap();
    assert_eq!(b["thinking"], json!({"type": "disabled"}));
    assert!(w.is_empty() && b.get("reasoning_effort").is_none());
    r.reasoning_effort = Some(ReasoningEffort::Low);
    let (b, w) = body(&r, UnsupportedPolicy::Reject).unwrap();
    assert_eq!(b["thinking"], json!({"type": "enabled"}));
    assert_eq!(w.len(), 1, "an approximated effort is never silent");
}

#[test]
fn reasoning_before_the_last_user_turn_is_not_sent_back() {
    let mut r = request();
    let mut call = Message::text(Role::Assistant, "");
    call.tool_calls = vec![switchyard_core::ToolCall {
        id: "c1".into(),
        name: "f".into(),
        arguments: "{}".into(),
    }];
    call.reasoning = Some("old thoughts".into());
    let mut result = Message::text(Role::Tool, "ok");
    result.tool_call_id = Some("c1".into());
    r.messages
        .extend([call, result, Message::text(Role::User, "next")]);
    let (b, _) = body(&r, UnsupportedPolicy::Reject).unwrap();
    assert!(b["messages"][1].get("reasoning_content").is_none());
}

#[test]
fn safety_policies_are_rejected_or_dropped() {
    let mut r = request();
    r.safety = Some(switchyard_core::SafetyPolicy {
        settings: vec![switchyard_core::SafetySetting {
            category: switchyard_core::HarmCategory::Harassment,
            threshold: switchyard_core::SafetyThreshold::BlockLowAndAbove,
        }],
    });
    assert!(body(&r, UnsupportedPolicy::Reject).is_err());
    assert_eq!(body(&r, UnsupportedPolicy::Drop).unwrap().1.len(), 1);
}

#[test]
fn signed_reasoning_blocks_never_reach_deepseek() {
    // A tool loop Anthropic started (signed blocks) that DeepSeek continues after a failover:
    // it gets the text as `reasoning_content`, which its thinking mode needs, and nothing else.
    let mut r = request();
    let mut call = Message::text(Role::Assistant, "");
    call.content = None;
    call.tool_calls = vec![switchyard_core::ToolCall {
        id: "toolu_1".into(),
        name: "f".into(),
        arguments: "{}".into(),
    }];
    call.reasoning = Some("thoughts".into());
    call.reasoning_blocks = vec![
        switchyard_core::ReasoningBlock::Text {
            text: "thoughts".into(),
            signature: Some("c2ln".into()),
            format: Some("anthropic-claude-v1".into()),
        },
        switchyard_core::ReasoningBlock::Encrypted {
            data: "ZGF0YQ==".into(),
            format: Some("anthropic-claude-v1".into()),
        },
    ];
    let mut result = Message::text(Role::Tool, "ok");
    result.tool_call_id = Some("toolu_1".into());
    r.messages.extend([call, result]);
    let (b, w) = body(&r, UnsupportedPolicy::Reject).unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(
        b["messages"][1],
        json!({"role": "assistant", "reasoning_content": "thoughts", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ]})
    );
    assert!(!serde_json::to_string(&b).unwrap().contains("c2ln"));

    // Nor does the DeepSeek mock write them: DeepSeek's reasoning is text only.
    let response: switchyard_core::ChatResponse = serde_json::from_value(json!({
        "id": "r", "model": "deepseek-chat", "created": 1,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {
            "content": "ok", "reasoning": "thoughts",
            "reasoning_blocks": [{"type": "encrypted", "data": "ZGF0YQ=="}],
        }}],
    }))
    .unwrap();
    let encoded: Value = serde_json::from_slice(&switchyard_core::ServerSide::encode_response(
        &switchyard_deepseek::DeepSeekServer,
        &response,
    ))
    .unwrap();
    assert_eq!(
        encoded["choices"][0]["message"]["reasoning_content"],
        "thoughts"
    );
    assert!(encoded["choices"][0]["message"]
        .get("reasoning_details")
        .is_none());
}

#[test]
fn files_and_audio_are_unsupported_or_dropped_with_a_warning() {
    switchyard_testkit::assert_files_and_audio_refused(body);
}
