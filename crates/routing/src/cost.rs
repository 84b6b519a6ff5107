//! Cost arithmetic: what an answer cost, what a request is expected to cost before it is sent
//! (for cost-ordered routing and spend caps), running totals, and spend caps per period.
//!
//! Prices are USD per million tokens, as providers publish them. Usage follows the canonical
//! (OpenAI) semantics of [`Usage`]: `input_tokens` includes cached and cache-written tokens,
//! `output_tokens` includes reasoning tokens.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use switchyard_core::Usage;

const TOKENS_PER_PRICE_UNIT: f64 = 1_000_000.0;
const NANOS_PER_USD: f64 = 1e9;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// None: cached input is billed as ordinary input.
    pub cache_read_per_mtok: Option<f64>,
    /// None: cache writes are billed as ordinary input.
    pub cache_write_per_mtok: Option<f64>,
}

/// USD for one answer's usage: uncached input (input - cached - cache_written, saturating) at
/// the input price; cached input at the cache-read price (input price when none); cache writes
/// at the cache-write price (input price when none); output (reasoning included, it is part of
/// output_tokens) at the output price.
///
/// Cached and cache-written counts are billed as reported even when they exceed the input
/// (a provider reporting inconsistently): the uncached part is then zero, not negative.
pub fn cost_of(usage: &Usage, price: &Price) -> f64 {
    let cached = usage.cached_input_tokens.unwrap_or(0);
    let written = usage.cache_creation_input_tokens.unwrap_or(0);
    let uncached = usage
        .input_tokens
        .saturating_sub(cached)
        .saturating_sub(written);
    // Summed per million and divided once, so round prices give exact figures.
    (uncached as f64 * price.input_per_mtok
        + cached as f64 * price.cache_read_per_mtok.unwrap_or(price.input_per_mtok)
        + written as f64 * price.cache_write_per_mtok.unwrap_or(price.input_per_mtok)
        + usage.output_tokens as f64 * price.output_per_mtok)
        / TOKENS_PER_PRICE_UNIT
}

/// Estimated input tokens of a request from its body size, never 0 for a non-empty body.
///
/// About 4 bytes per token: the usual figure for English text with BPE tokenizers. The JSON
/// around the messages (keys, quotes, roles) counts as bytes but mostly not as tokens, so this
/// errs high for chat bodies, the safe side for a spend cap; it errs far higher for bodies
/// carrying base64 images or audio, which providers bill by other measures. Tokenizing the body
/// would cost more than the rest of the request path, for a figure only used to compare
/// targets and to guard caps.
pub fn estimate_input_tokens(body_bytes: usize) -> u64 {
    (body_bytes as u64).div_ceil(4)
}

/// Expected cost of a request before it is sent: input estimate x input price + expected output
/// tokens x output price. Caching is not predicted: the full input price is the upper bound.
pub fn estimate(price: &Price, input_tokens: u64, expected_output_tokens: u64) -> f64 {
    (input_tokens as f64 * price.input_per_mtok
        + expected_output_tokens as f64 * price.output_per_mtok)
        / TOKENS_PER_PRICE_UNIT
}

/// USD as whole nano-dollars: integers add exactly and in any order, so totals from many
/// threads do not drift. Negative and NaN amounts count as 0; a single answer costs far less
/// than the ~18 billion USD a u64 holds.
fn to_nanos(usd: f64) -> u64 {
    (usd * NANOS_PER_USD).round() as u64
}

fn to_usd(nanos: u64) -> f64 {
    nanos as f64 / NANOS_PER_USD
}

/// A running total that many threads add to, in whole nano-dollars (each addition is rounded
/// to the nearest one). Written by every answer of every thread, so it has a cache line of its
/// own: the read-mostly fields beside it are not invalidated on each addition.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct Ledger(AtomicU64);

impl Ledger {
    pub fn new() -> Self {
        Ledger::default()
    }

    pub fn add(&self, usd: f64) {
        let nanos = to_nanos(usd);
        if nanos > 0 {
            self.0.fetch_add(nanos, Ordering::Relaxed);
        }
    }

    /// USD.
    pub fn total(&self) -> f64 {
        to_usd(self.0.load(Ordering::Relaxed))
    }
}

/// A spend cap per period. Periods are aligned to the Unix epoch, so replicas and restarts agree
/// on when a period starts (a daily cap resets at 00:00 UTC; a 7-day one on Thursdays, the
/// epoch's weekday), which is why the API takes wall-clock time as milliseconds since the
/// epoch rather than an `Instant`.
///
/// The spend is this process's only: it is not persisted or shared, so a restart starts the
/// period at zero and N replicas may together spend up to N times the limit.
#[derive(Debug)]
pub struct SpendCap {
    limit_nanos: u64,
    period_ms: u64,
    /// (start of the period the spend belongs to, in ms since the epoch; spend in nano-dollars)
    state: Mutex<(u64, u64)>,
}

impl SpendCap {
    /// A limit that is 0, negative or NaN allows nothing. A period under a millisecond counts
    /// as one millisecond.
    pub fn new(limit_usd: f64, period: Duration) -> Self {
        SpendCap {
            limit_nanos: to_nanos(limit_usd),
            period_ms: u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1),
            state: Mutex::new((0, 0)),
        }
    }

    pub fn limit(&self) -> f64 {
        to_usd(self.limit_nanos)
    }

    pub fn period(&self) -> Duration {
        Duration::from_millis(self.period_ms)
    }

    fn period_start(&self, now_ms: u64) -> u64 {
        now_ms - now_ms % self.period_ms
    }

    /// Adds spend at `now_ms`. A clock stepped back into an earlier period adds to the current
    /// one: the money was spent either way.
    pub fn add(&self, usd: f64, now_ms: u64) {
        let start = self.period_start(now_ms);
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if start > s.0 {
            *s = (start, 0);
        }
        s.1 = s.1.saturating_add(to_nanos(usd));
    }

    /// USD spent in the period containing `now_ms`: 0 once that period is later than the
    /// last spend's.
    pub fn spent(&self, now_ms: u64) -> f64 {
        to_usd(self.spent_nanos(now_ms))
    }

    fn spent_nanos(&self, now_ms: u64) -> u64 {
        let start = self.period_start(now_ms);
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if start > s.0 {
            0
        } else {
            s.1
        }
    }

    /// Whether the period's spend has reached the limit.
    pub fn is_over(&self, now_ms: u64) -> bool {
        self.spent_nanos(now_ms) >= self.limit_nanos
    }

    /// Time until the current period ends and the spend starts again from zero.
    pub fn resets_in(&self, now_ms: u64) -> Duration {
        Duration::from_millis(self.period_ms - now_ms % self.period_ms)
    }
}

/// A period such as "30m", "1h", "24h", "1d", "7d" or "3600s": a whole number and a unit (s,
/// m, h or d).
pub fn parse_period(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("period is empty: expected e.g. \"1h\" or \"7d\"".to_string());
    }
    let expected = "expected a whole number followed by s, m, h or d, such as \"1h\" or \"7d\"";
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "" => return Err(format!("period {s:?} has no unit: {expected}")),
        _ => return Err(format!("period {s:?}: {expected}")),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("period {s:?}: {expected}"))?;
    if n == 0 {
        return Err(format!(
            "period {s:?} is zero: a cap needs a period to reset in"
        ));
    }
    n.checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("period {s:?} is too long"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// gpt-4o's published prices: cached input at half the input price, no cache writes.
    const OPENAI: Price = Price {
        input_per_mtok: 2.5,
        output_per_mtok: 10.0,
        cache_read_per_mtok: Some(1.25),
        cache_write_per_mtok: None,
    };

    /// Claude Sonnet's: cache writes at 1.25x input, reads at 0.1x.
    const ANTHROPIC: Price = Price {
        input_per_mtok: 3.0,
        output_per_mtok: 15.0,
        cache_read_per_mtok: Some(0.3),
        cache_write_per_mtok: Some(3.75),
    };

    #[test]
    fn openai_usage_bills_cached_input_at_the_cache_price() {
        let usage = Usage {
            input_tokens: 1_000,
            output_tokens: 200,
            total_tokens: 1_200,
            cached_input_tokens: Some(400),
            reasoning_tokens: Some(50),
            ..Usage::default()
        };
        // 600 x 2.5 + 400 x 1.25 + 200 x 10 (reasoning is inside the 200) = 4000 per million.
        assert_eq!(cost_of(&usage, &OPENAI), 0.004);
    }

    #[test]
    fn anthropic_usage_bills_cache_writes_and_reads() {
        // Anthropic reported input 100 (uncached), cache_creation 2000, cache_read 5000; the
        // canonical input includes all three.
        let usage = Usage {
            input_tokens: 7_100,
            output_tokens: 300,
            total_tokens: 7_400,
            cached_input_tokens: Some(5_000),
            cache_creation_input_tokens: Some(2_000),
            ..Usage::default()
        };
        // 100 x 3 + 5000 x 0.3 + 2000 x 3.75 + 300 x 15 = 13_800 per million.
        assert!(close(cost_of(&usage, &ANTHROPIC), 0.0138));
    }

    #[test]
    fn missing_cache_prices_fall_back_to_the_input_price() {
        let flat = Price {
            cache_read_per_mtok: None,
            cache_write_per_mtok: None,
            ..ANTHROPIC
        };
        let cached = Usage {
            input_tokens: 7_100,
            output_tokens: 300,
            cached_input_tokens: Some(5_000),
            cache_creation_input_tokens: Some(2_000),
            ..Usage::default()
        };
        let uncached = Usage {
            input_tokens: 7_100,
            output_tokens: 300,
            ..Usage::default()
        };
        assert_eq!(cost_of(&cached, &flat), cost_of(&uncached, &flat));
        assert_eq!(
            cost_of(&uncached, &flat),
            (7_100.0 * 3.0 + 300.0 * 15.0) / 1e6
        );
    }

    #[test]
    fn more_cached_than_input_saturates() {
        let usage = Usage {
            input_tokens: 100,
            cached_input_tokens: Some(150),
            cache_creation_input_tokens: Some(10),
            ..Usage::default()
        };
        // No negative uncached part; the cache counts are billed as reported.
        assert!(close(
            cost_of(&usage, &ANTHROPIC),
            (150.0 * 0.3 + 10.0 * 3.75) / 1e6
        ));
        assert_eq!(cost_of(&Usage::default(), &ANTHROPIC), 0.0);
    }

    #[test]
    fn estimates() {
        assert_eq!(estimate_input_tokens(0), 0);
        assert_eq!(estimate_input_tokens(1), 1);
        assert_eq!(estimate_input_tokens(4), 1);
        assert_eq!(estimate_input_tokens(5), 2);
        assert_eq!(estimate_input_tokens(4_000), 1_000);
        // 1000 x 2.5 + 500 x 10 = 7500 per million.
        assert_eq!(estimate(&OPENAI, 1_000, 500), 0.0075);
        assert_eq!(estimate(&OPENAI, 0, 0), 0.0);
    }

    #[test]
    fn a_ledger_sums_exactly_across_threads() {
        let ledger = Arc::new(Ledger::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let ledger = Arc::clone(&ledger);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        ledger.add(0.0001);
                        ledger.add(0.000_000_3);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // 40_000 x (100_000 + 300) nano-dollars: a float sum of 0.0001 would have drifted.
        assert_eq!(ledger.0.load(Ordering::Relaxed), 40_000 * 100_300);
        assert_eq!(ledger.total(), 4.012);
        ledger.add(-1.0);
        ledger.add(f64::NAN);
        assert_eq!(ledger.total(), 4.012);
    }

    #[test]
    fn a_spend_cap_rolls_over_at_the_epoch_aligned_boundary() {
        const HOUR_MS: u64 = 3_600_000;
        // 2024-01-01 10:59:59 UTC and the next second.
        let before = 1_704_106_799_000;
        let boundary = before + 1_000;
        assert_eq!(boundary % HOUR_MS, 0, "11:00:00 starts an hour");
        let cap = SpendCap::new(1.0, Duration::from_secs(3_600));
        cap.add(0.6, before);
        assert_eq!(cap.spent(before), 0.6);
        assert!(!cap.is_over(before));
        assert_eq!(cap.resets_in(before), Duration::from_secs(1));
        cap.add(0.4, before);
        assert!(cap.is_over(before), "spent == limit is over");
        // The next period starts from zero, read before or after its first add.
        assert_eq!(cap.spent(boundary), 0.0);
        assert!(!cap.is_over(boundary));
        assert_eq!(cap.resets_in(boundary), Duration::from_secs(3_600));
        cap.add(0.25, boundary);
        assert_eq!(cap.spent(boundary), 0.25);
        assert_eq!(cap.spent(boundary + HOUR_MS - 1), 0.25);
        assert_eq!(
            cap.resets_in(boundary + HOUR_MS - 1),
            Duration::from_millis(1)
        );
        assert_eq!(cap.spent(boundary + HOUR_MS), 0.0);
        // A clock stepped back adds to the current period.
        cap.add(0.25, before);
        assert_eq!(cap.spent(boundary), 0.5);
    }

    #[test]
    fn a_daily_cap_resets_at_midnight_utc() {
        const DAY_MS: u64 = 86_400_000;
        let midnight = 19_723 * DAY_MS; // 2024-01-01 00:00:00 UTC
        let cap = SpendCap::new(5.0, parse_period("1d").unwrap());
        cap.add(5.0, midnight - 1);
        assert!(cap.is_over(midnight - 1));
        assert!(!cap.is_over(midnight));
        assert_eq!(
            cap.resets_in(midnight + 1),
            Duration::from_millis(DAY_MS - 1)
        );
        assert!(SpendCap::new(0.0, Duration::ZERO).is_over(midnight));
    }

    #[test]
    fn periods_parse() {
        assert_eq!(parse_period("1h"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse_period("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_period("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_period("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_period("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_period("3600s"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse_period(" 2h "), Ok(Duration::from_secs(7_200)));
        for junk in [
            "",
            "h",
            "0h",
            "0",
            "3600",
            "1.5h",
            "-1h",
            "+1h",
            "1 h",
            "1H",
            "1w",
            "1hh",
            "h1",
            "99999999999999999999d",
        ] {
            let err = parse_period(junk).expect_err(junk);
            assert!(
                junk.is_empty() || err.contains(&format!("{junk:?}")),
                "{err}"
            );
        }
        assert_eq!(
            parse_period("0d"),
            Err("period \"0d\" is zero: a cap needs a period to reset in".to_string())
        );
        assert!(parse_period("3600").unwrap_err().contains("no unit"));
        assert!(parse_period("999999999999999999d")
            .unwrap_err()
            .contains("too long"));
    }
}
