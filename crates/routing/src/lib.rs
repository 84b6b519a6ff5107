//! Routing that learns, as small pieces each testable alone with tokio's paused clock:
//! rolling per-target [`stats`] (latency percentiles, tokens per second, errors by class over
//! a sliding window), the [`strategy`] that orders a route's targets for one request
//! (priority, latency, cost, weighted), and [`cost`] arithmetic with spend caps.
//!
//! Invariant: nothing here does I/O or knows a provider's wire format. The gateway records
//! outcomes and asks for an order; failover then walks that order exactly as it walks a
//! fixed list.

pub mod cost;
pub mod stats;
pub mod strategy;
