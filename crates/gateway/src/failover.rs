//! Failover across a route's targets: the one loop both the plain and the streamed paths use.
//!
//! Per target, in order: the breaker admits or skips it; the attempt runs; its error class
//! decides (through [`ErrorClass::policy`]) whether to stop, retry the same target, or move on.
//! Two refinements: a short `Retry-After` on a 429 is waited out on the same target and a 500 is
//! retried once there (both within the retry budget); a context-length failure moves on only
//! to targets with a larger configured window.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use switchyard_core::{ErrorClass, UpstreamError};
use switchyard_resilience::{Permit, RetryBudget};
use tokio::time::Instant;

use crate::errors::{AttemptRecord, GatewayError};
use crate::route::{Route, RouteTarget};

/// The attempt that succeeded, with the breaker permit whose outcome is still to be reported
/// (a stream reports it when it ends).
pub struct Won<T> {
    pub value: T,
    pub target: Arc<RouteTarget>,
    pub permit: Permit,
    /// The attempts before the one that won (failures and skips).
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
}

/// Runs the attempts. `attempt` gets the target and the time the attempt starts, read once
/// here for the deadline check and passed on so that its own timeouts need not read the
/// clock again.
pub async fn run<T, F, Fut>(
    route: &Route,
    policy: &Policy<'_>,
    mut attempt: F,
) -> Result<Won<T>, GatewayError>
where
    F: FnMut(Arc<RouteTarget>, Instant) -> Fut,
    Fut: Future<Output = Result<T, UpstreamError>>,
{
    policy.budget.deposit();
    let mut attempts: Vec<AttemptRecord> = Vec::new();
    let mut shortest_wait: Option<Duration> = None;
    // Set after a context-length failure: only targets with a larger window are worth trying.
    let mut needs_window: Option<u32> = None;
    let mut context_error: Option<(UpstreamError, String)> = None;
    let last = route.targets.len().saturating_sub(1);
    for (i, target) in route.targets.iter().enumerate() {
        if let Some(min) = needs_window {
            if target.context_window.is_none_or(|w| w <= min) {
                attempts.push(AttemptRecord::skipped(
                    target,
                    "context window not larger than the one exceeded",
                ));
                continue;
            }
        }
        let mut retried = false;
        loop {
            let started = Instant::now();
            if started >= policy.deadline {
                attempts.push(AttemptRecord::skipped(target, "request deadline passed"));
                return Err(GatewayError::Exhausted { attempts });
            }
            let permit = match target.breaker.acquire() {
                Ok(p) => p,
                Err(rejected) => {
                    shortest_wait =
                        Some(shortest_wait.map_or(rejected.retry_in, |w| w.min(rejected.retry_in)));
                    attempts.push(AttemptRecord::skipped(
                        target,
                        &format!("circuit open ({})", rejected.reason),
                    ));
                    break;
                }
            };
            match attempt(Arc::clone(target), started).await {
                Ok(value) => {
                    return Ok(Won {
                        value,
                        target: Arc::clone(target),
                        permit,
                        attempts,
                    });
                }
                Err(err) => {
                    let class = err.class;
                    let p = class.policy();
                    tracing::warn!(
                        route = %route.alias,
                        target = %target.name,
                        class = class.name(),
                        status = err.status,
                        "attempt failed: {}",
                        err.message
                    );
                    if p.trips_breaker {
                        permit.failure(class.name());
                    } else if class != ErrorClass::Unsupported {
                        // The target answered sanely; the request was the problem.
                        permit.success();
                    }
                    attempts.push(AttemptRecord::failure(target, &err));
                    if class == ErrorClass::ContextLengthExceeded {
                        // Never the same model again; a larger window may still fit.
                        needs_window = Some(
                            needs_window
                                .unwrap_or(0)
                                .max(target.context_window.unwrap_or(0)),
                        );
                        if context_error.is_none() {
                            let mut err = err;
                            if let Some(w) = target.context_window {
                                err.message = format!(
                                    "{} (context window of {}: {w} tokens)",
                                    err.message, target.name
                                );
                            }
                            context_error = Some((err, target.name.clone()));
                        }
                        break;
                    }
                    let fail_over = p.fail_over
                        || (class == ErrorClass::ContentFiltered
                            && route.failover_on_content_filter);
                    if !fail_over {
                        return Err(GatewayError::Upstream {
                            error: err,
                            target: target.name.clone(),
                            attempts,
                        });
                    }
                    if !retried {
                        if let Some(wait) = same_target_wait(class, policy, i == last) {
                            if Instant::now() + wait < policy.deadline && policy.budget.withdraw() {
                                retried = true;
                                tokio::time::sleep(wait).await;
                                continue;
                            }
                        }
                    }
                    break;
                }
            }
        }
    }
    if let Some((error, target)) = context_error {
        // Nothing larger answered: the client gets the clean 400 that names the limit.
        return Err(GatewayError::Upstream {
            error,
            target,
            attempts,
        });
    }
    if attempts.iter().all(|a| a.skipped) {
        return Err(GatewayError::Unavailable {
            attempts,
            retry_in: shortest_wait.unwrap_or_default(),
        });
    }
    Err(GatewayError::Exhausted { attempts })
}

/// How long to wait before retrying the same target, if this class allows it at all.
fn same_target_wait(class: ErrorClass, policy: &Policy<'_>, is_last: bool) -> Option<Duration> {
    match class {
        ErrorClass::RateLimited {
            retry_after_ms: Some(ms),
        } => {
            let wait = Duration::from_millis(ms);
            (wait <= policy.max_retry_after).then_some(wait)
        }
        // No hint: with a fallback, moving on is best; with none, back off once, jittered.
        ErrorClass::RateLimited {
            retry_after_ms: None,
        } if is_last => Some(Duration::from_millis(250 + rand_jitter_ms(500))),
        c if c.policy().retries_on_same_target > 0 => {
            // A little jitter so that many clients do not retry in step.
            Some(Duration::from_millis(50 + rand_jitter_ms(100)))
        }
        _ => None,
    }
}

fn rand_jitter_ms(max: u64) -> u64 {
    rand::random_range(0..max.max(1))
}
