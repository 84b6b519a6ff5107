//! Traces: W3C trace context in and out, and the spans of a chat request.
//!
//! - An incoming `traceparent` (with its `tracestate`) is continued: the request's spans carry
//!   its trace id, and each upstream attempt sends a `traceparent` with the same trace id and a
//!   span id of its own, so a provider's or a proxy's trace joins up. The header is parsed
//!   strictly (version `00`, lowercase hex, ids not all zeros); anything else is ignored, never
//!   an error.
//! - Without one, a new trace is started only when spans are exported ([`set_export`]): the
//!   plain path draws no random numbers and sends no extra header.
//! - Spans are `tracing` spans at `debug` level: with the default `info` filter they are
//!   disabled at their call site (one relaxed load), record nothing and format nothing. An
//!   exporter, or `RUST_LOG=switchyard_gateway=debug`, turns them on. Attribute names follow
//!   the OpenTelemetry GenAI semantic conventions where one applies.
//!
//! Secrets never go into a span: a target's base URL becomes `server.address` (host only,
//! never userinfo or query), and no header value of the client's but the trace context is read.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing::field::Empty;
use tracing::Span;

use crate::connection::Incoming;
use crate::route::RouteTarget;

/// Whether spans leave the process (an OTLP exporter is installed). Only then does a request
/// without a `traceparent` get a new trace id.
static EXPORT: AtomicBool = AtomicBool::new(false);

/// Says that spans are exported: requests without a trace context start one.
pub fn set_export(on: bool) {
    EXPORT.store(on, Ordering::Relaxed);
}

pub fn exporting() -> bool {
    EXPORT.load(Ordering::Relaxed)
}

/// The W3C trace context a request continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: u128,
    /// The caller's span: the parent of this gateway's request span.
    pub parent_id: u64,
    pub flags: u8,
    /// `tracestate`, passed on unchanged (visible ASCII only, at most 512 bytes).
    pub state: Option<String>,
}

impl TraceContext {
    /// Parses a `traceparent` value strictly: `00-<32 hex>-<16 hex>-<2 hex>`, lowercase,
    /// neither id all zeros. `None` for anything else.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<TraceContext> {
        let b = traceparent.as_bytes();
        if b.len() != 55 || &b[..3] != b"00-" || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let trace_id = hex(&b[3..35])?;
        let parent_id = u64::try_from(hex(&b[36..52])?).ok()?;
        let flags = u8::try_from(hex(&b[53..55])?).ok()?;
        if trace_id == 0 || parent_id == 0 {
            return None;
        }
        let state = tracestate
            .filter(|s| {
                !s.is_empty() && s.len() <= 512 && s.bytes().all(|c| (0x20..0x7f).contains(&c))
            })
            .map(str::to_string);
        Some(TraceContext {
            trace_id,
            parent_id,
            flags,
            state,
        })
    }

    /// The context of `req`: its own `traceparent`, or a new trace when spans are exported.
    pub fn of(req: &Incoming) -> Option<TraceContext> {
        // Found while the head was parsed; the head is scanned again only for `tracestate`,
        // and only when a `traceparent` came.
        if let Some(tp) = req.traceparent() {
            if let Some(ctx) = TraceContext::parse(tp, req.header("tracestate")) {
                return Some(ctx);
            }
        }
        exporting().then(TraceContext::new_root)
    }

    /// A new trace, sampled, with no parent of ours (parent id 0 is never sent on).
    pub fn new_root() -> TraceContext {
        TraceContext {
            trace_id: rand::random::<u128>().max(1),
            parent_id: 0,
            flags: 1,
            state: None,
        }
    }

    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The header lines for an upstream request made as span `span_id` of this trace.
    pub fn upstream_headers(&self, span_id: u64) -> Vec<u8> {
        use std::io::Write;
        let mut out = Vec::with_capacity(80 + self.state.as_ref().map_or(0, |s| s.len() + 14));
        let _ = write!(
            out,
            "traceparent: 00-{:032x}-{:016x}-{:02x}\r\n",
            self.trace_id, span_id, self.flags
        );
        if let Some(state) = &self.state {
            let _ = write!(out, "tracestate: {state}\r\n");
        }
        out
    }
}

/// What one upstream attempt is traced with: the request's context (if any) and the
/// attempt's span (disabled, and free, unless spans are wanted).
pub struct Attempt<'a> {
    pub ctx: Option<&'a TraceContext>,
    pub span: Span,
}

impl Attempt<'_> {
    /// The header lines for the upstream request: empty (no allocation) without a context;
    /// with one, a new span id for this attempt, also recorded on its span.
    pub fn upstream_headers(&self) -> Vec<u8> {
        match self.ctx {
            None => Vec::new(),
            Some(ctx) => {
                let id = new_span_id();
                if !self.span.is_disabled() {
                    self.span.record("span_id", format!("{id:016x}"));
                }
                ctx.upstream_headers(id)
            }
        }
    }

    /// Response headers arrived (the attempt began at `started`), with `status`. Reads the
    /// clock only for an enabled span.
    pub fn headers(&self, started: tokio::time::Instant, status: u16) {
        if !self.span.is_disabled() {
            self.span
                .record("time_to_headers_ms", ms(started.elapsed()));
            self.span.record("http.response.status_code", status);
        }
    }
}

/// A new span id (never 0).
pub fn new_span_id() -> u64 {
    rand::random::<u64>().max(1)
}

fn hex(digits: &[u8]) -> Option<u128> {
    let mut v: u128 = 0;
    for &d in digits {
        let n = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u128::from(n);
    }
    Some(v)
}

/// The span of one client chat request. Disabled (and free) unless something wants `debug`
/// spans of this crate.
pub fn chat_span(trace: Option<&TraceContext>) -> Span {
    let span = tracing::debug_span!(
        "chat",
        gen_ai.operation.name = "chat",
        gen_ai.request.model = Empty,
        stream = Empty,
        outcome = Empty,
        attempts = Empty,
        target = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        error.type = Empty,
        trace_id = Empty,
        parent_span_id = Empty,
    );
    if let Some(ctx) = trace {
        if !span.is_disabled() {
            span.record("trace_id", ctx.trace_id_hex());
            if ctx.parent_id != 0 {
                span.record("parent_span_id", format!("{:016x}", ctx.parent_id));
            }
        }
    }
    span
}

/// The span of one upstream attempt, a child of the request's span.
pub fn attempt_span(parent: &Span, alias: &str, target: &RouteTarget) -> Span {
    if parent.is_disabled() {
        return Span::none();
    }
    let span = tracing::debug_span!(
        parent: parent,
        "attempt",
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = target.provider.name(),
        gen_ai.system = target.provider.name(),
        gen_ai.request.model = alias,
        gen_ai.response.model = %target.model,
        target = %target.name,
        server.address = Empty,
        span_id = Empty,
        time_to_headers_ms = Empty,
        time_to_first_token_ms = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        error.type = Empty,
        http.response.status_code = Empty,
    );
    if let Some(host) = host_of(&target.base_url) {
        span.record("server.address", host);
    }
    span
}

/// The host of a base URL: never its userinfo, path or query (where keys may sit).
fn host_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    uri.host().map(str::to_string)
}

/// Records an attempt's failure on its span.
pub fn attempt_failed(span: &Span, err: &switchyard_core::UpstreamError) {
    if span.is_disabled() {
        return;
    }
    span.record("error.type", err.class.name());
    if let Some(status) = err.status {
        span.record("http.response.status_code", status);
    }
}

/// Records token counts on a span.
pub fn usage(span: &Span, usage: Option<&switchyard_core::Usage>) {
    if let Some(u) = usage {
        if !span.is_disabled() {
            span.record("gen_ai.usage.input_tokens", u.input_tokens);
            span.record("gen_ai.usage.output_tokens", u.output_tokens);
        }
    }
}

/// Milliseconds, with microseconds, for a span field.
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_read() {
        let ctx = TraceContext::parse(GOOD, Some("vendor=x")).expect("valid");
        assert_eq!(ctx.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.parent_id, 0x00f0_67aa_0ba9_02b7);
        assert_eq!(ctx.flags, 1);
        assert_eq!(ctx.state.as_deref(), Some("vendor=x"));
        let out = String::from_utf8(ctx.upstream_headers(0xab)).unwrap();
        assert_eq!(
            out,
            "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00000000000000ab-01\r\ntracestate: vendor=x\r\n"
        );
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad, None), None, "{bad:?}");
        }
    }

    #[test]
    fn a_tracestate_with_control_characters_is_dropped() {
        let ctx = TraceContext::parse(GOOD, Some("a=b\u{7f}")).expect("valid");
        assert_eq!(ctx.state, None);
    }

    #[test]
    fn server_address_is_the_host_alone() {
        assert_eq!(
            host_of("https://user:secret@api.example.com:8443/v1?key=abc").as_deref(),
            Some("api.example.com")
        );
    }
}
