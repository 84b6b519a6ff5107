//! Reasoning across tool calls. Anthropic's signed thinking must come back unmodified, first in
//! the assistant turn, or a tool loop with thinking on is refused; these tests follow it the
//! whole way a client sees it: Anthropic's answer (`fixtures/anthropic/thinking_tool_call`) →
//! canonical → the OpenAI front door's JSON → the client's next request, which repeats the
//! message it got → canonical → the Anthropic request, which must be
//! `fixtures/anthropic/thinking_tool_result/request.json` exactly. Then what happens when the
//! signed thinking is missing.

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_anthropic::{Anthropic, DEFAULT_MAX_TOKENS};
use switchyard_core::{
    ChatRequest, Message, Provider, ReasoningBlock, ReasoningEffort, Role, ServerSide,
    StreamEncoder, StreamEvent, StreamMeta, ToolCall,
};
use switchyard_openai::{OpenAiServer, OpenAiStreamEncoder};
use switchyard_spec_check::{check, specs_dir, Api};

fn fixture(case: &str, file: &str) -> Vec<u8> {
    let path = fixtures_root().join(case).join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture_json(case: &str, file: &str) -> Value {
    serde_json::from_slice(&fixture(case, file)).expect("fixture is JSON")
}

fn openai_valid(schema: &str, value: &Value) {
    if specs_dir().is_some() {
        if let Err(e) = check(Api::OpenAi, schema, value) {
            panic!("OpenAI {schema} rejected what the front door wrote:\n{e}\n{value:#}");
        }
    }
}

/// The client's second request: the question, the assistant message it was given (repeated as
/// is, as a client appending the SDK's message object does), the tool's result.
fn next_request(assistant: Value) -> Vec<u8> {
    let body = json!({
        "model": "alias",
        "reasoning_effort": "medium",
        "tools": [{"type": "function", "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]},
        }}],
        "messages": [
            {"role": "user", "content": "What is the weather in Paris?"},
            assistant,
            {"role": "tool", "tool_call_id": "toolu_01ThinkParis", "content": "18°C, sunny"},
        ],
    });
    serde_json::to_vec(&body).expect("json")
}

/// The client's request → canonical (the front door) → the Anthropic body (spec-checked).
fn to_anthropic(client_request: &[u8]) -> (Vec<String>, Value) {
    let canonical = OpenAiServer
        .parse_request(None, client_request)
        .expect("the front door takes the client's request");
    let (up, body) = build(&canonical).expect("builds");
    (up.warnings, body)
}

/// What the front door gives an OpenAI client for a streamed answer, put together the way
/// the SDKs' stream helpers do (text concatenated, tool calls by index), plus
/// `reasoning_details` collected in order, as a client that keeps them does.
fn streamed_message(events: &[StreamEvent]) -> Value {
    let meta = StreamMeta {
        id: "chatcmpl-1".into(),
        model: MODEL.into(),
        created: 1,
    };
    let mut enc = OpenAiStreamEncoder::new(meta, false);
    let mut out = Vec::new();
    for e in events {
        enc.encode(e, &mut out);
    }
    enc.finish(&mut out);

    let mut decoder = switchyard_sse::SseDecoder::new();
    let mut frames = Vec::new();
    decoder.feed(&out, &mut frames).expect("valid SSE");
    let (mut reasoning, mut details, mut calls) = (String::new(), Vec::new(), Vec::<Value>::new());
    for frame in frames {
        if frame.data == "[DONE]" {
            break;
        }
        let chunk: Value = serde_json::from_str(&frame.data).expect("chunk is JSON");
        openai_valid("CreateChatCompletionStreamResponse", &chunk);
        let delta = &chunk["choices"][0]["delta"];
        assert!(delta.get("content").is_none(), "no text in this answer");
        if let Some(r) = delta["reasoning_content"].as_str() {
            reasoning.push_str(r);
        }
        if let Some(d) = delta["reasoning_details"].as_array() {
            details.extend(d.iter().cloned());
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let i = call["index"].as_u64().expect("index") as usize;
            if i == calls.len() {
                calls.push(json!({"id": call["id"], "type": "function",
                                  "function": {"name": call["function"]["name"], "arguments": ""}}));
            }
            let args = calls[i]["function"]["arguments"]
                .as_str()
                .unwrap_or("")
                .to_string()
                + call["function"]["arguments"].as_str().unwrap_or("");
            calls[i]["function"]["arguments"] = json!(args);
        }
    }
    json!({
        "role": "assistant",
        "content": null,
        "reasoning_content": reasoning,
        "reasoning_details": details,
        "tool_calls": calls,
    })
}

/// The `thinking` / `redacted_thinking` blocks of an Anthropic answer, verbatim.
fn native_reasoning(response: &Value) -> Vec<Value> {
    response["content"]
        .as_array()
        .expect("content")
        .iter()
        .filter(|b| matches!(b["type"].as_str(), Some("thinking" | "redacted_thinking")))
        .cloned()
        .collect()
}

#[test]
fn signed_thinking_survives_the_openai_front_door_byte_for_byte() {
    let native_answer = fixture("thinking_tool_call", "response.json");
    let answer = Anthropic.parse_response(&native_answer).expect("parses");
    let client_json: Value =
        serde_json::from_slice(&OpenAiServer.encode_response(&answer)).expect("JSON");
    // Anthropic's `service_tier` ("standard") is passed on as it came, outside OpenAI's enum:
    // a separate matter, left out of this check.
    let mut checked = client_json.clone();
    checked
        .as_object_mut()
        .expect("object")
        .remove("service_tier");
    openai_valid("CreateChatCompletionResponse", &checked);
    let message = client_json["choices"][0]["message"].clone();
    let native: Value = serde_json::from_slice(&native_answer).expect("JSON");
    assert_eq!(
        message["reasoning_details"],
        json!([
            {"type": "reasoning.text", "text": native["content"][0]["thinking"],
             "signature": native["content"][0]["signature"], "format": "anthropic-claude-v1",
             "index": 0},
            {"type": "reasoning.encrypted", "data": native["content"][1]["data"],
             "format": "anthropic-claude-v1", "index": 1},
        ]),
        "the client sees every block, signature included"
    );

    let (warnings, body) = to_anthropic(&next_request(message));
    assert!(warnings.is_empty(), "{warnings:?}");
    let turn = &body["messages"][1]["content"];
    // String equality of the signature, not only JSON equality of the whole.
    assert_eq!(
        turn[0]["signature"].as_str(),
        native["content"][0]["signature"].as_str()
    );
    assert_eq!(
        turn.as_array().expect("blocks")[..2],
        native_reasoning(&native)[..],
        "the blocks go back unmodified, first in the turn"
    );
    assert_eq!(turn[2]["type"], "tool_use");
    assert_eq!(body, fixture_json("thinking_tool_result", "request.json"));
}

#[test]
fn signed_thinking_survives_a_streamed_answer_too() {
    let (events, result) = replay_whole(&fixture("thinking_tool_call", "stream.sse"));
    result.expect("complete stream");
    let message = streamed_message(&events);
    let native = fixture_json("thinking_tool_call", "response.json");
    assert_eq!(
        message["reasoning_content"],
        native["content"][0]["thinking"]
    );
    let (warnings, body) = to_anthropic(&next_request(message));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        body["messages"][1]["content"].as_array().expect("blocks")[..2],
        native_reasoning(&native)[..]
    );
    assert_eq!(body, fixture_json("thinking_tool_result", "request.json"));
}

/// The turn of `thinking_tool_result` without `reasoning_details`: a client that dropped
/// them, or a tool call that came from another provider before a failover.
fn without_signed_thinking() -> Value {
    let native = fixture("thinking_tool_call", "response.json");
    let answer = Anthropic.parse_response(&native).expect("parses");
    let client: Value = serde_json::from_slice(&OpenAiServer.encode_response(&answer)).unwrap();
    let mut message = client["choices"][0]["message"].clone();
    message
        .as_object_mut()
        .expect("object")
        .remove("reasoning_details");
    message
}

#[test]
fn a_tool_loop_without_signed_thinking_turns_thinking_off_with_a_warning() {
    let (warnings, body) = to_anthropic(&next_request(without_signed_thinking()));
    assert_eq!(body["thinking"], json!({"type": "disabled"}));
    assert_eq!(
        body["max_tokens"], DEFAULT_MAX_TOKENS,
        "no room kept for a budget that is not used"
    );
    assert_eq!(
        body["messages"][1]["content"][0]["type"], "tool_use",
        "plain reasoning text is never sent as thinking"
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("thinking turned off") && warnings[0].contains("messages[1]"),
        "{}",
        warnings[0]
    );
}

fn call(id: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: "get_weather".into(),
        arguments: r#"{"city":"Paris"}"#.into(),
    }
}

fn assistant_call(id: &str, blocks: Vec<ReasoningBlock>) -> Message {
    let mut m = Message::text(Role::Assistant, "");
    m.content = None;
    m.tool_calls = vec![call(id)];
    m.reasoning = Some("thoughts".into());
    m.reasoning_blocks = blocks;
    m
}

fn tool_result(id: &str) -> Message {
    let mut m = Message::text(Role::Tool, "18°C, sunny");
    m.tool_call_id = Some(id.into());
    m
}

fn signed(text: &str, signature: &str) -> ReasoningBlock {
    ReasoningBlock::Text {
        text: text.into(),
        signature: Some(signature.into()),
        format: Some("anthropic-claude-v1".into()),
    }
}

fn thinking_request(messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        model: "alias".into(),
        messages,
        reasoning_effort: Some(ReasoningEffort::Low),
        ..ChatRequest::default()
    }
}

#[test]
fn only_anthropic_signed_blocks_count() {
    for blocks in [
        // DeepSeek-style reasoning: text, no signature.
        vec![ReasoningBlock::Text {
            text: "thoughts".into(),
            signature: None,
            format: None,
        }],
        // Signed, but by someone else.
        vec![ReasoningBlock::Text {
            text: "thoughts".into(),
            signature: Some("c2ln".into()),
            format: Some("google-gemini-v1".into()),
        }],
    ] {
        let req = thinking_request(vec![
            Message::text(Role::User, "weather?"),
            assistant_call("c1", blocks),
            tool_result("c1"),
        ]);
        let (up, body) = build(&req).expect("builds");
        assert_eq!(body["thinking"], json!({"type": "disabled"}));
        assert_eq!(body["messages"][1]["content"][0]["type"], "tool_use");
        assert_eq!(up.warnings.len(), 1, "{:?}", up.warnings);
    }
    // A signed block without a format (a client that wrote it by hand) is taken at its word.
    let req = thinking_request(vec![
        Message::text(Role::User, "weather?"),
        assistant_call(
            "c1",
            vec![ReasoningBlock::Text {
                text: "thoughts".into(),
                signature: Some("c2ln".into()),
                format: None,
            }],
        ),
        tool_result("c1"),
    ]);
    let (up, body) = build(&req).expect("builds");
    assert!(up.warnings.is_empty());
    assert_eq!(
        body["messages"][1]["content"][0],
        json!({"type": "thinking", "thinking": "thoughts", "signature": "c2ln"})
    );
}

#[test]
fn only_the_turn_in_progress_needs_signed_thinking() {
    // An earlier tool loop answered by another provider, then a new question Anthropic
    // answered with signed thinking: thinking stays on, the old turn goes without.
    let req = thinking_request(vec![
        Message::text(Role::User, "weather in Rome?"),
        assistant_call("c0", Vec::new()),
        tool_result("c0"),
        Message::text(Role::Assistant, "Rome: 22°C."),
        Message::text(Role::User, "and Paris?"),
        assistant_call("c1", vec![signed("Paris next.", "c2lnMQ==")]),
        tool_result("c1"),
    ]);
    let (up, body) = build(&req).expect("builds");
    assert!(up.warnings.is_empty(), "{:?}", up.warnings);
    assert_eq!(body["thinking"]["type"], "enabled");
    assert_eq!(body["messages"][1]["content"][0]["type"], "tool_use");
    assert_eq!(
        body["messages"][5]["content"][0],
        json!({"type": "thinking", "thinking": "Paris next.", "signature": "c2lnMQ=="})
    );

    // A user message right after the tool results shares their turn, so the loop is still
    // in progress: its opening assistant message needs the signed thinking.
    let req = thinking_request(vec![
        Message::text(Role::User, "weather?"),
        assistant_call("c1", Vec::new()),
        tool_result("c1"),
        Message::text(Role::User, "in Celsius please"),
    ]);
    let (up, body) = build(&req).expect("builds");
    assert_eq!(body["thinking"], json!({"type": "disabled"}));
    assert_eq!(up.warnings.len(), 1, "{:?}", up.warnings);

    // Later steps of the same loop may lack thinking (Claude thinks once per turn unless
    // interleaved thinking is on): only the opening message is checked.
    let req = thinking_request(vec![
        Message::text(Role::User, "weather?"),
        assistant_call("c1", vec![signed("First Paris.", "c2lnMQ==")]),
        tool_result("c1"),
        assistant_call("c2", Vec::new()),
        tool_result("c2"),
    ]);
    let (up, body) = build(&req).expect("builds");
    assert!(up.warnings.is_empty(), "{:?}", up.warnings);
    assert_eq!(body["thinking"]["type"], "enabled");
}

#[test]
fn with_thinking_off_no_block_is_sent() {
    // Anthropic refuses thinking blocks in the turn in progress when thinking is off, and
    // ignores them in earlier turns: none go.
    let mut req = thinking_request(vec![
        Message::text(Role::User, "weather?"),
        assistant_call("c1", vec![signed("Paris.", "c2lnMQ==")]),
        tool_result("c1"),
    ]);
    for effort in [None, Some(ReasoningEffort::None)] {
        req.reasoning_effort = effort;
        let (up, body) = build(&req).expect("builds");
        assert!(up.warnings.is_empty(), "{:?}", up.warnings);
        assert_eq!(body["messages"][1]["content"][0]["type"], "tool_use");
    }
}

#[test]
fn a_clients_own_thinking_config_is_judged_the_same_way() {
    let mut req = thinking_request(vec![
        Message::text(Role::User, "weather?"),
        assistant_call("c1", Vec::new()),
        tool_result("c1"),
    ]);
    req.reasoning_effort = None;
    req.extra
        .insert("thinking".into(), json!({"type": "adaptive"}));
    let (up, body) = build(&req).expect("builds");
    assert_eq!(
        body["thinking"],
        json!({"type": "disabled"}),
        "the extra key is overridden"
    );
    assert_eq!(up.warnings.len(), 1, "{:?}", up.warnings);

    req.messages[1]
        .reasoning_blocks
        .push(signed("Paris.", "c2lnMQ=="));
    let (up, body) = build(&req).expect("builds");
    assert!(up.warnings.is_empty(), "{:?}", up.warnings);
    assert_eq!(body["thinking"], json!({"type": "adaptive"}));
    assert_eq!(body["messages"][1]["content"][0]["type"], "thinking");
}

#[test]
fn a_prefill_under_thinking_turns_thinking_off() {
    // The gateway continues a cut stream with a prefill; with thinking on, Anthropic wants the
    // final assistant message to open with thinking, which a prefill of sent text lacks.
    let req = thinking_request(vec![
        Message::text(Role::User, "hi"),
        Message::text(Role::Assistant, "Hello, I am"),
    ]);
    let (up, body) = build(&req).expect("builds");
    assert_eq!(body["thinking"], json!({"type": "disabled"}));
    assert_eq!(
        body["messages"][1],
        json!({"role": "assistant", "content": "Hello, I am"})
    );
    assert_eq!(up.warnings.len(), 1, "{:?}", up.warnings);
}

#[test]
fn the_mock_streams_signed_blocks_back_in_anthropic_events() {
    // Canonical blocks → Anthropic SSE (the mock's encoder) → parsed: the same blocks.
    let events = vec![
        StreamEvent::Start {
            id: "msg_1".into(),
            model: MODEL.into(),
            created: 0,
        },
        StreamEvent::ReasoningBlock {
            choice: 0,
            block: signed("No deltas before me.", "c2lnMQ=="),
        },
        StreamEvent::ReasoningBlock {
            choice: 0,
            block: ReasoningBlock::Encrypted {
                data: "ZGF0YQ==".into(),
                format: Some("anthropic-claude-v1".into()),
            },
        },
        StreamEvent::TextDelta {
            choice: 0,
            text: "Hi.".into(),
        },
    ];
    let bytes = encode_stream(&events, None);
    spec_valid_stream(&bytes);
    let (again, result) = replay_whole(&bytes);
    result.expect("complete");
    let blocks: Vec<_> = again
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ReasoningBlock { block, .. } => Some(block.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        blocks,
        vec![
            signed("No deltas before me.", "c2lnMQ=="),
            ReasoningBlock::Encrypted {
                data: "ZGF0YQ==".into(),
                format: Some("anthropic-claude-v1".into()),
            },
        ]
    );
}
