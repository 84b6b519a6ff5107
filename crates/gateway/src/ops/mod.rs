//! Operations: what the gateway tells the people running it. [`metrics`] is the Prometheus
//! view (`GET /metrics`); `/health` lives in [`crate::health`].

pub mod metrics;
