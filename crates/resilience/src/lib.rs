//! Resilience pieces the gateway composes, each small and testable alone with tokio's paused
//! clock: a circuit [`breaker`], a retry [`budget`], and the stream [`deadline`]s.
//!
//! Invariant: nothing here knows a provider. Layers read only outcomes and
//! [`switchyard_core::ErrorClass`].

pub mod breaker;
pub mod budget;
pub mod deadline;

pub use breaker::{Breaker, BreakerConfig, BreakerSnapshot, BreakerState, Permit, Rejected};
pub use budget::RetryBudget;
pub use deadline::{Deadlines, Expired, StreamTimeouts};
