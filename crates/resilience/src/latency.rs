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

    /// True when `d` is more than `factor` times the current median.
    pub fn is_outlier(&self, d: Duration, factor: f64) -> bool {
        self.median().is_some_and(|m| d > m.mul_f64(factor))
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
        assert!(!w.is_outlier(Duration::from_secs(100), 3.0));
        w.record(Duration::from_millis(40));
        assert_eq!(w.median(), Some(Duration::from_millis(10)));
        assert!(w.is_outlier(Duration::from_millis(31), 3.0));
        assert!(!w.is_outlier(Duration::from_millis(30), 3.0));
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
