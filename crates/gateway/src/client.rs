//! The HTTP/1.1 client the gateway calls upstreams with: a keep-alive pool, TCP_NODELAY,
//! rustls for `https`, and the HTTP/1.1 framing done here (heads parsed with `httparse`).
//!
//! Each worker thread owns one (see [`crate::upstream::Upstreams`]). A request's connection is
//! written and read by the task that serves the request, and a stream's by the task that
//! relays it: there is no connection task to hand requests to and wake, which a general
//! client (hyper's, behind reqwest or on its own) needs and which showed in the profile as a
//! task switch, a channel send and a oneshot per request, on top of URL re-parsing and header
//! map merging. This one does what the gateway needs and nothing else: no redirects (they
//! would resend our key to another host), no proxies, no cookies, no decompression, no
//! HTTP/2.
//!
//! What keeps a pooled connection safe to reuse:
//! - It is pooled only after its response was read to the end of its framing, with no byte
//!   left over, and only when the server did not ask to close it.
//! - At checkout it is polled once for reading with a no-op waker. A socket the server closed
//!   (or wrote to unasked) reports it there, and the connection is dropped instead of used.
//!   An idle socket that reported nothing costs no system call.
//! - A request whose write fails on a reused connection is sent again on a fresh one: the
//!   server cannot have read it.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, Request, StatusCode, Uri};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::chunked;

/// Bytes asked of the socket per read.
const READ_SIZE: usize = 8 << 10;
/// Longest response head accepted.
const MAX_HEAD: usize = 64 << 10;
/// Most header fields in a response head.
const MAX_HEADERS: usize = 96;
/// Request bodies up to this size are copied behind the head and leave in one write.
const COALESCE_BODY: usize = 16 << 10;

/// Why a call failed, in the terms failover cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// No connection: refused, unreachable, DNS, TLS handshake.
    Connect(String),
    /// The connection did not open within the connect timeout.
    ConnectTimeout,
    /// No response head before the caller's deadline (connecting included).
    HeadTimeout,
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
            ClientError::HeadTimeout => write!(f, "no response head before the deadline"),
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

    /// This origin's number: the same for equal origins, for the life of the process. Pools
    /// are indexed by it, so that checking a connection out or in hashes and clones nothing.
    fn id(&self) -> OriginId {
        static KNOWN: Mutex<Vec<Origin>> = Mutex::new(Vec::new());
        let mut known = KNOWN
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let index = known.iter().position(|o| o == self).unwrap_or_else(|| {
            known.push(self.clone());
            known.len() - 1
        });
        OriginId(index)
    }
}

/// See [`Origin::id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OriginId(usize);

struct Idle {
    conn: Conn,
    since: Instant,
}

/// A keep-alive HTTP/1.1 client. Cheap to share within a worker; see the module docs.
pub struct Client {
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle_per_origin: usize,
    tls: tokio_rustls::TlsConnector,
    // Only the owning worker thread touches it, so the lock is never contended; it is here
    // because handler futures must be `Send`. Indexed by `OriginId`.
    idle: Mutex<Vec<Vec<Idle>>>,
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
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends `request` (absolute URI) and waits for the response head. The body is read
    /// through the returned [`Response`]; reading it to the end hands the connection back to
    /// the pool, dropping it early closes the connection.
    pub async fn send(self: &Arc<Self>, request: Request<Bytes>) -> Result<Response, ClientError> {
        let head = RequestHead::new(request.method(), request.uri(), request.headers())?;
        self.send_with(&head, request.body(), None).await
    }

    /// [`Client::send`] with a head made beforehand: a gateway target's URL and headers do
    /// not change between requests, so neither does their encoding. With a `deadline`, a
    /// response head that has not come by then (connecting included) is
    /// [`ClientError::HeadTimeout`].
    pub async fn send_with(
        self: &Arc<Self>,
        head: &RequestHead,
        body: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Response, ClientError> {
        self.send_with_extra(head, &[], body, deadline).await
    }

    /// [`Client::send_with`] with header lines of this request only (`name: value\r\n`
    /// each, e.g. a `traceparent`) after the pre-encoded ones. `extra` must be well formed:
    /// it goes on the wire as it is.
    pub async fn send_with_extra(
        self: &Arc<Self>,
        head: &RequestHead,
        extra: &[u8],
        body: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Response, ClientError> {
        let (wire_head, body) = head.encode(extra, body);
        while let Some(mut conn) = self.checkout(head.origin_id) {
            match conn.exchange(&wire_head, body, deadline).await {
                Ok(response_head) => return Ok(self.respond(conn, response_head, head.origin_id)),
                // The server closed it as we took it; it has not seen this request.
                Err(Exchange::Unsent(_)) => continue,
                Err(Exchange::Failed(e)) => return Err(e),
            }
        }
        // Boxed: connecting (TLS included) is a large future and a rare one; inline, its size
        // would be copied with every request's future.
        let connect = Box::pin(self.connect(&head.origin));
        let mut conn = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, connect)
                .await
                .map_err(|_| ClientError::HeadTimeout)??,
            None => connect.await?,
        };
        match conn.exchange(&wire_head, body, deadline).await {
            Ok(response_head) => Ok(self.respond(conn, response_head, head.origin_id)),
            Err(Exchange::Unsent(e)) => Err(ClientError::Send(e.to_string())),
            Err(Exchange::Failed(e)) => Err(e),
        }
    }

    fn respond(self: &Arc<Self>, conn: Conn, head: Head, origin: OriginId) -> Response {
        let content_length = match head.framing {
            Framing::Length(n) => Some(n),
            _ => None,
        };
        let mut response = Response {
            status: head.status,
            head: head.raw,
            content_length,
            framing: head.framing,
            conn: Some(conn),
            pool: head.reusable.then(|| (Arc::clone(self), origin)),
        };
        if matches!(response.framing, Framing::Length(0) | Framing::Done) {
            response.framing = Framing::Done;
            response.release();
        }
        response
    }

    /// An idle connection that still looks open, newest first (the likeliest to be alive);
    /// stale ones are dropped on the way.
    fn checkout(&self, origin: OriginId) -> Option<Conn> {
        let mut idle = self.idle.lock().ok()?;
        let list = idle.get_mut(origin.0)?;
        let now = Instant::now();
        while let Some(mut entry) = list.pop() {
            if now.duration_since(entry.since) < self.idle_timeout && entry.conn.looks_open() {
                return Some(entry.conn);
            }
        }
        None
    }

    fn checkin(&self, origin: OriginId, conn: Conn) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() <= origin.0 {
                idle.resize_with(origin.0 + 1, Vec::new);
            }
            let list = &mut idle[origin.0];
            if list.len() < self.max_idle_per_origin {
                list.push(Idle {
                    conn,
                    since: Instant::now(),
                });
            }
        }
    }

    async fn connect(&self, origin: &Origin) -> Result<Conn, ClientError> {
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
                Ok(Conn::new(Io::Tls(Box::new(tls))))
            } else {
                Ok(Conn::new(Io::Plain(tcp)))
            }
        };
        match tokio::time::timeout(self.connect_timeout, open).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::ConnectTimeout),
        }
    }
}

/// A request's line and headers, encoded once: where it goes and every byte of its head but
/// the content length. Holds the API key, so its `Debug` shows only the origin.
pub struct RequestHead {
    origin: Origin,
    origin_id: OriginId,
    prefix: Vec<u8>,
}

impl std::fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestHead")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl RequestHead {
    /// `uri` must be absolute (`http` or `https`, with a host).
    pub fn new(
        method: &http::Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<RequestHead, ClientError> {
        let origin = Origin::of(uri)?;
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(method.as_str().as_bytes());
        out.push(b' ');
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        out.extend_from_slice(if target.is_empty() {
            b"/"
        } else {
            target.as_bytes()
        });
        out.extend_from_slice(b" HTTP/1.1\r\n");
        if !headers.contains_key(HOST) {
            if let Some(authority) = uri.authority() {
                out.extend_from_slice(b"host: ");
                // Never the userinfo part of an authority.
                let host_port = authority.as_str().rsplit('@').next().unwrap_or_default();
                out.extend_from_slice(host_port.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        for (name, value) in headers {
            // The framing is ours to state.
            if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == CONNECTION {
                continue;
            }
            // `HeaderName` and `HeaderValue` cannot hold CR or LF: nothing here can split the
            // head.
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Ok(RequestHead {
            origin_id: origin.id(),
            origin,
            prefix: out,
        })
    }

    /// The head for a body of this size (and the body behind it, when small) as it goes on
    /// the wire; the body separately when it is not copied.
    fn encode<'b>(&self, extra: &[u8], body: &'b [u8]) -> (Vec<u8>, &'b [u8]) {
        let coalesce = body.len() <= COALESCE_BODY;
        let mut out = Vec::with_capacity(
            self.prefix.len() + extra.len() + 40 + if coalesce { body.len() } else { 0 },
        );
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(extra);
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        if coalesce {
            out.extend_from_slice(body);
            (out, &[])
        } else {
            (out, body)
        }
    }
}

/// The transport under a connection.
enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// The framing tests' stand-in for a socket.
    #[cfg(test)]
    Memory(tokio::io::DuplexStream),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            #[cfg(test)]
            Io::Memory(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            #[cfg(test)]
            Io::Memory(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            #[cfg(test)]
            Io::Memory(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            #[cfg(test)]
            Io::Memory(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// One connection, the bytes read from it that nobody has taken yet, and its head timer.
struct Conn {
    io: Io,
    buf: BytesMut,
    /// Bounds the wait for each response head. It lives as long as the connection and is
    /// moved on per request: tokio moves a registered timer to a later deadline with one
    /// atomic store, where a timer per request was inserted into its wheel and removed
    /// again every time. `None` only while [`Conn::exchange`] holds it.
    head_timer: Option<Pin<Box<Sleep>>>,
}

/// How an exchange on a connection failed.
enum Exchange {
    /// The request could not be written: on a reused connection, the server closed it
    /// before it could have read anything, so the request may go on another.
    Unsent(std::io::Error),
    /// After the request was written (or the deadline passed).
    Failed(ClientError),
}

/// A parsed response head.
struct Head {
    status: StatusCode,
    /// The head's bytes: header fields are parsed from them only when asked for
    /// ([`Response::headers`]), which on the hot path nobody does.
    raw: Bytes,
    framing: Framing,
    reusable: bool,
}

impl Conn {
    fn new(io: Io) -> Conn {
        Conn {
            io,
            buf: BytesMut::with_capacity(READ_SIZE),
            head_timer: None,
        }
    }

    /// Writes a request and reads its response head, before `deadline` if there is one.
    async fn exchange(
        &mut self,
        head: &[u8],
        body: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Head, Exchange> {
        let mut timer = deadline.map(|deadline| match self.head_timer.take() {
            Some(mut timer) => {
                timer.as_mut().reset(deadline);
                timer
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        });
        let work = async {
            self.write_request(head, body)
                .await
                .map_err(Exchange::Unsent)?;
            self.read_head().await.map_err(Exchange::Failed)
        };
        let result = match timer.as_mut() {
            None => work.await,
            Some(timer) => tokio::select! {
                biased;
                result = work => result,
                () = timer.as_mut() => Err(Exchange::Failed(ClientError::HeadTimeout)),
            },
        };
        if timer.is_some() {
            self.head_timer = timer;
        }
        result
    }

    /// Reads what the socket has into the buffer; `Ok(0)` at end of stream. Cancel-safe:
    /// bytes read are in the buffer even if the caller's future is dropped right after.
    async fn fill(&mut self) -> std::io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < READ_SIZE / 4 {
            self.buf.reserve(READ_SIZE);
        }
        self.io.read_buf(&mut self.buf).await
    }

    /// Whether an idle connection can take a request: nothing arrived on it since its last
    /// response (no close, no stray bytes). See the module docs.
    fn looks_open(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut byte = [0u8; 1];
        let mut probe = ReadBuf::new(&mut byte);
        matches!(
            Pin::new(&mut self.io).poll_read(&mut cx, &mut probe),
            Poll::Pending
        )
    }

    async fn write_request(&mut self, head: &[u8], body: &[u8]) -> std::io::Result<()> {
        self.io.write_all(head).await?;
        if !body.is_empty() {
            self.io.write_all(body).await?;
        }
        // A no-op for plain TCP; TLS holds records until flushed.
        self.io.flush().await
    }

    /// Reads up to the end of a final (non-1xx) response head and parses it.
    async fn read_head(&mut self) -> Result<Head, ClientError> {
        loop {
            if !self.buf.is_empty() {
                if let Some(head) = self.parse_head()? {
                    return Ok(head);
                }
                if self.buf.len() > MAX_HEAD {
                    return Err(ClientError::Send(format!(
                        "response head longer than {MAX_HEAD} bytes"
                    )));
                }
            }
            let n = self
                .fill()
                .await
                .map_err(|e| ClientError::Send(e.to_string()))?;
            if n == 0 {
                return Err(ClientError::Send(
                    "connection closed before a complete response head".into(),
                ));
            }
        }
    }

    /// A final response head if the buffer holds one (1xx heads are consumed and skipped).
    fn parse_head(&mut self) -> Result<Option<Head>, ClientError> {
        loop {
            // Uninitialised, as the server's request heads (see `connection::parse_head`).
            let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
            let mut parsed = httparse::Response::new(&mut []);
            let config = httparse::ParserConfig::default();
            let len = match config.parse_response_with_uninit_headers(
                &mut parsed,
                &self.buf,
                &mut fields,
            ) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => return Err(ClientError::Send(format!("invalid response head: {e}"))),
            };
            let code = parsed.code.unwrap_or(0);
            let status = StatusCode::from_u16(code)
                .map_err(|_| ClientError::Send(format!("invalid response status {code}")))?;
            let http11 = parsed.version == Some(1);
            let framing = framing(status, parsed.headers)?;
            let closes = parsed
                .headers
                .iter()
                .filter(|f| f.name.eq_ignore_ascii_case("connection"))
                .any(|f| has_token(f.value, "close"));
            let reusable = http11 && !closes && !matches!(framing, Framing::UntilClose);
            let raw = self.buf.split_to(len).freeze();
            if status.is_informational() {
                // 100 Continue and friends; the real answer follows.
                continue;
            }
            return Ok(Some(Head {
                status,
                raw,
                framing,
                reusable,
            }));
        }
    }
}

/// How a response body ends (RFC 9112, section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes are left.
    Length(u64),
    /// Chunked transfer coding, at this point of a chunk.
    Chunked(chunked::State),
    /// Until the server closes the connection.
    UntilClose,
    /// The body has ended.
    Done,
}

fn framing(status: StatusCode, fields: &[httparse::Header<'_>]) -> Result<Framing, ClientError> {
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Done);
    }
    let named = |name: &'static str| {
        fields
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value)
    };
    if let Some(last) = named("transfer-encoding").next_back() {
        // Chunked must be the final coding; anything else runs until the server closes.
        let chunked = last
            .rsplit(|&b| b == b',')
            .next()
            .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        return Ok(if chunked {
            Framing::Chunked(chunked::State::Size)
        } else {
            Framing::UntilClose
        });
    }
    let mut length: Option<u64> = None;
    for value in named("content-length") {
        let n = crate::connection::content_length(value.trim_ascii())
            .ok_or_else(|| ClientError::Send("invalid content-length".into()))?;
        if length.is_some_and(|l| l != n) {
            return Err(ClientError::Send(
                "conflicting content-length values".into(),
            ));
        }
        length = Some(n);
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// What the buffer yields for the body, without reading.
enum Decoded {
    Piece(Bytes),
    End,
    NeedMore,
}

/// A response whose head has arrived; the body is read with [`Response::chunk`].
pub struct Response {
    status: StatusCode,
    head: Bytes,
    content_length: Option<u64>,
    framing: Framing,
    conn: Option<Conn>,
    /// Where the connection goes back to once the body has ended; `None` if it must close.
    pool: Option<(Arc<Client>, OriginId)>,
}

impl Response {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response's header fields (parsed from the head again on each call: only error
    /// answers need them). Fields whose name or value `http` does not accept are left out.
    pub fn headers(&self) -> HeaderMap {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut fields);
        let mut headers = HeaderMap::new();
        if parsed.parse(&self.head).is_err() {
            return headers;
        }
        let base = self.head.as_ptr() as usize;
        for field in parsed.headers.iter() {
            let start = field.value.as_ptr() as usize - base;
            let value = self.head.slice(start..start + field.value.len());
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(field.name.as_bytes()),
                HeaderValue::from_maybe_shared(value),
            ) {
                headers.append(name, value);
            }
        }
        headers
    }

    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// The body has ended: the connection goes back to the pool, or is closed.
    fn release(&mut self) {
        let conn = self.conn.take();
        if let (Some(conn), Some((client, origin))) = (conn, self.pool.take()) {
            client.checkin(origin, conn);
        }
    }

    /// The next piece of the body; `None` at its end. The piece that ends the body also
    /// returns the connection to the pool, so a caller that stops there loses nothing.
    /// Cancel-safe: a dropped call loses no bytes.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        loop {
            match self.decode()? {
                Decoded::Piece(piece) => {
                    if self.framing == Framing::Done {
                        self.release();
                    }
                    return Ok(Some(piece));
                }
                Decoded::End => {
                    self.framing = Framing::Done;
                    self.release();
                    return Ok(None);
                }
                Decoded::NeedMore => {}
            }
            let Some(conn) = self.conn.as_mut() else {
                return Ok(None);
            };
            let n = conn
                .fill()
                .await
                .map_err(|e| ClientError::Body(e.to_string()))?;
            if n == 0 {
                if self.framing == Framing::UntilClose {
                    self.framing = Framing::Done;
                    self.conn = None;
                    return Ok(None);
                }
                self.conn = None;
                return Err(ClientError::Body(
                    "connection closed before the end of the body".into(),
                ));
            }
        }
    }

    /// Takes the next piece of body out of the buffer, following the framing.
    fn decode(&mut self) -> Result<Decoded, ClientError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(if self.framing == Framing::Done {
                Decoded::End
            } else {
                Decoded::NeedMore
            });
        };
        let buf = &mut conn.buf;
        match self.framing {
            Framing::Done | Framing::Length(0) => Ok(Decoded::End),
            Framing::Length(left) => {
                if buf.is_empty() {
                    return Ok(Decoded::NeedMore);
                }
                let take = take_len(left, buf.len());
                let left = left - take as u64;
                self.framing = if left == 0 {
                    Framing::Done
                } else {
                    Framing::Length(left)
                };
                Ok(Decoded::Piece(buf.split_to(take).freeze()))
            }
            Framing::UntilClose => {
                if buf.is_empty() {
                    return Ok(Decoded::NeedMore);
                }
                Ok(Decoded::Piece(buf.split().freeze()))
            }
            Framing::Chunked(mut state) => {
                let step =
                    chunked::step(&mut state, buf).map_err(|e| ClientError::Body(e.to_string()))?;
                if let chunked::Step::Data(_) = step {
                    // Finish the chunk (and, when it is here, the whole body) now, so the
                    // piece that ends the body is the one that frees the connection.
                    chunked::finish_if_here(&mut state, buf);
                }
                self.framing = match state {
                    chunked::State::Done => Framing::Done,
                    state => Framing::Chunked(state),
                };
                Ok(match step {
                    chunked::Step::Data(piece) => Decoded::Piece(piece),
                    chunked::Step::NeedMore => Decoded::NeedMore,
                    chunked::Step::End => Decoded::End,
                })
            }
        }
    }
}

fn take_len(left: u64, available: usize) -> usize {
    usize::try_from(left).map_or(available, |l| l.min(available))
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

    /// A client response over an in-memory "connection" fed `wire` in pieces of `step` bytes,
    /// read to the end; what `chunk` returned, and whether the connection was pooled.
    async fn read_wire(wire: &[u8], step: usize) -> (Result<Vec<u8>, ClientError>, bool) {
        let (mut server, client_side) = tokio::io::duplex(64);
        let wire = wire.to_vec();
        let writer = tokio::spawn(async move {
            for piece in wire.chunks(step.max(1)) {
                if server.write_all(piece).await.is_err() {
                    return;
                }
                tokio::task::yield_now().await;
            }
            // Keep the server side open a little: a body must end by its framing, not by EOF.
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        let client = Arc::new(Client::new(Duration::from_secs(1)).unwrap());
        let mut conn = Conn::new(Io::Memory(client_side));
        let origin = Origin {
            https: false,
            host: "test".into(),
            port: 1,
        }
        .id();
        let result = async {
            let head = conn.read_head().await?;
            let mut response = client.respond(conn, head, origin);
            let mut body = Vec::new();
            while let Some(piece) = response.chunk().await? {
                body.extend_from_slice(&piece);
            }
            Ok(body)
        }
        .await;
        writer.abort();
        let pooled = client
            .idle
            .lock()
            .unwrap()
            .get(origin.0)
            .is_some_and(|l| !l.is_empty());
        (result, pooled)
    }

    #[tokio::test]
    async fn chunked_bodies_decode_however_the_bytes_arrive() {
        let wire = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
            5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nx-trailer: t\r\n\r\n";
        for step in [1, 2, 3, 7, 64, 1000] {
            let (body, pooled) = read_wire(wire, step).await;
            assert_eq!(body.unwrap(), b"hello 0123456789", "step {step}");
            assert!(
                pooled,
                "step {step}: a fully read chunked body frees its connection"
            );
        }
    }

    #[tokio::test]
    async fn sized_empty_and_interim_responses() {
        let (body, pooled) = read_wire(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc", 2).await;
        assert_eq!(body.unwrap(), b"abc");
        assert!(pooled);
        let (body, pooled) = read_wire(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            5,
        )
        .await;
        assert_eq!(body.unwrap(), b"");
        assert!(pooled);
    }

    #[tokio::test]
    async fn connections_that_must_close_are_not_pooled() {
        let (body, pooled) = read_wire(
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
            100,
        )
        .await;
        assert_eq!(body.unwrap(), b"ok");
        assert!(!pooled);
        let (body, pooled) =
            read_wire(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", 100).await;
        assert_eq!(body.unwrap(), b"ok");
        assert!(!pooled);
    }

    #[tokio::test]
    async fn broken_framing_is_an_error_not_a_short_body() {
        // Cut mid-body: the writer stops early and the duplex closes.
        let (body, _) = read_wire(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc", 100).await;
        assert!(matches!(body, Err(ClientError::Body(_))), "{body:?}");
        let (body, _) = read_wire(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            100,
        )
        .await;
        assert!(matches!(body, Err(ClientError::Body(_))), "{body:?}");
        let (body, _) = read_wire(
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
            100,
        )
        .await;
        assert!(matches!(body, Err(ClientError::Send(_))), "{body:?}");
        let (body, _) = read_wire(b"SMTP ready\r\n\r\n", 100).await;
        assert!(matches!(body, Err(ClientError::Send(_))), "{body:?}");
    }

    #[tokio::test]
    async fn content_lengths_are_digits_only() {
        let (body, _) = read_wire(b"HTTP/1.1 200 OK\r\ncontent-length:  3 \r\n\r\nabc", 100).await;
        assert_eq!(body.unwrap(), b"abc");
        for bad in ["+3", "0x3", "3 3", "", "1000000000000000000000"] {
            let wire = format!("HTTP/1.1 200 OK\r\ncontent-length: {bad}\r\n\r\nabc");
            let (body, _) = read_wire(wire.as_bytes(), 100).await;
            assert!(matches!(body, Err(ClientError::Send(_))), "{bad}: {body:?}");
        }
    }

    #[test]
    fn requests_are_framed_by_us() {
        let mut request = http::Request::post("http://user:pw@example.com:8080/v1/chat?x=1")
            .header("authorization", "Bearer k")
            .header("content-length", "999")
            .body(Bytes::from_static(b"{}"))
            .unwrap();
        request
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        let head = RequestHead::new(request.method(), request.uri(), request.headers()).unwrap();
        let (head, rest) = head.encode(&[], request.body());
        assert!(rest.is_empty());
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "POST /v1/chat?x=1 HTTP/1.1\r\nhost: example.com:8080\r\n\
             authorization: Bearer k\r\ncontent-length: 2\r\n\r\n{}"
        );
    }
}
