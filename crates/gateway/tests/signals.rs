//! The `switchyard` binary itself under the signals that stop it: SIGTERM (what service
//! managers and container runtimes send) and SIGINT (Ctrl-C) both start a graceful stop, in
//! which a request already being answered still gets its whole answer. And what it writes to
//! a log that is not a terminal.
#![cfg(unix)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_sim::{Fault, FaultRule, MockConfig, MockProvider, Wire};

/// The binary on a free port in front of `mock`, once it answers `/health`.
async fn start_binary(mock: &MockProvider, dir: &std::path::Path) -> (Child, String) {
    start_binary_logging_to(mock, dir, Stdio::null()).await
}

async fn start_binary_logging_to(
    mock: &MockProvider,
    dir: &std::path::Path,
    log: Stdio,
) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
workers = 1

[models.chat]
targets = [{{ name = "mock", provider = "openai", base_url = "{}/v1", api_key = "sk-test", model = "m" }}]
"#,
            mock.url()
        ),
    )
    .expect("config written");
    let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(format!("{url}/health")).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the gateway did not listen within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (child, url)
}

fn send_signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} failed");
}

/// Waits for the process to end, at most `limit`.
async fn exit_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the gateway did not exit within {limit:?} of the signal");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn in_flight_request_finishes_after(signal: &str) {
    let mock = MockProvider::start(MockConfig::new(Wire::OpenAi, "mock"))
        .await
        .expect("mock starts");
    let dir = std::env::temp_dir().join(format!(
        "switchyard-signals-{signal}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (mut child, url) = start_binary(&mock, &dir).await;
    // The answer takes a while, so the signal arrives while the request is being answered.
    mock.push_fault(FaultRule::next(Fault::Delay { ms: 700 }, 1));
    let client = reqwest::Client::new();
    let request = tokio::spawn({
        let client = client.clone();
        let url = url.clone();
        async move {
            client
                .post(format!("{url}/v1/chat/completions"))
                .json(&common::user("hello"))
                .send()
                .await
        }
    });
    let started = Instant::now();
    while mock.request_count() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the request never reached the mock"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    send_signal(&child, signal);
    let response = request
        .await
        .expect("request task")
        .expect("the in-flight request is answered, not cut off");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("a JSON answer");
    assert!(
        !common::content(&body).is_empty(),
        "the answer has its content: {body}"
    );
    let status = exit_within(&mut child, Duration::from_secs(10)).await;
    assert!(status.success(), "a graceful stop exits 0, got {status}");
    // Stopped means stopped: nothing listens any more.
    assert!(client
        .get(format!("{url}/health"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_then_exits() {
    in_flight_request_finishes_after("TERM").await;
}

#[tokio::test]
async fn sigint_finishes_the_request_in_flight_then_exits() {
    in_flight_request_finishes_after("INT").await;
}

#[tokio::test]
async fn a_log_that_is_not_a_terminal_gets_no_colour_codes() {
    let mock = MockProvider::start(MockConfig::new(Wire::OpenAi, "mock"))
        .await
        .expect("mock starts");
    let dir = std::env::temp_dir().join(format!("switchyard-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // The log goes to standard output.
    let log = dir.join("stdout.log");
    let file = std::fs::File::create(&log).expect("log file");
    let (mut child, url) = start_binary_logging_to(&mock, &dir, Stdio::from(file)).await;
    // A failed attempt is logged at warn level, with its fields.
    mock.push_fault(FaultRule::next(common::status(400), 1));
    let response = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .json(&common::user("hello"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 400);
    send_signal(&child, "TERM");
    exit_within(&mut child, Duration::from_secs(10)).await;
    let text = std::fs::read_to_string(&log).expect("the log");
    assert!(text.contains("listening"), "{text}");
    assert!(
        text.contains("WARN"),
        "the failed attempt is logged: {text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in a log file: {text:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
