//! A client that sends its request head or body too slowly (or not at all) is cut off after
//! `server.client_read_timeout_ms`, and the gateway goes on answering everyone else.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use switchyard_sim::{Fault, FaultRule, MockConfig, MockProvider, Wire};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT_MS: u64 = 300;

async fn gateway() -> (
    MockProvider,
    switchyard_gateway::Running,
    tokio::sync::oneshot::Sender<()>,
) {
    let mock = MockProvider::start(MockConfig::new(Wire::OpenAi, "m"))
        .await
        .unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nclient_read_timeout_ms = {TIMEOUT_MS}\n[models.chat]\ntargets = [ {{ provider = \"openai\", base_url = \"{}/v1\", api_key = \"k\", model = \"m\" }} ]\n",
        mock.url()
    );
    let (gw, tx) = start_from(&text).await;
    (mock, gw, tx)
}

async fn connect(gw: &switchyard_gateway::Running) -> TcpStream {
    let addr = gw.url().trim_start_matches("http://").to_string();
    TcpStream::connect(addr).await.unwrap()
}

/// Everything the server sends until it closes the connection, and how long that took. The
/// test's own limit is far above the gateway's timeout.
async fn read_until_closed(sock: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the gateway kept the connection open");
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

async fn still_answers(gw: &switchyard_gateway::Running) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_head_that_never_ends_is_cut_off() {
    let (_mock, gw, _stop) = gateway().await;
    let mut sock = connect(&gw).await;
    sock.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let (_, took) = read_until_closed(&mut sock).await;
    assert!(
        took >= Duration::from_millis(TIMEOUT_MS / 2),
        "closed before the timeout: {took:?}"
    );
    still_answers(&gw).await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_timeout() {
    let (_mock, gw, _stop) = gateway().await;
    let mut sock = connect(&gw).await;
    let (answer, _) = read_until_closed(&mut sock).await;
    assert!(answer.is_empty(), "{answer}");
}

#[tokio::test]
async fn a_body_that_stops_half_way_gets_a_408_in_openai_shape() {
    let (mock, gw, _stop) = gateway().await;
    let mut sock = connect(&gw).await;
    sock.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"model\":",
    )
    .await
    .unwrap();
    let (answer, _) = read_until_closed(&mut sock).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert_eq!(v["error"]["code"], "request_timeout", "{v}");
    assert_eq!(mock.request_count(), 0);
    still_answers(&gw).await;
}

/// The timeout is for reading what the client sends; slow answers, whole or streamed, are the
/// upstream timeouts' business and must not be cut by it.
#[tokio::test]
async fn answers_slower_than_the_timeout_still_arrive() {
    let (mock, gw, _stop) = gateway().await;
    mock.push_fault(FaultRule::next(Fault::Delay { ms: TIMEOUT_MS * 2 }, 1));
    still_answers(&gw).await;

    mock.push_fault(FaultRule::next(
        Fault::SlowStream {
            chunk_delay_ms: TIMEOUT_MS / 2,
        },
        1,
    ));
    let started = Instant::now();
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .json(&stream_req("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(
        started.elapsed() > Duration::from_millis(TIMEOUT_MS * 2),
        "the stream was not slower than the timeout, so this proves nothing: {:?}",
        started.elapsed()
    );
}
