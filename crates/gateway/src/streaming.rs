//! Streamed answers. An attempt is read until its first content event while everything before
//! it (role-only openers, metadata) is held back; only then does the client get a 200 and the
//! first bytes. Until that moment any failure fails over invisibly. After it, a failure ends the
//! stream with an error event the OpenAI SDKs raise, never a truncated answer passed off as
//! complete.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use switchyard_core::{
    ErrorClass, SseFrame, StreamEncoder, StreamEvent, StreamMeta, StreamParser, UpstreamError,
};
use switchyard_resilience::{Deadlines, Expired, Permit};
use switchyard_sse::SseDecoder;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::route::RouteTarget;
use crate::upstream;

/// One upstream stream being read: bytes → SSE frames → canonical events, under deadlines.
pub struct UpstreamStream {
    response: reqwest::Response,
    decoder: SseDecoder,
    parser: Box<dyn StreamParser>,
    deadlines: Deadlines,
    frames: Vec<SseFrame>,
    events: Vec<StreamEvent>,
    queue: VecDeque<StreamEvent>,
    ended: bool,
}

impl UpstreamStream {
    pub fn new(target: &RouteTarget, response: reqwest::Response, deadlines: Deadlines) -> Self {
        UpstreamStream {
            response,
            decoder: SseDecoder::new(),
            parser: target.provider.stream_parser(),
            deadlines,
            frames: Vec::new(),
            events: Vec::new(),
            queue: VecDeque::new(),
            ended: false,
        }
    }

    /// The next canonical event; `Ok(None)` at a clean end.
    pub async fn next(&mut self) -> Result<Option<StreamEvent>, UpstreamError> {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                if ev.is_content() {
                    self.deadlines.on_content();
                }
                return Ok(Some(ev));
            }
            if self.ended {
                return Ok(None);
            }
            self.read_more().await?;
        }
    }

    async fn read_more(&mut self) -> Result<(), UpstreamError> {
        let chunk = tokio::select! {
            biased;
            chunk = self.response.chunk() => chunk.map_err(|e| upstream::transport_error(&e))?,
            which = self.deadlines.expired() => return Err(expired(which)),
        };
        self.deadlines.on_bytes();
        match chunk {
            Some(bytes) => {
                self.decoder
                    .feed(&bytes, &mut self.frames)
                    .map_err(UpstreamError::malformed)?;
                for frame in self.frames.drain(..) {
                    if self.parser.is_done() {
                        break;
                    }
                    self.parser.feed(&frame, &mut self.events)?;
                }
                if self.parser.is_done() {
                    // Terminal event seen: whatever follows is not ours to wait for.
                    self.ended = true;
                }
            }
            None => {
                self.decoder.finish();
                self.parser.finish(&mut self.events)?;
                self.ended = true;
            }
        }
        self.queue.extend(self.events.drain(..));
        Ok(())
    }
}

fn expired(which: Expired) -> UpstreamError {
    UpstreamError::new(ErrorClass::Timeout, which.describe())
}

/// A stream that has produced its first content (or ended without any), with everything read
/// so far held back.
pub struct Prelude {
    pub stream: UpstreamStream,
    pub held: Vec<StreamEvent>,
}

/// Opens `target` and reads until the first content event. Any failure here is still
/// invisible to the client.
pub async fn open_until_content(
    target: Arc<RouteTarget>,
    request: &switchyard_core::ChatRequest,
    deadline: Instant,
) -> Result<Prelude, UpstreamError> {
    let t = target.timeouts;
    let attempt_deadline =
        (Instant::now() + std::time::Duration::from_millis(t.total_ms)).min(deadline);
    // Headers must come before the first token can, so that bound applies to them too.
    let header_wait = std::time::Duration::from_millis(t.headers_ms.min(t.first_token_ms));
    let deadlines = Deadlines::start(t.stream(), attempt_deadline);
    let opened = upstream::open(&target, request, header_wait, attempt_deadline).await?;
    let mut stream = UpstreamStream::new(&target, opened.response, deadlines);
    let mut held = Vec::new();
    loop {
        match stream.next().await {
            Ok(Some(ev)) => {
                let content = ev.is_content();
                held.push(ev);
                if content {
                    return Ok(Prelude { stream, held });
                }
            }
            Ok(None) => return Ok(Prelude { stream, held }),
            Err(e) => return Err(upstream::scrub(&target, e)),
        }
    }
}

/// Relays the rest of a stream to the client. Runs in its own task; ends when the upstream
/// ends, fails, or the client goes away (the channel closes), which drops the upstream
/// connection at once so no tokens are spent for nobody.
pub async fn relay(
    prelude: Prelude,
    mut encoder: Box<dyn StreamEncoder>,
    target: Arc<RouteTarget>,
    permit: Permit,
    tx: mpsc::Sender<Bytes>,
) {
    let Prelude { mut stream, held } = prelude;
    let mut buf = Vec::with_capacity(1024);
    for ev in &held {
        encoder.encode(ev, &mut buf);
    }
    if !buf.is_empty()
        && tx
            .send(Bytes::from(std::mem::take(&mut buf)))
            .await
            .is_err()
    {
        return;
    }
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            _ = tx.closed() => {
                tracing::info!(target = %target.name, "client went away; upstream request cancelled");
                return;
            }
        };
        match next {
            Ok(Some(ev)) => {
                encoder.encode(&ev, &mut buf);
                if buf.is_empty() {
                    continue;
                }
                if tx
                    .send(Bytes::from(std::mem::take(&mut buf)))
                    .await
                    .is_err()
                {
                    tracing::info!(target = %target.name, "client went away; upstream request cancelled");
                    return;
                }
                buf.reserve(1024);
            }
            Ok(None) => {
                encoder.finish(&mut buf);
                let _ = tx.send(Bytes::from(buf)).await;
                permit.success();
                return;
            }
            Err(err) => {
                let err = upstream::scrub(&target, err);
                tracing::warn!(
                    target = %target.name,
                    class = err.class.name(),
                    "stream failed after content was sent: {}",
                    err.message
                );
                let client_err = UpstreamError::new(
                    err.class,
                    format!(
                        "the upstream stream from target {} broke after part of the answer was sent: {}",
                        target.name, err.message
                    ),
                );
                encoder.error(&client_err, &mut buf);
                let _ = tx.send(Bytes::from(buf)).await;
                if err.class.policy().trips_breaker {
                    permit.failure(err.class.name());
                }
                return;
            }
        }
    }
}

/// Metadata for the client stream from the held `Start` event, or made up when the provider
/// sent none.
pub fn meta_from(
    held: &[StreamEvent],
    fallback_model: &str,
    fallback_id: impl FnOnce() -> String,
) -> StreamMeta {
    for ev in held {
        if let StreamEvent::Start { id, model, created } = ev {
            return StreamMeta {
                id: if id.is_empty() {
                    fallback_id()
                } else {
                    id.clone()
                },
                model: if model.is_empty() {
                    fallback_model.to_string()
                } else {
                    model.clone()
                },
                created: if *created == 0 { now_secs() } else { *created },
            };
        }
    }
    StreamMeta {
        id: fallback_id(),
        model: fallback_model.to_string(),
        created: now_secs(),
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
