//! Canonical request → Anthropic HTTP request: headers, URL, mapping rules, unsupported
//! features. Every body built here is validated against `CreateMessageParams`.

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_anthropic::{messages_url, Anthropic, DEFAULT_MAX_TOKENS};
use switchyard_core::{
    ChatRequest, Content, ContentPart, HarmCategory, ImageDetail, Message, Provider,
    ReasoningEffort, ResponseFormat, Role, SafetyPolicy, SafetySetting, SafetyThreshold, Target,
    Tool, ToolCall, ToolChoice, TranslateError, UnsupportedPolicy,
};

fn hello() -> ChatRequest {
    ChatRequest {
        model: "route-alias".into(),
        messages: vec![Message::text(Role::User, "hello")],
        ..ChatRequest::default()
    }
}

fn body(req: &ChatRequest) -> Value {
    build(req).expect("builds").1
}

fn unsupported(req: &ChatRequest) -> String {
    match build(req) {
        Err(TranslateError::Unsupported { provider, feature }) => {
            assert_eq!(provider, "anthropic");
            feature
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

fn invalid(req: &ChatRequest) -> String {
    match build(req) {
        Err(TranslateError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn url_headers_and_key_handling() {
    let (up, body) = build(&hello()).expect("builds");
    let r = &up.request;
    assert_eq!(r.method(), http::Method::POST);
    assert_eq!(r.uri(), "https://api.anthropic.com/v1/messages");
    assert_eq!(r.headers()["anthropic-version"], "2023-06-01");
    assert_eq!(r.headers()["content-type"], "application/json");
    let key = &r.headers()["x-api-key"];
    assert_eq!(key, KEY);
    assert!(key.is_sensitive());
    assert!(r.headers().get("authorization").is_none());
    assert!(!format!("{r:?}").contains(KEY), "key leaked into Debug");
    assert!(!String::from_utf8_lossy(r.body()).contains(KEY));
    assert_eq!(body["model"], MODEL, "target model, not the route alias");
    assert_eq!(body["max_tokens"], DEFAULT_MAX_TOKENS);
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": "hello"}])
    );
    assert!(body.get("stream").is_none());

    let no_key = Target {
        api_key: None,
        ..target(UnsupportedPolicy::Reject)
    };
    let up = Anthropic.build_request(&hello(), &no_key).expect("builds");
    assert!(up.request.headers().get("x-api-key").is_none());

    let bad_key = Target {
        api_key: Some("bad\nkey-secret"),
        ..target(UnsupportedPolicy::Reject)
    };
    let err = Anthropic.build_request(&hello(), &bad_key).unwrap_err();
    assert!(!err.to_string().contains("secret"));
}

#[test]
fn base_url_with_or_without_v1() {
    for base in [
        "https://api.anthropic.com",
        "https://api.anthropic.com/",
        "https://api.anthropic.com/v1",
        "https://api.anthropic.com/v1/",
    ] {
        assert_eq!(
            messages_url(base),
            "https://api.anthropic.com/v1/messages",
            "{base}"
        );
    }
    assert_eq!(
        messages_url("http://127.0.0.1:9000/mock"),
        "http://127.0.0.1:9000/mock/v1/messages"
    );
}

#[test]
fn sampling_fields_map_and_stream_flag() {
    let mut req = hello();
    req.temperature = Some(0.5);
    req.top_p = Some(0.99);
    req.max_output_tokens = Some(77);
    req.stop = vec!["END".into()];
    req.user = Some("u-1".into());
    req.stream = true;
    req.include_usage = true;
    req.n = Some(1);
    req.logprobs = Some(false);
    let b = body(&req);
    assert_eq!(b["temperature"], 0.5);
    assert_eq!(b["top_p"], 0.99);
    assert_eq!(b["max_tokens"], 77);
    assert_eq!(b["stop_sequences"], json!(["END"]));
    assert_eq!(b["metadata"], json!({"user_id": "u-1"}));
    assert_eq!(b["stream"], true);
}

#[test]
fn metadata_is_dropped_with_a_warning_whatever_the_policy() {
    let mut req = hello();
    req.metadata.insert("k".into(), "v".into());
    for policy in [UnsupportedPolicy::Reject, UnsupportedPolicy::Drop] {
        let (up, body) = build_with(&req, policy).expect("metadata never blocks a request");
        assert_eq!(up.warnings.len(), 1, "{:?}", up.warnings);
        assert!(up.warnings[0].contains("metadata"));
        assert!(body.get("metadata").is_none_or(|m| m.get("k").is_none()));
    }
}

#[test]
fn unsupported_fields_reject_or_drop_with_warning() {
    type Edit = fn(&mut ChatRequest);
    let cases: Vec<(&str, Edit)> = vec![
        ("n = 2", |r| r.n = Some(2)),
        ("logprobs", |r| r.logprobs = Some(true)),
        ("top_logprobs", |r| r.top_logprobs = Some(3)),
        ("seed", |r| r.seed = Some(7)),
        ("presence_penalty", |r| r.presence_penalty = Some(0.5)),
        ("frequency_penalty", |r| r.frequency_penalty = Some(0.5)),
        ("temperature 1.5", |r| r.temperature = Some(1.5)),
        ("json_object", |r| {
            r.response_format = Some(ResponseFormat::JsonObject)
        }),
        ("safety", |r| {
            r.safety = Some(SafetyPolicy {
                settings: vec![SafetySetting {
                    category: HarmCategory::Harassment,
                    threshold: SafetyThreshold::BlockLowAndAbove,
                }],
            })
        }),
    ];
    for (what, edit) in cases {
        let mut req = hello();
        edit(&mut req);
        let feature = unsupported(&req);
        assert!(
            feature.contains(what.split(' ').next().unwrap_or(what)),
            "{what}: {feature}"
        );

        let (up, b) = build_with(&req, UnsupportedPolicy::Drop).expect("drop builds");
        assert_eq!(up.warnings.len(), 1, "{what}: {:?}", up.warnings);
        assert!(up.warnings[0].contains("dropped"), "{what}");
        for key in [
            "n",
            "logprobs",
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "temperature",
            "output_config",
            "metadata",
            "safety",
        ] {
            assert!(b.get(key).is_none(), "{what}: `{key}` leaked into the body");
        }
    }
}

#[test]
fn safety_that_blocks_nothing_is_fine() {
    let mut req = hello();
    req.safety = Some(SafetyPolicy {
        settings: vec![SafetySetting {
            category: HarmCategory::HateSpeech,
            threshold: SafetyThreshold::BlockNone,
        }],
    });
    let (up, _) = build(&req).expect("builds");
    assert!(up.warnings.is_empty());
}

#[test]
fn reasoning_effort_maps_to_thinking_budget() {
    for (effort, budget) in [
        (ReasoningEffort::Minimal, 1024),
        (ReasoningEffort::Low, 4096),
        (ReasoningEffort::Medium, 8192),
        (ReasoningEffort::High, 16384),
    ] {
        let mut req = hello();
        req.reasoning_effort = Some(effort);
        let b = body(&req);
        assert_eq!(
            b["thinking"],
            json!({"type": "enabled", "budget_tokens": budget})
        );
        assert_eq!(b["max_tokens"], DEFAULT_MAX_TOKENS + budget, "{effort:?}");
    }
    let mut req = hello();
    req.reasoning_effort = Some(ReasoningEffort::High);
    req.max_output_tokens = Some(6000);
    let b = body(&req);
    assert_eq!(b["max_tokens"], 6000, "client limit is kept");
    assert_eq!(
        b["thinking"]["budget_tokens"], 3000,
        "budget shrinks below it"
    );

    req.max_output_tokens = Some(1000);
    assert!(unsupported(&req).contains("reasoning_effort"));
    let (up, b) = build_with(&req, UnsupportedPolicy::Drop).expect("drop");
    assert!(b.get("thinking").is_none());
    assert_eq!(up.warnings.len(), 1);

    let mut req = hello();
    req.reasoning_effort = Some(ReasoningEffort::None);
    assert_eq!(body(&req)["thinking"], json!({"type": "disabled"}));
}

#[test]
fn tool_choice_and_parallel_flag() {
    let mut req = hello();
    req.tools = vec![Tool {
        name: "f".into(),
        description: None,
        parameters: None,
        strict: Some(true),
    }];
    let tools = body(&req)["tools"].clone();
    assert_eq!(
        tools,
        json!([{"name": "f", "strict": true, "input_schema": {"type": "object", "properties": {}}}])
    );
    for (choice, parallel, want) in [
        (Some(ToolChoice::Auto), None, json!({"type": "auto"})),
        (Some(ToolChoice::Required), None, json!({"type": "any"})),
        (Some(ToolChoice::None), None, json!({"type": "none"})),
        (
            Some(ToolChoice::Function { name: "f".into() }),
            Some(false),
            json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true}),
        ),
        (
            None,
            Some(false),
            json!({"type": "auto", "disable_parallel_tool_use": true}),
        ),
        (
            Some(ToolChoice::Required),
            Some(true),
            json!({"type": "any"}),
        ),
    ] {
        req.tool_choice = choice.clone();
        req.parallel_tool_calls = parallel;
        assert_eq!(body(&req)["tool_choice"], want, "{choice:?} {parallel:?}");
    }
    req.tool_choice = None;
    req.parallel_tool_calls = None;
    assert!(body(&req).get("tool_choice").is_none());
}

fn assistant_call(arguments: &str) -> Message {
    let mut m = Message::text(Role::Assistant, "");
    m.content = None;
    m.tool_calls = vec![ToolCall {
        id: "toolu_1".into(),
        name: "f".into(),
        arguments: arguments.into(),
    }];
    m
}

#[test]
fn tool_arguments_must_be_a_json_object() {
    let mut req = hello();
    req.messages.push(assistant_call("{\"a\": [1, 2]}"));
    let b = body(&req);
    assert_eq!(
        b["messages"][1]["content"],
        json!([{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1, 2]}}])
    );
    req.messages[1] = assistant_call("");
    assert_eq!(body(&req)["messages"][1]["content"][0]["input"], json!({}));
    req.messages[1] = assistant_call("{not json");
    assert!(invalid(&req).contains("messages[1].tool_calls[0].arguments"));
    req.messages[1] = assistant_call("[1]");
    assert!(invalid(&req).contains("JSON object"));
}

#[test]
fn turn_rules() {
    let mut req = hello();
    req.messages = vec![Message::text(Role::Assistant, "hi")];
    assert!(invalid(&req).contains("first turn"));
    req.messages = vec![Message::text(Role::System, "only system")];
    assert!(invalid(&req).contains("no user"));
    req.messages = vec![Message::text(Role::User, "")];
    assert!(invalid(&req).contains("no content"));
    let mut tool = Message::text(Role::Tool, "result");
    tool.tool_call_id = None;
    req.messages = vec![Message::text(Role::User, "q"), assistant_call("{}"), tool];
    assert!(invalid(&req).contains("tool_call_id"));
}

#[test]
fn prefill_is_sent_as_final_assistant_turn() {
    let mut req = hello();
    req.messages
        .push(Message::text(Role::Assistant, "Partial answer"));
    let (up, b) = build(&req).expect("builds");
    assert_eq!(
        b["messages"][1],
        json!({"role": "assistant", "content": "Partial answer"})
    );
    assert!(up.warnings.is_empty());
    assert!(Anthropic.capabilities().assistant_prefill);
}

#[test]
fn images_map_to_sources() {
    let image = |url: &str, detail| {
        let mut m = Message::text(Role::User, "");
        m.content = Some(Content::Parts(vec![ContentPart::ImageUrl {
            url: url.into(),
            detail,
        }]));
        m
    };
    let mut req = hello();
    req.messages = vec![image("data:image/webp;base64,UklGRg==", None)];
    assert_eq!(
        body(&req)["messages"][0]["content"][0]["source"],
        json!({"type": "base64", "media_type": "image/webp", "data": "UklGRg=="})
    );
    req.messages = vec![image("https://x.test/a.png", Some(ImageDetail::High))];
    let (up, b) = build(&req).expect("builds");
    assert_eq!(
        b["messages"][0]["content"][0]["source"],
        json!({"type": "url", "url": "https://x.test/a.png"})
    );
    assert_eq!(up.warnings.len(), 1, "detail is ignored, with a warning");
    req.messages = vec![image("data:image/bmp;base64,Qk0=", None)];
    assert!(unsupported(&req).contains("image/bmp"));
    req.messages = vec![image("ftp://x.test/a.png", None)];
    assert!(invalid(&req).contains("image URL"));
    let mut assistant = image("https://x.test/a.png", None);
    assistant.role = Role::Assistant;
    req.messages = vec![Message::text(Role::User, "q"), assistant];
    assert!(unsupported(&req).contains("assistant"));
}

#[test]
fn json_schema_becomes_output_config_and_extra_is_copied_last() {
    let mut req = hello();
    req.response_format = Some(ResponseFormat::JsonSchema {
        name: "answer".into(),
        description: None,
        schema: json!({"type": "object", "properties": {"a": {"type": "string"}}}),
        strict: Some(true),
    });
    req.extra.insert("top_k".into(), json!(5));
    req.extra.insert("max_tokens".into(), json!(321));
    let b = body(&req);
    assert_eq!(
        b["output_config"],
        json!({"format": {"type": "json_schema", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}})
    );
    assert_eq!(b["top_k"], 5);
    assert_eq!(b["max_tokens"], 321, "the client's own key wins");
}

#[test]
fn reasoning_in_history_is_not_sent_back() {
    let mut req = hello();
    let mut a = Message::text(Role::Assistant, "answer");
    a.reasoning = Some("thoughts".into());
    req.messages.push(a);
    req.messages.push(Message::text(Role::User, "more"));
    let b = body(&req);
    assert_eq!(
        b["messages"][1],
        json!({"role": "assistant", "content": "answer"})
    );
}

fn with_parts(parts: Vec<ContentPart>) -> ChatRequest {
    let mut req = hello();
    req.messages[0].content = Some(Content::Parts(parts));
    req
}

fn pdf(data: &str) -> ContentPart {
    ContentPart::File {
        data: data.into(),
        media_type: Some("application/pdf".into()),
        filename: Some("a.pdf".into()),
    }
}

#[test]
fn files_become_documents_and_audio_is_unsupported() {
    let req = with_parts(vec![
        pdf("JVBERi0="),
        ContentPart::File {
            data: "aGk=".into(),
            media_type: None,
            filename: Some("notes.TXT".into()),
        },
    ]);
    let b = body(&req);
    assert_eq!(
        b["messages"][0]["content"],
        json!([
            {"type": "document", "title": "a.pdf",
             "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
            {"type": "document", "title": "notes.TXT",
             "source": {"type": "text", "media_type": "text/plain", "data": "hi"}},
        ])
    );

    let audio = ContentPart::InputAudio {
        data: "UklGRg==".into(),
        format: switchyard_core::AudioFormat::Wav,
    };
    assert!(unsupported(&with_parts(vec![audio.clone()])).contains("audio"));
    let file_id = ContentPart::FileId {
        file_id: "file-1".into(),
        filename: None,
    };
    assert!(unsupported(&with_parts(vec![file_id.clone()])).contains("file_id"));
    let docx = ContentPart::File {
        data: "UEs=".into(),
        media_type: Some(
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document".into(),
        ),
        filename: None,
    };
    assert!(unsupported(&with_parts(vec![docx.clone()])).contains("wordprocessingml"));
    let unnamed = ContentPart::File {
        data: "UEs=".into(),
        media_type: None,
        filename: Some("x".into()),
    };
    assert!(unsupported(&with_parts(vec![unnamed])).contains("unknown type"));
    let bad_text = ContentPart::File {
        data: "/w==".into(),
        media_type: Some("text/plain".into()),
        filename: None,
    };
    assert!(invalid(&with_parts(vec![bad_text])).contains("UTF-8"));

    // `drop`: each goes with a warning, the text stays.
    let req = with_parts(vec![
        ContentPart::Text { text: "t".into() },
        audio,
        file_id,
        docx,
    ]);
    let (up, b) = build_with(&req, UnsupportedPolicy::Drop).expect("builds");
    assert_eq!(up.warnings.len(), 3, "{:?}", up.warnings);
    assert_eq!(
        b["messages"][0]["content"],
        json!([{"type": "text", "text": "t"}])
    );

    // Files only in user turns.
    let mut req = hello();
    let mut m = Message::text(Role::Assistant, "");
    m.content = Some(Content::Parts(vec![pdf("JVBERi0=")]));
    req.messages.push(m);
    req.messages.push(Message::text(Role::User, "again"));
    assert!(unsupported(&req).contains("assistant"));
    let mut req = hello();
    let mut m = Message::text(Role::System, "");
    m.content = Some(Content::Parts(vec![pdf("JVBERi0=")]));
    req.messages.insert(0, m);
    assert!(unsupported(&req).contains("system"));
}

#[test]
fn a_request_over_32_mb_is_unsupported_whatever_the_policy() {
    let big = "A".repeat(switchyard_anthropic::MAX_REQUEST_BYTES);
    let req = with_parts(vec![pdf(&big)]);
    for policy in [UnsupportedPolicy::Reject, UnsupportedPolicy::Drop] {
        match build_with(&req, policy) {
            Err(TranslateError::Unsupported { provider, feature }) => {
                assert_eq!(provider, "anthropic");
                assert!(feature.contains("32 MB"), "{feature}");
            }
            other => panic!(
                "expected Unsupported, got {:?}",
                other.map(|(u, _)| u.warnings)
            ),
        }
    }
    // Just under the limit, it goes.
    let req = with_parts(vec![pdf(&"A".repeat(4096))]);
    assert!(build(&req).is_ok());
}
