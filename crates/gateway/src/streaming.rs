//! Streamed answers. An attempt is read until its first content event while everything before
//! it (role-only openers, metadata) is held back; only then does the client get a 200 and the
//! first bytes. Until that moment any failure fails over invisibly. After it, a failure ends the
//! stream with an error event the OpenAI SDKs raise, never a truncated answer passed off as
//! complete.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt;
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
    response: upstream::Response,
    decoder: SseDecoder,
    parser: Box<dyn StreamParser>,
    deadlines: Deadlines,
    frames: Vec<SseFrame>,
    events: Vec<StreamEvent>,
    queue: VecDeque<StreamEvent>,
    ended: bool,
    /// A finish reason was seen: the answer is whole even if the terminal marker never comes.
    saw_finish: bool,
    malformed_frames: u32,
    target_name: String,
    /// Gather a burst of ready body pieces per read (see `read_more`). Off until the client
    /// has its first bytes: before that, the first content event matters more than batching.
    pub coalesce: bool,
}

/// Broken frames tolerated per stream before it counts as failed: one garbled event from a
/// proxy is skipped, a stream of garbage is not.
const MAX_MALFORMED_FRAMES: u32 = 3;

impl UpstreamStream {
    pub fn new(target: &RouteTarget, response: upstream::Response, deadlines: Deadlines) -> Self {
        UpstreamStream {
            response,
            decoder: SseDecoder::new(),
            parser: target.provider.stream_parser(),
            deadlines,
            frames: Vec::new(),
            events: Vec::new(),
            queue: VecDeque::new(),
            ended: false,
            saw_finish: false,
            malformed_frames: 0,
            target_name: target.name.clone(),
            coalesce: false,
        }
    }

    /// True when events from bytes already read are waiting: the caller can keep encoding
    /// and write them to the client in one go.
    pub fn has_queued(&self) -> bool {
        !self.queue.is_empty()
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
        self.absorb(chunk)?;
        // The upstream client hands over one HTTP chunk per call, even when one socket read
        // brought dozens. Taking what is ready turns a burst into one batch of events, so the
        // relay writes it to the client in one go instead of one write per event. The yield
        // first lets other tasks (the client connection's writer among them) run. With
        // hyper's client it cost a fifth of the CPU per stream; with our own client,
        // removing it changed no count (callgrind, benchmarks/instructions.sh: 1.667M
        // against 1.670M instructions per 200-chunk stream), so it stays.
        let mut taken = 0;
        while self.coalesce && !self.ended && taken < COALESCE_BYTES {
            tokio::task::yield_now().await;
            let Some(chunk) = self.response.chunk().now_or_never() else {
                break;
            };
            let chunk = chunk.map_err(|e| upstream::transport_error(&e))?;
            taken += chunk.as_ref().map_or(0, Bytes::len);
            self.absorb(chunk)?;
        }
        self.queue.extend(self.events.drain(..));
        Ok(())
    }

    /// After the terminal event, reads what is left of the body, so that the connection can
    /// be reused: a stream whose body is dropped unread closes its connection, and the next
    /// stream would pay for a new one (a TLS handshake, with a real provider). Bounded in time
    /// and bytes; an upstream that keeps talking after its terminal event loses the connection.
    pub async fn drain(mut self) {
        let drained = async {
            let mut left = DRAIN_BYTES;
            while let Ok(Some(chunk)) = self.response.chunk().await {
                left = left.checked_sub(chunk.len())?;
            }
            Some(())
        };
        let _ = tokio::time::timeout(DRAIN_WAIT, drained).await;
    }

    /// Decodes one piece of the body (`None`: its end) into events.
    fn absorb(&mut self, chunk: Option<Bytes>) -> Result<(), UpstreamError> {
        let before = self.events.len();
        match chunk {
            Some(bytes) => {
                self.decoder
                    .feed(&bytes, &mut self.frames)
                    .map_err(UpstreamError::malformed)?;
                for frame in self.frames.drain(..) {
                    if self.parser.is_done() {
                        break;
                    }
                    if let Err(e) = self.parser.feed(&frame, &mut self.events) {
                        if !e.is_malformed() || self.malformed_frames >= MAX_MALFORMED_FRAMES {
                            return Err(e);
                        }
                        self.malformed_frames += 1;
                        tracing::warn!(target = %self.target_name, "skipped a malformed stream frame: {}", e.message);
                    }
                }
                if self.parser.is_done() {
                    // Terminal event seen: whatever follows is not ours to wait for.
                    self.ended = true;
                }
                self.saw_finish |= self.events[before..]
                    .iter()
                    .any(|e| matches!(e, StreamEvent::Finish { .. }));
            }
            None => {
                self.decoder.finish();
                if let Err(e) = self.parser.finish(&mut self.events) {
                    if !self.saw_finish {
                        return Err(e);
                    }
                    // Finished but unterminated (no `[DONE]`): the answer is whole; finalise
                    // now rather than wait for a sentinel that will not come.
                    tracing::info!(target = %self.target_name, "stream ended without its terminal event after finishing: {}", e.message);
                }
                self.ended = true;
            }
        }
        Ok(())
    }
}

/// How long, and how many bytes, a finished stream's remaining body is read for reuse.
const DRAIN_WAIT: std::time::Duration = std::time::Duration::from_millis(500);
const DRAIN_BYTES: usize = 64 << 10;

/// A client write is sent once this much is encoded, even if more events are waiting.
const FLUSH_BYTES: usize = 16 << 10;

/// Most bytes gathered from one burst before its events are handed on.
const COALESCE_BYTES: usize = 64 << 10;

fn expired(which: Expired) -> UpstreamError {
    UpstreamError::new(ErrorClass::Timeout, which.describe())
}

/// A stream that has produced its first content (or ended without any), with everything read
/// so far held back.
pub struct Prelude {
    pub stream: UpstreamStream,
    pub held: Vec<StreamEvent>,
    /// What the provider's request builder dropped (route policy `drop`).
    pub warnings: Vec<String>,
    /// From sending the request to the first content event.
    pub ttft: std::time::Duration,
}

/// Opens `target` and reads until the first content event. Any failure here is still
/// invisible to the client.
pub async fn open_until_content(
    upstreams: &upstream::Upstreams,
    target: Arc<RouteTarget>,
    request: &switchyard_core::ChatRequest,
    started: Instant,
    deadline: Instant,
    trace: crate::ops::trace::Attempt<'_>,
) -> Result<Prelude, UpstreamError> {
    if trace.span.is_disabled() {
        return open_attempt(upstreams, target, request, started, deadline, &trace).await;
    }
    let span = trace.span.clone();
    // Boxed: the attempt's future is large, and only a recording span pays for the move.
    let result = Box::pin(tracing::Instrument::instrument(
        open_attempt(upstreams, target, request, started, deadline, &trace),
        span.clone(),
    ))
    .await;
    match &result {
        Ok(prelude) => {
            span.record(
                "time_to_first_token_ms",
                crate::ops::trace::ms(prelude.ttft),
            );
        }
        Err(e) => crate::ops::trace::attempt_failed(&span, e),
    }
    result
}

async fn open_attempt(
    upstreams: &upstream::Upstreams,
    target: Arc<RouteTarget>,
    request: &switchyard_core::ChatRequest,
    started: Instant,
    deadline: Instant,
    trace: &crate::ops::trace::Attempt<'_>,
) -> Result<Prelude, UpstreamError> {
    let t = target.timeouts;
    let attempt_deadline = target.attempt_deadline(started, deadline);
    // Headers must come before the first token can, so that bound applies to them too.
    let header_wait = std::time::Duration::from_millis(t.headers_ms.min(t.first_token_ms));
    let deadlines = Deadlines::start(t.stream(), attempt_deadline);
    let opened = upstream::open(
        upstreams,
        &target,
        request,
        started,
        header_wait,
        attempt_deadline,
        trace,
    )
    .await?;
    let warnings = opened.warnings;
    let mut stream = UpstreamStream::new(&target, opened.response, deadlines);
    let mut held = Vec::new();
    loop {
        match stream.next().await {
            Ok(Some(ev)) => {
                let content = ev.is_content();
                held.push(ev);
                if content {
                    return Ok(Prelude {
                        stream,
                        held,
                        warnings,
                        ttft: started.elapsed(),
                    });
                }
            }
            Ok(None) => {
                return Ok(Prelude {
                    stream,
                    held,
                    warnings,
                    ttft: started.elapsed(),
                })
            }
            Err(e) => return Err(upstream::scrub(&target, e)),
        }
    }
}

/// What the relay needs to continue a broken stream on another target.
pub struct RelayContext {
    pub upstreams: Arc<upstream::Upstreams>,
    pub route: Arc<crate::route::Route>,
    pub request: switchyard_core::ChatRequest,
    pub deadline: Instant,
    /// The client key's ticket, when keys are configured: charged with each part's usage,
    /// and the key's request in flight until the stream ends.
    pub key: Option<crate::keys::Ticket>,
    /// The request's trace context, for the upstream requests of a continuation.
    pub trace: Option<crate::ops::trace::TraceContext>,
    /// The request's span (disabled unless spans are wanted): the stream's outcome and token
    /// counts are recorded on it when the relay ends.
    pub span: tracing::Span,
}

/// Relays the rest of a stream to the client. Runs in its own task; ends when the upstream
/// ends, fails for good, or the client goes away (the channel closes), which drops the
/// upstream connection at once so no tokens are spent for nobody.
///
/// When the upstream breaks after text was sent and the route allows it, the answer is
/// continued on another target (see [`crate::continuation`]): the client gets one whole answer,
/// never the same words twice, marked as continued in its final chunk.
pub async fn relay(
    ctx: RelayContext,
    prelude: Prelude,
    mut encoder: Box<dyn StreamEncoder>,
    target: Arc<RouteTarget>,
    permit: Permit,
    tx: mpsc::Sender<Bytes>,
) {
    let Prelude {
        mut stream,
        held,
        mut ttft,
        ..
    } = prelude;
    let mut speed = Speed::start();
    let mut target = target;
    let mut permit = permit;
    let mut sent = crate::continuation::Sent::default();
    let mut filter: Option<crate::continuation::PrefixSkip> = None;
    let mut usage: Option<switchyard_core::Usage> = None;
    let mut finishes: Vec<StreamEvent> = Vec::new();
    let mut served_by = vec![target.name.clone()];
    let mut models = vec![target.model.clone()];
    // What the answer cost, each target billed for its own part; `None` while no part had
    // a price.
    let mut cost: Option<f64> = None;
    let mut tried = vec![target.name.clone()];
    let mut pending: VecDeque<StreamEvent> = held.into();
    let mut buf = Vec::with_capacity(1024);
    let mut wrote = false;
    loop {
        let next = match pending.pop_front() {
            Some(ev) => Ok(Some(ev)),
            None => tokio::select! {
                next = stream.next() => next,
                _ = tx.closed() => {
                    tracing::info!(target = %target.name, "client went away; upstream request cancelled");
                    return;
                }
            },
        };
        let next = match next {
            // The answer had finished (its finish reason arrived) and only the tail broke:
            // the client gets it whole, as with a missing `[DONE]`.
            Err(e) if !finishes.is_empty() => {
                tracing::info!(target = %target.name, "stream broke after its finish reason; finalising: {}", e.message);
                Ok(None)
            }
            other => other,
        };
        match next {
            Ok(Some(ev)) => {
                let ev = match filter.as_mut() {
                    None => Some(ev),
                    Some(f) => match f.pass(ev) {
                        Ok(ev) => ev,
                        Err(why) => {
                            permit.success();
                            let err = UpstreamError::new(ErrorClass::StreamInterrupted, format!(
                                "the stream from {} broke after part of the answer was sent, and {} regenerated a different answer ({why}); the answer is incomplete",
                                served_by[0], target.name
                            ));
                            encoder.error(&err, &mut buf);
                            let _ = tx.send(Bytes::from(buf)).await;
                            return;
                        }
                    },
                };
                let Some(ev) = ev else { continue };
                if ev.is_content() {
                    speed.content_events += 1;
                }
                if let StreamEvent::Usage(u) = &ev {
                    speed.output_tokens = Some(u.output_tokens);
                    let usd = crate::accounting::bill(&ctx.route, &target, u);
                    if let Some(usd) = usd {
                        *cost.get_or_insert(0.0) += usd;
                    }
                    target.metrics.billed(u, usd);
                    crate::keys::charge(ctx.key.as_ref(), u, usd);
                    // Held to the end: a continued answer bills every attempt, summed.
                    match usage.as_mut() {
                        Some(total) => total.add(u),
                        None => usage = Some(u.clone()),
                    }
                    continue;
                }
                if matches!(ev, StreamEvent::Finish { .. }) {
                    // Held to the end too, so the final chunk can say how it was served.
                    finishes.push(ev);
                    continue;
                }
                sent.record(&ev);
                encoder.encode(&ev, &mut buf);
                // Events that arrived in one upstream burst leave in one client write, except
                // that the first write goes as soon as the held events are encoded: time to
                // first byte matters more than one more write.
                if buf.is_empty()
                    || !pending.is_empty()
                    || (wrote && stream.has_queued() && buf.len() < FLUSH_BYTES)
                {
                    continue;
                }
                let first = !wrote;
                wrote = true;
                if tx
                    .send(Bytes::from(std::mem::take(&mut buf)))
                    .await
                    .is_err()
                {
                    tracing::info!(target = %target.name, "client went away; upstream request cancelled");
                    return;
                }
                if first {
                    // Let the connection task write the first chunk now, before this task
                    // works through whatever else has arrived; from here on, bursts are
                    // batched.
                    stream.coalesce = true;
                    tokio::task::yield_now().await;
                }
                buf.reserve(1024);
            }
            Ok(None) => {
                for ev in finishes.drain(..) {
                    encoder.encode(&ev, &mut buf);
                }
                if let Some(u) = usage.take() {
                    encoder.encode(&StreamEvent::Usage(u), &mut buf);
                }
                encoder.finish(&mut buf);
                if !ctx.span.is_disabled() {
                    ctx.span.record("outcome", "ok");
                    crate::ops::trace::usage(&ctx.span, usage.as_ref());
                }
                if served_by.len() > 1 {
                    tracing::info!(route = %ctx.route.alias, served_by = ?served_by, "stream continued across targets");
                }
                crate::continuation::mark_final(&mut buf, &served_by, &models, cost);
                let _ = tx.send(Bytes::from(buf)).await;
                match speed.soft_failure(&target, ttft, ctx.route.slow_factor) {
                    Some(why) => {
                        tracing::warn!(target = %target.name, "stream completed but {why}; counted against the breaker");
                        permit.failure("slow_stream");
                    }
                    None => permit.success(),
                }
                let generation = speed.first_content.elapsed();
                target.metrics.answered(true, ttft + generation, Some(ttft));
                target.stats.record_answer(
                    Instant::now(),
                    &switchyard_routing::stats::Answered {
                        streamed: true,
                        ttft: Some(ttft),
                        total: ttft + generation,
                        output_tokens: speed.output_tokens,
                        generation: Some(generation),
                    },
                );
                // The key's request ends here, before the client can see its body end.
                drop(ctx.key);
                // The client has its whole answer (dropping the sender ends its body); now
                // give the upstream connection a chance to go back to the pool.
                drop(tx);
                stream.drain().await;
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
                if !ctx.span.is_disabled() {
                    ctx.span.record("outcome", err.class.name());
                    ctx.span.record("error.type", err.class.name());
                }
                if ctx.route.policy.reaction(err.class).counts_against_breaker {
                    permit.failure(err.class.name());
                } else {
                    drop(permit);
                }
                if err.class.policy().trips_breaker {
                    target
                        .stats
                        .record_failure(Instant::now(), err.class.name());
                }
                let original = format!(
                    "the stream from {} broke after part of the answer was sent: {}",
                    target.name, err.message
                );
                if ctx.route.continue_streams && sent.continuable() {
                    if let Some(next) = crate::continuation::resume(&ctx, &sent, &mut tried).await {
                        tracing::info!(from = %target.name, to = %next.target.name, prefill = next.prefill, "continuing a broken stream");
                        let crate::continuation::Resumed {
                            prelude,
                            target: next_target,
                            permit: next_permit,
                            prefill,
                        } = next;
                        stream = prelude.stream;
                        pending = prelude.held.into();
                        ttft = prelude.ttft;
                        filter =
                            (!prefill).then(|| crate::continuation::PrefixSkip::new(sent.text()));
                        target = next_target;
                        permit = next_permit;
                        speed = Speed::start();
                        served_by.push(target.name.clone());
                        models.push(target.model.clone());
                        ctx.route.metrics.continued(&target.metrics);
                        continue;
                    }
                }
                let client_err = UpstreamError::new(err.class, original);
                encoder.error(&client_err, &mut buf);
                let _ = tx.send(Bytes::from(buf)).await;
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

/// How fast one attempt's stream went, to tell a slow success from a healthy one.
struct Speed {
    first_content: Instant,
    content_events: u64,
    output_tokens: Option<u64>,
}

impl Speed {
    fn start() -> Self {
        Speed {
            first_content: Instant::now(),
            content_events: 0,
            output_tokens: None,
        }
    }

    /// Why this completed stream still counts as a (soft) failure, if it does: a first token
    /// slower than `factor` times the target's recent median and at least
    /// [`crate::routing::SLOW_MARGIN`] over it, or output below its tokens/s floor.
    fn soft_failure(
        &self,
        target: &RouteTarget,
        ttft: std::time::Duration,
        factor: f64,
    ) -> Option<String> {
        if crate::routing::is_slow(target, Instant::now(), true, ttft, factor) {
            return Some(format!(
                "its first token took {} ms, over {factor}x the recent median",
                ttft.as_millis()
            ));
        }
        let floor = target.min_tokens_per_sec?;
        let secs = self.first_content.elapsed().as_secs_f64();
        let tokens = self.output_tokens.unwrap_or(self.content_events) as f64;
        // Too short a stream says nothing about a rate.
        if secs < 0.2 || tokens < 2.0 {
            return None;
        }
        let rate = tokens / secs;
        (rate < floor).then(|| format!("it ran at {rate:.1} tokens/s, below the floor of {floor}"))
    }
}
