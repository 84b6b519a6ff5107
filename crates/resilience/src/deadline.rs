//! Deadlines for one streamed attempt: time to first token, longest silence between chunks
//! (stall), and the total. The gateway's read loop asks [`Deadlines::next`] what to sleep until
//! and tells it when bytes and content arrive; this keeps the timing rules in one small place
//! that tests drive with tokio's paused clock.

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

/// Per-target stream timeouts, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamTimeouts {
    /// From sending the request to the first content token.
    pub first_token_ms: u64,
    /// Longest silence allowed between two chunks once the response started.
    pub stall_ms: u64,
}

impl Default for StreamTimeouts {
    fn default() -> Self {
        StreamTimeouts {
            first_token_ms: 10_000,
            stall_ms: 15_000,
        }
    }
}

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    FirstToken,
    Stall,
    Total,
}

impl Expired {
    pub fn describe(self) -> &'static str {
        match self {
            Expired::FirstToken => "no first token within the first-token timeout",
            Expired::Stall => "stream stalled longer than the stall timeout",
            Expired::Total => "total request timeout reached",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Deadlines {
    first_token: Option<Instant>,
    stall: Duration,
    last_activity: Instant,
    total: Instant,
}

impl Deadlines {
    /// Starts the clocks now. `total` is the overall deadline of the request (shared by all
    /// attempts), so it is passed as an instant.
    pub fn start(timeouts: StreamTimeouts, total: Instant) -> Self {
        let now = Instant::now();
        Deadlines {
            first_token: Some(now + Duration::from_millis(timeouts.first_token_ms)),
            stall: Duration::from_millis(timeouts.stall_ms),
            last_activity: now,
            total,
        }
    }

    /// Bytes arrived: the stall clock restarts.
    pub fn on_bytes(&mut self) {
        self.last_activity = Instant::now();
    }

    /// Content arrived: the first-token deadline is met for good.
    pub fn on_content(&mut self) {
        self.first_token = None;
    }

    /// The earliest deadline still pending and which one it is.
    pub fn next(&self) -> (Instant, Expired) {
        let mut next = (self.last_activity + self.stall, Expired::Stall);
        if let Some(ft) = self.first_token {
            // A tie is the first token's: an upstream that has sent nothing since the request
            // (first-token and stall timeouts both 10 s, say) is late with its first token,
            // and the log and metrics should say so rather than call it a stall.
            if ft <= next.0 {
                next = (ft, Expired::FirstToken);
            }
        }
        if self.total <= next.0 {
            next = (self.total, Expired::Total);
        }
        next
    }

    /// Sleeps until the next deadline and says which one passed. Meant for `tokio::select!`
    /// beside the read of the next chunk.
    pub async fn expired(&self) -> Expired {
        let (at, which) = self.next();
        tokio::time::sleep_until(at).await;
        which
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts() -> StreamTimeouts {
        StreamTimeouts {
            first_token_ms: 1_000,
            stall_ms: 300,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stall_fires_when_bytes_stop() {
        let mut d = Deadlines::start(timeouts(), Instant::now() + Duration::from_secs(60));
        assert_eq!(d.next().1, Expired::Stall);
        tokio::time::advance(Duration::from_millis(200)).await;
        d.on_bytes();
        d.on_content();
        let start = Instant::now();
        assert_eq!(d.expired().await, Expired::Stall);
        assert_eq!(Instant::now() - start, Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn keepalive_bytes_do_not_satisfy_the_first_token_deadline() {
        let mut d = Deadlines::start(timeouts(), Instant::now() + Duration::from_secs(60));
        for _ in 0..4 {
            tokio::time::advance(Duration::from_millis(250)).await;
            d.on_bytes();
        }
        assert_eq!(d.next().1, Expired::FirstToken);
        assert_eq!(d.expired().await, Expired::FirstToken);
    }

    #[tokio::test(start_paused = true)]
    async fn silence_before_the_first_token_is_a_first_token_timeout_when_both_are_equal() {
        let d = Deadlines::start(
            StreamTimeouts {
                first_token_ms: 10_000,
                stall_ms: 10_000,
            },
            Instant::now() + Duration::from_secs(60),
        );
        assert_eq!(d.expired().await, Expired::FirstToken);
    }

    #[tokio::test(start_paused = true)]
    async fn total_wins_when_it_is_earliest() {
        let d = Deadlines::start(timeouts(), Instant::now() + Duration::from_millis(100));
        assert_eq!(d.expired().await, Expired::Total);
    }
}
