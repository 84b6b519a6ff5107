//! Reasoning across tool calls, end to end: a client repeats the assistant turn it got, with
//! its `reasoning_details`, and the Anthropic mock must see the signed thinking first in that
//! turn, byte for byte. Without them, thinking is turned off for the request and the client
//! is told why (`x-switchyard-warning`), instead of getting Anthropic's 400.

mod common;

use common::*;
use serde_json::{json, Value};
use switchyard_sim::Wire;

const SIGNATURE: &str = "EuYBCkQIBhgCIkCv4Qs8nqJZbN0mX2m3cT6r+/==";
const REDACTED: &str = "EmwKAhgBEgy3va3pzix/LafPsn4a";
const THINKING: &str = "The user wants the weather in Paris.";

fn tool_loop(details: Option<Value>) -> Value {
    let mut assistant = json!({
        "role": "assistant",
        "content": null,
        "tool_calls": [{"id": "toolu_01Paris", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}],
        "reasoning_content": THINKING,
    });
    if let Some(d) = details {
        assistant["reasoning_details"] = d;
    }
    json!({
        "model": "chat",
        "reasoning_effort": "low",
        "tools": [{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "messages": [
            {"role": "user", "content": "What is the weather in Paris?"},
            assistant,
            {"role": "tool", "tool_call_id": "toolu_01Paris", "content": "18C, sunny"},
        ],
    })
}

#[tokio::test]
async fn signed_thinking_reaches_anthropic_unmodified() {
    let h = harness(&[(Wire::Anthropic, "claude")], "").await;
    let details = json!([
        {"type": "reasoning.text", "text": THINKING, "signature": SIGNATURE,
         "format": "anthropic-claude-v1", "index": 0},
        {"type": "reasoning.encrypted", "data": REDACTED, "format": "anthropic-claude-v1",
         "index": 1},
    ]);
    let (status, headers, body) = h.chat(tool_loop(Some(details))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "x-switchyard-warning"), "");

    let sent = h.mocks[0].requests()[0].json();
    assert_eq!(sent["thinking"]["type"], "enabled");
    let turn = &sent["messages"][1]["content"];
    assert_eq!(
        turn[0],
        json!({"type": "thinking", "thinking": THINKING, "signature": SIGNATURE})
    );
    assert_eq!(
        turn[1],
        json!({"type": "redacted_thinking", "data": REDACTED})
    );
    assert_eq!(turn[2]["type"], "tool_use");
}

#[tokio::test]
async fn without_signed_thinking_thinking_is_turned_off_and_the_client_told() {
    let h = harness(&[(Wire::Anthropic, "claude")], "").await;
    let (status, headers, body) = h.chat(tool_loop(None)).await;
    assert_eq!(status, 200, "{body}");
    let warning = header(&headers, "x-switchyard-warning");
    assert!(warning.contains("thinking turned off"), "{warning:?}");
    assert!(
        body["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("thinking turned off")),
        "{body}"
    );

    let sent = h.mocks[0].requests()[0].json();
    assert_eq!(sent["thinking"], json!({"type": "disabled"}));
    assert_eq!(sent["messages"][1]["content"][0]["type"], "tool_use");
}
