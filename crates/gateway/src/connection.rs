//! One client connection: HTTP/1.1 read and written here, heads parsed with `httparse` (the
//! parser hyper uses).
//!
//! Why not hyper's server: the gateway answers four paths with whole JSON documents or SSE
//! streams, and hyper's general machinery (a header map built per request, a dispatcher
//! between the connection and the service, body frames through trait objects) was the largest
//! single item of user time in the profile. This does only what the gateway needs: requests
//! one after another on a keep-alive connection (pipelined ones queue in the read buffer),
//! bodies read whole before the handler runs, responses written with one system call where
//! they can be.
//!
//! What it refuses, because a front-end proxy and the gateway could otherwise disagree on
//! where a request ends (request smuggling, RFC 9112 section 6.3 and 11.2):
//! - both `transfer-encoding` and `content-length` (400), a `transfer-encoding` other than
//!   exactly `chunked` (501), `transfer-encoding` on HTTP/1.0 (400);
//! - a `content-length` that is not all digits, or several that differ (400);
//! - chunk sizes with anything but hex digits (then spaces, tabs and `;extensions`), chunks
//!   not ended by CRLF, trailer lines holding a bare CR or LF (all in [`crate::chunked`]);
//! - heads `httparse` rejects (bad tokens, whitespace before a colon, folded lines) (400),
//!   heads over 64 KiB or with more than 96 fields (431).
//!
//! After any refusal the connection is closed: what follows on it cannot be trusted to be a
//! request.

use std::future::Future;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::{Method, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use crate::body::{Response, ResponseBody};
use crate::chunked;

/// Bytes asked of the socket per read.
const READ_SIZE: usize = 8 << 10;
/// Longest request head accepted.
const MAX_HEAD: usize = 64 << 10;
/// Most header fields in a request head.
const MAX_HEADERS: usize = 96;
/// Response bodies up to this size are copied behind the head and leave in one write.
const COALESCE_BODY: usize = 64 << 10;
/// After refusing a request, how much of what the client still sends is read and dropped
/// (so that closing does not reset the connection before the client has read the refusal).
const DRAIN_LIMIT: usize = 256 << 10;
const DRAIN_TIME: Duration = Duration::from_millis(500);

/// Limits on what a client sends.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body, in bytes (413 above it).
    pub max_body: usize,
    /// How long a request head may take to arrive, counted from the end of the previous
    /// response (so it is also the keep-alive idle timeout), and then its body (408).
    pub read_timeout: Duration,
}

/// A request as the handlers see it: the body is already read whole.
pub struct Incoming {
    pub method: Method,
    head: Bytes,
    path: (usize, usize),
    /// Where a `traceparent` field's value is in `head`, found while the head was parsed (every
    /// chat request asks for it; most have none).
    traceparent: Option<(usize, usize)>,
    pub body: Bytes,
}

impl Incoming {
    /// The request target's path, without the query (and without scheme and authority when
    /// the client sent the absolute form), as sent.
    pub fn path_bytes(&self) -> &[u8] {
        self.head.get(self.path.0..self.path.1).unwrap_or_default()
    }

    /// [`Self::path_bytes`] as text, for messages. A path that is not UTF-8 reads as empty.
    pub fn path(&self) -> &str {
        std::str::from_utf8(self.path_bytes()).unwrap_or_default()
    }

    /// The W3C `traceparent` field, trimmed, when the request has one that is UTF-8.
    pub fn traceparent(&self) -> Option<&str> {
        let (start, end) = self.traceparent?;
        std::str::from_utf8(self.head.get(start..end)?)
            .ok()
            .map(str::trim)
    }

    /// The first header field named `name` (lower case), trimmed; `None` when absent or not
    /// UTF-8. Scans the raw head (line starts with memchr): cheap enough for the one header
    /// every chat request is asked for (`traceparent`), not for many.
    pub fn header(&self, name: &str) -> Option<&str> {
        // Line starts found with memchr, and only a line whose field has the name's length
        // compared: every chat request asks for `traceparent`, which most do not send.
        let head = &self.head[..];
        let name = name.as_bytes();
        memchr::memchr_iter(b'\n', head).find_map(|nl| {
            let line = &head[nl + 1..];
            if line.get(name.len()) != Some(&b':') || !line[..name.len()].eq_ignore_ascii_case(name)
            {
                return None;
            }
            let value = &line[name.len() + 1..];
            let end = memchr::memchr(b'\n', value).unwrap_or(value.len());
            std::str::from_utf8(&value[..end]).ok().map(str::trim)
        })
    }
}

/// Why a request is answered by the connection itself, and the connection then closed.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

/// How a request body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFraming {
    Length(u64),
    Chunked,
}

/// A parsed request head.
struct Head {
    method: Method,
    head: Bytes,
    path: (usize, usize),
    traceparent: Option<(usize, usize)>,
    framing: BodyFraming,
    keep_alive: bool,
    http10: bool,
    expect_continue: bool,
}

/// Serves requests on `io` one after another until the client closes, a request asks to
/// close, something is refused, or `stop` resolves while the connection is idle. A request
/// already being read or answered when `stop` resolves is finished first, with
/// `connection: close`.
pub async fn serve<IO, H, Fut>(io: IO, limits: Limits, stop: impl Future<Output = ()>, handler: H)
where
    IO: AsyncRead + AsyncWrite + Unpin,
    H: Fn(Incoming) -> Fut,
    Fut: Future<Output = Response>,
{
    let mut conn = Conn {
        io,
        buf: BytesMut::with_capacity(READ_SIZE),
        out: Vec::with_capacity(1024),
    };
    tokio::pin!(stop);
    // One timer for the connection's life, moved on for each request: moving a registered
    // tokio timer later is one atomic store, where a timer per request was inserted into and
    // removed from the timer wheel every time.
    let head_timer = tokio::time::sleep(limits.read_timeout);
    tokio::pin!(head_timer);
    let mut stopping = false;
    loop {
        let head = match conn
            .read_head(
                limits.read_timeout,
                &mut head_timer,
                &mut stop,
                &mut stopping,
            )
            .await
        {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(refusal) => return conn.refuse(refusal).await,
        };
        let body = match conn.read_body(&head, limits).await {
            Ok(body) => body,
            Err(refusal) => return conn.refuse(refusal).await,
        };
        let is_head = head.method == Method::HEAD;
        let http10 = head.http10;
        let mut keep_alive = head.keep_alive;
        let response = handler(Incoming {
            method: head.method,
            head: head.head,
            path: head.path,
            traceparent: head.traceparent,
            body,
        })
        .await;
        // A stop that came while the request ran: this answer is the connection's last.
        if !stopping && futures_util::poll!(stop.as_mut()).is_ready() {
            stopping = true;
        }
        keep_alive &= !stopping;
        match conn.respond(response, is_head, http10, keep_alive).await {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                let _ = conn.io.shutdown().await;
                return;
            }
        }
    }
}

/// The connection's socket, what has been read from it and not yet used, and the buffer
/// responses are encoded into.
struct Conn<IO> {
    io: IO,
    buf: BytesMut,
    out: Vec<u8>,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Conn<IO> {
    /// Reads what the socket has into the buffer; `Ok(0)` at end of stream. Cancel-safe.
    async fn fill(&mut self) -> std::io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < READ_SIZE / 4 {
            self.buf.reserve(READ_SIZE);
        }
        self.io.read_buf(&mut self.buf).await
    }

    /// The next request head; `None` when the connection should just close (the client
    /// closed it or went quiet between requests, or the gateway is stopping).
    async fn read_head<S: Future<Output = ()>>(
        &mut self,
        wait: Duration,
        timer: &mut Pin<&mut Sleep>,
        stop: &mut Pin<&mut S>,
        stopping: &mut bool,
    ) -> Result<Option<Head>, Refusal> {
        timer.as_mut().reset(Instant::now() + wait);
        loop {
            if !self.buf.is_empty() {
                if let Some(head) = self.parse_head()? {
                    return Ok(Some(head));
                }
                if self.buf.len() > MAX_HEAD {
                    return Err(Refusal::new(
                        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        "request_header_too_large",
                        format!("the request head is longer than {MAX_HEAD} bytes"),
                    ));
                }
            }
            let idle = self.buf.is_empty();
            if idle && *stopping {
                return Ok(None);
            }
            let read = tokio::select! {
                biased;
                read = self.fill() => Some(read),
                () = timer.as_mut() => None,
                () = stop.as_mut(), if idle && !*stopping => {
                    *stopping = true;
                    return Ok(None);
                }
            };
            match read {
                Some(Ok(0) | Err(_)) => return Ok(None),
                Some(Ok(_)) => {}
                // Quiet between requests: close without a word, as keep-alive timeouts do.
                None if idle => return Ok(None),
                None => {
                    return Err(Refusal::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "request_timeout",
                        format!(
                            "the request head did not arrive within {} ms",
                            wait.as_millis()
                        ),
                    ))
                }
            }
        }
    }

    /// A request head if the buffer holds a whole one; it is taken out of the buffer.
    fn parse_head(&mut self) -> Result<Option<Head>, Refusal> {
        // Left uninitialised: httparse writes the fields it finds, and filling 96 empty ones
        // first cost more than parsing a small head.
        let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut []);
        let len = match parsed.parse_with_uninit_headers(&self.buf, &mut fields) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Refusal::new(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "request_header_too_large",
                    format!("the request has more than {MAX_HEADERS} header fields"),
                ))
            }
            Err(e) => return Err(Refusal::bad(format!("malformed request head: {e}"))),
        };
        let (Some(method), Some(target), Some(version)) =
            (parsed.method, parsed.path, parsed.version)
        else {
            return Err(Refusal::bad("malformed request line"));
        };
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| Refusal::bad(format!("invalid method {method:?}")))?;
        let http10 = version == 0;
        let base = self.buf.as_ptr() as usize;
        let path = path_of(target);
        let path_start = path.as_ptr() as usize - base;
        let path = (path_start, path_start + path.len());

        let mut length: Option<u64> = None;
        let mut transfer_encoding: Option<&[u8]> = None;
        let mut close = false;
        let mut keep_alive_token = false;
        let mut expect_continue = false;
        let mut traceparent = None;
        for field in parsed.headers.iter() {
            let name = field.name.as_bytes();
            let value = field.value;
            if name.eq_ignore_ascii_case(b"content-length") {
                for part in value.split(|&b| b == b',') {
                    let n = content_length(part.trim_ascii())
                        .ok_or_else(|| Refusal::bad("invalid content-length"))?;
                    if length.is_some_and(|l| l != n) {
                        return Err(Refusal::bad("conflicting content-length values"));
                    }
                    length = Some(n);
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                if transfer_encoding.is_some() {
                    return Err(Refusal::new(
                        StatusCode::NOT_IMPLEMENTED,
                        "unsupported_transfer_encoding",
                        "only one transfer-encoding field, `chunked`, is supported",
                    ));
                }
                transfer_encoding = Some(value);
            } else if name.eq_ignore_ascii_case(b"connection") {
                for token in value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name.eq_ignore_ascii_case(b"traceparent") {
                let start = value.as_ptr() as usize - base;
                traceparent = Some((start, start + value.len()));
            } else if name.eq_ignore_ascii_case(b"expect") {
                if !value.trim_ascii().eq_ignore_ascii_case(b"100-continue") {
                    return Err(Refusal::new(
                        StatusCode::EXPECTATION_FAILED,
                        "expectation_failed",
                        "the only expectation this server meets is 100-continue",
                    ));
                }
                expect_continue = !http10;
            }
        }
        let framing = match (transfer_encoding, length) {
            (Some(_), Some(_)) => {
                return Err(Refusal::bad(
                    "a request may not have both transfer-encoding and content-length",
                ))
            }
            (Some(_), None) if http10 => {
                return Err(Refusal::bad("transfer-encoding is not allowed in HTTP/1.0"))
            }
            (Some(te), None) => {
                if !te.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                    return Err(Refusal::new(
                        StatusCode::NOT_IMPLEMENTED,
                        "unsupported_transfer_encoding",
                        "the only transfer-encoding supported is `chunked`",
                    ));
                }
                BodyFraming::Chunked
            }
            (None, length) => BodyFraming::Length(length.unwrap_or(0)),
        };
        let head = self.buf.split_to(len).freeze();
        Ok(Some(Head {
            method,
            head,
            path,
            traceparent,
            framing,
            keep_alive: if http10 {
                keep_alive_token && !close
            } else {
                !close
            },
            http10,
            expect_continue,
        }))
    }

    /// The whole body, under the size limit and the read timeout.
    async fn read_body(&mut self, head: &Head, limits: Limits) -> Result<Bytes, Refusal> {
        let too_large = || {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                format!(
                    "request body is larger than the gateway's limit of {} bytes",
                    limits.max_body
                ),
            )
        };
        let timed_out = || {
            Refusal::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request body did not arrive within {} ms",
                    limits.read_timeout.as_millis()
                ),
            )
        };
        // Set when the first read has to wait: the usual body came with its head.
        let mut deadline = None;
        match head.framing {
            BodyFraming::Length(0) => Ok(Bytes::new()),
            BodyFraming::Length(n) => {
                let n = usize::try_from(n)
                    .ok()
                    .filter(|&n| n <= limits.max_body)
                    .ok_or_else(too_large)?;
                if self.buf.len() < n && head.expect_continue {
                    self.write_out(b"HTTP/1.1 100 Continue\r\n\r\n")
                        .await
                        .map_err(|e| Refusal::bad(e.to_string()))?;
                }
                while self.buf.len() < n {
                    self.buf.reserve(n - self.buf.len());
                    let deadline =
                        *deadline.get_or_insert_with(|| Instant::now() + limits.read_timeout);
                    self.fill_before(deadline, &timed_out).await?;
                }
                Ok(self.buf.split_to(n).freeze())
            }
            BodyFraming::Chunked => {
                if head.expect_continue && self.buf.is_empty() {
                    self.write_out(b"HTTP/1.1 100 Continue\r\n\r\n")
                        .await
                        .map_err(|e| Refusal::bad(e.to_string()))?;
                }
                let mut body = BytesMut::new();
                let mut state = chunked::State::Size;
                loop {
                    let step = chunked::step(&mut state, &mut self.buf)
                        .map_err(|e| Refusal::bad(e.to_string()))?;
                    match step {
                        chunked::Step::Data(piece) => {
                            if body.len() + piece.len() > limits.max_body {
                                return Err(too_large());
                            }
                            body.extend_from_slice(&piece);
                        }
                        chunked::Step::End => return Ok(body.freeze()),
                        chunked::Step::NeedMore => {
                            let deadline = *deadline
                                .get_or_insert_with(|| Instant::now() + limits.read_timeout);
                            self.fill_before(deadline, &timed_out).await?;
                        }
                    }
                }
            }
        }
    }

    /// Reads more of the body, or says why not.
    async fn fill_before(
        &mut self,
        deadline: Instant,
        timed_out: &impl Fn() -> Refusal,
    ) -> Result<(), Refusal> {
        match tokio::time::timeout_at(deadline, self.fill()).await {
            Ok(Ok(0)) => Err(Refusal::bad(
                "the connection closed before the end of the body",
            )),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Refusal::bad(format!(
                "could not read the request body: {e}"
            ))),
            Err(_) => Err(timed_out()),
        }
    }

    async fn write_out(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    /// Writes the response; `Ok(true)` when the connection can take another request.
    async fn respond(
        &mut self,
        response: Response,
        is_head: bool,
        http10: bool,
        keep_alive: bool,
    ) -> std::io::Result<bool> {
        let Response {
            status,
            headers,
            body,
        } = response;
        let head = (status, headers.as_slice());
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let result = match body {
            ResponseBody::Whole(bytes) => {
                let bytes = bytes.unwrap_or_default();
                encode_head(&mut out, head, Some(bytes.len()), http10, keep_alive);
                let written = if is_head {
                    self.write_out(&out).await
                } else if bytes.len() <= COALESCE_BODY {
                    out.extend_from_slice(&bytes);
                    self.write_out(&out).await
                } else {
                    match self.io.write_all(&out).await {
                        Ok(()) => self.write_out(&bytes).await,
                        Err(e) => Err(e),
                    }
                };
                written.map(|()| keep_alive)
            }
            ResponseBody::Stream(rx) => {
                // HTTP/1.0 has no chunked coding: the stream ends when the connection does.
                let chunked = !http10;
                let keep_alive = keep_alive && chunked;
                encode_head(&mut out, head, None, http10, keep_alive);
                self.relay(rx, &mut out, chunked).await.map(|()| keep_alive)
            }
        };
        // Keep the encode buffer for the next response unless one huge answer bloated it.
        if out.capacity() <= COALESCE_BODY * 2 {
            self.out = out;
        }
        result
    }

    /// Writes a stream's pieces as they come, each batch of what is already waiting in one
    /// write; the first batch goes with the head.
    async fn relay(
        &mut self,
        mut rx: mpsc::Receiver<Bytes>,
        out: &mut Vec<u8>,
        chunked: bool,
    ) -> std::io::Result<()> {
        let mut ended = false;
        loop {
            loop {
                match rx.try_recv() {
                    Ok(piece) => encode_piece(out, &piece, chunked),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        ended = true;
                        break;
                    }
                }
            }
            if ended && chunked {
                out.extend_from_slice(b"0\r\n\r\n");
            }
            if !out.is_empty() {
                self.write_out(out).await?;
                out.clear();
            }
            if ended {
                return Ok(());
            }
            // Dropping `rx` when the write above fails is what tells the relay task that the
            // client has gone.
            match rx.recv().await {
                Some(piece) => encode_piece(out, &piece, chunked),
                None => ended = true,
            }
        }
    }

    /// Answers a refused request with an OpenAI error and closes the connection.
    async fn refuse(mut self, refusal: Refusal) {
        tracing::debug!(status = %refusal.status, message = %refusal.message, "refused a request");
        let body = switchyard_openai::error_body(
            &refusal.message,
            "invalid_request_error",
            None,
            Some(refusal.code),
        );
        let response = crate::body::json(refusal.status, body);
        if self.respond(response, false, false, false).await.is_err() {
            return;
        }
        let _ = self.io.shutdown().await;
        // Read (and drop) what the client is still sending for a moment, so that closing
        // with unread bytes does not reset the connection before it has read the answer.
        let _ = tokio::time::timeout(DRAIN_TIME, async {
            let mut drained = 0;
            while drained < DRAIN_LIMIT {
                self.buf.clear();
                match self.fill().await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => drained += n,
                }
            }
        })
        .await;
    }
}

/// The path of a request target: origin form `/p?q` gives `/p`; absolute form
/// `http://host/p?q` gives `/p` (and `http://host` gives an empty path, which routes nowhere).
fn path_of(target: &str) -> &str {
    // Slices of `target` only: the caller finds the path's place in the head by its address.
    // Byte searches, not `str` patterns: this runs on every request, and origin form (the
    // usual one) needs no search for the scheme at all.
    let rest = match target.starts_with('/') {
        true => target,
        false => match memchr::memmem::find(target.as_bytes(), b"://") {
            Some(i) => {
                let after = &target[i + 3..];
                memchr::memchr(b'/', after.as_bytes())
                    .map_or(&after[after.len()..], |j| &after[j..])
            }
            None => target,
        },
    };
    // `?` and `#` are ASCII, so the cut is on a character boundary.
    let end = memchr::memchr2(b'?', b'#', rest.as_bytes()).unwrap_or(rest.len());
    &rest[..end]
}

/// A content-length value: decimal digits only (no sign, no spaces inside), at most 18 of
/// them. Also the upstream client's reading of its answers' lengths.
pub(crate) fn content_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')),
    )
}

/// The status line and header fields, then the framing this connection uses, the date and
/// the connection's fate.
fn encode_head(
    out: &mut Vec<u8>,
    (status, headers): (StatusCode, &[(http::HeaderName, http::HeaderValue)]),
    length: Option<usize>,
    http10: bool,
    keep_alive: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match length {
        Some(n) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        None if !http10 => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        None => {}
    }
    out.extend_from_slice(b"date: ");
    date::append(out);
    out.extend_from_slice(b"\r\n");
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn encode_piece(out: &mut Vec<u8>, piece: &[u8], chunked: bool) {
    if piece.is_empty() {
        // An empty chunk would end the body.
        return;
    }
    if chunked {
        let mut hex = [0u8; 16];
        let mut n = piece.len();
        let mut i = hex.len();
        loop {
            i -= 1;
            hex[i] = b"0123456789abcdef"[n & 15];
            n >>= 4;
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&hex[i..]);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(piece);
    }
}

/// The `date` header value, formatted once a second per thread.
mod date {
    use std::cell::RefCell;

    use super::SystemTime;

    thread_local! {
        static CACHED: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }

    pub fn append(out: &mut Vec<u8>) {
        let now = SystemTime::now();
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        CACHED.with(|cached| {
            let mut cached = cached.borrow_mut();
            if cached.0 != secs || cached.1.is_empty() {
                *cached = (secs, httpdate::fmt_http_date(now));
            }
            out.extend_from_slice(cached.1.as_bytes());
        });
    }
}

#[cfg(test)]
mod tests;
