//! What a mock provider can be told to do wrong, and the plan that decides which request
//! gets which fault.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// One misbehaviour. Stream faults count *content* chunks (text or tool-call pieces).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Answer with this HTTP status and the provider's native error body.
    Status {
        status: u16,
        /// Sent as `Retry-After` (seconds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_s: Option<u64>,
        /// The provider's error code, e.g. `insufficient_quota` or `context_length_exceeded`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
    },
    /// Wait before answering normally.
    Delay { ms: u64 },
    /// Accept the request and never answer.
    Hang,
    /// Close the connection without any response.
    Reset,
    /// Stream every chunk with this delay between chunks.
    SlowStream { chunk_delay_ms: u64 },
    /// Send `chunks` content chunks, then go silent for `ms` (0: for ever), then go on.
    StallAfter { chunks: usize, ms: u64 },
    /// Send `chunks` content chunks, then cut the connection mid-body.
    DropAfter { chunks: usize },
    /// Send `chunks` content chunks, then an in-stream error event of this status's class.
    ErrorAfter { chunks: usize, status: u16 },
    /// Send `chunks` content chunks, then one frame of broken JSON, then go on normally.
    MalformedAfter { chunks: usize },
    /// Send `chunks` content chunks, then end the body cleanly without the terminal event.
    EndWithoutDone { chunks: usize },
    /// Send the whole answer but leave out the final frame (`[DONE]`, `message_stop`).
    NoTerminal,
    /// Like `NoTerminal`, but then cut the connection instead of ending the body cleanly.
    CutBeforeTerminal,
}

/// A fault and which requests it applies to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    pub fault: Fault,
    /// Applies to the next `count` requests (default 1). Ignored when `fraction` or `always`
    /// is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Applies to this fraction of requests, at random, until reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// Applies to every request until reset.
    #[serde(default)]
    pub always: bool,
}

impl FaultRule {
    pub fn next(fault: Fault, count: u32) -> Self {
        FaultRule {
            fault,
            count: Some(count),
            fraction: None,
            always: false,
        }
    }

    pub fn always(fault: Fault) -> Self {
        FaultRule {
            fault,
            count: None,
            fraction: None,
            always: true,
        }
    }
}

/// Counted rules are used up first, in order; then standing rules (always / fraction).
#[derive(Debug, Default)]
pub struct FaultPlan {
    counted: VecDeque<(Fault, u32)>,
    standing: Vec<FaultRule>,
}

impl FaultPlan {
    pub fn push(&mut self, rule: FaultRule) {
        if rule.always || rule.fraction.is_some() {
            self.standing.push(rule);
        } else {
            let n = rule.count.unwrap_or(1);
            if n > 0 {
                self.counted.push_back((rule.fault, n));
            }
        }
    }

    pub fn clear(&mut self) {
        self.counted.clear();
        self.standing.clear();
    }

    /// The fault for the request arriving now, if any.
    pub fn take(&mut self) -> Option<Fault> {
        if let Some((fault, left)) = self.counted.front_mut() {
            let fault = fault.clone();
            *left -= 1;
            if *left == 0 {
                self.counted.pop_front();
            }
            return Some(fault);
        }
        for rule in &self.standing {
            if rule.always {
                return Some(rule.fault.clone());
            }
            if let Some(f) = rule.fraction {
                if rand::random::<f64>() < f {
                    return Some(rule.fault.clone());
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_rules_are_used_up_in_order_then_standing_ones_apply() {
        let mut plan = FaultPlan::default();
        plan.push(FaultRule::next(Fault::Hang, 2));
        plan.push(FaultRule::always(Fault::Reset));
        plan.push(FaultRule::next(Fault::Delay { ms: 5 }, 1));
        assert_eq!(plan.take(), Some(Fault::Hang));
        assert_eq!(plan.take(), Some(Fault::Hang));
        assert_eq!(plan.take(), Some(Fault::Delay { ms: 5 }));
        assert_eq!(plan.take(), Some(Fault::Reset));
        plan.clear();
        assert_eq!(plan.take(), None);
    }

    #[test]
    fn rules_parse_from_json() {
        let rule: FaultRule =
            serde_json::from_str(r#"{"fault":{"kind":"status","status":503},"count":3}"#).unwrap();
        assert_eq!(rule.count, Some(3));
        assert!(serde_json::from_str::<FaultRule>(r#"{"fault":{"kind":"nope"}}"#).is_err());
    }
}
