//! Failure policy as configuration, end to end: two routes over the same upstreams react
//! differently to the same fault, and `check-config --explain` shows each route's table.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use switchyard_sim::{FaultRule, MockConfig, MockProvider, Wire};
use tokio::time::Instant;

#[tokio::test]
async fn two_routes_react_differently_to_the_same_fault() {
    let primary = MockProvider::start(MockConfig::new(Wire::OpenAi, "primary"))
        .await
        .unwrap();
    let fallback = MockProvider::start(MockConfig::new(Wire::Anthropic, "fallback"))
        .await
        .unwrap();
    let targets = format!(
        "targets = [\n  {{ name = \"primary\", provider = \"openai\", base_url = \"{}/v1\", api_key = \"${{TEST_KEY}}\", model = \"p\" }},\n  {{ name = \"fallback\", provider = \"anthropic\", base_url = \"{}\", api_key = \"${{TEST_KEY}}\", model = \"f\" }},\n]\n",
        primary.url(),
        fallback.url()
    );
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n[breaker]\nfailure_threshold = 1000\n\
         [models.eager]\n{targets}\
         [models.patient]\n{targets}[models.patient.policy]\nrate_limited = {{ delay_ms = 300 }}\n\
         [models.strict]\n{targets}[models.strict.policy]\nrate_limited = {{ fail_over = false }}\n"
    );
    let (gw, _stop) = start_from(&text).await;
    primary.push_fault(FaultRule::always(status(429)));
    let client = reqwest::Client::new();
    let ask = |model: &'static str| {
        let client = client.clone();
        let url = format!("{}/v1/chat/completions", gw.url());
        async move {
            let t = Instant::now();
            let resp = client
                .post(url)
                .json(&json!({"model": model, "messages": [{"role": "user", "content": "x"}]}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let target = header(resp.headers(), "x-switchyard-target").to_string();
            let body: serde_json::Value = resp.json().await.unwrap();
            (status, target, body, t.elapsed())
        }
    };
    let (st, target, _, eager_took) = ask("eager").await;
    assert_eq!((st, target.as_str()), (200, "fallback"));
    let (st, target, _, took) = ask("patient").await;
    assert_eq!((st, target.as_str()), (200, "fallback"));
    assert!(
        took >= Duration::from_millis(300),
        "waited before failing over: {took:?}"
    );
    assert!(eager_took < Duration::from_millis(300), "{eager_took:?}");
    let (st, _, body, _) = ask("strict").await;
    assert_eq!(st, 429, "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(
        fallback.request_count(),
        2,
        "strict never reached the fallback"
    );
}

fn check_config(text: &str, explain: bool) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("switchyard-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("c{}.toml", rand_suffix()));
    std::fs::write(&file, text).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.arg("check-config").arg(&file);
    if explain {
        cmd.arg("--explain");
    }
    let out = cmd.output().unwrap();
    let _ = std::fs::remove_file(&file);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

const ROUTES: &str = "[policy]\nrate_limited = { delay_ms = 200 }\n\
[models.a]\ntargets = [ { provider = \"openai\", model = \"m\" } ]\n\
[models.b]\ntargets = [ { provider = \"openai\", model = \"m\" } ]\n\
[models.b.policy]\nserver_error = { retries = 3 }\nrate_limited = { delay_ms = 0 }\n";

#[test]
fn check_config_explains_each_route_table() {
    let (ok, out) = check_config(ROUTES, true);
    assert!(ok, "{out}");
    let a = out.split("## models.b").next().unwrap();
    let b = out.split("## models.b").nth(1).unwrap();
    assert!(
        a.contains("| `rate_limited` | yes | once, when Retry-After is short | 200 ms |"),
        "{out}"
    );
    assert!(
        b.contains("| `rate_limited` | yes | once, when Retry-After is short | no |"),
        "{out}"
    );
    assert!(b.contains("| `server_error` | yes | 3 ("), "{out}");
}

#[test]
fn check_config_refuses_unknown_classes_and_unsafe_fail_over() {
    let (ok, out) = check_config(&ROUTES.replace("server_error", "server_eror"), false);
    assert!(!ok);
    assert!(out.contains("server_eror") && out.contains("line"), "{out}");
    let (ok, out) = check_config(&format!("{ROUTES}auth = {{ fail_over = true }}\n"), false);
    assert!(!ok);
    assert!(
        out.contains("dangerously_fail_over_on_hard_errors"),
        "{out}"
    );
    let (ok, out) = check_config(
        &format!(
            "{ROUTES}auth = {{ fail_over = true }}\ndangerously_fail_over_on_hard_errors = true\n"
        ),
        false,
    );
    assert!(ok, "{out}");
}

/// Every third request to the first mock fails with a 503, the others are answered: a
/// pattern consecutive-failure counting never trips on.
fn one_in_three_fails(h: &Harness) {
    for _ in 0..40 {
        h.mocks[0].push_fault(FaultRule::next(switchyard_sim::Fault::Delay { ms: 0 }, 2));
        h.mocks[0].push_fault(FaultRule::next(status(503), 1));
    }
}

#[tokio::test]
async fn one_failure_in_three_never_opens_a_consecutive_breaker() {
    let h = harness(
        &[(Wire::OpenAi, "flaky"), (Wire::Anthropic, "steady")],
        "[breaker]\nfailure_threshold = 2\n",
    )
    .await;
    one_in_three_fails(&h);
    for _ in 0..60 {
        let (st, _, _) = h.chat(user("x")).await;
        assert_eq!(st, 200);
    }
    assert_eq!(h.health().await["targets"]["flaky"]["breaker"], "closed");
    assert_eq!(
        h.mocks[0].request_count(),
        60,
        "every request went to flaky first"
    );
}

#[tokio::test]
async fn a_target_that_fails_one_request_in_three_is_caught_by_the_error_rate_mode() {
    let h = harness(
        &[(Wire::OpenAi, "flaky"), (Wire::Anthropic, "steady")],
        "[breaker]\nmode = \"error_rate\"\nerror_rate = 0.25\nwindow_ms = 10000\nmin_requests = 12\ncooldown_ms = 60000\n",
    )
    .await;
    one_in_three_fails(&h);
    for _ in 0..60 {
        let (st, _, body) = h.chat(user("x")).await;
        assert_eq!(st, 200, "every request answered: {body}");
    }
    let report = h.health().await;
    let flaky = &report["targets"]["flaky"];
    assert_eq!(flaky["breaker"], "open", "{report}");
    assert_eq!(flaky["breaker_mode"], "error_rate");
    assert_eq!(flaky["last_trip_reason"], "overloaded");
    // Once open, the flaky target is left alone.
    let before = h.mocks[0].request_count();
    for _ in 0..10 {
        h.chat(user("x")).await;
    }
    assert_eq!(h.mocks[0].request_count(), before);
}

#[tokio::test]
async fn each_target_can_have_its_own_breaker_settings() {
    let h = harness_targets(
        &[
            (
                Wire::OpenAi,
                "touchy",
                "breaker = { failure_threshold = 1, cooldown_ms = 60000 }",
            ),
            (Wire::OpenAi, "tolerant", ""),
            (Wire::Anthropic, "last", ""),
        ],
        "[breaker]\nfailure_threshold = 3\ncooldown_ms = 60000\n",
        |_| {},
    )
    .await;
    h.mocks[0].push_fault(FaultRule::next(status(503), 1));
    h.mocks[1].push_fault(FaultRule::next(status(503), 1));
    let (st, headers, _) = h.chat(user("x")).await;
    assert_eq!(st, 200);
    assert_eq!(header(&headers, "x-switchyard-target"), "last");
    let report = h.health().await;
    assert_eq!(report["targets"]["touchy"]["breaker"], "open", "{report}");
    assert_eq!(
        report["targets"]["tolerant"]["breaker"], "closed",
        "{report}"
    );
    assert_eq!(report["targets"]["tolerant"]["consecutive_failures"], 1);
}

#[test]
fn a_bad_breaker_override_names_the_target() {
    let text = "[models.chat]\ntargets = [ { provider = \"openai\", model = \"m\", breaker = { mode = \"error_rate\", error_rate = 2.0 } } ]\n";
    let (ok, out) = check_config(text, false);
    assert!(!ok);
    assert!(
        out.contains("models.chat.targets[0].breaker.error_rate"),
        "{out}"
    );
    let shared = "[models.a]\ntargets = [ { provider = \"openai\", model = \"m\", breaker = { failure_threshold = 1 } } ]\n[models.b]\ntargets = [ { provider = \"openai\", model = \"m\" } ]\n";
    let (ok, out) = check_config(shared, false);
    assert!(!ok);
    assert!(out.contains("same upstream"), "{out}");
}
