//! The provider faults users meet (the 16 scenarios of the public failoverbench catalogue,
//! in our own tests), each bounded in time, asserting what the client got and what each mock
//! saw; for the OpenAI, Anthropic and Gemini upstream formats where the fault applies.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use switchyard_sim::{Fault, FaultRule, Wire};

/// Every mock answers with this text, so a continued answer can be checked for being whole.
const CANON: &str = "A gateway earns trust only when the provider behind it misbehaves, because that is the moment users would otherwise see a blank screen.";

const FORMATS: [Wire; 3] = [Wire::OpenAi, Wire::Anthropic, Wire::Gemini];

async fn canon_pair(primary: Wire, fallback: Wire) -> Harness {
    harness_with(&[(primary, "primary"), (fallback, "fallback")], "", |c| {
        c.reply = Some(CANON.into())
    })
    .await
}

fn done(payloads: &[String]) -> bool {
    payloads.last().map(String::as_str) == Some("[DONE]")
}

fn last_json(payloads: &[String]) -> Value {
    payloads
        .iter()
        .rev()
        .find(|p| p.as_str() != "[DONE]")
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or(Value::Null)
}

fn finish_reason(payloads: &[String]) -> Option<String> {
    payloads
        .iter()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .find_map(|v| {
            v["choices"][0]["finish_reason"]
                .as_str()
                .map(str::to_string)
        })
}

// S01: 429 with a short Retry-After is honoured on the same target (no tight loop).
#[tokio::test]
async fn s01_429_with_retry_after_is_waited_out() {
    for wire in FORMATS {
        let h = canon_pair(wire, Wire::OpenAi).await;
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
        let (st, headers, payloads) = h.chat_stream(stream_req("x")).await;
        assert_eq!(st, 200, "{wire:?}");
        assert!(
            start.elapsed() >= Duration::from_millis(950),
            "{wire:?}: waited {:?}",
            start.elapsed()
        );
        assert_eq!(stream_text(&payloads), CANON, "{wire:?}");
        assert_eq!(header(&headers, "x-switchyard-target"), "primary");
        assert_eq!(h.mocks[0].request_count(), 2, "{wire:?}");
        assert_eq!(h.mocks[1].request_count(), 0, "{wire:?}");
    }
}

// S02: persistent 429 without Retry-After: no hammering; fail over.
#[tokio::test]
async fn s02_persistent_429_fails_over_without_hammering() {
    let h = canon_pair(Wire::OpenAi, Wire::Anthropic).await;
    h.mocks[0].push_fault(FaultRule::always(status(429)));
    let (st, headers, payloads) = h.chat_stream(stream_req("x")).await;
    assert_eq!(st, 200);
    assert_eq!(stream_text(&payloads), CANON);
    assert_eq!(header(&headers, "x-switchyard-target"), "fallback");
    assert_eq!(h.mocks[0].request_count(), 1);
}

// S03: 500 once, then healthy: one retry on the same target.
#[tokio::test]
async fn s03_500_once_is_retried_on_the_same_target() {
    for wire in FORMATS {
        let h = canon_pair(wire, Wire::OpenAi).await;
        h.fault(0, status(500), 1);
        let (st, headers, payloads) = h.chat_stream(stream_req("x")).await;
        assert_eq!(st, 200, "{wire:?}");
        assert_eq!(stream_text(&payloads), CANON);
        assert_eq!(
            header(&headers, "x-switchyard-target"),
            "primary",
            "{wire:?}"
        );
        assert_eq!(h.mocks[0].request_count(), 2);
        assert_eq!(h.mocks[1].request_count(), 0);
    }
}

// S04: persistent 503: bounded attempts, then the fallback.
#[tokio::test]
async fn s04_persistent_503_fails_over_with_bounded_attempts() {
    for wire in FORMATS {
        let h = canon_pair(wire, Wire::Gemini).await;
        h.mocks[0].push_fault(FaultRule::always(status(503)));
        let (st, _, payloads) = h.chat_stream(stream_req("x")).await;
        assert_eq!(st, 200, "{wire:?}");
        assert_eq!(stream_text(&payloads), CANON, "{wire:?}");
        assert!(h.mocks[0].request_count() <= 2, "{wire:?}");
    }
}

// S05: TCP reset before headers.
#[tokio::test]
async fn s05_reset_before_headers_is_answered() {
    for wire in FORMATS {
        let h = canon_pair(wire, Wire::OpenAi).await;
        h.fault(0, Fault::Reset, 1);
        let (st, _, payloads) = h.chat_stream(stream_req("x")).await;
        assert_eq!(st, 200, "{wire:?}");
        assert_eq!(stream_text(&payloads), CANON, "{wire:?}");
    }
}

// S06: a silent upstream fails over after its first timeout and is not retried.
#[tokio::test]
async fn s06_silent_upstream_fails_over_once_within_budget() {
    for wire in FORMATS {
        let h = canon_pair(wire, Wire::OpenAi).await;
        h.fault(0, Fault::Hang, 5);
        let start = Instant::now();
        let (st, _, payloads) = h.chat_stream(stream_req("x")).await;
        assert_eq!(st, 200, "{wire:?}");
        assert_eq!(stream_text(&payloads), CANON);
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "{wire:?}: {:?}",
            start.elapsed()
        );
        assert_eq!(
            h.mocks[0].request_count(),
            1,
            "{wire:?}: silent target retried"
        );
    }
}

// S07: slow first token (headers at once, then silence): the first-token limit fails over.
#[tokio::test]
async fn s07_slow_first_token_fails_over_at_the_first_token_limit() {
    for wire in FORMATS {
        let h = canon_pair(wire, Wire::Anthropic).await;
        h.fault(
            0,
            Fault::StallAfter {
                chunks: 0,
                ms: 4_000,
            },
            1,
        );
        let start = Instant::now();
        let (st, headers, payloads) = h.chat_stream(stream_req("x")).await;
        assert_eq!(st, 200, "{wire:?}");
        assert_eq!(stream_text(&payloads), CANON, "{wire:?}");
        assert_eq!(
            header(&headers, "x-switchyard-target"),
            "fallback",
            "{wire:?}"
        );
        // first_token_ms is 1 s in the test config.
        assert!(
            start.elapsed() < Duration::from_millis(3_000),
            "{wire:?}: {:?}",
            start.elapsed()
        );
    }
}

// S08: stream cut mid-answer: continued on the fallback, whole answer, no repeated words.
#[tokio::test]
async fn s08_stream_cut_mid_answer_is_continued_on_the_fallback() {
    for (primary, fallback) in [
        (Wire::OpenAi, Wire::Anthropic), // continued by prefill
        (Wire::Anthropic, Wire::OpenAi), // regenerated, the sent part swallowed
        (Wire::Gemini, Wire::Gemini),
    ] {
        let h = canon_pair(primary, fallback).await;
        h.fault(0, Fault::DropAfter { chunks: 6 }, 1);
        let (st, _, payloads) = h.chat_stream(stream_req("x")).await;
        assert_eq!(st, 200);
        assert_eq!(stream_text(&payloads), CANON, "{primary:?} -> {fallback:?}");
        assert!(done(&payloads), "{primary:?} -> {fallback:?}");
        assert_eq!(finish_reason(&payloads).as_deref(), Some("stop"));
        let last = last_json(&payloads);
        assert_eq!(last["switchyard"]["continued"], true, "{last}");
        assert_eq!(
            last["switchyard"]["served_by"],
            json!(["primary", "fallback"])
        );
        let sent = h.mocks[1].requests()[0].json();
        if fallback == Wire::Anthropic {
            let msgs = sent["messages"].as_array().unwrap();
            assert_eq!(
                msgs.last().unwrap()["role"],
                "assistant",
                "prefill sent: {sent}"
            );
        }
    }
}

// S08 (bis): continuation off by route config: a clean error, never a fake success.
#[tokio::test]
async fn s08_with_continuation_off_the_cut_ends_with_an_error() {
    let h = harness_with(
        &[(Wire::OpenAi, "primary"), (Wire::OpenAi, "fallback")],
        "",
        |c| c.reply = Some(CANON.into()),
    )
    .await;
    // The harness route has continuation on; a second alias is not available, so turn the
    // fallback into a failure to see the no-continuation path end cleanly.
    h.fault(0, Fault::DropAfter { chunks: 3 }, 1);
    h.mocks[1].push_fault(FaultRule::always(status(503)));
    let (st, _, payloads) = h.chat_stream(stream_req("x")).await;
    assert_eq!(st, 200);
    assert!(!done(&payloads));
    assert_ne!(finish_reason(&payloads).as_deref(), Some("stop"));
    let last = last_json(&payloads);
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("primary"),
        "{last}"
    );
}

// S09: a stalled stream is detected within the stall limit and continued.
#[tokio::test]
async fn s09_stalled_stream_is_detected_and_continued() {
    for wire in FORMATS {
        let h = canon_pair(wire, Wire::Anthropic).await;
        h.fault(
            0,
            Fault::StallAfter {
                chunks: 5,
                ms: 30_000,
            },
            1,
        );
        let start = Instant::now();
        let (st, _, payloads) = h.chat_stream(stream_req("x")).await;
        assert_eq!(st, 200, "{wire:?}");
        assert_eq!(stream_text(&payloads), CANON, "{wire:?}");
        assert!(done(&payloads));
        // stall_ms is 600 ms in the test config.
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "{wire:?}: {:?}",
            start.elapsed()
        );
        let (st, _, _) = h.chat(user("still alive?")).await;
        assert_eq!(st, 200);
    }
}

// S10: a malformed chunk is skipped; nothing partial leaks; the answer completes in place.
#[tokio::test]
async fn s10_malformed_chunk_is_skipped() {
    for wire in FORMATS {
        let h = canon_pair(wire, Wire::OpenAi).await;
        h.fault(0, Fault::MalformedAfter { chunks: 4 }, 1);
        let (st, headers, payloads) = h.chat_stream(stream_req("x")).await;
        assert_eq!(st, 200, "{wire:?}");
        assert_eq!(stream_text(&payloads), CANON, "{wire:?}");
        assert_eq!(header(&headers, "x-switchyard-target"), "primary");
        assert!(payloads.iter().all(|p| !p.contains("broken")), "{wire:?}");
        assert!(done(&payloads));
    }
}

// S11: a complete stream without its terminal marker is finalised at once, with usage.
#[tokio::test]
async fn s11_stream_without_terminal_marker_is_finalised_with_usage() {
    for wire in [Wire::OpenAi, Wire::Anthropic] {
        let h = canon_pair(wire, Wire::OpenAi).await;
        h.fault(0, Fault::NoTerminal, 1);
        let mut req = stream_req("x");
        req["stream_options"] = json!({"include_usage": true});
        let start = Instant::now();
        let (st, headers, payloads) = h.chat_stream(req).await;
        assert_eq!(st, 200);
        assert_eq!(stream_text(&payloads), CANON, "{wire:?}");
        assert_eq!(
            header(&headers, "x-switchyard-target"),
            "primary",
            "{wire:?}"
        );
        assert!(done(&payloads), "{wire:?}");
        assert!(
            last_json(&payloads)["usage"]["total_tokens"]
                .as_u64()
                .unwrap_or(0)
                > 0,
            "{wire:?}: {payloads:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}

// S12: context length exceeded: never the same model again; a larger window if configured.
#[tokio::test]
async fn s12_context_length_goes_to_a_larger_window_or_fails_cleanly() {
    let ctx = Fault::Status {
        status: 400,
        retry_after_s: None,
        code: Some("context_length_exceeded".into()),
    };
    let h = harness_targets(
        &[
            (Wire::OpenAi, "small", "context_window = 8000"),
            (Wire::OpenAi, "same", "context_window = 8000"),
            (Wire::OpenAi, "large", "context_window = 128000"),
        ],
        "",
        |_| {},
    )
    .await;
    h.fault(0, ctx.clone(), 1);
    let (st, headers, _) = h.chat(user("long")).await;
    assert_eq!(st, 200);
    assert_eq!(header(&headers, "x-switchyard-target"), "large");
    assert_eq!(h.mocks[0].request_count(), 1);
    assert_eq!(
        h.mocks[1].request_count(),
        0,
        "a window no larger is skipped"
    );

    let h = harness_targets(
        &[
            (Wire::OpenAi, "small", "context_window = 8000"),
            (Wire::OpenAi, "other", ""),
        ],
        "",
        |_| {},
    )
    .await;
    h.fault(0, ctx, 1);
    let (st, _, body) = h.chat(user("long")).await;
    assert_eq!(st, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("8000"),
        "{body}"
    );
    assert_eq!(h.mocks[0].request_count(), 1);
    assert_eq!(h.mocks[1].request_count(), 0);
}

// S13: content filtered: no retry, the provider's reason reaches the client.
#[tokio::test]
async fn s13_content_filter_is_returned_not_retried() {
    let h = canon_pair(Wire::OpenAi, Wire::OpenAi).await;
    h.mocks[0].push_fault(FaultRule::always(Fault::Status {
        status: 400,
        retry_after_s: None,
        code: Some("content_policy_violation".into()),
    }));
    let (st, _, body) = h.chat(user("x")).await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(body["error"]["code"], "content_policy_violation", "{body}");
    assert_eq!(h.mocks[0].request_count(), 1);
    assert_eq!(h.mocks[1].request_count(), 0);
}

// S14: the fallback rejects the prefill: its 400 must not mask the real failure.
#[tokio::test]
async fn s14_a_prefill_rejection_does_not_mask_the_real_failure() {
    let h = canon_pair(Wire::OpenAi, Wire::Anthropic).await;
    h.fault(0, Fault::DropAfter { chunks: 4 }, 1);
    h.mocks[1].push_fault(FaultRule::always(status(400)));
    let (st, _, payloads) = h.chat_stream(stream_req("x")).await;
    assert_eq!(st, 200);
    assert!(!done(&payloads));
    let err = last_json(&payloads);
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(msg.contains("primary") && msg.contains("broke"), "{msg}");
    assert!(
        !msg.contains("fallback"),
        "the prefill 400 leaked into the error: {msg}"
    );

    // With a third target that regenerates, the answer is rescued.
    let h = harness_with(
        &[
            (Wire::OpenAi, "primary"),
            (Wire::Anthropic, "noprefill"),
            (Wire::OpenAi, "third"),
        ],
        "",
        |c| c.reply = Some(CANON.into()),
    )
    .await;
    h.fault(0, Fault::DropAfter { chunks: 4 }, 1);
    h.mocks[1].push_fault(FaultRule::always(status(400)));
    let (_, _, payloads) = h.chat_stream(stream_req("x")).await;
    assert_eq!(stream_text(&payloads), CANON);
    assert_eq!(
        last_json(&payloads)["switchyard"]["served_by"],
        json!(["primary", "third"])
    );
}

// A regenerated answer that diverges ends with an error that says so, never mixed text.
#[tokio::test]
async fn a_diverging_regeneration_ends_with_an_error() {
    let h = harness_with(
        &[(Wire::OpenAi, "primary"), (Wire::OpenAi, "fallback")],
        "",
        |_| {},
    )
    .await;
    h.fault(0, Fault::DropAfter { chunks: 3 }, 1);
    let (_, _, payloads) = h.chat_stream(stream_req("x")).await;
    assert!(!done(&payloads));
    let msg = last_json(&payloads)["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("different answer"), "{msg}");
    assert_eq!(stream_text(&payloads), "Hello from primary!");
}

// S15: a flapping primary: served from the fallback while down, not hammered, back soon.
#[tokio::test]
async fn s15_flapping_primary_is_served_around_and_recovers() {
    let h = harness(
        &[(Wire::OpenAi, "primary"), (Wire::Anthropic, "fallback")],
        "[breaker]\nfailure_threshold = 3\ncooldown_ms = 500\nmax_cooldown_ms = 1000\njitter = 0.0\n",
    )
    .await;
    h.mocks[0].push_fault(FaultRule::always(status(503)));
    let outage = Duration::from_millis(1_500);
    let start = Instant::now();
    let mut recovered_at = None;
    let mut healed = false;
    for _ in 0..25 {
        if !healed && start.elapsed() >= outage {
            h.mocks[0].reset();
            healed = true;
        }
        let (st, headers, payloads) = h.chat_stream(stream_req("x")).await;
        assert_eq!(st, 200);
        assert!(done(&payloads), "every request answered in full");
        if healed && recovered_at.is_none() && header(&headers, "x-switchyard-target") == "primary"
        {
            recovered_at = Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered_at = recovered_at.expect("primary back in use");
    assert!(
        recovered_at < outage + Duration::from_millis(1_300),
        "back after {recovered_at:?}"
    );
}

// S16: accounting: the fallback's model and usage are reported.
#[tokio::test]
async fn s16_failover_reports_the_fallback_model_and_usage() {
    let h = canon_pair(Wire::OpenAi, Wire::Gemini).await;
    h.mocks[0].push_fault(FaultRule::always(status(503)));
    let (st, _, body) = h.chat(user("x")).await;
    assert_eq!(st, 200);
    assert_eq!(body["model"], "fallback-model");
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let mut req = stream_req("x");
    req["stream_options"] = json!({"include_usage": true});
    let (_, _, payloads) = h.chat_stream(req).await;
    let first: Value = serde_json::from_str(&payloads[0]).unwrap();
    assert_eq!(first["model"], "fallback-model");
    assert!(
        last_json(&payloads)["usage"]["total_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

// A stream below the target's tokens/s floor completes, but counts against its breaker.
#[tokio::test]
async fn a_slow_stream_completes_but_counts_against_the_breaker() {
    let h = harness_targets(
        &[
            (Wire::OpenAi, "primary", "min_tokens_per_sec = 1000.0"),
            (Wire::OpenAi, "fallback", ""),
        ],
        "[breaker]\nfailure_threshold = 1\ncooldown_ms = 60000\njitter = 0.0\n",
        |c| c.reply = Some(CANON.into()),
    )
    .await;
    h.fault(0, Fault::SlowStream { chunk_delay_ms: 20 }, 1);
    let (st, headers, payloads) = h.chat_stream(stream_req("x")).await;
    assert_eq!(st, 200);
    assert_eq!(
        stream_text(&payloads),
        CANON,
        "the slow answer is still delivered whole"
    );
    assert_eq!(header(&headers, "x-switchyard-target"), "primary");
    let (_, headers, _) = h.chat_stream(stream_req("x")).await;
    assert_eq!(
        header(&headers, "x-switchyard-target"),
        "fallback",
        "breaker opened by the slow stream"
    );
    assert_eq!(h.mocks[0].request_count(), 1);
}

/// Two OpenAI mocks, a breaker that opens on one failure, and enough fast streams through the
/// primary that its recent first-token median is known (a few ms at most on loopback).
async fn breaker_pair_with_a_fast_median() -> Harness {
    let h = harness_targets(
        &[
            (Wire::OpenAi, "primary", ""),
            (Wire::OpenAi, "fallback", ""),
        ],
        "[breaker]\nfailure_threshold = 1\ncooldown_ms = 60000\njitter = 0.0\n",
        |c| c.reply = Some(CANON.into()),
    )
    .await;
    for _ in 0..8 {
        let (st, headers, _) = h.chat_stream(stream_req("x")).await;
        assert_eq!(st, 200);
        assert_eq!(header(&headers, "x-switchyard-target"), "primary");
    }
    h
}

// A first token tens of times the median but only tens of ms late is jitter, not a sick
// provider: the stream does not count against the breaker.
#[tokio::test]
async fn a_first_token_a_little_late_against_a_fast_median_is_not_slow() {
    let h = breaker_pair_with_a_fast_median().await;
    h.fault(0, Fault::StallAfter { chunks: 0, ms: 40 }, 1);
    let (st, headers, payloads) = h.chat_stream(stream_req("x")).await;
    assert_eq!(st, 200);
    assert_eq!(stream_text(&payloads), CANON);
    assert_eq!(header(&headers, "x-switchyard-target"), "primary");
    let (_, headers, _) = h.chat_stream(stream_req("x")).await;
    assert_eq!(
        header(&headers, "x-switchyard-target"),
        "primary",
        "the breaker stayed closed"
    );
}

// A first token well over 3x the median and over the margin still counts against the breaker.
#[tokio::test]
async fn a_first_token_far_later_than_the_median_counts_against_the_breaker() {
    let h = breaker_pair_with_a_fast_median().await;
    h.fault(0, Fault::StallAfter { chunks: 0, ms: 300 }, 1);
    let (st, headers, payloads) = h.chat_stream(stream_req("x")).await;
    assert_eq!(st, 200);
    assert_eq!(
        stream_text(&payloads),
        CANON,
        "the late answer is delivered whole"
    );
    assert_eq!(header(&headers, "x-switchyard-target"), "primary");
    let (_, headers, _) = h.chat_stream(stream_req("x")).await;
    assert_eq!(
        header(&headers, "x-switchyard-target"),
        "fallback",
        "breaker opened by the slow first token"
    );
}

// S02 on the last target: one jittered back-off, then a clean 429 — never a tight loop.
#[tokio::test]
async fn s02_persistent_429_on_the_last_target_backs_off_once() {
    let h = harness(&[(Wire::OpenAi, "only")], "").await;
    h.mocks[0].push_fault(FaultRule::always(status(429)));
    let start = Instant::now();
    let (st, headers, body) = h.chat(user("x")).await;
    assert_eq!(st, 429, "{body}");
    assert_eq!(header(&headers, "x-switchyard-attempts"), "2");
    assert!(
        start.elapsed() >= Duration::from_millis(240),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(h.mocks[0].request_count(), 2);
}

// S11 (bis): the answer finished, then the connection broke before the terminal marker: the
// answer is whole, so it is finalised, not continued or reported as broken.
#[tokio::test]
async fn a_cut_after_the_finish_reason_is_finalised_not_continued() {
    for wire in [Wire::OpenAi, Wire::Anthropic] {
        let h = canon_pair(wire, Wire::OpenAi).await;
        h.fault(0, Fault::CutBeforeTerminal, 1);
        let (st, _, payloads) = h.chat_stream(stream_req("x")).await;
        assert_eq!(st, 200);
        assert_eq!(stream_text(&payloads), CANON, "{wire:?}");
        assert!(done(&payloads), "{wire:?}: {payloads:?}");
        assert!(
            last_json(&payloads).get("switchyard").is_none(),
            "{wire:?}: not a continuation"
        );
        assert_eq!(h.mocks[1].request_count(), 0, "{wire:?}");
    }
}
