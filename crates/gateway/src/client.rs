//! The HTTP/1.1 client the gateway calls upstreams with: hyper's connection API, a small
//! keep-alive pool, TCP_NODELAY, rustls for `https`.
//!
//! Each worker thread owns one (see [`crate::upstream::Upstreams`]), and a connection's task
//! is spawned on the thread that opened it, so the client side of a request never leaves the
//! thread that serves it. A general-purpose client (reqwest over hyper-util's pool) showed in
//! the profile with URL re-parsing (IDNA included), per-request proxy matching, header-map
//! merging and a pool built for sharing across threads. This one does what the gateway needs and nothing else: no redirects (they would resend our
//! key to another host), no proxies, no cookies, no decompression.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Why a call failed, in the terms failover cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// No connection: refused, unreachable, DNS, TLS handshake.
    Connect(String),
    /// The connection did not open within the connect timeout.
    ConnectTimeout,
    /// The request could not be sent or no response head came back (reset, closed).
    Send(String),
    /// The response body broke off.
    Body(String),
    /// A URL the client cannot call (not http or https, no host).
    Url(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Connect(e) => write!(f, "connection failed: {e}"),
            ClientError::ConnectTimeout => write!(f, "connect timed out"),
            ClientError::Send(e) => write!(f, "connection failed: {e}"),
            ClientError::Body(e) => write!(f, "response broken: {e}"),
            ClientError::Url(e) => write!(f, "invalid upstream URL: {e}"),
        }
    }
}

/// Where a pooled connection goes: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Origin {
    https: bool,
    host: String,
    port: u16,
}

impl Origin {
    fn of(uri: &Uri) -> Result<Origin, ClientError> {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            other => {
                return Err(ClientError::Url(format!(
                    "scheme {} is not http or https",
                    other.unwrap_or("(none)")
                )))
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| ClientError::Url("no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(Origin { https, host, port })
    }
}

struct Idle {
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
}

/// A keep-alive HTTP/1.1 client. Cheap to share within a worker; see the module docs.
pub struct Client {
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle_per_origin: usize,
    tls: tokio_rustls::TlsConnector,
    // Only the owning worker thread touches it, so the lock is never contended; it is here
    // because handler futures must be `Send`.
    idle: Mutex<HashMap<Origin, Vec<Idle>>>,
}

impl Client {
    pub fn new(connect_timeout: Duration) -> Result<Client, String> {
        Client::with_extra_roots(connect_timeout, Vec::new())
    }

    /// Like [`Client::new`], also trusting `extra_roots` (DER certificates) beside the
    /// bundled Mozilla set: a private CA, or a test's self-signed certificate.
    pub fn with_extra_roots(
        connect_timeout: Duration,
        extra_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
    ) -> Result<Client, String> {
        Ok(Client {
            connect_timeout,
            idle_timeout: Duration::from_secs(90),
            max_idle_per_origin: 512,
            tls: tls_connector(extra_roots)?,
            idle: Mutex::new(HashMap::new()),
        })
    }

    /// Sends `request` (absolute URI) and waits for the response head. The body is read
    /// through the returned [`Response`]; reading it to the end hands the connection back to
    /// the pool, dropping it early closes the connection.
    pub async fn send(self: &Arc<Self>, request: Request<Bytes>) -> Result<Response, ClientError> {
        let origin = Origin::of(request.uri())?;
        let (mut parts, body) = request.into_parts();
        // Origin-form on the wire; the Host header from the URI, as HTTP/1.1 requires.
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse::<Uri>()
            .map_err(|e| ClientError::Url(e.to_string()))?;
        if !parts.headers.contains_key(http::header::HOST) {
            if let Some(authority) = parts.uri.authority() {
                if let Ok(v) = http::HeaderValue::from_str(authority.as_str()) {
                    parts.headers.insert(http::header::HOST, v);
                }
            }
        }
        parts.uri = path;
        let mut request = Request::from_parts(parts, Full::new(body));

        // A pooled connection the server closed meanwhile fails without sending anything;
        // such a request goes again on a fresh connection.
        while let Some(mut sender) = self.checkout(&origin) {
            // Checked in once its last response was read whole, the connection is idle or
            // about to be (its task may not have run since); `ready` tells, or says closed.
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.wrap(response, origin, sender)),
                Err(mut e) => match e.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(ClientError::Send(source_text(e.error()))),
                },
            }
        }
        // Boxed: connecting (TLS included) is a large future and a rare one; inline, its size
        // would be copied with every request's future.
        let mut sender = Box::pin(self.connect(&origin)).await?;
        match sender.send_request(request).await {
            Ok(response) => Ok(self.wrap(response, origin, sender)),
            Err(e) => Err(ClientError::Send(source_text(&e))),
        }
    }

    fn wrap(
        self: &Arc<Self>,
        response: http::Response<Incoming>,
        origin: Origin,
        sender: SendRequest<Full<Bytes>>,
    ) -> Response {
        let (head, body) = response.into_parts();
        Response {
            status: head.status,
            headers: head.headers,
            body,
            give_back: Some((Arc::clone(self), origin, sender)),
        }
    }

    /// An idle connection that is not known to be closed, newest first (the likeliest to be
    /// alive); stale ones are dropped on the way.
    fn checkout(&self, origin: &Origin) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().ok()?;
        let list = idle.get_mut(origin)?;
        let now = Instant::now();
        while let Some(entry) = list.pop() {
            if !entry.sender.is_closed() && now.duration_since(entry.since) < self.idle_timeout {
                return Some(entry.sender);
            }
        }
        None
    }

    fn checkin(&self, origin: Origin, sender: SendRequest<Full<Bytes>>) {
        if let Ok(mut idle) = self.idle.lock() {
            let list = idle.entry(origin).or_default();
            if list.len() < self.max_idle_per_origin {
                list.push(Idle {
                    sender,
                    since: Instant::now(),
                });
            }
        }
    }

    async fn connect(&self, origin: &Origin) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let open = async {
            let tcp = TcpStream::connect((origin.host.as_str(), origin.port))
                .await
                .map_err(|e| ClientError::Connect(e.to_string()))?;
            let _ = tcp.set_nodelay(true);
            if origin.https {
                let name = rustls_pki_types::ServerName::try_from(origin.host.clone())
                    .map_err(|e| ClientError::Url(format!("{}: {e}", origin.host)))?;
                let tls = self
                    .tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| ClientError::Connect(format!("TLS: {e}")))?;
                handshake(TokioIo::new(tls)).await
            } else {
                handshake(TokioIo::new(tcp)).await
            }
        };
        match tokio::time::timeout(self.connect_timeout, open).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::ConnectTimeout),
        }
    }
}

async fn handshake<T>(io: TokioIo<T>) -> Result<SendRequest<Full<Bytes>>, ClientError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| ClientError::Connect(source_text(&e)))?;
    // Runs on the calling worker's runtime, next to the requests that use it. Ends when the
    // server closes the connection or the last sender is dropped.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

fn tls_connector(
    extra_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
) -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in extra_roots {
        roots
            .add(cert)
            .map_err(|e| format!("cannot trust the extra root certificate: {e}"))?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("cannot set up TLS: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// The innermost cause: hyper's outer messages ("error sending request") say little.
fn source_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    text
}

/// A response whose head has arrived; the body is read with [`Response::chunk`].
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Incoming,
    give_back: Option<(Arc<Client>, Origin, SendRequest<Full<Bytes>>)>,
}

impl Response {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    pub fn content_length(&self) -> Option<u64> {
        hyper::body::Body::size_hint(&self.body).exact()
    }

    fn give_back_connection(&mut self) {
        if let Some((client, origin, sender)) = self.give_back.take() {
            client.checkin(origin, sender);
        }
    }

    /// The next piece of the body; `None` at its end, which also returns the connection to
    /// the pool.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        loop {
            match self.body.frame().await {
                None => {
                    self.give_back_connection();
                    return Ok(None);
                }
                Some(Err(e)) => {
                    self.give_back = None;
                    return Err(ClientError::Body(source_text(&e)));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if hyper::body::Body::is_end_stream(&self.body) {
                            // The last piece of a sized body: the connection is free now, and
                            // a caller that stops reading here must not cost it.
                            self.give_back_connection();
                        }
                        if !data.is_empty() {
                            return Ok(Some(data));
                        }
                    }
                    // Trailers and empty frames carry nothing for us.
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_default_their_ports() {
        let o = Origin::of(&"https://api.example.com/v1/x".parse().unwrap()).unwrap();
        assert_eq!(
            (o.https, o.host.as_str(), o.port),
            (true, "api.example.com", 443)
        );
        let o = Origin::of(&"http://[::1]:9000/v1".parse().unwrap()).unwrap();
        assert_eq!((o.https, o.host.as_str(), o.port), (false, "::1", 9000));
        assert!(matches!(
            Origin::of(&"ftp://x/".parse().unwrap()),
            Err(ClientError::Url(_))
        ));
    }

    #[test]
    fn the_tls_connector_builds_with_the_bundled_roots() {
        assert!(tls_connector(Vec::new()).is_ok());
    }
}
