//! A per-target circuit breaker with a half-open probe, growing cool-downs and a gradual
//! recovery ramp.
//!
//! Closed: requests flow, and one of two rules ([`BreakerMode`]) decides when failures open it.
//!
//! - `consecutive` (the default): `failure_threshold` failures in a row. Cheap, and quick to
//!   catch a target that is down, but any success starts the count over, so a target that
//!   fails one request in three under mixed traffic never trips it.
//! - `error_rate`: the share of failures among the outcomes of the last `window_ms` (a sliding
//!   window of ten time buckets), as Envoy's outlier detection and resilience4j do. After each
//!   failure the breaker opens when the window holds at least `min_requests` outcomes and
//!   `failures / requests >= error_rate`; the minimum keeps one failure out of one from
//!   opening it. The window only counts while closed and starts empty each time the breaker
//!   closes again. Successes must be counted too, so here a success takes the lock.
//!
//! Everything after the opening is the same for both modes.
//!
//! Open: requests are rejected until the cool-down (± jitter, so replicas do not probe
//! together) ends. Half-open: exactly one request, the probe, is let through; its failure opens
//! the breaker again with the cool-down doubled (up to `max_cooldown`). A probe whose caller
//! went away without an outcome frees the slot for the next request.
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
//!
//! Forced: an operator may hold the breaker open ([`Breaker::force_open`]: every request is
//! rejected with the reason [`FORCED_OPEN_REASON`]) or closed ([`Breaker::force_closed`]:
//! every request is admitted and no outcome counts) until [`Breaker::release`]. The automatic
//! state underneath is kept, and goes on moving with the clock (a cool-down runs out, the ramp
//! moves on), so a release returns to the state the breaker would be in had nobody forced it,
//! less the outcomes a forced-closed breaker ignored. While forced, the healthy flag is down,
//! so every request takes the lock and sees the override.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Which rule opens a closed breaker: failures in a row, or the error rate over a window.
    pub mode: BreakerMode,
    /// Consecutive failures that open the breaker, in `consecutive` mode.
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
    /// In `error_rate` mode: the share of failed requests in the window that opens the
    /// breaker (0.5 = half of them), in (0, 1].
    pub error_rate: f64,
    /// In `error_rate` mode: how far back the window reaches, in milliseconds.
    pub window_ms: u64,
    /// In `error_rate` mode: the fewest outcomes in the window that may open the breaker, so
    /// that one failure out of one does not.
    pub min_requests: u32,
}

/// The rule that opens a closed breaker. In the config file `mode = "consecutive"` (the
/// default) or `mode = "error_rate"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerMode {
    /// `failure_threshold` failures in a row.
    #[default]
    Consecutive,
    /// At least `min_requests` outcomes in the last `window_ms`, and `error_rate` of them
    /// failures.
    ErrorRate,
}

impl BreakerMode {
    /// The name as spelt in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerMode::Consecutive => "consecutive",
            BreakerMode::ErrorRate => "error_rate",
        }
    }
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
            mode: BreakerMode::Consecutive,
            error_rate: 0.5,
            window_ms: 30_000,
            min_requests: 20,
        }
    }
}

impl BreakerConfig {
    /// Checks what deserialising cannot: the ramp's percents each in 1..=99 and rising, and the
    /// error-rate fields in range (whatever the mode, so switching modes cannot reveal a bad
    /// value later). Messages name the field as it is spelt in the config file.
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
        // Written so that NaN fails too.
        if !(self.error_rate > 0.0 && self.error_rate <= 1.0) {
            return Err(format!(
                "error_rate: {} is not in (0, 1] (the share of failed requests that opens the \
                 breaker: 0.5 = half of them)",
                self.error_rate
            ));
        }
        if self.window_ms == 0 {
            return Err("window_ms: must be more than 0".to_string());
        }
        if self.min_requests == 0 {
            return Err(
                "min_requests: must be at least 1 (it keeps a few failures from opening the \
                 breaker on their own)"
                    .to_string(),
            );
        }
        Ok(())
    }

    fn ramp_enabled(&self) -> bool {
        self.recovery_stage_ms > 0 && !self.recovery_percent.is_empty()
    }
}

/// One target's changes to the global `[breaker]` settings: every [`BreakerConfig`] field,
/// under the same name, each optional (`breaker = { failure_threshold = 5, cooldown_ms = 10000 }`
/// on a target). [`BreakerOverrides::apply`] makes the target's config; validate that result,
/// since a value is only wrong or right together with the others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerOverrides {
    pub mode: Option<BreakerMode>,
    pub failure_threshold: Option<u32>,
    pub cooldown_ms: Option<u64>,
    pub max_cooldown_ms: Option<u64>,
    pub jitter: Option<f64>,
    pub recovery_stage_ms: Option<u64>,
    pub recovery_percent: Option<RecoveryPercents>,
    pub error_rate: Option<f64>,
    pub window_ms: Option<u64>,
    pub min_requests: Option<u32>,
}

impl BreakerOverrides {
    /// `base` with every field that is set here replaced.
    pub fn apply(&self, base: BreakerConfig) -> BreakerConfig {
        // Both sides spelt out in full, so that a new field cannot be forgotten here.
        let BreakerOverrides {
            mode,
            failure_threshold,
            cooldown_ms,
            max_cooldown_ms,
            jitter,
            recovery_stage_ms,
            recovery_percent,
            error_rate,
            window_ms,
            min_requests,
        } = *self;
        BreakerConfig {
            mode: mode.unwrap_or(base.mode),
            failure_threshold: failure_threshold.unwrap_or(base.failure_threshold),
            cooldown_ms: cooldown_ms.unwrap_or(base.cooldown_ms),
            max_cooldown_ms: max_cooldown_ms.unwrap_or(base.max_cooldown_ms),
            jitter: jitter.unwrap_or(base.jitter),
            recovery_stage_ms: recovery_stage_ms.unwrap_or(base.recovery_stage_ms),
            recovery_percent: recovery_percent.unwrap_or(base.recovery_percent),
            error_rate: error_rate.unwrap_or(base.error_rate),
            window_ms: window_ms.unwrap_or(base.window_ms),
            min_requests: min_requests.unwrap_or(base.min_requests),
        }
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

impl Serialize for RecoveryPercents {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(serializer)
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
        /// Failures since the last success. Counted in both modes; only the `consecutive`
        /// mode opens on it.
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

/// The reason a forced-open breaker gives for each request it rejects.
pub const FORCED_OPEN_REASON: &str = "forced open by an operator";

/// An operator's override of a breaker's automatic state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forced {
    /// Every request is rejected ([`RejectKind::Open`], reason [`FORCED_OPEN_REASON`]).
    Open,
    /// Every request is admitted, and no outcome changes the state.
    Closed,
}

impl Forced {
    /// `open` or `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Forced::Open => "open",
            Forced::Closed => "closed",
        }
    }
}

/// Which state turned a request away, so the caller knows whether coming back can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// Cooling down after failures (`retry_in` says for how long), or forced open by an
    /// operator (`retry_in` zero: nobody knows when it will be released).
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
    /// `consecutive` or `error_rate`, as in the config file.
    pub mode: &'static str,
    /// Closed: failures since the last success (in both modes). Open or half-open: the
    /// `failure_threshold` that opened it in `consecutive` mode, 0 in `error_rate` mode.
    pub consecutive_failures: u32,
    pub last_trip_reason: Option<&'static str>,
    /// The share of requests the current ramp stage lets through, while recovering.
    pub recovery_percent: Option<u8>,
    /// In `error_rate` mode, the outcomes (successes and failures) in the window now. The
    /// window counts only while closed and is emptied when the breaker opens, so both are 0
    /// in any other state, and always in `consecutive` mode.
    pub window_requests: u64,
    /// Of `window_requests`, the failures.
    pub window_failures: u64,
    /// An operator's override (`state` is then the automatic state underneath it).
    pub forced: Option<Forced>,
}

#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
    /// Kept in step with the state under the lock; what it means depends on the mode.
    ///
    /// `consecutive`: true exactly when closed with no failures counted. Every request asks
    /// the breaker twice (admit, then report success); in that healthy case both answers are
    /// read from this flag, so the hot path takes no lock and writes no memory that the other
    /// worker threads read.
    ///
    /// `error_rate`: true exactly when closed, failures counted or not. Admission still reads
    /// only the flag, but every outcome, successes included, must go into the window, so
    /// reports always take the lock.
    healthy: Healthy,
    /// Entries into each state, for metrics (see [`Breaker::transitions`]).
    transitions: [AtomicU64; 4],
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    /// An operator's override of `state`; the healthy flag is down while it is set.
    forced: Option<Forced>,
    /// Used in `error_rate` mode only; fills only while closed.
    window: ErrorWindow,
}

/// Buckets of the error-rate window; each spans a tenth of `window_ms`.
const WINDOW_BUCKETS: usize = 10;

/// The outcomes of the last `window_ms`. Time is cut into slices of a tenth of the window,
/// numbered from the breaker's creation; each bucket holds one slice's counts and is emptied
/// when its slot comes round again. The counts cover the current slice and the nine before,
/// so an outcome stays between nine tenths of the window and all of it, and then ages out.
#[derive(Debug)]
struct ErrorWindow {
    origin: Instant,
    slice_nanos: u128,
    buckets: [Bucket; WINDOW_BUCKETS],
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// The slice these counts belong to.
    slice: u64,
    requests: u32,
    /// Never more than `requests`: both go up together, and saturate at the same value.
    failures: u32,
}

impl ErrorWindow {
    fn new(origin: Instant, window: Duration) -> Self {
        ErrorWindow {
            origin,
            slice_nanos: (window.as_nanos() / WINDOW_BUCKETS as u128).max(1),
            buckets: [Bucket::default(); WINDOW_BUCKETS],
        }
    }

    fn slice_at(&self, now: Instant) -> u64 {
        let slice = now.saturating_duration_since(self.origin).as_nanos() / self.slice_nanos;
        u64::try_from(slice).unwrap_or(u64::MAX)
    }

    fn record(&mut self, now: Instant, failed: bool) {
        let slice = self.slice_at(now);
        let bucket = &mut self.buckets[(slice % WINDOW_BUCKETS as u64) as usize];
        if bucket.slice < slice {
            *bucket = Bucket {
                slice,
                ..Bucket::default()
            };
        } else if bucket.slice > slice {
            // A whole window older than what the slot holds: out of the window already.
            // (Cannot happen while every `now` is read under the lock.)
            return;
        }
        bucket.requests = bucket.requests.saturating_add(1);
        bucket.failures = bucket.failures.saturating_add(u32::from(failed));
    }

    /// (requests, failures) in the window at `now`.
    fn counts(&self, now: Instant) -> (u64, u64) {
        let slice = self.slice_at(now);
        self.buckets
            .iter()
            .filter(|b| {
                slice
                    .checked_sub(b.slice)
                    .is_some_and(|age| age < WINDOW_BUCKETS as u64)
            })
            .fold((0, 0), |(requests, failures), b| {
                (
                    requests + u64::from(b.requests),
                    failures + u64::from(b.failures),
                )
            })
    }

    fn clear(&mut self) {
        self.buckets = [Bucket::default(); WINDOW_BUCKETS];
    }
}

/// On a cache line of its own, away from the `Arc` counts that every permit writes.
#[derive(Debug)]
#[repr(align(64))]
struct Healthy(AtomicBool);

/// The state under the lock (and the window beside it); dropping it updates the healthy flag
/// before unlocking.
struct StateGuard<'a> {
    inner: MutexGuard<'a, Inner>,
    healthy: &'a AtomicBool,
    mode: BreakerMode,
    /// The state's kind when the lock was taken, to count a change when it is released.
    entered_as: usize,
    transitions: &'a [AtomicU64; 4],
}

impl StateGuard<'_> {
    fn window(&mut self) -> &mut ErrorWindow {
        &mut self.inner.window
    }
}

impl Deref for StateGuard<'_> {
    type Target = BreakerState;
    fn deref(&self) -> &BreakerState {
        &self.inner.state
    }
}

impl DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut BreakerState {
        &mut self.inner.state
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        // Never while recovering: the ramp's admission needs the lock for every request.
        // While closed, the flag admits in both modes; in `consecutive` mode it also says
        // that a success has no count to clear, so it must be down while failures are counted.
        // Forced either way: every request must see the override under the lock.
        let healthy = self.inner.forced.is_none()
            && match self.inner.state {
                BreakerState::Closed {
                    consecutive_failures,
                } => consecutive_failures == 0 || self.mode == BreakerMode::ErrorRate,
                _ => false,
            };
        self.healthy.store(healthy, Ordering::Release);
        let now = kind(&self.inner.state);
        if now != self.entered_as {
            self.transitions[now].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The state's kind as an index: closed, open, half-open, recovering (the order of
/// [`Breaker::transitions`] and [`STATE_NAMES`]).
fn kind(state: &BreakerState) -> usize {
    match state {
        BreakerState::Closed { .. } => 0,
        BreakerState::Open { .. } => 1,
        BreakerState::HalfOpen { .. } => 2,
        BreakerState::Recovering { .. } => 3,
    }
}

/// The state names, in [`Breaker::transitions`] order.
pub const STATE_NAMES: [&str; 4] = ["closed", "open", "half_open", "recovering"];

impl Breaker {
    pub fn new(config: BreakerConfig) -> Arc<Self> {
        Arc::new(Breaker {
            config,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed {
                    consecutive_failures: 0,
                },
                forced: None,
                window: ErrorWindow::new(Instant::now(), Duration::from_millis(config.window_ms)),
            }),
            healthy: Healthy(AtomicBool::new(true)),
            transitions: Default::default(),
        })
    }

    fn lock(&self) -> StateGuard<'_> {
        // A panic while holding this lock cannot leave the state half-written (every state
        // update is one assignment, and the window's arithmetic cannot panic), so a poisoned
        // lock is safe to keep using.
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        StateGuard {
            entered_as: kind(&inner.state),
            inner,
            healthy: &self.healthy.0,
            mode: self.config.mode,
            transitions: &self.transitions,
        }
    }

    /// The lock and the time, read under it (so that the times the window sees never go
    /// back), with the recovery ramp moved on to where the clock says it is. The ramp is
    /// driven by time alone, so every reader that takes the lock sees the same stage whether or
    /// not requests arrived in between.
    fn lock_now(&self) -> (StateGuard<'_>, Instant) {
        let mut state = self.lock();
        let now = Instant::now();
        self.advance_ramp(&mut state, now);
        (state, now)
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

    /// Asks to send one request through. Without a lock while the breaker is healthy (closed,
    /// and in `consecutive` mode with no failures counted).
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
        let (mut state, now) = self.lock_now();
        match state.inner.forced {
            Some(Forced::Open) => {
                return Err(Rejected {
                    retry_in: Duration::ZERO,
                    reason: FORCED_OPEN_REASON,
                    kind: RejectKind::Open,
                })
            }
            // Never a probe: the automatic state underneath is left as it is.
            Some(Forced::Closed) => return Ok(Permit::new(self, false)),
            None => {}
        }
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

    /// The automatic state (underneath an operator's override, if any: see [`Self::forced`]).
    pub fn state(&self) -> BreakerState {
        self.lock_now().0.clone()
    }

    /// Holds the breaker open until [`Self::release`]: every request is rejected with
    /// [`FORCED_OPEN_REASON`]. Requests already admitted finish, and their outcomes count
    /// against the automatic state as usual.
    pub fn force_open(&self) {
        self.force(Some(Forced::Open));
    }

    /// Holds the breaker closed until [`Self::release`]: every request is admitted and no
    /// outcome (of those or of requests admitted before) changes the automatic state.
    pub fn force_closed(&self) {
        self.force(Some(Forced::Closed));
    }

    /// Back to automatic: the state the breaker would be in now, had nobody forced it (less
    /// the outcomes a forced-closed breaker ignored).
    pub fn release(&self) {
        self.force(None);
    }

    /// Sets or clears the override; the healthy flag follows when the lock is released.
    pub fn force(&self, forced: Option<Forced>) {
        let (mut state, _) = self.lock_now();
        state.inner.forced = forced;
    }

    /// The operator's override, if any.
    pub fn forced(&self) -> Option<Forced> {
        self.lock().inner.forced
    }

    pub fn mode(&self) -> BreakerMode {
        self.config.mode
    }

    /// The settings this breaker runs with.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// How many times the breaker has entered each state (closed, open, half-open,
    /// recovering: [`STATE_NAMES`]), since it was made. Counted when the lock is released, so
    /// it costs the healthy path nothing.
    pub fn transitions(&self) -> [u64; 4] {
        self.transitions
            .each_ref()
            .map(|c| c.load(Ordering::Relaxed))
    }

    pub fn snapshot(&self) -> BreakerSnapshot {
        let (mut state, now) = self.lock_now();
        let (window_requests, window_failures) = match self.config.mode {
            BreakerMode::Consecutive => (0, 0),
            BreakerMode::ErrorRate => state.window().counts(now),
        };
        // What an open breaker reports as its run of failures: the run that opened it.
        let opening_run = match self.config.mode {
            BreakerMode::Consecutive => self.config.failure_threshold,
            BreakerMode::ErrorRate => 0,
        };
        let snapshot =
            |name, consecutive_failures, last_trip_reason, recovery_percent| BreakerSnapshot {
                state: name,
                mode: self.config.mode.as_str(),
                consecutive_failures,
                last_trip_reason,
                recovery_percent,
                window_requests,
                window_failures,
                forced: state.inner.forced,
            };
        match *state {
            BreakerState::Closed {
                consecutive_failures,
            } => snapshot("closed", consecutive_failures, None, None),
            BreakerState::Open { reason, .. } => snapshot("open", opening_run, Some(reason), None),
            BreakerState::HalfOpen { .. } => snapshot("half_open", opening_run, None, None),
            BreakerState::Recovering { stage, .. } => snapshot(
                "recovering",
                0,
                None,
                self.config.recovery_percent.get(stage).copied(),
            ),
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
        // Closed with no failures stays exactly that: nothing to write. (In `error_rate` mode
        // the success goes into the window, which takes the lock.)
        if !probe
            && self.config.mode == BreakerMode::Consecutive
            && self.healthy.0.load(Ordering::Acquire)
        {
            return;
        }
        let (mut state, now) = self.lock_now();
        if state.inner.forced == Some(Forced::Closed) {
            return;
        }
        match *state {
            BreakerState::Closed { .. } => {
                if self.config.mode == BreakerMode::ErrorRate {
                    state.window().record(now, false);
                }
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
                        stage_started: now,
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
        let base = Duration::from_millis(self.config.cooldown_ms);
        let max = Duration::from_millis(self.config.max_cooldown_ms.max(self.config.cooldown_ms));
        // Advanced first: a failure after the ramp's time is up counts against a closed breaker.
        let (mut state, now) = self.lock_now();
        if state.inner.forced == Some(Forced::Closed) {
            return;
        }
        match *state {
            BreakerState::Closed {
                consecutive_failures,
            } => {
                let n = consecutive_failures.saturating_add(1);
                let open = match self.config.mode {
                    BreakerMode::Consecutive => n >= self.config.failure_threshold.max(1),
                    BreakerMode::ErrorRate => {
                        let window = state.window();
                        window.record(now, true);
                        self.error_rate_reached(window.counts(now))
                    }
                };
                if open {
                    // So that the breaker closes again on an empty window: nothing is counted
                    // until then.
                    state.window().clear();
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

    /// Whether the window's (requests, failures) open an `error_rate` breaker.
    fn error_rate_reached(&self, (requests, failures): (u64, u64)) -> bool {
        requests >= u64::from(self.config.min_requests.max(1))
            && failures as f64 / requests as f64 >= self.config.error_rate
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
            mode: BreakerMode::Consecutive,
            error_rate: 0.5,
            window_ms: 30_000,
            min_requests: 20,
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

    /// `config()` in error-rate mode: open at 50% failures over 30 s, from 20 requests on.
    /// Its `failure_threshold` of 3 must play no part.
    fn rate_config() -> BreakerConfig {
        BreakerConfig {
            mode: BreakerMode::ErrorRate,
            ..config()
        }
    }

    fn succeed(b: &Arc<Breaker>) {
        b.acquire().expect("admitted").success();
    }

    /// `n` outcomes one second apart, every other one failed, the first a success: never two
    /// failures in a row.
    async fn alternate(b: &Arc<Breaker>, n: usize) {
        for i in 0..n {
            if i % 2 == 0 {
                succeed(b);
            } else {
                fail(b);
            }
            tokio::time::advance(Duration::from_secs(1)).await;
        }
    }

    fn is_closed(b: &Breaker) -> bool {
        matches!(b.state(), BreakerState::Closed { .. })
    }

    fn window(b: &Breaker) -> (u64, u64) {
        let s = b.snapshot();
        (s.window_requests, s.window_failures)
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
                mode: "consecutive",
                consecutive_failures: 0,
                last_trip_reason: None,
                recovery_percent: Some(5),
                window_requests: 0,
                window_failures: 0,
                forced: None,
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
                mode: "consecutive",
                consecutive_failures: 0,
                last_trip_reason: None,
                recovery_percent: None,
                window_requests: 0,
                window_failures: 0,
                forced: None,
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

    #[tokio::test(start_paused = true)]
    async fn error_rate_mode_opens_at_half_failures_over_the_window() {
        let b = Breaker::new(rate_config());
        // 19 outcomes, 9 failed: under the minimum of 20, whatever the rate.
        alternate(&b, 19).await;
        assert_eq!(
            b.snapshot(),
            BreakerSnapshot {
                state: "closed",
                mode: "error_rate",
                consecutive_failures: 0,
                last_trip_reason: None,
                recovery_percent: None,
                window_requests: 19,
                window_failures: 9,
                forced: None,
            }
        );
        assert!(b.healthy.0.load(Ordering::Acquire));
        // The 20th fails: 10 of 20.
        fail(&b);
        assert_eq!(
            b.acquire().unwrap_err(),
            Rejected {
                retry_in: Duration::from_secs(1),
                reason: "server_error",
                kind: RejectKind::Open,
            }
        );
        let snapshot = b.snapshot();
        assert_eq!(snapshot.state, "open");
        assert_eq!(snapshot.last_trip_reason, Some("server_error"));
        assert_eq!(
            snapshot.consecutive_failures, 0,
            "no run of failures opened it"
        );
        assert_eq!(window(&b), (0, 0), "emptied on opening");

        // Just under the rate stays closed; the check follows each failure.
        let b = Breaker::new(rate_config());
        succeed(&b);
        alternate(&b, 19).await;
        assert!(is_closed(&b), "9 of 20");
        assert_eq!(window(&b), (20, 9));
        fail(&b);
        assert!(is_closed(&b), "10 of 21");
        fail(&b);
        assert!(!is_closed(&b), "11 of 22");

        // Consecutive mode never opens on the same pattern, however long it goes on.
        let b = Breaker::new(config());
        alternate(&b, 201).await;
        assert_eq!(
            b.state(),
            BreakerState::Closed {
                consecutive_failures: 0
            }
        );
        let snapshot = b.snapshot();
        assert_eq!(snapshot.mode, "consecutive");
        assert_eq!((snapshot.window_requests, snapshot.window_failures), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn error_rate_mode_needs_min_requests_in_the_window() {
        let b = Breaker::new(rate_config());
        for _ in 0..5 {
            fail(&b);
        }
        // 5 of 5 failed, and more than `failure_threshold` in a row.
        assert_eq!(
            b.state(),
            BreakerState::Closed {
                consecutive_failures: 5
            }
        );
        assert_eq!(window(&b), (5, 5));
        assert!(b.acquire().is_ok());
        for _ in 5..19 {
            fail(&b);
        }
        assert!(is_closed(&b), "19 of 19, still under the minimum");
        fail(&b);
        assert!(!is_closed(&b), "20 of 20");

        // The minimum is the config's.
        let b = Breaker::new(BreakerConfig {
            min_requests: 5,
            ..rate_config()
        });
        for _ in 0..4 {
            fail(&b);
        }
        assert!(is_closed(&b));
        fail(&b);
        assert!(!is_closed(&b), "5 of 5 with min_requests = 5");
    }

    #[tokio::test(start_paused = true)]
    async fn old_outcomes_age_out_of_the_window() {
        // 10 failures, then after `wait` 9 successes and a failure: 11 of 20 if the first ten
        // still count, 1 of 10 if not.
        async fn opens_after(wait: Duration) -> bool {
            let b = Breaker::new(rate_config());
            for _ in 0..10 {
                fail(&b);
            }
            assert_eq!(window(&b), (10, 10));
            tokio::time::advance(wait).await;
            for _ in 0..9 {
                succeed(&b);
            }
            fail(&b);
            !is_closed(&b)
        }
        assert!(!opens_after(Duration::from_secs(31)).await);
        // Under nine tenths of the window, the first ten still count.
        assert!(opens_after(Duration::from_secs(26)).await);

        // The snapshot ages the window too, without new outcomes.
        let b = Breaker::new(rate_config());
        for _ in 0..10 {
            fail(&b);
        }
        tokio::time::advance(Duration::from_secs(15)).await;
        succeed(&b);
        assert_eq!(window(&b), (11, 10));
        tokio::time::advance(Duration::from_secs(16)).await;
        assert_eq!(window(&b), (1, 0), "the first ten are 31 s old");
        tokio::time::advance(Duration::from_secs(15)).await;
        assert_eq!(window(&b), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_rate_trip_probes_and_ramps_like_a_consecutive_one() {
        let b = Breaker::new(rate_config());
        alternate(&b, 20).await;
        assert!(matches!(b.state(), BreakerState::Open { .. }));
        // `alternate` waited a second after the last failure: the cool-down is over.
        let probe = b.acquire().expect("the probe");
        assert!(probe.is_probe());
        assert_eq!(b.acquire().unwrap_err().kind, RejectKind::ProbeInFlight);
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
        tokio::time::advance(STAGE).await;
        assert_eq!(b.snapshot().recovery_percent, Some(25));
        b.acquire()
            .expect("first of the stage")
            .failure("overloaded");
        let rejected = b.acquire().unwrap_err();
        assert_eq!(rejected.kind, RejectKind::Open);
        assert_eq!(rejected.retry_in, Duration::from_millis(2_000), "doubled");

        tokio::time::advance(Duration::from_millis(2_000)).await;
        b.acquire().expect("the next probe").success();
        for _ in 0..3 {
            // Successes while recovering are not counted in the window.
            assert!(!admitted_of(&b, 100).is_empty());
            assert_eq!(window(&b), (0, 0));
            tokio::time::advance(STAGE).await;
        }
        assert_eq!(
            b.state(),
            BreakerState::Closed {
                consecutive_failures: 0
            }
        );
        assert_eq!(window(&b), (0, 0));
        succeed(&b);
        assert_eq!(window(&b), (1, 0), "counting again once closed");
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_starts_empty_after_reclosing() {
        let b = Breaker::new(BreakerConfig {
            mode: BreakerMode::ErrorRate,
            ..no_ramp()
        });
        for _ in 0..20 {
            fail(&b);
        }
        assert!(!is_closed(&b));
        tokio::time::advance(Duration::from_secs(1)).await;
        b.acquire().expect("probe").success();
        assert!(is_closed(&b));
        assert_eq!(window(&b), (0, 0));
        // The 20 failures of a second ago would make this 21 of 21.
        fail(&b);
        assert_eq!(
            b.state(),
            BreakerState::Closed {
                consecutive_failures: 1
            }
        );
        assert_eq!(window(&b), (1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_healthy_flag_follows_the_state_in_error_rate_mode() {
        let b = Breaker::new(rate_config());
        // Here the flag means closed, failures counted or not.
        let flag_matches = |b: &Breaker| {
            let state = b.state();
            assert_eq!(
                b.healthy.0.load(Ordering::Acquire),
                matches!(state, BreakerState::Closed { .. }),
                "{state:?}"
            );
        };
        flag_matches(&b);
        fail(&b);
        flag_matches(&b);
        assert!(b.healthy.0.load(Ordering::Acquire), "a failure counted");
        succeed(&b);
        flag_matches(&b);
        // 20 outcomes, 19 failed.
        for _ in 0..18 {
            fail(&b);
            flag_matches(&b);
        }
        assert!(matches!(b.state(), BreakerState::Open { .. }));
        assert!(!b.healthy.0.load(Ordering::Acquire));
        assert!(b.acquire().is_err(), "open: the flag must not admit");
        tokio::time::advance(Duration::from_secs(1)).await;
        let probe = b.acquire().expect("the probe");
        assert!(probe.is_probe());
        flag_matches(&b);
        probe.success();
        flag_matches(&b);
        assert_eq!(admitted_of(&b, 2), vec![0]);
        flag_matches(&b);
        tokio::time::advance(STAGE * 3).await;
        assert!(is_closed(&b));
        flag_matches(&b);
        assert!(b.healthy.0.load(Ordering::Acquire));
    }

    /// Runs `f` on another thread while this one holds the breaker's lock; whether it
    /// finished within `wait`. Either way it has finished when this returns.
    fn finishes_while_locked(
        b: &Arc<Breaker>,
        wait: Duration,
        f: impl FnOnce() + Send + 'static,
    ) -> bool {
        let guard = b.lock();
        let (done, finished) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            f();
            done.send(()).expect("the test waits");
        });
        let in_time = finished.recv_timeout(wait).is_ok();
        drop(guard);
        thread.join().expect("no panic");
        in_time
    }

    /// Long enough for a thread that needs no lock on a busy machine; a thread that does
    /// need it cannot finish however long it is given.
    const LONG: Duration = Duration::from_secs(20);
    const SHORT: Duration = Duration::from_millis(100);

    #[test]
    fn a_healthy_success_takes_no_lock_in_consecutive_mode_only() {
        let b = Breaker::new(config());
        let other = Arc::clone(&b);
        assert!(finishes_while_locked(&b, LONG, move || {
            other.acquire().expect("healthy").success()
        }));
        // With a failure counted the success has a count to clear: the locked path.
        fail(&b);
        let permit = b.acquire().unwrap();
        assert!(!finishes_while_locked(&b, SHORT, move || permit.success()));
        assert!(b.healthy.0.load(Ordering::Acquire), "cleared");

        // Error-rate mode: admission while closed takes no lock, even with failures counted,
        // but every success is counted under it.
        let b = Breaker::new(rate_config());
        fail(&b);
        let other = Arc::clone(&b);
        assert!(finishes_while_locked(&b, LONG, move || {
            drop(other.acquire().expect("closed"))
        }));
        let permit = b.acquire().unwrap();
        assert!(!finishes_while_locked(&b, SHORT, move || permit.success()));
        assert_eq!(window(&b), (2, 1));
    }

    #[test]
    fn overrides_replace_the_fields_they_set_and_keep_the_rest() {
        let base = BreakerConfig::default();
        assert_eq!(BreakerOverrides::default().apply(base), base);
        let some = BreakerOverrides {
            failure_threshold: Some(5),
            cooldown_ms: Some(10_000),
            ..BreakerOverrides::default()
        };
        assert_eq!(
            some.apply(base),
            BreakerConfig {
                failure_threshold: 5,
                cooldown_ms: 10_000,
                ..base
            }
        );
        // Every field, each to a value other than the base's.
        let recovery_percent = RecoveryPercents::new(&[10, 50]).unwrap();
        let all = BreakerOverrides {
            mode: Some(BreakerMode::ErrorRate),
            failure_threshold: Some(7),
            cooldown_ms: Some(1_000),
            max_cooldown_ms: Some(9_000),
            jitter: Some(0.25),
            recovery_stage_ms: Some(2_000),
            recovery_percent: Some(recovery_percent),
            error_rate: Some(0.3),
            window_ms: Some(60_000),
            min_requests: Some(50),
        };
        let expected = BreakerConfig {
            mode: BreakerMode::ErrorRate,
            failure_threshold: 7,
            cooldown_ms: 1_000,
            max_cooldown_ms: 9_000,
            jitter: 0.25,
            recovery_stage_ms: 2_000,
            recovery_percent,
            error_rate: 0.3,
            window_ms: 60_000,
            min_requests: 50,
        };
        assert_eq!(all.apply(base), expected);
        assert_eq!(all.apply(config()), expected, "whatever the base");
    }

    /// Reads a `[breaker]`-style table from TOML, as the gateway's config does.
    fn read<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn overrides_and_the_new_fields_read_from_a_table() {
        let o: BreakerOverrides = read("failure_threshold = 5\ncooldown_ms = 10000").unwrap();
        assert_eq!(
            o,
            BreakerOverrides {
                failure_threshold: Some(5),
                cooldown_ms: Some(10_000),
                ..BreakerOverrides::default()
            }
        );
        assert_eq!(
            read::<BreakerOverrides>("").unwrap(),
            BreakerOverrides::default()
        );
        let o: BreakerOverrides = read(
            "mode = \"error_rate\"\nerror_rate = 0.25\nwindow_ms = 60000\nmin_requests = 50\njitter = 0.0\nrecovery_percent = [10, 50]",
        )
        .unwrap();
        assert_eq!(
            o,
            BreakerOverrides {
                mode: Some(BreakerMode::ErrorRate),
                error_rate: Some(0.25),
                window_ms: Some(60_000),
                min_requests: Some(50),
                jitter: Some(0.0),
                recovery_percent: Some(RecoveryPercents::new(&[10, 50]).unwrap()),
                ..BreakerOverrides::default()
            }
        );
        let e = read::<BreakerOverrides>("threshold = 5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `threshold`"), "{e}");
        let e = read::<BreakerOverrides>("mode = \"errorrate\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `errorrate`"), "{e}");

        // The global section: the new fields and their defaults.
        let c: BreakerConfig = read("failure_threshold = 4").unwrap();
        assert_eq!(
            c,
            BreakerConfig {
                failure_threshold: 4,
                ..BreakerConfig::default()
            }
        );
        assert_eq!(
            (c.mode, c.error_rate, c.window_ms, c.min_requests),
            (BreakerMode::Consecutive, 0.5, 30_000, 20)
        );
        let c: BreakerConfig = read("mode = \"error_rate\"\nmin_requests = 10").unwrap();
        assert_eq!(
            c,
            BreakerConfig {
                mode: BreakerMode::ErrorRate,
                min_requests: 10,
                ..BreakerConfig::default()
            }
        );
        let c: BreakerConfig = read("mode = \"consecutive\"").unwrap();
        assert_eq!(c.mode, BreakerMode::Consecutive);
        assert_eq!(c.mode.as_str(), "consecutive");
        assert_eq!(BreakerMode::ErrorRate.as_str(), "error_rate");
    }

    #[test]
    fn validate_checks_the_error_rate_fields() {
        for mode in [BreakerMode::Consecutive, BreakerMode::ErrorRate] {
            let base = BreakerConfig {
                mode,
                ..BreakerConfig::default()
            };
            assert_eq!(base.validate(), Ok(()));
            for bad in [0.0, -0.5, 1.01, f64::NAN, f64::INFINITY] {
                let e = BreakerConfig {
                    error_rate: bad,
                    ..base
                }
                .validate()
                .expect_err("invalid");
                assert!(e.starts_with("error_rate: "), "{bad}: {e}");
            }
            for good in [1.0, 0.5, 0.001] {
                assert_eq!(
                    BreakerConfig {
                        error_rate: good,
                        ..base
                    }
                    .validate(),
                    Ok(()),
                    "{good}"
                );
            }
            let e = BreakerConfig {
                window_ms: 0,
                ..base
            }
            .validate()
            .unwrap_err();
            assert!(e.starts_with("window_ms: "), "{e}");
            let e = BreakerConfig {
                min_requests: 0,
                ..base
            }
            .validate()
            .unwrap_err();
            assert!(e.starts_with("min_requests: "), "{e}");
            for ok in [
                BreakerConfig {
                    window_ms: 1,
                    ..base
                },
                BreakerConfig {
                    min_requests: 1,
                    ..base
                },
            ] {
                assert_eq!(ok.validate(), Ok(()));
            }
        }
    }
}

#[cfg(test)]
mod transition_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn every_state_change_is_counted_once() {
        let b = Breaker::new(BreakerConfig {
            failure_threshold: 1,
            cooldown_ms: 1_000,
            jitter: 0.0,
            recovery_stage_ms: 1_000,
            recovery_percent: RecoveryPercents::new(&[50]).unwrap(),
            ..BreakerConfig::default()
        });
        b.acquire().unwrap().success();
        assert_eq!(b.transitions(), [0, 0, 0, 0], "no change, nothing counted");
        b.acquire().unwrap().failure("timeout");
        tokio::time::advance(Duration::from_secs(1)).await;
        let probe = b.acquire().unwrap();
        assert_eq!(b.transitions(), [0, 1, 1, 0]);
        probe.success();
        tokio::time::advance(Duration::from_secs(1)).await;
        let _ = b.snapshot();
        assert_eq!(b.transitions(), [1, 1, 1, 1], "recovering, then closed");
    }
}

#[cfg(test)]
mod forced_tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            failure_threshold: 3,
            cooldown_ms: 1_000,
            max_cooldown_ms: 2_500,
            jitter: 0.0,
            recovery_stage_ms: 10_000,
            recovery_percent: RecoveryPercents::DEFAULT,
            ..BreakerConfig::default()
        }
    }

    fn healthy(b: &Breaker) -> bool {
        b.healthy.0.load(Ordering::Acquire)
    }

    fn fail(b: &Arc<Breaker>) {
        b.acquire().expect("admitted").failure("server_error");
    }

    #[tokio::test(start_paused = true)]
    async fn forced_open_rejects_with_its_reason_and_lowers_the_flag() {
        let b = Breaker::new(config());
        assert!(healthy(&b));
        b.force_open();
        assert!(!healthy(&b), "the flag must not admit past the override");
        for _ in 0..3 {
            let r = b.acquire().unwrap_err();
            assert_eq!(r.reason, FORCED_OPEN_REASON);
            assert_eq!(r.kind, RejectKind::Open);
            assert_eq!(r.retry_in, Duration::ZERO);
        }
        assert_eq!(
            b.acquire_past_ramp().unwrap_err().reason,
            FORCED_OPEN_REASON
        );
        let s = b.snapshot();
        assert_eq!((s.state, s.forced), ("closed", Some(Forced::Open)));
        assert_eq!(b.forced(), Some(Forced::Open));
        assert_eq!(b.transitions(), [0, 0, 0, 0], "forcing is no transition");
        b.release();
        assert!(healthy(&b), "released: the fast path is back");
        assert_eq!(b.forced(), None);
        b.acquire().expect("closed again").success();
    }

    #[tokio::test(start_paused = true)]
    async fn a_permit_from_before_forced_open_still_counts() {
        let b = Breaker::new(config());
        fail(&b);
        fail(&b);
        let late = b.acquire().unwrap();
        b.force_open();
        late.failure("timeout");
        b.release();
        assert!(
            matches!(b.state(), BreakerState::Open { .. }),
            "the third failure opened the automatic state"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn forced_closed_admits_and_failures_do_not_open_it() {
        let b = Breaker::new(config());
        b.force_closed();
        assert!(!healthy(&b));
        for _ in 0..10 {
            let p = b.acquire().expect("forced closed admits");
            assert!(!p.is_probe());
            p.failure("server_error");
        }
        assert_eq!(
            b.state(),
            BreakerState::Closed {
                consecutive_failures: 0
            }
        );
        assert_eq!(b.snapshot().forced, Some(Forced::Closed));
        b.release();
        assert!(healthy(&b));
        // Automatic again: three failures open it.
        for _ in 0..3 {
            fail(&b);
        }
        assert!(b.acquire().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn forced_closed_over_an_open_breaker_admits_and_release_resumes_the_cool_down() {
        let b = Breaker::new(config());
        for _ in 0..3 {
            fail(&b);
        }
        b.force_closed();
        b.acquire()
            .expect("admitted though open")
            .failure("server_error");
        b.acquire().expect("admitted").success();
        assert!(!healthy(&b));
        b.release();
        assert!(!healthy(&b), "open underneath: the flag stays down");
        assert_eq!(b.acquire().unwrap_err().kind, RejectKind::Open);
        tokio::time::advance(Duration::from_millis(1_000)).await;
        let probe = b.acquire().expect("the cool-down ran on while forced");
        assert!(probe.is_probe());
        probe.success();
        assert_eq!(b.snapshot().state, "recovering");
    }

    #[tokio::test(start_paused = true)]
    async fn release_returns_to_the_state_the_clock_moved_on_to() {
        let b = Breaker::new(config());
        for _ in 0..3 {
            fail(&b);
        }
        tokio::time::advance(Duration::from_millis(1_000)).await;
        b.acquire().expect("probe").success();
        assert_eq!(b.snapshot().state, "recovering");
        b.force_open();
        // The ramp ends while forced open.
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(b.acquire().is_err());
        assert_eq!(b.snapshot().state, "closed", "the automatic state moved on");
        b.release();
        assert!(healthy(&b), "closed with no failures: the fast path again");
        assert!(b.acquire().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn forced_states_lower_the_flag_in_error_rate_mode_too() {
        let b = Breaker::new(BreakerConfig {
            mode: BreakerMode::ErrorRate,
            min_requests: 2,
            ..config()
        });
        fail(&b);
        assert!(
            healthy(&b),
            "error_rate: closed with failures still admits by flag"
        );
        b.force_closed();
        assert!(!healthy(&b));
        for _ in 0..5 {
            fail(&b);
        }
        assert_eq!(
            b.snapshot().window_requests,
            1,
            "forced closed counted nothing"
        );
        b.force_open();
        assert!(!healthy(&b));
        b.release();
        assert!(healthy(&b));
    }
}
