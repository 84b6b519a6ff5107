//! The upstream client's pool against a raw TCP server that counts connections and can close
//! them at will: reuse, a connection the server closed while idle, a body dropped half-read.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use switchyard_gateway::client::{Client, ClientError, RequestHead};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the test server treats a connection after each answer.
#[derive(Clone, Copy)]
enum After {
    KeepAlive,
    /// Answers, then closes the socket without a `Connection: close` header, as an upstream
    /// whose keep-alive timer fired would.
    Close,
}

struct Server {
    url: String,
    accepted: Arc<AtomicUsize>,
}

async fn server(after: After, body: &'static str) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/x", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                loop {
                    // Requests here are small: one read holds head and body.
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                    if let After::Close = after {
                        let _ = sock.shutdown().await;
                        return;
                    }
                }
            });
        }
    });
    Server { url, accepted }
}

fn post(url: &str) -> http::Request<Bytes> {
    http::Request::post(url)
        .header("content-type", "application/json")
        .body(Bytes::from_static(b"{\"q\":1}"))
        .unwrap()
}

async fn read_all(client: &Arc<Client>, url: &str) -> Result<Vec<u8>, ClientError> {
    let mut response = client.send(post(url)).await?;
    assert_eq!(response.status(), 200);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn client() -> Arc<Client> {
    Arc::new(Client::new(Duration::from_millis(500)).unwrap())
}

/// Like [`server`], but every answer waits `delay` first.
async fn slow_server(delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/x", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                while let Ok(1..) = sock.read(&mut buf).await {
                    tokio::time::sleep(delay).await;
                    let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if sock.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

/// The head timer lives with the pooled connection and is moved on for each request: a
/// request that starts after the previous one's deadline has passed still gets its own
/// whole wait, and one that gets no head in time fails with `HeadTimeout`.
#[tokio::test]
async fn each_request_on_a_pooled_connection_gets_its_own_head_deadline() {
    let url = slow_server(Duration::from_millis(150)).await;
    let c = client();
    let request = post(&url);
    let head = RequestHead::new(request.method(), request.uri(), request.headers()).unwrap();
    for _ in 0..3 {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(400);
        let mut response = c
            .send_with(&head, request.body(), Some(deadline))
            .await
            .unwrap();
        assert_eq!(&response.chunk().await.unwrap().unwrap()[..], b"ok");
        // Past the deadline just used: a timer left at it would fire at once next time.
        tokio::time::sleep(Duration::from_millis(450)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
    let early = c.send_with(&head, request.body(), Some(deadline)).await;
    assert!(
        matches!(early, Err(ClientError::HeadTimeout)),
        "{:?}",
        early.err()
    );
}

#[tokio::test]
async fn a_connection_is_reused_once_its_body_was_read() {
    let s = server(After::KeepAlive, "hello").await;
    let c = client();
    for _ in 0..5 {
        assert_eq!(read_all(&c, &s.url).await.unwrap(), b"hello");
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_last_piece_of_a_sized_body_frees_the_connection() {
    let s = server(After::KeepAlive, "whole").await;
    let c = client();
    for _ in 0..3 {
        let mut response = c.send(post(&s.url)).await.unwrap();
        // One read takes the whole sized body; the caller never asks for the end.
        assert_eq!(&response.chunk().await.unwrap().unwrap()[..], b"whole");
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_replaced_without_an_error() {
    let s = server(After::Close, "bye").await;
    let c = client();
    for _ in 0..4 {
        // Give the close time to arrive, so the pooled sender is stale when checked out.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(read_all(&c, &s.url).await.unwrap(), b"bye");
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_body_dropped_half_read_does_not_poison_the_pool() {
    let s = server(After::KeepAlive, "0123456789").await;
    let c = client();
    let response = c.send(post(&s.url)).await.unwrap();
    drop(response);
    assert_eq!(read_all(&c, &s.url).await.unwrap(), b"0123456789");
    assert_eq!(read_all(&c, &s.url).await.unwrap(), b"0123456789");
    // The unread one was never pooled: one connection for it, one shared by the two others.
    assert_eq!(s.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/x", listener.local_addr().unwrap());
    drop(listener);
    let err = client().send(post(&url)).await.err().unwrap();
    assert!(matches!(err, ClientError::Connect(_)), "{err:?}");
}

#[tokio::test]
async fn only_http_and_https_are_called() {
    let err = client()
        .send(post("ftp://127.0.0.1/x"))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::Url(_)), "{err:?}");
}

/// An https server with a self-signed certificate for `localhost`, answering `secure`.
async fn tls_server() -> (
    String,
    rustls_pki_types::CertificateDer<'static>,
    Arc<AtomicUsize>,
) {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = key.cert.der().clone();
    let private = rustls_pki_types::PrivateKeyDer::Pkcs8(
        rustls_pki_types::PrivatePkcs8KeyDer::from(key.key_pair.serialize_der()),
    );
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.clone()], private)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}/v1/x",
        listener.local_addr().unwrap().port()
    );
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                let mut buf = vec![0u8; 8192];
                while let Ok(n) = tls.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    let answer = "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecure";
                    if tls.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, cert, accepted)
}

#[tokio::test]
async fn https_upstreams_are_called_over_tls_and_pooled() {
    let (url, cert, accepted) = tls_server().await;
    let c = Arc::new(Client::with_extra_roots(Duration::from_secs(2), vec![cert]).unwrap());
    for _ in 0..3 {
        assert_eq!(read_all(&c, &url).await.unwrap(), b"secure");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_connect_error() {
    let (url, _, _) = tls_server().await;
    let err = client().send(post(&url)).await.err().unwrap();
    match err {
        ClientError::Connect(m) => assert!(m.contains("TLS"), "{m}"),
        other => panic!("{other:?}"),
    }
}
