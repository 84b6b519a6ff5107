//! `GET /metrics`: the Prometheus exposition after real traffic (a failover, a stream, an
//! error), checked for the series it must carry and by Prometheus's own parser (`promtool
//! check metrics`, from Debian's `prometheus` package; `.ci/run` installs it).

mod common;

use common::*;
use switchyard_sim::{FaultRule, Wire};

async fn scrape(h: &Harness) -> (u16, String, String) {
    let resp = h.client.get(h.url("/metrics")).send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = header(resp.headers(), "content-type").to_string();
    (status, ct, resp.text().await.unwrap())
}

/// The value of the first sample whose line starts with `series`.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series}\n{text}"))
}

#[tokio::test]
async fn traffic_shows_up_in_the_exposition() {
    let h = harness_targets(
        &[
            (
                Wire::OpenAi,
                "primary",
                "price = { input_per_mtok = 1.0, output_per_mtok = 2.0 }",
            ),
            (Wire::Anthropic, "fallback", ""),
        ],
        "[breaker]\nfailure_threshold = 1\ncooldown_ms = 60000\n",
        |_| {},
    )
    .await;
    // Answered by the primary (forwarded byte for byte), then a failover that opens its
    // breaker, a stream from the fallback, and a request for a model that does not exist.
    let (st, _, body) = h.chat(user("hello")).await;
    assert_eq!(st, 200);
    let prompt = body["usage"]["prompt_tokens"].as_f64().unwrap();
    h.mocks[0].push_fault(FaultRule::next(status(503), 1));
    let (st, _, _) = h.chat(user("x")).await;
    assert_eq!(st, 200);
    let (st, _, _) = h.chat_stream(stream_req("x")).await;
    assert_eq!(st, 200);
    let mut req = user("x");
    req["model"] = "no-such-model".into();
    let (st, _, _) = h.chat(req).await;
    assert_eq!(st, 404);

    let (st, ct, text) = scrape(&h).await;
    assert_eq!(st, 200);
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert_eq!(
        value(
            &text,
            "switchyard_requests_total{route=\"chat\",outcome=\"ok\"}"
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            "switchyard_requests_total{route=\"_unknown\",outcome=\"model_not_found\"}"
        ),
        1.0,
        "the client's model name is never a label"
    );
    assert!(!text.contains("no-such-model"));
    assert_eq!(
        value(&text, "switchyard_upstream_attempts_total{route=\"chat\",target=\"primary\",provider=\"openai\",outcome=\"overloaded\"}"),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "switchyard_failovers_total{route=\"chat\",target=\"primary\",class=\"overloaded\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&text, "switchyard_breaker_state{target=\"primary\"}"),
        1.0,
        "open"
    );
    assert_eq!(
        value(
            &text,
            "switchyard_breaker_transitions_total{target=\"primary\",to=\"open\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "switchyard_tokens_total{route=\"chat\",target=\"primary\",kind=\"input\"}"
        ),
        prompt,
        "tokens of a forwarded answer are counted"
    );
    assert!(
        value(
            &text,
            "switchyard_cost_usd_total{route=\"chat\",target=\"primary\"}"
        ) > 0.0
    );
    assert_eq!(
        value(
            &text,
            "switchyard_first_token_seconds_count{route=\"chat\",target=\"fallback\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&text, "switchyard_answer_duration_seconds_count{route=\"chat\",target=\"fallback\",stream=\"false\"}"),
        1.0
    );
    assert!(!text.contains(KEY), "no key in metrics");
    promtool_check(&text);
    // A scraper that asks for OpenMetrics gets it.
    let resp = h
        .client
        .get(h.url("/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(header(resp.headers(), "content-type").starts_with("application/openmetrics-text"));
    let om = resp.text().await.unwrap();
    assert!(
        om.contains("# TYPE switchyard_requests counter") && om.ends_with("# EOF\n"),
        "{om}"
    );
}

/// Runs `promtool check metrics` on the exposition: Prometheus's own parser and linter.
fn promtool_check(text: &str) {
    use std::io::Write;
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "promtool is missing under CI=true (.ci/run installs Debian's prometheus package)"
        );
        eprintln!("SKIPPED: promtool not installed; the exposition was not checked by Prometheus's parser");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
