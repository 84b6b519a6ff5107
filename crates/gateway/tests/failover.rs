//! End-to-end over real loopback sockets: client → gateway → mock providers.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use switchyard_sim::{Fault, FaultRule, Wire};

const TWO: &[(Wire, &str)] = &[(Wire::OpenAi, "primary"), (Wire::OpenAi, "fallback")];

#[tokio::test]
async fn success_via_primary() {
    let h = harness(TWO, "").await;
    let (status, headers, body) = h.chat(user("hi")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content(&body), "Hello from primary! You said: hi");
    assert_eq!(header(&headers, "x-switchyard-target"), "primary");
    assert_eq!(header(&headers, "x-switchyard-attempts"), "1");
    assert_eq!(body["model"], "primary-model");
    assert_eq!(body["object"], "chat.completion");
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(h.mocks[1].request_count(), 0);
    let sent = h.mocks[0].requests()[0].json();
    assert_eq!(
        sent["model"], "primary-model",
        "the upstream model name is sent, not the alias"
    );
    assert!(h.mocks[0].requests()[0].had_api_key);
}

async fn fails_over_on(fault: Fault) {
    let h = harness(TWO, "").await;
    h.fault(0, fault.clone(), 1);
    let (status, headers, body) = h.chat(user("hi")).await;
    assert_eq!(status, 200, "{fault:?}: {body}");
    assert_eq!(
        content(&body),
        "Hello from fallback! You said: hi",
        "{fault:?}"
    );
    assert_eq!(header(&headers, "x-switchyard-target"), "fallback");
    assert_eq!(header(&headers, "x-switchyard-attempts"), "2");
    assert_eq!(
        h.mocks[0].request_count(),
        1,
        "{fault:?}: primary tried once"
    );
    assert_eq!(h.mocks[1].request_count(), 1);
}

#[tokio::test]
async fn primary_503_is_answered_by_the_fallback() {
    fails_over_on(status(503)).await;
}

#[tokio::test]
async fn primary_429_is_answered_by_the_fallback() {
    fails_over_on(Fault::Status {
        status: 429,
        retry_after_s: Some(30),
        code: None,
    })
    .await;
}

#[tokio::test]
async fn primary_504_and_529_fail_over() {
    for code in [504, 529] {
        fails_over_on(status(code)).await;
    }
}

#[tokio::test]
async fn primary_500_and_502_are_retried_once_then_fail_over() {
    for code in [500, 502] {
        let h = harness(TWO, "").await;
        h.fault(0, status(code), 2);
        let (st, headers, body) = h.chat(user("hi")).await;
        assert_eq!(st, 200, "{code}: {body}");
        assert_eq!(content(&body), "Hello from fallback! You said: hi");
        assert_eq!(header(&headers, "x-switchyard-attempts"), "3");
        assert_eq!(
            h.mocks[0].request_count(),
            2,
            "{code}: one retry on the primary"
        );
    }
}

#[tokio::test]
async fn primary_connection_reset_is_answered_by_the_fallback() {
    fails_over_on(Fault::Reset).await;
}

#[tokio::test]
async fn silent_primary_times_out_and_the_fallback_answers() {
    let start = Instant::now();
    fails_over_on(Fault::Hang).await;
    // headers_ms is 1 s in the test config: the failover must not wait for much longer.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn primary_down_entirely_fails_over() {
    let mut h = harness(TWO, "").await;
    let dead = h.mocks.remove(0);
    dead.shutdown();
    let (status, headers, body) = h.chat(user("hi")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "x-switchyard-target"), "fallback");
}

async fn hard_error_stops(code: u16, expected_type: &str) {
    let h = harness(TWO, "").await;
    h.fault(0, status(code), 1);
    let (st, headers, body) = h.chat(user("hi")).await;
    assert_eq!(st, code, "{body}");
    assert_eq!(body["error"]["type"], expected_type, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("primary"),
        "{body}"
    );
    assert_eq!(header(&headers, "x-switchyard-attempts"), "1");
    assert_eq!(
        h.mocks[1].request_count(),
        0,
        "{code}: the fallback must not be called"
    );
}

#[tokio::test]
async fn primary_401_goes_to_the_client_and_the_fallback_is_never_called() {
    hard_error_stops(401, "authentication_error").await;
}

#[tokio::test]
async fn primary_400_goes_to_the_client_and_the_fallback_is_never_called() {
    hard_error_stops(400, "invalid_request_error").await;
}

#[tokio::test]
async fn primary_403_and_404_stop_too() {
    hard_error_stops(403, "permission_error").await;
    hard_error_stops(404, "not_found_error").await;
}

#[tokio::test]
async fn every_target_failing_gives_one_clear_error_naming_each() {
    let h = harness(TWO, "").await;
    h.fault(0, status(503), 1);
    h.fault(1, status(500), 2);
    let (st, headers, body) = h.chat(user("hi")).await;
    assert_eq!(st, 502, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("primary") && msg.contains("503"), "{msg}");
    assert!(msg.contains("fallback") && msg.contains("500"), "{msg}");
    assert_eq!(body["error"]["code"], "all_targets_failed");
    // The last target retried its 500 once (no fallback left), within the budget.
    assert_eq!(header(&headers, "x-switchyard-attempts"), "3");
    assert_eq!(h.mocks[1].request_count(), 2);
}

#[tokio::test]
async fn a_short_retry_after_on_the_last_target_is_waited_out() {
    let h = harness(&[(Wire::OpenAi, "only")], "").await;
    h.fault(
        0,
        Fault::Status {
            status: 429,
            retry_after_s: Some(1),
            code: None,
        },
        1,
    );
    let start = Instant::now();
    let (st, headers, body) = h.chat(user("hi")).await;
    assert_eq!(st, 200, "{body}");
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(header(&headers, "x-switchyard-attempts"), "2");
}

#[tokio::test]
async fn breaker_opens_after_three_failures_and_recovers_through_a_probe() {
    let h = harness(
        TWO,
        "[breaker]\nfailure_threshold = 3\ncooldown_ms = 400\nmax_cooldown_ms = 800\njitter = 0.0\n",
    )
    .await;
    h.mocks[0].push_fault(FaultRule::always(status(503)));
    for _ in 0..3 {
        let (st, headers, _) = h.chat(user("hi")).await;
        assert_eq!(st, 200);
        assert_eq!(header(&headers, "x-switchyard-attempts"), "2");
    }
    assert_eq!(h.mocks[0].request_count(), 3);
    // Open: the primary gets nothing during the cooling period.
    for _ in 0..5 {
        let (st, headers, _) = h.chat(user("hi")).await;
        assert_eq!(st, 200);
        assert_eq!(header(&headers, "x-switchyard-target"), "fallback");
        assert_eq!(header(&headers, "x-switchyard-attempts"), "1");
    }
    assert_eq!(
        h.mocks[0].request_count(),
        3,
        "no request to an open breaker's target"
    );
    let health: serde_json::Value = h
        .client
        .get(h.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["targets"]["primary"]["breaker"], "open", "{health}");

    // The primary recovers; after the cool-down the first request is the probe.
    h.mocks[0].reset();
    tokio::time::sleep(Duration::from_millis(450)).await;
    let (st, headers, _) = h.chat(user("hi")).await;
    assert_eq!(st, 200);
    assert_eq!(header(&headers, "x-switchyard-target"), "primary");
    assert_eq!(h.mocks[0].request_count(), 1);
    let (_, headers, _) = h.chat(user("hi")).await;
    assert_eq!(
        header(&headers, "x-switchyard-target"),
        "primary",
        "closed again"
    );
}

#[tokio::test]
async fn a_failed_probe_reopens_the_breaker() {
    let h = harness(
        TWO,
        "[breaker]\nfailure_threshold = 1\ncooldown_ms = 300\nmax_cooldown_ms = 5000\njitter = 0.0\n",
    )
    .await;
    h.mocks[0].push_fault(FaultRule::always(status(503)));
    h.chat(user("hi")).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (_, headers, _) = h.chat(user("hi")).await;
    assert_eq!(
        header(&headers, "x-switchyard-attempts"),
        "2",
        "probe went to the primary"
    );
    assert_eq!(h.mocks[0].request_count(), 2);
    // Cool-down doubled to 600 ms: 350 ms later the primary is still skipped.
    tokio::time::sleep(Duration::from_millis(350)).await;
    h.chat(user("hi")).await;
    assert_eq!(h.mocks[0].request_count(), 2);
}

#[tokio::test]
async fn streaming_through_the_gateway_yields_the_mocks_text() {
    let h = harness(TWO, "").await;
    let (st, headers, payloads) = h.chat_stream(stream_req("stream me")).await;
    assert_eq!(st, 200);
    assert_eq!(header(&headers, "content-type"), "text/event-stream");
    assert_eq!(
        stream_text(&payloads),
        "Hello from primary! You said: stream me"
    );
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    let first: serde_json::Value = serde_json::from_str(&payloads[0]).unwrap();
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    // The upstream was asked to stream.
    assert_eq!(h.mocks[0].requests()[0].json()["stream"], true);
}

#[tokio::test]
async fn finished_streams_leave_their_upstream_connection_reusable() {
    let h = harness(TWO, "").await;
    for i in 0..6 {
        let (st, _, payloads) = h.chat_stream(stream_req(&format!("n{i}"))).await;
        assert_eq!(st, 200);
        assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    }
    // The relay reads each body to its end after `[DONE]`, so the pool keeps the connection.
    // One client connection lands on one worker; two workers can at most mean two pools.
    let opened = h.mocks[0].connections();
    assert!(
        opened <= 2,
        "6 streams opened {opened} upstream connections"
    );
}

#[tokio::test]
async fn streaming_fails_over_invisibly_before_the_first_token() {
    for fault in [
        status(503),
        Fault::Reset,
        Fault::DropAfter { chunks: 0 },
        Fault::Hang,
    ] {
        let h = harness(TWO, "").await;
        h.fault(0, fault.clone(), 1);
        let (st, headers, payloads) = h.chat_stream(stream_req("x")).await;
        assert_eq!(st, 200, "{fault:?}");
        assert_eq!(
            stream_text(&payloads),
            "Hello from fallback! You said: x",
            "{fault:?}"
        );
        assert_eq!(header(&headers, "x-switchyard-attempts"), "2", "{fault:?}");
        assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    }
}

#[tokio::test]
async fn streaming_with_include_usage_ends_with_a_usage_chunk() {
    let h = harness(TWO, "").await;
    let mut req = stream_req("count me");
    req["stream_options"] = json!({"include_usage": true});
    let (_, _, payloads) = h.chat_stream(req).await;
    let usage_chunk: serde_json::Value =
        serde_json::from_str(&payloads[payloads.len() - 2]).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert!(
        usage_chunk["usage"]["completion_tokens"].as_u64().unwrap() > 0,
        "{usage_chunk}"
    );
}

#[tokio::test]
async fn a_stream_cut_after_content_ends_with_an_error_not_a_fake_success() {
    let h = harness(&[(Wire::OpenAi, "only")], "").await;
    h.fault(0, Fault::DropAfter { chunks: 2 }, 1);
    let (st, _, payloads) = h.chat_stream(stream_req("cut")).await;
    assert_eq!(st, 200);
    assert_ne!(payloads.last().map(String::as_str), Some("[DONE]"));
    let last: serde_json::Value = serde_json::from_str(payloads.last().unwrap()).unwrap();
    assert!(
        last["error"]["message"].as_str().unwrap().contains("broke"),
        "{last}"
    );
    assert!(!payloads
        .iter()
        .any(|p| p.contains("\"finish_reason\":\"stop\"")));
}

#[tokio::test]
async fn bad_input_gets_openai_errors_and_the_gateway_keeps_serving() {
    let h = harness(TWO, "").await;
    let cases: Vec<(String, u16, &str)> = vec![
        ("{not json".into(), 400, "json"),
        (json!({"model": "chat"}).to_string(), 400, "messages"),
        (
            json!({"model": "chat", "messages": [{"role": "wizard", "content": "x"}]}).to_string(),
            400,
            "role",
        ),
        (
            json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}).to_string(),
            404,
            "nope",
        ),
        (
            format!(
                "{{\"model\":\"chat\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
                "a".repeat(70_000)
            ),
            413,
            "limit",
        ),
    ];
    for (body, code, needle) in cases {
        let resp = h.post_raw(body).await;
        assert_eq!(resp.status().as_u16(), code);
        let v: serde_json::Value = resp.json().await.expect("OpenAI error JSON");
        let msg = v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        assert!(msg.contains(needle), "{code}: {v}");
        assert!(v["error"]["type"].is_string(), "{v}");
    }
    assert_eq!(
        h.mocks[0].request_count(),
        0,
        "nothing bad reached an upstream"
    );
    let (st, _, _) = h.chat(user("still here?")).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn unknown_paths_and_methods_get_openai_errors() {
    let h = harness(TWO, "").await;
    let r = h.client.get(h.url("/v1/nothing")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"]["message"].is_string());
    let r = h
        .client
        .get(h.url("/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(header(r.headers(), "allow"), "POST");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "method_not_allowed");
    let r = h.client.head(h.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = h.client.post(h.url("/v1/models")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(header(r.headers(), "allow"), "GET, HEAD");
}

#[tokio::test]
async fn shutting_down_finishes_open_streams_then_stops() {
    let mut h = harness_with(TWO, "", |c| c.chunk_delay = Duration::from_millis(40)).await;
    let mut resp = h
        .post_raw(stream_req("one two three four five six").to_string())
        .await;
    let mut text = String::new();
    let first = resp.chunk().await.unwrap().expect("a first chunk");
    text.push_str(&String::from_utf8_lossy(&first));
    h.shut_down();
    while let Some(piece) = resp.chunk().await.expect("the stream is not cut") {
        text.push_str(&String::from_utf8_lossy(&piece));
    }
    assert!(text.contains("six"), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let ended = tokio::time::timeout(Duration::from_secs(5), &mut h.gateway.task)
        .await
        .expect("the server stops once its last stream is done");
    assert!(matches!(ended, Ok(Ok(()))), "{ended:?}");
    let fresh = reqwest::Client::new();
    assert!(
        fresh.get(h.url("/health")).send().await.is_err(),
        "a stopped gateway accepts no new connections"
    );
}

#[tokio::test]
async fn models_lists_the_aliases() {
    let h = harness(TWO, "").await;
    let v: serde_json::Value = h
        .client
        .get(h.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "chat");
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_cancels_the_upstream() {
    let h = harness_with(TWO, "", |c| c.chunk_delay = Duration::from_millis(100)).await;
    let resp = h
        .post_raw(stream_req("one two three four five six seven eight nine ten").to_string())
        .await;
    let mut resp = resp;
    let first = resp.chunk().await.unwrap();
    assert!(first.is_some());
    drop(resp);
    // The gateway drops the upstream connection as soon as the client's side closes; the
    // mock sees its reader gone long before its 10 chunks x 100 ms would have ended.
    let deadline = std::time::Instant::now() + Duration::from_millis(600);
    while h.mocks[0].abandoned_streams() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        h.mocks[0].abandoned_streams(),
        1,
        "upstream stream not cancelled"
    );
    assert_eq!(h.mocks[0].request_count(), 1);
    let (st, _, _) = h.chat(user("next")).await;
    assert_eq!(st, 200);
}
