//! Resilience pieces the gateway composes, each small and testable alone with tokio's paused
//! clock: a circuit [`breaker`], a retry [`budget`], the stream [`deadline`]s, and a rolling
//! [`latency`] window that tells an unusually slow attempt.
//!
//! Invariant: nothing here knows a provider. Layers read only outcomes and
//! [`switchyard_core::ErrorClass`].

pub mod breaker;
pub mod budget;
pub mod deadline;
pub mod latency;

pub use breaker::{Breaker, BreakerConfig, BreakerSnapshot, BreakerState, Permit, Rejected};
pub use budget::RetryBudget;
pub use deadline::{Deadlines, Expired, StreamTimeouts};
pub use latency::LatencyWindow;
