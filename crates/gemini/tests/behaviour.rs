//! Targeted behaviour: URLs and secrets, unsupported features, edge cases of each direction.

mod common;

use common::*;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Value};
use switchyard_core::{
    ChatRequest, ChatResponse, Content, ContentPart, ErrorClass, FinishReason, ImageDetail,
    Message, Provider, ReasoningEffort, Role, ServerSide, SseFrame, StreamEvent, StreamMeta, Tool,
    ToolCall, ToolChoice, TranslateError, UnsupportedPolicy, UpstreamError, Usage,
};
use switchyard_gemini::{Gemini, GeminiServer};
use switchyard_spec_check::{assert_valid_gemini, check_gemini, specs_dir};

fn user(text: &str) -> ChatRequest {
    ChatRequest {
        model: "gemini-2.5-flash".into(),
        messages: vec![Message::text(Role::User, text)],
        ..ChatRequest::default()
    }
}

fn body_of(req: &ChatRequest) -> Value {
    let up = Gemini
        .build_request(req, &target("gemini-2.5-flash"))
        .unwrap();
    let v: Value = serde_json::from_slice(up.request.body()).unwrap();
    if specs_dir().is_some() {
        assert_valid_gemini(REQ, &v);
    }
    assert_camel_case(&v, "body");
    v
}

fn drop_target() -> switchyard_core::Target<'static> {
    switchyard_core::Target {
        on_unsupported: UnsupportedPolicy::Drop,
        ..target("gemini-2.5-flash")
    }
}

#[test]
fn urls_headers_and_the_key() {
    let mut req = user("hi");
    let t = switchyard_core::Target {
        base_url: "https://generativelanguage.googleapis.com/",
        ..target("models/gemini-2.5-flash")
    };
    let up = Gemini.build_request(&req, &t).unwrap();
    assert_eq!(up.request.method(), http::Method::POST);
    assert_eq!(
        up.request.uri(),
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    );
    let key = up.request.headers().get("x-goog-api-key").unwrap();
    assert!(key.is_sensitive());
    assert_eq!(key, KEY);
    assert_eq!(up.request.headers()["content-type"], "application/json");
    assert!(!format!("{up:?}").contains(KEY), "key leaks through Debug");
    assert!(!up.request.uri().to_string().contains(KEY));

    req.stream = true;
    let up = Gemini
        .build_request(&req, &target("tunedModels/my-model-1"))
        .unwrap();
    assert_eq!(
        up.request.uri(),
        "https://generativelanguage.googleapis.com/v1beta/tunedModels/my-model-1:streamGenerateContent?alt=sse"
    );

    for bad in ["", "gemini 2.5", "a/b/c", "x?alt=json", "../x"] {
        assert!(
            matches!(
                Gemini.build_request(&req, &target(bad)),
                Err(TranslateError::Invalid(_))
            ),
            "{bad:?}"
        );
    }
    let no_key = switchyard_core::Target {
        api_key: None,
        ..target("gemini-2.5-flash")
    };
    let up = Gemini.build_request(&req, &no_key).unwrap();
    assert!(up.request.headers().get("x-goog-api-key").is_none());
    let bad_key = switchyard_core::Target {
        api_key: Some("sk\nsecret"),
        ..target("gemini-2.5-flash")
    };
    let err = Gemini.build_request(&req, &bad_key).unwrap_err();
    assert!(!err.to_string().contains("secret"));
}

#[test]
fn unsupported_features_reject_or_drop_with_a_warning() {
    let mut named = user("hi");
    named.messages[0].name = Some("ada".into());
    let mut image_detail = user("x");
    image_detail.messages[0].content = Some(Content::Parts(vec![ContentPart::ImageUrl {
        url: "https://example.com/a.png".into(),
        detail: Some(ImageDetail::High),
    }]));
    let cases: Vec<(&str, ChatRequest)> = vec![
        (
            "parallel_tool_calls",
            ChatRequest {
                parallel_tool_calls: Some(false),
                ..user("hi")
            },
        ),
        (
            "seed",
            ChatRequest {
                seed: Some(1 << 40),
                ..user("hi")
            },
        ),
        ("name", named),
        ("image detail", image_detail),
    ];
    for (what, req) in cases {
        match Gemini.build_request(&req, &target("gemini-2.5-flash")) {
            Err(TranslateError::Unsupported { provider, .. }) => assert_eq!(provider, "gemini"),
            other => panic!("{what}: expected Unsupported, got {other:?}"),
        }
        let up = Gemini.build_request(&req, &drop_target()).unwrap();
        assert_eq!(up.warnings.len(), 1, "{what}: {:?}", up.warnings);
        let body: Value = serde_json::from_slice(up.request.body()).unwrap();
        assert!(body["generationConfig"].get("seed").is_none(), "{what}");
        if specs_dir().is_some() {
            assert_valid_gemini(REQ, &body);
        }
    }
}

#[test]
fn user_and_metadata_are_dropped_with_a_warning_whatever_the_policy() {
    let req = ChatRequest {
        user: Some("u-1".into()),
        metadata: [("k".to_string(), "v".to_string())].into(),
        ..user("hi")
    };
    for t in [target("gemini-2.5-flash"), drop_target()] {
        let up = Gemini
            .build_request(&req, &t)
            .expect("bookkeeping fields never block");
        assert_eq!(up.warnings.len(), 2, "{:?}", up.warnings);
        assert!(up.warnings.iter().any(|w| w.contains("user")));
        assert!(up.warnings.iter().any(|w| w.contains("metadata")));
    }
}

#[test]
fn invalid_requests_are_invalid_not_unsupported() {
    let mut req = user("hi");
    req.messages.push(Message {
        tool_calls: vec![ToolCall {
            id: "c1".into(),
            name: "f".into(),
            arguments: "[1, 2]".into(),
        }],
        ..Message::text(Role::Assistant, "")
    });
    assert!(matches!(
        Gemini.build_request(&req, &target("m")),
        Err(TranslateError::Invalid(_))
    ));
    req.messages[1].tool_calls[0].arguments = "{not json".into();
    assert!(matches!(
        Gemini.build_request(&req, &target("m")),
        Err(TranslateError::Invalid(_))
    ));
    // A result for a call nobody made, without a name to fall back on.
    let mut orphan = user("hi");
    let mut tool = Message::text(Role::Tool, "42");
    tool.tool_call_id = Some("nope".into());
    orphan.messages.push(tool.clone());
    assert!(matches!(
        Gemini.build_request(&orphan, &target("m")),
        Err(TranslateError::Invalid(_))
    ));
    tool.name = Some("lookup".into());
    orphan.messages[1] = tool;
    let body = body_of(&orphan);
    assert_eq!(
        body["contents"][0]["parts"][1]["functionResponse"],
        json!({"id": "nope", "name": "lookup", "response": {"result": 42}})
    );
    // Only a system prompt: Gemini needs contents.
    let only_system = ChatRequest {
        messages: vec![Message::text(Role::System, "be brief")],
        ..user("")
    };
    assert!(matches!(
        Gemini.build_request(&only_system, &target("m")),
        Err(TranslateError::Invalid(_))
    ));
    let bad_data_url = ChatRequest {
        messages: vec![Message {
            content: Some(Content::Parts(vec![ContentPart::ImageUrl {
                url: "data:image/png,rawbytes".into(),
                detail: None,
            }])),
            ..Message::text(Role::User, "")
        }],
        ..user("")
    };
    assert!(matches!(
        Gemini.build_request(&bad_data_url, &target("m")),
        Err(TranslateError::Invalid(_))
    ));
}

#[test]
fn tool_choice_strict_reasoning_and_extra() {
    let tool = Tool {
        name: "f".into(),
        description: None,
        parameters: Some(json!({"type": "object", "properties": {}})),
        strict: None,
    };
    let mut req = ChatRequest {
        tools: vec![tool.clone()],
        tool_choice: Some(ToolChoice::Function { name: "f".into() }),
        ..user("hi")
    };
    assert_eq!(
        body_of(&req)["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}})
    );
    req.tool_choice = Some(ToolChoice::None);
    assert_eq!(
        body_of(&req)["toolConfig"]["functionCallingConfig"]["mode"],
        "NONE"
    );
    req.tool_choice = None;
    assert!(body_of(&req).get("toolConfig").is_none());
    req.tools[0].strict = Some(true);
    assert_eq!(
        body_of(&req)["toolConfig"]["functionCallingConfig"]["mode"],
        "VALIDATED"
    );

    let none = ChatRequest {
        reasoning_effort: Some(ReasoningEffort::None),
        temperature: Some(0.5),
        extra: json!({"generationConfig": {"topK": 3}, "cachedContent": "cachedContents/x"})
            .as_object()
            .unwrap()
            .clone(),
        ..user("hi")
    };
    let body = body_of(&none);
    assert_eq!(
        body["generationConfig"],
        json!({"temperature": 0.5, "topK": 3, "thinkingConfig": {"thinkingBudget": 0}})
    );
    assert_eq!(body["cachedContent"], "cachedContents/x");
}

#[test]
fn late_system_message_moves_up_with_a_warning() {
    let mut req = user("hi");
    req.messages
        .push(Message::text(Role::System, "now be formal"));
    let up = Gemini.build_request(&req, &target("m")).unwrap();
    assert_eq!(up.warnings.len(), 1);
    let body: Value = serde_json::from_slice(up.request.body()).unwrap();
    assert_eq!(
        body["systemInstruction"]["parts"][0]["text"],
        "now be formal"
    );
}

#[test]
fn camel_case_check_is_not_vacuous() {
    // The proto JSON parser takes snake_case too, so our own check is what guards the names.
    let snake = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                       "system_instruction": {"parts": [{"text": "x"}]}});
    if specs_dir().is_some() {
        assert!(check_gemini(REQ, &snake, true).is_ok());
        assert!(check_gemini(REQ, &json!({"systemInstructions": {}}), true).is_err());
    }
    let caught = std::panic::catch_unwind(|| assert_camel_case(&snake, "body"));
    assert!(caught.is_err());
}

#[test]
fn response_edge_cases() {
    let err = Gemini.parse_response(b"{not json").unwrap_err();
    assert_eq!(err.class, ErrorClass::StreamInterrupted);
    assert!(err.raw_body.is_some());
    let err = Gemini
        .parse_response(br#"{"modelVersion": "m"}"#)
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::StreamInterrupted);

    // Unknown finish reasons and fields from newer API versions are kept, not fatal.
    let body = json!({
        "candidates": [{"content": {"parts": [{"text": "x"}], "role": "model"},
                        "finishReason": "FUTURE_REASON", "newField": 1}],
        "usageMetadata": {"promptTokenCount": 5, "toolUsePromptTokenCount": 7, "totalTokenCount": 12},
    });
    let r = Gemini.parse_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(r.choices[0].finish_reason, Some(FinishReason::Other));
    assert_eq!(
        r.choices[0].native_finish_reason.as_deref(),
        Some("FUTURE_REASON")
    );
    let u = r.usage.unwrap();
    assert_eq!(
        (u.input_tokens, u.output_tokens, u.total_tokens),
        (12, 0, 12)
    );
    assert_eq!((u.cached_input_tokens, u.reasoning_tokens), (None, None));
    assert_eq!(u.native.unwrap().to_value(), body["usageMetadata"]);

    // A blocked prompt that still has candidates is not an error.
    let body = json!({"candidates": [{"finishReason": "SAFETY"}],
                      "promptFeedback": {"blockReason": "SAFETY"}});
    let r = Gemini.parse_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        r.choices[0].finish_reason,
        Some(FinishReason::ContentFilter)
    );
    assert_eq!(r.choices[0].message.content, None);
}

fn feed_all(frames: &[&str]) -> (Vec<StreamEvent>, Result<(), UpstreamError>, bool) {
    let mut p = Gemini.stream_parser();
    let mut out = Vec::new();
    for f in frames {
        if let Err(e) = p.feed(&SseFrame::data(*f), &mut out) {
            return (out, Err(e), p.is_done());
        }
    }
    let end = p.finish(&mut out);
    (out, end, p.is_done())
}

#[test]
fn stream_edge_cases() {
    let (events, end, _) = feed_all(&[]);
    assert!(events.is_empty());
    assert_eq!(end.unwrap_err().class, ErrorClass::StreamInterrupted);

    let (_, end, done) = feed_all(&[r#"{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}"#]);
    assert!(!done);
    assert_eq!(end.unwrap_err().class, ErrorClass::StreamInterrupted);

    let (_, end, _) = feed_all(&["{\"candidates\": ["]);
    assert_eq!(end.unwrap_err().class, ErrorClass::StreamInterrupted);

    // Frames after the finish are ignored; the last usage seen is the one reported.
    let (events, end, done) = feed_all(&[
        r#"{"candidates":[{"content":{"parts":[{"text":"a"}]}}],"usageMetadata":{"promptTokenCount":3,"totalTokenCount":3}}"#,
        r#"{"candidates":[{"content":{"parts":[{"text":"b"}]},"finishReason":"MAX_TOKENS"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"totalTokenCount":5}}"#,
        r#"{"candidates":[{"content":{"parts":[{"text":"late"}]}}]}"#,
    ]);
    assert!(end.is_ok() && done);
    let texts: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["a", "b"]);
    match events.last() {
        Some(StreamEvent::Usage(u)) => assert_eq!((u.input_tokens, u.output_tokens), (3, 2)),
        other => panic!("{other:?}"),
    }

    // Two candidates: done only when both have finished.
    let (events, end, _) = feed_all(&[
        r#"{"candidates":[{"index":0,"content":{"parts":[{"text":"a"}]},"finishReason":"STOP"},{"index":1,"content":{"parts":[{"text":"b"}]}}]}"#,
        r#"{"candidates":[{"index":1,"content":{"parts":[{"functionCall":{"name":"f"}}]},"finishReason":"STOP"}]}"#,
    ]);
    assert!(end.is_ok());
    assert!(events.contains(&StreamEvent::Finish {
        choice: 1,
        reason: FinishReason::ToolCalls,
        native_reason: Some("STOP".into())
    }));
    assert!(events.contains(&StreamEvent::ToolCallArguments {
        choice: 1,
        index: 0,
        arguments: "{}".into()
    }));
}

fn classify(status: u16, headers: &HeaderMap, body: &Value) -> UpstreamError {
    Gemini.classify_error(
        StatusCode::from_u16(status).unwrap(),
        headers,
        body.to_string().as_bytes(),
    )
}

#[test]
fn error_classification_details() {
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("7"));
    let plain_429 = json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}});
    assert_eq!(
        classify(429, &headers, &plain_429).class,
        ErrorClass::RateLimited {
            retry_after_ms: Some(7000)
        }
    );
    assert_eq!(
        classify(429, &HeaderMap::new(), &plain_429).class,
        ErrorClass::RateLimited {
            retry_after_ms: None
        }
    );
    // RetryInfo wins over the header and takes fractions.
    let with_info = json!({"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.250s"}]}});
    assert_eq!(
        classify(429, &headers, &with_info).class,
        ErrorClass::RateLimited {
            retry_after_ms: Some(250)
        }
    );
    // The array form (streamGenerateContent without alt=sse).
    let array = json!([{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}]);
    assert_eq!(
        classify(503, &HeaderMap::new(), &array).class,
        ErrorClass::Overloaded
    );
    let unauth = json!({"error": {"code": 401, "message": "no", "status": "UNAUTHENTICATED"}});
    assert_eq!(
        classify(401, &HeaderMap::new(), &unauth).class,
        ErrorClass::Auth
    );
    let big = json!({"error": {"code": 413, "message": "Request payload size exceeds the limit", "status": "INVALID_ARGUMENT"}});
    assert_eq!(
        classify(413, &HeaderMap::new(), &big).class,
        ErrorClass::PayloadTooLarge
    );
    // No Google body: the status decides, and nothing 4xx becomes retryable.
    let e = Gemini.classify_error(StatusCode::BAD_REQUEST, &HeaderMap::new(), b"oops");
    assert_eq!(e.class, ErrorClass::InvalidRequest);
    assert_eq!(e.raw_body.as_deref(), Some("oops"));
}

#[test]
fn server_parses_what_clients_send() {
    let body = json!({
        "contents": [
            {"role": "user", "parts": [{"text": "weather?"}]},
            {"role": "model", "parts": [{"text": "thinking", "thought": true},
                                         {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                                         {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 18}}},
                                        {"functionResponse": {"name": "get_weather", "response": {"result": "hot"}}}]}
        ],
        "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "w",
            "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "VALIDATED"}},
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 77}, "topK": 4, "responseMimeType": "text/x.enum"}
    });
    let req = GeminiServer
        .parse_request(Some("models/gemini-2.5-pro"), body.to_string().as_bytes())
        .unwrap();
    assert_eq!(req.model, "gemini-2.5-pro");
    let assistant = &req.messages[1];
    assert_eq!(assistant.reasoning.as_deref(), Some("thinking"));
    let ids: Vec<_> = assistant.tool_calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["call_0", "call_1"]);
    assert_eq!(req.messages[2].tool_call_id.as_deref(), Some("call_0"));
    assert_eq!(req.messages[2].text_content(), r#"{"temp":18}"#);
    assert_eq!(req.messages[3].tool_call_id.as_deref(), Some("call_1"));
    assert_eq!(req.messages[3].text_content(), "hot");
    assert_eq!(
        req.tools[0].parameters,
        Some(json!({"type": "object", "properties": {"city": {"type": "string"}}}))
    );
    assert_eq!(req.tools[0].strict, Some(true));
    assert_eq!(req.reasoning_effort, None);
    assert_eq!(
        req.extra["generationConfig"],
        json!({"thinkingConfig": {"thinkingBudget": 77}, "topK": 4, "responseMimeType": "text/x.enum"})
    );

    for bad in [
        json!({"contents": []}),
        json!({"contents": [{"role": "wizard", "parts": [{"text": "x"}]}]}),
        json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
               "safetySettings": [{"category": "HARM_CATEGORY_DEROGATORY", "threshold": "BLOCK_NONE"}]}),
    ] {
        let e = GeminiServer
            .parse_request(Some("m"), bad.to_string().as_bytes())
            .unwrap_err();
        assert_eq!(e.class, ErrorClass::InvalidRequest, "{bad}");
    }
    let e = GeminiServer.parse_request(Some("m"), b"{").unwrap_err();
    assert_eq!(e.class, ErrorClass::InvalidRequest);
}

#[test]
fn server_stream_encoder_orders_usage_and_errors() {
    let meta = StreamMeta {
        id: "r1".into(),
        model: "gemini-2.5-flash".into(),
        created: 0,
    };
    let mut enc = GeminiServer.stream_encoder(&ChatRequest::default(), meta.clone());
    let mut out = Vec::new();
    let usage = Usage {
        input_tokens: 4,
        output_tokens: 6,
        total_tokens: 10,
        reasoning_tokens: Some(2),
        ..Usage::default()
    };
    for e in [
        StreamEvent::Start {
            id: "r1".into(),
            model: "gemini-2.5-flash".into(),
            created: 0,
        },
        StreamEvent::ToolCallStart {
            choice: 0,
            index: 0,
            id: "c".into(),
            name: "f".into(),
        },
        StreamEvent::ToolCallArguments {
            choice: 0,
            index: 0,
            arguments: "{\"a\":".into(),
        },
        StreamEvent::ToolCallArguments {
            choice: 0,
            index: 0,
            arguments: "1}".into(),
        },
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::ToolCalls,
            native_reason: None,
        },
        StreamEvent::Usage(usage),
    ] {
        enc.encode(&e, &mut out);
    }
    enc.finish(&mut out);
    let frames = frames(&out);
    assert_eq!(frames.len(), 2, "one chunk for the call, one final");
    let last: Value = serde_json::from_str(&frames[1]).unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        last["usageMetadata"],
        json!({"promptTokenCount": 4, "candidatesTokenCount": 4, "thoughtsTokenCount": 2, "totalTokenCount": 10})
    );
    let first: Value = serde_json::from_str(&frames[0]).unwrap();
    assert_eq!(
        first["candidates"][0]["content"]["parts"][0]["functionCall"]["args"],
        json!({"a": 1})
    );
    assert_eq!(first["responseId"], "r1");

    // An in-stream error the client classifies like the HTTP one, retry delay included.
    let mut enc = GeminiServer.stream_encoder(&ChatRequest::default(), meta);
    let mut out = Vec::new();
    let err = UpstreamError::new(
        ErrorClass::RateLimited {
            retry_after_ms: Some(1500),
        },
        "slow",
    );
    enc.error(&err, &mut out);
    let r = replay(&out, &[]);
    assert_eq!(r.end.unwrap_err().class, err.class);
    let (status, body) = GeminiServer.encode_error(&err);
    assert_eq!(status, 429);
    let back = Gemini.classify_error(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), &body);
    assert_eq!(back.class, err.class);
}

#[test]
fn encode_response_keeps_other_providers_reasons_out() {
    let resp: ChatResponse = serde_json::from_value(json!({
        "id": "x", "model": "m", "created": 0,
        "choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop",
                     "native_finish_reason": "end_turn"}]
    }))
    .unwrap();
    let v: Value = serde_json::from_slice(&GeminiServer.encode_response(&resp)).unwrap();
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    if specs_dir().is_some() {
        assert_valid_gemini(RESP, &v);
    }
}

fn with_parts(parts: Vec<ContentPart>) -> ChatRequest {
    let mut req = user("");
    req.messages[0].content = Some(Content::Parts(parts));
    req
}

#[test]
fn files_and_audio_go_inline_and_file_ids_do_not() {
    use switchyard_core::AudioFormat;
    let b = body_of(&with_parts(vec![
        ContentPart::File {
            data: "JVBERi0=".into(),
            media_type: None,
            filename: Some("a.pdf".into()),
        },
        ContentPart::InputAudio {
            data: "SUQz".into(),
            format: AudioFormat::Mp3,
        },
    ]));
    assert_eq!(
        b["contents"][0]["parts"],
        json!([
            {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
            {"inlineData": {"mimeType": "audio/mp3", "data": "SUQz"}},
        ])
    );
    let file_id = ContentPart::FileId {
        file_id: "file-1".into(),
        filename: None,
    };
    let docx = ContentPart::File {
        data: "UEs=".into(),
        media_type: Some("application/msword".into()),
        filename: None,
    };
    for (part, says) in [(file_id, "file_id"), (docx, "application/msword")] {
        match Gemini.build_request(&with_parts(vec![part.clone()]), &target("gemini-2.5-flash")) {
            Err(TranslateError::Unsupported { feature, .. }) => {
                assert!(feature.contains(says), "{feature}")
            }
            other => panic!("expected Unsupported, got {:?}", other.map(|u| u.warnings)),
        }
        let mut req = with_parts(vec![ContentPart::Text { text: "t".into() }, part]);
        req.messages[0].role = Role::User;
        let up = Gemini.build_request(&req, &drop_target()).unwrap();
        assert_eq!(up.warnings.len(), 1, "{:?}", up.warnings);
    }
    // Not in assistant turns (before this, images there were dropped without a word).
    let mut req = user("q");
    let mut m = Message::text(Role::Assistant, "");
    m.content = Some(Content::Parts(vec![ContentPart::InputAudio {
        data: "SUQz".into(),
        format: AudioFormat::Mp3,
    }]));
    req.messages.push(m);
    req.messages.push(Message::text(Role::User, "again"));
    assert!(matches!(
        Gemini.build_request(&req, &target("gemini-2.5-flash")),
        Err(TranslateError::Unsupported { .. })
    ));
}

#[test]
fn a_request_over_20_mb_is_unsupported_whatever_the_policy() {
    let req = with_parts(vec![ContentPart::File {
        data: "A".repeat(switchyard_gemini::MAX_REQUEST_BYTES),
        media_type: Some("application/pdf".into()),
        filename: None,
    }]);
    for t in [target("gemini-2.5-flash"), drop_target()] {
        match Gemini.build_request(&req, &t) {
            Err(TranslateError::Unsupported { provider, feature }) => {
                assert_eq!(provider, "gemini");
                assert!(feature.contains("20 MB"), "{feature}");
            }
            other => panic!("expected Unsupported, got {:?}", other.map(|u| u.warnings)),
        }
    }
}

#[test]
fn server_reads_inline_files_and_audio_back() {
    use switchyard_core::AudioFormat;
    let native = json!({"contents": [{"role": "user", "parts": [
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "audio/mpeg", "data": "SUQz"}},
        {"inlineData": {"mimeType": "image/png", "data": "iVBO"}},
    ]}]});
    let req = GeminiServer
        .parse_request(Some("gemini-2.5-flash"), native.to_string().as_bytes())
        .unwrap();
    assert_eq!(
        req.messages[0].content,
        Some(Content::Parts(vec![
            ContentPart::File {
                data: "JVBERi0=".into(),
                media_type: Some("application/pdf".into()),
                filename: None,
            },
            ContentPart::InputAudio {
                data: "UklGRg==".into(),
                format: AudioFormat::Wav,
            },
            // Not the MIME type we write for MP3: kept as a file, so it rebuilds the same.
            ContentPart::File {
                data: "SUQz".into(),
                media_type: Some("audio/mpeg".into()),
                filename: None,
            },
            ContentPart::ImageUrl {
                url: "data:image/png;base64,iVBO".into(),
                detail: None,
            },
        ]))
    );
}
