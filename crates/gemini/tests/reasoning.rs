//! Thought signatures through the OpenAI front door. Gemini 3 refuses a follow-up whose
//! function call lost its `thoughtSignature`; the signature rides in the tool-call id
//! (`signature.rs`), which OpenAI clients echo verbatim. These tests take Gemini's answer
//! (`fixtures/gemini/tools`, whole and streamed) through the client's JSON and its next
//! request back to Gemini, and check the signature arrives on the same call.

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_core::{Provider, ServerSide, StreamEncoder, StreamMeta};
use switchyard_gemini::Gemini;
use switchyard_openai::{OpenAiServer, OpenAiStreamEncoder};
use switchyard_spec_check::{assert_valid_gemini, specs_dir};

const SIGNATURE: &str = "c2lnbmF0dXJl";

fn native_answer() -> Value {
    read_json(&fixtures().join("tools/response.json"))
}

/// The client's follow-up: its question, the assistant message it got, the tool's result
/// for each call (by the id it was given).
fn next_request(assistant: Value) -> Value {
    let results: Vec<Value> = assistant["tool_calls"]
        .as_array()
        .expect("tool calls")
        .iter()
        .map(|c| json!({"role": "tool", "tool_call_id": c["id"], "content": "18C, sunny"}))
        .collect();
    let mut messages = vec![
        json!({"role": "user", "content": "Weather in Paris?"}),
        assistant,
    ];
    messages.extend(results);
    json!({
        "model": "alias",
        "tools": [{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                            "unit": {"type": "string"}}}}}],
        "messages": messages,
    })
}

/// Client request → front door → the Gemini body, with the signature on the model's call.
fn check_signature_reaches_gemini(client_request: &Value) {
    let canonical = OpenAiServer
        .parse_request(None, client_request.to_string().as_bytes())
        .expect("the front door takes it");
    let up = Gemini
        .build_request(&canonical, &target("gemini-3-pro-preview"))
        .expect("builds");
    let body: Value = serde_json::from_slice(up.request.body()).expect("JSON");
    if specs_dir().is_some() {
        assert_valid_gemini(REQ, &body);
    }
    let native = native_answer();
    let model_part = &body["contents"][1]["parts"][0];
    assert_eq!(body["contents"][1]["role"], "model");
    assert_eq!(model_part["thoughtSignature"].as_str(), Some(SIGNATURE));
    assert_eq!(
        model_part["functionCall"], native["candidates"][0]["content"]["parts"][0]["functionCall"],
        "the call goes back as Gemini sent it, its own id without the signature"
    );
    let response = &body["contents"][2]["parts"][0]["functionResponse"];
    assert_eq!(response["id"], "fc-7f3a");
    assert_eq!(response["name"], "get_weather");
}

#[test]
fn a_signature_survives_a_whole_answer_and_the_follow_up() {
    let bytes = serde_json::to_vec(&native_answer()).unwrap();
    let answer = Gemini.parse_response(&bytes).expect("parses");
    let client: Value = serde_json::from_slice(&OpenAiServer.encode_response(&answer)).unwrap();
    let message = client["choices"][0]["message"].clone();
    assert_eq!(
        message["tool_calls"][0]["id"],
        format!("fc-7f3a__thought__{SIGNATURE}")
    );
    check_signature_reaches_gemini(&next_request(message));
}

#[test]
fn a_signature_survives_a_streamed_answer_and_the_follow_up() {
    let bytes = std::fs::read(fixtures().join("tools/stream.sse")).unwrap();
    let replay = replay(&bytes, &[]);
    replay.end.expect("complete stream");
    let meta = StreamMeta {
        id: "chatcmpl-1".into(),
        model: "gemini-2.5-flash".into(),
        created: 1,
    };
    let mut enc = OpenAiStreamEncoder::new(meta, false);
    let mut out = Vec::new();
    for e in &replay.events {
        enc.encode(e, &mut out);
    }
    enc.finish(&mut out);
    // The client puts the calls together by index, as the SDKs' stream helpers do.
    let mut decoder = switchyard_sse::SseDecoder::new();
    let mut frames = Vec::new();
    decoder.feed(&out, &mut frames).unwrap();
    let mut calls: Vec<Value> = Vec::new();
    for f in frames.iter().filter(|f| f.data != "[DONE]") {
        let chunk: Value = serde_json::from_str(&f.data).unwrap();
        for c in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = c["index"].as_u64().unwrap() as usize;
            if i == calls.len() {
                calls.push(json!({"id": c["id"], "type": "function",
                    "function": {"name": c["function"]["name"], "arguments": ""}}));
            }
            let args = calls[i]["function"]["arguments"]
                .as_str()
                .unwrap()
                .to_string()
                + c["function"]["arguments"].as_str().unwrap_or("");
            calls[i]["function"]["arguments"] = json!(args);
        }
    }
    let message = json!({"role": "assistant", "content": null, "tool_calls": calls});
    check_signature_reaches_gemini(&next_request(message));
}
