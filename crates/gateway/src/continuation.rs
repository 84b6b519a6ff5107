//! Continuing a stream that broke after text reached the client.
//!
//! The client already holds some text; a fresh answer would repeat it. So the next target either
//! continues from it (prefill: the conversation plus exactly that text as a final assistant
//! message, where the target accepts one) or regenerates and is checked against it: the part it
//! re-creates is swallowed, and if it says something else the stream ends with an error that
//! says so. A target that rejects the prefill is just one more failed attempt; its 400 never
//! becomes the error the client sees.

use std::sync::Arc;

use switchyard_core::{Message, Role, StreamEvent};
use switchyard_resilience::Permit;

use crate::route::RouteTarget;
use crate::streaming::{open_until_content, Prelude, RelayContext};

/// What the client has been sent so far, and whether it can be continued at all (text only:
/// a half-sent tool call or reasoning cannot be prefilled).
#[derive(Debug)]
pub struct Sent {
    text: String,
    continuable: bool,
}

impl Default for Sent {
    fn default() -> Self {
        Sent {
            text: String::new(),
            continuable: true,
        }
    }
}

impl Sent {
    pub fn record(&mut self, ev: &StreamEvent) {
        match ev {
            StreamEvent::TextDelta { choice: 0, text } => self.text.push_str(text),
            StreamEvent::Start { .. } | StreamEvent::Usage(_) => {}
            StreamEvent::ReasoningDelta { text, .. } | StreamEvent::RefusalDelta { text, .. }
                if text.is_empty() => {}
            _ => self.continuable = false,
        }
    }

    pub fn continuable(&self) -> bool {
        self.continuable && !self.text.is_empty()
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Swallows the part of a regenerated answer the client already has.
#[derive(Debug)]
pub struct PrefixSkip {
    expected: String,
    matched: usize,
}

impl PrefixSkip {
    pub fn new(expected: &str) -> Self {
        PrefixSkip {
            expected: expected.to_string(),
            matched: 0,
        }
    }

    fn done(&self) -> bool {
        self.matched >= self.expected.len()
    }

    /// `Ok(Some(ev))` to send on, `Ok(None)` to swallow, `Err(why)` when the regenerated
    /// answer diverges from what was sent.
    pub fn pass(&mut self, ev: StreamEvent) -> Result<Option<StreamEvent>, String> {
        if self.done() {
            return Ok(Some(ev));
        }
        match ev {
            StreamEvent::TextDelta { choice: 0, text } => {
                let rest = &self.expected[self.matched..];
                if text.len() <= rest.len() {
                    if rest.starts_with(text.as_str()) {
                        self.matched += text.len();
                        Ok(None)
                    } else {
                        Err(format!("it differs after {} bytes", self.matched))
                    }
                } else if let Some(tail) = text.strip_prefix(rest) {
                    let tail = tail.to_string();
                    self.matched = self.expected.len();
                    Ok(Some(StreamEvent::TextDelta {
                        choice: 0,
                        text: tail,
                    }))
                } else {
                    Err(format!("it differs after {} bytes", self.matched))
                }
            }
            StreamEvent::Start { .. } | StreamEvent::Usage(_) => Ok(Some(ev)),
            StreamEvent::Finish { .. } => {
                Err("it ended before reaching the text already sent".into())
            }
            _ => Err("it took a different form (not text)".into()),
        }
    }
}

pub struct Resumed {
    pub prelude: Prelude,
    pub target: Arc<RouteTarget>,
    pub permit: Permit,
    /// True when the target continues from a prefill; false when it regenerates.
    pub prefill: bool,
}

/// Finds a target that produces content for the continuation. `tried` holds the names of
/// targets already used for this answer; each target is tried at most once.
pub async fn resume(ctx: &RelayContext, sent: &Sent, tried: &mut Vec<String>) -> Option<Resumed> {
    for target in &ctx.route.targets {
        // A drained target takes no new request, a continuation included.
        if tried.contains(&target.name) || target.is_drained() {
            continue;
        }
        tried.push(target.name.clone());
        // Past the recovery ramp: rescuing an answer already half-sent is worth one request
        // beyond a recovering target's share.
        let Ok(permit) = target.breaker.acquire_past_ramp() else {
            continue;
        };
        let prefill = target.accepts_prefill;
        let mut request = ctx.request.clone();
        if prefill {
            request
                .messages
                .push(Message::text(Role::Assistant, sent.text()));
        }
        let started = tokio::time::Instant::now();
        let attempt = crate::ops::trace::Attempt {
            ctx: ctx.trace.as_ref(),
            span: crate::ops::trace::attempt_span(&ctx.span, &ctx.route.alias, target),
        };
        match open_until_content(
            &ctx.upstreams,
            Arc::clone(target),
            &request,
            started,
            ctx.deadline,
            attempt,
        )
        .await
        {
            Ok(prelude) => {
                return Some(Resumed {
                    prelude,
                    target: Arc::clone(target),
                    permit,
                    prefill,
                })
            }
            Err(e) => {
                tracing::warn!(
                    target = %target.name,
                    class = e.class.name(),
                    prefill,
                    "continuation attempt failed: {}",
                    e.message
                );
                if ctx.route.policy.reaction(e.class).counts_against_breaker {
                    permit.failure(e.class.name());
                }
                if e.class.policy().trips_breaker {
                    target
                        .stats
                        .record_failure(tokio::time::Instant::now(), e.class.name());
                }
            }
        }
    }
    None
}

/// Adds the Switchyard extension to the last JSON chunk in `buf` (the one before `[DONE]`):
/// `"switchyard": {"continued": true, "served_by": [targets], "models": [upstream models]}`
/// when more than one target served the answer, and `"cost"` (USD) when any part of it was
/// priced. Nothing is added to a plain unpriced answer.
pub fn mark_final(buf: &mut Vec<u8>, served_by: &[String], models: &[String], cost: Option<f64>) {
    let mut marker = serde_json::Map::new();
    if served_by.len() > 1 {
        marker.insert("continued".into(), true.into());
        marker.insert("served_by".into(), served_by.into());
        marker.insert("models".into(), models.into());
    }
    if let Some(usd) = cost {
        marker.insert("cost".into(), usd.into());
    }
    if marker.is_empty() {
        return;
    }
    let marker = serde_json::Value::Object(marker);
    let Some(done) = find(buf, b"data: [DONE]") else {
        return;
    };
    let Some(close) = buf[..done].iter().rposition(|&b| b == b'}') else {
        return;
    };
    let insert = format!(",\"switchyard\":{marker}");
    buf.splice(close..close, insert.into_bytes());
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> StreamEvent {
        StreamEvent::TextDelta {
            choice: 0,
            text: t.into(),
        }
    }

    #[test]
    fn prefix_is_swallowed_and_the_rest_passes() {
        let mut p = PrefixSkip::new("Hello wor");
        assert_eq!(p.pass(text("Hel")), Ok(None));
        assert_eq!(p.pass(text("lo")), Ok(None));
        assert_eq!(p.pass(text(" world!")), Ok(Some(text("ld!"))));
        assert_eq!(p.pass(text(" More")), Ok(Some(text(" More"))));
    }

    #[test]
    fn divergence_is_reported() {
        let mut p = PrefixSkip::new("Hello world");
        assert_eq!(p.pass(text("Hello")), Ok(None));
        assert!(p.pass(text(" there, world")).is_err());
    }

    #[test]
    fn an_early_end_is_a_divergence() {
        let mut p = PrefixSkip::new("Hello world");
        assert_eq!(p.pass(text("Hello")), Ok(None));
        let finish = StreamEvent::Finish {
            choice: 0,
            reason: switchyard_core::FinishReason::Stop,
            native_reason: None,
        };
        assert!(p.pass(finish).is_err());
    }

    #[test]
    fn tool_calls_make_a_stream_not_continuable() {
        let mut s = Sent::default();
        s.record(&text("Let me check."));
        assert!(s.continuable());
        s.record(&StreamEvent::ToolCallStart {
            choice: 0,
            index: 0,
            id: "c".into(),
            name: "f".into(),
        });
        assert!(!s.continuable());
    }

    #[test]
    fn the_marker_lands_in_the_last_chunk() {
        let mut buf = b"data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n".to_vec();
        mark_final(
            &mut buf,
            &["p".into(), "f".into()],
            &["m1".into(), "m2".into()],
            None,
        );
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.contains(
                "{\"b\":2,\"switchyard\":{\"continued\":true,\"models\":[\"m1\",\"m2\"],\"served_by\":[\"p\",\"f\"]}}"
            ),
            "{text}"
        );
        assert!(text.contains("{\"a\":1}\n"));
    }
}
