//! Routing end to end: mock providers with different latencies, prices and failures, and the
//! traffic split each mock's own request log shows against what the route's policy says.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use switchyard_sim::{Fault, FaultRule, Wire};
use tokio::time::Instant;

fn delay(ms: u64) -> Fault {
    Fault::Delay { ms }
}

/// Requests each mock received since `before` (a snapshot of their counts).
fn since(h: &Harness, before: &[usize]) -> Vec<usize> {
    h.mocks
        .iter()
        .zip(before)
        .map(|(m, b)| m.request_count() - b)
        .collect()
}

fn counts(h: &Harness) -> Vec<usize> {
    h.mocks.iter().map(|m| m.request_count()).collect()
}

/// Sends plain requests one after another for `d`; every one must be answered.
async fn load(h: &Harness, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        let (st, _, body) = h.chat(user("hi")).await;
        assert_eq!(st, 200, "{body}");
    }
}

const FAST_STATS: &str = "[routing]\nwindow_ms = 2000\nslices = 4\nrefresh_ms = 50\n";

#[tokio::test]
async fn latency_routing_moves_traffic_to_the_faster_target_and_back() {
    let h = harness_route(
        &[(Wire::OpenAi, "a", ""), (Wire::Anthropic, "b", "")],
        FAST_STATS,
        "strategy = \"latency\"\nlatency = { recompute_ms = 100, hold_ms = 300, margin = 0.2, explore = 0.2 }",
        |_| {},
    )
    .await;
    // a is listed first but slow; b is fast.
    h.mocks[0].push_fault(FaultRule::always(delay(60)));
    // b starts with no samples: exploration gives it its first five, then it must stay
    // faster for the hold.
    load(&h, Duration::from_millis(2_500)).await;
    let before = counts(&h);
    load(&h, Duration::from_millis(1_500)).await;
    let split = since(&h, &before);
    assert!(
        split[1] >= 4 * split[0].max(1),
        "the faster target takes most traffic: {split:?}"
    );
    assert!(
        split[0] > 0,
        "the slower one still gets exploration traffic: {split:?}"
    );
    let report = h.health().await;
    assert_eq!(report["routes"]["chat"]["strategy"], "latency");
    assert_eq!(
        report["routes"]["chat"]["order"][0]["target"], "b",
        "{report}"
    );
    assert!(report["targets"]["a"]["total_ms"]["p50"].as_f64().unwrap() >= 60.0);

    // Now b slows down and a recovers: traffic goes back within seconds.
    h.mocks[0].reset();
    h.mocks[1].push_fault(FaultRule::always(delay(60)));
    load(&h, Duration::from_millis(3_500)).await;
    let before = counts(&h);
    load(&h, Duration::from_millis(1_500)).await;
    let split = since(&h, &before);
    assert!(
        split[0] >= 4 * split[1].max(1),
        "traffic moved back to a: {split:?}"
    );
}

#[tokio::test]
async fn cost_routing_uses_the_cheapest_acceptable_target_and_bills_it() {
    let prices = [
        "price = { input_per_mtok = 10.0, output_per_mtok = 30.0 }",
        "price = { input_per_mtok = 0.5, output_per_mtok = 1.5 }",
        "price = { input_per_mtok = 0.01, output_per_mtok = 0.02 }",
    ];
    let h = harness_route(
        &[
            (Wire::OpenAi, "premium", prices[0]),
            (Wire::Anthropic, "mid", prices[1]),
            (Wire::Gemini, "budget", prices[2]),
        ],
        "[quality.premium-model]\nchat = 0.95\ncode = 0.9\n[quality.mid-model]\nchat = 0.8\ncode = 0.6\n[quality.budget-model]\nchat = 0.5\n",
        "strategy = \"cost\"\nquality_floor = 0.7",
        |_| {},
    )
    .await;
    for _ in 0..10 {
        let (st, headers, body) = h.chat(user("hello there")).await;
        assert_eq!(st, 200, "{body}");
        assert_eq!(header(&headers, "x-switchyard-target"), "mid");
        // The bill is the answer's own usage at mid's price.
        let u = &body["usage"];
        let expected = u["prompt_tokens"].as_f64().unwrap() * 0.5 / 1e6
            + u["completion_tokens"].as_f64().unwrap() * 1.5 / 1e6;
        let billed: f64 = header(&headers, "x-switchyard-cost").parse().unwrap();
        assert!((billed - expected).abs() < 1e-9, "{billed} vs {expected}");
    }
    // A request tagged as code needs 0.7 for code: only premium has it.
    let resp = h
        .client
        .post(h.url("/v1/chat/completions"))
        .header("x-switchyard-task", "code")
        .json(&user("fn main"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(resp.headers(), "x-switchyard-target"), "premium");
    // A task nobody is good enough for is a clear 400.
    let mut req = user("a sonnet");
    req["metadata"] = json!({"switchyard_task": "poetry"});
    let (st, _, body) = h.chat(req).await;
    assert_eq!(st, 400);
    assert_eq!(body["error"]["code"], "no_acceptable_target", "{body}");
    assert_eq!(
        [
            h.mocks[0].request_count(),
            h.mocks[1].request_count(),
            h.mocks[2].request_count()
        ],
        [1, 10, 0],
        "the budget target is below the floor and never used"
    );
    let report = h.health().await;
    assert!(report["targets"]["mid"]["spent_usd"].as_f64().unwrap() > 0.0);
    assert!(report["routes"]["chat"]["spent_usd"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn weighted_routing_splits_first_attempts_by_weight() {
    let h = harness_route(
        &[
            (Wire::OpenAi, "old", "weight = 3"),
            (Wire::OpenAi, "new", "weight = 1"),
        ],
        "",
        "strategy = \"weighted\"",
        |_| {},
    )
    .await;
    for _ in 0..40 {
        let (st, _, _) = h.chat(user("x")).await;
        assert_eq!(st, 200);
    }
    assert_eq!(counts(&h), vec![30, 10]);
}

#[tokio::test]
async fn a_recovering_primary_gets_a_growing_share() {
    let h = harness(
        &[(Wire::OpenAi, "primary"), (Wire::Anthropic, "fallback")],
        "[breaker]\nfailure_threshold = 2\ncooldown_ms = 300\njitter = 0.0\nrecovery_stage_ms = 800\nrecovery_percent = [10, 50]\n",
    )
    .await;
    h.mocks[0].push_fault(FaultRule::always(status(503)));
    for _ in 0..4 {
        let (st, _, _) = h.chat(user("x")).await;
        assert_eq!(st, 200, "answered by the fallback");
    }
    h.mocks[0].reset();
    tokio::time::sleep(Duration::from_millis(350)).await;
    // The probe.
    let (_, headers, _) = h.chat(user("x")).await;
    assert_eq!(header(&headers, "x-switchyard-target"), "primary");
    let stage = Instant::now();
    let report = h.health().await;
    assert_eq!(
        report["targets"]["primary"]["breaker"], "recovering",
        "{report}"
    );
    assert_eq!(report["targets"]["primary"]["recovery_percent"], 10);
    let mut shares = Vec::new();
    for (i, end) in [700u64, 1_500, 2_300].into_iter().enumerate() {
        let before = counts(&h);
        while stage.elapsed() < Duration::from_millis(end) {
            let (st, _, _) = h.chat(user("x")).await;
            assert_eq!(st, 200, "the ramp never fails a request");
        }
        let split = since(&h, &before);
        let share = split[0] as f64 / (split[0] + split[1]) as f64;
        shares.push(share);
        // Skip past the stage boundary before the next measurement.
        if i < 2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(shares[0] > 0.02 && shares[0] < 0.25, "{shares:?}");
    assert!(shares[1] > 0.3 && shares[1] < 0.7, "{shares:?}");
    assert!(shares[2] > 0.95, "{shares:?}");
}

#[tokio::test]
async fn the_ramp_never_fails_a_request_when_no_other_target_answers() {
    let h = harness(
        &[(Wire::OpenAi, "primary"), (Wire::Anthropic, "fallback")],
        "[breaker]\nfailure_threshold = 1\ncooldown_ms = 200\njitter = 0.0\nrecovery_stage_ms = 60000\nrecovery_percent = [5]\n",
    )
    .await;
    h.mocks[0].push_fault(FaultRule::next(status(503), 1));
    let (st, _, _) = h.chat(user("x")).await;
    assert_eq!(st, 200);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (_, headers, _) = h.chat(user("x")).await;
    assert_eq!(
        header(&headers, "x-switchyard-target"),
        "primary",
        "the probe"
    );
    // The fallback now fails every time: the ramp's turned-away requests come back.
    h.mocks[1].push_fault(FaultRule::always(status(503)));
    for _ in 0..10 {
        let (st, headers, body) = h.chat(user("x")).await;
        assert_eq!(st, 200, "{body}");
        assert_eq!(header(&headers, "x-switchyard-target"), "primary");
    }
}

#[tokio::test]
async fn hedging_answers_from_the_next_target_and_cancels_the_slow_one() {
    let h = harness_route(
        &[(Wire::OpenAi, "slow", ""), (Wire::Anthropic, "quick", "")],
        // A budget that allows every hedge here (the next test has the other side).
        "[retry]\nbudget_ratio = 1.0\nbudget_floor_per_sec = 10.0\n",
        "hedge_after = \"100ms\"",
        |_| {},
    )
    .await;
    h.mocks[0].push_fault(FaultRule::always(delay(800)));
    let t = Instant::now();
    let (st, headers, body) = h.chat(user("x")).await;
    assert_eq!(st, 200, "{body}");
    assert!(
        t.elapsed() < Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(header(&headers, "x-switchyard-target"), "quick");
    assert_eq!(header(&headers, "x-switchyard-attempts"), "2");
    let (st, headers, payloads) = h.chat_stream(stream_req("x")).await;
    assert_eq!(st, 200);
    assert_eq!(header(&headers, "x-switchyard-target"), "quick");
    assert!(payloads.last().is_some_and(|p| p == "[DONE]"));
    assert_eq!(h.mocks[0].request_count(), 2, "the slow one was asked");
    // The cancelled attempts are charged to no breaker.
    let report = h.health().await;
    assert_eq!(report["targets"]["slow"]["breaker"], "closed");
    assert_eq!(report["targets"]["slow"]["consecutive_failures"], 0);
    // A fast first target is never hedged.
    h.mocks[0].reset();
    let before = counts(&h);
    for _ in 0..5 {
        let (_, headers, _) = h.chat(user("x")).await;
        assert_eq!(header(&headers, "x-switchyard-target"), "slow");
    }
    assert_eq!(since(&h, &before), vec![5, 0]);
}

#[tokio::test]
async fn hedges_are_paid_from_the_retry_budget() {
    let h = harness_route(
        &[(Wire::OpenAi, "slow", ""), (Wire::Anthropic, "quick", "")],
        "[retry]\nbudget_ratio = 0.0\nbudget_floor_per_sec = 0.0\n",
        "hedge_after = \"50ms\"",
        |_| {},
    )
    .await;
    h.mocks[0].push_fault(FaultRule::always(delay(300)));
    // The budget starts with nothing to spend: no hedge, the slow answer.
    for _ in 0..3 {
        let (st, headers, _) = h.chat(user("x")).await;
        assert_eq!(st, 200);
        assert_eq!(header(&headers, "x-switchyard-target"), "slow");
    }
    assert_eq!(h.mocks[1].request_count(), 0, "never doubled the load");
}

#[tokio::test]
async fn a_target_over_its_spend_cap_is_skipped_and_then_the_client_hears_why() {
    let h = harness_route(
        &[
            (
                Wire::OpenAi,
                "capped",
                "price = { input_per_mtok = 1000000.0, output_per_mtok = 1000000.0 }, cost_cap = { usd = 1.0, period = \"1d\" }",
            ),
            (
                Wire::Anthropic,
                "also-capped",
                "price = { input_per_mtok = 1000000.0, output_per_mtok = 1000000.0 }, cost_cap = { usd = 1.0, period = \"1d\" }",
            ),
        ],
        "",
        "",
        |_| {},
    )
    .await;
    let (st, headers, _) = h.chat(user("x")).await;
    assert_eq!(st, 200);
    assert_eq!(header(&headers, "x-switchyard-target"), "capped");
    let (st, headers, _) = h.chat(user("x")).await;
    assert_eq!(st, 200);
    assert_eq!(header(&headers, "x-switchyard-target"), "also-capped");
    let report = h.health().await;
    assert_eq!(
        report["targets"]["capped"]["cost_cap"]["over"], true,
        "{report}"
    );
    let (st, headers, body) = h.chat(user("x")).await;
    assert_eq!(st, 429, "{body}");
    assert_eq!(body["error"]["code"], "spend_cap_reached");
    assert!(header(&headers, "retry-after").parse::<u64>().unwrap() > 0);
    assert_eq!(
        header(&headers, "x-should-retry"),
        "false",
        "the SDKs must not retry it"
    );
    assert_eq!(counts(&h), vec![1, 1], "nothing sent past the caps");
}

#[tokio::test]
async fn a_streamed_answer_reports_its_cost_and_every_model_that_served_it() {
    let h = harness_route(
        &[
            (
                Wire::OpenAi,
                "primary",
                "price = { input_per_mtok = 2.0, output_per_mtok = 8.0 }",
            ),
            (
                Wire::Anthropic,
                "fallback",
                "price = { input_per_mtok = 3.0, output_per_mtok = 15.0 }",
            ),
        ],
        "",
        "",
        |c| c.stream_chunks = 6,
    )
    .await;
    h.mocks[0].push_fault(FaultRule::next(Fault::DropAfter { chunks: 2 }, 1));
    let mut req = stream_req("tell me something long");
    req["stream_options"] = json!({"include_usage": true});
    let (st, _, payloads) = h.chat_stream(req).await;
    assert_eq!(st, 200);
    let last: Value = payloads
        .iter()
        .rev()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .next()
        .unwrap();
    let ext = &last["switchyard"];
    assert_eq!(ext["continued"], true, "{last}");
    assert_eq!(ext["models"], json!(["primary-model", "fallback-model"]));
    // Only the fallback's part had usage to bill (the cut stream never sent its own).
    let u = &last["usage"];
    let cost = ext["cost"].as_f64().expect("a cost");
    assert!(cost > 0.0, "{last}");
    let at_fallback = u["prompt_tokens"].as_f64().unwrap() * 3.0 / 1e6
        + u["completion_tokens"].as_f64().unwrap() * 15.0 / 1e6;
    assert!((cost - at_fallback).abs() < 1e-9, "{cost} vs {at_fallback}");
}

#[tokio::test]
async fn a_slow_non_streamed_answer_counts_against_the_breaker() {
    let h = harness_route(
        &[(Wire::OpenAi, "a", ""), (Wire::Anthropic, "b", "")],
        FAST_STATS,
        "slow_factor = 3.0",
        |_| {},
    )
    .await;
    for _ in 0..10 {
        h.chat(user("x")).await;
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    h.mocks[0].push_fault(FaultRule::next(delay(300), 1));
    let (st, headers, _) = h.chat(user("x")).await;
    assert_eq!(st, 200, "delivered");
    assert_eq!(header(&headers, "x-switchyard-target"), "a");
    let report = h.health().await;
    assert_eq!(
        report["targets"]["a"]["consecutive_failures"], 1,
        "{report}"
    );
}

#[tokio::test]
async fn health_shows_each_route_order_and_each_target_latency() {
    let h = harness_route(
        &[
            (Wire::OpenAi, "a", "region = \"eu-west\""),
            (Wire::Gemini, "b", ""),
        ],
        FAST_STATS,
        "",
        |_| {},
    )
    .await;
    for _ in 0..6 {
        h.chat(user("x")).await;
        h.chat_stream(stream_req("x")).await;
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    let report = h.health().await;
    let a = &report["targets"]["a"];
    assert_eq!(a["region"], "eu-west");
    assert_eq!(a["requests"], 12, "{report}");
    assert_eq!(a["error_rate"], 0.0);
    for key in ["p50", "p90", "p99"] {
        assert!(a["total_ms"][key].as_f64().is_some(), "{report}");
        assert!(a["first_token_ms"][key].as_f64().is_some(), "{report}");
    }
    let order = &report["routes"]["chat"]["order"];
    assert_eq!(report["routes"]["chat"]["strategy"], "priority");
    assert_eq!(order[0]["target"], "a");
    assert!(order[1]["reason"].as_str().unwrap().contains("priority"));
}
