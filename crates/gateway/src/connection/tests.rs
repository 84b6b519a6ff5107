//! The connection's framing, fed through an in-memory pipe in pieces of every size: what
//! the handler sees of each request, and the exact bytes the client gets back.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

use super::{serve, Incoming, Limits};
use crate::body::{self, Response, ResponseBody};

const LIMITS: Limits = Limits {
    max_body: 1000,
    read_timeout: Duration::from_secs(5),
};

/// Answers `/stream` with a three-piece stream, anything else with what it was asked.
async fn echo(req: Incoming) -> Response {
    if req.path() == "/stream" {
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            for piece in ["data: a\n\n", "", "data: bb\n\n"] {
                tx.send(Bytes::from_static(piece.as_bytes())).await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        return Response::new(StatusCode::OK, body::EVENT_STREAM, ResponseBody::Stream(rx));
    }
    let text = format!(
        "{} {} {}",
        req.method,
        req.path(),
        String::from_utf8_lossy(&req.body)
    );
    body::json(StatusCode::OK, text)
}

/// Starts a connection with `limits`; the returned end is the client's.
fn start(limits: Limits) -> (DuplexStream, tokio::task::JoinHandle<()>) {
    let (client, server) = tokio::io::duplex(1 << 20);
    let task = tokio::spawn(serve(server, limits, std::future::pending(), echo));
    (client, task)
}

/// Sends `wire` in pieces of `step` bytes, then closes the sending side, and returns all the
/// connection wrote until it closed.
async fn exchange_with(limits: Limits, wire: &[u8], step: usize) -> String {
    let (mut client, task) = start(limits);
    for piece in wire.chunks(step) {
        client.write_all(piece).await.unwrap();
        tokio::task::yield_now().await;
    }
    client.shutdown().await.unwrap();
    let mut out = Vec::new();
    client.read_to_end(&mut out).await.unwrap();
    task.await.unwrap();
    String::from_utf8(out).unwrap()
}

async fn exchange(wire: &[u8], step: usize) -> String {
    exchange_with(LIMITS, wire, step).await
}

/// Every way of cutting `wire` gives the same transcript, which is returned.
async fn exchange_any_split(wire: &[u8]) -> String {
    let whole = exchange(wire, wire.len()).await;
    for step in [1, 2, 3, 7, 64] {
        assert_eq!(
            scrub_date(&exchange(wire, step).await),
            scrub_date(&whole),
            "step {step}"
        );
    }
    whole
}

/// Transcripts taken a second apart differ only in their dates.
fn scrub_date(transcript: &str) -> String {
    transcript
        .lines()
        .map(|l| {
            if l.starts_with("date: ") {
                "date: *"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The status codes of the responses in a transcript, in order.
fn statuses(transcript: &str) -> Vec<u16> {
    transcript
        .match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| transcript[i + 9..i + 12].parse().ok())
        .collect()
}

fn body_of(transcript: &str) -> &str {
    &transcript[transcript.find("\r\n\r\n").unwrap() + 4..]
}

#[tokio::test]
async fn a_sized_request_is_read_whole_and_answered_with_a_length_and_a_date() {
    let wire = b"POST /v1/x?debug=1 HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello";
    let out = exchange_any_split(wire).await;
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(
        out.contains("\r\ncontent-type: application/json\r\n"),
        "{out}"
    );
    assert!(out.contains("\r\ncontent-length: 16\r\n"), "{out}");
    assert!(out.contains("\r\ndate: "), "{out}");
    assert!(out.contains(" GMT\r\n"), "{out}");
    assert!(!out.contains("connection:"), "{out}");
    assert_eq!(body_of(&out), "POST /v1/x hello");
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let wire = b"POST /a HTTP/1.1\r\ncontent-length: 1\r\n\r\n1GET /b HTTP/1.1\r\n\r\nPOST /c HTTP/1.1\r\nContent-Length: 2\r\n\r\n33";
    let out = exchange_any_split(wire).await;
    assert_eq!(statuses(&out), [200, 200, 200], "{out}");
    let a = out.find("POST /a 1").unwrap();
    let b = out.find("GET /b ").unwrap();
    let c = out.find("POST /c 33").unwrap();
    assert!(a < b && b < c, "{out}");
}

#[tokio::test]
async fn chunked_bodies_with_extensions_and_trailers_are_decoded() {
    let wire = b"POST /c HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\ntrailer: x\r\n\r\nGET /next HTTP/1.1\r\n\r\n";
    let out = exchange_any_split(wire).await;
    assert_eq!(statuses(&out), [200, 200], "{out}");
    assert!(out.contains("POST /c abc0123456789HTTP"), "{out}");
    assert!(out.contains("GET /next "), "{out}");
}

#[tokio::test]
async fn ambiguous_framing_is_refused_and_the_connection_closed() {
    let cases: [(&[u8], u16); 9] = [
        (b"POST /a HTTP/1.1\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400),
        (b"POST /a HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST /a HTTP/1.1\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n", 501),
        (b"POST /a HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST /a HTTP/1.1\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd", 400),
        (b"POST /a HTTP/1.1\r\ncontent-length: +3\r\n\r\nabc", 400),
        (b"POST /a HTTP/1.1\r\ncontent-length: 0x3\r\n\r\nabc", 400),
        (b"POST /a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n", 400),
        (b"POST /a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", 400),
    ];
    for (wire, status) in cases {
        // A second request behind the refused one must not be answered.
        let mut wire = wire.to_vec();
        wire.extend_from_slice(b"GET /smuggled HTTP/1.1\r\n\r\n");
        let out = exchange(&wire, wire.len()).await;
        assert_eq!(statuses(&out), [status], "{out}");
        assert!(out.contains("\r\nconnection: close\r\n"), "{out}");
        assert!(!out.contains("smuggled"), "{out}");
        let error: serde_json::Value = serde_json::from_str(body_of(&out)).unwrap();
        assert_eq!(error["error"]["type"], "invalid_request_error", "{out}");
    }
}

#[tokio::test]
async fn a_repeated_equal_content_length_is_accepted() {
    let out = exchange(
        b"POST /a HTTP/1.1\r\ncontent-length: 2\r\ncontent-length: 2, 2\r\n\r\nok",
        100,
    )
    .await;
    assert_eq!(statuses(&out), [200], "{out}");
    assert_eq!(body_of(&out), "POST /a ok");
}

#[tokio::test]
async fn heads_that_are_not_http_are_refused() {
    for wire in [
        &b"POST /a HTTP/1.1\r\nbad header\r\n\r\n"[..],
        b"POST /a HTTP/1.1\r\nname : v\r\n\r\n",
        b"POST /a HTTP/1.1\r\nname: v\r\n folded\r\n\r\n",
        b"POST /a HTTP/2.0\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    ] {
        let out = exchange(wire, 100).await;
        assert_eq!(statuses(&out), [400], "{wire:?}: {out}");
    }
}

#[tokio::test]
async fn oversized_heads_and_bodies_are_refused_with_their_own_statuses() {
    let mut long = b"GET /a HTTP/1.1\r\nx: ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 70 << 10));
    let out = exchange(&long, 4096).await;
    assert_eq!(statuses(&out), [431], "{out}");

    let mut many = b"GET /a HTTP/1.1\r\n".to_vec();
    for i in 0..100 {
        many.extend_from_slice(format!("x{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let out = exchange(&many, many.len()).await;
    assert_eq!(statuses(&out), [431], "{out}");

    // Refused from the declared length, before the body is read.
    let out = exchange(b"POST /a HTTP/1.1\r\ncontent-length: 1001\r\n\r\n", 100).await;
    assert_eq!(statuses(&out), [413], "{out}");
    assert!(out.contains("request_too_large"), "{out}");

    let mut chunked = b"POST /a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        chunked.extend_from_slice(b"190\r\n");
        chunked.extend(std::iter::repeat_n(b'z', 400));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let out = exchange(&chunked, 100).await;
    assert_eq!(statuses(&out), [413], "{out}");
    // ... and when the whole oversized body arrives in one read.
    let out = exchange(&chunked, chunked.len()).await;
    assert_eq!(statuses(&out), [413], "{out}");

    // Exactly the limit is fine.
    let mut at_limit = b"POST /a HTTP/1.1\r\ncontent-length: 1000\r\n\r\n".to_vec();
    at_limit.extend(std::iter::repeat_n(b'k', 1000));
    let out = exchange(&at_limit, 333).await;
    assert_eq!(statuses(&out), [200], "{out}");
}

#[tokio::test]
async fn expect_continue_gets_an_interim_answer_before_the_body() {
    let (mut client, _task) = start(LIMITS);
    client
        .write_all(b"POST /a HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\n")
        .await
        .unwrap();
    let mut interim = [0u8; 25];
    client.read_exact(&mut interim).await.unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    client.write_all(b"hi").await.unwrap();
    client.shutdown().await.unwrap();
    let mut rest = String::new();
    client.read_to_string(&mut rest).await.unwrap();
    assert_eq!(statuses(&rest), [200], "{rest}");
    assert_eq!(body_of(&rest), "POST /a hi");

    let out = exchange(b"POST /a HTTP/1.1\r\nexpect: teapot\r\n\r\n", 100).await;
    assert_eq!(statuses(&out), [417], "{out}");
}

#[tokio::test]
async fn keep_alive_follows_the_version_and_the_connection_field() {
    // HTTP/1.1 closes only when asked to.
    let out = exchange(
        b"GET /1 HTTP/1.1\r\nconnection: close\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",
        1000,
    )
    .await;
    assert_eq!(statuses(&out), [200], "{out}");
    assert!(out.contains("\r\nconnection: close\r\n"), "{out}");

    // HTTP/1.0 closes unless asked to keep the connection.
    let out = exchange(b"GET /1 HTTP/1.0\r\n\r\nGET /2 HTTP/1.0\r\n\r\n", 1000).await;
    assert_eq!(statuses(&out), [200], "{out}");
    assert!(out.contains("\r\nconnection: close\r\n"), "{out}");
    let out = exchange(
        b"GET /1 HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
        1000,
    )
    .await;
    assert_eq!(statuses(&out), [200, 200], "{out}");
    assert!(out.contains("\r\nconnection: keep-alive\r\n"), "{out}");
}

#[tokio::test]
async fn streams_are_chunked_for_http11_and_close_delimited_for_http10() {
    let out = exchange_any_split(b"GET /stream HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n").await;
    assert!(out.contains("\r\ntransfer-encoding: chunked\r\n"), "{out}");
    // The empty piece is skipped: an empty chunk would end the body.
    assert!(
        out.contains("\r\n\r\n9\r\ndata: a\n\n\r\na\r\ndata: bb\n\n\r\n0\r\n\r\nHTTP/1.1 200"),
        "{out}"
    );
    assert!(out.contains("GET /after "), "{out}");

    let out = exchange(
        b"GET /stream HTTP/1.0\r\nconnection: keep-alive\r\n\r\n",
        100,
    )
    .await;
    assert!(!out.contains("transfer-encoding"), "{out}");
    assert!(out.contains("\r\nconnection: close\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\ndata: a\n\ndata: bb\n\n"), "{out}");
}

#[tokio::test]
async fn head_requests_get_the_length_without_the_body() {
    // The echo of `HEAD /h ` is 8 bytes, of `GET /h ` 7.
    let out = exchange(b"HEAD /h HTTP/1.1\r\n\r\nGET /h HTTP/1.1\r\n\r\n", 100).await;
    assert_eq!(statuses(&out), [200, 200], "{out}");
    let second = out.rfind("HTTP/1.1 200").unwrap();
    let first = &out[..second];
    assert!(first.contains("\r\ncontent-length: 8\r\n"), "{out}");
    assert!(first.ends_with(" GMT\r\n\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\nGET /h "), "{out}");
}

#[tokio::test]
async fn absolute_form_targets_route_by_their_path() {
    let out = exchange(
        b"GET http://gateway.example:8080/v1/models?x=1 HTTP/1.1\r\n\r\nGET http://gateway.example HTTP/1.1\r\n\r\n",
        100,
    )
    .await;
    assert!(out.contains("GET /v1/models "), "{out}");
    assert!(out.ends_with("\r\n\r\nGET  "), "{out}");
}

#[tokio::test(start_paused = true)]
async fn slow_or_silent_clients_are_cut_off() {
    let limits = Limits {
        max_body: 1000,
        read_timeout: Duration::from_millis(300),
    };
    // Silent from the start (or between requests): closed without a word.
    let (mut client, task) = start(limits);
    let mut out = Vec::new();
    client.read_to_end(&mut out).await.unwrap();
    task.await.unwrap();
    assert!(out.is_empty());

    // Half a head, then nothing: 408.
    let (mut client, task) = start(limits);
    client
        .write_all(b"POST /a HTTP/1.1\r\nhost:")
        .await
        .unwrap();
    let mut out = String::new();
    client.read_to_string(&mut out).await.unwrap();
    task.await.unwrap();
    assert_eq!(statuses(&out), [408], "{out}");
    assert!(
        out.contains("request head did not arrive within 300 ms"),
        "{out}"
    );

    // Half a body, then nothing: 408.
    let (mut client, task) = start(limits);
    client
        .write_all(b"POST /a HTTP/1.1\r\ncontent-length: 10\r\n\r\nabc")
        .await
        .unwrap();
    let mut out = String::new();
    client.read_to_string(&mut out).await.unwrap();
    task.await.unwrap();
    assert_eq!(statuses(&out), [408], "{out}");
    assert!(
        out.contains("request body did not arrive within 300 ms"),
        "{out}"
    );
}

/// The head timer is moved on for each request, not set once for the connection: requests
/// that come closer together than the timeout keep a connection open for longer than it.
#[tokio::test(start_paused = true)]
async fn each_request_gets_the_whole_timeout() {
    let limits = Limits {
        max_body: 1000,
        read_timeout: Duration::from_millis(300),
    };
    let (mut client, task) = start(limits);
    for answered in 0..5 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        client.write_all(b"GET /a HTTP/1.1\r\n\r\n").await.unwrap();
        let mut got = Vec::new();
        while !String::from_utf8_lossy(&got).ends_with("GET /a ") {
            let mut piece = [0u8; 512];
            let n = client.read(&mut piece).await.unwrap();
            assert!(n > 0, "closed after {answered} answers");
            got.extend_from_slice(&piece[..n]);
        }
    }
    // A full second of requests so far; now silence closes it, without a word.
    let started = tokio::time::Instant::now();
    let mut out = Vec::new();
    client.read_to_end(&mut out).await.unwrap();
    task.await.unwrap();
    assert!(out.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn a_body_cut_by_the_client_is_not_handled() {
    let out = exchange(b"POST /a HTTP/1.1\r\ncontent-length: 10\r\n\r\nabc", 100).await;
    assert_eq!(statuses(&out), [400], "{out}");
    assert!(!out.contains("POST /a"), "{out}");
}

#[tokio::test]
async fn a_stop_closes_idle_connections_and_ends_busy_ones_after_their_answer() {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (mut client, server) = tokio::io::duplex(1 << 16);
    let stop = async move {
        let _ = stop_rx.await;
    };
    let task = tokio::spawn(serve(server, LIMITS, stop, |req: Incoming| async move {
        // Slow enough for the stop to arrive while the request is being answered.
        tokio::time::sleep(Duration::from_millis(50)).await;
        echo(req).await
    }));
    client.write_all(b"GET /1 HTTP/1.1\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    stop_tx.send(()).unwrap();
    let mut out = String::new();
    client.read_to_string(&mut out).await.unwrap();
    task.await.unwrap();
    assert_eq!(statuses(&out), [200], "{out}");
    assert!(out.contains("\r\nconnection: close\r\n"), "{out}");
}

#[test]
fn the_path_is_cut_out_of_every_target_form() {
    use super::path_of;
    for (target, path) in [
        ("/v1/chat/completions", "/v1/chat/completions"),
        ("/v1/models?limit=1", "/v1/models"),
        ("/a#frag", "/a"),
        ("/é/x?q", "/é/x"),
        ("/a?b://c/d", "/a"),
        ("http://gw:8080/v1/models?x", "/v1/models"),
        ("https://gw/health", "/health"),
        ("http://gw", ""),
        ("http://gw?x", ""),
        ("*", "*"),
    ] {
        assert_eq!(path_of(target), path, "{target}");
    }
}
