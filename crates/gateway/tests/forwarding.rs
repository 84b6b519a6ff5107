//! Non-streamed answers from an OpenAI upstream go to the client byte for byte when they pass
//! `forwardable`; anything else still takes the canonical path (translated, checked, failed
//! over). The upstream here is a raw HTTP server with canned bodies, because the mock
//! providers only write what the canonical model can express.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use switchyard_sim::{MockConfig, MockProvider, Wire};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An OpenAI-compatible upstream that answers each request with the next canned body (200,
/// JSON), keeping connections alive.
async fn canned_upstream(bodies: Vec<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let queue = Arc::new(Mutex::new(VecDeque::from(bodies)));
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            let queue = Arc::clone(&queue);
            tokio::spawn(async move { serve(sock, queue).await });
        }
    });
    url
}

async fn serve(mut sock: TcpStream, queue: Arc<Mutex<VecDeque<&'static str>>>) {
    let mut buf = Vec::new();
    loop {
        // Read one request: the head, then content-length bytes of body.
        let (head_end, length) = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse::<usize>().unwrap())
                    .unwrap_or(0);
                break (end + 4, length);
            }
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + length);
        let body = queue
            .lock()
            .unwrap()
            .pop_front()
            .expect("a canned body left");
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if sock.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

struct Gateway {
    gw: switchyard_gateway::Running,
    fallback: MockProvider,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A gateway whose route `chat` goes to the canned upstream, then to an OpenAI mock.
async fn gateway(primary: &str, route_extra: &str) -> Gateway {
    let fallback = MockProvider::start(MockConfig::new(Wire::OpenAi, "fallback"))
        .await
        .unwrap();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[models.chat]
{route_extra}
targets = [
  {{ name = "canned", provider = "openai", base_url = "{primary}", api_key = "k", model = "m" }},
  {{ name = "fallback", provider = "openai", base_url = "{}/v1", api_key = "k", model = "m" }},
]
"#,
        fallback.url()
    );
    let (gw, tx) = common::start_from(&text).await;
    Gateway {
        gw,
        fallback,
        _stop: tx,
    }
}

async fn ask(gw: &Gateway, body: Value) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.gw.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

fn hello() -> Value {
    json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
}

/// An answer with what OpenAI sends today and the canonical model does not carry
/// (`annotations`, a field of the future), and an escaped string.
const RICH: &str = r#"{"id":"chatcmpl-canned1","object":"chat.completion","created":1760000000,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"line one\nline \"two\"","refusal":null,"annotations":[{"type":"url_citation","url_citation":{"url":"https://example.com"}}]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":5,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":0}},"service_tier":"default","system_fingerprint":"fp_x","x_future_field":{"kept":true}}"#;

#[tokio::test]
async fn an_openai_answer_reaches_the_client_byte_for_byte() {
    let gw = gateway(&canned_upstream(vec![RICH]).await, "").await;
    let (status, headers, body) = ask(&gw, hello()).await;
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(body).unwrap(), RICH);
    assert_eq!(headers["x-switchyard-target"], "canned");
    assert_eq!(headers["x-switchyard-attempts"], "1");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(gw.fallback.request_count(), 0);
}

#[tokio::test]
async fn an_answer_the_encoder_would_normalise_is_translated() {
    // An OpenAI-compatible server's own finish reason: OpenAI clients only know five.
    const ODD: &str = r#"{"id":"chatcmpl-canned2","object":"chat.completion","created":1760000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"eos"}],"x_future_field":1}"#;
    let gw = gateway(&canned_upstream(vec![ODD]).await, "").await;
    let (status, _, body) = ask(&gw, hello()).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "hello");
    assert!(v.get("x_future_field").is_none(), "re-encoded: {v}");
}

#[tokio::test]
async fn a_malformed_200_still_fails_over() {
    const BROKEN: &str = r#"{"id":"chatcmpl-canned3","object":"chat.completion","created":1760000000,"model":"m","choices":"none"}"#;
    let gw = gateway(&canned_upstream(vec![BROKEN]).await, "").await;
    let (status, headers, body) = ask(&gw, hello()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["x-switchyard-target"], "fallback");
    assert_eq!(headers["x-switchyard-attempts"], "2");
    assert_eq!(gw.fallback.request_count(), 1);
}

#[tokio::test]
async fn warnings_still_reach_the_body_of_a_same_format_answer() {
    let gw = gateway(
        &canned_upstream(vec![RICH]).await,
        "on_unsupported = \"drop\"",
    )
    .await;
    let mut req = hello();
    req["safety_settings"] = json!([
        {"category": "harassment", "threshold": "block_only_high"}
    ]);
    let (status, headers, body) = ask(&gw, req).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        v["warnings"][0].as_str().unwrap_or("").contains("safety"),
        "{v}"
    );
    assert!(headers.contains_key("x-switchyard-warning"));
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "line one\nline \"two\""
    );
}
