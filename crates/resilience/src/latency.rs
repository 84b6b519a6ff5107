//! A rolling window of recent latencies, to judge whether one attempt was unusually slow
//! (e.g. a first token slower than 3× the target's recent median).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug)]
pub struct LatencyWindow {
    samples: Mutex<VecDeque<Duration>>,
    capacity: usize,
    /// Fewer samples than this and the window has no opinion.
    min_samples: usize,
}

impl LatencyWindow {
    pub fn new(capacity: usize, min_samples: usize) -> Self {
        LatencyWindow {
            samples: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity: capacity.max(1),
            min_samples: min_samples.max(1),
        }
    }

    pub fn record(&self, d: Duration) {
        let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if s.len() == self.capacity {
            s.pop_front();
        }
        s.push_back(d);
    }

    /// The median of the window, once it holds enough samples.
    pub fn median(&self) -> Option<Duration> {
        let s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if s.len() < self.min_samples {
            return None;
        }
        let mut v: Vec<Duration> = s.iter().copied().collect();
        drop(s);
        v.sort_unstable();
        Some(v[v.len() / 2])
    }

    /// True when `d` is more than `factor` times the current median and also at least
    /// `margin` over it. The margin keeps a ratio from judging noise: against a median of
    /// half a millisecond (a fast local upstream), 2 ms is four times slower but no sign of
    /// a sick provider.
    pub fn is_outlier(&self, d: Duration, factor: f64, margin: Duration) -> bool {
        self.median()
            .is_some_and(|m| d > m.mul_f64(factor) && d >= m.saturating_add(margin))
    }
}

impl Default for LatencyWindow {
    fn default() -> Self {
        LatencyWindow::new(64, 5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_opinion_until_enough_samples() {
        let w = LatencyWindow::new(8, 3);
        w.record(Duration::from_millis(10));
        w.record(Duration::from_millis(10));
        assert_eq!(w.median(), None);
        assert!(!w.is_outlier(Duration::from_secs(100), 3.0, Duration::ZERO));
        w.record(Duration::from_millis(40));
        assert_eq!(w.median(), Some(Duration::from_millis(10)));
        assert!(w.is_outlier(Duration::from_millis(31), 3.0, Duration::ZERO));
        assert!(!w.is_outlier(Duration::from_millis(30), 3.0, Duration::ZERO));
    }

    #[test]
    fn a_small_excess_is_no_outlier_however_large_the_ratio() {
        let w = LatencyWindow::new(8, 1);
        w.record(Duration::from_micros(500));
        let margin = Duration::from_millis(100);
        // Forty times the median, but only 19.5 ms over it.
        assert!(!w.is_outlier(Duration::from_millis(20), 3.0, margin));
        assert!(!w.is_outlier(Duration::from_micros(100_499), 3.0, margin));
        assert!(w.is_outlier(Duration::from_micros(100_500), 3.0, margin));
        // With a slow median the ratio decides: 1 s over a 1 s median is only twice it.
        let slow = LatencyWindow::new(8, 1);
        slow.record(Duration::from_secs(1));
        assert!(!slow.is_outlier(Duration::from_secs(2), 3.0, margin));
        assert!(slow.is_outlier(Duration::from_millis(3_001), 3.0, margin));
    }

    #[test]
    fn old_samples_roll_out() {
        let w = LatencyWindow::new(3, 1);
        for ms in [1000, 1000, 1000, 5, 5, 5] {
            w.record(Duration::from_millis(ms));
        }
        assert_eq!(w.median(), Some(Duration::from_millis(5)));
    }
}
