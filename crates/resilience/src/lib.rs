//! Resilience pieces the gateway composes, each small and testable alone with tokio's paused
//! clock: a circuit [`breaker`] (with its recovery ramp), a retry [`budget`] and the stream
//! [`deadline`]s. Rolling latency statistics live in `switchyard-routing`, which also feeds
//! the soft-failure checks.
//!
//! Invariant: nothing here knows a provider. Layers read only outcomes and
//! [`switchyard_core::ErrorClass`].

pub mod breaker;
pub mod budget;
pub mod deadline;

pub use breaker::{
    Breaker, BreakerConfig, BreakerMode, BreakerOverrides, BreakerSnapshot, BreakerState, Forced,
    Permit, RecoveryPercents, RejectKind, Rejected, FORCED_OPEN_REASON, MAX_RECOVERY_STAGES,
    STATE_NAMES,
};
pub use budget::RetryBudget;
pub use deadline::{Deadlines, Expired, StreamTimeouts};
