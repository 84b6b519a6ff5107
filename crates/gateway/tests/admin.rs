//! The admin API on its own listener: authentication, target state, forcing breakers,
//! draining, the redacted config, key usage and metrics, against a real gateway and mocks.

mod common;

use common::*;
use serde_json::Value;
use switchyard_sim::{Fault, FaultRule, Wire};

const ADMIN_KEY: &str = "sy-admin-key-for-tests-0123456789abcdef";

fn admin_section() -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\nkey_hash = \"{}\"\n",
        switchyard_gateway::keys::hash_line(ADMIN_KEY)
    )
}

async fn two_targets() -> Harness {
    harness(
        &[(Wire::OpenAi, "primary"), (Wire::OpenAi, "fallback")],
        &admin_section(),
    )
    .await
}

fn admin_url(h: &Harness, path: &str) -> String {
    format!("{}{path}", h.gateway.admin_url().expect("admin configured"))
}

/// An admin request with `key` (none: no `Authorization`); (status, JSON body).
async fn admin_with(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
) -> (u16, Value) {
    let mut req = h.client.request(method, admin_url(h, path));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.expect("admin answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("admin answered non-JSON ({e}): {text}"));
    (status, json)
}

async fn admin_get(h: &Harness, path: &str) -> Value {
    let (status, v) = admin_with(h, reqwest::Method::GET, path, Some(ADMIN_KEY)).await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn admin_post(h: &Harness, path: &str) -> Value {
    let (status, v) = admin_with(h, reqwest::Method::POST, path, Some(ADMIN_KEY)).await;
    assert_eq!(status, 200, "{path}: {v}");
    v
}

/// The `/admin/targets` entry of `name`.
async fn target(h: &Harness, name: &str) -> Value {
    let v = admin_get(h, "/admin/targets").await;
    v["targets"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {v}"))
        .clone()
}

async fn answered_by(h: &Harness) -> String {
    let (status, headers, body) = h.chat(user("hi")).await;
    assert_eq!(status, 200, "{body}");
    header(&headers, "x-switchyard-target").to_string()
}

fn assert_error(v: &Value, code: &str) {
    let e = &v["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(e["type"].is_string(), "{v}");
    assert_eq!(e["code"], code, "{v}");
}

#[tokio::test]
async fn no_key_or_a_wrong_key_is_refused_and_changes_nothing() {
    let h = two_targets().await;
    for key in [None, Some("sy-wrong"), Some("")] {
        for (method, path) in [
            (reqwest::Method::GET, "/admin/targets"),
            (reqwest::Method::GET, "/admin/config"),
            (reqwest::Method::GET, "/metrics"),
            (reqwest::Method::POST, "/admin/targets/primary/open"),
            (reqwest::Method::POST, "/admin/targets/primary/drain"),
        ] {
            let (status, v) = admin_with(&h, method, path, key).await;
            assert_eq!(status, 401, "{path} with {key:?}: {v}");
            assert_error(&v, "invalid_api_key");
        }
    }
    // The client's API key header form is refused too when it holds a wrong key.
    let resp = h
        .client
        .post(admin_url(&h, "/admin/targets/primary/open"))
        .header("x-api-key", "sy-wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(answered_by(&h).await, "primary");
    let t = target(&h, "primary").await;
    assert_eq!(t["forced"], Value::Null, "{t}");
    assert_eq!(t["drained"], false, "{t}");
}

#[tokio::test]
async fn forcing_the_primary_open_sends_requests_to_the_fallback_until_released() {
    let h = two_targets().await;
    assert_eq!(answered_by(&h).await, "primary");
    let v = admin_post(&h, "/admin/targets/primary/open").await;
    assert_eq!(v["state"]["forced"], "open", "{v}");
    let before = h.mocks[0].request_count();
    for _ in 0..4 {
        assert_eq!(answered_by(&h).await, "fallback");
    }
    assert_eq!(
        h.mocks[0].request_count(),
        before,
        "nothing sent to a forced-open target"
    );
    let t = target(&h, "primary").await;
    assert_eq!(t["forced"], "open", "{t}");
    assert_eq!(
        t["breaker"], "closed",
        "the automatic state underneath: {t}"
    );
    assert_eq!(t["routes"], serde_json::json!(["chat"]), "{t}");
    // Forcing the fallback open too leaves nothing: the usual 503, with the reason.
    admin_post(&h, "/admin/targets/fallback/open").await;
    let (status, _, body) = h.chat(user("hi")).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.to_string().contains("forced open by an operator"),
        "{body}"
    );
    admin_post(&h, "/admin/targets/fallback/release").await;
    admin_post(&h, "/admin/targets/primary/release").await;
    assert_eq!(target(&h, "primary").await["forced"], Value::Null);
    assert_eq!(answered_by(&h).await, "primary");
    assert_eq!(h.mocks[0].request_count(), before + 1);
}

#[tokio::test]
async fn a_drained_target_finishes_its_stream_and_gets_no_new_requests() {
    let h = two_targets().await;
    h.fault(
        0,
        Fault::SlowStream {
            chunk_delay_ms: 150,
        },
        1,
    );
    // The gateway answers a stream once its first content is in: the stream is in flight.
    let resp = h.post_raw(stream_req("hi").to_string()).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(header(resp.headers(), "x-switchyard-target"), "primary");
    let v = admin_post(&h, "/admin/targets/primary/drain").await;
    assert_eq!(v["state"]["drained"], true, "{v}");
    let before = h.mocks[0].request_count();
    for _ in 0..3 {
        assert_eq!(answered_by(&h).await, "fallback");
    }
    let (_, _, frames) = h.chat_stream(stream_req("hi")).await;
    assert!(
        stream_text(&frames).starts_with("Hello from fallback!"),
        "{frames:?}"
    );
    assert_eq!(
        h.mocks[0].request_count(),
        before,
        "no new request to a drained target"
    );
    // The stream begun before the drain ends normally.
    let text = resp.text().await.expect("the stream completes");
    let mut decoder = switchyard_sse::SseDecoder::new();
    let mut payloads = Vec::new();
    decoder.feed(text.as_bytes(), &mut payloads).unwrap();
    let payloads: Vec<String> = payloads.into_iter().map(|f| f.data).collect();
    assert_eq!(
        stream_text(&payloads),
        "Hello from primary! You said: hi",
        "{text}"
    );
    assert_eq!(
        payloads.last().map(String::as_str),
        Some("[DONE]"),
        "{text}"
    );
    assert_eq!(target(&h, "primary").await["drained"], true);
    admin_post(&h, "/admin/targets/primary/undrain").await;
    assert_eq!(target(&h, "primary").await["drained"], false);
    assert_eq!(answered_by(&h).await, "primary");
}

#[tokio::test]
async fn forcing_a_failing_primary_closed_keeps_it_tried_until_released() {
    let h = two_targets().await;
    h.mocks[0].push_fault(FaultRule::always(status(500)));
    admin_post(&h, "/admin/targets/primary/close").await;
    for i in 0..6 {
        let before = h.mocks[0].request_count();
        assert_eq!(answered_by(&h).await, "fallback");
        assert!(
            h.mocks[0].request_count() > before,
            "request {i}: the forced-closed primary was not tried"
        );
    }
    let t = target(&h, "primary").await;
    assert_eq!(
        (t["forced"].as_str(), t["breaker"].as_str()),
        (Some("closed"), Some("closed")),
        "{t}"
    );
    assert_eq!(
        t["consecutive_failures"], 0,
        "failures ignored while forced: {t}"
    );
    admin_post(&h, "/admin/targets/primary/release").await;
    for _ in 0..4 {
        assert_eq!(answered_by(&h).await, "fallback");
    }
    let t = target(&h, "primary").await;
    assert_eq!(t["forced"], Value::Null, "{t}");
    assert_eq!(
        t["breaker"], "open",
        "automatic again, the failures open it: {t}"
    );
    let before = h.mocks[0].request_count();
    answered_by(&h).await;
    assert_eq!(h.mocks[0].request_count(), before, "open: skipped");
}

#[tokio::test]
async fn the_config_shows_no_secret() {
    let client_key = "sy-client-key-SECRET-abcdef0123456789";
    let client_hash = switchyard_gateway::keys::hash_line(client_key);
    let admin_hash = switchyard_gateway::keys::hash_line(ADMIN_KEY);
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
workers = 1

[admin]
listen = "127.0.0.1:0"
key_hash = "{admin_hash}"

[[keys]]
name = "team-a"
hash = "{client_hash}"
budget = {{ usd = 5.0, period = "1d" }}

[models.chat]
targets = [
  {{ name = "proxied", provider = "openai", base_url = "http://proxyuser:proxypass-SECRET@127.0.0.1:9/v1?token=query-SECRET", api_key = "${{TEST_KEY}}", model = "m" }},
  {{ name = "plain", provider = "anthropic", base_url = "http://127.0.0.1:9", api_key = "${{TEST_KEY}}", model = "m2" }},
]
"#
    );
    let (gateway, _stop) = start_from(&text).await;
    let url = format!("{}/admin/config", gateway.admin_url().unwrap());
    let client = reqwest::Client::new();
    let resp = client
        .get(&url)
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.text().await.unwrap();
    for secret in [
        KEY,
        "proxyuser",
        "proxypass",
        "query-SECRET",
        client_key,
        &client_hash[7..],
        &admin_hash[7..],
        ADMIN_KEY,
    ] {
        assert!(!body.contains(secret), "{secret} in {body}");
    }
    let v: Value = serde_json::from_str(&body).unwrap();
    let t = &v["models"]["chat"]["targets"][0];
    assert_eq!(t["api_key"], "[redacted]", "{v}");
    assert_eq!(
        t["base_url"], "http://[redacted]@127.0.0.1:9/v1?[redacted]",
        "{v}"
    );
    assert_eq!(v["keys"][0]["hash"], "[redacted]", "{v}");
    assert_eq!(v["keys"][0]["name"], "team-a", "{v}");
    assert_eq!(v["admin"]["key_hash"], "[redacted]", "{v}");
    // Effective: defaults are filled in.
    assert_eq!(v["server"]["workers"], 1, "{v}");
    assert!(v["breaker"]["failure_threshold"].is_number(), "{v}");
    assert_eq!(v["models"]["chat"]["strategy"], "priority", "{v}");
}

#[tokio::test]
async fn malformed_admin_requests_are_json_errors_and_the_gateway_keeps_serving() {
    let h = two_targets().await;
    use reqwest::Method;
    for (method, path, status, code) in [
        (Method::GET, "/admin/nothing", 404, "unknown_url"),
        (Method::GET, "/", 404, "unknown_url"),
        (Method::GET, "/v1/chat/completions", 404, "unknown_url"),
        (Method::POST, "/admin/targets", 405, "method_not_allowed"),
        (Method::DELETE, "/admin/config", 405, "method_not_allowed"),
        (
            Method::GET,
            "/admin/targets/primary/open",
            405,
            "method_not_allowed",
        ),
        (
            Method::POST,
            "/admin/targets/nobody/open",
            404,
            "target_not_found",
        ),
        (
            Method::POST,
            "/admin/targets/primary/explode",
            404,
            "unknown_url",
        ),
        (Method::POST, "/admin/targets/primary", 404, "unknown_url"),
        (
            Method::POST,
            "/admin/targets/bad%zzname/drain",
            400,
            "invalid_target_name",
        ),
    ] {
        let (got, v) = admin_with(&h, method.clone(), path, Some(ADMIN_KEY)).await;
        assert_eq!(got, status, "{method} {path}: {v}");
        assert_error(&v, code);
    }
    let (_, v) = admin_with(
        &h,
        Method::POST,
        "/admin/targets/nobody/open",
        Some(ADMIN_KEY),
    )
    .await;
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("primary") && message.contains("fallback"),
        "{message}"
    );
    // A raw request that is no HTTP at all: the connection is refused with JSON, and the
    // listener goes on.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(h.gateway.admin_addr.unwrap())
            .await
            .unwrap();
        tcp.write_all(b"NOT HTTP\r\n\r\n").await.unwrap();
        let mut out = Vec::new();
        let _ = tcp.read_to_end(&mut out).await;
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    }
    // Percent-encoded names work (a default name holds a '/').
    admin_post(&h, "/admin/targets/prim%61ry/drain").await;
    assert_eq!(target(&h, "primary").await["drained"], true);
    admin_post(&h, "/admin/targets/primary/undrain").await;
    assert_eq!(answered_by(&h).await, "primary");
    assert!(admin_get(&h, "/admin/targets").await["targets"].is_array());
}

#[tokio::test]
async fn key_usage_and_metrics_are_on_the_admin_listener() {
    let client_key = "sy-client-key-0123456789abcdef";
    let extra = format!(
        "{}\n[[keys]]\nname = \"team-a\"\nhash = \"{}\"\nbudget = {{ usd = 2.5, period = \"1d\" }}\n",
        admin_section(),
        switchyard_gateway::keys::hash_line(client_key)
    );
    let h = harness_targets(
        &[(
            Wire::OpenAi,
            "primary",
            "price = { input_per_mtok = 1000000.0, output_per_mtok = 0.0 }",
        )],
        &extra,
        |_| {},
    )
    .await;
    let resp = h
        .client
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(client_key)
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let spent: f64 = header(resp.headers(), "x-switchyard-cost").parse().unwrap();
    assert!(spent > 0.0);
    let v = admin_get(&h, "/admin/keys").await;
    assert_eq!(v["required"], true, "{v}");
    let k = &v["keys"][0];
    assert_eq!(k["name"], "team-a", "{v}");
    assert_eq!(k["requests"], 1, "{v}");
    assert_eq!(k["budget_usd"], 2.5, "{v}");
    let remaining = k["budget_remaining_usd"].as_f64().unwrap();
    assert!((remaining - (2.5 - spent).max(0.0)).abs() < 1e-6, "{v}");
    assert!(!v.to_string().contains(client_key));

    let admin_metrics = h
        .client
        .get(admin_url(&h, "/metrics"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(admin_metrics.status().as_u16(), 200);
    let text = admin_metrics.text().await.unwrap();
    assert!(text.contains("switchyard_requests_total"), "{text}");
    let main = h
        .client
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let families = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("# TYPE"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(families(&text), families(&main));
}

#[tokio::test]
async fn an_admin_listener_without_a_key_starts_only_on_loopback() {
    let base = |listen: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n[admin]\nlisten = \"{listen}\"\n[models.chat]\ntargets = [ {{ provider = \"openai\", base_url = \"http://127.0.0.1:9\", model = \"m\" }} ]\n"
        )
    };
    let config = switchyard_gateway::config::parse(&base("0.0.0.0:0"), "t", &|_| None).unwrap();
    let err = switchyard_gateway::start(&config, std::future::pending())
        .await
        .err()
        .expect("refused off loopback without a key");
    assert!(err.contains("admin") && err.contains("key_hash"), "{err}");

    let (gateway, _stop) = start_from(&base("127.0.0.1:0")).await;
    let resp = reqwest::get(format!("{}/admin/targets", gateway.admin_url().unwrap()))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "open on loopback");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["targets"][0]["name"], "openai/m", "{v}");

    let bad = base("127.0.0.1:0").replace("[admin]\n", "[admin]\nkey_hash = \"sy-not-a-hash\"\n");
    let err = switchyard_gateway::config::parse(&bad, "t", &|_| None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("admin.key_hash"), "{err}");

    // No [admin]: no listener.
    let (gateway, _stop) = start_from(&base("x").replace("[admin]\nlisten = \"x\"\n", "")).await;
    assert!(gateway.admin_addr.is_none());
}
