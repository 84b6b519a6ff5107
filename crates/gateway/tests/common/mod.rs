//! Test harness: mock providers on loopback, a gateway in front of them, a client.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::{json, Value};
use switchyard_gateway::Running;
use switchyard_sim::{Fault, FaultRule, MockConfig, MockProvider, Wire};

pub struct Harness {
    pub mocks: Vec<MockProvider>,
    pub gateway: Running,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

pub const KEY: &str = "sk-test-SECRET-0123456789";

/// Starts one mock per `(wire, name)` and a gateway whose model `chat` routes to them in
/// order. `extra` is appended to the generated config (e.g. breaker settings).
pub async fn harness(mocks: &[(Wire, &str)], extra: &str) -> Harness {
    harness_with(mocks, extra, |_| {}).await
}

pub async fn harness_with(
    mocks: &[(Wire, &str)],
    extra: &str,
    tweak: impl Fn(&mut MockConfig),
) -> Harness {
    let with_fields: Vec<(Wire, &str, &str)> = mocks.iter().map(|(w, n)| (*w, *n, "")).collect();
    harness_targets(&with_fields, extra, tweak).await
}

/// Like [`harness_with`], with extra inline-table fields per target
/// (e.g. `context_window = 8000`).
pub async fn harness_targets(
    mocks: &[(Wire, &str, &str)],
    extra: &str,
    tweak: impl Fn(&mut MockConfig),
) -> Harness {
    harness_route(mocks, extra, "", tweak).await
}

/// Like [`harness_targets`], with `route` lines inside `[models.chat]` (e.g.
/// `strategy = "latency"`).
pub async fn harness_route(
    mocks: &[(Wire, &str, &str)],
    extra: &str,
    route: &str,
    tweak: impl Fn(&mut MockConfig),
) -> Harness {
    let mut started = Vec::new();
    for (wire, name, _) in mocks {
        let mut c = MockConfig::new(*wire, *name);
        tweak(&mut c);
        started.push(MockProvider::start(c).await.expect("mock starts"));
    }
    let mut targets = String::new();
    for (m, (wire, name, fields)) in started.iter().zip(mocks) {
        let fields = if fields.is_empty() {
            String::new()
        } else {
            format!(", {fields}")
        };
        let (provider, base) = match wire {
            Wire::OpenAi => ("openai", format!("{}/v1", m.url())),
            Wire::Anthropic => ("anthropic", m.url()),
            Wire::Gemini => ("gemini", m.url()),
        };
        targets.push_str(&format!(
            "  {{ name = \"{name}\", provider = \"{provider}\", base_url = \"{base}\", api_key = \"${{TEST_KEY}}\", model = \"{name}-model\"{fields} }},\n"
        ));
    }
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
workers = 2
max_body_bytes = 65536
request_timeout_ms = 10000

[timeouts]
connect_ms = 500
headers_ms = 1000
first_token_ms = 1000
stall_ms = 600
total_ms = 5000

{extra}

[models.chat]
{route}
targets = [
{targets}]
"#
    );
    let (gateway, tx) = start_from(&text).await;
    Harness {
        mocks: started,
        gateway,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        stop: Some(tx),
    }
}

/// A gateway from config text (`${TEST_KEY}` is [`KEY`]), and the sender that stops it when
/// dropped.
pub async fn start_from(
    text: &str,
) -> (
    switchyard_gateway::Running,
    tokio::sync::oneshot::Sender<()>,
) {
    let config = switchyard_gateway::config::parse(text, "test", &|v| {
        (v == "TEST_KEY").then(|| KEY.to_string())
    })
    .unwrap_or_else(|e| panic!("test config invalid: {e}\n{text}"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let gw = switchyard_gateway::start(&config, async {
        let _ = rx.await;
    })
    .await
    .expect("gateway starts");
    (gw, tx)
}

pub fn status(code: u16) -> Fault {
    Fault::Status {
        status: code,
        retry_after_s: None,
        code: None,
    }
}

impl Harness {
    /// Tells the gateway to stop (what Ctrl-C does to the binary).
    pub fn shut_down(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    pub fn fault(&self, mock: usize, fault: Fault, count: u32) {
        self.mocks[mock].push_fault(FaultRule::next(fault, count));
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.url())
    }

    /// `GET /health` as JSON.
    pub async fn health(&self) -> Value {
        self.client
            .get(self.url("/health"))
            .send()
            .await
            .expect("gateway answers")
            .json()
            .await
            .expect("health is JSON")
    }

    pub async fn post_raw(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(self.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("gateway answers")
    }

    pub async fn chat(&self, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
        let resp = self.post_raw(body.to_string()).await;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        assert!(!text.contains(KEY), "API key leaked to the client: {text}");
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("gateway answered non-JSON ({e}): {text}"));
        (status, headers, json)
    }

    /// Streams a request and returns (status, headers, the data payloads in order).
    pub async fn chat_stream(&self, body: Value) -> (u16, reqwest::header::HeaderMap, Vec<String>) {
        let resp = self.post_raw(body.to_string()).await;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        assert!(!text.contains(KEY), "API key leaked to the client: {text}");
        let mut decoder = switchyard_sse::SseDecoder::new();
        let mut frames = Vec::new();
        decoder
            .feed(text.as_bytes(), &mut frames)
            .expect("valid SSE");
        assert!(!decoder.finish(), "stream ended mid-frame: {text}");
        (
            status,
            headers,
            frames.into_iter().map(|f| f.data).collect(),
        )
    }
}

pub fn user(text: &str) -> Value {
    json!({"model": "chat", "messages": [{"role": "user", "content": text}]})
}

pub fn stream_req(text: &str) -> Value {
    json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": text}]})
}

pub fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Concatenated `delta.content` of a stream's chunks.
pub fn stream_text(payloads: &[String]) -> String {
    payloads
        .iter()
        .filter(|p| p.as_str() != "[DONE]")
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

pub fn content(v: &Value) -> &str {
    v["choices"][0]["message"]["content"].as_str().unwrap_or("")
}
