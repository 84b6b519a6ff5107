//! A per-target circuit breaker with a half-open probe, growing cool-downs and a gradual
//! recovery ramp.
//!
//! Closed: requests flow; `failure_threshold` consecutive failures open it. Open: requests are
//! rejected until the cool-down (± jitter, so replicas do not probe together) ends. Half-open:
//! exactly one request, the probe, is let through; its failure opens the breaker again with the
//! cool-down doubled (up to `max_cooldown`). A probe whose caller went away without an outcome
//! frees the slot for the next request.
//!
//! Recovering: a successful probe does not close the breaker at once. A target that has just
//! come back (a restarted replica, a provider after an incident) often falls over again when all
//! its traffic returns in one step, and then the whole open/probe cycle starts over with a longer
//! cool-down. So the target first gets a growing share of the requests (by default 5%, 25%, then
//! 50%, each held for `recovery_stage_ms`) and only then all of them. Any failure during the ramp
//! opens the breaker again as a failed probe would; time alone moves the ramp on. Admission
//! within a stage is deterministic (a credit rule, not a coin toss), so a stage lets through
//! exactly its share, and the first request of each stage is always let through. A request the
//! ramp turns away is rejected with [`RejectKind::Ramp`]: the caller should try another target
//! and, when none answers, come back with [`Breaker::acquire_past_ramp`].

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
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
    /// How long each stage of the recovery ramp lasts, in milliseconds. 0: no ramp, a
    /// successful probe closes the breaker at once.
    pub recovery_stage_ms: u64,
    /// The share of requests, in percent, that each stage of the recovery ramp lets through.
    /// Empty: no ramp.
    pub recovery_percent: RecoveryPercents,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 3,
            cooldown_ms: 60_000,
            max_cooldown_ms: 120_000,
            jitter: 0.1,
            recovery_stage_ms: 10_000,
            recovery_percent: RecoveryPercents::DEFAULT,
        }
    }
}

impl BreakerConfig {
    /// Checks what deserialising cannot: the ramp's percents each in 1..=99 and rising.
    /// Messages name the field as it is spelt in the config file.
    pub fn validate(&self) -> Result<(), String> {
        let mut previous = 0;
        for &p in self.recovery_percent.iter() {
            if !(1..=99).contains(&p) {
                return Err(format!(
                    "recovery_percent: {p} is not in 1..=99 (0 would let nothing through, and \
                     100 is the closed breaker)"
                ));
            }
            if p <= previous {
                return Err(format!(
                    "recovery_percent: {p} after {previous}: each stage must let through more \
                     than the one before"
                ));
            }
            previous = p;
        }
        Ok(())
    }

    fn ramp_enabled(&self) -> bool {
        self.recovery_stage_ms > 0 && !self.recovery_percent.is_empty()
    }
}

/// Most stages a recovery ramp may have. Fixed so that [`BreakerConfig`] stays `Copy`; more
/// than a handful of stages would only stretch the recovery out.
pub const MAX_RECOVERY_STAGES: usize = 8;

/// The recovery ramp's shares in percent, in stage order; a list of up to
/// [`MAX_RECOVERY_STAGES`] integers in the config file (`recovery_percent = [5, 25, 50]`).
/// Derefs to `[u8]`. Holds any `u8`: [`BreakerConfig::validate`] checks the values.
#[derive(Clone, Copy)]
pub struct RecoveryPercents {
    len: u8,
    percents: [u8; MAX_RECOVERY_STAGES],
}

impl RecoveryPercents {
    /// 5%, 25%, 50%, then closed.
    pub const DEFAULT: RecoveryPercents = RecoveryPercents::from_array([5, 25, 50]);
    /// No ramp.
    pub const NONE: RecoveryPercents = RecoveryPercents::from_array([]);

    /// Errs only when there are more than [`MAX_RECOVERY_STAGES`] entries.
    pub fn new(percents: &[u8]) -> Result<Self, String> {
        if percents.len() > MAX_RECOVERY_STAGES {
            return Err(format!(
                "recovery_percent: {} stages, at most {MAX_RECOVERY_STAGES} are supported",
                percents.len()
            ));
        }
        let mut out = RecoveryPercents::NONE;
        out.percents[..percents.len()].copy_from_slice(percents);
        out.len = percents.len() as u8;
        Ok(out)
    }

    /// For the constants only: the length check fails the build, not a running gateway.
    const fn from_array<const N: usize>(array: [u8; N]) -> Self {
        assert!(N <= MAX_RECOVERY_STAGES);
        let mut percents = [0; MAX_RECOVERY_STAGES];
        let mut i = 0;
        while i < N {
            percents[i] = array[i];
            i += 1;
        }
        RecoveryPercents {
            len: N as u8,
            percents,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.percents[..usize::from(self.len)]
    }
}

impl Deref for RecoveryPercents {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

// By the listed stages only: the unused tail of the array is not part of the value.
impl PartialEq for RecoveryPercents {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for RecoveryPercents {}

impl fmt::Debug for RecoveryPercents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

impl<'de> Deserialize<'de> for RecoveryPercents {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let percents = Vec::<u8>::deserialize(deserializer)?;
        RecoveryPercents::new(&percents).map_err(serde::de::Error::custom)
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
    /// The probe succeeded; the target is given a growing share of the requests.
    Recovering {
        /// Index into `recovery_percent`.
        stage: usize,
        stage_started: Instant,
        /// The cool-down of the last opening, doubled if the ramp fails.
        cooldown: Duration,
        /// Requests asked for in this stage, turned away or not.
        seen: u64,
        /// Requests let through in this stage.
        admitted: u64,
    },
}

/// Why a request was not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// Time until the breaker will admit a probe (zero when a probe is already in flight, or
    /// when the recovery ramp turned the request away).
    pub retry_in: Duration,
    pub reason: &'static str,
    pub kind: RejectKind,
}

/// Which state turned a request away, so the caller knows whether coming back can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// Cooling down after failures; `retry_in` says for how long.
    Open,
    /// Half-open and the one probe is already out.
    ProbeInFlight,
    /// Recovering, and this request is beyond the current stage's share. The target works:
    /// when no other target answers, [`Breaker::acquire_past_ramp`] lets the request through.
    Ramp,
}

/// A read-only view for health and metrics endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerSnapshot {
    /// `closed`, `open`, `half_open` or `recovering`.
    pub state: &'static str,
    pub consecutive_failures: u32,
    pub last_trip_reason: Option<&'static str>,
    /// The share of requests the current ramp stage lets through, while recovering.
    pub recovery_percent: Option<u8>,
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
        // Not while recovering: the ramp's admission needs the lock for every request.
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

    /// The lock, with the recovery ramp moved on to where the clock says it is. The ramp is
    /// driven by time alone, so every reader that takes the lock sees the same stage whether or
    /// not requests arrived in between.
    fn lock_at(&self, now: Instant) -> StateGuard<'_> {
        let mut state = self.lock();
        self.advance_ramp(&mut state, now);
        state
    }

    fn advance_ramp(&self, state: &mut BreakerState, now: Instant) {
        let stage_len = Duration::from_millis(self.config.recovery_stage_ms);
        // Bounded: each turn moves one stage on or closes the breaker.
        while let BreakerState::Recovering {
            stage,
            stage_started,
            cooldown,
            ..
        } = *state
        {
            // A stage too long to end within `Instant`'s range never ends.
            let Some(end) = stage_started.checked_add(stage_len) else {
                return;
            };
            if now < end {
                return;
            }
            *state = if stage + 1 >= self.config.recovery_percent.len() {
                BreakerState::Closed {
                    consecutive_failures: 0,
                }
            } else {
                // From the scheduled end, not from `now`: a quiet spell does not stretch the
                // ramp, and it may skip stages that nobody asked through.
                BreakerState::Recovering {
                    stage: stage + 1,
                    stage_started: end,
                    cooldown,
                    seen: 0,
                    admitted: 0,
                }
            };
        }
    }

    /// Asks to send one request through. Without a lock while the breaker is healthy.
    pub fn acquire(self: &Arc<Self>) -> Result<Permit, Rejected> {
        self.acquire_inner(false)
    }

    /// Like [`Breaker::acquire`], except that while recovering it always admits: for a request
    /// the ramp turned away (a [`RejectKind::Ramp`] rejection) that no other target could
    /// serve, since a working target beats none. It counts as admitted but not as seen again,
    /// as `acquire` already counted it, so later requests of the stage make up for it. In
    /// every other state it is exactly `acquire`.
    pub fn acquire_past_ramp(self: &Arc<Self>) -> Result<Permit, Rejected> {
        self.acquire_inner(true)
    }

    fn acquire_inner(self: &Arc<Self>, past_ramp: bool) -> Result<Permit, Rejected> {
        if self.healthy.0.load(Ordering::Acquire) {
            return Ok(Permit::new(self, false));
        }
        let now = Instant::now();
        let mut state = self.lock_at(now);
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
                        kind: RejectKind::Open,
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
                        kind: RejectKind::ProbeInFlight,
                    })
                } else {
                    *state = BreakerState::HalfOpen {
                        probe_in_flight: true,
                        cooldown,
                    };
                    Ok(Permit::new(self, true))
                }
            }
            BreakerState::Recovering {
                stage,
                stage_started,
                cooldown,
                seen,
                admitted,
            } => {
                let seen = if past_ramp {
                    seen
                } else {
                    seen.saturating_add(1)
                };
                // A stage past the list cannot happen (the clock closes the breaker first);
                // letting everything through there is the state the ramp would end in anyway.
                let percent =
                    u64::from(self.config.recovery_percent.get(stage).map_or(100, |&p| p));
                // Credit rule: admit while admitted < ceil(share × seen), this request
                // included. Integer-exact, so a stage lets through exactly its share; the first
                // request of a stage (seen = 1) is always admitted, so even a trickle of traffic
                // keeps reaching the target and tells whether it holds.
                let admit =
                    past_ramp || admitted.saturating_mul(100) < percent.saturating_mul(seen);
                *state = BreakerState::Recovering {
                    stage,
                    stage_started,
                    cooldown,
                    seen,
                    admitted: admitted.saturating_add(u64::from(admit)),
                };
                if admit {
                    Ok(Permit::new(self, false))
                } else {
                    Err(Rejected {
                        retry_in: Duration::ZERO,
                        reason: "recovering",
                        kind: RejectKind::Ramp,
                    })
                }
            }
        }
    }

    pub fn state(&self) -> BreakerState {
        self.lock_at(Instant::now()).clone()
    }

    pub fn snapshot(&self) -> BreakerSnapshot {
        match *self.lock_at(Instant::now()) {
            BreakerState::Closed {
                consecutive_failures,
            } => BreakerSnapshot {
                state: "closed",
                consecutive_failures,
                last_trip_reason: None,
                recovery_percent: None,
            },
            BreakerState::Open { reason, .. } => BreakerSnapshot {
                state: "open",
                consecutive_failures: self.config.failure_threshold,
                last_trip_reason: Some(reason),
                recovery_percent: None,
            },
            BreakerState::HalfOpen { .. } => BreakerSnapshot {
                state: "half_open",
                consecutive_failures: self.config.failure_threshold,
                last_trip_reason: None,
                recovery_percent: None,
            },
            BreakerState::Recovering { stage, .. } => BreakerSnapshot {
                state: "recovering",
                consecutive_failures: 0,
                last_trip_reason: None,
                recovery_percent: self.config.recovery_percent.get(stage).copied(),
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
            BreakerState::HalfOpen { cooldown, .. } if probe => {
                *state = if self.config.ramp_enabled() {
                    BreakerState::Recovering {
                        stage: 0,
                        stage_started: Instant::now(),
                        cooldown,
                        seen: 0,
                        admitted: 0,
                    }
                } else {
                    BreakerState::Closed {
                        consecutive_failures: 0,
                    }
                }
            }
            // Successes while recovering are expected and change nothing: the ramp moves on
            // with the clock, as long as nothing fails.
            _ => {}
        }
    }

    fn on_failure(&self, probe: bool, reason: &'static str) {
        let now = Instant::now();
        let base = Duration::from_millis(self.config.cooldown_ms);
        let max = Duration::from_millis(self.config.max_cooldown_ms.max(self.config.cooldown_ms));
        // Advanced first: a failure after the ramp's time is up counts against a closed breaker.
        let mut state = self.lock_at(now);
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
            // A failed ramp is a failed probe, only found later: the target cannot take its
            // load yet. Any failure counts, however the request was admitted, since the ramp
            // is there to stop at the first sign of trouble.
            BreakerState::HalfOpen { cooldown, .. } if probe => {
                *state = self.reopened(now, cooldown, max, reason);
            }
            BreakerState::Recovering { cooldown, .. } => {
                *state = self.reopened(now, cooldown, max, reason);
            }
            _ => {}
        }
    }

    /// Open again after a failed recovery, with the cool-down doubled up to `max`.
    fn reopened(
        &self,
        now: Instant,
        cooldown: Duration,
        max: Duration,
        reason: &'static str,
    ) -> BreakerState {
        let next = (cooldown * 2).min(max);
        BreakerState::Open {
            until: now + self.jittered(next),
            cooldown: next,
            reason,
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

    /// With the default ramp (5%, 25%, 50%, 10 s each).
    fn config() -> BreakerConfig {
        BreakerConfig {
            failure_threshold: 3,
            cooldown_ms: 1_000,
            max_cooldown_ms: 2_500,
            jitter: 0.0,
            recovery_stage_ms: 10_000,
            recovery_percent: RecoveryPercents::DEFAULT,
        }
    }

    fn no_ramp() -> BreakerConfig {
        BreakerConfig {
            recovery_percent: RecoveryPercents::NONE,
            ..config()
        }
    }

    const STAGE: Duration = Duration::from_millis(10_000);

    fn fail(b: &Arc<Breaker>) {
        b.acquire().expect("admitted").failure("server_error");
    }

    fn trip(b: &Arc<Breaker>) {
        for _ in 0..3 {
            fail(b);
        }
        assert!(matches!(b.state(), BreakerState::Open { .. }));
    }

    /// Trips the breaker, waits out the first cool-down and lets the probe succeed.
    async fn trip_and_probe(b: &Arc<Breaker>) {
        trip(b);
        tokio::time::advance(Duration::from_millis(config().cooldown_ms)).await;
        let probe = b.acquire().expect("probe");
        assert!(probe.is_probe());
        probe.success();
    }

    /// Which of `n` requests in a row are admitted, each admitted one succeeding; every
    /// refusal must be the ramp's.
    fn admitted_of(b: &Arc<Breaker>, n: usize) -> Vec<usize> {
        (0..n)
            .filter(|_| match b.acquire() {
                Ok(permit) => {
                    assert!(!permit.is_probe());
                    permit.success();
                    true
                }
                Err(rejected) => {
                    assert_eq!(
                        rejected,
                        Rejected {
                            retry_in: Duration::ZERO,
                            reason: "recovering",
                            kind: RejectKind::Ramp,
                        }
                    );
                    false
                }
            })
            .collect()
    }

    fn every(step: usize) -> Vec<usize> {
        (0..100).step_by(step).collect()
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
        assert_eq!(rejected.kind, RejectKind::Open);
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
        // Recovering: the first request of the stage is admitted, the next is the ramp's to
        // refuse, which the flag must not pre-empt.
        assert!(!b.acquire().unwrap().is_probe());
        assert_eq!(b.acquire().unwrap_err().kind, RejectKind::Ramp);
        flag_matches(&b);
        for _ in 0..2 {
            tokio::time::advance(STAGE).await;
            b.acquire().expect("first of the stage").success();
            flag_matches(&b);
            assert!(!b.healthy.0.load(Ordering::Acquire), "still recovering");
        }
        tokio::time::advance(STAGE).await;
        // Nobody looked since the ramp's time ran out: the flag still sends requests to the
        // lock, where the first one closes the breaker and raises the flag for the rest.
        assert!(!b.healthy.0.load(Ordering::Acquire));
        b.acquire().unwrap().success();
        assert!(b.healthy.0.load(Ordering::Acquire));
        flag_matches(&b);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_admits_one_probe_and_success_closes() {
        let b = Breaker::new(no_ramp());
        for _ in 0..3 {
            fail(&b);
        }
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(b.acquire().is_err(), "still cooling");
        tokio::time::advance(Duration::from_millis(1)).await;
        let probe = b.acquire().expect("probe admitted");
        assert!(probe.is_probe());
        let second = b.acquire().expect_err("only one probe at a time");
        assert_eq!(second.kind, RejectKind::ProbeInFlight);
        assert_eq!(second.retry_in, Duration::ZERO);
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

    #[tokio::test(start_paused = true)]
    async fn a_successful_probe_ramps_through_5_25_50_percent_then_closes() {
        let b = Breaker::new(config());
        trip_and_probe(&b).await;
        assert!(matches!(
            b.state(),
            BreakerState::Recovering {
                stage: 0,
                seen: 0,
                admitted: 0,
                ..
            }
        ));
        // The first of each stage is admitted, then one in every 1/share.
        assert_eq!(admitted_of(&b, 100), every(20));
        tokio::time::advance(STAGE - Duration::from_millis(1)).await;
        assert_eq!(
            b.snapshot().recovery_percent,
            Some(5),
            "a stage lasts stage_ms"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(admitted_of(&b, 100), every(4));
        tokio::time::advance(STAGE).await;
        assert_eq!(admitted_of(&b, 100), every(2));
        tokio::time::advance(STAGE).await;
        assert_eq!(admitted_of(&b, 100), every(1));
        assert_eq!(
            b.state(),
            BreakerState::Closed {
                consecutive_failures: 0
            }
        );
        assert_eq!(b.snapshot().state, "closed");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_during_the_ramp_reopens_with_a_doubled_cooldown_and_restarts_it() {
        let b = Breaker::new(config());
        trip_and_probe(&b).await;
        // At a later stage, to show the ramp does not carry over.
        tokio::time::advance(STAGE).await;
        assert_eq!(b.snapshot().recovery_percent, Some(25));
        b.acquire()
            .expect("first of the stage")
            .failure("overloaded");
        let rejected = b.acquire().unwrap_err();
        assert_eq!(
            rejected,
            Rejected {
                retry_in: Duration::from_millis(2_000),
                reason: "overloaded",
                kind: RejectKind::Open,
            }
        );
        tokio::time::advance(Duration::from_millis(1_999)).await;
        assert_eq!(b.acquire().unwrap_err().kind, RejectKind::Open);
        tokio::time::advance(Duration::from_millis(1)).await;
        let probe = b.acquire().expect("the next probe");
        assert!(probe.is_probe());
        probe.success();
        assert!(matches!(
            b.state(),
            BreakerState::Recovering {
                stage: 0,
                seen: 0,
                admitted: 0,
                ..
            }
        ));
        assert_eq!(admitted_of(&b, 100), every(20));
        // And failing again doubles again, up to the cap.
        fail(&b);
        assert_eq!(
            b.acquire().unwrap_err().retry_in,
            Duration::from_millis(2_500)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn any_failure_while_recovering_reopens() {
        // A permit from before the trip, reporting late.
        let b = Breaker::new(config());
        let early = b.acquire().unwrap();
        trip_and_probe(&b).await;
        early.failure("timeout");
        assert_eq!(
            b.acquire().unwrap_err().retry_in,
            Duration::from_millis(2_000)
        );

        // A permit let past the ramp.
        let b = Breaker::new(config());
        trip_and_probe(&b).await;
        b.acquire().expect("first of the stage").success();
        assert_eq!(b.acquire().unwrap_err().kind, RejectKind::Ramp);
        b.acquire_past_ramp()
            .expect("past the ramp")
            .failure("timeout");
        let rejected = b.acquire().unwrap_err();
        assert_eq!(rejected.kind, RejectKind::Open);
        assert_eq!(rejected.retry_in, Duration::from_millis(2_000));
    }

    #[tokio::test(start_paused = true)]
    async fn successes_and_abandoned_permits_do_not_move_the_ramp() {
        let b = Breaker::new(config());
        trip_and_probe(&b).await;
        let first = b.acquire().expect("first of the stage");
        let past = b.acquire_past_ramp().expect("past the ramp");
        first.success();
        drop(past);
        let BreakerState::Recovering {
            stage,
            seen,
            admitted,
            ..
        } = b.state()
        else {
            panic!("{:?}", b.state());
        };
        assert_eq!((stage, seen, admitted), (0, 1, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_after_the_ramp_time_is_up_counts_as_closed() {
        let b = Breaker::new(config());
        trip_and_probe(&b).await;
        let permit = b.acquire().expect("first of the stage");
        tokio::time::advance(STAGE * 3).await;
        permit.failure("timeout");
        assert_eq!(
            b.state(),
            BreakerState::Closed {
                consecutive_failures: 1
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_past_ramp_admits_while_recovering_and_is_acquire_otherwise() {
        let b = Breaker::new(config());
        assert!(b.acquire_past_ramp().is_ok(), "closed");
        trip(&b);
        // Open: the same refusal.
        let past = b.acquire_past_ramp().unwrap_err();
        assert_eq!(past, b.acquire().unwrap_err());
        assert_eq!(past.kind, RejectKind::Open);
        tokio::time::advance(Duration::from_secs(1)).await;
        // Half-open: it takes the probe like `acquire`, and is refused while the probe is out.
        let probe = b.acquire_past_ramp().expect("probe");
        assert!(probe.is_probe());
        let past = b.acquire_past_ramp().unwrap_err();
        assert_eq!(past, b.acquire().unwrap_err());
        assert_eq!(past.kind, RejectKind::ProbeInFlight);
        probe.success();

        assert_eq!(admitted_of(&b, 2), vec![0]);
        for _ in 0..10 {
            let permit = b
                .acquire_past_ramp()
                .expect("always admitted while recovering");
            assert!(!permit.is_probe());
            permit.success();
        }
        // The 10 went on the stage's account but not on its count of requests seen (the
        // gateway asks past the ramp only for requests the ramp already counted): 11 admitted
        // of 2 seen, so the ramp admits nothing until 5% of the requests seen exceed 11, at
        // the 221st.
        assert_eq!(admitted_of(&b, 218), Vec::<usize>::new());
        assert_eq!(admitted_of(&b, 1), vec![0]);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_ramp_the_probe_closes_at_once() {
        for config in [
            no_ramp(),
            BreakerConfig {
                recovery_stage_ms: 0,
                ..config()
            },
        ] {
            let b = Breaker::new(config);
            trip(&b);
            tokio::time::advance(Duration::from_secs(1)).await;
            b.acquire().expect("probe").success();
            assert_eq!(
                b.state(),
                BreakerState::Closed {
                    consecutive_failures: 0
                },
                "{config:?}"
            );
            assert!(b.healthy.0.load(Ordering::Acquire));
            assert_eq!(admitted_of(&b, 100), every(1));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_snapshot_shows_the_recovery_stage() {
        let b = Breaker::new(config());
        trip(&b);
        assert_eq!(b.snapshot().recovery_percent, None);
        tokio::time::advance(Duration::from_secs(1)).await;
        b.acquire().expect("probe").success();
        assert_eq!(
            b.snapshot(),
            BreakerSnapshot {
                state: "recovering",
                consecutive_failures: 0,
                last_trip_reason: None,
                recovery_percent: Some(5),
            }
        );
        // The clock moves the ramp even without requests.
        tokio::time::advance(STAGE * 2).await;
        assert_eq!(b.snapshot().state, "recovering");
        assert_eq!(b.snapshot().recovery_percent, Some(50));
        tokio::time::advance(STAGE).await;
        assert_eq!(
            b.snapshot(),
            BreakerSnapshot {
                state: "closed",
                consecutive_failures: 0,
                last_trip_reason: None,
                recovery_percent: None,
            }
        );
    }

    #[test]
    fn validate_rejects_bad_percents() {
        let with = |percents: &[u8]| BreakerConfig {
            recovery_percent: RecoveryPercents::new(percents).expect("fits"),
            ..BreakerConfig::default()
        };
        for bad in [&[50, 25][..], &[0], &[100], &[5, 5], &[5, 25, 50, 200]] {
            let e = with(bad).validate().expect_err("invalid");
            assert!(e.starts_with("recovery_percent: "), "{e}");
        }
        assert!(with(&[50, 25])
            .validate()
            .unwrap_err()
            .contains("25 after 50"));
        for good in [&[][..], &[1, 99], &[5, 25, 50]] {
            assert_eq!(with(good).validate(), Ok(()), "{good:?}");
        }
        assert_eq!(BreakerConfig::default().validate(), Ok(()));
        assert!(RecoveryPercents::new(&[1; MAX_RECOVERY_STAGES + 1]).is_err());
    }

    #[test]
    fn recovery_percent_reads_a_list() {
        use serde::de::value::{Error, SeqDeserializer};
        let read = |percents: Vec<u8>| {
            RecoveryPercents::deserialize(SeqDeserializer::<_, Error>::new(percents.into_iter()))
        };
        let p = read(vec![5, 25, 50]).unwrap();
        assert_eq!(p, RecoveryPercents::DEFAULT);
        assert_eq!(&*p, &[5, 25, 50]);
        assert!(read(Vec::new()).unwrap().is_empty());
        let e = read(vec![1; MAX_RECOVERY_STAGES + 1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 8"), "{e}");
    }
}
