//! A retry budget in the manner of tower's: retries may add at most a fixed fraction of the
//! traffic (plus a small floor per second), so a struggling target is never flooded by
//! retries of its own failures.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct RetryBudget {
    /// Tokens each request deposits (0.2 = one retry per five requests).
    ratio: f64,
    /// Tokens granted per second regardless of traffic, so a quiet gateway can still retry.
    floor_per_sec: f64,
    /// Cap on saved tokens, so a long quiet period does not bank a burst of retries.
    max_balance: f64,
    inner: Mutex<(f64, Instant)>,
    /// Set under the lock when the balance is at the cap. Every request deposits, and in the
    /// common case (no retries lately) the budget is full and the deposit changes nothing, so
    /// it is skipped without taking the lock or writing memory the other worker threads read.
    /// Skipping also leaves the refill clock behind, which is harmless: the next refill is
    /// capped at the balance the skipped deposits would have kept.
    full: Full,
}

/// On a cache line of its own.
#[derive(Debug)]
#[repr(align(64))]
struct Full(AtomicBool);

impl RetryBudget {
    pub fn new(ratio: f64, floor_per_sec: f64) -> Self {
        let max_balance = (floor_per_sec * 10.0).max(1.0) + ratio * 100.0;
        RetryBudget {
            ratio,
            floor_per_sec,
            max_balance,
            inner: Mutex::new((floor_per_sec.min(max_balance), Instant::now())),
            full: Full(AtomicBool::new(false)),
        }
    }

    fn refill(&self, state: &mut (f64, Instant)) {
        let now = Instant::now();
        let elapsed: Duration = now - state.1;
        state.1 = now;
        state.0 = (state.0 + elapsed.as_secs_f64() * self.floor_per_sec).min(self.max_balance);
    }

    /// Records one request.
    pub fn deposit(&self) {
        if self.full.0.load(Ordering::Acquire) {
            return;
        }
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        self.refill(&mut s);
        s.0 = (s.0 + self.ratio).min(self.max_balance);
        self.full
            .0
            .store(s.0 >= self.max_balance, Ordering::Release);
    }

    /// Takes leave for one retry; false when the budget is spent.
    pub fn withdraw(&self) -> bool {
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        self.refill(&mut s);
        let granted = s.0 >= 1.0;
        if granted {
            s.0 -= 1.0;
        }
        self.full
            .0
            .store(s.0 >= self.max_balance, Ordering::Release);
        granted
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget::new(0.2, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_are_limited_to_a_fraction_of_requests() {
        let b = RetryBudget::new(0.2, 0.0);
        let mut allowed = 0;
        for _ in 0..100 {
            b.deposit();
            if b.withdraw() {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 20);
    }

    /// Deposits skipped at the cap must leave the budget exactly where locked ones would.
    #[tokio::test(start_paused = true)]
    async fn a_full_budget_skips_deposits_without_changing_the_count() {
        let b = RetryBudget::new(0.5, 0.0);
        for _ in 0..500 {
            b.deposit();
        }
        let cap = (0..1000).take_while(|_| b.withdraw()).count();
        assert_eq!(cap, 51, "the cap: 1 + 0.5 x 100");
        // Drained: deposits count again (the flag was cleared by the withdrawals).
        b.deposit();
        b.deposit();
        assert!(b.withdraw());
        assert!(!b.withdraw());
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_refills_with_time() {
        let b = RetryBudget::new(0.0, 2.0);
        assert!(b.withdraw());
        assert!(b.withdraw());
        assert!(!b.withdraw());
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(b.withdraw());
        assert!(!b.withdraw());
    }
}
