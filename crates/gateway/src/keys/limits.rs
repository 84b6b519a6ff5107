//! The limits of one client key, each checked with one or two atomics and no lock: requests
//! per minute ([`RequestLimit`], governor's GCRA), tokens per minute ([`TokenLimit`], the same
//! algorithm, charged after the answer), requests in flight ([`InFlight`]).
//!
//! Time is tokio's ([`tokio::time::Instant`]), so tests drive every limit with a paused clock;
//! outside a paused test it is the monotonic clock.

use std::num::{NonZeroU32, NonZeroU64};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

/// The window every per-minute limit is stated in.
const MINUTE: Duration = Duration::from_secs(60);

/// governor's clock, read from tokio's.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    type Instant = std::time::Instant;

    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }
}

/// Requests per minute: a burst of up to the limit, then one more every `60 s / limit`
/// (GCRA, the continuously refilled bucket OpenAI's own limits are described as).
pub struct RequestLimit {
    per_minute: NonZeroU32,
    gcra: RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<std::time::Instant>>,
}

impl RequestLimit {
    pub fn new(per_minute: NonZeroU32) -> Self {
        RequestLimit {
            per_minute,
            gcra: RateLimiter::direct_with_clock(Quota::per_minute(per_minute), TokioClock),
        }
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute.get()
    }

    /// Takes one request from the allowance (one compare-and-swap); when none is left, how
    /// long until one is, and nothing is taken.
    pub fn take(&self) -> Result<(), Duration> {
        self.gcra
            .check()
            .map_err(|not_until| not_until.wait_time_from(TokioClock.now()))
    }
}

/// Tokens per minute, counted after each answer (input + output).
///
/// The same GCRA as [`RequestLimit`], except that the cost of a request is known only once it
/// is answered, so it is charged then and may overdraw the allowance: each token moves the
/// "theoretical arrival time" (TAT) on by `60 s / limit`, and the key is at its limit while
/// the TAT is a minute or more ahead of now, that is while a minute's worth of tokens or more
/// has not yet drained. An answer that overdraws it makes the key wait until the excess has
/// drained. One `AtomicU64` (the TAT in nanoseconds since `start`): a load to check, a
/// compare-and-swap loop to charge.
pub struct TokenLimit {
    per_minute: NonZeroU64,
    start: Instant,
    tat_ns: AtomicU64,
}

impl TokenLimit {
    pub fn new(per_minute: NonZeroU64) -> Self {
        TokenLimit {
            per_minute,
            start: Instant::now(),
            tat_ns: AtomicU64::new(0),
        }
    }

    pub fn per_minute(&self) -> u64 {
        self.per_minute.get()
    }

    fn ns_since_start(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.start).as_nanos()).unwrap_or(u64::MAX)
    }

    /// How far the TAT is ahead of `now`.
    fn ahead_ns(&self, now: Instant) -> u64 {
        self.tat_ns
            .load(Ordering::Relaxed)
            .saturating_sub(self.ns_since_start(now))
    }

    /// `Ok` while the key has tokens left this minute; else how long until it has.
    pub fn check(&self, now: Instant) -> Result<(), Duration> {
        let window = MINUTE.as_nanos() as u64;
        match self.ahead_ns(now) {
            ahead if ahead < window => Ok(()),
            ahead => Err(Duration::from_nanos(ahead - window + 1)),
        }
    }

    /// Charges an answer's tokens.
    pub fn charge(&self, tokens: u64, now: Instant) {
        if tokens == 0 {
            return;
        }
        let cost = u128::from(tokens) * MINUTE.as_nanos() / u128::from(self.per_minute.get());
        let cost = u64::try_from(cost).unwrap_or(u64::MAX);
        let now = self.ns_since_start(now);
        // Never fails: the closure always returns `Some`.
        let _ = self
            .tat_ns
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |tat| {
                Some(tat.max(now).saturating_add(cost))
            });
    }

    /// Tokens charged and not yet drained: what counts against the limit now.
    pub fn used(&self, now: Instant) -> u64 {
        let used =
            u128::from(self.ahead_ns(now)) * u128::from(self.per_minute.get()) / MINUTE.as_nanos();
        u64::try_from(used).unwrap_or(u64::MAX)
    }
}

/// Requests of one key being answered now, with an optional ceiling.
#[derive(Debug, Default)]
pub struct InFlight {
    count: AtomicU32,
}

impl InFlight {
    /// Counts one more request in flight, unless that would exceed `max`.
    pub fn enter(&self, max: Option<NonZeroU32>) -> bool {
        match max {
            None => {
                self.count.fetch_add(1, Ordering::AcqRel);
                true
            }
            Some(max) => self
                .count
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max.get()).then_some(n + 1)
                })
                .is_ok(),
        }
    }

    pub fn leave(&self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn now(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz32(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    fn nz64(n: u64) -> NonZeroU64 {
        NonZeroU64::new(n).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn requests_a_burst_of_the_limit_then_one_per_interval() {
        let limit = RequestLimit::new(nz32(3));
        for _ in 0..3 {
            assert_eq!(limit.take(), Ok(()));
        }
        // One request comes back every 20 s.
        let wait = limit.take().unwrap_err();
        assert!(
            wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        let wait = limit.take().unwrap_err();
        assert!(wait <= Duration::from_secs(10), "{wait:?}");
        tokio::time::advance(wait).await;
        assert_eq!(limit.take(), Ok(()));
        assert!(limit.take().is_err());
        // A full minute idle gives the whole burst back, and no more.
        tokio::time::advance(Duration::from_secs(120)).await;
        for _ in 0..3 {
            assert_eq!(limit.take(), Ok(()));
        }
        assert!(limit.take().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_request_takes_nothing() {
        let limit = RequestLimit::new(nz32(1));
        assert_eq!(limit.take(), Ok(()));
        for _ in 0..10 {
            assert!(limit.take().is_err());
        }
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(limit.take(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_checked_before_and_charged_after() {
        let limit = TokenLimit::new(nz64(1_000));
        assert_eq!(limit.check(Instant::now()), Ok(()));
        limit.charge(600, Instant::now());
        assert_eq!(limit.used(Instant::now()), 600);
        // Under the limit: the next request goes, and may overdraw it.
        assert_eq!(limit.check(Instant::now()), Ok(()));
        limit.charge(900, Instant::now());
        assert_eq!(limit.used(Instant::now()), 1_500);
        // 500 over: they drain at 1000 per minute, so 30 s.
        let wait = limit.check(Instant::now()).unwrap_err();
        assert!(
            wait > Duration::from_secs(29)
                && wait <= Duration::from_secs(30) + Duration::from_millis(1),
            "{wait:?}"
        );
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(limit.check(Instant::now()).is_err());
        tokio::time::advance(Duration::from_secs(1) + Duration::from_millis(1)).await;
        assert_eq!(limit.check(Instant::now()), Ok(()));
        assert!(limit.used(Instant::now()) < 1_000);
        // Idle for a minute or more: nothing is left, and the idle time is not banked.
        tokio::time::advance(Duration::from_secs(300)).await;
        assert_eq!(limit.used(Instant::now()), 0);
        limit.charge(1_000, Instant::now());
        assert!(limit.check(Instant::now()).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn exactly_the_limit_is_the_limit() {
        let limit = TokenLimit::new(nz64(10));
        limit.charge(9, Instant::now());
        assert_eq!(limit.check(Instant::now()), Ok(()));
        limit.charge(1, Instant::now());
        let wait = limit.check(Instant::now()).unwrap_err();
        assert!(wait <= Duration::from_millis(1), "{wait:?}");
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(limit.check(Instant::now()), Ok(()));
        assert_eq!(limit.used(Instant::now()), 9);
    }

    #[test]
    fn huge_answers_saturate_instead_of_wrapping() {
        let limit = TokenLimit::new(nz64(1));
        limit.charge(u64::MAX, Instant::now());
        limit.charge(u64::MAX, Instant::now());
        assert!(limit.check(Instant::now()).is_err());
    }

    #[test]
    fn in_flight_has_a_ceiling_and_gives_back() {
        let n = InFlight::default();
        assert!(n.enter(Some(nz32(2))));
        assert!(n.enter(Some(nz32(2))));
        assert!(!n.enter(Some(nz32(2))));
        assert_eq!(n.now(), 2);
        n.leave();
        assert!(n.enter(Some(nz32(2))));
        assert!(n.enter(None), "no ceiling: always in");
        assert_eq!(n.now(), 3);
    }

    #[test]
    fn in_flight_holds_under_contention() {
        let n = std::sync::Arc::new(InFlight::default());
        let max = Some(nz32(3));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let n = std::sync::Arc::clone(&n);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        if n.enter(max) {
                            assert!(n.now() <= 3);
                            n.leave();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(n.now(), 0);
    }
}
