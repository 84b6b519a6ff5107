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
