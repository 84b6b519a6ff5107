//! A per-target circuit breaker with a half-open probe and growing cool-downs.
//!
//! Closed: requests flow; `failure_threshold` consecutive failures open it. Open: requests are
//! rejected until the cool-down (± jitter, so replicas do not probe together) ends. Half-open:
//! exactly one request, the probe, is let through; its success closes the breaker, its failure
//! opens it again with the cool-down doubled (up to `max_cooldown`). A probe whose caller went
//! away without an outcome frees the slot for the next request.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// First cool-down after opening, in milliseconds.
    pub cooldown_ms: u64,
    /// Cap for the doubled cool-down after failed probes, in milliseconds.
    pub max_cooldown_ms: u64,
    /// Relative jitter applied to each cool-down (0.1 = ±10%).
    pub jitter: f64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 3,
            cooldown_ms: 60_000,
            max_cooldown_ms: 120_000,
            jitter: 0.1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerState {
    Closed {
        consecutive_failures: u32,
    },
    Open {
        until: Instant,
        cooldown: Duration,
        /// What the failure that opened it was (an error class name).
        reason: &'static str,
    },
    HalfOpen {
        probe_in_flight: bool,
        cooldown: Duration,
    },
}

/// Why a request was not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// Time until the breaker will admit a probe (zero when a probe is already in flight).
    pub retry_in: Duration,
    pub reason: &'static str,
}

/// A read-only view for health and metrics endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerSnapshot {
    pub state: &'static str,
    pub consecutive_failures: u32,
    pub last_trip_reason: Option<&'static str>,
}

#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    state: Mutex<BreakerState>,
    /// True exactly when the state is closed with no failures counted, kept in step under
    /// the lock. Every request asks the breaker twice (admit, then report success); in that
    /// healthy case both answers are read from this flag, so the hot path takes no lock and
    /// writes no memory that the other worker threads read.
    healthy: Healthy,
}

/// On a cache line of its own, away from the `Arc` counts that every permit writes.
#[derive(Debug)]
#[repr(align(64))]
struct Healthy(AtomicBool);

/// The state under the lock; dropping it updates the healthy flag before unlocking.
struct StateGuard<'a> {
    state: MutexGuard<'a, BreakerState>,
    healthy: &'a AtomicBool,
}

impl Deref for StateGuard<'_> {
    type Target = BreakerState;
    fn deref(&self) -> &BreakerState {
        &self.state
    }
}

impl DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut BreakerState {
        &mut self.state
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        let healthy = matches!(
            *self.state,
            BreakerState::Closed {
                consecutive_failures: 0
            }
        );
        self.healthy.store(healthy, Ordering::Release);
    }
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Arc<Self> {
        Arc::new(Breaker {
            config,
            state: Mutex::new(BreakerState::Closed {
                consecutive_failures: 0,
            }),
            healthy: Healthy(AtomicBool::new(true)),
        })
    }

    fn lock(&self) -> StateGuard<'_> {
        // A panic while holding this lock cannot leave the state half-written (every update is
        // one assignment), so a poisoned lock is safe to keep using.
        StateGuard {
            state: self.state.lock().unwrap_or_else(|p| p.into_inner()),
            healthy: &self.healthy.0,
        }
    }

    /// Asks to send one request through. Without a lock while the breaker is healthy.
    pub fn acquire(self: &Arc<Self>) -> Result<Permit, Rejected> {
        if self.healthy.0.load(Ordering::Acquire) {
            return Ok(Permit::new(self, false));
        }
        let now = Instant::now();
        let mut state = self.lock();
        match *state {
            BreakerState::Closed { .. } => Ok(Permit::new(self, false)),
            BreakerState::Open {
                until,
                cooldown,
                reason,
            } => {
                if now >= until {
                    *state = BreakerState::HalfOpen {
                        probe_in_flight: true,
                        cooldown,
                    };
                    Ok(Permit::new(self, true))
                } else {
                    Err(Rejected {
                        retry_in: until - now,
                        reason,
                    })
                }
            }
            BreakerState::HalfOpen {
                probe_in_flight,
                cooldown,
            } => {
                if probe_in_flight {
                    Err(Rejected {
                        retry_in: Duration::ZERO,
                        reason: "half-open probe in flight",
                    })
                } else {
                    *state = BreakerState::HalfOpen {
                        probe_in_flight: true,
                        cooldown,
                    };
                    Ok(Permit::new(self, true))
                }
            }
        }
    }

    pub fn state(&self) -> BreakerState {
        self.lock().clone()
    }

    pub fn snapshot(&self) -> BreakerSnapshot {
        match *self.lock() {
            BreakerState::Closed {
                consecutive_failures,
            } => BreakerSnapshot {
                state: "closed",
                consecutive_failures,
                last_trip_reason: None,
            },
            BreakerState::Open { reason, .. } => BreakerSnapshot {
                state: "open",
                consecutive_failures: self.config.failure_threshold,
                last_trip_reason: Some(reason),
            },
            BreakerState::HalfOpen { .. } => BreakerSnapshot {
                state: "half_open",
                consecutive_failures: self.config.failure_threshold,
                last_trip_reason: None,
            },
        }
    }

    fn jittered(&self, cooldown: Duration) -> Duration {
        let j = self.config.jitter.clamp(0.0, 0.5);
        if j == 0.0 {
            return cooldown;
        }
        let factor = 1.0 + rand::random_range(-j..=j);
        cooldown.mul_f64(factor)
    }

    fn on_success(&self, probe: bool) {
        // Closed with no failures stays exactly that: nothing to write.
        if !probe && self.healthy.0.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.lock();
        match *state {
            BreakerState::Closed { .. } => {
                *state = BreakerState::Closed {
                    consecutive_failures: 0,
                }
            }
            // Only the probe's own outcome decides a half-open breaker; a request admitted
            // while closed that finishes late says nothing about the target now.
            BreakerState::HalfOpen { .. } if probe => {
                *state = BreakerState::Closed {
                    consecutive_failures: 0,
                }
            }
            _ => {}
        }
    }

    fn on_failure(&self, probe: bool, reason: &'static str) {
        let now = Instant::now();
        let base = Duration::from_millis(self.config.cooldown_ms);
        let max = Duration::from_millis(self.config.max_cooldown_ms.max(self.config.cooldown_ms));
        let mut state = self.lock();
        match *state {
            BreakerState::Closed {
                consecutive_failures,
            } => {
                let n = consecutive_failures + 1;
                if n >= self.config.failure_threshold.max(1) {
                    *state = BreakerState::Open {
                        until: now + self.jittered(base),
                        cooldown: base,
                        reason,
                    };
                } else {
                    *state = BreakerState::Closed {
                        consecutive_failures: n,
                    };
                }
            }
            BreakerState::HalfOpen { cooldown, .. } if probe => {
                let next = (cooldown * 2).min(max);
                *state = BreakerState::Open {
                    until: now + self.jittered(next),
                    cooldown: next,
                    reason,
                };
            }
            _ => {}
        }
    }

    fn on_abandoned_probe(&self) {
        let mut state = self.lock();
        if let BreakerState::HalfOpen { cooldown, .. } = *state {
            *state = BreakerState::HalfOpen {
                probe_in_flight: false,
                cooldown,
            };
        }
    }
}

/// Leave to send one request. Report its outcome with [`Permit::success`] or
/// [`Permit::failure`]; dropping it unreported (the client went away, or the outcome does not
/// count, e.g. a 400 caused by the request itself) records nothing, but frees a probe slot.
#[derive(Debug)]
pub struct Permit {
    breaker: Arc<Breaker>,
    probe: bool,
    reported: bool,
}

impl Permit {
    fn new(breaker: &Arc<Breaker>, probe: bool) -> Self {
        Permit {
            breaker: Arc::clone(breaker),
            probe,
            reported: false,
        }
    }

    /// True when this request is the half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    pub fn success(mut self) {
        self.reported = true;
        self.breaker.on_success(self.probe);
    }

    pub fn failure(mut self, reason: &'static str) {
        self.reported = true;
        self.breaker.on_failure(self.probe, reason);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.reported && self.probe {
            self.breaker.on_abandoned_probe();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            failure_threshold: 3,
            cooldown_ms: 1_000,
            max_cooldown_ms: 2_500,
            jitter: 0.0,
        }
    }

    fn fail(b: &Arc<Breaker>) {
        b.acquire().expect("admitted").failure("server_error");
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_consecutive_failures() {
        let b = Breaker::new(config());
        fail(&b);
        fail(&b);
        assert!(b.acquire().is_ok(), "two failures keep it closed");
        fail(&b);
        let rejected = b.acquire().unwrap_err();
        assert_eq!(rejected.reason, "server_error");
        assert_eq!(rejected.retry_in, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_count() {
        let b = Breaker::new(config());
        fail(&b);
        fail(&b);
        b.acquire().unwrap().success();
        fail(&b);
        fail(&b);
        assert!(b.acquire().is_ok());
    }

    /// The lock-free fast path must agree with the state after every kind of transition.
    #[tokio::test(start_paused = true)]
    async fn the_healthy_flag_follows_the_state() {
        let b = Breaker::new(config());
        let flag_matches = |b: &Breaker| {
            let healthy = b.healthy.0.load(Ordering::Acquire);
            let state = b.state();
            assert_eq!(
                healthy,
                state
                    == BreakerState::Closed {
                        consecutive_failures: 0
                    },
                "{state:?}"
            );
        };
        flag_matches(&b);
        fail(&b);
        flag_matches(&b);
        // A success while failures are counted takes the locked path and clears them.
        b.acquire().unwrap().success();
        flag_matches(&b);
        for _ in 0..3 {
            fail(&b);
        }
        flag_matches(&b);
        assert!(b.acquire().is_err(), "open: the flag must not admit");
        tokio::time::advance(Duration::from_secs(1)).await;
        let probe = b.acquire().expect("the probe");
        assert!(probe.is_probe());
        flag_matches(&b);
        assert!(b.acquire().is_err(), "half-open with a probe out");
        probe.success();
        flag_matches(&b);
        assert!(!b.acquire().unwrap().is_probe());
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_admits_one_probe_and_success_closes() {
        let b = Breaker::new(config());
        for _ in 0..3 {
            fail(&b);
        }
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(b.acquire().is_err(), "still cooling");
        tokio::time::advance(Duration::from_millis(1)).await;
        let probe = b.acquire().expect("probe admitted");
        assert!(probe.is_probe());
        assert!(b.acquire().is_err(), "only one probe at a time");
        probe.success();
        assert_eq!(
            b.state(),
            BreakerState::Closed {
                consecutive_failures: 0
            }
        );
        assert!(!b.acquire().unwrap().is_probe());
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probes_double_the_cooldown_up_to_the_cap() {
        let b = Breaker::new(config());
        for _ in 0..3 {
            fail(&b);
        }
        let mut expected = [2_000u64, 2_500, 2_500].into_iter();
        let mut wait = 1_000;
        for _ in 0..3 {
            tokio::time::advance(Duration::from_millis(wait)).await;
            b.acquire().expect("probe").failure("timeout");
            let next = expected.next().unwrap();
            let rejected = b.acquire().unwrap_err();
            assert_eq!(rejected.retry_in, Duration::from_millis(next));
            assert_eq!(rejected.reason, "timeout");
            wait = next;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_frees_the_slot() {
        let b = Breaker::new(config());
        for _ in 0..3 {
            fail(&b);
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(b.acquire().expect("probe"));
        assert!(b.acquire().expect("new probe").is_probe());
    }

    #[tokio::test(start_paused = true)]
    async fn late_outcomes_of_non_probes_do_not_decide_half_open() {
        let b = Breaker::new(config());
        let early = b.acquire().unwrap();
        for _ in 0..3 {
            fail(&b);
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        let probe = b.acquire().unwrap();
        early.success();
        assert!(matches!(b.state(), BreakerState::HalfOpen { .. }));
        probe.failure("overloaded");
        assert!(matches!(b.state(), BreakerState::Open { .. }));
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_stays_within_bounds() {
        let b = Breaker::new(BreakerConfig {
            jitter: 0.1,
            ..config()
        });
        for _ in 0..3 {
            fail(&b);
        }
        let r = b.acquire().unwrap_err().retry_in;
        assert!(
            r >= Duration::from_millis(900) && r <= Duration::from_millis(1100),
            "{r:?}"
        );
    }
}
