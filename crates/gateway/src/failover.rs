//! Failover across a route's targets: the one loop both the plain and the streamed paths use.
//!
//! The targets are taken in the order the route's strategy chose for this request
//! ([`switchyard_routing::strategy::Router`]). Per target: a spend cap or the breaker may skip
//! it; the attempt runs; its error class decides (through [`ErrorClass::policy`]) whether to
//! stop, retry the same target, or move on. Refinements:
//! - a short `Retry-After` on a 429 is waited out on the same target and a 500 is retried once
//!   there (both within the retry budget);
//! - a context-length failure moves on only to targets with a larger configured window;
//! - a target its breaker's recovery ramp turns away is tried again, past the ramp, only when
//!   every other target has failed, so the ramp never fails a request;
//! - with hedging, the first attempt that has not produced content after `hedge_after` is
//!   joined by the same request on the next target; the first to produce content wins and the
//!   other is cancelled, charged to no breaker.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use switchyard_core::{ErrorClass, UpstreamError};
use switchyard_resilience::{Permit, RejectKind, RetryBudget};
use switchyard_routing::strategy::Order;
use tokio::time::Instant;

use crate::errors::{AttemptRecord, GatewayError};
use crate::policy::Reaction;
use crate::route::{Route, RouteTarget};

/// The attempt that succeeded, with the breaker permit whose outcome is still to be reported
/// (a stream reports it when it ends).
pub struct Won<T> {
    pub value: T,
    pub target: Arc<RouteTarget>,
    pub permit: Permit,
    /// When the winning attempt started.
    pub started: Instant,
    /// The attempts before the one that won (failures, skips, a cancelled hedge).
    pub attempts: Vec<AttemptRecord>,
}

impl<T> Won<T> {
    /// Real attempts made, the winning one included (for `x-switchyard-attempts`).
    pub fn attempt_count(&self) -> usize {
        crate::errors::attempt_count(&self.attempts) + 1
    }
}

pub struct Policy<'a> {
    pub budget: &'a RetryBudget,
    pub max_retry_after: Duration,
    pub deadline: Instant,
    /// Start the first attempt again on the next target when it has produced no content
    /// after this long (resolved from the route's `hedge_after`).
    pub hedge_after: Option<Duration>,
}

/// What to do after a failed attempt.
enum Next {
    Stop(GatewayError),
    /// Wait, then try the same target again.
    Retry(Duration),
    /// Wait (the class's configured delay before failing over), then try the next target.
    MoveOn(Duration),
}

/// The state of one failover run that the failure handling reads and updates.
struct Run<'r> {
    route: &'r Route,
    attempts: Vec<AttemptRecord>,
    shortest_wait: Option<Duration>,
    /// Set after a context-length failure: only targets with a larger window are worth trying.
    needs_window: Option<u32>,
    context_error: Option<(UpstreamError, String)>,
    /// Targets skipped for their spend cap, and the soonest a cap resets.
    capped: usize,
    cap_resets_in: Option<Duration>,
}

/// Runs the attempts in `order`. `attempt` gets the target and the time the attempt starts,
/// read once here for the deadline check and passed on so that its own timeouts need not
/// read the clock again.
pub async fn run<T, F, Fut>(
    route: &Route,
    order: Order,
    policy: &Policy<'_>,
    mut attempt: F,
) -> Result<Won<T>, GatewayError>
where
    F: FnMut(Arc<RouteTarget>, Instant) -> Fut,
    Fut: Future<Output = Result<T, UpstreamError>>,
{
    policy.budget.deposit();
    let mut run = Run {
        route,
        attempts: Vec::new(),
        shortest_wait: None,
        needs_window: None,
        context_error: None,
        capped: 0,
        cap_resets_in: None,
    };
    // Targets the recovery ramp turned away, tried past it once the order is used up.
    let mut deferred = Order::default();
    let mut hedged = false;
    let mut pos = 0;
    let mut deferred_pos = 0;
    loop {
        let (i, past_ramp) = if pos < order.len() {
            pos += 1;
            (order.get(pos - 1), false)
        } else if deferred_pos < deferred.len() {
            deferred_pos += 1;
            (deferred.get(deferred_pos - 1), true)
        } else {
            break;
        };
        let Some(target) = route.targets.get(i) else {
            continue;
        };
        if hedged
            && run
                .attempts
                .iter()
                .any(|a| a.target == target.name && !a.skipped)
        {
            // Already tried as the hedge of an earlier attempt.
            continue;
        }
        // Nothing left to try after this one (a ramp-deferred target would still come).
        let is_last = pos >= order.len() && deferred_pos >= deferred.len();
        if let Some(min) = run.needs_window {
            if target.context_window.is_none_or(|w| w <= min) {
                run.attempts.push(AttemptRecord::skipped(
                    target,
                    "context window not larger than the one exceeded",
                ));
                continue;
            }
        }
        if target.is_drained() {
            run.attempts
                .push(AttemptRecord::skipped(target, "drained by an operator"));
            continue;
        }
        if let Some(cap) = &target.cap {
            let now_ms = crate::accounting::now_ms();
            if cap.is_over(now_ms) {
                let resets_in = cap.resets_in(now_ms);
                run.capped += 1;
                run.cap_resets_in = Some(run.cap_resets_in.map_or(resets_in, |w| w.min(resets_in)));
                run.attempts.push(AttemptRecord::skipped(
                    target,
                    &format!(
                        "spend cap reached (${:.4} of ${:.4}; resets in {} s)",
                        cap.spent(now_ms),
                        cap.limit(),
                        resets_in.as_secs()
                    ),
                ));
                continue;
            }
        }
        // Same-target retries made so far.
        let mut retries = 0u32;
        loop {
            let started = Instant::now();
            if started >= policy.deadline {
                run.attempts
                    .push(AttemptRecord::skipped(target, "request deadline passed"));
                return Err(GatewayError::Exhausted {
                    attempts: run.attempts,
                });
            }
            let admitted = if past_ramp {
                target.breaker.acquire_past_ramp()
            } else {
                target.breaker.acquire()
            };
            let mut permit = match admitted {
                Ok(p) => p,
                Err(rejected) if rejected.kind == RejectKind::Ramp => {
                    deferred.push(i);
                    run.attempts.push(AttemptRecord::skipped(
                        target,
                        "recovering: its breaker's ramp sent this request elsewhere",
                    ));
                    break;
                }
                Err(rejected) => {
                    run.shortest_wait = Some(
                        run.shortest_wait
                            .map_or(rejected.retry_in, |w| w.min(rejected.retry_in)),
                    );
                    run.attempts.push(AttemptRecord::skipped(
                        target,
                        &format!("circuit open ({})", rejected.reason),
                    ));
                    break;
                }
            };
            let primary = attempt(Arc::clone(target), started);
            // Hedge once per request, on the first real attempt, when a next target exists.
            let hedge = match policy.hedge_after {
                Some(after) if !hedged && retries == 0 => {
                    hedged = true;
                    order
                        .iter()
                        .skip(pos)
                        .filter_map(|j| route.targets.get(j))
                        .find(|t| {
                            !t.is_drained()
                                && t.cap
                                    .as_ref()
                                    .is_none_or(|c| !c.is_over(crate::accounting::now_ms()))
                        })
                        .map(|t| (after, Arc::clone(t)))
                }
                _ => None,
            };
            let result = match hedge {
                None => primary.await,
                Some((after, other)) => {
                    match race(
                        target,
                        permit,
                        started,
                        primary,
                        &other,
                        after,
                        policy,
                        &mut attempt,
                        &mut run,
                    )
                    .await
                    {
                        Raced::Won(won) => return Ok(won),
                        Raced::Stop(err) => return Err(err),
                        Raced::BothFailed => break,
                        // No hedge ran: an ordinary failure of this attempt.
                        Raced::PrimaryFailed(err, returned) => {
                            permit = returned;
                            Err(err)
                        }
                    }
                }
            };
            match result {
                Ok(value) => {
                    return Ok(Won {
                        value,
                        target: Arc::clone(target),
                        permit,
                        started,
                        attempts: run.attempts,
                    });
                }
                Err(err) => match run.on_failure(target, err, permit, policy, is_last, retries) {
                    Next::Stop(e) => return Err(e),
                    Next::Retry(wait) => {
                        retries += 1;
                        tokio::time::sleep(wait).await;
                    }
                    Next::MoveOn(delay) => {
                        if !delay.is_zero() && Instant::now() + delay < policy.deadline {
                            tokio::time::sleep(delay).await;
                        }
                        break;
                    }
                },
            }
        }
    }
    Err(run.finish())
}

impl Run<'_> {
    /// Records a failed attempt (breaker, statistics, the attempt list) and says what follows,
    /// by the route's reaction to the class. `retries` is how many same-target retries this
    /// target has had in this request.
    fn on_failure(
        &mut self,
        target: &RouteTarget,
        err: UpstreamError,
        permit: Permit,
        policy: &Policy<'_>,
        is_last: bool,
        retries: u32,
    ) -> Next {
        let class = err.class;
        let reaction = *self.route.policy.reaction(class);
        tracing::warn!(
            route = %self.route.alias,
            target = %target.name,
            class = class.name(),
            status = err.status,
            "attempt failed: {}",
            err.message
        );
        if reaction.counts_against_breaker {
            permit.failure(class.name());
        } else if class != ErrorClass::Unsupported {
            // The target answered sanely (or the route chose not to hold this against it).
            permit.success();
        }
        // The statistics show the target's health whatever the breaker is told.
        if class.policy().trips_breaker || reaction.counts_against_breaker {
            target.stats.record_failure(Instant::now(), class.name());
        }
        self.attempts.push(AttemptRecord::failure(target, &err));
        let metrics = &self.route.metrics;
        metrics.attempt_failed(&target.metrics, class);
        if class == ErrorClass::ContextLengthExceeded {
            // Never the same model again; a larger window may still fit.
            self.needs_window = Some(
                self.needs_window
                    .unwrap_or(0)
                    .max(target.context_window.unwrap_or(0)),
            );
            if self.context_error.is_none() {
                let mut err = err;
                if let Some(w) = target.context_window {
                    err.message = format!(
                        "{} (context window of {}: {w} tokens)",
                        err.message, target.name
                    );
                }
                self.context_error = Some((err, target.name.clone()));
            }
            return Next::MoveOn(Duration::ZERO);
        }
        if let Some(wait) = same_target_wait(class, &reaction, policy, is_last, retries) {
            if Instant::now() + wait < policy.deadline && policy.budget.withdraw() {
                metrics.retried(&target.metrics, class);
                return Next::Retry(wait);
            }
        }
        let fail_over = reaction.fail_over
            || (class == ErrorClass::ContentFiltered && self.route.failover_on_content_filter);
        if !fail_over {
            return Next::Stop(GatewayError::Upstream {
                error: err,
                target: target.name.clone(),
                attempts: std::mem::take(&mut self.attempts),
            });
        }
        if !is_last {
            metrics.failed_over(&target.metrics, class);
        }
        Next::MoveOn(if is_last {
            Duration::ZERO
        } else {
            reaction.delay
        })
    }

    /// The error once every target has been tried or skipped.
    fn finish(self) -> GatewayError {
        let attempts = self.attempts;
        if let Some((error, target)) = self.context_error {
            // Nothing larger answered: the client gets the clean 400 that names the limit.
            return GatewayError::Upstream {
                error,
                target,
                attempts,
            };
        }
        if attempts.iter().all(|a| a.skipped) {
            if self.capped > 0 && self.shortest_wait.is_none() {
                return GatewayError::SpendCapped {
                    attempts,
                    retry_in: self.cap_resets_in.unwrap_or_default(),
                };
            }
            return GatewayError::Unavailable {
                attempts,
                retry_in: self.shortest_wait.unwrap_or_default(),
            };
        }
        GatewayError::Exhausted { attempts }
    }
}

/// How a hedged attempt ended.
enum Raced<T> {
    Won(Won<T>),
    /// One of the two failed with a class that stops failover.
    Stop(GatewayError),
    /// Both failed; both failures are recorded.
    BothFailed,
    /// No hedge was started (no budget, no breaker admission, or the primary ended first),
    /// and the primary failed: the caller handles it as any failure.
    PrimaryFailed(UpstreamError, Permit),
}

/// Runs `primary`; if it has produced nothing after `after`, starts the same request on
/// `other` and takes whichever produces content first. The loser's future is dropped, which
/// drops its upstream connection; its permit goes unreported, so no breaker is charged for
/// the cancellation.
#[allow(clippy::too_many_arguments)]
async fn race<T, F, Fut>(
    target: &Arc<RouteTarget>,
    permit: Permit,
    started: Instant,
    primary: Fut,
    other: &Arc<RouteTarget>,
    after: Duration,
    policy: &Policy<'_>,
    attempt: &mut F,
    run: &mut Run<'_>,
) -> Raced<T>
where
    F: FnMut(Arc<RouteTarget>, Instant) -> Fut,
    Fut: Future<Output = Result<T, UpstreamError>>,
{
    let mut primary = pin!(primary);
    let hedge_at = (started + after).min(policy.deadline);
    let early = tokio::select! {
        biased;
        r = &mut primary => Some(r),
        _ = tokio::time::sleep_until(hedge_at) => None,
    };
    let won = |value, target: &Arc<RouteTarget>, permit, started, attempts| {
        Raced::Won(Won {
            value,
            target: Arc::clone(target),
            permit,
            started,
            attempts,
        })
    };
    match early {
        Some(Ok(value)) => {
            return won(
                value,
                target,
                permit,
                started,
                std::mem::take(&mut run.attempts),
            )
        }
        Some(Err(e)) => return Raced::PrimaryFailed(e, permit),
        None => {}
    }
    // A hedge is one more request upstream: it must be paid for from the retry budget, so
    // hedging can never more than add the budget's share of load.
    let hedge_permit = match other.breaker.acquire() {
        Ok(p) if policy.budget.withdraw() => Some(p),
        _ => None,
    };
    let Some(hedge_permit) = hedge_permit else {
        return match primary.await {
            Ok(value) => won(
                value,
                target,
                permit,
                started,
                std::mem::take(&mut run.attempts),
            ),
            Err(e) => Raced::PrimaryFailed(e, permit),
        };
    };
    tracing::info!(route = %run.route.alias, from = %target.name, to = %other.name, "hedging: no content after {} ms", after.as_millis());
    run.route.metrics.hedged(&other.metrics);
    let hedge_started = Instant::now();
    let mut hedge = pin!(attempt(Arc::clone(other), hedge_started));
    let mut primary_permit = Some(permit);
    let mut hedge_permit = Some(hedge_permit);
    loop {
        let (is_primary, result) = tokio::select! {
            r = &mut primary, if primary_permit.is_some() => (true, r),
            r = &mut hedge, if hedge_permit.is_some() => (false, r),
        };
        let (this, that, this_permit, that_permit, this_started) = if is_primary {
            (
                target,
                other,
                primary_permit.take(),
                hedge_permit.take(),
                started,
            )
        } else {
            (
                other,
                target,
                hedge_permit.take(),
                primary_permit.take(),
                hedge_started,
            )
        };
        let Some(this_permit) = this_permit else {
            return Raced::BothFailed;
        };
        match result {
            Ok(value) => {
                if that_permit.is_some() {
                    run.attempts.push(AttemptRecord::cancelled(that, this));
                    run.route.metrics.attempt_cancelled(&that.metrics);
                }
                drop(that_permit);
                return won(
                    value,
                    this,
                    this_permit,
                    this_started,
                    std::mem::take(&mut run.attempts),
                );
            }
            Err(e) => {
                // The other one is still running: it is the failover now.
                // No same-target retry while the other attempt runs.
                if let Next::Stop(err) =
                    run.on_failure(this, e, this_permit, policy, false, u32::MAX)
                {
                    return Raced::Stop(err);
                }
                match that_permit {
                    Some(p) if is_primary => hedge_permit = Some(p),
                    Some(p) => primary_permit = Some(p),
                    None => return Raced::BothFailed,
                }
            }
        }
    }
}

/// How long to wait before retry number `done + 1` on the same target, if the reaction
/// allows one. A 429's short `Retry-After` is always waited out once (that is what the
/// provider asked for); without a hint, and with no retries configured, the last target backs
/// off once, jittered, rather than answer 429 at once.
fn same_target_wait(
    class: ErrorClass,
    reaction: &Reaction,
    policy: &Policy<'_>,
    is_last: bool,
    done: u32,
) -> Option<Duration> {
    match class {
        ErrorClass::RateLimited {
            retry_after_ms: Some(ms),
        } if done < reaction.retries.max(1) => {
            let wait = Duration::from_millis(ms);
            (wait <= policy.max_retry_after).then_some(wait)
        }
        ErrorClass::RateLimited {
            retry_after_ms: None,
        } if reaction.retries == 0 => {
            (is_last && done == 0).then(|| Duration::from_millis(250 + rand_jitter_ms(500)))
        }
        _ if done < reaction.retries => Some(reaction.backoff_for(done)),
        _ => None,
    }
}

fn rand_jitter_ms(max: u64) -> u64 {
    rand::random_range(0..max.max(1))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn route(extra: &str, route_lines: &str) -> Arc<Route> {
        let text = format!(
            "{extra}\n[models.chat]\n{route_lines}\ntargets = [\n  {{ name = \"a\", provider = \"openai\", base_url = \"http://127.0.0.1:9\", model = \"ma\", price = {{ input_per_mtok = 1.0, output_per_mtok = 1.0 }}, cost_cap = {{ usd = 1.0, period = \"1d\" }} }},\n  {{ name = \"b\", provider = \"openai\", base_url = \"http://127.0.0.1:10\", model = \"mb\" }},\n]\n"
        );
        let config = crate::config::parse(&text, "t", &|_| None).expect("config");
        crate::route::build(&config).expect("routes").routes["chat"].clone()
    }

    fn policy(budget: &RetryBudget, hedge_after: Option<Duration>) -> Policy<'_> {
        Policy {
            budget,
            max_retry_after: Duration::from_secs(2),
            deadline: Instant::now() + Duration::from_secs(60),
            hedge_after,
        }
    }

    /// Counts the attempts dropped before they finished (cancelled).
    struct Cancelled<'a>(&'a AtomicUsize, bool);
    impl Drop for Cancelled<'_> {
        fn drop(&mut self) {
            if !self.1 {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// An attempt that answers after `ms`, or fails with a 503 when `fail`.
    async fn answer(
        name: String,
        ms: u64,
        fail: bool,
        cancelled: &AtomicUsize,
    ) -> Result<String, UpstreamError> {
        let mut guard = Cancelled(cancelled, false);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        guard.1 = true;
        if fail {
            Err(UpstreamError::new(ErrorClass::Overloaded, "busy"))
        } else {
            Ok(name)
        }
    }

    fn both(r: &Route) -> Order {
        Order::identity(r.targets.len())
    }

    #[tokio::test(start_paused = true)]
    async fn a_hedge_wins_and_the_slow_attempt_is_cancelled_uncharged() {
        let r = route("", "");
        let budget = RetryBudget::new(1.0, 10.0);
        let cancelled = AtomicUsize::new(0);
        let start = Instant::now();
        let won = run(
            &r,
            both(&r),
            &policy(&budget, Some(Duration::from_millis(100))),
            |t, _| {
                let ms = if t.name == "a" { 1_000 } else { 10 };
                answer(t.name.clone(), ms, false, &cancelled)
            },
        )
        .await
        .expect("an answer");
        assert_eq!(won.value, "b");
        assert_eq!(start.elapsed(), Duration::from_millis(110));
        assert_eq!(cancelled.load(Ordering::SeqCst), 1, "the loser was dropped");
        assert_eq!(won.attempt_count(), 2);
        assert!(won.attempts[0].message.contains("cancelled"));
        assert_eq!(r.targets[0].breaker.snapshot().consecutive_failures, 0);
        assert_eq!(r.targets[0].stats.summary(Instant::now()).failures, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_before_hedge_after_starts_no_hedge() {
        let r = route("", "");
        let budget = RetryBudget::new(1.0, 10.0);
        let cancelled = AtomicUsize::new(0);
        let calls = AtomicUsize::new(0);
        let won = run(
            &r,
            both(&r),
            &policy(&budget, Some(Duration::from_millis(100))),
            |t, _| {
                calls.fetch_add(1, Ordering::SeqCst);
                answer(t.name.clone(), 99, false, &cancelled)
            },
        )
        .await
        .expect("an answer");
        assert_eq!(won.value, "a");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn without_budget_there_is_no_hedge() {
        let r = route("", "");
        let budget = RetryBudget::new(0.0, 0.0);
        assert!(!budget.withdraw(), "nothing to spend");
        let cancelled = AtomicUsize::new(0);
        let won = run(
            &r,
            both(&r),
            &policy(&budget, Some(Duration::from_millis(100))),
            |t, _| {
                let ms = if t.name == "a" { 1_000 } else { 10 };
                answer(t.name.clone(), ms, false, &cancelled)
            },
        )
        .await
        .expect("an answer");
        assert_eq!(won.value, "a", "waited for the first target");
        assert_eq!(cancelled.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_primary_that_fails_after_the_hedge_started_leaves_the_hedge_to_answer() {
        let r = route("", "");
        let budget = RetryBudget::new(1.0, 10.0);
        let cancelled = AtomicUsize::new(0);
        let won = run(
            &r,
            both(&r),
            &policy(&budget, Some(Duration::from_millis(50))),
            |t, _| {
                let (ms, fail) = if t.name == "a" {
                    (80, true)
                } else {
                    (200, false)
                };
                answer(t.name.clone(), ms, fail, &cancelled)
            },
        )
        .await
        .expect("an answer");
        assert_eq!(won.value, "b");
        assert_eq!(
            r.targets[0].breaker.snapshot().consecutive_failures,
            1,
            "a real failure counts"
        );
        assert_eq!(r.targets[0].stats.summary(Instant::now()).failures, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_recovering_target_turned_away_is_tried_again_when_the_rest_fail() {
        let r = route(
            "[breaker]\nfailure_threshold = 1\ncooldown_ms = 1000\njitter = 0.0\nrecovery_stage_ms = 60000\nrecovery_percent = [1]\n",
            "",
        );
        let a = &r.targets[0].breaker;
        a.acquire().unwrap().failure("overloaded");
        tokio::time::advance(Duration::from_secs(1)).await;
        a.acquire().unwrap().success();
        // The first request of a stage is let through: use it up.
        drop(a.acquire().unwrap());
        let budget = RetryBudget::new(0.0, 0.0);
        let cancelled = AtomicUsize::new(0);
        let calls = std::sync::Mutex::new(Vec::new());
        let won = run(&r, both(&r), &policy(&budget, None), |t, _| {
            calls.lock().unwrap().push(t.name.clone());
            answer(t.name.clone(), 1, t.name == "b", &cancelled)
        })
        .await
        .expect("answered by the recovering target");
        assert_eq!(won.value, "a");
        assert_eq!(*calls.lock().unwrap(), ["b", "a"]);
        assert!(won.attempts[0].message.contains("recovering"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_target_over_its_spend_cap_is_skipped_and_all_capped_is_its_own_error() {
        let r = route("", "");
        let a = &r.targets[0];
        a.cap
            .as_ref()
            .unwrap()
            .add(1.5, crate::accounting::now_ms());
        let budget = RetryBudget::new(0.0, 0.0);
        let cancelled = AtomicUsize::new(0);
        let won = run(&r, both(&r), &policy(&budget, None), |t, _| {
            answer(t.name.clone(), 1, false, &cancelled)
        })
        .await
        .expect("an answer");
        assert_eq!(won.value, "b");
        assert!(won.attempts[0].message.contains("spend cap"));
        let only_a = Order::identity(1);
        let err = run(&r, only_a, &policy(&budget, None), |t, _| {
            answer(t.name.clone(), 1, false, &cancelled)
        })
        .await
        .err()
        .expect("capped");
        assert!(
            matches!(err, GatewayError::SpendCapped { retry_in, .. } if retry_in > Duration::ZERO)
        );
    }

    /// An attempt that fails with `class` every time, recording when each call started.
    async fn failing(
        name: String,
        class: ErrorClass,
        log: &std::sync::Mutex<Vec<(String, Duration)>>,
        t0: Instant,
    ) -> Result<String, UpstreamError> {
        log.lock().unwrap().push((name.clone(), t0.elapsed()));
        if name == "b" {
            return Ok(name);
        }
        Err(UpstreamError::new(class, "no"))
    }

    #[tokio::test(start_paused = true)]
    async fn configured_retries_back_off_doubling_before_moving_on() {
        let r = route(
            "",
            "policy = { server_error = { retries = 2, backoff_ms = 100, backoff_max_ms = 1000, jitter = 0.0 } }",
        );
        let budget = RetryBudget::new(1.0, 10.0);
        let log = std::sync::Mutex::new(Vec::new());
        let t0 = Instant::now();
        let won = run(&r, both(&r), &policy(&budget, None), |t, _| {
            failing(t.name.clone(), ErrorClass::ServerError, &log, t0)
        })
        .await
        .expect("the fallback answers");
        assert_eq!(won.value, "b");
        let ms: Vec<(String, u128)> = log
            .lock()
            .unwrap()
            .iter()
            .map(|(n, d)| (n.clone(), d.as_millis()))
            .collect();
        assert_eq!(
            ms,
            [
                ("a".into(), 0),
                ("a".into(), 100),
                ("a".into(), 300),
                ("b".into(), 300)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_delay_before_failing_over_is_waited_and_a_stop_is_a_stop() {
        let r = route(
            "[policy]\noverloaded = { delay_ms = 250 }\n",
            "policy = { timeout = { fail_over = false } }",
        );
        let budget = RetryBudget::new(0.0, 0.0);
        let log = std::sync::Mutex::new(Vec::new());
        let t0 = Instant::now();
        run(&r, both(&r), &policy(&budget, None), |t, _| {
            failing(t.name.clone(), ErrorClass::Overloaded, &log, t0)
        })
        .await
        .expect("the fallback answers");
        assert_eq!(log.lock().unwrap()[1].1, Duration::from_millis(250));
        let log = std::sync::Mutex::new(Vec::new());
        let err = run(&r, both(&r), &policy(&budget, None), |t, _| {
            failing(t.name.clone(), ErrorClass::Timeout, &log, t0)
        })
        .await
        .err()
        .expect("stopped");
        assert!(matches!(err, GatewayError::Upstream { .. }), "{err:?}");
        assert_eq!(log.lock().unwrap().len(), 1, "the fallback was not tried");
    }

    #[tokio::test(start_paused = true)]
    async fn a_class_that_does_not_count_leaves_the_breaker_alone() {
        let r = route(
            "[breaker]\nfailure_threshold = 1\n",
            "policy = { overloaded = { counts_against_breaker = false } }",
        );
        let budget = RetryBudget::new(0.0, 0.0);
        let log = std::sync::Mutex::new(Vec::new());
        let t0 = Instant::now();
        run(&r, both(&r), &policy(&budget, None), |t, _| {
            failing(t.name.clone(), ErrorClass::Overloaded, &log, t0)
        })
        .await
        .expect("the fallback answers");
        assert_eq!(r.targets[0].breaker.snapshot().state, "closed");
        // The statistics still show the failure.
        assert_eq!(r.targets[0].stats.summary(Instant::now()).failures, 1);
        // The same fault on a route without the override opens it (threshold 1).
        let plain = route("[breaker]\nfailure_threshold = 1\n", "");
        run(&plain, both(&plain), &policy(&budget, None), |t, _| {
            failing(t.name.clone(), ErrorClass::Overloaded, &log, t0)
        })
        .await
        .expect("the fallback answers");
        assert_eq!(plain.targets[0].breaker.snapshot().state, "open");
    }
}
