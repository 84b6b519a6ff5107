//! Client API keys end to end: a real gateway on loopback in front of a mock provider, keys
//! in its config as hashes, requests with and without them. Every refusal happens before any
//! upstream call, so the mock's request log shows what got through.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{start_from, stream_req};
use serde_json::{json, Value};
use switchyard_gateway::keys;
use switchyard_sim::{MockConfig, MockProvider, Wire};

/// Everything the gateway logs in this test process, at every level (the gateway's worker
/// threads log through the global subscriber, so it is installed once for all tests).
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buf);
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "switchyard_gateway=trace,switchyard_sim=trace",
            ))
            .with_ansi(false)
            .with_writer(move || Sink(Arc::clone(&sink)))
            .try_init();
        buf
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Keyed {
    mock: MockProvider,
    url: String,
    client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A mock OpenAI upstream behind two routes, `chat` and `fast` (`target` is appended to both
/// targets' inline tables), and `keys` as the config's `[[keys]]`.
async fn gateway(keys: &str, target: &str, tweak: impl Fn(&mut MockConfig)) -> Keyed {
    logs();
    let mut c = MockConfig::new(Wire::OpenAi, "up");
    tweak(&mut c);
    let mock = MockProvider::start(c).await.expect("mock starts");
    let t = format!(
        "{{ provider = \"openai\", base_url = \"{}/v1\", api_key = \"${{TEST_KEY}}\", model = \"up-model\"{target} }}",
        mock.url()
    );
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
workers = 2

[models.chat]
targets = [ {t} ]

[models.fast]
targets = [ {t} ]

{keys}
"#
    );
    let (running, stop) = start_from(&text).await;
    Keyed {
        mock,
        url: running.url(),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        _stop: stop,
    }
}

/// `[[keys]]` for a new key: (the key, its config entry with `extra` lines).
fn key(name: &str, extra: &str) -> (String, String) {
    let (key, hash) = keys::generate().unwrap();
    (
        key,
        format!("[[keys]]\nname = \"{name}\"\nhash = \"{hash}\"\n{extra}\n"),
    )
}

enum Auth<'a> {
    None,
    Bearer(&'a str),
    XApiKey(&'a str),
}

impl Keyed {
    fn request(&self, method: reqwest::Method, path: &str, auth: Auth) -> reqwest::RequestBuilder {
        let r = self.client.request(method, format!("{}{path}", self.url));
        match auth {
            Auth::None => r,
            Auth::Bearer(k) => r.bearer_auth(k),
            Auth::XApiKey(k) => r.header("x-api-key", k),
        }
    }

    /// A chat request: (status, headers, body text).
    async fn chat(&self, model: &str, auth: Auth<'_>) -> (u16, reqwest::header::HeaderMap, String) {
        let body =
            json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]});
        let resp = self
            .request(reqwest::Method::POST, "/v1/chat/completions", auth)
            .json(&body)
            .send()
            .await
            .expect("gateway answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.text().await.unwrap())
    }

    async fn models(&self, auth: Auth<'_>) -> (u16, Value) {
        let resp = self
            .request(reqwest::Method::GET, "/v1/models", auth)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }
}

/// The OpenAI error object of a body, checked for its shape.
fn error(body: &str) -> Value {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let e = v["error"].clone();
    assert!(e["message"].is_string() && e["type"].is_string(), "{body}");
    e
}

fn retry_after(h: &reqwest::header::HeaderMap) -> u64 {
    h.get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in {h:?}"))
}

#[tokio::test]
async fn without_a_valid_key_the_client_gets_401_and_the_upstream_nothing() {
    let (_, entry) = key("team-a", "");
    let g = gateway(&entry, "", |_| {}).await;
    let (wrong, _) = keys::generate().unwrap();

    let (status, headers, body) = g.chat("chat", Auth::None).await;
    assert_eq!(status, 401, "{body}");
    let e = error(&body);
    assert_eq!(e["type"], "authentication_error");
    assert_eq!(e["code"], "missing_api_key");
    assert_eq!(common::header(&headers, "www-authenticate"), "Bearer");

    for auth in [Auth::Bearer(&wrong), Auth::XApiKey(&wrong)] {
        let (status, _, body) = g.chat("chat", auth).await;
        assert_eq!(status, 401, "{body}");
        let e = error(&body);
        assert_eq!(e["code"], "invalid_api_key");
        assert_eq!(e["message"], "invalid API key");
        assert!(!body.contains(&wrong));
    }
    // Another scheme is no key; a streamed request is refused the same way.
    let resp = g
        .request(reqwest::Method::POST, "/v1/chat/completions", Auth::None)
        .basic_auth("user", Some(&wrong))
        .json(&stream_req("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    let (status, v) = g.models(Auth::Bearer(&wrong)).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    assert_eq!(g.mock.request_count(), 0, "nothing reached the upstream");

    // /health stays open, for load balancers.
    let resp = g
        .request(reqwest::Method::GET, "/health", Auth::None)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test]
async fn the_right_key_is_accepted_as_bearer_and_as_x_api_key() {
    let (k, entry) = key("team-a", "");
    let g = gateway(&entry, "", |_| {}).await;
    let (status, _, body) = g.chat("chat", Auth::Bearer(&k)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = g.chat("fast", Auth::XApiKey(&k)).await;
    assert_eq!(status, 200, "{body}");
    let resp = g
        .request(
            reqwest::Method::POST,
            "/v1/chat/completions",
            Auth::Bearer(&k),
        )
        .json(&stream_req("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.unwrap().contains("[DONE]"));
    assert_eq!(g.mock.request_count(), 3);
    let (status, v) = g.models(Auth::Bearer(&k)).await;
    assert_eq!(status, 200);
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_route_the_key_may_not_use_is_403_and_not_listed() {
    let (narrow, a) = key("narrow", "routes = [\"fast\"]");
    let (wide, b) = key("wide", "");
    let g = gateway(&format!("{a}{b}"), "", |_| {}).await;

    let (status, _, body) = g.chat("chat", Auth::Bearer(&narrow)).await;
    assert_eq!(status, 403, "{body}");
    let e = error(&body);
    assert_eq!(e["type"], "permission_error");
    assert_eq!(e["code"], "model_not_allowed");
    assert_eq!(e["param"], "model");
    assert!(
        e["message"].as_str().unwrap().contains("\"narrow\""),
        "{body}"
    );
    assert_eq!(g.mock.request_count(), 0);
    let (status, _, _) = g.chat("fast", Auth::Bearer(&narrow)).await;
    assert_eq!(status, 200);

    let ids = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, v) = g.models(Auth::Bearer(&narrow)).await;
    assert_eq!(ids(&v), ["fast"]);
    let (_, v) = g.models(Auth::XApiKey(&wide)).await;
    assert_eq!(ids(&v), ["chat", "fast"]);
}

#[tokio::test]
async fn the_fourth_request_in_a_minute_is_429_with_retry_after_and_other_keys_go_on() {
    let (limited, a) = key("limited", "requests_per_minute = 3");
    let (other, b) = key("other", "requests_per_minute = 3");
    let g = gateway(&format!("{a}{b}"), "", |_| {}).await;
    for _ in 0..3 {
        let (status, _, body) = g.chat("chat", Auth::Bearer(&limited)).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, headers, body) = g.chat("chat", Auth::Bearer(&limited)).await;
    assert_eq!(status, 429, "{body}");
    let e = error(&body);
    assert_eq!(e["type"], "rate_limit_error");
    assert_eq!(e["code"], "rate_limit_exceeded");
    assert!(body.contains("3 requests per minute"), "{body}");
    // One request comes back every 20 s.
    let wait = retry_after(&headers);
    assert!((1..=20).contains(&wait), "{wait}");
    assert_eq!(g.mock.request_count(), 3);

    let (status, _, _) = g.chat("chat", Auth::Bearer(&other)).await;
    assert_eq!(status, 200, "another key has its own allowance");
}

#[tokio::test]
async fn a_spent_budget_refuses_the_next_request() {
    // A dollar per token: the first answer costs far more than the budget.
    let (k, entry) = key("tiny", "budget = { usd = 0.5, period = \"1d\" }");
    let g = gateway(
        &entry,
        ", price = { input_per_mtok = 1000000.0, output_per_mtok = 1000000.0 }",
        |_| {},
    )
    .await;
    let (status, headers, body) = g.chat("chat", Auth::Bearer(&k)).await;
    assert_eq!(status, 200, "{body}");
    let cost: f64 = common::header(&headers, "x-switchyard-cost")
        .parse()
        .unwrap();
    assert!(cost > 0.5, "{cost}");

    let (status, headers, body) = g.chat("fast", Auth::Bearer(&k)).await;
    assert_eq!(status, 429, "{body}");
    let e = error(&body);
    assert_eq!(e["type"], "insufficient_quota");
    assert_eq!(e["code"], "budget_exceeded");
    assert!(body.contains("budget of 0.5 USD per 1d"), "{body}");
    // Until the next 00:00 UTC.
    assert!((1..=86_400).contains(&retry_after(&headers)));
    assert_eq!(g.mock.request_count(), 1);
}

#[tokio::test]
async fn a_second_request_while_a_stream_is_in_flight_is_429_until_it_ends() {
    let (k, entry) = key("one-at-a-time", "max_concurrent = 1");
    // Ten pieces, 100 ms apart: the stream is in flight for about a second.
    let g = gateway(&entry, "", |c| {
        c.stream_chunks = 10;
        c.chunk_delay = Duration::from_millis(100);
    })
    .await;
    let first = g
        .request(
            reqwest::Method::POST,
            "/v1/chat/completions",
            Auth::Bearer(&k),
        )
        .json(&stream_req("tell me a story"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status().as_u16(), 200);

    let (status, headers, body) = g.chat("chat", Auth::Bearer(&k)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(error(&body)["code"], "concurrency_limit_exceeded");
    assert!(body.contains("1 requests in flight"), "{body}");
    assert_eq!(retry_after(&headers), 1);
    assert_eq!(g.mock.request_count(), 1);

    let text = first.text().await.unwrap();
    assert!(text.contains("[DONE]"), "{text}");
    let (status, _, body) = g.chat("chat", Auth::Bearer(&k)).await;
    assert_eq!(status, 200, "accepted again once the stream ended: {body}");
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_gives_its_slot_back() {
    let (k, entry) = key("leaver", "max_concurrent = 1");
    let g = gateway(&entry, "", |c| {
        c.stream_chunks = 20;
        c.chunk_delay = Duration::from_millis(200);
    })
    .await;
    let first = g
        .request(
            reqwest::Method::POST,
            "/v1/chat/completions",
            Auth::Bearer(&k),
        )
        .json(&stream_req("tell me a long story"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status().as_u16(), 200);
    drop(first);
    // The relay notices at its next write (a chunk every 200 ms).
    let mut status = 0;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        (status, _, _) = g.chat("chat", Auth::Bearer(&k)).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 429);
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn tokens_over_the_minute_refuse_the_next_request() {
    // The mock's answers are a dozen tokens or more.
    let (k, entry) = key("few-tokens", "tokens_per_minute = 5");
    let g = gateway(&entry, "", |_| {}).await;
    let (status, _, body) = g.chat("chat", Auth::Bearer(&k)).await;
    assert_eq!(status, 200, "{body}");
    let (status, headers, body) = g.chat("chat", Auth::Bearer(&k)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(error(&body)["code"], "tokens_per_minute_exceeded");
    assert!(body.contains("5 tokens per minute"), "{body}");
    assert!((1..=3600).contains(&retry_after(&headers)));
    assert_eq!(g.mock.request_count(), 1);
}

#[tokio::test]
async fn a_streamed_answer_counts_its_tokens_too() {
    let (k, entry) = key("few-tokens", "tokens_per_minute = 5");
    let g = gateway(&entry, "", |_| {}).await;
    let resp = g
        .request(
            reqwest::Method::POST,
            "/v1/chat/completions",
            Auth::Bearer(&k),
        )
        .json(&stream_req("hello there"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.unwrap().contains("[DONE]"));
    let (status, _, body) = g.chat("chat", Auth::Bearer(&k)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(error(&body)["code"], "tokens_per_minute_exceeded");
}

fn sha256_hex(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn hash_key_prints_a_key_and_its_hash_that_the_gateway_accepts() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["hash-key", "--name", "from-the-cli"])
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let key = text
        .lines()
        .find(|l| l.starts_with(keys::KEY_PREFIX))
        .unwrap_or_else(|| panic!("no key in {text}"));
    assert_eq!(key.len(), 3 + 64, "sy- and 32 random bytes in hex: {key}");
    let entry = &text[text.find("[[keys]]").unwrap_or_else(|| panic!("{text}"))..];
    assert!(
        !entry.contains(key),
        "the config entry holds no key: {entry}"
    );
    assert!(
        entry.contains(&format!("hash = \"sha256:{}\"", sha256_hex(key))),
        "the printed hash is the key's SHA-256: {text}"
    );
    assert!(entry.contains("name = \"from-the-cli\""), "{entry}");

    // Pasted as printed, the entry lets that key in.
    let g = gateway(entry, "", |_| {}).await;
    let (status, _, body) = g.chat("chat", Auth::Bearer(key)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = g.chat("chat", Auth::Bearer(&key[..key.len() - 1])).await;
    assert_eq!(status, 401);

    // A second run makes another key.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("hash-key")
        .output()
        .unwrap();
    assert!(!String::from_utf8(again.stdout).unwrap().contains(key));
}

#[tokio::test]
async fn keys_never_reach_logs_or_error_bodies() {
    let (k, a) = key("quiet", "requests_per_minute = 1\nroutes = [\"chat\"]");
    let g = gateway(&a, "", |_| {}).await;
    let (wrong, _) = keys::generate().unwrap();
    let mut bodies = Vec::new();
    for (model, auth) in [
        ("chat", Auth::Bearer(&wrong)),
        ("chat", Auth::XApiKey(&wrong)),
        ("fast", Auth::Bearer(&k)),
        ("chat", Auth::Bearer(&k)),
        ("chat", Auth::XApiKey(&k)),
    ] {
        let (status, _, body) = g.chat(model, auth).await;
        bodies.push((status, body));
    }
    let statuses: Vec<u16> = bodies.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [401, 401, 403, 200, 429]);
    let logs = String::from_utf8(logs().lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("invalid API key"),
        "the refusals were logged: {logs}"
    );
    for secret in [&k, &wrong] {
        // Nor any long piece of one (a prefix a log line might cut it to).
        let piece = &secret[3..20];
        for (_, body) in &bodies {
            assert!(!body.contains(piece), "a key in an error body: {body}");
        }
        assert!(!logs.contains(piece), "a key in the logs: {logs}");
    }
}

#[test]
fn bad_key_entries_are_refused_with_their_line() {
    let route = "[models.chat]\ntargets = [ { provider = \"openai\", base_url = \"http://127.0.0.1:1\", model = \"m\" } ]\n";
    let (k, hash) = keys::generate().unwrap();
    let parse = |keys: &str| {
        switchyard_gateway::config::parse(&format!("{route}\n{keys}"), "t.toml", &|_| None)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        parse(&format!("[[keys]]\nname = \"a\"\nhash = \"{hash}\"\n")),
        Ok(())
    );
    let cases = [
        (format!("[[keys]]\nname = \"a\"\nhash = \"{k}\"\n"), "not its hash"),
        ("[[keys]]\nname = \"a\"\nhash = \"sha256:00\"\n".to_string(), "64 hex digits"),
        (
            format!("[[keys]]\nname = \"a\"\nhash = \"{hash}\"\nroutes = [\"caht\"]\n"),
            "no model alias \"caht\"",
        ),
        (
            format!("[[keys]]\nname = \"a\"\nhash = \"{hash}\"\nrequests_per_minute = 0\n"),
            "requests_per_minute must be positive",
        ),
        (
            format!("[[keys]]\nname = \"a\"\nhash = \"{hash}\"\nbudget = {{ usd = 1.0, period = \"1y\" }}\n"),
            "budget.period",
        ),
        (
            format!("[[keys]]\nname = \"a\"\nhash = \"{hash}\"\n[[keys]]\nname = \"b\"\nhash = \"{hash}\"\n"),
            "same hash",
        ),
        (
            format!("[[keys]]\nname = \"a\"\nhash = \"{hash}\"\nkey = \"{k}\"\n"),
            "unknown field",
        ),
    ];
    for (keys, want) in cases {
        let e = parse(&keys).unwrap_err();
        assert!(e.contains(want), "{want:?} not in {e}");
        assert!(e.contains("line "), "{e}");
        assert!(!e.contains(&k[3..20]) || want == "unknown field", "{e}");
    }
}
