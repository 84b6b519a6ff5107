//! One attempt against one target: build the native request, send it, and return either the
//! opened response or a classified error. The only place that turns transport failures
//! (connect, timeouts, cut bodies) into [`ErrorClass`]es.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use switchyard_core::{ChatRequest, ErrorClass, UpstreamError};
use tokio::time::Instant;

pub use crate::client::Response;
use crate::client::{Client, ClientError};
use crate::route::RouteTarget;

/// The HTTP clients of one worker thread, one per distinct connect timeout. Each worker has
/// its own, so a pooled upstream connection is driven by the same thread as the client
/// connection that uses it: no cross-thread wake-up per request.
pub struct Upstreams {
    clients: Vec<Arc<Client>>,
}

impl Upstreams {
    pub fn new(connect_timeouts_ms: &[u64]) -> Result<Self, String> {
        let clients = connect_timeouts_ms
            .iter()
            .map(|&ms| Client::new(Duration::from_millis(ms)).map(Arc::new))
            .collect::<Result<_, _>>()?;
        Ok(Upstreams { clients })
    }

    /// The client for `target`; slots come from the same route table, so one always exists.
    pub fn client(&self, target: &RouteTarget) -> &Arc<Client> {
        &self.clients[target.client_slot]
    }
}

/// An upstream response whose status was 2xx; its body is still unread.
pub struct Opened {
    pub response: Response,
    pub warnings: Vec<String>,
}

/// Sends `request` to `target` and waits for 2xx response headers, within `header_wait` of
/// the attempt's start and before `deadline`. A non-2xx answer is read (bounded) and
/// classified.
pub async fn open(
    upstreams: &Upstreams,
    target: &RouteTarget,
    request: &ChatRequest,
    started: Instant,
    header_wait: Duration,
    deadline: Instant,
    trace: &crate::ops::trace::Attempt<'_>,
) -> Result<Opened, UpstreamError> {
    let built = target
        .provider
        .build_body(request, &target.target())
        .map_err(UpstreamError::from)?;
    let header_deadline = (started + header_wait).min(deadline);
    // Empty (and no allocation) unless the request carries a trace context.
    let extra = trace.upstream_headers();
    let response = match upstreams
        .client(target)
        .send_with_extra(
            target.head(request.stream),
            &extra,
            &built.body,
            Some(header_deadline),
        )
        .await
    {
        Err(ClientError::HeadTimeout) => {
            return Err(UpstreamError::new(
                ErrorClass::Timeout,
                format!(
                    "no response headers within {} ms",
                    header_wait.as_millis().min(u128::from(u64::MAX))
                ),
            ))
        }
        Err(e) => return Err(transport_error(&e)),
        Ok(r) => r,
    };
    let status = response.status();
    trace.headers(started, status.as_u16());
    if status.is_success() {
        return Ok(Opened {
            response,
            warnings: built.warnings,
        });
    }
    let headers = response.headers();
    // Error bodies are small; a bounded read keeps a misbehaving upstream from holding us.
    let body = read_bounded(response, 64 << 10, deadline)
        .await
        .unwrap_or_default();
    let mut err = target.provider.classify_error(status, &headers, &body);
    err.status = Some(status.as_u16());
    Err(scrub(target, err))
}

/// Reads a whole body, up to `limit` bytes, before `deadline`.
pub async fn read_bounded(
    mut response: Response,
    limit: usize,
    deadline: Instant,
) -> Result<Bytes, UpstreamError> {
    let expected = response.content_length();
    let mut buf = Vec::new();
    loop {
        let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
            Err(_) => {
                return Err(UpstreamError::new(
                    ErrorClass::Timeout,
                    "response body not complete before the attempt deadline",
                ))
            }
            Ok(Err(e)) => return Err(transport_error(&e)),
            Ok(Ok(None)) => return Ok(Bytes::from(buf)),
            Ok(Ok(Some(c))) => c,
        };
        if buf.len() + chunk.len() > limit {
            return Err(UpstreamError::new(
                ErrorClass::StreamInterrupted,
                format!("upstream body larger than {limit} bytes"),
            ));
        }
        // The usual case, a sized body in one piece: no copy (and the client has already
        // handed the connection back).
        if buf.is_empty() && expected == Some(chunk.len() as u64) {
            return Ok(chunk);
        }
        buf.extend_from_slice(&chunk);
    }
}

/// Classifies a transport error. The client's messages never include the URL's query (Gemini
/// keys may sit there in user-supplied base URLs) or any header.
pub fn transport_error(e: &ClientError) -> UpstreamError {
    let class = match e {
        ClientError::ConnectTimeout | ClientError::HeadTimeout => ErrorClass::Timeout,
        // Sending failed before a response: the connection was refused, reset or closed.
        ClientError::Connect(_) | ClientError::Send(_) => ErrorClass::Connect,
        ClientError::Body(_) => ErrorClass::StreamInterrupted,
        ClientError::Url(_) => ErrorClass::InvalidRequest,
    };
    UpstreamError::new(class, e.to_string())
}

pub fn scrub(target: &RouteTarget, mut err: UpstreamError) -> UpstreamError {
    err.message = target.scrub(&err.message);
    if let Some(raw) = &err.raw_body {
        err.raw_body = Some(target.scrub(raw));
    }
    if err.class == ErrorClass::Auth {
        // Providers echo (part of) a rejected key in the message; say it in our words instead.
        err.message = format!(
            "the upstream rejected the gateway's credentials for target {}",
            target.name
        );
    }
    err
}
