//! No key — upstream, client or admin, right or wrong — on any surface the gateway has: the
//! log (text and JSON, with debug spans on), error bodies, `/health`, `/metrics` on both
//! listeners, `/v1/models`, and every admin endpoint. One real binary, real traffic (answers,
//! a failover, a stream, refusals), then every surface read back and searched.
#![cfg(unix)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_sim::{Fault, FaultRule, MockConfig, MockProvider, Wire};

const UPSTREAM_KEY: &str = "sk-upstream-SECRET-7f3a9c2e";
const ADMIN_KEY: &str = "sy-admin-SECRET-0d9e8f7a6b";
const WRONG_KEY: &str = "sy-wrong-SECRET-5c4b3a29";

struct Running {
    child: Child,
    dir: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn wait_for(url: &str) {
    let started = Instant::now();
    while reqwest::get(url).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{url} never answered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn no_key_reaches_any_surface() {
    for format in ["text", "json"] {
        every_surface(format).await;
    }
}

async fn every_surface(format: &str) {
    let primary = MockProvider::start(MockConfig::new(Wire::OpenAi, "primary"))
        .await
        .unwrap();
    let fallback = MockProvider::start(MockConfig::new(Wire::Anthropic, "fallback"))
        .await
        .unwrap();
    let (client_key, client_hash) = switchyard_gateway::keys::generate().expect("a key");
    let dir = std::env::temp_dir().join(format!(
        "switchyard-secrets-{format}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (port, admin_port) = (free_port(), free_port());
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nworkers = 1\n\n\
         [admin]\nlisten = \"127.0.0.1:{admin_port}\"\nkey_hash = \"{}\"\n\n\
         [[keys]]\nname = \"team\"\nhash = \"{client_hash}\"\n\n\
         [models.chat]\ntargets = [\n\
         {{ name = \"primary\", provider = \"openai\", base_url = \"{}/v1\", api_key = \"{UPSTREAM_KEY}\", model = \"p\", price = {{ input_per_mtok = 1.0, output_per_mtok = 1.0 }} }},\n\
         {{ name = \"fallback\", provider = \"anthropic\", base_url = \"{}\", api_key = \"{UPSTREAM_KEY}\", model = \"f\" }},\n]\n",
        switchyard_gateway::keys::hash_line(ADMIN_KEY),
        primary.url(),
        fallback.url(),
    );
    let config_path = dir.join("gateway.toml");
    std::fs::write(&config_path, config).unwrap();
    let log_path = dir.join("log");
    let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--log-format", format, "--config"])
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(&log_path).unwrap()))
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("stderr")).unwrap(),
        ))
        // Spans on too: everything the gateway could write about a request.
        .env("RUST_LOG", "debug")
        .spawn()
        .expect("the binary starts");
    let running = Running {
        child,
        dir: dir.clone(),
    };
    let url = format!("http://127.0.0.1:{port}");
    let admin = format!("http://127.0.0.1:{admin_port}");
    wait_for(&format!("{url}/health")).await;
    let client = reqwest::Client::new();
    let chat = |key: Option<&str>, body: serde_json::Value| {
        let mut req = client
            .post(format!("{url}/v1/chat/completions"))
            .json(&body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        req.send()
    };
    let plain = json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]});
    let streamed =
        json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let mut seen = Vec::new();
    // Answers, a failover, a stream, an upstream 401 (the provider's error text), refusals.
    for body in [&plain, &streamed] {
        let r = chat(Some(&client_key), body.clone()).await.unwrap();
        assert_eq!(r.status(), 200);
        seen.push(r.text().await.unwrap());
    }
    primary.push_fault(FaultRule::next(
        Fault::Status {
            status: 503,
            retry_after_s: None,
            code: None,
        },
        1,
    ));
    fallback.push_fault(FaultRule::next(
        Fault::Status {
            status: 401,
            retry_after_s: None,
            code: None,
        },
        1,
    ));
    let r = chat(Some(&client_key), plain.clone()).await.unwrap();
    assert!(!r.status().is_success(), "the fallback's 401 ends it");
    seen.push(r.text().await.unwrap());
    for key in [None, Some(WRONG_KEY), Some(UPSTREAM_KEY), Some(ADMIN_KEY)] {
        let r = chat(key, plain.clone()).await.unwrap();
        assert_eq!(r.status(), 401, "{key:?}");
        seen.push(r.text().await.unwrap());
    }
    // Every read-only surface, on both listeners.
    for path in ["/health", "/metrics"] {
        seen.push(
            client
                .get(format!("{url}{path}"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    seen.push(
        client
            .get(format!("{url}/v1/models"))
            .bearer_auth(&client_key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    for path in ["/admin/targets", "/admin/config", "/admin/keys", "/metrics"] {
        let r = client
            .get(format!("{admin}{path}"))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        seen.push(r.text().await.unwrap());
    }
    let r = client
        .get(format!("{admin}/admin/config"))
        .bearer_auth(WRONG_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    seen.push(r.text().await.unwrap());
    // Let the log catch up with the last requests.
    tokio::time::sleep(Duration::from_millis(200)).await;
    seen.push(std::fs::read_to_string(&log_path).unwrap());
    seen.push(std::fs::read_to_string(dir.join("stderr")).unwrap());
    let everything = seen.join("\n");
    assert!(
        everything.contains("primary") && everything.contains("switchyard_requests_total"),
        "the surfaces were read"
    );
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("attempt failed"),
        "the failover was logged: {log}"
    );
    for secret in [UPSTREAM_KEY, client_key.as_str(), ADMIN_KEY, WRONG_KEY] {
        // Any recognisable part of it, not only the whole.
        let part = &secret[..secret.len().min(16)];
        assert!(
            !everything.contains(part),
            "{format}: a key ({part}…) reached a surface"
        );
    }
    drop(running);
}
