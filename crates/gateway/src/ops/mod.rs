//! Operations: what the gateway tells the people running it. [`metrics`] is the Prometheus
//! view (`GET /metrics`); `/health` lives in [`crate::health`]; [`admin`] is the admin API on
//! a listener of its own.

pub mod admin;
pub mod metrics;
pub mod trace;
