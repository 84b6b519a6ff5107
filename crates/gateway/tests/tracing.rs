//! Traces and structured logs, through the real binary: `--log-format json` writes one JSON
//! object per line, a failover's warning carries its target and class as fields, nothing is
//! written per answered request at the default level, no secret reaches the log, and the W3C
//! trace context of a request reaches the upstream with the attempt's own span id.
#![cfg(unix)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_sim::{FaultRule, MockConfig, MockProvider, Wire};

const UPSTREAM_KEY: &str = "sk-upstream-SECRET-a1b2c3d4e5";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

struct Gateway {
    child: Child,
    url: String,
    log: PathBuf,
    dir: PathBuf,
    client_key: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Gateway {
    /// The binary with `--log-format json` in front of `mocks` (route `chat`, in order),
    /// with one client key, logging to a file; `rust_log` sets `RUST_LOG` when given.
    async fn start(test: &str, mocks: &[&MockProvider], rust_log: Option<&str>) -> Gateway {
        let dir =
            std::env::temp_dir().join(format!("switchyard-tracing-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let (client_key, hash) = switchyard_gateway::keys::generate().expect("a key");
        let targets: Vec<String> = mocks
            .iter()
            .enumerate()
            .map(|(i, m)| {
                format!(
                    r#"{{ name = "t{i}", provider = "openai", base_url = "{}/v1", api_key = "{UPSTREAM_KEY}", model = "m{i}" }}"#,
                    m.url()
                )
            })
            .collect();
        let config = dir.join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\nworkers = 1\n\n[breaker]\nfailure_threshold = 1000\n\n[[keys]]\nname = \"tester\"\nhash = \"{hash}\"\n\n[models.chat]\ntargets = [{}]\n",
                targets.join(", ")
            ),
        )
        .expect("config written");
        let log = dir.join("stdout.log");
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.args(["serve", "--log-format", "json", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::null())
            .env_remove("RUST_LOG")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        if let Some(filter) = rust_log {
            cmd.env("RUST_LOG", filter);
        }
        let child = cmd.spawn().expect("the binary starts");
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while reqwest::get(format!("{url}/health")).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the gateway did not listen within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Gateway {
            child,
            url,
            log,
            dir,
            client_key,
        }
    }

    async fn chat(&self, body: Value, traceparent: Option<&str>) -> reqwest::Response {
        let mut req = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", self.url))
            .bearer_auth(&self.client_key)
            .json(&body);
        if let Some(tp) = traceparent {
            req = req
                .header("traceparent", tp)
                .header("tracestate", "vendor=abc");
        }
        req.send().await.expect("an answer")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).expect("the log")
    }

    /// Every line of the log, each parsed as JSON (a line that is not fails the test).
    fn lines(&self) -> Vec<Value> {
        parse_lines(&self.log_text())
    }
}

fn parse_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn assert_no_secrets(text: &str, gw: &Gateway) {
    assert!(
        !text.contains(UPSTREAM_KEY),
        "the upstream key is in the log: {text}"
    );
    assert!(
        !text.contains(&gw.client_key),
        "the client key is in the log: {text}"
    );
    assert!(!text.contains("SECRET"), "{text}");
}

async fn mock(name: &str) -> MockProvider {
    MockProvider::start(MockConfig::new(Wire::OpenAi, name))
        .await
        .expect("mock starts")
}

/// The (trace id, span id, flags) of a `traceparent`.
fn parts(tp: &str) -> (String, String, String) {
    let p: Vec<&str> = tp.split('-').collect();
    assert_eq!(p.len(), 4, "{tp}");
    assert_eq!(p[0], "00", "{tp}");
    (p[1].to_string(), p[2].to_string(), p[3].to_string())
}

#[tokio::test]
async fn json_logs_a_failover_as_fields_and_an_answer_not_at_all() {
    let a = mock("a").await;
    let b = mock("b").await;
    let gw = Gateway::start("failover", &[&a, &b], None).await;
    let before = gw.lines();
    assert!(
        before.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("listening"))),
        "{before:?}"
    );
    // A plain answered request writes nothing at the default level.
    let r = gw.chat(common::user("hello"), None).await;
    assert_eq!(r.status(), 200);
    let after_plain = gw.lines();
    assert_eq!(
        after_plain.len(),
        before.len(),
        "an answered request wrote a log line: {:?}",
        &after_plain[before.len()..]
    );
    // A failover writes one warning with its target and class as fields.
    a.push_fault(FaultRule::next(common::status(503), 1));
    let r = gw.chat(common::user("hello"), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "t1");
    let lines = gw.lines();
    let warns: Vec<&Value> = lines.iter().filter(|l| l["level"] == "WARN").collect();
    assert_eq!(warns.len(), 1, "{lines:?}");
    let w = warns[0];
    assert_eq!(w["target"], "t0", "{w}");
    assert_eq!(w["route"], "chat", "{w}");
    assert!(w["class"].as_str().is_some_and(|c| !c.is_empty()), "{w}");
    assert_eq!(w["status"], 503, "{w}");
    assert!(w["timestamp"].is_string(), "{w}");
    // A wrong client key is refused without the key reaching the log.
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth("sk-wrong-SECRET-key")
        .json(&common::user("hello"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), 401);
    assert_no_secrets(&gw.log_text(), &gw);
}

#[tokio::test]
async fn an_incoming_traceparent_reaches_the_upstream_with_the_attempts_span_id() {
    let a = mock("a").await;
    let b = mock("b").await;
    let gw = Gateway::start("traceparent", &[&a, &b], None).await;
    let tp = format!("00-{TRACE_ID}-{PARENT}-01");
    // Failed over: each attempt sends the trace id with a span id of its own.
    a.push_fault(FaultRule::next(common::status(503), 1));
    let r = gw.chat(common::user("hello"), Some(&tp)).await;
    assert_eq!(r.status(), 200);
    let first = a.requests().last().cloned().expect("a saw the request");
    let second = b.requests().last().cloned().expect("b saw the request");
    let mut spans = Vec::new();
    for seen in [&first, &second] {
        let sent = seen.header("traceparent").expect("a traceparent upstream");
        let (trace, span, flags) = parts(sent);
        assert_eq!(trace, TRACE_ID);
        assert_ne!(
            span, PARENT,
            "the upstream's parent is the attempt, not the caller"
        );
        assert_ne!(span, "0000000000000000");
        assert_eq!(flags, "01");
        assert_eq!(seen.header("tracestate"), Some("vendor=abc"));
        spans.push(span);
    }
    assert_ne!(spans[0], spans[1], "one span id per attempt");
    // Streams carry it too.
    let r = gw.chat(common::stream_req("hello"), Some(&tp)).await;
    assert_eq!(r.status(), 200);
    let _ = r.text().await;
    let streamed = a.requests().last().cloned().expect("a saw the stream");
    assert_eq!(
        parts(streamed.header("traceparent").expect("traceparent")).0,
        TRACE_ID
    );
    // Without one, nothing is added (no exporter: no new trace).
    let r = gw.chat(common::user("hello"), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(a.requests().last().unwrap().header("traceparent"), None);
    assert_no_secrets(&gw.log_text(), &gw);
}

#[tokio::test]
async fn a_malformed_traceparent_is_ignored() {
    let a = mock("a").await;
    let gw = Gateway::start("malformed", &[&a], None).await;
    for bad in [
        "garbage",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ] {
        let r = gw.chat(common::user("hello"), Some(bad)).await;
        assert_eq!(r.status(), 200, "{bad}");
        let seen = a.requests().last().cloned().expect("a saw the request");
        assert_eq!(seen.header("traceparent"), None, "{bad}");
        assert_eq!(seen.header("tracestate"), None, "{bad}");
    }
}

#[tokio::test]
async fn debug_spans_carry_genai_attributes_and_the_trace_id() {
    let a = mock("a").await;
    let b = mock("b").await;
    let gw = Gateway::start("spans", &[&a, &b], Some("info,switchyard_gateway=debug")).await;
    let tp = format!("00-{TRACE_ID}-{PARENT}-01");
    a.push_fault(FaultRule::next(common::status(503), 1));
    let r = gw.chat(common::user("hello"), Some(&tp)).await;
    assert_eq!(r.status(), 200);
    // The request span closes as the answer leaves: give the line a moment.
    let started = Instant::now();
    let closed = |lines: &[Value], name: &str| -> Vec<Value> {
        lines
            .iter()
            .filter(|l| l["message"] == "close" && l["span"]["name"] == name)
            .cloned()
            .collect()
    };
    let lines = loop {
        let lines = gw.lines();
        if !closed(&lines, "chat").is_empty() || started.elapsed() > Duration::from_secs(5) {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let chat = closed(&lines, "chat");
    assert_eq!(chat.len(), 1, "{lines:?}");
    let span = &chat[0]["span"];
    assert_eq!(span["trace_id"], TRACE_ID, "{span}");
    assert_eq!(span["parent_span_id"], PARENT, "{span}");
    assert_eq!(span["gen_ai.operation.name"], "chat", "{span}");
    assert_eq!(span["gen_ai.request.model"], "chat", "{span}");
    assert_eq!(span["outcome"], "ok", "{span}");
    assert_eq!(span["attempts"], 2, "{span}");
    assert_eq!(span["target"], "t1", "{span}");
    assert!(span["gen_ai.usage.output_tokens"].is_number(), "{span}");
    let attempts = closed(&lines, "attempt");
    assert_eq!(attempts.len(), 2, "{lines:?}");
    let failed = &attempts[0]["span"];
    assert_eq!(failed["target"], "t0", "{failed}");
    assert_eq!(failed["gen_ai.provider.name"], "openai", "{failed}");
    assert_eq!(failed["server.address"], "127.0.0.1", "{failed}");
    assert!(failed["error.type"].is_string(), "{failed}");
    assert_eq!(failed["http.response.status_code"], 503, "{failed}");
    let ok = &attempts[1]["span"];
    assert_eq!(ok["gen_ai.response.model"], "m1", "{ok}");
    assert!(ok["time_to_headers_ms"].is_number(), "{ok}");
    // The span id sent upstream is the attempt span's.
    let sent = b.requests().last().cloned().unwrap();
    let (_, sent_span, _) = parts(sent.header("traceparent").unwrap());
    assert_eq!(ok["span_id"], sent_span.as_str(), "{ok}");
    assert_no_secrets(&gw.log_text(), &gw);
}
