//! Failover across wire formats: an OpenAI-shaped request goes to Anthropic (529), Gemini and
//! OpenAI mocks; whoever answers, the client gets valid OpenAI JSON (checked against OpenAI's
//! spec) with normalized usage. Also: the safety policy is mapped, rejected or dropped — never
//! silently.

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_sim::Wire;
use switchyard_spec_check::{assert_valid, Api};

const CHAIN: &[(Wire, &str)] = &[
    (Wire::Anthropic, "claude"),
    (Wire::Gemini, "gemini"),
    (Wire::OpenAi, "gpt"),
];

fn tool_request(stream: bool) -> Value {
    json!({
        "model": "chat",
        "stream": stream,
        "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null },
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What's the weather in Paris?"}
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
        }}]
    })
}

fn check_completion(body: &Value) {
    switchyard_spec_check::require_specs!();
    assert_valid(Api::OpenAi, "CreateChatCompletionResponse", body);
}

#[tokio::test]
async fn anthropic_529_then_gemini_answers_a_tool_call_in_openai_shape() {
    let h = harness(CHAIN, "").await;
    h.fault(0, status(529), 1);
    let mut req = tool_request(false);
    req.as_object_mut().unwrap().remove("stream_options");
    let (st, headers, body) = h.chat(req).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(header(&headers, "x-switchyard-target"), "gemini");
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"location": "Paris"}));
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    let usage = &body["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    check_completion(&body);
    // The Anthropic mock got a native Messages request: system on top, tools with input_schema.
    let sent = h.mocks[0].requests()[0].json();
    assert_eq!(sent["system"], "You are terse.");
    assert_eq!(
        sent["tools"][0]["input_schema"]["required"],
        json!(["location"])
    );
    // Gemini got systemInstruction and functionDeclarations.
    let sent = h.mocks[1].requests()[0].json();
    assert_eq!(
        sent["systemInstruction"]["parts"][0]["text"],
        "You are terse."
    );
    assert_eq!(
        sent["tools"][0]["functionDeclarations"][0]["name"],
        "get_weather"
    );
}

#[tokio::test]
async fn anthropic_529_and_gemini_503_then_openai_streams_the_tool_call() {
    let h = harness(CHAIN, "").await;
    h.fault(0, status(529), 1);
    h.fault(1, status(503), 1);
    let (st, headers, payloads) = h.chat_stream(tool_request(true)).await;
    assert_eq!(st, 200);
    assert_eq!(header(&headers, "x-switchyard-target"), "gpt");
    assert_eq!(header(&headers, "x-switchyard-attempts"), "3");
    let mut name = String::new();
    let mut args = String::new();
    for p in payloads.iter().filter(|p| p.as_str() != "[DONE]") {
        let v: Value = serde_json::from_str(p).unwrap();
        if switchyard_spec_check::specs_dir().is_some() {
            assert_valid(Api::OpenAi, "CreateChatCompletionStreamResponse", &v);
        }
        for tc in v["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            name.push_str(tc["function"]["name"].as_str().unwrap_or(""));
            args.push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    assert_eq!(name, "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"location": "Paris"})
    );
}

#[tokio::test]
async fn every_format_streams_text_with_normalized_usage() {
    for (wire, name) in CHAIN {
        let h = harness(&[(*wire, name)], "").await;
        let mut req = stream_req("hello");
        req["stream_options"] = json!({"include_usage": true});
        let (st, _, payloads) = h.chat_stream(req).await;
        assert_eq!(st, 200, "{wire:?}");
        assert_eq!(
            stream_text(&payloads),
            format!("Hello from {name}! You said: hello"),
            "{wire:?}"
        );
        let usage: Value = serde_json::from_str(&payloads[payloads.len() - 2]).unwrap();
        assert_eq!(usage["choices"], json!([]), "{wire:?}");
        assert!(
            usage["usage"]["prompt_tokens"].as_u64().unwrap() > 0,
            "{wire:?}: {usage}"
        );
        assert!(
            usage["usage"]["completion_tokens"].as_u64().unwrap() > 0,
            "{wire:?}"
        );
        for p in payloads.iter().filter(|p| p.as_str() != "[DONE]") {
            if switchyard_spec_check::specs_dir().is_some() {
                assert_valid(
                    Api::OpenAi,
                    "CreateChatCompletionStreamResponse",
                    &serde_json::from_str(p).unwrap(),
                );
            }
        }
        let (st, _, body) = h.chat(user("plain")).await;
        assert_eq!(st, 200, "{wire:?}");
        assert_eq!(
            content(&body),
            format!("Hello from {name}! You said: plain")
        );
        check_completion(&body);
    }
}

fn safety_request() -> Value {
    json!({
        "model": "chat",
        "messages": [{"role": "user", "content": "hi"}],
        "safety_settings": [{"category": "harassment", "threshold": "block_only_high"}]
    })
}

#[tokio::test]
async fn a_safety_policy_skips_a_target_that_cannot_express_it_and_reaches_gemini() {
    let h = harness(CHAIN, "").await;
    let (st, headers, body) = h.chat(safety_request()).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(header(&headers, "x-switchyard-target"), "gemini");
    assert_eq!(
        h.mocks[0].request_count(),
        0,
        "Anthropic was never sent a request it cannot honour"
    );
    let sent = h.mocks[1].requests()[0].json();
    assert_eq!(
        sent["safetySettings"],
        json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}])
    );
}

/// A mock speaking `wire` and a gateway whose alias `chat` has that one target, configured by
/// `provider`, `base_suffix` and extra route lines.
async fn single_target(
    wire: Wire,
    provider: &str,
    base_suffix: &str,
    route_extra: &str,
) -> (
    switchyard_sim::MockProvider,
    switchyard_gateway::Running,
    tokio::sync::oneshot::Sender<()>,
) {
    let mock = switchyard_sim::MockProvider::start(switchyard_sim::MockConfig::new(wire, provider))
        .await
        .unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[models.chat]\n{route_extra}\ntargets = [ {{ provider = \"{provider}\", base_url = \"{}{base_suffix}\", api_key = \"k\", model = \"{provider}-model\" }} ]\n",
        mock.url()
    );
    let (gw, tx) = start_from(&text).await;
    (mock, gw, tx)
}

/// A gateway with one Anthropic target and the given `on_unsupported` route policy.
async fn anthropic_only(
    policy: &str,
) -> (
    switchyard_sim::MockProvider,
    switchyard_gateway::Running,
    tokio::sync::oneshot::Sender<()>,
) {
    single_target(
        Wire::Anthropic,
        "anthropic",
        "",
        &format!("on_unsupported = \"{policy}\""),
    )
    .await
}

#[tokio::test]
async fn a_safety_policy_no_target_can_express_is_a_clear_400_by_default() {
    let (mock, gw, _stop) = anthropic_only("reject").await;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .json(&safety_request())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("safety"),
        "{body}"
    );
    assert_eq!(mock.request_count(), 0, "rejected before any network call");
}

#[tokio::test]
async fn route_drop_policy_answers_and_says_what_was_dropped() {
    let (mock, gw, _stop) = anthropic_only("drop").await;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .json(&safety_request())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let warning = resp
        .headers()
        .get("x-switchyard-warning")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body: Value = resp.json().await.unwrap();
    assert!(warning.contains("safety"), "header: {warning:?}");
    assert!(
        body["warnings"][0].as_str().unwrap().contains("safety"),
        "{body}"
    );
    assert_eq!(mock.request_count(), 1);
}

/// The OpenAI dialects reach an OpenAI-format upstream through the gateway (wired by cargo
/// features) and come back in OpenAI shape, streamed and not.
#[tokio::test]
async fn openai_dialects_are_wired_in() {
    for (provider, base_suffix) in [("mistral", "/v1"), ("deepseek", ""), ("qwen", "/v1")] {
        let (mock, gw, _stop) = single_target(Wire::OpenAi, provider, base_suffix, "").await;
        let client = reqwest::Client::new();
        let body: Value = client
            .post(format!("{}/v1/chat/completions", gw.url()))
            .json(&user("hi"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            content(&body),
            format!("Hello from {provider}! You said: hi"),
            "{body}"
        );
        check_completion(&body);
        let text = client
            .post(format!("{}/v1/chat/completions", gw.url()))
            .json(&stream_req("hi"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains("data: [DONE]"), "{provider}: {text}");
        assert_eq!(
            mock.requests()[0].json()["model"],
            format!("{provider}-model")
        );
    }
}
