//! What each answer cost, from its normalized usage and the answering target's price, and
//! where that is summed: per target (its spend cap included) and per route.

use http::HeaderValue;
use switchyard_core::Usage;
use switchyard_routing::cost::cost_of;

use crate::route::{Route, RouteTarget};

/// Wall-clock milliseconds since the Unix epoch: spend-cap periods are aligned to it, so
/// replicas and restarts agree on when a period starts.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Bills `usage` to `target` (and its cap) and to `route`; the cost in USD, or `None` when
/// the target has no price.
pub fn bill(route: &Route, target: &RouteTarget, usage: &Usage) -> Option<f64> {
    let price = target.price?;
    let usd = cost_of(usage, &price);
    target.spent.add(usd);
    route.spent.add(usd);
    if let Some(cap) = &target.cap {
        cap.add(usd, now_ms());
    }
    Some(usd)
}

/// A cost as the value of `x-switchyard-cost`: USD with ten decimals, trailing zeros cut.
pub fn cost_header(usd: f64) -> HeaderValue {
    HeaderValue::from_str(&format_usd(usd)).unwrap_or(HeaderValue::from_static("0"))
}

pub fn format_usd(usd: f64) -> String {
    let s = format!("{:.10}", usd.max(0.0));
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_read_as_plain_decimals() {
        assert_eq!(format_usd(0.0), "0");
        assert_eq!(format_usd(0.00125), "0.00125");
        assert_eq!(format_usd(2.5), "2.5");
        assert_eq!(format_usd(1e-12), "0");
    }
}
