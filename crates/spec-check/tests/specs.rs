//! Proves each checker both accepts valid and rejects invalid payloads.

use serde_json::{json, Value};
use switchyard_spec_check::{
    assert_invalid, assert_valid, assert_valid_gemini, check, check_gemini, check_gemini_error,
    check_overlay, unknown_keys, Api, Overlay,
};

const OPENAI_REQ: &str = "CreateChatCompletionRequest";
const GEMINI_REQ: &str = "google.ai.generativelanguage.v1beta.GenerateContentRequest";
const GEMINI_RESP: &str = "google.ai.generativelanguage.v1beta.GenerateContentResponse";

fn openai_request() -> Value {
    json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}
            }]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
        }}],
        "temperature": 0.2,
        "max_completion_tokens": null,
        "stream": true,
        "stream_options": {"include_usage": true},
        "response_format": {"type": "text"}
    })
}

fn with(mut value: Value, pointer: &str, new: Value) -> Value {
    *value
        .pointer_mut(pointer)
        .expect("pointer exists in fixture") = new;
    value
}

#[test]
fn openai_request_valid_and_invalid() {
    switchyard_spec_check::require_specs!();
    assert_valid(Api::OpenAi, OPENAI_REQ, &openai_request());

    let mut missing = openai_request();
    missing.as_object_mut().unwrap().remove("messages");
    let err = check(Api::OpenAi, OPENAI_REQ, &missing).unwrap_err();
    assert!(err.contains("messages"), "{err}");

    let wizard = with(openai_request(), "/messages/1/role", json!("wizard"));
    let err = check(Api::OpenAi, OPENAI_REQ, &wizard).unwrap_err();
    assert!(
        err.starts_with("/messages/1"),
        "error should name the path: {err}"
    );

    let hot = with(openai_request(), "/temperature", json!("hot"));
    let err = check(Api::OpenAi, OPENAI_REQ, &hot).unwrap_err();
    assert!(err.contains("/temperature"), "{err}");
}

#[test]
fn openai_unknown_keys_catch_typos() {
    switchyard_spec_check::require_specs!();
    assert_eq!(
        unknown_keys(Api::OpenAi, OPENAI_REQ, &openai_request()),
        Vec::<String>::new()
    );
    let typo = with(openai_request(), "/max_completion_tokens", json!(5));
    let mut typo = typo;
    typo["max_tokenz"] = json!(5);
    // The open schema lets the typo through; unknown_keys does not.
    assert_valid(Api::OpenAi, OPENAI_REQ, &typo);
    assert_eq!(unknown_keys(Api::OpenAi, OPENAI_REQ, &typo), ["max_tokenz"]);
}

#[test]
fn openai_stream_chunk_nulls_pass_bad_finish_reason_fails() {
    switchyard_spec_check::require_specs!();
    let chunk = json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "logprobs": null, "finish_reason": null}]
    });
    assert_valid(Api::OpenAi, "CreateChatCompletionStreamResponse", &chunk);
    let done = with(chunk, "/choices/0/finish_reason", json!("done"));
    let err = check(Api::OpenAi, "CreateChatCompletionStreamResponse", &done).unwrap_err();
    assert!(err.contains("/choices/0/finish_reason"), "{err}");
}

#[test]
fn openai_response_finish_reason() {
    switchyard_spec_check::require_specs!();
    let resp = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
            "message": {"role": "assistant", "content": "Hi", "refusal": null}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    });
    assert_valid(Api::OpenAi, "CreateChatCompletionResponse", &resp);
    let done = with(resp, "/choices/0/finish_reason", json!("done"));
    assert_invalid(Api::OpenAi, "CreateChatCompletionResponse", &done);
}

#[test]
fn anthropic_create_message_params() {
    switchyard_spec_check::require_specs!();
    let req = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hello"}]
    });
    assert_valid(Api::Anthropic, "CreateMessageParams", &req);
    let mut no_max = req.clone();
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let err = check(Api::Anthropic, "CreateMessageParams", &no_max).unwrap_err();
    assert!(err.contains("max_tokens"), "{err}");
    let bad_role = with(req, "/messages/0/role", json!("system"));
    assert_invalid(Api::Anthropic, "CreateMessageParams", &bad_role);
}

#[test]
fn mistral_chat_completion_request() {
    switchyard_spec_check::require_specs!();
    let req = json!({
        "model": "mistral-large-latest",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Hi"}],
        "temperature": 0.3,
        "random_seed": 7
    });
    assert_valid(Api::Mistral, "ChatCompletionRequest", &req);
    let mut no_messages = req.clone();
    no_messages.as_object_mut().unwrap().remove("messages");
    assert_invalid(Api::Mistral, "ChatCompletionRequest", &no_messages);
    assert_invalid(
        Api::Mistral,
        "ChatCompletionRequest",
        &with(req, "/random_seed", json!("seven")),
    );
}

#[test]
fn unknown_schema_name_panics_instead_of_failing_validation() {
    switchyard_spec_check::require_specs!();
    // A typo in the schema name must not make assert_invalid pass.
    let result = std::panic::catch_unwind(|| check(Api::Anthropic, "NoSuchSchema", &json!({})));
    assert!(result.is_err());
}

fn gemini_request() -> Value {
    json!({
        "contents": [
            {"role": "user", "parts": [{"text": "weather in Paris?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"t": 18}}}]}
        ],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "w",
            "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}}]}],
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 256,
            "thinkingConfig": {"thinkingBudget": 128}}
    })
}

#[test]
fn gemini_request_strict() {
    switchyard_spec_check::require_specs!();
    assert_valid_gemini(GEMINI_REQ, &gemini_request());

    let mut typo = gemini_request();
    let si = typo
        .as_object_mut()
        .unwrap()
        .remove("systemInstruction")
        .unwrap();
    typo["systemInstructions"] = si;
    let err = check_gemini(GEMINI_REQ, &typo, true).unwrap_err();
    assert!(err.contains("systemInstructions"), "{err}");

    let bad = with(
        gemini_request(),
        "/safetySettings/0/threshold",
        json!("BLOCK_SOME"),
    );
    assert!(check_gemini(GEMINI_REQ, &bad, true).is_err());
}

#[test]
fn gemini_response_strict_vs_lenient() {
    switchyard_spec_check::require_specs!();
    let resp = json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4},
        "modelVersion": "gemini-2.5-flash"
    });
    assert!(check_gemini(GEMINI_RESP, &resp, true).is_ok());
    let future = with(resp, "/candidates/0/finishReason", json!("FUTURE_REASON"));
    assert!(check_gemini(GEMINI_RESP, &future, true).is_err());
    assert!(check_gemini(GEMINI_RESP, &future, false).is_ok());
}

#[test]
fn gemini_error_body() {
    switchyard_spec_check::require_specs!();
    let body = json!({"error": {
        "code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]
    }});
    check_gemini_error(&body).unwrap();
    let bad = with(body.clone(), "/error/status", json!("NOT_A_CODE"));
    let err = check_gemini_error(&bad).unwrap_err();
    assert!(err.contains("NOT_A_CODE"), "{err}");
    let bad_code = with(body, "/error/code", json!("429x"));
    assert!(check_gemini_error(&bad_code).is_err());
}

#[test]
fn deepseek_overlay_usage() {
    switchyard_spec_check::require_specs!();
    let usage = json!({
        "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
        "prompt_cache_hit_tokens": 4, "prompt_cache_miss_tokens": 6,
        "completion_tokens_details": {"reasoning_tokens": 2}
    });
    check_overlay(Overlay::DeepSeek, "Usage", &usage).unwrap();
    let negative = with(usage.clone(), "/prompt_cache_hit_tokens", json!(-1));
    let err = check_overlay(Overlay::DeepSeek, "Usage", &negative).unwrap_err();
    assert!(err.contains("/prompt_cache_hit_tokens"), "{err}");
    let mut no_total = usage;
    no_total.as_object_mut().unwrap().remove("total_tokens");
    assert!(check_overlay(Overlay::DeepSeek, "Usage", &no_total).is_err());
    assert!(check_overlay(
        Overlay::DeepSeek,
        "FinishReason",
        &json!("insufficient_system_resource")
    )
    .is_ok());
    assert!(check_overlay(Overlay::Qwen, "Usage", &json!({"prompt_tokens": "x"})).is_err());
}
