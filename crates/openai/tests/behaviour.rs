//! Behaviour that the fixtures do not pin down: builder policies, encoder framing, errors.

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_core::{
    ChatRequest, ChatResponse, ErrorClass, FinishReason, HarmCategory, Message, Provider, Role,
    SafetyPolicy, SafetySetting, SafetyThreshold, ServerSide, StreamEncoder, StreamEvent,
    StreamMeta, Target, TranslateError, UnsupportedPolicy, UpstreamError, Usage,
};
use switchyard_openai::{
    error_body, OpenAi, OpenAiServer, OpenAiStreamEncoder, OpenAiStreamParser,
};

fn hello(stream: bool) -> ChatRequest {
    ChatRequest {
        model: "alias".into(),
        messages: vec![Message::text(Role::User, "hi")],
        stream,
        ..ChatRequest::default()
    }
}

fn body_of(req: &ChatRequest, t: &Target<'_>) -> Value {
    let up = OpenAi.build_request(req, t).unwrap();
    serde_json::from_slice(up.request.body()).unwrap()
}

#[test]
fn stream_always_asks_upstream_for_usage() {
    let b = body_of(&hello(true), &target("gpt-4o"));
    assert_eq!(b["stream"], json!(true));
    assert_eq!(b["stream_options"], json!({"include_usage": true}));
    assert_eq!(b["model"], json!("gpt-4o"));
    let b = body_of(&hello(false), &target("gpt-4o"));
    assert!(b.get("stream").is_none() && b.get("stream_options").is_none());
}

#[test]
fn extra_keys_are_copied_but_never_override_modelled_ones() {
    let mut r = hello(false);
    r.max_output_tokens = Some(5);
    r.extra.insert("model".into(), json!("evil"));
    r.extra.insert("max_completion_tokens".into(), json!(999));
    r.extra.insert(
        "prediction".into(),
        json!({"type": "content", "content": "x"}),
    );
    let b = body_of(&r, &target("gpt-4o"));
    assert_eq!(b["model"], json!("gpt-4o"));
    assert_eq!(b["max_completion_tokens"], json!(5));
    assert_eq!(b["prediction"], json!({"type": "content", "content": "x"}));
}

#[test]
fn no_api_key_means_no_authorization_header() {
    let t = Target {
        api_key: None,
        ..target("m")
    };
    let up = OpenAi.build_request(&hello(false), &t).unwrap();
    assert!(up.request.headers().get("authorization").is_none());
}

#[test]
fn blocking_safety_policy_is_unsupported_or_dropped_with_a_warning() {
    let mut r = hello(false);
    r.safety = Some(SafetyPolicy {
        settings: vec![SafetySetting {
            category: HarmCategory::Harassment,
            threshold: SafetyThreshold::BlockOnlyHigh,
        }],
    });
    let err = OpenAi.build_request(&r, &target("m")).unwrap_err();
    assert!(matches!(
        err,
        TranslateError::Unsupported {
            provider: "openai",
            ..
        }
    ));
    assert_eq!(UpstreamError::from(err).class, ErrorClass::Unsupported);

    let t = Target {
        on_unsupported: UnsupportedPolicy::Drop,
        ..target("m")
    };
    let up = OpenAi.build_request(&r, &t).unwrap();
    assert_eq!(up.warnings.len(), 1);
    assert!(up.warnings[0].contains("safety"));
    let b: Value = serde_json::from_slice(up.request.body()).unwrap();
    assert!(b.get("safety_settings").is_none());

    // A policy that blocks nothing asks for nothing OpenAI lacks.
    r.safety.as_mut().unwrap().settings[0].threshold = SafetyThreshold::BlockNone;
    assert!(OpenAi
        .build_request(&r, &target("m"))
        .unwrap()
        .warnings
        .is_empty());
}

#[test]
fn front_door_reads_the_safety_extension() {
    let r = OpenAiServer
        .parse_request(
            None,
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"safety_settings":[{"category":"harassment","threshold":"block_only_high"}]}"#,
        )
        .unwrap();
    assert_eq!(
        r.safety.unwrap().settings,
        vec![SafetySetting {
            category: HarmCategory::Harassment,
            threshold: SafetyThreshold::BlockOnlyHigh
        }]
    );
    assert!(r.extra.is_empty());
}

fn meta() -> StreamMeta {
    StreamMeta {
        id: "chatcmpl-1".into(),
        model: "m".into(),
        created: 7,
    }
}

fn run(enc: &mut OpenAiStreamEncoder, events: &[StreamEvent]) -> String {
    let mut out = Vec::new();
    for e in events {
        enc.encode(e, &mut out);
    }
    enc.finish(&mut out);
    String::from_utf8(out).unwrap()
}

fn sample_events() -> Vec<StreamEvent> {
    vec![
        StreamEvent::Start {
            id: "chatcmpl-1".into(),
            model: "m".into(),
            created: 7,
        },
        StreamEvent::TextDelta {
            choice: 0,
            text: "Hi".into(),
        },
        StreamEvent::TextDelta {
            choice: 0,
            text: "!".into(),
        },
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::Other,
            native_reason: Some("end_turn".into()),
        },
        StreamEvent::Usage(Usage {
            input_tokens: 3,
            output_tokens: 2,
            total_tokens: 5,
            cached_input_tokens: Some(1),
            ..Usage::default()
        }),
    ]
}

#[test]
fn encoder_without_include_usage_writes_openai_frames_exactly() {
    let s = run(
        &mut OpenAiStreamEncoder::new(meta(), false),
        &sample_events(),
    );
    let expected = concat!(
        r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":null}]}"#,
        "\n\n",
        r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"content":"!"},"logprobs":null,"finish_reason":null}]}"#,
        "\n\n",
        r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#,
        "\n\n",
        "data: [DONE]\n\n",
    );
    assert_eq!(s, expected);
}

#[test]
fn encoder_with_include_usage_nulls_usage_then_sends_a_usage_chunk() {
    let s = run(
        &mut OpenAiStreamEncoder::new(meta(), true),
        &sample_events(),
    );
    let frames = data_frames(s.as_bytes());
    assert_eq!(frames.len(), 4);
    for f in &frames[..3] {
        assert_eq!(f["usage"], Value::Null);
        assert!(f.as_object().unwrap().contains_key("usage"));
    }
    assert_eq!(frames[3]["choices"], json!([]));
    assert_eq!(
        frames[3]["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, "prompt_tokens_details": {"cached_tokens": 1}})
    );
    assert!(s.ends_with("data: [DONE]\n\n"));
}

#[test]
fn tool_call_frames_carry_index_id_type_name_then_fragments() {
    let events = [
        StreamEvent::ToolCallStart {
            choice: 0,
            index: 1,
            id: "call_1".into(),
            name: "f".into(),
        },
        StreamEvent::ToolCallArguments {
            choice: 0,
            index: 1,
            arguments: "{\"a\"".into(),
        },
    ];
    let s = run(&mut OpenAiStreamEncoder::new(meta(), false), &events);
    let f = data_frames(s.as_bytes());
    assert_eq!(
        f[0]["choices"][0]["delta"],
        json!({"role": "assistant", "tool_calls": [{"index": 1, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]})
    );
    assert_eq!(
        f[1]["choices"][0]["delta"],
        json!({"tool_calls": [{"index": 1, "function": {"arguments": "{\"a\""}}]})
    );
}

#[test]
fn encoder_error_frame_is_what_the_sdk_raises_and_our_parser_classifies() {
    let mut enc = OpenAiStreamEncoder::new(meta(), false);
    let mut out = Vec::new();
    let err = UpstreamError::new(
        ErrorClass::RateLimited {
            retry_after_ms: None,
        },
        "slow down",
    );
    enc.error(&err, &mut out);
    let s = String::from_utf8(out).unwrap();
    assert_eq!(
        s,
        "data: {\"error\":{\"message\":\"slow down\",\"type\":\"rate_limit_error\",\"param\":null,\"code\":\"rate_limited\"}}\n\n"
    );
    let parsed = parse_stream(s.as_bytes()).unwrap_err();
    assert!(matches!(parsed.class, ErrorClass::RateLimited { .. }));
    assert_eq!(parsed.message, "slow down");
}

#[test]
fn parser_rejects_malformed_chunks_and_classifies_in_stream_errors() {
    let err = parse_stream(b"data: {\"id\": oops}\n\n").unwrap_err();
    assert_eq!(err.class, ErrorClass::StreamInterrupted);
    assert!(err.message.contains("malformed"));
    let err = parse_stream(
        b"data: {\"error\":{\"message\":\"quota\",\"type\":\"insufficient_quota\",\"code\":\"insufficient_quota\"}}\n\n",
    )
    .unwrap_err();
    assert_eq!(err.class, ErrorClass::QuotaExhausted);
}

#[test]
fn repeated_tool_ids_start_a_call_once() {
    let mut p = OpenAiStreamParser::new();
    let mut out = Vec::new();
    for args in ["{\"a\":", "1}"] {
        let chunk = json!({"id": "x", "model": "m", "created": 1, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": args}}]}, "finish_reason": null}]});
        p.feed_data(&chunk.to_string(), &mut out).unwrap();
    }
    let starts = out
        .iter()
        .filter(|e| matches!(e, StreamEvent::ToolCallStart { .. }))
        .count();
    let args: String = out
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCallArguments { arguments, .. } => Some(arguments.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(starts, 1);
    assert_eq!(args, "{\"a\":1}");
}

#[test]
fn cumulative_usage_is_reported_once_with_the_last_figures() {
    let mut p = OpenAiStreamParser::new();
    let mut out = Vec::new();
    for (n, done) in [(1, false), (2, true)] {
        let chunk = json!({"id": "x", "model": "m", "created": 1, "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": if done { json!("stop") } else { Value::Null }}], "usage": {"prompt_tokens": 1, "completion_tokens": n, "total_tokens": 1 + n}});
        p.feed_data(&chunk.to_string(), &mut out).unwrap();
    }
    p.feed_data("[DONE]", &mut out).unwrap();
    let usages: Vec<_> = out
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Usage(u) => Some(u.output_tokens),
            _ => None,
        })
        .collect();
    assert_eq!(usages, vec![2]);
}

fn response() -> ChatResponse {
    serde_json::from_value(json!({
        "id": "r1", "model": "m", "created": 1,
        "choices": [{"index": 0, "message": {"content": "ok", "reasoning": "because"}, "finish_reason": "stop"}],
        "warnings": ["openai: safety settings dropped"]
    }))
    .unwrap()
}

#[test]
fn encoded_response_has_reasoning_and_warnings_only_when_present() {
    let v: Value = serde_json::from_slice(&OpenAiServer.encode_response(&response())).unwrap();
    assert_eq!(
        v["choices"][0]["message"]["reasoning_content"],
        json!("because")
    );
    assert_eq!(v["warnings"], json!(["openai: safety settings dropped"]));
    assert!(v.get("usage").is_none());
    let mut r = response();
    r.warnings.clear();
    r.choices[0].message.reasoning = None;
    let v: Value = serde_json::from_slice(&OpenAiServer.encode_response(&r)).unwrap();
    assert!(v.get("warnings").is_none());
    assert!(v["choices"][0]["message"]
        .get("reasoning_content")
        .is_none());
    assert_eq!(v["choices"][0]["message"]["refusal"], Value::Null);
}

#[test]
fn encode_error_keeps_upstream_status_and_code() {
    let e = UpstreamError::new(ErrorClass::QuotaExhausted, "no credit")
        .with_status(429)
        .with_code("insufficient_quota");
    let (status, body) = OpenAiServer.encode_error(&e);
    assert_eq!(status, 429);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v,
        json!({"error": {"message": "no credit", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}})
    );
    let v: Value = serde_json::from_slice(&error_body(
        "bad",
        "invalid_request_error",
        Some("model"),
        None,
    ))
    .unwrap();
    assert_eq!(
        v,
        json!({"error": {"message": "bad", "type": "invalid_request_error", "param": "model", "code": null}})
    );
}

#[test]
fn a_2xx_error_body_or_garbage_is_not_a_response() {
    let e = OpenAi
        .parse_response(br#"{"error":{"message":"overloaded","type":"server_error"}}"#)
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::StreamInterrupted);
    assert_eq!(e.message, "overloaded");
    let e = OpenAi.parse_response(b"<html>").unwrap_err();
    assert_eq!(e.class, ErrorClass::StreamInterrupted);
    assert!(e.raw_body.is_some());
}

/// OpenAI-compatible servers write `"tool_calls": null` (and `"choices": null` on a usage-only
/// chunk) where OpenAI leaves the field out; that is an answer, not a malformed one.
#[test]
fn null_lists_from_compatible_servers_read_as_empty() {
    let answer = json!({"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi", "tool_calls": null}, "finish_reason": "stop"}]});
    let bytes = answer.to_string();
    let parsed = switchyard_openai::response::from_native(bytes.as_bytes()).unwrap();
    assert_eq!(parsed.choices[0].message.content.as_deref(), Some("hi"));
    assert!(parsed.choices[0].message.tool_calls.is_empty());
    assert!(switchyard_openai::forward::forwardable(bytes.as_bytes()));

    let mut p = OpenAiStreamParser::new();
    let mut out = Vec::new();
    let delta = json!({"id": "x", "model": "m", "created": 1, "choices": [{"index": 0, "delta": {"content": "a", "tool_calls": null}, "finish_reason": null}]});
    p.feed_data(&delta.to_string(), &mut out).unwrap();
    let usage_only = json!({"id": "x", "model": "m", "created": 1, "choices": null, "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}});
    p.feed_data(&usage_only.to_string(), &mut out).unwrap();
    assert!(
        out.iter()
            .any(|e| matches!(e, StreamEvent::TextDelta { text, .. } if text == "a")),
        "{out:?}"
    );
}

/// An answer with Anthropic's signed reasoning, as the front door gets it.
fn reasoning_response() -> ChatResponse {
    serde_json::from_value(json!({
        "id": "r1", "model": "m", "created": 1,
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "tool_calls": [{"id": "toolu_1", "name": "f", "arguments": "{}"}],
            "reasoning": "think",
            "reasoning_blocks": [
                {"type": "text", "text": "think", "signature": "c2ln", "format": "anthropic-claude-v1"},
                {"type": "encrypted", "data": "ZGF0YQ==", "format": "anthropic-claude-v1"},
            ],
        }}],
    }))
    .unwrap()
}

fn valid_openai(schema: &str, v: &Value) {
    if switchyard_spec_check::specs_dir().is_some() {
        if let Err(e) = switchyard_spec_check::check(switchyard_spec_check::Api::OpenAi, schema, v)
        {
            panic!("{schema}: {e}\n{v:#}");
        }
    }
}

#[test]
fn reasoning_blocks_reach_the_client_as_reasoning_details() {
    let v: Value =
        serde_json::from_slice(&OpenAiServer.encode_response(&reasoning_response())).unwrap();
    // The spec's message schema is open: the extension field validates.
    valid_openai("CreateChatCompletionResponse", &v);
    assert_eq!(
        v["choices"][0]["message"]["reasoning_details"],
        json!([
            {"type": "reasoning.text", "text": "think", "signature": "c2ln",
             "format": "anthropic-claude-v1", "index": 0},
            {"type": "reasoning.encrypted", "data": "ZGF0YQ==",
             "format": "anthropic-claude-v1", "index": 1},
        ])
    );
    // What the client sends back is read as the same blocks.
    let next = json!({"model": "m", "messages": [
        {"role": "user", "content": "hi"},
        v["choices"][0]["message"],
        {"role": "tool", "tool_call_id": "toolu_1", "content": "ok"},
    ]});
    let req = OpenAiServer
        .parse_request(None, next.to_string().as_bytes())
        .unwrap();
    assert_eq!(
        req.messages[1].reasoning_blocks,
        reasoning_response().choices[0].message.reasoning_blocks
    );
    // Never sent to OpenAI itself, which has no such field.
    let sent = body_of(&req, &target("gpt-4o"));
    assert!(sent["messages"][1].get("reasoning_details").is_none());
    assert!(sent["messages"][1].get("reasoning_content").is_none());

    let mut plain = reasoning_response();
    plain.choices[0].message.reasoning_blocks.clear();
    let v: Value = serde_json::from_slice(&OpenAiServer.encode_response(&plain)).unwrap();
    assert!(v["choices"][0]["message"]
        .get("reasoning_details")
        .is_none());
}

#[test]
fn a_streamed_block_goes_out_whole_in_one_delta_with_its_index() {
    let blocks = reasoning_response().choices[0]
        .message
        .reasoning_blocks
        .clone();
    let mut events = vec![StreamEvent::ReasoningDelta {
        choice: 0,
        text: "think".into(),
    }];
    for block in &blocks {
        events.push(StreamEvent::ReasoningBlock {
            choice: 0,
            block: block.clone(),
        });
    }
    // Another choice counts its blocks from 0.
    events.push(StreamEvent::ReasoningBlock {
        choice: 1,
        block: blocks[1].clone(),
    });
    let out = run(&mut OpenAiStreamEncoder::new(meta(), false), &events);
    let chunks: Vec<Value> = out
        .split("\n\n")
        .filter_map(|f| f.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    for c in &chunks {
        valid_openai("CreateChatCompletionStreamResponse", c);
    }
    let details: Vec<(u64, Value)> = chunks
        .iter()
        .filter_map(|c| {
            let choice = &c["choices"][0];
            let d = choice["delta"].get("reasoning_details")?;
            assert_eq!(d.as_array().map(Vec::len), Some(1), "one block per delta");
            Some((choice["index"].as_u64().unwrap(), d[0].clone()))
        })
        .collect();
    assert_eq!(
        details,
        vec![
            (
                0,
                json!({"type": "reasoning.text", "text": "think", "signature": "c2ln",
                       "format": "anthropic-claude-v1", "index": 0})
            ),
            (
                0,
                json!({"type": "reasoning.encrypted", "data": "ZGF0YQ==",
                       "format": "anthropic-claude-v1", "index": 1})
            ),
            (
                1,
                json!({"type": "reasoning.encrypted", "data": "ZGF0YQ==",
                       "format": "anthropic-claude-v1", "index": 0})
            ),
        ]
    );
    // The role goes out once per choice, on its first delta.
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks[1]["choices"][0]["delta"].get("role").is_none());
    assert_eq!(chunks[3]["choices"][0]["delta"]["role"], "assistant");
}
