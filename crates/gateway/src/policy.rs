//! Failure policy as data: what the gateway does after an attempt fails, per error class.
//!
//! The built-in table ([`ErrorClass::policy`], printed in README) is the default. `[policy]`
//! overrides it for every route, `[models.<alias>.policy]` for one route (over the global
//! overrides), one class at a time: fail over or stop, retries on the same target with their
//! back-off, a delay before failing over, whether the failure counts against the breaker. The
//! result is one [`FailurePolicy`] per route, a table with a [`Reaction`] for every class, so
//! the request path reads an array instead of merging layers.
//!
//! Failing over on a hard class (the request or our credentials are wrong) spends another
//! provider's quota on a request that will fail there too, so it needs an option whose name
//! says so: `dangerously_fail_over_on_hard_errors = true`.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use switchyard_core::ErrorClass;

/// Overrides of the built-in reaction table, one optional entry per error class. An unknown
/// class name is a config error (the fields are the class names).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Allows `fail_over = true` on auth, permission_denied, invalid_request, not_found and
    /// payload_too_large. Failing over on a 401 spends another provider's quota on a request
    /// that is broken; set this only when targets really differ in what they accept.
    #[serde(default)]
    pub dangerously_fail_over_on_hard_errors: bool,
    pub rate_limited: Option<ClassOverride>,
    pub quota_exhausted: Option<ClassOverride>,
    pub overloaded: Option<ClassOverride>,
    pub server_error: Option<ClassOverride>,
    pub timeout: Option<ClassOverride>,
    pub connect: Option<ClassOverride>,
    pub stream_interrupted: Option<ClassOverride>,
    pub auth: Option<ClassOverride>,
    pub permission_denied: Option<ClassOverride>,
    pub invalid_request: Option<ClassOverride>,
    pub context_length_exceeded: Option<ClassOverride>,
    pub not_found: Option<ClassOverride>,
    pub payload_too_large: Option<ClassOverride>,
    pub content_filtered: Option<ClassOverride>,
    pub unsupported: Option<ClassOverride>,
}

impl PolicyConfig {
    /// The override for `class`, if any (in [`ErrorClass::ALL`] order).
    fn get(&self, class: ErrorClass) -> Option<&ClassOverride> {
        [
            &self.rate_limited,
            &self.quota_exhausted,
            &self.overloaded,
            &self.server_error,
            &self.timeout,
            &self.connect,
            &self.stream_interrupted,
            &self.auth,
            &self.permission_denied,
            &self.invalid_request,
            &self.context_length_exceeded,
            &self.not_found,
            &self.payload_too_large,
            &self.content_filtered,
            &self.unsupported,
        ][class.index()]
        .as_ref()
    }
}

/// What to change in one class's reaction; absent fields keep the layer below.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassOverride {
    /// Try the next target (true) or return this error to the client (false).
    pub fail_over: Option<bool>,
    /// Extra attempts on the same target before moving on, each spent from the retry budget.
    pub retries: Option<u32>,
    /// Wait before the first same-target retry, in ms; doubled for each further one.
    pub backoff_ms: Option<u64>,
    /// Longest wait between same-target retries, in ms.
    pub backoff_max_ms: Option<u64>,
    /// Relative jitter of each back-off (0.5: between half and one and a half times it).
    pub jitter: Option<f64>,
    /// Wait before trying the next target, in ms (e.g. 200 on `rate_limited`, so a burst does
    /// not move to the fallback in the same millisecond).
    pub delay_ms: Option<u64>,
    /// Whether the failure counts against the target's circuit breaker.
    pub counts_against_breaker: Option<bool>,
}

/// The effective reaction to one class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reaction {
    pub fail_over: bool,
    pub retries: u32,
    pub backoff: Duration,
    pub backoff_max: Duration,
    pub jitter: f64,
    pub delay: Duration,
    pub counts_against_breaker: bool,
}

/// The classes where the request or our credentials are at fault: another target would refuse
/// the same request.
const HARD: [ErrorClass; 5] = [
    ErrorClass::Auth,
    ErrorClass::PermissionDenied,
    ErrorClass::InvalidRequest,
    ErrorClass::NotFound,
    ErrorClass::PayloadTooLarge,
];

/// Same-target retries wait 100 ms ± 50 % (50–150 ms) unless configured otherwise.
const DEFAULT_BACKOFF: Duration = Duration::from_millis(100);
const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(2);
const DEFAULT_JITTER: f64 = 0.5;

impl Reaction {
    /// The built-in reaction to `class`.
    pub fn default_for(class: ErrorClass) -> Reaction {
        let p = class.policy();
        Reaction {
            fail_over: p.fail_over,
            retries: u32::from(p.retries_on_same_target),
            backoff: DEFAULT_BACKOFF,
            backoff_max: DEFAULT_BACKOFF_MAX,
            jitter: DEFAULT_JITTER,
            delay: Duration::ZERO,
            counts_against_breaker: p.trips_breaker,
        }
    }

    fn apply(&mut self, o: &ClassOverride) {
        if let Some(v) = o.fail_over {
            self.fail_over = v;
        }
        if let Some(v) = o.retries {
            self.retries = v;
        }
        if let Some(v) = o.backoff_ms {
            self.backoff = Duration::from_millis(v);
        }
        if let Some(v) = o.backoff_max_ms {
            self.backoff_max = Duration::from_millis(v);
        }
        if let Some(v) = o.jitter {
            self.jitter = v;
        }
        if let Some(v) = o.delay_ms {
            self.delay = Duration::from_millis(v);
        }
        if let Some(v) = o.counts_against_breaker {
            self.counts_against_breaker = v;
        }
    }

    /// The wait before same-target retry number `n` (0 for the first): the back-off doubled
    /// `n` times, capped, then jittered so that many clients do not retry in step.
    pub fn backoff_for(&self, n: u32) -> Duration {
        let base = self
            .backoff
            .saturating_mul(1u32 << n.min(16))
            .min(self.backoff_max);
        let j = self.jitter.clamp(0.0, 1.0);
        if j == 0.0 {
            return base;
        }
        base.mul_f64(1.0 - j + rand::random_range(0.0..=2.0 * j))
    }
}

/// The reaction to every class, for one route.
#[derive(Debug, Clone, PartialEq)]
pub struct FailurePolicy {
    reactions: [Reaction; ErrorClass::ALL.len()],
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy {
            reactions: ErrorClass::ALL.map(Reaction::default_for),
        }
    }
}

impl FailurePolicy {
    /// The built-in table with `layers` applied in order (the global `[policy]`, then the
    /// route's). Refuses what would be unsafe or meaningless, naming the class and field.
    pub fn build(layers: &[&PolicyConfig]) -> Result<FailurePolicy, String> {
        let mut policy = FailurePolicy::default();
        let dangerous = layers
            .iter()
            .any(|l| l.dangerously_fail_over_on_hard_errors);
        for layer in layers {
            for class in ErrorClass::ALL {
                let Some(o) = layer.get(class) else { continue };
                let name = class.name();
                if o.fail_over == Some(true) && HARD.contains(&class) && !dangerous {
                    return Err(format!(
                        "policy.{name}.fail_over = true needs dangerously_fail_over_on_hard_errors = true: a {name} failure is the request's or the credentials' fault, and failing over spends another provider's quota on it"
                    ));
                }
                if class == ErrorClass::ContextLengthExceeded && o.fail_over.is_some() {
                    return Err(format!(
                        "policy.{name}.fail_over cannot be set: a context-length failure always moves on only to targets with a larger context_window"
                    ));
                }
                if o.jitter.is_some_and(|j| !(0.0..=1.0).contains(&j)) {
                    return Err(format!("policy.{name}.jitter must be between 0 and 1"));
                }
                if o.retries.is_some_and(|r| r > 10) {
                    return Err(format!(
                        "policy.{name}.retries is at most 10 (each retry is paid from the retry budget anyway)"
                    ));
                }
                policy.reactions[class.index()].apply(o);
            }
        }
        Ok(policy)
    }

    pub fn reaction(&self, class: ErrorClass) -> &Reaction {
        &self.reactions[class.index()]
    }

    /// The table as Markdown, in README's format (README prints the default one; a test
    /// keeps the two equal; `switchyard check-config --explain` prints each route's).
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| class | fails over | retries on the same target | delay before failing over | counts against the breaker | status to the client | OpenAI error type |\n|---|---|---|---|---|---|---|\n",
        );
        let yes = |b: bool| if b { "yes" } else { "no" };
        for class in ErrorClass::ALL {
            let p = class.policy();
            let r = self.reaction(class);
            let backoff = format!(
                "{} ms, doubling to {} ms, ±{} %",
                r.backoff.as_millis(),
                r.backoff_max.as_millis(),
                (r.jitter * 100.0).round()
            );
            let retries = match (class, r.retries) {
                (ErrorClass::RateLimited { .. }, 0) => {
                    "once, when Retry-After is short".to_string()
                }
                (ErrorClass::RateLimited { .. }, n) => {
                    format!("{n} (Retry-After when short, else {backoff}), within the retry budget")
                }
                (_, 0) => "no".to_string(),
                (_, n) => format!("{n} ({backoff}), within the retry budget"),
            };
            let delay = if r.delay.is_zero() {
                "no".to_string()
            } else {
                format!("{} ms", r.delay.as_millis())
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} | `{}` |\n",
                class.name(),
                yes(r.fail_over),
                retries,
                delay,
                yes(r.counts_against_breaker),
                p.client_status,
                p.openai_type
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> PolicyConfig {
        toml::from_str(text).expect("policy parses")
    }

    #[test]
    fn the_default_is_the_built_in_table() {
        let p = FailurePolicy::default();
        for class in ErrorClass::ALL {
            let built_in = class.policy();
            let r = p.reaction(class);
            assert_eq!(r.fail_over, built_in.fail_over, "{}", class.name());
            assert_eq!(r.retries, u32::from(built_in.retries_on_same_target));
            assert_eq!(r.counts_against_breaker, built_in.trips_breaker);
            assert_eq!(r.delay, Duration::ZERO);
        }
    }

    #[test]
    fn route_overrides_win_over_global_ones_field_by_field() {
        let global = parse("[rate_limited]\ndelay_ms = 200\nretries = 1\n");
        let route =
            parse("[rate_limited]\nretries = 0\n[overloaded]\ncounts_against_breaker = false\n");
        let p = FailurePolicy::build(&[&global, &route]).unwrap();
        let rl = p.reaction(ErrorClass::RateLimited {
            retry_after_ms: None,
        });
        assert_eq!(
            rl.delay,
            Duration::from_millis(200),
            "kept from the global layer"
        );
        assert_eq!(rl.retries, 0, "the route's value");
        assert!(!p.reaction(ErrorClass::Overloaded).counts_against_breaker);
        assert!(
            p.reaction(ErrorClass::Overloaded).fail_over,
            "untouched field"
        );
        // The data carried by a class does not matter for its reaction.
        assert_eq!(
            p.reaction(ErrorClass::RateLimited {
                retry_after_ms: Some(5)
            }),
            rl
        );
    }

    #[test]
    fn an_unknown_class_is_refused_by_name() {
        let e = toml::from_str::<PolicyConfig>("[rate_limitted]\nretries = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("rate_limitted"), "{e}");
        let e = toml::from_str::<PolicyConfig>("[overloaded]\nretry = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("retry"), "{e}");
    }

    #[test]
    fn failing_over_on_a_hard_class_needs_the_loud_option() {
        for class in [
            "auth",
            "permission_denied",
            "invalid_request",
            "not_found",
            "payload_too_large",
        ] {
            let o = parse(&format!("[{class}]\nfail_over = true\n"));
            let e = FailurePolicy::build(&[&o]).unwrap_err();
            assert!(e.contains("dangerously_fail_over_on_hard_errors"), "{e}");
            let allowed = parse(&format!(
                "dangerously_fail_over_on_hard_errors = true\n[{class}]\nfail_over = true\n"
            ));
            let p = FailurePolicy::build(&[&allowed]).unwrap();
            assert!(ErrorClass::ALL
                .iter()
                .any(|c| c.name() == class && p.reaction(*c).fail_over));
        }
        // Turning fail-over off on a soft class needs nothing.
        let off = parse("[overloaded]\nfail_over = false\n");
        assert!(
            !FailurePolicy::build(&[&off])
                .unwrap()
                .reaction(ErrorClass::Overloaded)
                .fail_over
        );
    }

    #[test]
    fn context_length_keeps_its_own_rule() {
        let o = parse("[context_length_exceeded]\nfail_over = true\n");
        assert!(FailurePolicy::build(&[&o]).is_err());
    }

    #[test]
    fn back_off_doubles_up_to_the_cap_within_the_jitter() {
        let r = Reaction {
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_millis(300),
            jitter: 0.0,
            ..Reaction::default_for(ErrorClass::ServerError)
        };
        assert_eq!(r.backoff_for(0), Duration::from_millis(100));
        assert_eq!(r.backoff_for(1), Duration::from_millis(200));
        assert_eq!(r.backoff_for(2), Duration::from_millis(300));
        assert_eq!(r.backoff_for(40), Duration::from_millis(300));
        let jittered = Reaction { jitter: 0.5, ..r };
        for _ in 0..100 {
            let d = jittered.backoff_for(0);
            assert!(
                d >= Duration::from_millis(50) && d <= Duration::from_millis(150),
                "{d:?}"
            );
        }
    }

    #[test]
    fn the_table_shows_the_overrides() {
        let o = parse("[rate_limited]\ndelay_ms = 200\n[server_error]\nretries = 2\n");
        let table = FailurePolicy::build(&[&o]).unwrap().markdown();
        assert!(
            table.contains("| `rate_limited` | yes | once, when Retry-After is short | 200 ms |"),
            "{table}"
        );
        assert!(table.contains("| `server_error` | yes | 2 (100 ms, doubling to 2000 ms, ±50 %), within the retry budget | no |"), "{table}");
    }
}
